//! Reading CUDA device memory through the CUDA driver API (`libcuda.so.1`), loaded at run time:
//! our CUDA stand-in (device pointers are host addresses) or the real driver. With our
//! stand-in, also its stream-ordering model: whether a write into an input is still pending
//! when the engine reads it, and whether memory comes from a stream-ordered pool.

use std::sync::OnceLock;

use cuda_abi::{
    CU_MEMORYTYPE_DEVICE, CU_MEMORYTYPE_HOST, CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE, CUDA_MEMCPY2D,
    CUDA_SUCCESS, CUpointer_attribute, CUresult,
};

type FnMemcpy2D = unsafe extern "C" fn(*const CUDA_MEMCPY2D) -> CUresult;
type FnPush = unsafe extern "C" fn(u64) -> CUresult;
type FnPop = unsafe extern "C" fn(*mut u64) -> CUresult;
type FnPointerAttr = unsafe extern "C" fn(*mut u64, CUpointer_attribute, u64) -> CUresult;
type FnPendingWrite = unsafe extern "C" fn(u64, u64, usize, u64, *mut u8, usize) -> i32;
type FnMapFence = unsafe extern "C" fn(u64, usize) -> i32;
type FnEngineScope = unsafe extern "C" fn(i32);
type FnCtxDevice = unsafe extern "C" fn(u64) -> i32;

struct Cuda {
    _lib: libloading::Library,
    memcpy2d: FnMemcpy2D,
    push: FnPush,
    pop: FnPop,
    pointer_attr: Option<FnPointerAttr>,
    /// The CUDA stand-in's extras (absent from the real driver).
    pending_write: Option<FnPendingWrite>,
    map_fence: Option<FnMapFence>,
    engine_scope: Option<FnEngineScope>,
    ctx_device: Option<FnCtxDevice>,
}

static CUDA: OnceLock<Result<Cuda, String>> = OnceLock::new();

fn cuda() -> Result<&'static Cuda, String> {
    CUDA.get_or_init(|| {
        // SAFETY: loading the CUDA driver library runs its initialisers; it is the library the
        // client itself already loaded (it owns the CUcontext it gave us).
        let lib = unsafe { libloading::Library::new("libcuda.so.1") }
            .map_err(|e| format!("cannot load libcuda.so.1: {e}"))?;
        // SAFETY: the symbol types are those of cuda.h for these entry points.
        unsafe {
            let memcpy2d = *lib
                .get::<FnMemcpy2D>(b"cuMemcpy2D_v2\0")
                .map_err(|e| e.to_string())?;
            let push = *lib
                .get::<FnPush>(b"cuCtxPushCurrent_v2\0")
                .map_err(|e| e.to_string())?;
            let pop = *lib
                .get::<FnPop>(b"cuCtxPopCurrent_v2\0")
                .map_err(|e| e.to_string())?;
            let pointer_attr = lib
                .get::<FnPointerAttr>(b"cuPointerGetAttribute\0")
                .ok()
                .map(|f| *f);
            let pending_write = lib
                .get::<FnPendingWrite>(b"nvemu_cuda_pending_write\0")
                .ok()
                .map(|f| *f);
            let map_fence = lib
                .get::<FnMapFence>(b"nvemu_cuda_map_fence\0")
                .ok()
                .map(|f| *f);
            let engine_scope = lib
                .get::<FnEngineScope>(b"nvemu_cuda_engine_scope\0")
                .ok()
                .map(|f| *f);
            let ctx_device = lib
                .get::<FnCtxDevice>(b"nvemu_cuda_ctx_device\0")
                .ok()
                .map(|f| *f);
            Ok(Cuda {
                _lib: lib,
                memcpy2d,
                push,
                pop,
                pointer_attr,
                pending_write,
                map_fence,
                engine_scope,
                ctx_device,
            })
        }
    })
    .as_ref()
    .map_err(|e| e.clone())
}

