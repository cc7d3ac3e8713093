// SPDX-License-Identifier: MPL-2.0
//! GStreamer's CUDA library (`libgstcuda-1.0.so.0`, public since 1.22), loaded at run time: the
//! `gst.cuda.context` GstContext sharing that lets the encoder and GStreamer's CUDA elements
//! (`cudaupload`, `cudaconvert`, `nvh264dec`, ...) use one CUDA context. Without the library
//! (or its CUDA loader failing) the encoder keeps its own context.

use std::ffi::{c_int, c_void};
use std::sync::LazyLock;

use gst::glib;
use gst::glib::translate::{FromGlibPtrFull, IntoGlibPtr, ToGlibPtr};

type EnsureFn = unsafe extern "C" fn(
    *mut gst::ffi::GstElement,
    c_int,
    *mut *mut gst::ffi::GstObject,
) -> glib::ffi::gboolean;
type SetContextFn = unsafe extern "C" fn(
    *mut gst::ffi::GstElement,
    *mut gst::ffi::GstContext,
    c_int,
    *mut *mut gst::ffi::GstObject,
) -> glib::ffi::gboolean;
type QueryFn = unsafe extern "C" fn(
    *mut gst::ffi::GstElement,
    *mut gst::ffi::GstQuery,
    *mut gst::ffi::GstObject,
) -> glib::ffi::gboolean;
type HandleFn = unsafe extern "C" fn(*mut gst::ffi::GstObject) -> *mut c_void;
type IsCudaMemoryFn = unsafe extern "C" fn(*mut gst::ffi::GstMemory) -> glib::ffi::gboolean;
type PoolNewFn = unsafe extern "C" fn(*mut gst::ffi::GstObject) -> *mut gst::ffi::GstBufferPool;
type MemorySyncFn = unsafe extern "C" fn(*mut gst::ffi::GstMemory);

/// The entry points used, from one loaded library.
pub struct GstCuda {
    _lib: libloading::Library,
    ensure: EnsureFn,
    set_context: SetContextFn,
    query: QueryFn,
    handle: HandleFn,
    is_cuda_memory: IsCudaMemoryFn,
    pool_new: PoolNewFn,
    /// `gst_cuda_memory_sync` (1.24+, CUDA memory that belongs to a CUDA stream); absent in
    /// 1.22, whose CUDA memory is written synchronously.
    memory_sync: Option<MemorySyncFn>,
}

static LIB: LazyLock<Option<GstCuda>> = LazyLock::new(|| {
    // SAFETY: loading GStreamer's own library, whose initialisers only register types.
    let lib = unsafe { libloading::Library::new("libgstcuda-1.0.so.0") }.ok()?;
    // SAFETY: the symbols have these C signatures in gst/cuda/gstcudautils.h,
    // gstcudacontext.h and gstcudaloader.h (1.22 and later).
    unsafe {
        let load: libloading::Symbol<unsafe extern "C" fn() -> glib::ffi::gboolean> =
            lib.get(b"gst_cuda_load_library\0").ok()?;
        if load() == 0 {
            return None;
        }
        let ensure = *lib
            .get::<EnsureFn>(b"gst_cuda_ensure_element_context\0")
            .ok()?;
        let set_context = *lib
            .get::<SetContextFn>(b"gst_cuda_handle_set_context\0")
            .ok()?;
        let query = *lib
            .get::<QueryFn>(b"gst_cuda_handle_context_query\0")
            .ok()?;
        let handle = *lib.get::<HandleFn>(b"gst_cuda_context_get_handle\0").ok()?;
        let is_cuda_memory = *lib.get::<IsCudaMemoryFn>(b"gst_is_cuda_memory\0").ok()?;
        let pool_new = *lib.get::<PoolNewFn>(b"gst_cuda_buffer_pool_new\0").ok()?;
        let memory_sync = lib
            .get::<MemorySyncFn>(b"gst_cuda_memory_sync\0")
            .ok()
            .map(|f| *f);
        let init: libloading::Symbol<unsafe extern "C" fn()> =
            lib.get(b"gst_cuda_memory_init_once\0").ok()?;
        init();
        Some(GstCuda {
            _lib: lib,
            ensure,
            set_context,
            query,
            handle,
            is_cuda_memory,
            pool_new,
            memory_sync,
        })
    }
});

/// The library, if it loads and its CUDA loader works.
pub fn lib() -> Option<&'static GstCuda> {
    LIB.as_ref()
}

