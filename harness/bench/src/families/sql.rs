//! SQL datasets (Spider, BIRD): execution accuracy in both modes (`ex_dr`, `ex_test_suite`) as
//! one row of the standard results table, with per-question verdicts.
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use harness_datasets::{resolve_data_file, Card, LoaderKind};
use harness_report::ResultRow;
use harness_sql::data::{load_bird_questions, load_spider_questions};
use harness_sql::{summarize, ExItem, ExMode, SqlQuestion};

use crate::sql_exec::{evaluate_with_progress, format_summary, write_verdicts, ExecSettings, MAX_ROWS};
use super::CellOutcome;
use crate::context::Bench;
use crate::run_dir::RunDir;
use crate::spec::CellSpec;

/// Methods a SQL dataset accepts in this build.
const SQL_METHODS: &str = "gold (the gold SQL scored against itself: a self-check of data and executor)";

pub fn run(bench: &Bench, spec: &CellSpec, card: &Card) -> Result<CellOutcome> {
    if spec.method != "gold" {
        bail!("method '{}' does not apply to the SQL dataset '{}'; available: {SQL_METHODS}", spec.method, card.name);
    }
    // With db_dir the databases come from elsewhere; only the question files must be here.
    let dir = if spec.db_dir.is_some() { bench.registry.dataset_dir(card) } else { bench.registry.require_offline(card)? };
    let split = spec.split.clone().or(card.default_split.clone()).context("no split given and the card has no default")?;
    let split_card = card.splits.get(&split).with_context(|| {
        format!("dataset '{}' has no split '{split}' (splits: {})", card.name, card.splits.keys().cloned().collect::<Vec<_>>().join(", "))
    })?;
    let questions_file = resolve_data_file(&dir, &split_card.qrels).with_context(|| format!("{} is missing from {}", split_card.qrels, dir.display()))?;
    let (questions, levels, default_db_dir): (Vec<SqlQuestion>, &[&str], PathBuf) = match card.loader {
        LoaderKind::Spider => (load_spider_questions(&questions_file)?, harness_sql::SPIDER_LEVELS, dir.join("database")),
        LoaderKind::Bird => (load_bird_questions(&questions_file)?, harness_sql::BIRD_LEVELS, dir.join("dev_databases")),
        other => bail!("loader '{}' is not a SQL loader", other.name()),
    };
    // A split whose databases ship as one verified archive (Spider train) is unpacked into the
    // cache once.
    let archive = dir.join(format!("{split}_databases.tar.gz"));
    let db_dir = match &spec.db_dir {
        Some(d) => d.clone(),
        None if archive.is_file() => harness_sql::data::unpack_databases(
            &archive,
            &dir.join(format!("{split}_databases.SHA256SUMS")),
            &bench.workspace.cache.join(&card.name).join(format!("{split}_databases")),
        )?,
        None => default_db_dir,
    };
    let questions = spec.limited(questions);
    let items: Vec<ExItem> = questions
        .iter()
        .map(|q| ExItem { index: q.index, db_id: q.db_id.clone(), gold_sql: q.gold_sql.clone(), pred_sql: q.gold_sql.clone(), level: q.level.clone() })
        .collect();

    let exec = ExecSettings { timeout_secs: spec.sql_timeout_secs, max_rows: MAX_ROWS, keep_distinct: false, paper_timeout_as_empty: false, threads: spec.threads };
    let run_dir = RunDir::create(&bench.workspace.runs, &format!("{}-{split}-sqlite-{}", card.name, spec.method), spec.out.as_deref(), bench.invocation.overwrite)?;

    let mut metrics = Vec::new();
    let mut summaries = serde_json::Map::new();
    let mut scored = 0;
    let mut notes = Vec::new();
    let start = Instant::now();
    for mode in [ExMode::Dr, ExMode::TestSuite] {
        let results = evaluate_with_progress(&items, &db_dir, &exec.options(mode)?, bench.progress)?;
        let summary = summarize(&results, levels);
        let all = summary.last().expect("summary ends with 'all'").clone();
        scored = all.scored;
        metrics.push((format!("ex_{}", mode.name().replace('-', "_")), all.accuracy()));
        write_verdicts(&run_dir.file(&format!("verdicts.{}.tsv", mode.name())), &results)?;
        summaries.insert(
            mode.name().to_string(),
            serde_json::json!({
                "questions": all.questions, "scored": all.scored, "correct": all.correct,
                "not_runnable": all.not_runnable, "gold_failed": all.gold_failed, "execution_accuracy": all.accuracy(),
            }),
        );
        notes.push(format_summary(&summary, mode).trim_end().to_string());
    }
    let seconds = start.elapsed().as_secs_f64();

    let row = ResultRow {
        dataset: card.name.clone(),
        split: split.clone(),
        retriever: "sqlite".into(),
        method: spec.method.clone(),
        metrics,
        num_queries: scored,
        wall_seconds: seconds,
        source: "measured".into(),
        run_id: run_dir.id.clone(),
    };
    let table = run_dir.write_cell(&row, None)?;
    run_dir.write_meta(
        bench,
        serde_json::json!({
            "dataset": card.name,
            "split": split,
            "method": spec.method,
            "db_dir": db_dir,
            "questions": items.len(),
            "timeout_secs": spec.sql_timeout_secs,
            "summaries": summaries,
            "wall_seconds": seconds,
        }),
    )?;
    Ok(CellOutcome { row, table, run_dir: run_dir.path, notes, scores: None })
}
