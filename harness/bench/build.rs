// Same link setup as harness-policy: an rpath to libtorch for this crate's tests.
include!("../policy/build.rs");
