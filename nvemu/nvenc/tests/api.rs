//! Contract tests of the NVENC stand-in, driven through its C ABI.

mod common;
use common::*;
use nvidia_encode::abi;

#[test]
fn version_negotiation_per_max_api() {
    for (name, val) in [
        ("11.1", 0xb1),
        ("12.0", 0xc0),
        ("12.1", 0xc1),
        ("12.2", 0xc2),
        ("13.0", 0xd0),
    ] {
        let _g = env(&[("NVEMU_MAX_API", name)]);
        assert_eq!(get_max_version(), (SUCCESS, val), "{name}");
        let max = sdk_of(name);
        for sdk in 0..abi::SDK_COUNT {
            let api = Api::new(sdk);
            let (st, enc) = api.open();
            if sdk <= max {
                assert_eq!(st, SUCCESS, "API {} under max {name}", abi::SDK_NAMES[sdk]);
                assert!(!enc.is_null());
                assert_eq!(api.destroy(enc), SUCCESS);
            } else {
                assert_eq!(
                    st,
                    INVALID_VERSION,
                    "API {} above max {name}",
                    abi::SDK_NAMES[sdk]
                );
                assert!(enc.is_null(), "*encoder must stay NULL on failure");
            }
        }
    }
    let _g = env(&[]);
    // SAFETY: the functions accept NULL (that is what is being tested).
    let st = unsafe { nvidia_encode::NvEncodeAPIGetMaxSupportedVersion(std::ptr::null_mut()) };
    assert_eq!(st, INVALID_PTR);
    // SAFETY: as above.
    let st = unsafe { nvidia_encode::NvEncodeAPICreateInstance(std::ptr::null_mut()) };
    assert_eq!(st, INVALID_PTR);
}

#[test]
fn open_session_checks() {
    let _g = env(&[]);
    let sdk = abi::SDK_13_0;
    let api = Api::new(sdk);
    let ver = abi::ver(sdk, "NV_ENC_OPEN_ENCODE_SESSION_EX_PARAMS_VER").unwrap();
    let apiv = abi::api_version(sdk);
    // revision 2 does not exist
    assert_eq!(
        api.open_with((ver & !0xff_0000) | (2 << 16), apiv, 1, 1).0,
        INVALID_VERSION
    );
    // apiVersion 14.0
    assert_eq!(api.open_with(ver, 0xe, 1, 1).0, INVALID_VERSION);
    // apiVersion differing from the struct's API
    assert_eq!(
        api.open_with(ver, abi::api_version(abi::SDK_12_2), 1, 1).0,
        INVALID_VERSION
    );
    assert_eq!(api.open_with(ver, apiv, 0, 1).0, INVALID_PTR);
    assert_eq!(api.open_with(ver, apiv, 1, 2).0, INVALID_DEVICE);
    assert_eq!(api.open_with(ver, apiv, 1, 0).0, UNSUPPORTED_DEVICE);
    assert_eq!(api.open_with(ver, apiv, 1, 1).0, SUCCESS);
}

#[test]
fn no_nvenc_gpu_is_unsupported_device() {
    let _g = env(&[("NVEMU_GPU", "no-nvenc")]);
    let api = Api::new(abi::SDK_13_0);
    let (st, enc) = api.open();
    assert_eq!(st, UNSUPPORTED_DEVICE);
    assert!(enc.is_null());
}

#[test]
fn gpu_models_and_caps() {
    let _g = env(&[("NVEMU_GPU", "ampere")]);
    let api = Api::new(abi::SDK_13_0);
    let (_, enc) = api.open();
    assert_eq!(api.guid_count(enc), (SUCCESS, 2));
    assert_eq!(api.caps(enc, AV1, "WIDTH_MAX").0, UNSUPPORTED_PARAM);
    drop(_g);
    let _g = env(&[]);
    let (_, enc) = api.open();
    assert_eq!(api.guid_count(enc), (SUCCESS, 3));
    assert_eq!(api.caps(enc, HEVC, "WIDTH_MAX"), (SUCCESS, 8192));
    assert_eq!(api.caps(enc, AV1, "NUM_MAX_BFRAMES"), (SUCCESS, 4));
    assert_eq!(api.caps(enc, AV1, "SUPPORT_10BIT_ENCODE"), (SUCCESS, 1));
    assert_eq!(api.caps(enc, AV1, "SUPPORT_YUV444_ENCODE"), (SUCCESS, 0));
    assert_eq!(api.caps(enc, HEVC, "SUPPORT_YUV444_ENCODE"), (SUCCESS, 1));
    assert_eq!(
        api.caps(enc, HEVC, "SUPPORT_DYN_BITRATE_CHANGE"),
        (SUCCESS, 1)
    );
    assert_eq!(api.caps(enc, HEVC, "WIDTH_MIN"), (SUCCESS, 145));
    assert_eq!(api.caps(enc, HEVC, "ASYNC_ENCODE_SUPPORT"), (SUCCESS, 0));
    // every enumerator of the API answers; an unknown one is INVALID_PARAM
    for (name, v) in abi::enums_with_prefix(abi::SDK_13_0, "NV_ENC_CAPS_") {
        if name == "NV_ENC_CAPS_EXPOSED_COUNT" {
            continue;
        }
        let p = S::with_ver(abi::SDK_13_0, "NV_ENC_CAPS_PARAM", "NV_ENC_CAPS_PARAM_VER");
        p.set("capsToQuery", v as u64);
        assert_eq!(api.caps_raw(enc, HEVC, &p).0, SUCCESS, "{name}");
    }
    let p = S::with_ver(abi::SDK_13_0, "NV_ENC_CAPS_PARAM", "NV_ENC_CAPS_PARAM_VER");
    p.set("capsToQuery", 999);
    assert_eq!(api.caps_raw(enc, HEVC, &p).0, INVALID_PARAM);
    // presets: plausible, whole struct written
    let (st, cfg) = api.preset(enc, HEVC, "NV_ENC_PRESET_P6_GUID", 1);
    assert_eq!(st, SUCCESS);
    assert_eq!(cfg.get("gopLength"), 250);
    assert_eq!(cfg.get("frameIntervalP"), 4);
    assert_eq!(cfg.get("rcParams.rateControlMode"), 1);
    assert_eq!(cfg.get("rcParams.constQP.qpIntra"), 25);
    assert_eq!(cfg.get("encodeCodecConfig.hevcConfig.idrPeriod"), 250);
    assert_eq!(cfg.get("encodeCodecConfig.hevcConfig.chromaFormatIDC"), 1);
    assert_eq!(
        cfg.get("encodeCodecConfig.hevcConfig.hevcVUIParameters.videoFormat"),
        5
    );
}

