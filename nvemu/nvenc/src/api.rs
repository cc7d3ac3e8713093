//! The C ABI: the two exported entry points and every function of the function list.
//!
//! Every function catches panics (none may cross the FFI boundary: GENERIC instead), traces
//! the call, and records the session's last error string.

use crate::abi::{self, CodecKind, Guid, SdkIdx, View};
use crate::caps::{self, Gpu};
use crate::session::{
    self, Enc, Frame, InputBuf, Lookup, Meta, OutBuf, OutState, Reg, Session, Tag,
};
use crate::st;
use crate::sw;
use crate::trace::Call;
use std::ffi::{c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

type Ptr = *mut c_void;

/// A failed call: status, message for GetLastErrorString, whether the client broke the API
/// contract (then it is traced as a violation).
struct Fail {
    status: i32,
    msg: String,
    violation: bool,
}

type R = Result<i32, Fail>;

fn fail(status: i32, msg: impl Into<String>) -> Fail {
    Fail {
        status,
        msg: msg.into(),
        violation: false,
    }
}

fn violation(status: i32, msg: impl Into<String>) -> Fail {
    Fail {
        status,
        msg: msg.into(),
        violation: true,
    }
}

fn api_name(sdk: SdkIdx) -> &'static str {
    abi::SDK_NAMES[sdk]
}

/// The API version `NVEMU_MAX_API` makes us report (`11.1` .. `13.0`; default and anything
/// else: the newest, 13.0).
fn max_sdk() -> SdkIdx {
    std::env::var("NVEMU_MAX_API")
        .ok()
        .and_then(|v| abi::sdk_by_name(&v))
        .unwrap_or(abi::NEWEST)
}

fn finish(mut call: Call, s: Option<&Session>, r: R) -> i32 {
    let status = match r {
        Ok(st) => {
            if let Some(s) = s.filter(|_| st != st::SUCCESS && st != st::NEED_MORE_INPUT) {
                s.set_error(&format!("{}: {}", call.call, abi::status_name(st)));
            }
            st
        }
        Err(f) => {
            if f.violation {
                call.violation(f.msg.clone());
            }
            if let Some(s) = s {
                s.set_error(&format!(
                    "{}: {} ({})",
                    call.call,
                    f.msg,
                    abi::status_name(f.status)
                ));
            }
            f.status
        }
    };
    call.finish(status);
    status
}

/// `NVEMU_BACKEND=null`: no software encoding (see `nvemu_swenc::SwEncoder::new`).
fn null_backend() -> bool {
    static NULL: std::sync::LazyLock<bool> =
        std::sync::LazyLock::new(|| std::env::var("NVEMU_BACKEND").is_ok_and(|v| v == "null"));
    *NULL
}

/// `NVEMU_FAULT` for an NVENC entry point.
fn fault(name: &str) -> Option<i32> {
    crate::fault::check(name, abi::status_code, st::GENERIC)
}

/// The prologue of an entry point without a session handle: traces the call under `name`,
/// applies `NVEMU_FAULT` when `faultable` (the call then does nothing), catches panics (GENERIC).
fn entry(name: &'static str, faultable: bool, f: impl FnOnce(&mut Call) -> R) -> i32 {
    crate::stats::arm();
    let _acct = crate::cpustats::Entry::enter(Some(crate::stats::cuda_thread_ns));
    catch_unwind(AssertUnwindSafe(|| {
        let mut call = Call::new(name);
        let r = match faultable.then(|| fault(name)).flatten() {
            Some(st) => {
                call.note("injected fault (NVEMU_FAULT): the call did nothing");
                Ok(st)
            }
            None => f(&mut call),
        };
        finish(call, None, r)
    }))
    .unwrap_or(st::GENERIC)
}

/// Runs a session call: looks the handle up, traces, catches panics.
fn with_session(
    name: &'static str,
    enc: Ptr,
    f: impl FnOnce(&mut Call, &Arc<Session>) -> R,
) -> i32 {
    let _acct = crate::cpustats::Entry::enter(Some(crate::stats::cuda_thread_ns));
    catch_unwind(AssertUnwindSafe(|| {
        let mut call = Call::new(name);
        let h = enc as u64;
        call.arg("encoder", format!("{h:#x}"));
        let s = match session::lookup(h) {
            Session_::Live(s) => s,
            Session_::Destroyed => {
                return finish(
                    call,
                    None,
                    Err(violation(
                        st::INVALID_ENCODERDEVICE,
                        "encoder handle used after nvEncDestroyEncoder",
                    )),
                );
            }
            Session_::Unknown => {
                return finish(
                    call,
                    None,
                    Err(violation(
                        st::INVALID_ENCODERDEVICE,
                        "unknown encoder handle",
                    )),
                );
            }
        };
        call.session = Some(s.id);
        call.api = Some(api_name(s.sdk));
        if let Some(st) = fault(name) {
            call.note("injected fault (NVEMU_FAULT): the call did nothing");
            return finish(call, Some(&s), Ok(st));
        }
        let r = match catch_unwind(AssertUnwindSafe(|| f(&mut call, &s))) {
            Ok(r) => r,
            Err(_) => Err(fail(st::GENERIC, "internal error in the emulator (panic)")),
        };
        finish(call, Some(&s), r)
    }))
    .unwrap_or(st::GENERIC)
}

use session::Lookup as Session_;

/// Checks a struct's `version` for the session's API; returns the SDK layout to decode it with.
fn check_ver(s: &Session, ver_name: &str, version: u32) -> Result<SdkIdx, Fail> {
    abi::layout_for_version(s.sdk, ver_name, version).ok_or_else(|| {
        violation(
            st::INVALID_VERSION,
            format!(
                "struct version {version:#010x} is not a valid {ver_name} for API {} (expected {:#010x} or an older revision of that API)",
                api_name(s.sdk),
                abi::ver(s.sdk, ver_name).unwrap_or(0)
            ),
        )
    })
}

/// Views a client struct after checking its pointer and version.
fn view(s: &Session, p: Ptr, strukt: &'static str, ver_name: &str) -> Result<View, Fail> {
    if p.is_null() {
        return Err(violation(st::INVALID_PTR, format!("NULL {strukt} pointer")));
    }
    // SAFETY: the first field of every versioned NVENC struct is the u32 `version`; the client
    // passed a pointer to such a struct.
    let version = unsafe { (p as *const u32).read_unaligned() };
    let sdk = check_ver(s, ver_name, version)?;
    // SAFETY: the client passed a struct of this type, at least as large as the layout of the
    // revision it stamped (the API contract).
    Ok(unsafe { View::new(p as *mut u8, sdk, strukt) })
}

/// The common prologue of an entry point that takes one versioned struct: checks its pointer
/// and version ([`view`]), then decodes its fields into the trace, the codec-specific union as
/// `codec` says.
fn read_params(
    call: &mut Call,
    s: &Session,
    p: Ptr,
    strukt: &'static str,
    ver_name: &str,
    codec: Union,
) -> Result<View, Fail> {
    let v = view(s, p, strukt, ver_name)?;
    let codec = match codec {
        Union::None => None,
        Union::Session => session_codec(s),
        Union::Init => caps::codec_of(s.sdk, &v.get_guid("encodeGUID")),
    };
    decode_into(call, &v, "", codec, s.sdk);
    Ok(v)
}

/// Which codec a struct's codec-specific fields are decoded for in the trace.
#[derive(Clone, Copy)]
enum Union {
    /// The struct has none.
    None,
    /// The session's initialized codec.
    Session,
    /// The codec of the struct's own `encodeGUID` (NV_ENC_INITIALIZE_PARAMS).
    Init,
}

fn decode_into(
    call: &mut Call,
    v: &View,
    prefix: &str,
    codec: Option<CodecKind>,
    sess_sdk: SdkIdx,
) {
    if !crate::trace::wanted() {
        return;
    }
    let follow = |name: &str, p: u64| -> Option<View> {
        if name == "encodeConfig" && p != 0 {
            // SAFETY: `encodeConfig` points to the client's NV_ENC_CONFIG (this call reads it).
            let version = unsafe { (p as *const u32).read_unaligned() };
            let sdk =
                abi::layout_for_version(sess_sdk, "NV_ENC_CONFIG_VER", version).unwrap_or(sess_sdk);
            // SAFETY: as above; the struct is as large as its revision's layout.
            Some(unsafe { View::new(p as *mut u8, sdk, "NV_ENC_CONFIG") })
        } else {
            None
        }
    };
    v.decode(prefix, codec, &mut call.args, &follow);
}

fn session_codec(s: &Session) -> Option<CodecKind> {
    s.lock().enc.as_ref().map(|e| e.codec)
}

// ---------------------------------------------------------------------------------------------
// Exported entry points

/// `NVENCSTATUS NvEncodeAPIGetMaxSupportedVersion(uint32_t* version)`.
///
/// # Safety
/// `version` is NULL or points to a writable u32.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn NvEncodeAPIGetMaxSupportedVersion(version: *mut u32) -> i32 {
    entry("NvEncodeAPIGetMaxSupportedVersion", false, |call| {
        if version.is_null() {
            return Err(violation(st::INVALID_PTR, "NULL version pointer"));
        }
        let v = abi::max_version_value(max_sdk());
        // SAFETY: non-NULL, points to the client's u32.
        unsafe { version.write_unaligned(v) };
        call.arg("out.version", format!("{v:#x}"));
        Ok(st::SUCCESS)
    })
}

/// `NVENCSTATUS NvEncodeAPICreateInstance(NV_ENCODE_API_FUNCTION_LIST* functionList)`.
///
/// Like the real driver (reference §3.1) only NULL is checked, not the version.
///
/// # Safety
/// `list` is NULL or points to a writable NV_ENCODE_API_FUNCTION_LIST (2552 bytes).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn NvEncodeAPICreateInstance(list: *mut c_void) -> i32 {
    entry("NvEncodeAPICreateInstance", false, |call| {
        if list.is_null() {
            return Err(violation(st::INVALID_PTR, "NULL function list"));
        }
        // SAFETY: the client passed a function list of the 13.0 size (every SDK has 2552
        // bytes); the first u32 is its version.
        let version = unsafe { (list as *const u32).read_unaligned() };
        call.arg("version", format!("{version:#010x}"));
        let mut n = 0;
        for f in abi::fields(abi::NEWEST, "NV_ENCODE_API_FUNCTION_LIST") {
            if !f.name.starts_with("nvEnc") {
                continue;
            }
            let p = entry_for(f.name);
            // SAFETY: `f.offset` is a function-pointer slot inside the 2552-byte list.
            unsafe {
                (list as *mut u8)
                    .add(f.offset)
                    .cast::<usize>()
                    .write_unaligned(p)
            };
            n += 1;
        }
        call.arg("out.entries", n);
        Ok(st::SUCCESS)
    })
}

macro_rules! unimplemented_entry {
    ($fn:ident, $name:literal) => {
        extern "C" fn $fn(enc: Ptr) -> i32 {
            with_session($name, enc, |_, _| {
                Err(fail(
                    st::UNIMPLEMENTED,
                    concat!($name, " is not implemented by the emulator"),
                ))
            })
        }
    };
}

unimplemented_entry!(get_encode_stats, "nvEncGetEncodeStats");
unimplemented_entry!(register_async_event, "nvEncRegisterAsyncEvent");
unimplemented_entry!(unregister_async_event, "nvEncUnregisterAsyncEvent");
unimplemented_entry!(invalidate_ref_frames, "nvEncInvalidateRefFrames");
unimplemented_entry!(create_mv_buffer, "nvEncCreateMVBuffer");
unimplemented_entry!(destroy_mv_buffer, "nvEncDestroyMVBuffer");
unimplemented_entry!(run_me_only, "nvEncRunMotionEstimationOnly");
unimplemented_entry!(get_sequence_param_ex, "nvEncGetSequenceParamEx");
unimplemented_entry!(restore_encoder_state, "nvEncRestoreEncoderState");
unimplemented_entry!(lookahead_picture, "nvEncLookaheadPicture");

/// Legacy `NvEncOpenEncodeSession(device, deviceType, encoder)`: no session handle to trace.
extern "C" fn open_encode_session(_device: Ptr, _ty: u32, _enc: *mut Ptr) -> i32 {
    entry("nvEncOpenEncodeSession", false, |_| {
        Err(fail(st::UNIMPLEMENTED, "use nvEncOpenEncodeSessionEx"))
    })
}

extern "C" fn unknown_entry(enc: Ptr) -> i32 {
    with_session("nvEncUnknownEntry", enc, |_, _| {
        Err(fail(st::UNIMPLEMENTED, "unknown function-list entry"))
    })
}

