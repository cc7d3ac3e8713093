// SPDX-License-Identifier: MPL-2.0
//! Where an encode session goes when `cuda-device-id` is -1, which GPU to try next when one
//! refuses it, and the machine-readable structure an element error carries when none can take
//! it. Pure logic over what the caller read (CUDA devices, NVML); no GObject, no driver calls.
//!
//! Placement, in order ([`place`]):
//! 1. upstream CUDA memory: its GPU (no copy between GPUs);
//! 2. NVML (system-wide, every process): the GPU whose cap is not reached
//!    (`nvmlDeviceGetEncoderCapacity` not 0) with the fewest sessions per NVENC engine (other
//!    processes' from `nvmlDeviceGetEncoderSessions`, else `nvmlDeviceGetEncoderStats`, plus
//!    this process's placed ones, open or about to be), then the lowest encoder utilisation
//!    (`nvmlDeviceGetEncoderUtilization`), then the lowest ordinal. Sessions per engine come
//!    first because NVENC time-slices its engines between sessions (a session started now gets
//!    its share whatever the momentary utilisation), and because utilisation lags: sessions
//!    opened a moment ago have not encoded yet;
//! 3. without NVML: the GPU with the fewest sessions of this process, then the lowest ordinal.
//!
//! A GPU for which NVML answers but reports no encoder capacity for the codec
//! (`NVML_ERROR_NOT_SUPPORTED`: no NVENC, or not this codec) goes last, then one at its cap.
//! The other GPUs follow in the same order, for [`Refusal::moves_on`].

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard};

use crate::nvml::{self, EncoderLoad};

/// What placement knows of one GPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuView {
    /// CUDA ordinal.
    pub ordinal: i32,
    /// Device name (CUDA's).
    pub name: String,
    /// NVML's figures, `None` where NVML is unavailable or does not know the device.
    pub load: Option<EncoderLoad>,
    /// Sessions of other processes (NVML's sessions less this process's), where NVML tells
    /// them apart (`nvmlDeviceGetEncoderSessions`); else `load`'s count is taken as theirs.
    pub others: Option<u32>,
    /// NVENC engines (`NV_ENC_CAPS_NUM_ENCODER_ENGINES`), 0 where not known yet.
    pub engines: u32,
    /// Sessions of this process on it ([`own_sessions`]).
    pub own_sessions: u32,
}

impl GpuView {
    /// Sessions of other processes (NVML), if known.
    fn nvml_sessions(&self) -> Option<u32> {
        self.others
            .or_else(|| self.load.and_then(|l| l.stats).map(|s| s.sessions))
    }

    /// Whether NVML answers for the device but has no encoder capacity for the codec (a GPU
    /// without NVENC, or without this codec): tried last.
    fn cannot(&self) -> bool {
        self.load
            .is_some_and(|l| l.stats.is_some() && l.capacity.is_none())
    }

    /// Sessions to weigh: other processes' (NVML) and this process's placed ones.
    fn sessions(&self) -> u32 {
        self.nvml_sessions().unwrap_or(0) + self.own_sessions
    }

    fn describe(&self) -> String {
        let mut s = format!("GPU {} ({})", self.ordinal, self.name);
        match self.nvml_sessions() {
            Some(n) => {
                let _ = write!(
                    s,
                    ": {n} session(s) of other processes and {} of this one",
                    self.own_sessions
                );
                if self.engines > 0 {
                    let _ = write!(s, " on {} engine(s)", self.engines);
                }
                if let Some(u) = self.load.and_then(|l| l.utilisation) {
                    let _ = write!(s, ", {u} % encoder utilisation");
                }
                if self.load.and_then(|l| l.capacity) == Some(0) {
                    s.push_str(", no capacity left");
                }
                if self.cannot() {
                    s.push_str(", no NVENC capacity for the codec");
                }
            }
            None => {
                let _ = write!(s, ": {} session(s) of this process", self.own_sessions);
            }
        }
        s
    }
}

