// SPDX-License-Identifier: MPL-2.0
//! Raw NVENC API declarations (NVIDIA Video Codec SDK `nvEncodeAPI.h`), written by hand for what
//! this plugin uses, and proven at compile time against the ABI tables in
//! `crates/nvenc-abi/tables/` (facts read from the official headers of SDK 12.0 to 13.0).
//!
//! Layout policy:
//! - Structs are declared with the SDK 13.0 layout. Every struct size and every declared field
//!   offset is asserted against the 13.0 table, and against the 12.1 and 12.2 tables wherever
//!   the plugin may run with that API (12.1 is the oldest API the plugin supports).
//! - Where older SDKs differ (`NV_ENC_INITIALIZE_PARAMS` is 1808 bytes before 12.2,
//!   `NV_ENC_LOCK_BITSTREAM` 1552 bytes in 12.1, bit depth as bitfields before 12.2), the
//!   differing parts are either never touched (left zero) or written through the per-SDK
//!   constants below; allocations use the largest size of any supported SDK.
//! - Fields this plugin does not use are opaque byte arrays (`_rest*`) that only keep the size.
//! - `*_VER` values are computed from the struct revision with the header's formula and asserted
//!   equal to each SDK's table value.
//!
//! Names follow `nvEncodeAPI.h` exactly so that each field can be looked up in the header.
#![allow(
    non_snake_case,
    non_camel_case_types,
    clippy::upper_case_acronyms,
    dead_code
)]

use std::ffi::{c_char, c_void};
use std::mem::{offset_of, size_of};

/// The ABI tables rendered by `build.rs` (modules `v12_0`, `v12_1`, `v12_2`, `v13_0`).
#[allow(clippy::all, unreachable_pub, missing_docs)]
pub mod abi {
    include!(concat!(env!("OUT_DIR"), "/nvenc_abi.rs"));
}

pub type NVENCSTATUS = i32;
pub type NV_ENC_INPUT_PTR = *mut c_void;
pub type NV_ENC_OUTPUT_PTR = *mut c_void;

/// Windows-style GUID as in `nvEncodeAPI.h`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct GUID {
    pub Data1: u32,
    pub Data2: u16,
    pub Data3: u16,
    pub Data4: [u8; 8],
}

