// SPDX-License-Identifier: MPL-2.0
//! Regions of interest (issue 12): `GstVideoRegionOfInterestMeta` on an input buffer becomes
//! NVENC's QP delta map (`NV_ENC_PIC_PARAMS::qpDeltaMap`, `rcParams.qpMapMode` =
//! `NV_ENC_QP_MAP_DELTA` set when the session is initialised). Pure: the element keeps one map
//! per session and fills it only for buffers that carry regions.
//!
//! - The delta of a region: the `delta-qp` integer of the meta's `roi/nvenc` parameter
//!   structure, else of any other `roi/...` parameter that has one (`roi/vaapi`, `roi/msdk`: as
//!   GStreamer's VA-API and MSDK encoders read it; negative = lower QP = better quality), else
//!   the `roi-delta-qp` property. Clamped to the codec's QP range (H.264/H.265: ±51; AV1:
//!   NVENC's AV1 QP scale, 0..255, as far as a signed byte goes: ±127).
//! - Blocks (NVENC's QP map granularity, from `nvEncodeAPI.h`: a macroblock, 16x16, for H.264;
//!   a CTB for H.265, the configured `maxCUSize`, 32x32 where NVENC picks it; a 64x64
//!   superblock for AV1) take the delta of every region that overlaps them; regions are
//!   clipped to the picture.
//! - Overlapping regions: the first meta on the buffer wins (as FFmpeg's
//!   `AVRegionOfInterest` list: "the first region in the list applies").
//! - Emphasis level maps (`rcParams.qpMapMode` = `NV_ENC_QP_MAP_EMPHASIS`, H.264 only, where
//!   the GPU reports `NV_ENC_CAPS_SUPPORT_EMPHASIS_LEVEL_MAP` and AQ is off; `roi-mode`): the
//!   map holds a level 0..5 (`NV_ENC_EMPHASIS_MAP_LEVEL_*`) per macroblock instead of a delta,
//!   which the driver turns into a QP offset "along with QP chosen by rate control" by a rule
//!   NVIDIA does not publish. A region's level: the integer `emphasis` field of its
//!   `roi/nvenc` structure (clamped to 0..5), else [`level_of_delta`] of its delta.

use crate::nvenc::api::Codec;
use crate::nvenc::ffi;

/// Field of the `roi/...` parameter structure that gives a region's QP delta.
pub const DELTA_FIELD: &str = "delta-qp";
/// Our own parameter structure name, read first.
pub const PARAM_NAME: &str = "roi/nvenc";
/// Field of `roi/nvenc` that gives a region's emphasis level (0..5) for an emphasis map.
pub const EMPHASIS_FIELD: &str = "emphasis";
/// The highest emphasis level (`NV_ENC_EMPHASIS_MAP_LEVEL_5`).
pub const MAX_LEVEL: i32 = ffi::NV_ENC_EMPHASIS_MAP_LEVEL_5 as i32;

/// What a session's map holds (`rcParams.qpMapMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `NV_ENC_QP_MAP_DELTA`: signed QP deltas, clamped to ±`max`.
    Delta { max: i32 },
    /// `NV_ENC_QP_MAP_EMPHASIS`: emphasis levels 0..5.
    Emphasis,
}

/// The emphasis level of a region with QP delta `delta` and no `emphasis` field: one level per
/// 2 QP below 0, up to 5 (-1 and -2 -> 1, -10 and below -> 5); 0 for a delta of 0 or above, as
/// an emphasis map only lowers QP. Our own rule (the driver's offsets per level are not
/// published): a level is taken to be worth about 2 QP.
pub fn level_of_delta(delta: i32) -> i32 {
    (delta.saturating_neg().max(0).saturating_add(1) / 2).min(MAX_LEVEL)
}

/// The block grid of a session's QP map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    /// Block size in pixels (square).
    pub block: u32,
    /// Blocks per row and rows of blocks: the picture's size rounded up.
    pub cols: u32,
    pub rows: u32,
}

impl Grid {
    /// The grid of `codec` at encode size `(width, height)`; `hevc_max_cu`: H.265's
    /// `maxCUSize` (`NV_ENC_HEVC_CUSIZE_*`) as configured.
    pub fn new(codec: Codec, hevc_max_cu: u32, (width, height): (u32, u32)) -> Grid {
        let block = match codec {
            Codec::H264 => 16,
            Codec::Hevc => match hevc_max_cu {
                ffi::NV_ENC_HEVC_CUSIZE_16x16 => 16,
                ffi::NV_ENC_HEVC_CUSIZE_64x64 => 64,
                // AUTOSELECT: NVENC codes 32x32 CTBs (as OBS's NVENC encoder assumes; the
                // header does not say).
                ffi::NV_ENC_HEVC_CUSIZE_32x32 | ffi::NV_ENC_HEVC_CUSIZE_AUTOSELECT => 32,
                _ => 32,
            },
            Codec::Av1 => 64,
        };
        Grid {
            block,
            cols: width.div_ceil(block),
            rows: height.div_ceil(block),
        }
    }

