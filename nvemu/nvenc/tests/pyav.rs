//! FFmpeg 8 (libavcodec 62, nv-codec-headers 13.0, as bundled in PyAV 18.1) on the stand-ins:
//! `h264_nvenc`, `hevc_nvenc` and `av1_nvenc` with their default settings (H.264 and H.265 with
//! B-frames) and with the low-latency tuning (`tune=ll`: no B-frames), 30 frames of 320x240 at
//! 25 fps each. The case script (`nvemu/tests/py/pyav_case.py`, checks in `nvcheck.py`)
//! requires: the MP4 decodes to 30 frames of that size, no contract violation and no deviation
//! noted by the emulator, API 13.0 with each struct version the SDK's, the tuning asked for.

mod pyclient;
use serde_json::json;

fn case(encoder: &str, low_latency: bool) {
    let py = need_python!();
    let name = format!(
        "pyav-{encoder}-{}",
        if low_latency { "ll" } else { "default" }
    );
    let mut c = json!({"encoder": encoder});
    if low_latency {
        c["options"] = json!({"tune": "ll"});
        c["bframes"] = json!(false);
    } else if encoder != "av1_nvenc" {
        c["bframes"] = json!(true);
    }
    let v = pyclient::run_case(&py, "pyav_case.py", &name, &c, &[]);
    assert_eq!(v["frames"], 30, "{name}");
    assert_eq!(v["size"], json!([320, 240]), "{name}");
    // NV_ENC_TUNING_INFO_HIGH_QUALITY 1, LOW_LATENCY 2
    assert_eq!(v["tuningInfo"], if low_latency { 2 } else { 1 }, "{name}");
}

#[test]
fn ffmpeg8_h264_nvenc() {
    case("h264_nvenc", false);
    case("h264_nvenc", true);
}

#[test]
fn ffmpeg8_hevc_nvenc() {
    case("hevc_nvenc", false);
    case("hevc_nvenc", true);
}

#[test]
fn ffmpeg8_av1_nvenc() {
    case("av1_nvenc", false);
    case("av1_nvenc", true);
}
