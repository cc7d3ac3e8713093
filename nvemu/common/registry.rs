//! The encode sessions of the emulated machine, as the NVENC stand-in records them and the NVML
//! stand-in reports them (included with `#[path]` by both).
//!
//! `NVEMU_SYSTEM=PATH` makes the processes that share PATH one machine: every open session is a
//! line of that file (created when missing), so the session caps count, and NVML reports, the
//! sessions of all of them. The file is read and rewritten under an exclusive `flock(2)`; lines of
//! processes that no longer exist (`kill(pid, 0)` answers `ESRCH`) are dropped at each update, so
//! a crashed process frees its sessions as the real driver does when a process dies. Unset, each
//! process is a machine of its own (the NVENC stand-in keeps the lines in memory and the NVML
//! stand-in of the same process asks it for them).
//!
//! One line per session, numbers separated by spaces:
//! `pid session device geforce codec width height fps latency_us busy_ns stamp_ns`
//! - `device`: CUDA ordinal of the GPU; `geforce`: 1 when the GPU counts for GeForce's cap;
//! - `codec`: NVML's `nvmlEncoderType_t` (0 H.264, 1 HEVC, 2 AV1, 255 not initialised yet);
//! - `fps`, `latency_us`, `busy_ns`: the session's pictures done in the second before `stamp_ns`
//!   (wall clock, ns since the Unix epoch), their mean time from submission to done, and the
//!   engine time they took (from the timing model; all 0 without one).

use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// The window `fps`, `latency_us` and `busy_ns` are measured over, ns.
pub const WINDOW_NS: u64 = 1_000_000_000;

/// NVML's codec of a session not initialised yet (`NVML_ENCODER_QUERY_UNKNOWN`).
pub const CODEC_UNKNOWN: u32 = 0xff;

/// One open session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rec {
    pub pid: u32,
    pub session: u64,
    pub device: u32,
    pub geforce: bool,
    pub codec: u32,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub latency_us: u32,
    pub busy_ns: u64,
    pub stamp_ns: u64,
}

impl Rec {
    pub fn line(&self) -> String {
        format!(
            "{} {} {} {} {} {} {} {} {} {} {}\n",
            self.pid,
            self.session,
            self.device,
            self.geforce as u8,
            self.codec,
            self.width,
            self.height,
            self.fps,
            self.latency_us,
            self.busy_ns,
            self.stamp_ns
        )
    }

    pub fn parse(line: &str) -> Option<Rec> {
        let n: Vec<u64> = line
            .split_whitespace()
            .map(|w| w.parse::<u64>().ok())
            .collect::<Option<_>>()?;
        let &[
            pid,
            session,
            device,
            geforce,
            codec,
            width,
            height,
            fps,
            lat,
            busy,
            stamp,
        ] = n.as_slice()
        else {
            return None;
        };
        let u = |v: u64| u32::try_from(v).ok();
        Some(Rec {
            pid: u(pid)?,
            session,
            device: u(device)?,
            geforce: geforce != 0,
            codec: u(codec)?,
            width: u(width)?,
            height: u(height)?,
            fps: u(fps)?,
            latency_us: u(lat)?,
            busy_ns: busy,
            stamp_ns: stamp,
        })
    }

    /// Whether the measurements are recent (taken within the last window before `now_ns`).
    pub fn fresh(&self, now_ns: u64) -> bool {
        now_ns.saturating_sub(self.stamp_ns) <= WINDOW_NS
    }
}

/// Every line of a text (unparsable lines are skipped).
pub fn parse_all(text: &str) -> Vec<Rec> {
    text.lines().filter_map(Rec::parse).collect()
}

/// The text of some lines.
pub fn format_all(recs: &[Rec]) -> String {
    recs.iter().map(Rec::line).collect()
}

/// Wall clock now, ns since the Unix epoch (comparable between processes).
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// `NVEMU_SYSTEM`, if set and not empty.
pub fn shared_path() -> Option<PathBuf> {
    std::env::var_os("NVEMU_SYSTEM")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
}

fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

struct Locked(std::fs::File);

impl Locked {
    fn open(path: &Path, exclusive: bool) -> std::io::Result<Locked> {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let op = if exclusive {
            libc::LOCK_EX
        } else {
            libc::LOCK_SH
        };
        // SAFETY: flock on a descriptor this function owns; it blocks until the lock is ours.
        if unsafe { libc::flock(f.as_raw_fd(), op) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Locked(f))
    }

    fn read(&mut self) -> std::io::Result<Vec<Rec>> {
        let mut s = String::new();
        self.0.rewind()?;
        self.0.read_to_string(&mut s)?;
        Ok(parse_all(&s))
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        // SAFETY: unlocks the descriptor this value owns (closing it would unlock it too).
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// The sessions of the shared file (those of live processes).
pub fn read_shared(path: &Path) -> std::io::Result<Vec<Rec>> {
    let mut l = Locked::open(path, false)?;
    let mut recs = l.read()?;
    recs.retain(|r| alive(r.pid));
    Ok(recs)
}

/// Reads the shared file's sessions (those of live processes), lets `f` change them and writes
/// them back, all under the exclusive lock.
pub fn update_shared<R>(path: &Path, f: impl FnOnce(&mut Vec<Rec>) -> R) -> std::io::Result<R> {
    let mut l = Locked::open(path, true)?;
    let mut recs = l.read()?;
    recs.retain(|r| alive(r.pid));
    let r = f(&mut recs);
    let text = format_all(&recs);
    l.0.set_len(0)?;
    l.0.rewind()?;
    l.0.write_all(text.as_bytes())?;
    l.0.flush()?;
    Ok(r)
}

/// The GeForce driver's cap on concurrent encode sessions, per system (see `nvemu-nvenc`'s
/// `GEFORCE_SESSION_CAP`, where the source is cited).
pub const GEFORCE_CAP: usize = 8;

/// The session cap that applies on GPU `ordinal` (`geforce`: whether it is a GeForce card);
/// the rules are documented in `nvemu-nvenc`'s `system` module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cap {
    /// At most this many sessions on this GPU (`NVEMU_SESSION_LIMIT`).
    PerGpu(usize),
    /// At most this many sessions on all GeForce GPUs of the system together.
    GeForceSystem(usize),
    None,
}

pub fn cap_for(ordinal: u32, geforce: bool) -> Cap {
    let listed = std::env::var("NVEMU_SESSION_LIMIT").ok().and_then(|v| {
        let entries: Vec<&str> = v.split(',').map(str::trim).collect();
        let e = if entries.len() == 1 {
            entries[0]
        } else {
            entries.get(ordinal as usize)?
        };
        e.parse::<usize>().ok()
    });
    match listed {
        Some(0) => Cap::None,
        Some(n) => Cap::PerGpu(n),
        None if geforce => Cap::GeForceSystem(GEFORCE_CAP),
        None => Cap::None,
    }
}

impl Cap {
    /// Sessions counted against this cap among `recs` for GPU `ordinal`, and the cap.
    pub fn usage(self, recs: &[Rec], ordinal: u32) -> (usize, Option<usize>) {
        match self {
            Cap::PerGpu(n) => (recs.iter().filter(|r| r.device == ordinal).count(), Some(n)),
            Cap::GeForceSystem(n) => (recs.iter().filter(|r| r.geforce).count(), Some(n)),
            Cap::None => (0, None),
        }
    }
}
