// Same link setup as harness-policy: an rpath to libtorch for binaries, tests and benches.
include!("harness/policy/libtorch_link.rs");

fn main() {
    link_libtorch();
}
