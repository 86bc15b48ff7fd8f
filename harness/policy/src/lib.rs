//! The policy: a Llama or Qwen2 instruct model in tch, loaded from a Hugging Face folder
//! (config.json, safetensors, tokenizer.json, chat template). The same code serves evaluation,
//! the prompted-LLM baselines and PPO training: float32 on CPU, bfloat16 on CUDA.
pub mod adapter;
pub mod chat;
pub mod config;
pub mod generate;
pub mod layout;
pub mod mkl;
pub mod model;

use std::path::{Path, PathBuf};

use tch::{nn, Device, Kind};

pub use adapter::{is_adapter_dir, model_files_sha256};
pub use chat::{ChatTemplate, Message};
pub use config::{Architecture, ModelConfig};
pub use layout::resolve_model_dir;
pub use generate::{generate, generate_on, DecodePath, Finish, Generation, SamplingParams};
pub use model::{CausalLm, KvCache};

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{path}: {cause}", path = .path.display())]
    Io { path: PathBuf, cause: std::io::Error },
    #[error("{path}: {cause}", path = .path.display())]
    Format { path: PathBuf, cause: String },
    #[error("{0}")]
    Config(String),
}

impl PolicyError {
    pub(crate) fn io(path: &Path, cause: std::io::Error) -> PolicyError {
        PolicyError::Io { path: path.to_path_buf(), cause }
    }
}

/// `auto` (CUDA when present), `cpu`, `cuda` or `cuda:N`.
pub fn parse_device(spec: &str) -> Result<Device, PolicyError> {
    match spec {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        "cuda" | "gpu" => {
            if tch::Cuda::is_available() {
                Ok(Device::Cuda(0))
            } else {
                Err(PolicyError::Config("--device cuda: no CUDA device is visible to libtorch".into()))
            }
        }
        other => match other.strip_prefix("cuda:").and_then(|n| n.parse::<usize>().ok()) {
            Some(i) if (i as i64) < tch::Cuda::device_count() => Ok(Device::Cuda(i)),
            Some(i) => Err(PolicyError::Config(format!("--device cuda:{i}: only {} CUDA devices", tch::Cuda::device_count()))),
            None => Err(PolicyError::Config(format!("unknown device '{other}' (auto, cpu, cuda, cuda:N)"))),
        },
    }
}

/// Weights' dtype for a device: float32 on CPU (exact against the references), bfloat16 on GPU.
pub fn default_kind(device: Device) -> Kind {
    if device.is_cuda() { Kind::BFloat16 } else { Kind::Float }
}

/// The text side of a model folder: tokenizer, chat template and the ids that end a turn,
/// loaded without the weights (cheap: what a trainer's environment needs beside the model).
pub struct PolicyText {
    pub tokenizer: tokenizers::Tokenizer,
    pub template: ChatTemplate,
    /// Tokens that end a generation (config's eos ids plus the template's end-of-turn token).
    pub eos_ids: Vec<i64>,
    pub pad_id: i64,
}

impl PolicyText {
    /// Reads config.json (for its eos ids), tokenizer.json and the chat template of `dir`.
    pub fn load(dir: &Path) -> Result<PolicyText, PolicyError> {
        Ok(Self::load_with_config(dir)?.0)
    }

    fn load_with_config(dir: &Path) -> Result<(PolicyText, ModelConfig), PolicyError> {
        if !dir.is_dir() {
            return Err(PolicyError::Config(format!("model folder {} does not exist", dir.display())));
        }
        let config_path = dir.join("config.json");
        let text = std::fs::read_to_string(&config_path).map_err(|e| PolicyError::io(&config_path, e))?;
        let config = ModelConfig::parse(&config_path, &text)?;
        let tokenizer_path = dir.join("tokenizer.json");
        let tokenizer = tokenizers::Tokenizer::from_file(&tokenizer_path)
            .map_err(|e| PolicyError::Format { path: tokenizer_path.clone(), cause: e.to_string() })?;
        let template = ChatTemplate::load(dir)?;
        let mut eos_ids = config.eos_token_id.as_ref().map(|e| e.to_vec()).unwrap_or_default();
        // Chat models end a turn with these even when config.json names another EOS.
        for end_of_turn in ["<|im_end|>", "<|eot_id|>"] {
            if let Some(id) = tokenizer.token_to_id(end_of_turn).map(i64::from) {
                if !eos_ids.contains(&id) {
                    eos_ids.push(id);
                }
            }
        }
        if eos_ids.is_empty() {
            return Err(PolicyError::Format { path: config_path, cause: "no eos_token_id and no known end-of-turn token".into() });
        }
        let pad_id = eos_ids[0];
        Ok((PolicyText { tokenizer, template, eos_ids, pad_id }, config))
    }

