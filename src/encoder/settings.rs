// SPDX-License-Identifier: MPL-2.0
//! Every property of the rsnvenc elements, in one place: the specs ([`base_properties`] for
//! all, [`codec_properties`] for each codec's own), with names, ranges, defaults and enum nicks
//! as GStreamer's nvcodec (1.26+) has them, so users swap element names and nothing else; where
//! the values live ([`Settings`], kept by a [`Store`]); storing and reading them ([`set`],
//! [`get`]); what a change needs while a session runs ([`Change`]); and the preset/tune/rc-mode
//! triple resolved the way nvcodec maps it ([`resolve`]). Mapping the rest onto NVENC's structs
//! is [`super::config`]'s.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, Ordering};

use gst::glib;
use gst::prelude::*;

use crate::nvenc::api::Codec;
use crate::nvenc::ffi;

use super::lock;

mod enums;

pub use enums::*;

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
/// The GPU of `cuda-device-id` by default: 0, as nvcodec's elements (their `cuda-device-id` is
/// the GPU they were made for, 0 on one GPU); -1 (automatic placement) is asked for.
pub const DEFAULT_CUDA_DEVICE_ID: i32 = 0;
/// `cuda-device-id` value that places the session automatically (`crate::placement`).
pub const AUTO_CUDA_DEVICE_ID: i32 = -1;
pub const DEFAULT_AUD: bool = true;
pub const DEFAULT_REPEAT_SEQUENCE_HEADER: bool = false;
pub const DEFAULT_MULTI_PASS: MultiPass = MultiPass::Default;
pub const MAX_RC_LOOKAHEAD: u32 = 32;
pub const MAX_AQ_STRENGTH: u32 = 15;
/// `roi-delta-qp`: as `default-roi-delta-qp` of GStreamer's VA-API encoders.
pub const DEFAULT_ROI_DELTA_QP: i32 = -10;
/// The widest QP delta a signed byte of NVENC's map holds (AV1's QP scale; H.264/H.265 clamp
/// to ±51).
pub const MAX_ROI_DELTA_QP: i32 = 127;
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
    /// A force-key-unit request starts an intra-refresh wave instead of an IDR.
    pub key_unit_intra_refresh: bool,
    /// `maxEncodeWidth/Height` in pixels, 0 = the first size.
    pub max_width: u32,
    pub max_height: u32,
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
    /// CUDA ordinal, or [`AUTO_CUDA_DEVICE_ID`].
    pub cuda_device_id: i32,
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
    /// QP delta of a region of interest without its own `delta-qp` (`roi-delta-qp`).
    pub roi_delta_qp: i32,
    /// Which QP map regions of interest become (`roi-mode`).
    pub roi_mode: RoiMode,
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
    /// `b-ref-mode` was set: else the preset's `useBFramesAsRef` stays (FFmpeg's and NVIDIA's
    /// client's default), while the property reads `disabled`.
    pub b_ref_mode_set: bool,
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
            key_unit_intra_refresh: false,
            max_width: 0,
            max_height: 0,
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
            roi_delta_qp: DEFAULT_ROI_DELTA_QP,
            roi_mode: RoiMode::Auto,
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
            b_ref_mode_set: false,
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
fn qp_properties(max: i32) -> Vec<glib::ParamSpec> {
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
            .blurb(&format!("{blurb}; changes live in the session (nvEncReconfigureEncoder, no IDR)"))
            .minimum(-1)
            .maximum(max)
            .default_value(DEFAULT_QP)
            .mutable_playing()
            .build()
    })
    .collect()
}

