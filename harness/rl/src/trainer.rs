//! The PPO / GRPO update loop over an [`Environment`]: rollouts from the actor, rewards from the
//! environment (the run's real retriever or executor), reference and value passes, advantages,
//! then `ppo_epochs` passes of mini-batch updates with AdamW and gradient clipping.
//!
//! Determinism: step `s` seeds libtorch with `seed + s` and takes its prompts from a seeded
//! permutation, so a run resumed from a checkpoint at step `s` continues exactly as an
//! uninterrupted one. Optimiser moments are kept here (not in libtorch) so they can be saved.
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use harness_policy::{generate, CausalLm, SamplingParams};
use tch::nn::ModuleT;
use tch::{nn, Device, Kind, Tensor};

use crate::{entropy, gae, grpo_advantages, masked_mean, policy_loss, token_logprobs, token_rewards, value_loss};

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

/// What the environment says about one response.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Scored {
    pub reward: f64,
    /// The retrieval metric behind the reward (NDCG, recall, ...), 0 when unusable.
    pub metric: f64,
    pub format_ok: bool,
    /// Tokens in the response's `<think>` block and `<answer>` block (0 when absent).
    pub think_tokens: usize,
    pub answer_tokens: usize,
}

/// Prompts and the reward of a response to each.
pub trait Environment {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Prompt token ids of item `i`.
    fn prompt(&self, i: usize) -> Vec<i64>;
    /// Scores a response (generated ids, EOS included when it ended one).
    fn score(&mut self, i: usize, response: &[i64]) -> Scored;
}

/// AdamW with its moments kept by variable name.
pub struct AdamW {
    pub lr: f64,
    pub weight_decay: f64,
    pub betas: (f64, f64),
    pub eps: f64,
    pub step: i64,
    moments: BTreeMap<String, (Tensor, Tensor)>,
}

impl AdamW {
    pub fn new(lr: f64, weight_decay: f64) -> AdamW {
        AdamW { lr, weight_decay, betas: (0.9, 0.999), eps: 1e-8, step: 0, moments: BTreeMap::new() }
    }

    /// Clips the global gradient norm of `params` to `max_norm` and applies one update; returns
    /// the norm before clipping.
    pub fn step(&mut self, params: &[(String, Tensor)], max_norm: f64) -> f64 {
        self.step += 1;
        tch::no_grad(|| {
            let grads: Vec<(&String, &Tensor, Tensor)> =
                params.iter().filter_map(|(n, p)| p.grad().defined().then(|| (n, p, p.grad()))).collect();
            let total: f64 = grads.iter().map(|(_, _, g)| g.square().sum(Kind::Float).double_value(&[])).sum::<f64>().sqrt();
            let scale = if max_norm > 0.0 && total > max_norm { max_norm / (total + 1e-6) } else { 1.0 };
            let (b1, b2) = self.betas;
            let c1 = 1.0 - b1.powi(self.step as i32);
            let c2 = 1.0 - b2.powi(self.step as i32);
            for (name, p, g) in grads {
                let g = &g * scale;
                let (m, v) = self.moments.entry(name.clone()).or_insert_with(|| (p.zeros_like(), p.zeros_like()));
                *m = &*m * b1 + &g * (1.0 - b1);
                *v = &*v * b2 + g.square() * (1.0 - b2);
                let update = (&*m / c1) / ((&*v / c2).sqrt() + self.eps) + p * self.weight_decay;
                let mut p = p.shallow_clone();
                let _ = p.g_sub_(&(update * self.lr));
            }
            total
        })
    }

