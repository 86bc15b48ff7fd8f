//! The runtime workspace: where cards, tables, data, caches, run outputs and models live. A
//! binary finds it at run time (never through paths compiled in), so a copied or installed
//! `harness` works against any checkout.
use std::path::{Path, PathBuf};

use harness_datasets::Registry;

/// The file that marks a checkout's root.
pub const MARKER: &str = "harness-workspace.toml";

/// Why no workspace could be opened.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// Nothing named a root and no marker was found upwards.
    #[error("no DeepRetrieval Bench checkout found from {} upwards (no {MARKER}): set HARNESS_ROOT=<checkout> or pass --root <checkout>", .from.display())]
    NotFound { from: PathBuf },
    /// The named root is not a checkout.
    #[error("{} (from {origin}) is not a DeepRetrieval Bench checkout: it has no {MARKER}", .root.display())]
    NotACheckout { root: PathBuf, origin: String },
    /// The cards could not be read.
    #[error(transparent)]
    Cards(#[from] harness_datasets::DatasetError),
}

/// How to find the workspace and which of its folders are overridden (the CLI fills this from
/// `--root` and the `HARNESS_*` environment variables).
#[derive(Debug, Clone, Default)]
pub struct WorkspaceSettings {
    /// An explicit root and what named it (`--root`, `HARNESS_ROOT`).
    pub root: Option<(PathBuf, String)>,
    /// Where to start searching upwards when no root is named.
    pub search_from: PathBuf,
    /// Index and embedding cache (default `<root>/.cache`).
    pub cache: Option<PathBuf>,
    /// Dataset files (default `<root>/datasets/data`).
    pub data: Option<PathBuf>,
    /// Model folders (default `<root>/.deps/models`).
    pub models: Option<PathBuf>,
    /// A folder of extra or overriding dataset cards.
    pub extra_cards: Option<PathBuf>,
    /// The ONNX Runtime library (default: the setup's copy under `<root>/.deps`).
    pub onnxruntime: Option<PathBuf>,
}

/// A located workspace.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub root: PathBuf,
    /// Card folders read after the built-in cards (the checkout's, then extra ones).
    pub cards: Vec<PathBuf>,
    /// `reproduce` specs (`results/tables`).
    pub tables: PathBuf,
    /// Committed references and `regress.toml` (`results/reference`).
    pub reference: PathBuf,
    pub data: PathBuf,
    pub cache: PathBuf,
    /// Default parent of run folders (`results/runs`).
    pub runs: PathBuf,
    pub models: PathBuf,
    /// The ONNX Runtime library dense encoders load.
    pub onnxruntime: PathBuf,
}

impl Workspace {
    /// Opens the named root, or the first folder from `search_from` upwards holding [`MARKER`].
    pub fn locate(settings: &WorkspaceSettings) -> Result<Workspace, WorkspaceError> {
        let root = match &settings.root {
            Some((root, origin)) => {
                if !root.join(MARKER).is_file() {
                    return Err(WorkspaceError::NotACheckout { root: root.clone(), origin: origin.clone() });
                }
                root.clone()
            }
            None => settings
                .search_from
                .ancestors()
                .find(|dir| dir.join(MARKER).is_file())
                .map(Path::to_path_buf)
                .ok_or_else(|| WorkspaceError::NotFound { from: settings.search_from.clone() })?,
        };
        let mut cards = vec![root.join("datasets").join("cards")];
        cards.extend(settings.extra_cards.clone());
        Ok(Workspace {
            cards,
            tables: root.join("results").join("tables"),
            reference: root.join("results").join("reference"),
            data: settings.data.clone().unwrap_or_else(|| root.join("datasets").join("data")),
            cache: settings.cache.clone().unwrap_or_else(|| root.join(".cache")),
            runs: root.join("results").join("runs"),
            models: settings.models.clone().unwrap_or_else(|| root.join(".deps").join("models")),
            onnxruntime: settings
                .onnxruntime
                .clone()
                .unwrap_or_else(|| root.join(".deps").join(harness_retrieval::dense::encoder::SETUP_ORT_LIBRARY)),
            root,
        })
    }

    /// The dataset registry: built-in cards, then the workspace's card folders.
    pub fn registry(&self) -> Result<Registry, WorkspaceError> {
        Ok(Registry::with_cards(self.data.clone(), &self.cards)?)
    }

    /// The setup's policy model (SmolLM2-135M-Instruct), what `llm:default` names.
    pub fn default_policy(&self) -> PathBuf {
        self.models.join("smollm2-135m-instruct")
    }

    /// The setup's dense encoder (all-MiniLM-L6-v2 int8), what `dense` and `minilm` name.
    pub fn default_encoder(&self) -> PathBuf {
        self.models.join("all-minilm-l6-v2-int8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_marker_upwards_and_names_both_ways_in_when_it_cannot() {
        let tmp = tempfile::tempdir().unwrap();
        let deep = tmp.path().join("a/b/c");
        std::fs::create_dir_all(&deep).unwrap();
        let settings = WorkspaceSettings { search_from: deep.clone(), ..Default::default() };
        let err = Workspace::locate(&settings).unwrap_err().to_string();
        assert!(err.contains("HARNESS_ROOT") && err.contains("--root") && !err.contains('\n'), "{err}");
        std::fs::write(tmp.path().join("a").join(MARKER), "").unwrap();
        let ws = Workspace::locate(&settings).unwrap();
        assert_eq!(ws.root, tmp.path().join("a"));
        assert_eq!(ws.tables, tmp.path().join("a/results/tables"));
        let named = WorkspaceSettings { root: Some((deep, "HARNESS_ROOT".into())), ..Default::default() };
        let err = Workspace::locate(&named).unwrap_err().to_string();
        assert!(err.contains("HARNESS_ROOT") && err.contains(MARKER), "{err}");
    }
}
