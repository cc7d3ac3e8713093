//! H.265 parameter-set parsing (VPS/SPS) and the ISO-BMFF
//! `HEVCDecoderConfigurationRecord` (`hvcC`, GStreamer `codec_data` for
//! `video/x-h265, stream-format=hvc1`).
//!
//! No `unsafe`, never panics: malformed input yields a [`HevcError`]. The RBSP
//! is read with the crate's one bit reader (`crate::bits`, on `bitstream-io`).
//!
//! NAL units passed to this module are single NAL units without start code
//! or length prefix, still containing emulation prevention bytes (as
//! `split_annexb` in the sibling `nal` module returns them).
//!
//! References: ITU-T H.265 (v8, 08/2021) §7.3.1.1 (emulation prevention),
//! §7.3.2.1 VPS, §7.3.2.2 SPS, §7.3.3 `profile_tier_level()`, §7.3.4
//! `scaling_list_data()`, §7.3.7 `st_ref_pic_set()`, Annex E.2.1 VUI and E.2.2
//! `hrd_parameters()`; ISO/IEC 14496-15 §8.3.3.1
//! `HEVCDecoderConfigurationRecord`.

use super::nal::unescape;
use crate::bits::{self, BitError};

/// The bit reader of this module, failing with [`HevcError`].
type BitReader<'a> = bits::BitReader<'a, HevcError>;

const NAL_VPS: u8 = 32;
const NAL_SPS: u8 = 33;
const NAL_PPS: u8 = 34;

/// Errors returned by the H.265 helpers in this module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HevcError {
    /// The NAL unit ended before the named syntax element could be read.
    #[error("H.265 NAL truncated while reading {0}")]
    Truncated(&'static str),
    /// The NAL unit header is malformed (shorter than 2 bytes,
    /// `forbidden_zero_bit` set, or `nuh_temporal_id_plus1 == 0`).
    #[error("invalid H.265 NAL unit header")]
    InvalidNalHeader,
    /// The NAL unit has another `nal_unit_type` than the one required.
    #[error("H.265 NAL type {found} where type {expected} was expected")]
    WrongNalType {
        /// The required `nal_unit_type`.
        expected: u8,
        /// The `nal_unit_type` found.
        found: u8,
    },
    /// `nuh_layer_id > 0` (multi-layer SPS syntax) is not supported.
    #[error("unsupported H.265 parameter set with nuh_layer_id {0}")]
    UnsupportedLayer(u8),
    /// A syntax element is outside its allowed range; names the element.
    #[error("invalid H.265 value for {0}")]
    InvalidValue(&'static str),
    /// No NAL unit of the named kind (`"VPS"`, `"SPS"`, `"PPS"`) was given.
    #[error("no H.265 {0} given")]
    MissingParameterSet(&'static str),
    /// Too many NAL units (> 65535) or a NAL unit too long (> 65535 bytes)
    /// for the 16-bit fields of `hvcC`; names the field.
    #[error("too large for hvcC field {0}")]
    TooLarge(&'static str),
    /// The NAL length size is not 1, 2 or 4 bytes.
    #[error("invalid NAL length size {0} (must be 1, 2 or 4)")]
    InvalidLengthSize(u8),
}

/// Conformance cropping window, in luma samples (the SPS `conf_win_*_offset`
/// values multiplied by `SubWidthC`/`SubHeightC`, H.265 §7.4.3.2.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConformanceWindow {
    /// Luma samples cropped on the left.
    pub left: u32,
    /// Luma samples cropped on the right.
    pub right: u32,
    /// Luma rows cropped at the top.
    pub top: u32,
    /// Luma rows cropped at the bottom.
    pub bottom: u32,
}

/// Fields of an H.265 sequence parameter set (H.265 §7.3.2.2) needed for
/// caps and `hvcC`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HevcSpsInfo {
    /// `sps_video_parameter_set_id`.
    pub vps_id: u8,
    /// `sps_seq_parameter_set_id`.
    pub sps_id: u32,
    /// `general_profile_space` (0..=3).
    pub general_profile_space: u8,
    /// `general_tier_flag` (0 = Main tier, 1 = High tier).
    pub general_tier_flag: u8,
    /// `general_profile_idc` (1 = Main, 2 = Main 10, 3 = Main Still Picture,
    /// 4 = format range extensions, ...).
    pub general_profile_idc: u8,
    /// `general_profile_compatibility_flag[j]` for j = 0..32, with flag 0 in
    /// the most significant bit (the order they are coded in).
    pub general_profile_compatibility_flags: u32,
    /// The 48 bits from `general_progressive_source_flag` through
    /// `general_inbld_flag`/reserved bit, right-aligned (first coded bit is
    /// bit 47).
    pub general_constraint_indicator_flags: u64,
    /// `general_level_idc` (30 x level number, e.g. 93 = level 3.1).
    pub general_level_idc: u8,
    /// `chroma_format_idc` (0 = 4:0:0, 1 = 4:2:0, 2 = 4:2:2, 3 = 4:4:4).
    pub chroma_format_idc: u8,
    /// `separate_colour_plane_flag`.
    pub separate_colour_plane: bool,
    /// `bit_depth_luma_minus8 + 8`.
    pub bit_depth_luma: u8,
    /// `bit_depth_chroma_minus8 + 8`.
    pub bit_depth_chroma: u8,
    /// `pic_width_in_luma_samples` (coded width, before cropping).
    pub pic_width: u32,
    /// `pic_height_in_luma_samples` (coded height, before cropping).
    pub pic_height: u32,
    /// Conformance window (all zero when `conformance_window_flag` is 0).
    pub conf_win: ConformanceWindow,
    /// `sps_max_sub_layers_minus1` (0..=6).
    pub sps_max_sub_layers_minus1: u8,
    /// `sps_temporal_id_nesting_flag`.
    pub temporal_id_nesting: bool,
    /// `min_spatial_segmentation_idc` from the VUI bitstream restriction
    /// (0..=4095), 0 when absent.
    pub min_spatial_segmentation_idc: u16,
    /// The 12 bytes of the general part of `profile_tier_level()`
    /// (`general_profile_space` .. `general_level_idc`) as coded, without
    /// emulation prevention bytes: the input expected by GStreamer's
    /// `gst_codec_utils_h265_caps_set_level_tier_and_profile()`.
    pub profile_tier_level_bytes: Vec<u8>,
}

impl HevcSpsInfo {
    /// Display width in luma samples: `pic_width` minus the left and right
    /// conformance window offsets (0 if the window is larger than the picture).
    pub fn cropped_width(&self) -> u32 {
        self.pic_width
            .saturating_sub(self.conf_win.left)
            .saturating_sub(self.conf_win.right)
    }

    /// Display height in luma samples: `pic_height` minus the top and bottom
    /// conformance window offsets (0 if the window is larger than the picture).
    pub fn cropped_height(&self) -> u32 {
        self.pic_height
            .saturating_sub(self.conf_win.top)
            .saturating_sub(self.conf_win.bottom)
    }
}

/// Fields of an H.265 video parameter set (H.265 §7.3.2.1) used by `hvcC`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HevcVpsInfo {
    /// `vps_video_parameter_set_id`.
    pub vps_id: u8,
    /// `vps_max_sub_layers_minus1` (0..=6).
    pub vps_max_sub_layers_minus1: u8,
    /// `vps_temporal_id_nesting_flag`.
    pub temporal_id_nesting: bool,
    /// `general_profile_idc` of the VPS `profile_tier_level()`.
    pub general_profile_idc: u8,
    /// `general_level_idc` of the VPS `profile_tier_level()`.
    pub general_level_idc: u8,
}

impl From<BitError> for HevcError {
    fn from(e: BitError) -> Self {
        match e {
            BitError::Truncated(what) => HevcError::Truncated(what),
            BitError::InvalidValue(what) => HevcError::InvalidValue(what),
        }
    }
}

