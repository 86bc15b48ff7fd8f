//! verl interop: a dataset split written as the parquet file verl's PPO trainer reads
//! (`data.train_files`), for every task family, from the same examples `harness train` builds.
//!
//! One row per training example, with verl's columns:
//! - `data_source`: the card's name (the key a reward function routes on);
//! - `prompt`: the chat messages (system, user) in the harness's wording; verl applies the
//!   model's chat template with the generation prompt. The harness's own trainer pre-fills the
//!   assistant turn with `<think>\n` (or `<answer>\n` without reasoning); verl does not, so the
//!   response verl scores is the whole assistant turn;
//! - `ability`: `retrieval` or `sql_generation`;
//! - `reward_model`: `{style: "rule", ground_truth: {target, score}}`: the documents and their
//!   relevance (classic IR; one row per qrels row for single-target datasets, as the paper),
//!   the included studies (literature), the answer strings (evidence seeking), the gold SQL
//!   (SQL; `score` empty);
//! - `extra_info`: `{split, index, id, question, db_id, reasoning}`: `index` is the example's
//!   position in the split as `harness train` numbers it, `id` the query / review / question id.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use harness_baselines::Task;
use harness_datasets::beir::BeirDataset;
use harness_datasets::{Card, LoaderKind, RewardFamily};
use polars::prelude::*;

use super::{classic_ir_items, evidence_questions, QuestionSource, Target};
use crate::context::Bench;
use crate::families::literature;

/// What to export.
#[derive(Debug, Clone)]
pub struct VerlSpec {
    pub dataset: String,
    pub split: String,
    /// Prompts that ask for reasoning in `<think>` before the answer (the paper's default).
    pub reasoning: bool,
    /// Classic IR: `bm25` or `dense` (the prompt names the retriever kind).
    pub retriever: String,
    /// Literature: the engine whose query language the prompt asks for (default: the card's).
    pub engine: Option<String>,
    pub out: PathBuf,
}

/// What an export wrote.
#[derive(Debug)]
pub struct VerlExport {
    pub path: PathBuf,
    pub rows: usize,
    pub data_source: String,
    pub columns: Vec<String>,
}

/// One example, family-neutral.
pub(super) struct Row {
    id: String,
    question: String,
    pub(super) task: Task,
    target: Vec<String>,
    score: Vec<i64>,
    db_id: Option<String>,
}

/// The examples of a split, in `harness train`'s order.
pub(super) fn rows(bench: &Bench, card: &Card, spec: &VerlSpec) -> Result<Vec<Row>> {
    let split = spec.split.as_str();
    Ok(match (card.task.reward, card.loader) {
        (RewardFamily::ClassicIr, LoaderKind::Beir) => {
            let dense = match spec.retriever.split(':').next() {
                Some("bm25") => false,
                Some("dense") => true,
                _ => bail!("--retriever {}: a verl export names bm25 or dense in its prompts", spec.retriever),
            };
            let dataset = BeirDataset::new(card.clone(), bench.registry.require_offline(card)?);
            classic_ir_items(&dataset, card, split, dense)?
                .into_iter()
                .map(|item| {
                    let (target, score) = match item.target {
                        Target::Single(doc) => (vec![doc], vec![1]),
                        Target::Graded(rows) => rows.into_iter().map(|(doc, rel)| (doc, i64::from(rel))).unzip(),
                    };
                    Row { id: item.query.id, question: item.query.text, task: item.task, target, score, db_id: None }
                })
                .collect()
        }
        (RewardFamily::Literature, LoaderKind::Review) => {
            let kind = literature::engine_kind(spec.engine.as_deref(), card)?;
            literature::load_tasks(None, &bench.registry, card, Some(split))?
                .into_iter()
                .map(|t| Row {
                    task: literature::prompt_task(&t, kind.query_language()),
                    question: literature::original_text(&t),
                    id: t.id,
                    score: vec![1; t.targets.len()],
                    target: t.targets,
                    db_id: None,
                })
                .collect()
        }
        (RewardFamily::Evidence, LoaderKind::Beir | LoaderKind::OpenQa) => {
            let task_of = crate::methods::query_task(card, "sparse")?;
            let questions = if card.loader == LoaderKind::OpenQa {
                let (questions, _) = crate::families::open_qa::locate(card, &bench.registry, &crate::spec::CellSpec::default())?;
                evidence_questions(bench, card, &QuestionSource::Dpr { card_questions: &questions }, None, split)?
            } else {
                let dataset = BeirDataset::new(card.clone(), bench.registry.require_offline(card)?);
                let answers = dataset.read_answers()?;
                evidence_questions(bench, card, &QuestionSource::Beir { dataset: &dataset, answers: &answers }, None, split)?
            };
            // As training: questions without answer strings cannot be rewarded.
            questions
                .into_iter()
                .filter(|(_, answers)| !answers.is_empty())
                .map(|(q, answers)| Row { task: task_of(&q), id: q.id, question: q.text, score: vec![1; answers.len()], target: answers, db_id: None })
                .collect()
        }
        (RewardFamily::Sql, LoaderKind::Spider | LoaderKind::Bird) => {
            let loaded = crate::families::sql::load_split(bench, card, split, None)?;
            let schemas = crate::families::sql::schemas(&loaded.questions, &loaded.db_dir)?;
            let tasks = crate::families::sql::sql_tasks(&loaded.questions, &schemas);
            // As training: questions whose database is missing are left out.
            loaded
                .questions
                .into_iter()
                .filter_map(|q| {
                    let task = tasks.get(&q.index.to_string())?.clone();
                    Some(Row { id: q.index.to_string(), question: q.question, task, target: vec![q.gold_sql], score: Vec::new(), db_id: Some(q.db_id) })
                })
                .collect()
        }
        (family, loader) => bail!("dataset '{}' ({family:?} reward, {loader:?} layout) has no training examples to export", card.name),
    })
}

