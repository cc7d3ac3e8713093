//! Entry points that GStreamer 1.24+'s `libgstcuda` loader requires on top of 1.22's (it
//! resolves its whole list or refuses the library; 1.26.2's list was checked): context limits
//! and CUDA IPC. The 16- and 32-bit 2D memsets it also requires are with the other memsets in
//! `lib.rs`.
//!
//! - Limits (`cuCtxGetLimit` / `cuCtxSetLimit`): per context, starting from the values the
//!   driver documents as defaults (stack 1024 bytes per thread, printf FIFO 1 MiB, malloc heap
//!   8 MiB, device-runtime sync depth 2 and pending launches 2048, L2 fetch granularity 64
//!   bytes, persisting L2 0). The emulated GPU has no persisting L2 (device attribute 108 is 0),
//!   so only 0 can be set there; shared-memory and CIG limits (7..=9) belong to context kinds
//!   the emulator does not make: `CUDA_ERROR_UNSUPPORTED_LIMIT`. Other values:
//!   `CUDA_ERROR_INVALID_VALUE`.
//! - IPC: the emulated device memory is this process's heap, so no other process can open it.
//!   Every IPC call checks its arguments like the driver and then fails with
//!   `CUDA_ERROR_NOT_SUPPORTED` (what drivers answer on platforms without CUDA IPC; device
//!   attribute 125, IPC_EVENT_SUPPORTED, is 0). `cuIpcCloseMemHandle` gets a pointer that no
//!   open can have returned: `CUDA_ERROR_INVALID_VALUE`.
use super::*;

/// `CUlimit` defaults, indexed by the limit (0..=6).
pub(crate) const DEFAULTS: [usize; 7] = [1024, 1 << 20, 8 << 20, 2, 2048, 64, 0];

const NAMES: [&str; 10] = [
    "CU_LIMIT_STACK_SIZE",
    "CU_LIMIT_PRINTF_FIFO_SIZE",
    "CU_LIMIT_MALLOC_HEAP_SIZE",
    "CU_LIMIT_DEV_RUNTIME_SYNC_DEPTH",
    "CU_LIMIT_DEV_RUNTIME_PENDING_LAUNCH_COUNT",
    "CU_LIMIT_MAX_L2_FETCH_GRANULARITY",
    "CU_LIMIT_PERSISTING_L2_CACHE_SIZE",
    "CU_LIMIT_SHMEM_SIZE",
    "CU_LIMIT_CIG_ENABLED",
    "CU_LIMIT_CIG_SHMEM_FALLBACK_ENABLED",
];

/// The index of a limit the emulator keeps, or the documented error.
fn limit_index(limit: c_uint) -> R<usize> {
    match limit {
        0..=6 => Ok(limit as usize),
        7..=9 => Err(CUDA_ERROR_UNSUPPORTED_LIMIT),
        _ => Err(CUDA_ERROR_INVALID_VALUE),
    }
}

fn limit_name(limit: c_uint) -> Val {
    NAMES
        .get(limit as usize)
        .map_or_else(|| Val::from(limit), |n| Val::from(*n))
}

cuda_fn! { fn cuCtxGetLimit(pvalue: *mut usize, limit: c_uint) {
    let st = state();
    let ctx = current_ctx(&st)?;
    if pvalue.is_null() {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    let i = limit_index(limit)?;
    let v = st.ctxs[&ctx].limits[i];
    drop(st);
    trace("cuCtxGetLimit", 0, &[("limit", limit_name(limit)), ("value", v.into())], None);
    put(pvalue, v)
}}

cuda_fn! { fn cuCtxSetLimit(limit: c_uint, value: usize) {
    let mut st = state();
    let ctx = current_ctx(&st)?;
    let r = limit_index(limit).and_then(|i| {
        if i == 6 && value != 0 {
            // No persisting L2 on the emulated GPU (CU_DEVICE_ATTRIBUTE_MAX_PERSISTING_L2_CACHE_SIZE = 0).
            return Err(CUDA_ERROR_UNSUPPORTED_LIMIT);
        }
        if let Some(c) = st.ctxs.get_mut(&ctx) {
            c.limits[i] = value;
        }
        Ok(())
    });
    drop(st);
    trace("cuCtxSetLimit", r.err().unwrap_or(0), &[("limit", limit_name(limit)), ("value", value.into())], None);
    r
}}

/// `CUipcMemHandle` / `CUipcEventHandle` (`CU_IPC_HANDLE_SIZE` = 64 bytes, passed by value).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct CUipcHandle {
    pub reserved: [c_char; 64],
}

cuda_fn! { fn cuIpcGetMemHandle(handle: *mut CUipcHandle, dptr: CUdeviceptr) {
    let st = state();
    current_ctx(&st)?;
    if handle.is_null() {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    let r = match st.find(dptr, 1) {
        Some((base, a)) if base == dptr && a.kind == MemKind::Device => Err(CUDA_ERROR_NOT_SUPPORTED),
        _ => Err(CUDA_ERROR_INVALID_VALUE),
    };
    drop(st);
    trace("cuIpcGetMemHandle", r.err().unwrap_or(0), &[("dptr", hex(dptr))], None);
    r
}}

cuda_fn! { fn cuIpcOpenMemHandle_v2(pdptr: *mut CUdeviceptr, _handle: CUipcHandle, flags: c_uint) {
    current_ctx(&state())?;
    if pdptr.is_null() || flags & !1 != 0 {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    trace("cuIpcOpenMemHandle_v2", CUDA_ERROR_NOT_SUPPORTED, &[("Flags", flags.into())], None);
    Err(CUDA_ERROR_NOT_SUPPORTED)
}}
alias!(cuIpcOpenMemHandle => cuIpcOpenMemHandle_v2(pdptr: *mut CUdeviceptr, handle: CUipcHandle, flags: c_uint));

cuda_fn! { fn cuIpcCloseMemHandle(dptr: CUdeviceptr) {
    current_ctx(&state())?;
    // No cuIpcOpenMemHandle can have succeeded, so no pointer is open.
    trace("cuIpcCloseMemHandle", CUDA_ERROR_INVALID_VALUE, &[("dptr", hex(dptr))], None);
    Err(CUDA_ERROR_INVALID_VALUE)
}}

cuda_fn! { fn cuIpcGetEventHandle(handle: *mut CUipcHandle, event: CUevent) {
    let st = state();
    current_ctx(&st)?;
    if handle.is_null() {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    // The driver asks for CU_EVENT_INTERPROCESS | CU_EVENT_DISABLE_TIMING events.
    let r = match st.events.get(&(event as u64)) {
        None => Err(CUDA_ERROR_INVALID_HANDLE),
        Some(e) if e.flags & 0x6 != 0x6 => Err(CUDA_ERROR_INVALID_VALUE),
        Some(_) => Err(CUDA_ERROR_NOT_SUPPORTED),
    };
    drop(st);
    trace("cuIpcGetEventHandle", r.err().unwrap_or(0), &[("event", hex(event as u64))], None);
    r
}}

cuda_fn! { fn cuIpcOpenEventHandle(pevent: *mut CUevent, _handle: CUipcHandle) {
    current_ctx(&state())?;
    if pevent.is_null() {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    trace("cuIpcOpenEventHandle", CUDA_ERROR_NOT_SUPPORTED, &[], None);
    Err(CUDA_ERROR_NOT_SUPPORTED)
}}
