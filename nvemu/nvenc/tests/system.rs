//! The emulated machine across processes (`NVEMU_SYSTEM`): sessions placed on their CUDA
//! context's GPU (`NVEMU_GPU_MODELS`), the GeForce cap counted per system over processes and
//! cards, `NVEMU_SESSION_LIMIT` per GPU, and what the NVML stand-in (`libnvidia-ml.so.1`)
//! reports of them: session counts, utilisation and fps from the timing model.
//!
//! The sessions are opened by child processes (this binary, `--ignored` tests), each with the
//! CUDA stand-in loaded by name (`LD_LIBRARY_PATH` at `target/nvemu/lib`, made by
//! `scripts/build-emulator`); the parent reads NVML. A child holds its sessions until its stdin
//! closes.

mod common;
use common::*;
use nvidia_encode::abi;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

const OUT_OF_MEMORY: i32 = 10;

fn lib_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/nvemu/lib")
}

fn built() -> bool {
    let ok = ["libcuda.so.1", "libnvidia-ml.so.1"]
        .iter()
        .all(|l| lib_dir().join(l).exists());
    if !ok {
        eprintln!(
            "SKIPPED: no stand-ins in {} (run scripts/build-emulator)",
            lib_dir().display()
        );
    }
    ok
}

/// A child process running the `--ignored` test `name` with `vars`; it reports on stdout.
struct Kid {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Kid {
    fn spawn(name: &str, system: &Path, vars: &[(&str, &str)]) -> Kid {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            name,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("LD_LIBRARY_PATH", lib_dir())
        .env("NVEMU_SYSTEM", system)
        // The parent's `env` sets no cap for itself; the child takes the model's unless `vars`
        // give one.
        .env_remove("NVEMU_SESSION_LIMIT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        Kid { child, out }
    }

    /// The child's reports (`ST ...` lines) up to `READY` (panics if it ends before).
    fn ready(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let mut l = String::new();
            assert!(
                self.out.read_line(&mut l).unwrap() > 0,
                "child ended: {lines:?}"
            );
            // libtest writes its own lines, and `test NAME ... ` before the first of ours.
            if l.contains("READY") {
                return lines;
            }
            if let Some(i) = l.find("ST ") {
                lines.push(l[i + 3..].trim().to_owned());
            }
        }
    }

    /// Closes the child's stdin and waits for it (so that its pid is gone, not a zombie).
    fn finish(mut self) {
        drop(self.child.stdin.take());
        let st = self.child.wait().unwrap();
        assert!(st.success(), "child failed: {st}");
    }
}

/// The NVML stand-in, loaded by path.
struct Nvml {
    lib: libloading::Library,
}

type H = *mut u8;

impl Nvml {
    fn load() -> Nvml {
        // SAFETY: loading the NVML stand-in runs no initialiser of consequence.
        let lib = unsafe { libloading::Library::new(lib_dir().join("libnvidia-ml.so.1")) }.unwrap();
        let n = Nvml { lib };
        let init = n.f::<unsafe extern "C" fn() -> u32>("nvmlInit_v2");
        // SAFETY: nvml.h signature, no arguments.
        let st = unsafe { init() };
        assert_eq!(st, 0);
        n
    }

    fn f<T: Copy>(&self, name: &str) -> T {
        // SAFETY: the caller names the entry point's nvml.h signature as T.
        unsafe { *self.lib.get::<T>(name.as_bytes()).unwrap() }
    }

    fn device(&self, i: u32) -> H {
        let mut h: H = std::ptr::null_mut();
        let f = self.f::<unsafe extern "C" fn(u32, *mut H) -> u32>("nvmlDeviceGetHandleByIndex_v2");
        // SAFETY: valid out-pointer.
        assert_eq!(unsafe { f(i, &mut h) }, 0);
        h
    }

    /// (status, sessions, average fps, average latency µs).
    fn stats(&self, i: u32) -> (u32, u32, u32, u32) {
        let (mut n, mut fps, mut lat) = (0, 0, 0);
        let f = self.f::<unsafe extern "C" fn(H, *mut u32, *mut u32, *mut u32) -> u32>(
            "nvmlDeviceGetEncoderStats",
        );
        // SAFETY: valid out-pointers.
        let st = unsafe { f(self.device(i), &mut n, &mut fps, &mut lat) };
        (st, n, fps, lat)
    }

