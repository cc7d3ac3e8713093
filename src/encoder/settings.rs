// SPDX-License-Identifier: MPL-2.0
//! Properties shared by every rsnvenc element: names, ranges, defaults and enum nicks as
//! GStreamer's nvcodec (1.26+) has them, so users swap element names and nothing else; and their
//! mapping onto NVENC (preset GUID, tuning info, rate control), the way nvcodec maps them.

use gst::glib;
use gst::prelude::*;

use crate::nvenc::ffi;

/// nvcodec's `GstNvEncoderPreset`, with the legacy names mapped to P1..P7 as nvcodec does.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstRsNvEncPreset")]
pub enum Preset {
    #[enum_value(name = "Default (P5, high quality)", nick = "default")]
    Default = 0,
    #[enum_value(name = "High Performance (P1)", nick = "hp")]
    Hp = 1,
    #[enum_value(name = "High Quality (P6; P5 at 2160p)", nick = "hq")]
    Hq = 2,
    #[enum_value(
        name = "Low Latency (P4/P3/P2, low-latency tuning)",
        nick = "low-latency"
    )]
    LowLatency = 3,
    #[enum_value(name = "Low Latency, High Quality", nick = "low-latency-hq")]
    LowLatencyHq = 4,
    #[enum_value(name = "Low Latency, High Performance", nick = "low-latency-hp")]
    LowLatencyHp = 5,
    #[enum_value(name = "Lossless (P5, lossless tuning)", nick = "lossless")]
    Lossless = 6,
    #[enum_value(name = "Lossless, High Performance (P3)", nick = "lossless-hp")]
    LosslessHp = 7,
    #[enum_value(name = "P1, fastest", nick = "p1")]
    P1 = 8,
    #[enum_value(name = "P2", nick = "p2")]
    P2 = 9,
    #[enum_value(name = "P3", nick = "p3")]
    P3 = 10,
    #[enum_value(name = "P4", nick = "p4")]
    P4 = 11,
    #[enum_value(name = "P5", nick = "p5")]
    P5 = 12,
    #[enum_value(name = "P6", nick = "p6")]
    P6 = 13,
    #[enum_value(name = "P7, slowest, best quality", nick = "p7")]
    P7 = 14,
}

/// nvcodec's `GstNvEncoderTune`.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstRsNvEncTune")]
pub enum Tune {
    #[enum_value(name = "Default (from the preset)", nick = "default")]
    Default = 0,
    #[enum_value(name = "High quality", nick = "high-quality")]
    HighQuality = 1,
    #[enum_value(name = "Low latency", nick = "low-latency")]
    LowLatency = 2,
    #[enum_value(name = "Ultra low latency", nick = "ultra-low-latency")]
    UltraLowLatency = 3,
    #[enum_value(name = "Lossless", nick = "lossless")]
    Lossless = 4,
    #[enum_value(
        name = "Ultra high quality (H.265 from NVENC API 12.2, AV1 from 13.0; else high quality)",
        nick = "ultra-high-quality"
    )]
    UltraHighQuality = 5,
}

/// nvcodec's `GstNvEncoderRCMode` (4..=7 are deprecated names kept for compatibility).
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstRsNvEncRCMode")]
pub enum RcMode {
    #[enum_value(name = "Default (VBR)", nick = "default")]
    Default = 0,
    #[enum_value(name = "Constant Quantization", nick = "constqp")]
    ConstQp = 1,
    #[enum_value(name = "Constant Bit Rate", nick = "cbr")]
    Cbr = 2,
    #[enum_value(name = "Variable Bit Rate", nick = "vbr")]
    Vbr = 3,
    #[enum_value(
        name = "Variable Bit Rate (deprecated, same as vbr)",
        nick = "vbr-minqp"
    )]
    VbrMinQp = 4,
    #[enum_value(
        name = "Low-Delay CBR, High Quality (deprecated: cbr, two-pass, low-latency tune)",
        nick = "cbr-ld-hq"
    )]
    CbrLdHq = 5,
    #[enum_value(
        name = "CBR, High Quality (deprecated: cbr, two-pass)",
        nick = "cbr-hq"
    )]
    CbrHq = 6,
    #[enum_value(
        name = "VBR, High Quality (deprecated: vbr, two-pass)",
        nick = "vbr-hq"
    )]
    VbrHq = 7,
}