/// Writes `spec.split` of `spec.dataset` as verl's parquet at `spec.out` (written whole, then
/// renamed into place).
pub fn export_verl(bench: &Bench, spec: &VerlSpec) -> Result<VerlExport> {
    let card = bench.registry.get(&spec.dataset)?.clone();
    let rows = rows(bench, &card, spec)?;
    if rows.is_empty() {
        bail!("split '{}' of {} has no examples to export", spec.split, card.name);
    }
    let prompts = harness_baselines::Prompts::new();
    let system = harness_baselines::prompts::system_message(spec.reasoning);
    let users = rows.iter().map(|r| prompts.user_message(&r.task, spec.reasoning).with_context(|| format!("the prompt of {}", r.id))).collect::<Result<Vec<_>>>()?;
    let n = rows.len();
    let ability = if card.task.reward == RewardFamily::Sql { "sql_generation" } else { "retrieval" };

    let messages: ListChunked = users
        .iter()
        .map(|user| -> PolarsResult<Option<Series>> {
            let role = Series::new("role".into(), ["system", "user"]);
            let content = Series::new("content".into(), [system, user.as_str()]);
            Ok(Some(StructChunked::from_series("message".into(), 2, [role, content].iter())?.into_series()))
        })
        .collect::<PolarsResult<_>>()?;
    let list = |name: &str, values: Vec<Series>| -> Series {
        let mut chunked: ListChunked = values.into_iter().map(Some).collect();
        chunked.rename(name.into());
        chunked.into_series()
    };
    let target = list("target", rows.iter().map(|r| Series::new("".into(), r.target.clone())).collect());
    let score = list("score", rows.iter().map(|r| Series::new("".into(), r.score.clone())).collect::<Vec<_>>());
    // An empty list has no element type: give SQL's empty scores the integer type.
    let score = score.cast(&DataType::List(Box::new(DataType::Int64)))?;
    let ground_truth = StructChunked::from_series("ground_truth".into(), n, [target, score].iter())?.into_series();
    let style = Series::new("style".into(), vec!["rule"; n]);
    let reward_model = StructChunked::from_series("reward_model".into(), n, [style, ground_truth].iter())?.into_series();
    let extra = [
        Series::new("split".into(), vec![spec.split.as_str(); n]),
        Series::new("index".into(), (0..n as i64).collect::<Vec<_>>()),
        Series::new("id".into(), rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>()),
        Series::new("question".into(), rows.iter().map(|r| r.question.as_str()).collect::<Vec<_>>()),
        Series::new("db_id".into(), rows.iter().map(|r| r.db_id.as_deref()).collect::<Vec<_>>()),
        Series::new("reasoning".into(), vec![spec.reasoning; n]),
    ];
    let extra_info = StructChunked::from_series("extra_info".into(), n, extra.iter())?.into_series();
    let mut prompt = messages.into_series();
    prompt.rename("prompt".into());
    let mut df = DataFrame::new_infer_height(vec![
        Series::new("data_source".into(), vec![card.name.as_str(); n]).into(),
        prompt.into(),
        Series::new("ability".into(), vec![ability; n]).into(),
        reward_model.into(),
        extra_info.into(),
    ])?;
    let columns = df.get_column_names().iter().map(|c| c.to_string()).collect();
    write_parquet(&spec.out, &mut df)?;
    Ok(VerlExport { path: spec.out.clone(), rows: n, data_source: card.name.clone(), columns })
}

fn write_parquet(path: &Path, df: &mut DataFrame) -> Result<()> {
    let to_io = |e: PolarsError| std::io::Error::other(e.to_string());
    harness_core::io::write_atomically(path, |w| ParquetWriter::new(w).finish(df).map(|_| ()).map_err(to_io))?;
    Ok(())
}
