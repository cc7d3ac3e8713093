// SPDX-License-Identifier: MPL-2.0
//! The host section of `scripts/bench` (prints numbers; not a test): the host CPU one NVENC
//! client spends per frame, its own, measured in one process, on the NVENC emulator (the
//! stand-ins' `NVEMU_STATS` accounting must be on: `NVEMU_STATS` names a file) with either CUDA
//! (the stand-in, or the real driver on the device machine).
//!
//! ```text
//! client_bench WxH INPUT FRAMES WARMUP REPEATS ELEMENT [PROP=VALUE ...]
//!   INPUT: system (the pool the encoder proposes), pageable (`identity drop-allocation=true`:
//!          the source's own pool) or cuda (`video/x-raw(memory:CUDAMemory)`, the CUDA pool the
//!          encoder proposes, in its context)
//! ```
//!
//! The source is this binary's `rsbenchsrc`: NV12 frames from the pool that allocation gave it,
//! written once, the first time it sees a buffer's memory (every page touched, and with CUDA
//! memory uploaded once), never again: so it costs a pool acquire per frame, and the source's
//! share of the process's CPU is nearly nothing. (Before, `videotestsrc` filled every frame,
//! `cudaupload` copied every frame twice, and those costs, measured in other processes and
//! subtracted, were most of the figure and of its spread between runs.)
//!
//! Each repeat runs the source alone (`rsbenchsrc ! fakesink`) and then the client
//! (`rsbenchsrc ! ELEMENT ! fakesink`), FRAMES frames each, in this process. The window is from
//! the WARMUP-th buffer at the sink to the (FRAMES - 10)-th (steady state: no start-up, no
//! drain at EOS). Per frame in the window, in ms:
//! - raw: the process's CPU time (`CLOCK_PROCESS_CPUTIME_ID`, every thread);
//! - emu: the stand-ins' own CPU (thread CPU in their entry points, the copies a GPU's copy
//!   engine would make, the accounting's own cost), less the copies from or to pageable host
//!   memory (a real driver makes those with the CPU: the client's cost);
//! - pg: those pageable copies (in client);
//! - src: raw of the source alone;
//! - client: raw - emu - src.
//!
//! Prints a line per repeat (`rep N fps F raw R emu E pg P src S client C`) and then
//! `row fps F raw R emu E pg P src S client C min A max B spread% D acct X` (medians over the
//! repeats; spread = (max - min) / median of client).

#[path = "../nvemu/common/cpustats.rs"]
#[allow(dead_code)]
mod cpustats;

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use gst::glib;
use gst::prelude::*;

mod benchsrc {
    use std::collections::HashSet;
    use std::sync::{LazyLock, Mutex};

    use gst::glib;
    use gst::prelude::*;
    use gst::subclass::prelude::*;
    use gst_base::prelude::*;
    use gst_base::subclass::prelude::*;

    #[derive(Default)]
    pub struct BenchSrc {
        /// (frame duration, frames made, memories written).
        state: Mutex<(Option<gst::ClockTime>, u64, HashSet<usize>)>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for BenchSrc {
        const NAME: &'static str = "GstRsBenchSrc";
        type Type = super::BenchSrcElement;
        type ParentType = gst_base::BaseSrc;
    }

    impl ObjectImpl for BenchSrc {
        fn constructed(&self) {
            self.parent_constructed();
            self.obj().set_format(gst::Format::Time);
        }
    }
    impl GstObjectImpl for BenchSrc {}

