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
    /// Why the paper's own setting cannot run here (data, engines), said with every paper row.
    #[serde(default)]
    not_run_context: String,
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
    /// Where this row's numbers come from when not the table's `paper_source`.
    #[serde(default)]
    source: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Cell {
    label: String,
    dataset: String,
    #[serde(default)]
    split: Option<String>,
    method: String,
    /// Retriever (classic IR and evidence-seeking): bm25 by default.
    #[serde(default)]
    retriever: Option<String>,
    /// Literature engine (offline, pubmed, ctgov); the dataset's own by default.
    #[serde(default)]
    engine: Option<String>,
    #[serde(default)]
    k1: Option<f32>,
    #[serde(default)]
    b: Option<f32>,
    #[serde(default)]
    fields: Option<String>,
    measure: String,
    /// Factor from the measure to the table's unit (100 for percentages).
    #[serde(default = "one")]
    scale: f64,
    /// The paper row and column this cell stands beside (same task, our setting).
    #[serde(default)]
    paper_row: Option<String>,
    #[serde(default)]
    paper_column: Option<String>,
    /// Extra `harness eval` settings for model methods.
    #[serde(default)]
    no_reasoning: bool,
    #[serde(default)]
    max_new_tokens: Option<usize>,
    /// An environment variable the cell needs (an API endpoint); without it the cell says so.
    #[serde(default)]
    requires_env: Option<String>,
    #[serde(default)]
    reference: Option<f64>,
    #[serde(default)]
    reference_source: Option<String>,
}

fn one() -> f64 {
    1.0
}

