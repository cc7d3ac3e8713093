// SPDX-License-Identifier: MPL-2.0
//! In-process tests of the elements' stream handling with gst-check's `Harness`, on the NVENC
//! emulator: force-key-unit, the latency query, flushing, caps changes.
//!
//! `harness = false` (see Cargo.toml): `main` sets the emulator's environment
//! (`NVEMU_STRICT=abort`, `NVEMU_TRACE`) before any thread exists, then runs each case in turn
//! and reports. The emulator must be first in `LD_LIBRARY_PATH` (as `scripts/test` does);
//! otherwise the cases are skipped with a message.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use gst::prelude::*;
use gst_check::Harness;

const W: u32 = 320;
const H: u32 = 240;
const FRAME: gst::ClockTime = gst::ClockTime::from_mseconds(40);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn trace_path() -> PathBuf {
    root().join("target/e2e/element.trace")
}

/// The trace lines of `call` written so far.
fn trace_lines(call: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(trace_path())
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["call"] == call)
        .collect()
}

fn new_harness(element: &str, props: &[(&str, &str)], src_caps: &str, sink_caps: &str) -> Harness {
    let mut h = Harness::new(element);
    {
        let e = h.element().expect("element");
        for (k, v) in props {
            e.set_property_from_str(k, v);
        }
    }
    h.set_src_caps_str(src_caps);
    h.set_sink_caps_str(sink_caps);
    h
}

fn nv12_caps(w: u32, h: u32) -> String {
    format!("video/x-raw,format=NV12,width={w},height={h},framerate=25/1")
}

/// Pushes NV12 frames `range` (PTS = index x 40 ms) of `w`x`h`, each a different gradient.
fn push_frames(h: &mut Harness, w: u32, hh: u32, range: std::ops::Range<u64>) {
    let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Nv12, w, hh)
        .build()
        .expect("video info");
    for i in range {
        let mut buf = gst::Buffer::with_size(info.size()).expect("buffer");
        {
            let b = buf.get_mut().unwrap();
            b.set_pts(FRAME * i);
            b.set_duration(FRAME);
            let mut map = b.map_writable().unwrap();
            for (n, px) in map.iter_mut().enumerate() {
                *px = ((n as u64 / 4 + i * 8) % 220 + 16) as u8;
            }
        }
        assert_eq!(h.push(buf), Ok(gst::FlowSuccess::Ok), "push frame {i}");
    }
}

/// Sends EOS and takes every buffer out: (PTS as running time, keyframe, data), in output
/// order. (The encoder shifts its output segment by 1000 hours, `set_min_pts`, as nvcodec
/// does, so that B-frame DTS never go negative: running time is what the input had.)
fn finish(h: &mut Harness) -> Vec<(gst::ClockTime, bool, Vec<u8>)> {
    assert!(h.push_event(gst::event::Eos::new()), "EOS");
    let seg = h
        .sinkpad()
        .unwrap()
        .sticky_event::<gst::event::Segment>(0)
        .expect("output segment");
    let seg = seg
        .segment()
        .downcast_ref::<gst::ClockTime>()
        .expect("time segment")
        .clone();
    let mut out = Vec::new();
    while let Some(b) = h.try_pull() {
        let pts = b.pts().expect("PTS on every output buffer");
        out.push((
            seg.to_running_time(pts).expect("PTS inside the segment"),
            !b.flags().contains(gst::BufferFlags::DELTA_UNIT),
            b.map_readable().unwrap().to_vec(),
        ));
    }
    out
}

/// H.265 NAL unit types in an Annex B access unit.
fn h265_nal_types(au: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    let mut i = 0;
    while i + 3 < au.len() {
        if au[i] == 0 && au[i + 1] == 0 && au[i + 2] == 1 {
            t.push((au[i + 3] >> 1) & 0x3f);
            i += 3;
        } else {
            i += 1;
        }
    }
    t
}

