//! Renders the NVENC ABI tables (field offsets of every struct for SDK 12.0 .. 13.0) into
//! `$OUT_DIR/abi.rs`, which `src/abi.rs` includes.
fn main() {
    let dir = nvenc_abi::tables_dir();
    println!("cargo:rerun-if-changed={}", dir.display());
    println!("cargo:rerun-if-changed=build.rs");
    let sdks = nvenc_abi::load_all(&dir).expect("NVENC ABI tables");
    let src = nvenc_abi::render_rust(&sdks);
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("abi.rs");
    std::fs::write(out, src).expect("write abi.rs");
}
