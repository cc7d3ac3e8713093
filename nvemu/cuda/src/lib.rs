//! Stand-in for the CUDA driver API (`libcuda.so.1`) where the "device" is host memory.
//!
//! Device pointers are host addresses (unified addressing), so a client can read device memory
//! directly and every copy is a `memmove`, done before the call returns. What the host of a
//! real GPU would not know yet (work pending on streams) is modelled in `src/ordering.rs`.
//!
//! What it models:
//! - `cuInit` first (else `CUDA_ERROR_NOT_INITIALIZED`), `NVEMU_GPU_COUNT` devices (default 1,
//!   at most 8) whose name, compute capability and memory size follow their model
//!   (`NVEMU_GPU_MODELS`, one per device, else `NVEMU_GPU`; `nvemu/common/gpus.rs`;
//!   `NVEMU_GPU_NAME` overrides the name). Distinct devices can reach each other's memory
//!   (peer access, as over NVLink) unless `NVEMU_PEER_ACCESS=0`; see `src/peer.rs`.
//! - Contexts bound to the device, a per-thread context stack, primary contexts with a retain
//!   count; calls that need a current context fail with `CUDA_ERROR_INVALID_CONTEXT` without
//!   one (`CUDA_ERROR_CONTEXT_IS_DESTROYED` if the current one was destroyed).
//! - Allocation tracking: device, page-locked host and registered host memory; freeing an
//!   unknown pointer gives `CUDA_ERROR_INVALID_VALUE`; copies check that device ranges lie
//!   inside one allocation. `cuMemAllocPitch` pitches are multiples of 512 bytes, as real
//!   recent GPUs return (e.g. 1920 -> 2048).
//! - Copies are counted by kind (HtoD, DtoH, DtoD, HtoH) with bytes
//!   (`nvemu_cuda_copy_counts`, `nvemu_cuda_copy_bytes`) and traced to `NVEMU_TRACE`.
//!
//! - What GStreamer's `libgstcuda` loader also requires (peer access, OpenGL interop, modules
//!   and kernel launches, texture objects) is in `src/interop.rs`: exported, strict, and failing
//!   with documented codes where the emulated GPU cannot do it (no GL, no device code).
//!
//! Functions it does not implement are not exported, so `dlsym` fails cleanly. Handles
//! (`CUcontext`, `CUstream`, `CUevent`) are opaque numbers that are never dereferenced.
#![allow(non_snake_case)]

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::ffi::{CStr, c_char, c_int, c_uint, c_void};
use std::fmt::Write as _;
use std::io::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Instant;

// The types, error codes, flags and struct layouts of cuda.h, shared with the plugin.
pub use cuda_abi::*;

/// Driver API version reported by `cuDriverGetVersion` (CUDA 12.8).
pub const DRIVER_VERSION: c_int = 12080;
/// Alignment of every allocation and of `cuMemAllocPitch` pitches.
pub const ALIGN: usize = 512;

// ---------------------------------------------------------------------------------------------
// Device model

struct Model {
    name: String,
    cc: (c_int, c_int),
    total_mem: usize,
    sms: c_int,
    uuid: [u8; 16],
}

/// The models of the devices (`gpus`: `NVEMU_GPU_MODELS`, else `NVEMU_GPU`), read once.
fn models() -> &'static [Model] {
    static M: OnceLock<Vec<Model>> = OnceLock::new();
    M.get_or_init(|| {
        (0..device_count().max(1) as usize)
            .map(|i| {
                let g = gpus::model_of(i);
                let name = std::env::var("NVEMU_GPU_NAME")
                    .ok()
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| g.name.to_owned());
                Model {
                    name,
                    cc: g.cc,
                    total_mem: g.mem_gib << 30,
                    sms: g.sms,
                    uuid: gpus::uuid_bytes(i),
                }
            })
            .collect()
    })
}

/// The model of device `dev` (a checked ordinal).
fn model_of(dev: CUdevice) -> &'static Model {
    let m = models();
    &m[(dev.max(0) as usize).min(m.len() - 1)]
}

/// Device 0's model: its memory size bounds the device memory of all devices together (one
/// count of device bytes for the process).
fn model() -> &'static Model {
    model_of(0)
}

