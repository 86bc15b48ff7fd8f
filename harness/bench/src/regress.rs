//! `regress`: reruns the fast reference cells (`results/reference/regress.toml`) and compares
//! every metric with the committed reference table under a per-metric tolerance; or, with
//! `update`, rewrites the references from this run.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use polars::prelude::*;
use serde::Deserialize;

use crate::spec::reject_unknown;
use crate::cell::run_cell;
use crate::context::Bench;
use crate::run_dir::RunDir;
use crate::spec::CellSpec;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    /// Absolute tolerance per metric column (`default` for the rest).
    tolerance: BTreeMap<String, f64>,
    check: Vec<Check>,
}

/// One check: a cell (flattened [`CellSpec`]) or a `sql-eval` job, and its one-row reference
/// table.
#[derive(Deserialize)]
struct Check {
    name: String,
    /// Reference table (a one-row results CSV) relative to the reference folder.
    reference: String,
    /// A `sql-eval` job instead of a cell.
    #[serde(default)]
    sql_eval: Option<SqlEvalCheck>,
    /// Tolerances of this check's metrics, over the file's `[tolerance]`.
    #[serde(default)]
    tolerance: BTreeMap<String, f64>,
    /// What the reference agrees with outside this project, with its source (shown by
    /// `harness report`; the comparison itself is the test's or the peer script's).
    #[serde(default)]
    anchor: Option<String>,
    #[serde(flatten)]
    spec: CellSpec,
    #[serde(flatten)]
    unknown: BTreeMap<String, toml::Value>,
}

/// `harness sql-eval` on files of the workspace (paths relative to its root): the verdict
/// counts and the accuracy become the check's metrics.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlEvalCheck {
    gold: PathBuf,
    pred: PathBuf,
    db_dir: PathBuf,
    /// `dr` or `test-suite`.
    mode: String,
}

impl SqlEvalCheck {
    /// Runs the job into `out` and writes its one-row `table.csv` there.
    fn run(&self, bench: &Bench, name: &str, out: &Path) -> Result<PathBuf> {
        let root = &bench.workspace.root;
        let mode: harness_sql::ExMode = self.mode.parse().map_err(|e: String| anyhow::anyhow!("check {name}: {e}"))?;
        let job = crate::sql_exec::SqlEvalJob {
            gold: root.join(&self.gold),
            pred: root.join(&self.pred),
            db_dir: root.join(&self.db_dir),
            mode,
            levels: None,
            questions: None,
            exec: crate::sql_exec::ExecSettings {
                timeout_secs: crate::spec::defaults::SQL_TIMEOUT_SECS,
                max_rows: crate::sql_exec::MAX_ROWS,
                keep_distinct: false,
                paper_timeout_as_empty: false,
                threads: 0,
            },
            out: out.to_path_buf(),
        };
        let outcome = crate::sql_exec::run_sql_eval(&job, &bench.invocation, bench.progress)?;
        let all = outcome.summary.last().context("sql-eval gave no summary")?;
        let row = harness_report::ResultRow {
            dataset: self.gold.display().to_string(),
            split: String::new(),
            retriever: "sqlite".into(),
            method: format!("sql-eval:{}", mode.name()),
            metrics: vec![
                ("scored".into(), all.scored as f64),
                ("correct".into(), all.correct as f64),
                ("not_runnable".into(), all.not_runnable as f64),
                ("gold_failed".into(), all.gold_failed as f64),
                ("execution_accuracy".into(), all.accuracy()),
            ],
            num_queries: outcome.questions,
            wall_seconds: outcome.seconds,
            source: "measured".into(),
            run_id: name.into(),
        };
        let table = harness_report::results_frame(&[row])?;
        harness_report::write_all_formats(&table, out, "table")?;
        Ok(out.join("table.csv"))
    }
}

/// Where the meta.json of a reference table's run is kept: `<table stem>.meta.json` beside it.
pub fn meta_path(reference: &Path) -> PathBuf {
    reference.with_extension("meta.json")
}

