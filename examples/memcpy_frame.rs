// SPDX-License-Identifier: MPL-2.0
//! Prints how long one `memcpy` of a raw frame takes on this machine, from and to memory that
//! is not in the caches: the yardstick of `scripts/bench` (host CPU per encoded frame against
//! one copy of the frame).
//!
//! Usage: `cargo run --release --example memcpy_frame -- BYTES [ITERATIONS]`; prints
//! `memcpy BYTES bytes: N.NNN ms`.

use std::hint::black_box;
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let bytes: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1920 * 1080 * 3 / 2);
    let iterations: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    // As in a pipeline, every frame comes from memory that is not in the caches: rotate over
    // enough source and destination frames to exceed them (at least 256 MiB in all).
    let n = (256usize << 20).div_ceil(2 * bytes).max(2);
    let srcs: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8; bytes]).collect();
    let mut dsts: Vec<Vec<u8>> = (0..n).map(|_| vec![0u8; bytes]).collect();
    // Touch every page once so that page faults are not measured.
    for (d, s) in dsts.iter_mut().zip(&srcs) {
        d.copy_from_slice(s);
    }
    let start = Instant::now();
    for i in 0..iterations as usize {
        let k = i % n;
        dsts[k].copy_from_slice(black_box(&srcs[k]));
        black_box(&mut dsts[k]);
    }
    let per = start.elapsed().as_secs_f64() * 1e3 / iterations as f64;
    println!("memcpy {bytes} bytes: {per:.3} ms");
}
