// SPDX-License-Identifier: MPL-2.0
//! The software-fallback bins (`rsautoh264enc`, `rsautoh265enc`, `rsautoav1enc`): NVENC when
//! the emulated GPU can open a session (the trace shows it), the software encoder when it
//! cannot (every frame out, the element message says why), the same output caps either way.
//!
//! In this process, with the freshly built plugin (`target/<profile>/libgstrsnvenc.so`) and
//! the emulator's stand-ins (`LD_LIBRARY_PATH` at `target/nvemu/lib`, as
//! `scripts/test` sets it); skipped with a message when they are missing.

use gst::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

static ENV: Mutex<()> = Mutex::new(());

fn plugin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf()
}

/// Initialises GStreamer once with the built plugin and the bins; false (skip) when the
/// plugin or the emulator is not there.
fn setup() -> Option<MutexGuard<'static, ()>> {
    let g = ENV.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: loading the NVENC stand-in only to see that it is on the library path.
    if unsafe { libloading::Library::new("libnvidia-encode.so.1") }.is_err() {
        eprintln!(
            "SKIPPED: libnvidia-encode.so.1 not on LD_LIBRARY_PATH (run through scripts/test)"
        );
        return None;
    }
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        let reg = std::env::temp_dir().join(format!("rsnvenc-autoenc-{}.bin", std::process::id()));
        // SAFETY: before any thread of GStreamer exists; tests hold ENV.
        unsafe {
            // Three GPUs (the CUDA stand-in reads the count once); their models per test.
            std::env::set_var("NVEMU_GPU_COUNT", "3");
            std::env::set_var("GST_PLUGIN_PATH", plugin_dir());
            std::env::set_var("GST_REGISTRY", reg);
        }
        gst::init().unwrap();
        gst::Registry::get().scan_path(plugin_dir());
    });
    if gst::ElementFactory::find("rsautoh265enc").is_none() {
        eprintln!("SKIPPED: no rsnvenc plugin in {}", plugin_dir().display());
        return None;
    }
    Some(g)
}

fn set_env(vars: &[(&str, &str)]) {
    for k in [
        "NVEMU_GPU",
        "NVEMU_TRACE",
        "NVEMU_GPU_MODELS",
        "NVEMU_SESSION_LIMIT",
        "NVEMU_ENCODE_MS",
        "NVEMU_BACKEND",
    ] {
        // SAFETY: tests hold ENV; the stand-ins read these at the calls made by this test.
        unsafe { std::env::remove_var(k) };
    }
    for (k, v) in vars {
        // SAFETY: as above.
        unsafe { std::env::set_var(k, v) };
    }
}

struct Run {
    buffers: usize,
    caps: Option<gst::Caps>,
    active: Option<String>,
    selected: Vec<gst::Structure>,
    error: Option<String>,
    /// The error's details structure.
    details: Option<gst::Structure>,
}

fn run(bin: &str, frames: u32) -> Run {
    run_with("I420", bin, frames)
}

