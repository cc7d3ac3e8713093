//! A tiny NVENC client for the tests: drives the stand-in through its C ABI (the exported
//! `NvEncodeAPICreateInstance` and the function list it fills), building every struct by field
//! name with the ABI tables of the SDK under test.
#![allow(dead_code)]

pub mod tools;

use nvidia_encode::abi::{self, Guid, SdkIdx, View};
use std::ffi::c_void;
use std::sync::{Mutex, MutexGuard};

pub type Ptr = *mut c_void;

pub const SUCCESS: i32 = 0;
pub const UNSUPPORTED_DEVICE: i32 = 2;
pub const INVALID_ENCODERDEVICE: i32 = 3;
pub const INVALID_DEVICE: i32 = 4;
pub const INVALID_PTR: i32 = 6;
pub const INVALID_PARAM: i32 = 8;
pub const INVALID_CALL: i32 = 9;
pub const ENCODER_NOT_INITIALIZED: i32 = 11;
pub const UNSUPPORTED_PARAM: i32 = 12;
pub const LOCK_BUSY: i32 = 13;
pub const NOT_ENOUGH_BUFFER: i32 = 14;
pub const INVALID_VERSION: i32 = 15;
pub const MAP_FAILED: i32 = 16;
pub const NEED_MORE_INPUT: i32 = 17;
pub const RESOURCE_NOT_REGISTERED: i32 = 24;
pub const RESOURCE_NOT_MAPPED: i32 = 25;

pub const PIC_P: u32 = 0;
pub const PIC_B: u32 = 1;
pub const PIC_I: u32 = 2;
pub const PIC_IDR: u32 = 3;

static ENV: Mutex<()> = Mutex::new(());

/// Serialises the tests of one binary (they set process-wide environment variables) and sets
/// the emulator's variables for this test.
pub fn env(vars: &[(&str, &str)]) -> MutexGuard<'static, ()> {
    let g = ENV.lock().unwrap_or_else(|e| e.into_inner());
    for k in [
        "NVEMU_GPU",
        "NVEMU_MAX_API",
        "NVEMU_TRACE",
        "NVEMU_STRICT",
        "NVEMU_LOG",
        "NVEMU_SESSION_LIMIT",
        "NVEMU_TIMING",
        "NVEMU_ENCODE_MS",
        "NVEMU_CAPS",
    ] {
        // SAFETY: every test of this binary holds ENV while it runs, and the library reads the
        // environment only inside calls made by the test holding it, so nothing reads the
        // environment concurrently.
        unsafe { std::env::remove_var(k) };
    }
    // No session cap unless the test asks for one: the tests of a binary share one process and
    // many leave their sessions open (the emulator counts every live session of the process),
    // so the GeForce cap of the default `ada` model (8) would refuse sessions in later tests
    // that never have more than 8 open themselves. A test passes its own NVEMU_SESSION_LIMIT
    // (a value that is not a number, e.g. "default", gives the model's own cap).
    // SAFETY: as above.
    unsafe { std::env::set_var("NVEMU_SESSION_LIMIT", "0") };
    for (k, v) in vars {
        // SAFETY: as above.
        unsafe { std::env::set_var(k, v) };
    }
    g
}

/// An NVENC struct in test memory, zeroed, 8-aligned.
pub struct S {
    buf: Vec<u64>,
    pub v: View,
}

impl S {
    pub fn new(sdk: SdkIdx, name: &'static str) -> S {
        let size = abi::size_of(sdk, name);
        assert!(size > 0, "no struct {name}");
        let mut buf = vec![0u64; size.div_ceil(8) + 8];
        // SAFETY: `buf` holds at least `size` bytes and lives as long as the view (in `S`).
        let v = unsafe { View::new(buf.as_mut_ptr().cast(), sdk, name) };
        S { buf, v }
    }
    pub fn with_ver(sdk: SdkIdx, name: &'static str, ver: &str) -> S {
        let s = S::new(sdk, name);
        s.set("version", abi::ver(sdk, ver).expect(ver) as u64);
        s
    }
    pub fn set(&self, f: &str, x: u64) -> &S {
        self.v.set(f, x);
        self
    }
    pub fn get(&self, f: &str) -> u64 {
        self.v.get(f)
    }
    pub fn ptr(&self) -> Ptr {
        self.v.base.cast()
    }
}

