// SPDX-License-Identifier: MPL-2.0
//! What NVML answers on this machine, GPU by GPU, and where automatic placement
//! (`cuda-device-id=-1`) would put a session of each codec, without GStreamer: CUDA devices
//! (name, PCI bus id), their NVML device (UUID), `nvmlDeviceGetEncoderStats`,
//! `nvmlDeviceGetEncoderUtilization`, `nvmlDeviceGetEncoderCapacity` per codec, and then an
//! NVENC session opened on each GPU (what `nvEncOpenEncodeSessionEx` answers there).
//!
//! `cargo run --example nvml_probe` (on a GPU machine; with the emulator:
//! `scripts/nvemu-run cargo run --example nvml_probe`).

use std::sync::Arc;

use gstrsnvenc::nvenc::api::{self, Codec};
use gstrsnvenc::nvml::{self, EncoderType};
use gstrsnvenc::{cuda, placement};

fn main() {
    let n = match nvml::nvml() {
        Ok(n) => Some(n),
        Err(e) => {
            println!("NVML: {e}");
            None
        }
    };
    if let Err(e) = cuda::init() {
        println!("CUDA: {e}");
        std::process::exit(1);
    }
    let count = cuda::device_count().unwrap_or(0);
    println!("{count} CUDA device(s)");
    for o in 0..count {
        let Ok(dev) = cuda::Device::new(o) else {
            continue;
        };
        let bus = dev.pci_bus_id().unwrap_or_default();
        println!("GPU {o}: {} at {bus}", dev.name().unwrap_or_default());
        let Some(n) = n else { continue };
        let d = match n.device_by_pci_bus_id(&bus) {
            Ok(d) => d,
            Err(e) => {
                println!("  NVML: {e}");
                continue;
            }
        };
        println!("  NVML uuid: {:?}", n.uuid(d));
        println!("  nvmlDeviceGetEncoderStats: {:?}", n.encoder_stats(d));
        println!(
            "  nvmlDeviceGetEncoderSessions pids: {:?}",
            n.encoder_session_pids(d)
        );
        println!(
            "  nvmlDeviceGetEncoderUtilization: {:?}",
            n.encoder_utilisation(d)
        );
        for c in [EncoderType::H264, EncoderType::Hevc, EncoderType::Av1] {
            println!(
                "  nvmlDeviceGetEncoderCapacity({c:?}): {:?}",
                n.encoder_capacity(d, c)
            );
        }
    }
    for (codec, c) in [
        (Codec::H264, EncoderType::H264),
        (Codec::Hevc, EncoderType::Hevc),
        (Codec::Av1, EncoderType::Av1),
    ] {
        match placement::survey(c) {
            Ok(views) => {
                let p = placement::place(None, &views);
                println!(
                    "placement of a {codec:?} session: {:?}: {}",
                    p.order, p.reason
                );
            }
            Err(t) => println!("placement of a {codec:?} session: {}", t.message),
        }
    }
    if let Err(e) = api::load() {
        println!("NVENC: {e}");
        return;
    }
    for o in 0..count {
        let r = cuda::Device::new(o)
            .and_then(|d| cuda::Context::new(&d))
            .map_err(|e| e.to_string())
            .and_then(|ctx| api::Session::open(Arc::new(ctx)).map_err(|e| e.to_string()));
        match r {
            Ok(_) => println!("GPU {o}: nvEncOpenEncodeSessionEx: NV_ENC_SUCCESS"),
            Err(e) => println!("GPU {o}: {e}"),
        }
    }
}