/// AV1 OBU types of a temporal unit (low-overhead format, every OBU with a size field).
fn av1_obu_types(tu: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    let mut i = 0;
    while i < tu.len() {
        let hdr = tu[i];
        t.push((hdr >> 3) & 0xf);
        let mut p = i + 1 + usize::from(hdr & 0x4 != 0);
        if hdr & 0x2 == 0 {
            break;
        }
        let (mut size, mut shift) = (0usize, 0);
        while p < tu.len() {
            let b = tu[p];
            p += 1;
            size |= ((b & 0x7f) as usize) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
        i = p + size;
    }
    t
}

/// force-key-unit from downstream: the next frame is an IDR with the sequence headers in
/// band, and NVENC was told so (FORCEIDR | OUTPUT_SPSPPS); no other frame is a keyframe.
fn force_key_unit(element: &str) {
    let sink = if element == "rsnvench265enc" {
        "video/x-h265,stream-format=byte-stream,alignment=au"
    } else {
        "video/x-av1,stream-format=obu-stream,alignment=tu"
    };
    let before = trace_lines("nvEncEncodePicture").len();
    let mut h = new_harness(element, &[("gop-size", "-1")], &nv12_caps(W, H), sink);
    push_frames(&mut h, W, H, 0..5);
    let ev = gst_video::UpstreamForceKeyUnitEvent::builder()
        .all_headers(true)
        .build();
    assert!(h.push_upstream_event(ev), "force-key-unit handled");
    push_frames(&mut h, W, H, 5..10);
    let out = finish(&mut h);
    assert_eq!(out.len(), 10, "frames out == frames in");
    let keys: Vec<u64> = out.iter().filter(|o| o.1).map(|o| o.0 / FRAME).collect();
    assert_eq!(keys, vec![0, 5], "keyframes");
    let forced = &out.iter().find(|o| o.0 == FRAME * 5).unwrap().2;
    if element == "rsnvench265enc" {
        let t = h265_nal_types(forced);
        for want in [32u8, 33, 34] {
            assert!(
                t.contains(&want),
                "NAL type {want} in the forced IDR: {t:?}"
            );
        }
        assert!(t.contains(&19) || t.contains(&20), "IDR slice: {t:?}");
    } else {
        let t = av1_obu_types(forced);
        assert!(
            t.contains(&1),
            "sequence header OBU in the forced keyframe: {t:?}"
        );
    }
    // NV_ENC_PIC_FLAG_FORCEIDR = 0x2, NV_ENC_PIC_FLAG_OUTPUT_SPSPPS = 0x4 (nvEncodeAPI.h).
    let flags: Vec<u64> = trace_lines("nvEncEncodePicture")[before..]
        .iter()
        .filter(|l| l["args"]["encodePicFlags"].as_u64().unwrap_or(0) & 0x8 == 0)
        .map(|l| l["args"]["encodePicFlags"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(flags.len(), 10, "encode calls: {flags:?}");
    assert_eq!(flags[5] & 0x6, 0x6, "frame 5 flags: {flags:?}");
    assert!(
        flags
            .iter()
            .enumerate()
            .all(|(i, f)| i == 5 || f & 0x6 == 0),
        "only frame 5 forced: {flags:?}"
    );
}

/// The latency query reports the B-frame reorder delay: (bframes) frame durations.
fn latency(element: &str, bframes: u32, want: gst::ClockTime) {
    let mut h = new_harness(
        element,
        &[("bframes", &bframes.to_string())],
        &nv12_caps(W, H),
        "ANY",
    );
    push_frames(&mut h, W, H, 0..1);
    let got = h.query_latency();
    assert_eq!(got, Some(want), "{element} bframes={bframes}");
    finish(&mut h);
}

/// A flush in the middle (frames held as future B-frames) drops what NVENC held, re-creates
/// the session, and the frames after it all come out, starting with a keyframe.
fn flush_mid_stream() {
    let inits = trace_lines("nvEncInitializeEncoder").len();
    let destroys = trace_lines("nvEncDestroyEncoder").len();
    let mut h = new_harness(
        "rsnvench265enc",
        &[("bframes", "2")],
        &nv12_caps(W, H),
        "video/x-h265,stream-format=byte-stream,alignment=au",
    );
    push_frames(&mut h, W, H, 0..8);
    assert!(h.push_event(gst::event::FlushStart::new()));
    assert!(h.push_event(gst::event::FlushStop::new(true)));
    let seg = gst::FormattedSegment::<gst::ClockTime>::new();
    assert!(h.push_event(gst::event::Segment::new(&seg)));
    push_frames(&mut h, W, H, 100..110);
    let out = finish(&mut h);
    // The harness queue is in push order: what came out before the flush (at most frames 0-6:
    // frame 7 waited as a future B-frame and is dropped), then the 10 frames after it. (Running
    // times are taken in the last segment, which is right for the frames after the flush.)
    assert!((10..=17).contains(&out.len()), "{} buffers", out.len());
    let after = &out[out.len() - 10..];
    assert_eq!(
        after[0].0,
        FRAME * 100,
        "first out after the flush is frame 100"
    );
    assert!(after[0].1, "first frame after the flush is a keyframe");
    let mut pts: Vec<u64> = after.iter().map(|o| o.0 / FRAME).collect();
    pts.sort();
    assert_eq!(
        pts,
        (100..110).collect::<Vec<u64>>(),
        "every frame after the flush"
    );
    assert_eq!(
        trace_lines("nvEncInitializeEncoder").len() - inits,
        2,
        "session re-created after the flush"
    );
    drop(h);
    assert!(
        trace_lines("nvEncDestroyEncoder").len() - destroys >= 2,
        "both sessions destroyed"
    );
}

/// New caps mid-stream: everything before is drained out, the session is re-created at the
/// new size, output caps follow, and the first frame at the new size is a keyframe.
fn caps_change() {
    let inits = trace_lines("nvEncInitializeEncoder").len();
    let mut h = new_harness(
        "rsnvench265enc",
        &[("bframes", "2")],
        &nv12_caps(W, H),
        "video/x-h265,stream-format=byte-stream,alignment=au",
    );
    push_frames(&mut h, W, H, 0..5);
    h.set_src_caps_str(&nv12_caps(352, 288));
    push_frames(&mut h, 352, 288, 5..10);
    let out = finish(&mut h);
    let mut pts: Vec<(u64, bool)> = out.iter().map(|o| (o.0 / FRAME, o.1)).collect();
    pts.sort();
    assert_eq!(pts.len(), 10, "frames out == frames in: {pts:?}");
    assert!(pts[5].1, "first frame at the new size is a keyframe");
    let init = trace_lines("nvEncInitializeEncoder");
    assert_eq!(init.len() - inits, 2, "session re-created");
    assert_eq!(init[init.len() - 1]["args"]["encodeWidth"], 352);
    let caps = h.sinkpad().unwrap().current_caps().expect("output caps");
    let s = caps.structure(0).unwrap();
    assert_eq!(s.get::<i32>("width").unwrap(), 352);
    assert_eq!(s.get::<i32>("height").unwrap(), 288);
}

/// Input the GPU cannot take (16x16, below NVENC's 145x49): negotiation fails, and the element
/// says why in a warning that names what the GPU takes (probed at start).
fn unsupported_size_says_why() {
    let p = gst::parse::launch(
        "videotestsrc num-buffers=3 ! video/x-raw,format=NV12,width=16,height=16 ! rsnvench265enc ! fakesink",
    )
    .expect("pipeline");
    p.set_state(gst::State::Playing).ok();
    let bus = p.bus().unwrap();
    let mut warnings = Vec::new();
    let mut error = None;
    while let Some(msg) = bus.timed_pop(gst::ClockTime::from_seconds(20)) {
        match msg.view() {
            gst::MessageView::Warning(w) => {
                warnings.push(format!("{} {:?}", w.error(), w.debug()));
            }
            gst::MessageView::Error(e) => {
                error = Some(e.error().to_string());
                break;
            }
            gst::MessageView::Eos(_) => break,
            _ => {}
        }
    }
    p.set_state(gst::State::Null).ok();
    assert!(error.is_some(), "16x16 must fail");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("cannot take the offered input")
                && w.contains("width=(int)[ 145, 8192 ]")),
        "warnings: {warnings:?}"
    );
}

/// bitrate changed while PLAYING: one `nvEncReconfigureEncoder` carrying the new rate, with
/// neither resetEncoder nor forceIDR, the same session, no new IDR, every frame out.
fn live_bitrate_change() {
    let inits = trace_lines("nvEncInitializeEncoder").len();
    let reconfs = trace_lines("nvEncReconfigureEncoder").len();
    let mut h = new_harness(
        "rsnvench265enc",
        &[("rc-mode", "cbr"), ("bitrate", "1000"), ("gop-size", "-1")],
        &nv12_caps(W, H),
        "video/x-h265,stream-format=byte-stream,alignment=au",
    );
    push_frames(&mut h, W, H, 0..10);
    h.element().unwrap().set_property("bitrate", 3000u32);
    push_frames(&mut h, W, H, 10..20);
    let out = finish(&mut h);
    assert_eq!(out.len(), 20, "frames out == frames in");
    let keys: Vec<u64> = out.iter().filter(|o| o.1).map(|o| o.0 / FRAME).collect();
    assert_eq!(keys, vec![0], "no IDR for a bitrate change");
    assert_eq!(
        trace_lines("nvEncInitializeEncoder").len() - inits,
        1,
        "same session"
    );
    let r = trace_lines("nvEncReconfigureEncoder");
    assert_eq!(r.len() - reconfs, 1, "one reconfigure");
    let a = &r[r.len() - 1]["args"];
    assert_eq!(r[r.len() - 1]["status"], "NV_ENC_SUCCESS");
    assert_eq!(a["resetEncoder"], 0);
    assert_eq!(a["forceIDR"], 0);
    assert_eq!(
        a["reInitEncodeParams.encodeConfig.rcParams.averageBitRate"],
        3000 * 1024,
        "{a}"
    );
}

/// preset changed while PLAYING: drained, a new session with the new preset, a new IDR at the
/// next frame, every frame out.
fn live_preset_change() {
    let inits = trace_lines("nvEncInitializeEncoder").len();
    let mut h = new_harness(
        "rsnvencav1enc",
        &[("gop-size", "-1")],
        &nv12_caps(W, H),
        "video/x-av1,stream-format=obu-stream,alignment=tu",
    );
    push_frames(&mut h, W, H, 0..10);
    h.element().unwrap().set_property_from_str("preset", "p7");
    push_frames(&mut h, W, H, 10..20);
    let out = finish(&mut h);
    assert_eq!(out.len(), 20, "frames out == frames in");
    let keys: Vec<u64> = out.iter().filter(|o| o.1).map(|o| o.0 / FRAME).collect();
    assert_eq!(
        keys,
        vec![0, 10],
        "new IDR at the first frame after the change"
    );
    let init = trace_lines("nvEncInitializeEncoder");
    assert_eq!(init.len() - inits, 2, "a new session");
    assert_eq!(
        init[init.len() - 1]["args"]["presetGUID"],
        "NV_ENC_PRESET_P7_GUID"
    );
}

/// Every nvcodec (1.28) property of nvh265enc / nvav1enc (and nvh264enc's common ones), by
/// name; `cc-insert` with nvcodec's enum (nicks, values, default insert) under a GstRs type
/// name; and the frame-stats signal exists.
fn property_names_match_nvcodec() {
    let common = [
        "cuda-device-id",
        "preset",
        "tune",
        "multi-pass",
        "weighted-pred",
        "gop-size",
        "bframes",
        "rc-mode",
        "qp-const-i",
        "qp-const-p",
        "qp-const-b",
        "bitrate",
        "max-bitrate",
        "vbv-buffer-size",
        "rc-lookahead",
        "i-adapt",
        "b-adapt",
        "spatial-aq",
        "temporal-aq",
        "zerolatency",
        "nonref-p",
        "strict-gop",
        "aq-strength",
        "qp-min-i",
        "qp-min-p",
        "qp-min-b",
        "qp-max-i",
        "qp-max-p",
        "qp-max-b",
        "const-quality",
        "cc-insert",
    ];
    let h265_only = [
        "qp-const",
        "qp-min",
        "qp-max",
        "aud",
        "repeat-sequence-header",
        "num-slices",
    ];
    for (element, extra) in [
        ("rsnvench265enc", &h265_only[..]),
        ("rsnvencav1enc", &[][..]),
        ("rsnvench264enc", &["aud", "repeat-sequence-header"][..]),
    ] {
        let e = gst::ElementFactory::make(element).build().expect(element);
        let names: Vec<String> = e
            .list_properties()
            .iter()
            .map(|p| p.name().to_string())
            .collect();
        for want in common.iter().chain(extra.iter()) {
            assert!(names.iter().any(|n| n == want), "{element} lacks {want}");
        }
        let cc = e.find_property("cc-insert").unwrap();
        assert_eq!(cc.value_type().name(), "GstRsNvEncSeiInsertMode");
        let class = gst::glib::EnumClass::with_type(cc.value_type()).unwrap();
        let values: Vec<(i32, String)> = class
            .values()
            .iter()
            .map(|v| (v.value(), v.nick().to_string()))
            .collect();
        assert_eq!(
            values,
            [
                (0, "insert".to_string()),
                (1, "insert-and-drop".to_string()),
                (2, "disabled".to_string())
            ],
            "{element}: nvcodec's GstNvEncoderSeiInsertMode"
        );
        let default = cc.default_value().get::<&gst::glib::EnumValue>().unwrap();
        assert_eq!(default.nick(), "insert", "{element}: cc-insert default");
        let now = e.property_value("cc-insert");
        assert_eq!(now.get::<&gst::glib::EnumValue>().unwrap().value(), 0);
        assert!(!cc.flags().contains(gst::glib::ParamFlags::CONSTRUCT_ONLY));
        if element == "rsnvencav1enc" {
            for h in h265_only {
                assert!(!names.iter().any(|n| n == h), "{element} must not have {h}");
            }
        }
        assert!(
            gst::glib::subclass::signal::SignalId::lookup("frame-stats", e.type_()).is_some(),
            "{element}: frame-stats signal"
        );
        let bitrate = e.find_property("bitrate").unwrap();
        assert!(bitrate.flags().contains(gst::PARAM_FLAG_MUTABLE_PLAYING));
    }
}

fn run(name: &str, f: &dyn Fn(), failed: &mut Vec<String>) {
    eprint!("test {name} ... ");
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(()) => eprintln!("ok"),
        Err(_) => {
            eprintln!("FAILED");
            failed.push(name.to_string());
        }
    }
}

