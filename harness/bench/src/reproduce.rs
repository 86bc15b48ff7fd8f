//! `reproduce --table N`: the paper's numbers beside every cell this build can run.
//!
//! A table is a TOML spec (`results/tables/tableN.toml`): the paper's rows (with their source)
//! and the cells to run. Every paper cell we cannot run says why. Outputs, in long format (one
//! value per row): `table.*`, `side_by_side.*` (paper and ours per column) and `chart.svg`, with
//! the run folders of the measured cells beside them.
use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use polars::prelude::DataFrame;
use serde::Deserialize;

use crate::run_dir::safe_name;
use crate::spec::reject_unknown;
use crate::cell::run_cell;
use crate::context::{Bench, Invocation};
use crate::run_dir::RunDir;
use crate::spec::CellSpec;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    table: u32,
    title: String,
    metric: String,
    paper_source: String,
    /// How sure the paper's numbers are (docs/paper-notes.md §1): `exact` or `secondary`;
    /// rows read off a figure say `approximate = true`.
    #[serde(default)]
    grade: String,
    columns: Vec<String>,
    /// Why the paper's own setting cannot run here (data, engines), said with every paper row.
    #[serde(default)]
    not_run_context: String,
    #[serde(default)]
    row: Vec<PaperRow>,
    #[serde(default)]
    cell: Vec<Cell>,
    /// A wall-clock comparison of retrievers run with the table (`harness cost`).
    #[serde(default)]
    cost: Option<CostSection>,
}

/// `[cost]`: build and query wall-clock of BM25, exact dense and HNSW on one dataset, from
/// scratch, beside the paper's own timing comparison (its numbers, labelled as its).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CostSection {
    dataset: String,
    #[serde(default)]
    split: Option<String>,
    /// Dense model folder or `minilm`.
    #[serde(default = "minilm")]
    model: String,
    /// Search threads.
    #[serde(default = "one_thread")]
    threads: usize,
    /// The paper's figures: name (`bm25_s`, `dense_s`, `dense_vs_bm25`) to value.
    #[serde(default)]
    paper: BTreeMap<String, f64>,
    /// What the paper's figures were measured on, and how sure they are.
    #[serde(default)]
    paper_note: String,
}

fn minilm() -> String {
    "minilm".into()
}

fn one_thread() -> usize {
    1
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
    /// Read off a figure: drawn pale and hatched, labelled approximate in the tables.
    #[serde(default)]
    approximate: bool,
    /// This row's grade when not the table's.
    #[serde(default)]
    grade: Option<String>,
    /// Who published the numbers when not the paper (a field anchor such as Pyserini's BM25
    /// in the paper's setting): the source then names them instead of the paper.
    #[serde(default)]
    published_by: Option<String>,
}

/// A measured cell of a table: what it shows and where, plus the eval settings (a flattened
/// [`CellSpec`]).
#[derive(Deserialize)]
struct Cell {
    label: String,
    /// The measure shown (also the cell's only measure unless `measures` is given).
    measure: String,
    /// Factor from the measure to the table's unit (100 for percentages).
    #[serde(default = "one")]
    scale: f64,
    /// The paper row and column this cell stands beside (same task, our setting).
    #[serde(default)]
    paper_row: Option<String>,
    #[serde(default)]
    paper_column: Option<String>,
    /// An environment variable the cell needs (an API endpoint); without it the cell says so.
    #[serde(default)]
    requires_env: Option<String>,
    #[serde(default)]
    reference: Option<f64>,
    #[serde(default)]
    reference_source: Option<String>,
    /// The label of an earlier cell of the table to test this one against, query by query on
    /// `measure` (mean difference, bootstrap interval, t-test, randomization test; Holm across
    /// the cells sharing that baseline).
    #[serde(default)]
    baseline: Option<String>,
    #[serde(flatten)]
    spec: CellSpec,
    #[serde(flatten)]
    unknown: BTreeMap<String, toml::Value>,
}

fn one() -> f64 {
    1.0
}

