//! CUDA driver API behaviour of the stand-in, called through the rlib.

use cuda::*;
use std::ffi::{CStr, c_char, c_int, c_uint, c_void};
use std::ptr::{null, null_mut};

fn init() {
    assert_eq!(cuInit(0), CUDA_SUCCESS);
}

/// Creates a context current on this thread.
fn ctx() -> CUcontext {
    init();
    let mut c: CUcontext = null_mut();
    assert_eq!(cuCtxCreate_v2(&mut c, 0, 0), CUDA_SUCCESS);
    assert!(!c.is_null());
    c
}

#[test]
fn device_queries() {
    init();
    let mut n = 0;
    assert_eq!(cuDeviceGetCount(&mut n), 0);
    assert_eq!(n, 1);
    let mut d: CUdevice = -1;
    assert_eq!(cuDeviceGet(&mut d, 0), 0);
    assert_eq!(d, 0);
    assert_eq!(cuDeviceGet(&mut d, 1), CUDA_ERROR_INVALID_DEVICE);
    let mut name = [0 as c_char; 64];
    assert_eq!(cuDeviceGetName(name.as_mut_ptr(), 64, 0), 0);
    // SAFETY: cuDeviceGetName NUL-terminated the buffer.
    let name = unsafe { CStr::from_ptr(name.as_ptr()) }
        .to_str()
        .unwrap()
        .to_owned();
    let expect = match std::env::var("NVEMU_GPU").as_deref() {
        Ok("ampere") => "NVIDIA RTX A4000 (nvemu)",
        Ok("turing") => "NVIDIA GeForce RTX 2080 (nvemu)",
        Ok("no-nvenc") => "NVIDIA H100 80GB HBM3 (nvemu)",
        _ => "NVIDIA GeForce RTX 4090 (nvemu)",
    };
    if std::env::var("NVEMU_GPU_NAME").is_err() {
        assert_eq!(name, expect);
    }
    let mut short = [0 as c_char; 7];
    assert_eq!(cuDeviceGetName(short.as_mut_ptr(), 7, 0), 0);
    assert_eq!(short[6], 0);
    let attr = |a: c_int| {
        let mut v = -1;
        assert_eq!(cuDeviceGetAttribute(&mut v, a, 0), 0, "attribute {a}");
        v
    };
    if std::env::var("NVEMU_GPU").is_err() {
        assert_eq!((attr(75), attr(76)), (8, 9));
        let (mut ma, mut mi) = (0, 0);
        assert_eq!(cuDeviceComputeCapability(&mut ma, &mut mi, 0), 0);
        assert_eq!((ma, mi), (8, 9));
    }
    assert_eq!(attr(41), 1); // unified addressing
    assert_eq!(attr(51), 32); // texture pitch alignment
    assert_eq!(attr(14), 512); // texture alignment
    assert_eq!(attr(10), 32); // warp size
    let mut v = 0;
    assert_eq!(
        cuDeviceGetAttribute(&mut v, 100000, 0),
        CUDA_ERROR_INVALID_VALUE
    );
    assert_eq!(
        cuDeviceGetAttribute(&mut v, 75, 3),
        CUDA_ERROR_INVALID_DEVICE
    );
    let mut total = 0usize;
    assert_eq!(cuDeviceTotalMem_v2(&mut total, 0), 0);
    assert!(total >= 8 << 30);
    let mut uuid = [0u8; 16];
    assert_eq!(cuDeviceGetUuid(&mut uuid, 0), 0);
    assert_ne!(uuid, [0u8; 16]);
    let mut ver = 0;
    assert_eq!(cuDriverGetVersion(&mut ver), 0);
    assert!(ver >= 12000);
    assert_eq!(cuDeviceGetCount(null_mut()), CUDA_ERROR_INVALID_VALUE);
}