/// A GstCudaContext (a GstObject of libgstcuda's type), shared through the pipeline.
#[derive(Clone, Debug)]
pub struct SharedContext(gst::Object);

impl SharedContext {
    /// The CUcontext it wraps (owned by the GstCudaContext; valid while `self` lives).
    /// The GPU of the context (its `cuda-device-id` property), or -1.
    pub fn device_id(&self) -> i32 {
        use gst::glib::prelude::ObjectExt;
        self.0
            .find_property("cuda-device-id")
            .and_then(|_| self.0.property_value("cuda-device-id").get::<u32>().ok())
            .map_or(-1, |d| d as i32)
    }

    pub fn handle(&self) -> *mut c_void {
        let Some(l) = lib() else {
            return std::ptr::null_mut();
        };
        // SAFETY: `self.0` is a live GstCudaContext (only made from libgstcuda's answers).
        unsafe { (l.handle)(self.0.to_glib_none().0) }
    }

    fn as_ptr(&self) -> *mut gst::ffi::GstObject {
        self.0.to_glib_none().0
    }

    /// A new GstCudaBufferPool on this context (`gst_cuda_buffer_pool_new`), to propose
    /// upstream so that its buffers are NVENC-ready.
    pub fn buffer_pool(&self) -> Option<gst::BufferPool> {
        let l = lib()?;
        // SAFETY: a live GstCudaContext; the function returns a new (full) reference or NULL.
        let p = unsafe { (l.pool_new)(self.as_ptr()) };
        // SAFETY: as above.
        (!p.is_null()).then(|| unsafe { gst::BufferPool::from_glib_full(p) })
    }
}

/// `gst_cuda_ensure_element_context`: a context from a neighbour (context query), from the
/// application (need-context), or a new one on `device_id` that is then offered
/// (have-context). `current` is kept if it is already set.
pub fn ensure_context(
    element: &gst::Element,
    device_id: i32,
    current: &mut Option<SharedContext>,
) -> bool {
    let Some(l) = lib() else { return false };
    let mut p = current
        .take()
        .map_or(std::ptr::null_mut(), |c| c.0.into_glib_ptr());
    // SAFETY: `p` is NULL or a GstCudaContext reference we own; the function keeps or replaces
    // it, and on return `p` holds a reference we own (or NULL).
    let ok = unsafe { (l.ensure)(element.to_glib_none().0, device_id, &mut p) } != 0;
    // SAFETY: as above: `p` is a full reference or NULL.
    *current = (!p.is_null()).then(|| SharedContext(unsafe { gst::Object::from_glib_full(p) }));
    ok && current.is_some()
}

/// `gst_cuda_handle_set_context` for `GstElement::set_context`.
pub fn set_context(
    element: &gst::Element,
    context: &gst::Context,
    device_id: i32,
    current: &mut Option<SharedContext>,
) {
    let Some(l) = lib() else { return };
    let mut p = current
        .take()
        .map_or(std::ptr::null_mut(), |c| c.0.into_glib_ptr());
    // SAFETY: as in `ensure_context`; `context` is a live GstContext borrowed for the call.
    unsafe {
        (l.set_context)(
            element.to_glib_none().0,
            context.to_glib_none().0,
            device_id,
            &mut p,
        )
    };
    // SAFETY: `p` is a full reference or NULL.
    *current = (!p.is_null()).then(|| SharedContext(unsafe { gst::Object::from_glib_full(p) }));
}

/// `gst_cuda_handle_context_query`: answers a `gst.cuda.context` query with `ctx`.
pub fn handle_query(
    element: &gst::Element,
    query: &mut gst::QueryRef,
    ctx: Option<&SharedContext>,
) -> bool {
    let (Some(l), Some(ctx)) = (lib(), ctx) else {
        return false;
    };
    // SAFETY: live element, query and context for the duration of the call.
    unsafe { (l.query)(element.to_glib_none().0, query.as_mut_ptr(), ctx.as_ptr()) != 0 }
}

/// Whether `buffer` is one GstCudaMemory (the only kind the CUDA input paths take).
pub fn is_cuda_buffer(buffer: &gst::BufferRef) -> bool {
    let Some(l) = lib() else { return false };
    if buffer.n_memory() != 1 {
        return false;
    }
    // SAFETY: a live GstMemory of `buffer`, borrowed for the call.
    unsafe { (l.is_cuda_memory)(buffer.peek_memory(0).as_mut_ptr()) != 0 }
}

