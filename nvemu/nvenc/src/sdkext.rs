//! Validation of the Video Codec SDK features beyond the basics that the emulator models but
//! does not reproduce in its software encoders: split-frame encoding (`splitEncodeMode`, SDK
//! 12.1+), the lookahead level (`rcParams.lookaheadLevel`, 12.2+), the temporal filter
//! (`tfLevel`: HEVC 12.2+, AV1 and H.264 13.0) and long-term references (`enableLTR`,
//! `ltrNumFrames`, `ltrTrustMode`; per picture `ltrMarkFrame`, `ltrUseFrames`, ...).
//!
//! The rules are the header's (`nvEncodeAPI.h` 12.1 .. 13.0) and the programming guide's; each
//! is marked where the real driver's answer (status, or whether it refuses at all rather than
//! ignoring) is unknown and the emulator chooses the *strict* one.

use crate::abi::{self, CodecKind, SdkIdx, View};
use crate::caps::{self, Gpu};
use crate::st;

/// What a session was initialised with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ext {
    /// `splitEncodeMode` (0 where the layout has none).
    pub split_mode: u32,
    /// `rcParams.lookaheadLevel` in effect (0 without lookahead or before 12.2).
    pub lookahead_level: u32,
    /// `tfLevel` (0 where the layout has none).
    pub tf_level: u32,
    /// `(ltrNumFrames, ltrTrustMode)` with `enableLTR = 1`.
    pub ltr: Option<(u32, bool)>,
    /// `NV_ENC_PIC_PARAMS.frameIdx` must count up from 0: "It is necessary to pass this as
    /// monotonically increasing starting 0 when lookaheadLevel, UHQ Tuning Info or encoding
    /// same frames multiple times without advancing encoder state feature are enabled".
    pub frame_idx_rule: bool,
}

/// What the validation needs from `build_encoder`.
pub struct Input<'a> {
    pub gpu: Gpu,
    pub sdk: SdkIdx,
    pub codec: CodecKind,
    pub init: &'a View,
    pub cfg: &'a View,
    /// `encodeCodecConfig.<codec>Config.`
    pub cc: &'a str,
    /// `frameIntervalP` as the client set it.
    pub fip_raw: i32,
    /// `frameIntervalP` in effect (1 with zero reorder delay or intra-only).
    pub fip: u32,
    pub zero_reorder: bool,
    pub tuning: u32,
}

/// Values of an enum (by prefix) in an SDK's header.
fn enum_values(sdk: SdkIdx, prefix: &str) -> Vec<u64> {
    abi::enums_with_prefix(sdk, prefix)
        .into_iter()
        .map(|(_, v)| v as u64)
        .collect()
}

