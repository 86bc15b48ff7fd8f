// The rpath to libtorch (libtorch_link.rs), and csrc/mkl_packed.cpp compiled against the
// libtorch that torch-sys found (its `links = "tch"` metadata gives the library folder; headers
// sit beside it) with torch-sys's flags.
use std::path::PathBuf;

include!("libtorch_link.rs");

fn main() {
    link_libtorch();
    println!("cargo:rerun-if-changed=csrc/mkl_packed.cpp");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let lib = PathBuf::from(std::env::var("DEP_TCH_LIBTORCH_LIB").expect("torch-sys did not report its libtorch folder"));
    let root = lib.parent().expect("libtorch lib folder has a parent").to_path_buf();
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".to_string());
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(root.join("include"))
        .include(root.join("include/torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .file("csrc/mkl_packed.cpp")
        .compile("harness_mkl_packed");
}