/// `multi-pass`, as nvcodec's GstNvEncoderMultiPass.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstRsNvEncMultiPass")]
pub enum MultiPass {
    #[enum_value(name = "Default (from the preset and rc-mode)", nick = "default")]
    Default = 0,
    #[enum_value(name = "Disabled", nick = "disabled")]
    Disabled = 1,
    #[enum_value(
        name = "Two pass with quarter resolution encoding in first pass",
        nick = "two-pass-quarter"
    )]
    TwoPassQuarter = 2,
    #[enum_value(
        name = "Two pass with full resolution encoding in first pass",
        nick = "two-pass"
    )]
    TwoPass = 3,
}

/// `b-ref-mode`: B-frames used as references (`useBFramesAsRef`).
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstRsNvEncBRefMode")]
pub enum BRefMode {
    #[enum_value(name = "Disabled", nick = "disabled")]
    Disabled = 0,
    #[enum_value(name = "Each B-frame is a reference", nick = "each")]
    Each = 1,
    #[enum_value(name = "Only the middle B-frame is a reference", nick = "middle")]
    Middle = 2,
}

/// `split-encode-mode`: split-frame encoding over several NVENC engines
/// (`NV_ENC_INITIALIZE_PARAMS.splitEncodeMode`, SDK 12.1+, H.265 and AV1 only; values are the
/// header's `NV_ENC_SPLIT_ENCODE_MODE`).
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstRsNvEncSplitEncodeMode")]
pub enum SplitEncodeMode {
    #[enum_value(
        name = "Auto: the driver decides from its engines, frame height, preset and tuning (NV_ENC_SPLIT_AUTO_MODE)",
        nick = "auto"
    )]
    Auto = 0,
    #[enum_value(
        name = "Forced, number of strips chosen by the driver (NV_ENC_SPLIT_AUTO_FORCED_MODE)",
        nick = "auto-forced"
    )]
    AutoForced = 1,
    #[enum_value(name = "Forced, 2 strips (NV_ENC_SPLIT_TWO_FORCED_MODE)", nick = "two")]
    Two = 2,
    #[enum_value(
        name = "Forced, 3 strips, at most one per engine (NV_ENC_SPLIT_THREE_FORCED_MODE)",
        nick = "three"
    )]
    Three = 3,
    #[enum_value(
        name = "Forced, 4 strips, at most one per engine (NV_ENC_SPLIT_FOUR_FORCED_MODE, NVENC API 13.0)",
        nick = "four"
    )]
    Four = 4,
    #[enum_value(name = "Disabled (NV_ENC_SPLIT_DISABLE_MODE)", nick = "disabled")]
    Disabled = 15,
}

/// `lookahead-level` (`NV_ENC_RC_PARAMS.lookaheadLevel`, SDK 12.2+; needs lookahead).
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(i32)]
#[enum_type(name = "GstRsNvEncLookaheadLevel")]
pub enum LookaheadLevel {
    #[enum_value(name = "Default (the preset's)", nick = "default")]
    Default = -1,
    #[enum_value(name = "Level 0, fastest (NV_ENC_LOOKAHEAD_LEVEL_0)", nick = "level-0")]
    Level0 = 0,
    #[enum_value(name = "Level 1 (NV_ENC_LOOKAHEAD_LEVEL_1)", nick = "level-1")]
    Level1 = 1,
    #[enum_value(name = "Level 2 (NV_ENC_LOOKAHEAD_LEVEL_2)", nick = "level-2")]
    Level2 = 2,
    #[enum_value(
        name = "Level 3, best quality (NV_ENC_LOOKAHEAD_LEVEL_3)",
        nick = "level-3"
    )]
    Level3 = 3,
    #[enum_value(
        name = "Chosen by the driver (NV_ENC_LOOKAHEAD_LEVEL_AUTOSELECT)",
        nick = "auto"
    )]
    Auto = 15,
}

