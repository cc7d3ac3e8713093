// SPDX-License-Identifier: MPL-2.0
//! In-process tests of the elements' stream handling with gst-check's `Harness`, on the NVENC
//! emulator: force-key-unit, the latency query, flushing, caps changes.
//!
//! `harness = false` (see Cargo.toml): `main` sets the emulator's environment
//! (`NVEMU_STRICT=abort`, `NVEMU_TRACE`) before any thread exists, then hands the cases to
//! `libtest-mimic`, which takes libtest's command line (filters, `--exact`, `--skip`, `--list`,
//! `--ignored`...) and reports like it. The cases run one at a time in the main thread (they
//! share the trace). The emulator must be first in `LD_LIBRARY_PATH` (as `scripts/test` does);
//! otherwise every case is reported ignored, with a message.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use gst::prelude::*;
use gst_check::Harness;
use libtest_mimic::{Arguments, Trial};

#[path = "element/roi.rs"]
mod roi;

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

/// The first byte of each NAL unit of an Annex B access unit.
fn annexb_nal_headers(au: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    let mut i = 0;
    while i + 3 < au.len() {
        if au[i] == 0 && au[i + 1] == 0 && au[i + 2] == 1 {
            t.push(au[i + 3]);
            i += 3;
        } else {
            i += 1;
        }
    }
    t
}

/// The NAL units of a sample of 4-byte length-prefixed NAL units (ISO/IEC 14496-15); panics
/// unless the lengths cover the sample exactly.
fn length_prefixed_nals(sample: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < sample.len() {
        let len = u32::from_be_bytes(sample[i..i + 4].try_into().unwrap()) as usize;
        assert!(i + 4 + len <= sample.len(), "NAL length past the sample");
        out.push(&sample[i + 4..i + 4 + len]);
        i += 4 + len;
    }
    out
}

/// `rsnvench264enc` into `video/x-h264,stream-format=avc` and `avc3` (no parser): the caps carry
/// a `codec_data` avcC that parses, with High profile, 4-byte lengths and the High extension;
/// every buffer is length-prefixed NAL units that cover it exactly. avc: the avcC holds one SPS
/// (which parses: 320x240) and one PPS, and no buffer has a parameter set, not even the IDR
/// forced by a force-key-unit event (which NVENC is told to give headers to). avc3: the avcC
/// has none, and both IDRs (the first and the forced one) carry SPS and PPS in band, no other
/// frame does.
fn h264_packetized(format: &str) {
    // Downstream's caps first: the session (and its stream format) is made with the input caps.
    let mut h = Harness::new("rsnvench264enc");
    h.element().unwrap().set_property_from_str("gop-size", "-1");
    h.set_sink_caps_str(&format!("video/x-h264,stream-format={format},alignment=au"));
    h.set_src_caps_str(&nv12_caps(W, H));
    push_frames(&mut h, W, H, 0..5);
    let ev = gst_video::UpstreamForceKeyUnitEvent::builder()
        .all_headers(true)
        .build();
    assert!(h.push_upstream_event(ev), "force-key-unit handled");
    push_frames(&mut h, W, H, 5..10);
    let caps = h.sinkpad().unwrap().current_caps().expect("output caps");
    let s = caps.structure(0).unwrap();
    assert_eq!(s.get::<&str>("stream-format").unwrap(), format);
    assert_eq!(s.get::<&str>("profile").unwrap(), "high");
    let cd = s.get::<gst::Buffer>("codec_data").expect("codec_data");
    let rec = gstrsnvenc::nvench26x::avcc::parse_avcc(&cd.map_readable().unwrap())
        .expect("codec_data is an avcC");
    assert_eq!((rec.profile_idc, rec.length_size), (100, 4));
    assert_eq!(rec.high, Some((1, 8, 8)));
    let out = finish(&mut h);
    assert_eq!(out.len(), 10, "frames out == frames in");
    let keys: Vec<u64> = out.iter().filter(|o| o.1).map(|o| o.0 / FRAME).collect();
    assert_eq!(keys, vec![0, 5], "keyframes");
    for (pts, key, data) in &out {
        let t: Vec<u8> = length_prefixed_nals(data)
            .iter()
            .map(|n| n[0] & 0x1f)
            .collect();
        let ps = t.iter().filter(|&&x| x == 7 || x == 8).count();
        assert_eq!(
            t.contains(&5),
            *key,
            "IDR slice iff keyframe at {pts}: {t:?}"
        );
        let want = if format == "avc3" && *key { 2 } else { 0 };
        assert_eq!(ps, want, "{format}: parameter sets at {pts}: {t:?}");
    }
    if format == "avc" {
        assert_eq!((rec.sps.len(), rec.pps.len()), (1, 1));
        let sps = gstrsnvenc::nvench26x::avcc::parse_sps(&rec.sps[0]).expect("SPS parses");
        assert_eq!((sps.width, sps.height), (W, H));
    } else {
        assert_eq!((rec.sps.len(), rec.pps.len()), (0, 0));
    }
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

/// Removes H.264/H.265 emulation prevention bytes.
fn unescape(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut zeros = 0;
    for &x in b {
        if zeros >= 2 && x == 3 {
            zeros = 0;
            continue;
        }
        out.push(x);
        zeros = if x == 0 { zeros + 1 } else { 0 };
    }
    out
}

/// Annex B NAL units of an access unit (header included, start codes not).
fn nal_units(au: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= au.len() {
        if au[i] == 0 && au[i + 1] == 0 && au[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    starts
        .iter()
        .enumerate()
        .map(|(k, &s)| {
            let mut e = starts.get(k + 1).map_or(au.len(), |n| n - 3);
            while e > s && au[e - 1] == 0 {
                e -= 1; // the zero byte of a following 4-byte start code
            }
            &au[s..e]
        })
        .collect()
}

/// SEI messages (payloadType, payload) of an H.264 (`h265 == false`) or H.265 access unit, in
/// order, with the index of the NAL unit that carries them; and the NAL types in order.
fn sei_messages(au: &[u8], h265: bool) -> (Vec<(u32, Vec<u8>)>, Vec<u8>) {
    let mut msgs = Vec::new();
    let mut types = Vec::new();
    for n in nal_units(au) {
        let (ty, hdr) = if h265 {
            ((n[0] >> 1) & 0x3f, 2)
        } else {
            (n[0] & 0x1f, 1)
        };
        types.push(ty);
        if ty != if h265 { 39 } else { 6 } {
            continue;
        }
        let r = unescape(&n[hdr..]);
        let mut i = 0;
        // sei_message()s until the rbsp trailing bits.
        while i < r.len() && !(r[i] == 0x80 && i + 1 == r.len()) {
            let mut read = || {
                let mut v = 0u32;
                while r[i] == 0xff {
                    v += 255;
                    i += 1;
                }
                v += r[i] as u32;
                i += 1;
                v
            };
            let t = read();
            let size = read() as usize;
            msgs.push((t, r[i..i + size].to_vec()));
            i += size;
        }
    }
    (msgs, types)
}

/// AV1 OBUs (type, payload) of a temporal unit.
fn av1_obus(tu: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut v = Vec::new();
    let mut i = 0;
    while i < tu.len() {
        let hdr = tu[i];
        let mut p = i + 1 + usize::from(hdr & 0x4 != 0);
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
        v.push(((hdr >> 3) & 0xf, tu[p..p + size].to_vec()));
        i = p + size;
    }
    v
}

/// AV1 metadata OBUs (metadata_type, payload without trailing bits) of a temporal unit, and the
/// OBU types in order.
fn av1_metadata(tu: &[u8]) -> (Vec<(u32, Vec<u8>)>, Vec<u8>) {
    let obus = av1_obus(tu);
    let types = obus.iter().map(|o| o.0).collect();
    let meta = obus
        .into_iter()
        .filter(|o| o.0 == 5)
        .map(|(_, p)| {
            let (t, n) = (p[0] as u32, 1); // metadata types 1..=31 are one leb128 byte
            let mut end = p.len();
            while end > n && p[end - 1] == 0 {
                end -= 1;
            }
            assert_eq!(p[end - 1], 0x80, "metadata OBU ends with trailing bits");
            (t, p[n..end - 1].to_vec())
        })
        .collect();
    (meta, types)
}

/// The `cc_data` triplets of an ATSC A/53 T.35 payload ("GA94", type 3).
fn a53_cc(t35: &[u8]) -> Option<Vec<u8>> {
    if t35.len() < 11 || t35[..8] != [0xb5, 0, 0x31, b'G', b'A', b'9', b'4', 3] {
        return None;
    }
    let n = (t35[8] & 0x1f) as usize;
    assert_eq!(t35[8] & 0x40, 0x40, "process_cc_data_flag");
    assert_eq!(t35[9], 0xff, "em_data");
    assert_eq!(t35[10 + 3 * n], 0xff, "marker bits");
    Some(t35[10..10 + 3 * n].to_vec())
}

/// The captions (cc_data) found in one output buffer of `element`, and whether the
/// caption SEI/OBU came before the first slice / frame OBU.
fn captions_in(element: &str, data: &[u8]) -> Vec<Vec<u8>> {
    match element {
        "rsnvencav1enc" => {
            let (meta, types) = av1_metadata(data);
            let first_frame = types.iter().position(|t| matches!(t, 3 | 4 | 6)).unwrap();
            let last_meta = types.iter().rposition(|t| *t == 5);
            assert!(last_meta.is_none_or(|m| m < first_frame), "OBUs {types:?}");
            meta.iter()
                .filter(|m| m.0 == 4)
                .filter_map(|m| a53_cc(&m.1))
                .collect()
        }
        _ => {
            let h265 = element == "rsnvench265enc";
            let (msgs, types) = sei_messages(data, h265);
            let sei = if h265 { 39 } else { 6 };
            let vcl = |t: &u8| if h265 { *t <= 31 } else { (1..=5).contains(t) };
            let first_slice = types.iter().position(vcl).unwrap();
            assert!(
                types
                    .iter()
                    .rposition(|t| *t == sei)
                    .is_none_or(|s| s < first_slice),
                "NAL types {types:?}"
            );
            msgs.iter()
                .filter(|m| m.0 == 4)
                .filter_map(|m| a53_cc(&m.1))
                .collect()
        }
    }
}

/// The cc_data triplets given to frame `i` (one or two triplets, different for every frame).
fn cc_for(i: u64) -> Vec<u8> {
    let b = (i as u8).wrapping_mul(7);
    let mut v = vec![0xfc, 0x80 | (b & 0x7f), 0x80 | ((b + 1) & 0x7f)];
    if i % 2 == 1 {
        v.extend_from_slice(&[0xfe, 0x41 + (i % 26) as u8, 0x42]);
    }
    v
}

/// A CEA-708 CDP carrying `cc` (no time code), as SMPTE 334-2 lays it out.
fn cdp_for(cc: &[u8], seq: u16) -> Vec<u8> {
    let n = cc.len() / 3;
    let mut c = vec![0x96, 0x69, 0, 0x3f, 0x43, (seq >> 8) as u8, seq as u8];
    c.extend_from_slice(&[0x72, 0xe0 | n as u8]);
    c.extend_from_slice(cc);
    c.extend_from_slice(&[0x74, (seq >> 8) as u8, seq as u8, 0]);
    c[2] = c.len() as u8;
    c
}

/// Pushes NV12 frames `range` with a caption meta each (CEA-708 raw; frame 3: a CDP; frame 5:
/// none; frame 6: CEA-608, which is not inserted).
fn push_frames_with_captions(h: &mut Harness, range: std::ops::Range<u64>) {
    let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Nv12, W, H)
        .build()
        .expect("video info");
    for i in range {
        let mut buf = gst::Buffer::with_size(info.size()).expect("buffer");
        {
            let b = buf.get_mut().unwrap();
            b.set_pts(FRAME * i);
            b.set_duration(FRAME);
            {
                let mut map = b.map_writable().unwrap();
                for (n, px) in map.iter_mut().enumerate() {
                    *px = ((n as u64 / 4 + i * 8) % 220 + 16) as u8;
                }
            }
            match i {
                3 => {
                    gst_video::VideoCaptionMeta::add(
                        b,
                        gst_video::VideoCaptionType::Cea708Cdp,
                        &cdp_for(&cc_for(i), i as u16),
                    );
                }
                5 => {}
                6 => {
                    gst_video::VideoCaptionMeta::add(
                        b,
                        gst_video::VideoCaptionType::Cea608Raw,
                        &[0x94, 0x20],
                    );
                }
                _ => {
                    gst_video::VideoCaptionMeta::add(
                        b,
                        gst_video::VideoCaptionType::Cea708Raw,
                        &cc_for(i),
                    );
                }
            }
        }
        assert_eq!(h.push(buf), Ok(gst::FlowSuccess::Ok), "push frame {i}");
    }
}

/// What frame `i` of [`push_frames_with_captions`] must carry in the stream.
fn expected_cc(i: u64) -> Vec<Vec<u8>> {
    match i {
        5 | 6 => vec![],
        _ => vec![cc_for(i)],
    }
}

/// One output buffer: (frame index, data, caption metas on the buffer).
type Captioned = (u64, Vec<u8>, Vec<(gst_video::VideoCaptionType, Vec<u8>)>);

/// Sends EOS and takes every buffer out: (frame index, data, caption metas on the buffer).
fn finish_with_metas(h: &mut Harness) -> Vec<Captioned> {
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
        let rt = seg.to_running_time(b.pts().unwrap()).unwrap();
        let metas = b
            .iter_meta::<gst_video::VideoCaptionMeta>()
            .map(|m| (m.caption_type(), m.data().to_vec()))
            .collect();
        out.push((rt / FRAME, b.map_readable().unwrap().to_vec(), metas));
    }
    out
}

/// The caps of a codec element's byte stream for the harness sink.
fn sink_caps_of(element: &str) -> &'static str {
    match element {
        "rsnvench265enc" => "video/x-h265,stream-format=byte-stream,alignment=au",
        "rsnvench264enc" => "video/x-h264,stream-format=byte-stream,alignment=au",
        _ => "video/x-av1,stream-format=obu-stream,alignment=tu",
    }
}

