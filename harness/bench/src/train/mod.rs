//! Training: DeepRetrieval's PPO (or GRPO) with the retriever's own metric as the reward. The
//! card's reward family picks the environment (classic IR: BM25 or dense + the paper's NDCG;
//! literature: the engine's recall tiers; evidence seeking: the rank tiers of the first
//! answer-bearing passage; SQL: execution tiers in the sandbox); one loop serves them all: run
//! folder, meta, resume, the JSONL log and progress, checkpoints, curves.
mod env;
mod plot;
mod reward_service;
mod plan;
mod verl;
pub use plan::plan_text;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use harness_datasets::beir::BeirDataset;
use harness_datasets::{Card, DrCompatNdcg, LoaderKind, RewardFamily};
use harness_policy::{parse_device, PolicyText};
use harness_retrieval::{Bm25Index, DocFields, Document, IndexSettings};
use harness_rl::trainer::{Environment, RunConfig, StepLog, Trainer};

pub use plot::plot;
pub use reward_service::{ExtraInfo, GroundTruth, RewardItem, RewardOutcome, RewardRequest, RewardService};
pub use verl::{export_verl, VerlExport, VerlSpec};

use crate::families::literature;
use crate::run_dir::{new_run_id, RunDir};
use crate::context::Bench;
use crate::spec::CellSpec;
use env::{prompt_ids, ClassicIrEnv, EvidenceEnv, EvidenceExample, Example, LiteratureEnv, RewardRetriever, SqlEnv, SqlExample, Target, Turns};

/// The paper trains evidence seeking on the top 3,000 passages (its rank tiers end there;
/// evaluation uses 100).
const EVIDENCE_REWARD_DEPTH: usize = 3000;

/// Defaults of a training run (the CLI's flag defaults point here).
pub mod defaults {
    pub const DATASET: &str = "scifact";
    pub const SPLIT: &str = "train";
    pub const RETRIEVER: &str = "bm25";
    pub const CONFIG: &str = "cpu-small";
}

/// A training run.
#[derive(Debug, Clone)]
pub struct TrainSpec {
    pub dataset: String,
    pub split: String,
    /// The reward's retriever: `bm25`, or `dense[:MODEL]` for classic IR.
    pub retriever: String,
    /// Initial policy folder (default: the workspace's SmolLM2-135M-Instruct).
    pub policy: Option<PathBuf>,
    /// `paper`, `cpu-small`, or a TOML file with `[run]` and `[ppo]` tables. `None`: the
    /// checkpoint's own when resuming, else `cpu-small`.
    pub config: Option<String>,
    /// `auto`, `cpu`, `cuda`, `cuda:N`.
    pub device: String,
    /// Continue from a checkpoint folder (`.../checkpoints/step-N`).
    pub resume: Option<PathBuf>,
    /// Overrides the config's total steps.
    pub steps: Option<u64>,
    pub out: Option<PathBuf>,
    /// Stop (with a checkpoint) once this many minutes of training have passed.
    pub max_minutes: Option<f64>,
    /// Literature: the engine (default: the card's).
    pub engine: Option<String>,
    /// Literature: review tasks in the paper's JSONL format.
    pub tasks: Option<PathBuf>,
    /// The held-out split evaluated every `eval_every` steps (greedy answers), whose metric
    /// picks `best/`; default: the card's `dev` split when it has one. `best/` is chosen on
    /// it, so it must not be the split a result is reported on.
    pub eval_split: Option<String>,
    /// Only the first N items of the held-out split (a quick look at a large dev set).
    pub eval_limit: Option<usize>,
    /// Open-QA datasets: the DPR passages file (uncompressed, for lookups by offset).
    pub passages: Option<PathBuf>,
    /// Open-QA datasets: the training questions in the DPR layout (`{"question", "answers"}`
    /// lines) instead of the card's file of the split.
    pub questions: Option<PathBuf>,
}

impl Default for TrainSpec {
    fn default() -> Self {
        TrainSpec {
            dataset: defaults::DATASET.into(),
            split: defaults::SPLIT.into(),
            retriever: defaults::RETRIEVER.into(),
            policy: None,
            config: None,
            device: crate::spec::defaults::DEVICE.into(),
            resume: None,
            steps: None,
            out: None,
            max_minutes: None,
            engine: None,
            tasks: None,
            eval_split: None,
            eval_limit: None,
            passages: None,
            questions: None,
        }
    }
}

/// What a training run left.
pub struct TrainOutcome {
    pub steps: u64,
    pub out: PathBuf,
    /// Set when the `max_minutes` budget stopped the run early.
    pub stopped_early: bool,
}

impl TrainOutcome {
    pub fn log(&self) -> PathBuf {
        self.out.join("log.jsonl")
    }
    pub fn curves(&self) -> PathBuf {
        self.out.join("curves.svg")
    }
    pub fn checkpoints(&self) -> PathBuf {
        self.out.join("checkpoints")
    }
}

/// The policy model: the trainer on the run's device, and the folder's text side (tokenizer,
/// chat template, stop ids) read once without the weights.
struct Policy {
    dir: PathBuf,
    device: tch::Device,
    trainer: Trainer,
    text: PolicyText,
}