/// Checks the INITIALIZE_PARAMS/CONFIG fields of these features. `Err((status, message))`
/// refuses the initialisation; `notes` get what the emulator accepts but does not reproduce.
pub fn validate(x: &Input, notes: &mut Vec<String>) -> Result<Ext, (i32, String)> {
    let mut ext = Ext::default();
    let codec_name = format!("{:?}", x.codec);

    // splitEncodeMode: the valid values are the header's NV_ENC_SPLIT_ENCODE_MODE of the
    // layout the client used (FOUR_FORCED only from 13.0). Another value: INVALID_PARAM
    // (*strict*, unknown on the real driver).
    if let Some(m) = x.init.try_get("splitEncodeMode") {
        let valid = enum_values(x.init.sdk, "NV_ENC_SPLIT_");
        if !valid.contains(&m) {
            return Err((
                st::INVALID_PARAM,
                format!(
                    "splitEncodeMode {m} is not an NV_ENC_SPLIT_ENCODE_MODE of API {} (valid: {valid:?})",
                    abi::SDK_NAMES[x.init.sdk]
                ),
            ));
        }
        ext.split_mode = m as u32;
        if x.codec == CodecKind::H264 && m != 0 && m != 15 {
            // "Split Encoding is not applicable to H264": ignored.
            notes.push(format!(
                "splitEncodeMode {m} ignored: split encoding is not applicable to H.264 (nvEncodeAPI.h)"
            ));
        } else if matches!(m, 1..=4) && x.gpu.nvenc_engines() < 2 {
            notes.push(format!(
                "splitEncodeMode {m} on a GPU with {} NVENC engine: 1-strip encode (nvEncodeAPI.h)",
                x.gpu.nvenc_engines()
            ));
        }
        // The header's exclusions (HEVC: weighted prediction, alpha layer, sub-frame mode,
        // output in video memory; AV1: output in video memory) cannot occur here: the emulator
        // refuses each of those features before this check.
    }

    // Lookahead level (12.2+ layouts).
    let lookahead = x.cfg.get("rcParams.enableLookahead") != 0;
    if let Some(l) = x.cfg.try_get("rcParams.lookaheadLevel") {
        let valid = enum_values(x.cfg.sdk, "NV_ENC_LOOKAHEAD_LEVEL_");
        if !valid.contains(&l) {
            return Err((
                st::INVALID_PARAM,
                format!("rcParams.lookaheadLevel {l} is not an NV_ENC_LOOKAHEAD_LEVEL"),
            ));
        }
        let max = caps::max_lookahead_level(x.gpu, x.codec) as u64;
        if l != 0 && !lookahead {
            // The programming guide enables it with enableLookahead = 1. *Strict*: the real
            // driver may ignore the level instead.
            return Err((
                st::INVALID_PARAM,
                format!("rcParams.lookaheadLevel {l} needs rcParams.enableLookahead = 1"),
            ));
        }
        if (l == 15 && max == 0) || (l != 15 && l > max) {
            return Err((
                st::UNSUPPORTED_PARAM,
                format!(
                    "rcParams.lookaheadLevel {l}: NV_ENC_CAPS_SUPPORT_LOOKAHEAD_LEVEL is {max} for {codec_name} on this GPU"
                ),
            ));
        }
        if lookahead {
            ext.lookahead_level = l as u32;
        }
        if l != 0 && lookahead {
            notes.push(format!(
                "lookahead level {l} accepted; the software encoder's lookahead does not change with it"
            ));
        }
    }

    // Temporal filter (HEVC 12.2+, AV1 and H.264 13.0 layouts).
    if let Some(tf) = x.cfg.try_get(&format!("{}tfLevel", x.cc)) {
        let valid = enum_values(x.cfg.sdk, "NV_ENC_TEMPORAL_FILTER_LEVEL_");
        if !valid.contains(&tf) {
            return Err((
                st::INVALID_PARAM,
                format!("tfLevel {tf} is not an NV_ENC_TEMPORAL_FILTER_LEVEL"),
            ));
        }
        if tf != 0 {
            if !caps::temporal_filter(x.gpu, x.codec) {
                return Err((
                    st::UNSUPPORTED_PARAM,
                    format!(
                        "tfLevel {tf}: NV_ENC_CAPS_SUPPORT_TEMPORAL_FILTER is 0 for {codec_name} on this GPU"
                    ),
                ));
            }
            // "Temporal filter feature is supported only if frameIntervalP >= 5" and "not
            // supported with ZeroReorderDelay" (nvEncodeAPI.h). *Strict*: refused, where the
            // driver might turn the filter off instead.
            if x.fip_raw < 5 {
                return Err((
                    st::INVALID_PARAM,
                    format!(
                        "tfLevel {tf} needs frameIntervalP >= 5 (nvEncodeAPI.h), got {}",
                        x.fip_raw
                    ),
                ));
            }
            if x.zero_reorder {
                return Err((
                    st::INVALID_PARAM,
                    format!("tfLevel {tf} is not supported with zeroReorderDelay (nvEncodeAPI.h)"),
                ));
            }
            ext.tf_level = tf as u32;
            notes.push(format!(
                "temporal filter level {tf} accepted; the software encoder does not filter"
            ));
        }
    }

    // Long-term references (HEVC, H.264 all layouts; AV1 13.0).
    if x.cfg.get(&format!("{}enableLTR", x.cc)) != 0 {
        let n = x.cfg.get(&format!("{}ltrNumFrames", x.cc)) as u32;
        let trust = x.cfg.try_get(&format!("{}ltrTrustMode", x.cc));
        let max = caps::max_ltr_frames(x.gpu, x.codec);
        if max == 0 {
            return Err((
                st::UNSUPPORTED_PARAM,
                format!(
                    "enableLTR: NV_ENC_CAPS_NUM_MAX_LTR_FRAMES is 0 for {codec_name} on this GPU"
                ),
            ));
        }
        // "LTRs are not supported if encoding session is configured with B-frames".
        // *Strict*: refused (the driver's answer is unknown).
        if x.fip > 1 {
            return Err((
                st::INVALID_PARAM,
                format!(
                    "enableLTR with frameIntervalP {}: LTRs are not supported with B-frames (nvEncodeAPI.h)",
                    x.fip
                ),
            ));
        }
        // *Strict*: 0 LTR frames, or more than the caps, is refused (the header calls the
        // number "guidance", so a driver might clamp).
        if n == 0 || n > max {
            return Err((
                st::INVALID_PARAM,
                format!("ltrNumFrames {n} outside 1..={max} (NV_ENC_CAPS_NUM_MAX_LTR_FRAMES)"),
            ));
        }
        if let Some(t) = trust
            && t > 1
        {
            return Err((
                st::INVALID_PARAM,
                format!("ltrTrustMode {t} is neither 0 nor 1"),
            ));
        }
        ext.ltr = Some((n, trust == Some(1)));
        notes.push(format!(
            "{n} long-term reference frames accepted ({} mode); the software encoder codes no long-term references (LockBitstream reports the marks)",
            if trust == Some(1) {
                "trust"
            } else {
                "per-picture"
            }
        ));
    }
    ext.frame_idx_rule = (ext.lookahead_level != 0) || x.tuning == 5;
    Ok(ext)
}