/// What a placement was based on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// `cuda-device-id` names the GPU.
    Fixed,
    /// The GPU of upstream CUDA memory.
    UpstreamMemory,
    /// NVML's system-wide figures.
    Nvml,
    /// This process's own session counts (no NVML).
    OwnSessions,
}

impl Basis {
    /// The nick used in `stats` and messages.
    pub fn nick(self) -> &'static str {
        match self {
            Basis::Fixed => "fixed",
            Basis::UpstreamMemory => "upstream-memory",
            Basis::Nvml => "nvml",
            Basis::OwnSessions => "own-sessions",
        }
    }
}

/// The GPUs to try, best first, and why the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// CUDA ordinals, best first; every GPU of the input once.
    pub order: Vec<i32>,
    pub basis: Basis,
    /// One sentence: the GPU chosen and why, with the figures compared.
    pub reason: String,
}

/// Places a session among `gpus` (see the module documentation). `upstream` is the GPU of
/// upstream CUDA memory, if the input is CUDA memory. Empty `gpus` give an empty order.
pub fn place(upstream: Option<i32>, gpus: &[GpuView]) -> Placement {
    let nvml = gpus.iter().any(|g| g.nvml_sessions().is_some());
    // Sessions per engine only where every GPU's engines are known (else one GPU's sessions
    // would be divided and another's not).
    let per_engine = gpus.iter().all(|g| g.engines > 0);
    let mut ranked: Vec<&GpuView> = gpus.iter().collect();
    if nvml {
        ranked.sort_by_key(|g| {
            let sessions = g.sessions() as u64;
            let full = g.load.and_then(|l| l.capacity) == Some(0);
            (
                g.cannot(),
                full,
                if per_engine {
                    sessions * 1000 / g.engines as u64
                } else {
                    sessions * 1000
                },
                g.load.and_then(|l| l.utilisation).unwrap_or(0),
                g.ordinal,
            )
        });
    } else {
        ranked.sort_by_key(|g| (g.own_sessions, g.ordinal));
    }
    let others = |first: i32| -> String {
        ranked
            .iter()
            .filter(|g| g.ordinal != first)
            .map(|g| g.describe())
            .collect::<Vec<_>>()
            .join("; ")
    };
    if let Some(up) = upstream
        && let Some(pos) = ranked.iter().position(|g| g.ordinal == up)
    {
        let g = ranked.remove(pos);
        ranked.insert(0, g);
        return Placement {
            order: ranked.iter().map(|g| g.ordinal).collect(),
            basis: Basis::UpstreamMemory,
            reason: format!(
                "GPU {} ({}): the upstream CUDA memory is there (no copy between GPUs)",
                g.ordinal, g.name
            ),
        };
    }
    let Some(first) = ranked.first() else {
        return Placement {
            order: Vec::new(),
            basis: Basis::OwnSessions,
            reason: "no GPU".into(),
        };
    };
    let (basis, why) = if nvml {
        (Basis::Nvml, "the most free NVENC capacity (NVML)")
    } else {
        (
            Basis::OwnSessions,
            "the fewest sessions of this process (NVML unavailable)",
        )
    };
    let rest = others(first.ordinal);
    Placement {
        order: ranked.iter().map(|g| g.ordinal).collect(),
        basis,
        reason: format!(
            "{}: {why}{}{}",
            first.describe(),
            if rest.is_empty() { "" } else { "; others: " },
            rest
        ),
    }
}

