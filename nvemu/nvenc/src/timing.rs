//! Timing model of the NVENC hardware: how long each picture occupies the GPU's NVENC engines,
//! and so when it is done. `nvEncLockBitstream` waits until then; `doNotWait=1` answers
//! `NV_ENC_ERR_LOCK_BUSY` before.
//!
//! Modes, read at `nvEncInitializeEncoder`:
//! - default: no model, a picture is ready as soon as the software encoder gave it out;
//! - `NVEMU_ENCODE_MS=N` (explicit override, wins over the next): every picture takes N ms
//!   (fractions allowed) of one engine, whatever the codec, preset or size; `0` = no model;
//! - `NVEMU_TIMING=model`: NVIDIA's published per-engine throughput ([`published_fps`]),
//!   by codec, preset, tuning and picture size, on the engines of the `NVEMU_GPU` model.
//!
//! Engines: a session is bound, when it is initialised, to the least loaded engine of the GPU
//! (fewest sessions bound, then earliest free): the application note says the driver balances
//! sessions over the engines, and "unless Split Frame Encoding is enabled, performance with
//! single encoding session cannot exceed performance per NVENC". Its pictures run one after the
//! other on that engine (coded order, each starting once it was submitted, the session's
//! previous picture is done and the engine is free); sessions bound to different engines run in
//! parallel, sessions sharing one take turns (first come, first served). All sessions of the
//! process share the model's engines (a real GPU's are shared with other processes too, which
//! the emulator cannot see). With split-frame encoding ([`strips`]) a session is bound to
//! several engines and each picture occupies all of them for its time divided by their number.

use crate::abi::CodecKind;
use crate::caps::Gpu;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The timing mode (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    Off,
    Fixed(Duration),
    Published,
}

/// The mode the environment asks for now. An `NVEMU_TIMING` value other than `model`/`off`
/// (or empty) is reported once on stderr and means no model.
pub fn mode_from_env() -> Mode {
    if let Some(t) = std::env::var("NVEMU_ENCODE_MS")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .and_then(|ms| Duration::try_from_secs_f64(ms / 1000.0).ok())
    {
        return if t.is_zero() {
            Mode::Off
        } else {
            Mode::Fixed(t)
        };
    }
    match std::env::var("NVEMU_TIMING").as_deref() {
        Ok("model") => Mode::Published,
        Ok("") | Ok("off") | Err(_) => Mode::Off,
        Ok(other) => {
            static WARNED: std::sync::Once = std::sync::Once::new();
            let other = other.to_string();
            WARNED.call_once(|| {
                eprintln!("nvemu: NVEMU_TIMING={other:?} is not `model` or `off`; no timing model")
            });
            Mode::Off
        }
    }
}