    fn sessions(&self, i: u32) -> u32 {
        let (st, n, _, _) = self.stats(i);
        assert_eq!(st, 0);
        n
    }

    /// (status, utilisation %, sampling period µs).
    fn utilisation(&self, i: u32) -> (u32, u32, u32) {
        let (mut u, mut p) = (0, 0);
        let f = self.f::<unsafe extern "C" fn(H, *mut u32, *mut u32) -> u32>(
            "nvmlDeviceGetEncoderUtilization",
        );
        // SAFETY: valid out-pointers.
        let st = unsafe { f(self.device(i), &mut u, &mut p) };
        (st, u, p)
    }

    /// (status, capacity %) for an `nvmlEncoderType_t`.
    fn capacity(&self, i: u32, codec: u32) -> (u32, u32) {
        let mut c = 0;
        let f =
            self.f::<unsafe extern "C" fn(H, u32, *mut u32) -> u32>("nvmlDeviceGetEncoderCapacity");
        // SAFETY: valid out-pointer.
        let st = unsafe { f(self.device(i), codec, &mut c) };
        (st, c)
    }

    fn text(&self, name: &str, i: u32) -> String {
        let mut buf = [0u8; 96];
        let f = self.f::<unsafe extern "C" fn(H, *mut u8, u32) -> u32>(name);
        // SAFETY: a 96-byte buffer.
        let st = unsafe { f(self.device(i), buf.as_mut_ptr(), 96) };
        assert_eq!(st, 0, "{name}");
        let n = buf.iter().position(|&b| b == 0).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

impl Drop for Nvml {
    fn drop(&mut self) {
        // SAFETY: nvml.h signature.
        unsafe { self.f::<unsafe extern "C" fn() -> u32>("nvmlShutdown")() };
    }
}

/// A fresh machine file for one test.
fn machine(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("nvemu-system");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

/// Sets the parent's own environment for NVML (it reads the machine description at each call).
fn parent_env<'a>(
    system: &Path,
    vars: &[(&'a str, &'a str)],
) -> std::sync::MutexGuard<'static, ()> {
    let s = system.to_str().unwrap().to_owned();
    let g = env(vars);
    // NVML applies the caps as the NVENC stand-in would: the model's unless `vars` give one.
    for k in [
        "NVEMU_GPU_MODELS",
        "NVEMU_GPU_COUNT",
        "NVEMU_SYSTEM",
        "NVEMU_SESSION_LIMIT",
    ] {
        // SAFETY: the tests of this binary hold ENV (from `env`) while they touch the environment.
        unsafe { std::env::remove_var(k) };
    }
    // SAFETY: as above.
    unsafe { std::env::set_var("NVEMU_SYSTEM", s) };
    for (k, v) in vars {
        // SAFETY: as above.
        unsafe { std::env::set_var(k, v) };
    }
    g
}

/// Two processes share a machine of three GPUs (GeForce RTX 4090, RTX A4000, GeForce RTX 2080):
/// the GeForce cap of 8 counts the sessions of both processes on both GeForce cards; the
/// professional card has none; NVML reports every process's sessions per GPU, and a process
/// that ends frees its sessions (it does not destroy them).
#[test]
fn geforce_cap_per_system_across_processes() {
    if !built() {
        return;
    }
    let sys = machine("geforce");
    let models = [("NVEMU_GPU_MODELS", "ada,ampere,turing")];
    let _g = parent_env(&sys, &models);
    let mut a = Kid::spawn(
        "child_hold",
        &sys,
        &[models[0], ("CHILD_GPU", "0"), ("CHILD_SESSIONS", "5")],
    );
    assert_eq!(a.ready(), vec!["0"; 5], "process A: 5 sessions on GPU 0");
    let mut b = Kid::spawn(
        "child_hold",
        &sys,
        &[models[0], ("CHILD_GPU", "2"), ("CHILD_SESSIONS", "4")],
    );
    assert_eq!(
        b.ready(),
        vec!["0", "0", "0", &OUT_OF_MEMORY.to_string()],
        "process B on GPU 2 (GeForce): the 9th GeForce session of the system is refused"
    );
    let mut c = Kid::spawn(
        "child_hold",
        &sys,
        &[models[0], ("CHILD_GPU", "1"), ("CHILD_SESSIONS", "10")],
    );
    assert_eq!(
        c.ready(),
        vec!["0"; 10],
        "process C on GPU 1 (professional): no cap"
    );

    let nvml = Nvml::load();
    assert_eq!(
        nvml.text("nvmlDeviceGetName", 1),
        "NVIDIA RTX A4000 (nvemu)"
    );
    assert_eq!(
        nvml.text("nvmlDeviceGetUUID", 2),
        "GPU-6e76656d-752d-6770-752d-757569020705",
        "the CUDA stand-in's UUID bytes: 'nvemu-gpu-uuid', ordinal 2, compute capability 7.5"
    );
    assert_eq!(
        [nvml.sessions(0), nvml.sessions(1), nvml.sessions(2)],
        [5, 10, 3]
    );
    // GeForce cards at the system cap have no capacity left; the A4000 has.
    assert_eq!(nvml.capacity(0, 1), (0, 0));
    assert_eq!(nvml.capacity(1, 1), (0, 100));
    // AV1: only the RTX 4090 has it.
    assert_eq!(nvml.capacity(2, 2).0, 3, "NVML_ERROR_NOT_SUPPORTED");

    a.finish();
    assert_eq!(
        [nvml.sessions(0), nvml.sessions(1), nvml.sessions(2)],
        [0, 10, 3]
    );
    assert_eq!(nvml.capacity(0, 1), (0, 100));
    b.finish();
    c.finish();
    assert_eq!(
        [nvml.sessions(0), nvml.sessions(1), nvml.sessions(2)],
        [0, 0, 0]
    );
}

/// `NVEMU_SESSION_LIMIT=N` is a cap of N per GPU, over every process of the machine (the
/// issue's placement test runs 14 sessions over 2 GPUs capped at 8 each this way).
#[test]
fn per_gpu_limit_across_processes() {
    if !built() {
        return;
    }
    let sys = machine("pergpu");
    let vars = [("NVEMU_GPU_COUNT", "2"), ("NVEMU_SESSION_LIMIT", "8")];
    let _g = parent_env(&sys, &vars);
    let kid = |gpu: &'static str, n: &'static str| {
        let mut v = vars.to_vec();
        v.extend([("CHILD_GPU", gpu), ("CHILD_SESSIONS", n)]);
        Kid::spawn("child_hold", &sys, &v)
    };
    let mut a = kid("0", "7");
    assert_eq!(a.ready(), vec!["0"; 7]);
    let mut b = kid("0", "2");
    assert_eq!(
        b.ready(),
        vec!["0", &OUT_OF_MEMORY.to_string()],
        "8 on GPU 0 at most"
    );
    let mut c = kid("1", "8");
    assert_eq!(c.ready(), vec!["0"; 8], "GPU 1 is counted apart");
    let nvml = Nvml::load();
    assert_eq!([nvml.sessions(0), nvml.sessions(1)], [8, 8]);
    for k in [a, b, c] {
        k.finish();
    }
    assert_eq!([nvml.sessions(0), nvml.sessions(1)], [0, 0]);
}

/// The timing model's engine time reaches NVML: one session on a 2-engine RTX 4090 that keeps
/// its engine busy uses about half the GPU's encoder; its fps is the model's.
#[test]
fn utilisation_and_fps_from_the_timing_model() {
    if !built() {
        return;
    }
    let sys = machine("util");
    let vars = [("NVEMU_GPU_COUNT", "2")];
    let _g = parent_env(&sys, &vars);
    let nvml = Nvml::load();
    assert_eq!(nvml.utilisation(1), (0, 0, 1_000_000));
    let mut k = Kid::spawn(
        "child_encode",
        &sys,
        &[
            vars[0],
            ("CHILD_GPU", "1"),
            ("NVEMU_ENCODE_MS", "10"),
            ("CHILD_FRAMES", "120"),
        ],
    );
    let lines = k.ready();
    let (st, util, _) = nvml.utilisation(1);
    let (_, n, fps, lat) = nvml.stats(1);
    let idle = nvml.utilisation(0);
    k.finish();
    assert_eq!(st, 0);
    // 10 ms pictures back to back on one of two engines: ~100 per second, ~50 % of the GPU.
    assert!(
        (35..=50).contains(&util),
        "utilisation {util} % ({lines:?})"
    );
    assert_eq!(n, 1);
    assert!((70..=101).contains(&fps), "fps {fps}");
    assert!((10_000..=40_000).contains(&lat), "latency {lat} µs");
    assert_eq!(idle, (0, 0, 1_000_000), "the other GPU is idle");
    assert_eq!(nvml.sessions(1), 0);
}

/// The no-NVENC model (H100): NVML answers as the real driver did on an H200 (2026-12-07):
/// 0 % utilisation over 100 ms, capacity 100 for H.264/HEVC, NOT_SUPPORTED for AV1, no
/// sessions; only the session open tells the GPU apart.
#[test]
fn no_nvenc_device() {
    if !built() {
        return;
    }
    let sys = machine("h100");
    let _g = parent_env(&sys, &[("NVEMU_GPU_MODELS", "no-nvenc,ada")]);
    let nvml = Nvml::load();
    let mut count = 0u32;
    let f = nvml.f::<unsafe extern "C" fn(*mut u32) -> u32>("nvmlDeviceGetCount_v2");
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { f(&mut count) }, 0);
    assert_eq!(count, 2);
    assert_eq!(
        nvml.text("nvmlDeviceGetName", 0),
        "NVIDIA H100 80GB HBM3 (nvemu)"
    );
    assert_eq!(nvml.utilisation(0), (0, 0, 100_000));
    assert_eq!(nvml.capacity(0, 0), (0, 100), "H.264");
    assert_eq!(nvml.capacity(0, 2).0, 3, "AV1: NOT_SUPPORTED");
    assert_eq!(nvml.stats(0), (0, 0, 0, 0));
    assert_eq!(nvml.capacity(1, 2), (0, 100));
    let mut k = Kid::spawn(
        "child_hold",
        &sys,
        &[
            ("NVEMU_GPU_MODELS", "no-nvenc,ada"),
            ("CHILD_GPU", "0"),
            ("CHILD_SESSIONS", "1"),
        ],
    );
    assert_eq!(k.ready(), vec!["2"], "NV_ENC_ERR_UNSUPPORTED_DEVICE");
    k.finish();
}

/// A CUDA context on device `gpu` (the CUDA stand-in, loaded by name).
fn context(gpu: i32) -> (libloading::Library, u64) {
    type FnI = unsafe extern "C" fn(u32) -> i32;
    type FnDev = unsafe extern "C" fn(*mut i32, i32) -> i32;
    type FnCtx = unsafe extern "C" fn(*mut u64, u32, i32) -> i32;
    type FnPop = unsafe extern "C" fn(*mut u64) -> i32;
    // SAFETY: the CUDA stand-in (LD_LIBRARY_PATH set by the parent), entry points with their
    // cuda.h signatures.
    unsafe {
        let lib = libloading::Library::new("libcuda.so.1").expect("libcuda.so.1");
        assert_eq!(lib.get::<FnI>(b"cuInit\0").unwrap()(0), 0);
        let mut dev = 0;
        assert_eq!(
            lib.get::<FnDev>(b"cuDeviceGet\0").unwrap()(&mut dev, gpu),
            0
        );
        let mut ctx = 0u64;
        assert_eq!(
            lib.get::<FnCtx>(b"cuCtxCreate_v2\0").unwrap()(&mut ctx, 0, dev),
            0
        );
        let mut popped = 0;
        assert_eq!(
            lib.get::<FnPop>(b"cuCtxPopCurrent_v2\0").unwrap()(&mut popped),
            0
        );
        (lib, ctx)
    }
}

fn var(k: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| panic!("{k}"))
}