impl GUID {
    pub const fn new(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> Self {
        GUID {
            Data1: d1,
            Data2: d2,
            Data3: d3,
            Data4: d4,
        }
    }
    const fn eq_table(&self, t: (u32, u16, u16, [u8; 8])) -> bool {
        let mut i = 0;
        while i < 8 {
            if self.Data4[i] != t.3[i] {
                return false;
            }
            i += 1;
        }
        self.Data1 == t.0 && self.Data2 == t.1 && self.Data3 == t.2
    }
}

// ---- GUIDs (written by hand from the header, proven against every SDK table) ----------------

pub const NV_ENC_CODEC_H264_GUID: GUID = GUID::new(
    0x6bc82762,
    0x4e63,
    0x4ca4,
    [0xaa, 0x85, 0x1e, 0x50, 0xf3, 0x21, 0xf6, 0xbf],
);
pub const NV_ENC_CODEC_HEVC_GUID: GUID = GUID::new(
    0x790cdc88,
    0x4522,
    0x4d7b,
    [0x94, 0x25, 0xbd, 0xa9, 0x97, 0x5f, 0x76, 0x03],
);
pub const NV_ENC_CODEC_AV1_GUID: GUID = GUID::new(
    0x0a352289,
    0x0aa7,
    0x4759,
    [0x86, 0x2d, 0x5d, 0x15, 0xcd, 0x16, 0xd2, 0x54],
);
pub const NV_ENC_HEVC_PROFILE_MAIN_GUID: GUID = GUID::new(
    0xb514c39a,
    0xb55b,
    0x40fa,
    [0x87, 0x8f, 0xf1, 0x25, 0x3b, 0x4d, 0xfd, 0xec],
);
pub const NV_ENC_HEVC_PROFILE_MAIN10_GUID: GUID = GUID::new(
    0xfa4d2b6c,
    0x3a5b,
    0x411a,
    [0x80, 0x18, 0x0a, 0x3f, 0x5e, 0x3c, 0x9b, 0xe5],
);
pub const NV_ENC_HEVC_PROFILE_FREXT_GUID: GUID = GUID::new(
    0x51ec32b5,
    0x1b4c,
    0x453c,
    [0x9c, 0xbd, 0xb6, 0x16, 0xbd, 0x62, 0x13, 0x41],
);
pub const NV_ENC_CODEC_PROFILE_AUTOSELECT_GUID: GUID = GUID::new(
    0xbfd6f8e7,
    0x233c,
    0x4341,
    [0x8b, 0x3e, 0x48, 0x18, 0x52, 0x38, 0x03, 0xf4],
);
/// H.264 Baseline (profile_idc 66; NVENC codes it constrained: no B, no CABAC).
/// Proven against `tables/supplement/` for 12.x/13.0 (the shipped tables lack it).
pub const NV_ENC_H264_PROFILE_BASELINE_GUID: GUID = GUID::new(
    0x0727bcaa,
    0x78c4,
    0x4c83,
    [0x8c, 0x2f, 0xef, 0x3d, 0xff, 0x26, 0x7c, 0x6a],
);
/// H.264 Main (profile_idc 77). Proven against `tables/supplement/` for 12.x/13.0.
pub const NV_ENC_H264_PROFILE_MAIN_GUID: GUID = GUID::new(
    0x60b5c1d4,
    0x67fe,
    0x4790,
    [0x94, 0xd5, 0xc4, 0x72, 0x6d, 0x7b, 0x6e, 0x6d],
);
/// H.264 High (profile_idc 100).
pub const NV_ENC_H264_PROFILE_HIGH_GUID: GUID = GUID::new(
    0xe7cbc309,
    0x4f7a,
    0x4b89,
    [0xaf, 0x2a, 0xd5, 0x37, 0xc9, 0x2b, 0xe3, 0x10],
);
/// H.264 High 10 (profile_idc 110): SDK 13.0 only.
pub const NV_ENC_H264_PROFILE_HIGH_10_GUID: GUID = GUID::new(
    0x8f0c337e,
    0x186c,
    0x48e9,
    [0xa6, 0x9d, 0x7a, 0x83, 0x34, 0x08, 0x97, 0x58],
);
/// H.264 High 4:4:4 Predictive (profile_idc 244; `chromaFormatIDC` 3). Proven against
/// `tables/supplement/` for 12.x/13.0.
pub const NV_ENC_H264_PROFILE_HIGH_444_GUID: GUID = GUID::new(
    0x7ac663cb,
    0xa598,
    0x4960,
    [0xb8, 0x44, 0x33, 0x9b, 0x26, 0x1a, 0x7d, 0x52],
);
pub const NV_ENC_AV1_PROFILE_MAIN_GUID: GUID = GUID::new(
    0x5f2a39f5,
    0xf14e,
    0x4f95,
    [0x9a, 0x9e, 0xb7, 0x6d, 0x56, 0x8f, 0xcf, 0x97],
);
pub const NV_ENC_PRESET_P1_GUID: GUID = GUID::new(
    0xfc0a8d3e,
    0x45f8,
    0x4cf8,
    [0x80, 0xc7, 0x29, 0x88, 0x71, 0x59, 0x0e, 0xbf],
);
pub const NV_ENC_PRESET_P2_GUID: GUID = GUID::new(
    0xf581cfb8,
    0x88d6,
    0x4381,
    [0x93, 0xf0, 0xdf, 0x13, 0xf9, 0xc2, 0x7d, 0xab],
);
pub const NV_ENC_PRESET_P3_GUID: GUID = GUID::new(
    0x36850110,
    0x3a07,
    0x441f,
    [0x94, 0xd5, 0x36, 0x70, 0x63, 0x1f, 0x91, 0xf6],
);
pub const NV_ENC_PRESET_P4_GUID: GUID = GUID::new(
    0x90a7b826,
    0xdf06,
    0x4862,
    [0xb9, 0xd2, 0xcd, 0x6d, 0x73, 0xa0, 0x86, 0x81],
);
pub const NV_ENC_PRESET_P5_GUID: GUID = GUID::new(
    0x21c6e6b4,
    0x297a,
    0x4cba,
    [0x99, 0x8f, 0xb6, 0xcb, 0xde, 0x72, 0xad, 0xe3],
);
pub const NV_ENC_PRESET_P6_GUID: GUID = GUID::new(
    0x8e75c279,
    0x6299,
    0x4ab6,
    [0x83, 0x02, 0x0b, 0x21, 0x5a, 0x33, 0x5c, 0xf5],
);
pub const NV_ENC_PRESET_P7_GUID: GUID = GUID::new(
    0x84848c12,
    0x6f71,
    0x4c13,
    [0x93, 0x1b, 0x53, 0xe2, 0x83, 0xf5, 0x79, 0x74],
);

/// Proves a GUID constant against the table of every listed SDK.
macro_rules! prove_guid {
    ($name:ident in $($sdk:ident),+) => {
        $(const _: () = assert!(
            $name.eq_table(abi::$sdk::guid::$name),
            concat!(stringify!($name), " differs from the ABI table of ", stringify!($sdk))
        );)+
    };
}
prove_guid!(NV_ENC_CODEC_H264_GUID in v12_0, v12_1, v12_2, v13_0);
prove_guid!(NV_ENC_CODEC_HEVC_GUID in v12_0, v12_1, v12_2, v13_0);
prove_guid!(NV_ENC_CODEC_AV1_GUID in v12_0, v12_1, v12_2, v13_0);
prove_guid!(NV_ENC_HEVC_PROFILE_MAIN_GUID in v12_0, v12_1, v12_2, v13_0);
prove_guid!(NV_ENC_HEVC_PROFILE_MAIN10_GUID in v12_0, v12_1, v12_2, v13_0);
prove_guid!(NV_ENC_HEVC_PROFILE_FREXT_GUID in v12_0, v12_1, v12_2, v13_0);
prove_guid!(NV_ENC_AV1_PROFILE_MAIN_GUID in v12_0, v12_1, v12_2, v13_0);
prove_guid!(NV_ENC_CODEC_PROFILE_AUTOSELECT_GUID in v12_0, v12_1, v12_2, v13_0);
prove_guid!(NV_ENC_H264_PROFILE_BASELINE_GUID in v12_0, v12_1, v12_2, v13_0);
prove_guid!(NV_ENC_H264_PROFILE_MAIN_GUID in v12_0, v12_1, v12_2, v13_0);
prove_guid!(NV_ENC_H264_PROFILE_HIGH_GUID in v12_0, v12_1, v12_2, v13_0);
prove_guid!(NV_ENC_H264_PROFILE_HIGH_444_GUID in v12_0, v12_1, v12_2, v13_0);
prove_guid!(NV_ENC_H264_PROFILE_HIGH_10_GUID in v13_0);
prove_guid!(NV_ENC_PRESET_P1_GUID in v12_0, v12_1, v12_2, v13_0);
prove_guid!(NV_ENC_PRESET_P2_GUID in v12_0, v12_1, v12_2, v13_0);
prove_guid!(NV_ENC_PRESET_P3_GUID in v12_0, v12_1, v12_2, v13_0);
prove_guid!(NV_ENC_PRESET_P4_GUID in v12_0, v12_1, v12_2, v13_0);
prove_guid!(NV_ENC_PRESET_P5_GUID in v12_0, v12_1, v12_2, v13_0);
prove_guid!(NV_ENC_PRESET_P6_GUID in v12_0, v12_1, v12_2, v13_0);
prove_guid!(NV_ENC_PRESET_P7_GUID in v12_0, v12_1, v12_2, v13_0);

// ---- Enumerations (values proven against every SDK table) -----------------------------------

/// Proves integer constants against the enum values of every listed SDK.
macro_rules! prove_enum {
    ($names:tt in $($sdk:ident),+) => {
        $( prove_enum!(@sdk $sdk $names); )+
    };
    (@sdk $sdk:ident [$($name:ident),+ $(,)?]) => {
        $(const _: () = assert!(
            $name as i64 == abi::$sdk::enums::$name,
            concat!(stringify!($name), " differs from the ABI table of ", stringify!($sdk))
        );)+
    };
}

pub const NV_ENC_SUCCESS: NVENCSTATUS = 0;
pub const NV_ENC_ERR_NO_ENCODE_DEVICE: NVENCSTATUS = 1;
pub const NV_ENC_ERR_UNSUPPORTED_DEVICE: NVENCSTATUS = 2;
pub const NV_ENC_ERR_INVALID_ENCODERDEVICE: NVENCSTATUS = 3;
pub const NV_ENC_ERR_INVALID_DEVICE: NVENCSTATUS = 4;
pub const NV_ENC_ERR_DEVICE_NOT_EXIST: NVENCSTATUS = 5;
pub const NV_ENC_ERR_INVALID_PTR: NVENCSTATUS = 6;
pub const NV_ENC_ERR_INVALID_EVENT: NVENCSTATUS = 7;
pub const NV_ENC_ERR_INVALID_PARAM: NVENCSTATUS = 8;
pub const NV_ENC_ERR_INVALID_CALL: NVENCSTATUS = 9;
pub const NV_ENC_ERR_OUT_OF_MEMORY: NVENCSTATUS = 10;
pub const NV_ENC_ERR_ENCODER_NOT_INITIALIZED: NVENCSTATUS = 11;
pub const NV_ENC_ERR_UNSUPPORTED_PARAM: NVENCSTATUS = 12;
pub const NV_ENC_ERR_LOCK_BUSY: NVENCSTATUS = 13;
pub const NV_ENC_ERR_NOT_ENOUGH_BUFFER: NVENCSTATUS = 14;
pub const NV_ENC_ERR_INVALID_VERSION: NVENCSTATUS = 15;
pub const NV_ENC_ERR_MAP_FAILED: NVENCSTATUS = 16;
pub const NV_ENC_ERR_NEED_MORE_INPUT: NVENCSTATUS = 17;
pub const NV_ENC_ERR_ENCODER_BUSY: NVENCSTATUS = 18;
pub const NV_ENC_ERR_EVENT_NOT_REGISTERD: NVENCSTATUS = 19;
pub const NV_ENC_ERR_GENERIC: NVENCSTATUS = 20;
pub const NV_ENC_ERR_INCOMPATIBLE_CLIENT_KEY: NVENCSTATUS = 21;
pub const NV_ENC_ERR_UNIMPLEMENTED: NVENCSTATUS = 22;
pub const NV_ENC_ERR_RESOURCE_REGISTER_FAILED: NVENCSTATUS = 23;
pub const NV_ENC_ERR_RESOURCE_NOT_REGISTERED: NVENCSTATUS = 24;
pub const NV_ENC_ERR_RESOURCE_NOT_MAPPED: NVENCSTATUS = 25;
prove_enum!(
    [NV_ENC_SUCCESS, NV_ENC_ERR_NO_ENCODE_DEVICE, NV_ENC_ERR_UNSUPPORTED_DEVICE,
    NV_ENC_ERR_INVALID_ENCODERDEVICE, NV_ENC_ERR_INVALID_DEVICE, NV_ENC_ERR_DEVICE_NOT_EXIST,
    NV_ENC_ERR_INVALID_PTR, NV_ENC_ERR_INVALID_EVENT, NV_ENC_ERR_INVALID_PARAM,
    NV_ENC_ERR_INVALID_CALL, NV_ENC_ERR_OUT_OF_MEMORY, NV_ENC_ERR_ENCODER_NOT_INITIALIZED,
    NV_ENC_ERR_UNSUPPORTED_PARAM, NV_ENC_ERR_LOCK_BUSY, NV_ENC_ERR_NOT_ENOUGH_BUFFER,
    NV_ENC_ERR_INVALID_VERSION, NV_ENC_ERR_MAP_FAILED, NV_ENC_ERR_NEED_MORE_INPUT,
    NV_ENC_ERR_ENCODER_BUSY, NV_ENC_ERR_EVENT_NOT_REGISTERD, NV_ENC_ERR_GENERIC,
    NV_ENC_ERR_INCOMPATIBLE_CLIENT_KEY, NV_ENC_ERR_UNIMPLEMENTED,
    NV_ENC_ERR_RESOURCE_REGISTER_FAILED, NV_ENC_ERR_RESOURCE_NOT_REGISTERED,
    NV_ENC_ERR_RESOURCE_NOT_MAPPED]
    in v12_0, v12_1, v12_2, v13_0
);
/// Added in SDK 12.1.
pub const NV_ENC_ERR_NEED_MORE_OUTPUT: NVENCSTATUS = 26;
prove_enum!([NV_ENC_ERR_NEED_MORE_OUTPUT] in v12_1, v12_2, v13_0);

/// Status names indexed by value (0..=26), for error messages.
pub const STATUS_NAMES: [&str; 27] = [
    "NV_ENC_SUCCESS",
    "NV_ENC_ERR_NO_ENCODE_DEVICE",
    "NV_ENC_ERR_UNSUPPORTED_DEVICE",
    "NV_ENC_ERR_INVALID_ENCODERDEVICE",
    "NV_ENC_ERR_INVALID_DEVICE",
    "NV_ENC_ERR_DEVICE_NOT_EXIST",
    "NV_ENC_ERR_INVALID_PTR",
    "NV_ENC_ERR_INVALID_EVENT",
    "NV_ENC_ERR_INVALID_PARAM",
    "NV_ENC_ERR_INVALID_CALL",
    "NV_ENC_ERR_OUT_OF_MEMORY",
    "NV_ENC_ERR_ENCODER_NOT_INITIALIZED",
    "NV_ENC_ERR_UNSUPPORTED_PARAM",
    "NV_ENC_ERR_LOCK_BUSY",
    "NV_ENC_ERR_NOT_ENOUGH_BUFFER",
    "NV_ENC_ERR_INVALID_VERSION",
    "NV_ENC_ERR_MAP_FAILED",
    "NV_ENC_ERR_NEED_MORE_INPUT",
    "NV_ENC_ERR_ENCODER_BUSY",
    "NV_ENC_ERR_EVENT_NOT_REGISTERD",
    "NV_ENC_ERR_GENERIC",
    "NV_ENC_ERR_INCOMPATIBLE_CLIENT_KEY",
    "NV_ENC_ERR_UNIMPLEMENTED",
    "NV_ENC_ERR_RESOURCE_REGISTER_FAILED",
    "NV_ENC_ERR_RESOURCE_NOT_REGISTERED",
    "NV_ENC_ERR_RESOURCE_NOT_MAPPED",
    "NV_ENC_ERR_NEED_MORE_OUTPUT",
];
const _: () =
    assert!(STATUS_NAMES.len() as i64 == abi::v13_0::enums::NV_ENC_ERR_NEED_MORE_OUTPUT + 1);

pub const NV_ENC_DEVICE_TYPE_CUDA: u32 = 1;
prove_enum!([NV_ENC_DEVICE_TYPE_CUDA] in v12_1, v12_2, v13_0);

pub const NV_ENC_BUFFER_FORMAT_UNDEFINED: u32 = 0;
pub const NV_ENC_BUFFER_FORMAT_NV12: u32 = 0x1;
pub const NV_ENC_BUFFER_FORMAT_YV12: u32 = 0x10;
pub const NV_ENC_BUFFER_FORMAT_IYUV: u32 = 0x100;
pub const NV_ENC_BUFFER_FORMAT_YUV444: u32 = 0x1000;
pub const NV_ENC_BUFFER_FORMAT_YUV420_10BIT: u32 = 0x10000;
pub const NV_ENC_BUFFER_FORMAT_YUV444_10BIT: u32 = 0x100000;
pub const NV_ENC_BUFFER_FORMAT_ARGB: u32 = 0x1000000;
pub const NV_ENC_BUFFER_FORMAT_ARGB10: u32 = 0x2000000;
pub const NV_ENC_BUFFER_FORMAT_AYUV: u32 = 0x4000000;
pub const NV_ENC_BUFFER_FORMAT_ABGR: u32 = 0x10000000;
pub const NV_ENC_BUFFER_FORMAT_ABGR10: u32 = 0x20000000;
prove_enum!(
    [NV_ENC_BUFFER_FORMAT_UNDEFINED, NV_ENC_BUFFER_FORMAT_NV12, NV_ENC_BUFFER_FORMAT_YV12,
    NV_ENC_BUFFER_FORMAT_IYUV, NV_ENC_BUFFER_FORMAT_YUV444, NV_ENC_BUFFER_FORMAT_YUV420_10BIT,
    NV_ENC_BUFFER_FORMAT_YUV444_10BIT, NV_ENC_BUFFER_FORMAT_ARGB, NV_ENC_BUFFER_FORMAT_ARGB10,
    NV_ENC_BUFFER_FORMAT_AYUV, NV_ENC_BUFFER_FORMAT_ABGR, NV_ENC_BUFFER_FORMAT_ABGR10]
    in v12_1, v12_2, v13_0
);

pub const NV_ENC_CAPS_NUM_MAX_BFRAMES: u32 = 0;
pub const NV_ENC_CAPS_SUPPORTED_RATECONTROL_MODES: u32 = 1;
pub const NV_ENC_CAPS_WIDTH_MAX: u32 = 16;
pub const NV_ENC_CAPS_HEIGHT_MAX: u32 = 17;
/// A new encode size within `maxEncodeWidth/Height` by `nvEncReconfigureEncoder`.
pub const NV_ENC_CAPS_SUPPORT_DYN_RES_CHANGE: u32 = 19;
pub const NV_ENC_CAPS_SUPPORT_DYN_BITRATE_CHANGE: u32 = 20;
/// A new `rateControlMode` by `nvEncReconfigureEncoder`.
pub const NV_ENC_CAPS_SUPPORT_DYN_RCMODE_CHANGE: u32 = 22;
pub const NV_ENC_CAPS_SUPPORT_YUV444_ENCODE: u32 = 33;
pub const NV_ENC_CAPS_SUPPORT_LOOKAHEAD: u32 = 37;
pub const NV_ENC_CAPS_SUPPORT_TEMPORAL_AQ: u32 = 38;
pub const NV_ENC_CAPS_SUPPORT_10BIT_ENCODE: u32 = 39;
pub const NV_ENC_CAPS_SUPPORT_WEIGHTED_PREDICTION: u32 = 41;
pub const NV_ENC_CAPS_SUPPORT_BFRAME_REF_MODE: u32 = 43;
pub const NV_ENC_CAPS_WIDTH_MIN: u32 = 45;
pub const NV_ENC_CAPS_HEIGHT_MIN: u32 = 46;
/// H.264 only: CABAC entropy coding (0 = CAVLC only).
pub const NV_ENC_CAPS_SUPPORT_CABAC: u32 = 7;
pub const NV_ENC_CAPS_SUPPORT_INTRA_REFRESH: u32 = 25;
prove_enum!([NV_ENC_CAPS_SUPPORT_CABAC, NV_ENC_CAPS_SUPPORT_INTRA_REFRESH] in v12_1, v12_2, v13_0);
/// Lossless encoding (`tuningInfo` LOSSLESS), 0 or 1.
pub const NV_ENC_CAPS_SUPPORT_LOSSLESS_ENCODE: u32 = 34;
prove_enum!([NV_ENC_CAPS_SUPPORT_LOSSLESS_ENCODE] in v12_1, v12_2, v13_0);
prove_enum!(
    [NV_ENC_CAPS_NUM_MAX_BFRAMES, NV_ENC_CAPS_SUPPORTED_RATECONTROL_MODES, NV_ENC_CAPS_WIDTH_MAX,
    NV_ENC_CAPS_HEIGHT_MAX, NV_ENC_CAPS_SUPPORT_DYN_BITRATE_CHANGE,
    NV_ENC_CAPS_SUPPORT_DYN_RES_CHANGE, NV_ENC_CAPS_SUPPORT_DYN_RCMODE_CHANGE,
    NV_ENC_CAPS_SUPPORT_YUV444_ENCODE, NV_ENC_CAPS_SUPPORT_LOOKAHEAD,
    NV_ENC_CAPS_SUPPORT_TEMPORAL_AQ, NV_ENC_CAPS_SUPPORT_10BIT_ENCODE,
    NV_ENC_CAPS_SUPPORT_WEIGHTED_PREDICTION, NV_ENC_CAPS_SUPPORT_BFRAME_REF_MODE,
    NV_ENC_CAPS_WIDTH_MIN, NV_ENC_CAPS_HEIGHT_MIN]
    in v12_1, v12_2, v13_0
);
/// Maximum long-term reference frames (`NV_ENC_CAPS_NUM_MAX_LTR_FRAMES`).
pub const NV_ENC_CAPS_NUM_MAX_LTR_FRAMES: u32 = 40;
/// Emphasis level maps (`NV_ENC_QP_MAP_EMPHASIS`), 0 or 1.
pub const NV_ENC_CAPS_SUPPORT_EMPHASIS_LEVEL_MAP: u32 = 44;
prove_enum!([NV_ENC_CAPS_SUPPORT_EMPHASIS_LEVEL_MAP] in v12_0, v12_1, v12_2, v13_0);
/// NVENC engines on the GPU (`NV_ENC_CAPS_NUM_ENCODER_ENGINES`), for split-frame encoding.
pub const NV_ENC_CAPS_NUM_ENCODER_ENGINES: u32 = 49;
prove_enum!(
    [NV_ENC_CAPS_NUM_MAX_LTR_FRAMES, NV_ENC_CAPS_NUM_ENCODER_ENGINES]
    in v12_1, v12_2, v13_0
);
/// SDK 12.2+: temporal filter support (`tfLevel`), 0 or 1.
pub const NV_ENC_CAPS_SUPPORT_TEMPORAL_FILTER: u32 = 55;
/// SDK 12.2+: the highest `NV_ENC_LOOKAHEAD_LEVEL` supported ("Maximum Lookahead level
/// supported", nvEncodeAPI.h).
pub const NV_ENC_CAPS_SUPPORT_LOOKAHEAD_LEVEL: u32 = 56;
prove_enum!(
    [NV_ENC_CAPS_SUPPORT_TEMPORAL_FILTER, NV_ENC_CAPS_SUPPORT_LOOKAHEAD_LEVEL]
    in v12_2, v13_0
);

/// `NV_ENC_SPLIT_ENCODE_MODE` (SDK 12.1+, `NV_ENC_INITIALIZE_PARAMS.splitEncodeMode`; "Split
/// Encoding is not applicable to H264").
pub const NV_ENC_SPLIT_AUTO_MODE: u32 = 0;
pub const NV_ENC_SPLIT_AUTO_FORCED_MODE: u32 = 1;
pub const NV_ENC_SPLIT_TWO_FORCED_MODE: u32 = 2;
pub const NV_ENC_SPLIT_THREE_FORCED_MODE: u32 = 3;
pub const NV_ENC_SPLIT_DISABLE_MODE: u32 = 15;
prove_enum!(
    [NV_ENC_SPLIT_AUTO_MODE, NV_ENC_SPLIT_AUTO_FORCED_MODE, NV_ENC_SPLIT_TWO_FORCED_MODE,
    NV_ENC_SPLIT_THREE_FORCED_MODE, NV_ENC_SPLIT_DISABLE_MODE]
    in v12_1, v12_2, v13_0
);
/// SDK 13.0 only.
pub const NV_ENC_SPLIT_FOUR_FORCED_MODE: u32 = 4;
prove_enum!([NV_ENC_SPLIT_FOUR_FORCED_MODE] in v13_0);

/// `NV_ENC_LOOKAHEAD_LEVEL` (SDK 12.2+, `NV_ENC_RC_PARAMS.lookaheadLevel`).
pub const NV_ENC_LOOKAHEAD_LEVEL_0: u32 = 0;
pub const NV_ENC_LOOKAHEAD_LEVEL_1: u32 = 1;
pub const NV_ENC_LOOKAHEAD_LEVEL_2: u32 = 2;
pub const NV_ENC_LOOKAHEAD_LEVEL_3: u32 = 3;
pub const NV_ENC_LOOKAHEAD_LEVEL_AUTOSELECT: u32 = 15;
prove_enum!(
    [NV_ENC_LOOKAHEAD_LEVEL_0, NV_ENC_LOOKAHEAD_LEVEL_1, NV_ENC_LOOKAHEAD_LEVEL_2,
    NV_ENC_LOOKAHEAD_LEVEL_3, NV_ENC_LOOKAHEAD_LEVEL_AUTOSELECT]
    in v12_2, v13_0
);

/// `NV_ENC_TEMPORAL_FILTER_LEVEL` (SDK 12.2+; `tfLevel` is in `NV_ENC_CONFIG_HEVC` from 12.2,
/// in `NV_ENC_CONFIG_AV1` and `NV_ENC_CONFIG_H264` from 13.0).
pub const NV_ENC_TEMPORAL_FILTER_LEVEL_0: u32 = 0;
pub const NV_ENC_TEMPORAL_FILTER_LEVEL_4: u32 = 4;
prove_enum!(
    [NV_ENC_TEMPORAL_FILTER_LEVEL_0, NV_ENC_TEMPORAL_FILTER_LEVEL_4]
    in v12_2, v13_0
);

pub const NV_ENC_PARAMS_RC_CONSTQP: u32 = 0;
pub const NV_ENC_PARAMS_RC_VBR: u32 = 1;
pub const NV_ENC_PARAMS_RC_CBR: u32 = 2;
prove_enum!(
    [NV_ENC_PARAMS_RC_CONSTQP, NV_ENC_PARAMS_RC_VBR, NV_ENC_PARAMS_RC_CBR]
    in v12_1, v12_2, v13_0
);

pub const NV_ENC_TUNING_INFO_UNDEFINED: u32 = 0;
pub const NV_ENC_TUNING_INFO_HIGH_QUALITY: u32 = 1;
pub const NV_ENC_TUNING_INFO_LOW_LATENCY: u32 = 2;
pub const NV_ENC_TUNING_INFO_ULTRA_LOW_LATENCY: u32 = 3;
pub const NV_ENC_TUNING_INFO_LOSSLESS: u32 = 4;
/// SDK 12.2+, H.265 and AV1 only.
pub const NV_ENC_TUNING_INFO_ULTRA_HIGH_QUALITY: u32 = 5;
prove_enum!([NV_ENC_TUNING_INFO_ULTRA_HIGH_QUALITY] in v12_2, v13_0);
prove_enum!(
    [NV_ENC_TUNING_INFO_UNDEFINED, NV_ENC_TUNING_INFO_HIGH_QUALITY, NV_ENC_TUNING_INFO_LOW_LATENCY,
    NV_ENC_TUNING_INFO_ULTRA_LOW_LATENCY, NV_ENC_TUNING_INFO_LOSSLESS]
    in v12_1, v12_2, v13_0
);

/// `NV_ENC_QP_MAP_MODE`: how NVENC reads `NV_ENC_PIC_PARAMS::qpDeltaMap` (set in
/// `rcParams.qpMapMode` when the session is initialised). `DELTA`: a signed QP offset per block
/// added to the QP rate control chose; `DISABLED`: the map is ignored (and must be NULL).
pub const NV_ENC_QP_MAP_DISABLED: u32 = 0;
pub const NV_ENC_QP_MAP_DELTA: u32 = 2;
/// `EMPHASIS`: an emphasis level (`NV_ENC_EMPHASIS_MAP_LEVEL_0..5`) per macroblock, H.264 only,
/// where `NV_ENC_CAPS_SUPPORT_EMPHASIS_LEVEL_MAP` is 1, and "not supported when AQ
/// (Spatial/Temporal) is enabled" (nvEncodeAPI.h, `NV_ENC_RC_PARAMS::qpMapMode`).
pub const NV_ENC_QP_MAP_EMPHASIS: u32 = 1;
prove_enum!(
    [NV_ENC_QP_MAP_DISABLED, NV_ENC_QP_MAP_DELTA, NV_ENC_QP_MAP_EMPHASIS]
    in v12_0, v12_1, v12_2, v13_0
);
/// `NV_ENC_EMPHASIS_MAP_LEVEL`: 0 "for zero Delta QP value" .. 5 "for very high Delta QP
/// value"; the driver turns a level and the rate control's QP into a QP offset (its rule is
/// not published).
pub const NV_ENC_EMPHASIS_MAP_LEVEL_0: u32 = 0;
pub const NV_ENC_EMPHASIS_MAP_LEVEL_5: u32 = 5;
prove_enum!([NV_ENC_EMPHASIS_MAP_LEVEL_0, NV_ENC_EMPHASIS_MAP_LEVEL_5] in v12_0, v12_1, v12_2, v13_0);

/// `NV_ENC_HEVC_CUSIZE` of `maxCUSize`: the CTB size, which is the block of an H.265 QP map.
pub const NV_ENC_HEVC_CUSIZE_AUTOSELECT: u32 = 0;
#[allow(non_upper_case_globals)]
pub const NV_ENC_HEVC_CUSIZE_16x16: u32 = 2;
#[allow(non_upper_case_globals)]
pub const NV_ENC_HEVC_CUSIZE_32x32: u32 = 3;
#[allow(non_upper_case_globals)]
pub const NV_ENC_HEVC_CUSIZE_64x64: u32 = 4;
prove_enum!(
    [NV_ENC_HEVC_CUSIZE_AUTOSELECT, NV_ENC_HEVC_CUSIZE_16x16, NV_ENC_HEVC_CUSIZE_32x32,
    NV_ENC_HEVC_CUSIZE_64x64]
    in v12_1, v12_2, v13_0
);

pub const NV_ENC_MULTI_PASS_DISABLED: u32 = 0;
pub const NV_ENC_TWO_PASS_QUARTER_RESOLUTION: u32 = 1;
pub const NV_ENC_TWO_PASS_FULL_RESOLUTION: u32 = 2;
prove_enum!(
    [NV_ENC_MULTI_PASS_DISABLED, NV_ENC_TWO_PASS_QUARTER_RESOLUTION, NV_ENC_TWO_PASS_FULL_RESOLUTION]
    in v12_1, v12_2, v13_0
);

pub const NV_ENC_PIC_TYPE_P: u32 = 0;
pub const NV_ENC_PIC_TYPE_B: u32 = 1;
pub const NV_ENC_PIC_TYPE_I: u32 = 2;
pub const NV_ENC_PIC_TYPE_IDR: u32 = 3;
prove_enum!(
    [NV_ENC_PIC_TYPE_P, NV_ENC_PIC_TYPE_B, NV_ENC_PIC_TYPE_I, NV_ENC_PIC_TYPE_IDR]
    in v12_1, v12_2, v13_0
);

pub const NV_ENC_PIC_FLAG_FORCEINTRA: u32 = 0x1;
pub const NV_ENC_PIC_FLAG_FORCEIDR: u32 = 0x2;
pub const NV_ENC_PIC_FLAG_OUTPUT_SPSPPS: u32 = 0x4;
pub const NV_ENC_PIC_FLAG_EOS: u32 = 0x8;
prove_enum!(
    [NV_ENC_PIC_FLAG_FORCEINTRA, NV_ENC_PIC_FLAG_FORCEIDR, NV_ENC_PIC_FLAG_OUTPUT_SPSPPS,
    NV_ENC_PIC_FLAG_EOS]
    in v12_1, v12_2, v13_0
);

/// `NV_ENC_H264_ENTROPY_CODING_MODE`: the profile decides (`entropyCodingMode`).
pub const NV_ENC_H264_ENTROPY_CODING_MODE_AUTOSELECT: u32 = 0;
pub const NV_ENC_H264_ENTROPY_CODING_MODE_CABAC: u32 = 1;
pub const NV_ENC_H264_ENTROPY_CODING_MODE_CAVLC: u32 = 2;
prove_enum!(
    [NV_ENC_H264_ENTROPY_CODING_MODE_AUTOSELECT, NV_ENC_H264_ENTROPY_CODING_MODE_CABAC,
    NV_ENC_H264_ENTROPY_CODING_MODE_CAVLC]
    in v12_1, v12_2, v13_0
);

pub const NV_ENC_PIC_STRUCT_FRAME: u32 = 1;
pub const NV_ENC_PARAMS_FRAME_FIELD_MODE_FRAME: u32 = 1;
pub const NV_ENC_MEMORY_HEAP_AUTOSELECT: u32 = 0;
pub const NV_ENC_LEVEL_AUTOSELECT: u32 = 0;
pub const NV_ENC_LEVEL_AV1_AUTOSELECT: u32 = 24;
pub const NV_ENC_TIER_HEVC_MAIN: u32 = 0;
pub const NV_ENC_TIER_AV1_0: u32 = 0;
pub const NV_ENC_BIT_DEPTH_8: u32 = 8;
pub const NV_ENC_BIT_DEPTH_10: u32 = 10;
pub const NV_ENC_VUI_VIDEO_FORMAT_UNSPECIFIED: u32 = 5;
prove_enum!(
    [NV_ENC_PIC_STRUCT_FRAME, NV_ENC_PARAMS_FRAME_FIELD_MODE_FRAME, NV_ENC_MEMORY_HEAP_AUTOSELECT,
    NV_ENC_LEVEL_AUTOSELECT, NV_ENC_LEVEL_AV1_AUTOSELECT, NV_ENC_TIER_HEVC_MAIN,
    NV_ENC_TIER_AV1_0, NV_ENC_VUI_VIDEO_FORMAT_UNSPECIFIED]
    in v12_1, v12_2, v13_0
);
prove_enum!(
    [NV_ENC_BIT_DEPTH_8, NV_ENC_BIT_DEPTH_10]
    in v12_2, v13_0
);

// ---- API and struct versions ----------------------------------------------------------------

/// `NVENCAPI_VERSION` = `major | minor << 24`.
pub const fn api_version(major: u32, minor: u32) -> u32 {
    major | (minor << 24)
}

/// `NVENCAPI_STRUCT_VERSION(rev)` = `NVENCAPI_VERSION | rev << 16 | 0x7 << 28`, with bit 31 set
/// for the structs the header marks so.
pub const fn struct_version(api: u32, rev: u32, bit31: bool) -> u32 {
    api | (rev << 16) | (0x7 << 28) | if bit31 { 1 << 31 } else { 0 }
}

/// The struct versions to stamp for one API version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StructVersions {
    pub api: u32,
    pub function_list: u32,
    pub open_session: u32,
    pub caps_param: u32,
    pub preset_config: u32,
    pub config: u32,
    pub rc_params: u32,
    pub initialize: u32,
    pub create_input: u32,
    pub create_bitstream: u32,
    pub lock_input: u32,
    pub pic_params: u32,
    pub lock_bitstream: u32,
    pub sequence_param_payload: u32,
    pub reconfigure: u32,
    pub register_resource: u32,
    pub map_input_resource: u32,
}

