//! Software encoding backend of the NVENC emulator.
//!
//! A safe wrapper around a small C shim (`csrc/swenc.c`) over libavcodec (libx264,
//! libaom-av1), libx265's own API and libswscale. The API is fixed by `docs/emulator-contract.md`.
//!
//! Behaviour worth knowing (details in the contract doc):
//! - The encoder follows the picture kinds it is asked for: `Idr` gives an IDR/key frame with
//!   the sequence header in band, `I` a non-IDR intra frame (H.265; H.264 and AV1 cannot code a
//!   forced non-IDR intra frame through libavcodec and give an IDR/key frame), `P`/`B` those
//!   types. H.264/H.265 B-frames come out in coded order (P3 B1 B2). AV1 has no reordering
//!   here: `B` is coded as an inter frame in display order (the packet reports kind `B`).
//! - Packets are pulled from the encoder right after each `send`, so `receive` never waits;
//!   `delay()` tells how many more frames the encoder holds back.
//! - `drain` flushes, then reopens the encoder: the next frame is an IDR.

use std::collections::{HashMap, VecDeque};
use std::ffi::{CStr, c_char};
use std::ptr::NonNull;
use std::sync::OnceLock;

mod ffi {
    use std::ffi::c_char;

    #[repr(C)]
    pub struct SwencCtx {
        _opaque: [u8; 0],
    }

    /// Mirrors `SwencConfig` in `csrc/swenc.h`.
    #[repr(C)]
    #[derive(Clone, Copy)]
    pub struct SwencConfig {
        pub codec: i32,
        pub width: i32,
        pub height: i32,
        pub bit_depth: i32,
        pub chroma_444: i32,
        pub fps_num: i32,
        pub fps_den: i32,
        pub gop_length: i32,
        pub b_frames: i32,
        pub rc_mode: i32,
        pub qp_i: i32,
        pub qp_p: i32,
        pub qp_b: i32,
        pub avg_bps: i64,
        pub max_bps: i64,
        pub vbv_bits: i64,
        pub target_quality: f32,
        pub has_colour: i32,
        pub primaries: i32,
        pub transfer: i32,
        pub matrix: i32,
        pub full_range: i32,
        pub repeat_headers: i32,
        pub speed: i32,
        pub h264_profile: i32,
        pub lossless: i32,
        pub pic_struct: i32,
    }

    /// Mirrors `SwencPacket` in `csrc/swenc.h`.
    #[repr(C)]
    pub struct SwencPacket {
        pub data: *const u8,
        pub size: usize,
        pub pts: i64,
        pub key: i32,
        pub pict_type: i32,
        pub qp: f64,
    }

    unsafe extern "C" {
        pub fn swenc_open(
            cfg: *const SwencConfig,
            err: *mut c_char,
            errlen: usize,
        ) -> *mut SwencCtx;
        pub fn swenc_send(
            c: *mut SwencCtx,
            fmt: i32,
            data: *const u8,
            len: usize,
            pitch: usize,
            height_alloc: u32,
            pts: i64,
            kind: i32,
            err: *mut c_char,
            errlen: usize,
        ) -> i32;
        pub fn swenc_receive(
            c: *mut SwencCtx,
            out: *mut SwencPacket,
            err: *mut c_char,
            errlen: usize,
        ) -> i32;
        pub fn swenc_set_rate(
            c: *mut SwencCtx,
            avg_bps: i64,
            max_bps: i64,
            vbv_bits: i64,
            err: *mut c_char,
            errlen: usize,
        ) -> i32;
        pub fn swenc_set_quality(
            c: *mut SwencCtx,
            qp_i: i32,
            qp_p: i32,
            qp_b: i32,
            tq: f32,
            err: *mut c_char,
            errlen: usize,
        ) -> i32;
        pub fn swenc_x265_headers(
            c: *mut SwencCtx,
            out: *mut u8,
            cap: usize,
            len: *mut usize,
        ) -> i32;
        pub fn swenc_set_qp_map(
            c: *mut SwencCtx,
            map: *const i8,
            cols: i32,
            rows: i32,
            block: i32,
            err: *mut c_char,
            errlen: usize,
        ) -> i32;
        pub fn swenc_close(c: *mut SwencCtx);
    }
}

/// Output codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    H264,
    Hevc,
    Av1,
}

/// NVENC input buffer formats (`NV_ENC_BUFFER_FORMAT_*`), laid out as NVENC lays them out in
/// one buffer: luma `pitch` bytes per row, chroma at `pitch * height_alloc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InputFormat {
    /// Y plane, then interleaved UV.
    Nv12,
    /// Y, V, U planes; chroma pitch `pitch / 2`.
    Yv12,
    /// Y, U, V planes; chroma pitch `pitch / 2`.
    Iyuv,
    /// Y, U, V full-size planes at `pitch * height_alloc` steps.
    Yuv444,
    /// P010: 16-bit little-endian words, data in the high 10 bits, Y then interleaved UV.
    Yuv420_10bit,
    /// Three 16-bit planes (data in the high bits) at `pitch * height_alloc` steps.
    Yuv444_10bit,
    /// 32-bit words A8R8G8B8 (B in the lowest byte: memory order B, G, R, A).
    Argb,
    /// 32-bit words A8B8G8R8 (R in the lowest byte: memory order R, G, B, A).
    Abgr,
    /// 32-bit words A8Y8U8V8 (V in the lowest byte: memory order V, U, Y, A).
    Ayuv,
    /// 32-bit words A2R10G10B10 (B in the lowest 10 bits).
    Argb10,
    /// 32-bit words A2B10G10R10 (R in the lowest 10 bits).
    Abgr10,
}

