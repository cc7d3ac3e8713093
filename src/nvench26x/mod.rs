// SPDX-License-Identifier: MPL-2.0
//! `rsnvench265enc`: H.265 encoding with NVENC (`rsnvench264enc`, in `h264`, shares the
//! helpers).
//!
//! Output: `video/x-h265, alignment=au` in `byte-stream`, `hvc1` or `hev1` (whichever
//! downstream lists first), with an `hvcC` `codec_data` for the packetized formats, so
//! `rsnvench265enc ! mp4mux` works with or without `h265parse`. 4:2:0 needs even sizes in
//! H.265 (the conformance window crops in 2-row units), so an odd height such as 405 is
//! encoded as 406 with the last row repeated; caps keep the true 405.

// The parsers are public (the crate root hides `nvench26x` from the docs): the tests check
// `avcc` against what downstream parses, and they keep helpers only their own tests use.
pub mod avcc;
mod h264;
pub mod hvcc;
pub mod nal;

use std::sync::LazyLock;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_video::subclass::prelude::*;

use crate::encoder::settings::{self, Settings};
use crate::encoder::{self, CodecOps, NvEncoderImpl, NvEncoderObj, SessionParams, StreamFormat};
use crate::nvenc::api::Codec;
use crate::nvenc::ffi;

struct H265Ops;

static OPS: H265Ops = H265Ops;

const SINK_FORMATS: &[gst_video::VideoFormat] = &[
    gst_video::VideoFormat::Nv12,
    gst_video::VideoFormat::I420,
    gst_video::VideoFormat::Yv12,
    gst_video::VideoFormat::P01010le,
    gst_video::VideoFormat::Y444,
    gst_video::VideoFormat::Y44416le,
    gst_video::VideoFormat::Gbr,
    gst_video::VideoFormat::Vuya,
    gst_video::VideoFormat::Rgba,
    gst_video::VideoFormat::Rgbx,
    gst_video::VideoFormat::Bgra,
    gst_video::VideoFormat::Bgrx,
    gst_video::VideoFormat::Rgb10a2Le,
];

fn profile_name(p: &SessionParams) -> &'static str {
    match (p.chroma_444, p.bit_depth) {
        (false, 8) => "main",
        (false, _) => "main-10",
        (true, 8) => "main-444",
        (true, _) => "main-444-10",
    }
}

impl CodecOps for H265Ops {
    fn codec(&self) -> Codec {
        Codec::Hevc
    }
    fn sink_formats(&self) -> &'static [gst_video::VideoFormat] {
        SINK_FORMATS
    }
    fn encode_size(&self, width: u32, height: u32) -> (u32, u32) {
        (width.div_ceil(2) * 2, height.div_ceil(2) * 2)
    }
    fn choose_stream_format(&self, element: &gst_video::VideoEncoder) -> StreamFormat {
        match crate::encoder::downstream_stream_format(element).as_deref() {
            Some("hvc1") => StreamFormat::Hvc1,
            Some("hev1") => StreamFormat::Hev1,
            Some(_) | None => StreamFormat::Default,
        }
    }
    fn configure(
        &self,
        cfg: &mut ffi::NV_ENC_CONFIG,
        s: &Settings,
        p: &SessionParams,
        fmt: StreamFormat,
    ) -> Result<Vec<String>, String> {
        cfg.profileGUID = match (p.chroma_444, p.bit_depth) {
            (false, 8) => ffi::NV_ENC_HEVC_PROFILE_MAIN_GUID,
            (false, _) => ffi::NV_ENC_HEVC_PROFILE_MAIN10_GUID,
            (true, _) => ffi::NV_ENC_HEVC_PROFILE_FREXT_GUID,
        };
        let gop = cfg.gopLength;
        let with_b = cfg.frameIntervalP > 1;
        // The member of the session's codec (the config came from its preset).
        let h = cfg.encodeCodecConfig.hevc_mut();
        h.level = ffi::NV_ENC_LEVEL_AUTOSELECT;
        h.tier = ffi::NV_ENC_TIER_HEVC_MAIN;
        h.idrPeriod = gop;
        h.flags = ffi::HEVC_CHROMA_FORMAT_IDC.set(h.flags, if p.chroma_444 { 3 } else { 1 });
        h.flags = ffi::HEVC_OUTPUT_AUD.set(h.flags, s.aud as u32);
        if let Some((period, count)) = s.intra_refresh() {
            h.flags = ffi::HEVC_ENABLE_INTRA_REFRESH.set(h.flags, 1);
            h.intraRefreshPeriod = period;
            h.intraRefreshCnt = count;
        }
        h.useBFramesAsRef = s.b_frames_as_ref(h.useBFramesAsRef, with_b);
        if s.num_slices > 0 {
            // sliceMode 3: sliceModeData is the number of slices per picture.
            h.sliceMode = 3;
            h.sliceModeData = s.num_slices;
        }
        h.flags = ffi::HEVC_REPEAT_SPSPPS.set(
            h.flags,
            (s.repeat_sequence_header && fmt != StreamFormat::Hvc1) as u32,
        );
        // hvc1 carries the parameter sets in hvcC only.
        h.flags = ffi::HEVC_DISABLE_SPSPPS.set(h.flags, (fmt == StreamFormat::Hvc1) as u32);
        crate::encoder::colour::set_vui(&mut h.hevcVUIParameters, &p.info);
        if p.native_hdr(Codec::Hevc) {
            // API 13.0: NVENC writes the SEI messages itself from pMasteringDisplay / pMaxCll.
            h.flags =
                ffi::HEVC_OUTPUT_MASTERING_DISPLAY.set(h.flags, p.hdr.mastering.is_some() as u32);
            h.flags = ffi::HEVC_OUTPUT_MAX_CLL.set(h.flags, p.hdr.light.is_some() as u32);
        }
        Ok(Vec::new())
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
                .filter(|n| nal::hevc_nal_type(n) == t)
                .collect()
        };
        let (vps, sps, pps) = (of(32), of(33), of(34));
        let sps0 = sps.first().ok_or("no SPS in nvEncGetSequenceParams")?;
        let info = hvcc::parse_sps(sps0).map_err(|e| e.to_string())?;
        let format = match fmt {
            StreamFormat::Hvc1 => "hvc1",
            StreamFormat::Hev1 => "hev1",
            _ => "byte-stream",
        };
        let mut caps = gst::Caps::builder("video/x-h265")
            .field("stream-format", format)
            .field("alignment", "au")
            .field("profile", profile_name(p))
            .build();
        {
            let c = caps.make_mut();
            let ptl = &info.profile_tier_level_bytes;
            if gst_pbutils::functions::codec_utils_h265_caps_set_level_tier_and_profile(c, ptl)
                .is_err()
            {
                // A level GStreamer 1.22 cannot name: 8.5 (general_level_idc 255, "no level
                // limit", what a lossless stream signals). The caps go without a level, as
                // h265parse leaves them; the tier is general_tier_flag.
                let st = c.structure_mut(0).ok_or("empty caps")?;
                st.remove_field("level");
                let high = ptl.first().is_some_and(|b| b & 0x20 != 0);
                st.set("tier", if high { "high" } else { "main" });
            }
            // Keep the profile from the input format (the helper may only set "main" style);
            // chroma format and bit depth as h265parse writes them.
            let st = c.structure_mut(0).ok_or("empty caps")?;
            st.set("profile", profile_name(p));
            st.set(
                "chroma-format",
                if p.chroma_444 { "4:4:4" } else { "4:2:0" },
            );
            st.set("bit-depth-luma", p.bit_depth);
            st.set("bit-depth-chroma", p.bit_depth);
            if matches!(fmt, StreamFormat::Hvc1 | StreamFormat::Hev1) {
                let rec = hvcc::build_hvcc(&vps, &sps, &pps, 4).map_err(|e| e.to_string())?;
                c.structure_mut(0)
                    .ok_or("empty caps")?
                    .set("codec_data", gst::Buffer::from_mut_slice(rec));
            }
        }
        Ok(caps)
    }
    fn convert_output(&self, data: &[u8], fmt: StreamFormat) -> Vec<u8> {
        match fmt {
            StreamFormat::Hvc1 | StreamFormat::Hev1 => {
                let mut out = Vec::with_capacity(data.len() + 16);
                nal::annexb_to_length_prefixed(data, &mut out);
                out
            }
            _ => data.to_vec(),
        }
    }
}

