//! 2-D copies between host and device memory, and between contexts or GPUs: the one place the
//! CUDA layer builds `CUDA_MEMCPY2D`/`CUDA_MEMCPY3D_PEER` parameters. Re-exported by the parent
//! module; [`copy_2d`] and [`copy_2d_async`] are `unsafe` because device bounds are the caller's.

use std::ffi::c_void;
use std::ptr;

use super::ffi::{self, CUDA_MEMCPY2D, CUdeviceptr};
use super::{Context, CudaError, Stream, check};

/// Source of a 2-D copy: `height` rows of `width_bytes` bytes, row `y` at `y * pitch`.
#[derive(Debug)]
pub enum Src2D<'a> {
    /// Host memory; bounds are checked against the slice.
    Host {
        /// Row 0 starts at `data[0]`.
        data: &'a [u8],
        /// Bytes between row starts.
        pitch: usize,
    },
    /// Device memory; bounds are the caller's contract (see [`copy_2d`]).
    Device {
        /// Device address of row 0.
        ptr: u64,
        /// Bytes between row starts.
        pitch: usize,
    },
}

/// Destination of a 2-D copy: `height` rows of `width_bytes` bytes, row `y` at `y * pitch`.
#[derive(Debug)]
pub enum Dst2D<'a> {
    /// Host memory; bounds are checked against the slice.
    Host {
        /// Row 0 starts at `data[0]`.
        data: &'a mut [u8],
        /// Bytes between row starts.
        pitch: usize,
    },
    /// Device memory; bounds are the caller's contract (see [`copy_2d`]).
    Device {
        /// Device address of row 0.
        ptr: u64,
        /// Bytes between row starts.
        pitch: usize,
    },
}

/// Checks that `height` rows of `width_bytes` bytes, `pitch` apart, fit in `len` bytes.
pub(super) fn check_host_span(
    call: &'static str,
    what: &str,
    len: usize,
    pitch: usize,
    width_bytes: usize,
    height: usize,
) -> Result<(), CudaError> {
    let invalid = |reason: String| CudaError::InvalidArgument { call, reason };
    if height > 1 && pitch < width_bytes {
        return Err(invalid(format!(
            "{what} pitch {pitch} is smaller than the row width {width_bytes}"
        )));
    }
    let needed = pitch
        .checked_mul(height - 1)
        .and_then(|n| n.checked_add(width_bytes))
        .ok_or_else(|| {
            invalid(format!(
                "{what} size overflows: pitch {pitch} x {height} rows"
            ))
        })?;
    if needed > len {
        return Err(invalid(format!(
            "{what} needs {needed} bytes ({height} rows of {width_bytes}, pitch {pitch}) but \
             the slice has {len}"
        )));
    }
    Ok(())
}

/// Fills a `CUDA_MEMCPY2D` after checking the host sides. `height` and `width_bytes` are > 0.
fn memcpy2d_params(
    call: &'static str,
    src: Src2D<'_>,
    dst: Dst2D<'_>,
    width_bytes: usize,
    height: usize,
) -> Result<CUDA_MEMCPY2D, CudaError> {
    let mut p = CUDA_MEMCPY2D {
        WidthInBytes: width_bytes,
        Height: height,
        ..Default::default()
    };
    match src {
        Src2D::Host { data, pitch } => {
            check_host_span(call, "source", data.len(), pitch, width_bytes, height)?;
            p.srcMemoryType = ffi::CU_MEMORYTYPE_HOST;
            p.srcHost = data.as_ptr().cast();
            p.srcPitch = pitch;
        }
        Src2D::Device { ptr, pitch } => {
            p.srcMemoryType = ffi::CU_MEMORYTYPE_DEVICE;
            p.srcDevice = ptr;
            p.srcPitch = pitch;
        }
    }
    match dst {
        Dst2D::Host { data, pitch } => {
            check_host_span(call, "destination", data.len(), pitch, width_bytes, height)?;
            p.dstMemoryType = ffi::CU_MEMORYTYPE_HOST;
            p.dstHost = data.as_mut_ptr().cast();
            p.dstPitch = pitch;
        }
        Dst2D::Device { ptr, pitch } => {
            p.dstMemoryType = ffi::CU_MEMORYTYPE_DEVICE;
            p.dstDevice = ptr;
            p.dstPitch = pitch;
        }
    }
    Ok(p)
}