/// Rate control.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RateControl {
    /// Constant QP per picture type. H.264/H.265: 0..=51. AV1: qindex 0..=255 (as NVENC).
    ConstQp {
        i: u32,
        p: u32,
        b: u32,
    },
    Vbr {
        avg_bps: u32,
        max_bps: u32,
        vbv_bits: u32,
        target_quality: Option<f32>,
    },
    Cbr {
        bps: u32,
        vbv_bits: u32,
    },
}

/// Colour description, ISO/IEC 23091-4 code points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Colour {
    pub primaries: u32,
    pub transfer: u32,
    pub matrix: u32,
    pub full_range: bool,
}

/// Encoder configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub codec: Codec,
    /// Encode size (may be odd for AV1; even for 4:2:0 H.264/H.265).
    pub width: u32,
    pub height: u32,
    /// 8 or 10.
    pub bit_depth: u32,
    pub chroma_444: bool,
    pub fps_num: u32,
    pub fps_den: u32,
    /// Distance between key frames; `None` = infinite.
    pub gop_length: Option<u32>,
    /// frameIntervalP - 1.
    pub b_frames: u32,
    pub rc: RateControl,
    pub colour: Option<Colour>,
    /// Sequence headers on every IDR/key frame.
    pub repeat_headers: bool,
    /// 1 (slowest) ..= 7 (fastest).
    pub speed: u32,
    /// H.264 profile to code (ignored for the other codecs).
    pub h264_profile: H264Profile,
    /// Lossless coding (NVENC's lossless tuning): H.264 at QP 0 with transform bypass (High
    /// 4:4:4 Predictive: `h264_profile` must be `Auto` or `High444`), H.265 with
    /// `cu_transquant_bypass` (x265 `lossless`); the rate control must be `ConstQp` 0. AV1: an
    /// error (libaom through libavcodec is not lossless at these settings).
    pub lossless: bool,
    /// H.264: a picture timing SEI on every picture with `pic_struct` (x264 `pic-struct`:
    /// `pic_struct_present_flag` 1 in the VUI, no HRD, `clock_timestamp_flag` 0), which the
    /// caller may rewrite with clock timestamps. An error for the other codecs.
    pub pic_struct: bool,
}

/// H.264 profile (NVENC's profile GUIDs): `Auto` lets x264 choose (High for 4:2:0 8-bit, High
/// 4:4:4 Predictive for 4:4:4); the others are imposed, and a configuration the profile cannot
/// code (Baseline with B-frames, Main with 4:4:4) fails at `SwEncoder::new`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum H264Profile {
    #[default]
    Auto,
    Baseline,
    Main,
    High,
    High444,
}

/// Picture type, asked for (`send`) or produced (`Packet::kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PicKind {
    Auto,
    Idr,
    I,
    P,
    B,
}

/// One coded picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub data: Vec<u8>,
    /// The pts given to `send` for this picture.
    pub pts: i64,
    /// IDR / key frame.
    pub key: bool,
    pub kind: PicKind,
    /// The picture's average QP as the encoder reports it (rounded; libx264, libx265), `None`
    /// where it does not (libaom, the null backend).
    pub avg_qp: Option<u32>,
}

/// A software encoder. See the crate documentation.
pub struct SwEncoder {
    cfg: Config,
    raw: ffi::SwencConfig,
    /// `None` after `drain` (re-opened by the next call that needs it: no encoder is opened
    /// for a stream that ends there) or after a reopen failed (`reopen_error` says why).
    ctx: Option<NonNull<ffi::SwencCtx>>,
    reopen_error: String,
    /// Frame number given to the encoder -> (caller's pts, kind asked for).
    in_flight: HashMap<i64, (i64, PicKind)>,
    next_id: i64,
    /// A key frame with in-band headers went out since the encoder was (re)opened.
    headers_sent: bool,
    ready: VecDeque<Packet>,
    seq_header: OnceLock<Vec<u8>>,
    /// Serialises the x265 header query of `sequence_header` (a `&self` method).
    header_lock: std::sync::Mutex<()>,
    /// `NVEMU_BACKEND=null`: no encoding, placeholder pictures (see [`SwEncoder::new`]).
    null: bool,
    /// Null backend: B-frames waiting for their anchor (coded order: anchor first).
    held_b: Vec<(i64, PicKind)>,
}

// SAFETY: the C context is only touched through `&mut self` (send/receive/drain/drop), so it is
// never used from two threads at once; libavcodec encoders may move between threads.
unsafe impl Send for SwEncoder {}
// SAFETY: the `&self` methods (`delay`, `config`) never touch `ctx`; `sequence_header` touches
// it only for H.265 (x265_encoder_headers), under `header_lock`, so never from two threads at
// once, and never while a `&mut self` method runs (Rust's borrow rules); the header cache is a
// `OnceLock`.
unsafe impl Sync for SwEncoder {}

const ERRLEN: usize = 512;

fn err_text(buf: &[c_char; ERRLEN]) -> String {
    // SAFETY: the buffer is zero-initialised and the C side always NUL-terminates within it
    // (vsnprintf), so there is a NUL inside the array.
    let s = unsafe { CStr::from_ptr(buf.as_ptr()) };
    let s = s.to_string_lossy().into_owned();
    if s.is_empty() {
        "unknown error".to_owned()
    } else {
        s
    }
}

