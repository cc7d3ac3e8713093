// SPDX-License-Identifier: MPL-2.0
//! Caps colorimetry to the ISO/IEC 23091-4 codes NVENC's VUI and AV1 colour config take.

/// (colour primaries, transfer characteristics, matrix coefficients, full range) as
/// ISO/IEC 23091-4 / ITU-T H.273 code points; `None` if the caps say nothing useful.
pub fn iso_colour(info: &gst_video::VideoInfo) -> Option<(u32, u32, u32, bool)> {
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
