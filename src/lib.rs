// SPDX-License-Identifier: MPL-2.0
#![allow(clippy::non_send_fields_in_send_ty, unused_doc_comments)]

//! rsnvenc: NVIDIA NVENC hardware video encoders for GStreamer.

use gst::glib;
use gst::prelude::*;

use encoder::CAT;
use nvenc::api::Codec;

mod autoenc;
mod bits;
// Public on purpose, not as an API: `examples/nvenc_probe.rs` drives `cuda` and `nvenc::api`
// directly, and the tests check `nvench26x::avcc` (avcC records, SPS parsing) against what
// downstream parses. Everything else stays private to the plugin.
#[doc(hidden)]
pub mod cuda;
mod encoder;
#[doc(hidden)]
pub mod nvenc;
mod nvencav1;
#[doc(hidden)]
pub mod nvench26x;
// Public for `examples/nvml_probe.rs` (what NVML answers on a machine, and where automatic
// placement would put a session), not as an API.
#[doc(hidden)]
pub mod nvml;
mod nvtx;
#[doc(hidden)]
pub mod placement;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    declare_dependencies(plugin);
    encoder::mark_plugin_api();
    let rank = Ranks::new();
    nvencav1::register(plugin, rank.of(Codec::Av1))?;
    nvench26x::register(plugin, rank.of(Codec::Hevc), rank.of(Codec::H264))?;
    autoenc::register(Some(plugin))?;
    Ok(())
}

/// The rank of an element whose codec a GPU here encodes: one above the highest rank GStreamer's
/// own NVENC encoders get (nvcodec 1.22, Debian 12's, registers `nvh264enc`/`nvh265enc` at
/// PRIMARY x 2 = 512 where a GPU has NVENC; 1.24 and later register theirs at PRIMARY + 1), so
/// that autopluggers (`encodebin`, `transcodebin`, `webrtcsink`, which takes MARGINAL and up)
/// choose these where both are usable. 513, shown as "primary + 257".
fn usable_rank() -> gst::Rank {
    gst::Rank::PRIMARY + 257
}

/// Each element's rank, from the NVENC probe ([`nvenc::probe`]): [`usable_rank`] where a GPU
/// here encodes the codec, else NONE (the element is still registered, so `gst-inspect-1.0`
/// documents it, and fails at start with a message saying why).
struct Ranks(Option<nvenc::probe::Probe>);

impl Ranks {
    /// Probes, unless this load only re-registers features already in the registry: a process
    /// that loads the plugin from a cached registry keeps the rank recorded at scan time
    /// (GStreamer ignores the rank passed then), so the probe's CUDA context and NVENC session
    /// would be for nothing. The registry is rescanned, and the probe run, when a declared
    /// dependency changes ([`declare_dependencies`]).
    fn new() -> Ranks {
        let cached = gst::Registry::get()
            .lookup_feature("rsnvench265enc")
            .is_some_and(|f| f.plugin_name().as_deref() == Some("rsnvenc"));
        if cached {
            return Ranks(None);
        }
        let p = nvenc::probe::run();
        match &p.failure {
            Some(why) => gst::info!(CAT, "NVENC not usable here ({why}): rank none"),
            None => gst::info!(
                CAT,
                "NVENC probe: {}; rank {:?} for {:?}, none for the rest",
                p.devices.join("; "),
                usable_rank(),
                p.codecs
            ),
        }
        Ranks(Some(p))
    }

    fn of(&self, codec: Codec) -> gst::Rank {
        match &self.0 {
            Some(p) if p.encodes(codec) => usable_rank(),
            _ => gst::Rank::NONE,
        }
    }
}

/// Tells GStreamer what the probe depends on, so that the registry (and the ranks) are rebuilt
/// when a driver is installed, updated or removed: the driver's libraries, looked up as the
/// dynamic loader does (`LD_LIBRARY_PATH`, then the usual library directories, including
/// where container runtimes and WSL put them), the GPU device nodes `/dev/nvidia*`, and
/// `CUDA_VISIBLE_DEVICES` (which GPUs CUDA shows) and `NVEMU_GPU` (the emulator's GPU model).
fn declare_dependencies(plugin: &gst::Plugin) {
    plugin.add_dependency(
        &["LD_LIBRARY_PATH"],
        &[
            "/usr/lib/x86_64-linux-gnu",
            "/usr/lib/aarch64-linux-gnu",
            "/usr/lib64",
            "/usr/lib",
            "/usr/local/nvidia/lib64",
            "/usr/local/nvidia/lib",
            "/usr/lib/wsl/lib",
        ],
        &["libnvidia-encode.so.1", "libcuda.so.1"],
        gst::PluginDependencyFlags::empty(),
    );
    plugin.add_dependency(
        &["CUDA_VISIBLE_DEVICES", "NVEMU_GPU"],
        &["/dev"],
        &["nvidia"],
        gst::PluginDependencyFlags::FILE_NAME_IS_PREFIX,
    );
}

gst::plugin_define!(
    rsnvenc,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MPL",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    // The project has no public home yet: GStreamer's own value for a package of unknown
    // origin, not a made-up URL. Set it (and Cargo.toml's `repository`) when there is one.
    "Unknown package origin",
    env!("BUILD_REL_DATE")
);