fn load_policy(bench: &Bench, spec: &TrainSpec, config: &RunConfig) -> Result<Policy> {
    // A verl checkpoint (global_step_N) starts from its merged Hugging Face folder.
    let dir = harness_policy::resolve_model_dir(&spec.policy.clone().unwrap_or_else(|| bench.workspace.default_policy()))?;
    let device = parse_device(&spec.device)?;
    let trainer = Trainer::from_model_dir(&dir, device, config.ppo.clone(), config.lora)?;
    let text = PolicyText::load(&dir)?;
    Ok(Policy { dir, device, trainer, text })
}

/// The run's settings. Resuming, a checkpoint's own settings are used, and a `--config` or a
/// dataset, split or policy that contradicts the run being resumed is an error (silently
/// continuing a run under other settings is not a resumption).
fn resolve_config(spec: &TrainSpec) -> Result<RunConfig> {
    let Some(ckpt) = &spec.resume else {
        return Ok(RunConfig::load(spec.config.as_deref().unwrap_or(defaults::CONFIG))?);
    };
    let state_path = ckpt.join("trainer_state.json");
    let state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&state_path).with_context(|| format!("reading {}", state_path.display()))?)
        .with_context(|| format!("{}", state_path.display()))?;
    // The run folder's meta.json holds the whole config and what the run trained on; the
    // checkpoint itself holds the PPO settings.
    let meta_path = ckpt.parent().and_then(Path::parent).map(|run| run.join("meta.json")).filter(|m| m.is_file());
    let meta: Option<serde_json::Value> = match &meta_path {
        Some(p) => Some(serde_json::from_str(&std::fs::read_to_string(p)?).with_context(|| format!("{}", p.display()))?),
        None => None,
    };
    let run_config: Option<RunConfig> = meta.as_ref().and_then(|m| serde_json::from_value(m["config"].clone()).ok());
    let config = match (&spec.config, &run_config) {
        (Some(name), _) => RunConfig::load(name)?,
        (None, Some(saved)) => saved.clone(),
        (None, None) => bail!("{}: the run's meta.json (with its config) is missing, so its settings are unknown: pass --config", ckpt.display()),
    };
    if let Some(name) = &spec.config {
        let asked = serde_json::to_value(&config)?;
        let differ = match &run_config {
            Some(saved) => differing_fields("", &serde_json::to_value(saved)?, &asked),
            None => differing_fields("ppo", &state["config"], &asked["ppo"]),
        };
        if !differ.is_empty() {
            bail!(
                "--config {name} contradicts the checkpoint {} ({}); leave --config out to continue with the run's settings",
                ckpt.display(),
                differ.join(", ")
            );
        }
    }
    if let Some(meta) = &meta {
        for (field, flag, asked) in [("dataset", "--dataset", spec.dataset.as_str()), ("split", "--split", spec.split.as_str())] {
            if let Some(was) = meta[field].as_str().filter(|was| *was != asked) {
                bail!("the run being resumed trained on {field} '{was}', not '{asked}': pass {flag} {was}");
            }
        }
    }
    Ok(config)
}

/// Paths of the values that differ between two JSON trees (`ppo.actor_lr: 1e-6 vs 2e-6`).
fn differing_fields(prefix: &str, a: &serde_json::Value, b: &serde_json::Value) -> Vec<String> {
    match (a, b) {
        (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter()
                .flat_map(|k| {
                    let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    differing_fields(&path, x.get(k).unwrap_or(&serde_json::Value::Null), y.get(k).unwrap_or(&serde_json::Value::Null))
                })
                .collect()
        }
        _ if a == b => Vec::new(),
        _ => vec![format!("{prefix}: {a} in the checkpoint, {b} asked")],
    }
}

/// Trains as `spec` says.
pub fn train(bench: &Bench, spec: &TrainSpec) -> Result<TrainOutcome> {
    let config = resolve_config(spec)?;
    let total_steps = spec.steps.unwrap_or(config.run.total_steps);
    let card = bench.registry.get(&spec.dataset)?.clone();
    let classic = matches!((card.task.reward, card.loader), (RewardFamily::ClassicIr, LoaderKind::Beir));
    if spec.retriever != "bm25" && !classic {
        bail!("--retriever {} applies to classic-IR datasets; '{}' is trained with its own retriever, engine or executor", spec.retriever, card.name);
    }
    match (card.task.reward, card.loader) {
        (RewardFamily::ClassicIr, LoaderKind::Beir) => train_classic_ir(bench, spec, &config, total_steps, &card),
        (RewardFamily::Literature, LoaderKind::Review) => train_literature(bench, spec, &config, total_steps, &card),
        (RewardFamily::Evidence, LoaderKind::Beir | LoaderKind::OpenQa) => train_evidence(bench, spec, &config, total_steps, &card),
        (RewardFamily::Sql, LoaderKind::Spider | LoaderKind::Bird) => train_sql(bench, spec, &config, total_steps, &card),
        (reward, loader) => bail!(
            "harness train covers classic IR and evidence seeking on BEIR-layout and DPR open-QA datasets, literature on review datasets and SQL on Spider/BIRD; '{}' has the {reward:?} reward with the '{}' loader",
            card.name,
            loader.name()
        ),
    }
}

