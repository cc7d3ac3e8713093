// SPDX-License-Identifier: MPL-2.0
//! One NVENC session with its ring of input surfaces and bitstream buffers and its output
//! thread, as nvcodec's `GstNvEncObject`: [`Ring::acquire`] a free slot, submit it after
//! `nvEncEncodePicture` ([`Ring::submitted`]), and the output thread ([`output_loop`]) locks
//! the bitstreams in submission order, gives the slots back and finishes the frames.
//!
//! Locks: the ring's one mutex (`Queues`) with its condvar, shared by the streaming thread and
//! the output thread; the output thread takes the encoder's stream lock only without the
//! ring's mutex, and the streaming thread waits for the output thread only without the
//! stream lock ([`super::gstffi::StreamUnlock`]), so neither waits for the other in a circle.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use gst::prelude::*;
use gst_video::prelude::*;

use crate::cuda;
use crate::nvenc::api::{self, BitstreamBuffer, EncodeStatus, InputBuffer, NvEncError, Session};
use crate::nvenc::ffi;
use crate::nvtx;

use super::gstffi::{StreamLock, StreamUnlock};
use super::settings::Store;
use super::stats::{self, RunningStats};
use super::{CAT, CodecOps, SessionParams, StreamFormat, lock, wait};

/// One input surface and one bitstream buffer, with what the picture in them holds on to.
pub struct Slot {
    pub input: InputBuffer,
    pub output: BitstreamBuffer,
    /// Set while the slot's picture is upstream CUDA memory or our device surface: NVENC's
    /// mapping, then the GstMemory's device mapping, released (in that order) once the
    /// bitstream is locked.
    pub cuda: Option<CudaInput>,
    /// Our own device surface for pictures NVENC cannot read in place (another context, another
    /// layout, page-locked system memory), registered with NVENC; made on first use.
    pub device: Option<(cuda::DevicePitched, Arc<api::RegisteredResource>)>,
}

/// A picture NVENC reads from device memory: its mapping, and upstream's memory (read in
/// place only; after a copy it is not needed any more).
pub struct CudaInput {
    pub nvenc: api::MappedResource,
    pub _memory: Option<cuda::gst::MappedCudaMemory>,
}

/// A picture out of NVENC, to be finished.
pub struct Done {
    frame_number: u32,
    buffer: gst::Buffer,
    keyframe: bool,
    /// Its DTS ([`Dts`]).
    dts: Option<gst::ClockTime>,
}

/// DTS of the pictures NVENC gives out in coded order, from the PTS of the frames submitted
/// in display order: the k-th picture out gets the PTS of the frame submitted `delay` frames
/// before the k-th (`delay` = `frameIntervalP - 1`, NVENC's reordering), so DTS increase
/// strictly with the input's PTS and never pass the PTS (a picture coded k-th shows at or
/// after frame k - `delay`), whatever the frame rate was then: a frame-rate change in the
/// session needs nothing here. The first `delay` pictures take their own PTS minus `offset`
/// (`delay` frame durations at the session's start).
struct Dts {
    delay: usize,
    offset: gst::ClockTime,
    /// PTS of the last `delay` frames submitted.
    recent: VecDeque<Option<gst::ClockTime>>,
}

impl Dts {
    /// The DTS of the picture that comes out k-th, for the k-th frame submitted, of `pts`.
    fn next(&mut self, pts: Option<gst::ClockTime>) -> Option<gst::ClockTime> {
        self.recent.push_back(pts);
        if self.recent.len() > self.delay {
            return self.recent.pop_front().flatten();
        }
        // Warm-up; after a drain the history goes on (the delay is the same).
        pts.map(|p| p.saturating_sub(self.offset))
    }
}