/// Why a paper cell is not re-run here, by what it needs. `context` is the table's own reason
/// (the paper's data and engines).
fn not_run_reason(kind: &str, context: &str) -> String {
    let what = match kind {
        "original" => "needs the paper's setting".to_string(),
        "api" => format!(
            "needs an OpenAI-compatible endpoint ({}) for `--method api:MODEL`; {}",
            harness_baselines::api::BASE_URL_ENV,
            if std::env::var_os(harness_baselines::api::BASE_URL_ENV).is_some() { "one is configured, but the paper's setting is also needed" } else { "none is configured here" }
        ),
        "llm" => "needs this model's weights (not shipped; `--method llm:DIR` runs any local model folder)".to_string(),
        "checkpoint" => "needs the paper's trained checkpoint (not shipped; `--method checkpoint:DIR` runs any checkpoint)".to_string(),
        _ => "an external system; not re-run here".to_string(),
    };
    if context.is_empty() { what } else { format!("{what}; {context}") }
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

    // Measured cells first, so that paper rows can say which of them stand beside them.
    let mut measured = Vec::new();
    for (i, cell) in spec.cell.iter().enumerate() {
        let split = cell.split.clone().unwrap_or_default();
        let mut eval_args = EvalArgs {
            bm25_k1: cell.k1,
            bm25_b: cell.b,
            fields: cell.fields.clone().unwrap_or_else(|| "flat".into()),
            measures: vec![cell.measure.clone()],
            engine: cell.engine.clone().unwrap_or_else(|| "auto".into()),
            no_reasoning: cell.no_reasoning,
            out: Some(out.join("cells").join(format!("{i:02}-{}", safe(&format!("{}-{}", cell.dataset, cell.method))))),
            ..EvalArgs::cell(&cell.dataset, &split, cell.retriever.as_deref().unwrap_or("bm25"), &method_of(cell))
        };
        if cell.split.is_none() {
            eval_args.split = None;
        }
        if let Some(n) = cell.max_new_tokens {
            eval_args.max_new_tokens = n;
        }
        let missing_env = cell.requires_env.as_ref().filter(|v| std::env::var_os(v.as_str()).is_none());
        let result = match missing_env {
            Some(var) => Err(anyhow::anyhow!("not configured: set {var} to run this cell")),
            None => eval::run(eval_args),
        };
        let (value, source, note, dataset) = match result {
            Ok(outcome) => {
                // The cell's measure by name (trec_eval's `ndcg_cut.10` is the column `ndcg_cut_10`).
                let wanted = cell.measure.replace('.', "_");
                let v = outcome.row.metrics.iter().find(|(name, _)| *name == wanted).or(outcome.row.metrics.first()).map(|(_, v)| *v * cell.scale);
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
                    format!("{}/{}", outcome.row.dataset, outcome.row.split),
                )
            }
            Err(e) => (None, "not run".into(), format!("{}: {e:#}", cell.label), cell.dataset.clone()),
        };
        measured.push((cell, LongRow { section: "ours".into(), dataset, system: cell.label.clone(), metric: cell.measure.clone(), value, source, note }));
    }

    let mut rows = Vec::new();
    for r in &spec.row {
        for col in &spec.columns {
            let beside: Vec<&LongRow> = measured
                .iter()
                .filter(|(c, _)| c.paper_row.as_deref() == Some(r.model.as_str()) && c.paper_column.as_deref() == Some(col.as_str()))
                .map(|(_, row)| row)
                .collect();
            let note = if beside.is_empty() {
                format!("ours: not run — {}", not_run_reason(&r.method_kind, &spec.not_run_context))
            } else if beside.iter().all(|b| b.value.is_none()) {
                format!("ours: not run — {}", beside.iter().map(|b| b.note.as_str()).collect::<Vec<_>>().join("; "))
            } else {
                format!("ours: {}", beside.iter().map(|b| b.system.as_str()).collect::<Vec<_>>().join("; "))
            };
            rows.push(LongRow {
                section: "paper".into(),
                dataset: col.clone(),
                system: r.model.clone(),
                metric: spec.metric.clone(),
                value: r.paper.get(col).copied(),
                source: format!("paper ({})", r.source.as_deref().unwrap_or(&spec.paper_source)),
                note,
            });
        }
    }
    let side = side_by_side(&spec, &measured)?;
    rows.extend(measured.into_iter().map(|(_, row)| row));

    let df = frame(&rows)?;
    harness_report::write_all_formats(&df, &out, "table")?;
    harness_report::write_all_formats(&side, &out, "side_by_side")?;
    chart(&spec, &rows, &out.join("chart.svg"))?;
    println!("Table {}: {}", spec.table, spec.title);
    // Printed without the notes (said below) and without columns nothing fills.
    let mut shown = side.drop("note")?;
    let empty: Vec<String> = shown.columns().iter().filter(|c| c.null_count() == c.len()).map(|c| c.name().to_string()).collect();
    for name in empty {
        shown = shown.drop(&name)?;
    }
    println!("{}", harness_report::display(&shown));
    println!("paper = {}", spec.paper_source);
    // Reasons once each, with the rows (and their columns) they hold for.
    let mut reasons: Vec<(String, Vec<(String, Vec<String>)>)> = Vec::new();
    for r in rows.iter().filter(|r| r.section == "paper") {
        if let Some(reason) = r.note.strip_prefix("ours: not run — ") {
            let who = match reasons.iter_mut().find(|(why, _)| why == reason) {
                Some((_, who)) => who,
                None => {
                    reasons.push((reason.to_string(), Vec::new()));
                    &mut reasons.last_mut().expect("just pushed").1
                }
            };
            match who.iter_mut().find(|(system, _)| *system == r.system) {
                Some((_, columns)) => columns.push(r.dataset.clone()),
                None => who.push((r.system.clone(), vec![r.dataset.clone()])),
            }
        }
    }
    if !reasons.is_empty() {
        println!("Not run here:");
        for (why, who) in &reasons {
            let list: Vec<String> = who.iter().map(|(system, columns)| format!("{system} [{}]", columns.join(", "))).collect();
            println!("  {}: {why}", list.join("; "));
        }
    }
    println!("Ours:");
    for r in rows.iter().filter(|r| r.section == "ours") {
        let value = r.value.map(|v| format!("{v:.2}")).unwrap_or_else(|| "—".into());
        println!("  {value}  {} [{}]: {}", r.metric, r.source, r.note);
    }
    println!("written to {} (table.*, side_by_side.*, chart.svg)", out.display());
    Ok(())
}

