// SPDX-License-Identifier: MPL-2.0
//! The implementation of `GstRsNvEncoder`: its state and the GstVideoEncoder vfuncs. They are
//! short and call the pieces: [`super::settings`], [`super::config`], [`super::ring`],
//! [`super::input`], [`super::negotiation`], [`super::stats`].
//!
//! Locks, in the order they may be taken: the encoder's stream lock (GstVideoEncoder's), then
//! `state` (never held across a call into GStreamer that may call back, nor across a wait),
//! then a ring's mutex; `settings` and `paths` on their own. The output thread takes the
//! stream lock and a ring's mutex, never both (see [`super::ring`]).

use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_video::prelude::*;
use gst_video::subclass::prelude::*;

use crate::cuda;
use crate::nvenc::api::{self, Codec, NvEncError, Session};
use crate::nvenc::ffi;
use crate::nvenc::formats;
use crate::placement::{self, Placed, Tried};

use super::config::{self, GpuCaps};
use super::input::{self, Picture};
use super::live;
use super::metadata::{self, Hdr10, PicPayloads};
use super::negotiation;
use super::pipemeta;
use super::ring::{self, CudaInput, Ring, Slot, Stream};
use super::sdkext;
use super::settings::{self, CcInsert, Change, Settings, Store};
use super::stats::RunningStats;
use super::{CAT, CodecOps, NvEncoderObj, SessionParams, StreamFormat, gstffi, lock};

mod insession;

type InputState = gst_video::VideoCodecState<'static, gst_video::video_codec_state::Readable>;

/// Why a picture did not reach its slot.
enum UploadError {
    /// The input buffer does not hold what its caps say: the message.
    BadInput(String),
    /// An error was posted.
    Failed,
}

/// What is wrong with an input buffer that cannot be mapped as `info` says, in plain words.
fn bad_input(input: &gst::BufferRef, info: &gst_video::VideoInfo) -> String {
    let picture = format!("{}x{} {}", info.width(), info.height(), info.format());
    if input.size() < info.size() {
        format!(
            "input buffer of {} bytes is smaller than its caps say: {} bytes for a {picture} picture",
            input.size(),
            info.size()
        )
    } else {
        format!(
            "input buffer of {} bytes does not hold a {picture} picture (its video meta's planes do not fit it)",
            input.size()
        )
    }
}

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

/// HDR10 metadata of the input caps (none if the caps have none, or no caps).
fn hdr_of(state: &InputState) -> Hdr10 {
    state.caps().map(Hdr10::from_caps).unwrap_or_default()
}

#[derive(Default)]
struct State {
    ctx: Option<Arc<cuda::Context>>,
    stream: Option<Stream>,
    input_state: Option<InputState>,
    /// Sink caps the GPU accepts (template formats NVENC takes, its size range), probed at
    /// start; answered to caps queries.
    probed_sink: Option<gst::Caps>,
    /// The warning about unsupported offered caps was posted (once per start).
    told_unsupported: bool,
    /// The GstCudaContext shared with neighbours (`gst.cuda.context`), when GStreamer's CUDA
    /// library is there (`set_context` may bring it at any time).
    shared_cuda: Option<cuda::gst::SharedContext>,
    /// The page-locked allocator proposed upstream for system memory: (CUcontext it allocates
    /// in, allocator, its live regions).
    pinned: Option<(
        usize,
        cuda::pinned::PinnedAllocator,
        cuda::pinned::PinnedRegions,
    )>,
    /// A per-picture LTR request (`rsnvenc-ltr` event) for the next frame.
    ltr_request: Option<sdkext::LtrRequest>,
    /// A force-key-unit event since the last forced frame asked for all headers.
    key_unit_all_headers: bool,
    /// `set_format` failed and posted its error: later caps (upstream retries them) are
    /// refused without a word and no frame is taken, until the element is stopped.
    caps_refused: bool,
    /// The GPU sessions go to (automatic placement or `cuda-device-id`) and why; counts as
    /// this process's session there while the element runs.
    placed: Option<Placed>,
    /// What every GPU answered when none took the session at start (retried at the first
    /// caps, where it is posted if it fails again).
    refused: Vec<Tried>,
}

#[derive(Default)]
pub struct NvEncoder {
    /// Every property (and what a change made while a session runs needs).
    settings: Arc<Store>,
    /// The running summary behind the read-only `stats` property.
    stats: Arc<RunningStats>,
    state: Mutex<State>,
    /// How input reached NVENC last (streaming thread only).
    paths: Mutex<input::Paths>,
}

/// What `handle_frame` takes from the frame before letting go of it.
struct FrameIn {
    number: u32,
    duration: Option<gst::ClockTime>,
    pts: Option<gst::ClockTime>,
    force_idr: bool,
    input: gst::Buffer,
}

/// What one frame needs of the running stream, taken under the state lock once.
struct StreamView {
    ring: Arc<Ring>,
    session: Arc<Session>,
    info: gst_video::VideoInfo,
    size: (u32, u32),
    /// The shared context (CUDA input) or the page-locked regions (system memory).
    shared: Option<cuda::gst::SharedContext>,
    pinned: Option<cuda::pinned::PinnedRegions>,
}

