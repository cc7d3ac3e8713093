// SPDX-License-Identifier: MPL-2.0
//! A drop-in for GStreamer 1.22's NVENC encoders (Debian 12): 1.22's `nvcudah264enc` /
//! `nvcudah265enc` property names as deprecated aliases, I420 and YV12 input (NVENC's IYUV and
//! YV12 buffer formats) on every element, `decodebin ! rsnvench264enc` with no converter, and
//! the `encoder` tag. (Interlaced input refused: `tests/element.rs`, in process, because
//! `gst-launch-1.0` 1.22 can hang on a pipeline that fails at once.) Each case runs
//! `gst-launch-1.0` on the NVENC emulator; skips (with a message) if it is not built.

#[path = "../nvemu/nvenc/tests/common/tools.rs"]
mod tools;
use tools::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// `target/<profile>`, where the test binary's plugin was built.
fn plugin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf()
}

/// `gst-launch-1.0 args pipeline` on the emulator with the trace in `target/e2e/<name>.trace`
/// (checked for contract violations).
fn launch(args: &[&str], pipeline: &str, name: &str) -> (Output, PathBuf) {
    let trace = out_dir().join(format!("dropin-{name}.trace"));
    let _ = std::fs::remove_file(&trace);
    let mut cmd = Command::new("gst-launch-1.0");
    cmd.args(args).args(pipeline.split_whitespace());
    cmd.env("GST_PLUGIN_PATH", plugin_dir());
    cmd.env(
        "GST_REGISTRY",
        out_dir().join(format!("registry-dropin-{}.bin", std::process::id())),
    );
    cmd.env("LD_LIBRARY_PATH", emu_lib().expect("emulator built"));
    cmd.env("NVEMU_STRICT", "abort");
    cmd.env("NVEMU_TRACE", &trace);
    let o = run_bounded(cmd, Duration::from_secs(180));
    assert_no_violation(&trace);
    (o, trace)
}

const SRC: &str =
    "videotestsrc num-buffers=10 ! video/x-raw,format=NV12,width=320,height=240,framerate=25/1";

/// The property string a GStreamer 1.22 user wrote for `nvcudah26xenc` works unchanged:
/// `rate-control=cqp` with `qp-i/-p/-b`, `b-frames`, `zero-reorder-delay`; and
/// `rate-control=vbr` with `min-qp-*`/`max-qp-*`. NVENC is told what our own names say.
#[test]
fn gstreamer_1_22_property_names_reach_nvenc() {
    need_emulator!();
    for element in ["rsnvench264enc", "rsnvench265enc"] {
        let (o, trace) = launch(
            &["-q"],
            &format!(
                "{SRC} ! {element} rate-control=cqp qp-i=20 qp-p=22 qp-b=24 b-frames=2 zero-reorder-delay=false ! fakesink"
            ),
            &format!("cqp-{element}"),
        );
        assert!(o.status.success(), "{element}: {}", text(&o));
        let init = trace_lines(&trace, "nvEncInitializeEncoder");
        let a = &init[0]["args"];
        let rc = |k: &str| a[format!("encodeConfig.rcParams.{k}")].clone();
        assert_eq!(rc("rateControlMode"), 0, "{element}: CONSTQP");
        assert_eq!(rc("constQP.qpIntra"), 20, "{element}");
        assert_eq!(rc("constQP.qpInterP"), 22, "{element}");
        assert_eq!(rc("constQP.qpInterB"), 24, "{element}");
        assert_eq!(rc("zeroReorderDelay"), 0, "{element}");
        assert_eq!(a["encodeConfig.frameIntervalP"], 3, "{element}: b-frames=2");

        let (o, trace) = launch(
            &["-q"],
            &format!(
                "{SRC} ! {element} rate-control=vbr bitrate=2000 min-qp-i=10 min-qp-p=12 min-qp-b=14 max-qp-i=40 max-qp-p=41 max-qp-b=42 zero-reorder-delay=true ! fakesink"
            ),
            &format!("vbr-{element}"),
        );
        assert!(o.status.success(), "{element}: {}", text(&o));
        let init = trace_lines(&trace, "nvEncInitializeEncoder");
        let a = &init[0]["args"];
        let rc = |k: &str| a[format!("encodeConfig.rcParams.{k}")].clone();
        for (k, v) in [
            ("rateControlMode", 1),
            ("enableMinQP", 1),
            ("minQP.qpIntra", 10),
            ("minQP.qpInterP", 12),
            ("minQP.qpInterB", 14),
            ("enableMaxQP", 1),
            ("maxQP.qpIntra", 40),
            ("maxQP.qpInterP", 41),
            ("maxQP.qpInterB", 42),
            ("zeroReorderDelay", 1),
        ] {
            assert_eq!(rc(k), v, "{element}: rcParams.{k}");
        }
    }
}