fn entry_for(name: &str) -> usize {
    match name {
        "nvEncOpenEncodeSession" => open_encode_session as *const () as usize,
        "nvEncGetEncodeGUIDCount" => get_encode_guid_count as *const () as usize,
        "nvEncGetEncodeProfileGUIDCount" => get_profile_guid_count as *const () as usize,
        "nvEncGetEncodeProfileGUIDs" => get_profile_guids as *const () as usize,
        "nvEncGetEncodeGUIDs" => get_encode_guids as *const () as usize,
        "nvEncGetInputFormatCount" => get_input_format_count as *const () as usize,
        "nvEncGetInputFormats" => get_input_formats as *const () as usize,
        "nvEncGetEncodeCaps" => get_encode_caps as *const () as usize,
        "nvEncGetEncodePresetCount" => get_preset_count as *const () as usize,
        "nvEncGetEncodePresetGUIDs" => get_preset_guids as *const () as usize,
        "nvEncGetEncodePresetConfig" => get_preset_config as *const () as usize,
        "nvEncInitializeEncoder" => initialize_encoder as *const () as usize,
        "nvEncCreateInputBuffer" => create_input_buffer as *const () as usize,
        "nvEncDestroyInputBuffer" => destroy_input_buffer as *const () as usize,
        "nvEncCreateBitstreamBuffer" => create_bitstream_buffer as *const () as usize,
        "nvEncDestroyBitstreamBuffer" => destroy_bitstream_buffer as *const () as usize,
        "nvEncEncodePicture" => encode_picture as *const () as usize,
        "nvEncLockBitstream" => lock_bitstream as *const () as usize,
        "nvEncUnlockBitstream" => unlock_bitstream as *const () as usize,
        "nvEncLockInputBuffer" => lock_input_buffer as *const () as usize,
        "nvEncUnlockInputBuffer" => unlock_input_buffer as *const () as usize,
        "nvEncGetEncodeStats" => get_encode_stats as *const () as usize,
        "nvEncGetSequenceParams" => get_sequence_params as *const () as usize,
        "nvEncRegisterAsyncEvent" => register_async_event as *const () as usize,
        "nvEncUnregisterAsyncEvent" => unregister_async_event as *const () as usize,
        "nvEncMapInputResource" => map_input_resource as *const () as usize,
        "nvEncUnmapInputResource" => unmap_input_resource as *const () as usize,
        "nvEncDestroyEncoder" => destroy_encoder as *const () as usize,
        "nvEncInvalidateRefFrames" => invalidate_ref_frames as *const () as usize,
        "nvEncOpenEncodeSessionEx" => open_encode_session_ex as *const () as usize,
        "nvEncRegisterResource" => register_resource as *const () as usize,
        "nvEncUnregisterResource" => unregister_resource as *const () as usize,
        "nvEncReconfigureEncoder" => reconfigure_encoder as *const () as usize,
        "nvEncCreateMVBuffer" => create_mv_buffer as *const () as usize,
        "nvEncDestroyMVBuffer" => destroy_mv_buffer as *const () as usize,
        "nvEncRunMotionEstimationOnly" => run_me_only as *const () as usize,
        "nvEncGetLastErrorString" => get_last_error_string as *const () as usize,
        "nvEncSetIOCudaStreams" => set_io_cuda_streams as *const () as usize,
        "nvEncGetEncodePresetConfigEx" => get_preset_config_ex as *const () as usize,
        "nvEncGetSequenceParamEx" => get_sequence_param_ex as *const () as usize,
        "nvEncRestoreEncoderState" => restore_encoder_state as *const () as usize,
        "nvEncLookaheadPicture" => lookahead_picture as *const () as usize,
        _ => unknown_entry as *const () as usize,
    }
}

// ---------------------------------------------------------------------------------------------
// Session

extern "C" fn open_encode_session_ex(params: Ptr, encoder: *mut Ptr) -> i32 {
    entry("nvEncOpenEncodeSessionEx", true, |call| {
        open_inner(call, params, encoder)
    })
}

fn open_inner(call: &mut Call, params: Ptr, encoder: *mut Ptr) -> R {
    if params.is_null() {
        return Err(violation(
            st::INVALID_PTR,
            "NULL NV_ENC_OPEN_ENCODE_SESSION_EX_PARAMS",
        ));
    }
    let max = max_sdk();
    // SAFETY: the client passed the params struct; its first u32 is `version`.
    let version = unsafe { (params as *const u32).read_unaligned() };
    // Order of checks as observed on the real driver (reference §3.1): version first.
    let api_of_struct = version & 0x0f00_00ff;
    let sdk = abi::sdk_of_api(api_of_struct);
    let Some(sdk) = sdk.filter(|s| *s <= max) else {
        call.arg("version", format!("{version:#010x}"));
        let major = version & 0xff;
        let minor = (version >> 24) & 0xf;
        let older = (1..11).contains(&major) || (major == 11 && minor < 1);
        if older && (version >> 28) & 7 == 7 {
            // A client older than SDK 11.1 (API 11.0, 10.0, ...). A real 12.x/13.0 driver
            // accepts it; the emulator has no ABI facts for those SDKs, so it refuses, and says
            // that this is its own limit, not the client's fault.
            call.note(format!(
                "API {major}.{minor} client: the emulator speaks 11.1-13.0 only (no ABI tables for older SDKs); a real driver would accept it"
            ));
            return Err(fail(
                st::INVALID_VERSION,
                format!("NVENC API {major}.{minor} is not emulated (11.1 to 13.0 are)"),
            ));
        }
        return Err(violation(
            st::INVALID_VERSION,
            format!(
                "OPEN_ENCODE_SESSION_EX_PARAMS version {version:#010x}: API is not one of 11.1/12.0/12.1/12.2/13.0 up to the reported maximum {}",
                api_name(max)
            ),
        ));
    };
    let Some(lsdk) =
        abi::layout_for_version(sdk, "NV_ENC_OPEN_ENCODE_SESSION_EX_PARAMS_VER", version)
    else {
        call.arg("version", format!("{version:#010x}"));
        return Err(violation(
            st::INVALID_VERSION,
            format!(
                "OPEN_ENCODE_SESSION_EX_PARAMS version {version:#010x} has an unknown revision"
            ),
        ));
    };
    // SAFETY: versioned struct of this layout, from the client.
    let v = unsafe {
        View::new(
            params as *mut u8,
            lsdk,
            "NV_ENC_OPEN_ENCODE_SESSIONEX_PARAMS",
        )
    };
    call.api = Some(api_name(sdk));
    decode_into(call, &v, "", None, sdk);
    let api_field = v.get("apiVersion") as u32;
    if abi::sdk_of_api(api_field).is_none_or(|s| s > max) || api_field != api_of_struct {
        return Err(violation(
            st::INVALID_VERSION,
            format!(
                "apiVersion {api_field:#010x} must be NVENCAPI_VERSION of 11.1/12.0/12.1/12.2/13.0, at most the reported maximum {} and equal to the struct's API",
                api_name(max)
            ),
        ));
    }
    let device = v.get("device");
    if device == 0 {
        return Err(violation(st::INVALID_PTR, "NULL device"));
    }
    if encoder.is_null() {
        return Err(violation(st::INVALID_PTR, "NULL encoder out-pointer"));
    }
    match v.get("deviceType") {
        1 => {}
        2 => return Err(fail(st::INVALID_DEVICE, "OpenGL devices are not supported")),
        0 => {
            return Err(fail(
                st::UNSUPPORTED_DEVICE,
                "DirectX devices do not exist on Linux",
            ));
        }
        t => return Err(fail(st::INVALID_DEVICE, format!("unknown deviceType {t}"))),
    }
    // The GPU of the client's CUcontext (CUDA stand-in; 0 otherwise) and its model.
    let ordinal = crate::system::device_of(device);
    let gpu = Gpu::for_device(ordinal);
    call.arg("emu.gpu", ordinal);
    if gpu == Gpu::NoNvenc {
        return Err(fail(
            st::UNSUPPORTED_DEVICE,
            format!("GPU {ordinal} has no NVENC (NVEMU_GPU / NVEMU_GPU_MODELS: no-nvenc)"),
        ));
    }
    let handle = session::new_handle(Tag::Session);
    // The session caps (`crate::system`): GeForce drivers refuse a session over the cap with
    // OUT_OF_MEMORY (what FFmpeg users report as "OpenEncodeSessionEx failed: out of memory
    // (10)"; NVIDIA documents the cap, not the status).
    match crate::system::open(ordinal, gpu, handle >> 4 & 0xffff_ffff) {
        Ok(()) => {}
        Err(crate::system::Refused::Cap(m)) => return Err(fail(st::OUT_OF_MEMORY, m)),
        Err(crate::system::Refused::Io(m)) => return Err(fail(st::GENERIC, m)),
    }
    let s = Arc::new(Session {
        id: handle >> 4 & 0xffff_ffff,
        sdk,
        gpu,
        ordinal,
        device,
        inner: Mutex::new(Default::default()),
        cv: Condvar::new(),
        errors: Mutex::new(Default::default()),
    });
    s.set_error("no error");
    call.session = Some(s.id);
    session::register(s, handle);
    // SAFETY: non-NULL out-pointer from the client.
    unsafe { encoder.write_unaligned(handle as Ptr) };
    call.arg("out.encoder", format!("{handle:#x}"));
    Ok(st::SUCCESS)
}

extern "C" fn destroy_encoder(enc: Ptr) -> i32 {
    with_session("nvEncDestroyEncoder", enc, |call, s| {
        let mut g = s.lock();
        // Lenient (reference §1.11): whatever is left is freed silently.
        let left = g.inputs.len() + g.outputs.len() + g.regs.len();
        if left > 0 {
            call.note(format!("{left} buffers/resources still alive were freed"));
        }
        g.destroyed = true;
        g.enc = None;
        g.inputs.clear();
        g.outputs.clear();
        g.regs.clear();
        g.maps.clear();
        drop(g);
        s.cv.notify_all();
        session::unregister(enc as u64);
        crate::system::close(s.id);
        Ok(st::SUCCESS)
    })
}

extern "C" fn get_last_error_string(enc: Ptr) -> *const c_char {
    static UNKNOWN: &[u8] = b"invalid encoder handle\0";
    let _acct = crate::cpustats::Entry::enter(Some(crate::stats::cuda_thread_ns));
    catch_unwind(AssertUnwindSafe(|| {
        let mut call = Call::new("nvEncGetLastErrorString");
        call.arg("encoder", format!("{:#x}", enc as u64));
        match session::lookup(enc as u64) {
            Lookup::Live(s) => {
                call.session = Some(s.id);
                call.api = Some(api_name(s.sdk));
                let e = s.errors.lock().unwrap_or_else(|e| e.into_inner());
                let p = e
                    .back()
                    .map(|c| c.as_ptr())
                    .unwrap_or(UNKNOWN.as_ptr().cast());
                if let Some(c) = e.back() {
                    call.arg("out", c.to_string_lossy().into_owned());
                }
                drop(e);
                call.finish(st::SUCCESS);
                p
            }
            _ => {
                call.finish(st::INVALID_ENCODERDEVICE);
                UNKNOWN.as_ptr().cast()
            }
        }
    }))
    .unwrap_or(UNKNOWN.as_ptr().cast())
}

// ---------------------------------------------------------------------------------------------
// Capability queries

fn out_ptr<T>(p: *mut T, what: &str) -> Result<*mut T, Fail> {
    if p.is_null() {
        Err(violation(st::INVALID_PTR, format!("NULL {what}")))
    } else {
        Ok(p)
    }
}

fn write_out<T>(p: *mut T, v: T) {
    // SAFETY: callers checked `p` with `out_ptr`; it is the client's out-parameter.
    unsafe { p.write_unaligned(v) };
}

fn codec_arg(call: &mut Call, s: &Session, g: &Guid) -> Result<CodecKind, Fail> {
    call.arg("encodeGUID", g.describe());
    caps::check_codec(s.gpu, s.sdk, g).map_err(|st| {
        fail(
            st,
            format!(
                "codec {} is not supported by this GPU ({:?})",
                g.describe(),
                s.gpu
            ),
        )
    })
}

extern "C" fn get_encode_guid_count(enc: Ptr, count: *mut u32) -> i32 {
    with_session("nvEncGetEncodeGUIDCount", enc, |call, s| {
        let p = out_ptr(count, "encodeGUIDCount")?;
        let n = caps::session_codecs(s.gpu, s.sdk).len() as u32;
        write_out(p, n);
        call.arg("out.encodeGUIDCount", n);
        Ok(st::SUCCESS)
    })
}

fn write_guids(call: &mut Call, list: &[Guid], arr: *mut Guid, size: u32, count: *mut u32) -> R {
    let c = out_ptr(count, "GUID count")?;
    let a = out_ptr(arr, "GUID array")?;
    if (size as usize) < list.len() {
        return Err(fail(
            st::INVALID_PARAM,
            format!(
                "guidArraySize {size} is smaller than the {} GUIDs",
                list.len()
            ),
        ));
    }
    for (i, g) in list.iter().enumerate() {
        // SAFETY: the client's array holds `size` >= list.len() GUIDs.
        unsafe { a.add(i).write_unaligned(*g) };
    }
    write_out(c, list.len() as u32);
    call.arg(
        "out.GUIDs",
        list.iter().map(|g| g.describe()).collect::<Vec<_>>(),
    );
    Ok(st::SUCCESS)
}

extern "C" fn get_encode_guids(enc: Ptr, guids: *mut Guid, size: u32, count: *mut u32) -> i32 {
    with_session("nvEncGetEncodeGUIDs", enc, |call, s| {
        call.arg("guidArraySize", size);
        let list: Vec<Guid> = caps::session_codecs(s.gpu, s.sdk)
            .into_iter()
            .map(|(_, g)| g)
            .collect();
        write_guids(call, &list, guids, size, count)
    })
}

