//! What the other stand-ins ask of this one about the machine: which device a context belongs
//! to (the NVENC stand-in places each session on its context's GPU, for its caps per GPU model
//! and for NVML). The devices themselves (count, models, identity) are in
//! `nvemu/common/gpus.rs`, shared with the NVENC and NVML stand-ins.
use super::*;

/// The ordinal of the device context `ctx` belongs to, or -1 if `ctx` is not a live context.
/// Not traced, never fails (C ABI; absent from the real driver).
#[unsafe(no_mangle)]
pub extern "C" fn nvemu_cuda_ctx_device(ctx: u64) -> c_int {
    catch_unwind(|| state().ctxs.get(&ctx).map_or(-1, |c| c.dev)).unwrap_or(-1)
}
