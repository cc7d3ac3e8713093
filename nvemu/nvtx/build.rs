//! Gives the cdylib the real library's SONAME (`libnvToolsExt.so.1`).
fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libnvToolsExt.so.1");
}
