// SPDX-License-Identifier: MPL-2.0
//! What our elements tell NVENC where NVIDIA's own client (PyNvVideoCodec, through
//! `scripts/compare-nvidia`) showed the intended use (issue 10, items 4 and 5; see
//! docs/emulator-contract.md, "Our element next to NVIDIA's client" and "Lossless"):
//! - lossless tuning only where `NV_ENC_CAPS_SUPPORT_LOSSLESS_ENCODE` is 1 (H.264 and H.265 on
//!   the emulated GPUs, as on real Turing, Ampere and Ada): there the output decodes bit-exact
//!   (H.264 as High 4:4:4 Predictive); where it is 0 (AV1) a warning and high-quality tuning;
//! - H.264 with B-frames signals `bitstream_restriction_flag` in the VUI;
//! - the preset's `useBFramesAsRef` is kept unless `b-ref-mode` is set.
//!
//! Each case runs `gst-launch-1.0` as a child process with the freshly built plugin and the
//! emulator's stand-ins, `NVEMU_STRICT=abort` and a trace checked for contract violations. Run
//! alone they skip (with a message) if the emulator is not built.

#[path = "../nvemu/nvenc/tests/common/tools.rs"]
mod tools;
use tools::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// The raw NV12 input of every case: a moving ball (videotestsrc is deterministic), 320x240.
const SRC: &str = "videotestsrc num-buffers=12 pattern=ball ! video/x-raw,format=NV12,width=320,height=240,framerate=25/1";
const FRAMES: u64 = 12;

fn plugin_dir() -> PathBuf {
    // The test binary lives in target/<profile>/deps.
    let exe = std::env::current_exe().expect("test exe path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf()
}

/// Runs `pipeline` in gst-launch-1.0 (not quiet: element warnings are printed) with the
/// emulator and `NVEMU_TRACE` set to `target/e2e/parity-<name>.trace`; checks the trace has no
/// contract violation. Returns the output and the trace.
fn launch(pipeline: &str, name: &str) -> (Output, PathBuf) {
    let trace = out_dir().join(format!("parity-{name}.trace"));
    let _ = std::fs::remove_file(&trace);
    let mut cmd = Command::new("gst-launch-1.0");
    cmd.args(pipeline.split_whitespace());
    cmd.env("GST_PLUGIN_PATH", plugin_dir());
    cmd.env(
        "GST_REGISTRY",
        out_dir().join(format!("registry-parity-{}.bin", std::process::id())),
    );
    cmd.env("NVEMU_STRICT", "abort");
    cmd.env("NVEMU_TRACE", &trace);
    cmd.env("LD_LIBRARY_PATH", emu_lib().expect("emulator built"));
    let o = run_bounded(cmd, Duration::from_secs(120));
    assert!(o.status.success(), "{name}: {}", text(&o));
    assert_no_violation(&trace);
    (o, trace)
}

/// The one `nvEncInitializeEncoder` of the trace (it must have succeeded).
fn init_args(trace: &Path) -> serde_json::Value {
    let init = trace_lines(trace, "nvEncInitializeEncoder");
    assert_eq!(init.len(), 1, "{}: one session", trace.display());
    assert_eq!(init[0]["status"], "NV_ENC_SUCCESS");
    init[0]["args"].clone()
}

fn warnings(o: &Output) -> Vec<String> {
    text(o)
        .lines()
        .filter(|l| l.starts_with("WARNING: from element"))
        .map(str::to_string)
        .collect()
}

/// Encodes [`SRC`] with `encoder` (element and properties) through `parser` into
/// `parity-<name>.mp4`, and writes the raw input beside it (`parity-<name>.nv12`).
fn encode(encoder: &str, parser: &str, name: &str) -> (Output, PathBuf, PathBuf, PathBuf) {
    let (mp4, raw) = (
        out_dir().join(format!("parity-{name}.mp4")),
        out_dir().join(format!("parity-{name}.nv12")),
    );
    let _ = std::fs::remove_file(&mp4);
    let _ = std::fs::remove_file(&raw);
    let pipeline = format!(
        "{SRC} ! tee name=t t. ! queue ! filesink location={} t. ! queue ! {encoder} ! {parser} ! mp4mux ! filesink location={}",
        raw.display(),
        mp4.display()
    );
    let (o, trace) = launch(&pipeline, name);
    (o, trace, mp4, raw)
}

/// `mp4` decoded by FFmpeg to raw NV12.
fn decode_nv12(mp4: &Path) -> Vec<u8> {
    let o = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(mp4)
        .args(["-f", "rawvideo", "-pix_fmt", "nv12", "-"])
        .output()
        .expect("run ffmpeg");
    assert!(o.status.success(), "ffmpeg decode: {}", text(&o));
    o.stdout
}

/// Lossless H.264/H.265: tuning LOSSLESS at P5 (constant QP 0, the preset's), every frame,
/// and FFmpeg's decode equals the input byte for byte.
fn assert_lossless(trace: &Path, mp4: &Path, raw: &Path) -> serde_json::Value {
    let args = init_args(trace);
    assert_eq!(args["tuningInfo"], 4, "NV_ENC_TUNING_INFO_LOSSLESS");
    assert_eq!(args["presetGUID"], "NV_ENC_PRESET_P5_GUID");
    let (frames, w, h) = decoded_frames_and_size(mp4);
    assert_eq!((frames, w, h), (FRAMES, 320, 240));
    let input = std::fs::read(raw).expect("raw input");
    assert_eq!(input.len(), 320 * 240 * 3 / 2 * FRAMES as usize);
    let decoded = decode_nv12(mp4);
    assert_eq!(decoded.len(), input.len(), "decoded size");
    let differ = decoded.iter().zip(&input).filter(|(a, b)| a != b).count();
    assert_eq!(
        differ,
        0,
        "{}: {differ} bytes differ from the input",
        mp4.display()
    );
    args
}

/// AV1: every emulated GPU reports `NV_ENC_CAPS_SUPPORT_LOSSLESS_ENCODE` 0 (as real Ada does):
/// `preset=lossless` warns, asks high-quality tuning at P5 (also of the preset config) and
/// encodes every frame instead of failing at `nvEncInitializeEncoder`.
#[test]
fn av1_lossless_falls_back_to_high_quality_with_a_warning() {
    need_emulator!();
    for (preset, guid) in [
        ("lossless", "NV_ENC_PRESET_P5_GUID"),
        ("lossless-hp", "NV_ENC_PRESET_P3_GUID"),
    ] {
        let name = format!("av1-{preset}");
        let (o, trace, mp4, _) =
            encode(&format!("rsnvencav1enc preset={preset}"), "av1parse", &name);
        let w = warnings(&o);
        assert!(
            w.iter()
                .any(|l| l.contains("lossless encoding is not supported")),
            "{name}: no warning: {}",
            text(&o)
        );
        let args = init_args(&trace);
        assert_eq!(
            args["tuningInfo"], 1,
            "{name}: NV_ENC_TUNING_INFO_HIGH_QUALITY"
        );
        assert_eq!(args["presetGUID"], guid, "{name}");
        let preset_cfg = trace_lines(&trace, "nvEncGetEncodePresetConfigEx");
        assert_eq!(
            preset_cfg.last().unwrap()["args"]["tuningInfo"],
            1,
            "{name}"
        );
        let (frames, w, h) = decoded_frames_and_size(&mp4);
        assert_eq!((frames, w, h), (FRAMES, 320, 240), "{name}");
    }
}

#[test]
fn h265_lossless_decodes_bit_exact() {
    need_emulator!();
    let (o, trace, mp4, raw) = encode(
        "rsnvench265enc preset=lossless",
        "h265parse",
        "h265-lossless",
    );
    assert!(warnings(&o).is_empty(), "{}", text(&o));
    assert_lossless(&trace, &mp4, &raw);
}

#[test]
fn h264_lossless_is_high_444_and_decodes_bit_exact() {
    need_emulator!();
    let (o, trace, mp4, raw) = encode(
        "rsnvench264enc preset=lossless",
        "h264parse",
        "h264-lossless",
    );
    assert!(warnings(&o).is_empty(), "{}", text(&o));
    let args = assert_lossless(&trace, &mp4, &raw);
    assert_eq!(
        args["encodeConfig.profileGUID"],
        "NV_ENC_H264_PROFILE_HIGH_444_GUID"
    );
    let profile = ffprobe(
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=profile",
            "-of",
            "csv=p=0",
        ],
        &mp4,
    );
    assert!(profile.contains("4:4:4"), "profile {profile}");
}

