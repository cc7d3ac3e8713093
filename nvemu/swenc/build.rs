//! Builds the C shim against the system FFmpeg (libavcodec, libavutil, libswscale) and
//! libx265.

fn main() {
    println!("cargo:rerun-if-changed=csrc/swenc.c");
    println!("cargo:rerun-if-changed=csrc/swenc.h");
    let mut build = cc::Build::new();
    build
        .file("csrc/swenc.c")
        .warnings(true)
        .extra_warnings(true);
    for lib in ["libavcodec", "libavutil", "libswscale", "x265"] {
        let found = pkg_config::Config::new()
            .atleast_version(match lib {
                "libavcodec" => "59.37",
                "libavutil" => "57.28",
                "x265" => "3.5",
                _ => "6.7",
            })
            .probe(lib)
            .unwrap_or_else(|e| {
                panic!("{lib} not found with pkg-config (apt-get install libavcodec-dev libswscale-dev libx265-dev): {e}")
            });
        for inc in found.include_paths {
            build.include(inc);
        }
    }
    build.compile("nvemu_swenc_shim");
}
