// SPDX-License-Identifier: MPL-2.0
//! Features of the Video Codec SDK beyond nvcodec: split-frame encoding over several NVENC
//! engines, the lookahead level, the temporal filter and long-term references (LTR).
//!
//! [`plan`] decides, from the settings, the negotiated API, the GPU's capabilities and the rest
//! of the session's configuration, which fields to write and which requests to refuse (each
//! refusal becomes a warning on the bus); [`apply`] writes them. A field absent from the
//! negotiated API's layout is never written. The rules are the header's (`nvEncodeAPI.h`, SDK
//! 12.1 to 13.0):
//! - `splitEncodeMode` (12.1+): "Split Encoding is not applicable to H264"; "Not supported if any
//!   of the following features: weighted prediction, alpha layer encoding, subframe mode, output
//!   into video memory buffer ... are enabled in case of HEVC"; `NV_ENC_SPLIT_FOUR_FORCED_MODE`
//!   exists from 13.0; the programming guide: the forced modes need more than one NVENC
//!   (`NV_ENC_CAPS_NUM_ENCODER_ENGINES`), else "1-strip encode".
//! - `lookaheadLevel` (12.2+, `NV_ENC_RC_PARAMS`): the programming guide enables it with
//!   `enableLookahead = 1`; `NV_ENC_CAPS_SUPPORT_LOOKAHEAD_LEVEL` is the "Maximum Lookahead level
//!   supported".
//! - `tfLevel` (H.265 12.2+, AV1 and H.264 13.0): "Temporal filter feature is supported only if
//!   frameIntervalP >= 5"; "not supported with ZeroReorderDelay"; cap
//!   `NV_ENC_CAPS_SUPPORT_TEMPORAL_FILTER`.
//! - `enableLTR`/`ltrNumFrames`/`ltrTrustMode` (H.264 and H.265 12.1+; AV1 13.0, without trust
//!   mode): "LTRs are not supported if encoding session is configured with B-frames"; cap
//!   `NV_ENC_CAPS_NUM_MAX_LTR_FRAMES`.

use gst::glib;

use super::settings::{LookaheadLevel, Settings, SplitEncodeMode, TemporalFilterLevel};
use crate::nvenc::api::{ApiVersion, Codec};
use crate::nvenc::ffi;

/// The GPU's answers that the plan depends on (`nvEncGetEncodeCaps` for the session's codec).
/// Capabilities the negotiated API does not define are 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caps {
    /// `NV_ENC_CAPS_NUM_ENCODER_ENGINES`.
    pub engines: i32,
    /// `NV_ENC_CAPS_NUM_MAX_LTR_FRAMES`.
    pub max_ltr_frames: i32,
    /// `NV_ENC_CAPS_SUPPORT_TEMPORAL_FILTER` (12.2+).
    pub temporal_filter: i32,
    /// `NV_ENC_CAPS_SUPPORT_LOOKAHEAD_LEVEL` (12.2+): the highest level.
    pub lookahead_level: i32,
}

/// The rest of the session's configuration the rules depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    pub codec: Codec,
    pub api: ApiVersion,
    /// `NV_ENC_CONFIG.frameIntervalP` as the plugin sets it (B-frames + 1).
    pub frame_interval_p: i32,
    /// `rcParams.enableLookahead` as configured.
    pub lookahead: bool,
    /// `rcParams.zeroReorderDelay`.
    pub zero_reorder_delay: bool,
    /// `enableWeightedPrediction`.
    pub weighted_prediction: bool,
    /// The preset's `tfLevel` (0 where the API has no such field for the codec).
    pub preset_tf_level: u32,
}

/// A request the session cannot honour: posted as a warning, the field left alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What the user asked, e.g. `temporal-filter-level=level-4`.
    pub asked: String,
    /// Why it cannot be done, and what happens instead.
    pub why: String,
}

