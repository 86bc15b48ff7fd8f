//! `harness serve`: an OpenAI-compatible endpoint over a local policy (see
//! harness_baselines::serve for the routes).
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use anyhow::{anyhow, Result};
use harness_baselines::serve::{serve, ServeOptions};
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
}

pub fn run(args: ServeArgs, root: Option<PathBuf>) -> Result<()> {
    let dir = match args.model.clone() {
        Some(dir) => dir,
        None => crate::workspace(root)?.default_policy(),
    };
    let policy = Policy::load(&dir, parse_device(&args.device)?)?;
    let server = tiny_http::Server::http((args.host.as_str(), args.port)).map_err(|e| anyhow!("listening on {}:{}: {e}", args.host, args.port))?;
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "policy".into());
    eprintln!(
        "serving {} on http://{}:{}/v1 (POST /v1/chat/completions, POST /v1/rewrite, GET /v1/models); Ctrl-C stops",
        dir.display(),
        args.host,
        args.port
    );
    let stop = AtomicBool::new(false);
    serve(&server, &policy, &ServeOptions { model_name: name, max_new_tokens: args.max_new_tokens }, &stop);
    Ok(())
}