/// Columns of a results table that are not metrics (timings vary run to run).
pub(crate) const NOT_METRICS: [&str; 8] = ["dataset", "split", "retriever", "method", "wall_s", "queries_per_s", "source", "run_id"];

/// Metric columns and values of a one-row results table.
fn metrics_of(csv: &Path) -> Result<Vec<(String, f64)>> {
    let df = harness_report::read_csv(csv).with_context(|| format!("reading {}", csv.display()))?;
    if df.height() != 1 {
        bail!("{}: expected one row, found {}", csv.display(), df.height());
    }
    let mut out = Vec::new();
    for column in df.columns() {
        let name = column.name().to_string();
        if NOT_METRICS.contains(&name.as_str()) {
            continue;
        }
        let value = column.cast(&DataType::Float64).ok().and_then(|c| c.f64().ok().and_then(|v| v.get(0)));
        match value {
            Some(v) => out.push((name, v)),
            None => bail!("{}: column {name} is not a number", csv.display()),
        }
    }
    Ok(out)
}

/// What to run and compare.
#[derive(Debug, Clone, Default)]
pub struct RegressJob {
    /// The checks file (default: `<reference>/regress.toml`).
    pub spec: Option<PathBuf>,
    /// Folder of the reference tables (default: the checks file's folder).
    pub reference_dir: Option<PathBuf>,
    /// Write this run's values as the new references instead of comparing.
    pub update: bool,
    /// Only the checks whose name contains this text.
    pub only: Option<String>,
    pub out: Option<PathBuf>,
}

/// The comparison: one line per (check, metric).
pub struct RegressReport {
    /// check, metric, reference, measured, tolerance, status.
    pub table: DataFrame,
    pub compared: usize,
    pub failed: usize,
    pub out: PathBuf,
}

struct Line {
    check: String,
    metric: String,
    reference: Option<f64>,
    measured: Option<f64>,
    tolerance: f64,
    status: String,
}

impl Line {
    fn whole(check: &str, metric: &str, status: String) -> Line {
        Line { check: check.into(), metric: metric.into(), reference: None, measured: None, tolerance: 0.0, status }
    }
}

/// A check of a checks file as `harness report` lists it.
pub struct CheckInfo {
    pub name: String,
    /// The reference table (absolute).
    pub reference: PathBuf,
    /// The command that reruns the cell alone.
    pub command: String,
    /// The outside value the reference agrees with, with its source.
    pub anchor: Option<String>,
}

/// The checks of `spec_path`, references resolved against its folder.
pub fn read_checks(spec_path: &Path) -> Result<Vec<CheckInfo>> {
    let text = std::fs::read_to_string(spec_path).with_context(|| format!("reading {}", spec_path.display()))?;
    let spec: Spec = toml::from_str(&text).with_context(|| format!("{}", spec_path.display()))?;
    let dir = spec_path.parent().map(Path::to_path_buf).unwrap_or_default();
    Ok(spec
        .check
        .into_iter()
        .map(|c| {
            let command = match &c.sql_eval {
                Some(j) => format!("harness sql-eval --mode {} --gold {} --pred {} --db-dir {}", j.mode, j.gold.display(), j.pred.display(), j.db_dir.display()),
                None => c.spec.eval_command(),
            };
            CheckInfo { name: c.name, reference: dir.join(c.reference), command, anchor: c.anchor }
        })
        .collect())
}

