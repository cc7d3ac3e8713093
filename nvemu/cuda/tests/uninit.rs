//! Calls before cuInit fail with CUDA_ERROR_NOT_INITIALIZED (own process: cuInit is global).

use cuda::*;
use std::ffi::c_void;
use std::ptr::null_mut;

#[test]
fn not_initialized_before_cuinit() {
    let mut n = 0;
    assert_eq!(cuDeviceGetCount(&mut n), CUDA_ERROR_NOT_INITIALIZED);
    let mut c: CUcontext = null_mut();
    assert_eq!(cuCtxCreate_v2(&mut c, 0, 0), CUDA_ERROR_NOT_INITIALIZED);
    assert_eq!(cuCtxGetCurrent(&mut c), CUDA_ERROR_NOT_INITIALIZED);
    let mut p = 0u64;
    assert_eq!(cuMemAlloc_v2(&mut p, 16), CUDA_ERROR_NOT_INITIALIZED);
    let mut b = [0u8; 4];
    assert_eq!(
        cuMemcpyDtoH_v2(b.as_mut_ptr() as *mut c_void, 0, 4),
        CUDA_ERROR_NOT_INITIALIZED
    );
    // allowed before cuInit
    let mut v = 0;
    assert_eq!(cuDriverGetVersion(&mut v), 0);
    assert_eq!(cuInit(1), CUDA_ERROR_INVALID_VALUE);
    assert_eq!(cuInit(0), 0);
    assert_eq!(cuDeviceGetCount(&mut n), 0);
    // after cuInit but with no context
    assert_eq!(cuMemAlloc_v2(&mut p, 16), CUDA_ERROR_INVALID_CONTEXT);
}
