//! Encode sessions: state, buffers, the picture-type decision (PTD) and the B-frame output
//! contract (reference §3.6).

use crate::abi::{CodecKind, SdkIdx};
use crate::caps::Gpu;
use crate::sw;
use crate::trace::Call;
use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::CString;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Handle kinds; a handle is `tag << 40 | id << 4`, opaque to clients (never dereferenced).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Tag {
    Session = 0x5e,
    Input = 0x1b,
    Output = 0xb5,
    Registered = 0x2e,
    Mapped = 0x3a,
}

pub fn new_handle(tag: Tag) -> u64 {
    ((tag as u64) << 40) | (NEXT_ID.fetch_add(1, Ordering::Relaxed) << 4)
}

pub struct Session {
    pub id: u64,
    pub sdk: SdkIdx,
    pub gpu: Gpu,
    /// CUDA ordinal of the session's GPU (`crate::system::device_of`).
    pub ordinal: u32,
    /// The client's CUcontext: opaque, only handed back to CUDA.
    pub device: u64,
    pub inner: Mutex<Inner>,
    pub cv: Condvar,
    /// Last error strings; kept alive for the session so returned pointers stay valid.
    pub errors: Mutex<VecDeque<CString>>,
}

impl Session {
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_error(&self, msg: &str) {
        let c = CString::new(msg.replace('\0', " ")).unwrap_or_default();
        let mut e = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        e.push_back(c);
        // Keep a few: a client may still hold the previous pointer.
        while e.len() > 16 {
            e.pop_front();
        }
    }
}

static SESSIONS: Mutex<Option<HashMap<u64, Arc<Session>>>> = Mutex::new(None);
static DEAD: Mutex<Option<HashSet<u64>>> = Mutex::new(None);

pub fn register(s: Arc<Session>, handle: u64) {
    SESSIONS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashMap::new)
        .insert(handle, s);
}

pub enum Lookup {
    Live(Arc<Session>),
    Destroyed,
    Unknown,
}

pub fn lookup(handle: u64) -> Lookup {
    if let Some(s) = SESSIONS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(|m| m.get(&handle))
    {
        return Lookup::Live(s.clone());
    }
    if DEAD
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .is_some_and(|d| d.contains(&handle))
    {
        Lookup::Destroyed
    } else {
        Lookup::Unknown
    }
}

pub fn unregister(handle: u64) -> Option<Arc<Session>> {
    let s = SESSIONS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_mut()
        .and_then(|m| m.remove(&handle));
    DEAD.lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashSet::new)
        .insert(handle);
    s
}

#[derive(Default)]
pub struct Inner {
    pub destroyed: bool,
    pub enc: Option<Enc>,
    pub inputs: HashMap<u64, InputBuf>,
    pub outputs: HashMap<u64, OutBuf>,
    pub regs: HashMap<u64, Reg>,
    /// mapped handle -> registered handle
    pub maps: HashMap<u64, u64>,
    /// Handles this session destroyed (for use-after-destroy diagnostics).
    pub dead: HashSet<u64>,
    pub streams: (u64, u64),
}

pub struct InputBuf {
    pub width: u32,
    pub height: u32,
    pub fmt: u32,
    pub pitch: usize,
    pub data: Vec<u8>,
    pub locked: bool,
}

pub struct Reg {
    pub ptr: u64,
    pub width: u32,
    pub height: u32,
    pub pitch: u32,
    pub fmt: u32,
    pub mapped: Option<u64>,
}

#[derive(Clone, Debug)]
pub struct Output {
    /// When the (modelled) hardware has finished this picture: LockBitstream waits until then.
    pub ready_at: std::time::Instant,
    /// When the client submitted this picture (`nvEncEncodePicture`), and how long it occupies
    /// its engine(s) in the model (zero without one): for the latency in the trace.
    pub submitted_at: std::time::Instant,
    pub busy: std::time::Duration,
    pub data: Vec<u8>,
    pub pts: u64,
    pub duration: u64,
    pub pic_type: u32,
    pub frame_idx: u32,
    pub frame_idx_display: u32,
    pub avg_qp: u32,
    /// Marked as long-term reference with this index (per picture or by trust mode).
    pub ltr_mark: Option<u32>,
    /// SEI payload types / AV1 metadata types written into this picture (for the trace).
    pub payload_types: Vec<u32>,
}

