// SPDX-License-Identifier: MPL-2.0
//! Safe layer over the NVENC API: loading `libnvidia-encode.so.1` at run time, API version
//! negotiation, sessions, capability queries, preset configs, buffers, encode and bitstream
//! locks. Every resource is owned by an RAII value that releases it, errors included; every
//! failing call becomes an [`NvEncError`] naming the call, the `NVENCSTATUS` and the driver's
//! `nvEncGetLastErrorString`.

use std::ffi::{CStr, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};

use super::ffi::{self, GUID, NVENCSTATUS, StructVersions, boxed_zeroed};
use crate::cuda;

/// Errors from the NVENC layer. Messages are meant for users: they say what failed and what to do.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NvEncError {
    /// `libnvidia-encode.so.1` (or one of its entry points) could not be loaded.
    #[error(
        "the NVIDIA encode library libnvidia-encode.so.1 was not found ({0}); NVENC needs the NVIDIA driver (530.41 or newer) with its encode library installed"
    )]
    LibraryNotFound(String),
    /// The driver's newest NVENC API is older than 12.1.
    #[error(
        "the NVIDIA driver supports NVENC API {found} only, but rsnvenc needs API 12.1 or newer: install NVIDIA driver 530.41 or newer (550.54 for API 12.2, 570 for API 13.0)"
    )]
    DriverTooOld { found: String },
    /// The GPU has no NVENC engine.
    #[error("the GPU \"{gpu}\" has no NVENC video encoder ({detail}); use a GPU with NVENC")]
    NoNvenc { gpu: String, detail: String },
    /// An NVENC call failed.
    #[error("{call} failed: {name} ({code}){detail}")]
    Call {
        call: &'static str,
        code: NVENCSTATUS,
        name: &'static str,
        /// `: ` and the driver's last-error string, or empty.
        detail: String,
    },
    /// A CUDA driver call failed.
    #[error("{0}")]
    Cuda(String),
    /// Anything else, with a full message.
    #[error("{0}")]
    Other(String),
}

impl From<cuda::CudaError> for NvEncError {
    fn from(e: cuda::CudaError) -> Self {
        NvEncError::Cuda(e.to_string())
    }
}

impl NvEncError {
    /// The NVENCSTATUS of a failed call, if this is one.
    pub fn status(&self) -> Option<NVENCSTATUS> {
        match self {
            NvEncError::Call { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// Name of an NVENCSTATUS value.
pub fn status_name(code: NVENCSTATUS) -> &'static str {
    usize::try_from(code)
        .ok()
        .and_then(|i| ffi::STATUS_NAMES.get(i).copied())
        .unwrap_or("unknown NVENCSTATUS")
}

/// An NVENC API version the plugin can speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ApiVersion {
    V12_1,
    V12_2,
    V13_0,
}

impl ApiVersion {
    /// Struct versions to stamp for this API.
    pub fn versions(self) -> &'static StructVersions {
        match self {
            ApiVersion::V12_1 => &ffi::VERSIONS_12_1,
            ApiVersion::V12_2 => &ffi::VERSIONS_12_2,
            ApiVersion::V13_0 => &ffi::VERSIONS_13_0,
        }
    }
    /// "13.0"
    pub fn name(self) -> &'static str {
        match self {
            ApiVersion::V12_1 => "12.1",
            ApiVersion::V12_2 => "12.2",
            ApiVersion::V13_0 => "13.0",
        }
    }
    /// Bit depth is set through `inputBitDepth`/`outputBitDepth` (12.2+) rather than the
    /// `pixelBitDepthMinus8` bitfields.
    pub fn has_bit_depth_enums(self) -> bool {
        self >= ApiVersion::V12_2
    }
    /// Newest supported API not above the driver's maximum, encoded as `(major << 4) | minor`.
    pub fn negotiate(driver_max: u32) -> Result<ApiVersion, NvEncError> {
        let (major, minor) = (driver_max >> 4, driver_max & 0xf);
        match (major, minor) {
            (m, _) if m > 13 => Ok(ApiVersion::V13_0),
            (13, _) => Ok(ApiVersion::V13_0),
            (12, n) if n >= 2 => Ok(ApiVersion::V12_2),
            (12, 1) => Ok(ApiVersion::V12_1),
            _ => Err(NvEncError::DriverTooOld {
                found: format!("{major}.{minor}"),
            }),
        }
    }
}

/// The loaded driver library and its function table.
pub struct NvEncLib {
    fl: Box<ffi::NV_ENCODE_API_FUNCTION_LIST>,
    /// The API version negotiated with the driver.
    pub api: ApiVersion,
    /// The driver's maximum, as reported by `NvEncodeAPIGetMaxSupportedVersion`.
    pub driver_max: (u32, u32),
    _lib: libloading::Library,
}

// SAFETY: the function table is immutable after loading, and the NVENC entry points are
// callable from any thread (sessions are serialised by their users where the API requires it).
unsafe impl Send for NvEncLib {}
// SAFETY: as above; `&NvEncLib` only reads the table.
unsafe impl Sync for NvEncLib {}

static LIB: LazyLock<Result<NvEncLib, NvEncError>> = LazyLock::new(NvEncLib::load_now);

/// Loads `libnvidia-encode.so.1` once per process and negotiates the API version.
pub fn load() -> Result<&'static NvEncLib, NvEncError> {
    LIB.as_ref().map_err(Clone::clone)
}

