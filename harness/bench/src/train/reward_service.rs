//! The training reward as a service: verl's reward-function arguments in (data source, the
//! model's assistant turn, the ground truth and extra info of `harness export verl`), the
//! paper's reward and its parts out, computed by the functions the training environments call
//! (`env::classic_ir_turn`, `evidence_turn`, `sql_turn`) with the same retrievers and judge.
//! `harness serve --reward` puts it behind HTTP for verl's custom reward function
//! (`python/harness_reward.py`).
use std::collections::BTreeMap;
use std::sync::Mutex;

use anyhow::{bail, Context, Result};
use harness_core::answer::AnswerFormat;
use harness_core::rewards::Answer;
use harness_datasets::beir::BeirDataset;
use harness_datasets::{Card, DrCompatNdcg, LoaderKind, RewardFamily};
use harness_retrieval::{Bm25Index, Bm25Params};
use serde::{Deserialize, Serialize};

use super::env::{classic_ir_ndcg, classic_ir_turn, evidence_turn, first_answer_rank, literature_turn, sql_outcome, sql_turn, PassageTexts, RewardRetriever, Target};
use super::{bm25_index, reward_retriever, EVIDENCE_REWARD_DEPTH};
use crate::context::Bench;
use crate::spec::CellSpec;

/// One response to reward: verl's `compute_score` arguments.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RewardItem {
    pub data_source: String,
    /// The whole assistant turn (verl does not pre-fill `<think>`).
    pub solution_str: String,
    pub ground_truth: GroundTruth,
    #[serde(default)]
    pub extra_info: ExtraInfo,
}

/// A request to the reward endpoint: a batch of items.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RewardRequest {
    pub items: Vec<RewardItem>,
}

/// `reward_model.ground_truth` of the exported parquet.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct GroundTruth {
    pub target: Vec<String>,
    #[serde(default)]
    pub score: Vec<i64>,
}

/// The parts of `extra_info` a reward reads.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ExtraInfo {
    /// Whether the prompt asked for `<think>` before `<answer>` (the answer format checked).
    #[serde(default = "reasoning_default")]
    pub reasoning: bool,
    #[serde(default)]
    pub split: Option<String>,
    #[serde(default)]
    pub db_id: Option<String>,
    /// The example's id (literature: the review whose engine limits, such as its date, apply).
    #[serde(default)]
    pub id: Option<String>,
}

fn reasoning_default() -> bool {
    true
}

impl Default for ExtraInfo {
    fn default() -> Self {
        ExtraInfo { reasoning: reasoning_default(), split: None, db_id: None, id: None }
    }
}

/// The reward of one response and its parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RewardOutcome {
    /// The paper's reward (what verl optimises); null when the item could not be scored.
    pub score: Option<f64>,
    /// The family's metric of the answer (NDCG, Hit@K, execution accuracy); 0 when malformed.
    pub metric: f64,
    /// `scored`, `malformed-tags`, `empty-answer` or `invalid` (bad JSON, wrong key, or the
    /// retriever or executor refused the answer).
    pub outcome: String,
    pub format_ok: bool,
    /// Why the item could not be scored (unknown data source, unusable ground truth).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

impl RewardOutcome {
    fn of(answer: &Answer<f64>, reward: f64) -> RewardOutcome {
        let (outcome, metric) = match answer {
            Answer::Scored(m) => ("scored", *m),
            Answer::MalformedTags => ("malformed-tags", 0.0),
            Answer::EmptyBlock => ("empty-answer", 0.0),
            Answer::Invalid => ("invalid", 0.0),
        };
        RewardOutcome { score: Some(reward), metric, outcome: outcome.into(), format_ok: outcome == "scored", error: None }
    }

    fn failed(error: String) -> RewardOutcome {
        RewardOutcome { score: None, metric: 0.0, outcome: "error".into(), format_ok: false, error: Some(error) }
    }
}

