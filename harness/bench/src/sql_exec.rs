//! Execution accuracy runs: settings shared by `sql-eval` and SQL cells, evaluation with
//! progress, the verdict and summary files, and the `sql-eval` job on official-layout files.
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;
use harness_sql::data::{attach_levels, read_gold_file, read_prediction_file};
use harness_sql::{evaluate, summarize, ExItem, ExMode, ExOptions, ExResult, ExecLimits, LevelSummary};

use crate::context::Invocation;
use crate::progress::Progress;
use crate::run_dir::RunDir;

/// Execution settings.
#[derive(Debug, Clone)]
pub struct ExecSettings {
    /// Seconds one statement may run (the paper uses 30).
    pub timeout_secs: f64,
    /// Rows one statement may return before it is stopped.
    pub max_rows: usize,
    /// test-suite mode: keep DISTINCT (the official --keep_distinct).
    pub keep_distinct: bool,
    /// dr mode, paper quirk: a timed-out prediction returns no rows instead of failing.
    pub paper_timeout_as_empty: bool,
    /// Worker threads (0: all cores).
    pub threads: usize,
}

/// The longest statement time limit accepted, in seconds.
pub const MAX_TIMEOUT_SECS: f64 = 86_400.0;

/// Default row cap of one statement.
pub const MAX_ROWS: usize = 1_000_000;

impl ExecSettings {
    /// The options of one mode; the timeout must be a positive finite number.
    pub fn options(&self, mode: ExMode) -> Result<ExOptions> {
        // A day is far beyond any query worth waiting for, and keeps the deadline arithmetic
        // finite (1e30 seconds overflowed it).
        anyhow::ensure!(
            self.timeout_secs > 0.0 && self.timeout_secs <= MAX_TIMEOUT_SECS,
            "--timeout-secs {} must be above 0 and at most {MAX_TIMEOUT_SECS} (a day)",
            self.timeout_secs
        );
        Ok(ExOptions {
            mode,
            limits: ExecLimits { timeout: Duration::from_secs_f64(self.timeout_secs), max_rows: self.max_rows, ..ExecLimits::default() },
            keep_distinct: self.keep_distinct,
            paper_timeout_as_empty: self.paper_timeout_as_empty,
            threads: self.threads,
        })
    }
}

/// Runs `evaluate` with a progress bar.
pub fn evaluate_with_progress(items: &[ExItem], db_dir: &Path, options: &ExOptions, progress: &dyn Progress) -> Result<Vec<ExResult>> {
    let bar = progress.bar(&format!("executing ({})", options.mode.name()), items.len() as u64);
    let results = evaluate(items, db_dir, options, &|| bar.inc(1))?;
    bar.finish();
    Ok(results)
}

fn clean(text: &str) -> String {
    text.replace(['\t', '\n', '\r'], " ")
}

/// One line per question: index, db_id, level, verdict, gold rows, predicted rows, detail.
pub fn write_verdicts(path: &Path, results: &[ExResult]) -> Result<()> {
    harness_core::io::write_atomically(path, |w| {
        writeln!(w, "index\tdb_id\tlevel\tverdict\tgold_rows\tpred_rows\tdetail")?;
        for r in results {
            let count = |n: Option<usize>| n.map(|n| n.to_string()).unwrap_or_default();
            writeln!(
                w,
                "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                r.index,
                r.db_id,
                r.level.as_deref().unwrap_or(""),
                r.verdict.label(),
                count(r.gold_rows),
                count(r.pred_rows),
                clean(&r.verdict.detail())
            )?;
        }
        Ok(())
    })?;
    Ok(())
}

const SUMMARY_HEADER: [&str; 7] = ["level", "questions", "scored", "correct", "not_runnable", "gold_failed", "execution_accuracy"];

/// The cells of one summary row, in `SUMMARY_HEADER` order.
fn summary_cells(s: &LevelSummary) -> [String; 7] {
    [
        s.level.clone(),
        s.questions.to_string(),
        s.scored.to_string(),
        s.correct.to_string(),
        s.not_runnable.to_string(),
        s.gold_failed.to_string(),
        format!("{:.4}", s.accuracy()),
    ]
}

fn write_summary(path: &Path, summary: &[LevelSummary]) -> Result<()> {
    harness_core::io::write_atomically(path, |w| {
        writeln!(w, "{}", SUMMARY_HEADER.join("\t"))?;
        for s in summary {
            writeln!(w, "{}", summary_cells(s).join("\t"))?;
        }
        Ok(())
    })?;
    Ok(())
}