extern "C" fn get_profile_guid_count(enc: Ptr, codec: Guid, count: *mut u32) -> i32 {
    with_session("nvEncGetEncodeProfileGUIDCount", enc, |call, s| {
        let c = codec_arg(call, s, &codec)?;
        let p = out_ptr(count, "encodeProfileGUIDCount")?;
        let n = caps::profile_names(s.sdk, c).len() as u32;
        write_out(p, n);
        call.arg("out.encodeProfileGUIDCount", n);
        Ok(st::SUCCESS)
    })
}

extern "C" fn get_profile_guids(
    enc: Ptr,
    codec: Guid,
    guids: *mut Guid,
    size: u32,
    count: *mut u32,
) -> i32 {
    with_session("nvEncGetEncodeProfileGUIDs", enc, |call, s| {
        let c = codec_arg(call, s, &codec)?;
        call.arg("guidArraySize", size);
        let list: Vec<Guid> = caps::profile_names(s.sdk, c)
            .iter()
            .filter_map(|n| abi::guid(s.sdk, n))
            .collect();
        write_guids(call, &list, guids, size, count)
    })
}

extern "C" fn get_input_format_count(enc: Ptr, codec: Guid, count: *mut u32) -> i32 {
    with_session("nvEncGetInputFormatCount", enc, |call, s| {
        let c = codec_arg(call, s, &codec)?;
        let p = out_ptr(count, "inputFmtCount")?;
        let n = caps::input_formats(s.sdk, c).len() as u32;
        write_out(p, n);
        call.arg("out.inputFmtCount", n);
        Ok(st::SUCCESS)
    })
}

extern "C" fn get_input_formats(
    enc: Ptr,
    codec: Guid,
    fmts: *mut u32,
    size: u32,
    count: *mut u32,
) -> i32 {
    with_session("nvEncGetInputFormats", enc, |call, s| {
        let c = codec_arg(call, s, &codec)?;
        call.arg("inputFmtArraySize", size);
        let list = caps::input_formats(s.sdk, c);
        let cnt = out_ptr(count, "inputFmtCount")?;
        let a = out_ptr(fmts, "inputFmts")?;
        if (size as usize) < list.len() {
            return Err(fail(
                st::INVALID_PARAM,
                format!("inputFmtArraySize {size} < {} formats", list.len()),
            ));
        }
        for (i, f) in list.iter().enumerate() {
            // SAFETY: the client's array holds `size` >= list.len() entries.
            unsafe { a.add(i).write_unaligned(*f) };
        }
        write_out(cnt, list.len() as u32);
        call.arg("out.inputFmts", list.clone());
        Ok(st::SUCCESS)
    })
}

extern "C" fn get_encode_caps(enc: Ptr, codec: Guid, param: Ptr, val: *mut i32) -> i32 {
    with_session("nvEncGetEncodeCaps", enc, |call, s| {
        let c = codec_arg(call, s, &codec)?;
        let v = read_params(
            call,
            s,
            param,
            "NV_ENC_CAPS_PARAM",
            "NV_ENC_CAPS_PARAM_VER",
            Union::None,
        )?;
        let out = out_ptr(val, "capsVal")?;
        let cap = v.get("capsToQuery") as u32 as i32;
        match caps::cap(s.gpu, s.sdk, c, cap) {
            Some(x) => {
                write_out(out, x);
                call.arg("out.capsVal", x);
                Ok(st::SUCCESS)
            }
            None => Err(fail(
                st::INVALID_PARAM,
                format!(
                    "capsToQuery {cap} is not an NV_ENC_CAPS of API {}",
                    api_name(s.sdk)
                ),
            )),
        }
    })
}

extern "C" fn get_preset_count(enc: Ptr, codec: Guid, count: *mut u32) -> i32 {
    with_session("nvEncGetEncodePresetCount", enc, |call, s| {
        codec_arg(call, s, &codec)?;
        let p = out_ptr(count, "encodePresetGUIDCount")?;
        write_out(p, caps::PRESETS.len() as u32);
        call.arg("out.encodePresetGUIDCount", caps::PRESETS.len());
        Ok(st::SUCCESS)
    })
}

extern "C" fn get_preset_guids(
    enc: Ptr,
    codec: Guid,
    guids: *mut Guid,
    size: u32,
    count: *mut u32,
) -> i32 {
    with_session("nvEncGetEncodePresetGUIDs", enc, |call, s| {
        codec_arg(call, s, &codec)?;
        call.arg("guidArraySize", size);
        let list: Vec<Guid> = caps::PRESETS
            .iter()
            .filter_map(|n| abi::guid(s.sdk, n))
            .collect();
        write_guids(call, &list, guids, size, count)
    })
}

fn preset_config(
    call: &mut Call,
    s: &Session,
    codec: Guid,
    preset: Guid,
    tuning: Option<u32>,
    cfg: Ptr,
) -> R {
    let c = codec_arg(call, s, &codec)?;
    call.arg("presetGUID", preset.describe());
    if let Some(t) = tuning {
        call.arg("tuningInfo", t);
    }
    let (p, legacy_tuning) = caps::preset_of(s.sdk, &preset).ok_or_else(|| {
        fail(
            st::INVALID_PARAM,
            format!(
                "unknown preset GUID {} for API {}",
                preset.describe(),
                api_name(s.sdk)
            ),
        )
    })?;
    let count = abi::enum_val(s.sdk, "NV_ENC_TUNING_INFO_COUNT").unwrap_or(5) as u32;
    let t = match tuning {
        Some(0) | None => legacy_tuning.unwrap_or(1),
        Some(t) if t >= count => {
            return Err(fail(
                st::INVALID_PARAM,
                format!("tuningInfo {t} is not valid for API {}", api_name(s.sdk)),
            ));
        }
        Some(t) => t,
    };
    if t == 5 && c == CodecKind::H264 || (t == 5 && c == CodecKind::Av1 && s.sdk < abi::SDK_13_0) {
        return Err(fail(
            st::UNSUPPORTED_PARAM,
            "ULTRA_HIGH_QUALITY tuning is HEVC-only (AV1 from 13.0)",
        ));
    }
    let pv = view(s, cfg, "NV_ENC_PRESET_CONFIG", "NV_ENC_PRESET_CONFIG_VER")?;
    // presetCfg.version must be a valid NV_ENC_CONFIG version too; its revision picks the
    // layout the config is written with.
    let inner = pv
        .sub("presetCfg")
        .ok_or_else(|| fail(st::GENERIC, "layout"))?;
    let cver = inner.get("version") as u32;
    let csdk = check_ver(s, "NV_ENC_CONFIG_VER", cver)?;
    call.arg("version", format!("{:#010x}", pv.get("version")));
    call.arg("presetCfg.version", format!("{cver:#010x}"));
    // The driver writes the whole struct: zero it, keep the two versions, fill the config.
    let pver = pv.get("version");
    pv.zero();
    pv.set("version", pver);
    // SAFETY: presetCfg lies inside the client's PRESET_CONFIG; the CONFIG layout of the
    // revision is not larger than the 3584 bytes every SDK reserves for it.
    let cv = unsafe { View::new(inner.base, csdk, "NV_ENC_CONFIG") };
    cv.set("version", cver as u64);
    caps::fill_preset(&cv, s.gpu, s.sdk, c, p, t);
    let mut m = serde_json::Map::new();
    cv.decode("", Some(c), &mut m, &|_, _| None);
    for (k, v) in m {
        call.args.insert(format!("out.presetCfg.{k}"), v);
    }
    Ok(st::SUCCESS)
}

extern "C" fn get_preset_config(enc: Ptr, codec: Guid, preset: Guid, cfg: Ptr) -> i32 {
    with_session("nvEncGetEncodePresetConfig", enc, |call, s| {
        preset_config(call, s, codec, preset, None, cfg)
    })
}

extern "C" fn get_preset_config_ex(
    enc: Ptr,
    codec: Guid,
    preset: Guid,
    tuning: u32,
    cfg: Ptr,
) -> i32 {
    with_session("nvEncGetEncodePresetConfigEx", enc, |call, s| {
        preset_config(call, s, codec, preset, Some(tuning), cfg)
    })
}

// ---------------------------------------------------------------------------------------------
// InitializeEncoder

fn fmt_val(sdk: SdkIdx, n: &str) -> u32 {
    abi::enum_val(sdk, &format!("NV_ENC_BUFFER_FORMAT_{n}")).unwrap_or(-1) as u32
}

/// Software-encoder input format, bytes per pixel in the first plane, rows of the whole
/// surface in units of the pitch (chroma at pitch*height, NVENC's layout).
fn format_info(sdk: SdkIdx, fmt: u32, h: u32) -> Option<(sw::InputFormat, usize, usize)> {
    let h = h as usize;
    let c420 = h + h.div_ceil(2);
    let table: [(&str, sw::InputFormat, usize, usize); 11] = [
        ("NV12", sw::InputFormat::Nv12, 1, c420),
        ("YV12", sw::InputFormat::Yv12, 1, c420),
        ("IYUV", sw::InputFormat::Iyuv, 1, c420),
        ("YUV444", sw::InputFormat::Yuv444, 1, 3 * h),
        ("YUV420_10BIT", sw::InputFormat::Yuv420_10bit, 2, c420),
        ("YUV444_10BIT", sw::InputFormat::Yuv444_10bit, 2, 3 * h),
        ("ARGB", sw::InputFormat::Argb, 4, h),
        ("ABGR", sw::InputFormat::Abgr, 4, h),
        ("AYUV", sw::InputFormat::Ayuv, 4, h),
        ("ARGB10", sw::InputFormat::Argb10, 4, h),
        ("ABGR10", sw::InputFormat::Abgr10, 4, h),
    ];
    table
        .iter()
        .find(|(n, ..)| fmt_val(sdk, n) == fmt)
        .map(|(_, f, b, r)| (*f, *b, *r))
}

extern "C" fn initialize_encoder(enc: Ptr, params: Ptr) -> i32 {
    with_session("nvEncInitializeEncoder", enc, |call, s| {
        let v = read_params(
            call,
            s,
            params,
            "NV_ENC_INITIALIZE_PARAMS",
            "NV_ENC_INITIALIZE_PARAMS_VER",
            Union::Init,
        )?;
        if s.lock().enc.is_some() {
            return Err(violation(
                st::INVALID_CALL,
                "nvEncInitializeEncoder called twice",
            ));
        }
        let e = build_encoder(call, s, &v, None)?;
        s.lock().enc = Some(e);
        Ok(st::SUCCESS)
    })
}

