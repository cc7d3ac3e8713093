//! The machine around the sessions: which GPU a session is on, the session caps per GPU and per
//! system, and the session lines the NVML stand-in reports (`registry`, shared between processes
//! with `NVEMU_SYSTEM`).
//!
//! Caps (checked by `nvEncOpenEncodeSessionEx`, which answers `NV_ENC_ERR_OUT_OF_MEMORY` over them):
//! - by default, the GeForce driver's: at most [`GEFORCE_SESSION_CAP`] sessions at once over all
//!   GeForce GPUs of the system (NVENC Application Note 13.0, "NVENC Licensing Policy": "limited
//!   to 8 per system"), counted over the processes sharing `NVEMU_SYSTEM` (else this process);
//!   no cap on professional models (`ampere`). Unknown, and chosen here: that a real driver
//!   counts a session on a GeForce card of a mixed system against the same 8 whatever the other
//!   cards are, that every process counts (the note says "per system"), and that the status is
//!   OUT_OF_MEMORY (what users of GeForce cards report; NVIDIA documents the cap, not the status).
//! - `NVEMU_SESSION_LIMIT=N` replaces that rule by a cap of N sessions per GPU (each GPU counted
//!   apart, over the processes sharing `NVEMU_SYSTEM`), `0` = none; a list `N0,N1,...` gives
//!   GPU i its own value (GPUs beyond the list, and entries that are not numbers: the model's
//!   rule). With one GPU and no `NVEMU_SYSTEM` this is the old per-process cap.

use crate::caps::{GEFORCE_SESSION_CAP, Gpu};
use crate::registry::{self, Cap, Rec};

const _: () = assert!(GEFORCE_SESSION_CAP == registry::GEFORCE_CAP);
use std::collections::VecDeque;
use std::ffi::c_char;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// This process's sessions when the machine is not shared (`NVEMU_SYSTEM` unset).
static LOCAL: Mutex<Vec<Rec>> = Mutex::new(Vec::new());

fn with_recs<R>(f: impl FnOnce(&mut Vec<Rec>) -> R) -> Result<R, String> {
    match registry::shared_path() {
        Some(p) => {
            registry::update_shared(&p, f).map_err(|e| format!("NVEMU_SYSTEM={}: {e}", p.display()))
        }
        None => Ok(f(&mut LOCAL.lock().unwrap_or_else(|e| e.into_inner()))),
    }
}

/// Why a session cannot be admitted.
#[derive(Debug)]
pub enum Refused {
    /// Over a cap (the driver's OUT_OF_MEMORY); the text says which.
    Cap(String),
    /// `NVEMU_SYSTEM` cannot be used (an emulator setup error).
    Io(String),
}

/// Admits a new session `session` of this process on GPU `ordinal` under its cap, and records it.
pub fn open(ordinal: u32, gpu: Gpu, session: u64) -> Result<(), Refused> {
    let cap = registry::cap_for(ordinal, gpu.is_geforce());
    let pid = std::process::id();
    with_recs(|recs| {
        if let (live, Some(limit)) = cap.usage(recs, ordinal)
            && live >= limit
        {
            let what = match cap {
                Cap::GeForceSystem(_) => format!(
                    "the GeForce driver allows {limit} at once over all GeForce GPUs of the system (GPU {ordinal} is a {})",
                    gpu.name()
                ),
                _ => format!(
                    "GPU {ordinal} ({}) allows {limit} at once (NVEMU_SESSION_LIMIT)",
                    gpu.name()
                ),
            };
            return Err(Refused::Cap(format!("{live} encode sessions are open: {what}")));
        }
        recs.push(Rec {
            pid,
            session,
            device: ordinal,
            geforce: gpu.is_geforce(),
            codec: registry::CODEC_UNKNOWN,
            ..Default::default()
        });
        Ok(())
    })
    .map_err(Refused::Io)?
}

fn update(session: u64, f: impl FnOnce(&mut Rec)) {
    let pid = std::process::id();
    let r = with_recs(|recs| {
        if let Some(r) = recs
            .iter_mut()
            .find(|r| r.pid == pid && r.session == session)
        {
            f(r);
        }
    });
    if let Err(e) = r {
        eprintln!("nvemu: {e}");
    }
}

