// SPDX-License-Identifier: MPL-2.0
//! Regions of interest (issue 12): `GstVideoRegionOfInterestMeta` on the input becomes NVENC's
//! QP delta map (the emulator's trace shows the map NVENC read), and the region comes out
//! better than the rest (PSNR of the decoded Y plane against the source, inside and outside);
//! the refusal under constant QP (one warning); no map without metas; and the QP the element
//! reports in `frame-stats` following a live quality change.

use std::path::PathBuf;
use std::process::Command;

use gst::prelude::*;
use gst_video::prelude::*;

use super::{FRAME, finish, new_harness, nv12_caps, root, sink_caps_of, trace_lines};

const CW: u32 = 720;
const CH: u32 = 405;
const FRAMES: usize = 40;
/// The region: aligned to 32 pixels, so that macroblocks (16) and CTBs (32) cover it exactly.
const ROI: (u32, u32, u32, u32) = (256, 128, 192, 128);

fn clip() -> PathBuf {
    let p = root().join("tests/data/cityCC0.mpg");
    if !p.exists() {
        let st = Command::new(root().join("scripts/fetch-test-clip"))
            .status()
            .expect("run scripts/fetch-test-clip");
        assert!(st.success(), "scripts/fetch-test-clip failed");
    }
    p
}

