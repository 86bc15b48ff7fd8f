//! Where the harness keeps caches and run outputs.
use std::path::PathBuf;

/// The repository root (the harness package's folder).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Cache for indexes: `$HARNESS_CACHE_DIR`, else `<repo>/.cache`.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("HARNESS_CACHE_DIR").map(PathBuf::from).unwrap_or_else(|| repo_root().join(".cache"))
}

/// Default folder of run outputs: `<repo>/results/runs`.
pub fn runs_dir() -> PathBuf {
    repo_root().join("results").join("runs")
}

/// A run id: UTC time plus a label, e.g. `20261125T190501Z-scifact-test-bm25-original`.
pub fn new_run_id(label: &str) -> String {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let stamp: String = now.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    let clean: String = label.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' }).collect();
    format!("{stamp}-{clean}")
}