/// The aliases read back what our names hold, and `gst-inspect-1.0` marks them deprecated with
/// a blurb naming the property they stand for.
#[test]
fn aliases_are_documented_as_deprecated() {
    need_emulator!();
    let mut cmd = Command::new("gst-inspect-1.0");
    cmd.arg("rsnvench265enc");
    cmd.env("GST_PLUGIN_PATH", plugin_dir());
    cmd.env(
        "GST_REGISTRY",
        out_dir().join(format!("registry-dropin-{}.bin", std::process::id())),
    );
    let o = run_bounded(cmd, Duration::from_secs(60));
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    for (alias, ours) in [
        ("rate-control", "rc-mode"),
        ("b-frames", "bframes"),
        ("zero-reorder-delay", "zerolatency"),
        ("qp-i", "qp-const-i"),
        ("min-qp-p", "qp-min-p"),
        ("max-qp-b", "qp-max-b"),
    ] {
        let line = t
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{alias} ")))
            .unwrap_or_else(|| panic!("no {alias} in {t}"));
        assert!(
            line.contains(&format!("Deprecated alias of {ours} ")),
            "{line}"
        );
    }
    assert!(t.contains("(0): cqp"), "rate-control's 1.22 nick cqp: {t}");
    assert!(t.contains("deprecated, changeable"), "{t}");
}

/// I420 and YV12 reach NVENC as IYUV and YV12 (chroma at half the pitch), for every element,
/// also at an odd size; the decoded pictures equal those of the same source given as NV12.
#[test]
fn i420_and_yv12_input() {
    need_emulator!();
    for element in ["rsnvench264enc", "rsnvench265enc", "rsnvencav1enc"] {
        let decoded = |format: &str| -> Vec<u8> {
            let out = out_dir().join(format!("dropin-{element}-{format}.mkv"));
            let (o, trace) = launch(
                &["-q", "-e"],
                &format!(
                    "videotestsrc num-buffers=5 pattern=smpte ! video/x-raw,format={format},width=321,height=241,framerate=25/1 ! {element} rc-mode=constqp qp-const-i=10 qp-const-p=10 ! matroskamux ! filesink location={}",
                    out.display()
                ),
                &format!("{element}-{format}"),
            );
            assert!(o.status.success(), "{element} {format}: {}", text(&o));
            let init = trace_lines(&trace, "nvEncInitializeEncoder");
            // NV_ENC_BUFFER_FORMAT_IYUV, _YV12, _NV12.
            let want = match format {
                "I420" => 0x100,
                "YV12" => 0x10,
                _ => 0x1,
            };
            let created = trace_lines(&trace, "nvEncCreateInputBuffer");
            assert!(
                created.iter().all(|c| c["args"]["bufferFmt"] == want),
                "{element} {format}: {created:?}"
            );
            assert!(!init.is_empty());
            let o = Command::new("ffmpeg")
                .args(["-v", "error", "-i"])
                .arg(&out)
                .args(["-f", "rawvideo", "-pix_fmt", "yuv420p", "-"])
                .output()
                .expect("ffmpeg");
            assert!(o.status.success(), "{}", text(&o));
            o.stdout
        };
        let nv12 = decoded("NV12");
        assert!(!nv12.is_empty());
        for format in ["I420", "YV12"] {
            assert_eq!(
                decoded(format),
                nv12,
                "{element}: {format} decodes to the NV12 input's pictures"
            );
        }
    }
}

/// The pipeline: `decodebin` (MPEG-2, I420 out) straight into `rsnvench264enc`, no
/// converter, as with nvcodec's `nvh264enc`.
#[test]
fn decodebin_straight_into_rsnvench264enc() {
    need_emulator!();
    let clip = root().join("tests/data/cityCC0.mpg");
    if !clip.exists() {
        let st = Command::new(root().join("scripts/fetch-test-clip"))
            .status()
            .expect("run scripts/fetch-test-clip");
        assert!(st.success());
    }
    let out = out_dir().join("dropin-decodebin.mp4");
    let (o, trace) = launch(
        &["-q", "-e"],
        &format!(
            "filesrc location={} ! decodebin ! rsnvench264enc ! h264parse ! mp4mux ! filesink location={}",
            clip.display(),
            out.display()
        ),
        "decodebin",
    );
    assert!(o.status.success(), "{}", text(&o));
    let created = trace_lines(&trace, "nvEncCreateInputBuffer");
    assert_eq!(
        created[0]["args"]["bufferFmt"], 0x100,
        "decodebin gave I420"
    );
    let (frames, w, _) = decoded_frames_and_size(&out);
    assert_eq!((frames, w), (190, 720));
}

/// The `encoder` tag names the element, the plugin version and the NVENC API, as x264enc's
/// names x264.
#[test]
fn encoder_tag() {
    need_emulator!();
    for element in ["rsnvench264enc", "rsnvench265enc", "rsnvencav1enc"] {
        let (o, _) = launch(&["-t"], &format!("{SRC} ! {element} ! fakesink"), "tag");
        let t = text(&o);
        assert!(o.status.success(), "{t}");
        let want = format!(
            "encoder: {element} {} (NVIDIA NVENC API 13.0)",
            env!("CARGO_PKG_VERSION")
        );
        assert!(t.contains(&want), "{want} not in {t}");
    }
}
