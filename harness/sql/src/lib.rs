//! SQL database search: sandboxed SQLite execution of model-written SQL, and execution accuracy
//! in DeepRetrieval's mode (`dr`, set equality) and the official Spider evaluator's mode
//! (`test-suite`, bag equality with column permutations and gold-driven ordering).
//!
//! Invariants: a database file is never written (read-only, immutable open plus an authorizer);
//! every statement ends within its time limit; a failing prediction is a verdict, never an error;
//! a failing gold query or a missing database is reported and never scored.
pub mod accuracy;
pub mod compare;
pub mod data;
pub mod hardness;
pub mod preprocess;
pub mod sandbox;
pub mod value;

use std::path::{Path, PathBuf};

pub use accuracy::{evaluate, summarize, ExItem, ExMode, ExOptions, ExResult, Judge, LevelSummary, Verdict};
pub use data::{database_path, render_schema, SqlQuestion};
pub use sandbox::{ExecFailure, ExecLimits, ExecOutcome, ResultSet, Sandbox, TextDecoding};
pub use value::Value;

/// Spider's hardness levels in the official report's order.
pub const SPIDER_LEVELS: &[&str] = &["easy", "medium", "hard", "extra"];
/// BIRD's difficulty levels.
pub const BIRD_LEVELS: &[&str] = &["simple", "moderate", "challenging"];

/// Errors of the SQL side (a failing *prediction* is a verdict, not one of these).
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error("{path}: {cause}", path = .path.display())]
    Io { path: PathBuf, cause: std::io::Error },
    #[error("{path}:{line}: {cause}", path = .path.display())]
    Format { path: PathBuf, line: usize, cause: String },
    #[error("database {path}: {cause}", path = .path.display())]
    Database { path: PathBuf, cause: String },
    #[error("{0}")]
    Config(String),
}

impl SqlError {
    pub(crate) fn io(path: &Path, cause: std::io::Error) -> SqlError {
        SqlError::Io { path: path.to_path_buf(), cause }
    }
}
