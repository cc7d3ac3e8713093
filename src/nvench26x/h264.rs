// SPDX-License-Identifier: MPL-2.0
//! `rsnvench264enc`: H.264 encoding with NVENC, on the same base as H.265.
//!
//! First version: 8-bit 4:2:0 (NV12, and VUYA/RGB through NVENC's own conversion), output
//! `video/x-h264, stream-format=byte-stream, alignment=au` with profile and level from the SPS
//! (`h264parse` gives avc/avc3 for MP4). 4:4:4, 10-bit and avc/avcC are not done yet. Odd
//! sizes are coded with one repeated row/column and cropped (2-pixel crop units in 4:2:0).

use std::sync::LazyLock;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::nal;
use crate::nvenc::api::Codec;
use crate::nvenc::base::{CodecOps, NvEncoderImpl, NvEncoderObj, SessionParams, StreamFormat};
use crate::nvenc::ffi;
use crate::nvenc::settings::{self, Settings};

struct H264Ops;

static OPS: H264Ops = H264Ops;

const SINK_FORMATS: &[gst_video::VideoFormat] = &[
    gst_video::VideoFormat::Nv12,
    gst_video::VideoFormat::Vuya,
    gst_video::VideoFormat::Rgba,
    gst_video::VideoFormat::Rgbx,
    gst_video::VideoFormat::Bgra,
    gst_video::VideoFormat::Bgrx,
];

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
    fn configure(
        &self,
        cfg: &mut ffi::NV_ENC_CONFIG,
        s: &Settings,
        p: &SessionParams,
        _fmt: StreamFormat,
    ) -> Result<(), String> {
        let gop = cfg.gopLength;
        // SAFETY: the config came from the H.264 preset, so `h264Config` is the active member;
        // it holds plain integers and pointers, valid for any bits.
        let h = unsafe { &mut cfg.encodeCodecConfig.h264Config };
        h.level = ffi::NV_ENC_LEVEL_AUTOSELECT;
        h.idrPeriod = gop;
        h.chromaFormatIDC = 1;
        h.flags = ffi::H264_OUTPUT_AUD.set(h.flags, s.aud as u32);
        h.flags = ffi::H264_REPEAT_SPSPPS.set(h.flags, s.repeat_sequence_header as u32);
        h.flags = ffi::H264_DISABLE_SPSPPS.set(h.flags, 0);
        crate::nvenc::colour::set_vui(&mut h.h264VUIParameters, &p.info);
        Ok(())
    }
    fn output_caps(
        &self,
        seq: &[u8],
        _p: &SessionParams,
        _fmt: StreamFormat,
    ) -> Result<gst::Caps, String> {
        // SPS: NAL type 7; pbutils reads profile and level right after the NAL header byte.
        let sps = nal::split_annexb(seq)
            .into_iter()
            .find(|n| n.first().is_some_and(|b| b & 0x1f == 7))
            .ok_or("no SPS in nvEncGetSequenceParams")?;
        let mut caps = gst::Caps::builder("video/x-h264")
            .field("stream-format", "byte-stream")
            .field("alignment", "au")
            .build();
        gst_pbutils::functions::codec_utils_h264_caps_set_level_and_profile(
            caps.make_mut(),
            &sps[1..],
        )
        .map_err(|e| format!("SPS profile/level: {e}"))?;
        Ok(caps)
    }
}

pub mod imp {
    use super::*;

    #[derive(Default)]
    pub struct NvH264Enc;

    #[glib::object_subclass]
    impl ObjectSubclass for NvH264Enc {
        const NAME: &'static str = "GstRsNvH264Enc";
        type Type = super::NvH264Enc;
        type ParentType = NvEncoderObj;
    }

    impl ObjectImpl for NvH264Enc {
        fn properties() -> &'static [glib::ParamSpec] {
            static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
                let mut v = settings::qp_properties(51);
                v.extend(super::super::header_properties("h264Config", "SPS/PPS", ""));
                v
            });
            PROPS.as_ref()
        }
        fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
            let obj = self.obj();
            let base = obj.upcast_ref::<NvEncoderObj>().imp();
            let mut s = base.settings();
            if !super::super::set_header_property(&mut s, value, pspec) {
                settings::set_qp_property(&mut s, value, pspec);
            }
            drop(s);
            base.request_update(false);
        }
        fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
            let obj = self.obj();
            let base = obj.upcast_ref::<NvEncoderObj>().imp();
            let s = base.settings();
            super::super::header_property(&s, pspec)
                .unwrap_or_else(|| settings::qp_property(&s, pspec))
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
                    .field("stream-format", "byte-stream")
                    .field("alignment", "au")
                    .field(
                        "profile",
                        gst::List::new(["baseline", "constrained-baseline", "main", "high"]),
                    )
                    .build();
                crate::nvenc::base::pad_templates(SINK_FORMATS, &src)
            });
            T.as_ref()
        }
    }

    impl gst_video::subclass::prelude::VideoEncoderImpl for NvH264Enc {}

    impl NvEncoderImpl for NvH264Enc {
        const OPS: &'static dyn CodecOps = &OPS;
    }
}

glib::wrapper! {
    pub struct NvH264Enc(ObjectSubclass<imp::NvH264Enc>)
        @extends NvEncoderObj, gst_video::VideoEncoder, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "rsnvench264enc",
        gst::Rank::NONE,
        NvH264Enc::static_type(),
    )
}
