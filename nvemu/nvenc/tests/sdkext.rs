//! Split-frame encoding, lookahead level, temporal filter and long-term references: the caps
//! per GPU model and API, and the header's rules the stand-in enforces at
//! nvEncInitializeEncoder and nvEncEncodePicture (nvEncodeAPI.h 12.1 .. 13.0).

mod common;
use common::*;
use nvidia_encode::abi;

/// Initialises a fresh session of `api` for `codec` at 320x240 (P4, high quality) after
/// `tweak` edits the preset's config and the INITIALIZE_PARAMS; the status and the last error.
fn init_with(api: &Api, codec: &str, tweak: impl Fn(&S, &S)) -> (i32, String) {
    let (st, enc) = api.open();
    assert_eq!(st, SUCCESS, "open");
    let (st, cfg) = api.preset(enc, codec, "NV_ENC_PRESET_P4_GUID", 1);
    assert_eq!(st, SUCCESS, "preset");
    cfg.set("gopLength", 30).set("frameIntervalP", 1);
    cfg.set(&format!("{}idrPeriod", codec_cfg(codec)), 30);
    let ip = api.init_params(codec, 320, 240, &cfg);
    tweak(&cfg, &ip);
    let st = api.init_raw(enc, &ip);
    let err = api.last_error(enc);
    api.destroy(enc);
    (st, err)
}

#[test]
fn caps_per_gpu_model_and_api() {
    let _g = env(&[]);
    let api = Api::new(abi::SDK_13_0);
    let (_, enc) = api.open();
    // Ada (rigaya's RTX 4060 Laptop dump, driver 550): LTR 8/7/6, temporal filter HEVC and
    // AV1, lookahead level HEVC only; two engines (RTX 4090).
    for (codec, ltr, tf, la) in [(H264, 8, 0, 0), (HEVC, 7, 1, 3), (AV1, 6, 1, 0)] {
        assert_eq!(
            api.caps(enc, codec, "NUM_MAX_LTR_FRAMES"),
            (SUCCESS, ltr),
            "{codec}"
        );
        assert_eq!(
            api.caps(enc, codec, "SUPPORT_TEMPORAL_FILTER"),
            (SUCCESS, tf),
            "{codec}"
        );
        assert_eq!(
            api.caps(enc, codec, "SUPPORT_LOOKAHEAD_LEVEL"),
            (SUCCESS, la),
            "{codec}"
        );
        assert_eq!(api.caps(enc, codec, "NUM_ENCODER_ENGINES"), (SUCCESS, 2));
    }
    api.destroy(enc);
    drop(_g);
    let _g = env(&[("NVEMU_GPU", "turing")]);
    let (_, enc) = api.open();
    assert_eq!(api.caps(enc, HEVC, "NUM_MAX_LTR_FRAMES"), (SUCCESS, 7));
    assert_eq!(api.caps(enc, HEVC, "SUPPORT_TEMPORAL_FILTER"), (SUCCESS, 0));
    assert_eq!(api.caps(enc, HEVC, "SUPPORT_LOOKAHEAD_LEVEL"), (SUCCESS, 0));
    assert_eq!(api.caps(enc, HEVC, "NUM_ENCODER_ENGINES"), (SUCCESS, 1));
    api.destroy(enc);
    drop(_g);
    // A 12.1 session has no temporal-filter or lookahead-level caps (the enumerators came
    // with 12.2): INVALID_PARAM, like any unknown NV_ENC_CAPS value.
    let _g = env(&[]);
    let api = Api::new(abi::SDK_12_1);
    let (_, enc) = api.open();
    let p = S::with_ver(abi::SDK_12_1, "NV_ENC_CAPS_PARAM", "NV_ENC_CAPS_PARAM_VER");
    p.set("capsToQuery", 55);
    assert_eq!(api.caps_raw(enc, HEVC, &p).0, INVALID_PARAM);
    assert_eq!(api.caps(enc, HEVC, "NUM_MAX_LTR_FRAMES"), (SUCCESS, 7));
    api.destroy(enc);
}

#[test]
fn split_encode_mode_values_per_api() {
    let _g = env(&[]);
    for (sdk, four_ok) in [
        (abi::SDK_12_1, false),
        (abi::SDK_12_2, false),
        (abi::SDK_13_0, true),
    ] {
        let api = Api::new(sdk);
        for (mode, ok) in [
            (0, true),
            (1, true),
            (2, true),
            (3, true),
            (4, four_ok),
            (5, false),
            (14, false),
            (15, true),
        ] {
            let (st, err) = init_with(&api, HEVC, |_, ip| {
                ip.set("splitEncodeMode", mode);
            });
            let want = if ok { SUCCESS } else { INVALID_PARAM };
            assert_eq!(st, want, "API {} mode {mode}: {err}", abi::SDK_NAMES[sdk]);
        }
        // H.264: not applicable, ignored (accepted).
        let (st, err) = init_with(&api, H264, |_, ip| {
            ip.set("splitEncodeMode", 2);
        });
        assert_eq!(st, SUCCESS, "{err}");
    }
}