/// What a data source is rewarded with.
enum Source {
    ClassicIr { index: Bm25Index, params: Bm25Params, depth: usize, single: bool },
    /// Classic IR with the dense reward retriever (one query encoded and searched at a time).
    DenseClassicIr { retriever: Mutex<RewardRetriever<'static>>, depth: usize, single: bool },
    Evidence { index: Bm25Index, params: Bm25Params, passages: PassageTexts, hit_k: usize, squad: bool },
    /// One judge per split with databases (Spider's train and dev databases differ).
    Sql { judges: BTreeMap<String, Mutex<harness_sql::Judge>>, bird: bool },
    /// The card's engine (one search at a time) and its review tasks by id, every split.
    Literature { engine: Mutex<Box<dyn harness_literature::Engine + Send>>, tasks: BTreeMap<String, harness_literature::ReviewTask>, depth: usize },
}

/// Rewards for the data sources (cards) it was opened with.
pub struct RewardService {
    sources: BTreeMap<String, Source>,
}

impl RewardService {
    /// Opens the retrievers, judges and engines of `datasets`; classic IR searches
    /// `reward_depth` documents (the training config's `reward_depth`), evidence seeking the
    /// paper's 3,000, literature its card's depth. Classic IR retrieves with `retriever`
    /// (`bm25`, or `dense[:MODEL]` as `harness train --retriever`); DPR open-QA cards search
    /// `passages` (default: the dataset folder's psgs_w100.tsv).
    pub fn open(bench: &Bench, datasets: &[String], reward_depth: usize, retriever: &str, passages: Option<&std::path::Path>) -> Result<RewardService> {
        let mut sources = BTreeMap::new();
        for name in datasets {
            let card = bench.registry.get(name)?.clone();
            let source = open_source(bench, &card, reward_depth, retriever, passages).with_context(|| format!("opening the reward of '{name}'"))?;
            sources.insert(card.name.clone(), source);
        }
        Ok(RewardService { sources })
    }

    /// The data sources served.
    pub fn data_sources(&self) -> Vec<String> {
        self.sources.keys().cloned().collect()
    }

