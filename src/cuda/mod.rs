//! Safe wrapper over the parts of the CUDA driver API the NVENC encoders use.
//!
//! `libcuda.so.1` is loaded at run time (see [`ffi`]); every function here returns
//! [`CudaError::Load`] when it is missing. All resources are RAII objects that release what
//! they took on every path, errors included, in reverse order of acquisition:
//!
//! - [`Context`]: a CUDA context, not left current on any thread. [`Context::push`] makes it
//!   current until the returned [`ContextGuard`] is dropped.
//! - [`Stream`], [`DevicePitched`], [`DeviceBuffer`], [`HostPinned`]: hold an
//!   `Arc<Context>` and push it themselves whenever they call the driver (creation, copies,
//!   destruction), so callers never need to manage the current context for them, and the
//!   context outlives them.
//!
//! Copies are synchronous from the caller's point of view (they complete, or at least no longer
//! use host memory, before returning), which is what makes borrowing host slices safe.
//! [`copy_2d_async`] is the `unsafe` exception.
//!
//! A context owned by GStreamer's CUDA library (`GstCudaContext`, shared through the
//! pipeline's context query, see [`gst`]) is wrapped by [`Context::borrowed`]: used like an own
//! one, but never destroyed here.

mod copy;
pub mod ffi;
pub mod gst;
pub mod pinned;

pub use copy::{Dst2D, Src2D, copy_2d, copy_2d_async, copy_2d_peer};

use std::ffi::{CStr, c_char, c_void};
use std::marker::PhantomData;
use std::ptr;
use std::sync::{Arc, LazyLock};

use ffi::{CUDA_SUCCESS, CUcontext, CUdevice, CUdeviceptr, CUresult, CudaLib};

/// Error from the CUDA layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CudaError {
    /// `libcuda.so.1` could not be loaded or lacks an entry point; the message says why and
    /// that an NVIDIA driver must be installed.
    #[error("{0}")]
    Load(String),
    /// A driver call returned an error code.
    #[error("`{call}` failed: {name} ({code}): {description}")]
    Call {
        /// Exported name of the entry point, e.g. `cuMemAllocPitch_v2`.
        call: &'static str,
        /// The `CUresult` value.
        code: CUresult,
        /// Its name from `cuGetErrorName`, e.g. `CUDA_ERROR_OUT_OF_MEMORY`.
        name: String,
        /// Its description from `cuGetErrorString`, e.g. `out of memory`.
        description: String,
    },
    /// Arguments rejected before calling the driver (e.g. a host slice too small for the copy
    /// geometry, or a stream of another context); the driver was not called.
    #[error("`{call}` not called: {reason}")]
    InvalidArgument {
        /// The entry point that would have been called.
        call: &'static str,
        /// What is wrong with the arguments.
        reason: String,
    },
}

impl CudaError {
    /// The `CUresult` code of a [`CudaError::Call`], `None` for the other variants.
    pub fn code(&self) -> Option<CUresult> {
        match self {
            CudaError::Call { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Builds a [`CudaError::Call`], asking the driver for the code's name and description.
    fn call(lib: &CudaLib, call: &'static str, code: CUresult) -> CudaError {
        CudaError::Call {
            call,
            code,
            name: error_text(lib.cuGetErrorName, code)
                .unwrap_or_else(|| "CUDA_ERROR_UNRECOGNIZED".to_owned()),
            description: error_text(lib.cuGetErrorString, code)
                .unwrap_or_else(|| "unrecognized error code".to_owned()),
        }
    }
}

/// Calls `cuGetErrorName` or `cuGetErrorString`; `None` if the driver does not know `code`.
fn error_text(
    f: unsafe extern "C" fn(CUresult, *mut *const c_char) -> CUresult,
    code: CUresult,
) -> Option<String> {
    let mut s: *const c_char = ptr::null();
    // SAFETY: `f` is cuGetErrorName/cuGetErrorString, which only write a pointer to `s` (a
    // valid out-pointer on our stack); they need no initialization or current context.
    let r = unsafe { f(code, &mut s) };
    if r != CUDA_SUCCESS || s.is_null() {
        return None;
    }
    // SAFETY: on success the driver sets `s` to a NUL-terminated string with static storage
    // duration inside the library, which stays loaded for the whole process.
    let text = unsafe { CStr::from_ptr(s) };
    Some(text.to_string_lossy().into_owned())
}

/// `Ok(())` for `CUDA_SUCCESS`, else the [`CudaError::Call`] for `call`.
fn check(lib: &CudaLib, call: &'static str, code: CUresult) -> Result<(), CudaError> {
    if code == CUDA_SUCCESS {
        Ok(())
    } else {
        Err(CudaError::call(lib, call, code))
    }
}

/// The loaded library, without `cuInit`.
fn loaded() -> Result<&'static CudaLib, CudaError> {
    ffi::lib().map_err(|e| CudaError::Load(e.to_owned()))
}

/// Result of the one `cuInit(0)` call of the process.
static INIT: LazyLock<Result<(), CudaError>> = LazyLock::new(|| {
    let lib = loaded()?;
    // SAFETY: cuInit takes a flags word (must be 0) and has no other preconditions; it is
    // thread-safe and may be called more than once.
    let r = unsafe { (lib.cuInit)(0) };
    check(lib, "cuInit", r)
});

/// The loaded and initialized library.
fn driver() -> Result<&'static CudaLib, CudaError> {
    let lib = loaded()?;
    INIT.clone()?;
    Ok(lib)
}

/// Loads `libcuda.so.1` and calls `cuInit(0)`, once per process; later calls return the
/// first result.
///
/// Errors: [`CudaError::Load`] without a driver; [`CudaError::Call`] from `cuInit` (e.g.
/// `CUDA_ERROR_NO_DEVICE` when the driver is installed but no GPU is usable).
/// Every other function calls this itself; calling it first is only useful to probe.
pub fn init() -> Result<(), CudaError> {
    driver().map(|_| ())
}

/// Version of the installed driver's CUDA API, `1000 * major + 10 * minor` (12060 for 12.6).
///
/// Does not need [`init`], so it also works where `cuInit` fails.
pub fn driver_version() -> Result<i32, CudaError> {
    let lib = loaded()?;
    let mut v = 0;
    // SAFETY: `v` is a valid out-pointer; cuDriverGetVersion needs no initialization.
    let r = unsafe { (lib.cuDriverGetVersion)(&mut v) };
    check(lib, "cuDriverGetVersion", r)?;
    Ok(v)
}

/// Number of CUDA-capable devices (ordinals `0..count`).
pub fn device_count() -> Result<i32, CudaError> {
    let lib = driver()?;
    let mut n = 0;
    // SAFETY: `n` is a valid out-pointer; the driver is initialized.
    let r = unsafe { (lib.cuDeviceGetCount)(&mut n) };
    check(lib, "cuDeviceGetCount", r)?;
    Ok(n)
}

/// The context current on the calling thread (`cuCtxGetCurrent`), null if none. For
/// comparisons with [`Context::as_raw`]; never dereferenced here.
pub fn current_context_raw() -> Result<*mut c_void, CudaError> {
    let lib = driver()?;
    let mut c: CUcontext = ptr::null_mut();
    // SAFETY: `c` is a valid out-pointer; the driver is initialized.
    let r = unsafe { (lib.cuCtxGetCurrent)(&mut c) };
    check(lib, "cuCtxGetCurrent", r)?;
    Ok(c)
}

/// Whether `ptr` lies in a stream-ordered allocation (`cuMemAllocAsync`, a memory pool, as
/// GStreamer 1.26's CUDA pools make with stream-ordered allocation enabled):
/// `CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE` is set. NVENC does not take such memory as an input
/// resource (GStreamer's nvcodec copies it too). `false` where the driver cannot say (older
/// than CUDA 11.3, or not device memory).
pub fn is_stream_ordered(ptr: u64) -> bool {
    let Ok(lib) = driver() else { return false };
    let mut pool: *mut c_void = ptr::null_mut();
    // SAFETY: for this attribute the driver writes one CUmemoryPool (a pointer) into `pool`, a
    // valid out-pointer; `ptr` is only looked up (unified addressing: no context needed).
    let r = unsafe {
        (lib.cuPointerGetAttribute)(
            (&mut pool as *mut *mut c_void).cast(),
            ffi::CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE,
            ptr,
        )
    };
    r == CUDA_SUCCESS && !pool.is_null()
}

/// A CUDA device (GPU), by ordinal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Device {
    ordinal: i32,
    raw: CUdevice,
}

