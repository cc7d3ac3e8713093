//! End-to-end tests of the software encoder: decode with the ffmpeg CLI, check frame count,
//! size, PSNR, picture types, B-frame order, forced IDR, 10-bit and sequence headers.

mod common;
use common::*;
use nvemu_swenc::*;

fn kinds_gop(b: u32) -> impl Fn(usize) -> PicKind {
    move |i| {
        if i == 0 {
            PicKind::Idr
        } else if b == 0 || i % (b as usize + 1) == 0 {
            PicKind::P
        } else {
            PicKind::B
        }
    }
}

/// Encodes 30 frames, decodes them, checks count, size, pixel format and PSNR >= 35 dB.
fn roundtrip(codec: Codec, w: u32, h: u32, depth: u32, b: u32) -> f64 {
    let mut c = cfg(codec, w, h);
    c.bit_depth = depth;
    c.b_frames = b;
    c.gop_length = Some(30);
    let mut enc = SwEncoder::new(&c).unwrap();
    let (pkts, refs) = encode_gradient(&mut enc, 30, depth, kinds_gop(b));
    assert_eq!(pkts.len(), 30);
    let dir = tmpdir(&format!("{codec:?}-{w}x{h}-{depth}-{b}"));
    let file = write_stream(codec, w, h, &pkts, &dir);
    let probe = ffprobe(&file);
    assert_eq!((probe.width, probe.height), (w, h));
    assert_eq!(probe.frames, 30);
    let pix = if depth == 10 {
        "yuv420p10le"
    } else {
        "yuv420p"
    };
    assert_eq!(probe.pix_fmt, pix);
    let frames = decode(&file, pix, w as usize, h as usize);
    assert_eq!(frames.len(), 30);
    let mut min = f64::MAX;
    for (f, r) in frames.iter().zip(&refs) {
        let p = psnr(f, &r.reference(false), depth);
        min = min.min(p);
    }
    eprintln!("{codec:?} {w}x{h} {depth}-bit b={b}: min PSNR {min:.2} dB");
    assert!(min >= 35.0, "PSNR {min} dB below 35");
    let _ = std::fs::remove_dir_all(&dir);
    min
}

#[test]
fn hevc_720x406() {
    roundtrip(Codec::Hevc, 720, 406, 8, 0);
}

#[test]
fn hevc_720x406_bframes() {
    roundtrip(Codec::Hevc, 720, 406, 8, 2);
}

#[test]
fn h264_720x406_bframes() {
    roundtrip(Codec::H264, 720, 406, 8, 2);
}

#[test]
fn av1_720x405_odd_size() {
    roundtrip(Codec::Av1, 720, 405, 8, 0);
}

#[test]
fn hevc_p010_gives_10bit() {
    roundtrip(Codec::Hevc, 720, 406, 10, 0);
}

#[test]
fn av1_p010_gives_10bit() {
    roundtrip(Codec::Av1, 720, 405, 10, 0);
}

/// b_frames=2: packets come out in coded order 0,3,1,2,6,4,5,... with the asked types.
#[test]
fn bframe_order() {
    for codec in [Codec::Hevc, Codec::H264] {
        let mut c = cfg(codec, 320, 240);
        c.b_frames = 2;
        c.gop_length = Some(30);
        let mut enc = SwEncoder::new(&c).unwrap();
        // 13 frames: 0 IDR, then (B B P) x 4
        let (pkts, _) = encode_gradient(&mut enc, 13, 8, kinds_gop(2));
        let order: Vec<i64> = pkts.iter().map(|p| (p.pts - 1000) / 10).collect();
        assert_eq!(
            order,
            vec![0, 3, 1, 2, 6, 4, 5, 9, 7, 8, 12, 10, 11],
            "{codec:?}"
        );
        for p in &pkts {
            let i = ((p.pts - 1000) / 10) as usize;
            assert_eq!(p.kind, kinds_gop(2)(i), "{codec:?} frame {i}");
            assert_eq!(p.key, i == 0);
        }
    }
}