pub enum OutState {
    /// Free: nothing submitted since the last unlock (or creation).
    Idle,
    /// Submitted; EncodePicture returned NEED_MORE_INPUT and no later call released it.
    Submitted,
    /// A later EncodePicture returned SUCCESS (or EOS came): its picture is due.
    Released,
    Ready(Output),
    Locked(Output),
}

pub struct OutBuf {
    pub state: OutState,
}

/// Per-frame data kept from EncodePicture to LockBitstream.
#[derive(Clone, Debug)]
pub struct Meta {
    pub pts: u64,
    pub duration: u64,
    pub frame_idx: u32,
    pub display_idx: u32,
    pub kind: sw::PicKind,
    pub headers: bool,
    /// Per-picture LTR mark (`ltrMarkFrame`, `ltrMarkFrameIdx`).
    pub ltr_mark: Option<u32>,
    /// SEI messages / metadata OBUs the client passed with this frame (and NVENC 13.0's HDR
    /// messages), written into its access unit (`crate::payload`).
    pub extra: Vec<crate::payload::Payload>,
    /// H.264 `enableTimeCode`: the picture timing SEI payload (`crate::timecode`), which
    /// replaces the software encoder's.
    pub pic_timing: Option<Vec<u8>>,
    /// When `nvEncEncodePicture` was called with this frame.
    pub submitted_at: std::time::Instant,
}

pub struct Frame {
    pub data: Vec<u8>,
    pub fmt: sw::InputFormat,
    pub pitch: usize,
    pub alloc_h: u32,
    pub meta: Meta,
    pub spspps: bool,
    /// The picture's QP delta map (`crate::qpmap`), if it has one.
    pub qp_map: Option<crate::qpmap::Map>,
}

pub struct Enc {
    pub codec: CodecKind,
    pub width: u32,
    pub height: u32,
    /// `maxEncodeWidth/Height` of the session (the encode size where initialised with 0): the
    /// largest size `nvEncReconfigureEncoder` may change to.
    pub max_size: (u32, u32),
    /// Effective frameIntervalP (1 = no B-frames).
    pub fip: u32,
    pub gop: Option<u32>,
    pub idr_period: Option<u32>,
    pub repeat_headers: bool,
    pub disable_headers: bool,
    /// API 13.0 config bits (H.265, AV1): `outputMasteringDisplay`, `outputMaxCll`.
    pub out_hdr: (bool, bool),
    /// H.264 `enableTimeCode`: a picture timing SEI with the picture's clock timestamps.
    pub time_code: bool,
    pub swcfg: sw::Config,
    pub sw: sw::SwEncoder,
    pub seq: Vec<u8>,
    /// Frames waiting to become B-frames (display order).
    pub pending: Vec<Frame>,
    /// Buffers of frames that returned NEED_MORE_INPUT, in submission order.
    pub submitted: VecDeque<u64>,
    /// Released buffers waiting for their picture, in submission order.
    pub awaiting: VecDeque<u64>,
    /// internal pts (sent to the software encoder) -> frame
    pub metas: HashMap<i64, Meta>,
    pub next_pts: i64,
    pub since_idr: u64,
    pub since_i: u64,
    /// The next frame must be an IDR (first frame, after EOS, forceIDR by reconfigure).
    pub need_idr: bool,
    /// The software encoder was (re)opened: the first frame sent to it must be an IDR. After a
    /// drain forced by a LockBitstream (not EOS), frames already waiting as future B-frames keep
    /// their NEED_MORE_INPUT pattern; the first of them is coded as the IDR.
    pub fresh: bool,
    pub sent_since_drain: bool,
    /// The next IDR starts a sequence and carries the sequence header.
    pub seq_headers_due: bool,
    pub display_idx: u32,
    /// Count of frames submitted, and the thread that submitted the last one (to tell whether
    /// a blocked LockBitstream can still expect input).
    pub submits: u64,
    pub last_submitter: Option<std::thread::ThreadId>,
    pub qp: (u32, u32, u32),
    /// `rcParams.qpMapMode` and the map's block size.
    pub qp_map: crate::qpmap::Mode,
    /// When the modelled hardware finishes the last picture of this session.
    pub engine_free: std::time::Instant,
    /// The timing model of this session (`crate::timing`); None: pictures are ready at once.
    pub timing: Option<crate::timing::Timing>,
    /// Split encoding, lookahead level, temporal filter and LTR as initialised.
    pub ext: crate::sdkext::Ext,
    /// The `frameIdx` the next picture must carry where `ext.frame_idx_rule` holds.
    pub next_frame_idx: u32,
    /// Reference pictures since the last IDR (LTR trust mode marks the first ltrNumFrames).
    pub ltr_refs_since_idr: u32,
    /// Long-term reference indices marked since the last IDR.
    pub ltr_marked: u32,
}