impl Device {
    /// The device with ordinal `ordinal` (`0..device_count()`).
    ///
    /// Errors: `CUDA_ERROR_INVALID_DEVICE` from `cuDeviceGet` for an ordinal out of range.
    pub fn new(ordinal: i32) -> Result<Device, CudaError> {
        let lib = driver()?;
        let mut raw: CUdevice = 0;
        // SAFETY: `raw` is a valid out-pointer; the driver is initialized; any ordinal value is
        // acceptable input (invalid ones are reported as errors).
        let r = unsafe { (lib.cuDeviceGet)(&mut raw, ordinal) };
        check(lib, "cuDeviceGet", r)?;
        Ok(Device { ordinal, raw })
    }

    /// The ordinal this device was opened with.
    pub fn ordinal(&self) -> i32 {
        self.ordinal
    }

    /// The raw `CUdevice` handle.
    pub fn as_raw(&self) -> i32 {
        self.raw
    }

    /// Product name, e.g. `NVIDIA GeForce RTX 4090` (at most 255 bytes, lossily UTF-8).
    pub fn name(&self) -> Result<String, CudaError> {
        let lib = driver()?;
        let mut buf = [0u8; 256];
        // SAFETY: `buf` is writable for the 256 bytes we pass as its length; the driver writes
        // at most that many bytes, NUL included; `self.raw` came from cuDeviceGet.
        let r = unsafe { (lib.cuDeviceGetName)(buf.as_mut_ptr().cast(), 256, self.raw) };
        check(lib, "cuDeviceGetName", r)?;
        // Guarantee termination even if the driver filled the whole buffer.
        buf[255] = 0;
        let name = CStr::from_bytes_until_nul(&buf).unwrap_or_default();
        Ok(name.to_string_lossy().into_owned())
    }

    /// PCI bus id, `domain:bus:device.function` (`0000:01:00.0`), to find the device in NVML.
    pub fn pci_bus_id(&self) -> Result<String, CudaError> {
        let lib = driver()?;
        let mut buf = [0u8; 32];
        // SAFETY: `buf` is writable for the 32 bytes passed as its length (the driver documents
        // 13 as enough); `self.raw` came from cuDeviceGet.
        let r = unsafe { (lib.cuDeviceGetPCIBusId)(buf.as_mut_ptr().cast(), 32, self.raw) };
        check(lib, "cuDeviceGetPCIBusId", r)?;
        buf[31] = 0;
        let id = CStr::from_bytes_until_nul(&buf).unwrap_or_default();
        Ok(id.to_string_lossy().into_owned())
    }

    /// Value of a device attribute (`CU_DEVICE_ATTRIBUTE_*` from [`ffi`]).
    pub fn attribute(&self, attrib: ffi::CUdevice_attribute) -> Result<i32, CudaError> {
        let lib = driver()?;
        let mut v = 0;
        // SAFETY: `v` is a valid out-pointer; `self.raw` came from cuDeviceGet; unknown
        // attribute numbers are reported as CUDA_ERROR_INVALID_VALUE.
        let r = unsafe { (lib.cuDeviceGetAttribute)(&mut v, attrib, self.raw) };
        check(lib, "cuDeviceGetAttribute", r)?;
        Ok(v)
    }