/// `temporal-filter-level` (`tfLevel`: H.265 from SDK 12.2, AV1 and H.264 from 13.0).
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(i32)]
#[enum_type(name = "GstRsNvEncTemporalFilterLevel")]
pub enum TemporalFilterLevel {
    #[enum_value(
        name = "Default (the preset's, turned off where the session cannot have it)",
        nick = "default"
    )]
    Default = -1,
    #[enum_value(name = "Off (NV_ENC_TEMPORAL_FILTER_LEVEL_0)", nick = "disabled")]
    Disabled = 0,
    #[enum_value(name = "Level 4 (NV_ENC_TEMPORAL_FILTER_LEVEL_4)", nick = "level-4")]
    Level4 = 4,
}

pub const DEFAULT_SPLIT_ENCODE_MODE: SplitEncodeMode = SplitEncodeMode::Auto;
pub const DEFAULT_LOOKAHEAD_LEVEL: LookaheadLevel = LookaheadLevel::Default;
pub const DEFAULT_TEMPORAL_FILTER_LEVEL: TemporalFilterLevel = TemporalFilterLevel::Default;
/// The most LTR frames any NVENC codec reports (`NV_ENC_CAPS_NUM_MAX_LTR_FRAMES`: 8 for H.264,
/// 7 for H.265 and 6 for AV1 on Ada, NVIDIA driver 550, from rigaya's NVEncC capability dumps).
pub const MAX_LTR_FRAMES: u32 = 8;

/// `cc-insert`, as nvcodec's `GstNvEncoderSeiInsertMode` (same nicks and values): what to do
/// with CEA-708 closed captions (`GstVideoCaptionMeta`) of the input.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstRsNvEncSeiInsertMode")]
pub enum CcInsert {
    #[enum_value(name = "Insert SEI (AV1: ITU-T T.35 metadata OBU)", nick = "insert")]
    Insert = 0,
    #[enum_value(
        name = "Insert SEI (AV1: metadata OBU) and remove corresponding meta from output buffer",
        nick = "insert-and-drop"
    )]
    InsertAndDrop = 1,
    #[enum_value(name = "Disable SEI insertion", nick = "disabled")]
    Disabled = 2,
}

impl CcInsert {
    /// From the enum value (anything unknown: the default).
    pub fn from_u32(v: u32) -> Self {
        match v {
            1 => CcInsert::InsertAndDrop,
            2 => CcInsert::Disabled,
            _ => CcInsert::Insert,
        }
    }
}

pub const DEFAULT_CC_INSERT: CcInsert = CcInsert::Insert;
pub const DEFAULT_PRESET: Preset = Preset::Default;
pub const DEFAULT_TUNE: Tune = Tune::Default;
pub const DEFAULT_RC_MODE: RcMode = RcMode::Default;
pub const DEFAULT_BITRATE: u32 = 0;
pub const DEFAULT_MAX_BITRATE: u32 = 0;
pub const MAX_BITRATE_KBPS: u32 = 2_048_000;
pub const DEFAULT_QP: i32 = -1;
pub const DEFAULT_CONST_QUALITY: f64 = 0.0;
pub const DEFAULT_GOP_SIZE: i32 = 75;
pub const DEFAULT_BFRAMES: u32 = 0;
pub const MAX_BFRAMES: u32 = 4;
pub const DEFAULT_ZEROLATENCY: bool = false;
pub const DEFAULT_CUDA_DEVICE_ID: u32 = 0;
pub const DEFAULT_AUD: bool = true;
pub const DEFAULT_REPEAT_SEQUENCE_HEADER: bool = false;
pub const DEFAULT_MULTI_PASS: MultiPass = MultiPass::Default;
pub const MAX_RC_LOOKAHEAD: u32 = 32;
pub const MAX_AQ_STRENGTH: u32 = 15;
pub const MAX_NUM_SLICES: u32 = 32;
/// nvh264enc's `cabac` default (where the GPU reports `NV_ENC_CAPS_SUPPORT_CABAC`).
pub const DEFAULT_CABAC: bool = true;

