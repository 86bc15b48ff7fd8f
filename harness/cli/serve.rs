//! `harness serve`: an OpenAI-compatible endpoint over a local policy (see
//! harness_baselines::serve for the routes).
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use anyhow::{anyhow, Result};
use harness_baselines::serve::{bind, serve, ServeOptions};
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
}

pub fn run(args: ServeArgs, root: Option<PathBuf>) -> Result<()> {
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
