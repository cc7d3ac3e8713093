//! The timing model (`NVEMU_TIMING=model`, `NVEMU_ENCODE_MS`) and the session cap per GPU model,
//! through the C ABI. Wall-clock tests: the model is a lower bound (a lock never returns before
//! the modelled hardware is done), so they check elapsed times against the model from below
//! exactly and from above with a margin for a loaded machine. The null backend (no software
//! encoding) keeps the host's own cost small.

mod common;
use common::*;
use nvidia_encode::Gpu;
use nvidia_encode::abi::{self, CodecKind};
use nvidia_encode::timing::{self, Mode};
use std::time::{Duration, Instant};

const HQ: u32 = 1;
const LL: u32 = 2;

fn env_model(gpu: &str) -> std::sync::MutexGuard<'static, ()> {
    env(&[
        ("NVEMU_GPU", gpu),
        ("NVEMU_TIMING", "model"),
        ("NVEMU_BACKEND", "null"),
    ])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The published figures, the interpolation and the size scaling, exactly.
#[test]
fn figures_and_formula() {
    // NVENC Application Note 13.0, HEVC table, Ada column, VBR HQ rows.
    assert_eq!(
        timing::published_fps(Gpu::Ada, CodecKind::Hevc, 1, false),
        Some(1037.0)
    );
    assert_eq!(
        timing::published_fps(Gpu::Ada, CodecKind::Hevc, 7, false),
        Some(181.0)
    );
    assert_eq!(
        timing::published_fps(Gpu::Ada, CodecKind::Hevc, 1, true),
        Some(1055.0)
    );
    assert_eq!(
        timing::published_fps(Gpu::Ada, CodecKind::Av1, 5, true),
        Some(512.0)
    );
    assert_eq!(
        timing::published_fps(Gpu::Ada, CodecKind::H264, 7, false),
        Some(211.0)
    );
    assert_eq!(
        timing::published_fps(Gpu::Ampere, CodecKind::H264, 3, true),
        Some(613.0)
    );
    assert_eq!(
        timing::published_fps(Gpu::Turing, CodecKind::Hevc, 7, false),
        Some(171.0)
    );
    // Not published: even presets, AV1 before Ada, no NVENC.
    assert_eq!(
        timing::published_fps(Gpu::Ada, CodecKind::Hevc, 4, false),
        None
    );
    assert_eq!(
        timing::published_fps(Gpu::Ampere, CodecKind::Av1, 1, false),
        None
    );
    assert_eq!(
        timing::published_fps(Gpu::NoNvenc, CodecKind::Hevc, 1, false),
        None
    );
    // P4: the mean of the P3 and P5 times.
    let p4 = timing::fps_1080p(Gpu::Ada, CodecKind::Hevc, 4, HQ).unwrap();
    assert!(
        (p4 - 2.0 / (1.0 / 706.0 + 1.0 / 411.0)).abs() < 1e-9,
        "{p4}"
    );
    // Tuning picks the row: ultra-low latency -> LL, ultra-high quality -> HQ.
    assert_eq!(
        timing::fps_1080p(Gpu::Ada, CodecKind::Hevc, 7, 3),
        Some(343.0)
    );
    assert_eq!(
        timing::fps_1080p(Gpu::Ada, CodecKind::Hevc, 7, 5),
        Some(181.0)
    );
    // P7 / P1 time ratio is the published fps ratio; 2160p is 4 x 1080p.
    let t = |p, w, h| timing::picture_time(Gpu::Ada, CodecKind::Hevc, p, HQ, w, h).unwrap();
    let ratio = t(7, 1920, 1080).as_secs_f64() / t(1, 1920, 1080).as_secs_f64();
    assert!((ratio / (1037.0 / 181.0) - 1.0).abs() < 1e-6, "{ratio}");
    let r4k = t(4, 3840, 2160).as_secs_f64() / t(4, 1920, 1080).as_secs_f64();
    assert!((r4k / 4.0 - 1.0).abs() < 1e-6, "{r4k}");
    assert!((ms(t(7, 1920, 1080)) - 1000.0 / 181.0).abs() < 1e-3);
    // Engines and split-frame strips.
    assert_eq!(Gpu::Ada.nvenc_engines(), 2);
    assert_eq!(Gpu::Ampere.nvenc_engines(), 1);
    assert_eq!(Gpu::Turing.nvenc_engines(), 1);
    assert_eq!(
        timing::strips(Gpu::Ada, CodecKind::Hevc, 0),
        1,
        "auto: no split"
    );
    assert_eq!(
        timing::strips(Gpu::Ada, CodecKind::Hevc, 1),
        2,
        "auto forced"
    );
    assert_eq!(timing::strips(Gpu::Ada, CodecKind::Av1, 2), 2);
    assert_eq!(
        timing::strips(Gpu::Ada, CodecKind::Hevc, 3),
        2,
        "at most the engines"
    );
    assert_eq!(timing::strips(Gpu::Ada, CodecKind::Hevc, 15), 1, "disabled");
    assert_eq!(
        timing::strips(Gpu::Ada, CodecKind::H264, 2),
        1,
        "never H.264"
    );
    assert_eq!(
        timing::strips(Gpu::Ampere, CodecKind::Hevc, 2),
        1,
        "one engine"
    );
    // The programming guide's implicit split (AUTO): 2+ engines, tall pictures, fast presets.
    let implicit = |g, c, p, t, h| timing::implicit_split(g, c, p, t, h);
    assert!(implicit(Gpu::Ada, CodecKind::Hevc, 2, HQ, 2160));
    assert!(!implicit(Gpu::Ada, CodecKind::Hevc, 3, HQ, 2160), "P3 HQ");
    assert!(implicit(Gpu::Ada, CodecKind::Hevc, 4, LL, 2160));
    assert!(
        !implicit(Gpu::Ada, CodecKind::Hevc, 1, LL, 2100),
        "below 2112"
    );
    assert!(implicit(Gpu::Ada, CodecKind::Av1, 1, 3, 2048));
    assert!(!implicit(Gpu::Ada, CodecKind::H264, 1, LL, 4096));
    assert!(
        !implicit(Gpu::Ampere, CodecKind::Hevc, 1, LL, 2160),
        "one engine"
    );
}