    /// Moments as named tensors (`m.<name>`, `v.<name>`) for a checkpoint.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (name, (m, v)) in &self.moments {
            out.push((format!("m.{name}"), m.shallow_clone()));
            out.push((format!("v.{name}"), v.shallow_clone()));
        }
        out
    }

    /// Restores moments saved by [`AdamW::state`].
    pub fn restore(&mut self, named: Vec<(String, Tensor)>, step: i64) {
        let mut m = BTreeMap::new();
        let mut v = BTreeMap::new();
        for (name, t) in named {
            if let Some(n) = name.strip_prefix("m.") {
                m.insert(n.to_string(), t);
            } else if let Some(n) = name.strip_prefix("v.") {
                v.insert(n.to_string(), t);
            }
        }
        self.moments = m.into_iter().filter_map(|(n, mt)| v.remove(&n).map(|vt| (n, (mt, vt)))).collect();
        self.step = step;
    }
}

/// Trainable variables of a store, sorted by name.
pub fn named_trainable(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

/// A batch of prompt + response sequences laid out for one forward pass: prompts left-padded
/// to `prompt_len`, responses right-padded to `response_len`.
pub struct Packed {
    pub ids: Tensor,
    pub positions: Tensor,
    pub key_mask: Tensor,
    /// Response tokens `[B, response_len]` and their 0/1 mask.
    pub response: Tensor,
    pub response_mask: Tensor,
    pub prompt_len: i64,
    pub response_len: i64,
}

pub fn pack(prompts: &[Vec<i64>], responses: &[Vec<i64>], pad_id: i64, device: Device) -> Packed {
    let pl = prompts.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let rl = responses.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let (mut ids, mut pos, mut mask, mut resp, mut rmask) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (p, r) in prompts.iter().zip(responses) {
        let mut n = 0i64;
        for j in 0..pl + rl {
            let token = if j < pl - p.len() {
                None
            } else if j < pl {
                Some(p[j - (pl - p.len())])
            } else {
                r.get(j - pl).copied()
            };
            ids.push(token.unwrap_or(pad_id));
            mask.push(token.is_some());
            pos.push(if token.is_some() { n } else { 0 });
            if token.is_some() {
                n += 1;
            }
        }
        for j in 0..rl {
            resp.push(r.get(j).copied().unwrap_or(pad_id));
            rmask.push(if j < r.len() { 1.0f32 } else { 0.0 });
        }
    }
    let b = prompts.len() as i64;
    let shape = [b, (pl + rl) as i64];
    Packed {
        ids: Tensor::from_slice(&ids).view(shape).to_device(device),
        positions: Tensor::from_slice(&pos).view(shape).to_device(device),
        key_mask: Tensor::from_slice(&mask).view(shape).to_device(device),
        response: Tensor::from_slice(&resp).view([b, rl as i64]).to_device(device),
        response_mask: Tensor::from_slice(&rmask).view([b, rl as i64]).to_device(device),
        prompt_len: pl as i64,
        response_len: rl as i64,
    }
}

/// Hidden states at the positions that predict each response token: `[B, response_len, H]`.
pub fn response_hidden(model: &CausalLm, packed: &Packed) -> Tensor {
    let mut cache = harness_policy::KvCache::default();
    let hidden = model.hidden(&packed.ids, &packed.positions, &packed.key_mask, &mut cache);
    hidden.narrow(1, packed.prompt_len - 1, packed.response_len)
}

/// One logged step.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct StepLog {
    pub step: u64,
    pub reward_mean: f64,
    pub reward_std: f64,
    pub metric_mean: f64,
    pub kl_mean: f64,
    pub entropy: f64,
    pub response_tokens_mean: f64,
    /// Mean tokens of the `<think>` and `<answer>` blocks (absent in logs written before them).
    #[serde(default)]
    pub think_tokens_mean: f64,
    #[serde(default)]
    pub answer_tokens_mean: f64,
    pub format_error_rate: f64,
    pub policy_loss: f64,
    pub value_loss: f64,
    pub clipfrac: f64,
    pub grad_norm: f64,
    pub tokens_per_second: f64,
    pub step_seconds: f64,
}

impl StepLog {
    /// The fields that must repeat exactly between an interrupted and an uninterrupted run
    /// (everything but wall-clock measurements).
    pub fn deterministic_part(&self) -> StepLog {
        StepLog { tokens_per_second: 0.0, step_seconds: 0.0, ..self.clone() }
    }
}