pub fn sdk_of(name: &str) -> SdkIdx {
    abi::SDK_NAMES.iter().position(|n| *n == name).unwrap()
}

pub fn guid(sdk: SdkIdx, n: &str) -> Guid {
    abi::guid(sdk, n).expect(n)
}

pub fn fmt(sdk: SdkIdx, n: &str) -> u32 {
    abi::enum_val(sdk, &format!("NV_ENC_BUFFER_FORMAT_{n}")).unwrap() as u32
}

pub fn get_max_version() -> (i32, u32) {
    let mut v = 0u32;
    // SAFETY: valid out pointer.
    let st = unsafe { nvidia_encode::NvEncodeAPIGetMaxSupportedVersion(&mut v) };
    (st, v)
}

/// The function list.
pub struct Api {
    fl: Vec<u64>,
    pub sdk: SdkIdx,
}

macro_rules! f {
    ($self:ident, $name:literal, $ty:ty) => {{
        let off = abi::resolve(abi::NEWEST, "NV_ENCODE_API_FUNCTION_LIST", $name)
            .unwrap()
            .offset;
        let p = $self.fl[off / 8] as usize;
        assert!(p != 0, "{} not filled", $name);
        // SAFETY: the emulator filled this slot with a function of the header's signature.
        unsafe { std::mem::transmute::<usize, $ty>(p) }
    }};
}

pub struct Out {
    pub status: i32,
    pub data: Vec<u8>,
    pub pts: u64,
    pub duration: u64,
    pub pic_type: u32,
    pub frame_idx: u32,
    pub frame_idx_display: u32,
    /// `frameAvgQP`.
    pub frame_avg_qp: u32,
}

impl Api {
    pub fn new(sdk: SdkIdx) -> Api {
        let mut fl = vec![0u64; 2552 / 8];
        fl[0] = abi::ver(sdk, "NV_ENCODE_API_FUNCTION_LIST_VER").unwrap() as u64;
        // SAFETY: a 2552-byte function list.
        let st = unsafe { nvidia_encode::NvEncodeAPICreateInstance(fl.as_mut_ptr().cast()) };
        assert_eq!(st, SUCCESS);
        Api { fl, sdk }
    }

    pub fn open_with(&self, version: u32, api: u32, device: u64, ty: u32) -> (i32, Ptr) {
        let p = S::new(self.sdk, "NV_ENC_OPEN_ENCODE_SESSIONEX_PARAMS");
        p.set("version", version as u64);
        p.set("apiVersion", api as u64);
        p.set("device", device);
        p.set("deviceType", ty as u64);
        let mut enc: Ptr = std::ptr::null_mut();
        let f = f!(
            self,
            "nvEncOpenEncodeSessionEx",
            extern "C" fn(Ptr, *mut Ptr) -> i32
        );
        (f(p.ptr(), &mut enc), enc)
    }

    /// A function-list entry by name, as a function pointer type `T` of the header's signature.
    pub fn entry<T: Copy>(&self, name: &str) -> T {
        assert_eq!(std::mem::size_of::<T>(), 8, "a function pointer");
        let off = abi::resolve(abi::NEWEST, "NV_ENCODE_API_FUNCTION_LIST", name)
            .unwrap()
            .offset;
        let p = self.fl[off / 8] as usize;
        assert!(p != 0, "{name} not filled");
        // SAFETY: the emulator filled this slot with a function of the header's signature, and
        // the caller names that signature as `T` (a function pointer, 8 bytes).
        unsafe { std::mem::transmute_copy::<usize, T>(&p) }
    }

    pub fn open(&self) -> (i32, Ptr) {
        self.open_with(
            abi::ver(self.sdk, "NV_ENC_OPEN_ENCODE_SESSION_EX_PARAMS_VER").unwrap(),
            abi::api_version(self.sdk),
            0xc0de_0000,
            1,
        )
    }