/// The first `n` frames of the real clip as NV12 in FFmpeg's raw layout (Y rows, then
/// interleaved UV rows: 405 + 203 rows of 720 bytes), decoded by FFmpeg.
fn clip_frames(n: usize) -> Vec<Vec<u8>> {
    let o = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(clip())
        .args([
            "-frames:v",
            &n.to_string(),
            "-pix_fmt",
            "nv12",
            "-f",
            "rawvideo",
            "-",
        ])
        .output()
        .expect("run ffmpeg");
    assert!(
        o.status.success(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let size = (CW * CH + CW * CH.div_ceil(2)) as usize;
    assert_eq!(o.stdout.len(), size * n, "decoded frames");
    o.stdout.chunks(size).map(<[u8]>::to_vec).collect()
}

/// Pushes the clip's frames (PTS from frame `first`), each with one region of interest when
/// `roi` is `Some` (with its parameter structure, if any).
fn push_clip(
    h: &mut gst_check::Harness,
    frames: &[Vec<u8>],
    first: u64,
    roi: Option<Option<gst::Structure>>,
) {
    let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Nv12, CW, CH)
        .build()
        .unwrap();
    for (i, f) in frames.iter().enumerate() {
        let mut buf = gst::Buffer::with_size(info.size()).unwrap();
        {
            let b = buf.get_mut().unwrap();
            b.set_pts(FRAME * (first + i as u64));
            b.set_duration(FRAME);
            fill_nv12(b, &info, f);
            if let Some(param) = &roi {
                let mut m = gst_video::VideoRegionOfInterestMeta::add(b, "face", ROI);
                if let Some(p) = param {
                    m.add_param(p.clone());
                }
            }
        }
        assert_eq!(h.push(buf), Ok(gst::FlowSuccess::Ok), "push frame {i}");
    }
}

/// Y planes of `data` (an H.264/H.265 byte stream) decoded by FFmpeg.
fn decode_y(data: &[u8], name: &str) -> Vec<Vec<u8>> {
    let dir = root().join("target/e2e");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(name);
    std::fs::write(&file, data).unwrap();
    let demuxer = if name.ends_with(".h265") {
        "hevc"
    } else {
        "h264"
    };
    let o = Command::new("ffmpeg")
        .args(["-v", "error", "-f", demuxer, "-i"])
        .arg(&file)
        // 4:2:0 H.264/H.265 code 406 rows (cropped to 405 by the SPS where the encoder
        // writes the crop, not always): the top 405 are the picture.
        .args([
            "-vf",
            "format=gray,crop=720:405:0:0",
            "-pix_fmt",
            "gray",
            "-f",
            "rawvideo",
            "-",
        ])
        .output()
        .expect("run ffmpeg");
    assert!(
        o.status.success(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let size = (CW * CH) as usize;
    o.stdout.chunks(size).map(<[u8]>::to_vec).collect()
}

/// PSNR (dB) of the Y plane inside the region and outside it, over every frame.
fn psnr_in_out(decoded: &[Vec<u8>], source: &[Vec<u8>]) -> (f64, f64) {
    let (mut se_in, mut n_in, mut se_out, mut n_out) = (0f64, 0f64, 0f64, 0f64);
    let (rx, ry, rw, rh) = ROI;
    for (d, s) in decoded.iter().zip(source) {
        for y in 0..CH {
            for x in 0..CW {
                let i = (y * CW + x) as usize;
                let e = d[i] as f64 - s[i] as f64;
                if (rx..rx + rw).contains(&x) && (ry..ry + rh).contains(&y) {
                    se_in += e * e;
                    n_in += 1.0;
                } else {
                    se_out += e * e;
                    n_out += 1.0;
                }
            }
        }
    }
    let psnr = |se: f64, n: f64| 10.0 * (255.0f64 * 255.0 / (se / n).max(1e-9)).log10();
    (psnr(se_in, n_in), psnr(se_out, n_out))
}

/// The QP delta maps NVENC read (trace `emu.qp_map`) of the pictures since trace line `from`.
fn traced_maps(from: usize) -> Vec<Option<serde_json::Value>> {
    trace_lines("nvEncEncodePicture")[from..]
        .iter()
        .filter(|l| l["args"]["encodePicFlags"].as_u64().unwrap_or(0) & 0x8 == 0)
        .map(|l| l["args"].get("emu.qp_map").cloned())
        .collect()
}

/// Mean delta of the map's blocks inside the region and outside it.
fn map_in_out(m: &serde_json::Value) -> (f64, f64) {
    let (block, cols) = (
        m["block"].as_u64().unwrap() as u32,
        m["cols"].as_u64().unwrap(),
    );
    let hex = m["map"].as_str().unwrap();
    let deltas: Vec<i8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap() as i8)
        .collect();
    let (rx, ry, rw, rh) = ROI;
    let (mut si, mut ni, mut so, mut no) = (0f64, 0f64, 0f64, 0f64);
    for (i, d) in deltas.iter().enumerate() {
        let (bx, by) = (
            (i as u64 % cols) as u32 * block,
            (i as u64 / cols) as u32 * block,
        );
        if (rx..rx + rw).contains(&bx) && (ry..ry + rh).contains(&by) {
            si += *d as f64;
            ni += 1.0;
        } else {
            so += *d as f64;
            no += 1.0;
        }
    }
    (si / ni, so / no)
}

/// Encodes the clip's first frames with `element` (CBR 500 kbit/s), `roi` as [`push_clip`];
/// returns the decoded Y planes and the traced maps.
fn encode(
    element: &str,
    frames: &[Vec<u8>],
    roi: Option<Option<gst::Structure>>,
    name: &str,
) -> (Vec<Vec<u8>>, Vec<Option<serde_json::Value>>) {
    encode_with(element, &[], frames, roi, name)
}

/// [`encode`] with more properties (`extra`, after the rate control's).
fn encode_with(
    element: &str,
    extra: &[(&str, &str)],
    frames: &[Vec<u8>],
    roi: Option<Option<gst::Structure>>,
    name: &str,
) -> (Vec<Vec<u8>>, Vec<Option<serde_json::Value>>) {
    let from = trace_lines("nvEncEncodePicture").len();
    let mut props = vec![("rc-mode", "cbr"), ("bitrate", "500"), ("gop-size", "-1")];
    props.extend_from_slice(extra);
    let mut h = new_harness(
        element,
        &props,
        &format!("video/x-raw,format=NV12,width={CW},height={CH},framerate=25/1"),
        sink_caps_of(element),
    );
    push_clip(&mut h, frames, 0, roi);
    let out = finish(&mut h);
    assert_eq!(
        out.len(),
        frames.len(),
        "{element}: frames out == frames in"
    );
    let data: Vec<u8> = out.iter().flat_map(|o| o.2.iter().copied()).collect();
    (decode_y(&data, name), traced_maps(from))
}

/// A region with delta -10 (`roi/nvenc` for H.264, `roi/vaapi` as GStreamer's VA-API
/// encoders read it for H.265): every picture carries the map (-10 on the region's blocks, 0
/// elsewhere), and the region decodes better than without it while the rest pays.
pub fn roi_improves_the_region(element: &str) {
    let source = clip_frames(FRAMES);
    let source_y: Vec<Vec<u8>> = source
        .iter()
        .map(|f| f[..(CW * CH) as usize].to_vec())
        .collect();
    let param = if element == "rsnvench264enc" {
        "roi/nvenc"
    } else {
        "roi/vaapi"
    };
    let roi = gst::Structure::builder(param)
        .field("delta-qp", -10i32)
        .build();
    let ext = if element == "rsnvench264enc" {
        "h264"
    } else {
        "h265"
    };
    let (with, maps) = encode(
        element,
        &source,
        Some(Some(roi)),
        &format!("roi-{element}.{ext}"),
    );
    let (without, plain) = encode(element, &source, None, &format!("roi-none-{element}.{ext}"));
    assert_eq!(maps.len(), FRAMES, "{element}: pictures traced");
    let (block, cols, rows) = if element == "rsnvench264enc" {
        (16, 45, 26)
    } else {
        (32, 23, 13)
    };
    for (i, m) in maps.iter().enumerate() {
        let m = m
            .as_ref()
            .unwrap_or_else(|| panic!("{element}: picture {i} without a map"));
        assert_eq!(
            (&m["block"], &m["cols"], &m["rows"]),
            (&block.into(), &cols.into(), &rows.into()),
            "{element}: {m}"
        );
        assert_eq!(m["mode"], "delta", "{element}: {m}");
        let (inside, outside) = map_in_out(m);
        assert_eq!(
            (inside, outside),
            (-10.0, 0.0),
            "{element} picture {i}: {m}"
        );
    }
    assert!(
        plain.iter().all(Option::is_none),
        "{element}: a map without regions"
    );
    let (in_roi, out_roi) = psnr_in_out(&with, &source_y);
    let (in_plain, out_plain) = psnr_in_out(&without, &source_y);
    eprintln!(
        "{element}: Y PSNR inside/outside the region: with ROI {in_roi:.2}/{out_roi:.2} dB, without {in_plain:.2}/{out_plain:.2} dB"
    );
    assert_eq!((with.len(), without.len()), (FRAMES, FRAMES));
    assert!(
        in_roi > in_plain + 0.5,
        "{element}: region {in_roi:.2} dB with ROI, {in_plain:.2} dB without"
    );
    assert!(
        in_roi > out_roi,
        "{element}: region {in_roi:.2} dB, rest {out_roi:.2} dB"
    );
    assert!(
        out_roi < out_plain,
        "{element}: the rest pays: {out_roi:.2} dB with ROI, {out_plain:.2} dB without"
    );
}

/// Under constant QP the regions are refused with one warning (not one per frame), the
/// session says `NV_ENC_QP_MAP_DISABLED` and NVENC gets no map; a region without a `delta-qp`
/// parameter takes `roi-delta-qp` (here +5) where rate control takes maps.
pub fn roi_refused_under_constqp() {
    let inits = trace_lines("nvEncInitializeEncoder").len();
    let from = trace_lines("nvEncEncodePicture").len();
    let mut h = new_harness(
        "rsnvench264enc",
        &[("rc-mode", "constqp"), ("gop-size", "-1")],
        &nv12_caps(super::W, super::H),
        sink_caps_of("rsnvench264enc"),
    );
    let bus = gst::Bus::new();
    h.element().unwrap().set_bus(Some(&bus));
    push_with_roi(&mut h, 0..6);
    let out = finish(&mut h);
    assert_eq!(out.len(), 6);
    let warnings: Vec<String> = std::iter::from_fn(|| bus.pop())
        .filter_map(|m| match m.view() {
            gst::MessageView::Warning(w) => Some(w.error().to_string()),
            _ => None,
        })
        .filter(|w| w.contains("regions of interest"))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning: {warnings:?}");
    assert!(warnings[0].contains("constqp"), "{warnings:?}");
    let init = &trace_lines("nvEncInitializeEncoder")[inits];
    assert_eq!(init["args"]["encodeConfig.rcParams.qpMapMode"], 0, "{init}");
    assert!(
        traced_maps(from).iter().all(Option::is_none),
        "no map under constqp"
    );

    // VBR: the map is there, with the property's delta.
    let inits = trace_lines("nvEncInitializeEncoder").len();
    let from = trace_lines("nvEncEncodePicture").len();
    let mut h = new_harness(
        "rsnvench264enc",
        &[("rc-mode", "vbr"), ("roi-delta-qp", "5")],
        &nv12_caps(super::W, super::H),
        sink_caps_of("rsnvench264enc"),
    );
    push_with_roi(&mut h, 0..3);
    assert_eq!(finish(&mut h).len(), 3);
    let init = &trace_lines("nvEncInitializeEncoder")[inits];
    assert_eq!(init["args"]["encodeConfig.rcParams.qpMapMode"], 2, "{init}");
    let maps = traced_maps(from);
    assert_eq!(maps.len(), 3);
    for m in maps {
        let m = m.expect("a map");
        assert_eq!((&m["min"], &m["max"]), (&0.into(), &5.into()), "{m}");
    }
}

/// Frames `range` of the small gradient, each with a region (no parameter) at 16,16 32x32.
fn push_with_roi(h: &mut gst_check::Harness, range: std::ops::Range<u64>) {
    let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Nv12, super::W, super::H)
        .build()
        .unwrap();
    for i in range {
        let mut buf = gst::Buffer::with_size(info.size()).unwrap();
        {
            let b = buf.get_mut().unwrap();
            b.set_pts(FRAME * i);
            b.set_duration(FRAME);
            b.map_writable().unwrap().fill((i * 8 % 200 + 16) as u8);
            gst_video::VideoRegionOfInterestMeta::add(b, "any", (16, 16, 32, 32));
        }
        assert_eq!(h.push(buf), Ok(gst::FlowSuccess::Ok));
    }
}

/// Key frames of an H.264/H.265 stream as ffprobe decodes it: the frame numbers with
/// `key_frame=1` and the pict_type of every frame.
pub fn ffprobe_key_frames(element: &str, name: &str, stream: &[u8]) -> (Vec<usize>, String) {
    let ext = if element == "rsnvench265enc" {
        "h265"
    } else {
        "h264"
    };
    let file = root().join(format!("target/e2e/{name}-{element}.{ext}"));
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, stream).unwrap();
    let o = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "frame=key_frame,pict_type",
            "-of",
            "csv=p=0",
        ])
        .arg(&file)
        .output()
        .expect("ffprobe");
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let keys = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with('1'))
        .map(|(i, _)| i)
        .collect();
    let types = text
        .lines()
        .map(|l| l.rsplit(',').next().unwrap_or("?"))
        .collect();
    (keys, types)
}