/// Which weights play actor, critic and reference.
pub enum Roles {
    /// Three full models (full fine-tuning): actor and critic trained, reference frozen.
    Separate { actor: CausalLm, critic: CausalLm, reference: CausalLm },
    /// One frozen base with two LoRA adapters (the memory-lean mode): the actor's, the
    /// critic's; the reference is the base with adapters off.
    Shared { model: CausalLm, actor: usize, critic: usize },
}

impl Roles {
    fn actor(&self) -> &CausalLm {
        match self {
            Roles::Separate { actor, .. } => actor,
            Roles::Shared { model, actor, .. } => {
                model.set_adapter(Some(*actor));
                model
            }
        }
    }
    fn critic(&self) -> &CausalLm {
        match self {
            Roles::Separate { critic, .. } => critic,
            Roles::Shared { model, critic, .. } => {
                model.set_adapter(Some(*critic));
                model
            }
        }
    }
    fn reference(&self) -> &CausalLm {
        match self {
            Roles::Separate { reference, .. } => reference,
            Roles::Shared { model, .. } => {
                model.set_adapter(None);
                model
            }
        }
    }
}

/// Actor, critic (with a value head) and frozen reference, with their optimisers.
pub struct Trainer {
    pub config: PpoConfig,
    pub roles: Roles,
    pub value_head: nn::Linear,
    /// Trainable parameters of the actor and of the critic (value head included), by name.
    actor_params: Vec<(String, Tensor)>,
    critic_params: Vec<(String, Tensor)>,
    /// What a checkpoint holds for each (all weights, or only adapters and value head).
    actor_saved: Vec<(String, Tensor)>,
    critic_saved: Vec<(String, Tensor)>,
    /// Variable stores, kept alive with the models.
    _stores: Vec<nn::VarStore>,
    pub actor_opt: AdamW,
    pub critic_opt: AdamW,
    pub eos_ids: Vec<i64>,
    pub pad_id: i64,
    /// Steps completed.
    pub step: u64,
}

/// A seeded permutation of `0..n` (SplitMix64 + Fisher-Yates), the same on every platform.
pub fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

impl Trainer {
    /// Prompt indices of step `step`: consecutive slices of a per-epoch permutation.
    pub fn batch_indices(&self, n: usize, step: u64) -> Vec<usize> {
        let per_step = self.config.batch_size;
        let steps_per_epoch = (n / per_step).max(1) as u64;
        let epoch = step / steps_per_epoch;
        let order = permutation(n, self.config.seed.wrapping_add(epoch.wrapping_mul(1_000_003)));
        let start = ((step % steps_per_epoch) as usize) * per_step;
        (0..per_step).map(|k| order[(start + k) % n]).collect()
    }

    /// One PPO/GRPO step on `env`. On CUDA it runs under autocast, so float32 master weights
    /// (full fine-tuning) compute in bf16 while their updates keep float32 precision.
    pub fn train_step(&mut self, env: &mut dyn Environment) -> StepLog {
        let cuda = self.roles.actor().device.is_cuda();
        tch::autocast(cuda, || self.train_step_inner(env))
    }

    /// The value head on float32 hidden states (the head is float32 whatever the base's kind).
    fn values(&self, hidden: &Tensor, train: bool) -> Tensor {
        self.value_head.forward_t(&hidden.to_kind(Kind::Float), train).squeeze_dim(-1).to_kind(Kind::Float)
    }

