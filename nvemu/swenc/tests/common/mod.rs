//! Helpers shared by the swenc tests: synthetic frames, NVENC buffer layouts, decoding with
//! the ffmpeg CLI and PSNR.
#![allow(dead_code)]

use nvemu_swenc::*;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn cfg(codec: Codec, w: u32, h: u32) -> Config {
    Config {
        codec,
        width: w,
        height: h,
        bit_depth: 8,
        chroma_444: false,
        fps_num: 30,
        fps_den: 1,
        gop_length: None,
        b_frames: 0,
        rc: RateControl::ConstQp {
            i: 20,
            p: 20,
            b: 20,
        },
        colour: None,
        repeat_headers: false,
        speed: 4,
        h264_profile: H264Profile::Auto,
        lossless: false,
        pic_struct: false,
    }
}

/// Planar 4:4:4 picture with `depth`-bit samples (u16 for both depths).
#[derive(Clone)]
pub struct Pic {
    pub w: usize,
    pub h: usize,
    pub planes: [Vec<u16>; 3],
}

/// Moving gradient with some texture, 4:4:4, `depth` bits.
pub fn gradient(w: usize, h: usize, t: usize, depth: u32) -> Pic {
    let max = (1u32 << depth) - 1;
    let mut planes = [vec![0u16; w * h], vec![0u16; w * h], vec![0u16; w * h]];
    for y in 0..h {
        for x in 0..w {
            let fx = (x + 4 * t) as f64 / w as f64;
            let fy = (y + 2 * t) as f64 / h as f64;
            let yv =
                0.15 + 0.6 * (0.5 * fx + 0.3 * fy + 0.1 * ((fx * 12.0).sin() * (fy * 9.0).cos()));
            let u = 0.5 + 0.25 * (fx * 3.0 + t as f64 * 0.1).sin();
            let v = 0.5 + 0.25 * (fy * 4.0).cos();
            let q = |f: f64| ((f.clamp(0.0, 1.0) * max as f64).round()) as u16;
            planes[0][y * w + x] = q(yv.fract().abs());
            planes[1][y * w + x] = q(u);
            planes[2][y * w + x] = q(v);
        }
    }
    Pic { w, h, planes }
}