/// What a live change of `what` must leave (`out`: the element's output; `inits`, `reconfs`:
/// the trace's counts before): no IDR after the first picture (element flags and ffprobe), one
/// session, one `nvEncReconfigureEncoder` without `resetEncoder`/`forceIDR`. Returns that
/// reconfigure's arguments.
fn live_change_without_idr(
    element: &str,
    what: &str,
    out: &[(gst::ClockTime, bool, Vec<u8>)],
    inits: usize,
    reconfs: usize,
) -> serde_json::Value {
    let keys: Vec<usize> = (0..out.len()).filter(|&i| out[i].1).collect();
    assert_eq!(keys, vec![0], "{element}: no IDR for a new {what}");
    let stream: Vec<u8> = out.iter().flat_map(|o| o.2.iter().copied()).collect();
    let (keys, types) = ffprobe_key_frames(element, what, &stream);
    assert_eq!(keys, vec![0], "{element}: ffprobe key frames ({types})");
    assert_eq!(
        trace_lines("nvEncInitializeEncoder").len() - inits,
        1,
        "{element}: one session"
    );
    let r = trace_lines("nvEncReconfigureEncoder");
    assert_eq!(r.len() - reconfs, 1, "{element}: one reconfigure");
    let a = r[r.len() - 1]["args"].clone();
    assert_eq!((&a["resetEncoder"], &a["forceIDR"]), (&0.into(), &0.into()));
    a
}

