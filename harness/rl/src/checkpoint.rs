//! Checkpoints: a trainer's full state written atomically to a folder (actor, critic, value
//! head, both optimisers' moments, the step, the config) and read back; the actor exported as
//! a loadable model folder so that a checkpoint is a method (`checkpoint:DIR`).
use std::collections::BTreeMap;
use std::path::Path;

use tch::{Device, Kind, Tensor};

use crate::trainer::{Roles, Trainer};
use crate::RlError;

impl Trainer {
    /// Writes actor, critic, value head and optimiser states plus the step into `dir`
    /// (a fresh folder written beside it, then renamed into place); with `policy_source`, also
    /// the actor as a loadable model folder `dir/policy` (see [`Trainer::export_policy`]).
    pub fn save(&self, dir: &Path, policy_source: Option<&Path>) -> Result<(), RlError> {
        let parent = dir.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(RlError::io(parent))?;
        let staging = parent.join(format!(".{}.partial", dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging).map_err(RlError::io(&staging))?;
        let write = |name: &str, tensors: Vec<(String, Tensor)>| -> Result<(), RlError> {
            let path = staging.join(name);
            Tensor::write_safetensors(&tensors, &path).map_err(RlError::tensor(&path))
        };
        let shallow = |v: &[(String, Tensor)]| v.iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect::<Vec<_>>();
        write("actor.safetensors", shallow(&self.actor_saved))?;
        write("critic.safetensors", shallow(&self.critic_saved))?;
        write("actor_optimizer.safetensors", self.actor_opt.state())?;
        write("critic_optimizer.safetensors", self.critic_opt.state())?;
        let state = serde_json::json!({
            "step": self.step,
            "actor_optimizer_step": self.actor_opt.step,
            "critic_optimizer_step": self.critic_opt.step,
            "config": self.config,
        });
        let state_path = staging.join("trainer_state.json");
        let text = serde_json::to_string_pretty(&state).expect("a JSON value serialises");
        std::fs::write(&state_path, text).map_err(RlError::io(&state_path))?;
        if let Some(source) = policy_source {
            self.export_policy(source, &staging.join("policy"))?;
        }
        let _ = std::fs::remove_dir_all(dir);
        std::fs::rename(&staging, dir).map_err(RlError::io(dir))
    }

    /// Everything a checkpoint holds, by name (`actor/`, `critic/`, `actor_optimizer/`,
    /// `critic_optimizer/` prefixes): what an exact resumption must reproduce bit for bit,
    /// with [`Trainer::step`] and the optimisers' step counts.
    pub fn full_state(&self) -> Vec<(String, Tensor)> {
        let prefixed = |prefix: &str, v: Vec<(String, Tensor)>| v.into_iter().map(move |(n, t)| (format!("{prefix}/{n}"), t)).collect::<Vec<_>>();
        let shallow = |v: &[(String, Tensor)]| v.iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect::<Vec<_>>();
        let mut out = prefixed("actor", shallow(&self.actor_saved));
        out.extend(prefixed("critic", shallow(&self.critic_saved)));
        out.extend(prefixed("actor_optimizer", self.actor_opt.state()));
        out.extend(prefixed("critic_optimizer", self.critic_opt.state()));
        out
    }

    /// Restores a checkpoint written by [`Trainer::save`]. A checkpoint that lacks a tensor or
    /// holds one of another shape (another model or LoRA rank) is an error, never a panic.
    pub fn restore(&mut self, dir: &Path) -> Result<(), RlError> {
        let bad = |cause: String| RlError::Checkpoint { path: dir.to_path_buf(), cause };
        let state_path = dir.join("trainer_state.json");
        let text = std::fs::read_to_string(&state_path).map_err(RlError::io(&state_path))?;
        let state: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(format!("trainer_state.json: {e}")))?;
        let read = |name: &str| {
            let path = dir.join(name);
            Tensor::read_safetensors(&path).map_err(RlError::tensor(&path))
        };
        copy_into(&self.actor_saved, read("actor.safetensors")?).map_err(&bad)?;
        copy_into(&self.critic_saved, read("critic.safetensors")?).map_err(&bad)?;
        let get = |k: &str| state[k].as_i64().ok_or_else(|| bad(format!("trainer_state.json: no {k}")));
        self.actor_opt.restore(read("actor_optimizer.safetensors")?, get("actor_optimizer_step")?);
        self.critic_opt.restore(read("critic_optimizer.safetensors")?, get("critic_optimizer_step")?);
        self.step = get("step")? as u64;
        Ok(())
    }