#[test]
fn mode_from_environment() {
    let _g = env(&[]);
    assert_eq!(timing::mode_from_env(), Mode::Off);
    drop(_g);
    let _g = env(&[("NVEMU_TIMING", "model")]);
    assert_eq!(timing::mode_from_env(), Mode::Published);
    drop(_g);
    // NVEMU_ENCODE_MS is the explicit override, 0 = no model.
    let _g = env(&[("NVEMU_TIMING", "model"), ("NVEMU_ENCODE_MS", "2.5")]);
    assert_eq!(
        timing::mode_from_env(),
        Mode::Fixed(Duration::from_micros(2500))
    );
    drop(_g);
    let _g = env(&[("NVEMU_TIMING", "model"), ("NVEMU_ENCODE_MS", "0")]);
    assert_eq!(timing::mode_from_env(), Mode::Off);
}

/// A session: preset `preset`, tuning `tuning`, no B-frames, split mode `split`.
fn open(api: &Api, codec: &str, (w, h): (u32, u32), preset: u32, tuning: u32, split: u32) -> Ptr {
    let (st, enc) = api.open();
    assert_eq!(st, SUCCESS, "open");
    let pname = format!("NV_ENC_PRESET_P{preset}_GUID");
    let (st, cfg) = api.preset(enc, codec, &pname, tuning);
    assert_eq!(st, SUCCESS, "preset");
    cfg.set("gopLength", 30)
        .set("frameIntervalP", 1)
        .set("rcParams.enableLookahead", 0);
    cfg.set(&format!("{}idrPeriod", codec_cfg(codec)), 30);
    let p = api.init_params(codec, w, h, &cfg);
    p.v.set_guid("presetGUID", guid(api.sdk, &pname));
    p.set("tuningInfo", tuning as u64)
        .set("splitEncodeMode", split as u64);
    assert_eq!(
        api.init_raw(enc, &p),
        SUCCESS,
        "init: {}",
        api.last_error(enc)
    );
    enc
}

/// Submits `n` frames to each of the sessions (all of the first, then all of the next: the
/// model must still run them in parallel where there are engines), then locks every buffer.
/// Returns the time from the first submission to the last lock.
fn run(api: &Api, sessions: &[Ptr], (w, h): (u32, u32), n: usize) -> Duration {
    let nv12 = fmt(api.sdk, "NV12");
    let bufs: Vec<(Ptr, Vec<Ptr>)> = sessions
        .iter()
        .map(|&enc| {
            let (st, inb) = api.create_input(enc, w, h, nv12);
            assert_eq!(st, SUCCESS);
            let outs = (0..n).map(|_| api.create_bitstream(enc).1).collect();
            (inb, outs)
        })
        .collect();
    let start = Instant::now();
    for (&enc, (inb, outs)) in sessions.iter().zip(&bufs) {
        for (i, &out) in outs.iter().enumerate() {
            assert_eq!(api.encode(enc, *inb, out, nv12, i as u64, 0), SUCCESS);
        }
    }
    for (&enc, (_, outs)) in sessions.iter().zip(&bufs) {
        for &out in outs {
            api.take(enc, out);
        }
    }
    let elapsed = start.elapsed();
    for &enc in sessions {
        assert_eq!(api.destroy(enc), SUCCESS);
    }
    elapsed
}

