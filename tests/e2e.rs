// SPDX-License-Identifier: MPL-2.0
//! End-to-end tests: the real clip (cityCC0.mpg, 720x405, 25 fps, 190 frames) decoded by
//! `decodebin`, encoded by our elements through the NVENC emulator, muxed by `mp4mux`, then
//! checked with `ffprobe`, decoded by FFmpeg and compared with the source (PSNR); and the
//! emulator's trace checked for what NVENC was told.
//!
//! Each case runs `gst-launch-1.0` as a child process, exactly as a user would, with the
//! freshly built plugin (`target/<profile>/libgstrsnvenc.so`) and the emulator's stand-ins
//! (`target/nvemu/lib`), `NVEMU_STRICT=abort` so that any API contract violation fails the run.
//! `scripts/test` builds both and runs these tests; run alone they skip (with a message) if the
//! emulator is not built.

#[path = "../nvemu/nvenc/tests/common/tools.rs"]
mod tools;
use tools::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

fn plugin_dir() -> PathBuf {
    // The test binary lives in target/<profile>/deps.
    let exe = std::env::current_exe().expect("test exe path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf()
}

fn clip() -> PathBuf {
    let p = root().join("tests/data/cityCC0.mpg");
    if !p.exists() {
        let st = Command::new(root().join("scripts/fetch-test-clip"))
            .status()
            .expect("run scripts/fetch-test-clip");
        assert!(st.success(), "scripts/fetch-test-clip failed");
    }
    p
}

/// Runs gst-launch-1.0 with the emulator first in the library path.
fn gst_launch(pipeline: &str, env: &[(&str, &str)], with_emulator: bool) -> Output {
    gst_launch_limited(pipeline, env, with_emulator, CHILD_LIMIT)
}

fn gst_launch_limited(
    pipeline: &str,
    env: &[(&str, &str)],
    with_emulator: bool,
    limit: Duration,
) -> Output {
    // GStreamer 1.22's gst-launch-1.0 can hang after a pipeline fails at once (its bus sync
    // handler quits the main loop before `g_main_loop_run` has started; docs/verified.md: seen
    // with a plain capsfilter failing negotiation too). A run that printed "doesn't want to
    // preroll" and is still going 20 s later is that hang, not the element's: it is killed and
    // run again (3 tries). Any other run past `limit` fails as before, with every thread's stack.
    for _ in 0..3 {
        let cmd = gst_command(pipeline, env, with_emulator, true);
        let hung_after_error = |stderr: &[u8], running: Duration| {
            running > Duration::from_secs(20)
                && String::from_utf8_lossy(stderr).contains("doesn't want to preroll")
        };
        match run_bounded_unless(cmd, limit, hung_after_error) {
            Some(o) => return o,
            None => eprintln!("gst-launch-1.0 hung after its error (its known race); again"),
        }
    }
    panic!("gst-launch-1.0 {pipeline}: hung after its error 3 times")
}

/// The gst-launch-1.0 command of [`gst_launch_limited`]; `quiet` (`-q`) also hides the
/// elements' warnings, which gst-launch prints on stderr otherwise.
fn gst_command(pipeline: &str, env: &[(&str, &str)], with_emulator: bool, quiet: bool) -> Command {
    let mut cmd = Command::new("gst-launch-1.0");
    if quiet {
        cmd.arg("-q");
    }
    cmd.args(shell_words(pipeline));
    cmd.env("GST_PLUGIN_PATH", plugin_dir());
    cmd.env(
        "GST_REGISTRY",
        out_dir().join(format!("registry-{}.bin", std::process::id())),
    );
    cmd.env("NVEMU_STRICT", "abort");
    if with_emulator {
        let lib = emu_lib().expect("emulator built");
        cmd.env("LD_LIBRARY_PATH", lib);
    } else {
        cmd.env("LD_LIBRARY_PATH", out_dir().join("no-such-dir"));
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// A hung pipeline fails its test (with every thread's backtrace) instead of hanging CI.
const CHILD_LIMIT: Duration = Duration::from_secs(300);

/// Runs `pipeline` with the emulator and `NVEMU_TRACE` set to `target/e2e/<name>.trace` (plus
/// `env`); checks the trace has no contract violation.
fn launch_traced(pipeline: &str, name: &str, env: &[(&str, &str)]) -> (Output, PathBuf) {
    let trace = out_dir().join(format!("{name}.trace"));
    let _ = std::fs::remove_file(&trace);
    let mut all = vec![("NVEMU_TRACE", trace.to_str().unwrap())];
    all.extend_from_slice(env);
    let o = gst_launch_limited(pipeline, &all, true, Duration::from_secs(120));
    assert_no_violation(&trace);
    (o, trace)
}

fn shell_words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

/// Average PSNR (dB, over Y, U and V) of `file` against the source clip, both decoded by
/// FFmpeg, comparing the top 720x404 (crop keeps 4:2:0 rows even).
fn psnr(file: &Path) -> f64 {
    let o = Command::new("ffmpeg")
        .args(["-v", "info", "-nostats", "-i"])
        .arg(file)
        .arg("-i")
        .arg(clip())
        .args([
            "-lavfi",
            "[0:v]crop=720:404:0:0,setpts=PTS-STARTPTS[a];[1:v]crop=720:404:0:0,setpts=PTS-STARTPTS[b];[a][b]psnr",
            "-f",
            "null",
            "-",
        ])
        .output()
        .expect("run ffmpeg");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "ffmpeg psnr failed: {}", text(&o));
    let avg = err
        .lines()
        .filter_map(|l| l.split("average:").nth(1))
        .next_back()
        .unwrap_or_else(|| panic!("no PSNR in ffmpeg output: {err}"));
    let v = avg.split_whitespace().next().unwrap_or("");
    if v == "inf" {
        f64::INFINITY
    } else {
        v.parse().unwrap_or_else(|_| panic!("bad PSNR {avg}"))
    }
}

/// Encodes the real clip with `encoder` (element and properties) into `name`.mp4.
fn encode_clip(encoder: &str, parser: &str, name: &str, env: &[(&str, &str)]) -> (PathBuf, Output) {
    let out = out_dir().join(format!("{name}.mp4"));
    let _ = std::fs::remove_file(&out);
    let pipeline = format!(
        "filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format=NV12 ! {encoder} {parser} ! mp4mux ! filesink location={}",
        clip().display(),
        out.display()
    );
    let o = gst_launch(&pipeline, env, true);
    (out, o)
}

fn check_clip_output(out: &Path, gop: usize, min_psnr: f64) {
    let (frames, w, h) = decoded_frames_and_size(out);
    assert_eq!(frames, 190, "frames out != frames in");
    assert_eq!(w, 720);
    // AV1 carries 405 exactly; H.265 4:2:0 can only crop in 2-row units: 406 coded+cropped.
    assert!(h == 405 || h == 406, "height {h}");
    let pk = packets(out);
    assert_eq!(pk.len(), 190, "packets");
    let mut pts: Vec<f64> = pk.iter().map(|p| p.0).collect();
    let dts: Vec<f64> = pk.iter().map(|p| p.1).collect();
    assert!(
        dts.windows(2).all(|w| w[0] < w[1]),
        "DTS not strictly increasing: {dts:?}"
    );
    pts.sort_by(|a, b| a.total_cmp(b));
    assert!(pts.windows(2).all(|w| w[0] < w[1]), "duplicate PTS");
    // Keyframes exactly where gop-size puts them (display order).
    let mut by_pts: Vec<(f64, bool)> = pk.iter().map(|p| (p.0, p.2)).collect();
    by_pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let keys: Vec<usize> = by_pts
        .iter()
        .enumerate()
        .filter(|(_, p)| p.1)
        .map(|(i, _)| i)
        .collect();
    let expected: Vec<usize> = (0..190).step_by(gop).collect();
    assert_eq!(keys, expected, "keyframe positions");
    let p = psnr(out);
    eprintln!("{}: PSNR {p:.2} dB", out.display());
    assert!(p >= min_psnr, "PSNR {p:.2} dB < {min_psnr} dB");
}

#[test]
fn av1_real_clip_to_mp4() {
    need_emulator!();
    let trace = out_dir().join("av1-clip.trace");
    let _ = std::fs::remove_file(&trace);
    let (out, o) = encode_clip(
        "rsnvencav1enc rc-mode=constqp qp-const-i=60 qp-const-p=60 qp-const-b=60 gop-size=30",
        "",
        "av1-clip",
        &[("NVEMU_TRACE", trace.to_str().unwrap())],
    );
    assert!(o.status.success(), "pipeline failed: {}", text(&o));
    assert_no_violation(&trace);
    check_clip_output(&out, 30, 35.0);
    let codec = ffprobe(
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name",
            "-of",
            "csv=p=0",
        ],
        &out,
    );
    assert_eq!(codec.trim(), "av1");
}

#[test]
fn h265_real_clip_to_mp4() {
    need_emulator!();
    let trace = out_dir().join("h265-clip.trace");
    let _ = std::fs::remove_file(&trace);
    let (out, o) = encode_clip(
        "rsnvench265enc rc-mode=constqp qp-const-i=20 qp-const-p=20 qp-const-b=20 gop-size=30",
        "",
        "h265-clip",
        &[("NVEMU_TRACE", trace.to_str().unwrap())],
    );
    assert!(o.status.success(), "pipeline failed: {}", text(&o));
    assert_no_violation(&trace);
    check_clip_output(&out, 30, 35.0);
}

#[test]
fn h265_real_clip_through_h265parse_with_bframes() {
    need_emulator!();
    let trace = out_dir().join("h265-bframes.trace");
    let _ = std::fs::remove_file(&trace);
    let (out, o) = encode_clip(
        "rsnvench265enc rc-mode=constqp qp-const-i=20 qp-const-p=22 qp-const-b=24 gop-size=30 bframes=2",
        "! h265parse",
        "h265-bframes",
        &[("NVEMU_TRACE", trace.to_str().unwrap())],
    );
    assert!(o.status.success(), "pipeline failed: {}", text(&o));
    assert_no_violation(&trace);
    let init = trace_lines(&trace, "nvEncInitializeEncoder");
    assert_eq!(
        init[0]["args"]["encodeConfig.frameIntervalP"], 3,
        "bframes=2"
    );
    let types: Vec<u64> = trace_lines(&trace, "nvEncLockBitstream")
        .iter()
        .filter_map(|l| l["args"]["out.pictureType"].as_u64())
        .collect();
    assert_eq!(types.len(), 190, "every frame locked once");
    // NV_ENC_PIC_TYPE_B = 1: the B-frames NVENC decided (PTD) came out as B pictures.
    assert!(
        types.iter().filter(|&&t| t == 1).count() >= 100,
        "B pictures: {types:?}"
    );
    let text = std::fs::read_to_string(&trace).unwrap();
    assert!(
        !text.contains("emulator_note"),
        "the emulator had to deviate from NVENC (see the trace)"
    );
    check_clip_output(&out, 30, 35.0);
    // Reordered: some packet has DTS < PTS, and DTS never exceeds PTS.
    let pk = packets(&out);
    assert!(pk.iter().any(|p| p.1 < p.0 - 1e-6), "no reordering seen");
    assert!(pk.iter().all(|p| p.1 <= p.0 + 1e-6), "DTS after PTS");
}

/// The expected `NV_ENC_INITIALIZE_PARAMS_VER` for each API version (from the SDK headers).
const INIT_VERS: [(&str, &str); 3] = [
    ("12.1", "0xf106000c"),
    ("12.2", "0xf207000c"),
    ("13.0", "0xf007000d"),
];

#[test]
fn properties_reach_nvenc_for_every_api_version() {
    need_emulator!();
    for (api, init_ver) in INIT_VERS {
        for (element, codec_cfg, codec_guid) in [
            ("rsnvench265enc", "hevcConfig", "NV_ENC_CODEC_HEVC_GUID"),
            ("rsnvencav1enc", "av1Config", "NV_ENC_CODEC_AV1_GUID"),
            ("rsnvench264enc", "h264Config", "NV_ENC_CODEC_H264_GUID"),
        ] {
            let pipeline = format!(
                "videotestsrc num-buffers=20 ! video/x-raw,format=NV12,width=320,height=240,framerate=25/1 ! {element} preset=p3 tune=low-latency rc-mode=cbr bitrate=1500 max-bitrate=3000 gop-size=12 bframes=0 ! fakesink"
            );
            let name = format!("props-{element}-{api}");
            let (o, trace) = launch_traced(&pipeline, &name, &[("NVEMU_MAX_API", api)]);
            assert!(o.status.success(), "{element} API {api}: {}", text(&o));
            let init = trace_lines(&trace, "nvEncInitializeEncoder");
            assert_eq!(init.len(), 1, "{element} API {api}: one initialize");
            let a = &init[0]["args"];
            let cfg = |k: &str| a[format!("encodeConfig.{k}")].clone();
            assert_eq!(init[0]["status"], "NV_ENC_SUCCESS");
            assert_eq!(a["version"], init_ver, "{element} API {api}");
            assert_eq!(a["encodeGUID"], codec_guid);
            assert_eq!(a["presetGUID"], "NV_ENC_PRESET_P3_GUID");
            assert_eq!(a["tuningInfo"], 2, "low-latency tuning");
            assert_eq!(a["enablePTD"], 1);
            assert_eq!(a["encodeWidth"], 320);
            assert_eq!(cfg("rcParams.rateControlMode"), 2, "CBR");
            assert_eq!(cfg("rcParams.averageBitRate"), 1500 * 1024);
            assert_eq!(cfg("rcParams.maxBitRate"), 3000 * 1024);
            assert_eq!(cfg("gopLength"), 12);
            assert_eq!(cfg("frameIntervalP"), 1, "bframes=0");
            assert_eq!(cfg(&format!("encodeCodecConfig.{codec_cfg}.idrPeriod")), 12);
            // The config was taken from the driver's preset (P3, low-latency) first, in the same
            // session, then changed: never a zeroed config.
            let presets = trace_lines(&trace, "nvEncGetEncodePresetConfigEx");
            let preset = presets
                .iter()
                .rfind(|l| {
                    l["session"] == init[0]["session"]
                        && l["seq"].as_u64() < init[0]["seq"].as_u64()
                })
                .unwrap_or_else(|| {
                    panic!("{element} API {api}: no preset config before initialize")
                });
            assert_eq!(preset["args"]["presetGUID"], "NV_ENC_PRESET_P3_GUID");
            assert_eq!(preset["args"]["tuningInfo"], 2);
            assert_eq!(preset["status"], "NV_ENC_SUCCESS");
            let enc = trace_lines(&trace, "nvEncEncodePicture");
            assert!(enc.len() >= 20, "every frame encoded (+EOS)");
            let locks = trace_lines(&trace, "nvEncLockBitstream");
            assert_eq!(locks.len(), 20, "every frame's bitstream locked once");
        }
    }
}

#[test]
fn api_12_0_driver_gives_minimum_driver_error() {
    need_emulator!();
    let o = gst_launch(
        "videotestsrc num-buffers=5 ! video/x-raw,format=NV12 ! rsnvench265enc ! fakesink",
        &[("NVEMU_MAX_API", "12.0")],
        true,
    );
    let t = text(&o);
    assert!(
        matches!(o.status.code(), Some(c) if c != 0),
        "non-zero exit, not a crash: {t}"
    );
    assert!(t.contains("530.41"), "{t}");
    assert!(t.contains("12.0"), "{t}");
}

#[test]
fn gpu_without_nvenc_gives_clear_error() {
    need_emulator!();
    let o = gst_launch(
        "videotestsrc num-buffers=5 ! video/x-raw,format=NV12 ! rsnvencav1enc ! fakesink",
        &[("NVEMU_GPU", "no-nvenc")],
        true,
    );
    let t = text(&o);
    assert!(
        matches!(o.status.code(), Some(c) if c != 0),
        "non-zero exit, not a crash: {t}"
    );
    assert!(t.contains("has no NVENC"), "{t}");
    assert!(t.contains("H100"), "names the GPU: {t}");
    assert!(t.contains("NV_ENC_ERR_UNSUPPORTED_DEVICE"), "{t}");
}

#[test]
fn missing_library_gives_clear_error() {
    let o = gst_launch(
        "videotestsrc num-buffers=5 ! video/x-raw,format=NV12 ! rsnvench265enc ! fakesink",
        &[],
        false,
    );
    let t = text(&o);
    assert!(
        matches!(o.status.code(), Some(c) if c != 0),
        "non-zero exit, not a crash: {t}"
    );
    assert!(t.contains("libnvidia-encode.so.1 was not found"), "{t}");
}

/// Luma PSNR (dB) of the decoded `file` (`demux`: FFmpeg input format, or "" to probe)
/// against `reference`, raw `ref_fmt` frames (an FFmpeg pixel format) of `w`x`h`.
fn luma_psnr(file: &Path, demux: &str, reference: &Path, ref_fmt: &str, w: u32, h: u32) -> f64 {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-v", "info", "-nostats"]);
    if !demux.is_empty() {
        cmd.args(["-f", demux]);
    }
    cmd.arg("-i").arg(file);
    cmd.args([
        "-f",
        "rawvideo",
        "-pix_fmt",
        ref_fmt,
        "-s",
        &format!("{w}x{h}"),
    ]);
    cmd.arg("-i").arg(reference);
    cmd.args(["-lavfi", "[0:v][1:v]psnr", "-f", "null", "-"]);
    let o = cmd.output().expect("run ffmpeg");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "ffmpeg psnr failed: {}", text(&o));
    let y = err
        .lines()
        .filter(|l| l.contains("average:"))
        // Y, or G for RGB output (gbrp), the plane that carries most of the luma.
        .filter_map(|l| l.split(" y:").nth(1).or_else(|| l.split(" g:").nth(1)))
        .next_back()
        .unwrap_or_else(|| panic!("no PSNR in ffmpeg output: {err}"));
    let v = y.split_whitespace().next().unwrap_or("");
    if v == "inf" {
        f64::INFINITY
    } else {
        v.parse().unwrap_or_else(|_| panic!("bad PSNR {y}"))
    }
}

