// SPDX-License-Identifier: MPL-2.0
//! How an input picture reaches NVENC, fastest first:
//! - upstream CUDA memory of our context in a layout NVENC reads: registered once, mapped per
//!   picture, read in place ([`in_place_key`], [`register`], [`map_registered`]);
//! - system memory of the page-locked pool the element proposed: DMA into the slot's own
//!   device surface ([`upload_pinned`]);
//! - other CUDA memory (another context or GPU, another layout): one device copy into the
//!   slot's surface ([`copy_cuda`]);
//! - anything else: the CPU copies it into the slot's NVENC input buffer ([`copy_frame`]).
//!
//! The log says once per change which way pictures go ([`Paths`]).

use std::sync::Arc;

use gst_video::prelude::*;

use crate::cuda;
use crate::nvenc::api::{self, NvEncError, Session};
use crate::nvenc::formats::{self, DEVICE_FORMATS};

use super::CAT;
use super::ring::Slot;

/// How an input picture reaches NVENC without a CPU copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CudaPath {
    /// Upstream CUDA memory registered and read in place.
    InPlace,
    /// System memory of the proposed page-locked pool, uploaded by DMA.
    Pinned,
    /// Upstream CUDA memory copied on the device, by this route.
    Copied(cuda::PeerRoute),
}

/// What the element remembers of its input between pictures (streaming thread only).
#[derive(Default)]
pub struct Paths {
    /// The last way CUDA input reached NVENC that the log was told, with copies per frame.
    told: Option<(CudaPath, usize)>,
    /// How memory of an upstream CUcontext is copied into ours: (upstream context, route),
    /// found once per upstream context ([`cuda::Context::peer_route`]).
    route: Option<(usize, cuda::PeerRoute)>,
}

impl Paths {
    /// Says once, in the log, how CUDA input reaches NVENC. The message is only built when
    /// the way (or the copies per frame) changes, not per frame.
    fn tell(&mut self, pic: &Picture, path: (CudaPath, usize), how: impl FnOnce() -> String) {
        if self.told != Some(path) {
            gst::info!(CAT, obj = pic.element, "{}", how());
            self.told = Some(path);
        }
    }

    /// How upstream memory of context `memory` reaches `session`'s context, found (and peer
    /// access enabled, for another GPU) once per upstream context.
    fn route(
        &mut self,
        pic: &Picture,
        memory: &cuda::gst::MappedCudaMemory,
    ) -> Option<cuda::PeerRoute> {
        let src = memory.context_handle() as usize;
        if let Some((c, r)) = self.route
            && c == src
        {
            return Some(r);
        }
        let route = memory
            .route_to(pic.session.context())
            .map_err(|e| {
                gst::warning!(CAT, obj = pic.element, "{e}; copying through system memory")
            })
            .ok()?;
        self.route = Some((src, route));
        Some(route)
    }
}

/// One input picture and where it goes.
pub struct Picture<'a> {
    /// For the log.
    pub element: &'a gst_video::VideoEncoder,
    pub session: &'a Arc<Session>,
    pub input: &'a gst::Buffer,
    pub info: &'a gst_video::VideoInfo,
    /// Encode size, in pixels.
    pub size: (u32, u32),
}

/// One plane of a picture bound for a device surface: (row bytes, source rows, rows coded) and
/// the source's (offset, stride), in bytes.
type DevicePlane = (formats::Plane, (usize, usize));

