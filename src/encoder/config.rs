// SPDX-License-Identifier: MPL-2.0
//! The session's configuration, pure: the user's [`Settings`], what the GPU can do
//! ([`GpuCaps`], the one place NVENC's capabilities are queried) and the input's
//! `VideoInfo` give `NV_ENC_INITIALIZE_PARAMS` and `NV_ENC_CONFIG`, plus what had to be refused
//! (posted as element warnings by the caller). [`apply_bitrates`] is the one mapping of
//! `bitrate`/`max-bitrate` onto `rcParams`, used when the session is made and when the bitrate
//! changes while it runs ([`live_rate_update`]).

use gst::prelude::*;

use crate::nvenc::api::{ApiVersion, Codec, NvEncError, Session};
use crate::nvenc::ffi;
use crate::nvenc::formats::InputFormat;

use super::sdkext;
use super::settings::{self, BRefMode, Resolved, Settings};

/// What the GPU's NVENC can do for one codec (`nvEncGetEncodeCaps`, `nvEncGetInputFormats`,
/// `nvEncGetEncodeProfileGUIDs`), queried once per session by [`GpuCaps::query`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GpuCaps {
    /// The GPU's name, for messages.
    pub gpu: String,
    /// Encode sizes, in pixels: (minimum, maximum) width and height.
    pub width: (u32, u32),
    pub height: (u32, u32),
    /// `NV_ENC_BUFFER_FORMAT_*` the GPU takes for the codec.
    pub input_formats: Vec<u32>,
    /// Profile GUIDs the GPU encodes the codec with.
    pub profile_guids: Vec<ffi::GUID>,
    pub ten_bit: bool,
    pub yuv444: bool,
    /// `NV_ENC_CAPS_NUM_MAX_BFRAMES`.
    pub max_bframes: u32,
    pub lookahead: bool,
    pub temporal_aq: bool,
    pub weighted_prediction: bool,
    pub intra_refresh: bool,
    /// `NV_ENC_CAPS_SUPPORT_BFRAME_REF_MODE`: a bit per [`BRefMode`].
    pub bframe_ref_mode: u32,
    /// `NV_ENC_CAPS_SUPPORT_CABAC` (H.264 only; false elsewhere).
    pub cabac: bool,
    /// `NV_ENC_CAPS_SUPPORT_LOSSLESS_ENCODE` (a failed query reads as 0, as in FFmpeg).
    pub lossless: bool,
    /// `NV_ENC_CAPS_SUPPORT_DYN_RES_CHANGE`: a new size within the maximum in the session.
    pub dyn_res_change: bool,
    /// `NV_ENC_CAPS_SUPPORT_DYN_RCMODE_CHANGE`: a new rate-control mode in the session.
    pub dyn_rc_mode_change: bool,
    /// `NV_ENC_CAPS_SUPPORT_EMPHASIS_LEVEL_MAP` (H.264 only: false elsewhere, as
    /// `NV_ENC_QP_MAP_EMPHASIS` is "only supported for H264"; a failed query reads as 0).
    pub emphasis_map: bool,
    /// What the SDK extensions depend on (a failed query, or one the API lacks, reads as 0).
    pub ext: sdkext::Caps,
}

