//! Emphasis level maps (`NV_ENC_QP_MAP_EMPHASIS`): `NVEMU_CAPS` makes a model report
//! `NV_ENC_CAPS_SUPPORT_EMPHASIS_LEVEL_MAP`; nvEncInitializeEncoder takes the mode for H.264
//! where the cap is 1 and AQ is off, and refuses it otherwise (nvEncodeAPI.h: "only supported
//! for H264", "not supported when AQ (Spatial/Temporal) is enabled").

mod common;
use common::*;
use nvidia_encode::abi;

/// Initialises a fresh `codec` session (P4, high quality) with `qpMapMode` 1 (EMPHASIS),
/// after `tweak`; the status and the last error.
fn init_emphasis(api: &Api, codec: &str, tweak: impl Fn(&S)) -> (i32, String) {
    let (st, enc) = api.open();
    assert_eq!(st, SUCCESS, "open");
    let (st, cfg) = api.preset(enc, codec, "NV_ENC_PRESET_P4_GUID", 1);
    assert_eq!(st, SUCCESS, "preset");
    cfg.set("rcParams.qpMapMode", 1);
    cfg.set("rcParams.enableAQ", 0);
    cfg.set("rcParams.enableTemporalAQ", 0);
    tweak(&cfg);
    let ip = api.init_params(codec, 320, 240, &cfg);
    let st = api.init_raw(enc, &ip);
    let err = api.last_error(enc);
    api.destroy(enc);
    (st, err)
}

#[test]
fn emphasis_cap_override_and_rules() {
    let api = Api::new(abi::SDK_13_0);
    {
        let _g = env(&[]);
        let (_, enc) = api.open();
        assert_eq!(
            api.caps(enc, H264, "SUPPORT_EMPHASIS_LEVEL_MAP"),
            (SUCCESS, 0)
        );
        api.destroy(enc);
        let (st, err) = init_emphasis(&api, H264, |_| {});
        assert_eq!(st, UNSUPPORTED_PARAM, "no cap: {err}");
    }
    let _g = env(&[("NVEMU_CAPS", "h264:SUPPORT_EMPHASIS_LEVEL_MAP=1")]);
    let (_, enc) = api.open();
    assert_eq!(
        api.caps(enc, H264, "SUPPORT_EMPHASIS_LEVEL_MAP"),
        (SUCCESS, 1)
    );
    assert_eq!(
        api.caps(enc, HEVC, "SUPPORT_EMPHASIS_LEVEL_MAP"),
        (SUCCESS, 0)
    );
    api.destroy(enc);
    let (st, err) = init_emphasis(&api, H264, |_| {});
    assert_eq!(st, SUCCESS, "H.264 with the cap: {err}");
    for aq in ["rcParams.enableAQ", "rcParams.enableTemporalAQ"] {
        let (st, err) = init_emphasis(&api, H264, |c| {
            c.set(aq, 1);
        });
        assert_eq!(st, UNSUPPORTED_PARAM, "{aq}: {err}");
        assert!(err.contains("AQ"), "{err}");
    }
    let (st, err) = init_emphasis(&api, HEVC, |_| {});
    assert_eq!(st, UNSUPPORTED_PARAM, "H.265: {err}");
}
