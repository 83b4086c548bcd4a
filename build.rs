// Builds the C shim into the library. (The cbindgen header check is added
// below once the surface settles.)
fn main() {
    println!("cargo:rerun-if-changed=src/ffi/log_shim.c");
    println!("cargo:rerun-if-changed=include/xentoollog.h");
    println!("cargo:rerun-if-changed=src/ffi/xenlight.map");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libxenlight.so.4.17");
    cc::Build::new().file("src/ffi/log_shim.c").include("include").warnings(true).extra_warnings(true).compile("xl_log_shim");
}
