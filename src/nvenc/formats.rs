// SPDX-License-Identifier: MPL-2.0
//! GStreamer raw video formats as NVENC takes them: the `NV_ENC_BUFFER_FORMAT` of each, and the
//! geometry of its planes in an NVENC input surface. Written once here, for the sink caps probe,
//! the session, the CPU copy and the device uploads.

use gst_video::VideoFormat as F;

use super::ffi;

/// How NVENC takes one raw video format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputFormat {
    /// `NV_ENC_BUFFER_FORMAT_*`.
    pub buffer_format: u32,
    /// Bits per sample NVENC codes (8 or 10).
    pub bit_depth: u32,
    /// Coded as 4:4:4 (else 4:2:0).
    pub chroma_444: bool,
}

/// The NVENC input format of `format`; `None` for a format NVENC cannot take.
pub fn input_format(format: gst_video::VideoFormat) -> Option<InputFormat> {
    let (buffer_format, bit_depth, chroma_444) = match format {
        F::Nv12 => (ffi::NV_ENC_BUFFER_FORMAT_NV12, 8, false),
        // Three planes, chroma at half the luma pitch ([`surface_planes`]).
        F::I420 => (ffi::NV_ENC_BUFFER_FORMAT_IYUV, 8, false),
        F::Yv12 => (ffi::NV_ENC_BUFFER_FORMAT_YV12, 8, false),
        F::P01010le => (ffi::NV_ENC_BUFFER_FORMAT_YUV420_10BIT, 10, false),
        F::Y444 => (ffi::NV_ENC_BUFFER_FORMAT_YUV444, 8, true),
        // 16-bit samples, the 10 significant bits at the top, as NVENC reads them.
        F::Y44416le => (ffi::NV_ENC_BUFFER_FORMAT_YUV444_10BIT, 10, true),
        // Planar G, B, R coded as three 4:4:4 planes with the identity matrix (VUI).
        F::Gbr => (ffi::NV_ENC_BUFFER_FORMAT_YUV444, 8, true),
        // A2B10G10R10 words, R in the lowest bits: NVENC converts to 10-bit 4:2:0.
        F::Rgb10a2Le => (ffi::NV_ENC_BUFFER_FORMAT_ABGR10, 10, false),
        F::Vuya => (ffi::NV_ENC_BUFFER_FORMAT_AYUV, 8, false),
        F::Rgba | F::Rgbx => (ffi::NV_ENC_BUFFER_FORMAT_ABGR, 8, false),
        F::Bgra | F::Bgrx => (ffi::NV_ENC_BUFFER_FORMAT_ARGB, 8, false),
        _ => return None,
    };
    Some(InputFormat {
        buffer_format,
        bit_depth,
        chroma_444,
    })
}

/// Formats NVENC can read from CUDA device memory (`NV_ENC_INPUT_RESOURCE_TYPE_CUDADEVICEPTR`):
/// one plane, or NV12/P010 with the chroma plane right below the luma plane.
pub const DEVICE_FORMATS: &[gst_video::VideoFormat] = &[
    F::Nv12,
    F::P01010le,
    F::Vuya,
    F::Rgba,
    F::Rgbx,
    F::Bgra,
    F::Bgrx,
    F::Rgb10a2Le,
];

/// One plane of a picture in an NVENC surface, in bytes and rows: (row bytes, source rows,
/// surface rows). The surface may have one row more than the picture (H.26x 4:2:0 with an odd
/// height), filled by repeating the last row.
pub type Plane = (usize, usize, usize);

/// The planes of one picture (at most three), without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planes {
    len: usize,
    planes: [Plane; 3],
}

impl std::ops::Deref for Planes {
    type Target = [Plane];
    fn deref(&self) -> &[Plane] {
        &self.planes[..self.len]
    }
}

/// The planes of a `width` x `height` picture of `format` in an NVENC surface of `surface_rows`
/// luma rows (the encode height), one after the other at the surface pitch.
pub fn planes(
    format: gst_video::VideoFormat,
    width: u32,
    height: u32,
    surface_rows: u32,
) -> Planes {
    let (w, h, eh) = (width as usize, height as usize, surface_rows as usize);
    let chroma_rows = (h.div_ceil(2), eh.div_ceil(2));
    let (len, planes) = match format {
        F::Nv12 => (
            2,
            [
                (w, h, eh),
                (w.div_ceil(2) * 2, chroma_rows.0, chroma_rows.1),
                (0, 0, 0),
            ],
        ),
        F::P01010le => (
            2,
            [
                (2 * w, h, eh),
                (4 * w.div_ceil(2), chroma_rows.0, chroma_rows.1),
                (0, 0, 0),
            ],
        ),
        // Y, then U and V (I420) or V and U (YV12): GStreamer's plane order is NVENC's.
        F::I420 | F::Yv12 => {
            let chroma = (w.div_ceil(2), chroma_rows.0, chroma_rows.1);
            (3, [(w, h, eh), chroma, chroma])
        }
        F::Y444 | F::Gbr => (3, [(w, h, eh); 3]),
        F::Y44416le => (3, [(2 * w, h, eh); 3]),
        // Packed, 4 bytes a pixel.
        _ => (1, [(4 * w, h, eh), (0, 0, 0), (0, 0, 0)]),
    };
    Planes { len, planes }
}