/// Per-picture LTR controls of one `NV_ENC_PIC_PARAMS` (`codecPicParams.<codec>PicParams.`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PicLtr {
    pub mark: Option<u32>,
    pub use_bitmap: Option<u32>,
}

/// Checks the per-picture LTR fields of an EncodePicture against the session. `Err` is a
/// contract violation (INVALID_PARAM, *strict*: the driver's answer is unknown); `notes` get
/// what is accepted but not reproduced.
pub fn check_pic_ltr(
    ext: &Ext,
    codec: CodecKind,
    pic: &View,
    marked: u32,
    notes: &mut Vec<String>,
) -> Result<PicLtr, String> {
    let p = match codec {
        CodecKind::H264 => "codecPicParams.h264PicParams.",
        CodecKind::Hevc => "codecPicParams.hevcPicParams.",
        CodecKind::Av1 => "codecPicParams.av1PicParams.",
    };
    let g = |f: &str| pic.get(&format!("{p}{f}"));
    let (mark, use_) = (g("ltrMarkFrame") != 0, g("ltrUseFrames") != 0);
    if g("ltrUsageMode") != 0 {
        return Err("ltrUsageMode must be 0 (\"Not supported. Reserved for future use\")".into());
    }
    if !mark && !use_ {
        return Ok(PicLtr::default());
    }
    let n = match ext.ltr {
        Some((n, false)) => n,
        Some((_, true)) => {
            return Err(
                "ltrMarkFrame/ltrUseFrames in LTR trust mode (per-picture control needs ltrTrustMode = 0)"
                    .into(),
            );
        }
        None => {
            return Err(
                "ltrMarkFrame/ltrUseFrames without enableLTR in the session's configuration".into(),
            );
        }
    };
    let mut out = PicLtr::default();
    if mark {
        let i = g("ltrMarkFrameIdx") as u32;
        if i >= n {
            return Err(format!("ltrMarkFrameIdx {i} outside 0..{n} (ltrNumFrames)"));
        }
        out.mark = Some(i);
    }
    if use_ {
        let b = g("ltrUseFrameBitmap") as u32;
        if b == 0 || b.checked_shr(n).unwrap_or(0) != 0 {
            return Err(format!(
                "ltrUseFrameBitmap {b:#x}: not a non-empty set of indices below ltrNumFrames {n}"
            ));
        }
        if b & !marked != 0 {
            // Unknown on the real driver (a reference that does not exist): noted, not refused.
            notes.push(format!(
                "ltrUseFrameBitmap {b:#x} names long-term references not marked since the last IDR (marked: {marked:#x})"
            ));
        }
        out.use_bitmap = Some(b);
    }
    Ok(out)
}