/// The reward's retriever over a BEIR-layout corpus: BM25 over `index`, or a dense encoder
/// with the corpus's cached passage embeddings.
pub(super) fn reward_retriever<'a>(bench: &Bench, retriever: &crate::retrieve::RetrieverSpec, dataset: &BeirDataset, index: Option<&'a Bm25Index>) -> Result<RewardRetriever<'a>> {
    use crate::retrieve::RetrieverSpec;
    match retriever {
        RetrieverSpec::Bm25 { params, .. } => {
            let index = index.context("a BM25 reward needs its index")?;
            Ok(RewardRetriever::bm25(index, *params))
        }
        RetrieverSpec::Dense { model, hnsw: None } => {
            let docs = dataset.read_corpus()?;
            let passages: Vec<String> = docs.iter().map(|d| if d.title.is_empty() { d.text.clone() } else { format!("{} {}", d.title, d.text) }).collect();
            let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
            let mut encoder = harness_retrieval::dense::Encoder::load_with_runtime(model, threads, &bench.workspace.onnxruntime)?;
            let embeddings = harness_retrieval::dense::passage_embeddings(&bench.workspace.cache, &mut encoder, &dataset.corpus_checksum()?, &passages, 32)?;
            Ok(RewardRetriever::Dense { encoder: Box::new(encoder), embeddings, doc_ids: docs.into_iter().map(|d| d.id).collect() })
        }
        RetrieverSpec::Dense { hnsw: Some(_), .. } => bail!("harness train rewards with bm25 or dense (exact search); hnsw is for evaluation"),
    }
}

/// The BM25 index of a BEIR-layout corpus (built once into the cache).
fn bm25_index(bench: &Bench, dataset: &BeirDataset) -> Result<Bm25Index> {
    let checksum = dataset.corpus_checksum()?;
    Ok(Bm25Index::open_or_build(&bench.workspace.cache, &checksum, IndexSettings { fields: DocFields::Flat, ..Default::default() }, || {
        let docs = dataset.read_corpus().map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
        let n = docs.len();
        Ok((n, docs.into_iter().map(|d| Ok(Document { id: d.id, title: d.title, text: d.text }))))
    })?)
}

/// `items` cut to the spec's `eval_limit`.
fn eval_limited<T>(spec: &TrainSpec, mut items: Vec<T>) -> Vec<T> {
    if let Some(n) = spec.eval_limit {
        items.truncate(n);
    }
    items
}

/// A classic-IR example before tokenization: the query, its prompt task and its target.
pub(crate) struct ClassicIrItem {
    pub(crate) query: harness_core::Query,
    pub(crate) task: harness_baselines::Task,
    pub(crate) target: Target,
}

/// The examples of a classic-IR split in the card's wording: one per qrels row for
/// single-target datasets (the paper's SciFact training data), else one per query with its
/// graded rows, in qrels file order.
pub(crate) fn classic_ir_items(dataset: &BeirDataset, card: &Card, split: &str, dense: bool) -> Result<Vec<ClassicIrItem>> {
    let (queries, qrels) = dataset.split_queries(split)?;
    let task_of = crate::methods::query_task(card, if dense { "dense" } else { "sparse" })?;
    let text_of: std::collections::HashMap<&str, &harness_core::Query> = queries.iter().map(|q| (q.id.as_str(), q)).collect();
    let single = card.dr_compat() == DrCompatNdcg::SingleTarget;
    let mut items = Vec::new();
    for (qid, rows) in &qrels.rows_in_file_order {
        let Some(query) = text_of.get(qid.as_str()) else { continue };
        let item = |target| ClassicIrItem { query: (*query).clone(), task: task_of(query), target };
        if single {
            items.extend(rows.iter().map(|(doc, _)| item(Target::Single(doc.clone()))));
        } else {
            items.push(item(Target::Graded(rows.clone())));
        }
    }
    if items.is_empty() {
        bail!("split '{split}' of {} has no judged queries", card.name);
    }
    Ok(items)
}

/// The classic-IR items of a split as prompts in the model's chat format, assistant turn
/// pre-filled (a query with several single-target rows is tokenized once).
fn classic_ir_examples(dataset: &BeirDataset, card: &Card, split: &str, text: &PolicyText, reasoning: bool, dense: bool) -> Result<Vec<Example>> {
    let prompts = harness_baselines::Prompts::new();
    let mut tokenized: std::collections::HashMap<String, Vec<i64>> = std::collections::HashMap::new();
    classic_ir_items(dataset, card, split, dense)?
        .into_iter()
        .map(|item| {
            let prompt_ids = match tokenized.get(&item.query.id) {
                Some(ids) => ids.clone(),
                None => {
                    let ids = prompt_ids(text, &prompts, &item.task, reasoning)?;
                    tokenized.insert(item.query.id.clone(), ids.clone());
                    ids
                }
            };
            Ok(Example { prompt_ids, original: item.query.text, target: item.target })
        })
        .collect()
}

/// The held-out split: the one asked for, else the card's `dev` when it has one.
fn eval_split(spec: &TrainSpec, card: &Card) -> Option<String> {
    spec.eval_split.clone().or_else(|| card.splits.contains_key("dev").then(|| "dev".to_string())).filter(|s| *s != spec.split)
}