/// Copies `rows` rows of `pitch` bytes from device pointer `src` into a new host buffer, with
/// the session's context pushed around the copy.
pub fn read_device(ctx: u64, src: u64, pitch: usize, rows: usize) -> Result<Vec<u8>, String> {
    let cu = cuda()?;
    let mut buf = vec![0u8; pitch * rows];
    let p = CUDA_MEMCPY2D {
        srcMemoryType: CU_MEMORYTYPE_DEVICE,
        srcDevice: src,
        srcPitch: pitch,
        dstMemoryType: CU_MEMORYTYPE_HOST,
        dstHost: buf.as_mut_ptr().cast(),
        dstPitch: pitch,
        WidthInBytes: pitch,
        Height: rows,
        ..Default::default()
    };
    // SAFETY: `ctx` is the CUcontext the client opened the session with (opaque to us, only
    // handed back to CUDA); `p` describes a copy into `buf`, which holds pitch*rows bytes; the
    // source extent is the registered resource's pitch*rows, which the client promised.
    unsafe {
        let r = (cu.push)(ctx);
        if r != 0 {
            return Err(format!("cuCtxPushCurrent_v2 failed: {r}"));
        }
        // The engine's DMA, not CUDA work of the client: outside the stream-ordering model.
        if let Some(scope) = cu.engine_scope {
            scope(1);
        }
        let r = (cu.memcpy2d)(&p);
        if let Some(scope) = cu.engine_scope {
            scope(0);
        }
        let mut popped = 0u64;
        let r2 = (cu.pop)(&mut popped);
        if r != 0 {
            return Err(format!("cuMemcpy2D_v2 DtoH failed: {r}"));
        }
        if r2 != 0 {
            return Err(format!("cuCtxPopCurrent_v2 failed: {r2}"));
        }
    }
    Ok(buf)
}

/// Whether `ptr` comes from a stream-ordered allocation (`cuMemAllocAsync`, memory pools);
/// `false` where the driver cannot tell (no such attribute, or not CUDA memory).
pub fn is_stream_ordered(ptr: u64) -> bool {
    let Some(attr) = cuda().ok().and_then(|c| c.pointer_attr) else {
        return false;
    };
    let mut pool = 0u64;
    // SAFETY: cuPointerGetAttribute writes one CUmemoryPool (a pointer, 8 bytes) into `pool`
    // for this attribute; `ptr` is only looked up by the driver.
    let r = unsafe { attr(&mut pool, CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE, ptr) };
    r == CUDA_SUCCESS && pool != 0
}

/// With the CUDA stand-in: `nvEncMapInputResource`'s guarantee, that CUDA work on the default
/// stream using `[ptr, ptr + len)` is complete before NVENC reads it (`nvemu_cuda_map_fence`);
/// the number of pending operations it completed (0 with the real driver, which does it
/// itself).
pub fn map_fence(ptr: u64, len: usize) -> u32 {
    let Some(f) = cuda().ok().and_then(|c| c.map_fence) else {
        return 0;
    };
    // SAFETY: the stand-in's export only looks the range up in its own bookkeeping.
    u32::try_from(unsafe { f(ptr, len) }).unwrap_or(0)
}

/// With the CUDA stand-in: the client's write into `[ptr, ptr + len)` that is still pending and
/// not ordered before work on `reader` (the session's input stream, 0 = the default stream of
/// `ctx`), described; `None` if there is none, or with the real driver (which cannot tell).
pub fn pending_write(ctx: u64, ptr: u64, len: usize, reader: u64) -> Option<String> {
    let f = cuda().ok().and_then(|c| c.pending_write)?;
    let mut buf = [0u8; 256];
    // SAFETY: the stand-in's export writes at most `buf.len()` bytes (NUL-terminated) into
    // `buf`; the handles are only looked up.
    let hit = unsafe { f(ctx, ptr, len, reader, buf.as_mut_ptr(), buf.len()) } == 1;
    hit.then(|| {
        let n = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..n]).into_owned()
    })
}

/// With the CUDA stand-in: the ordinal of the device `ctx` belongs to; `None` for a context it
/// does not know, or with the real driver.
pub fn ctx_device(ctx: u64) -> Option<u32> {
    let f = cuda().ok().and_then(|c| c.ctx_device)?;
    // SAFETY: the stand-in's export only looks the handle up.
    u32::try_from(unsafe { f(ctx) }).ok()
}