impl Pic {
    /// Subsampled chroma (average of 2x2, edge-replicated), as a 4:2:0 reference.
    pub fn chroma420(&self, p: usize) -> Vec<u16> {
        let (cw, ch) = (self.w.div_ceil(2), self.h.div_ceil(2));
        let mut out = vec![0u16; cw * ch];
        for y in 0..ch {
            for x in 0..cw {
                let mut s = 0u32;
                for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                    let xx = (2 * x + dx).min(self.w - 1);
                    let yy = (2 * y + dy).min(self.h - 1);
                    s += self.planes[p][yy * self.w + xx] as u32;
                }
                out[y * cw + x] = ((s + 2) / 4) as u16;
            }
        }
        out
    }

    /// Reference planes as the encoder sees them.
    pub fn reference(&self, c444: bool) -> [Vec<u16>; 3] {
        if c444 {
            self.planes.clone()
        } else {
            [self.planes[0].clone(), self.chroma420(1), self.chroma420(2)]
        }
    }

    pub fn nv12(&self, pitch: usize, ha: usize) -> Vec<u8> {
        let (cw, ch) = (self.w.div_ceil(2), self.h.div_ceil(2));
        let mut b = vec![0u8; pitch * (ha + ha.div_ceil(2))];
        for y in 0..self.h {
            for x in 0..self.w {
                b[y * pitch + x] = self.planes[0][y * self.w + x] as u8;
            }
        }
        let (u, v) = (self.chroma420(1), self.chroma420(2));
        for y in 0..ch {
            for x in 0..cw {
                b[pitch * ha + y * pitch + 2 * x] = u[y * cw + x] as u8;
                b[pitch * ha + y * pitch + 2 * x + 1] = v[y * cw + x] as u8;
            }
        }
        b
    }

    /// 10-bit picture as P010 (high bits).
    pub fn p010(&self, pitch: usize, ha: usize) -> Vec<u8> {
        let (cw, ch) = (self.w.div_ceil(2), self.h.div_ceil(2));
        let mut b = vec![0u8; pitch * (ha + ha.div_ceil(2))];
        let mut put = |off: usize, v: u16| b[off..off + 2].copy_from_slice(&(v << 6).to_le_bytes());
        for y in 0..self.h {
            for x in 0..self.w {
                put(y * pitch + 2 * x, self.planes[0][y * self.w + x]);
            }
        }
        let (u, v) = (self.chroma420(1), self.chroma420(2));
        for y in 0..ch {
            for x in 0..cw {
                put(pitch * ha + y * pitch + 4 * x, u[y * cw + x]);
                put(pitch * ha + y * pitch + 4 * x + 2, v[y * cw + x]);
            }
        }
        b
    }

    /// YV12 (`yv12 == true`: Y,V,U) or IYUV (Y,U,V); chroma pitch pitch/2.
    pub fn planar420(&self, pitch: usize, ha: usize, yv12: bool) -> Vec<u8> {
        let (cw, ch) = (self.w.div_ceil(2), self.h.div_ceil(2));
        let cp = pitch / 2;
        let cha = ha.div_ceil(2);
        let mut b = vec![0u8; pitch * ha + 2 * cp * cha];
        for y in 0..self.h {
            for x in 0..self.w {
                b[y * pitch + x] = self.planes[0][y * self.w + x] as u8;
            }
        }
        let (u, v) = (self.chroma420(1), self.chroma420(2));
        let (first, second) = if yv12 { (&v, &u) } else { (&u, &v) };
        for y in 0..ch {
            for x in 0..cw {
                b[pitch * ha + y * cp + x] = first[y * cw + x] as u8;
                b[pitch * ha + cp * cha + y * cp + x] = second[y * cw + x] as u8;
            }
        }
        b
    }

    pub fn yuv444(&self, pitch: usize, ha: usize) -> Vec<u8> {
        let mut b = vec![0u8; pitch * ha * 3];
        for p in 0..3 {
            for y in 0..self.h {
                for x in 0..self.w {
                    b[p * pitch * ha + y * pitch + x] = self.planes[p][y * self.w + x] as u8;
                }
            }
        }
        b
    }

    pub fn yuv444_10(&self, pitch: usize, ha: usize) -> Vec<u8> {
        let mut b = vec![0u8; pitch * ha * 3];
        for p in 0..3 {
            for y in 0..self.h {
                for x in 0..self.w {
                    let o = p * pitch * ha + y * pitch + 2 * x;
                    b[o..o + 2]
                        .copy_from_slice(&(self.planes[p][y * self.w + x] << 6).to_le_bytes());
                }
            }
        }
        b
    }

    /// AYUV: memory order V, U, Y, A.
    pub fn ayuv(&self, pitch: usize) -> Vec<u8> {
        let mut b = vec![0u8; pitch * self.h];
        for y in 0..self.h {
            for x in 0..self.w {
                let i = y * self.w + x;
                let o = y * pitch + 4 * x;
                b[o] = self.planes[2][i] as u8;
                b[o + 1] = self.planes[1][i] as u8;
                b[o + 2] = self.planes[0][i] as u8;
                b[o + 3] = 255;
            }
        }
        b
    }
}

pub fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nvemu-swenc-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes the packets (in the order given = coded order) as a file ffmpeg can read: Annex B
/// for H.264/H.265, IVF for AV1.
pub fn write_stream(codec: Codec, w: u32, h: u32, packets: &[Packet], dir: &Path) -> PathBuf {
    let (name, mut out) = match codec {
        Codec::H264 => ("out.h264", Vec::new()),
        Codec::Hevc => ("out.hevc", Vec::new()),
        Codec::Av1 => {
            let mut hdr = Vec::new();
            hdr.extend_from_slice(b"DKIF");
            hdr.extend_from_slice(&0u16.to_le_bytes());
            hdr.extend_from_slice(&32u16.to_le_bytes());
            hdr.extend_from_slice(b"AV01");
            hdr.extend_from_slice(&(w as u16).to_le_bytes());
            hdr.extend_from_slice(&(h as u16).to_le_bytes());
            hdr.extend_from_slice(&30u32.to_le_bytes());
            hdr.extend_from_slice(&1u32.to_le_bytes());
            hdr.extend_from_slice(&(packets.len() as u32).to_le_bytes());
            hdr.extend_from_slice(&0u32.to_le_bytes());
            ("out.ivf", hdr)
        }
    };
    for (k, p) in packets.iter().enumerate() {
        if codec == Codec::Av1 {
            // AV1 packets are in presentation order: the index is the frame's timestamp
            out.extend_from_slice(&(p.data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(k as u64).to_le_bytes());
        }
        out.extend_from_slice(&p.data);
    }
    let path = dir.join(name);
    std::fs::write(&path, out).unwrap();
    path
}

pub struct Probe {
    pub width: u32,
    pub height: u32,
    pub pix_fmt: String,
    pub frames: u32,
}

pub fn ffprobe(path: &Path) -> Probe {
    let o = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
        ])
        .arg("stream=width,height,pix_fmt,nb_read_frames")
        .args(["-of", "default=noprint_wrappers=1"])
        .arg(path)
        .output()
        .expect("ffprobe must be installed");
    assert!(
        o.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let s = String::from_utf8_lossy(&o.stdout).to_string();
    let get = |k: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("no {k} in ffprobe output {s}"))
            .to_string()
    };
    Probe {
        width: get("width").parse().unwrap(),
        height: get("height").parse().unwrap(),
        pix_fmt: get("pix_fmt"),
        frames: get("nb_read_frames").parse().unwrap(),
    }
}

