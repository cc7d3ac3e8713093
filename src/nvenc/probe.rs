// SPDX-License-Identifier: MPL-2.0
//! What this machine's NVENC can encode, found as nvcodec finds it at plugin load: load the
//! driver's `libnvidia-encode.so.1` and `libcuda.so.1`, then on every CUDA device open an
//! NVENC session and read the codec GUIDs it lists (`nvEncGetEncodeGUIDs`). The plugin ranks
//! each element by it (`src/lib.rs`).

use std::sync::Arc;

use super::api::{self, Codec, NvEncError, Session};
use crate::cuda;

/// What the probe found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probe {
    /// Codecs at least one GPU encodes, in [`Codec`] order.
    pub codecs: Vec<Codec>,
    /// One line per CUDA device: its ordinal, name and codecs, or why it has no NVENC.
    pub devices: Vec<String>,
    /// Why nothing could be probed (no driver library, driver too old, CUDA failed), if so.
    pub failure: Option<String>,
}

impl Probe {
    /// Whether some GPU here encodes `codec`.
    pub fn encodes(&self, codec: Codec) -> bool {
        self.codecs.contains(&codec)
    }
}

/// Probes every CUDA device. Never panics: every failure is reported in [`Probe`]. Opens (and
/// closes) one CUDA context and one NVENC session per device.
pub fn run() -> Probe {
    let mut p = Probe::default();
    let count = match api::load()
        .map_err(|e| e.to_string())
        .and_then(|_| cuda::init().map_err(|e| e.to_string()))
        .and_then(|()| cuda::device_count().map_err(|e| e.to_string()))
    {
        Ok(n) => n,
        Err(e) => {
            p.failure = Some(e);
            return p;
        }
    };
    if count == 0 {
        p.failure = Some("the CUDA driver lists no device".into());
    }
    for ordinal in 0..count {
        match device_codecs(ordinal) {
            Ok((name, codecs)) => {
                let list: Vec<String> = codecs.iter().map(Codec::to_string).collect();
                let what = if list.is_empty() {
                    "no codec of this plugin".to_string()
                } else {
                    list.join(", ")
                };
                p.devices
                    .push(format!("CUDA device {ordinal} \"{name}\": {what}"));
                for c in codecs {
                    if !p.codecs.contains(&c) {
                        p.codecs.push(c);
                    }
                }
            }
            Err(e) => p.devices.push(format!("CUDA device {ordinal}: {e}")),
        }
    }
    p.codecs.sort_by_key(|c| ALL.iter().position(|x| x == c));
    p
}

/// The codecs of this plugin, in registration order.
const ALL: [Codec; 3] = [Codec::H264, Codec::Hevc, Codec::Av1];

/// The name of device `ordinal` and the codecs of [`ALL`] its NVENC lists.
fn device_codecs(ordinal: i32) -> Result<(String, Vec<Codec>), NvEncError> {
    let dev = cuda::Device::new(ordinal)?;
    let name = dev.name().unwrap_or_else(|_| "unknown".into());
    let ctx = Arc::new(cuda::Context::new(&dev)?);
    let session = Session::open(ctx)?;
    let guids = session.encode_guids()?;
    Ok((
        name,
        ALL.into_iter()
            .filter(|c| guids.contains(&c.guid()))
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_what_it_lists() {
        let p = Probe {
            codecs: vec![Codec::Hevc],
            ..Default::default()
        };
        assert!(p.encodes(Codec::Hevc));
        assert!(!p.encodes(Codec::Av1));
        assert!(!Probe::default().encodes(Codec::H264));
    }
}