/// The cell's method, `llm:default` naming the setup's local model folder.
fn method_of(cell: &Cell) -> String {
    match cell.method.as_str() {
        "llm:default" => format!("llm:{}", crate::generate::default_model_dir().display()),
        other => other.to_string(),
    }
}

fn safe(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).take(60).collect()
}

/// One line per paper row: the paper's value per column and ours beside it (or why not),
/// then our cells that stand beside no paper row.
fn side_by_side(spec: &Spec, measured: &[(&Cell, LongRow)]) -> Result<polars::prelude::DataFrame> {
    use polars::prelude::*;
    let mut system = Vec::new();
    let mut values: Vec<Vec<Option<f64>>> = vec![Vec::new(); spec.columns.len() * 2];
    let mut notes = Vec::new();
    let ours_of = |row: &str, col: &str| measured.iter().find(|(c, _)| c.paper_row.as_deref() == Some(row) && c.paper_column.as_deref() == Some(col)).map(|(_, r)| r);
    for r in &spec.row {
        system.push(r.model.clone());
        let mut why = Vec::new();
        for (k, col) in spec.columns.iter().enumerate() {
            values[2 * k].push(r.paper.get(col).copied());
            match ours_of(&r.model, col) {
                Some(o) => {
                    values[2 * k + 1].push(o.value);
                    why.push(format!("{col}: ours = {}", o.system));
                }
                None => values[2 * k + 1].push(None),
            }
        }
        notes.push(if why.is_empty() { format!("not run: {}", not_run_reason(&r.method_kind, &spec.not_run_context)) } else { why.join("; ") });
    }
    for (c, o) in measured.iter().filter(|(c, _)| c.paper_row.is_none()) {
        system.push(format!("ours: {}", o.system));
        for (k, col) in spec.columns.iter().enumerate() {
            values[2 * k].push(None);
            values[2 * k + 1].push(if c.paper_column.as_deref() == Some(col.as_str()) { o.value } else { None });
        }
        notes.push(format!("{} {} [{}]", o.dataset, o.metric, o.source));
    }
    let mut columns = vec![Column::new("system".into(), system)];
    for (k, col) in spec.columns.iter().enumerate() {
        columns.push(Column::new(format!("{col} paper").into(), values[2 * k].clone()));
        columns.push(Column::new(format!("{col} ours").into(), values[2 * k + 1].clone()));
    }
    columns.push(Column::new("note".into(), notes));
    Ok(DataFrame::new_infer_height(columns)?)
}

/// Bars of every paper value and every measured value, paper in blue and ours in green.
fn chart(spec: &Spec, rows: &[LongRow], path: &std::path::Path) -> Result<()> {
    use plotters::prelude::*;
    let bars: Vec<(String, f64, bool)> = rows
        .iter()
        .filter_map(|r| r.value.map(|v| (format!("{} [{}]", r.system, r.dataset), v, r.section == "ours")))
        .collect();
    let mut svg = String::new();
    {
        let height = 80 + 22 * bars.len().max(1) as u32;
        let root = SVGBackend::with_string(&mut svg, (1100, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let top = bars.iter().map(|b| b.1).fold(0.0f64, f64::max).max(1e-9) * 1.1;
        let n = bars.len().max(1);
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("Table {}: {} (blue: paper, green: ours, measured)", spec.table, spec.metric), ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(420)
            .build_cartesian_2d(0f64..top, (0..n).into_segmented())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n)
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => bars.get(*i).map(|b| b.0.chars().take(70).collect()).unwrap_or_default(),
                SegmentValue::Last => String::new(),
            })
            .x_desc(spec.metric.as_str())
            .draw()?;
        chart.draw_series(bars.iter().enumerate().map(|(i, (_, v, ours))| {
            let color = if *ours { GREEN.mix(0.8) } else { BLUE.mix(0.6) };
            Rectangle::new([(0.0, SegmentValue::Exact(i)), (*v, SegmentValue::Exact(i + 1))], color.filled())
        }))?;
        root.present()?;
    }
    harness_core::io::write_atomically(path, |w| w.write_all(svg.as_bytes()))?;
    Ok(())
}
