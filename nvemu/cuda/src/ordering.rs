//! Streams, events, stream-ordered allocation (memory pools) and the pending-work model.
//!
//! The emulated device does every operation at once, when it is called, so the data is always
//! right. What the model keeps is what a real GPU's host does not know yet: every operation on
//! a stream (an async copy or memset, a synchronous copy or memset into device memory, a
//! stream-ordered allocation or free, an event record) is *pending* until the host has
//! synchronised with it. The NVENC stand-in asks, before its engine reads an input, whether a
//! pending write into that input is not ordered before the read (`nvemu_cuda_pending_write`):
//! that is a race on a real GPU, where NVENC could read the picture before it is written.
//!
//! Ordering, as the CUDA driver API documents it:
//! - Operations on one stream are ordered. `cuStreamWaitEvent(s, e)` orders later work on `s`
//!   after the work `e` captured at its `cuEventRecord`.
//! - The legacy default stream (NULL, `CU_STREAM_LEGACY`) and the blocking streams
//!   (`CU_STREAM_DEFAULT`, and the per-thread default stream) of a context are ordered with one
//!   another: work on the legacy stream waits for earlier work on every blocking stream of the
//!   context, and work on a blocking stream waits for earlier legacy work.
//!   `CU_STREAM_NON_BLOCKING` streams take no part. (The per-thread default stream is modelled
//!   as one stream per context, not one per thread.)
//!
//! The host learns that work is complete through `cuStreamSynchronize`, `cuStreamQuery`
//! (always `CUDA_SUCCESS` here, since the work is done), `cuEventSynchronize`, `cuEventQuery`,
//! `cuCtxSynchronize` (the whole context), and synchronous copies into host memory (which
//! return once the copy, and so everything it was ordered after, is done). Synchronous copies
//! and memsets into device memory are asynchronous to the host (as the driver documents for
//! device-to-device copies and device memsets): they stay pending on the legacy stream.
//! Completing an operation completes everything it was ordered after.
//!
//! Stream-ordered allocation: `cuMemAllocAsync` / `cuMemAllocFromPoolAsync` give memory that
//! is valid in stream order (the allocation is a pending operation writing the whole range);
//! `cuMemFreeAsync` frees in stream order (the pointer is invalid at once; the memory is
//! released when the free completes). Pools (`cuMemPoolCreate`, the device's default pool)
//! account their memory (`CU_MEMPOOL_ATTR_*`); freed memory is not cached for reuse (every
//! allocation is new memory, reserved = used). `cuPointerGetAttribute(MEMPOOL_HANDLE)` names
//! the pool.
//!
//! Every call here is traced (`NVEMU_TRACE`); syncs say how many pending operations they
//! completed (`completed`).
use super::*;
use std::cell::Cell;
use std::collections::HashSet;

/// `CU_STREAM_LEGACY` and `CU_STREAM_PER_THREAD` (cuda.h).
const LEGACY: u64 = 0;
const PER_THREAD: u64 = 2;
/// Pending operations kept at most; beyond it the oldest are taken as complete (an old race
/// then goes unseen, nothing else changes).
const MAX_PENDING: usize = 1 << 14;

/// One stream's position: its last operation, and the events its next operation waits for.
#[derive(Default)]
pub(crate) struct Lane {
    last: Option<u64>,
    waits: Vec<u64>,
}

/// A pending operation.
pub(crate) struct Op {
    ctx: u64,
    stream: u64,
    call: &'static str,
    /// Device (or mapped host) bytes it writes.
    range: Option<(u64, usize)>,
    /// Operations it is ordered after.
    deps: Vec<u64>,
    /// A stream-ordered free: memory released when the operation completes.
    free: Option<(u64, Alloc)>,
}

/// A memory pool (`CUmemoryPool`).
pub(crate) struct Pool {
    /// CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES, _ALLOW_OPPORTUNISTIC,
    /// _ALLOW_INTERNAL_DEPENDENCIES (all 1 by default).
    reuse: [c_int; 3],
    release_threshold: u64,
    used: u64,
    used_high: u64,
    reserved_high: u64,
    /// `CUmemPoolProps::maxSize` (0: no limit but the device's memory).
    max_size: u64,
    destroyed: bool,
}