impl Settings {
    /// `useBFramesAsRef` for a session: `b-ref-mode` where set, else `preset` (the preset
    /// config's value, kept as NVIDIA's client and FFmpeg keep it); 0 (disabled) without
    /// B-frames (`with_b` false).
    pub fn b_frames_as_ref(&self, preset: u32, with_b: bool) -> u32 {
        match (with_b, self.b_ref_mode_set) {
            (false, _) => 0,
            (true, true) => self.b_ref_mode as u32,
            (true, false) => preset,
        }
    }

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
fn split_encode_mode_property() -> glib::ParamSpec {
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

/// What a property change needs while a session runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    /// Nothing (read at the next start, e.g. `cuda-device-id`, or per frame).
    Nothing = 0,
    /// `bitrate`, `max-bitrate`: `nvEncReconfigureEncoder` at the next frame, no IDR
    /// ([`super::config::live_rate_update`]), or a new session where the driver refuses it.
    Rate = 1,
    /// The rest of rate control (`rc-mode`, `vbv-buffer-size`, `const-quality`, `qp-*`,
    /// `multi-pass`, `spatial-aq`, `temporal-aq`, `aq-strength`): the session's config made
    /// again for the current settings (the mapping used at start) and sent with
    /// `nvEncReconfigureEncoder` at the next frame, no IDR; a new session where the GPU
    /// cannot (a new `rc-mode` without `NV_ENC_CAPS_SUPPORT_DYN_RCMODE_CHANGE`) or the driver
    /// refuses it.
    RateControl = 2,
    /// Anything else: drain, new session (new IDR) at the next frame.
    Session = 3,
}

/// The properties of the base element, every codec's (in this order, first in
/// `gst-inspect-1.0`): specs with their defaults and blurbs.
pub fn base_properties() -> Vec<glib::ParamSpec> {
    let mut v = rate_properties();
    v.extend(feature_properties());
    v
}

/// The first half of [`base_properties`]: device, preset, rate control, GOP, per-frame
/// switches.
fn rate_properties() -> Vec<glib::ParamSpec> {
    vec![
        glib::ParamSpecInt::builder("cuda-device-id")
            .nick("CUDA Device ID")
            .blurb("CUDA device ordinal of the GPU whose NVENC encodes; -1 = automatic: the GPU of upstream CUDA memory, else the one with the most free NVENC capacity (NVML, all processes), else the fewest sessions of this process; a GPU at its session cap passes the session to the next (see the stats property)")
            .default_value(DEFAULT_CUDA_DEVICE_ID)
            .minimum(AUTO_CUDA_DEVICE_ID)
            .maximum(i32::MAX)
            .mutable_ready()
            .build(),
        glib::ParamSpecEnum::builder_with_default("preset", DEFAULT_PRESET)
            .nick("Encoding Preset")
            .blurb("NVENC preset (presetGUID); legacy names map to P1..P7 as in nvcodec")
            .mutable_playing()
            .build(),
        glib::ParamSpecEnum::builder_with_default("tune", DEFAULT_TUNE)
            .nick("Tune")
            .blurb("NVENC tuning info (tuningInfo); default = the preset's")
            .mutable_playing()
            .build(),
        glib::ParamSpecEnum::builder_with_default("rc-mode", DEFAULT_RC_MODE)
            .nick("RC Mode")
            .blurb("Rate control mode (rcParams.rateControlMode); changes in the session where the GPU reports NV_ENC_CAPS_SUPPORT_DYN_RCMODE_CHANGE, else (current GPUs report 0) with a new session and IDR")
            .mutable_playing()
            .build(),
        glib::ParamSpecUInt::builder("bitrate")
            .nick("Bitrate")
            .blurb("Bitrate in kbit/s (x1024 into rcParams.averageBitRate), 0 = preset default; ignored in constqp; changes live in the session (nvEncReconfigureEncoder, no IDR)")
            .maximum(MAX_BITRATE_KBPS)
            .default_value(DEFAULT_BITRATE)
            .mutable_playing()
            .build(),
        glib::ParamSpecUInt::builder("max-bitrate")
            .nick("Max Bitrate")
            .blurb("Maximum bitrate in kbit/s (rcParams.maxBitRate) for VBR, 0 = preset default; ignored in CBR; changes live in the session (nvEncReconfigureEncoder, no IDR)")
            .maximum(MAX_BITRATE_KBPS)
            .default_value(DEFAULT_MAX_BITRATE)
            .mutable_playing()
            .build(),
        glib::ParamSpecDouble::builder("const-quality")
            .nick("Constant Quality")
            .blurb("Target constant quality for VBR (rcParams.targetQuality, 1/256 steps), 0 = preset default; changes live in the session (nvEncReconfigureEncoder, no IDR)")
            .minimum(0.0)
            .maximum(51.0)
            .default_value(DEFAULT_CONST_QUALITY)
            .mutable_playing()
            .build(),
        glib::ParamSpecInt::builder("gop-size")
            .nick("GOP size")
            .blurb("Frames between IDRs (gopLength and idrPeriod); -1 = infinite, 0 = intra only")
            .minimum(-1)
            .default_value(DEFAULT_GOP_SIZE)
            .mutable_playing()
            .build(),
        glib::ParamSpecUInt::builder("bframes")
            .nick("B-Frames")
            .blurb("B-frames between reference frames (frameIntervalP - 1); capped at the GPU's NV_ENC_CAPS_NUM_MAX_BFRAMES")
            .maximum(MAX_BFRAMES)
            .default_value(DEFAULT_BFRAMES)
            .mutable_playing()
            .build(),
        glib::ParamSpecBoolean::builder("zerolatency")
            .nick("Zerolatency")
            .blurb("Zero reorder delay (rcParams.zeroReorderDelay)")
            .default_value(DEFAULT_ZEROLATENCY)
            .mutable_playing()
            .build(),
        glib::ParamSpecUInt::builder("max-width")
            .nick("Maximum Width")
            .blurb("Largest width in pixels a caps change may bring without a new session (maxEncodeWidth), 0 = the first caps' width: a size within max-width x max-height is encoded in the session (nvEncReconfigureEncoder: IDR with new parameter sets), a larger one drains and opens a new session; input buffers are made this large; read when a session opens")
            .mutable_playing()
            .build(),
        glib::ParamSpecUInt::builder("max-height")
            .nick("Maximum Height")
            .blurb("Largest height in pixels a caps change may bring without a new session (maxEncodeHeight), 0 = the first caps' height; as max-width")
            .mutable_playing()
            .build(),
        glib::ParamSpecBoolean::builder("emit-frame-stats")
            .nick("Emit Frame Stats")
            .blurb("Emit the frame-stats signal (an application/x-rsnvenc-frame-stats structure) for every encoded frame (from the output thread)")
            .mutable_playing()
            .build(),
        glib::ParamSpecEnum::builder_with_default("cc-insert", DEFAULT_CC_INSERT)
            .nick("Closed Caption Insert")
            .blurb("Closed Caption Insert mode: CEA-708 captions (GstVideoCaptionMeta, raw cc_data or CDP) as ATSC A/53 ITU-T T.35 user data, in an SEI message (H.264, H.265) or a metadata OBU (AV1); applies from the next frame")
            .mutable_playing()
            .build(),
        glib::ParamSpecInt::builder("roi-delta-qp")
            .nick("ROI Delta QP")
            .blurb("QP delta of a region of interest (GstVideoRegionOfInterestMeta on an input buffer) whose meta has no roi/nvenc (or other roi/...) parameter with an integer delta-qp: negative = lower QP, better quality; NVENC's QP delta map (qpDeltaMap, rcParams.qpMapMode=NV_ENC_QP_MAP_DELTA: per macroblock for H.264, per CTB for H.265, per 64x64 superblock for AV1, clamped to the codec's QP range; overlapping regions: the first meta wins); refused with one warning where the rate control has no QP to offset (rc-mode=constqp, lossless); applies from the next frame; beyond nvcodec")
            .minimum(-MAX_ROI_DELTA_QP)
            .maximum(MAX_ROI_DELTA_QP)
            .default_value(DEFAULT_ROI_DELTA_QP)
            .mutable_playing()
            .build(),
        glib::ParamSpecEnum::builder_with_default("roi-mode", RoiMode::Auto)
            .nick("ROI Mode")
            .blurb("How regions of interest reach NVENC (rcParams.qpMapMode): auto = an emphasis level map (NV_ENC_QP_MAP_EMPHASIS: a level 0..5 per macroblock, which the driver turns into a lower QP by its own unpublished rule) where the GPU reports NV_ENC_CAPS_SUPPORT_EMPHASIS_LEVEL_MAP for H.264 and spatial-aq and temporal-aq are off (the header: not supported with AQ), else the QP delta map; delta = always the QP delta map; emphasis = the emphasis level map, refused with a warning (delta map instead) where it cannot be used. A region's level: the integer emphasis field (0..5) of its roi/nvenc parameter, else from its QP delta: one level per 2 QP below 0, up to 5 (-1, -2 -> 1; -10 -> 5; 0 or above -> 0: an emphasis map cannot raise QP); a change takes a new session; beyond nvcodec")
            .mutable_playing()
            .build(),
    ]
}

/// The second half of [`base_properties`]: optional NVENC features, and `stats`.
fn feature_properties() -> Vec<glib::ParamSpec> {
    vec![
        glib::ParamSpecUInt::builder("intra-refresh-period")
            .nick("Intra Refresh Period")
            .blurb("Frames between intra refresh waves (enableIntraRefresh, intraRefreshPeriod), 0 = off; refused with a warning if the GPU lacks NV_ENC_CAPS_SUPPORT_INTRA_REFRESH; beyond nvcodec")
            .mutable_playing()
            .build(),
        glib::ParamSpecUInt::builder("intra-refresh-count")
            .nick("Intra Refresh Count")
            .blurb("Frames one refresh wave takes (intraRefreshCnt), below the period (nvEncodeAPI.h); 0 = the period minus one; beyond nvcodec")
            .mutable_playing()
            .build(),
        glib::ParamSpecBoolean::builder("key-unit-intra-refresh")
            .nick("Key Unit As Intra Refresh")
            .blurb("A force-key-unit request (e.g. a receiver's PLI through the RTP payloader) starts an intra-refresh wave of intra-refresh-count pictures (forceIntraRefreshWithFrameCnt) instead of an IDR, where intra refresh is on (intra-refresh-period > 0) and there are no B-frames (nvEncodeAPI.h); all-headers then sends the parameter sets with its first picture; false = an IDR with parameter sets (default); beyond nvcodec")
            .mutable_playing()
            .build(),
        glib::ParamSpecEnum::builder_with_default("b-ref-mode", BRefMode::Disabled)
            .nick("B-frame Reference Mode")
            .blurb("B-frames as references (useBFramesAsRef); unset = the preset's mode (reads as disabled); refused with a warning if the GPU lacks the mode (NV_ENC_CAPS_SUPPORT_BFRAME_REF_MODE); beyond nvcodec")
            .mutable_playing()
            .build(),
        glib::ParamSpecEnum::builder_with_default("multi-pass", DEFAULT_MULTI_PASS)
            .nick("Multi Pass")
            .blurb("Multi-pass encoding (rcParams.multiPass); default = from preset and rc-mode; changes live in the session (nvEncReconfigureEncoder, no IDR)")
            .mutable_playing()
            .build(),
        glib::ParamSpecBoolean::builder("weighted-pred")
            .nick("Weighted Pred")
            .blurb("Weighted prediction (enableWeightedPrediction); refused with a warning if the GPU lacks NV_ENC_CAPS_SUPPORT_WEIGHTED_PREDICTION")
            .mutable_playing()
            .build(),
        glib::ParamSpecUInt::builder("vbv-buffer-size")
            .nick("VBV Buffer Size")
            .blurb("VBV buffer size in kbits (x1024 into rcParams.vbvBufferSize), 0 = preset default; changes live in the session (nvEncReconfigureEncoder, no IDR)")
            .mutable_playing()
            .build(),
        glib::ParamSpecUInt::builder("rc-lookahead")
            .nick("Rate Control Lookahead")
            .blurb("Frames of rate-control lookahead (rcParams.enableLookahead, lookaheadDepth), 0 = off; refused with a warning if the GPU lacks NV_ENC_CAPS_SUPPORT_LOOKAHEAD")
            .maximum(MAX_RC_LOOKAHEAD)
            .mutable_playing()
            .build(),
        glib::ParamSpecBoolean::builder("i-adapt")
            .nick("I Adapt")
            .blurb("Adaptive I-frame insertion with lookahead (rcParams.disableIadapt = !i-adapt)")
            .mutable_playing()
            .build(),
        glib::ParamSpecBoolean::builder("b-adapt")
            .nick("B Adapt")
            .blurb("Adaptive B-frame decision with lookahead (rcParams.disableBadapt = !b-adapt)")
            .mutable_playing()
            .build(),
        glib::ParamSpecBoolean::builder("spatial-aq")
            .nick("Spatial AQ")
            .blurb("Spatial adaptive quantization (rcParams.enableAQ); changes live in the session (nvEncReconfigureEncoder, no IDR)")
            .mutable_playing()
            .build(),
        glib::ParamSpecBoolean::builder("temporal-aq")
            .nick("Temporal AQ")
            .blurb("Temporal adaptive quantization (rcParams.enableTemporalAQ); refused with a warning if the GPU lacks NV_ENC_CAPS_SUPPORT_TEMPORAL_AQ; changes live in the session (nvEncReconfigureEncoder, no IDR)")
            .mutable_playing()
            .build(),
        glib::ParamSpecBoolean::builder("nonref-p")
            .nick("Non-reference P")
            .blurb("Automatic insertion of non-reference P-frames (rcParams.enableNonRefP)")
            .mutable_playing()
            .build(),
        glib::ParamSpecBoolean::builder("strict-gop")
            .nick("Strict GOP")
            .blurb("Minimize GOP-to-GOP rate fluctuations (rcParams.strictGOPTarget)")
            .mutable_playing()
            .build(),
        glib::ParamSpecEnum::builder_with_default("lookahead-level", DEFAULT_LOOKAHEAD_LEVEL)
            .nick("Lookahead Level")
            .blurb("Lookahead level (rcParams.lookaheadLevel, NVENC API 12.2+): needs rc-lookahead > 0 and a GPU with NV_ENC_CAPS_SUPPORT_LOOKAHEAD_LEVEL >= the level, else refused with a warning; default = the preset's; beyond nvcodec")
            .mutable_playing()
            .build(),
        glib::ParamSpecEnum::builder_with_default("temporal-filter-level", DEFAULT_TEMPORAL_FILTER_LEVEL)
            .nick("Temporal Filter Level")
            .blurb("Temporal filter (tfLevel: H.265 from NVENC API 12.2, AV1 and H.264 from 13.0): needs bframes >= 4 (frameIntervalP >= 5), no zerolatency and NV_ENC_CAPS_SUPPORT_TEMPORAL_FILTER, else refused with a warning; beyond nvcodec")
            .mutable_playing()
            .build(),
        glib::ParamSpecUInt::builder("ltr-frames")
            .nick("LTR Frames")
            .blurb("Long-term reference frames (enableLTR, ltrNumFrames; AV1 from NVENC API 13.0), 0 = off: needs bframes=0, at most NV_ENC_CAPS_NUM_MAX_LTR_FRAMES, else refused with a warning; mark/use them per picture with the rsnvenc-ltr event; beyond nvcodec")
            .maximum(MAX_LTR_FRAMES)
            .mutable_playing()
            .build(),
        glib::ParamSpecBoolean::builder("ltr-trust-mode")
            .nick("LTR Trust Mode")
            .blurb("LTR trust mode (ltrTrustMode, H.264/H.265): NVENC marks the first ltr-frames reference frames after each IDR itself (NVIDIA discourages it); false = per-picture marking; beyond nvcodec")
            .mutable_playing()
            .build(),
        glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
            .nick("Statistics")
            .blurb("Running statistics since the element started (application/x-rsnvenc-stats): frames-in, frames-out (pictures into/out of NVENC, guint64), bytes-out (guint64), in-flight (pictures in NVENC now, guint), encoder-fps (pictures out per second over the last second, gdouble), sessions (NVENC sessions opened, guint64), encoder (\"nvenc\"), gpu (CUDA ordinal of the sessions' GPU, gint, -1 before placement), gpu-name, gpu-uuid (NVML), placement (fixed, upstream-memory, nvml, own-sessions), placement-reason (the GPU chosen and why, the figures compared), nvenc-utilisation (NVML encoder utilisation of that GPU in percent, gint, -1 unknown), gpu-sessions (NVML: encode sessions on that GPU, all processes, gint, -1 unknown)")
            .read_only()
            .build(),
        glib::ParamSpecUInt::builder("aq-strength")
            .nick("AQ Strength")
            .blurb("Spatial AQ strength 1 (least) to 15 (most aggressive), 0 = auto (rcParams.aqStrength); changes live in the session (nvEncReconfigureEncoder, no IDR)")
            .maximum(MAX_AQ_STRENGTH)
            .mutable_playing()
            .build(),
    ]
}

/// The properties a codec element adds to [`base_properties`], in its order.
pub fn codec_properties(codec: Codec) -> Vec<glib::ParamSpec> {
    match codec {
        Codec::Av1 => {
            let mut v = qp_properties(255);
            v.push(split_encode_mode_property());
            for (name, nick, field) in [
                ("tile-columns", "Tile Columns", "numTileColumns"),
                ("tile-rows", "Tile Rows", "numTileRows"),
            ] {
                v.push(
                    glib::ParamSpecUInt::builder(name)
                        .nick(nick)
                        .blurb(&format!(
                            "Uniform tile {}s (av1Config.{field}), 0 = NVENC's choice; beyond nvcodec",
                            if name == "tile-rows" { "row" } else { "column" }
                        ))
                        .maximum(64)
                        .mutable_playing()
                        .build(),
                );
            }
            v
        }
        Codec::Hevc => {
            let mut v = qp_properties(51);
            v.push(split_encode_mode_property());
            v.extend(header_properties(
                "hevcConfig",
                "VPS/SPS/PPS",
                "; ignored for hvc1",
            ));
            v.push(num_slices_property("hevcConfig"));
            v.extend(qp_alias_properties());
            v.extend(alias_1_22_properties(51));
            v
        }
        Codec::H264 => {
            let mut v = qp_properties(51);
            v.extend(header_properties(
                "h264Config",
                "SPS/PPS",
                "; ignored for avc (codec_data only) and avc3 (always)",
            ));
            v.push(
                glib::ParamSpecBoolean::builder("cabac")
                    .nick("CABAC")
                    .blurb("CABAC entropy coding where the profile and the GPU (NV_ENC_CAPS_SUPPORT_CABAC) allow it, else CAVLC (h264Config.entropyCodingMode)")
                    .default_value(DEFAULT_CABAC)
                    .mutable_playing()
                    .build(),
            );
            v.push(num_slices_property("h264Config"));
            v.extend(qp_alias_properties());
            v.extend(alias_1_22_properties(51));
            v
        }
    }
}

/// `aud` and `repeat-sequence-header`, shared by the H.264 and H.265 elements: `config` is
/// the NVENC config member the blurbs name, `headers` the parameter sets repeated, `note` added
/// to the second blurb.
fn header_properties(config: &str, headers: &str, note: &str) -> [glib::ParamSpec; 2] {
    [
        glib::ParamSpecBoolean::builder("aud")
            .nick("AUD")
            .blurb(&format!(
                "Insert access unit delimiters ({config}.outputAUD)"
            ))
            .default_value(DEFAULT_AUD)
            .mutable_playing()
            .build(),
        glib::ParamSpecBoolean::builder("repeat-sequence-header")
            .nick("Repeat Sequence Header")
            .blurb(&format!(
                "Insert {headers} before every IDR ({config}.repeatSPSPPS){note}"
            ))
            .default_value(DEFAULT_REPEAT_SEQUENCE_HEADER)
            .mutable_playing()
            .build(),
    ]
}

/// `num-slices`, shared by the H.264 and H.265 elements (`config`: the NVENC config member the
/// blurb names). Installed whatever `NV_ENC_CAPS_SUPPORT_DYNAMIC_SLICE_MODE` says: a fixed number
/// of slices (`sliceMode` 3) is not dynamic slicing (nvcodec 1.28 gates it on that cap).
fn num_slices_property(config: &str) -> glib::ParamSpec {
    glib::ParamSpecUInt::builder("num-slices")
        .nick("Number of Slices")
        .blurb(&format!(
            "Slices per picture ({config}.sliceMode = 3, sliceModeData), 0 = NVENC's default (one)"
        ))
        .maximum(MAX_NUM_SLICES)
        .mutable_playing()
        .build()
}

/// nvcodec's deprecated `qp-const`, `qp-min`, `qp-max` (H.264 and H.265): each sets the I, P
/// and B values together and reads back the I value.
fn qp_alias_properties() -> Vec<glib::ParamSpec> {
    [
        ("qp-const", "qp-const-i/-p/-b"),
        ("qp-min", "qp-min-i/-p/-b"),
        ("qp-max", "qp-max-i/-p/-b"),
    ]
    .iter()
    .map(|(name, what)| {
        glib::ParamSpecInt::builder(name)
            .nick(name)
            .blurb(&format!(
                "Deprecated, as in nvcodec: sets {what} together; reads the I value; changes live in the session"
            ))
            .minimum(-1)
            .maximum(51)
            .default_value(DEFAULT_QP)
            .mutable_playing()
            .build()
    })
    .collect()
}

/// GStreamer 1.22's `GstNvEncoderRCMode` (`nvcudah264enc`, `nvcudah265enc`): the values and
/// nicks of the deprecated `rate-control` property, an alias of `rc-mode`.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstRsNvEncRateControl")]
pub enum RateControl {
    #[enum_value(name = "Constant Quantization", nick = "cqp")]
    Cqp = 0,
    #[enum_value(name = "Variable Bit Rate", nick = "vbr")]
    Vbr = 1,
    #[enum_value(name = "Constant Bit Rate", nick = "cbr")]
    Cbr = 2,
    #[enum_value(name = "Low-Delay CBR, High Quality", nick = "cbr-ld-hq")]
    CbrLdHq = 3,
    #[enum_value(name = "CBR, High Quality (slower)", nick = "cbr-hq")]
    CbrHq = 4,
    #[enum_value(name = "VBR, High Quality (slower)", nick = "vbr-hq")]
    VbrHq = 5,
}

impl From<RateControl> for RcMode {
    fn from(r: RateControl) -> RcMode {
        match r {
            RateControl::Cqp => RcMode::ConstQp,
            RateControl::Vbr => RcMode::Vbr,
            RateControl::Cbr => RcMode::Cbr,
            RateControl::CbrLdHq => RcMode::CbrLdHq,
            RateControl::CbrHq => RcMode::CbrHq,
            RateControl::VbrHq => RcMode::VbrHq,
        }
    }
}

impl From<RcMode> for RateControl {
    /// `default` and `vbr-minqp` read as 1.22's `vbr` (its default).
    fn from(r: RcMode) -> RateControl {
        match r {
            RcMode::ConstQp => RateControl::Cqp,
            RcMode::Cbr => RateControl::Cbr,
            RcMode::CbrLdHq => RateControl::CbrLdHq,
            RcMode::CbrHq => RateControl::CbrHq,
            RcMode::VbrHq => RateControl::VbrHq,
            RcMode::Default | RcMode::Vbr | RcMode::VbrMinQp => RateControl::Vbr,
        }
    }
}

/// GStreamer 1.22's `nvcudah264enc` / `nvcudah265enc` property names that differ from ours,
/// with the property each is a deprecated alias of (H.264 and H.265 elements). `rate-control`
/// (an alias of `rc-mode` with 1.22's enum, [`RateControl`]) is handled apart.
pub const ALIASES_1_22: &[(&str, &str)] = &[
    ("b-frames", "bframes"),
    ("zero-reorder-delay", "zerolatency"),
    ("qp-i", "qp-const-i"),
    ("qp-p", "qp-const-p"),
    ("qp-b", "qp-const-b"),
    ("min-qp-i", "qp-min-i"),
    ("min-qp-p", "qp-min-p"),
    ("min-qp-b", "qp-min-b"),
    ("max-qp-i", "qp-max-i"),
    ("max-qp-p", "qp-max-p"),
    ("max-qp-b", "qp-max-b"),
];

/// Our name of property `name`: itself, or what a [`ALIASES_1_22`] alias stands for.
pub fn canonical(name: &str) -> &str {
    ALIASES_1_22
        .iter()
        .find(|(alias, _)| *alias == name)
        .map_or(name, |(_, ours)| ours)
}

/// The deprecated 1.22 aliases ([`ALIASES_1_22`] and `rate-control`) as property specs: the
/// same type, range and default as the property each stands for, flagged deprecated, the blurb
/// naming it. QPs range -1..=`qp_max`.
fn alias_1_22_properties(qp_max: i32) -> Vec<glib::ParamSpec> {
    let blurb = |ours: &str| {
        format!("Deprecated alias of {ours} (GStreamer 1.22 nvcudah264enc/nvcudah265enc's name)")
    };
    let mut v = vec![
        glib::ParamSpecEnum::builder_with_default("rate-control", RateControl::Vbr)
            .nick("Rate Control")
            .blurb(&format!(
                "{}; 1.22's values: cqp = constqp, default reads as vbr",
                blurb("rc-mode")
            ))
            .deprecated()
            .mutable_playing()
            .build(),
        glib::ParamSpecUInt::builder("b-frames")
            .nick("B-Frames")
            .blurb(&blurb("bframes"))
            .maximum(MAX_BFRAMES)
            .default_value(DEFAULT_BFRAMES)
            .deprecated()
            .mutable_playing()
            .build(),
        glib::ParamSpecBoolean::builder("zero-reorder-delay")
            .nick("Zero Reorder Delay")
            .blurb(&blurb("zerolatency"))
            .default_value(DEFAULT_ZEROLATENCY)
            .deprecated()
            .mutable_playing()
            .build(),
    ];
    for (alias, ours) in &ALIASES_1_22[2..] {
        v.push(
            glib::ParamSpecInt::builder(alias)
                .nick(alias)
                .blurb(&blurb(ours))
                .minimum(-1)
                .maximum(qp_max)
                .default_value(DEFAULT_QP)
                .deprecated()
                .mutable_playing()
                .build(),
        );
    }
    v
}

/// Stores the property `name` (any of [`base_properties`] and [`codec_properties`] but
/// `emit-frame-stats`, `cc-insert` and `stats`, which [`Store`] keeps) and says what the change
/// needs. `value` has the spec's type (GObject checked it).
pub fn set(s: &mut Settings, name: &str, value: &glib::Value) -> Change {
    macro_rules! v {
        () => {
            value.get().expect("type checked upstream")
        };
    }
    // A GStreamer 1.22 name stands for ours from here on (`set_rate`/`set_qp` match ours).
    let name = canonical(name);
    match name {
        "rate-control" => {
            let r: RateControl = v!();
            s.rc_mode = r.into();
        }
        "cuda-device-id" => {
            // An int since automatic placement (-1); a guint value (nvcodec's type) still sets it.
            s.cuda_device_id = value
                .get::<i32>()
                .or_else(|_| value.get::<u32>().map(|v| v.min(i32::MAX as u32) as i32))
                .expect("type checked upstream");
            return Change::Nothing;
        }
        "bitrate" => {
            s.bitrate = v!();
            return Change::Rate;
        }
        "max-bitrate" => {
            s.max_bitrate = v!();
            return Change::Rate;
        }
        "max-width" => {
            s.max_width = v!();
            return Change::Nothing;
        }
        "key-unit-intra-refresh" => {
            s.key_unit_intra_refresh = v!();
            return Change::Nothing;
        }
        "roi-delta-qp" => {
            s.roi_delta_qp = v!();
            return Change::Nothing;
        }
        "max-height" => {
            s.max_height = v!();
            return Change::Nothing;
        }
        "rc-mode" | "const-quality" | "multi-pass" | "vbv-buffer-size" | "spatial-aq"
        | "temporal-aq" | "aq-strength" => {
            set_rate(s, name, value);
            return Change::RateControl;
        }
        n if n.starts_with("qp-") => {
            set_qp(s, name, value);
            return Change::RateControl;
        }
        "preset" => s.preset = v!(),
        "tune" => s.tune = v!(),
        "gop-size" => s.gop_size = v!(),
        "bframes" => s.bframes = v!(),
        "zerolatency" => s.zerolatency = v!(),
        "intra-refresh-period" => s.intra_refresh_period = v!(),
        "intra-refresh-count" => s.intra_refresh_count = v!(),
        "roi-mode" => s.roi_mode = v!(),
        "b-ref-mode" => {
            s.b_ref_mode = v!();
            s.b_ref_mode_set = true;
        }
        "weighted-pred" => s.weighted_pred = v!(),
        "rc-lookahead" => s.rc_lookahead = v!(),
        "i-adapt" => s.i_adapt = v!(),
        "b-adapt" => s.b_adapt = v!(),
        "nonref-p" => s.nonref_p = v!(),
        "strict-gop" => s.strict_gop = v!(),
        "lookahead-level" => s.lookahead_level = v!(),
        "temporal-filter-level" => s.temporal_filter_level = v!(),
        "ltr-frames" => s.ltr_frames = v!(),
        "ltr-trust-mode" => s.ltr_trust_mode = v!(),
        // Codec properties.
        "split-encode-mode" => s.split_encode_mode = v!(),
        "tile-columns" => s.tile_columns = v!(),
        "tile-rows" => s.tile_rows = v!(),
        "cabac" => s.cabac = v!(),
        "aud" => s.aud = v!(),
        "repeat-sequence-header" => s.repeat_sequence_header = v!(),
        "num-slices" => s.num_slices = v!(),
        _ => unimplemented!("property {name}"),
    }
    Change::Session
}

/// The rate-control properties [`set`] stores that are not `qp-*`.
fn set_rate(s: &mut Settings, name: &str, value: &glib::Value) {
    macro_rules! v {
        () => {
            value.get().expect("type checked upstream")
        };
    }
    match name {
        "rc-mode" => s.rc_mode = v!(),
        "const-quality" => s.const_quality = v!(),
        "multi-pass" => s.multi_pass = v!(),
        "vbv-buffer-size" => s.vbv_buffer_size = v!(),
        "spatial-aq" => s.spatial_aq = v!(),
        "temporal-aq" => s.temporal_aq = v!(),
        "aq-strength" => s.aq_strength = v!(),
        _ => unimplemented!("property {name}"),
    }
}

/// The `qp-*` properties [`set`] stores.
fn set_qp(s: &mut Settings, name: &str, value: &glib::Value) {
    macro_rules! v {
        () => {
            value.get().expect("type checked upstream")
        };
    }
    match name {
        "qp-const" => {
            let v: i32 = v!();
            (s.qp_const_i, s.qp_const_p, s.qp_const_b) = (v, v, v);
        }
        // nvcodec's qp-max copies qp-min (its bug, anchor §8); this one does not.
        "qp-min" => {
            let v: i32 = v!();
            (s.qp_min_i, s.qp_min_p, s.qp_min_b) = (v, v, v);
        }
        "qp-max" => {
            let v: i32 = v!();
            (s.qp_max_i, s.qp_max_p, s.qp_max_b) = (v, v, v);
        }
        "qp-const-i" => s.qp_const_i = v!(),
        "qp-const-p" => s.qp_const_p = v!(),
        "qp-const-b" => s.qp_const_b = v!(),
        "qp-min-i" => s.qp_min_i = v!(),
        "qp-min-p" => s.qp_min_p = v!(),
        "qp-min-b" => s.qp_min_b = v!(),
        "qp-max-i" => s.qp_max_i = v!(),
        "qp-max-p" => s.qp_max_p = v!(),
        "qp-max-b" => s.qp_max_b = v!(),
        _ => unimplemented!("property {name}"),
    }
}

/// Reads the property `name` (as [`set`] takes it).
pub fn get(s: &Settings, name: &str) -> glib::Value {
    match canonical(name) {
        "rate-control" => RateControl::from(s.rc_mode).to_value(),
        "cuda-device-id" => s.cuda_device_id.to_value(),
        "max-width" => s.max_width.to_value(),
        "key-unit-intra-refresh" => s.key_unit_intra_refresh.to_value(),
        "max-height" => s.max_height.to_value(),
        "preset" => s.preset.to_value(),
        "tune" => s.tune.to_value(),
        "rc-mode" => s.rc_mode.to_value(),
        "bitrate" => s.bitrate.to_value(),
        "max-bitrate" => s.max_bitrate.to_value(),
        "const-quality" => s.const_quality.to_value(),
        "gop-size" => s.gop_size.to_value(),
        "bframes" => s.bframes.to_value(),
        "zerolatency" => s.zerolatency.to_value(),
        "intra-refresh-period" => s.intra_refresh_period.to_value(),
        "intra-refresh-count" => s.intra_refresh_count.to_value(),
        "b-ref-mode" => s.b_ref_mode.to_value(),
        "multi-pass" => s.multi_pass.to_value(),
        "weighted-pred" => s.weighted_pred.to_value(),
        "vbv-buffer-size" => s.vbv_buffer_size.to_value(),
        "rc-lookahead" => s.rc_lookahead.to_value(),
        "i-adapt" => s.i_adapt.to_value(),
        "b-adapt" => s.b_adapt.to_value(),
        "spatial-aq" => s.spatial_aq.to_value(),
        "temporal-aq" => s.temporal_aq.to_value(),
        "nonref-p" => s.nonref_p.to_value(),
        "strict-gop" => s.strict_gop.to_value(),
        "aq-strength" => s.aq_strength.to_value(),
        "roi-delta-qp" => s.roi_delta_qp.to_value(),
        "roi-mode" => s.roi_mode.to_value(),
        "lookahead-level" => s.lookahead_level.to_value(),
        "temporal-filter-level" => s.temporal_filter_level.to_value(),
        "ltr-frames" => s.ltr_frames.to_value(),
        "ltr-trust-mode" => s.ltr_trust_mode.to_value(),
        "split-encode-mode" => s.split_encode_mode.to_value(),
        "tile-columns" => s.tile_columns.to_value(),
        "tile-rows" => s.tile_rows.to_value(),
        "cabac" => s.cabac.to_value(),
        "aud" => s.aud.to_value(),
        "repeat-sequence-header" => s.repeat_sequence_header.to_value(),
        "num-slices" => s.num_slices.to_value(),
        "qp-const" | "qp-const-i" => s.qp_const_i.to_value(),
        "qp-min" | "qp-min-i" => s.qp_min_i.to_value(),
        "qp-max" | "qp-max-i" => s.qp_max_i.to_value(),
        "qp-const-p" => s.qp_const_p.to_value(),
        "qp-const-b" => s.qp_const_b.to_value(),
        "qp-min-p" => s.qp_min_p.to_value(),
        "qp-min-b" => s.qp_min_b.to_value(),
        "qp-max-p" => s.qp_max_p.to_value(),
        "qp-max-b" => s.qp_max_b.to_value(),
        _ => unimplemented!("property {name}"),
    }
}

/// An element's settings: the values behind one mutex (property setters, session creation),
/// what a change made while a session runs needs (applied by the streaming thread at the next
/// frame), and the two values read for every frame without a lock: `emit-frame-stats` (output
/// thread) and `cc-insert` (streaming thread).
#[derive(Default)]
pub struct Store {
    values: Mutex<Settings>,
    /// The largest [`Change`] since the last session or update, as u8.
    pending: AtomicU8,
    emit_frame_stats: AtomicBool,
    /// [`CcInsert`] as u32.
    cc_insert: AtomicU32,
}

impl Store {
    /// A copy of the values now.
    pub fn get(&self) -> Settings {
        *lock(&self.values)
    }