/// `got` is at least `model` (less 1 ms for the start of the clock) and at most 1.3 x `model`
/// plus 40 ms.
fn near(got: Duration, model: f64, what: &str) {
    let g = ms(got);
    assert!(
        g >= model - 1.0 && g <= model * 1.3 + 40.0,
        "{what}: {g:.1} ms, model {model:.1} ms"
    );
}

const FHD: (u32, u32) = (1920, 1080);

/// Two sessions on the 2-engine Ada model take about the time of one; on the 1-engine Ampere
/// model about twice.
#[test]
fn sessions_share_the_engines() {
    let n = 40;
    for (gpu, model, engines) in [("ada", Gpu::Ada, 2.0), ("ampere", Gpu::Ampere, 1.0)] {
        let _g = env_model(gpu);
        let api = Api::new(abi::SDK_13_0);
        let t = ms(timing::picture_time(model, CodecKind::Hevc, 7, HQ, 1920, 1080).unwrap());
        let one = run(&api, &[open(&api, HEVC, FHD, 7, HQ, 0)], FHD, n);
        let pair = [
            open(&api, HEVC, FHD, 7, HQ, 0),
            open(&api, HEVC, FHD, 7, HQ, 0),
        ];
        let two = run(&api, &pair, FHD, n);
        eprintln!(
            "{gpu}: {t:.2} ms per 1080p P7 picture; one session {:.1} ms, two {:.1} ms for {n} frames each",
            ms(one),
            ms(two)
        );
        near(one, n as f64 * t, &format!("{gpu}: one session"));
        near(
            two,
            2.0 * n as f64 * t / engines,
            &format!("{gpu}: two sessions"),
        );
        let ratio = ms(two) / ms(one);
        if engines == 2.0 {
            assert!(ratio < 1.3, "{gpu}: two sessions took {ratio:.2} x one");
        } else {
            assert!(ratio > 1.7, "{gpu}: two sessions took {ratio:.2} x one");
        }
    }
}

/// P7 is slower than P1 by the published ratio (HEVC, high quality, Ada: 1037 / 181 fps).
#[test]
fn p7_is_slower_than_p1_by_the_published_ratio() {
    let _g = env_model("ada");
    let api = Api::new(abi::SDK_13_0);
    let (n1, n7) = (200, 40);
    let p1 = run(&api, &[open(&api, HEVC, FHD, 1, HQ, 0)], FHD, n1);
    let p7 = run(&api, &[open(&api, HEVC, FHD, 7, HQ, 0)], FHD, n7);
    near(p1, n1 as f64 * 1000.0 / 1037.0, "P1");
    near(p7, n7 as f64 * 1000.0 / 181.0, "P7");
    let ratio = (ms(p7) / n7 as f64) / (ms(p1) / n1 as f64);
    eprintln!(
        "P1 {:.3} ms/frame, P7 {:.3} ms/frame: ratio {ratio:.2} (published {:.2})",
        ms(p1) / n1 as f64,
        ms(p7) / n7 as f64,
        1037.0 / 181.0
    );
    assert!(
        (ratio / (1037.0 / 181.0) - 1.0).abs() < 0.2,
        "P7/P1 {ratio:.2}"
    );
}

/// 2160p takes 4 times as long as 1080p; AV1 P1 low latency runs at 1090 fps; split-frame encoding
/// (splitEncodeMode 2) halves a session's time on Ada, and is ignored for H.264.
#[test]
fn size_and_split_frame() {
    let _g = env_model("ada");
    let api = Api::new(abi::SDK_13_0);
    let uhd = (3840, 2160);
    let t4k = run(&api, &[open(&api, HEVC, uhd, 7, HQ, 0)], uhd, 10);
    near(t4k, 10.0 * 4.0 * 1000.0 / 181.0, "10 pictures 2160p P7");
    let split = run(&api, &[open(&api, HEVC, uhd, 7, HQ, 2)], uhd, 10);
    near(
        split,
        10.0 * 2.0 * 1000.0 / 181.0,
        "10 pictures 2160p P7, 2 strips",
    );
    let av1 = run(&api, &[open(&api, AV1, FHD, 1, LL, 0)], FHD, 160);
    near(av1, 160.0 * 1000.0 / 1090.0, "160 pictures 1080p AV1 P1 LL");
    let h264 = run(&api, &[open(&api, H264, FHD, 7, HQ, 2)], FHD, 20);
    near(
        h264,
        20.0 * 1000.0 / 211.0,
        "20 pictures 1080p H.264 P7, split asked",
    );
    eprintln!(
        "2160p HEVC P7: {:.1} ms, split in 2: {:.1} ms (10 frames)",
        ms(t4k),
        ms(split)
    );
}

