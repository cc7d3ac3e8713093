//! Runs the third-party client cases of `nvemu/tests/py/` (PyNvVideoCodec 2.2.4, FFmpeg 8 through
//! PyAV 18.1) on the stand-ins of `target/nvemu/lib` (scripts/build-emulator), in the Python
//! virtual environment that `scripts/py-venv` makes and caches (the wheels from PyPI, pinned in
//! `nvemu/tests/py/requirements.txt`).
//!
//! Never skipped silently: without the environment (no network, no `python3 -m venv`) the
//! tests fail, unless `RSNVENC_PY_CLIENTS=skip` is set, which skips them with a message.
//! `RSNVENC_VENV` names an environment to use instead of the cached one.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The workspace root (nvemu/nvenc/../..).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `target/<profile>/deps/<test>` -> `target/nvemu/lib`.
fn emu_lib() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let target = exe.parent().unwrap().parent().unwrap().parent().unwrap();
    let lib = target.join("nvemu/lib");
    assert!(
        lib.join("libnvidia-encode.so.1").exists() && lib.join("libcuda.so.1").exists(),
        "no stand-ins in {} (run scripts/build-emulator, as scripts/test does)",
        lib.display()
    );
    lib
}

/// The environment's interpreter, or None when the user opted out (`RSNVENC_PY_CLIENTS=skip`).
pub fn python() -> Option<PathBuf> {
    static PY: OnceLock<Option<PathBuf>> = OnceLock::new();
    PY.get_or_init(|| {
        if std::env::var("RSNVENC_PY_CLIENTS").as_deref() == Ok("skip") {
            eprintln!("SKIPPED: RSNVENC_PY_CLIENTS=skip (third-party Python clients not run)");
            return None;
        }
        let venv = match std::env::var_os("RSNVENC_VENV").filter(|v| !v.is_empty()) {
            Some(v) => PathBuf::from(v),
            None => {
                let o = Command::new(root().join("scripts/py-venv"))
                    .stderr(Stdio::inherit())
                    .output()
                    .expect("run scripts/py-venv");
                assert!(
                    o.status.success(),
                    "scripts/py-venv could not make the clients' Python environment (see above; RSNVENC_PY_CLIENTS=skip opts out)"
                );
                PathBuf::from(String::from_utf8(o.stdout).unwrap().trim())
            }
        };
        let py = venv.join("bin/python");
        assert!(py.exists(), "{} is no virtual environment", venv.display());
        Some(py)
    })
    .clone()
}

/// Skips the test (with a message) when the clients are opted out.
#[macro_export]
macro_rules! need_python {
    () => {
        match pyclient::python() {
            Some(p) => p,
            None => return,
        }
    };
}

/// Runs `nvemu/tests/py/<script>` with `case` (JSON) and the stand-ins first in the library path,
/// `NVEMU_STRICT=abort`, the trace in `target/pyclients/<name>/trace` and `extra_env`; returns
/// the JSON summary the script prints last. Panics with the output if it fails or takes more
/// than 240 s.
pub fn run_case(
    py: &Path,
    script: &str,
    name: &str,
    case: &serde_json::Value,
    extra_env: &[(&str, &str)],
) -> serde_json::Value {
    let lib = emu_lib();
    let dir = lib
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("pyclients")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let trace = dir.join("trace");
    let log = dir.join("log");
    let mut ld = lib.into_os_string();
    if let Some(old) = std::env::var_os("LD_LIBRARY_PATH").filter(|p| !p.is_empty()) {
        ld.push(":");
        ld.push(old);
    }
    let mut cmd = Command::new(py);
    cmd.arg(root().join("nvemu/tests/py").join(script))
        .arg(case.to_string())
        .arg(&dir)
        .env("LD_LIBRARY_PATH", ld)
        .env("NVEMU_STRICT", "abort")
        .env("NVEMU_TRACE", &trace)
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    for (k, _) in std::env::vars() {
        if k.starts_with("NVEMU_") && k != "NVEMU_STRICT" && k != "NVEMU_TRACE" {
            cmd.env_remove(k);
        }
    }
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let f = std::fs::File::create(&log).unwrap();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .spawn()
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(240);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{name}: killed after 240 s:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        status.success(),
        "{name} ({script} {case}) failed ({status}); trace {}:\n{out}",
        trace.display()
    );
    let last = out.lines().rev().find(|l| l.starts_with('{')).unwrap_or("");
    let v: serde_json::Value =
        serde_json::from_str(last).unwrap_or_else(|e| panic!("{name}: no summary ({e}):\n{out}"));
    eprintln!("{name}: {v}");
    v
}