impl NvEncLib {
    fn load_now() -> Result<NvEncLib, NvEncError> {
        // SAFETY: loading the NVIDIA driver's encode library runs its initialisers, which is the
        // documented way to use it; we only resolve the two entry points NVIDIA documents.
        let lib = unsafe { libloading::Library::new("libnvidia-encode.so.1") }
            .map_err(|e| NvEncError::LibraryNotFound(e.to_string()))?;
        // SAFETY: the symbol types are those of nvEncodeAPI.h.
        let get_max: libloading::Symbol<ffi::PfnGetMaxSupportedVersion> =
            unsafe { lib.get(b"NvEncodeAPIGetMaxSupportedVersion\0") }
                .map_err(|e| NvEncError::LibraryNotFound(e.to_string()))?;
        // SAFETY: as above.
        let create: libloading::Symbol<ffi::PfnCreateInstance> =
            unsafe { lib.get(b"NvEncodeAPICreateInstance\0") }
                .map_err(|e| NvEncError::LibraryNotFound(e.to_string()))?;

        let mut max = 0u32;
        // SAFETY: `max` is a valid out pointer for the call's duration.
        let st = unsafe { get_max(&mut max) };
        check_plain("NvEncodeAPIGetMaxSupportedVersion", st)?;
        let api = ApiVersion::negotiate(max)?;

        let mut fl = boxed_zeroed::<ffi::NV_ENCODE_API_FUNCTION_LIST>();
        fl.version = api.versions().function_list;
        // SAFETY: `fl` is a zeroed, correctly sized (2552 bytes, proven) function list.
        let st = unsafe { create(&mut *fl) };
        check_plain("NvEncodeAPICreateInstance", st)?;
        if fl.nvEncOpenEncodeSessionEx.is_none() {
            return Err(NvEncError::Other(
                "NvEncodeAPICreateInstance returned no nvEncOpenEncodeSessionEx".into(),
            ));
        }
        Ok(NvEncLib {
            fl,
            api,
            driver_max: (max >> 4, max & 0xf),
            _lib: lib,
        })
    }
}

fn check_plain(call: &'static str, st: NVENCSTATUS) -> Result<(), NvEncError> {
    if st == ffi::NV_ENC_SUCCESS {
        Ok(())
    } else {
        Err(NvEncError::Call {
            call,
            code: st,
            name: status_name(st),
            detail: String::new(),
        })
    }
}

macro_rules! entry {
    ($lib:expr, $name:ident) => {
        $lib.fl.$name.ok_or_else(|| {
            NvEncError::Other(format!(
                "the NVENC driver has no {} entry point",
                stringify!($name)
            ))
        })?
    };
}

/// An open NVENC encode session on a CUDA context. Dropping it destroys the encoder (buffers
/// hold an `Arc<Session>`, so they are destroyed first).
pub struct Session {
    lib: &'static NvEncLib,
    enc: *mut c_void,
    ctx: Arc<cuda::Context>,
}

// SAFETY: an NVENC session may be used from several threads (NVIDIA's own GStreamer and sample
// clients encode on one thread and lock bitstreams on another); `enc` is an opaque handle.
unsafe impl Send for Session {}
// SAFETY: as above.
unsafe impl Sync for Session {}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("enc", &self.enc).finish()
    }
}

/// What `nvEncEncodePicture` answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeStatus {
    /// `NV_ENC_SUCCESS`: every pending output buffer becomes available, in submission order.
    Success,
    /// `NV_ENC_ERR_NEED_MORE_INPUT`: the frame was buffered for B-frame reordering.
    NeedMoreInput,
}

/// Result of locking a bitstream buffer.
#[derive(Debug, Clone, Copy)]
pub struct LockedInfo {
    pub output_timestamp: u64,
    pub output_duration: u64,
    pub picture_type: u32,
    pub frame_avg_qp: u32,
    pub frame_idx: u32,
    /// `ltrFrame`: the picture was marked as a long-term reference, as `ltr_frame_idx`.
    pub ltr_frame: bool,
    pub ltr_frame_idx: u32,
}

impl Session {
    /// Opens a session on `ctx` with the negotiated API (`nvEncOpenEncodeSessionEx`).
    /// `NV_ENC_ERR_UNSUPPORTED_DEVICE` and `NV_ENC_ERR_NO_ENCODE_DEVICE` become
    /// [`NvEncError::NoNvenc`] naming the GPU.
    pub fn open(ctx: Arc<cuda::Context>) -> Result<Arc<Session>, NvEncError> {
        let lib = load()?;
        let open = entry!(lib, nvEncOpenEncodeSessionEx);
        let mut p = boxed_zeroed::<ffi::NV_ENC_OPEN_ENCODE_SESSION_EX_PARAMS>();
        p.version = lib.api.versions().open_session;
        p.deviceType = ffi::NV_ENC_DEVICE_TYPE_CUDA;
        p.device = ctx.as_raw();
        p.apiVersion = lib.api.versions().api;
        let mut enc: *mut c_void = std::ptr::null_mut();
        let st = {
            let _guard = ctx.push()?;
            // SAFETY: `p` is a valid, versioned OPEN_ENCODE_SESSION_EX_PARAMS; `enc` a valid out
            // pointer; the CUDA context outlives the session (held in `Session::ctx`).
            unsafe { open(&mut *p, &mut enc) }
        };
        if st != ffi::NV_ENC_SUCCESS {
            let gpu = ctx.device().name().unwrap_or_else(|_| "unknown".into());
            if let (false, Some(destroy)) = (enc.is_null(), lib.fl.nvEncDestroyEncoder) {
                // SAFETY: a handle returned by a failed open is released as the header asks.
                unsafe { destroy(enc) };
            }
            let detail = format!(
                "nvEncOpenEncodeSessionEx: {} ({st}), NVENC API {}",
                status_name(st),
                lib.api.name()
            );
            return Err(
                if st == ffi::NV_ENC_ERR_UNSUPPORTED_DEVICE
                    || st == ffi::NV_ENC_ERR_NO_ENCODE_DEVICE
                {
                    NvEncError::NoNvenc { gpu, detail }
                } else {
                    NvEncError::Call {
                        call: "nvEncOpenEncodeSessionEx",
                        code: st,
                        name: status_name(st),
                        detail: format!(
                            " on GPU \"{gpu}\" with NVENC API {}{}",
                            lib.api.name(),
                            if st == ffi::NV_ENC_ERR_OUT_OF_MEMORY {
                                // What GeForce drivers answer over their concurrent-session cap.
                                "; the GPU's limit of concurrent encode sessions (all processes) may be reached"
                            } else {
                                ""
                            }
                        ),
                    }
                },
            );
        }
        Ok(Arc::new(Session { lib, enc, ctx }))
    }

    /// The negotiated API version.
    pub fn api(&self) -> ApiVersion {
        self.lib.api
    }

