// SPDX-License-Identifier: MPL-2.0
//! `GstRsNvEncoder`: the abstract GstVideoEncoder base of every rsnvenc element, and its
//! subclass API ([`CodecOps`], [`NvEncoderImpl`]). The element owns the
//! CUDA context, the NVENC session, the ring of input surfaces and bitstream buffers, and the
//! output thread; codec elements only supply a [`CodecOps`] (codec config, caps, codec_data,
//! output buffer format).
//!
//! Frame path:
//! 1. `handle_frame` (streaming thread) takes a free slot of the ring (waiting if all are in
//!    flight), copies the frame into the slot's NVENC input surface and calls
//!    `nvEncEncodePicture` with `inputTimeStamp` = the frame's system frame number. The slot goes
//!    to the output thread whatever NVENC answered (`NV_ENC_ERR_NEED_MORE_INPUT` included).
//! 2. The output thread takes slots in submission order and blocks in `nvEncLockBitstream`.
//!    NVENC fills buffers in submission order with pictures in coded order, so the frame inside
//!    a buffer is found from `outputTimeStamp`, never from the slot. It copies the bitstream
//!    out, unlocks, gives the slot back (before touching any GStreamer lock), then takes the
//!    encoder's stream lock and finishes the frame with DTS = PTS of the k-th submitted frame
//!    minus the B-frame delay.
//! 3. EOS, flush and caps changes send NVENC's EOS and wait until every submitted frame is out.
//!
//! Per-picture metadata (see [`metadata`]): the frame's CEA-708 caption metas
//! (`cc-insert`) and, on the frames NVENC will code as IDRs (`ring::IdrPrediction`), the
//! HDR10 metadata of the input caps go with `nvEncEncodePicture` (payload arrays, or API
//! 13.0's own HDR fields); the output thread warns if an IDR came without them or a non-IDR
//! with them. With `cc-insert=insert-and-drop` the caption metas are not copied to the output
//! buffers (`transform_meta`, [`gstffi::install_transform_meta`]).
//!
//! Files: [`imp`] (the GstVideoEncoder vfuncs), [`settings`] (every property), [`config`]
//! (settings and GPU caps to NVENC's structs, pure), [`ring`] (session, ring, output thread),
//! [`input`] (upload paths), [`negotiation`] (caps, pools), [`stats`], [`sdkext`],
//! [`metadata`], [`colour`], [`gstffi`] (C API gstreamer-rs does not wrap).
//! `docs/architecture.md` walks one frame and one property through them.

use std::sync::{Condvar, LazyLock, Mutex, MutexGuard};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_video::subclass::prelude::*;

use crate::nvenc::api::{self, Codec};
use crate::nvenc::ffi;

pub mod colour;
mod config;
mod gstffi;
mod imp;
mod input;
mod live;
pub mod metadata;
mod negotiation;
pub mod pipemeta;
mod ring;
mod roi;
pub mod sdkext;
pub mod settings;
mod stats;
#[cfg(test)]
mod upstream_fuzz;

pub use metadata::Hdr10;
pub use negotiation::downstream_stream_format;
pub use settings::Settings;

/// Locks `m`, whatever thread panicked while holding it: the data are plain values (a
/// half-done update is still a valid state), and no panic may cross into GStreamer.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits on `c` with `g`, as [`lock`] takes a poisoned lock.
fn wait<'a, T>(c: &Condvar, g: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    c.wait(g).unwrap_or_else(|e| e.into_inner())
}

pub static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "rsnvenc",
        gst::DebugColorFlags::empty(),
        Some("rsnvenc NVENC encoder base"),
    )
});

/// What the session was configured with, for the codec hooks.
#[derive(Debug, Clone)]
pub struct SessionParams {
    pub info: gst_video::VideoInfo,
    /// Encode size (H.264/H.265 4:2:0 sizes are rounded up to even).
    pub encode_width: u32,
    pub encode_height: u32,
    pub buffer_format: u32,
    pub bit_depth: u32,
    pub chroma_444: bool,
    pub api: api::ApiVersion,
    /// `profile` names downstream accepts (caps strings, e.g. `"high"`), from the src pad's
    /// allowed caps; empty when downstream names none (anything goes).
    pub downstream_profiles: Vec<String>,
    /// Profile GUIDs this GPU encodes the codec with (`nvEncGetEncodeProfileGUIDs`).
    pub profile_guids: Vec<ffi::GUID>,
    /// `NV_ENC_CAPS_SUPPORT_CABAC` for the codec (H.264 only; 0 elsewhere).
    pub cabac: bool,
    /// HDR10 static metadata of the input caps, written on every IDR.
    pub hdr: Hdr10,
    /// H.264: clock timestamps in picture timing SEI (`enableTimeCode`), because the input
    /// carries `GstVideoTimeCodeMeta` and the API is 12.2+ ([`pipemeta`](crate::encoder::pipemeta)).
    pub time_code: bool,
}