impl GpuCaps {
    /// Queries `session`'s GPU for `codec`. Errors if the GPU cannot encode the codec at all,
    /// or a query fails.
    pub fn query(session: &Session, codec: Codec) -> Result<GpuCaps, NvEncError> {
        let gpu = session.context().device().name().unwrap_or_default();
        let guid = codec.guid();
        if !session.encode_guids()?.contains(&guid) {
            return Err(NvEncError::Other(format!(
                "the GPU \"{gpu}\" cannot encode {codec} with NVENC"
            )));
        }
        let cap = |c| session.caps(guid, c);
        let (wmin, hmin) = (
            cap(ffi::NV_ENC_CAPS_WIDTH_MIN)?.max(1) as u32,
            cap(ffi::NV_ENC_CAPS_HEIGHT_MIN)?.max(1) as u32,
        );
        let wmax = (cap(ffi::NV_ENC_CAPS_WIDTH_MAX)?.max(0) as u32).max(wmin);
        let hmax = (cap(ffi::NV_ENC_CAPS_HEIGHT_MAX)?.max(0) as u32).max(hmin);
        let api = session.api();
        let newer = sdkext::has_lookahead_level(api);
        let cap_or_0 = |c| cap(c).unwrap_or(0);
        Ok(GpuCaps {
            width: (wmin, wmax),
            height: (hmin, hmax),
            input_formats: session.input_formats(guid)?,
            profile_guids: session.profile_guids(guid)?,
            ten_bit: cap(ffi::NV_ENC_CAPS_SUPPORT_10BIT_ENCODE)? != 0,
            yuv444: cap(ffi::NV_ENC_CAPS_SUPPORT_YUV444_ENCODE)? != 0,
            max_bframes: cap(ffi::NV_ENC_CAPS_NUM_MAX_BFRAMES)?.max(0) as u32,
            lookahead: cap(ffi::NV_ENC_CAPS_SUPPORT_LOOKAHEAD)? != 0,
            temporal_aq: cap(ffi::NV_ENC_CAPS_SUPPORT_TEMPORAL_AQ)? != 0,
            weighted_prediction: cap(ffi::NV_ENC_CAPS_SUPPORT_WEIGHTED_PREDICTION)? != 0,
            intra_refresh: cap(ffi::NV_ENC_CAPS_SUPPORT_INTRA_REFRESH)? != 0,
            bframe_ref_mode: cap(ffi::NV_ENC_CAPS_SUPPORT_BFRAME_REF_MODE)? as u32,
            cabac: codec == Codec::H264 && cap(ffi::NV_ENC_CAPS_SUPPORT_CABAC)? != 0,
            lossless: cap_or_0(ffi::NV_ENC_CAPS_SUPPORT_LOSSLESS_ENCODE) != 0,
            dyn_res_change: cap_or_0(ffi::NV_ENC_CAPS_SUPPORT_DYN_RES_CHANGE) != 0,
            dyn_rc_mode_change: cap_or_0(ffi::NV_ENC_CAPS_SUPPORT_DYN_RCMODE_CHANGE) != 0,
            emphasis_map: codec == Codec::H264
                && cap_or_0(ffi::NV_ENC_CAPS_SUPPORT_EMPHASIS_LEVEL_MAP) != 0,
            ext: sdkext::Caps {
                engines: cap_or_0(ffi::NV_ENC_CAPS_NUM_ENCODER_ENGINES),
                max_ltr_frames: cap_or_0(ffi::NV_ENC_CAPS_NUM_MAX_LTR_FRAMES),
                temporal_filter: if newer {
                    cap_or_0(ffi::NV_ENC_CAPS_SUPPORT_TEMPORAL_FILTER)
                } else {
                    0
                },
                lookahead_level: if newer {
                    cap_or_0(ffi::NV_ENC_CAPS_SUPPORT_LOOKAHEAD_LEVEL)
                } else {
                    0
                },
            },
            gpu,
        })
    }

    /// Whether the GPU takes `f` as input for the codec (format, 10-bit and 4:4:4 caps).
    pub fn takes(&self, f: &InputFormat) -> bool {
        self.input_formats.contains(&f.buffer_format)
            && (f.bit_depth == 8 || self.ten_bit)
            && (!f.chroma_444 || self.yuv444)
    }
}

/// A setting the session could not honour, for an element warning: (message, debug details).
pub type Warning = (String, String);

/// Why the GPU cannot encode a `width` x `height` picture of `format` (`name`: its caps name)
/// as `codec`; `Ok` if it can.
pub fn check_input(
    caps: &GpuCaps,
    codec: Codec,
    format: &InputFormat,
    name: &str,
    (width, height): (u32, u32),
) -> Result<(), String> {
    let gpu = &caps.gpu;
    let ((wmin, wmax), (hmin, hmax)) = (caps.width, caps.height);
    if width > wmax || height > hmax || width < wmin || height < hmin {
        return Err(format!(
            "{width}x{height} is outside what NVENC on \"{gpu}\" encodes as {codec}: {wmin}x{hmin} to {wmax}x{hmax}"
        ));
    }
    if !caps.input_formats.contains(&format.buffer_format) {
        return Err(format!(
            "NVENC on \"{gpu}\" takes no {name} input for {codec} (NV_ENC_BUFFER_FORMAT {:#x})",
            format.buffer_format
        ));
    }
    if format.bit_depth > 8 && !caps.ten_bit {
        return Err(format!("NVENC on \"{gpu}\" cannot encode 10-bit {codec}"));
    }
    if format.chroma_444 && !caps.yuv444 {
        return Err(format!("NVENC on \"{gpu}\" cannot encode 4:4:4 {codec}"));
    }
    Ok(())
}

/// `tune=ultra-high-quality` where the API lacks it for the codec (it came with SDK 12.2 for
/// H.265 and 13.0 for AV1) falls back to high quality, with a warning.
pub fn check_tuning(res: &mut Resolved, api: ApiVersion, codec: Codec) -> Option<Warning> {
    let uhq_ok = match codec {
        Codec::Hevc => api.has_bit_depth_enums(),
        Codec::Av1 => api == ApiVersion::V13_0,
        Codec::H264 => false,
    };
    (res.tuning == ffi::NV_ENC_TUNING_INFO_ULTRA_HIGH_QUALITY && !uhq_ok).then(|| {
        res.tuning = ffi::NV_ENC_TUNING_INFO_HIGH_QUALITY;
        (
            "tune=ultra-high-quality needs NVENC API 12.2 (H.265) or 13.0 (AV1): using high-quality"
                .to_string(),
            format!("API {}, {codec}", api.name()),
        )
    })
}