/// `doNotWait` answers LOCK_BUSY until the modelled hardware is done; a blocking lock returns
/// when it is, not before.
#[test]
fn lock_wakes_when_the_hardware_finishes() {
    let _g = env_model("ada");
    let api = Api::new(abi::SDK_13_0);
    let enc = open(&api, HEVC, FHD, 7, HQ, 0);
    let t = 1000.0 / 181.0;
    let nv12 = fmt(api.sdk, "NV12");
    let (_, inb) = api.create_input(enc, FHD.0, FHD.1, nv12);
    let (_, out) = api.create_bitstream(enc);
    let start = Instant::now();
    assert_eq!(api.encode(enc, inb, out, nv12, 0, 0), SUCCESS);
    assert_eq!(api.lock_bs(enc, out, true).status, LOCK_BUSY);
    let o = api.lock_bs(enc, out, false);
    let waited = start.elapsed();
    assert_eq!(o.status, SUCCESS);
    assert_eq!(api.unlock_bs(enc, out), SUCCESS);
    near(waited, t, "blocking lock");
    // Once done, doNotWait succeeds at once.
    assert_eq!(api.encode(enc, inb, out, nv12, 1, 0), SUCCESS);
    std::thread::sleep(Duration::from_secs_f64((t + 5.0) / 1000.0));
    assert_eq!(api.lock_bs(enc, out, true).status, SUCCESS);
    assert_eq!(api.unlock_bs(enc, out), SUCCESS);
    assert_eq!(api.destroy(enc), SUCCESS);
}

/// GeForce models (ada, turing) refuse a ninth concurrent session with OUT_OF_MEMORY; the
/// professional ampere model (RTX A4000) has no cap; NVEMU_SESSION_LIMIT overrides (0 = none).
#[test]
fn session_cap_per_gpu_model() {
    const OUT_OF_MEMORY: i32 = 10;
    for (gpu, limit, cap) in [
        ("ada", "default", Some(8)),
        ("turing", "default", Some(8)),
        ("ampere", "default", None),
        ("ada", "0", None),
        ("ampere", "2", Some(2)),
    ] {
        let _g = env(&[("NVEMU_GPU", gpu), ("NVEMU_SESSION_LIMIT", limit)]);
        let api = Api::new(abi::SDK_13_0);
        let mut open = Vec::new();
        for i in 0..12 {
            let (st, enc) = api.open();
            if cap.is_some_and(|c| i >= c) {
                assert_eq!(st, OUT_OF_MEMORY, "{gpu} limit {limit}: session {}", i + 1);
                assert!(enc.is_null());
            } else {
                assert_eq!(st, SUCCESS, "{gpu} limit {limit}: session {}", i + 1);
                open.push(enc);
            }
        }
        // Closing one makes room for one.
        if cap.is_some() {
            assert_eq!(api.destroy(open.pop().unwrap()), SUCCESS);
            let (st, enc) = api.open();
            assert_eq!(st, SUCCESS, "{gpu}: after closing one");
            open.push(enc);
        }
        let engines = if gpu == "ada" { 2 } else { 1 };
        assert_eq!(
            api.caps(open[0], HEVC, "NUM_ENCODER_ENGINES"),
            (SUCCESS, engines)
        );
        for enc in open {
            assert_eq!(api.destroy(enc), SUCCESS);
        }
    }
}

/// `NVEMU_ENCODE_MS` still gives every picture that time, whatever the preset or size.
#[test]
fn fixed_time_override() {
    let _g = env(&[
        ("NVEMU_TIMING", "model"),
        ("NVEMU_ENCODE_MS", "4"),
        ("NVEMU_BACKEND", "null"),
    ]);
    let api = Api::new(abi::SDK_13_0);
    let got = run(
        &api,
        &[open(&api, HEVC, (320, 240), 1, HQ, 0)],
        (320, 240),
        30,
    );
    near(got, 30.0 * 4.0, "30 pictures at NVEMU_ENCODE_MS=4");
}
