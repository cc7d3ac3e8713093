// SPDX-License-Identifier: MPL-2.0
//! What the end-to-end tests of the plugin (`tests/e2e.rs`) and the emulator's third-party
//! client tests (`nvemu/nvenc/tests/third_party.rs`) share: the repository's paths, child
//! processes bounded in time, `ffprobe`, and reading the emulator's trace. Included by path
//! (`#[path]`) from both, so it depends on `std` and `serde_json` only.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The repository root: the workspace directory (holding `Cargo.lock`) above the crate under
/// test.
pub fn root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .find(|d| d.join("Cargo.lock").exists())
        .unwrap_or(here)
        .to_path_buf()
}

/// `target/nvemu/lib`, where `scripts/build-emulator` installs the stand-ins; `None` if they
/// are not built.
pub fn emu_lib() -> Option<PathBuf> {
    let p = root().join("target/nvemu/lib");
    p.join("libnvidia-encode.so.1").exists().then_some(p)
}

/// `target/e2e`, created if needed: outputs, traces and registries of the child processes.
pub fn out_dir() -> PathBuf {
    let d = root().join("target/e2e");
    std::fs::create_dir_all(&d).expect("create target/e2e");
    d
}

/// Runs `cmd` to completion or until `limit`; on timeout, attaches gdb (when installed) to
/// print every thread's stack, kills the child and panics with both outputs.
pub fn run_bounded(cmd: Command, limit: Duration) -> Output {
    run_bounded_unless(cmd, limit, |_, _| false).expect("never given up")
}

/// [`run_bounded`], but `give_up(stderr so far, time running)` may end the run early: the
/// child is killed and `None` returned (the caller decides what that means).
pub fn run_bounded_unless(
    mut cmd: Command,
    limit: Duration,
    give_up: impl Fn(&[u8], Duration) -> bool,
) -> Option<Output> {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let base = out_dir().join(format!("child-{}-{n}", std::process::id()));
    let (out_path, err_path) = (base.with_extension("out"), base.with_extension("err"));
    let file = |p: &Path| std::fs::File::create(p).expect("create child output file");
    cmd.stdout(file(&out_path)).stderr(file(&err_path));
    let mut child = cmd.spawn().expect("spawn child");
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait for child") {
            break Some(st);
        }
        if start.elapsed() > limit {
            break None;
        }
        if give_up(
            &std::fs::read(&err_path).unwrap_or_default(),
            start.elapsed(),
        ) {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_file(&out_path);
            let _ = std::fs::remove_file(&err_path);
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |p: &Path| std::fs::read(p).unwrap_or_default();
    match status {
        Some(status) => {
            let o = Output {
                status,
                stdout: read(&out_path),
                stderr: read(&err_path),
            };
            let _ = std::fs::remove_file(&out_path);
            let _ = std::fs::remove_file(&err_path);
            Some(o)
        }
        None => {
            let bt = Command::new("gdb")
                .args(["-p", &child.id().to_string(), "-batch", "-ex"])
                .arg("thread apply all bt")
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_else(|e| format!("(no gdb: {e})"));
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} still running after {limit:?}; killed.\nstderr:\n{}\nthreads:\n{bt}",
                String::from_utf8_lossy(&read(&err_path))
            );
        }
    }
}

pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Returns from the test (passing, with a message) when the emulator is not built.
#[macro_export]
macro_rules! need_emulator {
    () => {
        if emu_lib().is_none() {
            eprintln!("NVENC emulator not built (run scripts/build-emulator); skipping");
            return;
        }
    };
}

pub fn ffprobe(args: &[&str], file: &Path) -> String {
    let o = Command::new("ffprobe")
        .args(["-v", "error"])
        .args(args)
        .arg(file)
        .output()
        .expect("run ffprobe");
    assert!(o.status.success(), "ffprobe failed: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// (pts_time, dts_time, key) of every video packet.
pub fn packets(file: &Path) -> Vec<(f64, f64, bool)> {
    ffprobe(
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts_time,dts_time,flags",
            "-of",
            "csv=p=0",
        ],
        file,
    )
    .lines()
    .filter(|l| !l.trim().is_empty())
    .map(|l| {
        let f: Vec<&str> = l.split(',').collect();
        let num = |s: &str| s.trim().parse::<f64>().unwrap_or(f64::NAN);
        (
            num(f[0]),
            num(f[1]),
            f.get(2).is_some_and(|x| x.contains('K')),
        )
    })
    .collect()
}

/// Frames decoded by FFmpeg and the stream's size.
pub fn decoded_frames_and_size(file: &Path) -> (u64, u32, u32) {
    let s = ffprobe(
        &[
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_frames,width,height",
            "-of",
            "default=nw=1",
        ],
        file,
    );
    let get = |k: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{k} missing in ffprobe output: {s}"))
    };
    (
        get("nb_read_frames"),
        get("width") as u32,
        get("height") as u32,
    )
}

pub fn trace_lines(path: &Path, call: &str) -> Vec<serde_json::Value> {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    s.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["call"] == call)
        .collect()
}

pub fn assert_no_violation(path: &Path) {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    let bad: Vec<&str> = s.lines().filter(|l| l.contains("\"violation\"")).collect();
    assert!(bad.is_empty(), "contract violations in trace: {bad:#?}");
}
