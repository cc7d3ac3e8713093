//! NVML (`libnvidia-ml.so.1`), loaded at run time: how busy each GPU's NVENC is, system-wide.
//!
//! What session placement needs, and nothing more: the devices (by index, by the PCI bus id
//! CUDA reports), their name and UUID, and per device the encoder statistics
//! (`nvmlDeviceGetEncoderStats`: open sessions of every process, their mean fps and latency),
//! the encoder utilisation (`nvmlDeviceGetEncoderUtilization`, percent over the driver's
//! sampling period) and capacity (`nvmlDeviceGetEncoderCapacity`, percent).
//!
//! Prototypes and constants follow NVIDIA's `nvml.h` (NVML API version 13, as shipped in
//! NVIDIA/go-nvml `gen/nvml/nvml.h`); entry points are resolved by their exported names, the
//! `_v2`/`_v3` names the header's macros map the unversioned names to. The library is opened
//! with `dlopen` (through `libloading`) the first time it is needed, so the plugin loads on
//! machines without it; every call reports why it is unavailable instead. No GObject here.

#![allow(non_camel_case_types, non_snake_case)]

use std::ffi::{CStr, c_char, c_uint};
use std::sync::LazyLock;

use libloading::Library;

/// The SONAME of the NVIDIA Management Library.
pub const LIBNVML: &str = "libnvidia-ml.so.1";

/// `nvmlReturn_t`.
pub type nvmlReturn_t = c_uint;
/// `nvmlDevice_t`: an opaque handle.
type nvmlDevice_t = *mut std::ffi::c_void;

const NVML_SUCCESS: nvmlReturn_t = 0;
/// `NVML_DEVICE_UUID_V2_BUFFER_SIZE`.
const UUID_BUFFER: usize = 96;

/// Why NVML could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NvmlError {
    /// The library could not be loaded, lacks an entry point, or did not initialise.
    #[error("NVML is unavailable: {0}")]
    Unavailable(String),
    /// A call answered an error status (`code`, an `nvmlReturn_t`; `text` is
    /// `nvmlErrorString`'s).
    #[error("{call} failed: {text} ({code})")]
    Call {
        call: &'static str,
        code: nvmlReturn_t,
        text: String,
    },
}

/// The codecs of `nvmlDeviceGetEncoderCapacity` (`nvmlEncoderType_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncoderType {
    H264 = 0,
    Hevc = 1,
    Av1 = 2,
}

/// A device of this NVML instance (index in NVML's order, which is PCI bus order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Device(usize);

/// `nvmlDeviceGetEncoderStats` of one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EncoderStats {
    /// Encode sessions open on the device, of every process.
    pub sessions: u32,
    /// Trailing average frames per second over those sessions.
    pub average_fps: u32,
    /// Average encode latency, microseconds.
    pub average_latency_us: u32,
}

/// What placement reads of one GPU: each part `None` where NVML did not answer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EncoderLoad {
    /// `nvmlDeviceGetEncoderStats`.
    pub stats: Option<EncoderStats>,
    /// `nvmlDeviceGetEncoderUtilization`, percent (0..=100).
    pub utilisation: Option<u32>,
    /// `nvmlDeviceGetEncoderCapacity` for the codec asked, percent (0..=100).
    pub capacity: Option<u32>,
}