/// For upstream CUDA memory (mapped as `memory`) in a layout NVENC reads in place (a
/// [`DEVICE_FORMATS`] picture, NV12/P010 chroma right below the luma rows): the key of its
/// registration, (device pointer, pitch). `None`: copy it instead.
pub fn in_place_key(pic: &Picture, memory: &cuda::gst::MappedCudaMemory) -> Option<(u64, u32)> {
    use gst_video::VideoFormat as F;
    let fmt = pic.info.format();
    if !DEVICE_FORMATS.contains(&fmt) {
        return None;
    }
    let (stride0, offset1) = match pic.input.meta::<gst_video::VideoMeta>() {
        Some(m) => (m.stride()[0], m.offset().get(1).copied()),
        None => (pic.info.stride()[0], pic.info.offset().get(1).copied()),
    };
    if stride0 <= 0 {
        return None;
    }
    let encode_height = pic.size.1;
    if matches!(fmt, F::Nv12 | F::P01010le)
        && offset1 != Some(stride0 as usize * encode_height as usize)
    {
        gst::debug!(
            CAT,
            obj = pic.element,
            "CUDA memory with chroma at {offset1:?}, not right below {encode_height} luma rows: copying"
        );
        return None;
    }
    Some((memory.device_ptr(), stride0 as u32))
}

/// Registers the upstream CUDA memory at `key` ([`in_place_key`]) with NVENC; `None` (logged)
/// if NVENC cannot (then the picture is copied).
pub fn register(pic: &Picture, key: (u64, u32)) -> Option<Arc<api::RegisteredResource>> {
    if cuda::is_stream_ordered(key.0) {
        gst::debug!(
            CAT,
            obj = pic.element,
            "stream-ordered CUDA memory (a memory pool), which NVENC cannot register: copying"
        );
        return None;
    }
    let format = formats::input_format(pic.info.format())?;
    api::RegisteredResource::cuda(
        pic.session,
        key.0,
        format.buffer_format,
        pic.size.0,
        pic.size.1,
        key.1,
    )
    .map_err(|e| gst::warning!(CAT, obj = pic.element, "{e}; copying instead"))
    .ok()
    .map(Arc::new)
}

/// Maps a registration of upstream memory for one picture, read in place.
pub fn map_registered(
    pic: &Picture,
    reg: &Arc<api::RegisteredResource>,
    paths: &mut Paths,
) -> Option<api::MappedResource> {
    let mapped = reg
        .map()
        .map_err(|e| gst::warning!(CAT, obj = pic.element, "{e}; copying instead"))
        .ok()?;
    paths.tell(pic, (CudaPath::InPlace, 0), || {
        "upstream CUDA memory read in place by NVENC (no copy)".into()
    });
    Some(mapped)
}

/// Where the planes of the picture (a [`DEVICE_FORMATS`] one) lie and how NVENC wants them
/// in a device surface. Planes one below the other at one stride, none padded, become one,
/// so that the whole picture is one copy.
fn device_planes(pic: &Picture) -> Option<Vec<DevicePlane>> {
    let info = pic.info;
    let meta = pic.input.meta::<gst_video::VideoMeta>();
    let (strides, offsets): (&[i32], &[usize]) = match &meta {
        Some(m) => (m.stride(), m.offset()),
        None => (info.stride(), info.offset()),
    };
    let planes = formats::planes(info.format(), info.width(), info.height(), pic.size.1);
    let mut out = Vec::with_capacity(planes.len());
    for (i, p) in planes.iter().enumerate() {
        out.push((*p, (*offsets.get(i)?, *strides.get(i)? as usize)));
    }
    let contiguous = out.len() > 1
        && out.iter().all(|(p, _)| p.1 == p.2)
        && out.windows(2).all(|x| {
            let ((p0, (o0, s0)), (_, (o1, s1))) = (x[0], x[1]);
            s1 == s0 && o1 == o0 + s0 * p0.1
        });
    if contiguous {
        let rows = out.iter().map(|(p, _)| p.1).sum();
        let row_bytes = out.iter().map(|(p, _)| p.0).max()?;
        out = vec![((row_bytes, rows, rows), out[0].1)];
    }
    Some(out)
}

