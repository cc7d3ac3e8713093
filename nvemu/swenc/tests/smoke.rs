mod common;
use common::*;
use nvemu_swenc::*;

#[test]
fn smoke_print() {
    let codec = match std::env::var("C").as_deref() { Ok("av1") => Codec::Av1, Ok("h264") => Codec::H264, _ => Codec::Hevc };
    let b: u32 = std::env::var("B").map(|v| v.parse().unwrap()).unwrap_or(2);
    let mut c = cfg(codec, 720, 406);
    c.b_frames = b;
    c.gop_length = Some(30);
    let mut enc = SwEncoder::new(&c).unwrap();
    let w = 720usize;
    let h = 406usize;
    let pic = gradient(w, h, 0, 8);
    let buf = pic.nv12(768, h);
    let mut line = String::new();
    for i in 0..12 {
        let k = if b == 0 { PicKind::Auto } else if i == 0 { PicKind::Idr } else if i % (b as i64 + 1) == 0 { PicKind::P } else { PicKind::B };
        enc.send(InputFormat::Nv12, &buf, 768, h as u32, i, k).unwrap();
        let mut got = vec![];
        while let Some(p) = enc.receive().unwrap() { got.push(p.pts); }
        line += &format!(" {i}:{got:?}");
    }
    let d = enc.drain().unwrap();
    eprintln!("{codec:?} b={b}{line} drain {:?}", d.iter().map(|p| p.pts).collect::<Vec<_>>());
}