/// Everything the user set. `Copy`, behind a Mutex in the element.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    pub preset: Preset,
    pub tune: Tune,
    pub rc_mode: RcMode,
    /// kbit/s (x1024 into NVENC, as nvcodec), 0 = preset default.
    pub bitrate: u32,
    /// kbit/s, 0 = preset default.
    pub max_bitrate: u32,
    /// -1 = preset default.
    pub qp_const_i: i32,
    pub qp_const_p: i32,
    pub qp_const_b: i32,
    /// 0 = preset default.
    pub const_quality: f64,
    /// -1 = infinite, 0 = intra only.
    pub gop_size: i32,
    pub bframes: u32,
    pub zerolatency: bool,
    pub cuda_device_id: u32,
    /// H.264 and H.265: access unit delimiters (`outputAUD`).
    pub aud: bool,
    /// H.264 and H.265: parameter sets on every IDR (`repeatSPSPPS`).
    pub repeat_sequence_header: bool,
    pub multi_pass: MultiPass,
    pub weighted_pred: bool,
    /// kbits (x1024 into NVENC), 0 = preset default.
    pub vbv_buffer_size: u32,
    /// Frames, 0 = off.
    pub rc_lookahead: u32,
    pub i_adapt: bool,
    pub b_adapt: bool,
    pub spatial_aq: bool,
    pub temporal_aq: bool,
    pub nonref_p: bool,
    pub strict_gop: bool,
    /// 0 = auto.
    pub aq_strength: u32,
    /// -1 = none; P falls back to I, B to P (as nvcodec).
    pub qp_min_i: i32,
    pub qp_min_p: i32,
    pub qp_min_b: i32,
    pub qp_max_i: i32,
    pub qp_max_p: i32,
    pub qp_max_b: i32,
    /// H.264 and H.265: slices per picture (`sliceMode` 3), 0 = NVENC's default (one).
    pub num_slices: u32,
    /// H.264 only: CABAC where the profile and GPU allow it (`entropyCodingMode`), else CAVLC.
    pub cabac: bool,
    /// AV1 only: uniform tile columns/rows, 0 = NVENC's choice.
    pub tile_columns: u32,
    pub tile_rows: u32,
    /// Frames over which intra refresh sweeps the picture, 0 = off.
    pub intra_refresh_period: u32,
    /// Frames per refresh wave, 0 = the period.
    pub intra_refresh_count: u32,
    pub b_ref_mode: BRefMode,
    /// H.265 and AV1 only.
    pub split_encode_mode: SplitEncodeMode,
    pub lookahead_level: LookaheadLevel,
    pub temporal_filter_level: TemporalFilterLevel,
    /// Long-term reference frames, 0 = off.
    pub ltr_frames: u32,
    /// "LTR Trust" mode: NVENC marks the first `ltr_frames` reference frames after each IDR
    /// (H.264, H.265); else "LTR Per Picture" mode (the `rsnvenc-ltr` event).
    pub ltr_trust_mode: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            preset: DEFAULT_PRESET,
            tune: DEFAULT_TUNE,
            rc_mode: DEFAULT_RC_MODE,
            bitrate: DEFAULT_BITRATE,
            max_bitrate: DEFAULT_MAX_BITRATE,
            qp_const_i: DEFAULT_QP,
            qp_const_p: DEFAULT_QP,
            qp_const_b: DEFAULT_QP,
            const_quality: DEFAULT_CONST_QUALITY,
            gop_size: DEFAULT_GOP_SIZE,
            bframes: DEFAULT_BFRAMES,
            zerolatency: DEFAULT_ZEROLATENCY,
            cuda_device_id: DEFAULT_CUDA_DEVICE_ID,
            aud: DEFAULT_AUD,
            repeat_sequence_header: DEFAULT_REPEAT_SEQUENCE_HEADER,
            multi_pass: DEFAULT_MULTI_PASS,
            weighted_pred: false,
            vbv_buffer_size: 0,
            rc_lookahead: 0,
            i_adapt: false,
            b_adapt: false,
            spatial_aq: false,
            temporal_aq: false,
            nonref_p: false,
            strict_gop: false,
            aq_strength: 0,
            qp_min_i: DEFAULT_QP,
            qp_min_p: DEFAULT_QP,
            qp_min_b: DEFAULT_QP,
            qp_max_i: DEFAULT_QP,
            qp_max_p: DEFAULT_QP,
            qp_max_b: DEFAULT_QP,
            num_slices: 0,
            cabac: DEFAULT_CABAC,
            tile_columns: 0,
            tile_rows: 0,
            intra_refresh_period: 0,
            intra_refresh_count: 0,
            b_ref_mode: BRefMode::Disabled,
            split_encode_mode: DEFAULT_SPLIT_ENCODE_MODE,
            lookahead_level: DEFAULT_LOOKAHEAD_LEVEL,
            temporal_filter_level: DEFAULT_TEMPORAL_FILTER_LEVEL,
            ltr_frames: 0,
            ltr_trust_mode: false,
        }
    }
}

