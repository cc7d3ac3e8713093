// SPDX-License-Identifier: MPL-2.0
//! `rsnvencav1enc`: AV1 encoding with NVENC.
//!
//! Output: `video/x-av1, stream-format=obu-stream, alignment=tu` with an `av1C` record (built
//! from the sequence header of `nvEncGetSequenceParams`) as `codec_data`, plus profile,
//! bit depth and chroma format, so `rsnvencav1enc ! mp4mux` works without `av1parse`. AV1 codes
//! odd frame sizes exactly (e.g. 720x405).

pub mod av1c;

use std::sync::LazyLock;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_video::subclass::prelude::*;

use crate::encoder::settings::{self, Settings};
use crate::encoder::{self, CodecOps, NvEncoderImpl, NvEncoderObj, SessionParams, StreamFormat};
use crate::nvenc::api::Codec;
use crate::nvenc::ffi;

struct Av1Ops;

static OPS: Av1Ops = Av1Ops;

const SINK_FORMATS: &[gst_video::VideoFormat] = &[
    gst_video::VideoFormat::Nv12,
    gst_video::VideoFormat::I420,
    gst_video::VideoFormat::Yv12,
    gst_video::VideoFormat::P01010le,
    gst_video::VideoFormat::Vuya,
    gst_video::VideoFormat::Rgba,
    gst_video::VideoFormat::Rgbx,
    gst_video::VideoFormat::Bgra,
    gst_video::VideoFormat::Bgrx,
    gst_video::VideoFormat::Rgb10a2Le,
];

impl CodecOps for Av1Ops {
    fn codec(&self) -> Codec {
        Codec::Av1
    }
    fn sink_formats(&self) -> &'static [gst_video::VideoFormat] {
        SINK_FORMATS
    }
    fn encode_size(&self, width: u32, height: u32) -> (u32, u32) {
        (width, height)
    }
    fn configure(
        &self,
        cfg: &mut ffi::NV_ENC_CONFIG,
        s: &Settings,
        p: &SessionParams,
        _fmt: StreamFormat,
    ) -> Result<Vec<String>, String> {
        cfg.profileGUID = ffi::NV_ENC_AV1_PROFILE_MAIN_GUID;
        let gop = cfg.gopLength;
        let with_b = cfg.frameIntervalP > 1;
        // The member of the session's codec (the config came from its preset).
        let a = cfg.encodeCodecConfig.av1_mut();
        a.level = ffi::NV_ENC_LEVEL_AV1_AUTOSELECT;
        a.tier = ffi::NV_ENC_TIER_AV1_0;
        a.idrPeriod = gop;
        a.flags = ffi::AV1_OUTPUT_ANNEXB_FORMAT.set(a.flags, 0);
        a.flags = ffi::AV1_DISABLE_SEQ_HDR.set(a.flags, 0);
        a.flags = ffi::AV1_REPEAT_SEQ_HDR.set(a.flags, 1);
        a.flags = ffi::AV1_CHROMA_FORMAT_IDC.set(a.flags, 1);
        if let Some((period, count)) = s.intra_refresh() {
            a.flags = ffi::AV1_ENABLE_INTRA_REFRESH.set(a.flags, 1);
            a.intraRefreshPeriod = period;
            a.intraRefreshCnt = count;
        }
        a.useBFramesAsRef = s.b_frames_as_ref(a.useBFramesAsRef, with_b);
        // Uniform tiles (enableCustomTileConfig stays 0); 0 keeps NVENC's choice.
        if s.tile_columns > 0 {
            a.numTileColumns = s.tile_columns;
        }
        if s.tile_rows > 0 {
            a.numTileRows = s.tile_rows;
        }
        if let Some((pr, tr, mx, full)) = crate::encoder::colour::iso_colour(&p.info) {
            a.colorPrimaries = pr;
            a.transferCharacteristics = tr;
            a.matrixCoefficients = mx;
            a.colorRange = full as u32;
        }
        if p.native_hdr(Codec::Av1) {
            // API 13.0 only (in 12.1 these bits are the bit depth): NVENC writes the HDR_MDCV
            // and HDR_CLL metadata OBUs itself from pMasteringDisplay / pMaxCll.
            a.flags =
                ffi::AV1_OUTPUT_MASTERING_DISPLAY.set(a.flags, p.hdr.mastering.is_some() as u32);
            a.flags = ffi::AV1_OUTPUT_MAX_CLL.set(a.flags, p.hdr.light.is_some() as u32);
        }
        Ok(Vec::new())
    }
    fn output_caps(
        &self,
        seq: &[u8],
        _p: &SessionParams,
        _fmt: StreamFormat,
    ) -> Result<gst::Caps, String> {
        let obu = av1c::find_sequence_header(seq).map_err(|e| e.to_string())?;
        let info = av1c::parse_sequence_header(obu).map_err(|e| e.to_string())?;
        let record = av1c::build_av1c(obu).map_err(|e| e.to_string())?;
        let mut b = gst::Caps::builder("video/x-av1")
            .field("stream-format", "obu-stream")
            .field("alignment", "tu")
            .field("codec_data", gst::Buffer::from_mut_slice(record));
        for (k, v) in av1c::caps_fields(&info) {
            b = match v.parse::<u32>() {
                Ok(n) => b.field(k, n),
                Err(_) => b.field(k, v),
            };
        }
        Ok(b.build())
    }
}

mod imp {
    use super::*;

    #[derive(Default)]
    pub struct NvAv1Enc;

    #[glib::object_subclass]
    impl ObjectSubclass for NvAv1Enc {
        const NAME: &'static str = "GstRsNvencAv1Enc";
        type Type = super::NvAv1Enc;
        type ParentType = NvEncoderObj;
    }

    impl ObjectImpl for NvAv1Enc {
        fn properties() -> &'static [glib::ParamSpec] {
            static PROPS: LazyLock<Vec<glib::ParamSpec>> =
                LazyLock::new(|| settings::codec_properties(Codec::Av1));
            PROPS.as_ref()
        }
        fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
            encoder::set_property(self, value, pspec);
        }
        fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
            encoder::property(self, pspec)
        }
    }

    impl GstObjectImpl for NvAv1Enc {}

    impl ElementImpl for NvAv1Enc {
        fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
            static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
                gst::subclass::ElementMetadata::new(
                    "NVENC AV1 Video Encoder (rsnvenc)",
                    "Codec/Encoder/Video/Hardware",
                    "Encode AV1 video streams with NVIDIA NVENC",
                    "rsnvenc developers",
                )
            });
            Some(&*META)
        }
        fn pad_templates() -> &'static [gst::PadTemplate] {
            static T: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
                let src = gst::Caps::builder("video/x-av1")
                    .field("stream-format", "obu-stream")
                    .field("alignment", "tu")
                    .build();
                crate::encoder::pad_templates(SINK_FORMATS, &src)
            });
            T.as_ref()
        }
    }

    impl VideoEncoderImpl for NvAv1Enc {
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

    impl NvEncoderImpl for NvAv1Enc {
        const OPS: &'static dyn CodecOps = &OPS;
    }
}

glib::wrapper! {
    pub struct NvAv1Enc(ObjectSubclass<imp::NvAv1Enc>)
        @extends NvEncoderObj, gst_video::VideoEncoder, gst::Element, gst::Object;
}

/// Registers `rsnvencav1enc` with `rank`.
pub fn register(plugin: &gst::Plugin, rank: gst::Rank) -> Result<(), glib::BoolError> {
    gst::Element::register(Some(plugin), "rsnvencav1enc", rank, NvAv1Enc::static_type())
}
