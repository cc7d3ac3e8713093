// SPDX-License-Identifier: MPL-2.0
//! Caps and allocation: the sink caps this GPU takes (probed at start) narrowed to what can
//! give a profile downstream accepts; downstream's stream-format and profiles; the buffer
//! pools proposed upstream (CUDA memory on the shared context, page-locked system memory).

use gst::prelude::*;
use gst_video::prelude::*;

use crate::cuda;
use crate::nvenc::api::Codec;
use crate::nvenc::formats::{self, DEVICE_FORMATS};

use super::config::GpuCaps;
use super::settings::Settings;
use super::{CAT, CodecOps};

/// The `stream-format` downstream lists first (the first structure of the src pad's allowed
/// caps, the first entry of a list), as nvcodec fixates it; `None` if downstream names none.
pub fn downstream_stream_format(element: &gst_video::VideoEncoder) -> Option<String> {
    let caps = element.src_pad().allowed_caps()?;
    let s = caps.iter().next()?;
    let v = s.value("stream-format").ok()?;
    if let Ok(s) = v.get::<&str>() {
        Some(s.to_string())
    } else if let Ok(l) = v.get::<gst::List>() {
        l.iter().find_map(|x| x.get::<String>().ok())
    } else {
        None
    }
}

/// Every `profile` name in the src pad's allowed caps (strings and lists of strings, in caps
/// order, without repeats); empty if downstream's caps are empty or ANY, or name no profile.
pub fn downstream_profiles(element: &gst_video::VideoEncoder) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let Some(caps) = element.src_pad().allowed_caps() else {
        return out;
    };
    if caps.is_any() {
        return out;
    }
    for s in caps.iter() {
        let Ok(v) = s.value("profile") else {
            continue;
        };
        let names: Vec<String> = if let Ok(p) = v.get::<String>() {
            vec![p]
        } else if let Ok(l) = v.get::<gst::List>() {
            l.iter().filter_map(|x| x.get::<String>().ok()).collect()
        } else {
            Vec::new()
        };
        for n in names {
            if !out.contains(&n) {
                out.push(n);
            }
        }
    }
    out
}

/// `caps` with each structure's `format` restricted to `allowed` (structures left with no
/// format are dropped).
fn restrict_formats(caps: &gst::Caps, allowed: &[gst_video::VideoFormat]) -> gst::Caps {
    let mut out = caps.copy();
    out.make_mut().filter_map_in_place(|_f, s| {
        let fmts: Vec<String> = match s.value("format") {
            Ok(v) => {
                let list: Vec<String> = if let Ok(one) = v.get::<String>() {
                    vec![one]
                } else if let Ok(l) = v.get::<gst::List>() {
                    l.iter().filter_map(|x| x.get::<String>().ok()).collect()
                } else {
                    Vec::new()
                };
                list.into_iter()
                    .filter(|f| allowed.contains(&gst_video::VideoFormat::from_string(f)))
                    .collect()
            }
            // No format field: restrict it to the allowed ones.
            Err(_) => allowed.iter().map(|f| f.to_str().to_string()).collect(),
        };
        if fmts.is_empty() {
            return gst::CapsFilterMapAction::Remove;
        }
        s.set("format", gst::List::new(fmts));
        gst::CapsFilterMapAction::Keep
    });
    out
}

