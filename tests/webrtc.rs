// SPDX-License-Identifier: MPL-2.0
//! `examples/python/webrtc.py`: two `webrtcbin`s in one Python process, over loopback, the
//! sender encoding with `rsnvench264enc` / `rsnvench265enc` on the NVENC emulator, the receiver
//! decoding what ICE, DTLS-SRTP and RTP carried. Skips (with a message) if the emulator is not
//! built, as `tests/e2e.rs` does.

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

/// Runs the example with `args`; `lib` is the library path in front of the driver (the
/// emulator's, or an empty directory for "no driver"); `trace` the emulator's trace file.
fn webrtc_example(args: &[&str], lib: &Path, trace: &Path) -> Output {
    let python = if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let _ = std::fs::remove_file(trace);
    let mut cmd = Command::new(python);
    cmd.arg(root().join("examples/python/webrtc.py")).args(args);
    cmd.env("GST_PLUGIN_PATH", plugin_dir());
    cmd.env(
        "GST_REGISTRY",
        out_dir().join(format!("registry-webrtc-{}.bin", std::process::id())),
    );
    cmd.env("LD_LIBRARY_PATH", lib);
    cmd.env("NVEMU_STRICT", "abort");
    cmd.env("NVEMU_TRACE", trace);
    run_bounded(cmd, Duration::from_secs(120))
}

/// H.264 and H.265 each: 60 frames of 640x360 arrive decoded at the receiver, NVENC coded at
/// least as many pictures, and the trace has no contract violation.
#[test]
fn webrtcbin_two_peers_on_loopback() {
    need_emulator!();
    for (codec, element) in [("h264", "rsnvench264enc"), ("h265", "rsnvench265enc")] {
        let trace = out_dir().join(format!("webrtc-{codec}.trace"));
        let o = webrtc_example(
            &["--codec", codec, "--frames", "60"],
            &emu_lib().unwrap(),
            &trace,
        );
        let t = text(&o);
        assert!(o.status.success(), "{codec}: {t}");
        assert!(
            t.contains(&format!(
                "received 60 frames (640x360) from {element} over webrtcbin"
            )),
            "{t}"
        );
        assert_no_violation(&trace);
        assert!(
            trace_lines(&trace, "nvEncLockBitstream").len() >= 60,
            "{codec}: fewer than 60 bitstreams locked"
        );
    }
}

/// Without a driver the sender's encoder fails at start: the example reports the bus error and
/// exits non-zero instead of waiting for frames that never come.
#[test]
fn webrtcbin_example_fails_without_a_driver() {
    need_emulator!();
    let trace = out_dir().join("webrtc-nodriver.trace");
    let o = webrtc_example(
        &["--frames", "10", "--timeout", "30"],
        &out_dir().join("no-such-dir"),
        &trace,
    );
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("webrtc.py: /GstPipeline:"), "{t}");
    assert!(!t.contains("timed out"), "{t}");
}