    /// Compute capability `(major, minor)`, e.g. `(8, 9)` for Ada.
    pub fn compute_capability(&self) -> Result<(i32, i32), CudaError> {
        Ok((
            self.attribute(ffi::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?,
            self.attribute(ffi::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?,
        ))
    }

    /// Whether the device shares a unified virtual address space with the host.
    pub fn unified_addressing(&self) -> Result<bool, CudaError> {
        Ok(self.attribute(ffi::CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING)? != 0)
    }

    /// Pitch alignment, in bytes, required of pitched memory bound to textures.
    pub fn texture_pitch_alignment(&self) -> Result<usize, CudaError> {
        let v = self.attribute(ffi::CU_DEVICE_ATTRIBUTE_TEXTURE_PITCH_ALIGNMENT)?;
        Ok(usize::try_from(v).unwrap_or(0))
    }

    /// Total device memory, in bytes.
    pub fn total_mem(&self) -> Result<usize, CudaError> {
        let lib = driver()?;
        let mut bytes = 0usize;
        // SAFETY: `bytes` is a valid out-pointer of type size_t; `self.raw` came from
        // cuDeviceGet.
        let r = unsafe { (lib.cuDeviceTotalMem_v2)(&mut bytes, self.raw) };
        check(lib, "cuDeviceTotalMem_v2", r)?;
        Ok(bytes)
    }
}

/// An owned CUDA context (`cuCtxCreate_v2`), destroyed on drop.
///
/// It is never left current: [`Context::new`] pops it after creating it, and [`Context::push`]
/// makes it current on the calling thread only while the returned guard lives. Resources
/// ([`Stream`], [`DevicePitched`], ...) keep it alive through an `Arc<Context>`.
#[derive(Debug)]
pub struct Context {
    lib: &'static CudaLib,
    raw: CUcontext,
    device: Device,
    /// Set for a borrowed context: its owner, released after use (never destroyed here).
    keep_alive: Option<Box<dyn std::any::Any + Send + Sync>>,
}

// SAFETY: a CUcontext is a handle the driver lets any thread use: it can be pushed (made
// current) on any thread, even on several at once, and the driver API is thread-safe. Our only
// operations through `&Context` are push/pop on the *calling* thread's own context stack (the
// guard that pops is `!Send`, so it pops on the thread that pushed) and calls made while it is
// pushed. Destruction requires ownership (`Drop`), when no guard can borrow it and no resource
// holds an `Arc` to it.
unsafe impl Send for Context {}
// SAFETY: see `Send` above; every `&self` method is safe to call concurrently.
unsafe impl Sync for Context {}

impl Context {
    /// A context owned by someone else (GStreamer's CUDA library, shared through the pipeline);
    /// `keep_alive` holds the owner's reference, and the context is not destroyed on drop.
    pub fn borrowed(
        raw: *mut c_void,
        device: &Device,
        keep_alive: Box<dyn std::any::Any + Send + Sync>,
    ) -> Result<Context, CudaError> {
        Ok(Context {
            lib: driver()?,
            raw,
            device: *device,
            keep_alive: Some(keep_alive),
        })
    }

    /// Creates a context on `device` with default flags (`CU_CTX_SCHED_AUTO`). On return it is
    /// not current on the calling thread (the thread's context stack is as before).
    ///
    /// Errors: from `cuCtxCreate_v2` (e.g. `CUDA_ERROR_OUT_OF_MEMORY`), or from
    /// `cuCtxPopCurrent_v2` (then the new context is destroyed before returning).
    pub fn new(device: &Device) -> Result<Context, CudaError> {
        let lib = driver()?;
        let mut raw: CUcontext = ptr::null_mut();
        // SAFETY: `raw` is a valid out-pointer; `device.raw` came from cuDeviceGet.
        let r = unsafe { (lib.cuCtxCreate_v2)(&mut raw, ffi::CU_CTX_SCHED_AUTO, device.raw) };
        check(lib, "cuCtxCreate_v2", r)?;
        // Own it right away so that every path below destroys it on error.
        let ctx = Context {
            lib,
            raw,
            device: *device,
            keep_alive: None,
        };
        // cuCtxCreate made it current; undo that.
        let mut popped: CUcontext = ptr::null_mut();
        // SAFETY: `popped` is a valid out-pointer; the new context is current on this thread.
        let r = unsafe { (lib.cuCtxPopCurrent_v2)(&mut popped) };
        // On error `ctx` is dropped here: cuCtxDestroy_v2 also pops it if still current.
        check(lib, "cuCtxPopCurrent_v2", r)?;
        debug_assert_eq!(
            popped, ctx.raw,
            "cuCtxCreate_v2 did not make the context current"
        );
        Ok(ctx)
    }

    /// The raw `CUcontext`, for APIs that take one (e.g. NVENC's `NV_ENC_DEVICE_TYPE_CUDA`).
    /// Valid as long as `self` lives; do not destroy it or leave it pushed.
    pub fn as_raw(&self) -> *mut c_void {
        self.raw
    }

    /// The device this context was created on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Makes this context current on the calling thread (`cuCtxPushCurrent_v2`) until the
    /// guard is dropped, which pops it. Guards must be dropped in reverse order of creation
    /// on their thread (checked in debug builds).
    pub fn push(&self) -> Result<ContextGuard<'_>, CudaError> {
        // SAFETY: `self.raw` is a live context we own (it cannot be destroyed while `self` is
        // borrowed by the guard).
        let r = unsafe { (self.lib.cuCtxPushCurrent_v2)(self.raw) };
        check(self.lib, "cuCtxPushCurrent_v2", r)?;
        Ok(ContextGuard {
            ctx: self,
            _not_send: PhantomData,
        })
    }

    /// How memory of `peer` (a context on GPU `peer_device`) is copied into this context's
    /// memory. On another GPU that `cuDeviceCanAccessPeer` says this one can reach, peer access
    /// is enabled (`cuCtxEnablePeerAccess`, once per pair; "already enabled" counts as done) so
    /// that copies go GPU to GPU; otherwise the driver stages them through host memory.
    ///
    /// Errors: driver errors from the calls above, except a refused `cuCtxEnablePeerAccess`,
    /// which gives [`PeerRoute::Staged`].
    ///
    /// # Safety
    /// `peer` must be a live context on GPU `peer_device`, kept alive for the call.
    pub unsafe fn peer_route(
        &self,
        peer: *mut c_void,
        peer_device: i32,
    ) -> Result<PeerRoute, CudaError> {
        if peer == self.raw {
            return Ok(PeerRoute::SameContext);
        }
        if peer_device == self.device.raw {
            return Ok(PeerRoute::SameDevice);
        }
        let mut can = 0;
        // SAFETY: `can` is a valid out-pointer; both ordinals name devices (ours came from
        // cuDeviceGet, the peer's from its live context).
        let r = unsafe { (self.lib.cuDeviceCanAccessPeer)(&mut can, self.device.raw, peer_device) };
        check(self.lib, "cuDeviceCanAccessPeer", r)?;
        if can == 0 {
            return Ok(PeerRoute::Staged);
        }
        let _guard = self.push()?;
        // SAFETY: `peer` is a live context (the caller keeps its owner alive); this context is
        // current (guard above); flags must be 0.
        let r = unsafe { (self.lib.cuCtxEnablePeerAccess)(peer, 0) };
        Ok(match r {
            ffi::CUDA_SUCCESS | ffi::CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED => PeerRoute::Direct,
            _ => PeerRoute::Staged,
        })
    }

    /// Waits for all work in this context to finish (`cuCtxSynchronize`, with it pushed).
    pub fn synchronize(&self) -> Result<(), CudaError> {
        let _guard = self.push()?;
        // SAFETY: no arguments; this context is current on this thread (guard above).
        let r = unsafe { (self.lib.cuCtxSynchronize)() };
        check(self.lib, "cuCtxSynchronize", r)
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        if self.keep_alive.is_some() {
            return; // borrowed: its owner destroys it
        }
        // SAFETY: we own `self.raw` and this is its last use: no guard borrows `self` and no
        // resource holds an `Arc` to it. Nothing can be done about an error here.
        let _ = unsafe { (self.lib.cuCtxDestroy_v2)(self.raw) };
    }
}

/// How memory of another context reaches a context's memory ([`Context::peer_route`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerRoute {
    /// The very same context.
    SameContext,
    /// Another context on the same GPU: a device-to-device copy.
    SameDevice,
    /// Another GPU with peer access enabled: a GPU-to-GPU copy (NVLink or PCIe P2P).
    Direct,
    /// Another GPU without peer access: the driver stages the copy through host memory.
    Staged,
}

