//! QP delta maps: `rcParams.qpMapMode` at initialisation and `NV_ENC_PIC_PARAMS::qpDeltaMap` /
//! `qpDeltaMapSize` per picture (nvEncodeAPI.h: a signed byte per macroblock (H.264), per CTB
//! (H.265) or per superblock (AV1) in raster order, "applied on top of the QP chosen by rate
//! control"; the size "should be" the picture's block count; with `NV_ENC_QP_MAP_DISABLED`
//! the map "should be set to NULL").
//!
//! What the real driver does with a map of the wrong size, or a map while the mode is
//! disabled, is not documented: the emulator is *strict* (a wrong size fails the picture with
//! `NV_ENC_ERR_INVALID_PARAM`; a map with the mode disabled is a traced violation and is
//! ignored). The software encoders honour delta maps where they can (x264: per macroblock
//! through libavcodec's regions of interest, which become `quant_offsets`; x265: per 16x16
//! block through `x265_picture.quantOffsets`); libaom does not (AV1: traced only).
//!
//! Emphasis level maps (`NV_ENC_QP_MAP_EMPHASIS`, H.264 only, where
//! `NV_ENC_CAPS_SUPPORT_EMPHASIS_LEVEL_MAP` is 1): a level 0..5 per macroblock
//! (`NV_ENC_EMPHASIS_MAP_LEVEL_0..5`, "for zero" .. "very high Delta QP value"); the driver
//! turns each level, "along with QP chosen by rate control", into a QP offset it applies on
//! top. NVIDIA does not publish that rule: the emulator's own is [`EMPHASIS_QP_STEP`] QP lower
//! per level (level 5: -10), whatever the rate control's QP, and x264 codes it as a delta map.

use crate::abi::CodecKind;

/// `NV_ENC_QP_MAP_MODE` values (the same in every SDK table).
pub const DISABLED: u32 = 0;
pub const EMPHASIS: u32 = 1;
pub const DELTA: u32 = 2;
pub const QP_MAP: u32 = 3;

/// The emulator's rule for an emphasis level (the real driver's is not published): each
/// level lowers the macroblock's QP by this much (level 5: -10).
pub const EMPHASIS_QP_STEP: i8 = 2;

/// A session's QP map mode and block size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    pub mode: u32,
    /// Block side in pixels: 16 (H.264 macroblock), the CTB (H.265), 64 (AV1 superblock).
    pub block: u32,
}

/// The session's mode from `rcParams.qpMapMode`; `hevc_max_cu`: `maxCUSize`
/// (`NV_ENC_HEVC_CUSIZE`, 0 = autoselect, which NVENC codes as 32x32 CTBs); `emphasis_cap`:
/// `NV_ENC_CAPS_SUPPORT_EMPHASIS_LEVEL_MAP`. `Err((unsupported, message))`: refused.
pub fn mode(
    codec: CodecKind,
    qp_map_mode: u32,
    hevc_max_cu: u32,
    emphasis_cap: bool,
) -> Result<Mode, (bool, String)> {
    let block = match codec {
        CodecKind::H264 => 16,
        CodecKind::Hevc => match hevc_max_cu {
            1 => 8,
            2 => 16,
            4 => 64,
            _ => 32,
        },
        CodecKind::Av1 => 64,
    };
    match qp_map_mode {
        DISABLED | DELTA => Ok(Mode {
            mode: qp_map_mode,
            block,
        }),
        EMPHASIS if codec == CodecKind::H264 && emphasis_cap => Ok(Mode {
            mode: qp_map_mode,
            block,
        }),
        EMPHASIS => Err((
            true,
            "qpMapMode NV_ENC_QP_MAP_EMPHASIS: H.264 only, where NV_ENC_CAPS_SUPPORT_EMPHASIS_LEVEL_MAP is 1 (it is 0 here)".into(),
        )),
        QP_MAP => Err((
            true,
            "qpMapMode NV_ENC_QP_MAP is \"currently not supported\" (nvEncodeAPI.h)".into(),
        )),
        m => Err((false, format!("qpMapMode {m} is not an NV_ENC_QP_MAP_MODE"))),
    }
}

/// The block grid (columns, rows) of a `width` x `height` picture.
pub fn grid(m: Mode, width: u32, height: u32) -> (u32, u32) {
    (width.div_ceil(m.block), height.div_ceil(m.block))
}

/// A picture's delta map as the engine reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Map {
    pub block: u32,
    pub cols: u32,
    pub rows: u32,
    /// The bytes as the client gave them: QP deltas, or emphasis levels where `emphasis`.
    pub deltas: Vec<i8>,
    /// `NV_ENC_QP_MAP_EMPHASIS`: `deltas` are levels 0..5.
    pub emphasis: bool,
}

impl Map {
    /// The QP offsets the software encoder applies: the deltas, or the emulator's offsets of
    /// the emphasis levels (-[`EMPHASIS_QP_STEP`] per level).
    pub fn qp_offsets(&self) -> Vec<i8> {
        if self.emphasis {
            self.deltas.iter().map(|&l| -EMPHASIS_QP_STEP * l).collect()
        } else {
            self.deltas.clone()
        }
    }