struct Queues<S> {
    free: Vec<S>,
    /// Submitted, waiting for the output thread, with the DTS of that submission ([`Dts`]).
    pending: VecDeque<(S, Option<gst::ClockTime>)>,
    /// Submitted, but NVENC answered NEED_MORE_INPUT: not to be locked until a later
    /// EncodePicture returns SUCCESS or EOS is sent (NVENC's rule, as nvcodec keeps it). Then
    /// they move to `pending`, in submission order.
    held: Vec<(S, Option<gst::ClockTime>)>,
    /// Slots the output thread holds right now (0 or 1).
    locking: usize,
    done: VecDeque<Done>,
    error: Option<NvEncError>,
    shutdown: bool,
    /// Set by a flush: the output thread drops what comes out instead of finishing it.
    discard: bool,
    /// Threads waiting on the ring's condvar ([`Ring::sleep`]): a change wakes them only if
    /// there are any ([`Ring::wake`]), which saves a `futex` system call per frame.
    waiters: u32,
    /// The stream has HDR metadata to write on IDRs: the output thread checks each IDR came
    /// with it (the prediction of [`IdrPrediction`]) and nothing else did.
    hdr_expected: bool,
    /// Frames (system frame numbers) submitted with HDR metadata, until they come out.
    hdr_frames: HashSet<u32>,
    /// Frames that start an intra-refresh wave for a key-unit request, until they come out:
    /// marked sync points (recovery points, as x264enc marks x264's intra-refresh key frames).
    recovery_frames: HashSet<u32>,
    dts: Dts,
}

/// The slots of a session (`S`: [`Slot`], anything in the unit tests) and where each is:
/// free, submitted, in the output thread.
pub struct Ring<S = Slot> {
    q: Mutex<Queues<S>>,
    cond: Condvar,
}

impl<S> Ring<S> {
    /// A ring of the `free` slots of a session with `delay` frames of reordering (B-frames),
    /// `offset` = `delay` frame durations at its start.
    pub fn new(
        free: Vec<S>,
        hdr_expected: bool,
        delay: u32,
        offset: gst::ClockTime,
    ) -> Arc<Ring<S>> {
        Arc::new(Ring {
            q: Mutex::new(Queues {
                free,
                pending: VecDeque::new(),
                held: Vec::new(),
                locking: 0,
                done: VecDeque::new(),
                error: None,
                shutdown: false,
                discard: false,
                waiters: 0,
                hdr_expected,
                hdr_frames: HashSet::new(),
                recovery_frames: HashSet::new(),
                dts: Dts {
                    delay: delay as usize,
                    offset,
                    recent: VecDeque::new(),
                },
            }),
            cond: Condvar::new(),
        })
    }