impl Pool {
    fn new(max_size: u64) -> Pool {
        Pool {
            reuse: [1; 3],
            release_threshold: 0,
            used: 0,
            used_high: 0,
            reserved_high: 0,
            max_size,
            destroyed: false,
        }
    }
}

thread_local! {
    /// Set by the NVENC stand-in around its own reads of an input (the engine's DMA, not CUDA
    /// work of the client): they neither add to nor complete the pending work.
    static ENGINE: Cell<bool> = const { Cell::new(false) };
}

fn key(stream: CUstream) -> u64 {
    match stream as u64 {
        1 => LEGACY,
        s => s,
    }
}

fn lane(st: &mut State, ctx: u64, s: u64) -> Option<&mut Lane> {
    if s == LEGACY || s == PER_THREAD {
        Some(st.lanes.entry((ctx, s)).or_default())
    } else {
        st.streams.get_mut(&s).map(|x| &mut x.lane)
    }
}

fn last_of(st: &State, ctx: u64, s: u64) -> Option<u64> {
    let l = if s == LEGACY || s == PER_THREAD {
        st.lanes.get(&(ctx, s))?.last
    } else {
        st.streams.get(&s)?.lane.last
    };
    l.filter(|id| st.ops.contains_key(id))
}

/// Issues an operation on `stream` in `ctx`; returns its id.
fn issue(
    st: &mut State,
    ctx: u64,
    stream: CUstream,
    call: &'static str,
    range: Option<(u64, usize)>,
    free: Option<(u64, Alloc)>,
) -> u64 {
    let s = key(stream);
    let mut deps: Vec<u64> = last_of(st, ctx, s).into_iter().collect();
    if let Some(l) = lane(st, ctx, s) {
        // The waits go with this operation; later ones follow it.
        deps.append(&mut l.waits);
    }
    if s == LEGACY {
        let blocking: Vec<u64> = st
            .streams
            .iter()
            .filter(|(_, x)| x.ctx == ctx && x.flags & CU_STREAM_NON_BLOCKING == 0)
            .map(|(h, _)| *h)
            .chain([PER_THREAD])
            .collect();
        deps.extend(blocking.into_iter().filter_map(|b| last_of(st, ctx, b)));
    } else if s == PER_THREAD
        || st
            .streams
            .get(&s)
            .is_some_and(|x| x.flags & CU_STREAM_NON_BLOCKING == 0)
    {
        deps.extend(last_of(st, ctx, LEGACY));
    }
    deps.retain(|d| st.ops.contains_key(d));
    st.next_op += 1;
    let id = st.next_op;
    st.ops.insert(
        id,
        Op {
            ctx,
            stream: s,
            call,
            range,
            deps,
            free,
        },
    );
    if let Some(l) = lane(st, ctx, s) {
        l.last = Some(id);
    }
    while st.ops.len() > MAX_PENDING {
        let Some(&oldest) = st.ops.keys().next() else {
            break;
        };
        complete(st, vec![oldest]);
    }
    id
}

/// Completes `ids` and everything they are ordered after; returns how many were pending.
fn complete(st: &mut State, mut ids: Vec<u64>) -> usize {
    let mut n = 0;
    while let Some(id) = ids.pop() {
        if let Some(op) = st.ops.remove(&id) {
            n += 1;
            ids.extend(op.deps);
            if let Some((addr, a)) = op.free {
                release_memory(st, addr, &a);
            }
        }
    }
    n
}

/// The host waits for everything issued so far on `stream` (and what it is ordered after).
pub(crate) fn host_sync(st: &mut State, ctx: u64, stream: CUstream, call: &'static str) -> usize {
    let marker = issue(st, ctx, stream, call, None, None);
    complete(st, vec![marker]) - 1
}

/// Every pending operation of `ctx` completes (cuCtxSynchronize, context destruction).
pub(crate) fn complete_ctx(st: &mut State, ctx: u64) -> usize {
    let ids: Vec<u64> = st
        .ops
        .iter()
        .filter(|(_, o)| o.ctx == ctx)
        .map(|(id, _)| *id)
        .collect();
    complete(st, ids)
}