/// `GST_MAP_CUDA` (gst/cuda/gstcudamemory.h): map the device pointer instead of a host copy.
const GST_MAP_CUDA: u32 = gst::ffi::GST_MAP_FLAG_LAST << 1;

/// A GstCudaMemory of the shared context, mapped for reading as a device pointer
/// (`GST_MAP_READ | GST_MAP_CUDA`); unmapped on drop. Holds its buffer.
pub struct MappedCudaMemory {
    /// Keeps the memory alive while it is mapped.
    _buffer: gst::Buffer,
    mem: *mut gst::ffi::GstMemory,
    /// The memory's GstCudaContext (the memory holds a reference to it).
    ctx: *mut gst::ffi::GstObject,
    info: gst::ffi::GstMapInfo,
}

// SAFETY: the map info refers to memory kept alive by `buffer`; GstMemory maps may be released
// from any thread.
unsafe impl Send for MappedCudaMemory {}

impl MappedCudaMemory {
    /// Maps the only memory of `buffer` if it is CUDA memory of `ctx`'s context; `None` for
    /// anything else (system memory, another context, several memories, a failed map).
    pub fn map(buffer: &gst::Buffer, ctx: &SharedContext) -> Option<MappedCudaMemory> {
        Self::map_inner(buffer, Some(ctx))
    }

    /// As [`MappedCudaMemory::map`], for CUDA memory of any context (to be copied from: with
    /// unified addressing, a device pointer of another context on the same GPU is readable).
    pub fn map_any(buffer: &gst::Buffer) -> Option<MappedCudaMemory> {
        Self::map_inner(buffer, None)
    }

    fn map_inner(buffer: &gst::Buffer, ctx: Option<&SharedContext>) -> Option<MappedCudaMemory> {
        let l = lib()?;
        if buffer.n_memory() != 1 {
            return None;
        }
        let mem = buffer.peek_memory(0).as_mut_ptr();
        // SAFETY: `mem` is a live GstMemory of `buffer`.
        if unsafe { (l.is_cuda_memory)(mem) } == 0 {
            return None;
        }
        // SAFETY: a GstCudaMemory starts with its GstMemory, followed by its GstCudaContext
        // pointer (gst/cuda/gstcudamemory.h, 1.22 and later).
        let mem_ctx = unsafe {
            *(mem as *const u8)
                .add(std::mem::size_of::<gst::ffi::GstMemory>())
                .cast::<*mut gst::ffi::GstObject>()
        };
        if ctx.is_some_and(|c| mem_ctx != c.as_ptr()) {
            return None;
        }
        // SAFETY: zeroed GstMapInfo is a valid out-parameter.
        let mut info: gst::ffi::GstMapInfo = unsafe { std::mem::zeroed() };
        // SAFETY: mapping a live memory for reading; unmapped in Drop with the same info.
        let ok = unsafe {
            gst::ffi::gst_memory_map(mem, &mut info, gst::ffi::GST_MAP_READ | GST_MAP_CUDA)
        };
        if ok == 0 {
            return None;
        }
        if let Some(sync) = l.memory_sync {
            // Wait for exactly this memory's pending work on its own CUDA stream (1.24+:
            // `gst_cuda_memory_sync` synchronises that stream if the memory is flagged
            // GST_CUDA_MEMORY_TRANSFER_NEED_SYNC), not for the whole device, before NVENC or
            // our copy reads it. After the map: mapping memory last written by the CPU queues
            // its upload on that stream.
            // SAFETY: `mem` is a live GstCudaMemory (mapped above).
            unsafe { sync(mem) };
        }
        Some(MappedCudaMemory {
            _buffer: buffer.clone(),
            mem,
            ctx: mem_ctx,
            info,
        })
    }

    /// The CUcontext of the memory's GstCudaContext (valid while `self` lives).
    pub fn context_handle(&self) -> *mut c_void {
        match lib() {
            // SAFETY: `ctx` is the live GstCudaContext the mapped memory references.
            Some(l) => unsafe { (l.handle)(self.ctx) },
            None => std::ptr::null_mut(),
        }
    }

    /// How this memory is copied into `ctx`'s memory (see [`super::Context::peer_route`]; for
    /// another GPU this enables peer access where the GPUs allow it).
    pub fn route_to(&self, ctx: &super::Context) -> Result<super::PeerRoute, super::CudaError> {
        // SAFETY: the memory's context is live while the memory is (the map holds it), and
        // `device_id` is that context's GPU.
        unsafe { ctx.peer_route(self.context_handle(), self.device_id()) }
    }

