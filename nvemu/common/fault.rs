//! Fault injection, shared by both stand-ins (included with `#[path]`): `NVEMU_FAULT` makes
//! chosen calls fail, to test clients' error paths.
//!
//! Syntax: rules separated by `,`; each rule is `CALL:N[+][:STATUS]`:
//! - `CALL`: the entry point's name as in `nvEncodeAPI.h` or `cuda.h` (`nvEncLockBitstream`,
//!   `cuMemAllocPitch_v2`, ...), or `*` for every call of a library (each library counts its
//!   own calls);
//! - `N`: the 1-based count of calls to that entry point in this process; `N+` fails the N-th
//!   and every later call;
//! - `STATUS`: a status name of that library (`NV_ENC_ERR_ENCODER_BUSY`,
//!   `CUDA_ERROR_OUT_OF_MEMORY`) or number; default `NV_ENC_ERR_GENERIC` / `CUDA_ERROR_UNKNOWN`.
//!   A rule whose status name the library does not know is ignored by that library.
//!
//! Example: `NVEMU_FAULT=nvEncEncodePicture:5:NV_ENC_ERR_ENCODER_BUSY,cuMemAllocPitch_v2:1`.
//! A faulted call does nothing but return the status; the trace shows it. A malformed rule is
//! reported on stderr and ignored.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

struct Rule {
    call: String,
    n: u64,
    and_later: bool,
    status: i32,
}

struct Faults {
    rules: Vec<Rule>,
    counts: Mutex<HashMap<String, u64>>,
}

static FAULTS: OnceLock<Faults> = OnceLock::new();

/// `status_of`: the library's status names to numbers; `default`: the status of a rule that
/// names none.
fn faults(status_of: fn(&str) -> Option<i32>, default: i32) -> &'static Faults {
    FAULTS.get_or_init(|| Faults {
        rules: std::env::var("NVEMU_FAULT")
            .map(|s| parse(&s, status_of, default))
            .unwrap_or_default(),
        counts: Mutex::new(HashMap::new()),
    })
}

fn parse(spec: &str, status_of: fn(&str) -> Option<i32>, default: i32) -> Vec<Rule> {
    let mut rules = Vec::new();
    for r in spec.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        // A rule naming a status of the other library (NVENC's `NV_ENC_*`, CUDA's `CUDA_*`)
        // that this one does not know is the other library's: skipped without a word.
        let other = r.split(':').nth(2).is_some_and(|s| {
            (s.starts_with("NV_ENC_") || s.starts_with("CUDA_")) && status_of(s).is_none()
        });
        if other {
            continue;
        }
        match parse_rule(r, status_of, default) {
            Some(rule) => rules.push(rule),
            None => eprintln!("nvemu: ignoring NVEMU_FAULT rule {r:?} here (CALL:N[+][:STATUS])"),
        }
    }
    rules
}

fn parse_rule(r: &str, status_of: fn(&str) -> Option<i32>, default: i32) -> Option<Rule> {
    let mut it = r.split(':');
    let call = it.next()?.to_string();
    let n = it.next()?;
    let (n, and_later) = match n.strip_suffix('+') {
        Some(n) => (n, true),
        None => (n, false),
    };
    let n: u64 = n.parse().ok().filter(|&n| n >= 1)?;
    let status = match it.next() {
        None => default,
        Some(s) => s.parse().ok().or_else(|| status_of(s))?,
    };
    if it.next().is_some() || call.is_empty() {
        return None;
    }
    Some(Rule {
        call,
        n,
        and_later,
        status,
    })
}

/// Counts this call of `name` and returns the status to fail it with, if a rule says so.
pub fn check(name: &str, status_of: fn(&str) -> Option<i32>, default: i32) -> Option<i32> {
    let f = faults(status_of, default);
    if f.rules.is_empty() {
        return None;
    }
    let mut counts = f.counts.lock().unwrap_or_else(|e| e.into_inner());
    let mut bump = |k: &str| {
        let c = counts.entry(k.to_string()).or_insert(0);
        *c += 1;
        *c
    };
    let own = bump(name);
    let all = bump("*");
    f.rules.iter().find_map(|r| {
        let c = if r.call == "*" {
            all
        } else if r.call == name {
            own
        } else {
            return None;
        };
        (c == r.n || (r.and_later && c > r.n)).then_some(r.status)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: &str) -> Option<i32> {
        match s {
            "BUSY" => Some(18),
            "GENERIC" => Some(20),
            _ => None,
        }
    }

    #[test]
    fn rules_parse() {
        let r = parse(
            "nvEncLockBitstream:3:BUSY, *:10+ ,bad,x:0,y:1:NOPE",
            names,
            20,
        );
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].call, "nvEncLockBitstream");
        assert_eq!((r[0].n, r[0].and_later, r[0].status), (3, false, 18));
        assert_eq!(
            (r[1].call.as_str(), r[1].n, r[1].and_later),
            ("*", 10, true)
        );
        assert_eq!(r[1].status, 20);
        assert_eq!(parse("nvEncEncodePicture:2:7", names, 20)[0].status, 7);
    }
}