#[test]
fn bad_struct_versions_are_invalid_version() {
    let _g = env(&[]);
    let api = Api::new(abi::SDK_13_0);
    let (_, enc) = api.open();
    // CAPS_PARAM stamped with 12.2's API in a 13.0 session
    let p = S::new(abi::SDK_13_0, "NV_ENC_CAPS_PARAM");
    p.set(
        "version",
        abi::ver(abi::SDK_12_2, "NV_ENC_CAPS_PARAM_VER").unwrap() as u64,
    );
    p.set("capsToQuery", 0);
    assert_eq!(api.caps_raw(enc, HEVC, &p).0, INVALID_VERSION);
    // revision 9 of INITIALIZE_PARAMS does not exist
    let (_, cfg) = api.preset(enc, HEVC, "NV_ENC_PRESET_P4_GUID", 1);
    let ip = api.init_params(HEVC, 320, 240, &cfg);
    ip.set("version", 0xf009_000d);
    assert_eq!(api.init_raw(enc, &ip), INVALID_VERSION);
    assert!(
        api.last_error(enc).contains("version"),
        "{}",
        api.last_error(enc)
    );
    // an older revision (12.0's s5) with the 13.0 API is accepted, as GStreamer sends it
    let old = S::new(abi::SDK_12_0, "NV_ENC_INITIALIZE_PARAMS");
    // SAFETY: both buffers hold at least 1800 bytes.
    unsafe { std::ptr::copy_nonoverlapping(ip.v.base, old.v.base, 1800) };
    old.set("version", 0xf005_000d);
    old.set("encodeConfig", cfg.ptr() as u64);
    assert_eq!(api.init_raw(enc, &old), SUCCESS);
    // and initialising twice is an error
    assert_eq!(api.init_raw(enc, &old), INVALID_CALL);
}

#[test]
fn state_machine_and_lifecycle() {
    let _g = env(&[]);
    let api = Api::new(abi::SDK_13_0);
    let (_, enc) = api.open();
    assert_eq!(api.create_bitstream(enc).0, ENCODER_NOT_INITIALIZED);
    assert_eq!(api.seq_params(enc, 512).0, ENCODER_NOT_INITIALIZED);
    let (_, cfg) = api.preset(enc, HEVC, "NV_ENC_PRESET_P4_GUID", 1);
    let ip = api.init_params(HEVC, 320, 240, &cfg);
    ip.set("enableEncodeAsync", 1);
    assert_eq!(api.init_raw(enc, &ip), UNSUPPORTED_PARAM);
    ip.set("enableEncodeAsync", 0).set("enablePTD", 0);
    assert_eq!(api.init_raw(enc, &ip), UNSUPPORTED_PARAM);
    ip.set("enablePTD", 1).set("encodeWidth", 321);
    assert_eq!(
        api.init_raw(enc, &ip),
        INVALID_PARAM,
        "odd 4:2:0 HEVC width"
    );
    ip.set("encodeWidth", 320);
    cfg.set("frameIntervalP", 6);
    assert_eq!(api.init_raw(enc, &ip), INVALID_PARAM, "5 B-frames > cap 4");
    cfg.set("frameIntervalP", 1);
    assert_eq!(api.init_raw(enc, &ip), SUCCESS);
    assert!(!api.last_error(enc).is_empty());

    let nv12 = fmt(abi::SDK_13_0, "NV12");
    let (st, inb) = api.create_input(enc, 320, 240, nv12);
    assert_eq!(st, SUCCESS);
    let (st, _, pitch) = api.lock_input(enc, inb);
    assert_eq!(st, SUCCESS);
    assert!(pitch >= 320 && pitch % 256 == 0);
    let (_, out) = api.create_bitstream(enc);
    // a locked input buffer cannot be encoded
    assert_eq!(api.encode(enc, inb, out, nv12, 0, 0), INVALID_PARAM);
    assert_eq!(api.unlock_input(enc, inb), SUCCESS);
    assert_eq!(api.unlock_input(enc, inb), INVALID_PARAM, "unlock twice");
    // lock of a buffer with nothing submitted
    assert_eq!(api.lock_bs(enc, out, false).status, INVALID_PARAM);
    assert_eq!(api.encode(enc, inb, out, nv12, 0, 0), SUCCESS);
    let o = api.lock_bs(enc, out, false);
    assert_eq!(o.status, SUCCESS);
    assert_eq!(o.pic_type, PIC_IDR);
    // a locked bitstream buffer cannot be encoded into
    assert_eq!(api.encode(enc, inb, out, nv12, 1, 0), INVALID_PARAM);
    assert_eq!(api.unlock_bs(enc, out), SUCCESS);
    // wrong format
    assert_eq!(
        api.encode(enc, inb, out, fmt(abi::SDK_13_0, "YUV444"), 1, 0),
        INVALID_PARAM
    );
    // unknown handles
    assert_eq!(
        api.encode(enc, 0x1234 as Ptr, out, nv12, 1, 0),
        INVALID_PARAM
    );
    assert_eq!(api.destroy_input(enc, inb), SUCCESS);
    assert_eq!(api.destroy_input(enc, inb), INVALID_PARAM, "double destroy");
    assert_eq!(
        api.encode(enc, inb, out, nv12, 1, 0),
        INVALID_PARAM,
        "use after destroy"
    );
    assert_eq!(api.destroy_bitstream(enc, out), SUCCESS);
    assert_eq!(api.destroy_bitstream(enc, out), INVALID_PARAM);
    assert_eq!(api.destroy(enc), SUCCESS);
    assert_eq!(api.destroy(enc), INVALID_ENCODERDEVICE);
    assert_eq!(api.guid_count(enc).0, INVALID_ENCODERDEVICE);
    assert_eq!(api.last_error(enc), "invalid encoder handle");
}

