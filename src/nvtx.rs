// SPDX-License-Identifier: MPL-2.0
//! NVTX ranges (`libnvToolsExt.so.1`, loaded at run time): the per-frame path of the encoders
//! (upload, encode submit, bitstream lock, finish) named on the timeline of a profiler such as
//! Nsight Systems, beside the driver's own calls.
//!
//! Two entry points of NVIDIA's `nvToolsExt.h` (NVTX v2 library, API level 0; the same
//! prototypes in NVTX v3's header): `int nvtxRangePushA(const char* message)` (the level of
//! the range started, negative on error) and `int nvtxRangePop(void)` (the level of the range
//! ended, negative on error). `NVTX_API` is empty on Linux (the C calling convention). Ranges
//! nest per thread, so every range opens and closes on one thread ([`Range`] is not `Send`).
//!
//! The library is looked for once, on the first range; where it is absent every range costs one
//! load of an initialised `LazyLock` and nothing else. The profiler itself is attached by the
//! library (`NVTX_INJECTION64_PATH`, which `nsys profile -t nvtx` sets): without a tool the
//! library's calls return at once. No GObject here.

use std::ffi::{CStr, c_char, c_int};
use std::marker::PhantomData;
use std::sync::LazyLock;

use libloading::Library;

/// The SONAME of the NVTX v2 library (CUDA toolkits ship it; NVTX v3 is header-only and
/// needs no library).
pub const LIBNVTX: &str = "libnvToolsExt.so.1";

type PushA = unsafe extern "C" fn(message: *const c_char) -> c_int;
type Pop = unsafe extern "C" fn() -> c_int;

struct Nvtx {
    push: PushA,
    pop: Pop,
    /// Keeps the entry points valid.
    _lib: Library,
}

static NVTX: LazyLock<Option<Nvtx>> = LazyLock::new(|| {
    // SAFETY: loading the library runs its initialisers; libnvToolsExt's only set up its
    // dispatch table (tools attach on the first call, through NVTX_INJECTION64_PATH).
    let lib = unsafe { Library::new(LIBNVTX) }.ok()?;
    // SAFETY: the types are the prototypes of nvToolsExt.h (module docs).
    let push = unsafe { lib.get::<PushA>(b"nvtxRangePushA\0") }
        .ok()
        .map(|s| *s)?;
    // SAFETY: as above.
    let pop = unsafe { lib.get::<Pop>(b"nvtxRangePop\0") }
        .ok()
        .map(|s| *s)?;
    Some(Nvtx {
        push,
        pop,
        _lib: lib,
    })
});

/// Whether `libnvToolsExt.so.1` was found (looks for it on the first call).
pub fn available() -> bool {
    NVTX.is_some()
}

/// An NVTX range of the calling thread, open until dropped (`nvtxRangePop`).
#[must_use = "the range closes when this is dropped"]
pub struct Range {
    open: bool,
    /// Push and pop on one thread: NVTX keeps the nesting per thread.
    _not_send: PhantomData<*const ()>,
}

/// Opens a range named `name` on the calling thread (`nvtxRangePushA`); nothing where the
/// library is absent.
#[inline]
pub fn range(name: &'static CStr) -> Range {
    // The level returned is not looked at: without a tool attached NVTX answers a negative
    // "no tracking" value, and a tool that tracks nothing still wants its pops.
    let open = match NVTX.as_ref() {
        Some(n) => {
            // SAFETY: `name` is NUL-terminated and lives for the program; the function pointer
            // comes from the library kept loaded in `NVTX` (a static, never unloaded).
            unsafe { (n.push)(name.as_ptr()) };
            true
        }
        None => false,
    };
    Range {
        open,
        _not_send: PhantomData,
    }
}

impl Drop for Range {
    #[inline]
    fn drop(&mut self) {
        if let (true, Some(n)) = (self.open, NVTX.as_ref()) {
            // SAFETY: pops the range this thread pushed in `range` (Range is not Send); the
            // library stays loaded.
            unsafe { (n.pop)() };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_without_the_library_do_nothing() {
        // Where the stand-in or a CUDA toolkit is on the library path this opens ranges;
        // either way nesting and dropping must be harmless.
        let outer = range(c"rsnvenc test outer");
        {
            let _inner = range(c"rsnvenc test inner");
        }
        drop(outer);
    }
}