/// Proof that a [`Context`] is current on this thread; pops it when dropped.
///
/// `!Send`: it must be dropped on the thread that pushed.
#[derive(Debug)]
pub struct ContextGuard<'a> {
    ctx: &'a Context,
    _not_send: PhantomData<*const ()>,
}

impl ContextGuard<'_> {
    /// The context this guard made current.
    pub fn context(&self) -> &Context {
        self.ctx
    }
}

impl Drop for ContextGuard<'_> {
    fn drop(&mut self) {
        let mut popped: CUcontext = ptr::null_mut();
        // SAFETY: `popped` is a valid out-pointer; our push left a context on this thread's
        // stack (the guard is `!Send`, so this is the pushing thread).
        let r = unsafe { (self.ctx.lib.cuCtxPopCurrent_v2)(&mut popped) };
        // A mismatch means guards were dropped out of order or someone pushed without popping
        // in between. Checked in debug builds only (never while already panicking); release
        // builds carry on.
        debug_assert!(
            r != CUDA_SUCCESS || popped == self.ctx.raw || std::thread::panicking(),
            "ContextGuard popped {popped:?}, expected {:?}",
            self.ctx.raw
        );
    }
}

/// A non-blocking CUDA stream (`cuStreamCreate` with `CU_STREAM_NON_BLOCKING`), destroyed on
/// drop. Work on it does not synchronize with the legacy NULL stream.
#[derive(Debug)]
pub struct Stream {
    raw: ffi::CUstream,
    ctx: Arc<Context>,
}

// SAFETY: a CUstream handle may be used from any thread (the driver API is thread-safe); we
// push its context on the calling thread for every call. Destruction requires ownership.
unsafe impl Send for Stream {}
// SAFETY: see `Send`; `synchronize` through `&self` may run concurrently on several threads.
unsafe impl Sync for Stream {}

impl Stream {
    /// Creates a stream in `ctx`.
    pub fn new(ctx: &Arc<Context>) -> Result<Stream, CudaError> {
        let lib = ctx.lib;
        let _guard = ctx.push()?;
        let mut raw: ffi::CUstream = ptr::null_mut();
        // SAFETY: `raw` is a valid out-pointer; `ctx` is current (guard above).
        let r = unsafe { (lib.cuStreamCreate)(&mut raw, ffi::CU_STREAM_NON_BLOCKING) };
        check(lib, "cuStreamCreate", r)?;
        Ok(Stream {
            raw,
            ctx: Arc::clone(ctx),
        })
    }

    /// Blocks until all work queued on the stream has completed (`cuStreamSynchronize`).
    pub fn synchronize(&self) -> Result<(), CudaError> {
        let lib = self.ctx.lib;
        let _guard = self.ctx.push()?;
        // SAFETY: `self.raw` is a live stream of the current context.
        let r = unsafe { (lib.cuStreamSynchronize)(self.raw) };
        check(lib, "cuStreamSynchronize", r)
    }

    /// The raw `CUstream`, valid as long as `self` lives.
    pub fn as_raw(&self) -> *mut c_void {
        self.raw
    }

    /// The context the stream belongs to.
    pub fn context(&self) -> &Arc<Context> {
        &self.ctx
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let lib = self.ctx.lib;
        // Destroy even if the push fails: the stream handle knows its context.
        let guard = self.ctx.push().ok();
        // SAFETY: we own `self.raw` and this is its last use. Pending work completes before
        // the driver releases the stream's resources. Nothing can be done about an error.
        let _ = unsafe { (lib.cuStreamDestroy_v2)(self.raw) };
        drop(guard);
    }
}

/// Pitched 2-D device memory (`cuMemAllocPitch_v2`): `height` rows of `width_bytes` bytes, row
/// `y` starting at `as_raw() + y * pitch()`; freed on drop. Contents start undefined.
#[derive(Debug)]
pub struct DevicePitched {
    ptr: CUdeviceptr,
    pitch: usize,
    width_bytes: usize,
    height: usize,
    ctx: Arc<Context>,
    /// For [`DevicePitched::upload_rows`]: its stream and the event it waits on (made on first
    /// use).
    uploader: Option<(Stream, BlockingEvent)>,
}

/// Element size passed to `cuMemAllocPitch_v2`: the widest allowed (4, 8 or 16), giving the
/// best-aligned pitch for any pixel format.
const PITCH_ELEMENT_SIZE: u32 = 16;

impl DevicePitched {
    /// Allocates `height` rows of at least `width_bytes` bytes; the driver picks the pitch
    /// (bytes, `>= width_bytes`, suitably aligned).
    ///
    /// Errors: from `cuMemAllocPitch_v2`, e.g. `CUDA_ERROR_INVALID_VALUE` for a zero size,
    /// `CUDA_ERROR_OUT_OF_MEMORY`.
    pub fn new(ctx: &Arc<Context>, width_bytes: usize, height: usize) -> Result<Self, CudaError> {
        let lib = ctx.lib;
        let _guard = ctx.push()?;
        let mut ptr: CUdeviceptr = 0;
        let mut pitch = 0usize;
        // SAFETY: `ptr` and `pitch` are valid out-pointers; `ctx` is current (guard above).
        let r = unsafe {
            (lib.cuMemAllocPitch_v2)(
                &mut ptr,
                &mut pitch,
                width_bytes,
                height,
                PITCH_ELEMENT_SIZE,
            )
        };
        check(lib, "cuMemAllocPitch_v2", r)?;
        Ok(DevicePitched {
            ptr,
            pitch,
            width_bytes,
            height,
            ctx: Arc::clone(ctx),
            uploader: None,
        })
    }

    /// Device address of row 0.
    pub fn as_raw(&self) -> u64 {
        self.ptr
    }

    /// Distance between rows, in bytes.
    pub fn pitch(&self) -> usize {
        self.pitch
    }

    /// Usable bytes per row, as requested.
    pub fn width_bytes(&self) -> usize {
        self.width_bytes
    }

    /// Number of rows.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The context the memory belongs to.
    pub fn context(&self) -> &Arc<Context> {
        &self.ctx
    }