#[test]
fn sequence_params() {
    let _g = env(&[]);
    let api = Api::new(abi::SDK_13_0);
    let enc = api.session(HEVC, 320, 240, 1, |_| {});
    let (st, seq) = api.seq_params(enc, 1024);
    assert_eq!(st, SUCCESS);
    assert!(!seq.is_empty());
    assert_eq!(api.seq_params(enc, 2).0, NOT_ENOUGH_BUFFER);
}

#[test]
fn cuda_resource_rules() {
    let _g = env(&[]);
    let api = Api::new(abi::SDK_13_0);
    let enc = api.session(HEVC, 320, 240, 1, |_| {});
    let nv12 = fmt(abi::SDK_13_0, "NV12");
    assert_eq!(
        api.register(enc, 0x1000, 320, 240, 322, nv12).0,
        INVALID_PARAM,
        "pitch % 4"
    );
    let (st, reg) = api.register(enc, 0x1000, 320, 240, 320, nv12);
    assert_eq!(st, SUCCESS);
    let (st, m) = api.map(enc, reg);
    assert_eq!(st, SUCCESS);
    assert_eq!(api.map(enc, reg).0, MAP_FAILED, "second map");
    assert_eq!(api.unmap(enc, m), SUCCESS);
    assert_eq!(api.unmap(enc, m), RESOURCE_NOT_MAPPED);
    assert_eq!(api.unmap(enc, 0x77 as Ptr), RESOURCE_NOT_REGISTERED);
    let (_, _m2) = api.map(enc, reg);
    // unregister while mapped is allowed at teardown
    assert_eq!(api.unregister(enc, reg), SUCCESS);
    assert_eq!(api.unregister(enc, reg), RESOURCE_NOT_REGISTERED);
    assert_eq!(api.map(enc, reg).0, RESOURCE_NOT_REGISTERED);
}

/// Reference §3.6 worked example: IBBP (frameIntervalP=3), F0..F5 then EOS.
#[test]
fn ibbp_worked_example_and_eos() {
    for codec in [HEVC, H264] {
        let _g = env(&[]);
        let api = Api::new(abi::SDK_13_0);
        let enc = api.session(codec, 320, 240, 3, |_| {});
        let nv12 = fmt(abi::SDK_13_0, "NV12");
        let (_, inb) = api.create_input(enc, 320, 240, nv12);
        let outs: Vec<Ptr> = (0..8).map(|_| api.create_bitstream(enc).1).collect();
        let mut sts = Vec::new();
        for i in 0..6u32 {
            api.fill_nv12(enc, inb, 320, 240, i);
            sts.push(api.encode(enc, inb, outs[i as usize], nv12, 100 * i as u64, 0));
            if i == 1 {
                // not lockable yet
                assert_eq!(api.lock_bs(enc, outs[1], true).status, LOCK_BUSY);
            }
        }
        assert_eq!(
            sts,
            [
                SUCCESS,
                NEED_MORE_INPUT,
                NEED_MORE_INPUT,
                SUCCESS,
                NEED_MORE_INPUT,
                NEED_MORE_INPUT
            ]
        );
        assert_eq!(api.lock_bs(enc, outs[4], true).status, LOCK_BUSY);
        assert_eq!(api.eos(enc), SUCCESS);
        assert_eq!(api.eos(enc), SUCCESS, "EOS is idempotent");
        let got: Vec<(u64, u32, u64, u32)> = (0..6)
            .map(|i| {
                let o = api.take(enc, outs[i]);
                assert!(!o.data.is_empty());
                (o.pts, o.pic_type, o.duration, o.frame_idx)
            })
            .collect();
        let expect = [
            (0, PIC_IDR),
            (300, PIC_P),
            (100, PIC_B),
            (200, PIC_B),
            (500, PIC_P),
            (400, PIC_B),
        ];
        for (i, ((pts, ty, dur, idx), (ep, et))) in got.iter().zip(expect).enumerate() {
            assert_eq!((*pts, *ty), (ep, et), "{codec} buf{i}");
            assert_eq!(*dur, 1000 + ep, "outputDuration echo");
            assert_eq!(
                *idx as u64, ep,
                "frameIdx echo (the test sends frameIdx = pts)"
            );
        }
        assert_eq!(api.eos(enc), SUCCESS, "EOS with nothing pending");
        // encoding goes on after EOS, with a new IDR
        api.fill_nv12(enc, inb, 320, 240, 6);
        assert_eq!(api.encode(enc, inb, outs[6], nv12, 600, 0), SUCCESS);
        assert_eq!(api.take(enc, outs[6]).pic_type, PIC_IDR);
        assert_eq!(api.destroy(enc), SUCCESS);
    }
}