/// Published NVENC throughput, frames per second of ONE engine, 1920x1080, 8-bit 4:2:0.
///
/// Source: NVIDIA, "NVENC Application Note", Video Codec SDK 13.0, section 4 "NVENC
/// Performance", tables "NVENC H264 encoding performance in frames/second (fps)", "NVENC HEVC
/// encoding performance in frames/second (fps)" and "NVENC AV1 encoding performance in
/// frames/second (fps)",
/// https://docs.nvidia.com/video-technologies/video-codec-sdk/13.0/nvenc-application-note/index.html
/// (read from a stored text copy of that page). Conditions under the tables: "Resolution/Input
/// Format/Bit depth: 1920 × 1080/YUV 4:2:0/8-bit"; GTX 1060 for Pascal, RTX 8000 for Turing,
/// RTX 3090 for Ampere, RTX 4090 for Ada, at the highest video clocks (1708, 1950, 1950,
/// 2415 MHz); Windows 11, SDK 13.0. "The encode performance listed ... is given per NVENC
/// engine"; performance "scales (almost) linearly with the clock speeds".
///
/// Rows are (preset, rate control + tuning): only P1, P3, P5 and P7 are published, each as
/// "CBR, LL" (low-latency tuning) and "VBR, HQ" (high-quality tuning). Columns as published:
///
/// | codec | preset | row    | Pascal | Turing | Ampere | Ada  | Jetson Thor | Blackwell |
/// |-------|--------|--------|--------|--------|--------|------|-------------|-----------|
/// | H.264 | P1     | CBR LL | 667    | 855    | 868    | 910  | 724         | 977       |
/// | H.264 | P1     | VBR HQ | 692    | 833    | 846    | 885  | 713         | 948       |
/// | H.264 | P3     | CBR LL | 649    | 600    | 613    | 652  | 529         | 718       |
/// | H.264 | P3     | VBR HQ | 398    | 602    | 617    | 647  | 527         | 708       |
/// | H.264 | P5     | CBR LL | 363    | 271    | 273    | 291  | 236         | 323       |
/// | H.264 | P5     | VBR HQ | 327    | 264    | 266    | 283  | 230         | 317       |
/// | H.264 | P7     | CBR LL | 321    | 229    | 231    | 247  | 219         | 264       |
/// | H.264 | P7     | VBR HQ | 250    | 207    | 213    | 211  | 202         | 227       |
/// | HEVC  | P1     | CBR LL | 539    | 932    | 943    | 1055 | 860         | 1134      |
/// | HEVC  | P1     | VBR HQ | 506    | 920    | 939    | 1037 | 850         | 1119      |
/// | HEVC  | P3     | CBR LL | 442    | 463    | 467    | 494  | 402         | 529       |
/// | HEVC  | P3     | VBR HQ | 443    | 552    | 557    | 706  | 579         | 947       |
/// | HEVC  | P5     | CBR LL | 370    | 305    | 307    | 343  | 279         | 506       |
/// | HEVC  | P5     | VBR HQ | 371    | 334    | 335    | 411  | 336         | 521       |
/// | HEVC  | P7     | CBR LL | 345    | 306    | 308    | 343  | 279         | 464       |
/// | HEVC  | P7     | VBR HQ | 260    | 171    | 171    | 181  | 148         | 181       |
/// | AV1   | P1     | CBR LL | -      | -      | -      | 1090 | -           | 1076      |
/// | AV1   | P1     | VBR HQ | -      | -      | -      | 741  | -           | 957       |
/// | AV1   | P3     | CBR LL | -      | -      | -      | 774  | -           | 798       |
/// | AV1   | P3     | VBR HQ | -      | -      | -      | 549  | -           | 678       |
/// | AV1   | P5     | CBR LL | -      | -      | -      | 512  | -           | 624       |
/// | AV1   | P5     | VBR HQ | -      | -      | -      | 440  | -           | 552       |
/// | AV1   | P7     | CBR LL | -      | -      | -      | 356  | -           | 395       |
/// | AV1   | P7     | VBR HQ | -      | -      | -      | 323  | -           | 401       |
///
/// The emulated models take a column each: `ada` (RTX 4090) the Ada column, measured on that
/// very card; `ampere` (RTX A4000) the Ampere column (measured on an RTX 3090) and `turing`
/// (RTX 2080) the Turing column (measured on a Quadro RTX 8000), both UNSCALED: the note says to
/// scale by the video clock, but the A4000's and RTX 2080's video clocks were not found, so a
/// factor of 1 is an assumption. Returns None for an unpublished preset (P2, P4, P6), for AV1
/// off Ada and for `no-nvenc`.
pub fn published_fps(gpu: Gpu, codec: CodecKind, preset: u32, low_latency: bool) -> Option<f64> {
    // [preset P1, P3, P5, P7] x (CBR LL, VBR HQ), per column.
    type Rows = [(f64, f64); 4];
    const H264_TURING: Rows = [
        (855.0, 833.0),
        (600.0, 602.0),
        (271.0, 264.0),
        (229.0, 207.0),
    ];
    const H264_AMPERE: Rows = [
        (868.0, 846.0),
        (613.0, 617.0),
        (273.0, 266.0),
        (231.0, 213.0),
    ];
    const H264_ADA: Rows = [
        (910.0, 885.0),
        (652.0, 647.0),
        (291.0, 283.0),
        (247.0, 211.0),
    ];
    const HEVC_TURING: Rows = [
        (932.0, 920.0),
        (463.0, 552.0),
        (305.0, 334.0),
        (306.0, 171.0),
    ];
    const HEVC_AMPERE: Rows = [
        (943.0, 939.0),
        (467.0, 557.0),
        (307.0, 335.0),
        (308.0, 171.0),
    ];
    const HEVC_ADA: Rows = [
        (1055.0, 1037.0),
        (494.0, 706.0),
        (343.0, 411.0),
        (343.0, 181.0),
    ];
    const AV1_ADA: Rows = [
        (1090.0, 741.0),
        (774.0, 549.0),
        (512.0, 440.0),
        (356.0, 323.0),
    ];
    let rows: &Rows = match (codec, gpu) {
        (CodecKind::H264, Gpu::Turing) => &H264_TURING,
        (CodecKind::H264, Gpu::Ampere) => &H264_AMPERE,
        (CodecKind::H264, Gpu::Ada) => &H264_ADA,
        (CodecKind::Hevc, Gpu::Turing) => &HEVC_TURING,
        (CodecKind::Hevc, Gpu::Ampere) => &HEVC_AMPERE,
        (CodecKind::Hevc, Gpu::Ada) => &HEVC_ADA,
        (CodecKind::Av1, Gpu::Ada) => &AV1_ADA,
        _ => return None,
    };
    let i = match preset {
        1 => 0,
        3 => 1,
        5 => 2,
        7 => 3,
        _ => return None,
    };
    let (ll, hq) = rows[i];
    Some(if low_latency { ll } else { hq })
}