/// CEA-708 captions (raw and CDP) come out in the stream of the frame they came with, as A/53
/// T.35 SEI (H.264/H.265, before the first slice) or metadata OBUs (AV1, before the frame),
/// byte for byte, also through B-frame reordering (H.265); `insert` keeps the meta on the
/// output buffer, `insert-and-drop` removes it, `disabled` inserts nothing. FFmpeg's decoders
/// see them ("ATSC A53 Part 4 Closed Captions" side data, also AV1 through libdav1d).
fn captions_round_trip(element: &str) {
    for mode in ["insert", "insert-and-drop", "disabled"] {
        let bframes = if element == "rsnvench265enc" {
            "2"
        } else {
            "0"
        };
        let mut h = new_harness(
            element,
            &[("cc-insert", mode), ("bframes", bframes), ("gop-size", "4")],
            &nv12_caps(W, H),
            sink_caps_of(element),
        );
        push_frames_with_captions(&mut h, 0..12);
        let out = finish_with_metas(&mut h);
        assert_eq!(out.len(), 12, "{element} {mode}: frames out == frames in");
        let mut stream = Vec::new();
        for (i, data, metas) in &out {
            stream.extend_from_slice(data);
            let got = captions_in(element, data);
            let want = if mode == "disabled" {
                vec![]
            } else {
                expected_cc(*i)
            };
            assert_eq!(got, want, "{element} {mode}: captions of frame {i}");
            let inserted = |t: &gst_video::VideoCaptionType| {
                matches!(
                    t,
                    gst_video::VideoCaptionType::Cea708Raw | gst_video::VideoCaptionType::Cea708Cdp
                )
            };
            let kept: Vec<_> = metas.iter().filter(|m| inserted(&m.0)).collect();
            match (mode, *i) {
                ("insert-and-drop", _) | (_, 5 | 6) => {
                    assert!(
                        kept.is_empty(),
                        "{element} {mode}: frame {i} metas {metas:?}"
                    )
                }
                _ => assert_eq!(kept.len(), 1, "{element} {mode}: frame {i} metas {metas:?}"),
            }
            if *i == 6 {
                // CEA-608 metas are not inserted, and never dropped.
                assert_eq!(
                    metas.len(),
                    1,
                    "{element} {mode}: frame 6 keeps its 608 meta"
                );
            }
        }
        if mode == "insert" {
            let ext = match element {
                "rsnvench265enc" => "h265",
                "rsnvench264enc" => "h264",
                _ => "obu",
            };
            let file = root().join(format!("target/e2e/captions-{element}.{ext}"));
            std::fs::write(&file, &stream).unwrap();
            let mut cmd = std::process::Command::new("ffprobe");
            cmd.args(["-v", "error"]);
            if ext == "obu" {
                cmd.args(["-f", "obu"]);
            }
            let o = cmd
                .args(["-show_frames", "-select_streams", "v:0"])
                .arg(&file)
                .output()
                .expect("ffprobe");
            let text = String::from_utf8_lossy(&o.stdout);
            let frames = text.matches("[FRAME]").count();
            let cc = text
                .matches("side_data_type=ATSC A53 Part 4 Closed Captions")
                .count();
            eprint!("[{element}: ffprobe {frames} frames, {cc} with A53 captions] ");
            assert_eq!(frames, 12, "{element}: ffprobe frames");
            assert_eq!(cc, 10, "{element}: frames with A53 caption side data");
        }
    }
}

/// Through the parsers of GStreamer 1.22 (h264parse, h265parse), which turn A/53 SEI back into
/// caption metas: with `insert-and-drop`, the only caption meta after the parser is the one it
/// read from the stream, equal to what went in.
fn captions_through_parser(element: &str, parser: &str) {
    let mut h = Harness::new_parse(&format!(
        "{element} cc-insert=insert-and-drop bframes=0 ! {parser}"
    ));
    h.set_src_caps_str(&nv12_caps(W, H));
    h.set_sink_caps_str(&format!(
        "{},stream-format=byte-stream,alignment=au",
        sink_caps_of(element).split(',').next().unwrap()
    ));
    push_frames_with_captions(&mut h, 0..8);
    let out = finish_with_metas(&mut h);
    assert_eq!(out.len(), 8, "{element} ! {parser}: frames");
    for (i, _, metas) in &out {
        let got: Vec<Vec<u8>> = metas
            .iter()
            .filter(|m| m.0 == gst_video::VideoCaptionType::Cea708Raw)
            .map(|m| m.1.clone())
            .collect();
        assert_eq!(
            got,
            expected_cc(*i),
            "{element} ! {parser}: frame {i} metas {metas:?}"
        );
    }
}

/// The UUID of the tests' unregistered user data (a random version 4 UUID).
const TEST_UUID: [u8; 16] = [
    0x5e, 0x1d, 0x2c, 0x88, 0x6f, 0x3a, 0x4b, 0x21, 0x9c, 0x07, 0x42, 0xd5, 0x18, 0xa3, 0x6e, 0x90,
];

/// The user data frame `i` carries: on frames 1, 4 and 5 only.
fn user_data_for(i: u64) -> Option<Vec<u8>> {
    matches!(i, 1 | 4 | 5).then(|| format!("rsnvenc user data, frame {i}").into_bytes())
}

/// The time code frame `i` carries: 10:20:30:05 plus `i` frames at 25 fps.
fn time_code_for(i: u64) -> gst_video::ValidVideoTimeCode {
    let tc = gst_video::VideoTimeCode::new(
        gst::Fraction::new(25, 1),
        None,
        gst_video::VideoTimeCodeFlags::empty(),
        10,
        20,
        30,
        5 + i as u32,
        0,
    );
    tc.try_into().expect("valid time code")
}

/// Pushes NV12 frames `range` with the metadata pipelines carry: a
/// `GstVideoSEIUserDataUnregisteredMeta` ([`user_data_for`]) and a `GstVideoTimeCodeMeta`
/// ([`time_code_for`]).
fn push_frames_with_carried_metas(h: &mut Harness, range: std::ops::Range<u64>) {
    let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Nv12, W, H)
        .build()
        .expect("video info");
    for i in range {
        let mut buf = gst::Buffer::with_size(info.size()).expect("buffer");
        {
            let b = buf.get_mut().unwrap();
            b.set_pts(FRAME * i);
            b.set_duration(FRAME);
            {
                let mut map = b.map_writable().unwrap();
                for (n, px) in map.iter_mut().enumerate() {
                    *px = ((n as u64 / 4 + i * 8) % 220 + 16) as u8;
                }
            }
            if let Some(d) = user_data_for(i) {
                gst_video::video_meta::VideoSeiUserDataUnregisteredMeta::add(b, &TEST_UUID, &d);
            }
            gst_video::VideoTimeCodeMeta::add(b, &time_code_for(i));
        }
        assert_eq!(h.push(buf), Ok(gst::FlowSuccess::Ok), "push frame {i}");
    }
}

