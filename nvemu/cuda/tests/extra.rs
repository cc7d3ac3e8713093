//! The entry points the API 12.1-13.0 clients load (src/extra.rs): PyNvVideoCodec's
//! `cuStreamGetCtx`, FFmpeg 8's arrays, external memory and semaphores, PCI bus id lookup, LUID
//! and EGL streams, with their documented codes.

use cuda::*;
use std::ffi::c_void;
use std::ptr::{null, null_mut};

#[test]
fn stream_get_ctx() {
    let mut p: CUcontext = null_mut();
    assert_eq!(cuInit(0), CUDA_SUCCESS);
    let mut c: CUcontext = null_mut();
    assert_eq!(cuCtxCreate_v2(&mut c, 0, 0), CUDA_SUCCESS);
    let mut s: CUstream = null_mut();
    assert_eq!(cuStreamCreate(&mut s, 0), CUDA_SUCCESS);
    // A second context made current: the stream still answers its own.
    let mut c2: CUcontext = null_mut();
    assert_eq!(cuCtxCreate_v2(&mut c2, 0, 0), CUDA_SUCCESS);
    assert_eq!(cuStreamGetCtx(s, &mut p), CUDA_SUCCESS);
    assert_eq!(p, c);
    // The NULL and legacy streams: the current context.
    assert_eq!(cuStreamGetCtx(null_mut(), &mut p), CUDA_SUCCESS);
    assert_eq!(p, c2);
    assert_eq!(cuStreamGetCtx(1 as CUstream, &mut p), CUDA_SUCCESS);
    assert_eq!(p, c2);
    assert_eq!(cuStreamGetCtx(s, null_mut()), CUDA_ERROR_INVALID_VALUE);
    assert_eq!(cuStreamDestroy_v2(s), CUDA_SUCCESS);
    assert_eq!(cuStreamGetCtx(s, &mut p), CUDA_ERROR_INVALID_HANDLE);
    let mut popped: CUcontext = null_mut();
    assert_eq!(cuCtxDestroy_v2(c2), CUDA_SUCCESS);
    assert_eq!(cuCtxDestroy_v2(c), CUDA_SUCCESS);
    let _ = cuCtxPopCurrent_v2(&mut popped);
    assert_eq!(
        cuStreamGetCtx(null_mut(), &mut p),
        CUDA_ERROR_INVALID_CONTEXT
    );
    // Every name resolves through cuGetProcAddress too.
    for name in [
        c"cuStreamGetCtx",
        c"cuArrayCreate",
        c"cuDeviceGetByPCIBusId",
        c"cuImportExternalMemory",
        c"cuEGLStreamProducerPresentFrame",
    ] {
        let mut f: *mut c_void = null_mut();
        assert_eq!(
            cuGetProcAddress(name.as_ptr(), &mut f, 12000, 0),
            CUDA_SUCCESS,
            "{name:?}"
        );
        assert!(!f.is_null());
    }
}