impl NvEncoder {
    fn ops(&self) -> &'static dyn CodecOps {
        self.obj()
            .class()
            .as_ref()
            .ops()
            .expect("concrete rsnvenc element without codec ops")
    }

    /// The element's settings (the codec elements' properties go there too).
    pub(super) fn settings(&self) -> &Store {
        &self.settings
    }

    fn lock_state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The CEA-708 captions of `input` (`GstVideoCaptionMeta`, raw or CDP) as A/53 T.35
    /// payloads for `codec`, unless `cc-insert=disabled`.
    fn caption_payloads(&self, input: &gst::BufferRef, codec: Codec) -> PicPayloads {
        let mut p = PicPayloads::default();
        if self.settings.cc_insert() == CcInsert::Disabled {
            return p;
        }
        for m in input.iter_meta::<gst_video::VideoCaptionMeta>() {
            match metadata::cc_data(m.caption_type(), m.data()) {
                Some(cc) => p.push_caption(&cc, codec),
                None => gst::debug!(
                    CAT,
                    imp = self,
                    "caption meta of type {:?} ({} bytes) not inserted (only CEA-708 raw and CDP are)",
                    m.caption_type(),
                    m.data().len()
                ),
            }
        }
        p
    }

    /// The metadata pipelines carry on `input` ([`pipemeta`]): `GstVideoSEIUserDataUnregisteredMeta`
    /// as SEI `user_data_unregistered` (H.264, H.265), `GstVideoTimeCodeMeta` as the H.265
    /// `time_code` SEI or the AV1 time code metadata OBU. What the codec cannot carry is logged.
    fn carried_payloads(&self, input: &gst::BufferRef, codec: Codec, p: &mut PicPayloads) {
        for m in input.iter_meta::<gst_video::video_meta::VideoSeiUserDataUnregisteredMeta>() {
            if codec == Codec::Av1 {
                gst::debug!(
                    CAT,
                    imp = self,
                    "AV1 has no unregistered user data: SEI meta not written"
                );
                continue;
            }
            p.push(
                pipemeta::SEI_USER_DATA_UNREGISTERED,
                pipemeta::user_data_unregistered(&m.uuid(), m.data()),
            );
        }
        if let Some(m) = input.meta::<gst_video::VideoTimeCodeMeta>() {
            let tc = pipemeta::TimeCode::from_gst(&m.tc());
            let body = match codec {
                Codec::Hevc => {
                    pipemeta::h265_time_code_sei(&tc).map(|b| (pipemeta::SEI_TIME_CODE, b))
                }
                Codec::Av1 => pipemeta::av1_timecode_metadata(&tc)
                    .map(|b| (pipemeta::AV1_METADATA_TYPE_TIMECODE, b)),
                Codec::H264 => {
                    gst::debug!(
                        CAT,
                        imp = self,
                        "time code {tc:?} not written: H.264 carries it in picture timing SEI, which NVENC owns"
                    );
                    return;
                }
            };
            match body {
                Ok((t, b)) => p.push(t, b),
                Err(e) => gst::warning!(CAT, imp = self, "time code {tc:?} not written: {e}"),
            }
        }
    }

    /// `GstVideoEncoder::transform_meta` for `insert-and-drop`: a caption meta this element
    /// inserted (CEA-708 raw, or a CDP with captions) is not copied to the output buffer;
    /// `false` leaves the decision to GstVideoEncoder's default (copy).
    fn drops_caption_meta(&self, ty: gst_video::VideoCaptionType, data: &[u8]) -> bool {
        self.settings.cc_insert() == CcInsert::InsertAndDrop
            && metadata::cc_data(ty, data).is_some()
    }

    /// Finds or makes the pipeline's GstCudaContext on the session's GPU
    /// (`gst_cuda_ensure_element_context`), without holding any lock of ours: it queries
    /// neighbours and posts messages, and `set_context` may come meanwhile.
    fn ensure_shared_cuda(&self) {
        if cuda::gst::lib().is_none() || cuda::init().is_err() {
            return;
        }
        let id = self.device_id();
        let mut cur = self.lock_state().shared_cuda.clone();
        if !cuda::gst::ensure_context(self.obj().upcast_ref(), id, &mut cur) {
            gst::debug!(CAT, imp = self, "no shared CUDA context: using our own");
        }
        let mut st = self.lock_state();
        if st.shared_cuda.is_none() {
            st.shared_cuda = cur;
        }
    }

    /// Creates the CUDA context on the session's GPU (once per start and GPU).
    fn ensure_context(&self, state: &mut State) -> Result<Arc<cuda::Context>, NvEncError> {
        if let Some(c) = &state.ctx {
            return Ok(c.clone());
        }
        let id = state
            .placed
            .as_ref()
            .map_or(self.settings.get().cuda_device_id.max(0), |p| p.ordinal);
        cuda::init()?;
        let dev = cuda::Device::new(id)?;
        let ctx = match state.shared_cuda.clone() {
            // The pipeline's context (from a neighbour, the application, or made by us and
            // offered to the others): same context, no copies between CUDA elements. Only on
            // the session's GPU (automatic placement may have moved away from it).
            Some(sc) if !sc.handle().is_null() && (sc.device_id() == id || sc.device_id() < 0) => {
                let raw = sc.handle();
                Arc::new(cuda::Context::borrowed(raw, &dev, Box::new(sc))?)
            }
            _ => Arc::new(cuda::Context::new(&dev)?),
        };
        gst::info!(
            CAT,
            imp = self,
            "CUDA device {id}: {}{}",
            dev.name().unwrap_or_default(),
            if cuda::gst::lib().is_some() {
                " (context shared as gst.cuda.context)"
            } else {
                ""
            }
        );
        state.ctx = Some(ctx.clone());
        Ok(ctx)
    }

    // -----------------------------------------------------------------------------------------
    // Placement (`cuda-device-id`, -1 automatic) and the next GPU after a refusal

    /// The GPU sessions go to now: the placed one, else `cuda-device-id` (0 while automatic
    /// placement has not placed yet).
    fn device_id(&self) -> i32 {
        let placed = self.lock_state().placed.as_ref().map(|p| p.ordinal);
        placed.unwrap_or_else(|| self.settings.get().cuda_device_id.max(0))
    }

    fn automatic(&self) -> bool {
        self.settings.get().cuda_device_id == settings::AUTO_CUDA_DEVICE_ID
    }

    /// Makes GPU `o` the one the next session goes to: no context yet (made there by
    /// `ensure_context`), the shared one only if it is on `o` and `share`.
    fn switch_to(&self, o: i32, name: &str, share: bool) {
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
    fn probe(&self) -> Result<gst::Caps, (NvEncError, bool)> {
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
    fn order(&self, views: &[placement::GpuView], upstream: Option<i32>) -> placement::Placement {
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
    fn place_and_probe(&self, upstream: Option<i32>) -> Result<(), Vec<Tried>> {
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
    fn tell_moved(&self, tried: &[Tried], o: i32, name: &str) {
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
    fn post_refusals(&self, tried: &[Tried]) {
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
    fn upstream_cuda(&self) -> Option<(i32, gst::Context)> {
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
    fn ensure_placed(&self, state: &InputState) -> Result<(), Vec<Tried>> {
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
    fn open_elsewhere(
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

    /// Posts what the configuration had to refuse, as element warnings.
    fn warn(&self, warnings: &[config::Warning]) {
        for (message, debug) in warnings {
            gst::element_imp_warning!(
                self,
                gst::LibraryError::Settings,
                ("{message}"),
                ["{debug}"]
            );
        }
    }

    /// The `encoder` tag (as x264enc and nvcodec set one), sent downstream before the next
    /// buffer: the element's factory name, the plugin version and the NVENC API in use, e.g.
    /// "rsnvench265enc 0.1.0 (NVIDIA NVENC API 13.0)".
    fn merge_encoder_tag(&self) {
        let obj = self.obj();
        let factory = obj
            .factory()
            .map_or_else(|| obj.type_().name().to_string(), |f| f.name().to_string());
        let api = api::load().map_or_else(|_| "?".to_string(), |l| l.api.name().to_string());
        let mut tags = gst::TagList::new();
        tags.make_mut().add::<gst::tags::Encoder>(
            &format!(
                "{factory} {} (NVIDIA NVENC API {api})",
                env!("CARGO_PKG_VERSION")
            )
            .as_str(),
            gst::TagMergeMode::Replace,
        );
        obj.merge_tags(Some(&tags), gst::TagMergeMode::Replace);
    }

    /// Opens and initialises a session for `info`, creates the ring and starts the output
    /// thread. Returns the stream and its output caps.
    fn create_stream(
        &self,
        ctx: Arc<cuda::Context>,
        info: &gst_video::VideoInfo,
        hdr: Hdr10,
    ) -> Result<(Stream, gst::Caps), NvEncError> {
        let ops = self.ops();
        let codec = ops.codec();
        // This session takes the settings as they are now: earlier changes need no update.
        let s = self.settings.session_started();
        let format = formats::input_format(info.format()).ok_or_else(|| {
            NvEncError::Other(format!("unsupported input format {:?}", info.format()))
        })?;
        let session = Session::open(ctx)?;
        let api = session.api();
        gst::info!(
            CAT,
            imp = self,
            "NVENC API {} (driver supports up to {}.{})",
            api.name(),
            api::load()?.driver_max.0,
            api::load()?.driver_max.1
        );
        // Capability checks give clear errors before the driver does.
        let caps = GpuCaps::query(&session, codec)?;
        let size = ops.encode_size(info.width(), info.height());
        let name = format!("{:?}", info.format());
        config::check_input(&caps, codec, &format, &name, size).map_err(NvEncError::Other)?;
        let params = SessionParams {
            info: info.clone(),
            encode_width: size.0,
            encode_height: size.1,
            buffer_format: format.buffer_format,
            bit_depth: format.bit_depth,
            chroma_444: format.chroma_444,
            api,
            downstream_profiles: negotiation::downstream_profiles(self.obj().upcast_ref()),
            profile_guids: caps.profile_guids.clone(),
            cabac: caps.cabac,
            hdr,
        };
        self.tell_hdr(&params, codec);
        let fmt = ops.choose_stream_format(self.obj().upcast_ref());
        let (mut config, plan) = self.session_config(&session, &s, &caps, &params, fmt, None)?;
        let ffi::SessionConfig { init, cfg } = &mut config.session;
        session.initialize(init, cfg)?;
        self.stats.session_opened();
        let out_caps = self.output_caps(&session, &params, fmt)?;
        let stream = self.start_ring(session, params, config, plan, (caps, fmt))?;
        Ok((stream, out_caps))
    }

    /// Logs how the input's HDR10 metadata goes out, if it has any.
    fn tell_hdr(&self, params: &SessionParams, codec: Codec) {
        let hdr = &params.hdr;
        if hdr.is_empty() {
            return;
        }
        gst::info!(
            CAT,
            imp = self,
            "HDR10 metadata on every IDR (mastering display {:?}, content light level {:?}), through {}",
            hdr.mastering,
            hdr.light,
            if params.native_hdr(codec) {
                "NVENC's outputMasteringDisplay/outputMaxCll and pMasteringDisplay/pMaxCll"
            } else if codec == Codec::Av1 {
                "obuPayloadArray (HDR_MDCV / HDR_CLL metadata OBUs)"
            } else {
                "seiPayloadArray (SEI 137 / 144)"
            }
        );
    }

    /// The session's initialize params and encode config ([`config`], then the codec's part,
    /// the bit depth and the SDK extensions), posting what had to be refused. `max`: the
    /// running session's `maxEncodeWidth/Height` (a reconfiguration), else `None` (from the
    /// `max-width`/`max-height` properties, 0 = the encode size).
    fn session_config(
        &self,
        session: &Session,
        s: &Settings,
        caps: &GpuCaps,
        params: &SessionParams,
        fmt: StreamFormat,
        max: Option<(u32, u32)>,
    ) -> Result<(SessionSetup, sdkext::Plan), NvEncError> {
        let ops = self.ops();
        let (codec, api) = (ops.codec(), params.api);
        let bframes = if s.bframes > caps.max_bframes {
            let max_b = caps.max_bframes;
            gst::warning!(
                CAT,
                imp = self,
                "bframes={} is more than this GPU supports ({max_b}); using {max_b}",
                s.bframes
            );
            max_b
        } else {
            s.bframes
        };
        let size = (params.encode_width, params.encode_height);
        let mut res = settings::resolve(s, size.0, size.1);
        if let Some(w) = config::check_tuning(&mut res, api, codec) {
            self.warn(&[w]);
        }
        if let Some(w) = config::check_lossless(&mut res, caps, codec) {
            self.warn(&[w]);
        }
        let preset = session.preset_config(codec.guid(), res.preset_guid, res.tuning)?;
        let mut enc = config::encode_config(&preset.presetCfg, s, &res, caps, codec, bframes);
        self.warn(&enc.warnings);
        let refused = ops
            .configure(&mut enc.cfg, &enc.settings, params, fmt)
            .map_err(NvEncError::Other)?;
        for r in refused {
            gst::element_imp_warning!(self, gst::LibraryError::Settings, ("{r}"), ["{codec}"]);
        }
        if let Some(profile) = config::lossless_h264_profile(&res, caps, codec, enc.cfg.profileGUID)
        {
            gst::info!(
                CAT,
                imp = self,
                "lossless H.264: High 4:4:4 Predictive profile"
            );
            enc.cfg.profileGUID = profile;
        }
        // The codec may have lowered it (a profile without B-frames).
        let frame_interval_p = enc.cfg.frameIntervalP;
        if params.bit_depth != 8 {
            api::set_bit_depth(api, codec, &mut enc.cfg, params.bit_depth);
        }
        // Split-frame encoding, lookahead level, temporal filter, LTR: SDK features beyond
        // nvcodec, each checked against the API's layout, the GPU's caps and the header's rules.
        let x = sdkext::Session {
            codec,
            api,
            frame_interval_p,
            lookahead: enc.lookahead > 0,
            zero_reorder_delay: enc.settings.zerolatency,
            weighted_prediction: enc.weighted_prediction,
            preset_tf_level: sdkext::preset_tf_level(api, codec, &enc.cfg),
        };
        let plan = sdkext::plan(&enc.settings, &x, &caps.ext);
        for r in &plan.refused {
            gst::element_imp_warning!(
                self,
                gst::LibraryError::Settings,
                ("{} refused: {}", r.asked, r.why),
                ["NVENC API {}, {}, {:?}", api.name(), codec, caps.ext]
            );
        }
        for n in &plan.notes {
            gst::info!(CAT, imp = self, "{n}");
        }
        gst::debug!(
            CAT,
            imp = self,
            "SDK extensions: {plan:?} with {:?}",
            caps.ext
        );
        let max = max.unwrap_or_else(|| {
            let asked = (
                if s.max_width == 0 {
                    size.0
                } else {
                    s.max_width
                },
                if s.max_height == 0 {
                    size.1
                } else {
                    s.max_height
                },
            );
            let (w, h) = ops.encode_size(asked.0.min(caps.width.1), asked.1.min(caps.height.1));
            (w.max(size.0), h.max(size.1))
        });
        let mut init = config::initialize_params(
            codec,
            &res,
            enc.weighted_prediction,
            &params.info,
            size,
            max,
            params.buffer_format,
        );
        let mut cfg = enc.cfg;
        sdkext::apply(&plan, api, codec, &mut init, &mut cfg);
        Ok((
            SessionSetup {
                session: ffi::SessionConfig { init, cfg },
                gop: enc.gop,
                lookahead: enc.lookahead,
            },
            plan,
        ))
    }

    /// The ring of an initialised session, its output thread, and the latency it gives.
    fn start_ring(
        &self,
        session: Arc<Session>,
        params: SessionParams,
        setup: SessionSetup,
        plan: sdkext::Plan,
        (caps, fmt): (GpuCaps, StreamFormat),
    ) -> Result<Stream, NvEncError> {
        let codec = self.ops().codec();
        let frame_interval_p = setup.session.cfg.frameIntervalP;
        let (ew, eh) = (params.encode_width, params.encode_height);
        // Input buffers as large as the session may become (a smaller picture is read from
        // their top-left corner).
        let init = &setup.session.init;
        let (bw, bh) = (init.maxEncodeWidth.max(ew), init.maxEncodeHeight.max(eh));
        let ring_size = config::ring_size(setup.lookahead, frame_interval_p);
        let mut free = Vec::with_capacity(ring_size as usize);
        for _ in 0..ring_size {
            free.push(Slot {
                input: api::InputBuffer::new(&session, bw, bh, params.buffer_format)?,
                output: api::BitstreamBuffer::new(&session)?,
                cuda: None,
                device: None,
            });
        }
        let ring = Ring::new(free, !params.hdr.is_empty());
        let frame_dur = config::frame_duration(&params.info);
        let dts_offset = frame_dur * (frame_interval_p.max(1) as u64 - 1);
        let (min, max) = config::latency(&params.info, dts_offset, setup.lookahead, ring_size);
        self.obj().set_latency(min, Some(max));
        let thread = ring::spawn_output_thread(
            session.clone(),
            ring.clone(),
            ring::Output {
                element: self.obj().clone().upcast(),
                ops: self.ops(),
                format: fmt,
                dts_offset,
                stats: self.stats.clone(),
                settings: self.settings.clone(),
            },
        )?;
        let (gop, lookahead) = (setup.gop, setup.lookahead);
        gst::info!(
            CAT,
            imp = self,
            "session ready: {ew}x{eh}, ring {ring_size}, gop {gop}, frameIntervalP {frame_interval_p}, lookahead {lookahead}"
        );
        let api = params.api;
        Ok(Stream {
            session,
            ring,
            thread: Some(thread),
            params,
            dts_offset,
            frame_idx: 0,
            ltr_per_picture: plan
                .ltr
                .filter(|(_, trust)| !trust)
                .and_then(|(n, _)| Some((sdkext::pic_ltr_layout(api, codec)?, n))),
            idr: ring::IdrPrediction::new(gop),
            config: setup.session,
            registrations: Default::default(),
            caps,
            format: fmt,
        })
    }

    /// The `rsnvenc-ltr` event (custom upstream, from downstream, or custom downstream,
    /// serialized): per-picture long-term reference control for the next frame submitted.
    /// Fields, both optional: `mark-frame-idx` (uint): mark that picture as long-term reference
    /// with this index (`ltrMarkFrame`, `ltrMarkFrameIdx`); `use-frame-bitmap` (uint): predict
    /// it from the long-term references of these indices only (`ltrUseFrames`,
    /// `ltrUseFrameBitmap`), e.g. after a loss reported by the receiver. `false` for any other
    /// event.
    fn take_ltr_event(&self, event: &gst::Event) -> bool {
        let Some(st) = event.structure().filter(|s| s.name() == "rsnvenc-ltr") else {
            return false;
        };
        let r = sdkext::LtrRequest {
            mark: st.get::<u32>("mark-frame-idx").ok(),
            use_bitmap: st.get::<u32>("use-frame-bitmap").unwrap_or(0),
        };
        gst::debug!(CAT, imp = self, "LTR request for the next picture: {r:?}");
        let mut g = self.lock_state();
        // Two requests before a frame: the later mark wins, the bitmaps add up.
        let prev = g.ltr_request.take().unwrap_or_default();
        g.ltr_request = Some(sdkext::LtrRequest {
            mark: r.mark.or(prev.mark),
            use_bitmap: r.use_bitmap | prev.use_bitmap,
        });
        true
    }

    /// Remembers a force-key-unit event's `all-headers` for the forced frame.
    fn note_key_unit(&self, event: &gst::Event) {
        if let Some(all) = live::key_unit_all_headers(event) {
            self.lock_state().key_unit_all_headers |= all;
        }
    }

    /// The `stats` property.
    fn stats_structure(&self) -> gst::Structure {
        let (ring, placed) = {
            let st = self.lock_state();
            (
                st.stream.as_ref().map(|s| s.ring.clone()),
                st.placed
                    .as_ref()
                    .map(|p| (p.ordinal, p.name.clone(), p.basis, p.reason.clone())),
            )
        };
        let mut s = self.stats.structure(ring.map_or(0, |r| r.in_flight()));
        // Where the sessions are, and what NVML says of that GPU now (-1: unknown).
        s.set("encoder", "nvenc");
        let (gpu, name, basis, reason) =
            placed.unwrap_or((-1, String::new(), placement::Basis::Fixed, String::new()));
        let (util, sessions, uuid) = if gpu >= 0 {
            placement::gpu_metrics(gpu)
        } else {
            (None, None, None)
        };
        s.set("gpu", gpu);
        s.set("gpu-name", name);
        s.set("gpu-uuid", uuid.unwrap_or_default());
        s.set("placement", basis.nick());
        s.set("placement-reason", reason);
        s.set("nvenc-utilisation", util.map_or(-1, |u| u as i32));
        s.set("gpu-sessions", sessions.map_or(-1, |n| n as i32));
        s
    }

    /// Applies property changes made while PLAYING (see [`Store::take_pending`]). Called by
    /// the streaming thread with the stream lock held once and no frame borrowed.
    fn apply_pending_update(&self) -> Result<(), gst::FlowError> {
        let change = self.settings.take_pending();
        if change == Change::Nothing || self.lock_state().stream.is_none() {
            return Ok(());
        }
        if change == Change::RateControl {
            let mut st = self.lock_state();
            let Some(stream) = st.stream.as_mut() else {
                return Ok(());
            };
            let info = stream.params.info.clone();
            match self.reconfigure(stream, &info, false) {
                Ok(_) => {
                    gst::info!(CAT, imp = self, "rate control changed without a new IDR");
                    return Ok(());
                }
                Err(e) => {
                    gst::info!(CAT, imp = self, "{e}; re-creating the session instead");
                }
            }
        }
        if change == Change::Rate {
            let s = self.settings.get();
            let mut st = self.lock_state();
            let Some(stream) = st.stream.as_mut() else {
                return Ok(());
            };
            if let Err(why) = config::live_rate_update(&mut stream.config.cfg, &s) {
                gst::info!(CAT, imp = self, "{why}");
                return Ok(());
            }
            let ffi::SessionConfig { init, cfg } = &mut stream.config;
            match stream.session.reconfigure(init, cfg, false, false) {
                Ok(()) => {
                    gst::info!(
                        CAT,
                        imp = self,
                        "bitrate {} kbit/s, max {} kbit/s applied without a new IDR",
                        s.bitrate,
                        s.max_bitrate
                    );
                    return Ok(());
                }
                Err(e) => {
                    // Some GPUs or modes refuse it: fall back to a new session.
                    gst::warning!(CAT, imp = self, "{e}; re-creating the session instead");
                }
            }
        }
        self.restart_stream()
    }

    /// A new session for `state` on the element's CUDA context (made if needed); failures are
    /// posted as element errors.
    fn open_stream(&self, state: &InputState) -> Result<(Stream, gst::Caps), gst::FlowError> {
        let post = |e: NvEncError| {
            self.post_error(&e);
            gst::FlowError::Error
        };
        let ctx = {
            let mut st = self.lock_state();
            self.ensure_context(&mut st).map_err(post)?
        };
        self.create_stream(ctx, state.info(), hdr_of(state))
            .map_err(post)
    }

    /// Drains the session, then opens a new one with the current settings (new IDR, caps
    /// re-negotiated). Called with the stream lock held once and no frame borrowed.
    fn restart_stream(&self) -> Result<(), gst::FlowError> {
        let (old, input_state) = {
            let mut st = self.lock_state();
            (st.stream.take(), st.input_state.clone())
        };
        let Some(input_state) = input_state else {
            return Err(gst::FlowError::NotNegotiated);
        };
        let obj = self.obj();
        if let Some(mut s) = old {
            s.drain(obj.upcast_ref(), true)?;
            s.stop(obj.upcast_ref(), true);
        }
        let (stream, caps) = self.open_stream(&input_state)?;
        self.lock_state().stream = Some(stream);
        gst::info!(CAT, imp = self, "settings changed: new session, new IDR");
        let out = obj.set_output_state(caps, Some(&input_state))?;
        obj.negotiate(out)?;
        Ok(())
    }

    /// The output caps of an initialised (or reconfigured) session, from its parameter sets.
    fn output_caps(
        &self,
        session: &Session,
        params: &SessionParams,
        fmt: StreamFormat,
    ) -> Result<gst::Caps, NvEncError> {
        let seq = session.sequence_params()?;
        let mut caps = self
            .ops()
            .output_caps(&seq, params, fmt)
            .map_err(|e| NvEncError::Other(format!("cannot build output caps: {e}")))?;
        if super::colour::converted_by_nvenc(&params.info) {
            // NVENC codes these as BT.709 4:2:0 (see colour::iso_colour), not as the input's
            // colorimetry, which GstVideoEncoder would otherwise copy into the caps.
            caps.make_mut().set("colorimetry", "bt709");
        }
        Ok(caps)
    }

    fn post_error(&self, e: &NvEncError) {
        let domain_msg = e.to_string();
        match e {
            NvEncError::LibraryNotFound(_) | NvEncError::DriverTooOld { .. } => {
                gst::element_imp_error!(self, gst::LibraryError::Init, ["{domain_msg}"])
            }
            NvEncError::NoNvenc { .. } => {
                gst::element_imp_error!(self, gst::ResourceError::NotFound, ["{domain_msg}"])
            }
            _ => gst::element_imp_error!(self, gst::StreamError::Encode, ["{domain_msg}"]),
        }
    }

    /// The running stream, re-created after a flush, and what one frame needs of it.
    fn stream_view(&self, cuda_input: bool) -> Result<StreamView, gst::FlowError> {
        let mut st = self.lock_state();
        if st.stream.is_none() {
            let input_state = st
                .input_state
                .clone()
                .ok_or(gst::FlowError::NotNegotiated)?;
            drop(st);
            let (stream, _caps) = self.open_stream(&input_state)?;
            st = self.lock_state();
            st.stream = Some(stream);
        }
        let s = st.stream.as_ref().ok_or(gst::FlowError::NotNegotiated)?;
        Ok(StreamView {
            ring: s.ring.clone(),
            session: s.session.clone(),
            info: s.params.info.clone(),
            size: (s.params.encode_width, s.params.encode_height),
            shared: if cuda_input {
                st.shared_cuda.clone()
            } else {
                None
            },
            pinned: if cuda_input {
                None
            } else {
                st.pinned.as_ref().map(|p| p.2.clone())
            },
        })
    }

    /// Upstream CUDA memory of the shared context, in a layout NVENC reads in place: its
    /// registration (made once per device pointer) mapped for one picture, with the memory's
    /// device mapping. `None`: copy the frame instead.
    fn map_in_place(
        &self,
        pic: &Picture,
        shared: &cuda::gst::SharedContext,
        paths: &mut input::Paths,
    ) -> Option<CudaInput> {
        let memory = cuda::gst::MappedCudaMemory::map(pic.input, shared)?;
        let key = input::in_place_key(pic, &memory)?;
        let reg = {
            let mut st = self.lock_state();
            let stream = st.stream.as_mut()?;
            match stream.registrations.get(&key).filter(|r| !r.left_mapped()) {
                Some(r) => r.clone(),
                None => {
                    // A registration that a failed unmap left mapped is replaced (dropping it
                    // unregisters it, which unmaps it).
                    stream.registrations.remove(&key);
                    let r = input::register(pic, key)?;
                    if stream.registrations.len() >= 64 {
                        // A pool that keeps allocating: start over (mapped ones stay alive).
                        stream.registrations.clear();
                    }
                    stream.registrations.insert(key, r.clone());
                    r
                }
            }
        };
        let nvenc = input::map_registered(pic, &reg, paths)?;
        Some(CudaInput {
            nvenc,
            _memory: Some(memory),
        })
    }

    /// The picture into the slot: read in place, uploaded or copied on the device where it
    /// can be (no CPU copy), else copied by the CPU into the slot's input buffer.
    /// `Err(BadInput)`: the buffer does not hold the picture its caps say (nothing posted
    /// yet); `Err(Failed)`: an error was posted.
    fn upload(
        &self,
        view: &StreamView,
        input: &gst::Buffer,
        slot: &mut Slot,
    ) -> Result<(), UploadError> {
        let obj = self.obj();
        let pic = Picture {
            element: obj.upcast_ref(),
            session: &view.session,
            input,
            info: &view.info,
            size: view.size,
        };
        // System memory skips both CUDA paths (no further FFI call per frame).
        slot.cuda = {
            let mut paths = lock(&self.paths);
            if cuda::gst::is_cuda_buffer(input) {
                view.shared
                    .as_ref()
                    .and_then(|sh| self.map_in_place(&pic, sh, &mut paths))
                    .or_else(|| {
                        input::copy_cuda(&pic, slot, &mut paths).map(|nvenc| CudaInput {
                            nvenc,
                            _memory: None,
                        })
                    })
            } else {
                view.pinned.as_ref().and_then(|regions| {
                    input::upload_pinned(&pic, regions, slot, &mut paths).map(|nvenc| CudaInput {
                        nvenc,
                        _memory: None,
                    })
                })
            }
        };
        if slot.cuda.is_some() {
            return Ok(());
        }
        let vframe = gst_video::VideoFrameRef::from_buffer_ref_readable(input, &view.info)
            .map_err(|_| UploadError::BadInput(bad_input(input, &view.info)))?;
        input::copy_frame(slot, &vframe, view.size.1).map_err(|e| {
            self.post_error(&e);
            UploadError::Failed
        })
    }

    /// Outputs every frame NVENC holds (before an error that stops the stream).
    fn drain_in_flight(&self) {
        let stream = self.lock_state().stream.take();
        if let Some(mut s) = stream {
            let _ = s.drain(self.obj().upcast_ref(), true);
            self.lock_state().stream = Some(s);
        }
    }

    /// The picture parameters of one frame: its number and duration, the stream's frame index,
    /// a pending LTR request, a forced IDR. Returns them with the frame's SEI messages /
    /// metadata OBUs (captions, and on an IDR the HDR10 metadata), which must live until
    /// `nvEncEncodePicture` returns, and whether the HDR metadata went with it.
    fn picture_params(&self, f: &FrameIn) -> (Box<ffi::NV_ENC_PIC_PARAMS>, PicPayloads, bool) {
        let mut pic: Box<ffi::NV_ENC_PIC_PARAMS> = ffi::boxed_zeroed();
        pic.inputTimeStamp = f.number as u64;
        pic.inputDuration = f.duration.map(|d| d.nseconds()).unwrap_or(0);
        let codec = self.ops().codec();
        let mut payloads = self.caption_payloads(&f.input, codec);
        self.carried_payloads(&f.input, codec, &mut payloads);
        let mut with_hdr = false;
        let settings = self.settings.get();
        let (mut key_unit, mut wave) = (None, None);
        let ltr_refused = {
            let mut st = self.lock_state();
            if f.force_idr {
                key_unit = Some(std::mem::take(&mut st.key_unit_all_headers));
            }
            let ltr_request = st.ltr_request.take();
            let mut refused = None;
            if let Some(s) = st.stream.as_mut() {
                pic.frameIdx = s.frame_idx;
                s.frame_idx = s.frame_idx.wrapping_add(1);
                if let Some(r) = ltr_request {
                    refused = match s.ltr_per_picture {
                        Some((layout, n))
                            if r.mark.is_none_or(|m| m < n)
                                && r.use_bitmap.checked_shr(n).unwrap_or(0) == 0 =>
                        {
                            sdkext::apply_pic_ltr(&layout, &mut pic, r);
                            None
                        }
                        Some((_, n)) => Some(format!(
                            "{r:?} is outside the {n} long-term references of this session (indices 0..{n})"
                        )),
                        None => Some(format!(
                            "{r:?}: this session has no per-picture long-term references (needs ltr-frames > 0, ltr-trust-mode=false, bframes=0; AV1: NVENC API 13.0)"
                        )),
                    };
                }
                let ir = s
                    .caps
                    .intra_refresh
                    .then(|| settings.intra_refresh())
                    .flatten();
                let fip = s.config.cfg.frameIntervalP.max(0) as u32;
                wave = live::intra_refresh_wave(settings.key_unit_intra_refresh, ir, fip);
                if s.next_is_idr(f.force_idr && wave.is_none()) && !s.params.hdr.is_empty() {
                    payloads.push_hdr(&s.params.hdr, codec, s.params.native_hdr(codec));
                    with_hdr = true;
                }
            }
            refused
        };
        if let Some(why) = ltr_refused {
            gst::element_imp_warning!(
                self,
                gst::LibraryError::Settings,
                ("rsnvenc-ltr event ignored"),
                ["{why}"]
            );
        }
        if !payloads.is_empty() {
            payloads.attach(&mut pic, codec);
            gst::log!(
                CAT,
                imp = self,
                "frame {}: {}",
                f.number,
                payloads.describe()
            );
        }
        if let Some(all_headers) = key_unit {
            live::force_key_unit(&mut pic, codec, wave, all_headers);
        }
        (pic, payloads, with_hdr)
    }
}

/// What [`NvEncoder::session_config`] made.
struct SessionSetup {
    session: ffi::SessionConfig,
    gop: u32,
    lookahead: u32,
}

impl gstffi::CaptionMetaPolicy for NvEncoder {
    fn drops_caption_meta(
        enc: &gst_video::VideoEncoder,
        ty: gst_video::VideoCaptionType,
        data: &[u8],
    ) -> bool {
        enc.downcast_ref::<NvEncoderObj>()
            .is_some_and(|e| e.imp().drops_caption_meta(ty, data))
    }
}

#[glib::object_subclass]
impl ObjectSubclass for NvEncoder {
    const NAME: &'static str = "GstRsNvEncoder";
    const ABSTRACT: bool = true;
    type Type = NvEncoderObj;
    type ParentType = gst_video::VideoEncoder;
    type Class = super::Class;

    fn class_init(klass: &mut super::Class) {
        gstffi::install_transform_meta::<NvEncoder>(&mut klass.parent);
    }
}

impl ObjectImpl for NvEncoder {
    fn signals() -> &'static [glib::subclass::Signal] {
        static SIGNALS: LazyLock<Vec<glib::subclass::Signal>> = LazyLock::new(|| {
            vec![
                // nvcodec 1.28's signal, with more fields: frame-idx (uint), frame-avg-qp
                // (uint), picture-type ("idr", "i", "p", "b"), size (bytes),
                // system-frame-number (uint), ltr-frame (boolean: NVENC marked the picture as
                // a long-term reference), ltr-frame-idx (uint: its LTR index). Emitted from
                // the output thread when emit-frame-stats is on.
                glib::subclass::Signal::builder("frame-stats")
                    .param_types([gst::Structure::static_type()])
                    .build(),
            ]
        });
        SIGNALS.as_ref()
    }

    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> =
            LazyLock::new(settings::base_properties);
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        self.settings.set_property(pspec.name(), value);
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            "stats" => self.stats_structure().to_value(),
            name => self.settings.property(name),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        // So that PTS - B-frame delay (the DTS) never goes below zero.
        self.obj()
            .set_min_pts(gst::ClockTime::from_seconds(60 * 60 * 1000));
    }
}

impl GstObjectImpl for NvEncoder {}

impl ElementImpl for NvEncoder {
    fn set_context(&self, context: &gst::Context) {
        let id = self.device_id();
        let mut cur = self.lock_state().shared_cuda.take();
        cuda::gst::set_context(self.obj().upcast_ref(), context, id, &mut cur);
        self.lock_state().shared_cuda = cur;
        self.parent_set_context(context);
    }
}

impl VideoEncoderImpl for NvEncoder {
    fn src_event(&self, event: gst::Event) -> bool {
        self.note_key_unit(&event);
        if matches!(event.view(), gst::EventView::CustomUpstream(_)) && self.take_ltr_event(&event)
        {
            return true;
        }
        self.parent_src_event(event)
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        self.note_key_unit(&event);
        if matches!(event.view(), gst::EventView::CustomDownstream(_))
            && self.take_ltr_event(&event)
        {
            return true;
        }
        self.parent_sink_event(event)
    }

    fn sink_query(&self, query: &mut gst::QueryRef) -> bool {
        self.handle_context_query(query) || self.parent_sink_query(query)
    }

    fn src_query(&self, query: &mut gst::QueryRef) -> bool {
        self.handle_context_query(query) || self.parent_src_query(query)
    }

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        self.stats.reset();
        // Fail at start, with a clear message, on machines without the NVENC library.
        if let Err(e) = api::load() {
            return Err(gst::error_msg!(gst::LibraryError::Init, ["{e}"]));
        }
        self.lock_state().caps_refused = false;
        // Place the sessions (`cuda-device-id`, -1 automatic) and open one there to prove the
        // GPU has NVENC (the H100 does not) and can encode this codec, and to learn which input
        // it takes. If no GPU takes it now, the first caps try again (a session may have closed
        // by then) and post the error, with what each GPU answered.
        if let Err(tried) = self.place_and_probe(None) {
            let reason = placement::overall(&tried);
            gst::info!(
                CAT,
                imp = self,
                "no GPU took a session at start, retried at the first caps: {}",
                placement::error_text(reason, &tried)
            );
            self.lock_state().refused = tried;
        }
        Ok(())
    }

    fn caps(&self, filter: Option<&gst::Caps>) -> gst::Caps {
        let probed = self.lock_state().probed_sink.clone();
        negotiation::sink_caps(self.obj().upcast_ref(), self.ops(), probed, filter, || {
            !std::mem::replace(&mut self.lock_state().told_unsupported, true)
        })
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        let stream = {
            let mut st = self.lock_state();
            st.input_state = None;
            st.probed_sink = None;
            st.told_unsupported = false;
            st.ltr_request = None;
            st.caps_refused = false;
            st.stream.take()
        };
        if let Some(s) = stream {
            s.stop(self.obj().upcast_ref(), false);
        }
        let mut st = self.lock_state();
        st.ctx = None;
        st.placed = None;
        st.refused.clear();
        Ok(())
    }

    fn propose_allocation(
        &self,
        query: &mut gst::query::Allocation,
    ) -> Result<(), gst::LoggableError> {
        query.add_allocation_meta::<gst_video::VideoMeta>(None);
        let min = negotiation::pool_min_buffers(&self.settings.get());
        let obj = self.obj();
        let element = obj.upcast_ref();
        let shared = self.lock_state().shared_cuda.clone();
        if let Some((pool, size, min)) =
            negotiation::cuda_pool(element, query, shared.as_ref(), min)
        {
            query.add_allocation_pool(Some(&pool), size, min, 0);
        } else if let Some(allocator) = self.pinned_allocator(query)
            && let Some((pool, size, min)) =
                negotiation::pinned_pool(element, query, &allocator, min)
        {
            query.add_allocation_param(
                Some(allocator.upcast_ref::<gst::Allocator>()),
                gst::AllocationParams::default(),
            );
            query.add_allocation_pool(Some(&pool), size, min, 0);
        }
        self.parent_propose_allocation(query)
    }

    fn set_format(&self, state: &InputState) -> Result<(), gst::LoggableError> {
        if self.lock_state().caps_refused {
            return Err(gst::loggable_error!(
                CAT,
                "caps refused after an earlier error"
            ));
        }
        // One error, then every later caps refused (`State::caps_refused`): a session that
        // failed to open must not open at upstream's retry and preroll a frame after the
        // error, nor post the same error again at each retry.
        let refuse = |why: String| {
            self.lock_state().caps_refused = true;
            gst::loggable_error!(CAT, "{why}")
        };
        let obj = self.obj();
        // Interlaced input is refused, as nvcodec does, rather than coded as progressive
        // frames with the fields woven (which NVENC would do silently).
        let mode = state.info().interlace_mode();
        if mode != gst_video::VideoInterlaceMode::Progressive {
            gst::element_imp_error!(
                self,
                gst::StreamError::Format,
                ("Interlaced input is not supported"),
                [
                    "the input is interlaced (interlace-mode={}); this encoder codes progressive frames only: deinterlace upstream (e.g. with the deinterlace element)",
                    mode.to_str()
                ]
            );
            return Err(refuse(format!("interlaced input ({mode:?})")));
        }
        if let Err(why) = negotiation::check_frame_rate(self.ops().codec(), state.info()) {
            gst::element_imp_error!(
                self,
                gst::CoreError::Negotiation,
                ("{}", why),
                ["input caps {:?}", state.caps()]
            );
            return Err(refuse(why));
        }
        let caps = match self.change_in_session(state) {
            Some(caps) => caps,
            None => match self.new_session_for(state) {
                Ok(caps) => Some(caps),
                Err(e) => {
                    self.lock_state().caps_refused = true;
                    return Err(e);
                }
            },
        };
        self.lock_state().input_state = Some(state.clone());
        // `None`: the session took a change NVENC is not told about, output caps stay.
        let Some(caps) = caps else { return Ok(()) };
        let out = obj
            .set_output_state(caps, Some(state))
            .map_err(|_| gst::loggable_error!(CAT, "Failed to set output state"))?;
        obj.negotiate(out)
            .map_err(|_| gst::loggable_error!(CAT, "Failed to negotiate"))?;
        self.merge_encoder_tag();
        Ok(())
    }

    fn handle_frame(
        &self,
        frame: gst_video::VideoCodecFrame,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        // Take what NVENC needs and let go of the frame first: gstreamer-rs's
        // VideoCodecFrame holds the stream lock (once more) while it lives, and the wait for a
        // free slot below must release the stream lock completely.
        let f = FrameIn {
            number: frame.system_frame_number(),
            duration: frame.duration(),
            pts: frame.pts(),
            force_idr: frame
                .flags()
                .contains(gst_video::VideoCodecFrameFlags::FORCE_KEYFRAME),
            input: frame.input_buffer_owned().ok_or(gst::FlowError::Error)?,
        };
        drop(frame);
        self.apply_pending_update()?;
        let view = self.stream_view(cuda::gst::is_cuda_buffer(&f.input))?;
        let obj = self.obj();
        let mut slot = view.ring.acquire(obj.upcast_ref()).map_err(|e| {
            self.post_error(&e);
            gst::FlowError::Error
        })?;
        if let Err(e) = self.upload(&view, &f.input, &mut slot) {
            view.ring.give_back(slot);
            if let UploadError::BadInput(why) = e {
                // What NVENC already holds goes out before the error stops the stream.
                self.drain_in_flight();
                gst::element_imp_error!(self, gst::StreamError::Format, ("{}", why));
            }
            return Err(gst::FlowError::Error);
        }
        let (mut pic, payloads, with_hdr) = self.picture_params(&f);
        (pic.inputWidth, pic.inputHeight) = view.size;
        if with_hdr {
            view.ring.with_hdr(f.number);
        }
        if f.force_idr && pic.encodePicFlags & ffi::NV_ENC_PIC_FLAG_FORCEIDR == 0 {
            view.ring.recovery_point(f.number);
        }
        let encoded = match &slot.cuda {
            Some(c) => view.session.encode_mapped(&c.nvenc, &slot.output, &mut pic),
            None => view
                .session
                .encode_picture(&slot.input, &slot.output, &mut pic),
        };
        // NVENC has copied the payloads; `pic` points into them no more after this.
        drop(pic);
        drop(payloads);
        match encoded {
            Ok(status) => {
                self.stats.picture_in();
                view.ring.submitted(slot, f.pts, status);
                Ok(gst::FlowSuccess::Ok)
            }
            Err(e) => {
                view.ring.give_back(slot);
                self.post_error(&e);
                Err(gst::FlowError::Error)
            }
        }
    }

    fn finish(&self) -> Result<gst::FlowSuccess, gst::FlowError> {
        let stream = self.lock_state().stream.take();
        if let Some(mut s) = stream {
            let r = s.drain(self.obj().upcast_ref(), true);
            self.lock_state().stream = Some(s);
            r?;
        }
        Ok(gst::FlowSuccess::Ok)
    }

    fn flush(&self) -> bool {
        let stream = self.lock_state().stream.take();
        if let Some(mut s) = stream {
            let obj = self.obj();
            let _ = s.drain(obj.upcast_ref(), false);
            s.stop(obj.upcast_ref(), true);
        }
        true
    }
}

impl NvEncoder {
    fn handle_context_query(&self, query: &mut gst::QueryRef) -> bool {
        if !matches!(query.view(), gst::QueryView::Context(_)) {
            return false;
        }
        let ctx = self.lock_state().shared_cuda.clone();
        cuda::gst::handle_query(self.obj().upcast_ref(), query, ctx.as_ref())
    }

    /// The page-locked allocator on the session's context (made once per context), for a
    /// query [`negotiation::wants_pinned_pool`]; `None` before a session.
    fn pinned_allocator(
        &self,
        query: &gst::query::Allocation,
    ) -> Option<cuda::pinned::PinnedAllocator> {
        if !negotiation::wants_pinned_pool(query) {
            return None;
        }
        let mut st = self.lock_state();
        let ctx = st.stream.as_ref()?.session.context().clone();
        Some(match &st.pinned {
            Some((c, a, _)) if *c == ctx.as_raw() as usize => a.clone(),
            _ => {
                let regions = cuda::pinned::PinnedRegions::default();
                let a = cuda::pinned::PinnedAllocator::new(ctx.clone(), regions.clone());
                st.pinned = Some((ctx.as_raw() as usize, a.clone(), regions));
                a
            }
        })
    }
}
