//! AV1 bitstream helpers: walking a low-overhead OBU stream, parsing the
//! sequence header OBU, and building the ISO-BMFF `av1C` record and the
//! `video/x-av1` caps fields.
//!
//! No `unsafe`, never panics: every malformed input yields an [`Av1Error`]. Bits are read
//! with the crate's one bit reader (`crate::bits`, on `bitstream-io`).
//!
//! References:
//! * AV1 Bitstream & Decoding Process Specification v1.0.0 with Errata 1
//!   ("AV1 spec"): §4.10.5 `leb128()`, §4.10.3 `uvlc()`, §5.3 OBU header,
//!   §5.5 sequence header OBU, §6.4 semantics.
//! * AV1 Codec ISO Media File Format Binding v1.2.0 ("AV1-ISOBMFF"): §2.3
//!   `AV1CodecConfigurationRecord`.
//! * GStreamer 1.22 `av1parse` (gst-plugins-bad `gst/videoparsers/gstav1parse.c`)
//!   for the caps field names and values.

use crate::bits::{self, BitError};

/// The bit reader of this module (`f(n)`, `uvlc()`), failing with [`Av1Error`].
type BitReader<'a> = bits::BitReader<'a, Av1Error>;

/// `obu_type` of a sequence header OBU (AV1 spec §6.2.2, `OBU_SEQUENCE_HEADER`).
pub const OBU_SEQUENCE_HEADER: u8 = 1;

/// Errors returned by the AV1 helpers in this module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Av1Error {
    /// The input ended before the named syntax element could be read.
    #[error("AV1 data truncated while reading {0}")]
    Truncated(&'static str),
    /// `obu_forbidden_bit` was 1 (AV1 spec §6.2.1 requires 0).
    #[error("AV1 obu_forbidden_bit is set")]
    ForbiddenBit,
    /// A `leb128()` value used more than 8 bytes or exceeded 2^32 - 1
    /// (AV1 spec §4.10.5).
    #[error("invalid AV1 leb128 value")]
    InvalidLeb128,
    /// The OBU stream contained no sequence header OBU.
    #[error("no AV1 sequence header OBU found")]
    NoSequenceHeader,
    /// The OBU given to a sequence-header function has this other `obu_type`.
    #[error("AV1 OBU of type {0} is not a sequence header")]
    NotSequenceHeader(u8),
    /// `seq_profile` is a reserved value (> 2), whose colour config is undefined.
    #[error("unsupported AV1 seq_profile {0}")]
    UnsupportedProfile(u8),
    /// A syntax element has a value the spec forbids; names the element.
    #[error("invalid AV1 value for {0}")]
    InvalidValue(&'static str),
}

impl From<BitError> for Av1Error {
    fn from(e: BitError) -> Self {
        match e {
            BitError::Truncated(what) => Av1Error::Truncated(what),
            BitError::InvalidValue(what) => Av1Error::InvalidValue(what),
        }
    }
}

/// The fields of an AV1 sequence header (AV1 spec §5.5, semantics §6.4) that
/// the encoder elements need for caps and the `av1C` record.
///
/// Values are those of operating point 0 where the syntax is per operating
/// point. Colour values are the raw ISO/IEC 23091-4 code points; when
/// `color_description_present_flag` is 0 they are the spec defaults
/// (2 = unspecified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceHeaderInfo {
    /// `seq_profile`: 0 = Main, 1 = High, 2 = Professional.
    pub seq_profile: u8,
    /// `seq_level_idx[0]` (0..=31; 31 = no level restriction).
    pub seq_level_idx_0: u8,
    /// `seq_tier[0]` (0 = Main tier, 1 = High tier; 0 when level <= 7).
    pub seq_tier_0: u8,
    /// `BitDepth` derived from `high_bitdepth`/`twelve_bit`: 8, 10 or 12.
    pub bit_depth: u8,
    /// `mono_chrome`.
    pub mono_chrome: bool,
    /// `subsampling_x` (true = chroma horizontally subsampled by 2).
    pub subsampling_x: bool,
    /// `subsampling_y` (true = chroma vertically subsampled by 2).
    pub subsampling_y: bool,
    /// `chroma_sample_position` (0 = unknown, 1 = vertical, 2 = colocated);
    /// 0 unless both subsampling flags are set.
    pub chroma_sample_position: u8,
    /// `color_primaries` (2 = unspecified when not signalled).
    pub color_primaries: u8,
    /// `transfer_characteristics` (2 = unspecified when not signalled).
    pub transfer_characteristics: u8,
    /// `matrix_coefficients` (2 = unspecified when not signalled).
    pub matrix_coefficients: u8,
    /// `color_range` (true = full range).
    pub color_range: bool,
    /// `max_frame_width_minus_1 + 1`, in luma samples.
    pub max_frame_width: u32,
    /// `max_frame_height_minus_1 + 1`, in luma samples.
    pub max_frame_height: u32,
    /// `timing_info_present_flag`.
    pub timing_info_present: bool,
    /// `still_picture`.
    pub still_picture: bool,
    /// `reduced_still_picture_header`.
    pub reduced_still_picture_header: bool,
}

/// One OBU located inside a buffer (AV1 spec §5.3).
struct Obu<'a> {
    obu_type: u8,
    has_size_field: bool,
    /// `obu_header()` bytes: 1, or 2 with the extension byte.
    header: &'a [u8],
    /// The OBU payload (`obu_size` bytes).
    payload: &'a [u8],
    /// Total bytes of the OBU in the buffer (header + size field + payload).
    total_len: usize,
}

/// Reads a `leb128()` (AV1 spec §4.10.5). Returns the value and bytes used.
fn read_leb128(data: &[u8]) -> Result<(u32, usize), Av1Error> {
    let mut value: u64 = 0;
    for i in 0..8 {
        let byte = *data.get(i).ok_or(Av1Error::Truncated("leb128"))?;
        value |= u64::from(byte & 0x7f) << (i * 7);
        if byte & 0x80 == 0 {
            let value = u32::try_from(value).map_err(|_| Av1Error::InvalidLeb128)?;
            return Ok((value, i + 1));
        }
    }
    Err(Av1Error::InvalidLeb128)
}

