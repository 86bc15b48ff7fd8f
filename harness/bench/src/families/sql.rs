//! SQL datasets (Spider, BIRD): SQL written by a method (a prompted model, a trained policy, an
//! API model; `gold` scores the gold SQL against itself) is executed in the sandbox and scored
//! in both modes (`ex_dr`, `ex_test_suite`) as one row of the standard results table, with
//! per-question verdicts and the format outcome of every model answer.
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use harness_datasets::{resolve_data_file, Card, LoaderKind};
use harness_report::ResultRow;
use harness_sql::data::{load_bird_questions, load_spider_questions};
use harness_baselines::Task;
use harness_core::Query;
use harness_sql::{summarize, ExItem, ExMode, ExResult, ExecLimits, Sandbox, SqlQuestion};

use crate::sql_exec::{evaluate_with_progress, format_summary, write_verdicts, ExecSettings, MAX_ROWS};
use super::CellOutcome;
use crate::context::Bench;
use crate::run_dir::RunDir;
use crate::spec::CellSpec;

/// Methods a SQL dataset accepts.
const SQL_METHODS: &str = "gold (the gold SQL scored against itself: a self-check of data and executor), llm:DIR, llm:default, checkpoint:DIR, api:MODEL (SQL written from the question and the schema)";

/// The schema text of each database, read from the database itself (`harness sql-schema`). A
/// database file that is missing has none (its questions are not runnable and not asked); one
/// that exists but cannot be opened or read is an error naming the file, not a silent skip.
pub(crate) fn schemas(questions: &[SqlQuestion], db_dir: &Path) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    for q in questions {
        if out.contains_key(&q.db_id) {
            continue;
        }
        let path = harness_sql::data::database_path(db_dir, &q.db_id);
        if !path.is_file() {
            continue;
        }
        let schema = Sandbox::open(&path, ExecLimits::default())
            .and_then(|db| harness_sql::render_schema(&db, 0))
            .with_context(|| format!("reading the schema of database '{}' ({})", q.db_id, path.display()))?;
        out.insert(q.db_id.clone(), schema);
    }
    Ok(out)
}

/// The prompt task of each question (question, schema, BIRD's evidence), by query id (the
/// question's index).
pub(crate) fn sql_tasks(questions: &[SqlQuestion], schemas: &HashMap<String, String>) -> HashMap<String, Task> {
    questions
        .iter()
        .filter_map(|q| {
            let schema = schemas.get(&q.db_id)?;
            Some((q.index.to_string(), Task::Sql { schema: schema.clone(), question: q.question.clone(), evidence: q.evidence.clone() }))
        })
        .collect()
}

/// The SQL each question gets from the spec's method, with the method's name, report and
/// generations, and the generation time. Questions whose database is missing are not asked.
struct Predictions {
    sql: Vec<String>,
    method: String,
    report: serde_json::Value,
    generations: Vec<serde_json::Value>,
    seconds: f64,
}

fn predict(bench: &Bench, spec: &CellSpec, card: &Card, questions: &[SqlQuestion], db_dir: &Path) -> Result<Predictions> {
    if spec.method == "gold" {
        let sql = questions.iter().map(|q| q.gold_sql.clone()).collect();
        return Ok(Predictions { sql, method: "gold".into(), report: serde_json::Value::Null, generations: Vec::new(), seconds: 0.0 });
    }
    if spec.method == "original" || spec.method.starts_with("rm3") || spec.method.starts_with("queries:") {
        bail!("method '{}' does not apply to the SQL dataset '{}' (a question is not SQL); available: {SQL_METHODS}", spec.method, card.name);
    }
    let tasks = Arc::new(sql_tasks(questions, &schemas(questions, db_dir)?));
    let task_of = {
        let tasks = tasks.clone();
        Arc::new(move |q: &Query| tasks.get(&q.id).cloned().expect("only questions with a schema are asked"))
    };
    let mut method = crate::methods::build(bench, spec, task_of)?;
    let asked: Vec<Query> = questions
        .iter()
        .filter(|q| tasks.contains_key(&q.index.to_string()))
        .map(|q| Query { id: q.index.to_string(), text: q.question.clone() })
        .collect();
    let start = Instant::now();
    let rewrites = method.rewrite(&asked)?;
    let seconds = start.elapsed().as_secs_f64();
    let by_id: HashMap<String, String> = rewrites.into_iter().map(|r| (r.query_id, r.text)).collect();
    // An unanswered question (no database, or no SQL in the answer) is executed as empty text,
    // which the sandbox refuses: a wrong answer, never a crash.
    let sql = questions.iter().map(|q| by_id.get(&q.index.to_string()).cloned().unwrap_or_default()).collect();
    Ok(Predictions { sql, method: method.name(), report: method.report(), generations: method.generations(), seconds })
}