/// Declares [`NvmlLib`] (one typed function pointer per entry point, named like the exported
/// symbol) and its loader from one list, so names and types cannot drift apart.
macro_rules! nvml_api {
    ($( fn $name:ident($($arg:ident: $ty:ty),* $(,)?); )*) => {
        struct NvmlLib {
            $( $name: unsafe extern "C" fn($($arg: $ty),*) -> nvmlReturn_t, )*
            nvmlErrorString: unsafe extern "C" fn(nvmlReturn_t) -> *const c_char,
            /// Keeps the library mapped; declared last so it is dropped last.
            _lib: Library,
        }

        impl NvmlLib {
            fn load(path: &str) -> Result<NvmlLib, NvmlError> {
                // SAFETY: loading a shared library runs its initialisers; libnvidia-ml (and
                // the project's stand-in) are ordinary C libraries with no preconditions on
                // the loading process.
                let lib = unsafe { Library::new(path) }.map_err(|e| {
                    NvmlError::Unavailable(format!("{path} could not be loaded ({e})"))
                })?;
                $(
                    // SAFETY: the type is this symbol's prototype in nvml.h (API 13) with C
                    // types mapped to Rust's on LP64 Linux; the pointer is copied out of the
                    // `Symbol` and `lib` is kept in the same struct, so it outlives every use.
                    let $name = unsafe {
                        lib.get::<unsafe extern "C" fn($($ty),*) -> nvmlReturn_t>(
                            concat!(stringify!($name), "\0").as_bytes(),
                        )
                    }
                    .map(|s| *s)
                    .map_err(|e| NvmlError::Unavailable(format!(
                        "{path} does not export {} ({e})", stringify!($name)
                    )))?;
                )*
                // SAFETY: as above; `const char* nvmlErrorString(nvmlReturn_t)`.
                let nvmlErrorString = unsafe {
                    lib.get::<unsafe extern "C" fn(nvmlReturn_t) -> *const c_char>(
                        b"nvmlErrorString\0",
                    )
                }
                .map(|s| *s)
                .map_err(|e| NvmlError::Unavailable(format!(
                    "{path} does not export nvmlErrorString ({e})"
                )))?;
                Ok(NvmlLib { $($name,)* nvmlErrorString, _lib: lib })
            }
        }
    };
}

nvml_api! {
    fn nvmlInit_v2();
    fn nvmlShutdown();
    fn nvmlDeviceGetHandleByIndex_v2(index: c_uint, device: *mut nvmlDevice_t);
    fn nvmlDeviceGetHandleByPciBusId_v2(pciBusId: *const c_char, device: *mut nvmlDevice_t);
    fn nvmlDeviceGetIndex(device: nvmlDevice_t, index: *mut c_uint);
    fn nvmlDeviceGetUUID(device: nvmlDevice_t, uuid: *mut c_char, length: c_uint);
    fn nvmlDeviceGetEncoderStats(
        device: nvmlDevice_t,
        sessionCount: *mut c_uint,
        averageFps: *mut c_uint,
        averageLatency: *mut c_uint,
    );
    fn nvmlDeviceGetEncoderUtilization(
        device: nvmlDevice_t,
        utilization: *mut c_uint,
        samplingPeriodUs: *mut c_uint,
    );
    fn nvmlDeviceGetEncoderCapacity(
        device: nvmlDevice_t,
        encoderQueryType: c_uint,
        encoderCapacity: *mut c_uint,
    );
    fn nvmlDeviceGetEncoderSessions(
        device: nvmlDevice_t,
        sessionCount: *mut c_uint,
        sessionInfos: *mut nvmlEncoderSessionInfo_t,
    );
}

/// `nvmlEncoderSessionInfo_t` (nvml.h).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct nvmlEncoderSessionInfo_t {
    sessionId: c_uint,
    pid: c_uint,
    vgpuInstance: c_uint,
    codecType: c_uint,
    hResolution: c_uint,
    vResolution: c_uint,
    averageFps: c_uint,
    averageLatency: c_uint,
}

const _: () = assert!(std::mem::size_of::<nvmlEncoderSessionInfo_t>() == 32);
/// `NVML_ERROR_INSUFFICIENT_SIZE`.
const NVML_ERROR_INSUFFICIENT_SIZE: nvmlReturn_t = 7;

/// An initialised NVML (`nvmlInit_v2` done; `nvmlShutdown` when dropped).
pub struct Nvml {
    lib: NvmlLib,
}

impl std::fmt::Debug for Nvml {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nvml").finish_non_exhaustive()
    }
}

// SAFETY: NVML is thread-safe ("all NVML calls are thread-safe", nvml.h's notes); the struct
// holds only function pointers into the library it keeps loaded.
unsafe impl Send for Nvml {}
// SAFETY: as above.
unsafe impl Sync for Nvml {}

static NVML: LazyLock<Result<Nvml, NvmlError>> = LazyLock::new(|| Nvml::open(LIBNVML));

/// The process-wide NVML, loaded and initialised on first use (and kept for the process).
///
/// # Errors
/// [`NvmlError::Unavailable`] when `libnvidia-ml.so.1` cannot be loaded or initialised.
pub fn nvml() -> Result<&'static Nvml, NvmlError> {
    NVML.as_ref().map_err(Clone::clone)
}