    /// Blocks in the picture: the bytes of the map (`qpDeltaMapSize`).
    pub fn len(&self) -> usize {
        self.cols as usize * self.rows as usize
    }

    /// Whether the grid has no block (a zero-sized picture).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The largest QP delta the codec's QP scale takes.
pub fn max_delta(codec: Codec) -> i32 {
    match codec {
        Codec::Av1 => 127,
        _ => 51,
    }
}

/// Whether a session of rate-control mode `rc_mode` and tuning `tuning` takes QP delta maps;
/// `Err`: why not. The header applies the map "on top of the QP chosen by rate control";
/// constant QP (the user's exact QPs) and lossless tuning (QP 0, transform bypass) have none to
/// modify: what the real driver does with a map there is not documented, so they are refused.
pub fn check(rc_mode: u32, tuning: u32) -> Result<(), String> {
    if tuning == ffi::NV_ENC_TUNING_INFO_LOSSLESS {
        return Err("lossless encoding has no QP to offset".into());
    }
    if rc_mode == ffi::NV_ENC_PARAMS_RC_CONSTQP {
        return Err(
            "rc-mode=constqp codes the QPs given (qp-const-*): a QP delta map needs rate control (vbr, cbr)"
                .into(),
        );
    }
    Ok(())
}

/// One region, in pixels, with its QP delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
    pub delta: i32,
    /// The `emphasis` field of its `roi/nvenc` structure, if any.
    pub emphasis: Option<i32>,
}

impl Region {
    /// The region's value in a map of `kind`.
    pub fn value(&self, kind: Kind) -> i8 {
        match kind {
            Kind::Delta { max } => self.delta.clamp(-max, max) as i8,
            Kind::Emphasis => self
                .emphasis
                .unwrap_or_else(|| level_of_delta(self.delta))
                .clamp(0, MAX_LEVEL) as i8,
        }
    }
}

/// The regions of interest of `buf`, in meta order; `default`: the delta of a region without a
/// `delta-qp` parameter. Empty (no allocation) when the buffer has none.
pub fn regions(buf: &gst::BufferRef, default: i32) -> Vec<Region> {
    buf.iter_meta::<gst_video::VideoRegionOfInterestMeta>()
        .map(|m| {
            let (x, y, w, h) = m.rect();
            let emphasis = m
                .param(PARAM_NAME)
                .and_then(|s| s.get::<i32>(EMPHASIS_FIELD).ok());
            let delta = m
                .param(PARAM_NAME)
                .and_then(|s| s.get::<i32>(DELTA_FIELD).ok())
                .or_else(|| {
                    m.params()
                        .filter(|s| s.name().starts_with("roi/"))
                        .find_map(|s| s.get::<i32>(DELTA_FIELD).ok())
                })
                .unwrap_or(default);
            Region {
                x,
                y,
                w,
                h,
                delta,
                emphasis,
            }
        })
        .collect()
}