/// Forgets session `session` of this process (`nvEncDestroyEncoder`).
pub fn close(session: u64) {
    let pid = std::process::id();
    if let Err(e) = with_recs(|recs| recs.retain(|r| !(r.pid == pid && r.session == session))) {
        eprintln!("nvemu: {e}");
    }
}

/// Records a session's codec (NVML's `nvmlEncoderType_t`) and size (`nvEncInitializeEncoder`).
pub fn describe(session: u64, nvml_codec: u32, width: u32, height: u32) {
    update(session, |r| {
        r.codec = nvml_codec;
        r.width = width;
        r.height = height;
    });
}

/// Measures a session's pictures for NVML (owned by its timing model): fps, latency and engine
/// time over the last [`registry::WINDOW_NS`], written to the session's line at most every
/// 100 ms (at a picture).
#[derive(Debug)]
pub struct Meter {
    session: u64,
    inner: Mutex<MeterInner>,
}

#[derive(Debug, Default)]
struct MeterInner {
    /// (done, engine time, latency) of recent pictures.
    pics: VecDeque<(Instant, Duration, Duration)>,
    flushed: Option<Instant>,
}

const FLUSH_EVERY: Duration = Duration::from_millis(100);

impl Meter {
    pub fn new(session: u64) -> Meter {
        Meter {
            session,
            inner: Mutex::new(MeterInner::default()),
        }
    }

    /// One picture submitted at `submitted`, done at `done`, taking `engine` of engine time.
    pub fn picture(&self, submitted: Instant, done: Instant, engine: Duration) {
        let now = Instant::now();
        let window = Duration::from_nanos(registry::WINDOW_NS);
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        m.pics
            .push_back((done, engine, done.saturating_duration_since(submitted)));
        while m
            .pics
            .front()
            .is_some_and(|(d, _, _)| now.saturating_duration_since(*d) > window)
        {
            m.pics.pop_front();
        }
        if m.flushed
            .is_some_and(|f| now.saturating_duration_since(f) < FLUSH_EVERY)
        {
            return;
        }
        m.flushed = Some(now);
        let done: Vec<_> = m.pics.iter().filter(|(d, _, _)| *d <= now).collect();
        let fps = done.len() as u32;
        let busy: Duration = done.iter().map(|(_, e, _)| *e).sum();
        let latency = if done.is_empty() {
            0
        } else {
            (done.iter().map(|(_, _, l)| *l).sum::<Duration>() / fps).as_micros() as u32
        };
        drop(m);
        let stamp = registry::now_ns();
        update(self.session, |r| {
            r.fps = fps;
            r.latency_us = latency;
            r.busy_ns = busy.as_nanos() as u64;
            r.stamp_ns = stamp;
        });
    }
}

/// The CUDA ordinal of the GPU a session's CUcontext belongs to: asked of the CUDA stand-in;
/// 0 with the real driver or a context it does not know (the NVENC stand-in's own tests pass
/// made-up contexts).
pub fn device_of(ctx: u64) -> u32 {
    crate::cuda::ctx_device(ctx).unwrap_or(0)
}

/// Test and NVML export: the session lines of this process's machine when `NVEMU_SYSTEM` is
/// unset (the format of `registry`); with it set, the shared file's. Writes at most `cap` bytes
/// of the text into `buf` (no NUL) and returns the text's full length; NULL `buf` only returns
/// the length.
///
/// # Safety
/// `buf` is NULL or writable for `cap` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvemu_nvenc_system_snapshot(buf: *mut c_char, cap: usize) -> usize {
    std::panic::catch_unwind(|| {
        let text = match registry::shared_path() {
            Some(p) => registry::read_shared(&p)
                .map(|r| registry::format_all(&r))
                .unwrap_or_default(),
            None => registry::format_all(&LOCAL.lock().unwrap_or_else(|e| e.into_inner())),
        };
        if !buf.is_null() {
            let n = text.len().min(cap);
            // SAFETY: the caller gives `cap` writable bytes at `buf`; `n <= cap`, and the source
            // is our own string.
            unsafe { std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), n) };
        }
        text.len()
    })
    .unwrap_or(0)
}
