// SPDX-License-Identifier: MPL-2.0
//! Changes in the running session (issue 12): a caps change it takes with
//! `nvEncReconfigureEncoder` ([`super::super::live`] says which), a rate-control change, and
//! the new session for anything else. A child of `imp` for its private state.

use gst::prelude::*;
use gst_video::prelude::*;
use gst_video::subclass::prelude::*;

use crate::nvenc::api::NvEncError;
use crate::nvenc::ffi;

use super::super::CAT;
use super::super::config;
use super::super::live::{self, CapsChange};
use super::super::ring::Stream;
use super::super::settings::Change;
use super::{InputState, NvEncoder, hdr_of};

impl NvEncoder {
    /// A caps change the running session takes (frame rate, aspect ratio, a size within its
    /// maximum, see [`live::classify`]): applied with `nvEncReconfigureEncoder`, after a drain
    /// for a new size (frames of the old size go out first, under the old caps). Returns the
    /// new output caps (`Some(None)`: nothing to tell), or `None` when a new session is
    /// needed. Called with the stream lock held once.
    pub(super) fn change_in_session(&self, state: &InputState) -> Option<Option<gst::Caps>> {
        let ops = self.ops();
        let change = {
            let st = self.lock_state();
            let (stream, old) = (st.stream.as_ref()?, st.input_state.as_ref()?);
            let init = &stream.config.init;
            let old = live::Input::new(old.info(), hdr_of(old), ops);
            let new = live::Input::new(state.info(), hdr_of(state), ops);
            let max = (init.maxEncodeWidth, init.maxEncodeHeight);
            live::classify(&old, &new, max, stream.caps.dyn_res_change)
        };
        gst::debug!(CAT, imp = self, "caps change: {change:?}");
        match change {
            CapsChange::Session => return None,
            CapsChange::Nothing => return Some(None),
            CapsChange::Rate | CapsChange::Size => {}
        }
        let obj = self.obj();
        let mut stream = self.lock_state().stream.take()?;
        let resize = change == CapsChange::Size;
        if resize && stream.drain(obj.upcast_ref(), true).is_err() {
            stream.stop(obj.upcast_ref(), true);
            return None;
        }
        let r = self.reconfigure(&mut stream, state.info(), resize);
        self.lock_state().stream = Some(stream);
        match r {
            Ok(caps) => {
                gst::info!(CAT, imp = self, "{change:?} change in the session: {caps}");
                Some(Some(caps))
            }
            Err(e) => {
                gst::info!(CAT, imp = self, "{e}: a new session instead");
                None
            }
        }
    }

    /// Drains and drops the running session, then opens one for `state` (on the placed GPU,
    /// else the next ones that take it). Returns its output caps.
    pub(super) fn new_session_for(
        &self,
        state: &InputState,
    ) -> Result<gst::Caps, gst::LoggableError> {
        let obj = self.obj();
        let old = self.lock_state().stream.take();
        if let Some(mut s) = old {
            let _ = s.drain(obj.upcast_ref(), true);
            s.stop(obj.upcast_ref(), true);
        }
        if let Err(tried) = self.ensure_placed(state) {
            self.post_refusals(&tried);
            return Err(gst::loggable_error!(CAT, "no GPU took the session"));
        }
        let ctx = {
            let mut st = self.lock_state();
            self.ensure_context(&mut st)
        };
        let ctx = match ctx {
            Ok(c) => c,
            Err(e) => {
                self.post_error(&e);
                return Err(gst::loggable_error!(CAT, "cannot use CUDA: {e}"));
            }
        };
        let (stream, caps) = match self.create_stream(ctx, state.info(), hdr_of(state)) {
            Ok(v) => v,
            // The GPU refused the session itself (its cap may have been reached since start):
            // the next GPUs, where the refusal moves on.
            Err(e) => match self.open_elsewhere(&e, state) {
                Ok(v) => v,
                Err(tried) if tried.len() == 1 && !tried[0].refusal.moves_on(true) => {
                    self.post_error(&e);
                    return Err(gst::loggable_error!(CAT, "cannot start NVENC: {e}"));
                }
                Err(tried) => {
                    self.post_refusals(&tried);
                    return Err(gst::loggable_error!(CAT, "cannot start NVENC: {e}"));
                }
            },
        };
        self.lock_state().stream = Some(stream);
        Ok(caps)
    }

    /// Sends the running session's config made again for `info` and the current settings
    /// (the mapping used at start, [`Self::session_config`], within the session's maximum
    /// size) with `nvEncReconfigureEncoder`; `force_idr` for a new size. On success the stream
    /// keeps the new config and returns its output caps; on failure nothing changed.
    pub(super) fn reconfigure(
        &self,
        stream: &mut Stream,
        info: &gst_video::VideoInfo,
        force_idr: bool,
    ) -> Result<gst::Caps, NvEncError> {
        let ops = self.ops();
        let params = live::params_for(&stream.params, info, ops);
        // Changes to the settings since the session started are part of it: a pending
        // bitrate or rate-control change is taken here (the session itself needs more).
        if self.settings.take_pending() == Change::Session {
            return Err(NvEncError::Other("settings need a new session".into()));
        }
        let s = self.settings.get();
        let (init, session, caps) = (&stream.config.init, &stream.session, &stream.caps);
        let max = Some((init.maxEncodeWidth, init.maxEncodeHeight));
        let (mut setup, _) = self.session_config(session, &s, caps, &params, stream.format, max)?;
        live::check_rc_mode(&stream.config.cfg, &setup.session.cfg, &stream.caps)?;
        let ffi::SessionConfig { init, cfg } = &mut setup.session;
        stream.session.reconfigure(init, cfg, false, force_idr)?;
        stream.config = setup.session;
        stream.params = params;
        if force_idr {
            stream.idr.restart();
            // Upstream memories of the old size go away with their pool.
            stream.registrations.clear();
        }
        // The reordering delay at the new frame rate (the latency; DTS follow by themselves,
        // `ring::Dts`).
        let delay = stream.config.cfg.frameIntervalP.max(1) as u64 - 1;
        stream.dts_offset = config::frame_duration(info) * delay;
        let ring_size = config::ring_size(setup.lookahead, stream.config.cfg.frameIntervalP);
        let (min, max) = config::latency(info, stream.dts_offset, setup.lookahead, ring_size);
        self.obj().set_latency(min, Some(max));
        self.output_caps(&stream.session, &stream.params, stream.format)
    }
}