    /// The CUDA context of the session.
    pub fn context(&self) -> &Arc<cuda::Context> {
        &self.ctx
    }

    fn check(&self, call: &'static str, st: NVENCSTATUS) -> Result<(), NvEncError> {
        if st == ffi::NV_ENC_SUCCESS {
            return Ok(());
        }
        let mut detail = String::new();
        if let Some(f) = self.lib.fl.nvEncGetLastErrorString {
            // SAFETY: `enc` is a live session; the driver returns a NUL-terminated string it
            // owns (or NULL), which we copy at once.
            let p = unsafe { f(self.enc) };
            if !p.is_null() {
                // SAFETY: non-NULL, NUL-terminated per the API.
                let s = unsafe { CStr::from_ptr(p) }.to_string_lossy();
                if !s.is_empty() {
                    detail = format!(": {s}");
                }
            }
        }
        Err(NvEncError::Call {
            call,
            code: st,
            name: status_name(st),
            detail,
        })
    }

    /// Codec GUIDs the GPU can encode (`nvEncGetEncodeGUIDs`).
    pub fn encode_guids(&self) -> Result<Vec<GUID>, NvEncError> {
        let count_f = entry!(self.lib, nvEncGetEncodeGUIDCount);
        let get_f = entry!(self.lib, nvEncGetEncodeGUIDs);
        let mut n = 0u32;
        // SAFETY: live session, valid out pointer.
        self.check("nvEncGetEncodeGUIDCount", unsafe {
            count_f(self.enc, &mut n)
        })?;
        let mut v = vec![GUID::default(); n as usize];
        let mut got = 0u32;
        // SAFETY: `v` has room for `n` GUIDs, as the call is told.
        self.check("nvEncGetEncodeGUIDs", unsafe {
            get_f(self.enc, v.as_mut_ptr(), n, &mut got)
        })?;
        v.truncate(got.min(n) as usize);
        Ok(v)
    }

    /// Profile GUIDs the GPU encodes `codec` with (`nvEncGetEncodeProfileGUIDs`).
    pub fn profile_guids(&self, codec: GUID) -> Result<Vec<GUID>, NvEncError> {
        let count_f = entry!(self.lib, nvEncGetEncodeProfileGUIDCount);
        let get_f = entry!(self.lib, nvEncGetEncodeProfileGUIDs);
        let mut n = 0u32;
        // SAFETY: live session, valid out pointer.
        self.check("nvEncGetEncodeProfileGUIDCount", unsafe {
            count_f(self.enc, codec, &mut n)
        })?;
        let mut v = vec![GUID::default(); n as usize];
        let mut got = 0u32;
        // SAFETY: `v` has room for `n` GUIDs, as the call is told.
        self.check("nvEncGetEncodeProfileGUIDs", unsafe {
            get_f(self.enc, codec, v.as_mut_ptr(), n, &mut got)
        })?;
        v.truncate(got.min(n) as usize);
        Ok(v)
    }

    /// One capability value (`nvEncGetEncodeCaps`).
    pub fn caps(&self, codec: GUID, cap: u32) -> Result<i32, NvEncError> {
        let f = entry!(self.lib, nvEncGetEncodeCaps);
        let mut p = boxed_zeroed::<ffi::NV_ENC_CAPS_PARAM>();
        p.version = self.lib.api.versions().caps_param;
        p.capsToQuery = cap;
        let mut val = 0i32;
        // SAFETY: versioned caps param and valid out pointer.
        self.check("nvEncGetEncodeCaps", unsafe {
            f(self.enc, codec, &mut *p, &mut val)
        })?;
        Ok(val)
    }

    /// Input buffer formats for a codec (`nvEncGetInputFormats`).
    pub fn input_formats(&self, codec: GUID) -> Result<Vec<u32>, NvEncError> {
        let count_f = entry!(self.lib, nvEncGetInputFormatCount);
        let get_f = entry!(self.lib, nvEncGetInputFormats);
        let mut n = 0u32;
        // SAFETY: live session, valid out pointer.
        self.check("nvEncGetInputFormatCount", unsafe {
            count_f(self.enc, codec, &mut n)
        })?;
        let mut v = vec![0u32; n as usize];
        let mut got = 0u32;
        // SAFETY: `v` has room for `n` formats.
        self.check("nvEncGetInputFormats", unsafe {
            get_f(self.enc, codec, v.as_mut_ptr(), n, &mut got)
        })?;
        v.truncate(got.min(n) as usize);
        Ok(v)
    }

    /// The driver's preset configuration (`nvEncGetEncodePresetConfigEx`), the base every
    /// encoder config is derived from.
    pub fn preset_config(
        &self,
        codec: GUID,
        preset: GUID,
        tuning: u32,
    ) -> Result<Box<ffi::NV_ENC_PRESET_CONFIG>, NvEncError> {
        let f = entry!(self.lib, nvEncGetEncodePresetConfigEx);
        let mut p = boxed_zeroed::<ffi::NV_ENC_PRESET_CONFIG>();
        p.version = self.lib.api.versions().preset_config;
        p.presetCfg.version = self.lib.api.versions().config;
        // SAFETY: a zeroed, versioned 5128-byte PRESET_CONFIG (size proven against the tables).
        self.check("nvEncGetEncodePresetConfigEx", unsafe {
            f(self.enc, codec, preset, tuning, &mut *p)
        })?;
        Ok(p)
    }

    /// `nvEncInitializeEncoder`. `params.encodeConfig` must point to a config that lives for
    /// the call; `version` fields are stamped here.
    pub fn initialize(
        &self,
        params: &mut ffi::NV_ENC_INITIALIZE_PARAMS,
        config: &mut ffi::NV_ENC_CONFIG,
    ) -> Result<(), NvEncError> {
        let f = entry!(self.lib, nvEncInitializeEncoder);
        params.version = self.lib.api.versions().initialize;
        config.version = self.lib.api.versions().config;
        params.encodeConfig = config;
        let _g = self.ctx.push()?;
        // SAFETY: `params` (sized for every SDK, proven) and `config` are valid for the call.
        let st = unsafe { f(self.enc, params) };
        params.encodeConfig = std::ptr::null_mut();
        self.check("nvEncInitializeEncoder", st)
    }

