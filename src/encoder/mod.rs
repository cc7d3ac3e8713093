// SPDX-License-Identifier: MPL-2.0
//! `GstRsNvEncoder`, the abstract base element of every rsnvenc encoder, and its policy.

pub mod colour;
pub mod gstffi;
pub mod imp;
pub mod metadata;
pub mod sdkext;
pub mod settings;