/// Struct revisions per SDK, from the header; `(rev, bit31)`.
const fn versions(
    major: u32,
    minor: u32,
    sdk_12_2_or_later: bool,
    is_12_1: bool,
) -> StructVersions {
    let api = api_version(major, minor);
    StructVersions {
        api,
        function_list: struct_version(api, 2, false),
        open_session: struct_version(api, 1, false),
        caps_param: struct_version(api, 1, false),
        preset_config: struct_version(api, if sdk_12_2_or_later { 5 } else { 4 }, true),
        config: struct_version(api, if sdk_12_2_or_later { 9 } else { 8 }, true),
        rc_params: struct_version(api, 1, false),
        initialize: struct_version(
            api,
            if sdk_12_2_or_later {
                7
            } else if is_12_1 {
                6
            } else {
                5
            },
            true,
        ),
        create_input: struct_version(api, if sdk_12_2_or_later { 2 } else { 1 }, false),
        create_bitstream: struct_version(api, 1, false),
        lock_input: struct_version(api, 1, false),
        pic_params: struct_version(api, if sdk_12_2_or_later { 7 } else { 6 }, true),
        lock_bitstream: if sdk_12_2_or_later {
            struct_version(api, 2, true)
        } else if is_12_1 {
            struct_version(api, 1, true)
        } else {
            struct_version(api, 2, false)
        },
        sequence_param_payload: struct_version(api, 1, false),
        reconfigure: struct_version(api, if sdk_12_2_or_later { 2 } else { 1 }, true),
        register_resource: struct_version(api, if sdk_12_2_or_later { 5 } else { 4 }, false),
        map_input_resource: struct_version(api, 4, false),
    }
}

pub const VERSIONS_12_1: StructVersions = versions(12, 1, false, true);
pub const VERSIONS_12_2: StructVersions = versions(12, 2, true, false);
pub const VERSIONS_13_0: StructVersions = versions(13, 0, true, false);
/// Only used to prove the formula against the 12.0 table; the plugin refuses API 12.0.
const VERSIONS_12_0: StructVersions = versions(12, 0, false, false);

macro_rules! prove_versions {
    ($v:ident, $sdk:ident) => {
        const _: () = {
            use abi::$sdk::ver as T;
            assert!($v.api == abi::$sdk::NVENCAPI_VERSION);
            assert!($v.function_list == T::NV_ENCODE_API_FUNCTION_LIST_VER);
            assert!($v.open_session == T::NV_ENC_OPEN_ENCODE_SESSION_EX_PARAMS_VER);
            assert!($v.caps_param == T::NV_ENC_CAPS_PARAM_VER);
            assert!($v.preset_config == T::NV_ENC_PRESET_CONFIG_VER);
            assert!($v.config == T::NV_ENC_CONFIG_VER);
            assert!($v.rc_params == T::NV_ENC_RC_PARAMS_VER);
            assert!($v.initialize == T::NV_ENC_INITIALIZE_PARAMS_VER);
            assert!($v.create_input == T::NV_ENC_CREATE_INPUT_BUFFER_VER);
            assert!($v.create_bitstream == T::NV_ENC_CREATE_BITSTREAM_BUFFER_VER);
            assert!($v.lock_input == T::NV_ENC_LOCK_INPUT_BUFFER_VER);
            assert!($v.pic_params == T::NV_ENC_PIC_PARAMS_VER);
            assert!($v.lock_bitstream == T::NV_ENC_LOCK_BITSTREAM_VER);
            assert!($v.sequence_param_payload == T::NV_ENC_SEQUENCE_PARAM_PAYLOAD_VER);
            assert!($v.reconfigure == T::NV_ENC_RECONFIGURE_PARAMS_VER);
            assert!($v.register_resource == T::NV_ENC_REGISTER_RESOURCE_VER);
            assert!($v.map_input_resource == T::NV_ENC_MAP_INPUT_RESOURCE_VER);
        };
    };
}
prove_versions!(VERSIONS_12_0, v12_0);
prove_versions!(VERSIONS_12_1, v12_1);
prove_versions!(VERSIONS_12_2, v12_2);
prove_versions!(VERSIONS_13_0, v13_0);

// ---- Structs --------------------------------------------------------------------------------

/// Marker for plain-old-data FFI structs: every bit pattern of zeros is a valid value (integers,
/// raw pointers, `Option` of function pointers, arrays and unions of those).
///
/// # Safety
/// Implement only for `#[repr(C)]` types made solely of such fields.
pub unsafe trait Zeroable: Sized {}

/// A zero-initialised, heap-allocated FFI struct (the NVENC structs are kilobytes large).
pub fn boxed_zeroed<T: Zeroable>() -> Box<T> {
    // SAFETY: `T: Zeroable` guarantees all-zero bytes are a valid `T`; `Box::new_zeroed`
    // allocates with `T`'s layout.
    unsafe { Box::<T>::new_zeroed().assume_init() }
}

/// A zero-initialised FFI struct by value (for the smaller ones, e.g. a codec's picture
/// parameters before they go into the `NV_ENC_PIC_PARAMS` union).
pub fn zeroed<T: Zeroable>() -> T {
    // SAFETY: `T: Zeroable` guarantees all-zero bytes are a valid `T`.
    unsafe { std::mem::zeroed() }
}

/// Proves size and offsets of a struct against one or more SDK tables.
macro_rules! prove_layout {
    ($ty:ident as $c:ident, size in [$($ssdk:ident),*], fields in [$($fsdk:ident),+] $fields:tt) => {
        $(const _: () = assert!(
            size_of::<$ty>() == abi::$ssdk::layout::$c::SIZE,
            concat!("size of ", stringify!($ty), " differs from the ABI table of ", stringify!($ssdk))
        );)*
        $( prove_layout!(@fields $ty $c $fsdk $fields); )+
    };
    (@fields $ty:ident $c:ident $sdk:ident { $($f:ident),* $(,)? }) => {
        const _: () = {
            $(assert!(
                offset_of!($ty, $f) == abi::$sdk::layout::$c::$f,
                concat!(stringify!($ty), ".", stringify!($f), " offset differs from the ABI table of ", stringify!($sdk))
            );)*
        };
    };
}

/// A bitfield inside a `u32` storage word: (byte offset of the word, first bit, width).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitField {
    pub word_offset: usize,
    pub bit: u32,
    pub width: u32,
}

impl BitField {
    /// Returns `word` with this field set to `value` (truncated to the field width).
    pub const fn set(self, word: u32, value: u32) -> u32 {
        let mask = if self.width >= 32 {
            u32::MAX
        } else {
            ((1u32 << self.width) - 1) << self.bit
        };
        (word & !mask) | ((value << self.bit) & mask)
    }
    pub const fn get(self, word: u32) -> u32 {
        let mask = if self.width >= 32 {
            u32::MAX
        } else {
            (1u32 << self.width) - 1
        };
        (word >> self.bit) & mask
    }
    const fn eq_table(self, t: (usize, u32, u32)) -> bool {
        self.word_offset == t.0 && self.bit == t.1 && self.width == t.2
    }
}