/// Why a GPU did not take a session (the `reason` of [`error_structure`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No NVIDIA driver: `libcuda.so.1` or `libnvidia-encode.so.1` cannot be loaded.
    NoDriver,
    /// No CUDA device at all.
    NoGpu,
    /// The GPU has no NVENC (`NV_ENC_ERR_NO_ENCODE_DEVICE`, `NV_ENC_ERR_UNSUPPORTED_DEVICE`).
    NoNvenc,
    /// The session cap (`NV_ENC_ERR_OUT_OF_MEMORY` at `nvEncOpenEncodeSessionEx`: what
    /// GeForce drivers answer over their cap; it can also be a real lack of memory).
    SessionLimit,
    /// The GPU cannot encode this codec, format or size.
    UnsupportedFormat,
    /// Anything else.
    Error,
}

/// NVENCSTATUS values that classify a refusal (`nvEncodeAPI.h`).
const NV_ENC_ERR_NO_ENCODE_DEVICE: u32 = 1;
const NV_ENC_ERR_UNSUPPORTED_DEVICE: u32 = 2;
const NV_ENC_ERR_OUT_OF_MEMORY: u32 = 10;
const NV_ENC_ERR_UNSUPPORTED_PARAM: u32 = 12;

impl Refusal {
    /// The refusal an NVENCSTATUS of the session's opening or initialisation means.
    pub fn of_status(status: u32) -> Refusal {
        match status {
            NV_ENC_ERR_NO_ENCODE_DEVICE | NV_ENC_ERR_UNSUPPORTED_DEVICE => Refusal::NoNvenc,
            NV_ENC_ERR_OUT_OF_MEMORY => Refusal::SessionLimit,
            NV_ENC_ERR_UNSUPPORTED_PARAM => Refusal::UnsupportedFormat,
            _ => Refusal::Error,
        }
    }

    /// The nick in the error structure.
    pub fn nick(self) -> &'static str {
        match self {
            Refusal::NoDriver => "no-driver",
            Refusal::NoGpu => "no-gpu",
            Refusal::NoNvenc => "no-nvenc",
            Refusal::SessionLimit => "session-limit",
            Refusal::UnsupportedFormat => "unsupported-format",
            Refusal::Error => "error",
        }
    }

    /// Whether the next GPU is tried after this refusal: the session cap always (another GPU
    /// may have room, also with a fixed `cuda-device-id`); with automatic placement also a GPU
    /// without NVENC or without this codec/format. Not without a driver (no GPU can do
    /// better) or after other errors (they would repeat).
    pub fn moves_on(self, automatic: bool) -> bool {
        match self {
            Refusal::SessionLimit => true,
            Refusal::NoNvenc | Refusal::UnsupportedFormat => automatic,
            Refusal::NoDriver | Refusal::NoGpu | Refusal::Error => false,
        }
    }
}

/// One GPU that refused the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tried {
    pub ordinal: i32,
    pub name: String,
    pub refusal: Refusal,
    /// The NVENCSTATUS, where an NVENC call answered.
    pub status: Option<u32>,
    /// Its name (`NV_ENC_ERR_OUT_OF_MEMORY`), or empty.
    pub status_name: String,
    /// The full error text.
    pub message: String,
}

/// The overall reason of refusals: the one they share, else the session limit if any GPU
/// answered it (the one an application can wait out), else the first GPU's.
pub fn overall(tried: &[Tried]) -> Refusal {
    match tried.first() {
        None => Refusal::NoGpu,
        Some(f) if tried.iter().all(|t| t.refusal == f.refusal) => f.refusal,
        Some(_) if tried.iter().any(|t| t.refusal == Refusal::SessionLimit) => {
            Refusal::SessionLimit
        }
        Some(f) => f.refusal,
    }
}

/// Tries `order` in turn with `open` until one opens: Ok with the GPU, what `open` gave and
/// the GPUs that refused before it (for the warning naming both); Err with every refusal when
/// none opened or a refusal does not move on ([`Refusal::moves_on`]).
pub fn first_that_opens<T>(
    order: &[i32],
    automatic: bool,
    mut open: impl FnMut(i32) -> Result<T, Tried>,
) -> Result<(i32, T, Vec<Tried>), Vec<Tried>> {
    let mut tried = Vec::new();
    for &o in order {
        match open(o) {
            Ok(t) => return Ok((o, t, tried)),
            Err(t) => {
                let on = t.refusal.moves_on(automatic);
                tried.push(t);
                if !on {
                    break;
                }
            }
        }
    }
    Err(tried)
}

