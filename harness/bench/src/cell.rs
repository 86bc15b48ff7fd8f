//! Running cells: one spec to one measured table row, dispatched on the card's loader; several
//! methods as rows of one table.
use std::path::PathBuf;

use anyhow::{bail, Result};
use harness_datasets::LoaderKind;
use harness_report::ResultRow;
use harness_core::significance::{compare_scores, ComparisonRow, TestSettings};
use polars::prelude::{Column, DataFrame};

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
    /// Each method against the baseline (`original` when run, else the first method) on every
    /// per-query measure: the columns of `compare.csv`. None when fewer than two cells have
    /// per-query scores.
    pub significance: Option<DataFrame>,
}

/// Runs `spec` once per method; cells go to `<out>/<n>-<method>/`, the joint table to
/// `<out>/table.*`.
pub fn run_methods(bench: &Bench, spec: &CellSpec, methods: &[String]) -> Result<MethodsOutcome> {
    let dir = RunDir::create(&bench.workspace.runs, &format!("{}-{}-methods", spec.dataset, spec.retriever), spec.out.as_deref(), bench.invocation.overwrite)?;
    let mut cells = Vec::new();
    for (i, method) in methods.iter().enumerate() {
        let cell = CellSpec { method: method.clone(), out: Some(dir.path.join(format!("{i}-{}", safe_name(method)))), ..spec.clone() };
        cells.push(run_cell(bench, &cell)?);
    }
    let rows: Vec<ResultRow> = cells.iter().map(|c| c.row.clone()).collect();
    let table = harness_report::results_frame(&rows)?;
    harness_report::write_all_formats(&table, &dir.path, "table")?;
    let baseline = methods.iter().position(|m| m == "original").unwrap_or(0);
    let significance = significance_frame(&cells, baseline, &TestSettings::default())?;
    if let Some(frame) = &significance {
        harness_report::write_all_formats(frame, &dir.path, "significance")?;
    }
    Ok(MethodsOutcome { table, out: dir.path, cells, significance })
}

/// Paired tests of every cell against cell `baseline` on each per-query measure they share,
/// Holm-adjusted across the methods per measure (see `harness_core::significance`).
pub fn significance_frame(cells: &[CellOutcome], baseline: usize, settings: &TestSettings) -> Result<Option<DataFrame>> {
    let Some(base) = cells.get(baseline).and_then(|c| c.scores.as_ref()) else { return Ok(None) };
    let others: Vec<&CellOutcome> = cells
        .iter()
        .enumerate()
        .filter(|&(i, c)| i != baseline && c.scores.as_ref().is_some_and(|s| s.queries == base.queries))
        .map(|(_, c)| c)
        .collect();
    if others.is_empty() {
        return Ok(None);
    }
    let mut rows = Vec::new();
    for (measure, base_values) in &base.measures {
        let mut runs = vec![(cells[baseline].row.method.clone(), base_values.clone())];
        for cell in &others {
            let scores = cell.scores.as_ref().expect("filtered on scores");
            if let Some((_, values)) = scores.measures.iter().find(|(m, _)| m == measure) {
                runs.push((cell.row.method.clone(), values.clone()));
            }
        }
        rows.extend(compare_scores(measure, runs, settings));
    }
    let text = |f: fn(&ComparisonRow) -> &str| -> Vec<String> { rows.iter().map(|r| f(r).to_string()).collect() };
    let num = |f: fn(&ComparisonRow) -> f64| -> Vec<f64> { rows.iter().map(f).collect() };
    let frame = DataFrame::new_infer_height(vec![
        Column::new("measure".into(), text(|r| &r.measure)),
        Column::new("baseline".into(), text(|r| &r.baseline)),
        Column::new("run".into(), text(|r| &r.run)),
        Column::new("queries".into(), rows.iter().map(|r| r.result.queries as u64).collect::<Vec<_>>()),
        Column::new("mean_baseline".into(), num(|r| r.result.mean_baseline)),
        Column::new("mean_run".into(), num(|r| r.result.mean_run)),
        Column::new("mean_diff".into(), num(|r| r.result.mean_diff)),
        Column::new("ci_low".into(), num(|r| r.result.ci_low)),
        Column::new("ci_high".into(), num(|r| r.result.ci_high)),
        Column::new("p_ttest".into(), num(|r| r.result.p_ttest)),
        Column::new("p_randomization".into(), num(|r| r.result.p_randomization)),
        Column::new("p_holm".into(), num(|r| r.p_holm)),
    ])?;
    Ok(Some(frame))
}