fn device_attribute(dev: CUdevice, attr: c_int) -> Option<c_int> {
    let m = model_of(dev);
    let ada = m.cc == (8, 9);
    Some(match attr {
        1 => 1024,         // MAX_THREADS_PER_BLOCK
        2 | 3 => 1024,     // MAX_BLOCK_DIM_X/Y
        4 => 64,           // MAX_BLOCK_DIM_Z
        5 => i32::MAX,     // MAX_GRID_DIM_X
        6 | 7 => 65535,    // MAX_GRID_DIM_Y/Z
        8 => 49152,        // MAX_SHARED_MEMORY_PER_BLOCK
        9 => 65536,        // TOTAL_CONSTANT_MEMORY
        10 => 32,          // WARP_SIZE
        11 => i32::MAX,    // MAX_PITCH
        12 => 65536,       // MAX_REGISTERS_PER_BLOCK
        13 => 2_520_000,   // CLOCK_RATE (kHz)
        14 => 512,         // TEXTURE_ALIGNMENT
        15 => 1,           // GPU_OVERLAP
        16 => m.sms,       // MULTIPROCESSOR_COUNT
        17 | 18 => 0,      // KERNEL_EXEC_TIMEOUT, INTEGRATED
        19 => 1,           // CAN_MAP_HOST_MEMORY
        20 => 0,           // COMPUTE_MODE default
        21 | 22 => 131072, // TEXTURE1D/2D width
        23 => 65536,       // TEXTURE2D height
        24..=26 => 16384,  // TEXTURE3D
        27 | 28 => 32768,  // TEXTURE2D_LAYERED w/h
        29 => 2048,        // TEXTURE2D_LAYERED layers
        30 => 512,         // SURFACE_ALIGNMENT
        31 => 1,           // CONCURRENT_KERNELS
        32 => 0,           // ECC_ENABLED
        33 => 1,           // PCI_BUS_ID
        34 => 0,           // PCI_DEVICE_ID
        35 => 0,           // TCC_DRIVER
        36 => 10_501_000,  // MEMORY_CLOCK_RATE
        37 => 384,         // GLOBAL_MEMORY_BUS_WIDTH
        38 => {
            if ada {
                75_497_472
            } else {
                4_194_304
            }
        } // L2_CACHE_SIZE
        39 => 1536,        // MAX_THREADS_PER_MULTIPROCESSOR
        40 => 2,           // ASYNC_ENGINE_COUNT
        41 => 1,           // UNIFIED_ADDRESSING
        42 => 32768,       // TEXTURE1D_LAYERED width
        43 => 2048,        // TEXTURE1D_LAYERED layers
        44 => 1,           // CAN_TEX2D_GATHER
        45 | 46 => 32768,  // TEXTURE2D_GATHER
        47 | 48 => 8192,   // TEXTURE3D alternate
        49 => 32768,       // TEXTURE3D depth alternate
        50 => 0,           // PCI_DOMAIN_ID
        51 => 32,          // TEXTURE_PITCH_ALIGNMENT
        52 | 53 => 32768,  // TEXTURECUBEMAP
        54 => 2046,        // TEXTURECUBEMAP_LAYERED layers
        55 | 56 => 32768,  // SURFACE1D/2D width
        57 => 65536,       // SURFACE2D height
        58..=60 => 16384,  // SURFACE3D
        61 => 32768,       // SURFACE1D_LAYERED width
        62 => 2048,        // SURFACE1D_LAYERED layers
        63 | 64 => 32768,  // SURFACE2D_LAYERED
        65 => 2048,        // SURFACE2D_LAYERED layers
        66 | 67 => 32768,  // SURFACECUBEMAP
        68 => 2046,        // SURFACECUBEMAP_LAYERED layers
        69 => 268_435_456, // TEXTURE1D_LINEAR width
        70 => 131072,      // TEXTURE2D_LINEAR width
        71 => 65000,       // TEXTURE2D_LINEAR height
        72 => 2_097_120,   // TEXTURE2D_LINEAR pitch
        73 => 32768,       // TEXTURE2D_MIPMAPPED width
        74 => 32768,       // TEXTURE2D_MIPMAPPED height
        75 => m.cc.0,      // COMPUTE_CAPABILITY_MAJOR
        76 => m.cc.1,      // COMPUTE_CAPABILITY_MINOR
        77 => 32768,       // TEXTURE1D_MIPMAPPED width
        78..=80 => 1,      // STREAM_PRIORITIES, L1 caches
        81 => 102_400,     // MAX_SHARED_MEMORY_PER_MULTIPROCESSOR
        82 => 65536,       // MAX_REGISTERS_PER_MULTIPROCESSOR
        83 => 1,           // MANAGED_MEMORY
        84 | 85 => 0,      // MULTI_GPU_BOARD(_GROUP_ID)
        86 => 0,           // HOST_NATIVE_ATOMIC_SUPPORTED
        87 => 64,          // SINGLE_TO_DOUBLE_PRECISION_PERF_RATIO
        88 => 0,           // PAGEABLE_MEMORY_ACCESS
        89 | 90 => 1,      // CONCURRENT_MANAGED_ACCESS, PREEMPTION
        91 => 1,           // CAN_USE_HOST_POINTER_FOR_REGISTERED_MEM
        92..=94 => 0,      // stream mem ops
        95 => 1,           // COOPERATIVE_LAUNCH
        96 => 0,           // COOPERATIVE_MULTI_DEVICE_LAUNCH
        97 => 101_376,     // MAX_SHARED_MEMORY_PER_BLOCK_OPTIN
        98 => 0,           // CAN_FLUSH_REMOTE_WRITES
        99 => 1,           // HOST_REGISTER_SUPPORTED
        100 | 101 => 0,    // pageable / managed host access
        102 => 1,          // VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED
        103 => 1,          // HANDLE_TYPE_POSIX_FILE_DESCRIPTOR
        104 | 105 => 0,    // Win32 handles
        106 => {
            if ada {
                24
            } else {
                16
            }
        } // MAX_BLOCKS_PER_MULTIPROCESSOR
        107 => 0,          // GENERIC_COMPRESSION_SUPPORTED
        108 => 0,          // MAX_PERSISTING_L2_CACHE_SIZE
        109 => 0,          // MAX_ACCESS_POLICY_WINDOW_SIZE
        110 => 0,          // GPU_DIRECT_RDMA_WITH_CUDA_VMM
        111 => 1024,       // RESERVED_SHARED_MEMORY_PER_BLOCK
        112 | 113 => 0,    // sparse arrays, read-only register
        114 => 0,          // TIMELINE_SEMAPHORE_INTEROP
        115 => 1,          // MEMORY_POOLS_SUPPORTED (src/ordering.rs)
        116..=140 => 0,    // newer attributes: not supported
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------------
// State

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MemKind {
    Device,
    /// cuMemAllocHost / cuMemHostAlloc: page-locked host memory, device-mapped (UVA).
    Host,
    /// cuMemHostRegister'ed client memory (not owned).
    Registered,
}

struct Alloc {
    size: usize,
    kind: MemKind,
    ctx: u64,
    /// The memory pool of a stream-ordered allocation (`cuMemAllocAsync`,
    /// `cuMemAllocFromPoolAsync`).
    pool: Option<u64>,
}

struct Ctx {
    flags: c_uint,
    primary: bool,
    dev: CUdevice,
    /// `cuCtxSetLimit` values (`CUlimit` 0..=6), from the driver's defaults.
    limits: [usize; 7],
}

/// A device's primary context: created by the first retain, kept as a handle afterwards.
#[derive(Default)]
struct Primary {
    ctx: Option<u64>,
    refs: u32,
    flags: c_uint,
}

struct Stream {
    ctx: u64,
    flags: c_uint,
    priority: c_int,
    lane: ordering::Lane,
}

struct Event {
    ctx: u64,
    flags: c_uint,
    recorded: Option<Instant>,
    /// The marker operation of the last `cuEventRecord` (see `ordering.rs`).
    marker: Option<u64>,
}

#[derive(Default)]
struct State {
    next_handle: u64,
    ctxs: HashMap<u64, Ctx>,
    primaries: HashMap<CUdevice, Primary>,
    /// Peer access enabled: (context, peer context), by cuCtxEnablePeerAccess from `context`.
    peers: std::collections::HashSet<(u64, u64)>,
    allocs: BTreeMap<u64, Alloc>,
    device_bytes: usize,
    streams: HashMap<u64, Stream>,
    events: HashMap<u64, Event>,
    /// Texture objects (`CUtexObject` -> owning context).
    textures: HashMap<u64, u64>,
    /// Stream work not yet known to the host to be complete (`ordering.rs`).
    ops: BTreeMap<u64, ordering::Op>,
    next_op: u64,
    /// The legacy (NULL) and per-thread default streams of each context: (context, 0 or 2).
    lanes: HashMap<(u64, u64), ordering::Lane>,
    /// Memory pools (`cuMemPoolCreate`, and the device's default pool once used).
    pools: HashMap<u64, ordering::Pool>,
    default_pool: Option<u64>,
}

impl State {
    fn handle(&mut self) -> u64 {
        // Opaque, never dereferenced, never reused; well away from real heap addresses.
        self.next_handle += 1;
        0x7e57_0000_0000 + self.next_handle * 0x40
    }

    /// The allocation containing `[addr, addr + len)`, if any.
    fn find(&self, addr: u64, len: usize) -> Option<(u64, &Alloc)> {
        let (&base, a) = self.allocs.range(..=addr).next_back()?;
        let end = base.checked_add(a.size as u64)?;
        let last = addr.checked_add(len as u64)?;
        (last <= end).then_some((base, a))
    }
}

static INITIALIZED: AtomicBool = AtomicBool::new(false);

fn state() -> MutexGuard<'static, State> {
    static S: OnceLock<Mutex<State>> = OnceLock::new();
    S.get_or_init(|| Mutex::new(State::default()))
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

thread_local! {
    static STACK: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

fn stack_top() -> Option<u64> {
    STACK.with(|s| s.borrow().last().copied())
}

type R<T = ()> = Result<T, CUresult>;

fn need_init() -> R {
    if INITIALIZED.load(Ordering::Acquire) {
        Ok(())
    } else {
        Err(CUDA_ERROR_NOT_INITIALIZED)
    }
}

/// The current context (checked to be alive).
fn current_ctx(st: &State) -> R<u64> {
    need_init()?;
    let c = stack_top().ok_or(CUDA_ERROR_INVALID_CONTEXT)?;
    if st.ctxs.contains_key(&c) {
        Ok(c)
    } else {
        Err(CUDA_ERROR_CONTEXT_IS_DESTROYED)
    }
}

/// How many devices there are (`gpus::gpu_count`: `NVEMU_GPU_COUNT`, 1..=8, else as many as
/// `NVEMU_GPU_MODELS` names, else 1), read once.
pub fn device_count() -> c_int {
    static N: OnceLock<c_int> = OnceLock::new();
    *N.get_or_init(|| gpus::gpu_count() as c_int)
}

fn check_device(dev: CUdevice) -> R {
    need_init()?;
    if (0..device_count()).contains(&dev) {
        Ok(())
    } else {
        Err(CUDA_ERROR_INVALID_DEVICE)
    }
}

fn check_stream(st: &State, s: CUstream) -> R {
    let h = s as u64;
    // 0 = NULL stream, 1 = CU_STREAM_LEGACY, 2 = CU_STREAM_PER_THREAD
    if h <= 2 || st.streams.contains_key(&h) {
        Ok(())
    } else {
        Err(CUDA_ERROR_INVALID_HANDLE)
    }
}

// ---------------------------------------------------------------------------------------------
// Pointer helpers: the only places that read or write through client pointers.

/// Writes `v` through an out-parameter.
fn put<T>(p: *mut T, v: T) -> R {
    if p.is_null() {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    // SAFETY: the CUDA API contract makes `p` a valid, aligned, writable pointer to a `T`
    // owned by the caller; NULL was rejected above.
    unsafe { p.write(v) };
    Ok(())
}

/// Reads an in-parameter struct.
fn get<T: Copy>(p: *const T) -> R<T> {
    if p.is_null() {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    // SAFETY: the CUDA API contract makes `p` a valid, aligned, readable pointer to a `T`;
    // NULL was rejected above. read_unaligned tolerates odd client alignment.
    Ok(unsafe { p.read_unaligned() })
}

/// Copies a `rows` x `width` rectangle (memmove per row).
fn copy_rect(dst: u64, dpitch: usize, src: u64, spitch: usize, width: usize, rows: usize) {
    if width == 0 || rows == 0 {
        return;
    }
    if dpitch == width && spitch == width {
        // SAFETY: both ranges were checked by the caller: device ranges against a live
        // allocation, host ranges are the caller's responsibility per the CUDA contract
        // (non-NULL checked). `copy` is memmove, so overlap is fine.
        unsafe { std::ptr::copy(src as *const u8, dst as *mut u8, width * rows) };
        return;
    }
    for r in 0..rows {
        // SAFETY: as above, row r lies inside the checked rectangle.
        unsafe {
            std::ptr::copy(
                (src as usize + r * spitch) as *const u8,
                (dst as usize + r * dpitch) as *mut u8,
                width,
            )
        };
    }
}

// ---------------------------------------------------------------------------------------------
// Copy accounting and tracing

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyKind {
    HtoD = 0,
    DtoH = 1,
    DtoD = 2,
    HtoH = 3,
}

impl CopyKind {
    fn name(self) -> &'static str {
        match self {
            CopyKind::HtoD => "HtoD",
            CopyKind::DtoH => "DtoH",
            CopyKind::DtoD => "DtoD",
            CopyKind::HtoH => "HtoH",
        }
    }
}

static COPY_COUNTS: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
static COPY_BYTES: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];

/// CPU time spent in copies between device memory and page-locked host memory (cuMemAllocHost,
/// cuMemHostAlloc, cuMemHostRegister): on a real GPU a copy engine moves those bytes by DMA
/// while the host CPU does nothing, so this time is modelled hardware work, not host work
/// (`nvemu_cuda_dma_cpu_ns`, and `NVEMU_STATS` at exit). Pageable host memory is copied by the
/// driver's CPU on a real system too, so it is not counted here but in [`COPY_CPU_NS`].
static DMA_CPU_NS: AtomicU64 = AtomicU64::new(0);

/// With `NVEMU_STATS` (`cpustats::enabled`): CPU time of the other copies, by class: pageable
/// host to device, device to pageable host, device to device (a copy engine on real hardware),
/// host to host, and reads by the emulated NVENC engine (`nvemu_cuda_engine_scope`: the
/// engine's DMA on real hardware).
static COPY_CPU_NS: [AtomicU64; 5] = [const { AtomicU64::new(0) }; 5];
const COPY_PAGEABLE_HTOD: usize = 0;
const COPY_PAGEABLE_DTOH: usize = 1;
const COPY_DTOD: usize = 2;
const COPY_HTOH: usize = 3;
const COPY_ENGINE: usize = 4;

fn thread_cpu_ns() -> u64 {
    cpustats::clock_ns(cpustats::THREAD_CPU)
}

/// Runs the byte moving of one copy of `kind`; its CPU time is counted by class: with a
/// page-locked host side as DMA (see [`DMA_CPU_NS`]), else in [`COPY_CPU_NS`].
fn do_copy(kind: CopyKind, pinned: bool, f: impl FnOnce()) {
    if pinned {
        let t0 = thread_cpu_ns();
        f();
        DMA_CPU_NS.fetch_add(thread_cpu_ns().saturating_sub(t0), Ordering::Relaxed);
        return;
    }
    let class = if ordering::in_engine_scope() {
        COPY_ENGINE
    } else {
        match kind {
            CopyKind::HtoD => COPY_PAGEABLE_HTOD,
            CopyKind::DtoH => COPY_PAGEABLE_DTOH,
            CopyKind::DtoD => COPY_DTOD,
            CopyKind::HtoH => COPY_HTOH,
        }
    };
    let ns = cpustats::timed(f);
    COPY_CPU_NS[class].fetch_add(ns, Ordering::Relaxed);
}

/// Whether the host side of a copy between host and device memory is page-locked memory the
/// driver knows (a DMA on real hardware).
fn pinned_host(st: &State, s: &Side, d: &Side) -> bool {
    let host = match (s.device, d.device) {
        (false, true) => s.addr,
        (true, false) => d.addr,
        _ => return false,
    };
    st.find(host, 1)
        .is_some_and(|(_, a)| a.kind != MemKind::Device)
}

/// CPU time (ns) spent so far moving bytes between device and page-locked host memory: what a
/// real GPU's copy engines do without the host CPU.
#[unsafe(no_mangle)]
pub extern "C" fn nvemu_cuda_dma_cpu_ns() -> u64 {
    DMA_CPU_NS.load(Ordering::Relaxed)
}

/// This thread's CPU time in the CUDA stand-in's entry points so far (ns; 0 without
/// `NVEMU_STATS`): the NVENC stand-in subtracts what its own entry points called of ours.
#[unsafe(no_mangle)]
pub extern "C" fn nvemu_cuda_thread_entry_cpu_ns() -> u64 {
    cpustats::thread_entry_ns()
}

/// The stand-in's counters now, in the order of [`STATS_KEYS`] (at most `n` of them written
/// into `out`); returns how many there are. For the NVENC stand-in's measuring window.
///
/// # Safety
/// `out` is NULL or points to `n` writable u64.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvemu_cuda_stats(out: *mut u64, n: usize) -> usize {
    let v = stats_now();
    if !out.is_null() {
        for (i, x) in v.iter().take(n).enumerate() {
            // SAFETY: the caller gives `n` writable u64 at `out`; i < n.
            unsafe { out.add(i).write(*x) };
        }
    }
    v.len()
}

use cpustats::CUDA_STATS_KEYS as STATS_KEYS;

fn stats_now() -> [u64; 9] {
    let calls = cpustats::CALLS.load(Ordering::Relaxed);
    let c = |i: usize| COPY_CPU_NS[i].load(Ordering::Relaxed);
    [
        calls,
        cpustats::CPU_NS.load(Ordering::Relaxed),
        cpustats::overhead_ns(calls),
        nvemu_cuda_dma_cpu_ns(),
        c(COPY_PAGEABLE_HTOD),
        c(COPY_PAGEABLE_DTOH),
        c(COPY_DTOD),
        c(COPY_HTOH),
        c(COPY_ENGINE),
    ]
}

extern "C" fn write_stats() {
    let mut text = String::new();
    for (k, v) in STATS_KEYS.iter().zip(stats_now()) {
        text.push_str(&format!("{k} {v}\n"));
    }
    cpustats::append_to_stats_file(&text);
}

fn count_copy(kind: CopyKind, bytes: usize) {
    COPY_COUNTS[kind as usize].fetch_add(1, Ordering::Relaxed);
    COPY_BYTES[kind as usize].fetch_add(bytes as u64, Ordering::Relaxed);
}

struct Tracer {
    file: Option<std::fs::File>,
    log: bool,
    seq: AtomicU64,
}

fn tracer() -> &'static Tracer {
    static T: OnceLock<Tracer> = OnceLock::new();
    T.get_or_init(|| {
        let file = std::env::var_os("NVEMU_TRACE")
            .filter(|p| !p.is_empty())
            .and_then(|p| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true) // O_APPEND: lines from several threads/libraries interleave whole
                    .open(p)
                    .ok()
            });
        Tracer {
            file,
            log: std::env::var("NVEMU_LOG").is_ok_and(|v| v == "1"),
            seq: AtomicU64::new(0),
        }
    })
}