fn run_with(format: &str, bin: &str, frames: u32) -> Run {
    let p = gst::parse::launch(&format!(
        "videotestsrc num-buffers={frames} ! video/x-raw,format={format},width=320,height=240,framerate=30/1 ! {bin} name=e ! fakesink name=s sync=false signal-handoffs=true"
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let sink = p.by_name("s").unwrap();
    let seen = std::sync::Arc::new(Mutex::new((0usize, None::<gst::Caps>)));
    let s2 = seen.clone();
    sink.connect("handoff", false, move |v| {
        let pad = v[2].get::<gst::Pad>().unwrap();
        let mut s = s2.lock().unwrap();
        s.0 += 1;
        s.1 = pad.current_caps();
        None
    });
    p.set_state(gst::State::Playing).unwrap();
    let bus = p.bus().unwrap();
    let mut r = Run {
        buffers: 0,
        caps: None,
        active: None,
        selected: Vec::new(),
        error: None,
        details: None,
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        let Some(m) = bus.timed_pop(gst::ClockTime::from_mseconds(200)) else {
            continue;
        };
        match m.view() {
            gst::MessageView::Element(e) => {
                if let Some(s) = e.structure().filter(|s| s.name() == "rsautoenc-selected") {
                    r.selected.push(s.to_owned());
                }
            }
            gst::MessageView::Error(e) => {
                r.error = Some(format!("{} ({:?})", e.error(), e.debug()));
                r.details = e.details().map(|d| d.to_owned());
                break;
            }
            gst::MessageView::Eos(_) => break,
            _ => {}
        }
    }
    (r.buffers, r.caps) = seen.lock().unwrap().clone();
    let e = p.by_name("e").unwrap();
    if e.find_property("active-encoder").is_some() {
        r.active = e.property("active-encoder");
    }
    p.set_state(gst::State::Null).unwrap();
    r
}

fn trace_count(path: &Path, call: &str) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            l.contains(&format!("\"call\":\"{call}\""))
                || l.contains(&format!("\"call\": \"{call}\""))
        })
        .count()
}