    pub fn guid_count(&self, enc: Ptr) -> (i32, u32) {
        let mut n = 0;
        let f = f!(
            self,
            "nvEncGetEncodeGUIDCount",
            extern "C" fn(Ptr, *mut u32) -> i32
        );
        (f(enc, &mut n), n)
    }

    pub fn caps(&self, enc: Ptr, codec: &str, cap: &str) -> (i32, i32) {
        let p = S::with_ver(self.sdk, "NV_ENC_CAPS_PARAM", "NV_ENC_CAPS_PARAM_VER");
        p.set(
            "capsToQuery",
            abi::enum_val(self.sdk, &format!("NV_ENC_CAPS_{cap}")).expect(cap) as u64,
        );
        self.caps_raw(enc, codec, &p)
    }

    pub fn caps_raw(&self, enc: Ptr, codec: &str, p: &S) -> (i32, i32) {
        let mut v = -1;
        let f = f!(
            self,
            "nvEncGetEncodeCaps",
            extern "C" fn(Ptr, Guid, Ptr, *mut i32) -> i32
        );
        (f(enc, guid(self.sdk, codec), p.ptr(), &mut v), v)
    }

    /// GetEncodePresetConfigEx(P4, HQ) into a new config.
    pub fn preset(&self, enc: Ptr, codec: &str, preset: &str, tuning: u32) -> (i32, S) {
        let p = S::with_ver(self.sdk, "NV_ENC_PRESET_CONFIG", "NV_ENC_PRESET_CONFIG_VER");
        p.set(
            "presetCfg.version",
            abi::ver(self.sdk, "NV_ENC_CONFIG_VER").unwrap() as u64,
        );
        let f = f!(
            self,
            "nvEncGetEncodePresetConfigEx",
            extern "C" fn(Ptr, Guid, Guid, u32, Ptr) -> i32
        );
        let st = f(
            enc,
            guid(self.sdk, codec),
            guid(self.sdk, preset),
            tuning,
            p.ptr(),
        );
        let cfg = S::new(self.sdk, "NV_ENC_CONFIG");
        // SAFETY: copy of presetCfg (3584 bytes) into the config buffer.
        unsafe {
            std::ptr::copy_nonoverlapping(
                p.v.sub("presetCfg").unwrap().base,
                cfg.v.base,
                abi::size_of(self.sdk, "NV_ENC_CONFIG"),
            )
        };
        (st, cfg)
    }

    pub fn init_params(&self, codec: &str, w: u32, h: u32, cfg: &S) -> S {
        let p = S::with_ver(
            self.sdk,
            "NV_ENC_INITIALIZE_PARAMS",
            "NV_ENC_INITIALIZE_PARAMS_VER",
        );
        p.v.set_guid("encodeGUID", guid(self.sdk, codec));
        p.v.set_guid("presetGUID", guid(self.sdk, "NV_ENC_PRESET_P4_GUID"));
        p.set("encodeWidth", w as u64)
            .set("encodeHeight", h as u64)
            .set("darWidth", w as u64)
            .set("darHeight", h as u64)
            .set("frameRateNum", 25)
            .set("frameRateDen", 1)
            .set("enablePTD", 1)
            .set("tuningInfo", 1)
            .set("encodeConfig", cfg.ptr() as u64);
        p
    }

    pub fn init_raw(&self, enc: Ptr, p: &S) -> i32 {
        let f = f!(
            self,
            "nvEncInitializeEncoder",
            extern "C" fn(Ptr, Ptr) -> i32
        );
        f(enc, p.ptr())
    }

    /// Opens a session and initialises it (preset P4/HQ, with `fip` and gop 30).
    pub fn session(&self, codec: &str, w: u32, h: u32, fip: u32, tweak: impl Fn(&S)) -> Ptr {
        let (st, enc) = self.open();
        assert_eq!(st, SUCCESS, "open");
        let (st, cfg) = self.preset(enc, codec, "NV_ENC_PRESET_P4_GUID", 1);
        assert_eq!(st, SUCCESS, "preset");
        cfg.set("gopLength", 30).set("frameIntervalP", fip as u64);
        let cc = codec_cfg(codec);
        cfg.set(&format!("{cc}idrPeriod"), 30);
        tweak(&cfg);
        let p = self.init_params(codec, w, h, &cfg);
        assert_eq!(self.init_raw(enc, &p), SUCCESS, "init");
        enc
    }

