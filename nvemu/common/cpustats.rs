//! The CPU time a stand-in spends in its own entry points, for `NVEMU_STATS` (see
//! docs/emulator-contract.md): thread CPU time (`CLOCK_THREAD_CPUTIME_ID`) from the start to
//! the end of each outermost entry point of this library on a thread (an entry point that calls
//! another of the same library counts once). Off (no clock read at all) unless `NVEMU_STATS`
//! names a file when the library is first called.
//!
//! Cost: two clock reads per call while on. The read that opens a call and the one that closes
//! it each fall half inside the measured interval; [`read_cost_ns`] (measured once) times the
//! calls is reported as the accounting's own cost outside the intervals.

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The keys of the CUDA stand-in's `NVEMU_STATS` lines, in the order of its counters (its
/// `stats_now`, and what the NVENC stand-in reads through the CUDA stand-in's export;
/// docs/emulator-contract.md).
pub const CUDA_STATS_KEYS: [&str; 9] = [
    "cuda_calls",
    "cuda_cpu_ns",
    "cuda_acct_overhead_ns",
    "dma_cpu_ns",
    "copy_pageable_htod_cpu_ns",
    "copy_pageable_dtoh_cpu_ns",
    "copy_dtod_cpu_ns",
    "copy_htoh_cpu_ns",
    "copy_engine_read_cpu_ns",
];

/// The keys of the NVENC stand-in's counters in the order its `nvemu_nvenc_stats` export
/// writes them (nvemu/nvenc/src/stats.rs), as in its `NVEMU_STATS` lines.
pub const NVENC_STATS_KEYS: [&str; 4] = [
    "nvenc_calls",
    "nvenc_cpu_ns",
    "nvenc_acct_overhead_ns",
    "pictures",
];

#[repr(C)]
struct Timespec {
    sec: i64,
    nsec: i64,
}

unsafe extern "C" {
    fn clock_gettime(clk: i32, ts: *mut Timespec) -> i32;
}

/// `CLOCK_MONOTONIC`, `CLOCK_PROCESS_CPUTIME_ID`, `CLOCK_THREAD_CPUTIME_ID` (Linux).
pub const MONOTONIC: i32 = 1;
pub const PROCESS_CPU: i32 = 2;
pub const THREAD_CPU: i32 = 3;

/// The clock `clk` in nanoseconds (0 if it cannot be read).
pub fn clock_ns(clk: i32) -> u64 {
    let mut ts = Timespec { sec: 0, nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; the clock ids are Linux's.
    if unsafe { clock_gettime(clk, &mut ts) } != 0 {
        return 0;
    }
    (ts.sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.nsec as u64)
}

/// Whether the accounting is on (`NVEMU_STATS` set and not empty at the first call).
pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("NVEMU_STATS").is_some_and(|p| !p.is_empty()))
}

/// Outermost entry-point calls counted, and their thread CPU time (ns).
pub static CALLS: AtomicU64 = AtomicU64::new(0);
pub static CPU_NS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    /// This thread's share of [`CPU_NS`] (another stand-in subtracts what it called of ours).
    static THREAD_NS: Cell<u64> = const { Cell::new(0) };
}

/// This thread's CPU time in this library's entry points so far (ns).
pub fn thread_entry_ns() -> u64 {
    THREAD_NS.with(|t| t.get())
}

/// The cost of one `CLOCK_THREAD_CPUTIME_ID` read (ns, wall time), measured once.
pub fn read_cost_ns() -> f64 {
    static COST: OnceLock<f64> = OnceLock::new();
    *COST.get_or_init(|| {
        const N: u32 = 2000;
        let t0 = clock_ns(MONOTONIC);
        for _ in 0..N {
            std::hint::black_box(clock_ns(THREAD_CPU));
        }
        clock_ns(MONOTONIC).saturating_sub(t0) as f64 / f64::from(N)
    })
}

/// Accounting overhead outside the measured intervals (ns): one clock read per counted call.
pub fn overhead_ns(calls: u64) -> u64 {
    if calls == 0 {
        0
    } else {
        (calls as f64 * read_cost_ns()) as u64
    }
}

/// One entry point being run; counts its thread CPU time when dropped. `nested` reads the
/// thread's CPU time spent meanwhile in another stand-in's entry points that this one called
/// (counted there, so subtracted here).
pub struct Entry {
    t0: u64,
    nested0: u64,
    nested: Option<fn() -> u64>,
}

impl Entry {
    pub fn enter(nested: Option<fn() -> u64>) -> Option<Entry> {
        if !enabled() {
            return None;
        }
        let outer = DEPTH.with(|d| {
            let v = d.get();
            d.set(v + 1);
            v == 0
        });
        if !outer {
            // Counted by the outer call; only the depth is undone on drop.
            return Some(Entry {
                t0: u64::MAX,
                nested0: 0,
                nested: None,
            });
        }
        let nested0 = nested.map_or(0, |f| f());
        Some(Entry {
            t0: clock_ns(THREAD_CPU),
            nested0,
            nested,
        })
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
        if self.t0 == u64::MAX {
            return;
        }
        let spent = clock_ns(THREAD_CPU).saturating_sub(self.t0);
        let other = self.nested.map_or(0, |f| f().saturating_sub(self.nested0));
        let own = spent.saturating_sub(other);
        CALLS.fetch_add(1, Ordering::Relaxed);
        CPU_NS.fetch_add(own, Ordering::Relaxed);
        THREAD_NS.with(|t| t.set(t.get().saturating_add(own)));
    }
}

/// Runs `f` and returns the thread CPU time it took (ns), 0 when the accounting is off.
pub fn timed(f: impl FnOnce()) -> u64 {
    if !enabled() {
        f();
        return 0;
    }
    let t0 = clock_ns(THREAD_CPU);
    f();
    clock_ns(THREAD_CPU).saturating_sub(t0)
}

/// Appends `text` to the `NVEMU_STATS` file (both stand-ins write their own lines at exit).
pub fn append_to_stats_file(text: &str) {
    use std::io::Write;
    if let Some(p) = std::env::var_os("NVEMU_STATS").filter(|p| !p.is_empty())
        && let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
    {
        let _ = f.write_all(text.as_bytes());
    }
}
