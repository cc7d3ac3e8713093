//! Raw CUDA driver API declarations and the run-time loader for `libcuda.so.1`.
//!
//! Only what the plugin uses is declared. Types, constants and prototypes follow `cuda.h` of
//! CUDA 12.6.3 (checked against the copy in `zspace/system.cuda-12.6`, `include/cuda.h`; line
//! numbers below refer to that file). Entry points are resolved by their real exported names,
//! i.e. the `_v2` names the `cuda.h` macros map the unversioned names to (lines 89-135), so
//! the ABI is the 64-bit-`size_t` one.
//!
//! The library is opened with `dlopen` at run time (through `libloading`) so the plugin itself
//! loads on machines without an NVIDIA driver; [`lib`] reports why it is unavailable.

#![allow(non_camel_case_types, non_snake_case)]

use std::ffi::{c_char, c_int, c_uint, c_void};
use std::sync::LazyLock;

use libloading::Library;

/// `CUresult` (`enum cudaError_enum`): 0 is success, anything else an error code.
pub type CUresult = c_int;
/// `CUDA_SUCCESS`.
pub const CUDA_SUCCESS: CUresult = 0;
/// `CUDA_ERROR_INVALID_VALUE` (cuda.h line 2354).
pub const CUDA_ERROR_INVALID_VALUE: CUresult = 1;
/// `CUDA_ERROR_OUT_OF_MEMORY` (cuda.h line 2360).
pub const CUDA_ERROR_OUT_OF_MEMORY: CUresult = 2;
/// `CUDA_ERROR_INVALID_DEVICE` (cuda.h line 2427).
pub const CUDA_ERROR_INVALID_DEVICE: CUresult = 101;

/// `CUdevice`: a device ordinal handle.
pub type CUdevice = c_int;
/// `CUcontext`: opaque `struct CUctx_st *`.
pub type CUcontext = *mut c_void;
/// `CUstream`: opaque `struct CUstream_st *`.
pub type CUstream = *mut c_void;
/// `CUevent`: opaque `struct CUevent_st *`.
pub type CUevent = *mut c_void;
/// `CU_EVENT_BLOCKING_SYNC` (cuda.h): `cuEventSynchronize` blocks the thread instead of
/// spinning.
pub const CU_EVENT_BLOCKING_SYNC: c_uint = 0x1;
/// `CU_EVENT_DISABLE_TIMING` (cuda.h): no timing data, the cheapest event.
pub const CU_EVENT_DISABLE_TIMING: c_uint = 0x2;
/// `CUarray`: opaque `struct CUarray_st *` (only appears in [`CUDA_MEMCPY2D`]).
pub type CUarray = *mut c_void;
/// `CUdeviceptr` (`unsigned long long`, cuda.h lines 261 and 265).
pub type CUdeviceptr = u64;

/// `CUdevice_attribute` (enum, passed as `int`).
pub type CUdevice_attribute = c_int;
/// `CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING` (cuda.h line 747).
pub const CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING: CUdevice_attribute = 41;
/// `CU_DEVICE_ATTRIBUTE_TEXTURE_PITCH_ALIGNMENT` (cuda.h line 757).
pub const CU_DEVICE_ATTRIBUTE_TEXTURE_PITCH_ALIGNMENT: CUdevice_attribute = 51;
/// `CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR` (cuda.h line 781).
pub const CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: CUdevice_attribute = 75;
/// `CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR` (cuda.h line 782).
pub const CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: CUdevice_attribute = 76;

/// `CUpointer_attribute` (enum, passed as `int`).
pub type CUpointer_attribute = c_int;
/// `CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE` (cuda.h, since CUDA 11.3): the memory pool of a
/// stream-ordered allocation, NULL for other memory.
pub const CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE: CUpointer_attribute = 17;

/// `CUmemorytype` (enum, `unsigned int` on the supported ABIs; cuda.h lines 1070-1073).
pub type CUmemorytype = c_uint;
/// `CU_MEMORYTYPE_HOST`.
pub const CU_MEMORYTYPE_HOST: CUmemorytype = 1;
/// `CU_MEMORYTYPE_DEVICE`.
pub const CU_MEMORYTYPE_DEVICE: CUmemorytype = 2;
/// `CU_MEMORYTYPE_ARRAY`.
pub const CU_MEMORYTYPE_ARRAY: CUmemorytype = 3;
/// `CU_MEMORYTYPE_UNIFIED`.
pub const CU_MEMORYTYPE_UNIFIED: CUmemorytype = 4;

/// `CU_CTX_SCHED_AUTO` (cuda.h line 362): the default scheduling flags of `cuCtxCreate`.
pub const CU_CTX_SCHED_AUTO: c_uint = 0;
/// `CU_STREAM_NON_BLOCKING` (cuda.h line 416): no implicit synchronization with stream 0.
pub const CU_STREAM_NON_BLOCKING: c_uint = 1;

/// `CUDA_MEMCPY2D` (`CUDA_MEMCPY2D_v2`, cuda.h lines 3069-3090): parameters of
/// `cuMemcpy2D_v2` / `cuMemcpy2DAsync_v2`. 128 bytes on 64-bit targets.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct CUDA_MEMCPY2D {
    pub srcXInBytes: usize,
    pub srcY: usize,
    pub srcMemoryType: CUmemorytype,
    pub srcHost: *const c_void,
    pub srcDevice: CUdeviceptr,
    pub srcArray: CUarray,
    pub srcPitch: usize,
    pub dstXInBytes: usize,
    pub dstY: usize,
    pub dstMemoryType: CUmemorytype,
    pub dstHost: *mut c_void,
    pub dstDevice: CUdeviceptr,
    pub dstArray: CUarray,
    pub dstPitch: usize,
    pub WidthInBytes: usize,
    pub Height: usize,
}

