//! What ties a run to the code and the machine that made it: the build (commit, dirty flag,
//! Cargo.lock hash, library versions, fixed by the build script), the machine (CPU model,
//! cores, thread settings) and the exact command. Every meta.json carries it as `provenance`.
use serde_json::{json, Value};

use crate::context::Invocation;

/// The build's identity, the same for every run of this binary.
pub fn build() -> Value {
    json!({
        "git_commit": env!("HARNESS_GIT_COMMIT"),
        // "true" / "false", or "unknown" when built outside a git checkout.
        "git_dirty": match env!("HARNESS_GIT_DIRTY") { "true" => json!(true), "false" => json!(false), other => json!(other) },
        "harness_version": env!("CARGO_PKG_VERSION"),
        "cargo_lock_sha256": env!("HARNESS_CARGO_LOCK_SHA256"),
        "libtorch_version": env!("HARNESS_LIBTORCH_VERSION"),
        "tch_version": env!("HARNESS_TCH_VERSION"),
    })
}

/// The machine's CPU model ("unknown" where /proc/cpuinfo has none).
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| text.lines().find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim().to_string())))
        .unwrap_or_else(|| "unknown".into())
}

/// The whole record for a run made now under `invocation`; `onnxruntime` is the library the
/// workspace points at (its build string is added when this process loaded it).
pub fn record(invocation: &Invocation, onnxruntime: Option<&std::path::Path>) -> Value {
    json!({
        "build": build(),
        "onnxruntime": {
            "library": onnxruntime,
            "build_info": harness_retrieval::dense::encoder::onnxruntime_build_info(),
        },
        "machine": {
            "cpu_model": cpu_model(),
            "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "torch_threads": tch::get_num_threads(),
            "thread_variables": invocation.thread_variables,
        },
        "argv": invocation.command,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_record_names_a_commit_and_the_lock_hash() {
        let b = build();
        let commit = b["git_commit"].as_str().unwrap();
        assert!(commit.len() == 40 && commit.chars().all(|c| c.is_ascii_hexdigit()) || commit.starts_with("unknown"), "{commit}");
        assert_eq!(b["cargo_lock_sha256"].as_str().unwrap().len(), 64);
        assert!(b["git_dirty"].is_boolean() || b["git_dirty"] == "unknown");
        // As Cargo.lock resolved it, not a typed-in string.
        let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.lock")).unwrap();
        let tch = b["tch_version"].as_str().unwrap();
        assert!(lock.contains(&format!("name = \"tch\"\nversion = \"{tch}\"")), "{tch}");
    }
}