fn raw_config(cfg: &Config) -> Result<ffi::SwencConfig, String> {
    let i32_of = |v: u32, what: &str| -> Result<i32, String> {
        i32::try_from(v).map_err(|_| format!("{what} {v} out of range"))
    };
    if !(1..=7).contains(&cfg.speed) {
        return Err(format!("speed {} is not in 1..=7", cfg.speed));
    }
    if cfg.codec == Codec::H264 && cfg.h264_profile == H264Profile::Baseline && cfg.b_frames > 0 {
        // x264 would silently code no B-frames (x264_param_apply_profile).
        return Err("the H.264 Baseline profile has no B-frames".to_owned());
    }
    if cfg.pic_struct && cfg.codec != Codec::H264 {
        return Err("pic_struct (picture timing SEI) is H.264 only here".to_owned());
    }
    if cfg.lossless {
        if cfg.codec == Codec::Av1 {
            return Err("lossless AV1 is not supported".to_owned());
        }
        if cfg.rc != (RateControl::ConstQp { i: 0, p: 0, b: 0 }) {
            return Err(format!("lossless needs constant QP 0, not {:?}", cfg.rc));
        }
        if !matches!(cfg.h264_profile, H264Profile::Auto | H264Profile::High444) {
            return Err(format!(
                "lossless H.264 needs the High 4:4:4 Predictive profile, not {:?}",
                cfg.h264_profile
            ));
        }
    }
    let (rc_mode, qp_i, qp_p, qp_b, avg, max, vbv, tq) = match cfg.rc {
        RateControl::ConstQp { i, p, b } => {
            let lim = if cfg.codec == Codec::Av1 { 255 } else { 51 };
            if i > lim || p > lim || b > lim {
                return Err(format!("constant QP {i}/{p}/{b} above {lim}"));
            }
            (0, i as i32, p as i32, b as i32, 0, 0, 0, -1.0)
        }
        RateControl::Vbr {
            avg_bps,
            max_bps,
            vbv_bits,
            target_quality,
        } => (
            1,
            0,
            0,
            0,
            avg_bps as i64,
            max_bps as i64,
            vbv_bits as i64,
            target_quality.unwrap_or(-1.0),
        ),
        RateControl::Cbr { bps, vbv_bits } => {
            (2, 0, 0, 0, bps as i64, bps as i64, vbv_bits as i64, -1.0)
        }
    };
    if rc_mode != 0 && avg <= 0 && tq < 0.0 {
        return Err("bitrate of 0 for VBR/CBR".to_owned());
    }
    let colour = cfg.colour.unwrap_or(Colour {
        primaries: 2,
        transfer: 2,
        matrix: 2,
        full_range: false,
    });
    Ok(ffi::SwencConfig {
        codec: match cfg.codec {
            Codec::H264 => 0,
            Codec::Hevc => 1,
            Codec::Av1 => 2,
        },
        width: i32_of(cfg.width, "width")?,
        height: i32_of(cfg.height, "height")?,
        bit_depth: i32_of(cfg.bit_depth, "bit depth")?,
        chroma_444: cfg.chroma_444 as i32,
        fps_num: i32_of(cfg.fps_num, "fps_num")?,
        fps_den: i32_of(cfg.fps_den, "fps_den")?,
        gop_length: match cfg.gop_length {
            None => 0,
            Some(0) => return Err("gop_length 0".to_owned()),
            Some(g) => i32_of(g.min(1 << 30), "gop_length")?,
        },
        b_frames: i32_of(cfg.b_frames, "b_frames")?,
        rc_mode,
        qp_i,
        qp_p,
        qp_b,
        avg_bps: avg,
        max_bps: max,
        vbv_bits: vbv,
        target_quality: tq,
        has_colour: cfg.colour.is_some() as i32,
        primaries: i32_of(colour.primaries, "colour primaries")?,
        transfer: i32_of(colour.transfer, "transfer")?,
        matrix: i32_of(colour.matrix, "matrix")?,
        full_range: colour.full_range as i32,
        repeat_headers: cfg.repeat_headers as i32,
        speed: cfg.speed as i32,
        // profile_idc
        h264_profile: match cfg.h264_profile {
            H264Profile::Auto => 0,
            H264Profile::Baseline => 66,
            H264Profile::Main => 77,
            H264Profile::High => 100,
            H264Profile::High444 => 244,
        },
        lossless: cfg.lossless as i32,
        pic_struct: cfg.pic_struct as i32,
    })
}

fn open_raw(raw: &ffi::SwencConfig) -> Result<NonNull<ffi::SwencCtx>, String> {
    let mut err = [0 as c_char; ERRLEN];
    // SAFETY: `raw` is a valid SwencConfig (repr(C), mirrors the header) and `err` is a
    // writable buffer of ERRLEN bytes; the C side copies the config.
    let ctx = unsafe { ffi::swenc_open(raw, err.as_mut_ptr(), ERRLEN) };
    NonNull::new(ctx).ok_or_else(|| err_text(&err))
}

fn fmt_code(fmt: InputFormat) -> i32 {
    match fmt {
        InputFormat::Nv12 => 0,
        InputFormat::Yv12 => 1,
        InputFormat::Iyuv => 2,
        InputFormat::Yuv444 => 3,
        InputFormat::Yuv420_10bit => 4,
        InputFormat::Yuv444_10bit => 5,
        InputFormat::Argb => 6,
        InputFormat::Abgr => 7,
        InputFormat::Ayuv => 8,
        InputFormat::Argb10 => 9,
        InputFormat::Abgr10 => 10,
    }
}

fn kind_code(kind: PicKind) -> i32 {
    match kind {
        PicKind::Auto => 0,
        PicKind::Idr => 1,
        PicKind::I => 2,
        PicKind::P => 3,
        PicKind::B => 4,
    }
}

impl SwEncoder {
    /// Opens an encoder for `cfg`.
    ///
    /// With `NVEMU_BACKEND=null` nothing is encoded: each picture comes out at once (coded
    /// order, B-frames after their anchor) as a 16-byte placeholder of the codec's syntax
    /// (an H.264/H.265 slice NAL header, an AV1 padding OBU), IDRs with the real sequence
    /// header in front. For throughput work on the host side; the output does not decode.
    pub fn new(cfg: &Config) -> Result<SwEncoder, String> {
        Self::with_backend(
            cfg,
            std::env::var("NVEMU_BACKEND").is_ok_and(|v| v == "null"),
        )
    }