fn check_stream(call: &'static str, ctx: &Context, stream: &Stream) -> Result<(), CudaError> {
    if stream.ctx.raw != ctx.raw {
        return Err(CudaError::InvalidArgument {
            call,
            reason: "the stream belongs to another context".to_owned(),
        });
    }
    Ok(())
}

/// Copies `height` rows of `width_bytes` bytes from `src` to `dst`, with `ctx` pushed.
///
/// - `stream = None`: `cuMemcpy2D_v2` on the legacy NULL stream. On return host memory is no
///   longer used; a host-to-device copy may still be in flight on the device, ordered before
///   later work on the NULL stream but *not* before work on [`Stream`]s (they are
///   non-blocking), so pass the stream the consumer uses.
/// - `stream = Some(s)`: `cuMemcpy2DAsync_v2` on `s` (after the work already queued there),
///   then `cuStreamSynchronize(s)`: the copy has completed on return.
///
/// A zero `width_bytes` or `height` copies nothing and calls nothing.
///
/// Errors: [`CudaError::InvalidArgument`] (driver not called) if a host slice is too small for
/// `pitch * (height - 1) + width_bytes` bytes, a host pitch is below `width_bytes`, or the
/// stream belongs to another context; driver errors from the copy or the synchronization.
///
/// # Safety
/// For each `Device` side: `ptr + y * pitch .. + width_bytes` for every row `y < height`
/// must lie within one live device allocation usable from `ctx` (allocated in it, or
/// accessible to it through unified addressing), which must not be freed before this
/// returns. A `Device` destination must not be read or written by anything else meanwhile,
/// and must not alias host memory that Rust code references (e.g. mapped pinned memory).
/// Host sides are checked and need no care.
pub unsafe fn copy_2d(
    ctx: &Context,
    src: Src2D<'_>,
    dst: Dst2D<'_>,
    width_bytes: usize,
    height: usize,
    stream: Option<&Stream>,
) -> Result<(), CudaError> {
    let call = if stream.is_some() {
        "cuMemcpy2DAsync_v2"
    } else {
        "cuMemcpy2D_v2"
    };
    if width_bytes == 0 || height == 0 {
        return Ok(());
    }
    if let Some(s) = stream {
        check_stream(call, ctx, s)?;
    }
    let lib = ctx.lib;
    let p = memcpy2d_params(call, src, dst, width_bytes, height)?;
    let _guard = ctx.push()?;
    match stream {
        None => {
            // SAFETY: `p` is a fully initialized CUDA_MEMCPY2D. Host regions were checked to
            // lie within their slices, which are borrowed (the destination mutably) for the
            // duration of this synchronous call; device regions are valid per the caller's
            // contract; `ctx` is current.
            let r = unsafe { (lib.cuMemcpy2D_v2)(&p) };
            check(lib, call, r)
        }
        Some(s) => {
            // SAFETY: as above, and `s` is a live stream of `ctx`. The host slices stay
            // borrowed until the stream synchronization below has waited for the copy.
            let r = unsafe { (lib.cuMemcpy2DAsync_v2)(&p, s.raw) };
            check(lib, call, r)?;
            // SAFETY: `s.raw` is a live stream of the current context.
            let r = unsafe { (lib.cuStreamSynchronize)(s.raw) };
            // If this fails the copy may be unfinished while the host borrows end. The driver
            // only fails here on a sticky context error (the context is then unusable and
            // performs no further copies) or a torn-down driver.
            check(lib, "cuStreamSynchronize", r)
        }
    }
}

