//! H.264 sequence parameter set parsing and the ISO-BMFF
//! `AVCDecoderConfigurationRecord` (`avcC`, GStreamer `codec_data` for
//! `video/x-h264, stream-format=avc` and `avc3`).
//!
//! No `unsafe`, never panics: malformed input yields an [`AvcError`]. The RBSP
//! is read with the crate's one bit reader (`crate::bits`, on `bitstream-io`).
//!
//! NAL units passed to this module are single NAL units without start code
//! or length prefix, still containing emulation prevention bytes (as
//! [`super::nal::split_annexb`] returns them).
//!
//! References: ITU-T H.264 (08/2021) §7.3.1 NAL unit header, §7.3.2.1.1
//! `seq_parameter_set_data()`, §7.3.2.1.1.1 `scaling_list()`, §7.4.2.1.1
//! (cropping, `SubWidthC`/`SubHeightC` from Table 6-1); ISO/IEC 14496-15
//! §5.3.3.1 `AVCDecoderConfigurationRecord`.

use super::nal::unescape;
use crate::bits::{self, BitError};

/// The bit reader of this module, failing with [`AvcError`].
type BitReader<'a> = bits::BitReader<'a, AvcError>;

const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;

/// Errors returned by the H.264 helpers in this module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AvcError {
    /// The NAL unit ended before the named syntax element could be read.
    #[error("H.264 NAL truncated while reading {0}")]
    Truncated(&'static str),
    /// The NAL unit header is malformed (empty, or `forbidden_zero_bit` set).
    #[error("invalid H.264 NAL unit header")]
    InvalidNalHeader,
    /// The NAL unit has another `nal_unit_type` than the one required.
    #[error("H.264 NAL type {found} where type {expected} was expected")]
    WrongNalType {
        /// The required `nal_unit_type`.
        expected: u8,
        /// The `nal_unit_type` found.
        found: u8,
    },
    /// A syntax element is outside its allowed range; names the element.
    #[error("invalid H.264 value for {0}")]
    InvalidValue(&'static str),
    /// No NAL unit of the named kind (`"SPS"`, `"PPS"`) was given.
    #[error("no H.264 {0} given")]
    MissingParameterSet(&'static str),
    /// Too many NAL units (> 31 SPS, > 255 PPS) or a NAL unit too long
    /// (> 65535 bytes) for the fields of `avcC`; names the field.
    #[error("too large for avcC field {0}")]
    TooLarge(&'static str),
    /// The NAL length size is not 1, 2 or 4 bytes.
    #[error("invalid NAL length size {0} (must be 1, 2 or 4)")]
    InvalidLengthSize(u8),
}

impl From<BitError> for AvcError {
    fn from(e: BitError) -> Self {
        match e {
            BitError::Truncated(what) => AvcError::Truncated(what),
            BitError::InvalidValue(what) => AvcError::InvalidValue(what),
        }
    }
}

/// Fields of an H.264 sequence parameter set (H.264 §7.3.2.1.1) needed for
/// caps and `avcC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AvcSpsInfo {
    /// `profile_idc` (66 Baseline, 77 Main, 100 High, 110 High 10,
    /// 244 High 4:4:4 Predictive, ...).
    pub profile_idc: u8,
    /// The byte after `profile_idc`: `constraint_set0_flag` (MSB) ..
    /// `constraint_set5_flag`, `reserved_zero_2bits`; `avcC`'s
    /// `profile_compatibility`.
    pub constraint_flags: u8,
    /// `level_idc` (10 x level number; 9 = level 1b).
    pub level_idc: u8,
    /// `seq_parameter_set_id` (0..=31).
    pub sps_id: u32,
    /// `chroma_format_idc` (1 = 4:2:0 when absent, i.e. for profiles without
    /// the high-profile syntax).
    pub chroma_format_idc: u8,
    /// `bit_depth_luma_minus8 + 8` (8 when absent).
    pub bit_depth_luma: u8,
    /// `bit_depth_chroma_minus8 + 8` (8 when absent).
    pub bit_depth_chroma: u8,
    /// `frame_mbs_only_flag`.
    pub frame_mbs_only: bool,
    /// Coded width in luma samples (`(pic_width_in_mbs_minus1 + 1) * 16`).
    pub coded_width: u32,
    /// Coded height in luma samples (frame MBs, counting both fields when
    /// `frame_mbs_only_flag` is 0).
    pub coded_height: u32,
    /// Display width: coded width minus the frame cropping.
    pub width: u32,
    /// Display height: coded height minus the frame cropping.
    pub height: u32,
}

/// Whether `profile_idc` carries the high-profile SPS fields
/// (`chroma_format_idc`, bit depths, scaling matrices; H.264 §7.3.2.1.1).
pub fn has_high_profile_syntax(profile_idc: u8) -> bool {
    matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    )
}

/// Checks the one-byte NAL unit header and returns the RBSP after it.
fn rbsp_of(nal: &[u8], expected: u8) -> Result<Vec<u8>, AvcError> {
    let first = *nal.first().ok_or(AvcError::InvalidNalHeader)?;
    if first & 0x80 != 0 {
        return Err(AvcError::InvalidNalHeader);
    }
    let found = first & 0x1f;
    if found != expected {
        return Err(AvcError::WrongNalType { expected, found });
    }
    let mut rbsp = unescape(nal);
    rbsp.remove(0);
    Ok(rbsp)
}

/// `scaling_list(sizeOfScalingList)` (H.264 §7.3.2.1.1.1), values discarded.
fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Result<(), AvcError> {
    let (mut last, mut next) = (8i64, 8i64);
    for _ in 0..size {
        if next != 0 {
            let delta = r.se("delta_scale")?;
            if !(-128..=127).contains(&delta) {
                return Err(AvcError::InvalidValue("delta_scale"));
            }
            next = (last + delta + 256) % 256;
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

/// Parses an H.264 sequence parameter set NAL unit (H.264 §7.3.2.1.1) up to
/// the frame cropping (the VUI is not read).
///
/// # Errors
/// [`AvcError::InvalidNalHeader`], [`AvcError::WrongNalType`] (not type 7),
/// [`AvcError::Truncated`], [`AvcError::InvalidValue`] for values outside
/// their H.264 range (e.g. `chroma_format_idc > 3`, bit depth > 14, a
/// cropping larger than the picture).
pub fn parse_sps(nal: &[u8]) -> Result<AvcSpsInfo, AvcError> {
    let rbsp = rbsp_of(nal, NAL_SPS)?;
    let r = &mut BitReader::new(&rbsp);
    let profile_idc = r.bits_u8(8, "profile_idc")?;
    let constraint_flags = r.bits_u8(8, "constraint_set flags")?;
    let level_idc = r.bits_u8(8, "level_idc")?;
    let sps_id = r.ue_max(31, "seq_parameter_set_id")?;
    let (mut chroma_format_idc, mut bit_depth_luma, mut bit_depth_chroma) = (1u8, 8u8, 8u8);
    let mut separate_colour_plane = false;
    if has_high_profile_syntax(profile_idc) {
        chroma_format_idc = r.ue_max(3, "chroma_format_idc")? as u8;
        if chroma_format_idc == 3 {
            separate_colour_plane = r.flag("separate_colour_plane_flag")?;
        }
        bit_depth_luma = r.ue_max(6, "bit_depth_luma_minus8")? as u8 + 8;
        bit_depth_chroma = r.ue_max(6, "bit_depth_chroma_minus8")? as u8 + 8;
        r.skip(1, "qpprime_y_zero_transform_bypass_flag")?;
        if r.flag("seq_scaling_matrix_present_flag")? {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.flag("seq_scaling_list_present_flag")? {
                    skip_scaling_list(r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.ue_max(12, "log2_max_frame_num_minus4")?;
    match r.ue_max(2, "pic_order_cnt_type")? {
        0 => {
            r.ue_max(12, "log2_max_pic_order_cnt_lsb_minus4")?;
        }
        1 => {
            r.skip(1, "delta_pic_order_always_zero_flag")?;
            r.skip_se("offset_for_non_ref_pic")?;
            r.skip_se("offset_for_top_to_bottom_field")?;
            let n = r.ue_max(255, "num_ref_frames_in_pic_order_cnt_cycle")?;
            for _ in 0..n {
                r.skip_se("offset_for_ref_frame")?;
            }
        }
        _ => {}
    }
    r.ue("max_num_ref_frames")?;
    r.skip(1, "gaps_in_frame_num_value_allowed_flag")?;
    let width_mbs = r.ue_max(1023, "pic_width_in_mbs_minus1")? + 1;
    let height_map_units = r.ue_max(1023, "pic_height_in_map_units_minus1")? + 1;
    let frame_mbs_only = r.flag("frame_mbs_only_flag")?;
    if !frame_mbs_only {
        r.skip(1, "mb_adaptive_frame_field_flag")?;
    }
    r.skip(1, "direct_8x8_inference_flag")?;
    let coded_width = width_mbs * 16;
    let coded_height = height_map_units * 16 * if frame_mbs_only { 1 } else { 2 };
    let (mut width, mut height) = (coded_width, coded_height);
    if r.flag("frame_cropping_flag")? {
        // CropUnitX/Y (H.264 §7.4.2.1.1): ChromaArrayType 0 (monochrome or separate planes)
        // crops in luma samples, else in SubWidthC x SubHeightC units.
        let chroma_array_type = if separate_colour_plane {
            0
        } else {
            chroma_format_idc
        };
        let (sub_w, sub_h) = match chroma_array_type {
            1 => (2, 2),
            2 => (2, 1),
            _ => (1, 1),
        };
        let field = if frame_mbs_only { 1 } else { 2 };
        let (unit_x, unit_y) = (sub_w, sub_h * field);
        let left = r.ue("frame_crop_left_offset")?;
        let right = r.ue("frame_crop_right_offset")?;
        let top = r.ue("frame_crop_top_offset")?;
        let bottom = r.ue("frame_crop_bottom_offset")?;
        let crop_w = left
            .checked_add(right)
            .and_then(|c| c.checked_mul(unit_x))
            .filter(|c| *c < coded_width)
            .ok_or(AvcError::InvalidValue("frame_crop_left/right_offset"))?;
        let crop_h = top
            .checked_add(bottom)
            .and_then(|c| c.checked_mul(unit_y))
            .filter(|c| *c < coded_height)
            .ok_or(AvcError::InvalidValue("frame_crop_top/bottom_offset"))?;
        width -= crop_w;
        height -= crop_h;
    }
    Ok(AvcSpsInfo {
        profile_idc,
        constraint_flags,
        level_idc,
        sps_id,
        chroma_format_idc,
        bit_depth_luma,
        bit_depth_chroma,
        frame_mbs_only,
        coded_width,
        coded_height,
        width,
        height,
    })
}

/// Builds an `AVCDecoderConfigurationRecord` (ISO/IEC 14496-15 §5.3.3.1),
/// the payload of the `avcC` box and GStreamer's `codec_data` for
/// `video/x-h264, stream-format=avc` (and `avc3`).
///
/// `sps`, `pps` are NAL units (header byte included, emulation prevention
/// bytes kept, no start code). `AVCProfileIndication`,
/// `profile_compatibility` and `AVCLevelIndication` come from the first SPS,
/// `lengthSizeMinusOne` is `length_size - 1`. With `with_parameter_sets`
/// false (GStreamer's `avc3`, whose parameter sets travel in band, as
/// `h264parse` writes it) both arrays are empty but the SPS still gives the
/// header fields.
///
/// For every profile but Baseline (66), Main (77) and Extended (88) the
/// record ends with the extension the standard defines for the High
/// profiles: `chroma_format`, `bit_depth_luma_minus8`,
/// `bit_depth_chroma_minus8` (from the first SPS) and
/// `numOfSequenceParameterSetExt = 0`, each with its reserved `1` bits. The
/// standard names profile_idc 100, 110, 122 and 144; FFmpeg (`ff_isom_write_avcc`)
/// and GStreamer 1.24+ `h264parse` write it for any profile other than
/// 66/77/88, High 4:4:4 Predictive (244) included, and so does this.
///
/// # Errors
/// [`AvcError::InvalidLengthSize`] unless `length_size` is 1, 2 or 4;
/// [`AvcError::MissingParameterSet`] if `sps` is empty, or `pps` is empty
/// while `with_parameter_sets`; [`AvcError::WrongNalType`] /
/// [`AvcError::InvalidNalHeader`] if a NAL unit is not of its list's type;
/// errors of [`parse_sps`] for the first SPS; [`AvcError::TooLarge`] for a
/// NAL unit over 65535 bytes, over 31 SPS or over 255 PPS.
pub fn build_avcc(
    sps: &[&[u8]],
    pps: &[&[u8]],
    length_size: u8,
    with_parameter_sets: bool,
) -> Result<Vec<u8>, AvcError> {
    if !matches!(length_size, 1 | 2 | 4) {
        return Err(AvcError::InvalidLengthSize(length_size));
    }
    let first = *sps.first().ok_or(AvcError::MissingParameterSet("SPS"))?;
    if with_parameter_sets && pps.is_empty() {
        return Err(AvcError::MissingParameterSet("PPS"));
    }
    for (nals, t) in [(sps, NAL_SPS), (pps, NAL_PPS)] {
        for nal in nals {
            let b = *nal.first().ok_or(AvcError::InvalidNalHeader)?;
            if b & 0x80 != 0 {
                return Err(AvcError::InvalidNalHeader);
            }
            if b & 0x1f != t {
                return Err(AvcError::WrongNalType {
                    expected: t,
                    found: b & 0x1f,
                });
            }
        }
    }
    let info = parse_sps(first)?;
    let (sps, pps): (&[&[u8]], &[&[u8]]) = if with_parameter_sets {
        (sps, pps)
    } else {
        (&[], &[])
    };
    if sps.len() > 31 {
        return Err(AvcError::TooLarge("numOfSequenceParameterSets"));
    }
    let num_pps =
        u8::try_from(pps.len()).map_err(|_| AvcError::TooLarge("numOfPictureParameterSets"))?;
    let mut out = Vec::with_capacity(
        11 + sps
            .iter()
            .chain(pps.iter())
            .map(|n| n.len() + 2)
            .sum::<usize>(),
    );
    out.push(1); // configurationVersion
    out.push(info.profile_idc); // AVCProfileIndication
    out.push(info.constraint_flags); // profile_compatibility
    out.push(info.level_idc); // AVCLevelIndication
    out.push(0xfc | (length_size - 1)); // reserved '111111', lengthSizeMinusOne
    out.push(0xe0 | sps.len() as u8); // reserved '111', numOfSequenceParameterSets
    let put = |out: &mut Vec<u8>, nal: &[u8]| -> Result<(), AvcError> {
        let len = u16::try_from(nal.len()).map_err(|_| AvcError::TooLarge("NALUnitLength"))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(nal);
        Ok(())
    };
    for nal in sps {
        put(&mut out, nal)?;
    }
    out.push(num_pps);
    for nal in pps {
        put(&mut out, nal)?;
    }
    if !matches!(info.profile_idc, 66 | 77 | 88) {
        out.push(0xfc | info.chroma_format_idc);
        out.push(0xf8 | (info.bit_depth_luma - 8));
        out.push(0xf8 | (info.bit_depth_chroma - 8));
        out.push(0); // numOfSequenceParameterSetExt
    }
    Ok(out)
}

/// What an `AVCDecoderConfigurationRecord` holds, as [`parse_avcc`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcC {
    /// `AVCProfileIndication`.
    pub profile_idc: u8,
    /// `profile_compatibility`.
    pub constraint_flags: u8,
    /// `AVCLevelIndication`.
    pub level_idc: u8,
    /// `lengthSizeMinusOne + 1`.
    pub length_size: u8,
    /// The SPS NAL units.
    pub sps: Vec<Vec<u8>>,
    /// The PPS NAL units.
    pub pps: Vec<Vec<u8>>,
    /// The High-profile extension: (`chroma_format`, bit depth luma, bit depth
    /// chroma), when present.
    pub high: Option<(u8, u8, u8)>,
}

/// Reads an `AVCDecoderConfigurationRecord` (ISO/IEC 14496-15 §5.3.3.1), for
/// checks. The reserved bits must be 1 and nothing may follow the record.
///
/// # Errors
/// [`AvcError::Truncated`] if the record ends early,
/// [`AvcError::InvalidValue`] for a wrong version, reserved bits, length
/// size or trailing bytes.
pub fn parse_avcc(data: &[u8]) -> Result<AvcC, AvcError> {
    fn take<'a>(
        data: &'a [u8],
        pos: &mut usize,
        n: usize,
        what: &'static str,
    ) -> Result<&'a [u8], AvcError> {
        let s = data
            .get(*pos..pos.saturating_add(n))
            .ok_or(AvcError::Truncated(what))?;
        *pos += n;
        Ok(s)
    }
    fn list(data: &[u8], pos: &mut usize, n: usize) -> Result<Vec<Vec<u8>>, AvcError> {
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            let l = take(data, pos, 2, "NALUnitLength")?;
            let len = usize::from(u16::from_be_bytes([l[0], l[1]]));
            v.push(take(data, pos, len, "NAL unit")?.to_vec());
        }
        Ok(v)
    }
    let mut pos = 0usize;
    let head = take(data, &mut pos, 6, "avcC header")?;
    if head[0] != 1 {
        return Err(AvcError::InvalidValue("configurationVersion"));
    }
    if head[4] & 0xfc != 0xfc || head[5] & 0xe0 != 0xe0 {
        return Err(AvcError::InvalidValue("avcC reserved bits"));
    }
    let length_size = (head[4] & 3) + 1;
    if length_size == 3 {
        return Err(AvcError::InvalidValue("lengthSizeMinusOne"));
    }
    let (profile_idc, constraint_flags, level_idc) = (head[1], head[2], head[3]);
    let sps = list(data, &mut pos, usize::from(head[5] & 0x1f))?;
    let num_pps = take(data, &mut pos, 1, "numOfPictureParameterSets")?[0];
    let pps = list(data, &mut pos, usize::from(num_pps))?;
    let high = match data.get(pos..).unwrap_or_default() {
        [] => None,
        [c, l, ch, 0] if c & 0xfc == 0xfc && l & 0xf8 == 0xf8 && ch & 0xf8 == 0xf8 => {
            Some((c & 3, (l & 7) + 8, (ch & 7) + 8))
        }
        _ => return Err(AvcError::InvalidValue("avcC extension or trailing bytes")),
    };
    Ok(AvcC {
        profile_idc,
        constraint_flags,
        level_idc,
        length_size,
        sps,
        pps,
        high,
    })
}

#[cfg(test)]
mod tests {
    use super::super::nal::{h264_nal_type, split_annexb};
    use super::*;

    fn sets(data: &[u8]) -> (Vec<&[u8]>, Vec<&[u8]>) {
        let nals = split_annexb(data);
        let of = |t| {
            nals.iter()
                .copied()
                .filter(|n| h264_nal_type(n) == t)
                .collect::<Vec<_>>()
        };
        (of(NAL_SPS), of(NAL_PPS))
    }

    /// (stream, FFmpeg's avcC, GStreamer 1.22 h264parse's codec_data, profile_idc, chroma)
    type Vector = (&'static [u8], &'static [u8], &'static [u8], u8, u8);
    const VECTORS: [Vector; 4] = [
        (
            include_bytes!("testdata/h264_420_baseline.h264"),
            include_bytes!("testdata/h264_420_baseline.ffmpeg.avcC"),
            include_bytes!("testdata/h264_420_baseline.gst.avcC"),
            66,
            1,
        ),
        (
            include_bytes!("testdata/h264_420_main.h264"),
            include_bytes!("testdata/h264_420_main.ffmpeg.avcC"),
            include_bytes!("testdata/h264_420_main.gst.avcC"),
            77,
            1,
        ),
        (
            include_bytes!("testdata/h264_420_high.h264"),
            include_bytes!("testdata/h264_420_high.ffmpeg.avcC"),
            include_bytes!("testdata/h264_420_high.gst.avcC"),
            100,
            1,
        ),
        (
            include_bytes!("testdata/h264_444_high444.h264"),
            include_bytes!("testdata/h264_444_high444.ffmpeg.avcC"),
            include_bytes!("testdata/h264_444_high444.gst.avcC"),
            244,
            3,
        ),
    ];

    #[test]
    fn real_x264_sps() {
        for (stream, _, _, profile, chroma) in VECTORS {
            let (sps, _) = sets(stream);
            let info = parse_sps(sps[0]).unwrap();
            assert_eq!(info.profile_idc, profile);
            assert_eq!(info.chroma_format_idc, chroma);
            assert_eq!((info.bit_depth_luma, info.bit_depth_chroma), (8, 8));
            assert_eq!(info.level_idc, 30);
            assert!(info.frame_mbs_only);
            assert_eq!((info.coded_width, info.coded_height), (720, 416));
            // 720x406 shown: 4:2:0 crops 10 rows in 2-row units, 4:4:4 in rows.
            assert_eq!((info.width, info.height), (720, 406), "profile {profile}");
        }
    }

    #[test]
    fn avcc_matches_ffmpeg_and_gstreamer() {
        for (stream, ffmpeg, gst, profile, chroma) in VECTORS {
            let (sps, pps) = sets(stream);
            let rec = build_avcc(&sps, &pps, 4, true).unwrap();
            // Byte-identical to FFmpeg 5.1's avcC (extension for High and High 4:4:4).
            assert_eq!(rec, ffmpeg, "profile {profile}");
            // GStreamer 1.22's h264parse writes the same record without the extension.
            assert!(rec.starts_with(gst), "profile {profile}");
            assert_eq!(rec.len() - gst.len(), if profile >= 100 { 4 } else { 0 });
            let back = parse_avcc(&rec).unwrap();
            assert_eq!(back.profile_idc, profile);
            assert_eq!(back.length_size, 4);
            assert_eq!(back.sps, vec![sps[0].to_vec()]);
            assert_eq!(back.pps, vec![pps[0].to_vec()]);
            assert_eq!(back.high, (profile >= 100).then_some((chroma, 8, 8)));
        }
    }

    #[test]
    fn avc3_record_has_no_parameter_sets() {
        let (stream, _, _, _, _) = VECTORS[3];
        let (sps, pps) = sets(stream);
        let rec = build_avcc(&sps, &pps, 4, false).unwrap();
        assert_eq!(rec, [1, 244, 0, 30, 0xff, 0xe0, 0, 0xff, 0xf8, 0xf8, 0]);
        let back = parse_avcc(&rec).unwrap();
        assert!(back.sps.is_empty() && back.pps.is_empty());
        assert_eq!(back.high, Some((3, 8, 8)));
        // No PPS is fine without parameter sets, not with them.
        assert!(build_avcc(&sps, &[], 4, false).is_ok());
        assert_eq!(
            build_avcc(&sps, &[], 4, true),
            Err(AvcError::MissingParameterSet("PPS"))
        );
    }

    #[test]
    fn error_cases() {
        let (stream, _, _, _, _) = VECTORS[2];
        let (sps, pps) = sets(stream);
        assert_eq!(
            build_avcc(&sps, &pps, 3, true),
            Err(AvcError::InvalidLengthSize(3))
        );
        assert_eq!(
            build_avcc(&[], &pps, 4, true),
            Err(AvcError::MissingParameterSet("SPS"))
        );
        assert_eq!(
            build_avcc(&pps, &sps, 4, true),
            Err(AvcError::WrongNalType {
                expected: 7,
                found: 8
            })
        );
        assert_eq!(parse_sps(&[]), Err(AvcError::InvalidNalHeader));
        assert_eq!(parse_sps(&[0xe7, 100]), Err(AvcError::InvalidNalHeader));
        assert_eq!(
            parse_sps(&[0x67, 100]),
            Err(AvcError::Truncated("constraint_set flags"))
        );
        // chroma_format_idc 4: ue '00101'.
        assert_eq!(
            parse_sps(&[0x67, 100, 0, 30, 0b1001_0100]),
            Err(AvcError::InvalidValue("chroma_format_idc"))
        );
        assert!(parse_avcc(&[]).is_err());
        assert!(parse_avcc(&[2, 100, 0, 30, 0xff, 0xe0, 0]).is_err());
        let good = build_avcc(&sps, &pps, 4, true).unwrap();
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(parse_avcc(&trailing).is_err());
        assert!(parse_avcc(&good[..good.len() - 5]).is_err());
    }

    #[test]
    fn truncated_and_corrupted_never_panic() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for (stream, ffmpeg, _, _, _) in VECTORS {
            let (sps, _) = sets(stream);
            let sps = sps[0];
            for n in 0..=sps.len() {
                let _ = parse_sps(&sps[..n]);
            }
            for n in 0..=ffmpeg.len() {
                let _ = parse_avcc(&ffmpeg[..n]);
            }
            for _ in 0..2000 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let mut v = sps.to_vec();
                let i = 1 + (state as usize) % (v.len() - 1);
                v[i] ^= (state >> 32) as u8;
                let _ = parse_sps(&v);
                let mut a = ffmpeg.to_vec();
                let j = (state as usize >> 8) % a.len();
                a[j] ^= (state >> 40) as u8;
                let _ = parse_avcc(&a);
            }
        }
    }

    #[test]
    fn build_from_corrupted_or_random_parameter_sets_never_panics() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for (stream, ..) in VECTORS {
            let (sps, pps) = sets(stream);
            for _ in 0..2000 {
                let mut s = sps[0].to_vec();
                for _ in 0..1 + next() % 4 {
                    let bit = 8 + (next() % ((s.len() as u64 - 1) * 8)) as usize;
                    s[bit / 8] ^= 1 << (bit % 8);
                }
                s.truncate(1 + (next() as usize) % s.len());
                for with_sets in [true, false] {
                    if let Ok(rec) = build_avcc(&[s.as_slice()], &pps, 4, with_sets) {
                        // What it builds, it reads back.
                        let back = parse_avcc(&rec).unwrap();
                        assert_eq!(back.sps.is_empty(), !with_sets);
                    }
                }
            }
        }
        for len in 0..64usize {
            for _ in 0..100 {
                let mut data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                let _ = parse_avcc(&data);
                if let Some(b) = data.first_mut() {
                    *b = NAL_SPS | 0x60;
                }
                let _ = parse_sps(&data);
                let _ = build_avcc(&[data.as_slice()], &[data.as_slice()], 4, true);
            }
        }
    }
}