    /// [`SwEncoder::new`] with the backend chosen by the caller (`null == true`: placeholders).
    pub fn with_backend(cfg: &Config, null: bool) -> Result<SwEncoder, String> {
        let raw = raw_config(cfg)?;
        let ctx = if null { None } else { Some(open_raw(&raw)?) };
        Ok(SwEncoder {
            cfg: cfg.clone(),
            raw,
            ctx,
            null,
            held_b: Vec::new(),
            reopen_error: String::new(),
            in_flight: HashMap::new(),
            next_id: 0,
            headers_sent: false,
            ready: VecDeque::new(),
            seq_header: OnceLock::new(),
            header_lock: std::sync::Mutex::new(()),
        })
    }

    /// The configuration the encoder was opened with.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// How many frames the encoder holds back beyond what NVENC holds: NVENC has every frame
    /// up to the last non-B frame sent coded right after that `send`; this encoder has them
    /// all out after at most `delay()` further `send` calls (or at `drain`). Measured by
    /// tests/encode.rs `measured_delay_matches_delay`:
    /// - libaom-av1 (realtime, lag-in-frames 0), any `b_frames`: 0.
    /// - libx265 and libx264 with `b_frames == 0` (zerolatency, one frame thread): 0.
    /// - libx264 with `b_frames == n > 0` (rc-lookahead 0, one thread): `n + 1` (x264 decides
    ///   a mini-GOP once it has its anchor, and libavcodec returns one packet per `send`).
    /// - libx265 with `b_frames == n > 0`: 0 (the shim flushes x265 after every anchor frame
    ///   and re-arms its lookahead, see csrc/swenc.c; without that it would be `2n + 4`).
    pub fn delay(&self) -> u32 {
        let n = self.cfg.b_frames;
        match self.cfg.codec {
            Codec::Av1 | Codec::Hevc => 0,
            _ if n == 0 => 0,
            Codec::H264 => n + 1,
        }
    }

    /// Sequence header: H.264 SPS+PPS, H.265 VPS+SPS+PPS (Annex B, with start codes), AV1
    /// sequence header OBU. Byte-identical to the in-band one.
    pub fn sequence_header(&self) -> Result<Vec<u8>, String> {
        if let Some(h) = self.seq_header.get() {
            return Ok(h.clone());
        }
        let h = if self.cfg.codec == Codec::Hevc && !self.null && self.ctx.is_some() {
            // x265 gives its parameter sets without coding a frame: no throwaway encoder, whose
            // x265_encoder_open would leak x265 3.5's 1.2 KB (its `zoneParam` is never freed).
            let _g = self.header_lock.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(h) = self.seq_header.get() {
                return Ok(h.clone());
            }
            let ctx = self.ctx()?;
            let mut buf = vec![0u8; 4096];
            let mut len = 0usize;
            // SAFETY: `ctx` is the live context this wrapper owns (the lock keeps two
            // `&self` callers apart; `&mut self` methods cannot run meanwhile); `buf` has
            // `buf.len()` writable bytes and `len` is a valid out-parameter.
            let r = unsafe {
                ffi::swenc_x265_headers(ctx.as_ptr(), buf.as_mut_ptr(), buf.len(), &mut len)
            };
            if r != 1 {
                return Err(format!("x265_encoder_headers failed ({r}, {len} bytes)"));
            }
            buf.truncate(len);
            buf
        } else {
            probe_header(&self.cfg, &self.raw)?
        };
        Ok(self.seq_header.get_or_init(|| h).clone())
    }

    fn ctx(&self) -> Result<NonNull<ffi::SwencCtx>, String> {
        self.ctx
            .ok_or_else(|| format!("encoder could not be reopened: {}", self.reopen_error))
    }

    /// Encodes one frame laid out as NVENC lays it out in one buffer.
    pub fn send(
        &mut self,
        fmt: InputFormat,
        data: &[u8],
        pitch: usize,
        height_alloc: u32,
        pts: i64,
        kind: PicKind,
    ) -> Result<(), String> {
        if self.null {
            return self.send_null(pts, kind);
        }
        self.ensure_open()?;
        let ctx = self.ctx()?;
        let id = self.next_id;
        let mut err = [0 as c_char; ERRLEN];
        // SAFETY: ctx is a live context owned by self (&mut self: no concurrent use); data and
        // len describe a readable slice that outlives the call (the C side copies what it
        // needs and checks every plane against len); err is ERRLEN writable bytes.
        let r = unsafe {
            ffi::swenc_send(
                ctx.as_ptr(),
                fmt_code(fmt),
                data.as_ptr(),
                data.len(),
                pitch,
                height_alloc,
                id,
                kind_code(kind),
                err.as_mut_ptr(),
                ERRLEN,
            )
        };
        if r < 0 {
            return Err(err_text(&err));
        }
        self.next_id += 1;
        self.in_flight.insert(id, (pts, kind));
        self.pull()?;
        Ok(())
    }

    /// A QP delta map for the next frame [`SwEncoder::send`] takes: `cols` x `rows` signed QP
    /// offsets of `block` x `block` pixels in raster order (NVENC's `qpDeltaMap`). libx264
    /// honours it per macroblock (through libavcodec's regions of interest, which need its
    /// adaptive quantisation: not with constant QP), libx265 per 16x16 block
    /// (`x265_picture.quantOffsets`); libaom and the null backend ignore it. `Ok(true)`: it will
    /// be honoured. Errors: a map shorter than `cols * rows`, the encoder's.
    pub fn set_qp_map(
        &mut self,
        deltas: &[i8],
        cols: u32,
        rows: u32,
        block: u32,
    ) -> Result<bool, String> {
        if self.null || self.cfg.codec == Codec::Av1 {
            return Ok(false);
        }
        if deltas.len() < cols as usize * rows as usize || cols == 0 || rows == 0 || block == 0 {
            return Err(format!(
                "QP map of {} bytes for {cols}x{rows} blocks of {block}",
                deltas.len()
            ));
        }
        self.ensure_open()?;
        let ctx = self.ctx()?;
        let mut err = [0 as c_char; ERRLEN];
        // SAFETY: ctx is live and exclusively ours (&mut self); `deltas` holds at least
        // cols * rows bytes (checked above), which the C side copies; err is ERRLEN bytes.
        let r = unsafe {
            ffi::swenc_set_qp_map(
                ctx.as_ptr(),
                deltas.as_ptr(),
                cols as i32,
                rows as i32,
                block as i32,
                err.as_mut_ptr(),
                ERRLEN,
            )
        };
        if r < 0 {
            return Err(err_text(&err));
        }
        Ok(r == 1)
    }

