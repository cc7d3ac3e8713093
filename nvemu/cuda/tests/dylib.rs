//! The built libcuda.so as a C client sees it: exported names, and that what is not
//! implemented is not exported.

use std::ffi::{c_char, c_int, c_uint};
use std::path::PathBuf;

fn lib_path() -> PathBuf {
    // target/<profile>/deps/dylib-<hash> -> target/<profile>/libcuda.so
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join("libcuda.so")
}

#[test]
fn exports_and_dlopen() {
    let path = lib_path();
    assert!(path.exists(), "{} not built", path.display());
    // SAFETY: GPU name override read by the library on first use; single test in this binary.
    unsafe { std::env::set_var("NVEMU_GPU_NAME", "Test GPU") };
    // SAFETY: loading our own cdylib; its initialisers only set up Rust statics.
    let lib = unsafe { libloading::Library::new(&path) }.unwrap();
    for name in [
        "cuInit",
        "cuDriverGetVersion",
        "cuDeviceGet",
        "cuDeviceGetCount",
        "cuDeviceGetName",
        "cuDeviceGetAttribute",
        "cuDeviceTotalMem_v2",
        "cuCtxCreate_v2",
        "cuCtxDestroy_v2",
        "cuCtxPushCurrent_v2",
        "cuCtxPopCurrent_v2",
        "cuCtxGetCurrent",
        "cuCtxSetCurrent",
        "cuMemAlloc_v2",
        "cuMemAllocPitch_v2",
        "cuMemFree_v2",
        "cuMemcpy2D_v2",
        "cuMemcpy2DAsync_v2",
        "cuMemcpyHtoD_v2",
        "cuMemcpyDtoH_v2",
        "cuMemcpyDtoD_v2",
        "cuStreamCreate",
        "cuStreamDestroy_v2",
        "cuEventDestroy_v2",
        "cuGetProcAddress",
        "cuGetProcAddress_v2",
        "cuDevicePrimaryCtxRetain",
        "cuDevicePrimaryCtxRelease",
        "cuDevicePrimaryCtxRelease_v2",
        "cuMemHostGetDevicePointer_v2",
        "cuPointerGetAttribute",
        // what GStreamer 1.22's libgstcuda loader requires besides the above
        "cuCtxEnablePeerAccess",
        "cuCtxDisablePeerAccess",
        "cuDeviceCanAccessPeer",
        "cuGLGetDevices_v2",
        "cuGraphicsGLRegisterBuffer",
        "cuGraphicsGLRegisterImage",
        "cuGraphicsMapResources",
        "cuGraphicsUnmapResources",
        "cuGraphicsResourceSetMapFlags_v2",
        "cuGraphicsSubResourceGetMappedArray",
        "cuGraphicsResourceGetMappedPointer_v2",
        "cuGraphicsUnregisterResource",
        "cuModuleLoadData",
        "cuModuleUnload",
        "cuModuleGetFunction",
        "cuLaunchKernel",
        "cuTexObjectCreate",
        "cuTexObjectDestroy",
        // what FFmpeg's loader (nv-codec-headers 11.1.5.2, Debian 12's FFmpeg 5.1) requires
        // besides the above
        "cuCtxSetLimit",
        "cuMemAllocManaged",
        "cuStreamAddCallback",
        "cuLinkCreate",
        "cuLinkAddData",
        "cuLinkComplete",
        "cuLinkDestroy",
        "cuModuleGetGlobal",
        "cuArray3DCreate_v2",
        "cuArrayDestroy",
        // what GStreamer 1.24+'s loader requires besides 1.22's list
        "cuCtxGetLimit",
        "cuMemsetD2D16_v2",
        "cuMemsetD2D16Async",
        "cuMemsetD2D32Async",
        "cuIpcGetEventHandle",
        "cuIpcOpenEventHandle",
        "cuIpcGetMemHandle",
        "cuIpcOpenMemHandle",
        "cuIpcOpenMemHandle_v2",
        "cuIpcCloseMemHandle",
        // its optional stream-ordered allocation group
        "cuMemAllocAsync",
        "cuMemAllocFromPoolAsync",
        "cuMemFreeAsync",
        "cuMemPoolCreate",
        "cuMemPoolDestroy",
        "cuMemPoolSetAttribute",
        "cuMemPoolGetAttribute",
        "nvemu_cuda_copy_counts",
        "nvemu_cuda_copy_bytes",
        "nvemu_cuda_pending_write",
        "nvemu_cuda_engine_scope",
    ] {
        // SAFETY: only the symbol's presence is checked.
        let s = unsafe { lib.get::<*const ()>(name.as_bytes()) };
        assert!(s.is_ok(), "{name} is not exported");
    }
    // old 32-bit-size ABIs and unimplemented functions are not exported
    for name in [
        "cuMemAlloc",
        "cuMemcpy2D",
        "cuMemcpyHtoD",
        "cuCtxCreate",
        "cuArrayGetDescriptor_v2",
        "cuModuleLoad",
        "cuGraphicsResourceGetMappedPointer",
    ] {
        // SAFETY: only the symbol's presence is checked.
        let s = unsafe { lib.get::<*const ()>(name.as_bytes()) };
        assert!(s.is_err(), "{name} must not be exported");
    }
    // SAFETY: signatures as in cuda.h.
    unsafe {
        let init: libloading::Symbol<extern "C" fn(c_uint) -> c_uint> = lib.get(b"cuInit").unwrap();
        assert_eq!(init(0), 0);
        let name: libloading::Symbol<extern "C" fn(*mut c_char, c_int, c_int) -> c_uint> =
            lib.get(b"cuDeviceGetName").unwrap();
        let mut buf = [0 as c_char; 32];
        assert_eq!(name(buf.as_mut_ptr(), 32, 0), 0);
        let s = std::ffi::CStr::from_ptr(buf.as_ptr()).to_str().unwrap();
        assert_eq!(s, "Test GPU");
    }
    // the SONAME-less cdylib; scripts/build-emulator installs it as libcuda.so.1
}
