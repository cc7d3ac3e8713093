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
use crate::nvtx;
use crate::placement::{self, Placed, Tried};

use super::config::{self, GpuCaps};
use super::input::{self, Picture};
use super::live;
use super::metadata::{self, Hdr10, PicPayloads};
use super::negotiation;
use super::pipemeta;
use super::ring::{self, CudaInput, Ring, Slot, Stream};
use super::roi;
use super::sdkext;
use super::settings::{self, CcInsert, Change, Settings, Store};
use super::stats::RunningStats;
use super::{CAT, CodecOps, NvEncoderObj, SessionParams, StreamFormat, gstffi, lock};

mod insession;
mod placed;
mod session;

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
    /// An input buffer carried a `GstVideoTimeCodeMeta`: H.264 sessions opened from then on
    /// (until stopped) write clock timestamps (`enableTimeCode`, an init-time setting).
    time_codes: bool,
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
    /// The QP delta map of regions of interest (streaming thread only).
    roi: Mutex<RoiState>,
}

/// The QP delta map NVENC reads at `nvEncEncodePicture` (one per element, reused: no
/// allocation per frame once it has the session's size), and whether the refusal of regions
/// of interest was posted.
#[derive(Default)]
struct RoiState {
    map: Vec<i8>,
    refusal_posted: bool,
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
    /// The session's QP map grid, or (rate-control mode, tuning) where it takes no map
    /// (`rcParams.qpMapMode` is neither `NV_ENC_QP_MAP_DELTA` nor `NV_ENC_QP_MAP_EMPHASIS`).
    qp_map: Result<(roi::Grid, roi::Kind), (u32, u32)>,
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
    /// `time_code` SEI or the AV1 time code metadata OBU (H.264: NVENC's own `timeCode`,
    /// [`Self::h264_time_code`]). What the codec cannot carry is logged.
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
                // Through NVENC's own time code fields (`picture_params`), not a payload.
                Codec::H264 => return,
            };
            match body {
                Ok((t, b)) => p.push(t, b),
                Err(e) => gst::warning!(CAT, imp = self, "time code {tc:?} not written: {e}"),
            }
        }
    }

    /// The H.264 clock timestamp of `input` for a session with `enableTimeCode`
    /// ([`pipemeta::h264_time_code`]); none (`skipClockTimestampInsertion`) without a
    /// `GstVideoTimeCodeMeta` or with one H.264 cannot hold.
    fn h264_time_code(&self, input: &gst::BufferRef) -> ffi::NV_ENC_TIME_CODE {
        let Some(m) = input.meta::<gst_video::VideoTimeCodeMeta>() else {
            return pipemeta::h264_no_time_code();
        };
        let tc = pipemeta::TimeCode::from_gst(&m.tc());
        pipemeta::h264_time_code(&tc).unwrap_or_else(|e| {
            gst::warning!(CAT, imp = self, "time code not written: {e}");
            pipemeta::h264_no_time_code()
        })
    }

    /// H.264 writes time codes only in sessions initialised with `enableTimeCode`: at the
    /// first `GstVideoTimeCodeMeta`, a running session without it (opened at the caps, before
    /// any buffer) is replaced by one with it (a new IDR; none was coded yet when the first
    /// buffer carries a time code, as from `timecodestamper`). API 12.1: not written (logged).
    fn ensure_time_code_session(&self, input: &gst::BufferRef) -> Result<(), gst::FlowError> {
        if self.ops().codec() != Codec::H264
            || input.meta::<gst_video::VideoTimeCodeMeta>().is_none()
        {
            return Ok(());
        }
        let restart = {
            let mut st = self.lock_state();
            if st.time_codes {
                return Ok(());
            }
            st.time_codes = true;
            match st.stream.as_ref() {
                Some(s) if s.params.api < api::ApiVersion::V12_2 => {
                    gst::info!(
                        CAT,
                        imp = self,
                        "time codes not written: NVENC API {} has no skipClockTimestampInsertion (H.264 time codes need 12.2)",
                        s.params.api.name()
                    );
                    false
                }
                Some(s) => !s.params.time_code,
                None => false,
            }
        };
        if restart {
            gst::info!(
                CAT,
                imp = self,
                "input carries time codes: new session with enableTimeCode"
            );
            self.restart_stream()?;
        }
        Ok(())
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
        let size = (s.params.encode_width, s.params.encode_height);
        let (init, cfg) = (&s.config.init, &s.config.cfg);
        let codec = self.ops().codec();
        let kind = match cfg.rcParams.qpMapMode {
            ffi::NV_ENC_QP_MAP_DELTA => Some(roi::Kind::Delta {
                max: roi::max_delta(codec),
            }),
            ffi::NV_ENC_QP_MAP_EMPHASIS => Some(roi::Kind::Emphasis),
            _ => None,
        };
        let qp_map = if let Some(kind) = kind {
            let max_cu = if codec == Codec::Hevc {
                cfg.encodeCodecConfig.hevc().maxCUSize
            } else {
                0
            };
            Ok((roi::Grid::new(codec, max_cu, size), kind))
        } else {
            Err((cfg.rcParams.rateControlMode, init.tuningInfo))
        };
        Ok(StreamView {
            qp_map,
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
    /// The regions of interest of `input` as the picture's QP delta map or emphasis level map
    /// (`roi`), as the session takes (`qp_map`); else a warning, once. Nothing (no allocation, no settings
    /// read) for a buffer without regions.
    fn qp_delta_map(
        &self,
        input: &gst::BufferRef,
        qp_map: Result<(roi::Grid, roi::Kind), (u32, u32)>,
        roi: &mut RoiState,
        pic: &mut ffi::NV_ENC_PIC_PARAMS,
    ) {
        if input
            .meta::<gst_video::VideoRegionOfInterestMeta>()
            .is_none()
        {
            return;
        }
        let (grid, kind) = match qp_map {
            Ok(g) => g,
            Err((rc_mode, tuning)) => {
                if !roi.refusal_posted {
                    roi.refusal_posted = true;
                    let why = roi::check(rc_mode, tuning)
                        .err()
                        .unwrap_or_else(|| "the session has no QP delta map".into());
                    gst::element_imp_warning!(
                        self,
                        gst::LibraryError::Settings,
                        ("regions of interest ignored: {}", why),
                        [
                            "GstVideoRegionOfInterestMeta on the input; rcParams.qpMapMode is NV_ENC_QP_MAP_DISABLED"
                        ]
                    );
                }
                return;
            }
        };
        let regions = roi::regions(input, self.settings.get().roi_delta_qp);
        if roi::fill(&mut roi.map, grid, &regions, kind) {
            pic.qpDeltaMap = roi.map.as_mut_ptr();
            pic.qpDeltaMapSize = roi.map.len() as u32;
            gst::trace!(
                CAT,
                imp = self,
                "QP map ({kind:?}) of {} regions: {regions:?}",
                regions.len()
            );
        }
    }

    fn picture_params(&self, f: &FrameIn) -> (ffi::NV_ENC_PIC_PARAMS, PicPayloads, bool) {
        // By value (3.3 kB on the stack): no allocation per frame.
        let mut pic: ffi::NV_ENC_PIC_PARAMS = ffi::zeroed();
        pic.inputTimeStamp = f.number as u64;
        pic.inputDuration = f.duration.map(|d| d.nseconds()).unwrap_or(0);
        let codec = self.ops().codec();
        let mut payloads = self.caption_payloads(&f.input, codec);
        self.carried_payloads(&f.input, codec, &mut payloads);
        let mut with_hdr = false;
        // Only a forced key unit reads the settings (an intra-refresh wave instead of an IDR):
        // no copy of them, and no settings lock, for the other frames.
        let settings = f.force_idr.then(|| self.settings.get());
        let (mut key_unit, mut wave) = (None, None);
        let mut time_code_session = false;
        let ltr_refused = {
            let mut st = self.lock_state();
            if f.force_idr {
                key_unit = Some(std::mem::take(&mut st.key_unit_all_headers));
            }
            let ltr_request = st.ltr_request.take();
            let mut refused = None;
            if let Some(s) = st.stream.as_mut() {
                time_code_session = s.params.time_code;
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
                if let Some(settings) = &settings {
                    let ir = s
                        .caps
                        .intra_refresh
                        .then(|| settings.intra_refresh())
                        .flatten();
                    let fip = s.config.cfg.frameIntervalP.max(0) as u32;
                    wave = live::intra_refresh_wave(settings.key_unit_intra_refresh, ir, fip);
                }
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
        if codec == Codec::H264 && time_code_session {
            // After `attach`, which sets the whole H.264 picture parameters.
            pic.codecPicParams.h264PicParams.timeCode = self.h264_time_code(&f.input);
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
        // The one look for libnvToolsExt.so.1 (per process): later ranges cost nothing without it.
        gst::debug!(
            CAT,
            imp = self,
            "NVTX ranges {}",
            if nvtx::available() {
                "on (libnvToolsExt.so.1 loaded)"
            } else {
                "off (no libnvToolsExt.so.1)"
            }
        );
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
        self.ensure_time_code_session(&f.input)?;
        let view = self.stream_view(cuda::gst::is_cuda_buffer(&f.input))?;
        let obj = self.obj();
        let mut slot = view.ring.acquire(obj.upcast_ref()).map_err(|e| {
            self.post_error(&e);
            gst::FlowError::Error
        })?;
        let uploaded = {
            let _r = nvtx::range(c"rsnvenc upload");
            self.upload(&view, &f.input, &mut slot)
        };
        if let Err(e) = uploaded {
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
        // Held until NVENC has read the map (`nvEncEncodePicture`).
        let mut roi = lock(&self.roi);
        self.qp_delta_map(&f.input, view.qp_map, &mut roi, &mut pic);
        if with_hdr {
            view.ring.with_hdr(f.number);
        }
        if f.force_idr && pic.encodePicFlags & ffi::NV_ENC_PIC_FLAG_FORCEIDR == 0 {
            view.ring.recovery_point(f.number);
        }
        let submit = nvtx::range(c"rsnvenc encode submit");
        let encoded = match &slot.cuda {
            Some(c) => view.session.encode_mapped(&c.nvenc, &slot.output, &mut pic),
            None => view
                .session
                .encode_picture(&slot.input, &slot.output, &mut pic),
        };
        // NVENC has copied the payloads and the QP map; `pic` (plain data, still pointing
        // into them) is not used after this.
        drop(payloads);
        drop(roi);
        drop(submit);
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