/// Lossless tuning (`preset=lossless`/`lossless-hp`, `tune=lossless`) where the GPU reports
/// `NV_ENC_CAPS_SUPPORT_LOSSLESS_ENCODE` 0 for `codec` (AV1 on current GPUs): high-quality
/// tuning at the same P-preset (P5 for `lossless`, P3 for `lossless-hp`) and the same rate
/// control (constant QP, the preset's QPs, for the lossless presets), with a warning; the driver
/// would refuse the session (`UNSUPPORTED_PARAM`).
pub fn check_lossless(res: &mut Resolved, caps: &GpuCaps, codec: Codec) -> Option<Warning> {
    (res.tuning == ffi::NV_ENC_TUNING_INFO_LOSSLESS && !caps.lossless).then(|| {
        res.tuning = ffi::NV_ENC_TUNING_INFO_HIGH_QUALITY;
        (
            format!(
                "lossless encoding is not supported by this GPU's NVENC for {codec}: using high-quality tuning"
            ),
            format!(
                "NV_ENC_CAPS_SUPPORT_LOSSLESS_ENCODE is 0 for {codec} on \"{}\"",
                caps.gpu
            ),
        )
    })
}

/// The H.264 profile a lossless session needs: lossless H.264 is High 4:4:4 Predictive
/// (`qpprime_y_zero_transform_bypass`), so any other profile GUID becomes HIGH_444 where the
/// GPU lists it, else AUTOSELECT (FFmpeg's choice too). `None`: `profile` stays (not H.264,
/// not lossless, or already HIGH_444/AUTOSELECT).
pub fn lossless_h264_profile(
    res: &Resolved,
    caps: &GpuCaps,
    codec: Codec,
    profile: ffi::GUID,
) -> Option<ffi::GUID> {
    let keep = [
        ffi::NV_ENC_H264_PROFILE_HIGH_444_GUID,
        ffi::NV_ENC_CODEC_PROFILE_AUTOSELECT_GUID,
    ];
    (codec == Codec::H264
        && res.tuning == ffi::NV_ENC_TUNING_INFO_LOSSLESS
        && !keep.contains(&profile))
    .then(|| {
        if caps
            .profile_guids
            .contains(&ffi::NV_ENC_H264_PROFILE_HIGH_444_GUID)
        {
            ffi::NV_ENC_H264_PROFILE_HIGH_444_GUID
        } else {
            ffi::NV_ENC_CODEC_PROFILE_AUTOSELECT_GUID
        }
    })
}

/// `bitrate` and `max-bitrate` (kbit/s, x1024 as nvcodec) into `rcParams.averageBitRate` and
/// `maxBitRate` (bit/s); 0 keeps the preset's. The one mapping, at session start and on a
/// live change.
pub fn apply_bitrates(rc: &mut ffi::NV_ENC_RC_PARAMS, s: &Settings) {
    if s.bitrate > 0 {
        rc.averageBitRate = s.bitrate.saturating_mul(1024);
    }
    if s.max_bitrate > 0 {
        rc.maxBitRate = s.max_bitrate.saturating_mul(1024);
    }
}

/// A bitrate change while the session runs: the new `rcParams` for `nvEncReconfigureEncoder`
/// written into `cfg`. Errors (nothing changed) in constant QP, which has no bitrate.
pub fn live_rate_update(cfg: &mut ffi::NV_ENC_CONFIG, s: &Settings) -> Result<(), &'static str> {
    if cfg.rcParams.rateControlMode == ffi::NV_ENC_PARAMS_RC_CONSTQP {
        return Err("bitrate change ignored in constqp");
    }
    apply_bitrates(&mut cfg.rcParams, s);
    Ok(())
}

/// The encode config, before the codec's part ([`super::CodecOps::configure`]) and the SDK
/// extensions.
pub struct EncodeConfig {
    pub cfg: Box<ffi::NV_ENC_CONFIG>,
    /// The settings with what the GPU refused taken out (for the codec's part).
    pub settings: Settings,
    /// `gopLength` (`u32::MAX`: infinite).
    pub gop: u32,
    /// Lookahead depth in frames, 0 = none.
    pub lookahead: u32,
    pub weighted_prediction: bool,
    /// What was refused, one warning each, in order.
    pub warnings: Vec<Warning>,
}

