// SPDX-License-Identifier: MPL-2.0
//! `GstRsNvEncoder`: the abstract GstVideoEncoder base of every rsnvenc element. It owns the
//! CUDA context, the NVENC session, the ring of input surfaces and bitstream buffers, and the
//! output thread; codec elements only supply a [`CodecOps`] (codec config, caps, codec_data,
//! output buffer format).
//!
//! Frame path:
//! 1. `handle_frame` (streaming thread) takes a free slot of the ring (waiting if all are in
//!    flight), copies the frame into the slot's NVENC input surface and calls
//!    `nvEncEncodePicture` with `inputTimeStamp` = the frame's system frame number. The slot goes
//!    to the output thread whatever NVENC answered (`NV_ENC_ERR_NEED_MORE_INPUT` included).
//! 2. The output thread takes slots in submission order and blocks in `nvEncLockBitstream`.
//!    NVENC fills buffers in submission order with pictures in coded order, so the frame inside
//!    a buffer is found from `outputTimeStamp`, never from the slot. It copies the bitstream
//!    out, unlocks, gives the slot back (before touching any GStreamer lock), then takes the
//!    encoder's stream lock and finishes the frame with DTS = PTS of the k-th submitted frame
//!    minus the B-frame delay.
//! 3. EOS, flush and caps changes send NVENC's EOS and wait until every submitted frame is out.
//!
//! Per-picture metadata (see [`super::metadata`]): the frame's CEA-708 caption metas
//! (`cc-insert`) and, on the frames NVENC will code as IDRs (`Stream::next_is_idr`), the
//! HDR10 metadata of the input caps go with `nvEncEncodePicture` (payload arrays, or API
//! 13.0's own HDR fields); the output thread warns if an IDR came without them or a non-IDR
//! with them. With `cc-insert=insert-and-drop` the caption metas are not copied to the output
//! buffers (`transform_meta`, [`super::gstffi::install_transform_meta`]).

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, LazyLock, Mutex};
use std::thread::JoinHandle;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_video::prelude::*;
use gst_video::subclass::prelude::*;

use crate::nvenc::api::{self, BitstreamBuffer, Codec, EncodeStatus, InputBuffer, NvEncError, Session};
use crate::nvenc::ffi;
use super::metadata::{self, Hdr10, PicPayloads};
use super::sdkext;
use super::settings::{self, CcInsert, Settings};
use crate::cuda;

pub static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "rsnvenc",
        gst::DebugColorFlags::empty(),
        Some("rsnvenc NVENC encoder base"),
    )
});

/// What the session was configured with, for the codec hooks.
#[derive(Debug, Clone)]
pub struct SessionParams {
    pub info: gst_video::VideoInfo,
    /// Encode size (H.264/H.265 4:2:0 sizes are rounded up to even).
    pub encode_width: u32,
    pub encode_height: u32,
    pub buffer_format: u32,
    pub bit_depth: u32,
    pub chroma_444: bool,
    pub api: api::ApiVersion,
    /// `profile` names downstream accepts (caps strings, e.g. `"high"`), from the src pad's
    /// allowed caps; empty when downstream names none (anything goes).
    pub downstream_profiles: Vec<String>,
    /// Profile GUIDs this GPU encodes the codec with (`nvEncGetEncodeProfileGUIDs`).
    pub profile_guids: Vec<ffi::GUID>,
    /// `NV_ENC_CAPS_SUPPORT_CABAC` for the codec (H.264 only; 0 elsewhere).
    pub cabac: bool,
    /// HDR10 static metadata of the input caps, written on every IDR.
    pub hdr: Hdr10,
}

impl SessionParams {
    /// HDR metadata goes through NVENC's own fields (API 13.0, H.265 and AV1): the codec's
    /// `configure` sets `outputMasteringDisplay` / `outputMaxCll` for the parts present.
    pub fn native_hdr(&self, codec: Codec) -> bool {
        !self.hdr.is_empty() && metadata::native_hdr(codec, self.api)
    }
}

/// Codec hooks, one static instance per codec element.
pub trait CodecOps: Send + Sync + 'static {
    fn codec(&self) -> Codec;
    /// Sink formats this codec can take (before narrowing to what the GPU reports).
    fn sink_formats(&self) -> &'static [gst_video::VideoFormat];
    /// Encode size for a display size (AV1 keeps odd sizes, H.26x 4:2:0 needs even ones).
    fn encode_size(&self, width: u32, height: u32) -> (u32, u32);
    /// Chooses the output format from downstream caps (before the session is created).
    fn choose_stream_format(&self, _element: &gst_video::VideoEncoder) -> StreamFormat {
        StreamFormat::Default
    }
    /// Whether the GPU can take `format` for this codec given the profile GUIDs it lists (on
    /// top of the input-format and 10-bit/4:4:4 caps the base checks). Default: yes.
    fn format_supported(&self, _format: gst_video::VideoFormat, _profiles: &[ffi::GUID]) -> bool {
        true
    }
    /// The sink formats that can give a stream of one of `profiles` (downstream's caps
    /// `profile` names), for narrowing the sink caps; `None`: no narrowing.
    fn formats_for_profiles(&self, _profiles: &[String]) -> Option<Vec<gst_video::VideoFormat>> {
        None
    }
    /// Edits the preset config for this codec (profile, idrPeriod, headers, colour...). May
    /// lower `cfg.frameIntervalP` (a profile without B-frames). Returns the settings it had to
    /// refuse, one sentence each, for the base to post as element warnings.
    fn configure(
        &self,
        cfg: &mut ffi::NV_ENC_CONFIG,
        s: &Settings,
        p: &SessionParams,
        fmt: StreamFormat,
    ) -> Result<Vec<String>, String>;
    /// Output caps (with codec_data) from the sequence header.
    fn output_caps(
        &self,
        seq: &[u8],
        p: &SessionParams,
        fmt: StreamFormat,
    ) -> Result<gst::Caps, String>;
    /// Converts one NVENC bitstream buffer into the output format.
    fn convert_output(&self, data: &[u8], fmt: StreamFormat) -> Vec<u8> {
        let _ = fmt;
        data.to_vec()
    }
}

/// Output stream format (H.264: byte-stream, avc, avc3; H.265: byte-stream, hvc1, hev1; AV1:
/// obu-stream only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFormat {
    /// Annex B byte-stream (H.264/H.265), OBU stream (AV1).
    Default,
    /// H.265 length-prefixed, parameter sets in `hvcC` only.
    Hvc1,
    /// H.265 length-prefixed, parameter sets also in band.
    Hev1,
    /// H.264 length-prefixed, parameter sets in `avcC` only.
    Avc,
    /// H.264 length-prefixed, parameter sets in band (`avcC` without them, as h264parse).
    Avc3,
}

/// The `stream-format` downstream lists first (the first structure of the src pad's allowed
/// caps, the first entry of a list), as nvcodec fixates it; `None` if downstream names none.
pub fn downstream_stream_format(element: &gst_video::VideoEncoder) -> Option<String> {
    let caps = element.src_pad().allowed_caps()?;
    let s = caps.iter().next()?;
    let v = s.value("stream-format").ok()?;
    if let Ok(s) = v.get::<&str>() {
        Some(s.to_string())
    } else if let Ok(l) = v.get::<gst::List>() {
        l.iter().find_map(|x| x.get::<String>().ok())
    } else {
        None
    }
}

/// Every `profile` name in the src pad's allowed caps (strings and lists of strings, in caps
/// order, without repeats); empty if downstream's caps are empty or ANY, or name no profile.
pub fn downstream_profiles(element: &gst_video::VideoEncoder) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let Some(caps) = element.src_pad().allowed_caps() else {
        return out;
    };
    if caps.is_any() {
        return out;
    }
    for s in caps.iter() {
        let Ok(v) = s.value("profile") else {
            continue;
        };
        let names: Vec<String> = if let Ok(p) = v.get::<String>() {
            vec![p]
        } else if let Ok(l) = v.get::<gst::List>() {
            l.iter().filter_map(|x| x.get::<String>().ok()).collect()
        } else {
            Vec::new()
        };
        for n in names {
            if !out.contains(&n) {
                out.push(n);
            }
        }
    }
    out
}

/// `caps` with each structure's `format` restricted to `allowed` (structures left with no
/// format are dropped).
fn restrict_formats(caps: &gst::Caps, allowed: &[gst_video::VideoFormat]) -> gst::Caps {
    let mut out = caps.copy();
    out.make_mut().filter_map_in_place(|_f, s| {
        let fmts: Vec<String> = match s.value("format") {
            Ok(v) => {
                let list: Vec<String> = if let Ok(one) = v.get::<String>() {
                    vec![one]
                } else if let Ok(l) = v.get::<gst::List>() {
                    l.iter().filter_map(|x| x.get::<String>().ok()).collect()
                } else {
                    Vec::new()
                };
                list.into_iter()
                    .filter(|f| allowed.contains(&gst_video::VideoFormat::from_string(f)))
                    .collect()
            }
            // No format field: restrict it to the allowed ones.
            Err(_) => allowed.iter().map(|f| f.to_str().to_string()).collect(),
        };
        if fmts.is_empty() {
            return gst::CapsFilterMapAction::Remove;
        }
        s.set("format", gst::List::new(fmts));
        gst::CapsFilterMapAction::Keep
    });
    out
}

#[repr(C)]
pub struct Class {
    parent: gst_video::ffi::GstVideoEncoderClass,
    ops: Option<&'static dyn CodecOps>,
}

// SAFETY: `Class` starts with the parent class struct, as GObject requires.
unsafe impl ClassStruct for Class {
    type Type = NvEncoder;
}

/// Subclasses implement this to give the base its codec hooks.
pub trait NvEncoderImpl: VideoEncoderImpl {
    const OPS: &'static dyn CodecOps;
}

glib::wrapper! {
    pub struct NvEncoderObj(ObjectSubclass<NvEncoder>)
        @extends gst_video::VideoEncoder, gst::Element, gst::Object;
}

unsafe impl<T: NvEncoderImpl> IsSubclassable<T> for NvEncoderObj {
    fn class_init(class: &mut glib::Class<Self>) {
        // GObject copied NvEncoder's class struct into this one: keep every GstVideoEncoder
        // vfunc of NvEncoder (the codec subclasses override none), and take only the
        // GstElementClass part (pad templates, metadata) from the subclass. Going through
        // gstreamer-rs's `parent_*` trampolines instead would (0.25) double-unref the frame in
        // `parent_handle_frame`, and post a second, vaguer error when `start` fails.
        let video_encoder_vfuncs = class.as_ref().parent;
        Self::parent_class_init::<T>(class);
        let klass = class.as_mut();
        let element_class = klass.parent.element_class;
        klass.parent = video_encoder_vfuncs;
        klass.parent.element_class = element_class;
        klass.ops = Some(T::OPS);
    }
}

struct Slot {
    input: InputBuffer,
    output: BitstreamBuffer,
    /// Set while the slot's picture is upstream CUDA memory (zero-copy): NVENC's mapping, then
    /// the GstMemory's device mapping and buffer, released (in that order) once the bitstream
    /// is locked.
    cuda: Option<CudaInput>,
    /// Our own device surface for CUDA memory NVENC cannot read in place (another context, or
    /// another layout), registered with NVENC; made on first use.
    device: Option<(cuda::DevicePitched, Arc<api::RegisteredResource>)>,
}

struct CudaInput {
    _nvenc: api::MappedResource,
    /// Upstream's memory (zero-copy only; after a copy it is not needed any more).
    _memory: Option<cuda::gst::MappedCudaMemory>,
}

/// How an input picture reaches NVENC without a CPU copy, for [`NvEncoder::tell_cuda_path`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CudaPath {
    /// Upstream CUDA memory registered and read in place.
    InPlace,
    /// System memory of the proposed page-locked pool, uploaded by DMA.
    Pinned,
    /// Upstream CUDA memory copied on the device, by this route.
    Copied(cuda::PeerRoute),
}

/// One plane of a picture bound for a device surface: (row bytes, source rows, rows coded) and
/// the source's (offset, stride), in bytes.
type DevicePlane = ((usize, usize, usize), (usize, usize));

/// Formats whose CUDA memory NVENC can read in place: one plane, or NV12/P010 with the chroma
/// plane right below the luma plane (NVENC's CUDADEVICEPTR layout).
const CUDA_FORMATS: &[gst_video::VideoFormat] = &[
    gst_video::VideoFormat::Nv12,
    gst_video::VideoFormat::P01010le,
    gst_video::VideoFormat::Vuya,
    gst_video::VideoFormat::Rgba,
    gst_video::VideoFormat::Rgbx,
    gst_video::VideoFormat::Bgra,
    gst_video::VideoFormat::Bgrx,
    gst_video::VideoFormat::Rgb10a2Le,
];

