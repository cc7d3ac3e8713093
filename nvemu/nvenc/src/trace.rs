//! `NVEMU_TRACE` (one JSON object per call), `NVEMU_LOG=1` and `NVEMU_STRICT=abort`.

use serde_json::{Map, Value};
use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

static SEQ: AtomicU64 = AtomicU64::new(0);
static FILE: Mutex<Option<(String, std::fs::File)>> = Mutex::new(None);

/// Whether calls are traced or logged (read at each call: tests change it at run time). When
/// not, entry points skip decoding their structs for the trace.
pub fn wanted() -> bool {
    std::env::var_os("NVEMU_TRACE").is_some_and(|p| !p.is_empty())
        || std::env::var_os("NVEMU_LOG").is_some_and(|v| v == "1")
}

/// CLOCK_MONOTONIC in nanoseconds of an `Instant` (Rust's `Instant` is CLOCK_MONOTONIC on
/// Linux): the `t_ns` of every trace line and the `emu.*_ns` times of the timing model, so that
/// lines of both stand-ins and of the client can be compared.
pub fn mono_ns(at: std::time::Instant) -> u64 {
    static BASE: std::sync::LazyLock<(std::time::Instant, u64)> = std::sync::LazyLock::new(|| {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        let now = std::time::Instant::now();
        (now, ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
    });
    let (i0, n0) = *BASE;
    if at >= i0 {
        n0.saturating_add(at.duration_since(i0).as_nanos() as u64)
    } else {
        n0.saturating_sub(i0.duration_since(at).as_nanos() as u64)
    }
}

/// One traced call, filled in by the entry point and written by [`Call::finish`].
pub struct Call {
    pub call: &'static str,
    pub session: Option<u64>,
    pub api: Option<&'static str>,
    pub args: Map<String, Value>,
    pub violation: Option<String>,
    pub notes: Vec<String>,
}

impl Call {
    pub fn new(call: &'static str) -> Call {
        Call {
            call,
            session: None,
            api: None,
            args: Map::new(),
            violation: None,
            notes: Vec::new(),
        }
    }

    pub fn arg(&mut self, k: &str, v: impl Into<Value>) {
        self.args.insert(k.to_string(), v.into());
    }

    /// Records a contract violation (the client broke a rule of the API).
    pub fn violation(&mut self, what: impl Into<String>) {
        let w = what.into();
        self.violation = Some(match self.violation.take() {
            Some(old) => format!("{old}; {w}"),
            None => w,
        });
    }

    pub fn note(&mut self, what: impl Into<String>) {
        self.notes.push(what.into());
    }

    /// Writes the trace line, logs, and aborts in strict mode on a violation.
    pub fn finish(self, status: i32) {
        let name = crate::abi::status_name(status);
        let log = std::env::var("NVEMU_LOG").is_ok_and(|v| v == "1");
        if log {
            eprintln!(
                "nvemu: {}(session {:?}) -> {}{}",
                self.call,
                self.session,
                name,
                self.violation
                    .as_deref()
                    .map(|v| format!(" [violation: {v}]"))
                    .unwrap_or_default()
            );
        }
        if let Some(v) = &self.violation {
            eprintln!("nvemu: contract violation in {}: {}", self.call, v);
        }
        if let Some(path) = std::env::var("NVEMU_TRACE").ok().filter(|p| !p.is_empty()) {
            // seq is taken under the file lock so lines appear in seq order.
            let mut g = FILE.lock().unwrap_or_else(|e| e.into_inner());
            let mut o = Map::new();
            o.insert("seq".into(), SEQ.fetch_add(1, Ordering::SeqCst).into());
            o.insert("lib".into(), "nvenc".into());
            o.insert("t_ns".into(), mono_ns(std::time::Instant::now()).into());
            o.insert("call".into(), self.call.into());
            o.insert(
                "session".into(),
                self.session.map(Value::from).unwrap_or(Value::Null),
            );
            o.insert("status".into(), name.clone().into());
            o.insert("status_code".into(), status.into());
            o.insert(
                "api".into(),
                self.api.map(Value::from).unwrap_or(Value::Null),
            );
            o.insert("args".into(), Value::Object(self.args));
            if let Some(v) = &self.violation {
                o.insert("violation".into(), v.clone().into());
            }
            if !self.notes.is_empty() {
                o.insert("emulator_note".into(), self.notes.join("; ").into());
            }
            let mut line = Value::Object(o).to_string();
            line.push('\n');
            if g.as_ref().is_none_or(|(p, _)| *p != path) {
                *g = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .ok()
                    .map(|f| (path.clone(), f));
            }
            if let Some((_, f)) = g.as_mut() {
                // One write(2) per line on an O_APPEND file: lines of both stand-ins and of
                // several processes never interleave.
                let _ = f.write_all(line.as_bytes());
            }
        }
        if self.violation.is_some() && std::env::var("NVEMU_STRICT").is_ok_and(|s| s == "abort") {
            std::process::abort();
        }
    }
}