/// Name of the error-details structure.
pub const ERROR_STRUCTURE: &str = "rsnvenc-session-error";

/// The details of the element error when no GPU took the session (`gst_message_parse_error_details`):
/// `rsnvenc-session-error, reason=(string)<nick>, gpus=(GstValueArray){ gpu, index=(int)N,
/// name=(string)..., reason=(string)<nick>, status=(int)<NVENCSTATUS or -1>,
/// status-name=(string)..., message=(string)...; ... }`.
pub fn error_structure(reason: Refusal, tried: &[Tried]) -> gst::Structure {
    let gpus: Vec<gst::glib::SendValue> = tried
        .iter()
        .map(|t| {
            use gst::prelude::*;
            gst::Structure::builder("gpu")
                .field("index", t.ordinal)
                .field("name", &t.name)
                .field("reason", t.refusal.nick())
                .field("status", t.status.map_or(-1, |s| s as i32))
                .field("status-name", &t.status_name)
                .field("message", &t.message)
                .build()
                .to_send_value()
        })
        .collect();
    gst::Structure::builder(ERROR_STRUCTURE)
        .field("reason", reason.nick())
        .field("gpus", gst::Array::new(gpus))
        .build()
}

/// One sentence for the error message: what each GPU answered.
pub fn error_text(reason: Refusal, tried: &[Tried]) -> String {
    if tried.is_empty() {
        return format!("no GPU could open an NVENC session ({})", reason.nick());
    }
    let each: Vec<String> = tried
        .iter()
        .map(|t| format!("GPU {} ({}): {}", t.ordinal, t.name, t.message))
        .collect();
    format!(
        "no GPU could open an NVENC session ({}): {}",
        reason.nick(),
        each.join("; ")
    )
}

// ---------------------------------------------------------------------------------------------
// What the element reads and how it names a refusal

/// The NVML codec of an NVENC codec.
pub fn nvml_codec(codec: crate::nvenc::api::Codec) -> nvml::EncoderType {
    match codec {
        crate::nvenc::api::Codec::H264 => nvml::EncoderType::H264,
        crate::nvenc::api::Codec::Hevc => nvml::EncoderType::Hevc,
        crate::nvenc::api::Codec::Av1 => nvml::EncoderType::Av1,
    }
}

/// The NVML device of a CUDA device, found by PCI bus id (NVML numbers devices in PCI order,
/// CUDA by default fastest first).
fn nvml_device(n: &nvml::Nvml, dev: &crate::cuda::Device) -> Option<nvml::Device> {
    let bus = dev.pci_bus_id().ok()?;
    n.device_by_pci_bus_id(&bus).ok()
}

/// Every CUDA device with what NVML says of it for `codec` (nothing where NVML is unavailable)
/// and this process's sessions on it.
///
/// # Errors
/// The [`Tried`] of a CUDA driver that cannot be used ([`Refusal::NoDriver`]).
pub fn survey(codec: nvml::EncoderType) -> Result<Vec<GpuView>, Tried> {
    let no_driver = |e: crate::cuda::CudaError| Tried {
        ordinal: -1,
        name: String::new(),
        refusal: Refusal::NoDriver,
        status: None,
        status_name: String::new(),
        message: format!("cannot use CUDA: {e}"),
    };
    crate::cuda::init().map_err(no_driver)?;
    let count = crate::cuda::device_count().map_err(no_driver)?;
    let n = nvml::nvml().ok();
    let mut v = Vec::new();
    for o in 0..count {
        let Ok(dev) = crate::cuda::Device::new(o) else {
            continue;
        };
        let d = n.and_then(|n| nvml_device(n, &dev));
        let name = dev.name().unwrap_or_default();
        v.push(GpuView {
            ordinal: o,
            name,
            load: n.zip(d).map(|(n, d)| n.encoder_load(d, codec)),
            others: n.zip(d).and_then(|(n, d)| n.sessions_of_others(d)),
            engines: 0,
            own_sessions: own_sessions(o),
        });
    }
    // Engines: as learnt from a session on the GPU, else on a GPU of the same name.
    let known: Vec<(i32, String, Option<u32>)> = v
        .iter()
        .map(|g| (g.ordinal, g.name.clone(), engines(g.ordinal)))
        .collect();
    for g in &mut v {
        g.engines = engines(g.ordinal)
            .or_else(|| {
                known
                    .iter()
                    .find(|(_, n, e)| *n == g.name && e.is_some())
                    .and_then(|k| k.2)
            })
            .unwrap_or(0);
    }
    Ok(v)
}

