//! `harness cost`: BM25 vs exact dense vs HNSW build and query wall-clock (harness-bench).
use std::path::PathBuf;

use anyhow::Result;
use harness_bench::cost::{run as cost, CostJob};

use crate::progress::Bars;

#[derive(clap::Args)]
pub struct CostArgs {
    /// Dataset (BEIR format).
    #[arg(long)]
    dataset: String,
    /// Split (default: the card's).
    #[arg(long)]
    split: Option<String>,
    /// Dense model folder or `minilm`.
    #[arg(long, default_value = "minilm")]
    model: String,
    /// Search threads (1 gives single-thread query timings).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Output folder (default: results/runs/<run-id>).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: CostArgs, root: Option<PathBuf>) -> Result<()> {
    let bars = Bars::new(false);
    let bench = crate::bench(root, &bars)?;
    let job = CostJob { dataset: args.dataset, split: args.split, model: args.model, threads: args.threads, out: args.out };
    let outcome = cost(&bench, &job)?;
    println!("{} {}: {} queries, {} documents", job.dataset, outcome.split, outcome.queries, outcome.documents);
    println!("{}", harness_report::display(&outcome.table));
    println!("written to {}", outcome.out.display());
    Ok(())
}
