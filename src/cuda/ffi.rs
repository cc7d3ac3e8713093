//! Raw CUDA driver API declarations and the run-time loader for `libcuda.so.1`.
//!
//! Only what the plugin uses is declared. Prototypes follow `cuda.h` of CUDA 12.6.3 (checked
//! against the copy in `zspace/system.cuda-12.6`, `include/cuda.h`); the types, constants and
//! struct layouts come from the `cuda-abi` crate, shared with the CUDA emulator. Entry points
//! are resolved by their real exported names, i.e. the `_v2` names the `cuda.h` macros map the
//! unversioned names to (lines 89-135), so the ABI is the 64-bit-`size_t` one.
//!
//! The library is opened with `dlopen` at run time (through `libloading`) so the plugin itself
//! loads on machines without an NVIDIA driver; [`lib`] reports why it is unavailable.

#![allow(non_camel_case_types, non_snake_case)]

use std::ffi::{c_char, c_int, c_uint, c_void};
use std::sync::LazyLock;

use libloading::Library;

// Types, constants and struct layouts (with their compile-time layout proofs) are the facts
// shared with the CUDA emulator.
pub use cuda_abi::*;

/// The SONAME of the NVIDIA CUDA driver library.
pub const LIBCUDA: &str = "libcuda.so.1";