/// `GstVideoSEIUserDataUnregisteredMeta` (H.264, H.265) comes out as SEI
/// `user_data_unregistered` (payloadType 5: the UUID, then the data) in the access unit of the
/// frame that carried it and no other, also through B-frame reordering (H.265);
/// `GstVideoTimeCodeMeta` as a `time_code` SEI (type 136, H.265) or a `metadata_timecode` OBU
/// (type 5, AV1) on every frame, whose fields (read here bit by bit) are the frame's time code.
/// H.264 time codes go through NVENC's `enableTimeCode` (picture timing SEI, payloadType 1,
/// never in the payload array: [`h264_time_codes`]). FFmpeg reads the
/// user data ("User Data Unregistered" side data) and the H.265 time codes back.
fn carried_metadata_round_trip(element: &str) {
    let h265 = element == "rsnvench265enc";
    let bframes = if h265 { "2" } else { "0" };
    let mut h = new_harness(
        element,
        &[("bframes", bframes), ("gop-size", "4")],
        &nv12_caps(W, H),
        sink_caps_of(element),
    );
    push_frames_with_carried_metas(&mut h, 0..8);
    let out = finish(&mut h);
    assert_eq!(out.len(), 8, "{element}: frames out == frames in");
    let mut stream = Vec::new();
    for (rt, _, data) in &out {
        let i = *rt / FRAME;
        stream.extend_from_slice(data);
        let msgs = if element == "rsnvencav1enc" {
            av1_metadata(data).0
        } else {
            sei_messages(data, h265).0
        };
        let ours: Vec<Vec<u8>> = msgs
            .iter()
            .filter(|(t, b)| *t == 5 && element != "rsnvencav1enc" && b.starts_with(&TEST_UUID))
            .map(|(_, b)| b[16..].to_vec())
            .collect();
        let want: Vec<Vec<u8>> = if element == "rsnvencav1enc" {
            vec![]
        } else {
            user_data_for(i).into_iter().collect()
        };
        assert_eq!(ours, want, "{element}: user data of frame {i}");
        let tc_type = if h265 { 136 } else { 5 };
        let tcs: Vec<&Vec<u8>> = msgs
            .iter()
            .filter(|(t, _)| *t == tc_type && (h265 || element == "rsnvencav1enc"))
            .map(|(_, b)| b)
            .collect();
        if element == "rsnvench264enc" {
            assert!(tcs.is_empty(), "{element}: no time code");
            continue;
        }
        assert_eq!(tcs.len(), 1, "{element}: one time code on frame {i}");
        // Both syntaxes: [num_clock_ts u(2), clock_timestamp_flag, units_field_based_flag]
        // (H.265 only), counting_type u(5), full_timestamp_flag, discontinuity_flag,
        // cnt_dropped_flag, n_frames u(9), seconds u(6), minutes u(6), hours u(5).
        let bits: Vec<u32> = tcs[0]
            .iter()
            .flat_map(|b| (0..8).rev().map(move |k| u32::from((b >> k) & 1)))
            .collect();
        let mut pos = if h265 { 4 } else { 0 };
        let mut field = |n: usize| {
            let v = bits[pos..pos + n].iter().fold(0, |a, b| (a << 1) | b);
            pos += n;
            v
        };
        if h265 {
            assert_eq!(
                bits[..4],
                [0, 1, 1, 0],
                "num_clock_ts 1, clock_timestamp_flag 1"
            );
        }
        let fields: Vec<u32> = [5, 1, 1, 1, 9, 6, 6, 5].iter().map(|&n| field(n)).collect();
        let tc = time_code_for(i);
        assert_eq!(
            fields,
            [
                0,
                1,
                0,
                0,
                tc.frames(),
                tc.seconds(),
                tc.minutes(),
                tc.hours()
            ],
            "{element}: time code of frame {i}"
        );
    }
    if element == "rsnvencav1enc" {
        return;
    }
    let file = root().join(format!(
        "target/e2e/carried-{element}.{}",
        if h265 { "h265" } else { "h264" }
    ));
    std::fs::write(&file, &stream).unwrap();
    let o = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_frames", "-select_streams", "v:0"])
        .arg(&file)
        .output()
        .expect("ffprobe");
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        text.matches("[FRAME]").count(),
        8,
        "{element}: ffprobe frames"
    );
    let udu = text
        .matches("side_data_type=H.26[45] User Data Unregistered SEI message")
        .count();
    assert!(
        udu >= 3,
        "{element}: frames with user data side data: {udu}"
    );
    if h265 {
        for i in 0..8 {
            let tc = time_code_for(i);
            let want = format!(
                "TAG:timecode={:02}:{:02}:{:02}:{:02}",
                tc.hours(),
                tc.minutes(),
                tc.seconds(),
                tc.frames()
            );
            assert!(
                text.contains(&want),
                "{element}: FFmpeg reads {want}: {text}"
            );
        }
    }
}

/// Through GStreamer 1.22's parsers: `h265parse` turns the `time_code` SEI back into a
/// `GstVideoTimeCodeMeta` with the input's hours, minutes and seconds (frames halved by
/// 1.22's h265parse, a bug fixed in 1.24: see below), `h264parse` the user data SEI back into a
/// `GstVideoSEIUserDataUnregisteredMeta` with the same UUID and data (1.22's h265parse does
/// not parse user data SEI yet). The parser gets the encoder's bytes in new buffers, without
/// the metas the encoder copied from its input (as GstVideoEncoder does by default), so what
/// it reports is what it read from the stream.
fn carried_metadata_through_parser(element: &str, parser: &str) {
    let mut enc = new_harness(
        element,
        &[("bframes", "0")],
        &nv12_caps(W, H),
        sink_caps_of(element),
    );
    push_frames_with_carried_metas(&mut enc, 0..6);
    let coded = finish(&mut enc);
    assert_eq!(coded.len(), 6, "{element}: frames");
    let mut h = Harness::new(parser);
    // What the encoder's caps say too (h265parse scales time codes by the frame rate).
    h.set_src_caps_str(&format!(
        "{},width={W},height={H},framerate=25/1",
        sink_caps_of(element)
    ));
    h.set_sink_caps_str(sink_caps_of(element));
    for (rt, key, data) in &coded {
        let mut b = gst::Buffer::from_slice(data.clone());
        {
            let b = b.get_mut().unwrap();
            b.set_pts(*rt);
            b.set_duration(FRAME);
            if !key {
                b.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
        }
        assert_eq!(h.push(b), Ok(gst::FlowSuccess::Ok), "{parser}: push");
    }
    assert!(h.push_event(gst::event::Eos::new()), "EOS");
    let mut n = 0;
    while let Some(b) = h.try_pull() {
        let i = n;
        n += 1;
        if parser == "h265parse" {
            let m = b
                .meta::<gst_video::VideoTimeCodeMeta>()
                .unwrap_or_else(|| panic!("{parser}: no time code meta on frame {i}"));
            let (got, want) = (m.tc(), time_code_for(i));
            // Our time_code SEI: units_field_based_flag 0, n_frames = the frame count, with
            // the VUI tick one frame (vui_num_units_in_tick 1, vui_time_scale 25,
            // field_seq_flag 0). H.265 D-26 gives nFrames x vui_num_units_in_tick x
            // (1 + units_field_based_flag) / vui_time_scale = n_frames / 25 s: n_frames
            // frames, as written and as FFmpeg reads it (carried_metadata_round_trip).
            // GStreamer 1.22's h265parse divides n_frames by (2 - units_field_based_flag)
            // whatever the VUI says (gsth265parse.c of 1.22.0, lines 3023-3025, the rule
            // of H.264's h264parse, where a tick is half a frame): 5 -> 2, 10 -> 5. A bug,
            // fixed upstream by "h264parse, h265parse: Fix timecode parsing" (2c4cb82afc,
            // first in 1.23.1/1.24.0, not in 1.22.x), which scales by the VUI timing:
            // there it reads n_frames exactly. See docs/verified.md.
            let frames = if gst::version() < (1, 23, 1, 0) {
                want.frames() / 2
            } else {
                want.frames()
            };
            assert_eq!(
                (got.hours(), got.minutes(), got.seconds(), got.frames()),
                (want.hours(), want.minutes(), want.seconds(), frames),
                "{parser}: time code of frame {i} (GStreamer {:?})",
                gst::version()
            );
        } else {
            let got: Vec<([u8; 16], Vec<u8>)> = b
                .iter_meta::<gst_video::video_meta::VideoSeiUserDataUnregisteredMeta>()
                .map(|m| (m.uuid(), m.data().to_vec()))
                .filter(|(u, _)| *u == TEST_UUID)
                .collect();
            let want: Vec<([u8; 16], Vec<u8>)> = user_data_for(i)
                .map(|d| (TEST_UUID, d))
                .into_iter()
                .collect();
            assert_eq!(got, want, "{parser}: user data of frame {i}");
        }
    }
    assert_eq!(n, 6, "{element} ! {parser}: frames");
}

/// An H.264 time code case: the frame rate of the input caps and the time code of frame `i`
/// (`None`: the frame carries none).
struct TcCase {
    name: &'static str,
    fps: (i32, i32),
    first: (u32, u32, u32, u32),
    drop_frame: bool,
    /// Frames that carry no time code.
    without: &'static [u64],
}

/// Progressive 25 fps from 10:20:30:05, frame 3 without a time code (NVENC's
/// `skipClockTimestampInsertion`); 29.97 fps drop-frame across a minute that drops frames 0
/// and 1 (10:00:59;28, 10:00:59;29, 10:01:00;02, ...).
static TC_CASES: [TcCase; 2] = [
    TcCase {
        name: "25",
        fps: (25, 1),
        first: (10, 20, 30, 5),
        drop_frame: false,
        without: &[3],
    },
    TcCase {
        name: "2997df",
        fps: (30000, 1001),
        first: (10, 0, 59, 28),
        drop_frame: true,
        without: &[],
    },
];

impl TcCase {
    fn time_code(&self, i: u64) -> Option<gst_video::ValidVideoTimeCode> {
        if self.without.contains(&i) {
            return None;
        }
        let flags = if self.drop_frame {
            gst_video::VideoTimeCodeFlags::DROP_FRAME
        } else {
            gst_video::VideoTimeCodeFlags::empty()
        };
        let (h, m, s, f) = self.first;
        let tc = gst_video::VideoTimeCode::new(
            gst::Fraction::new(self.fps.0, self.fps.1),
            None,
            flags,
            h,
            m,
            s,
            f,
            0,
        );
        let mut tc: gst_video::ValidVideoTimeCode = tc.try_into().expect("valid time code");
        for _ in 0..i {
            tc.increment_frame();
        }
        Some(tc)
    }

    fn caps(&self) -> String {
        format!(
            "video/x-raw,format=NV12,width={W},height={H},framerate={}/{}",
            self.fps.0, self.fps.1
        )
    }

    fn frame(&self) -> gst::ClockTime {
        gst::ClockTime::SECOND
            .mul_div_floor(self.fps.1 as u64, self.fps.0 as u64)
            .unwrap()
    }
}

/// Encodes 8 NV12 frames of `c` with `rsnvench264enc`, each with its time code meta.
fn encode_time_codes(c: &TcCase) -> Vec<(gst::ClockTime, bool, Vec<u8>)> {
    let mut h = new_harness(
        "rsnvench264enc",
        &[("gop-size", "4")],
        &c.caps(),
        sink_caps_of("rsnvench264enc"),
    );
    let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Nv12, W, H)
        .build()
        .expect("video info");
    for i in 0..8u64 {
        let mut buf = gst::Buffer::with_size(info.size()).expect("buffer");
        {
            let b = buf.get_mut().unwrap();
            b.set_pts(c.frame() * i);
            b.set_duration(c.frame());
            {
                let mut map = b.map_writable().unwrap();
                for (n, px) in map.iter_mut().enumerate() {
                    *px = ((n as u64 / 4 + i * 8) % 220 + 16) as u8;
                }
            }
            if let Some(tc) = c.time_code(i) {
                gst_video::VideoTimeCodeMeta::add(b, &tc);
            }
        }
        assert_eq!(h.push(buf), Ok(gst::FlowSuccess::Ok), "push frame {i}");
    }
    let out = finish(&mut h);
    assert_eq!(out.len(), 8, "{}: frames out", c.name);
    out
}

/// Reads `n` bits MSB first from `bits` at `*pos`.
fn read_bits(bits: &[u8], pos: &mut usize, n: usize) -> u64 {
    let mut v = 0;
    for _ in 0..n {
        v = (v << 1) | u64::from((bits[*pos / 8] >> (7 - *pos % 8)) & 1);
        *pos += 1;
    }
    v
}

