//! `harness generate`: try a policy model on a prompt.
use std::path::PathBuf;

use anyhow::{Context, Result};
use harness_policy::{parse_device, Message, Policy, SamplingParams};

#[derive(clap::Args)]
pub struct GenerateArgs {
    /// Model folder (config.json, safetensors, tokenizer.json, chat template) or LoRA adapter
    /// folder (merged into its base from the models folder); default: the
    /// setup's SmolLM2-135M-Instruct.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Prompt text (the user message with --chat).
    #[arg(long, required_unless_present = "prompts_file")]
    prompt: Option<String>,
    /// One prompt per line, generated as one left-padded batch (first --batch lines).
    #[arg(long)]
    prompts_file: Option<PathBuf>,
    /// Batch size with --prompts-file.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Generate exactly --max-new-tokens per prompt, ignoring end-of-turn tokens (speed runs).
    #[arg(long)]
    ignore_eos: bool,
    /// CPU threads for libtorch (0: libtorch's default).
    #[arg(long, default_value_t = 0)]
    threads: i32,
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
    /// Decoding steps between reads of the new tokens on the host (0: every step on the CPU,
    /// every 16 on a GPU).
    #[arg(long, default_value_t = 0)]
    sync_every: usize,
    /// Weights' kind: auto (float32 on the CPU, bfloat16 on CUDA), float32 or bfloat16 (for
    /// CUDA-versus-CPU parity checks in float32).
    #[arg(long, default_value = "auto")]
    dtype: String,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Also print the prompt and generated token ids.
    #[arg(long)]
    ids: bool,
}

pub fn run(args: GenerateArgs, root: Option<PathBuf>) -> Result<()> {
    if args.threads > 0 {
        tch::set_num_threads(args.threads);
    }
    let device = parse_device(&args.device)?;
    let workspace = crate::workspace(root)?;
    let dir = args.model.clone().unwrap_or_else(|| workspace.default_policy());
    let kind = match args.dtype.as_str() {
        "auto" => harness_policy::default_kind(device),
        "float32" => tch::Kind::Float,
        "bfloat16" => tch::Kind::BFloat16,
        other => anyhow::bail!("--dtype {other}: expected auto, float32 or bfloat16"),
    };
    let policy = Policy::load_model_or_adapter_as(&dir, &workspace.models, device, kind)?;
    let raw: Vec<String> = match (&args.prompt, &args.prompts_file) {
        (Some(p), _) => vec![p.clone()],
        (None, Some(file)) => std::fs::read_to_string(file)
            .with_context(|| format!("reading {}", file.display()))?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .take(args.batch)
            .map(String::from)
            .collect(),
        (None, None) => unreachable!("clap requires one"),
    };
    anyhow::ensure!(!raw.is_empty(), "no prompts");
    let prompts = raw
        .iter()
        .map(|text| {
            if args.chat {
                let mut messages = Vec::new();
                if let Some(system) = &args.system {
                    messages.push(Message::new("system", system));
                }
                messages.push(Message::new("user", text));
                policy.chat_prompt(&messages)
            } else {
                Ok(text.clone())
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let params = SamplingParams {
        max_new_tokens: args.max_new_tokens,
        temperature: args.temperature,
        top_p: args.top_p,
        top_k: args.top_k,
        stop_strings: args.stop.clone(),
        seed: args.seed,
        sync_every: args.sync_every,
    };
    let ids = prompts.iter().map(|p| policy.encode(p)).collect::<Result<Vec<_>, _>>()?;
    let eos: &[i64] = if args.ignore_eos { &[] } else { &policy.text.eos_ids };
    if args.ignore_eos {
        // Warm-up (allocator, kernels), as the transformers peer does before timing.
        let warm = SamplingParams { max_new_tokens: 4, ..params.clone() };
        harness_policy::generate(&policy.model, &ids, eos, policy.text.pad_id, &warm, &|t| policy.decode(t));
    }
    let start = std::time::Instant::now();
    let (texts, generations): (Vec<String>, Vec<harness_policy::Generation>) = if args.ignore_eos {
        let generations = harness_policy::generate(&policy.model, &ids, eos, policy.text.pad_id, &params, &|t| policy.decode(t));
        (generations.iter().map(|g| policy.decode(&g.token_ids)).collect(), generations)
    } else {
        policy.generate_texts(&prompts, &params)?.into_iter().unzip()
    };
    let seconds = start.elapsed().as_secs_f64();
    let tokens: usize = generations.iter().map(|g| g.token_ids.len()).sum();
    for ((prompt_ids, generation), text) in ids.iter().zip(&generations).zip(&texts) {
        if args.ids {
            println!("prompt_ids: {prompt_ids:?}");
            println!("generated_ids: {:?}", generation.token_ids);
        }
        println!("{text}");
    }
    eprintln!(
        "tokens={tokens} seconds={seconds:.3} tokens_per_s={:.2} (batch {}, {:?}, finish: {:?})",
        tokens as f64 / seconds.max(1e-9),
        ids.len(),
        device,
        generations[0].finish
    );
    Ok(())
}