/// Why a paper cell is not re-run here, by what it needs. `context` is the table's own reason
/// (the paper's data and engines).
fn not_run_reason(kind: &str, context: &str, invocation: &Invocation) -> String {
    let what = match kind {
        "original" => "needs the paper's setting".to_string(),
        "api" => format!(
            "needs an OpenAI-compatible endpoint ({}) for `--method api:MODEL`; {}",
            harness_baselines::api::BASE_URL_ENV,
            if invocation.configured.contains(harness_baselines::api::BASE_URL_ENV) { "one is configured, but the paper's setting is also needed" } else { "none is configured here" }
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
    /// A paper value read off a figure.
    approximate: bool,
    /// A measured cell's wall-clock seconds (generation + retrieval + scoring).
    wall_s: Option<f64>,
    /// Against the cell's baseline, in the table's unit: mean difference and its 95 % interval,
    /// randomization p-value and its Holm adjustment.
    versus: Option<Versus>,
}

#[derive(Clone)]
struct Versus {
    baseline: String,
    mean_diff: f64,
    ci_low: f64,
    ci_high: f64,
    p_ttest: f64,
    p_randomization: f64,
    p_holm: f64,
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
        Column::new("approximate".into(), rows.iter().map(|r| r.approximate).collect::<Vec<_>>()),
        Column::new("wall_s".into(), rows.iter().map(|r| r.wall_s).collect::<Vec<_>>()),
        Column::new("baseline".into(), rows.iter().map(|r| r.versus.as_ref().map(|v| v.baseline.clone())).collect::<Vec<_>>()),
        Column::new("mean_diff".into(), rows.iter().map(|r| r.versus.as_ref().map(|v| v.mean_diff)).collect::<Vec<_>>()),
        Column::new("ci_low".into(), rows.iter().map(|r| r.versus.as_ref().map(|v| v.ci_low)).collect::<Vec<_>>()),
        Column::new("ci_high".into(), rows.iter().map(|r| r.versus.as_ref().map(|v| v.ci_high)).collect::<Vec<_>>()),
        Column::new("p_ttest".into(), rows.iter().map(|r| r.versus.as_ref().map(|v| v.p_ttest)).collect::<Vec<_>>()),
        Column::new("p_randomization".into(), rows.iter().map(|r| r.versus.as_ref().map(|v| v.p_randomization)).collect::<Vec<_>>()),
        Column::new("p_holm".into(), rows.iter().map(|r| r.versus.as_ref().map(|v| v.p_holm)).collect::<Vec<_>>()),
        Column::new("note".into(), s(&|r| r.note.clone())),
    ])?)
}

/// Paper rows (and their columns) that one reason holds for.
pub struct NotRun {
    pub reason: String,
    /// (paper row, its columns).
    pub rows: Vec<(String, Vec<String>)>,
}

/// One of our cells as the table shows it.
pub struct OurCell {
    pub value: Option<f64>,
    pub metric: String,
    /// `measured (run ID)` or `not run`.
    pub source: String,
    pub note: String,
}

/// A reproduced table.
pub struct Reproduction {
    /// The `[cost]` comparison when the table has one (retriever, build_s, query_s, ratios,
    /// the measure), or why it did not run.
    pub cost: Option<Result<DataFrame, String>>,
    pub table: u32,
    pub title: String,
    pub paper_source: String,
    /// Long format: section, dataset, system, metric, value, source, note.
    pub long: DataFrame,
    /// One line per paper row with paper and ours per column, then our other cells.
    pub side_by_side: DataFrame,
    pub not_run: Vec<NotRun>,
    pub ours: Vec<OurCell>,
    pub out: PathBuf,
}

impl Reproduction {
    /// The side-by-side table without its notes and without columns nothing fills (for showing;
    /// the notes are in `not_run` and `ours`).
    pub fn shown(&self) -> Result<DataFrame> {
        let mut shown = self.side_by_side.drop("note")?;
        let empty: Vec<String> = shown.columns().iter().filter(|c| c.null_count() == c.len()).map(|c| c.name().to_string()).collect();
        for name in empty {
            shown = shown.drop(&name)?;
        }
        Ok(shown)
    }
}

/// A table spec as `harness report` shows it without running anything: the paper's rows and
/// the cells `reproduce` would run.
pub struct PaperTable {
    pub table: u32,
    pub title: String,
    pub metric: String,
    pub paper_source: String,
    pub columns: Vec<String>,
    /// (row name, value per column, source, grade: exact, secondary or figure).
    pub rows: Vec<(String, Vec<Option<f64>>, String, String)>,
    /// (label, dataset, measure, the `harness eval` command).
    pub cells: Vec<(String, String, String, String)>,
    /// The paper's values as bars (pale where read off a figure).
    pub chart_svg: String,
}

