//! Running cells: one spec to one measured table row, dispatched on the card's loader; several
//! methods as rows of one table.
use std::path::PathBuf;

use anyhow::{bail, Result};
use harness_datasets::LoaderKind;
use harness_report::ResultRow;
use polars::prelude::DataFrame;

use crate::context::Bench;
use crate::families::{self, CellOutcome};
use crate::run_dir::{safe_name, RunDir};
use crate::spec::CellSpec;

/// Runs one cell on its task family and writes its run folder.
pub fn run_cell(bench: &Bench, spec: &CellSpec) -> Result<CellOutcome> {
    if spec.dataset.is_empty() {
        bail!("a cell needs a dataset");
    }
    let card = bench.registry.get(&spec.dataset)?.clone();
    match card.loader {
        LoaderKind::Beir => families::beir::run(bench, spec, &card),
        LoaderKind::Review => families::literature::run(bench, spec, &card),
        LoaderKind::OpenQa => families::open_qa::run(bench, spec, &card),
        LoaderKind::Spider | LoaderKind::Bird => families::sql::run(bench, spec, &card),
    }
}

/// Several methods of one spec, each its own cell, plus their rows as one table.
pub struct MethodsOutcome {
    pub table: DataFrame,
    pub out: PathBuf,
    pub cells: Vec<CellOutcome>,
}

/// Runs `spec` once per method; cells go to `<out>/<n>-<method>/`, the joint table to
/// `<out>/table.*`.
pub fn run_methods(bench: &Bench, spec: &CellSpec, methods: &[String]) -> Result<MethodsOutcome> {
    let dir = RunDir::create(&bench.workspace.runs, &format!("{}-{}-methods", spec.dataset, spec.retriever), spec.out.as_deref())?;
    let mut cells = Vec::new();
    for (i, method) in methods.iter().enumerate() {
        let cell = CellSpec { method: method.clone(), out: Some(dir.path.join(format!("{i}-{}", safe_name(method)))), ..spec.clone() };
        cells.push(run_cell(bench, &cell)?);
    }
    let rows: Vec<ResultRow> = cells.iter().map(|c| c.row.clone()).collect();
    let table = harness_report::results_frame(&rows)?;
    harness_report::write_all_formats(&table, &dir.path, "table")?;
    Ok(MethodsOutcome { table, out: dir.path, cells })
}
