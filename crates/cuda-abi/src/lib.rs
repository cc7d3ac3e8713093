//! CUDA driver API facts: the types, constants and struct layouts of `cuda.h` (CUDA 12.6.3)
//! that the plugin (`src/cuda/ffi.rs`, which calls the driver) and the CUDA emulator
//! (`nvemu/cuda`, which stands in for it) both use. Facts only: no functions, no logic; each
//! side keeps its own code.
//!
//! The ABI is LP64 Linux (the only one the NVIDIA driver exists for): `size_t` and pointers are
//! 8 bytes, enums 4 bytes. Entry points are exported under their `_v2` names (`cuda.h` lines
//! 89-135), which is the 64-bit-`size_t` ABI these layouts follow. Line numbers refer to
//! `include/cuda.h` of CUDA 12.6.3. Every struct's size and field offsets are proven at compile
//! time below its declaration.

#![no_std]
#![allow(non_camel_case_types, non_snake_case)]

use core::ffi::{c_int, c_uint, c_void};

// ---------------------------------------------------------------------------------------------
// Handles and scalar types

/// `CUresult` (`enum cudaError_enum`, 4 bytes; every value is non-negative, so the C compiler
/// gives it `unsigned int`): 0 is success, anything else an error code.
pub type CUresult = c_uint;
/// `CUdevice`: a device ordinal.
pub type CUdevice = c_int;
/// `CUdeviceptr` (`unsigned long long`, cuda.h lines 261 and 265): a device address.
pub type CUdeviceptr = u64;
/// `CUcontext`: opaque `struct CUctx_st *`.
pub type CUcontext = *mut c_void;
/// `CUstream`: opaque `struct CUstream_st *`. NULL is the legacy default stream; the handles 1
/// (`CU_STREAM_LEGACY`) and 2 (`CU_STREAM_PER_THREAD`) are special too.
pub type CUstream = *mut c_void;
/// `CUevent`: opaque `struct CUevent_st *`.
pub type CUevent = *mut c_void;
/// `CUarray`: opaque `struct CUarray_st *`.
pub type CUarray = *mut c_void;
/// `CUmemoryPool`: opaque `struct CUmemPoolHandle_st *`.
pub type CUmemoryPool = *mut c_void;
/// `CUdevice_attribute` (enum, passed as `int`).
pub type CUdevice_attribute = c_int;
/// `CUpointer_attribute` (enum, passed as `int`).
pub type CUpointer_attribute = c_int;
/// `CUmemorytype` (enum, `unsigned int`; cuda.h lines 1070-1073).
pub type CUmemorytype = c_uint;

// ---------------------------------------------------------------------------------------------
// CUresult codes (`enum cudaError_enum`)

