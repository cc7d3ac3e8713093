// SPDX-License-Identifier: MPL-2.0
//! The stress driver of `scripts/stress` (run on the NVENC emulator: `LD_LIBRARY_PATH` must put
//! `target/nvemu/lib` first). The elements are registered statically from this crate; every
//! pipeline is `videotestsrc ! video/x-raw,format=NV12,width=320,height=240,framerate=25/1 !
//! ELEMENT ! fakesink`, counted at the sink. Each mode prints one table row (`--header`: the
//! header line first).
//!
//! ```text
//! stress cycle ELEMENT COUNT FRAMES     start/stop: COUNT pipelines made, played to EOS, freed
//! stress states ELEMENT COUNT           one pipeline PLAYING -> PAUSED -> READY, COUNT times
//! stress concurrent ELEMENT N FRAMES    N pipelines playing at once in this process
//! stress long ELEMENT FRAMES [PROPS]    one run of FRAMES frames, RSS sampled
//! stress sweep [--elements A,B] [--modes normal,strict] [--positions 1,2,5,20,1+]
//!              [--frames N] [--jobs J] [--limit SECONDS] [--dir DIR]
//!                                       the fault sweep (children of this binary)
//! ```
//!
//! Memory: RSS (`VmRSS`) in KiB; growth per cycle in bytes, from the sample after the warm-up
//! (the first 100 cycles, or a tenth of them if fewer) to the end. File descriptors: entries of
//! `/proc/self/fd`; threads: `Threads` of `/proc/self/status`.

#[path = "../tests/stress/harness.rs"]
mod harness;

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use gst::prelude::*;
use harness::*;

fn init() {
    gst::init().expect("gst init");
    gstrsnvenc::plugin_register_static().expect("register rsnvenc");
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> T {
    args.get(i)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("stress: argument {i} ({what}) missing or invalid"))
}

/// `at start / after warm-up / at end` of one measure.
fn three(a: u64, b: u64, c: u64) -> String {
    format!("{a}/{b}/{c}")
}

fn growth(a: u64, b: u64, n: u64) -> f64 {
    (b as f64 - a as f64) * 1024.0 / n.max(1) as f64
}

fn cycle(args: &[String], header: bool) {
    let (el, count, frames): (String, u64, u64) = (
        arg(args, 0, "element"),
        arg(args, 1, "count"),
        arg(args, 2, "frames"),
    );
    if header {
        println!(
            "{:<16} {:>6} {:>6} {:>8} {:>20} {:>11} {:>11} {:>12}",
            "element", "cycles", "ok", "wall_s", "rss_kb", "fds", "threads", "B/cycle"
        );
    }
    let warm = 100.min(count / 10).max(1);
    let t0 = Instant::now();
    let start = usage();
    let mut after = start;
    let mut ok = 0;
    let mut first_err = None;
    for i in 0..count {
        let o = run_spec(&Spec::new(&el, frames));
        if o.clean() {
            ok += 1;
        } else if first_err.is_none() {
            first_err = Some(format!("cycle {i}: {o:?}"));
        }
        if i + 1 == warm {
            after = usage();
        }
    }
    let end = usage();
    println!(
        "{el:<16} {count:>6} {ok:>6} {:>8.1} {:>20} {:>11} {:>11} {:>12.0}",
        t0.elapsed().as_secs_f64(),
        three(start.rss_kb, after.rss_kb, end.rss_kb),
        three(start.fds, after.fds, end.fds),
        three(start.threads, after.threads, end.threads),
        growth(after.rss_kb, end.rss_kb, count - warm)
    );
    if let Some(e) = first_err {
        println!("  first failure: {e}");
    }
}