    pub fn create_input(&self, enc: Ptr, w: u32, h: u32, fmt: u32) -> (i32, Ptr) {
        let p = S::with_ver(
            self.sdk,
            "NV_ENC_CREATE_INPUT_BUFFER",
            "NV_ENC_CREATE_INPUT_BUFFER_VER",
        );
        p.set("width", w as u64)
            .set("height", h as u64)
            .set("bufferFmt", fmt as u64);
        let f = f!(
            self,
            "nvEncCreateInputBuffer",
            extern "C" fn(Ptr, Ptr) -> i32
        );
        let st = f(enc, p.ptr());
        (st, p.get("inputBuffer") as Ptr)
    }

    pub fn lock_input(&self, enc: Ptr, buf: Ptr) -> (i32, *mut u8, usize) {
        let p = S::with_ver(
            self.sdk,
            "NV_ENC_LOCK_INPUT_BUFFER",
            "NV_ENC_LOCK_INPUT_BUFFER_VER",
        );
        p.set("inputBuffer", buf as u64);
        let f = f!(self, "nvEncLockInputBuffer", extern "C" fn(Ptr, Ptr) -> i32);
        let st = f(enc, p.ptr());
        (
            st,
            p.get("bufferDataPtr") as *mut u8,
            p.get("pitch") as usize,
        )
    }

    pub fn unlock_input(&self, enc: Ptr, buf: Ptr) -> i32 {
        let f = f!(
            self,
            "nvEncUnlockInputBuffer",
            extern "C" fn(Ptr, Ptr) -> i32
        );
        f(enc, buf)
    }

    pub fn destroy_input(&self, enc: Ptr, buf: Ptr) -> i32 {
        let f = f!(
            self,
            "nvEncDestroyInputBuffer",
            extern "C" fn(Ptr, Ptr) -> i32
        );
        f(enc, buf)
    }

    pub fn create_bitstream(&self, enc: Ptr) -> (i32, Ptr) {
        let p = S::with_ver(
            self.sdk,
            "NV_ENC_CREATE_BITSTREAM_BUFFER",
            "NV_ENC_CREATE_BITSTREAM_BUFFER_VER",
        );
        let f = f!(
            self,
            "nvEncCreateBitstreamBuffer",
            extern "C" fn(Ptr, Ptr) -> i32
        );
        let st = f(enc, p.ptr());
        (st, p.get("bitstreamBuffer") as Ptr)
    }

    pub fn destroy_bitstream(&self, enc: Ptr, buf: Ptr) -> i32 {
        let f = f!(
            self,
            "nvEncDestroyBitstreamBuffer",
            extern "C" fn(Ptr, Ptr) -> i32
        );
        f(enc, buf)
    }

    /// Fills an NV12 input buffer with a moving gradient (frame `n`).
    pub fn fill_nv12(&self, enc: Ptr, buf: Ptr, w: u32, h: u32, n: u32) -> usize {
        let (st, p, pitch) = self.lock_input(enc, buf);
        assert_eq!(st, SUCCESS);
        for y in 0..h as usize {
            for x in 0..w as usize {
                // SAFETY: inside the locked surface (pitch*rows bytes).
                unsafe { *p.add(y * pitch + x) = ((x + y + 4 * n as usize) & 0xff) as u8 };
            }
        }
        for y in 0..(h as usize).div_ceil(2) {
            for x in 0..w as usize {
                // SAFETY: chroma plane at pitch*height, as NVENC lays it out.
                unsafe { *p.add(pitch * h as usize + y * pitch + x) = (128 + (x & 31)) as u8 };
            }
        }
        assert_eq!(self.unlock_input(enc, buf), SUCCESS);
        pitch
    }

