//! TEMPORARY stand-in for the `nvemu-swenc` API of `docs/emulator-contract.md`, used only while
//! `nvemu/swenc` is a placeholder. It codes nothing: it emits syntactically framed fake
//! packets (Annex B NAL units / AV1 OBUs) with the B-frame reordering a real encoder would do,
//! so the emulator's ordering logic can be built and tested. Delete once swenc is real.
#![allow(dead_code)]

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    H264,
    Hevc,
    Av1,
}
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputFormat {
    Nv12,
    Yv12,
    Iyuv,
    Yuv444,
    Yuv420_10bit,
    Yuv444_10bit,
    Argb,
    Abgr,
    Ayuv,
    Argb10,
    Abgr10,
}
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RateControl {
    ConstQp {
        i: u32,
        p: u32,
        b: u32,
    },
    Vbr {
        avg_bps: u32,
        max_bps: u32,
        vbv_bits: u32,
        target_quality: Option<f32>,
    },
    Cbr {
        bps: u32,
        vbv_bits: u32,
    },
}
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Colour {
    pub primaries: u32,
    pub transfer: u32,
    pub matrix: u32,
    pub full_range: bool,
}
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub codec: Codec,
    pub width: u32,
    pub height: u32,
    pub bit_depth: u32,
    pub chroma_444: bool,
    pub fps_num: u32,
    pub fps_den: u32,
    pub gop_length: Option<u32>,
    pub b_frames: u32,
    pub rc: RateControl,
    pub colour: Option<Colour>,
    pub repeat_headers: bool,
    pub speed: u32,
}
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PicKind {
    Auto,
    Idr,
    I,
    P,
    B,
}
#[derive(Clone, Debug)]
pub struct Packet {
    pub data: Vec<u8>,
    pub pts: i64,
    pub key: bool,
    pub kind: PicKind,
}

pub struct SwEncoder {
    cfg: Config,
    held: Vec<(i64, PicKind)>,
    out: std::collections::VecDeque<Packet>,
}

impl SwEncoder {
    pub fn new(cfg: &Config) -> Result<SwEncoder, String> {
        Ok(SwEncoder {
            cfg: cfg.clone(),
            held: Vec::new(),
            out: Default::default(),
        })
    }

    pub fn sequence_header(&self) -> Result<Vec<u8>, String> {
        Ok(match self.cfg.codec {
            Codec::H264 => vec![0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x68, 3],
            Codec::Hevc => vec![
                0, 0, 0, 1, 0x40, 1, 9, 0, 0, 0, 1, 0x42, 1, 9, 0, 0, 0, 1, 0x44, 1, 9,
            ],
            Codec::Av1 => vec![0x0a, 2, 0, 0],
        })
    }

    fn packet(&self, pts: i64, kind: PicKind) -> Packet {
        let key = kind == PicKind::Idr;
        let mut data = Vec::new();
        match self.cfg.codec {
            Codec::H264 => {
                if key {
                    data.extend(self.sequence_header().unwrap());
                }
                data.extend([0, 0, 0, 1, if key { 0x65 } else { 0x41 }, pts as u8]);
            }
            Codec::Hevc => {
                if key {
                    data.extend(self.sequence_header().unwrap());
                }
                data.extend([0, 0, 0, 1, if key { 19 << 1 } else { 1 << 1 }, 1, pts as u8]);
            }
            Codec::Av1 => {
                data.extend([0x12, 0]);
                if key {
                    data.extend(self.sequence_header().unwrap());
                }
                data.extend([0x32, 1, pts as u8]);
            }
        }
        Packet {
            data,
            pts,
            key,
            kind,
        }
    }

    pub fn send(
        &mut self,
        _fmt: InputFormat,
        _data: &[u8],
        _pitch: usize,
        _height_alloc: u32,
        pts: i64,
        kind: PicKind,
    ) -> Result<(), String> {
        if kind == PicKind::B && self.cfg.b_frames > 0 {
            self.held.push((pts, kind));
        } else {
            let p = self.packet(pts, kind);
            self.out.push_back(p);
            for (pts, k) in std::mem::take(&mut self.held) {
                let p = self.packet(pts, k);
                self.out.push_back(p);
            }
        }
        Ok(())
    }

    pub fn receive(&mut self) -> Result<Option<Packet>, String> {
        Ok(self.out.pop_front())
    }

    pub fn drain(&mut self) -> Result<Vec<Packet>, String> {
        for (pts, _) in std::mem::take(&mut self.held) {
            let p = self.packet(pts, PicKind::P);
            self.out.push_back(p);
        }
        Ok(self.out.drain(..).collect())
    }
}