/// How many answers had each format outcome (`ok`, or the strict parser's error label).
fn format_outcomes(generations: &[serde_json::Value]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for g in generations {
        *counts.entry(g["format"].as_str().unwrap_or("unknown").to_string()).or_insert(0) += 1;
    }
    counts
}

/// 1 or 0 per scored question, for paired tests between methods on the same questions.
fn correct_per_question(results: &[ExResult]) -> (Vec<String>, Vec<f64>) {
    results
        .iter()
        .filter(|r| r.verdict.scored())
        .map(|r| (r.index.to_string(), if r.verdict == harness_sql::Verdict::Correct { 1.0 } else { 0.0 }))
        .unzip()
}

/// A SQL split: its questions, the order of its difficulty levels, and its databases.
pub(crate) struct SqlSplit {
    pub questions: Vec<SqlQuestion>,
    pub levels: &'static [&'static str],
    pub db_dir: PathBuf,
}

/// The questions and databases of `split`; `db_dir` overrides where the databases are.
pub(crate) fn load_split(bench: &Bench, card: &Card, split: &str, db_dir: Option<&Path>) -> Result<SqlSplit> {
    // With db_dir the databases come from elsewhere; only the question files must be here.
    let dir = if db_dir.is_some() { bench.registry.dataset_dir(card) } else { bench.registry.require_offline(card)? };
    let split_card = card.splits.get(split).with_context(|| {
        format!("dataset '{}' has no split '{split}' (splits: {})", card.name, card.splits.keys().cloned().collect::<Vec<_>>().join(", "))
    })?;
    let questions_file = resolve_data_file(&dir, &split_card.qrels).with_context(|| format!("{} is missing from {}", split_card.qrels, dir.display()))?;
    let (questions, levels, default_db_dir): (Vec<SqlQuestion>, &'static [&'static str], PathBuf) = match card.loader {
        LoaderKind::Spider => (load_spider_questions(&questions_file)?, harness_sql::SPIDER_LEVELS, dir.join("database")),
        LoaderKind::Bird => (load_bird_questions(&questions_file)?, harness_sql::BIRD_LEVELS, dir.join("dev_databases")),
        other => bail!("loader '{}' is not a SQL loader", other.name()),
    };
    // A split whose databases ship as one verified archive (Spider train) is unpacked into the
    // cache once.
    let archive = dir.join(format!("{split}_databases.tar.gz"));
    let db_dir = match db_dir {
        Some(d) => d.to_path_buf(),
        None if archive.is_file() => harness_sql::data::unpack_databases(
            &archive,
            &dir.join(format!("{split}_databases.SHA256SUMS")),
            &bench.workspace.cache.join(&card.name).join(format!("{split}_databases")),
        )?,
        None => default_db_dir,
    };
    Ok(SqlSplit { questions, levels, db_dir })
}