    /// The next coded picture, if one is ready.
    pub fn receive(&mut self) -> Result<Option<Packet>, String> {
        Ok(self.ready.pop_front())
    }

    /// Changes the rate control within its mode without ending the sequence. `Ok(false)`:
    /// this encoder or mode cannot (see [`SwEncoder::set_rate`]): nothing changed, the caller
    /// re-opens the encoder instead. Same as [`SwEncoder::set_rate`] at the current frame
    /// rate.
    pub fn set_rate_control(&mut self, rc: &RateControl) -> Result<bool, String> {
        let (n, d) = (self.cfg.fps_num, self.cfg.fps_den);
        self.set_rate(rc, n, d)
    }

    /// Changes the rate control within its mode and the frame rate (`fps_num / fps_den`,
    /// frames per second) without ending the sequence:
    /// - CBR and VBR without target quality (VBV on from the start): the rates, on libx264
    ///   (through libavcodec's live reconfiguration) and libx265 (a per-picture QP controller,
    ///   see csrc/swenc.c). The encoders keep the frame rate they were opened with (neither can
    ///   change it live); a new frame rate is applied as the bits per frame it gives: the
    ///   encoder's rates are scaled by `opened fps / new fps` (the VBV size, in bits, is not).
    /// - Constant QP to new QPs: libx265 (a fixed QP per picture type, `forceqp`); libx264
    ///   and libaom cannot (`Ok(false)`).
    /// - VBR target quality to a new one (same rates): libx264 (`x264_encoder_reconfig` of the
    ///   CRF); libx265 approximates it with a fixed QP per picture type moved by the change
    ///   (see `swenc_set_quality`); libaom cannot.
    ///
    /// Constant QP and target quality do not depend on the frame rate: a new frame rate alone
    /// is taken as it is. `Ok(false)`: this encoder or mode cannot; nothing changed. Errors:
    /// the encoder's, as text.
    pub fn set_rate(
        &mut self,
        rc: &RateControl,
        fps_num: u32,
        fps_den: u32,
    ) -> Result<bool, String> {
        if fps_num == 0 || fps_den == 0 {
            return Err(format!("frame rate {fps_num}/{fps_den}"));
        }
        let quality = match (*rc, self.cfg.rc) {
            (RateControl::ConstQp { .. }, RateControl::ConstQp { .. }) => true,
            (
                RateControl::Vbr {
                    avg_bps,
                    max_bps,
                    vbv_bits,
                    target_quality: Some(_),
                },
                RateControl::Vbr {
                    avg_bps: a0,
                    max_bps: m0,
                    vbv_bits: v0,
                    target_quality: Some(_),
                },
            ) => (avg_bps, max_bps, vbv_bits) == (a0, m0, v0),
            _ => false,
        };
        if quality {
            return self.set_quality(rc, fps_num, fps_den);
        }
        let (avg, max, vbv) = match (*rc, self.cfg.rc) {
            (RateControl::Cbr { bps, vbv_bits }, RateControl::Cbr { .. }) => (bps, bps, vbv_bits),
            (
                RateControl::Vbr {
                    avg_bps,
                    max_bps,
                    vbv_bits,
                    target_quality: None,
                },
                RateControl::Vbr {
                    target_quality: None,
                    ..
                },
            ) => (avg_bps, max_bps, vbv_bits),
            _ => return Ok(false),
        };
        // Bits per frame at the new frame rate = rate * (opened fps / new fps).
        let scale =
            (self.raw.fps_num as f64 * fps_den as f64) / (self.raw.fps_den as f64 * fps_num as f64);
        let scaled = |v: u32| ((v as f64 * scale).round() as i64).max(if v > 0 { 1 } else { 0 });
        if self.null {
            self.cfg.rc = *rc;
            (self.cfg.fps_num, self.cfg.fps_den) = (fps_num, fps_den);
            return Ok(true);
        }
        self.ensure_open()?;
        let Some(ctx) = self.ctx else {
            return Err(self.reopen_error.clone());
        };
        let mut err = [0 as c_char; ERRLEN];
        let (avg_e, max_e) = (scaled(avg), scaled(max));
        // SAFETY: `ctx` is the live context this wrapper owns; `err` has ERRLEN bytes.
        let r = unsafe {
            ffi::swenc_set_rate(
                ctx.as_ptr(),
                avg_e,
                max_e,
                vbv as i64,
                err.as_mut_ptr(),
                ERRLEN,
            )
        };
        match r {
            1 => {
                self.cfg.rc = *rc;
                (self.cfg.fps_num, self.cfg.fps_den) = (fps_num, fps_den);
                // A re-open after a drain starts from the rates in force.
                self.raw.avg_bps = avg_e;
                self.raw.max_bps = max_e;
                if vbv > 0 {
                    self.raw.vbv_bits = vbv as i64;
                }
                Ok(true)
            }
            0 => Ok(false),
            _ => Err(err_text(&err)),
        }
    }

