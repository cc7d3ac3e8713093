// SPDX-License-Identifier: MPL-2.0
//! No-panic property tests of what the element reads from upstream: the HDR10 caps fields
//! (`mastering-display-info`, `content-light-level`) and the colorimetry, and caption metas
//! (CEA-708 raw and CDP), through every conversion they go through on their way to NVENC.
//! Deterministic (xorshift64* from fixed seeds), no extra crates.

use super::colour;
use super::metadata::*;
use crate::nvenc::api::Codec;
use crate::nvenc::ffi;

/// xorshift64*: the same inputs on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max as u64 + 1) as usize;
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// A number as text, often at or past the edges of u16/u32/i64.
    fn number(&mut self) -> String {
        match self.below(8) {
            0 => "0".into(),
            1 => u16::MAX.to_string(),
            2 => (u16::MAX as u64 + 1).to_string(),
            3 => u32::MAX.to_string(),
            4 => (u32::MAX as u64 + 1).to_string(),
            5 => format!("-{}", self.below(1000)),
            6 => "99999999999999999999999".into(),
            _ => self.below(100_000).to_string(),
        }
    }

    /// A field value: numbers joined by ':' (right count or not), or garbage text.
    fn field(&mut self, parts: usize) -> String {
        match self.below(4) {
            // Caps strings cannot hold NUL.
            0 => String::from_utf8_lossy(&self.bytes(40)).replace('\0', ""),
            1 => {
                let n = self.below(parts as u64 * 2 + 1) as usize;
                (0..n).map(|_| self.number()).collect::<Vec<_>>().join(":")
            }
            _ => (0..parts)
                .map(|_| self.number())
                .collect::<Vec<_>>()
                .join(":"),
        }
    }
}

/// Every way HDR10 metadata goes to NVENC, for every codec and both paths.
fn send_hdr(hdr: &Hdr10) {
    for m in hdr.mastering.iter() {
        let _ = sei_mastering_display(m);
        let _ = av1_mastering_display(m);
        for codec in [Codec::H264, Codec::Hevc, Codec::Av1] {
            let _ = nvenc_mastering_display(m, codec);
        }
    }
    for l in hdr.light.iter() {
        let _ = content_light_level(l);
        let _ = nvenc_content_light_level(l);
    }
    for codec in [Codec::H264, Codec::Hevc, Codec::Av1] {
        for native in [false, true] {
            let mut p = PicPayloads::default();
            p.push_hdr(hdr, codec, native);
            let mut pic: Box<ffi::NV_ENC_PIC_PARAMS> = ffi::boxed_zeroed();
            p.attach(&mut pic, codec);
            let _ = p.describe();
        }
    }
}

#[test]
fn hdr_caps_fields_never_panic() {
    gst::init().unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut parsed = 0;
    for _ in 0..3000 {
        let mut b = gst::Caps::builder("video/x-raw");
        match rng.below(4) {
            0 => b = b.field("mastering-display-info", rng.field(10)),
            1 => b = b.field("mastering-display-info", rng.next() as i32),
            2 => {
                // Well formed, any values.
                let mut v: Vec<String> = (0..8).map(|_| (rng.next() as u16).to_string()).collect();
                v.extend((0..2).map(|_| (rng.next() as u32).to_string()));
                b = b.field("mastering-display-info", v.join(":"));
            }
            _ => {}
        }
        match rng.below(4) {
            0 => b = b.field("content-light-level", rng.field(2)),
            1 => b = b.field("content-light-level", gst::Fraction::new(1, 2)),
            2 => {
                let v = format!("{}:{}", rng.next() as u16, rng.next() as u16);
                b = b.field("content-light-level", v);
            }
            _ => {}
        }
        let caps = b.build();
        let hdr = Hdr10::from_caps(&caps);
        parsed += hdr.mastering.is_some() as u32 + hdr.light.is_some() as u32;
        send_hdr(&hdr);
    }
    assert!(
        parsed > 500,
        "the generator reaches the converters: {parsed}"
    );
    // Any value the parsed structs can hold, edges included.
    let edge = |r: &mut Rng| -> u32 {
        match r.below(3) {
            0 => 0,
            1 => u32::MAX,
            _ => r.next() as u32,
        }
    };
    for _ in 0..3000 {
        let c = |r: &mut Rng, v: u32| (v as u16, r.next() as u16);
        let m = MasteringDisplay {
            primaries: [
                c(&mut rng, 0),
                c(&mut rng, u16::MAX as u32),
                c(&mut rng, 50_000),
            ],
            white_point: (rng.next() as u16, rng.next() as u16),
            max_luminance: edge(&mut rng),
            min_luminance: edge(&mut rng),
        };
        let l = ContentLightLevel {
            max_cll: rng.next() as u16,
            max_fall: rng.next() as u16,
        };
        send_hdr(&Hdr10 {
            mastering: Some(m),
            light: Some(l),
        });
    }
}

