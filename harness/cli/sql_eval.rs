//! `harness sql-eval` and `harness sql-schema`: flags -> a harness-bench job -> the summary.
use std::path::PathBuf;

use anyhow::Result;
use harness_bench::sql_exec::{run_sql_eval, ExecSettings, SqlEvalJob, MAX_ROWS};
use harness_bench::spec::defaults;
use harness_sql::{ExMode, ExecLimits};

use crate::progress::Bars;

/// Execution settings.
#[derive(clap::Args, Clone, Debug)]
pub struct ExecArgs {
    /// Seconds one statement may run (the paper uses 30).
    #[arg(long, default_value_t = defaults::SQL_TIMEOUT_SECS)]
    pub timeout_secs: f64,
    /// Rows one statement may return before it is stopped.
    #[arg(long, default_value_t = MAX_ROWS)]
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

pub fn run(args: SqlEvalArgs, root: Option<PathBuf>) -> Result<()> {
    let mode: ExMode = args.mode.parse().map_err(anyhow::Error::msg)?;
    // Only the default output folder needs the workspace.
    let out = match args.out {
        Some(out) => out,
        None => harness_bench::sql_exec::default_out(&crate::workspace(root)?.runs, &format!("sql-eval-{}", mode.name())),
    };
    let e = args.exec;
    let job = SqlEvalJob {
        gold: args.gold,
        pred: args.pred,
        db_dir: args.db_dir,
        mode,
        levels: args.levels,
        questions: args.questions,
        exec: ExecSettings { timeout_secs: e.timeout_secs, max_rows: e.max_rows, keep_distinct: e.keep_distinct, paper_timeout_as_empty: e.paper_timeout_as_empty, threads: e.threads },
        out,
    };
    let bars = Bars::new(args.quiet);
    let outcome = run_sql_eval(&job, &crate::invocation(), &bars)?;
    if !args.quiet {
        print!("{}", outcome.summary_text);
        println!("{} questions in {:.2}s; verdicts in {}", outcome.questions, outcome.seconds, outcome.out.join("verdicts.tsv").display());
    }
    Ok(())
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