fn train_classic_ir(bench: &Bench, spec: &TrainSpec, config: &RunConfig, total_steps: u64, card: &Card) -> Result<TrainOutcome> {
    let dir = bench.registry.require_offline(card)?;
    let dataset = BeirDataset::new(card.clone(), dir);
    let Policy { dir: policy_dir, device, mut trainer, text } = load_policy(bench, spec, config)?;
    let reasoning = config.run.reasoning;
    let params = crate::families::beir::bm25_params(&CellSpec::default(), card)?;
    let hnsw = harness_retrieval::dense::HnswParams::default();
    let retriever = crate::retrieve::RetrieverSpec::parse(&spec.retriever, params, DocFields::Flat, hnsw, &bench.workspace.default_encoder())?;
    let dense = matches!(retriever, crate::retrieve::RetrieverSpec::Dense { .. });
    let examples = classic_ir_examples(&dataset, card, &spec.split, &text, reasoning, dense)?;
    let held_out = match (config.run.eval_every, eval_split(spec, card)) {
        (0, _) | (_, None) => None,
        (_, Some(split)) => Some((eval_limited(spec, classic_ir_examples(&dataset, card, &split, &text, reasoning, dense)?), split)),
    };
    let single = card.dr_compat() == DrCompatNdcg::SingleTarget;

    let index = if dense { None } else { Some(bm25_index(bench, &dataset)?) };
    let env_of = |examples: Vec<Example>| -> Result<ClassicIrEnv<'_>> {
        Ok(ClassicIrEnv {
            examples,
            retriever: reward_retriever(bench, &retriever, &dataset, index.as_ref())?,
            depth: config.run.reward_depth,
            turns: Turns::new(&text, reasoning, trainer.eos_ids.clone()),
        })
    };
    let mut env = env_of(examples)?;
    let mut eval_env = held_out.map(|(examples, split)| env_of(examples).map(|e| (split, e))).transpose()?;
    let details = serde_json::json!({
        "retriever": if dense {
            serde_json::json!({"name": retriever.label(), "search": "exact inner product over the cached passage embeddings; queries encoded per rollout", "reward_depth": config.run.reward_depth})
        } else {
            serde_json::json!({"name": retriever.label(), "k1": params.k1, "b": params.b, "reward_depth": config.run.reward_depth})
        },
        "reward": "harness_core::rewards::classic_ir (0.1 + NDCG when > 0; 0 well-formed; -2 malformed)",
        "ndcg": if single { "paper single-target (one example per qrels row)" } else { "paper graded (qrels-order ideal)" },
    });
    let eval = eval_env.as_mut().map(|(split, e)| (split.clone(), e as &mut dyn Environment));
    train_loop(bench, spec, config, total_steps, &card.name, &policy_dir, device, &mut trainer, &mut env, eval, details)
}

/// K of an evidence-seeking card's `hit.K` paper metric (the Hit@K its training logs).
pub(crate) fn evidence_hit_k(card: &Card) -> Result<usize> {
    card.paper_metric
        .strip_prefix("hit.")
        .and_then(|k| k.parse().ok())
        .with_context(|| format!("card '{}': an evidence-seeking card's paper_metric is hit.K (got '{}')", card.name, card.paper_metric))
}

/// The corpus an evidence-seeking reward searches: a BEIR-layout paragraph corpus (held in
/// memory) or a DPR passages file (indexed once, texts read by offset).
enum EvidenceCorpus {
    Beir(BeirDataset),
    Dpr { questions: PathBuf, passages: PathBuf, file: crate::families::open_qa::PassageFile },
}

/// Where the questions of an evidence-seeking split come from.
pub(crate) enum QuestionSource<'a> {
    /// A BEIR-layout split's queries with the answer strings of its queries file.
    Beir { dataset: &'a BeirDataset, answers: &'a std::collections::BTreeMap<String, Vec<String>> },
    /// DPR question files: the card's file of the split, else its default questions file.
    Dpr { card_questions: &'a Path },
}

/// (question, answer strings) of an evidence-seeking split; for DPR cards, `questions` replaces
/// the split's file.
pub(crate) fn evidence_questions(bench: &Bench, card: &Card, source: &QuestionSource<'_>, questions: Option<&Path>, split: &str) -> Result<Vec<(harness_core::Query, Vec<String>)>> {
    match source {
        QuestionSource::Beir { dataset, answers } => {
            let (queries, _) = dataset.split_queries(split)?;
            Ok(queries.into_iter().filter_map(|q| answers.get(&q.id).cloned().map(|a| (q, a))).collect())
        }
        QuestionSource::Dpr { card_questions } => {
            let path = match (questions, card.splits.get(split)) {
                (Some(file), _) => file.to_path_buf(),
                (None, Some(s)) => harness_datasets::resolve_data_file(&bench.registry.dataset_dir(card), &s.qrels).unwrap_or_else(|| card_questions.to_path_buf()),
                (None, None) => bail!("dataset '{}' has no split '{split}' (pass its questions with --questions FILE)", card.name),
            };
            Ok(crate::families::open_qa::read_questions(&path)?.into_iter().map(|q| (harness_core::Query { id: q.id, text: q.text }, q.answers)).collect())
        }
    }
}