    /// Copies the top-left `width_bytes` x `height` bytes of a host image (rows `src_pitch`
    /// bytes apart, row 0 at `src[0]`) into the top-left of this surface, on `stream` if
    /// given (then waiting for it), else on the legacy NULL stream (see [`copy_2d`]).
    ///
    /// Errors: [`CudaError::InvalidArgument`] if the region exceeds this surface or `src`;
    /// driver errors from the copy.
    /// Uploads `rows` rows of `width_bytes` bytes from host memory (`src`, rows `src_pitch`
    /// apart) into this surface from its row `dst_row`; when `pad_to` exceeds `rows`, the last
    /// row is repeated down to row `dst_row + pad_to`. The copies are queued on this surface's
    /// own stream (`cuMemcpy2DAsync_v2`), then the thread sleeps on an event with
    /// `CU_EVENT_BLOCKING_SYNC` until they are done: from page-locked memory the GPU's copy
    /// engine does the work by DMA and the CPU neither copies nor spins.
    ///
    /// Errors: `InvalidArgument` (nothing copied) if the rows do not fit the surface or the
    /// slice; driver errors.
    pub fn upload_rows(
        &mut self,
        dst_row: usize,
        src: &[u8],
        src_pitch: usize,
        width_bytes: usize,
        rows: usize,
        pad_to: usize,
    ) -> Result<(), CudaError> {
        if rows == 0 || width_bytes > self.width_bytes || dst_row + rows.max(pad_to) > self.height {
            return Err(CudaError::InvalidArgument {
                call: "cuMemcpy2DAsync_v2",
                reason: format!(
                    "{rows} rows of {width_bytes} bytes from row {dst_row} do not fit a {}x{} surface",
                    self.width_bytes, self.height
                ),
            });
        }
        let Some(last) = src.get((rows - 1) * src_pitch..) else {
            return Err(CudaError::InvalidArgument {
                call: "cuMemcpy2DAsync_v2",
                reason: format!(
                    "{rows} rows of pitch {src_pitch} exceed {} bytes",
                    src.len()
                ),
            });
        };
        if self.uploader.is_none() {
            self.uploader = Some((Stream::new(&self.ctx)?, BlockingEvent::new(&self.ctx)?));
        }
        let (ptr, pitch) = (self.ptr, self.pitch);
        let Some((stream, event)) = self.uploader.as_ref() else {
            return Err(CudaError::InvalidArgument {
                call: "cuStreamCreate",
                reason: "no upload stream".into(),
            });
        };
        let row_ptr = |r: usize| ptr + (r * pitch) as u64;
        let queued = (|| {
            // SAFETY: the destination rows were checked to lie inside this allocation, which
            // we own and borrow mutably; the host rows are bounds-checked by copy_2d_async and
            // stay borrowed until the wait below has seen the copies complete.
            unsafe {
                copy_2d_async(
                    Src2D::Host {
                        data: src,
                        pitch: src_pitch,
                    },
                    Dst2D::Device {
                        ptr: row_ptr(dst_row),
                        pitch,
                    },
                    width_bytes,
                    rows,
                    stream,
                )
            }?;
            for r in rows..pad_to {
                // SAFETY: as above, one row inside the checked region.
                unsafe {
                    copy_2d_async(
                        Src2D::Host {
                            data: last,
                            pitch: src_pitch,
                        },
                        Dst2D::Device {
                            ptr: row_ptr(dst_row + r),
                            pitch,
                        },
                        width_bytes,
                        1,
                        stream,
                    )
                }?;
            }
            Ok(())
        })();
        // Wait even after a failed queueing: copies already queued read `src`.
        let waited = event.wait_for(stream);
        queued.and(waited)
    }

    pub fn upload(
        &mut self,
        src: &[u8],
        src_pitch: usize,
        width_bytes: usize,
        height: usize,
        stream: Option<&Stream>,
    ) -> Result<(), CudaError> {
        self.check_region(width_bytes, height)?;
        let dst = Dst2D::Device {
            ptr: self.ptr,
            pitch: self.pitch,
        };
        let src = Src2D::Host {
            data: src,
            pitch: src_pitch,
        };
        // SAFETY: the device region was checked to lie inside this allocation, which we own,
        // is alive, belongs to `self.ctx`, and is borrowed mutably so nothing else writes it.
        unsafe { copy_2d(&self.ctx, src, dst, width_bytes, height, stream) }
    }

    /// Copies the top-left `width_bytes` x `height` bytes of this surface into a host image
    /// (rows `dst_pitch` bytes apart), on `stream` if given (then waiting for it).
    ///
    /// Errors: as [`DevicePitched::upload`].
    pub fn download(
        &self,
        dst: &mut [u8],
        dst_pitch: usize,
        width_bytes: usize,
        height: usize,
        stream: Option<&Stream>,
    ) -> Result<(), CudaError> {
        self.check_region(width_bytes, height)?;
        let src = Src2D::Device {
            ptr: self.ptr,
            pitch: self.pitch,
        };
        let dst = Dst2D::Host {
            data: dst,
            pitch: dst_pitch,
        };
        // SAFETY: the device region was checked to lie inside this live allocation of
        // `self.ctx`; it is only read.
        unsafe { copy_2d(&self.ctx, src, dst, width_bytes, height, stream) }
    }

    fn check_region(&self, width_bytes: usize, height: usize) -> Result<(), CudaError> {
        if width_bytes > self.width_bytes || height > self.height {
            return Err(CudaError::InvalidArgument {
                call: "cuMemcpy2D_v2",
                reason: format!(
                    "{width_bytes}x{height} bytes exceed the {}x{} device surface",
                    self.width_bytes, self.height
                ),
            });
        }
        Ok(())
    }
}

impl Drop for DevicePitched {
    fn drop(&mut self) {
        let lib = self.ctx.lib;
        let guard = self.ctx.push().ok();
        // SAFETY: we own the allocation and this is its last use. Nothing can be done about
        // an error.
        let _ = unsafe { (lib.cuMemFree_v2)(self.ptr) };
        drop(guard);
    }
}

/// A CUDA event created with `CU_EVENT_BLOCKING_SYNC | CU_EVENT_DISABLE_TIMING`: waiting for it
/// puts the thread to sleep until the GPU gets there, where a stream or context
/// synchronisation may spin a CPU core (the default scheduling of a context with fewer active
/// contexts than cores).
#[derive(Debug)]
pub struct BlockingEvent {
    raw: ffi::CUevent,
    ctx: Arc<Context>,
}

// SAFETY: an event handle may be used from any thread with its context current; every use
// here pushes the context on the calling thread.
unsafe impl Send for BlockingEvent {}
// SAFETY: as above; `wait_for` only records and waits, which the driver serialises.
unsafe impl Sync for BlockingEvent {}

