//! `NVEMU_STATS` lines of the NVENC stand-in (docs/emulator-contract.md): its own CPU time in
//! its entry points (`crate::cpustats`), and a measuring window from the first
//! `nvEncEncodePicture` to the last successful `nvEncLockBitstream` of the process (so that the
//! pictures locked in it, divided by its wall time, can never pass the engines' limit): wall time, the process's CPU time
//! (`CLOCK_PROCESS_CPUTIME_ID`, every thread) and both stand-ins' counters over that window, so
//! that a benchmark gets per-picture figures of the steady state without start-up and teardown
//! (the null backend still codes a picture at initialisation for the sequence header, which is
//! start-up CPU of the emulator outside the window). The CUDA stand-in's counters are read
//! through its `nvemu_cuda_stats` export where it is the loaded `libcuda.so.1` (absent with the
//! real driver: those fields are then 0).

use crate::cpustats;
use std::sync::Mutex;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

type FnStats = unsafe extern "C" fn(*mut u64, usize) -> usize;
type FnThreadNs = unsafe extern "C" fn() -> u64;

use crate::cpustats::CUDA_STATS_KEYS as CUDA_KEYS;

struct CudaExports {
    stats: FnStats,
    thread_ns: FnThreadNs,
}

static CUDA: OnceLock<Option<CudaExports>> = OnceLock::new();

/// Looks the CUDA stand-in's exports up in the `libcuda.so.1` the process has loaded (never
/// loads it). Called once a session exists (a CUDA session needs the client's context, so the
/// library is loaded by then); before that nothing is looked up.
fn lookup_cuda() -> &'static Option<CudaExports> {
    CUDA.get_or_init(|| {
        // SAFETY: RTLD_NOLOAD only returns a handle to a library already loaded (its
        // initialisers ran); the handle is never closed (the library stays loaded). The
        // symbol types are those of the CUDA stand-in's exports (nvemu/cuda/src/lib.rs).
        unsafe {
            let h = libc::dlopen(
                c"libcuda.so.1".as_ptr(),
                libc::RTLD_LAZY | libc::RTLD_NOLOAD,
            );
            if h.is_null() {
                return None;
            }
            let s = libc::dlsym(h, c"nvemu_cuda_stats".as_ptr());
            let t = libc::dlsym(h, c"nvemu_cuda_thread_entry_cpu_ns".as_ptr());
            if s.is_null() || t.is_null() {
                return None;
            }
            Some(CudaExports {
                stats: std::mem::transmute::<*mut libc::c_void, FnStats>(s),
                thread_ns: std::mem::transmute::<*mut libc::c_void, FnThreadNs>(t),
            })
        }
    })
}

/// This thread's CPU time in the CUDA stand-in's entry points (0 before a session exists or
/// with the real driver): an NVENC entry point subtracts what it called of them.
pub fn cuda_thread_ns() -> u64 {
    match CUDA.get() {
        // SAFETY: the export only reads a thread-local.
        Some(Some(c)) => unsafe { (c.thread_ns)() },
        _ => 0,
    }
}

fn cuda_now() -> [u64; 9] {
    let mut v = [0u64; 9];
    if let Some(c) = lookup_cuda() {
        // SAFETY: `v` has 9 writable u64; the export writes at most that many.
        unsafe { (c.stats)(v.as_mut_ptr(), v.len()) };
    }
    v
}

/// One snapshot: monotonic time, process CPU, NVENC entry calls and CPU, the CUDA counters.
#[derive(Clone, Copy)]
struct Snap {
    wall: u64,
    proc_cpu: u64,
    calls: u64,
    cpu: u64,
    cuda: [u64; 9],
}

fn snap() -> Snap {
    Snap {
        wall: cpustats::clock_ns(cpustats::MONOTONIC),
        proc_cpu: cpustats::clock_ns(cpustats::PROCESS_CPU),
        calls: cpustats::CALLS.load(Ordering::Relaxed),
        cpu: cpustats::CPU_NS.load(Ordering::Relaxed),
        cuda: cuda_now(),
    }
}

/// (first submission, last lock) snapshots.
static WINDOW: Mutex<Option<(Snap, Snap)>> = Mutex::new(None);
static STARTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static PICTURES: AtomicU64 = AtomicU64::new(0);