#[test]
fn ffmpeg8_loader_entry_points() {
    assert_eq!(cuInit(0), CUDA_SUCCESS);
    let mut c: CUcontext = null_mut();
    assert_eq!(cuCtxCreate_v2(&mut c, 0, 0), CUDA_SUCCESS);

    // PCI bus id: the inverse of cuDeviceGetPCIBusId.
    let mut id = [0 as std::ffi::c_char; 32];
    assert_eq!(cuDeviceGetPCIBusId(id.as_mut_ptr(), 32, 0), CUDA_SUCCESS);
    let mut d: CUdevice = -1;
    assert_eq!(cuDeviceGetByPCIBusId(&mut d, id.as_ptr()), CUDA_SUCCESS);
    assert_eq!(d, 0);
    assert_eq!(
        cuDeviceGetByPCIBusId(&mut d, c"01:00.0".as_ptr()),
        CUDA_SUCCESS
    );
    assert_eq!(
        cuDeviceGetByPCIBusId(&mut d, c"0000:09:00.0".as_ptr()),
        CUDA_ERROR_INVALID_DEVICE
    );
    assert_eq!(
        cuDeviceGetByPCIBusId(&mut d, c"nonsense".as_ptr()),
        CUDA_ERROR_INVALID_VALUE
    );
    assert_eq!(
        cuDeviceGetByPCIBusId(&mut d, null()),
        CUDA_ERROR_INVALID_VALUE
    );

    // LUIDs are Windows-only.
    let mut luid = [0 as std::ffi::c_char; 8];
    let mut mask = 0u32;
    assert_eq!(
        cuDeviceGetLuid(luid.as_mut_ptr(), &mut mask, 0),
        CUDA_ERROR_NOT_SUPPORTED
    );
    assert_eq!(
        cuDeviceGetLuid(luid.as_mut_ptr(), &mut mask, 5),
        CUDA_ERROR_INVALID_DEVICE
    );

    // Arrays: none is created.
    let mut a: CUarray = null_mut();
    let desc = [0u8; 24];
    assert_eq!(
        cuArrayCreate_v2(&mut a, desc.as_ptr().cast()),
        CUDA_ERROR_NOT_SUPPORTED
    );
    assert_eq!(cuArrayCreate_v2(&mut a, null()), CUDA_ERROR_INVALID_VALUE);
    assert_eq!(
        cuMipmappedArrayDestroy(null_mut()),
        CUDA_ERROR_INVALID_HANDLE
    );
    assert_eq!(
        cuMipmappedArrayGetLevel(&mut a, null_mut(), 0),
        CUDA_ERROR_INVALID_HANDLE
    );

    // External memory: checked, then refused.
    let mut m: CUexternalMemory = null_mut();
    let mut md = ExternalMemoryHandleDesc {
        ty: 1,
        handle: [3, 0],
        size: 1 << 20,
        flags: 0,
    };
    assert_eq!(
        cuImportExternalMemory(&mut m, &md),
        CUDA_ERROR_NOT_SUPPORTED
    );
    assert!(m.is_null());
    md.ty = 0;
    assert_eq!(
        cuImportExternalMemory(&mut m, &md),
        CUDA_ERROR_INVALID_VALUE
    );
    md.ty = 1;
    md.size = 0;
    assert_eq!(
        cuImportExternalMemory(&mut m, &md),
        CUDA_ERROR_INVALID_VALUE
    );
    assert_eq!(
        cuImportExternalMemory(&mut m, null()),
        CUDA_ERROR_INVALID_VALUE
    );
    assert_eq!(
        cuDestroyExternalMemory(null_mut()),
        CUDA_ERROR_INVALID_VALUE
    );
    let mut dp: CUdeviceptr = 0;
    let bd = [0u64; 4];
    assert_eq!(
        cuExternalMemoryGetMappedBuffer(&mut dp, null_mut(), bd.as_ptr().cast()),
        CUDA_ERROR_INVALID_HANDLE
    );
    let mut mm: CUmipmappedArray = null_mut();
    assert_eq!(
        cuExternalMemoryGetMappedMipmappedArray(&mut mm, null_mut(), bd.as_ptr().cast()),
        CUDA_ERROR_INVALID_HANDLE
    );

    // External semaphores: likewise.
    let mut sem: CUexternalSemaphore = null_mut();
    let mut sd = ExternalSemaphoreHandleDesc {
        ty: 9,
        handle: [3, 0],
        flags: 0,
    };
    assert_eq!(
        cuImportExternalSemaphore(&mut sem, &sd),
        CUDA_ERROR_NOT_SUPPORTED
    );
    sd.ty = 11;
    assert_eq!(
        cuImportExternalSemaphore(&mut sem, &sd),
        CUDA_ERROR_INVALID_VALUE
    );
    assert_eq!(
        cuDestroyExternalSemaphore(null_mut()),
        CUDA_ERROR_INVALID_VALUE
    );
    let sems = [null_mut::<c_void>()];
    let params = [0u64; 16];
    assert_eq!(
        cuSignalExternalSemaphoresAsync(sems.as_ptr(), params.as_ptr().cast(), 1, null_mut()),
        CUDA_ERROR_INVALID_HANDLE
    );
    assert_eq!(
        cuWaitExternalSemaphoresAsync(sems.as_ptr(), params.as_ptr().cast(), 1, null_mut()),
        CUDA_ERROR_INVALID_HANDLE
    );
    assert_eq!(
        cuWaitExternalSemaphoresAsync(null(), null(), 0, null_mut()),
        CUDA_SUCCESS
    );

    // EGL streams: none can be connected.
    let mut conn: CUeglStreamConnection = null_mut();
    assert_eq!(
        cuEGLStreamProducerConnect(&mut conn, 0x10 as *mut c_void, 64, 64),
        CUDA_ERROR_INVALID_HANDLE
    );
    assert_eq!(
        cuEGLStreamProducerConnect(&mut conn, 0x10 as *mut c_void, 0, 64),
        CUDA_ERROR_INVALID_VALUE
    );
    assert_eq!(
        cuEGLStreamProducerDisconnect(&mut conn),
        CUDA_ERROR_INVALID_HANDLE
    );
    assert_eq!(
        cuEGLStreamConsumerDisconnect(&mut conn),
        CUDA_ERROR_INVALID_HANDLE
    );
    let frame = CUeglFrame {
        frame: [null_mut(); 3],
        width: 64,
        height: 64,
        depth: 1,
        pitch: 64,
        plane_count: 1,
        num_channels: 1,
        frame_type: 1,
        egl_color_format: 0,
        cu_format: 1,
    };
    let mut fr = frame;
    assert_eq!(
        cuEGLStreamProducerPresentFrame(&mut conn, frame, null_mut()),
        CUDA_ERROR_INVALID_HANDLE
    );
    assert_eq!(
        cuEGLStreamProducerReturnFrame(&mut conn, &mut fr, null_mut()),
        CUDA_ERROR_INVALID_HANDLE
    );
    assert_eq!(cuCtxDestroy_v2(c), CUDA_SUCCESS);
}