/// Appends the minimal `leb128()` encoding of `value` (AV1 spec §4.10.5).
fn write_leb128(mut value: u32, out: &mut Vec<u8>) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Parses the OBU that starts at `data[0]`. Without `obu_has_size_field`
/// the OBU extends to the end of `data` (AV1 spec §5.3.1).
fn parse_obu(data: &[u8]) -> Result<Obu<'_>, Av1Error> {
    let first = *data.first().ok_or(Av1Error::Truncated("obu_header"))?;
    if first & 0x80 != 0 {
        return Err(Av1Error::ForbiddenBit);
    }
    let obu_type = (first >> 3) & 0x0f;
    let extension_flag = first & 0x04 != 0;
    let has_size_field = first & 0x02 != 0;
    let header_len = if extension_flag { 2 } else { 1 };
    let header = data
        .get(..header_len)
        .ok_or(Av1Error::Truncated("obu_extension_header"))?;
    let rest = &data[header_len..];
    if has_size_field {
        let (size, leb_len) = read_leb128(rest)?;
        let size = usize::try_from(size).map_err(|_| Av1Error::InvalidLeb128)?;
        let payload = rest
            .get(leb_len..)
            .and_then(|r| r.get(..size))
            .ok_or(Av1Error::Truncated("obu payload"))?;
        Ok(Obu {
            obu_type,
            has_size_field,
            header,
            payload,
            total_len: header_len + leb_len + size,
        })
    } else {
        Ok(Obu {
            obu_type,
            has_size_field,
            header,
            payload: rest,
            total_len: data.len(),
        })
    }
}

/// Finds the first sequence header OBU in a low-overhead bitstream (AV1 spec
/// §5.2 `low_overhead_bitstream_format`, i.e. GStreamer
/// `stream-format=obu-stream`, e.g. one temporal unit as NVENC outputs it).
///
/// Returns the complete OBU: `obu_header()` (with the extension byte if
/// any), the `obu_size` field if present, and the payload. Every OBU is
/// expected to carry `obu_has_size_field = 1`; an OBU without it is taken
/// to extend to the end of `obus`.
///
/// # Errors
/// [`Av1Error::NoSequenceHeader`] when the stream holds none,
/// [`Av1Error::Truncated`], [`Av1Error::ForbiddenBit`] or
/// [`Av1Error::InvalidLeb128`] when an OBU before it is malformed.
pub fn find_sequence_header(obus: &[u8]) -> Result<&[u8], Av1Error> {
    let mut offset = 0;
    while offset < obus.len() {
        let rest = &obus[offset..];
        let obu = parse_obu(rest)?;
        if obu.obu_type == OBU_SEQUENCE_HEADER {
            return Ok(&rest[..obu.total_len]);
        }
        offset += obu.total_len;
    }
    Err(Av1Error::NoSequenceHeader)
}

/// Parses a sequence header OBU (AV1 spec §5.5) up to and including
/// `color_config()`.
///
/// `obu` is a complete OBU as returned by [`find_sequence_header`] (header,
/// optional size field, payload); bytes after the OBU's `obu_size` are
/// ignored. All syntax before `color_config()` is parsed exactly:
/// `timing_info()`, `decoder_model_info()`, every operating point with
/// `operating_parameters_info()` and initial display delay,
/// `reduced_still_picture_header`, `frame_width_bits_minus_1` etc.
///
/// # Errors
/// [`Av1Error::NotSequenceHeader`] for another OBU type,
/// [`Av1Error::UnsupportedProfile`] for `seq_profile` > 2,
/// [`Av1Error::Truncated`] when the payload ends early, plus the OBU header
/// errors of [`find_sequence_header`].
pub fn parse_sequence_header(obu: &[u8]) -> Result<SequenceHeaderInfo, Av1Error> {
    let obu = parse_obu(obu)?;
    if obu.obu_type != OBU_SEQUENCE_HEADER {
        return Err(Av1Error::NotSequenceHeader(obu.obu_type));
    }
    parse_sequence_header_payload(obu.payload)
}

fn parse_sequence_header_payload(payload: &[u8]) -> Result<SequenceHeaderInfo, Av1Error> {
    let mut r = BitReader::new(payload);
    let seq_profile = r.f(3, "seq_profile")? as u8;
    if seq_profile > 2 {
        return Err(Av1Error::UnsupportedProfile(seq_profile));
    }
    let still_picture = r.flag("still_picture")?;
    let reduced_still_picture_header = r.flag("reduced_still_picture_header")?;
    let (timing_info_present, seq_level_idx_0, seq_tier_0) = if reduced_still_picture_header {
        (false, r.f(5, "seq_level_idx")? as u8, 0)
    } else {
        operating_points(&mut r)?
    };
    let frame_width_bits = r.f(4, "frame_width_bits_minus_1")? + 1;
    let frame_height_bits = r.f(4, "frame_height_bits_minus_1")? + 1;
    let max_frame_width = r.f(frame_width_bits, "max_frame_width_minus_1")? + 1;
    let max_frame_height = r.f(frame_height_bits, "max_frame_height_minus_1")? + 1;
    let frame_id_numbers_present =
        !reduced_still_picture_header && r.flag("frame_id_numbers_present_flag")?;
    if frame_id_numbers_present {
        r.f(4, "delta_frame_id_length_minus_2")?;
        r.f(3, "additional_frame_id_length_minus_1")?;
    }
    r.f(1, "use_128x128_superblock")?;
    r.f(1, "enable_filter_intra")?;
    r.f(1, "enable_intra_edge_filter")?;
    if !reduced_still_picture_header {
        r.f(1, "enable_interintra_compound")?;
        r.f(1, "enable_masked_compound")?;
        r.f(1, "enable_warped_motion")?;
        r.f(1, "enable_dual_filter")?;
        let enable_order_hint = r.flag("enable_order_hint")?;
        if enable_order_hint {
            r.f(1, "enable_jnt_comp")?;
            r.f(1, "enable_ref_frame_mvs")?;
        }
        // SELECT_SCREEN_CONTENT_TOOLS = 2 when seq_choose_screen_content_tools.
        let force_screen_content_tools = if r.flag("seq_choose_screen_content_tools")? {
            2
        } else {
            r.f(1, "seq_force_screen_content_tools")?
        };
        if force_screen_content_tools > 0 && !r.flag("seq_choose_integer_mv")? {
            r.f(1, "seq_force_integer_mv")?;
        }
        if enable_order_hint {
            r.f(3, "order_hint_bits_minus_1")?;
        }
    }
    r.f(1, "enable_superres")?;
    r.f(1, "enable_cdef")?;
    r.f(1, "enable_restoration")?;

    let c = color_config(&mut r, seq_profile)?;

    Ok(SequenceHeaderInfo {
        seq_profile,
        seq_level_idx_0,
        seq_tier_0,
        bit_depth: c.bit_depth,
        mono_chrome: c.mono_chrome,
        subsampling_x: c.subsampling_x,
        subsampling_y: c.subsampling_y,
        chroma_sample_position: c.chroma_sample_position,
        color_primaries: c.color_primaries,
        transfer_characteristics: c.transfer_characteristics,
        matrix_coefficients: c.matrix_coefficients,
        color_range: c.color_range,
        max_frame_width,
        max_frame_height,
        timing_info_present,
        still_picture,
        reduced_still_picture_header,
    })
}

