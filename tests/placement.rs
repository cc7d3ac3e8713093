// SPDX-License-Identifier: MPL-2.0
//! Issue 13, what proves it: sessions placed over several emulated GPUs (`cuda-device-id=-1`),
//! across processes (`NVEMU_SYSTEM`: one machine, the caps and NVML counting every process),
//! the next GPU when one answers the session cap, upstream CUDA memory keeping its GPU.
//!
//! `gst-launch-1.0` children with the freshly built plugin and the emulator's stand-ins
//! (`target/nvemu/lib`, libnvidia-ml.so.1 included), `NVEMU_STRICT=abort`; skipped with a message
//! when the emulator is not built. The error structure and the fallback bins, which need the
//! bus, are in `tests/autoenc.rs`.

#[path = "../nvemu/nvenc/tests/common/tools.rs"]
mod tools;
use tools::*;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

macro_rules! need_emulator {
    () => {
        if emu_lib().is_none() || !root().join("target/nvemu/lib/libnvidia-ml.so.1").exists() {
            eprintln!("SKIPPED: emulator not built (run scripts/build-emulator)");
            return;
        }
    };
}

fn plugin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf()
}

const LIMIT: Duration = Duration::from_secs(240);

fn gst(pipeline: &str, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new("gst-launch-1.0");
    cmd.args(pipeline.split_whitespace());
    cmd.env("GST_PLUGIN_PATH", plugin_dir())
        .env(
            "GST_REGISTRY",
            out_dir().join(format!("registry-{}.bin", std::process::id())),
        )
        .env("NVEMU_STRICT", "abort")
        .env("LD_LIBRARY_PATH", emu_lib().expect("emulator built"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn fresh(name: &str) -> PathBuf {
    let p = out_dir().join(name);
    let _ = std::fs::remove_file(&p);
    p
}

/// The sessions that were initialised (not the start-time probes), by GPU (`emu.gpu` of their
/// `nvEncOpenEncodeSessionEx`), with their pictures out (`nvEncLockBitstream` SUCCESS).
fn sessions_by_gpu(trace: &Path) -> Vec<(i64, usize)> {
    let gpu: HashMap<u64, i64> = trace_lines(trace, "nvEncOpenEncodeSessionEx")
        .iter()
        .filter(|l| l["status"] == "NV_ENC_SUCCESS")
        .filter_map(|l| Some((l["session"].as_u64()?, l["args"]["emu.gpu"].as_i64()?)))
        .collect();
    let mut out = HashMap::<u64, usize>::new();
    for l in trace_lines(trace, "nvEncLockBitstream") {
        if l["status"] == "NV_ENC_SUCCESS"
            && let Some(s) = l["session"].as_u64()
        {
            *out.entry(s).or_default() += 1;
        }
    }
    let mut v: Vec<(i64, usize)> = trace_lines(trace, "nvEncInitializeEncoder")
        .iter()
        .filter(|l| l["status"] == "NV_ENC_SUCCESS")
        .filter_map(|l| l["session"].as_u64())
        .map(|s| {
            (
                gpu.get(&s).copied().unwrap_or(-1),
                out.get(&s).copied().unwrap_or(0),
            )
        })
        .collect();
    v.sort_unstable();
    v
}

/// 2 emulated GPUs capped at 8 sessions each, 14 encoders with automatic placement in two
/// processes (7 each, the second started once the first's sessions are open): all 14 run, 7
/// per GPU (from the traces), every frame out.
#[test]
fn fourteen_sessions_over_two_gpus_in_two_processes() {
    need_emulator!();
    let frames = 120;
    let system = fresh("placement-14.system");
    let mut pipeline = format!(
        "videotestsrc is-live=true num-buffers={frames} ! video/x-raw,format=NV12,width=320,height=240,framerate=30/1 ! tee name=t"
    );
    for _ in 0..7 {
        pipeline.push_str(" t. ! queue ! rsnvench264enc cuda-device-id=-1 ! fakesink sync=false");
    }
    let start = |name: &str| -> (Child, PathBuf) {
        let trace = fresh(&format!("placement-14-{name}.trace"));
        let mut cmd = gst(
            &pipeline,
            &[
                ("NVEMU_GPU_COUNT", "2"),
                ("NVEMU_SESSION_LIMIT", "8"),
                ("NVEMU_BACKEND", "null"),
                ("NVEMU_SYSTEM", system.to_str().unwrap()),
                ("NVEMU_TRACE", trace.to_str().unwrap()),
            ],
        );
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        (cmd.spawn().expect("gst-launch-1.0"), trace)
    };
    let (mut a, trace_a) = start("a");
    // The second process starts once the first's seven sessions are initialised.
    let t0 = Instant::now();
    while trace_lines(&trace_a, "nvEncInitializeEncoder").len() < 7 {
        assert!(t0.elapsed() < LIMIT, "process A did not open 7 sessions");
        assert!(a.try_wait().unwrap().is_none(), "process A ended early");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (mut b, trace_b) = start("b");
    let wait = |c: &mut Child, what: &str| -> Output {
        let t0 = Instant::now();
        while c.try_wait().unwrap().is_none() {
            if t0.elapsed() > LIMIT {
                let _ = c.kill();
                panic!("{what} hung");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut err = String::new();
        use std::io::Read;
        c.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        let status = c.wait().unwrap();
        assert!(status.success(), "{what}: {status}: {err}");
        Output {
            status,
            stdout: Vec::new(),
            stderr: err.into_bytes(),
        }
    };
    wait(&mut a, "process A");
    wait(&mut b, "process B");
    assert_no_violation(&trace_a);
    assert_no_violation(&trace_b);
    let mut per_gpu = [0usize; 2];
    for trace in [&trace_a, &trace_b] {
        let s = sessions_by_gpu(trace);
        assert_eq!(s.len(), 7, "{}: 7 sessions", trace.display());
        for (gpu, out) in s {
            assert_eq!(out, frames, "{}: every frame out", trace.display());
            per_gpu[gpu as usize] += 1;
        }
    }
    assert_eq!(per_gpu, [7, 7], "7 sessions per GPU");
    // No session was refused by the cap.
    for trace in [&trace_a, &trace_b] {
        let refused = trace_lines(trace, "nvEncOpenEncodeSessionEx")
            .iter()
            .filter(|l| l["status"] == "NV_ENC_ERR_OUT_OF_MEMORY")
            .count();
        assert_eq!(refused, 0, "{}", trace.display());
    }
}

/// 3 GPUs where the first answers the session cap (its first `nvEncOpenEncodeSessionEx`
/// answers OUT_OF_MEMORY): the session opens on the next, with a warning naming both; with
/// automatic placement and with the default `cuda-device-id=0` alike.
#[test]
fn a_gpu_at_its_cap_passes_the_session_on() {
    need_emulator!();
    for (case, prop) in [("auto", "cuda-device-id=-1"), ("fixed", "")] {
        let trace = fresh(&format!("placement-cap-{case}.trace"));
        let cmd = gst(
            &format!(
                "videotestsrc num-buffers=10 ! video/x-raw,format=NV12,width=320,height=240 ! rsnvench265enc {prop} ! fakesink"
            ),
            &[
                ("NVEMU_GPU_COUNT", "3"),
                ("NVEMU_TRACE", trace.to_str().unwrap()),
                (
                    "NVEMU_FAULT",
                    "nvEncOpenEncodeSessionEx:1:NV_ENC_ERR_OUT_OF_MEMORY",
                ),
            ],
        );
        let o = run_bounded(cmd, LIMIT);
        let t = text(&o);
        assert!(o.status.success(), "{case}: {t}");
        assert_eq!(sessions_by_gpu(&trace), vec![(1, 10)], "{case}: on GPU 1");
        assert!(
            t.contains("GPU 0") && t.contains("refused the session (session-limit)"),
            "{case}: the warning names GPU 0: {t}"
        );
        assert!(t.contains("it is on GPU 1"), "{case}: and GPU 1: {t}");
    }
}

/// Upstream CUDA memory on GPU 1 with automatic placement: the session is on GPU 1 and reads
/// the memory in place (no copy between contexts or GPUs, no system-memory input).
#[test]
fn upstream_cuda_memory_keeps_its_gpu() {
    need_emulator!();
    let n = 20;
    let trace = fresh("placement-upstream.trace");
    let cmd = gst(
        &format!(
            "videotestsrc num-buffers={n} ! video/x-raw,format=NV12,width=320,height=240 ! cudaupload cuda-device-id=1 ! video/x-raw(memory:CUDAMemory) ! rsnvench264enc cuda-device-id=-1 ! fakesink"
        ),
        &[
            ("NVEMU_GPU_COUNT", "2"),
            ("NVEMU_TRACE", trace.to_str().unwrap()),
        ],
    );
    let o = run_bounded(cmd, LIMIT);
    assert!(o.status.success(), "{}", text(&o));
    assert_no_violation(&trace);
    assert_eq!(
        sessions_by_gpu(&trace),
        vec![(1, n)],
        "the session is on GPU 1"
    );
    assert_eq!(
        trace_lines(&trace, "cuMemcpy3DPeer").len(),
        0,
        "no copy between contexts"
    );
    assert_eq!(
        trace_lines(&trace, "cuMemcpy2DAsync_v2")
            .iter()
            .filter(|l| l["kind"] == "DtoD")
            .count(),
        0
    );
    assert_eq!(
        trace_lines(&trace, "nvEncLockInputBuffer").len(),
        0,
        "no system-memory input"
    );
    assert_eq!(
        trace_lines(&trace, "nvEncMapInputResource").len(),
        n,
        "read in place"
    );
}