/// What the preset/tune/rc-mode triple resolves to on NVENC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    pub preset_guid: ffi::GUID,
    pub tuning: u32,
    pub rc_mode: u32,
    pub multi_pass: u32,
}

const P: [ffi::GUID; 7] = [
    ffi::NV_ENC_PRESET_P1_GUID,
    ffi::NV_ENC_PRESET_P2_GUID,
    ffi::NV_ENC_PRESET_P3_GUID,
    ffi::NV_ENC_PRESET_P4_GUID,
    ffi::NV_ENC_PRESET_P5_GUID,
    ffi::NV_ENC_PRESET_P6_GUID,
    ffi::NV_ENC_PRESET_P7_GUID,
];

/// Resolves preset, tune and rc-mode like nvcodec's `gst_nv_encoder_preset_to_native()`:
/// the resolution class is 2160 if w*h >= 3840*2160, 1080 if >= 1920*1080, else 720.
pub fn resolve(s: &Settings, width: u32, height: u32) -> Resolved {
    let area = width as u64 * height as u64;
    let class = if area >= 3840 * 2160 {
        2160
    } else if area >= 1920 * 1080 {
        1080
    } else {
        720
    };
    let (p, mut tuning, preset_rc) = match s.preset {
        Preset::Default => (5, ffi::NV_ENC_TUNING_INFO_HIGH_QUALITY, None),
        Preset::Hp => (1, ffi::NV_ENC_TUNING_INFO_HIGH_QUALITY, None),
        Preset::Hq => (
            if class == 2160 { 5 } else { 6 },
            ffi::NV_ENC_TUNING_INFO_HIGH_QUALITY,
            None,
        ),
        Preset::LowLatency => (
            match class {
                720 => 4,
                1080 => 3,
                _ => 2,
            },
            ffi::NV_ENC_TUNING_INFO_LOW_LATENCY,
            None,
        ),
        Preset::LowLatencyHq => (
            if class >= 1080 { 4 } else { 5 },
            ffi::NV_ENC_TUNING_INFO_LOW_LATENCY,
            Some(ffi::NV_ENC_PARAMS_RC_CBR),
        ),
        Preset::LowLatencyHp => (
            if class == 2160 { 1 } else { 2 },
            ffi::NV_ENC_TUNING_INFO_LOW_LATENCY,
            None,
        ),
        Preset::Lossless => (
            5,
            ffi::NV_ENC_TUNING_INFO_LOSSLESS,
            Some(ffi::NV_ENC_PARAMS_RC_CONSTQP),
        ),
        Preset::LosslessHp => (
            3,
            ffi::NV_ENC_TUNING_INFO_LOSSLESS,
            Some(ffi::NV_ENC_PARAMS_RC_CONSTQP),
        ),
        Preset::P1 => (1, ffi::NV_ENC_TUNING_INFO_HIGH_QUALITY, None),
        Preset::P2 => (2, ffi::NV_ENC_TUNING_INFO_HIGH_QUALITY, None),
        Preset::P3 => (3, ffi::NV_ENC_TUNING_INFO_HIGH_QUALITY, None),
        Preset::P4 => (4, ffi::NV_ENC_TUNING_INFO_HIGH_QUALITY, None),
        Preset::P5 => (5, ffi::NV_ENC_TUNING_INFO_HIGH_QUALITY, None),
        Preset::P6 => (6, ffi::NV_ENC_TUNING_INFO_HIGH_QUALITY, None),
        Preset::P7 => (7, ffi::NV_ENC_TUNING_INFO_HIGH_QUALITY, None),
    };
    match s.tune {
        Tune::Default => {}
        Tune::HighQuality => tuning = ffi::NV_ENC_TUNING_INFO_HIGH_QUALITY,
        Tune::LowLatency => tuning = ffi::NV_ENC_TUNING_INFO_LOW_LATENCY,
        Tune::UltraLowLatency => tuning = ffi::NV_ENC_TUNING_INFO_ULTRA_LOW_LATENCY,
        Tune::Lossless => tuning = ffi::NV_ENC_TUNING_INFO_LOSSLESS,
        Tune::UltraHighQuality => tuning = ffi::NV_ENC_TUNING_INFO_ULTRA_HIGH_QUALITY,
    }
    let mut multi_pass = ffi::NV_ENC_MULTI_PASS_DISABLED;
    let rc_mode = match s.rc_mode {
        RcMode::Default => preset_rc.unwrap_or(ffi::NV_ENC_PARAMS_RC_VBR),
        RcMode::ConstQp => ffi::NV_ENC_PARAMS_RC_CONSTQP,
        RcMode::Vbr | RcMode::VbrMinQp => ffi::NV_ENC_PARAMS_RC_VBR,
        RcMode::VbrHq => {
            multi_pass = ffi::NV_ENC_TWO_PASS_QUARTER_RESOLUTION;
            ffi::NV_ENC_PARAMS_RC_VBR
        }
        RcMode::Cbr => ffi::NV_ENC_PARAMS_RC_CBR,
        RcMode::CbrHq => {
            multi_pass = ffi::NV_ENC_TWO_PASS_QUARTER_RESOLUTION;
            ffi::NV_ENC_PARAMS_RC_CBR
        }
        RcMode::CbrLdHq => {
            multi_pass = ffi::NV_ENC_TWO_PASS_QUARTER_RESOLUTION;
            if s.tune == Tune::Default {
                tuning = ffi::NV_ENC_TUNING_INFO_LOW_LATENCY;
            }
            ffi::NV_ENC_PARAMS_RC_CBR
        }
    };
    match s.multi_pass {
        MultiPass::Default => {}
        MultiPass::Disabled => multi_pass = ffi::NV_ENC_MULTI_PASS_DISABLED,
        MultiPass::TwoPassQuarter => multi_pass = ffi::NV_ENC_TWO_PASS_QUARTER_RESOLUTION,
        MultiPass::TwoPass => multi_pass = ffi::NV_ENC_TWO_PASS_FULL_RESOLUTION,
    }
    Resolved {
        preset_guid: P[p - 1],
        tuning,
        rc_mode,
        multi_pass,
    }
}