impl Default for CUDA_MEMCPY2D {
    /// All zero / null, like `memset(&p, 0, sizeof p)` in C.
    fn default() -> Self {
        CUDA_MEMCPY2D {
            srcXInBytes: 0,
            srcY: 0,
            srcMemoryType: 0,
            srcHost: std::ptr::null(),
            srcDevice: 0,
            srcArray: std::ptr::null_mut(),
            srcPitch: 0,
            dstXInBytes: 0,
            dstY: 0,
            dstMemoryType: 0,
            dstHost: std::ptr::null_mut(),
            dstDevice: 0,
            dstArray: std::ptr::null_mut(),
            dstPitch: 0,
            WidthInBytes: 0,
            Height: 0,
        }
    }
}

// The layout must be exactly the C one (LP64: size_t and pointers are 8 bytes, the enum 4 bytes
// followed by 4 bytes of padding). The NVIDIA driver only exists for 64-bit targets.
#[cfg(target_pointer_width = "64")]
const _: () = {
    use core::mem::{offset_of, size_of};
    type M = CUDA_MEMCPY2D;
    assert!(size_of::<M>() == 128);
    assert!(offset_of!(M, srcXInBytes) == 0);
    assert!(offset_of!(M, srcY) == 8);
    assert!(offset_of!(M, srcMemoryType) == 16);
    assert!(offset_of!(M, srcHost) == 24);
    assert!(offset_of!(M, srcDevice) == 32);
    assert!(offset_of!(M, srcArray) == 40);
    assert!(offset_of!(M, srcPitch) == 48);
    assert!(offset_of!(M, dstXInBytes) == 56);
    assert!(offset_of!(M, dstY) == 64);
    assert!(offset_of!(M, dstMemoryType) == 72);
    assert!(offset_of!(M, dstHost) == 80);
    assert!(offset_of!(M, dstDevice) == 88);
    assert!(offset_of!(M, dstArray) == 96);
    assert!(offset_of!(M, dstPitch) == 104);
    assert!(offset_of!(M, WidthInBytes) == 112);
    assert!(offset_of!(M, Height) == 120);
};

/// `CUDA_MEMCPY3D_PEER` (`CUDA_MEMCPY3D_PEER_v1`, cuda.h): parameters of `cuMemcpy3DPeer`, a
/// copy between memory of two contexts (of one GPU or of two). 200 bytes on 64-bit targets.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct CUDA_MEMCPY3D_PEER {
    pub srcXInBytes: usize,
    pub srcY: usize,
    pub srcZ: usize,
    pub srcLOD: usize,
    pub srcMemoryType: CUmemorytype,
    pub srcHost: *const c_void,
    pub srcDevice: CUdeviceptr,
    pub srcArray: CUarray,
    pub srcContext: CUcontext,
    pub srcPitch: usize,
    pub srcHeight: usize,
    pub dstXInBytes: usize,
    pub dstY: usize,
    pub dstZ: usize,
    pub dstLOD: usize,
    pub dstMemoryType: CUmemorytype,
    pub dstHost: *mut c_void,
    pub dstDevice: CUdeviceptr,
    pub dstArray: CUarray,
    pub dstContext: CUcontext,
    pub dstPitch: usize,
    pub dstHeight: usize,
    pub WidthInBytes: usize,
    pub Height: usize,
    pub Depth: usize,
}

#[cfg(target_pointer_width = "64")]
const _: () = {
    use core::mem::{offset_of, size_of};
    type M = CUDA_MEMCPY3D_PEER;
    assert!(size_of::<M>() == 200);
    assert!(offset_of!(M, srcXInBytes) == 0);
    assert!(offset_of!(M, srcY) == 8);
    assert!(offset_of!(M, srcZ) == 16);
    assert!(offset_of!(M, srcLOD) == 24);
    assert!(offset_of!(M, srcMemoryType) == 32);
    assert!(offset_of!(M, srcHost) == 40);
    assert!(offset_of!(M, srcDevice) == 48);
    assert!(offset_of!(M, srcArray) == 56);
    assert!(offset_of!(M, srcContext) == 64);
    assert!(offset_of!(M, srcPitch) == 72);
    assert!(offset_of!(M, srcHeight) == 80);
    assert!(offset_of!(M, dstXInBytes) == 88);
    assert!(offset_of!(M, dstY) == 96);
    assert!(offset_of!(M, dstZ) == 104);
    assert!(offset_of!(M, dstLOD) == 112);
    assert!(offset_of!(M, dstMemoryType) == 120);
    assert!(offset_of!(M, dstHost) == 128);
    assert!(offset_of!(M, dstDevice) == 136);
    assert!(offset_of!(M, dstArray) == 144);
    assert!(offset_of!(M, dstContext) == 152);
    assert!(offset_of!(M, dstPitch) == 160);
    assert!(offset_of!(M, dstHeight) == 168);
    assert!(offset_of!(M, WidthInBytes) == 176);
    assert!(offset_of!(M, Height) == 184);
    assert!(offset_of!(M, Depth) == 192);
};

/// `CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED` (cuda.h): `cuCtxEnablePeerAccess` was already
/// called for this pair of contexts.
pub const CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED: CUresult = 704;

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