    /// Waits on the condvar (counted in `waiters`).
    fn sleep<'a>(&self, mut q: MutexGuard<'a, Queues<S>>) -> MutexGuard<'a, Queues<S>> {
        q.waiters += 1;
        let mut q = wait(&self.cond, q);
        q.waiters -= 1;
        q
    }

    /// Releases the ring's mutex, then wakes the threads waiting on the condvar, if any. After
    /// the release, so that a woken thread does not spin on the mutex its waker still holds
    /// (perf showed the output thread doing so, ~4 µs per frame); no lost wake-up, since a
    /// thread counts itself in `waiters` under the mutex before it waits.
    fn wake(&self, q: MutexGuard<'_, Queues<S>>) {
        let any = q.waiters > 0;
        drop(q);
        if any {
            self.cond.notify_all();
        }
    }

    /// A free slot, waiting for one if all are in flight; the output thread's error if it
    /// failed. The caller holds `element`'s stream lock once: the wait releases it (as nvcodec
    /// does), since the output thread takes it to finish frames before it returns slots.
    pub fn acquire(&self, element: &gst_video::VideoEncoder) -> Result<S, NvEncError> {
        let mut unlocked = None;
        let mut q = lock(&self.q);
        loop {
            if let Some(e) = q.error.clone() {
                return Err(e);
            }
            if let Some(s) = q.free.pop() {
                drop(q);
                drop(unlocked);
                return Ok(s);
            }
            if unlocked.is_none() {
                // Not under `q`: the output thread may hold the stream lock and want `q`.
                drop(q);
                unlocked = Some(StreamUnlock::new(element));
                q = lock(&self.q);
                continue;
            }
            q = self.sleep(q);
        }
    }

    /// A slot back unused (the picture was not submitted).
    pub fn give_back(&self, slot: S) {
        lock(&self.q).free.push(slot);
    }

    /// The slot's picture (of `pts`) went to `nvEncEncodePicture`, which answered `status`.
    pub fn submitted(&self, slot: S, pts: Option<gst::ClockTime>, status: EncodeStatus) {
        let mut q = lock(&self.q);
        let pts = q.dts.next(pts);
        match status {
            EncodeStatus::NeedMoreInput => q.held.push((slot, pts)),
            EncodeStatus::Success => {
                let held: Vec<_> = q.held.drain(..).collect();
                q.pending.extend(held);
                q.pending.push_back((slot, pts));
                self.wake(q);
            }
        }
    }

    /// Frame `frame_number` is submitted with HDR metadata (checked when it comes out).
    pub fn with_hdr(&self, frame_number: u32) {
        lock(&self.q).hdr_frames.insert(frame_number);
    }

    /// Frame `frame_number` starts an intra-refresh wave asked as a key unit.
    pub fn recovery_point(&self, frame_number: u32) {
        lock(&self.q).recovery_frames.insert(frame_number);
    }

    /// Pictures in NVENC now.
    pub fn in_flight(&self) -> u32 {
        let q = lock(&self.q);
        (q.pending.len() + q.held.len() + q.locking) as u32
    }

    /// NVENC's EOS was sent: it releases what NVENC held for more input.
    fn release_held(&self) {
        let mut q = lock(&self.q);
        let held: Vec<_> = q.held.drain(..).collect();
        q.pending.extend(held);
        self.wake(q);
    }

    /// Waits until the output thread has taken out every submitted picture (finishing them, or
    /// with `push == false` dropping them), without the stream lock (held once by the caller);
    /// then, with it, what it has not finished. The output thread's error if it failed.
    fn wait_empty(
        &self,
        element: &gst_video::VideoEncoder,
        push: bool,
    ) -> Result<Vec<Done>, NvEncError> {
        {
            let _unlocked = StreamUnlock::new(element);
            let mut q = lock(&self.q);
            q.discard = !push;
            while (!q.pending.is_empty() || q.locking > 0) && q.error.is_none() {
                q = self.sleep(q);
            }
        }
        // Stream lock held again: what the output thread has not finished is ours.
        let mut q = lock(&self.q);
        if let Some(e) = q.error.clone() {
            return Err(e);
        }
        Ok(q.done.drain(..).collect())
    }

    fn shut_down(&self) {
        let mut q = lock(&self.q);
        q.shutdown = true;
        self.wake(q);
    }

    /// The output thread's next slot in submission order; `None` at shutdown.
    fn next_pending(&self) -> Option<(S, Option<gst::ClockTime>)> {
        let mut q = lock(&self.q);
        loop {
            if let Some(p) = q.pending.pop_front() {
                q.locking += 1;
                return Some(p);
            }
            if q.shutdown {
                return None;
            }
            q = self.sleep(q);
        }
    }

    /// The output thread is done with `slot`: back to the free list, with what came out of it
    /// queued to be finished (or the error kept). Returns whether the ring is shutting down,
    /// and for a picture whose HDR metadata was not where NVENC put an IDR, a warning.
    fn returned(
        &self,
        slot: S,
        res: Result<(u32, bool, gst::Buffer), NvEncError>,
        dts: Option<gst::ClockTime>,
    ) -> (bool, Option<String>) {
        let mut q = lock(&self.q);
        q.locking -= 1;
        q.free.push(slot);
        let mut warning = None;
        match res {
            Ok((n, key, buffer)) => {
                let with_hdr = q.hdr_frames.remove(&n);
                if q.hdr_expected && with_hdr != key {
                    warning = Some(format!(
                        "frame {n}: NVENC coded it as {}, but HDR metadata was {}attached to it: the IDR prediction missed",
                        if key { "an IDR" } else { "a non-IDR picture" },
                        if with_hdr { "" } else { "not " }
                    ));
                }
                let recovery = q.recovery_frames.remove(&n);
                q.done.push_back(Done {
                    frame_number: n,
                    buffer,
                    keyframe: key || recovery,
                    dts,
                });
            }
            Err(e) => {
                if q.error.is_none() {
                    q.error = Some(e);
                }
            }
        }
        let shutdown = q.shutdown;
        self.wake(q);
        (shutdown, warning)
    }

    /// What is done, to finish under the stream lock, swapped into `into` (empty; the two
    /// queues' allocations are reused, none per frame); `false` while flushing
    /// (GstVideoEncoder drops its pending frames itself after a flush; `into` stays empty).
    fn take_done(&self, into: &mut VecDeque<Done>) -> bool {
        let mut q = lock(&self.q);
        if q.discard {
            q.done.clear();
            return false;
        }
        std::mem::swap(&mut q.done, into);
        true
    }

    fn fail(&self, e: NvEncError) {
        let mut q = lock(&self.q);
        if q.error.is_none() {
            q.error = Some(e);
        }
    }
}

