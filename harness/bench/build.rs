// Same link setup as harness-policy: an rpath to libtorch for this crate's tests. Plus the
// build's provenance for every meta.json: the checkout's commit and dirty flag, the
// Cargo.lock hash and the libtorch version this build links.
include!("../policy/libtorch_link.rs");

use std::path::Path;
use std::process::Command;

fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(root).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    link_libtorch();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // Rerun when the commit, the index or any source changes, so the dirty flag describes the
    // code that was compiled.
    for path in [".git/HEAD", ".git/index", ".git/refs", "Cargo.toml", "Cargo.lock", "build.rs", "harness", "baselines", "datasets/src", "datasets/cards"] {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
    let commit = git(&root, &["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown (not built from a git checkout)".into());
    let dirty = match git(&root, &["status", "--porcelain"]) {
        Some(status) => (!status.is_empty()).to_string(),
        None => "unknown".into(),
    };
    println!("cargo:rustc-env=HARNESS_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=HARNESS_GIT_DIRTY={dirty}");

    use sha2::Digest;
    let lock = std::fs::read(root.join("Cargo.lock")).unwrap_or_default();
    let digest: String = sha2::Sha256::digest(&lock).iter().map(|b| format!("{b:02x}")).collect();
    println!("cargo:rustc-env=HARNESS_CARGO_LOCK_SHA256={digest}");
    // The tch this build resolved (the GPU build pins another one).
    let lock_text = String::from_utf8_lossy(&lock);
    let tch = lock_text
        .split("[[package]]")
        .find(|p| p.lines().any(|l| l.trim() == "name = \"tch\""))
        .and_then(|p| p.lines().find_map(|l| l.trim().strip_prefix("version = ").map(|v| v.trim_matches('"').to_string())))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=HARNESS_TCH_VERSION={tch}");

    // tch's build script exports the libtorch lib folder; a PyPI torch has version.py beside
    // it, a libtorch archive has build-version.
    let libtorch = std::env::var_os("DEP_TCH_LIBTORCH_LIB")
        .map(std::path::PathBuf::from)
        .and_then(|lib| {
            let top = lib.parent()?.to_path_buf();
            let from_py = std::fs::read_to_string(top.join("version.py")).ok().and_then(|text| {
                text.lines().find_map(|l| l.strip_prefix("__version__ = ").map(|v| v.trim_matches(|c| c == '\'' || c == '"').to_string()))
            });
            from_py.or_else(|| std::fs::read_to_string(top.join("build-version")).ok().map(|v| v.trim().to_string()))
        })
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=HARNESS_LIBTORCH_VERSION={libtorch}");
}
