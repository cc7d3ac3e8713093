//! Reading CUDA device memory through the CUDA driver API (`libcuda.so.1`), loaded at run time:
//! our CUDA stand-in (device pointers are host addresses) or the real driver.

use std::sync::OnceLock;

type CuResult = i32;
type FnMemcpy2D = unsafe extern "C" fn(*const Memcpy2D) -> CuResult;
type FnPush = unsafe extern "C" fn(u64) -> CuResult;
type FnPop = unsafe extern "C" fn(*mut u64) -> CuResult;

/// `CUDA_MEMCPY2D` (128 bytes on LP64).
#[repr(C)]
#[derive(Default)]
struct Memcpy2D {
    src_x_in_bytes: usize,
    src_y: usize,
    src_memory_type: u32,
    src_host: usize,
    src_device: u64,
    src_array: usize,
    src_pitch: usize,
    dst_x_in_bytes: usize,
    dst_y: usize,
    dst_memory_type: u32,
    dst_host: usize,
    dst_device: u64,
    dst_array: usize,
    dst_pitch: usize,
    width_in_bytes: usize,
    height: usize,
}
const _: () = assert!(std::mem::size_of::<Memcpy2D>() == 128);

const CU_MEMORYTYPE_HOST: u32 = 1;
const CU_MEMORYTYPE_DEVICE: u32 = 2;

struct Cuda {
    _lib: libloading::Library,
    memcpy2d: FnMemcpy2D,
    push: FnPush,
    pop: FnPop,
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
            Ok(Cuda {
                _lib: lib,
                memcpy2d,
                push,
                pop,
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
    let p = Memcpy2D {
        src_memory_type: CU_MEMORYTYPE_DEVICE,
        src_device: src,
        src_pitch: pitch,
        dst_memory_type: CU_MEMORYTYPE_HOST,
        dst_host: buf.as_mut_ptr() as usize,
        dst_pitch: pitch,
        width_in_bytes: pitch,
        height: rows,
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
        let r = (cu.memcpy2d)(&p);
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