/// Reads the table spec at `path`.
pub fn paper_table(path: &std::path::Path) -> Result<PaperTable> {
    let text = std::fs::read_to_string(path).with_context(|| format!("no table spec at {}", path.display()))?;
    let spec: Spec = toml::from_str(&text).with_context(|| format!("{}", path.display()))?;
    let mut long = Vec::new();
    let rows = spec
        .row
        .iter()
        .map(|r| {
            for col in &spec.columns {
                long.push(LongRow {
                    section: "paper".into(),
                    dataset: col.clone(),
                    system: r.model.clone(),
                    metric: spec.metric.clone(),
                    value: r.paper.get(col).copied(),
                    source: String::new(),
                    note: String::new(),
                    approximate: r.approximate,
                    wall_s: None,
                    versus: None,
                });
            }
            let values = spec.columns.iter().map(|c| r.paper.get(c).copied()).collect();
            let grade = if r.approximate { "figure".to_string() } else { r.grade.clone().unwrap_or_else(|| if spec.grade.is_empty() { "not stated".into() } else { spec.grade.clone() }) };
            let source = r.source.clone().unwrap_or_else(|| spec.paper_source.clone());
            let source = match &r.published_by {
                Some(by) => format!("{by}: {source}"),
                None => source,
            };
            (r.model.clone(), values, source, grade)
        })
        .collect();
    let cells = spec
        .cell
        .iter()
        .map(|c| {
            let mut s = c.spec.clone();
            if s.measures.is_empty() {
                s.measures = vec![c.measure.clone()];
            }
            (c.label.clone(), c.spec.dataset.clone(), c.measure.clone(), s.eval_command())
        })
        .collect();
    let chart_svg = chart_svg(&spec, &long)?;
    Ok(PaperTable { table: spec.table, title: spec.title, metric: spec.metric, paper_source: spec.paper_source, columns: spec.columns, rows, cells, chart_svg })
}

/// The spec of table `n` in the workspace.
pub fn spec_path(bench: &Bench, n: u32) -> PathBuf {
    bench.workspace.tables.join(format!("table{n}.toml"))
}

