//! The NVML stand-in's calls in this process, without sessions: init counting, devices and
//! their identity, argument checks, error strings.

use nvidia_ml::*;
use std::ffi::{CStr, c_char};
use std::sync::Mutex;

static ENV: Mutex<()> = Mutex::new(());

fn set(vars: &[(&str, &str)]) -> std::sync::MutexGuard<'static, ()> {
    let g = ENV.lock().unwrap_or_else(|e| e.into_inner());
    for k in [
        "NVEMU_GPU",
        "NVEMU_GPU_MODELS",
        "NVEMU_GPU_COUNT",
        "NVEMU_GPU_NAME",
        "NVEMU_SYSTEM",
        "NVEMU_SESSION_LIMIT",
    ] {
        // SAFETY: the tests of this binary hold ENV while they touch the environment.
        unsafe { std::env::remove_var(k) };
    }
    for (k, v) in vars {
        // SAFETY: as above.
        unsafe { std::env::set_var(k, v) };
    }
    g
}

fn handle(i: u32) -> nvmlDevice_t {
    let mut h = std::ptr::null_mut();
    assert_eq!(nvmlDeviceGetHandleByIndex_v2(i, &mut h), NVML_SUCCESS);
    h
}

fn text(f: extern "C" fn(nvmlDevice_t, *mut c_char, u32) -> u32, h: nvmlDevice_t) -> String {
    let mut buf = [0 as c_char; 96];
    assert_eq!(f(h, buf.as_mut_ptr(), 96), NVML_SUCCESS);
    // SAFETY: NUL-terminated by the call.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

#[test]
fn init_is_counted() {
    let _g = set(&[]);
    let mut n = 0;
    // Balanced: other tests of this binary may hold an init, so only check the pairing.
    assert_eq!(nvmlInit_v2(), NVML_SUCCESS);
    assert_eq!(nvmlInitWithFlags(1), NVML_SUCCESS);
    assert_eq!(nvmlInitWithFlags(4), NVML_ERROR_INVALID_ARGUMENT);
    assert_eq!(nvmlDeviceGetCount_v2(&mut n), NVML_SUCCESS);
    assert_eq!(nvmlShutdown(), NVML_SUCCESS);
    assert_eq!(nvmlShutdown(), NVML_SUCCESS);
    assert_eq!(n, 1);
}

#[test]
fn devices_by_index_pci_and_uuid() {
    let _g = set(&[("NVEMU_GPU_MODELS", "turing,ada,ampere")]);
    assert_eq!(nvmlInit_v2(), NVML_SUCCESS);
    let mut n = 0;
    assert_eq!(nvmlDeviceGetCount_v2(&mut n), NVML_SUCCESS);
    assert_eq!(n, 3, "as many as NVEMU_GPU_MODELS names");
    let mut h = std::ptr::null_mut();
    assert_eq!(
        nvmlDeviceGetHandleByIndex_v2(3, &mut h),
        NVML_ERROR_INVALID_ARGUMENT
    );
    assert_eq!(
        text(nvmlDeviceGetName, handle(1)),
        "NVIDIA GeForce RTX 4090 (nvemu)"
    );
    let mut pci: nvmlPciInfo_t = zeroed_pci();
    assert_eq!(nvmlDeviceGetPciInfo_v3(handle(2), &mut pci), NVML_SUCCESS);
    assert_eq!((pci.domain, pci.bus, pci.device), (0, 3, 0));
    assert_eq!(pci.pciDeviceId, 0x24b0_10de, "RTX A4000");
    // SAFETY: NUL-terminated by the call.
    let bus = unsafe { CStr::from_ptr(pci.busId.as_ptr()) };
    assert_eq!(bus.to_str().unwrap(), "00000000:03:00.0");
    // CUDA's form of the bus id finds the same device, and so does the UUID.
    for id in [c"0000:03:00.0", c"00000000:03:00.0", c"03:00.0"] {
        let mut h = std::ptr::null_mut();
        assert_eq!(
            nvmlDeviceGetHandleByPciBusId_v2(id.as_ptr(), &mut h),
            NVML_SUCCESS
        );
        assert_eq!(h, handle(2), "{id:?}");
    }
    assert_eq!(
        nvmlDeviceGetHandleByPciBusId_v2(c"0000:09:00.0".as_ptr(), &mut h),
        NVML_ERROR_NOT_FOUND
    );
    let uuid = text(nvmlDeviceGetUUID, handle(0));
    assert!(uuid.starts_with("GPU-") && uuid.len() == 40, "{uuid}");
    let c = std::ffi::CString::new(uuid).unwrap();
    assert_eq!(nvmlDeviceGetHandleByUUID(c.as_ptr(), &mut h), NVML_SUCCESS);
    assert_eq!(h, handle(0));
    assert_eq!(nvmlShutdown(), NVML_SUCCESS);
}

#[test]
fn arguments_are_checked() {
    let _g = set(&[]);
    assert_eq!(nvmlInit_v2(), NVML_SUCCESS);
    let h = handle(0);
    let mut small = [0 as c_char; 4];
    assert_eq!(
        nvmlDeviceGetName(h, small.as_mut_ptr(), 4),
        NVML_ERROR_INSUFFICIENT_SIZE
    );
    let mut u = 0;
    assert_eq!(
        nvmlDeviceGetEncoderUtilization(h, &mut u, std::ptr::null_mut()),
        NVML_ERROR_INVALID_ARGUMENT
    );
    assert_eq!(
        nvmlDeviceGetEncoderCapacity(h, 7, &mut u),
        NVML_ERROR_INVALID_ARGUMENT
    );
    let bogus = 0x1000 as nvmlDevice_t;
    assert_eq!(
        nvmlDeviceGetEncoderStats(bogus, &mut u, &mut u, &mut u),
        NVML_ERROR_INVALID_ARGUMENT
    );
    // No sessions in this process (the NVENC stand-in is not loaded).
    let mut n = 5u32;
    assert_eq!(
        nvmlDeviceGetEncoderSessions(h, &mut n, std::ptr::null_mut()),
        NVML_SUCCESS
    );
    assert_eq!(n, 0);
    // SAFETY: a static NUL-terminated string.
    let s = unsafe { CStr::from_ptr(nvmlErrorString(NVML_ERROR_NOT_SUPPORTED)) };
    assert!(!s.to_bytes().is_empty());
    assert_eq!(nvmlShutdown(), NVML_SUCCESS);
}

/// A GPU without NVENC (`no-nvenc`, the H100 model) answers as the real driver 580.159.04 did on
/// an H200 (device machine, 2026-12-07): utilisation 0 % over 100,000 us, capacity 100 for
/// H.264 and HEVC, NOT_SUPPORTED for AV1; 0 sessions. A GPU with NVENC beside it is unchanged.
#[test]
fn no_nvenc_answers_as_the_real_driver() {
    let _g = set(&[
        ("NVEMU_GPU_COUNT", "2"),
        ("NVEMU_GPU_MODELS", "no-nvenc,ada"),
    ]);
    assert_eq!(nvmlInit_v2(), NVML_SUCCESS);
    let (none, ada) = (handle(0), handle(1));
    let (mut u, mut period) = (7, 0);
    assert_eq!(
        nvmlDeviceGetEncoderUtilization(none, &mut u, &mut period),
        NVML_SUCCESS
    );
    assert_eq!((u, period), (0, 100_000));
    let cap = |h, codec| {
        let mut c = 0;
        let r = nvmlDeviceGetEncoderCapacity(h, codec, &mut c);
        (r, c)
    };
    assert_eq!(cap(none, NVML_ENCODER_QUERY_H264), (NVML_SUCCESS, 100));
    assert_eq!(cap(none, NVML_ENCODER_QUERY_HEVC), (NVML_SUCCESS, 100));
    assert_eq!(
        cap(none, NVML_ENCODER_QUERY_AV1).0,
        NVML_ERROR_NOT_SUPPORTED
    );
    let (mut n, mut fps, mut lat) = (9, 9, 9);
    assert_eq!(
        nvmlDeviceGetEncoderStats(none, &mut n, &mut fps, &mut lat),
        NVML_SUCCESS
    );
    assert_eq!((n, fps, lat), (0, 0, 0));
    assert_eq!(
        nvmlDeviceGetEncoderUtilization(ada, &mut u, &mut period),
        NVML_SUCCESS
    );
    assert_eq!((u, period), (0, 1_000_000));
    assert_eq!(cap(ada, NVML_ENCODER_QUERY_AV1), (NVML_SUCCESS, 100));
    assert_eq!(nvmlShutdown(), NVML_SUCCESS);
}

fn zeroed_pci() -> nvmlPciInfo_t {
    nvmlPciInfo_t {
        busIdLegacy: [0; 16],
        domain: 0,
        bus: 0,
        device: 0,
        pciDeviceId: 0,
        pciSubSystemId: 0,
        busId: [0; 32],
    }
}