/// Declares a bitfield constant by hand and proves it against every listed SDK table.
macro_rules! bitfield {
    ($(#[$m:meta])* $name:ident = $c:ident . $field:ident ($off:expr, $bit:expr, $w:expr) in $($sdk:ident),+) => {
        $(#[$m])*
        pub const $name: BitField = BitField { word_offset: $off, bit: $bit, width: $w };
        $(const _: () = assert!(
            $name.eq_table(abi::$sdk::layout::$c::$field),
            concat!(stringify!($c), ".", stringify!($field), " bitfield differs from the ABI table of ", stringify!($sdk))
        );)+
    };
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct NV_ENC_CAPS_PARAM {
    pub version: u32,
    pub capsToQuery: u32,
    pub reserved: [u32; 62],
}
// SAFETY: integers only.
unsafe impl Zeroable for NV_ENC_CAPS_PARAM {}
prove_layout!(NV_ENC_CAPS_PARAM as NV_ENC_CAPS_PARAM, size in [v12_1, v12_2, v13_0],
    fields in [v12_1, v12_2, v13_0] { version, capsToQuery });

#[repr(C)]
#[derive(Clone, Copy)]
pub struct NV_ENC_OPEN_ENCODE_SESSION_EX_PARAMS {
    pub version: u32,
    pub deviceType: u32,
    pub device: *mut c_void,
    pub reserved: *mut c_void,
    pub apiVersion: u32,
    pub reserved1: [u32; 253],
    pub reserved2: [*mut c_void; 64],
}
// SAFETY: integers and raw pointers only.
unsafe impl Zeroable for NV_ENC_OPEN_ENCODE_SESSION_EX_PARAMS {}
prove_layout!(NV_ENC_OPEN_ENCODE_SESSION_EX_PARAMS as NV_ENC_OPEN_ENCODE_SESSIONEX_PARAMS,
    size in [v12_1, v12_2, v13_0], fields in [v12_1, v12_2, v13_0]
    { version, deviceType, device, apiVersion });

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NV_ENC_QP {
    pub qpInterP: u32,
    pub qpInterB: u32,
    pub qpIntra: u32,
}
prove_layout!(NV_ENC_QP as NV_ENC_QP, size in [v12_1, v12_2, v13_0],
    fields in [v12_1, v12_2, v13_0] { qpInterP, qpInterB, qpIntra });

#[repr(C)]
#[derive(Clone, Copy)]
pub struct NV_ENC_RC_PARAMS {
    pub version: u32,
    pub rateControlMode: u32,
    pub constQP: NV_ENC_QP,
    pub averageBitRate: u32,
    pub maxBitRate: u32,
    pub vbvBufferSize: u32,
    pub vbvInitialDelay: u32,
    /// Bitfields: see the `RC_*` [`BitField`] constants.
    pub flags: u32,
    pub minQP: NV_ENC_QP,
    pub maxQP: NV_ENC_QP,
    pub initialRCQP: NV_ENC_QP,
    pub temporallayerIdxMask: u32,
    pub temporalLayerQP: [u8; 8],
    pub targetQuality: u8,
    pub targetQualityLSB: u8,
    pub lookaheadDepth: u16,
    pub lowDelayKeyFrameScale: u8,
    pub yDcQPIndexOffset: i8,
    pub uDcQPIndexOffset: i8,
    pub vDcQPIndexOffset: i8,
    pub qpMapMode: u32,
    pub multiPass: u32,
    pub alphaLayerBitrateRatio: u32,
    pub cbQPIndexOffset: i8,
    pub crQPIndexOffset: i8,
    pub reserved2: u16,
    /// 12.2+ (`reserved[0]` in 12.1, which must stay 0: written only for API >= 12.2).
    pub lookaheadLevel: u32,
    pub _rest: [u32; 3],
}
prove_layout!(NV_ENC_RC_PARAMS as NV_ENC_RC_PARAMS, size in [v12_1, v12_2, v13_0],
fields in [v12_1, v12_2, v13_0] {
    version, rateControlMode, constQP, averageBitRate, maxBitRate, vbvBufferSize,
    vbvInitialDelay, minQP, maxQP, initialRCQP, temporallayerIdxMask, temporalLayerQP,
    targetQuality, targetQualityLSB, lookaheadDepth, lowDelayKeyFrameScale,
    yDcQPIndexOffset, uDcQPIndexOffset, vDcQPIndexOffset, qpMapMode, multiPass,
    alphaLayerBitrateRatio, cbQPIndexOffset, crQPIndexOffset, reserved2
});
prove_layout!(NV_ENC_RC_PARAMS as NV_ENC_RC_PARAMS, size in [],
    fields in [v12_2, v13_0] { lookaheadLevel });
const _: () = assert!(offset_of!(NV_ENC_RC_PARAMS, flags) == 0x24);
bitfield!(RC_ENABLE_MIN_QP = NV_ENC_RC_PARAMS.enableMinQP(0x24, 0, 1) in v12_1, v12_2, v13_0);
bitfield!(RC_ENABLE_MAX_QP = NV_ENC_RC_PARAMS.enableMaxQP(0x24, 1, 1) in v12_1, v12_2, v13_0);
bitfield!(RC_ENABLE_INITIAL_RCQP = NV_ENC_RC_PARAMS.enableInitialRCQP(0x24, 2, 1) in v12_1, v12_2, v13_0);
bitfield!(RC_ENABLE_AQ = NV_ENC_RC_PARAMS.enableAQ(0x24, 3, 1) in v12_1, v12_2, v13_0);
bitfield!(RC_ENABLE_LOOKAHEAD = NV_ENC_RC_PARAMS.enableLookahead(0x24, 5, 1) in v12_1, v12_2, v13_0);
bitfield!(RC_DISABLE_IADAPT = NV_ENC_RC_PARAMS.disableIadapt(0x24, 6, 1) in v12_1, v12_2, v13_0);
bitfield!(RC_DISABLE_BADAPT = NV_ENC_RC_PARAMS.disableBadapt(0x24, 7, 1) in v12_1, v12_2, v13_0);
bitfield!(RC_ENABLE_TEMPORAL_AQ = NV_ENC_RC_PARAMS.enableTemporalAQ(0x24, 8, 1) in v12_1, v12_2, v13_0);
bitfield!(RC_ZERO_REORDER_DELAY = NV_ENC_RC_PARAMS.zeroReorderDelay(0x24, 9, 1) in v12_1, v12_2, v13_0);
bitfield!(RC_ENABLE_NONREF_P = NV_ENC_RC_PARAMS.enableNonRefP(0x24, 10, 1) in v12_1, v12_2, v13_0);
bitfield!(RC_STRICT_GOP_TARGET = NV_ENC_RC_PARAMS.strictGOPTarget(0x24, 11, 1) in v12_1, v12_2, v13_0);
bitfield!(RC_AQ_STRENGTH = NV_ENC_RC_PARAMS.aqStrength(0x24, 12, 4) in v12_1, v12_2, v13_0);

/// `NV_ENC_CONFIG_H264_VUI_PARAMETERS`, also used as `NV_ENC_CONFIG_HEVC_VUI_PARAMETERS`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct NV_ENC_CONFIG_H264_VUI_PARAMETERS {
    pub overscanInfoPresentFlag: u32,
    pub overscanInfo: u32,
    pub videoSignalTypePresentFlag: u32,
    pub videoFormat: u32,
    pub videoFullRangeFlag: u32,
    pub colourDescriptionPresentFlag: u32,
    pub colourPrimaries: u32,
    pub transferCharacteristics: u32,
    pub colourMatrix: u32,
    pub chromaSampleLocationFlag: u32,
    pub chromaSampleLocationTop: u32,
    pub chromaSampleLocationBot: u32,
    pub bitstreamRestrictionFlag: u32,
    pub timingInfoPresentFlag: u32,
    pub numUnitInTicks: u32,
    pub timeScale: u32,
    pub reserved: [u32; 12],
}
prove_layout!(NV_ENC_CONFIG_H264_VUI_PARAMETERS as NV_ENC_CONFIG_H264_VUI_PARAMETERS,
size in [v12_1, v12_2, v13_0], fields in [v12_1, v12_2, v13_0] {
    overscanInfoPresentFlag, overscanInfo, videoSignalTypePresentFlag, videoFormat,
    videoFullRangeFlag, colourDescriptionPresentFlag, colourPrimaries,
    transferCharacteristics, colourMatrix, chromaSampleLocationFlag, chromaSampleLocationTop,
    chromaSampleLocationBot, bitstreamRestrictionFlag, timingInfoPresentFlag, numUnitInTicks,
    timeScale
});

#[repr(C)]
#[derive(Clone, Copy)]
pub struct NV_ENC_CONFIG_HEVC {
    pub level: u32,
    pub tier: u32,
    pub minCUSize: u32,
    pub maxCUSize: u32,
    /// Bitfields: see the `HEVC_*` [`BitField`] constants.
    pub flags: u32,
    pub idrPeriod: u32,
    pub intraRefreshPeriod: u32,
    pub intraRefreshCnt: u32,
    pub maxNumRefFramesInDPB: u32,
    pub ltrNumFrames: u32,
    pub vpsId: u32,
    pub spsId: u32,
    pub ppsId: u32,
    pub sliceMode: u32,
    pub sliceModeData: u32,
    pub maxTemporalLayersMinus1: u32,
    pub hevcVUIParameters: NV_ENC_CONFIG_H264_VUI_PARAMETERS,
    pub ltrTrustMode: u32,
    pub useBFramesAsRef: u32,
    pub numRefL0: u32,
    pub numRefL1: u32,
    /// 12.2+: `tfLevel`, `disableDeblockingFilterIDC`, `outputBitDepth`, `inputBitDepth`
    /// (reserved and zero before 12.2; the plugin writes them only for API >= 12.2).
    pub tfLevel: u32,
    pub disableDeblockingFilterIDC: u32,
    pub outputBitDepth: u32,
    pub inputBitDepth: u32,
    pub _rest: [u32; 2 + 208],
    pub reserved2: [*mut c_void; 64],
}
prove_layout!(NV_ENC_CONFIG_HEVC as NV_ENC_CONFIG_HEVC, size in [v12_1, v12_2, v13_0],
fields in [v12_1, v12_2, v13_0] {
    level, tier, minCUSize, maxCUSize, idrPeriod, intraRefreshPeriod, intraRefreshCnt,
    maxNumRefFramesInDPB, ltrNumFrames, vpsId, spsId, ppsId, sliceMode, sliceModeData,
    maxTemporalLayersMinus1, hevcVUIParameters, ltrTrustMode, useBFramesAsRef, numRefL0,
    numRefL1, reserved2
});
prove_layout!(NV_ENC_CONFIG_HEVC as NV_ENC_CONFIG_HEVC, size in [],
    fields in [v12_2, v13_0] { tfLevel, disableDeblockingFilterIDC, outputBitDepth, inputBitDepth });
bitfield!(HEVC_OUTPUT_AUD = NV_ENC_CONFIG_HEVC.outputAUD(0x10, 4, 1) in v12_1, v12_2, v13_0);
bitfield!(HEVC_DISABLE_SPSPPS = NV_ENC_CONFIG_HEVC.disableSPSPPS(0x10, 6, 1) in v12_1, v12_2, v13_0);
bitfield!(HEVC_REPEAT_SPSPPS = NV_ENC_CONFIG_HEVC.repeatSPSPPS(0x10, 7, 1) in v12_1, v12_2, v13_0);
bitfield!(HEVC_CHROMA_FORMAT_IDC = NV_ENC_CONFIG_HEVC.chromaFormatIDC(0x10, 9, 2) in v12_1, v12_2, v13_0);
bitfield!(HEVC_ENABLE_INTRA_REFRESH = NV_ENC_CONFIG_HEVC.enableIntraRefresh(0x10, 8, 1) in v12_1, v12_2, v13_0);
bitfield!(
    /// Long-term references (with `ltrNumFrames`, `ltrTrustMode`); "not supported if encoding
    /// session is configured with B-frames" (nvEncodeAPI.h).
    HEVC_ENABLE_LTR = NV_ENC_CONFIG_HEVC.enableLTR(0x10, 5, 1) in v12_1, v12_2, v13_0);
bitfield!(
    /// Before 12.2 only: the output bit depth minus 8 (replaced by `outputBitDepth`).
    HEVC_PIXEL_BIT_DEPTH_MINUS8_12_1 = NV_ENC_CONFIG_HEVC.pixelBitDepthMinus8(0x10, 11, 3) in v12_0, v12_1
);

#[repr(C)]
#[derive(Clone, Copy)]
pub struct NV_ENC_CONFIG_AV1 {
    pub level: u32,
    pub tier: u32,
    pub minPartSize: u32,
    pub maxPartSize: u32,
    /// Bitfields: see the `AV1_*` [`BitField`] constants.
    pub flags: u32,
    pub idrPeriod: u32,
    pub intraRefreshPeriod: u32,
    pub intraRefreshCnt: u32,
    pub maxNumRefFramesInDPB: u32,
    pub numTileColumns: u32,
    pub numTileRows: u32,
    pub reserved2: u32,
    pub tileWidths: *mut u32,
    pub tileHeights: *mut u32,
    pub maxTemporalLayersMinus1: u32,
    pub colorPrimaries: u32,
    pub transferCharacteristics: u32,
    pub matrixCoefficients: u32,
    pub colorRange: u32,
    pub chromaSamplePosition: u32,
    pub useBFramesAsRef: u32,
    pub filmGrainParams: *mut c_void,
    pub numFwdRefs: u32,
    pub numBwdRefs: u32,
    /// 12.2+ (reserved and zero before 12.2; written only for API >= 12.2).
    pub outputBitDepth: u32,
    pub inputBitDepth: u32,
    /// 13.0 only (reserved and zero before 13.0; written only for API 13.0): LTR frames in
    /// "LTR Per Picture" mode (AV1 has no trust mode).
    pub ltrNumFrames: u32,
    /// 13.0 only.
    pub numTemporalLayers: u32,
    /// 13.0 only: `NV_ENC_TEMPORAL_FILTER_LEVEL`.
    pub tfLevel: u32,
    pub _rest: [u32; 230],
    pub reserved3: [*mut c_void; 62],
}
prove_layout!(NV_ENC_CONFIG_AV1 as NV_ENC_CONFIG_AV1, size in [v12_1, v12_2, v13_0],
fields in [v12_1, v12_2, v13_0] {
    level, tier, minPartSize, maxPartSize, idrPeriod, intraRefreshPeriod, intraRefreshCnt,
    maxNumRefFramesInDPB, numTileColumns, numTileRows, tileWidths, tileHeights,
    maxTemporalLayersMinus1, colorPrimaries, transferCharacteristics, matrixCoefficients,
    colorRange, chromaSamplePosition, useBFramesAsRef, filmGrainParams, numFwdRefs,
    numBwdRefs
});
prove_layout!(NV_ENC_CONFIG_AV1 as NV_ENC_CONFIG_AV1, size in [],
    fields in [v12_2, v13_0] { reserved2, outputBitDepth, inputBitDepth, reserved3 });
prove_layout!(NV_ENC_CONFIG_AV1 as NV_ENC_CONFIG_AV1, size in [],
    fields in [v13_0] { ltrNumFrames, numTemporalLayers, tfLevel });
bitfield!(AV1_OUTPUT_ANNEXB_FORMAT = NV_ENC_CONFIG_AV1.outputAnnexBFormat(0x10, 0, 1) in v12_1, v12_2, v13_0);
bitfield!(AV1_ENABLE_TIMING_INFO = NV_ENC_CONFIG_AV1.enableTimingInfo(0x10, 1, 1) in v12_1, v12_2, v13_0);
bitfield!(AV1_DISABLE_SEQ_HDR = NV_ENC_CONFIG_AV1.disableSeqHdr(0x10, 4, 1) in v12_1, v12_2, v13_0);
bitfield!(AV1_REPEAT_SEQ_HDR = NV_ENC_CONFIG_AV1.repeatSeqHdr(0x10, 5, 1) in v12_1, v12_2, v13_0);
bitfield!(AV1_CHROMA_FORMAT_IDC = NV_ENC_CONFIG_AV1.chromaFormatIDC(0x10, 7, 2) in v12_1, v12_2, v13_0);
bitfield!(AV1_ENABLE_INTRA_REFRESH = NV_ENC_CONFIG_AV1.enableIntraRefresh(0x10, 6, 1) in v12_1, v12_2, v13_0);
bitfield!(
    /// 13.0 only (the bit held `inputPixelBitDepthMinus8` before 12.2, reserved in 12.2).
    AV1_ENABLE_LTR = NV_ENC_CONFIG_AV1.enableLTR(0x10, 12, 1) in v13_0);
bitfield!(
    /// Before 12.2 only (in 13.0 these bits mean `enableLTR` ... `outputMasteringDisplay`).
    AV1_INPUT_PIXEL_BIT_DEPTH_MINUS8_12_1 = NV_ENC_CONFIG_AV1.inputPixelBitDepthMinus8(0x10, 12, 3) in v12_0, v12_1
);
bitfield!(
    /// Before 12.2 only.
    AV1_PIXEL_BIT_DEPTH_MINUS8_12_1 = NV_ENC_CONFIG_AV1.pixelBitDepthMinus8(0x10, 15, 3) in v12_0, v12_1
);

#[repr(C)]
#[derive(Clone, Copy)]
pub struct NV_ENC_CONFIG_H264 {
    /// Bitfields: see the `H264_*` [`BitField`] constants.
    pub flags: u32,
    pub level: u32,
    pub idrPeriod: u32,
    pub separateColourPlaneFlag: u32,
    pub disableDeblockingFilterIDC: u32,
    pub numTemporalLayers: u32,
    pub spsId: u32,
    pub ppsId: u32,
    pub adaptiveTransformMode: u32,
    pub fmoMode: u32,
    pub bdirectMode: u32,
    pub entropyCodingMode: u32,
    pub stereoMode: u32,
    pub intraRefreshPeriod: u32,
    pub intraRefreshCnt: u32,
    pub maxNumRefFrames: u32,
    pub sliceMode: u32,
    pub sliceModeData: u32,
    pub h264VUIParameters: NV_ENC_CONFIG_H264_VUI_PARAMETERS,
    pub ltrNumFrames: u32,
    pub ltrTrustMode: u32,
    pub chromaFormatIDC: u32,
    pub maxTemporalLayers: u32,
    pub useBFramesAsRef: u32,
    pub numRefL0: u32,
    pub numRefL1: u32,
    /// 12.2+: `outputBitDepth`, `inputBitDepth` (13.0: also `tfLevel`); reserved before.
    pub outputBitDepth: u32,
    pub inputBitDepth: u32,
    /// 13.0 only (reserved and zero before; written only for API 13.0).
    pub tfLevel: u32,
    pub _rest: [u32; 264],
    pub reserved2: [*mut c_void; 64],
}
prove_layout!(NV_ENC_CONFIG_H264 as NV_ENC_CONFIG_H264, size in [v12_1, v12_2, v13_0],
fields in [v12_1, v12_2, v13_0] {
    level, idrPeriod, separateColourPlaneFlag, disableDeblockingFilterIDC, numTemporalLayers,
    spsId, ppsId, adaptiveTransformMode, fmoMode, bdirectMode, entropyCodingMode, stereoMode,
    intraRefreshPeriod, intraRefreshCnt, maxNumRefFrames, sliceMode, sliceModeData,
    h264VUIParameters, ltrNumFrames, ltrTrustMode, chromaFormatIDC, maxTemporalLayers,
    useBFramesAsRef, numRefL0, numRefL1, reserved2
});
prove_layout!(NV_ENC_CONFIG_H264 as NV_ENC_CONFIG_H264, size in [],
    fields in [v12_2, v13_0] { outputBitDepth, inputBitDepth });
prove_layout!(NV_ENC_CONFIG_H264 as NV_ENC_CONFIG_H264, size in [],
    fields in [v13_0] { tfLevel });
bitfield!(H264_OUTPUT_AUD = NV_ENC_CONFIG_H264.outputAUD(0x0, 6, 1) in v12_1, v12_2, v13_0);
bitfield!(H264_DISABLE_SPSPPS = NV_ENC_CONFIG_H264.disableSPSPPS(0x0, 7, 1) in v12_1, v12_2, v13_0);
bitfield!(H264_REPEAT_SPSPPS = NV_ENC_CONFIG_H264.repeatSPSPPS(0x0, 12, 1) in v12_1, v12_2, v13_0);
bitfield!(H264_ENABLE_LTR = NV_ENC_CONFIG_H264.enableLTR(0x0, 14, 1) in v12_1, v12_2, v13_0);
bitfield!(H264_ENABLE_INTRA_REFRESH = NV_ENC_CONFIG_H264.enableIntraRefresh(0x0, 10, 1) in v12_1, v12_2, v13_0);
bitfield!(
    /// Clock timestamps (`NV_ENC_PIC_PARAMS_H264::timeCode`) in picture timing SEI.
    H264_ENABLE_TIME_CODE = NV_ENC_CONFIG_H264.enableTimeCode(0x0, 21, 1) in v12_1, v12_2, v13_0
);

/// `NV_ENC_CODEC_CONFIG` union (1792 bytes, the size of its largest member `h264Config`).
#[repr(C)]
#[derive(Clone, Copy)]
pub union NV_ENC_CODEC_CONFIG {
    pub h264Config: NV_ENC_CONFIG_H264,
    pub hevcConfig: NV_ENC_CONFIG_HEVC,
    pub av1Config: NV_ENC_CONFIG_AV1,
    /// `reserved[320]`: only its size matters here.
    pub _reserved: [u64; 160],
}

impl NV_ENC_CODEC_CONFIG {
    // SAFETY (all six): every member holds only integers, bitfield words and raw pointers, for
    // which any bit pattern is valid, and the union is always fully initialised (zeroed, then
    // filled by nvEncGetEncodePresetConfigEx); so viewing it as any member is sound. Which
    // member NVENC reads is the session's codec: callers pick the member of that codec.

    /// The H.264 member.
    pub fn h264(&self) -> &NV_ENC_CONFIG_H264 {
        // SAFETY: see above.
        unsafe { &self.h264Config }
    }
    /// The H.264 member, to fill.
    pub fn h264_mut(&mut self) -> &mut NV_ENC_CONFIG_H264 {
        // SAFETY: see above.
        unsafe { &mut self.h264Config }
    }
    /// The H.265 member.
    pub fn hevc(&self) -> &NV_ENC_CONFIG_HEVC {
        // SAFETY: see above.
        unsafe { &self.hevcConfig }
    }
    /// The H.265 member, to fill.
    pub fn hevc_mut(&mut self) -> &mut NV_ENC_CONFIG_HEVC {
        // SAFETY: see above.
        unsafe { &mut self.hevcConfig }
    }
    /// The AV1 member.
    pub fn av1(&self) -> &NV_ENC_CONFIG_AV1 {
        // SAFETY: see above.
        unsafe { &self.av1Config }
    }
    /// The AV1 member, to fill.
    pub fn av1_mut(&mut self) -> &mut NV_ENC_CONFIG_AV1 {
        // SAFETY: see above.
        unsafe { &mut self.av1Config }
    }
}
const _: () = assert!(size_of::<NV_ENC_CODEC_CONFIG>() == size_of::<NV_ENC_CONFIG_H264>());

#[repr(C)]
#[derive(Clone, Copy)]
pub struct NV_ENC_CONFIG {
    pub version: u32,
    pub profileGUID: GUID,
    pub gopLength: u32,
    pub frameIntervalP: i32,
    pub monoChromeEncoding: u32,
    pub frameFieldMode: u32,
    pub mvPrecision: u32,
    pub rcParams: NV_ENC_RC_PARAMS,
    pub encodeCodecConfig: NV_ENC_CODEC_CONFIG,
    pub reserved: [u32; 278],
    pub reserved2: [*mut c_void; 64],
}
// SAFETY: integers, raw pointers and unions of those only.
unsafe impl Zeroable for NV_ENC_CONFIG {}
prove_layout!(NV_ENC_CONFIG as NV_ENC_CONFIG, size in [v12_1, v12_2, v13_0],
fields in [v12_1, v12_2, v13_0] {
    version, profileGUID, gopLength, frameIntervalP, monoChromeEncoding, frameFieldMode,
    mvPrecision, rcParams, encodeCodecConfig, reserved, reserved2
});
/// The table gives the union's size through the field that holds it.
const _: () = assert!(size_of::<NV_ENC_CODEC_CONFIG>() == 0x700);

#[repr(C)]
#[derive(Clone, Copy)]
pub struct NV_ENC_PRESET_CONFIG {
    pub version: u32,
    pub reserved: u32,
    pub presetCfg: NV_ENC_CONFIG,
    pub reserved1: [u32; 256],
    pub reserved2: [*mut c_void; 64],
}
// SAFETY: see NV_ENC_CONFIG.
unsafe impl Zeroable for NV_ENC_PRESET_CONFIG {}
prove_layout!(NV_ENC_PRESET_CONFIG as NV_ENC_PRESET_CONFIG, size in [v12_0, v12_1, v12_2, v13_0],
    fields in [v12_1, v12_2, v13_0] { version, presetCfg, reserved1, reserved2 });

/// `NV_ENC_INITIALIZE_PARAMS` with the 12.2+ layout (1800 bytes), plus tail padding so that a
/// 12.1 driver, which reads 1808 bytes, reads only our zeros (see [`INITIALIZE_PARAMS_ALLOC`]).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct NV_ENC_INITIALIZE_PARAMS {
    pub version: u32,
    pub encodeGUID: GUID,
    pub presetGUID: GUID,
    pub encodeWidth: u32,
    pub encodeHeight: u32,
    pub darWidth: u32,
    pub darHeight: u32,
    pub frameRateNum: u32,
    pub frameRateDen: u32,
    pub enableEncodeAsync: u32,
    pub enablePTD: u32,
    /// Bitfields: see the `INIT_*` [`BitField`] constants (12.0 and 12.1 place
    /// `enableOutputInVidmem` differently; the plugin sets bits 5..=8, `splitEncodeMode`, only
    /// with API 12.1+, and never bit 9).
    pub flags: u32,
    pub privDataSize: u32,
    pub reserved: u32,
    pub privData: *mut c_void,
    pub encodeConfig: *mut NV_ENC_CONFIG,
    pub maxEncodeWidth: u32,
    pub maxEncodeHeight: u32,
    pub maxMEHintCountsPerBlock: [u32; 8],
    pub tuningInfo: u32,
    pub bufferFormat: u32,
    pub numStateBuffers: u32,
    pub outputStatsLevel: u32,
    pub reserved1: [u32; 284],
    pub reserved2: [*mut c_void; 64],
    /// Not part of the 12.2+ struct: room for the 8 bytes the 12.0/12.1 layout has more.
    pub _tail_for_12_1: [u8; 8],
}
// SAFETY: integers and raw pointers only.
unsafe impl Zeroable for NV_ENC_INITIALIZE_PARAMS {}
prove_layout!(NV_ENC_INITIALIZE_PARAMS as NV_ENC_INITIALIZE_PARAMS, size in [],
fields in [v12_1, v12_2, v13_0] {
    version, encodeGUID, presetGUID, encodeWidth, encodeHeight, darWidth, darHeight,
    frameRateNum, frameRateDen, enableEncodeAsync, enablePTD, privDataSize, privData,
    encodeConfig, maxEncodeWidth, maxEncodeHeight, maxMEHintCountsPerBlock, tuningInfo,
    bufferFormat
});
prove_layout!(NV_ENC_INITIALIZE_PARAMS as NV_ENC_INITIALIZE_PARAMS, size in [],
    fields in [v12_2, v13_0] { reserved, numStateBuffers, outputStatsLevel, reserved1, reserved2 });
/// Bytes of `NV_ENC_INITIALIZE_PARAMS` a driver may read: the largest size of any supported SDK.
pub const INITIALIZE_PARAMS_ALLOC: usize = abi::v12_1::layout::NV_ENC_INITIALIZE_PARAMS::SIZE;
const _: () = assert!(
    offset_of!(NV_ENC_INITIALIZE_PARAMS, _tail_for_12_1)
        == abi::v13_0::layout::NV_ENC_INITIALIZE_PARAMS::SIZE
);
const _: () = assert!(size_of::<NV_ENC_INITIALIZE_PARAMS>() >= INITIALIZE_PARAMS_ALLOC);
const _: () = assert!(
    size_of::<NV_ENC_INITIALIZE_PARAMS>() >= abi::v12_2::layout::NV_ENC_INITIALIZE_PARAMS::SIZE
);
bitfield!(INIT_ENABLE_WEIGHTED_PREDICTION = NV_ENC_INITIALIZE_PARAMS.enableWeightedPrediction(0x44, 4, 1)
    in v12_0, v12_1, v12_2, v13_0);
bitfield!(
    /// SDK 12.1+ (in 12.0 bit 5 is `enableOutputInVidmem`; the plugin needs 12.1 anyway):
    /// `NV_ENC_SPLIT_ENCODE_MODE`, HEVC and AV1 only.
    INIT_SPLIT_ENCODE_MODE = NV_ENC_INITIALIZE_PARAMS.splitEncodeMode(0x44, 5, 4) in v12_1, v12_2, v13_0);

#[repr(C)]
#[derive(Clone, Copy)]
pub struct NV_ENC_CREATE_INPUT_BUFFER {
    pub version: u32,
    pub width: u32,
    pub height: u32,
    pub memoryHeap: u32,
    pub bufferFmt: u32,
    pub reserved: u32,
    pub inputBuffer: NV_ENC_INPUT_PTR,
    pub pSysMemBuffer: *mut c_void,
    pub reserved1: [u32; 58],
    pub reserved2: [*mut c_void; 63],
}
// SAFETY: integers and raw pointers only.
unsafe impl Zeroable for NV_ENC_CREATE_INPUT_BUFFER {}
prove_layout!(NV_ENC_CREATE_INPUT_BUFFER as NV_ENC_CREATE_INPUT_BUFFER, size in [v12_1, v12_2, v13_0],
    fields in [v12_1, v12_2, v13_0] { version, width, height, memoryHeap, bufferFmt, inputBuffer, pSysMemBuffer });

#[repr(C)]
#[derive(Clone, Copy)]
pub struct NV_ENC_CREATE_BITSTREAM_BUFFER {
    pub version: u32,
    pub size: u32,
    pub memoryHeap: u32,
    pub reserved: u32,
    pub bitstreamBuffer: NV_ENC_OUTPUT_PTR,
    pub bitstreamBufferPtr: *mut c_void,
    pub reserved1: [u32; 58],
    pub reserved2: [*mut c_void; 64],
}
// SAFETY: integers and raw pointers only.
unsafe impl Zeroable for NV_ENC_CREATE_BITSTREAM_BUFFER {}
prove_layout!(NV_ENC_CREATE_BITSTREAM_BUFFER as NV_ENC_CREATE_BITSTREAM_BUFFER,
    size in [v12_1, v12_2, v13_0], fields in [v12_1, v12_2, v13_0]
    { version, size, memoryHeap, bitstreamBuffer, bitstreamBufferPtr });

#[repr(C)]
#[derive(Clone, Copy)]
pub struct NV_ENC_LOCK_INPUT_BUFFER {
    pub version: u32,
    /// Bit 0: `doNotWait`.
    pub flags: u32,
    pub inputBuffer: NV_ENC_INPUT_PTR,
    pub bufferDataPtr: *mut c_void,
    pub pitch: u32,
    pub reserved1: [u32; 251],
    pub reserved2: [*mut c_void; 64],
}
// SAFETY: integers and raw pointers only.
unsafe impl Zeroable for NV_ENC_LOCK_INPUT_BUFFER {}
prove_layout!(NV_ENC_LOCK_INPUT_BUFFER as NV_ENC_LOCK_INPUT_BUFFER, size in [v12_1, v12_2, v13_0],
    fields in [v12_1, v12_2, v13_0] { version, inputBuffer, bufferDataPtr, pitch });

/// `NV_ENC_SEI_PAYLOAD`: one SEI message (H.264, H.265) or one metadata OBU (AV1) that NVENC
/// writes into the access unit / temporal unit of the picture it is passed with.
/// `payloadType` is the SEI `payloadType` (H.26x) or the AV1 `metadata_type`; `payload` holds
/// `payloadSize` bytes of the message body (no type/size header, no trailing bits). NVENC
/// copies it during `nvEncEncodePicture` (FFmpeg frees its payloads right after the call).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct NV_ENC_SEI_PAYLOAD {
    pub payloadSize: u32,
    pub payloadType: u32,
    pub payload: *mut u8,
}
// SAFETY: integers and raw pointers only.
unsafe impl Zeroable for NV_ENC_SEI_PAYLOAD {}
prove_layout!(NV_ENC_SEI_PAYLOAD as NV_ENC_SEI_PAYLOAD, size in [v12_1, v12_2, v13_0],
    fields in [v12_1, v12_2, v13_0] { payloadSize, payloadType, payload });