    /// The rewards of `items`, in order, computed on `threads` threads (each with its own
    /// searcher); an item that cannot be scored gets an error, never a guess.
    pub fn score(&self, items: &[RewardItem], threads: usize) -> Vec<RewardOutcome> {
        let threads = threads.clamp(1, items.len().max(1));
        let chunk = items.len().div_ceil(threads).max(1);
        std::thread::scope(|scope| {
            let handles: Vec<_> = items.chunks(chunk).map(|part| scope.spawn(move || self.score_part(part))).collect();
            handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|_| vec![RewardOutcome::failed("a reward worker panicked".into()); chunk])).collect()
        })
    }

    fn score_part(&self, items: &[RewardItem]) -> Vec<RewardOutcome> {
        // This thread's BM25 retriever of each data source, as a training environment holds one.
        let mut retrievers: BTreeMap<&str, RewardRetriever<'_>> = BTreeMap::new();
        items
            .iter()
            .map(|item| {
                let Some(source) = self.sources.get(&item.data_source) else {
                    return RewardOutcome::failed(format!("data_source '{}' is not served (serving: {})", item.data_source, self.data_sources().join(", ")));
                };
                let format = if item.extra_info.reasoning { AnswerFormat::Reasoning } else { AnswerFormat::Direct };
                let truth = &item.ground_truth;
                if truth.target.is_empty() {
                    return RewardOutcome::failed("ground_truth.target is empty".into());
                }
                match source {
                    Source::ClassicIr { index, params, depth, single } => {
                        let target = match classic_ir_target(truth, *single) {
                            Ok(t) => t,
                            Err(e) => return RewardOutcome::failed(e),
                        };
                        let retriever = retrievers.entry(item.data_source.as_str()).or_insert_with(|| RewardRetriever::bm25(index, *params));
                        let (answer, reward) = classic_ir_turn(&item.solution_str, format, |query| {
                            Some(classic_ir_ndcg(&retriever.search(query, *depth)?, &target, *depth))
                        });
                        RewardOutcome::of(&answer, reward)
                    }
                    Source::DenseClassicIr { retriever, depth, single } => {
                        let target = match classic_ir_target(truth, *single) {
                            Ok(t) => t,
                            Err(e) => return RewardOutcome::failed(e),
                        };
                        let (answer, reward) = classic_ir_turn(&item.solution_str, format, |query| {
                            let ids = retriever.lock().unwrap_or_else(|p| p.into_inner()).search(query, *depth)?;
                            Some(classic_ir_ndcg(&ids, &target, *depth))
                        });
                        RewardOutcome::of(&answer, reward)
                    }
                    Source::Evidence { index, params, passages, hit_k, squad } => {
                        let answers: Vec<Vec<String>> = truth.target.iter().map(|a| harness_core::answers::dpr_tokens(a)).collect();
                        let retriever = retrievers.entry(item.data_source.as_str()).or_insert_with(|| RewardRetriever::bm25(index, *params));
                        let (answer, reward) = evidence_turn(&item.solution_str, format, *squad, *hit_k, |query| {
                            first_answer_rank(&retriever.search(query, EVIDENCE_REWARD_DEPTH)?, passages, &answers)
                        });
                        RewardOutcome::of(&answer, reward)
                    }
                    Source::Sql { judges, bird } => {
                        let Some(db_id) = item.extra_info.db_id.as_deref() else {
                            return RewardOutcome::failed("extra_info.db_id is missing (SQL rewards run against the question's database)".into());
                        };
                        let split = item.extra_info.split.as_deref().unwrap_or("train");
                        let Some(judge) = judges.get(split) else {
                            return RewardOutcome::failed(format!("no databases for split '{split}' (have: {})", judges.keys().cloned().collect::<Vec<_>>().join(", ")));
                        };
                        let gold = &truth.target[0];
                        let (answer, reward) = sql_turn(&item.solution_str, format, *bird, |sql| {
                            let verdict = judge.lock().unwrap_or_else(|p| p.into_inner()).verdict(db_id, gold, sql);
                            Some(sql_outcome(verdict))
                        });
                        RewardOutcome::of(&answer, reward)
                    }
                    Source::Literature { engine, tasks, depth } => {
                        let Some(task) = item.extra_info.id.as_deref().and_then(|id| tasks.get(id)) else {
                            return RewardOutcome::failed(format!("extra_info.id {:?} is not a review task of '{}'", item.extra_info.id, item.data_source));
                        };
                        let (answer, reward) = literature_turn(&item.solution_str, format, |query| {
                            let ids = engine.lock().unwrap_or_else(|p| p.into_inner()).search(query, task, *depth).ok()?;
                            Some(harness_literature::recall_at(&ids, &truth.target, *depth))
                        });
                        RewardOutcome::of(&answer, reward)
                    }
                }
            })
            .collect()
    }
}

/// The classic-IR target of a ground truth: its first document (single-target cards), or every
/// document with its grade.
fn classic_ir_target(truth: &GroundTruth, single: bool) -> Result<Target, String> {
    if single {
        Ok(Target::Single(truth.target[0].clone()))
    } else if truth.score.len() == truth.target.len() {
        Ok(Target::Graded(truth.target.iter().cloned().zip(truth.score.iter().map(|s| *s as i32)).collect()))
    } else {
        Err(format!("ground_truth has {} targets and {} scores", truth.target.len(), truth.score.len()))
    }
}

