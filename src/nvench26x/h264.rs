// SPDX-License-Identifier: MPL-2.0
//! `rsnvench264enc`: H.264 encoding with NVENC, on the same base as H.265.
//!
//! Output: `video/x-h264, alignment=au` in `byte-stream`, `avc` or `avc3` (whichever downstream
//! lists first; byte-stream first in the template, as nvcodec 1.26+), with an `avcC`
//! `codec_data` (ISO/IEC 14496-15) for the length-prefixed formats, so
//! `rsnvench264enc ! mp4mux` works with or without `h264parse`:
//! - `avc`: parameter sets in `codec_data` only (NVENC told `disableSPSPPS`, and any that still
//!   come out, e.g. with a forced IDR, are dropped from the samples);
//! - `avc3`: parameter sets in band on every IDR (`repeatSPSPPS`), `codec_data` without them,
//!   as `h264parse` writes it.
//!
//! Profile: from the input format and what downstream's caps accept (nvcodec's rules): Y444 ->
//! High 4:4:4 Predictive (`chromaFormatIDC` 3), P010/RGB10A2 -> High 10 (SDK 13.0, where the GPU
//! lists it), else the first of High, Main, (constrained-)Baseline that downstream accepts and
//! the GPU lists; B-frames only where the profile has them (Baseline drops them with a
//! warning). nvcodec picks the alphabetically first downstream name (Baseline when nothing is
//! asked for and no B-frames); this picks High, the best compression every current decoder
//! takes. Odd sizes are coded with one repeated row/column and cropped (2-pixel crop units in
//! 4:2:0).

use std::sync::LazyLock;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::{avcc, nal};
use crate::encoder::settings::{self, Settings};
use crate::encoder::{self, CodecOps, NvEncoderImpl, NvEncoderObj, SessionParams, StreamFormat};
use crate::nvenc::api::Codec;
use crate::nvenc::ffi;

struct H264Ops;

static OPS: H264Ops = H264Ops;

/// Input formats: NV12 and NVENC's own conversions (VUYA, packed RGB) to 4:2:0, Y444 for High
/// 4:4:4, and the 10-bit ones for High 10 (only where the GPU reports 10-bit H.264 and lists the
/// High 10 profile: SDK 13.0 on Blackwell; none of the emulated GPUs, so the probed caps leave
/// them out there).
const SINK_FORMATS: &[gst_video::VideoFormat] = &[
    gst_video::VideoFormat::Nv12,
    gst_video::VideoFormat::I420,
    gst_video::VideoFormat::Yv12,
    gst_video::VideoFormat::Y444,
    gst_video::VideoFormat::Vuya,
    gst_video::VideoFormat::Rgba,
    gst_video::VideoFormat::Rgbx,
    gst_video::VideoFormat::Bgra,
    gst_video::VideoFormat::Bgrx,
    gst_video::VideoFormat::P01010le,
    gst_video::VideoFormat::Rgb10a2Le,
];

/// Caps `profile` names of the src template, nvcodec's (main, high, constrained-baseline,
/// baseline, high-4:4:4) plus high-10.
const PROFILES: [&str; 6] = [
    "high",
    "main",
    "constrained-baseline",
    "baseline",
    "high-4:4:4",
    "high-10",
];

/// The formats of `format`'s kind: (4:4:4, 10-bit).
fn kind(format: gst_video::VideoFormat) -> (bool, bool) {
    use gst_video::VideoFormat as F;
    (
        format == F::Y444,
        matches!(format, F::P01010le | F::Rgb10a2Le),
    )
}

/// The profile the session codes: GUID and the caps names that accept it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Profile {
    Baseline,
    Main,
    High,
    High444,
    High10,
}

impl Profile {
    fn guid(self) -> ffi::GUID {
        match self {
            Profile::Baseline => ffi::NV_ENC_H264_PROFILE_BASELINE_GUID,
            Profile::Main => ffi::NV_ENC_H264_PROFILE_MAIN_GUID,
            Profile::High => ffi::NV_ENC_H264_PROFILE_HIGH_GUID,
            Profile::High444 => ffi::NV_ENC_H264_PROFILE_HIGH_444_GUID,
            Profile::High10 => ffi::NV_ENC_H264_PROFILE_HIGH_10_GUID,
        }
    }
    fn caps_names(self) -> &'static [&'static str] {
        match self {
            // NVENC's Baseline is constrained (no FMO/ASO/redundant slices): both names.
            Profile::Baseline => &["constrained-baseline", "baseline"],
            Profile::Main => &["main"],
            Profile::High => &["high"],
            Profile::High444 => &["high-4:4:4"],
            Profile::High10 => &["high-10"],
        }
    }
    fn has_b_frames(self) -> bool {
        self != Profile::Baseline
    }
}

