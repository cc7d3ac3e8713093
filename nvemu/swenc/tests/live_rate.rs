//! Live rate changes (`SwEncoder::set_rate_control`) without a new sequence, and encoder
//! open/close cycles without leaking (issue 10, item 5).

mod common;
use common::*;
use nvemu_swenc::*;

/// Encodes `n` frames of the moving gradient from `start`, all `PicKind::Auto`; returns the
/// packets that came out.
fn run(enc: &mut SwEncoder, start: usize, n: usize) -> Vec<Packet> {
    let (w, h) = (enc.config().width, enc.config().height);
    let mut out = Vec::new();
    for t in start..start + n {
        let g = gradient(w as usize, h as usize, t, 8);
        let data = g.nv12(w as usize, h as usize);
        enc.send(
            InputFormat::Nv12,
            &data,
            w as usize,
            h,
            t as i64,
            PicKind::Auto,
        )
        .unwrap();
        while let Some(p) = enc.receive().unwrap() {
            out.push(p);
        }
    }
    out
}

/// H.264 at 320x240; H.265 at 640x480, where the level x265 chooses (3, from the picture
/// size) holds every rate of these tests, so a live change keeps it (see `swenc_set_rate`).
fn cbr(codec: Codec, bps: u32, b: u32) -> Config {
    let (w, h) = if codec == Codec::Hevc {
        (640, 480)
    } else {
        (320, 240)
    };
    let mut c = cfg(codec, w, h);
    c.b_frames = b;
    c.gop_length = None;
    c.rc = RateControl::Cbr {
        bps,
        vbv_bits: bps / 2,
    };
    c
}

/// Mean bytes per packet of the packets with pts in `range`.
fn mean_bytes(p: &[Packet], range: std::ops::Range<i64>) -> f64 {
    let v: Vec<usize> = p
        .iter()
        .filter(|p| range.contains(&p.pts))
        .map(|p| p.data.len())
        .collect();
    v.iter().sum::<usize>() as f64 / v.len().max(1) as f64
}

/// A CBR rate change (and a frame-rate change, which changes the bits per frame) goes on in
/// the same sequence: no IDR after the first frame, and the packets follow the new rate.
fn live_rate_case(codec: Codec, b: u32) {
    // H.265 at 640x480 needs more bits than H.264 at 320x240 for the low rate to be reachable.
    let (hi, lo) = if codec == Codec::Hevc {
        (4_000_000, 1_000_000)
    } else {
        (2_000_000, 250_000)
    };
    let mut enc = SwEncoder::new(&cbr(codec, hi, b)).unwrap();
    let mut pk = run(&mut enc, 0, 60);
    let rc = RateControl::Cbr {
        bps: lo,
        vbv_bits: lo / 2,
    };
    assert!(
        enc.set_rate(&rc, 30, 1).unwrap(),
        "{codec:?}: live change refused"
    );
    pk.extend(run(&mut enc, 60, 60));
    // Same bitrate, frame rate doubled: half the bits per frame.
    assert!(enc.set_rate(&rc, 60, 1).unwrap());
    pk.extend(run(&mut enc, 120, 60));
    pk.extend(enc.drain().unwrap());
    assert_eq!(pk.len(), 180);
    let idr: Vec<i64> = pk.iter().filter(|p| p.key).map(|p| p.pts).collect();
    assert_eq!(idr, vec![0], "{codec:?}: key frames {idr:?}");
    let a = mean_bytes(&pk, 20..60);
    let b2 = mean_bytes(&pk, 80..120);
    let c = mean_bytes(&pk, 140..180);
    eprintln!("{codec:?} b={b}: {a:.0} -> {b2:.0} -> {c:.0} bytes/frame");
    // Expected: (H.264) 8333 -> 1042 -> 521 bytes per frame, (H.265) 16667 -> 4167 -> 2083.
    let want = |bps: f64, fps: f64| bps / 8.0 / fps;
    for (got, exp) in [
        (a, want(hi as f64, 30.0)),
        (b2, want(lo as f64, 30.0)),
        (c, want(lo as f64, 60.0)),
    ] {
        assert!(
            got > exp * 0.5 && got < exp * 1.6,
            "{codec:?}: {got:.0} bytes per frame, {exp:.0} expected"
        );
    }
}

#[test]
fn h264_live_rate_without_idr() {
    live_rate_case(Codec::H264, 0);
}

#[test]
fn h264_bframes_live_rate_without_idr() {
    live_rate_case(Codec::H264, 2);
}

#[test]
fn hevc_live_rate_without_idr() {
    live_rate_case(Codec::Hevc, 2);
}

