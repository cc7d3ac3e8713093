// SPDX-License-Identifier: MPL-2.0
//! Third-party NVENC clients on the stand-ins: Debian 12's FFmpeg 5.1 (`hevc_nvenc`,
//! `h264_nvenc`) and GStreamer 1.22's nvcodec (`nvcudah265enc`, `nvcudah264enc`), both built for
//! NVENC API 11.1. They test the emulator (that real clients work on it, keep to the API
//! contract, and get what NVENC gives them), not the plugin. They run the clients as child
//! processes with `LD_LIBRARY_PATH` at `target/nvemu/lib` (made by `scripts/build-emulator`;
//! without it they skip with a message). They are not skipped when a client is missing:
//! `scripts/install-deps` installs them.

mod common;
use common::tools::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// Runs `gst-launch-1.0 -q pipeline` with the stand-ins first in the library path,
/// `NVEMU_STRICT=abort`, the registry `registry` and the trace in `target/e2e/<name>.trace`;
/// checks the trace has no contract violation.
fn gst_launch_traced(pipeline: &str, name: &str, registry: &str) -> (Output, PathBuf) {
    let trace = out_dir().join(format!("{name}.trace"));
    let _ = std::fs::remove_file(&trace);
    let mut cmd = Command::new("gst-launch-1.0");
    cmd.arg("-q")
        .args(pipeline.split_whitespace())
        .env("GST_REGISTRY", registry)
        .env("LD_LIBRARY_PATH", emu_lib().expect("emulator built"))
        .env("NVEMU_STRICT", "abort")
        .env("NVEMU_TRACE", &trace);
    let o = run_bounded(cmd, Duration::from_secs(120));
    assert_no_violation(&trace);
    (o, trace)
}

/// Frames each third-party case encodes (320x240, 25 fps, 2 B-frames).
const THIRD_PARTY_FRAMES: usize = 30;

/// Runs Debian's `ffmpeg` with the stand-ins first in the library path, `NVEMU_STRICT=abort`
/// and the trace in `target/e2e/<name>.trace`.
fn ffmpeg_traced(args: &[&str], name: &str) -> (Output, PathBuf) {
    let trace = out_dir().join(format!("{name}.trace"));
    let _ = std::fs::remove_file(&trace);
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-y"]).args(args);
    cmd.env("LD_LIBRARY_PATH", emu_lib().expect("emulator built"));
    cmd.env("NVEMU_STRICT", "abort");
    cmd.env("NVEMU_TRACE", &trace);
    (run_bounded(cmd, Duration::from_secs(120)), trace)
}

/// FFmpeg must have the encoder: a missing one fails the test (CI installs Debian's ffmpeg).
fn require_ffmpeg_encoder(encoder: &str) {
    let o = Command::new("ffmpeg")
        .args(["-hide_banner", "-encoders"])
        .output()
        .expect("ffmpeg is not installed (scripts/install-deps installs Debian's ffmpeg)");
    let list = String::from_utf8_lossy(&o.stdout);
    assert!(
        list.lines()
            .any(|l| l.split_whitespace().nth(1) == Some(encoder)),
        "this ffmpeg has no {encoder} encoder (Debian 12's ffmpeg 5.1 has it; scripts/install-deps)"
    );
}

