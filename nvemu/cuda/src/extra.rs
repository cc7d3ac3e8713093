//! Entry points that the API 12.1-13.0 clients load beyond the rest of this library.
//!
//! - NVIDIA's PyNvVideoCodec 2.2.4 (both of its encoder builds, SDK 12.1 and 13.0) links
//!   `cuStreamGetCtx`: its module does not load without it.
//! - FFmpeg 8 (libavutil 60 / libavcodec 62 as bundled in PyAV 18.1, nv-codec-headers 13.0)
//!   resolves, through `dynlink_loader.h`, a longer fixed list than FFmpeg 5.1 and refuses the
//!   library if one is missing ("Cannot load cuArrayCreate_v2"): CUDA arrays, mipmapped arrays,
//!   external memory and semaphores (Vulkan interop), `cuDeviceGetByPCIBusId`,
//!   `cuDeviceGetLuid` and the EGL stream calls. FFmpeg's NVENC encoders call none of them.
//!
//! What each answers (docs/emulator-contract.md, "nvemu-cuda"):
//! - `cuStreamGetCtx`: the stream's context; for the NULL, legacy and per-thread streams the
//!   current context (`CUDA_ERROR_INVALID_CONTEXT` without one), as the driver documents.
//! - `cuDeviceGetByPCIBusId`: the inverse of `cuDeviceGetPCIBusId` (the three forms the
//!   driver documents, hexadecimal, case-insensitive); an unknown id: `CUDA_ERROR_INVALID_DEVICE`.
//! - `cuDeviceGetLuid`: a LUID exists only under Windows' WDDM; on Linux the call answers
//!   `CUDA_ERROR_NOT_SUPPORTED` (the driver's code on Linux not measured yet).
//! - CUDA arrays (`cuArrayCreate_v2`, as `cuArray3DCreate_v2`): `CUDA_ERROR_NOT_SUPPORTED` (the
//!   emulator creates none); mipmapped arrays can only come from external memory, which cannot
//!   be imported, so the calls taking one answer `CUDA_ERROR_INVALID_HANDLE`.
//! - External memory and semaphores: the emulated device memory is this process's heap; no
//!   other API (Vulkan, Direct3D, NvSci) can share memory or a semaphore with it.
//!   `cuImportExternalMemory` / `cuImportExternalSemaphore` check the descriptor (NULL, unknown
//!   handle type, zero size, unknown flags: `CUDA_ERROR_INVALID_VALUE`) and answer
//!   `CUDA_ERROR_NOT_SUPPORTED`; the calls taking an imported object answer
//!   `CUDA_ERROR_INVALID_HANDLE` (none can exist).
//! - EGL streams: no EGL display belongs to the emulated GPU, so no stream can be connected:
//!   `cuEGLStreamProducerConnect` answers `CUDA_ERROR_INVALID_HANDLE` (the EGLStream handle is
//!   not one of this device's); the calls taking a connection answer `CUDA_ERROR_INVALID_HANDLE`.
//!
//! None of these is a silent success; each refusal is traced.
use super::*;
use cuda_abi::CUarray;

pub type CUexternalMemory = *mut c_void;
pub type CUexternalSemaphore = *mut c_void;
pub type CUmipmappedArray = *mut c_void;
pub type CUeglStreamConnection = *mut c_void;

/// `CUeglFrame` (cudaEGL.h), passed by value to `cuEGLStreamProducerPresentFrame`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct CUeglFrame {
    pub frame: [*mut c_void; 3],
    pub width: c_uint,
    pub height: c_uint,
    pub depth: c_uint,
    pub pitch: c_uint,
    pub plane_count: c_uint,
    pub num_channels: c_uint,
    pub frame_type: c_uint,
    pub egl_color_format: c_uint,
    pub cu_format: c_uint,
}
const _: () = assert!(std::mem::size_of::<CUeglFrame>() == 64);

/// The head of `CUDA_EXTERNAL_MEMORY_HANDLE_DESC` (cuda.h): type, the handle union, size,
/// flags (then reserved words, not read).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ExternalMemoryHandleDesc {
    pub ty: c_uint,
    pub handle: [u64; 2],
    pub size: u64,
    pub flags: c_uint,
}
const _: () = assert!(std::mem::offset_of!(ExternalMemoryHandleDesc, size) == 24);

/// The head of `CUDA_EXTERNAL_SEMAPHORE_HANDLE_DESC` (cuda.h): type, the handle union, flags.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ExternalSemaphoreHandleDesc {
    pub ty: c_uint,
    pub handle: [u64; 2],
    pub flags: c_uint,
}
const _: () = assert!(std::mem::offset_of!(ExternalSemaphoreHandleDesc, flags) == 24);

