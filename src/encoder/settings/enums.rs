// SPDX-License-Identifier: MPL-2.0
//! The properties' GObject enums (names, nicks and values as nvcodec's, `GstRsNvEnc*` types)
//! and the limits of the SDK extensions' properties; re-exported by [`super`].

use gst::glib;

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

/// `roi-mode`: which NVENC QP map regions of interest become (`rcParams.qpMapMode`).
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstRsNvEncRoiMode")]
pub enum RoiMode {
    #[enum_value(
        name = "Emphasis level map where the GPU has it (H.264, no AQ), else QP delta map",
        nick = "auto"
    )]
    Auto = 0,
    #[enum_value(name = "QP delta map (NV_ENC_QP_MAP_DELTA)", nick = "delta")]
    Delta = 1,
    #[enum_value(
        name = "Emphasis level map (NV_ENC_QP_MAP_EMPHASIS), else refused with a warning",
        nick = "emphasis"
    )]
    Emphasis = 2,
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
