//! Builds and runs the unit tests of `src/nvml` (the NVML loader) and `src/placement` until
//! the plugin uses them (issue 13: placement); then they are part of the library and this file
//! goes.
#[path = "../src/nvml/mod.rs"]
#[allow(dead_code)]
mod nvml;
#[path = "../src/placement/mod.rs"]
#[allow(dead_code)]
mod placement;
