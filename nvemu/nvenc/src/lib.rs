//! `libnvidia-encode.so.1` stand-in: the NVENC API (Video Codec SDK 11.1 .. 13.0) over a
//! software encoder, enforcing the API contract that real clients rely on.
//!
//! Entry points: [`NvEncodeAPIGetMaxSupportedVersion`] and [`NvEncodeAPICreateInstance`]; every
//! other function is reached through the function list. See `docs/emulator-contract.md` and
//! `shared/reference/nvenc-api-behavior.md`.
//!
//! Behaviour in short (strict choices where the real driver is unknown are marked *strict*):
//! - Structs are decoded by field name with the layout of the SDK their `version` revision
//!   belongs to (`abi::layout_for_version`): the API bytes must be the session's, the revision
//!   that SDK's or an older one (each known revision uses the layout of the SDK that defined
//!   it, 11.1 revisions the 11.1 layout; unknown older ones the 11.1 layout); else
//!   INVALID_VERSION. Clients of API 11.1 (FFmpeg 5.1, GStreamer 1.22) are accepted under any
//!   newer reported maximum, as real drivers accept them; they get no AV1 (11.1 has none).
//! - Picture types with `enablePTD=1`: IDR on the first frame, every `idrPeriod` frames, after
//!   EOS and on FORCEIDR (which first closes a pending mini-GOP: its last frame becomes P);
//!   I every `gopLength` frames and on FORCEINTRA; with `frameIntervalP = N` frames wait as
//!   future B-frames (NEED_MORE_INPUT) until the N-th, then buffers fill in submission order
//!   with pictures in coded order. `zeroReorderDelay` disables B-frames. AV1 buffers carry one
//!   shown frame each, in display order.
//! - A blocking LockBitstream waits on a condition variable. The software encoders give every
//!   released picture out at once (zero delay: libaom realtime, x265 flushed after each anchor,
//!   x264 without B-frames), except H.264 with B-frames (x264 holds n+1 more frames): when it
//!   holds the picture and no more input can come (same thread, or no EncodePicture for
//!   150 ms), it is drained (new sequence, next frame IDR; traced as `emulator_note`), which
//!   real NVENC never does.
//! - Input pixels are copied at EncodePicture time (system memory, or CUDA device memory with
//!   `cuMemcpy2D_v2` DtoH), so Unmap/Unregister before the output is locked is harmless.
//! - SEI / OBU payload arrays and API 13.0's HDR fields (`pMasteringDisplay`, `pMaxCll`) are
//!   read at EncodePicture (through `process_vm_readv`), checked (*strict* where the header is
//!   silent) and written into that picture's access unit: H.26x SEI NAL before the first
//!   slice, AV1 metadata OBUs before the frame (`payload`).
//! - H.264 `enableTimeCode`: `timeCode` is read at EncodePicture, checked (*strict* where the
//!   header is silent) and written as that picture's picture timing SEI with clock timestamps
//!   (`timecode`); the SPS has `pic_struct_present_flag` 1.
//! - With the CUDA stand-in, a CUDA input whose write is still pending on a stream not ordered
//!   before the engine's read (its input stream, else the default stream; *strict*: no
//!   implicit legacy-stream barrier) is a violation at EncodePicture, and stream-ordered memory
//!   (memory pools) cannot be registered (*strict*, as GStreamer's nvcodec found).
//! - Split-frame encoding, the lookahead level, the temporal filter and long-term references
//!   are validated by the header's rules (`sdkext`, the contract's section on them) and
//!   modelled in the caps per GPU, but not reproduced by the software encoders.

pub mod abi;
mod api;
mod caps;
#[path = "../../common/cpustats.rs"]
#[allow(dead_code)]
mod cpustats;
mod cuda;
#[path = "../../common/fault.rs"]
mod fault;
#[path = "../../common/gpus.rs"]
#[allow(dead_code)]
pub mod gpus;
mod hdr;
mod payload;
mod qpmap;
#[path = "../../common/registry.rs"]
#[allow(dead_code)]
pub mod registry;
pub mod sdkext;
mod session;
mod stats;
pub mod system;
mod timecode;
pub mod timing;
mod trace;

/// The software encoder backend.
pub(crate) use nvemu_swenc as sw;

pub use api::{NvEncodeAPICreateInstance, NvEncodeAPIGetMaxSupportedVersion};
pub use caps::{GEFORCE_SESSION_CAP, Gpu};

/// NVENCSTATUS values (identical in SDK 11.1 .. 13.0; NEED_MORE_OUTPUT from 12.1).
#[allow(dead_code)]
pub mod st {
    pub const SUCCESS: i32 = 0;
    pub const NO_ENCODE_DEVICE: i32 = 1;
    pub const UNSUPPORTED_DEVICE: i32 = 2;
    pub const INVALID_ENCODERDEVICE: i32 = 3;
    pub const INVALID_DEVICE: i32 = 4;
    pub const DEVICE_NOT_EXIST: i32 = 5;
    pub const INVALID_PTR: i32 = 6;
    pub const INVALID_EVENT: i32 = 7;
    pub const INVALID_PARAM: i32 = 8;
    pub const INVALID_CALL: i32 = 9;
    pub const OUT_OF_MEMORY: i32 = 10;
    pub const ENCODER_NOT_INITIALIZED: i32 = 11;
    pub const UNSUPPORTED_PARAM: i32 = 12;
    pub const LOCK_BUSY: i32 = 13;
    pub const NOT_ENOUGH_BUFFER: i32 = 14;
    pub const INVALID_VERSION: i32 = 15;
    pub const MAP_FAILED: i32 = 16;
    pub const NEED_MORE_INPUT: i32 = 17;
    pub const ENCODER_BUSY: i32 = 18;
    pub const EVENT_NOT_REGISTERD: i32 = 19;
    pub const GENERIC: i32 = 20;
    pub const INCOMPATIBLE_CLIENT_KEY: i32 = 21;
    pub const UNIMPLEMENTED: i32 = 22;
    pub const RESOURCE_REGISTER_FAILED: i32 = 23;
    pub const RESOURCE_NOT_REGISTERED: i32 = 24;
    pub const RESOURCE_NOT_MAPPED: i32 = 25;
    pub const NEED_MORE_OUTPUT: i32 = 26;
}