    /// `nvEncReconfigureEncoder` with the session's `params`/`config`, changed. With
    /// `reset_encoder == false` and `force_idr == false` (a rate change) the stream goes on
    /// without a new IDR. The struct is laid out for the negotiated API (see
    /// `ffi::RECONFIGURE_INIT_OFFSET`).
    pub fn reconfigure(
        &self,
        params: &mut ffi::NV_ENC_INITIALIZE_PARAMS,
        config: &mut ffi::NV_ENC_CONFIG,
        reset_encoder: bool,
        force_idr: bool,
    ) -> Result<(), NvEncError> {
        let f = entry!(self.lib, nvEncReconfigureEncoder);
        let v = self.lib.api.versions();
        params.version = v.initialize;
        config.version = v.config;
        params.encodeConfig = config;
        let (init_size, reset_bf, idr_bf) = match self.lib.api {
            ApiVersion::V12_1 => (
                ffi::INITIALIZE_PARAMS_SIZE_12_1,
                ffi::RECONF_RESET_ENCODER_12_1,
                ffi::RECONF_FORCE_IDR_12_1,
            ),
            ApiVersion::V12_2 | ApiVersion::V13_0 => (
                ffi::INITIALIZE_PARAMS_SIZE_13_0,
                ffi::RECONF_RESET_ENCODER,
                ffi::RECONF_FORCE_IDR,
            ),
        };
        // u64 words: 8-byte alignment for the pointers inside the embedded struct.
        let mut buf = vec![0u64; ffi::RECONFIGURE_PARAMS_ALLOC.div_ceil(8)];
        let base = buf.as_mut_ptr().cast::<u8>();
        // SAFETY: `buf` holds RECONFIGURE_PARAMS_ALLOC bytes (the largest SDK size); the
        // version word is at 0, the embedded INITIALIZE_PARAMS (`init_size` bytes, no more than
        // `params` has, proven in ffi) at RECONFIGURE_INIT_OFFSET, and the flag word at the
        // proven bitfield offset, all inside it.
        unsafe {
            base.cast::<u32>().write(v.reconfigure);
            std::ptr::copy_nonoverlapping(
                (params as *const ffi::NV_ENC_INITIALIZE_PARAMS).cast::<u8>(),
                base.add(ffi::RECONFIGURE_INIT_OFFSET),
                init_size,
            );
            let word = base.add(reset_bf.word_offset).cast::<u32>();
            let w = reset_bf.set(word.read_unaligned(), reset_encoder as u32);
            word.write_unaligned(idr_bf.set(w, force_idr as u32));
        }
        let _g = self.ctx.push()?;
        // SAFETY: a versioned RECONFIGURE_PARAMS for this API, whose embedded config pointer
        // (`config`) is valid for the call.
        let st = unsafe { f(self.enc, base.cast()) };
        params.encodeConfig = std::ptr::null_mut();
        self.check("nvEncReconfigureEncoder", st)
    }

    /// `nvEncGetSequenceParams`: the codec headers (H.265 VPS/SPS/PPS in Annex B, AV1 sequence
    /// header OBU).
    pub fn sequence_params(&self) -> Result<Vec<u8>, NvEncError> {
        let f = entry!(self.lib, nvEncGetSequenceParams);
        let mut buf = vec![0u8; 1024];
        let mut out_size = 0u32;
        let mut p = boxed_zeroed::<ffi::NV_ENC_SEQUENCE_PARAM_PAYLOAD>();
        p.version = self.lib.api.versions().sequence_param_payload;
        p.inBufferSize = buf.len() as u32;
        p.spsppsBuffer = buf.as_mut_ptr().cast();
        p.outSPSPPSPayloadSize = &mut out_size;
        let _g = self.ctx.push()?;
        // SAFETY: the buffer and size pointer are valid for the call; the size is stated.
        self.check("nvEncGetSequenceParams", unsafe { f(self.enc, &mut *p) })?;
        buf.truncate((out_size as usize).min(1024));
        Ok(buf)
    }

    /// Sends end of stream: every pending frame is encoded and its buffer becomes lockable.
    pub fn send_eos(&self) -> Result<(), NvEncError> {
        let f = entry!(self.lib, nvEncEncodePicture);
        let mut p = boxed_zeroed::<ffi::NV_ENC_PIC_PARAMS>();
        p.version = self.lib.api.versions().pic_params;
        p.encodePicFlags = ffi::NV_ENC_PIC_FLAG_EOS;
        let _g = self.ctx.push()?;
        // SAFETY: a versioned PIC_PARAMS carrying only the EOS flag, as the API specifies.
        self.check("nvEncEncodePicture(EOS)", unsafe { f(self.enc, &mut *p) })
    }

    /// `nvEncEncodePicture` of one input buffer into one bitstream buffer.
    /// `NV_ENC_ERR_ENCODER_BUSY` is retried for about 100 ms as the header asks.
    /// `pic.inputWidth/inputHeight`: the encode size where the caller set it (a buffer made
    /// for `maxEncodeWidth/Height` holding a smaller picture), else the buffer's size.
    pub fn encode_picture(
        &self,
        input: &InputBuffer,
        output: &BitstreamBuffer,
        pic: &mut ffi::NV_ENC_PIC_PARAMS,
    ) -> Result<EncodeStatus, NvEncError> {
        pic.inputBuffer = input.ptr;
        pic.bufferFmt = input.format;
        if pic.inputWidth == 0 || pic.inputHeight == 0 {
            pic.inputWidth = input.width;
            pic.inputHeight = input.height;
        }
        pic.inputPitch = input.pitch;
        self.encode(output, pic)
    }

    /// `nvEncEncodePicture` of a mapped external resource (CUDA device memory).
    pub fn encode_mapped(
        &self,
        input: &MappedResource,
        output: &BitstreamBuffer,
        pic: &mut ffi::NV_ENC_PIC_PARAMS,
    ) -> Result<EncodeStatus, NvEncError> {
        let r = &input.resource;
        pic.inputBuffer = input.ptr;
        pic.bufferFmt = input.format;
        pic.inputWidth = r.width;
        pic.inputHeight = r.height;
        pic.inputPitch = r.pitch;
        self.encode(output, pic)
    }

