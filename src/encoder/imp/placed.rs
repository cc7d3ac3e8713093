// SPDX-License-Identifier: MPL-2.0
//! Where sessions go (issue 13): `cuda-device-id` (-1 automatic placement through
//! [`crate::placement`]), the probe at start, and the next GPU after a refusal. A child of
//! `imp` for its private state.

use gst::prelude::*;
use gst_video::subclass::prelude::*;

use crate::placement::{self, Tried};

use super::*;

/// "GPU 0 (name) refused the session (session-limit); it is on GPU 1 (name)".
fn moved_text(tried: &[Tried], o: i32, name: &str) -> String {
    let from: Vec<String> = tried
        .iter()
        .map(|t| {
            format!(
                "GPU {} ({}) refused the session ({})",
                t.ordinal,
                t.name,
                t.refusal.nick()
            )
        })
        .collect();
    format!("{}; it is on GPU {o} ({name})", from.join(", "))
}

impl NvEncoder {
    // -----------------------------------------------------------------------------------------
    // Placement (`cuda-device-id`, -1 automatic) and the next GPU after a refusal

    /// The GPU sessions go to now: the placed one, else `cuda-device-id` (0 while automatic
    /// placement has not placed yet).
    pub(super) fn device_id(&self) -> i32 {
        let placed = self.lock_state().placed.as_ref().map(|p| p.ordinal);
        placed.unwrap_or_else(|| self.settings.get().cuda_device_id.max(0))
    }

    pub(super) fn automatic(&self) -> bool {
        self.settings.get().cuda_device_id == settings::AUTO_CUDA_DEVICE_ID
    }

    /// Makes GPU `o` the one the next session goes to: no context yet (made there by
    /// `ensure_context`), the shared one only if it is on `o` and `share`.
    pub(super) fn switch_to(&self, o: i32, name: &str, share: bool) {
        {
            let mut st = self.lock_state();
            st.ctx = None;
            if !share || st.shared_cuda.as_ref().is_some_and(|c| c.device_id() != o) {
                st.shared_cuda = None;
            }
            st.placed = Some(Placed::new(
                o,
                name.to_owned(),
                placement::Basis::Fixed,
                String::new(),
                Vec::new(),
            ));
        }
        if share {
            self.ensure_shared_cuda();
        }
    }

    /// Opens a session on the GPU chosen by `switch_to` to prove it has NVENC for this codec,
    /// and returns the sink caps it takes. Errors: the error, and whether it is the GPU's
    /// capabilities that refuse.
    pub(super) fn probe(&self) -> Result<gst::Caps, (NvEncError, bool)> {
        let ctx = {
            let mut st = self.lock_state();
            self.ensure_context(&mut st)
                .map_err(|e| (NvEncError::Cuda(format!("cannot use CUDA: {e}")), false))?
        };
        let o = ctx.device().ordinal();
        let session = Session::open(ctx).map_err(|e| (e, false))?;
        let ops = self.ops();
        let template = self.obj().static_pad("sink").map(|p| p.pad_template_caps());
        let caps = GpuCaps::query(&session, ops.codec()).map_err(|e| (e, true))?;
        placement::learn_engines(o, caps.ext.engines.max(1) as u32);
        negotiation::probe_sink_caps(template.as_ref(), &caps, ops)
            .map_err(|e| (NvEncError::Other(e.to_string()), true))
    }

    /// The GPUs to try, best first, and why the first: automatic placement, or
    /// `cuda-device-id` followed by the others (for the session cap).
    pub(super) fn order(
        &self,
        views: &[placement::GpuView],
        upstream: Option<i32>,
    ) -> placement::Placement {
        let id = self.settings.get().cuda_device_id;
        let p = placement::place(upstream, views);
        if id == settings::AUTO_CUDA_DEVICE_ID {
            return p;
        }
        let mut order = vec![id];
        order.extend(p.order.into_iter().filter(|&o| o != id));
        placement::Placement {
            order,
            basis: placement::Basis::Fixed,
            reason: format!("GPU {id}: cuda-device-id={id}"),
        }
    }

    /// Places the element's sessions and proves the GPU with a session (the next GPU after a
    /// refusal that moves on). `upstream`: the GPU of upstream CUDA memory. Errors: what each
    /// GPU answered (empty: no GPU).
    pub(super) fn place_and_probe(&self, upstream: Option<i32>) -> Result<(), Vec<Tried>> {
        let auto = self.automatic();
        let codec = self.ops().codec();
        let _placing = placement::placing();
        let views = placement::survey(placement::nvml_codec(codec)).map_err(|t| vec![t])?;
        let plan = self.order(&views, upstream);
        let name_of = |o: i32| {
            views
                .iter()
                .find(|v| v.ordinal == o)
                .map(|v| v.name.clone())
                .unwrap_or_default()
        };
        let first = plan.order.first().copied();
        let r = placement::first_that_opens(&plan.order, auto, |o| {
            self.switch_to(o, &name_of(o), Some(o) == first);
            self.probe()
                .map_err(|(e, unsupported)| placement::tried_of(o, &name_of(o), &e, unsupported))
        });
        match r {
            Ok((o, probed, tried)) => {
                let next = plan.order.iter().copied().filter(|&n| n != o).collect();
                let reason = if tried.is_empty() {
                    plan.reason
                } else {
                    self.tell_moved(&tried, o, &name_of(o));
                    format!("{}; {}", moved_text(&tried, o, &name_of(o)), plan.reason)
                };
                gst::info!(CAT, imp = self, "sessions go to GPU {o}: {reason}");
                let mut st = self.lock_state();
                st.placed = Some(Placed::new(o, name_of(o), plan.basis, reason, next));
                st.probed_sink = Some(probed);
                st.refused.clear();
                Ok(())
            }
            Err(tried) => {
                let mut st = self.lock_state();
                st.placed = None;
                st.ctx = None;
                Err(tried)
            }
        }
    }

