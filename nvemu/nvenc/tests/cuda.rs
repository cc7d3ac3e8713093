//! CUDA device-pointer input, as FFmpeg and GStreamer send it: RegisterResource(CUDADEVICEPTR)
//! once, Map once, many EncodePicture with inputWidth/Height = 0. Runs in a child process with
//! `LD_LIBRARY_PATH` at the CUDA stand-in (`target/nvemu/lib/libcuda.so.1`, made by
//! `scripts/build-emulator`), since the emulator loads `libcuda.so.1` by name.

mod common;
use common::*;
use nvidia_encode::abi;

const W: u32 = 320;
const H: u32 = 240;

use cuda_abi::{CU_MEMORYTYPE_DEVICE, CU_MEMORYTYPE_HOST, CUDA_MEMCPY2D as Memcpy2D};

/// The copy of a `W`x`H` NV12 frame from `host` (pitch `W`) to `dptr` (pitch `pitch`).
fn upload_nv12(host: &[u8], dptr: u64, pitch: usize) -> Memcpy2D {
    Memcpy2D {
        srcMemoryType: CU_MEMORYTYPE_HOST,
        srcHost: host.as_ptr().cast(),
        srcPitch: W as usize,
        dstMemoryType: CU_MEMORYTYPE_DEVICE,
        dstDevice: dptr,
        dstPitch: pitch,
        WidthInBytes: W as usize,
        Height: (H * 3 / 2) as usize,
        ..Default::default()
    }
}

fn lib_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/nvemu/lib")
}