/// Chooses the profile for `p` (input kind, downstream's names, the GPU's profile GUIDs);
/// `want_b`: B-frames are asked for. Errors name what is missing.
fn choose_profile(p: &SessionParams, want_b: bool) -> Result<Profile, String> {
    let accepts = |pr: Profile| {
        p.downstream_profiles.is_empty()
            || pr
                .caps_names()
                .iter()
                .any(|n| p.downstream_profiles.iter().any(|d| d == n))
    };
    let gpu = |pr: Profile| p.profile_guids.contains(&pr.guid());
    let fixed = if p.chroma_444 {
        Some(Profile::High444)
    } else if p.bit_depth > 8 {
        Some(Profile::High10)
    } else {
        None
    };
    if let Some(pr) = fixed {
        if !accepts(pr) {
            return Err(format!(
                "{:?} input needs the {} profile, which downstream does not accept (it takes {:?})",
                p.info.format(),
                pr.caps_names()[0],
                p.downstream_profiles
            ));
        }
        if !gpu(pr) {
            return Err(format!(
                "this GPU's NVENC does not list the H.264 {} profile",
                pr.caps_names()[0]
            ));
        }
        return Ok(pr);
    }
    let mut order = vec![Profile::High, Profile::Main, Profile::Baseline];
    if want_b {
        // Profiles with B-frames first (they are first already; Baseline last).
        order.sort_by_key(|pr| !pr.has_b_frames());
    }
    order
        .into_iter()
        .find(|pr| accepts(*pr) && gpu(*pr))
        .ok_or_else(|| {
            format!(
                "no H.264 profile for {:?} input that downstream accepts ({:?}) and this GPU lists",
                p.info.format(),
                p.downstream_profiles
            )
        })
}

