// SPDX-License-Identifier: MPL-2.0
//! Caps colorimetry to the ISO/IEC 23091-4 codes NVENC's VUI and AV1 colour config take.

/// (colour primaries, transfer characteristics, matrix coefficients, full range) as
/// ISO/IEC 23091-4 / ITU-T H.273 code points; `None` if the caps say nothing useful.
///
/// Packed RGB and VUYA input is converted to 4:2:0 YUV by NVENC itself, with the matrix and
/// range the VUI names: those streams say BT.709, limited range (1, 1, 1, false), as nvcodec's
/// do, whatever the input colorimetry (an sRGB matrix would describe RGB, not what is coded).
/// Planar GBR is coded as three 4:4:4 planes with the identity matrix, full range.
pub fn iso_colour(info: &gst_video::VideoInfo) -> Option<(u32, u32, u32, bool)> {
    if matches!(info.format(), gst_video::VideoFormat::Gbr) {
        // Coded as RGB itself: identity matrix (0), sRGB transfer, full range.
        return Some((1, 13, 0, true));
    }
    if converted_by_nvenc(info) {
        return Some((1, 1, 1, false));
    }
    let c = info.colorimetry();
    let p = c.primaries().to_iso();
    let t = c.transfer().to_iso();
    let m = c.matrix().to_iso();
    if p == 0 && t == 0 && m == 0 {
        return None;
    }
    // 2 = "unspecified" in H.273 for each of the three.
    let nz = |v: u32| if v == 0 { 2 } else { v };
    Some((
        nz(p),
        nz(t),
        nz(m),
        c.range() == gst_video::VideoColorRange::Range0_255,
    ))
}

/// Packed RGB and VUYA input, which NVENC converts to 4:2:0 YUV itself (planar GBR is coded as
/// it is).
pub fn converted_by_nvenc(info: &gst_video::VideoInfo) -> bool {
    (info.is_rgb() && info.format() != gst_video::VideoFormat::Gbr)
        || info.format() == gst_video::VideoFormat::Vuya
}

/// Writes the colour description of `info` (see [`iso_colour`]) into an H.264/H.265 VUI; leaves
/// it untouched when the caps say nothing useful.
pub fn set_vui(
    v: &mut crate::nvenc::ffi::NV_ENC_CONFIG_H264_VUI_PARAMETERS,
    info: &gst_video::VideoInfo,
) {
    if let Some((pr, tr, mx, full)) = iso_colour(info) {
        v.videoSignalTypePresentFlag = 1;
        v.videoFormat = crate::nvenc::ffi::NV_ENC_VUI_VIDEO_FORMAT_UNSPECIFIED;
        v.videoFullRangeFlag = full as u32;
        v.colourDescriptionPresentFlag = 1;
        v.colourPrimaries = pr;
        v.transferCharacteristics = tr;
        v.colourMatrix = mx;
    }
}
