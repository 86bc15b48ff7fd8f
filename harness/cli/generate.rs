//! `harness generate`: try a policy model on a prompt.
use std::path::PathBuf;

use anyhow::Result;
use harness_policy::{parse_device, Message, Policy, SamplingParams};

#[derive(clap::Args)]
pub struct GenerateArgs {
    /// Model folder (config.json, safetensors, tokenizer.json, chat template); default: the
    /// setup's SmolLM2-135M-Instruct.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Prompt text (the user message with --chat).
    #[arg(long)]
    prompt: String,
    /// Wrap the prompt as a user message in the model's chat template.
    #[arg(long)]
    chat: bool,
    /// System message (with --chat).
    #[arg(long)]
    system: Option<String>,
    #[arg(long, default_value_t = 256)]
    max_new_tokens: usize,
    /// 0 = greedy.
    #[arg(long, default_value_t = 0.0)]
    temperature: f64,
    #[arg(long, default_value_t = 1.0)]
    top_p: f64,
    /// 0 = no top-k cut.
    #[arg(long, default_value_t = 0)]
    top_k: i64,
    /// Stop once the output contains this text (repeatable).
    #[arg(long = "stop")]
    stop: Vec<String>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Also print the prompt and generated token ids.
    #[arg(long)]
    ids: bool,
}

/// The setup's default policy folder.
pub fn default_model_dir() -> PathBuf {
    std::env::var_os("HARNESS_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::paths::repo_root().join(".deps/models"))
        .join("smollm2-135m-instruct")
}

pub fn run(args: GenerateArgs) -> Result<()> {
    let device = parse_device(&args.device)?;
    let dir = args.model.clone().unwrap_or_else(default_model_dir);
    let policy = Policy::load(&dir, device)?;
    let prompt = if args.chat {
        let mut messages = Vec::new();
        if let Some(system) = &args.system {
            messages.push(Message::new("system", system));
        }
        messages.push(Message::new("user", &args.prompt));
        policy.chat_prompt(&messages)?
    } else {
        args.prompt.clone()
    };
    let params = SamplingParams {
        max_new_tokens: args.max_new_tokens,
        temperature: args.temperature,
        top_p: args.top_p,
        top_k: args.top_k,
        stop_strings: args.stop.clone(),
        seed: args.seed,
    };
    let start = std::time::Instant::now();
    let out = policy.generate_texts(std::slice::from_ref(&prompt), &params)?;
    let seconds = start.elapsed().as_secs_f64();
    let (text, generation) = &out[0];
    if args.ids {
        println!("prompt_ids: {:?}", policy.encode(&prompt)?);
        println!("generated_ids: {:?}", generation.token_ids);
    }
    println!("{text}");
    eprintln!(
        "{} tokens in {seconds:.2}s ({:.1} tokens/s, {:?}, finish: {:?})",
        generation.token_ids.len(),
        generation.token_ids.len() as f64 / seconds.max(1e-9),
        device,
        generation.finish
    );
    Ok(())
}