/// Waits until `r` has `n` more frames out than `from` (at most 10 s); false on timeout.
fn wait_frames(r: &Running, from: u64, n: u64) -> bool {
    let t = Instant::now();
    while r.frames_out() < from + n {
        if t.elapsed() > Duration::from_secs(10) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    true
}

fn states(args: &[String], header: bool) {
    let (el, count): (String, u64) = (arg(args, 0, "element"), arg(args, 1, "count"));
    if header {
        println!(
            "{:<16} {:>6} {:>6} {:>8} {:>20} {:>11} {:>11} {:>12} {:>7}",
            "element", "cycles", "ok", "wall_s", "rss_kb", "fds", "threads", "B/cycle", "errors"
        );
    }
    let r = Running::new(&Spec::new(&el, 0)).expect("pipeline");
    let p = r.pipeline.clone();
    let bus = p.bus().expect("bus");
    let set = |s: gst::State| {
        p.set_state(s).is_ok()
            && p.state(gst::ClockTime::from_seconds(10)).0.is_ok()
            && p.current_state() == s
    };
    let warm = 100.min(count / 10).max(1);
    let t0 = Instant::now();
    let start = usage();
    let mut after = start;
    let (mut ok, mut errors) = (0, 0);
    for i in 0..count {
        let from = r.frames_out();
        let good = set(gst::State::Playing)
            && wait_frames(&r, from, 2)
            && set(gst::State::Paused)
            && set(gst::State::Playing)
            && wait_frames(&r, r.frames_out(), 1)
            && set(gst::State::Paused)
            && set(gst::State::Ready);
        while let Some(m) = bus.pop_filtered(&[gst::MessageType::Error]) {
            errors += 1;
            if errors == 1 {
                println!("  first error: {m:?}");
            }
        }
        ok += good as u64;
        if i + 1 == warm {
            after = usage();
        }
    }
    let _ = p.set_state(gst::State::Null);
    let end = usage();
    println!(
        "{el:<16} {count:>6} {ok:>6} {:>8.1} {:>20} {:>11} {:>11} {:>12.0} {errors:>7}",
        t0.elapsed().as_secs_f64(),
        three(start.rss_kb, after.rss_kb, end.rss_kb),
        three(start.fds, after.fds, end.fds),
        three(start.threads, after.threads, end.threads),
        growth(after.rss_kb, end.rss_kb, count - warm)
    );
}

fn concurrent(args: &[String], header: bool) {
    let (el, n, frames): (String, u64, u64) = (
        arg(args, 0, "element"),
        arg(args, 1, "n"),
        arg(args, 2, "frames"),
    );
    if header {
        println!(
            "{:<16} {:>4} {:>7} {:>14} {:>7} {:>8} {:>12} {:>12} {:>8}",
            "element",
            "n",
            "frames",
            "out_min/max",
            "failed",
            "wall_s",
            "rss_start_kb",
            "rss_peak_kb",
            "threads"
        );
    }
    let start = usage();
    let t0 = Instant::now();
    let done = std::sync::atomic::AtomicBool::new(false);
    let (outs, peak_threads) = std::thread::scope(|s| {
        let sampler = s.spawn(|| {
            let mut peak = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(usage().threads);
                std::thread::sleep(Duration::from_millis(20));
            }
            peak
        });
        let runs: Vec<_> = (0..n)
            .map(|_| Running::new(&Spec::new(&el, frames)).expect("pipeline"))
            .collect();
        let handles: Vec<_> = runs.into_iter().map(|r| s.spawn(move || r.run())).collect();
        let outs: Vec<Outcome> = handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        (outs, sampler.join().unwrap_or(0))
    });
    let end = usage();
    let min = outs.iter().map(|o| o.frames_out).min().unwrap_or(0);
    let max = outs.iter().map(|o| o.frames_out).max().unwrap_or(0);
    let failed = outs.iter().filter(|o| !o.clean()).count();
    println!(
        "{el:<16} {n:>4} {frames:>7} {:>14} {failed:>7} {:>8.1} {:>12} {:>12} {peak_threads:>8}",
        format!("{min}/{max}"),
        t0.elapsed().as_secs_f64(),
        start.rss_kb,
        end.peak_kb
    );
    if let Some(o) = outs.iter().find(|o| !o.clean()) {
        println!("  first failure: {o:?}");
    }
}