fn train_evidence(bench: &Bench, spec: &TrainSpec, config: &RunConfig, total_steps: u64, card: &Card) -> Result<TrainOutcome> {
    let corpus = match card.loader {
        LoaderKind::OpenQa => {
            let cell = CellSpec { passages: spec.passages.clone(), ..CellSpec::default() };
            let (questions, passages) = crate::families::open_qa::locate(card, &bench.registry, &cell)?;
            // Opened first: a file that cannot be read by offset is refused before any work.
            let file = crate::families::open_qa::PassageFile::open_cached(&passages, &bench.workspace.cache)?;
            EvidenceCorpus::Dpr { questions, passages, file }
        }
        _ => EvidenceCorpus::Beir(BeirDataset::new(card.clone(), bench.registry.require_offline(card)?)),
    };
    let Policy { dir: policy_dir, device, mut trainer, text } = load_policy(bench, spec, config)?;
    let reasoning = config.run.reasoning;
    let hit_k = evidence_hit_k(card)?;
    let answers = match &corpus {
        EvidenceCorpus::Beir(dataset) => dataset.read_answers()?,
        EvidenceCorpus::Dpr { .. } => Default::default(),
    };
    let task_of = crate::methods::query_task(card, "sparse")?;
    let source = match &corpus {
        EvidenceCorpus::Beir(dataset) => QuestionSource::Beir { dataset, answers: &answers },
        EvidenceCorpus::Dpr { questions, .. } => QuestionSource::Dpr { card_questions: questions },
    };
    let questions_of = |split: &str| evidence_questions(bench, card, &source, spec.questions.as_deref().filter(|_| split == spec.split), split);
    let examples_of = |split: &str| -> Result<Vec<EvidenceExample>> {
        let examples = questions_of(split)?
            .into_iter()
            .filter(|(_, a)| !a.is_empty())
            .map(|(q, a)| {
                Ok(EvidenceExample { task: task_of(&q), question: q.text.clone(), answers: a.iter().map(|s| harness_core::answers::dpr_tokens(s)).collect() })
            })
            .collect::<Result<Vec<_>>>()?;
        anyhow::ensure!(!examples.is_empty(), "split '{split}' of {} has no questions with answer strings", card.name);
        Ok(examples)
    };
    let examples = examples_of(&spec.split)?;
    let held_out = match (config.run.eval_every, eval_split(spec, card)) {
        (0, _) | (_, None) => None,
        (_, Some(split)) => Some((eval_limited(spec, examples_of(&split)?), split)),
    };
    let params = crate::families::beir::bm25_params(&CellSpec::default(), card)?;
    // Answers are looked for in the passage text, as the eval path does (title not searched).
    let (index, passages, corpus_details) = match corpus {
        EvidenceCorpus::Beir(dataset) => {
            let tokens = dataset.read_corpus()?.into_iter().map(|d| (d.id, harness_core::answers::dpr_tokens(&d.text))).collect();
            (bm25_index(bench, &dataset)?, std::rc::Rc::new(env::PassageTexts::Tokens(tokens)), serde_json::json!({"corpus": "the dataset's own (BEIR layout)"}))
        }
        EvidenceCorpus::Dpr { passages, file, .. } => {
            let (index, key) = crate::families::open_qa::passage_index(bench, &passages)?;
            let details = serde_json::json!({"corpus": passages, "passages_fingerprint": key, "passages": file.len()});
            (index, std::rc::Rc::new(env::PassageTexts::File(file)), details)
        }
    };
    let squad = card.task.squad_tiers;
    let env_of = |examples: Vec<EvidenceExample>| -> Result<EvidenceEnv<'_>> {
        let turns = Turns::new(&text, reasoning, trainer.eos_ids.clone());
        turns.check_prompt(&examples[0].task)?;
        Ok(EvidenceEnv {
            examples,
            retriever: RewardRetriever::bm25(&index, params),
            passages: passages.clone(),
            depth: EVIDENCE_REWARD_DEPTH,
            hit_k,
            squad,
            turns,
        })
    };
    let mut env = env_of(examples)?;
    let mut eval_env = held_out.map(|(examples, split)| env_of(examples).map(|e| (split, e))).transpose()?;
    let details = serde_json::json!({
        "retriever": {"name": "bm25", "k1": params.k1, "b": params.b, "reward_depth": EVIDENCE_REWARD_DEPTH},
        "passages": corpus_details,
        "reward": format!("harness_core::rewards::evidence_seeking (format +1/-4; rank tiers <=5: 5, <=20: 4, <=50: 2, <=100: 1, <=1000: 0.5, <=3000: 0.1; {})", if squad { "SQuAD: miss -2.5, error -3" } else { "miss -3.5, error -4" }),
        "metric": format!("hit.{hit_k} (a top-{hit_k} passage's text holds an answer, DPR has_answers)"),
    });
    let eval = eval_env.as_mut().map(|(split, e)| (split.clone(), e as &mut dyn Environment));
    train_loop(bench, spec, config, total_steps, &card.name, &policy_dir, device, &mut trainer, &mut env, eval, details)
}