impl BlockingEvent {
    /// Creates the event in `ctx`.
    pub fn new(ctx: &Arc<Context>) -> Result<BlockingEvent, CudaError> {
        let lib = ctx.lib;
        let _guard = ctx.push()?;
        let mut raw: ffi::CUevent = ptr::null_mut();
        // SAFETY: `raw` is a valid out-pointer; `ctx` is current (guard above).
        let r = unsafe {
            (lib.cuEventCreate)(
                &mut raw,
                ffi::CU_EVENT_BLOCKING_SYNC | ffi::CU_EVENT_DISABLE_TIMING,
            )
        };
        check(lib, "cuEventCreate", r)?;
        Ok(BlockingEvent {
            raw,
            ctx: Arc::clone(ctx),
        })
    }

    /// Records the event after the work queued on `stream` so far and sleeps until it is done
    /// (`cuEventRecord`, `cuEventSynchronize`).
    pub fn wait_for(&self, stream: &Stream) -> Result<(), CudaError> {
        let lib = self.ctx.lib;
        let _guard = self.ctx.push()?;
        // SAFETY: a live event and a live stream, both of the current context.
        let r = unsafe { (lib.cuEventRecord)(self.raw, stream.raw) };
        check(lib, "cuEventRecord", r)?;
        // SAFETY: a live, just recorded event of the current context.
        let r = unsafe { (lib.cuEventSynchronize)(self.raw) };
        check(lib, "cuEventSynchronize", r)
    }
}

impl Drop for BlockingEvent {
    fn drop(&mut self) {
        let lib = self.ctx.lib;
        let guard = self.ctx.push().ok();
        // SAFETY: we own the event and this is its last use. Nothing can be done about an
        // error.
        let _ = unsafe { (lib.cuEventDestroy_v2)(self.raw) };
        drop(guard);
    }
}

/// Linear device memory (`cuMemAlloc_v2`) of `len` bytes; freed on drop. Contents start
/// undefined.
#[derive(Debug)]
pub struct DeviceBuffer {
    ptr: CUdeviceptr,
    len: usize,
    ctx: Arc<Context>,
}

impl DeviceBuffer {
    /// Allocates `len` bytes.
    ///
    /// Errors: from `cuMemAlloc_v2`, e.g. `CUDA_ERROR_INVALID_VALUE` for 0 bytes,
    /// `CUDA_ERROR_OUT_OF_MEMORY`.
    pub fn new(ctx: &Arc<Context>, len: usize) -> Result<Self, CudaError> {
        let lib = ctx.lib;
        let _guard = ctx.push()?;
        let mut ptr: CUdeviceptr = 0;
        // SAFETY: `ptr` is a valid out-pointer; `ctx` is current (guard above).
        let r = unsafe { (lib.cuMemAlloc_v2)(&mut ptr, len) };
        check(lib, "cuMemAlloc_v2", r)?;
        Ok(DeviceBuffer {
            ptr,
            len,
            ctx: Arc::clone(ctx),
        })
    }

    /// Device address of byte 0.
    pub fn as_raw(&self) -> u64 {
        self.ptr
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always `false`: the driver refuses empty allocations.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The context the memory belongs to.
    pub fn context(&self) -> &Arc<Context> {
        &self.ctx
    }

    /// Copies `src` to the start of the buffer (synchronous, see [`copy_2d`]).
    ///
    /// Errors: [`CudaError::InvalidArgument`] if `src` is longer than the buffer.
    pub fn upload(&mut self, src: &[u8], stream: Option<&Stream>) -> Result<(), CudaError> {
        self.check_len(src.len())?;
        let n = src.len();
        let src = Src2D::Host {
            data: src,
            pitch: n,
        };
        let dst = Dst2D::Device {
            ptr: self.ptr,
            pitch: n,
        };
        // SAFETY: one row of `n <= self.len` bytes lies inside this live allocation of
        // `self.ctx`, borrowed mutably.
        unsafe { copy_2d(&self.ctx, src, dst, n, 1, stream) }
    }

    /// Copies the start of the buffer into all of `dst` (synchronous).
    ///
    /// Errors: [`CudaError::InvalidArgument`] if `dst` is longer than the buffer.
    pub fn download(&self, dst: &mut [u8], stream: Option<&Stream>) -> Result<(), CudaError> {
        self.check_len(dst.len())?;
        let n = dst.len();
        let src = Src2D::Device {
            ptr: self.ptr,
            pitch: n,
        };
        let dst = Dst2D::Host {
            data: dst,
            pitch: n,
        };
        // SAFETY: one row of `n <= self.len` bytes lies inside this live allocation; read only.
        unsafe { copy_2d(&self.ctx, src, dst, n, 1, stream) }
    }

    fn check_len(&self, n: usize) -> Result<(), CudaError> {
        if n > self.len {
            return Err(CudaError::InvalidArgument {
                call: "cuMemcpy2D_v2",
                reason: format!("{n} bytes exceed the {}-byte device buffer", self.len),
            });
        }
        Ok(())
    }
}

impl Drop for DeviceBuffer {
    fn drop(&mut self) {
        let lib = self.ctx.lib;
        let guard = self.ctx.push().ok();
        // SAFETY: we own the allocation and this is its last use.
        let _ = unsafe { (lib.cuMemFree_v2)(self.ptr) };
        drop(guard);
    }
}

/// Page-locked host memory (`cuMemAllocHost_v2`) of `len` bytes, zero-filled at allocation;
/// freed with `cuMemFreeHost` on drop. Usable as an ordinary byte slice, and as the host side
/// of copies, which are faster from/to it than from pageable memory.
#[derive(Debug)]
pub struct HostPinned {
    ptr: *mut u8,
    len: usize,
    ctx: Arc<Context>,
}

// SAFETY: owns its memory exclusively like a `Box<[u8]>`: it may be used and freed from any
// thread (cuMemFreeHost only needs the owning context, which Drop pushes).
unsafe impl Send for HostPinned {}
// SAFETY: `&self` only gives shared, read-only access to the bytes, as for `Box<[u8]>`.
unsafe impl Sync for HostPinned {}

impl HostPinned {
    /// Allocates `len` bytes of page-locked memory, zero-filled.
    ///
    /// Errors: from `cuMemAllocHost_v2`, e.g. `CUDA_ERROR_OUT_OF_MEMORY`,
    /// `CUDA_ERROR_INVALID_VALUE` for 0 bytes.
    pub fn new(ctx: &Arc<Context>, len: usize) -> Result<Self, CudaError> {
        let lib = ctx.lib;
        let _guard = ctx.push()?;
        let mut p: *mut c_void = ptr::null_mut();
        // SAFETY: `p` is a valid out-pointer; `ctx` is current (guard above).
        let r = unsafe { (lib.cuMemAllocHost_v2)(&mut p, len) };
        check(lib, "cuMemAllocHost_v2", r)?;
        // Own it before anything else can fail, so it is freed on every path.
        let mem = HostPinned {
            ptr: p.cast(),
            len,
            ctx: Arc::clone(ctx),
        };
        if mem.ptr.is_null() && len > 0 {
            return Err(CudaError::call(
                lib,
                "cuMemAllocHost_v2",
                ffi::CUDA_ERROR_OUT_OF_MEMORY,
            ));
        }
        if len > 0 {
            // SAFETY: on success the driver returned `len` writable bytes at `mem.ptr`, which
            // nothing else references. Zeroing them makes the slice accessors sound (no
            // uninitialized bytes behind a `&[u8]`).
            unsafe { ptr::write_bytes(mem.ptr, 0, len) };
        }
        Ok(mem)
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `ptr` is non-null (checked in `new`), valid for `len` initialized bytes
        // (zeroed in `new`) owned by `self`, and not mutated while `&self` is borrowed.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// The bytes, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        if self.len == 0 {
            return &mut [];
        }
        // SAFETY: as in `as_slice`; `&mut self` guarantees exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }

