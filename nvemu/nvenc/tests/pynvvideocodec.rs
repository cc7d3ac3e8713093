//! NVIDIA's own encoder client, PyNvVideoCodec 2.2.4 (its SDK 13.0 and 12.1 builds, picked by
//! `NvEncodeAPIGetMaxSupportedVersion`), on the stand-ins: H.264, H.265 with B-frames and AV1,
//! 8-bit (NV12) and 10-bit (P010), CBR and constant QP, 30 frames each. The case script
//! (`nvemu/tests/py/pynvc_case.py`, checks in `nvcheck.py`) requires: the output decodes to 30
//! frames of 320x240 in the right pixel format, no contract violation and no deviation noted by
//! the emulator, every session at the API asked for with each struct version the SDK's, the
//! rate-control mode asked for, B pictures where asked. And `Reconfigure` mid-stream.

mod pyclient;
use serde_json::json;

/// `api`: the maximum the NVENC stand-in reports (`NVEMU_MAX_API`): PyNvVideoCodec loads its
/// 13.0 build for 13.0, its 12.1 build for 12.1.
fn case(api: &str, codec: &str, fmt: &str, rc: &str, bf: u32) {
    let py = need_python!();
    let name = format!("pynvc-{api}-{codec}-{fmt}-{rc}-bf{bf}");
    let v = pyclient::run_case(
        &py,
        "pynvc_case.py",
        &name,
        &json!({"codec": codec, "fmt": fmt, "rc": rc, "bf": bf}),
        &[("NVEMU_MAX_API", api)],
    );
    assert_eq!(v["frames"], 30, "{name}");
    assert_eq!(v["size"], json!([320, 240]), "{name}");
    let pix = if fmt == "P010" {
        "yuv420p10le"
    } else {
        "yuv420p"
    };
    assert_eq!(v["pix"], pix, "{name}");
}

#[test]
fn pynvvideocodec_h264() {
    for api in ["13.0", "12.1"] {
        case(api, "h264", "NV12", "cbr", 0);
        case(api, "h264", "NV12", "constqp", 0);
    }
}

#[test]
fn pynvvideocodec_hevc_bframes() {
    for api in ["13.0", "12.1"] {
        case(api, "hevc", "NV12", "cbr", 2);
        case(api, "hevc", "P010", "constqp", 2);
    }
}

#[test]
fn pynvvideocodec_av1() {
    for api in ["13.0", "12.1"] {
        case(api, "av1", "NV12", "cbr", 0);
        case(api, "av1", "P010", "constqp", 0);
    }
}

/// `Reconfigure` at frame 30 (half the bitrate and VBV) and 60 (twice the frame rate): one
/// `nvEncReconfigureEncoder` each with `resetEncoder` and `forceIDR` 0, no other session or
/// initialisation, one IDR (the first picture) in the trace and one key frame in the stream,
/// and the packets follow the new rate (1 Mbit/s at 30 fps: 4167 bytes a frame, then 2083,
/// then 1042; each within -50% / +60%, measured after the encoder settled).
fn reconfigure(codec: &str) {
    let py = need_python!();
    let name = format!("pynvc-reconfigure-{codec}");
    let v = pyclient::run_case(
        &py,
        "pynvc_case.py",
        &name,
        &json!({"codec": codec, "rc": "cbr", "mode": "reconfigure"}),
        &[],
    );
    assert_eq!(v["keys"], 1, "{name}: {v}");
    assert_eq!(v["reconfigure"].as_array().map(Vec::len), Some(2), "{name}");
}

#[test]
fn pynvvideocodec_reconfigure_h264() {
    reconfigure("h264");
}

#[test]
fn pynvvideocodec_reconfigure_hevc() {
    reconfigure("hevc");
}