/// `preset` (the preset's config) edited with the settings the GPU allows: GOP, B-frames
/// (at most the GPU's, `bframes` already capped), rate control and the optional features.
pub fn encode_config(
    preset: &ffi::NV_ENC_CONFIG,
    s: &Settings,
    res: &Resolved,
    caps: &GpuCaps,
    codec: Codec,
    bframes: u32,
) -> EncodeConfig {
    let mut cfg: Box<ffi::NV_ENC_CONFIG> = ffi::boxed_zeroed();
    *cfg = *preset;
    let mut warnings = Vec::new();
    // Options the GPU may lack are refused with a warning, never silently dropped.
    let mut refuse = |prop: &str, cap_name: &str| refused(&mut warnings, prop, cap_name, codec);
    // GOP: nvcodec semantics (-1 infinite, 0 intra only).
    let (gop, frame_interval_p) = match s.gop_size {
        -1 => (u32::MAX, 1),
        0 => (1, 1),
        n => (n as u32, bframes as i32 + 1),
    };
    cfg.gopLength = gop;
    cfg.frameIntervalP = frame_interval_p;
    rate_control(&mut cfg.rcParams, s, res);
    let rc = &mut cfg.rcParams;
    if s.rc_lookahead > 0 {
        if caps.lookahead {
            rc.flags = ffi::RC_ENABLE_LOOKAHEAD.set(rc.flags, 1);
            rc.lookaheadDepth = s.rc_lookahead as u16;
            rc.flags = ffi::RC_DISABLE_IADAPT.set(rc.flags, !s.i_adapt as u32);
            rc.flags = ffi::RC_DISABLE_BADAPT.set(rc.flags, !s.b_adapt as u32);
        } else {
            refuse("rc-lookahead", "NV_ENC_CAPS_SUPPORT_LOOKAHEAD");
        }
    }
    rc.flags = ffi::RC_ENABLE_AQ.set(rc.flags, s.spatial_aq as u32);
    if s.spatial_aq {
        rc.flags = ffi::RC_AQ_STRENGTH.set(rc.flags, s.aq_strength);
    }
    if s.temporal_aq {
        if caps.temporal_aq {
            rc.flags = ffi::RC_ENABLE_TEMPORAL_AQ.set(rc.flags, 1);
        } else {
            refuse("temporal-aq", "NV_ENC_CAPS_SUPPORT_TEMPORAL_AQ");
        }
    }
    // Regions of interest as an emphasis level map where it can be used (`roi-mode`).
    let mut emphasis_refused = None;
    if rc.qpMapMode == ffi::NV_ENC_QP_MAP_DELTA && s.roi_mode != settings::RoiMode::Delta {
        match emphasis_blocker(caps, codec, rc) {
            None => rc.qpMapMode = ffi::NV_ENC_QP_MAP_EMPHASIS,
            Some(why) if s.roi_mode == settings::RoiMode::Emphasis => emphasis_refused = Some((
                "roi-mode=emphasis is not possible here: regions of interest use the QP delta map"
                    .to_string(),
                why,
            )),
            Some(_) => {}
        }
    }
    rc.flags = ffi::RC_ENABLE_NONREF_P.set(rc.flags, s.nonref_p as u32);
    rc.flags = ffi::RC_STRICT_GOP_TARGET.set(rc.flags, s.strict_gop as u32);
    let weighted_prediction = s.weighted_pred
        && if caps.weighted_prediction {
            true
        } else {
            refuse("weighted-pred", "NV_ENC_CAPS_SUPPORT_WEIGHTED_PREDICTION");
            false
        };
    let lookahead = if ffi::RC_ENABLE_LOOKAHEAD.get(rc.flags) != 0 {
        rc.lookaheadDepth as u32
    } else {
        0
    };
    warnings.extend(emphasis_refused);
    let mut s = *s;
    if s.intra_refresh_period > 0 && !caps.intra_refresh {
        refused(
            &mut warnings,
            "intra-refresh-period",
            "NV_ENC_CAPS_SUPPORT_INTRA_REFRESH",
            codec,
        );
        s.intra_refresh_period = 0;
    }
    if let Some((period, count)) = s.intra_refresh()
        && s.intra_refresh_count > count
    {
        warnings.push((
            format!("intra-refresh-count {} lowered to {count}", s.intra_refresh_count),
            format!(
                "nvEncodeAPI.h: intraRefreshCnt should be smaller than intraRefreshPeriod ({period})"
            ),
        ));
    }
    if s.b_ref_mode != BRefMode::Disabled
        && (caps.bframe_ref_mode & s.b_ref_mode as u32 == 0 || bframes == 0)
    {
        refused(
            &mut warnings,
            "b-ref-mode",
            "NV_ENC_CAPS_SUPPORT_BFRAME_REF_MODE (or bframes=0)",
            codec,
        );
        s.b_ref_mode = BRefMode::Disabled;
    }
    EncodeConfig {
        cfg,
        settings: s,
        gop,
        lookahead,
        weighted_prediction,
        warnings,
    }
}

/// Why a session of `codec` with rate control `rc` (AQ flags set) cannot take an emphasis level
/// map (`NV_ENC_QP_MAP_EMPHASIS`); `None`: it can. nvEncodeAPI.h (`qpMapMode`): "only
/// supported for H264 codec currently", "not supported when AQ (Spatial/Temporal) is enabled",
/// and the GPU must report `NV_ENC_CAPS_SUPPORT_EMPHASIS_LEVEL_MAP`.
fn emphasis_blocker(caps: &GpuCaps, codec: Codec, rc: &ffi::NV_ENC_RC_PARAMS) -> Option<String> {
    if codec != Codec::H264 {
        Some(format!(
            "NVENC has emphasis level maps for H.264 only, not {codec}"
        ))
    } else if !caps.emphasis_map {
        Some("NV_ENC_CAPS_SUPPORT_EMPHASIS_LEVEL_MAP is 0 for H.264".into())
    } else if ffi::RC_ENABLE_AQ.get(rc.flags) != 0 || ffi::RC_ENABLE_TEMPORAL_AQ.get(rc.flags) != 0
    {
        Some("an emphasis level map is not supported with spatial-aq or temporal-aq".into())
    } else {
        None
    }
}