    /// The GPU of the memory's GstCudaContext (its `cuda-device-id` property), or -1.
    pub fn device_id(&self) -> i32 {
        use glib::prelude::ObjectExt;
        // SAFETY: `ctx` is a live GObject (a GstCudaContext); borrowed, a new reference taken.
        let obj: glib::Object = unsafe {
            glib::translate::from_glib_none(self.ctx.cast::<glib::gobject_ffi::GObject>())
        };
        let Some(pspec) = obj.find_property("cuda-device-id") else {
            return -1;
        };
        let v = obj.property_value(pspec.name());
        v.get::<u32>()
            .ok()
            .and_then(|d| i32::try_from(d).ok())
            .or_else(|| v.get::<i32>().ok())
            .unwrap_or(-1)
    }

    /// The CUDA device pointer of the memory's data.
    pub fn device_ptr(&self) -> u64 {
        self.info.data as u64
    }

    /// Copies `rows` rows of `width_bytes` from this memory (starting `offset` bytes in, rows
    /// `stride` apart) into `dst` from its row `dst_row`, device to device: `cuMemcpy2D` in
    /// `dst`'s context when the memory is of that context, else `cuMemcpy3DPeer` from the
    /// memory's context (another context on this GPU, or another GPU: see
    /// [`super::Context::peer_route`]). When `pad_to` is larger than `rows`, the last row is
    /// repeated down to row `pad_to` (H.26x 4:2:0 coding an odd height as even).
    ///
    /// Errors: `InvalidArgument` (nothing copied) if the rows do not lie within this memory's
    /// mapped size or within `dst`; driver errors otherwise.
    #[allow(clippy::too_many_arguments)]
    pub fn copy_plane_to(
        &self,
        offset: usize,
        stride: usize,
        width_bytes: usize,
        rows: usize,
        pad_to: usize,
        dst: &mut super::DevicePitched,
        dst_row: usize,
    ) -> Result<(), super::CudaError> {
        let size = self.info.size;
        let fits_src =
            rows > 0 && stride >= width_bytes && offset + (rows - 1) * stride + width_bytes <= size;
        let fits_dst =
            width_bytes <= dst.width_bytes() && dst_row + pad_to.max(rows) <= dst.height();
        if !fits_src || !fits_dst {
            return Err(super::CudaError::InvalidArgument {
                call: "cuMemcpy2D_v2",
                reason: format!(
                    "plane copy out of bounds: {rows} rows of {width_bytes} bytes at {offset} (stride {stride}) from {size} bytes into {}x{} from row {dst_row}",
                    dst.width_bytes(),
                    dst.height()
                ),
            });
        }
        let ctx = dst.context().clone();
        let dst_ptr = dst.as_raw() + (dst_row * dst.pitch()) as u64;
        let src_ctx = self.context_handle();
        let copy = |src_ptr: u64, dst_ptr: u64, n: usize| {
            if src_ctx != ctx.as_raw() {
                // SAFETY: as below; `src_ctx` is the live context owning this memory (the map
                // keeps the memory, and so its context, alive).
                return unsafe {
                    super::copy_2d_peer(
                        &ctx,
                        (dst_ptr, dst.pitch()),
                        src_ctx,
                        (src_ptr, stride),
                        width_bytes,
                        n,
                    )
                };
            }
            // SAFETY: the source rows lie within this mapped memory (checked above against its
            // mapped size; the map keeps it alive), the destination rows within `dst` (checked
            // above), which we own exclusively (&mut); the memory is of `dst`'s context.
            unsafe {
                super::copy_2d(
                    &ctx,
                    super::Src2D::Device {
                        ptr: src_ptr,
                        pitch: stride,
                    },
                    super::Dst2D::Device {
                        ptr: dst_ptr,
                        pitch: dst.pitch(),
                    },
                    width_bytes,
                    n,
                    None,
                )
            }
        };
        let src_ptr = self.device_ptr() + offset as u64;
        copy(src_ptr, dst_ptr, rows)?;
        if pad_to > rows {
            let last = src_ptr + ((rows - 1) * stride) as u64;
            for r in rows..pad_to {
                copy(last, dst_ptr + (r * dst.pitch()) as u64, 1)?;
            }
        }
        Ok(())
    }
}

impl Drop for MappedCudaMemory {
    fn drop(&mut self) {
        // SAFETY: unmapping the map made in `map`, once; `buffer` still holds the memory.
        unsafe { gst::ffi::gst_memory_unmap(self.mem, &mut self.info) };
    }
}