/// The summary as a small aligned table (text for the caller to show).
pub fn format_summary(summary: &[LevelSummary], mode: ExMode) -> String {
    let mut out = format!("execution accuracy ({} mode)\n", mode.name());
    let line = |cells: &[String]| {
        let mut text = format!("{:<10}", cells[0]);
        for (cell, width) in cells[1..].iter().zip([9, 7, 8, 13, 12, 8]) {
            text.push_str(&format!(" {cell:>width$}"));
        }
        text + "\n"
    };
    let header = ["level", "questions", "scored", "correct", "not-runnable", "gold-failed", "EX"].map(String::from);
    out.push_str(&line(&header));
    for s in summary {
        out.push_str(&line(&summary_cells(s)));
    }
    let all = summary.last().expect("summary ends with 'all'");
    if all.not_runnable > 0 {
        out.push_str(&format!("{} questions are not runnable (missing databases) and are outside the accuracy; see verdicts.tsv\n", all.not_runnable));
    }
    if all.gold_failed > 0 {
        out.push_str(&format!("{} gold queries failed to execute and are not scored; see verdicts.tsv\n", all.gold_failed));
    }
    out
}

/// A `sql-eval` job: official-layout gold and prediction files.
#[derive(Debug, Clone)]
pub struct SqlEvalJob {
    /// `SQL<TAB>db_id` per line.
    pub gold: PathBuf,
    /// One SQL per line, in gold order.
    pub pred: PathBuf,
    pub db_dir: PathBuf,
    pub mode: ExMode,
    /// `index<TAB>level` lines.
    pub levels: Option<PathBuf>,
    /// The question file the gold lines come from (levels are taken from it).
    pub questions: Option<PathBuf>,
    pub exec: ExecSettings,
    /// Output folder (verdicts.tsv, summary.tsv, meta.json).
    pub out: PathBuf,
}

/// What a `sql-eval` job produced.
pub struct SqlEvalOutcome {
    pub summary: Vec<LevelSummary>,
    /// [`format_summary`] of it.
    pub summary_text: String,
    pub questions: usize,
    pub seconds: f64,
    pub out: PathBuf,
}

/// Runs a `sql-eval` job and writes its folder.
pub fn run_sql_eval(job: &SqlEvalJob, invocation: &Invocation, progress: &dyn Progress) -> Result<SqlEvalOutcome> {
    let options = job.exec.options(job.mode)?;
    let mut golds = read_gold_file(&job.gold)?;
    anyhow::ensure!(!golds.is_empty(), "{}: no gold queries", job.gold.display());
    if let Some(levels) = &job.levels {
        attach_levels(&mut golds, levels)?;
    }
    if let Some(path) = &job.questions {
        let questions = harness_sql::data::load_questions(path)?;
        anyhow::ensure!(
            questions.len() == golds.len(),
            "{}: {} questions for {} gold lines in {}",
            path.display(),
            questions.len(),
            golds.len(),
            job.gold.display()
        );
        for (g, q) in golds.iter_mut().zip(questions) {
            anyhow::ensure!(g.db_id == q.db_id, "{}: question {} is on {}, gold line {} on {}", path.display(), q.index, q.db_id, g.index, g.db_id);
            g.level = q.level;
        }
    }
    let preds = read_prediction_file(&job.pred, golds.len())?;
    let items: Vec<ExItem> = golds
        .into_iter()
        .zip(preds)
        .map(|(g, p)| ExItem { index: g.index, db_id: g.db_id, gold_sql: g.gold_sql, pred_sql: p, level: g.level })
        .collect();
    let start = Instant::now();
    let results = evaluate_with_progress(&items, &job.db_dir, &options, progress)?;
    let seconds = start.elapsed().as_secs_f64();
    let order: Vec<&str> = harness_sql::SPIDER_LEVELS.iter().chain(harness_sql::BIRD_LEVELS).copied().collect();
    let summary = summarize(&results, &order);

    let dir = RunDir::create(Path::new(""), &format!("sql-eval-{}", job.mode.name()), Some(&job.out), invocation.overwrite)?;
    write_verdicts(&dir.file("verdicts.tsv"), &results)?;
    write_summary(&dir.file("summary.tsv"), &summary)?;
    dir.write_meta_with(
        invocation,
        None,
        serde_json::json!({
            "gold": job.gold,
            "pred": job.pred,
            "db_dir": job.db_dir,
            "mode": job.mode.name(),
            "timeout_secs": job.exec.timeout_secs,
            "max_rows": job.exec.max_rows,
            "keep_distinct": job.exec.keep_distinct,
            "paper_timeout_as_empty": job.exec.paper_timeout_as_empty,
            "wall_seconds": seconds,
            "execution_accuracy": summary.last().map(LevelSummary::accuracy),
        }),
    )?;
    let summary_text = format_summary(&summary, job.mode);
    Ok(SqlEvalOutcome { summary, summary_text, questions: items.len(), seconds, out: dir.path })
}

/// The default output folder of a job labelled `label` under the workspace's runs.
pub fn default_out(bench_runs: &Path, label: &str) -> PathBuf {
    bench_runs.join(crate::run_dir::new_run_id(label))
}