    impl ElementImpl for BenchSrc {
        fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
            static M: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
                gst::subclass::ElementMetadata::new(
                    "rsnvenc benchmark source",
                    "Source/Video",
                    "NV12 frames from the negotiated pool, written once per memory",
                    "rsnvenc developers",
                )
            });
            Some(&*M)
        }

        fn pad_templates() -> &'static [gst::PadTemplate] {
            static T: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
                let mut all = gst::Caps::builder("video/x-raw")
                    .field("format", "NV12")
                    .build();
                all.merge(
                    gst::Caps::builder("video/x-raw")
                        .features(["memory:CUDAMemory"])
                        .field("format", "NV12")
                        .build(),
                );
                vec![
                    gst::PadTemplate::new(
                        "src",
                        gst::PadDirection::Src,
                        gst::PadPresence::Always,
                        &all,
                    )
                    .expect("src template"),
                ]
            });
            T.as_ref()
        }
    }

    impl BaseSrcImpl for BenchSrc {
        fn set_caps(&self, caps: &gst::Caps) -> Result<(), gst::LoggableError> {
            let info = gst_video::VideoInfo::from_caps(caps)
                .map_err(|_| gst::loggable_error!(gst::CAT_RUST, "not raw video: {caps}"))?;
            self.obj().set_blocksize(info.size() as u32);
            let fps = info.fps();
            let dur = (fps.numer() > 0).then(|| {
                gst::ClockTime::SECOND
                    .mul_div_floor(fps.denom() as u64, fps.numer() as u64)
                    .unwrap_or(gst::ClockTime::ZERO)
            });
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            s.0 = dur;
            Ok(())
        }

        fn fill(
            &self,
            _offset: u64,
            _length: u32,
            buffer: &mut gst::BufferRef,
        ) -> Result<gst::FlowSuccess, gst::FlowError> {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let n = s.1;
            s.1 += 1;
            if let Some(d) = s.0 {
                buffer.set_pts(d * n);
                buffer.set_duration(d);
            }
            let key = buffer.peek_memory(0).as_ptr() as usize;
            if s.2.insert(key) {
                // First sight of this memory: write it (black), touching every page.
                let mut map = buffer.map_writable().map_err(|_| gst::FlowError::Error)?;
                let data = map.as_mut_slice();
                let luma = data.len() * 2 / 3;
                data[..luma].fill(16);
                data[luma..].fill(128);
            }
            Ok(gst::FlowSuccess::Ok)
        }
    }
}

glib::wrapper! {
    pub struct BenchSrcElement(ObjectSubclass<benchsrc::BenchSrc>)
        @extends gst_base::BaseSrc, gst::Element, gst::Object;
}

/// The stand-ins' counters now: (own CPU less pageable copies, pageable copies, accounting)
/// in ns; zeros where a stand-in is not loaded (the real CUDA driver has no such export).
fn emulator_ns() -> (u64, u64, u64) {
    let mut emu = 0u64;
    let mut pg = 0u64;
    let mut acct = 0u64;
    // The value of `key` in `v`, a counter array in the order of `keys`.
    fn at(keys: &[&str], v: &[u64], key: &str) -> u64 {
        keys.iter().position(|k| *k == key).map_or(0, |i| v[i])
    }
    // SAFETY: RTLD_NOLOAD opens only a library the process already loaded (the plugin loaded
    // it); the exports' signatures are those of nvemu/nvenc/src/stats.rs and
    // nvemu/cuda/src/lib.rs: `fn(*mut u64, usize) -> usize`, writing at most `n` values.
    unsafe {
        type Stats = unsafe extern "C" fn(*mut u64, usize) -> usize;
        let flags = libloading::os::unix::RTLD_LAZY | 0x4; // RTLD_NOLOAD
        if let Ok(lib) = libloading::os::unix::Library::open(Some("libnvidia-encode.so.1"), flags)
            && let Ok(f) = lib.get::<Stats>(b"nvemu_nvenc_stats\0")
        {
            let keys = &cpustats::NVENC_STATS_KEYS;
            let mut v = [0u64; cpustats::NVENC_STATS_KEYS.len()];
            f(v.as_mut_ptr(), v.len());
            let overhead = at(keys, &v, "nvenc_acct_overhead_ns");
            emu += at(keys, &v, "nvenc_cpu_ns") + overhead;
            acct += overhead;
        }
        if let Ok(lib) = libloading::os::unix::Library::open(Some("libcuda.so.1"), flags)
            && let Ok(f) = lib.get::<Stats>(b"nvemu_cuda_stats\0")
        {
            let keys = &cpustats::CUDA_STATS_KEYS;
            let mut v = [0u64; cpustats::CUDA_STATS_KEYS.len()];
            f(v.as_mut_ptr(), v.len());
            // cpu + accounting - the pageable copies (host-to-device and device-to-host).
            let pageable = at(keys, &v, "copy_pageable_htod_cpu_ns")
                + at(keys, &v, "copy_pageable_dtoh_cpu_ns");
            let overhead = at(keys, &v, "cuda_acct_overhead_ns");
            emu += (at(keys, &v, "cuda_cpu_ns") + overhead).saturating_sub(pageable);
            pg += pageable;
            acct += overhead;
        }
    }
    (emu, pg, acct)
}

