//! Fault injection: `NVEMU_FAULT` makes chosen calls fail, to test clients' error paths.
//!
//! Syntax: rules separated by `,`; each rule is `CALL:N[+][:STATUS]`:
//! - `CALL`: the entry point's name as in `nvEncodeAPI.h` (`nvEncLockBitstream`,
//!   `nvEncOpenEncodeSessionEx`, ...), or `*` for every NVENC call;
//! - `N`: the 1-based count of calls to that entry point in this process (`*` counts every
//!   call); `N+` fails the N-th and every later call;
//! - `STATUS`: an `NVENCSTATUS` name (`NV_ENC_ERR_ENCODER_BUSY`) or number; default
//!   `NV_ENC_ERR_GENERIC`.
//!
//! Example: `NVEMU_FAULT=nvEncEncodePicture:5:NV_ENC_ERR_ENCODER_BUSY,nvEncLockBitstream:9+`.
//! A faulted call does nothing but return the status (and set the session's last-error
//! string); the trace shows it with an `emulator_note`. A malformed rule is reported once on
//! stderr and ignored.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use crate::abi;

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

static FAULTS: LazyLock<Faults> = LazyLock::new(|| Faults {
    rules: std::env::var("NVEMU_FAULT")
        .map(|s| parse(&s))
        .unwrap_or_default(),
    counts: Mutex::new(HashMap::new()),
});

fn parse(spec: &str) -> Vec<Rule> {
    let mut rules = Vec::new();
    for r in spec.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        match parse_rule(r) {
            Some(rule) => rules.push(rule),
            None => {
                eprintln!("nvemu: ignoring malformed NVEMU_FAULT rule {r:?} (CALL:N[+][:STATUS])")
            }
        }
    }
    rules
}

fn parse_rule(r: &str) -> Option<Rule> {
    let mut it = r.split(':');
    let call = it.next()?.to_string();
    let n = it.next()?;
    let (n, and_later) = match n.strip_suffix('+') {
        Some(n) => (n, true),
        None => (n, false),
    };
    let n: u64 = n.parse().ok().filter(|&n| n >= 1)?;
    let status = match it.next() {
        None => abi::status_code("NV_ENC_ERR_GENERIC")?,
        Some(s) => s.parse().ok().or_else(|| abi::status_code(s))?,
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
pub fn check(name: &str) -> Option<i32> {
    let f = &*FAULTS;
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

    #[test]
    fn rules_parse() {
        let r = parse("nvEncLockBitstream:3:NV_ENC_ERR_ENCODER_BUSY, *:10+ ,bad,x:0,y:1:NOPE");
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].call, "nvEncLockBitstream");
        assert_eq!((r[0].n, r[0].and_later), (3, false));
        assert_eq!(
            r[0].status,
            abi::status_code("NV_ENC_ERR_ENCODER_BUSY").unwrap()
        );
        assert_eq!(
            (r[1].call.as_str(), r[1].n, r[1].and_later),
            ("*", 10, true)
        );
        assert_eq!(r[1].status, abi::status_code("NV_ENC_ERR_GENERIC").unwrap());
        let n = parse("nvEncEncodePicture:2:7");
        assert_eq!(n[0].status, 7);
    }
}