impl Nvml {
    /// Loads the library at `path` (a name for `dlopen` or a path) and initialises it.
    ///
    /// # Errors
    /// [`NvmlError::Unavailable`] when it cannot be loaded, lacks an entry point, or
    /// `nvmlInit_v2` fails (e.g. no NVIDIA driver).
    pub fn open(path: &str) -> Result<Nvml, NvmlError> {
        let lib = NvmlLib::load(path)?;
        // SAFETY: no arguments.
        let r = unsafe { (lib.nvmlInit_v2)() };
        let n = Nvml { lib };
        if r != NVML_SUCCESS {
            let e = n.error("nvmlInit_v2", r);
            // Not initialised: nothing to shut down.
            std::mem::forget(n);
            return Err(NvmlError::Unavailable(e.to_string()));
        }
        Ok(n)
    }

    fn error(&self, call: &'static str, code: nvmlReturn_t) -> NvmlError {
        // SAFETY: nvmlErrorString returns a static NUL-terminated string (or NULL, checked).
        let text = unsafe {
            let p = (self.lib.nvmlErrorString)(code);
            if p.is_null() {
                String::from("unknown error")
            } else {
                CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        };
        NvmlError::Call { call, code, text }
    }

    fn check(&self, call: &'static str, code: nvmlReturn_t) -> Result<(), NvmlError> {
        if code == NVML_SUCCESS {
            Ok(())
        } else {
            Err(self.error(call, code))
        }
    }

    fn handle(&self, d: Device) -> Result<nvmlDevice_t, NvmlError> {
        let mut h: nvmlDevice_t = std::ptr::null_mut();
        // SAFETY: `h` is a valid out-pointer.
        let r = unsafe { (self.lib.nvmlDeviceGetHandleByIndex_v2)(d.0 as c_uint, &mut h) };
        self.check("nvmlDeviceGetHandleByIndex_v2", r)?;
        Ok(h)
    }

    /// The device at `pci_bus_id` (`cuDeviceGetPCIBusId`'s `0000:01:00.0` form works; NVML's
    /// own indices follow PCI order, not necessarily CUDA's).
    ///
    /// # Errors
    /// [`NvmlError::Call`]: `NVML_ERROR_NOT_FOUND` (6) when no GPU is there.
    pub fn device_by_pci_bus_id(&self, pci_bus_id: &str) -> Result<Device, NvmlError> {
        let id = std::ffi::CString::new(pci_bus_id).map_err(|_| NvmlError::Call {
            call: "nvmlDeviceGetHandleByPciBusId_v2",
            code: 2,
            text: "bus id contains NUL".into(),
        })?;
        let mut h: nvmlDevice_t = std::ptr::null_mut();
        // SAFETY: `id` is NUL-terminated, `h` a valid out-pointer.
        let r = unsafe { (self.lib.nvmlDeviceGetHandleByPciBusId_v2)(id.as_ptr(), &mut h) };
        self.check("nvmlDeviceGetHandleByPciBusId_v2", r)?;
        let mut i: c_uint = 0;
        // SAFETY: `h` is a handle NVML gave, `i` a valid out-pointer.
        let r = unsafe { (self.lib.nvmlDeviceGetIndex)(h, &mut i) };
        self.check("nvmlDeviceGetIndex", r)?;
        Ok(Device(i as usize))
    }

    fn text(
        &self,
        call: &'static str,
        f: unsafe extern "C" fn(nvmlDevice_t, *mut c_char, c_uint) -> nvmlReturn_t,
        d: Device,
        size: usize,
    ) -> Result<String, NvmlError> {
        let h = self.handle(d)?;
        let mut buf = vec![0 as c_char; size];
        // SAFETY: `buf` holds `size` bytes, which the call is told.
        let r = unsafe { f(h, buf.as_mut_ptr(), size as c_uint) };
        self.check(call, r)?;
        // SAFETY: NVML NUL-terminated the string inside `buf` on success.
        Ok(unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned())
    }

    /// The UUID of a device, `GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (`nvmlDeviceGetUUID`).
    ///
    /// # Errors
    /// [`NvmlError::Call`] with NVML's status.
    pub fn uuid(&self, d: Device) -> Result<String, NvmlError> {
        self.text(
            "nvmlDeviceGetUUID",
            self.lib.nvmlDeviceGetUUID,
            d,
            UUID_BUFFER,
        )
    }

    /// Encoder statistics of a device, over all processes.
    ///
    /// # Errors
    /// [`NvmlError::Call`] with NVML's status.
    pub fn encoder_stats(&self, d: Device) -> Result<EncoderStats, NvmlError> {
        let h = self.handle(d)?;
        let (mut n, mut fps, mut lat) = (0, 0, 0);
        // SAFETY: three valid out-pointers.
        let r = unsafe { (self.lib.nvmlDeviceGetEncoderStats)(h, &mut n, &mut fps, &mut lat) };
        self.check("nvmlDeviceGetEncoderStats", r)?;
        Ok(EncoderStats {
            sessions: n,
            average_fps: fps,
            average_latency_us: lat,
        })
    }

    /// Encoder utilisation of a device, percent, and the sampling period it covers, µs.
    ///
    /// # Errors
    /// [`NvmlError::Call`]; `NVML_ERROR_NOT_SUPPORTED` where the device cannot tell.
    pub fn encoder_utilisation(&self, d: Device) -> Result<(u32, u32), NvmlError> {
        let h = self.handle(d)?;
        let (mut u, mut p) = (0, 0);
        // SAFETY: two valid out-pointers.
        let r = unsafe { (self.lib.nvmlDeviceGetEncoderUtilization)(h, &mut u, &mut p) };
        self.check("nvmlDeviceGetEncoderUtilization", r)?;
        Ok((u, p))
    }

    /// Encoder capacity of a device for a codec, percent of the maximum.
    ///
    /// # Errors
    /// [`NvmlError::Call`]; `NVML_ERROR_NOT_SUPPORTED` for a codec the device cannot encode.
    pub fn encoder_capacity(&self, d: Device, codec: EncoderType) -> Result<u32, NvmlError> {
        let h = self.handle(d)?;
        let mut c = 0;
        // SAFETY: a valid out-pointer.
        let r = unsafe { (self.lib.nvmlDeviceGetEncoderCapacity)(h, codec as c_uint, &mut c) };
        self.check("nvmlDeviceGetEncoderCapacity", r)?;
        Ok(c)
    }

    /// The owning process ids of the encode sessions on a device
    /// (`nvmlDeviceGetEncoderSessions`), one per session.
    ///
    /// # Errors
    /// [`NvmlError::Call`] with NVML's status.
    pub fn encoder_session_pids(&self, d: Device) -> Result<Vec<u32>, NvmlError> {
        let h = self.handle(d)?;
        for _ in 0..4 {
            let mut n: c_uint = 0;
            // SAFETY: count 0 with no array: NVML only returns the count.
            let r =
                unsafe { (self.lib.nvmlDeviceGetEncoderSessions)(h, &mut n, std::ptr::null_mut()) };
            self.check("nvmlDeviceGetEncoderSessions", r)?;
            if n == 0 {
                return Ok(Vec::new());
            }
            let mut v = vec![nvmlEncoderSessionInfo_t::default(); n as usize];
            let mut m = n;
            // SAFETY: `v` holds `m` entries, which the call is told.
            let r = unsafe { (self.lib.nvmlDeviceGetEncoderSessions)(h, &mut m, v.as_mut_ptr()) };
            if r == NVML_ERROR_INSUFFICIENT_SIZE {
                continue; // sessions opened meanwhile
            }
            self.check("nvmlDeviceGetEncoderSessions", r)?;
            return Ok(v[..(m as usize).min(v.len())]
                .iter()
                .map(|s| s.pid)
                .collect());
        }
        Err(self.error("nvmlDeviceGetEncoderSessions", NVML_ERROR_INSUFFICIENT_SIZE))
    }

    /// Encode sessions on a device of processes other than this one, where NVML lists them.
    pub fn sessions_of_others(&self, d: Device) -> Option<u32> {
        let me = std::process::id();
        self.encoder_session_pids(d)
            .ok()
            .map(|p| p.iter().filter(|&&pid| pid != me).count() as u32)
    }

    /// Everything placement reads of one device for `codec`; parts NVML does not answer are
    /// `None` (never an error).
    pub fn encoder_load(&self, d: Device, codec: EncoderType) -> EncoderLoad {
        EncoderLoad {
            stats: self.encoder_stats(d).ok(),
            utilisation: self.encoder_utilisation(d).ok().map(|(u, _)| u),
            capacity: self.encoder_capacity(d, codec).ok(),
        }
    }
}

impl Drop for Nvml {
    fn drop(&mut self) {
        // SAFETY: balanced with the successful nvmlInit_v2 of `open`.
        unsafe { (self.lib.nvmlShutdown)() };
    }
}

#[cfg(test)]
mod tests {
    //! Against the NVML stand-in (`target/nvemu/lib/libnvidia-ml.so.1`, made by
    //! `scripts/build-emulator`), loaded by path, so they do not depend on `LD_LIBRARY_PATH`.
    use super::*;
    use std::sync::Mutex;

