//! `harness regress`: reruns the reference cells in harness-bench; exit 1 on a regression.
use std::path::PathBuf;

use anyhow::{bail, Result};
use harness_bench::regress::{regress, RegressJob};

use crate::progress::Bars;

#[derive(clap::Args)]
pub struct RegressArgs {
    /// Checks to run (default: results/reference/regress.toml).
    #[arg(long)]
    spec: Option<PathBuf>,
    /// Folder of the reference tables (default: the spec's folder).
    #[arg(long)]
    reference_dir: Option<PathBuf>,
    /// Write this run's values as the new references instead of comparing.
    #[arg(long)]
    update: bool,
    /// Only the checks whose name contains this text.
    #[arg(long)]
    only: Option<String>,
    /// Output folder (default: results/runs/<run-id>).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: RegressArgs, root: Option<PathBuf>) -> Result<()> {
    let bars = Bars::new(false);
    let bench = crate::bench(root, &bars)?;
    let job = RegressJob { spec: args.spec, reference_dir: args.reference_dir, update: args.update, only: args.only, out: args.out };
    let report = regress(&bench, &job)?;
    println!("{}", harness_report::display(&report.table));
    if report.failed > 0 {
        bail!("{} of {} comparisons regressed (details in {})", report.failed, report.compared, report.out.join("regress.md").display());
    }
    if job.update {
        println!("{} reference tables rewritten; review the diff before committing", report.compared);
    } else {
        println!("{} comparisons within tolerance; written to {}", report.compared, report.out.display());
    }
    Ok(())
}
