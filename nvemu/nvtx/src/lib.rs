// SPDX-License-Identifier: MPL-2.0
//! A stand-in for the NVTX v2 library (`libnvToolsExt.so.1`) that records what a client
//! marks: `nvtxRangePushA` and `nvtxRangePop` (the prototypes of `nvToolsExt.h`), one JSON
//! object per call appended to the file `NVEMU_NVTX` names (nothing is written without it):
//!
//! `{"call": "nvtxRangePushA", "thread": TID, "level": L, "message": "..."}`,
//! `{"call": "nvtxRangePop", "thread": TID, "level": L}`.
//!
//! As the real library with a tool attached, ranges nest per thread: a push returns the level
//! of the range it starts (0 for the outermost), a pop the level of the range it ends, and a
//! pop with nothing pushed on that thread returns -1 (`nvToolsExt.h`: "a negative value" on
//! error; which one the real library returns is not documented). Only the entry points the
//! plugin uses are exported.

// The crate is named after the library it stands in for.
#![allow(non_snake_case)]

use std::cell::Cell;
use std::ffi::{CStr, c_char, c_int};
use std::fs::File;
use std::io::Write;
use std::sync::{LazyLock, Mutex};

static OUT: LazyLock<Option<Mutex<File>>> = LazyLock::new(|| {
    let path = std::env::var_os("NVEMU_NVTX").filter(|p| !p.is_empty())?;
    let f = File::options().create(true).append(true).open(path).ok()?;
    Some(Mutex::new(f))
});

thread_local! {
    static DEPTH: Cell<c_int> = const { Cell::new(0) };
}

fn tid() -> i64 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as i64 }
}

fn record(line: String) {
    if let Some(f) = OUT.as_ref() {
        let mut f = f.lock().unwrap_or_else(|e| e.into_inner());
        let _ = f.write_all(line.as_bytes());
    }
}

/// Escapes `s` for a JSON string.
fn json(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// `int nvtxRangePushA(const char* message)`.
///
/// # Safety
/// `message` is NULL or a NUL-terminated string (the header's contract).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvtxRangePushA(message: *const c_char) -> c_int {
    let text = if message.is_null() {
        String::new()
    } else {
        // SAFETY: nvToolsExt.h: `message` is a NUL-terminated ASCII string.
        unsafe { CStr::from_ptr(message) }
            .to_string_lossy()
            .into_owned()
    };
    let level = DEPTH.with(|d| {
        let l = d.get();
        d.set(l + 1);
        l
    });
    record(format!(
        "{{\"call\": \"nvtxRangePushA\", \"thread\": {}, \"level\": {level}, \"message\": \"{}\"}}\n",
        tid(),
        json(&text)
    ));
    level
}

/// `int nvtxRangePop(void)`.
#[unsafe(no_mangle)]
pub extern "C" fn nvtxRangePop() -> c_int {
    let level = DEPTH.with(|d| {
        let l = d.get() - 1;
        if l >= 0 {
            d.set(l);
        }
        l.max(-1)
    });
    record(format!(
        "{{\"call\": \"nvtxRangePop\", \"thread\": {}, \"level\": {level}}}\n",
        tid()
    ));
    level
}