/// NVML's encoder utilisation (percent), session count (every process) and UUID of a CUDA
/// device; each `None` where NVML does not answer.
pub fn gpu_metrics(ordinal: i32) -> (Option<u32>, Option<u32>, Option<String>) {
    let Some(n) = nvml::nvml().ok() else {
        return (None, None, None);
    };
    let Some(d) = crate::cuda::Device::new(ordinal)
        .ok()
        .and_then(|dev| nvml_device(n, &dev))
    else {
        return (None, None, None);
    };
    (
        n.encoder_utilisation(d).ok().map(|(u, _)| u),
        n.encoder_stats(d).ok().map(|s| s.sessions),
        n.uuid(d).ok(),
    )
}

/// The refusal of GPU `ordinal` (`name`) that `e` reports, from the session's opening (or its
/// capability checks: `unsupported` says the error is one of those).
pub fn tried_of(
    ordinal: i32,
    name: &str,
    e: &crate::nvenc::api::NvEncError,
    unsupported: bool,
) -> Tried {
    use crate::nvenc::api::{NvEncError, status_name};
    let (refusal, status) = match e {
        NvEncError::LibraryNotFound(_) | NvEncError::DriverTooOld { .. } => {
            (Refusal::NoDriver, None)
        }
        NvEncError::NoNvenc { detail, .. } => (
            Refusal::NoNvenc,
            Some(if detail.contains("NO_ENCODE_DEVICE") {
                NV_ENC_ERR_NO_ENCODE_DEVICE
            } else {
                NV_ENC_ERR_UNSUPPORTED_DEVICE
            }),
        ),
        NvEncError::Call { code, .. } => (Refusal::of_status(*code as u32), Some(*code as u32)),
        _ if unsupported => (Refusal::UnsupportedFormat, None),
        _ => (Refusal::Error, None),
    };
    Tried {
        ordinal,
        name: name.to_owned(),
        refusal,
        status,
        status_name: status.map_or(String::new(), |s| status_name(s as i32).to_owned()),
        message: e.to_string(),
    }
}

/// Where an element's sessions go, and why (kept while the element runs).
#[derive(Debug)]
pub struct Placed {
    pub ordinal: i32,
    pub name: String,
    pub basis: Basis,
    pub reason: String,
    /// The GPUs to try after this one, best first.
    pub next: Vec<i32>,
    /// Counts as this process's session on the GPU.
    _own: OwnSession,
}