/// `prop` refused: the GPU reports `cap_name` as 0 for `codec`.
fn refused(warnings: &mut Vec<Warning>, prop: &str, cap_name: &str, codec: Codec) {
    warnings.push((
        format!("{prop} is not supported by this GPU's NVENC and is ignored"),
        format!("{cap_name} is 0 for {codec}"),
    ));
}

/// Rate control: mode, multi-pass, constant QPs or bitrates and quality, VBV, QP bounds,
/// zero reorder delay.
fn rate_control(rc: &mut ffi::NV_ENC_RC_PARAMS, s: &Settings, res: &Resolved) {
    rc.rateControlMode = res.rc_mode;
    rc.multiPass = res.multi_pass;
    if res.rc_mode == ffi::NV_ENC_PARAMS_RC_CONSTQP {
        if s.qp_const_i >= 0 {
            rc.constQP.qpIntra = s.qp_const_i as u32;
        }
        if s.qp_const_p >= 0 {
            rc.constQP.qpInterP = s.qp_const_p as u32;
        }
        if s.qp_const_b >= 0 {
            rc.constQP.qpInterB = s.qp_const_b as u32;
        }
    } else {
        apply_bitrates(rc, s);
        if s.const_quality > 0.0 {
            rc.targetQuality = s.const_quality.floor() as u8;
            rc.targetQualityLSB = ((s.const_quality.fract()) * 256.0) as u8;
        }
    }
    rc.flags = ffi::RC_ZERO_REORDER_DELAY.set(rc.flags, s.zerolatency as u32);
    // Regions of interest: any picture may bring a QP delta map, and the mode is set at
    // initialisation, so every session whose rate control has a QP to offset reads maps (as
    // OBS's NVENC encoder does); a picture without regions passes none (`qpDeltaMap` NULL).
    rc.qpMapMode = if super::roi::check(res.rc_mode, res.tuning).is_ok() {
        ffi::NV_ENC_QP_MAP_DELTA
    } else {
        ffi::NV_ENC_QP_MAP_DISABLED
    };
    if s.vbv_buffer_size > 0 {
        rc.vbvBufferSize = s.vbv_buffer_size.saturating_mul(1024);
    }
    if let Some((i, p, b)) = settings::qp_triplet(s.qp_min_i, s.qp_min_p, s.qp_min_b) {
        rc.flags = ffi::RC_ENABLE_MIN_QP.set(rc.flags, 1);
        rc.minQP = ffi::NV_ENC_QP {
            qpIntra: i,
            qpInterP: p,
            qpInterB: b,
        };
    }
    if let Some((i, p, b)) = settings::qp_triplet(s.qp_max_i, s.qp_max_p, s.qp_max_b) {
        rc.flags = ffi::RC_ENABLE_MAX_QP.set(rc.flags, 1);
        rc.maxQP = ffi::NV_ENC_QP {
            qpIntra: i,
            qpInterP: p,
            qpInterB: b,
        };
    }
}

/// The display aspect ratio of a `width` x `height` picture with pixel aspect ratio `par`
/// (0 terms read as 1), reduced: `gst_video_calculate_display_ratio` on a square-pixel display.
pub fn display_aspect_ratio(width: u32, height: u32, par: gst::Fraction) -> (u32, u32) {
    let par = gst::Fraction::new(par.numer().max(1), par.denom().max(1));
    gst_video::calculate_display_ratio(width, height, par, gst::Fraction::new(1, 1))
        .map(|d| (d.numer() as u32, d.denom() as u32))
        .unwrap_or_else(|| {
            let d = gst::Fraction::new(width.max(1) as i32, height.max(1) as i32);
            (d.numer() as u32, d.denom() as u32)
        })
}

/// The frame rate NVENC is told: the input's, or 25/1 where it has none.
pub fn frame_rate(info: &gst_video::VideoInfo) -> (u32, u32) {
    if info.fps().numer() > 0 {
        (info.fps().numer() as u32, info.fps().denom() as u32)
    } else {
        (25, 1)
    }
}

/// One frame's duration at [`frame_rate`].
pub fn frame_duration(info: &gst_video::VideoInfo) -> gst::ClockTime {
    let (n, d) = frame_rate(info);
    gst::ClockTime::SECOND
        .mul_div_floor(d as u64, n as u64)
        .unwrap_or(gst::ClockTime::ZERO)
}