/// A harness of `element` at the clip's size, 25 fps, without GOP (`gop-size=-1`), with
/// `props` and `emit-frame-stats`: the `(system-frame-number, frame-avg-qp)` of every
/// `frame-stats` signal are collected in the returned list.
#[allow(clippy::type_complexity)]
fn qp_stats_harness(
    element: &str,
    props: &[(&str, &str)],
) -> (
    gst_check::Harness,
    std::sync::Arc<std::sync::Mutex<Vec<(u32, u32)>>>,
) {
    let mut all = props.to_vec();
    all.extend([("gop-size", "-1"), ("emit-frame-stats", "true")]);
    let h = new_harness(
        element,
        &all,
        &format!("video/x-raw,format=NV12,width={CW},height={CH},framerate=25/1"),
        sink_caps_of(element),
    );
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = seen.clone();
    h.element()
        .unwrap()
        .connect("frame-stats", false, move |args| {
            let st = args[1].get::<gst::Structure>().unwrap();
            s.lock().unwrap().push((
                st.get::<u32>("system-frame-number").unwrap(),
                st.get::<u32>("frame-avg-qp").unwrap(),
            ));
            None
        });
    (h, seen)
}

/// The QP the element reports in `frame-stats` (`frame-avg-qp`, NVENC's `frameAvgQP`) follows
/// a live change of `const-quality` (VBR with target quality 40, then 20) on the real clip: one
/// session, one `nvEncReconfigureEncoder` without `resetEncoder`/`forceIDR`, and no IDR in
/// the output after the first picture (element flags and ffprobe).
pub fn frame_stats_qp_follows_const_quality(element: &str) {
    let source = clip_frames(24);
    let inits = trace_lines("nvEncInitializeEncoder").len();
    let reconfs = trace_lines("nvEncReconfigureEncoder").len();
    let (mut h, seen) = qp_stats_harness(element, &[("rc-mode", "vbr"), ("const-quality", "40")]);
    push_clip(&mut h, &source[..12], 0, None);
    h.element()
        .unwrap()
        .set_property_from_str("const-quality", "20");
    push_clip(&mut h, &source[12..], 12, None);
    let out = finish(&mut h);
    assert_eq!(out.len(), 24);
    live_change_without_idr(element, "const-quality", &out, inits, reconfs);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 24, "{element}: {seen:?}");
    let mean = |r: std::ops::Range<u32>| {
        let v: Vec<f64> = seen
            .iter()
            .filter(|s| r.contains(&s.0))
            .map(|s| s.1 as f64)
            .collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    let (before, after) = (mean(1..12), mean(13..24));
    eprintln!("{element}: frame-avg-qp {before:.1} at const-quality 40, {after:.1} at 20");
    assert!(
        after + 8.0 < before,
        "{element}: frame-avg-qp {before:.1} then {after:.1}: {seen:?}"
    );
}

