// SPDX-License-Identifier: MPL-2.0
//! Probes the NVENC driver the way the elements do at start, without GStreamer: loads
//! `libnvidia-encode.so.1`, negotiates the API version, creates a CUDA context on device 0 and
//! opens an encode session. Prints each step and the error a user would see.
//!
//! `cargo run --example nvenc_probe`

use std::sync::Arc;

use gstrsnvenc::cuda;
use gstrsnvenc::nvenc::api;

fn main() {
    match api::load() {
        Ok(lib) => println!(
            "libnvidia-encode.so.1 loaded: driver max NVENC API {}.{}, negotiated API {}",
            lib.driver_max.0,
            lib.driver_max.1,
            lib.api.name()
        ),
        Err(e) => {
            println!("error: {e}");
            std::process::exit(1);
        }
    }
    let ctx = match cuda::init()
        .and_then(|_| cuda::Device::new(0))
        .and_then(|d| {
            println!(
                "CUDA device 0: {} (compute {:?}), driver {}",
                d.name().unwrap_or_default(),
                d.compute_capability().unwrap_or((0, 0)),
                cuda::driver_version().unwrap_or(0)
            );
            cuda::Context::new(&d)
        }) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            println!("error: {e}");
            std::process::exit(1);
        }
    };
    match api::Session::open(ctx) {
        Ok(s) => {
            println!(
                "nvEncOpenEncodeSessionEx: NV_ENC_SUCCESS (API {})",
                s.api().name()
            );
            match s.encode_guids() {
                Ok(g) => println!("codec GUIDs: {g:?}"),
                Err(e) => println!("error: {e}"),
            }
        }
        Err(e) => {
            println!("error: {e}");
            std::process::exit(2);
        }
    }
}