/// Declares [`CudaLib`] (one typed function pointer per entry point, named exactly like the
/// exported symbol) and its loader from one list, so names and types cannot drift apart.
macro_rules! cuda_api {
    ($( $(#[$meta:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?); )*) => {
        /// The CUDA driver entry points the plugin uses, resolved from `libcuda.so.1`.
        ///
        /// Every pointer stays valid as long as the `Library` stored alongside it is loaded;
        /// the only instance lives in a `static` ([`lib`]) and is never dropped, so they are
        /// valid for the whole process.
        pub struct CudaLib {
            $( $(#[$meta])* pub $name: unsafe extern "C" fn($($arg: $ty),*) -> CUresult, )*
            /// Keeps the library mapped; declared last so it is dropped last.
            _lib: Library,
        }

        impl std::fmt::Debug for CudaLib {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct("CudaLib").field("lib", &self._lib).finish_non_exhaustive()
            }
        }

        impl CudaLib {
            /// Opens `path` and resolves every entry point. Errors are human-readable.
            ///
            /// The returned pointers are only valid while the returned value lives; that is
            /// why this is private and only used for the process-wide [`LIB`].
            fn load(path: &str) -> Result<CudaLib, String> {
                // SAFETY: loading a shared library runs its initializers. libcuda (and the
                // project's stand-in) are ordinary C libraries whose initializers have no
                // preconditions on the loading process; the CUDA API is thread-safe, so
                // loading it from whichever thread first needs it is fine.
                let lib = unsafe { Library::new(path) }.map_err(|e| {
                    format!(
                        "the NVIDIA CUDA driver library {path} was not found or could not be \
                         loaded ({e}); an NVIDIA driver must be installed to use NVENC"
                    )
                })?;
                $(
                    // SAFETY: the function pointer type is the prototype of this symbol in
                    // cuda.h (CUDA 12.6), with C types mapped to their Rust equivalents on
                    // LP64 Linux, and `extern "C"` matching CUDAAPI (empty on Linux). The
                    // pointer is copied out of the `Symbol`, which is fine because `lib` is
                    // stored in the same struct and outlives every use (see `CudaLib`).
                    let $name = unsafe {
                        lib.get::<unsafe extern "C" fn($($ty),*) -> CUresult>(
                            concat!(stringify!($name), "\0").as_bytes(),
                        )
                    }
                    .map(|sym| *sym)
                    .map_err(|e| {
                        format!(
                            "{path} does not export {} ({e}); the NVIDIA driver is too old \
                             or the library is not the CUDA driver",
                            stringify!($name)
                        )
                    })?;
                )*
                Ok(CudaLib { $($name,)* _lib: lib })
            }
        }
    };
}

cuda_api! {
    fn cuInit(Flags: c_uint);
    fn cuDriverGetVersion(driverVersion: *mut c_int);
    fn cuDeviceGetCount(count: *mut c_int);
    fn cuDeviceGet(device: *mut CUdevice, ordinal: c_int);
    fn cuDeviceGetName(name: *mut c_char, len: c_int, dev: CUdevice);
    fn cuDeviceGetPCIBusId(pciBusId: *mut c_char, len: c_int, dev: CUdevice);
    fn cuDeviceGetAttribute(pi: *mut c_int, attrib: CUdevice_attribute, dev: CUdevice);
    fn cuDeviceTotalMem_v2(bytes: *mut usize, dev: CUdevice);
    fn cuCtxCreate_v2(pctx: *mut CUcontext, flags: c_uint, dev: CUdevice);
    fn cuCtxDestroy_v2(ctx: CUcontext);
    fn cuCtxPushCurrent_v2(ctx: CUcontext);
    fn cuCtxPopCurrent_v2(pctx: *mut CUcontext);
    fn cuCtxGetCurrent(pctx: *mut CUcontext);
    fn cuCtxSynchronize();
    fn cuStreamCreate(phStream: *mut CUstream, Flags: c_uint);
    fn cuStreamDestroy_v2(hStream: CUstream);
    fn cuStreamSynchronize(hStream: CUstream);
    fn cuEventCreate(phEvent: *mut CUevent, Flags: c_uint);
    fn cuEventRecord(hEvent: CUevent, hStream: CUstream);
    fn cuEventSynchronize(hEvent: CUevent);
    fn cuEventDestroy_v2(hEvent: CUevent);
    fn cuMemAllocPitch_v2(
        dptr: *mut CUdeviceptr,
        pPitch: *mut usize,
        WidthInBytes: usize,
        Height: usize,
        ElementSizeBytes: c_uint,
    );
    fn cuMemAlloc_v2(dptr: *mut CUdeviceptr, bytesize: usize);
    fn cuMemFree_v2(dptr: CUdeviceptr);
    fn cuMemAllocHost_v2(pp: *mut *mut c_void, bytesize: usize);
    fn cuMemFreeHost(p: *mut c_void);
    fn cuMemcpy2D_v2(pCopy: *const CUDA_MEMCPY2D);
    fn cuMemcpy2DAsync_v2(pCopy: *const CUDA_MEMCPY2D, hStream: CUstream);
    fn cuMemcpy3DPeer(pCopy: *const CUDA_MEMCPY3D_PEER);
    fn cuDeviceCanAccessPeer(canAccessPeer: *mut c_int, dev: CUdevice, peerDev: CUdevice);
    fn cuCtxEnablePeerAccess(peerContext: CUcontext, Flags: c_uint);
    fn cuPointerGetAttribute(data: *mut c_void, attribute: CUpointer_attribute, ptr: CUdeviceptr);
    fn cuGetErrorName(error: CUresult, pStr: *mut *const c_char);
    fn cuGetErrorString(error: CUresult, pStr: *mut *const c_char);
}

/// The process-wide driver library, opened on first use and never closed.
static LIB: LazyLock<Result<CudaLib, String>> = LazyLock::new(|| CudaLib::load(LIBCUDA));

/// The loaded CUDA driver, or why it could not be loaded (a message naming `libcuda.so.1`,
/// the `dlopen`/`dlsym` error, and that an NVIDIA driver must be installed). The first call
/// opens the library; later calls return the same result.
pub fn lib() -> Result<&'static CudaLib, &'static str> {
    LIB.as_ref().map_err(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_library_error_names_library_and_driver() {
        let Err(msg) = CudaLib::load("libcuda-does-not-exist.so.1") else {
            panic!("loading a nonexistent library succeeded");
        };
        assert!(
            msg.contains("NVIDIA CUDA driver library libcuda-does-not-exist.so.1"),
            "{msg}"
        );
        assert!(msg.contains("an NVIDIA driver must be installed"), "{msg}");
    }
}