fn open_source(bench: &Bench, card: &Card, reward_depth: usize, retriever: &str, passages: Option<&std::path::Path>) -> Result<Source> {
    Ok(match (card.task.reward, card.loader) {
        (RewardFamily::ClassicIr, LoaderKind::Beir) => {
            let dataset = BeirDataset::new(card.clone(), bench.registry.require_offline(card)?);
            let params = crate::families::beir::bm25_params(&CellSpec::default(), card)?;
            let single = card.dr_compat() == DrCompatNdcg::SingleTarget;
            let hnsw = harness_retrieval::dense::HnswParams::default();
            match crate::retrieve::RetrieverSpec::parse(retriever, params, harness_retrieval::DocFields::Flat, hnsw, &bench.workspace.default_encoder())? {
                crate::retrieve::RetrieverSpec::Bm25 { .. } => Source::ClassicIr { index: bm25_index(bench, &dataset)?, params, depth: reward_depth, single },
                spec => Source::DenseClassicIr { retriever: Mutex::new(reward_retriever(bench, &spec, &dataset, None)?), depth: reward_depth, single },
            }
        }
        (RewardFamily::Evidence, LoaderKind::Beir) => {
            let dataset = BeirDataset::new(card.clone(), bench.registry.require_offline(card)?);
            let params = crate::families::beir::bm25_params(&CellSpec::default(), card)?;
            let tokens = dataset.read_corpus()?.into_iter().map(|d| (d.id, harness_core::answers::dpr_tokens(&d.text))).collect();
            let hit_k = super::evidence_hit_k(card)?;
            Source::Evidence { index: bm25_index(bench, &dataset)?, params, passages: PassageTexts::Tokens(tokens), hit_k, squad: card.task.squad_tiers }
        }
        (RewardFamily::Evidence, LoaderKind::OpenQa) => {
            // As training: BM25 over the DPR passages file, answers looked for in the passage
            // text read by offset.
            let cell = CellSpec { passages: passages.map(std::path::Path::to_path_buf), ..CellSpec::default() };
            let (_, path) = crate::families::open_qa::locate(card, &bench.registry, &cell)?;
            let file = crate::families::open_qa::PassageFile::open_cached(&path, &bench.workspace.cache)?;
            let (index, _) = crate::families::open_qa::passage_index(bench, &path)?;
            let params = crate::families::beir::bm25_params(&CellSpec::default(), card)?;
            let hit_k = super::evidence_hit_k(card)?;
            Source::Evidence { index, params, passages: PassageTexts::File(file), hit_k, squad: card.task.squad_tiers }
        }
        (RewardFamily::Literature, LoaderKind::Review) => {
            let kind = crate::families::literature::engine_kind(None, card)?;
            let mut tasks = BTreeMap::new();
            for split in card.splits.keys() {
                for task in crate::families::literature::load_tasks(None, &bench.registry, card, Some(split))? {
                    tasks.insert(task.id.clone(), task);
                }
            }
            let (engine, _) = crate::families::literature::open_engine(kind, bench, card)?;
            Source::Literature { engine: Mutex::new(engine), tasks, depth: card.depth }
        }
        (RewardFamily::Sql, LoaderKind::Spider | LoaderKind::Bird) => {
            let timeout = std::time::Duration::from_secs_f64(crate::spec::defaults::SQL_TIMEOUT_SECS);
            let options = harness_sql::ExOptions { mode: harness_sql::ExMode::Dr, limits: harness_sql::ExecLimits { timeout, ..Default::default() }, ..Default::default() };
            let mut judges = BTreeMap::new();
            for split in card.splits.keys() {
                // A split whose databases are not here is not served (said when asked for).
                if let Ok(loaded) = crate::families::sql::load_split(bench, card, split, None) {
                    judges.insert(split.clone(), Mutex::new(harness_sql::Judge::new(&loaded.db_dir, options.clone())?));
                }
            }
            if judges.is_empty() {
                bail!("no split of '{}' has its databases here", card.name);
            }
            Source::Sql { judges, bird: card.loader == LoaderKind::Bird }
        }
        (family, loader) => bail!("the reward of '{}' ({family:?}, {loader:?} layout) is not served: classic IR, evidence seeking, SQL and literature are", card.name),
    })
}

#[cfg(test)]
mod tests {
    use super::super::env::{ClassicIrEnv, EvidenceEnv, EvidenceExample, LiteratureEnv, RewardRetriever, SqlEnv, SqlExample, Turns};
    use super::*;
    use harness_rl::trainer::Environment;