/// One NVENC session with its ring and output thread.
pub struct Stream {
    pub session: Arc<Session>,
    pub ring: Arc<Ring>,
    pub thread: Option<JoinHandle<()>>,
    pub params: SessionParams,
    /// The reordering delay (`frameIntervalP - 1` frames) at the current frame rate: the
    /// latency.
    pub dts_offset: gst::ClockTime,
    pub frame_idx: u32,
    /// "LTR Per Picture" mode: where the codec's picture parameters take the marks, and
    /// `ltrNumFrames`; `None` without LTR or in trust mode.
    pub ltr_per_picture: Option<(ffi::PicLtrLayout, u32)>,
    /// What the session was initialised with, for `nvEncReconfigureEncoder`.
    pub config: ffi::SessionConfig,
    /// Upstream CUDA memories registered with NVENC, by (device pointer, pitch): once each,
    /// for the session's life.
    pub registrations: HashMap<(u64, u32), Arc<api::RegisteredResource>>,
    /// Which submitted frames NVENC codes as IDRs.
    pub idr: IdrPrediction,
    /// The GPU's capabilities for the codec, and the output format: what a reconfiguration
    /// of the running session is made from (`super::live`).
    pub caps: super::config::GpuCaps,
    pub format: super::StreamFormat,
}

/// Which frames NVENC will code as IDRs. With `enablePTD` NVENC decides picture types itself:
/// an IDR on the first frame, every `idrPeriod` frames (display order) and on `FORCEIDR` (the
/// header's contract; the frames-since-IDR count restarting at a forced IDR is inferred, as
/// the emulator does). The output thread warns if NVENC decided otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdrPrediction {
    /// NVENC's IDR period (`idrPeriod` = `gopLength`), `None` = infinite.
    period: Option<u32>,
    /// Frames submitted since the last IDR, that one included; `None`: the next is an IDR
    /// (first frame of the session, or after NVENC's EOS).
    since: Option<u64>,
}

impl IdrPrediction {
    /// For a session of `gopLength` `gop` (`u32::MAX`: infinite).
    pub fn new(gop: u32) -> Self {
        IdrPrediction {
            period: (gop != u32::MAX).then_some(gop),
            since: None,
        }
    }

    /// Whether the next submitted frame (`forced`: with `FORCEIDR`) is an IDR; counts it.
    pub fn next(&mut self, forced: bool) -> bool {
        let idr = forced
            || match (self.since, self.period) {
                (None, _) => true,
                (Some(n), Some(p)) => n >= p as u64,
                (Some(_), None) => false,
            };
        self.since = Some(if idr { 1 } else { self.since.unwrap_or(0) + 1 });
        idr
    }

    /// NVENC got EOS: it starts again with an IDR (inferred: the header does not say; the
    /// emulator does so).
    pub fn restart(&mut self) {
        self.since = None;
    }
}

impl Stream {
    /// Whether NVENC will code the next submitted frame as an IDR ([`IdrPrediction`]).
    pub fn next_is_idr(&mut self, forced: bool) -> bool {
        self.idr.next(forced)
    }

    /// Sends EOS to NVENC, waits until every submitted frame is out of the encoder, and
    /// finishes (or with `push == false` discards) them. Called with the stream lock held
    /// once; errors are posted on `element`.
    pub fn drain(
        &mut self,
        element: &gst_video::VideoEncoder,
        push: bool,
    ) -> Result<(), gst::FlowError> {
        if let Err(e) = self.session.send_eos() {
            gst::element_error!(element, gst::StreamError::Encode, ["{e}"]);
            return Err(gst::FlowError::Error);
        }
        self.idr.restart();
        self.ring.release_held();
        let done = self.ring.wait_empty(element, push).map_err(|e| {
            gst::element_error!(element, gst::StreamError::Encode, ["{e}"]);
            gst::FlowError::Error
        })?;
        for d in done {
            if push {
                finish_one(element, d)?;
            } else if let Some(f) = element.frame(d.frame_number as i32) {
                drop(f);
            }
        }
        Ok(())
    }

    /// Stops the output thread and frees the ring, then the session. `stream_locked`: the
    /// caller holds the stream lock (flush, set_format), released while joining the output
    /// thread, which may be waiting for it.
    pub fn stop(mut self, element: &gst_video::VideoEncoder, stream_locked: bool) {
        self.ring.shut_down();
        // The output thread may be blocked in nvEncLockBitstream on a frame NVENC still holds:
        // EOS releases it.
        let _ = self.session.send_eos();
        if let Some(t) = self.thread.take() {
            let _unlocked = stream_locked.then(|| StreamUnlock::new(element));
            let _ = t.join();
        }
        // Slots (buffers) drop before the session: they hold Arc<Session>.
    }
}