    /// `set_property` of any property but `stats`.
    pub fn set_property(&self, name: &str, value: &glib::Value) {
        let change = match name {
            "emit-frame-stats" => {
                let v: bool = value.get().expect("type checked upstream");
                self.emit_frame_stats.store(v, Ordering::Relaxed);
                Change::Nothing
            }
            "cc-insert" => {
                let v: CcInsert = value.get().expect("type checked upstream");
                self.cc_insert.store(v as u32, Ordering::Relaxed);
                Change::Nothing
            }
            _ => set(&mut lock(&self.values), name, value),
        };
        if change != Change::Nothing {
            self.pending.fetch_max(change as u8, Ordering::SeqCst);
        }
    }

    /// `property` of any property but `stats`.
    pub fn property(&self, name: &str) -> glib::Value {
        match name {
            "emit-frame-stats" => self.emit_frame_stats().to_value(),
            "cc-insert" => self.cc_insert().to_value(),
            _ => get(&lock(&self.values), name),
        }
    }

    /// What the changes since the last call (or [`Self::session_started`]) need, and forgets
    /// them.
    pub fn take_pending(&self) -> Change {
        match self.pending.swap(0, Ordering::SeqCst) {
            0 => Change::Nothing,
            1 => Change::Rate,
            2 => Change::RateControl,
            _ => Change::Session,
        }
    }