#[test]
fn lookahead_level_rules() {
    let _g = env(&[]);
    let api = Api::new(abi::SDK_12_2);
    let la = |level: u64, lookahead: bool| {
        move |cfg: &S, _: &S| {
            cfg.set("rcParams.enableLookahead", lookahead as u64)
                .set("rcParams.lookaheadDepth", if lookahead { 8 } else { 0 })
                .set("rcParams.lookaheadLevel", level);
        }
    };
    assert_eq!(init_with(&api, HEVC, la(3, true)).0, SUCCESS);
    assert_eq!(init_with(&api, HEVC, la(15, true)).0, SUCCESS, "auto");
    assert_eq!(init_with(&api, HEVC, la(0, false)).0, SUCCESS);
    let (st, err) = init_with(&api, HEVC, la(2, false));
    assert_eq!(st, INVALID_PARAM, "needs enableLookahead");
    assert!(err.contains("enableLookahead"), "{err}");
    assert_eq!(
        init_with(&api, HEVC, la(4, true)).0,
        INVALID_PARAM,
        "not an enumerator"
    );
    // AV1 and H.264 have no lookahead levels on the Ada model.
    let (st, err) = init_with(&api, AV1, la(1, true));
    assert_eq!(st, UNSUPPORTED_PARAM, "{err}");
    assert_eq!(init_with(&api, H264, la(15, true)).0, UNSUPPORTED_PARAM);
    // Turing: none at all.
    drop(_g);
    let _g = env(&[("NVEMU_GPU", "turing")]);
    assert_eq!(init_with(&api, HEVC, la(1, true)).0, UNSUPPORTED_PARAM);
}

#[test]
fn temporal_filter_rules() {
    let _g = env(&[]);
    let tf = |codec: &'static str, level: u64, fip: u64, zero_reorder: bool| {
        move |cfg: &S, _: &S| {
            cfg.set("frameIntervalP", fip)
                .set("rcParams.zeroReorderDelay", zero_reorder as u64)
                .set(&format!("{}tfLevel", codec_cfg(codec)), level);
        }
    };
    let api = Api::new(abi::SDK_12_2);
    assert_eq!(init_with(&api, HEVC, tf(HEVC, 4, 5, false)).0, SUCCESS);
    let (st, err) = init_with(&api, HEVC, tf(HEVC, 4, 4, false));
    assert_eq!(st, INVALID_PARAM, "frameIntervalP 4");
    assert!(err.contains("frameIntervalP >= 5"), "{err}");
    assert_eq!(
        init_with(&api, HEVC, tf(HEVC, 4, 5, true)).0,
        INVALID_PARAM,
        "zeroReorderDelay"
    );
    assert_eq!(
        init_with(&api, HEVC, tf(HEVC, 2, 5, false)).0,
        INVALID_PARAM,
        "level 2"
    );
    // AV1's tfLevel exists from 13.0; in a 12.2 session those bytes are reserved and not read.
    assert_eq!(init_with(&api, AV1, tf(AV1, 4, 1, false)).0, SUCCESS);
    let api = Api::new(abi::SDK_13_0);
    assert_eq!(init_with(&api, AV1, tf(AV1, 4, 5, false)).0, SUCCESS);
    assert_eq!(init_with(&api, AV1, tf(AV1, 4, 1, false)).0, INVALID_PARAM);
    // H.264 (13.0): the Ada model has no temporal filter for it.
    assert_eq!(
        init_with(&api, H264, tf(H264, 4, 5, false)).0,
        UNSUPPORTED_PARAM
    );
    drop(_g);
    let _g = env(&[("NVEMU_GPU", "ampere")]);
    assert_eq!(
        init_with(&api, HEVC, tf(HEVC, 4, 5, false)).0,
        UNSUPPORTED_PARAM
    );
}

