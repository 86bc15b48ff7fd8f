//! `harness-bench`: the orchestration library of DeepRetrieval Bench. It turns a [`CellSpec`]
//! into a measured table row (dispatching on the dataset card's loader to a task family),
//! runs `reproduce` tables and `regress` checks and returns them as DataFrames, and runs the
//! training environments and loop. The `harness` binary is a thin layer over it: clap structs
//! become specs, results are printed there.
//!
//! Boundaries: no clap, no printing, no argv or environment reads here. The caller passes the
//! [`Workspace`] (where files live), an [`Invocation`] (what to record about the command) and a
//! [`Progress`] (how to show long work). Task facts (prompt family, engine, targets, reward)
//! come from the cards; nothing here branches on a dataset's name.
pub mod cell;
pub mod cost;
pub mod families;
pub mod methods;
pub mod progress;
pub mod regress;
pub mod reproduce;
pub mod retrieve;
pub mod run_dir;
pub mod spec;
pub mod sql_exec;
pub mod train;
pub mod workspace;

use std::collections::BTreeSet;

pub use cell::{run_cell, run_methods, CellOutcome, MethodsOutcome};
pub use progress::{Bar, Progress, Silent};
pub use run_dir::RunDir;
pub use spec::CellSpec;
pub use workspace::{Workspace, WorkspaceError, WorkspaceSettings};

/// What the caller records about the command that asked for the work.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    /// The command line (meta.json's `command`).
    pub command: Vec<String>,
    /// Names of the environment variables that are set (values are never passed): a table cell
    /// that needs one (`requires_env`) says so when it is missing.
    pub configured: BTreeSet<String>,
}

/// Everything a piece of work needs: where files are, the dataset cards, what to record, how
/// to show progress.
pub struct Bench<'a> {
    pub workspace: Workspace,
    pub registry: harness_datasets::Registry,
    pub invocation: Invocation,
    pub progress: &'a dyn Progress,
}

impl<'a> Bench<'a> {
    /// The workspace with its cards read.
    pub fn new(workspace: Workspace, invocation: Invocation, progress: &'a dyn Progress) -> Result<Bench<'a>, WorkspaceError> {
        let registry = workspace.registry()?;
        Ok(Bench { workspace, registry, invocation, progress })
    }
}