/// Where each plane of `format` starts in an NVENC input buffer (`nvEncLockInputBuffer`) of
/// `pitch` bytes a row and `surface_rows` luma rows, and the plane's own pitch, in bytes:
/// (offset, pitch) for up to three planes, one after the other. The chroma planes of IYUV and
/// YV12 (I420, YV12) have half the luma pitch, as nvEncodeAPI.h lays them out; every other
/// format's planes have the luma pitch and `surface_rows` rows each (chroma of NV12/P010:
/// half the rows, after the luma rows).
pub fn surface_planes(
    format: gst_video::VideoFormat,
    pitch: usize,
    surface_rows: u32,
) -> [(usize, usize); 3] {
    let eh = surface_rows as usize;
    match format {
        F::I420 | F::Yv12 => {
            let (cp, luma) = (pitch / 2, pitch * eh);
            let chroma = cp * eh.div_ceil(2);
            [(0, pitch), (luma, cp), (luma + chroma, cp)]
        }
        _ => [(0, pitch), (pitch * eh, pitch), (2 * pitch * eh, pitch)],
    }
}

/// The size of a pitched device surface holding a [`DEVICE_FORMATS`] picture coded
/// `width` x `height`: (row bytes, rows), the chroma plane of NV12/P010 below the luma plane.
pub fn device_surface_size(
    format: gst_video::VideoFormat,
    width: u32,
    height: u32,
) -> (usize, usize) {
    let p = planes(format, width, height, height);
    let row_bytes = p.iter().map(|x| x.0).max().unwrap_or(0);
    let rows = p.iter().map(|x| x.2).sum();
    (row_bytes, rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plane_geometry() {
        // Odd height coded one row taller (H.26x 4:2:0).
        assert_eq!(
            &*planes(F::Nv12, 721, 405, 406),
            &[(721, 405, 406), (722, 203, 203)]
        );
        assert_eq!(
            &*planes(F::P01010le, 720, 405, 405),
            &[(1440, 405, 405), (1440, 203, 203)]
        );
        assert_eq!(planes(F::Y444, 64, 32, 32).len(), 3);
        assert_eq!(&*planes(F::Y44416le, 64, 32, 32), &[(128, 32, 32); 3]);
        assert_eq!(&*planes(F::Bgra, 64, 32, 32), &[(256, 32, 32)]);
        assert_eq!(
            &*planes(F::I420, 721, 405, 406),
            &[(721, 405, 406), (361, 203, 203), (361, 203, 203)]
        );
        assert_eq!(
            surface_planes(F::Yv12, 768, 406),
            [(0, 768), (768 * 406, 384), (768 * 406 + 384 * 203, 384)]
        );
        assert_eq!(
            surface_planes(F::Nv12, 768, 406),
            [(0, 768), (768 * 406, 768), (2 * 768 * 406, 768)]
        );
        assert_eq!(device_surface_size(F::Nv12, 721, 406), (722, 406 + 203));
        assert_eq!(device_surface_size(F::P01010le, 720, 406), (1440, 609));
        assert_eq!(device_surface_size(F::Rgba, 720, 405), (2880, 405));
    }

    #[test]
    fn input_formats() {
        let f = input_format(F::P01010le).unwrap();
        assert_eq!((f.bit_depth, f.chroma_444), (10, false));
        assert!(input_format(F::Gbr).unwrap().chroma_444);
        // I420 was refused before issue 14 asked for NVENC's IYUV; YUY2 NVENC does not take.
        assert_eq!(
            input_format(F::I420).map(|f| f.buffer_format),
            Some(ffi::NV_ENC_BUFFER_FORMAT_IYUV)
        );
        assert_eq!(input_format(F::Yuy2), None);
        assert!(DEVICE_FORMATS.iter().all(|f| input_format(*f).is_some()));
    }
}
