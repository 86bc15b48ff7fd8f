//! `harness train`: DeepRetrieval's PPO on a classic-IR dataset with the BM25 retriever as the
//! reward: the policy writes a query, BM25 retrieves, the paper's NDCG becomes the reward
//! (harness_core::rewards::classic_ir). Logs one JSON line per step, checkpoints atomically,
//! resumes exactly, and draws the reward curve.
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use harness_core::answer::AnswerFormat;
use harness_core::rewards::{self, Answer};
use harness_datasets::beir::BeirDataset;
use harness_datasets::{LoaderKind, Registry};
use harness_policy::{parse_device, Message};
use harness_retrieval::{Bm25Index, Bm25Params, DocFields, Document, IndexSettings};
use harness_rl::trainer::{Environment, RunConfig, Scored, StepLog, Trainer};
use indicatif::{ProgressBar, ProgressStyle};

use crate::paths;

#[derive(clap::Args)]
pub struct TrainArgs {
    /// Dataset (classic-IR cards: BEIR layout).
    #[arg(long, default_value = "scifact")]
    dataset: String,
    /// Training split.
    #[arg(long, default_value = "train")]
    split: String,
    /// Retriever giving the reward (bm25).
    #[arg(long, default_value = "bm25")]
    retriever: String,
    /// Model folder of the initial policy (default: the setup's SmolLM2-135M-Instruct).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// paper, cpu-small, or a TOML file with [run] and [ppo] tables.
    #[arg(long, default_value = "cpu-small")]
    config: String,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Continue from a checkpoint folder (…/checkpoints/step-N).
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Override the config's total steps.
    #[arg(long)]
    steps: Option<u64>,
    /// Output folder (default: results/runs/<run-id>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// CPU threads for libtorch (0: its default).
    #[arg(long, default_value_t = 0)]
    threads: i32,
    /// Stop (with a checkpoint) once this many minutes of training have passed.
    #[arg(long)]
    max_minutes: Option<f64>,
    /// Literature datasets: offline, pubmed or ctgov (auto: the dataset's own engine).
    #[arg(long, default_value = "auto")]
    engine: String,
    /// Literature datasets: review tasks in the paper's JSONL format instead of the vendored ones.
    #[arg(long)]
    tasks: Option<PathBuf>,
}

/// One training example: a prompt and the document(s) that should be found.
struct Example {
    prompt_ids: Vec<i64>,
    /// Single target (SciFact, as the paper) or graded rows.
    target: Target,
}

enum Target {
    Single(String),
    Graded(Vec<(String, i32)>),
}

/// What every environment does with a response: the assistant turn as text, and the
/// format, metric and block lengths of its scored answer.
struct Turns<'a> {
    format: AnswerFormat,
    /// The pre-filled start of the assistant turn (`<think>\n` or `<answer>\n`).
    prefix: &'static str,
    decode: Box<dyn Fn(&[i64]) -> String + 'a>,
    /// Tokens of a text (for the think and answer block lengths).
    count_tokens: Box<dyn Fn(&str) -> usize + 'a>,
    eos_ids: Vec<i64>,
}

impl<'a> Turns<'a> {
    fn new(policy: &'a harness_policy::Policy, reasoning: bool, eos_ids: Vec<i64>) -> Turns<'a> {
        Turns {
            format: if reasoning { AnswerFormat::Reasoning } else { AnswerFormat::Direct },
            prefix: harness_baselines::prompts::assistant_prefix(reasoning),
            decode: Box::new(|ids| policy.decode(ids)),
            count_tokens: Box::new(|text| policy.encode(text).map_or(0, |ids| ids.len())),
            eos_ids,
        }
    }

    fn turn(&self, response: &[i64]) -> String {
        let body: Vec<i64> = response.iter().copied().filter(|t| !self.eos_ids.contains(t)).collect();
        format!("{}{}", self.prefix, (self.decode)(&body))
    }

    fn scored(&self, turn: &str, answer: &Answer<f64>, reward: f64) -> Scored {
        let metric = if let Answer::Scored(v) = answer { *v } else { 0.0 };
        let format_ok = !matches!(answer, Answer::MalformedTags | Answer::EmptyBlock | Answer::Invalid);
        let length = |tag: &str| block(turn, tag).map_or(0, |b| (self.count_tokens)(b.trim()));
        Scored { reward, metric, format_ok, think_tokens: length("think"), answer_tokens: length("answer") }
    }
}

/// The chat prompt of `task` in the policy's template, assistant turn pre-filled.
fn prompt_ids(policy: &harness_policy::Policy, prompts: &harness_baselines::Prompts, task: &harness_baselines::Task, reasoning: bool) -> Result<Vec<i64>> {
    let user = prompts.user_message(task, reasoning)?;
    let messages = [Message::new("system", harness_baselines::prompts::system_message(reasoning)), Message::new("user", &user)];
    Ok(policy.encode(&(policy.chat_prompt(&messages)? + harness_baselines::prompts::assistant_prefix(reasoning)))?)
}

struct ClassicIrEnv<'a> {
    examples: Vec<Example>,
    index: &'a Bm25Index,
    searcher: harness_retrieval::Bm25Searcher<'a>,
    params: Bm25Params,
    depth: usize,
    turns: Turns<'a>,
}

