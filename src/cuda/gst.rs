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

/// The entry points used, from one loaded library.
pub struct GstCuda {
    _lib: libloading::Library,
    ensure: EnsureFn,
    set_context: SetContextFn,
    query: QueryFn,
    handle: HandleFn,
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
        Some(GstCuda {
            _lib: lib,
            ensure,
            set_context,
            query,
            handle,
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