#[test]
fn ltr_configuration_rules() {
    let _g = env(&[]);
    let ltr = |codec: &'static str, n: u64, trust: u64, fip: u64| {
        move |cfg: &S, _: &S| {
            let cc = codec_cfg(codec);
            cfg.set("frameIntervalP", fip)
                .set(&format!("{cc}enableLTR"), 1)
                .set(&format!("{cc}ltrNumFrames"), n)
                .set(&format!("{cc}ltrTrustMode"), trust);
        }
    };
    let api = Api::new(abi::SDK_12_1);
    assert_eq!(init_with(&api, HEVC, ltr(HEVC, 2, 0, 1)).0, SUCCESS);
    assert_eq!(init_with(&api, H264, ltr(H264, 8, 1, 1)).0, SUCCESS);
    let (st, err) = init_with(&api, HEVC, ltr(HEVC, 2, 0, 3));
    assert_eq!(st, INVALID_PARAM, "with B-frames");
    assert!(err.contains("B-frames"), "{err}");
    assert_eq!(
        init_with(&api, HEVC, ltr(HEVC, 8, 0, 1)).0,
        INVALID_PARAM,
        "8 > 7"
    );
    assert_eq!(
        init_with(&api, HEVC, ltr(HEVC, 0, 0, 1)).0,
        INVALID_PARAM,
        "0 frames"
    );
    assert_eq!(
        init_with(&api, HEVC, ltr(HEVC, 2, 2, 1)).0,
        INVALID_PARAM,
        "trust 2"
    );
    // AV1's enableLTR is a 13.0 field (in 12.1 the same bit is the input bit depth).
    let api = Api::new(abi::SDK_13_0);
    assert_eq!(init_with(&api, AV1, ltr(AV1, 6, 0, 1)).0, SUCCESS);
    assert_eq!(init_with(&api, AV1, ltr(AV1, 7, 0, 1)).0, INVALID_PARAM);
}

/// Per-picture LTR: marks reported by LockBitstream, a mark outside ltrNumFrames, use
/// without LTR, and per-picture control in trust mode are contract violations.
#[test]
fn per_picture_ltr_and_trust_mode() {
    let _g = env(&[]);
    let api = Api::new(abi::SDK_13_0);
    let nv12 = fmt(abi::SDK_13_0, "NV12");
    for codec in [HEVC, AV1, H264] {
        let enc = api.session(codec, 320, 240, 1, |cfg| {
            let cc = codec_cfg(codec);
            cfg.set(&format!("{cc}enableLTR"), 1)
                .set(&format!("{cc}ltrNumFrames"), 2);
        });
        let (_, inb) = api.create_input(enc, 320, 240, nv12);
        let (_, out) = api.create_bitstream(enc);
        let pp = match codec {
            HEVC => "codecPicParams.hevcPicParams.",
            AV1 => "codecPicParams.av1PicParams.",
            _ => "codecPicParams.h264PicParams.",
        };
        let pic = |n: u32, f: &dyn Fn(&S)| {
            api.fill_nv12(enc, inb, 320, 240, n);
            let p = api.pic_params(inb, out, nv12, n as u64, 0, n);
            f(&p);
            api.encode_raw(enc, &p)
        };
        assert_eq!(
            pic(0, &|p| {
                p.set(&format!("{pp}ltrMarkFrame"), 1)
                    .set(&format!("{pp}ltrMarkFrameIdx"), 1);
            }),
            SUCCESS,
            "{codec}"
        );
        let lock = S::with_ver(
            abi::SDK_13_0,
            "NV_ENC_LOCK_BITSTREAM",
            "NV_ENC_LOCK_BITSTREAM_VER",
        );
        lock.set("outputBitstream", out as u64);
        let f: extern "C" fn(Ptr, Ptr) -> i32 = api.entry("nvEncLockBitstream");
        assert_eq!(f(enc, lock.ptr()), SUCCESS);
        assert_eq!(
            (lock.get("ltrFrame"), lock.get("ltrFrameIdx")),
            (1, 1),
            "{codec}"
        );
        assert_eq!(api.unlock_bs(enc, out), SUCCESS);
        assert_eq!(
            pic(1, &|p| {
                p.set(&format!("{pp}ltrUseFrames"), 1)
                    .set(&format!("{pp}ltrUseFrameBitmap"), 0b10);
            }),
            SUCCESS
        );
        assert_eq!(api.take(enc, out).status, SUCCESS);
        assert_eq!(
            pic(2, &|p| {
                p.set(&format!("{pp}ltrMarkFrame"), 1)
                    .set(&format!("{pp}ltrMarkFrameIdx"), 2);
            }),
            INVALID_PARAM,
            "{codec}: index 2 of 2"
        );
        assert_eq!(
            pic(2, &|p| {
                p.set(&format!("{pp}ltrUseFrames"), 1)
                    .set(&format!("{pp}ltrUseFrameBitmap"), 0b100);
            }),
            INVALID_PARAM
        );
        api.destroy(enc);
    }
    // No LTR in the session: per-picture controls are a violation.
    let enc = api.session(HEVC, 320, 240, 1, |_| {});
    let (_, inb) = api.create_input(enc, 320, 240, nv12);
    let (_, out) = api.create_bitstream(enc);
    api.fill_nv12(enc, inb, 320, 240, 0);
    let p = api.pic_params(inb, out, nv12, 0, 0, 0);
    p.set("codecPicParams.hevcPicParams.ltrMarkFrame", 1);
    assert_eq!(api.encode_raw(enc, &p), INVALID_PARAM);
    assert!(api.last_error(enc).contains("without enableLTR"));
    api.destroy(enc);
    // Trust mode: the first ltrNumFrames pictures of each IDR period are marked 0, 1, ...
    let enc = api.session(HEVC, 320, 240, 1, |cfg| {
        let cc = codec_cfg(HEVC);
        cfg.set(&format!("{cc}enableLTR"), 1)
            .set(&format!("{cc}ltrNumFrames"), 2)
            .set(&format!("{cc}ltrTrustMode"), 1);
    });
    let (_, inb) = api.create_input(enc, 320, 240, nv12);
    let (_, out) = api.create_bitstream(enc);
    let f: extern "C" fn(Ptr, Ptr) -> i32 = api.entry("nvEncLockBitstream");
    let mut marks = Vec::new();
    for n in 0..4u32 {
        api.fill_nv12(enc, inb, 320, 240, n);
        assert_eq!(api.encode(enc, inb, out, nv12, n as u64, 0), SUCCESS);
        let lock = S::with_ver(
            abi::SDK_13_0,
            "NV_ENC_LOCK_BITSTREAM",
            "NV_ENC_LOCK_BITSTREAM_VER",
        );
        lock.set("outputBitstream", out as u64);
        assert_eq!(f(enc, lock.ptr()), SUCCESS);
        marks.push((lock.get("ltrFrame"), lock.get("ltrFrameIdx")));
        assert_eq!(api.unlock_bs(enc, out), SUCCESS);
    }
    assert_eq!(marks, [(1, 0), (1, 1), (0, 0), (0, 0)]);
    let p = api.pic_params(inb, out, nv12, 9, 0, 4);
    p.set("codecPicParams.hevcPicParams.ltrMarkFrame", 1);
    assert_eq!(
        api.encode_raw(enc, &p),
        INVALID_PARAM,
        "per-picture in trust mode"
    );
    api.destroy(enc);
}