mod imp {
    use super::*;

    #[derive(Default)]
    pub struct NvH265Enc;

    #[glib::object_subclass]
    impl ObjectSubclass for NvH265Enc {
        const NAME: &'static str = "GstRsNvencH265Enc";
        type Type = super::NvH265Enc;
        type ParentType = NvEncoderObj;
    }

    impl ObjectImpl for NvH265Enc {
        fn properties() -> &'static [glib::ParamSpec] {
            static PROPS: LazyLock<Vec<glib::ParamSpec>> =
                LazyLock::new(|| settings::codec_properties(Codec::Hevc));
            PROPS.as_ref()
        }
        fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
            encoder::set_property(self, value, pspec);
        }
        fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
            encoder::property(self, pspec)
        }
    }

    impl GstObjectImpl for NvH265Enc {}

    impl ElementImpl for NvH265Enc {
        fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
            static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
                gst::subclass::ElementMetadata::new(
                    "NVENC H.265 Video Encoder (rsnvenc)",
                    "Codec/Encoder/Video/Hardware",
                    "Encode H.265 video streams with NVIDIA NVENC",
                    "rsnvenc developers",
                )
            });
            Some(&*META)
        }
        fn pad_templates() -> &'static [gst::PadTemplate] {
            static T: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
                let src = gst::Caps::builder("video/x-h265")
                    .field(
                        "stream-format",
                        gst::List::new(["byte-stream", "hvc1", "hev1"]),
                    )
                    .field("alignment", "au")
                    .field(
                        "profile",
                        gst::List::new(["main", "main-10", "main-444", "main-444-10"]),
                    )
                    .build();
                crate::encoder::pad_templates(SINK_FORMATS, &src)
            });
            T.as_ref()
        }
    }

    impl VideoEncoderImpl for NvH265Enc {
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

    impl NvEncoderImpl for NvH265Enc {
        const OPS: &'static dyn CodecOps = &OPS;
    }
}

glib::wrapper! {
    pub struct NvH265Enc(ObjectSubclass<imp::NvH265Enc>)
        @extends NvEncoderObj, gst_video::VideoEncoder, gst::Element, gst::Object;
}

/// Registers `rsnvench265enc` with `h265_rank` and `rsnvench264enc` with `h264_rank`.
pub fn register(
    plugin: &gst::Plugin,
    h265_rank: gst::Rank,
    h264_rank: gst::Rank,
) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "rsnvench265enc",
        h265_rank,
        NvH265Enc::static_type(),
    )?;
    h264::register(plugin, h264_rank)
}
