// SPDX-License-Identifier: MPL-2.0
//! The read-only `stats` property (running counters since the element started) and the
//! `frame-stats` signal's structure.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::nvenc::api::LockedInfo;
use crate::nvenc::ffi;

use super::lock;

/// Counters of the `stats` property, since the element last started (READY to PAUSED).
#[derive(Default)]
pub struct RunningStats {
    /// Pictures submitted to NVENC (`nvEncEncodePicture` answered SUCCESS or NEED_MORE_INPUT).
    frames_in: AtomicU64,
    /// Pictures whose bitstream came out of NVENC (`nvEncLockBitstream`).
    frames_out: AtomicU64,
    /// Bytes of those bitstreams, as NVENC gave them.
    bytes_out: AtomicU64,
    /// Sessions opened (`nvEncInitializeEncoder`): 1, plus one per caps change, flush or
    /// change of a property that needs a new session.
    sessions: AtomicU64,
    /// When each picture of the last second came out, and when counting started.
    recent: Mutex<(VecDeque<Instant>, Option<Instant>)>,
}

impl RunningStats {
    pub fn reset(&self) {
        for c in [
            &self.frames_in,
            &self.frames_out,
            &self.bytes_out,
            &self.sessions,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        *lock(&self.recent) = (VecDeque::new(), None);
    }

    pub fn picture_in(&self) {
        self.frames_in.fetch_add(1, Ordering::Relaxed);
    }

    pub fn session_opened(&self) {
        self.sessions.fetch_add(1, Ordering::Relaxed);
    }

    /// A picture of `bytes` came out of NVENC (output thread).
    pub fn picture_out(&self, bytes: usize) {
        self.frames_out.fetch_add(1, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
        let now = Instant::now();
        let mut r = lock(&self.recent);
        r.1.get_or_insert(now);
        r.0.push_back(now);
        trim(&mut r.0, now);
    }

    /// Pictures out per second over the last second (over the time since the first one when
    /// that is shorter; 0 before any).
    fn fps(&self) -> f64 {
        let now = Instant::now();
        let mut r = lock(&self.recent);
        trim(&mut r.0, now);
        let Some(first) = r.1 else {
            return 0.0;
        };
        let span = now.duration_since(first).as_secs_f64().clamp(1e-3, 1.0);
        r.0.len() as f64 / span
    }

    /// The `stats` property: `application/x-rsnvenc-stats`, with `in_flight` pictures in
    /// NVENC now.
    pub fn structure(&self, in_flight: u32) -> gst::Structure {
        gst::Structure::builder("application/x-rsnvenc-stats")
            .field("frames-in", self.frames_in.load(Ordering::Relaxed))
            .field("frames-out", self.frames_out.load(Ordering::Relaxed))
            .field("bytes-out", self.bytes_out.load(Ordering::Relaxed))
            .field("in-flight", in_flight)
            .field("encoder-fps", self.fps())
            .field("sessions", self.sessions.load(Ordering::Relaxed))
            .build()
    }
}

fn trim(q: &mut VecDeque<Instant>, now: Instant) {
    while q
        .front()
        .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(1))
    {
        q.pop_front();
    }
}

/// The `frame-stats` signal's structure (`application/x-rsnvenc-frame-stats`, named as the
/// `stats` property's `application/x-rsnvenc-stats`) for one picture of
/// `size` bytes, from what `nvEncLockBitstream` said of it.
pub fn frame_structure(info: &LockedInfo, size: usize) -> gst::Structure {
    gst::Structure::builder("application/x-rsnvenc-frame-stats")
        .field("frame-idx", info.frame_idx)
        .field("frame-avg-qp", info.frame_avg_qp)
        .field(
            "picture-type",
            match info.picture_type {
                ffi::NV_ENC_PIC_TYPE_IDR => "idr",
                ffi::NV_ENC_PIC_TYPE_I => "i",
                ffi::NV_ENC_PIC_TYPE_B => "b",
                _ => "p",
            },
        )
        .field("size", size as u32)
        .field("system-frame-number", info.output_timestamp as u32)
        .field("ltr-frame", info.ltr_frame)
        .field("ltr-frame-idx", info.ltr_frame_idx)
        .build()
}