/// Copies one frame in FFmpeg's raw NV12 layout into `b` (GStreamer's layout of `info`).
fn fill_nv12(b: &mut gst::BufferRef, info: &gst_video::VideoInfo, f: &[u8]) {
    let mut vf = gst_video::VideoFrameRef::from_buffer_ref_writable(b, info).expect("frame");
    let w = CW as usize;
    for plane in 0..2u32 {
        let stride = vf.plane_stride()[plane as usize] as usize;
        let (rows, off) = if plane == 0 {
            (CH as usize, 0)
        } else {
            (CH.div_ceil(2) as usize, w * CH as usize)
        };
        let dst = vf.plane_data_mut(plane).unwrap();
        for r in 0..rows {
            dst[r * stride..r * stride + w].copy_from_slice(&f[off + r * w..off + (r + 1) * w]);
        }
    }
}

/// `NVEMU_CAPS` of the child process of [`emphasis_map_where_the_gpu_has_it`]: every codec
/// reports `NV_ENC_CAPS_SUPPORT_EMPHASIS_LEVEL_MAP` = 1 (H.264 as a GPU that has it; H.265 and
/// AV1 so that the element is seen not to use it there, as NVENC has it for H.264 only).
pub const EMPHASIS_CAPS: &str = "SUPPORT_EMPHASIS_LEVEL_MAP=1";