/// `CU_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_FD` (1) .. `_NVSCIBUF` (8).
const EXT_MEM_TYPES: std::ops::RangeInclusive<c_uint> = 1..=8;
/// `CU_EXTERNAL_SEMAPHORE_HANDLE_TYPE_OPAQUE_FD` (1) .. `_TIMELINE_SEMAPHORE_WIN32` (10).
const EXT_SEM_TYPES: std::ops::RangeInclusive<c_uint> = 1..=10;
/// `CUDA_EXTERNAL_MEMORY_DEDICATED`.
const EXT_MEM_DEDICATED: c_uint = 1;

/// The names this file exports, for `cuGetProcAddress`.
pub(crate) fn procs() -> [(&'static str, usize); 19] {
    [
        ("cuStreamGetCtx", cuStreamGetCtx as *const () as usize),
        (
            "cuDeviceGetByPCIBusId",
            cuDeviceGetByPCIBusId as *const () as usize,
        ),
        ("cuDeviceGetLuid", cuDeviceGetLuid as *const () as usize),
        ("cuArrayCreate_v2", cuArrayCreate_v2 as *const () as usize),
        (
            "cuMipmappedArrayGetLevel",
            cuMipmappedArrayGetLevel as *const () as usize,
        ),
        (
            "cuMipmappedArrayDestroy",
            cuMipmappedArrayDestroy as *const () as usize,
        ),
        (
            "cuImportExternalMemory",
            cuImportExternalMemory as *const () as usize,
        ),
        (
            "cuDestroyExternalMemory",
            cuDestroyExternalMemory as *const () as usize,
        ),
        (
            "cuExternalMemoryGetMappedBuffer",
            cuExternalMemoryGetMappedBuffer as *const () as usize,
        ),
        (
            "cuExternalMemoryGetMappedMipmappedArray",
            cuExternalMemoryGetMappedMipmappedArray as *const () as usize,
        ),
        (
            "cuImportExternalSemaphore",
            cuImportExternalSemaphore as *const () as usize,
        ),
        (
            "cuDestroyExternalSemaphore",
            cuDestroyExternalSemaphore as *const () as usize,
        ),
        (
            "cuSignalExternalSemaphoresAsync",
            cuSignalExternalSemaphoresAsync as *const () as usize,
        ),
        (
            "cuWaitExternalSemaphoresAsync",
            cuWaitExternalSemaphoresAsync as *const () as usize,
        ),
        (
            "cuEGLStreamProducerConnect",
            cuEGLStreamProducerConnect as *const () as usize,
        ),
        (
            "cuEGLStreamProducerDisconnect",
            cuEGLStreamProducerDisconnect as *const () as usize,
        ),
        (
            "cuEGLStreamProducerPresentFrame",
            cuEGLStreamProducerPresentFrame as *const () as usize,
        ),
        (
            "cuEGLStreamProducerReturnFrame",
            cuEGLStreamProducerReturnFrame as *const () as usize,
        ),
        (
            "cuEGLStreamConsumerDisconnect",
            cuEGLStreamConsumerDisconnect as *const () as usize,
        ),
    ]
}

cuda_fn! { fn cuStreamGetCtx(stream: CUstream, pctx: *mut CUcontext) {
    let st = state();
    need_init()?;
    let h = stream as u64;
    let ctx = if h <= 2 {
        current_ctx(&st)?
    } else {
        let s = st.streams.get(&h).ok_or(CUDA_ERROR_INVALID_HANDLE)?;
        if !st.ctxs.contains_key(&s.ctx) {
            return Err(CUDA_ERROR_CONTEXT_IS_DESTROYED);
        }
        s.ctx
    };
    put(pctx, ctx as CUcontext)
}}

/// Reads a client's NUL-terminated string (NULL or not UTF-8: `CUDA_ERROR_INVALID_VALUE`).
fn c_str<'a>(p: *const c_char) -> R<&'a str> {
    if p.is_null() {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    // SAFETY: the CUDA API contract makes `p` a NUL-terminated C string that outlives the
    // call; NULL was rejected above.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str().map_err(|_| CUDA_ERROR_INVALID_VALUE)
}

/// Parses the forms `cuDeviceGetByPCIBusId` documents: `domain:bus:device.function`,
/// `domain:bus:device`, `bus:device.function` (hexadecimal). Returns (domain, bus, device,
/// function).
fn parse_bus_id(s: &str) -> Option<(u32, u32, u32, u32)> {
    let hexn = |t: &str| {
        (!t.is_empty() && t.len() <= 8)
            .then(|| u32::from_str_radix(t, 16).ok())
            .flatten()
    };
    let (head, func) = match s.rsplit_once('.') {
        Some((h, f)) => (h, Some(hexn(f)?)),
        None => (s, None),
    };
    let parts: Vec<&str> = head.split(':').collect();
    match (parts.as_slice(), func) {
        ([d, b, dev], f) => Some((hexn(d)?, hexn(b)?, hexn(dev)?, f.unwrap_or(0))),
        ([b, dev], Some(f)) => Some((0, hexn(b)?, hexn(dev)?, f)),
        _ => None,
    }
}

cuda_fn! { fn cuDeviceGetByPCIBusId(dev: *mut CUdevice, pci_bus_id: *const c_char) {
    need_init()?;
    if dev.is_null() || pci_bus_id.is_null() {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    let id = c_str(pci_bus_id)?;
    let (domain, bus, device, function) =
        parse_bus_id(id.trim()).ok_or(CUDA_ERROR_INVALID_VALUE)?;
    // cuDeviceGetPCIBusId: device N is 0000:(N+1):00.0.
    let found = (0..device_count())
        .find(|&n| domain == 0 && bus == n as u32 + 1 && device == 0 && function == 0);
    trace(
        "cuDeviceGetByPCIBusId",
        if found.is_some() { 0 } else { CUDA_ERROR_INVALID_DEVICE },
        &[("pciBusId", id.into())],
        None,
    );
    put(dev, found.ok_or(CUDA_ERROR_INVALID_DEVICE)?)
}}

cuda_fn! { fn cuDeviceGetLuid(luid: *mut c_char, node_mask: *mut c_uint, dev: CUdevice) {
    check_device(dev)?;
    if luid.is_null() || node_mask.is_null() {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    // A LUID is a Windows (WDDM) notion.
    trace("cuDeviceGetLuid", CUDA_ERROR_NOT_SUPPORTED, &[("dev", dev.into())], None);
    Err(CUDA_ERROR_NOT_SUPPORTED)
}}

cuda_fn! { fn cuArrayCreate_v2(handle: *mut CUarray, desc: *const c_void) {
    current_ctx(&state())?;
    if handle.is_null() || desc.is_null() {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    trace("cuArrayCreate_v2", CUDA_ERROR_NOT_SUPPORTED, &[], None);
    Err(CUDA_ERROR_NOT_SUPPORTED)
}}

cuda_fn! { fn cuMipmappedArrayGetLevel(level: *mut CUarray, array: CUmipmappedArray, lvl: c_uint) {
    current_ctx(&state())?;
    let _ = (level, array, lvl);
    // No mipmapped array can exist (external memory cannot be imported).
    Err(CUDA_ERROR_INVALID_HANDLE)
}}

cuda_fn! { fn cuMipmappedArrayDestroy(array: CUmipmappedArray) {
    current_ctx(&state())?;
    let _ = array;
    Err(CUDA_ERROR_INVALID_HANDLE)
}}

cuda_fn! { fn cuImportExternalMemory(out: *mut CUexternalMemory, desc: *const ExternalMemoryHandleDesc) {
    current_ctx(&state())?;
    if out.is_null() {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    let d = get(desc)?;
    if !EXT_MEM_TYPES.contains(&d.ty) || d.size == 0 || d.flags & !EXT_MEM_DEDICATED != 0 {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    trace(
        "cuImportExternalMemory",
        CUDA_ERROR_NOT_SUPPORTED,
        &[("type", d.ty.into()), ("size", d.size.into()), ("flags", d.flags.into())],
        None,
    );
    Err(CUDA_ERROR_NOT_SUPPORTED)
}}

cuda_fn! { fn cuDestroyExternalMemory(ext: CUexternalMemory) {
    current_ctx(&state())?;
    // NULL: CUDA_ERROR_INVALID_VALUE, as the real driver answered on the device machine
    // (580.159.04, H100); any other handle cannot be one of ours.
    if ext.is_null() {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    Err(CUDA_ERROR_INVALID_HANDLE)
}}

cuda_fn! { fn cuExternalMemoryGetMappedBuffer(dptr: *mut CUdeviceptr, ext: CUexternalMemory, desc: *const c_void) {
    current_ctx(&state())?;
    if dptr.is_null() || desc.is_null() {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    let _ = ext;
    Err(CUDA_ERROR_INVALID_HANDLE)
}}

cuda_fn! { fn cuExternalMemoryGetMappedMipmappedArray(
    out: *mut CUmipmappedArray,
    ext: CUexternalMemory,
    desc: *const c_void,
) {
    current_ctx(&state())?;
    if out.is_null() || desc.is_null() {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    let _ = ext;
    Err(CUDA_ERROR_INVALID_HANDLE)
}}

cuda_fn! { fn cuImportExternalSemaphore(out: *mut CUexternalSemaphore, desc: *const ExternalSemaphoreHandleDesc) {
    current_ctx(&state())?;
    if out.is_null() {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    let d = get(desc)?;
    if !EXT_SEM_TYPES.contains(&d.ty) || d.flags != 0 {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    trace(
        "cuImportExternalSemaphore",
        CUDA_ERROR_NOT_SUPPORTED,
        &[("type", d.ty.into())],
        None,
    );
    Err(CUDA_ERROR_NOT_SUPPORTED)
}}

cuda_fn! { fn cuDestroyExternalSemaphore(ext: CUexternalSemaphore) {
    current_ctx(&state())?;
    // NULL as cuDestroyExternalMemory's (the real driver's answer there; for semaphores it was
    // not observed, an assumption).
    if ext.is_null() {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    Err(CUDA_ERROR_INVALID_HANDLE)
}}

cuda_fn! { fn cuSignalExternalSemaphoresAsync(
    sems: *const CUexternalSemaphore,
    params: *const c_void,
    num: c_uint,
    stream: CUstream,
) {
    let st = state();
    current_ctx(&st)?;
    check_stream(&st, stream)?;
    if num == 0 {
        return Ok(());
    }
    if sems.is_null() || params.is_null() {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    Err(CUDA_ERROR_INVALID_HANDLE)
}}

cuda_fn! { fn cuWaitExternalSemaphoresAsync(
    sems: *const CUexternalSemaphore,
    params: *const c_void,
    num: c_uint,
    stream: CUstream,
) {
    let st = state();
    current_ctx(&st)?;
    check_stream(&st, stream)?;
    if num == 0 {
        return Ok(());
    }
    if sems.is_null() || params.is_null() {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    Err(CUDA_ERROR_INVALID_HANDLE)
}}

cuda_fn! { fn cuEGLStreamProducerConnect(
    conn: *mut CUeglStreamConnection,
    stream: *mut c_void,
    width: c_int,
    height: c_int,
) {
    current_ctx(&state())?;
    if conn.is_null() || width <= 0 || height <= 0 {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    trace(
        "cuEGLStreamProducerConnect",
        CUDA_ERROR_INVALID_HANDLE,
        &[("stream", hex(stream as u64))],
        None,
    );
    // No EGL display belongs to the emulated GPU: the stream cannot be one of its own.
    Err(CUDA_ERROR_INVALID_HANDLE)
}}

cuda_fn! { fn cuEGLStreamProducerDisconnect(conn: *mut CUeglStreamConnection) {
    current_ctx(&state())?;
    if conn.is_null() {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    Err(CUDA_ERROR_INVALID_HANDLE)
}}

cuda_fn! { fn cuEGLStreamProducerPresentFrame(
    conn: *mut CUeglStreamConnection,
    frame: CUeglFrame,
    stream: *mut CUstream,
) {
    current_ctx(&state())?;
    if conn.is_null() {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    let _ = (frame, stream);
    Err(CUDA_ERROR_INVALID_HANDLE)
}}

cuda_fn! { fn cuEGLStreamProducerReturnFrame(
    conn: *mut CUeglStreamConnection,
    frame: *mut CUeglFrame,
    stream: *mut CUstream,
) {
    current_ctx(&state())?;
    if conn.is_null() || frame.is_null() {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    let _ = stream;
    Err(CUDA_ERROR_INVALID_HANDLE)
}}

cuda_fn! { fn cuEGLStreamConsumerDisconnect(conn: *mut CUeglStreamConnection) {
    current_ctx(&state())?;
    if conn.is_null() {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    Err(CUDA_ERROR_INVALID_HANDLE)
}}

#[cfg(test)]
mod tests {
    use super::parse_bus_id;

    #[test]
    fn bus_id_forms() {
        assert_eq!(parse_bus_id("0000:01:00.0"), Some((0, 1, 0, 0)));
        assert_eq!(parse_bus_id("0000:0A:00"), Some((0, 10, 0, 0)));
        assert_eq!(parse_bus_id("02:00.0"), Some((0, 2, 0, 0)));
        assert_eq!(parse_bus_id("02:00"), None);
        assert_eq!(parse_bus_id("zz:00.0"), None);
        assert_eq!(parse_bus_id(""), None);
    }
}