#[test]
fn forceidr_closes_minigop_and_forceintra() {
    let _g = env(&[]);
    let api = Api::new(abi::SDK_13_0);
    let enc = api.session(HEVC, 320, 240, 3, |_| {});
    let nv12 = fmt(abi::SDK_13_0, "NV12");
    let (_, inb) = api.create_input(enc, 320, 240, nv12);
    let outs: Vec<Ptr> = (0..6).map(|_| api.create_bitstream(enc).1).collect();
    let flags = [0, 0, 0, 2, 0, 1];
    let mut sts = Vec::new();
    for i in 0..6 {
        api.fill_nv12(enc, inb, 320, 240, i as u32);
        sts.push(api.encode(enc, inb, outs[i], nv12, i as u64, flags[i]));
    }
    // F0 IDR; F1, F2 wait; F3 FORCEIDR closes them (F2 P, F1 B); F4 waits; F5 FORCEINTRA = I
    assert_eq!(
        sts,
        [
            SUCCESS,
            NEED_MORE_INPUT,
            NEED_MORE_INPUT,
            SUCCESS,
            NEED_MORE_INPUT,
            SUCCESS
        ]
    );
    let got: Vec<(u64, u32)> = (0..6)
        .map(|i| {
            let o = api.take(enc, outs[i]);
            (o.pts, o.pic_type)
        })
        .collect();
    assert_eq!(
        got,
        [
            (0, PIC_IDR),
            (2, PIC_P),
            (1, PIC_B),
            (3, PIC_IDR),
            (5, PIC_I),
            (4, PIC_B)
        ]
    );
}

#[test]
fn zero_reorder_delay_never_needs_more_input() {
    let _g = env(&[]);
    let api = Api::new(abi::SDK_13_0);
    let enc = api.session(HEVC, 320, 240, 3, |c| {
        c.set("rcParams.zeroReorderDelay", 1);
    });
    let nv12 = fmt(abi::SDK_13_0, "NV12");
    let (_, inb) = api.create_input(enc, 320, 240, nv12);
    for i in 0..5 {
        let (_, out) = api.create_bitstream(enc);
        assert_eq!(api.encode(enc, inb, out, nv12, i, 0), SUCCESS);
        assert_eq!(api.take(enc, out).pts, i);
    }
}

#[test]
fn blocking_lock_from_another_thread() {
    let _g = env(&[]);
    let api = std::sync::Arc::new(Api::new(abi::SDK_13_0));
    let enc = api.session(HEVC, 320, 240, 3, |_| {}) as usize;
    let nv12 = fmt(abi::SDK_13_0, "NV12");
    let (_, inb) = api.create_input(enc as Ptr, 320, 240, nv12);
    let outs: Vec<usize> = (0..4)
        .map(|_| api.create_bitstream(enc as Ptr).1 as usize)
        .collect();
    assert_eq!(
        api.encode(enc as Ptr, inb, outs[0] as Ptr, nv12, 0, 0),
        SUCCESS
    );
    assert_eq!(
        api.encode(enc as Ptr, inb, outs[1] as Ptr, nv12, 1, 0),
        NEED_MORE_INPUT
    );
    let (tx, rx) = std::sync::mpsc::channel();
    let a = api.clone();
    let o1 = outs[1];
    let t = std::thread::spawn(move || {
        let o = a.lock_bs(enc as Ptr, o1 as Ptr, false);
        tx.send((o.status, o.pts, o.pic_type)).unwrap();
        a.unlock_bs(enc as Ptr, o1 as Ptr)
    });
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(
        rx.try_recv().is_err(),
        "the lock must block until the buffer is filled"
    );
    assert_eq!(
        api.encode(enc as Ptr, inb, outs[2] as Ptr, nv12, 2, 0),
        NEED_MORE_INPUT
    );
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(rx.try_recv().is_err());
    assert_eq!(
        api.encode(enc as Ptr, inb, outs[3] as Ptr, nv12, 3, 0),
        SUCCESS
    );
    let got = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("lock returned");
    assert_eq!(got, (SUCCESS, 3, PIC_P));
    assert_eq!(t.join().unwrap(), SUCCESS);
}