/// `CUDA_SUCCESS`: no error.
pub const CUDA_SUCCESS: CUresult = 0;
/// `CUDA_ERROR_INVALID_VALUE` (cuda.h line 2354): an argument is out of range.
pub const CUDA_ERROR_INVALID_VALUE: CUresult = 1;
/// `CUDA_ERROR_OUT_OF_MEMORY` (cuda.h line 2360).
pub const CUDA_ERROR_OUT_OF_MEMORY: CUresult = 2;
/// `CUDA_ERROR_NOT_INITIALIZED`: `cuInit` was not called (or failed).
pub const CUDA_ERROR_NOT_INITIALIZED: CUresult = 3;
/// `CUDA_ERROR_NO_DEVICE`: no CUDA-capable device.
pub const CUDA_ERROR_NO_DEVICE: CUresult = 100;
/// `CUDA_ERROR_INVALID_DEVICE` (cuda.h line 2427): not a valid device ordinal.
pub const CUDA_ERROR_INVALID_DEVICE: CUresult = 101;
/// `CUDA_ERROR_INVALID_IMAGE`: not a valid module image.
pub const CUDA_ERROR_INVALID_IMAGE: CUresult = 200;
/// `CUDA_ERROR_INVALID_CONTEXT`: no (valid) current context.
pub const CUDA_ERROR_INVALID_CONTEXT: CUresult = 201;
/// `CUDA_ERROR_UNSUPPORTED_LIMIT`: `cuCtxSetLimit` of a limit the device does not have.
pub const CUDA_ERROR_UNSUPPORTED_LIMIT: CUresult = 215;
/// `CUDA_ERROR_PEER_ACCESS_UNSUPPORTED`: the two devices cannot reach each other.
pub const CUDA_ERROR_PEER_ACCESS_UNSUPPORTED: CUresult = 217;
/// `CUDA_ERROR_INVALID_GRAPHICS_CONTEXT`: no usable OpenGL context for interop.
pub const CUDA_ERROR_INVALID_GRAPHICS_CONTEXT: CUresult = 219;
/// `CUDA_ERROR_INVALID_HANDLE`: not a valid stream, event, module... handle.
pub const CUDA_ERROR_INVALID_HANDLE: CUresult = 400;
/// `CUDA_ERROR_NOT_FOUND`: a named symbol was not found.
pub const CUDA_ERROR_NOT_FOUND: CUresult = 500;
/// `CUDA_ERROR_NOT_READY`: asynchronous work has not completed yet (not an error as such).
pub const CUDA_ERROR_NOT_READY: CUresult = 600;
/// `CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED`: `cuCtxEnablePeerAccess` was already called for
/// this pair of contexts.
pub const CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED: CUresult = 704;
/// `CUDA_ERROR_PEER_ACCESS_NOT_ENABLED`: `cuCtxDisablePeerAccess` without access enabled.
pub const CUDA_ERROR_PEER_ACCESS_NOT_ENABLED: CUresult = 705;
/// `CUDA_ERROR_CONTEXT_IS_DESTROYED`: the current context was destroyed.
pub const CUDA_ERROR_CONTEXT_IS_DESTROYED: CUresult = 709;
/// `CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED`: `cuMemHostRegister` of a registered range.
pub const CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED: CUresult = 712;
/// `CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED`: `cuMemHostUnregister` of an unregistered pointer.
pub const CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED: CUresult = 713;
/// `CUDA_ERROR_NOT_SUPPORTED`: the operation is not supported on this device or system.
pub const CUDA_ERROR_NOT_SUPPORTED: CUresult = 801;
/// `CUDA_ERROR_UNKNOWN`: an unknown internal error.
pub const CUDA_ERROR_UNKNOWN: CUresult = 999;

// ---------------------------------------------------------------------------------------------
// Flags and enumerations

/// `CU_CTX_SCHED_AUTO` (cuda.h line 362): the default scheduling flags of `cuCtxCreate`.
pub const CU_CTX_SCHED_AUTO: c_uint = 0;
/// `CU_STREAM_NON_BLOCKING` (cuda.h line 416): no implicit synchronization with stream 0.
pub const CU_STREAM_NON_BLOCKING: c_uint = 1;
/// `CU_EVENT_BLOCKING_SYNC`: `cuEventSynchronize` blocks the thread instead of spinning.
pub const CU_EVENT_BLOCKING_SYNC: c_uint = 0x1;
/// `CU_EVENT_DISABLE_TIMING`: no timing data, the cheapest event.
pub const CU_EVENT_DISABLE_TIMING: c_uint = 0x2;

/// `CU_MEMORYTYPE_HOST`: host memory (`*Host` fields of a copy).
pub const CU_MEMORYTYPE_HOST: CUmemorytype = 1;
/// `CU_MEMORYTYPE_DEVICE`: device memory (`*Device` fields of a copy).
pub const CU_MEMORYTYPE_DEVICE: CUmemorytype = 2;
/// `CU_MEMORYTYPE_ARRAY`: a CUDA array (`*Array` fields of a copy).
pub const CU_MEMORYTYPE_ARRAY: CUmemorytype = 3;
/// `CU_MEMORYTYPE_UNIFIED`: either, told apart by unified addressing (`*Device` fields).
pub const CU_MEMORYTYPE_UNIFIED: CUmemorytype = 4;