pub fn regress(bench: &Bench, job: &RegressJob) -> Result<RegressReport> {
    let spec_path = job.spec.clone().unwrap_or_else(|| bench.workspace.reference.join("regress.toml"));
    let text = std::fs::read_to_string(&spec_path).with_context(|| format!("reading {}", spec_path.display()))?;
    let spec: Spec = toml::from_str(&text).with_context(|| format!("{}", spec_path.display()))?;
    for check in &spec.check {
        reject_unknown(&format!("{}: check {}", spec_path.display(), check.name), &check.unknown)?;
    }
    let reference_dir = job.reference_dir.clone().unwrap_or_else(|| spec_path.parent().map(Path::to_path_buf).unwrap_or_default());
    let default_tolerance = *spec.tolerance.get("default").context("regress.toml: [tolerance] needs a `default`")?;
    let dir = RunDir::create(&bench.workspace.runs, "regress", job.out.as_deref(), bench.invocation.overwrite)?;

    let mut lines = Vec::new();
    for check in spec.check.iter().filter(|c| job.only.as_ref().is_none_or(|o| c.name.contains(o.as_str()))) {
        let out = dir.path.join(&check.name);
        let reference_path = reference_dir.join(&check.reference);
        let measured = match &check.sql_eval {
            Some(job) => job.run(bench, &check.name, &out),
            None => run_cell(bench, &CellSpec { out: Some(out.clone()), ..check.spec.clone() }).map(|o| o.run_dir.join("table.csv")),
        };
        let measured_csv = match measured {
            Ok(path) => path,
            Err(e) => {
                lines.push(Line::whole(&check.name, "(run)", format!("FAILED to run: {e:#}")));
                continue;
            }
        };
        if job.update {
            let body = std::fs::read(&measured_csv).with_context(|| format!("reading {}", measured_csv.display()))?;
            harness_core::io::write_atomically(&reference_path, |w| w.write_all(&body))?;
            // The run's meta.json beside the reference: the commit, command and machine that
            // made it (`harness report` shows them).
            let meta = measured_csv.with_file_name("meta.json");
            let body = std::fs::read(&meta).with_context(|| format!("reading {}", meta.display()))?;
            harness_core::io::write_atomically(&meta_path(&reference_path), |w| w.write_all(&body))?;
            lines.push(Line::whole(&check.name, "(all)", format!("updated {}", reference_path.display())));
            continue;
        }
        if !reference_path.is_file() {
            let why = format!("FAILED: no reference table {} (write it with `harness regress --update`)", reference_path.display());
            lines.push(Line::whole(&check.name, "(reference)", why));
            continue;
        }
        let measured: BTreeMap<String, f64> = metrics_of(&measured_csv)?.into_iter().collect();
        for (metric, want) in metrics_of(&reference_path)? {
            let tolerance = check.tolerance.get(&metric).or_else(|| spec.tolerance.get(&metric)).copied().unwrap_or(default_tolerance);
            let got = measured.get(&metric).copied();
            let status = match got {
                None => "FAILED: not measured".to_string(),
                Some(v) if (v - want).abs() <= tolerance => "ok".to_string(),
                Some(v) => format!("FAILED: off by {:+.6}", v - want),
            };
            lines.push(Line { check: check.name.clone(), metric, reference: Some(want), measured: got, tolerance, status });
        }
    }
    if lines.is_empty() {
        bail!("no checks selected");
    }

    let table = DataFrame::new_infer_height(vec![
        Column::new("check".into(), lines.iter().map(|l| l.check.clone()).collect::<Vec<_>>()),
        Column::new("metric".into(), lines.iter().map(|l| l.metric.clone()).collect::<Vec<_>>()),
        Column::new("reference".into(), lines.iter().map(|l| l.reference).collect::<Vec<_>>()),
        Column::new("measured".into(), lines.iter().map(|l| l.measured).collect::<Vec<_>>()),
        Column::new("tolerance".into(), lines.iter().map(|l| l.tolerance).collect::<Vec<_>>()),
        Column::new("status".into(), lines.iter().map(|l| l.status.clone()).collect::<Vec<_>>()),
    ])?;
    harness_report::write_all_formats(&table, &dir.path, "regress")?;
    let failed = lines.iter().filter(|l| l.status.starts_with("FAILED")).count();
    Ok(RegressReport { table, compared: lines.len(), failed, out: dir.path })
}

