//! `libnvidia-ml.so.1` stand-in: the NVML calls an encoder needs to place its sessions, over
//! the emulated machine of the other stand-ins.
//!
//! - Devices: the GPUs of `nvemu/common/gpus.rs` (`NVEMU_GPU_COUNT`, `NVEMU_GPU_MODELS` /
//!   `NVEMU_GPU`), in CUDA ordinal order, with the names, UUIDs and PCI bus ids the CUDA
//!   stand-in reports (the real NVML orders by PCI bus id, which is CUDA's order only with
//!   `CUDA_DEVICE_ORDER=PCI_BUS_ID`; here both agree).
//! - Encode sessions: the lines the NVENC stand-in keeps (`nvemu/common/registry.rs`): those of
//!   every process sharing `NVEMU_SYSTEM`, else those of this process (asked of the NVENC
//!   stand-in if it is loaded in this process; none otherwise).
//! - `nvmlDeviceGetEncoderUtilization`: the engine time of the pictures the sessions of the GPU
//!   finished in the last second (from the NVENC stand-in's timing model, `NVEMU_TIMING` /
//!   `NVEMU_ENCODE_MS`; 0 without one), over the GPU's engines, in percent (at most 100);
//!   `samplingPeriodUs` 1000000. The real driver samples over a period of its own choosing.
//! - `nvmlDeviceGetEncoderStats`: session count; mean of the sessions' fps and of their mean
//!   latency (submission to done, timing model) over the last second.
//! - `nvmlDeviceGetEncoderCapacity`: *assumed* meaning (NVML documents only "as a percentage of
//!   maximum encoder capacity"): what is left, `100 - utilisation`, and 0 while the GPU's
//!   session cap is reached; `NVML_ERROR_NOT_SUPPORTED` for a codec the model lacks (AV1 on
//!   `turing` and `ampere`).
//! - On `no-nvenc` (the H100 model) NVML answers as the real driver 580.159.04 did on an H200
//!   (no NVENC; device machine, 2026-12-07, `docs/placement.md`): utilisation 0 % with a
//!   sampling period of 100,000 us (success), capacity 100 for H.264 and HEVC (NVML does not
//!   tell such a GPU apart) and `NVML_ERROR_NOT_SUPPORTED` for AV1, stats and sessions 0.
//! - Before `nvmlInit*` (counted: as many `nvmlShutdown` as inits) every device call answers
//!   `NVML_ERROR_UNINITIALIZED`; NULL out-pointers `NVML_ERROR_INVALID_ARGUMENT`; a buffer too
//!   small `NVML_ERROR_INSUFFICIENT_SIZE`, as `nvml.h` documents.
//!
//! Declarations from NVIDIA's `nvml.h` (NVML API version 13, as in NVIDIA/go-nvml's
//! `gen/nvml/nvml.h`): `nvmlDevice_t` is an opaque pointer (here the address of a byte of a
//! static array, one per GPU, never dereferenced by clients), `nvmlReturn_t` and
//! `nvmlEncoderType_t` are C enums (`c_uint`), `nvmlPciInfo_t` is laid out below.
//! Calls are not traced.
#![allow(non_snake_case, non_camel_case_types)]

use std::ffi::{CStr, c_char, c_uint};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;

#[path = "../../common/gpus.rs"]
#[allow(dead_code)]
mod gpus;
#[path = "../../common/registry.rs"]
#[allow(dead_code)]
mod registry;

use registry::Rec;

pub type nvmlReturn_t = c_uint;
pub type nvmlDevice_t = *mut u8;
pub type nvmlEncoderType_t = c_uint;

pub const NVML_SUCCESS: nvmlReturn_t = 0;
pub const NVML_ERROR_UNINITIALIZED: nvmlReturn_t = 1;
pub const NVML_ERROR_INVALID_ARGUMENT: nvmlReturn_t = 2;
pub const NVML_ERROR_NOT_SUPPORTED: nvmlReturn_t = 3;
pub const NVML_ERROR_NOT_FOUND: nvmlReturn_t = 6;
pub const NVML_ERROR_INSUFFICIENT_SIZE: nvmlReturn_t = 7;
pub const NVML_ERROR_UNKNOWN: nvmlReturn_t = 999;

pub const NVML_ENCODER_QUERY_H264: nvmlEncoderType_t = 0;
pub const NVML_ENCODER_QUERY_HEVC: nvmlEncoderType_t = 1;
pub const NVML_ENCODER_QUERY_AV1: nvmlEncoderType_t = 2;