/// Open, encode a few frames, drain and drop, many times (run under valgrind for the leak
/// report; here it only must not fail).
#[test]
fn open_close_cycles() {
    for codec in [Codec::Hevc, Codec::H264] {
        for i in 0..4 {
            let mut enc = SwEncoder::new(&cbr(codec, 500_000, 2)).unwrap();
            let _ = enc.sequence_header().unwrap();
            let mut pk = run(&mut enc, 0, 5);
            pk.extend(enc.drain().unwrap());
            assert_eq!(pk.len(), 5, "{codec:?} cycle {i}");
        }
    }
}

/// Mean reported QP of the packets with pts in `range`.
fn mean_qp(p: &[Packet], range: std::ops::Range<i64>) -> f64 {
    let v: Vec<f64> = p
        .iter()
        .filter(|p| range.contains(&p.pts))
        .map(|p| p.avg_qp.expect("the encoder reports a QP") as f64)
        .collect();
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// Encodes 30 frames at `first`, changes to `second` live (must be accepted), 30 more; returns
/// every packet after asserting one sequence (no key frame after the first).
fn live_quality(codec: Codec, b: u32, first: RateControl, second: RateControl) -> Vec<Packet> {
    let mut c = cbr(codec, 1_000_000, b);
    c.rc = first;
    let mut enc = SwEncoder::new(&c).unwrap();
    let mut pk = run(&mut enc, 0, 30);
    assert!(
        enc.set_rate_control(&second).unwrap(),
        "{codec:?}: live change {first:?} -> {second:?} refused"
    );
    assert_eq!(enc.config().rc, second);
    pk.extend(run(&mut enc, 30, 30));
    pk.extend(enc.drain().unwrap());
    assert_eq!(pk.len(), 60);
    let idr: Vec<i64> = pk.iter().filter(|p| p.key).map(|p| p.pts).collect();
    assert_eq!(idr, vec![0], "{codec:?}: key frames {idr:?}");
    pk
}

fn const_qp(q: u32) -> RateControl {
    RateControl::ConstQp { i: q, p: q, b: q }
}

fn target_quality(q: f32) -> RateControl {
    RateControl::Vbr {
        avg_bps: 0,
        max_bps: 0,
        vbv_bits: 0,
        target_quality: Some(q),
    }
}

/// libx265: a new constant QP goes on in the same sequence, every picture at the new QP
/// (forced per picture).
#[test]
fn hevc_live_const_qp_without_idr() {
    for b in [0, 2] {
        let pk = live_quality(Codec::Hevc, b, const_qp(40), const_qp(24));
        let (before, after) = (mean_qp(&pk, 1..30), mean_qp(&pk, 30..60));
        eprintln!("Hevc b={b}: QP {before:.1} at constant QP 40, {after:.1} at 24");
        assert!((before - 40.0).abs() <= 1.0, "b={b}: QP {before:.1} at 40");
        assert!(
            pk.iter()
                .filter(|p| p.pts >= 30)
                .all(|p| p.avg_qp == Some(24)),
            "b={b}: {:?}",
            pk.iter().map(|p| (p.pts, p.avg_qp)).collect::<Vec<_>>()
        );
    }
}

/// A new target quality goes on in the same sequence and moves the QP: libx264 through its
/// live CRF reconfiguration, libx265 through a fixed QP moved by the change.
#[test]
fn live_target_quality_without_idr() {
    for codec in [Codec::H264, Codec::Hevc] {
        let pk = live_quality(codec, 0, target_quality(40.0), target_quality(20.0));
        let (before, after) = (mean_qp(&pk, 1..30), mean_qp(&pk, 31..60));
        eprintln!("{codec:?}: QP {before:.1} at target quality 40, {after:.1} at 20");
        assert!(
            after + 12.0 < before,
            "{codec:?}: QP {before:.1} then {after:.1}"
        );
    }
}

/// What the libraries cannot take live is refused (nothing changed; the emulator re-opens):
/// a new constant QP on libx264 (x264_encoder_reconfig takes no qp_constant) and libaom, a
/// new target quality on libaom.
#[test]
fn live_quality_refused_where_impossible() {
    for (codec, first, second) in [
        (Codec::H264, const_qp(30), const_qp(20)),
        (Codec::Av1, const_qp(120), const_qp(80)),
        (Codec::Av1, target_quality(40.0), target_quality(20.0)),
    ] {
        let mut c = cfg(codec, 320, 240);
        c.rc = first;
        let mut enc = SwEncoder::new(&c).unwrap();
        let _ = run(&mut enc, 0, 3);
        assert!(
            !enc.set_rate_control(&second).unwrap(),
            "{codec:?} {second:?}"
        );
        assert_eq!(enc.config().rc, first);
    }
}