/// `timing_info()`, `decoder_model_info()` and the operating points of a sequence header
/// without `reduced_still_picture_header` (AV1 spec §5.5.1): (`timing_info_present_flag`,
/// `seq_level_idx[0]`, `seq_tier[0]`).
fn operating_points(r: &mut BitReader<'_>) -> Result<(bool, u8, u8), Av1Error> {
    let mut seq_tier_0 = 0;
    let timing_info_present = r.flag("timing_info_present_flag")?;
    let mut decoder_model_info_present = false;
    let mut buffer_delay_length = 0;
    if timing_info_present {
        // timing_info()
        r.f(32, "num_units_in_display_tick")?;
        r.f(32, "time_scale")?;
        if r.flag("equal_picture_interval")? {
            r.uvlc("num_ticks_per_picture_minus_1")?;
        }
        decoder_model_info_present = r.flag("decoder_model_info_present_flag")?;
        if decoder_model_info_present {
            // decoder_model_info()
            buffer_delay_length = r.f(5, "buffer_delay_length_minus_1")? + 1;
            r.f(32, "num_units_in_decoding_tick")?;
            r.f(5, "buffer_removal_time_length_minus_1")?;
            r.f(5, "frame_presentation_time_length_minus_1")?;
        }
    }
    let initial_display_delay_present = r.flag("initial_display_delay_present_flag")?;
    let operating_points_cnt = r.f(5, "operating_points_cnt_minus_1")? + 1;
    let mut level0 = 0;
    for i in 0..operating_points_cnt {
        r.f(12, "operating_point_idc")?;
        let level = r.f(5, "seq_level_idx")? as u8;
        let tier = if level > 7 {
            r.f(1, "seq_tier")? as u8
        } else {
            0
        };
        if i == 0 {
            level0 = level;
            seq_tier_0 = tier;
        }
        if decoder_model_info_present && r.flag("decoder_model_present_for_this_op")? {
            // operating_parameters_info()
            r.f(buffer_delay_length, "decoder_buffer_delay")?;
            r.f(buffer_delay_length, "encoder_buffer_delay")?;
            r.f(1, "low_delay_mode_flag")?;
        }
        if initial_display_delay_present && r.flag("initial_display_delay_present_for_this_op")? {
            r.f(4, "initial_display_delay_minus_1")?;
        }
    }
    Ok((timing_info_present, level0, seq_tier_0))
}

/// What [`color_config`] reads.
struct ColorConfig {
    bit_depth: u8,
    mono_chrome: bool,
    subsampling_x: bool,
    subsampling_y: bool,
    chroma_sample_position: u8,
    color_primaries: u8,
    transfer_characteristics: u8,
    matrix_coefficients: u8,
    color_range: bool,
}

/// `color_config()` (AV1 spec §5.5.2), then `separate_uv_delta_q` and
/// `film_grain_params_present`.
fn color_config(r: &mut BitReader<'_>, seq_profile: u8) -> Result<ColorConfig, Av1Error> {
    let high_bitdepth = r.flag("high_bitdepth")?;
    let bit_depth = if seq_profile == 2 && high_bitdepth {
        if r.flag("twelve_bit")? { 12 } else { 10 }
    } else if high_bitdepth {
        10
    } else {
        8
    };
    let mono_chrome = seq_profile != 1 && r.flag("mono_chrome")?;
    let (color_primaries, transfer_characteristics, matrix_coefficients) =
        if r.flag("color_description_present_flag")? {
            (
                r.f(8, "color_primaries")? as u8,
                r.f(8, "transfer_characteristics")? as u8,
                r.f(8, "matrix_coefficients")? as u8,
            )
        } else {
            (2, 2, 2)
        };
    let color_range;
    let subsampling_x;
    let subsampling_y;
    let mut chroma_sample_position = 0;
    if mono_chrome {
        color_range = r.flag("color_range")?;
        subsampling_x = true;
        subsampling_y = true;
    } else if color_primaries == 1 && transfer_characteristics == 13 && matrix_coefficients == 0 {
        // CP_BT_709, TC_SRGB, MC_IDENTITY: sRGB, always 4:4:4 full range.
        color_range = true;
        subsampling_x = false;
        subsampling_y = false;
    } else {
        color_range = r.flag("color_range")?;
        match seq_profile {
            0 => {
                subsampling_x = true;
                subsampling_y = true;
            }
            1 => {
                subsampling_x = false;
                subsampling_y = false;
            }
            _ => {
                if bit_depth == 12 {
                    subsampling_x = r.flag("subsampling_x")?;
                    subsampling_y = subsampling_x && r.flag("subsampling_y")?;
                } else {
                    subsampling_x = true;
                    subsampling_y = false;
                }
            }
        }
        if subsampling_x && subsampling_y {
            chroma_sample_position = r.f(2, "chroma_sample_position")? as u8;
        }
    }
    if !mono_chrome {
        r.f(1, "separate_uv_delta_q")?;
    }
    r.f(1, "film_grain_params_present")?;

    Ok(ColorConfig {
        bit_depth,
        mono_chrome,
        subsampling_x,
        subsampling_y,
        chroma_sample_position,
        color_primaries,
        transfer_characteristics,
        matrix_coefficients,
        color_range,
    })
}