#[test]
fn cuda_device_pointer_input() {
    let _g = env(&[]);
    let dir = lib_dir();
    if !dir.join("libcuda.so.1").exists() {
        eprintln!(
            "SKIPPED: no CUDA stand-in at {} (run scripts/build-emulator)",
            dir.display()
        );
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "cuda_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("LD_LIBRARY_PATH", &dir)
        .output()
        .unwrap();
    let so = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && so.contains("CUDA CHILD OK"),
        "{so}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore]
fn cuda_child() {
    type FnI = unsafe extern "C" fn(u32) -> i32;
    type FnDev = unsafe extern "C" fn(*mut i32, i32) -> i32;
    type FnCtx = unsafe extern "C" fn(*mut u64, u32, i32) -> i32;
    type FnPitch = unsafe extern "C" fn(*mut u64, *mut usize, usize, usize, u32) -> i32;
    type FnCopy = unsafe extern "C" fn(*const Memcpy2D) -> i32;
    type FnPop = unsafe extern "C" fn(*mut u64) -> i32;
    // SAFETY: loading the CUDA stand-in (LD_LIBRARY_PATH set by the parent) and resolving
    // entry points with their cuda.h signatures.
    let (lib, ctx, dptr, pitch) = unsafe {
        let lib = libloading::Library::new("libcuda.so.1").expect("libcuda.so.1");
        let cu_init = *lib.get::<FnI>(b"cuInit\0").unwrap();
        let dev_get = *lib.get::<FnDev>(b"cuDeviceGet\0").unwrap();
        let ctx_create = *lib.get::<FnCtx>(b"cuCtxCreate_v2\0").unwrap();
        let alloc_pitch = *lib.get::<FnPitch>(b"cuMemAllocPitch_v2\0").unwrap();
        let pop = *lib.get::<FnPop>(b"cuCtxPopCurrent_v2\0").unwrap();
        assert_eq!(cu_init(0), 0);
        let mut dev = 0;
        assert_eq!(dev_get(&mut dev, 0), 0);
        let mut ctx = 0u64;
        assert_eq!(ctx_create(&mut ctx, 0, dev), 0);
        let mut dptr = 0u64;
        let mut pitch = 0usize;
        assert_eq!(
            alloc_pitch(&mut dptr, &mut pitch, W as usize, H as usize * 3 / 2, 16),
            0
        );
        let mut popped = 0;
        assert_eq!(pop(&mut popped), 0);
        (lib, ctx, dptr, pitch)
    };
    // SAFETY: as above.
    let copy = unsafe { *lib.get::<FnCopy>(b"cuMemcpy2D_v2\0").unwrap() };
    // SAFETY: as above.
    let push = unsafe {
        *lib.get::<unsafe extern "C" fn(u64) -> i32>(b"cuCtxPushCurrent_v2\0")
            .unwrap()
    };
    // SAFETY: as above.
    let pop = unsafe { *lib.get::<FnPop>(b"cuCtxPopCurrent_v2\0").unwrap() };

    let api = Api::new(abi::SDK_13_0);
    let (st, enc) = api.open_with(
        abi::ver(abi::SDK_13_0, "NV_ENC_OPEN_ENCODE_SESSION_EX_PARAMS_VER").unwrap(),
        abi::api_version(abi::SDK_13_0),
        ctx,
        1,
    );
    assert_eq!(st, SUCCESS);
    let (_, cfg) = api.preset(enc, HEVC, "NV_ENC_PRESET_P4_GUID", 1);
    cfg.set("frameIntervalP", 1);
    let ip = api.init_params(HEVC, W, H, &cfg);
    assert_eq!(api.init_raw(enc, &ip), SUCCESS);
    let nv12 = fmt(abi::SDK_13_0, "NV12");
    let (st, reg) = api.register(enc, dptr, W, H, pitch as u32, nv12);
    assert_eq!(st, SUCCESS);
    let (st, mapped) = api.map(enc, reg);
    assert_eq!(st, SUCCESS);
    let (_, out) = api.create_bitstream(enc);
    let mut stream = Vec::new();
    for n in 0..3u32 {
        let mut host = vec![0u8; (W * H * 3 / 2) as usize];
        for (i, b) in host.iter_mut().enumerate() {
            *b = if i < (W * H) as usize {
                ((i % W as usize + i / W as usize + 8 * n as usize) & 0xff) as u8
            } else {
                128
            };
        }
        let p = upload_nv12(&host, dptr, pitch);
        let mut popped = 0;
        // SAFETY: an HtoD copy of `host` into the pitched allocation, context pushed.
        unsafe {
            assert_eq!(push(ctx), 0);
            assert_eq!(copy(&p), 0);
            assert_eq!(pop(&mut popped), 0);
        }
        // the same mapped pointer backs every frame; inputWidth/Height 0 as FFmpeg sends them
        let pp = api.pic_params(mapped, out, nv12, n as u64, 0, n);
        pp.set("inputWidth", 0)
            .set("inputHeight", 0)
            .set("inputPitch", pitch as u64);
        assert_eq!(api.encode_raw(enc, &pp), SUCCESS);
        let o = api.take(enc, out);
        assert_eq!(o.pts, n as u64);
        stream.extend(o.data);
    }
    assert_eq!(api.eos(enc), SUCCESS);
    assert_eq!(api.unmap(enc, mapped), SUCCESS);
    assert_eq!(api.unregister(enc, reg), SUCCESS);
    assert_eq!(api.destroy(enc), SUCCESS);
    let f = std::env::temp_dir().join(format!("nvemu-cuda-{}.hevc", std::process::id()));
    std::fs::write(&f, &stream).unwrap();
    let o = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
        ])
        .arg(&f)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&f);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "3");
    println!("CUDA CHILD OK");
}

/// Stream ordering with the CUDA stand-in: the engine reading an input whose write is still
/// pending on another stream is a contract violation (traced; the call succeeds, as the real
/// driver's would, with whatever is there), while a host sync (stream or event) or the same
/// stream set with nvEncSetIOCudaStreams orders it; stream-ordered memory cannot be registered.
#[test]
fn cuda_stream_ordering() {
    let _g = env(&[]);
    let dir = lib_dir();
    if !dir.join("libcuda.so.1").exists() {
        eprintln!(
            "SKIPPED: no CUDA stand-in at {} (run scripts/build-emulator)",
            dir.display()
        );
        return;
    }
    let trace = std::env::temp_dir().join(format!("nvemu-order-{}.trace", std::process::id()));
    let _ = std::fs::remove_file(&trace);
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "stream_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("LD_LIBRARY_PATH", &dir)
        .env("NVEMU_TRACE", &trace)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&trace);
    let so = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && so.contains("STREAM CHILD OK"),
        "{so}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The violation of the last traced call named `call`, if any.
fn last_violation(trace: &str, call: &str) -> Option<String> {
    let text = std::fs::read_to_string(trace).unwrap();
    let line = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .rfind(|v| v["call"] == call)
        .unwrap_or_else(|| panic!("no {call} in the trace"));
    line.get("violation")
        .map(|v| v.as_str().unwrap_or_default().to_owned())
}