/// What to write into the session's structs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// `NV_ENC_INITIALIZE_PARAMS.splitEncodeMode`.
    pub split_encode_mode: Option<u32>,
    /// `NV_ENC_RC_PARAMS.lookaheadLevel`.
    pub lookahead_level: Option<u32>,
    /// The codec config's `tfLevel`.
    pub tf_level: Option<u32>,
    /// `(ltrNumFrames, ltrTrustMode)` with `enableLTR = 1`.
    pub ltr: Option<(u32, bool)>,
    /// Requests refused (warnings).
    pub refused: Vec<Refusal>,
    /// Adjustments the user did not ask for (logged at info level).
    pub notes: Vec<String>,
}

/// Whether the negotiated API's codec config has `tfLevel`.
pub fn has_tf_level(api: ApiVersion, codec: Codec) -> bool {
    match codec {
        Codec::Hevc => api >= ApiVersion::V12_2,
        Codec::Av1 | Codec::H264 => api >= ApiVersion::V13_0,
    }
}

/// Whether the negotiated API's codec config has `enableLTR` and `ltrNumFrames`.
pub fn has_ltr(api: ApiVersion, codec: Codec) -> bool {
    match codec {
        Codec::Hevc | Codec::H264 => true,
        Codec::Av1 => api >= ApiVersion::V13_0,
    }
}

/// Whether the codec has "LTR Trust" mode (`ltrTrustMode`; AV1 has per-picture mode only).
pub fn has_ltr_trust_mode(codec: Codec) -> bool {
    codec != Codec::Av1
}

/// Whether `NV_ENC_RC_PARAMS.lookaheadLevel` exists in the negotiated API.
pub fn has_lookahead_level(api: ApiVersion) -> bool {
    api >= ApiVersion::V12_2
}

/// Nick of an enum value, for messages.
fn nick<E: glib::value::ToValue + Copy>(v: E) -> String {
    glib::EnumValue::from_value(&v.to_value())
        .map(|(_, e)| e.nick().to_string())
        .unwrap_or_default()
}

/// Decides what to write and what to refuse; see the module's rules.
pub fn plan(s: &Settings, x: &Session, caps: &Caps) -> Plan {
    let mut p = Plan::default();
    plan_split(&mut p, s, x, caps);
    plan_lookahead_level(&mut p, s, x, caps);
    plan_temporal_filter(&mut p, s, x, caps);
    plan_ltr(&mut p, s, x, caps);
    p
}

fn refuse(p: &mut Plan, asked: String, why: String) {
    p.refused.push(Refusal { asked, why });
}

/// Split-frame encoding (`splitEncodeMode`).
fn plan_split(p: &mut Plan, s: &Settings, x: &Session, caps: &Caps) {
    let (api, codec) = (x.api.name(), x.codec);
    let split = s.split_encode_mode;
    let asked = format!("split-encode-mode={}", nick(split));
    match split {
        SplitEncodeMode::Auto => {}
        _ if codec == Codec::H264 => refuse(
            p,
            asked,
            "split-frame encoding is not applicable to H.264 (nvEncodeAPI.h)".into(),
        ),
        SplitEncodeMode::Disabled => p.split_encode_mode = Some(ffi::NV_ENC_SPLIT_DISABLE_MODE),
        SplitEncodeMode::Four if x.api < ApiVersion::V13_0 => refuse(
            p,
            asked,
            format!(
                "NV_ENC_SPLIT_FOUR_FORCED_MODE needs NVENC API 13.0 (this is {api}); the driver decides (auto)"
            ),
        ),
        _ if caps.engines < 2 => refuse(
            p,
            asked,
            format!(
                "forced split-frame encoding needs at least 2 NVENC engines, this GPU has {} (NV_ENC_CAPS_NUM_ENCODER_ENGINES); encoded on one",
                caps.engines
            ),
        ),
        _ if codec == Codec::Hevc && x.weighted_prediction => refuse(
            p,
            asked,
            "H.265 split-frame encoding is not supported with weighted prediction (nvEncodeAPI.h); weighted-pred kept, the driver decides (auto)".into(),
        ),
        forced => {
            let strips = forced as i32;
            if (2..=4).contains(&strips) && strips > caps.engines {
                p.notes.push(format!(
                    "split-encode-mode={}: {} strips asked, the GPU has {} NVENC engines, so NVENC codes {} strips",
                    nick(forced),
                    strips,
                    caps.engines,
                    caps.engines
                ));
            }
            p.split_encode_mode = Some(forced as u32);
        }
    }
}