/// The slot's own device surface (made and registered with NVENC on first use); `None`
/// (after a warning) if that fails.
fn device_surface<'s>(
    pic: &Picture,
    slot: &'s mut Slot,
) -> Option<&'s mut (cuda::DevicePitched, Arc<api::RegisteredResource>)> {
    if slot
        .device
        .as_ref()
        .is_some_and(|(_, reg)| (reg.width, reg.height) != pic.size || reg.left_mapped())
    {
        // The session changed size (nvEncReconfigureEncoder): a surface of the new size. Or a
        // failed nvEncUnmapInputResource left it mapped: a new surface and registration
        // (dropping these unregisters the old one, which unmaps it).
        if slot
            .device
            .as_ref()
            .is_some_and(|(_, reg)| reg.left_mapped())
        {
            gst::warning!(
                CAT,
                obj = pic.element,
                "input surface left mapped by a failed nvEncUnmapInputResource: registering a new one"
            );
        }
        slot.device = None;
    }
    if slot.device.is_none() {
        let fmt = pic.info.format();
        let format = formats::input_format(fmt)?;
        let (ew, eh) = pic.size;
        let (row_bytes, rows) = formats::device_surface_size(fmt, ew, eh);
        let warn = |e: &dyn std::fmt::Display| {
            gst::warning!(CAT, obj = pic.element, "{e}; copying through system memory")
        };
        let surface = cuda::DevicePitched::new(pic.session.context(), row_bytes, rows)
            .map_err(|e| warn(&e))
            .ok()?;
        let reg = api::RegisteredResource::cuda(
            pic.session,
            surface.as_raw(),
            format.buffer_format,
            ew,
            eh,
            surface.pitch() as u32,
        )
        .map_err(|e| warn(&e))
        .ok()?;
        slot.device = Some((surface, Arc::new(reg)));
    }
    slot.device.as_mut()
}

/// Fills the slot's device surface plane by plane with `copy` (plane, surface, first row)
/// and maps its registration for one picture; `None` (after a warning) on any failure.
fn fill_device_surface(
    pic: &Picture,
    slot: &mut Slot,
    planes: &[DevicePlane],
    mut copy: impl FnMut(&DevicePlane, &mut cuda::DevicePitched, usize) -> Result<(), String>,
) -> Option<api::MappedResource> {
    let element = pic.element;
    let (surface, reg) = device_surface(pic, slot)?;
    let mut dst_row = 0;
    for p in planes {
        if let Err(e) = copy(p, surface, dst_row) {
            gst::warning!(CAT, obj = element, "{e}; copying through system memory");
            return None;
        }
        dst_row += p.0.2;
    }
    reg.map()
        .map_err(|e| gst::warning!(CAT, obj = element, "{e}; copying through system memory"))
        .ok()
}

/// System memory from the page-locked pool this element proposed upstream (`regions`):
/// uploaded into the slot's registered device surface (`cuMemcpy2D` from page-locked memory:
/// a DMA by the GPU's copy engine, no CPU copy), then mapped for NVENC. `None`: any other
/// memory, format or failure (then the frame is copied into an NVENC input buffer by the CPU).
pub fn upload_pinned(
    pic: &Picture,
    regions: &cuda::pinned::PinnedRegions,
    slot: &mut Slot,
    paths: &mut Paths,
) -> Option<api::MappedResource> {
    if !DEVICE_FORMATS.contains(&pic.info.format()) || pic.input.n_memory() != 1 {
        return None;
    }
    let map = pic.input.map_readable().ok()?;
    if !regions.contains(map.as_ptr(), map.len()) {
        return None;
    }
    let planes = device_planes(pic)?;
    let mapped = fill_device_surface(pic, slot, &planes, |p, surface, dst_row| {
        let ((row_bytes, rows, coded_rows), (offset, stride)) = *p;
        let src = map.get(offset..).ok_or("plane offset beyond the buffer")?;
        surface
            .upload_rows(dst_row, src, stride, row_bytes, rows, coded_rows)
            .map_err(|e| e.to_string())
    })?;
    let n = planes.len();
    paths.tell(pic, (CudaPath::Pinned, n), || {
        format!(
            "system memory from the proposed page-locked pool uploaded by DMA (no CPU copy): {n} copies per frame"
        )
    });
    Some(mapped)
}