#[test]
fn colorimetry_never_panics() {
    gst::init().unwrap();
    use gst_video::{VideoColorMatrix as M, VideoColorPrimaries as P, VideoTransferFunction as T};
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let formats = [
        gst_video::VideoFormat::Nv12,
        gst_video::VideoFormat::P01010le,
        gst_video::VideoFormat::Y444,
        gst_video::VideoFormat::Bgra,
        gst_video::VideoFormat::Vuya,
        gst_video::VideoFormat::Gbr,
    ];
    for _ in 0..2000 {
        let text = match rng.below(3) {
            0 => String::from_utf8_lossy(&rng.bytes(24)).replace('\0', ""),
            1 => format!(
                "{}:{}:{}:{}",
                rng.below(5),
                rng.below(12),
                rng.below(20),
                rng.below(14)
            ),
            _ => [
                "bt709",
                "bt2020",
                "bt2100-pq",
                "bt2100-hlg",
                "sRGB",
                "bt601",
                "smpte240m",
            ][rng.below(7) as usize]
                .to_owned(),
        };
        let fmt = formats[rng.below(formats.len() as u64) as usize];
        let caps = gst::Caps::builder("video/x-raw")
            .field("format", fmt.to_str())
            .field("width", 64)
            .field("height", 64)
            .field("framerate", gst::Fraction::new(25, 1))
            .field("colorimetry", text)
            .build();
        if let Ok(info) = gst_video::VideoInfo::from_caps(&caps) {
            let _ = colour::iso_colour(&info);
        }
    }
    // Every enum value the bindings know, in any combination.
    for p in [
        P::Unknown,
        P::Bt709,
        P::Bt470m,
        P::Bt470bg,
        P::Smpte170m,
        P::Bt2020,
        P::Ebu3213,
    ] {
        for t in [
            T::Unknown,
            T::Gamma10,
            T::Bt709,
            T::Srgb,
            T::Smpte2084,
            T::AribStdB67,
        ] {
            for m in [M::Unknown, M::Rgb, M::Fcc, M::Bt709, M::Bt601, M::Bt2020] {
                for r in [
                    gst_video::VideoColorRange::Unknown,
                    gst_video::VideoColorRange::Range0_255,
                    gst_video::VideoColorRange::Range16_235,
                ] {
                    let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Nv12, 64, 64)
                        .colorimetry(&gst_video::VideoColorimetry::new(r, m, t, p))
                        .build()
                        .unwrap();
                    let _ = colour::iso_colour(&info);
                }
            }
        }
    }
}

#[test]
fn caption_metas_never_panic() {
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    let types = [
        gst_video::VideoCaptionType::Cea608Raw,
        gst_video::VideoCaptionType::Cea608S3341a,
        gst_video::VideoCaptionType::Cea708Raw,
        gst_video::VideoCaptionType::Cea708Cdp,
        gst_video::VideoCaptionType::Unknown,
    ];
    for _ in 0..20_000 {
        let ty = types[rng.below(types.len() as u64) as usize];
        let mut data = rng.bytes(260);
        if ty == gst_video::VideoCaptionType::Cea708Cdp && data.len() >= 9 && rng.below(2) == 0 {
            // A CDP header with random length, flags and cc_count, so that the parser goes
            // past the header.
            data[0] = 0x96;
            data[1] = 0x69;
            data[4] |= 0x40;
            if data[4] & 0x80 != 0 && data.len() > 12 {
                data[7] = 0x71;
                data[12] = 0x72;
            } else {
                data[7] = 0x72;
            }
        }
        let Some(cc) = cc_data(ty, &data) else {
            continue;
        };
        assert!(cc.len() % 3 == 0 && !cc.is_empty() && cc.len() <= 3 * MAX_CC_COUNT);
        let t35 = a53_t35_payload(&cc);
        assert_eq!(t35.len(), 11 + cc.len());
        for codec in [Codec::H264, Codec::Hevc, Codec::Av1] {
            let mut p = PicPayloads::default();
            p.push_caption(&cc, codec);
            let mut pic: Box<ffi::NV_ENC_PIC_PARAMS> = ffi::boxed_zeroed();
            p.attach(&mut pic, codec);
        }
    }
    // Payloads of any length, even past what a meta could hold.
    for n in [0, 1, 2, 3, 92, 93, 94, 300, 4096] {
        let p = a53_t35_payload(&vec![0xfc; n]);
        assert_eq!(p.len(), 11 + 3 * (n / 3).min(MAX_CC_COUNT));
    }
}
