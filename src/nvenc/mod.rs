// SPDX-License-Identifier: MPL-2.0
//! The NVENC API layer shared by all codec elements.

pub mod ffi;
pub mod api;