impl CodecOps for H264Ops {
    fn codec(&self) -> Codec {
        Codec::H264
    }
    fn sink_formats(&self) -> &'static [gst_video::VideoFormat] {
        SINK_FORMATS
    }
    fn encode_size(&self, width: u32, height: u32) -> (u32, u32) {
        (width.div_ceil(2) * 2, height.div_ceil(2) * 2)
    }
    fn choose_stream_format(&self, element: &gst_video::VideoEncoder) -> StreamFormat {
        match crate::encoder::downstream_stream_format(element).as_deref() {
            Some("avc") => StreamFormat::Avc,
            Some("avc3") => StreamFormat::Avc3,
            Some(_) | None => StreamFormat::Default,
        }
    }
    fn format_supported(&self, format: gst_video::VideoFormat, profiles: &[ffi::GUID]) -> bool {
        match kind(format) {
            (true, _) => profiles.contains(&ffi::NV_ENC_H264_PROFILE_HIGH_444_GUID),
            (_, true) => profiles.contains(&ffi::NV_ENC_H264_PROFILE_HIGH_10_GUID),
            _ => true,
        }
    }
    fn formats_for_profiles(&self, profiles: &[String]) -> Option<Vec<gst_video::VideoFormat>> {
        if profiles.is_empty() {
            return None;
        }
        Some(
            SINK_FORMATS
                .iter()
                .copied()
                .filter(|f| {
                    let name = match kind(*f) {
                        (true, _) => "high-4:4:4",
                        (_, true) => "high-10",
                        // Any 8-bit 4:2:0 profile.
                        _ => {
                            return profiles.iter().any(|p| {
                                matches!(
                                    p.as_str(),
                                    "high" | "main" | "baseline" | "constrained-baseline"
                                )
                            });
                        }
                    };
                    profiles.iter().any(|p| p == name)
                })
                .collect(),
        )
    }
    fn configure(
        &self,
        cfg: &mut ffi::NV_ENC_CONFIG,
        s: &Settings,
        p: &SessionParams,
        fmt: StreamFormat,
    ) -> Result<Vec<String>, String> {
        let mut refused = Vec::new();
        let profile = choose_profile(p, cfg.frameIntervalP > 1)?;
        if cfg.frameIntervalP > 1 && !profile.has_b_frames() {
            refused.push(format!(
                "bframes={} is ignored: downstream takes only the Baseline profile, which has no B-frames",
                cfg.frameIntervalP - 1
            ));
            cfg.frameIntervalP = 1;
        }
        cfg.profileGUID = profile.guid();
        let gop = cfg.gopLength;
        let with_b = cfg.frameIntervalP > 1;
        // The member of the session's codec (the config came from its preset).
        let h = cfg.encodeCodecConfig.h264_mut();
        h.level = ffi::NV_ENC_LEVEL_AUTOSELECT;
        h.idrPeriod = gop;
        h.chromaFormatIDC = if p.chroma_444 { 3 } else { 1 };
        h.flags = ffi::H264_OUTPUT_AUD.set(h.flags, s.aud as u32);
        // Parameter sets: codec_data only for avc; in band on every IDR for avc3 (decodable
        // from any IDR, as the format means); byte-stream as repeat-sequence-header says.
        let (disable, repeat) = match fmt {
            StreamFormat::Avc => (true, false),
            StreamFormat::Avc3 => (false, true),
            _ => (false, s.repeat_sequence_header),
        };
        h.flags = ffi::H264_DISABLE_SPSPPS.set(h.flags, disable as u32);
        h.flags = ffi::H264_REPEAT_SPSPPS.set(h.flags, repeat as u32);
        // CABAC where the profile has it and the GPU can; nvcodec's rule.
        h.entropyCodingMode = if profile == Profile::Baseline || !p.cabac {
            ffi::NV_ENC_H264_ENTROPY_CODING_MODE_AUTOSELECT
        } else if s.cabac {
            ffi::NV_ENC_H264_ENTROPY_CODING_MODE_CABAC
        } else {
            ffi::NV_ENC_H264_ENTROPY_CODING_MODE_CAVLC
        };
        if let Some((period, count)) = s.intra_refresh() {
            h.flags = ffi::H264_ENABLE_INTRA_REFRESH.set(h.flags, 1);
            h.intraRefreshPeriod = period;
            h.intraRefreshCnt = count;
        }
        h.useBFramesAsRef = s.b_frames_as_ref(h.useBFramesAsRef, with_b);
        if s.num_slices > 0 {
            // sliceMode 3: sliceModeData is the number of slices per picture.
            h.sliceMode = 3;
            h.sliceModeData = s.num_slices;
        }
        crate::encoder::colour::set_vui(&mut h.h264VUIParameters, &p.info);
        h.flags = ffi::H264_ENABLE_TIME_CODE.set(h.flags, p.time_code as u32);
        // With B-frames, signal the reordering depth (max_num_reorder_frames) instead of
        // leaving decoders to assume the level's DPB, as NVIDIA's own client does.
        if with_b {
            h.h264VUIParameters.bitstreamRestrictionFlag = 1;
        }
        Ok(refused)
    }
    fn output_caps(
        &self,
        seq: &[u8],
        p: &SessionParams,
        fmt: StreamFormat,
    ) -> Result<gst::Caps, String> {
        let nals = nal::split_annexb(seq);
        let of = |t: u8| -> Vec<&[u8]> {
            nals.iter()
                .copied()
                .filter(|n| nal::h264_nal_type(n) == t)
                .collect()
        };
        let (sps, pps) = (of(nal::H264_NAL_SPS), of(nal::H264_NAL_PPS));
        let sps0 = *sps.first().ok_or("no SPS in nvEncGetSequenceParams")?;
        let info = avcc::parse_sps(sps0).map_err(|e| e.to_string())?;
        let format = match fmt {
            StreamFormat::Avc => "avc",
            StreamFormat::Avc3 => "avc3",
            _ => "byte-stream",
        };
        let chroma = match info.chroma_format_idc {
            0 => "4:0:0",
            2 => "4:2:2",
            3 => "4:4:4",
            _ => "4:2:0",
        };
        let mut caps = gst::Caps::builder("video/x-h264")
            .field("stream-format", format)
            .field("alignment", "au")
            .field("chroma-format", chroma)
            .field("bit-depth-luma", u32::from(info.bit_depth_luma))
            .field("bit-depth-chroma", u32::from(info.bit_depth_chroma))
            .build();
        {
            let c = caps.make_mut();
            // Profile and level from the SPS, after its NAL header byte.
            gst_pbutils::functions::codec_utils_h264_caps_set_level_and_profile(c, &sps0[1..])
                .map_err(|e| format!("SPS profile/level: {e}"))?;
            let st = c.structure_mut(0).ok_or("empty caps")?;
            // nvcodec's rule: NVENC's Baseline is constrained-baseline in the SPS; say
            // "baseline" where downstream asked for that name only.
            if st.get::<&str>("profile").ok() == Some("constrained-baseline")
                && !p.downstream_profiles.is_empty()
                && !p
                    .downstream_profiles
                    .iter()
                    .any(|d| d == "constrained-baseline")
                && p.downstream_profiles.iter().any(|d| d == "baseline")
            {
                st.set("profile", "baseline");
            }
            if matches!(fmt, StreamFormat::Avc | StreamFormat::Avc3) {
                let rec = avcc::build_avcc(&sps, &pps, 4, fmt == StreamFormat::Avc)
                    .map_err(|e| e.to_string())?;
                st.set("codec_data", gst::Buffer::from_mut_slice(rec));
            }
        }
        Ok(caps)
    }
    fn convert_output(&self, data: &[u8], fmt: StreamFormat) -> Vec<u8> {
        match fmt {
            StreamFormat::Avc | StreamFormat::Avc3 => {
                let mut out = Vec::with_capacity(data.len() + 16);
                for n in nal::split_annexb(data) {
                    // avc: parameter sets live in codec_data only.
                    if fmt == StreamFormat::Avc
                        && matches!(nal::h264_nal_type(n), nal::H264_NAL_SPS | nal::H264_NAL_PPS)
                    {
                        continue;
                    }
                    if let Ok(len) = u32::try_from(n.len()) {
                        out.extend_from_slice(&len.to_be_bytes());
                        out.extend_from_slice(n);
                    }
                }
                out
            }
            _ => data.to_vec(),
        }
    }
}

