//! LoRA adapters as files: peft's layout (`adapter_config.json`, `adapter_model.safetensors`
//! with peft's tensor names), so that a policy trained here is a few MB that peft can also load
//! onto the Hugging Face base model, plus `harness_adapter.json`: the base model's folder name
//! and file hashes (an adapter merged into another base is refused) and how it was trained.
//!
//! Loading merges the adapter into the base weights (`W + B A * alpha / r`, in float32) once,
//! so decoding runs the plain model with no adapter branch.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tch::{Device, Kind, Tensor};

use crate::model::CausalLm;
use crate::{default_kind, Policy, PolicyError};

pub const PEFT_CONFIG: &str = "adapter_config.json";
pub const PEFT_WEIGHTS: &str = "adapter_model.safetensors";
pub const HARNESS_META: &str = "harness_adapter.json";

/// The projections every adapter made here covers (peft's `target_modules`).
pub const TARGET_MODULES: [&str; 7] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

/// What `harness_adapter.json` says.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AdapterMeta {
    /// The base model's folder name (resolved in the models folder).
    pub base_model: String,
    /// sha256 of the base folder's weights and config files when the adapter was written.
    pub base_files_sha256: BTreeMap<String, String>,
    pub rank: i64,
    pub alpha: f64,
    /// How it was trained (command, config, steps, commit): free JSON.
    #[serde(default)]
    pub training: serde_json::Value,
}

/// Whether `dir` holds an adapter rather than a full model.
pub fn is_adapter_dir(dir: &Path) -> bool {
    dir.join(PEFT_CONFIG).is_file()
}

/// peft's name of a projection's `A` (`[r, in]`) or `B` (`[out, r]`) matrix.
pub fn peft_name(layer: usize, proj: &str, matrix: char) -> String {
    let block = if matches!(proj, "gate_proj" | "up_proj" | "down_proj") { "mlp" } else { "self_attn" };
    format!("base_model.model.model.layers.{layer}.{block}.{proj}.lora_{matrix}.weight")
}

/// sha256 of each weights, config and tokenizer file of a model folder (`*.safetensors`,
/// `*.json`), by file name: which model a run used, whatever the folder is called. A file that
/// cannot be read says why instead of a digest.
pub fn model_files_sha256(dir: &Path) -> BTreeMap<String, String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return BTreeMap::new() };
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "safetensors" || e == "json"))
        .map(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy().into_owned();
            (name, harness_core::io::sha256_file(&p).unwrap_or_else(|e| format!("unreadable: {e}")))
        })
        .collect()
}

/// The base files an adapter is tied to: the weights and the model config (tokenizer and
/// template files may be re-saved without changing the model).
fn base_identity(dir: &Path) -> BTreeMap<String, String> {
    model_files_sha256(dir).into_iter().filter(|(name, _)| name.ends_with(".safetensors") || name == "config.json").collect()
}

/// Writes an adapter folder at `out` (a staging folder renamed into place). `tensors` carry
/// peft names ([`peft_name`]); `base_dir` is the model they were trained on.
pub fn write_adapter(out: &Path, base_dir: &Path, rank: i64, alpha: f64, tensors: &[(String, Tensor)], training: serde_json::Value) -> Result<(), PolicyError> {
    let parent = out.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| PolicyError::io(parent, e))?;
    let staging = parent.join(format!(".{}.partial", out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|e| PolicyError::io(&staging, e))?;
    let cpu: Vec<(String, Tensor)> = tensors.iter().map(|(n, t)| (n.clone(), t.detach().to_kind(Kind::Float).to_device(Device::Cpu).contiguous())).collect();
    let weights = staging.join(PEFT_WEIGHTS);
    Tensor::write_safetensors(&cpu, &weights).map_err(|e| PolicyError::Format { path: weights.clone(), cause: e.to_string() })?;
    let base_name = base_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let hub_id = read_json(&base_dir.join("config.json")).ok().and_then(|c| c["_name_or_path"].as_str().map(str::to_string)).unwrap_or_else(|| base_name.clone());
    let peft = serde_json::json!({
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": hub_id,
        "r": rank,
        "lora_alpha": alpha,
        "lora_dropout": 0.0,
        "target_modules": TARGET_MODULES,
        "bias": "none",
        "fan_in_fan_out": false,
        "inference_mode": true,
    });
    let meta = AdapterMeta { base_model: base_name, base_files_sha256: base_identity(base_dir), rank, alpha, training };
    for (name, value) in [(PEFT_CONFIG, peft), (HARNESS_META, serde_json::to_value(&meta).expect("meta serialises"))] {
        let path = staging.join(name);
        std::fs::write(&path, serde_json::to_string_pretty(&value).expect("JSON serialises") + "\n").map_err(|e| PolicyError::io(&path, e))?;
    }
    let _ = std::fs::remove_dir_all(out);
    std::fs::rename(&staging, out).map_err(|e| PolicyError::io(out, e))
}

fn read_json(path: &Path) -> Result<serde_json::Value, PolicyError> {
    let text = std::fs::read_to_string(path).map_err(|e| PolicyError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| PolicyError::Format { path: path.to_path_buf(), cause: e.to_string() })
}

