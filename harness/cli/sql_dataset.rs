//! `harness eval` on a SQL dataset (Spider, BIRD): execution accuracy in both modes, as one row of
//! the standard results table.
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use harness_datasets::{resolve_data_file, Card, LoaderKind, Registry};
use harness_report::ResultRow;
use harness_sql::data::{load_bird_questions, load_spider_questions};
use harness_sql::{summarize, ExItem, ExMode, SqlQuestion};

use crate::eval::{EvalArgs, EvalOutcome};
use crate::paths;
use crate::sql_eval::{evaluate_with_progress, format_summary, write_verdicts, ExecArgs};

/// Methods a SQL dataset accepts in this build.
const SQL_METHODS: &str = "gold (the gold SQL scored against itself: a self-check of data and executor)";

pub fn run(args: &EvalArgs, registry: &Registry, card: &Card) -> Result<EvalOutcome> {
    if args.method != "gold" {
        bail!("method '{}' does not apply to the SQL dataset '{}'; available: {SQL_METHODS}", args.method, card.name);
    }
    // With --db-dir the databases come from elsewhere; only the question files must be here.
    let dir = if args.db_dir.is_some() { registry.dataset_dir(card) } else { registry.require_offline(card)? };
    let split = args.split.clone().or(card.default_split.clone()).context("no --split given and the card has no default")?;
    let split_card = card.splits.get(&split).with_context(|| {
        format!("dataset '{}' has no split '{split}' (splits: {})", card.name, card.splits.keys().cloned().collect::<Vec<_>>().join(", "))
    })?;
    let questions_file = resolve_data_file(&dir, &split_card.qrels)
        .with_context(|| format!("{} is missing from {}", split_card.qrels, dir.display()))?;
    let (questions, levels, default_db_dir): (Vec<SqlQuestion>, &[&str], PathBuf) = match card.loader {
        LoaderKind::Spider => (load_spider_questions(&questions_file)?, harness_sql::SPIDER_LEVELS, dir.join("database")),
        LoaderKind::Bird => (load_bird_questions(&questions_file)?, harness_sql::BIRD_LEVELS, dir.join("dev_databases")),
        other => bail!("loader '{}' is not a SQL loader", other.name()),
    };
    let db_dir = match (&args.db_dir, card.loader, split.as_str()) {
        (Some(d), _, _) => d.clone(),
        // Spider's train databases ship as one verified archive, unpacked into the cache once.
        (None, LoaderKind::Spider, "train") => harness_sql::data::unpack_databases(
            &dir.join("train_databases.tar.gz"),
            &dir.join("train_databases.SHA256SUMS"),
            &paths::cache_dir().join("spider").join("train_databases"),
        )?,
        (None, _, _) => default_db_dir,
    };
    let items: Vec<ExItem> = questions
        .iter()
        .map(|q| ExItem { index: q.index, db_id: q.db_id.clone(), gold_sql: q.gold_sql.clone(), pred_sql: q.gold_sql.clone(), level: q.level.clone() })
        .collect();

    let exec = ExecArgs {
        timeout_secs: args.sql_timeout_secs,
        max_rows: 1_000_000,
        keep_distinct: false,
        paper_timeout_as_empty: false,
        threads: args.threads,
    };
    let run_id = paths::new_run_id(&format!("{}-{split}-sqlite-{}", card.name, args.method));
    let run_dir = args.out.clone().unwrap_or_else(|| paths::runs_dir().join(&run_id));
    std::fs::create_dir_all(&run_dir).with_context(|| format!("creating {}", run_dir.display()))?;

    let mut metrics = Vec::new();
    let mut summaries = serde_json::Map::new();
    let mut scored = 0;
    let mut printed = String::new();
    let start = Instant::now();
    for mode in [ExMode::Dr, ExMode::TestSuite] {
        let results = evaluate_with_progress(&items, &db_dir, &exec.options(mode)?, args.quiet)?;
        let summary = summarize(&results, levels);
        let all = summary.last().expect("summary ends with 'all'").clone();
        scored = all.scored;
        metrics.push((format!("ex_{}", mode.name().replace('-', "_")), all.accuracy()));
        write_verdicts(&run_dir.join(format!("verdicts.{}.tsv", mode.name())), &results)?;
        summaries.insert(
            mode.name().to_string(),
            serde_json::json!({
                "questions": all.questions, "scored": all.scored, "correct": all.correct,
                "not_runnable": all.not_runnable, "gold_failed": all.gold_failed, "execution_accuracy": all.accuracy(),
            }),
        );
        printed.push_str(&format_summary(&summary, mode));
    }
    let seconds = start.elapsed().as_secs_f64();

    let row = ResultRow {
        dataset: card.name.clone(),
        split: split.clone(),
        retriever: "sqlite".into(),
        method: args.method.clone(),
        metrics,
        num_queries: scored,
        wall_seconds: seconds,
        source: "measured".into(),
        run_id: run_id.clone(),
    };
    let table = harness_report::results_frame(std::slice::from_ref(&row))?;
    harness_report::write_all_formats(&table, &run_dir, "table")?;
    let meta = serde_json::json!({
        "run_id": run_id,
        "command": std::env::args().collect::<Vec<_>>(),
        "harness_version": env!("CARGO_PKG_VERSION"),
        "dataset": card.name,
        "split": split,
        "method": args.method,
        "db_dir": db_dir,
        "questions": items.len(),
        "timeout_secs": args.sql_timeout_secs,
        "summaries": summaries,
        "wall_seconds": seconds,
        "created": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
    });
    let meta_text = serde_json::to_string_pretty(&meta)?;
    harness_core::io::write_atomically(&run_dir.join("meta.json"), |w| w.write_all(meta_text.as_bytes()))?;
    if !args.quiet {
        print!("{printed}");
        println!("{}", harness_report::display(&table));
        println!("run written to {}", run_dir.display());
    }
    Ok(EvalOutcome { row, run_dir })
}
