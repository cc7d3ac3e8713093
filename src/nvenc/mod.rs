// SPDX-License-Identifier: MPL-2.0
//! The NVENC API layer.

pub mod api;
pub mod ffi;
pub mod formats;
pub mod probe;