/// Builds the `AV1CodecConfigurationRecord` (the payload of the ISO-BMFF
/// `av1C` box, also GStreamer's `codec_data` for `video/x-av1`), per
/// AV1-ISOBMFF §2.3.
///
/// Layout: `marker=1, version=1` (0x81), `seq_profile(3) seq_level_idx_0(5)`,
/// `seq_tier_0 high_bitdepth twelve_bit monochrome chroma_subsampling_x
/// chroma_subsampling_y chroma_sample_position(2)`,
/// `reserved(3)=0 initial_presentation_delay_present=0 reserved(4)=0`, then
/// `configOBUs` = the sequence header OBU. The OBU is copied verbatim when
/// it already has `obu_has_size_field = 1` (trailing bytes after it are
/// dropped); otherwise it is rewritten with the flag set and a minimal
/// `leb128` size field, as §2.3.4 requires.
///
/// `seq_hdr_obu` is a complete sequence header OBU, e.g. from
/// [`find_sequence_header`].
///
/// # Errors
/// Any error of [`parse_sequence_header`].
pub fn build_av1c(seq_hdr_obu: &[u8]) -> Result<Vec<u8>, Av1Error> {
    let obu = parse_obu(seq_hdr_obu)?;
    if obu.obu_type != OBU_SEQUENCE_HEADER {
        return Err(Av1Error::NotSequenceHeader(obu.obu_type));
    }
    let info = parse_sequence_header_payload(obu.payload)?;
    let payload_len =
        u32::try_from(obu.payload.len()).map_err(|_| Av1Error::InvalidValue("obu_size"))?;

    let mut out = Vec::with_capacity(4 + obu.total_len + 5);
    out.push(0x81); // marker(1) = 1, version(7) = 1
    out.push(((info.seq_profile & 0x07) << 5) | (info.seq_level_idx_0 & 0x1f));
    out.push(
        ((info.seq_tier_0 & 1) << 7)
            | (u8::from(info.bit_depth > 8) << 6)
            | (u8::from(info.bit_depth == 12) << 5)
            | (u8::from(info.mono_chrome) << 4)
            | (u8::from(info.subsampling_x) << 3)
            | (u8::from(info.subsampling_y) << 2)
            | (info.chroma_sample_position & 0x03),
    );
    out.push(0x00); // reserved(3), initial_presentation_delay_present = 0, reserved(4)

    if obu.has_size_field {
        out.extend_from_slice(&seq_hdr_obu[..obu.total_len]);
    } else {
        let mut header = obu.header.to_vec();
        header[0] |= 0x02; // obu_has_size_field = 1
        out.extend_from_slice(&header);
        write_leb128(payload_len, &mut out);
        out.extend_from_slice(obu.payload);
    }
    Ok(out)
}