/// Lookahead level (`rcParams.lookaheadLevel`).
fn plan_lookahead_level(p: &mut Plan, s: &Settings, x: &Session, caps: &Caps) {
    let (api, codec) = (x.api.name(), x.codec);
    let level = s.lookahead_level;
    let asked = format!("lookahead-level={}", nick(level));
    match level {
        LookaheadLevel::Default => {}
        _ if !has_lookahead_level(x.api) => refuse(
            p,
            asked,
            format!(
                "rcParams.lookaheadLevel needs NVENC API 12.2; the driver speaks {api}, which has no such field: ignored"
            ),
        ),
        _ if !x.lookahead => refuse(
            p,
            asked,
            "the lookahead level needs lookahead (rc-lookahead > 0, rcParams.enableLookahead): ignored".into(),
        ),
        LookaheadLevel::Auto if caps.lookahead_level < 1 => refuse(
            p,
            asked,
            format!(
                "this GPU's NVENC has no lookahead levels for {codec} (NV_ENC_CAPS_SUPPORT_LOOKAHEAD_LEVEL is 0): ignored"
            ),
        ),
        l if l != LookaheadLevel::Auto && l as i32 > caps.lookahead_level => refuse(
            p,
            asked,
            format!(
                "this GPU's NVENC supports lookahead levels up to {} for {codec} (NV_ENC_CAPS_SUPPORT_LOOKAHEAD_LEVEL): ignored",
                caps.lookahead_level.max(0)
            ),
        ),
        l => p.lookahead_level = Some(l as u32),
    }
}

/// Temporal filter (`tfLevel`).
fn plan_temporal_filter(p: &mut Plan, s: &Settings, x: &Session, caps: &Caps) {
    let (api, codec) = (x.api.name(), x.codec);
    // What prevents it, if anything.
    let tf_field = has_tf_level(x.api, codec);
    let tf_obstacle = if caps.temporal_filter == 0 {
        Some(format!(
            "this GPU's NVENC has no temporal filter for {codec} (NV_ENC_CAPS_SUPPORT_TEMPORAL_FILTER is 0)"
        ))
    } else if x.frame_interval_p < 5 {
        Some(format!(
            "the temporal filter needs frameIntervalP >= 5 (nvEncodeAPI.h), i.e. bframes >= 4 and gop-size != -1; this session has frameIntervalP {}",
            x.frame_interval_p
        ))
    } else if x.zero_reorder_delay {
        Some("the temporal filter is not supported with zero reorder delay (zerolatency, nvEncodeAPI.h)".into())
    } else {
        None
    };
    let tf = s.temporal_filter_level;
    let asked = format!("temporal-filter-level={}", nick(tf));
    match tf {
        TemporalFilterLevel::Default => {
            if tf_field
                && x.preset_tf_level != 0
                && let Some(why) = tf_obstacle
            {
                p.notes.push(format!(
                    "the preset's temporal filter (tfLevel {}) is turned off: {why}",
                    x.preset_tf_level
                ));
                p.tf_level = Some(ffi::NV_ENC_TEMPORAL_FILTER_LEVEL_0);
            }
        }
        TemporalFilterLevel::Disabled => {
            if tf_field {
                p.tf_level = Some(ffi::NV_ENC_TEMPORAL_FILTER_LEVEL_0);
            }
        }
        TemporalFilterLevel::Level4 if !tf_field => refuse(
            p,
            asked,
            format!(
                "tfLevel needs NVENC API {} for {codec}; the driver speaks {api}, which has no such field: ignored",
                if codec == Codec::Hevc { "12.2" } else { "13.0" }
            ),
        ),
        TemporalFilterLevel::Level4 => match tf_obstacle {
            Some(why) => {
                refuse(p, asked, format!("{why}: ignored"));
                // The preset may have turned it on: a configuration NVENC refuses.
                if x.preset_tf_level != 0 {
                    p.tf_level = Some(ffi::NV_ENC_TEMPORAL_FILTER_LEVEL_0);
                }
            }
            None => p.tf_level = Some(ffi::NV_ENC_TEMPORAL_FILTER_LEVEL_4),
        },
    }
}

