//! GStreamer 1.22's own CUDA library (`libgstcuda-1.0`) and the `cudaupload` / `cudadownload`
//! elements of the `nvcodec` plugin, running on the stand-in (as `libcuda.so.1`, no GPU).
//!
//! `libgstcuda`'s loader resolves its whole list of driver symbols or refuses the library, so
//! this also checks that nothing it needs is missing. Note: in 1.22 the `nvcodec` plugin only
//! registers `cudaupload`/`cudadownload` when `libnvidia-encode.so.1` or `libnvcuvid.so.1`
//! also loads, so the NVENC stand-in (`libnvidia_encode.so`, built by
//! `cargo build -p nvemu-nvenc` into the same target profile directory, or named by
//! `NVEMU_NVENC_LIB`) is put next to it; it is only there to be loaded.
//!
//! Skips (with a message) when `gst-launch-1.0`/`gst-inspect-1.0`, the `nvcodec` plugin or the
//! NVENC stand-in is not available. With all of them present, a missing `cudaupload` element
//! is a failure (it means the loader refused the stand-in).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// target/<profile>/deps/gstreamer-<hash> -> target/<profile>
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

fn nvenc_lib() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NVEMU_NVENC_LIB").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    Some(profile_dir().join("libnvidia_encode.so")).filter(|p| p.exists())
}