    fn encode(
        &self,
        output: &BitstreamBuffer,
        pic: &mut ffi::NV_ENC_PIC_PARAMS,
    ) -> Result<EncodeStatus, NvEncError> {
        let f = entry!(self.lib, nvEncEncodePicture);
        pic.version = self.lib.api.versions().pic_params;
        pic.outputBitstream = output.ptr;
        pic.pictureStruct = ffi::NV_ENC_PIC_STRUCT_FRAME;
        let _g = self.ctx.push()?;
        // NV_ENC_ERR_ENCODER_BUSY: the header asks the client to call again after a few
        // milliseconds. Retry for up to about 100 ms, then report it.
        let mut st;
        let mut tries = 0;
        loop {
            // SAFETY: `pic` is versioned and refers to buffers of this session that are alive
            // (borrowed for the call; the caller keeps them until the bitstream is locked).
            st = unsafe { f(self.enc, pic) };
            if st != ffi::NV_ENC_ERR_ENCODER_BUSY || tries == ENCODER_BUSY_RETRIES {
                break;
            }
            tries += 1;
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        if st == ffi::NV_ENC_ERR_NEED_MORE_INPUT {
            return Ok(EncodeStatus::NeedMoreInput);
        }
        self.check("nvEncEncodePicture", st)?;
        Ok(EncodeStatus::Success)
    }

    /// Locks `output` (blocking until the encoder has written it), hands the bitstream to `f`,
    /// then unlocks it. Errors: a failed lock or unlock (after a failed unlock the buffer is
    /// never locked nor destroyed again: `nvEncDestroyEncoder` frees it), or a buffer an
    /// earlier unlock left locked.
    pub fn with_locked_bitstream<R>(
        &self,
        output: &BitstreamBuffer,
        f: impl FnOnce(&LockedInfo, &[u8]) -> R,
    ) -> Result<R, NvEncError> {
        let lock = entry!(self.lib, nvEncLockBitstream);
        let unlock = entry!(self.lib, nvEncUnlockBitstream);
        if output.left_locked.load(Ordering::Acquire) {
            return Err(NvEncError::Other(
                "the bitstream buffer was left locked by a failed nvEncUnlockBitstream".into(),
            ));
        }
        // On the stack: no allocation per frame.
        let mut p = ffi::zeroed::<ffi::NV_ENC_LOCK_BITSTREAM>();
        p.version = self.lib.api.versions().lock_bitstream;
        p.outputBitstream = output.ptr;
        let _g = self.ctx.push()?;
        // SAFETY: versioned LOCK_BITSTREAM sized for every SDK (1552 bytes), buffer of this
        // session.
        self.check("nvEncLockBitstream", unsafe { lock(self.enc, &mut p) })?;
        let info = LockedInfo {
            output_timestamp: p.outputTimeStamp,
            output_duration: p.outputDuration,
            picture_type: p.pictureType,
            frame_avg_qp: p.frameAvgQP,
            frame_idx: p.frameIdx,
            ltr_frame: ffi::LOCK_LTR_FRAME.get(p.flags) != 0,
            ltr_frame_idx: p.ltrFrameIdx,
        };
        let data: &[u8] = if p.bitstreamBufferPtr.is_null() || p.bitstreamSizeInBytes == 0 {
            &[]
        } else {
            // SAFETY: while locked, the driver guarantees `bitstreamSizeInBytes` readable bytes
            // at `bitstreamBufferPtr`; the slice does not outlive the unlock below.
            unsafe {
                std::slice::from_raw_parts(
                    p.bitstreamBufferPtr as *const u8,
                    p.bitstreamSizeInBytes as usize,
                )
            }
        };
        let r = f(&info, data);
        // SAFETY: unlocking the buffer locked above; `data` is no longer used.
        let st = unsafe { unlock(self.enc, output.ptr) };
        if st != ffi::NV_ENC_SUCCESS {
            output.left_locked.store(true, Ordering::Release);
        }
        self.check("nvEncUnlockBitstream", st)?;
        Ok(r)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(destroy) = self.lib.fl.nvEncDestroyEncoder {
            let _g = self.ctx.push();
            // SAFETY: the last reference to the session: every buffer holds an Arc<Session>, so
            // all of them have been destroyed already.
            unsafe { destroy(self.enc) };
        }
    }
}

/// Bytes per row unit and plane layout of an NVENC input buffer format: returns the size of
/// the whole surface for `pitch` and `height` (planes at `pitch * height` steps).
pub fn surface_size(format: u32, pitch: usize, height: usize) -> usize {
    match format {
        ffi::NV_ENC_BUFFER_FORMAT_NV12 | ffi::NV_ENC_BUFFER_FORMAT_YUV420_10BIT => {
            pitch * height + pitch * height.div_ceil(2)
        }
        ffi::NV_ENC_BUFFER_FORMAT_YUV444 | ffi::NV_ENC_BUFFER_FORMAT_YUV444_10BIT => {
            pitch * height * 3
        }
        // Chroma planes at half the pitch (formats::surface_planes).
        ffi::NV_ENC_BUFFER_FORMAT_IYUV | ffi::NV_ENC_BUFFER_FORMAT_YV12 => {
            pitch * height + 2 * (pitch / 2) * height.div_ceil(2)
        }
        _ => pitch * height,
    }
}

/// An NVENC input surface in system memory (`nvEncCreateInputBuffer`).
pub struct InputBuffer {
    session: Arc<Session>,
    ptr: ffi::NV_ENC_INPUT_PTR,
    pub format: u32,
    pub width: u32,
    pub height: u32,
    pitch: u32,
}

// SAFETY: the handle is only used through the session, which is Send + Sync; the ring hands a
// buffer to one thread at a time.
unsafe impl Send for InputBuffer {}
// SAFETY: as above.
unsafe impl Sync for InputBuffer {}

impl InputBuffer {
    /// Creates a `width` x `height` surface of NVENC buffer format `format`.
    pub fn new(
        session: &Arc<Session>,
        width: u32,
        height: u32,
        format: u32,
    ) -> Result<InputBuffer, NvEncError> {
        let f = entry!(session.lib, nvEncCreateInputBuffer);
        let mut p = boxed_zeroed::<ffi::NV_ENC_CREATE_INPUT_BUFFER>();
        p.version = session.lib.api.versions().create_input;
        p.width = width;
        p.height = height;
        p.memoryHeap = ffi::NV_ENC_MEMORY_HEAP_AUTOSELECT;
        p.bufferFmt = format;
        let _g = session.ctx.push()?;
        // SAFETY: versioned CREATE_INPUT_BUFFER of the proven size.
        session.check("nvEncCreateInputBuffer", unsafe { f(session.enc, &mut *p) })?;
        Ok(InputBuffer {
            session: session.clone(),
            ptr: p.inputBuffer,
            format,
            width,
            height,
            pitch: 0,
        })
    }