/// `CHROMA_POINTS` (SDK 13.0): CIE 1931 x, y of a primary or the white point.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CHROMA_POINTS {
    pub x: u16,
    pub y: u16,
}
prove_layout!(CHROMA_POINTS as CHROMA_POINTS, size in [v13_0], fields in [v13_0] { x, y });

/// `MASTERING_DISPLAY_INFO` (SDK 13.0), for `pMasteringDisplay`. The header gives no units;
/// FFmpeg (the only public client) fills it in the units of the coded syntax: H.265 SEI units
/// (chromaticity in 0.00002, luminance in 0.0001 cd/m²) for HEVC, AV1 `metadata_hdr_mdcv`
/// units (0.16 fixed-point chromaticity, max luminance 24.8, min luminance 18.14 fixed point
/// cd/m²) for AV1. Primaries are named, not ordered.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MASTERING_DISPLAY_INFO {
    pub g: CHROMA_POINTS,
    pub b: CHROMA_POINTS,
    pub r: CHROMA_POINTS,
    pub whitePoint: CHROMA_POINTS,
    pub maxLuma: u32,
    pub minLuma: u32,
}
prove_layout!(MASTERING_DISPLAY_INFO as MASTERING_DISPLAY_INFO, size in [v13_0],
    fields in [v13_0] { g, b, r, whitePoint, maxLuma, minLuma });