    /// [`SwEncoder::set_rate`] for constant QP and target quality (`rc` of the same kind as
    /// the encoder's).
    fn set_quality(
        &mut self,
        rc: &RateControl,
        fps_num: u32,
        fps_den: u32,
    ) -> Result<bool, String> {
        let (i, p, b, tq) = match *rc {
            RateControl::ConstQp { i, p, b } => {
                let lim = if self.cfg.codec == Codec::Av1 {
                    255
                } else {
                    51
                };
                if i > lim || p > lim || b > lim {
                    return Err(format!("constant QP {i}/{p}/{b} above {lim}"));
                }
                (i as i32, p as i32, b as i32, -1.0)
            }
            RateControl::Vbr {
                target_quality: Some(q),
                ..
            } => (0, 0, 0, q),
            _ => return Ok(false),
        };
        if *rc != self.cfg.rc && !self.null {
            self.ensure_open()?;
            let Some(ctx) = self.ctx else {
                return Err(self.reopen_error.clone());
            };
            let mut err = [0 as c_char; ERRLEN];
            // SAFETY: `ctx` is the live context this wrapper owns (&mut self: no concurrent
            // use); `err` has ERRLEN writable bytes.
            let r = unsafe {
                ffi::swenc_set_quality(ctx.as_ptr(), i, p, b, tq, err.as_mut_ptr(), ERRLEN)
            };
            match r {
                1 => {}
                0 => return Ok(false),
                _ => return Err(err_text(&err)),
            }
        }
        self.cfg.rc = *rc;
        (self.cfg.fps_num, self.cfg.fps_den) = (fps_num, fps_den);
        // A re-open after a drain starts from the values in force.
        if tq >= 0.0 {
            self.raw.target_quality = tq;
        } else {
            (self.raw.qp_i, self.raw.qp_p, self.raw.qp_b) = (i, p, b);
        }
        Ok(true)
    }

    /// Opens the encoder again after `drain` (a new sequence: the next frame is an IDR).
    fn ensure_open(&mut self) -> Result<(), String> {
        if self.ctx.is_some() || !self.reopen_error.is_empty() {
            return Ok(());
        }
        match open_raw(&self.raw) {
            Ok(c) => {
                self.ctx = Some(c);
                Ok(())
            }
            Err(e) => {
                self.reopen_error = e.clone();
                Err(format!("reopening the encoder after drain: {e}"))
            }
        }
    }

    /// End of sequence: returns every remaining packet and closes the encoder; the next call
    /// that needs one opens it again (the next frame is an IDR). Closing rather than re-opening
    /// here means a stream that ends costs no further `x265_encoder_open` (x265 3.5 leaks 1.2 KB
    /// in each).
    pub fn drain(&mut self) -> Result<Vec<Packet>, String> {
        if self.null {
            let held: Vec<(i64, PicKind)> = self.held_b.drain(..).collect();
            for (pts, _) in held {
                self.push_null(pts, PicKind::P)?;
            }
            self.headers_sent = false;
            return Ok(self.ready.drain(..).collect());
        }
        if self.ctx.is_none() && self.reopen_error.is_empty() {
            // Drained already and nothing sent since.
            return Ok(self.ready.drain(..).collect());
        }
        let ctx = self.ctx()?;
        let result = self.flush();
        let mut out: Vec<Packet> = self.ready.drain(..).collect();
        // Close whatever happened; the next call that needs an encoder opens a new one.
        // SAFETY: ctx is owned by self and not used after this point.
        unsafe { ffi::swenc_close(ctx.as_ptr()) };
        self.ctx = None;
        self.in_flight.clear();
        self.next_id = 0;
        self.headers_sent = false;
        result?;
        out.shrink_to_fit();
        Ok(out)
    }

    /// Null backend: B-frames wait for their anchor, which goes out first.
    fn send_null(&mut self, pts: i64, kind: PicKind) -> Result<(), String> {
        if kind == PicKind::B && self.cfg.codec != Codec::Av1 {
            self.held_b.push((pts, kind));
            return Ok(());
        }
        let kind = match kind {
            PicKind::Auto => PicKind::P,
            PicKind::B => PicKind::P,
            k => k,
        };
        self.push_null(pts, kind)?;
        let held: Vec<(i64, PicKind)> = self.held_b.drain(..).collect();
        for (p, k) in held {
            self.push_null(p, k)?;
        }
        Ok(())
    }

    fn push_null(&mut self, pts: i64, kind: PicKind) -> Result<(), String> {
        let mut data = Vec::with_capacity(64);
        let key = kind == PicKind::Idr;
        if key && (self.cfg.repeat_headers || !self.headers_sent) {
            data.extend(self.sequence_header()?);
            self.headers_sent = true;
        }
        match self.cfg.codec {
            // Slice NAL header (H.265 TRAIL_R / H.264 non-IDR slice) and filler payload.
            Codec::Hevc => data.extend([0, 0, 0, 1, 0x02, 0x01]),
            Codec::H264 => data.extend([0, 0, 0, 1, 0x41]),
            // Padding OBU (type 15) with a size field of 16.
            Codec::Av1 => data.extend([0x7a, 16]),
        }
        data.extend([0xaa; 16]);
        self.ready.push_back(Packet {
            data,
            pts,
            key,
            kind,
            avg_qp: None,
        });
        Ok(())
    }

    /// Signals end of stream to the encoder and collects every packet into `self.ready`.
    fn flush(&mut self) -> Result<(), String> {
        let ctx = self.ctx()?;
        let mut err = [0 as c_char; ERRLEN];
        // SAFETY: ctx is live and exclusively ours (&mut self); a NULL data pointer means end
        // of stream to the C side; err is ERRLEN writable bytes.
        let r = unsafe {
            ffi::swenc_send(
                ctx.as_ptr(),
                0,
                std::ptr::null(),
                0,
                0,
                0,
                0,
                0,
                err.as_mut_ptr(),
                ERRLEN,
            )
        };
        if r < 0 {
            return Err(err_text(&err));
        }
        self.pull()
    }