pub fn kind_to_pic_type(k: sw::PicKind) -> u32 {
    match k {
        sw::PicKind::P | sw::PicKind::Auto => 0,
        sw::PicKind::B => 1,
        sw::PicKind::I => 2,
        sw::PicKind::Idr => 3,
    }
}

impl Enc {
    /// Encodes a frame (already copied) with PTD. Returns true if the call completes a
    /// mini-GOP (SUCCESS), false if the frame is held as a future B-frame (NEED_MORE_INPUT).
    pub fn submit(
        &mut self,
        mut f: Frame,
        force_idr: bool,
        force_intra: bool,
        outputs: &mut HashMap<u64, OutBuf>,
        out_buf: u64,
        call: &mut Call,
    ) -> Result<bool, String> {
        self.submits += 1;
        self.last_submitter = Some(std::thread::current().id());
        // Display distance of this frame from the last IDR / I (frames sent since it, the
        // intra frame included, plus the frames still waiting to become B-frames).
        let r = self.since_idr + self.pending.len() as u64;
        let ri = self.since_i + self.pending.len() as u64;
        let is_idr = force_idr || self.need_idr || self.idr_period.is_some_and(|p| r >= p as u64);
        self.submitted.push_back(out_buf);
        if is_idr {
            // An IDR closes the pending mini-GOP first: its last frame becomes a P.
            let mut batch: Vec<Frame> = std::mem::take(&mut self.pending);
            let n = batch.len();
            for (i, b) in batch.iter_mut().enumerate() {
                b.meta.kind = if i + 1 == n {
                    sw::PicKind::P
                } else {
                    sw::PicKind::B
                };
            }
            f.meta.kind = sw::PicKind::Idr;
            batch.push(f);
            self.need_idr = false;
            self.send_batch(batch, call)?;
            self.release(outputs);
            return Ok(true);
        }
        let is_i = force_intra || self.gop.is_some_and(|g| ri >= g as u64);
        if self.fip <= 1 || is_i || self.pending.len() + 1 >= self.fip as usize {
            let mut batch: Vec<Frame> = std::mem::take(&mut self.pending);
            for b in batch.iter_mut() {
                b.meta.kind = sw::PicKind::B;
            }
            f.meta.kind = if is_i { sw::PicKind::I } else { sw::PicKind::P };
            batch.push(f);
            self.send_batch(batch, call)?;
            self.release(outputs);
            Ok(true)
        } else {
            if let Some(o) = outputs.get_mut(&out_buf) {
                o.state = OutState::Submitted;
            }
            self.pending.push(f);
            Ok(false)
        }
    }