/// Long-term references (`enableLTR`, `ltrNumFrames`, `ltrTrustMode`).
fn plan_ltr(p: &mut Plan, s: &Settings, x: &Session, caps: &Caps) {
    let (api, codec) = (x.api.name(), x.codec);
    let n = s.ltr_frames;
    let asked = format!("ltr-frames={n}");
    if n == 0 {
        if s.ltr_trust_mode {
            refuse(
                p,
                "ltr-trust-mode=true".into(),
                "LTR trust mode needs ltr-frames > 0: ignored".into(),
            );
        }
    } else if !has_ltr(x.api, codec) {
        refuse(
            p,
            asked,
            format!(
                "AV1 long-term references (enableLTR, ltrNumFrames) need NVENC API 13.0; the driver speaks {api}, which has no such fields: ignored"
            ),
        );
    } else if x.frame_interval_p > 1 {
        refuse(
            p,
            asked,
            format!(
                "long-term references are not supported with B-frames (nvEncodeAPI.h); this session has frameIntervalP {}: ignored",
                x.frame_interval_p
            ),
        );
    } else if caps.max_ltr_frames < 1 {
        refuse(
            p,
            asked,
            format!(
                "this GPU's NVENC has no long-term references for {codec} (NV_ENC_CAPS_NUM_MAX_LTR_FRAMES is 0): ignored"
            ),
        );
    } else {
        let max = caps.max_ltr_frames as u32;
        let frames = if n > max {
            refuse(
                p,
                asked,
                format!(
                    "this GPU's NVENC keeps at most {max} long-term references for {codec} (NV_ENC_CAPS_NUM_MAX_LTR_FRAMES): using {max}"
                ),
            );
            max
        } else {
            n
        };
        let trust = if s.ltr_trust_mode && !has_ltr_trust_mode(codec) {
            refuse(
                p,
                "ltr-trust-mode=true".into(),
                "AV1 has no LTR trust mode (per-picture mode only): ignored".into(),
            );
            false
        } else {
            s.ltr_trust_mode
        };
        p.ltr = Some((frames, trust));
    }
}

/// Writes a plan into the session's structs, only into fields of the negotiated API's layout
/// for the codec (the plan never holds others; checked again here).
pub fn apply(
    p: &Plan,
    api: ApiVersion,
    codec: Codec,
    init: &mut ffi::NV_ENC_INITIALIZE_PARAMS,
    cfg: &mut ffi::NV_ENC_CONFIG,
) {
    if let Some(m) = p.split_encode_mode
        && codec != Codec::H264
    {
        init.flags = ffi::INIT_SPLIT_ENCODE_MODE.set(init.flags, m);
    }
    if let Some(l) = p.lookahead_level
        && has_lookahead_level(api)
    {
        cfg.rcParams.lookaheadLevel = l;
    }
    let tf = p.tf_level.filter(|_| has_tf_level(api, codec));
    let ltr = p.ltr.filter(|_| has_ltr(api, codec));
    match codec {
        Codec::Hevc => {
            // The member of the session's codec (the config came from its preset).
            let h = cfg.encodeCodecConfig.hevc_mut();
            if let Some(t) = tf {
                h.tfLevel = t;
            }
            if let Some((n, trust)) = ltr {
                h.flags = ffi::HEVC_ENABLE_LTR.set(h.flags, 1);
                h.ltrNumFrames = n;
                h.ltrTrustMode = trust as u32;
            }
        }
        Codec::Av1 => {
            // The member of the session's codec (the config came from its preset).
            let a = cfg.encodeCodecConfig.av1_mut();
            if let Some(t) = tf {
                a.tfLevel = t;
            }
            if let Some((n, _)) = ltr {
                a.flags = ffi::AV1_ENABLE_LTR.set(a.flags, 1);
                a.ltrNumFrames = n;
            }
        }
        Codec::H264 => {
            // The member of the session's codec (the config came from its preset).
            let h = cfg.encodeCodecConfig.h264_mut();
            if let Some(t) = tf {
                h.tfLevel = t;
            }
            if let Some((n, trust)) = ltr {
                h.flags = ffi::H264_ENABLE_LTR.set(h.flags, 1);
                h.ltrNumFrames = n;
                h.ltrTrustMode = trust as u32;
            }
        }
    }
}