fn train_sql(bench: &Bench, spec: &TrainSpec, config: &RunConfig, total_steps: u64, card: &Card) -> Result<TrainOutcome> {
    let Policy { dir: policy_dir, device, mut trainer, text } = load_policy(bench, spec, config)?;
    let reasoning = config.run.reasoning;
    let timeout = std::time::Duration::from_secs_f64(crate::spec::defaults::SQL_TIMEOUT_SECS);
    let options = harness_sql::ExOptions { mode: harness_sql::ExMode::Dr, limits: harness_sql::ExecLimits { timeout, ..Default::default() }, ..Default::default() };
    let bird = card.loader == LoaderKind::Bird;
    let env_of = |split: &str, limit: bool| -> Result<SqlEnv<'_>> {
        let loaded = crate::families::sql::load_split(bench, card, split, None)?;
        let questions = if limit { eval_limited(spec, loaded.questions) } else { loaded.questions };
        let schemas = crate::families::sql::schemas(&questions, &loaded.db_dir)?;
        let tasks = crate::families::sql::sql_tasks(&questions, &schemas);
        // Questions whose database is missing cannot be rewarded: left out.
        let examples = questions
            .iter()
            .filter_map(|q| tasks.get(&q.index.to_string()).map(|task| (q, task)))
            .map(|(q, task)| SqlExample { task: task.clone(), db_id: q.db_id.clone(), gold_sql: q.gold_sql.clone() })
            .collect::<Vec<_>>();
        anyhow::ensure!(!examples.is_empty(), "split '{split}' of {} has no question with its database in {}", card.name, loaded.db_dir.display());
        let turns = Turns::new(&text, reasoning, trainer.eos_ids.clone());
        turns.check_prompt(&examples[0].task)?;
        Ok(SqlEnv { examples, judge: harness_sql::Judge::new(&loaded.db_dir, options.clone())?, bird, turns })
    };
    let mut env = env_of(&spec.split, false)?;
    let mut eval_env = match (config.run.eval_every, eval_split(spec, card)) {
        (0, _) | (_, None) => None,
        (_, Some(split)) => Some((split.clone(), env_of(&split, true)?)),
    };
    let details = serde_json::json!({
        "executor": {"mode": "dr (set equality of result rows, as the paper)", "timeout_secs": timeout.as_secs_f64(), "sandbox": "read-only SQLite, one statement, row and memory caps"},
        "reward": format!("harness_core::rewards::sql (format +0.1/-2; equal results 1.1; {})", if bird { "executes but differs 0.4 (BIRD)" } else { "differs or fails 0" }),
        "metric": "execution accuracy (dr mode)",
    });
    let eval = eval_env.as_mut().map(|(split, e)| (split.clone(), e as &mut dyn Environment));
    train_loop(bench, spec, config, total_steps, &card.name, &policy_dir, device, &mut trainer, &mut env, eval, details)
}

fn train_literature(bench: &Bench, spec: &TrainSpec, config: &RunConfig, total_steps: u64, card: &Card) -> Result<TrainOutcome> {
    let kind = literature::engine_kind(spec.engine.as_deref(), card)?;
    let Policy { dir: policy_dir, device, mut trainer, text } = load_policy(bench, spec, config)?;
    let reasoning = config.run.reasoning;
    // The paper's literature reward retrieves the top 3,000 (the card's depth).
    let depth = card.depth;
    let mut engine_details = serde_json::Value::Null;
    let mut env_of = |split: &str| -> Result<LiteratureEnv<'_>> {
        let tasks = literature::load_tasks(spec.tasks.as_deref(), &bench.registry, card, Some(split))?;
        let (engine, details) = literature::open_engine(kind, bench, card)?;
        engine_details = details;
        let prompts = harness_baselines::Prompts::new();
        let prompts_ids = tasks.iter().map(|t| prompt_ids(&text, &prompts, &literature::prompt_task(t, kind.query_language()), reasoning)).collect::<Result<Vec<_>>>()?;
        Ok(LiteratureEnv { prompts: prompts_ids, tasks, engine, depth, turns: Turns::new(&text, reasoning, trainer.eos_ids.clone()) })
    };
    let mut env = env_of(&spec.split)?;
    let mut eval_env = match (config.run.eval_every, eval_split(spec, card)) {
        (0, _) | (_, None) => None,
        (_, Some(split)) if spec.tasks.is_none() => Some((split.clone(), env_of(&split)?)),
        _ => None,
    };
    let details = serde_json::json!({
        "engine": engine_details,
        "reward_depth": depth,
        "reward": "harness_core::rewards::literature (format +1/-4; recall tiers 5/4/3/1/0.5/0.1/-3.5; exception -4)",
    });
    let eval = eval_env.as_mut().map(|(split, e)| (split.clone(), e as &mut dyn Environment));
    train_loop(bench, spec, config, total_steps, &card.name, &policy_dir, device, &mut trainer, &mut env, eval, details)
}

