//! `harness train`: flags -> a `TrainSpec` -> harness-bench's training loop.
use std::path::PathBuf;

use anyhow::Result;
use harness_bench::spec::defaults as cell;
use harness_bench::train::{defaults, train, TrainSpec};

use crate::progress::Bars;

#[derive(clap::Args)]
pub struct TrainArgs {
    /// Dataset: a classic-IR (BEIR layout) or literature card.
    #[arg(long, default_value = defaults::DATASET)]
    dataset: String,
    /// Training split.
    #[arg(long, default_value = defaults::SPLIT)]
    split: String,
    /// Retriever giving the reward: bm25, or dense[:MODEL] (MiniLM by default) for classic-IR
    /// datasets; literature, evidence-seeking and SQL datasets use their own engine, BM25 or
    /// executor.
    #[arg(long, default_value = defaults::RETRIEVER)]
    retriever: String,
    /// Model folder of the initial policy (default: the setup's SmolLM2-135M-Instruct).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// paper, cpu-small, or a TOML file with [run] and [ppo] tables (default: cpu-small; when
    /// resuming, the checkpoint's own, and a different one is an error).
    #[arg(long)]
    config: Option<String>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = cell::DEVICE)]
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
    /// Literature datasets: offline, pubmed or ctgov (default: the dataset's own engine).
    #[arg(long)]
    engine: Option<String>,
    /// Literature datasets: review tasks in the paper's JSONL format instead of the vendored ones.
    #[arg(long)]
    tasks: Option<PathBuf>,
    /// Held-out split evaluated (greedy) every `eval_every` steps of the config; its metric
    /// picks best/ (default: the dataset's dev split when it has one; not the split you report).
    #[arg(long)]
    eval_split: Option<String>,
    /// Only the first N items of the held-out split (a quick look at a large dev set such as
    /// Spider's 1,034 questions).
    #[arg(long)]
    eval_limit: Option<usize>,
    /// Open-QA datasets (nq, triviaqa, squad): the DPR passages file, uncompressed
    /// (psgs_w100.tsv); default: $HARNESS_DPR_PASSAGES, else the dataset folder's.
    #[arg(long)]
    passages: Option<PathBuf>,
    /// Open-QA datasets: training questions as `{"question": ..., "answers": [...]}` lines (the
    /// paper's train.jsonl) instead of the card's file of the split.
    #[arg(long)]
    questions: Option<PathBuf>,
    /// Print the predicted peak memory of this run on its device (weights, optimiser state,
    /// rollout cache, activations, logits) and the largest micro-batch that fits, then exit:
    /// loads no weights and needs no GPU.
    #[arg(long)]
    plan: bool,
    /// With --plan: the memory budget in GiB (default: 75 on CUDA, what is available on the CPU).
    #[arg(long, requires = "plan")]
    memory_gib: Option<f64>,
    /// With --plan: plan for prompts of this many tokens instead of the split's longest (e.g.
    /// the truncation length of your data).
    #[arg(long, requires = "plan")]
    prompt_tokens: Option<usize>,
}

pub fn run(args: TrainArgs, root: Option<PathBuf>) -> Result<()> {
    if args.threads > 0 {
        tch::set_num_threads(args.threads);
    }
    let bars = Bars::new(false);
    let bench = crate::bench(root, &bars)?;
    let spec = TrainSpec {
        dataset: args.dataset,
        split: args.split,
        retriever: args.retriever,
        policy: args.policy,
        config: args.config,
        device: args.device,
        resume: args.resume,
        steps: args.steps,
        out: args.out,
        max_minutes: args.max_minutes,
        engine: args.engine,
        tasks: args.tasks,
        eval_split: args.eval_split,
        eval_limit: args.eval_limit,
        passages: harness_bench::families::open_qa::passages_or_env(args.passages),
        questions: args.questions,
    };
    if args.plan {
        print!("{}", harness_bench::train::plan_text(&bench, &spec, args.memory_gib, args.prompt_tokens)?);
        return Ok(());
    }
    let outcome = train(&bench, &spec)?;
    println!(
        "trained {} steps; log {}, curves {}, checkpoints {}",
        outcome.steps,
        outcome.log().display(),
        outcome.curves().display(),
        outcome.checkpoints().display()
    );
    Ok(())
}

#[derive(clap::Args)]
pub struct ExportAdapterArgs {
    /// A checkpoint of a LoRA run (…/checkpoints/step-N).
    #[arg(long)]
    checkpoint: PathBuf,
    /// The adapter folder to write (peft layout: adapter_config.json, adapter_model.safetensors,
    /// and harness_adapter.json with the base model's hashes and the training command).
    #[arg(long)]
    out: PathBuf,
}

pub fn export_adapter(args: ExportAdapterArgs, root: Option<PathBuf>) -> Result<()> {
    let bars = Bars::new(false);
    let bench = crate::bench(root, &bars)?;
    let tensors = harness_bench::train::export_adapter(&bench, &args.checkpoint, &args.out)?;
    println!("wrote {} ({tensors} tensors); use it as --method checkpoint:{}", args.out.display(), args.out.display());
    Ok(())
}
