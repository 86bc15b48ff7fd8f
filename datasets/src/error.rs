//! Errors of the dataset crate.
use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = DatasetError> = std::result::Result<T, E>;

/// What can go wrong while reading cards, loading data or fetching it.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// No card has this name.
    #[error("unknown dataset '{name}' (known: {known}); see `harness datasets list`")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The names that exist.
        known: String,
    },
    /// A card is malformed.
    #[error("dataset card {path}: {cause}")]
    BadCard {
        /// The card file.
        path: String,
        /// What is wrong.
        cause: String,
    },
    /// A split the card does not define.
    #[error("dataset '{dataset}' has no split '{split}' (splits: {known})")]
    UnknownSplit {
        /// The dataset.
        dataset: String,
        /// The split asked for.
        split: String,
        /// The splits that exist.
        known: String,
    },
    /// Files needed to run offline are missing.
    #[error("dataset '{dataset}' is not available offline: missing {missing}. {hint}")]
    NotOffline {
        /// The dataset.
        dataset: String,
        /// The missing files.
        missing: String,
        /// What to do.
        hint: String,
    },
    /// An input file is malformed or unreadable.
    #[error(transparent)]
    Core(#[from] harness_core::CoreError),
    /// A download failed or did not match its checksum.
    #[error("fetch {url}: {cause}")]
    Fetch {
        /// What was being downloaded.
        url: String,
        /// Why it failed.
        cause: String,
    },
    /// A local file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> DatasetError {
    let path = path.into();
    move |source| DatasetError::Io { path, source }
}
