// SPDX-License-Identifier: MPL-2.0
//! Changes the running session takes without a new one (issue 12): what a new input format
//! asks of it. Pure; `imp.rs` applies the answer with `nvEncReconfigureEncoder`.
//!
//! `nvEncodeAPI.h` (`NvEncReconfigureEncoder`): reconfiguration cannot change the GOP
//! structure, sync/async mode, `maxEncodeWidth/Height` or the picture-type decision mode;
//! "Resolution change is possible only if maxEncodeWidth & maxEncodeHeight of
//! NV_ENC_INITIALIZE_PARAMS is set while creating encoder session". What NVENC codes at a new
//! size, per codec: H.264 and H.265 need a new SPS (and PPS), which only an IDR may bring, so
//! the change is sent with `forceIDR` and the stream goes on with an IDR carrying the new
//! parameter sets; for AV1 the element does the same (a key frame with a new sequence header;
//! whether NVENC could code a frame-size override without a key frame is not documented).
//! A new frame rate or aspect ratio changes no parameter set the decoder needs again: no IDR.

use crate::encoder::config::GpuCaps;
use crate::encoder::metadata::Hdr10;
use crate::encoder::{CodecOps, SessionParams};
use crate::nvenc::api::NvEncError;
use crate::nvenc::ffi;

/// What a new input format asks of the running session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapsChange {
    /// Nothing NVENC is told about (e.g. a caps field it does not read).
    Nothing,
    /// Frame rate and/or pixel aspect ratio: `nvEncReconfigureEncoder`, no IDR.
    Rate,
    /// New parameter sets: a new encode size within the session's `maxEncodeWidth/Height`
    /// (and the GPU reports `NV_ENC_CAPS_SUPPORT_DYN_RES_CHANGE`), display size or colour
    /// description: drain, then `nvEncReconfigureEncoder` with an IDR.
    Size,
    /// Format, bit depth, interlacing, HDR metadata, or a size beyond the maximum: drain and a
    /// new session.
    Session,
}

/// One side of a caps change: the input's video info and HDR10 metadata, and the encode size
/// it gives (`CodecOps::encode_size`).
pub struct Input<'a> {
    pub info: &'a gst_video::VideoInfo,
    pub hdr: Hdr10,
    pub encode_size: (u32, u32),
}

impl<'a> Input<'a> {
    /// `info` with its HDR10 metadata, coded at the codec's encode size for it.
    pub fn new(info: &'a gst_video::VideoInfo, hdr: Hdr10, ops: &dyn CodecOps) -> Self {
        let encode_size = ops.encode_size(info.width(), info.height());
        Input {
            info,
            hdr,
            encode_size,
        }
    }
}

/// The running session's parameters for new input `info` (its encode size).
pub fn params_for(
    running: &SessionParams,
    info: &gst_video::VideoInfo,
    ops: &dyn CodecOps,
) -> SessionParams {
    let mut params = running.clone();
    params.info = info.clone();
    (params.encode_width, params.encode_height) = ops.encode_size(info.width(), info.height());
    params
}

/// Whether the running config `old` may become `new` in the session as far as the
/// rate-control mode goes: a new mode needs `NV_ENC_CAPS_SUPPORT_DYN_RCMODE_CHANGE`.
pub fn check_rc_mode(
    old: &ffi::NV_ENC_CONFIG,
    new: &ffi::NV_ENC_CONFIG,
    caps: &GpuCaps,
) -> Result<(), NvEncError> {
    let (a, b) = (old.rcParams.rateControlMode, new.rcParams.rateControlMode);
    if a != b && !caps.dyn_rc_mode_change {
        return Err(NvEncError::Other(format!(
            "rate control mode {a:#x} -> {b:#x}: the GPU reports no NV_ENC_CAPS_SUPPORT_DYN_RCMODE_CHANGE"
        )));
    }
    Ok(())
}

/// A force-key-unit event's `all-headers` (upstream or downstream); `None` for any other event.
pub fn key_unit_all_headers(event: &gst::Event) -> Option<bool> {
    if let Ok(e) = gst_video::UpstreamForceKeyUnitEvent::parse(event) {
        return Some(e.all_headers);
    }
    gst_video::DownstreamForceKeyUnitEvent::parse(event)
        .ok()
        .map(|e| e.all_headers)
}

/// How a forced key unit is coded: an intra-refresh wave of this many pictures where
/// `key-unit-intra-refresh` is on, intra refresh configured (`intra_refresh`:
/// (period, count) of the session) and no B-frames ("forceIntraRefreshWithFrameCnt cannot be
/// used if B frames are used in the GOP structure", nvEncodeAPI.h), else `None` (an IDR).
pub fn intra_refresh_wave(
    opted_in: bool,
    intra_refresh: Option<(u32, u32)>,
    frame_interval_p: u32,
) -> Option<u32> {
    let (_, count) = intra_refresh?;
    (opted_in && frame_interval_p <= 1 && count > 0).then_some(count)
}