/// The preset's `tfLevel`, where the API's layout has it for the codec, else 0.
pub fn preset_tf_level(api: ApiVersion, codec: Codec, cfg: &ffi::NV_ENC_CONFIG) -> u32 {
    if !has_tf_level(api, codec) {
        return 0;
    }
    // The member of `codec` (the config came from its preset).
    match codec {
        Codec::Hevc => cfg.encodeCodecConfig.hevc().tfLevel,
        Codec::Av1 => cfg.encodeCodecConfig.av1().tfLevel,
        Codec::H264 => cfg.encodeCodecConfig.h264().tfLevel,
    }
}

/// Where the codec's picture parameters keep the per-picture LTR controls, if the API has them.
pub fn pic_ltr_layout(api: ApiVersion, codec: Codec) -> Option<ffi::PicLtrLayout> {
    match codec {
        Codec::Hevc => Some(ffi::HEVC_PIC_LTR),
        Codec::H264 => Some(ffi::H264_PIC_LTR),
        Codec::Av1 => (api >= ApiVersion::V13_0).then_some(ffi::AV1_PIC_LTR),
    }
}

/// A per-picture LTR request (the `rsnvenc-ltr` event): mark this picture as long-term
/// reference `mark`, and/or predict it only from the long-term references in `use_bitmap`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LtrRequest {
    pub mark: Option<u32>,
    pub use_bitmap: u32,
}