/// JSON-ready trace argument values.
enum Val {
    U(u64),
    I(i64),
    S(String),
}

impl From<u64> for Val {
    fn from(v: u64) -> Self {
        Val::U(v)
    }
}
impl From<usize> for Val {
    fn from(v: usize) -> Self {
        Val::U(v as u64)
    }
}
impl From<c_uint> for Val {
    fn from(v: c_uint) -> Self {
        Val::U(v.into())
    }
}
impl From<c_int> for Val {
    fn from(v: c_int) -> Self {
        Val::I(v.into())
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Self {
        Val::S(v.to_owned())
    }
}

fn hex(v: u64) -> Val {
    Val::S(format!("0x{v:x}"))
}

fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn trace(call: &str, status: CUresult, args: &[(&str, Val)], copy: Option<(CopyKind, usize)>) {
    let t = tracer();
    if t.file.is_none() && !t.log {
        return;
    }
    let seq = t.seq.fetch_add(1, Ordering::Relaxed) + 1;
    let mut line = String::with_capacity(256);
    let _ = write!(line, "{{\"seq\": {seq}, \"lib\": \"cuda\", \"call\": ");
    json_str(&mut line, call);
    let _ = write!(
        line,
        ", \"status\": \"{}\", \"status_code\": {status}",
        error_name(status).unwrap_or("CUDA_ERROR_UNKNOWN")
    );
    if let Some((kind, bytes)) = copy {
        let _ = write!(line, ", \"kind\": \"{}\", \"bytes\": {bytes}", kind.name());
    }
    line.push_str(", \"args\": {");
    for (i, (k, v)) in args.iter().enumerate() {
        if i > 0 {
            line.push_str(", ");
        }
        json_str(&mut line, k);
        line.push_str(": ");
        match v {
            Val::U(u) => {
                let _ = write!(line, "{u}");
            }
            Val::I(n) => {
                let _ = write!(line, "{n}");
            }
            Val::S(s) => json_str(&mut line, s),
        }
    }
    line.push_str("}}\n");
    if t.log {
        eprint!("nvemu-cuda: {line}");
    }
    if let Some(mut f) = t.file.as_ref() {
        // One write(2) per line on an O_APPEND file: whole lines, even with several writers.
        let _ = f.write_all(line.as_bytes());
    }
}

/// Runs an export body: catches panics (never unwinds into C) and maps `R` to a CUresult.
fn guard(f: impl FnOnce() -> R) -> CUresult {
    let _acct = cpustats::Entry::enter(None);
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => CUDA_SUCCESS,
        Ok(Err(e)) => e,
        Err(_) => CUDA_ERROR_UNKNOWN,
    }
}

// ---------------------------------------------------------------------------------------------
// Error names

const ERRORS: &[(CUresult, &CStr, &CStr)] = &[
    (0, c"CUDA_SUCCESS", c"no error"),
    (1, c"CUDA_ERROR_INVALID_VALUE", c"invalid argument"),
    (2, c"CUDA_ERROR_OUT_OF_MEMORY", c"out of memory"),
    (3, c"CUDA_ERROR_NOT_INITIALIZED", c"initialization error"),
    (4, c"CUDA_ERROR_DEINITIALIZED", c"driver shutting down"),
    (
        34,
        c"CUDA_ERROR_STUB_LIBRARY",
        c"CUDA driver is a stub library",
    ),
    (
        100,
        c"CUDA_ERROR_NO_DEVICE",
        c"no CUDA-capable device is detected",
    ),
    (101, c"CUDA_ERROR_INVALID_DEVICE", c"invalid device ordinal"),
    (
        200,
        c"CUDA_ERROR_INVALID_IMAGE",
        c"device kernel image is invalid",
    ),
    (
        201,
        c"CUDA_ERROR_INVALID_CONTEXT",
        c"invalid device context",
    ),
    (
        202,
        c"CUDA_ERROR_CONTEXT_ALREADY_CURRENT",
        c"context already current",
    ),
    (
        205,
        c"CUDA_ERROR_MAP_FAILED",
        c"mapping of buffer object failed",
    ),
    (
        206,
        c"CUDA_ERROR_UNMAP_FAILED",
        c"unmapping of buffer object failed",
    ),
    (
        209,
        c"CUDA_ERROR_NO_BINARY_FOR_GPU",
        c"no kernel image is available for execution on the device",
    ),
    (
        215,
        c"CUDA_ERROR_UNSUPPORTED_LIMIT",
        c"limit is not supported on this architecture",
    ),
    (
        217,
        c"CUDA_ERROR_PEER_ACCESS_UNSUPPORTED",
        c"peer access is not supported between these two devices",
    ),
    (
        219,
        c"CUDA_ERROR_INVALID_GRAPHICS_CONTEXT",
        c"invalid OpenGL or DirectX context",
    ),
    (
        300,
        c"CUDA_ERROR_INVALID_SOURCE",
        c"device kernel image is invalid",
    ),
    (301, c"CUDA_ERROR_FILE_NOT_FOUND", c"file not found"),
    (
        400,
        c"CUDA_ERROR_INVALID_HANDLE",
        c"invalid resource handle",
    ),
    (
        401,
        c"CUDA_ERROR_ILLEGAL_STATE",
        c"the operation cannot be performed in the present state",
    ),
    (500, c"CUDA_ERROR_NOT_FOUND", c"named symbol not found"),
    (600, c"CUDA_ERROR_NOT_READY", c"device not ready"),
    (
        700,
        c"CUDA_ERROR_ILLEGAL_ADDRESS",
        c"an illegal memory access was encountered",
    ),
    (
        704,
        c"CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED",
        c"peer access is already enabled",
    ),
    (
        705,
        c"CUDA_ERROR_PEER_ACCESS_NOT_ENABLED",
        c"peer access has not been enabled",
    ),
    (
        708,
        c"CUDA_ERROR_PRIMARY_CONTEXT_ACTIVE",
        c"primary context active",
    ),
    (
        709,
        c"CUDA_ERROR_CONTEXT_IS_DESTROYED",
        c"context is destroyed",
    ),
    (
        712,
        c"CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED",
        c"part or all of the requested memory range is already mapped",
    ),
    (
        713,
        c"CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED",
        c"pointer does not correspond to a registered memory region",
    ),
    (801, c"CUDA_ERROR_NOT_SUPPORTED", c"operation not supported"),
    (999, c"CUDA_ERROR_UNKNOWN", c"unknown error"),
];