/// The loop every task family shares.
#[allow(clippy::too_many_arguments)]
fn train_loop(
    bench: &Bench,
    spec: &TrainSpec,
    config: &RunConfig,
    total_steps: u64,
    dataset: &str,
    policy_dir: &Path,
    device: tch::Device,
    trainer: &mut Trainer,
    env: &mut dyn Environment,
    mut eval: Option<(String, &mut dyn Environment)>,
    details: serde_json::Value,
) -> Result<TrainOutcome> {
    let config_name = spec.config.as_deref().unwrap_or(if spec.resume.is_some() { "resumed" } else { defaults::CONFIG });
    let run_id = new_run_id(&format!("train-{}-{}-{}", dataset, spec.split, config_name.replace(['/', '.'], "_")));
    let out = match (&spec.out, &spec.resume) {
        (Some(o), _) => o.clone(),
        // A resumed run continues in the run folder that holds the checkpoint.
        (None, Some(ckpt)) => ckpt.parent().and_then(Path::parent).map(Path::to_path_buf).context("--resume expects <run>/checkpoints/step-N")?,
        (None, None) => bench.workspace.runs.join(&run_id),
    };
    // A new run never lands on an old one's files (its log and checkpoints would mix).
    if spec.resume.is_none() && spec.out.is_some() {
        crate::run_dir::claim_out(&out, bench.invocation.overwrite)?;
    }
    std::fs::create_dir_all(out.join("checkpoints")).with_context(|| format!("creating {}", out.display()))?;
    if let Some(ckpt) = &spec.resume {
        trainer.restore(ckpt).with_context(|| format!("restoring {}", ckpt.display()))?;
        for name in ["log.jsonl", "eval.jsonl", "alarms.jsonl"] {
            truncate_after_step(&out.join(name), trainer.step)?;
        }
    }
    let run_dir = RunDir { id: run_id, path: out.clone() };
    let meta = serde_json::json!({
        "dataset": dataset, "split": spec.split, "examples": env.len(),
        "task": details,
        "policy": policy_dir, "device": format!("{device:?}"), "config": config, "total_steps": total_steps,
        "resumed_from": spec.resume,
        "eval_split": eval.as_ref().map(|(split, _)| split.clone()),
        "eval_every": config.run.eval_every,
    });
    run_dir.write_meta(bench, meta)?;

    // The original query's held-out metric: the line a trained rewriter has to rise above.
    let baseline = match &mut eval {
        Some((split, e)) => {
            let values: Vec<f64> = (0..e.len()).filter_map(|i| e.original_metric(i)).collect();
            let mean = if values.is_empty() { None } else { Some(values.iter().sum::<f64>() / values.len() as f64) };
            if let Some(m) = mean {
                bench.progress.note(&format!("held-out {split}: the original query scores {m:.4} ({} items); greedy evaluation every {} steps", e.len(), config.run.eval_every));
            }
            mean
        }
        None => None,
    };
    let bar = bench.progress.bar("training", total_steps);
    bar.set_position(trainer.step);
    let mut log = std::fs::OpenOptions::new().create(true).append(true).open(out.join("log.jsonl"))?;
    let mut history = if out.join("log.jsonl").is_file() { read_log(&out.join("log.jsonl"))? } else { Vec::new() };
    let mut evals = read_evals(&out.join("eval.jsonl"))?;
    let mut best = evals.iter().map(|e| e.metric_mean).fold(f64::NEG_INFINITY, f64::max);
    let alarm_settings = harness_rl::alarms::AlarmSettings::default();
    let mut raised: Vec<String> = Vec::new();
    let started = std::time::Instant::now();
    let out_of_time = || spec.max_minutes.is_some_and(|m| started.elapsed().as_secs_f64() > m * 60.0);
    let mut stopped_early = false;
    while trainer.step < total_steps {
        let entry: StepLog = trainer.train_step(env);
        writeln!(log, "{}", serde_json::to_string(&entry)?)?;
        log.flush()?;
        bar.set_message(format!(
            "reward {:.3} metric {:.3} kl {:.4} len {:.0} (think {:.0}, answer {:.0}) fmt-err {:.2}",
            entry.reward_mean, entry.metric_mean, entry.kl_mean, entry.response_tokens_mean, entry.think_tokens_mean, entry.answer_tokens_mean, entry.format_error_rate
        ));
        bar.inc(1);
        history.push(entry);
        let now = harness_rl::alarms::alarms(&history, config.ppo.max_response_tokens, &alarm_settings);
        for alarm in now.iter().filter(|a| !raised.iter().any(|r| kind_of(r) == kind_of(a))) {
            bench.progress.note(&format!("alarm at step {}: {alarm}", trainer.step));
            append_jsonl(&out.join("alarms.jsonl"), &serde_json::json!({"step": trainer.step, "alarm": alarm}))?;
        }
        raised = now;
        if let Some((split, eval_env)) = eval.as_mut().filter(|_| config.run.eval_every > 0 && trainer.step % config.run.eval_every == 0) {
            let record = held_out(trainer, &mut **eval_env, split, baseline);
            append_jsonl(&out.join("eval.jsonl"), &serde_json::to_value(&record)?)?;
            bench.progress.note(&format!(
                "step {}: held-out {split} metric {:.4} (original query {}), format errors {:.0} %",
                trainer.step,
                record.metric_mean,
                baseline.map_or("?".into(), |b| format!("{b:.4}")),
                100.0 * record.format_error_rate
            ));
            if record.metric_mean > best {
                best = record.metric_mean;
                trainer.save(&out.join("best"), Some(policy_dir)).with_context(|| format!("saving {}", out.join("best").display()))?;
                harness_core::io::write_atomically(&out.join("best.json"), |w| Ok(serde_json::to_writer_pretty(w, &record)?))?;
            }
            evals.push(record);
        }
        stopped_early = out_of_time();
        if trainer.step % config.run.save_every == 0 || trainer.step == total_steps || stopped_early {
            let ckpt = out.join("checkpoints").join(format!("step-{}", trainer.step));
            trainer.save(&ckpt, Some(policy_dir)).with_context(|| format!("saving {}", ckpt.display()))?;
        }
        if stopped_early {
            bench.progress.note(&format!("stopping after {} steps: the --max-minutes budget is spent", trainer.step));
            break;
        }
    }
    bar.finish();
    plot(&history, &evals, baseline, &out.join("curves.svg"))?;
    Ok(TrainOutcome { steps: trainer.step, out, stopped_early })
}