/// What the trace of a third-party client run must show: API 11.1 negotiated (every session),
/// no contract violation and no emulator note, `frames` pictures submitted (EncodePicture
/// without EOS) and locked, IDR first, B pictures (frameIntervalP 3), EOS sent.
fn check_third_party_trace(trace: &Path, frames: usize) {
    let all = std::fs::read_to_string(trace)
        .unwrap_or_else(|e| panic!("no trace {}: {e}", trace.display()));
    assert_no_violation(trace);
    assert!(
        !all.contains("emulator_note"),
        "the emulator had to deviate from NVENC (see {})",
        trace.display()
    );
    let opens = trace_lines(trace, "nvEncOpenEncodeSessionEx");
    assert!(!opens.is_empty(), "no session opened");
    for o in &opens {
        assert_eq!(o["status"], "NV_ENC_SUCCESS", "{o}");
        assert_eq!(o["api"], "11.1", "negotiated API: {o}");
        assert_eq!(
            o["args"]["version"], "0x7101000b",
            "11.1 struct version: {o}"
        );
        assert_eq!(o["args"]["apiVersion"], 0x0100_000b, "apiVersion 11.1: {o}");
    }
    let nvenc: Vec<serde_json::Value> = all
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["lib"] == "nvenc" && v["session"].is_u64())
        .collect();
    assert!(
        nvenc.iter().all(|v| v["api"] == "11.1"),
        "a session call not in API 11.1"
    );
    let init = trace_lines(trace, "nvEncInitializeEncoder");
    assert_eq!(init.len(), 1, "one encoder initialised");
    assert_eq!(init[0]["status"], "NV_ENC_SUCCESS");
    assert_eq!(
        init[0]["args"]["version"], "0xf105000b",
        "11.1 INITIALIZE_PARAMS"
    );
    assert_eq!(
        init[0]["args"]["encodeConfig.version"], "0xf107000b",
        "11.1 CONFIG"
    );
    assert_eq!(
        init[0]["args"]["encodeConfig.frameIntervalP"], 3,
        "2 B-frames"
    );
    let encodes = trace_lines(trace, "nvEncEncodePicture");
    let (eos, pics): (Vec<_>, Vec<_>) = encodes
        .iter()
        .partition(|l| l["args"]["encodePicFlags"].as_u64().unwrap_or(0) & 8 != 0);
    assert_eq!(pics.len(), frames, "pictures submitted");
    assert!(
        pics.iter().all(|l| l["args"]["version"] == "0xf104000b"),
        "11.1 PIC_PARAMS"
    );
    assert!(
        pics.iter()
            .all(|l| l["status"] == "NV_ENC_SUCCESS" || l["status"] == "NV_ENC_ERR_NEED_MORE_INPUT"),
        "EncodePicture failed"
    );
    assert!(
        pics.iter()
            .any(|l| l["status"] == "NV_ENC_ERR_NEED_MORE_INPUT"),
        "no frame waited as a future B-frame"
    );
    assert!(!eos.is_empty(), "no EOS sent");
    assert!(
        eos.iter().all(|l| l["status"] == "NV_ENC_SUCCESS"),
        "EOS failed"
    );
    let types: Vec<u64> = trace_lines(trace, "nvEncLockBitstream")
        .iter()
        .filter(|l| l["status"] == "NV_ENC_SUCCESS")
        .filter_map(|l| l["args"]["out.pictureType"].as_u64())
        .collect();
    assert_eq!(types.len(), frames, "pictures locked: {types:?}");
    assert_eq!(types[0], 3, "IDR first: {types:?}");
    // NV_ENC_PIC_TYPE_B = 1
    let b = types.iter().filter(|&&t| t == 1).count();
    assert!(b >= frames / 2, "B pictures: {types:?}");
}

/// What the output file must show: `frames` frames decoded by FFmpeg (without a decoding
/// error), B pictures in the stream, the codec and profile, DTS increasing and never after PTS.
fn check_third_party_output(out: &Path, frames: usize, codec: &str, profile: &str) {
    let (n, w, h) = decoded_frames_and_size(out);
    assert_eq!(n as usize, frames, "frames decoded");
    assert_eq!((w, h), (320, 240));
    let info = ffprobe(
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name,profile",
            "-of",
            "csv=p=0",
        ],
        out,
    );
    assert_eq!(info.trim(), format!("{codec},{profile}"));
    let o = Command::new("ffmpeg")
        .args(["-v", "error", "-xerror", "-i"])
        .arg(out)
        .args(["-f", "null", "-"])
        .output()
        .expect("run ffmpeg");
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "decoding failed: {}",
        text(&o)
    );
    let types = ffprobe(
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "frame=pict_type",
            "-of",
            "csv=p=0",
        ],
        out,
    );
    let b = types.lines().filter(|l| l.starts_with('B')).count();
    assert!(b >= frames / 2, "B frames decoded: {types}");
    let pk = packets(out);
    assert_eq!(pk.len(), frames, "packets");
    assert!(
        pk.windows(2).all(|w| w[0].1 < w[1].1),
        "DTS not strictly increasing: {pk:?}"
    );
    assert!(
        pk.iter().all(|p| p.1 <= p.0 + 1e-6),
        "DTS after PTS: {pk:?}"
    );
    assert!(pk.iter().any(|p| p.1 < p.0 - 1e-6), "no reordering: {pk:?}");
}