    fn bench_here(progress: &crate::progress::Silent) -> Bench<'_> {
        let settings = crate::WorkspaceSettings { search_from: std::env::current_dir().unwrap(), ..Default::default() };
        Bench::new(crate::Workspace::locate(&settings).unwrap(), crate::Invocation::default(), progress).unwrap()
    }

    /// Answers a model might give for a query (or SQL) `text`: well-formed with and without
    /// reasoning, a keyword pile, broken JSON, an empty block, no tags.
    fn turns_for(text: &str, key: &str, reasoning: bool) -> Vec<String> {
        let answer = |body: &str| if reasoning { format!("<think>\nlooking for it</think>\n<answer>\n{body}\n</answer>") } else { format!("<answer>\n{body}\n</answer>") };
        vec![
            answer(&serde_json::json!({ key: text }).to_string()),
            answer(&serde_json::json!({ key: format!("{text} evidence study results") }).to_string()),
            answer(&format!("{{\"{key}\": \"{}", text.replace('"', ""))),
            answer(""),
            text.to_string(),
        ]
    }

    /// The endpoint's rewards equal the training environments' on the same turns: 244
    /// responses over SciFact (BM25, single target), the SQuAD paragraphs (rank tiers), Spider
    /// dev (execution tiers, gold and wrong SQL) and the offline literature engine (recall tiers).
    #[test]
    fn served_rewards_equal_the_training_environments() {
        let progress = crate::progress::Silent;
        let bench = bench_here(&progress);
        let service = RewardService::open(&bench, &["scifact".into(), "squad-paragraphs".into(), "spider".into(), "literature".into()], 50, "bm25", None).unwrap();
        let text = harness_policy::PolicyText::load(&bench.workspace.default_policy()).unwrap();
        let mut compared = 0;
        // The env is given the response after its pre-filled prefix, the service the whole turn.
        let mut check = |env: &mut dyn Environment, i: usize, turn: &str, item: RewardItem, reasoning: bool| {
            let prefix = harness_baselines::prompts::assistant_prefix(reasoning);
            let Some(body) = turn.strip_prefix(prefix) else { return };
            let ids = text.encode(body).unwrap();
            assert_eq!(text.decode(&ids), body, "the tokenizer round-trips {body:?}");
            let trained = env.score(i, &ids);
            let served = &service.score(&[item], 1)[0];
            assert_eq!(served.score, Some(trained.reward), "{turn:?}: {served:?}");
            assert_eq!(served.metric, trained.metric, "{turn:?}");
            assert_eq!(served.format_ok, trained.format_ok, "{turn:?}");
            compared += 1;
        };

        let card = bench.registry.get("scifact").unwrap().clone();
        let dataset = BeirDataset::new(card.clone(), bench.registry.require_offline(&card).unwrap());
        let items = crate::train::classic_ir_items(&dataset, &card, "train", false).unwrap();
        let index = bm25_index(&bench, &dataset).unwrap();
        let params = crate::families::beir::bm25_params(&CellSpec::default(), &card).unwrap();
        for reasoning in [false, true] {
            let examples = crate::train::classic_ir_examples(&dataset, &card, "train", &text, reasoning, false).unwrap();
            let mut env = ClassicIrEnv { examples, retriever: RewardRetriever::bm25(&index, params), depth: 50, turns: Turns::new(&text, reasoning, text.eos_ids.clone()) };
            for (i, item) in items.iter().enumerate().take(12) {
                let Target::Single(doc) = &item.target else { panic!("SciFact is single-target") };
                for turn in turns_for(&item.query.text, "query", reasoning) {
                    let truth = GroundTruth { target: vec![doc.clone()], score: vec![1] };
                    let extra = ExtraInfo { reasoning, ..Default::default() };
                    check(&mut env, i, &turn, RewardItem { data_source: "scifact".into(), solution_str: turn.clone(), ground_truth: truth, extra_info: extra }, reasoning);
                }
            }
        }

        let card = bench.registry.get("squad-paragraphs").unwrap().clone();
        let dataset = BeirDataset::new(card.clone(), bench.registry.require_offline(&card).unwrap());
        let answers = dataset.read_answers().unwrap();
        let questions = crate::train::evidence_questions(&bench, &card, &crate::train::QuestionSource::Beir { dataset: &dataset, answers: &answers }, None, "dev").unwrap();
        let index = bm25_index(&bench, &dataset).unwrap();
        let params = crate::families::beir::bm25_params(&CellSpec::default(), &card).unwrap();
        let tokens = dataset.read_corpus().unwrap().into_iter().map(|d| (d.id, harness_core::answers::dpr_tokens(&d.text))).collect();
        let passages = std::rc::Rc::new(PassageTexts::Tokens(tokens));
        let task_of = crate::methods::query_task(&card, "sparse").unwrap();
        let chosen: Vec<_> = questions.into_iter().filter(|(_, a)| !a.is_empty()).take(16).collect();
        let examples = chosen
            .iter()
            .map(|(q, a)| EvidenceExample { task: task_of(q), question: q.text.clone(), answers: a.iter().map(|s| harness_core::answers::dpr_tokens(s)).collect() })
            .collect();
        let mut env = EvidenceEnv { examples, retriever: RewardRetriever::bm25(&index, params), passages, depth: EVIDENCE_REWARD_DEPTH, hit_k: 5, squad: card.task.squad_tiers, turns: Turns::new(&text, true, text.eos_ids.clone()) };
        for (i, (q, a)) in chosen.iter().enumerate() {
            for turn in turns_for(&q.text, "query", true) {
                let truth = GroundTruth { target: a.clone(), score: vec![1; a.len()] };
                check(&mut env, i, &turn, RewardItem { data_source: "squad-paragraphs".into(), solution_str: turn.clone(), ground_truth: truth, extra_info: ExtraInfo::default() }, true);
            }
        }

        let card = bench.registry.get("spider").unwrap().clone();
        let loaded = crate::families::sql::load_split(&bench, &card, "dev", None).unwrap();
        let questions: Vec<_> = loaded.questions.into_iter().take(12).collect();
        let schemas = crate::families::sql::schemas(&questions, &loaded.db_dir).unwrap();
        let tasks = crate::families::sql::sql_tasks(&questions, &schemas);
        let examples = questions.iter().map(|q| SqlExample { task: tasks[&q.index.to_string()].clone(), db_id: q.db_id.clone(), gold_sql: q.gold_sql.clone() }).collect();
        let options = harness_sql::ExOptions { mode: harness_sql::ExMode::Dr, ..Default::default() };
        let mut env = SqlEnv { examples, judge: harness_sql::Judge::new(&loaded.db_dir, options).unwrap(), bird: false, turns: Turns::new(&text, false, text.eos_ids.clone()) };
        for (i, q) in questions.iter().enumerate() {
            let wrong = "SELECT count(*) FROM sqlite_master";
            for turn in turns_for(&q.gold_sql, "sql", false).into_iter().chain(turns_for(wrong, "sql", false).into_iter().take(1)) {
                let truth = GroundTruth { target: vec![q.gold_sql.clone()], score: Vec::new() };
                let extra = ExtraInfo { reasoning: false, split: Some("dev".into()), db_id: Some(q.db_id.clone()), id: None };
                check(&mut env, i, &turn, RewardItem { data_source: "spider".into(), solution_str: turn.clone(), ground_truth: truth, extra_info: extra }, false);
            }
        }
        let card = bench.registry.get("literature").unwrap().clone();
        let kind = crate::families::literature::engine_kind(None, &card).unwrap();
        let split = card.splits.keys().next().unwrap().clone();
        let reviews: Vec<_> = crate::families::literature::load_tasks(None, &bench.registry, &card, Some(&split)).unwrap().into_iter().take(6).collect();
        let (engine, _) = crate::families::literature::open_engine(kind, &bench, &card).unwrap();
        let mut env = LiteratureEnv { prompts: vec![Vec::new(); reviews.len()], tasks: reviews.clone(), engine, depth: card.depth, turns: Turns::new(&text, true, text.eos_ids.clone()) };
        let mut literature_recall = 0.0;
        for (i, review) in reviews.iter().enumerate() {
            for turn in turns_for(&crate::families::literature::original_text(review), "query", true) {
                let truth = GroundTruth { target: review.targets.clone(), score: vec![1; review.targets.len()] };
                let extra = ExtraInfo { id: Some(review.id.clone()), ..Default::default() };
                let item = RewardItem { data_source: "literature".into(), solution_str: turn.clone(), ground_truth: truth, extra_info: extra };
                literature_recall += service.score(std::slice::from_ref(&item), 1)[0].metric;
                check(&mut env, i, &turn, item, true);
            }
        }
        assert!(literature_recall > 0.0, "no literature answer found a target: the comparison would be of zeros");
        // Turns without the pre-filled prefix (no tags at all) cannot be given to an env as a
        // response; every other turn was compared.
        assert!(compared >= 220, "{compared} responses compared");

        // Gold SQL earns the paper's 1.1; an unknown data source is an error, not a reward.
        let q = &questions[0];
        let gold = RewardItem {
            data_source: "spider".into(),
            solution_str: format!("<answer>\n{}\n</answer>", serde_json::json!({"sql": q.gold_sql})),
            ground_truth: GroundTruth { target: vec![q.gold_sql.clone()], score: Vec::new() },
            extra_info: ExtraInfo { reasoning: false, split: Some("dev".into()), db_id: Some(q.db_id.clone()), id: None },
        };
        let mut unknown = gold.clone();
        unknown.data_source = "nfcorpus".into();
        let out = service.score(&[gold, unknown], 2);
        assert_eq!((out[0].score, out[0].metric), (Some(1.1), 1.0));
        assert!(out[1].score.is_none() && out[1].error.as_deref().is_some_and(|e| e.contains("not served")), "{:?}", out[1]);
    }

    /// A DPR open-QA card served over a passages file: the SQuAD paragraphs written as DPR's
    /// psgs_w100.tsv give the rewards the same paragraphs give as a BEIR-layout corpus.
    #[test]
    fn dpr_passages_are_served_as_their_beir_twin() {
        use std::io::Write;
        let progress = crate::progress::Silent;
        let bench = bench_here(&progress);
        let card = bench.registry.get("squad-paragraphs").unwrap().clone();
        let dataset = BeirDataset::new(card.clone(), bench.registry.require_offline(&card).unwrap());
        let tmp = tempfile::tempdir().unwrap();
        let tsv = tmp.path().join("psgs.tsv");
        let mut out = std::io::BufWriter::new(std::fs::File::create(&tsv).unwrap());
        writeln!(out, "id\ttext\ttitle").unwrap();
        for d in dataset.read_corpus().unwrap() {
            let clean = |t: &str| t.replace(['\t', '\n', '\r'], " ");
            writeln!(out, "{}\t\"{}\"\t{}", d.id, clean(&d.text).replace('"', "\"\""), clean(&d.title)).unwrap();
        }
        drop(out);
        let service = RewardService::open(&bench, &["squad".into(), "squad-paragraphs".into()], 50, "bm25", Some(&tsv)).unwrap();
        let answers = dataset.read_answers().unwrap();
        let questions = crate::train::evidence_questions(&bench, &card, &crate::train::QuestionSource::Beir { dataset: &dataset, answers: &answers }, None, "dev").unwrap();
        let mut hits = 0.0;
        for (q, a) in questions.into_iter().filter(|(_, a)| !a.is_empty()).take(20) {
            for turn in turns_for(&q.text, "query", true) {
                let item = |source: &str| RewardItem {
                    data_source: source.into(),
                    solution_str: turn.clone(),
                    ground_truth: GroundTruth { target: a.clone(), score: vec![1; a.len()] },
                    extra_info: ExtraInfo::default(),
                };
                let out = service.score(&[item("squad"), item("squad-paragraphs")], 2);
                assert!(out[0].score.is_some(), "{:?}", out[0]);
                assert_eq!(out[0], out[1], "{turn:?}");
                hits += out[0].metric;
            }
        }
        assert!(hits > 0.0, "no answer was found: the comparison would be of misses only");
    }
}
