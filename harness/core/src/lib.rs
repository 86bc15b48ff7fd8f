//! Core types of DeepRetrieval Bench: queries, rankings, runs and qrels; TREC and BEIR file
//! formats; and retrieval metrics with trec_eval's exact semantics.
//!
//! This crate has no heavy dependencies (no libtorch, no ONNX Runtime, no polars) so that its
//! tests build and run in seconds on any machine.
#![warn(missing_docs)]

pub mod answer;
pub mod answers;
pub mod drcompat;
pub mod error;
pub mod io;
pub mod measures;
pub mod rewards;
pub mod score_file;
pub mod significance;
pub mod trec_eval;
pub mod types;

pub use error::{CoreError, Result};
pub use measures::{EvalOptions, Measure, MeasureKind};
pub use types::{Qrels, Query, Run, ScoredDoc};