fn long(args: &[String], header: bool) {
    let (el, frames): (String, u64) = (arg(args, 0, "element"), arg(args, 1, "frames"));
    let props = args.get(2).cloned().unwrap_or_default();
    if header {
        println!(
            "{:<16} {:<12} {:>7} {:>7} {:>7} {:>8} {:>8} {:>26} {:>9}",
            "element",
            "props",
            "in",
            "out",
            "errors",
            "wall_s",
            "fps",
            "rss_kb 10%/50%/end",
            "B/1kfr"
        );
    }
    let mut spec = Spec::new(&el, frames);
    spec.props = props.clone();
    let r = Running::new(&spec).expect("pipeline");
    let out = r.out.clone();
    let t0 = Instant::now();
    let done = std::sync::atomic::AtomicBool::new(false);
    let (o, samples) = std::thread::scope(|s| {
        let sampler = s.spawn(|| {
            let (mut at10, mut at50) = (None, None);
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let n = out.load(std::sync::atomic::Ordering::Relaxed);
                if at10.is_none() && n >= frames / 10 {
                    at10 = Some(usage().rss_kb);
                }
                if at50.is_none() && n >= frames / 2 {
                    at50 = Some(usage().rss_kb);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            (at10.unwrap_or(0), at50.unwrap_or(0))
        });
        let o = r.run();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        (o, sampler.join().unwrap_or((0, 0)))
    });
    let wall = t0.elapsed().as_secs_f64();
    let end = usage().rss_kb;
    let span = (frames - frames / 10).max(1);
    println!(
        "{el:<16} {:<12} {:>7} {:>7} {:>7} {wall:>8.1} {:>8.0} {:>26} {:>9.0}",
        if props.is_empty() { "-" } else { &props },
        o.frames_in,
        o.frames_out,
        o.errors.len(),
        o.frames_out as f64 / wall,
        three(samples.0, samples.1, end),
        (end as f64 - samples.0 as f64) * 1024.0 * 1000.0 / span as f64
    );
    if let Some(e) = o.errors.first() {
        println!("  first error: {e}");
    }
}

fn sweep(args: &[String]) -> ExitCode {
    let mut sw = Sweep {
        elements: vec![
            "rsnvench265enc".into(),
            "rsnvench264enc".into(),
            "rsnvencav1enc".into(),
        ],
        strict_modes: vec![false, true],
        positions: ["1", "2", "5", "20", "1+"].map(String::from).to_vec(),
        frames: 30,
        props: String::new(),
        jobs: 2,
        limit: Duration::from_secs(30),
        dir: std::env::temp_dir().join("rsnvenc-sweep"),
        env: Vec::new(),
    };
    let list = |s: &String| s.split(',').map(str::to_owned).collect::<Vec<_>>();
    let mut it = args.iter();
    while let Some(k) = it.next() {
        let v = it.next().expect("sweep: option without a value");
        match k.as_str() {
            "--elements" => sw.elements = list(v),
            "--modes" => sw.strict_modes = list(v).iter().map(|m| m == "strict").collect(),
            "--positions" => sw.positions = list(v),
            "--frames" => sw.frames = v.parse().expect("--frames"),
            "--jobs" => sw.jobs = v.parse().expect("--jobs"),
            "--limit" => sw.limit = Duration::from_secs(v.parse().expect("--limit")),
            "--dir" => sw.dir = v.into(),
            other => panic!("sweep: unknown option {other}"),
        }
    }
    let exe = std::env::current_exe().expect("own path");
    let t0 = Instant::now();
    let (verdicts, found) = sw.run(&|spec: &Spec| {
        let mut c = Command::new(&exe);
        c.arg("child");
        spec.to_env(&mut c);
        c
    });
    for (el, calls) in &found {
        println!(
            "entry points of {el} ({}): {}",
            calls.len(),
            calls
                .iter()
                .map(|(c, n)| format!("{c} x{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    println!(
        "{} runs ({} positions: {}; {} frames; limit {:?}; {:.0} s)",
        verdicts.len(),
        sw.positions.len(),
        sw.positions.join(" "),
        sw.frames,
        sw.limit,
        t0.elapsed().as_secs_f64()
    );
    print!("{}", sweep_table(&verdicts));
    let count = |c: Class| verdicts.iter().filter(|v| v.class == c).count();
    println!(
        "sweep totals: crash={} hang={} silent_loss={} strict_abort={} violations={}",
        count(Class::Crash),
        count(Class::Hang),
        count(Class::SilentLoss),
        count(Class::StrictAbort),
        verdicts.iter().filter(|v| v.violations > 0).count()
    );
    if verdicts.iter().any(|v| v.class.bad() || v.violations > 0) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let header = args.iter().any(|a| a == "--header");
    args.retain(|a| a != "--header");
    let Some(mode) = args.first().cloned() else {
        eprintln!("usage: stress cycle|states|concurrent|long|sweep ... (see examples/stress.rs)");
        return ExitCode::from(2);
    };
    let rest = &args[1..];
    if mode == "sweep" {
        return sweep(rest);
    }
    init();
    match mode.as_str() {
        "child" => {
            let spec = Spec::from_env().expect("child: STRESS_* environment");
            let o = run_spec(&spec);
            print!("{}", o.report());
            return if o.errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            };
        }
        "cycle" => cycle(rest, header),
        "states" => states(rest, header),
        "concurrent" => concurrent(rest, header),
        "long" => long(rest, header),
        other => {
            eprintln!("stress: unknown mode {other}");
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}