impl SessionParams {
    /// HDR metadata goes through NVENC's own fields (API 13.0, H.265 and AV1): the codec's
    /// `configure` sets `outputMasteringDisplay` / `outputMaxCll` for the parts present.
    pub fn native_hdr(&self, codec: Codec) -> bool {
        !self.hdr.is_empty() && metadata::native_hdr(codec, self.api)
    }
}

/// Codec hooks, one static instance per codec element.
pub trait CodecOps: Send + Sync + 'static {
    fn codec(&self) -> Codec;
    /// Sink formats this codec can take (before narrowing to what the GPU reports).
    fn sink_formats(&self) -> &'static [gst_video::VideoFormat];
    /// Encode size for a display size (AV1 keeps odd sizes, H.26x 4:2:0 needs even ones).
    fn encode_size(&self, width: u32, height: u32) -> (u32, u32);
    /// Chooses the output format from downstream caps (before the session is created).
    fn choose_stream_format(&self, _element: &gst_video::VideoEncoder) -> StreamFormat {
        StreamFormat::Default
    }
    /// Whether the GPU can take `format` for this codec given the profile GUIDs it lists (on
    /// top of the input-format and 10-bit/4:4:4 caps the base checks). Default: yes.
    fn format_supported(&self, _format: gst_video::VideoFormat, _profiles: &[ffi::GUID]) -> bool {
        true
    }
    /// The sink formats that can give a stream of one of `profiles` (downstream's caps
    /// `profile` names), for narrowing the sink caps; `None`: no narrowing.
    fn formats_for_profiles(&self, _profiles: &[String]) -> Option<Vec<gst_video::VideoFormat>> {
        None
    }
    /// Edits the preset config for this codec (profile, idrPeriod, headers, colour...). May
    /// lower `cfg.frameIntervalP` (a profile without B-frames). Returns the settings it had to
    /// refuse, one sentence each, for the base to post as element warnings.
    fn configure(
        &self,
        cfg: &mut ffi::NV_ENC_CONFIG,
        s: &Settings,
        p: &SessionParams,
        fmt: StreamFormat,
    ) -> Result<Vec<String>, String>;
    /// Output caps (with codec_data) from the sequence header.
    fn output_caps(
        &self,
        seq: &[u8],
        p: &SessionParams,
        fmt: StreamFormat,
    ) -> Result<gst::Caps, String>;
    /// Converts one NVENC bitstream buffer into the output format.
    fn convert_output(&self, data: &[u8], fmt: StreamFormat) -> Vec<u8> {
        let _ = fmt;
        data.to_vec()
    }
}

/// Output stream format (H.264: byte-stream, avc, avc3; H.265: byte-stream, hvc1, hev1; AV1:
/// obu-stream only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFormat {
    /// Annex B byte-stream (H.264/H.265), OBU stream (AV1).
    Default,
    /// H.265 length-prefixed, parameter sets in `hvcC` only.
    Hvc1,
    /// H.265 length-prefixed, parameter sets also in band.
    Hev1,
    /// H.264 length-prefixed, parameter sets in `avcC` only.
    Avc,
    /// H.264 length-prefixed, parameter sets in band (`avcC` without them, as h264parse).
    Avc3,
}

/// The sink (system-memory `formats`, 1..=8192 in both dimensions, and the same in CUDA
/// memory where NVENC reads it) and src (`src`) templates of a codec element.
pub fn pad_templates(formats: &[gst_video::VideoFormat], src: &gst::Caps) -> Vec<gst::PadTemplate> {
    let sink = negotiation::with_cuda_memory(
        gst_video::VideoCapsBuilder::new()
            .format_list(formats.iter().copied())
            .width_range(1..=8192)
            .height_range(1..=8192)
            .build(),
    );
    vec![
        gst::PadTemplate::new(
            "sink",
            gst::PadDirection::Sink,
            gst::PadPresence::Always,
            &sink,
        )
        .expect("valid template"),
        gst::PadTemplate::new("src", gst::PadDirection::Src, gst::PadPresence::Always, src)
            .expect("valid template"),
    ]
}

