//! A run folder: its id, its files (run.trec, table.*, per_query.parquet, *.jsonl) and the
//! common part of every meta.json. Every file is written atomically (temporary file, rename).
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use harness_core::Run;
use harness_report::ResultRow;
use polars::prelude::DataFrame;

use crate::context::{Bench, Invocation};

/// A run id: UTC time plus a label, e.g. `20261125T190501Z-scifact-test-bm25-original`.
pub fn new_run_id(label: &str) -> String {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let stamp: String = now.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    let clean: String = label.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' }).collect();
    format!("{stamp}-{clean}")
}

/// A folder name made of `text` (alphanumerics and `-`, at most 60 characters).
pub fn safe_name(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).take(60).collect()
}

/// One run's output folder.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub id: String,
    pub path: PathBuf,
}

impl RunDir {
    /// A new run labelled `label`, in `out` or else `<runs>/<run-id>`; the folder is created.
    /// An `out` that exists and holds anything is refused (its old files would sit beside the
    /// new ones), unless `overwrite`, which empties it first.
    pub fn create(runs: &Path, label: &str, out: Option<&Path>, overwrite: bool) -> Result<RunDir> {
        let id = new_run_id(label);
        let path = match out {
            Some(out) => {
                claim_out(out, overwrite)?;
                out.to_path_buf()
            }
            None => runs.join(&id),
        };
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(RunDir { id, path })
    }

    /// A file of this run.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// The cell's one-row table (csv, parquet, md) and, when given, its TREC run file.
    pub fn write_cell(&self, row: &ResultRow, run: Option<&Run>) -> Result<DataFrame> {
        let table = harness_report::results_frame(std::slice::from_ref(row))?;
        if let Some(run) = run {
            harness_core::io::write_run(&self.file("run.trec"), run, &row.run_id)?;
        }
        harness_report::write_all_formats(&table, &self.path, "table")?;
        Ok(table)
    }

    /// Per-query values of a trec_eval evaluation.
    pub fn write_per_query(&self, evaluation: &harness_core::trec_eval::Evaluation) -> Result<()> {
        harness_report::write_parquet(&harness_report::per_query_frame(evaluation)?, &self.file("per_query.parquet"))?;
        Ok(())
    }

    /// One JSON value per line; nothing when there are none.
    pub fn write_jsonl(&self, name: &str, values: &[serde_json::Value]) -> Result<()> {
        write_jsonl(&self.file(name), values)
    }

    /// meta.json: the run id, command, harness version, creation time and provenance (commit,
    /// dirty flag, library versions, machine, argv; [`crate::provenance`]), then `fields` (an
    /// object) of the task family.
    pub fn write_meta(&self, bench: &Bench, fields: serde_json::Value) -> Result<()> {
        self.write_meta_with(&bench.invocation, Some(&bench.workspace.onnxruntime), fields)
    }

    /// [`RunDir::write_meta`] for work done without a workspace (`sql-eval`).
    pub fn write_meta_with(&self, invocation: &Invocation, onnxruntime: Option<&Path>, fields: serde_json::Value) -> Result<()> {
        let mut meta = serde_json::json!({
            "run_id": self.id,
            "command": invocation.command,
            "harness_version": env!("CARGO_PKG_VERSION"),
            "git_commit": env!("HARNESS_GIT_COMMIT"),
            "created": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            "provenance": crate::provenance::record(invocation, onnxruntime),
        });
        if let (Some(meta), serde_json::Value::Object(fields)) = (meta.as_object_mut(), fields) {
            meta.extend(fields);
        }
        let text = serde_json::to_string_pretty(&meta)?;
        harness_core::io::write_atomically(&self.file("meta.json"), |w| w.write_all(text.as_bytes()))?;
        Ok(())
    }
}

/// Makes `out` usable for a new run: a folder that exists and holds anything is refused (its
/// old files would sit beside the new ones), unless `overwrite`, which empties it.
pub fn claim_out(out: &Path, overwrite: bool) -> Result<()> {
    let used = std::fs::read_dir(out).map(|mut d| d.next().is_some()).unwrap_or(false);
    match (used, overwrite) {
        (false, _) => Ok(()),
        (true, false) => anyhow::bail!("output folder {} exists and is not empty: pass --overwrite to replace it, or choose another --out", out.display()),
        (true, true) => std::fs::remove_dir_all(out).with_context(|| format!("clearing {}", out.display())),
    }
}

/// One JSON value per line, atomically; nothing when there are none.
pub fn write_jsonl(path: &Path, values: &[serde_json::Value]) -> Result<()> {
    if values.is_empty() {
        return Ok(());
    }
    harness_core::io::write_atomically(path, |w| {
        for v in values {
            writeln!(w, "{v}")?;
        }
        Ok(())
    })?;
    Ok(())
}