/// Called at the start of each `nvEncEncodePicture` (any session): the first one opens the
/// window.
pub fn picture_submitted() {
    if !cpustats::enabled() || STARTED.load(Ordering::Relaxed) {
        return;
    }
    let s = snap();
    let mut w = WINDOW.lock().unwrap_or_else(|e| e.into_inner());
    if w.is_none() {
        *w = Some((s, s));
    }
    STARTED.store(true, Ordering::Relaxed);
}

/// Called after each successful `nvEncLockBitstream` (any session): moves the window's end.
pub fn picture_locked() {
    if !cpustats::enabled() {
        return;
    }
    PICTURES.fetch_add(1, Ordering::Relaxed);
    let s = snap();
    let mut w = WINDOW.lock().unwrap_or_else(|e| e.into_inner());
    match w.as_mut() {
        None => *w = Some((s, s)),
        Some((_, end)) => *end = s,
    }
}

/// The NVENC stand-in's counters now, in the order of `cpustats::NVENC_STATS_KEYS` (at most `n`
/// of them written into `out`); returns how many there are. For a
/// benchmark that measures a window of its own (examples/python/density_bench.py).
///
/// # Safety
/// `out` is NULL or points to `n` writable u64.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvemu_nvenc_stats(out: *mut u64, n: usize) -> usize {
    let calls = cpustats::CALLS.load(Ordering::Relaxed);
    let v: [u64; cpustats::NVENC_STATS_KEYS.len()] = [
        calls,
        cpustats::CPU_NS.load(Ordering::Relaxed),
        cpustats::overhead_ns(calls),
        PICTURES.load(Ordering::Relaxed),
    ];
    if !out.is_null() {
        for (i, x) in v.iter().take(n).enumerate() {
            // SAFETY: the caller gives `n` writable u64 at `out`; i < n.
            unsafe { out.add(i).write(*x) };
        }
    }
    v.len()
}

/// Registers the writer of the stats lines (at exit), once, when the accounting is on.
pub fn arm() {
    static ARMED: std::sync::Once = std::sync::Once::new();
    if cpustats::enabled() {
        ARMED.call_once(|| {
            // SAFETY: registers a plain function that reads atomics and appends to a file.
            unsafe { libc::atexit(write_stats) };
        });
    }
}

extern "C" fn write_stats() {
    let calls = cpustats::CALLS.load(Ordering::Relaxed);
    let mut t = String::new();
    t.push_str(&format!("nvenc_calls {calls}\n"));
    t.push_str(&format!(
        "nvenc_cpu_ns {}\n",
        cpustats::CPU_NS.load(Ordering::Relaxed)
    ));
    t.push_str(&format!(
        "nvenc_acct_overhead_ns {}\n",
        cpustats::overhead_ns(calls)
    ));
    t.push_str(&format!(
        "acct_read_cost_ns {:.1}\n",
        cpustats::read_cost_ns()
    ));
    t.push_str(&format!("pictures {}\n", PICTURES.load(Ordering::Relaxed)));
    let w = *WINDOW.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((a, b)) = w {
        let calls = b.calls - a.calls;
        // Every picture locked was submitted after the window opened.
        t.push_str(&format!(
            "window_pictures {}\n",
            PICTURES.load(Ordering::Relaxed)
        ));
        t.push_str(&format!("window_wall_ns {}\n", b.wall - a.wall));
        t.push_str(&format!(
            "window_process_cpu_ns {}\n",
            b.proc_cpu.saturating_sub(a.proc_cpu)
        ));
        t.push_str(&format!("window_nvenc_calls {calls}\n"));
        t.push_str(&format!("window_nvenc_cpu_ns {}\n", b.cpu - a.cpu));
        t.push_str(&format!(
            "window_nvenc_acct_overhead_ns {}\n",
            cpustats::overhead_ns(calls)
        ));
        for (i, k) in CUDA_KEYS.iter().enumerate() {
            let d = b.cuda[i].saturating_sub(a.cuda[i]);
            // The overhead is derived from the calls of the window, not a difference.
            let d = if *k == "cuda_acct_overhead_ns" {
                cpustats::overhead_ns(b.cuda[0].saturating_sub(a.cuda[0]))
            } else {
                d
            };
            t.push_str(&format!("window_{k} {d}\n"));
        }
    }
    cpustats::append_to_stats_file(&t);
}
