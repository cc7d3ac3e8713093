//! Lossless encoding (issue 10): `NV_ENC_CAPS_SUPPORT_LOSSLESS_ENCODE` as real Turing, Ampere
//! and Ada GPUs report it (H.264 and H.265 1, AV1 0), and the lossless tuning at
//! nvEncInitializeEncoder (the coding itself: nvemu/swenc/tests/lossless.rs).

mod common;
use common::*;
use nvidia_encode::abi;

/// Initialises a fresh session with the lossless tuning (its preset config, as FFmpeg and
/// PyNvVideoCodec do), after `tweak`; the status and the last error.
fn init_lossless(api: &Api, codec: &str, tweak: impl Fn(&S, &S)) -> (i32, String) {
    let (st, enc) = api.open();
    assert_eq!(st, SUCCESS, "open");
    let (st, cfg) = api.preset(enc, codec, "NV_ENC_PRESET_P4_GUID", 4);
    assert_eq!(st, SUCCESS, "preset");
    assert_eq!(
        cfg.get("rcParams.rateControlMode"),
        0,
        "{codec}: constant QP"
    );
    assert_eq!(cfg.get("rcParams.constQP.qpInterP"), 0, "{codec}: QP 0");
    let ip = api.init_params(codec, 320, 240, &cfg);
    ip.set("tuningInfo", 4);
    tweak(&cfg, &ip);
    let st = api.init_raw(enc, &ip);
    let err = api.last_error(enc);
    api.destroy(enc);
    (st, err)
}

#[test]
fn lossless_cap_and_tuning() {
    for gpu in ["ada", "ampere", "turing"] {
        let _g = env(&[("NVEMU_GPU", gpu)]);
        for sdk in [abi::SDK_12_1, abi::SDK_13_0] {
            let api = Api::new(sdk);
            let (_, enc) = api.open();
            for codec in [H264, HEVC] {
                assert_eq!(
                    api.caps(enc, codec, "SUPPORT_LOSSLESS_ENCODE"),
                    (SUCCESS, 1),
                    "{gpu} {codec}"
                );
                let (st, err) = init_lossless(&api, codec, |_, _| {});
                assert_eq!(st, SUCCESS, "{gpu} {codec}: {err}");
            }
            if gpu == "ada" {
                assert_eq!(
                    api.caps(enc, AV1, "SUPPORT_LOSSLESS_ENCODE"),
                    (SUCCESS, 0),
                    "ada AV1"
                );
                let (st, _) = init_lossless(&api, AV1, |_, _| {});
                assert_eq!(st, UNSUPPORTED_PARAM, "lossless AV1");
            }
            api.destroy(enc);
        }
    }
}

#[test]
fn lossless_h264_profile() {
    let _g = env(&[]);
    let api = Api::new(abi::SDK_13_0);
    let high_444 = guid(api.sdk, "NV_ENC_H264_PROFILE_HIGH_444_GUID");
    let (st, err) = init_lossless(&api, H264, |cfg, _| cfg.v.set_guid("profileGUID", high_444));
    assert_eq!(st, SUCCESS, "{err}");
    let high = guid(api.sdk, "NV_ENC_H264_PROFILE_HIGH_GUID");
    let (st, err) = init_lossless(&api, H264, |cfg, _| cfg.v.set_guid("profileGUID", high));
    assert_eq!(st, INVALID_PARAM, "lossless with High: {err}");
}