/// Returns the `video/x-av1` caps fields that GStreamer 1.22 `av1parse`
/// derives from a sequence header, as `(field name, value)` pairs in the
/// order `av1parse` sets them:
///
/// * `"chroma-format"` (G_TYPE_STRING): `"4:0:0"` (monochrome), `"4:2:0"`,
///   `"4:2:2"` or `"4:4:4"`. Omitted, like `av1parse` does, when the colour
///   description is sRGB (BT.709 primaries, sRGB transfer, identity matrix,
///   full range), in which case `av1parse` sets `colorimetry=sRGB` instead.
/// * `"bit-depth-luma"` and `"bit-depth-chroma"`: the bit depth in decimal.
///   **Set these as `u32` (G_TYPE_UINT)** in caps, not as strings.
/// * `"profile"` (G_TYPE_STRING): `"main"`, `"high"` or `"professional"` for
///   `seq_profile` 0, 1, 2.
///
/// `av1parse` additionally sets `width`/`height` (from `max_frame_width`/
/// `max_frame_height` unless upstream caps have them), `colorimetry` when a
/// colour description is present, `stream-format`, `alignment` and
/// `parsed`; those are left to the caller.
pub fn caps_fields(info: &SequenceHeaderInfo) -> Vec<(&'static str, String)> {
    let mut fields = Vec::with_capacity(4);
    let srgb = info.color_primaries == 1
        && info.transfer_characteristics == 13
        && info.matrix_coefficients == 0
        && info.color_range;
    if !srgb {
        let chroma_format = match (info.subsampling_x, info.subsampling_y) {
            (true, true) if info.mono_chrome => Some("4:0:0"),
            (true, true) => Some("4:2:0"),
            (true, false) => Some("4:2:2"),
            (false, false) => Some("4:4:4"),
            (false, true) => None,
        };
        if let Some(chroma_format) = chroma_format {
            fields.push(("chroma-format", chroma_format.to_string()));
        }
    }
    fields.push(("bit-depth-luma", info.bit_depth.to_string()));
    fields.push(("bit-depth-chroma", info.bit_depth.to_string()));
    let profile = match info.seq_profile {
        0 => Some("main"),
        1 => Some("high"),
        2 => Some("professional"),
        _ => None,
    };
    if let Some(profile) = profile {
        fields.push(("profile", profile.to_string()));
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::bits::BitWriter;

    #[derive(Clone)]
    struct OperatingPoint {
        idc: u16,
        level: u8,
        tier: u8,
        /// (decoder_buffer_delay, encoder_buffer_delay, low_delay_mode_flag)
        decoder_model: Option<(u32, u32, bool)>,
        initial_display_delay_minus_1: Option<u8>,
    }

    /// Everything that `sequence_header_obu()` writes.
    #[derive(Clone)]
    struct Hdr {
        profile: u8,
        still: bool,
        reduced: bool,
        /// (num_units_in_display_tick, time_scale, num_ticks_per_picture_minus_1)
        timing: Option<(u32, u32, Option<u32>)>,
        /// buffer_delay_length_minus_1 (decoder_model_info present if Some)
        decoder_model: Option<u8>,
        initial_display_delay_present: bool,
        ops: Vec<OperatingPoint>,
        width_bits: u32,
        height_bits: u32,
        width: u32,
        height: u32,
        frame_id: bool,
        order_hint: bool,
        /// None: seq_choose_screen_content_tools = 1; Some(v): forced value.
        force_screen_content: Option<bool>,
        /// None: seq_choose_integer_mv = 1.
        force_integer_mv: Option<bool>,
        high_bitdepth: bool,
        twelve_bit: bool,
        mono: bool,
        color: Option<(u8, u8, u8)>,
        color_range: bool,
        /// Only written for profile 2 12-bit.
        ss: (bool, bool),
        csp: u8,
        film_grain: bool,
    }

    fn main_420_8bit(width: u32, height: u32) -> Hdr {
        Hdr {
            profile: 0,
            still: false,
            reduced: false,
            timing: None,
            decoder_model: None,
            initial_display_delay_present: false,
            ops: vec![OperatingPoint {
                idc: 0,
                level: 8,
                tier: 0,
                decoder_model: None,
                initial_display_delay_minus_1: None,
            }],
            width_bits: 32 - (width - 1).leading_zeros().min(31),
            height_bits: 32 - (height - 1).leading_zeros().min(31),
            width,
            height,
            frame_id: false,
            order_hint: true,
            force_screen_content: None,
            force_integer_mv: None,
            high_bitdepth: false,
            twelve_bit: false,
            mono: false,
            color: None,
            color_range: false,
            ss: (true, true),
            csp: 0,
            film_grain: false,
        }
    }

    fn write_payload(h: &Hdr) -> Vec<u8> {
        let mut w = BitWriter::default();
        w.put(3, u64::from(h.profile));
        w.flag(h.still);
        w.flag(h.reduced);
        if h.reduced {
            w.put(5, u64::from(h.ops[0].level));
        } else {
            w.flag(h.timing.is_some());
            if let Some((units, scale, ticks)) = h.timing {
                w.put(32, u64::from(units));
                w.put(32, u64::from(scale));
                w.flag(ticks.is_some());
                if let Some(t) = ticks {
                    w.uvlc(t);
                }
                w.flag(h.decoder_model.is_some());
                if let Some(bdl) = h.decoder_model {
                    w.put(5, u64::from(bdl));
                    w.put(32, 90000);
                    w.put(5, 31);
                    w.put(5, 7);
                }
            }
            w.flag(h.initial_display_delay_present);
            w.put(5, (h.ops.len() - 1) as u64);
            for op in &h.ops {
                w.put(12, u64::from(op.idc));
                w.put(5, u64::from(op.level));
                if op.level > 7 {
                    w.put(1, u64::from(op.tier));
                }
                if let Some(bdl) = h.decoder_model {
                    w.flag(op.decoder_model.is_some());
                    if let Some((dec, enc, low)) = op.decoder_model {
                        let n = u32::from(bdl) + 1;
                        w.put(n, u64::from(dec));
                        w.put(n, u64::from(enc));
                        w.flag(low);
                    }
                }
                if h.initial_display_delay_present {
                    w.flag(op.initial_display_delay_minus_1.is_some());
                    if let Some(d) = op.initial_display_delay_minus_1 {
                        w.put(4, u64::from(d));
                    }
                }
            }
        }
        w.put(4, u64::from(h.width_bits - 1));
        w.put(4, u64::from(h.height_bits - 1));
        w.put(h.width_bits, u64::from(h.width - 1));
        w.put(h.height_bits, u64::from(h.height - 1));
        if !h.reduced {
            w.flag(h.frame_id);
            if h.frame_id {
                w.put(4, 5);
                w.put(3, 2);
            }
        }
        w.put(3, 0b011); // 128x128 sb off, filter intra, intra edge
        if !h.reduced {
            w.put(4, 0b1111); // interintra, masked, warped, dual filter
            w.flag(h.order_hint);
            if h.order_hint {
                w.put(2, 0b11);
            }
            w.flag(h.force_screen_content.is_none());
            if let Some(v) = h.force_screen_content {
                w.flag(v);
            }
            if h.force_screen_content != Some(false) {
                w.flag(h.force_integer_mv.is_none());
                if let Some(v) = h.force_integer_mv {
                    w.flag(v);
                }
            }
            if h.order_hint {
                w.put(3, 6);
            }
        }
        w.put(3, 0b011); // superres off, cdef, restoration
        // color_config()
        w.flag(h.high_bitdepth);
        if h.profile == 2 && h.high_bitdepth {
            w.flag(h.twelve_bit);
        }
        if h.profile != 1 {
            w.flag(h.mono);
        }
        w.flag(h.color.is_some());
        let (cp, tc, mc) = h.color.unwrap_or((2, 2, 2));
        if h.color.is_some() {
            w.put(8, u64::from(cp));
            w.put(8, u64::from(tc));
            w.put(8, u64::from(mc));
        }
        if h.mono {
            w.flag(h.color_range);
        } else if (cp, tc, mc) == (1, 13, 0) {
            // sRGB: nothing
        } else {
            w.flag(h.color_range);
            if h.profile == 2 && h.twelve_bit {
                w.flag(h.ss.0);
                if h.ss.0 {
                    w.flag(h.ss.1);
                }
            }
            let (ssx, ssy) = expected_ss(h);
            if ssx && ssy {
                w.put(2, u64::from(h.csp));
            }
        }
        if !h.mono {
            w.flag(true); // separate_uv_delta_q
        }
        w.flag(h.film_grain);
        w.finish()
    }

    fn expected_ss(h: &Hdr) -> (bool, bool) {
        let (cp, tc, mc) = h.color.unwrap_or((2, 2, 2));
        if h.mono {
            (true, true)
        } else if (cp, tc, mc) == (1, 13, 0) {
            (false, false)
        } else {
            match h.profile {
                0 => (true, true),
                1 => (false, false),
                _ if h.twelve_bit => (h.ss.0, h.ss.0 && h.ss.1),
                _ => (true, false),
            }
        }
    }

    fn expected_info(h: &Hdr) -> SequenceHeaderInfo {
        let (ssx, ssy) = expected_ss(h);
        let (cp, tc, mc) = h.color.unwrap_or((2, 2, 2));
        let srgb = !h.mono && (cp, tc, mc) == (1, 13, 0);
        SequenceHeaderInfo {
            seq_profile: h.profile,
            seq_level_idx_0: h.ops[0].level,
            seq_tier_0: if h.ops[0].level > 7 && !h.reduced {
                h.ops[0].tier
            } else {
                0
            },
            bit_depth: match (h.high_bitdepth, h.profile == 2 && h.twelve_bit) {
                (false, _) => 8,
                (true, false) => 10,
                (true, true) => 12,
            },
            mono_chrome: h.mono,
            subsampling_x: ssx,
            subsampling_y: ssy,
            chroma_sample_position: if !h.mono && !srgb && ssx && ssy {
                h.csp
            } else {
                0
            },
            color_primaries: cp,
            transfer_characteristics: tc,
            matrix_coefficients: mc,
            color_range: if srgb { true } else { h.color_range },
            max_frame_width: h.width,
            max_frame_height: h.height,
            timing_info_present: !h.reduced && h.timing.is_some(),
            still_picture: h.still,
            reduced_still_picture_header: h.reduced,
        }
    }

    /// Wraps a payload in an OBU: obu_header (+extension) (+leb128 size).
    fn wrap_obu(obu_type: u8, ext: Option<u8>, with_size: bool, payload: &[u8]) -> Vec<u8> {
        let mut out =
            vec![(obu_type << 3) | (u8::from(ext.is_some()) << 2) | (u8::from(with_size) << 1)];
        if let Some(e) = ext {
            out.push(e);
        }
        if with_size {
            write_leb128(payload.len() as u32, &mut out);
        }
        out.extend_from_slice(payload);
        out
    }

    fn seq_obu(h: &Hdr) -> Vec<u8> {
        wrap_obu(OBU_SEQUENCE_HEADER, None, true, &write_payload(h))
    }

    fn check(h: &Hdr) -> SequenceHeaderInfo {
        let obu = seq_obu(h);
        let info = parse_sequence_header(&obu).expect("parse");
        assert_eq!(info, expected_info(h));
        // A temporal delimiter before, a padding OBU after.
        let mut stream = wrap_obu(2, None, true, &[]);
        stream.extend_from_slice(&obu);
        stream.extend_from_slice(&wrap_obu(15, None, true, &[0xaa; 3]));
        assert_eq!(find_sequence_header(&stream), Ok(&obu[..]));
        // Every strict prefix of the payload is an error, never a panic.
        let payload = write_payload(h);
        for n in 0..payload.len() {
            let short = wrap_obu(OBU_SEQUENCE_HEADER, None, true, &payload[..n]);
            let _ = parse_sequence_header(&short);
            let _ = build_av1c(&short);
        }
        info
    }

    // ----- hand-built headers -------------------------------------------

    #[test]
    fn main_8bit_420_1080p() {
        let h = main_420_8bit(1920, 1080);
        let info = check(&h);
        assert_eq!(info.bit_depth, 8);
        assert_eq!((info.max_frame_width, info.max_frame_height), (1920, 1080));
        let av1c = build_av1c(&seq_obu(&h)).unwrap();
        assert_eq!(&av1c[..4], &[0x81, 0x08, 0x0c, 0x00]);
        assert_eq!(&av1c[4..], &seq_obu(&h)[..]);
        assert_eq!(
            caps_fields(&info),
            vec![
                ("chroma-format", "4:2:0".to_string()),
                ("bit-depth-luma", "8".to_string()),
                ("bit-depth-chroma", "8".to_string()),
                ("profile", "main".to_string()),
            ]
        );
    }

    #[test]
    fn odd_size_720x405_minimal_and_wide_bit_widths() {
        let mut h = main_420_8bit(720, 405);
        assert_eq!((h.width_bits, h.height_bits), (10, 9));
        check(&h);
        // Same size coded with 16-bit fields.
        h.width_bits = 16;
        h.height_bits = 16;
        let info = check(&h);
        assert_eq!((info.max_frame_width, info.max_frame_height), (720, 405));
        // 1x1 with 1-bit fields.
        let h = main_420_8bit(1, 1);
        assert_eq!((h.width_bits, h.height_bits), (1, 1));
        check(&h);
        // 65536x65536 (the maximum).
        let mut h = main_420_8bit(65536, 65536);
        h.width_bits = 16;
        h.height_bits = 16;
        check(&h);
    }

    #[test]
    fn main_10bit_with_chroma_position_and_color() {
        let mut h = main_420_8bit(3840, 2160);
        h.high_bitdepth = true;
        h.color = Some((9, 16, 9)); // BT.2020, PQ, BT.2020 NCL
        h.color_range = false;
        h.csp = 2;
        h.ops[0].level = 12;
        h.ops[0].tier = 1;
        let info = check(&h);
        assert_eq!(info.bit_depth, 10);
        assert_eq!(info.chroma_sample_position, 2);
        assert_eq!(info.seq_tier_0, 1);
        let av1c = build_av1c(&seq_obu(&h)).unwrap();
        // tier 1, high_bitdepth, ss 1 1, csp 2
        assert_eq!(&av1c[..4], &[0x81, 0x0c, 0b1100_1110, 0x00]);
        let caps = caps_fields(&info);
        assert!(caps.contains(&("bit-depth-luma", "10".to_string())));
        assert!(caps.contains(&("bit-depth-chroma", "10".to_string())));
        assert!(caps.contains(&("chroma-format", "4:2:0".to_string())));
    }

    #[test]
    fn high_444_8_and_10bit() {
        for hbd in [false, true] {
            let mut h = main_420_8bit(1280, 720);
            h.profile = 1;
            h.high_bitdepth = hbd;
            h.color_range = true;
            let info = check(&h);
            assert!(!info.subsampling_x && !info.subsampling_y && !info.mono_chrome);
            let av1c = build_av1c(&seq_obu(&h)).unwrap();
            assert_eq!(av1c[1], 0x20 | 8);
            assert_eq!(av1c[2], u8::from(hbd) << 6);
            let caps = caps_fields(&info);
            assert_eq!(caps[0], ("chroma-format", "4:4:4".to_string()));
            assert_eq!(caps[3], ("profile", "high".to_string()));
        }
    }

    #[test]
    fn professional_profile_variants() {
        // 10-bit profile 2 is always 4:2:2.
        let mut h = main_420_8bit(640, 480);
        h.profile = 2;
        h.high_bitdepth = true;
        let info = check(&h);
        assert_eq!(info.bit_depth, 10);
        assert_eq!((info.subsampling_x, info.subsampling_y), (true, false));
        assert_eq!(
            caps_fields(&info)[0],
            ("chroma-format", "4:2:2".to_string())
        );
        assert_eq!(
            caps_fields(&info)[3],
            ("profile", "professional".to_string())
        );
        // 12-bit with every explicit subsampling.
        for ss in [(false, false), (true, false), (true, true)] {
            h.twelve_bit = true;
            h.ss = ss;
            h.csp = 1;
            let info = check(&h);
            assert_eq!(info.bit_depth, 12);
            assert_eq!((info.subsampling_x, info.subsampling_y), ss);
            let av1c = build_av1c(&seq_obu(&h)).unwrap();
            assert_eq!(av1c[2] & 0x60, 0x60); // high_bitdepth + twelve_bit
        }
        // 8-bit profile 2 is 4:2:2 as well.
        h.high_bitdepth = false;
        h.twelve_bit = false;
        let info = check(&h);
        assert_eq!(
            (info.bit_depth, info.subsampling_x, info.subsampling_y),
            (8, true, false)
        );
    }

    #[test]
    fn monochrome() {
        let mut h = main_420_8bit(352, 288);
        h.mono = true;
        h.color_range = true;
        let info = check(&h);
        assert!(info.mono_chrome && info.subsampling_x && info.subsampling_y);
        assert_eq!(
            caps_fields(&info)[0],
            ("chroma-format", "4:0:0".to_string())
        );
        let av1c = build_av1c(&seq_obu(&h)).unwrap();
        assert_eq!(av1c[2], 0b0001_1100);
    }

    #[test]
    fn srgb_identity_is_444_full_range_without_chroma_format() {
        let mut h = main_420_8bit(720, 405);
        h.profile = 1;
        h.color = Some((1, 13, 0));
        let info = check(&h);
        assert!(info.color_range);
        assert!(!info.subsampling_x && !info.subsampling_y);
        let caps = caps_fields(&info);
        assert!(caps.iter().all(|(k, _)| *k != "chroma-format"));
        assert_eq!(caps.len(), 3);
    }

    #[test]
    fn timing_info_decoder_model_and_operating_points() {
        let mut h = main_420_8bit(1920, 1080);
        h.timing = Some((1001, 60000, Some(0)));
        check(&h);
        h.timing = Some((1, 25, None));
        check(&h);
        h.timing = Some((1, 90000, Some(3000)));
        h.decoder_model = Some(23);
        h.initial_display_delay_present = true;
        h.frame_id = true;
        h.order_hint = false;
        h.force_screen_content = Some(true);
        h.force_integer_mv = Some(false);
        h.ops = vec![
            OperatingPoint {
                idc: 0x103,
                level: 9,
                tier: 1,
                decoder_model: Some((0xabcdef, 0x123456, true)),
                initial_display_delay_minus_1: Some(9),
            },
            OperatingPoint {
                idc: 0x101,
                level: 5,
                tier: 0,
                decoder_model: None,
                initial_display_delay_minus_1: None,
            },
            OperatingPoint {
                idc: 0x102,
                level: 31,
                tier: 1,
                decoder_model: Some((1, 2, false)),
                initial_display_delay_minus_1: Some(0),
            },
        ];
        let info = check(&h);
        assert!(info.timing_info_present);
        assert_eq!((info.seq_level_idx_0, info.seq_tier_0), (9, 1));
        // 32 operating points, all with every option.
        let op = h.ops[0].clone();
        h.ops = vec![op; 32];
        h.force_screen_content = Some(false);
        h.timing = Some((u32::MAX, u32::MAX, Some(u32::MAX - 1)));
        check(&h);
        // Decoder model info present but no op uses it.
        h.ops.iter_mut().for_each(|op| op.decoder_model = None);
        h.decoder_model = Some(0);
        h.film_grain = true;
        check(&h);
    }

    #[test]
    fn reduced_still_picture_header() {
        let mut h = main_420_8bit(4000, 3000);
        h.still = true;
        h.reduced = true;
        h.ops[0].level = 13;
        h.ops[0].tier = 1; // not coded: tier must come out 0
        let info = check(&h);
        assert!(info.still_picture && info.reduced_still_picture_header);
        assert_eq!((info.seq_level_idx_0, info.seq_tier_0), (13, 0));
        assert!(!info.timing_info_present);
    }

    #[test]
    fn uvlc_large_values() {
        let mut w = BitWriter::default();
        w.uvlc(0);
        w.uvlc(1);
        w.uvlc(u32::MAX - 1);
        w.put(40, 0); // 40 leading zeros -> 2^32 - 1 without value bits
        w.put(1, 1);
        let bytes = w.finish();
        let mut r = BitReader::new(&bytes);
        assert_eq!(r.uvlc("a"), Ok(0));
        assert_eq!(r.uvlc("b"), Ok(1));
        assert_eq!(r.uvlc("c"), Ok(u32::MAX - 1));
        assert_eq!(r.uvlc("d"), Ok(u32::MAX));
        assert_eq!(
            BitReader::new(&[0, 0]).uvlc("e"),
            Err(Av1Error::Truncated("e"))
        );
    }

    // ----- OBU walking / leb128 -------------------------------------------

    #[test]
    fn leb128_limits() {
        assert_eq!(read_leb128(&[0x00]), Ok((0, 1)));
        assert_eq!(read_leb128(&[0x80, 0x00]), Ok((0, 2))); // non-minimal is legal
        assert_eq!(
            read_leb128(&[0xff, 0xff, 0xff, 0xff, 0x0f]),
            Ok((u32::MAX, 5))
        );
        assert_eq!(
            read_leb128(&[0xff, 0xff, 0xff, 0xff, 0x1f]),
            Err(Av1Error::InvalidLeb128)
        );
        assert_eq!(
            read_leb128(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]),
            Ok((0, 8))
        );
        assert_eq!(read_leb128(&[0x80; 9]), Err(Av1Error::InvalidLeb128));
        assert_eq!(
            read_leb128(&[0x80, 0x80]),
            Err(Av1Error::Truncated("leb128"))
        );
        for v in [0, 1, 127, 128, 16383, 16384, 0x0fff_ffff, u32::MAX] {
            let mut out = Vec::new();
            write_leb128(v, &mut out);
            assert_eq!(read_leb128(&out), Ok((v, out.len())));
        }
    }

    #[test]
    fn find_with_extension_headers_and_unsized_last_obu() {
        let h = main_420_8bit(1280, 720);
        let payload = write_payload(&h);
        // TD with extension, metadata, then a size-less sequence header last.
        let mut stream = wrap_obu(2, Some(0b0010_1000), true, &[]);
        stream.extend_from_slice(&wrap_obu(5, Some(0), true, &[1, 2, 3, 4]));
        let no_size = wrap_obu(1, Some(0b0100_0000), false, &payload);
        stream.extend_from_slice(&no_size);
        let found = find_sequence_header(&stream).unwrap();
        assert_eq!(found, &no_size[..]);
        assert_eq!(parse_sequence_header(found).unwrap(), expected_info(&h));

        // build_av1c adds the size field, keeping the extension byte.
        let av1c = build_av1c(found).unwrap();
        assert_eq!(
            &av1c[4..],
            &wrap_obu(1, Some(0b0100_0000), true, &payload)[..]
        );

        // Size-less without extension and a payload >= 128 bytes (2-byte leb128).
        let mut big = h.clone();
        big.ops = vec![h.ops[0].clone(); 32];
        big.initial_display_delay_present = true;
        big.timing = Some((1, 90000, Some(u32::MAX - 1)));
        big.decoder_model = Some(31);
        big.ops.iter_mut().for_each(|op| {
            op.initial_display_delay_minus_1 = Some(3);
            op.decoder_model = Some((1, 2, true));
        });
        let payload = write_payload(&big);
        assert!(payload.len() >= 128);
        let av1c = build_av1c(&wrap_obu(1, None, false, &payload)).unwrap();
        assert_eq!(&av1c[4..], &wrap_obu(1, None, true, &payload)[..]);
        assert_eq!(av1c[5] & 0x80, 0x80);
    }

    #[test]
    fn sized_obu_trailing_bytes_are_dropped() {
        let h = main_420_8bit(640, 360);
        let mut obu = seq_obu(&h);
        let expected = obu.clone();
        obu.extend_from_slice(&[0x12, 0x00]); // a TD after it
        let av1c = build_av1c(&obu).unwrap();
        assert_eq!(&av1c[4..], &expected[..]);
    }

    #[test]
    fn error_cases() {
        assert_eq!(find_sequence_header(&[]), Err(Av1Error::NoSequenceHeader));
        assert_eq!(
            find_sequence_header(&[0x12, 0x00, 0x12, 0x00]),
            Err(Av1Error::NoSequenceHeader)
        );
        assert_eq!(
            find_sequence_header(&[0x92, 0x00]),
            Err(Av1Error::ForbiddenBit)
        );
        assert_eq!(
            find_sequence_header(&[0x0a, 0x05, 0x00]),
            Err(Av1Error::Truncated("obu payload"))
        );
        assert_eq!(
            find_sequence_header(&[0x0e]),
            Err(Av1Error::Truncated("obu_extension_header"))
        );
        assert_eq!(
            find_sequence_header(&[0x0a]),
            Err(Av1Error::Truncated("leb128"))
        );
        assert_eq!(
            parse_sequence_header(&[0x12, 0x00]),
            Err(Av1Error::NotSequenceHeader(2))
        );
        assert_eq!(
            build_av1c(&[0x32, 0x00]),
            Err(Av1Error::NotSequenceHeader(6))
        );
        assert_eq!(
            parse_sequence_header(&[]),
            Err(Av1Error::Truncated("obu_header"))
        );
        assert_eq!(
            parse_sequence_header(&[0x0a, 0x01, 0xe0]),
            Err(Av1Error::UnsupportedProfile(7))
        );
        assert_eq!(
            parse_sequence_header(&[0x0a, 0x00]),
            Err(Av1Error::Truncated("seq_profile"))
        );
        assert_eq!(
            parse_sequence_header(&[0x0a, 0x01, 0x00]),
            Err(Av1Error::Truncated("operating_points_cnt_minus_1"))
        );
        // Display / Error impls.
        let e: Box<dyn std::error::Error> = Box::new(Av1Error::InvalidLeb128);
        assert_eq!(e.to_string(), "invalid AV1 leb128 value");
        assert!(!Av1Error::Truncated("x").to_string().is_empty());
    }

    // ----- real libaom streams --------------------------------------------

    /// (stream, av1C written by ffmpeg 5.1 `-c:v copy x.mp4`, profile, depth,
    ///  ss_x, ss_y, caps)
    type RealVector = (
        &'static [u8],
        &'static [u8],
        u8,
        u8,
        bool,
        bool,
        &'static [(&'static str, &'static str)],
    );

    const REAL: [RealVector; 4] = [
        (
            include_bytes!("testdata/av1_420_8.obu"),
            include_bytes!("testdata/av1_420_8.av1C"),
            0,
            8,
            true,
            true,
            &[
                ("chroma-format", "4:2:0"),
                ("bit-depth-luma", "8"),
                ("bit-depth-chroma", "8"),
                ("profile", "main"),
            ],
        ),
        (
            include_bytes!("testdata/av1_420_10.obu"),
            include_bytes!("testdata/av1_420_10.av1C"),
            0,
            10,
            true,
            true,
            &[
                ("chroma-format", "4:2:0"),
                ("bit-depth-luma", "10"),
                ("bit-depth-chroma", "10"),
                ("profile", "main"),
            ],
        ),
        (
            include_bytes!("testdata/av1_444_8.obu"),
            include_bytes!("testdata/av1_444_8.av1C"),
            1,
            8,
            false,
            false,
            &[
                ("chroma-format", "4:4:4"),
                ("bit-depth-luma", "8"),
                ("bit-depth-chroma", "8"),
                ("profile", "high"),
            ],
        ),
        (
            include_bytes!("testdata/av1_gbr_8.obu"),
            include_bytes!("testdata/av1_gbr_8.av1C"),
            1,
            8,
            false,
            false,
            &[
                ("bit-depth-luma", "8"),
                ("bit-depth-chroma", "8"),
                ("profile", "high"),
            ],
        ),
    ];

    #[test]
    fn real_libaom_streams() {
        for (stream, av1c, profile, depth, ssx, ssy, caps) in REAL {
            let obu = find_sequence_header(stream).unwrap();
            let info = parse_sequence_header(obu).unwrap();
            assert_eq!((info.max_frame_width, info.max_frame_height), (720, 405));
            assert_eq!(info.seq_profile, profile);
            assert_eq!(info.bit_depth, depth);
            assert_eq!((info.subsampling_x, info.subsampling_y), (ssx, ssy));
            assert_eq!(info.seq_level_idx_0, 4); // level 3.0
            assert!(!info.mono_chrome && !info.still_picture && !info.timing_info_present);
            assert_eq!(build_av1c(obu).unwrap(), av1c);
            let expected: Vec<(&str, String)> =
                caps.iter().map(|(k, v)| (*k, v.to_string())).collect();
            assert_eq!(caps_fields(&info), expected);
        }
        // The sRGB stream signals BT.709 / sRGB / identity.
        let info = parse_sequence_header(find_sequence_header(REAL[3].0).unwrap()).unwrap();
        assert_eq!(
            (
                info.color_primaries,
                info.transfer_characteristics,
                info.matrix_coefficients
            ),
            (1, 13, 0)
        );
        assert!(info.color_range);
    }

    // ----- robustness ---------------------------------------------------------

    /// xorshift64* so the fuzz tests are deterministic without extra crates.
    fn rng(state: &mut u64) -> u64 {
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    #[test]
    fn truncated_and_corrupted_real_streams_never_panic() {
        let mut state = 0x1234_5678_9abc_def0u64;
        for (stream, ..) in REAL {
            let sh = find_sequence_header(stream).unwrap();
            for n in 0..sh.len() {
                assert!(parse_sequence_header(&sh[..n]).is_err());
                assert!(build_av1c(&sh[..n]).is_err());
            }
            for n in 0..stream.len().min(256) {
                let _ = find_sequence_header(&stream[..n]);
            }
            for _ in 0..2000 {
                let mut data = stream[..64.min(stream.len())].to_vec();
                let flips = 1 + rng(&mut state) % 4;
                for _ in 0..flips {
                    let bit = (rng(&mut state) % (data.len() as u64 * 8)) as usize;
                    data[bit / 8] ^= 1 << (bit % 8);
                }
                if let Ok(sh) = find_sequence_header(&data) {
                    let _ = parse_sequence_header(sh);
                    let _ = build_av1c(sh).map(|c| assert!(c.len() > 4));
                }
                let _ = parse_sequence_header(&data);
            }
        }
    }

    #[test]
    fn random_garbage_never_panics() {
        let mut state = 0xdead_beef_cafe_f00du64;
        for len in 0..200usize {
            for _ in 0..50 {
                let data: Vec<u8> = (0..len).map(|_| rng(&mut state) as u8).collect();
                let _ = find_sequence_header(&data);
                let _ = parse_sequence_header(&data);
                let _ = build_av1c(&data);
                // Force a sequence header OBU type with a random payload.
                let mut obu = vec![0x0a];
                write_leb128(len as u32, &mut obu);
                obu.extend_from_slice(&data);
                if let Ok(info) = parse_sequence_header(&obu) {
                    let _ = caps_fields(&info);
                    assert!(build_av1c(&obu).is_ok());
                }
            }
        }
    }
}