/// Runs the table spec at `spec_path`; outputs go to `out` or a new run folder.
pub fn reproduce(bench: &Bench, spec_path: &std::path::Path, out: Option<&std::path::Path>) -> Result<Reproduction> {
    let text = std::fs::read_to_string(spec_path).with_context(|| format!("no table spec at {}", spec_path.display()))?;
    let spec: Spec = toml::from_str(&text).with_context(|| format!("{}", spec_path.display()))?;
    for (i, cell) in spec.cell.iter().enumerate() {
        reject_unknown(&format!("{}: cell {} ({})", spec_path.display(), i + 1, cell.label), &cell.unknown)?;
        if let Some(base) = &cell.baseline {
            match spec.cell[..i].iter().find(|c| &c.label == base) {
                None => bail!("{}: cell {} ({}): baseline '{base}' is not the label of an earlier cell", spec_path.display(), i + 1, cell.label),
                Some(b) if b.measure != cell.measure => bail!("{}: cell {} ({}): its measure {} differs from its baseline's {}", spec_path.display(), i + 1, cell.label, cell.measure, b.measure),
                Some(_) => {}
            }
        }
    }
    let dir = RunDir::create(&bench.workspace.runs, &format!("table{}", spec.table), out, bench.invocation.overwrite)?;
    let out = dir.path;

    // Measured cells first, so that paper rows can say which of them stand beside them.
    let mut measured = Vec::new();
    let mut scores: Vec<Option<crate::families::QueryScores>> = Vec::new();
    for (i, cell) in spec.cell.iter().enumerate() {
        let mut cell_spec = CellSpec {
            out: Some(out.join("cells").join(format!("{i:02}-{}", safe_name(&format!("{}-{}", cell.spec.dataset, cell.spec.method))))),
            ..cell.spec.clone()
        };
        if cell_spec.measures.is_empty() {
            cell_spec.measures = vec![cell.measure.clone()];
        }
        let missing_env = cell.requires_env.as_ref().filter(|v| !bench.invocation.configured.contains(v.as_str()));
        let result = match missing_env {
            Some(var) => Err(anyhow!("not configured: set {var} to run this cell")),
            None => run_cell(bench, &cell_spec).and_then(|outcome| {
                // The cell's measure by name (trec_eval's `ndcg_cut.10` is the column `ndcg_cut_10`);
                // a measure the cell did not produce is an error, never another number.
                if outcome.row.source != "measured" {
                    return Err(anyhow!("{} (run {})", outcome.row.source, outcome.row.run_id));
                }
                let wanted = cell.measure.replace('.', "_");
                let value = outcome.row.metrics.iter().find(|(name, _)| *name == wanted).map(|(_, v)| *v * cell.scale).ok_or_else(|| {
                    let have: Vec<&str> = outcome.row.metrics.iter().map(|(n, _)| n.as_str()).collect();
                    anyhow!("measure '{}' is not among the cell's metrics ({})", cell.measure, have.join(", "))
                })?;
                Ok((outcome, value))
            }),
        };
        scores.push(result.as_ref().ok().and_then(|(outcome, _)| outcome.scores.clone()));
        let wall_s = result.as_ref().ok().map(|(outcome, _)| outcome.row.wall_seconds);
        let (value, source, note, dataset) = match result {
            Ok((outcome, v)) => {
                let reference = match cell.reference {
                    Some(r) => format!("; reference {r:.4} ({}), difference {:+.4}", cell.reference_source.as_deref().unwrap_or("no source given"), v - r),
                    None => String::new(),
                };
                (
                    Some(v),
                    format!("measured (run {})", outcome.row.run_id),
                    format!("{}; {} queries in {:.3}s{reference}; files: {}", cell.label, outcome.row.num_queries, outcome.row.wall_seconds, outcome.run_dir.display()),
                    format!("{}/{}", outcome.row.dataset, outcome.row.split),
                )
            }
            Err(e) => (None, "not run".into(), format!("{}: {e:#}", cell.label), cell.spec.dataset.clone()),
        };
        measured.push((cell, LongRow { section: "ours".into(), dataset, system: cell.label.clone(), metric: cell.measure.clone(), value, source, note, approximate: false, wall_s, versus: None }));
    }

    compare_with_baselines(&spec, &scores, &mut measured);
    let (cost_rows, cost) = match &spec.cost {
        Some(section) => {
            let (rows, table) = run_cost(bench, section, &out);
            (rows, Some(table))
        }
        None => (Vec::new(), None),
    };

    let mut rows = Vec::new();
    for r in &spec.row {
        for col in &spec.columns {
            let beside: Vec<&LongRow> = measured
                .iter()
                .filter(|(c, _)| c.paper_row.as_deref() == Some(r.model.as_str()) && c.paper_column.as_deref() == Some(col.as_str()))
                .map(|(_, row)| row)
                .collect();
            let note = if beside.is_empty() {
                format!("ours: not run — {}", not_run_reason(&r.method_kind, &spec.not_run_context, &bench.invocation))
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
                source: format!("{} ({})", r.published_by.as_deref().unwrap_or("paper"), r.source.as_deref().unwrap_or(&spec.paper_source)),
                note,
                approximate: r.approximate,
                wall_s: None,
                versus: None,
            });
        }
    }
    let side = side_by_side(&spec, &measured, &bench.invocation)?;
    rows.extend(measured.into_iter().map(|(_, row)| row));
    rows.extend(cost_rows);

    let long = frame(&rows)?;
    harness_report::write_all_formats(&long, &out, "table")?;
    harness_report::write_all_formats(&side, &out, "side_by_side")?;
    chart(&spec, &rows, &out.join("chart.svg"))?;

    // Reasons once each, with the rows (and their columns) they hold for.
    let mut not_run: Vec<NotRun> = Vec::new();
    for r in rows.iter().filter(|r| r.section == "paper") {
        if let Some(reason) = r.note.strip_prefix("ours: not run — ") {
            let index = match not_run.iter().position(|n| n.reason == reason) {
                Some(i) => i,
                None => {
                    not_run.push(NotRun { reason: reason.to_string(), rows: Vec::new() });
                    not_run.len() - 1
                }
            };
            let who = &mut not_run[index].rows;
            match who.iter_mut().find(|(system, _)| *system == r.system) {
                Some((_, columns)) => columns.push(r.dataset.clone()),
                None => who.push((r.system.clone(), vec![r.dataset.clone()])),
            }
        }
    }
    let ours = rows
        .iter()
        .filter(|r| r.section == "ours")
        .map(|r| OurCell { value: r.value, metric: r.metric.clone(), source: r.source.clone(), note: r.note.clone() })
        .collect();
    Ok(Reproduction { cost, table: spec.table, title: spec.title, paper_source: spec.paper_source, long, side_by_side: side, not_run, ours, out })
}