    static ENV: Mutex<()> = Mutex::new(());

    fn stand_in() -> Option<String> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target/nvemu/lib")
            .join(LIBNVML);
        if p.exists() {
            Some(p.to_string_lossy().into_owned())
        } else {
            eprintln!("SKIPPED: no {} (run scripts/build-emulator)", p.display());
            None
        }
    }

    fn with_env<R>(vars: &[(&str, &str)], f: impl FnOnce() -> R) -> R {
        let _g = ENV.lock().unwrap_or_else(|e| e.into_inner());
        let keys = [
            "NVEMU_GPU_MODELS",
            "NVEMU_GPU_COUNT",
            "NVEMU_SYSTEM",
            "NVEMU_GPU",
        ];
        for k in keys {
            // SAFETY: the tests of this module hold ENV while they touch the environment.
            unsafe { std::env::remove_var(k) };
        }
        for (k, v) in vars {
            // SAFETY: as above.
            unsafe { std::env::set_var(k, v) };
        }
        let r = f();
        for k in keys {
            // SAFETY: as above.
            unsafe { std::env::remove_var(k) };
        }
        r
    }

    #[test]
    fn missing_library_is_unavailable() {
        let e = Nvml::open("libnvidia-ml-does-not-exist.so.1").unwrap_err();
        assert!(matches!(e, NvmlError::Unavailable(_)), "{e}");
        assert!(e.to_string().contains("could not be loaded"), "{e}");
    }