#[test]
fn context_stack_per_thread() {
    let a = ctx();
    let mut cur: CUcontext = null_mut();
    assert_eq!(cuCtxGetCurrent(&mut cur), 0);
    assert_eq!(cur, a);
    let b = {
        let mut b: CUcontext = null_mut();
        assert_eq!(cuCtxCreate_v2(&mut b, 0, 0), 0);
        b
    };
    assert_ne!(a, b);
    assert_eq!(cuCtxGetCurrent(&mut cur), 0);
    assert_eq!(cur, b);
    let mut popped: CUcontext = null_mut();
    assert_eq!(cuCtxPopCurrent_v2(&mut popped), 0);
    assert_eq!(popped, b);
    assert_eq!(cuCtxGetCurrent(&mut cur), 0);
    assert_eq!(cur, a);
    // another thread has its own (empty) stack
    let a_addr = a as usize;
    std::thread::spawn(move || {
        let mut cur: CUcontext = 1 as CUcontext;
        assert_eq!(cuCtxGetCurrent(&mut cur), 0);
        assert!(cur.is_null());
        let mut d = 0;
        assert_eq!(cuCtxGetDevice(&mut d), CUDA_ERROR_INVALID_CONTEXT);
        let mut p = 0u64;
        assert_eq!(cuMemAlloc_v2(&mut p, 16), CUDA_ERROR_INVALID_CONTEXT);
        assert_eq!(cuCtxPushCurrent_v2(a_addr as CUcontext), 0);
        assert_eq!(cuCtxGetDevice(&mut d), 0);
        assert_eq!(cuCtxPopCurrent_v2(null_mut()), 0);
        assert_eq!(cuCtxPopCurrent_v2(null_mut()), CUDA_ERROR_INVALID_CONTEXT);
    })
    .join()
    .unwrap();
    // SetCurrent replaces the top
    assert_eq!(cuCtxSetCurrent(b), 0);
    assert_eq!(cuCtxGetCurrent(&mut cur), 0);
    assert_eq!(cur, b);
    let mut ver: c_uint = 0;
    assert_eq!(cuCtxGetApiVersion(b, &mut ver), 0);
    assert_eq!(ver, 3020);
    assert_eq!(cuCtxDestroy_v2(b), 0);
    assert_eq!(cuCtxDestroy_v2(b), CUDA_ERROR_INVALID_CONTEXT);
    assert_eq!(cuCtxPushCurrent_v2(b), CUDA_ERROR_INVALID_CONTEXT);
    assert_eq!(
        cuCtxPushCurrent_v2(0xdead as CUcontext),
        CUDA_ERROR_INVALID_CONTEXT
    );
    assert_eq!(cuCtxSetCurrent(a), 0);
    assert_eq!(cuCtxSynchronize(), 0);
    let mut f: c_uint = 9;
    assert_eq!(cuCtxGetFlags(&mut f), 0);
    assert_eq!(f, 0);
    assert_eq!(cuCtxDestroy_v2(a), 0);
    assert_eq!(cuCtxGetCurrent(&mut cur), 0);
    assert!(cur.is_null());
}

#[test]
fn primary_context() {
    init();
    let mut p1: CUcontext = null_mut();
    let mut p2: CUcontext = null_mut();
    assert_eq!(cuDevicePrimaryCtxRetain(&mut p1, 0), 0);
    assert_eq!(cuDevicePrimaryCtxRetain(&mut p2, 0), 0);
    assert_eq!(p1, p2);
    let (mut flags, mut active) = (0u32, 0);
    assert_eq!(cuDevicePrimaryCtxGetState(0, &mut flags, &mut active), 0);
    assert_eq!(active, 1);
    assert_eq!(cuCtxPushCurrent_v2(p1), 0);
    let mut d = -1;
    assert_eq!(cuCtxGetDevice(&mut d), 0);
    assert_eq!(d, 0);
    // a primary context cannot be destroyed with cuCtxDestroy
    assert_eq!(cuCtxDestroy_v2(p1), CUDA_ERROR_INVALID_CONTEXT);
    assert_eq!(cuCtxPopCurrent_v2(null_mut()), 0);
    assert_eq!(cuDevicePrimaryCtxRelease_v2(0), 0);
    assert_eq!(cuDevicePrimaryCtxRelease_v2(0), 0);
}

