//! Gives the cdylib the real library's SONAME, so that programs linked against
//! `target/nvemu/lib/libcuda.so` record `libcuda.so.1` as the real `libcuda.so` would make them.
fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libcuda.so.1");
}