/// `nvmlPciInfo_t` (`nvmlDeviceGetPciInfo_v3`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct nvmlPciInfo_t {
    /// `domain:bus:device.function`, 4-digit domain (`NVML_DEVICE_PCI_BUS_ID_LEGACY_FMT`).
    pub busIdLegacy: [c_char; 16],
    pub domain: c_uint,
    pub bus: c_uint,
    pub device: c_uint,
    /// Device id << 16 | vendor id (0x10de).
    pub pciDeviceId: c_uint,
    pub pciSubSystemId: c_uint,
    /// `domain:bus:device.function`, 8-digit domain (`NVML_DEVICE_PCI_BUS_ID_FMT`).
    pub busId: [c_char; 32],
}

/// `nvmlEncoderSessionInfo_t` (`nvmlDeviceGetEncoderSessions`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct nvmlEncoderSessionInfo_t {
    pub sessionId: c_uint,
    pub pid: c_uint,
    pub vgpuInstance: c_uint,
    pub codecType: nvmlEncoderType_t,
    pub hResolution: c_uint,
    pub vResolution: c_uint,
    pub averageFps: c_uint,
    pub averageLatency: c_uint,
}

const _: () = {
    assert!(std::mem::size_of::<nvmlPciInfo_t>() == 68);
    assert!(std::mem::offset_of!(nvmlPciInfo_t, busId) == 36);
    assert!(std::mem::size_of::<nvmlEncoderSessionInfo_t>() == 32);
};

/// `nvmlDeviceGetName`'s buffer size (`NVML_DEVICE_NAME_V2_BUFFER_SIZE`).
const NAME_BUFFER: usize = 96;

/// Driver version reported (the driver the reference measurements were made with).
const DRIVER_VERSION: &str = "580.159.04";

/// Outstanding `nvmlInit*` calls.
static INITS: Mutex<u32> = Mutex::new(0);

/// One byte per possible GPU: their addresses are the device handles.
static HANDLES: [u8; 8] = [0; 8];

type R<T = ()> = Result<T, nvmlReturn_t>;

fn run(f: impl FnOnce() -> R) -> nvmlReturn_t {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => NVML_SUCCESS,
        Ok(Err(e)) => e,
        Err(_) => NVML_ERROR_UNKNOWN,
    }
}

fn need_init() -> R {
    if *INITS.lock().unwrap_or_else(|e| e.into_inner()) == 0 {
        Err(NVML_ERROR_UNINITIALIZED)
    } else {
        Ok(())
    }
}

fn handle(i: usize) -> nvmlDevice_t {
    HANDLES.as_ptr().wrapping_add(i).cast_mut()
}

/// The ordinal of a device handle, after the init check.
fn ordinal(device: nvmlDevice_t) -> R<usize> {
    need_init()?;
    let i = (device as usize).wrapping_sub(HANDLES.as_ptr() as usize);
    if i < gpus::gpu_count() && !device.is_null() {
        Ok(i)
    } else {
        Err(NVML_ERROR_INVALID_ARGUMENT)
    }
}

fn put<T>(p: *mut T, v: T) -> R {
    if p.is_null() {
        return Err(NVML_ERROR_INVALID_ARGUMENT);
    }
    // SAFETY: a non-NULL out-pointer of the client, which the API says points to a T.
    unsafe { p.write_unaligned(v) };
    Ok(())
}

fn get<T>(p: *const T) -> R<T> {
    if p.is_null() {
        return Err(NVML_ERROR_INVALID_ARGUMENT);
    }
    // SAFETY: a non-NULL in-pointer of the client, which the API says points to a T.
    Ok(unsafe { p.read_unaligned() })
}

/// Writes `s` and a NUL into the client's buffer of `len` bytes.
fn put_str(buf: *mut c_char, len: c_uint, s: &str) -> R {
    if buf.is_null() {
        return Err(NVML_ERROR_INVALID_ARGUMENT);
    }
    if (len as usize) < s.len() + 1 {
        return Err(NVML_ERROR_INSUFFICIENT_SIZE);
    }
    // SAFETY: the client's buffer holds `len` bytes, at least `s.len() + 1`.
    unsafe {
        std::ptr::copy_nonoverlapping(s.as_ptr(), buf.cast::<u8>(), s.len());
        buf.add(s.len()).write(0);
    }
    Ok(())
}

fn fixed<const N: usize>(s: &str) -> [c_char; N] {
    let mut a = [0 as c_char; N];
    for (d, b) in a.iter_mut().zip(s.bytes().take(N - 1)) {
        *d = b as c_char;
    }
    a
}