fn have_tool(name: &str) -> bool {
    Command::new(name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

struct Env {
    dir: PathBuf,
    lib_dir: PathBuf,
    registry: PathBuf,
}

impl Env {
    fn command(&self, prog: &str) -> Command {
        let mut c = Command::new(prog);
        let mut ld = self.lib_dir.clone().into_os_string();
        if let Some(old) = std::env::var_os("LD_LIBRARY_PATH").filter(|p| !p.is_empty()) {
            ld.push(":");
            ld.push(old);
        }
        c.env("LD_LIBRARY_PATH", ld)
            .env("GST_REGISTRY", &self.registry)
            .env_remove("NVEMU_TRACE")
            .env_remove("NVEMU_LOG")
            .env_remove("GST_DEBUG");
        c
    }
}

/// Runs `cmd`, killing it after 60 s; returns (exit success, stdout + stderr).
fn run(mut cmd: Command, what: &str) -> (bool, String) {
    let out_path = std::env::temp_dir().join(format!(
        "nvemu-cuda-gst-{}-{}.log",
        std::process::id(),
        what
    ));
    let log = std::fs::File::create(&out_path).unwrap();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: spawn failed: {e}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let text = std::fs::read_to_string(&out_path).unwrap_or_default();
            panic!("{what}: killed after 60 s; output:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = std::fs::read_to_string(&out_path).unwrap_or_default();
    let _ = std::fs::remove_file(&out_path);
    (status.success(), text)
}

/// `"kind": "<kind>"` copies in a trace file: (count, total bytes).
fn copies(trace: &str, kind: &str) -> (u64, u64) {
    let tag = format!("\"kind\": \"{kind}\", \"bytes\": ");
    let mut n = 0;
    let mut bytes = 0;
    for line in trace.lines().filter(|l| l.contains("\"lib\": \"cuda\"")) {
        if let Some(i) = line.find(&tag) {
            let rest = &line[i + tag.len()..];
            let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            n += 1;
            bytes += digits.parse::<u64>().expect("bytes in trace line");
        }
    }
    (n, bytes)
}

fn pipeline(
    env: &Env,
    format: &str,
    w: u32,
    h: u32,
    frames: u32,
    cuda: bool,
    out: &Path,
) -> Command {
    let mut c = env.command("gst-launch-1.0");
    c.arg("-q")
        .arg("videotestsrc")
        .arg(format!("num-buffers={frames}"))
        .arg("pattern=smpte")
        .arg("!")
        .arg(format!("video/x-raw,format={format},width={w},height={h}"));
    if cuda {
        // The caps filter between the two elements keeps them from negotiating passthrough
        // (system memory on both sides), which would skip the CUDA memory entirely.
        c.args([
            "!",
            "cudaupload",
            "!",
            "video/x-raw(memory:CUDAMemory)",
            "!",
            "cudadownload",
        ])
        .arg("!")
        .arg(format!("video/x-raw,format={format}"));
        // (gst-launch refuses two caps filters in a row, so the reference has only one.)
    }
    c.arg("!")
        .arg("filesink")
        .arg(format!("location={}", out.display()));
    c
}

fn check_case(env: &Env, format: &str, w: u32, h: u32, planes: u64) {
    let frames = 10u32;
    let name = format!("{format}-{w}x{h}");
    let reference = env.dir.join(format!("{name}-ref.yuv"));
    let output = env.dir.join(format!("{name}-cuda.yuv"));
    let trace_path = env.dir.join(format!("{name}-trace.jsonl"));

    let (ok, log) = run(
        pipeline(env, format, w, h, frames, false, &reference),
        &format!("{name}-ref"),
    );
    assert!(ok, "{name}: reference pipeline failed:\n{log}");

    let mut cmd = pipeline(env, format, w, h, frames, true, &output);
    cmd.env("NVEMU_TRACE", &trace_path);
    let (ok, log) = run(cmd, &format!("{name}-cuda"));
    assert!(
        ok,
        "{name}: cudaupload ! cudadownload pipeline failed:\n{log}"
    );

    let want = std::fs::read(&reference).unwrap();
    let got = std::fs::read(&output).unwrap();
    // 4:2:0, 8 bits: 1.5 bytes per pixel
    let frame_bytes = u64::from(w * h * 3 / 2);
    assert_eq!(
        want.len() as u64,
        frame_bytes * u64::from(frames),
        "{name}: reference size"
    );
    assert_eq!(got.len(), want.len(), "{name}: output size");
    assert!(
        got == want,
        "{name}: output bytes differ from the reference"
    );

    let trace = std::fs::read_to_string(&trace_path).unwrap_or_default();
    let (htod, htod_bytes) = copies(&trace, "HtoD");
    let (dtoh, dtoh_bytes) = copies(&trace, "DtoH");
    // cudaupload copies each plane of each frame to device memory (cuMemcpy2DAsync_v2),
    // cudadownload each plane back: one copy per plane and frame in each direction, moving
    // exactly the frame bytes.
    let n = u64::from(frames) * planes;
    assert_eq!(htod, n, "{name}: HtoD copies in the trace");
    assert_eq!(dtoh, n, "{name}: DtoH copies in the trace");
    assert_eq!(htod_bytes, want.len() as u64, "{name}: HtoD bytes");
    assert_eq!(dtoh_bytes, want.len() as u64, "{name}: DtoH bytes");
    assert_eq!(
        copies(&trace, "DtoD").0,
        0,
        "{name}: no DtoD copies expected"
    );
    println!(
        "{name}: {frames} frames, {} bytes, {htod} HtoD + {dtoh} DtoH copies",
        got.len()
    );
}

#[test]
fn cudaupload_cudadownload_round_trip() {
    if !have_tool("gst-launch-1.0") || !have_tool("gst-inspect-1.0") {
        println!("SKIPPED: gst-launch-1.0 / gst-inspect-1.0 not installed");
        return;
    }
    // deps/libcuda.so is what `cargo test` has just built; the uplifted
    // target/<profile>/libcuda.so is only refreshed by `cargo build`.
    let deps = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .join("libcuda.so");
    let cuda = if deps.exists() {
        deps
    } else {
        profile_dir().join("libcuda.so")
    };
    assert!(cuda.exists(), "{} not built", cuda.display());
    let Some(nvenc) = nvenc_lib() else {
        println!(
            "SKIPPED: no NVENC stand-in next to {} (cargo build -p nvemu-nvenc) and \
             NVEMU_NVENC_LIB unset: GStreamer 1.22's nvcodec registers cudaupload only when \
             libnvidia-encode.so.1 or libnvcuvid.so.1 loads",
            cuda.display()
        );
        return;
    };

    let dir = std::env::temp_dir().join(format!("nvemu-cuda-gst-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let lib_dir = dir.join("lib");
    std::fs::create_dir_all(&lib_dir).unwrap();
    std::fs::copy(&cuda, lib_dir.join("libcuda.so.1")).unwrap();
    std::fs::copy(&nvenc, lib_dir.join("libnvidia-encode.so.1")).unwrap();
    let env = Env {
        registry: dir.join("registry.bin"),
        lib_dir,
        dir: dir.clone(),
    };

    // The plugin itself must be installed (it is listed even when it registers nothing).
    let mut c = env.command("gst-inspect-1.0");
    c.arg("nvcodec");
    let (ok, log) = run(c, "inspect-nvcodec");
    if !ok {
        println!("SKIPPED: GStreamer nvcodec plugin not installed:\n{log}");
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    // With the plugin there, the elements must be registered: otherwise libgstcuda's loader
    // refused the stand-in (a missing symbol) or its device/context setup failed.
    let mut c = env.command("gst-inspect-1.0");
    c.arg("cudaupload");
    let (ok, log) = run(c, "inspect-cudaupload");
    assert!(ok, "cudaupload not registered with the stand-in:\n{log}");

    check_case(&env, "NV12", 320, 240, 2);
    check_case(&env, "I420", 320, 240, 3);
    check_case(&env, "NV12", 640, 480, 2);
    check_case(&env, "I420", 640, 480, 3);
    let _ = std::fs::remove_dir_all(&dir);
}
