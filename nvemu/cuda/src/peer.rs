//! Several devices and the copies between them: peer access and cross-context copies.
//!
//! - `NVEMU_GPU_COUNT` devices (see `device_count`); `cuDeviceCanAccessPeer(dev, peer)` is 1
//!   for two distinct devices (as between GPUs on NVLink) unless `NVEMU_PEER_ACCESS=0` (as
//!   between GPUs with no P2P path), and 0 for a device and itself (the runtime's
//!   `cudaDeviceCanAccessPeer` documents 0 for device == peerDevice; the driver call is assumed
//!   to agree).
//! - `cuCtxEnablePeerAccess` from the current context to a context of another device, once
//!   (`CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED` after that), only where the devices can reach
//!   each other (`CUDA_ERROR_PEER_ACCESS_UNSUPPORTED` otherwise, including two contexts of one
//!   device: what the real driver returns for those is not documented; this follows "if
//!   cuDeviceCanAccessPeer() indicates that the CUdevice of the current context cannot directly
//!   access memory from the CUdevice of peerContext").
//! - `cuMemcpy3DPeer(Async)`: each device side must lie in one allocation of the context named
//!   for it (the emulator is strict here: the real driver's behaviour when the context named
//!   does not own the pointer is not documented). A copy between two devices is traced with
//!   `"peer": "direct"` when peer access is enabled between the two contexts (either way), else
//!   `"peer": "staged"` (the driver stages it through host memory); both count as DtoD.
//!   Plain `cuMemcpy2D` between devices (unified addressing) is traced the same way.
use super::*;

fn peer_capable(dev: CUdevice, peer: CUdevice) -> bool {
    dev != peer && std::env::var("NVEMU_PEER_ACCESS").map_or(true, |v| v != "0")
}

/// For a copy between device memory of contexts `a` and `b`: `None` on one device, else how
/// the bytes travel (`"direct"` with peer access enabled between them, else `"staged"`).
pub(crate) fn route(st: &State, a: u64, b: u64) -> Option<&'static str> {
    let (da, db) = (st.ctxs.get(&a)?.dev, st.ctxs.get(&b)?.dev);
    if da == db {
        return None;
    }
    Some(
        if st.peers.contains(&(a, b)) || st.peers.contains(&(b, a)) {
            "direct"
        } else {
            "staged"
        },
    )
}

cuda_fn! { fn cuDeviceCanAccessPeer(can_access: *mut c_int, dev: CUdevice, peer_dev: CUdevice) {
    check_device(dev)?;
    check_device(peer_dev)?;
    put(can_access, peer_capable(dev, peer_dev) as c_int)
}}

/// Checks the common arguments of the peer-access calls; returns the current context.
fn peer_ctx(st: &State, peer: CUcontext) -> R<u64> {
    let cur = current_ctx(st)?;
    let p = peer as u64;
    if !st.ctxs.contains_key(&p) || p == cur {
        return Err(CUDA_ERROR_INVALID_CONTEXT);
    }
    Ok(cur)
}

cuda_fn! { fn cuCtxEnablePeerAccess(peer: CUcontext, flags: c_uint) {
    let mut st = state();
    let r = peer_ctx(&st, peer).and_then(|cur| {
        if flags != 0 {
            return Err(CUDA_ERROR_INVALID_VALUE);
        }
        let p = peer as u64;
        if !peer_capable(st.ctxs[&cur].dev, st.ctxs[&p].dev) {
            return Err(CUDA_ERROR_PEER_ACCESS_UNSUPPORTED);
        }
        if !st.peers.insert((cur, p)) {
            return Err(CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED);
        }
        Ok(())
    });
    drop(st);
    trace("cuCtxEnablePeerAccess", r.err().unwrap_or(0), &[("peerContext", hex(peer as u64)), ("Flags", flags.into())], None);
    r
}}

cuda_fn! { fn cuCtxDisablePeerAccess(peer: CUcontext) {
    let mut st = state();
    let r = peer_ctx(&st, peer).and_then(|cur| {
        if st.peers.remove(&(cur, peer as u64)) {
            Ok(())
        } else {
            Err(CUDA_ERROR_PEER_ACCESS_NOT_ENABLED)
        }
    });
    drop(st);
    trace("cuCtxDisablePeerAccess", r.err().unwrap_or(0), &[("peerContext", hex(peer as u64))], None);
    r
}}