/// Validates INITIALIZE_PARAMS (and the config it points to) and opens the software encoder.
/// `prev` is the running encoder for reconfiguration (then GOP structure must not change).
fn build_encoder(call: &mut Call, s: &Session, v: &View, prev: Option<&Enc>) -> Result<Enc, Fail> {
    let sdk = s.sdk;
    let g = v.get_guid("encodeGUID");
    let codec = caps::check_codec(s.gpu, sdk, &g).map_err(|st| {
        fail(
            st,
            format!("encodeGUID {} is not supported by this GPU", g.describe()),
        )
    })?;
    let width = v.get("encodeWidth") as u32;
    let height = v.get("encodeHeight") as u32;
    let (wmin, hmin, wmax, hmax) = caps::size_limits(codec);
    if width < wmin || height < hmin || width > wmax || height > hmax {
        return Err(fail(
            st::INVALID_PARAM,
            format!("encode size {width}x{height} outside {wmin}x{hmin} .. {wmax}x{hmax}"),
        ));
    }
    let (mw, mh) = (
        v.get("maxEncodeWidth") as u32,
        v.get("maxEncodeHeight") as u32,
    );
    if (mw != 0 && (mw < width || mw > wmax)) || (mh != 0 && (mh < height || mh > hmax)) {
        return Err(fail(
            st::INVALID_PARAM,
            format!("maxEncodeWidth/Height {mw}x{mh} invalid for {width}x{height}"),
        ));
    }
    // The largest size the session may be reconfigured to: "Resolution change is possible only
    // if maxEncodeWidth & maxEncodeHeight of NV_ENC_INITIALIZE_PARAMS is set while creating
    // encoder session" (nvEncodeAPI.h); 0 at initialisation means the encode size. On
    // reconfigure the header forbids "Change in MaxWidth & MaxHeight": the values must be the
    // initialised ones. Whether the driver takes 0 there as "unchanged" is not documented;
    // the emulator does (*lenient*: NVIDIA's NvEncoder sample passes its init values back).
    let max_size = match prev {
        None => (
            if mw == 0 { width } else { mw },
            if mh == 0 { height } else { mh },
        ),
        Some(p) => {
            let asked = (
                if mw == 0 { p.max_size.0 } else { mw },
                if mh == 0 { p.max_size.1 } else { mh },
            );
            if asked != p.max_size {
                return Err(fail(
                    st::UNSUPPORTED_PARAM,
                    format!(
                        "maxEncodeWidth/Height cannot be reconfigured ({}x{} at initialisation, {}x{} asked)",
                        p.max_size.0, p.max_size.1, asked.0, asked.1
                    ),
                ));
            }
            if width > p.max_size.0 || height > p.max_size.1 {
                return Err(fail(
                    st::INVALID_PARAM,
                    format!(
                        "encode size {width}x{height} beyond maxEncodeWidth/Height {}x{} given at initialisation",
                        p.max_size.0, p.max_size.1
                    ),
                ));
            }
            p.max_size
        }
    };
    if v.get("enableEncodeAsync") != 0 {
        // Linux has no asynchronous mode ("Asynchronous mode is not supported on Linux").
        return Err(fail(
            st::UNSUPPORTED_PARAM,
            "enableEncodeAsync=1: Linux has no async mode",
        ));
    }
    if v.get("enablePTD") != 1 {
        // Client-side picture typing (enablePTD=0: frames in coded order with pictureType set)
        // is not emulated; no studied client uses it.
        return Err(fail(
            st::UNSUPPORTED_PARAM,
            "enablePTD must be 1: the emulator does not emulate client-side picture type decision",
        ));
    }
    for (f, why) in [
        ("enableMEOnlyMode", "ME-only mode is not supported"),
        (
            "enableExternalMEHints",
            "external ME hints are not supported",
        ),
        ("enableSubFrameWrite", "sub-frame readback is not supported"),
        (
            "enableOutputInVidmem",
            "output in video memory is not supported",
        ),
        (
            "enableReconFrameOutput",
            "recon frame output is not supported",
        ),
        ("enableOutputStats", "output stats are not supported"),
        (
            "enableWeightedPrediction",
            "weighted prediction is not supported (cap 0)",
        ),
        (
            "enableUniDirectionalB",
            "unidirectional B is not supported (cap 0)",
        ),
    ] {
        if v.get(f) != 0 {
            return Err(fail(st::UNSUPPORTED_PARAM, format!("{f}=1: {why}")));
        }
    }
    let preset_g = v.get_guid("presetGUID");
    let (preset, legacy_tuning) = if preset_g == Guid::default() {
        (4, None)
    } else {
        caps::preset_of(sdk, &preset_g).ok_or_else(|| {
            fail(
                st::INVALID_PARAM,
                format!("unknown presetGUID {}", preset_g.describe()),
            )
        })?
    };
    let count = abi::enum_val(sdk, "NV_ENC_TUNING_INFO_COUNT").unwrap_or(5) as u64;
    let tuning = match v.get("tuningInfo") {
        0 => legacy_tuning.unwrap_or(1),
        t if t >= count => {
            return Err(fail(st::INVALID_PARAM, format!("tuningInfo {t} invalid")));
        }
        t => t as u32,
    };
    // Lossless: NV_ENC_CAPS_SUPPORT_LOSSLESS_ENCODE is 1 for H.264 and H.265, 0 for AV1
    // (caps.rs, as real Turing, Ampere and Ada GPUs report).
    let lossless = tuning == 4;
    let lossless_cap = abi::enum_val(sdk, "NV_ENC_CAPS_SUPPORT_LOSSLESS_ENCODE")
        .and_then(|c| caps::cap(s.gpu, sdk, codec, c as i32));
    if lossless && lossless_cap != Some(1) {
        return Err(fail(
            st::UNSUPPORTED_PARAM,
            "lossless tuning: this codec has no lossless mode (NV_ENC_CAPS_SUPPORT_LOSSLESS_ENCODE 0)",
        ));
    }
    // The config: the client's, or the preset's if encodeConfig is NULL.
    let mut own = vec![0u64; 3584 / 8];
    let cfgp = v.get("encodeConfig");
    let cfg = if cfgp == 0 {
        let cver = abi::ver(sdk, "NV_ENC_CONFIG_VER").unwrap_or(0);
        // SAFETY: `own` is a 3584-byte (8-aligned) buffer, the size of NV_ENC_CONFIG.
        let cv = unsafe { View::new(own.as_mut_ptr().cast(), sdk, "NV_ENC_CONFIG") };
        cv.set("version", cver as u64);
        caps::fill_preset(&cv, s.gpu, sdk, codec, preset, tuning);
        call.note("encodeConfig NULL: the preset's configuration is used");
        cv
    } else {
        // SAFETY: the client's NV_ENC_CONFIG; first field is its version.
        let cver = unsafe { (cfgp as *const u32).read_unaligned() };
        let csdk = check_ver(s, "NV_ENC_CONFIG_VER", cver)?;
        // SAFETY: the client's config, as large as its revision's layout.
        unsafe { View::new(cfgp as *mut u8, csdk, "NV_ENC_CONFIG") }
    };
    let cc = match codec {
        CodecKind::H264 => "encodeCodecConfig.h264Config.",
        CodecKind::Hevc => "encodeCodecConfig.hevcConfig.",
        CodecKind::Av1 => "encodeCodecConfig.av1Config.",
    };
    let cget = |f: &str| cfg.get(&format!("{cc}{f}"));
    let gop_len = cfg.get("gopLength") as u32;
    if gop_len == 0 {
        // Unknown on the real driver; strict: 0 is not a GOP length (INFINITE is 0xffffffff).
        return Err(fail(
            st::INVALID_PARAM,
            "gopLength 0 (use NVENC_INFINITE_GOPLENGTH)",
        ));
    }
    let gop = (gop_len != u32::MAX).then_some(gop_len);
    let fip_raw = cfg.get_i32("frameIntervalP");
    if fip_raw < 0 {
        return Err(fail(
            st::INVALID_PARAM,
            format!("frameIntervalP {fip_raw} < 0"),
        ));
    }
    // frameIntervalP 0 comes with intra-only (gopLength 1, FFmpeg's -g 0): no B-frames.
    let mut fip = fip_raw.max(1) as u32;
    if fip - 1 > caps::MAX_BFRAMES as u32 {
        return Err(fail(
            st::INVALID_PARAM,
            format!(
                "frameIntervalP {fip} needs {} B-frames; NUM_MAX_BFRAMES is {}",
                fip - 1,
                caps::MAX_BFRAMES
            ),
        ));
    }
    if gop == Some(1) {
        fip = 1;
    }
    let zero_reorder = cfg.get("rcParams.zeroReorderDelay") != 0;
    if zero_reorder {
        // zeroReorderDelay: no output delay, so no frame can wait for a later one: no B-frames.
        fip = 1;
    }
    // Split-frame encoding, lookahead level, temporal filter, long-term references.
    let mut ext_notes = Vec::new();
    let ext = crate::sdkext::validate(
        &crate::sdkext::Input {
            gpu: s.gpu,
            sdk,
            codec,
            init: v,
            cfg: &cfg,
            cc,
            fip_raw,
            fip,
            zero_reorder,
            tuning,
        },
        &mut ext_notes,
    )
    .map_err(|(st, m)| fail(st, m))?;
    match cfg.get("frameFieldMode") {
        0 | 1 => {}
        m => {
            return Err(fail(
                st::UNSUPPORTED_PARAM,
                format!("frameFieldMode {m}: field/MBAFF encoding is not supported (cap 0)"),
            ));
        }
    }
    let idr_raw = cget("idrPeriod") as u32;
    // "If not set, this is made equal to gopLength" (header).
    let idr_period = if idr_raw == 0 {
        gop
    } else {
        (idr_raw != u32::MAX).then_some(idr_raw)
    };
    // Chroma.
    let chroma = match cget("chromaFormatIDC") {
        0 | 1 => 1,
        3 if codec != CodecKind::Av1 => 3,
        c => {
            return Err(fail(
                st::UNSUPPORTED_PARAM,
                format!("chromaFormatIDC {c} is not supported for {codec:?}"),
            ));
        }
    };
    // Bit depth: bitfields before 12.2 (CONFIG s8), enums from 12.2 (s9).
    let depth_of = |x: u64| if x == 0 { 8 } else { x as u32 };
    let (in_depth, out_depth) = if cfg.has(&format!("{cc}outputBitDepth")) {
        (
            depth_of(cget("inputBitDepth")),
            depth_of(cget("outputBitDepth")),
        )
    } else {
        match codec {
            CodecKind::H264 => (8, 8),
            CodecKind::Hevc => {
                let d = 8 + cget("pixelBitDepthMinus8") as u32;
                (d, d)
            }
            CodecKind::Av1 => (
                8 + cget("inputPixelBitDepthMinus8") as u32,
                8 + cget("pixelBitDepthMinus8") as u32,
            ),
        }
    };
    for d in [in_depth, out_depth] {
        if d != 8 && d != 10 {
            return Err(fail(
                st::INVALID_PARAM,
                format!("bit depth {d} is not 8 or 10"),
            ));
        }
    }
    if out_depth == 10 && codec == CodecKind::H264 {
        return Err(fail(
            st::UNSUPPORTED_PARAM,
            "10-bit H.264 is not supported on this GPU",
        ));
    }
    if in_depth > out_depth {
        return Err(fail(
            st::INVALID_PARAM,
            "input bit depth above output bit depth",
        ));
    }
    // Profile coherence.
    let prof = cfg.get_guid("profileGUID");
    let pname = abi::guid_name(&prof).unwrap_or("");
    let ok = match pname {
        "" if prof == Guid::default() => true,
        "NV_ENC_CODEC_PROFILE_AUTOSELECT_GUID" => true,
        "NV_ENC_HEVC_PROFILE_MAIN_GUID" => {
            codec == CodecKind::Hevc && out_depth == 8 && chroma == 1
        }
        "NV_ENC_HEVC_PROFILE_MAIN10_GUID" => codec == CodecKind::Hevc && chroma == 1,
        "NV_ENC_HEVC_PROFILE_FREXT_GUID" => codec == CodecKind::Hevc,
        "NV_ENC_AV1_PROFILE_MAIN_GUID" => codec == CodecKind::Av1,
        // Baseline has no B slices. Whether the real driver refuses B-frames with the Baseline
        // profile or drops them is not known; strict: refused.
        "NV_ENC_H264_PROFILE_BASELINE_GUID" => codec == CodecKind::H264 && chroma == 1 && fip == 1,
        "NV_ENC_H264_PROFILE_MAIN_GUID"
        | "NV_ENC_H264_PROFILE_HIGH_GUID"
        | "NV_ENC_H264_PROFILE_PROGRESSIVE_HIGH_GUID" => codec == CodecKind::H264 && chroma == 1,
        "NV_ENC_H264_PROFILE_HIGH_444_GUID" => codec == CodecKind::H264,
        "NV_ENC_H264_PROFILE_CONSTRAINED_HIGH_GUID" => {
            codec == CodecKind::H264 && chroma == 1 && fip == 1
        }
        _ => false,
    };
    if !ok {
        return Err(fail(
            st::INVALID_PARAM,
            format!(
                "profile {} does not fit {codec:?} {out_depth}-bit chroma {chroma} frameIntervalP {fip}",
                prof.describe()
            ),
        ));
    }
    if codec != CodecKind::Av1
        && chroma == 1
        && (!width.is_multiple_of(2) || !height.is_multiple_of(2))
    {
        // The real driver's handling of odd 4:2:0 sizes for H.264/HEVC is unknown; strict:
        // 4:2:0 needs even dimensions there (AV1 codes odd sizes).
        return Err(fail(
            st::INVALID_PARAM,
            format!("{codec:?} 4:2:0 needs even width and height, got {width}x{height}"),
        ));
    }
    // Rate control.
    let rc_mode = cfg.get("rcParams.rateControlMode") as u32;
    let qp = (
        cfg.get("rcParams.constQP.qpIntra") as u32,
        cfg.get("rcParams.constQP.qpInterP") as u32,
        cfg.get("rcParams.constQP.qpInterB") as u32,
    );
    let avg = cfg.get("rcParams.averageBitRate") as u32;
    let maxbr = cfg.get("rcParams.maxBitRate") as u32;
    let vbv = cfg.get("rcParams.vbvBufferSize") as u32;
    let tq = cfg.get("rcParams.targetQuality") as u32;
    let tql = cfg.get("rcParams.targetQualityLSB") as u32;
    // Deprecated modes (VBR_MINQP 4, CBR_LOWDELAY_HQ 8, CBR_HQ 0x10, VBR_HQ 0x20) exist up to
    // the 12.0 header (11.1 and 12.0) and were removed in 12.1: valid where the session's
    // header still defines them.
    let deprecated = caps::deprecated_rc_modes(sdk);
    let mode = match (rc_mode, deprecated) {
        (0, _) => 0,
        (1, _) => 1,
        (2, _) => 2,
        (4 | 0x20, true) => 1,
        (8 | 0x10, true) => 2,
        (m, _) => {
            return Err(fail(
                st::INVALID_PARAM,
                format!("rateControlMode {m:#x} invalid for API {}", api_name(sdk)),
            ));
        }
    };
    // QP delta maps (`crate::qpmap`).
    let emphasis_cap = abi::enum_val(sdk, "NV_ENC_CAPS_SUPPORT_EMPHASIS_LEVEL_MAP")
        .and_then(|c| caps::cap(s.gpu, sdk, codec, c as i32))
        == Some(1);
    let hevc_max_cu = if codec == CodecKind::Hevc {
        cget("maxCUSize") as u32
    } else {
        0
    };
    // nvEncodeAPI.h (`qpMapMode`): the emphasis level map "is not supported when AQ
    // (Spatial/Temporal) is enabled". What the real driver answers is not documented: the
    // emulator refuses the configuration (strict).
    if cfg.get("rcParams.qpMapMode") as u32 == crate::qpmap::EMPHASIS
        && (cfg.get("rcParams.enableAQ") != 0 || cfg.get("rcParams.enableTemporalAQ") != 0)
    {
        return Err(fail(
            st::UNSUPPORTED_PARAM,
            "qpMapMode NV_ENC_QP_MAP_EMPHASIS with enableAQ or enableTemporalAQ (nvEncodeAPI.h: not supported when AQ (Spatial/Temporal) is enabled)",
        ));
    }
    let qp_map = crate::qpmap::mode(
        codec,
        cfg.get("rcParams.qpMapMode") as u32,
        hevc_max_cu,
        emphasis_cap,
    )
    .map_err(|(unsupported, m)| {
        fail(
            if unsupported {
                st::UNSUPPORTED_PARAM
            } else {
                st::INVALID_PARAM
            },
            m,
        )
    })?;
    let fps_num = v.get("frameRateNum") as u32;
    let fps_den = v.get("frameRateDen") as u32;
    let (fps_num, fps_den) = if fps_num == 0 || fps_den == 0 {
        (30, 1)
    } else {
        (fps_num, fps_den)
    };
    // Default bitrate when the client leaves averageBitRate 0 (the driver's own default is
    // not documented): 5 Mb/s at 1080p30, scaled with pixel rate, at least 500 kb/s.
    let default_bps = || -> u32 {
        let px = width as f64 * height as f64 * fps_num as f64 / fps_den as f64;
        (5e6 * px / (1920.0 * 1080.0 * 30.0)).clamp(5e5, 8e8) as u32
    };
    let rc = match mode {
        // Lossless tuning codes lossless whatever the rate control says (the preset's is
        // constant QP 0).
        _ if lossless => {
            if mode != 0 || qp != (0, 0, 0) {
                call.note(format!(
                    "lossless tuning with rate control mode {mode} and QP {qp:?}: coded lossless (constant QP 0)"
                ));
            }
            sw::RateControl::ConstQp { i: 0, p: 0, b: 0 }
        }
        0 => sw::RateControl::ConstQp {
            i: qp.0,
            p: qp.1,
            b: qp.2,
        },
        1 => {
            let target_quality = (tq != 0).then(|| tq as f32 + tql as f32 / 256.0);
            let a = if avg == 0 && target_quality.is_none() {
                default_bps()
            } else {
                avg
            };
            sw::RateControl::Vbr {
                avg_bps: a,
                max_bps: maxbr,
                vbv_bits: vbv,
                target_quality,
            }
        }
        _ => {
            let a = if avg == 0 { default_bps() } else { avg };
            sw::RateControl::Cbr {
                bps: a,
                vbv_bits: vbv,
            }
        }
    };
    // Colour description.
    let colour = match codec {
        CodecKind::Av1 => {
            let prim = cget("colorPrimaries") as u32;
            let tr = cget("transferCharacteristics") as u32;
            let mx = cget("matrixCoefficients") as u32;
            let full = cget("colorRange") != 0;
            let u = |x: u32| if x == 0 { 2 } else { x };
            Some(sw::Colour {
                primaries: u(prim),
                transfer: u(tr),
                matrix: u(mx),
                full_range: full,
            })
        }
        _ => {
            let vui = if codec == CodecKind::H264 {
                "h264VUIParameters."
            } else {
                "hevcVUIParameters."
            };
            let vg = |f: &str| cget(&format!("{vui}{f}"));
            if vg("videoSignalTypePresentFlag") != 0 {
                let full = vg("videoFullRangeFlag") != 0;
                if vg("colourDescriptionPresentFlag") != 0 {
                    Some(sw::Colour {
                        primaries: vg("colourPrimaries") as u32,
                        transfer: vg("transferCharacteristics") as u32,
                        matrix: vg("colourMatrix") as u32,
                        full_range: full,
                    })
                } else {
                    Some(sw::Colour {
                        primaries: 2,
                        transfer: 2,
                        matrix: 2,
                        full_range: full,
                    })
                }
            } else {
                None
            }
        }
    };
    // API 13.0 (H.265, AV1): NVENC writes the HDR messages from the picture's pMasteringDisplay
    // / pMaxCll. Absent from older layouts (read as 0); for AV1 in 12.1 these bits are the
    // bit depth, read by name so never mistaken.
    let out_hdr = (
        cget("outputMasteringDisplay") != 0,
        cget("outputMaxCll") != 0,
    );
    // H.264 clock timestamps (12.0+; `crate::timecode`). H.265's own time code SEI
    // (outputTimeCodeSEI) is not emulated: clients pass the time_code SEI in seiPayloadArray.
    let time_code = codec == CodecKind::H264 && cget("enableTimeCode") != 0;
    if codec == CodecKind::Hevc && cget("outputTimeCodeSEI") != 0 {
        return Err(fail(
            st::UNSUPPORTED_PARAM,
            "outputTimeCodeSEI=1: NVENC's own H.265 time code SEI is not emulated (pass payloadType 136 in seiPayloadArray)",
        ));
    }
    let (repeat_headers, disable_headers) = match codec {
        CodecKind::Av1 => (cget("repeatSeqHdr") != 0, cget("disableSeqHdr") != 0),
        _ => (cget("repeatSPSPPS") != 0, cget("disableSPSPPS") != 0),
    };
    if let Some(p) = prev {
        if p.codec != codec {
            return Err(fail(
                st::UNSUPPORTED_PARAM,
                "the codec (encodeGUID) cannot be reconfigured",
            ));
        }
        // A new size (within the maximum, checked above) needs NV_ENC_CAPS_SUPPORT_DYN_RES_CHANGE.
        let res_cap = abi::enum_val(sdk, "NV_ENC_CAPS_SUPPORT_DYN_RES_CHANGE")
            .and_then(|c| caps::cap(s.gpu, sdk, codec, c as i32));
        if (p.width != width || p.height != height) && res_cap != Some(1) {
            return Err(fail(
                st::UNSUPPORTED_PARAM,
                "resolution change on reconfigure is not supported (SUPPORT_DYN_RES_CHANGE 0)",
            ));
        }
        // enableEncodeAsync and enablePTD cannot change either ("Change in sync-Async mode",
        // "Change in PTDmode"): both are checked above to have the only values the emulator
        // initialises with (0 and 1).
        if p.fip != fip || p.gop != gop || p.idr_period != idr_period {
            return Err(fail(
                st::UNSUPPORTED_PARAM,
                "the GOP structure cannot be reconfigured",
            ));
        }
        if p.ext != ext {
            // *Strict*: whether the driver reconfigures these live is not documented.
            return Err(fail(
                st::UNSUPPORTED_PARAM,
                "split encoding, lookahead level, temporal filter and LTR cannot be reconfigured",
            ));
        }
        // A new rate-control mode needs NV_ENC_CAPS_SUPPORT_DYN_RCMODE_CHANGE (0 on every
        // modelled GPU; `NVEMU_CAPS` may say 1, and then the mode changes in the session).
        let rc_cap = abi::enum_val(sdk, "NV_ENC_CAPS_SUPPORT_DYN_RCMODE_CHANGE")
            .and_then(|c| caps::cap(s.gpu, sdk, codec, c as i32));
        if std::mem::discriminant(&p.swcfg.rc) != std::mem::discriminant(&rc) && rc_cap != Some(1) {
            return Err(fail(
                st::UNSUPPORTED_PARAM,
                "rate control mode change is not supported (DYN_RCMODE_CHANGE 0)",
            ));
        }
    }
    if lossless
        && codec == CodecKind::H264
        && !matches!(
            pname,
            "" | "NV_ENC_CODEC_PROFILE_AUTOSELECT_GUID" | "NV_ENC_H264_PROFILE_HIGH_444_GUID"
        )
    {
        // Strict: lossless H.264 is High 4:4:4 Predictive; the driver's answer to another
        // profile is not documented.
        return Err(fail(
            st::INVALID_PARAM,
            format!(
                "lossless H.264 needs NV_ENC_H264_PROFILE_HIGH_444_GUID or autoselect, not {pname}"
            ),
        ));
    }
    let swcfg = sw::Config {
        codec: match codec {
            CodecKind::H264 => sw::Codec::H264,
            CodecKind::Hevc => sw::Codec::Hevc,
            CodecKind::Av1 => sw::Codec::Av1,
        },
        width,
        height,
        bit_depth: out_depth,
        chroma_444: chroma == 3,
        fps_num,
        fps_den,
        gop_length: idr_period,
        b_frames: if codec == CodecKind::Av1 { 0 } else { fip - 1 },
        rc,
        colour,
        repeat_headers: repeat_headers && !disable_headers,
        speed: 8 - preset,
        // The profile the client asked for is the profile of the stream (NVENC codes it);
        // autoselect leaves the choice to the encoder. Constrained High: High without B-frames
        // (checked above).
        h264_profile: match pname {
            _ if codec != CodecKind::H264 => sw::H264Profile::Auto,
            "NV_ENC_H264_PROFILE_BASELINE_GUID" => sw::H264Profile::Baseline,
            "NV_ENC_H264_PROFILE_MAIN_GUID" => sw::H264Profile::Main,
            "NV_ENC_H264_PROFILE_HIGH_GUID"
            | "NV_ENC_H264_PROFILE_PROGRESSIVE_HIGH_GUID"
            | "NV_ENC_H264_PROFILE_CONSTRAINED_HIGH_GUID" => sw::H264Profile::High,
            "NV_ENC_H264_PROFILE_HIGH_444_GUID" => sw::H264Profile::High444,
            // Lossless H.264 is High 4:4:4 Predictive (qpprime_y_zero_transform_bypass).
            _ if lossless => sw::H264Profile::High444,
            _ => sw::H264Profile::Auto,
        },
        lossless,
        pic_struct: time_code,
    };
    let (sw, seq) = match prev {
        Some(p) if p.swcfg == swcfg && p.qp_map == qp_map => {
            return Err(fail(st::SUCCESS, "unchanged"));
        }
        _ => {
            let sw = sw::SwEncoder::new(&swcfg)
                .map_err(|e| fail(st::GENERIC, format!("software encoder: {e}")))?;
            let seq = sw
                .sequence_header()
                .map_err(|e| fail(st::GENERIC, format!("software encoder header: {e}")))?;
            (sw, seq)
        }
    };
    call.arg("emu.swenc", format!("{swcfg:?}"));
    for n in ext_notes {
        call.note(n);
    }
    // splitEncodeMode is 0 (auto) where the session's layout has no such field (before 12.1).
    let timing = crate::timing::Timing::new(
        crate::timing::mode_from_env(),
        s.gpu,
        codec,
        preset,
        tuning,
        (width, height),
        v.get("splitEncodeMode") as u32,
        (s.ordinal, s.id),
    );
    if let Some(t) = &timing {
        call.arg(
            "emu.timing",
            format!(
                "{:.3} ms per picture on engine(s) {:?} of {} ({}); at most {:.1} fps for this session",
                t.time.as_secs_f64() * 1000.0 / t.engines.len() as f64,
                t.engines,
                s.gpu.nvenc_engines(),
                s.gpu.name(),
                t.session_fps()
            ),
        );
    }
    Ok(Enc {
        codec,
        width,
        height,
        max_size,
        fip,
        gop,
        idr_period,
        repeat_headers,
        disable_headers,
        out_hdr,
        time_code,
        swcfg,
        sw,
        seq,
        pending: Vec::new(),
        submitted: Default::default(),
        awaiting: Default::default(),
        metas: Default::default(),
        next_pts: 0,
        since_idr: 0,
        engine_free: prev.map_or_else(std::time::Instant::now, |p| p.engine_free),
        timing,
        since_i: 0,
        need_idr: true,
        fresh: true,
        sent_since_drain: false,
        seq_headers_due: true,
        display_idx: 0,
        submits: 0,
        last_submitter: None,
        qp: if mode == 0 { qp } else { (22, 25, 27) },
        qp_map,
        ext,
        next_frame_idx: prev.map_or(0, |p| p.next_frame_idx),
        ltr_refs_since_idr: prev.map_or(0, |p| p.ltr_refs_since_idr),
        ltr_marked: prev.map_or(0, |p| p.ltr_marked),
    })
}

