//! Errors of the retrieval crate.
use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = RetrievalError> = std::result::Result<T, E>;

/// What can go wrong while building, opening or searching an index.
#[derive(Debug, thiserror::Error)]
pub enum RetrievalError {
    /// tantivy failed.
    #[error("index error: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// An index directory is incomplete or inconsistent.
    #[error("index at {path} is unusable ({cause}); delete it and it will be rebuilt")]
    Corrupt {
        /// The index directory.
        path: PathBuf,
        /// What is wrong.
        cause: String,
    },
    /// Reading an input failed.
    #[error(transparent)]
    Core(#[from] harness_core::CoreError),
    /// Bad settings.
    #[error("{0}")]
    Invalid(String),
}

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> RetrievalError {
    let path = path.into();
    move |source| RetrievalError::Io { path, source }
}
