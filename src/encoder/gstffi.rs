// SPDX-License-Identifier: MPL-2.0
//! The GStreamer C API gstreamer-rs 0.25 does not wrap and the encoder needs: the
//! GstVideoEncoder stream lock, taken by the output thread before it finishes frames, and
//! released by the streaming thread while it waits for a drain (as GStreamer's own nvcodec
//! does with `GST_VIDEO_ENCODER_STREAM_LOCK`/`UNLOCK`); and the `transform_meta` vfunc. It
//! knows nothing of the element: the policy comes in as [`CaptionMetaPolicy`].

use gst::glib;
use gst::glib::translate::ToGlibPtr;

/// Holds the stream lock of a GstVideoEncoder until dropped.
pub struct StreamLock<'a> {
    lock: *mut glib::ffi::GRecMutex,
    _enc: &'a gst_video::VideoEncoder,
}

impl<'a> StreamLock<'a> {
    /// Blocks until the stream lock of `enc` is held by this thread.
    pub fn new(enc: &'a gst_video::VideoEncoder) -> Self {
        let ptr: *mut gst_video::ffi::GstVideoEncoder = enc.to_glib_none().0;
        // SAFETY: `ptr` is a live GstVideoEncoder (borrowed for 'a); `stream_lock` is the
        // GRecMutex the base class initialises in its instance init and clears in finalize.
        let lock = unsafe { std::ptr::addr_of_mut!((*ptr).stream_lock) };
        // SAFETY: locking that initialised recursive mutex; released in Drop on this thread.
        unsafe { glib::ffi::g_rec_mutex_lock(lock) };
        StreamLock { lock, _enc: enc }
    }
}

/// Releases the stream lock that the calling thread holds (once) until dropped, then takes it
/// back: the streaming thread waits in `drain` without the lock, so that the output thread
/// can finish frames meanwhile (nvcodec's drain does the same).
pub struct StreamUnlock<'a> {
    lock: *mut glib::ffi::GRecMutex,
    _enc: &'a gst_video::VideoEncoder,
}

impl<'a> StreamUnlock<'a> {
    /// The caller must hold the stream lock of `enc` exactly once (GstVideoEncoder takes it
    /// once around `finish`, `flush`, `set_format` and `handle_frame`).
    pub fn new(enc: &'a gst_video::VideoEncoder) -> Self {
        let ptr: *mut gst_video::ffi::GstVideoEncoder = enc.to_glib_none().0;
        // SAFETY: as in `StreamLock::new`; the field is the initialised GRecMutex.
        let lock = unsafe { std::ptr::addr_of_mut!((*ptr).stream_lock) };
        // SAFETY: this thread holds the lock (caller contract); Drop takes it back.
        unsafe { glib::ffi::g_rec_mutex_unlock(lock) };
        StreamUnlock { lock, _enc: enc }
    }
}

impl Drop for StreamUnlock<'_> {
    fn drop(&mut self) {
        // SAFETY: re-taking the lock this thread released in `new`; the encoder is alive ('a).
        unsafe { glib::ffi::g_rec_mutex_lock(self.lock) };
    }
}

impl Drop for StreamLock<'_> {
    fn drop(&mut self) {
        // SAFETY: this thread locked it in `new`, and the encoder is still alive ('a).
        unsafe { glib::ffi::g_rec_mutex_unlock(self.lock) };
    }
}

/// Which caption metas an encoder drops from its output buffers (it turned them into SEI/OBUs).
pub trait CaptionMetaPolicy {
    /// Whether `enc` drops a caption meta of type `ty` with `data`; `false` leaves it to
    /// GstVideoEncoder's default (copy).
    fn drops_caption_meta(
        enc: &gst_video::VideoEncoder,
        ty: gst_video::VideoCaptionType,
        data: &[u8],
    ) -> bool;
}

/// Installs this element's `GstVideoEncoderClass::transform_meta` (gstreamer-rs 0.25 does not
/// wrap that vfunc): caption metas are dropped from the output buffer where `P` says so
/// (`cc-insert=insert-and-drop`); everything else gets GstVideoEncoder's default.
pub fn install_transform_meta<P: CaptionMetaPolicy>(
    klass: &mut gst_video::ffi::GstVideoEncoderClass,
) {
    klass.transform_meta = Some(transform_meta::<P>);
}

/// GstVideoEncoder's own `transform_meta` (the default: copy metas without tags or with only
/// the video tag).
fn default_transform_meta() -> Option<
    unsafe extern "C" fn(
        *mut gst_video::ffi::GstVideoEncoder,
        *mut gst_video::ffi::GstVideoCodecFrame,
        *mut gst::ffi::GstMeta,
    ) -> glib::ffi::gboolean,
> {
    // SAFETY: GstVideoEncoder's type is registered (this element derives from it), so its
    // class exists for the life of the process; peeking does not take a reference.
    unsafe {
        let klass =
            glib::gobject_ffi::g_type_class_peek(gst_video::ffi::gst_video_encoder_get_type())
                as *const gst_video::ffi::GstVideoEncoderClass;
        klass.as_ref().and_then(|k| k.transform_meta)
    }
}

unsafe extern "C" fn transform_meta<P: CaptionMetaPolicy>(
    enc: *mut gst_video::ffi::GstVideoEncoder,
    frame: *mut gst_video::ffi::GstVideoCodecFrame,
    meta: *mut gst::ffi::GstMeta,
) -> glib::ffi::gboolean {
    use glib::translate::{FromGlib, FromGlibPtrBorrow};
    // No panic may cross this C boundary: on one, fall back to the default.
    let drop_it = std::panic::catch_unwind(|| {
        // SAFETY: GstVideoEncoder calls this with a live meta of the frame's input buffer
        // (`info` set by gst_buffer_add_meta) and a live encoder of this class; a caption
        // meta's `data` holds `size` bytes for the buffer's life (it is a copy the meta owns).
        unsafe {
            let info = (*meta).info;
            if info.is_null()
                || (*info).api != gst_video::ffi::gst_video_caption_meta_api_get_type()
            {
                return false;
            }
            let cc = &*(meta as *const gst_video::ffi::GstVideoCaptionMeta);
            let ty = gst_video::VideoCaptionType::from_glib(cc.caption_type);
            let data: &[u8] = if cc.data.is_null() || cc.size == 0 {
                &[]
            } else {
                std::slice::from_raw_parts(cc.data, cc.size)
            };
            let obj: glib::translate::Borrowed<gst_video::VideoEncoder> =
                gst_video::VideoEncoder::from_glib_borrow(enc);
            P::drops_caption_meta(&obj, ty, data)
        }
    })
    .unwrap_or(false);
    if drop_it {
        return glib::ffi::GFALSE;
    }
    match default_transform_meta() {
        // SAFETY: the base class's own implementation, called with the arguments we got.
        Some(f) => unsafe { f(enc, frame, meta) },
        None => glib::ffi::GFALSE,
    }
}