#[test]
fn memory_and_copies() {
    let c = ctx();
    let mut free0 = 0usize;
    let mut total = 0usize;
    assert_eq!(cuMemGetInfo_v2(&mut free0, &mut total), 0);
    let mut d = 0u64;
    let mut pitch = 0usize;
    assert_eq!(cuMemAllocPitch_v2(&mut d, &mut pitch, 1920, 1080, 16), 0);
    assert_eq!(pitch, 2048);
    assert_eq!(d % 512, 0);
    assert_eq!(
        cuMemAllocPitch_v2(&mut d, &mut pitch, 720, 405, 3),
        CUDA_ERROR_INVALID_VALUE
    );
    assert_eq!(cuMemAllocPitch_v2(&mut d, &mut pitch, 720, 405, 4), 0);
    assert_eq!(pitch, 1024);
    let mut free1 = 0usize;
    assert_eq!(cuMemGetInfo_v2(&mut free1, &mut total), 0);
    assert_eq!(free0 - free1, 2048 * 1080 + 1024 * 405);

    // 2D HtoD from a tightly packed host image, then DtoH into a differently pitched buffer
    let (w, h) = (720usize, 405usize);
    let src: Vec<u8> = (0..w * h).map(|i| (i * 7 % 251) as u8).collect();
    let mut m = CUDA_MEMCPY2D {
        srcXInBytes: 0,
        srcY: 0,
        srcMemoryType: CU_MEMORYTYPE_HOST,
        srcHost: src.as_ptr() as *const c_void,
        srcDevice: 0,
        srcArray: null_mut(),
        srcPitch: w,
        dstXInBytes: 0,
        dstY: 0,
        dstMemoryType: CU_MEMORYTYPE_DEVICE,
        dstHost: null_mut(),
        dstDevice: d,
        dstArray: null_mut(),
        dstPitch: pitch,
        WidthInBytes: w,
        Height: h,
    };
    assert_eq!(cuMemcpy2D_v2(&m), 0);
    let mut back = vec![0u8; 800 * h];
    let m2 = CUDA_MEMCPY2D {
        srcMemoryType: CU_MEMORYTYPE_DEVICE,
        srcHost: null(),
        srcDevice: d,
        srcPitch: pitch,
        dstMemoryType: CU_MEMORYTYPE_HOST,
        dstHost: back.as_mut_ptr() as *mut c_void,
        dstDevice: 0,
        dstPitch: 800,
        ..m
    };
    let mut s: CUstream = null_mut();
    assert_eq!(cuStreamCreate(&mut s, 0), 0);
    assert_eq!(cuMemcpy2DAsync_v2(&m2, s), 0);
    assert_eq!(cuStreamSynchronize(s), 0);
    for y in 0..h {
        assert_eq!(&back[y * 800..y * 800 + w], &src[y * w..(y + 1) * w]);
    }
    // device pointers are host addresses: the device rows are directly readable
    // SAFETY: d is a live allocation of pitch*h bytes.
    let row1 = unsafe { std::slice::from_raw_parts((d as usize + pitch) as *const u8, w) };
    assert_eq!(row1, &src[w..2 * w]);

    // out of bounds on the device side is refused, nothing is written
    m.Height = h + 1;
    assert_eq!(cuMemcpy2D_v2(&m), CUDA_ERROR_INVALID_VALUE);
    m.Height = h;
    m.dstPitch = w - 1;
    assert_eq!(cuMemcpy2D_v2(&m), CUDA_ERROR_INVALID_VALUE);
    m.dstPitch = pitch;
    m.dstDevice = 0x1234;
    assert_eq!(cuMemcpy2D_v2(&m), CUDA_ERROR_INVALID_VALUE);
    assert_eq!(cuMemcpy2D_v2(null()), CUDA_ERROR_INVALID_VALUE);

    // 1D copies
    let mut e = 0u64;
    assert_eq!(cuMemAlloc_v2(&mut e, 4096), 0);
    let data: Vec<u8> = (0..4096).map(|i| i as u8).collect();
    assert_eq!(cuMemcpyHtoD_v2(e, data.as_ptr() as *const c_void, 4096), 0);
    assert_eq!(cuMemcpyDtoD_v2(d, e, 4096), 0);
    let mut out = vec![0u8; 4096];
    assert_eq!(cuMemcpyDtoH_v2(out.as_mut_ptr() as *mut c_void, d, 4096), 0);
    assert_eq!(out, data);
    assert_eq!(
        cuMemcpyDtoH_v2(out.as_mut_ptr() as *mut c_void, e + 1, 4096),
        CUDA_ERROR_INVALID_VALUE
    );
    assert_eq!(cuMemsetD8_v2(e, 0xab, 4096), 0);
    assert_eq!(
        cuMemcpyDtoHAsync_v2(out.as_mut_ptr() as *mut c_void, e, 4096, s),
        0
    );
    assert!(out.iter().all(|&b| b == 0xab));
    assert_eq!(cuMemsetD2D8_v2(d, pitch, 7, 10, 3), 0);
    assert_eq!(cuMemsetD32_v2(e, 0x01020304, 1024), 0);
    // SAFETY: e is a live 4096-byte allocation.
    assert_eq!(unsafe { *(e as *const u32) }, 0x01020304);

    // pointer attributes
    let mut mt: c_uint = 0;
    assert_eq!(
        cuPointerGetAttribute(&mut mt as *mut _ as *mut c_void, 2, e + 10),
        0
    );
    assert_eq!(mt, CU_MEMORYTYPE_DEVICE);
    let mut pc: CUcontext = null_mut();
    assert_eq!(
        cuPointerGetAttribute(&mut pc as *mut _ as *mut c_void, 1, e),
        0
    );
    assert_eq!(pc, c);
    let mut ord: c_int = -1;
    assert_eq!(
        cuPointerGetAttribute(&mut ord as *mut _ as *mut c_void, 9, e),
        0
    );
    assert_eq!(ord, 0);
    let stack_var = 0u8;
    assert_eq!(
        cuPointerGetAttribute(
            &mut mt as *mut _ as *mut c_void,
            2,
            &stack_var as *const u8 as u64
        ),
        CUDA_ERROR_INVALID_VALUE
    );
    let (mut base, mut size) = (0u64, 0usize);
    assert_eq!(cuMemGetAddressRange_v2(&mut base, &mut size, e + 100), 0);
    assert_eq!((base, size), (e, 4096));

    // frees
    assert_eq!(cuMemFree_v2(e), 0);
    assert_eq!(cuMemFree_v2(e), CUDA_ERROR_INVALID_VALUE);
    assert_eq!(cuMemFree_v2(d + 1), CUDA_ERROR_INVALID_VALUE);
    assert_eq!(cuMemFree_v2(0xdead_beef), CUDA_ERROR_INVALID_VALUE);
    assert_eq!(cuMemFree_v2(d), 0);
    assert_eq!(cuMemAlloc_v2(&mut e, 0), CUDA_ERROR_INVALID_VALUE);
    assert_eq!(cuMemAlloc_v2(&mut e, 1 << 50), CUDA_ERROR_OUT_OF_MEMORY);
    assert_eq!(cuStreamDestroy_v2(s), 0);
    assert_eq!(cuStreamDestroy_v2(s), CUDA_ERROR_INVALID_HANDLE);
    assert_eq!(cuCtxDestroy_v2(c), 0);
}