    fn train_step_inner(&mut self, env: &mut dyn Environment) -> StepLog {
        let start = Instant::now();
        let c = self.config.clone();
        let device = self.roles.actor().device;
        let items = self.batch_indices(env.len(), self.step);
        let group = if c.algorithm == Algorithm::Grpo { c.group_size.max(1) } else { 1 };
        let rows: Vec<usize> = items.iter().flat_map(|&i| std::iter::repeat_n(i, group)).collect();
        let groups: Vec<usize> = (0..items.len()).flat_map(|g| std::iter::repeat_n(g, group)).collect();
        let prompts: Vec<Vec<i64>> = rows.iter().map(|&i| env.prompt(i)).collect();

        // Rollout.
        // generate() seeds libtorch's generator with this (process-wide) seed.
        let sampling = SamplingParams {
            max_new_tokens: c.max_response_tokens,
            temperature: c.temperature,
            seed: c.seed.wrapping_add(self.step),
            ..Default::default()
        };
        let generations = generate(self.roles.actor(), &prompts, &self.eos_ids, self.pad_id, &sampling, &|_| String::new());
        let responses: Vec<Vec<i64>> = generations.iter().map(|g| g.token_ids.clone()).collect();
        let generated_tokens: usize = responses.iter().map(Vec::len).sum();
        let scored: Vec<Scored> = rows.iter().zip(&responses).map(|(&i, r)| env.score(i, r)).collect();
        let scores: Vec<f64> = scored.iter().map(|s| s.reward).collect();

        let packed = pack(&prompts, &responses, self.pad_id, device);
        let mask = &packed.response_mask;
        let (old_logp, ref_logp, old_values) = tch::no_grad(|| {
            let actor = self.roles.actor();
            let old = token_logprobs(&actor.logits(&response_hidden(actor, &packed)), &packed.response);
            let reference = self.roles.reference();
            let reference = token_logprobs(&reference.logits(&response_hidden(reference, &packed)), &packed.response);
            let values = self.values(&response_hidden(self.roles.critic(), &packed), false) * mask;
            (old, reference, values)
        });
        let score_t = Tensor::from_slice(&scores).to_kind(Kind::Float).to_device(device);
        let (rewards, kl) = token_rewards(&score_t, &old_logp, &ref_logp, mask, c.kl_coef);
        let (advantages, returns) = match c.algorithm {
            Algorithm::Ppo => gae(&rewards, &old_values, mask, c.gamma, c.lambda),
            Algorithm::Grpo => (grpo_advantages(&scores, &groups, mask), Tensor::zeros_like(&rewards)),
        };

        // Updates.
        let n = rows.len() as i64;
        let mb = (c.mini_batch_size.max(1) as i64).min(n);
        let (mut pl_sum, mut vl_sum, mut cf_sum, mut ent_sum, mut gn_sum, mut updates) = (0.0, 0.0, 0.0, 0.0, 0.0, 0usize);
        let actor_params: Vec<(String, Tensor)> = self.actor_params.iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect();
        let critic_params: Vec<(String, Tensor)> = self.critic_params.iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect();
        for _epoch in 0..c.ppo_epochs {
            let mut s = 0;
            while s < n {
                let len = mb.min(n - s);
                let take = |t: &Tensor| t.narrow(0, s, len);
                let sub = Packed {
                    ids: take(&packed.ids),
                    positions: take(&packed.positions),
                    key_mask: take(&packed.key_mask),
                    response: take(&packed.response),
                    response_mask: take(&packed.response_mask),
                    prompt_len: packed.prompt_len,
                    response_len: packed.response_len,
                };
                let actor = self.roles.actor();
                let logits = actor.logits(&response_hidden(actor, &sub));
                let logp = token_logprobs(&logits, &sub.response);
                let (pg, clipfrac) = policy_loss(&logp, &take(&old_logp), &take(&advantages), &sub.response_mask, c.clip_ratio);
                let ent = entropy(&logits, &sub.response_mask);
                let loss = &pg - &ent * c.entropy_coeff;
                zero_grads(&actor_params);
                loss.backward();
                gn_sum += self.actor_opt.step(&actor_params, c.grad_clip);
                pl_sum += pg.double_value(&[]);
                cf_sum += clipfrac.double_value(&[]);
                ent_sum += ent.double_value(&[]);
                if c.algorithm == Algorithm::Ppo {
                    let values = self.values(&response_hidden(self.roles.critic(), &sub), true);
                    let vl = value_loss(&values, &take(&old_values), &take(&returns), &sub.response_mask, c.value_clip);
                    zero_grads(&critic_params);
                    vl.backward();
                    self.critic_opt.step(&critic_params, c.grad_clip);
                    vl_sum += vl.double_value(&[]);
                }
                updates += 1;
                s += len;
            }
        }
        self.step += 1;
        let k = updates.max(1) as f64;
        let mean = scores.iter().sum::<f64>() / scores.len() as f64;
        let std = (scores.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / scores.len() as f64).sqrt();
        let seconds = start.elapsed().as_secs_f64();
        StepLog {
            step: self.step,
            reward_mean: mean,
            reward_std: std,
            metric_mean: scored.iter().map(|s| s.metric).sum::<f64>() / scored.len() as f64,
            kl_mean: masked_mean(&kl, mask).double_value(&[]),
            entropy: ent_sum / k,
            response_tokens_mean: generated_tokens as f64 / responses.len() as f64,
            think_tokens_mean: scored.iter().map(|s| s.think_tokens as f64).sum::<f64>() / scored.len() as f64,
            answer_tokens_mean: scored.iter().map(|s| s.answer_tokens as f64).sum::<f64>() / scored.len() as f64,
            format_error_rate: scored.iter().filter(|s| !s.format_ok).count() as f64 / scored.len() as f64,
            policy_loss: pl_sum / k,
            value_loss: vl_sum / k,
            clipfrac: cf_sum / k,
            grad_norm: gn_sum / k,
            tokens_per_second: generated_tokens as f64 / seconds.max(1e-9),
            step_seconds: seconds,
        }
    }

