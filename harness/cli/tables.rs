//! `harness tables`: stacks the tables of several runs, of any task families, into one wide
//! table (empty where a run lacks a measure) and one long table (one value per row).
use std::path::PathBuf;

use anyhow::{Context, Result};

#[derive(clap::Args)]
pub struct TablesArgs {
    /// Run folders (each with table.csv), in the order of the rows wanted.
    #[arg(long = "run", required = true)]
    runs: Vec<PathBuf>,
    /// Folder for table.{csv,parquet,md} (wide) and long.{csv,parquet,md}.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: TablesArgs) -> Result<()> {
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
    Ok(())
}
