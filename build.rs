//! Build script: plugin version info for `plugin_define!`, and the NVENC ABI facts
//! (`crates/nvenc-abi/tables/`, copies of `shared/nvenc-abi/`) rendered as Rust constants that
//! `src/nvenc/ffi.rs` proves its declarations against at compile time.

fn main() {
    gst_plugin_version_helper::info();

    let dir = nvenc_abi::tables_dir();
    println!("cargo:rerun-if-changed={}", dir.display());
    let sdks = match nvenc_abi::load_all(&dir) {
        Ok(s) => s,
        Err(e) => {
            println!("cargo:warning=cannot read the NVENC ABI tables: {e}");
            std::process::exit(1);
        }
    };
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR set by cargo"));
    if let Err(e) = std::fs::write(out.join("nvenc_abi.rs"), nvenc_abi::render_rust(&sdks)) {
        println!("cargo:warning=cannot write nvenc_abi.rs: {e}");
        std::process::exit(1);
    }
}
