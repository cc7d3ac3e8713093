//! Several devices (NVEMU_GPU_COUNT) and peer copies (own process: the device count is read
//! once per process).

use cuda::*;
use std::ffi::c_void;
use std::ptr::null_mut;

fn ctx_on(dev: i32) -> CUcontext {
    let mut c: CUcontext = null_mut();
    assert_eq!(cuCtxCreate_v2(&mut c, 0, dev), 0);
    let mut popped: CUcontext = null_mut();
    assert_eq!(cuCtxPopCurrent_v2(&mut popped), 0);
    assert_eq!(popped, c);
    c
}

fn alloc_in(c: CUcontext, n: usize) -> u64 {
    assert_eq!(cuCtxPushCurrent_v2(c), 0);
    let mut d = 0u64;
    assert_eq!(cuMemAlloc_v2(&mut d, n), 0);
    assert_eq!(cuCtxPopCurrent_v2(null_mut()), 0);
    d
}

fn peer_copy(
    src_ctx: CUcontext,
    src: u64,
    dst_ctx: CUcontext,
    dst: u64,
    w: usize,
    h: usize,
) -> u32 {
    let p = CUDA_MEMCPY3D_PEER {
        srcXInBytes: 0,
        srcY: 0,
        srcZ: 0,
        srcLOD: 0,
        srcMemoryType: CU_MEMORYTYPE_DEVICE,
        srcHost: std::ptr::null(),
        srcDevice: src,
        srcArray: null_mut(),
        srcContext: src_ctx,
        srcPitch: w,
        srcHeight: h,
        dstXInBytes: 0,
        dstY: 0,
        dstZ: 0,
        dstLOD: 0,
        dstMemoryType: CU_MEMORYTYPE_DEVICE,
        dstHost: null_mut(),
        dstDevice: dst,
        dstArray: null_mut(),
        dstContext: dst_ctx,
        dstPitch: w,
        dstHeight: h,
        WidthInBytes: w,
        Height: h,
        Depth: 1,
    };
    cuMemcpy3DPeer(&p)
}

#[test]
fn two_devices_peer_access_and_peer_copies() {
    let dir = std::env::temp_dir().join(format!("nvemu-cuda-peer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("trace.jsonl");
    let _ = std::fs::remove_file(&path);
    // SAFETY: the only test in this binary; no other thread reads the environment yet.
    unsafe {
        std::env::set_var("NVEMU_GPU_COUNT", "2");
        std::env::set_var("NVEMU_TRACE", &path);
    }
    assert_eq!(cuInit(0), 0);
    let mut n = 0;
    assert_eq!(cuDeviceGetCount(&mut n), 0);
    assert_eq!(n, 2);
    let mut dev = -1;
    assert_eq!(cuDeviceGet(&mut dev, 1), 0);
    assert_eq!(dev, 1);
    assert_eq!(cuDeviceGet(&mut dev, 2), CUDA_ERROR_INVALID_DEVICE);
    let mut can = -1;
    assert_eq!(cuDeviceCanAccessPeer(&mut can, 0, 1), 0);
    assert_eq!(can, 1);
    assert_eq!(cuDeviceCanAccessPeer(&mut can, 0, 0), 0);
    assert_eq!(can, 0);

    let (a0, b0, c1) = (ctx_on(0), ctx_on(0), ctx_on(1));
    assert_eq!(cuCtxPushCurrent_v2(c1), 0);
    assert_eq!(cuCtxGetDevice(&mut dev), 0);
    assert_eq!(dev, 1);
    assert_eq!(cuCtxPopCurrent_v2(null_mut()), 0);

    let (w, h) = (64usize, 8usize);
    let src = alloc_in(c1, w * h);
    let dst = alloc_in(a0, w * h);
    let other = alloc_in(b0, w * h);
    let data: Vec<u8> = (0..w * h).map(|i| (i % 251) as u8).collect();
    assert_eq!(cuCtxPushCurrent_v2(c1), 0);
    assert_eq!(
        cuMemcpyHtoD_v2(src, data.as_ptr() as *const c_void, w * h),
        0
    );
    assert_eq!(cuCtxPopCurrent_v2(null_mut()), 0);

    // Without peer access: staged by the driver. The context named must own the pointer.
    assert_eq!(peer_copy(c1, src, a0, dst, w, h), 0);
    assert_eq!(peer_copy(a0, src, a0, dst, w, h), CUDA_ERROR_INVALID_VALUE);
    // Two contexts of one device cannot be peers.
    assert_eq!(cuCtxPushCurrent_v2(a0), 0);
    assert_eq!(
        cuCtxEnablePeerAccess(b0, 0),
        CUDA_ERROR_PEER_ACCESS_UNSUPPORTED
    );
    assert_eq!(cuCtxEnablePeerAccess(c1, 0), 0);
    assert_eq!(
        cuCtxEnablePeerAccess(c1, 0),
        CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED
    );
    assert_eq!(cuCtxPopCurrent_v2(null_mut()), 0);
    assert_eq!(peer_copy(c1, src, a0, dst, w, h), 0);
    // Same device, another context: a plain device-to-device copy.
    assert_eq!(peer_copy(a0, dst, b0, other, w, h), 0);

    let mut back = vec![0u8; w * h];
    assert_eq!(cuCtxPushCurrent_v2(b0), 0);
    assert_eq!(
        cuMemcpyDtoH_v2(back.as_mut_ptr() as *mut c_void, other, w * h),
        0
    );
    assert_eq!(cuCtxPopCurrent_v2(null_mut()), 0);
    assert_eq!(back, data);

    let trace = std::fs::read_to_string(&path).unwrap();
    let peers: Vec<&str> = trace
        .lines()
        .filter(|l| l.contains("\"cuMemcpy3DPeer\"") && l.contains("\"CUDA_SUCCESS\""))
        .collect();
    assert_eq!(peers.len(), 3, "{trace}");
    assert!(peers[0].contains("\"peer\": \"staged\""), "{}", peers[0]);
    assert!(peers[1].contains("\"peer\": \"direct\""), "{}", peers[1]);
    assert!(!peers[2].contains("\"peer\""), "{}", peers[2]);
    assert!(peers.iter().all(|l| l.contains("\"kind\": \"DtoD\"")));
}
