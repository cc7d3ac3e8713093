//! Gives the cdylib the real library's SONAME (`libnvidia-ml.so.1`).
fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libnvidia-ml.so.1");
}