#[test]
fn lock_bitstream_old_revisions_and_12_1_layout() {
    for sdk in 0..abi::SDK_COUNT {
        let _g = env(&[]);
        let api = Api::new(sdk);
        let enc = api.session(HEVC, 320, 240, 1, |_| {});
        let nv12 = fmt(sdk, "NV12");
        let (_, inb) = api.create_input(enc, 320, 240, nv12);
        let (_, out) = api.create_bitstream(enc);
        for i in 0..2u64 {
            assert_eq!(api.encode(enc, inb, out, nv12, 7 + i, 0), SUCCESS);
            // i == 1: GStreamer's LOCK_BITSTREAM s1 without bit 31
            let ver = if i == 0 {
                abi::ver(sdk, "NV_ENC_LOCK_BITSTREAM_VER").unwrap()
            } else {
                abi::api_version(sdk) | (1 << 16) | (7 << 28)
            };
            let o = api.lock_bs_ver(enc, out, false, ver);
            assert_eq!(o.status, SUCCESS, "sdk {sdk} ver {ver:#x}");
            assert_eq!(o.pts, 7 + i);
            if sdk >= abi::SDK_12_1 && i == 0 {
                assert_eq!(o.frame_idx_display, i as u32, "frameIdxDisplay (12.1+)");
            }
            assert_eq!(api.unlock_bs(enc, out), SUCCESS);
        }
    }
}