#[derive(Clone, Copy, Default)]
struct Snap {
    wall: u64,
    cpu: u64,
    emu: u64,
    pg: u64,
    acct: u64,
}

fn snap() -> Snap {
    let (emu, pg, acct) = emulator_ns();
    Snap {
        wall: cpustats::clock_ns(cpustats::MONOTONIC),
        cpu: cpustats::clock_ns(cpustats::PROCESS_CPU),
        emu,
        pg,
        acct,
    }
}

/// Per-frame figures of one run's window (ms; fps).
#[derive(Clone, Copy, Default)]
struct Run {
    fps: f64,
    raw: f64,
    emu: f64,
    pg: f64,
    acct: f64,
}

/// Plays `launch` to EOS; the window is from buffer `warmup` to buffer `end` at the sink named
/// `sink`.
fn run(launch: &str, warmup: u64, end: u64) -> Result<Run, String> {
    let pipeline = gst::parse::launch(launch)
        .map_err(|e| format!("{launch}: {e}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline".to_string())?;
    let sink = pipeline.by_name("sink").ok_or("no element named sink")?;
    let pad = sink.static_pad("sink").ok_or("sink has no sink pad")?;
    let count = Arc::new(AtomicU64::new(0));
    let marks: Arc<Mutex<(Snap, Snap)>> = Arc::default();
    {
        let (count, marks) = (count.clone(), marks.clone());
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            let n = count.fetch_add(1, Ordering::Relaxed) + 1;
            if n == warmup || n == end {
                let s = snap();
                let mut m = marks.lock().unwrap_or_else(|e| e.into_inner());
                if n == warmup {
                    m.0 = s;
                } else {
                    m.1 = s;
                }
            }
            gst::PadProbeReturn::Ok
        });
    }
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| format!("{launch}: {e}"))?;
    let bus = pipeline.bus().ok_or("no bus")?;
    let mut failure = None;
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(600)) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => {
                failure = Some(format!("{launch}: {} ({:?})", e.error(), e.debug()));
                break;
            }
            _ => {}
        }
    }
    let _ = pipeline.set_state(gst::State::Null);
    if let Some(f) = failure {
        return Err(f);
    }
    let got = count.load(Ordering::Relaxed);
    if got < end {
        return Err(format!(
            "{launch}: {got} buffers at the sink, fewer than {end}"
        ));
    }
    let (a, b) = *marks.lock().unwrap_or_else(|e| e.into_inner());
    let n = (end - warmup) as f64;
    let ms = |x: u64, y: u64| y.saturating_sub(x) as f64 / n / 1e6;
    Ok(Run {
        fps: n / (b.wall.saturating_sub(a.wall) as f64 / 1e9),
        raw: ms(a.cpu, b.cpu),
        emu: ms(a.emu, b.emu),
        pg: ms(a.pg, b.pg),
        acct: ms(a.acct, b.acct),
    })
}