/// H.264 with B-frames sets `bitstreamRestrictionFlag` (max_num_reorder_frames in the VUI) as
/// NVIDIA's client does; without B-frames it stays as the preset has it (0).
#[test]
fn h264_bframes_signal_bitstream_restriction() {
    need_emulator!();
    const FIELD: &str =
        "encodeConfig.encodeCodecConfig.h264Config.h264VUIParameters.bitstreamRestrictionFlag";
    for (bframes, want) in [(2, 1), (0, 0)] {
        let name = format!("h264-bframes-{bframes}");
        let (_, trace, mp4, _) = encode(
            &format!("rsnvench264enc bframes={bframes}"),
            "h264parse",
            &name,
        );
        let args = init_args(&trace);
        assert_eq!(args["encodeConfig.frameIntervalP"], bframes + 1, "{name}");
        assert_eq!(args[FIELD], want, "{name}");
        assert_eq!(decoded_frames_and_size(&mp4).0, FRAMES, "{name}");
    }
}

/// P7 with B-frames keeps the preset's `useBFramesAsRef` (the emulated driver's P7 has MIDDLE,
/// 2, as a real driver's) unless `b-ref-mode` is set; the property still reads `disabled`.
#[test]
fn p7_keeps_the_presets_b_frame_reference_mode() {
    need_emulator!();
    for (element, parser, field) in [
        (
            "rsnvench265enc",
            "h265parse",
            "encodeConfig.encodeCodecConfig.hevcConfig.useBFramesAsRef",
        ),
        (
            "rsnvench264enc",
            "h264parse",
            "encodeConfig.encodeCodecConfig.h264Config.useBFramesAsRef",
        ),
        (
            "rsnvencav1enc",
            "av1parse",
            "encodeConfig.encodeCodecConfig.av1Config.useBFramesAsRef",
        ),
    ] {
        for (props, want) in [("", 2), (" b-ref-mode=disabled", 0)] {
            let name = format!("{element}-p7{}", props.replace([' ', '='], "-"));
            let (_, trace, mp4, _) = encode(
                &format!("{element} preset=p7 bframes=2{props}"),
                parser,
                &name,
            );
            let preset = trace_lines(&trace, "nvEncGetEncodePresetConfigEx");
            let out = field.replacen("encodeConfig", "out.presetCfg", 1);
            assert_eq!(
                preset.last().unwrap()["args"][&out],
                2,
                "{name}: P7's MIDDLE"
            );
            let args = init_args(&trace);
            assert_eq!(args[field], want, "{name}");
            assert_eq!(decoded_frames_and_size(&mp4).0, FRAMES, "{name}");
        }
    }
}