fn open_on(api: &Api, ctx: u64) -> (i32, Ptr) {
    api.open_with(
        abi::ver(abi::SDK_13_0, "NV_ENC_OPEN_ENCODE_SESSION_EX_PARAMS_VER").unwrap(),
        abi::api_version(abi::SDK_13_0),
        ctx,
        1,
    )
}

fn wait_for_parent() {
    println!("READY");
    std::io::stdout().flush().unwrap();
    let mut s = String::new();
    while std::io::stdin().read_line(&mut s).unwrap_or(0) > 0 {}
}

/// Child: opens `CHILD_SESSIONS` sessions on GPU `CHILD_GPU`, prints each status, holds them.
#[test]
#[ignore]
fn child_hold() {
    let _g = env(&[(
        "NVEMU_SESSION_LIMIT",
        &std::env::var("NVEMU_SESSION_LIMIT").unwrap_or("default".into()),
    )]);
    let (_lib, ctx) = context(var("CHILD_GPU").parse().unwrap());
    let api = Api::new(abi::SDK_13_0);
    for _ in 0..var("CHILD_SESSIONS").parse::<u32>().unwrap() {
        let (st, _enc) = open_on(&api, ctx);
        println!("ST {st}");
    }
    wait_for_parent();
}

/// Child: one H.264 session on GPU `CHILD_GPU` encodes `CHILD_FRAMES` frames one after the
/// other (null backend), then holds it.
#[test]
#[ignore]
fn child_encode() {
    let _g = env(&[
        ("NVEMU_ENCODE_MS", &var("NVEMU_ENCODE_MS")),
        ("NVEMU_BACKEND", "null"),
    ]);
    let (_lib, ctx) = context(var("CHILD_GPU").parse().unwrap());
    let api = Api::new(abi::SDK_13_0);
    let (st, enc) = open_on(&api, ctx);
    assert_eq!(st, SUCCESS);
    let (_, cfg) = api.preset(enc, H264, "NV_ENC_PRESET_P4_GUID", 1);
    cfg.set("frameIntervalP", 1);
    let ip = api.init_params(H264, 320, 240, &cfg);
    assert_eq!(api.init_raw(enc, &ip), SUCCESS, "{}", api.last_error(enc));
    let nv12 = fmt(abi::SDK_13_0, "NV12");
    let (_, inb) = api.create_input(enc, 320, 240, nv12);
    let (_, out) = api.create_bitstream(enc);
    let start = std::time::Instant::now();
    for i in 0..var("CHILD_FRAMES").parse::<u64>().unwrap() {
        assert_eq!(api.encode(enc, inb, out, nv12, i, 0), SUCCESS);
        api.take(enc, out);
    }
    println!("encoded in {:?}", start.elapsed());
    wait_for_parent();
}