    /// Writes the actor as a Hugging Face model folder (config, tokenizer and chat template
    /// copied from `source_dir`, weights as float32 `model.safetensors`), so that a checkpoint
    /// is a method: `checkpoint:DIR`.
    pub fn export_policy(&self, source_dir: &Path, out: &Path) -> Result<(), RlError> {
        std::fs::create_dir_all(out).map_err(RlError::io(out))?;
        for f in ["config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json"] {
            let src = source_dir.join(f);
            if src.is_file() {
                std::fs::copy(&src, out.join(f)).map_err(RlError::io(&src))?;
            }
        }
        let weights = match &self.roles {
            Roles::Separate { .. } => self.actor_saved.iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect(),
            Roles::Shared { model, actor, .. } => tch::no_grad(|| model.merged_weights(*actor)),
        };
        let tensors: Vec<(String, Tensor)> = weights.into_iter().map(|(n, t)| (n, t.to_kind(Kind::Float).to_device(Device::Cpu))).collect();
        let path = out.join("model.safetensors");
        Tensor::write_safetensors(&tensors, &path).map_err(RlError::tensor(&path))
    }
}

/// Copies saved tensors into the trainer's variables, checking names and shapes first.
fn copy_into(vars: &[(String, Tensor)], tensors: Vec<(String, Tensor)>) -> Result<(), String> {
    let found: BTreeMap<String, Tensor> = tensors.into_iter().collect();
    for (name, var) in vars {
        let src = found.get(name).ok_or_else(|| format!("lacks {name}"))?;
        if src.size() != var.size() {
            return Err(format!("{name} has shape {:?}, this trainer's has {:?} (another model or LoRA rank?)", src.size(), var.size()));
        }
    }
    tch::no_grad(|| {
        for (name, var) in vars {
            let mut var = var.shallow_clone();
            var.copy_(&found[name]);
        }
    });
    Ok(())
}

/// The peft name of one of the trainer's actor LoRA variables
/// (`lora_actor.layers.3.q_proj.lora_a` -> `base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight`).
fn peft_name_of(var: &str) -> Option<String> {
    let rest = var.strip_prefix("lora_actor.layers.")?;
    let mut parts = rest.split('.');
    let layer: usize = parts.next()?.parse().ok()?;
    let proj = parts.next()?;
    let matrix = match parts.next()? {
        "lora_a" => 'A',
        "lora_b" => 'B',
        _ => return None,
    };
    (parts.next().is_none() && harness_policy::adapter::TARGET_MODULES.contains(&proj)).then(|| harness_policy::adapter::peft_name(layer, proj, matrix))
}

/// Writes the actor adapter of a LoRA checkpoint (`CKPT/actor.safetensors`) as a peft adapter
/// folder tied to the base model at `base_dir` (see `harness_policy::adapter`).
pub fn export_adapter(checkpoint: &Path, base_dir: &Path, lora: crate::config::LoraConfig, out: &Path, training: serde_json::Value) -> Result<usize, RlError> {
    let bad = |cause: String| RlError::Checkpoint { path: checkpoint.to_path_buf(), cause };
    let path = checkpoint.join("actor.safetensors");
    let tensors = Tensor::read_safetensors(&path).map_err(RlError::tensor(&path))?;
    let mut named = Vec::new();
    for (name, t) in tensors {
        let peft = peft_name_of(&name).ok_or_else(|| bad(format!("actor.safetensors holds '{name}', not a LoRA actor variable (was this a full fine-tuning run?)")))?;
        if name.ends_with("lora_a") && t.size().first() != Some(&lora.rank) {
            return Err(bad(format!("{name} has rank {:?}, the run's config says {}", t.size().first(), lora.rank)));
        }
        named.push((peft, t));
    }
    if named.is_empty() {
        return Err(bad("actor.safetensors holds no tensors".into()));
    }
    named.sort_by(|a, b| a.0.cmp(&b.0));
    harness_policy::adapter::write_adapter(out, base_dir, lora.rank, lora.alpha, &named, training).map_err(|e| bad(e.to_string()))?;
    Ok(named.len())
}