/// Forced IDR and forced non-IDR intra in the middle of a stream.
#[test]
fn forced_idr_mid_stream() {
    for codec in [Codec::Hevc, Codec::H264, Codec::Av1] {
        let mut c = cfg(codec, 320, 240);
        c.gop_length = None;
        c.repeat_headers = false;
        let mut enc = SwEncoder::new(&c).unwrap();
        let header = enc.sequence_header().unwrap();
        let ask = |i: usize| match i {
            10 => PicKind::Idr,
            15 => PicKind::I,
            _ => PicKind::Auto,
        };
        let (pkts, _) = encode_gradient(&mut enc, 20, 8, ask);
        assert_eq!(pkts.len(), 20);
        for (i, p) in pkts.iter().enumerate() {
            assert_eq!(p.pts, 1000 + 10 * i as i64);
            let want = match (i, codec) {
                (0 | 10, _) => PicKind::Idr,
                // libx264 and libaom code a forced intra frame as an IDR / key frame
                (15, Codec::Hevc) => PicKind::I,
                (15, _) => PicKind::Idr,
                _ => PicKind::P,
            };
            assert_eq!(p.kind, want, "{codec:?} frame {i}");
            assert_eq!(p.key, want == PicKind::Idr, "{codec:?} frame {i}");
            // an asked-for IDR carries the sequence header in band
            if i == 0 || i == 10 {
                assert!(
                    contains(&p.data, &header),
                    "{codec:?} frame {i} lacks the header"
                );
            }
        }
        // whole stream decodes
        let dir = tmpdir(&format!("idr-{codec:?}"));
        let file = write_stream(codec, 320, 240, &pkts, &dir);
        assert_eq!(ffprobe(&file).frames, 20);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// sequence_header() (asked before any frame) is byte-identical to the in-band header, and
/// repeat_headers decides whether GOP key frames after the first carry it.
#[test]
fn sequence_header_matches_in_band() {
    for codec in [Codec::Hevc, Codec::H264, Codec::Av1] {
        for repeat in [false, true] {
            let mut c = cfg(codec, 352, 288);
            c.gop_length = Some(5);
            c.repeat_headers = repeat;
            let mut enc = SwEncoder::new(&c).unwrap();
            let header = enc.sequence_header().unwrap();
            match codec {
                Codec::Hevc => {
                    let nals = annexb::split(&header);
                    let types: Vec<u8> = nals.iter().map(|n| annexb::unit_type(true, n)).collect();
                    assert_eq!(types, vec![32, 33, 34]);
                }
                Codec::H264 => {
                    let nals = annexb::split(&header);
                    let types: Vec<u8> = nals.iter().map(|n| annexb::unit_type(false, n)).collect();
                    assert_eq!(types, vec![7, 8]);
                }
                Codec::Av1 => assert_eq!((header[0] >> 3) & 0xf, 1, "sequence header OBU"),
            }
            let (pkts, _) = encode_gradient(&mut enc, 11, 8, |_| PicKind::Auto);
            for (i, p) in pkts.iter().enumerate() {
                assert_eq!(p.key, i % 5 == 0, "{codec:?} frame {i}");
                let has = contains(&p.data, &header);
                let want = i == 0 || (p.key && (repeat || codec == Codec::Av1));
                assert_eq!(has, want, "{codec:?} repeat={repeat} frame {i}");
            }
            assert_eq!(enc.sequence_header().unwrap(), header);
        }
    }
}

/// drain() returns everything, and the encoder goes on with an IDR.
#[test]
fn drain_then_continue() {
    for codec in [Codec::Hevc, Codec::Av1] {
        let mut c = cfg(codec, 320, 240);
        c.b_frames = if codec == Codec::Hevc { 2 } else { 0 };
        c.gop_length = Some(100);
        let mut enc = SwEncoder::new(&c).unwrap();
        let (a, _) = encode_gradient(&mut enc, 7, 8, kinds_gop(c.b_frames));
        assert_eq!(a.len(), 7);
        let (b, _) = encode_gradient(&mut enc, 4, 8, |i| {
            if i == 0 { PicKind::Auto } else { PicKind::P }
        });
        assert_eq!(b.len(), 4);
        assert_eq!(b[0].kind, PicKind::Idr);
        assert!(b[0].key);
        assert_eq!(b[0].pts, 1000);
    }
}

/// How many frames each encoder holds back beyond NVENC's own B-frame hold; must match
/// `SwEncoder::delay()`. Printed for the record.
#[test]
fn measured_delay_matches_delay() {
    for (codec, b) in [
        (Codec::Hevc, 0),
        (Codec::Hevc, 1),
        (Codec::Hevc, 2),
        (Codec::H264, 0),
        (Codec::H264, 2),
        (Codec::Av1, 0),
        (Codec::Av1, 2),
    ] {
        let mut c = cfg(codec, 320, 240);
        c.b_frames = b;
        c.gop_length = Some(60);
        let mut enc = SwEncoder::new(&c).unwrap();
        let kinds = kinds_gop(b);
        let pic = gradient(320, 240, 0, 8);
        let buf = pic.nv12(320, 240);
        let mut out = 0usize;
        let mut worst = 0usize;
        // NVENC: after frame i is sent, every frame up to the last anchor (non-B) is out.
        let mut last_anchor = 0usize;
        for i in 0..24usize {
            let k = kinds(i);
            enc.send(InputFormat::Nv12, &buf, 320, 240, i as i64, k)
                .unwrap();
            while enc.receive().unwrap().is_some() {
                out += 1;
            }
            if k != PicKind::B || codec == Codec::Av1 {
                last_anchor = i;
            }
            let ideal = last_anchor + 1;
            worst = worst.max(ideal.saturating_sub(out));
        }
        // in frames: the extra frames held equal the extra sends needed
        eprintln!(
            "{codec:?} b_frames={b}: held back {worst} frames (delay() = {})",
            enc.delay()
        );
        assert_eq!(worst as u32, enc.delay(), "{codec:?} b={b}");
    }
}

/// Every NVENC buffer format converts correctly (PSNR of a near-lossless encode).
#[test]
fn input_formats() {
    let (w, h, ha) = (64usize, 48usize, 64usize);
    let pic = gradient(w, h, 3, 8);
    let pic10 = gradient(w, h, 3, 10);
    let cases: Vec<(InputFormat, Vec<u8>, usize, bool, u32)> = vec![
        (InputFormat::Nv12, pic.nv12(128, ha), 128, false, 8),
        (
            InputFormat::Yv12,
            pic.planar420(128, ha, true),
            128,
            false,
            8,
        ),
        (
            InputFormat::Iyuv,
            pic.planar420(128, ha, false),
            128,
            false,
            8,
        ),
        (InputFormat::Yuv444, pic.yuv444(128, ha), 128, true, 8),
        (InputFormat::Ayuv, pic.ayuv(256), 256, true, 8),
        (
            InputFormat::Yuv420_10bit,
            pic10.p010(256, ha),
            256,
            false,
            10,
        ),
        (
            InputFormat::Yuv444_10bit,
            pic10.yuv444_10(256, ha),
            256,
            true,
            10,
        ),
    ];
    for (fmt, buf, pitch, c444, depth) in cases {
        let mut c = cfg(Codec::Hevc, w as u32, h as u32);
        c.chroma_444 = c444;
        c.bit_depth = depth;
        c.rc = RateControl::ConstQp { i: 4, p: 4, b: 4 };
        let mut enc = SwEncoder::new(&c).unwrap();
        enc.send(fmt, &buf, pitch, ha as u32, 0, PicKind::Idr)
            .unwrap();
        let pkts = enc.drain().unwrap();
        let dir = tmpdir(&format!("fmt-{fmt:?}"));
        let file = write_stream(Codec::Hevc, w as u32, h as u32, &pkts, &dir);
        let pix = match (c444, depth) {
            (false, 8) => "yuv420p",
            (true, 8) => "yuv444p",
            (false, _) => "yuv420p10le",
            (true, _) => "yuv444p10le",
        };
        assert_eq!(ffprobe(&file).pix_fmt, pix, "{fmt:?}");
        let dec = decode(&file, pix, w, h);
        let r = if depth == 10 { &pic10 } else { &pic };
        let p = psnr(&dec[0], &r.reference(c444), depth);
        eprintln!("{fmt:?}: PSNR {p:.2} dB");
        assert!(p > 40.0, "{fmt:?}: PSNR {p}");
        let _ = std::fs::remove_dir_all(&dir);
    }
    // RGB: grey levels must map to Y = 16 + 219*v/255 (limited range) and neutral chroma
    for fmt in [
        InputFormat::Argb,
        InputFormat::Abgr,
        InputFormat::Argb10,
        InputFormat::Abgr10,
    ] {
        let mut c = cfg(Codec::Hevc, w as u32, h as u32);
        c.rc = RateControl::ConstQp { i: 4, p: 4, b: 4 };
        let mut enc = SwEncoder::new(&c).unwrap();
        let ten = matches!(fmt, InputFormat::Argb10 | InputFormat::Abgr10);
        let mut buf = vec![0u8; w * 4 * h];
        for (i, px) in buf.chunks_exact_mut(4).enumerate() {
            let v = ((i % w) * 255 / (w - 1)) as u32;
            let word = if ten {
                let v10 = v * 1023 / 255;
                (3 << 30) | (v10 << 20) | (v10 << 10) | v10
            } else {
                0xff00_0000 | (v << 16) | (v << 8) | v
            };
            px.copy_from_slice(&word.to_le_bytes());
        }
        enc.send(fmt, &buf, w * 4, h as u32, 0, PicKind::Idr)
            .unwrap();
        let pkts = enc.drain().unwrap();
        let dir = tmpdir(&format!("fmt-{fmt:?}"));
        let file = write_stream(Codec::Hevc, w as u32, h as u32, &pkts, &dir);
        let dec = decode(&file, "yuv420p", w, h);
        let mut want = [
            vec![0u16; w * h],
            vec![128u16; (w / 2) * (h / 2)],
            vec![128u16; (w / 2) * (h / 2)],
        ];
        for (i, y) in want[0].iter_mut().enumerate() {
            let v = ((i % w) * 255 / (w - 1)) as f64;
            *y = (16.0 + 219.0 * v / 255.0).round() as u16;
        }
        let p = psnr(&dec[0], &want, 8);
        eprintln!("{fmt:?}: PSNR {p:.2} dB");
        assert!(p > 38.0, "{fmt:?}: PSNR {p}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Bad input is an error, never a crash.
#[test]
fn errors_not_panics() {
    let c = cfg(Codec::Hevc, 64, 48);
    let mut enc = SwEncoder::new(&c).unwrap();
    let small = vec![0u8; 100];
    assert!(
        enc.send(InputFormat::Nv12, &small, 64, 48, 0, PicKind::Auto)
            .is_err()
    );
    assert!(
        enc.send(
            InputFormat::Nv12,
            &vec![0u8; 64 * 72],
            32,
            48,
            0,
            PicKind::Auto
        )
        .is_err()
    );
    assert!(
        enc.send(
            InputFormat::Nv12,
            &vec![0u8; 64 * 72],
            64,
            40,
            0,
            PicKind::Auto
        )
        .is_err()
    );
    let mut odd = cfg(Codec::Hevc, 63, 48);
    assert!(SwEncoder::new(&odd).is_err());
    odd.codec = Codec::Av1;
    assert!(SwEncoder::new(&odd).is_ok());
    let mut bad = cfg(Codec::Hevc, 64, 48);
    bad.speed = 0;
    assert!(SwEncoder::new(&bad).is_err());
    // still usable after the errors
    enc.send(
        InputFormat::Nv12,
        &vec![0u8; 64 * 72],
        64,
        48,
        5,
        PicKind::Auto,
    )
    .unwrap();
    let p = enc.drain().unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].pts, 5);
}

/// Encode speed at 1280x720 (run with --ignored --nocapture; release build recommended).
#[test]
#[ignore]
fn bench_720p_fps() {
    for codec in [Codec::Hevc, Codec::H264, Codec::Av1] {
        for speed in [1, 4, 7] {
            let mut c = cfg(codec, 1280, 720);
            c.speed = speed;
            c.gop_length = Some(60);
            c.rc = RateControl::Vbr {
                avg_bps: 4_000_000,
                max_bps: 6_000_000,
                vbv_bits: 4_000_000,
                target_quality: None,
            };
            let mut enc = SwEncoder::new(&c).unwrap();
            let frames: Vec<Vec<u8>> = (0..10)
                .map(|t| gradient(1280, 720, t * 3, 8).nv12(1280, 720))
                .collect();
            let n = 60;
            let t0 = std::time::Instant::now();
            for i in 0..n {
                enc.send(
                    InputFormat::Nv12,
                    &frames[i % 10],
                    1280,
                    720,
                    i as i64,
                    PicKind::Auto,
                )
                .unwrap();
                while enc.receive().unwrap().is_some() {}
            }
            enc.drain().unwrap();
            let fps = n as f64 / t0.elapsed().as_secs_f64();
            eprintln!("{codec:?} 1280x720 speed {speed}: {fps:.1} fps");
        }
    }
}

/// The colour description reaches the bitstream (VUI / AV1 colour config).
#[test]
fn colour_description() {
    for codec in [Codec::Hevc, Codec::H264, Codec::Av1] {
        let mut c = cfg(codec, 320, 240);
        c.bit_depth = 10;
        c.colour = Some(Colour {
            primaries: 9,
            transfer: 16,
            matrix: 9,
            full_range: false,
        });
        if codec == Codec::H264 {
            c.bit_depth = 8; // Debian's libx264 is 8-bit only
        }
        let depth = c.bit_depth;
        let mut enc = SwEncoder::new(&c).unwrap();
        let (pkts, _) = encode_gradient(&mut enc, 3, depth, |_| PicKind::Auto);
        let dir = tmpdir(&format!("colour-{codec:?}"));
        let file = write_stream(codec, 320, 240, &pkts, &dir);
        let o = std::process::Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
            .arg("stream=color_primaries,color_transfer,color_space,color_range")
            .args(["-of", "default=noprint_wrappers=1"])
            .arg(&file)
            .output()
            .unwrap();
        let s = String::from_utf8_lossy(&o.stdout);
        for want in [
            "color_primaries=bt2020",
            "color_transfer=smpte2084",
            "color_space=bt2020nc",
            "color_range=tv",
        ] {
            assert!(s.contains(want), "{codec:?}: {want} not in {s}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// VBR and CBR encode and land near the asked bitrate.
#[test]
fn bitrate_modes() {
    for codec in [Codec::Hevc, Codec::Av1] {
        for rc in [
            RateControl::Vbr {
                avg_bps: 400_000,
                max_bps: 800_000,
                vbv_bits: 800_000,
                target_quality: None,
            },
            RateControl::Cbr {
                bps: 400_000,
                vbv_bits: 400_000,
            },
        ] {
            let mut c = cfg(codec, 320, 240);
            c.rc = rc;
            c.gop_length = Some(30);
            let mut enc = SwEncoder::new(&c).unwrap();
            let (pkts, _) = encode_gradient(&mut enc, 60, 8, |_| PicKind::Auto);
            assert_eq!(pkts.len(), 60);
            let bits: usize = pkts.iter().map(|p| p.data.len() * 8).sum();
            let bps = bits as f64 / 2.0; // 60 frames at 30 fps
            eprintln!("{codec:?} {rc:?}: {bps:.0} bit/s");
            assert!(bps < 400_000.0 * 2.5, "{codec:?} {rc:?}: {bps} bit/s");
        }
    }
}

/// The null backend (`NVEMU_BACKEND=null`, for throughput work): every picture out at once in
/// coded order (B-frames after their anchor), placeholders of the codec's syntax, and the real
/// sequence header in front of the first IDR.
#[test]
fn null_backend_coded_order_and_headers() {
    for codec in [Codec::Hevc, Codec::Av1] {
        let mut c = cfg(codec, 320, 240);
        c.b_frames = 2;
        c.gop_length = Some(60);
        let mut enc = SwEncoder::with_backend(&c, true).unwrap();
        let header = enc.sequence_header().unwrap();
        let kinds = [PicKind::Idr, PicKind::B, PicKind::B, PicKind::P];
        let mut out = Vec::new();
        for (i, k) in kinds.iter().enumerate() {
            enc.send(InputFormat::Nv12, &[], 320, 240, i as i64, *k)
                .unwrap();
            while let Some(p) = enc.receive().unwrap() {
                out.push(p);
            }
        }
        let order: Vec<i64> = out.iter().map(|p| p.pts).collect();
        let want: Vec<i64> = if codec == Codec::Av1 {
            vec![0, 1, 2, 3] // no reordering for AV1
        } else {
            vec![0, 3, 1, 2]
        };
        assert_eq!(order, want, "{codec:?}");
        assert!(
            out[0].key && out[0].data.starts_with(&header),
            "{codec:?}: header first"
        );
        assert!(
            out[1..].iter().all(|p| !p.key && p.data.len() < 32),
            "{codec:?}"
        );
    }
}

/// The H.264 profile asked for is the profile coded (profile_idc in the SPS); a configuration
/// the profile cannot code is refused.
#[test]
fn h264_profiles() {
    let sps_profile = |c: &Config| -> u8 {
        let seq = SwEncoder::new(c).unwrap().sequence_header().unwrap();
        let i = seq
            .windows(4)
            .position(|w| w[..3] == [0, 0, 1] && w[3] & 0x1f == 7)
            .expect("an SPS");
        seq[i + 4]
    };
    let mut c = cfg(Codec::H264, 320, 240);
    c.b_frames = 2;
    assert_eq!(sps_profile(&c), 100, "x264's own choice: High");
    c.h264_profile = H264Profile::Main;
    assert_eq!(sps_profile(&c), 77);
    c.h264_profile = H264Profile::High;
    assert_eq!(sps_profile(&c), 100);
    c.h264_profile = H264Profile::Baseline;
    assert!(SwEncoder::new(&c).is_err(), "Baseline has no B-frames");
    c.b_frames = 0;
    assert_eq!(sps_profile(&c), 66);
    c.h264_profile = H264Profile::Main;
    c.chroma_444 = true;
    assert!(SwEncoder::new(&c).is_err(), "Main is 4:2:0 only");
    c.h264_profile = H264Profile::High444;
    assert_eq!(sps_profile(&c), 244);
}