#[test]
#[ignore]
fn stream_child() {
    type FnI = unsafe extern "C" fn(u32) -> i32;
    type FnCtx = unsafe extern "C" fn(*mut u64, u32, i32) -> i32;
    type FnPitch = unsafe extern "C" fn(*mut u64, *mut usize, usize, usize, u32) -> i32;
    type FnStream = unsafe extern "C" fn(*mut u64, u32) -> i32;
    type FnCopyAsync = unsafe extern "C" fn(*const Memcpy2D, u64) -> i32;
    type FnH = unsafe extern "C" fn(u64) -> i32;
    type FnRecord = unsafe extern "C" fn(u64, u64) -> i32;
    type FnAllocAsync = unsafe extern "C" fn(*mut u64, usize, u64) -> i32;
    let trace = std::env::var("NVEMU_TRACE").expect("NVEMU_TRACE set by the parent");
    // SAFETY: the CUDA stand-in (LD_LIBRARY_PATH set by the parent), entry points with their
    // cuda.h signatures; the library stays loaded for the whole test.
    let lib = unsafe { libloading::Library::new("libcuda.so.1").expect("libcuda.so.1") };
    macro_rules! sym {
        ($t:ty, $n:literal) => {
            // SAFETY: as above.
            unsafe { *lib.get::<$t>($n).unwrap() }
        };
    }
    let cu_init = sym!(FnI, b"cuInit\0");
    let ctx_create = sym!(FnCtx, b"cuCtxCreate_v2\0");
    let alloc_pitch = sym!(FnPitch, b"cuMemAllocPitch_v2\0");
    let stream_create = sym!(FnStream, b"cuStreamCreate\0");
    let copy_async = sym!(FnCopyAsync, b"cuMemcpy2DAsync_v2\0");
    let stream_sync = sym!(FnH, b"cuStreamSynchronize\0");
    let event_create = sym!(FnStream, b"cuEventCreate\0");
    let event_record = sym!(FnRecord, b"cuEventRecord\0");
    let event_sync = sym!(FnH, b"cuEventSynchronize\0");
    let alloc_async = sym!(FnAllocAsync, b"cuMemAllocAsync\0");
    let (mut ctx, mut dptr, mut pitch) = (0u64, 0u64, 0usize);
    let (mut s, mut t, mut ev) = (0u64, 0u64, 0u64);
    // SAFETY: out-pointers to locals; the context stays current on this thread.
    unsafe {
        assert_eq!(cu_init(0), 0);
        assert_eq!(ctx_create(&mut ctx, 0, 0), 0);
        assert_eq!(
            alloc_pitch(&mut dptr, &mut pitch, W as usize, H as usize * 3 / 2, 16),
            0
        );
        assert_eq!(stream_create(&mut s, 0), 0);
        assert_eq!(stream_create(&mut t, 1), 0); // CU_STREAM_NON_BLOCKING
        assert_eq!(event_create(&mut ev, 2), 0);
    }

    let api = Api::new(3);
    let (st, enc) = api.open_with(
        nvidia_encode::abi::ver(3, "NV_ENC_OPEN_ENCODE_SESSION_EX_PARAMS_VER").unwrap(),
        nvidia_encode::abi::api_version(3),
        ctx,
        1,
    );
    assert_eq!(st, SUCCESS);
    let (_, cfg) = api.preset(enc, HEVC, "NV_ENC_PRESET_P4_GUID", 1);
    cfg.set("frameIntervalP", 1);
    let ip = api.init_params(HEVC, W, H, &cfg);
    assert_eq!(api.init_raw(enc, &ip), SUCCESS);
    let nv12 = fmt(3, "NV12");
    let (st, reg) = api.register(enc, dptr, W, H, pitch as u32, nv12);
    assert_eq!(st, SUCCESS);
    let (st, mut mapped) = api.map(enc, reg);
    assert_eq!(st, SUCCESS);
    let (_, out) = api.create_bitstream(enc);
    let host = vec![100u8; (W * H * 3 / 2) as usize];
    let upload = |stream: u64| {
        let p = upload_nv12(&host, dptr, pitch);
        // SAFETY: an HtoD copy of `host` into the pitched allocation, on `stream`.
        assert_eq!(unsafe { copy_async(&p, stream) }, 0);
    };
    let mut n = 0u32;
    let mut encode_from = |mapped: Ptr, what: &str, expect_violation: bool| {
        let pp = api.pic_params(mapped, out, nv12, n as u64, 0, n);
        pp.set("inputWidth", 0).set("inputHeight", 0);
        assert_eq!(api.encode_raw(enc, &pp), SUCCESS, "{what}");
        let _ = api.take(enc, out);
        let v = last_violation(&trace, "nvEncEncodePicture");
        assert_eq!(v.is_some(), expect_violation, "{what}: {v:?}");
        if let Some(v) = v {
            assert!(
                v.contains("cuMemcpy2DAsync_v2") && v.contains("still pending"),
                "{v}"
            );
        }
        n += 1;
    };
    // SAFETY: handles made above by this library, on the current context.
    let sync = |h: u64| unsafe { stream_sync(h) };
    // SAFETY: as above.
    let record = |e: u64, h: u64| unsafe { event_record(e, h) };
    // SAFETY: as above.
    let esync = |e: u64| unsafe { event_sync(e) };
    upload(s);
    encode_from(mapped, "write pending on a stream, no sync", true);
    upload(s);
    assert_eq!(sync(s), 0);
    encode_from(mapped, "stream synchronised", false);
    upload(s);
    assert_eq!(record(ev, s), 0);
    assert_eq!(esync(ev), 0);
    encode_from(mapped, "event after the write synchronised", false);
    upload(0);
    encode_from(
        mapped,
        "write pending on the legacy stream: ordered before the default stream",
        false,
    );
    assert_eq!(api.set_io_streams(enc, s, s), SUCCESS);
    upload(s);
    encode_from(mapped, "write pending on NVENC's input stream", false);
    upload(t);
    encode_from(
        mapped,
        "write pending on another (non-blocking) stream",
        true,
    );
    assert_eq!(sync(t), 0);
    // nvEncMapInputResource completes the default stream's work on the input (its documented
    // guarantee), and nothing else: NVENC reads on a non-blocking stream from here on, which
    // the legacy stream's work is not ordered before.
    assert_eq!(api.set_io_streams(enc, t, t), SUCCESS);
    upload(0);
    encode_from(
        mapped,
        "legacy write, read on a non-blocking stream, mapped before it",
        true,
    );
    upload(0);
    assert_eq!(api.unmap(enc, mapped), SUCCESS);
    let (st, m) = api.map(enc, reg);
    assert_eq!(st, SUCCESS);
    mapped = m;
    let fenced = std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .rev()
        .find(|l| l.contains("nvEncMapInputResource"))
        .unwrap()
        .contains("emu.default_stream_completed");
    assert!(
        fenced,
        "the map completes the legacy stream's pending write"
    );
    encode_from(mapped, "legacy write, then nvEncMapInputResource", false);
    upload(s);
    assert_eq!(api.unmap(enc, mapped), SUCCESS);
    let (st, m) = api.map(enc, reg);
    assert_eq!(st, SUCCESS);
    mapped = m;
    encode_from(
        mapped,
        "write on a blocking stream (not the default one), then a map",
        true,
    );
    assert_eq!(sync(s), 0);

    // stream-ordered memory: NVENC does not take it
    let mut so = 0u64;
    // SAFETY: an out-pointer to a local, a stream made above.
    let r = unsafe { alloc_async(&mut so, pitch * H as usize * 3 / 2, s) };
    assert_eq!(r, 0);
    assert_eq!(sync(s), 0);
    let (st, _) = api.register(enc, so, W, H, pitch as u32, nv12);
    assert_eq!(st, 23, "NV_ENC_ERR_RESOURCE_REGISTER_FAILED");
    let v = last_violation(&trace, "nvEncRegisterResource").expect("a violation");
    assert!(v.contains("stream-ordered"), "{v}");

    assert_eq!(api.eos(enc), SUCCESS);
    assert_eq!(api.unmap(enc, mapped), SUCCESS);
    assert_eq!(api.unregister(enc, reg), SUCCESS);
    assert_eq!(api.destroy(enc), SUCCESS);
    println!("STREAM CHILD OK");
}