pub fn run(bench: &Bench, spec: &CellSpec, card: &Card) -> Result<CellOutcome> {
    let split = spec.split.clone().or(card.default_split.clone()).context("no split given and the card has no default")?;
    let SqlSplit { questions, levels, db_dir } = load_split(bench, card, &split, spec.db_dir.as_deref())?;
    let questions = spec.limited(questions);
    let predictions = predict(bench, spec, card, &questions, &db_dir)?;
    let items: Vec<ExItem> = questions
        .iter()
        .zip(&predictions.sql)
        .map(|(q, pred)| ExItem { index: q.index, db_id: q.db_id.clone(), gold_sql: q.gold_sql.clone(), pred_sql: pred.clone(), level: q.level.clone() })
        .collect();

    let exec = ExecSettings { timeout_secs: spec.sql_timeout_secs, max_rows: MAX_ROWS, keep_distinct: false, paper_timeout_as_empty: false, threads: spec.threads };
    let run_dir = RunDir::create(&bench.workspace.runs, &format!("{}-{split}-sqlite-{}", card.name, spec.method), spec.out.as_deref(), bench.invocation.overwrite)?;
    run_dir.write_jsonl("rewrites.jsonl", &predictions.generations)?;

    let mut metrics = Vec::new();
    let mut summaries = serde_json::Map::new();
    let mut scored = 0;
    let mut notes = Vec::new();
    let mut per_question = Vec::new();
    let mut scored_ids = Vec::new();
    let start = Instant::now();
    for mode in [ExMode::Dr, ExMode::TestSuite] {
        let results = evaluate_with_progress(&items, &db_dir, &exec.options(mode)?, bench.progress)?;
        let summary = summarize(&results, levels);
        let all = summary.last().expect("summary ends with 'all'").clone();
        scored = all.scored;
        let measure = format!("ex_{}", mode.name().replace('-', "_"));
        metrics.push((measure.clone(), all.accuracy()));
        let (ids, values) = correct_per_question(&results);
        scored_ids = ids;
        per_question.push((measure, values));
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
    let execution_seconds = start.elapsed().as_secs_f64();
    // The executor is this family's retriever: its time (both modes, comparisons included) is
    // the cell's retrieval time; nothing is scored apart from it.
    let wall = super::Wall { generation: predictions.seconds, retrieval: execution_seconds, scoring: 0.0 };
    let formats = format_outcomes(&predictions.generations);
    if !formats.is_empty() {
        let listed: Vec<String> = formats.iter().map(|(k, v)| format!("{k} {v}")).collect();
        notes.push(format!("format outcomes of {} answers: {}", predictions.generations.len(), listed.join(", ")));
    }

    let row = ResultRow {
        dataset: card.name.clone(),
        split: split.clone(),
        retriever: "sqlite".into(),
        method: predictions.method.clone(),
        metrics,
        num_queries: scored,
        wall_seconds: wall.total(),
        source: "measured".into(),
        run_id: run_dir.id.clone(),
    };
    let table = run_dir.write_cell(&row, None)?;
    run_dir.write_meta(
        bench,
        serde_json::json!({
            "dataset": card.name,
            "split": split,
            "method": predictions.method,
            "method_report": predictions.report,
            "format_outcomes": formats,
            "schema": "each table's CREATE TABLE statement from the database's sqlite_master, blank-line separated, no example rows (the paper's BIRD schema; its Spider schema came from schema.sql files, which the vendored databases lack)",
            "db_dir": db_dir,
            "questions": items.len(),
            "limit": spec.limit,
            "timeout_secs": spec.sql_timeout_secs,
            "summaries": summaries,
            "timings": {"wall": wall.json(), "execution_seconds": execution_seconds, "generation_seconds": predictions.seconds},
        }),
    )?;
    let scores = Some(super::QueryScores { queries: scored_ids, measures: per_question });
    Ok(CellOutcome { row, table, run_dir: run_dir.path, notes, scores })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn question(index: usize, db_id: &str) -> SqlQuestion {
        SqlQuestion { index, db_id: db_id.into(), question: "How many?".into(), gold_sql: "SELECT 1".into(), evidence: None, level: None }
    }

    #[test]
    fn schemas_skip_missing_databases_and_name_unreadable_ones() {
        let dir = tempfile::tempdir().unwrap();
        let good = harness_sql::data::database_path(dir.path(), "shop");
        std::fs::create_dir_all(good.parent().unwrap()).unwrap();
        let conn = rusqlite::Connection::open(&good).unwrap();
        conn.execute_batch("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT);").unwrap();
        drop(conn);
        let questions = [question(1, "shop"), question(2, "absent"), question(3, "shop")];
        let found = schemas(&questions, dir.path()).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found["shop"].contains("CREATE TABLE item"), "{}", found["shop"]);
        let tasks = sql_tasks(&questions, &found);
        assert_eq!(tasks.len(), 2, "the question on the missing database is not asked");
        assert!(!tasks.contains_key("2"));

        let broken = harness_sql::data::database_path(dir.path(), "broken");
        std::fs::create_dir_all(broken.parent().unwrap()).unwrap();
        std::fs::write(&broken, b"this is not an SQLite file, only text long enough to have a header").unwrap();
        let err = schemas(&[question(1, "shop"), question(4, "broken")], dir.path()).unwrap_err();
        let message = format!("{err:#}");
        assert!(message.contains("broken.sqlite") && message.contains("'broken'"), "{message}");
    }
}
