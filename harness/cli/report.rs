//! `harness report`: writes the results page (docs/RESULTS.md and docs/results/index.html)
//! from committed files.
use std::path::PathBuf;

use anyhow::Result;
use harness_bench::report::{report, ReportJob};

use crate::progress::Bars;

#[derive(clap::Args)]
pub struct ReportArgs {
    /// The Markdown page (default: docs/RESULTS.md in the workspace).
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// The HTML page; its charts are written beside it (default: docs/results/index.html).
    #[arg(long)]
    html: Option<PathBuf>,
}

pub fn run(args: ReportArgs, root: Option<PathBuf>) -> Result<()> {
    let bars = Bars::new(true);
    let bench = crate::bench(root, &bars)?;
    let defaults = ReportJob::in_workspace(&bench);
    let job = ReportJob { markdown: args.markdown.unwrap_or(defaults.markdown), html: args.html.unwrap_or(defaults.html) };
    let outcome = report(&bench, &job)?;
    println!(
        "{} tables and {} charts written to {} and {}",
        outcome.tables,
        outcome.figures,
        outcome.markdown.display(),
        outcome.html.display()
    );
    Ok(())
}
