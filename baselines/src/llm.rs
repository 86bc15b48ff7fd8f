//! Query generation by a prompted local model (`llm:DIR`) or a trained policy
//! (`checkpoint:DIR`): the task prompt in the model's chat template, generation, then the
//! answer read the way the paper's evaluation reads it.
use std::collections::BTreeMap;
use std::path::Path;

use harness_core::answer::{parse_lenient, parse_strict, AnswerFormat};
use harness_core::Query;
use harness_policy::{Message, Policy, SamplingParams};

use crate::prompts::{assistant_prefix, system_message, Prompts, Task};
use crate::{MethodError, QueryMethod, Rewrite};

/// Generation settings of a model-based method.
#[derive(Debug, Clone)]
pub struct LlmSettings {
    /// Reason in `<think>` before answering.
    pub reasoning: bool,
    pub sampling: SamplingParams,
    /// Prompts per generation batch.
    pub batch_size: usize,
}

impl Default for LlmSettings {
    fn default() -> Self {
        LlmSettings { reasoning: true, sampling: SamplingParams { max_new_tokens: 512, ..Default::default() }, batch_size: 8 }
    }
}

/// What one model call produced, kept for the run's `rewrites.jsonl`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Generated {
    pub query_id: String,
    /// The assistant turn (pre-filled prefix included).
    pub output: String,
    /// The query handed to the retriever (empty when the output has no answer).
    pub query: String,
    /// `ok` or the strict parser's format-error label.
    pub format: String,
    pub tokens: usize,
}

/// Builds the task for a query (dataset-specific wording).
pub type TaskBuilder = Box<dyn Fn(&Query) -> Task + Send>;

pub use harness_policy::model_files_sha256;

/// A prompted local model.
pub struct LlmMethod {
    name: String,
    policy: Policy,
    prompts: Prompts,
    settings: LlmSettings,
    task: TaskBuilder,
    /// Every generation of the last `rewrite` call.
    pub generated: Vec<Generated>,
}

impl LlmMethod {
    /// Loads the model folder `dir`; `name` is the table label (`llm:smollm2-135m-instruct`).
    /// A folder holding a LoRA adapter (`adapter_config.json`) is merged into its base model,
    /// found by name in `models_dir`.
    pub fn load(name: String, dir: &Path, models_dir: &Path, device: tch::Device, settings: LlmSettings, task: TaskBuilder) -> Result<LlmMethod, MethodError> {
        let policy = Policy::load_model_or_adapter(dir, models_dir, device).map_err(|e| MethodError::Model(e.to_string()))?;
        Ok(LlmMethod { name, policy, prompts: Prompts::new(), settings, task, generated: Vec::new() })
    }

    /// The prompt text of a task (chat template applied, assistant turn pre-filled).
    pub fn prompt(&self, task: &Task) -> Result<String, MethodError> {
        let reasoning = self.settings.reasoning;
        let user = self.prompts.user_message(task, reasoning).map_err(|e| MethodError::Model(format!("prompt: {e}")))?;
        let messages = [Message::new("system", system_message(reasoning)), Message::new("user", &user)];
        let chat = self.policy.chat_prompt(&messages).map_err(|e| MethodError::Model(e.to_string()))?;
        Ok(chat + assistant_prefix(reasoning))
    }

    /// Share of generations with a format error, by label.
    pub fn format_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for g in &self.generated {
            *counts.entry(g.format.clone()).or_insert(0) += 1;
        }
        counts
    }
}

impl QueryMethod for LlmMethod {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn rewrite(&mut self, queries: &[Query]) -> Result<Vec<Rewrite>, MethodError> {
        self.generated.clear();
        let reasoning = self.settings.reasoning;
        let format = if reasoning { AnswerFormat::Reasoning } else { AnswerFormat::Direct };
        let mut out = Vec::with_capacity(queries.len());
        let bar = indicatif::ProgressBar::new(queries.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{prefix} {bar:40} {pos}/{len} queries [{elapsed_precise}, eta {eta}]").expect("valid template"),
        );
        bar.set_prefix(format!("generating ({})", self.name));
        for chunk in queries.chunks(self.settings.batch_size.max(1)) {
            let tasks: Vec<Task> = chunk.iter().map(|q| (self.task)(q)).collect();
            let prompts = tasks.iter().map(|t| self.prompt(t)).collect::<Result<Vec<_>, _>>()?;
            let results = self.policy.generate_texts(&prompts, &self.settings.sampling).map_err(|e| MethodError::Model(e.to_string()))?;
            for ((q, task), (text, generation)) in chunk.iter().zip(&tasks).zip(results) {
                let turn = format!("{}{text}", assistant_prefix(reasoning));
                let key = task.answer_key();
                let strict = parse_strict(&turn, format, key);
                let query = parse_lenient(&turn, key).unwrap_or_default();
                self.generated.push(Generated {
                    query_id: q.id.clone(),
                    output: turn,
                    query: query.clone(),
                    format: strict.as_ref().map_or_else(|e| e.label().to_string(), |_| "ok".to_string()),
                    tokens: generation.token_ids.len(),
                });
                out.push(Rewrite { query_id: q.id.clone(), text: query });
            }
            bar.inc(chunk.len() as u64);
        }
        bar.finish_and_clear();
        Ok(out)
    }

    fn report(&self) -> serde_json::Value {
        let tokens: usize = self.generated.iter().map(|g| g.tokens).sum();
        serde_json::json!({
            "model_dir": self.policy.dir,
            "model_files_sha256": model_files_sha256(&self.policy.dir),
            "reasoning": self.settings.reasoning,
            "max_new_tokens": self.settings.sampling.max_new_tokens,
            "temperature": self.settings.sampling.temperature,
            "seed": self.settings.sampling.seed,
            "generated_tokens": tokens,
            "format_outcomes": self.format_counts(),
            "empty_queries": self.generated.iter().filter(|g| g.query.is_empty()).count(),
        })
    }

    fn generations(&self) -> Vec<serde_json::Value> {
        self.generated.iter().map(|g| serde_json::to_value(g).unwrap_or_default()).collect()
    }
}