/// The text of the last `<tag>` block of `turn` (to the end when unclosed).
fn block<'t>(turn: &'t str, tag: &str) -> Option<&'t str> {
    let open = format!("<{tag}>");
    let start = turn.rfind(&open)? + open.len();
    let rest = &turn[start..];
    Some(rest.find(&format!("</{tag}>")).map_or(rest, |end| &rest[..end]))
}

impl Environment for ClassicIrEnv<'_> {
    fn len(&self) -> usize {
        self.examples.len()
    }

    fn prompt(&self, i: usize) -> Vec<i64> {
        self.examples[i].prompt_ids.clone()
    }

    fn score(&mut self, i: usize, response: &[i64]) -> Scored {
        let turn = self.turns.turn(response);
        let (index, searcher, params, depth) = (self.index, &mut self.searcher, self.params, self.depth);
        let target = &self.examples[i].target;
        let answer = Answer::from_turn(&turn, self.turns.format, "query", |query| {
            let hits = searcher.search(query, depth, params).ok()?;
            let ranked: Vec<&str> = hits.iter().map(|(o, _)| index.doc_id(*o)).collect();
            Some(match target {
                Target::Single(doc) => harness_core::drcompat::ndcg_single_target(&ranked, doc, depth),
                Target::Graded(rows) => harness_core::drcompat::ndcg_graded(&ranked, rows, depth),
            })
        });
        self.turns.scored(&turn, &answer, rewards::classic_ir(&answer))
    }
}

/// Literature search: the policy's Boolean query goes to the run's engine, the reward is the
/// paper's recall tiers (`harness_core::rewards::literature`) at the paper's depth; an
/// unparseable query or a failed search is the exception tier.
struct LiteratureEnv<'a> {
    prompts: Vec<Vec<i64>>,
    tasks: Vec<harness_literature::ReviewTask>,
    engine: Box<dyn harness_literature::Engine>,
    depth: usize,
    turns: Turns<'a>,
}

impl Environment for LiteratureEnv<'_> {
    fn len(&self) -> usize {
        self.tasks.len()
    }

    fn prompt(&self, i: usize) -> Vec<i64> {
        self.prompts[i].clone()
    }

    fn score(&mut self, i: usize, response: &[i64]) -> Scored {
        let turn = self.turns.turn(response);
        let (task, engine, depth) = (&self.tasks[i], &mut self.engine, self.depth);
        let answer = Answer::from_turn(&turn, self.turns.format, "query", |query| {
            engine.search(query, task, depth).ok().map(|ids| harness_literature::recall_at(&ids, &task.targets, depth))
        });
        self.turns.scored(&turn, &answer, rewards::literature(&answer))
    }
}