/// The picture flags of a forced key unit: an IDR with parameter sets, or (`wave`) an
/// intra-refresh wave, with the parameter sets where `all_headers` asked for them.
pub fn force_key_unit(
    pic: &mut ffi::NV_ENC_PIC_PARAMS,
    codec: crate::nvenc::api::Codec,
    wave: Option<u32>,
    all_headers: bool,
) {
    match wave {
        Some(n) => {
            pic.codecPicParams
                .set_force_intra_refresh(codec == crate::nvenc::api::Codec::H264, n);
            if all_headers {
                pic.encodePicFlags |= ffi::NV_ENC_PIC_FLAG_OUTPUT_SPSPPS;
            }
        }
        None => {
            pic.encodePicFlags |=
                ffi::NV_ENC_PIC_FLAG_FORCEIDR | ffi::NV_ENC_PIC_FLAG_OUTPUT_SPSPPS;
        }
    }
}

/// What going from `old` to `new` needs of a session initialised with `max` as
/// `maxEncodeWidth/Height`; `dyn_res`: the GPU's `NV_ENC_CAPS_SUPPORT_DYN_RES_CHANGE`.
pub fn classify(old: &Input, new: &Input, max: (u32, u32), dyn_res: bool) -> CapsChange {
    let (a, b) = (old.info, new.info);
    let same_kind = a.format() == b.format()
        && a.interlace_mode() == b.interlace_mode()
        && a.field_order() == b.field_order()
        && a.multiview_mode() == b.multiview_mode()
        && old.hdr == new.hdr;
    if !same_kind {
        return CapsChange::Session;
    }
    let resized = old.encode_size != new.encode_size;
    let fits = new.encode_size.0 <= max.0 && new.encode_size.1 <= max.1;
    if resized && !(fits && dyn_res) {
        return CapsChange::Session;
    }
    // New parameter sets: a new size, a new display size (the cropping of an odd size coded
    // even), or new colour description (VUI / sequence header colour config; GStreamer's
    // default colorimetry follows the size, so a size step often brings one).
    if resized
        || (a.width(), a.height()) != (b.width(), b.height())
        || a.colorimetry() != b.colorimetry()
        || a.chroma_site() != b.chroma_site()
    {
        return CapsChange::Size;
    }
    if a.fps() != b.fps() || a.par() != b.par() {
        return CapsChange::Rate;
    }
    CapsChange::Nothing
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(w: u32, h: u32, fps: i32, fmt: gst_video::VideoFormat) -> gst_video::VideoInfo {
        gst_video::VideoInfo::builder(fmt, w, h)
            .fps(gst::Fraction::new(fps, 1))
            .build()
            .unwrap()
    }

    fn input(i: &gst_video::VideoInfo) -> Input<'_> {
        Input {
            info: i,
            hdr: Hdr10::default(),
            encode_size: (i.width(), i.height()),
        }
    }

    #[test]
    fn what_each_caps_change_needs() {
        gst::init().unwrap();
        use gst_video::VideoFormat::{Nv12, P01010le};
        let hd = info(1280, 720, 30, Nv12);
        let max = (1280, 720);
        let c = |new: &gst_video::VideoInfo, max, dyn_res| {
            classify(&input(&hd), &input(new), max, dyn_res)
        };
        assert_eq!(c(&hd, max, true), CapsChange::Nothing);
        assert_eq!(c(&info(1280, 720, 15, Nv12), max, true), CapsChange::Rate);
        assert_eq!(c(&info(960, 540, 30, Nv12), max, true), CapsChange::Size);
        assert_eq!(
            c(&info(960, 540, 30, Nv12), max, false),
            CapsChange::Session,
            "the GPU cannot change the size"
        );
        assert_eq!(
            c(&info(1920, 1080, 30, Nv12), max, true),
            CapsChange::Session,
            "beyond the maximum"
        );
        assert_eq!(
            c(&info(1920, 1080, 30, Nv12), (1920, 1080), true),
            CapsChange::Size
        );
        assert_eq!(
            c(&info(1280, 720, 30, P01010le), max, true),
            CapsChange::Session,
            "new bit depth"
        );
        let interlaced = gst_video::VideoInfo::builder(Nv12, 1280, 720)
            .fps(gst::Fraction::new(30, 1))
            .interlace_mode(gst_video::VideoInterlaceMode::Interleaved)
            .build()
            .unwrap();
        assert_eq!(c(&interlaced, max, true), CapsChange::Session);
    }
}