fn ffmpeg_nvenc_case(encoder: &str, codec: &str, profile: &str) {
    require_ffmpeg_encoder(encoder);
    let out = out_dir().join(format!("ffmpeg-{encoder}.mp4"));
    let _ = std::fs::remove_file(&out);
    let frames = THIRD_PARTY_FRAMES.to_string();
    let (o, trace) = ffmpeg_traced(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25",
            "-frames:v",
            &frames,
            "-c:v",
            encoder,
            "-bf",
            "2",
            out.to_str().unwrap(),
        ],
        &format!("ffmpeg-{encoder}"),
    );
    assert!(o.status.success(), "ffmpeg {encoder} failed: {}", text(&o));
    check_third_party_trace(&trace, THIRD_PARTY_FRAMES);
    check_third_party_output(&out, THIRD_PARTY_FRAMES, codec, profile);
}

/// FFmpeg 5.1's `hevc_nvenc` (API 11.1) with 2 B-frames through the stand-ins.
#[test]
fn ffmpeg_hevc_nvenc_api_11_1() {
    need_emulator!();
    ffmpeg_nvenc_case("hevc_nvenc", "hevc", "Main");
}

/// FFmpeg 5.1's `h264_nvenc` (API 11.1, default profile Main) with 2 B-frames.
#[test]
fn ffmpeg_h264_nvenc_api_11_1() {
    need_emulator!();
    ffmpeg_nvenc_case("h264_nvenc", "h264", "Main");
}

/// GStreamer 1.22's nvcodec element through the stand-ins, with a registry of its own (nvcodec
/// registers its NVENC elements only when the NVENC library and a CUDA device are found at
/// scan time, so a registry scanned without the stand-ins would lack them).
fn gst_nvcodec_case(element: &str, parser: &str, codec: &str, profile: &str) {
    let registry = out_dir().join(format!("registry-{element}-{}.bin", std::process::id()));
    let _ = std::fs::remove_file(&registry);
    let reg = registry.to_str().unwrap();
    let mut cmd = Command::new("gst-inspect-1.0");
    cmd.arg(element)
        .env("GST_REGISTRY", reg)
        .env("LD_LIBRARY_PATH", emu_lib().expect("emulator built"))
        .env("NVEMU_STRICT", "abort");
    let o = run_bounded(cmd, Duration::from_secs(120));
    assert!(
        o.status.success(),
        "GStreamer has no {element} on the stand-ins (gstreamer1.0-plugins-bad's nvcodec, installed by scripts/install-deps, registers it when libnvidia-encode.so.1 and a CUDA device are found): {}",
        text(&o)
    );
    let out = out_dir().join(format!("gst-{element}.mp4"));
    let _ = std::fs::remove_file(&out);
    let pipeline = format!(
        "videotestsrc num-buffers={THIRD_PARTY_FRAMES} ! video/x-raw,format=NV12,width=320,height=240,framerate=25/1 ! {element} b-frames=2 ! {parser} ! mp4mux ! filesink location={}",
        out.display()
    );
    let (o, trace) = gst_launch_traced(&pipeline, &format!("gst-{element}"), reg);
    assert!(o.status.success(), "{element} failed: {}", text(&o));
    check_third_party_trace(&trace, THIRD_PARTY_FRAMES);
    check_third_party_output(&out, THIRD_PARTY_FRAMES, codec, profile);
    let _ = std::fs::remove_file(&registry);
}

/// GStreamer 1.22's `nvcudah265enc` (API 11.1) with `b-frames=2` through the stand-ins.
#[test]
fn gstreamer_nvcudah265enc_api_11_1() {
    need_emulator!();
    gst_nvcodec_case("nvcudah265enc", "h265parse", "hevc", "Main");
}

/// GStreamer 1.22's `nvcudah264enc` (API 11.1, Main profile) with `b-frames=2`.
#[test]
fn gstreamer_nvcudah264enc_api_11_1() {
    need_emulator!();
    gst_nvcodec_case("nvcudah264enc", "h264parse", "h264", "Main");
}

/// A registry scanned with the stand-ins, in which `element` (nvcodec) exists.
fn nvcodec_registry(element: &str, tag: &str) -> PathBuf {
    let registry = out_dir().join(format!("registry-{tag}-{}.bin", std::process::id()));
    let _ = std::fs::remove_file(&registry);
    let mut cmd = Command::new("gst-inspect-1.0");
    cmd.arg(element)
        .env("GST_REGISTRY", &registry)
        .env("LD_LIBRARY_PATH", emu_lib().expect("emulator built"));
    let o = run_bounded(cmd, Duration::from_secs(120));
    assert!(
        o.status.success(),
        "GStreamer has no {element} on the stand-ins: {}",
        text(&o)
    );
    registry
}