/// `qp-const-i/-p/-b`, `qp-min-i/-p/-b`, `qp-max-i/-p/-b`: -1 (preset default / none) up to
/// `max` (51 for H.264/H.265, 255 for AV1, as nvcodec). Installed by each codec element because
/// the range differs.
pub fn qp_properties(max: i32) -> Vec<glib::ParamSpec> {
    [
        ("qp-const-i", "Constant QP for I frames", "Constant QP for I frames in constqp rate control (rcParams.constQP.qpIntra), -1 = preset default"),
        ("qp-const-p", "Constant QP for P frames", "Constant QP for P frames in constqp rate control (rcParams.constQP.qpInterP), -1 = preset default"),
        ("qp-const-b", "Constant QP for B frames", "Constant QP for B frames in constqp rate control (rcParams.constQP.qpInterB), -1 = preset default"),
        ("qp-min-i", "Minimum QP for I frames", "Minimum QP for I frames (rcParams.minQP.qpIntra, enableMinQP), -1 = none"),
        ("qp-min-p", "Minimum QP for P frames", "Minimum QP for P frames (rcParams.minQP.qpInterP), -1 = same as qp-min-i"),
        ("qp-min-b", "Minimum QP for B frames", "Minimum QP for B frames (rcParams.minQP.qpInterB), -1 = same as qp-min-p"),
        ("qp-max-i", "Maximum QP for I frames", "Maximum QP for I frames (rcParams.maxQP.qpIntra, enableMaxQP), -1 = none"),
        ("qp-max-p", "Maximum QP for P frames", "Maximum QP for P frames (rcParams.maxQP.qpInterP), -1 = same as qp-max-i"),
        ("qp-max-b", "Maximum QP for B frames", "Maximum QP for B frames (rcParams.maxQP.qpInterB), -1 = same as qp-max-p"),
    ]
    .iter()
    .map(|(name, nick, blurb)| {
        glib::ParamSpecInt::builder(name)
            .nick(nick)
            .blurb(blurb)
            .minimum(-1)
            .maximum(max)
            .default_value(DEFAULT_QP)
            .mutable_playing()
            .build()
    })
    .collect()
}