/// Sets timestamps and flags of a finished frame and hands it to the base class.
fn finish_one(
    element: &gst_video::VideoEncoder,
    d: Done,
) -> Result<gst::FlowSuccess, gst::FlowError> {
    let _r = nvtx::range(c"rsnvenc finish");
    let Some(mut frame) = element.frame(d.frame_number as i32) else {
        gst::warning!(CAT, obj = element, "no frame {} pending", d.frame_number);
        return Ok(gst::FlowSuccess::Ok);
    };
    let dts = d.dts.or(frame.pts());
    frame.set_dts(dts);
    if d.keyframe {
        frame.set_flags(gst_video::VideoCodecFrameFlags::SYNC_POINT);
    }
    frame.set_output_buffer(d.buffer);
    element.finish_frame(frame)
}

/// What the output thread needs besides the session and the ring.
pub struct Output {
    pub element: gst_video::VideoEncoder,
    pub ops: &'static dyn CodecOps,
    pub format: StreamFormat,
    pub stats: Arc<RunningStats>,
    pub settings: Arc<Store>,
}

/// Starts the output thread ([`output_loop`]).
pub fn spawn_output_thread(
    session: Arc<Session>,
    ring: Arc<Ring>,
    out: Output,
) -> Result<JoinHandle<()>, NvEncError> {
    std::thread::Builder::new()
        .name("rsnvenc-output".into())
        .spawn(move || output_loop(&session, &ring, &out))
        .map_err(|e| NvEncError::Other(format!("cannot start output thread: {e}")))
}