mod imp {
    use super::*;

    #[derive(Default)]
    pub struct NvH264Enc;

    #[glib::object_subclass]
    impl ObjectSubclass for NvH264Enc {
        const NAME: &'static str = "GstRsNvencH264Enc";
        type Type = super::NvH264Enc;
        type ParentType = NvEncoderObj;
    }

    impl ObjectImpl for NvH264Enc {
        fn properties() -> &'static [glib::ParamSpec] {
            static PROPS: LazyLock<Vec<glib::ParamSpec>> =
                LazyLock::new(|| settings::codec_properties(Codec::H264));
            PROPS.as_ref()
        }
        fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
            encoder::set_property(self, value, pspec);
        }
        fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
            encoder::property(self, pspec)
        }
    }

    impl GstObjectImpl for NvH264Enc {}

    impl ElementImpl for NvH264Enc {
        fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
            static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
                gst::subclass::ElementMetadata::new(
                    "NVENC H.264 Video Encoder (rsnvenc)",
                    "Codec/Encoder/Video/Hardware",
                    "Encode H.264 video streams with NVIDIA NVENC",
                    "rsnvenc developers",
                )
            });
            Some(&*META)
        }
        fn pad_templates() -> &'static [gst::PadTemplate] {
            static T: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
                let src = gst::Caps::builder("video/x-h264")
                    .field(
                        "stream-format",
                        gst::List::new(["byte-stream", "avc", "avc3"]),
                    )
                    .field("alignment", "au")
                    .field("profile", gst::List::new(PROFILES))
                    .build();
                crate::encoder::pad_templates(SINK_FORMATS, &src)
            });
            T.as_ref()
        }
    }

    impl gst_video::subclass::prelude::VideoEncoderImpl for NvH264Enc {
        fn start(&self) -> Result<(), gst::ErrorMessage> {
            encoder::start(self)
        }
        fn handle_frame(
            &self,
            frame: gst_video::VideoCodecFrame,
        ) -> Result<gst::FlowSuccess, gst::FlowError> {
            encoder::handle_frame(self, frame)
        }
    }

    impl NvEncoderImpl for NvH264Enc {
        const OPS: &'static dyn CodecOps = &OPS;
    }
}

glib::wrapper! {
    pub struct NvH264Enc(ObjectSubclass<imp::NvH264Enc>)
        @extends NvEncoderObj, gst_video::VideoEncoder, gst::Element, gst::Object;
}