/// H.264 time codes (`GstVideoTimeCodeMeta`) through NVENC's own path: the session is
/// initialised with `enableTimeCode` 1 (the first buffer carries a time code), every picture
/// passes `timeCode` (FRAME, the frame's values, `countingType` 0; none, with
/// `skipClockTimestampInsertion` 1, where the frame has no time code), and every access unit
/// carries one picture timing SEI (no HRD: `pic_struct` first) whose clock timestamp is the
/// frame's time code, bit by bit. Read back by GStreamer 1.22's `h264parse` (a
/// `GstVideoTimeCodeMeta` with the values; `n_frames` / (2 - `nuit_field_based_flag` 1)) and
/// FFmpeg 5.1 (`timecode` tag and "SMPTE 12-1 timecode" side data). Drop-frame: the values
/// come back exactly, as a non-drop time code, because NVENC's 1-bit `countingType` cannot ask
/// for `counting_type` 4 (see `pipemeta`): both readers flag drop-frame only on
/// `counting_type` 4 (h264parse) or 2..=6 with `cnt_dropped_flag` (FFmpeg).
fn h264_time_codes(c: &TcCase) {
    let before = trace_lines("nvEncEncodePicture").len();
    let inits_before = trace_lines("nvEncInitializeEncoder").len();
    let out = encode_time_codes(c);
    let inits = trace_lines("nvEncInitializeEncoder");
    let last = inits[inits_before..].last().expect("a session");
    let key = last["args"]
        .as_object()
        .unwrap()
        .keys()
        .find(|k| k.ends_with("h264Config.enableTimeCode"))
        .cloned()
        .expect("enableTimeCode traced");
    assert_eq!(last["args"][&key], 1, "{}: enableTimeCode", c.name);
    let pics: Vec<serde_json::Value> = trace_lines("nvEncEncodePicture")[before..]
        .iter()
        .filter(|l| l["args"]["encodePicFlags"].as_u64().unwrap_or(0) & 0x8 == 0)
        .cloned()
        .collect();
    // The pictures of the last session (a first one, opened at the caps, may have been replaced
    // before any picture).
    let pics = &pics[pics.len() - 8..];
    for (i, p) in pics.iter().enumerate() {
        let a = &p["args"];
        let tc = c.time_code(i as u64);
        assert_eq!(
            a["codecPicParams.h264PicParams.timeCode.skipClockTimestampInsertion"],
            u64::from(tc.is_none()),
            "{}: skip of frame {i}",
            c.name
        );
        assert_eq!(
            a["codecPicParams.h264PicParams.timeCode.displayPicStruct"],
            0
        );
        let ts = &a["codecPicParams.h264PicParams.timeCode.clockTimestamp"][0];
        let want = tc.map_or([0; 4], |t| {
            [t.frames(), t.seconds(), t.minutes(), t.hours()]
        });
        let got = ["nFrames", "secondsValue", "minutesValue", "hoursValue"]
            .map(|f| ts[f].as_u64().unwrap() as u32);
        assert_eq!(
            got, want,
            "{}: traced clockTimestamp[0] of frame {i}",
            c.name
        );
        assert_eq!(ts["countingType"], 0);
        assert_eq!(ts["cntDroppedFrames"], 0);
    }
    let mut stream = Vec::new();
    for (rt, _, data) in &out {
        let i = (rt.nseconds() as f64 / c.frame().nseconds() as f64).round() as u64;
        stream.extend_from_slice(data);
        let timings: Vec<Vec<u8>> = sei_messages(data, false)
            .0
            .into_iter()
            .filter(|(t, _)| *t == 1)
            .map(|(_, b)| b)
            .collect();
        assert_eq!(
            timings.len(),
            1,
            "{}: one picture timing SEI on frame {i}",
            c.name
        );
        let b = &timings[0];
        let mut pos = 0;
        assert_eq!(read_bits(b, &mut pos, 4), 0, "pic_struct: frame");
        let flag = read_bits(b, &mut pos, 1);
        let Some(tc) = c.time_code(i) else {
            assert_eq!(flag, 0, "{}: no clock timestamp on frame {i}", c.name);
            assert_eq!(b.as_slice(), [0x04], "pic_struct 0, flag 0, alignment");
            continue;
        };
        assert_eq!(flag, 1, "{}: clock_timestamp_flag of frame {i}", c.name);
        // ct_type, nuit_field_based_flag, counting_type, full_timestamp_flag,
        // discontinuity_flag, cnt_dropped_flag, n_frames, seconds, minutes, hours,
        // time_offset (time_offset_length 24: no HRD).
        let fields: Vec<u64> = [2, 1, 5, 1, 1, 1, 8, 6, 6, 5, 24]
            .iter()
            .map(|&n| read_bits(b, &mut pos, n))
            .collect();
        assert_eq!(
            fields,
            [
                0,
                1,
                0,
                1,
                0,
                0,
                tc.frames().into(),
                tc.seconds().into(),
                tc.minutes().into(),
                tc.hours().into(),
                0
            ],
            "{}: clock timestamp of frame {i}",
            c.name
        );
        assert_eq!(pos, 65);
        assert_eq!(b.len(), 9, "65 bits, then 1 and six 0 bits");
        assert_eq!(b[8], 0x40, "alignment bits");
    }

    // GStreamer 1.22's h264parse: new buffers without the encoder's copied metas.
    let mut h = Harness::new("h264parse");
    h.set_src_caps_str(&format!(
        "{},width={W},height={H},framerate={}/{}",
        sink_caps_of("rsnvench264enc"),
        c.fps.0,
        c.fps.1
    ));
    h.set_sink_caps_str(sink_caps_of("rsnvench264enc"));
    for (rt, key, data) in &out {
        let mut b = gst::Buffer::from_slice(data.clone());
        {
            let b = b.get_mut().unwrap();
            b.set_pts(*rt);
            b.set_duration(c.frame());
            if !key {
                b.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
        }
        assert_eq!(h.push(b), Ok(gst::FlowSuccess::Ok), "h264parse: push");
    }
    assert!(h.push_event(gst::event::Eos::new()), "EOS");
    let mut n = 0u64;
    while let Some(b) = h.try_pull() {
        let i = n;
        n += 1;
        let got = b.meta::<gst_video::VideoTimeCodeMeta>().map(|m| {
            let t = m.tc();
            (t.hours(), t.minutes(), t.seconds(), t.frames(), t.flags())
        });
        let want = c.time_code(i).map(|t| {
            (
                t.hours(),
                t.minutes(),
                t.seconds(),
                t.frames(),
                // Not DROP_FRAME: counting_type 0 (see above).
                gst_video::VideoTimeCodeFlags::empty(),
            )
        });
        assert_eq!(got, want, "{}: h264parse's time code of frame {i}", c.name);
    }
    assert_eq!(n, 8, "h264parse frames");

    // FFmpeg 5.1: the `timecode` tag of each frame with one (non-drop separator ':').
    let file = root().join(format!("target/e2e/timecode-{}.h264", c.name));
    std::fs::write(&file, &stream).unwrap();
    let o = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_frames", "-select_streams", "v:0"])
        .arg(&file)
        .output()
        .expect("ffprobe");
    let text = String::from_utf8_lossy(&o.stdout);
    let frames: Vec<&str> = text.split("[FRAME]").skip(1).collect();
    assert_eq!(frames.len(), 8, "{}: ffprobe frames", c.name);
    for (i, f) in frames.iter().enumerate() {
        match c.time_code(i as u64) {
            Some(t) => {
                let want = format!(
                    "TAG:timecode={:02}:{:02}:{:02}:{:02}",
                    t.hours(),
                    t.minutes(),
                    t.seconds(),
                    t.frames()
                );
                assert!(
                    f.contains(&want),
                    "{}: FFmpeg reads {want} on frame {i}: {f}",
                    c.name
                );
                assert!(
                    f.contains("side_data_type=SMPTE 12-1 timecode"),
                    "{}: side data on frame {i}",
                    c.name
                );
            }
            None => assert!(
                !f.contains("TAG:timecode"),
                "{}: no time code on frame {i}: {f}",
                c.name
            ),
        }
    }
}

/// The child process of [`h264_time_codes_need_api_12_2`]: encodes [`TC_CASES`]`[0]` with
/// time codes; fails if any access unit has a picture timing SEI.
fn timecode_child() -> ExitCode {
    gst::init().expect("gst init");
    gstrsnvenc::plugin_register_static().expect("register rsnvenc");
    let out = encode_time_codes(&TC_CASES[0]);
    if out
        .iter()
        .any(|(_, _, d)| sei_messages(d, false).0.iter().any(|(t, _)| *t == 1))
    {
        eprintln!("a picture timing SEI under API 12.1");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Under NVENC API 12.1 (no `skipClockTimestampInsertion`; FFmpeg, too, takes the path only
/// from 12.2) H.264 time codes are not written: no session is initialised with
/// `enableTimeCode`, no picture timing SEI comes out, the frames do, and nothing violates
/// the contract.
fn h264_time_codes_need_api_12_2() {
    let trace = root().join("target/e2e/timecode-api-12.1.trace");
    let _ = std::fs::remove_file(&trace);
    let st = std::process::Command::new(std::env::current_exe().unwrap())
        .env("RSNVENC_ELEMENT_CHILD", "timecode")
        .env("NVEMU_MAX_API", "12.1")
        .env("NVEMU_TRACE", &trace)
        .env("NVEMU_STRICT", "abort")
        .status()
        .expect("child");
    assert!(st.success(), "child {st:?}");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        lines.iter().all(|l| l.get("violation").is_none()),
        "violations"
    );
    let inits: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["call"] == "nvEncInitializeEncoder")
        .collect();
    assert!(!inits.is_empty(), "sessions");
    for l in inits {
        let (k, v) = l["args"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(k, _)| k.ends_with("h264Config.enableTimeCode"))
            .expect("enableTimeCode traced");
        assert_eq!(v, 0, "{k}");
    }
}

/// The emphasis level map ([`roi::emphasis_map_where_the_gpu_has_it`]) in a child process
/// whose emulator reports `NV_ENC_CAPS_SUPPORT_EMPHASIS_LEVEL_MAP` (`NVEMU_CAPS`, read per
/// process); it appends to this process's trace (`NVEMU_TRACE` inherited) and the contract
/// holds (`NVEMU_STRICT=abort`, inherited).
fn roi_emphasis_map_where_the_gpu_has_it() {
    let st = std::process::Command::new(std::env::current_exe().unwrap())
        .env("RSNVENC_ELEMENT_CHILD", "emphasis")
        .env("NVEMU_CAPS", roi::EMPHASIS_CAPS)
        .status()
        .expect("child");
    assert!(st.success(), "child {st:?}");
}

/// HDR10 caps: mastering display and content light level go on every IDR and on no other
/// picture (SEI 137/144 before the first slice; AV1 HDR_MDCV/HDR_CLL OBUs before the frame),
/// with the caps' values in the codec's units; also across a forced key unit.
fn hdr_on_every_idr(element: &str) {
    let caps = format!(
        "{},mastering-display-info=(string)35400:14600:8500:39850:6550:2300:15635:16450:10000000:50,content-light-level=(string)1000:400",
        nv12_caps(W, H)
    );
    let mut h = new_harness(element, &[("gop-size", "5")], &caps, sink_caps_of(element));
    push_frames(&mut h, W, H, 0..7);
    let ev = gst_video::UpstreamForceKeyUnitEvent::builder().build();
    assert!(h.push_upstream_event(ev), "force-key-unit handled");
    push_frames(&mut h, W, H, 7..12);
    let out = finish(&mut h);
    assert_eq!(out.len(), 12);
    let keys: Vec<u64> = out.iter().filter(|o| o.1).map(|o| o.0 / FRAME).collect();
    // IDR every 5 frames, counted again from the forced one (frame 7).
    assert_eq!(keys, vec![0, 5, 7], "{element}: keyframes");
    let (mdcv, cll): (Vec<u8>, Vec<u8>) = if element == "rsnvencav1enc" {
        let mut m = Vec::new();
        // R, G, B, white in 0.16 fixed point; max 24.8, min 18.14 (AV1 6.7.4).
        for v in [46399u16, 19137, 11141, 52232, 8585, 3015, 20493, 21561] {
            m.extend_from_slice(&v.to_be_bytes());
        }
        m.extend_from_slice(&256_000u32.to_be_bytes());
        m.extend_from_slice(&82u32.to_be_bytes());
        (m, vec![0x03, 0xe8, 0x01, 0x90])
    } else {
        let mut m = Vec::new();
        // G, B, R, white in 0.00002; luminance in 0.0001 cd/m² (H.265 D.3.28).
        for v in [8500u16, 39850, 6550, 2300, 35400, 14600, 15635, 16450] {
            m.extend_from_slice(&v.to_be_bytes());
        }
        m.extend_from_slice(&10_000_000u32.to_be_bytes());
        m.extend_from_slice(&50u32.to_be_bytes());
        (m, vec![0x03, 0xe8, 0x01, 0x90])
    };
    for (pts, key, data) in &out {
        let msgs: Vec<(u32, Vec<u8>)> = match element {
            "rsnvencav1enc" => {
                let (m, types) = av1_metadata(data);
                if !m.is_empty() {
                    let f = types.iter().position(|t| matches!(t, 3 | 4 | 6)).unwrap();
                    assert!(
                        types.iter().rposition(|t| *t == 5).unwrap() < f,
                        "{types:?}"
                    );
                    assert!(types.iter().position(|t| *t == 1).unwrap() < f, "{types:?}");
                }
                m.into_iter()
                    .map(|(t, b)| {
                        (
                            if t == 2 {
                                137
                            } else if t == 1 {
                                144
                            } else {
                                t
                            },
                            b,
                        )
                    })
                    .collect()
            }
            _ => captions_free_sei(element, data),
        };
        let n = *pts / FRAME;
        if *key {
            assert_eq!(msgs.len(), 2, "{element}: IDR {n}: {msgs:?}");
            assert_eq!(
                msgs[0],
                (137, mdcv.clone()),
                "{element}: mastering display in IDR {n}"
            );
            assert_eq!(
                msgs[1],
                (144, cll.clone()),
                "{element}: content light level in IDR {n}"
            );
        } else {
            assert!(
                msgs.is_empty(),
                "{element}: HDR metadata in non-IDR {n}: {msgs:?}"
            );
        }
    }
}

/// The SEI messages of an H.26x access unit other than the encoder's own user data
/// unregistered (x264/x265 write their settings there), checking they precede the slices.
fn captions_free_sei(element: &str, data: &[u8]) -> Vec<(u32, Vec<u8>)> {
    let h265 = element == "rsnvench265enc";
    let (msgs, types) = sei_messages(data, h265);
    let sei = if h265 { 39 } else { 6 };
    let vcl = |t: &u8| if h265 { *t <= 31 } else { (1..=5).contains(t) };
    let first = types.iter().position(vcl).unwrap();
    assert!(
        types
            .iter()
            .rposition(|t| *t == sei)
            .is_none_or(|s| s < first),
        "SEI after a slice: {types:?}"
    );
    msgs.into_iter().filter(|m| m.0 != 5).collect()
}

/// force-key-unit from downstream: the next frame is an IDR with the sequence headers in
/// band, and NVENC was told so (FORCEIDR | OUTPUT_SPSPPS); no other frame is a keyframe.
fn force_key_unit(element: &str) {
    let sink = match element {
        "rsnvench265enc" => "video/x-h265,stream-format=byte-stream,alignment=au",
        "rsnvench264enc" => "video/x-h264,stream-format=byte-stream,alignment=au",
        _ => "video/x-av1,stream-format=obu-stream,alignment=tu",
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
    } else if element == "rsnvench264enc" {
        let t: Vec<u8> = annexb_nal_headers(forced)
            .iter()
            .map(|b| b & 0x1f)
            .collect();
        for want in [7u8, 8, 5] {
            assert!(
                t.contains(&want),
                "NAL type {want} in the forced IDR: {t:?}"
            );
        }
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

/// NV12 caps of `w`x`h` at `fps` frames per second.
fn nv12_caps_at(w: u32, h: u32, fps: i32) -> String {
    format!("video/x-raw,format=NV12,width={w},height={h},framerate={fps}/1")
}

/// A frame-rate change in the session with B-frames (25 -> 10 fps, `bframes=2`): DTS increase
/// strictly and never pass the PTS across the change (DTS from the PTS of the frame submitted
/// two before, not a reordering delay fixed at the old rate), every frame comes out, no IDR.
fn framerate_change_with_bframes(element: &str) {
    let mut h = new_harness(
        element,
        // A finite GOP: with gop-size=-1 there are no B-frames (nvcodec's semantics).
        &[("gop-size", "60"), ("bframes", "2"), ("rc-mode", "cbr")],
        &nv12_caps_at(W, H, 25),
        // H.264: a profile with B-frames (without one, downstream's caps allow constrained
        // baseline, which has none).
        if element == "rsnvench264enc" {
            "video/x-h264,stream-format=byte-stream,alignment=au,profile=high"
        } else {
            sink_caps_of(element)
        },
    );
    push_frames(&mut h, W, H, 0..8);
    h.set_src_caps_str(&nv12_caps_at(W, H, 10));
    let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Nv12, W, H)
        .build()
        .unwrap();
    // 100 ms apart from here.
    for i in 0..8u64 {
        let mut buf = gst::Buffer::with_size(info.size()).unwrap();
        {
            let b = buf.get_mut().unwrap();
            b.set_pts(FRAME * 8 + gst::ClockTime::from_mseconds(100) * i);
            b.set_duration(gst::ClockTime::from_mseconds(100));
            b.map_writable().unwrap().fill((i * 16 + 20) as u8);
        }
        assert_eq!(h.push(buf), Ok(gst::FlowSuccess::Ok));
    }
    assert!(h.push_event(gst::event::Eos::new()));
    let mut out = Vec::new();
    while let Some(b) = h.try_pull() {
        out.push((
            b.dts().expect("DTS on every buffer"),
            b.pts().expect("PTS on every buffer"),
            !b.flags().contains(gst::BufferFlags::DELTA_UNIT),
        ));
    }
    assert_eq!(out.len(), 16, "{element}: frames out == frames in");
    assert!(
        out.windows(2).all(|w| w[0].0 < w[1].0),
        "{element}: DTS not strictly increasing: {out:?}"
    );
    assert!(
        out.iter().all(|o| o.0 <= o.1),
        "{element}: DTS after PTS: {out:?}"
    );
    assert_eq!(
        out.iter().filter(|o| o.2).count(),
        1,
        "{element}: one IDR (the first): {out:?}"
    );
}

/// webrtcsink's congestion control, as a capsfilter in front of the encoder does it:
/// 1280x720 -> 960x540 -> 640x360 -> 1280x720, then 30 -> 15 -> 30 fps, mid-stream, with
/// B-frames where the codec has them. One session; one `nvEncReconfigureEncoder` per step
/// (`forceIDR` for a size, none for a frame rate); an IDR at the first frame of each size and
/// nowhere else; every frame out; ffprobe decodes every size, in order.
fn webrtc_steps(element: &str) {
    const N: u64 = 6;
    let inits = trace_lines("nvEncInitializeEncoder").len();
    let reconfs = trace_lines("nvEncReconfigureEncoder").len();
    let bframes = if element == "rsnvencav1enc" { "0" } else { "2" };
    let mut h = new_harness(
        element,
        &[
            ("gop-size", "-1"),
            ("bframes", bframes),
            ("rc-mode", "cbr"),
            ("bitrate", "2000"),
        ],
        &nv12_caps_at(1280, 720, 30),
        sink_caps_of(element),
    );
    let steps = [
        (1280, 720, 30),
        (960, 540, 30),
        (640, 360, 30),
        (1280, 720, 30),
        (1280, 720, 15),
        (1280, 720, 30),
    ];
    for (i, (w, hh, fps)) in steps.iter().enumerate() {
        if i > 0 {
            h.set_src_caps_str(&nv12_caps_at(*w, *hh, *fps));
        }
        let first = i as u64 * N;
        push_frames(&mut h, *w, *hh, first..first + N);
    }
    let out = finish(&mut h);
    assert_eq!(
        out.len() as u64,
        N * 6,
        "{element}: frames out == frames in"
    );
    let mut keys: Vec<u64> = out.iter().filter(|o| o.1).map(|o| o.0 / FRAME).collect();
    keys.sort();
    assert_eq!(
        keys,
        vec![0, N, 2 * N, 3 * N],
        "{element}: an IDR at each new size, none for a frame rate"
    );
    assert_eq!(
        trace_lines("nvEncInitializeEncoder").len() - inits,
        1,
        "{element}: one session"
    );
    let r = trace_lines("nvEncReconfigureEncoder");
    let r = &r[reconfs..];
    assert_eq!(r.len(), 5, "{element}: one reconfigure per step");
    for (rc, (w, hh, fps)) in r.iter().zip(&steps[1..]) {
        let a = &rc["args"];
        assert_eq!(rc["status"], "NV_ENC_SUCCESS", "{element}: {a}");
        assert_eq!(a["reInitEncodeParams.encodeWidth"], *w, "{element}: {a}");
        assert_eq!(a["reInitEncodeParams.encodeHeight"], *hh, "{element}: {a}");
        assert_eq!(a["reInitEncodeParams.frameRateNum"], *fps, "{element}: {a}");
        assert_eq!(
            a["reInitEncodeParams.maxEncodeWidth"], 1280,
            "{element}: {a}"
        );
        assert_eq!(a["resetEncoder"], 0, "{element}: {a}");
    }
    let force: Vec<_> = r.iter().map(|rc| rc["args"]["forceIDR"].clone()).collect();
    assert_eq!(force, [1, 1, 1, 0, 0], "{element}: forceIDR for sizes only");
    // Decode order is output order: the stream as a file, for ffprobe.
    let ext = if element == "rsnvencav1enc" {
        "obu"
    } else {
        "es"
    };
    let file = root().join(format!("target/e2e/webrtc-steps-{element}.{ext}"));
    let stream: Vec<u8> = out.iter().flat_map(|o| o.2.clone()).collect();
    std::fs::write(&file, &stream).unwrap();
    let mut cmd = std::process::Command::new("ffprobe");
    cmd.args(["-v", "error"]);
    if ext == "obu" {
        cmd.args(["-f", "obu"]);
    } else if element == "rsnvench265enc" {
        cmd.args(["-f", "hevc"]);
    } else {
        cmd.args(["-f", "h264"]);
    }
    let o = cmd
        .args(["-show_entries", "frame=width,height", "-of", "csv=p=0"])
        .arg(&file)
        .output()
        .expect("ffprobe");
    let text = String::from_utf8_lossy(&o.stdout);
    // (A frame with side data adds an empty section line, and a trailing comma.)
    let mut sizes: Vec<&str> = text
        .lines()
        .map(|l| l.trim().trim_end_matches(','))
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(
        sizes.len() as u64,
        N * 6,
        "{element}: ffprobe frames: {text}"
    );
    sizes.dedup();
    assert_eq!(
        sizes,
        ["1280,720", "960,540", "640,360", "1280,720"],
        "{element}: every size, in order"
    );
    let caps = h.sinkpad().unwrap().current_caps().expect("output caps");
    let st = caps.structure(0).unwrap();
    assert_eq!(st.get::<i32>("width").unwrap(), 1280);
    assert_eq!(
        st.get::<gst::Fraction>("framerate").unwrap(),
        gst::Fraction::new(30, 1)
    );
}

/// `max-width`/`max-height` above the first size: a caps change up to them stays in the
/// session (IDR, new size out), one beyond them opens a new session.
fn max_size_in_session() {
    let inits = trace_lines("nvEncInitializeEncoder").len();
    let reconfs = trace_lines("nvEncReconfigureEncoder").len();
    let mut h = new_harness(
        "rsnvench265enc",
        &[
            ("max-width", "640"),
            ("max-height", "480"),
            ("gop-size", "-1"),
        ],
        &nv12_caps(W, H),
        sink_caps_of("rsnvench265enc"),
    );
    push_frames(&mut h, W, H, 0..4);
    h.set_src_caps_str(&nv12_caps(640, 480));
    push_frames(&mut h, 640, 480, 4..8);
    let init = trace_lines("nvEncInitializeEncoder");
    assert_eq!(init.len() - inits, 1, "one session up to the maximum");
    assert_eq!(init[init.len() - 1]["args"]["maxEncodeWidth"], 640);
    assert_eq!(init[init.len() - 1]["args"]["maxEncodeHeight"], 480);
    h.set_src_caps_str(&nv12_caps(704, 480));
    push_frames(&mut h, 704, 480, 8..12);
    let out = finish(&mut h);
    assert_eq!(out.len(), 12, "frames out == frames in");
    let keys: Vec<u64> = out.iter().filter(|o| o.1).map(|o| o.0 / FRAME).collect();
    assert_eq!(keys, vec![0, 4, 8]);
    assert_eq!(
        trace_lines("nvEncInitializeEncoder").len() - inits,
        2,
        "a new session beyond the maximum"
    );
    let r = trace_lines("nvEncReconfigureEncoder");
    assert_eq!(r.len() - reconfs, 1, "one reconfigure: 320x240 -> 640x480");
}

/// Rate-control properties other than the bitrate changed while PLAYING: `vbv-buffer-size`,
/// `spatial-aq`, `qp-max`, `multi-pass`: one `nvEncReconfigureEncoder` each, carrying the
/// value, no new session, no IDR, every frame out. `rc-mode`: the emulated GPUs report no
/// `SUPPORT_DYN_RCMODE_CHANGE`, so it takes a new session (and an IDR). (`const-quality` and
/// `qp-const` live: `roi::frame_stats_qp_follows_const_quality`, `..._const_qp`.)
fn live_rate_control_change() {
    let inits = trace_lines("nvEncInitializeEncoder").len();
    let reconfs = trace_lines("nvEncReconfigureEncoder").len();
    let mut h = new_harness(
        "rsnvench265enc",
        &[("rc-mode", "vbr"), ("bitrate", "1000"), ("gop-size", "-1")],
        &nv12_caps(W, H),
        sink_caps_of("rsnvench265enc"),
    );
    let changes: [(&str, &str, &str, u64); 4] = [
        (
            "vbv-buffer-size",
            "500",
            "rcParams.vbvBufferSize",
            500 * 1024,
        ),
        ("spatial-aq", "true", "rcParams.enableAQ", 1),
        ("qp-max", "40", "rcParams.maxQP.qpIntra", 40),
        ("multi-pass", "two-pass-quarter", "rcParams.multiPass", 1),
    ];
    push_frames(&mut h, W, H, 0..4);
    for (i, (prop, value, ..)) in changes.iter().enumerate() {
        h.element().unwrap().set_property_from_str(prop, value);
        let first = 4 * (i as u64 + 1);
        push_frames(&mut h, W, H, first..first + 4);
    }
    assert_eq!(
        trace_lines("nvEncInitializeEncoder").len() - inits,
        1,
        "same session"
    );
    let r = trace_lines("nvEncReconfigureEncoder");
    let r = &r[reconfs..];
    assert_eq!(r.len(), changes.len(), "one reconfigure per change");
    for (rc, (prop, _, field, want)) in r.iter().zip(&changes) {
        let a = &rc["args"];
        assert_eq!(rc["status"], "NV_ENC_SUCCESS", "{prop}: {a}");
        assert_eq!((&a["resetEncoder"], &a["forceIDR"]), (&0.into(), &0.into()));
        let got = &a[format!("reInitEncodeParams.encodeConfig.{field}")];
        assert_eq!(got, want, "{prop}: {a}");
    }
    h.element().unwrap().set_property_from_str("rc-mode", "cbr");
    push_frames(&mut h, W, H, 20..24);
    let out = finish(&mut h);
    assert_eq!(out.len(), 24, "frames out == frames in");
    let keys: Vec<u64> = out.iter().filter(|o| o.1).map(|o| o.0 / FRAME).collect();
    assert_eq!(
        keys,
        vec![0, 20],
        "an IDR only for the new rc-mode's session"
    );
    assert_eq!(trace_lines("nvEncInitializeEncoder").len() - inits, 2);
}

/// `rc-mode` changed while PLAYING on a GPU that reports `SUPPORT_DYN_RCMODE_CHANGE` (a child
/// process with `NVEMU_CAPS`: the emulated GPUs report 0): VBR -> CBR -> constqp -> VBR, one
/// `nvEncReconfigureEncoder` each carrying the new `rcParams.rateControlMode`, without
/// `resetEncoder`/`forceIDR`, no new session, every frame out. (The emulator's x265 re-opens
/// on a new mode and so codes an IDR real NVENC would not: the output's key frames are not
/// asserted here; `docs/emulator-contract.md`.)
fn live_rc_mode_change_where_the_gpu_allows_it() {
    let st = std::process::Command::new(std::env::current_exe().unwrap())
        .env("RSNVENC_ELEMENT_CHILD", "rcmode")
        .env("NVEMU_CAPS", "SUPPORT_DYN_RCMODE_CHANGE=1")
        .status()
        .expect("child");
    assert!(st.success(), "child {st:?}");
}

fn rc_mode_child() {
    let inits = trace_lines("nvEncInitializeEncoder").len();
    let reconfs = trace_lines("nvEncReconfigureEncoder").len();
    let mut h = new_harness(
        "rsnvench265enc",
        &[("rc-mode", "vbr"), ("bitrate", "1000"), ("gop-size", "-1")],
        &nv12_caps(W, H),
        sink_caps_of("rsnvench265enc"),
    );
    // NV_ENC_PARAMS_RC_CBR 2, NV_ENC_PARAMS_RC_CONSTQP 0, NV_ENC_PARAMS_RC_VBR 1.
    let steps: [(&str, u64); 3] = [("cbr", 2), ("constqp", 0), ("vbr", 1)];
    push_frames(&mut h, W, H, 0..4);
    for (i, (mode, _)) in steps.iter().enumerate() {
        h.element().unwrap().set_property_from_str("rc-mode", mode);
        let first = 4 * (i as u64 + 1);
        push_frames(&mut h, W, H, first..first + 4);
    }
    let out = finish(&mut h);
    assert_eq!(out.len(), 16, "frames out == frames in");
    assert_eq!(
        trace_lines("nvEncInitializeEncoder").len() - inits,
        1,
        "one session"
    );
    let r = trace_lines("nvEncReconfigureEncoder");
    let r = &r[reconfs..];
    assert_eq!(r.len(), steps.len(), "one reconfigure per rc-mode");
    for (rc, (mode, want)) in r.iter().zip(&steps) {
        let a = &rc["args"];
        assert_eq!(rc["status"], "NV_ENC_SUCCESS", "{mode}: {a}");
        assert_eq!((&a["resetEncoder"], &a["forceIDR"]), (&0.into(), &0.into()));
        assert_eq!(
            a["reInitEncodeParams.encodeConfig.rcParams.rateControlMode"], *want,
            "{mode}: {a}"
        );
    }
}

/// The output follows live rate changes: CBR at 1600, then 800, then 2400 kbit/s (x1024),
/// 5 s (125 frames at 25 fps) each, through `bitrate` and `vbv-buffer-size` together as
/// streaming applications change them: one reconfigure per step, no IDR, and each step's
/// bitrate within 10% of its target (`tune=ultra-low-latency zerolatency=true`, as WebRTC).
fn live_bitrate_follows_target() {
    const N: u64 = 125;
    let reconfs = trace_lines("nvEncReconfigureEncoder").len();
    let mut h = new_harness(
        "rsnvench264enc",
        &[
            ("rc-mode", "cbr"),
            ("bitrate", "1600"),
            ("gop-size", "-1"),
            ("tune", "ultra-low-latency"),
            ("zerolatency", "true"),
        ],
        &nv12_caps(W, H),
        sink_caps_of("rsnvench264enc"),
    );
    let steps = [1600u32, 800, 2400];
    for (i, kbps) in steps.iter().enumerate() {
        if i > 0 {
            let e = h.element().unwrap();
            e.set_property("bitrate", *kbps);
            e.set_property("vbv-buffer-size", *kbps / 2);
        }
        let first = i as u64 * N;
        push_frames(&mut h, W, H, first..first + N);
    }
    let out = finish(&mut h);
    assert_eq!(out.len() as u64, 3 * N);
    let keys: Vec<u64> = out.iter().filter(|o| o.1).map(|o| o.0 / FRAME).collect();
    assert_eq!(keys, vec![0], "no IDR for a rate change");
    assert_eq!(
        trace_lines("nvEncReconfigureEncoder").len() - reconfs,
        2,
        "one reconfigure per step"
    );
    for (i, kbps) in steps.iter().enumerate() {
        // Without the step's first frame: the emulator's x264 (hard CBR with filler data,
        // issue 10) writes the filler its VBV buffer owes at the old rate into the first
        // picture after a rate drop, a burst NVENC's own rate control has no reason to make.
        let bits: usize = out
            .iter()
            .filter(|o| o.0 / FRAME / N == i as u64 && (i == 0 || !(o.0 / FRAME).is_multiple_of(N)))
            .map(|o| o.2.len() * 8)
            .sum();
        let frames = if i == 0 { N } else { N - 1 } as f64;
        let got = bits as f64 / (frames * FRAME.nseconds() as f64 / 1e9);
        let want = *kbps as f64 * 1024.0;
        eprint!("[{kbps} kbit/s: {:.0} kbit/s] ", got / 1024.0);
        assert!(
            (got / want - 1.0).abs() <= 0.10,
            "step {i}: {got:.0} bit/s for a target of {want} bit/s"
        );
    }
}

/// `key-unit-intra-refresh` with intra refresh on: a force-key-unit (all-headers) starts an
/// intra-refresh wave (`forceIntraRefreshWithFrameCnt` = intra-refresh-count) with the
/// parameter sets (`OUTPUT_SPSPPS`) and no IDR (no `FORCEIDR`, no IDR slice), its first
/// picture out marked a sync point (a recovery point, as x264enc marks them); without
/// all-headers no parameter sets.
fn key_unit_as_intra_refresh(element: &str) {
    let before = trace_lines("nvEncEncodePicture").len();
    let mut h = new_harness(
        element,
        &[
            ("gop-size", "-1"),
            ("key-unit-intra-refresh", "true"),
            ("intra-refresh-period", "10"),
            ("intra-refresh-count", "5"),
        ],
        &nv12_caps(W, H),
        sink_caps_of(element),
    );
    push_frames(&mut h, W, H, 0..3);
    let ev = gst_video::UpstreamForceKeyUnitEvent::builder()
        .all_headers(true)
        .build();
    assert!(h.push_upstream_event(ev), "force-key-unit handled");
    push_frames(&mut h, W, H, 3..6);
    let ev = gst_video::UpstreamForceKeyUnitEvent::builder()
        .all_headers(false)
        .build();
    assert!(h.push_upstream_event(ev), "force-key-unit handled");
    push_frames(&mut h, W, H, 6..9);
    let out = finish(&mut h);
    assert_eq!(out.len(), 9, "frames out == frames in");
    let keys: Vec<u64> = out.iter().filter(|o| o.1).map(|o| o.0 / FRAME).collect();
    assert_eq!(keys, vec![0, 3, 6], "{element}: recovery points");
    let idr_slice = |au: &[u8]| match element {
        "rsnvench264enc" => annexb_nal_headers(au).iter().any(|b| b & 0x1f == 5),
        "rsnvench265enc" => h265_nal_types(au).iter().any(|t| *t == 19 || *t == 20),
        _ => false,
    };
    assert!(
        out.iter().skip(1).all(|o| !idr_slice(&o.2)),
        "{element}: no IDR after the first"
    );
    let cpp = match element {
        "rsnvench264enc" => "h264PicParams",
        "rsnvench265enc" => "hevcPicParams",
        _ => "av1PicParams",
    };
    let pics: Vec<(u64, u64)> = trace_lines("nvEncEncodePicture")[before..]
        .iter()
        .filter(|l| l["args"]["encodePicFlags"].as_u64().unwrap_or(0) & 0x8 == 0)
        .map(|l| {
            let a = &l["args"];
            let wave = &a[format!("codecPicParams.{cpp}.forceIntraRefreshWithFrameCnt")];
            (
                a["encodePicFlags"].as_u64().unwrap(),
                wave.as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(pics.len(), 9, "{pics:?}");
    assert_eq!(
        pics[3],
        (0x4, 5),
        "{element}: a wave with headers: {pics:?}"
    );
    assert_eq!(
        pics[6],
        (0, 5),
        "{element}: a wave without headers: {pics:?}"
    );
    assert!(
        pics.iter()
            .enumerate()
            .all(|(i, p)| i == 3 || i == 6 || *p == (0, 0)),
        "{element}: {pics:?}"
    );
}

/// Runs `pipeline` to its error, which must be not-negotiated; the warnings (message and
/// details) posted before it.
fn warnings_before_error(pipeline: &str) -> Vec<String> {
    let p = gst::parse::launch(pipeline).expect("pipeline");
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
                error = Some(format!("{} {:?}", e.error(), e.debug()));
                break;
            }
            gst::MessageView::Eos(_) => break,
            _ => {}
        }
    }
    p.set_state(gst::State::Null).ok();
    let error = error.unwrap_or_else(|| panic!("{pipeline}: must fail"));
    assert!(error.contains("not-negotiated"), "{pipeline}: {error}");
    warnings
}

/// Interlaced input is refused at caps time with an error that says so and what to do, for
/// every element (not coded as progressive frames with the fields woven).
fn interlaced_input_is_refused() {
    for element in ["rsnvench264enc", "rsnvench265enc", "rsnvencav1enc"] {
        let pipeline = format!(
            "videotestsrc num-buffers=3 ! video/x-raw,format=NV12,width=320,height=240,interlace-mode=interleaved ! {element} ! fakesink"
        );
        let p = gst::parse::launch(&pipeline).expect("pipeline");
        p.set_state(gst::State::Playing).ok();
        let bus = p.bus().unwrap();
        let mut error = None;
        while let Some(msg) = bus.timed_pop(gst::ClockTime::from_seconds(20)) {
            match msg.view() {
                gst::MessageView::Error(e) => {
                    error = Some(format!("{} {:?}", e.error(), e.debug()));
                    break;
                }
                gst::MessageView::Eos(_) => break,
                _ => {}
            }
        }
        p.set_state(gst::State::Null).ok();
        let error = error.unwrap_or_else(|| panic!("{element}: interlaced input must fail"));
        assert!(
            error.contains("Interlaced input is not supported")
                && error.contains("interlace-mode=interleaved")
                && error.contains("deinterlace"),
            "{element}: {error}"
        );
    }
}

/// Input the GPU cannot take (16x16, below NVENC's 145x49): negotiation fails, and the element
/// says why in a warning that names what the GPU takes (probed at start).
fn unsupported_size_says_why() {
    let warnings = warnings_before_error(
        "videotestsrc num-buffers=3 ! video/x-raw,format=NV12,width=16,height=16 ! rsnvench265enc ! fakesink",
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("cannot take the offered input")
                && w.contains("width=(int)[ 145, 8192 ]")),
        "warnings: {warnings:?}"
    );
}

/// H.264 input that cannot negotiate: 10-bit (the emulated GPUs report no 10-bit H.264 and no
/// High 10 profile, so the probed sink caps never offer P010), and 4:4:4 where downstream takes
/// only High (the sink caps follow downstream's profiles, as nvcodec's). Each fails with a
/// warning saying why.
fn h264_input_that_cannot_negotiate_says_why() {
    let w = warnings_before_error(
        "videotestsrc num-buffers=3 ! video/x-raw,format=P010_10LE,width=320,height=240 ! rsnvench264enc ! fakesink",
    );
    let w = w
        .iter()
        .find(|w| w.contains("cannot take the offered input"))
        .unwrap_or_else(|| panic!("warnings: {w:?}"));
    let takes = w
        .split("the GPU takes")
        .nth(1)
        .expect("names what the GPU takes");
    assert!(takes.contains("NV12") && !takes.contains("P010"), "{w}");
    assert!(
        takes.contains("height=(int)[ 49, 4096 ]"),
        "H.264 size limits: {w}"
    );
    let w = warnings_before_error(
        "videotestsrc num-buffers=3 ! video/x-raw,format=Y444,width=320,height=240 ! rsnvench264enc ! video/x-h264,profile=high ! fakesink",
    );
    assert!(
        w.iter().any(|w| {
            w.contains("cannot give a profile downstream accepts")
                && w.contains("[\\\"high\\\"]")
                && !w
                    .split("the GPU takes")
                    .nth(1)
                    .unwrap_or("Y444")
                    .contains("Y444")
        }),
        "warnings: {w:?}"
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

/// Every nvcodec (1.28) property of nvh265enc / nvav1enc / nvh264enc that rsnvenc has, by
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
    // nvh264enc 1.28: the H.265 set with cabac.
    let h264_only = [
        "qp-const",
        "qp-min",
        "qp-max",
        "aud",
        "cabac",
        "repeat-sequence-header",
        "num-slices",
    ];
    for (element, extra) in [
        ("rsnvench265enc", &h265_only[..]),
        ("rsnvencav1enc", &[][..]),
        ("rsnvench264enc", &h264_only[..]),
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
            for h in h265_only.iter().chain(h264_only.iter()) {
                assert!(!names.iter().any(|n| n == h), "{element} must not have {h}");
            }
        }
        if element == "rsnvench265enc" {
            assert!(!names.iter().any(|n| n == "cabac"), "cabac is H.264 only");
        }
        assert!(
            gst::glib::subclass::signal::SignalId::lookup("frame-stats", e.type_()).is_some(),
            "{element}: frame-stats signal"
        );
        let bitrate = e.find_property("bitrate").unwrap();
        assert!(bitrate.flags().contains(gst::PARAM_FLAG_MUTABLE_PLAYING));
    }
}

/// The read-only `stats` property: pictures in and out, bytes out (the sum of the output
/// buffers, byte-stream being NVENC's bitstream as is), pictures in flight, the output rate
/// over the last second and the sessions opened.
fn stats_property() {
    let mut h = new_harness(
        "rsnvench265enc",
        &[("bframes", "2")],
        &nv12_caps(W, H),
        "video/x-h265,stream-format=byte-stream,alignment=au",
    );
    let stats = |h: &Harness| -> gst::Structure {
        h.element().unwrap().property::<gst::Structure>("stats")
    };
    let s0 = stats(&h);
    assert_eq!(s0.name(), "application/x-rsnvenc-stats");
    push_frames(&mut h, W, H, 0..10);
    let s1 = stats(&h);
    assert_eq!(s1.get::<u64>("frames-in").unwrap(), 10, "{s1}");
    let out1 = s1.get::<u64>("frames-out").unwrap();
    let in_flight = s1.get::<u32>("in-flight").unwrap() as u64;
    // What is not out yet is in NVENC (or held as a future B-frame).
    assert!(out1 + in_flight <= 10 && out1 <= 10, "{s1}");
    let out = finish(&mut h);
    let s2 = stats(&h);
    assert_eq!(s2.get::<u64>("frames-in").unwrap(), 10, "{s2}");
    assert_eq!(s2.get::<u64>("frames-out").unwrap(), 10, "{s2}");
    assert_eq!(s2.get::<u32>("in-flight").unwrap(), 0, "{s2}");
    let bytes: u64 = out.iter().map(|o| o.2.len() as u64).sum();
    assert_eq!(s2.get::<u64>("bytes-out").unwrap(), bytes, "{s2}");
    assert!(s2.get::<f64>("encoder-fps").unwrap() > 0.0, "{s2}");
    assert_eq!(s2.get::<u64>("sessions").unwrap(), 1, "{s2}");
    eprint!("[{s2}] ");
}

/// Per-picture long-term references through the `rsnvenc-ltr` upstream event: the next
/// picture carries ltrMarkFrame/ltrMarkFrameIdx (then ltrUseFrames/ltrUseFrameBitmap) in
/// NVENC's picture parameters, and frame-stats reports the mark NVENC returned.
fn ltr_event(element: &str) {
    let (pp, sink) = if element == "rsnvench265enc" {
        (
            "codecPicParams.hevcPicParams.",
            "video/x-h265,stream-format=byte-stream,alignment=au",
        )
    } else {
        (
            "codecPicParams.av1PicParams.",
            "video/x-av1,stream-format=obu-stream,alignment=tu",
        )
    };
    let before = trace_lines("nvEncEncodePicture").len();
    let mut h = new_harness(
        element,
        &[
            ("ltr-frames", "2"),
            ("gop-size", "-1"),
            ("emit-frame-stats", "true"),
        ],
        &nv12_caps(W, H),
        sink,
    );
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    {
        let seen = seen.clone();
        h.element()
            .unwrap()
            .connect("frame-stats", false, move |args| {
                let st = args[1].get::<gst::Structure>().unwrap();
                seen.lock().unwrap().push((
                    st.get::<u32>("system-frame-number").unwrap(),
                    st.get::<bool>("ltr-frame").unwrap(),
                    st.get::<u32>("ltr-frame-idx").unwrap(),
                ));
                None
            });
    }
    let ltr = |f: &str, v: u32| {
        gst::event::CustomUpstream::new(gst::Structure::builder("rsnvenc-ltr").field(f, v).build())
    };
    push_frames(&mut h, W, H, 0..3);
    assert!(h.push_upstream_event(ltr("mark-frame-idx", 1)));
    push_frames(&mut h, W, H, 3..6);
    assert!(h.push_upstream_event(ltr("use-frame-bitmap", 0b10)));
    push_frames(&mut h, W, H, 6..8);
    let out = finish(&mut h);
    assert_eq!(out.len(), 8);
    let pics: Vec<serde_json::Value> = trace_lines("nvEncEncodePicture")[before..]
        .iter()
        .filter(|l| l["args"]["encodePicFlags"].as_u64().unwrap_or(0) & 0x8 == 0)
        .map(|l| l["args"].clone())
        .collect();
    assert_eq!(pics.len(), 8, "{element}");
    let f = |i: usize, k: &str| pics[i][format!("{pp}{k}")].as_u64().unwrap_or(99);
    for i in 0..8 {
        assert_eq!(
            f(i, "ltrMarkFrame"),
            (i == 3) as u64,
            "{element} picture {i}"
        );
        assert_eq!(
            f(i, "ltrUseFrames"),
            (i == 6) as u64,
            "{element} picture {i}"
        );
    }
    assert_eq!(f(3, "ltrMarkFrameIdx"), 1);
    assert_eq!(f(6, "ltrUseFrameBitmap"), 0b10);
    let seen = seen.lock().unwrap().clone();
    let marked: Vec<(u32, bool, u32)> = seen.iter().filter(|s| s.1).copied().collect();
    assert_eq!(marked.len(), 1, "{element}: {seen:?}");
    assert_eq!(marked[0].2, 1, "{element}: {seen:?}");
}

/// The child process of [`captions_reach_nvenc_for_every_api_version`]: encodes 6 captioned
/// frames with each element, under the `NVEMU_MAX_API` and `NVEMU_TRACE` it was given.
fn captions_child() -> ExitCode {
    gst::init().expect("gst init");
    gstrsnvenc::plugin_register_static().expect("register rsnvenc");
    for element in ["rsnvench265enc", "rsnvench264enc", "rsnvencav1enc"] {
        let mut h = new_harness(element, &[], &nv12_caps(W, H), sink_caps_of(element));
        push_frames_with_captions(&mut h, 0..6);
        let out = finish_with_metas(&mut h);
        if out.len() != 6 {
            eprintln!("{element}: {} frames out", out.len());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// Captions reach NVENC as its API defines them, with the struct layouts of 12.1, 12.2 and
/// 13.0 (one child process per API, as the API is chosen once per process): the trace of every
/// picture with a caption shows `seiPayloadArrayCnt` 1 and the payload (type 4, the exact A/53
/// T.35 bytes) in `h264PicParams` / `hevcPicParams`, `obuPayloadArray` in `av1PicParams`
/// (metadata_type 4; nvcodec writes it into the HEVC member instead), in `NV_ENC_PIC_PARAMS`
/// of that API's version; frames without a CEA-708 caption pass none.
fn captions_reach_nvenc_for_every_api_version() {
    for (api, pic_ver) in [
        ("12.1", "0xf106000c"),
        ("12.2", "0xf207000c"),
        ("13.0", "0xf007000d"),
    ] {
        let trace = root().join(format!("target/e2e/captions-api-{api}.trace"));
        let _ = std::fs::remove_file(&trace);
        let st = std::process::Command::new(std::env::current_exe().unwrap())
            .env("RSNVENC_ELEMENT_CHILD", "captions")
            .env("NVEMU_MAX_API", api)
            .env("NVEMU_TRACE", &trace)
            .env("NVEMU_STRICT", "abort")
            .status()
            .expect("child");
        assert!(st.success(), "API {api}: child {st:?}");
        let lines: Vec<serde_json::Value> = std::fs::read_to_string(&trace)
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        assert!(
            lines.iter().all(|l| l.get("violation").is_none()),
            "API {api}: violations"
        );
        let mut codec_of = std::collections::HashMap::new();
        for l in lines
            .iter()
            .filter(|l| l["call"] == "nvEncInitializeEncoder")
        {
            codec_of.insert(l["session"].to_string(), l["args"]["encodeGUID"].clone());
        }
        for (guid, member, arr) in [
            ("NV_ENC_CODEC_HEVC_GUID", "hevcPicParams", "seiPayloadArray"),
            ("NV_ENC_CODEC_H264_GUID", "h264PicParams", "seiPayloadArray"),
            ("NV_ENC_CODEC_AV1_GUID", "av1PicParams", "obuPayloadArray"),
        ] {
            let pics: Vec<&serde_json::Value> = lines
                .iter()
                .filter(|l| {
                    l["call"] == "nvEncEncodePicture"
                        && codec_of.get(&l["session"].to_string()) == Some(&serde_json::json!(guid))
                        && l["args"]["encodePicFlags"].as_u64().unwrap_or(0) & 0x8 == 0
                })
                .collect();
            assert_eq!(pics.len(), 6, "API {api} {guid}");
            for l in pics {
                let a = &l["args"];
                assert_eq!(a["version"], pic_ver, "API {api} {guid}");
                let i = a["inputTimeStamp"].as_u64().unwrap();
                let cnt = &a[format!("codecPicParams.{member}.{arr}Cnt")];
                let got = &a[format!("codecPicParams.{member}.{arr}")];
                let want: Vec<serde_json::Value> = expected_cc(i)
                    .iter()
                    .map(|cc| {
                        let mut p = vec![0xb5, 0, 0x31, b'G', b'A', b'9', b'4', 3];
                        p.push(0x40 | (cc.len() / 3) as u8);
                        p.push(0xff);
                        p.extend_from_slice(cc);
                        p.push(0xff);
                        serde_json::json!({
                            "payloadType": 4,
                            "payloadSize": p.len(),
                            "payload": p.iter().map(|b| format!("{b:02x}")).collect::<String>(),
                        })
                    })
                    .collect();
                assert_eq!(cnt, want.len(), "API {api} {guid} frame {i}");
                if want.is_empty() {
                    assert_eq!(got, "0x0", "API {api} {guid} frame {i}");
                } else {
                    assert_eq!(got, &serde_json::json!(want), "API {api} {guid} frame {i}");
                }
            }
        }
        eprint!("[API {api}: 3 codecs x 6 pictures as expected] ");
    }
}

fn emulator_in_library_path(lib: &Path) -> bool {
    std::env::var_os("LD_LIBRARY_PATH").is_some_and(|p| {
        std::env::split_paths(&p).any(|d| d.canonicalize().ok() == lib.canonicalize().ok())
    })
}

/// One case: runs `f`; a panic fails it (libtest-mimic reports the message).
fn case(name: impl Into<String>, f: impl FnOnce() + Send + 'static) -> Trial {
    Trial::test(name, move || {
        f();
        Ok(())
    })
}

/// Every case, in the order they run.
fn cases() -> Vec<Trial> {
    let mut t = vec![
        case("force_key_unit_h265", || force_key_unit("rsnvench265enc")),
        case("force_key_unit_av1", || force_key_unit("rsnvencav1enc")),
        case("force_key_unit_h264", || force_key_unit("rsnvench264enc")),
        case("h264_avc", || h264_packetized("avc")),
        case("h264_avc3", || h264_packetized("avc3")),
        case("latency_h265_bframes_2", || {
            latency("rsnvench265enc", 2, FRAME * 2)
        }),
        case("latency_av1_no_reorder", || {
            latency("rsnvencav1enc", 0, gst::ClockTime::ZERO)
        }),
        case("flush_mid_stream", flush_mid_stream),
        case("caps_change", caps_change),
        case("webrtc_steps_h264", || webrtc_steps("rsnvench264enc")),
        case("webrtc_steps_h265", || webrtc_steps("rsnvench265enc")),
        case("webrtc_steps_av1", || webrtc_steps("rsnvencav1enc")),
        case("max_size_in_session", max_size_in_session),
        case("framerate_change_with_bframes_h264", || {
            framerate_change_with_bframes("rsnvench264enc")
        }),
        case("framerate_change_with_bframes_h265", || {
            framerate_change_with_bframes("rsnvench265enc")
        }),
        case("live_rate_control_change", live_rate_control_change),
        case(
            "live_rc_mode_change_where_the_gpu_allows_it",
            live_rc_mode_change_where_the_gpu_allows_it,
        ),
        case("live_bitrate_follows_target", live_bitrate_follows_target),
        case("key_unit_as_intra_refresh_h264", || {
            key_unit_as_intra_refresh("rsnvench264enc")
        }),
        case("key_unit_as_intra_refresh_h265", || {
            key_unit_as_intra_refresh("rsnvench265enc")
        }),
        case("key_unit_as_intra_refresh_av1", || {
            key_unit_as_intra_refresh("rsnvencav1enc")
        }),
        case("unsupported_size_says_why", unsupported_size_says_why),
        case("interlaced_input_is_refused", interlaced_input_is_refused),
        case(
            "h264_input_that_cannot_negotiate_says_why",
            h264_input_that_cannot_negotiate_says_why,
        ),
        case("property_names_match_nvcodec", property_names_match_nvcodec),
        case("live_bitrate_change", live_bitrate_change),
        case("live_preset_change", live_preset_change),
        case("stats_property", stats_property),
        case("ltr_event_h265", || ltr_event("rsnvench265enc")),
        case("ltr_event_av1", || ltr_event("rsnvencav1enc")),
        case("roi_improves_the_region_h264", || {
            roi::roi_improves_the_region("rsnvench264enc")
        }),
        case("roi_improves_the_region_h265", || {
            roi::roi_improves_the_region("rsnvench265enc")
        }),
        case("roi_refused_under_constqp", roi::roi_refused_under_constqp),
        case(
            "roi_emphasis_map_where_the_gpu_has_it",
            roi_emphasis_map_where_the_gpu_has_it,
        ),
        case("frame_stats_qp_follows_const_quality_h264", || {
            roi::frame_stats_qp_follows_const_quality("rsnvench264enc")
        }),
        case("frame_stats_qp_follows_const_quality_h265", || {
            roi::frame_stats_qp_follows_const_quality("rsnvench265enc")
        }),
        case(
            "frame_stats_qp_follows_const_qp_h265",
            roi::frame_stats_qp_follows_const_qp,
        ),
    ];
    for element in ["rsnvench265enc", "rsnvench264enc", "rsnvencav1enc"] {
        t.push(case(format!("captions_round_trip_{element}"), move || {
            captions_round_trip(element)
        }));
        t.push(case(format!("hdr_on_every_idr_{element}"), move || {
            hdr_on_every_idr(element)
        }));
    }
    for element in ["rsnvench265enc", "rsnvench264enc", "rsnvencav1enc"] {
        t.push(case(
            format!("carried_metadata_round_trip_{element}"),
            move || carried_metadata_round_trip(element),
        ));
    }
    for (element, parser) in [
        ("rsnvench265enc", "h265parse"),
        ("rsnvench264enc", "h264parse"),
    ] {
        t.push(case(
            format!("carried_metadata_through_{parser}"),
            move || carried_metadata_through_parser(element, parser),
        ));
    }
    for c in &TC_CASES {
        t.push(case(format!("h264_time_codes_{}", c.name), move || {
            h264_time_codes(c)
        }));
    }
    t.push(case(
        "h264_time_codes_need_api_12_2",
        h264_time_codes_need_api_12_2,
    ));
    t.push(case(
        "captions_reach_nvenc_for_every_api_version",
        captions_reach_nvenc_for_every_api_version,
    ));
    for (element, parser) in [
        ("rsnvench265enc", "h265parse"),
        ("rsnvench264enc", "h264parse"),
    ] {
        t.push(case(format!("captions_through_{parser}"), move || {
            captions_through_parser(element, parser)
        }));
    }
    // Last: the trace of every case that ran before it.
    t.push(case("no_contract_violation", no_contract_violation));
    t
}

/// No API contract violation in the trace of the cases run before.
fn no_contract_violation() {
    let bad: Vec<String> = std::fs::read_to_string(trace_path())
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("\"violation\""))
        .map(str::to_string)
        .collect();
    assert!(bad.is_empty(), "contract violations in the trace: {bad:#?}");
}

fn main() -> ExitCode {
    match std::env::var("RSNVENC_ELEMENT_CHILD").as_deref() {
        Ok("timecode") => return timecode_child(),
        Ok("rcmode") => {
            gst::init().expect("gst init");
            gstrsnvenc::plugin_register_static().expect("register rsnvenc");
            rc_mode_child();
            return ExitCode::SUCCESS;
        }
        Ok("emphasis") => {
            gst::init().expect("gst init");
            gstrsnvenc::plugin_register_static().expect("register rsnvenc");
            roi::emphasis_map_where_the_gpu_has_it();
            return ExitCode::SUCCESS;
        }
        Ok(_) => return captions_child(),
        Err(_) => {}
    }
    let mut args = Arguments::from_args();
    // The cases share one process-wide emulator trace, which some read by position (the lines
    // a case added): they run one at a time, in order, whatever --test-threads says.
    args.test_threads = Some(1);
    let lib = root().join("target/nvemu/lib");
    if !lib.join("libnvidia-encode.so.1").exists() || !emulator_in_library_path(&lib) {
        eprintln!(
            "NVENC emulator not built or not in LD_LIBRARY_PATH (run scripts/test); skipping"
        );
        let ignored = cases().into_iter().map(|t| t.with_ignored_flag(true));
        return libtest_mimic::run(&args, ignored.collect()).exit_code();
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
    libtest_mimic::run(&args, cases()).exit_code()
}
