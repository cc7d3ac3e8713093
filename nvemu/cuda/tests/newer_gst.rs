//! What GStreamer 1.24+'s libgstcuda loader requires beyond 1.22's (src/limits.rs, the 16- and
//! 32-bit 2D memsets), and the stream-ordered work model with memory pools (src/ordering.rs).

use cuda::*;
use std::ffi::{c_char, c_int, c_uint};
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

/// The pending write NVENC (reading on `reader`) would race with, if any.
fn pending(c: CUcontext, p: CUdeviceptr, n: usize, reader: CUstream) -> Option<String> {
    let mut buf = [0 as c_char; 256];
    let r = nvemu_cuda_pending_write(c, p, n, reader, buf.as_mut_ptr(), buf.len());
    (r == 1).then(|| {
        // SAFETY: NUL-terminated by the call when it returns 1.
        unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    })
}

fn htod_async(dst: CUdeviceptr, src: &[u8], s: CUstream) {
    assert_eq!(
        cuMemcpyHtoDAsync_v2(dst, src.as_ptr().cast(), src.len(), s),
        0
    );
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

/// An async write on a stream is pending for a reader on another stream until the host
/// synchronises with it (stream, event or context), or the reader waits for it.
#[test]
fn pending_writes_until_synchronised() {
    let c = ctx();
    let p = alloc(4096);
    let data = vec![7u8; 4096];
    let s = stream(0);
    let other = stream(0);

    htod_async(p, &data, s);
    let why = pending(c, p + 100, 10, null_mut()).expect("pending for the NVENC default stream");
    assert!(why.contains("cuMemcpyHtoDAsync_v2"), "{why}");
    assert!(
        pending(c, p + 4096, 10, null_mut()).is_none(),
        "outside the write"
    );
    assert!(
        pending(c, p, 10, s).is_none(),
        "a reader on the same stream is ordered"
    );
    assert!(pending(c, p, 10, other).is_some());
    // the engine's own reads change nothing
    nvemu_cuda_engine_scope(1);
    let mut host = vec![0u8; 16];
    assert_eq!(cuMemcpyDtoH_v2(host.as_mut_ptr().cast(), p, 16), 0);
    nvemu_cuda_engine_scope(0);
    assert!(pending(c, p, 10, null_mut()).is_some());
    assert_eq!(cuStreamSynchronize(other), 0);
    assert!(
        pending(c, p, 10, null_mut()).is_some(),
        "another stream's sync"
    );
    assert_eq!(cuStreamSynchronize(s), 0);
    assert!(pending(c, p, 10, null_mut()).is_none());

    // event: record, then the host waits for it
    htod_async(p, &data, s);
    let mut e: CUevent = null_mut();
    assert_eq!(cuEventCreate(&mut e, 0), 0);
    assert_eq!(cuEventRecord(e, s), 0);
    htod_async(p + 2048, &data[..16], s); // after the record
    assert_eq!(cuEventSynchronize(e), 0);
    assert!(pending(c, p, 10, null_mut()).is_none());
    assert!(
        pending(c, p + 2048, 16, null_mut()).is_some(),
        "recorded after the event"
    );
    // a reader stream that waits for an event recorded after the write
    assert_eq!(cuEventRecord(e, s), 0);
    assert_eq!(cuStreamWaitEvent(other, e, 0), 0);
    assert!(pending(c, p + 2048, 16, other).is_none());
    assert!(pending(c, p + 2048, 16, null_mut()).is_some());
    // cuStreamQuery answers CUDA_SUCCESS: the host knows it is done
    assert_eq!(cuStreamQuery(s), 0);
    assert!(pending(c, p + 2048, 16, null_mut()).is_none());

    // cuCtxSynchronize completes everything of the context
    htod_async(p, &data, s);
    htod_async(p + 8, &data[..8], other);
    assert_eq!(cuCtxSynchronize(), 0);
    assert!(pending(c, p, 4096, null_mut()).is_none());

    assert_eq!(cuEventDestroy_v2(e), 0);
    assert_eq!(cuStreamDestroy_v2(s), 0);
    assert_eq!(cuStreamDestroy_v2(other), 0);
    assert_eq!(cuMemFree_v2(p), 0);
    assert_eq!(cuCtxDestroy_v2(c), 0);
}

/// The legacy stream's implicit synchronisation with blocking streams, and its absence for
/// non-blocking ones; synchronous copies.
#[test]
fn legacy_stream_and_synchronous_copies() {
    let c = ctx();
    let p = alloc(4096);
    let q = alloc(4096);
    let data = vec![1u8; 4096];
    let blocking = stream(0);
    let nonblocking = stream(CU_STREAM_NON_BLOCKING);

    // Work on the legacy stream is pending but ordered before a legacy reader.
    htod_async(p, &data, null_mut());
    assert!(pending(c, p, 16, null_mut()).is_none());
    assert!(pending(c, p, 16, nonblocking).is_some());
    // Blocking-stream work followed by legacy work: a legacy reader is ordered after both.
    htod_async(q, &data, blocking);
    assert!(
        pending(c, q, 16, null_mut()).is_some(),
        "no implicit legacy barrier credited to the reader by itself"
    );
    assert_eq!(cuMemsetD8Async(p, 0, 16, null_mut()), 0);
    assert!(
        pending(c, q, 16, null_mut()).is_none(),
        "ordered through legacy work"
    );
    // A synchronous copy into host memory returns when done, and so is everything before it.
    htod_async(q, &data, nonblocking);
    let mut host = vec![0u8; 16];
    assert_eq!(cuMemcpyDtoH_v2(host.as_mut_ptr().cast(), p, 16), 0);
    assert!(pending(c, p, 16, nonblocking).is_none());
    assert!(
        pending(c, q, 16, null_mut()).is_some(),
        "non-blocking streams take no part"
    );
    assert_eq!(cuStreamSynchronize(nonblocking), 0);
    // A synchronous device-to-device copy stays pending on the legacy stream.
    assert_eq!(cuMemcpyDtoD_v2(q, p, 64), 0);
    assert!(pending(c, q, 16, null_mut()).is_none());
    assert!(pending(c, q, 16, nonblocking).is_some());
    // Synchronising a blocking stream after legacy work (a marker on the stream) completes it.
    assert_eq!(cuStreamSynchronize(null_mut()), 0);
    assert!(pending(c, q, 16, nonblocking).is_none());

    for s in [blocking, nonblocking] {
        assert_eq!(cuStreamDestroy_v2(s), 0);
    }
    assert_eq!(cuMemFree_v2(p), 0);
    assert_eq!(cuMemFree_v2(q), 0);
    assert_eq!(cuCtxDestroy_v2(c), 0);
}

fn pool_props(handle_types: c_uint) -> CUmemPoolProps {
    CUmemPoolProps {
        allocType: 1,
        handleTypes: handle_types,
        location_type: 1,
        location_id: 0,
        win32SecurityAttributes: null_mut(),
        maxSize: 0,
        usage: 0,
        reserved: [0; 54],
    }
}

fn pool_attr(pool: CUmemoryPool, attr: c_int) -> u64 {
    let mut v = 0u64;
    assert_eq!(
        cuMemPoolGetAttribute(pool, attr, (&mut v as *mut u64).cast()),
        0
    );
    v
}

#[test]
fn memory_pools_and_stream_ordered_allocation() {
    let c = ctx();
    let mut v = 0;
    assert_eq!(cuDeviceGetAttribute(&mut v, 115, 0), 0);
    assert_eq!(v, 1, "MEMORY_POOLS_SUPPORTED");
    let s = stream(0);
    let mut pool: CUmemoryPool = null_mut();
    assert_eq!(cuMemPoolCreate(&mut pool, &pool_props(0)), 0);
    assert_eq!(
        cuMemPoolCreate(&mut pool, &pool_props(1)),
        CUDA_ERROR_NOT_SUPPORTED,
        "no shareable handles"
    );
    let mut p = 0;
    assert_eq!(cuMemAllocFromPoolAsync(&mut p, 1000, pool, s), 0);
    assert_eq!(p % 512, 0);
    // the allocation itself is pending on its stream
    let why = pending(c, p, 1000, null_mut()).expect("allocation pending");
    assert!(why.contains("cuMemAllocFromPoolAsync"), "{why}");
    assert!(pending(c, p, 1000, s).is_none());
    assert_eq!(cuStreamSynchronize(s), 0);
    assert!(pending(c, p, 1000, null_mut()).is_none());
    assert_eq!(pool_attr(pool, 7), 1000, "USED_MEM_CURRENT");
    let mut got: CUmemoryPool = null_mut();
    assert_eq!(
        cuPointerGetAttribute((&mut got as *mut CUmemoryPool).cast(), 17, p + 10),
        0
    );
    assert_eq!(got, pool, "MEMPOOL_HANDLE");
    let plain = alloc(64);
    assert_eq!(
        cuPointerGetAttribute((&mut got as *mut CUmemoryPool).cast(), 17, plain),
        0
    );
    assert!(got.is_null(), "not from a pool");
    assert_eq!(cuMemFreeAsync(plain, s), CUDA_ERROR_INVALID_VALUE);
    assert_eq!(cuMemFree_v2(plain), 0);

    // free in stream order: the pointer is gone at once, the memory when the stream is done
    assert_eq!(cuMemFreeAsync(p, s), 0);
    assert_eq!(cuMemFreeAsync(p, s), CUDA_ERROR_INVALID_VALUE);
    let mut host = [0u8; 4];
    assert_eq!(
        cuMemcpyDtoH_v2(host.as_mut_ptr().cast(), p, 4),
        CUDA_ERROR_INVALID_VALUE
    );
    assert_eq!(pool_attr(pool, 7), 1000, "released when the free completes");
    assert_eq!(cuStreamSynchronize(s), 0);
    assert_eq!(pool_attr(pool, 7), 0);
    assert_eq!(pool_attr(pool, 8), 1000, "USED_MEM_HIGH");
    let zero = 0u64;
    assert_eq!(
        cuMemPoolSetAttribute(pool, 8, (&zero as *const u64).cast_mut().cast()),
        0
    );
    assert_eq!(pool_attr(pool, 8), 0);
    let one = 1u64;
    assert_eq!(
        cuMemPoolSetAttribute(pool, 7, (&one as *const u64).cast_mut().cast()),
        CUDA_ERROR_INVALID_VALUE,
        "read-only"
    );
    assert_eq!(
        cuMemPoolSetAttribute(pool, 4, (&one as *const u64).cast_mut().cast()),
        0
    );
    assert_eq!(pool_attr(pool, 4), 1, "RELEASE_THRESHOLD");

    // the device's default pool
    let mut d = 0;
    assert_eq!(cuMemAllocAsync(&mut d, 256, s), 0);
    assert_eq!(
        cuPointerGetAttribute((&mut got as *mut CUmemoryPool).cast(), 17, d),
        0
    );
    assert!(!got.is_null() && got != pool);
    assert_eq!(
        cuMemPoolDestroy(got),
        CUDA_ERROR_INVALID_VALUE,
        "the default pool"
    );
    assert_eq!(
        cuMemFree_v2(d),
        0,
        "cuMemFree takes stream-ordered memory too"
    );

    assert_eq!(cuMemPoolDestroy(pool), 0);
    assert_eq!(cuMemPoolDestroy(pool), CUDA_ERROR_INVALID_VALUE);
    assert_eq!(
        cuMemAllocFromPoolAsync(&mut p, 64, pool, s),
        CUDA_ERROR_INVALID_VALUE
    );
    assert_eq!(cuStreamDestroy_v2(s), 0);
    assert_eq!(cuCtxDestroy_v2(c), 0);
}

#[test]
fn destroying_a_context_releases_pending_frees() {
    let c = ctx();
    let s = stream(0);
    let mut p = 0;
    assert_eq!(cuMemAllocAsync(&mut p, 4096, s), 0);
    assert_eq!(cuMemFreeAsync(p, s), 0);
    assert_eq!(cuCtxDestroy_v2(c), 0);
    let c2 = ctx();
    assert!(pending(c, p, 16, null_mut()).is_none());
    assert_eq!(cuCtxDestroy_v2(c2), 0);
}
