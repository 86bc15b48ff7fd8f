//! `harness tables`: stacks the tables of several runs, of any task families, into one wide
//! table (empty where a run lacks a measure), one long table (one value per row), and, when the
//! runs span several task families, one wide table per family with that family's columns only.
use std::path::PathBuf;

use anyhow::{Context, Result};

#[derive(clap::Args)]
pub struct TablesArgs {
    /// Run folders (each with table.csv), in the order of the rows wanted.
    #[arg(long = "run", required = true)]
    runs: Vec<PathBuf>,
    /// Folder for table.{csv,parquet,md} (wide), long.{csv,parquet,md} and table.FAMILY.* (wide,
    /// per task family).
    #[arg(long)]
    out: PathBuf,
}

/// The task family of a run's dataset (its meta.json's `dataset`), from the dataset's card;
/// `other` for a run without one or a dataset no card of this checkout names.
fn family_of(run: &std::path::Path, registry: Option<&harness_datasets::Registry>) -> String {
    let meta: Option<serde_json::Value> = std::fs::read_to_string(run.join("meta.json")).ok().and_then(|t| serde_json::from_str(&t).ok());
    let dataset = meta.as_ref().and_then(|m| m["dataset"].as_str()).unwrap_or_default();
    registry.and_then(|r| r.get(dataset).ok()).map_or_else(|| "other".to_string(), |card| card.family.name().to_string())
}

pub fn run(args: TablesArgs, root: Option<PathBuf>) -> Result<()> {
    let paths: Vec<PathBuf> = args.runs.iter().map(|r| r.join("table.csv")).collect();
    for p in &paths {
        anyhow::ensure!(p.is_file(), "{} is missing (is it a run folder?)", p.display());
    }
    let table = harness_report::stack_tables(&paths).context("stacking tables")?;
    let long = harness_report::long_format(&table)?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    harness_report::write_all_formats(&table, &args.out, "table")?;
    harness_report::write_all_formats(&long, &args.out, "long")?;
    println!("{}", harness_report::display(&table));
    println!("long format ({} values): {}", long.height(), args.out.join("long.csv").display());

    // Outside a checkout there are no cards: every run is `other` and no family view is written.
    let registry = crate::workspace(root).and_then(|w| Ok(w.registry()?)).ok();
    let families: Vec<String> = args.runs.iter().map(|r| family_of(r, registry.as_ref())).collect();
    let mut distinct: Vec<&String> = families.iter().collect();
    distinct.sort();
    distinct.dedup();
    if distinct.len() > 1 {
        for family in distinct {
            let own: Vec<PathBuf> = paths.iter().zip(&families).filter(|(_, f)| *f == family).map(|(p, _)| p.clone()).collect();
            let view = harness_report::stack_tables(&own)?;
            harness_report::write_all_formats(&view, &args.out, &format!("table.{family}"))?;
            println!("{family} ({} runs): {}", own.len(), args.out.join(format!("table.{family}.csv")).display());
        }
    }
    Ok(())
}