/// Writes an LTR request into `pic.codecPicParams` (per-picture mode).
pub fn apply_pic_ltr(layout: &ffi::PicLtrLayout, pic: &mut ffi::NV_ENC_PIC_PARAMS, r: LtrRequest) {
    let words = pic.codecPicParams.words_mut();
    let mut put = |off: usize, f: &dyn Fn(u32) -> u32| {
        let (i, half) = (off / 8, (off % 8) / 4);
        let w = words[i];
        let v = ((w >> (32 * half)) & 0xffff_ffff) as u32;
        let nv = f(v) as u64;
        words[i] = (w & !(0xffff_ffffu64 << (32 * half))) | (nv << (32 * half));
    };
    if let Some(idx) = r.mark {
        put(layout.mark_frame.word_offset, &|w| {
            layout.mark_frame.set(w, 1)
        });
        put(layout.mark_frame_idx, &|_| idx);
    }
    if r.use_bitmap != 0 {
        put(layout.use_frames.word_offset, &|w| {
            layout.use_frames.set(w, 1)
        });
        put(layout.use_frame_bitmap, &|_| r.use_bitmap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(codec: Codec, api: ApiVersion, fip: i32) -> Session {
        Session {
            codec,
            api,
            frame_interval_p: fip,
            lookahead: true,
            zero_reorder_delay: false,
            weighted_prediction: false,
            preset_tf_level: 0,
        }
    }

    const ADA: Caps = Caps {
        engines: 2,
        max_ltr_frames: 7,
        temporal_filter: 1,
        lookahead_level: 3,
    };

    #[test]
    fn everything_on_api_13_0() {
        gst::init().unwrap();
        let s = Settings {
            split_encode_mode: SplitEncodeMode::Two,
            lookahead_level: LookaheadLevel::Level2,
            temporal_filter_level: TemporalFilterLevel::Level4,
            ..Default::default()
        };
        let p = plan(&s, &session(Codec::Hevc, ApiVersion::V13_0, 5), &ADA);
        assert_eq!(p.split_encode_mode, Some(2));
        assert_eq!(p.lookahead_level, Some(2));
        assert_eq!(p.tf_level, Some(4));
        assert!(p.refused.is_empty(), "{:?}", p.refused);
    }

    #[test]
    fn api_12_1_refuses_the_12_2_fields() {
        gst::init().unwrap();
        let s = Settings {
            lookahead_level: LookaheadLevel::Level1,
            temporal_filter_level: TemporalFilterLevel::Level4,
            ..Default::default()
        };
        let p = plan(&s, &session(Codec::Hevc, ApiVersion::V12_1, 5), &ADA);
        assert_eq!((p.lookahead_level, p.tf_level), (None, None));
        assert_eq!(p.refused.len(), 2, "{:?}", p.refused);
        assert!(p.refused[0].why.contains("12.2"));
        // AV1 has tfLevel only from 13.0.
        let p = plan(&s, &session(Codec::Av1, ApiVersion::V12_2, 5), &ADA);
        assert_eq!(p.lookahead_level, Some(1));
        assert_eq!(p.tf_level, None);
        assert!(p.refused[0].why.contains("13.0"), "{:?}", p.refused);
    }

    #[test]
    fn header_constraints() {
        gst::init().unwrap();
        // Temporal filter: frameIntervalP >= 5, no zero reorder delay, the cap.
        let s = Settings {
            temporal_filter_level: TemporalFilterLevel::Level4,
            ..Default::default()
        };
        let p = plan(&s, &session(Codec::Hevc, ApiVersion::V13_0, 3), &ADA);
        assert_eq!(p.tf_level, None);
        assert!(p.refused[0].why.contains("frameIntervalP >= 5"));
        let mut x = session(Codec::Hevc, ApiVersion::V13_0, 5);
        x.zero_reorder_delay = true;
        assert_eq!(plan(&s, &x, &ADA).tf_level, None);
        let no_tf = Caps {
            temporal_filter: 0,
            ..ADA
        };
        assert_eq!(
            plan(&s, &session(Codec::Hevc, ApiVersion::V13_0, 5), &no_tf).tf_level,
            None
        );
        // The preset's filter is turned off where the session cannot have it.
        let mut x = session(Codec::Hevc, ApiVersion::V12_2, 1);
        x.preset_tf_level = 4;
        let p = plan(&Settings::default(), &x, &ADA);
        assert_eq!(p.tf_level, Some(0));
        assert!(p.refused.is_empty() && p.notes.len() == 1);
        // Lookahead level: lookahead on, at most the cap.
        let s = Settings {
            lookahead_level: LookaheadLevel::Level3,
            ..Default::default()
        };
        let mut x = session(Codec::Av1, ApiVersion::V13_0, 1);
        x.lookahead = false;
        assert_eq!(plan(&s, &x, &ADA).lookahead_level, None);
        let low = Caps {
            lookahead_level: 1,
            ..ADA
        };
        assert_eq!(
            plan(&s, &session(Codec::Av1, ApiVersion::V13_0, 1), &low).lookahead_level,
            None
        );
        // Split: two engines, not H.264, not with weighted prediction (H.265).
        let s = Settings {
            split_encode_mode: SplitEncodeMode::AutoForced,
            ..Default::default()
        };
        let one = Caps { engines: 1, ..ADA };
        assert_eq!(
            plan(&s, &session(Codec::Hevc, ApiVersion::V12_1, 1), &one).split_encode_mode,
            None
        );
        let mut x = session(Codec::Hevc, ApiVersion::V12_1, 1);
        x.weighted_prediction = true;
        assert_eq!(plan(&s, &x, &ADA).split_encode_mode, None);
        x.codec = Codec::Av1;
        assert_eq!(plan(&s, &x, &ADA).split_encode_mode, Some(1));
        let four = Settings {
            split_encode_mode: SplitEncodeMode::Four,
            ..Default::default()
        };
        assert_eq!(
            plan(&four, &session(Codec::Av1, ApiVersion::V12_2, 1), &ADA).split_encode_mode,
            None
        );
        let p = plan(&four, &session(Codec::Av1, ApiVersion::V13_0, 1), &ADA);
        assert_eq!(p.split_encode_mode, Some(4));
        assert_eq!(p.notes.len(), 1, "4 strips on 2 engines: {:?}", p.notes);
        // LTR: no B-frames, at most the cap, AV1 from 13.0 without trust mode.
        let s = Settings {
            ltr_frames: 9,
            ltr_trust_mode: true,
            ..Default::default()
        };
        assert_eq!(
            plan(&s, &session(Codec::Hevc, ApiVersion::V12_1, 3), &ADA).ltr,
            None
        );
        assert_eq!(
            plan(&s, &session(Codec::Hevc, ApiVersion::V12_1, 1), &ADA).ltr,
            Some((7, true))
        );
        assert_eq!(
            plan(&s, &session(Codec::Av1, ApiVersion::V12_2, 1), &ADA).ltr,
            None
        );
        assert_eq!(
            plan(&s, &session(Codec::Av1, ApiVersion::V13_0, 1), &ADA).ltr,
            Some((7, false))
        );
    }

    #[test]
    fn pic_ltr_lands_at_the_header_offsets() {
        let mut pic: Box<ffi::NV_ENC_PIC_PARAMS> = ffi::boxed_zeroed();
        apply_pic_ltr(
            &ffi::HEVC_PIC_LTR,
            &mut pic,
            LtrRequest {
                mark: Some(3),
                use_bitmap: 0b101,
            },
        );
        let bytes: Vec<u8> = pic
            .codecPicParams
            .words_mut()
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        let word = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap());
        assert_eq!(
            word(0x10),
            0b1100,
            "ltrMarkFrame (bit 2), ltrUseFrames (bit 3)"
        );
        assert_eq!(word(0x2c), 3, "ltrMarkFrameIdx");
        assert_eq!(word(0x30), 0b101, "ltrUseFrameBitmap");
    }

    /// SEI payloads attached after the LTR request (as `picture_params` does) keep it.
    #[test]
    fn payloads_keep_pic_ltr() {
        let mut pic: Box<ffi::NV_ENC_PIC_PARAMS> = ffi::boxed_zeroed();
        let r = LtrRequest {
            mark: Some(3),
            use_bitmap: 0b101,
        };
        apply_pic_ltr(&ffi::HEVC_PIC_LTR, &mut pic, r);
        let before = pic.codecPicParams.words_mut().to_vec();
        let mut p = crate::encoder::metadata::PicPayloads::default();
        p.push(5, vec![1; 20]);
        p.attach(&mut pic, Codec::Hevc);
        let after = pic.codecPicParams.words_mut().to_vec();
        // Only seiPayloadArrayCnt (0x38) and seiPayloadArray (0x40) changed.
        let changed: Vec<usize> = (0..before.len())
            .filter(|&i| before[i] != after[i])
            .collect();
        assert_eq!(changed, [0x38 / 8, 0x40 / 8]);
        assert_eq!(
            after[0x10 / 8],
            before[0x10 / 8],
            "ltrMarkFrame/ltrUseFrames"
        );
        assert_eq!(after[0x28 / 8], before[0x28 / 8], "ltrMarkFrameIdx");
        assert_eq!(after[0x30 / 8], before[0x30 / 8], "ltrUseFrameBitmap");
    }
}