/// The client's C string, if readable.
fn c_str<'a>(p: *const c_char) -> R<&'a str> {
    if p.is_null() {
        return Err(NVML_ERROR_INVALID_ARGUMENT);
    }
    // SAFETY: a non-NULL NUL-terminated string of the client, as the API requires.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|_| NVML_ERROR_INVALID_ARGUMENT)
}

// ---------------------------------------------------------------------------------------------
// The sessions

type FnSnapshot = unsafe extern "C" fn(*mut c_char, usize) -> usize;

/// This process's sessions as the NVENC stand-in loaded in it keeps them (none if it is not).
fn local_sessions() -> Vec<Rec> {
    // RTLD_NOLOAD: only a library the process has already loaded.
    // SAFETY: no initialiser runs for a library already loaded.
    let lib = unsafe {
        libloading::os::unix::Library::open(
            Some("libnvidia-encode.so.1"),
            libc::RTLD_NOLOAD | libc::RTLD_LAZY,
        )
    };
    let Ok(lib) = lib else {
        return Vec::new();
    };
    // SAFETY: the NVENC stand-in's export has this type (`nvemu-nvenc`'s `system` module).
    let Ok(f) = (unsafe { lib.get::<FnSnapshot>(b"nvemu_nvenc_system_snapshot\0") }) else {
        return Vec::new();
    };
    for _ in 0..4 {
        // SAFETY: NULL buffer: only the length is returned.
        let n = unsafe { f(std::ptr::null_mut(), 0) };
        let mut buf = vec![0u8; n];
        // SAFETY: `buf` holds `buf.len()` writable bytes.
        let m = unsafe { f(buf.as_mut_ptr().cast(), buf.len()) };
        if m == n {
            return registry::parse_all(&String::from_utf8_lossy(&buf));
        }
    }
    Vec::new()
}

/// The sessions of the machine.
fn sessions() -> Vec<Rec> {
    match registry::shared_path() {
        Some(p) => registry::read_shared(&p).unwrap_or_default(),
        None => local_sessions(),
    }
}

fn on_device(recs: &[Rec], i: usize) -> impl Iterator<Item = &Rec> {
    recs.iter().filter(move |r| r.device as usize == i)
}

/// Encoder utilisation of GPU `i`, percent.
fn utilisation(recs: &[Rec], i: usize) -> u32 {
    let engines = gpus::model_of(i).engines.max(1) as u64;
    let now = registry::now_ns();
    let busy: u64 = on_device(recs, i)
        .filter(|r| r.fresh(now))
        .map(|r| r.busy_ns)
        .sum();
    (busy.saturating_mul(100) / (engines * registry::WINDOW_NS)).min(100) as u32
}

// ---------------------------------------------------------------------------------------------
// Init, errors, system