pub fn run(args: TrainArgs) -> Result<()> {
    if args.threads > 0 {
        tch::set_num_threads(args.threads);
    }
    if args.retriever != "bm25" {
        bail!("harness train supports the bm25 retriever (got '{}')", args.retriever);
    }
    let config = RunConfig::load(&args.config).map_err(anyhow::Error::msg)?;
    let total_steps = args.steps.unwrap_or(config.run.total_steps);
    let registry = Registry::load_default()?;
    let card = registry.get(&args.dataset)?.clone();
    if card.loader == LoaderKind::Review {
        return run_literature(args, config, total_steps, &registry, card);
    }
    if card.loader != LoaderKind::Beir {
        bail!("harness train covers classic-IR (BEIR-layout) and literature datasets; '{}' uses the '{}' loader", card.name, card.loader.name());
    }
    let dir = registry.require_offline(&card)?;
    let dataset = BeirDataset::new(card.clone(), dir);
    let (queries, qrels) = dataset.split_queries(&args.split)?;
    let (policy_dir, device, mut trainer, policy) = load_policy(&args, &config)?;

    // Prompts: our classic-IR template in the model's chat format, assistant turn pre-filled.
    let prompts = harness_baselines::Prompts::new();
    let reasoning = config.run.reasoning;
    let text_of: std::collections::HashMap<&str, &str> = queries.iter().map(|q| (q.id.as_str(), q.text.as_str())).collect();
    let mut examples = Vec::new();
    let single = card.dr_compat_ndcg.as_deref() == Some("single-target");
    for (qid, rows) in &qrels.rows_in_file_order {
        let Some(text) = text_of.get(qid.as_str()) else { continue };
        let prompt_ids = prompt_ids(&policy, &prompts, &harness_baselines::Task::classic_ir(&card.name, "sparse", text), reasoning)?;
        if single {
            // One example per qrels row, as the paper's SciFact training data.
            for (doc, _) in rows {
                examples.push(Example { prompt_ids: prompt_ids.clone(), target: Target::Single(doc.clone()) });
            }
        } else {
            examples.push(Example { prompt_ids, target: Target::Graded(rows.clone()) });
        }
    }
    if examples.is_empty() {
        bail!("split '{}' of {} has no judged queries", args.split, card.name);
    }

    let defaults = card.bm25.map(|d| (d.k1, d.b)).unwrap_or((0.9, 0.4));
    let params = Bm25Params { k1: defaults.0, b: defaults.1 };
    let checksum = dataset.corpus_checksum()?;
    let index = Bm25Index::open_or_build(&paths::cache_dir(), &checksum, IndexSettings { fields: DocFields::Flat, ..Default::default() }, || {
        let docs = dataset.read_corpus().map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
        let n = docs.len();
        Ok((n, docs.into_iter().map(|d| Ok(Document { id: d.id, title: d.title, text: d.text }))))
    })?;
    let mut env = ClassicIrEnv {
        examples,
        index: &index,
        searcher: index.searcher(),
        params,
        depth: config.run.reward_depth,
        turns: Turns::new(&policy, reasoning, trainer.eos_ids.clone()),
    };

    let details = serde_json::json!({
        "retriever": {"name": "bm25", "k1": params.k1, "b": params.b, "reward_depth": config.run.reward_depth},
        "reward": "harness_core::rewards::classic_ir (0.1 + NDCG when > 0; 0 well-formed; -2 malformed)",
        "ndcg": if single { "paper single-target (one example per qrels row)" } else { "paper graded (qrels-order ideal)" },
    });
    train_loop(&args, &config, total_steps, &card.name, &policy_dir, device, &mut trainer, &mut env, details)
}

/// The trainer on the run's device, and the policy folder's tokenizer and chat template.
fn load_policy(args: &TrainArgs, config: &RunConfig) -> Result<(PathBuf, tch::Device, Trainer, harness_policy::Policy)> {
    let policy_dir = args.policy.clone().unwrap_or_else(crate::generate::default_model_dir);
    let device = parse_device(&args.device)?;
    let trainer = Trainer::from_model_dir(&policy_dir, device, config.ppo.clone(), config.lora)?;
    // Loaded again on the CPU only for its tokenizer and template (see the issue note).
    let policy = harness_policy::Policy::load(&policy_dir, tch::Device::Cpu)?;
    Ok((policy_dir, device, trainer, policy))
}