/// Registers `rsnvench264enc` with `rank`.
pub fn register(plugin: &gst::Plugin, rank: gst::Rank) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "rsnvench264enc",
        rank,
        NvH264Enc::static_type(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(format: gst_video::VideoFormat, downstream: &[&str]) -> SessionParams {
        let info = gst_video::VideoInfo::builder(format, 320, 240)
            .build()
            .unwrap();
        let (c444, ten) = kind(format);
        SessionParams {
            info,
            encode_width: 320,
            encode_height: 240,
            buffer_format: 0,
            bit_depth: if ten { 10 } else { 8 },
            chroma_444: c444,
            api: crate::nvenc::api::ApiVersion::V13_0,
            downstream_profiles: downstream.iter().map(|s| s.to_string()).collect(),
            profile_guids: vec![
                ffi::NV_ENC_H264_PROFILE_BASELINE_GUID,
                ffi::NV_ENC_H264_PROFILE_MAIN_GUID,
                ffi::NV_ENC_H264_PROFILE_HIGH_GUID,
                ffi::NV_ENC_H264_PROFILE_HIGH_444_GUID,
            ],
            cabac: true,
            hdr: Default::default(),
            time_code: false,
        }
    }

    #[test]
    fn profile_follows_input_and_downstream() {
        use gst_video::VideoFormat as F;
        gst::init().unwrap();
        let pick = |f, d: &[&str], b| choose_profile(&params(f, d), b);
        assert_eq!(pick(F::Nv12, &[], false), Ok(Profile::High));
        assert_eq!(pick(F::Nv12, &PROFILES, true), Ok(Profile::High));
        assert_eq!(pick(F::Nv12, &["main"], true), Ok(Profile::Main));
        assert_eq!(pick(F::Nv12, &["baseline"], true), Ok(Profile::Baseline));
        assert_eq!(
            pick(F::Nv12, &["constrained-baseline"], false),
            Ok(Profile::Baseline)
        );
        assert_eq!(
            pick(F::Nv12, &["baseline", "main"], true),
            Ok(Profile::Main)
        );
        assert_eq!(pick(F::Bgrx, &["high"], false), Ok(Profile::High));
        assert_eq!(pick(F::Y444, &[], true), Ok(Profile::High444));
        assert!(pick(F::Y444, &["high"], false).is_err());
        assert!(pick(F::Nv12, &["high-4:4:4"], false).is_err());
        // High 10 is not in this GPU's list.
        assert!(pick(F::P01010le, &[], false).is_err());
    }

    #[test]
    fn sink_formats_follow_downstream_profiles() {
        use gst_video::VideoFormat as F;
        let ops = H264Ops;
        assert_eq!(ops.formats_for_profiles(&[]), None);
        let only = |p: &[&str]| {
            ops.formats_for_profiles(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap()
        };
        assert_eq!(only(&["high-4:4:4"]), vec![F::Y444]);
        let main = only(&["main"]);
        assert!(main.contains(&F::Nv12) && main.contains(&F::Bgrx) && !main.contains(&F::Y444));
        assert!(!main.contains(&F::P01010le));
        assert_eq!(only(&["high-10"]), vec![F::P01010le, F::Rgb10a2Le]);
        assert!(!ops.format_supported(F::P01010le, &[ffi::NV_ENC_H264_PROFILE_HIGH_GUID]));
        assert!(ops.format_supported(F::Y444, &[ffi::NV_ENC_H264_PROFILE_HIGH_444_GUID]));
    }

    #[test]
    fn avc_drops_parameter_sets_avc3_keeps_them() {
        let data = [
            0, 0, 0, 1, 0x09, 0xf0, // AUD
            0, 0, 0, 1, 0x67, 0x64, 0x00, 0x1e, // SPS
            0, 0, 0, 1, 0x68, 0xeb, // PPS
            0, 0, 1, 0x65, 0x88, 0x84, // IDR slice
        ];
        let avc = H264Ops.convert_output(&data, StreamFormat::Avc);
        assert_eq!(
            avc,
            vec![0, 0, 0, 2, 0x09, 0xf0, 0, 0, 0, 3, 0x65, 0x88, 0x84]
        );
        let avc3 = H264Ops.convert_output(&data, StreamFormat::Avc3);
        assert_eq!(avc3.len(), 4 * 4 + 2 + 4 + 2 + 3);
        assert_eq!(&avc3[6..11], &[0, 0, 0, 4, 0x67]);
        assert_eq!(H264Ops.convert_output(&data, StreamFormat::Default), data);
    }
}
