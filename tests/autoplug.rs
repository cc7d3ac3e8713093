// SPDX-License-Identifier: MPL-2.0
//! The elements' rank comes from a probe at plugin load (`src/lib.rs`): where the driver loads
//! and a GPU encodes the codec, autopluggers choose them (`encodebin`, `gst-transcoder-1.0`);
//! where not, they stay documented with rank none. The plugin declares the driver libraries,
//! `/dev/nvidia*` and their environment variables as dependencies, so one registry file follows
//! the driver appearing and going (here: the emulator's stand-ins on and off
//! `LD_LIBRARY_PATH`). Skips (with a message) if the emulator is not built.

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

/// `program args` with our plugin, the registry `registry`, and the emulator's stand-ins in
/// front of the driver when `driver` (else an empty library path: no driver); `env` on top.
fn run(
    program: &str,
    args: &[&str],
    registry: &Path,
    driver: bool,
    env: &[(&str, &str)],
) -> Output {
    let mut cmd = Command::new(program);
    cmd.args(args);
    cmd.env("GST_PLUGIN_PATH", plugin_dir());
    cmd.env("GST_REGISTRY", registry);
    cmd.env(
        "LD_LIBRARY_PATH",
        if driver {
            emu_lib().expect("emulator built")
        } else {
            out_dir().join("no-such-dir")
        },
    );
    cmd.env("NVEMU_STRICT", "abort");
    cmd.env_remove("GST_PLUGIN_FEATURE_RANK");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_bounded(cmd, Duration::from_secs(180))
}

fn registry(name: &str) -> PathBuf {
    let r = out_dir().join(format!(
        "registry-autoplug-{name}-{}.bin",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&r);
    r
}

/// The `Rank` line of `gst-inspect-1.0 element`.
fn rank(element: &str, registry: &Path, driver: bool, env: &[(&str, &str)]) -> String {
    let o = run("gst-inspect-1.0", &[element], registry, driver, env);
    let t = text(&o);
    assert!(o.status.success(), "gst-inspect-1.0 {element}: {t}");
    t.lines()
        .find(|l| l.trim_start().starts_with("Rank"))
        .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| panic!("no Rank in {t}"))
}

const USABLE: &str = "primary + 257 (513)";
const UNUSABLE: &str = "none (0)";

/// One registry file, the driver on, off and on again: the ranks follow (the plugin's
/// dependencies make GStreamer rescan it), and without a driver every element is still
/// documented. On the `ampere` model (no AV1 NVENC) only AV1 stays at none.
#[test]
fn rank_follows_the_probe() {
    need_emulator!();
    let reg = registry("rank");
    for (driver, want) in [(true, USABLE), (false, UNUSABLE), (true, USABLE)] {
        for e in ["rsnvench264enc", "rsnvench265enc", "rsnvencav1enc"] {
            assert_eq!(rank(e, &reg, driver, &[]), want, "{e}, driver {driver}");
        }
    }
    let reg = registry("ampere");
    let ampere = [("NVEMU_GPU", "ampere")];
    assert_eq!(rank("rsnvench265enc", &reg, true, &ampere), USABLE);
    assert_eq!(rank("rsnvencav1enc", &reg, true, &ampere), UNUSABLE);
    let reg = registry("no-nvenc");
    let none = [("NVEMU_GPU", "no-nvenc")];
    assert_eq!(rank("rsnvench264enc", &reg, true, &none), UNUSABLE);
}

/// `encodebin` with an MP4 (or Matroska, for AV1) profile picks ours on the emulator, over
/// GStreamer 1.22's own nvh264enc/nvh265enc (rank 512, also registered on the stand-ins), and
/// something else without a driver.
#[test]
fn encodebin_picks_ours_on_the_emulator() {
    need_emulator!();
    let reg = registry("encodebin");
    let cases = [
        (
            "video/quicktime,variant=iso:video/x-h264",
            "GstRsNvencH264Enc",
        ),
        (
            "video/quicktime,variant=iso:video/x-h265",
            "GstRsNvencH265Enc",
        ),
        ("video/x-matroska:video/x-av1", "GstRsNvencAv1Enc"),
    ];
    for driver in [true, false] {
        for (profile, ours) in cases {
            let profile = format!("profile={profile}");
            let o = run(
                "gst-launch-1.0",
                &[
                    "-v",
                    "videotestsrc",
                    "num-buffers=10",
                    "!",
                    "video/x-raw,width=320,height=240,framerate=25/1",
                    "!",
                    "encodebin",
                    &profile,
                    "!",
                    "fakesink",
                ],
                &reg,
                driver,
                &[],
            );
            let t = text(&o);
            let picked = t.contains(&format!("GstEncodeBin:encodebin0/{ours}:"));
            if driver {
                assert!(o.status.success(), "{profile}: {t}");
                assert!(picked, "{profile}: encodebin did not pick {ours}: {t}");
            } else {
                assert!(!picked, "{profile}: {ours} picked without a driver: {t}");
            }
        }
    }
}

/// `gst-transcoder-1.0` (transcodebin) to H.265 in MP4 uses `rsnvench265enc` on the emulator
/// and not without a driver; the output is H.265 that FFmpeg reads.
#[test]
fn gst_transcoder_picks_ours_on_the_emulator() {
    need_emulator!();
    let reg = registry("transcoder");
    let input = out_dir().join("autoplug-in.mkv");
    let location = format!("location={}", input.display());
    let o = run(
        "gst-launch-1.0",
        &[
            "-q",
            "videotestsrc",
            "num-buffers=30",
            "!",
            "video/x-raw,width=320,height=240,framerate=25/1",
            "!",
            "matroskamux",
            "!",
            "filesink",
            &location,
        ],
        &reg,
        false,
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    for driver in [true, false] {
        let output = out_dir().join(format!("autoplug-out-{driver}.mp4"));
        let _ = std::fs::remove_file(&output);
        let o = run(
            "gst-transcoder-1.0",
            &[
                &format!("file://{}", input.display()),
                &format!("file://{}", output.display()),
                "video/quicktime,variant=iso:video/x-h265",
            ],
            &reg,
            driver,
            &[("GST_DEBUG", "GST_ELEMENT_FACTORY:4")],
        );
        let t = text(&o);
        let picked = t.contains("creating element \"rsnvench265enc\"");
        if driver {
            assert!(o.status.success(), "{t}");
            assert!(picked, "gst-transcoder-1.0 did not use rsnvench265enc: {t}");
            let s = ffprobe(
                &[
                    "-select_streams",
                    "v:0",
                    "-show_entries",
                    "stream=codec_name",
                    "-of",
                    "csv=p=0",
                ],
                &output,
            );
            assert_eq!(s.trim(), "hevc");
        } else {
            assert!(!picked, "rsnvench265enc used without a driver: {t}");
        }
    }
}