#[test]
fn host_memory() {
    let c = ctx();
    let mut p: *mut c_void = null_mut();
    assert_eq!(cuMemAllocHost_v2(&mut p, 1000), 0);
    let mut dp = 0u64;
    assert_eq!(cuMemHostGetDevicePointer_v2(&mut dp, p, 0), 0);
    assert_eq!(dp, p as u64);
    let mut mt: c_uint = 0;
    assert_eq!(
        cuPointerGetAttribute(&mut mt as *mut _ as *mut c_void, 2, dp),
        0
    );
    assert_eq!(mt, CU_MEMORYTYPE_HOST);
    assert_eq!(cuMemFreeHost(p), 0);
    assert_eq!(cuMemFreeHost(p), CUDA_ERROR_INVALID_VALUE);
    assert_eq!(cuMemHostAlloc(&mut p, 64, 0x2), 0);
    assert_eq!(cuMemFreeHost(p), 0);

    let mut buf = vec![0u8; 8192];
    let bp = buf.as_mut_ptr() as *mut c_void;
    assert_eq!(cuMemHostRegister_v2(bp, 8192, 0), 0);
    assert_eq!(
        cuMemHostRegister_v2(bp, 8192, 0),
        CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED
    );
    assert_eq!(cuMemHostGetDevicePointer_v2(&mut dp, bp, 0), 0);
    assert_eq!(dp, bp as u64);
    // registered memory can be the device side of a copy
    let src = [5u8; 100];
    assert_eq!(
        cuMemcpyHtoD_v2(dp + 10, src.as_ptr() as *const c_void, 100),
        0
    );
    assert_eq!(buf[10..110], [5u8; 100]);
    assert_eq!(cuMemHostUnregister(bp), 0);
    assert_eq!(
        cuMemHostUnregister(bp),
        CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED
    );
    assert_eq!(cuCtxDestroy_v2(c), 0);
}