    /// Warns that the session moved from the GPUs of `tried` to GPU `o`, naming both.
    pub(super) fn tell_moved(&self, tried: &[Tried], o: i32, name: &str) {
        let msg = moved_text(tried, o, name);
        let debug: Vec<&str> = tried.iter().map(|t| t.message.as_str()).collect();
        gst::element_imp_warning!(
            self,
            gst::ResourceError::Busy,
            ("{msg}"),
            ["{}", debug.join("; ")]
        );
    }

    /// Posts the element error of a session no GPU took, with the machine-readable structure
    /// (`placement::error_structure`).
    pub(super) fn post_refusals(&self, tried: &[Tried]) {
        let reason = placement::overall(tried);
        let details = placement::error_structure(reason, tried);
        let text = placement::error_text(reason, tried);
        match reason {
            placement::Refusal::NoDriver => {
                gst::element_imp_error!(self, gst::LibraryError::Init, ("{text}"), details: details)
            }
            placement::Refusal::NoNvenc | placement::Refusal::NoGpu => {
                gst::element_imp_error!(self, gst::ResourceError::NotFound, ("{text}"), details: details)
            }
            placement::Refusal::SessionLimit => {
                gst::element_imp_error!(self, gst::ResourceError::Busy, ("{text}"), details: details)
            }
            placement::Refusal::UnsupportedFormat => {
                gst::element_imp_error!(self, gst::StreamError::Format, ("{text}"), details: details)
            }
            placement::Refusal::Error => {
                gst::element_imp_error!(self, gst::StreamError::Encode, ("{text}"), details: details)
            }
        }
    }

    /// The GPU of upstream CUDA memory (its GstCudaContext, asked with a context query) and
    /// that context.
    pub(super) fn upstream_cuda(&self) -> Option<(i32, gst::Context)> {
        let pad = self.obj().static_pad("sink")?;
        let mut q = gst::query::Context::new("gst.cuda.context");
        if !pad.peer_query(&mut q) {
            return None;
        }
        let ctx = q.context_owned()?;
        let obj = ctx
            .structure()
            .get::<gst::Object>("gst.cuda.context")
            .ok()?;
        let dev = obj.property_value("cuda-device-id").get::<u32>().ok()?;
        Some((dev as i32, ctx))
    }

    /// Before a session for `state`: places it again where needed (automatic placement
    /// follows upstream CUDA memory to its GPU; a start where no GPU took the session is
    /// retried). Errors: what each GPU answered.
    pub(super) fn ensure_placed(&self, state: &InputState) -> Result<(), Vec<Tried>> {
        let cuda_input = state
            .caps()
            .and_then(|c| c.features(0))
            .is_some_and(|f| f.contains("memory:CUDAMemory"));
        let upstream = if self.automatic() && cuda_input {
            self.upstream_cuda()
        } else {
            None
        };
        let placed = self.lock_state().placed.as_ref().map(|p| p.ordinal);
        let moved = upstream.as_ref().is_some_and(|(d, _)| placed != Some(*d));
        if placed.is_some() && !moved {
            return Ok(());
        }
        if let Some((d, ctx)) = &upstream {
            // Adopt upstream's context: zero copy on its GPU.
            let mut cur = None;
            cuda::gst::set_context(self.obj().upcast_ref(), ctx, *d, &mut cur);
            if cur.is_some() {
                self.lock_state().shared_cuda = cur;
            }
        }
        self.place_and_probe(upstream.map(|u| u.0))
    }

    /// After the session's GPU refused the session with `e`: the next GPUs in the placement's
    /// order, where the refusal moves on. Errors: what each GPU answered (`e` first).
    pub(super) fn open_elsewhere(
        &self,
        e: &NvEncError,
        state: &InputState,
    ) -> Result<(Stream, gst::Caps), Vec<Tried>> {
        let auto = self.automatic();
        let (o, name, next) = {
            let st = self.lock_state();
            let p = st.placed.as_ref();
            (
                p.map_or(self.settings.get().cuda_device_id.max(0), |p| p.ordinal),
                p.map(|p| p.name.clone()).unwrap_or_default(),
                p.map(|p| p.next.clone()).unwrap_or_default(),
            )
        };
        let first = placement::tried_of(o, &name, e, true);
        if !first.refusal.moves_on(auto) || next.is_empty() {
            return Err(vec![first]);
        }
        let _placing = placement::placing();
        let name_of = |o: i32| {
            cuda::Device::new(o)
                .and_then(|d| d.name())
                .unwrap_or_default()
        };
        let r = placement::first_that_opens(&next, auto, |n| {
            self.switch_to(n, &name_of(n), false);
            let ctx = {
                let mut st = self.lock_state();
                self.ensure_context(&mut st)
            }
            .map_err(|e| placement::tried_of(n, &name_of(n), &e, false))?;
            self.create_stream(ctx, state.info(), hdr_of(state))
                .map_err(|e| placement::tried_of(n, &name_of(n), &e, true))
        });
        let mut tried = vec![first];
        match r {
            Ok((n, v, more)) => {
                tried.extend(more);
                self.tell_moved(&tried, n, &name_of(n));
                let reason = moved_text(&tried, n, &name_of(n));
                let rest = next.iter().copied().filter(|&x| x != n).collect();
                let mut st = self.lock_state();
                let basis = st
                    .placed
                    .as_ref()
                    .map_or(placement::Basis::Fixed, |p| p.basis);
                st.placed = Some(Placed::new(n, name_of(n), basis, reason, rest));
                Ok(v)
            }
            Err(more) => {
                tried.extend(more);
                Err(tried)
            }
        }
    }
}