    /// Writes actor, critic, value head and optimiser states plus the step into `dir`
    /// (a fresh folder written beside it, then renamed into place); with `policy_source`, also
    /// the actor as a loadable model folder `dir/policy` (see [`Trainer::export_policy`]).
    pub fn save(&self, dir: &Path, policy_source: Option<&Path>) -> std::io::Result<()> {
        let parent = dir.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent)?;
        let staging = parent.join(format!(".{}.partial", dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging)?;
        let io = |e: tch::TchError| std::io::Error::other(e.to_string());
        let write = |name: &str, tensors: Vec<(String, Tensor)>| -> std::io::Result<()> {
            Tensor::write_safetensors(&tensors, staging.join(name)).map_err(io)
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
        std::fs::write(staging.join("trainer_state.json"), serde_json::to_string_pretty(&state)?)?;
        if let Some(source) = policy_source {
            self.export_policy(source, &staging.join("policy"))?;
        }
        let _ = std::fs::remove_dir_all(dir);
        std::fs::rename(&staging, dir)
    }

    /// Restores a checkpoint written by [`Trainer::save`].
    pub fn restore(&mut self, dir: &Path) -> std::io::Result<()> {
        let io = |e: tch::TchError| std::io::Error::other(format!("{}: {e}", dir.display()));
        let state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("trainer_state.json"))?)?;
        copy_into(&self.actor_saved, Tensor::read_safetensors(dir.join("actor.safetensors")).map_err(io)?)?;
        copy_into(&self.critic_saved, Tensor::read_safetensors(dir.join("critic.safetensors")).map_err(io)?)?;
        let get = |k: &str| state[k].as_i64().ok_or_else(|| std::io::Error::other(format!("trainer_state.json: no {k}")));
        self.actor_opt.restore(Tensor::read_safetensors(dir.join("actor_optimizer.safetensors")).map_err(io)?, get("actor_optimizer_step")?);
        self.critic_opt.restore(Tensor::read_safetensors(dir.join("critic_optimizer.safetensors")).map_err(io)?, get("critic_optimizer_step")?);
        self.step = get("step")? as u64;
        Ok(())
    }
}

fn zero_grads(params: &[(String, Tensor)]) {
    for (_, p) in params {
        let mut g = p.grad();
        if g.defined() {
            let _ = g.zero_();
        }
    }
}