/// Flags `NVML_INIT_FLAG_NO_GPUS` (1) and `NVML_INIT_FLAG_NO_ATTACH` (2) are accepted.
#[unsafe(no_mangle)]
pub extern "C" fn nvmlInitWithFlags(flags: c_uint) -> nvmlReturn_t {
    run(|| {
        // NVML_INIT_FLAG_NO_GPUS (1), NVML_INIT_FLAG_NO_ATTACH (2): nothing to attach here.
        if flags & !3 != 0 {
            return Err(NVML_ERROR_INVALID_ARGUMENT);
        }
        *INITS.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlInit_v2() -> nvmlReturn_t {
    nvmlInitWithFlags(0)
}

/// The first version's name (same behaviour here).
#[unsafe(no_mangle)]
pub extern "C" fn nvmlInit() -> nvmlReturn_t {
    nvmlInitWithFlags(0)
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlShutdown() -> nvmlReturn_t {
    run(|| {
        let mut n = INITS.lock().unwrap_or_else(|e| e.into_inner());
        if *n == 0 {
            return Err(NVML_ERROR_UNINITIALIZED);
        }
        *n -= 1;
        Ok(())
    })
}

/// A static description of a status (never NULL).
#[unsafe(no_mangle)]
pub extern "C" fn nvmlErrorString(result: nvmlReturn_t) -> *const c_char {
    let s: &'static CStr = match result {
        0 => c"Success",
        1 => c"Uninitialized: call nvmlInit first",
        2 => c"Invalid argument",
        3 => c"Not supported on this device",
        4 => c"No permission",
        5 => c"Already initialized",
        6 => c"Not found",
        7 => c"Insufficient size",
        8 => c"Insufficient external power",
        9 => c"Driver not loaded",
        10 => c"Timeout",
        12 => c"NVML shared library not found",
        13 => c"Function not found",
        15 => c"GPU is lost",
        20 => c"Insufficient memory",
        21 => c"No data",
        28 => c"No GPUs were found",
        999 => c"Unknown error",
        _ => c"Unknown error code",
    };
    s.as_ptr()
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlSystemGetDriverVersion(version: *mut c_char, length: c_uint) -> nvmlReturn_t {
    run(|| {
        need_init()?;
        put_str(version, length, DRIVER_VERSION)
    })
}

// ---------------------------------------------------------------------------------------------
// Devices

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetCount_v2(count: *mut c_uint) -> nvmlReturn_t {
    run(|| {
        need_init()?;
        put(count, gpus::gpu_count() as c_uint)
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetCount(count: *mut c_uint) -> nvmlReturn_t {
    nvmlDeviceGetCount_v2(count)
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetHandleByIndex_v2(
    index: c_uint,
    device: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    run(|| {
        need_init()?;
        if index as usize >= gpus::gpu_count() {
            return Err(NVML_ERROR_INVALID_ARGUMENT);
        }
        put(device, handle(index as usize))
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetHandleByIndex(
    index: c_uint,
    device: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    nvmlDeviceGetHandleByIndex_v2(index, device)
}

/// Accepts the PCI bus id forms `nvml.h` and `cuDeviceGetPCIBusId` print
/// (`0000:01:00.0`, `00000000:01:00.0`, `01:00.0`).
#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetHandleByPciBusId_v2(
    pci_bus_id: *const c_char,
    device: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    run(|| {
        need_init()?;
        let s = c_str(pci_bus_id)?;
        if gpus::parse_pci_bus_id(s).is_none() {
            return Err(NVML_ERROR_INVALID_ARGUMENT);
        }
        let i = gpus::ordinal_of_pci_bus_id(s).ok_or(NVML_ERROR_NOT_FOUND)?;
        put(device, handle(i))
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetHandleByUUID(
    uuid: *const c_char,
    device: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    run(|| {
        need_init()?;
        let s = c_str(uuid)?;
        let i = (0..gpus::gpu_count())
            .find(|&i| gpus::uuid_string(i).eq_ignore_ascii_case(s))
            .ok_or(NVML_ERROR_NOT_FOUND)?;
        put(device, handle(i))
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetIndex(device: nvmlDevice_t, index: *mut c_uint) -> nvmlReturn_t {
    run(|| put(index, ordinal(device)? as c_uint))
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetName(
    device: nvmlDevice_t,
    name: *mut c_char,
    length: c_uint,
) -> nvmlReturn_t {
    run(|| {
        let i = ordinal(device)?;
        let n = std::env::var("NVEMU_GPU_NAME")
            .ok()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| gpus::model_of(i).name.to_owned());
        let n: String = n.chars().take(NAME_BUFFER - 1).collect();
        put_str(name, length, &n)
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetUUID(
    device: nvmlDevice_t,
    uuid: *mut c_char,
    length: c_uint,
) -> nvmlReturn_t {
    run(|| {
        let i = ordinal(device)?;
        put_str(uuid, length, &gpus::uuid_string(i))
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetPciInfo_v3(
    device: nvmlDevice_t,
    pci: *mut nvmlPciInfo_t,
) -> nvmlReturn_t {
    run(|| {
        let i = ordinal(device)?;
        let (domain, bus, dev) = gpus::pci_location(i);
        put(
            pci,
            nvmlPciInfo_t {
                busIdLegacy: fixed(&format!("{domain:04X}:{bus:02X}:{dev:02X}.0")),
                domain,
                bus,
                device: dev,
                pciDeviceId: gpus::model_of(i).pci_device << 16 | 0x10de,
                pciSubSystemId: 0,
                busId: fixed(&format!("{domain:08X}:{bus:02X}:{dev:02X}.0")),
            },
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Encoder

/// `nvmlDeviceGetEncoderUtilization`'s sampling period on a GPU without NVENC, as the real
/// driver 580.159.04 answered on an H200.
const NO_NVENC_SAMPLING_US: c_uint = 100_000;

/// Whether GPU `i` has NVENC at all.
fn has_nvenc(i: usize) -> bool {
    gpus::model_of(i).engines > 0
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetEncoderUtilization(
    device: nvmlDevice_t,
    utilization: *mut c_uint,
    sampling_period_us: *mut c_uint,
) -> nvmlReturn_t {
    run(|| {
        let i = ordinal(device)?;
        if utilization.is_null() || sampling_period_us.is_null() {
            return Err(NVML_ERROR_INVALID_ARGUMENT);
        }
        if !has_nvenc(i) {
            // As the real driver answered on an H200, which has no NVENC (2026-12-07).
            put(utilization, 0)?;
            return put(sampling_period_us, NO_NVENC_SAMPLING_US);
        }
        put(utilization, utilisation(&sessions(), i))?;
        put(sampling_period_us, (registry::WINDOW_NS / 1000) as c_uint)
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetEncoderCapacity(
    device: nvmlDevice_t,
    encoder_query_type: nvmlEncoderType_t,
    encoder_capacity: *mut c_uint,
) -> nvmlReturn_t {
    run(|| {
        let i = ordinal(device)?;
        if encoder_capacity.is_null() {
            return Err(NVML_ERROR_INVALID_ARGUMENT);
        }
        let m = gpus::model_of(i);
        match encoder_query_type {
            // The real driver's answer on an H200, which has no NVENC (2026-12-07): full
            // capacity for H.264 and HEVC, NOT_SUPPORTED for AV1 (below, `m.av1` is false).
            NVML_ENCODER_QUERY_H264 | NVML_ENCODER_QUERY_HEVC if !has_nvenc(i) => {
                return put(encoder_capacity, 100);
            }
            NVML_ENCODER_QUERY_H264 | NVML_ENCODER_QUERY_HEVC => {}
            NVML_ENCODER_QUERY_AV1 if m.av1 => {}
            NVML_ENCODER_QUERY_AV1 => {
                return Err(NVML_ERROR_NOT_SUPPORTED);
            }
            _ => return Err(NVML_ERROR_INVALID_ARGUMENT),
        }
        let recs = sessions();
        let cap = registry::cap_for(i as u32, m.geforce);
        let full = matches!(cap.usage(&recs, i as u32), (n, Some(c)) if n >= c);
        put(
            encoder_capacity,
            if full { 0 } else { 100 - utilisation(&recs, i) },
        )
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetEncoderStats(
    device: nvmlDevice_t,
    session_count: *mut c_uint,
    average_fps: *mut c_uint,
    average_latency: *mut c_uint,
) -> nvmlReturn_t {
    run(|| {
        let i = ordinal(device)?;
        if session_count.is_null() || average_fps.is_null() || average_latency.is_null() {
            return Err(NVML_ERROR_INVALID_ARGUMENT);
        }
        let recs = sessions();
        let now = registry::now_ns();
        let mine: Vec<&Rec> = on_device(&recs, i).collect();
        let active: Vec<&&Rec> = mine.iter().filter(|r| r.fresh(now) && r.fps > 0).collect();
        let (fps, lat) = if active.is_empty() {
            (0, 0)
        } else {
            let n = active.len() as u64;
            (
                active.iter().map(|r| r.fps as u64).sum::<u64>() / n,
                active.iter().map(|r| r.latency_us as u64).sum::<u64>() / n,
            )
        };
        put(session_count, mine.len() as c_uint)?;
        put(average_fps, fps as c_uint)?;
        put(average_latency, lat as c_uint)
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetEncoderSessions(
    device: nvmlDevice_t,
    session_count: *mut c_uint,
    session_infos: *mut nvmlEncoderSessionInfo_t,
) -> nvmlReturn_t {
    run(|| {
        let i = ordinal(device)?;
        if session_count.is_null() {
            return Err(NVML_ERROR_INVALID_ARGUMENT);
        }
        let recs = sessions();
        let now = registry::now_ns();
        let mine: Vec<&Rec> = on_device(&recs, i).collect();
        let room = get(session_count)? as usize;
        put(session_count, mine.len() as c_uint)?;
        if room == 0 {
            return Ok(());
        }
        if room < mine.len() {
            return Err(NVML_ERROR_INSUFFICIENT_SIZE);
        }
        for (k, r) in mine.iter().enumerate() {
            let fresh = r.fresh(now);
            put(
                session_infos.wrapping_add(k),
                nvmlEncoderSessionInfo_t {
                    sessionId: r.session as c_uint,
                    pid: r.pid,
                    vgpuInstance: 0,
                    codecType: r.codec,
                    hResolution: r.width,
                    vResolution: r.height,
                    averageFps: if fresh { r.fps } else { 0 },
                    averageLatency: if fresh { r.latency_us } else { 0 },
                },
            )?;
        }
        Ok(())
    })
}