/// `caps` (system memory) preceded by the same caps in `memory:CUDAMemory`, restricted to
/// [`CUDA_FORMATS`], when GStreamer's CUDA library is there.
fn with_cuda_memory(caps: gst::Caps) -> gst::Caps {
    if cuda::gst::lib().is_none() {
        return caps;
    }
    let system = caps.copy();
    let mut cuda_caps = caps.copy();
    {
        let c = cuda_caps.get_mut().expect("a fresh copy");
        c.filter_map_in_place(|_features, s| {
            let fmts: Vec<String> = s
                .get::<gst::List>("format")
                .map(|l| {
                    l.iter()
                        .filter_map(|v| v.get::<&str>().ok())
                        .filter(|f| CUDA_FORMATS.contains(&gst_video::VideoFormat::from_string(f)))
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            if fmts.is_empty() {
                return gst::CapsFilterMapAction::Remove;
            }
            s.set("format", gst::List::new(fmts));
            gst::CapsFilterMapAction::Keep
        });
        c.set_features_simple(Some(gst::CapsFeatures::new(["memory:CUDAMemory"])));
    }
    cuda_caps.get_mut().expect("a fresh copy").append(system);
    cuda_caps
}

struct Done {
    frame_number: u32,
    buffer: gst::Buffer,
    keyframe: bool,
    /// PTS of the k-th submitted frame (display order), for DTS.
    dts_source: Option<gst::ClockTime>,
}

#[derive(Default)]
struct Queues {
    free: Vec<Slot>,
    /// Submitted, waiting for the output thread, with the PTS of that submission.
    pending: VecDeque<(Slot, Option<gst::ClockTime>)>,
    /// Submitted, but NVENC answered NEED_MORE_INPUT: not to be locked until a later
    /// EncodePicture returns SUCCESS or EOS is sent (NVENC's rule, as nvcodec keeps it). Then
    /// they move to `pending`, in submission order.
    held: Vec<(Slot, Option<gst::ClockTime>)>,
    /// Slots the output thread holds right now (0 or 1).
    locking: usize,
    done: VecDeque<Done>,
    error: Option<NvEncError>,
    shutdown: bool,
    /// Set by a flush: the output thread drops what comes out instead of finishing it.
    discard: bool,
    /// The stream has HDR metadata to write on IDRs: the output thread checks each IDR came
    /// with it (the prediction in [`Stream::next_is_idr`]) and nothing else did.
    hdr_expected: bool,
    /// Frames (system frame numbers) submitted with HDR metadata, until they come out.
    hdr_frames: std::collections::HashSet<u32>,
}

struct Shared {
    q: Mutex<Queues>,
    cond: Condvar,
}

/// One NVENC session with its ring and output thread.
struct Stream {
    session: Arc<Session>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    params: SessionParams,
    dts_offset: gst::ClockTime,
    frame_idx: u32,
    /// "LTR Per Picture" mode: where the codec's picture parameters take the marks, and
    /// `ltrNumFrames`; `None` without LTR or in trust mode.
    ltr_per_picture: Option<(ffi::PicLtrLayout, u32)>,
    /// What the session was initialised with, for `nvEncReconfigureEncoder`.
    config: ffi::SessionConfig,
    /// Upstream CUDA memories registered with NVENC, by (device pointer, pitch): once each,
    /// for the session's life.
    registrations: std::collections::HashMap<(u64, u32), Arc<api::RegisteredResource>>,
    /// NVENC's IDR period (`idrPeriod` = `gopLength`), `None` = infinite.
    idr_period: Option<u32>,
    /// Frames submitted since the last IDR, that one included; `None`: the next is an IDR
    /// (first frame of the session, or after NVENC's EOS).
    since_idr: Option<u64>,
}

impl Stream {
    /// Whether NVENC will code the next submitted frame as an IDR, and counts it. With
    /// `enablePTD` NVENC decides picture types itself: an IDR on the first frame, every
    /// `idrPeriod` frames (display order) and on `FORCEIDR` (the header's contract; the
    /// frames-since-IDR count restarting at a forced IDR is inferred, as the emulator does).
    /// The output thread warns if NVENC decided otherwise.
    fn next_is_idr(&mut self, forced: bool) -> bool {
        let idr = forced
            || match (self.since_idr, self.idr_period) {
                (None, _) => true,
                (Some(n), Some(p)) => n >= p as u64,
                (Some(_), None) => false,
            };
        self.since_idr = Some(if idr {
            1
        } else {
            self.since_idr.unwrap_or(0) + 1
        });
        idr
    }
}

type InputState = gst_video::VideoCodecState<'static, gst_video::video_codec_state::Readable>;

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
}

#[derive(Default)]
pub struct NvEncoder {
    settings: Mutex<Settings>,
    state: Mutex<State>,
    /// Property changes while a session runs, applied at the next frame: `UPDATE_RATE`
    /// (bitrate, max-bitrate: `nvEncReconfigureEncoder`, no IDR) or `UPDATE_REINIT` (anything
    /// else: drain, new session, IDR).
    pending_update: std::sync::atomic::AtomicU8,
    /// `emit-frame-stats`, read by the output thread for every frame.
    emit_frame_stats: std::sync::atomic::AtomicBool,
    /// The running summary behind the read-only `stats` property.
    stats: RunningStats,
    /// A per-picture LTR request (`rsnvenc-ltr` event) for the next frame.
    ltr_request: Mutex<Option<sdkext::LtrRequest>>,
    /// `cc-insert` ([`CcInsert`] as u32), read for every frame (no new session).
    cc_insert: std::sync::atomic::AtomicU32,
    /// The GstCudaContext shared with neighbours (`gst.cuda.context`), when GStreamer's CUDA
    /// library is there. Its own lock: `set_context` may come while `start` asks for it.
    shared_cuda: Mutex<Option<cuda::gst::SharedContext>>,
    /// The last way CUDA input reached NVENC that the log was told (said once per change).
    told_cuda_path: Mutex<Option<(CudaPath, usize)>>,
    /// How memory of an upstream CUcontext is copied into ours: (upstream context, route),
    /// found once per upstream context ([`cuda::Context::peer_route`]).
    cuda_route: Mutex<Option<(usize, cuda::PeerRoute)>>,
    /// The page-locked allocator proposed upstream for system memory: (CUcontext it allocates
    /// in, allocator, its live regions).
    pinned: Mutex<
        Option<(
            usize,
            cuda::pinned::PinnedAllocator,
            cuda::pinned::PinnedRegions,
        )>,
    >,
}

/// Counters of the `stats` property, since the element last started (READY to PAUSED).
#[derive(Default)]
struct RunningStats {
    /// Pictures submitted to NVENC (`nvEncEncodePicture` answered SUCCESS or NEED_MORE_INPUT).
    frames_in: std::sync::atomic::AtomicU64,
    /// Pictures whose bitstream came out of NVENC (`nvEncLockBitstream`).
    frames_out: std::sync::atomic::AtomicU64,
    /// Bytes of those bitstreams, as NVENC gave them.
    bytes_out: std::sync::atomic::AtomicU64,
    /// Sessions opened (`nvEncInitializeEncoder`): 1, plus one per caps change, flush or
    /// change of a property that needs a new session.
    sessions: std::sync::atomic::AtomicU64,
    /// When each picture of the last second came out, and when counting started.
    recent: Mutex<(VecDeque<std::time::Instant>, Option<std::time::Instant>)>,
}

impl RunningStats {
    fn reset(&self) {
        for c in [
            &self.frames_in,
            &self.frames_out,
            &self.bytes_out,
            &self.sessions,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        *self.recent.lock().unwrap_or_else(|e| e.into_inner()) = (VecDeque::new(), None);
    }

    fn picture_out(&self, bytes: usize) {
        self.frames_out.fetch_add(1, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
        let now = std::time::Instant::now();
        let mut r = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        r.1.get_or_insert(now);
        r.0.push_back(now);
        Self::trim(&mut r.0, now);
    }

    fn trim(q: &mut VecDeque<std::time::Instant>, now: std::time::Instant) {
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) > std::time::Duration::from_secs(1))
        {
            q.pop_front();
        }
    }

    /// Pictures out per second over the last second (over the time since the first one when
    /// that is shorter; 0 before any).
    fn fps(&self) -> f64 {
        let now = std::time::Instant::now();
        let mut r = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        Self::trim(&mut r.0, now);
        let Some(first) = r.1 else {
            return 0.0;
        };
        let span = now.duration_since(first).as_secs_f64().clamp(1e-3, 1.0);
        r.0.len() as f64 / span
    }
}

const UPDATE_RATE: u8 = 1;
const UPDATE_REINIT: u8 = 2;

impl NvEncoder {
    fn ops(&self) -> &'static dyn CodecOps {
        let obj = self.obj();
        let klass = obj.class();
        klass
            .as_ref()
            .ops
            .expect("concrete rsnvenc element without codec ops")
    }

    /// Settings, for subclasses' own properties.
    pub fn settings(&self) -> std::sync::MutexGuard<'_, Settings> {
        self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A property changed: `rate_only` (bitrate, max-bitrate) is applied with
    /// `nvEncReconfigureEncoder` at the next frame; anything else re-creates the session there
    /// (drain, new IDR). Nothing happens before a session exists.
    pub fn request_update(&self, rate_only: bool) {
        let flag = if rate_only {
            UPDATE_RATE
        } else {
            UPDATE_REINIT
        };
        self.pending_update
            .fetch_or(flag, std::sync::atomic::Ordering::SeqCst);
    }

    fn cc_insert(&self) -> CcInsert {
        CcInsert::from_u32(self.cc_insert.load(Ordering::Relaxed))
    }

    /// The CEA-708 captions of `input` (`GstVideoCaptionMeta`, raw or CDP) as A/53 T.35
    /// payloads for `codec`, unless `cc-insert=disabled`.
    fn caption_payloads(&self, input: &gst::BufferRef, codec: Codec) -> PicPayloads {
        let mut p = PicPayloads::default();
        if self.cc_insert() == CcInsert::Disabled {
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

    /// `GstVideoEncoder::transform_meta` for `insert-and-drop`: a caption meta this element
    /// inserted (CEA-708 raw, or a CDP with captions) is not copied to the output buffer;
    /// `false` leaves the decision to GstVideoEncoder's default (copy).
    pub fn drops_caption_meta(&self, ty: gst_video::VideoCaptionType, data: &[u8]) -> bool {
        self.cc_insert() == CcInsert::InsertAndDrop && metadata::cc_data(ty, data).is_some()
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn nvenc_buffer_format(
        &self,
        format: gst_video::VideoFormat,
    ) -> Option<(u32, u32 /* bit depth */, bool /* 444 */)> {
        use gst_video::VideoFormat as F;
        Some(match format {
            F::Nv12 => (ffi::NV_ENC_BUFFER_FORMAT_NV12, 8, false),
            F::P01010le => (ffi::NV_ENC_BUFFER_FORMAT_YUV420_10BIT, 10, false),
            F::Y444 => (ffi::NV_ENC_BUFFER_FORMAT_YUV444, 8, true),
            // 16-bit samples, the 10 significant bits at the top, as NVENC reads them.
            F::Y44416le => (ffi::NV_ENC_BUFFER_FORMAT_YUV444_10BIT, 10, true),
            // Planar G, B, R coded as three 4:4:4 planes with the identity matrix (VUI).
            F::Gbr => (ffi::NV_ENC_BUFFER_FORMAT_YUV444, 8, true),
            // A2B10G10R10 words, R in the lowest bits: NVENC converts to 10-bit 4:2:0.
            F::Rgb10a2Le => (ffi::NV_ENC_BUFFER_FORMAT_ABGR10, 10, false),
            F::Vuya => (ffi::NV_ENC_BUFFER_FORMAT_AYUV, 8, false),
            F::Rgba | F::Rgbx => (ffi::NV_ENC_BUFFER_FORMAT_ABGR, 8, false),
            F::Bgra | F::Bgrx => (ffi::NV_ENC_BUFFER_FORMAT_ARGB, 8, false),
            _ => return None,
        })
    }

    /// The sink template restricted to what this GPU's NVENC takes for the codec: input
    /// formats (`nvEncGetInputFormats`, 10-bit and 4:4:4 caps) and the size range. Errors if
    /// the GPU cannot encode the codec at all.
    fn probe_sink_caps(&self, session: &Session) -> Result<gst::Caps, NvEncError> {
        let codec = self.ops().codec();
        let gpu = || session.context().device().name().unwrap_or_default();
        if !session.encode_guids()?.contains(&codec.guid()) {
            return Err(NvEncError::Other(format!(
                "the GPU \"{}\" cannot encode {codec} with NVENC",
                gpu()
            )));
        }
        let cap = |c| session.caps(codec.guid(), c);
        let inputs = session.input_formats(codec.guid())?;
        let ten = cap(ffi::NV_ENC_CAPS_SUPPORT_10BIT_ENCODE)? != 0;
        let yuv444 = cap(ffi::NV_ENC_CAPS_SUPPORT_YUV444_ENCODE)? != 0;
        let profiles = session.profile_guids(codec.guid())?;
        let ops = self.ops();
        let templ = self.obj().static_pad("sink").map(|p| p.pad_template_caps());
        // Every format of the template (its system-memory structure lists them all).
        let mut formats: Vec<gst_video::VideoFormat> = Vec::new();
        for s in templ.iter().flat_map(|c| c.iter()) {
            if let Ok(l) = s.get::<gst::List>("format") {
                for f in l.iter().filter_map(|v| v.get::<&str>().ok()) {
                    let f = gst_video::VideoFormat::from_string(f);
                    if !formats.contains(&f) {
                        formats.push(f);
                    }
                }
            }
        }
        let ok: Vec<gst_video::VideoFormat> = formats
            .into_iter()
            .filter(|f| {
                self.nvenc_buffer_format(*f)
                    .is_some_and(|(bf, depth, c444)| {
                        inputs.contains(&bf) && (depth == 8 || ten) && (!c444 || yuv444)
                    })
                    && ops.format_supported(*f, &profiles)
            })
            .collect();
        if ok.is_empty() {
            return Err(NvEncError::Other(format!(
                "NVENC on \"{}\" takes none of this element's input formats for {codec}",
                gpu()
            )));
        }
        let wmin = cap(ffi::NV_ENC_CAPS_WIDTH_MIN)?.max(1);
        let hmin = cap(ffi::NV_ENC_CAPS_HEIGHT_MIN)?.max(1);
        let wmax = cap(ffi::NV_ENC_CAPS_WIDTH_MAX)?.max(wmin);
        let hmax = cap(ffi::NV_ENC_CAPS_HEIGHT_MAX)?.max(hmin);
        Ok(with_cuda_memory(
            gst_video::VideoCapsBuilder::new()
                .format_list(ok)
                .width_range(wmin..=wmax)
                .height_range(hmin..=hmax)
                .build(),
        ))
    }

    /// Finds or makes the pipeline's GstCudaContext on `cuda-device-id`
    /// (`gst_cuda_ensure_element_context`), without holding any lock of ours: it queries
    /// neighbours and posts messages, and `set_context` may come meanwhile.
    fn ensure_shared_cuda(&self) {
        if cuda::gst::lib().is_none() || cuda::init().is_err() {
            return;
        }
        let id = self.settings().cuda_device_id as i32;
        let mut cur = self
            .shared_cuda
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if !cuda::gst::ensure_context(self.obj().upcast_ref(), id, &mut cur) {
            gst::debug!(CAT, imp = self, "no shared CUDA context: using our own");
        }
        let mut g = self.shared_cuda.lock().unwrap_or_else(|e| e.into_inner());
        if g.is_none() {
            *g = cur;
        }
    }

    /// Upstream CUDA memory of the shared context, in a layout NVENC reads in place: its
    /// registration (made once per device pointer) mapped for one picture, with the memory's
    /// device mapping. `None`: copy the frame instead (system memory, another context, another
    /// layout, or a failure, which is logged).
    fn map_cuda_input(
        &self,
        input: &gst::Buffer,
        info: &gst_video::VideoInfo,
        encode_height: u32,
    ) -> Option<(api::MappedResource, Option<cuda::gst::MappedCudaMemory>)> {
        use gst_video::VideoFormat as F;
        let shared = self
            .shared_cuda
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()?;
        let memory = cuda::gst::MappedCudaMemory::map(input, &shared)?;
        let fmt = info.format();
        if !CUDA_FORMATS.contains(&fmt) {
            return None;
        }
        let (stride0, offset1) = match input.meta::<gst_video::VideoMeta>() {
            Some(m) => (m.stride()[0], m.offset().get(1).copied()),
            None => (info.stride()[0], info.offset().get(1).copied()),
        };
        if stride0 <= 0 {
            return None;
        }
        if matches!(fmt, F::Nv12 | F::P01010le)
            && offset1 != Some(stride0 as usize * encode_height as usize)
        {
            gst::debug!(
                CAT,
                imp = self,
                "CUDA memory with chroma at {offset1:?}, not right below {encode_height} luma rows: copying"
            );
            return None;
        }
        let (buffer_format, ..) = self.nvenc_buffer_format(fmt)?;
        let key = (memory.device_ptr(), stride0 as u32);
        let reg = {
            let mut st = self.lock_state();
            let stream = st.stream.as_mut()?;
            match stream.registrations.get(&key) {
                Some(r) => r.clone(),
                None if cuda::is_stream_ordered(key.0) => {
                    gst::debug!(
                        CAT,
                        imp = self,
                        "stream-ordered CUDA memory (a memory pool), which NVENC cannot register: copying"
                    );
                    return None;
                }
                None => {
                    let r = api::RegisteredResource::cuda(
                        &stream.session,
                        key.0,
                        buffer_format,
                        stream.params.encode_width,
                        stream.params.encode_height,
                        key.1,
                    )
                    .map_err(|e| gst::warning!(CAT, imp = self, "{e}; copying instead"))
                    .ok()?;
                    let r = Arc::new(r);
                    if stream.registrations.len() >= 64 {
                        // A pool that keeps allocating: start over (mapped ones stay alive).
                        stream.registrations.clear();
                    }
                    stream.registrations.insert(key, r.clone());
                    r
                }
            }
        };
        let mapped = reg
            .map()
            .map_err(|e| gst::warning!(CAT, imp = self, "{e}; copying instead"))
            .ok()?;
        self.tell_cuda_path((CudaPath::InPlace, 0), || {
            "upstream CUDA memory read in place by NVENC (no copy)".into()
        });
        Some((mapped, Some(memory)))
    }

    /// Where the planes of `input` (a [`CUDA_FORMATS`] picture) lie and how NVENC wants them
    /// in a device surface: (row bytes, source rows, rows coded) and the source (offset,
    /// stride) of each plane. Planes one below the other at one stride, none padded, become
    /// one, so that the whole picture is one copy.
    fn device_planes(
        input: &gst::BufferRef,
        info: &gst_video::VideoInfo,
        encode_height: u32,
    ) -> Option<Vec<DevicePlane>> {
        use gst_video::VideoFormat as F;
        let (w, h, eh) = (
            info.width() as usize,
            info.height() as usize,
            encode_height as usize,
        );
        let (strides, offsets): (Vec<usize>, Vec<usize>) =
            match input.meta::<gst_video::VideoMeta>() {
                Some(m) => (
                    m.stride().iter().map(|s| *s as usize).collect(),
                    m.offset().to_vec(),
                ),
                None => (
                    info.stride().iter().map(|s| *s as usize).collect(),
                    info.offset().to_vec(),
                ),
            };
        let planes: Vec<(usize, usize, usize)> = match info.format() {
            F::Nv12 => vec![
                (w, h, eh),
                (w.div_ceil(2) * 2, h.div_ceil(2), eh.div_ceil(2)),
            ],
            F::P01010le => vec![
                (2 * w, h, eh),
                (4 * w.div_ceil(2), h.div_ceil(2), eh.div_ceil(2)),
            ],
            _ => vec![(4 * w, h, eh)],
        };
        let mut out = Vec::with_capacity(planes.len());
        for (i, p) in planes.iter().enumerate() {
            out.push((*p, (*offsets.get(i)?, *strides.get(i)?)));
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

    /// The slot's own device surface (made and registered with NVENC on first use), for
    /// pictures of `fmt` coded `ew` x `eh`; `None` (after a warning) if that fails.
    fn device_surface<'a>(
        &self,
        session: &Arc<Session>,
        fmt: gst_video::VideoFormat,
        (ew, eh): (u32, u32),
        slot: &'a mut Slot,
    ) -> Option<&'a mut (cuda::DevicePitched, Arc<api::RegisteredResource>)> {
        use gst_video::VideoFormat as F;
        if slot.device.is_none() {
            let (buffer_format, ..) = self.nvenc_buffer_format(fmt)?;
            let (w, rows) = (ew as usize, eh as usize);
            let (row_bytes, total_rows) = match fmt {
                F::Nv12 => (w.div_ceil(2) * 2, rows + rows.div_ceil(2)),
                F::P01010le => (4 * w.div_ceil(2), rows + rows.div_ceil(2)),
                _ => (4 * w, rows),
            };
            let surface = cuda::DevicePitched::new(session.context(), row_bytes, total_rows)
                .map_err(|e| gst::warning!(CAT, imp = self, "{e}; copying through system memory"))
                .ok()?;
            let reg = api::RegisteredResource::cuda(
                session,
                surface.as_raw(),
                buffer_format,
                ew,
                eh,
                surface.pitch() as u32,
            )
            .map_err(|e| gst::warning!(CAT, imp = self, "{e}; copying through system memory"))
            .ok()?;
            slot.device = Some((surface, Arc::new(reg)));
        }
        slot.device.as_mut()
    }

    /// Fills the slot's device surface plane by plane with `copy` (plane, surface, first row)
    /// and maps its registration for one picture; `None` (after a warning) on any failure.
    fn fill_device_surface(
        &self,
        session: &Arc<Session>,
        fmt: gst_video::VideoFormat,
        size: (u32, u32),
        slot: &mut Slot,
        planes: &[DevicePlane],
        mut copy: impl FnMut(&DevicePlane, &mut cuda::DevicePitched, usize) -> Result<(), String>,
    ) -> Option<api::MappedResource> {
        let (surface, reg) = self.device_surface(session, fmt, size, slot)?;
        let mut dst_row = 0;
        for p in planes {
            if let Err(e) = copy(p, surface, dst_row) {
                gst::warning!(CAT, imp = self, "{e}; copying through system memory");
                return None;
            }
            dst_row += p.0.2;
        }
        reg.map()
            .map_err(|e| gst::warning!(CAT, imp = self, "{e}; copying through system memory"))
            .ok()
    }

    /// System memory from the page-locked pool this element proposed upstream: uploaded into
    /// the slot's registered device surface (`cuMemcpy2D` from page-locked memory: a DMA by
    /// the GPU's copy engine, no CPU copy), then mapped for NVENC. `None`: any other memory,
    /// format or failure (then the frame is copied into an NVENC input buffer by the CPU).
    fn upload_pinned(
        &self,
        session: &Arc<Session>,
        input: &gst::Buffer,
        info: &gst_video::VideoInfo,
        (ew, eh): (u32, u32),
        slot: &mut Slot,
    ) -> Option<api::MappedResource> {
        let regions = self
            .pinned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|p| p.2.clone())?;
        let fmt = info.format();
        if !CUDA_FORMATS.contains(&fmt) || input.n_memory() != 1 {
            return None;
        }
        let map = input.map_readable().ok()?;
        if !regions.contains(map.as_ptr(), map.len()) {
            return None;
        }
        let planes = Self::device_planes(input, info, eh)?;
        let mapped = self.fill_device_surface(
            session,
            fmt,
            (ew, eh),
            slot,
            &planes,
            |p, surface, dst_row| {
                let ((row_bytes, rows, coded_rows), (offset, stride)) = *p;
                let src = map.get(offset..).ok_or("plane offset beyond the buffer")?;
                surface
                    .upload_rows(dst_row, src, stride, row_bytes, rows, coded_rows)
                    .map_err(|e| e.to_string())
            },
        )?;
        let n = planes.len();
        self.tell_cuda_path((CudaPath::Pinned, n), || {
            format!(
                "system memory from the proposed page-locked pool uploaded by DMA (no CPU copy): {n} copies per frame"
            )
        });
        Some(mapped)
    }

    /// CUDA memory NVENC cannot read in place (another context on this GPU, or planes laid
    /// out otherwise): one device-to-device copy into the slot's own registered surface.
    fn copy_cuda_input(
        &self,
        session: &Arc<Session>,
        input: &gst::Buffer,
        info: &gst_video::VideoInfo,
        (ew, encode_height): (u32, u32),
        slot: &mut Slot,
    ) -> Option<api::MappedResource> {
        let fmt = info.format();
        if !CUDA_FORMATS.contains(&fmt) {
            return None;
        }
        let memory = cuda::gst::MappedCudaMemory::map_any(input)?;
        let route = self.cuda_route(session, &memory)?;
        let planes = Self::device_planes(input, info, encode_height)?;
        let mapped = self.fill_device_surface(
            session,
            fmt,
            (ew, encode_height),
            slot,
            &planes,
            |p, surface, dst_row| {
                let ((row_bytes, rows, coded_rows), (offset, stride)) = *p;
                memory
                    .copy_plane_to(
                        offset, stride, row_bytes, rows, coded_rows, surface, dst_row,
                    )
                    .map_err(|e| e.to_string())
            },
        )?;
        let n = planes.len();
        self.tell_cuda_path((CudaPath::Copied(route), n), || match route {
            cuda::PeerRoute::SameContext => format!(
                "upstream CUDA memory (same context, a layout NVENC cannot read in place) copied device to device: {n} copies per frame"
            ),
            cuda::PeerRoute::SameDevice => format!(
                "upstream CUDA memory of another context on GPU {} copied device to device (cuMemcpy3DPeer): {n} copies per frame",
                memory.device_id()
            ),
            cuda::PeerRoute::Direct => format!(
                "upstream CUDA memory on GPU {} copied peer to peer to GPU {} (peer access enabled; cuMemcpy3DPeer): {n} copies per frame",
                memory.device_id(),
                session.context().device().ordinal()
            ),
            cuda::PeerRoute::Staged => format!(
                "upstream CUDA memory on GPU {} copied to GPU {} staged through host memory by the driver (no peer access between them; cuMemcpy3DPeer): {n} copies per frame",
                memory.device_id(),
                session.context().device().ordinal()
            ),
        });
        Some(mapped)
    }

    /// Says once, in the log, how CUDA input reaches NVENC.
    /// `path`: the way and the copies per frame; the message is only built when it changes
    /// (not per frame).
    fn tell_cuda_path(&self, path: (CudaPath, usize), how: impl FnOnce() -> String) {
        let mut told = self
            .told_cuda_path
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if *told != Some(path) {
            gst::info!(CAT, imp = self, "{}", how());
            *told = Some(path);
        }
    }

    /// How upstream memory of context `memory` reaches `session`'s context, found (and peer
    /// access enabled, for another GPU) once per upstream context.
    fn cuda_route(
        &self,
        session: &Session,
        memory: &cuda::gst::MappedCudaMemory,
    ) -> Option<cuda::PeerRoute> {
        let src = memory.context_handle();
        let mut cached = self.cuda_route.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((c, r)) = *cached
            && c == src as usize
        {
            return Some(r);
        }
        let route = memory
            .route_to(session.context())
            .map_err(|e| gst::warning!(CAT, imp = self, "{e}; copying through system memory"))
            .ok()?;
        *cached = Some((src as usize, route));
        Some(route)
    }

    /// For CUDA-memory caps: a GstCudaBufferPool on the shared context holding as many
    /// buffers as the ring can have in flight, so that upstream's frames are NVENC-ready
    /// (read in place). (pool, buffer size, minimum buffers).
    /// For system-memory caps of a format NVENC can take from device memory: a video buffer
    /// pool of page-locked memory (see [`Self::upload_pinned`]), as many buffers as the ring can
    /// have in flight. (pool, allocator, buffer size, minimum buffers).
    fn pinned_pool_for(
        &self,
        query: &gst::query::Allocation,
    ) -> Option<(gst::BufferPool, gst::Allocator, u32, u32)> {
        let (caps, need_pool) = query.get();
        let caps = caps?;
        if !need_pool
            || caps
                .features(0)
                .is_some_and(|f| f.contains("memory:CUDAMemory"))
        {
            return None;
        }
        let info = gst_video::VideoInfo::from_caps(caps).ok()?;
        if !CUDA_FORMATS.contains(&info.format()) {
            return None;
        }
        let ctx = {
            let st = self.lock_state();
            st.stream.as_ref()?.session.context().clone()
        };
        let allocator = {
            let mut p = self.pinned.lock().unwrap_or_else(|e| e.into_inner());
            match &*p {
                Some((c, a, _)) if *c == ctx.as_raw() as usize => a.clone(),
                _ => {
                    let regions = cuda::pinned::PinnedRegions::default();
                    let a = cuda::pinned::PinnedAllocator::new(ctx.clone(), regions.clone());
                    *p = Some((ctx.as_raw() as usize, a.clone(), regions));
                    a
                }
            }
        };
        let pool = gst_video::VideoBufferPool::new();
        let s = *self.settings();
        let min = 4 + s.bframes + 1 + s.rc_lookahead;
        let mut config = pool.config();
        config.set_params(Some(&caps.to_owned()), info.size() as u32, min, 0);
        config.set_allocator(Some(allocator.upcast_ref::<gst::Allocator>()), None);
        config.add_option(gst_video::BUFFER_POOL_OPTION_VIDEO_META);
        pool.set_config(config).ok()?;
        gst::debug!(
            CAT,
            imp = self,
            "proposing a page-locked buffer pool of {min}+ buffers"
        );
        Some((pool.upcast(), allocator.upcast(), info.size() as u32, min))
    }

    fn cuda_pool_for(&self, query: &gst::query::Allocation) -> Option<(gst::BufferPool, u32, u32)> {
        let (caps, need_pool) = query.get();
        let caps = caps?;
        if !need_pool
            || !caps
                .features(0)
                .is_some_and(|f| f.contains("memory:CUDAMemory"))
        {
            return None;
        }
        let info = gst_video::VideoInfo::from_caps(caps).ok()?;
        let shared = self
            .shared_cuda
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()?;
        let pool = shared.buffer_pool()?;
        let s = *self.settings();
        let min = 4 + s.bframes + 1 + s.rc_lookahead;
        let mut config = pool.config();
        config.set_params(Some(&caps.to_owned()), info.size() as u32, min, 0);
        // GStreamer 1.26+ (`gst_buffer_pool_config_set_cuda_stream_ordered_alloc`): no
        // stream-ordered allocation (memory pools) even where GST_CUDA_ENABLE_STREAM_ORDERED_ALLOC
        // or the context prefers it, since NVENC cannot register such memory. Older versions
        // ignore the field.
        config.set("cuda-stream-ordered-alloc", false);
        pool.set_config(config).ok()?;
        let size = pool
            .config()
            .params()
            .map_or(info.size() as u32, |(_, size, _, _)| size);
        gst::debug!(
            CAT,
            imp = self,
            "proposing a CUDA buffer pool of {min}+ buffers"
        );
        Some((pool, size, min))
    }

    fn handle_context_query(&self, query: &mut gst::QueryRef) -> bool {
        if !matches!(query.view(), gst::QueryView::Context(_)) {
            return false;
        }
        let ctx = self
            .shared_cuda
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        cuda::gst::handle_query(self.obj().upcast_ref(), query, ctx.as_ref())
    }

    /// Creates the CUDA context on `cuda-device-id` (once per start).
    fn ensure_context(&self, state: &mut State) -> Result<Arc<cuda::Context>, NvEncError> {
        if let Some(c) = &state.ctx {
            return Ok(c.clone());
        }
        let id = self.settings().cuda_device_id;
        cuda::init()?;
        let dev = cuda::Device::new(id as i32)?;
        let shared = self
            .shared_cuda
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let ctx = match shared {
            // The pipeline's context (from a neighbour, the application, or made by us and
            // offered to the others): same context, no copies between CUDA elements.
            Some(sc) if !sc.handle().is_null() => {
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

    /// Opens and initialises a session for `info`, creates the ring and starts the output
    /// thread.
    fn create_stream(
        &self,
        ctx: Arc<cuda::Context>,
        info: &gst_video::VideoInfo,
        hdr: Hdr10,
    ) -> Result<(Stream, gst::Caps), NvEncError> {
        let ops = self.ops();
        let codec = ops.codec();
        // This session takes the settings as they are now: earlier changes need no update.
        self.pending_update
            .store(0, std::sync::atomic::Ordering::SeqCst);
        let s = *self.settings();
        let (buffer_format, bit_depth, chroma_444) =
            self.nvenc_buffer_format(info.format()).ok_or_else(|| {
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
        let guids = session.encode_guids()?;
        if !guids.contains(&codec.guid()) {
            let gpu = session.context().device().name().unwrap_or_default();
            return Err(NvEncError::Other(format!(
                "the GPU \"{gpu}\" cannot encode {codec} with NVENC"
            )));
        }
        let gpu = || session.context().device().name().unwrap_or_default();
        let (ew, eh) = ops.encode_size(info.width(), info.height());
        let cap = |c| session.caps(codec.guid(), c);
        let (wmin, hmin) = (
            cap(ffi::NV_ENC_CAPS_WIDTH_MIN)?.max(1) as u32,
            cap(ffi::NV_ENC_CAPS_HEIGHT_MIN)?.max(1) as u32,
        );
        let wmax = cap(ffi::NV_ENC_CAPS_WIDTH_MAX)? as u32;
        let hmax = cap(ffi::NV_ENC_CAPS_HEIGHT_MAX)? as u32;
        if ew > wmax || eh > hmax || ew < wmin || eh < hmin {
            return Err(NvEncError::Other(format!(
                "{ew}x{eh} is outside what NVENC on \"{}\" encodes as {codec}: {wmin}x{hmin} to {wmax}x{hmax}",
                gpu()
            )));
        }
        if !session
            .input_formats(codec.guid())?
            .contains(&buffer_format)
        {
            return Err(NvEncError::Other(format!(
                "NVENC on \"{}\" takes no {:?} input for {codec} (NV_ENC_BUFFER_FORMAT {buffer_format:#x})",
                gpu(),
                info.format()
            )));
        }
        if bit_depth > 8 && cap(ffi::NV_ENC_CAPS_SUPPORT_10BIT_ENCODE)? == 0 {
            return Err(NvEncError::Other(format!(
                "NVENC on \"{}\" cannot encode 10-bit {codec}",
                gpu()
            )));
        }
        if chroma_444 && cap(ffi::NV_ENC_CAPS_SUPPORT_YUV444_ENCODE)? == 0 {
            return Err(NvEncError::Other(format!(
                "NVENC on \"{}\" cannot encode 4:4:4 {codec}",
                gpu()
            )));
        }
        let max_b = session
            .caps(codec.guid(), ffi::NV_ENC_CAPS_NUM_MAX_BFRAMES)?
            .max(0) as u32;
        let bframes = if s.bframes > max_b {
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

        let params = SessionParams {
            info: info.clone(),
            encode_width: ew,
            encode_height: eh,
            buffer_format,
            bit_depth,
            chroma_444,
            api,
            downstream_profiles: downstream_profiles(self.obj().upcast_ref()),
            profile_guids: session.profile_guids(codec.guid())?,
            cabac: codec == Codec::H264 && cap(ffi::NV_ENC_CAPS_SUPPORT_CABAC)? != 0,
            hdr,
        };
        if !hdr.is_empty() {
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
        let mut res = settings::resolve(&s, ew, eh);
        let uhq_ok = match codec {
            // Ultra high quality came with SDK 12.2 for H.265 and with 13.0 for AV1.
            Codec::Hevc => api.has_bit_depth_enums(),
            Codec::Av1 => api == api::ApiVersion::V13_0,
            Codec::H264 => false,
        };
        if res.tuning == ffi::NV_ENC_TUNING_INFO_ULTRA_HIGH_QUALITY && !uhq_ok {
            gst::element_imp_warning!(
                self,
                gst::LibraryError::Settings,
                ("tune=ultra-high-quality needs NVENC API 12.2 (H.265) or 13.0 (AV1): using high-quality"),
                ["API {}, {codec}", api.name()]
            );
            res.tuning = ffi::NV_ENC_TUNING_INFO_HIGH_QUALITY;
        }
        let preset = session.preset_config(codec.guid(), res.preset_guid, res.tuning)?;
        let mut cfg: Box<ffi::NV_ENC_CONFIG> = ffi::boxed_zeroed();
        *cfg = preset.presetCfg;

        // GOP: nvcodec semantics (-1 infinite, 0 intra only).
        let (gop, frame_interval_p) = match s.gop_size {
            -1 => (u32::MAX, 1),
            0 => (1, 1),
            n => (n as u32, bframes as i32 + 1),
        };
        cfg.gopLength = gop;
        cfg.frameIntervalP = frame_interval_p;
        let rc = &mut cfg.rcParams;
        rc.rateControlMode = res.rc_mode;
        rc.multiPass = res.multi_pass;
        if res.rc_mode == ffi::NV_ENC_PARAMS_RC_CONSTQP {
            if s.qp_const_i >= 0 {
                rc.constQP.qpIntra = s.qp_const_i as u32;
            }
            if s.qp_const_p >= 0 {
                rc.constQP.qpInterP = s.qp_const_p as u32;
            }
            if s.qp_const_b >= 0 {
                rc.constQP.qpInterB = s.qp_const_b as u32;
            }
        } else {
            if s.bitrate > 0 {
                rc.averageBitRate = s.bitrate.saturating_mul(1024);
            }
            if s.max_bitrate > 0 {
                rc.maxBitRate = s.max_bitrate.saturating_mul(1024);
            }
            if s.const_quality > 0.0 {
                rc.targetQuality = s.const_quality.floor() as u8;
                rc.targetQualityLSB = ((s.const_quality.fract()) * 256.0) as u8;
            }
        }
        rc.flags = ffi::RC_ZERO_REORDER_DELAY.set(rc.flags, s.zerolatency as u32);
        if s.vbv_buffer_size > 0 {
            rc.vbvBufferSize = s.vbv_buffer_size.saturating_mul(1024);
        }
        if let Some((i, p, b)) = settings::qp_triplet(s.qp_min_i, s.qp_min_p, s.qp_min_b) {
            rc.flags = ffi::RC_ENABLE_MIN_QP.set(rc.flags, 1);
            rc.minQP = ffi::NV_ENC_QP {
                qpIntra: i,
                qpInterP: p,
                qpInterB: b,
            };
        }
        if let Some((i, p, b)) = settings::qp_triplet(s.qp_max_i, s.qp_max_p, s.qp_max_b) {
            rc.flags = ffi::RC_ENABLE_MAX_QP.set(rc.flags, 1);
            rc.maxQP = ffi::NV_ENC_QP {
                qpIntra: i,
                qpInterP: p,
                qpInterB: b,
            };
        }
        // Options the GPU may lack are refused with a warning, never silently dropped.
        let refuse = |prop: &str, cap_name: &str| {
            gst::element_imp_warning!(
                self,
                gst::LibraryError::Settings,
                ("{prop} is not supported by this GPU's NVENC and is ignored"),
                ["{cap_name} is 0 for {codec}"]
            );
        };
        if s.rc_lookahead > 0 {
            if cap(ffi::NV_ENC_CAPS_SUPPORT_LOOKAHEAD)? != 0 {
                rc.flags = ffi::RC_ENABLE_LOOKAHEAD.set(rc.flags, 1);
                rc.lookaheadDepth = s.rc_lookahead as u16;
                rc.flags = ffi::RC_DISABLE_IADAPT.set(rc.flags, !s.i_adapt as u32);
                rc.flags = ffi::RC_DISABLE_BADAPT.set(rc.flags, !s.b_adapt as u32);
            } else {
                refuse("rc-lookahead", "NV_ENC_CAPS_SUPPORT_LOOKAHEAD");
            }
        }
        rc.flags = ffi::RC_ENABLE_AQ.set(rc.flags, s.spatial_aq as u32);
        if s.spatial_aq {
            rc.flags = ffi::RC_AQ_STRENGTH.set(rc.flags, s.aq_strength);
        }
        if s.temporal_aq {
            if cap(ffi::NV_ENC_CAPS_SUPPORT_TEMPORAL_AQ)? != 0 {
                rc.flags = ffi::RC_ENABLE_TEMPORAL_AQ.set(rc.flags, 1);
            } else {
                refuse("temporal-aq", "NV_ENC_CAPS_SUPPORT_TEMPORAL_AQ");
            }
        }
        rc.flags = ffi::RC_ENABLE_NONREF_P.set(rc.flags, s.nonref_p as u32);
        rc.flags = ffi::RC_STRICT_GOP_TARGET.set(rc.flags, s.strict_gop as u32);
        let weighted_pred = s.weighted_pred
            && if cap(ffi::NV_ENC_CAPS_SUPPORT_WEIGHTED_PREDICTION)? != 0 {
                true
            } else {
                refuse("weighted-pred", "NV_ENC_CAPS_SUPPORT_WEIGHTED_PREDICTION");
                false
            };
        let lookahead = if ffi::RC_ENABLE_LOOKAHEAD.get(rc.flags) != 0 {
            rc.lookaheadDepth as u32
        } else {
            0
        };

        let mut s = s;
        if s.intra_refresh_period > 0 && cap(ffi::NV_ENC_CAPS_SUPPORT_INTRA_REFRESH)? == 0 {
            refuse("intra-refresh-period", "NV_ENC_CAPS_SUPPORT_INTRA_REFRESH");
            s.intra_refresh_period = 0;
        }
        if let Some((period, count)) = s.intra_refresh()
            && s.intra_refresh_count > count
        {
            gst::element_imp_warning!(
                self,
                gst::LibraryError::Settings,
                (
                    "intra-refresh-count {} lowered to {count}",
                    s.intra_refresh_count
                ),
                [
                    "nvEncodeAPI.h: intraRefreshCnt should be smaller than intraRefreshPeriod ({period})"
                ]
            );
        }
        if s.b_ref_mode != settings::BRefMode::Disabled {
            let supported = cap(ffi::NV_ENC_CAPS_SUPPORT_BFRAME_REF_MODE)? as u32;
            if supported & s.b_ref_mode as u32 == 0 || bframes == 0 {
                refuse(
                    "b-ref-mode",
                    "NV_ENC_CAPS_SUPPORT_BFRAME_REF_MODE (or bframes=0)",
                );
                s.b_ref_mode = settings::BRefMode::Disabled;
            }
        }
        let fmt = ops.choose_stream_format(self.obj().upcast_ref());
        let refused = ops
            .configure(&mut cfg, &s, &params, fmt)
            .map_err(NvEncError::Other)?;
        for r in refused {
            gst::element_imp_warning!(self, gst::LibraryError::Settings, ("{r}"), ["{codec}"]);
        }
        // The codec may have lowered it (a profile without B-frames).
        let frame_interval_p = cfg.frameIntervalP;
        if bit_depth != 8 {
            api::set_bit_depth(api, codec, &mut cfg, bit_depth);
        }
        // Split-frame encoding, lookahead level, temporal filter, LTR: SDK features beyond
        // nvcodec, each checked against the API's layout, the GPU's caps and the header's rules.
        let ext = self.plan_sdk_extensions(
            &session,
            &s,
            sdkext::Session {
                codec,
                api,
                frame_interval_p,
                lookahead: lookahead > 0,
                zero_reorder_delay: s.zerolatency,
                weighted_prediction: weighted_pred,
                preset_tf_level: sdkext::preset_tf_level(api, codec, &cfg),
            },
        );

        let mut init: Box<ffi::NV_ENC_INITIALIZE_PARAMS> = ffi::boxed_zeroed();
        init.encodeGUID = codec.guid();
        init.presetGUID = res.preset_guid;
        init.tuningInfo = res.tuning;
        init.flags = ffi::INIT_ENABLE_WEIGHTED_PREDICTION.set(init.flags, weighted_pred as u32);
        init.encodeWidth = ew;
        init.encodeHeight = eh;
        init.maxEncodeWidth = ew;
        init.maxEncodeHeight = eh;
        let (par_n, par_d) = (info.par().numer() as u64, info.par().denom() as u64);
        // Display aspect ratio of the shown picture.
        let (dw, dh) = (
            info.width() as u64 * par_n.max(1),
            info.height() as u64 * par_d.max(1),
        );
        let g = gcd(dw, dh).max(1);
        init.darWidth = (dw / g) as u32;
        init.darHeight = (dh / g) as u32;
        let (fn_, fd) = if info.fps().numer() > 0 {
            (info.fps().numer() as u32, info.fps().denom() as u32)
        } else {
            (25, 1)
        };
        init.frameRateNum = fn_;
        init.frameRateDen = fd;
        init.enablePTD = 1;
        init.enableEncodeAsync = 0;
        init.bufferFormat = buffer_format;
        sdkext::apply(&ext, api, codec, &mut init, &mut cfg);
        session.initialize(&mut init, &mut cfg)?;
        self.stats.sessions.fetch_add(1, Ordering::Relaxed);

        let seq = session.sequence_params()?;
        let mut caps = ops
            .output_caps(&seq, &params, fmt)
            .map_err(|e| NvEncError::Other(format!("cannot build output caps: {e}")))?;
        if super::colour::converted_by_nvenc(info) {
            // NVENC codes these as BT.709 4:2:0 (see colour::iso_colour), not as the input's
            // colorimetry, which GstVideoEncoder would otherwise copy into the caps.
            caps.make_mut().set("colorimetry", "bt709");
        }

        // Ring: nvcodec's task pool size, 4 + lookahead + B-frames + 1.
        let ring = 4 + lookahead + (frame_interval_p.max(1) as u32 - 1) + 1;
        let mut free = Vec::with_capacity(ring as usize);
        for _ in 0..ring {
            free.push(Slot {
                input: InputBuffer::new(&session, ew, eh, buffer_format)?,
                output: BitstreamBuffer::new(&session)?,
                cuda: None,
                device: None,
            });
        }
        let shared = Arc::new(Shared {
            q: Mutex::new(Queues {
                free,
                hdr_expected: !hdr.is_empty(),
                ..Default::default()
            }),
            cond: Condvar::new(),
        });
        let frame_dur = if info.fps().numer() > 0 {
            gst::ClockTime::SECOND
                .mul_div_floor(info.fps().denom() as u64, info.fps().numer() as u64)
                .unwrap_or(gst::ClockTime::ZERO)
        } else {
            gst::ClockTime::SECOND / 25
        };
        let dts_offset = frame_dur * (frame_interval_p.max(1) as u64 - 1);
        let thread = {
            let shared = shared.clone();
            let session = session.clone();
            let element = self.obj().clone();
            std::thread::Builder::new()
                .name("rsnvenc-output".into())
                .spawn(move || output_loop(element, session, shared, fmt, dts_offset))
                .map_err(|e| NvEncError::Other(format!("cannot start output thread: {e}")))?
        };
        gst::info!(
            CAT,
            imp = self,
            "session ready: {ew}x{eh}, ring {ring}, gop {gop}, frameIntervalP {frame_interval_p}, lookahead {lookahead}"
        );
        self.obj().set_latency(
            dts_offset + frame_dur * lookahead as u64,
            Some(frame_dur * ring as u64),
        );
        Ok((
            Stream {
                session,
                shared,
                thread: Some(thread),
                params,
                dts_offset,
                frame_idx: 0,
                ltr_per_picture: ext
                    .ltr
                    .filter(|(_, trust)| !trust)
                    .and_then(|(n, _)| Some((sdkext::pic_ltr_layout(api, codec)?, n))),
                idr_period: match gop {
                    u32::MAX => None,
                    g => Some(g),
                },
                since_idr: None,
                config: ffi::SessionConfig { init, cfg },
                registrations: Default::default(),
            },
            caps,
        ))
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
        let mut g = self.ltr_request.lock().unwrap_or_else(|e| e.into_inner());
        // Two requests before a frame: the later mark wins, the bitmaps add up.
        let prev = g.take().unwrap_or_default();
        *g = Some(sdkext::LtrRequest {
            mark: r.mark.or(prev.mark),
            use_bitmap: r.use_bitmap | prev.use_bitmap,
        });
        true
    }

    /// The `stats` property: `application/x-rsnvenc-stats`.
    fn stats_structure(&self) -> gst::Structure {
        let in_flight = {
            let shared = self.lock_state().stream.as_ref().map(|s| s.shared.clone());
            shared.map_or(0, |sh| {
                let q = sh.q.lock().unwrap_or_else(|e| e.into_inner());
                (q.pending.len() + q.held.len() + q.locking) as u32
            })
        };
        let st = &self.stats;
        gst::Structure::builder("application/x-rsnvenc-stats")
            .field("frames-in", st.frames_in.load(Ordering::Relaxed))
            .field("frames-out", st.frames_out.load(Ordering::Relaxed))
            .field("bytes-out", st.bytes_out.load(Ordering::Relaxed))
            .field("in-flight", in_flight)
            .field("encoder-fps", st.fps())
            .field("sessions", st.sessions.load(Ordering::Relaxed))
            .build()
    }

    /// Queries what [`sdkext::plan`] needs (capabilities the API lacks are 0; a failed query
    /// reads as 0, as FFmpeg reads it), plans, and posts each refusal as a warning.
    fn plan_sdk_extensions(
        &self,
        session: &Session,
        s: &Settings,
        x: sdkext::Session,
    ) -> sdkext::Plan {
        let guid = x.codec.guid();
        let cap = |c: u32| session.caps(guid, c).unwrap_or(0);
        let newer = sdkext::has_lookahead_level(x.api);
        let caps = sdkext::Caps {
            engines: cap(ffi::NV_ENC_CAPS_NUM_ENCODER_ENGINES),
            max_ltr_frames: cap(ffi::NV_ENC_CAPS_NUM_MAX_LTR_FRAMES),
            temporal_filter: if newer {
                cap(ffi::NV_ENC_CAPS_SUPPORT_TEMPORAL_FILTER)
            } else {
                0
            },
            lookahead_level: if newer {
                cap(ffi::NV_ENC_CAPS_SUPPORT_LOOKAHEAD_LEVEL)
            } else {
                0
            },
        };
        let plan = sdkext::plan(s, &x, &caps);
        for r in &plan.refused {
            gst::element_imp_warning!(
                self,
                gst::LibraryError::Settings,
                ("{} refused: {}", r.asked, r.why),
                ["NVENC API {}, {}, {:?}", x.api.name(), x.codec, caps]
            );
        }
        for n in &plan.notes {
            gst::info!(CAT, imp = self, "{n}");
        }
        gst::debug!(CAT, imp = self, "SDK extensions: {plan:?} with {caps:?}");
        plan
    }

    /// Applies property changes made while PLAYING (see `request_update`). Called by the
    /// streaming thread with the stream lock held once and no frame borrowed.
    fn apply_pending_update(&self) -> Result<(), gst::FlowError> {
        use std::sync::atomic::Ordering;
        let flags = self.pending_update.swap(0, Ordering::SeqCst);
        if flags == 0 || self.lock_state().stream.is_none() {
            return Ok(());
        }
        if flags & UPDATE_REINIT == 0 {
            let s = *self.settings();
            let mut st = self.lock_state();
            let Some(stream) = st.stream.as_mut() else {
                return Ok(());
            };
            let rc = &mut stream.config.cfg.rcParams;
            if rc.rateControlMode == ffi::NV_ENC_PARAMS_RC_CONSTQP {
                gst::info!(CAT, imp = self, "bitrate change ignored in constqp");
                return Ok(());
            }
            if s.bitrate > 0 {
                rc.averageBitRate = s.bitrate.saturating_mul(1024);
            }
            if s.max_bitrate > 0 {
                rc.maxBitRate = s.max_bitrate.saturating_mul(1024);
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

    /// A new session for `info` on the element's CUDA context (made if needed); failures are
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
        if let Some(mut s) = old {
            self.drain(&mut s, true)?;
            self.stop_stream(s, true);
        }
        let (stream, caps) = self.open_stream(&input_state)?;
        self.lock_state().stream = Some(stream);
        gst::info!(CAT, imp = self, "settings changed: new session, new IDR");
        let obj = self.obj();
        let out = obj.set_output_state(caps, Some(&input_state))?;
        obj.negotiate(out)?;
        Ok(())
    }

    /// Sends EOS to NVENC, waits until every submitted frame is out of the encoder, and
    /// finishes (or with `push == false` discards) them. Called with the stream lock held.
    fn drain(&self, stream: &mut Stream, push: bool) -> Result<(), gst::FlowError> {
        if let Err(e) = stream.session.send_eos() {
            gst::element_imp_error!(self, gst::StreamError::Encode, ["{e}"]);
            return Err(gst::FlowError::Error);
        }
        // After EOS NVENC starts again with an IDR (inferred: the header does not say; the
        // emulator does so).
        stream.since_idr = None;
        {
            // EOS releases what NVENC held for more input.
            let mut q = stream.shared.q.lock().unwrap_or_else(|e| e.into_inner());
            let held: Vec<_> = q.held.drain(..).collect();
            q.pending.extend(held);
            stream.shared.cond.notify_all();
        }
        let done: Vec<Done> = {
            // Wait without the stream lock: the output thread takes it to finish frames.
            {
                let obj = self.obj();
                let _unlocked = super::gstffi::StreamUnlock::new(obj.upcast_ref());
                let mut q = stream.shared.q.lock().unwrap_or_else(|e| e.into_inner());
                q.discard = !push;
                while (!q.pending.is_empty() || q.locking > 0) && q.error.is_none() {
                    q = stream
                        .shared
                        .cond
                        .wait(q)
                        .unwrap_or_else(|e| e.into_inner());
                }
            }
            // Stream lock held again: what the output thread has not finished is ours.
            let mut q = stream.shared.q.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(e) = q.error.clone() {
                gst::element_imp_error!(self, gst::StreamError::Encode, ["{e}"]);
                return Err(gst::FlowError::Error);
            }
            q.done.drain(..).collect()
        };
        let obj = self.obj();
        for d in done {
            if push {
                finish_one(obj.upcast_ref(), stream.dts_offset, d)?;
            } else if let Some(f) = obj.frame(d.frame_number as i32) {
                drop(f);
            }
        }
        Ok(())
    }

    /// Stops the output thread and frees the ring, then the session. `stream_locked`: the
    /// caller holds the stream lock (flush, set_format), released while joining the output
    /// thread, which may be waiting for it.
    fn stop_stream(&self, mut stream: Stream, stream_locked: bool) {
        {
            let mut q = stream.shared.q.lock().unwrap_or_else(|e| e.into_inner());
            q.shutdown = true;
            stream.shared.cond.notify_all();
        }
        // The output thread may be blocked in nvEncLockBitstream on a frame NVENC still holds:
        // EOS releases it.
        let _ = stream.session.send_eos();
        if let Some(t) = stream.thread.take() {
            let obj = self.obj();
            let _unlocked =
                stream_locked.then(|| super::gstffi::StreamUnlock::new(obj.upcast_ref()));
            let _ = t.join();
        }
        // Slots (buffers) drop before the session: they hold Arc<Session>.
    }

    fn copy_frame(
        &self,
        slot: &mut Slot,
        frame: &gst_video::VideoFrameRef<&gst::BufferRef>,
        encode_height: u32,
    ) -> Result<(), NvEncError> {
        use gst_video::VideoFormat as F;
        let info = frame.info();
        let (w, h) = (info.width() as usize, info.height() as usize);
        let eh = encode_height as usize;
        // (row bytes, rows) per plane.
        // (row bytes, source rows, surface rows) per plane; the surface may have one row more
        // than the frame (H.26x 4:2:0 with an odd height), filled by repeating the last row.
        let planes: Vec<(usize, usize, usize)> = match info.format() {
            F::Nv12 => vec![
                (w, h, eh),
                (w.div_ceil(2) * 2, h.div_ceil(2), eh.div_ceil(2)),
            ],
            F::P01010le => vec![
                (2 * w, h, eh),
                (4 * w.div_ceil(2), h.div_ceil(2), eh.div_ceil(2)),
            ],
            F::Y444 | F::Gbr => vec![(w, h, eh); 3],
            F::Y44416le => vec![(2 * w, h, eh); 3],
            _ => vec![(4 * w, h, eh)],
        };
        let fmt = info.format();
        slot.input.write(|data, pitch| -> Result<(), NvEncError> {
            for (i, &(row_bytes, rows, dst_rows)) in planes.iter().enumerate() {
                let src = frame
                    .plane_data(i as u32)
                    .map_err(|e| NvEncError::Other(format!("cannot read plane {i}: {e}")))?;
                let stride = frame.plane_stride()[i] as usize;
                let base = i * pitch * eh;
                for r in 0..dst_rows {
                    let sr = r.min(rows - 1);
                    let s0 = sr * stride;
                    let d0 = base + r * pitch;
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
}

/// The sink (system-memory `formats`, 1..=8192 in both dimensions) and src (`src`) templates
/// of a codec element.
pub fn pad_templates(formats: &[gst_video::VideoFormat], src: &gst::Caps) -> Vec<gst::PadTemplate> {
    let sink = with_cuda_memory(
        gst_video::VideoCapsBuilder::new()
            .format_list(formats.iter().copied())
            .width_range(1..=8192)
            .height_range(1..=8192)
            .build(),
    );
    vec![
        gst::PadTemplate::new(
            "sink",
            gst::PadDirection::Sink,
            gst::PadPresence::Always,
            &sink,
        )
        .expect("valid template"),
        gst::PadTemplate::new("src", gst::PadDirection::Src, gst::PadPresence::Always, src)
            .expect("valid template"),
    ]
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Sets timestamps and flags of a finished frame and hands it to the base class.
fn finish_one(
    element: &gst_video::VideoEncoder,
    dts_offset: gst::ClockTime,
    d: Done,
) -> Result<gst::FlowSuccess, gst::FlowError> {
    let Some(mut frame) = element.frame(d.frame_number as i32) else {
        gst::warning!(CAT, obj = element, "no frame {} pending", d.frame_number);
        return Ok(gst::FlowSuccess::Ok);
    };
    let dts = d
        .dts_source
        .map(|p| p.saturating_sub(dts_offset))
        .or(frame.pts());
    frame.set_dts(dts);
    if d.keyframe {
        frame.set_flags(gst_video::VideoCodecFrameFlags::SYNC_POINT);
    }
    frame.set_output_buffer(d.buffer);
    element.finish_frame(frame)
}

/// The output thread: locks bitstream buffers in submission order, returns slots to the ring,
/// then finishes frames under the encoder's stream lock.
fn output_loop(
    element: NvEncoderObj,
    session: Arc<Session>,
    shared: Arc<Shared>,
    fmt: StreamFormat,
    dts_offset: gst::ClockTime,
) {
    let imp = element.imp();
    let ops = imp.ops();
    loop {
        let (slot, dts_source) = {
            let mut q = shared.q.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(p) = q.pending.pop_front() {
                    q.locking += 1;
                    break p;
                }
                if q.shutdown {
                    return;
                }
                q = shared.cond.wait(q).unwrap_or_else(|e| e.into_inner());
            }
        };
        let res = session.with_locked_bitstream(&slot.output, |info, data| {
            imp.stats.picture_out(data.len());
            let out = ops.convert_output(data, fmt);
            let stats = imp.emit_frame_stats.load(Ordering::Relaxed).then(|| {
                gst::Structure::builder("application/x-nvenc-stats")
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
                    .field("size", data.len() as u32)
                    .field("system-frame-number", info.output_timestamp as u32)
                    .field("ltr-frame", info.ltr_frame)
                    .field("ltr-frame-idx", info.ltr_frame_idx)
                    .build()
            });
            (
                info.output_timestamp as u32,
                info.picture_type == ffi::NV_ENC_PIC_TYPE_IDR,
                gst::Buffer::from_mut_slice(out),
                stats,
            )
        });
        // Statistics go out before any lock is taken (handlers may do anything).
        let res = res.map(|(n, key, buffer, stats)| {
            if let Some(st) = stats {
                element.emit_by_name::<()>("frame-stats", &[&st]);
            }
            (n, key, buffer)
        });
        let shutdown = {
            let mut q = shared.q.lock().unwrap_or_else(|e| e.into_inner());
            q.locking -= 1;
            let mut slot = slot;
            // The bitstream is out: NVENC's mapping, then upstream's memory, can go.
            slot.cuda = None;
            q.free.push(slot);
            if let Ok((n, key, _)) = &res {
                let with_hdr = q.hdr_frames.remove(n);
                if q.hdr_expected && with_hdr != *key {
                    gst::warning!(
                        CAT,
                        obj = element,
                        "frame {n}: NVENC coded it as {}, but HDR metadata was {}attached to it: the IDR prediction missed",
                        if *key { "an IDR" } else { "a non-IDR picture" },
                        if with_hdr { "" } else { "not " }
                    );
                }
            }
            match res {
                Ok((n, key, buffer)) => q.done.push_back(Done {
                    frame_number: n,
                    buffer,
                    keyframe: key,
                    dts_source,
                }),
                Err(e) => {
                    gst::error!(CAT, obj = element, "{e}");
                    if q.error.is_none() {
                        q.error = Some(e);
                    }
                }
            }
            shared.cond.notify_all();
            q.shutdown
        };
        if shutdown {
            continue;
        }
        // Finish what is done, under the stream lock (the streaming thread may have drained
        // it already while it held the lock: then there is nothing left).
        let enc: &gst_video::VideoEncoder = element.upcast_ref();
        let _lock = super::gstffi::StreamLock::new(enc);
        let done: Vec<Done> = {
            let mut q = shared.q.lock().unwrap_or_else(|e| e.into_inner());
            let done = q.done.drain(..).collect();
            if q.discard {
                // Flushing: GstVideoEncoder drops its pending frames itself after flush.
                continue;
            }
            done
        };
        for d in done {
            if let Err(e) = finish_one(enc, dts_offset, d) {
                gst::debug!(CAT, obj = element, "finish_frame: {e:?}");
                if e != gst::FlowError::Flushing && e != gst::FlowError::Eos {
                    let mut q = shared.q.lock().unwrap_or_else(|e| e.into_inner());
                    if q.error.is_none() {
                        q.error = Some(NvEncError::Other(format!("downstream: {e:?}")));
                    }
                }
            }
        }
    }
}

#[glib::object_subclass]
impl ObjectSubclass for NvEncoder {
    const NAME: &'static str = "GstRsNvEncoder";
    const ABSTRACT: bool = true;
    type Type = NvEncoderObj;
    type ParentType = gst_video::VideoEncoder;
    type Class = Class;

    fn class_init(klass: &mut Class) {
        super::gstffi::install_transform_meta(&mut klass.parent);
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
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecUInt::builder("cuda-device-id")
                    .nick("CUDA Device ID")
                    .blurb("CUDA device ordinal of the GPU whose NVENC encodes")
                    .default_value(settings::DEFAULT_CUDA_DEVICE_ID)
                    .maximum(i32::MAX as u32)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("preset", settings::DEFAULT_PRESET)
                    .nick("Encoding Preset")
                    .blurb("NVENC preset (presetGUID); legacy names map to P1..P7 as in nvcodec")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("tune", settings::DEFAULT_TUNE)
                    .nick("Tune")
                    .blurb("NVENC tuning info (tuningInfo); default = the preset's")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("rc-mode", settings::DEFAULT_RC_MODE)
                    .nick("RC Mode")
                    .blurb("Rate control mode (rcParams.rateControlMode)")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("bitrate")
                    .nick("Bitrate")
                    .blurb("Bitrate in kbit/s (x1024 into rcParams.averageBitRate), 0 = preset default; ignored in constqp")
                    .maximum(settings::MAX_BITRATE_KBPS)
                    .default_value(settings::DEFAULT_BITRATE)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("max-bitrate")
                    .nick("Max Bitrate")
                    .blurb("Maximum bitrate in kbit/s (rcParams.maxBitRate) for VBR, 0 = preset default; ignored in CBR")
                    .maximum(settings::MAX_BITRATE_KBPS)
                    .default_value(settings::DEFAULT_MAX_BITRATE)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("const-quality")
                    .nick("Constant Quality")
                    .blurb("Target constant quality for VBR (rcParams.targetQuality, 1/256 steps), 0 = preset default")
                    .minimum(0.0)
                    .maximum(51.0)
                    .default_value(settings::DEFAULT_CONST_QUALITY)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecInt::builder("gop-size")
                    .nick("GOP size")
                    .blurb("Frames between IDRs (gopLength and idrPeriod); -1 = infinite, 0 = intra only")
                    .minimum(-1)
                    .default_value(settings::DEFAULT_GOP_SIZE)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("bframes")
                    .nick("B-Frames")
                    .blurb("B-frames between reference frames (frameIntervalP - 1); capped at the GPU's NV_ENC_CAPS_NUM_MAX_BFRAMES")
                    .maximum(settings::MAX_BFRAMES)
                    .default_value(settings::DEFAULT_BFRAMES)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("zerolatency")
                    .nick("Zerolatency")
                    .blurb("Zero reorder delay (rcParams.zeroReorderDelay)")
                    .default_value(settings::DEFAULT_ZEROLATENCY)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("emit-frame-stats")
                    .nick("Emit Frame Stats")
                    .blurb("Emit the frame-stats signal for every encoded frame (from the output thread)")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("cc-insert", settings::DEFAULT_CC_INSERT)
                    .nick("Closed Caption Insert")
                    .blurb("Closed Caption Insert mode: CEA-708 captions (GstVideoCaptionMeta, raw cc_data or CDP) as ATSC A/53 ITU-T T.35 user data, in an SEI message (H.264, H.265) or a metadata OBU (AV1); applies from the next frame")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("intra-refresh-period")
                    .nick("Intra Refresh Period")
                    .blurb("Frames between intra refresh waves (enableIntraRefresh, intraRefreshPeriod), 0 = off; refused with a warning if the GPU lacks NV_ENC_CAPS_SUPPORT_INTRA_REFRESH; beyond nvcodec")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("intra-refresh-count")
                    .nick("Intra Refresh Count")
                    .blurb("Frames one refresh wave takes (intraRefreshCnt), below the period (nvEncodeAPI.h); 0 = the period minus one; beyond nvcodec")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("b-ref-mode", settings::BRefMode::Disabled)
                    .nick("B-frame Reference Mode")
                    .blurb("B-frames as references (useBFramesAsRef); refused with a warning if the GPU lacks the mode (NV_ENC_CAPS_SUPPORT_BFRAME_REF_MODE); beyond nvcodec")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("multi-pass", settings::DEFAULT_MULTI_PASS)
                    .nick("Multi Pass")
                    .blurb("Multi-pass encoding (rcParams.multiPass); default = from preset and rc-mode")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("weighted-pred")
                    .nick("Weighted Pred")
                    .blurb("Weighted prediction (enableWeightedPrediction); refused with a warning if the GPU lacks NV_ENC_CAPS_SUPPORT_WEIGHTED_PREDICTION")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("vbv-buffer-size")
                    .nick("VBV Buffer Size")
                    .blurb("VBV buffer size in kbits (x1024 into rcParams.vbvBufferSize), 0 = preset default")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("rc-lookahead")
                    .nick("Rate Control Lookahead")
                    .blurb("Frames of rate-control lookahead (rcParams.enableLookahead, lookaheadDepth), 0 = off; refused with a warning if the GPU lacks NV_ENC_CAPS_SUPPORT_LOOKAHEAD")
                    .maximum(settings::MAX_RC_LOOKAHEAD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("i-adapt")
                    .nick("I Adapt")
                    .blurb("Adaptive I-frame insertion with lookahead (rcParams.disableIadapt = !i-adapt)")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("b-adapt")
                    .nick("B Adapt")
                    .blurb("Adaptive B-frame decision with lookahead (rcParams.disableBadapt = !b-adapt)")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("spatial-aq")
                    .nick("Spatial AQ")
                    .blurb("Spatial adaptive quantization (rcParams.enableAQ)")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("temporal-aq")
                    .nick("Temporal AQ")
                    .blurb("Temporal adaptive quantization (rcParams.enableTemporalAQ); refused with a warning if the GPU lacks NV_ENC_CAPS_SUPPORT_TEMPORAL_AQ")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("nonref-p")
                    .nick("Non-reference P")
                    .blurb("Automatic insertion of non-reference P-frames (rcParams.enableNonRefP)")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("strict-gop")
                    .nick("Strict GOP")
                    .blurb("Minimize GOP-to-GOP rate fluctuations (rcParams.strictGOPTarget)")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("lookahead-level", settings::DEFAULT_LOOKAHEAD_LEVEL)
                    .nick("Lookahead Level")
                    .blurb("Lookahead level (rcParams.lookaheadLevel, NVENC API 12.2+): needs rc-lookahead > 0 and a GPU with NV_ENC_CAPS_SUPPORT_LOOKAHEAD_LEVEL >= the level, else refused with a warning; default = the preset's; beyond nvcodec")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("temporal-filter-level", settings::DEFAULT_TEMPORAL_FILTER_LEVEL)
                    .nick("Temporal Filter Level")
                    .blurb("Temporal filter (tfLevel: H.265 from NVENC API 12.2, AV1 and H.264 from 13.0): needs bframes >= 4 (frameIntervalP >= 5), no zerolatency and NV_ENC_CAPS_SUPPORT_TEMPORAL_FILTER, else refused with a warning; beyond nvcodec")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("ltr-frames")
                    .nick("LTR Frames")
                    .blurb("Long-term reference frames (enableLTR, ltrNumFrames; AV1 from NVENC API 13.0), 0 = off: needs bframes=0, at most NV_ENC_CAPS_NUM_MAX_LTR_FRAMES, else refused with a warning; mark/use them per picture with the rsnvenc-ltr event; beyond nvcodec")
                    .maximum(settings::MAX_LTR_FRAMES)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("ltr-trust-mode")
                    .nick("LTR Trust Mode")
                    .blurb("LTR trust mode (ltrTrustMode, H.264/H.265): NVENC marks the first ltr-frames reference frames after each IDR itself (NVIDIA discourages it); false = per-picture marking; beyond nvcodec")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb("Running statistics since the element started (application/x-rsnvenc-stats): frames-in, frames-out (pictures into/out of NVENC, guint64), bytes-out (guint64), in-flight (pictures in NVENC now, guint), encoder-fps (pictures out per second over the last second, gdouble), sessions (NVENC sessions opened, guint64)")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt::builder("aq-strength")
                    .nick("AQ Strength")
                    .blurb("Spatial AQ strength 1 (least) to 15 (most aggressive), 0 = auto (rcParams.aqStrength)")
                    .maximum(settings::MAX_AQ_STRENGTH)
                    .mutable_playing()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings();
        match pspec.name() {
            "cuda-device-id" => s.cuda_device_id = value.get().expect("type checked upstream"),
            "preset" => s.preset = value.get().expect("type checked upstream"),
            "tune" => s.tune = value.get().expect("type checked upstream"),
            "rc-mode" => s.rc_mode = value.get().expect("type checked upstream"),
            "bitrate" => s.bitrate = value.get().expect("type checked upstream"),
            "max-bitrate" => s.max_bitrate = value.get().expect("type checked upstream"),
            "const-quality" => s.const_quality = value.get().expect("type checked upstream"),
            "gop-size" => s.gop_size = value.get().expect("type checked upstream"),
            "bframes" => s.bframes = value.get().expect("type checked upstream"),
            "zerolatency" => s.zerolatency = value.get().expect("type checked upstream"),
            "emit-frame-stats" => {
                let v: bool = value.get().expect("type checked upstream");
                self.emit_frame_stats.store(v, Ordering::Relaxed);
                return;
            }
            "cc-insert" => {
                let v: CcInsert = value.get().expect("type checked upstream");
                self.cc_insert.store(v as u32, Ordering::Relaxed);
                return;
            }
            "intra-refresh-period" => {
                s.intra_refresh_period = value.get().expect("type checked upstream")
            }
            "intra-refresh-count" => {
                s.intra_refresh_count = value.get().expect("type checked upstream")
            }
            "b-ref-mode" => s.b_ref_mode = value.get().expect("type checked upstream"),
            "multi-pass" => s.multi_pass = value.get().expect("type checked upstream"),
            "weighted-pred" => s.weighted_pred = value.get().expect("type checked upstream"),
            "vbv-buffer-size" => s.vbv_buffer_size = value.get().expect("type checked upstream"),
            "rc-lookahead" => s.rc_lookahead = value.get().expect("type checked upstream"),
            "i-adapt" => s.i_adapt = value.get().expect("type checked upstream"),
            "b-adapt" => s.b_adapt = value.get().expect("type checked upstream"),
            "spatial-aq" => s.spatial_aq = value.get().expect("type checked upstream"),
            "temporal-aq" => s.temporal_aq = value.get().expect("type checked upstream"),
            "nonref-p" => s.nonref_p = value.get().expect("type checked upstream"),
            "strict-gop" => s.strict_gop = value.get().expect("type checked upstream"),
            "aq-strength" => s.aq_strength = value.get().expect("type checked upstream"),
            "lookahead-level" => s.lookahead_level = value.get().expect("type checked upstream"),
            "temporal-filter-level" => {
                s.temporal_filter_level = value.get().expect("type checked upstream")
            }
            "ltr-frames" => s.ltr_frames = value.get().expect("type checked upstream"),
            "ltr-trust-mode" => s.ltr_trust_mode = value.get().expect("type checked upstream"),
            _ => unimplemented!(),
        }
        drop(s);
        match pspec.name() {
            "cuda-device-id" => {}
            "bitrate" | "max-bitrate" => self.request_update(true),
            _ => self.request_update(false),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings();
        match pspec.name() {
            "cuda-device-id" => s.cuda_device_id.to_value(),
            "preset" => s.preset.to_value(),
            "tune" => s.tune.to_value(),
            "rc-mode" => s.rc_mode.to_value(),
            "bitrate" => s.bitrate.to_value(),
            "max-bitrate" => s.max_bitrate.to_value(),
            "const-quality" => s.const_quality.to_value(),
            "gop-size" => s.gop_size.to_value(),
            "bframes" => s.bframes.to_value(),
            "zerolatency" => s.zerolatency.to_value(),
            "emit-frame-stats" => self.emit_frame_stats.load(Ordering::Relaxed).to_value(),
            "cc-insert" => self.cc_insert().to_value(),
            "intra-refresh-period" => s.intra_refresh_period.to_value(),
            "intra-refresh-count" => s.intra_refresh_count.to_value(),
            "b-ref-mode" => s.b_ref_mode.to_value(),
            "multi-pass" => s.multi_pass.to_value(),
            "weighted-pred" => s.weighted_pred.to_value(),
            "vbv-buffer-size" => s.vbv_buffer_size.to_value(),
            "rc-lookahead" => s.rc_lookahead.to_value(),
            "i-adapt" => s.i_adapt.to_value(),
            "b-adapt" => s.b_adapt.to_value(),
            "spatial-aq" => s.spatial_aq.to_value(),
            "temporal-aq" => s.temporal_aq.to_value(),
            "nonref-p" => s.nonref_p.to_value(),
            "strict-gop" => s.strict_gop.to_value(),
            "aq-strength" => s.aq_strength.to_value(),
            "lookahead-level" => s.lookahead_level.to_value(),
            "temporal-filter-level" => s.temporal_filter_level.to_value(),
            "ltr-frames" => s.ltr_frames.to_value(),
            "ltr-trust-mode" => s.ltr_trust_mode.to_value(),
            "stats" => {
                drop(s);
                self.stats_structure().to_value()
            }
            _ => unimplemented!(),
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
        let id = self.settings().cuda_device_id as i32;
        let mut cur = self
            .shared_cuda
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        cuda::gst::set_context(self.obj().upcast_ref(), context, id, &mut cur);
        *self.shared_cuda.lock().unwrap_or_else(|e| e.into_inner()) = cur;
        self.parent_set_context(context);
    }
}

impl VideoEncoderImpl for NvEncoder {
    fn src_event(&self, event: gst::Event) -> bool {
        if matches!(event.view(), gst::EventView::CustomUpstream(_)) && self.take_ltr_event(&event)
        {
            return true;
        }
        self.parent_src_event(event)
    }

    fn sink_event(&self, event: gst::Event) -> bool {
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
        // Fail at start, with a clear message, on machines without NVENC.
        if let Err(e) = api::load() {
            return Err(gst::error_msg!(gst::LibraryError::Init, ["{e}"]));
        }
        self.ensure_shared_cuda();
        let mut st = self.lock_state();
        let ctx = self
            .ensure_context(&mut st)
            .map_err(|e| gst::error_msg!(gst::LibraryError::Init, ["cannot use CUDA: {e}"]))?;
        // Open a session once to prove the GPU has NVENC (the H100 does not) and can encode
        // this codec, and to learn which input it takes.
        let session = match Session::open(ctx) {
            Ok(s) => s,
            Err(e @ NvEncError::NoNvenc { .. }) => {
                return Err(gst::error_msg!(gst::ResourceError::NotFound, ["{e}"]));
            }
            Err(e) => return Err(gst::error_msg!(gst::LibraryError::Init, ["{e}"])),
        };
        let probed = self
            .probe_sink_caps(&session)
            .map_err(|e| gst::error_msg!(gst::ResourceError::Settings, ["{e}"]))?;
        gst::debug!(CAT, imp = self, "GPU accepts {probed}");
        st.probed_sink = Some(probed);
        Ok(())
    }

    fn caps(&self, filter: Option<&gst::Caps>) -> gst::Caps {
        let probed = self.lock_state().probed_sink.clone();
        // Only the formats that can give a profile downstream accepts (H.264: 4:4:4 input for
        // High 4:4:4 only, as nvcodec narrows its sink caps).
        let profiles = downstream_profiles(self.obj().upcast_ref());
        let narrowed = self
            .ops()
            .formats_for_profiles(&profiles)
            .and_then(|allowed| {
                probed
                    .clone()
                    .or_else(|| self.obj().static_pad("sink").map(|p| p.pad_template_caps()))
                    .map(|c| restrict_formats(&c, &allowed))
            });
        let caps = self
            .obj()
            .proxy_getcaps(narrowed.as_ref().or(probed.as_ref()), filter);
        if let (Some(probed), true) = (&probed, caps.is_empty()) {
            // Upstream offers nothing this GPU takes, or nothing that gives a profile
            // downstream accepts: say why (once per start), since the resulting
            // not-negotiated error will not.
            let template = self.obj().proxy_getcaps(None, filter);
            let mut st = self.lock_state();
            if !template.is_empty() && !st.told_unsupported {
                st.told_unsupported = true;
                drop(st);
                let gpu_takes_it = !self.obj().proxy_getcaps(Some(probed), filter).is_empty();
                match &narrowed {
                    Some(n) if gpu_takes_it => gst::element_imp_warning!(
                        self,
                        gst::CoreError::Negotiation,
                        ("The offered input cannot give a profile downstream accepts"),
                        [
                            "offered {template}; downstream accepts the profiles {profiles:?}, for which the GPU takes {n}"
                        ]
                    ),
                    _ => gst::element_imp_warning!(
                        self,
                        gst::CoreError::Negotiation,
                        ("NVENC on this GPU cannot take the offered input"),
                        ["offered {template}; the GPU takes {probed}"]
                    ),
                }
            }
        }
        caps
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        let stream = {
            let mut st = self.lock_state();
            st.input_state = None;
            st.probed_sink = None;
            st.told_unsupported = false;
            st.stream.take()
        };
        *self.ltr_request.lock().unwrap_or_else(|e| e.into_inner()) = None;
        if let Some(s) = stream {
            self.stop_stream(s, false);
        }
        self.lock_state().ctx = None;
        Ok(())
    }

    fn propose_allocation(
        &self,
        query: &mut gst::query::Allocation,
    ) -> Result<(), gst::LoggableError> {
        query.add_allocation_meta::<gst_video::VideoMeta>(None);
        if let Some((pool, size, min)) = self.cuda_pool_for(query) {
            query.add_allocation_pool(Some(&pool), size, min, 0);
        } else if let Some((pool, allocator, size, min)) = self.pinned_pool_for(query) {
            query.add_allocation_param(Some(&allocator), gst::AllocationParams::default());
            query.add_allocation_pool(Some(&pool), size, min, 0);
        }
        self.parent_propose_allocation(query)
    }

    fn set_format(
        &self,
        state: &gst_video::VideoCodecState<'static, gst_video::video_codec_state::Readable>,
    ) -> Result<(), gst::LoggableError> {
        // Drain and drop the old session (caps change).
        let old = self.lock_state().stream.take();
        if let Some(mut s) = old {
            let _ = self.drain(&mut s, true);
            self.stop_stream(s, true);
        }
        let info = state.info().clone();
        let ctx = {
            let mut st = self.lock_state();
            self.ensure_context(&mut st)
                .map_err(|e| gst::loggable_error!(CAT, "{e}"))?
        };
        let (stream, caps) = match self.create_stream(ctx, &info, hdr_of(state)) {
            Ok(v) => v,
            Err(e) => {
                self.post_error(&e);
                return Err(gst::loggable_error!(CAT, "cannot start NVENC: {e}"));
            }
        };
        {
            let mut st = self.lock_state();
            st.stream = Some(stream);
            st.input_state = Some(state.clone());
        }
        let obj = self.obj();
        let out = obj
            .set_output_state(caps, Some(state))
            .map_err(|_| gst::loggable_error!(CAT, "Failed to set output state"))?;
        obj.negotiate(out)
            .map_err(|_| gst::loggable_error!(CAT, "Failed to negotiate"))?;
        Ok(())
    }

    fn handle_frame(
        &self,
        frame: gst_video::VideoCodecFrame,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        // Take what NVENC needs and let go of the frame first: gstreamer-rs's
        // VideoCodecFrame holds the stream lock (once more) while it lives, and the wait for a
        // free slot below must release the stream lock completely.
        let frame_number = frame.system_frame_number();
        let duration = frame.duration();
        let pts = frame.pts();
        let force_idr = frame
            .flags()
            .contains(gst_video::VideoCodecFrameFlags::FORCE_KEYFRAME);
        let input = frame.input_buffer_owned().ok_or(gst::FlowError::Error)?;
        drop(frame);
        self.apply_pending_update()?;

        // Re-create the session after a flush.
        if self.lock_state().stream.is_none() {
            let input_state = {
                let st = self.lock_state();
                match &st.input_state {
                    Some(s) => s.clone(),
                    None => return Err(gst::FlowError::NotNegotiated),
                }
            };
            let (stream, _caps) = self.open_stream(&input_state)?;
            let mut st = self.lock_state();
            st.stream = Some(stream);
            st.input_state = Some(input_state);
        }

        let (shared, session, encode_width, encode_height, info) = {
            let st = self.lock_state();
            let s = st.stream.as_ref().ok_or(gst::FlowError::NotNegotiated)?;
            (
                s.shared.clone(),
                s.session.clone(),
                s.params.encode_width,
                s.params.encode_height,
                s.params.info.clone(),
            )
        };
        // A free slot. The output thread returns slots without any GStreamer lock, but then
        // takes the stream lock to finish frames: wait without it (as nvcodec does), or a
        // full ring deadlocks.
        let mut slot = {
            let obj = self.obj();
            let mut unlocked = None;
            let mut q = shared.q.lock().unwrap_or_else(|e| e.into_inner());
            let slot = loop {
                if let Some(e) = q.error.clone() {
                    break Err(e);
                }
                if let Some(s) = q.free.pop() {
                    break Ok(s);
                }
                if unlocked.is_none() {
                    // Not under `q`: the output thread may hold the stream lock and want `q`.
                    drop(q);
                    unlocked = Some(super::gstffi::StreamUnlock::new(obj.upcast_ref()));
                    q = shared.q.lock().unwrap_or_else(|e| e.into_inner());
                    continue;
                }
                q = shared.cond.wait(q).unwrap_or_else(|e| e.into_inner());
            };
            drop(q);
            drop(unlocked);
            match slot {
                Ok(s) => s,
                Err(e) => {
                    self.post_error(&e);
                    return Err(gst::FlowError::Error);
                }
            }
        };
        // Upstream CUDA memory of our context: NVENC reads it in place (no copy).
        // System memory skips both CUDA paths (no lock, no further FFI call per frame).
        let cuda_mapped = if cuda::gst::is_cuda_buffer(&input) {
            self.map_cuda_input(&input, &info, encode_height)
                .or_else(|| {
                    self.copy_cuda_input(
                        &session,
                        &input,
                        &info,
                        (encode_width, encode_height),
                        &mut slot,
                    )
                    .map(|m| (m, None))
                })
        } else {
            self.upload_pinned(
                &session,
                &input,
                &info,
                (encode_width, encode_height),
                &mut slot,
            )
            .map(|m| (m, None))
        };
        let zero_copy = cuda_mapped.is_some();
        if let Some((mapped, memory)) = cuda_mapped {
            slot.cuda = Some(CudaInput {
                _nvenc: mapped,
                _memory: memory,
            });
        }
        let vframe = if zero_copy {
            None
        } else {
            Some(
                gst_video::VideoFrameRef::from_buffer_ref_readable(&input, &info).map_err(
                    |_| {
                        gst::element_imp_error!(
                            self,
                            gst::CoreError::Failed,
                            [
                                "cannot map input buffer of {} bytes as {:?}",
                                input.size(),
                                info
                            ]
                        );
                        gst::FlowError::Error
                    },
                )?,
            )
        };
        if let Some(vframe) = vframe
            && let Err(e) = self.copy_frame(&mut slot, &vframe, encode_height)
        {
            shared
                .q
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .free
                .push(slot);
            self.post_error(&e);
            return Err(gst::FlowError::Error);
        }

        let mut pic: Box<ffi::NV_ENC_PIC_PARAMS> = ffi::boxed_zeroed();
        pic.inputTimeStamp = frame_number as u64;
        pic.inputDuration = duration.map(|d| d.nseconds()).unwrap_or(0);
        let ltr_request = self
            .ltr_request
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        // SEI messages / metadata OBUs for this picture: its captions, and on an IDR the HDR10
        // metadata. They live until nvEncEncodePicture has returned (NVENC copies them).
        let codec = self.ops().codec();
        let mut payloads = self.caption_payloads(&input, codec);
        let mut with_hdr = false;
        let ltr_refused = {
            let mut st = self.lock_state();
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
                if s.next_is_idr(force_idr) && !s.params.hdr.is_empty() {
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
                "frame {frame_number}: {}",
                payloads.describe()
            );
        }
        if with_hdr {
            let mut q = shared.q.lock().unwrap_or_else(|e| e.into_inner());
            q.hdr_frames.insert(frame_number);
        }
        if force_idr {
            pic.encodePicFlags |=
                ffi::NV_ENC_PIC_FLAG_FORCEIDR | ffi::NV_ENC_PIC_FLAG_OUTPUT_SPSPPS;
        }
        let encoded = match &slot.cuda {
            Some(c) => session.encode_mapped(&c._nvenc, &slot.output, &mut pic),
            None => session.encode_picture(&slot.input, &slot.output, &mut pic),
        };
        if encoded.is_ok() {
            self.stats.frames_in.fetch_add(1, Ordering::Relaxed);
        }
        // NVENC has copied the payloads; `pic` points into them no more after this.
        drop(pic);
        drop(payloads);
        match encoded {
            Ok(EncodeStatus::NeedMoreInput) => {
                let mut q = shared.q.lock().unwrap_or_else(|e| e.into_inner());
                q.held.push((slot, pts));
                Ok(gst::FlowSuccess::Ok)
            }
            Ok(EncodeStatus::Success) => {
                let mut q = shared.q.lock().unwrap_or_else(|e| e.into_inner());
                let held: Vec<_> = q.held.drain(..).collect();
                q.pending.extend(held);
                q.pending.push_back((slot, pts));
                shared.cond.notify_all();
                Ok(gst::FlowSuccess::Ok)
            }
            Err(e) => {
                shared
                    .q
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .free
                    .push(slot);
                self.post_error(&e);
                Err(gst::FlowError::Error)
            }
        }
    }

    fn finish(&self) -> Result<gst::FlowSuccess, gst::FlowError> {
        let stream = self.lock_state().stream.take();
        if let Some(mut s) = stream {
            let r = self.drain(&mut s, true);
            self.lock_state().stream = Some(s);
            r?;
        }
        Ok(gst::FlowSuccess::Ok)
    }

    fn flush(&self) -> bool {
        let stream = self.lock_state().stream.take();
        if let Some(mut s) = stream {
            let _ = self.drain(&mut s, false);
            self.stop_stream(s, true);
        }
        true
    }
}