/// The `key value` lines of an `NVEMU_STATS` file, summed over blocks (both stand-ins).
fn read_stats(path: &Path) -> std::collections::HashMap<String, f64> {
    let mut m = std::collections::HashMap::new();
    for l in std::fs::read_to_string(path).unwrap_or_default().lines() {
        let mut w = l.split_whitespace();
        if let (Some(k), Some(v)) = (w.next(), w.next().and_then(|v| v.parse::<f64>().ok())) {
            *m.entry(k.to_string()).or_insert(0.0) += v;
        }
    }
    m
}

/// What the trace says of the timing of each locked picture, for a client run with a fixed
/// engine time of `ms` per picture on one engine: a lock never returns before its picture is
/// done; each picture is done at least `ms` after it was submitted and `ms` after the previous
/// one (the session's pictures run one after the other on its engine); the run from the first
/// submission to the last lock lasts at least `n` x `ms`. And the measuring window of
/// `NVEMU_STATS` never shows more than the engine's limit.
fn check_engine_limit(trace: &Path, stats: &Path, n: usize, ms: f64, what: &str) {
    let busy = (ms * 1e6) as u64;
    let locks: Vec<_> = trace_lines(trace, "nvEncLockBitstream")
        .into_iter()
        .filter(|l| l["status"] == "NV_ENC_SUCCESS")
        .collect();
    assert_eq!(locks.len(), n, "{what}: pictures locked");
    let g = |l: &serde_json::Value, k: &str| {
        l["args"][k]
            .as_u64()
            .unwrap_or_else(|| panic!("{what}: lock without {k}: {l}"))
    };
    let mut prev_ready = None;
    for l in &locks {
        let (t, sub, ready) = (
            l["t_ns"].as_u64().unwrap(),
            g(l, "emu.submit_ns"),
            g(l, "emu.ready_ns"),
        );
        assert_eq!(g(l, "emu.busy_ns"), busy, "{what}: engine time per picture");
        assert!(
            t >= ready,
            "{what}: lock at {t} before the picture was done at {ready}"
        );
        assert!(
            ready >= sub + busy,
            "{what}: done {ready} less than {busy} ns after its submission {sub}"
        );
        if let Some(p) = prev_ready {
            assert!(
                ready >= p + busy,
                "{what}: done {ready} less than {busy} ns after the previous picture ({p})"
            );
        }
        prev_ready = Some(ready);
    }
    let first_submit = trace_lines(trace, "nvEncEncodePicture")
        .iter()
        .filter_map(|l| l["t_ns"].as_u64())
        .min()
        .unwrap();
    let last_lock = locks
        .iter()
        .filter_map(|l| l["t_ns"].as_u64())
        .max()
        .unwrap();
    assert!(
        (last_lock - first_submit) as f64 >= n as f64 * ms * 1e6,
        "{what}: {n} pictures in {} ms, under {n} x {ms} ms",
        (last_lock - first_submit) as f64 / 1e6
    );
    let s = read_stats(stats);
    let fps = s["window_pictures"] / (s["window_wall_ns"] / 1e9);
    assert!(
        fps <= 1000.0 / ms * 1.001,
        "{what}: the NVEMU_STATS window shows {fps:.1} fps, past the engine's {:.1}",
        1000.0 / ms
    );
    assert_eq!(s["pictures"] as usize, n, "{what}: NVEMU_STATS pictures");
}

/// Runs `program args` with the stand-ins (null backend, NVEMU_ENCODE_MS=`ms`, strict), the
/// trace and `NVEMU_STATS` in target/e2e; returns (trace, stats).
fn run_timed(
    program: &str,
    args: &[&str],
    name: &str,
    ms: &str,
    registry: Option<&Path>,
) -> (PathBuf, PathBuf) {
    let trace = out_dir().join(format!("{name}.trace"));
    let stats = out_dir().join(format!("{name}.stats"));
    let _ = std::fs::remove_file(&trace);
    let _ = std::fs::remove_file(&stats);
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env("LD_LIBRARY_PATH", emu_lib().expect("emulator built"))
        .env("NVEMU_STRICT", "abort")
        .env("NVEMU_BACKEND", "null")
        .env("NVEMU_ENCODE_MS", ms)
        .env("NVEMU_TRACE", &trace)
        .env("NVEMU_STATS", &stats);
    if let Some(r) = registry {
        cmd.env("GST_REGISTRY", r);
    }
    let o = run_bounded(cmd, Duration::from_secs(180));
    assert!(o.status.success(), "{name} failed: {}", text(&o));
    assert_no_violation(&trace);
    (trace, stats)
}