impl Placed {
    pub fn new(ordinal: i32, name: String, basis: Basis, reason: String, next: Vec<i32>) -> Placed {
        Placed {
            ordinal,
            name,
            basis,
            reason,
            next,
            _own: OwnSession::new(ordinal),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// This process's sessions per GPU

static OWN: Mutex<Option<HashMap<i32, u32>>> = Mutex::new(None);
/// NVENC engines per GPU, as a session on it reported them (`NV_ENC_CAPS_NUM_ENCODER_ENGINES`).
static ENGINES: Mutex<Option<HashMap<i32, u32>>> = Mutex::new(None);

/// Remembers the NVENC engines a session on GPU `ordinal` reported.
pub fn learn_engines(ordinal: i32, engines: u32) {
    ENGINES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashMap::new)
        .insert(ordinal, engines);
}

/// NVENC engines of GPU `ordinal` as learnt ([`learn_engines`]); `None` before any session on
/// it.
pub fn engines(ordinal: i32) -> Option<u32> {
    ENGINES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(|m| m.get(&ordinal).copied())
}
/// Held from reading the load to the new session being counted, so that the sessions of one
/// process are placed one after the other (each sees the ones before it).
static PLACING: Mutex<()> = Mutex::new(());

fn own() -> MutexGuard<'static, Option<HashMap<i32, u32>>> {
    OWN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sessions of this process on GPU `ordinal` (counted by [`OwnSession`]).
pub fn own_sessions(ordinal: i32) -> u32 {
    own()
        .as_ref()
        .and_then(|m| m.get(&ordinal).copied())
        .unwrap_or(0)
}

/// Serialises placements in this process; hold it from reading the load until the session is
/// open and counted.
pub fn placing() -> MutexGuard<'static, ()> {
    PLACING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Counts one session of this process on a GPU while it lives.
#[derive(Debug)]
pub struct OwnSession(i32);

impl OwnSession {
    pub fn new(ordinal: i32) -> OwnSession {
        *own()
            .get_or_insert_with(HashMap::new)
            .entry(ordinal)
            .or_insert(0) += 1;
        OwnSession(ordinal)
    }
}

impl Drop for OwnSession {
    fn drop(&mut self) {
        if let Some(n) = own().as_mut().and_then(|m| m.get_mut(&self.0)) {
            *n = n.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nvml::EncoderStats;

    fn gpu(ordinal: i32, sessions: Option<u32>, util: u32, engines: u32) -> GpuView {
        GpuView {
            ordinal,
            name: format!("gpu{ordinal}"),
            others: None,
            load: sessions.map(|s| EncoderLoad {
                stats: Some(EncoderStats {
                    sessions: s,
                    ..Default::default()
                }),
                utilisation: Some(util),
                capacity: Some(100 - util),
            }),
            engines,
            own_sessions: 0,
        }
    }

    #[test]
    fn upstream_memory_wins() {
        let p = place(Some(1), &[gpu(0, Some(0), 0, 1), gpu(1, Some(5), 90, 1)]);
        assert_eq!(p.order, vec![1, 0]);
        assert_eq!(p.basis, Basis::UpstreamMemory);
        assert!(p.reason.contains("upstream CUDA memory"), "{}", p.reason);
        // Upstream memory on a GPU that is not a candidate: ignored.
        assert_eq!(place(Some(7), &[gpu(0, Some(0), 0, 1)]).basis, Basis::Nvml);
    }

    #[test]
    fn nvml_sessions_per_engine_then_utilisation() {
        // GPU 0: 4 sessions on 2 engines (2 each) beats GPU 1: 3 on 1.
        let p = place(None, &[gpu(1, Some(3), 10, 1), gpu(0, Some(4), 50, 2)]);
        assert_eq!(p.order, vec![0, 1]);
        assert_eq!(p.basis, Basis::Nvml);
        assert!(
            p.reason.starts_with("GPU 0 (gpu0): 4 session(s)"),
            "{}",
            p.reason
        );
        assert!(p.reason.contains("others: GPU 1 (gpu1)"), "{}", p.reason);
        // Equal sessions: the less utilised.
        let p = place(None, &[gpu(0, Some(2), 60, 1), gpu(1, Some(2), 20, 1)]);
        assert_eq!(p.order, vec![1, 0]);
        // All equal: the lowest ordinal.
        let p = place(None, &[gpu(1, Some(0), 0, 1), gpu(0, Some(0), 0, 1)]);
        assert_eq!(p.order, vec![0, 1]);
    }

    #[test]
    fn engines_count_only_when_known_for_every_gpu() {
        // GPU 1's engines are not known yet: raw session counts (GPU 1 has fewer).
        let p = place(None, &[gpu(0, Some(4), 0, 2), gpu(1, Some(3), 0, 0)]);
        assert_eq!(p.order, vec![1, 0]);
        // Both known: per engine.
        let p = place(None, &[gpu(0, Some(4), 0, 2), gpu(1, Some(3), 0, 1)]);
        assert_eq!(p.order, vec![0, 1]);
    }

    #[test]
    fn a_gpu_without_capacity_for_the_codec_goes_last() {
        let mut none = gpu(0, Some(0), 0, 1);
        let l = none.load.as_mut().unwrap();
        l.capacity = None;
        l.utilisation = None;
        let p = place(None, &[none, gpu(1, Some(5), 80, 1)]);
        assert_eq!(p.order, vec![1, 0]);
        assert!(
            p.reason.contains("no NVENC capacity for the codec"),
            "{}",
            p.reason
        );
    }

    #[test]
    fn a_gpu_at_its_cap_goes_last() {
        let mut full = gpu(0, Some(0), 0, 1);
        full.load.as_mut().unwrap().capacity = Some(0);
        let p = place(None, &[full, gpu(1, Some(6), 90, 1)]);
        assert_eq!(p.order, vec![1, 0]);
        assert!(p.reason.contains("no capacity left"), "{}", p.reason);
    }

    #[test]
    fn without_nvml_own_sessions() {
        let mut a = gpu(0, None, 0, 1);
        a.own_sessions = 2;
        let mut b = gpu(1, None, 0, 1);
        b.own_sessions = 1;
        let p = place(None, &[a, b]);
        assert_eq!(p.order, vec![1, 0]);
        assert_eq!(p.basis, Basis::OwnSessions);
        assert!(p.reason.contains("NVML unavailable"), "{}", p.reason);
        assert!(place(None, &[]).order.is_empty());
    }

    #[test]
    fn alternating_placement_balances_two_processes() {
        // Seven sessions placed one after the other in process A (NVML has not seen them open
        // yet: they count as A's own), then seven in process B, which sees A's through NVML as
        // other processes' sessions: 7 and 7.
        let mut a = [0u32; 2];
        for _ in 0..7 {
            let mut v = [gpu(0, Some(0), 0, 1), gpu(1, Some(0), 0, 1)];
            v[0].own_sessions = a[0];
            v[1].own_sessions = a[1];
            a[place(None, &v).order[0] as usize] += 1;
        }
        assert_eq!(a, [4, 3]);
        let mut b = [0u32; 2];
        for _ in 0..7 {
            let mut v = [gpu(0, Some(a[0]), 0, 1), gpu(1, Some(a[1]), 0, 1)];
            v[0].own_sessions = b[0];
            v[1].own_sessions = b[1];
            b[place(None, &v).order[0] as usize] += 1;
        }
        assert_eq!([a[0] + b[0], a[1] + b[1]], [7, 7]);
    }

    #[test]
    fn refusals() {
        assert_eq!(Refusal::of_status(10), Refusal::SessionLimit);
        assert_eq!(Refusal::of_status(2), Refusal::NoNvenc);
        assert_eq!(Refusal::of_status(12), Refusal::UnsupportedFormat);
        assert_eq!(Refusal::of_status(20), Refusal::Error);
        assert!(Refusal::SessionLimit.moves_on(false));
        assert!(!Refusal::NoNvenc.moves_on(false));
        assert!(Refusal::NoNvenc.moves_on(true));
        assert!(!Refusal::NoDriver.moves_on(true));
        let t = |o, r| Tried {
            ordinal: o,
            name: "g".into(),
            refusal: r,
            status: None,
            status_name: String::new(),
            message: "m".into(),
        };
        assert_eq!(overall(&[]), Refusal::NoGpu);
        assert_eq!(
            overall(&[t(0, Refusal::NoNvenc), t(1, Refusal::NoNvenc)]),
            Refusal::NoNvenc
        );
        assert_eq!(
            overall(&[t(0, Refusal::NoNvenc), t(1, Refusal::SessionLimit)]),
            Refusal::SessionLimit
        );
    }

    #[test]
    fn error_structure_names_each_gpu() {
        gst::init().unwrap();
        let tried = [
            Tried {
                ordinal: 0,
                name: "RTX".into(),
                refusal: Refusal::SessionLimit,
                status: Some(10),
                status_name: "NV_ENC_ERR_OUT_OF_MEMORY".into(),
                message: "full".into(),
            },
            Tried {
                ordinal: 1,
                name: "H100".into(),
                refusal: Refusal::NoNvenc,
                status: Some(2),
                status_name: "NV_ENC_ERR_UNSUPPORTED_DEVICE".into(),
                message: "none".into(),
            },
        ];
        let s = error_structure(overall(&tried), &tried);
        assert_eq!(s.name(), ERROR_STRUCTURE);
        assert_eq!(s.get::<&str>("reason").unwrap(), "session-limit");
        let gpus = s.get::<gst::Array>("gpus").unwrap();
        assert_eq!(gpus.len(), 2);
        let g1 = gpus.as_slice()[1].get::<gst::Structure>().unwrap();
        assert_eq!(g1.get::<i32>("index").unwrap(), 1);
        assert_eq!(g1.get::<&str>("reason").unwrap(), "no-nvenc");
        assert_eq!(g1.get::<i32>("status").unwrap(), 2);
        let text = error_text(Refusal::SessionLimit, &tried);
        assert!(
            text.contains("GPU 0 (RTX): full; GPU 1 (H100): none"),
            "{text}"
        );
    }

    #[test]
    fn the_next_gpu_after_a_refusal() {
        let refuse = |o: i32, r: Refusal| Tried {
            ordinal: o,
            name: format!("gpu{o}"),
            refusal: r,
            status: None,
            status_name: String::new(),
            message: "no".into(),
        };
        // GPU 0 at its cap: GPU 1 opens; the refusal is reported.
        let r = first_that_opens(&[0, 1, 2], false, |o| {
            if o == 0 {
                Err(refuse(o, Refusal::SessionLimit))
            } else {
                Ok(o * 10)
            }
        })
        .unwrap();
        assert_eq!((r.0, r.1, r.2.len()), (1, 10, 1));
        // No NVENC on GPU 0: the next only with automatic placement.
        let no = |o: i32| -> Result<i32, Tried> {
            if o == 0 {
                Err(refuse(o, Refusal::NoNvenc))
            } else {
                Ok(o)
            }
        };
        assert_eq!(first_that_opens(&[0, 1], false, no).unwrap_err().len(), 1);
        assert_eq!(first_that_opens(&[0, 1], true, no).unwrap().0, 1);
        // All refuse: every answer.
        let all = first_that_opens(&[0, 1, 2], true, |o| {
            Err::<(), _>(refuse(o, Refusal::SessionLimit))
        })
        .unwrap_err();
        assert_eq!(all.iter().map(|t| t.ordinal).collect::<Vec<_>>(), [0, 1, 2]);
    }

    #[test]
    fn engines_are_learnt() {
        assert_eq!(engines(6), None);
        learn_engines(6, 2);
        assert_eq!(engines(6), Some(2));
    }

    #[test]
    fn own_sessions_are_counted_while_alive() {
        let before = own_sessions(5);
        let a = OwnSession::new(5);
        let b = OwnSession::new(5);
        assert_eq!(own_sessions(5), before + 2);
        drop(a);
        drop(b);
        assert_eq!(own_sessions(5), before);
    }
}
