// SPDX-License-Identifier: MPL-2.0
#![allow(clippy::non_send_fields_in_send_ty, unused_doc_comments)]

//! rsnvenc: NVIDIA NVENC hardware video encoders for GStreamer.

use gst::glib;

pub mod cuda;
pub mod encoder;
pub mod nvenc;
pub mod nvencav1;
pub mod nvench26x;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
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