/// Decodes with the ffmpeg CLI into planar frames of `pix_fmt` (yuv420p, yuv420p10le,
/// yuv444p, yuv444p10le), in display order.
pub fn decode(path: &Path, pix_fmt: &str, w: usize, h: usize) -> Vec<[Vec<u16>; 3]> {
    let o = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "rawvideo", "-pix_fmt", pix_fmt, "-"])
        .output()
        .expect("ffmpeg must be installed");
    assert!(
        o.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let wide = pix_fmt.contains("10");
    let c444 = pix_fmt.starts_with("yuv444");
    let (cw, ch) = if c444 {
        (w, h)
    } else {
        (w.div_ceil(2), h.div_ceil(2))
    };
    let bps = if wide { 2 } else { 1 };
    let frame = (w * h + 2 * cw * ch) * bps;
    assert_eq!(
        o.stdout.len() % frame,
        0,
        "decoded size is not a whole number of frames"
    );
    o.stdout
        .chunks_exact(frame)
        .map(|f| {
            let samples: Vec<u16> = if wide {
                f.chunks_exact(2)
                    .map(|b| u16::from_le_bytes([b[0], b[1]]))
                    .collect()
            } else {
                f.iter().map(|&b| b as u16).collect()
            };
            [
                samples[..w * h].to_vec(),
                samples[w * h..w * h + cw * ch].to_vec(),
                samples[w * h + cw * ch..].to_vec(),
            ]
        })
        .collect()
}

/// PSNR over all three planes (sample-weighted), in dB.
pub fn psnr(a: &[Vec<u16>; 3], b: &[Vec<u16>; 3], depth: u32) -> f64 {
    let max = ((1u32 << depth) - 1) as f64;
    let mut se = 0f64;
    let mut n = 0usize;
    for p in 0..3 {
        assert_eq!(a[p].len(), b[p].len());
        for (x, y) in a[p].iter().zip(&b[p]) {
            let d = *x as f64 - *y as f64;
            se += d * d;
        }
        n += a[p].len();
    }
    let mse = se / n as f64;
    if mse == 0.0 {
        99.0
    } else {
        10.0 * (max * max / mse).log10()
    }
}

/// Sends `n` gradient frames as NV12 (or P010 when `depth == 10`) and drains.
/// `kind(i)` picks the picture kind of frame i. Returns (packets in output order, references).
pub fn encode_gradient(
    enc: &mut SwEncoder,
    n: usize,
    depth: u32,
    kind: impl Fn(usize) -> PicKind,
) -> (Vec<Packet>, Vec<Pic>) {
    let c = enc.config().clone();
    let (w, h) = (c.width as usize, c.height as usize);
    let ha = h + 16; // allocated height above the encode height, like NVENC surfaces
    let mut pkts = Vec::new();
    let mut refs = Vec::new();
    for i in 0..n {
        let pic = gradient(w, h, i, depth);
        let (fmt, buf, pitch) = if depth == 10 {
            let pitch = (2 * w).next_multiple_of(256);
            (InputFormat::Yuv420_10bit, pic.p010(pitch, ha), pitch)
        } else {
            let pitch = w.next_multiple_of(256);
            (InputFormat::Nv12, pic.nv12(pitch, ha), pitch)
        };
        enc.send(fmt, &buf, pitch, ha as u32, 1000 + 10 * i as i64, kind(i))
            .unwrap();
        while let Some(p) = enc.receive().unwrap() {
            pkts.push(p);
        }
        refs.push(pic);
    }
    pkts.extend(enc.drain().unwrap());
    (pkts, refs)
}