/// `caps` (system memory) preceded by the same caps in `memory:CUDAMemory`, restricted to
/// [`DEVICE_FORMATS`], when GStreamer's CUDA library is there.
pub fn with_cuda_memory(caps: gst::Caps) -> gst::Caps {
    if cuda::gst::lib().is_none() {
        return caps;
    }
    let system = caps.copy();
    let mut cuda_caps = caps.copy();
    {
        let c = cuda_caps.make_mut();
        c.filter_map_in_place(|_features, s| {
            let fmts: Vec<String> = s
                .get::<gst::List>("format")
                .map(|l| {
                    l.iter()
                        .filter_map(|v| v.get::<&str>().ok())
                        .filter(|f| {
                            DEVICE_FORMATS.contains(&gst_video::VideoFormat::from_string(f))
                        })
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            if fmts.is_empty() {
                return gst::CapsFilterMapAction::Remove;
            }
            s.set("format", gst::List::new(fmts));
            gst::CapsFilterMapAction::Keep
        });
        c.set_features_simple(Some(gst::CapsFeatures::new(["memory:CUDAMemory"])));
    }
    cuda_caps.make_mut().append(system);
    cuda_caps
}

/// The sink template `template` restricted to what the GPU takes for the codec (`caps`):
/// input formats (with the 10-bit and 4:4:4 caps, and the codec's own rule on the profiles
/// the GPU lists) and the size range. Errors if it takes none of the template's formats.
pub fn probe_sink_caps(
    template: Option<&gst::Caps>,
    caps: &GpuCaps,
    ops: &dyn CodecOps,
) -> Result<gst::Caps, String> {
    // Every format of the template (its system-memory structure lists them all).
    let mut all: Vec<gst_video::VideoFormat> = Vec::new();
    for s in template.iter().flat_map(|c| c.iter()) {
        if let Ok(l) = s.get::<gst::List>("format") {
            for f in l.iter().filter_map(|v| v.get::<&str>().ok()) {
                let f = gst_video::VideoFormat::from_string(f);
                if !all.contains(&f) {
                    all.push(f);
                }
            }
        }
    }
    let ok: Vec<gst_video::VideoFormat> = all
        .into_iter()
        .filter(|f| {
            formats::input_format(*f).is_some_and(|i| caps.takes(&i))
                && ops.format_supported(*f, &caps.profile_guids)
        })
        .collect();
    if ok.is_empty() {
        return Err(format!(
            "NVENC on \"{}\" takes none of this element's input formats for {}",
            caps.gpu,
            ops.codec()
        ));
    }
    Ok(with_cuda_memory(
        gst_video::VideoCapsBuilder::new()
            .format_list(ok)
            .width_range(caps.width.0 as i32..=caps.width.1 as i32)
            .height_range(caps.height.0 as i32..=caps.height.1 as i32)
            .build(),
    ))
}

/// The sink caps query: upstream's caps (`filter`) against what the GPU takes (`probed`, from
/// start; the template before), narrowed to the formats that can give a profile downstream
/// accepts (H.264: 4:4:4 input for High 4:4:4 only, as nvcodec narrows its sink caps). When
/// nothing is left, says why in a warning, if `first_time()` (once per start), since the
/// resulting not-negotiated error will not.
pub fn sink_caps(
    element: &gst_video::VideoEncoder,
    ops: &dyn CodecOps,
    probed: Option<gst::Caps>,
    filter: Option<&gst::Caps>,
    first_time: impl FnOnce() -> bool,
) -> gst::Caps {
    let profiles = downstream_profiles(element);
    let narrowed = ops.formats_for_profiles(&profiles).and_then(|allowed| {
        probed
            .clone()
            .or_else(|| element.static_pad("sink").map(|p| p.pad_template_caps()))
            .map(|c| restrict_formats(&c, &allowed))
    });
    let caps = element.proxy_getcaps(narrowed.as_ref().or(probed.as_ref()), filter);
    let Some(probed) = probed.filter(|_| caps.is_empty()) else {
        return caps;
    };
    let template = element.proxy_getcaps(None, filter);
    if template.is_empty() || !first_time() {
        return caps;
    }
    let gpu_takes_it = !element.proxy_getcaps(Some(&probed), filter).is_empty();
    match &narrowed {
        Some(n) if gpu_takes_it => gst::element_warning!(
            element,
            gst::CoreError::Negotiation,
            ("The offered input cannot give a profile downstream accepts"),
            [
                "offered {template}; downstream accepts the profiles {profiles:?}, for which the GPU takes {n}"
            ]
        ),
        _ => gst::element_warning!(
            element,
            gst::CoreError::Negotiation,
            ("NVENC on this GPU cannot take the offered input"),
            ["offered {template}; the GPU takes {probed}"]
        ),
    }
    caps
}

/// Luma samples per second the highest level of each codec allows, and that level: H.264
/// level 6.2, MaxMBPS 16 711 680 macroblocks/s (ITU-T H.264, Table A-1), 256 samples each;
/// H.265 level 6.2, MaxLumaSr 4 278 190 080 samples/s (ITU-T H.265, Annex A, general tier
/// and level limits); AV1 level 6.3, MaxDisplayRate 4 278 190 080 samples/s (AV1 bitstream
/// specification, Annex A.3). NVENC codes no stream beyond its codec's levels.
fn max_luma_rate(codec: Codec) -> (u64, &'static str) {
    match codec {
        Codec::H264 => (16_711_680 * 256, "6.2"),
        Codec::Hevc => (4_278_190_080, "6.2"),
        Codec::Av1 => (4_278_190_080, "6.3"),
    }
}

/// Refuses a frame rate that no level of `codec` can take at the picture size of `info`
/// (H.264 counts whole 16x16 macroblocks): `Err` with a message that says so. A variable
/// frame rate (0/1) passes.
pub fn check_frame_rate(codec: Codec, info: &gst_video::VideoInfo) -> Result<(), String> {
    let fps = info.fps();
    let (n, d) = (fps.numer(), fps.denom());
    if n <= 0 || d <= 0 {
        return Ok(());
    }
    let (w, h) = (u64::from(info.width()), u64::from(info.height()));
    let samples = match codec {
        Codec::H264 => w.div_ceil(16) * h.div_ceil(16) * 256,
        Codec::Hevc | Codec::Av1 => w * h,
    }
    .max(1);
    let (rate, level) = max_luma_rate(codec);
    // n / d > rate / samples, in integers.
    if n as u128 * samples as u128 <= rate as u128 * d as u128 {
        return Ok(());
    }
    let name = match codec {
        Codec::H264 => "H.264",
        Codec::Hevc => "H.265",
        Codec::Av1 => "AV1",
    };
    Err(format!(
        "frame rate {n}/{d} is more than {name} can code at {w}x{h}: its highest level ({level}) takes at most {} frames per second at that size",
        rate / samples
    ))
}

/// Buffers a proposed pool must hold: as many as the ring can have in flight.
pub fn pool_min_buffers(s: &Settings) -> u32 {
    4 + s.bframes + 1 + s.rc_lookahead
}

/// The caps and info of an allocation query that needs a pool, and whether they are CUDA
/// memory.
fn pool_caps(query: &gst::query::Allocation) -> Option<(gst::Caps, gst_video::VideoInfo, bool)> {
    let (caps, need_pool) = query.get();
    let caps = caps?;
    if !need_pool {
        return None;
    }
    let cuda = caps
        .features(0)
        .is_some_and(|f| f.contains("memory:CUDAMemory"));
    let info = gst_video::VideoInfo::from_caps(caps).ok()?;
    Some((caps.to_owned(), info, cuda))
}

/// For CUDA-memory caps: a GstCudaBufferPool on the shared context holding `min` buffers, so
/// that upstream's frames are NVENC-ready (read in place). (pool, buffer size, minimum).
pub fn cuda_pool(
    element: &gst_video::VideoEncoder,
    query: &gst::query::Allocation,
    shared: Option<&cuda::gst::SharedContext>,
    min: u32,
) -> Option<(gst::BufferPool, u32, u32)> {
    let (caps, info, true) = pool_caps(query)? else {
        return None;
    };
    let pool = shared?.buffer_pool()?;
    let mut config = pool.config();
    config.set_params(Some(&caps), info.size() as u32, min, 0);
    // GStreamer 1.26+ (`gst_buffer_pool_config_set_cuda_stream_ordered_alloc`): no
    // stream-ordered allocation (memory pools) even where GST_CUDA_ENABLE_STREAM_ORDERED_ALLOC
    // or the context prefers it, since NVENC cannot register such memory. Older versions
    // ignore the field.
    config.set("cuda-stream-ordered-alloc", false);
    pool.set_config(config).ok()?;
    let size = pool
        .config()
        .params()
        .map_or(info.size() as u32, |(_, size, _, _)| size);
    gst::debug!(
        CAT,
        obj = element,
        "proposing a CUDA buffer pool of {min}+ buffers"
    );
    Some((pool, size, min))
}

/// Whether an allocation query is for system memory of a format NVENC can take from device
/// memory (then a page-locked pool is worth proposing).
pub fn wants_pinned_pool(query: &gst::query::Allocation) -> bool {
    pool_caps(query).is_some_and(|(_, info, cuda)| !cuda && DEVICE_FORMATS.contains(&info.format()))
}

/// For system-memory caps of a format NVENC can take from device memory: a video buffer pool
/// of page-locked memory from `allocator` (see [`super::input::upload_pinned`]) holding `min`
/// buffers. (pool, buffer size, minimum).
pub fn pinned_pool(
    element: &gst_video::VideoEncoder,
    query: &gst::query::Allocation,
    allocator: &cuda::pinned::PinnedAllocator,
    min: u32,
) -> Option<(gst::BufferPool, u32, u32)> {
    let (caps, info, false) = pool_caps(query)? else {
        return None;
    };
    let pool = gst_video::VideoBufferPool::new();
    let mut config = pool.config();
    config.set_params(Some(&caps), info.size() as u32, min, 0);
    config.set_allocator(Some(allocator.upcast_ref::<gst::Allocator>()), None);
    config.add_option(gst_video::BUFFER_POOL_OPTION_VIDEO_META);
    pool.set_config(config).ok()?;
    gst::debug!(
        CAT,
        obj = element,
        "proposing a page-locked buffer pool of {min}+ buffers"
    );
    Some((pool.upcast(), info.size() as u32, min))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(w: u32, h: u32, n: i32, d: i32) -> gst_video::VideoInfo {
        gst::init().unwrap();
        gst_video::VideoInfo::builder(gst_video::VideoFormat::Nv12, w, h)
            .fps(gst::Fraction::new(n, d))
            .build()
            .unwrap()
    }

    #[test]
    fn frame_rates_beyond_the_levels_are_refused() {
        for codec in [Codec::H264, Codec::Hevc, Codec::Av1] {
            let e = check_frame_rate(codec, &info(320, 240, i32::MAX, 1)).unwrap_err();
            assert!(
                e.contains("frame rate 2147483647/1") && e.contains("320x240"),
                "{e}"
            );
            // 320x240: 76 800 samples, 300 macroblocks: 55 705 fps at most for all three.
            assert!(e.contains("at most 55705 frames per second"), "{e}");
            check_frame_rate(codec, &info(320, 240, 55_705, 1)).unwrap();
            check_frame_rate(codec, &info(320, 240, 0, 1)).unwrap();
            check_frame_rate(codec, &info(7680, 4320, 120, 1)).unwrap();
            check_frame_rate(codec, &info(320, 240, 60_000_000, 1001)).unwrap_err();
        }
        // H.264 counts whole macroblocks: 8192x4320 is 512x270 of them.
        check_frame_rate(Codec::H264, &info(8192, 4320, 120, 1)).unwrap();
        check_frame_rate(Codec::H264, &info(8192, 4320, 121, 1)).unwrap_err();
    }
}