/// `CONTENT_LIGHT_LEVEL` (SDK 13.0), for `pMaxCll`: MaxCLL and MaxFALL in cd/m² (the same unit
/// in the H.265 SEI and the AV1 OBU).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CONTENT_LIGHT_LEVEL {
    pub maxContentLightLevel: u16,
    pub maxPicAverageLightLevel: u16,
}
prove_layout!(CONTENT_LIGHT_LEVEL as CONTENT_LIGHT_LEVEL, size in [v13_0],
    fields in [v13_0] { maxContentLightLevel, maxPicAverageLightLevel });

bitfield!(
    /// 13.0 only: NVENC writes a content light level SEI from `pMaxCll` (bits 23/24 are
    /// reserved in 12.1/12.2, proven below).
    HEVC_OUTPUT_MAX_CLL = NV_ENC_CONFIG_HEVC.outputMaxCll(0x10, 23, 1) in v13_0);
bitfield!(
    /// 13.0 only: NVENC writes a mastering display colour volume SEI from `pMasteringDisplay`.
    HEVC_OUTPUT_MASTERING_DISPLAY = NV_ENC_CONFIG_HEVC.outputMasteringDisplay(0x10, 24, 1) in v13_0);
bitfield!(
    /// 13.0 only: NVENC writes a `METADATA_TYPE_HDR_CLL` OBU from `pMaxCll`. In 12.1 these bits
    /// are `pixelBitDepthMinus8`: never set them there.
    AV1_OUTPUT_MAX_CLL = NV_ENC_CONFIG_AV1.outputMaxCll(0x10, 14, 1) in v13_0);
bitfield!(
    /// 13.0 only: NVENC writes a `METADATA_TYPE_HDR_MDCV` OBU from `pMasteringDisplay`.
    AV1_OUTPUT_MASTERING_DISPLAY = NV_ENC_CONFIG_AV1.outputMasteringDisplay(0x10, 15, 1) in v13_0);
// Before 13.0 the HEVC bits are in `reserved:12` (bits 20..32); the AV1 ones in 12.2's
// `reserved4:6` (bits 12..18). (12.1's AV1 bits are the bit depth, see above.)
const _: () = {
    macro_rules! inside {
        ($bf:expr, $t:expr) => {
            assert!(
                $bf.word_offset == $t.0 && $bf.bit >= $t.1 && $bf.bit + $bf.width <= $t.1 + $t.2
            )
        };
    }
    inside!(
        HEVC_OUTPUT_MAX_CLL,
        abi::v12_1::layout::NV_ENC_CONFIG_HEVC::reserved
    );
    inside!(
        HEVC_OUTPUT_MASTERING_DISPLAY,
        abi::v12_1::layout::NV_ENC_CONFIG_HEVC::reserved
    );
    inside!(
        HEVC_OUTPUT_MAX_CLL,
        abi::v12_2::layout::NV_ENC_CONFIG_HEVC::reserved
    );
    inside!(
        HEVC_OUTPUT_MASTERING_DISPLAY,
        abi::v12_2::layout::NV_ENC_CONFIG_HEVC::reserved
    );
    inside!(
        AV1_OUTPUT_MAX_CLL,
        abi::v12_2::layout::NV_ENC_CONFIG_AV1::reserved4
    );
    inside!(
        AV1_OUTPUT_MASTERING_DISPLAY,
        abi::v12_2::layout::NV_ENC_CONFIG_AV1::reserved4
    );
};

/// `NV_ENC_PIC_PARAMS_H264`, up to `seiPayloadArray` (same offsets in 12.1 .. 13.0).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct NV_ENC_PIC_PARAMS_H264 {
    pub displayPOCSyntax: u32,
    pub reserved3: u32,
    pub refPicFlag: u32,
    pub colourPlaneId: u32,
    pub forceIntraRefreshWithFrameCnt: u32,
    /// Bitfields (`constrainedFrame` ...): left zero.
    pub flags: u32,
    pub sliceTypeData: *mut u8,
    pub sliceTypeArrayCnt: u32,
    pub seiPayloadArrayCnt: u32,
    pub seiPayloadArray: *mut NV_ENC_SEI_PAYLOAD,
    /// `sliceMode` .. `h264ExtPicParams` (0x30..0xd0): left zero here (the LTR fields are
    /// written by byte offset, `sdkext`).
    pub _mid: [u64; (0xd0 - 0x30) / 8],
    /// Clock timestamps of the picture timing SEI, read only with
    /// `NV_ENC_CONFIG_H264::enableTimeCode` (API 12.2+ here: 12.1's `NV_ENC_TIME_CODE` has no
    /// `skipClockTimestampInsertion`, whose bytes are reserved there).
    pub timeCode: NV_ENC_TIME_CODE,
    pub _rest: [u64; (1536 - 0xf0) / 8],
}
// SAFETY: integers and raw pointers only.
unsafe impl Zeroable for NV_ENC_PIC_PARAMS_H264 {}
prove_layout!(NV_ENC_PIC_PARAMS_H264 as NV_ENC_PIC_PARAMS_H264, size in [v12_1, v12_2, v13_0],
fields in [v12_1, v12_2, v13_0] {
    displayPOCSyntax, reserved3, refPicFlag, colourPlaneId, forceIntraRefreshWithFrameCnt,
    sliceTypeData, sliceTypeArrayCnt, seiPayloadArrayCnt, seiPayloadArray, timeCode
});
const _: () = assert!(
    offset_of!(NV_ENC_PIC_PARAMS_H264, _mid) == abi::v12_2::layout::NV_ENC_PIC_PARAMS_H264::sliceMode
        && offset_of!(NV_ENC_PIC_PARAMS_H264, _rest)
            == abi::v12_2::layout::NV_ENC_PIC_PARAMS_H264::reserved
        && offset_of!(NV_ENC_PIC_PARAMS_H264, _rest)
            == abi::v13_0::layout::NV_ENC_PIC_PARAMS_H264::reserved
        // 12.1: `timeCode` is 28 bytes; the 4 bytes of `skipClockTimestampInsertion` are the
        // start of `reserved`.
        && offset_of!(NV_ENC_PIC_PARAMS_H264, timeCode)
            + offset_of!(NV_ENC_TIME_CODE, skipClockTimestampInsertion)
            == abi::v12_1::layout::NV_ENC_PIC_PARAMS_H264::reserved,
    "NV_ENC_PIC_PARAMS_H264: timeCode and the bytes around it differ from the ABI tables"
);

/// `NV_ENC_CLOCK_TIMESTAMP_SET`: one clock timestamp (H.264 D.1.3 `clock_timestamp`, H.265
/// D.2.27). The first word holds the bitfields (`CTS_*` [`BitField`] constants);
/// `timeOffset` is `time_offset` (two's complement in `time_offset_length` bits).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NV_ENC_CLOCK_TIMESTAMP_SET {
    pub flags: u32,
    pub timeOffset: u32,
}
prove_layout!(NV_ENC_CLOCK_TIMESTAMP_SET as NV_ENC_CLOCK_TIMESTAMP_SET, size in [v12_1, v12_2, v13_0],
    fields in [v12_1, v12_2, v13_0] { timeOffset });
bitfield!(
    /// `counting_type`: 1 bit in the 12.x/13.0 headers for a 5-bit syntax element (0: no
    /// dropping of `n_frames` values, 1: no dropping, `time_offset` in use); how the driver
    /// widens it is not documented.
    CTS_COUNTING_TYPE = NV_ENC_CLOCK_TIMESTAMP_SET.countingType(0x0, 0, 1) in v12_1, v12_2, v13_0
);
bitfield!(CTS_DISCONTINUITY_FLAG = NV_ENC_CLOCK_TIMESTAMP_SET.discontinuityFlag(0x0, 1, 1) in v12_1, v12_2, v13_0);
bitfield!(CTS_CNT_DROPPED_FRAMES = NV_ENC_CLOCK_TIMESTAMP_SET.cntDroppedFrames(0x0, 2, 1) in v12_1, v12_2, v13_0);
bitfield!(CTS_N_FRAMES = NV_ENC_CLOCK_TIMESTAMP_SET.nFrames(0x0, 3, 8) in v12_1, v12_2, v13_0);
bitfield!(CTS_SECONDS_VALUE = NV_ENC_CLOCK_TIMESTAMP_SET.secondsValue(0x0, 11, 6) in v12_1, v12_2, v13_0);
bitfield!(CTS_MINUTES_VALUE = NV_ENC_CLOCK_TIMESTAMP_SET.minutesValue(0x0, 17, 6) in v12_1, v12_2, v13_0);
bitfield!(CTS_HOURS_VALUE = NV_ENC_CLOCK_TIMESTAMP_SET.hoursValue(0x0, 23, 5) in v12_1, v12_2, v13_0);

/// `NV_ENC_TIME_CODE` (12.2/13.0 layout, 32 bytes; 12.1's ends before
/// `skipClockTimestampInsertion`, 28 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NV_ENC_TIME_CODE {
    /// `NV_ENC_DISPLAY_PIC_STRUCT` ([`NV_ENC_PIC_STRUCT_DISPLAY_FRAME`] ...).
    pub displayPicStruct: u32,
    pub clockTimestamp: [NV_ENC_CLOCK_TIMESTAMP_SET; 3],
    /// 1: no clock timestamp for this picture (API 12.2+).
    pub skipClockTimestampInsertion: u32,
}
prove_layout!(NV_ENC_TIME_CODE as NV_ENC_TIME_CODE, size in [v12_2, v13_0],
    fields in [v12_2, v13_0] { displayPicStruct, clockTimestamp, skipClockTimestampInsertion });
prove_layout!(NV_ENC_TIME_CODE as NV_ENC_TIME_CODE, size in [],
    fields in [v12_1] { displayPicStruct, clockTimestamp });
/// `NV_ENC_DISPLAY_PIC_STRUCT`: a progressive frame (H.264 `pic_struct` 0, one clock timestamp).
pub const NV_ENC_PIC_STRUCT_DISPLAY_FRAME: u32 = 0;
prove_enum!([NV_ENC_PIC_STRUCT_DISPLAY_FRAME] in v12_1, v12_2, v13_0);

/// `NV_ENC_PIC_PARAMS_HEVC` with the 13.0 layout. `pMaxCll` and `pMasteringDisplay` are 13.0
/// fields; in 12.1/12.2 their bytes are reserved (proven below) and are written only with API
/// 13.0.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct NV_ENC_PIC_PARAMS_HEVC {
    pub displayPOCSyntax: u32,
    pub refPicFlag: u32,
    pub temporalId: u32,
    pub forceIntraRefreshWithFrameCnt: u32,
    /// Bitfields (`constrainedFrame` ...): left zero.
    pub flags: u32,
    pub reserved1: u32,
    pub sliceTypeData: *mut u8,
    pub sliceTypeArrayCnt: u32,
    pub sliceMode: u32,
    pub sliceModeData: u32,
    pub ltrMarkFrameIdx: u32,
    pub ltrUseFrameBitmap: u32,
    pub ltrUsageMode: u32,
    pub seiPayloadArrayCnt: u32,
    pub reserved: u32,
    pub seiPayloadArray: *mut NV_ENC_SEI_PAYLOAD,
    /// `NV_ENC_TIME_CODE timeCode` (12.1: 0x1c bytes, then reserved): left zero.
    pub timeCode: [u32; 8],
    pub numTemporalLayers: u32,
    pub viewId: u32,
    pub p3DReferenceDisplayInfo: *mut c_void,
    pub pMaxCll: *mut CONTENT_LIGHT_LEVEL,
    pub pMasteringDisplay: *mut MASTERING_DISPLAY_INFO,
    pub _rest: [u64; (1536 - 0x88) / 8],
}
// SAFETY: integers and raw pointers only.
unsafe impl Zeroable for NV_ENC_PIC_PARAMS_HEVC {}
prove_layout!(NV_ENC_PIC_PARAMS_HEVC as NV_ENC_PIC_PARAMS_HEVC, size in [v12_1, v12_2, v13_0],
fields in [v12_1, v12_2, v13_0] {
    displayPOCSyntax, refPicFlag, temporalId, forceIntraRefreshWithFrameCnt, sliceTypeData,
    sliceTypeArrayCnt, sliceMode, sliceModeData, ltrMarkFrameIdx, ltrUseFrameBitmap,
    ltrUsageMode, seiPayloadArrayCnt, reserved, seiPayloadArray, timeCode
});
prove_layout!(NV_ENC_PIC_PARAMS_HEVC as NV_ENC_PIC_PARAMS_HEVC, size in [], fields in [v13_0] {
    numTemporalLayers, viewId, p3DReferenceDisplayInfo, pMaxCll, pMasteringDisplay
});
const _: () = assert!(
    offset_of!(NV_ENC_PIC_PARAMS_HEVC, pMaxCll)
        >= abi::v12_1::layout::NV_ENC_PIC_PARAMS_HEVC::reserved2
        && offset_of!(NV_ENC_PIC_PARAMS_HEVC, pMaxCll)
            >= abi::v12_2::layout::NV_ENC_PIC_PARAMS_HEVC::reserved2,
    "pMaxCll/pMasteringDisplay must lie in reserved space before 13.0"
);