/// The ring size: nvcodec's task pool, 4 + lookahead + B-frames + 1.
pub fn ring_size(lookahead: u32, frame_interval_p: i32) -> u32 {
    4 + lookahead + (frame_interval_p.max(1) as u32 - 1) + 1
}

/// The (minimum, maximum) latency of a session coding `info` (its frame duration): the
/// reordering delay (`dts_offset`) and the lookahead, at most the whole ring of `ring_size`.
pub fn latency(
    info: &gst_video::VideoInfo,
    dts_offset: gst::ClockTime,
    lookahead: u32,
    ring_size: u32,
) -> (gst::ClockTime, gst::ClockTime) {
    let frame_dur = frame_duration(info);
    (
        dts_offset + frame_dur * lookahead as u64,
        frame_dur * ring_size as u64,
    )
}

/// `NV_ENC_INITIALIZE_PARAMS` for a session coding `info` (its display size, aspect ratio and
/// frame rate) at `encode_size` from `buffer_format` input.
///
/// `max`: `maxEncodeWidth/Height` in pixels (at least the encode size), the largest size a
/// reconfiguration may change to.
pub fn initialize_params(
    codec: Codec,
    res: &Resolved,
    weighted_prediction: bool,
    info: &gst_video::VideoInfo,
    (ew, eh): (u32, u32),
    max: (u32, u32),
    buffer_format: u32,
) -> Box<ffi::NV_ENC_INITIALIZE_PARAMS> {
    let mut init: Box<ffi::NV_ENC_INITIALIZE_PARAMS> = ffi::boxed_zeroed();
    init.encodeGUID = codec.guid();
    init.presetGUID = res.preset_guid;
    init.tuningInfo = res.tuning;
    init.flags = ffi::INIT_ENABLE_WEIGHTED_PREDICTION.set(init.flags, weighted_prediction as u32);
    init.encodeWidth = ew;
    init.encodeHeight = eh;
    init.maxEncodeWidth = max.0.max(ew);
    init.maxEncodeHeight = max.1.max(eh);
    // Display aspect ratio of the shown picture.
    (init.darWidth, init.darHeight) = display_aspect_ratio(info.width(), info.height(), info.par());
    (init.frameRateNum, init.frameRateDen) = frame_rate(info);
    init.enablePTD = 1;
    init.enableEncodeAsync = 0;
    init.bufferFormat = buffer_format;
    init
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoder::settings::{RcMode, resolve};

    fn zeroed_config() -> ffi::NV_ENC_CONFIG {
        *ffi::boxed_zeroed::<ffi::NV_ENC_CONFIG>()
    }

    fn caps() -> GpuCaps {
        GpuCaps {
            gpu: "test".into(),
            width: (145, 8192),
            height: (49, 8192),
            input_formats: vec![ffi::NV_ENC_BUFFER_FORMAT_NV12],
            max_bframes: 4,
            lookahead: true,
            ..Default::default()
        }
    }

    #[test]
    fn bitrate_in_kbits_x1024() {
        let s = Settings {
            bitrate: 2000,
            max_bitrate: 4000,
            ..Default::default()
        };
        let mut rc = zeroed_config().rcParams;
        rc.averageBitRate = 7;
        apply_bitrates(&mut rc, &Settings::default());
        assert_eq!(rc.averageBitRate, 7, "0 keeps the preset's");
        apply_bitrates(&mut rc, &s);
        assert_eq!((rc.averageBitRate, rc.maxBitRate), (2_048_000, 4_096_000));
        let huge = Settings {
            bitrate: u32::MAX,
            ..Default::default()
        };
        apply_bitrates(&mut rc, &huge);
        assert_eq!(rc.averageBitRate, u32::MAX, "saturates");
    }

    #[test]
    fn start_and_live_change_map_the_bitrate_alike() {
        let s = Settings {
            bitrate: 1500,
            ..Default::default()
        };
        let res = resolve(&s, 1280, 720);
        let c = encode_config(&zeroed_config(), &s, &res, &caps(), Codec::Hevc, 0);
        let mut live = *c.cfg;
        live.rcParams.averageBitRate = 0;
        live_rate_update(&mut live, &s).unwrap();
        assert_eq!(live.rcParams.averageBitRate, c.cfg.rcParams.averageBitRate);
        assert_eq!(c.cfg.rcParams.averageBitRate, 1500 * 1024);
    }

    #[test]
    fn emphasis_map_where_the_gpu_has_it_h264_without_aq() {
        use crate::encoder::settings::RoiMode;
        let mode = |codec, emphasis_map, spatial_aq, roi_mode| {
            let s = Settings {
                rc_mode: RcMode::Vbr,
                spatial_aq,
                roi_mode,
                ..Default::default()
            };
            let res = resolve(&s, 1280, 720);
            let gpu = GpuCaps {
                emphasis_map,
                ..caps()
            };
            let c = encode_config(&zeroed_config(), &s, &res, &gpu, codec, 0);
            (c.cfg.rcParams.qpMapMode, c.warnings.len())
        };
        let (delta, emph) = (ffi::NV_ENC_QP_MAP_DELTA, ffi::NV_ENC_QP_MAP_EMPHASIS);
        assert_eq!(mode(Codec::H264, true, false, RoiMode::Auto), (emph, 0));
        assert_eq!(mode(Codec::H264, true, false, RoiMode::Emphasis), (emph, 0));
        assert_eq!(mode(Codec::H264, true, false, RoiMode::Delta), (delta, 0));
        // Without the cap, with AQ, or another codec: the delta map, a warning only where
        // emphasis was asked for.
        assert_eq!(mode(Codec::H264, false, false, RoiMode::Auto), (delta, 0));
        assert_eq!(mode(Codec::H264, true, true, RoiMode::Auto), (delta, 0));
        assert_eq!(mode(Codec::H264, true, true, RoiMode::Emphasis), (delta, 1));
        assert_eq!(mode(Codec::Hevc, true, false, RoiMode::Auto), (delta, 0));
        assert_eq!(mode(Codec::Av1, true, false, RoiMode::Emphasis), (delta, 1));
    }

    #[test]
    fn constqp_has_no_bitrate() {
        let s = Settings {
            rc_mode: RcMode::ConstQp,
            bitrate: 1500,
            qp_const_i: 20,
            ..Default::default()
        };
        let res = resolve(&s, 1280, 720);
        let mut c = encode_config(&zeroed_config(), &s, &res, &caps(), Codec::Av1, 0);
        assert_eq!(
            c.cfg.rcParams.rateControlMode,
            ffi::NV_ENC_PARAMS_RC_CONSTQP
        );
        assert_eq!(c.cfg.rcParams.averageBitRate, 0);
        assert_eq!(c.cfg.rcParams.constQP.qpIntra, 20);
        assert!(live_rate_update(&mut c.cfg, &s).is_err());
        assert_eq!(c.cfg.rcParams.averageBitRate, 0);
    }

    #[test]
    fn gop_and_bframes() {
        let res = resolve(&Settings::default(), 1280, 720);
        let gop = |gop_size, bframes| {
            let s = Settings {
                gop_size,
                ..Default::default()
            };
            let c = encode_config(&zeroed_config(), &s, &res, &caps(), Codec::Hevc, bframes);
            (c.gop, c.cfg.frameIntervalP)
        };
        assert_eq!(gop(-1, 2), (u32::MAX, 1));
        assert_eq!(gop(0, 2), (1, 1));
        assert_eq!(gop(30, 2), (30, 3));
    }

    #[test]
    fn refuses_what_the_gpu_lacks() {
        let s = Settings {
            rc_lookahead: 8,
            temporal_aq: true,
            weighted_pred: true,
            intra_refresh_period: 30,
            b_ref_mode: BRefMode::Each,
            ..Default::default()
        };
        let res = resolve(&s, 1280, 720);
        let mut gpu = caps();
        gpu.lookahead = false;
        let c = encode_config(&zeroed_config(), &s, &res, &gpu, Codec::Hevc, 2);
        let props: Vec<&str> = c
            .warnings
            .iter()
            .map(|(m, _)| m.split(' ').next().unwrap())
            .collect();
        assert_eq!(
            props,
            [
                "rc-lookahead",
                "temporal-aq",
                "weighted-pred",
                "intra-refresh-period",
                "b-ref-mode"
            ]
        );
        assert_eq!(c.lookahead, 0);
        assert!(!c.weighted_prediction);
        assert_eq!(c.settings.intra_refresh_period, 0);
        assert_eq!(c.settings.b_ref_mode, BRefMode::Disabled);
        gpu.lookahead = true;
        let c = encode_config(&zeroed_config(), &s, &res, &gpu, Codec::Hevc, 2);
        assert_eq!(c.lookahead, 8);
        assert_eq!(ring_size(c.lookahead, c.cfg.frameIntervalP), 4 + 8 + 2 + 1);
    }

    #[test]
    fn input_refusals() {
        let nv12 = crate::nvenc::formats::input_format(gst_video::VideoFormat::Nv12).unwrap();
        let p010 = crate::nvenc::formats::input_format(gst_video::VideoFormat::P01010le).unwrap();
        let c = caps();
        assert!(check_input(&c, Codec::Hevc, &nv12, "NV12", (1280, 720)).is_ok());
        assert!(
            check_input(&c, Codec::Hevc, &nv12, "NV12", (100, 720))
                .unwrap_err()
                .contains("145x49 to 8192x8192")
        );
        assert!(
            check_input(&c, Codec::Hevc, &p010, "P010", (1280, 720))
                .unwrap_err()
                .contains("takes no P010")
        );
    }

    #[test]
    fn ultra_high_quality_needs_the_api() {
        let s = Settings {
            tune: settings::Tune::UltraHighQuality,
            ..Default::default()
        };
        let mut res = resolve(&s, 1280, 720);
        assert_eq!(res.tuning, ffi::NV_ENC_TUNING_INFO_ULTRA_HIGH_QUALITY);
        assert!(check_tuning(&mut res, ApiVersion::V13_0, Codec::Av1).is_none());
        assert!(check_tuning(&mut res, ApiVersion::V12_1, Codec::Hevc).is_some());
        assert_eq!(res.tuning, ffi::NV_ENC_TUNING_INFO_HIGH_QUALITY);
    }

    #[test]
    fn lossless_falls_back_where_the_gpu_lacks_it() {
        use settings::Preset;
        let mut gpu = caps();
        for (preset, guid) in [
            (Preset::Lossless, ffi::NV_ENC_PRESET_P5_GUID),
            (Preset::LosslessHp, ffi::NV_ENC_PRESET_P3_GUID),
        ] {
            let s = Settings {
                preset,
                ..Default::default()
            };
            let mut res = resolve(&s, 1280, 720);
            assert_eq!(res.tuning, ffi::NV_ENC_TUNING_INFO_LOSSLESS);
            gpu.lossless = true;
            assert!(check_lossless(&mut res, &gpu, Codec::Hevc).is_none());
            assert_eq!(res.tuning, ffi::NV_ENC_TUNING_INFO_LOSSLESS);
            gpu.lossless = false;
            let (msg, debug) = check_lossless(&mut res, &gpu, Codec::Av1).unwrap();
            assert!(
                msg.contains("lossless") && msg.contains("high-quality"),
                "{msg}"
            );
            assert!(
                debug.contains("NV_ENC_CAPS_SUPPORT_LOSSLESS_ENCODE"),
                "{debug}"
            );
            assert_eq!(res.tuning, ffi::NV_ENC_TUNING_INFO_HIGH_QUALITY);
            assert_eq!(res.preset_guid, guid, "same P-preset");
            assert_eq!(
                res.rc_mode,
                ffi::NV_ENC_PARAMS_RC_CONSTQP,
                "same rate control"
            );
        }
        // tune=lossless on any preset, too; other tunings are left alone.
        let s = Settings {
            preset: Preset::P4,
            tune: settings::Tune::Lossless,
            ..Default::default()
        };
        let mut res = resolve(&s, 1280, 720);
        assert!(check_lossless(&mut res, &gpu, Codec::H264).is_some());
        assert_eq!(
            (res.preset_guid, res.tuning),
            (
                ffi::NV_ENC_PRESET_P4_GUID,
                ffi::NV_ENC_TUNING_INFO_HIGH_QUALITY
            )
        );
        let mut res = resolve(&Settings::default(), 1280, 720);
        let before = res;
        assert!(check_lossless(&mut res, &gpu, Codec::Av1).is_none());
        assert_eq!(res, before);
    }

    #[test]
    fn lossless_h264_is_high_444() {
        let s = Settings {
            preset: settings::Preset::Lossless,
            ..Default::default()
        };
        let res = resolve(&s, 1280, 720);
        let mut gpu = caps();
        gpu.lossless = true;
        let high = ffi::NV_ENC_H264_PROFILE_HIGH_GUID;
        assert_eq!(
            lossless_h264_profile(&res, &gpu, Codec::H264, high),
            Some(ffi::NV_ENC_CODEC_PROFILE_AUTOSELECT_GUID),
            "the GPU lists no HIGH_444: autoselect"
        );
        gpu.profile_guids = vec![high, ffi::NV_ENC_H264_PROFILE_HIGH_444_GUID];
        assert_eq!(
            lossless_h264_profile(&res, &gpu, Codec::H264, high),
            Some(ffi::NV_ENC_H264_PROFILE_HIGH_444_GUID)
        );
        assert_eq!(
            lossless_h264_profile(
                &res,
                &gpu,
                Codec::H264,
                ffi::NV_ENC_H264_PROFILE_HIGH_444_GUID
            ),
            None
        );
        assert_eq!(
            lossless_h264_profile(&res, &gpu, Codec::Hevc, ffi::NV_ENC_HEVC_PROFILE_MAIN_GUID),
            None
        );
        let hq = resolve(&Settings::default(), 1280, 720);
        assert_eq!(lossless_h264_profile(&hq, &gpu, Codec::H264, high), None);
    }

    #[test]
    fn display_aspect_ratio_as_the_gcd_gave_it() {
        assert_eq!(
            display_aspect_ratio(720, 405, gst::Fraction::new(1, 1)),
            (16, 9)
        );
        assert_eq!(
            display_aspect_ratio(720, 576, gst::Fraction::new(16, 15)),
            (4, 3)
        );
        assert_eq!(
            display_aspect_ratio(721, 405, gst::Fraction::new(0, 1)),
            (721, 405)
        );
        assert_eq!(
            display_aspect_ratio(1920, 1080, gst::Fraction::new(1, 1)),
            (16, 9)
        );
    }
}
