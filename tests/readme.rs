// SPDX-License-Identifier: MPL-2.0
//! The README's examples and recipes, checked: every `gst-launch-1.0` example stops cleanly
//! (`-e`, and `num-buffers` or a file source), and every row of the recipe table runs on the
//! NVENC emulator with no warning from the element (a property the element refused would warn).
//! The recipe runs skip (with a message) if the emulator is not built, as `tests/e2e.rs` does.

#[path = "../nvemu/nvenc/tests/common/tools.rs"]
mod tools;
use tools::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

fn readme() -> String {
    std::fs::read_to_string(root().join("README.md")).expect("read README.md")
}

/// `target/<profile>`, where the test binary's plugin was built.
fn plugin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf()
}

/// The text of `section` (from its `## ` heading to the next one).
fn section<'a>(text: &'a str, heading: &str) -> &'a str {
    let start = text
        .find(&format!("\n## {heading}\n"))
        .unwrap_or_else(|| panic!("README has no section \"{heading}\""))
        + 1;
    let end = text[start + 3..]
        .find("\n## ")
        .map_or(text.len(), |i| start + 3 + i);
    &text[start..end]
}

/// The code spans (between backticks) of `line`.
fn code_spans(line: &str) -> Vec<&str> {
    line.split('`').skip(1).step_by(2).collect()
}

/// Every `gst-launch-1.0` command of the README: the lines of fenced blocks and the code spans
/// that start with it.
fn launch_examples(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            if let Some(i) = line.find("gst-launch-1.0 ") {
                out.push(line[i..].to_string());
            }
        } else {
            out.extend(
                code_spans(line)
                    .into_iter()
                    .filter_map(|c| c.find("gst-launch-1.0 ").map(|i| c[i..].to_string())),
            );
        }
    }
    out
}

/// Ctrl-C on an example without `-e` leaves an MP4 without its index; one without an end of
/// its own never finishes. Every example has `-e`, and `num-buffers` or a file source.
#[test]
fn readme_examples_stop_cleanly() {
    let examples = launch_examples(&readme());
    assert!(examples.len() >= 5, "too few examples found: {examples:#?}");
    for e in &examples {
        let words: Vec<&str> = e.split_whitespace().collect();
        assert!(words.contains(&"-e"), "no -e: {e}");
        assert!(
            e.contains("num-buffers=") || e.contains("filesrc "),
            "no end of stream of its own (num-buffers or a file): {e}"
        );
    }
}

/// One row of the recipe table: its job, the element with its properties, and the input caps
/// it names (fields written as `...` left out).
struct Recipe {
    job: String,
    element: String,
    caps: Option<String>,
}

fn recipes(text: &str) -> Vec<Recipe> {
    section(text, "Recipes")
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| job"))
        .map(|l| {
            let cols: Vec<&str> = l.split(" | ").collect();
            let spans = code_spans(cols[1]);
            let element = spans
                .iter()
                .find(|s| s.starts_with("rsnv"))
                .unwrap_or_else(|| panic!("recipe row without an element: {l}"));
            let caps = spans
                .iter()
                .find(|s| s.starts_with("video/x-raw"))
                .map(|c| {
                    c.split(',')
                        .filter(|f| !f.ends_with("=..."))
                        .collect::<Vec<_>>()
                        .join(",")
                });
            Recipe {
                job: cols[0].trim_start_matches("| ").to_string(),
                element: element.to_string(),
                caps,
            }
        })
        .collect()
}

fn launch(pipeline: &str, name: &str) -> (Output, PathBuf) {
    let trace = out_dir().join(format!("readme-{name}.trace"));
    let _ = std::fs::remove_file(&trace);
    let mut cmd = Command::new("gst-launch-1.0");
    cmd.arg("-e").args(pipeline.split_whitespace());
    cmd.env("GST_PLUGIN_PATH", plugin_dir());
    cmd.env(
        "GST_REGISTRY",
        out_dir().join(format!("registry-readme-{}.bin", std::process::id())),
    );
    cmd.env("LD_LIBRARY_PATH", emu_lib().expect("emulator built"));
    cmd.env("NVEMU_STRICT", "abort");
    cmd.env("NVEMU_TRACE", &trace);
    (run_bounded(cmd, Duration::from_secs(180)), trace)
}

/// Each recipe, 10 frames of 320x240 in the caps it names (NV12 otherwise): the pipeline
/// succeeds, the element warns of nothing, NVENC coded 10 pictures and the trace has no
/// contract violation.
#[test]
fn readme_recipes_run_on_the_emulator() {
    need_emulator!();
    let all = recipes(&readme());
    assert!(all.len() >= 4, "recipe table rows: {}", all.len());
    for (i, r) in all.iter().enumerate() {
        let caps = r.caps.as_deref().unwrap_or("video/x-raw,format=NV12");
        let pipeline = format!(
            "videotestsrc num-buffers=10 ! {caps},width=320,height=240,framerate=30/1 ! {} ! fakesink",
            r.element
        );
        let (o, trace) = launch(&pipeline, &format!("recipe-{i}"));
        let t = text(&o);
        assert!(o.status.success(), "recipe \"{}\": {pipeline}\n{t}", r.job);
        assert!(
            !t.contains("WARNING: from element"),
            "recipe \"{}\" warns: {pipeline}\n{t}",
            r.job
        );
        assert_no_violation(&trace);
        assert_eq!(
            trace_lines(&trace, "nvEncLockBitstream").len(),
            10,
            "recipe \"{}\"",
            r.job
        );
    }
}

/// The recipe section's whole HDR10 pipeline (shortened to 10 frames, written under
/// target/e2e): FFmpeg reads Main 10, BT.2020 primaries, PQ transfer and the mastering display.
#[test]
fn readme_hdr10_pipeline() {
    need_emulator!();
    let readme = readme();
    let hdr = launch_examples(section(&readme, "Recipes"))
        .into_iter()
        .find(|e| e.contains("P010_10LE"))
        .expect("an HDR10 pipeline in the recipes");
    let out = out_dir().join("readme-hdr10.mp4");
    let pipeline = hdr
        .trim_start_matches("gst-launch-1.0 -e ")
        .replace("num-buffers=300", "num-buffers=10")
        .replace("location=hdr10.mp4", &format!("location={}", out.display()));
    let (o, trace) = launch(&pipeline, "hdr10");
    assert!(o.status.success(), "{}", text(&o));
    assert_no_violation(&trace);
    let s = ffprobe(
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=profile,pix_fmt,color_primaries,color_transfer",
            "-of",
            "default=nw=1",
        ],
        &out,
    );
    for want in [
        "profile=Main 10",
        "pix_fmt=yuv420p10le",
        "color_primaries=bt2020",
        "color_transfer=smpte2084",
    ] {
        assert!(s.contains(want), "{want} not in {s}");
    }
    let frames = ffprobe(
        &[
            "-select_streams",
            "v:0",
            "-read_intervals",
            "%+#1",
            "-show_frames",
            "-show_entries",
            "frame=side_data_list",
        ],
        &out,
    );
    assert!(
        frames.contains("Mastering display metadata"),
        "no mastering display on the first frame: {frames}"
    );
}
