//! Entry points that FFmpeg's CUDA loader requires beyond the rest of this library.
//!
//! FFmpeg loads `libcuda.so.1` through nv-codec-headers' `dynlink_loader.h`, which resolves a
//! fixed symbol list and refuses the library if one mandatory symbol is missing ("Cannot load
//! cuCtxSetLimit"). Debian 12's FFmpeg 5.1 is built with nv-codec-headers 11.1.5.2, whose list
//! adds these to what GStreamer needs: `cuCtxSetLimit` (in `limits.rs`, which 1.24+'s
//! libgstcuda needs too), `cuMemAllocManaged`,
//! `cuStreamAddCallback`, `cuLinkCreate`, `cuLinkAddData`, `cuLinkComplete`, `cuLinkDestroy`,
//! `cuModuleGetGlobal`, `cuArray3DCreate_v2`, `cuArrayDestroy`. FFmpeg's NVENC encoder calls none
//! of them; they are exported so that the loader accepts the library, and each is strict:
//! - `cuMemAllocManaged`: device memory (which is host memory here, so it is as accessible from
//!   the host as managed memory is); flags must be `CU_MEM_ATTACH_GLOBAL` (1) or
//!   `CU_MEM_ATTACH_HOST` (2), the size non-zero.
//! - `cuStreamAddCallback`: the stream's earlier work is completed (as a host synchronisation
//!   would), then the callback is called before this function returns, on the calling thread,
//!   with `CUDA_SUCCESS` (the real driver calls it from a driver thread; the callback may make no
//!   CUDA call either way). Flags must be 0.
//! - Linking (`cuLink*`) and `cuModuleGetGlobal`: no device code runs, so no link state or module
//!   can exist: `cuLinkCreate` fails with `CUDA_ERROR_NOT_SUPPORTED` (as `cuModuleLoadData` does
//!   for a valid image), the calls taking a link state or a module with
//!   `CUDA_ERROR_INVALID_HANDLE`.
//! - CUDA arrays: the emulator creates none (texture objects over arrays are refused too):
//!   `cuArray3DCreate_v2` fails with `CUDA_ERROR_NOT_SUPPORTED`, `cuArrayDestroy` with
//!   `CUDA_ERROR_INVALID_HANDLE`.
use super::interop::CUmodule;
use super::*;

pub type CUlinkState = *mut c_void;
pub type CUstreamCallback = Option<extern "C" fn(CUstream, CUresult, *mut c_void)>;

cuda_fn! { fn cuMemAllocManaged(dptr: *mut CUdeviceptr, bytesize: usize, flags: c_uint) {
    if dptr.is_null() || !matches!(flags, 1 | 2) {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    let a = device_alloc("cuMemAllocManaged", bytesize)?;
    put(dptr, a)
}}

cuda_fn! { fn cuStreamAddCallback(
    stream: CUstream,
    callback: CUstreamCallback,
    user_data: *mut c_void,
    flags: c_uint,
) {
    let Some(cb) = callback.filter(|_| flags == 0) else {
        return Err(CUDA_ERROR_INVALID_VALUE);
    };
    {
        let mut st = state();
        let ctx = current_ctx(&st)?;
        check_stream(&st, stream)?;
        // The callback runs once the stream's earlier work is done.
        ordering::host_sync(&mut st, ctx, stream, "cuStreamAddCallback");
    }
    trace("cuStreamAddCallback", 0, &[("hStream", hex(stream as u64))], None);
    // The state lock is released: the callback runs as if on the driver's thread.
    cb(stream, 0, user_data);
    Ok(())
}}

cuda_fn! { fn cuLinkCreate(
    num_options: c_uint,
    options: *mut c_uint,
    option_values: *mut *mut c_void,
    state_out: *mut CUlinkState,
) {
    current_ctx(&state())?;
    if state_out.is_null() || (num_options > 0 && (options.is_null() || option_values.is_null())) {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    trace("cuLinkCreate", CUDA_ERROR_NOT_SUPPORTED, &[("numOptions", num_options.into())], None);
    Err(CUDA_ERROR_NOT_SUPPORTED)
}}

cuda_fn! { fn cuLinkAddData(
    link: CUlinkState,
    ty: c_uint,
    data: *mut c_void,
    size: usize,
    name: *const c_char,
    num_options: c_uint,
    options: *mut c_uint,
    option_values: *mut *mut c_void,
) {
    current_ctx(&state())?;
    let _ = (link, ty, data, size, name, num_options, options, option_values);
    // No link state can exist (cuLinkCreate).
    Err(CUDA_ERROR_INVALID_HANDLE)
}}

cuda_fn! { fn cuLinkComplete(link: CUlinkState, cubin_out: *mut *mut c_void, size_out: *mut usize) {
    current_ctx(&state())?;
    let _ = (link, cubin_out, size_out);
    Err(CUDA_ERROR_INVALID_HANDLE)
}}

cuda_fn! { fn cuLinkDestroy(link: CUlinkState) {
    current_ctx(&state())?;
    let _ = link;
    Err(CUDA_ERROR_INVALID_HANDLE)
}}

cuda_fn! { fn cuModuleGetGlobal(
    dptr: *mut CUdeviceptr,
    bytes: *mut usize,
    module: CUmodule,
    name: *const c_char,
) {
    current_ctx(&state())?;
    if name.is_null() {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    let _ = (dptr, bytes, module);
    // No module can be loaded (cuModuleLoadData).
    Err(CUDA_ERROR_INVALID_HANDLE)
}}

cuda_fn! { fn cuArray3DCreate_v2(handle: *mut CUarray, desc: *const c_void) {
    current_ctx(&state())?;
    if handle.is_null() || desc.is_null() {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    trace("cuArray3DCreate_v2", CUDA_ERROR_NOT_SUPPORTED, &[], None);
    Err(CUDA_ERROR_NOT_SUPPORTED)
}}

cuda_fn! { fn cuArrayDestroy(array: CUarray) {
    current_ctx(&state())?;
    let _ = array;
    // No array can exist (cuArray3DCreate_v2).
    Err(CUDA_ERROR_INVALID_HANDLE)
}}