/// (median, min, max) of `v` (not empty).
fn summary(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let k = s.len();
    let m = if k % 2 == 1 {
        s[k / 2]
    } else {
        (s[k / 2 - 1] + s[k / 2]) / 2.0
    };
    (m, s[0], s[k - 1])
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 6 {
        eprintln!(
            "usage: client_bench WxH system|pageable|cuda FRAMES WARMUP REPEATS ELEMENT [PROP=VALUE ...]"
        );
        return ExitCode::from(2);
    }
    let Some((w, h)) = args[0].split_once('x') else {
        eprintln!("client_bench: size {} is not WxH", args[0]);
        return ExitCode::from(2);
    };
    let input = args[1].as_str();
    let num = |i: usize| args[i].parse::<u64>().ok().filter(|v| *v > 0);
    let (Some(frames), Some(warmup), Some(repeats)) = (num(2), num(3), num(4)) else {
        eprintln!("client_bench: FRAMES, WARMUP and REPEATS are positive integers");
        return ExitCode::from(2);
    };
    let end = frames.saturating_sub(10);
    if warmup >= end {
        eprintln!("client_bench: WARMUP must be below FRAMES - 10");
        return ExitCode::from(2);
    }
    let element = args[5..].join(" ");
    if std::env::var_os("NVEMU_STATS").is_none_or(|v| v.is_empty()) {
        eprintln!("client_bench: set NVEMU_STATS (a file) so that the stand-ins count their CPU");
        return ExitCode::from(2);
    }
    if let Err(e) = gst::init() {
        eprintln!("client_bench: {e}");
        return ExitCode::FAILURE;
    }
    if let Err(e) = gst::Element::register(
        None,
        "rsbenchsrc",
        gst::Rank::NONE,
        BenchSrcElement::static_type(),
    ) {
        eprintln!("client_bench: {e}");
        return ExitCode::FAILURE;
    }
    let (features, between) = match input {
        "system" => ("", ""),
        "pageable" => ("", "! identity drop-allocation=true "),
        "cuda" => ("(memory:CUDAMemory)", ""),
        _ => {
            eprintln!("client_bench: INPUT is system, pageable or cuda");
            return ExitCode::from(2);
        }
    };
    let head = format!(
        "rsbenchsrc num-buffers={frames} ! video/x-raw{features},format=NV12,width={w},height={h},framerate=240/1 {between}"
    );
    let source = format!("{head}! fakesink name=sink");
    let client = format!("{head}! {element} ! fakesink name=sink");
    let mut rows: Vec<(Run, f64)> = Vec::new();
    for rep in 1..=repeats {
        let r = run(&source, warmup, end).and_then(|s| Ok((s, run(&client, warmup, end)?)));
        let (s, c) = match r {
            Ok(v) => v,
            Err(e) => {
                eprintln!("client_bench: {e}");
                return ExitCode::FAILURE;
            }
        };
        let cli = c.raw - c.emu - s.raw;
        println!(
            "rep {rep} fps {:.1} raw {:.4} emu {:.4} pg {:.4} src {:.4} client {:.4}",
            c.fps, c.raw, c.emu, c.pg, s.raw, cli
        );
        rows.push((c, s.raw));
        if c.emu == 0.0 && c.raw > 0.0 {
            eprintln!(
                "client_bench: the stand-ins counted nothing (is libnvidia-encode.so.1 the emulator's?)"
            );
        }
    }
    let col = |f: &dyn Fn(&(Run, f64)) -> f64| summary(&rows.iter().map(f).collect::<Vec<_>>());
    let fps = col(&|r| r.0.fps).0;
    let raw = col(&|r| r.0.raw).0;
    let emu = col(&|r| r.0.emu).0;
    let pg = col(&|r| r.0.pg).0;
    let acct = col(&|r| r.0.acct).0;
    let src = col(&|r| r.1).0;
    let (cli, cmin, cmax) = col(&|r| r.0.raw - r.0.emu - r.1);
    let spread = if cli != 0.0 {
        100.0 * (cmax - cmin) / cli.abs()
    } else {
        0.0
    };
    println!(
        "row fps {fps:.1} raw {raw:.4} emu {emu:.4} pg {pg:.4} src {src:.4} client {cli:.4} min {cmin:.4} max {cmax:.4} spread% {spread:.1} acct {acct:.4}"
    );
    ExitCode::SUCCESS
}