/// `harness train` on a literature dataset: review prompts, the engine's recall as the reward.
fn run_literature(args: TrainArgs, config: RunConfig, total_steps: u64, registry: &Registry, card: harness_datasets::Card) -> Result<()> {
    let eval_args = crate::eval::EvalArgs { engine: args.engine.clone(), tasks: args.tasks.clone(), ..crate::eval::EvalArgs::cell(&card.name, "", "bm25", "original") };
    let tasks = crate::literature_eval::load_tasks(&eval_args, registry, &card)?;
    let (engine, engine_details) = crate::literature_eval::open_engine(&eval_args, registry, &card)?;
    let (policy_dir, device, mut trainer, policy) = load_policy(&args, &config)?;
    let prompts = harness_baselines::Prompts::new();
    let reasoning = config.run.reasoning;
    let engine_word = crate::literature_eval::engine_word(&card.name, &args.engine);
    let prompts_ids = tasks
        .iter()
        .map(|t| prompt_ids(&policy, &prompts, &crate::literature_eval::prompt_task(t, engine_word), reasoning))
        .collect::<Result<Vec<_>>>()?;
    // The paper's literature reward retrieves the top 3,000 (the card's depth).
    let depth = card.depth;
    let mut env = LiteratureEnv {
        prompts: prompts_ids,
        tasks,
        engine,
        depth,
        turns: Turns::new(&policy, reasoning, trainer.eos_ids.clone()),
    };
    let details = serde_json::json!({
        "engine": engine_details,
        "reward_depth": depth,
        "reward": "harness_core::rewards::literature (format +1/-4; recall tiers 5/4/3/1/0.5/0.1/-3.5; exception -4)",
    });
    train_loop(&args, &config, total_steps, &card.name, &policy_dir, device, &mut trainer, &mut env, details)
}

/// The training loop every task family shares: run folder, meta, resume, steps with the JSONL
/// log and progress bar, checkpoints, curves.
#[allow(clippy::too_many_arguments)]
fn train_loop(
    args: &TrainArgs,
    config: &RunConfig,
    total_steps: u64,
    dataset: &str,
    policy_dir: &Path,
    device: tch::Device,
    trainer: &mut Trainer,
    env: &mut dyn Environment,
    details: serde_json::Value,
) -> Result<()> {
    let run_id = paths::new_run_id(&format!("train-{}-{}-{}", dataset, args.split, args.config.replace(['/', '.'], "_")));
    let out = match (&args.out, &args.resume) {
        (Some(o), _) => o.clone(),
        // A resumed run continues in the run folder that holds the checkpoint.
        (None, Some(ckpt)) => ckpt.parent().and_then(Path::parent).map(Path::to_path_buf).context("--resume expects <run>/checkpoints/step-N")?,
        (None, None) => paths::runs_dir().join(&run_id),
    };
    std::fs::create_dir_all(out.join("checkpoints")).with_context(|| format!("creating {}", out.display()))?;
    if let Some(ckpt) = &args.resume {
        trainer.restore(ckpt).with_context(|| format!("restoring {}", ckpt.display()))?;
        truncate_log(&out.join("log.jsonl"), trainer.step)?;
    }
    let meta = serde_json::json!({
        "run_id": run_id,
        "command": std::env::args().collect::<Vec<_>>(),
        "dataset": dataset, "split": args.split, "examples": env.len(),
        "task": details,
        "policy": policy_dir, "device": format!("{device:?}"), "config": config, "total_steps": total_steps,
        "resumed_from": args.resume,
    });
    harness_core::io::write_atomically(&out.join("meta.json"), |w| w.write_all(serde_json::to_string_pretty(&meta)?.as_bytes()))?;

    let bar = ProgressBar::new(total_steps);
    bar.set_style(ProgressStyle::with_template("{prefix} {bar:30} {pos}/{len} [{elapsed_precise}, eta {eta}] {msg}").expect("valid template"));
    bar.set_prefix("training");
    bar.set_position(trainer.step);
    let mut log = std::fs::OpenOptions::new().create(true).append(true).open(out.join("log.jsonl"))?;
    let started = std::time::Instant::now();
    let out_of_time = || args.max_minutes.is_some_and(|m| started.elapsed().as_secs_f64() > m * 60.0);
    while trainer.step < total_steps {
        let entry: StepLog = trainer.train_step(env);
        writeln!(log, "{}", serde_json::to_string(&entry)?)?;
        log.flush()?;
        bar.set_message(format!(
            "reward {:.3} ndcg {:.3} kl {:.4} len {:.0} (think {:.0}, answer {:.0}) fmt-err {:.2}",
            entry.reward_mean, entry.metric_mean, entry.kl_mean, entry.response_tokens_mean, entry.think_tokens_mean, entry.answer_tokens_mean, entry.format_error_rate
        ));
        bar.inc(1);
        let stop = out_of_time();
        if trainer.step % config.run.save_every == 0 || trainer.step == total_steps || stop {
            let ckpt = out.join("checkpoints").join(format!("step-{}", trainer.step));
            trainer.save(&ckpt, Some(&policy_dir)).with_context(|| format!("saving {}", ckpt.display()))?;
        }
        if stop {
            bar.println(format!("stopping after {} steps: the --max-minutes budget is spent", trainer.step));
            break;
        }
    }
    bar.finish();
    let logs = read_log(&out.join("log.jsonl"))?;
    plot(&logs, &out.join("curves.svg"))?;
    println!("trained {} steps; log {}, curves {}, checkpoints {}", trainer.step, out.join("log.jsonl").display(), out.join("curves.svg").display(), out.join("checkpoints").display());
    Ok(())
}