/// The class struct: GstVideoEncoderClass, then the codec hooks of the concrete element.
#[repr(C)]
pub struct Class {
    parent: gst_video::ffi::GstVideoEncoderClass,
    ops: Option<&'static dyn CodecOps>,
}

// SAFETY: `Class` starts with the parent class struct, as GObject requires.
unsafe impl ClassStruct for Class {
    type Type = imp::NvEncoder;
}

impl Class {
    /// The codec hooks of a concrete element's class (`None` in the abstract base's).
    fn ops(&self) -> Option<&'static dyn CodecOps> {
        self.ops
    }
}

/// What a codec element implements: its hooks. Its `VideoEncoderImpl` keeps the defaults
/// (they chain up to this base) except `start` and `handle_frame`, which call [`start`] and
/// [`handle_frame`]: gstreamer-rs 0.25's `parent_handle_frame` passes a frame it still owns to
/// a vfunc that takes ownership (a double unref), and its `parent_start` turns the base's
/// error into a second, vaguer one.
pub trait NvEncoderImpl: VideoEncoderImpl {
    const OPS: &'static dyn CodecOps;
}

glib::wrapper! {
    /// `GstRsNvEncoder`, the abstract base of the rsnvenc elements.
    pub struct NvEncoderObj(ObjectSubclass<imp::NvEncoder>)
        @extends gst_video::VideoEncoder, gst::Element, gst::Object;
}

// SAFETY: `class_init` chains up to GstVideoEncoder's (which installs the subclass's vfunc
// trampolines, down to GObject's) before setting this class's own field; no instance data.
unsafe impl<T: NvEncoderImpl> IsSubclassable<T> for NvEncoderObj {
    fn class_init(class: &mut glib::Class<Self>) {
        Self::parent_class_init::<T>(class);
        class.as_mut().ops = Some(T::OPS);
    }
}

/// A codec element's `VideoEncoderImpl::start`: the base's (see [`NvEncoderImpl`]).
pub fn start<T: NvEncoderImpl>(imp: &T) -> Result<(), gst::ErrorMessage>
where
    T::Type: IsA<NvEncoderObj>,
{
    imp.obj().upcast_ref::<NvEncoderObj>().imp().start()
}

/// A codec element's `VideoEncoderImpl::handle_frame`: the base's (see [`NvEncoderImpl`]).
pub fn handle_frame<T: NvEncoderImpl>(
    imp: &T,
    frame: gst_video::VideoCodecFrame,
) -> Result<gst::FlowSuccess, gst::FlowError>
where
    T::Type: IsA<NvEncoderObj>,
{
    imp.obj()
        .upcast_ref::<NvEncoderObj>()
        .imp()
        .handle_frame(frame)
}

/// A codec element's `ObjectImpl::set_property` for its [`settings::codec_properties`].
pub fn set_property<T: NvEncoderImpl>(imp: &T, value: &glib::Value, pspec: &glib::ParamSpec)
where
    T::Type: IsA<NvEncoderObj>,
{
    let obj = imp.obj();
    obj.upcast_ref::<NvEncoderObj>()
        .imp()
        .settings()
        .set_property(pspec.name(), value);
}

/// A codec element's `ObjectImpl::property` for its [`settings::codec_properties`].
pub fn property<T: NvEncoderImpl>(imp: &T, pspec: &glib::ParamSpec) -> glib::Value
where
    T::Type: IsA<NvEncoderObj>,
{
    let obj = imp.obj();
    obj.upcast_ref::<NvEncoderObj>()
        .imp()
        .settings()
        .property(pspec.name())
}

/// Marks the base type and every enum of the properties as plugin API (documented with the
/// plugin, not as elements of their own).
pub fn mark_plugin_api() {
    use gst::PluginAPIFlags as F;
    NvEncoderObj::static_type().mark_as_plugin_api(F::empty());
    settings::Preset::static_type().mark_as_plugin_api(F::empty());
    settings::Tune::static_type().mark_as_plugin_api(F::empty());
    settings::RcMode::static_type().mark_as_plugin_api(F::empty());
    settings::RateControl::static_type().mark_as_plugin_api(F::empty());
    settings::MultiPass::static_type().mark_as_plugin_api(F::empty());
    settings::BRefMode::static_type().mark_as_plugin_api(F::empty());
    settings::SplitEncodeMode::static_type().mark_as_plugin_api(F::empty());
    settings::LookaheadLevel::static_type().mark_as_plugin_api(F::empty());
    settings::TemporalFilterLevel::static_type().mark_as_plugin_api(F::empty());
    settings::CcInsert::static_type().mark_as_plugin_api(F::empty());
}
