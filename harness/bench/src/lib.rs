//! `harness-bench`: the orchestration library of DeepRetrieval Bench. It turns a [`CellSpec`]
//! into a measured table row (dispatching on the dataset card's loader to a task family),
//! runs `reproduce` tables and `regress` checks and returns them as DataFrames, and runs the
//! training environments and loop. The `harness` binary is a thin layer over it: clap structs
//! become specs, results are printed there.
//!
//! Boundaries: no clap, no printing, no argv or environment reads here. The caller passes the
//! [`Workspace`] (where files live), an [`Invocation`] (what to record about the command) and a
//! [`Progress`] (how to show long work). Task facts (prompt family, engine, targets, reward)
//! come from the cards; nothing here branches on a dataset's name. Modules import each other by
//! path, never through the re-exports below, and the module graph has no cycle: `cell`
//! dispatches to `families`, which never import `cell`.
pub mod cell;
pub mod context;
pub mod cost;
pub mod families;
pub mod methods;
pub mod progress;
pub mod report;
pub mod provenance;
pub mod regress;
pub mod reproduce;
pub mod retrieve;
pub mod run_dir;
pub mod spec;
pub mod sql_exec;
pub mod train;
pub mod workspace;

pub use cell::{run_cell, run_methods, MethodsOutcome};
pub use context::{Bench, Invocation};
pub use families::CellOutcome;
pub use progress::{Bar, Progress, Silent};
pub use run_dir::RunDir;
pub use spec::CellSpec;
pub use workspace::{Workspace, WorkspaceError, WorkspaceSettings};

