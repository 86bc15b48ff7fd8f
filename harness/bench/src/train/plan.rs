//! `harness train --plan`: the predicted peak memory of a run on its device, without loading
//! the weights or touching the device: the model's config.json, the run's config and the
//! longest prompt of the training split (tokenized as training does).
use std::path::Path;

use anyhow::{Context, Result};
use harness_policy::{ModelConfig, PolicyText};
use harness_rl::plan::{config_lines, plan, render, PlanDevice, PlanInput};

use super::env::prompt_ids;
use super::verl::{rows, VerlSpec};
use super::{resolve_config, TrainSpec};
use crate::context::Bench;

const GIB: f64 = (1u64 << 30) as f64;

/// The plan as text. `memory_gib`: the budget (default: 75 GiB on CUDA, the memory available
/// now on the CPU); `prompt_tokens`: the prompt length planned for (default: the split's
/// longest, which the worst batch pads to).
pub fn plan_text(bench: &Bench, spec: &TrainSpec, memory_gib: Option<f64>, prompt_tokens: Option<usize>) -> Result<String> {
    let config = resolve_config(spec)?;
    let card = bench.registry.get(&spec.dataset)?.clone();
    let dir = spec.policy.clone().unwrap_or_else(|| bench.workspace.default_policy());
    let config_path = dir.join("config.json");
    let model_text = std::fs::read_to_string(&config_path).with_context(|| format!("reading {}", config_path.display()))?;
    let model = ModelConfig::parse(&config_path, &model_text)?;
    // A shape-only folder (config.json alone, as for a planned 3B run) borrows the setup's
    // tokenizer, which the output says: its counts differ from the model's own.
    let (text, tokenizer_note) = match PolicyText::load(&dir) {
        Ok(text) => (text, String::new()),
        Err(_) => {
            let fallback = bench.workspace.default_policy();
            (PolicyText::load(&fallback)?, format!(" (tokenized with {}: {} has no tokenizer)", fallback.display(), dir.display()))
        }
    };
    let verl = VerlSpec {
        dataset: spec.dataset.clone(),
        split: spec.split.clone(),
        reasoning: config.run.reasoning,
        retriever: spec.retriever.clone(),
        engine: spec.engine.clone(),
        out: Path::new("-").to_path_buf(),
    };
    let prompts = harness_baselines::Prompts::new();
    let mut lengths = rows(bench, &card, &verl)?
        .iter()
        .map(|row| prompt_ids(&text, &prompts, &row.task, config.run.reasoning).map(|ids| ids.len()))
        .collect::<Result<Vec<_>>>()?;
    anyhow::ensure!(!lengths.is_empty(), "split '{}' of {} has no training examples", spec.split, card.name);
    lengths.sort_unstable();
    let longest = *lengths.last().expect("not empty");
    let planned = prompt_tokens.unwrap_or(longest);
    // The device's kind only: planning a GPU run needs no GPU here (`parse_device` would refuse
    // cuda without one), but the names are the same.
    let device = match spec.device.as_str() {
        "cpu" => PlanDevice::Cpu,
        "auto" => if tch::Cuda::is_available() { PlanDevice::Cuda } else { PlanDevice::Cpu },
        "cuda" | "gpu" => PlanDevice::Cuda,
        other if other.strip_prefix("cuda:").is_some_and(|n| n.parse::<usize>().is_ok()) => PlanDevice::Cuda,
        other => anyhow::bail!("unknown device '{other}' (auto, cpu, cuda, cuda:N)"),
    };
    let budget_gib = match (memory_gib, device) {
        (Some(g), _) => g,
        (None, PlanDevice::Cuda) => 75.0,
        (None, PlanDevice::Cpu) => available_gib().context("reading /proc/meminfo: pass --memory-gib")?,
    };
    let input = PlanInput { model: &model, ppo: &config.ppo, lora: config.lora, device, prompt_tokens: planned };
    let (configured, fitting) = plan(&input, budget_gib * GIB);
    let mut out = format!(
        "plan: {} ({:.2} B parameters, {}) on {} with config {} (batch {} x {} response tokens, mini-batch {})\n",
        dir.display(),
        harness_rl::plan::parameter_count(&model) / 1e9,
        if config.lora.is_some() { "LoRA" } else { "full fine-tuning" },
        match device {
            PlanDevice::Cpu => "the CPU (float32)",
            PlanDevice::Cuda => "CUDA (bf16 compute)",
        },
        spec.config.as_deref().unwrap_or(super::defaults::CONFIG),
        config.ppo.batch_size,
        config.ppo.max_response_tokens,
        config.ppo.mini_batch_size,
    );
    out.push_str(&format!(
        "prompts of {} {}: {} examples, median {} tokens, longest {}{tokenizer_note}; planned for {}\n\nas configured:\n{}",
        card.name,
        spec.split,
        lengths.len(),
        lengths[lengths.len() / 2],
        longest,
        if prompt_tokens.is_some() { format!("{planned} (--prompt-tokens)") } else { format!("{planned} (the longest)") },
        render(&configured)
    ));
    let budget = budget_gib * GIB;
    let configured_fits = configured.peak_bytes() <= budget;
    out.push_str(&format!(
        "\nbudget {budget_gib:.1} GiB: the configured setting {}\n",
        if configured_fits { "fits" } else { "does not fit" }
    ));
    // `fitting` prefers no recomputation, then the most rows an update pass: the fastest that
    // fits. Shown when the configured setting does not fit, or when `fitting` is faster.
    let faster = |e: &harness_rl::plan::Estimate| {
        (configured.activation_checkpointing && !e.activation_checkpointing)
            || (configured.activation_checkpointing == e.activation_checkpointing && e.micro_rows > configured.micro_rows)
    };
    match fitting {
        Some(e) if configured_fits && !faster(&e) => {}
        Some(e) => out.push_str(&format!(
            "{} for the config's [ppo] table:\n{}\n\n{}",
            if configured_fits { "a faster setting (no recomputation, or more rows a pass) also fits," } else { "the largest micro-batch that fits," },
            config_lines(&e),
            render(&e)
        )),
        None => out.push_str("nothing fits, not even one row a pass with activation checkpointing: use LoRA, a smaller model or more memory\n"),
    }
    Ok(out)
}

fn available_gib() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / (1024.0 * 1024.0))
}