/// With a lookahead level (or UHQ tuning) frameIdx must count up from 0: another value is a
/// traced violation (the picture is still encoded: the driver's reaction is unknown).
#[test]
fn frame_idx_must_count_up_with_lookahead_level() {
    let path = std::env::temp_dir().join(format!("nvemu-sdkext-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let _g = env(&[("NVEMU_TRACE", path.to_str().unwrap())]);
    let api = Api::new(abi::SDK_12_2);
    let nv12 = fmt(abi::SDK_12_2, "NV12");
    let enc = api.session(HEVC, 320, 240, 1, |cfg| {
        cfg.set("rcParams.enableLookahead", 1)
            .set("rcParams.lookaheadDepth", 4)
            .set("rcParams.lookaheadLevel", 2);
    });
    let (_, inb) = api.create_input(enc, 320, 240, nv12);
    let (_, out) = api.create_bitstream(enc);
    for (n, idx) in [(0u32, 0u32), (1, 1), (2, 5)] {
        api.fill_nv12(enc, inb, 320, 240, n);
        let p = api.pic_params(inb, out, nv12, n as u64, 0, idx);
        assert_eq!(api.encode_raw(enc, &p), SUCCESS);
        assert_eq!(api.take(enc, out).status, SUCCESS);
    }
    api.destroy(enc);
    let text = std::fs::read_to_string(&path).unwrap();
    let violations: Vec<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["call"] == "nvEncEncodePicture")
        .filter_map(|l| l.get("violation").map(|v| v.to_string()))
        .collect();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(
        violations[0].contains("frameIdx 5, expected 2"),
        "{violations:?}"
    );
    let _ = std::fs::remove_file(&path);
}

/// The UHQ preset of the Ada model carries lookahead level 3 and tfLevel 4 (a real driver's
/// P7/UHQ, reference §1.4), with 4 B-frames; unchanged, it initialises.
#[test]
fn uhq_preset_has_lookahead_level_and_temporal_filter() {
    let _g = env(&[]);
    let api = Api::new(abi::SDK_12_2);
    let (_, enc) = api.open();
    let (st, cfg) = api.preset(enc, HEVC, "NV_ENC_PRESET_P7_GUID", 5);
    assert_eq!(st, SUCCESS);
    assert_eq!(cfg.get("rcParams.lookaheadLevel"), 3);
    assert_eq!(cfg.get("encodeCodecConfig.hevcConfig.tfLevel"), 4);
    assert_eq!(cfg.get("frameIntervalP"), 5);
    let ip = api.init_params(HEVC, 320, 240, &cfg);
    ip.set("tuningInfo", 5);
    ip.v.set_guid("presetGUID", guid(abi::SDK_12_2, "NV_ENC_PRESET_P7_GUID"));
    assert_eq!(api.init_raw(enc, &ip), SUCCESS, "{}", api.last_error(enc));
    api.destroy(enc);
}