/// Copies `height` rows of `width_bytes` bytes from device memory of context `src_ctx` to
/// device memory of `dst_ctx` (`cuMemcpy3DPeer`, synchronous): between two contexts of one
/// GPU, or GPU to GPU (see [`Context::peer_route`]). A zero size copies nothing.
///
/// Errors: [`CudaError::InvalidArgument`] if a pitch is below `width_bytes`; driver errors.
///
/// # Safety
/// `src_ctx` must be a live context; `src_ptr + y * src_pitch .. + width_bytes` for every row
/// `y < height` must lie in one live allocation of `src_ctx`, and the same for `dst_ptr` in
/// `dst_ctx`; neither may be freed, nor the destination used by anything else, meanwhile.
pub unsafe fn copy_2d_peer(
    dst_ctx: &Context,
    (dst_ptr, dst_pitch): (CUdeviceptr, usize),
    src_ctx: *mut c_void,
    (src_ptr, src_pitch): (CUdeviceptr, usize),
    width_bytes: usize,
    height: usize,
) -> Result<(), CudaError> {
    const CALL: &str = "cuMemcpy3DPeer";
    if width_bytes == 0 || height == 0 {
        return Ok(());
    }
    if src_pitch < width_bytes || dst_pitch < width_bytes {
        return Err(CudaError::InvalidArgument {
            call: CALL,
            reason: format!("pitches {src_pitch}/{dst_pitch} below the row of {width_bytes} bytes"),
        });
    }
    let p = ffi::CUDA_MEMCPY3D_PEER {
        srcXInBytes: 0,
        srcY: 0,
        srcZ: 0,
        srcLOD: 0,
        srcMemoryType: ffi::CU_MEMORYTYPE_DEVICE,
        srcHost: ptr::null(),
        srcDevice: src_ptr,
        srcArray: ptr::null_mut(),
        srcContext: src_ctx,
        srcPitch: src_pitch,
        srcHeight: height,
        dstXInBytes: 0,
        dstY: 0,
        dstZ: 0,
        dstLOD: 0,
        dstMemoryType: ffi::CU_MEMORYTYPE_DEVICE,
        dstHost: ptr::null_mut(),
        dstDevice: dst_ptr,
        dstArray: ptr::null_mut(),
        dstContext: dst_ctx.raw,
        dstPitch: dst_pitch,
        dstHeight: height,
        WidthInBytes: width_bytes,
        Height: height,
        Depth: 1,
    };
    let _guard = dst_ctx.push()?;
    // SAFETY: `p` is fully initialized; both device regions and contexts are valid per the
    // caller's contract; the call is synchronous, so nothing outlives it.
    let r = unsafe { (dst_ctx.lib.cuMemcpy3DPeer)(&p) };
    check(dst_ctx.lib, CALL, r)
}

/// Queues a copy like [`copy_2d`] on `stream` (`cuMemcpy2DAsync_v2`) and returns without
/// waiting. Host sides should be [`HostPinned`] memory for the copy to be truly asynchronous.
///
/// Errors: as [`copy_2d`] (without the synchronization).
///
/// # Safety
/// Everything [`copy_2d`] requires, extended until `stream` has been synchronized (or the
/// context, or a later event on the stream, has been waited for): the device regions must stay
/// allocated, the host memory behind `src`/`dst` must stay allocated, `dst`'s memory must not be
/// read or written, and `src`'s memory must not be written, by anything else until then —
/// even though the borrows end when this function returns.
pub unsafe fn copy_2d_async(
    src: Src2D<'_>,
    dst: Dst2D<'_>,
    width_bytes: usize,
    height: usize,
    stream: &Stream,
) -> Result<(), CudaError> {
    const CALL: &str = "cuMemcpy2DAsync_v2";
    if width_bytes == 0 || height == 0 {
        return Ok(());
    }
    let ctx = &stream.ctx;
    let lib = ctx.lib;
    let p = memcpy2d_params(CALL, src, dst, width_bytes, height)?;
    let _guard = ctx.push()?;
    // SAFETY: `p` is fully initialized; host regions lie within their slices and stay valid
    // until the stream is synchronized, as do device regions, per the caller's contract;
    // `stream.raw` is a live stream of the current context.
    let r = unsafe { (lib.cuMemcpy2DAsync_v2)(&p, stream.raw) };
    check(lib, CALL, r)
}