/// Records a copy or memset that wrote `[addr, addr + len)`: pending on `stream`, or, for a
/// synchronous call into host memory, complete when it returns. Nothing is recorded for the
/// NVENC engine's own reads.
#[allow(clippy::too_many_arguments)] // one call site per copy kind, all alike
pub(crate) fn record_write(
    st: &mut State,
    ctx: u64,
    stream: CUstream,
    sync: bool,
    call: &'static str,
    addr: u64,
    len: usize,
    dst_device: bool,
) {
    if ENGINE.with(Cell::get) {
        return;
    }
    let range = (len > 0 && st.find(addr, len).is_some()).then_some((addr, len));
    let id = issue(st, ctx, stream, call, range, None);
    if sync && !dst_device {
        complete(st, vec![id]);
    }
}

/// The pool's accounting when memory of it is released.
pub(crate) fn pool_released(st: &mut State, pool: u64, size: usize) {
    if let Some(p) = st.pools.get_mut(&pool) {
        p.used = p.used.saturating_sub(size as u64);
    }
}

/// Whether `ptr` lies in a stream-ordered allocation; its pool.
pub(crate) fn pool_of(st: &State, ptr: u64) -> Option<u64> {
    st.find(ptr, 1).and_then(|(_, a)| a.pool)
}

// --- contexts -------------------------------------------------------------------------------

cuda_fn! { fn cuCtxSynchronize() {
    let mut st = state();
    let ctx = current_ctx(&st)?;
    let n = complete_ctx(&mut st, ctx);
    drop(st);
    trace("cuCtxSynchronize", 0, &[("ctx", hex(ctx)), ("completed", n.into())], None);
    Ok(())
}}

// --- streams --------------------------------------------------------------------------------