/// Stores one of [`qp_properties`].
pub fn set_qp_property(s: &mut Settings, value: &glib::Value, pspec: &glib::ParamSpec) {
    let v: i32 = value.get().expect("type checked upstream");
    match pspec.name() {
        "qp-const-i" => s.qp_const_i = v,
        "qp-const-p" => s.qp_const_p = v,
        "qp-const-b" => s.qp_const_b = v,
        "qp-min-i" => s.qp_min_i = v,
        "qp-min-p" => s.qp_min_p = v,
        "qp-min-b" => s.qp_min_b = v,
        "qp-max-i" => s.qp_max_i = v,
        "qp-max-p" => s.qp_max_p = v,
        "qp-max-b" => s.qp_max_b = v,
        _ => unimplemented!(),
    }
}

/// Reads one of [`qp_properties`].
pub fn qp_property(s: &Settings, pspec: &glib::ParamSpec) -> glib::Value {
    match pspec.name() {
        "qp-const-i" => s.qp_const_i.to_value(),
        "qp-const-p" => s.qp_const_p.to_value(),
        "qp-const-b" => s.qp_const_b.to_value(),
        "qp-min-i" => s.qp_min_i.to_value(),
        "qp-min-p" => s.qp_min_p.to_value(),
        "qp-min-b" => s.qp_min_b.to_value(),
        "qp-max-i" => s.qp_max_i.to_value(),
        "qp-max-p" => s.qp_max_p.to_value(),
        "qp-max-b" => s.qp_max_b.to_value(),
        _ => unimplemented!(),
    }
}

impl Settings {
    /// `(intraRefreshPeriod, intraRefreshCnt)` when intra refresh is on. nvEncodeAPI.h: the
    /// count "should be smaller than intraRefreshPeriod"; it defaults to the period minus one (as
    /// FFmpeg's nvenc sets it), and a larger one is lowered to that.
    pub fn intra_refresh(&self) -> Option<(u32, u32)> {
        (self.intra_refresh_period > 0).then(|| {
            let most = self.intra_refresh_period.saturating_sub(1).max(1);
            let count = match self.intra_refresh_count {
                0 => most,
                c => c.min(most),
            };
            (self.intra_refresh_period, count)
        })
    }
}