    /// EOS: closes the pending mini-GOP (last frame P, the others B), releases every buffer
    /// and drains the software encoder. Idempotent.
    pub fn flush(
        &mut self,
        outputs: &mut HashMap<u64, OutBuf>,
        call: &mut Call,
    ) -> Result<(), String> {
        self.close_mini_gop(outputs, call)?;
        if self.sent_since_drain {
            self.drain(outputs, call)?;
        }
        // After EOS the next frame starts a new sequence with an IDR (reference §1.10 [inf]).
        self.need_idr = true;
        self.poll(outputs, call)?;
        if !self.awaiting.is_empty() {
            call.note(format!(
                "software encoder returned fewer pictures than frames sent; {} buffers left empty",
                self.awaiting.len()
            ));
            while let Some(b) = self.awaiting.pop_front() {
                if let Some(o) = outputs.get_mut(&b) {
                    o.state = OutState::Ready(Output {
                        ready_at: std::time::Instant::now(),
                        submitted_at: std::time::Instant::now(),
                        busy: std::time::Duration::ZERO,
                        data: Vec::new(),
                        pts: 0,
                        duration: 0,
                        pic_type: 0,
                        frame_idx: 0,
                        frame_idx_display: 0,
                        avg_qp: 0,
                        ltr_mark: None,
                        payload_types: Vec::new(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Codes the frames waiting to become B-frames now (the last one a P, the others B) and
    /// releases their buffers: EOS, and a size change by reconfiguration (a picture of the old
    /// size cannot be coded at the new one).
    pub fn close_mini_gop(
        &mut self,
        outputs: &mut HashMap<u64, OutBuf>,
        call: &mut Call,
    ) -> Result<(), String> {
        let mut batch: Vec<Frame> = std::mem::take(&mut self.pending);
        let n = batch.len();
        for (i, b) in batch.iter_mut().enumerate() {
            b.meta.kind = if i + 1 == n {
                sw::PicKind::P
            } else {
                sw::PicKind::B
            };
        }
        if !batch.is_empty() {
            self.send_batch(batch, call)?;
        }
        self.release(outputs);
        Ok(())
    }

    /// Ends the software encoder's sequence, giving out every picture it holds.
    pub fn drain(
        &mut self,
        outputs: &mut HashMap<u64, OutBuf>,
        call: &mut Call,
    ) -> Result<(), String> {
        let pkts = self.sw.drain()?;
        self.fresh = true;
        self.seq_headers_due = true;
        self.sent_since_drain = false;
        for p in pkts {
            self.place(p, outputs, call);
        }
        Ok(())
    }

    fn release(&mut self, outputs: &mut HashMap<u64, OutBuf>) {
        while let Some(b) = self.submitted.pop_front() {
            if let Some(o) = outputs.get_mut(&b) {
                o.state = OutState::Released;
            }
            self.awaiting.push_back(b);
        }
    }

    fn send_batch(&mut self, mut batch: Vec<Frame>, call: &mut Call) -> Result<(), String> {
        if self.fresh {
            // A new sequence starts with an IDR, whatever the frame was going to be.
            if let Some(first) = batch.first_mut() {
                first.meta.kind = sw::PicKind::Idr;
            }
            self.fresh = false;
        }
        // Counters for the periodic IDR / I decisions, from the last intra frame of the batch.
        for (i, f) in batch.iter().enumerate() {
            let after = (batch.len() - i) as u64;
            match f.meta.kind {
                sw::PicKind::Idr => {
                    self.since_idr = after;
                    self.since_i = after;
                }
                sw::PicKind::I => self.since_i = after,
                _ => {}
            }
        }
        let idr_in = batch.iter().any(|f| f.meta.kind == sw::PicKind::Idr);
        if !idr_in {
            self.since_idr += batch.len() as u64;
            if !batch.iter().any(|f| f.meta.kind == sw::PicKind::I) {
                self.since_i += batch.len() as u64;
            }
        }
        for mut f in batch {
            let pts = self.next_pts;
            self.next_pts += 1;
            let idr = f.meta.kind == sw::PicKind::Idr;
            f.meta.headers = !self.disable_headers
                && ((idr && (self.seq_due() || self.repeat_headers)) || f.spspps);
            if idr {
                self.seq_headers_due = false;
            }
            // AV1: the buffers carry shown frames in display order (FFmpeg sets dts = pts), so
            // the software encoder codes no B-frames; B decided by PTD is coded as P.
            let kind = if self.codec == CodecKind::Av1 && f.meta.kind == sw::PicKind::B {
                sw::PicKind::P
            } else {
                f.meta.kind
            };
            if self.codec == CodecKind::Av1 {
                f.meta.kind = kind;
            }
            if let Some(m) = &f.qp_map {
                self.sw
                    .set_qp_map(&m.qp_offsets(), m.cols, m.rows, m.block)
                    .map_err(|e| format!("software encoder rejected a QP map: {e}"))?;
            }
            self.sw
                .send(f.fmt, &f.data, f.pitch, f.alloc_h, pts, kind)
                .map_err(|e| format!("software encoder rejected a frame: {e}"))?;
            self.metas.insert(pts, f.meta);
            self.sent_since_drain = true;
        }
        let _ = call;
        Ok(())
    }

    fn seq_due(&self) -> bool {
        self.seq_headers_due
    }

    /// Takes every packet the software encoder has ready and fills awaiting buffers.
    pub fn poll(
        &mut self,
        outputs: &mut HashMap<u64, OutBuf>,
        call: &mut Call,
    ) -> Result<(), String> {
        while let Some(p) = self.sw.receive()? {
            self.place(p, outputs, call);
        }
        Ok(())
    }

    fn place(&mut self, p: sw::Packet, outputs: &mut HashMap<u64, OutBuf>, call: &mut Call) {
        let Some(meta) = self.metas.remove(&p.pts) else {
            call.note(format!(
                "software encoder returned a packet with unknown pts {}; dropped",
                p.pts
            ));
            return;
        };
        let mut kind = meta.kind;
        if p.kind != sw::PicKind::Auto && p.kind != kind {
            call.note(format!(
                "software encoder coded frame {} as {:?} instead of {:?}",
                meta.frame_idx, p.kind, kind
            ));
            kind = p.kind;
        }
        let has = crate::hdr::has_headers(self.codec, &p.data);
        let data = if meta.headers && !has {
            crate::hdr::insert(self.codec, &p.data, &self.seq)
        } else if !meta.headers && has {
            crate::hdr::strip(self.codec, &p.data)
        } else {
            p.data
        };
        // The picture timing SEI with the clock timestamps replaces x264's (pic_struct only).
        let (data, extra) = match &meta.pic_timing {
            Some(body) => match crate::timecode::strip_pic_timing(&data) {
                Ok(d) => {
                    let mut e = vec![crate::payload::Payload {
                        ty: crate::timecode::SEI_PIC_TIMING,
                        body: body.clone(),
                    }];
                    e.extend(meta.extra.iter().cloned());
                    (d, e)
                }
                Err(m) => {
                    call.note(format!(
                        "frame {}: clock timestamps not written: {m}",
                        meta.frame_idx
                    ));
                    (data, meta.extra.clone())
                }
            },
            None => (data, meta.extra.clone()),
        };
        // The client's SEI messages / metadata OBUs of this frame, into its access unit.
        let data = if extra.is_empty() {
            data
        } else {
            crate::payload::insert(self.codec, &data, &extra)
        };
        // frameAvgQP: what the software encoder reports (x264, x265: their QP scale is
        // NVENC's for H.264/H.265), else the constant QPs (or typical ones) of the session.
        let avg_qp = match (p.avg_qp, kind) {
            (Some(q), _) if self.codec != CodecKind::Av1 => q,
            (_, sw::PicKind::Idr | sw::PicKind::I) => self.qp.0,
            (_, sw::PicKind::B) => self.qp.2,
            _ => self.qp.1,
        };
        // Timing model (`crate::timing`): the picture goes to the session's engines now, in
        // coded order, after the session's previous picture.
        let now = std::time::Instant::now();
        self.engine_free = match &self.timing {
            Some(t) => t.schedule(self.engine_free),
            None => now,
        };
        // Long-term references (only without B-frames, so coded order is display order): an
        // IDR clears them; trust mode marks the first ltrNumFrames pictures of each IDR
        // period (every picture is a reference here), per-picture mode what the client asked.
        let ltr_mark = match self.ext.ltr {
            Some((n, trust)) => {
                if kind == sw::PicKind::Idr {
                    self.ltr_refs_since_idr = 0;
                    self.ltr_marked = 0;
                }
                let m = if trust {
                    (self.ltr_refs_since_idr < n).then_some(self.ltr_refs_since_idr)
                } else {
                    meta.ltr_mark
                };
                self.ltr_refs_since_idr = self.ltr_refs_since_idr.saturating_add(1);
                if let Some(i) = m {
                    self.ltr_marked |= 1 << i;
                }
                m
            }
            None => None,
        };
        let out = Output {
            ltr_mark,
            ready_at: self.engine_free,
            submitted_at: meta.submitted_at,
            busy: self.timing.as_ref().map_or(std::time::Duration::ZERO, |t| {
                t.time / t.engines.len().max(1) as u32
            }),
            data,
            pts: meta.pts,
            duration: meta.duration,
            pic_type: kind_to_pic_type(kind),
            frame_idx: meta.frame_idx,
            frame_idx_display: meta.display_idx,
            avg_qp,
            payload_types: meta.extra.iter().map(|p| p.ty).collect(),
        };
        // Buffers are filled in submission order with pictures in coded order; a buffer the
        // client destroyed meanwhile swallows its picture.
        match self.awaiting.pop_front() {
            Some(b) => {
                if let Some(o) = outputs.get_mut(&b) {
                    o.state = OutState::Ready(out);
                }
            }
            None => call.note(format!(
                "software encoder returned a picture (frame {}) with no buffer waiting; dropped",
                meta.frame_idx
            )),
        }
    }
}
