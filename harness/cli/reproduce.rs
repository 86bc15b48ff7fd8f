//! `harness reproduce --table N`: the paper's numbers beside every cell this build can run.
//!
//! A table is a TOML spec in results/tables/tableN.toml: the paper's rows (with their source)
//! and the cells to run. Every paper cell we cannot run says why. Output, in long format
//! (one value per row): printed, and written as table.{csv,parquet,md} under
//! results/runs/<run-id>/ with the run folders of the measured cells beside it.
use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::eval::{self, EvalArgs};
use crate::paths;

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    table: u32,
    title: String,
    metric: String,
    paper_source: String,
    columns: Vec<String>,
    #[serde(default)]
    row: Vec<PaperRow>,
    #[serde(default)]
    cell: Vec<Cell>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PaperRow {
    model: String,
    method_kind: String,
    paper: BTreeMap<String, f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Cell {
    label: String,
    dataset: String,
    split: String,
    method: String,
    k1: f32,
    b: f32,
    fields: String,
    measure: String,
    #[serde(default)]
    reference: Option<f64>,
    #[serde(default)]
    reference_source: Option<String>,
}

/// Why a paper cell cannot run in this build.
fn not_run_reason(kind: &str) -> String {
    let engine = "a literature engine (the live PubMed / ClinicalTrials.gov APIs need a network; \
                  the offline review corpus comes with the literature issue)";
    match kind {
        "original" => format!("needs {engine}"),
        "api" => format!("needs an OpenAI-compatible endpoint (api: method, policy issue) and {engine}"),
        "llm" => format!("needs the local-LLM method (policy issue) with this model's weights and {engine}"),
        "checkpoint" => format!("needs a trained DeepRetrieval policy (training issue) and {engine}"),
        _ => "external system; not re-run here".to_string(),
    }
}

/// One line of the long-format reproduction table.
struct LongRow {
    section: String,
    dataset: String,
    system: String,
    metric: String,
    value: Option<f64>,
    source: String,
    note: String,
}

fn frame(rows: &[LongRow]) -> Result<polars::prelude::DataFrame> {
    use polars::prelude::*;
    let s = |f: &dyn Fn(&LongRow) -> String| rows.iter().map(f).collect::<Vec<_>>();
    Ok(DataFrame::new_infer_height(vec![
        Column::new("section".into(), s(&|r| r.section.clone())),
        Column::new("dataset".into(), s(&|r| r.dataset.clone())),
        Column::new("system".into(), s(&|r| r.system.clone())),
        Column::new("metric".into(), s(&|r| r.metric.clone())),
        Column::new("value".into(), rows.iter().map(|r| r.value).collect::<Vec<_>>()),
        Column::new("source".into(), s(&|r| r.source.clone())),
        Column::new("note".into(), s(&|r| r.note.clone())),
    ])?)
}

pub fn run(args: ReproduceArgs) -> Result<()> {
    let spec_path = args
        .spec
        .clone()
        .unwrap_or_else(|| paths::repo_root().join("results").join("tables").join(format!("table{}.toml", args.table)));
    let text = std::fs::read_to_string(&spec_path)
        .with_context(|| format!("no spec for table {} at {}", args.table, spec_path.display()))?;
    let spec: Spec = toml::from_str(&text).with_context(|| format!("{}", spec_path.display()))?;

    let run_id = paths::new_run_id(&format!("table{}", spec.table));
    let out = args.out.clone().unwrap_or_else(|| paths::runs_dir().join(&run_id));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;

    let mut rows = Vec::new();
    for r in &spec.row {
        for col in &spec.columns {
            rows.push(LongRow {
                section: "paper table".into(),
                dataset: col.clone(),
                system: r.model.clone(),
                metric: spec.metric.clone(),
                value: r.paper.get(col).copied(),
                source: "paper".into(),
                note: format!("ours: not run — {}", not_run_reason(&r.method_kind)),
            });
        }
    }
    for cell in &spec.cell {
        let eval_args = EvalArgs {
            bm25_k1: Some(cell.k1),
            bm25_b: Some(cell.b),
            fields: cell.fields.clone(),
            measures: vec![cell.measure.clone()],
            out: Some(out.join("cells").join(format!("{}-{}-{}-{}-{}", cell.dataset, cell.method, cell.k1, cell.b, cell.fields))),
            ..EvalArgs::cell(&cell.dataset, &cell.split, "bm25", &cell.method)
        };
        let system = format!("{} / bm25(k1={},b={},{})", eval_args.method, cell.k1, cell.b, cell.fields);
        let (value, source, note) = match eval::run(eval_args) {
            Ok(outcome) => {
                let v = outcome.row.metrics.first().map(|(_, v)| *v);
                let reference = match (cell.reference, v) {
                    (Some(r), Some(v)) => format!(
                        "; reference {r:.4} ({}), difference {:+.4}",
                        cell.reference_source.as_deref().unwrap_or("no source given"),
                        v - r
                    ),
                    _ => String::new(),
                };
                (
                    v,
                    format!("measured (run {})", outcome.row.run_id),
                    format!("{}; {} queries in {:.3}s{reference}; files: {}", cell.label, outcome.row.num_queries, outcome.row.wall_seconds, outcome.run_dir.display()),
                )
            }
            Err(e) => (None, "not run".into(), format!("{}: {e:#}", cell.label)),
        };
        rows.push(LongRow {
            section: "runnable cells".into(),
            dataset: format!("{}/{}", cell.dataset, cell.split),
            system,
            metric: cell.measure.clone(),
            value,
            source,
            note,
        });
    }

    let df = frame(&rows)?;
    harness_report::write_all_formats(&df, &out, "table")?;
    println!("Table {}: {}", spec.table, spec.title);
    let shown = df.select(["section", "dataset", "system", "metric", "value", "source"])?;
    println!("{}", harness_report::display(&shown));
    println!("paper = {}", spec.paper_source);
    println!("Notes:");
    let mut said: Vec<(&str, &str)> = Vec::new();
    for r in &rows {
        // Paper rows carry the same note for every column; say it once per system.
        if said.contains(&(r.system.as_str(), r.note.as_str())) {
            continue;
        }
        said.push((r.system.as_str(), r.note.as_str()));
        if r.section == "paper table" {
            println!("  {} ({}): {}", r.system, spec.columns.join(", "), r.note);
        } else {
            println!("  {} / {}: {}", r.dataset, r.system, r.note);
        }
    }
    println!("written to {}", out.display());
    Ok(())
}