/// `NV_ENC_PIC_PARAMS_AV1` with the 13.0 layout (1544 bytes; 12.1's is 1552, the same up to
/// `filmGrainParams`). `pMaxCll` and `pMasteringDisplay` are 13.0 fields, in reserved space
/// before (proven below), written only with API 13.0.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct NV_ENC_PIC_PARAMS_AV1 {
    pub displayPOCSyntax: u32,
    pub refPicFlag: u32,
    pub temporalId: u32,
    pub forceIntraRefreshWithFrameCnt: u32,
    /// Bitfields (`goldenFrameFlag` ...): left zero.
    pub flags: u32,
    pub numTileColumns: u32,
    pub numTileRows: u32,
    pub reserved: u32,
    pub tileWidths: *mut u32,
    pub tileHeights: *mut u32,
    pub obuPayloadArrayCnt: u32,
    pub reserved1: u32,
    pub obuPayloadArray: *mut NV_ENC_SEI_PAYLOAD,
    pub filmGrainParams: *mut c_void,
    pub ltrMarkFrameIdx: u32,
    pub ltrUseFrameBitmap: u32,
    pub numTemporalLayers: u32,
    pub reserved4: u32,
    pub pMaxCll: *mut CONTENT_LIGHT_LEVEL,
    pub pMasteringDisplay: *mut MASTERING_DISPLAY_INFO,
    pub _rest: [u64; (1544 - 0x68) / 8],
}
// SAFETY: integers and raw pointers only.
unsafe impl Zeroable for NV_ENC_PIC_PARAMS_AV1 {}
prove_layout!(NV_ENC_PIC_PARAMS_AV1 as NV_ENC_PIC_PARAMS_AV1, size in [v12_2, v13_0],
fields in [v12_1, v12_2, v13_0] {
    displayPOCSyntax, refPicFlag, temporalId, forceIntraRefreshWithFrameCnt, numTileColumns,
    numTileRows, tileWidths, tileHeights, obuPayloadArrayCnt, obuPayloadArray, filmGrainParams
});
prove_layout!(NV_ENC_PIC_PARAMS_AV1 as NV_ENC_PIC_PARAMS_AV1, size in [], fields in [v13_0] {
    ltrMarkFrameIdx, ltrUseFrameBitmap, numTemporalLayers, reserved4, pMaxCll, pMasteringDisplay
});
const _: () = assert!(
    offset_of!(NV_ENC_PIC_PARAMS_AV1, pMaxCll)
        >= abi::v12_1::layout::NV_ENC_PIC_PARAMS_AV1::reserved2
        && offset_of!(NV_ENC_PIC_PARAMS_AV1, pMaxCll)
            >= abi::v12_2::layout::NV_ENC_PIC_PARAMS_AV1::reserved2,
    "pMaxCll/pMasteringDisplay must lie in reserved space before 13.0"
);

/// `NV_ENC_CODEC_PIC_PARAMS` union: 1544 bytes in 12.2 and 13.0 (its largest member, AV1);
/// 1552 in 12.1, whose 8 more bytes lie in `NV_ENC_PIC_PARAMS::_rest` here, which stays zero.
#[repr(C)]
#[derive(Clone, Copy)]
pub union NV_ENC_CODEC_PIC_PARAMS {
    pub h264PicParams: NV_ENC_PIC_PARAMS_H264,
    pub hevcPicParams: NV_ENC_PIC_PARAMS_HEVC,
    pub av1PicParams: NV_ENC_PIC_PARAMS_AV1,
}

impl NV_ENC_CODEC_PIC_PARAMS {
    /// `forceIntraRefreshWithFrameCnt` of the codec's picture parameters (`h264`: H.264's,
    /// else H.265's and AV1's, which sit at the same offset): start an intra-refresh wave of
    /// `frames` pictures on this one.
    pub fn set_force_intra_refresh(&mut self, h264: bool, frames: u32) {
        const _: () = assert!(
            offset_of!(NV_ENC_PIC_PARAMS_HEVC, forceIntraRefreshWithFrameCnt)
                == offset_of!(NV_ENC_PIC_PARAMS_AV1, forceIntraRefreshWithFrameCnt)
        );
        if h264 {
            self.h264PicParams.forceIntraRefreshWithFrameCnt = frames;
        } else {
            self.hevcPicParams.forceIntraRefreshWithFrameCnt = frames;
        }
    }

    /// The union as 64-bit words, for fields addressed by byte offset from the ABI tables
    /// (e.g. the per-picture LTR controls, [`PicLtrLayout`]).
    pub fn words_mut(&mut self) -> &mut [u64] {
        const N: usize = size_of::<NV_ENC_CODEC_PIC_PARAMS>() / 8;
        const _: () = assert!(size_of::<NV_ENC_CODEC_PIC_PARAMS>().is_multiple_of(8));
        const _: () = assert!(align_of::<NV_ENC_CODEC_PIC_PARAMS>() >= align_of::<u64>());
        // SAFETY: the union holds only integers and raw pointers (every bit pattern is valid for
        // them and for u64), is a multiple of 8 bytes long and at least 8-aligned (checked
        // above); the slice borrows `self` mutably for its lifetime.
        unsafe { std::slice::from_raw_parts_mut((self as *mut Self).cast::<u64>(), N) }
    }
}

/// `NV_ENC_PIC_PARAMS` (3360 bytes in every SDK); of the codec-specific picture parameters
/// only the SEI/OBU payload arrays and (13.0) the HDR metadata pointers are used.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct NV_ENC_PIC_PARAMS {
    pub version: u32,
    pub inputWidth: u32,
    pub inputHeight: u32,
    pub inputPitch: u32,
    pub encodePicFlags: u32,
    pub frameIdx: u32,
    pub inputTimeStamp: u64,
    pub inputDuration: u64,
    pub inputBuffer: NV_ENC_INPUT_PTR,
    pub outputBitstream: NV_ENC_OUTPUT_PTR,
    pub completionEvent: *mut c_void,
    pub bufferFmt: u32,
    pub pictureStruct: u32,
    pub pictureType: u32,
    pub codecPicParams: NV_ENC_CODEC_PIC_PARAMS,
    /// `meHintCountsPerBlock`, `meExternalHints` and reserved fields (their layout differs
    /// between SDKs; 12.0/12.1's larger union ends in here): left zero.
    pub _me: [u64; (0x6b0 - 0x658) / 8],
    /// Signed QP offsets (`rcParams.qpMapMode` = `NV_ENC_QP_MAP_DELTA`), one per block in
    /// raster order: per macroblock (16x16) for H.264, per CTB for H.265, per superblock
    /// (64x64) for AV1; NULL: none for this picture.
    pub qpDeltaMap: *mut i8,
    /// Bytes at `qpDeltaMap`: the picture's block count.
    pub qpDeltaMapSize: u32,
    pub reservedBitFields: u32,
    pub _rest: [u64; (3360 - 0x6c0) / 8],
}
// SAFETY: integers, raw pointers and unions of those only.
unsafe impl Zeroable for NV_ENC_PIC_PARAMS {}
prove_layout!(NV_ENC_PIC_PARAMS as NV_ENC_PIC_PARAMS, size in [v12_0, v12_1, v12_2, v13_0],
fields in [v12_0, v12_1, v12_2, v13_0] {
    version, inputWidth, inputHeight, inputPitch, encodePicFlags, frameIdx, inputTimeStamp,
    inputDuration, inputBuffer, outputBitstream, completionEvent, bufferFmt, pictureStruct,
    pictureType, codecPicParams, qpDeltaMap, qpDeltaMapSize, reservedBitFields
});
// The union ends where the next field starts in 12.2 and 13.0.
const _: () = assert!(
    offset_of!(NV_ENC_PIC_PARAMS, codecPicParams) + size_of::<NV_ENC_CODEC_PIC_PARAMS>()
        == abi::v13_0::layout::NV_ENC_PIC_PARAMS::meHintCountsPerBlock
        && abi::v12_2::layout::NV_ENC_PIC_PARAMS::meHintCountsPerBlock
            == abi::v13_0::layout::NV_ENC_PIC_PARAMS::meHintCountsPerBlock
);

/// `NV_ENC_LOCK_BITSTREAM` with the fields up to `temporalId`, which sit at the same offsets in
/// every SDK; the rest (moved in 12.1) is opaque. Sized for the largest SDK (12.1: 1552 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct NV_ENC_LOCK_BITSTREAM {
    pub version: u32,
    /// Bit 0: `doNotWait`, bit 1: `ltrFrame`, bit 2: `getRCStats`.
    pub flags: u32,
    pub outputBitstream: *mut c_void,
    pub sliceOffsets: *mut u32,
    pub frameIdx: u32,
    pub hwEncodeStatus: u32,
    pub numSlices: u32,
    pub bitstreamSizeInBytes: u32,
    pub outputTimeStamp: u64,
    pub outputDuration: u64,
    pub bitstreamBufferPtr: *mut c_void,
    pub pictureType: u32,
    pub pictureStruct: u32,
    pub frameAvgQP: u32,
    pub frameSatd: u32,
    pub ltrFrameIdx: u32,
    pub ltrFrameBitmap: u32,
    pub temporalId: u32,
    pub _rest: [u32; (1552 - 0x5c) / 4],
}
// SAFETY: integers and raw pointers only.
unsafe impl Zeroable for NV_ENC_LOCK_BITSTREAM {}
prove_layout!(NV_ENC_LOCK_BITSTREAM as NV_ENC_LOCK_BITSTREAM, size in [v12_1],
fields in [v12_0, v12_1, v12_2, v13_0] {
    version, outputBitstream, sliceOffsets, frameIdx, hwEncodeStatus, numSlices,
    bitstreamSizeInBytes, outputTimeStamp, outputDuration, bitstreamBufferPtr, pictureType,
    pictureStruct, frameAvgQP, frameSatd, ltrFrameIdx, ltrFrameBitmap, temporalId
});
const _: () =
    assert!(size_of::<NV_ENC_LOCK_BITSTREAM>() >= abi::v13_0::layout::NV_ENC_LOCK_BITSTREAM::SIZE);
bitfield!(LOCK_DO_NOT_WAIT = NV_ENC_LOCK_BITSTREAM.doNotWait(0x4, 0, 1) in v12_0, v12_1, v12_2, v13_0);
bitfield!(
    /// [out] the locked picture was marked as a long-term reference.
    LOCK_LTR_FRAME = NV_ENC_LOCK_BITSTREAM.ltrFrame(0x4, 1, 1) in v12_0, v12_1, v12_2, v13_0);

/// Where a codec's `NV_ENC_PIC_PARAMS_*` (inside `NV_ENC_PIC_PARAMS.codecPicParams`) keeps the
/// per-picture long-term reference controls ("LTR Per Picture" mode): `ltrMarkFrame`,
/// `ltrUseFrames` (bitfields), `ltrMarkFrameIdx`, `ltrUseFrameBitmap` (byte offsets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PicLtrLayout {
    pub mark_frame: BitField,
    pub use_frames: BitField,
    pub mark_frame_idx: usize,
    pub use_frame_bitmap: usize,
}

bitfield!(HEVC_PIC_LTR_MARK_FRAME = NV_ENC_PIC_PARAMS_HEVC.ltrMarkFrame(0x10, 2, 1) in v12_1, v12_2, v13_0);
bitfield!(HEVC_PIC_LTR_USE_FRAMES = NV_ENC_PIC_PARAMS_HEVC.ltrUseFrames(0x10, 3, 1) in v12_1, v12_2, v13_0);
/// `NV_ENC_PIC_PARAMS_HEVC` (12.1, 12.2, 13.0).
pub const HEVC_PIC_LTR: PicLtrLayout = PicLtrLayout {
    mark_frame: HEVC_PIC_LTR_MARK_FRAME,
    use_frames: HEVC_PIC_LTR_USE_FRAMES,
    mark_frame_idx: 0x2c,
    use_frame_bitmap: 0x30,
};
bitfield!(H264_PIC_LTR_MARK_FRAME = NV_ENC_PIC_PARAMS_H264.ltrMarkFrame(0x14, 2, 1) in v12_1, v12_2, v13_0);
bitfield!(H264_PIC_LTR_USE_FRAMES = NV_ENC_PIC_PARAMS_H264.ltrUseFrames(0x14, 3, 1) in v12_1, v12_2, v13_0);
/// `NV_ENC_PIC_PARAMS_H264` (12.1, 12.2, 13.0).
pub const H264_PIC_LTR: PicLtrLayout = PicLtrLayout {
    mark_frame: H264_PIC_LTR_MARK_FRAME,
    use_frames: H264_PIC_LTR_USE_FRAMES,
    mark_frame_idx: 0x38,
    use_frame_bitmap: 0x3c,
};
bitfield!(AV1_PIC_LTR_MARK_FRAME = NV_ENC_PIC_PARAMS_AV1.ltrMarkFrame(0x10, 10, 1) in v13_0);
bitfield!(AV1_PIC_LTR_USE_FRAMES = NV_ENC_PIC_PARAMS_AV1.ltrUseFrames(0x10, 11, 1) in v13_0);
/// `NV_ENC_PIC_PARAMS_AV1` (13.0 only).
pub const AV1_PIC_LTR: PicLtrLayout = PicLtrLayout {
    mark_frame: AV1_PIC_LTR_MARK_FRAME,
    use_frames: AV1_PIC_LTR_USE_FRAMES,
    mark_frame_idx: 0x48,
    use_frame_bitmap: 0x4c,
};
macro_rules! prove_pic_ltr {
    ($l:ident, $c:ident in $($sdk:ident),+) => {$(
        const _: () = {
            use abi::$sdk::layout as L;
            assert!($l.mark_frame_idx == L::$c::ltrMarkFrameIdx);
            assert!($l.use_frame_bitmap == L::$c::ltrUseFrameBitmap);
            // The codec picture parameters fit the union in NV_ENC_PIC_PARAMS.
            assert!(L::$c::ltrUseFrameBitmap + 4 <= 0x608);
        };
    )+};
}
prove_pic_ltr!(HEVC_PIC_LTR, NV_ENC_PIC_PARAMS_HEVC in v12_1, v12_2, v13_0);
prove_pic_ltr!(H264_PIC_LTR, NV_ENC_PIC_PARAMS_H264 in v12_1, v12_2, v13_0);
prove_pic_ltr!(AV1_PIC_LTR, NV_ENC_PIC_PARAMS_AV1 in v13_0);
const _: () = assert!(
    abi::v13_0::layout::NV_ENC_PIC_PARAMS::codecPicParams
        == offset_of!(NV_ENC_PIC_PARAMS, codecPicParams)
);

#[repr(C)]
#[derive(Clone, Copy)]
pub struct NV_ENC_SEQUENCE_PARAM_PAYLOAD {
    pub version: u32,
    pub inBufferSize: u32,
    pub spsId: u32,
    pub ppsId: u32,
    pub spsppsBuffer: *mut c_void,
    pub outSPSPPSPayloadSize: *mut u32,
    pub reserved: [u32; 250],
    pub reserved2: [*mut c_void; 64],
}
// SAFETY: integers and raw pointers only.
unsafe impl Zeroable for NV_ENC_SEQUENCE_PARAM_PAYLOAD {}
prove_layout!(NV_ENC_SEQUENCE_PARAM_PAYLOAD as NV_ENC_SEQUENCE_PARAM_PAYLOAD,
    size in [v12_1, v12_2, v13_0], fields in [v12_1, v12_2, v13_0]
    { version, inBufferSize, spsId, ppsId, spsppsBuffer, outSPSPPSPayloadSize });

// ---- External input resources (CUDA device memory) ------------------------------------------

pub const NV_ENC_BFRAME_REF_MODE_DISABLED: u32 = 0;
pub const NV_ENC_BFRAME_REF_MODE_EACH: u32 = 1;
pub const NV_ENC_BFRAME_REF_MODE_MIDDLE: u32 = 2;
prove_enum!(
    [NV_ENC_BFRAME_REF_MODE_DISABLED, NV_ENC_BFRAME_REF_MODE_EACH, NV_ENC_BFRAME_REF_MODE_MIDDLE]
    in v12_1, v12_2, v13_0
);