    /// The trace's record of the map: its grid, the blocks with a delta, their range and
    /// mean, and the map itself (one signed byte per block, hex, raster order).
    pub fn describe(&self) -> serde_json::Value {
        let nz: Vec<i32> = self
            .deltas
            .iter()
            .filter(|&&d| d != 0)
            .map(|&d| d as i32)
            .collect();
        let mean = if nz.is_empty() {
            0.0
        } else {
            nz.iter().sum::<i32>() as f64 / nz.len() as f64
        };
        let hex: String = self
            .deltas
            .iter()
            .map(|&d| format!("{:02x}", d as u8))
            .collect();
        serde_json::json!({
            "mode": if self.emphasis { "emphasis" } else { "delta" },
            "block": self.block,
            "cols": self.cols,
            "rows": self.rows,
            "nonzero": nz.len(),
            "min": self.deltas.iter().copied().min().unwrap_or(0),
            "max": self.deltas.iter().copied().max().unwrap_or(0),
            "mean_nonzero": mean,
            "map": hex,
        })
    }
}

/// Checks a picture's map (`ptr`, `size` bytes) against the session's mode and picture size
/// and reads it. `Ok(None)`: no map for this picture; `Err`: the call fails with this message.
/// `notes`: what the trace should say (a violation is prefixed with "violation: ").
pub fn read(
    m: Mode,
    (width, height): (u32, u32),
    ptr: u64,
    size: u32,
    notes: &mut Vec<String>,
) -> Result<Option<Map>, String> {
    if ptr == 0 {
        if size != 0 {
            notes.push(format!(
                "qpDeltaMapSize {size} without a qpDeltaMap: ignored"
            ));
        }
        return Ok(None);
    }
    if m.mode == DISABLED {
        notes.push(
            "violation: qpDeltaMap set while rcParams.qpMapMode is NV_ENC_QP_MAP_DISABLED (nvEncodeAPI.h: it should be NULL); ignored"
                .into(),
        );
        return Ok(None);
    }
    let (cols, rows) = grid(m, width, height);
    let want = cols as u64 * rows as u64;
    if size as u64 != want {
        return Err(format!(
            "qpDeltaMapSize {size} is not the picture's block count {cols}x{rows} = {want} ({}x{} blocks of {width}x{height}; the real driver's answer to another size is not documented)",
            m.block, m.block
        ));
    }
    let bytes = crate::payload::read_client(ptr, size as usize)
        .ok_or_else(|| format!("qpDeltaMap {ptr:#x}: {size} bytes not readable"))?;
    let deltas: Vec<i8> = bytes.into_iter().map(|b| b as i8).collect();
    if m.mode == EMPHASIS
        && let Some(l) = deltas.iter().find(|&&d| !(0..=5).contains(&d))
    {
        return Err(format!(
            "emphasis level {l} outside NV_ENC_EMPHASIS_MAP_LEVEL_0..5"
        ));
    }
    Ok(Some(Map {
        block: m.block,
        cols,
        rows,
        deltas,
        emphasis: m.mode == EMPHASIS,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_grids() {
        let h264 = mode(CodecKind::H264, DELTA, 0, false).unwrap();
        assert_eq!(grid(h264, 720, 405), (45, 26));
        let hevc = mode(CodecKind::Hevc, DELTA, 0, false).unwrap();
        assert_eq!(grid(hevc, 720, 405), (23, 13));
        assert_eq!(mode(CodecKind::Av1, DELTA, 0, false).unwrap().block, 64);
        assert!(mode(CodecKind::Hevc, EMPHASIS, 0, true).unwrap_err().0);
        assert!(mode(CodecKind::H264, EMPHASIS, 0, true).is_ok());
        assert!(!mode(CodecKind::H264, 7, 0, true).unwrap_err().0);
    }

    #[test]
    fn sizes_are_strict() {
        let m = mode(CodecKind::H264, DELTA, 0, false).unwrap();
        let map = vec![-10i8; 4];
        let mut notes = Vec::new();
        let ptr = map.as_ptr() as u64;
        assert!(read(m, (32, 32), ptr, 3, &mut notes).is_err());
        let got = read(m, (32, 32), ptr, 4, &mut notes).unwrap().unwrap();
        assert_eq!(got.deltas, map);
        let off = mode(CodecKind::H264, DISABLED, 0, false).unwrap();
        assert!(read(off, (32, 32), ptr, 4, &mut notes).unwrap().is_none());
        assert!(notes[0].starts_with("violation"));
    }

    #[test]
    fn emphasis_levels_become_offsets() {
        let m = mode(CodecKind::H264, EMPHASIS, 0, true).unwrap();
        let map = [0i8, 1, 5, 3];
        let mut notes = Vec::new();
        let got = read(m, (32, 32), map.as_ptr() as u64, 4, &mut notes)
            .unwrap()
            .unwrap();
        assert!(got.emphasis);
        assert_eq!(got.qp_offsets(), vec![0, -2, -10, -6]);
        assert_eq!(got.describe()["mode"], "emphasis");
        let bad = [0i8, 6, 0, 0];
        assert!(read(m, (32, 32), bad.as_ptr() as u64, 4, &mut notes).is_err());
        let neg = [0i8, -1, 0, 0];
        assert!(read(m, (32, 32), neg.as_ptr() as u64, 4, &mut notes).is_err());
    }
}
