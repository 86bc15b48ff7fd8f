// tch's own rpath does not reach dependents: give this package's binaries and tests one, so they
// find libtorch with no LD_LIBRARY_PATH (reference/deps.md §1.4). TCH_LINK_CUDA=1 on GPU machines
// keeps libtorch.so (and with it libtorch_cuda) linked despite --as-needed.
// Included by the build script of every package that links libtorch.
fn link_libtorch() {
    if let Some(lib) = std::env::var_os("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.to_string_lossy());
    }
    println!("cargo:rerun-if-env-changed=TCH_LINK_CUDA");
    if std::env::var_os("TCH_LINK_CUDA").is_some() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch");
        // libtorch_cuda's own CUDA libraries (cudart, cublas, cudnn: separate PyPI wheels)
        // need not be present where the binary is built (scripts/gpu/build.sh); they resolve
        // on the GPU machine.
        println!("cargo:rustc-link-arg=-Wl,--allow-shlib-undefined");
    }
}
