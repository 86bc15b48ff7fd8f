//! `harness sql-eval`: execution accuracy of a prediction file, with the official Spider
//! evaluator's file conventions, in DeepRetrieval's mode or the official test-suite mode.
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use harness_sql::data::{attach_levels, read_gold_file, read_prediction_file};
use harness_sql::{evaluate, summarize, ExItem, ExMode, ExOptions, ExResult, ExecLimits, LevelSummary};
use indicatif::{ProgressBar, ProgressStyle};

use crate::paths;

/// Execution settings shared by `sql-eval` and `eval` on SQL datasets.
#[derive(clap::Args, Clone, Debug)]
pub struct ExecArgs {
    /// Seconds one statement may run (the paper uses 30).
    #[arg(long, default_value_t = 30.0)]
    pub timeout_secs: f64,
    /// Rows one statement may return before it is stopped.
    #[arg(long, default_value_t = 1_000_000)]
    pub max_rows: usize,
    /// test-suite mode: keep DISTINCT (the official --keep_distinct).
    #[arg(long)]
    pub keep_distinct: bool,
    /// dr mode, paper quirk: a timed-out prediction returns no rows instead of failing (so it
    /// is correct against an empty gold result), as DeepRetrieval's executor does.
    #[arg(long)]
    pub paper_timeout_as_empty: bool,
    /// Worker threads (0: all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

impl ExecArgs {
    pub fn options(&self, mode: ExMode) -> Result<ExOptions> {
        anyhow::ensure!(self.timeout_secs > 0.0 && self.timeout_secs.is_finite(), "--timeout-secs must be positive");
        Ok(ExOptions {
            mode,
            limits: ExecLimits {
                timeout: Duration::from_secs_f64(self.timeout_secs),
                max_rows: self.max_rows,
                ..ExecLimits::default()
            },
            keep_distinct: self.keep_distinct,
            paper_timeout_as_empty: self.paper_timeout_as_empty,
            threads: self.threads,
        })
    }
}

#[derive(clap::Args)]
pub struct SqlEvalArgs {
    /// Gold file: one `SQL<TAB>db_id` per line (the official dev_gold.sql layout).
    #[arg(long)]
    gold: PathBuf,
    /// Predictions: one SQL per line, in gold order (text after a tab is ignored).
    #[arg(long)]
    pred: PathBuf,
    /// Folder with <db_id>/<db_id>.sqlite (test-suite mode also uses every other .sqlite file
    /// in each database's folder).
    #[arg(long)]
    db_dir: PathBuf,
    /// dr (DeepRetrieval: set equality on one file) or test-suite (official Spider exec).
    #[arg(long, default_value = "test-suite")]
    mode: String,
    /// Per-question levels, `index<TAB>level` lines (index = 1-based gold line among
    /// non-blank lines), e.g. Spider hardness; the summary is then broken down by level.
    #[arg(long)]
    levels: Option<PathBuf>,
    /// The question file the gold lines come from (Spider dev.json or BIRD dev.json, same order):
    /// levels are taken from it (Spider hardness from its parsed SQL, BIRD difficulty).
    #[arg(long, conflicts_with = "levels")]
    questions: Option<PathBuf>,
    #[command(flatten)]
    exec: ExecArgs,
    /// Output folder (default: results/runs/<run-id>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Do not print the summary.
    #[arg(long)]
    quiet: bool,
}

pub fn run(args: SqlEvalArgs) -> Result<()> {
    let mode: ExMode = args.mode.parse().map_err(anyhow::Error::msg)?;
    let mut golds = read_gold_file(&args.gold)?;
    anyhow::ensure!(!golds.is_empty(), "{}: no gold queries", args.gold.display());
    if let Some(levels) = &args.levels {
        attach_levels(&mut golds, levels)?;
    }
    if let Some(path) = &args.questions {
        let questions = harness_sql::data::load_questions(path)?;
        anyhow::ensure!(
            questions.len() == golds.len(),
            "{}: {} questions for {} gold lines in {}",
            path.display(),
            questions.len(),
            golds.len(),
            args.gold.display()
        );
        for (g, q) in golds.iter_mut().zip(questions) {
            anyhow::ensure!(g.db_id == q.db_id, "{}: question {} is on {}, gold line {} on {}", path.display(), q.index, q.db_id, g.index, g.db_id);
            g.level = q.level;
        }
    }
    let preds = read_prediction_file(&args.pred, golds.len())?;
    let items: Vec<ExItem> = golds
        .into_iter()
        .zip(preds)
        .map(|(g, p)| ExItem { index: g.index, db_id: g.db_id, gold_sql: g.gold_sql, pred_sql: p, level: g.level })
        .collect();
    let options = args.exec.options(mode)?;
    let start = Instant::now();
    let results = evaluate_with_progress(&items, &args.db_dir, &options, args.quiet)?;
    let seconds = start.elapsed().as_secs_f64();
    let order: Vec<&str> = harness_sql::SPIDER_LEVELS.iter().chain(harness_sql::BIRD_LEVELS).copied().collect();
    let summary = summarize(&results, &order);

    let run_id = paths::new_run_id(&format!("sql-eval-{}", mode.name()));
    let out = args.out.clone().unwrap_or_else(|| paths::runs_dir().join(&run_id));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    write_verdicts(&out.join("verdicts.tsv"), &results)?;
    write_summary(&out.join("summary.tsv"), &summary)?;
    let meta = serde_json::json!({
        "run_id": run_id,
        "command": std::env::args().collect::<Vec<_>>(),
        "harness_version": env!("CARGO_PKG_VERSION"),
        "gold": args.gold,
        "pred": args.pred,
        "db_dir": args.db_dir,
        "mode": mode.name(),
        "timeout_secs": args.exec.timeout_secs,
        "max_rows": args.exec.max_rows,
        "keep_distinct": args.exec.keep_distinct,
        "paper_timeout_as_empty": args.exec.paper_timeout_as_empty,
        "wall_seconds": seconds,
        "execution_accuracy": summary.last().map(LevelSummary::accuracy),
        "created": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
    });
    let meta_text = serde_json::to_string_pretty(&meta)?;
    harness_core::io::write_atomically(&out.join("meta.json"), |w| w.write_all(meta_text.as_bytes()))?;
    if !args.quiet {
        print!("{}", format_summary(&summary, mode));
        println!("{} questions in {seconds:.2}s; verdicts in {}", items.len(), out.join("verdicts.tsv").display());
    }
    Ok(())
}

/// Runs `evaluate` with a progress bar on standard error (hidden when `quiet`).
pub fn evaluate_with_progress(items: &[ExItem], db_dir: &Path, options: &ExOptions, quiet: bool) -> Result<Vec<ExResult>> {
    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(items.len() as u64) };
    bar.set_style(
        ProgressStyle::with_template("{prefix} {bar:40} {pos}/{len} [{elapsed_precise}, eta {eta}]")
            .expect("valid template"),
    );
    bar.set_prefix(format!("executing ({})", options.mode.name()));
    let results = evaluate(items, db_dir, options, &|| bar.inc(1))?;
    bar.finish_and_clear();
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

/// The summary as a small aligned table.
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
        out.push_str(&format!(
            "{} questions are not runnable (missing databases) and are outside the accuracy; see verdicts.tsv\n",
            all.not_runnable
        ));
    }
    if all.gold_failed > 0 {
        out.push_str(&format!("{} gold queries failed to execute and are not scored; see verdicts.tsv\n", all.gold_failed));
    }
    out
}

#[derive(clap::Args)]
pub struct SqlSchemaArgs {
    /// SQLite database file.
    #[arg(long)]
    db: PathBuf,
    /// Example rows to show after each table (0: none).
    #[arg(long, default_value_t = 0)]
    sample_rows: usize,
}

/// `harness sql-schema`: the schema text prompts use, read from the database itself.
pub fn schema(args: SqlSchemaArgs) -> Result<()> {
    let db = harness_sql::Sandbox::open(&args.db, ExecLimits::default())?;
    println!("{}", harness_sql::render_schema(&db, args.sample_rows)?);
    Ok(())
}