/// Checks the two-byte NAL unit header and returns the RBSP after it.
fn rbsp_of(nal: &[u8], expected: u8) -> Result<Vec<u8>, HevcError> {
    if nal.len() < 2 || nal[0] & 0x80 != 0 || nal[1] & 0x07 == 0 {
        return Err(HevcError::InvalidNalHeader);
    }
    let found = (nal[0] >> 1) & 0x3f;
    if found != expected {
        return Err(HevcError::WrongNalType { expected, found });
    }
    let layer_id = ((nal[0] & 1) << 5) | (nal[1] >> 3);
    if layer_id != 0 {
        return Err(HevcError::UnsupportedLayer(layer_id));
    }
    let mut rbsp = unescape(nal);
    rbsp.drain(..2);
    Ok(rbsp)
}

/// General part of `profile_tier_level()`.
struct GeneralPtl {
    profile_space: u8,
    tier_flag: u8,
    profile_idc: u8,
    compatibility_flags: u32,
    constraint_flags: u64,
    level_idc: u8,
}

/// `profile_tier_level(1, max_sub_layers_minus1)` (H.265 §7.3.3).
fn parse_ptl(r: &mut BitReader<'_>, max_sub_layers_minus1: u8) -> Result<GeneralPtl, HevcError> {
    let ptl = GeneralPtl {
        profile_space: r.bits_u8(2, "general_profile_space")?,
        tier_flag: r.bits_u8(1, "general_tier_flag")?,
        profile_idc: r.bits_u8(5, "general_profile_idc")?,
        compatibility_flags: r.u(32, "general_profile_compatibility_flag")? as u32,
        constraint_flags: r.u(48, "general constraint flags")?,
        level_idc: r.bits_u8(8, "general_level_idc")?,
    };
    let n = usize::from(max_sub_layers_minus1);
    let mut profile_present = [false; 8];
    let mut level_present = [false; 8];
    for i in 0..n {
        profile_present[i] = r.flag("sub_layer_profile_present_flag")?;
        level_present[i] = r.flag("sub_layer_level_present_flag")?;
    }
    if n > 0 {
        r.skip(2 * (8 - n), "reserved_zero_2bits")?;
    }
    for i in 0..n {
        if profile_present[i] {
            r.skip(88, "sub_layer profile")?;
        }
        if level_present[i] {
            r.skip(8, "sub_layer_level_idc")?;
        }
    }
    Ok(ptl)
}

/// Parses an H.265 video parameter set NAL unit (H.265 §7.3.2.1) up to the
/// general `profile_tier_level()`.
///
/// # Errors
/// [`HevcError::InvalidNalHeader`], [`HevcError::WrongNalType`] (not type
/// 32), [`HevcError::UnsupportedLayer`], [`HevcError::Truncated`],
/// [`HevcError::InvalidValue`] (`vps_max_sub_layers_minus1 == 7`).
pub fn parse_vps(nal: &[u8]) -> Result<HevcVpsInfo, HevcError> {
    let rbsp = rbsp_of(nal, NAL_VPS)?;
    let mut r = BitReader::new(&rbsp);
    let vps_id = r.bits_u8(4, "vps_video_parameter_set_id")?;
    r.skip(1, "vps_base_layer_internal_flag")?;
    r.skip(1, "vps_base_layer_available_flag")?;
    r.skip(6, "vps_max_layers_minus1")?;
    let vps_max_sub_layers_minus1 = r.bits_u8(3, "vps_max_sub_layers_minus1")?;
    if vps_max_sub_layers_minus1 > 6 {
        return Err(HevcError::InvalidValue("vps_max_sub_layers_minus1"));
    }
    let temporal_id_nesting = r.flag("vps_temporal_id_nesting_flag")?;
    r.skip(16, "vps_reserved_0xffff_16bits")?;
    let ptl = parse_ptl(&mut r, vps_max_sub_layers_minus1)?;
    Ok(HevcVpsInfo {
        vps_id,
        vps_max_sub_layers_minus1,
        temporal_id_nesting,
        general_profile_idc: ptl.profile_idc,
        general_level_idc: ptl.level_idc,
    })
}

/// `scaling_list_data()` (H.265 §7.3.4), values discarded.
fn skip_scaling_list_data(r: &mut BitReader<'_>) -> Result<(), HevcError> {
    for size_id in 0..4u32 {
        let step = if size_id == 3 { 3 } else { 1 };
        let mut matrix_id = 0;
        while matrix_id < 6 {
            if !r.flag("scaling_list_pred_mode_flag")? {
                r.ue("scaling_list_pred_matrix_id_delta")?;
            } else {
                let coef_num = 64.min(1u32 << (4 + (size_id << 1)));
                if size_id > 1 {
                    r.skip_se("scaling_list_dc_coef_minus8")?;
                }
                for _ in 0..coef_num {
                    r.skip_se("scaling_list_delta_coef")?;
                }
            }
            matrix_id += step;
        }
    }
    Ok(())
}

/// `st_ref_pic_set(idx)` as it appears in the SPS (H.265 §7.3.7); returns
/// `NumDeltaPocs[idx]` (§7.4.8).
fn parse_st_ref_pic_set(
    r: &mut BitReader<'_>,
    idx: usize,
    num_delta_pocs: &[u32],
) -> Result<u32, HevcError> {
    let inter_rps_pred = idx != 0 && r.flag("inter_ref_pic_set_prediction_flag")?;
    if inter_rps_pred {
        // In the SPS delta_idx_minus1 is absent (idx < num_short_term_ref_pic_sets),
        // so RefRpsIdx = idx - 1.
        r.skip(1, "delta_rps_sign")?;
        r.ue_max(1 << 15, "abs_delta_rps_minus1")?;
        let ref_num = num_delta_pocs.get(idx - 1).copied().unwrap_or(0);
        let mut count = 0;
        for _ in 0..=ref_num {
            let used_by_curr = r.flag("used_by_curr_pic_flag")?;
            let use_delta = used_by_curr || r.flag("use_delta_flag")?;
            if use_delta {
                count += 1;
            }
        }
        Ok(count)
    } else {
        let num_negative = r.ue_max(16, "num_negative_pics")?;
        let num_positive = r.ue_max(16, "num_positive_pics")?;
        for _ in 0..num_negative + num_positive {
            r.ue_max(1 << 15, "delta_poc_minus1")?;
            r.skip(1, "used_by_curr_pic_flag")?;
        }
        Ok(num_negative + num_positive)
    }
}

/// `sub_layer_hrd_parameters()` (H.265 §E.2.3), values discarded.
fn skip_sub_layer_hrd(
    r: &mut BitReader<'_>,
    cpb_cnt: u32,
    sub_pic_hrd_params_present: bool,
) -> Result<(), HevcError> {
    for _ in 0..cpb_cnt {
        r.ue("bit_rate_value_minus1")?;
        r.ue("cpb_size_value_minus1")?;
        if sub_pic_hrd_params_present {
            r.ue("cpb_size_du_value_minus1")?;
            r.ue("bit_rate_du_value_minus1")?;
        }
        r.skip(1, "cbr_flag")?;
    }
    Ok(())
}