/// Keeps the first `steps` lines of a log (a resumed run rewrites what came after its checkpoint).
fn truncate_log(path: &Path, steps: u64) -> Result<()> {
    if !path.is_file() {
        return Ok(());
    }
    let text = std::fs::read_to_string(path)?;
    let kept: Vec<&str> = text.lines().take(steps as usize).collect();
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
    text.lines()
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("{}:{}", path.display(), i + 1)))
        .collect()
}

/// Reward, NDCG and response length over steps, as an SVG.
pub fn plot(logs: &[StepLog], path: &Path) -> Result<()> {
    use plotters::prelude::*;
    let svg = {
        let mut text = String::new();
        {
            let root = SVGBackend::with_string(&mut text, (900, 600)).into_drawing_area();
            root.fill(&WHITE)?;
            let (upper, lower) = root.split_vertically(300);
            let steps = logs.len().max(1) as f64;
            let series = |area: &DrawingArea<SVGBackend, plotters::coord::Shift>, title: &str, lines: &[(&str, Vec<f64>, RGBColor)]| -> Result<()> {
                let (lo, hi) = lines.iter().flat_map(|(_, v, _)| v.iter().copied()).fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
                let (lo, hi) = if lo < hi { (lo, hi) } else { (lo - 1.0, lo + 1.0) };
                let mut chart = ChartBuilder::on(area)
                    .caption(title, ("sans-serif", 18))
                    .margin(10)
                    .x_label_area_size(30)
                    .y_label_area_size(50)
                    .build_cartesian_2d(0f64..steps, lo..hi)?;
                chart.configure_mesh().x_desc("step").draw()?;
                for (name, values, color) in lines {
                    let color = *color;
                    chart
                        .draw_series(LineSeries::new(values.iter().enumerate().map(|(i, v)| (i as f64 + 1.0, *v)), color))?
                        .label(*name)
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], color));
                }
                chart.configure_series_labels().border_style(BLACK).background_style(WHITE).draw()?;
                Ok(())
            };
            series(
                &upper,
                "reward and NDCG per step",
                &[("reward", logs.iter().map(|l| l.reward_mean).collect(), BLUE), ("ndcg", logs.iter().map(|l| l.metric_mean).collect(), GREEN)],
            )?;
            series(
                &lower,
                "lengths (tokens)",
                &[
                    ("response", logs.iter().map(|l| l.response_tokens_mean).collect(), RED),
                    ("think", logs.iter().map(|l| l.think_tokens_mean).collect(), MAGENTA),
                    ("answer", logs.iter().map(|l| l.answer_tokens_mean).collect(), CYAN),
                ],
            )?;
            root.present()?;
        }
        text
    };
    harness_core::io::write_atomically(path, |w| w.write_all(svg.as_bytes()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::block;

    #[test]
    fn blocks_are_the_last_of_their_tag_and_may_be_unclosed() {
        let turn = "<think>\nfirst</think>\n<think>second</think>\n<answer>\n{\"query\": \"q\"}\n</answer>";
        assert_eq!(block(turn, "think"), Some("second"));
        assert_eq!(block(turn, "answer").map(str::trim), Some("{\"query\": \"q\"}"));
        assert_eq!(block("<answer>\n{\"query\": \"cut off", "answer"), Some("\n{\"query\": \"cut off"));
        assert_eq!(block("no tags at all", "think"), None);
    }
}