/// Every system-memory input format (H.264: NV12, Y444 as High 4:4:4 Predictive, VUYA and
/// packed RGB converted by NVENC) reaches NVENC as the right buffer format and comes out
/// right: decoded by FFmpeg with the expected chroma format and depth, and luma PSNR against
/// the source (converted to 4:4:4 by GStreamer's videoconvert) of at least 35 dB at QP 15.
#[test]
fn every_input_format_encodes_faithfully() {
    need_emulator!();
    let (w, h) = (320u32, 240u32);
    // (element, GStreamer format, NV_ENC_BUFFER_FORMAT (nvEncodeAPI.h), decoded pix_fmt)
    // The reference: the source converted by videoconvert to (GStreamer format, FFmpeg pix_fmt).
    // NVENC converts packed RGB with the BT.709 matrix the stream signals (as nvcodec's do);
    // planar GBR is coded as it is (identity matrix), so it is compared as GBR.
    const Y444: (&str, &str) = ("Y444", "yuv444p");
    const Y444_10: (&str, &str) = ("Y444_10LE", "yuv444p10le");
    const RGB_709: (&str, &str) = ("Y444,colorimetry=bt709", "yuv444p");
    const RGB10_709: (&str, &str) = ("Y444_10LE,colorimetry=bt709", "yuv444p10le");
    let cases = [
        ("rsnvench265enc", "NV12", "0x1", "yuv420p", Y444),
        (
            "rsnvench265enc",
            "P010_10LE",
            "0x10000",
            "yuv420p10le",
            Y444_10,
        ),
        ("rsnvench265enc", "Y444", "0x1000", "yuv444p", Y444),
        (
            "rsnvench265enc",
            "Y444_16LE",
            "0x100000",
            "yuv444p10le",
            Y444_10,
        ),
        ("rsnvench265enc", "GBR", "0x1000", "gbrp", ("GBR", "gbrp")),
        ("rsnvench265enc", "VUYA", "0x4000000", "yuv420p", Y444),
        ("rsnvench265enc", "BGRx", "0x1000000", "yuv420p", RGB_709),
        ("rsnvench265enc", "RGBA", "0x10000000", "yuv420p", RGB_709),
        (
            "rsnvench265enc",
            "RGB10A2_LE",
            "0x20000000",
            "yuv420p10le",
            RGB10_709,
        ),
        ("rsnvench264enc", "NV12", "0x1", "yuv420p", Y444),
        ("rsnvench264enc", "Y444", "0x1000", "yuv444p", Y444),
        ("rsnvench264enc", "VUYA", "0x4000000", "yuv420p", Y444),
        ("rsnvench264enc", "BGRx", "0x1000000", "yuv420p", RGB_709),
        ("rsnvench264enc", "RGBA", "0x10000000", "yuv420p", RGB_709),
        ("rsnvencav1enc", "NV12", "0x1", "yuv420p", Y444),
        (
            "rsnvencav1enc",
            "P010_10LE",
            "0x10000",
            "yuv420p10le",
            Y444_10,
        ),
        ("rsnvencav1enc", "BGRx", "0x1000000", "yuv420p", RGB_709),
        (
            "rsnvencav1enc",
            "RGB10A2_LE",
            "0x20000000",
            "yuv420p10le",
            RGB10_709,
        ),
    ];
    let mut failures = Vec::new();
    for (element, format, nvfmt, pix_fmt, (ref_gst, ref_ff)) in cases {
        let name = format!("fmt-{element}-{format}");
        let out = out_dir().join(format!("{name}.bin"));
        let reference = out_dir().join(format!("{name}.ref"));
        let trace = out_dir().join(format!("{name}.trace"));
        let _ = std::fs::remove_file(&trace);
        let (qp, out_caps, demux) = match element {
            "rsnvencav1enc" => (60, "video/x-av1,stream-format=obu-stream", "obu"),
            "rsnvench264enc" => (15, "video/x-h264,stream-format=byte-stream", "h264"),
            _ => (15, "video/x-h265,stream-format=byte-stream", "hevc"),
        };
        let pipeline = format!(
            "videotestsrc num-buffers=5 pattern=smpte ! video/x-raw,format={format},width={w},height={h},framerate=25/1 ! tee name=t \
             t. ! queue ! videoconvert ! video/x-raw,format={ref_gst} ! filesink location={} \
             t. ! queue ! {element} rc-mode=constqp qp-const-i={qp} qp-const-p={qp} qp-const-b={qp} ! {out_caps} ! filesink location={}",
            reference.display(),
            out.display()
        );
        let o = gst_launch(&pipeline, &[("NVEMU_TRACE", trace.to_str().unwrap())], true);
        if !o.status.success() {
            failures.push(format!("{name}: pipeline failed: {}", text(&o)));
            continue;
        }
        assert_no_violation(&trace);
        let inputs = trace_lines(&trace, "nvEncCreateInputBuffer");
        let got_fmt = inputs
            .first()
            .and_then(|l| l["args"]["bufferFmt"].as_u64())
            .map(|v| format!("{v:#x}"))
            .unwrap_or_default();
        if got_fmt != nvfmt {
            failures.push(format!(
                "{name}: input buffers as {got_fmt}, expected {nvfmt}"
            ));
        }
        let probe = ffprobe(
            &[
                "-f",
                demux,
                "-count_frames",
                "-show_entries",
                "stream=pix_fmt,nb_read_frames",
                "-of",
                "default=nw=1",
            ],
            &out,
        );
        if !probe.contains(&format!("pix_fmt={pix_fmt}\n")) || !probe.contains("nb_read_frames=5") {
            failures.push(format!(
                "{name}: decoded as {probe:?}, expected {pix_fmt} x5"
            ));
        }
        let p = luma_psnr(&out, demux, &reference, ref_ff, w, h);
        eprintln!("{name}: luma PSNR {p:.2} dB");
        if p < 35.0 {
            failures.push(format!("{name}: luma PSNR {p:.2} dB < 35"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The encoder slower than the input (the emulator's timing model: 15 ms per picture), so the
/// ring is full at nearly every frame and the streaming thread waits for the output thread,
/// which needs the stream lock to finish frames. Before the fix this deadlocked on the first
/// full ring (the frame wrapper kept the stream lock held while waiting).
#[test]
fn slow_encoder_full_ring_does_not_deadlock() {
    need_emulator!();
    for (element, bframes) in [
        ("rsnvench265enc", 2),
        ("rsnvench265enc", 0),
        ("rsnvencav1enc", 0),
    ] {
        let trace = out_dir().join(format!("slow-{element}-{bframes}.trace"));
        let _ = std::fs::remove_file(&trace);
        let pipeline = format!(
            "videotestsrc num-buffers=60 ! video/x-raw,format=NV12,width=320,height=240,framerate=25/1 ! {element} bframes={bframes} ! fakesink"
        );
        let o = gst_launch_limited(
            &pipeline,
            &[
                ("NVEMU_TRACE", trace.to_str().unwrap()),
                ("NVEMU_ENCODE_MS", "15"),
            ],
            true,
            Duration::from_secs(60),
        );
        assert!(
            o.status.success(),
            "{element} bframes={bframes}: {}",
            text(&o)
        );
        assert_no_violation(&trace);
        assert_eq!(
            trace_lines(&trace, "nvEncLockBitstream").len(),
            60,
            "{element} bframes={bframes}: every frame out"
        );
    }
}

/// A codec the GPU lacks fails at start with the reason. (Input the GPU cannot take is in
/// tests/element.rs: gst-launch does not reliably print the warning that explains it.)
#[test]
fn codec_the_gpu_lacks_says_why() {
    need_emulator!();
    let o = gst_launch(
        "videotestsrc num-buffers=3 ! rsnvencav1enc ! fakesink",
        &[("NVEMU_GPU", "ampere")],
        true,
    );
    let t = text(&o);
    assert!(!o.status.success(), "AV1 on Ampere must fail: {t}");
    assert!(t.contains("cannot encode AV1 with NVENC"), "reason: {t}");
}

/// The plugin's error paths, driven by the emulator's fault injection (`NVEMU_FAULT`, NVENC and
/// CUDA entry points):
/// ENCODER_BUSY is retried as the header asks; a failed LockBitstream or a lasting
/// ENCODER_BUSY stops the pipeline with the call and status named, without a hang or a
/// contract violation while tearing down; the GeForce session cap (8, `NVEMU_SESSION_LIMIT`)
/// gives an explained error.
#[test]
fn injected_faults_recover_or_fail_clearly() {
    need_emulator!();
    let run = |fault: &str, name: &str, pipeline: &str| {
        launch_traced(
            pipeline,
            &format!("fault-{name}"),
            &[("NVEMU_FAULT", fault)],
        )
    };
    let simple = "videotestsrc num-buffers=20 ! video/x-raw,format=NV12,width=320,height=240,framerate=25/1 ! rsnvench265enc bframes=2 ! fakesink";

    let (o, trace) = run(
        "nvEncEncodePicture:5:NV_ENC_ERR_ENCODER_BUSY,nvEncEncodePicture:9:NV_ENC_ERR_ENCODER_BUSY",
        "busy-twice",
        simple,
    );
    assert!(
        o.status.success(),
        "busy twice must be retried: {}",
        text(&o)
    );
    let notes = std::fs::read_to_string(&trace)
        .unwrap()
        .matches("injected fault")
        .count();
    assert_eq!(notes, 2, "two injected faults");
    assert_eq!(trace_lines(&trace, "nvEncLockBitstream").len(), 20);

    let (o, _) = run("nvEncLockBitstream:3", "lock", simple);
    let t = text(&o);
    assert!(!o.status.success(), "failed lock must fail: {t}");
    assert!(
        t.contains("nvEncLockBitstream") && t.contains("NV_ENC_ERR_GENERIC"),
        "error names the call and status: {t}"
    );

    let (o, _) = run(
        "nvEncEncodePicture:3+:NV_ENC_ERR_ENCODER_BUSY",
        "busy-forever",
        simple,
    );
    let t = text(&o);
    assert!(!o.status.success(), "lasting busy must fail: {t}");
    assert!(t.contains("NV_ENC_ERR_ENCODER_BUSY"), "{t}");

    // CUDA faults: no context can be made (neither the shared one through libgstcuda nor the
    // encoder's own); the context cannot be made current mid-stream.
    let (o, _) = run(
        "cuCtxCreate_v2:1+:CUDA_ERROR_OUT_OF_MEMORY",
        "cuda-ctx",
        simple,
    );
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains("cannot use CUDA") && t.contains("CUDA_ERROR_OUT_OF_MEMORY"),
        "{t}"
    );
    let (o, _) = run("cuCtxPushCurrent_v2:20+", "cuda-push", simple);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("cuCtxPushCurrent_v2"), "{t}");

    // Nine encoders with the GeForce session cap (8) modelled.
    let mut nine = String::from(
        "videotestsrc num-buffers=5 ! video/x-raw,format=NV12,width=320,height=240,framerate=25/1 ! tee name=t",
    );
    for _ in 0..9 {
        nine.push_str(" t. ! queue ! rsnvench265enc ! fakesink");
    }
    let (o, trace) = launch_traced(&nine, "fault-sessions", &[("NVEMU_SESSION_LIMIT", "8")]);
    let t = text(&o);
    assert!(!o.status.success(), "a ninth session must fail: {t}");
    assert!(
        t.contains("NV_ENC_ERR_OUT_OF_MEMORY") && t.contains("concurrent encode sessions"),
        "explained: {t}"
    );
    let opened = trace_lines(&trace, "nvEncOpenEncodeSessionEx")
        .iter()
        .filter(|l| l["status"] == "NV_ENC_ERR_OUT_OF_MEMORY")
        .count();
    assert!(opened >= 1, "the emulator refused a session over the cap");
}

/// The rest of the rate-control and coding properties reach NVENC with each API version's
/// struct layout: VBV, lookahead with I/B adapt, spatial AQ and its strength, temporal AQ,
/// non-reference P, strict GOP, multi-pass, min/max QP with nvcodec's fallbacks, H.265 and
/// H.264 slices, H.264 CAVLC and profile, AV1 uniform tiles, intra refresh and B-frames as
/// references (middle). weighted-pred is refused (the emulated GPU reports no support) and
/// stays 0.
#[test]
fn rate_control_properties_reach_nvenc_for_every_api_version() {
    need_emulator!();
    for (api, _) in INIT_VERS {
        for (element, extra) in [
            ("rsnvench265enc", "num-slices=2"),
            ("rsnvencav1enc", "tile-columns=2 tile-rows=2"),
            ("rsnvench264enc", "num-slices=3 cabac=false"),
        ] {
            let pipeline = format!(
                "videotestsrc num-buffers=10 ! video/x-raw,format=NV12,width=320,height=240,framerate=25/1 ! {element} rc-mode=vbr bitrate=2000 max-bitrate=4000 vbv-buffer-size=3000 rc-lookahead=8 i-adapt=true b-adapt=false spatial-aq=true aq-strength=7 temporal-aq=true nonref-p=true strict-gop=true weighted-pred=true multi-pass=two-pass qp-min-i=10 qp-min-p=12 qp-max-i=40 bframes=2 b-ref-mode=middle intra-refresh-period=30 intra-refresh-count=10 {extra} ! fakesink"
            );
            let name = format!("rcprops-{element}-{api}");
            let (o, trace) = launch_traced(&pipeline, &name, &[("NVEMU_MAX_API", api)]);
            assert!(o.status.success(), "{element} API {api}: {}", text(&o));
            let init = trace_lines(&trace, "nvEncInitializeEncoder");
            let a = &init[0]["args"];
            let rc = |k: &str| a[format!("encodeConfig.rcParams.{k}")].clone();
            let want = [
                ("rateControlMode", 1),
                ("averageBitRate", 2000 * 1024),
                ("maxBitRate", 4000 * 1024),
                ("vbvBufferSize", 3000 * 1024),
                ("enableLookahead", 1),
                ("lookaheadDepth", 8),
                ("disableIadapt", 0),
                ("disableBadapt", 1),
                ("enableAQ", 1),
                ("aqStrength", 7),
                ("enableTemporalAQ", 1),
                ("enableNonRefP", 1),
                ("strictGOPTarget", 1),
                ("multiPass", 2),
                ("enableMinQP", 1),
                ("minQP.qpIntra", 10),
                ("minQP.qpInterP", 12),
                ("minQP.qpInterB", 12),
                ("enableMaxQP", 1),
                ("maxQP.qpIntra", 40),
                ("maxQP.qpInterP", 40),
                ("maxQP.qpInterB", 40),
            ];
            for (k, v) in want {
                assert_eq!(rc(k), v, "{element} API {api}: rcParams.{k}");
            }
            assert_eq!(a["enableWeightedPrediction"], 0, "refused: GPU says no");
            if element == "rsnvench265enc" {
                let h =
                    |k: &str| a[format!("encodeConfig.encodeCodecConfig.hevcConfig.{k}")].clone();
                assert_eq!(h("sliceMode"), 3);
                assert_eq!(h("sliceModeData"), 2);
            } else if element == "rsnvench264enc" {
                let h =
                    |k: &str| a[format!("encodeConfig.encodeCodecConfig.h264Config.{k}")].clone();
                assert_eq!(h("sliceMode"), 3, "API {api}");
                assert_eq!(h("sliceModeData"), 3);
                // NV_ENC_H264_ENTROPY_CODING_MODE_CAVLC = 2 (cabac=false).
                assert_eq!(h("entropyCodingMode"), 2);
                assert_eq!(h("chromaFormatIDC"), 1);
                assert_eq!(
                    a["encodeConfig.profileGUID"], "NV_ENC_H264_PROFILE_HIGH_GUID",
                    "High: B-frames, downstream takes anything"
                );
            } else {
                let t =
                    |k: &str| a[format!("encodeConfig.encodeCodecConfig.av1Config.{k}")].clone();
                assert_eq!(t("numTileColumns"), 2);
                assert_eq!(t("numTileRows"), 2);
                assert_eq!(t("enableCustomTileConfig"), 0, "uniform tiles");
            }
            let c = match element {
                "rsnvench265enc" => "hevcConfig",
                "rsnvench264enc" => "h264Config",
                _ => "av1Config",
            };
            let cc = |k: &str| a[format!("encodeConfig.encodeCodecConfig.{c}.{k}")].clone();
            assert_eq!(cc("enableIntraRefresh"), 1, "{element} API {api}");
            assert_eq!(cc("intraRefreshPeriod"), 30);
            assert_eq!(cc("intraRefreshCnt"), 10);
            assert_eq!(cc("useBFramesAsRef"), 2, "b-ref-mode=middle");
            assert_eq!(a["encodeConfig.frameIntervalP"], 3);
            assert_eq!(trace_lines(&trace, "nvEncLockBitstream").len(), 10);
        }
    }
}

/// An application in another language: examples/python/encode.py (PyGObject, Debian's
/// python3-gi) sets properties by name and enum nick, raises the bitrate while PLAYING and
/// counts frame-stats signals and reads the `stats` summary, for both elements. H.265 keeps one
/// IDR across the bitrate change (nvEncReconfigureEncoder); the emulator's AV1 encoder (libaom)
/// cannot change its rate live and starts a new sequence, which real NVENC would not.
#[test]
fn python_application_through_gobject_introspection() {
    need_emulator!();
    let python = if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let trace = out_dir().join("python.trace");
    let _ = std::fs::remove_file(&trace);
    let mut cmd = Command::new(python);
    cmd.arg(root().join("examples/python/encode.py"));
    cmd.env("GST_PLUGIN_PATH", plugin_dir());
    cmd.env(
        "GST_REGISTRY",
        out_dir().join(format!("registry-py-{}.bin", std::process::id())),
    );
    cmd.env("LD_LIBRARY_PATH", emu_lib().unwrap());
    cmd.env("NVEMU_STRICT", "abort");
    cmd.env("NVEMU_TRACE", &trace);
    let o = run_bounded(cmd, Duration::from_secs(120));
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("rsnvench265enc: 60 buffers, 60 frame-stats, 1 IDR, bitrate now 3000 kbit/s; stats: 60 in, 60 out,"),
        "{t}"
    );
    assert!(t.contains("in flight, 1 sessions"), "{t}");
    assert!(
        t.contains("rsnvencav1enc: 60 buffers, 60 frame-stats"),
        "{t}"
    );
    assert_no_violation(&trace);
    assert_eq!(trace_lines(&trace, "nvEncReconfigureEncoder").len(), 2);
}

/// A live-streaming application in Python (examples/python/live.py, PyGObject): a capsfilter
/// steps 1280x720 -> 960x540 -> 640x360 -> 1280x720 and 30 -> 15 -> 30 fps in front of the
/// encoder, then `vbv-buffer-size`, `spatial-aq` and `qp-max` change while PLAYING. Per element
/// (H.264, H.265): frames out == frames in, one keyframe per size and none more, every size in
/// order, one session; in the trace one `nvEncReconfigureEncoder` per step, all accepted.
#[test]
fn python_live_adaptation() {
    need_emulator!();
    let python = if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let trace = out_dir().join("python-live.trace");
    let _ = std::fs::remove_file(&trace);
    let mut cmd = Command::new(python);
    cmd.arg(root().join("examples/python/live.py"));
    cmd.env("GST_PLUGIN_PATH", plugin_dir());
    cmd.env(
        "GST_REGISTRY",
        out_dir().join(format!("registry-py-live-{}.bin", std::process::id())),
    );
    cmd.env("LD_LIBRARY_PATH", emu_lib().unwrap());
    cmd.env("NVEMU_STRICT", "abort");
    cmd.env("NVEMU_TRACE", &trace);
    let o = run_bounded(cmd, Duration::from_secs(240));
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    for element in ["rsnvench264enc", "rsnvench265enc"] {
        assert!(
            t.contains(&format!("{element}: frames out == frames in (")),
            "{t}"
        );
    }
    let each = "), 4 keyframes, sizes 1280x720 960x540 640x360 1280x720, 1 sessions";
    assert_eq!(t.matches(each).count(), 2, "{t}");
    assert_no_violation(&trace);
    assert_eq!(trace_lines(&trace, "nvEncInitializeEncoder").len(), 2);
    let r = trace_lines(&trace, "nvEncReconfigureEncoder");
    assert_eq!(r.len(), 2 * 8, "one reconfigure per step and element");
    assert!(r.iter().all(|v| v["status"] == "NV_ENC_SUCCESS"), "{r:?}");
}

/// `rsnvench264enc` on the real clip, byte-stream out, through `h264parse ! mp4mux` (the
/// parser converts to avc; without the capsfilter it would pass mp4mux's avc through, which
/// `h264_avc_and_avc3_straight_into_mp4` covers): 190
/// frames, keyframes every 30, DTS increasing, PSNR of at least 35 dB at constqp 20, High
/// profile (nothing downstream asks otherwise), and NVENC told H.264 High with the GOP as IDR
/// period and AUDs on.
#[test]
fn h264_real_clip_to_mp4() {
    need_emulator!();
    let trace = out_dir().join("h264-clip.trace");
    let _ = std::fs::remove_file(&trace);
    let (out, o) = encode_clip(
        "rsnvench264enc rc-mode=constqp qp-const-i=20 qp-const-p=20 qp-const-b=20 gop-size=30",
        "! video/x-h264,stream-format=byte-stream ! h264parse",
        "h264-clip",
        &[("NVEMU_TRACE", trace.to_str().unwrap())],
    );
    assert!(o.status.success(), "pipeline failed: {}", text(&o));
    assert_no_violation(&trace);
    let init = trace_lines(&trace, "nvEncInitializeEncoder");
    let a = &init[0]["args"];
    assert_eq!(a["encodeGUID"], "NV_ENC_CODEC_H264_GUID");
    assert_eq!(
        a["encodeConfig.profileGUID"],
        "NV_ENC_H264_PROFILE_HIGH_GUID"
    );
    assert_eq!(
        a["encodeConfig.encodeCodecConfig.h264Config.chromaFormatIDC"],
        1
    );
    assert_eq!(a["encodeConfig.encodeCodecConfig.h264Config.idrPeriod"], 30);
    assert_eq!(a["encodeConfig.encodeCodecConfig.h264Config.outputAUD"], 1);
    // Byte-stream keeps the parameter sets in band (h264parse turns them into its avcC).
    assert_eq!(
        a["encodeConfig.encodeCodecConfig.h264Config.disableSPSPPS"],
        0
    );
    assert_eq!(stream_field(&out, "profile"), "High");
    check_clip_output(&out, 30, 35.0);
}

/// One `stream=` field of the first video stream, as ffprobe prints it.
fn stream_field(file: &Path, field: &str) -> String {
    ffprobe(
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            &format!("stream={field}"),
            "-of",
            "default=nw=1:nk=1",
        ],
        file,
    )
    .trim()
    .to_string()
}

/// Where FFmpeg finds H.264 parameter sets in `file` (its `trace_headers` bitstream filter
/// parses the avcC `codec_data` as "Extradata", then each packet's NAL units): (SPS, PPS) in the
/// extradata, and (keyframe, SPS, PPS) per packet in file order.
#[allow(clippy::type_complexity)]
fn h264_parameter_sets(file: &Path) -> ((usize, usize), Vec<(bool, usize, usize)>) {
    let o = Command::new("ffmpeg")
        .args(["-v", "trace", "-nostats", "-i"])
        .arg(file)
        .args([
            "-map",
            "0:v:0",
            "-c",
            "copy",
            "-bsf:v",
            "trace_headers",
            "-f",
            "null",
            "-",
        ])
        .output()
        .expect("run ffmpeg");
    assert!(o.status.success(), "ffmpeg trace_headers: {}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    let mut extra = (0, 0);
    let mut packets: Vec<(bool, usize, usize)> = Vec::new();
    let mut in_extradata = false;
    for l in err
        .lines()
        .filter_map(|l| l.split("[trace_headers @ ").nth(1))
    {
        let msg = l.split_once("] ").map_or("", |x| x.1).trim();
        if msg == "Extradata" {
            in_extradata = true;
        } else if let Some(p) = msg.strip_prefix("Packet: ") {
            in_extradata = false;
            packets.push((p.contains("key frame"), 0, 0));
        } else {
            let (sps, pps) = (
                (msg == "Sequence Parameter Set") as usize,
                (msg == "Picture Parameter Set") as usize,
            );
            if in_extradata {
                extra.0 += sps;
                extra.1 += pps;
            } else if let Some(last) = packets.last_mut() {
                last.1 += sps;
                last.2 += pps;
            }
        }
    }
    (extra, packets)
}

/// The payload of the first `avcC` box in an MP4 file.
fn mp4_avcc(file: &Path) -> Vec<u8> {
    let d = std::fs::read(file).expect("read mp4");
    let i = d
        .windows(4)
        .position(|w| w == b"avcC")
        .expect("an avcC box");
    let size = u32::from_be_bytes([d[i - 4], d[i - 3], d[i - 2], d[i - 1]]) as usize;
    d[i + 4..i - 4 + size].to_vec()
}

/// `rsnvench264enc ! video/x-h264,stream-format=avc|avc3 ! mp4mux`, no parser: the element
/// negotiates the packetized format itself, builds the avcC `codec_data` from the SPS/PPS NVENC
/// gave, and writes length-prefixed samples. Real clip: 190 frames, keyframes every 30, DTS
/// increasing, PSNR of at least 35 dB; the sample entry is `avc1` / `avc3`; the avcC parses
/// (ours and FFmpeg's parser) with High profile, 4-byte lengths and the High extension
/// (4:2:0, 8-bit). avc: parameter sets only in the avcC (NVENC told `disableSPSPPS`), none in
/// any sample; avc3: none in the avcC (as `h264parse` writes it), SPS and PPS in every keyframe
/// (`repeatSPSPPS`), none elsewhere.
#[test]
fn h264_avc_and_avc3_straight_into_mp4() {
    need_emulator!();
    for format in ["avc", "avc3"] {
        let name = format!("h264-{format}");
        let trace = out_dir().join(format!("{name}.trace"));
        let _ = std::fs::remove_file(&trace);
        let (out, o) = encode_clip(
            "rsnvench264enc rc-mode=constqp qp-const=20 gop-size=30",
            &format!("! video/x-h264,stream-format={format}"),
            &name,
            &[("NVEMU_TRACE", trace.to_str().unwrap())],
        );
        assert!(
            o.status.success(),
            "{format}: pipeline failed: {}",
            text(&o)
        );
        assert_no_violation(&trace);
        let a = &trace_lines(&trace, "nvEncInitializeEncoder")[0]["args"];
        let h = |k: &str| a[format!("encodeConfig.encodeCodecConfig.h264Config.{k}")].clone();
        assert_eq!(h("disableSPSPPS"), (format == "avc") as u32, "{format}");
        assert_eq!(h("repeatSPSPPS"), (format == "avc3") as u32, "{format}");
        assert_eq!(
            a["encodeConfig.profileGUID"],
            "NV_ENC_H264_PROFILE_HIGH_GUID"
        );
        check_clip_output(&out, 30, 35.0);
        let tag = if format == "avc" { "avc1" } else { "avc3" };
        assert_eq!(stream_field(&out, "codec_tag_string"), tag);
        assert_eq!(stream_field(&out, "profile"), "High");
        let rec = gstrsnvenc::nvench26x::avcc::parse_avcc(&mp4_avcc(&out))
            .unwrap_or_else(|e| panic!("{format}: avcC does not parse: {e}"));
        assert_eq!((rec.profile_idc, rec.length_size), (100, 4), "{format}");
        assert_eq!(rec.high, Some((1, 8, 8)), "{format}: High extension");
        let (extra, packets) = h264_parameter_sets(&out);
        assert_eq!(packets.len(), 190, "{format}: packets");
        let keys = packets.iter().filter(|p| p.0).count();
        assert_eq!(keys, 7, "{format}: keyframes");
        if format == "avc" {
            assert_eq!((rec.sps.len(), rec.pps.len()), (1, 1));
            let sps = gstrsnvenc::nvench26x::avcc::parse_sps(&rec.sps[0]).expect("SPS");
            // 4:2:0 crops in 2-row units: 405 rows are coded as 406 (the last repeated).
            assert_eq!((sps.width, sps.height), (720, 406), "cropped size");
            assert_eq!(extra, (1, 1), "FFmpeg finds the SPS and PPS in the avcC");
            assert!(
                packets.iter().all(|p| p.1 == 0 && p.2 == 0),
                "avc: no parameter sets in the samples: {packets:?}"
            );
        } else {
            assert_eq!((rec.sps.len(), rec.pps.len()), (0, 0));
            assert_eq!(extra, (0, 0));
            assert!(
                packets
                    .iter()
                    .all(|p| (p.1, p.2) == if p.0 { (1, 1) } else { (0, 0) }),
                "avc3: SPS and PPS in every keyframe, nowhere else: {packets:?}"
            );
        }
    }
}

/// The profile follows downstream's caps (`video/x-h264,profile=...`) and the input format,
/// as nvcodec's: Baseline drops B-frames (warning) and comes out Constrained Baseline; Main
/// keeps them; Y444 gives High 4:4:4 Predictive (`chromaFormatIDC` 3) into an MP4 without a
/// parser (avcC with the 4:4:4 extension). Each case's NVENC trace shows the profile GUID,
/// chromaFormatIDC and frameIntervalP for API 12.1, 12.2 and 13.0. (What cannot negotiate,
/// 4:4:4 for High only and 10-bit H.264, is in `tests/element.rs`: gst-launch 1.22 can hang
/// on a not-negotiated error posted before its main loop runs.)
#[test]
fn h264_profile_follows_downstream_caps() {
    need_emulator!();
    // (input format, encoder properties, downstream caps, profile GUID, chromaFormatIDC,
    // frameIntervalP, ffprobe profile, pix_fmt)
    let cases = [
        (
            "NV12",
            "bframes=2",
            "video/x-h264,profile=baseline",
            "NV_ENC_H264_PROFILE_BASELINE_GUID",
            1,
            1,
            "Constrained Baseline",
            "yuv420p",
        ),
        (
            "NV12",
            "",
            "video/x-h264,profile=constrained-baseline",
            "NV_ENC_H264_PROFILE_BASELINE_GUID",
            1,
            1,
            "Constrained Baseline",
            "yuv420p",
        ),
        (
            "NV12",
            "bframes=2",
            "video/x-h264,profile=main",
            "NV_ENC_H264_PROFILE_MAIN_GUID",
            1,
            3,
            "Main",
            "yuv420p",
        ),
        (
            "BGRx",
            "",
            "video/x-h264,profile=high",
            "NV_ENC_H264_PROFILE_HIGH_GUID",
            1,
            1,
            "High",
            "yuv420p",
        ),
        (
            "Y444",
            "bframes=1",
            "video/x-h264,stream-format=avc",
            "NV_ENC_H264_PROFILE_HIGH_444_GUID",
            3,
            2,
            "High 4:4:4 Predictive",
            "yuv444p",
        ),
    ];
    for (api, _) in INIT_VERS {
        for (fmt, props, down, guid, chroma, fip, ff_profile, pix_fmt) in cases {
            let name = format!(
                "h264-profile-{fmt}-{}-{api}",
                down.replace([',', '=', '/'], "-")
            );
            let out = out_dir().join(format!("{name}.mp4"));
            let pipeline = format!(
                "videotestsrc num-buffers=20 pattern=smpte ! video/x-raw,format={fmt},width=320,height=240,framerate=25/1 ! rsnvench264enc rc-mode=constqp qp-const=18 {props} ! {down} ! h264parse ! mp4mux ! filesink location={}",
                out.display()
            );
            let pipeline = if down.contains("stream-format=avc") {
                pipeline.replace(" ! h264parse", "")
            } else {
                pipeline
            };
            // Element warnings go to the log (gst-launch -q prints none).
            let (o, trace) = launch_traced(
                &pipeline,
                &name,
                &[("NVEMU_MAX_API", api), ("GST_DEBUG", "GST_ERROR_SYSTEM:4")],
            );
            let t = text(&o);
            assert!(o.status.success(), "{name}: {t}");
            let a = &trace_lines(&trace, "nvEncInitializeEncoder")[0]["args"];
            assert_eq!(a["encodeConfig.profileGUID"], guid, "{name}");
            assert_eq!(
                a["encodeConfig.encodeCodecConfig.h264Config.chromaFormatIDC"], chroma,
                "{name}"
            );
            assert_eq!(a["encodeConfig.frameIntervalP"], fip, "{name}");
            if props == "bframes=2" && fip == 1 {
                assert!(t.contains("bframes=2 is ignored"), "{name}: warning: {t}");
            }
            assert_eq!(stream_field(&out, "profile"), ff_profile, "{name}");
            assert_eq!(stream_field(&out, "pix_fmt"), pix_fmt, "{name}");
            let (frames, _, _) = decoded_frames_and_size(&out);
            assert_eq!(frames, 20, "{name}");
            if fmt == "Y444" {
                let rec = gstrsnvenc::nvench26x::avcc::parse_avcc(&mp4_avcc(&out)).unwrap();
                assert_eq!(
                    (rec.profile_idc, rec.high),
                    (244, Some((3, 8, 8))),
                    "{name}"
                );
            }
        }
    }
}

/// The CUDA context is shared with GStreamer's own CUDA elements (`gst.cuda.context`, through
/// libgstcuda): with `cudaupload ! cudadownload` in front, the encoder creates no CUDA context
/// of its own (the pipeline makes as many as it does without the encoder), and its NVENC
/// session opens on the shared one.
#[test]
fn cuda_context_shared_with_gstreamer_cuda_elements() {
    need_emulator!();
    let caps = "videotestsrc num-buffers=5 ! video/x-raw,format=NV12,width=320,height=240,framerate=25/1 ! cudaupload ! cudadownload";
    let count = |name: &str, pipeline: &str| {
        let (o, trace) = launch_traced(pipeline, name, &[]);
        (o, trace_lines(&trace, "cuCtxCreate_v2").len())
    };
    // The registry scan (with nvcodec's device probe) happens in the first run only.
    let (o, _) = count("ctx-warmup", &format!("{caps} ! fakesink"));
    if !o.status.success() {
        eprintln!("skipping: cudaupload does not run here: {}", text(&o));
        return;
    }
    let (o, without) = count("ctx-without", &format!("{caps} ! fakesink"));
    assert!(o.status.success(), "{}", text(&o));
    let (o, with) = count("ctx-with", &format!("{caps} ! rsnvench265enc ! fakesink"));
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(with, without, "the encoder made a CUDA context of its own");
}

/// The NV12 test source (`n` frames of `w`x`h`) as a pipeline fragment, and its frames as
/// Y444 in `target/e2e/<name>.ref`; `None` (after saying why) where GStreamer's `cudaupload`
/// does not run on the stand-ins. The first run also warms the registry (nvcodec's probe).
fn cuda_source(name: &str, w: u32, h: u32, n: usize) -> Option<(String, PathBuf)> {
    let src = format!(
        "videotestsrc num-buffers={n} pattern=smpte ! video/x-raw,format=NV12,width={w},height={h},framerate=25/1"
    );
    let (o, _) = launch_traced(
        &format!("{src} ! cudaupload ! fakesink"),
        &format!("{name}-warmup"),
        &[],
    );
    if !o.status.success() {
        eprintln!("skipping: cudaupload does not run here: {}", text(&o));
        return None;
    }
    let reference = out_dir().join(format!("{name}.ref"));
    let o = gst_launch(
        &format!(
            "{src} ! videoconvert ! video/x-raw,format=Y444 ! filesink location={}",
            reference.display()
        ),
        &[],
        true,
    );
    assert!(o.status.success(), "{}", text(&o));
    Some((src, reference))
}

/// `memory:CUDAMemory` from `cudaupload` (same, shared context): NVENC reads the upstream
/// device memory in place. Per frame: one `nvEncMapInputResource`, no `nvEncLockInputBuffer`
/// (no copy by the plugin); each buffer of the CUDA pool the encoder proposes upstream
/// registered once; the only device-to-host copy
/// is the emulator's own read (what NVENC does by DMA); no device-to-device copy. The output
/// decodes to the source (luma PSNR of at least 45 dB at QP 15).
#[test]
fn cuda_memory_input_is_zero_copy() {
    need_emulator!();
    let (w, h, n) = (320, 240, 30);
    let Some((src, reference)) = cuda_source("cm", w, h, n) else {
        return;
    };
    for (element, out_caps, demux) in [
        (
            "rsnvench265enc",
            "video/x-h265,stream-format=byte-stream",
            "hevc",
        ),
        (
            "rsnvencav1enc",
            "video/x-av1,stream-format=obu-stream",
            "obu",
        ),
    ] {
        let out = out_dir().join(format!("cm-{element}.bin"));
        let qp = if element == "rsnvencav1enc" { 60 } else { 15 };
        let (o, trace) = launch_traced(
            &format!(
                "{src} ! cudaupload ! video/x-raw(memory:CUDAMemory) ! {element} rc-mode=constqp qp-const-i={qp} qp-const-p={qp} ! {out_caps} ! filesink location={}",
                out.display()
            ),
            &format!("cm-{element}"),
            &[],
        );
        assert!(o.status.success(), "{element}: {}", text(&o));
        let count = |c: &str| trace_lines(&trace, c).len();
        assert_eq!(
            count("nvEncMapInputResource"),
            n,
            "{element}: one map per frame"
        );
        assert_eq!(
            count("nvEncLockInputBuffer"),
            0,
            "{element}: no copy by the plugin"
        );
        // cudaupload allocates from the pool the encoder proposed (a GstCudaBufferPool on the
        // shared context, at least as many buffers as the ring: 4 + 0 B-frames + 1; more when
        // the machine is loaded and all are in flight), each registered once. Its own pool
        // would have 2.
        let regs = count("nvEncRegisterResource");
        assert!(
            (5..=n).contains(&regs),
            "{element}: {regs} registrations, one per buffer of the proposed pool"
        );
        let kinds: Vec<String> = trace_lines(&trace, "cuMemcpy2D_v2")
            .iter()
            .chain(trace_lines(&trace, "cuMemcpy2DAsync_v2").iter())
            .filter_map(|l| l["kind"].as_str().map(str::to_string))
            .collect();
        let dtoh = kinds.iter().filter(|k| *k == "DtoH").count();
        let dtod = kinds.iter().filter(|k| *k == "DtoD").count();
        assert_eq!(dtoh, n, "{element}: the emulator's read, once per frame");
        assert_eq!(dtod, 0, "{element}: no device-to-device copy");
        let p = luma_psnr(&out, demux, &reference, "yuv444p", w, h);
        eprintln!("{element} from CUDA memory: luma PSNR {p:.2} dB");
        assert!(p >= 45.0, "{element}: luma PSNR {p:.2}");
    }
}

/// CUDA memory NVENC cannot read in place (here: an odd height, 241 rows, which H.265 4:2:0
/// codes as 242, so the chroma plane is not where NVENC wants it): one device-to-device copy
/// per plane (plus the repeated last row) into the encoder's own registered surfaces, never a
/// trip through system memory, and the picture comes out right (luma PSNR over the top 240 rows
/// of at least 45 dB).
#[test]
fn cuda_memory_other_layout_is_copied_on_the_device() {
    need_emulator!();
    let (w, h, n) = (320, 241, 30);
    let Some((src, reference)) = cuda_source("cm2", w, h, n) else {
        return;
    };
    let out = out_dir().join("cm2.h265");
    let (o, trace) = launch_traced(
        &format!(
            "{src} ! cudaupload ! video/x-raw(memory:CUDAMemory) ! rsnvench265enc rc-mode=constqp qp-const-i=15 qp-const-p=15 ! video/x-h265,stream-format=byte-stream ! filesink location={}",
            out.display()
        ),
        "cm2",
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(trace_lines(&trace, "nvEncMapInputResource").len(), n);
    assert_eq!(
        trace_lines(&trace, "nvEncLockInputBuffer").len(),
        0,
        "no system-memory copy"
    );
    let dtod = trace_lines(&trace, "cuMemcpy2D_v2")
        .iter()
        .filter(|l| l["kind"] == "DtoD")
        .count();
    assert_eq!(dtod, 3 * n, "luma, chroma and the repeated row, per frame");
    let o = Command::new("ffmpeg")
        .args(["-v", "info", "-nostats", "-f", "hevc", "-i"])
        .arg(&out)
        .args([
            "-f",
            "rawvideo",
            "-pix_fmt",
            "yuv444p",
            "-s",
            &format!("{w}x{h}"),
            "-i",
        ])
        .arg(&reference)
        .args([
            "-lavfi",
            "[0:v]crop=320:240:0:0[a];[1:v]crop=320:240:0:0[b];[a][b]psnr",
            "-f",
            "null",
            "-",
        ])
        .output()
        .expect("run ffmpeg");
    let err = String::from_utf8_lossy(&o.stderr);
    let y: f64 = err
        .lines()
        .filter_map(|l| l.split(" y:").nth(1))
        .next_back()
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no PSNR: {err}"));
    assert!(y >= 45.0, "luma PSNR {y:.2}");
}

/// System memory: the encoder proposes upstream a video buffer pool of page-locked memory
/// (`cuMemAllocHost`); `videotestsrc` writes its frames there, and the encoder uploads each one
/// into its own registered device surface with one `cuMemcpy2DAsync` from page-locked memory (a
/// DMA on real hardware, `"host": "pinned"` in the trace), waited for on a blocking-sync event
/// (one `cuEventSynchronize` per frame), and no CPU copy into an NVENC input
/// buffer. Upstream memory of its own (`identity drop-allocation=true`) still works, copied by
/// the CPU into NVENC input buffers. Both decode to the source (luma PSNR of at least 45 dB).
#[test]
fn system_memory_from_the_proposed_pool_is_uploaded_by_dma() {
    need_emulator!();
    let (w, h, n) = (320, 240, 30);
    let Some((src, reference)) = cuda_source("pinned", w, h, n) else {
        return;
    };
    for (case, upstream, pinned) in [
        ("pinned", "", true),
        ("pageable", "identity drop-allocation=true !", false),
    ] {
        let out = out_dir().join(format!("sys-{case}.h265"));
        let (o, trace) = launch_traced(
            &format!(
                "{src} ! {upstream} rsnvench265enc rc-mode=constqp qp-const-i=15 qp-const-p=15 ! video/x-h265,stream-format=byte-stream ! filesink location={}",
                out.display()
            ),
            &format!("sys-{case}"),
            &[],
        );
        assert!(o.status.success(), "{case}: {}", text(&o));
        let uploads = trace_lines(&trace, "cuMemcpy2D_v2")
            .iter()
            .chain(trace_lines(&trace, "cuMemcpy2DAsync_v2").iter())
            .filter(|l| l["kind"] == "HtoD")
            .map(|l| l["args"]["host"].as_str().unwrap_or("pageable").to_owned())
            .collect::<Vec<_>>();
        let locks = trace_lines(&trace, "nvEncLockInputBuffer").len();
        if pinned {
            assert_eq!(uploads.len(), n, "{case}: one upload per frame");
            assert!(uploads.iter().all(|h| h == "pinned"), "{case}: {uploads:?}");
            assert_eq!(locks, 0, "{case}: no CPU copy into NVENC input buffers");
            assert_eq!(trace_lines(&trace, "nvEncMapInputResource").len(), n);
            // The upload is waited for on a blocking-sync event (the thread sleeps, no spin).
            assert_eq!(trace_lines(&trace, "cuEventSynchronize").len(), n, "{case}");
        } else {
            assert!(uploads.is_empty(), "{case}: {uploads:?}");
            assert_eq!(locks, n, "{case}: one CPU copy per frame");
        }
        let (frames, ..) = decoded_frames_and_size(&out);
        assert_eq!(frames, n as u64, "{case}");
        let p = luma_psnr(&out, "hevc", &reference, "yuv444p", w, h);
        eprintln!("{case}: luma PSNR {p:.2} dB");
        assert!(p >= 45.0, "{case}: luma PSNR {p:.2}");
    }
}

/// The example that feeds an encoder pipeline CUDA memory from a second pipeline (so another
/// CUDA context), built on demand when the test runs alone.
fn two_pipelines_example() -> PathBuf {
    let exe = plugin_dir().join("examples/cuda_two_pipelines");
    if !exe.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "--example", "cuda_two_pipelines"])
            .current_dir(root())
            .status()
            .expect("run cargo");
        assert!(st.success(), "cargo build --example cuda_two_pipelines");
    }
    exe
}

/// CUDA memory of a context other than the encoder's: NVENC cannot read it in place, so each
/// frame is copied once, device to device, into the encoder's own registered surface
/// (`cuMemcpy3DPeer` from the memory's context; the planes of an NV12 frame lie one below the
/// other, so one copy per frame), never through system memory:
/// - another context on the same GPU (two pipelines in one process: nothing shares a context);
/// - another GPU (`NVEMU_GPU_COUNT=2`, `cudaupload cuda-device-id=1`, encoder on GPU 0), with
///   peer access (GPU to GPU: `"peer": "direct"` in the trace) and without it
///   (`NVEMU_PEER_ACCESS=0`: staged through host memory by the driver, `"peer": "staged"`).
///
/// Each: 30 of 30 frames out, luma PSNR of at least 45 dB against the source.
#[test]
fn cuda_memory_of_another_context_or_gpu_is_copied_once_on_the_device() {
    need_emulator!();
    let (w, h, n) = (320, 240, 30);
    let Some((src, reference)) = cuda_source("cm3", w, h, n) else {
        return;
    };
    let enc = "rsnvench265enc rc-mode=constqp qp-const-i=15 qp-const-p=15";
    let caps = "video/x-h265,stream-format=byte-stream";
    for (case, peer) in [
        ("other-context", None),
        ("other-gpu-p2p", Some("direct")),
        ("other-gpu-staged", Some("staged")),
    ] {
        let out = out_dir().join(format!("cm3-{case}.h265"));
        let trace = out_dir().join(format!("cm3-{case}.trace"));
        let _ = std::fs::remove_file(&trace);
        let mut env = vec![("NVEMU_TRACE", trace.to_str().unwrap().to_owned())];
        let o = if peer.is_none() {
            let mut cmd = Command::new(two_pipelines_example());
            cmd.arg(format!(
                "{src} ! cudaupload ! video/x-raw(memory:CUDAMemory)"
            ))
            .arg(format!(
                "{enc} ! {caps} ! filesink location={}",
                out.display()
            ))
            .env("GST_PLUGIN_PATH", plugin_dir())
            .env(
                "GST_REGISTRY",
                out_dir().join(format!("registry-{}.bin", std::process::id())),
            )
            .env("NVEMU_STRICT", "abort")
            .env("LD_LIBRARY_PATH", emu_lib().expect("emulator built"));
            for (k, v) in &env {
                cmd.env(k, v);
            }
            run_bounded(cmd, CHILD_LIMIT)
        } else {
            env.push(("NVEMU_GPU_COUNT", "2".into()));
            if peer == Some("staged") {
                env.push(("NVEMU_PEER_ACCESS", "0".into()));
            }
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            gst_launch_limited(
                &format!(
                    "{src} ! cudaupload cuda-device-id=1 ! video/x-raw(memory:CUDAMemory) ! {enc} cuda-device-id=0 ! {caps} ! filesink location={}",
                    out.display()
                ),
                &env,
                true,
                CHILD_LIMIT,
            )
        };
        assert!(o.status.success(), "{case}: {}", text(&o));
        assert_no_violation(&trace);
        let peers = trace_lines(&trace, "cuMemcpy3DPeer");
        assert_eq!(peers.len(), n, "{case}: one copy per frame");
        for l in &peers {
            assert_eq!(l["status"], "CUDA_SUCCESS", "{case}: {l}");
            assert_eq!(l["kind"], "DtoD", "{case}: {l}");
            assert_eq!(
                l["args"]["Height"], 360,
                "{case}: both planes in one copy: {l}"
            );
            assert_eq!(
                l["args"]["peer"].as_str(),
                peer,
                "{case}: how the copy crossed GPUs: {l}"
            );
            assert_ne!(
                l["args"]["srcContext"], l["args"]["dstContext"],
                "{case}: {l}"
            );
        }
        assert_eq!(
            trace_lines(&trace, "nvEncLockInputBuffer").len(),
            0,
            "{case}: no system-memory copy"
        );
        assert_eq!(
            trace_lines(&trace, "nvEncMapInputResource").len(),
            n,
            "{case}"
        );
        let (frames, ..) = decoded_frames_and_size(&out);
        assert_eq!(frames, n as u64, "{case}: frames out");
        let p = luma_psnr(&out, "hevc", &reference, "yuv444p", w, h);
        eprintln!("{case}: luma PSNR {p:.2} dB");
        assert!(p >= 45.0, "{case}: luma PSNR {p:.2}");
    }
}

/// `tune=ultra-high-quality` reaches NVENC as NV_ENC_TUNING_INFO_ULTRA_HIGH_QUALITY (5) for H.265
/// from API 12.2 and AV1 from 13.0 (the emulator refuses it otherwise, as the API reference
/// says), and falls back to high quality (1), with a warning, elsewhere and for H.264.
#[test]
fn ultra_high_quality_tuning_needs_api_12_2() {
    need_emulator!();
    for (element, api, want) in [
        ("rsnvench265enc", "13.0", 5),
        ("rsnvench265enc", "12.2", 5),
        ("rsnvencav1enc", "13.0", 5),
        ("rsnvencav1enc", "12.2", 1),
        ("rsnvench265enc", "12.1", 1),
        ("rsnvench264enc", "13.0", 1),
    ] {
        let pipeline = format!(
            "videotestsrc num-buffers=5 ! video/x-raw,format=NV12,width=320,height=240,framerate=25/1 ! {element} tune=ultra-high-quality ! fakesink"
        );
        let (o, trace) = launch_traced(
            &pipeline,
            &format!("uhq-{element}-{api}"),
            &[("NVEMU_MAX_API", api)],
        );
        assert!(o.status.success(), "{element} API {api}: {}", text(&o));
        let init = trace_lines(&trace, "nvEncInitializeEncoder");
        assert_eq!(init[0]["args"]["tuningInfo"], want, "{element} API {api}");
        let preset = trace_lines(&trace, "nvEncGetEncodePresetConfigEx");
        assert_eq!(preset.last().unwrap()["args"]["tuningInfo"], want);
    }
}

/// The SDK features beyond nvcodec (split-frame encoding, lookahead level, temporal filter,
/// long-term references) reach `nvEncInitializeEncoder` exactly, in the layout of API 12.1,
/// 12.2 and 13.0, for H.265, AV1 and H.264; where the API has no such field (lookahead level
/// and H.265 temporal filter before 12.2; AV1 temporal filter and LTR, H.264 temporal filter
/// before 13.0) or the GPU lacks the feature (the `ada` model: no lookahead levels for AV1 and
/// H.264, no H.264 temporal filter) the element warns and the trace has no such field (or 0).
/// The emulator validates each (no violation, no refused initialisation) and, for API 13.0,
/// FFmpeg decodes every frame of the output.
#[test]
fn sdk_extensions_reach_nvenc_for_every_api_version() {
    need_emulator!();
    const FRAMES: u64 = 12;
    for (api, _) in INIT_VERS {
        let newer = api != "12.1";
        let v13 = api == "13.0";
        for (element, cfg_member, parser, ext) in [
            ("rsnvench265enc", "hevcConfig", "h265parse !", "h265"),
            ("rsnvencav1enc", "av1Config", "", "av1"),
            ("rsnvench264enc", "h264Config", "h264parse !", "h264"),
        ] {
            let h264 = element == "rsnvench264enc";
            let split = |mode: &str| {
                if h264 {
                    String::new()
                } else {
                    format!("split-encode-mode={mode}")
                }
            };
            // Case 1: 4 B-frames, lookahead level 2, temporal filter, 2 forced strips.
            // Case 2: no B-frames, 3 long-term reference frames, strips chosen by the driver.
            for (case, props) in [
                (
                    "bframes",
                    format!(
                        "bframes=4 rc-lookahead=8 lookahead-level=level-2 temporal-filter-level=level-4 {}",
                        split("two")
                    ),
                ),
                (
                    "ltr",
                    format!("bframes=0 ltr-frames=3 {}", split("auto-forced")),
                ),
            ] {
                let name = format!("sdkext-{case}-{element}-{api}");
                let out = out_dir().join(format!("{name}.mp4"));
                let _ = std::fs::remove_file(&out);
                let trace = out_dir().join(format!("{name}.trace"));
                let _ = std::fs::remove_file(&trace);
                let pipeline = format!(
                    "videotestsrc num-buffers={FRAMES} ! video/x-raw,format=NV12,width=320,height=240,framerate=25/1 ! {element} {props} ! {parser} mp4mux ! filesink location={}",
                    out.display()
                );
                let o = run_bounded(
                    gst_command(
                        &pipeline,
                        &[
                            ("NVEMU_MAX_API", api),
                            ("NVEMU_TRACE", trace.to_str().unwrap()),
                        ],
                        true,
                        false,
                    ),
                    Duration::from_secs(120),
                );
                let t = text(&o);
                assert!(o.status.success(), "{name}: {t}");
                assert_no_violation(&trace);
                let init = trace_lines(&trace, "nvEncInitializeEncoder");
                assert_eq!(init.len(), 1, "{name}");
                assert_eq!(init[0]["status"], "NV_ENC_SUCCESS", "{name}");
                let a = &init[0]["args"];
                let cc =
                    |k: &str| a[format!("encodeConfig.encodeCodecConfig.{cfg_member}.{k}")].clone();
                let rc = |k: &str| a[format!("encodeConfig.rcParams.{k}")].clone();
                let warned = |what: &str| {
                    t.lines()
                        .any(|l| l.starts_with("WARNING: from element") && l.contains(what))
                };
                let absent = serde_json::Value::Null;
                // Split-frame encoding (12.1+, not H.264).
                let want_split = match (h264, case) {
                    (true, _) => 0,
                    (false, "bframes") => 2,
                    (false, _) => 1,
                };
                assert_eq!(a["splitEncodeMode"], want_split, "{name}");
                if case == "bframes" {
                    // Lookahead level: 12.2+, HEVC only on this GPU.
                    let (level, why) = match (newer, element) {
                        (false, _) => (absent.clone(), "needs NVENC API 12.2"),
                        (true, "rsnvench265enc") => (2.into(), ""),
                        (true, _) => (0.into(), "lookahead levels up to 0"),
                    };
                    assert_eq!(rc("lookaheadLevel"), level, "{name}");
                    assert_eq!(rc("enableLookahead"), 1, "{name}");
                    assert_eq!(a["encodeConfig.frameIntervalP"], 5, "{name}");
                    if !why.is_empty() {
                        assert!(
                            warned("lookahead-level=level-2 refused: ") && warned(why),
                            "{name}: {t}"
                        );
                    }
                    // Temporal filter: HEVC 12.2+, AV1 13.0 (cap 1), H.264 13.0 (cap 0).
                    let (tf, why) = match (element, newer, v13) {
                        ("rsnvench265enc", true, _) => (4.into(), ""),
                        ("rsnvench265enc", false, _) => {
                            (absent.clone(), "needs NVENC API 12.2 for H.265")
                        }
                        ("rsnvencav1enc", _, true) => (4.into(), ""),
                        ("rsnvencav1enc", _, false) => {
                            (absent.clone(), "needs NVENC API 13.0 for AV1")
                        }
                        (_, _, true) => (0.into(), "no temporal filter for H.264"),
                        _ => (absent.clone(), "needs NVENC API 13.0 for H.264"),
                    };
                    assert_eq!(cc("tfLevel"), tf, "{name}");
                    if !why.is_empty() {
                        assert!(
                            warned("temporal-filter-level=level-4 refused") && warned(why),
                            "{name}: {t}"
                        );
                    }
                    assert!(!warned("split-encode-mode"), "{name}: {t}");
                } else {
                    // LTR: HEVC and H.264 always, AV1 from 13.0 (no trust mode field there).
                    if element == "rsnvencav1enc" && !v13 {
                        assert_eq!(cc("enableLTR"), absent, "{name}");
                        assert_eq!(cc("ltrNumFrames"), absent, "{name}");
                        assert!(
                            warned("ltr-frames=3 refused") && warned("need NVENC API 13.0"),
                            "{name}: {t}"
                        );
                    } else {
                        assert_eq!(cc("enableLTR"), 1, "{name}");
                        assert_eq!(cc("ltrNumFrames"), 3, "{name}");
                        if element != "rsnvencav1enc" {
                            assert_eq!(cc("ltrTrustMode"), 0, "{name}");
                        }
                        assert!(!warned("refused"), "{name}: {t}");
                    }
                    assert_eq!(a["encodeConfig.frameIntervalP"], 1, "{name}");
                }
                assert_eq!(
                    trace_lines(&trace, "nvEncLockBitstream").len() as u64,
                    FRAMES,
                    "{name}: every frame out"
                );
                if v13 {
                    let (frames, w, _) = decoded_frames_and_size(&out);
                    assert_eq!((frames, w), (FRAMES, 320), "{name}: {ext} decodes");
                }
            }
        }
    }
}

/// Requests the session cannot honour are refused with a warning that says why, and NVENC is
/// told nothing of them (the emulator would refuse each: no violation, initialised once).
#[test]
fn sdk_extension_refusals_say_why() {
    need_emulator!();
    for (name, gpu, api, props, why, field, want) in [
        (
            "split-one-engine",
            "turing",
            "13.0",
            "split-encode-mode=two",
            "needs at least 2 NVENC engines, this GPU has 1",
            "splitEncodeMode",
            0,
        ),
        (
            "split-four-12.2",
            "ada",
            "12.2",
            "split-encode-mode=four",
            "NV_ENC_SPLIT_FOUR_FORCED_MODE needs NVENC API 13.0",
            "splitEncodeMode",
            0,
        ),
        (
            "ltr-with-bframes",
            "ada",
            "13.0",
            "ltr-frames=2 bframes=2",
            "not supported with B-frames",
            "encodeConfig.encodeCodecConfig.hevcConfig.enableLTR",
            0,
        ),
        (
            "ltr-above-cap",
            "ada",
            "13.0",
            "ltr-frames=8",
            "at most 7 long-term references",
            "encodeConfig.encodeCodecConfig.hevcConfig.ltrNumFrames",
            7,
        ),
        (
            "level-without-lookahead",
            "ada",
            "13.0",
            "lookahead-level=level-1",
            "needs lookahead (rc-lookahead > 0",
            "encodeConfig.rcParams.lookaheadLevel",
            0,
        ),
        (
            "tf-two-bframes",
            "ada",
            "13.0",
            "temporal-filter-level=level-4 bframes=2",
            "needs frameIntervalP >= 5",
            "encodeConfig.encodeCodecConfig.hevcConfig.tfLevel",
            0,
        ),
        (
            "tf-zerolatency",
            "ada",
            "13.0",
            "temporal-filter-level=level-4 bframes=4 zerolatency=true",
            "zero reorder delay",
            "encodeConfig.encodeCodecConfig.hevcConfig.tfLevel",
            0,
        ),
        (
            "tf-ampere",
            "ampere",
            "13.0",
            "temporal-filter-level=level-4 bframes=4",
            "no temporal filter for H.265",
            "encodeConfig.encodeCodecConfig.hevcConfig.tfLevel",
            0,
        ),
    ] {
        let trace = out_dir().join(format!("refusal-{name}.trace"));
        let _ = std::fs::remove_file(&trace);
        let pipeline = format!(
            "videotestsrc num-buffers=6 ! video/x-raw,format=NV12,width=320,height=240,framerate=25/1 ! rsnvench265enc {props} ! fakesink"
        );
        let o = run_bounded(
            gst_command(
                &pipeline,
                &[
                    ("NVEMU_GPU", gpu),
                    ("NVEMU_MAX_API", api),
                    ("NVEMU_TRACE", trace.to_str().unwrap()),
                ],
                true,
                false,
            ),
            Duration::from_secs(60),
        );
        let t = text(&o);
        assert!(o.status.success(), "{name}: {t}");
        assert!(
            t.lines()
                .any(|l| l.starts_with("WARNING: from element") && l.contains(why)),
            "{name}: no warning with {why:?}: {t}"
        );
        assert_no_violation(&trace);
        let init = trace_lines(&trace, "nvEncInitializeEncoder");
        assert_eq!(init.len(), 1, "{name}");
        assert_eq!(init[0]["status"], "NV_ENC_SUCCESS", "{name}");
        assert_eq!(init[0]["args"][field], want, "{name}: {field}");
    }
}

/// gst-inspect-1.0 documents each property of the SDK features beyond nvcodec with its blurb,
/// range or enum values, and default; `split-encode-mode` only on the H.265 and AV1 elements.
#[test]
fn gst_inspect_documents_sdk_extension_properties() {
    let run = |element: &str| {
        let mut cmd = Command::new("gst-inspect-1.0");
        cmd.arg(element);
        cmd.env("GST_PLUGIN_PATH", plugin_dir());
        cmd.env(
            "GST_REGISTRY",
            out_dir().join(format!("registry-inspect-{}.bin", std::process::id())),
        );
        let o = run_bounded(cmd, Duration::from_secs(60));
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    for element in ["rsnvench265enc", "rsnvencav1enc", "rsnvench264enc"] {
        let t = run(element);
        for want in [
            "lookahead-level     : Lookahead level (rcParams.lookaheadLevel, NVENC API 12.2+)",
            "Enum \"GstRsNvEncLookaheadLevel\" Default: -1, \"default\"",
            "(15): auto",
            "temporal-filter-level: Temporal filter (tfLevel: H.265 from NVENC API 12.2, AV1 and H.264 from 13.0)",
            "Enum \"GstRsNvEncTemporalFilterLevel\" Default: -1, \"default\"",
            "(4): level-4",
            "ltr-frames          : Long-term reference frames (enableLTR, ltrNumFrames",
            "Unsigned Integer. Range: 0 - 8 Default: 0",
            "ltr-trust-mode      : LTR trust mode (ltrTrustMode, H.264/H.265)",
            "stats               : Running statistics since the element started (application/x-rsnvenc-stats)",
        ] {
            assert!(t.contains(want), "{element}: no {want:?} in\n{t}");
        }
        let split =
            t.contains("split-encode-mode   : Split-frame encoding over several NVENC engines");
        assert_eq!(split, element != "rsnvench264enc", "{element}");
        if split {
            for want in [
                "Enum \"GstRsNvEncSplitEncodeMode\" Default: 0, \"auto\"",
                "(1): auto-forced",
                "(4): four",
                "(15): disabled",
            ] {
                assert!(t.contains(want), "{element}: no {want:?}");
            }
        }
    }
}

/// GStreamer 1.26 (Debian 13) at run time, with its 1.24+ CUDA ABI: `scripts/check-newer-gstreamer`
/// (CUDA caps, cudaupload zero-copy, CUDA memory whose write is still pending on its own CUDA
/// stream, CPU-written CUDA memory, stream-ordered memory, a negative control the emulator must
/// catch, no libgstcuda). Needs root and a Debian 13 root made by that script: runs only when
/// `RSNVENC_TRIXIE_ROOT` names one (`<root>/.rsnvenc-root-ready`), else says so and passes.
#[test]
fn newer_gstreamer_cuda_streams() {
    need_emulator!();
    let Some(troot) = std::env::var_os("RSNVENC_TRIXIE_ROOT").map(PathBuf::from) else {
        eprintln!("skipping: RSNVENC_TRIXIE_ROOT is not set (see scripts/check-newer-gstreamer)");
        return;
    };
    if !troot.join(".rsnvenc-root-ready").exists() {
        eprintln!(
            "skipping: {} is not a root made by scripts/check-newer-gstreamer",
            troot.display()
        );
        return;
    }
    let mut cmd = Command::new(root().join("scripts/check-newer-gstreamer"));
    cmd.env("RSNVENC_TRIXIE_ROOT", &troot);
    let o = run_bounded(cmd, Duration::from_secs(600));
    let out = text(&o);
    eprintln!("{out}");
    assert!(o.status.success(), "{out}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("== all checks passed"));
}

/// The HDR10 caps every HDR test feeds: BT.2020 primaries, D65, 1000 / 0.005 cd/m², MaxCLL
/// 1000, MaxFALL 400 (GStreamer units: 0.00002 and 0.0001 cd/m²). `(string)` keeps
/// gst-launch from reading "1000:400" as a flagset.
const HDR_CAPS: &str = "mastering-display-info=(string)35400:14600:8500:39850:6550:2300:15635:16450:10000000:50,content-light-level=(string)1000:400";

/// `key=value` lines of the frames ffprobe decodes (`-show_frames`), one map per frame.
fn ffprobe_frames(
    file: &Path,
    format: Option<&str>,
) -> Vec<std::collections::HashMap<String, String>> {
    let mut args = vec![];
    if let Some(f) = format {
        args.extend(["-f", f]);
    }
    args.extend(["-show_frames", "-select_streams", "v:0"]);
    let s = ffprobe(&args, file);
    let mut frames = Vec::new();
    let mut cur: Option<std::collections::HashMap<String, String>> = None;
    for l in s.lines() {
        match l.trim() {
            "[FRAME]" => cur = Some(Default::default()),
            "[/FRAME]" => frames.extend(cur.take()),
            kv => {
                if let (Some(m), Some((k, v))) = (cur.as_mut(), kv.split_once('=')) {
                    // Side data keys repeat per side data: keep the first of each.
                    m.entry(k.to_string()).or_insert_with(|| v.to_string());
                    if k == "side_data_type" {
                        let all = m.entry("side_data_types".into()).or_default();
                        all.push_str(v);
                        all.push('|');
                    }
                }
            }
        }
    }
    frames
}

/// HDR10 caps in: for H.265, AV1 and H.264, with the NVENC API of 12.1, 12.2 and 13.0.
/// - The trace shows how it reached NVENC: API 13.0 H.265/AV1 through NVENC's own fields
///   (`outputMasteringDisplay`/`outputMaxCll` at initialise, `pMasteringDisplay`/`pMaxCll` on
///   IDRs, AV1 values in AV1 units), otherwise `seiPayloadArray` (SEI 137/144) or
///   `obuPayloadArray` (metadata types 2/1) with the exact payload bytes, on the 3 IDRs of 30
///   frames only; the emulator's LockBitstream shows them written into exactly those pictures.
/// - FFmpeg decodes them back ("Mastering display metadata", "Content light level metadata")
///   with the caps' values on the key frames (H.265 in 1/50000 and 1/10000 cd/m², AV1 through
///   libdav1d in 1/65536, 1/256 and 1/16384 cd/m²); FFmpeg 5.1's H.264 decoder exports
///   neither, so for H.264 GStreamer's h264parse reads them back into its caps.
#[test]
fn hdr10_metadata_on_idrs_for_every_api_version() {
    need_emulator!();
    // (SEI / metadata type, payload) as the plugin must pass them before 13.0.
    let sei_mdcv = "21349baa199608fc8a4839083d1340420098968000000032";
    let av1_mdcv = "b53f4ac12b85cc0821890bc7500d54390003e80000000052";
    let cll = "03e80190";
    for (api, _) in INIT_VERS {
        for (element, ext) in [
            ("rsnvench265enc", "h265"),
            ("rsnvencav1enc", "obu"),
            ("rsnvench264enc", "h264"),
        ] {
            let out = out_dir().join(format!("hdr-{element}-{api}.{ext}"));
            let _ = std::fs::remove_file(&out);
            let pipeline = format!(
                "videotestsrc num-buffers=30 ! video/x-raw,format=NV12,width=320,height=240,framerate=25/1,{HDR_CAPS} ! {element} gop-size=10 ! filesink location={}",
                out.display()
            );
            let name = format!("hdr-{element}-{api}");
            let (o, trace) = launch_traced(&pipeline, &name, &[("NVEMU_MAX_API", api)]);
            assert!(o.status.success(), "{element} API {api}: {}", text(&o));
            let native = api == "13.0" && element != "rsnvench264enc";
            let (cfg, member) = match element {
                "rsnvench265enc" => ("hevcConfig", "hevcPicParams"),
                "rsnvencav1enc" => ("av1Config", "av1PicParams"),
                _ => ("h264Config", "h264PicParams"),
            };
            let init = &trace_lines(&trace, "nvEncInitializeEncoder")[0]["args"];
            let bit = |k: &str| init[format!("encodeConfig.encodeCodecConfig.{cfg}.{k}")].clone();
            if native {
                assert_eq!(bit("outputMasteringDisplay"), 1, "{element} API {api}");
                assert_eq!(bit("outputMaxCll"), 1, "{element} API {api}");
            } else {
                // Not in the struct before 13.0 (nor in H.264's), so not in the trace.
                assert!(
                    bit("outputMasteringDisplay").is_null(),
                    "{element} API {api}"
                );
            }
            let pics: Vec<serde_json::Value> = trace_lines(&trace, "nvEncEncodePicture")
                .into_iter()
                .filter(|l| l["args"]["encodePicFlags"].as_u64().unwrap_or(0) & 0x8 == 0)
                .collect();
            assert_eq!(pics.len(), 30, "{element} API {api}");
            let p = |l: &serde_json::Value, k: &str| {
                l["args"][format!("codecPicParams.{member}.{k}")].clone()
            };
            let mut with = Vec::new();
            for (i, l) in pics.iter().enumerate() {
                let arr_key = if element == "rsnvencav1enc" {
                    "obuPayloadArray"
                } else {
                    "seiPayloadArray"
                };
                let arr = p(l, arr_key);
                if native {
                    if p(l, "pMasteringDisplay.r.x").is_null() {
                        assert_eq!(p(l, "pMaxCll"), "0x0", "{element} API {api} frame {i}");
                        continue;
                    }
                    with.push(i);
                    let (rx, gy, wx, max, min) = if element == "rsnvencav1enc" {
                        (46399, 52232, 20493, 256_000, 82)
                    } else {
                        (35400, 39850, 15635, 10_000_000, 50)
                    };
                    assert_eq!(p(l, "pMasteringDisplay.r.x"), rx, "{element} frame {i}");
                    assert_eq!(p(l, "pMasteringDisplay.g.y"), gy);
                    assert_eq!(p(l, "pMasteringDisplay.whitePoint.x"), wx);
                    assert_eq!(p(l, "pMasteringDisplay.maxLuma"), max);
                    assert_eq!(p(l, "pMasteringDisplay.minLuma"), min);
                    assert_eq!(p(l, "pMaxCll.maxContentLightLevel"), 1000);
                    assert_eq!(p(l, "pMaxCll.maxPicAverageLightLevel"), 400);
                    assert_eq!(p(l, &format!("{arr_key}Cnt")), 0);
                } else {
                    let Some(a) = arr.as_array() else {
                        assert_eq!(arr, "0x0", "{element} API {api} frame {i}");
                        continue;
                    };
                    with.push(i);
                    let got: Vec<(u64, String)> = a
                        .iter()
                        .map(|e| {
                            (
                                e["payloadType"].as_u64().unwrap(),
                                e["payload"].as_str().unwrap().to_string(),
                            )
                        })
                        .collect();
                    let want = if element == "rsnvencav1enc" {
                        vec![(2, av1_mdcv.to_string()), (1, cll.to_string())]
                    } else {
                        vec![(137, sei_mdcv.to_string()), (144, cll.to_string())]
                    };
                    assert_eq!(got, want, "{element} API {api} frame {i}");
                }
            }
            assert_eq!(
                with,
                [0, 10, 20],
                "{element} API {api}: metadata on the IDRs"
            );
            let locks = trace_lines(&trace, "nvEncLockBitstream");
            let idrs: Vec<u64> = locks
                .iter()
                .filter(|l| l["args"]["out.pictureType"] == 3)
                .map(|l| l["args"]["out.outputTimeStamp"].as_u64().unwrap())
                .collect();
            assert_eq!(idrs.len(), 3, "{element} API {api}: IDRs {idrs:?}");
            for l in &locks {
                let written = l["args"]["out.payloadTypes"].clone();
                if l["args"]["out.pictureType"] == 3 {
                    let want: &[u64] = if element == "rsnvencav1enc" {
                        &[2, 1]
                    } else {
                        &[137, 144]
                    };
                    assert_eq!(written, serde_json::json!(want), "{element} API {api}");
                } else {
                    assert!(written.is_null(), "{element} API {api}: {written}");
                }
            }
            if element == "rsnvench264enc" {
                // gst-launch -v (not -q) prints the negotiated caps.
                let mut cmd = Command::new("gst-launch-1.0");
                cmd.args(["-v", "filesrc"])
                    .arg(format!("location={}", out.display()))
                    .args(["!", "h264parse", "!", "fakesink"])
                    .env(
                        "GST_REGISTRY",
                        out_dir().join(format!("registry-{}.bin", std::process::id())),
                    );
                let o = run_bounded(cmd, Duration::from_secs(60));
                let caps = String::from_utf8_lossy(&o.stdout);
                assert!(
                    caps.contains("mastering-display-info=(string)35400:14600:8500:39850:6550:2300:15635:16450:10000000:50")
                        && caps.contains("content-light-level=(string)1000:400"),
                    "h264parse caps: {caps}"
                );
                continue;
            }
            let frames = ffprobe_frames(&out, (ext == "obu").then_some("obu"));
            assert_eq!(frames.len(), 30, "{element} API {api}: decoded frames");
            let keys: Vec<&std::collections::HashMap<String, String>> =
                frames.iter().filter(|f| f["key_frame"] == "1").collect();
            assert_eq!(keys.len(), 3, "{element} API {api}: key frames");
            for f in keys {
                let types = f.get("side_data_types").map(String::as_str).unwrap_or("");
                assert!(
                    types.contains("Mastering display metadata|")
                        && types.contains("Content light level metadata|"),
                    "{element} API {api}: {types}"
                );
                let want: &[(&str, &str)] = if element == "rsnvencav1enc" {
                    &[
                        ("red_x", "46399/65536"),
                        ("red_y", "19137/65536"),
                        ("green_x", "11141/65536"),
                        ("green_y", "52232/65536"),
                        ("blue_x", "8585/65536"),
                        ("blue_y", "3015/65536"),
                        ("white_point_x", "20493/65536"),
                        ("white_point_y", "21561/65536"),
                        ("min_luminance", "82/16384"),
                        ("max_luminance", "256000/256"),
                    ]
                } else {
                    &[
                        ("red_x", "35400/50000"),
                        ("red_y", "14600/50000"),
                        ("green_x", "8500/50000"),
                        ("green_y", "39850/50000"),
                        ("blue_x", "6550/50000"),
                        ("blue_y", "2300/50000"),
                        ("white_point_x", "15635/50000"),
                        ("white_point_y", "16450/50000"),
                        ("min_luminance", "50/10000"),
                        ("max_luminance", "10000000/10000"),
                    ]
                };
                for (k, v) in want
                    .iter()
                    .chain(&[("max_content", "1000"), ("max_average", "400")])
                {
                    assert_eq!(
                        f.get(*k).map(String::as_str),
                        Some(*v),
                        "{element} API {api}: {k}"
                    );
                }
            }
        }
    }
}

/// Caps colorimetry reaches the stream's colour description (H.264/H.265 VUI, AV1 sequence
/// header colour config) as FFmpeg reads it back: BT.709, BT.601 (SMPTE 170M) and BT.2020
/// (10-bit; GStreamer's `bt2020` has the 12-bit transfer) for each element that takes them.
#[test]
fn colorimetry_reaches_the_stream() {
    need_emulator!();
    for element in ["rsnvench265enc", "rsnvench264enc", "rsnvencav1enc"] {
        for (caps, want) in [
            ("NV12,colorimetry=bt709", "yuv420p,tv,bt709,bt709,bt709"),
            (
                "NV12,colorimetry=bt601",
                "yuv420p,tv,smpte170m,smpte170m,smpte170m",
            ),
            (
                "P010_10LE,colorimetry=bt2020",
                "yuv420p10le,tv,bt2020nc,bt2020-12,bt2020",
            ),
        ] {
            if element == "rsnvench264enc" && caps.starts_with("P010") {
                continue; // no 10-bit H.264 on the emulated GPUs
            }
            let out = out_dir().join(format!("colour-{element}-{}.mkv", &caps[..4]));
            let (o, _) = launch_traced(
                &format!(
                    "videotestsrc num-buffers=5 ! video/x-raw,format={caps},width=320,height=240,framerate=25/1 ! {element} ! matroskamux ! filesink location={}",
                    out.display()
                ),
                &format!("colour-{element}-{}", &caps[..4]),
                &[],
            );
            assert!(o.status.success(), "{element} {caps}: {}", text(&o));
            let got = ffprobe(
                &[
                    "-select_streams",
                    "v:0",
                    "-show_entries",
                    "stream=pix_fmt,color_range,color_space,color_transfer,color_primaries",
                    "-of",
                    "csv=p=0",
                ],
                &out,
            );
            assert_eq!(got.trim(), want, "{element} {caps}");
        }
    }
}

/// `rc-mode=cbr bitrate=1000` (kbit/s, x1024 into NVENC as nvcodec) on the real clip played
/// twice (380 frames, 15.2 s at 25 fps: the clip decoded once to raw I420, the file doubled, read
/// back with `rawvideoparse`): `rcParams` says CBR at 1024000 bit/s and the stream's own rate,
/// from its packet sizes over its duration, is within 10% of it.
#[test]
fn cbr_holds_the_target_over_the_real_clip() {
    need_emulator!();
    let raw = out_dir().join("cbr-clip-twice.i420");
    let o = gst_launch(
        &format!(
            "filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format=I420,width=720,height=405 ! filesink location={}",
            clip().display(),
            raw.display()
        ),
        &[],
        false,
    );
    assert!(o.status.success(), "decoding the clip: {}", text(&o));
    let once = std::fs::read(&raw).expect("read raw clip");
    // GStreamer's I420 layout for 720x405: the luma plane padded to 406 rows, chroma 360x203.
    assert_eq!(
        once.len(),
        190 * (720 * 406 + 2 * 360 * 203),
        "190 I420 frames"
    );
    let mut twice = once.clone();
    twice.extend_from_slice(&once);
    std::fs::write(&raw, &twice).expect("write doubled clip");
    for element in ["rsnvench265enc", "rsnvench264enc", "rsnvencav1enc"] {
        let out = out_dir().join(format!("cbr-{element}.mkv"));
        let (o, trace) = launch_traced(
            &format!(
                "filesrc location={raw} ! rawvideoparse width=720 height=405 format=i420 framerate=25/1 ! videoconvert ! {element} rc-mode=cbr bitrate=1000 ! matroskamux ! filesink location={out}",
                out = out.display(),
                raw = raw.display()
            ),
            &format!("cbr-{element}"),
            &[],
        );
        assert!(o.status.success(), "{element}: {}", text(&o));
        let init = &trace_lines(&trace, "nvEncInitializeEncoder")[0]["args"];
        assert_eq!(
            init["encodeConfig.rcParams.rateControlMode"], 2,
            "{element}: CBR"
        );
        assert_eq!(
            init["encodeConfig.rcParams.averageBitRate"], 1_024_000,
            "{element}"
        );
        let sizes = ffprobe(
            &[
                "-select_streams",
                "v:0",
                "-show_entries",
                "packet=size",
                "-of",
                "csv=p=0",
            ],
            &out,
        );
        let sizes: Vec<u64> = sizes
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        assert_eq!(sizes.len(), 380, "{element}: frames");
        let secs = sizes.len() as f64 / 25.0;
        let rate = sizes.iter().sum::<u64>() as f64 * 8.0 / secs;
        eprintln!(
            "{element}: {:.0} kbit/s (x1000) over {secs} s, target 1024",
            rate / 1000.0
        );
        assert!(
            (rate / 1_024_000.0 - 1.0).abs() <= 0.10,
            "{element}: {rate:.0} bit/s against 1024000"
        );
    }
    let _ = std::fs::remove_file(&raw);
}

/// NVTX ranges: with `libnvToolsExt.so.1` on the library path (the emulator's stand-in, which
/// records pushes and pops in `NVEMU_NVTX`), every frame gets its named ranges (upload and
/// encode submit on the streaming thread, bitstream lock and finish on the output thread, or
/// finish on the streaming thread when EOS drains), balanced on every thread; without the
/// library the same encode runs as before and nothing is recorded.
#[test]
fn nvtx_ranges_mark_every_frame() {
    need_emulator!();
    let nvtx_dir = root().join("target/nvemu/nvtx");
    assert!(
        nvtx_dir.join("libnvToolsExt.so.1").exists(),
        "scripts/build-emulator installs the NVTX stand-in in {}",
        nvtx_dir.display()
    );
    let n = 24;
    for (el, caps) in [
        ("rsnvench265enc", "video/x-h265,stream-format=byte-stream"),
        ("rsnvencav1enc", "video/x-av1"),
    ] {
        let pipeline = format!(
            "videotestsrc num-buffers={n} ! video/x-raw,format=NV12,width=320,height=240 ! {el} ! {caps} ! fakesink"
        );
        let record = out_dir().join(format!("nvtx-{el}.jsonl"));
        let absent = out_dir().join(format!("nvtx-{el}-absent.jsonl"));
        for p in [&record, &absent] {
            let _ = std::fs::remove_file(p);
        }
        let path = format!("{}:{}", emu_lib().unwrap().display(), nvtx_dir.display());
        let (o, _) = launch_traced(
            &pipeline,
            &format!("nvtx-{el}"),
            &[
                ("LD_LIBRARY_PATH", path.as_str()),
                ("NVEMU_NVTX", record.to_str().unwrap()),
            ],
        );
        assert!(o.status.success(), "{el}: {}", text(&o));
        let text_of = std::fs::read_to_string(&record).expect("NVTX stand-in wrote its record");
        let lines: Vec<serde_json::Value> = text_of
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON line"))
            .collect();
        // Balanced per thread: each pop ends the level the last open push started.
        let mut open: std::collections::HashMap<i64, Vec<String>> = Default::default();
        let mut count: std::collections::HashMap<String, usize> = Default::default();
        for l in &lines {
            let tid = l["thread"].as_i64().unwrap();
            let stack = open.entry(tid).or_default();
            match l["call"].as_str().unwrap() {
                "nvtxRangePushA" => {
                    assert_eq!(l["level"].as_i64().unwrap(), stack.len() as i64, "{l}");
                    let name = l["message"].as_str().unwrap().to_owned();
                    *count.entry(name.clone()).or_default() += 1;
                    stack.push(name);
                }
                "nvtxRangePop" => {
                    assert!(stack.pop().is_some(), "{el}: pop without a push: {l}");
                    assert_eq!(l["level"].as_i64().unwrap(), stack.len() as i64, "{l}");
                }
                c => panic!("{el}: unexpected call {c}"),
            }
        }
        assert!(
            open.values().all(Vec::is_empty),
            "{el}: ranges left open: {open:?}"
        );
        for name in [
            "rsnvenc upload",
            "rsnvenc encode submit",
            "rsnvenc bitstream lock",
            "rsnvenc finish",
        ] {
            assert_eq!(count.get(name), Some(&n), "{el}: {name}: {count:?}");
        }
        assert_eq!(count.len(), 4, "{el}: only our ranges: {count:?}");
        // Upload and submit on one thread (streaming), bitstream locks on another (output).
        let threads_of = |name: &str| {
            let mut t: Vec<i64> = lines
                .iter()
                .filter(|l| l["message"] == name)
                .map(|l| l["thread"].as_i64().unwrap())
                .collect();
            t.sort();
            t.dedup();
            t
        };
        let (up, lock) = (
            threads_of("rsnvenc upload"),
            threads_of("rsnvenc bitstream lock"),
        );
        assert_eq!(up, threads_of("rsnvenc encode submit"), "{el}");
        assert_eq!((up.len(), lock.len()), (1, 1), "{el}: {up:?} {lock:?}");
        assert_ne!(up, lock, "{el}: the output thread locks the bitstreams");

        // Without the library (only the NVENC/CUDA stand-ins on the path): the same encode,
        // nothing recorded.
        let (o, _) = launch_traced(
            &pipeline,
            &format!("nvtx-{el}-absent"),
            &[("NVEMU_NVTX", absent.to_str().unwrap())],
        );
        assert!(o.status.success(), "{el} without NVTX: {}", text(&o));
        assert!(!absent.exists(), "{el}: no NVTX library, no record");
    }
}
