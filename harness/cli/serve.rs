//! `harness serve`: an OpenAI-compatible endpoint over a local policy (see
//! harness_baselines::serve for the routes).
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use anyhow::{anyhow, Result};
use harness_baselines::serve::{bind, error_reply, serve, serve_json, ServeOptions};
use harness_policy::{parse_device, Policy};

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Model folder (default: the setup's SmolLM2-135M-Instruct); a trained checkpoint works too.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// Default and ceiling of max_tokens per request.
    #[arg(long, default_value_t = 512)]
    max_new_tokens: usize,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Longest prompt accepted, in tokens (also capped by the model's context length).
    #[arg(long, default_value_t = 4096)]
    max_prompt_tokens: usize,
    /// Most requests generated together.
    #[arg(long, default_value_t = 16)]
    max_batch: usize,
    /// Requests that may wait for generation; more are answered 503.
    #[arg(long, default_value_t = 64)]
    max_queue: usize,
    /// Seconds a client may take to send its request or receive its answer.
    #[arg(long, default_value_t = 30.0)]
    timeout_secs: f64,
    /// Serve training rewards instead of a model: POST /reward with verl's reward arguments
    /// (the rows of `harness export verl` and the model's assistant turns); no model is loaded.
    #[arg(long)]
    reward: bool,
    /// With --reward: a dataset whose reward is served (repeat for several).
    #[arg(long = "dataset", requires = "reward")]
    datasets: Vec<String>,
    /// With --reward: documents a classic-IR reward retrieves (the training config's
    /// reward_depth; cpu-small's 50).
    #[arg(long, default_value_t = 50, requires = "reward")]
    reward_depth: usize,
    /// With --reward: the classic-IR reward's retriever, bm25 or dense[:MODEL] (exact search over
    /// the cached passage embeddings, as `train --retriever dense`).
    #[arg(long, default_value = "bm25", requires = "reward")]
    retriever: String,
    /// With --reward, for DPR open-QA datasets: the passages file (psgs_w100.tsv, uncompressed);
    /// default: $HARNESS_DPR_PASSAGES, else the dataset folder's.
    #[arg(long, requires = "reward")]
    passages: Option<PathBuf>,
    /// With --reward: threads scoring a request's items.
    #[arg(long, default_value_t = 2, requires = "reward")]
    threads: usize,
}

pub fn run(args: ServeArgs, root: Option<PathBuf>) -> Result<()> {
    if args.reward {
        return serve_rewards(args, root);
    }
    let workspace = crate::workspace(root)?;
    let dir = args.model.clone().unwrap_or_else(|| workspace.default_policy());
    anyhow::ensure!(args.timeout_secs > 0.0 && args.timeout_secs <= 3600.0, "--timeout-secs {} must be above 0 and at most 3600", args.timeout_secs);
    anyhow::ensure!(args.max_batch >= 1 && args.max_queue >= 1 && args.max_new_tokens >= 1, "--max-batch, --max-queue and --max-new-tokens must be at least 1");
    let policy = Policy::load_model_or_adapter(&dir, &workspace.models, parse_device(&args.device)?)?;
    let server = bind((args.host.as_str(), args.port), std::time::Duration::from_secs_f64(args.timeout_secs))
        .map_err(|e| anyhow!("listening on {}:{}: {e}", args.host, args.port))?;
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "policy".into());
    // The model's context holds the prompt and the answer.
    let context = policy.model.config.max_position_embeddings.map_or(usize::MAX, |c| c.max(0) as usize);
    let options = ServeOptions {
        max_prompt_tokens: args.max_prompt_tokens.min(context.saturating_sub(args.max_new_tokens)),
        max_batch: args.max_batch,
        max_queue: args.max_queue,
        ..ServeOptions::new(&name, args.max_new_tokens)
    };
    eprintln!(
        "serving {} on http://{}:{}/v1 (POST /v1/chat/completions, POST /v1/rewrite, GET /v1/models); Ctrl-C stops",
        dir.display(),
        args.host,
        args.port
    );
    let stop = AtomicBool::new(false);
    serve(&server, &policy, &options, &stop);
    Ok(())
}

/// Most items one reward request may carry.
const MAX_REWARD_ITEMS: usize = 4096;

/// `harness serve --reward`: POST /reward `{"items": [{data_source, solution_str, ground_truth,
/// extra_info}, ...]}` answers `{"rewards": [{score, metric, outcome, format_ok, error?}, ...]}`
/// in order; GET /reward lists the data sources served.
fn serve_rewards(args: ServeArgs, root: Option<PathBuf>) -> Result<()> {
    anyhow::ensure!(!args.datasets.is_empty(), "--reward needs at least one --dataset whose reward to serve");
    anyhow::ensure!(args.reward_depth >= 1 && args.threads >= 1, "--reward-depth and --threads must be at least 1");
    let bars = crate::progress::Bars::new(false);
    let bench = crate::bench(root, &bars)?;
    let passages = harness_bench::families::open_qa::passages_or_env(args.passages.clone());
    let service = harness_bench::train::RewardService::open(&bench, &args.datasets, args.reward_depth, &args.retriever, passages.as_deref())?;
    let server = bind((args.host.as_str(), args.port), std::time::Duration::from_secs_f64(args.timeout_secs))
        .map_err(|e| anyhow!("listening on {}:{}: {e}", args.host, args.port))?;
    eprintln!("serving the rewards of {} on http://{}:{}/reward (POST); Ctrl-C stops", service.data_sources().join(", "), args.host, args.port);
    let threads = args.threads;
    let handler = |method: &tiny_http::Method, path: &str, body: String| -> (u16, serde_json::Value) {
        match (method, path) {
            (tiny_http::Method::Get, "/reward") => (200, serde_json::json!({"data_sources": service.data_sources()})),
            (tiny_http::Method::Post, "/reward") => {
                match serde_json::from_str::<harness_bench::train::RewardRequest>(&body) {
                    Err(e) => error_reply(400, &format!("body: {e}")),
                    Ok(r) if r.items.len() > MAX_REWARD_ITEMS => error_reply(413, &format!("{} items; at most {MAX_REWARD_ITEMS} per request", r.items.len())),
                    Ok(r) => (200, serde_json::json!({"rewards": service.score(&r.items, threads)})),
                }
            }
            (m, p) => error_reply(404, &format!("no route {m} {p}")),
        }
    };
    let stop = AtomicBool::new(false);
    // Each request scores its items on `threads` threads; a few requests are read at once.
    serve_json(&server, 4, 64 << 20, &stop, &handler);
    Ok(())
}