/// `hrd_parameters(1, max_sub_layers_minus1)` (H.265 §E.2.2), values discarded.
fn skip_hrd_parameters(r: &mut BitReader<'_>, max_sub_layers_minus1: u8) -> Result<(), HevcError> {
    let nal_hrd = r.flag("nal_hrd_parameters_present_flag")?;
    let vcl_hrd = r.flag("vcl_hrd_parameters_present_flag")?;
    let mut sub_pic_hrd_params_present = false;
    if nal_hrd || vcl_hrd {
        sub_pic_hrd_params_present = r.flag("sub_pic_hrd_params_present_flag")?;
        if sub_pic_hrd_params_present {
            r.skip(8 + 5 + 1 + 5, "sub_pic_hrd_params")?;
        }
        r.skip(4 + 4, "bit_rate_scale/cpb_size_scale")?;
        if sub_pic_hrd_params_present {
            r.skip(4, "cpb_size_du_scale")?;
        }
        r.skip(5 + 5 + 5, "hrd delay lengths")?;
    }
    for _ in 0..=max_sub_layers_minus1 {
        let fixed_pic_rate_general = r.flag("fixed_pic_rate_general_flag")?;
        let fixed_pic_rate_within_cvs =
            fixed_pic_rate_general || r.flag("fixed_pic_rate_within_cvs_flag")?;
        let mut low_delay_hrd = false;
        if fixed_pic_rate_within_cvs {
            r.ue_max(2047, "elemental_duration_in_tc_minus1")?;
        } else {
            low_delay_hrd = r.flag("low_delay_hrd_flag")?;
        }
        let cpb_cnt = if low_delay_hrd {
            1
        } else {
            r.ue_max(31, "cpb_cnt_minus1")? + 1
        };
        if nal_hrd {
            skip_sub_layer_hrd(r, cpb_cnt, sub_pic_hrd_params_present)?;
        }
        if vcl_hrd {
            skip_sub_layer_hrd(r, cpb_cnt, sub_pic_hrd_params_present)?;
        }
    }
    Ok(())
}

/// `vui_parameters()` (H.265 §E.2.1); returns `min_spatial_segmentation_idc`
/// (0 without bitstream restriction).
fn parse_vui(r: &mut BitReader<'_>, max_sub_layers_minus1: u8) -> Result<u16, HevcError> {
    if r.flag("aspect_ratio_info_present_flag")? && r.u(8, "aspect_ratio_idc")? == 255 {
        r.skip(32, "sar_width/sar_height")?;
    }
    if r.flag("overscan_info_present_flag")? {
        r.skip(1, "overscan_appropriate_flag")?;
    }
    if r.flag("video_signal_type_present_flag")? {
        r.skip(3 + 1, "video_format/video_full_range_flag")?;
        if r.flag("colour_description_present_flag")? {
            r.skip(24, "colour_description")?;
        }
    }
    if r.flag("chroma_loc_info_present_flag")? {
        r.ue_max(5, "chroma_sample_loc_type_top_field")?;
        r.ue_max(5, "chroma_sample_loc_type_bottom_field")?;
    }
    r.skip(3, "neutral_chroma/field_seq/frame_field_info")?;
    if r.flag("default_display_window_flag")? {
        for _ in 0..4 {
            r.ue("def_disp_win_offset")?;
        }
    }
    if r.flag("vui_timing_info_present_flag")? {
        r.skip(64, "vui_num_units_in_tick/vui_time_scale")?;
        if r.flag("vui_poc_proportional_to_timing_flag")? {
            r.ue("vui_num_ticks_poc_diff_one_minus1")?;
        }
        if r.flag("vui_hrd_parameters_present_flag")? {
            skip_hrd_parameters(r, max_sub_layers_minus1)?;
        }
    }
    if r.flag("bitstream_restriction_flag")? {
        r.skip(
            3,
            "tiles_fixed/mv_over_pic_boundaries/restricted_ref_pic_lists",
        )?;
        let idc = r.ue_max(4095, "min_spatial_segmentation_idc")?;
        r.ue_max(16, "max_bytes_per_pic_denom")?;
        r.ue_max(16, "max_bits_per_min_cu_denom")?;
        r.ue_max(15, "log2_max_mv_length_horizontal")?;
        r.ue_max(15, "log2_max_mv_length_vertical")?;
        return Ok(idc as u16);
    }
    Ok(0)
}

/// Parses an H.265 sequence parameter set NAL unit (H.265 §7.3.2.2) through
/// `vui_parameters()`.
///
/// Handles `profile_tier_level()` with sub-layers, scaling lists, PCM,
/// short-term RPS (including inter-RPS prediction), long-term reference
/// pictures and the full VUI with HRD parameters, so that
/// `min_spatial_segmentation_idc` is found; the SPS extensions after the
/// VUI are not read.
///
/// # Errors
/// [`HevcError::InvalidNalHeader`], [`HevcError::WrongNalType`] (not type
/// 33), [`HevcError::UnsupportedLayer`] (`nuh_layer_id > 0`),
/// [`HevcError::Truncated`], [`HevcError::InvalidValue`] for values out of
/// their H.265 range (e.g. `chroma_format_idc > 3`, bit depth > 16, zero
/// picture size).
pub fn parse_sps(nal: &[u8]) -> Result<HevcSpsInfo, HevcError> {
    let rbsp = rbsp_of(nal, NAL_SPS)?;
    parse_sps_rbsp(&mut BitReader::new(&rbsp))
}

/// SPS RBSP parsing; leaves `r` at `sps_extension_present_flag`.
fn parse_sps_rbsp(r: &mut BitReader<'_>) -> Result<HevcSpsInfo, HevcError> {
    let rbsp = r.data();
    let vps_id = r.bits_u8(4, "sps_video_parameter_set_id")?;
    let sps_max_sub_layers_minus1 = r.bits_u8(3, "sps_max_sub_layers_minus1")?;
    if sps_max_sub_layers_minus1 > 6 {
        return Err(HevcError::InvalidValue("sps_max_sub_layers_minus1"));
    }
    let temporal_id_nesting = r.flag("sps_temporal_id_nesting_flag")?;
    let ptl = parse_ptl(r, sps_max_sub_layers_minus1)?;
    // The general PTL is byte aligned right after the first RBSP byte.
    let profile_tier_level_bytes = rbsp
        .get(1..13)
        .ok_or(HevcError::Truncated("profile_tier_level"))?
        .to_vec();
    let sps_id = r.ue_max(15, "sps_seq_parameter_set_id")?;
    let chroma_format_idc = r.ue_max(3, "chroma_format_idc")? as u8;
    let separate_colour_plane = chroma_format_idc == 3 && r.flag("separate_colour_plane_flag")?;
    let pic_width = r.ue("pic_width_in_luma_samples")?;
    let pic_height = r.ue("pic_height_in_luma_samples")?;
    if pic_width == 0 || pic_height == 0 {
        return Err(HevcError::InvalidValue("pic_width/height_in_luma_samples"));
    }
    let mut conf_win = ConformanceWindow::default();
    if r.flag("conformance_window_flag")? {
        // SubWidthC/SubHeightC (Table 6-1); ChromaArrayType 0 when separate planes.
        let (sub_w, sub_h) = match (chroma_format_idc, separate_colour_plane) {
            (1, _) => (2, 2),
            (2, _) => (2, 1),
            _ => (1, 1),
        };
        let left = r.ue("conf_win_left_offset")?;
        let right = r.ue("conf_win_right_offset")?;
        let top = r.ue("conf_win_top_offset")?;
        let bottom = r.ue("conf_win_bottom_offset")?;
        conf_win = ConformanceWindow {
            left: left.saturating_mul(sub_w),
            right: right.saturating_mul(sub_w),
            top: top.saturating_mul(sub_h),
            bottom: bottom.saturating_mul(sub_h),
        };
    }
    let bit_depth_luma = r.ue_max(8, "bit_depth_luma_minus8")? as u8 + 8;
    let bit_depth_chroma = r.ue_max(8, "bit_depth_chroma_minus8")? as u8 + 8;
    let log2_max_poc_lsb = r.ue_max(12, "log2_max_pic_order_cnt_lsb_minus4")? + 4;
    let sub_layer_ordering_info_present = r.flag("sps_sub_layer_ordering_info_present_flag")?;
    let first = if sub_layer_ordering_info_present {
        0
    } else {
        sps_max_sub_layers_minus1
    };
    for _ in first..=sps_max_sub_layers_minus1 {
        r.ue_max(15, "sps_max_dec_pic_buffering_minus1")?;
        r.ue_max(15, "sps_max_num_reorder_pics")?;
        r.ue("sps_max_latency_increase_plus1")?;
    }
    r.ue("log2_min_luma_coding_block_size_minus3")?;
    r.ue("log2_diff_max_min_luma_coding_block_size")?;
    r.ue("log2_min_luma_transform_block_size_minus2")?;
    r.ue("log2_diff_max_min_luma_transform_block_size")?;
    r.ue("max_transform_hierarchy_depth_inter")?;
    r.ue("max_transform_hierarchy_depth_intra")?;
    if r.flag("scaling_list_enabled_flag")? && r.flag("sps_scaling_list_data_present_flag")? {
        skip_scaling_list_data(r)?;
    }
    r.skip(2, "amp_enabled_flag/sample_adaptive_offset_enabled_flag")?;
    if r.flag("pcm_enabled_flag")? {
        r.skip(8, "pcm_sample_bit_depth")?;
        r.ue("log2_min_pcm_luma_coding_block_size_minus3")?;
        r.ue("log2_diff_max_min_pcm_luma_coding_block_size")?;
        r.skip(1, "pcm_loop_filter_disabled_flag")?;
    }
    let num_short_term_ref_pic_sets = r.ue_max(64, "num_short_term_ref_pic_sets")? as usize;
    let mut num_delta_pocs = Vec::with_capacity(num_short_term_ref_pic_sets);
    for idx in 0..num_short_term_ref_pic_sets {
        let n = parse_st_ref_pic_set(r, idx, &num_delta_pocs)?;
        num_delta_pocs.push(n);
    }
    if r.flag("long_term_ref_pics_present_flag")? {
        let num = r.ue_max(32, "num_long_term_ref_pics_sps")?;
        for _ in 0..num {
            r.skip(log2_max_poc_lsb as usize + 1, "lt_ref_pic_poc_lsb_sps")?;
        }
    }
    r.skip(
        2,
        "sps_temporal_mvp_enabled_flag/strong_intra_smoothing_enabled_flag",
    )?;
    let min_spatial_segmentation_idc = if r.flag("vui_parameters_present_flag")? {
        parse_vui(r, sps_max_sub_layers_minus1)?
    } else {
        0
    };

    Ok(HevcSpsInfo {
        vps_id,
        sps_id,
        general_profile_space: ptl.profile_space,
        general_tier_flag: ptl.tier_flag,
        general_profile_idc: ptl.profile_idc,
        general_profile_compatibility_flags: ptl.compatibility_flags,
        general_constraint_indicator_flags: ptl.constraint_flags,
        general_level_idc: ptl.level_idc,
        chroma_format_idc,
        separate_colour_plane,
        bit_depth_luma,
        bit_depth_chroma,
        pic_width,
        pic_height,
        conf_win,
        sps_max_sub_layers_minus1,
        temporal_id_nesting,
        min_spatial_segmentation_idc,
        profile_tier_level_bytes,
    })
}