/// The timing model holds for the third-party clients at 2160p (issue 15: a benchmark showed
/// nvcudah265enc at 120-132% of the modelled limit there): nvcudah265enc from system memory
/// and from CUDA memory, and FFmpeg's hevc_nvenc, 40 pictures of 8 ms each. The trace and the
/// NVEMU_STATS window show every picture after its engine time; the former figures came from
/// the benchmark's difference of two process wall times (start-up noise), not the model.
#[test]
fn timing_model_holds_for_third_party_clients_at_2160p() {
    need_emulator!();
    let n = 40;
    let registry = nvcodec_registry("nvcudah265enc", "timing2160");
    let caps = "video/x-raw,format=NV12,width=3840,height=2160,framerate=240/1";
    for (name, up) in [
        ("timing2160-nvcuda-system", ""),
        (
            "timing2160-nvcuda-cuda",
            "cudaupload ! video/x-raw(memory:CUDAMemory) !",
        ),
    ] {
        let pipeline = format!(
            "-q videotestsrc pattern=black num-buffers={n} ! {caps} ! {up} nvcudah265enc ! fakesink"
        );
        let args: Vec<&str> = pipeline.split_whitespace().collect();
        let (trace, stats) = run_timed("gst-launch-1.0", &args, name, "8", Some(&registry));
        check_engine_limit(&trace, &stats, n, 8.0, name);
    }
    require_ffmpeg_encoder("hevc_nvenc");
    let frames = n.to_string();
    let (trace, stats) = run_timed(
        "ffmpeg",
        &[
            "-nostdin",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "color=c=black:s=3840x2160:r=240,format=nv12",
            "-frames:v",
            &frames,
            "-c:v",
            "hevc_nvenc",
            "-bf",
            "0",
            "-f",
            "null",
            "-",
        ],
        "timing2160-ffmpeg",
        "8",
        None,
    );
    check_engine_limit(&trace, &stats, n, 8.0, "timing2160-ffmpeg");
    let _ = std::fs::remove_file(&registry);
}

/// `NVEMU_STATS` reports both stand-ins' own CPU time: a short nvcudah265enc run from CUDA
/// memory (cudaupload's upload is a pageable host-to-device copy in the CUDA stand-in) has
/// nonzero entry-point calls and CPU for both, nonzero copy CPU, the window's fields, and the
/// stand-ins' CPU below the process's.
#[test]
fn stats_report_entry_point_and_copy_cpu() {
    need_emulator!();
    let n = 30;
    let registry = nvcodec_registry("nvcudah265enc", "stats");
    let pipeline = format!(
        "-q videotestsrc pattern=black num-buffers={n} ! video/x-raw,format=NV12,width=1280,height=720,framerate=240/1 ! cudaupload ! video/x-raw(memory:CUDAMemory) ! nvcudah265enc ! fakesink"
    );
    let args: Vec<&str> = pipeline.split_whitespace().collect();
    let (_, stats) = run_timed(
        "gst-launch-1.0",
        &args,
        "stats-nvcuda",
        "1",
        Some(&registry),
    );
    let s = read_stats(&stats);
    for k in [
        "nvenc_calls",
        "nvenc_cpu_ns",
        "cuda_calls",
        "cuda_cpu_ns",
        "copy_pageable_htod_cpu_ns",
        "window_pictures",
        "window_wall_ns",
        "window_process_cpu_ns",
        "window_nvenc_cpu_ns",
        "window_cuda_cpu_ns",
        "window_copy_pageable_htod_cpu_ns",
        "acct_read_cost_ns",
    ] {
        assert!(
            s.get(k).copied().unwrap_or(0.0) > 0.0,
            "{k} missing or 0: {s:?}"
        );
    }
    assert_eq!(s["pictures"] as usize, n);
    assert_eq!(s["window_pictures"] as usize, n);
    // Copies are part of the entry points' CPU; the stand-ins' CPU is part of the process's.
    assert!(
        s["window_copy_pageable_htod_cpu_ns"] <= s["window_cuda_cpu_ns"],
        "{s:?}"
    );
    assert!(
        s["window_nvenc_cpu_ns"] + s["window_cuda_cpu_ns"] <= s["window_process_cpu_ns"],
        "{s:?}"
    );
    let _ = std::fs::remove_file(&registry);
}