/// Which published row a tuning uses: low latency (2) and ultra-low latency (3) the "CBR, LL"
/// row, high quality (1), ultra-high quality (5) and lossless (4) the "VBR, HQ" row. The
/// tables pair tuning with a rate-control mode; the model keys on the tuning alone and ignores
/// the session's rate-control mode, multi-pass, lookahead and B-frames (ASSUMPTION: they are
/// what the preset and tuning imply). Ultra-low latency, ultra-high quality and lossless are
/// not published.
pub fn low_latency_row(tuning: u32) -> bool {
    matches!(tuning, 2 | 3)
}

/// One engine's throughput at 1080p for any preset P1..P7: the published figure for P1, P3,
/// P5, P7; for P2, P4, P6 (not published) the time per frame is the mean of the neighbouring
/// presets' times (ASSUMPTION: linear in time between published presets).
pub fn fps_1080p(gpu: Gpu, codec: CodecKind, preset: u32, tuning: u32) -> Option<f64> {
    let ll = low_latency_row(tuning);
    let preset = preset.clamp(1, 7);
    if preset % 2 == 1 {
        return published_fps(gpu, codec, preset, ll);
    }
    let a = 1.0 / published_fps(gpu, codec, preset - 1, ll)?;
    let b = 1.0 / published_fps(gpu, codec, preset + 1, ll)?;
    Some(2.0 / (a + b))
}

/// The 1080p figures' picture size.
pub const REF_PIXELS: f64 = 1920.0 * 1080.0;

/// Time one picture of `width` x `height` occupies one engine: the 1080p time per frame scaled
/// by the pixel count (ASSUMPTION: NVIDIA publishes 1080p only; 2160p is modelled as 4 times
/// 1080p). Bit depth and chroma format (10-bit, 4:4:4) are not published and not modelled: they
/// cost the same as 8-bit 4:2:0.
pub fn picture_time(
    gpu: Gpu,
    codec: CodecKind,
    preset: u32,
    tuning: u32,
    width: u32,
    height: u32,
) -> Option<Duration> {
    let fps = fps_1080p(gpu, codec, preset, tuning)?;
    let scale = width as f64 * height as f64 / REF_PIXELS;
    Duration::try_from_secs_f64(scale / fps).ok()
}

/// Engines a session's pictures are split over (split-frame encoding, SDK 12.1+
/// `NV_ENC_INITIALIZE_PARAMS.splitEncodeMode`; sessions of older APIs read it as 0). From the
/// SDK 13.0 header's `NV_ENC_SPLIT_ENCODE_MODE` (nvEncodeAPI.h): H.264 never splits ("Split
/// Encoding is not applicable to H264"); the application note: split-frame encoding is "a
/// feature introduced in SDK12.0 on Ada GPUs for HEVC and AV1". Per mode:
/// - 0 AUTO: "decided by the driver based on preset, tuning information and video resolution":
///   1 strip here; [`Timing::new`] applies the programming guide's implicit rule
///   ([`implicit_split`]) before calling this;
/// - 1 AUTO_FORCED: split, "number of strips automatically selected by driver": all engines
///   (ASSUMPTION);
/// - 2, 3, 4 (FORCED): that many strips, at most the number of engines ("NVENC number of strips
///   otherwise");
/// - 15 DISABLE, and any other value: no split.
///
/// Only Ada has more than one engine among the models, so elsewhere this is always 1.
pub fn strips(gpu: Gpu, codec: CodecKind, split_mode: u32) -> usize {
    let engines = gpu.nvenc_engines().max(1);
    if codec == CodecKind::H264 || gpu != Gpu::Ada {
        return 1;
    }
    let want = match split_mode {
        1 => engines,
        2..=4 => split_mode as usize,
        _ => 1,
    };
    want.clamp(1, engines)
}

/// Whether `NV_ENC_SPLIT_AUTO_MODE` splits: the NVENC Video Encoder API Programming Guide
/// (SDK 13.0, "Multi NVENC Split Frame Encoding in HEVC and AV1", implicit mode): 2 or more
/// NVENCs, a frame height of at least 2112 (HEVC) or 2048 (AV1), and a preset/tuning
/// combination of its table "Preset configurations enabling Split Frame Encoding": P1-P2 in
/// the first row, P1-P4 in the second and third. The row labels did not survive in the copy
/// read; they are taken as high quality, low latency, ultra-low latency (the tuning enum's
/// order; ASSUMPTION), so lossless and ultra-high quality never split implicitly. The strips
/// then are the driver's choice: all engines here (ASSUMPTION, as for AUTO_FORCED).
pub fn implicit_split(gpu: Gpu, codec: CodecKind, preset: u32, tuning: u32, height: u32) -> bool {
    let tall = match codec {
        CodecKind::Hevc => height >= 2112,
        CodecKind::Av1 => height >= 2048,
        CodecKind::H264 => return false,
    };
    let presets = match tuning {
        1 => 1..=2,
        2 | 3 => 1..=4,
        _ => return false,
    };
    gpu.nvenc_engines() >= 2 && tall && presets.contains(&preset)
}