/// One side of a peer copy: host, or device memory that lies in one allocation of `ctx`.
fn peer_side(
    st: &State,
    (mem_type, host, dev, ctx): (c_uint, u64, u64, u64),
    (x, y, z, pitch, height): (usize, usize, usize, usize, usize),
    (width, rows, depth): (usize, usize, usize),
) -> R<(u64, Option<u64>)> {
    if depth > 1 && height < rows {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    // Every slice's rows lie between the first row of slice `z` and the last of the last one.
    let start_y = z
        .checked_mul(height)
        .and_then(|o| o.checked_add(y))
        .ok_or(CUDA_ERROR_INVALID_VALUE)?;
    let span_rows = (depth - 1)
        .checked_mul(height)
        .and_then(|o| o.checked_add(rows))
        .ok_or(CUDA_ERROR_INVALID_VALUE)?;
    let s = side(st, mem_type, host, dev, x, start_y, pitch, width, span_rows)?;
    let owner = match mem_type {
        CU_MEMORYTYPE_DEVICE | CU_MEMORYTYPE_UNIFIED if s.device => {
            if !st.ctxs.contains_key(&ctx) {
                return Err(CUDA_ERROR_INVALID_CONTEXT);
            }
            if s.ctx != Some(ctx) {
                return Err(CUDA_ERROR_INVALID_VALUE);
            }
            Some(ctx)
        }
        _ => None,
    };
    Ok((s.addr, owner))
}

fn memcpy3d_peer(call: &'static str, p: *const CUDA_MEMCPY3D_PEER, stream: CUstream) -> R {
    let c = get(p)?;
    let mut st = state();
    need_init()?;
    check_stream(&st, stream)?;
    let dims = (c.WidthInBytes, c.Height, c.Depth);
    let res = (|| {
        if c.srcLOD != 0 || c.dstLOD != 0 || c.Depth == 0 {
            return Err(CUDA_ERROR_INVALID_VALUE);
        }
        let s = peer_side(
            &st,
            (
                c.srcMemoryType,
                c.srcHost as u64,
                c.srcDevice,
                c.srcContext as u64,
            ),
            (c.srcXInBytes, c.srcY, c.srcZ, c.srcPitch, c.srcHeight),
            dims,
        )?;
        let d = peer_side(
            &st,
            (
                c.dstMemoryType,
                c.dstHost as u64,
                c.dstDevice,
                c.dstContext as u64,
            ),
            (c.dstXInBytes, c.dstY, c.dstZ, c.dstPitch, c.dstHeight),
            dims,
        )?;
        Ok((s, d))
    })();
    let bytes = c
        .WidthInBytes
        .saturating_mul(c.Height)
        .saturating_mul(c.Depth);
    let mut args = vec![
        ("srcMemoryType", Val::from(c.srcMemoryType)),
        ("srcDevice", hex(c.srcDevice)),
        ("srcContext", hex(c.srcContext as u64)),
        ("srcPitch", c.srcPitch.into()),
        ("dstMemoryType", c.dstMemoryType.into()),
        ("dstDevice", hex(c.dstDevice)),
        ("dstContext", hex(c.dstContext as u64)),
        ("dstPitch", c.dstPitch.into()),
        ("WidthInBytes", c.WidthInBytes.into()),
        ("Height", c.Height.into()),
        ("Depth", c.Depth.into()),
    ];
    if !stream.is_null() {
        args.push(("hStream", hex(stream as u64)));
    }
    match res {
        Ok(((src, sctx), (dst, dctx))) => {
            if let (Some(a), Some(b)) = (sctx, dctx)
                && let Some(how) = route(&st, a, b)
            {
                args.push(("peer", how.into()));
            }
            let kind = kind_of(sctx.is_some(), dctx.is_some());
            let (sslice, dslice) = (c.srcPitch * c.srcHeight, c.dstPitch * c.dstHeight);
            for z in 0..c.Depth {
                copy_rect(
                    dst + (z * dslice) as u64,
                    c.dstPitch,
                    src + (z * sslice) as u64,
                    c.srcPitch,
                    c.WidthInBytes,
                    c.Height,
                );
            }
            // Ordered like any copy issued from the current context (the destination's, as
            // callers push it): synchronous on the legacy stream, or on `stream`.
            if let Ok(cur) = current_ctx(&st) {
                let span = match (c.Height, c.Depth) {
                    (0, _) | (_, 0) => 0,
                    (h, d) => (d - 1) * dslice + (h - 1) * c.dstPitch + c.WidthInBytes,
                };
                let sync = call == "cuMemcpy3DPeer";
                ordering::record_write(&mut st, cur, stream, sync, call, dst, span, dctx.is_some());
            }
            drop(st);
            count_copy(kind, bytes);
            trace(call, 0, &args, Some((kind, bytes)));
            Ok(())
        }
        Err(e) => {
            drop(st);
            trace(call, e, &args, None);
            Err(e)
        }
    }
}

cuda_fn! { fn cuMemcpy3DPeer(p: *const CUDA_MEMCPY3D_PEER) {
    memcpy3d_peer("cuMemcpy3DPeer", p, std::ptr::null_mut())
}}

cuda_fn! { fn cuMemcpy3DPeerAsync(p: *const CUDA_MEMCPY3D_PEER, stream: CUstream) {
    memcpy3d_peer("cuMemcpy3DPeerAsync", p, stream)
}}
