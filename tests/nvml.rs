//! Builds and runs the unit tests of `src/nvml` (the NVML loader) until the plugin uses it
//! (issue 13: placement); then the module is part of the library and this file goes.
#[path = "../src/nvml/mod.rs"]
#[allow(dead_code)]
mod nvml;