/// Builds an `HEVCDecoderConfigurationRecord` (ISO/IEC 14496-15 §8.3.3.1),
/// the payload of the `hvcC` box and GStreamer's `codec_data` for
/// `video/x-h265, stream-format=hvc1`.
///
/// `vps`, `sps`, `pps` are NAL units (2-byte header included, emulation
/// prevention bytes kept, no start code). The profile/tier/level,
/// chroma format, bit depths, `min_spatial_segmentation_idc` and
/// `temporalIdNested` come from the first SPS; `numTemporalLayers` is the
/// larger of `sps_max_sub_layers_minus1 + 1` and, when the first VPS parses,
/// `vps_max_sub_layers_minus1 + 1`. Fixed fields: `configurationVersion = 1`,
/// `parallelismType = 0` (unknown, always valid), `avgFrameRate = 0`,
/// `constantFrameRate = 0`, `lengthSizeMinusOne = length_size - 1`. Three
/// arrays follow in the order VPS, SPS, PPS, each with
/// `array_completeness = 1` (all parameter sets are in the record, as
/// required for the `hvc1` sample entry, §8.4.1.1.2).
///
/// # Errors
/// [`HevcError::InvalidLengthSize`] unless `length_size` is 1, 2 or 4;
/// [`HevcError::MissingParameterSet`] if a list is empty;
/// [`HevcError::WrongNalType`]/[`HevcError::InvalidNalHeader`] if a NAL unit
/// is not of its list's type; errors of [`parse_sps`] for the first SPS;
/// [`HevcError::TooLarge`] for NAL units over 65535 bytes or over 65535
/// NAL units in one list.
pub fn build_hvcc(
    vps: &[&[u8]],
    sps: &[&[u8]],
    pps: &[&[u8]],
    length_size: u8,
) -> Result<Vec<u8>, HevcError> {
    if !matches!(length_size, 1 | 2 | 4) {
        return Err(HevcError::InvalidLengthSize(length_size));
    }
    let arrays: [(u8, &'static str, &[&[u8]]); 3] = [
        (NAL_VPS, "VPS", vps),
        (NAL_SPS, "SPS", sps),
        (NAL_PPS, "PPS", pps),
    ];
    for (nal_type, name, nals) in arrays {
        if nals.is_empty() {
            return Err(HevcError::MissingParameterSet(name));
        }
        for nal in nals {
            if nal.len() < 2 || nal[0] & 0x80 != 0 {
                return Err(HevcError::InvalidNalHeader);
            }
            let found = (nal[0] >> 1) & 0x3f;
            if found != nal_type {
                return Err(HevcError::WrongNalType {
                    expected: nal_type,
                    found,
                });
            }
        }
    }
    let info = parse_sps(sps[0])?;
    let vps_sub_layers = parse_vps(vps[0]).map_or(0, |v| v.vps_max_sub_layers_minus1);
    let num_temporal_layers = info.sps_max_sub_layers_minus1.max(vps_sub_layers) + 1;

    let mut out = Vec::with_capacity(
        23 + arrays
            .iter()
            .flat_map(|(_, _, nals)| nals.iter())
            .map(|n| n.len() + 2)
            .sum::<usize>()
            + 9,
    );
    out.push(1); // configurationVersion
    out.push(
        ((info.general_profile_space & 3) << 6)
            | ((info.general_tier_flag & 1) << 5)
            | (info.general_profile_idc & 0x1f),
    );
    out.extend_from_slice(&info.general_profile_compatibility_flags.to_be_bytes());
    out.extend_from_slice(&info.general_constraint_indicator_flags.to_be_bytes()[2..]);
    out.push(info.general_level_idc);
    out.extend_from_slice(&(0xf000 | info.min_spatial_segmentation_idc).to_be_bytes());
    out.push(0xfc); // reserved '111111', parallelismType = 0
    out.push(0xfc | info.chroma_format_idc);
    out.push(0xf8 | (info.bit_depth_luma - 8));
    out.push(0xf8 | (info.bit_depth_chroma - 8));
    out.extend_from_slice(&[0, 0]); // avgFrameRate = 0
    out.push(
        // constantFrameRate = 0 (2 bits), numTemporalLayers (3), temporalIdNested (1),
        // lengthSizeMinusOne (2)
        ((num_temporal_layers & 7) << 3)
            | (u8::from(info.temporal_id_nesting) << 2)
            | (length_size - 1),
    );
    out.push(3); // numOfArrays
    for (nal_type, name, nals) in arrays {
        out.push(0x80 | nal_type); // array_completeness = 1, reserved = 0
        let count = u16::try_from(nals.len()).map_err(|_| HevcError::TooLarge(name))?;
        out.extend_from_slice(&count.to_be_bytes());
        for nal in nals {
            let len = u16::try_from(nal.len()).map_err(|_| HevcError::TooLarge("nalUnitLength"))?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(nal);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // ----- helpers ---------------------------------------------------------

    /// Minimal Annex B splitter so these tests do not depend on the `nal` module.
    fn nals_of(data: &[u8]) -> Vec<&[u8]> {
        let mut starts = Vec::new();
        let mut i = 0;
        while i + 3 <= data.len() {
            if data[i..i + 3] == [0, 0, 1] {
                starts.push(i + 3);
                i += 3;
            } else {
                i += 1;
            }
        }
        let mut out = Vec::new();
        for (k, &s) in starts.iter().enumerate() {
            let mut end = starts.get(k + 1).map_or(data.len(), |&n| n - 3);
            while end > s && data[end - 1] == 0 {
                end -= 1;
            }
            out.push(&data[s..end]);
        }
        out
    }

    fn of_type(nals: &[&'static [u8]], t: u8) -> Vec<&'static [u8]> {
        nals.iter()
            .copied()
            .filter(|n| (n[0] >> 1) & 0x3f == t)
            .collect()
    }

    use crate::bits::BitWriter;

    /// `rbsp_trailing_bits()` and emulation prevention, NAL header prepended.
    fn into_nal(w: BitWriter, nal_type: u8) -> Vec<u8> {
        let mut out = vec![nal_type << 1, 1];
        let mut zeros = 0;
        for b in w.finish() {
            if zeros >= 2 && b <= 3 {
                out.push(3);
                zeros = 0;
            }
            zeros = if b == 0 { zeros + 1 } else { 0 };
            out.push(b);
        }
        out
    }

    /// Options for a synthetic SPS.
    #[derive(Clone)]
    struct Sps {
        sub_layers_minus1: u8,
        chroma: u8,
        width: u32,
        height: u32,
        conf: Option<[u32; 4]>,
        depth_luma: u8,
        depth_chroma: u8,
        scaling_list: bool,
        pcm: bool,
        inter_rps: bool,
        long_term: bool,
        vui: Option<Vui>,
    }

    #[derive(Clone)]
    struct Vui {
        hrd: bool,
        min_spatial_segmentation: Option<u16>,
    }

    fn base_sps() -> Sps {
        Sps {
            sub_layers_minus1: 0,
            chroma: 1,
            width: 1920,
            height: 1088,
            conf: Some([0, 0, 0, 4]),
            depth_luma: 8,
            depth_chroma: 8,
            scaling_list: false,
            pcm: false,
            inter_rps: false,
            long_term: false,
            vui: None,
        }
    }

    fn write_ptl(w: &mut BitWriter, sub_layers_minus1: u8) {
        w.put(2, 0);
        w.put(1, 1); // high tier
        w.put(5, 2); // Main 10
        w.put(32, 0x3000_0000);
        w.put(48, 0xb000_0000_0000);
        w.put(8, 153);
        let n = u32::from(sub_layers_minus1);
        for i in 0..n {
            w.flag(i % 2 == 0); // profile present for even
            w.flag(true);
        }
        if n > 0 {
            w.put(2 * (8 - n), 0);
        }
        for i in 0..n {
            if i % 2 == 0 {
                w.put(88, 0x5555);
            }
            w.put(8, 120);
        }
    }

    fn write_sps(s: &Sps) -> Vec<u8> {
        let mut w = BitWriter::default();
        w.put(4, 0);
        w.put(3, u64::from(s.sub_layers_minus1));
        w.flag(true);
        write_ptl(&mut w, s.sub_layers_minus1);
        w.ue(0);
        w.ue(u32::from(s.chroma));
        if s.chroma == 3 {
            w.flag(false);
        }
        w.ue(s.width);
        w.ue(s.height);
        w.flag(s.conf.is_some());
        if let Some(c) = s.conf {
            c.iter().for_each(|&v| w.ue(v));
        }
        w.ue(u32::from(s.depth_luma - 8));
        w.ue(u32::from(s.depth_chroma - 8));
        w.ue(4); // log2_max_poc_lsb = 8
        w.flag(true);
        for _ in 0..=s.sub_layers_minus1 {
            w.ue(4);
            w.ue(2);
            w.ue(0);
        }
        for v in [0, 3, 0, 3, 2, 2] {
            w.ue(v);
        }
        w.flag(s.scaling_list);
        if s.scaling_list {
            w.flag(true);
            for size_id in 0..4u32 {
                let mut m = 0;
                while m < 6 {
                    let explicit = m % 2 == 0;
                    w.flag(explicit);
                    if explicit {
                        if size_id > 1 {
                            w.se(-3);
                        }
                        for k in 0..64.min(1u32 << (4 + 2 * size_id)) {
                            w.se(if k % 3 == 0 { 5 } else { -7 });
                        }
                    } else {
                        w.ue(0);
                    }
                    m += if size_id == 3 { 3 } else { 1 };
                }
            }
        }
        w.put(2, 0b11);
        w.flag(s.pcm);
        if s.pcm {
            w.put(8, 0x77);
            w.ue(0);
            w.ue(1);
            w.flag(true);
        }
        if s.inter_rps {
            w.ue(3);
            // RPS 0: 2 negative, 1 positive
            w.ue(2);
            w.ue(1);
            for _ in 0..3 {
                w.ue(0);
                w.flag(true);
            }
            // RPS 1: predicted from RPS 0 (NumDeltaPocs 3 -> 4 flags)
            w.flag(true);
            w.flag(false);
            w.ue(0);
            for (used, use_delta) in [(true, true), (false, false), (false, true), (true, true)] {
                w.flag(used);
                if !used {
                    w.flag(use_delta);
                }
            }
            // RPS 2: predicted from RPS 1 (NumDeltaPocs 3 -> 4 flags)
            w.flag(true);
            w.flag(true);
            w.ue(1);
            for _ in 0..4 {
                w.flag(false);
                w.flag(false);
            }
        } else {
            w.ue(1);
            w.ue(1);
            w.ue(0);
            w.ue(0);
            w.flag(true);
        }
        w.flag(s.long_term);
        if s.long_term {
            w.ue(2);
            for _ in 0..2 {
                w.put(8, 0xa5);
                w.flag(true);
            }
        }
        w.put(2, 0b11);
        w.flag(s.vui.is_some());
        if let Some(v) = &s.vui {
            w.flag(true); // aspect_ratio_info_present_flag
            w.put(8, 255);
            w.put(32, 0x0001_0001);
            w.flag(true); // overscan
            w.flag(false);
            w.flag(true); // video_signal_type
            w.put(4, 0b1011);
            w.flag(true);
            w.put(24, 0x01_01_01);
            w.flag(true); // chroma_loc
            w.ue(1);
            w.ue(1);
            w.put(3, 0);
            w.flag(true); // default display window
            for x in [2, 4, 6, 8] {
                w.ue(x);
            }
            w.flag(true); // timing
            w.put(32, 1001);
            w.put(32, 60000);
            w.flag(true);
            w.ue(0);
            w.flag(v.hrd);
            if v.hrd {
                w.flag(true); // nal
                w.flag(true); // vcl
                w.flag(true); // sub_pic_hrd_params_present_flag
                w.put(19, 0x12345);
                w.put(8, 0x44);
                w.put(4, 3);
                w.put(15, 0x7fff);
                for i in 0..=s.sub_layers_minus1 {
                    let general = i == 0;
                    w.flag(general);
                    let within = general || i % 2 == 1;
                    if !general {
                        w.flag(within);
                    }
                    let mut low_delay = false;
                    if within {
                        w.ue(0);
                    } else {
                        low_delay = i % 4 == 2;
                        w.flag(low_delay);
                    }
                    let cpb = if low_delay { 1 } else { 2 };
                    if !low_delay {
                        w.ue(cpb - 1);
                    }
                    for _ in 0..2 {
                        for _ in 0..cpb {
                            for x in [1000, 2000, 300, 400] {
                                w.ue(x);
                            }
                            w.flag(false);
                        }
                    }
                }
            }
            w.flag(v.min_spatial_segmentation.is_some());
            if let Some(m) = v.min_spatial_segmentation {
                w.put(3, 0b101);
                w.ue(u32::from(m));
                for x in [2, 1, 15, 15] {
                    w.ue(x);
                }
            }
        }
        w.flag(false); // sps_extension_present_flag
        into_nal(w, NAL_SPS)
    }

    fn write_vps(sub_layers_minus1: u8) -> Vec<u8> {
        let mut w = BitWriter::default();
        w.put(4, 0);
        w.put(2, 0b11);
        w.put(6, 0);
        w.put(3, u64::from(sub_layers_minus1));
        w.flag(true);
        w.put(16, 0xffff);
        write_ptl(&mut w, sub_layers_minus1);
        w.flag(false);
        into_nal(w, NAL_VPS)
    }

    fn check_synthetic(s: &Sps) -> HevcSpsInfo {
        let nal = write_sps(s);
        let info = parse_sps(&nal).expect("parse_sps");
        assert!(parses_to_the_end(&nal));
        assert_eq!(info.general_profile_idc, 2);
        assert_eq!(info.general_tier_flag, 1);
        assert_eq!(info.general_profile_compatibility_flags, 0x3000_0000);
        assert_eq!(info.general_constraint_indicator_flags, 0xb000_0000_0000);
        assert_eq!(info.general_level_idc, 153);
        assert_eq!(
            info.profile_tier_level_bytes,
            vec![0x22, 0x30, 0, 0, 0, 0xb0, 0, 0, 0, 0, 0, 153]
        );
        assert_eq!(info.chroma_format_idc, s.chroma);
        assert_eq!((info.pic_width, info.pic_height), (s.width, s.height));
        assert_eq!(
            (info.bit_depth_luma, info.bit_depth_chroma),
            (s.depth_luma, s.depth_chroma)
        );
        assert_eq!(info.sps_max_sub_layers_minus1, s.sub_layers_minus1);
        assert!(info.temporal_id_nesting);
        let expected_seg = s
            .vui
            .as_ref()
            .and_then(|v| v.min_spatial_segmentation)
            .unwrap_or(0);
        assert_eq!(info.min_spatial_segmentation_idc, expected_seg);
        // Only rbsp_trailing_bits and sps_extension_present_flag follow the
        // last element read, so dropping 3 or more bytes must fail.
        for n in 0..nal.len() {
            let r = parse_sps(&nal[..n]);
            if n + 3 <= nal.len() {
                assert!(r.is_err(), "prefix {n} of {}", nal.len());
            }
        }
        info
    }

    /// Parses an SPS and checks that exactly `sps_extension_present_flag = 0`
    /// and `rbsp_trailing_bits()` remain: proof that every element before
    /// (VUI, HRD, RPS, ...) was consumed with the right length. Returns false
    /// (nothing checked) when the SPS has extensions.
    fn parses_to_the_end(nal: &[u8]) -> bool {
        let rbsp = rbsp_of(nal, NAL_SPS).unwrap();
        let mut r = BitReader::new(&rbsp);
        parse_sps_rbsp(&mut r).unwrap();
        if r.flag("sps_extension_present_flag").unwrap() {
            return false;
        }
        assert!(r.flag("rbsp_stop_one_bit").unwrap(), "stop bit");
        while r.bit_pos() < rbsp.len() * 8 {
            assert!(!r.flag("rbsp_alignment_zero_bit").unwrap(), "alignment bit");
        }
        assert_eq!(r.bit_pos() % 8, 0);
        true
    }

    // ----- synthetic parameter sets ------------------------------------------

    #[test]
    fn synthetic_sps_basic_and_conformance_window() {
        let info = check_synthetic(&base_sps());
        assert_eq!(
            info.conf_win,
            ConformanceWindow {
                left: 0,
                right: 0,
                top: 0,
                bottom: 8
            }
        );
        assert_eq!((info.cropped_width(), info.cropped_height()), (1920, 1080));

        let mut s = base_sps();
        s.chroma = 2;
        s.conf = Some([1, 2, 3, 4]);
        s.depth_luma = 12;
        s.depth_chroma = 10;
        let info = check_synthetic(&s);
        assert_eq!(
            info.conf_win,
            ConformanceWindow {
                left: 2,
                right: 4,
                top: 3,
                bottom: 4
            }
        );

        s.chroma = 3;
        s.conf = Some([1, 2, 3, 4]);
        let info = check_synthetic(&s);
        assert_eq!(
            info.conf_win,
            ConformanceWindow {
                left: 1,
                right: 2,
                top: 3,
                bottom: 4
            }
        );

        s.chroma = 0;
        s.conf = None;
        let info = check_synthetic(&s);
        assert_eq!(info.conf_win, ConformanceWindow::default());
    }

    #[test]
    fn synthetic_sps_sub_layers_scaling_pcm_rps_long_term() {
        for sub in 0..=6 {
            let mut s = base_sps();
            s.sub_layers_minus1 = sub;
            s.scaling_list = true;
            s.pcm = true;
            s.inter_rps = true;
            s.long_term = true;
            check_synthetic(&s);
        }
    }

    #[test]
    fn synthetic_sps_vui_with_hrd_and_bitstream_restriction() {
        for sub in [0, 1, 2, 3, 6] {
            for hrd in [false, true] {
                for seg in [None, Some(0), Some(1), Some(4095)] {
                    let mut s = base_sps();
                    s.sub_layers_minus1 = sub;
                    s.vui = Some(Vui {
                        hrd,
                        min_spatial_segmentation: seg,
                    });
                    check_synthetic(&s);
                }
            }
        }
        // Out-of-range min_spatial_segmentation_idc.
        let mut s = base_sps();
        s.vui = Some(Vui {
            hrd: false,
            min_spatial_segmentation: Some(4096),
        });
        assert_eq!(
            parse_sps(&write_sps(&s)),
            Err(HevcError::InvalidValue("min_spatial_segmentation_idc"))
        );
    }

    #[test]
    fn synthetic_vps_and_hvcc_layout() {
        let mut s = base_sps();
        s.sub_layers_minus1 = 2;
        s.vui = Some(Vui {
            hrd: false,
            min_spatial_segmentation: Some(300),
        });
        s.chroma = 2;
        s.depth_luma = 10;
        s.depth_chroma = 12;
        let sps = write_sps(&s);
        let sps = sps.as_slice();
        let vps = write_vps(3);
        let vps = vps.as_slice();
        let info = parse_vps(vps).unwrap();
        assert_eq!(info.vps_max_sub_layers_minus1, 3);
        assert_eq!((info.general_profile_idc, info.general_level_idc), (2, 153));
        let pps = [0x44u8, 0x01, 0xc1, 0x72, 0xb4, 0x62, 0x40];
        let pps2 = [0x44u8, 0x01, 0xc0, 0x80];
        let hvcc = build_hvcc(&[vps], &[sps], &[&pps[..], &pps2[..]], 4).unwrap();
        assert_eq!(hvcc[0], 1);
        assert_eq!(hvcc[1], 0x22);
        assert_eq!(&hvcc[2..6], &[0x30, 0, 0, 0]);
        assert_eq!(&hvcc[6..12], &[0xb0, 0, 0, 0, 0, 0]);
        assert_eq!(hvcc[12], 153);
        assert_eq!(&hvcc[13..15], &[0xf1, 0x2c]); // 300
        assert_eq!(hvcc[15], 0xfc);
        assert_eq!(hvcc[16], 0xfe);
        assert_eq!(hvcc[17], 0xfa);
        assert_eq!(hvcc[18], 0xfc);
        assert_eq!(&hvcc[19..21], &[0, 0]);
        // 4 temporal layers (from the VPS), nested, lengthSizeMinusOne 3
        assert_eq!(hvcc[21], (4 << 3) | (1 << 2) | 3);
        assert_eq!(hvcc[22], 3);
        let mut pos = 23;
        for (t, nals) in [
            (32u8, vec![vps]),
            (33, vec![sps]),
            (34, vec![&pps[..], &pps2[..]]),
        ] {
            assert_eq!(hvcc[pos], 0x80 | t);
            assert_eq!(
                usize::from(u16::from_be_bytes([hvcc[pos + 1], hvcc[pos + 2]])),
                nals.len()
            );
            pos += 3;
            for nal in nals {
                let len = usize::from(u16::from_be_bytes([hvcc[pos], hvcc[pos + 1]]));
                assert_eq!(&hvcc[pos + 2..pos + 2 + len], nal);
                pos += 2 + len;
            }
        }
        assert_eq!(pos, hvcc.len());

        // length sizes
        assert_eq!(
            build_hvcc(&[vps], &[sps], &[&pps[..]], 1).unwrap()[21] & 3,
            0
        );
        assert_eq!(
            build_hvcc(&[vps], &[sps], &[&pps[..]], 2).unwrap()[21] & 3,
            1
        );
        for bad in [0, 3, 5, 255] {
            assert_eq!(
                build_hvcc(&[vps], &[sps], &[&pps[..]], bad),
                Err(HevcError::InvalidLengthSize(bad))
            );
        }
    }

    #[test]
    fn emulation_prevention_removal() {
        assert_eq!(unescape(&[0, 0, 3, 1]), vec![0, 0, 1]);
        assert_eq!(unescape(&[0, 0, 3, 0, 0, 3]), vec![0, 0, 0, 0]);
        assert_eq!(unescape(&[0, 0, 0, 3]), vec![0, 0, 0]);
        assert_eq!(unescape(&[0, 3, 0, 3]), vec![0, 3, 0, 3]);
        assert_eq!(unescape(&[0, 0, 3, 3]), vec![0, 0, 3]);
        // A large picture width whose ue() needs 00 00 03 escapes.
        let mut s = base_sps();
        s.width = 8;
        s.height = 8;
        s.conf = Some([0, 0, 0, 0]);
        let nal = write_sps(&s);
        let info = parse_sps(&nal).unwrap();
        assert_eq!((info.pic_width, info.pic_height), (8, 8));
        // PTL bytes contain 00 00 00 runs in the coded SPS.
        assert!(nal.windows(3).any(|w| w == [0, 0, 3]));
    }

    #[test]
    fn error_cases() {
        let sps = write_sps(&base_sps());
        let sps = sps.as_slice();
        let vps = write_vps(0);
        let vps = vps.as_slice();
        let pps: &[u8] = &[0x44, 0x01, 0xc1];
        assert_eq!(parse_sps(&[]), Err(HevcError::InvalidNalHeader));
        assert_eq!(parse_sps(&[0x42]), Err(HevcError::InvalidNalHeader));
        assert_eq!(parse_sps(&[0xc2, 0x01]), Err(HevcError::InvalidNalHeader));
        assert_eq!(parse_sps(&[0x42, 0x00]), Err(HevcError::InvalidNalHeader));
        assert_eq!(
            parse_sps(&[0x42, 0x09]),
            Err(HevcError::UnsupportedLayer(1))
        );
        assert_eq!(
            parse_sps(vps),
            Err(HevcError::WrongNalType {
                expected: 33,
                found: 32
            })
        );
        assert_eq!(
            parse_vps(sps),
            Err(HevcError::WrongNalType {
                expected: 32,
                found: 33
            })
        );
        assert_eq!(
            parse_sps(&[0x42, 0x01]),
            Err(HevcError::Truncated("sps_video_parameter_set_id"))
        );
        assert_eq!(
            parse_sps(&[0x42, 0x01, 0x0e]),
            Err(HevcError::InvalidValue("sps_max_sub_layers_minus1"))
        );
        assert_eq!(
            build_hvcc(&[], &[sps], &[pps], 4),
            Err(HevcError::MissingParameterSet("VPS"))
        );
        assert_eq!(
            build_hvcc(&[vps], &[], &[pps], 4),
            Err(HevcError::MissingParameterSet("SPS"))
        );
        assert_eq!(
            build_hvcc(&[vps], &[sps], &[], 4),
            Err(HevcError::MissingParameterSet("PPS"))
        );
        assert_eq!(
            build_hvcc(&[vps], &[pps], &[sps], 4),
            Err(HevcError::WrongNalType {
                expected: 33,
                found: 34
            })
        );
        assert_eq!(
            build_hvcc(&[vps], &[sps], &[&[0x44u8][..]], 4),
            Err(HevcError::InvalidNalHeader)
        );
        let big = [&[0x44u8, 0x01][..], &[0u8; 65533][..]].concat();
        assert!(build_hvcc(&[vps], &[sps], &[big.as_slice()], 4).is_ok());
        let too_big = [&big[..], &[1u8][..]].concat();
        assert_eq!(
            build_hvcc(&[vps], &[sps], &[too_big.as_slice()], 4),
            Err(HevcError::TooLarge("nalUnitLength"))
        );
        // Zero-sized picture / bad chroma_format_idc via corrupted synthetic SPS.
        let mut s = base_sps();
        s.width = 0;
        assert_eq!(
            parse_sps(&write_sps(&s)),
            Err(HevcError::InvalidValue("pic_width/height_in_luma_samples"))
        );
        s.width = 16;
        s.chroma = 4;
        assert_eq!(
            parse_sps(&write_sps(&s)),
            Err(HevcError::InvalidValue("chroma_format_idc"))
        );
        let e: Box<dyn std::error::Error> = Box::new(HevcError::InvalidLengthSize(3));
        assert_eq!(
            e.to_string(),
            "invalid NAL length size 3 (must be 1, 2 or 4)"
        );
    }

    // ----- real x265 streams ---------------------------------------------------

    /// (Annex B stream from `ffmpeg -c:v libx265 -f hevc`, `hvcC` payload written
    /// by ffmpeg 5.1 `-c:v copy x.mp4`, profile_idc, chroma_format_idc, depth)
    type RealVector = (&'static [u8], &'static [u8], u8, u8, u8);

    const REAL: [RealVector; 3] = [
        (
            include_bytes!("testdata/hevc_420_8.h265"),
            include_bytes!("testdata/hevc_420_8.hvcC"),
            1,
            1,
            8,
        ),
        (
            include_bytes!("testdata/hevc_420_10.h265"),
            include_bytes!("testdata/hevc_420_10.hvcC"),
            2,
            1,
            10,
        ),
        (
            include_bytes!("testdata/hevc_444_8.h265"),
            include_bytes!("testdata/hevc_444_8.hvcC"),
            4,
            3,
            8,
        ),
    ];

    #[test]
    fn real_x265_sps() {
        for (stream, _, profile, chroma, depth) in REAL {
            let nals = nals_of(stream);
            let sps = of_type(&nals, NAL_SPS);
            assert_eq!(sps.len(), 1);
            let info = parse_sps(sps[0]).unwrap();
            assert_eq!((info.pic_width, info.pic_height), (720, 408));
            assert_eq!(
                info.conf_win,
                ConformanceWindow {
                    left: 0,
                    right: 0,
                    top: 0,
                    bottom: 2
                }
            );
            assert_eq!((info.cropped_width(), info.cropped_height()), (720, 406));
            assert_eq!(info.general_profile_idc, profile);
            assert_eq!(info.chroma_format_idc, chroma);
            assert_eq!((info.bit_depth_luma, info.bit_depth_chroma), (depth, depth));
            assert_eq!(info.general_level_idc, 90); // level 3
            assert_eq!(info.general_tier_flag, 0);
            assert_eq!(info.sps_max_sub_layers_minus1, 0);
            assert!(info.temporal_id_nesting);
            assert_eq!(info.min_spatial_segmentation_idc, 0);
            assert_eq!(info.profile_tier_level_bytes.len(), 12);
            assert_eq!(info.profile_tier_level_bytes[0], profile);
            let vps = parse_vps(of_type(&nals, NAL_VPS)[0]).unwrap();
            assert_eq!(vps.general_profile_idc, profile);
            assert_eq!(vps.vps_max_sub_layers_minus1, 0);
        }
    }

    #[test]
    fn real_x265_hvcc_matches_ffmpeg() {
        for (stream, expected, ..) in REAL {
            let nals = nals_of(stream);
            let hvcc = build_hvcc(
                &of_type(&nals, NAL_VPS),
                &of_type(&nals, NAL_SPS),
                &of_type(&nals, NAL_PPS),
                4,
            )
            .unwrap();
            assert_eq!(hvcc.len(), expected.len());
            // ffmpeg 5.1 (and GStreamer 1.22 h265parse, byte-identical) write
            // array_completeness = 0; we write 1 as required for `hvc1`.
            // Everything else is identical.
            let mut patched = expected.to_vec();
            let mut pos = 23;
            for _ in 0..3 {
                assert_eq!(patched[pos] & 0x80, 0);
                patched[pos] |= 0x80;
                let count = u16::from_be_bytes([patched[pos + 1], patched[pos + 2]]);
                pos += 3;
                for _ in 0..count {
                    pos += 2 + usize::from(u16::from_be_bytes([patched[pos], patched[pos + 1]]));
                }
            }
            assert_eq!(pos, patched.len());
            assert_eq!(hvcc, patched);
        }
    }

    #[test]
    fn real_sps_are_consumed_exactly() {
        let hrd: &[u8] = include_bytes!("testdata/hevc_hrd.h265");
        let mut checked = 0;
        for stream in REAL.iter().map(|v| v.0).chain([hrd]) {
            let nals = nals_of(stream);
            if parses_to_the_end(of_type(&nals, NAL_SPS)[0]) {
                checked += 1;
            }
        }
        // The 4:4:4 RExt SPS carries sps_range_extension(); all others are checked.
        assert!(checked >= 3, "checked {checked}");
    }

    /// x265 with `hrd=1:vbv-bufsize=2000:vbv-maxrate=1000:temporal-layers=1`:
    /// VUI with NAL+VCL HRD parameters, two temporal sub-layers (sub-layer
    /// profile_tier_level), `sps_temporal_id_nesting_flag = 0`.
    #[test]
    fn real_x265_hrd_and_temporal_layers() {
        let stream: &[u8] = include_bytes!("testdata/hevc_hrd.h265");
        let gst: &[u8] = include_bytes!("testdata/hevc_hrd.gst.hvcC");
        let ffmpeg: &[u8] = include_bytes!("testdata/hevc_hrd.ffmpeg.hvcC");
        let nals = nals_of(stream);
        let (vps, sps, pps) = (
            of_type(&nals, NAL_VPS),
            of_type(&nals, NAL_SPS),
            of_type(&nals, NAL_PPS),
        );
        let info = parse_sps(sps[0]).unwrap();
        assert_eq!(info.sps_max_sub_layers_minus1, 1);
        assert!(!info.temporal_id_nesting);
        assert_eq!((info.cropped_width(), info.cropped_height()), (720, 406));
        assert_eq!(info.min_spatial_segmentation_idc, 0); // no bitstream_restriction
        assert!(parses_to_the_end(sps[0]));
        assert_eq!(parse_vps(vps[0]).unwrap().vps_max_sub_layers_minus1, 1);
        let hvcc = build_hvcc(&vps, &sps, &pps, 4).unwrap();
        assert_eq!(hvcc[21], (2 << 3) | 3); // 2 layers, not nested, 4-byte lengths
        // GStreamer 1.22 h265parse codec_data: identical but array_completeness = 0.
        let mut expected = gst.to_vec();
        for (i, b) in hvcc.iter().enumerate() {
            if *b != expected[i] {
                assert_eq!(*b, expected[i] | 0x80, "byte {i}");
                expected[i] |= 0x80;
            }
        }
        assert_eq!(hvcc, expected);
        // ffmpeg 5.1 differs in min_spatial_segmentation_idc (2) and
        // parallelismType (3, WPP): its hevc.c skip_hrd_parameters() does not
        // infer fixed_pic_rate_within_cvs_flag = 1 from
        // fixed_pic_rate_general_flag = 1, so it misreads the rest of the VUI.
        // parses_to_the_end() above proves our reading consumes the SPS exactly.
        assert_eq!(&ffmpeg[13..16], &[0xf0, 0x02, 0xff]);
        assert_eq!(&gst[13..16], &[0xf0, 0x00, 0xfc]);
        assert_eq!(&ffmpeg[..13], &gst[..13]);
        assert_eq!(&ffmpeg[16..], &gst[16..]);
    }

    // ----- robustness --------------------------------------------------------------

    fn rng(state: &mut u64) -> u64 {
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    #[test]
    fn truncated_and_corrupted_real_parameter_sets_never_panic() {
        let mut state = 0x0123_4567_89ab_cdefu64;
        for (stream, ..) in REAL {
            let nals = nals_of(stream);
            let vps = of_type(&nals, NAL_VPS)[0];
            let sps = of_type(&nals, NAL_SPS)[0];
            let pps = of_type(&nals, NAL_PPS)[0];
            for n in 0..sps.len() {
                // The VUI-less tail may make a few bytes optional; must not panic.
                let _ = parse_sps(&sps[..n]);
            }
            assert!(parse_sps(&sps[..sps.len() / 2]).is_err());
            for n in 0..vps.len() {
                let _ = parse_vps(&vps[..n]);
            }
            for _ in 0..3000 {
                let mut data = sps.to_vec();
                let flips = 1 + rng(&mut state) % 6;
                for _ in 0..flips {
                    let bit = 16 + (rng(&mut state) % ((data.len() as u64 - 2) * 8)) as usize;
                    data[bit / 8] ^= 1 << (bit % 8);
                }
                if let Ok(info) = parse_sps(&data) {
                    assert!(info.bit_depth_luma <= 16 && info.chroma_format_idc <= 3);
                }
                let _ = build_hvcc(&[vps], &[data.as_slice()], &[pps], 4);
            }
        }
    }

    #[test]
    fn random_garbage_never_panics() {
        let mut state = 0xfeed_face_dead_beefu64;
        for len in 0..160usize {
            for _ in 0..60 {
                let mut data: Vec<u8> = (0..len).map(|_| rng(&mut state) as u8).collect();
                if len >= 2 {
                    data[0] = NAL_SPS << 1;
                    data[1] = 1;
                }
                let _ = parse_sps(&data);
                if len >= 2 {
                    data[0] = NAL_VPS << 1;
                }
                let _ = parse_vps(&data);
                let _ = build_hvcc(
                    &[data.as_slice()],
                    &[data.as_slice()],
                    &[data.as_slice()],
                    4,
                );
            }
        }
    }

    #[test]
    fn corrupted_vps_and_truncated_sets_to_hvcc_never_panic() {
        let mut state = 0x0bad_5eed_1234_5678u64;
        for (stream, ..) in REAL {
            let nals = nals_of(stream);
            let vps = of_type(&nals, NAL_VPS)[0];
            let sps = of_type(&nals, NAL_SPS)[0];
            let pps = of_type(&nals, NAL_PPS)[0];
            for _ in 0..2000 {
                let mut v = vps.to_vec();
                for _ in 0..1 + rng(&mut state) % 4 {
                    let bit = 16 + (rng(&mut state) % ((v.len() as u64 - 2) * 8)) as usize;
                    v[bit / 8] ^= 1 << (bit % 8);
                }
                let _ = parse_vps(&v);
                let cut = |n: &[u8], r: u64| n[..(r as usize) % (n.len() + 1)].to_vec();
                let (v2, s2, p2) = (
                    cut(&v, rng(&mut state)),
                    cut(sps, rng(&mut state)),
                    cut(pps, rng(&mut state)),
                );
                if let Ok(rec) = build_hvcc(&[v2.as_slice()], &[s2.as_slice()], &[p2.as_slice()], 4)
                {
                    assert_eq!(rec[0], 1); // configurationVersion
                    assert_eq!(rec[22], 3); // numOfArrays
                }
            }
        }
    }
}
