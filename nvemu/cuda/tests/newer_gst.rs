//! What GStreamer 1.24+'s libgstcuda loader requires beyond 1.22's (src/limits.rs, the 16- and
//! 32-bit 2D memsets).

use cuda::*;
use std::ffi::c_uint;
use std::ptr::null_mut;

fn ctx() -> CUcontext {
    assert_eq!(cuInit(0), CUDA_SUCCESS);
    let mut c: CUcontext = null_mut();
    assert_eq!(cuCtxCreate_v2(&mut c, 0, 0), CUDA_SUCCESS);
    c
}

fn alloc(n: usize) -> CUdeviceptr {
    let mut p = 0;
    assert_eq!(cuMemAlloc_v2(&mut p, n), 0);
    p
}

fn stream(flags: c_uint) -> CUstream {
    let mut s: CUstream = null_mut();
    assert_eq!(cuStreamCreate(&mut s, flags), 0);
    s
}

#[test]
fn context_limits() {
    let c = ctx();
    let mut v = 0usize;
    assert_eq!(cuCtxGetLimit(&mut v, 0), 0);
    assert_eq!(v, 1024, "default stack size");
    assert_eq!(cuCtxSetLimit(0, 4096), 0);
    assert_eq!(cuCtxGetLimit(&mut v, 0), 0);
    assert_eq!(v, 4096);
    assert_eq!(cuCtxGetLimit(&mut v, 2), 0);
    assert_eq!(v, 8 << 20, "default malloc heap");
    assert_eq!(cuCtxSetLimit(6, 0), 0);
    assert_eq!(cuCtxSetLimit(6, 1 << 20), CUDA_ERROR_UNSUPPORTED_LIMIT);
    assert_eq!(cuCtxGetLimit(&mut v, 8), CUDA_ERROR_UNSUPPORTED_LIMIT);
    assert_eq!(cuCtxGetLimit(&mut v, 42), CUDA_ERROR_INVALID_VALUE);
    assert_eq!(cuCtxGetLimit(null_mut(), 0), CUDA_ERROR_INVALID_VALUE);
    // another context starts from the defaults
    let d = ctx();
    assert_eq!(cuCtxGetLimit(&mut v, 0), 0);
    assert_eq!(v, 1024);
    assert_eq!(cuCtxDestroy_v2(d), 0);
    assert_eq!(cuCtxDestroy_v2(c), 0);
    assert_eq!(cuCtxGetLimit(&mut v, 0), CUDA_ERROR_INVALID_CONTEXT);
}

#[test]
fn ipc_is_not_supported() {
    let c = ctx();
    let p = alloc(4096);
    let mut h = CUipcHandle { reserved: [0; 64] };
    assert_eq!(cuIpcGetMemHandle(&mut h, p), CUDA_ERROR_NOT_SUPPORTED);
    assert_eq!(cuIpcGetMemHandle(&mut h, p + 512), CUDA_ERROR_INVALID_VALUE);
    assert_eq!(cuIpcGetMemHandle(null_mut(), p), CUDA_ERROR_INVALID_VALUE);
    let mut q = 0;
    assert_eq!(
        cuIpcOpenMemHandle_v2(&mut q, h, 1),
        CUDA_ERROR_NOT_SUPPORTED
    );
    assert_eq!(cuIpcOpenMemHandle(&mut q, h, 1), CUDA_ERROR_NOT_SUPPORTED);
    assert_eq!(cuIpcOpenMemHandle(&mut q, h, 4), CUDA_ERROR_INVALID_VALUE);
    assert_eq!(cuIpcCloseMemHandle(p), CUDA_ERROR_INVALID_VALUE);
    let mut e: CUevent = null_mut();
    assert_eq!(cuEventCreate(&mut e, 0x6), 0); // INTERPROCESS | DISABLE_TIMING
    assert_eq!(cuIpcGetEventHandle(&mut h, e), CUDA_ERROR_NOT_SUPPORTED);
    let mut timed: CUevent = null_mut();
    assert_eq!(cuEventCreate(&mut timed, 0), 0);
    assert_eq!(cuIpcGetEventHandle(&mut h, timed), CUDA_ERROR_INVALID_VALUE);
    assert_eq!(
        cuIpcGetEventHandle(&mut h, 0x5555 as CUevent),
        CUDA_ERROR_INVALID_HANDLE
    );
    assert_eq!(cuIpcOpenEventHandle(&mut e, h), CUDA_ERROR_NOT_SUPPORTED);
    assert_eq!(cuMemFree_v2(p), 0);
    assert_eq!(cuCtxDestroy_v2(c), 0);
}

#[test]
fn memsets_16_and_32_bit_2d() {
    let c = ctx();
    let p = alloc(1024);
    let s = stream(0);
    assert_eq!(cuMemsetD2D16_v2(p, 512, 0xabcd, 4, 2), 0);
    assert_eq!(cuMemsetD2D32Async(p + 16, 512, 0x0102_0304, 2, 2, s), 0);
    assert_eq!(
        cuMemsetD2D16Async(p + 1, 512, 1, 1, 1, s),
        CUDA_ERROR_INVALID_VALUE
    );
    assert_eq!(cuStreamSynchronize(s), 0);
    let mut host = vec![0u8; 1024];
    assert_eq!(cuMemcpyDtoH_v2(host.as_mut_ptr().cast(), p, 1024), 0);
    for row in [0, 512] {
        assert_eq!(&host[row..row + 8], &[0xcd, 0xab].repeat(4)[..]);
        assert_eq!(&host[row + 16..row + 24], &[4, 3, 2, 1, 4, 3, 2, 1]);
        assert_eq!(host[row + 8], 0);
    }
    assert_eq!(cuStreamDestroy_v2(s), 0);
    assert_eq!(cuCtxDestroy_v2(c), 0);
}