fn named_all(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

fn copy_into(vars: &[(String, Tensor)], tensors: Vec<(String, Tensor)>) -> std::io::Result<()> {
    let found: BTreeMap<String, Tensor> = tensors.into_iter().collect();
    tch::no_grad(|| {
        for (name, var) in vars {
            let src = found.get(name).ok_or_else(|| std::io::Error::other(format!("checkpoint lacks {name}")))?;
            let mut var = var.shallow_clone();
            var.copy_(src);
        }
        Ok(())
    })
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
}

impl RunConfig {
    /// `paper`, `cpu-small` (built in) or a TOML file.
    pub fn load(name: &str) -> Result<RunConfig, String> {
        let (origin, text) = match name {
            "paper" => ("paper".to_string(), include_str!("../configs/paper.toml").to_string()),
            "cpu-small" => ("cpu-small".to_string(), include_str!("../configs/cpu-small.toml").to_string()),
            path => (path.to_string(), std::fs::read_to_string(path).map_err(|e| format!("{path}: {e} (built-in configs: paper, cpu-small)"))?),
        };
        toml::from_str(&text).map_err(|e| format!("{origin}: {e}"))
    }
}

/// LoRA settings of the memory-lean mode.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoraConfig {
    pub rank: i64,
    pub alpha: f64,
}

impl Trainer {
    /// Full fine-tuning: separate actor and critic stores (the critic's holds the value head)
    /// and a reference store that is frozen here.
    #[allow(clippy::too_many_arguments)]
    pub fn new_separate(
        config: PpoConfig,
        (actor_vs, actor): (nn::VarStore, CausalLm),
        (critic_vs, critic): (nn::VarStore, CausalLm),
        value_head: nn::Linear,
        (mut reference_vs, reference): (nn::VarStore, CausalLm),
        eos_ids: Vec<i64>,
        pad_id: i64,
    ) -> Trainer {
        reference_vs.freeze();
        Trainer {
            actor_opt: AdamW::new(config.actor_lr, config.weight_decay),
            critic_opt: AdamW::new(config.critic_lr, config.weight_decay),
            config,
            roles: Roles::Separate { actor, critic, reference },
            value_head,
            actor_params: named_trainable(&actor_vs),
            critic_params: named_trainable(&critic_vs),
            actor_saved: named_all(&actor_vs),
            critic_saved: named_all(&critic_vs),
            _stores: vec![actor_vs, critic_vs, reference_vs],
            eos_ids,
            pad_id,
            step: 0,
        }
    }

    /// The memory-lean mode: `model`'s base weights (in `vs`) frozen, an actor and a critic LoRA
    /// adapter added under `lora_actor` / `lora_critic`, a value head under `value_head`.
    pub fn new_lora(config: PpoConfig, vs: nn::VarStore, mut model: CausalLm, lora: LoraConfig, eos_ids: Vec<i64>, pad_id: i64) -> Trainer {
        let mut vs = vs;
        vs.freeze();
        let hidden = model.config.hidden_size;
        let actor = model.add_lora(&(vs.root() / "lora_actor"), lora.rank, lora.alpha);
        let critic = model.add_lora(&(vs.root() / "lora_critic"), lora.rank, lora.alpha);
        let value_head = nn::linear(vs.root() / "value_head", hidden, 1, Default::default());
        let all = named_all(&vs);
        let pick = |prefixes: &[&str]| -> Vec<(String, Tensor)> {
            all.iter().filter(|(n, _)| prefixes.iter().any(|p| n.starts_with(p))).map(|(n, t)| (n.clone(), t.shallow_clone())).collect()
        };
        let actor_vars = pick(&["lora_actor."]);
        let critic_vars = pick(&["lora_critic.", "value_head."]);
        // Trainable tensors are float32 master weights even on a bf16 base: bf16 would round
        // away updates of lr 1e-6 size.
        to_float(actor_vars.iter().chain(&critic_vars));
        Trainer {
            actor_opt: AdamW::new(config.actor_lr, config.weight_decay),
            critic_opt: AdamW::new(config.critic_lr, config.weight_decay),
            config,
            roles: Roles::Shared { model, actor, critic },
            value_head,
            actor_params: actor_vars.iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect(),
            critic_params: critic_vars.iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect(),
            actor_saved: actor_vars,
            critic_saved: critic_vars,
            _stores: vec![vs],
            eos_ids,
            pad_id,
            step: 0,
        }
    }

