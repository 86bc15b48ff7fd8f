// Same link setup as harness-policy: an rpath to libtorch for this package's tests.
include!("../harness/policy/libtorch_link.rs");

fn main() {
    link_libtorch();
}