    /// The context the memory is registered with.
    pub fn context(&self) -> &Arc<Context> {
        &self.ctx
    }
}

impl Drop for HostPinned {
    fn drop(&mut self) {
        if self.ptr.is_null() {
            return;
        }
        let lib = self.ctx.lib;
        let guard = self.ctx.push().ok();
        // SAFETY: we own the allocation from cuMemAllocHost_v2 and this is its last use (no
        // slice borrowed from `self` can outlive it).
        let _ = unsafe { (lib.cuMemFreeHost)(self.ptr.cast()) };
        drop(guard);
    }
}

#[cfg(test)]
mod tests {
    use super::copy::check_host_span;
    use super::*;

    /// The first device and a context on it, or `None` (after saying why) where no CUDA
    /// driver or device is available.
    fn setup() -> Option<(Device, Arc<Context>)> {
        if let Err(e) = ffi::lib() {
            eprintln!("skipping: no libcuda.so.1 ({e})");
            return None;
        }
        if let Err(e) = init() {
            eprintln!("skipping: cuInit failed: {e}");
            return None;
        }
        match device_count() {
            Ok(n) if n > 0 => {}
            other => {
                eprintln!("skipping: no CUDA device ({other:?})");
                return None;
            }
        }
        let dev = Device::new(0).expect("device 0");
        let ctx = Arc::new(Context::new(&dev).expect("context"));
        Some((dev, ctx))
    }

    /// A `w` x `h` test image with rows `pitch` bytes apart (padding bytes 0xEE).
    fn image(w: usize, h: usize, pitch: usize) -> Vec<u8> {
        let mut v = vec![0xEE; pitch * (h - 1) + w];
        for y in 0..h {
            for x in 0..w {
                v[y * pitch + x] = (x * 7 + y * 13) as u8;
            }
        }
        v
    }

    fn rows_equal(a: &[u8], a_pitch: usize, b: &[u8], b_pitch: usize, w: usize, h: usize) {
        for y in 0..h {
            assert_eq!(
                a[y * a_pitch..y * a_pitch + w],
                b[y * b_pitch..y * b_pitch + w],
                "row {y}"
            );
        }
    }

    #[test]
    fn error_display() {
        let e = CudaError::Call {
            call: "cuMemAllocPitch_v2",
            code: 2,
            name: "CUDA_ERROR_OUT_OF_MEMORY".into(),
            description: "out of memory".into(),
        };
        assert_eq!(
            e.to_string(),
            "`cuMemAllocPitch_v2` failed: CUDA_ERROR_OUT_OF_MEMORY (2): out of memory"
        );
        assert_eq!(e.code(), Some(2));
    }

    #[test]
    fn host_span_checks() {
        // 3 rows of 10 bytes, pitch 16: needs 2 * 16 + 10 = 42 bytes.
        assert!(check_host_span("c", "source", 42, 16, 10, 3).is_ok());
        assert!(check_host_span("c", "source", 41, 16, 10, 3).is_err());
        assert!(check_host_span("c", "source", 100, 8, 10, 3).is_err());
        assert!(check_host_span("c", "source", usize::MAX, usize::MAX, 10, 3).is_err());
        // A single row may have any pitch.
        assert!(check_host_span("c", "source", 10, 0, 10, 1).is_ok());
    }

    #[test]
    fn load_error_or_loaded() {
        match (ffi::lib(), init()) {
            (Err(_), Err(CudaError::Load(msg))) => {
                assert!(msg.contains("libcuda.so.1"), "{msg}");
                assert!(msg.contains("NVIDIA driver must be installed"), "{msg}");
            }
            (Err(_), other) => panic!("library missing but init gave {other:?}"),
            (Ok(_), _) => {}
        }
    }

    #[test]
    fn init_and_device_query() {
        let Some((dev, _ctx)) = setup() else { return };
        init().expect("second init");
        let v = driver_version().expect("driver version");
        assert!(v >= 1000, "driver version {v}");
        let name = dev.name().expect("name");
        assert!(!name.is_empty());
        let (major, minor) = dev.compute_capability().expect("compute capability");
        assert!(major >= 1 && minor >= 0, "{major}.{minor}");
        assert!(dev.total_mem().expect("total mem") > 0);
        dev.unified_addressing().expect("unified addressing");
        dev.texture_pitch_alignment().expect("pitch alignment");
        assert_eq!(dev.ordinal(), 0);
        eprintln!("device 0: {name}, compute {major}.{minor}, driver API {v}");
    }

    #[test]
    fn invalid_ordinal_is_a_named_error() {
        let Some(_) = setup() else { return };
        let n = device_count().expect("count");
        for ordinal in [-1, n, 1 << 20] {
            let e = Device::new(ordinal).expect_err("invalid ordinal accepted");
            match &e {
                CudaError::Call {
                    call, code, name, ..
                } => {
                    assert_eq!(*call, "cuDeviceGet");
                    assert_eq!(*code, ffi::CUDA_ERROR_INVALID_DEVICE);
                    assert_eq!(name, "CUDA_ERROR_INVALID_DEVICE");
                }
                other => panic!("unexpected {other:?}"),
            }
            assert!(
                e.to_string()
                    .starts_with("`cuDeviceGet` failed: CUDA_ERROR_INVALID_DEVICE (101): ")
            );
        }
    }

