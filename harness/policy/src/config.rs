//! `config.json` of a Hugging Face Llama or Qwen2 model.
use serde::Deserialize;

use crate::PolicyError;

/// Decoder architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// Llama (SmolLM2, Llama 3.x): no attention biases.
    Llama,
    /// Qwen2 / Qwen2.5: biases on the q, k and v projections.
    Qwen2,
}

/// Llama 3 style RoPE frequency scaling.
#[derive(Debug, Clone, Deserialize)]
pub struct RopeScaling {
    #[serde(default, alias = "type")]
    pub rope_type: Option<String>,
    #[serde(default)]
    pub factor: Option<f64>,
    #[serde(default)]
    pub low_freq_factor: Option<f64>,
    #[serde(default)]
    pub high_freq_factor: Option<f64>,
    #[serde(default)]
    pub original_max_position_embeddings: Option<f64>,
}

/// `rope_parameters` of a transformers 5 config: the base and, unless `rope_type` is
/// `default`, the scaling.
#[derive(Debug, Clone, Deserialize)]
pub struct RopeParameters {
    #[serde(default)]
    pub rope_theta: Option<f64>,
    #[serde(flatten)]
    pub scaling: RopeScaling,
}

/// Token id or ids (`eos_token_id` may be a list).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum TokenIds {
    One(i64),
    Many(Vec<i64>),
}

impl TokenIds {
    pub fn to_vec(&self) -> Vec<i64> {
        match self {
            TokenIds::One(id) => vec![*id],
            TokenIds::Many(ids) => ids.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ModelConfig {
    pub model_type: String,
    pub hidden_size: i64,
    pub intermediate_size: i64,
    pub num_hidden_layers: i64,
    pub num_attention_heads: i64,
    #[serde(default)]
    pub num_key_value_heads: Option<i64>,
    #[serde(default)]
    pub head_dim: Option<i64>,
    pub rms_norm_eps: f64,
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f64,
    #[serde(default)]
    pub rope_scaling: Option<RopeScaling>,
    /// transformers 5 writes `rope_theta` and the scaling here instead of at the top level.
    #[serde(default)]
    pub rope_parameters: Option<RopeParameters>,
    pub vocab_size: i64,
    /// The context length the model was trained for, when the config says.
    #[serde(default)]
    pub max_position_embeddings: Option<i64>,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    #[serde(default)]
    pub bos_token_id: Option<TokenIds>,
    #[serde(default)]
    pub eos_token_id: Option<TokenIds>,
    #[serde(default)]
    pub attention_bias: Option<bool>,
    #[serde(default)]
    pub hidden_act: Option<String>,
}

fn default_rope_theta() -> f64 {
    10_000.0
}

impl ModelConfig {
    pub fn parse(path: &std::path::Path, text: &str) -> Result<ModelConfig, PolicyError> {
        let mut config: ModelConfig = serde_json::from_str(text).map_err(|e| PolicyError::Format {
            path: path.to_path_buf(),
            cause: format!("line {}: {e}", e.line()),
        })?;
        if let Some(params) = config.rope_parameters.clone() {
            if let Some(theta) = params.rope_theta {
                config.rope_theta = theta;
            }
            if config.rope_scaling.is_none() && params.scaling.rope_type.as_deref().is_some_and(|t| t != "default") {
                config.rope_scaling = Some(params.scaling);
            }
        }
        config.architecture().map_err(|cause| PolicyError::Format { path: path.to_path_buf(), cause })?;
        if let Some(act) = &config.hidden_act {
            if act != "silu" {
                return Err(PolicyError::Format { path: path.to_path_buf(), cause: format!("hidden_act '{act}' is not supported (silu only)") });
            }
        }
        if config.hidden_size % config.num_attention_heads != 0 && config.head_dim.is_none() {
            return Err(PolicyError::Format { path: path.to_path_buf(), cause: "hidden_size is not a multiple of num_attention_heads".into() });
        }
        if config.num_attention_heads % config.kv_heads() != 0 {
            return Err(PolicyError::Format { path: path.to_path_buf(), cause: "num_attention_heads is not a multiple of num_key_value_heads".into() });
        }
        Ok(config)
    }

    pub fn architecture(&self) -> Result<Architecture, String> {
        match self.model_type.as_str() {
            "llama" => Ok(Architecture::Llama),
            "qwen2" => Ok(Architecture::Qwen2),
            other => Err(format!("model_type '{other}' is not supported (llama or qwen2)")),
        }
    }

    pub fn kv_heads(&self) -> i64 {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    pub fn head_dim(&self) -> i64 {
        self.head_dim.unwrap_or(self.hidden_size / self.num_attention_heads)
    }

    /// Whether q/k/v projections carry biases (Qwen2 always; Llama when `attention_bias`).
    pub fn qkv_bias(&self) -> bool {
        self.attention_bias.unwrap_or(self.model_type == "qwen2")
    }

    /// RoPE inverse frequencies, with Llama 3 scaling when configured.
    pub fn inv_freq(&self) -> Vec<f64> {
        let dim = self.head_dim();
        let mut inv: Vec<f64> = (0..dim / 2).map(|i| 1.0 / self.rope_theta.powf((2 * i) as f64 / dim as f64)).collect();
        if let Some(s) = &self.rope_scaling {
            if s.rope_type.as_deref() == Some("llama3") {
                let factor = s.factor.unwrap_or(8.0);
                let low = s.low_freq_factor.unwrap_or(1.0);
                let high = s.high_freq_factor.unwrap_or(4.0);
                let old_ctx = s.original_max_position_embeddings.unwrap_or(8192.0);
                let low_wavelen = old_ctx / low;
                let high_wavelen = old_ctx / high;
                for f in inv.iter_mut() {
                    let wavelen = 2.0 * std::f64::consts::PI / *f;
                    if wavelen > low_wavelen {
                        *f /= factor;
                    } else if wavelen >= high_wavelen {
                        let smooth = (old_ctx / wavelen - low) / (high - low);
                        *f = (1.0 - smooth) * *f / factor + smooth * *f;
                    }
                }
            }
        }
        inv
    }
}