/// The session's `rcParams.qpMapMode` of the initialisations since trace line `from`.
fn qp_map_modes(from: usize) -> Vec<u64> {
    trace_lines("nvEncInitializeEncoder")[from..]
        .iter()
        .map(|l| {
            l["args"]["encodeConfig.rcParams.qpMapMode"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

/// Run in a child process under [`EMPHASIS_CAPS`] (the cap is read per process). H.264 with
/// `roi-mode=auto`, no AQ: the session says `NV_ENC_QP_MAP_EMPHASIS` and every picture an
/// emphasis level map with level 5 (from `delta-qp` -10) on the region's macroblocks and 0
/// elsewhere; the region decodes better than without regions. An explicit `emphasis` field
/// gives its level; with `spatial-aq` (not supported with emphasis; also when turned on live,
/// in the same session) or `roi-mode=delta` the QP delta map; H.265 and AV1 never use emphasis.
pub fn emphasis_map_where_the_gpu_has_it() {
    let element = "rsnvench264enc";
    let source = clip_frames(FRAMES);
    let source_y: Vec<Vec<u8>> = source
        .iter()
        .map(|f| f[..(CW * CH) as usize].to_vec())
        .collect();
    let roi = |fields: &[(&str, i32)]| {
        let mut b = gst::Structure::builder("roi/nvenc");
        for (k, v) in fields {
            b = b.field(*k, *v);
        }
        Some(Some(b.build()))
    };
    let inits = trace_lines("nvEncInitializeEncoder").len();
    let (with, maps) = encode(element, &source, roi(&[("delta-qp", -10)]), "emph.h264");
    assert_eq!(qp_map_modes(inits), [1], "NV_ENC_QP_MAP_EMPHASIS");
    assert_eq!(maps.len(), FRAMES);
    for (i, m) in maps.iter().enumerate() {
        let m = m
            .as_ref()
            .unwrap_or_else(|| panic!("picture {i} without a map"));
        assert_eq!(m["mode"], "emphasis", "{m}");
        assert_eq!((&m["block"], &m["cols"]), (&16.into(), &45.into()), "{m}");
        assert_eq!(map_in_out(m), (5.0, 0.0), "picture {i}: {m}");
    }
    let (without, plain) = encode(element, &source, None, "emph-none.h264");
    assert!(plain.iter().all(Option::is_none), "a map without regions");
    let (in_roi, out_roi) = psnr_in_out(&with, &source_y);
    let (in_plain, out_plain) = psnr_in_out(&without, &source_y);
    eprintln!(
        "{element} emphasis map: Y PSNR inside/outside the region: with ROI {in_roi:.2}/{out_roi:.2} dB, without {in_plain:.2}/{out_plain:.2} dB"
    );
    assert!(
        in_roi > in_plain + 0.5,
        "region {in_roi:.2} dB with ROI, {in_plain:.2} dB without"
    );
    assert!(
        in_roi > out_roi,
        "region {in_roi:.2} dB, rest {out_roi:.2} dB"
    );

    // The roi/nvenc emphasis field gives the level.
    let few = &source[..4];
    let (_, maps) = encode(
        element,
        few,
        roi(&[("delta-qp", -10), ("emphasis", 2)]),
        "emph-2.h264",
    );
    for m in maps {
        let m = m.expect("a map");
        assert_eq!(
            (m["mode"].as_str(), map_in_out(&m)),
            (Some("emphasis"), (2.0, 0.0)),
            "{m}"
        );
    }
    // spatial-aq, roi-mode=delta: the QP delta map.
    for extra in [("spatial-aq", "true"), ("roi-mode", "delta")] {
        let inits = trace_lines("nvEncInitializeEncoder").len();
        let (_, maps) = encode_with(
            element,
            &[extra],
            few,
            roi(&[("delta-qp", -10)]),
            "emph-d.h264",
        );
        assert_eq!(qp_map_modes(inits), [2], "{extra:?}: NV_ENC_QP_MAP_DELTA");
        for m in maps {
            let m = m.expect("a map");
            assert_eq!(
                (m["mode"].as_str(), map_in_out(&m)),
                (Some("delta"), (-10.0, 0.0)),
                "{extra:?}: {m}"
            );
        }
    }
    // spatial-aq turned on live: the session goes on (one reconfigure) with the delta map.
    let inits = trace_lines("nvEncInitializeEncoder").len();
    let reconfs = trace_lines("nvEncReconfigureEncoder").len();
    let from = trace_lines("nvEncEncodePicture").len();
    let mut h = new_harness(
        element,
        &[("rc-mode", "cbr"), ("bitrate", "500"), ("gop-size", "-1")],
        &format!("video/x-raw,format=NV12,width={CW},height={CH},framerate=25/1"),
        sink_caps_of(element),
    );
    push_clip(&mut h, &source[..3], 0, roi(&[("delta-qp", -10)]));
    h.element().unwrap().set_property("spatial-aq", true);
    push_clip(&mut h, &source[3..6], 3, roi(&[("delta-qp", -10)]));
    assert_eq!(finish(&mut h).len(), 6);
    assert_eq!(qp_map_modes(inits), [1], "one session, emphasis");
    let r = &trace_lines("nvEncReconfigureEncoder")[reconfs..];
    assert_eq!(r.len(), 1, "one reconfigure");
    let key =
        |k: &str| r[0]["args"][format!("reInitEncodeParams.encodeConfig.rcParams.{k}")].clone();
    assert_eq!(
        (key("enableAQ"), key("qpMapMode")),
        (1.into(), 2.into()),
        "{}",
        r[0]
    );
    let modes: Vec<String> = traced_maps(from)
        .into_iter()
        .map(|m| m.expect("a map")["mode"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        modes,
        [
            "emphasis", "emphasis", "emphasis", "delta", "delta", "delta"
        ]
    );

    // H.265 and AV1: the delta map, whatever the cap says.
    for element in ["rsnvench265enc", "rsnvencav1enc"] {
        let inits = trace_lines("nvEncInitializeEncoder").len();
        let from = trace_lines("nvEncEncodePicture").len();
        let mut h = new_harness(
            element,
            &[("rc-mode", "cbr"), ("bitrate", "500"), ("roi-mode", "auto")],
            &format!("video/x-raw,format=NV12,width={CW},height={CH},framerate=25/1"),
            sink_caps_of(element),
        );
        push_clip(&mut h, few, 0, roi(&[("delta-qp", -10)]));
        assert_eq!(finish(&mut h).len(), few.len(), "{element}");
        assert_eq!(qp_map_modes(inits), [2], "{element}: NV_ENC_QP_MAP_DELTA");
        for m in traced_maps(from) {
            assert_eq!(m.expect("a map")["mode"], "delta", "{element}");
        }
    }
}

/// A live change of the constant QP (`qp-const`, constqp) on H.265: one session, one
/// `nvEncReconfigureEncoder` without `resetEncoder`/`forceIDR`, no IDR after the first
/// picture (element flags and ffprobe), and `frame-avg-qp` at the new QP from the next
/// picture on. (H.264 and AV1 are not shown: the emulator's x264 and libaom cannot take a new
/// constant QP live and re-open, an IDR real NVENC would not code; see the contract.)
pub fn frame_stats_qp_follows_const_qp() {
    let element = "rsnvench265enc";
    let source = clip_frames(16);
    let inits = trace_lines("nvEncInitializeEncoder").len();
    let reconfs = trace_lines("nvEncReconfigureEncoder").len();
    let (mut h, seen) = qp_stats_harness(element, &[("rc-mode", "constqp"), ("qp-const", "40")]);
    push_clip(&mut h, &source[..8], 0, None);
    h.element().unwrap().set_property_from_str("qp-const", "24");
    push_clip(&mut h, &source[8..], 8, None);
    let out = finish(&mut h);
    assert_eq!(out.len(), 16);
    let a = live_change_without_idr(element, "const-qp", &out, inits, reconfs);
    assert_eq!(
        a["reInitEncodeParams.encodeConfig.rcParams.constQP.qpInterP"], 24,
        "{a}"
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 16, "{seen:?}");
    let qp: Vec<u32> = seen.iter().map(|s| s.1).collect();
    assert!(qp[..8].iter().all(|&q| q == 40), "{seen:?}");
    assert!(qp[8..].iter().all(|&q| q == 24), "{seen:?}");
}