    #[test]
    fn context_push_pop_destroy() {
        let Some((dev, ctx)) = setup() else { return };
        let before = current_context_raw().expect("current");
        assert_ne!(
            before,
            ctx.as_raw(),
            "Context::new left the context current"
        );
        {
            let g = ctx.push().expect("push");
            assert_eq!(g.context().as_raw(), ctx.as_raw());
            assert_eq!(current_context_raw().unwrap(), ctx.as_raw());
            let other = Context::new(&dev).expect("second context");
            assert_ne!(other.as_raw(), ctx.as_raw());
            // Creating another context leaves the current one in place.
            assert_eq!(current_context_raw().unwrap(), ctx.as_raw());
            {
                let _g2 = other.push().expect("nested push");
                assert_eq!(current_context_raw().unwrap(), other.as_raw());
            }
            assert_eq!(current_context_raw().unwrap(), ctx.as_raw());
            ctx.synchronize().expect("ctx sync while pushed");
            assert_eq!(current_context_raw().unwrap(), ctx.as_raw());
        }
        assert_eq!(current_context_raw().unwrap(), before);
        // Contexts are usable from other threads.
        let c2 = Arc::clone(&ctx);
        std::thread::spawn(move || {
            let _g = c2.push().expect("push on another thread");
            assert_eq!(current_context_raw().unwrap(), c2.as_raw());
        })
        .join()
        .expect("thread");
        assert_eq!(current_context_raw().unwrap(), before);
    }

    #[test]
    fn pitched_alloc() {
        let Some((_dev, ctx)) = setup() else { return };
        let before = current_context_raw().expect("current");
        let surf = DevicePitched::new(&ctx, 1000, 37).expect("alloc");
        assert_ne!(surf.as_raw(), 0);
        assert!(surf.pitch() >= 1000, "pitch {}", surf.pitch());
        assert_eq!((surf.width_bytes(), surf.height()), (1000, 37));
        let zero = DevicePitched::new(&ctx, 0, 0).expect_err("zero-size pitched alloc");
        assert!(matches!(zero, CudaError::Call { .. }), "{zero:?}");
        assert_eq!(current_context_raw().unwrap(), before);
    }

    #[test]
    fn round_trip_2d_with_pitch() {
        let Some((_dev, ctx)) = setup() else { return };
        let before = current_context_raw().expect("current");
        let (w, h) = (333, 7);
        let src_pitch = 352;
        let src = image(w, h, src_pitch);
        let mut surf = DevicePitched::new(&ctx, w, h).expect("alloc");
        surf.upload(&src, src_pitch, w, h, None).expect("upload");
        let dst_pitch = 340;
        let mut dst = vec![0u8; dst_pitch * h];
        surf.download(&mut dst, dst_pitch, w, h, None)
            .expect("download");
        rows_equal(&src, src_pitch, &dst, dst_pitch, w, h);
        // Padding between rows of the destination is untouched.
        assert!(dst[w..dst_pitch].iter().all(|&b| b == 0));

        // Same through a stream and pinned memory.
        let stream = Stream::new(&ctx).expect("stream");
        let mut pinned = HostPinned::new(&ctx, dst_pitch * h).expect("pinned");
        assert!(pinned.as_slice().iter().all(|&b| b == 0));
        let src2 = image(w, h, w);
        surf.upload(&src2, w, w, h, Some(&stream))
            .expect("stream upload");
        surf.download(pinned.as_mut_slice(), dst_pitch, w, h, Some(&stream))
            .expect("stream download");
        rows_equal(&src2, w, pinned.as_slice(), dst_pitch, w, h);
        stream.synchronize().expect("stream sync");

        // Device to device with the raw API, then back.
        let mut surf2 = DevicePitched::new(&ctx, w, h).expect("alloc 2");
        // SAFETY: both regions are w x h inside live allocations of `ctx`.
        unsafe {
            copy_2d(
                &ctx,
                Src2D::Device {
                    ptr: surf.as_raw(),
                    pitch: surf.pitch(),
                },
                Dst2D::Device {
                    ptr: surf2.as_raw(),
                    pitch: surf2.pitch(),
                },
                w,
                h,
                Some(&stream),
            )
        }
        .expect("device to device");
        let mut back = vec![0u8; w * h];
        surf2
            .download(&mut back, w, w, h, None)
            .expect("download 2");
        rows_equal(&src2, w, &back, w, w, h);

        // Async copy from pinned memory.
        // SAFETY: `pinned` and `surf2` outlive the synchronization below and are not touched
        // until then.
        unsafe {
            copy_2d_async(
                Src2D::Host {
                    data: pinned.as_slice(),
                    pitch: dst_pitch,
                },
                Dst2D::Device {
                    ptr: surf2.as_raw(),
                    pitch: surf2.pitch(),
                },
                w,
                h,
                &stream,
            )
        }
        .expect("async copy");
        stream.synchronize().expect("sync after async");
        surf2
            .upload(&src, src_pitch, 1, 1, None)
            .expect("tiny upload");
        assert_eq!(current_context_raw().unwrap(), before);
    }

    #[test]
    fn linear_buffer_round_trip() {
        let Some((_dev, ctx)) = setup() else { return };
        let mut buf = DeviceBuffer::new(&ctx, 4096).expect("alloc");
        let data: Vec<u8> = (0..4000u32).map(|i| (i * 31) as u8).collect();
        buf.upload(&data, None).expect("upload");
        let mut back = vec![0u8; 4000];
        buf.download(&mut back, None).expect("download");
        assert_eq!(back, data);
        assert!(buf.upload(&[0; 4097], None).is_err());
    }

    #[test]
    fn bounds_are_checked_before_calling() {
        let Some((_dev, ctx)) = setup() else { return };
        let mut surf = DevicePitched::new(&ctx, 64, 4).expect("alloc");
        let small = vec![0u8; 64 * 3 + 63];
        let e = surf
            .upload(&small, 64, 64, 4, None)
            .expect_err("short source");
        assert!(matches!(e, CudaError::InvalidArgument { .. }), "{e:?}");
        let mut out = vec![0u8; 64 * 4];
        let e = surf
            .download(&mut out, 64, 65, 4, None)
            .expect_err("too wide");
        assert!(matches!(e, CudaError::InvalidArgument { .. }), "{e:?}");
        let e = surf
            .download(&mut out, 64, 64, 5, None)
            .expect_err("too tall");
        assert!(matches!(e, CudaError::InvalidArgument { .. }), "{e:?}");
        // A stream of another context is refused.
        let other = Arc::new(Context::new(&ctx.device()).expect("second context"));
        let stream = Stream::new(&other).expect("stream");
        let e = surf
            .download(&mut out, 64, 64, 4, Some(&stream))
            .expect_err("foreign stream");
        assert!(matches!(e, CudaError::InvalidArgument { .. }), "{e:?}");
        // Zero-sized copies are no-ops.
        surf.upload(&[], 0, 0, 0, None).expect("empty copy");
    }

    #[test]
    fn resources_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Context>();
        check::<Stream>();
        check::<DevicePitched>();
        check::<DeviceBuffer>();
        check::<HostPinned>();
    }
}