    pub fn pic_params(
        &self,
        input: Ptr,
        output: Ptr,
        fmt: u32,
        pts: u64,
        flags: u32,
        idx: u32,
    ) -> S {
        let p = S::with_ver(self.sdk, "NV_ENC_PIC_PARAMS", "NV_ENC_PIC_PARAMS_VER");
        p.set("inputBuffer", input as u64)
            .set("outputBitstream", output as u64)
            .set("bufferFmt", fmt as u64)
            .set("pictureStruct", 1)
            .set("inputTimeStamp", pts)
            .set("inputDuration", 1000 + pts)
            .set("encodePicFlags", flags as u64)
            .set("frameIdx", idx as u64);
        p
    }

    pub fn encode_raw(&self, enc: Ptr, p: &S) -> i32 {
        let f = f!(self, "nvEncEncodePicture", extern "C" fn(Ptr, Ptr) -> i32);
        f(enc, p.ptr())
    }

    pub fn encode(&self, enc: Ptr, input: Ptr, output: Ptr, fmt: u32, pts: u64, flags: u32) -> i32 {
        let p = self.pic_params(input, output, fmt, pts, flags, pts as u32);
        self.encode_raw(enc, &p)
    }

    pub fn eos(&self, enc: Ptr) -> i32 {
        let p = S::with_ver(self.sdk, "NV_ENC_PIC_PARAMS", "NV_ENC_PIC_PARAMS_VER");
        p.set("encodePicFlags", 8);
        self.encode_raw(enc, &p)
    }

    pub fn lock_bs_ver(&self, enc: Ptr, buf: Ptr, no_wait: bool, version: u32) -> Out {
        let p = S::new(self.sdk, "NV_ENC_LOCK_BITSTREAM");
        p.set("version", version as u64);
        p.set("outputBitstream", buf as u64)
            .set("doNotWait", no_wait as u64);
        let f = f!(self, "nvEncLockBitstream", extern "C" fn(Ptr, Ptr) -> i32);
        let status = f(enc, p.ptr());
        let mut data = Vec::new();
        if status == SUCCESS {
            let n = p.get("bitstreamSizeInBytes") as usize;
            let ptr = p.get("bitstreamBufferPtr") as *const u8;
            // SAFETY: the locked bitstream stays valid until unlock.
            data = unsafe { std::slice::from_raw_parts(ptr, n) }.to_vec();
        }
        Out {
            status,
            data,
            pts: p.get("outputTimeStamp"),
            duration: p.get("outputDuration"),
            pic_type: p.get("pictureType") as u32,
            frame_idx: p.get("frameIdx") as u32,
            frame_idx_display: p.get("frameIdxDisplay") as u32,
            frame_avg_qp: p.get("frameAvgQP") as u32,
        }
    }

    pub fn lock_bs(&self, enc: Ptr, buf: Ptr, no_wait: bool) -> Out {
        self.lock_bs_ver(
            enc,
            buf,
            no_wait,
            abi::ver(self.sdk, "NV_ENC_LOCK_BITSTREAM_VER").unwrap(),
        )
    }

    pub fn unlock_bs(&self, enc: Ptr, buf: Ptr) -> i32 {
        let f = f!(self, "nvEncUnlockBitstream", extern "C" fn(Ptr, Ptr) -> i32);
        f(enc, buf)
    }

    /// Lock, copy, unlock.
    pub fn take(&self, enc: Ptr, buf: Ptr) -> Out {
        let o = self.lock_bs(enc, buf, false);
        assert_eq!(o.status, SUCCESS, "lock");
        assert_eq!(self.unlock_bs(enc, buf), SUCCESS, "unlock");
        o
    }

    pub fn seq_params(&self, enc: Ptr, cap: u32) -> (i32, Vec<u8>) {
        let p = S::with_ver(
            self.sdk,
            "NV_ENC_SEQUENCE_PARAM_PAYLOAD",
            "NV_ENC_SEQUENCE_PARAM_PAYLOAD_VER",
        );
        let mut buf = vec![0u8; cap as usize];
        let mut n = 0u32;
        p.set("inBufferSize", cap as u64)
            .set("spsppsBuffer", buf.as_mut_ptr() as u64)
            .set("outSPSPPSPayloadSize", &mut n as *mut u32 as u64);
        let f = f!(
            self,
            "nvEncGetSequenceParams",
            extern "C" fn(Ptr, Ptr) -> i32
        );
        let st = f(enc, p.ptr());
        buf.truncate(n as usize);
        (st, buf)
    }