    #[test]
    fn devices_and_identity() {
        let Some(path) = stand_in() else { return };
        with_env(&[("NVEMU_GPU_MODELS", "ada,turing")], || {
            let n = Nvml::open(&path).unwrap();
            let d = n.device_by_pci_bus_id("0000:02:00.0").unwrap();
            assert_eq!(d, Device(1));
            // The CUDA stand-in's UUID bytes ('nvemu-gpu-uuid', ordinal 1, 7.5) as NVML prints them.
            assert_eq!(
                n.uuid(d).unwrap(),
                "GPU-6e76656d-752d-6770-752d-757569010705"
            );
            let e = n.device_by_pci_bus_id("0000:07:00.0").unwrap_err();
            assert!(matches!(e, NvmlError::Call { code: 6, .. }), "{e}");
            assert!(n.uuid(Device(2)).is_err(), "only two GPUs");
        });
    }

    #[test]
    fn encoder_load_of_an_idle_machine() {
        let Some(path) = stand_in() else { return };
        with_env(&[("NVEMU_GPU_MODELS", "turing,no-nvenc")], || {
            let n = Nvml::open(&path).unwrap();
            let turing = n.encoder_load(Device(0), EncoderType::Hevc);
            assert_eq!(
                turing,
                EncoderLoad {
                    stats: Some(EncoderStats::default()),
                    utilisation: Some(0),
                    capacity: Some(100),
                }
            );
            // AV1 is not a codec of the RTX 2080.
            let e = n.encoder_capacity(Device(0), EncoderType::Av1).unwrap_err();
            assert!(
                matches!(e, NvmlError::Call { code: 3, .. }),
                "NOT_SUPPORTED: {e}"
            );
            // A GPU without NVENC answers as the real driver did on an H200 (2026-12-07):
            // 0 % and full capacity for H.264/HEVC, NOT_SUPPORTED for AV1; the session open
            // is what tells it apart.
            let h100 = n.encoder_load(Device(1), EncoderType::H264);
            assert_eq!(h100.utilisation, Some(0));
            assert_eq!(h100.capacity, Some(100));
            assert_eq!(h100.stats.map(|s| s.sessions), Some(0));
            let e = n.encoder_capacity(Device(1), EncoderType::Av1).unwrap_err();
            assert!(matches!(e, NvmlError::Call { code: 3, .. }), "{e}");
            assert_eq!(
                n.encoder_session_pids(Device(0)).unwrap(),
                Vec::<u32>::new()
            );
            assert_eq!(n.sessions_of_others(Device(0)), Some(0));
        });
    }
}