#[test]
fn streams_and_events() {
    let c = ctx();
    let mut s: CUstream = null_mut();
    assert_eq!(cuStreamCreateWithPriority(&mut s, 1, -3), 0);
    let mut prio = 0;
    assert_eq!(cuStreamGetPriority(s, &mut prio), 0);
    assert_eq!(prio, -3);
    assert_eq!(cuStreamQuery(s), 0);
    assert_eq!(cuStreamQuery(null_mut()), 0);
    assert_eq!(cuStreamQuery(0x5555 as CUstream), CUDA_ERROR_INVALID_HANDLE);
    let (mut e1, mut e2): (CUevent, CUevent) = (null_mut(), null_mut());
    assert_eq!(cuEventCreate(&mut e1, 0), 0);
    assert_eq!(cuEventCreate(&mut e2, 0), 0);
    let mut ms = -1f32;
    assert_eq!(
        cuEventElapsedTime(&mut ms, e1, e2),
        CUDA_ERROR_INVALID_HANDLE
    );
    assert_eq!(cuEventRecord(e1, s), 0);
    assert_eq!(cuEventRecord(e2, s), 0);
    assert_eq!(cuEventSynchronize(e2), 0);
    assert_eq!(cuEventQuery(e2), 0);
    assert_eq!(cuEventElapsedTime(&mut ms, e1, e2), 0);
    assert!(ms >= 0.0);
    assert_eq!(cuStreamWaitEvent(s, e1, 0), 0);
    assert_eq!(cuEventDestroy_v2(e1), 0);
    assert_eq!(cuEventDestroy_v2(e1), CUDA_ERROR_INVALID_HANDLE);
    assert_eq!(cuEventDestroy_v2(e2), 0);
    assert_eq!(cuStreamDestroy_v2(s), 0);
    assert_eq!(cuCtxDestroy_v2(c), 0);
}

#[test]
fn errors_and_proc_address() {
    init();
    let mut s: *const c_char = null();
    assert_eq!(cuGetErrorName(201, &mut s), 0);
    assert_eq!(
        // SAFETY: static NUL-terminated string from the table.
        unsafe { CStr::from_ptr(s) }.to_str().unwrap(),
        "CUDA_ERROR_INVALID_CONTEXT"
    );
    assert_eq!(cuGetErrorString(1, &mut s), 0);
    assert_eq!(
        // SAFETY: as above.
        unsafe { CStr::from_ptr(s) }.to_str().unwrap(),
        "invalid argument"
    );
    assert_eq!(cuGetErrorName(12345, &mut s), CUDA_ERROR_INVALID_VALUE);
    assert!(s.is_null());

    let mut f: *mut c_void = null_mut();
    assert_eq!(
        cuGetProcAddress(c"cuMemAlloc".as_ptr(), &mut f, 12000, 0),
        0
    );
    assert_eq!(f as usize, cuMemAlloc_v2 as *const () as usize);
    assert_eq!(
        cuGetProcAddress(c"cuCtxCreate_v2".as_ptr(), &mut f, 12000, 0),
        0
    );
    assert_eq!(f as usize, cuCtxCreate_v2 as *const () as usize);
    let mut st: c_int = -1;
    assert_eq!(
        cuGetProcAddress_v2(c"cuInit".as_ptr(), &mut f, 12000, 0, &mut st),
        0
    );
    assert_eq!((f as usize, st), (cuInit as *const () as usize, 0));
    assert_eq!(
        cuGetProcAddress_v2(c"cuArrayGetDescriptor".as_ptr(), &mut f, 12000, 0, &mut st),
        CUDA_ERROR_NOT_FOUND
    );
    assert!(f.is_null());
    assert_eq!(st, 1);
}