    /// Locks the surface, lets `fill` write it (`data`: the whole surface, planes at
    /// `pitch * height` steps; `pitch` in bytes), then unlocks it.
    pub fn write<R>(&mut self, fill: impl FnOnce(&mut [u8], usize) -> R) -> Result<R, NvEncError> {
        let s = &self.session;
        let lock = entry!(s.lib, nvEncLockInputBuffer);
        let unlock = entry!(s.lib, nvEncUnlockInputBuffer);
        let mut p = boxed_zeroed::<ffi::NV_ENC_LOCK_INPUT_BUFFER>();
        p.version = s.lib.api.versions().lock_input;
        p.inputBuffer = self.ptr;
        let _g = s.ctx.push()?;
        // SAFETY: versioned LOCK_INPUT_BUFFER for a live input buffer of this session.
        s.check("nvEncLockInputBuffer", unsafe { lock(s.enc, &mut *p) })?;
        let pitch = p.pitch as usize;
        let len = surface_size(self.format, pitch, self.height as usize);
        if p.bufferDataPtr.is_null() || pitch == 0 {
            // SAFETY: unlocking what was locked above.
            unsafe { unlock(s.enc, self.ptr) };
            return Err(NvEncError::Other(
                "nvEncLockInputBuffer returned no buffer".into(),
            ));
        }
        // SAFETY: while locked, the driver gives exclusive access to the surface, which holds
        // `height` rows of `pitch` bytes per plane in the layout of `format`; the slice is
        // dropped before the unlock.
        let data = unsafe { std::slice::from_raw_parts_mut(p.bufferDataPtr as *mut u8, len) };
        let r = fill(data, pitch);
        self.pitch = pitch as u32;
        // SAFETY: unlocking the buffer locked above; `data` is no longer used.
        s.check("nvEncUnlockInputBuffer", unsafe { unlock(s.enc, self.ptr) })?;
        Ok(r)
    }
}

impl Drop for InputBuffer {
    fn drop(&mut self) {
        if let Some(f) = self.session.lib.fl.nvEncDestroyInputBuffer {
            let _g = self.session.ctx.push();
            // SAFETY: destroying a buffer created by this session, once.
            unsafe { f(self.session.enc, self.ptr) };
        }
    }
}

/// CUDA device memory registered with NVENC (`nvEncRegisterResource`,
/// `NV_ENC_INPUT_RESOURCE_TYPE_CUDADEVICEPTR`); unregistered on drop. The memory must outlive
/// it and stay unchanged while a picture made from it is being encoded.
pub struct RegisteredResource {
    session: Arc<Session>,
    ptr: ffi::NV_ENC_REGISTERED_PTR,
    pub format: u32,
    pub width: u32,
    pub height: u32,
    pub pitch: u32,
    /// An `nvEncUnmapInputResource` of it failed: NVENC may still hold it mapped, so it is
    /// never mapped again (mapping a mapped resource breaks the API's contract);
    /// unregistering it is allowed and unmaps it.
    left_mapped: AtomicBool,
}

// SAFETY: the handle is only used through the session, which is Send + Sync.
unsafe impl Send for RegisteredResource {}
// SAFETY: as above; mapping takes `&self` and NVENC serialises calls on a session.
unsafe impl Sync for RegisteredResource {}

impl RegisteredResource {
    /// Registers `devptr` (a `width` x `height` picture of NVENC `format`, rows `pitch` bytes
    /// apart, planes contiguous as in NVENC's own input buffers).
    pub fn cuda(
        session: &Arc<Session>,
        devptr: u64,
        format: u32,
        width: u32,
        height: u32,
        pitch: u32,
    ) -> Result<RegisteredResource, NvEncError> {
        let f = entry!(session.lib, nvEncRegisterResource);
        let mut p = boxed_zeroed::<ffi::NV_ENC_REGISTER_RESOURCE>();
        p.version = session.lib.api.versions().register_resource;
        p.resourceType = ffi::NV_ENC_INPUT_RESOURCE_TYPE_CUDADEVICEPTR;
        p.width = width;
        p.height = height;
        p.pitch = pitch;
        p.resourceToRegister = devptr as *mut c_void;
        p.bufferFormat = format;
        p.bufferUsage = ffi::NV_ENC_INPUT_IMAGE;
        let _g = session.ctx.push()?;
        // SAFETY: versioned REGISTER_RESOURCE of the proven size; the device pointer belongs
        // to the session's context (the caller's contract).
        session.check("nvEncRegisterResource", unsafe { f(session.enc, &mut *p) })?;
        Ok(RegisteredResource {
            session: session.clone(),
            ptr: p.registeredResource,
            format,
            width,
            height,
            pitch,
            left_mapped: AtomicBool::new(false),
        })
    }

    /// Whether a failed `nvEncUnmapInputResource` left it mapped: then [`Self::map`] refuses,
    /// and the owner should register the memory anew.
    pub fn left_mapped(&self) -> bool {
        self.left_mapped.load(Ordering::Acquire)
    }