/// `split-encode-mode`, installed by the H.265 and AV1 elements (split-frame encoding "is not
/// applicable to H264", nvEncodeAPI.h).
pub fn split_encode_mode_property() -> glib::ParamSpec {
    glib::ParamSpecEnum::builder_with_default("split-encode-mode", DEFAULT_SPLIT_ENCODE_MODE)
        .nick("Split Encode Mode")
        .blurb("Split-frame encoding over several NVENC engines (splitEncodeMode, NVENC API 12.1+): forced modes need NV_ENC_CAPS_NUM_ENCODER_ENGINES >= 2 and no weighted prediction (H.265), else refused with a warning; four needs API 13.0; beyond nvcodec")
        .mutable_playing()
        .build()
}

/// Min/max QP with nvcodec's fallbacks (P from I, B from P): `None` if `i` is -1.
pub fn qp_triplet(i: i32, p: i32, b: i32) -> Option<(u32, u32, u32)> {
    if i < 0 {
        return None;
    }
    let p = if p >= 0 { p } else { i };
    let b = if b >= 0 { b } else { p };
    Some((i as u32, p as u32, b as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qp_fallbacks_like_nvcodec() {
        assert_eq!(qp_triplet(-1, 20, 30), None);
        assert_eq!(qp_triplet(10, -1, -1), Some((10, 10, 10)));
        assert_eq!(qp_triplet(10, 20, -1), Some((10, 20, 20)));
        assert_eq!(qp_triplet(10, 20, 30), Some((10, 20, 30)));
    }

    #[test]
    fn resolves_like_nvcodec() {
        let mut s = Settings::default();
        let r = resolve(&s, 720, 405);
        assert_eq!(r.preset_guid, ffi::NV_ENC_PRESET_P5_GUID);
        assert_eq!(r.tuning, ffi::NV_ENC_TUNING_INFO_HIGH_QUALITY);
        assert_eq!(r.rc_mode, ffi::NV_ENC_PARAMS_RC_VBR);
        s.preset = Preset::Hq;
        assert_eq!(
            resolve(&s, 3840, 2160).preset_guid,
            ffi::NV_ENC_PRESET_P5_GUID
        );
        assert_eq!(
            resolve(&s, 1920, 1080).preset_guid,
            ffi::NV_ENC_PRESET_P6_GUID
        );
        s.preset = Preset::LowLatency;
        assert_eq!(
            resolve(&s, 1920, 1080).preset_guid,
            ffi::NV_ENC_PRESET_P3_GUID
        );
        assert_eq!(
            resolve(&s, 1920, 1080).tuning,
            ffi::NV_ENC_TUNING_INFO_LOW_LATENCY
        );
        s.preset = Preset::P7;
        s.tune = Tune::UltraLowLatency;
        s.rc_mode = RcMode::ConstQp;
        let r = resolve(&s, 720, 405);
        assert_eq!(r.preset_guid, ffi::NV_ENC_PRESET_P7_GUID);
        assert_eq!(r.tuning, ffi::NV_ENC_TUNING_INFO_ULTRA_LOW_LATENCY);
        assert_eq!(r.rc_mode, ffi::NV_ENC_PARAMS_RC_CONSTQP);
    }

    #[test]
    fn intra_refresh_count_stays_below_the_period() {
        let ir = |period, count| {
            Settings {
                intra_refresh_period: period,
                intra_refresh_count: count,
                ..Settings::default()
            }
            .intra_refresh()
        };
        assert_eq!(ir(0, 5), None);
        assert_eq!(ir(30, 0), Some((30, 29)));
        assert_eq!(ir(30, 10), Some((30, 10)));
        assert_eq!(ir(30, 30), Some((30, 29)));
        assert_eq!(ir(1, 0), Some((1, 1)));
    }
}
