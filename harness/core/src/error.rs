//! Errors of the core crate. User mistakes (a malformed line, a missing file) name the file,
//! the line and the cause.
use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = CoreError> = std::result::Result<T, E>;

/// Everything that can go wrong while reading inputs or computing metrics.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// A file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A line of an input file is malformed.
    #[error("{path}:{line}: {cause}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with the line.
        cause: String,
    },
    /// A whole file is unusable (no records where some are needed).
    #[error("{path}: {cause}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        cause: String,
    },
    /// A measure name that this crate does not know or cannot parse.
    #[error("unknown or malformed measure '{0}' (examples: ndcg_cut.10, recall.100,1000, P.5, map, recip_rank, success.1, Rprec, num_q)")]
    UnknownMeasure(String),
}

impl CoreError {
    /// Builds a parse error for `path:line`.
    pub fn parse(path: impl Into<PathBuf>, line: usize, cause: impl Into<String>) -> Self {
        CoreError::Parse { path: path.into(), line, cause: cause.into() }
    }
}