/// H.265: NVENC when it can open a session, x265enc when the GPU has none; all frames out,
/// the same caps downstream.
#[test]
fn h265_nvenc_then_software() {
    let Some(_g) = setup() else { return };
    if gst::ElementFactory::find("x265enc").is_none() {
        eprintln!("SKIPPED: no x265enc");
        return;
    }
    let trace = std::env::temp_dir().join(format!("rsnvenc-autoenc-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&trace);
    set_env(&[("NVEMU_TRACE", trace.to_str().unwrap())]);
    let nv = run("rsautoh265enc", 30);
    assert_eq!(nv.error, None);
    assert_eq!(nv.buffers, 30);
    assert_eq!(nv.active.as_deref(), Some("rsnvench265enc"));
    assert_eq!(nv.selected.len(), 1);
    assert_eq!(nv.selected[0].get::<&str>("kind").unwrap(), "nvenc");
    assert!(
        trace_count(&trace, "nvEncEncodePicture") >= 30,
        "NVENC encoded (trace)"
    );

    // A GPU without NVENC: the session cannot open, x265enc takes over.
    let _ = std::fs::remove_file(&trace);
    set_env(&[
        ("NVEMU_GPU", "no-nvenc"),
        ("NVEMU_TRACE", trace.to_str().unwrap()),
    ]);
    let sw = run("rsautoh265enc", 30);
    assert_eq!(sw.error, None, "the NVENC error stays in the bin");
    assert_eq!(sw.buffers, 30, "every frame out");
    assert_eq!(sw.active.as_deref(), Some("x265enc"));
    let last = sw.selected.last().unwrap();
    assert_eq!(last.get::<&str>("kind").unwrap(), "software");
    let why = last.get::<&str>("reason").unwrap();
    assert!(why.contains("NVENC could not open a session"), "{why}");
    assert_eq!(trace_count(&trace, "nvEncEncodePicture"), 0);
    assert_eq!(nv.caps, sw.caps, "the same output caps");
    set_env(&[]);
}

/// The software AV1 encoder the bin takes: the first of its list installed.
fn av1_software() -> Option<&'static str> {
    ["svtav1enc", "av1enc", "rav1enc"]
        .into_iter()
        .find(|f| gst::ElementFactory::find(f).is_some())
}

/// AV1 the same way (av1enc, svtav1enc or rav1enc as installed).
#[test]
fn av1_software_when_no_nvenc() {
    let Some(_g) = setup() else { return };
    if av1_software().is_none() {
        eprintln!("SKIPPED: no software AV1 encoder");
        return;
    }
    set_env(&[]);
    let nv = run("rsautoav1enc", 10);
    assert_eq!(
        nv.active.as_deref(),
        Some("rsnvencav1enc"),
        "{:?}",
        nv.error
    );
    set_env(&[("NVEMU_GPU", "no-nvenc")]);
    let sw = run("rsautoav1enc", 10);
    assert_eq!(sw.error, None);
    assert_eq!(sw.buffers, 10);
    assert_eq!(sw.active.as_deref(), av1_software());
    assert_eq!(nv.caps, sw.caps, "the same output caps");
    set_env(&[]);
}

/// No GPU can open an AV1 session (GPU 0 has no NVENC, GPUs 1 and 2 are RTX 2080s without
/// AV1): with automatic placement the element tries each, then its error carries
/// `rsnvenc-session-error` naming each GPU and its answer; `rsautoav1enc` on the same machine
/// encodes every frame in software and says why.
#[test]
fn no_gpu_can_open_error_structure_then_software() {
    let Some(_g) = setup() else { return };
    set_env(&[("NVEMU_GPU_MODELS", "no-nvenc,turing,turing")]);
    let r = run_with("NV12", "rsnvencav1enc cuda-device-id=-1", 5);
    let e = r.error.expect("an error");
    let d = r.details.expect("error details");
    assert_eq!(d.name(), "rsnvenc-session-error", "{d}");
    assert_eq!(d.get::<&str>("reason").unwrap(), "no-nvenc", "{d}");
    let gpus = d.get::<gst::Array>("gpus").unwrap();
    let each: Vec<(i32, String, i32)> = gpus
        .iter()
        .map(|v| {
            let s = v.get::<gst::Structure>().unwrap();
            (
                s.get::<i32>("index").unwrap(),
                s.get::<String>("reason").unwrap(),
                s.get::<i32>("status").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        each,
        vec![
            (0, "no-nvenc".to_string(), 2),
            (1, "unsupported-format".to_string(), -1),
            (2, "unsupported-format".to_string(), -1),
        ],
        "{d}"
    );
    assert!(e.contains("GPU 0") && e.contains("GPU 2"), "{e}");

    if let Some(sw) = av1_software() {
        let b = run_with("NV12", "rsautoav1enc", 5);
        assert_eq!(b.error, None);
        assert_eq!(b.buffers, 5, "every frame out");
        assert_eq!(b.active.as_deref(), Some(sw));
        let last = b.selected.last().unwrap();
        assert_eq!(last.get::<&str>("kind").unwrap(), "software");
    }
    set_env(&[]);
}

/// `stats` while a session runs with automatic placement: the encoder, its GPU and why, and
/// NVML's figures for that GPU (the session itself; the timing model's utilisation: 20 ms
/// pictures at 30 fps on one of the RTX 4090's two engines, about 30 %).
#[test]
fn stats_name_the_gpu_and_nvml_figures() {
    let Some(_g) = setup() else { return };
    set_env(&[("NVEMU_ENCODE_MS", "20"), ("NVEMU_BACKEND", "null")]);
    let p = gst::parse::launch(
        "videotestsrc is-live=true num-buffers=90 ! video/x-raw,format=NV12,width=320,height=240,framerate=30/1 ! rsnvench264enc name=e cuda-device-id=-1 ! fakesink",
    )
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let e = p.by_name("e").unwrap();
    p.set_state(gst::State::Playing).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let s = e.property::<gst::Structure>("stats");
    p.set_state(gst::State::Null).unwrap();
    set_env(&[]);
    assert_eq!(s.get::<&str>("encoder").unwrap(), "nvenc", "{s}");
    assert_eq!(
        s.get::<i32>("gpu").unwrap(),
        0,
        "an idle machine: GPU 0: {s}"
    );
    assert_eq!(s.get::<&str>("placement").unwrap(), "nvml", "{s}");
    let why = s.get::<&str>("placement-reason").unwrap();
    assert!(why.contains("the most free NVENC capacity"), "{why}");
    assert!(
        s.get::<&str>("gpu-uuid").unwrap().starts_with("GPU-"),
        "{s}"
    );
    assert_eq!(s.get::<i32>("gpu-sessions").unwrap(), 1, "{s}");
    let u = s.get::<i32>("nvenc-utilisation").unwrap();
    assert!((15..=45).contains(&u), "utilisation {u}: {s}");
}