fn error_name(code: CUresult) -> Option<&'static str> {
    ERRORS
        .iter()
        .find(|e| e.0 == code)
        .and_then(|e| e.1.to_str().ok())
}

// ---------------------------------------------------------------------------------------------
// Exports. Each one: `guard` (no panic crosses FFI), then the checks the real driver makes.

macro_rules! cuda_fn {
    ($(#[$m:meta])* fn $name:ident($($a:ident : $t:ty),* $(,)?) $body:block) => {
        $(#[$m])*
        #[unsafe(no_mangle)]
        pub extern "C" fn $name($($a: $t),*) -> CUresult {
            guard(|| {
                if let Some(st) = injected_fault(stringify!($name)) {
                    return Err(st);
                }
                $body
            })
        }
    };
}

/// Same function under a second exported name (old and `_v2` names with one ABI).
macro_rules! alias {
    ($alias:ident => $target:ident($($a:ident : $t:ty),* $(,)?)) => {
        #[unsafe(no_mangle)]
        pub extern "C" fn $alias($($a: $t),*) -> CUresult {
            $target($($a),*)
        }
    };
}

cuda_fn! { fn cuInit(flags: c_uint) {
    if flags != 0 {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    if !INITIALIZED.swap(true, Ordering::AcqRel) && std::env::var_os("NVEMU_STATS").is_some() {
        unsafe extern "C" {
            fn atexit(f: extern "C" fn()) -> c_int;
        }
        // SAFETY: registers a plain function that only reads an atomic and writes a file.
        unsafe { atexit(write_stats) };
    }
    trace("cuInit", 0, &[("Flags", flags.into())], None);
    Ok(())
}}

cuda_fn! { fn cuDriverGetVersion(version: *mut c_int) { put(version, DRIVER_VERSION) } }

cuda_fn! { fn cuDeviceGetCount(count: *mut c_int) {
    need_init()?;
    put(count, device_count())
}}

cuda_fn! { fn cuDeviceGet(device: *mut CUdevice, ordinal: c_int) {
    check_device(ordinal)?;
    put(device, ordinal)
}}

cuda_fn! { fn cuDeviceGetName(name: *mut c_char, len: c_int, dev: CUdevice) {
    check_device(dev)?;
    if name.is_null() || len <= 0 {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    let bytes = model_of(dev).name.as_bytes();
    let n = bytes.len().min(len as usize - 1);
    for (i, &b) in bytes[..n].iter().enumerate() {
        put(name.wrapping_add(i), b as c_char)?;
    }
    put(name.wrapping_add(n), 0)
}}

cuda_fn! { fn cuDeviceTotalMem_v2(bytes: *mut usize, dev: CUdevice) {
    check_device(dev)?;
    put(bytes, model_of(dev).total_mem)
}}

cuda_fn! { fn cuDeviceGetAttribute(pi: *mut c_int, attrib: c_int, dev: CUdevice) {
    check_device(dev)?;
    put(pi, device_attribute(dev, attrib).ok_or(CUDA_ERROR_INVALID_VALUE)?)
}}

cuda_fn! { fn cuDeviceComputeCapability(major: *mut c_int, minor: *mut c_int, dev: CUdevice) {
    check_device(dev)?;
    put(major, model_of(dev).cc.0)?;
    put(minor, model_of(dev).cc.1)
}}

cuda_fn! { fn cuDeviceGetUuid(uuid: *mut [u8; 16], dev: CUdevice) {
    check_device(dev)?;
    put(uuid, model_of(dev).uuid)
}}
alias!(cuDeviceGetUuid_v2 => cuDeviceGetUuid(uuid: *mut [u8; 16], dev: CUdevice));

cuda_fn! { fn cuDeviceGetPCIBusId(bus_id: *mut c_char, len: c_int, dev: CUdevice) {
    check_device(dev)?;
    if bus_id.is_null() || len <= 0 {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    let s = format!("0000:{:02x}:00.0", dev + 1);
    let s = s.as_bytes();
    let n = s.len().min(len as usize - 1);
    for (i, &b) in s[..n].iter().enumerate() {
        put(bus_id.wrapping_add(i), b as c_char)?;
    }
    put(bus_id.wrapping_add(n), 0)
}}

// --- contexts ---------------------------------------------------------------------------------

fn new_ctx(st: &mut State, flags: c_uint, primary: bool, dev: CUdevice) -> u64 {
    let h = st.handle();
    st.ctxs.insert(
        h,
        Ctx {
            flags,
            primary,
            dev,
            limits: limits::DEFAULTS,
        },
    );
    h
}

cuda_fn! { fn cuCtxCreate_v2(pctx: *mut CUcontext, flags: c_uint, dev: CUdevice) {
    check_device(dev)?;
    if pctx.is_null() {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    let h = new_ctx(&mut state(), flags, false, dev);
    STACK.with(|s| s.borrow_mut().push(h));
    trace("cuCtxCreate_v2", 0, &[("flags", flags.into()), ("dev", dev.into()), ("ctx", hex(h))], None);
    put(pctx, h as CUcontext)
}}

fn free_ctx_resources(st: &mut State, ctx: u64) {
    // Its pending stream work ends with it (deferred frees are released here).
    ordering::complete_ctx(st, ctx);
    st.lanes.retain(|(c, _), _| *c != ctx);
    let dead: Vec<u64> = st
        .allocs
        .iter()
        .filter(|(_, a)| a.ctx == ctx && a.kind != MemKind::Registered)
        .map(|(&k, _)| k)
        .collect();
    for k in dead {
        if let Some(a) = st.allocs.remove(&k) {
            release_memory(st, k, &a);
        }
    }
    st.allocs.retain(|_, a| a.ctx != ctx);
    st.streams.retain(|_, s| s.ctx != ctx);
    st.events.retain(|_, e| e.ctx != ctx);
    st.textures.retain(|_, c| *c != ctx);
    st.peers.retain(|&(a, b)| a != ctx && b != ctx);
}

cuda_fn! { fn cuCtxDestroy_v2(ctx: CUcontext) {
    need_init()?;
    let h = ctx as u64;
    let mut st = state();
    let r = match st.ctxs.get(&h) {
        None => Err(CUDA_ERROR_INVALID_CONTEXT),
        Some(c) if c.primary => Err(CUDA_ERROR_INVALID_CONTEXT),
        Some(_) => {
            st.ctxs.remove(&h);
            free_ctx_resources(&mut st, h);
            // It stops being current on this thread (other threads see CONTEXT_IS_DESTROYED).
            STACK.with(|s| s.borrow_mut().retain(|&c| c != h));
            Ok(())
        }
    };
    drop(st);
    trace("cuCtxDestroy_v2", r.err().unwrap_or(0), &[("ctx", hex(h))], None);
    r
}}
alias!(cuCtxDestroy => cuCtxDestroy_v2(ctx: CUcontext));

cuda_fn! { fn cuCtxPushCurrent_v2(ctx: CUcontext) {
    need_init()?;
    let h = ctx as u64;
    let r = if state().ctxs.contains_key(&h) {
        STACK.with(|s| s.borrow_mut().push(h));
        Ok(())
    } else {
        Err(CUDA_ERROR_INVALID_CONTEXT)
    };
    trace("cuCtxPushCurrent_v2", r.err().unwrap_or(0), &[("ctx", hex(h))], None);
    r
}}
alias!(cuCtxPushCurrent => cuCtxPushCurrent_v2(ctx: CUcontext));

cuda_fn! { fn cuCtxPopCurrent_v2(pctx: *mut CUcontext) {
    need_init()?;
    let top = STACK.with(|s| s.borrow_mut().pop());
    let r = match top {
        None => Err(CUDA_ERROR_INVALID_CONTEXT),
        Some(h) => {
            if !pctx.is_null() {
                put(pctx, h as CUcontext)?;
            }
            Ok(())
        }
    };
    trace("cuCtxPopCurrent_v2", r.err().unwrap_or(0), &[("ctx", hex(top.unwrap_or(0)))], None);
    r
}}
alias!(cuCtxPopCurrent => cuCtxPopCurrent_v2(pctx: *mut CUcontext));

cuda_fn! { fn cuCtxGetCurrent(pctx: *mut CUcontext) {
    need_init()?;
    put(pctx, stack_top().unwrap_or(0) as CUcontext)
}}

cuda_fn! { fn cuCtxSetCurrent(ctx: CUcontext) {
    need_init()?;
    let h = ctx as u64;
    let r = if h == 0 {
        STACK.with(|s| s.borrow_mut().pop());
        Ok(())
    } else if state().ctxs.contains_key(&h) {
        STACK.with(|s| {
            let mut s = s.borrow_mut();
            match s.last_mut() {
                Some(top) => *top = h,
                None => s.push(h),
            }
        });
        Ok(())
    } else {
        Err(CUDA_ERROR_INVALID_CONTEXT)
    };
    trace("cuCtxSetCurrent", r.err().unwrap_or(0), &[("ctx", hex(h))], None);
    r
}}

cuda_fn! { fn cuCtxGetDevice(device: *mut CUdevice) {
    let st = state();
    let h = current_ctx(&st)?;
    put(device, st.ctxs[&h].dev)
}}

cuda_fn! { fn cuCtxGetApiVersion(ctx: CUcontext, version: *mut c_uint) {
    need_init()?;
    let st = state();
    let h = if ctx.is_null() { current_ctx(&st)? } else { ctx as u64 };
    if !st.ctxs.contains_key(&h) {
        return Err(CUDA_ERROR_INVALID_CONTEXT);
    }
    put(version, 3020)
}}

cuda_fn! { fn cuCtxGetFlags(flags: *mut c_uint) {
    let st = state();
    let h = current_ctx(&st)?;
    put(flags, st.ctxs[&h].flags)
}}

cuda_fn! { fn cuCtxSetFlags(flags: c_uint) {
    let mut st = state();
    let h = current_ctx(&st)?;
    if let Some(c) = st.ctxs.get_mut(&h) {
        c.flags = flags;
    }
    Ok(())
}}

cuda_fn! { fn cuCtxGetStreamPriorityRange(least: *mut c_int, greatest: *mut c_int) {
    current_ctx(&state())?;
    if !least.is_null() {
        put(least, 0)?;
    }
    if !greatest.is_null() {
        put(greatest, -5)?;
    }
    Ok(())
}}

// --- primary context --------------------------------------------------------------------------

cuda_fn! { fn cuDevicePrimaryCtxRetain(pctx: *mut CUcontext, dev: CUdevice) {
    check_device(dev)?;
    if pctx.is_null() {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    let mut st = state();
    let h = match st.primaries.get(&dev).and_then(|p| p.ctx) {
        Some(h) => h,
        None => {
            let flags = st.primaries.get(&dev).map_or(0, |p| p.flags);
            let h = new_ctx(&mut st, flags, true, dev);
            st.primaries.entry(dev).or_default().ctx = Some(h);
            h
        }
    };
    let p = st.primaries.entry(dev).or_default();
    p.refs += 1;
    let refs = p.refs;
    drop(st);
    trace("cuDevicePrimaryCtxRetain", 0, &[("dev", dev.into()), ("ctx", hex(h)), ("refs", refs.into())], None);
    put(pctx, h as CUcontext)
}}

cuda_fn! { fn cuDevicePrimaryCtxRelease_v2(dev: CUdevice) {
    check_device(dev)?;
    let mut st = state();
    let p = st.primaries.entry(dev).or_default();
    let r = if p.refs == 0 {
        Err(CUDA_ERROR_INVALID_CONTEXT)
    } else {
        p.refs -= 1;
        if p.refs == 0 {
            // The primary context stays a valid handle (it is re-activated by the next
            // retain, as with the real driver); its resources are released.
            if let Some(h) = p.ctx {
                free_ctx_resources(&mut st, h);
            }
        }
        Ok(())
    };
    let refs = st.primaries.get(&dev).map_or(0, |p| p.refs);
    drop(st);
    trace("cuDevicePrimaryCtxRelease_v2", r.err().unwrap_or(0), &[("dev", dev.into()), ("refs", refs.into())], None);
    r
}}
alias!(cuDevicePrimaryCtxRelease => cuDevicePrimaryCtxRelease_v2(dev: CUdevice));

cuda_fn! { fn cuDevicePrimaryCtxReset_v2(dev: CUdevice) {
    check_device(dev)?;
    let mut st = state();
    if let Some(h) = st.primaries.get(&dev).and_then(|p| p.ctx) {
        free_ctx_resources(&mut st, h);
    }
    let p = st.primaries.entry(dev).or_default();
    p.refs = 0;
    p.flags = 0;
    drop(st);
    trace("cuDevicePrimaryCtxReset_v2", 0, &[("dev", dev.into())], None);
    Ok(())
}}
alias!(cuDevicePrimaryCtxReset => cuDevicePrimaryCtxReset_v2(dev: CUdevice));

cuda_fn! { fn cuDevicePrimaryCtxSetFlags_v2(dev: CUdevice, flags: c_uint) {
    check_device(dev)?;
    let mut st = state();
    let p = st.primaries.entry(dev).or_default();
    p.flags = flags;
    if let Some(h) = p.ctx
        && let Some(c) = st.ctxs.get_mut(&h)
    {
        c.flags = flags;
    }
    Ok(())
}}
alias!(cuDevicePrimaryCtxSetFlags => cuDevicePrimaryCtxSetFlags_v2(dev: CUdevice, flags: c_uint));

cuda_fn! { fn cuDevicePrimaryCtxGetState(dev: CUdevice, flags: *mut c_uint, active: *mut c_int) {
    check_device(dev)?;
    let st = state();
    let (f, refs) = st.primaries.get(&dev).map_or((0, 0), |p| (p.flags, p.refs));
    put(flags, f)?;
    put(active, (refs > 0) as c_int)
}}

// --- memory -----------------------------------------------------------------------------------

fn alloc_memory(size: usize) -> R<u64> {
    let layout = std::alloc::Layout::from_size_align(size.max(1), ALIGN)
        .map_err(|_| CUDA_ERROR_OUT_OF_MEMORY)?;
    // SAFETY: layout has a non-zero size.
    let p = unsafe { std::alloc::alloc_zeroed(layout) };
    if p.is_null() {
        Err(CUDA_ERROR_OUT_OF_MEMORY)
    } else {
        Ok(p as u64)
    }
}

fn release_memory(st: &mut State, addr: u64, a: &Alloc) {
    if a.kind == MemKind::Registered {
        return;
    }
    if let Some(p) = a.pool {
        ordering::pool_released(st, p, a.size);
    }
    if a.kind == MemKind::Device {
        st.device_bytes = st.device_bytes.saturating_sub(a.size);
    }
    if let Ok(layout) = std::alloc::Layout::from_size_align(a.size.max(1), ALIGN) {
        // SAFETY: addr was returned by alloc_zeroed with this exact layout (same size and
        // ALIGN) and is removed from the table before this call, so it is freed once.
        unsafe { std::alloc::dealloc(addr as *mut u8, layout) };
    }
}

fn device_alloc(call: &str, size: usize) -> R<u64> {
    let mut st = state();
    let ctx = current_ctx(&st)?;
    if size == 0 {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    if st.device_bytes.saturating_add(size) > model().total_mem {
        return Err(CUDA_ERROR_OUT_OF_MEMORY);
    }
    let addr = alloc_memory(size)?;
    st.allocs.insert(
        addr,
        Alloc {
            size,
            kind: MemKind::Device,
            ctx,
            pool: None,
        },
    );
    st.device_bytes += size;
    drop(st);
    trace(
        call,
        0,
        &[("bytesize", size.into()), ("dptr", hex(addr))],
        None,
    );
    Ok(addr)
}

cuda_fn! { fn cuMemAlloc_v2(dptr: *mut CUdeviceptr, bytesize: usize) {
    if dptr.is_null() {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    let a = device_alloc("cuMemAlloc_v2", bytesize)?;
    put(dptr, a)
}}

cuda_fn! { fn cuMemAllocPitch_v2(
    dptr: *mut CUdeviceptr,
    pitch: *mut usize,
    width_bytes: usize,
    height: usize,
    element_size: c_uint,
) {
    if dptr.is_null() || pitch.is_null() || width_bytes == 0 || height == 0 {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    if !matches!(element_size, 4 | 8 | 16) {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    let p = width_bytes.checked_next_multiple_of(ALIGN).ok_or(CUDA_ERROR_INVALID_VALUE)?;
    let size = p.checked_mul(height).ok_or(CUDA_ERROR_OUT_OF_MEMORY)?;
    let a = device_alloc("cuMemAllocPitch_v2", size)?;
    put(dptr, a)?;
    put(pitch, p)
}}

cuda_fn! { fn cuMemFree_v2(dptr: CUdeviceptr) {
    let mut st = state();
    current_ctx(&st)?;
    let r = match st.allocs.get(&dptr) {
        Some(a) if a.kind == MemKind::Device => {
            let a = st.allocs.remove(&dptr).ok_or(CUDA_ERROR_INVALID_VALUE)?;
            release_memory(&mut st, dptr, &a);
            Ok(())
        }
        _ => Err(CUDA_ERROR_INVALID_VALUE),
    };
    drop(st);
    trace("cuMemFree_v2", r.err().unwrap_or(0), &[("dptr", hex(dptr))], None);
    r
}}

fn host_alloc(call: &str, pp: *mut *mut c_void, size: usize, flags: c_uint) -> R {
    if pp.is_null() || size == 0 {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    let mut st = state();
    let ctx = current_ctx(&st)?;
    let addr = alloc_memory(size)?;
    st.allocs.insert(
        addr,
        Alloc {
            size,
            kind: MemKind::Host,
            ctx,
            pool: None,
        },
    );
    drop(st);
    trace(
        call,
        0,
        &[
            ("bytesize", size.into()),
            ("Flags", flags.into()),
            ("p", hex(addr)),
        ],
        None,
    );
    put(pp, addr as *mut c_void)
}

cuda_fn! { fn cuMemAllocHost_v2(pp: *mut *mut c_void, bytesize: usize) {
    host_alloc("cuMemAllocHost_v2", pp, bytesize, 0)
}}

cuda_fn! { fn cuMemHostAlloc(pp: *mut *mut c_void, bytesize: usize, flags: c_uint) {
    if flags & !0x7 != 0 {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    host_alloc("cuMemHostAlloc", pp, bytesize, flags)
}}

cuda_fn! { fn cuMemFreeHost(p: *mut c_void) {
    let mut st = state();
    need_init()?;
    let addr = p as u64;
    let r = match st.allocs.get(&addr) {
        Some(a) if a.kind == MemKind::Host => {
            let a = st.allocs.remove(&addr).ok_or(CUDA_ERROR_INVALID_VALUE)?;
            release_memory(&mut st, addr, &a);
            Ok(())
        }
        _ => Err(CUDA_ERROR_INVALID_VALUE),
    };
    drop(st);
    trace("cuMemFreeHost", r.err().unwrap_or(0), &[("p", hex(addr))], None);
    r
}}

cuda_fn! { fn cuMemHostRegister_v2(p: *mut c_void, bytesize: usize, flags: c_uint) {
    let mut st = state();
    let ctx = current_ctx(&st)?;
    let addr = p as u64;
    if p.is_null() || bytesize == 0 {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    let end = addr.checked_add(bytesize as u64).ok_or(CUDA_ERROR_INVALID_VALUE)?;
    let overlaps = st
        .allocs
        .range(..end)
        .next_back()
        .is_some_and(|(&b, a)| b + a.size as u64 > addr);
    if overlaps {
        return Err(CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED);
    }
    st.allocs.insert(
        addr,
        Alloc {
            size: bytesize,
            kind: MemKind::Registered,
            ctx,
            pool: None,
        },
    );
    drop(st);
    trace("cuMemHostRegister_v2", 0, &[("p", hex(addr)), ("bytesize", bytesize.into()), ("Flags", flags.into())], None);
    Ok(())
}}
alias!(cuMemHostRegister => cuMemHostRegister_v2(p: *mut c_void, bytesize: usize, flags: c_uint));

cuda_fn! { fn cuMemHostUnregister(p: *mut c_void) {
    let mut st = state();
    current_ctx(&st)?;
    let addr = p as u64;
    match st.allocs.get(&addr) {
        Some(a) if a.kind == MemKind::Registered => {
            st.allocs.remove(&addr);
            Ok(())
        }
        _ => Err(CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED),
    }
}}

cuda_fn! { fn cuMemHostGetDevicePointer_v2(pdptr: *mut CUdeviceptr, p: *mut c_void, flags: c_uint) {
    let st = state();
    current_ctx(&st)?;
    if flags != 0 {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    match st.find(p as u64, 1) {
        Some((_, a)) if a.kind != MemKind::Device => put(pdptr, p as u64),
        _ => Err(CUDA_ERROR_INVALID_VALUE),
    }
}}

cuda_fn! { fn cuMemGetInfo_v2(free: *mut usize, total: *mut usize) {
    let st = state();
    current_ctx(&st)?;
    let total_b = model().total_mem;
    put(free, total_b.saturating_sub(st.device_bytes))?;
    put(total, total_b)
}}

cuda_fn! { fn cuMemGetAddressRange_v2(pbase: *mut CUdeviceptr, psize: *mut usize, dptr: CUdeviceptr) {
    let st = state();
    current_ctx(&st)?;
    let (base, a) = st.find(dptr, 1).ok_or(CUDA_ERROR_NOT_FOUND)?;
    if !pbase.is_null() {
        put(pbase, base)?;
    }
    if !psize.is_null() {
        put(psize, a.size)?;
    }
    Ok(())
}}

cuda_fn! { fn cuPointerGetAttribute(data: *mut c_void, attribute: c_int, ptr: CUdeviceptr) {
    need_init()?;
    let st = state();
    let (base, a) = st.find(ptr, 1).ok_or(CUDA_ERROR_INVALID_VALUE)?;
    if let Some(r) = ordering::mempool_attribute(&st, data, attribute, ptr) {
        return r;
    }
    match attribute {
        CU_POINTER_ATTRIBUTE_CONTEXT => put(data as *mut CUcontext, a.ctx as CUcontext),
        CU_POINTER_ATTRIBUTE_MEMORY_TYPE => put(
            data as *mut c_uint,
            if a.kind == MemKind::Device { CU_MEMORYTYPE_DEVICE } else { CU_MEMORYTYPE_HOST },
        ),
        CU_POINTER_ATTRIBUTE_DEVICE_POINTER => put(data as *mut CUdeviceptr, ptr),
        CU_POINTER_ATTRIBUTE_HOST_POINTER => {
            if a.kind == MemKind::Device {
                Err(CUDA_ERROR_INVALID_VALUE)
            } else {
                put(data as *mut *mut c_void, ptr as *mut c_void)
            }
        }
        CU_POINTER_ATTRIBUTE_IS_MANAGED => put(data as *mut c_uint, 0),
        CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL => put(data as *mut c_int, 0),
        CU_POINTER_ATTRIBUTE_RANGE_START_ADDR => put(data as *mut CUdeviceptr, base),
        CU_POINTER_ATTRIBUTE_RANGE_SIZE => put(data as *mut usize, a.size),
        CU_POINTER_ATTRIBUTE_MAPPED => put(data as *mut c_int, 1),
        _ => Err(CUDA_ERROR_INVALID_VALUE),
    }
}}

// --- copies -----------------------------------------------------------------------------------

/// Where one side of a copy is: resolved memory type and the rectangle's first byte.
struct Side {
    device: bool,
    addr: u64,
    /// The context owning the allocation, for device memory.
    ctx: Option<u64>,
}

/// Resolves and range-checks one side of a 2D copy.
#[allow(clippy::too_many_arguments)] // mirrors the CUDA_MEMCPY2D fields of one side
fn side(
    st: &State,
    mem_type: c_uint,
    host: u64,
    dev: u64,
    x: usize,
    y: usize,
    pitch: usize,
    width: usize,
    height: usize,
) -> R<Side> {
    let base = match mem_type {
        CU_MEMORYTYPE_HOST => host,
        CU_MEMORYTYPE_DEVICE | CU_MEMORYTYPE_UNIFIED => dev,
        CU_MEMORYTYPE_ARRAY => return Err(CUDA_ERROR_NOT_SUPPORTED),
        _ => return Err(CUDA_ERROR_INVALID_VALUE),
    };
    if base == 0 {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    if height > 1 && pitch < width {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    let off = y
        .checked_mul(pitch)
        .and_then(|o| o.checked_add(x))
        .ok_or(CUDA_ERROR_INVALID_VALUE)?;
    let addr = base
        .checked_add(off as u64)
        .ok_or(CUDA_ERROR_INVALID_VALUE)?;
    let span = if height == 0 || width == 0 {
        0
    } else {
        (height - 1)
            .checked_mul(pitch)
            .and_then(|s| s.checked_add(width))
            .ok_or(CUDA_ERROR_INVALID_VALUE)?
    };
    let (device, ctx) = match mem_type {
        // A device pointer must lie inside one tracked allocation (device memory, or host
        // memory that is mapped: cuMemHostAlloc / cuMemHostRegister, same address with UVA).
        CU_MEMORYTYPE_DEVICE => {
            let (_, a) = st.find(addr, span.max(1)).ok_or(CUDA_ERROR_INVALID_VALUE)?;
            (true, Some(a.ctx))
        }
        // Unified: whatever the address is.
        CU_MEMORYTYPE_UNIFIED => match st.find(addr, span.max(1)) {
            Some((_, a)) if a.kind == MemKind::Device => (true, Some(a.ctx)),
            _ => (false, None),
        },
        // Host memory: the caller vouches for it, as with the real driver.
        _ => (false, None),
    };
    Ok(Side { device, addr, ctx })
}

fn kind_of(src_dev: bool, dst_dev: bool) -> CopyKind {
    match (src_dev, dst_dev) {
        (false, true) => CopyKind::HtoD,
        (true, false) => CopyKind::DtoH,
        (true, true) => CopyKind::DtoD,
        (false, false) => CopyKind::HtoH,
    }
}

/// `sync`: the synchronous variant (legacy stream; host-synchronous when the destination is
/// host memory, see `ordering::record_write`).
fn memcpy2d(call: &'static str, p: *const CUDA_MEMCPY2D, stream: CUstream, sync: bool) -> R {
    let c = get(p)?;
    let mut st = state();
    let ctx = current_ctx(&st)?;
    check_stream(&st, stream)?;
    let res = (|| {
        let s = side(
            &st,
            c.srcMemoryType,
            c.srcHost as u64,
            c.srcDevice,
            c.srcXInBytes,
            c.srcY,
            c.srcPitch,
            c.WidthInBytes,
            c.Height,
        )?;
        let d = side(
            &st,
            c.dstMemoryType,
            c.dstHost as u64,
            c.dstDevice,
            c.dstXInBytes,
            c.dstY,
            c.dstPitch,
            c.WidthInBytes,
            c.Height,
        )?;
        Ok((s, d))
    })();
    let bytes = c.WidthInBytes.saturating_mul(c.Height);
    let mut args = vec![
        ("srcXInBytes", Val::from(c.srcXInBytes)),
        ("srcY", c.srcY.into()),
        ("srcMemoryType", c.srcMemoryType.into()),
        ("srcHost", hex(c.srcHost as u64)),
        ("srcDevice", hex(c.srcDevice)),
        ("srcPitch", c.srcPitch.into()),
        ("dstXInBytes", c.dstXInBytes.into()),
        ("dstY", c.dstY.into()),
        ("dstMemoryType", c.dstMemoryType.into()),
        ("dstHost", hex(c.dstHost as u64)),
        ("dstDevice", hex(c.dstDevice)),
        ("dstPitch", c.dstPitch.into()),
        ("WidthInBytes", c.WidthInBytes.into()),
        ("Height", c.Height.into()),
    ];
    if !stream.is_null() {
        args.push(("hStream", hex(stream as u64)));
    }
    match res {
        Ok((s, d)) => {
            if let (Some(a), Some(b)) = (s.ctx, d.ctx)
                && let Some(how) = peer::route(&st, a, b)
            {
                args.push(("peer", how.into()));
            }
            let kind = kind_of(s.device, d.device);
            let pinned = pinned_host(&st, &s, &d);
            if pinned {
                args.push(("host", "pinned".into()));
            }
            do_copy(kind, pinned, || {
                copy_rect(
                    d.addr,
                    c.dstPitch,
                    s.addr,
                    c.srcPitch,
                    c.WidthInBytes,
                    c.Height,
                )
            });
            let span = match c.Height {
                0 => 0,
                h => (h - 1) * c.dstPitch + c.WidthInBytes,
            };
            ordering::record_write(&mut st, ctx, stream, sync, call, d.addr, span, d.device);
            drop(st);
            count_copy(kind, bytes);
            trace(call, 0, &args, Some((kind, bytes)));
            Ok(())
        }
        Err(e) => {
            drop(st);
            trace(call, e, &args, None);
            Err(e)
        }
    }
}

cuda_fn! { fn cuMemcpy2D_v2(p: *const CUDA_MEMCPY2D) { memcpy2d("cuMemcpy2D_v2", p, NO_STREAM, true) } }
cuda_fn! { fn cuMemcpy2DUnaligned_v2(p: *const CUDA_MEMCPY2D) {
    memcpy2d("cuMemcpy2DUnaligned_v2", p, NO_STREAM, true)
}}
cuda_fn! { fn cuMemcpy2DAsync_v2(p: *const CUDA_MEMCPY2D, stream: CUstream) {
    memcpy2d("cuMemcpy2DAsync_v2", p, stream, false)
}}

/// Linear copy; `src_type`/`dst_type` are CU_MEMORYTYPE_* (UNIFIED = look it up).
#[allow(clippy::too_many_arguments)] // mirrors the cuMemcpy* arguments
fn memcpy1d(
    call: &'static str,
    dst: u64,
    dst_type: c_uint,
    src: u64,
    src_type: c_uint,
    bytes: usize,
    stream: CUstream,
    sync: bool,
) -> R {
    let c = CUDA_MEMCPY2D {
        srcXInBytes: 0,
        srcY: 0,
        srcMemoryType: src_type,
        srcHost: src as *const c_void,
        srcDevice: src,
        srcArray: std::ptr::null_mut(),
        srcPitch: bytes,
        dstXInBytes: 0,
        dstY: 0,
        dstMemoryType: dst_type,
        dstHost: dst as *mut c_void,
        dstDevice: dst,
        dstArray: std::ptr::null_mut(),
        dstPitch: bytes,
        WidthInBytes: bytes,
        Height: 1,
    };
    let mut st = state();
    let ctx = current_ctx(&st)?;
    check_stream(&st, stream)?;
    let res = (|| {
        let s = side(&st, src_type, src, src, 0, 0, bytes, bytes, 1)?;
        let d = side(&st, dst_type, dst, dst, 0, 0, bytes, bytes, 1)?;
        Ok((s, d))
    })();
    let mut args = vec![
        ("dst", hex(dst)),
        ("src", hex(src)),
        ("ByteCount", Val::from(bytes)),
        ("hStream", hex(stream as u64)),
    ];
    match res {
        Ok((s, d)) => {
            if let (Some(a), Some(b)) = (s.ctx, d.ctx)
                && let Some(how) = peer::route(&st, a, b)
            {
                args.push(("peer", how.into()));
            }
            let kind = kind_of(s.device, d.device);
            let pinned = pinned_host(&st, &s, &d);
            if pinned {
                args.push(("host", "pinned".into()));
            }
            do_copy(kind, pinned, || {
                copy_rect(d.addr, c.dstPitch, s.addr, c.srcPitch, bytes, 1)
            });
            ordering::record_write(&mut st, ctx, stream, sync, call, d.addr, bytes, d.device);
            drop(st);
            count_copy(kind, bytes);
            trace(call, 0, &args, Some((kind, bytes)));
            Ok(())
        }
        Err(e) => {
            drop(st);
            trace(call, e, &args, None);
            Err(e)
        }
    }
}

const H: c_uint = CU_MEMORYTYPE_HOST;
const D: c_uint = CU_MEMORYTYPE_DEVICE;
const U: c_uint = CU_MEMORYTYPE_UNIFIED;
const NO_STREAM: CUstream = std::ptr::null_mut();

cuda_fn! { fn cuMemcpyHtoD_v2(dst: CUdeviceptr, src: *const c_void, n: usize) {
    memcpy1d("cuMemcpyHtoD_v2", dst, D, src as u64, H, n, NO_STREAM, true)
}}
cuda_fn! { fn cuMemcpyDtoH_v2(dst: *mut c_void, src: CUdeviceptr, n: usize) {
    memcpy1d("cuMemcpyDtoH_v2", dst as u64, H, src, D, n, NO_STREAM, true)
}}
cuda_fn! { fn cuMemcpyDtoD_v2(dst: CUdeviceptr, src: CUdeviceptr, n: usize) {
    memcpy1d("cuMemcpyDtoD_v2", dst, D, src, D, n, NO_STREAM, true)
}}
cuda_fn! { fn cuMemcpyHtoDAsync_v2(dst: CUdeviceptr, src: *const c_void, n: usize, s: CUstream) {
    memcpy1d("cuMemcpyHtoDAsync_v2", dst, D, src as u64, H, n, s, false)
}}
cuda_fn! { fn cuMemcpyDtoHAsync_v2(dst: *mut c_void, src: CUdeviceptr, n: usize, s: CUstream) {
    memcpy1d("cuMemcpyDtoHAsync_v2", dst as u64, H, src, D, n, s, false)
}}
cuda_fn! { fn cuMemcpyDtoDAsync_v2(dst: CUdeviceptr, src: CUdeviceptr, n: usize, s: CUstream) {
    memcpy1d("cuMemcpyDtoDAsync_v2", dst, D, src, D, n, s, false)
}}
cuda_fn! { fn cuMemcpy(dst: CUdeviceptr, src: CUdeviceptr, n: usize) {
    memcpy1d("cuMemcpy", dst, U, src, U, n, NO_STREAM, true)
}}
cuda_fn! { fn cuMemcpyAsync(dst: CUdeviceptr, src: CUdeviceptr, n: usize, s: CUstream) {
    memcpy1d("cuMemcpyAsync", dst, U, src, U, n, s, false)
}}

/// Fills a device rectangle with a repeated element of `elem` bytes.
#[allow(clippy::too_many_arguments)] // mirrors cuMemsetD2D*Async
fn memset2d(
    call: &'static str,
    dst: u64,
    pitch: usize,
    value: u32,
    elem: usize,
    width: usize,
    height: usize,
    stream: CUstream,
) -> R {
    let mut st = state();
    let ctx = current_ctx(&st)?;
    check_stream(&st, stream)?;
    let wbytes = width.checked_mul(elem).ok_or(CUDA_ERROR_INVALID_VALUE)?;
    if !dst.is_multiple_of(elem as u64) {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    let s = side(&st, D, 0, dst, 0, 0, pitch, wbytes, height)?;
    let pattern = value.to_le_bytes();
    for r in 0..height {
        let row = (s.addr as usize + r * pitch) as *mut u8;
        for i in 0..width {
            // SAFETY: the rectangle was checked against a live device allocation by `side`.
            unsafe {
                std::ptr::copy_nonoverlapping(pattern.as_ptr(), row.add(i * elem), elem);
            }
        }
    }
    // The synchronous memsets return before the device is done (they are asynchronous to the
    // host for device memory), like the Async ones on the legacy stream.
    let span = if height == 0 {
        0
    } else {
        (height - 1) * pitch + wbytes
    };
    ordering::record_write(&mut st, ctx, stream, false, call, s.addr, span, true);
    drop(st);
    trace(
        call,
        0,
        &[
            ("dstDevice", hex(dst)),
            ("value", value.into()),
            ("Width", width.into()),
            ("Height", height.into()),
        ],
        None,
    );
    Ok(())
}

cuda_fn! { fn cuMemsetD8_v2(dst: CUdeviceptr, uc: u8, n: usize) {
    memset2d("cuMemsetD8_v2", dst, n, uc.into(), 1, n, 1, NO_STREAM)
}}
cuda_fn! { fn cuMemsetD16_v2(dst: CUdeviceptr, us: u16, n: usize) {
    memset2d("cuMemsetD16_v2", dst, n * 2, us.into(), 2, n, 1, NO_STREAM)
}}
cuda_fn! { fn cuMemsetD32_v2(dst: CUdeviceptr, ui: c_uint, n: usize) {
    memset2d("cuMemsetD32_v2", dst, n * 4, ui, 4, n, 1, NO_STREAM)
}}
cuda_fn! { fn cuMemsetD8Async(dst: CUdeviceptr, uc: u8, n: usize, s: CUstream) {
    memset2d("cuMemsetD8Async", dst, n, uc.into(), 1, n, 1, s)
}}
cuda_fn! { fn cuMemsetD2D8_v2(dst: CUdeviceptr, pitch: usize, uc: u8, w: usize, h: usize) {
    memset2d("cuMemsetD2D8_v2", dst, pitch, uc.into(), 1, w, h, NO_STREAM)
}}
cuda_fn! { fn cuMemsetD2D32_v2(dst: CUdeviceptr, pitch: usize, ui: c_uint, w: usize, h: usize) {
    memset2d("cuMemsetD2D32_v2", dst, pitch, ui, 4, w, h, NO_STREAM)
}}
cuda_fn! { fn cuMemsetD2D8Async(dst: CUdeviceptr, pitch: usize, uc: u8, w: usize, h: usize, s: CUstream) {
    memset2d("cuMemsetD2D8Async", dst, pitch, uc.into(), 1, w, h, s)
}}
cuda_fn! { fn cuMemsetD2D16_v2(dst: CUdeviceptr, pitch: usize, us: u16, w: usize, h: usize) {
    memset2d("cuMemsetD2D16_v2", dst, pitch, us.into(), 2, w, h, NO_STREAM)
}}
cuda_fn! { fn cuMemsetD2D16Async(dst: CUdeviceptr, pitch: usize, us: u16, w: usize, h: usize, s: CUstream) {
    memset2d("cuMemsetD2D16Async", dst, pitch, us.into(), 2, w, h, s)
}}
cuda_fn! { fn cuMemsetD2D32Async(dst: CUdeviceptr, pitch: usize, ui: c_uint, w: usize, h: usize, s: CUstream) {
    memset2d("cuMemsetD2D32Async", dst, pitch, ui, 4, w, h, s)
}}

// Streams, events, stream-ordered allocation and the pending-work model: `ordering.rs`.

mod extra;
mod ffnv;
#[path = "../../common/gpus.rs"]
#[allow(dead_code)]
mod gpus;
mod interop;
mod limits;
mod ordering;
mod peer;
mod system;

#[path = "../../common/cpustats.rs"]
#[allow(dead_code)]
mod cpustats;
#[path = "../../common/fault.rs"]
mod fault;

/// `NVEMU_FAULT` for a CUDA entry point: the status to fail it with, traced.
fn injected_fault(name: &str) -> Option<CUresult> {
    let st = fault::check(
        name,
        |n| {
            ERRORS
                .iter()
                .find(|(_, e, _)| e.to_str() == Ok(n))
                .map(|(c, _, _)| *c as i32)
        },
        CUDA_ERROR_UNKNOWN as i32,
    )? as CUresult;
    trace(name, st, &[("injectedFault", 1u64.into())], None);
    Some(st)
}
pub use extra::*;
pub use ffnv::*;
pub use interop::*;
pub use limits::*;
pub use ordering::*;
pub use peer::*;
pub use system::*;

// --- errors and symbol lookup -----------------------------------------------------------------

cuda_fn! { fn cuGetErrorName(error: CUresult, pstr: *mut *const c_char) {
    match ERRORS.iter().find(|e| e.0 == error) {
        Some(e) => put(pstr, e.1.as_ptr()),
        None => {
            put(pstr, std::ptr::null())?;
            Err(CUDA_ERROR_INVALID_VALUE)
        }
    }
}}

cuda_fn! { fn cuGetErrorString(error: CUresult, pstr: *mut *const c_char) {
    match ERRORS.iter().find(|e| e.0 == error) {
        Some(e) => put(pstr, e.2.as_ptr()),
        None => {
            put(pstr, std::ptr::null())?;
            Err(CUDA_ERROR_INVALID_VALUE)
        }
    }
}}

/// The export table: every exported CUDA function under its exported name, plus the base
/// name (without `_v2`) that the runtime API passes to `cuGetProcAddress`.
fn proc_table() -> &'static HashMap<&'static str, usize> {
    static T: OnceLock<HashMap<&'static str, usize>> = OnceLock::new();
    T.get_or_init(|| {
        macro_rules! tbl {
            ($($f:ident),* $(,)?) => {{
                let mut m: HashMap<&'static str, usize> = HashMap::new();
                $( m.insert(stringify!($f), $f as *const () as usize); )*
                m
            }};
        }
        let mut m = tbl!(
            cuInit,
            cuDriverGetVersion,
            cuDeviceGetCount,
            cuDeviceGet,
            cuDeviceGetName,
            cuDeviceTotalMem_v2,
            cuDeviceGetAttribute,
            cuDeviceComputeCapability,
            cuDeviceGetUuid,
            cuDeviceGetUuid_v2,
            cuDeviceGetPCIBusId,
            cuCtxCreate_v2,
            cuCtxDestroy_v2,
            cuCtxPushCurrent_v2,
            cuCtxPopCurrent_v2,
            cuCtxGetCurrent,
            cuCtxSetCurrent,
            cuCtxGetDevice,
            cuCtxSynchronize,
            cuCtxGetApiVersion,
            cuCtxGetFlags,
            cuCtxSetFlags,
            cuCtxGetStreamPriorityRange,
            cuDevicePrimaryCtxRetain,
            cuDevicePrimaryCtxRelease_v2,
            cuDevicePrimaryCtxReset_v2,
            cuDevicePrimaryCtxSetFlags_v2,
            cuDevicePrimaryCtxGetState,
            cuMemAlloc_v2,
            cuMemAllocPitch_v2,
            cuMemFree_v2,
            cuMemAllocHost_v2,
            cuMemHostAlloc,
            cuMemFreeHost,
            cuMemHostRegister_v2,
            cuMemHostUnregister,
            cuMemHostGetDevicePointer_v2,
            cuMemGetInfo_v2,
            cuMemGetAddressRange_v2,
            cuPointerGetAttribute,
            cuMemcpy2D_v2,
            cuMemcpy2DUnaligned_v2,
            cuMemcpy2DAsync_v2,
            cuMemcpyHtoD_v2,
            cuMemcpyDtoH_v2,
            cuMemcpyDtoD_v2,
            cuMemcpyHtoDAsync_v2,
            cuMemcpyDtoHAsync_v2,
            cuMemcpyDtoDAsync_v2,
            cuMemcpy,
            cuMemcpyAsync,
            cuMemsetD8_v2,
            cuMemsetD16_v2,
            cuMemsetD32_v2,
            cuMemsetD8Async,
            cuMemsetD2D8_v2,
            cuMemsetD2D32_v2,
            cuMemsetD2D8Async,
            cuMemsetD2D16_v2,
            cuMemsetD2D16Async,
            cuMemsetD2D32Async,
            cuStreamCreate,
            cuStreamCreateWithPriority,
            cuStreamDestroy_v2,
            cuStreamSynchronize,
            cuStreamQuery,
            cuStreamWaitEvent,
            cuStreamGetPriority,
            cuStreamGetFlags,
            cuEventCreate,
            cuEventRecord,
            cuEventSynchronize,
            cuEventQuery,
            cuEventElapsedTime,
            cuEventDestroy_v2,
            cuGetErrorName,
            cuGetErrorString,
            cuGetProcAddress,
            cuGetProcAddress_v2,
            cuDeviceCanAccessPeer,
            cuCtxEnablePeerAccess,
            cuCtxDisablePeerAccess,
            cuMemcpy3DPeer,
            cuMemcpy3DPeerAsync,
            cuGLGetDevices_v2,
            cuGraphicsGLRegisterBuffer,
            cuGraphicsGLRegisterImage,
            cuGraphicsMapResources,
            cuGraphicsUnmapResources,
            cuGraphicsResourceSetMapFlags_v2,
            cuGraphicsSubResourceGetMappedArray,
            cuGraphicsResourceGetMappedPointer_v2,
            cuGraphicsUnregisterResource,
            cuModuleLoadData,
            cuModuleUnload,
            cuModuleGetFunction,
            cuLaunchKernel,
            cuTexObjectCreate,
            cuTexObjectDestroy,
            cuMemAllocManaged,
            cuStreamAddCallback,
            cuLinkCreate,
            cuLinkAddData,
            cuLinkComplete,
            cuLinkDestroy,
            cuModuleGetGlobal,
            cuArray3DCreate_v2,
            cuArrayDestroy,
            cuCtxGetLimit,
            cuCtxSetLimit,
            cuMemAllocAsync,
            cuMemAllocFromPoolAsync,
            cuMemFreeAsync,
            cuMemPoolCreate,
            cuMemPoolDestroy,
            cuMemPoolSetAttribute,
            cuMemPoolGetAttribute,
            cuIpcGetEventHandle,
            cuIpcOpenEventHandle,
            cuIpcGetMemHandle,
            cuIpcOpenMemHandle,
            cuIpcOpenMemHandle_v2,
            cuIpcCloseMemHandle,
        );
        m.extend(extra::procs());
        // Base names resolve to the newest version, as the real driver does for the
        // versions a CUDA 12 runtime asks for.
        let v2: Vec<(&'static str, usize)> = m
            .iter()
            .filter_map(|(k, v)| k.strip_suffix("_v2").map(|b| (b, *v)))
            .filter(|(b, _)| *b != "cuGetProcAddress")
            .collect();
        for (b, v) in v2 {
            m.entry(b).or_insert(v);
        }
        m
    })
}

/// Symbol lookup shared by both cuGetProcAddress versions.
fn get_proc(symbol: *const c_char, pfn: *mut *mut c_void) -> R<bool> {
    if symbol.is_null() || pfn.is_null() {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    // SAFETY: the caller passes a NUL-terminated C string (checked non-NULL above).
    let name = unsafe { CStr::from_ptr(symbol) };
    let found = name
        .to_str()
        .ok()
        .and_then(|n| proc_table().get(n).copied());
    put(pfn, found.unwrap_or(0) as *mut c_void)?;
    Ok(found.is_some())
}

cuda_fn! { fn cuGetProcAddress(symbol: *const c_char, pfn: *mut *mut c_void, _cuda_version: c_int, _flags: u64) {
    if get_proc(symbol, pfn)? { Ok(()) } else { Err(CUDA_ERROR_NOT_FOUND) }
}}

cuda_fn! { fn cuGetProcAddress_v2(
    symbol: *const c_char,
    pfn: *mut *mut c_void,
    _cuda_version: c_int,
    _flags: u64,
    status: *mut c_int,
) {
    let found = get_proc(symbol, pfn)?;
    if !status.is_null() {
        // CU_GET_PROC_ADDRESS_SUCCESS 0, CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND 1
        put(status, if found { 0 } else { 1 })?;
    }
    if found { Ok(()) } else { Err(CUDA_ERROR_NOT_FOUND) }
}}

// --- nvemu extras -------------------------------------------------------------------------------

/// Copies made so far by kind: `out[0]` HtoD, `out[1]` DtoH, `out[2]` DtoD, `out[3]` HtoH.
#[unsafe(no_mangle)]
pub extern "C" fn nvemu_cuda_copy_counts(out: *mut u64) {
    let _ = catch_unwind(|| fill4(out, &COPY_COUNTS));
}

/// Bytes copied so far by kind, same order as `nvemu_cuda_copy_counts`.
#[unsafe(no_mangle)]
pub extern "C" fn nvemu_cuda_copy_bytes(out: *mut u64) {
    let _ = catch_unwind(|| fill4(out, &COPY_BYTES));
}

fn fill4(out: *mut u64, src: &[AtomicU64; 4]) {
    if out.is_null() {
        return;
    }
    for (i, v) in src.iter().enumerate() {
        let _ = put(out.wrapping_add(i), v.load(Ordering::Relaxed));
    }
}
