// SPDX-License-Identifier: MPL-2.0
//! The one GStreamer C API gstreamer-rs does not wrap and the encoder needs: the
//! GstVideoEncoder stream lock, taken by the output thread before it finishes frames, and
//! released by the streaming thread while it waits for a drain (as GStreamer's own nvcodec
//! does with `GST_VIDEO_ENCODER_STREAM_LOCK`/`UNLOCK`).

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
