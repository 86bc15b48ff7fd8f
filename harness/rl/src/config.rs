//! Training settings: the `[run]`, `[ppo]` and `[lora]` tables of a config file (`paper`,
//! `cpu-small`, or a user's TOML).
use crate::RlError;

/// Which advantage estimator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// PPO with a critic and GAE.
    Ppo,
    /// GRPO: `group_size` samples per prompt, group-normalised scores, no critic.
    Grpo,
}

/// Training settings (a `[ppo]` table in a config file).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PpoConfig {
    pub algorithm: Algorithm,
    pub actor_lr: f64,
    pub critic_lr: f64,
    pub weight_decay: f64,
    /// Prompts per step.
    pub batch_size: usize,
    /// Rows per gradient step.
    pub mini_batch_size: usize,
    /// Most tokens (rows x padded prompt-and-response length) in one forward and backward pass
    /// of the update: a larger mini-batch is split into micro-batches whose gradients add up to
    /// the mini-batch's (token-weighted), so long prompts (Spider's schemas) fit in memory.
    /// Unset: the whole mini-batch at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub micro_batch_tokens: Option<usize>,
    /// Keep only each layer's input during the update's forward pass and recompute the layer
    /// in the backward pass: activation memory of one layer instead of all, for one more
    /// forward pass. Same gradients.
    #[serde(default)]
    pub activation_checkpointing: bool,
    pub ppo_epochs: usize,
    pub clip_ratio: f64,
    pub value_clip: f64,
    pub entropy_coeff: f64,
    pub kl_coef: f64,
    pub gamma: f64,
    pub lambda: f64,
    pub grad_clip: f64,
    pub temperature: f64,
    pub max_response_tokens: usize,
    /// GRPO samples per prompt (PPO: 1).
    pub group_size: usize,
    pub seed: u64,
}

impl PpoConfig {
    /// Rows in one forward pass over `rows` rows of `row_tokens` padded tokens each: as many as
    /// fit in `micro_batch_tokens` (at least one), or, unset, a whole mini-batch. The update's
    /// passes split a mini-batch, the scoring pass the whole batch; `harness train --plan`
    /// counts memory with the same rule.
    pub fn rows_per_pass(&self, rows: usize, row_tokens: usize) -> usize {
        let rows = rows.max(1);
        match self.micro_batch_tokens {
            None => self.mini_batch_size.clamp(1, rows),
            Some(tokens) => (tokens / row_tokens.max(1)).clamp(1, rows),
        }
    }
}

/// A training run's settings: the `[run]` and `[ppo]` tables of a config file.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    pub run: RunSettings,
    pub ppo: PpoConfig,
    /// With a `[lora]` table: the memory-lean mode (adapters on a frozen shared base).
    #[serde(default)]
    pub lora: Option<LoraConfig>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSettings {
    pub total_steps: u64,
    pub save_every: u64,
    pub reasoning: bool,
    pub reward_depth: usize,
    /// Greedy evaluation on the held-out split every this many steps (0: never), the best
    /// checkpoint by its metric kept as `best/`.
    #[serde(default)]
    pub eval_every: u64,
}

impl RunConfig {
    /// `paper`, `cpu-small`, `cpu-lora`, `cpu-lora-grpo` (built in) or a TOML file.
    pub fn load(name: &str) -> Result<RunConfig, RlError> {
        let (origin, text) = match name {
            "paper" => ("paper".to_string(), include_str!("../configs/paper.toml").to_string()),
            "cpu-small" => ("cpu-small".to_string(), include_str!("../configs/cpu-small.toml").to_string()),
            "cpu-lora" => ("cpu-lora".to_string(), include_str!("../configs/cpu-lora.toml").to_string()),
            "cpu-lora-grpo" => ("cpu-lora-grpo".to_string(), include_str!("../configs/cpu-lora-grpo.toml").to_string()),
            path => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| RlError::Config { origin: path.to_string(), cause: format!("{e} (built-in configs: paper, cpu-small, cpu-lora, cpu-lora-grpo)") })?;
                (path.to_string(), text)
            }
        };
        toml::from_str(&text).map_err(|e| RlError::Config { origin, cause: e.to_string() })
    }
}

/// LoRA settings of the memory-lean mode.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoraConfig {
    pub rank: i64,
    pub alpha: f64,
}