/// Reads an adapter folder: its meta and its tensors by name.
pub fn read_adapter(dir: &Path) -> Result<(AdapterMeta, BTreeMap<String, Tensor>), PolicyError> {
    let meta_path = dir.join(HARNESS_META);
    let meta: AdapterMeta = serde_json::from_value(read_json(&meta_path)?).map_err(|e| PolicyError::Format { path: meta_path.clone(), cause: e.to_string() })?;
    let peft = read_json(&dir.join(PEFT_CONFIG))?;
    let (r, alpha) = (peft["r"].as_i64(), peft["lora_alpha"].as_f64());
    if r != Some(meta.rank) || alpha != Some(meta.alpha) {
        return Err(PolicyError::Format { path: dir.join(PEFT_CONFIG), cause: format!("r {r:?} / lora_alpha {alpha:?} differ from {HARNESS_META}'s {} / {}", meta.rank, meta.alpha) });
    }
    let weights = dir.join(PEFT_WEIGHTS);
    let tensors = Tensor::read_safetensors(&weights).map_err(|e| PolicyError::Format { path: weights.clone(), cause: e.to_string() })?;
    Ok((meta, tensors.into_iter().collect()))
}

impl CausalLm {
    /// Adds `B A * scale` of every projection named in `tensors` (peft names) to its weight.
    /// Every tensor must be used and every shape must fit: an adapter of another model is an
    /// error naming the first misfit.
    pub fn merge_adapter(&self, tensors: &BTreeMap<String, Tensor>, scale: f64) -> Result<usize, String> {
        let mut used = 0;
        tch::no_grad(|| {
            for (i, name, proj) in self.projections() {
                let (ka, kb) = (peft_name(i, name, 'A'), peft_name(i, name, 'B'));
                let (Some(la), Some(lb)) = (tensors.get(&ka), tensors.get(&kb)) else { continue };
                let (out, input) = proj.weight.size2().expect("2-D weight");
                let (ra, ia) = la.size2().map_err(|e| format!("{ka}: {e}"))?;
                let (ob, rb) = lb.size2().map_err(|e| format!("{kb}: {e}"))?;
                if ia != input || ob != out || ra != rb {
                    return Err(format!("{ka} {:?} / {kb} {:?} do not fit a [{out}, {input}] projection", la.size(), lb.size()));
                }
                let delta = lb.to_kind(Kind::Float).matmul(&la.to_kind(Kind::Float)) * scale;
                let mut w = proj.weight.shallow_clone();
                let merged = w.to_kind(Kind::Float) + delta.to_device(w.device());
                w.copy_(&merged.to_kind(w.kind()));
                used += 2;
            }
            Ok(())
        })?;
        if used != tensors.len() {
            let known: Vec<String> = (0..self.num_layers()).flat_map(|i| TARGET_MODULES.iter().flat_map(move |p| [peft_name(i, p, 'A'), peft_name(i, p, 'B')])).collect();
            let stray = tensors.keys().find(|k| !known.contains(k)).cloned().unwrap_or_default();
            return Err(format!("{} of {} tensors fit this model; first that does not: '{stray}'", used, tensors.len()));
        }
        Ok(used / 2)
    }
}

impl Policy {
    /// A model folder, or an adapter folder merged into its base from `models_dir`.
    /// A verl checkpoint folder (`global_step_N` or its `actor`) loads from its merged
    /// `huggingface` folder ([`crate::resolve_model_dir`]).
    pub fn load_model_or_adapter(dir: &Path, models_dir: &Path, device: Device) -> Result<Policy, PolicyError> {
        Policy::load_model_or_adapter_as(dir, models_dir, device, default_kind(device))
    }

    /// [`Policy::load_model_or_adapter`] with the weights in `kind` (converted once, from the
    /// checkpoint's values: float32 on a GPU is never bf16 widened back).
    pub fn load_model_or_adapter_as(dir: &Path, models_dir: &Path, device: Device, kind: Kind) -> Result<Policy, PolicyError> {
        let dir = &crate::resolve_model_dir(dir)?;
        if is_adapter_dir(dir) {
            Policy::load_adapted_as(dir, models_dir, device, kind)
        } else {
            Policy::load_as(dir, device, kind)
        }
    }

    /// The base model of the adapter at `adapter_dir` (found in `models_dir` by its folder name,
    /// its files checked against the recorded hashes) with the adapter merged in.
    pub fn load_adapted(adapter_dir: &Path, models_dir: &Path, device: Device) -> Result<Policy, PolicyError> {
        Policy::load_adapted_as(adapter_dir, models_dir, device, default_kind(device))
    }

    /// [`Policy::load_adapted`] with the merged weights in `kind`.
    pub fn load_adapted_as(adapter_dir: &Path, models_dir: &Path, device: Device, kind: Kind) -> Result<Policy, PolicyError> {
        let (meta, tensors) = read_adapter(adapter_dir)?;
        let base_dir: PathBuf = models_dir.join(&meta.base_model);
        let found = base_identity(&base_dir);
        if found != meta.base_files_sha256 {
            let differ: Vec<String> = meta
                .base_files_sha256
                .iter()
                .filter(|(name, sha)| found.get(*name) != Some(sha))
                .map(|(name, sha)| format!("{name}: trained on {}, found {}", &sha[..sha.len().min(12)], found.get(name).map_or("nothing", |s| &s[..s.len().min(12)])))
                .collect();
            return Err(PolicyError::Config(format!(
                "{}: the adapter's base model {} does not match what it was trained on ({})",
                adapter_dir.display(),
                base_dir.display(),
                if differ.is_empty() { "other files".to_string() } else { differ.join("; ") }
            )));
        }
        let mut policy = Policy::load_as(&base_dir, device, Kind::Float)?;
        policy.model.merge_adapter(&tensors, meta.alpha / meta.rank as f64).map_err(|cause| PolicyError::Format { path: adapter_dir.join(PEFT_WEIGHTS), cause })?;
        if kind != Kind::Float {
            policy.vs.set_kind(kind);
        }
        policy.dir = adapter_dir.to_path_buf();
        Ok(policy)
    }
}