/// CUDA memory NVENC cannot read in place (another context on this GPU or another GPU, or
/// planes laid out otherwise): one device-to-device copy into the slot's own registered
/// surface.
pub fn copy_cuda(pic: &Picture, slot: &mut Slot, paths: &mut Paths) -> Option<api::MappedResource> {
    if !DEVICE_FORMATS.contains(&pic.info.format()) {
        return None;
    }
    let memory = cuda::gst::MappedCudaMemory::map_any(pic.input)?;
    let route = paths.route(pic, &memory)?;
    let planes = device_planes(pic)?;
    let mapped = fill_device_surface(pic, slot, &planes, |p, surface, dst_row| {
        let ((row_bytes, rows, coded_rows), (offset, stride)) = *p;
        memory
            .copy_plane_to(
                offset, stride, row_bytes, rows, coded_rows, surface, dst_row,
            )
            .map_err(|e| e.to_string())
    })?;
    let n = planes.len();
    let gpu = pic.session.context().device().ordinal();
    paths.tell(pic, (CudaPath::Copied(route), n), || match route {
        cuda::PeerRoute::SameContext => format!(
            "upstream CUDA memory (same context, a layout NVENC cannot read in place) copied device to device: {n} copies per frame"
        ),
        cuda::PeerRoute::SameDevice => format!(
            "upstream CUDA memory of another context on GPU {} copied device to device (cuMemcpy3DPeer): {n} copies per frame",
            memory.device_id()
        ),
        cuda::PeerRoute::Direct => format!(
            "upstream CUDA memory on GPU {} copied peer to peer to GPU {gpu} (peer access enabled; cuMemcpy3DPeer): {n} copies per frame",
            memory.device_id(),
        ),
        cuda::PeerRoute::Staged => format!(
            "upstream CUDA memory on GPU {} copied to GPU {gpu} staged through host memory by the driver (no peer access between them; cuMemcpy3DPeer): {n} copies per frame",
            memory.device_id(),
        ),
    });
    Some(mapped)
}

/// The CPU copy: `frame` into the slot's NVENC input buffer, plane by plane at NVENC's pitch,
/// the surface's extra rows (an odd height coded even) repeating the last row.
pub fn copy_frame(
    slot: &mut Slot,
    frame: &gst_video::VideoFrameRef<&gst::BufferRef>,
    encode_height: u32,
) -> Result<(), NvEncError> {
    let info = frame.info();
    let fmt = info.format();
    let planes = formats::planes(fmt, info.width(), info.height(), encode_height);
    // Planes follow each other every buffer height (NVENC's layout of its input buffers),
    // which is more than the encode height when the buffer is made for maxEncodeHeight.
    let eh = slot.input.height.max(encode_height);
    slot.input.write(|data, pitch| -> Result<(), NvEncError> {
        let layout = formats::surface_planes(fmt, pitch, eh);
        for (i, &(row_bytes, rows, dst_rows)) in planes.iter().enumerate() {
            let src = frame
                .plane_data(i as u32)
                .map_err(|e| NvEncError::Other(format!("cannot read plane {i}: {e}")))?;
            let stride = frame.plane_stride()[i] as usize;
            let (base, dst_pitch) = layout[i];
            for r in 0..dst_rows {
                let sr = r.min(rows - 1);
                let s0 = sr * stride;
                let d0 = base + r * dst_pitch;
                if s0 + row_bytes > src.len() || d0 + row_bytes > data.len() {
                    return Err(NvEncError::Other(format!(
                        "frame of format {fmt:?} does not fit the NVENC surface (plane {i}, row {r})"
                    )));
                }
                data[d0..d0 + row_bytes].copy_from_slice(&src[s0..s0 + row_bytes]);
            }
        }
        Ok(())
    })?
}