fn emulator_in_library_path(lib: &Path) -> bool {
    std::env::var_os("LD_LIBRARY_PATH").is_some_and(|p| {
        std::env::split_paths(&p).any(|d| d.canonicalize().ok() == lib.canonicalize().ok())
    })
}

fn main() -> ExitCode {
    let lib = root().join("target/nvemu/lib");
    if !lib.join("libnvidia-encode.so.1").exists() || !emulator_in_library_path(&lib) {
        eprintln!(
            "NVENC emulator not built or not in LD_LIBRARY_PATH (run scripts/test); skipping"
        );
        return ExitCode::SUCCESS;
    }
    std::fs::create_dir_all(root().join("target/e2e")).expect("target/e2e");
    let _ = std::fs::remove_file(trace_path());
    // SAFETY: nothing else runs yet (no thread has been started by this process), so nothing
    // can read the environment concurrently.
    unsafe {
        std::env::set_var("NVEMU_STRICT", "abort");
        std::env::set_var("NVEMU_TRACE", trace_path());
    }
    gst::init().expect("gst init");
    gstrsnvenc::plugin_register_static().expect("register rsnvenc");

    let mut failed = Vec::new();
    run(
        "force_key_unit_h265",
        &|| force_key_unit("rsnvench265enc"),
        &mut failed,
    );
    run(
        "force_key_unit_av1",
        &|| force_key_unit("rsnvencav1enc"),
        &mut failed,
    );
    run(
        "latency_h265_bframes_2",
        &|| latency("rsnvench265enc", 2, FRAME * 2),
        &mut failed,
    );
    run(
        "latency_av1_no_reorder",
        &|| latency("rsnvencav1enc", 0, gst::ClockTime::ZERO),
        &mut failed,
    );
    run("flush_mid_stream", &flush_mid_stream, &mut failed);
    run("caps_change", &caps_change, &mut failed);
    run(
        "unsupported_size_says_why",
        &unsupported_size_says_why,
        &mut failed,
    );
    run(
        "property_names_match_nvcodec",
        &property_names_match_nvcodec,
        &mut failed,
    );
    run("live_bitrate_change", &live_bitrate_change, &mut failed);
    run("live_preset_change", &live_preset_change, &mut failed);
    let bad: Vec<String> = std::fs::read_to_string(trace_path())
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("\"violation\""))
        .map(str::to_string)
        .collect();
    if !bad.is_empty() {
        eprintln!("contract violations in the trace: {bad:#?}");
        failed.push("no_contract_violation".into());
    }
    if failed.is_empty() {
        eprintln!("element tests: all passed");
        ExitCode::SUCCESS
    } else {
        eprintln!("element tests failed: {failed:?}");
        ExitCode::FAILURE
    }
}