    /// Moves every packet the encoder has ready into `self.ready`.
    fn pull(&mut self) -> Result<(), String> {
        let ctx = self.ctx()?;
        loop {
            let mut err = [0 as c_char; ERRLEN];
            let mut pkt = ffi::SwencPacket {
                data: std::ptr::null(),
                size: 0,
                pts: 0,
                key: 0,
                pict_type: 0,
                qp: -1.0,
            };
            // SAFETY: ctx is live and exclusively ours; pkt and err are valid out-buffers.
            let r = unsafe { ffi::swenc_receive(ctx.as_ptr(), &mut pkt, err.as_mut_ptr(), ERRLEN) };
            if r < 0 {
                return Err(err_text(&err));
            }
            if r != 1 {
                return Ok(());
            }
            let data = if pkt.data.is_null() || pkt.size == 0 {
                Vec::new()
            } else {
                // SAFETY: the C side returned a packet buffer of `size` bytes that stays valid
                // until the next swenc_receive/swenc_close on this context; we copy it now.
                unsafe { std::slice::from_raw_parts(pkt.data, pkt.size) }.to_vec()
            };
            let mut packet = self.finish_packet(data, pkt.pts, pkt.key != 0, pkt.pict_type)?;
            packet.avg_qp = (pkt.qp >= 0.0).then(|| pkt.qp.round() as u32);
            self.ready.push_back(packet);
        }
    }

    fn finish_packet(
        &mut self,
        mut data: Vec<u8>,
        id: i64,
        key_flag: bool,
        pict_type: i32,
    ) -> Result<Packet, String> {
        let (pts, asked) = self
            .in_flight
            .remove(&id)
            .ok_or_else(|| format!("encoder returned a packet for unknown frame {id}"))?;
        let kind;
        let key;
        match self.cfg.codec {
            Codec::H264 | Codec::Hevc => {
                let hevc = self.cfg.codec == Codec::Hevc;
                let nals = annexb::split(&data);
                let idr = nals.iter().any(|n| annexb::is_idr(hevc, n.ty));
                kind = if idr {
                    PicKind::Idr
                } else {
                    match pict_type {
                        1 => PicKind::I,
                        2 => PicKind::P,
                        3 => PicKind::B,
                        _ => match asked {
                            PicKind::Auto | PicKind::Idr => PicKind::P,
                            k => k,
                        },
                    }
                };
                key = idr || key_flag;
                if idr {
                    let ps: Vec<u8> = nals
                        .iter()
                        .filter(|n| annexb::is_param_set(hevc, n.ty))
                        .flat_map(|n| data[n.start..n.end].iter().copied())
                        .collect();
                    if !ps.is_empty() {
                        let _ = self.seq_header.set(ps);
                        let keep =
                            !self.headers_sent || self.cfg.repeat_headers || asked == PicKind::Idr;
                        self.headers_sent = true;
                        if !keep {
                            data = annexb::strip_param_sets(hevc, &data, &nals);
                        }
                    }
                }
            }
            Codec::Av1 => {
                let info = av1::scan(&data);
                if let Some(sh) = info.seq_header {
                    let _ = self.seq_header.set(data[sh.0..sh.1].to_vec());
                }
                kind = match info.frame_type {
                    Some(av1::FrameType::Key) => PicKind::Idr,
                    Some(av1::FrameType::IntraOnly) => PicKind::I,
                    _ => match asked {
                        PicKind::B => PicKind::B,
                        _ => PicKind::P,
                    },
                };
                key = kind == PicKind::Idr || key_flag;
            }
        }
        Ok(Packet {
            data,
            pts,
            key,
            kind,
            avg_qp: None,
        })
    }
}

impl Drop for SwEncoder {
    fn drop(&mut self) {
        if let Some(ctx) = self.ctx.take() {
            // SAFETY: ctx is owned by self and used for the last time.
            unsafe { ffi::swenc_close(ctx.as_ptr()) };
        }
    }
}

/// Opens a throwaway encoder with the same configuration, codes one grey frame and returns its
/// in-band sequence header (headers do not depend on the picture content).
fn probe_header(cfg: &Config, raw: &ffi::SwencConfig) -> Result<Vec<u8>, String> {
    // The probe codes a whole picture (about 0.3 s of CPU at 1080p, 1.2 s at 2160p): sessions
    // of one configuration in one process (concurrent streams, a benchmark's repeated runs)
    // share its result, the same bytes for the same configuration.
    static CACHE: std::sync::Mutex<Vec<(String, Vec<u8>)>> = std::sync::Mutex::new(Vec::new());
    let key = format!("{cfg:?}");
    let cached = CACHE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, h)| h.clone());
    if let Some(h) = cached {
        return Ok(h);
    }
    let h = probe_header_uncached(cfg, raw)?;
    let mut c = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if c.len() >= 64 {
        c.remove(0);
    }
    c.push((key, h.clone()));
    Ok(h)
}

fn probe_header_uncached(cfg: &Config, raw: &ffi::SwencConfig) -> Result<Vec<u8>, String> {
    let mut probe_cfg = cfg.clone();
    probe_cfg.repeat_headers = true;
    let mut enc = SwEncoder {
        cfg: probe_cfg,
        raw: *raw,
        ctx: Some(open_raw(raw)?),
        reopen_error: String::new(),
        in_flight: HashMap::new(),
        next_id: 0,
        headers_sent: false,
        ready: VecDeque::new(),
        seq_header: OnceLock::new(),
        header_lock: std::sync::Mutex::new(()),
        // The probe encodes for real, whatever NVEMU_BACKEND says.
        null: false,
        held_b: Vec::new(),
    };
    let w = cfg.width as usize;
    let h = cfg.height as usize;
    let even_w = w + (w & 1);
    let (fmt, pitch, rows, fill): (InputFormat, usize, usize, &[u8]) =
        match (cfg.bit_depth > 8, cfg.chroma_444) {
            (false, false) => (InputFormat::Nv12, even_w, h + h.div_ceil(2), &[128]),
            (false, true) => (InputFormat::Yuv444, w, 3 * h, &[128]),
            // 512 << 6, little-endian: mid grey in the high 10 bits
            (true, false) => (
                InputFormat::Yuv420_10bit,
                2 * even_w,
                h + h.div_ceil(2),
                &[0, 128],
            ),
            (true, true) => (InputFormat::Yuv444_10bit, 2 * w, 3 * h, &[0, 128]),
        };
    let buf: Vec<u8> = fill.iter().copied().cycle().take(pitch * rows).collect();
    enc.send(fmt, &buf, pitch, cfg.height, 0, PicKind::Idr)?;
    enc.flush()?;
    enc.seq_header
        .get()
        .cloned()
        .ok_or_else(|| "the encoder produced no in-band sequence header".to_owned())
}

