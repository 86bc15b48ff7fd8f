//! What every piece of work is handed: the workspace and its cards, what to record about the
//! command, how to show progress.
use std::collections::BTreeSet;

use crate::progress::Progress;
use crate::workspace::{Workspace, WorkspaceError};

/// What the caller records about the command that asked for the work.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    /// The command line (meta.json's `command`).
    pub command: Vec<String>,
    /// Names of the environment variables that are set (values are never passed): a table cell
    /// that needs one (`requires_env`) says so when it is missing.
    pub configured: BTreeSet<String>,
    /// Thread settings read from the environment (`OMP_NUM_THREADS`, `RAYON_NUM_THREADS`, ...)
    /// with their values: counts only, never secrets; recorded in meta.json.
    pub thread_variables: std::collections::BTreeMap<String, String>,
    /// `--overwrite`: an output folder that exists is cleared and reused instead of refused.
    pub overwrite: bool,
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
