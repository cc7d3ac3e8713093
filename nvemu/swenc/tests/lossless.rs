//! Lossless coding (`Config::lossless`, NVENC's lossless tuning): the decoded pictures are the
//! input, sample for sample.

mod common;
use common::*;
use nvemu_swenc::*;

fn lossless_case(codec: Codec, depth: u32) {
    let (w, h) = (160, 96);
    let mut c = cfg(codec, w, h);
    c.bit_depth = depth;
    c.b_frames = 2;
    c.gop_length = Some(30);
    c.lossless = true;
    c.rc = RateControl::ConstQp { i: 0, p: 0, b: 0 };
    let mut enc = SwEncoder::new(&c).unwrap();
    let (pkts, refs) = encode_gradient(&mut enc, 12, depth, |_| PicKind::Auto);
    assert_eq!(pkts.len(), 12);
    let dir = tmpdir(&format!("lossless-{codec:?}-{depth}"));
    let file = write_stream(codec, w, h, &pkts, &dir);
    let pix = if depth == 10 {
        "yuv420p10le"
    } else {
        "yuv420p"
    };
    let frames = decode(&file, pix, w as usize, h as usize);
    assert_eq!(frames.len(), 12);
    for (i, (f, r)) in frames.iter().zip(&refs).enumerate() {
        assert!(
            *f == r.reference(false),
            "{codec:?} {depth}-bit frame {i} differs from the input"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn h264_lossless_is_exact() {
    lossless_case(Codec::H264, 8);
}

#[test]
fn hevc_lossless_is_exact() {
    lossless_case(Codec::Hevc, 8);
    lossless_case(Codec::Hevc, 10);
}

#[test]
fn lossless_refusals() {
    let mut c = cfg(Codec::Av1, 160, 96);
    c.lossless = true;
    c.rc = RateControl::ConstQp { i: 0, p: 0, b: 0 };
    assert!(SwEncoder::new(&c).is_err(), "AV1");
    let mut c = cfg(Codec::H264, 160, 96);
    c.lossless = true;
    c.rc = RateControl::ConstQp { i: 0, p: 0, b: 0 };
    c.h264_profile = H264Profile::High;
    assert!(SwEncoder::new(&c).is_err(), "H.264 High");
    c.h264_profile = H264Profile::Auto;
    c.rc = RateControl::ConstQp {
        i: 20,
        p: 20,
        b: 20,
    };
    assert!(SwEncoder::new(&c).is_err(), "QP 20");
}