    pub fn last_error(&self, enc: Ptr) -> String {
        let f = f!(
            self,
            "nvEncGetLastErrorString",
            extern "C" fn(Ptr) -> *const std::ffi::c_char
        );
        let p = f(enc);
        assert!(!p.is_null());
        // SAFETY: the emulator returns a NUL-terminated string.
        unsafe { std::ffi::CStr::from_ptr(p) }
            .to_string_lossy()
            .into_owned()
    }

    pub fn reconfigure(&self, enc: Ptr, p: &S) -> i32 {
        let f = f!(
            self,
            "nvEncReconfigureEncoder",
            extern "C" fn(Ptr, Ptr) -> i32
        );
        f(enc, p.ptr())
    }

    pub fn destroy(&self, enc: Ptr) -> i32 {
        let f = f!(self, "nvEncDestroyEncoder", extern "C" fn(Ptr) -> i32);
        f(enc)
    }

    /// `nvEncSetIOCudaStreams` with pointers to the two `CUstream`s, as the header asks.
    pub fn set_io_streams(&self, enc: Ptr, input: u64, output: u64) -> i32 {
        let f = f!(
            self,
            "nvEncSetIOCudaStreams",
            extern "C" fn(Ptr, Ptr, Ptr) -> i32
        );
        let (mut i, mut o) = (input, output);
        f(
            enc,
            (&mut i as *mut u64).cast(),
            (&mut o as *mut u64).cast(),
        )
    }

    pub fn register(&self, enc: Ptr, ptr: u64, w: u32, h: u32, pitch: u32, fmt: u32) -> (i32, Ptr) {
        let p = S::with_ver(
            self.sdk,
            "NV_ENC_REGISTER_RESOURCE",
            "NV_ENC_REGISTER_RESOURCE_VER",
        );
        p.set("resourceType", 1)
            .set("width", w as u64)
            .set("height", h as u64)
            .set("pitch", pitch as u64)
            .set("resourceToRegister", ptr)
            .set("bufferFormat", fmt as u64);
        let f = f!(
            self,
            "nvEncRegisterResource",
            extern "C" fn(Ptr, Ptr) -> i32
        );
        let st = f(enc, p.ptr());
        (st, p.get("registeredResource") as Ptr)
    }

    pub fn map(&self, enc: Ptr, reg: Ptr) -> (i32, Ptr) {
        let p = S::with_ver(
            self.sdk,
            "NV_ENC_MAP_INPUT_RESOURCE",
            "NV_ENC_MAP_INPUT_RESOURCE_VER",
        );
        p.set("registeredResource", reg as u64);
        let f = f!(
            self,
            "nvEncMapInputResource",
            extern "C" fn(Ptr, Ptr) -> i32
        );
        let st = f(enc, p.ptr());
        (st, p.get("mappedResource") as Ptr)
    }

    pub fn unmap(&self, enc: Ptr, m: Ptr) -> i32 {
        let f = f!(
            self,
            "nvEncUnmapInputResource",
            extern "C" fn(Ptr, Ptr) -> i32
        );
        f(enc, m)
    }

    pub fn unregister(&self, enc: Ptr, r: Ptr) -> i32 {
        let f = f!(
            self,
            "nvEncUnregisterResource",
            extern "C" fn(Ptr, Ptr) -> i32
        );
        f(enc, r)
    }
}

pub fn codec_cfg(codec: &str) -> &'static str {
    match codec {
        "NV_ENC_CODEC_H264_GUID" => "encodeCodecConfig.h264Config.",
        "NV_ENC_CODEC_HEVC_GUID" => "encodeCodecConfig.hevcConfig.",
        _ => "encodeCodecConfig.av1Config.",
    }
}

pub const HEVC: &str = "NV_ENC_CODEC_HEVC_GUID";
pub const AV1: &str = "NV_ENC_CODEC_AV1_GUID";
pub const H264: &str = "NV_ENC_CODEC_H264_GUID";