    /// Trainable parameter count of the actor and of the critic.
    pub fn trainable_parameters(&self) -> (i64, i64) {
        let count = |v: &[(String, Tensor)]| v.iter().map(|(_, t)| t.numel() as i64).sum();
        (count(&self.actor_params), count(&self.critic_params))
    }

    /// Actor and critic initialised from the model folder (the critic with a new value head),
    /// and a frozen copy of it as the reference.
    ///
    /// With LoRA the shared base takes the device's compute kind (bf16 on CUDA) and only the
    /// adapters and value head are float32; in full fine-tuning actor and critic are float32
    /// master weights (bf16 compute under autocast on CUDA) and the frozen reference is bf16.
    pub fn from_model_dir(dir: &Path, device: Device, config: PpoConfig, lora: Option<LoraConfig>) -> Result<Trainer, harness_policy::PolicyError> {
        let trainable_kind = if lora.is_some() { harness_policy::default_kind(device) } else { Kind::Float };
        let actor_policy = harness_policy::Policy::load_as(dir, device, trainable_kind)?;
        let eos_ids = actor_policy.eos_ids.clone();
        let pad_id = actor_policy.pad_id;
        tch::manual_seed(config.seed as i64);
        let harness_policy::Policy { vs: actor_vs, model: actor, .. } = actor_policy;
        if let Some(lora) = lora {
            return Ok(Trainer::new_lora(config, actor_vs, actor, lora, eos_ids, pad_id));
        }
        let load = |kind: Kind| -> Result<(nn::VarStore, CausalLm), harness_policy::PolicyError> {
            let mut vs = nn::VarStore::new(device);
            let model = CausalLm::new(&vs.root(), actor.config.clone());
            harness_policy::model::load_weights(&mut vs, dir)?;
            if kind != Kind::Float {
                vs.set_kind(kind);
            }
            Ok((vs, model))
        };
        let (critic_vs, critic) = load(Kind::Float)?;
        let value_head = nn::linear(critic_vs.root() / "value_head", actor.config.hidden_size, 1, Default::default());
        let reference = load(harness_policy::default_kind(device))?;
        Ok(Trainer::new_separate(config, (actor_vs, actor), (critic_vs, critic), value_head, reference, eos_ids, pad_id))
    }

    /// Writes the actor as a Hugging Face model folder (config, tokenizer and chat template
    /// copied from `source_dir`, weights as float32 `model.safetensors`), so that a checkpoint
    /// is a method: `checkpoint:DIR`.
    pub fn export_policy(&self, source_dir: &Path, out: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(out)?;
        for f in ["config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json"] {
            let src = source_dir.join(f);
            if src.is_file() {
                std::fs::copy(&src, out.join(f))?;
            }
        }
        let weights = match &self.roles {
            Roles::Separate { .. } => self.actor_saved.iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect(),
            Roles::Shared { model, actor, .. } => tch::no_grad(|| model.merged_weights(*actor)),
        };
        let tensors: Vec<(String, Tensor)> = weights.into_iter().map(|(n, t)| (n, t.to_kind(Kind::Float).to_device(Device::Cpu))).collect();
        Tensor::write_safetensors(&tensors, out.join("model.safetensors")).map_err(|e| std::io::Error::other(e.to_string()))
    }
}

/// Casts variables to float32 in place (their optimiser state follows, being created from them).
fn to_float<'a>(vars: impl Iterator<Item = &'a (String, Tensor)>) {
    tch::no_grad(|| {
        for (_, t) in vars {
            if t.kind() != Kind::Float {
                let mut handle = t.shallow_clone();
                handle.set_data(&t.to_kind(Kind::Float));
            }
        }
    });
}