/// Without `NVEMU_SYSTEM` the machine is this process: its sessions are kept in memory and
/// given to NVML through `nvemu_nvenc_system_snapshot` (one line each, gone once destroyed).
#[test]
fn snapshot_of_this_process() {
    let _g = env(&[]);
    // SAFETY: the tests of this binary hold ENV (from `env`) while they touch the environment.
    unsafe { std::env::remove_var("NVEMU_SYSTEM") };
    let snapshot = || {
        use nvidia_encode::system::nvemu_nvenc_system_snapshot as snap;
        // SAFETY: NULL buffer: length only.
        let n = unsafe { snap(std::ptr::null_mut(), 0) };
        let mut buf = vec![0u8; n];
        // SAFETY: `buf` holds n bytes.
        assert_eq!(unsafe { snap(buf.as_mut_ptr().cast(), n) }, n);
        nvidia_encode::registry::parse_all(&String::from_utf8(buf).unwrap())
    };
    let me = std::process::id();
    let before = snapshot().iter().filter(|r| r.pid == me).count();
    let api = Api::new(abi::SDK_13_0);
    let (st, a) = api.open();
    assert_eq!(st, SUCCESS);
    let (st, b) = api.open();
    assert_eq!(st, SUCCESS);
    let now = snapshot();
    assert_eq!(now.iter().filter(|r| r.pid == me).count(), before + 2);
    assert!(
        now.iter().all(|r| r.device == 0),
        "made-up contexts are on GPU 0"
    );
    assert_eq!(api.destroy(a), SUCCESS);
    assert_eq!(api.destroy(b), SUCCESS);
    assert_eq!(snapshot().iter().filter(|r| r.pid == me).count(), before);
}