/// The output thread: locks bitstream buffers in submission order, returns slots to the ring,
/// then finishes frames under the encoder's stream lock.
fn output_loop(session: &Session, ring: &Ring, out: &Output) {
    let element = &out.element;
    let mut done = VecDeque::new();
    while let Some((slot, dts)) = ring.next_pending() {
        let locked = nvtx::range(c"rsnvenc bitstream lock");
        let res = session.with_locked_bitstream(&slot.output, |info, data| {
            out.stats.picture_out(data.len());
            let converted = out.ops.convert_output(data, out.format);
            let stats = out
                .settings
                .emit_frame_stats()
                .then(|| stats::frame_structure(info, data.len()));
            (
                info.output_timestamp as u32,
                info.picture_type == ffi::NV_ENC_PIC_TYPE_IDR,
                gst::Buffer::from_mut_slice(converted),
                stats,
            )
        });
        drop(locked);
        // Statistics go out before any lock is taken (handlers may do anything).
        let res = res.map(|(n, key, buffer, stats)| {
            if let Some(st) = stats {
                element.emit_by_name::<()>("frame-stats", &[&st]);
            }
            (n, key, buffer)
        });
        if let Err(e) = &res {
            gst::error!(CAT, obj = element, "{e}");
        }
        let mut slot = slot;
        // The bitstream is out: NVENC's mapping, then upstream's memory, can go.
        slot.cuda = None;
        let (shutdown, warning) = ring.returned(slot, res, dts);
        if let Some(w) = warning {
            gst::warning!(CAT, obj = element, "{w}");
        }
        if shutdown {
            continue;
        }
        // Finish what is done, under the stream lock (the streaming thread may have drained
        // it already while it held the lock: then there is nothing left).
        let _lock = StreamLock::new(element);
        if !ring.take_done(&mut done) {
            continue;
        }
        for d in done.drain(..) {
            if let Err(e) = finish_one(element, d) {
                gst::debug!(CAT, obj = element, "finish_frame: {e:?}");
                if e != gst::FlowError::Flushing && e != gst::FlowError::Eos {
                    ring.fail(NvEncError::Other(format!("downstream: {e:?}")));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dts_follow_a_new_frame_rate() {
        let ms = gst::ClockTime::from_mseconds;
        let base = gst::ClockTime::from_seconds(1000);
        let mut d = Dts {
            delay: 2,
            offset: ms(80),
            recent: VecDeque::new(),
        };
        // 25 fps, then 10 fps; submitted in display order, coded I0 P3 B1 B2 P6 B4 B5 ...
        let pts: Vec<gst::ClockTime> = (0..6)
            .map(|i| base + ms(40) * i)
            .chain((0..6).map(|i| base + ms(240) + ms(100) * i))
            .collect();
        let dts: Vec<gst::ClockTime> = pts.iter().map(|p| d.next(Some(*p)).unwrap()).collect();
        assert_eq!(&dts[..3], &[base - ms(80), base - ms(40), base]);
        assert!(dts.windows(2).all(|w| w[0] < w[1]), "{dts:?}");
        // Coded order: anchors first, each mini-GOP's B-frames after it.
        let coded = [0usize, 3, 1, 2, 6, 4, 5, 9, 7, 8];
        for (k, &f) in coded.iter().enumerate() {
            assert!(dts[k] <= pts[f], "picture {k} (frame {f}): {dts:?}");
        }
    }

    fn done_numbers<S>(ring: &Ring<S>) -> Vec<u32> {
        let mut done = VecDeque::new();
        ring.take_done(&mut done);
        done.iter().map(|d| d.frame_number).collect()
    }

    #[test]
    fn idr_every_period_and_on_force() {
        let mut p = IdrPrediction::new(3);
        let got: Vec<bool> = (0..7).map(|i| p.next(i == 4)).collect();
        assert_eq!(got, [true, false, false, true, true, false, false]);
        p.restart();
        assert!(p.next(false));
        let mut inf = IdrPrediction::new(u32::MAX);
        assert!(inf.next(false));
        assert!((0..100).all(|_| !inf.next(false)));
        assert!(inf.next(true));
    }

    #[test]
    fn held_pictures_go_out_in_submission_order() {
        gst::init().unwrap();
        let ring: Arc<Ring<u32>> = Ring::new(vec![], false, 0, gst::ClockTime::ZERO);
        let t = |n| Some(gst::ClockTime::from_mseconds(n));
        ring.submitted(1, t(1), EncodeStatus::NeedMoreInput);
        ring.submitted(2, t(2), EncodeStatus::NeedMoreInput);
        assert_eq!(ring.in_flight(), 2);
        assert!(lock(&ring.q).pending.is_empty(), "held until a SUCCESS");
        ring.submitted(3, t(3), EncodeStatus::Success);
        let order: Vec<_> = std::iter::from_fn(|| {
            lock(&ring.q).pending.front()?;
            ring.next_pending()
        })
        .collect();
        assert_eq!(order, [(1, t(1)), (2, t(2)), (3, t(3))]);
        assert_eq!(ring.in_flight(), 3, "the output thread holds them");
        for (slot, pts) in order {
            let (shutdown, warning) =
                ring.returned(slot, Ok((slot * 10, slot == 1, gst::Buffer::new())), pts);
            assert!(!shutdown && warning.is_none());
        }
        assert_eq!(ring.in_flight(), 0);
        assert_eq!(lock(&ring.q).free, [1, 2, 3]);
        assert_eq!(done_numbers(&ring), [10, 20, 30]);
    }

    #[test]
    fn eos_releases_held_pictures() {
        gst::init().unwrap();
        let ring: Arc<Ring<u32>> = Ring::new(vec![], false, 0, gst::ClockTime::ZERO);
        ring.submitted(7, None, EncodeStatus::NeedMoreInput);
        ring.release_held();
        assert_eq!(ring.next_pending(), Some((7, None)));
        ring.shut_down();
        assert_eq!(ring.next_pending(), None, "nothing left, shutting down");
    }

    #[test]
    fn hdr_on_a_non_idr_is_reported_and_errors_kept() {
        gst::init().unwrap();
        let ring: Arc<Ring<u32>> = Ring::new(vec![], true, 0, gst::ClockTime::ZERO);
        ring.with_hdr(5);
        for n in [5, 6] {
            ring.submitted(n, None, EncodeStatus::Success);
            let (slot, pts) = ring.next_pending().unwrap();
            // 5 came with HDR but is no IDR; 6 is an IDR without it.
            let (_, w) = ring.returned(slot, Ok((n, n == 6, gst::Buffer::new())), pts);
            assert!(w.unwrap().contains("IDR prediction missed"));
        }
        ring.submitted(8, None, EncodeStatus::Success);
        let (slot, pts) = ring.next_pending().unwrap();
        ring.returned(slot, Err(NvEncError::Other("boom".into())), pts);
        ring.fail(NvEncError::Other("later".into()));
        assert!(
            lock(&ring.q)
                .error
                .as_ref()
                .unwrap()
                .to_string()
                .contains("boom")
        );
        lock(&ring.q).discard = true;
        let mut done = VecDeque::new();
        assert!(!ring.take_done(&mut done), "flushing: dropped");
        assert!(done.is_empty());
    }
}
