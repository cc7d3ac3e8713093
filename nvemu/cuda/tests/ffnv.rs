//! The entry points FFmpeg's CUDA loader requires beyond GStreamer's (src/ffnv.rs), with their
//! strict error codes.

use cuda::*;
use std::ffi::c_void;
use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicUsize, Ordering};

fn ctx() -> CUcontext {
    assert_eq!(cuInit(0), CUDA_SUCCESS);
    let mut c: CUcontext = null_mut();
    assert_eq!(cuCtxCreate_v2(&mut c, 0, 0), CUDA_SUCCESS);
    c
}

static CALLS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn callback(_s: CUstream, status: CUresult, user: *mut c_void) {
    assert_eq!(status, CUDA_SUCCESS);
    assert_eq!(user as usize, 0x1234);
    CALLS.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn ffmpeg_loader_entry_points() {
    assert_eq!(cuCtxSetLimit(0, 1024), CUDA_ERROR_NOT_INITIALIZED);
    let c = ctx();
    assert_eq!(cuCtxSetLimit(0, 1024), CUDA_SUCCESS);
    assert_eq!(cuCtxSetLimit(6, 0), CUDA_SUCCESS);
    // 7..=9 are CUDA 12 limits the emulated GPU lacks (limits.rs); beyond, no such limit.
    assert_eq!(cuCtxSetLimit(10, 0), CUDA_ERROR_INVALID_VALUE);

    let mut d: CUdeviceptr = 0;
    assert_eq!(cuMemAllocManaged(&mut d, 4096, 1), CUDA_SUCCESS);
    assert_ne!(d, 0);
    assert_eq!(cuMemsetD8_v2(d, 7, 4096), CUDA_SUCCESS);
    assert_eq!(cuMemFree_v2(d), CUDA_SUCCESS);
    assert_eq!(cuMemAllocManaged(&mut d, 4096, 0), CUDA_ERROR_INVALID_VALUE);
    assert_eq!(cuMemAllocManaged(&mut d, 0, 1), CUDA_ERROR_INVALID_VALUE);
    assert_eq!(
        cuMemAllocManaged(null_mut(), 16, 1),
        CUDA_ERROR_INVALID_VALUE
    );

    let mut s: CUstream = null_mut();
    assert_eq!(cuStreamCreate(&mut s, 0), CUDA_SUCCESS);
    let user = 0x1234 as *mut c_void;
    assert_eq!(
        cuStreamAddCallback(s, Some(callback), user, 0),
        CUDA_SUCCESS
    );
    assert_eq!(
        CALLS.load(Ordering::SeqCst),
        1,
        "called once its stream work is done"
    );
    assert_eq!(
        cuStreamAddCallback(s, Some(callback), user, 1),
        CUDA_ERROR_INVALID_VALUE
    );
    assert_eq!(
        cuStreamAddCallback(s, None, user, 0),
        CUDA_ERROR_INVALID_VALUE
    );
    assert_eq!(
        cuStreamAddCallback(0x999 as CUstream, Some(callback), user, 0),
        CUDA_ERROR_INVALID_HANDLE
    );
    assert_eq!(CALLS.load(Ordering::SeqCst), 1);
    assert_eq!(cuStreamDestroy_v2(s), CUDA_SUCCESS);

    let mut link: CUlinkState = null_mut();
    assert_eq!(
        cuLinkCreate(0, null_mut(), null_mut(), &mut link),
        CUDA_ERROR_NOT_SUPPORTED
    );
    assert_eq!(
        cuLinkCreate(0, null_mut(), null_mut(), null_mut()),
        CUDA_ERROR_INVALID_VALUE
    );
    assert_eq!(
        cuLinkAddData(
            0x40 as CUlinkState,
            1,
            null_mut(),
            0,
            null(),
            0,
            null_mut(),
            null_mut()
        ),
        CUDA_ERROR_INVALID_HANDLE
    );
    assert_eq!(
        cuLinkComplete(0x40 as CUlinkState, null_mut(), null_mut()),
        CUDA_ERROR_INVALID_HANDLE
    );
    assert_eq!(
        cuLinkDestroy(0x40 as CUlinkState),
        CUDA_ERROR_INVALID_HANDLE
    );
    let mut bytes = 0usize;
    assert_eq!(
        cuModuleGetGlobal(&mut d, &mut bytes, 0x40 as CUmodule, c"g".as_ptr()),
        CUDA_ERROR_INVALID_HANDLE
    );
    let mut a: CUarray = null_mut();
    let desc = [0u8; 40];
    assert_eq!(
        cuArray3DCreate_v2(&mut a, desc.as_ptr() as *const c_void),
        CUDA_ERROR_NOT_SUPPORTED
    );
    assert_eq!(cuArray3DCreate_v2(&mut a, null()), CUDA_ERROR_INVALID_VALUE);
    assert_eq!(cuArrayDestroy(0x40 as CUarray), CUDA_ERROR_INVALID_HANDLE);

    assert_eq!(cuCtxDestroy_v2(c), CUDA_SUCCESS);
    assert_eq!(cuCtxSetLimit(0, 1024), CUDA_ERROR_INVALID_CONTEXT);
}