    /// A session is being made with the values as they are now: earlier changes need nothing
    /// more. Returns those values.
    pub fn session_started(&self) -> Settings {
        self.pending.store(0, Ordering::SeqCst);
        self.get()
    }

    pub fn emit_frame_stats(&self) -> bool {
        self.emit_frame_stats.load(Ordering::Relaxed)
    }

    pub fn cc_insert(&self) -> CcInsert {
        CcInsert::from_u32(self.cc_insert.load(Ordering::Relaxed))
    }
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
    fn b_ref_mode_keeps_the_presets_unless_set() {
        let mut s = Settings::default();
        assert_eq!(
            s.b_frames_as_ref(2, true),
            2,
            "unset: the preset's (P7: middle)"
        );
        assert_eq!(s.b_frames_as_ref(2, false), 0, "no B-frames: disabled");
        assert_eq!(
            get(&s, "b-ref-mode").get::<BRefMode>().unwrap(),
            BRefMode::Disabled,
            "reads as before"
        );
        set(&mut s, "b-ref-mode", &BRefMode::Disabled.to_value());
        assert_eq!(s.b_frames_as_ref(2, true), 0, "disabled asked for");
        set(&mut s, "b-ref-mode", &BRefMode::Each.to_value());
        assert_eq!(s.b_frames_as_ref(2, true), 1);
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

    #[test]
    fn what_a_change_needs() {
        let mut s = Settings::default();
        assert_eq!(set(&mut s, "bitrate", &4000u32.to_value()), Change::Rate);
        assert_eq!(s.bitrate, 4000);
        assert_eq!(
            set(&mut s, "max-bitrate", &8000u32.to_value()),
            Change::Rate
        );
        assert_eq!(
            set(&mut s, "cuda-device-id", &1u32.to_value()),
            Change::Nothing
        );
        assert_eq!(set(&mut s, "gop-size", &30i32.to_value()), Change::Session);
        assert_eq!(set(&mut s, "cabac", &false.to_value()), Change::Session);
        assert_eq!(get(&s, "bitrate").get::<u32>(), Ok(4000));
        assert_eq!(get(&s, "gop-size").get::<i32>(), Ok(30));
    }

    #[test]
    fn gstreamer_1_22_aliases_are_our_properties() {
        let mut s = Settings::default();
        set(&mut s, "b-frames", &3u32.to_value());
        assert_eq!(s.bframes, 3);
        set(&mut s, "max-qp-p", &33i32.to_value());
        assert_eq!(get(&s, "qp-max-p").get::<i32>(), Ok(33));
        set(&mut s, "zerolatency", &true.to_value());
        assert_eq!(get(&s, "zero-reorder-delay").get::<bool>(), Ok(true));
        set(&mut s, "rate-control", &RateControl::Cqp.to_value());
        assert_eq!(s.rc_mode, RcMode::ConstQp);
        set(&mut s, "rc-mode", &RcMode::Default.to_value());
        assert_eq!(
            get(&s, "rate-control").get::<RateControl>(),
            Ok(RateControl::Vbr),
            "default reads as 1.22's vbr"
        );
        let names: Vec<String> = codec_properties(Codec::H264)
            .iter()
            .map(|p| p.name().to_string())
            .collect();
        for (alias, _) in ALIASES_1_22 {
            assert!(names.iter().any(|n| n == alias), "{alias}");
        }
        assert!(
            codec_properties(Codec::Av1)
                .iter()
                .all(|p| p.name() != "rate-control")
        );
    }

    #[test]
    fn qp_aliases_set_all_three_and_read_i() {
        let mut s = Settings::default();
        set(&mut s, "qp-min", &20i32.to_value());
        assert_eq!((s.qp_min_i, s.qp_min_p, s.qp_min_b), (20, 20, 20));
        set(&mut s, "qp-min-p", &25i32.to_value());
        assert_eq!(get(&s, "qp-min").get::<i32>(), Ok(20));
        assert_eq!(
            s.qp_max_i, DEFAULT_QP,
            "qp-min does not touch qp-max (nvcodec's bug)"
        );
    }

    #[test]
    fn store_keeps_the_largest_pending_change() {
        let st = Store::default();
        assert_eq!(st.take_pending(), Change::Nothing);
        st.set_property("bitrate", &100u32.to_value());
        st.set_property("preset", &Preset::P1.to_value());
        st.set_property("max-bitrate", &200u32.to_value());
        assert_eq!(st.take_pending(), Change::Session);
        assert_eq!(st.take_pending(), Change::Nothing);
        st.set_property("bitrate", &300u32.to_value());
        st.set_property("emit-frame-stats", &true.to_value());
        st.set_property("cc-insert", &CcInsert::Disabled.to_value());
        assert_eq!(st.take_pending(), Change::Rate);
        assert!(st.emit_frame_stats());
        assert_eq!(st.cc_insert(), CcInsert::Disabled);
        st.set_property("tune", &Tune::LowLatency.to_value());
        assert_eq!(st.session_started().bitrate, 300);
        assert_eq!(
            st.take_pending(),
            Change::Nothing,
            "the new session took it"
        );
    }

    #[test]
    fn every_property_has_one_home() {
        // Every spec of the base and of each codec is stored and read here (not `stats`,
        // which the element reads from its stream).
        let mut s = Settings::default();
        for codec in [Codec::Av1, Codec::Hevc, Codec::H264] {
            for p in base_properties()
                .iter()
                .chain(codec_properties(codec).iter())
            {
                let name = p.name();
                if ["stats", "emit-frame-stats", "cc-insert"].contains(&name) {
                    continue;
                }
                let v = p.default_value().clone();
                set(&mut s, name, &v);
                assert_eq!(get(&s, name).type_(), v.type_(), "{name}");
            }
        }
    }
}
