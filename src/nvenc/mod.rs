// SPDX-License-Identifier: MPL-2.0
//! The NVENC API layer and the base element shared by all codec elements.

pub mod api;
pub mod base;
pub mod colour;
pub mod ffi;
pub mod gstffi;
pub mod metadata;
pub mod sdkext;
pub mod settings;