#[test]
fn trace_has_documented_names() {
    let path = std::env::temp_dir().join(format!("nvemu-trace-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let _g = env(&[("NVEMU_TRACE", path.to_str().unwrap())]);
    let api = Api::new(abi::SDK_13_0);
    let enc = api.session(AV1, 320, 240, 1, |_| {});
    let nv12 = fmt(abi::SDK_13_0, "NV12");
    let (_, inb) = api.create_input(enc, 320, 240, nv12);
    let (_, out) = api.create_bitstream(enc);
    api.fill_nv12(enc, inb, 320, 240, 0);
    assert_eq!(api.encode(enc, inb, out, nv12, 42, 0), SUCCESS);
    api.take(enc, out);
    assert_eq!(api.lock_bs(enc, out, false).status, INVALID_PARAM);
    api.destroy(enc);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let find = |c: &str| {
        lines
            .iter()
            .find(|l| l["call"] == c)
            .unwrap_or_else(|| panic!("{c}"))
    };
    let init = find("nvEncInitializeEncoder");
    assert_eq!(init["lib"], "nvenc");
    assert_eq!(init["status"], "NV_ENC_SUCCESS");
    assert_eq!(init["status_code"], 0);
    assert_eq!(init["api"], "13.0");
    let a = &init["args"];
    assert_eq!(a["version"], "0xf007000d");
    assert_eq!(a["encodeGUID"], "NV_ENC_CODEC_AV1_GUID");
    assert_eq!(a["presetGUID"], "NV_ENC_PRESET_P4_GUID");
    assert_eq!(a["encodeWidth"], 320);
    assert_eq!(a["encodeConfig.gopLength"], 30);
    assert_eq!(a["encodeConfig.frameIntervalP"], 1);
    assert_eq!(a["encodeConfig.rcParams.rateControlMode"], 1);
    assert_eq!(a["encodeConfig.rcParams.constQP.qpIntra"], 25);
    assert_eq!(a["encodeConfig.encodeCodecConfig.av1Config.idrPeriod"], 30);
    assert!(a.get("reserved1").is_none() && a.get("encodeConfig.reserved").is_none());
    let enc_line = find("nvEncEncodePicture");
    assert_eq!(enc_line["args"]["inputTimeStamp"], 42);
    assert!(
        enc_line["args"]
            .get("codecPicParams.av1PicParams.numTileColumns")
            .is_some()
    );
    let lock = find("nvEncLockBitstream");
    assert_eq!(lock["args"]["out.outputTimeStamp"], 42);
    assert_eq!(lock["args"]["out.pictureType"], PIC_IDR);
    assert!(lock["args"]["out.bitstreamSizeInBytes"].as_u64().unwrap() > 0);
    assert!(
        lines
            .iter()
            .any(|l| l["call"] == "nvEncLockBitstream" && l.get("violation").is_some())
    );
    let seqs: Vec<u64> = lines.iter().map(|l| l["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    let _ = std::fs::remove_file(&path);
}

/// Run by `strict_abort` in a child process.
#[test]
#[ignore]
fn strict_child() {
    let api = Api::new(abi::SDK_13_0);
    let (_, enc) = api.open();
    let _ = api.create_bitstream(enc); // ENCODER_NOT_INITIALIZED: a violation
    println!("NOT ABORTED");
}

#[test]
fn strict_abort() {
    let _g = env(&[]);
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "strict_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("NVEMU_STRICT", "abort")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("nvemu: contract violation in nvEncCreateBitstreamBuffer:"),
        "{err}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("NOT ABORTED"));
}

/// Periodic IDRs (idrPeriod 6) with IBBP, and periodic non-IDR I frames (gopLength 4 <
/// idrPeriod 8) without B-frames.
#[test]
fn periodic_idr_and_i_frames() {
    let _g = env(&[]);
    let api = Api::new(abi::SDK_13_0);
    let run = |fip: u32, gop: u64, idr: u64, n: u64| -> Vec<(u64, u32)> {
        let enc = api.session(HEVC, 320, 240, fip, |c| {
            c.set("gopLength", gop);
            c.set("encodeCodecConfig.hevcConfig.idrPeriod", idr);
        });
        let nv12 = fmt(abi::SDK_13_0, "NV12");
        let (_, inb) = api.create_input(enc, 320, 240, nv12);
        let outs: Vec<Ptr> = (0..n).map(|_| api.create_bitstream(enc).1).collect();
        for i in 0..n {
            let st = api.encode(enc, inb, outs[i as usize], nv12, i, 0);
            assert!(st == SUCCESS || st == NEED_MORE_INPUT);
        }
        assert_eq!(api.eos(enc), SUCCESS);
        let v = outs
            .iter()
            .map(|o| {
                let x = api.take(enc, *o);
                (x.pts, x.pic_type)
            })
            .collect();
        api.destroy(enc);
        v
    };
    let mut got = run(3, 6, 6, 13);
    got.sort();
    let idrs: Vec<u64> = got.iter().filter(|x| x.1 == PIC_IDR).map(|x| x.0).collect();
    assert_eq!(idrs, [0, 6, 12], "{got:?}");
    let got = run(1, 4, 8, 10);
    let types: Vec<u32> = got.iter().map(|x| x.1).collect();
    assert_eq!(
        types,
        [
            PIC_IDR, PIC_P, PIC_P, PIC_P, PIC_I, PIC_P, PIC_P, PIC_P, PIC_IDR, PIC_P
        ],
        "{got:?}"
    );
}

/// API 11.1 (FFmpeg 5.1 and GStreamer 1.22 on Debian 12): negotiated under a 13.0 driver, its
/// own struct versions checked, no AV1 (the 11.1 header has no AV1 GUID, config or picture
/// parameters), the H.264 Baseline/Main profiles it names, the deprecated RC modes it still
/// has; 11.1 revisions stamped with a 12.x API (as GStreamer does) decode with the 11.1 layout.
#[test]
fn api_11_1_sessions() {
    let _g = env(&[]);
    let api = Api::new(abi::SDK_11_1);
    let (st, enc) = api.open();
    assert_eq!(st, SUCCESS);
    assert_eq!(api.guid_count(enc), (SUCCESS, 2), "H.264 and HEVC only");
    let av1 = abi::guid(abi::SDK_13_0, "NV_ENC_CODEC_AV1_GUID").unwrap();
    let p = S::with_ver(abi::SDK_11_1, "NV_ENC_CAPS_PARAM", "NV_ENC_CAPS_PARAM_VER");
    p.set("capsToQuery", 0);
    let f: extern "C" fn(Ptr, abi::Guid, Ptr, *mut i32) -> i32 = api.entry("nvEncGetEncodeCaps");
    let mut v = 0;
    assert_eq!(
        f(enc, av1, p.ptr(), &mut v),
        INVALID_PARAM,
        "AV1 GUID in 11.1"
    );
    // a 12.0 struct version in an 11.1 session
    let p = S::with_ver(abi::SDK_12_0, "NV_ENC_CAPS_PARAM", "NV_ENC_CAPS_PARAM_VER");
    p.set("capsToQuery", 0);
    assert_eq!(api.caps_raw(enc, HEVC, &p).0, INVALID_VERSION);
    assert_eq!(
        api.caps(enc, HEVC, "SUPPORTED_RATECONTROL_MODES"),
        (SUCCESS, 0x3f)
    );
    assert_eq!(api.destroy(enc), SUCCESS);
    // H.264 Main with B-frames (FFmpeg's h264_nvenc default profile); Baseline without
    let main = guid(abi::SDK_11_1, "NV_ENC_H264_PROFILE_MAIN_GUID");
    let enc = api.session(H264, 320, 240, 3, |c| {
        c.v.set_guid("profileGUID", main);
    });
    assert_eq!(api.destroy(enc), SUCCESS);
    let (_, enc) = api.open();
    let (_, cfg) = api.preset(enc, H264, "NV_ENC_PRESET_P4_GUID", 1);
    cfg.set("frameIntervalP", 3);
    cfg.v.set_guid(
        "profileGUID",
        guid(abi::SDK_11_1, "NV_ENC_H264_PROFILE_BASELINE_GUID"),
    );
    let ip = api.init_params(H264, 320, 240, &cfg);
    assert_eq!(api.init_raw(enc, &ip), INVALID_PARAM, "Baseline has no B");
    assert_eq!(api.destroy(enc), SUCCESS);
    // layouts: 11.1 revisions with a 12.2 API select the 11.1 tables
    let v122 = abi::api_version(abi::SDK_12_2);
    let pic_s4 = v122 | (4 << 16) | (7 << 28) | (1 << 31);
    assert_eq!(
        abi::layout_for_version(abi::SDK_12_2, "NV_ENC_PIC_PARAMS_VER", pic_s4),
        Some(abi::SDK_11_1)
    );
    assert_eq!(abi::size_of(abi::SDK_11_1, "NV_ENC_PIC_PARAMS"), 3344);
    let cfg_s7 = v122 | (7 << 16) | (7 << 28) | (1 << 31);
    assert_eq!(
        abi::layout_for_version(abi::SDK_12_2, "NV_ENC_CONFIG_VER", cfg_s7),
        Some(abi::SDK_11_1)
    );
    // and a 12.0 revision is too new for an 11.1 session
    let v111 = abi::api_version(abi::SDK_11_1);
    let pic_s6 = v111 | (6 << 16) | (7 << 28) | (1 << 31);
    assert_eq!(
        abi::layout_for_version(abi::SDK_11_1, "NV_ENC_PIC_PARAMS_VER", pic_s6),
        None
    );
}

/// An `NV_ENC_SEI_PAYLOAD` array laid out with the SDK's table; the bodies must outlive it.
fn payload_array(sdk: abi::SdkIdx, items: &[(u32, u32, u64)]) -> Vec<u64> {
    let esize = abi::size_of(sdk, "NV_ENC_SEI_PAYLOAD");
    let mut buf = vec![0u64; (items.len() * esize).div_ceil(8).max(1)];
    for (i, (size, ty, p)) in items.iter().enumerate() {
        // SAFETY: element `i` of `buf`, `esize` bytes.
        let v = unsafe {
            abi::View::new(
                buf.as_mut_ptr().cast::<u8>().add(i * esize),
                sdk,
                "NV_ENC_SEI_PAYLOAD",
            )
        };
        v.set("payloadSize", *size as u64);
        v.set("payloadType", *ty as u64);
        v.set("payload", *p);
    }
    buf
}

/// (payloadType, payload) of the SEI messages of an H.265 access unit, and its NAL types.
fn hevc_sei(au: &[u8]) -> (Vec<(u32, Vec<u8>)>, Vec<u8>) {
    let mut starts = Vec::new();
    for i in 0..au.len().saturating_sub(3) {
        if au[i..i + 3] == [0, 0, 1] {
            starts.push(i + 3);
        }
    }
    let (mut msgs, mut types) = (Vec::new(), Vec::new());
    for (k, &s) in starts.iter().enumerate() {
        let e = starts.get(k + 1).map_or(au.len(), |n| n - 3);
        let nal = &au[s..e];
        types.push((nal[0] >> 1) & 0x3f);
        if (nal[0] >> 1) & 0x3f != 39 {
            continue;
        }
        let mut r = Vec::new();
        let mut z = 0;
        for &b in &nal[2..] {
            if z >= 2 && b == 3 {
                z = 0;
                continue;
            }
            r.push(b);
            z = if b == 0 { z + 1 } else { 0 };
        }
        while r.last() == Some(&0) {
            r.pop();
        }
        let mut i = 0;
        while i + 1 < r.len() {
            let (t, n) = (r[i] as u32, r[i + 1] as usize);
            msgs.push((t, r[i + 2..i + 2 + n].to_vec()));
            i += 2 + n;
        }
    }
    (msgs, types)
}

/// SEI / OBU payload arrays and the 13.0 HDR fields: written into the picture's access unit
/// where NVENC puts them (H.265 prefix SEI before the slice, mastering display first from
/// `pMasteringDisplay` in G, B, R order; AV1 metadata OBU after the sequence header), and every
/// misuse refused (status) and traced as a violation, the call changing nothing.
#[test]
fn sei_and_obu_payloads() {
    let path = std::env::temp_dir().join(format!("nvemu-payloads-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let _g = env(&[("NVEMU_TRACE", path.to_str().unwrap())]);
    let sdk = abi::SDK_13_0;
    let api = Api::new(sdk);
    let enc = api.session(HEVC, 320, 240, 1, |c| {
        c.set("encodeCodecConfig.hevcConfig.outputMasteringDisplay", 1);
    });
    let nv12 = fmt(sdk, "NV12");
    let (_, inb) = api.create_input(enc, 320, 240, nv12);
    let (_, out) = api.create_bitstream(enc);
    api.fill_nv12(enc, inb, 320, 240, 0);
    let mdi = S::new(sdk, "MASTERING_DISPLAY_INFO");
    for (f, v) in [
        ("g.x", 8500),
        ("g.y", 39850),
        ("b.x", 6550),
        ("b.y", 2300),
        ("r.x", 35400),
        ("r.y", 14600),
        ("whitePoint.x", 15635),
        ("whitePoint.y", 16450),
        ("maxLuma", 10_000_000),
        ("minLuma", 50),
    ] {
        mdi.set(f, v);
    }
    let cll = S::new(sdk, "CONTENT_LIGHT_LEVEL");
    cll.set("maxContentLightLevel", 1000);
    let t35 = [
        0xb5u8, 0, 0x31, b'G', b'A', b'9', b'4', 3, 0x41, 0xff, 0xfc, 0, 0, 0xff,
    ];
    let short = [0u8; 23];
    let hp = "codecPicParams.hevcPicParams.";
    let try_encode = |items: &[(u32, u32, u64)], cnt: u64, null_array: bool, extra: &dyn Fn(&S)| {
        let arr = payload_array(sdk, items);
        let p = api.pic_params(inb, out, nv12, 0, 0, 0);
        p.set(&format!("{hp}seiPayloadArrayCnt"), cnt);
        if !null_array {
            p.set(&format!("{hp}seiPayloadArray"), arr.as_ptr() as u64);
        }
        extra(&p);
        api.encode_raw(enc, &p)
    };
    let t35p = t35.as_ptr() as u64;
    let none = |_: &S| {};
    // Misuse, one at a time: nothing is encoded, the buffer stays free.
    assert_eq!(
        try_encode(&[(14, 4, t35p)], 1, true, &none),
        INVALID_PTR,
        "NULL array"
    );
    assert_eq!(
        try_encode(&[(0, 4, t35p)], 1, false, &none),
        INVALID_PARAM,
        "empty"
    );
    assert_eq!(
        try_encode(&[(14, 4, 0)], 1, false, &none),
        INVALID_PTR,
        "NULL payload"
    );
    assert_eq!(
        try_encode(&[(14, 4, 8)], 1, false, &none),
        INVALID_PTR,
        "unreadable"
    );
    assert_eq!(
        try_encode(&[(14, 1, t35p)], 1, false, &none),
        INVALID_PARAM,
        "pic timing"
    );
    assert_eq!(
        try_encode(&[(23, 137, short.as_ptr() as u64)], 1, false, &none),
        INVALID_PARAM,
        "short mastering display"
    );
    let with_mdi = |p: &S| {
        p.set(&format!("{hp}pMasteringDisplay"), mdi.ptr() as u64);
    };
    let mdcv = [0u8; 24];
    assert_eq!(
        try_encode(&[(24, 137, mdcv.as_ptr() as u64)], 1, false, &with_mdi),
        INVALID_PARAM,
        "mastering display twice"
    );
    // Right: pMasteringDisplay (outputMasteringDisplay=1), pMaxCll without outputMaxCll (a
    // violation, ignored) and a T.35 payload.
    let with_both = |p: &S| {
        p.set(&format!("{hp}pMasteringDisplay"), mdi.ptr() as u64);
        p.set(&format!("{hp}pMaxCll"), cll.ptr() as u64);
    };
    assert_eq!(try_encode(&[(14, 4, t35p)], 1, false, &with_both), SUCCESS);
    let o = api.take(enc, out);
    assert_eq!(o.pic_type, PIC_IDR);
    let (msgs, types) = hevc_sei(&o.data);
    let mut want_mdcv = Vec::new();
    for v in [8500u16, 39850, 6550, 2300, 35400, 14600, 15635, 16450] {
        want_mdcv.extend_from_slice(&v.to_be_bytes());
    }
    want_mdcv.extend_from_slice(&10_000_000u32.to_be_bytes());
    want_mdcv.extend_from_slice(&50u32.to_be_bytes());
    assert_eq!(
        msgs,
        [(137, want_mdcv), (4, t35.to_vec())],
        "NAL types {types:?}"
    );
    let sei = types.iter().position(|t| *t == 39).unwrap();
    let slice = types.iter().position(|t| *t <= 31).unwrap();
    assert!(
        types.iter().position(|t| *t == 33).unwrap() < sei && sei < slice,
        "SEI after the parameter sets, before the slice: {types:?}"
    );
    api.destroy(enc);

    // AV1, API 12.2: obuPayloadArray.
    let sdk = abi::SDK_12_2;
    let api = Api::new(sdk);
    let enc = api.session(AV1, 320, 240, 1, |_| {});
    let nv12 = fmt(sdk, "NV12");
    let (_, inb) = api.create_input(enc, 320, 240, nv12);
    let (_, out) = api.create_bitstream(enc);
    api.fill_nv12(enc, inb, 320, 240, 0);
    let ap = "codecPicParams.av1PicParams.";
    let av1 = |ty: u32| {
        let arr = payload_array(sdk, &[(14, ty, t35p)]);
        let p = api.pic_params(inb, out, nv12, 0, 0, 0);
        p.set(&format!("{ap}obuPayloadArrayCnt"), 1);
        p.set(&format!("{ap}obuPayloadArray"), arr.as_ptr() as u64);
        api.encode_raw(enc, &p)
    };
    assert_eq!(av1(0), INVALID_PARAM, "metadata_type 0 is reserved");
    assert_eq!(av1(32), INVALID_PARAM, "metadata_type 32 is reserved");
    assert_eq!(av1(4), SUCCESS);
    let o = api.take(enc, out);
    // TD, sequence header, metadata (type 4, the payload, trailing bits), frame.
    let mut obu = vec![(5 << 3) | 2, 16, 4];
    obu.extend_from_slice(&t35);
    obu.push(0x80);
    let at = o
        .data
        .windows(obu.len())
        .position(|w| w == obu.as_slice())
        .expect("metadata OBU in the temporal unit");
    assert_eq!(
        o.data[2] >> 3 & 0xf,
        1,
        "sequence header first after the TD"
    );
    assert_eq!(
        o.data[at + obu.len()] >> 3 & 0xf,
        6,
        "the frame OBU follows"
    );
    api.destroy(enc);

    let text = std::fs::read_to_string(&path).unwrap();
    let v: Vec<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["call"] == "nvEncEncodePicture")
        .filter_map(|l| l["violation"].as_str().map(str::to_string))
        .collect();
    for want in [
        "seiPayloadArrayCnt 1 with a NULL seiPayloadArray",
        "payloadSize 0",
        "NULL payload",
        "not readable",
        "picture timing",
        "has 24 bytes, payloadSize is 23",
        "payloadType 137 again",
        "pMaxCll given while the config's outputMaxCll is 0",
        "reserved AV1 metadata_type",
    ] {
        assert!(v.iter().any(|x| x.contains(want)), "{want}: {v:#?}");
    }
    let ok: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["call"] == "nvEncEncodePicture" && l["status"] == "NV_ENC_SUCCESS")
        .collect();
    assert_eq!(ok[0]["args"][format!("{hp}pMasteringDisplay.r.x")], 35400);
    assert_eq!(
        ok[0]["args"][format!("{hp}seiPayloadArray")][0]["payload"],
        "b50031474139340341fffc0000ff"
    );
    assert_eq!(
        ok[1]["args"][format!("{ap}obuPayloadArray")][0]["payloadType"],
        4
    );
    let _ = std::fs::remove_file(&path);
}
