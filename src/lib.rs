// SPDX-License-Identifier: MPL-2.0
#![allow(clippy::non_send_fields_in_send_ty, unused_doc_comments)]

//! rsnvenc: NVIDIA NVENC hardware video encoders for GStreamer.

use gst::glib;

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

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    encoder::mark_plugin_api();
    nvencav1::register(plugin)?;
    nvench26x::register(plugin)?;
    Ok(())
}

gst::plugin_define!(
    rsnvenc,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MPL",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