/// What a session's pictures cost and where they run.
#[derive(Debug)]
pub struct Timing {
    pub gpu: Gpu,
    /// Engine time of one picture on one engine (before splitting).
    pub time: Duration,
    /// Engines the session is bound to (more than one: split-frame encoding).
    pub engines: Vec<usize>,
    /// CUDA ordinal of the session's GPU: each GPU has its own engines.
    pub device: u32,
    /// What NVML reports of the session (`crate::system`).
    meter: crate::system::Meter,
}

struct Pool {
    gpu: Gpu,
    device: u32,
    /// When each engine has finished the last picture given to it.
    free: Vec<Instant>,
    /// Live sessions bound to each engine.
    bound: Vec<usize>,
}

static POOLS: Mutex<Vec<Pool>> = Mutex::new(Vec::new());

fn with_pool<R>(gpu: Gpu, device: u32, f: impl FnOnce(&mut Pool) -> R) -> R {
    let mut pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
    let i = match pools
        .iter()
        .position(|p| p.gpu == gpu && p.device == device)
    {
        Some(i) => i,
        None => {
            let n = gpu.nvenc_engines().max(1);
            pools.push(Pool {
                gpu,
                device,
                free: vec![Instant::now(); n],
                bound: vec![0; n],
            });
            pools.len() - 1
        }
    };
    f(&mut pools[i])
}

impl Timing {
    /// The timing of a session being initialised, or None without a model. `split_mode` is
    /// `splitEncodeMode`; `(device, session)` the CUDA ordinal of the session's GPU and the
    /// session's id (for NVML, `crate::system`, which also gets the codec and size here). Binds
    /// the session to its GPU's engines (released when this is dropped).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        mode: Mode,
        gpu: Gpu,
        codec: CodecKind,
        preset: u32,
        tuning: u32,
        size: (u32, u32),
        split_mode: u32,
        (device, session): (u32, u64),
    ) -> Option<Timing> {
        // NVML's nvmlEncoderType_t.
        let nvml_codec = match codec {
            CodecKind::H264 => 0,
            CodecKind::Hevc => 1,
            CodecKind::Av1 => 2,
        };
        crate::system::describe(session, nvml_codec, size.0, size.1);
        let time = match mode {
            Mode::Off => return None,
            Mode::Fixed(t) => t,
            Mode::Published => picture_time(gpu, codec, preset, tuning, size.0, size.1)?,
        };
        let split_mode = if split_mode == 0 && implicit_split(gpu, codec, preset, tuning, size.1) {
            1
        } else {
            split_mode
        };
        let n = strips(gpu, codec, split_mode);
        let engines = with_pool(gpu, device, |p| {
            let mut order: Vec<usize> = (0..p.free.len()).collect();
            order.sort_by_key(|&e| (p.bound[e], p.free[e], e));
            order.truncate(n);
            order.sort_unstable();
            for &e in &order {
                p.bound[e] += 1;
            }
            order
        });
        Some(Timing {
            gpu,
            time,
            engines,
            device,
            meter: crate::system::Meter::new(session),
        })
    }

    /// Schedules one picture given to the engines now; `after` is when the session's previous
    /// picture is done. Returns when this one is done.
    pub fn schedule(&self, after: Instant) -> Instant {
        let now = Instant::now();
        let busy = self.time / self.engines.len().max(1) as u32;
        let done = with_pool(self.gpu, self.device, |p| {
            let start = self
                .engines
                .iter()
                .filter_map(|&e| p.free.get(e).copied())
                .fold(now.max(after), Instant::max);
            let done = start.checked_add(busy).unwrap_or(start);
            for &e in &self.engines {
                if let Some(f) = p.free.get_mut(e) {
                    *f = done;
                }
            }
            done
        });
        self.meter.picture(now, done, self.time);
        done
    }

    /// Frames per second one session can reach at most (one picture after the other).
    pub fn session_fps(&self) -> f64 {
        self.engines.len() as f64 / self.time.as_secs_f64()
    }
}

impl Drop for Timing {
    fn drop(&mut self) {
        with_pool(self.gpu, self.device, |p| {
            for &e in &self.engines {
                if let Some(b) = p.bound.get_mut(e) {
                    *b = b.saturating_sub(1);
                }
            }
        });
    }
}