/// Fills `map` (resized to the grid's block count; no allocation once it has that capacity)
/// with the regions' values for a map of `kind` ([`Region::value`]); 0 elsewhere. Returns
/// whether any block has a value other than 0.
pub fn fill(map: &mut Vec<i8>, grid: Grid, regions: &[Region], kind: Kind) -> bool {
    map.clear();
    if grid.is_empty() {
        return false;
    }
    map.resize(grid.len(), 0);
    let mut any = false;
    let b = grid.block;
    // Last first: the first region on the buffer is written last and wins.
    for r in regions.iter().rev() {
        if r.w == 0 || r.h == 0 {
            continue;
        }
        let d = r.value(kind);
        let (c0, r0) = (r.x / b, r.y / b);
        let c1 = r.x.saturating_add(r.w).div_ceil(b).min(grid.cols);
        let r1 = r.y.saturating_add(r.h).div_ceil(b).min(grid.rows);
        for row in r0..r1 {
            let base = row as usize * grid.cols as usize;
            for col in c0..c1 {
                map[base + col as usize] = d;
            }
        }
        any |= d != 0 && c0 < c1 && r0 < r1;
    }
    any && map.iter().any(|&v| v != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(x: u32, y: u32, w: u32, h: u32, delta: i32) -> Region {
        Region {
            x,
            y,
            w,
            h,
            delta,
            emphasis: None,
        }
    }

    const D51: Kind = Kind::Delta { max: 51 };

    #[test]
    fn grid_per_codec() {
        assert_eq!(
            Grid::new(Codec::H264, 0, (720, 405)),
            Grid {
                block: 16,
                cols: 45,
                rows: 26
            }
        );
        let hevc = Grid::new(Codec::Hevc, ffi::NV_ENC_HEVC_CUSIZE_AUTOSELECT, (720, 405));
        assert_eq!((hevc.block, hevc.cols, hevc.rows), (32, 23, 13));
        let hevc64 = Grid::new(Codec::Hevc, ffi::NV_ENC_HEVC_CUSIZE_64x64, (720, 405));
        assert_eq!((hevc64.block, hevc64.len()), (64, 12 * 7));
        assert_eq!(Grid::new(Codec::Av1, 0, (1920, 1080)).len(), 30 * 17);
    }

    #[test]
    fn regions_are_clipped_and_the_first_wins() {
        let g = Grid {
            block: 16,
            cols: 4,
            rows: 2,
        };
        let mut map = Vec::new();
        // The second region overlaps the first and runs beyond the picture.
        let rs = [region(0, 0, 20, 10, -10), region(16, 0, 1000, 1000, 5)];
        assert!(fill(&mut map, g, &rs, D51));
        assert_eq!(map, vec![-10, -10, 5, 5, 0, 5, 5, 5]);
        // Clamped to the QP range; a region beyond the picture or empty changes nothing.
        let rs = [
            region(0, 0, 1, 1, -100),
            region(500, 500, 10, 10, 7),
            region(0, 16, 0, 5, 3),
        ];
        assert!(fill(&mut map, g, &rs, D51));
        assert_eq!(map, vec![-51, 0, 0, 0, 0, 0, 0, 0]);
        assert!(!fill(&mut map, g, &[region(0, 0, 64, 32, 0)], D51));
        assert!(map.iter().all(|&v| v == 0));
    }

    #[test]
    fn emphasis_levels() {
        assert_eq!(
            [0, 3, -1, -2, -3, -4, -9, -10, -51, i32::MIN].map(level_of_delta),
            [0, 0, 1, 1, 2, 2, 5, 5, 5, 5]
        );
        let g = Grid {
            block: 16,
            cols: 4,
            rows: 1,
        };
        let mut map = Vec::new();
        let mut explicit = region(0, 0, 16, 16, -10);
        explicit.emphasis = Some(2);
        let mut beyond = region(32, 0, 16, 16, 0);
        beyond.emphasis = Some(9);
        let rs = [explicit, region(16, 0, 16, 16, -4), beyond];
        assert!(fill(&mut map, g, &rs, Kind::Emphasis));
        assert_eq!(map, vec![2, 2, 5, 0]);
        // A positive delta is level 0: no map.
        assert!(!fill(
            &mut map,
            g,
            &[region(0, 0, 64, 16, 7)],
            Kind::Emphasis
        ));
        // The delta map ignores the emphasis field.
        assert!(fill(&mut map, g, &rs[..1], D51));
        assert_eq!(map, vec![-10, 0, 0, 0]);
    }

    #[test]
    fn delta_from_the_meta_else_the_default() {
        gst::init().unwrap();
        let mut buf = gst::Buffer::new();
        {
            let b = buf.get_mut().unwrap();
            let mut m = gst_video::VideoRegionOfInterestMeta::add(b, "face", (1, 2, 3, 4));
            m.add_param(
                gst::Structure::builder("roi/vaapi")
                    .field("delta-qp", -7)
                    .build(),
            );
            let mut m = gst_video::VideoRegionOfInterestMeta::add(b, "any", (5, 6, 7, 8));
            m.add_param(
                gst::Structure::builder("roi/msdk")
                    .field("delta-qp", 3)
                    .build(),
            );
            m.add_param(
                gst::Structure::builder(PARAM_NAME)
                    .field("delta-qp", -2)
                    .field("emphasis", 4)
                    .build(),
            );
            gst_video::VideoRegionOfInterestMeta::add(b, "plain", (9, 9, 9, 9));
        }
        assert_eq!(
            regions(&buf, -4),
            vec![
                region(1, 2, 3, 4, -7),
                Region {
                    emphasis: Some(4),
                    ..region(5, 6, 7, 8, -2)
                },
                region(9, 9, 9, 9, -4)
            ]
        );
        assert!(regions(&gst::Buffer::new(), -4).is_empty());
    }

    #[test]
    fn constqp_and_lossless_are_refused() {
        assert!(
            check(
                ffi::NV_ENC_PARAMS_RC_VBR,
                ffi::NV_ENC_TUNING_INFO_HIGH_QUALITY
            )
            .is_ok()
        );
        assert!(
            check(
                ffi::NV_ENC_PARAMS_RC_CBR,
                ffi::NV_ENC_TUNING_INFO_LOW_LATENCY
            )
            .is_ok()
        );
        assert!(
            check(
                ffi::NV_ENC_PARAMS_RC_CONSTQP,
                ffi::NV_ENC_TUNING_INFO_HIGH_QUALITY
            )
            .is_err()
        );
        assert!(check(ffi::NV_ENC_PARAMS_RC_VBR, ffi::NV_ENC_TUNING_INFO_LOSSLESS).is_err());
    }
}