    /// `nvEncMapInputResource`: the picture as an NVENC input, until the guard drops. Errors:
    /// the call's status, or [`NvEncError::Other`] without a call if an earlier unmap failed
    /// ([`Self::left_mapped`]).
    pub fn map(self: &Arc<Self>) -> Result<MappedResource, NvEncError> {
        if self.left_mapped() {
            return Err(NvEncError::Other(
                "the registered input was left mapped by a failed nvEncUnmapInputResource".into(),
            ));
        }
        let s = &self.session;
        let f = entry!(s.lib, nvEncMapInputResource);
        // On the stack: no allocation per frame.
        let mut p = ffi::zeroed::<ffi::NV_ENC_MAP_INPUT_RESOURCE>();
        p.version = s.lib.api.versions().map_input_resource;
        p.registeredResource = self.ptr;
        let _g = s.ctx.push()?;
        // SAFETY: versioned MAP_INPUT_RESOURCE of the proven size with a live registration.
        s.check("nvEncMapInputResource", unsafe { f(s.enc, &mut p) })?;
        Ok(MappedResource {
            resource: self.clone(),
            ptr: p.mappedResource,
            format: p.mappedBufferFmt,
        })
    }
}

impl Drop for RegisteredResource {
    fn drop(&mut self) {
        if let Some(f) = self.session.lib.fl.nvEncUnregisterResource {
            let _g = self.session.ctx.push();
            // SAFETY: a registration of this live session, released once.
            unsafe { f(self.session.enc, self.ptr) };
        }
    }
}

/// A mapped [`RegisteredResource`]; unmapped on drop (after the bitstream of every picture
/// encoded from it is locked, as the API requires).
pub struct MappedResource {
    resource: Arc<RegisteredResource>,
    ptr: ffi::NV_ENC_INPUT_PTR,
    pub format: u32,
}

// SAFETY: as RegisteredResource: the handle is used only through the (Send + Sync) session.
unsafe impl Send for MappedResource {}

impl Drop for MappedResource {
    fn drop(&mut self) {
        let s = &self.resource.session;
        if let Some(f) = s.lib.fl.nvEncUnmapInputResource {
            let _g = s.ctx.push();
            // SAFETY: a mapping of this live session, released once.
            let st = unsafe { f(s.enc, self.ptr) };
            if st != ffi::NV_ENC_SUCCESS {
                self.resource.left_mapped.store(true, Ordering::Release);
            }
        }
    }
}

/// An NVENC bitstream (output) buffer (`nvEncCreateBitstreamBuffer`).
pub struct BitstreamBuffer {
    session: Arc<Session>,
    ptr: ffi::NV_ENC_OUTPUT_PTR,
    /// An `nvEncUnlockBitstream` of it failed: NVENC may still hold it locked, so it is
    /// neither locked again nor destroyed (destroying a locked buffer breaks the API's
    /// contract); `nvEncDestroyEncoder` frees it with the session.
    left_locked: AtomicBool,
}

// SAFETY: see InputBuffer.
unsafe impl Send for BitstreamBuffer {}
// SAFETY: see InputBuffer.
unsafe impl Sync for BitstreamBuffer {}

impl BitstreamBuffer {
    pub fn new(session: &Arc<Session>) -> Result<BitstreamBuffer, NvEncError> {
        let f = entry!(session.lib, nvEncCreateBitstreamBuffer);
        let mut p = boxed_zeroed::<ffi::NV_ENC_CREATE_BITSTREAM_BUFFER>();
        p.version = session.lib.api.versions().create_bitstream;
        let _g = session.ctx.push()?;
        // SAFETY: versioned CREATE_BITSTREAM_BUFFER of the proven size.
        session.check("nvEncCreateBitstreamBuffer", unsafe {
            f(session.enc, &mut *p)
        })?;
        Ok(BitstreamBuffer {
            session: session.clone(),
            ptr: p.bitstreamBuffer,
            left_locked: AtomicBool::new(false),
        })
    }
}

impl Drop for BitstreamBuffer {
    fn drop(&mut self) {
        if self.left_locked.load(Ordering::Acquire) {
            return;
        }
        if let Some(f) = self.session.lib.fl.nvEncDestroyBitstreamBuffer {
            let _g = self.session.ctx.push();
            // SAFETY: destroying a buffer created by this session, once.
            unsafe { f(self.session.enc, self.ptr) };
        }
    }
}

/// Sets the input and output bit depth in a codec config, as the negotiated API wants it:
/// the `inputBitDepth`/`outputBitDepth` enums from 12.2, the `pixelBitDepthMinus8` bitfields
/// before.
pub fn set_bit_depth(api: ApiVersion, codec: Codec, cfg: &mut ffi::NV_ENC_CONFIG, depth: u32) {
    match codec {
        Codec::H264 => {
            // High 10 exists from SDK 13.0 (its profile GUID); the bit depth fields from 12.2.
            // Before that there is no 10-bit H.264 to ask for.
            if api.has_bit_depth_enums() {
                // SAFETY: union access; the config was obtained for H.264, and the member
                // holds plain integers and pointers, so any bits are a valid value.
                let h = unsafe { &mut cfg.encodeCodecConfig.h264Config };
                h.inputBitDepth = depth;
                h.outputBitDepth = depth;
            }
        }
        Codec::Hevc => {
            // SAFETY: union access; the config was obtained for `codec`, and the member holds
            // plain integers and pointers, so any bits are a valid value.
            let h = unsafe { &mut cfg.encodeCodecConfig.hevcConfig };
            if api.has_bit_depth_enums() {
                h.inputBitDepth = depth;
                h.outputBitDepth = depth;
            } else {
                h.flags = ffi::HEVC_PIXEL_BIT_DEPTH_MINUS8_12_1.set(h.flags, depth - 8);
            }
        }
        Codec::Av1 => {
            // SAFETY: as above, for the AV1 member.
            let a = unsafe { &mut cfg.encodeCodecConfig.av1Config };
            if api.has_bit_depth_enums() {
                a.inputBitDepth = depth;
                a.outputBitDepth = depth;
            } else {
                a.flags = ffi::AV1_INPUT_PIXEL_BIT_DEPTH_MINUS8_12_1.set(a.flags, depth - 8);
                a.flags = ffi::AV1_PIXEL_BIT_DEPTH_MINUS8_12_1.set(a.flags, depth - 8);
            }
        }
    }
}

/// Codecs of this plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    H264,
    Hevc,
    Av1,
}