/// `CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING` (cuda.h line 747).
pub const CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING: CUdevice_attribute = 41;
/// `CU_DEVICE_ATTRIBUTE_TEXTURE_PITCH_ALIGNMENT` (cuda.h line 757), in bytes.
pub const CU_DEVICE_ATTRIBUTE_TEXTURE_PITCH_ALIGNMENT: CUdevice_attribute = 51;
/// `CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR` (cuda.h line 781).
pub const CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: CUdevice_attribute = 75;
/// `CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR` (cuda.h line 782).
pub const CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: CUdevice_attribute = 76;

/// `CU_POINTER_ATTRIBUTE_CONTEXT`: the `CUcontext` owning the memory.
pub const CU_POINTER_ATTRIBUTE_CONTEXT: CUpointer_attribute = 1;
/// `CU_POINTER_ATTRIBUTE_MEMORY_TYPE`: a [`CUmemorytype`].
pub const CU_POINTER_ATTRIBUTE_MEMORY_TYPE: CUpointer_attribute = 2;
/// `CU_POINTER_ATTRIBUTE_DEVICE_POINTER`: the device address of the memory.
pub const CU_POINTER_ATTRIBUTE_DEVICE_POINTER: CUpointer_attribute = 3;
/// `CU_POINTER_ATTRIBUTE_HOST_POINTER`: the host address of the memory.
pub const CU_POINTER_ATTRIBUTE_HOST_POINTER: CUpointer_attribute = 4;
/// `CU_POINTER_ATTRIBUTE_IS_MANAGED`: whether it is managed memory.
pub const CU_POINTER_ATTRIBUTE_IS_MANAGED: CUpointer_attribute = 8;
/// `CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL`: the device of the memory.
pub const CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL: CUpointer_attribute = 9;
/// `CU_POINTER_ATTRIBUTE_RANGE_START_ADDR`: the start of the allocation.
pub const CU_POINTER_ATTRIBUTE_RANGE_START_ADDR: CUpointer_attribute = 11;
/// `CU_POINTER_ATTRIBUTE_RANGE_SIZE`: the size of the allocation, in bytes.
pub const CU_POINTER_ATTRIBUTE_RANGE_SIZE: CUpointer_attribute = 12;
/// `CU_POINTER_ATTRIBUTE_MAPPED`: whether the memory is mapped.
pub const CU_POINTER_ATTRIBUTE_MAPPED: CUpointer_attribute = 13;
/// `CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE` (since CUDA 11.3): the memory pool of a
/// stream-ordered allocation, NULL for other memory.
pub const CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE: CUpointer_attribute = 17;

// ---------------------------------------------------------------------------------------------
// Structs

/// `CUDA_MEMCPY2D` (`CUDA_MEMCPY2D_v2`, cuda.h lines 3069-3090): parameters of
/// `cuMemcpy2D_v2` / `cuMemcpy2DAsync_v2`, a copy of `Height` rows of `WidthInBytes` bytes.
/// 128 bytes.
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
            srcHost: core::ptr::null(),
            srcDevice: 0,
            srcArray: core::ptr::null_mut(),
            srcPitch: 0,
            dstXInBytes: 0,
            dstY: 0,
            dstMemoryType: 0,
            dstHost: core::ptr::null_mut(),
            dstDevice: 0,
            dstArray: core::ptr::null_mut(),
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

/// `CUDA_MEMCPY3D_PEER` (`CUDA_MEMCPY3D_PEER_v1`): parameters of `cuMemcpy3DPeer(Async)`, a
/// copy between memory of two contexts (of one GPU or of two). 200 bytes.
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