fn stream_create(call: &str, ph: *mut CUstream, flags: c_uint, priority: c_int) -> R {
    if ph.is_null() || flags & !CU_STREAM_NON_BLOCKING != 0 {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    let mut st = state();
    let ctx = current_ctx(&st)?;
    let h = st.handle();
    let priority = priority.clamp(-5, 0);
    st.streams.insert(
        h,
        Stream {
            ctx,
            flags,
            priority,
            lane: Lane::default(),
        },
    );
    drop(st);
    trace(
        call,
        0,
        &[
            ("Flags", flags.into()),
            ("priority", priority.into()),
            ("hStream", hex(h)),
        ],
        None,
    );
    put(ph, h as CUstream)
}

cuda_fn! { fn cuStreamCreateWithPriority(ph: *mut CUstream, flags: c_uint, priority: c_int) {
    stream_create("cuStreamCreateWithPriority", ph, flags, priority)
}}

cuda_fn! { fn cuStreamCreate(ph: *mut CUstream, flags: c_uint) {
    stream_create("cuStreamCreate", ph, flags, 0)
}}

cuda_fn! { fn cuStreamDestroy_v2(h: CUstream) {
    let mut st = state();
    current_ctx(&st)?;
    // Work still pending on it completes later, as with the driver.
    let r = st.streams.remove(&(h as u64)).map(|_| ()).ok_or(CUDA_ERROR_INVALID_HANDLE);
    drop(st);
    trace("cuStreamDestroy_v2", r.err().unwrap_or(0), &[("hStream", hex(h as u64))], None);
    r
}}
alias!(cuStreamDestroy => cuStreamDestroy_v2(h: CUstream));

fn stream_wait(call: &'static str, h: CUstream) -> R {
    let mut st = state();
    let ctx = current_ctx(&st)?;
    check_stream(&st, h)?;
    let n = if ENGINE.with(Cell::get) {
        0
    } else {
        host_sync(&mut st, ctx, h, call)
    };
    drop(st);
    trace(
        call,
        0,
        &[("hStream", hex(h as u64)), ("completed", n.into())],
        None,
    );
    Ok(())
}

cuda_fn! { fn cuStreamSynchronize(h: CUstream) { stream_wait("cuStreamSynchronize", h) } }

// The emulated work is always done: the query answers CUDA_SUCCESS, which tells the host that
// everything on the stream has completed.
cuda_fn! { fn cuStreamQuery(h: CUstream) { stream_wait("cuStreamQuery", h) } }

cuda_fn! { fn cuStreamWaitEvent(h: CUstream, ev: CUevent, flags: c_uint) {
    let mut st = state();
    let ctx = current_ctx(&st)?;
    check_stream(&st, h)?;
    if flags & !1 != 0 {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    let marker = st.events.get(&(ev as u64)).ok_or(CUDA_ERROR_INVALID_HANDLE)?.marker;
    // An event never recorded: nothing to wait for.
    if let Some(m) = marker.filter(|m| st.ops.contains_key(m))
        && let Some(l) = lane(&mut st, ctx, key(h))
    {
        l.waits.push(m);
    }
    drop(st);
    trace("cuStreamWaitEvent", 0, &[("hStream", hex(h as u64)), ("hEvent", hex(ev as u64))], None);
    Ok(())
}}

cuda_fn! { fn cuStreamGetPriority(h: CUstream, prio: *mut c_int) {
    let st = state();
    current_ctx(&st)?;
    check_stream(&st, h)?;
    put(prio, st.streams.get(&(h as u64)).map_or(0, |s| s.priority))
}}

cuda_fn! { fn cuStreamGetFlags(h: CUstream, flags: *mut c_uint) {
    let st = state();
    current_ctx(&st)?;
    check_stream(&st, h)?;
    put(flags, st.streams.get(&(h as u64)).map_or(0, |s| s.flags))
}}

// --- events ---------------------------------------------------------------------------------

cuda_fn! { fn cuEventCreate(ph: *mut CUevent, flags: c_uint) {
    if ph.is_null() || flags & !0xf != 0 {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    let mut st = state();
    let ctx = current_ctx(&st)?;
    let h = st.handle();
    st.events.insert(h, Event { ctx, flags, recorded: None, marker: None });
    drop(st);
    trace("cuEventCreate", 0, &[("Flags", flags.into()), ("hEvent", hex(h))], None);
    put(ph, h as CUevent)
}}

cuda_fn! { fn cuEventRecord(ev: CUevent, stream: CUstream) {
    let mut st = state();
    let ctx = current_ctx(&st)?;
    check_stream(&st, stream)?;
    if !st.events.contains_key(&(ev as u64)) {
        return Err(CUDA_ERROR_INVALID_HANDLE);
    }
    // The event captures the stream's work so far: a marker operation on the stream.
    let marker = issue(&mut st, ctx, stream, "cuEventRecord", None, None);
    if let Some(e) = st.events.get_mut(&(ev as u64)) {
        e.recorded = Some(Instant::now());
        e.marker = Some(marker);
    }
    drop(st);
    trace("cuEventRecord", 0, &[("hEvent", hex(ev as u64)), ("hStream", hex(stream as u64))], None);
    Ok(())
}}

fn event_wait(call: &'static str, ev: CUevent) -> R {
    need_init()?;
    let mut st = state();
    let marker = st
        .events
        .get(&(ev as u64))
        .ok_or(CUDA_ERROR_INVALID_HANDLE)?
        .marker;
    let n = match marker {
        Some(m) if !ENGINE.with(Cell::get) => complete(&mut st, vec![m]),
        _ => 0,
    };
    drop(st);
    trace(
        call,
        0,
        &[("hEvent", hex(ev as u64)), ("completed", n.into())],
        None,
    );
    Ok(())
}

cuda_fn! { fn cuEventSynchronize(ev: CUevent) { event_wait("cuEventSynchronize", ev) } }

// As cuStreamQuery: the captured work is done, CUDA_SUCCESS tells the host so.
cuda_fn! { fn cuEventQuery(ev: CUevent) { event_wait("cuEventQuery", ev) } }

cuda_fn! { fn cuEventElapsedTime(ms: *mut f32, start: CUevent, end: CUevent) {
    need_init()?;
    let st = state();
    let s = st.events.get(&(start as u64)).ok_or(CUDA_ERROR_INVALID_HANDLE)?;
    let e = st.events.get(&(end as u64)).ok_or(CUDA_ERROR_INVALID_HANDLE)?;
    const DISABLE_TIMING: c_uint = 0x2;
    if (s.flags | e.flags) & DISABLE_TIMING != 0 {
        return Err(CUDA_ERROR_INVALID_HANDLE);
    }
    match (s.recorded, e.recorded) {
        (Some(a), Some(b)) => {
            let d = if b >= a { (b - a).as_secs_f32() } else { -(a - b).as_secs_f32() };
            put(ms, d * 1000.0)
        }
        _ => Err(CUDA_ERROR_INVALID_HANDLE),
    }
}}

cuda_fn! { fn cuEventDestroy_v2(ev: CUevent) {
    need_init()?;
    let r = state().events.remove(&(ev as u64)).map(|_| ()).ok_or(CUDA_ERROR_INVALID_HANDLE);
    trace("cuEventDestroy_v2", r.err().unwrap_or(0), &[("hEvent", hex(ev as u64))], None);
    r
}}
alias!(cuEventDestroy => cuEventDestroy_v2(ev: CUevent));

// --- memory pools and stream-ordered allocation ----------------------------------------------

/// `CUmemPoolProps` (88 bytes on LP64).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct CUmemPoolProps {
    pub allocType: c_uint,
    pub handleTypes: c_uint,
    pub location_type: c_uint,
    pub location_id: c_int,
    pub win32SecurityAttributes: *mut c_void,
    pub maxSize: usize,
    pub usage: u16,
    pub reserved: [u8; 54],
}
const _: () = assert!(std::mem::size_of::<CUmemPoolProps>() == 88);

const CU_MEM_ALLOCATION_TYPE_PINNED: c_uint = 1;
const CU_MEM_LOCATION_TYPE_DEVICE: c_uint = 1;

fn default_pool(st: &mut State) -> u64 {
    if let Some(p) = st.default_pool {
        return p;
    }
    let h = st.handle();
    st.pools.insert(h, Pool::new(0));
    st.default_pool = Some(h);
    h
}

cuda_fn! { fn cuMemPoolCreate(pool: *mut CUmemoryPool, props: *const CUmemPoolProps) {
    need_init()?;
    let p = get(props)?;
    if pool.is_null()
        || p.allocType != CU_MEM_ALLOCATION_TYPE_PINNED
        || p.location_type != CU_MEM_LOCATION_TYPE_DEVICE
    {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    check_device(p.location_id)?;
    // No shareable handle types on the emulated GPU (CU_DEVICE_ATTRIBUTE_MEMPOOL_SUPPORTED_HANDLE_TYPES = 0).
    let r = if p.handleTypes != 0 {
        Err(CUDA_ERROR_NOT_SUPPORTED)
    } else {
        let mut st = state();
        let h = st.handle();
        st.pools.insert(h, Pool::new(p.maxSize as u64));
        drop(st);
        put(pool, h as CUmemoryPool).map(|_| h)
    };
    let (status, h) = match r {
        Ok(h) => (0, h),
        Err(e) => (e, 0),
    };
    trace("cuMemPoolCreate", status, &[("handleTypes", p.handleTypes.into()), ("maxSize", p.maxSize.into()), ("pool", hex(h))], None);
    r.map(|_| ())
}}

cuda_fn! { fn cuMemPoolDestroy(pool: CUmemoryPool) {
    need_init()?;
    let mut st = state();
    let h = pool as u64;
    let is_default = st.default_pool == Some(h);
    let r = match st.pools.get_mut(&h) {
        Some(_) if is_default => Err(CUDA_ERROR_INVALID_VALUE),
        Some(p) if !p.destroyed => {
            // Allocations still out stay valid; the pool goes when they are freed.
            p.destroyed = true;
            Ok(())
        }
        _ => Err(CUDA_ERROR_INVALID_VALUE),
    };
    drop(st);
    trace("cuMemPoolDestroy", r.err().unwrap_or(0), &[("pool", hex(h))], None);
    r
}}

fn live_pool(st: &mut State, pool: CUmemoryPool) -> R<&mut Pool> {
    st.pools
        .get_mut(&(pool as u64))
        .filter(|p| !p.destroyed)
        .ok_or(CUDA_ERROR_INVALID_VALUE)
}

cuda_fn! { fn cuMemPoolSetAttribute(pool: CUmemoryPool, attr: c_int, value: *mut c_void) {
    need_init()?;
    let mut st = state();
    let p = live_pool(&mut st, pool)?;
    match attr {
        1..=3 => p.reuse[attr as usize - 1] = get(value as *const c_int)?,
        4 => p.release_threshold = get(value as *const u64)?,
        // The high-water marks can only be reset (to the current value) with 0.
        6 | 8 => {
            if get(value as *const u64)? != 0 {
                return Err(CUDA_ERROR_INVALID_VALUE);
            }
            if attr == 6 {
                p.reserved_high = p.used;
            } else {
                p.used_high = p.used;
            }
        }
        _ => return Err(CUDA_ERROR_INVALID_VALUE),
    }
    Ok(())
}}

cuda_fn! { fn cuMemPoolGetAttribute(pool: CUmemoryPool, attr: c_int, value: *mut c_void) {
    need_init()?;
    let mut st = state();
    let p = live_pool(&mut st, pool)?;
    match attr {
        1..=3 => put(value as *mut c_int, p.reuse[attr as usize - 1]),
        4 => put(value as *mut u64, p.release_threshold),
        // Freed memory is not cached: reserved = used.
        5 | 7 => put(value as *mut u64, p.used),
        6 => put(value as *mut u64, p.reserved_high),
        8 => put(value as *mut u64, p.used_high),
        _ => Err(CUDA_ERROR_INVALID_VALUE),
    }
}}

fn alloc_async(
    call: &'static str,
    dptr: *mut CUdeviceptr,
    size: usize,
    pool: Option<CUmemoryPool>,
    stream: CUstream,
) -> R {
    let mut st = state();
    let ctx = current_ctx(&st)?;
    check_stream(&st, stream)?;
    if dptr.is_null() || size == 0 {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    let ph = match pool {
        Some(p) => {
            live_pool(&mut st, p)?;
            p as u64
        }
        None => default_pool(&mut st),
    };
    let p = &st.pools[&ph];
    if (p.max_size != 0 && p.used + size as u64 > p.max_size)
        || st.device_bytes.saturating_add(size) > model().total_mem
    {
        drop(st);
        trace(
            call,
            CUDA_ERROR_OUT_OF_MEMORY,
            &[("bytesize", size.into()), ("pool", hex(ph))],
            None,
        );
        return Err(CUDA_ERROR_OUT_OF_MEMORY);
    }
    let addr = alloc_memory(size)?;
    st.allocs.insert(
        addr,
        Alloc {
            size,
            kind: MemKind::Device,
            ctx,
            pool: Some(ph),
        },
    );
    st.device_bytes += size;
    if let Some(p) = st.pools.get_mut(&ph) {
        p.used += size as u64;
        p.used_high = p.used_high.max(p.used);
        p.reserved_high = p.reserved_high.max(p.used);
    }
    // Valid in stream order: pending until the host synchronises with the stream.
    issue(&mut st, ctx, stream, call, Some((addr, size)), None);
    drop(st);
    trace(
        call,
        0,
        &[
            ("bytesize", size.into()),
            ("pool", hex(ph)),
            ("hStream", hex(stream as u64)),
            ("dptr", hex(addr)),
        ],
        None,
    );
    put(dptr, addr)
}

cuda_fn! { fn cuMemAllocAsync(dptr: *mut CUdeviceptr, bytesize: usize, stream: CUstream) {
    alloc_async("cuMemAllocAsync", dptr, bytesize, None, stream)
}}

cuda_fn! { fn cuMemAllocFromPoolAsync(dptr: *mut CUdeviceptr, bytesize: usize, pool: CUmemoryPool, stream: CUstream) {
    alloc_async("cuMemAllocFromPoolAsync", dptr, bytesize, Some(pool), stream)
}}

cuda_fn! { fn cuMemFreeAsync(dptr: CUdeviceptr, stream: CUstream) {
    let mut st = state();
    let ctx = current_ctx(&st)?;
    check_stream(&st, stream)?;
    // Strict: only stream-ordered allocations (what the driver documents this call for).
    let r = match st.allocs.get(&dptr) {
        Some(a) if a.pool.is_some() => {
            let a = st.allocs.remove(&dptr).ok_or(CUDA_ERROR_INVALID_VALUE)?;
            issue(&mut st, ctx, stream, "cuMemFreeAsync", None, Some((dptr, a)));
            Ok(())
        }
        _ => Err(CUDA_ERROR_INVALID_VALUE),
    };
    drop(st);
    trace("cuMemFreeAsync", r.err().unwrap_or(0), &[("dptr", hex(dptr)), ("hStream", hex(stream as u64))], None);
    r
}}

/// `cuPointerGetAttribute(CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE)`: the pool, or NULL.
pub(crate) fn mempool_attribute(
    st: &State,
    data: *mut c_void,
    attribute: c_int,
    ptr: u64,
) -> Option<R> {
    (attribute == CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE).then(|| {
        put(
            data as *mut CUmemoryPool,
            pool_of(st, ptr).unwrap_or(0) as CUmemoryPool,
        )
    })
}

// --- for the NVENC stand-in ------------------------------------------------------------------

/// Whether this thread is inside `nvemu_cuda_engine_scope(1)` (the emulated NVENC engine
/// reading device memory).
pub fn in_engine_scope() -> bool {
    ENGINE.with(Cell::get)
}

/// Marks the calling thread as the NVENC engine (`on != 0`) or not: the engine's own reads of
/// an input neither add pending work nor complete any. Never fails.
#[unsafe(no_mangle)]
pub extern "C" fn nvemu_cuda_engine_scope(on: c_int) {
    let _ = catch_unwind(|| ENGINE.with(|e| e.set(on != 0)));
}

/// `nvEncMapInputResource`'s documented guarantee (nvEncodeAPI.h, NvEncMapInputResource: "any
/// graphics work submitted on the input buffer is completed before the buffer is used for
/// encoding. This is also true for compute (i.e. CUDA) work, provided that the previous
/// workload using the input resource was submitted to the default stream"): pending writes
/// into `[addr, addr + len)` on the legacy default stream (of any context) complete, with
/// everything they were ordered after; returns how many operations completed. Work on other
/// streams stays pending, the per-thread default stream's included (whether "the default
/// stream" covers it is not documented: strict). Never fails (0 on bad arguments).
#[unsafe(no_mangle)]
pub extern "C" fn nvemu_cuda_map_fence(addr: CUdeviceptr, len: usize) -> c_int {
    catch_unwind(|| {
        let mut st = state();
        let end = addr.saturating_add(len as u64);
        let ids: Vec<u64> = st
            .ops
            .iter()
            .filter(|(_, op)| {
                op.stream == LEGACY
                    && op
                        .range
                        .is_some_and(|(a, l)| a < end && a.saturating_add(l as u64) > addr)
            })
            .map(|(id, _)| *id)
            .collect();
        c_int::try_from(complete(&mut st, ids)).unwrap_or(c_int::MAX)
    })
    .unwrap_or(0)
}

/// Whether a pending write into `[addr, addr + len)` is *not* ordered before a read by work
/// on `reader` (a stream handle; NULL = the legacy stream of `ctx`): 1 and a description
/// (NUL-terminated, cut to `cap` bytes) in `out`, or 0. The reader does not get the legacy
/// stream's implicit synchronisation with blocking streams unless it goes through pending
/// legacy work. Never fails (0 on bad arguments).
#[unsafe(no_mangle)]
pub extern "C" fn nvemu_cuda_pending_write(
    ctx: CUcontext,
    addr: CUdeviceptr,
    len: usize,
    reader: CUstream,
    out: *mut c_char,
    cap: usize,
) -> c_int {
    catch_unwind(|| {
        let st = state();
        let (ctx, r) = (ctx as u64, key(reader));
        // What the reader is ordered after: its stream's last operation and waits, and all
        // they are ordered after.
        let mut seen = HashSet::new();
        let mut todo: Vec<u64> = last_of(&st, ctx, r).into_iter().collect();
        if r == LEGACY || r == PER_THREAD {
            if let Some(l) = st.lanes.get(&(ctx, r)) {
                todo.extend(&l.waits);
            }
        } else if let Some(s) = st.streams.get(&r) {
            todo.extend(&s.lane.waits);
        }
        while let Some(id) = todo.pop() {
            if seen.insert(id)
                && let Some(op) = st.ops.get(&id)
            {
                todo.extend(&op.deps);
            }
        }
        let end = addr.saturating_add(len as u64);
        let hit = st.ops.iter().find(|(id, op)| {
            !seen.contains(id)
                && op
                    .range
                    .is_some_and(|(a, l)| a < end && a.saturating_add(l as u64) > addr)
        });
        let Some((_, op)) = hit else { return 0 };
        let stream = if op.stream == LEGACY {
            "the legacy default stream".to_owned()
        } else {
            format!("stream {:#x}", op.stream)
        };
        let msg = format!("{} on {stream} (ctx {:#x})", op.call, op.ctx);
        if !out.is_null() && cap > 0 {
            let n = msg.len().min(cap - 1);
            for (i, b) in msg.as_bytes()[..n].iter().enumerate() {
                let _ = put(out.wrapping_add(i), *b as c_char);
            }
            let _ = put(out.wrapping_add(n), 0);
        }
        1
    })
    .unwrap_or(0)
}