/// Annex B helpers (H.264 / H.265).
pub mod annexb {
    /// One NAL unit: `start..end` covers its start code; `ty` is the NAL unit type.
    #[derive(Debug, Clone, Copy)]
    pub struct Nal {
        pub start: usize,
        pub end: usize,
        pub ty: u8,
    }

    /// Splits an Annex B stream into NAL units (each with its own start code).
    pub fn split(d: &[u8]) -> Vec<Nal> {
        let mut starts = Vec::new(); // (start of start code, first byte of the NAL header)
        let mut i = 0;
        while i + 3 <= d.len() {
            if d[i] == 0 && d[i + 1] == 0 && d[i + 2] == 1 {
                let sc = if i > 0 && d[i - 1] == 0 { i - 1 } else { i };
                starts.push((sc, i + 3));
                i += 3;
            } else {
                i += 1;
            }
        }
        let mut out = Vec::with_capacity(starts.len());
        for (k, &(sc, hdr)) in starts.iter().enumerate() {
            let end = starts.get(k + 1).map_or(d.len(), |n| n.0);
            if hdr < d.len() {
                out.push(Nal {
                    start: sc,
                    end,
                    ty: d[hdr],
                });
            }
        }
        // ty holds the first header byte; reduce it per codec in the predicates below.
        out
    }

    fn nal_type(hevc: bool, first: u8) -> u8 {
        if hevc {
            (first >> 1) & 0x3f
        } else {
            first & 0x1f
        }
    }

    /// NAL unit type of a `Nal`'s first header byte.
    pub fn unit_type(hevc: bool, n: &Nal) -> u8 {
        nal_type(hevc, n.ty)
    }

    pub fn is_idr(hevc: bool, first: u8) -> bool {
        let t = nal_type(hevc, first);
        if hevc { t == 19 || t == 20 } else { t == 5 }
    }

    pub fn is_param_set(hevc: bool, first: u8) -> bool {
        let t = nal_type(hevc, first);
        if hevc {
            (32..=34).contains(&t)
        } else {
            t == 7 || t == 8
        }
    }

    pub fn strip_param_sets(hevc: bool, d: &[u8], nals: &[Nal]) -> Vec<u8> {
        let mut out = Vec::with_capacity(d.len());
        if let Some(first) = nals.first() {
            out.extend_from_slice(&d[..first.start]);
        }
        for n in nals {
            if !is_param_set(hevc, n.ty) {
                out.extend_from_slice(&d[n.start..n.end]);
            }
        }
        out
    }
}

/// Minimal AV1 OBU parsing (low-overhead bitstream format).
pub mod av1 {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum FrameType {
        Key,
        Inter,
        IntraOnly,
        Switch,
        /// show_existing_frame
        Existing,
    }

    #[derive(Debug, Default)]
    pub struct Info {
        /// byte range of the sequence header OBU (header included)
        pub seq_header: Option<(usize, usize)>,
        pub frame_type: Option<FrameType>,
        pub show_frame: bool,
    }

    fn leb128(d: &[u8], mut i: usize) -> Option<(u64, usize)> {
        let mut v = 0u64;
        for k in 0..8 {
            let b = *d.get(i)?;
            i += 1;
            v |= u64::from(b & 0x7f) << (7 * k);
            if b & 0x80 == 0 {
                return Some((v, i));
            }
        }
        None
    }

    /// Scans a temporal unit; reports the first frame (header) OBU's type.
    pub fn scan(d: &[u8]) -> Info {
        let mut info = Info::default();
        let mut reduced_still = false;
        let mut i = 0;
        while i < d.len() {
            let start = i;
            let h = d[i];
            let ty = (h >> 3) & 0xf;
            let ext = h & 0x4 != 0;
            let has_size = h & 0x2 != 0;
            i += 1 + ext as usize;
            let (size, payload) = if has_size {
                match leb128(d, i) {
                    Some((s, p)) => (s as usize, p),
                    None => break,
                }
            } else {
                (d.len().saturating_sub(i), i)
            };
            let end = payload.saturating_add(size).min(d.len());
            match ty {
                1 => {
                    info.seq_header = Some((start, end));
                    // seq_profile(3) still_picture(1) reduced_still_picture_header(1)
                    reduced_still = d.get(payload).is_some_and(|b| b & 0x08 != 0);
                }
                3 | 6 if info.frame_type.is_none() => {
                    if reduced_still {
                        info.frame_type = Some(FrameType::Key);
                        info.show_frame = true;
                    } else if let Some(&b) = d.get(payload) {
                        if b & 0x80 != 0 {
                            info.frame_type = Some(FrameType::Existing);
                            info.show_frame = true;
                        } else {
                            info.frame_type = Some(match (b >> 5) & 3 {
                                0 => FrameType::Key,
                                1 => FrameType::Inter,
                                2 => FrameType::IntraOnly,
                                _ => FrameType::Switch,
                            });
                            info.show_frame = b & 0x10 != 0;
                        }
                    }
                }
                _ => {}
            }
            i = end;
        }
        info
    }
}