pub type NV_ENC_REGISTERED_PTR = *mut c_void;
pub const NV_ENC_INPUT_RESOURCE_TYPE_CUDADEVICEPTR: u32 = 1;
pub const NV_ENC_INPUT_IMAGE: u32 = 0;
prove_enum!([NV_ENC_INPUT_RESOURCE_TYPE_CUDADEVICEPTR, NV_ENC_INPUT_IMAGE] in v12_1, v12_2, v13_0);

#[repr(C)]
#[derive(Clone, Copy)]
pub struct NV_ENC_REGISTER_RESOURCE {
    pub version: u32,
    pub resourceType: u32,
    pub width: u32,
    pub height: u32,
    pub pitch: u32,
    pub subResourceIndex: u32,
    pub resourceToRegister: *mut c_void,
    pub registeredResource: NV_ENC_REGISTERED_PTR,
    pub bufferFormat: u32,
    pub bufferUsage: u32,
    pub pInputFencePoint: *mut c_void,
    pub chromaOffset: [u32; 2],
    /// `chromaOffsetIn` (12.2+) and reserved words: left zero.
    pub _rest: [u64; 184],
}
// SAFETY: integers and raw pointers only.
unsafe impl Zeroable for NV_ENC_REGISTER_RESOURCE {}
prove_layout!(NV_ENC_REGISTER_RESOURCE as NV_ENC_REGISTER_RESOURCE, size in [v12_1, v12_2, v13_0],
fields in [v12_1, v12_2, v13_0] {
    version, resourceType, width, height, pitch, subResourceIndex, resourceToRegister,
    registeredResource, bufferFormat, bufferUsage, pInputFencePoint, chromaOffset
});

#[repr(C)]
#[derive(Clone, Copy)]
pub struct NV_ENC_MAP_INPUT_RESOURCE {
    pub version: u32,
    pub subResourceIndex: u32,
    pub inputResource: *mut c_void,
    pub registeredResource: NV_ENC_REGISTERED_PTR,
    pub mappedResource: NV_ENC_INPUT_PTR,
    pub mappedBufferFmt: u32,
    pub _rest: [u32; 377],
}
// SAFETY: integers and raw pointers only.
unsafe impl Zeroable for NV_ENC_MAP_INPUT_RESOURCE {}
prove_layout!(NV_ENC_MAP_INPUT_RESOURCE as NV_ENC_MAP_INPUT_RESOURCE, size in [v12_1, v12_2, v13_0],
fields in [v12_1, v12_2, v13_0] {
    version, subResourceIndex, inputResource, registeredResource, mappedResource, mappedBufferFmt
});

// ---- Reconfigure ----------------------------------------------------------------------------

/// `NV_ENC_RECONFIGURE_PARAMS` embeds an `NV_ENC_INITIALIZE_PARAMS` whose size depends on the
/// SDK (1808 bytes in 12.1, 1800 later), so the flag word after it moves: the struct is built
/// in a byte buffer per API (see `api::Session::reconfigure`). Its layout facts, proven here:
/// `version` at 0, `reInitEncodeParams` at 8, the flag word right after the embedded struct.
pub const RECONFIGURE_INIT_OFFSET: usize = 8;
/// Size of the embedded `NV_ENC_INITIALIZE_PARAMS` in SDK 12.1, and in 12.2 and 13.0.
pub const INITIALIZE_PARAMS_SIZE_12_1: usize = abi::v12_1::layout::NV_ENC_INITIALIZE_PARAMS::SIZE;
pub const INITIALIZE_PARAMS_SIZE_13_0: usize = abi::v13_0::layout::NV_ENC_INITIALIZE_PARAMS::SIZE;
const _: () =
    assert!(INITIALIZE_PARAMS_SIZE_13_0 == abi::v12_2::layout::NV_ENC_INITIALIZE_PARAMS::SIZE);
/// Bytes to allocate: the largest size of any supported SDK (12.1).
pub const RECONFIGURE_PARAMS_ALLOC: usize = abi::v12_1::layout::NV_ENC_RECONFIGURE_PARAMS::SIZE;
macro_rules! prove_reconfigure {
    ($($sdk:ident),+) => {$(
        const _: () = {
            use abi::$sdk::layout as L;
            assert!(L::NV_ENC_RECONFIGURE_PARAMS::version == 0);
            assert!(L::NV_ENC_RECONFIGURE_PARAMS::reInitEncodeParams == RECONFIGURE_INIT_OFFSET);
            assert!(L::NV_ENC_RECONFIGURE_PARAMS::SIZE <= RECONFIGURE_PARAMS_ALLOC);
        };
    )+};
}
prove_reconfigure!(v12_1, v12_2, v13_0);
bitfield!(
    /// `resetEncoder` in SDK 12.1 (after the 1808-byte INITIALIZE_PARAMS).
    RECONF_RESET_ENCODER_12_1 = NV_ENC_RECONFIGURE_PARAMS.resetEncoder(0x718, 0, 1) in v12_1);
bitfield!(
    /// `forceIDR` in SDK 12.1.
    RECONF_FORCE_IDR_12_1 = NV_ENC_RECONFIGURE_PARAMS.forceIDR(0x718, 1, 1) in v12_1);
bitfield!(
    /// `resetEncoder` in SDK 12.2 and 13.0 (after the 1800-byte INITIALIZE_PARAMS).
    RECONF_RESET_ENCODER = NV_ENC_RECONFIGURE_PARAMS.resetEncoder(0x710, 0, 1) in v12_2, v13_0);
bitfield!(
    /// `forceIDR` in SDK 12.2 and 13.0.
    RECONF_FORCE_IDR = NV_ENC_RECONFIGURE_PARAMS.forceIDR(0x710, 1, 1) in v12_2, v13_0);
// The flag word directly follows the embedded INITIALIZE_PARAMS of the same SDK.
const _: () = assert!(
    RECONF_RESET_ENCODER_12_1.word_offset
        == RECONFIGURE_INIT_OFFSET + abi::v12_1::layout::NV_ENC_INITIALIZE_PARAMS::SIZE
);
const _: () = assert!(
    RECONF_RESET_ENCODER.word_offset
        == RECONFIGURE_INIT_OFFSET + abi::v13_0::layout::NV_ENC_INITIALIZE_PARAMS::SIZE
);
const _: () = assert!(
    RECONF_RESET_ENCODER.word_offset
        == RECONFIGURE_INIT_OFFSET + abi::v12_2::layout::NV_ENC_INITIALIZE_PARAMS::SIZE
);

/// The INITIALIZE_PARAMS and CONFIG a session was initialised with, kept for
/// `nvEncReconfigureEncoder`.
pub struct SessionConfig {
    pub init: Box<NV_ENC_INITIALIZE_PARAMS>,
    pub cfg: Box<NV_ENC_CONFIG>,
}

// SAFETY: the raw pointers inside (`encodeConfig`, `privData`, AV1 tile arrays, ...) are NULL
// while stored (`encodeConfig` points at `cfg` only during an API call made by the thread that
// holds the struct); plain data otherwise, with no thread affinity.
unsafe impl Send for SessionConfig {}

// ---- Function list --------------------------------------------------------------------------

type Enc = *mut c_void;
/// An entry this plugin does not call; only its slot matters.
pub type Unused = Option<unsafe extern "C" fn()>;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct NV_ENCODE_API_FUNCTION_LIST {
    pub version: u32,
    pub reserved: u32,
    pub nvEncOpenEncodeSession: Unused,
    pub nvEncGetEncodeGUIDCount: Option<unsafe extern "C" fn(Enc, *mut u32) -> NVENCSTATUS>,
    pub nvEncGetEncodeProfileGUIDCount:
        Option<unsafe extern "C" fn(Enc, GUID, *mut u32) -> NVENCSTATUS>,
    pub nvEncGetEncodeProfileGUIDs:
        Option<unsafe extern "C" fn(Enc, GUID, *mut GUID, u32, *mut u32) -> NVENCSTATUS>,
    pub nvEncGetEncodeGUIDs:
        Option<unsafe extern "C" fn(Enc, *mut GUID, u32, *mut u32) -> NVENCSTATUS>,
    pub nvEncGetInputFormatCount: Option<unsafe extern "C" fn(Enc, GUID, *mut u32) -> NVENCSTATUS>,
    pub nvEncGetInputFormats:
        Option<unsafe extern "C" fn(Enc, GUID, *mut u32, u32, *mut u32) -> NVENCSTATUS>,
    pub nvEncGetEncodeCaps:
        Option<unsafe extern "C" fn(Enc, GUID, *mut NV_ENC_CAPS_PARAM, *mut i32) -> NVENCSTATUS>,
    pub nvEncGetEncodePresetCount: Unused,
    pub nvEncGetEncodePresetGUIDs: Unused,
    pub nvEncGetEncodePresetConfig: Unused,
    pub nvEncInitializeEncoder:
        Option<unsafe extern "C" fn(Enc, *mut NV_ENC_INITIALIZE_PARAMS) -> NVENCSTATUS>,
    pub nvEncCreateInputBuffer:
        Option<unsafe extern "C" fn(Enc, *mut NV_ENC_CREATE_INPUT_BUFFER) -> NVENCSTATUS>,
    pub nvEncDestroyInputBuffer: Option<unsafe extern "C" fn(Enc, NV_ENC_INPUT_PTR) -> NVENCSTATUS>,
    pub nvEncCreateBitstreamBuffer:
        Option<unsafe extern "C" fn(Enc, *mut NV_ENC_CREATE_BITSTREAM_BUFFER) -> NVENCSTATUS>,
    pub nvEncDestroyBitstreamBuffer:
        Option<unsafe extern "C" fn(Enc, NV_ENC_OUTPUT_PTR) -> NVENCSTATUS>,
    pub nvEncEncodePicture:
        Option<unsafe extern "C" fn(Enc, *mut NV_ENC_PIC_PARAMS) -> NVENCSTATUS>,
    pub nvEncLockBitstream:
        Option<unsafe extern "C" fn(Enc, *mut NV_ENC_LOCK_BITSTREAM) -> NVENCSTATUS>,
    pub nvEncUnlockBitstream: Option<unsafe extern "C" fn(Enc, NV_ENC_OUTPUT_PTR) -> NVENCSTATUS>,
    pub nvEncLockInputBuffer:
        Option<unsafe extern "C" fn(Enc, *mut NV_ENC_LOCK_INPUT_BUFFER) -> NVENCSTATUS>,
    pub nvEncUnlockInputBuffer: Option<unsafe extern "C" fn(Enc, NV_ENC_INPUT_PTR) -> NVENCSTATUS>,
    pub nvEncGetEncodeStats: Unused,
    pub nvEncGetSequenceParams:
        Option<unsafe extern "C" fn(Enc, *mut NV_ENC_SEQUENCE_PARAM_PAYLOAD) -> NVENCSTATUS>,
    pub nvEncRegisterAsyncEvent: Unused,
    pub nvEncUnregisterAsyncEvent: Unused,
    pub nvEncMapInputResource:
        Option<unsafe extern "C" fn(Enc, *mut NV_ENC_MAP_INPUT_RESOURCE) -> NVENCSTATUS>,
    pub nvEncUnmapInputResource: Option<unsafe extern "C" fn(Enc, NV_ENC_INPUT_PTR) -> NVENCSTATUS>,
    pub nvEncDestroyEncoder: Option<unsafe extern "C" fn(Enc) -> NVENCSTATUS>,
    pub nvEncInvalidateRefFrames: Unused,
    pub nvEncOpenEncodeSessionEx: Option<
        unsafe extern "C" fn(*mut NV_ENC_OPEN_ENCODE_SESSION_EX_PARAMS, *mut Enc) -> NVENCSTATUS,
    >,
    pub nvEncRegisterResource:
        Option<unsafe extern "C" fn(Enc, *mut NV_ENC_REGISTER_RESOURCE) -> NVENCSTATUS>,
    pub nvEncUnregisterResource:
        Option<unsafe extern "C" fn(Enc, NV_ENC_REGISTERED_PTR) -> NVENCSTATUS>,
    pub nvEncReconfigureEncoder: Option<unsafe extern "C" fn(Enc, *mut c_void) -> NVENCSTATUS>,
    pub reserved1: *mut c_void,
    pub nvEncCreateMVBuffer: Unused,
    pub nvEncDestroyMVBuffer: Unused,
    pub nvEncRunMotionEstimationOnly: Unused,
    pub nvEncGetLastErrorString: Option<unsafe extern "C" fn(Enc) -> *const c_char>,
    pub nvEncSetIOCudaStreams: Unused,
    pub nvEncGetEncodePresetConfigEx: Option<
        unsafe extern "C" fn(Enc, GUID, GUID, u32, *mut NV_ENC_PRESET_CONFIG) -> NVENCSTATUS,
    >,
    pub nvEncGetSequenceParamEx: Unused,
    pub nvEncRestoreEncoderState: Unused,
    pub nvEncLookaheadPicture: Unused,
    pub reserved2: [*mut c_void; 275],
}
// SAFETY: integers, raw pointers and `Option` of function pointers only.
unsafe impl Zeroable for NV_ENCODE_API_FUNCTION_LIST {}
prove_layout!(NV_ENCODE_API_FUNCTION_LIST as NV_ENCODE_API_FUNCTION_LIST,
size in [v12_0, v12_1, v12_2, v13_0], fields in [v12_0, v12_1, v12_2, v13_0] {
    version, reserved, nvEncOpenEncodeSession, nvEncGetEncodeGUIDCount,
    nvEncGetEncodeProfileGUIDCount, nvEncGetEncodeProfileGUIDs, nvEncGetEncodeGUIDs,
    nvEncGetInputFormatCount, nvEncGetInputFormats, nvEncGetEncodeCaps,
    nvEncGetEncodePresetCount, nvEncGetEncodePresetGUIDs, nvEncGetEncodePresetConfig,
    nvEncInitializeEncoder, nvEncCreateInputBuffer, nvEncDestroyInputBuffer,
    nvEncCreateBitstreamBuffer, nvEncDestroyBitstreamBuffer, nvEncEncodePicture,
    nvEncLockBitstream, nvEncUnlockBitstream, nvEncLockInputBuffer, nvEncUnlockInputBuffer,
    nvEncGetEncodeStats, nvEncGetSequenceParams, nvEncRegisterAsyncEvent,
    nvEncUnregisterAsyncEvent, nvEncMapInputResource, nvEncUnmapInputResource,
    nvEncDestroyEncoder, nvEncInvalidateRefFrames, nvEncOpenEncodeSessionEx,
    nvEncRegisterResource, nvEncUnregisterResource, nvEncReconfigureEncoder, reserved1,
    nvEncCreateMVBuffer, nvEncDestroyMVBuffer, nvEncRunMotionEstimationOnly,
    nvEncGetLastErrorString, nvEncSetIOCudaStreams, nvEncGetEncodePresetConfigEx,
    nvEncGetSequenceParamEx
});
prove_layout!(NV_ENCODE_API_FUNCTION_LIST as NV_ENCODE_API_FUNCTION_LIST, size in [],
    fields in [v12_1, v12_2, v13_0] { nvEncRestoreEncoderState, nvEncLookaheadPicture, reserved2 });

pub type PfnGetMaxSupportedVersion = unsafe extern "C" fn(*mut u32) -> NVENCSTATUS;
pub type PfnCreateInstance = unsafe extern "C" fn(*mut NV_ENCODE_API_FUNCTION_LIST) -> NVENCSTATUS;
