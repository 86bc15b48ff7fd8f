//! `harness reproduce --table N`: runs a table spec in harness-bench and prints it.
use std::path::PathBuf;

use anyhow::Result;
use harness_bench::reproduce::{reproduce, spec_path};

use crate::progress::Bars;

#[derive(clap::Args)]
pub struct ReproduceArgs {
    /// Table number (results/tables/table<N>.toml).
    #[arg(long, default_value_t = 1)]
    table: u32,
    /// Spec file to use instead of results/tables/table<N>.toml.
    #[arg(long)]
    spec: Option<PathBuf>,
    /// Output folder (default: results/runs/<run-id>).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: ReproduceArgs, root: Option<PathBuf>) -> Result<()> {
    let bars = Bars::new(false);
    let bench = crate::bench(root, &bars)?;
    let path = args.spec.clone().unwrap_or_else(|| spec_path(&bench, args.table));
    let r = reproduce(&bench, &path, args.out.as_deref())?;
    println!("Table {}: {}", r.table, r.title);
    println!("{}", harness_report::display(&r.shown()?));
    println!("paper = {}", r.paper_source);
    if !r.not_run.is_empty() {
        println!("Not run here:");
        for n in &r.not_run {
            let list: Vec<String> = n.rows.iter().map(|(system, columns)| format!("{system} [{}]", columns.join(", "))).collect();
            println!("  {}: {}", list.join("; "), n.reason);
        }
    }
    println!("Ours:");
    for c in &r.ours {
        let value = c.value.map(|v| format!("{v:.2}")).unwrap_or_else(|| "—".into());
        println!("  {value}  {} [{}]: {}", c.metric, c.source, c.note);
    }
    match &r.cost {
        Some(Ok(cost)) => {
            println!("Cost (build from scratch and query wall-clock, seconds; ratios to BM25):");
            println!("{}", harness_report::display(cost));
        }
        Some(Err(why)) => println!("Cost: not run: {why}"),
        None => {}
    }
    println!("written to {} (table.*, side_by_side.*, chart.svg)", r.out.display());
    Ok(())
}