/// Runs the `[cost]` section into `out/cost` and returns its rows of the long table (section
/// `cost`: ours per retriever and figure; `paper-cost`: the paper's figures) and the comparison
/// table, or why it did not run (a row that says so).
fn run_cost(bench: &Bench, section: &CostSection, out: &std::path::Path) -> (Vec<LongRow>, Result<DataFrame, String>) {
    let row = |section: &str, dataset: &str, system: &str, metric: &str, value: Option<f64>, source: &str, note: &str| LongRow {
        section: section.into(),
        dataset: dataset.into(),
        system: system.into(),
        metric: metric.into(),
        value,
        source: source.into(),
        note: note.into(),
        approximate: false,
        wall_s: None,
        versus: None,
    };
    let mut rows: Vec<LongRow> = section
        .paper
        .iter()
        .map(|(name, v)| row("paper-cost", "", name, name, Some(*v), "paper (docs/paper-notes.md §8)", &section.paper_note))
        .collect();
    let job = crate::cost::CostJob { dataset: section.dataset.clone(), split: section.split.clone(), model: section.model.clone(), threads: section.threads, out: Some(out.join("cost")) };
    match crate::cost::run(bench, &job) {
        Ok(outcome) => {
            let dataset = format!("{}/{}", section.dataset, outcome.split);
            let note = format!("{} queries over {} documents, {} search thread(s); build from scratch; files: {}", outcome.queries, outcome.documents, section.threads, outcome.out.display());
            let source = format!("measured (run {})", outcome.out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
            let names: Vec<String> = outcome.table.get_column_names().iter().map(|n| n.to_string()).collect();
            let retrievers: Vec<String> = (0..outcome.table.height())
                .map(|i| match outcome.table.column("retriever").ok().and_then(|c| c.get(i).ok()) {
                    Some(polars::prelude::AnyValue::String(s)) => s.to_string(),
                    Some(other) => other.to_string(),
                    None => String::new(),
                })
                .collect();
            for (i, retriever) in retrievers.iter().enumerate() {
                for name in names.iter().filter(|n| *n != "retriever") {
                    let value = outcome.table.column(name).ok().and_then(|c| c.get(i).ok()).and_then(|v| v.extract::<f64>());
                    rows.push(row("cost", &dataset, retriever, name, value, &source, &note));
                }
            }
            (rows, Ok(outcome.table))
        }
        Err(e) => {
            rows.push(row("cost", &section.dataset, "cost comparison", "", None, "not run", &format!("{e:#}")));
            (rows, Err(format!("{e:#}")))
        }
    }
}

/// Tests every cell that names a baseline against it on the cell's measure, per query (the
/// cells' trec_eval `-c` scores), Holm-adjusting across the cells that share a baseline; the
/// result goes into the cell's row and note. A cell or baseline that did not run, or that
/// judged other queries, says so instead.
fn compare_with_baselines(spec: &Spec, scores: &[Option<crate::families::QueryScores>], measured: &mut [(&Cell, LongRow)]) {
    let settings = harness_core::significance::TestSettings::default();
    let per_query = |i: usize, measure: &str| -> Option<(&Vec<String>, Vec<f64>)> {
        let s = scores[i].as_ref()?;
        let wanted = measure.replace('.', "_");
        s.measures.iter().find(|(m, _)| m.replace('.', "_") == wanted).map(|(_, v)| (&s.queries, v.clone()))
    };
    let mut bases: Vec<&str> = Vec::new();
    for base in spec.cell.iter().filter_map(|c| c.baseline.as_deref()) {
        if !bases.contains(&base) {
            bases.push(base);
        }
    }
    for base_label in bases {
        let Some(b) = spec.cell.iter().position(|c| c.label == base_label) else { continue };
        let members: Vec<usize> = spec.cell.iter().enumerate().filter(|(_, c)| c.baseline.as_deref() == Some(base_label)).map(|(i, _)| i).collect();
        let measure = &spec.cell[b].measure;
        let Some((base_queries, base_values)) = per_query(b, measure) else {
            for &i in &members {
                measured[i].1.note.push_str(&format!("; not tested against '{base_label}': the baseline has no per-query scores"));
            }
            continue;
        };
        let mut runs = vec![(base_label.to_string(), base_values)];
        let mut tested = Vec::new();
        for &i in &members {
            match per_query(i, measure) {
                Some((q, v)) if q == base_queries => {
                    runs.push((spec.cell[i].label.clone(), v));
                    tested.push(i);
                }
                Some(_) => measured[i].1.note.push_str(&format!("; not tested against '{base_label}': the cells judged different queries")),
                None => measured[i].1.note.push_str(&format!("; not tested against '{base_label}': no per-query scores")),
            }
        }
        let rows = harness_core::significance::compare_scores(measure, runs, &settings);
        for (i, row) in tested.into_iter().zip(rows) {
            let scale = spec.cell[i].scale;
            let r = &row.result;
            let versus = Versus {
                baseline: base_label.to_string(),
                mean_diff: r.mean_diff * scale,
                ci_low: r.ci_low * scale,
                ci_high: r.ci_high * scale,
                p_ttest: r.p_ttest,
                p_randomization: r.p_randomization,
                p_holm: row.p_holm,
            };
            measured[i].1.note.push_str(&format!(
                "; vs '{base_label}' over {} queries: {:+.2} (95% CI {:+.2} to {:+.2}), randomization p = {:.4} (Holm {:.4}), t-test p = {:.4}",
                r.queries, versus.mean_diff, versus.ci_low, versus.ci_high, versus.p_randomization, versus.p_holm, versus.p_ttest
            ));
            measured[i].1.versus = Some(versus);
        }
    }
}

/// One line per paper row: the paper's value per column and ours beside it (or why not),
/// then our cells that stand beside no paper row.
fn side_by_side(spec: &Spec, measured: &[(&Cell, LongRow)], invocation: &Invocation) -> Result<polars::prelude::DataFrame> {
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
        notes.push(if why.is_empty() { format!("not run: {}", not_run_reason(&r.method_kind, &spec.not_run_context, invocation)) } else { why.join("; ") });
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

/// Bars of every paper value and every measured value: paper in blue (pale with a blue
/// outline where read off a figure), ours in green, with a legend.
fn chart(spec: &Spec, rows: &[LongRow], path: &std::path::Path) -> Result<()> {
    let svg = chart_svg(spec, rows)?;
    harness_core::io::write_atomically(path, |w| w.write_all(svg.as_bytes()))?;
    Ok(())
}

/// [`chart`]'s SVG text.
fn chart_svg(spec: &Spec, rows: &[LongRow]) -> Result<String> {
    use plotters::prelude::*;
    #[derive(Clone, Copy, PartialEq)]
    enum Kind {
        Paper,
        PaperApproximate,
        Ours,
    }
    // The table's metric only: cost rows are seconds and ratios.
    let bars: Vec<(String, f64, Kind)> = rows
        .iter()
        .filter(|r| r.section == "ours" || r.section == "paper")
        .filter_map(|r| {
            let kind = match (r.section == "ours", r.approximate) {
                (true, _) => Kind::Ours,
                (false, true) => Kind::PaperApproximate,
                (false, false) => Kind::Paper,
            };
            r.value.map(|v| (format!("[{}] {}", r.dataset, r.system), v, kind))
        })
        .collect();
    let mut svg = String::new();
    {
        let height = 110 + 22 * bars.len().max(1) as u32;
        let root = SVGBackend::with_string(&mut svg, (1100, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let top = bars.iter().map(|b| b.1).fold(0.0f64, f64::max).max(1e-9) * 1.1;
        let n = bars.len().max(1);
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("Table {}: {}", spec.table, spec.metric), ("sans-serif", 16))
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
        let styles = [
            (Kind::Paper, "paper", BLUE.mix(0.6).filled()),
            (Kind::PaperApproximate, "paper, read off a figure (approximate)", BLUE.mix(0.15).filled()),
            (Kind::Ours, "ours, measured", GREEN.mix(0.8).filled()),
        ];
        for (kind, label, style) in styles {
            let of_kind: Vec<(usize, f64)> = bars.iter().enumerate().filter(|(_, b)| b.2 == kind).map(|(i, b)| (i, b.1)).collect();
            chart
                .draw_series(of_kind.iter().map(|&(i, v)| Rectangle::new([(0.0, SegmentValue::Exact(i)), (v, SegmentValue::Exact(i + 1))], style)))?
                .label(label)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], style));
            if kind == Kind::PaperApproximate {
                // The outline keeps a pale bar visible on white.
                chart.draw_series(of_kind.iter().map(|&(i, v)| {
                    Rectangle::new([(0.0, SegmentValue::Exact(i)), (v, SegmentValue::Exact(i + 1))], BLUE.stroke_width(1))
                }))?;
            }
        }
        chart.configure_series_labels().position(SeriesLabelPosition::LowerRight).background_style(WHITE.mix(0.9)).border_style(BLACK).draw()?;
        root.present()?;
    }
    Ok(svg)
}