/// The first words of an alarm, which name its kind (its numbers change step to step).
fn kind_of(alarm: &str) -> &str {
    alarm.split(':').next().unwrap_or(alarm)
}

/// One held-out evaluation (a line of `eval.jsonl`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct HeldOut {
    pub step: u64,
    pub split: String,
    pub items: usize,
    /// Mean of the reward's retrieval metric over the split's items, greedy answers.
    pub metric_mean: f64,
    pub reward_mean: f64,
    pub format_error_rate: f64,
    /// The original query's mean on the same items.
    pub original_metric_mean: Option<f64>,
}

fn held_out(trainer: &Trainer, env: &mut dyn Environment, split: &str, baseline: Option<f64>) -> HeldOut {
    let scored = trainer.evaluate(env);
    let n = scored.len().max(1) as f64;
    HeldOut {
        step: trainer.step,
        split: split.to_string(),
        items: scored.len(),
        metric_mean: scored.iter().map(|s| s.metric).sum::<f64>() / n,
        reward_mean: scored.iter().map(|s| s.reward).sum::<f64>() / n,
        format_error_rate: scored.iter().filter(|s| !s.format_ok).count() as f64 / n,
        original_metric_mean: baseline,
    }
}

fn append_jsonl(path: &Path, value: &serde_json::Value) -> Result<()> {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).with_context(|| format!("opening {}", path.display()))?;
    writeln!(f, "{value}")?;
    Ok(())
}

fn read_evals(path: &Path) -> Result<Vec<HeldOut>> {
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(path)?;
    text.lines().enumerate().map(|(i, l)| serde_json::from_str(l).with_context(|| format!("{}:{}", path.display(), i + 1))).collect()
}

/// Drops the lines of a JSONL file whose `step` is past `steps` (what a resumed run redoes).
fn truncate_after_step(path: &Path, steps: u64) -> Result<()> {
    if !path.is_file() {
        return Ok(());
    }
    let text = std::fs::read_to_string(path)?;
    let kept: Vec<&str> = text.lines().filter(|l| serde_json::from_str::<serde_json::Value>(l).ok().and_then(|v| v["step"].as_u64()).is_some_and(|s| s <= steps)).collect();
    harness_core::io::write_atomically(path, |w| {
        for l in &kept {
            writeln!(w, "{l}")?;
        }
        Ok(())
    })?;
    Ok(())
}

fn read_log(path: &Path) -> Result<Vec<StepLog>> {
    let text = std::fs::read_to_string(path)?;
    text.lines().enumerate().map(|(i, l)| serde_json::from_str(l).with_context(|| format!("{}:{}", path.display(), i + 1))).collect()
}

/// Writes the actor adapter of the LoRA checkpoint `checkpoint` (`<run>/checkpoints/step-N`) as
/// a peft adapter folder at `out`, tied to the run's base model and carrying how it was trained
/// (the run's command, config, dataset, split, step, commit) from the run's meta.json.
pub fn export_adapter(bench: &Bench, checkpoint: &Path, out: &Path) -> Result<usize> {
    let meta_path = checkpoint.parent().and_then(Path::parent).map(|run| run.join("meta.json")).context("--checkpoint expects <run>/checkpoints/step-N")?;
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&meta_path).with_context(|| format!("reading {}", meta_path.display()))?)
        .with_context(|| format!("{}", meta_path.display()))?;
    let config: RunConfig = serde_json::from_value(meta["config"].clone()).with_context(|| format!("{}: config", meta_path.display()))?;
    let lora = config.lora.with_context(|| format!("{}: the run trained all weights (no [lora] in its config); its checkpoint's policy/ folder is the model", meta_path.display()))?;
    let base = meta["policy"].as_str().map(PathBuf::from).unwrap_or_else(|| bench.workspace.default_policy());
    let state_path = checkpoint.join("trainer_state.json");
    let state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&state_path).with_context(|| format!("reading {}", state_path.display()))?)?;
    let training = serde_json::json!({
        "command": meta["provenance"]["argv"],
        "run_id": meta["run_id"],
        "git_commit": meta["git_commit"],
        "dataset": meta["dataset"], "split": meta["split"],
        "step": state["step"],
        "config": meta["config"],
        "task": meta["task"],
    });
    crate::run_dir::claim_out(out, bench.invocation.overwrite)?;
    Ok(harness_rl::export_adapter(checkpoint, &base, lora, out, training)?)
}