    /// Token ids of `text` as written (special tokens in the text are recognised, no BOS added:
    /// chat templates write their own).
    pub fn encode(&self, text: &str) -> Result<Vec<i64>, PolicyError> {
        let enc = self.tokenizer.encode(text, false).map_err(|e| PolicyError::Config(format!("tokenizing: {e}")))?;
        Ok(enc.get_ids().iter().map(|&i| i as i64).collect())
    }

    /// Text of token ids, special tokens included.
    pub fn decode(&self, ids: &[i64]) -> String {
        let ids: Vec<u32> = ids.iter().map(|&i| i as u32).collect();
        self.tokenizer.decode(&ids, false).unwrap_or_default()
    }

    /// The chat prompt text for `messages`, ending with the assistant header.
    pub fn chat_prompt(&self, messages: &[Message]) -> Result<String, PolicyError> {
        self.template.render(messages, true).map_err(|e| PolicyError::Config(format!("chat template: {e}")))
    }
}

/// A loaded model folder: the weights and the text side.
pub struct Policy {
    pub dir: PathBuf,
    pub vs: nn::VarStore,
    pub model: CausalLm,
    pub text: PolicyText,
}

impl Policy {
    /// Loads `dir` onto `device` with the device's default dtype.
    pub fn load(dir: &Path, device: Device) -> Result<Policy, PolicyError> {
        Self::load_as(dir, device, default_kind(device))
    }

    pub fn load_as(dir: &Path, device: Device, kind: Kind) -> Result<Policy, PolicyError> {
        let (text, config) = PolicyText::load_with_config(dir)?;
        let mut vs = nn::VarStore::new(device);
        let model = CausalLm::new(&vs.root(), config);
        model::load_weights(&mut vs, dir)?;
        if kind != Kind::Float {
            vs.set_kind(kind);
        }
        Ok(Policy { dir: dir.to_path_buf(), vs, model, text })
    }

    /// See [`PolicyText::encode`].
    pub fn encode(&self, text: &str) -> Result<Vec<i64>, PolicyError> {
        self.text.encode(text)
    }

    /// See [`PolicyText::decode`].
    pub fn decode(&self, ids: &[i64]) -> String {
        self.text.decode(ids)
    }

    /// See [`PolicyText::chat_prompt`].
    pub fn chat_prompt(&self, messages: &[Message]) -> Result<String, PolicyError> {
        self.text.chat_prompt(messages)
    }

    /// Generates from prompt texts; returns each generation with its decoded text (cut before a
    /// stop string, EOS token not included).
    pub fn generate_texts(&self, prompts: &[String], params: &SamplingParams) -> Result<Vec<(String, Generation)>, PolicyError> {
        let ids = prompts.iter().map(|p| self.encode(p)).collect::<Result<Vec<_>, _>>()?;
        Ok(self.generate_from_ids(&ids, params))
    }

    /// [`Policy::generate_texts`] from prompts already tokenized.
    pub fn generate_from_ids(&self, ids: &[Vec<i64>], params: &SamplingParams) -> Vec<(String, Generation)> {
        let eos = &self.text.eos_ids;
        let gens = generate(&self.model, ids, eos, self.text.pad_id, params, &|t| self.decode(t));
        gens
            .into_iter()
            .map(|g| {
                let body: Vec<i64> = g.token_ids.iter().copied().filter(|t| !eos.contains(t)).collect();
                let mut text = self.decode(&body);
                if g.finish == Finish::Stop {
                    if let Some(cut) = params.stop_strings.iter().filter_map(|s| text.find(s.as_str())).min() {
                        text.truncate(cut);
                    }
                }
                (text, g)
            })
            .collect()
    }
}
