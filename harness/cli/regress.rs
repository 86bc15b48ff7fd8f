//! `harness regress`: reruns the fast reference cells (results/reference/regress.toml) and
//! compares every metric with the committed reference table under a per-metric tolerance.
//! Exits non-zero on any regression; `--update` rewrites the references from this run.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::eval::{self, EvalArgs};
use crate::paths;

#[derive(clap::Args)]
pub struct RegressArgs {
    /// Checks to run (default: results/reference/regress.toml).
    #[arg(long)]
    spec: Option<PathBuf>,
    /// Folder of the reference tables (default: the spec's folder).
    #[arg(long)]
    reference_dir: Option<PathBuf>,
    /// Write this run's values as the new references instead of comparing.
    #[arg(long)]
    update: bool,
    /// Only the checks whose name contains this text.
    #[arg(long)]
    only: Option<String>,
    /// Output folder (default: results/runs/<run-id>).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    /// Absolute tolerance per metric column (`default` for the rest).
    tolerance: BTreeMap<String, f64>,
    check: Vec<Check>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Check {
    name: String,
    /// Reference table (a one-row results CSV) relative to the reference folder.
    reference: String,
    dataset: String,
    #[serde(default)]
    split: Option<String>,
    #[serde(default = "bm25")]
    retriever: String,
    method: String,
    #[serde(default)]
    engine: Option<String>,
    #[serde(default)]
    k1: Option<f32>,
    #[serde(default)]
    b: Option<f32>,
    #[serde(default)]
    fields: Option<String>,
    #[serde(default)]
    measures: Vec<String>,
}

fn bm25() -> String {
    "bm25".into()
}

/// Columns of a results table that are not metrics (timings vary run to run).
const NOT_METRICS: [&str; 8] = ["dataset", "split", "retriever", "method", "wall_s", "queries_per_s", "source", "run_id"];

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
        let value = column.cast(&polars::prelude::DataType::Float64).ok().and_then(|c| c.f64().ok().and_then(|v| v.get(0)));
        match value {
            Some(v) => out.push((name, v)),
            None => bail!("{}: column {name} is not a number", csv.display()),
        }
    }
    Ok(out)
}

struct Line {
    check: String,
    metric: String,
    reference: Option<f64>,
    measured: Option<f64>,
    tolerance: f64,
    status: String,
}

pub fn run(args: RegressArgs) -> Result<()> {
    let spec_path = args.spec.clone().unwrap_or_else(|| paths::repo_root().join("results").join("reference").join("regress.toml"));
    let text = std::fs::read_to_string(&spec_path).with_context(|| format!("reading {}", spec_path.display()))?;
    let spec: Spec = toml::from_str(&text).with_context(|| format!("{}", spec_path.display()))?;
    let reference_dir = args.reference_dir.clone().unwrap_or_else(|| spec_path.parent().map(Path::to_path_buf).unwrap_or_default());
    let default_tolerance = *spec.tolerance.get("default").context("regress.toml: [tolerance] needs a `default`")?;
    let run_id = paths::new_run_id("regress");
    let out = args.out.clone().unwrap_or_else(|| paths::runs_dir().join(&run_id));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;

    let mut lines = Vec::new();
    for check in spec.check.iter().filter(|c| args.only.as_ref().is_none_or(|o| c.name.contains(o.as_str()))) {
        let mut eval_args = EvalArgs {
            bm25_k1: check.k1,
            bm25_b: check.b,
            fields: check.fields.clone().unwrap_or_else(|| "flat".into()),
            measures: check.measures.clone(),
            engine: check.engine.clone().unwrap_or_else(|| "auto".into()),
            out: Some(out.join(&check.name)),
            ..EvalArgs::cell(&check.dataset, check.split.as_deref().unwrap_or_default(), &check.retriever, &check.method)
        };
        if check.split.is_none() {
            eval_args.split = None;
        }
        let reference_path = reference_dir.join(&check.reference);
        let outcome = match eval::run(eval_args) {
            Ok(o) => o,
            Err(e) => {
                lines.push(Line { check: check.name.clone(), metric: "(run)".into(), reference: None, measured: None, tolerance: 0.0, status: format!("FAILED to run: {e:#}") });
                continue;
            }
        };
        let measured_csv = outcome.run_dir.join("table.csv");
        if args.update {
            let body = std::fs::read(&measured_csv).with_context(|| format!("reading {}", measured_csv.display()))?;
            harness_core::io::write_atomically(&reference_path, |w| w.write_all(&body))?;
            lines.push(Line { check: check.name.clone(), metric: "(all)".into(), reference: None, measured: None, tolerance: 0.0, status: format!("updated {}", reference_path.display()) });
            continue;
        }
        if !reference_path.is_file() {
            lines.push(Line {
                check: check.name.clone(),
                metric: "(reference)".into(),
                reference: None,
                measured: None,
                tolerance: 0.0,
                status: format!("FAILED: no reference table {} (write it with `harness regress --update`)", reference_path.display()),
            });
            continue;
        }
        let reference = metrics_of(&reference_path)?;
        let measured: BTreeMap<String, f64> = metrics_of(&measured_csv)?.into_iter().collect();
        for (metric, want) in reference {
            let tolerance = spec.tolerance.get(&metric).copied().unwrap_or(default_tolerance);
            let got = measured.get(&metric).copied();
            let status = match got {
                None => "FAILED: not measured".to_string(),
                Some(v) if (v - want).abs() <= tolerance => "ok".to_string(),
                Some(v) => format!("FAILED: off by {:+.6}", v - want),
            };
            lines.push(Line { check: check.name.clone(), metric, reference: Some(want), measured: got, tolerance, status });
        }
    }

    use polars::prelude::*;
    let df = DataFrame::new_infer_height(vec![
        Column::new("check".into(), lines.iter().map(|l| l.check.clone()).collect::<Vec<_>>()),
        Column::new("metric".into(), lines.iter().map(|l| l.metric.clone()).collect::<Vec<_>>()),
        Column::new("reference".into(), lines.iter().map(|l| l.reference).collect::<Vec<_>>()),
        Column::new("measured".into(), lines.iter().map(|l| l.measured).collect::<Vec<_>>()),
        Column::new("tolerance".into(), lines.iter().map(|l| l.tolerance).collect::<Vec<_>>()),
        Column::new("status".into(), lines.iter().map(|l| l.status.clone()).collect::<Vec<_>>()),
    ])?;
    harness_report::write_all_formats(&df, &out, "regress")?;
    println!("{}", harness_report::display(&df));
    let failed = lines.iter().filter(|l| l.status.starts_with("FAILED")).count();
    if lines.is_empty() {
        bail!("no checks selected");
    }
    if failed > 0 {
        bail!("{failed} of {} comparisons regressed (details in {})", lines.len(), out.join("regress.md").display());
    }
    if args.update {
        println!("{} reference tables rewritten; review the diff before committing", lines.len());
    } else {
        println!("{} comparisons within tolerance; written to {}", lines.len(), out.display());
    }
    Ok(())
}