/// How many times `encode_picture` calls again on NV_ENC_ERR_ENCODER_BUSY, 2 ms apart.
const ENCODER_BUSY_RETRIES: u32 = 50;

impl Codec {
    pub fn guid(self) -> GUID {
        match self {
            Codec::H264 => ffi::NV_ENC_CODEC_H264_GUID,
            Codec::Hevc => ffi::NV_ENC_CODEC_HEVC_GUID,
            Codec::Av1 => ffi::NV_ENC_CODEC_AV1_GUID,
        }
    }
}

impl std::fmt::Display for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Codec::H264 => "H.264",
            Codec::Hevc => "H.265",
            Codec::Av1 => "AV1",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session on CUDA device 0, or `None` (after saying why) where no NVENC library (real or
    /// the emulator, first in LD_LIBRARY_PATH as `scripts/test` sets it) can be used.
    fn session() -> Option<Arc<Session>> {
        if let Err(e) = load() {
            eprintln!("skipping: {e}");
            return None;
        }
        if cuda::init().is_err() || cuda::device_count().unwrap_or(0) == 0 {
            eprintln!("skipping: no CUDA device");
            return None;
        }
        let dev = cuda::Device::new(0).ok()?;
        let ctx = Arc::new(cuda::Context::new(&dev).ok()?);
        match Session::open(ctx) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("skipping: {e}");
                None
            }
        }
    }

    /// CUDA device memory registered with NVENC, mapped and encoded (H.265, constqp 10):
    /// every picture comes out, and FFmpeg decodes it back to the uploaded luma.
    #[test]
    fn encode_from_registered_cuda_memory() {
        let Some(s) = session() else { return };
        let (w, h) = (320u32, 240u32);
        let codec = Codec::Hevc.guid();
        let preset = s
            .preset_config(
                codec,
                ffi::NV_ENC_PRESET_P4_GUID,
                ffi::NV_ENC_TUNING_INFO_HIGH_QUALITY,
            )
            .expect("preset");
        let mut cfg: Box<ffi::NV_ENC_CONFIG> = boxed_zeroed();
        *cfg = preset.presetCfg;
        cfg.gopLength = 30;
        cfg.frameIntervalP = 1;
        cfg.rcParams.rateControlMode = ffi::NV_ENC_PARAMS_RC_CONSTQP;
        cfg.rcParams.constQP = ffi::NV_ENC_QP {
            qpIntra: 10,
            qpInterP: 10,
            qpInterB: 10,
        };
        let mut init: Box<ffi::NV_ENC_INITIALIZE_PARAMS> = boxed_zeroed();
        init.encodeGUID = codec;
        init.presetGUID = ffi::NV_ENC_PRESET_P4_GUID;
        init.tuningInfo = ffi::NV_ENC_TUNING_INFO_HIGH_QUALITY;
        (init.encodeWidth, init.encodeHeight) = (w, h);
        (init.maxEncodeWidth, init.maxEncodeHeight) = (w, h);
        (init.darWidth, init.darHeight) = (4, 3);
        (init.frameRateNum, init.frameRateDen) = (25, 1);
        init.enablePTD = 1;
        init.bufferFormat = ffi::NV_ENC_BUFFER_FORMAT_NV12;
        s.initialize(&mut init, &mut cfg).expect("initialize");

        // One NV12 picture in pitched device memory: luma rows, then chroma rows.
        let rows = (h + h / 2) as usize;
        let mut dev = cuda::DevicePitched::new(s.context(), w as usize, rows).expect("alloc");
        let pitch = dev.pitch();
        let mut host = vec![128u8; w as usize * rows];
        for y in 0..h as usize {
            for x in 0..w as usize {
                host[y * w as usize + x] = (16 + (x + 2 * y) % 200) as u8;
            }
        }
        dev.upload(&host, w as usize, w as usize, rows, None)
            .expect("upload");
        let reg = Arc::new(
            RegisteredResource::cuda(
                &s,
                dev.as_raw(),
                ffi::NV_ENC_BUFFER_FORMAT_NV12,
                w,
                h,
                pitch as u32,
            )
            .expect("register"),
        );
        let outs: Vec<BitstreamBuffer> =
            (0..3).map(|_| BitstreamBuffer::new(&s).unwrap()).collect();
        let mut stream = Vec::new();
        for (i, out) in outs.iter().enumerate() {
            let mapped = reg.map().expect("map");
            let mut pic: Box<ffi::NV_ENC_PIC_PARAMS> = boxed_zeroed();
            pic.inputTimeStamp = i as u64;
            let st = s.encode_mapped(&mapped, out, &mut pic).expect("encode");
            assert!(matches!(st, EncodeStatus::Success));
            s.with_locked_bitstream(out, |info, data| {
                assert_eq!(info.output_timestamp, i as u64);
                stream.extend_from_slice(data);
            })
            .expect("lock");
            drop(mapped);
        }
        s.send_eos().expect("eos");
        drop(reg);

        let dir = std::env::temp_dir().join(format!("rsnvenc-reg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("out.hevc");
        std::fs::write(&file, &stream).unwrap();
        let o = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-f", "hevc", "-i"])
            .arg(&file)
            .args(["-f", "rawvideo", "-pix_fmt", "yuv420p", "-"])
            .output()
            .expect("run ffmpeg");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let frame = (w * h) as usize;
        assert_eq!(o.stdout.len(), 3 * frame * 3 / 2, "three pictures decoded");
        let luma = &host[..frame];
        for f in o.stdout.chunks(frame * 3 / 2) {
            let f = &f[..frame];
            let mse: f64 = f
                .iter()
                .zip(luma)
                .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
                .sum::<f64>()
                / frame as f64;
            let psnr = 10.0 * (255.0f64 * 255.0 / mse.max(1e-9)).log10();
            assert!(psnr > 40.0, "luma PSNR {psnr:.1} dB");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