fn need_enc(g: &session::Inner) -> Result<(), Fail> {
    if g.enc.is_none() {
        Err(violation(
            st::ENCODER_NOT_INITIALIZED,
            "the encoder is not initialized",
        ))
    } else {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Reconfigure, streams, sequence params

extern "C" fn reconfigure_encoder(enc: Ptr, params: Ptr) -> i32 {
    with_session("nvEncReconfigureEncoder", enc, |call, s| {
        let v = read_params(
            call,
            s,
            params,
            "NV_ENC_RECONFIGURE_PARAMS",
            "NV_ENC_RECONFIGURE_PARAMS_VER",
            Union::Session,
        )?;
        need_enc(&s.lock())?;
        let init = v
            .sub("reInitEncodeParams")
            .ok_or_else(|| fail(st::GENERIC, "layout"))?;
        let iver = init.get("version") as u32;
        check_ver(s, "NV_ENC_INITIALIZE_PARAMS_VER", iver)?;
        let reset = v.get("resetEncoder") != 0;
        let force_idr = v.get("forceIDR") != 0;
        let mut g = s.lock();
        let e = g
            .enc
            .as_mut()
            .ok_or_else(|| fail(st::ENCODER_NOT_INITIALIZED, "not initialized"))?;
        if init.get("encodeConfig") != 0 {
            match build_encoder(call, s, &init, Some(e)) {
                Ok(newe) if !reset && !force_idr && only_rate_differs(&e.swcfg, &newe.swcfg) => {
                    // A new bitrate, VBV, constant QP, target quality or frame rate: NVENC goes
                    // on without an IDR. The software encoders follow as far as they can
                    // (`sw::SwEncoder::set_rate`); what they cannot take live is re-opened
                    // below.
                    let rc = newe.swcfg.rc;
                    let (n, d) = (newe.swcfg.fps_num, newe.swcfg.fps_den);
                    match e.sw.set_rate(&rc, n, d) {
                        Ok(true) => {
                            let how = match (e.codec, rc) {
                                (_, _) if rc == e.swcfg.rc => "",
                                (CodecKind::Hevc, sw::RateControl::ConstQp { .. }) => {
                                    " (libx265: a fixed QP per picture type, forceqp)"
                                }
                                (
                                    CodecKind::Hevc,
                                    sw::RateControl::Vbr {
                                        target_quality: Some(_),
                                        ..
                                    },
                                ) => {
                                    " (libx265 approximation: a fixed QP per picture type moved by the change of target quality; x265's own adaptation stops)"
                                }
                                (CodecKind::Hevc, _) => {
                                    " (libx265: a per-picture QP controller holds the new rate)"
                                }
                                _ => "",
                            };
                            call.note(format!(
                                "rate control changed live to {rc:?} at {n}/{d} fps{how}"
                            ));
                            e.swcfg.rc = rc;
                            (e.swcfg.fps_num, e.swcfg.fps_den) = (n, d);
                            e.qp_map = newe.qp_map;
                            e.qp = newe.qp;
                        }
                        Ok(false) if rc == e.swcfg.rc => {
                            // A new frame rate alone, which this software encoder (libaom)
                            // cannot take live: it goes on at the rate per frame of the old
                            // frame rate (the rate per second is off by their ratio) rather
                            // than code an IDR real NVENC would not.
                            call.note(format!(
                                "frame rate changed to {n}/{d}: this software encoder cannot change it live; it goes on without an IDR at the old rate per frame"
                            ));
                            (e.swcfg.fps_num, e.swcfg.fps_den) = (n, d);
                            e.qp_map = newe.qp_map;
                        }
                        Ok(false) => {
                            call.note(format!(
                                "rate control changed to {rc:?}: this software encoder cannot change it live; re-opened (new IDR, which real NVENC would not insert)"
                            ));
                            reopen(&mut g, newe, call)?;
                        }
                        Err(m) => return Err(fail(st::GENERIC, m)),
                    }
                }
                Ok(newe) if !reset && !force_idr && newe.swcfg == e.swcfg => {
                    // Only the QP map mode changed (`qpMapMode`, e.g. from emphasis to delta
                    // as AQ is turned on): the software encoder goes on; the next pictures'
                    // maps are read in the new mode.
                    call.note(format!(
                        "qpMapMode changed to {} in the session",
                        newe.qp_map.mode
                    ));
                    e.qp_map = newe.qp_map;
                }
                Ok(newe) => {
                    // The software encoder has no bitrate-change API: a changed rate control
                    // takes effect by re-opening it, which starts a new sequence (IDR).
                    call.note(format!(
                        "rate control changed from {:?} to {:?}: software encoder re-opened",
                        e.swcfg.rc, newe.swcfg.rc
                    ));
                    // Frames already sent are drained from the old encoder; frames still
                    // waiting to become B-frames go to the new one.
                    reopen(&mut g, newe, call)?;
                }
                Err(f) if f.status == st::SUCCESS => {}
                Err(f) => return Err(f),
            }
        }
        let e = g.enc.as_mut().unwrap();
        if reset || force_idr {
            e.need_idr = true;
        }
        Ok(st::SUCCESS)
    })
}

/// Whether two software-encoder configurations differ only in the rate control within one
/// mode (rates, VBV, constant QPs, target quality) and/or the frame rate (same everything
/// else).
fn only_rate_differs(a: &sw::Config, b: &sw::Config) -> bool {
    let same_mode = std::mem::discriminant(&a.rc) == std::mem::discriminant(&b.rc);
    let mut b2 = b.clone();
    b2.rc = a.rc;
    (b2.fps_num, b2.fps_den) = (a.fps_num, a.fps_den);
    let changed = a.rc != b.rc
        || u64::from(a.fps_num) * u64::from(b.fps_den)
            != u64::from(b.fps_num) * u64::from(a.fps_den);
    same_mode && changed && *a == b2
}

/// Re-opens the software encoder with `newe`'s configuration: frames already sent are drained
/// from the old one (new sequence, IDR next).
fn reopen(g: &mut session::Inner, newe: Enc, call: &mut Call) -> Result<(), Fail> {
    let inner = &mut *g;
    let e = inner.enc.as_mut().unwrap();
    let resized = (e.width, e.height) != (newe.width, newe.height);
    if resized {
        // The header does not say what the driver does with pictures it holds as future
        // B-frames when the size changes; they cannot be coded at the new size, so the
        // emulator ends their mini-GOP at the old size (last one P), as EOS does, and the new
        // size starts with an IDR and new parameter sets (H.264/H.265: a new SPS needs an IDR;
        // AV1: a new sequence header with a key frame; whether NVENC's AV1 instead codes a
        // non-key frame with frame_size_override is not documented).
        call.note(format!(
            "size changed from {}x{} to {}x{}: pending mini-GOP closed, new sequence (IDR)",
            e.width, e.height, newe.width, newe.height
        ));
        e.close_mini_gop(&mut inner.outputs, call)
            .map_err(|m| fail(st::GENERIC, m))?;
    }
    if e.sent_since_drain {
        e.drain(&mut inner.outputs, call)
            .map_err(|m| fail(st::GENERIC, m))?;
    }
    let e = g.enc.as_mut().unwrap();
    e.sw = newe.sw;
    e.swcfg = newe.swcfg;
    e.seq = newe.seq;
    e.qp = newe.qp;
    e.fresh = true;
    e.seq_headers_due = true;
    e.repeat_headers = newe.repeat_headers;
    e.disable_headers = newe.disable_headers;
    e.qp_map = newe.qp_map;
    if resized {
        (e.width, e.height) = (newe.width, newe.height);
        e.timing = newe.timing;
        e.need_idr = true;
    }
    Ok(())
}

/// `NV_ENC_CUSTREAM_PTR` points to a `CUstream`; the client's variable may be gone after the
/// call (GStreamer passes a local), so the stream is read now. NULL: the default stream.
fn read_custream(p: Ptr) -> u64 {
    if p.is_null() {
        return 0;
    }
    // SAFETY: per nvEncodeAPI.h the argument points to a CUstream (pointer-sized) owned by the
    // client for the duration of the call; NULL was handled above.
    unsafe { (p as *const u64).read_unaligned() }
}

extern "C" fn set_io_cuda_streams(enc: Ptr, input: Ptr, output: Ptr) -> i32 {
    with_session("nvEncSetIOCudaStreams", enc, |call, s| {
        let streams = (read_custream(input), read_custream(output));
        call.arg("inputStream", format!("{:#x}", streams.0));
        call.arg("outputStream", format!("{:#x}", streams.1));
        s.lock().streams = streams;
        Ok(st::SUCCESS)
    })
}

extern "C" fn get_sequence_params(enc: Ptr, params: Ptr) -> i32 {
    with_session("nvEncGetSequenceParams", enc, |call, s| {
        let v = read_params(
            call,
            s,
            params,
            "NV_ENC_SEQUENCE_PARAM_PAYLOAD",
            "NV_ENC_SEQUENCE_PARAM_PAYLOAD_VER",
            Union::None,
        )?;
        let g = s.lock();
        need_enc(&g)?;
        let e = g.enc.as_ref().unwrap();
        let buf = v.get("spsppsBuffer");
        let outsz = v.get("outSPSPPSPayloadSize");
        if buf == 0 || outsz == 0 {
            return Err(violation(
                st::INVALID_PTR,
                "NULL spsppsBuffer or outSPSPPSPayloadSize",
            ));
        }
        let cap = v.get("inBufferSize") as usize;
        if cap < e.seq.len() {
            return Err(fail(
                st::NOT_ENOUGH_BUFFER,
                format!(
                    "inBufferSize {cap} < {} bytes of sequence header",
                    e.seq.len()
                ),
            ));
        }
        // SAFETY: the client's buffer holds inBufferSize >= seq.len() bytes; the size pointer
        // is its u32 out-parameter.
        unsafe {
            std::ptr::copy_nonoverlapping(e.seq.as_ptr(), buf as *mut u8, e.seq.len());
            (outsz as *mut u32).write_unaligned(e.seq.len() as u32);
        }
        call.arg("out.outSPSPPSPayloadSize", e.seq.len());
        Ok(st::SUCCESS)
    })
}

// ---------------------------------------------------------------------------------------------
// Input buffers

extern "C" fn create_input_buffer(enc: Ptr, params: Ptr) -> i32 {
    with_session("nvEncCreateInputBuffer", enc, |call, s| {
        let v = read_params(
            call,
            s,
            params,
            "NV_ENC_CREATE_INPUT_BUFFER",
            "NV_ENC_CREATE_INPUT_BUFFER_VER",
            Union::None,
        )?;
        let mut g = s.lock();
        need_enc(&g)?;
        let codec = g.enc.as_ref().unwrap().codec;
        let (w, h, fmt) = (
            v.get("width") as u32,
            v.get("height") as u32,
            v.get("bufferFmt") as u32,
        );
        if w == 0 || h == 0 || w > 8192 || h > 8192 {
            return Err(fail(
                st::INVALID_PARAM,
                format!("input buffer size {w}x{h}"),
            ));
        }
        if !caps::input_formats(s.sdk, codec).contains(&fmt) {
            return Err(fail(
                st::INVALID_PARAM,
                format!("bufferFmt {fmt:#x} is not an input format of {codec:?}"),
            ));
        }
        let (_, bpp, rows) =
            format_info(s.sdk, fmt, h).ok_or_else(|| fail(st::INVALID_PARAM, "format"))?;
        // A pitch aligned to 256 bytes (not the width): clients must honour the locked pitch.
        let pitch = (w as usize * bpp).next_multiple_of(256);
        let data = vec![0u8; pitch * rows];
        let handle = session::new_handle(Tag::Input);
        g.inputs.insert(
            handle,
            InputBuf {
                width: w,
                height: h,
                fmt,
                pitch,
                data,
                locked: false,
            },
        );
        v.set("inputBuffer", handle);
        v.set("pSysMemBuffer", 0);
        call.arg("out.inputBuffer", format!("{handle:#x}"));
        Ok(st::SUCCESS)
    })
}

fn dead_or_unknown(g: &session::Inner, h: u64, what: &str) -> Fail {
    if g.dead.contains(&h) {
        violation(
            st::INVALID_PARAM,
            format!("{what} {h:#x} used after it was destroyed"),
        )
    } else {
        violation(st::INVALID_PARAM, format!("unknown {what} {h:#x}"))
    }
}

extern "C" fn destroy_input_buffer(enc: Ptr, buf: Ptr) -> i32 {
    with_session("nvEncDestroyInputBuffer", enc, |call, s| {
        let h = buf as u64;
        call.arg("inputBuffer", format!("{h:#x}"));
        let mut g = s.lock();
        need_enc(&g)?;
        if g.inputs.remove(&h).is_none() {
            return Err(dead_or_unknown(&g, h, "input buffer"));
        }
        g.dead.insert(h);
        Ok(st::SUCCESS)
    })
}

extern "C" fn lock_input_buffer(enc: Ptr, params: Ptr) -> i32 {
    with_session("nvEncLockInputBuffer", enc, |call, s| {
        let v = read_params(
            call,
            s,
            params,
            "NV_ENC_LOCK_INPUT_BUFFER",
            "NV_ENC_LOCK_INPUT_BUFFER_VER",
            Union::None,
        )?;
        let mut g = s.lock();
        need_enc(&g)?;
        let h = v.get("inputBuffer");
        if !g.inputs.contains_key(&h) {
            return Err(dead_or_unknown(&g, h, "input buffer"));
        }
        let b = g.inputs.get_mut(&h).unwrap();
        if b.locked {
            return Err(violation(
                st::INVALID_PARAM,
                format!("input buffer {h:#x} is already locked"),
            ));
        }
        b.locked = true;
        v.set("bufferDataPtr", b.data.as_mut_ptr() as u64);
        v.set("pitch", b.pitch as u64);
        call.arg("out.pitch", b.pitch);
        Ok(st::SUCCESS)
    })
}

extern "C" fn unlock_input_buffer(enc: Ptr, buf: Ptr) -> i32 {
    with_session("nvEncUnlockInputBuffer", enc, |call, s| {
        let h = buf as u64;
        call.arg("inputBuffer", format!("{h:#x}"));
        let mut g = s.lock();
        need_enc(&g)?;
        if !g.inputs.contains_key(&h) {
            return Err(dead_or_unknown(&g, h, "input buffer"));
        }
        let b = g.inputs.get_mut(&h).unwrap();
        if !b.locked {
            return Err(violation(
                st::INVALID_PARAM,
                format!("input buffer {h:#x} is not locked"),
            ));
        }
        b.locked = false;
        Ok(st::SUCCESS)
    })
}

// ---------------------------------------------------------------------------------------------
// Bitstream buffers

extern "C" fn create_bitstream_buffer(enc: Ptr, params: Ptr) -> i32 {
    with_session("nvEncCreateBitstreamBuffer", enc, |call, s| {
        let v = read_params(
            call,
            s,
            params,
            "NV_ENC_CREATE_BITSTREAM_BUFFER",
            "NV_ENC_CREATE_BITSTREAM_BUFFER_VER",
            Union::None,
        )?;
        let mut g = s.lock();
        need_enc(&g)?;
        let handle = session::new_handle(Tag::Output);
        g.outputs.insert(
            handle,
            OutBuf {
                state: OutState::Idle,
            },
        );
        v.set("bitstreamBuffer", handle);
        v.set("bitstreamBufferPtr", 0);
        call.arg("out.bitstreamBuffer", format!("{handle:#x}"));
        Ok(st::SUCCESS)
    })
}

extern "C" fn destroy_bitstream_buffer(enc: Ptr, buf: Ptr) -> i32 {
    with_session("nvEncDestroyBitstreamBuffer", enc, |call, s| {
        let h = buf as u64;
        call.arg("bitstreamBuffer", format!("{h:#x}"));
        let mut g = s.lock();
        need_enc(&g)?;
        let Some(b) = g.outputs.remove(&h) else {
            return Err(dead_or_unknown(&g, h, "bitstream buffer"));
        };
        g.dead.insert(h);
        if let OutState::Locked(_) = b.state {
            // Its data pointer was handed out and never given back.
            call.violation("bitstream buffer destroyed while locked (no nvEncUnlockBitstream)");
        }
        // Unread output at teardown is allowed (reference §1.11).
        drop(g);
        s.cv.notify_all();
        Ok(st::SUCCESS)
    })
}

extern "C" fn lock_bitstream(enc: Ptr, params: Ptr) -> i32 {
    with_session("nvEncLockBitstream", enc, |call, s| {
        let v = read_params(
            call,
            s,
            params,
            "NV_ENC_LOCK_BITSTREAM",
            "NV_ENC_LOCK_BITSTREAM_VER",
            Union::Session,
        )?;
        let h = v.get("outputBitstream");
        let no_wait = v.get("doNotWait") != 0;
        let start = Instant::now();
        // A blocking lock on a buffer whose frame still waits for input (NEED_MORE_INPUT) waits
        // for a later EncodePicture or EOS from another thread (GStreamer). The real driver
        // would wait forever; after this long the emulator reports the deadlock instead.
        let limit = Duration::from_secs(60);
        let mut g = s.lock();
        loop {
            if g.destroyed {
                return Err(violation(
                    st::INVALID_ENCODERDEVICE,
                    "encoder destroyed while a lock was waiting",
                ));
            }
            need_enc(&g)?;
            let inner = &mut *g;
            let Some(b) = inner.outputs.get_mut(&h) else {
                return Err(dead_or_unknown(inner, h, "bitstream buffer"));
            };
            match &b.state {
                OutState::Idle => {
                    return Err(violation(
                        st::INVALID_PARAM,
                        format!("bitstream buffer {h:#x} locked with nothing submitted to it"),
                    ));
                }
                OutState::Locked(_) => {
                    return Err(violation(
                        st::INVALID_PARAM,
                        format!("bitstream buffer {h:#x} is already locked"),
                    ));
                }
                OutState::Ready(o) if o.ready_at > Instant::now() => {
                    // The modelled engine is still coding this picture.
                    if no_wait {
                        return Ok(st::LOCK_BUSY);
                    }
                    let left = o.ready_at.saturating_duration_since(Instant::now());
                    g =
                        s.cv.wait_timeout(g, left)
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                }
                OutState::Ready(_) => {
                    let OutState::Ready(o) = std::mem::replace(&mut b.state, OutState::Idle) else {
                        unreachable!()
                    };
                    b.state = OutState::Locked(o);
                    let OutState::Locked(o) = &b.state else {
                        unreachable!()
                    };
                    v.set("bitstreamBufferPtr", o.data.as_ptr() as u64);
                    v.set("bitstreamSizeInBytes", o.data.len() as u64);
                    v.set("outputTimeStamp", o.pts);
                    v.set("outputDuration", o.duration);
                    v.set("pictureType", o.pic_type as u64);
                    v.set("pictureStruct", 1);
                    v.set("frameAvgQP", o.avg_qp as u64);
                    v.set("frameIdx", o.frame_idx as u64);
                    v.set("frameIdxDisplay", o.frame_idx_display as u64);
                    v.set("numSlices", 1);
                    v.set("hwEncodeStatus", 0);
                    v.set("ltrFrame", o.ltr_mark.is_some() as u64);
                    v.set("ltrFrameIdx", o.ltr_mark.unwrap_or(0) as u64);
                    // No long-term reference was used for prediction (the software encoder
                    // codes none).
                    v.set("ltrFrameBitmap", 0);
                    v.set("temporalId", 0);
                    let so = v.get("sliceOffsets");
                    if so != 0 {
                        // SAFETY: a non-NULL sliceOffsets is the client's array of at least one
                        // u32 per slice; we report one slice.
                        unsafe { (so as *mut u32).write_unaligned(0) };
                    }
                    call.arg("out.pictureType", o.pic_type);
                    call.arg("out.outputTimeStamp", o.pts);
                    call.arg("out.outputDuration", o.duration);
                    call.arg("out.bitstreamSizeInBytes", o.data.len());
                    call.arg("out.frameIdx", o.frame_idx);
                    call.arg("out.frameIdxDisplay", o.frame_idx_display);
                    // The timing of this picture (CLOCK_MONOTONIC ns, as the line's t_ns):
                    // submitted, done by the modelled engine, and its engine time.
                    call.arg("emu.submit_ns", crate::trace::mono_ns(o.submitted_at));
                    call.arg("emu.ready_ns", crate::trace::mono_ns(o.ready_at));
                    call.arg("emu.busy_ns", o.busy.as_nanos() as u64);
                    if let Some(i) = o.ltr_mark {
                        call.arg("out.ltrFrame", 1);
                        call.arg("out.ltrFrameIdx", i);
                    }
                    if !o.payload_types.is_empty() {
                        call.arg("out.payloadTypes", o.payload_types.clone());
                    }
                    crate::stats::picture_locked();
                    return Ok(st::SUCCESS);
                }
                OutState::Submitted => {
                    if no_wait {
                        return Ok(st::LOCK_BUSY);
                    }
                    let left = limit.saturating_sub(start.elapsed());
                    if left.is_zero() {
                        return Err(violation(
                            st::GENERIC,
                            format!(
                                "LockBitstream(doNotWait=0) blocked {}s on a buffer whose frame waits for more input, and no EncodePicture or EOS came (deadlock)",
                                limit.as_secs()
                            ),
                        ));
                    }
                    g =
                        s.cv.wait_timeout(g, left)
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                }
                OutState::Released => {
                    let inner = &mut *g;
                    let e = inner.enc.as_mut().unwrap();
                    e.poll(&mut inner.outputs, call)
                        .map_err(|m| fail(st::GENERIC, m))?;
                    if matches!(
                        inner.outputs.get(&h).map(|b| &b.state),
                        Some(OutState::Released)
                    ) {
                        if no_wait {
                            return Ok(st::LOCK_BUSY);
                        }
                        // The software encoder still holds the picture (its lookahead is longer
                        // than NVENC's). If another thread keeps submitting frames, wait for
                        // them to push it out; if the caller is the submitting thread, or no
                        // frame came for a while, no more input is coming: end the software
                        // encoder's sequence so the client is not deadlocked. "A while" is 1 s:
                        // with 150 ms, a client whose submitting thread was starved that long
                        // on a loaded 2-CPU machine (nvcudah264enc beside the 2160p timing test)
                        // got a drain, and so an IDR, real NVENC would not code.
                        let same_thread = e.last_submitter == Some(std::thread::current().id());
                        let before = e.submits;
                        if !same_thread {
                            g =
                                s.cv.wait_timeout(g, Duration::from_millis(1000))
                                    .unwrap_or_else(|e| e.into_inner())
                                    .0;
                            if g.destroyed || g.enc.as_ref().is_none_or(|e| e.submits != before) {
                                continue;
                            }
                            if !matches!(
                                g.outputs.get(&h).map(|b| &b.state),
                                Some(OutState::Released)
                            ) {
                                continue;
                            }
                        }
                        let inner = &mut *g;
                        let e = inner.enc.as_mut().unwrap();
                        e.poll(&mut inner.outputs, call)
                            .map_err(|m| fail(st::GENERIC, m))?;
                        if matches!(
                            inner.outputs.get(&h).map(|b| &b.state),
                            Some(OutState::Released)
                        ) {
                            call.note(
                                "LockBitstream waited for a picture the software encoder still held and no more input was coming; drained it (end of sequence): the next frame is an IDR",
                            );
                            e.drain(&mut inner.outputs, call)
                                .map_err(|m| fail(st::GENERIC, m))?;
                            s.cv.notify_all();
                        }
                    }
                }
            }
        }
    })
}

extern "C" fn unlock_bitstream(enc: Ptr, buf: Ptr) -> i32 {
    with_session("nvEncUnlockBitstream", enc, |call, s| {
        let h = buf as u64;
        call.arg("outputBitstream", format!("{h:#x}"));
        let mut g = s.lock();
        need_enc(&g)?;
        let inner = &mut *g;
        let Some(b) = inner.outputs.get_mut(&h) else {
            return Err(dead_or_unknown(inner, h, "bitstream buffer"));
        };
        if !matches!(b.state, OutState::Locked(_)) {
            return Err(violation(
                st::INVALID_PARAM,
                format!("bitstream buffer {h:#x} is not locked"),
            ));
        }
        b.state = OutState::Idle;
        Ok(st::SUCCESS)
    })
}

// ---------------------------------------------------------------------------------------------
// External resources

extern "C" fn register_resource(enc: Ptr, params: Ptr) -> i32 {
    with_session("nvEncRegisterResource", enc, |call, s| {
        let v = read_params(
            call,
            s,
            params,
            "NV_ENC_REGISTER_RESOURCE",
            "NV_ENC_REGISTER_RESOURCE_VER",
            Union::None,
        )?;
        let mut g = s.lock();
        need_enc(&g)?;
        let codec = g.enc.as_ref().unwrap().codec;
        let ty = v.get("resourceType");
        if ty != 1 {
            return Err(fail(
                st::UNIMPLEMENTED,
                format!(
                    "resourceType {ty}: only NV_ENC_INPUT_RESOURCE_TYPE_CUDADEVICEPTR is supported"
                ),
            ));
        }
        if v.get("bufferUsage") != 0 {
            return Err(fail(
                st::UNSUPPORTED_PARAM,
                "only bufferUsage NV_ENC_INPUT_IMAGE is supported",
            ));
        }
        let ptr = v.get("resourceToRegister");
        if ptr == 0 {
            return Err(violation(st::INVALID_PTR, "NULL resourceToRegister"));
        }
        if crate::cuda::is_stream_ordered(ptr) {
            // GStreamer's nvcodec copies such memory for NVENC ("Stream ordered allocation is
            // not supported by encoder", d5d17d804e, 1.26); what the driver answers is not
            // documented: strict.
            return Err(violation(
                st::RESOURCE_REGISTER_FAILED,
                format!(
                    "resourceToRegister {ptr:#x} is stream-ordered memory (cuMemAllocAsync / a memory pool), which NVENC does not support"
                ),
            ));
        }
        let (w, h, pitch, fmt) = (
            v.get("width") as u32,
            v.get("height") as u32,
            v.get("pitch") as u32,
            v.get("bufferFormat") as u32,
        );
        if !caps::input_formats(s.sdk, codec).contains(&fmt) {
            return Err(fail(
                st::INVALID_PARAM,
                format!("bufferFormat {fmt:#x} is not an input format of {codec:?}"),
            ));
        }
        let (_, bpp, _) =
            format_info(s.sdk, fmt, h).ok_or_else(|| fail(st::INVALID_PARAM, "format"))?;
        if w == 0 || h == 0 {
            return Err(violation(
                st::INVALID_PARAM,
                format!("resource size {w}x{h}"),
            ));
        }
        if pitch % 4 != 0 || (pitch as usize) < w as usize * bpp {
            return Err(violation(
                st::INVALID_PARAM,
                format!(
                    "pitch {pitch} must be a multiple of 4 and at least width*bytes-per-pixel ({})",
                    w as usize * bpp
                ),
            ));
        }
        let handle = session::new_handle(Tag::Registered);
        g.regs.insert(
            handle,
            Reg {
                ptr,
                width: w,
                height: h,
                pitch,
                fmt,
                mapped: None,
            },
        );
        v.set("registeredResource", handle);
        call.arg("out.registeredResource", format!("{handle:#x}"));
        Ok(st::SUCCESS)
    })
}

extern "C" fn unregister_resource(enc: Ptr, res: Ptr) -> i32 {
    with_session("nvEncUnregisterResource", enc, |call, s| {
        let h = res as u64;
        call.arg("registeredResource", format!("{h:#x}"));
        let mut g = s.lock();
        need_enc(&g)?;
        let Some(r) = g.regs.remove(&h) else {
            let again = g.dead.contains(&h);
            return Err(violation(
                st::RESOURCE_NOT_REGISTERED,
                if again {
                    format!("resource {h:#x} unregistered twice")
                } else {
                    format!("unknown resource {h:#x}")
                },
            ));
        };
        g.dead.insert(h);
        if let Some(m) = r.mapped {
            // Allowed at teardown even if the output was never locked (reference §3.7).
            g.maps.remove(&m);
            g.dead.insert(m);
            call.note("resource was still mapped; unmapped implicitly");
        }
        Ok(st::SUCCESS)
    })
}

extern "C" fn map_input_resource(enc: Ptr, params: Ptr) -> i32 {
    with_session("nvEncMapInputResource", enc, |call, s| {
        let v = read_params(
            call,
            s,
            params,
            "NV_ENC_MAP_INPUT_RESOURCE",
            "NV_ENC_MAP_INPUT_RESOURCE_VER",
            Union::None,
        )?;
        let mut g = s.lock();
        need_enc(&g)?;
        let h = v.get("registeredResource");
        let Some(r) = g.regs.get_mut(&h) else {
            return Err(violation(
                st::RESOURCE_NOT_REGISTERED,
                format!("resource {h:#x} is not registered"),
            ));
        };
        if r.mapped.is_some() {
            // No client maps twice; the real driver's answer is unknown: strict.
            return Err(violation(
                st::MAP_FAILED,
                format!("resource {h:#x} is already mapped"),
            ));
        }
        let m = session::new_handle(Tag::Mapped);
        r.mapped = Some(m);
        let (fmt, ptr, pitch, height) = (r.fmt, r.ptr, r.pitch, r.height);
        g.maps.insert(m, h);
        // The documented guarantee of the call: CUDA work on the default stream that used the
        // input is complete before the engine reads it (nvEncodeAPI.h, NvEncMapInputResource).
        if let Some((_, _, rows)) = format_info(s.sdk, fmt, height) {
            let done = crate::cuda::map_fence(ptr, pitch as usize * rows);
            if done > 0 {
                call.arg("emu.default_stream_completed", done);
            }
        }
        v.set("mappedResource", m);
        v.set("mappedBufferFmt", fmt as u64);
        call.arg("out.mappedResource", format!("{m:#x}"));
        call.arg("out.mappedBufferFmt", fmt);
        Ok(st::SUCCESS)
    })
}

extern "C" fn unmap_input_resource(enc: Ptr, mapped: Ptr) -> i32 {
    with_session("nvEncUnmapInputResource", enc, |call, s| {
        let m = mapped as u64;
        call.arg("mappedInputBuffer", format!("{m:#x}"));
        let mut g = s.lock();
        need_enc(&g)?;
        let Some(h) = g.maps.remove(&m) else {
            if g.dead.contains(&m) {
                return Err(violation(
                    st::RESOURCE_NOT_MAPPED,
                    format!("{m:#x} is not mapped (unmapped twice?)"),
                ));
            }
            return Err(violation(
                st::RESOURCE_NOT_REGISTERED,
                format!("unknown mapped resource {m:#x}"),
            ));
        };
        g.dead.insert(m);
        if let Some(r) = g.regs.get_mut(&h) {
            r.mapped = None;
        }
        // Unmapping before the frame's output was locked is allowed (teardown): the emulator
        // copied the pixels at EncodePicture time.
        Ok(st::SUCCESS)
    })
}

// ---------------------------------------------------------------------------------------------
// EncodePicture

extern "C" fn encode_picture(enc: Ptr, params: Ptr) -> i32 {
    crate::stats::picture_submitted();
    with_session("nvEncEncodePicture", enc, |call, s| {
        let v = read_params(
            call,
            s,
            params,
            "NV_ENC_PIC_PARAMS",
            "NV_ENC_PIC_PARAMS_VER",
            Union::Session,
        )?;
        let mut g = s.lock();
        need_enc(&g)?;
        let flags = v.get("encodePicFlags") as u32;
        let inner = &mut *g;
        let e = inner.enc.as_mut().unwrap();
        if flags & 8 != 0 {
            // EOS: flush everything pending; idempotent; encoding may go on afterwards.
            if v.get("inputBuffer") != 0 || v.get("outputBitstream") != 0 {
                call.note("EOS with buffers: the buffers are ignored");
            }
            e.flush(&mut inner.outputs, call)
                .map_err(|m| fail(st::GENERIC, m))?;
            drop(g);
            s.cv.notify_all();
            return Ok(st::SUCCESS);
        }
        let ob = v.get("outputBitstream");
        match inner.outputs.get(&ob).map(|b| &b.state) {
            None => return Err(dead_or_unknown(inner, ob, "bitstream buffer")),
            Some(OutState::Idle) => {}
            Some(OutState::Locked(_)) => {
                return Err(violation(
                    st::INVALID_PARAM,
                    format!("bitstream buffer {ob:#x} is locked"),
                ));
            }
            Some(_) => {
                return Err(violation(
                    st::INVALID_PARAM,
                    format!(
                        "bitstream buffer {ob:#x} still holds a frame whose output was not locked and unlocked"
                    ),
                ));
            }
        }
        let ib = v.get("inputBuffer");
        let (w, h) = (e.width, e.height);
        let (iw, ih) = (v.get("inputWidth") as u32, v.get("inputHeight") as u32);
        // 0 means the encode size (FFmpeg's CUDA path never sets it).
        if (iw != 0 && iw != w) || (ih != 0 && ih != h) {
            return Err(violation(
                st::INVALID_PARAM,
                format!(
                    "inputWidth/Height {iw}x{ih} differ from the encode size {w}x{h} (scaling is not supported)"
                ),
            ));
        }
        let fmt_arg = v.get("bufferFmt") as u32;
        let ipitch = v.get("inputPitch") as usize;
        let (data, fmt, pitch, alloc_h) = if let Some(b) = inner.inputs.get(&ib) {
            if b.locked {
                return Err(violation(
                    st::INVALID_PARAM,
                    format!("input buffer {ib:#x} is still locked"),
                ));
            }
            if b.width < w || b.height < h {
                return Err(violation(
                    st::INVALID_PARAM,
                    "input buffer smaller than the encode size",
                ));
            }
            // The null backend encodes nothing, so it reads nothing either (no host copy that
            // the real engine, reading by DMA, would not make).
            let data = if null_backend() {
                Vec::new()
            } else {
                b.data.clone()
            };
            (data, b.fmt, b.pitch, b.height)
        } else if let Some(rh) = inner.maps.get(&ib) {
            let r = &inner.regs[rh];
            if r.width < w || r.height < h {
                return Err(violation(
                    st::INVALID_PARAM,
                    "registered resource smaller than the encode size",
                ));
            }
            let (_, _, rows) = format_info(s.sdk, r.fmt, r.height)
                .ok_or_else(|| fail(st::INVALID_PARAM, "format"))?;
            // The engine reads the input now (on the session's input stream, else the default
            // stream). A write the client queued on another stream and has not synchronised
            // may not have landed yet: a race on real hardware (the engine encodes whatever is
            // there, as here).
            let len = r.pitch as usize * rows;
            if let Some(w) = crate::cuda::pending_write(s.device, r.ptr, len, inner.streams.0) {
                call.violation(format!(
                    "NVENC reads the input at {:#x} ({len} bytes) while {w} that writes it is still pending: synchronise it first (cuStreamSynchronize / cuEventSynchronize, gst_cuda_memory_sync) or make it NVENC's input stream (nvEncSetIOCudaStreams)",
                    r.ptr
                ));
            }
            let data = if null_backend() {
                Vec::new()
            } else {
                crate::cuda::read_device(s.device, r.ptr, r.pitch as usize, rows)
                    .map_err(|m| fail(st::GENERIC, format!("reading the CUDA input: {m}")))?
            };
            (data, r.fmt, r.pitch as usize, r.height)
        } else if inner.regs.contains_key(&ib) {
            return Err(violation(
                st::INVALID_PARAM,
                "inputBuffer is a registered resource that was not mapped (pass mappedResource)",
            ));
        } else {
            return Err(dead_or_unknown(inner, ib, "input buffer / mapped resource"));
        };
        if fmt_arg != fmt {
            return Err(violation(
                st::INVALID_PARAM,
                format!("bufferFmt {fmt_arg:#x} differs from the input's format {fmt:#x}"),
            ));
        }
        if ipitch != 0 && ipitch != pitch {
            return Err(violation(
                st::INVALID_PARAM,
                format!("inputPitch {ipitch} differs from the input's pitch {pitch}"),
            ));
        }
        let (swfmt, ..) =
            format_info(s.sdk, fmt, alloc_h).ok_or_else(|| fail(st::INVALID_PARAM, "format"))?;
        let ps = v.get("pictureStruct");
        if ps > 1 {
            return Err(fail(
                st::UNSUPPORTED_PARAM,
                format!("pictureStruct {ps}: field encoding is not supported"),
            ));
        }
        let e = inner.enc.as_mut().unwrap();
        let cpp = match e.codec {
            CodecKind::H264 => "codecPicParams.h264PicParams.",
            CodecKind::Hevc => "codecPicParams.hevcPicParams.",
            CodecKind::Av1 => "codecPicParams.av1PicParams.",
        };
        let wave = v.get(&format!("{cpp}forceIntraRefreshWithFrameCnt"));
        if wave != 0 {
            if e.fip > 1 {
                // "forceIntraRefreshWithFrameCnt cannot be used if B frames are used in the GOP
                // structure specified" (nvEncodeAPI.h); the driver's answer is unknown.
                return Err(violation(
                    st::INVALID_PARAM,
                    "forceIntraRefreshWithFrameCnt with B-frames (nvEncodeAPI.h: cannot be used if B frames are used)",
                ));
            }
            // NVENC codes the wave's pictures with intra regions, no IDR; the software
            // encoders code no intra refresh (see the contract): the picture goes on as it would.
            call.note(format!(
                "intra-refresh wave of {wave} pictures asked (not coded by the software encoder; no IDR)"
            ));
        }
        // The picture's QP delta map (`crate::qpmap`), checked against the session's mode and
        // the encode size.
        let mut map_notes = Vec::new();
        let qp_map = crate::qpmap::read(
            e.qp_map,
            (w, h),
            v.get("qpDeltaMap"),
            v.get("qpDeltaMapSize") as u32,
            &mut map_notes,
        )
        .map_err(|m| violation(st::INVALID_PARAM, m))?;
        for n in map_notes {
            match n.strip_prefix("violation: ") {
                Some(v) => call.violation(v),
                None => call.note(n),
            }
        }
        if let Some(m) = &qp_map {
            call.arg("emu.qp_map", m.describe());
            if e.codec == CodecKind::Av1 {
                call.note(
                    "QP delta map: the AV1 software encoder (libaom) does not honour it; traced only",
                );
            }
        }
        let frame_idx = v.get("frameIdx") as u32;
        if e.ext.frame_idx_rule && frame_idx != e.next_frame_idx {
            // The header's rule; the real driver's reaction is unknown (it may encode with a
            // wrong lookahead or UHQ order): traced as a violation, the picture is encoded.
            call.violation(format!(
                "frameIdx {frame_idx}, expected {}: with lookaheadLevel or UHQ tuning frameIdx must increase monotonically from 0 (nvEncodeAPI.h)",
                e.next_frame_idx
            ));
        }
        e.next_frame_idx = frame_idx.wrapping_add(1);
        let mut ltr_notes = Vec::new();
        let pic_ltr =
            crate::sdkext::check_pic_ltr(&e.ext, e.codec, &v, e.ltr_marked, &mut ltr_notes)
                .map_err(|m| violation(st::INVALID_PARAM, m))?;
        for n in ltr_notes {
            call.note(n);
        }
        if pic_ltr.use_bitmap.is_some() {
            call.note(
                "ltrUseFrames: the software encoder cannot restrict prediction to long-term references; coded as usual",
            );
        }
        // SEI messages / metadata OBUs for this frame (payload arrays, 13.0 HDR fields).
        let extra = crate::payload::picture_payloads(&v, e.codec, e.out_hdr, call)
            .map_err(|b| violation(b.status, b.msg))?;
        // H.264 clock timestamps (enableTimeCode).
        let pic_timing = if e.time_code {
            Some(
                crate::timecode::picture_timing(&v, (e.swcfg.fps_num, e.swcfg.fps_den), call)
                    .map_err(|b| violation(b.status, b.msg))?,
            )
        } else {
            if e.codec == CodecKind::H264 {
                crate::timecode::note_unused(&v, call);
            }
            None
        };
        let meta = Meta {
            pts: v.get("inputTimeStamp"),
            duration: v.get("inputDuration"),
            frame_idx,
            display_idx: e.display_idx,
            kind: sw::PicKind::Auto,
            headers: false,
            ltr_mark: pic_ltr.mark,
            extra,
            pic_timing,
            submitted_at: Instant::now(),
        };
        e.display_idx = e.display_idx.wrapping_add(1);
        let frame = Frame {
            data,
            fmt: swfmt,
            pitch,
            alloc_h,
            meta,
            spspps: flags & 4 != 0,
            qp_map,
        };
        let done = e
            .submit(
                frame,
                flags & 2 != 0,
                flags & 1 != 0,
                &mut inner.outputs,
                ob,
                call,
            )
            .map_err(|m| fail(st::GENERIC, m))?;
        if done {
            e.poll(&mut inner.outputs, call)
                .map_err(|m| fail(st::GENERIC, m))?;
        }
        drop(g);
        s.cv.notify_all();
        Ok(if done {
            st::SUCCESS
        } else {
            st::NEED_MORE_INPUT
        })
    })
}
