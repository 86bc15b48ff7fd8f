//! The PPO / GRPO update loop over an [`Environment`]: rollouts from the actor, rewards from the
//! environment (the run's real retriever or executor), reference and value passes, advantages,
//! then `ppo_epochs` passes of mini-batch updates with AdamW and gradient clipping.
//!
//! Determinism: step `s` seeds libtorch with `seed + s` and takes its prompts from a seeded
//! permutation, so a run resumed from a checkpoint at step `s` continues exactly as an
//! uninterrupted one. Optimiser moments are kept here (not in libtorch) so they can be saved.
use std::path::Path;
use std::time::Instant;

use harness_policy::{generate_on, CausalLm, DecodePath, SamplingParams};
use tch::nn::ModuleT;
use tch::{nn, Device, Kind, Tensor};

pub use crate::batch::{pack, permutation, response_hidden, Packed};
pub use crate::config::{Algorithm, LoraConfig, PpoConfig, RunConfig, RunSettings};
pub use crate::optim::AdamW;
use crate::{entropy, gae, grpo_advantages, masked_mean, policy_loss, token_logprobs, token_rewards, value_loss, RlError};

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
    /// The metric of item `i`'s original query (the baseline a rewriter must beat), when the
    /// environment knows it.
    fn original_metric(&mut self, _i: usize) -> Option<f64> {
        None
    }
}

/// Trainable variables of a store, sorted by name.
pub fn named_trainable(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
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
    /// Mean |sampler log-prob - recomputed old log-prob| over response tokens (verl's
    /// `rollout_probs_diff`); absent in logs written before it.
    #[serde(default)]
    pub rollout_logprob_diff_mean: f64,
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
    pub(crate) actor_saved: Vec<(String, Tensor)>,
    pub(crate) critic_saved: Vec<(String, Tensor)>,
    /// Variable stores, kept alive with the models.
    _stores: Vec<nn::VarStore>,
    pub actor_opt: AdamW,
    pub critic_opt: AdamW,
    pub eos_ids: Vec<i64>,
    pub pad_id: i64,
    /// Steps completed.
    pub step: u64,
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

    /// Greedy answers of the actor to every prompt of `env` (held-out evaluation), in batches
    /// of the config's `batch_size`, scored by `env`. No update; the generator's reseeding
    /// does not reach later steps, each of which seeds its own sampling (`seed + step`).
    pub fn evaluate(&self, env: &mut dyn Environment) -> Vec<Scored> {
        let greedy = SamplingParams { max_new_tokens: self.config.max_response_tokens, temperature: 0.0, ..Default::default() };
        let mut out = Vec::with_capacity(env.len());
        let indices: Vec<usize> = (0..env.len()).collect();
        for chunk in indices.chunks(self.config.batch_size.max(1)) {
            let prompts: Vec<Vec<i64>> = chunk.iter().map(|&i| env.prompt(i)).collect();
            let generations = tch::no_grad(|| {
                generate_on(self.roles.actor(), &prompts, &self.eos_ids, self.pad_id, &greedy, &|_| String::new(), DecodePath::InPlace)
            });
            out.extend(chunk.iter().zip(&generations).map(|(&i, g)| env.score(i, &g.token_ids)));
        }
        out
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

    /// Logits as the rollout sampled from them ([`crate::tempered`]).
    fn tempered(&self, logits: Tensor) -> Tensor {
        crate::tempered(&logits, self.config.temperature)
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
        // The in-place cache without MKL-packed weights: with packing (finished rows kept in the
        // batch) the toy PPO run's outcome once changed with which tests ran before it in the
        // same process. A toy test that drew from libtorch's generator without taking its turn
        // was found since and fixed; packing has not been tried again. On a GPU nothing is
        // packed anyway.
        let generations =
            generate_on(self.roles.actor(), &prompts, &self.eos_ids, self.pad_id, &sampling, &|_| String::new(), DecodePath::InPlace);
        let responses: Vec<Vec<i64>> = generations.iter().map(|g| g.token_ids.clone()).collect();
        let generated_tokens: usize = responses.iter().map(Vec::len).sum();
        let scored: Vec<Scored> = rows.iter().zip(&responses).map(|(&i, r)| env.score(i, r)).collect();
        let scores: Vec<f64> = scored.iter().map(|s| s.reward).collect();

        let packed = pack(&prompts, &responses, self.pad_id, device);
        let mask = &packed.response_mask;
        // Rows per forward pass (update and scoring alike): at most `micro_batch_tokens` padded
        // tokens, so that the vocabulary logits of a pass ([rows, response, vocab] float32, the
        // largest tensors of a step) stay bounded whatever the batch size.
        let row_tokens = (packed.prompt_len + packed.response_len) as usize;
        let chunks = |rows: i64| -> Vec<(i64, i64)> {
            let per = c.rows_per_pass(rows as usize, row_tokens) as i64;
            (0..rows).step_by(per as usize).map(|m| (m, per.min(rows - m))).collect()
        };
        let (old_logp, ref_logp, old_values) = tch::no_grad(|| {
            let (mut old, mut reference, mut values) = (Vec::new(), Vec::new(), Vec::new());
            for range in chunks(rows.len() as i64) {
                let part = packed.rows(range);
                let actor = self.roles.actor();
                old.push(token_logprobs(&self.tempered(actor.logits(&response_hidden(actor, &part))), &part.response));
                let frozen = self.roles.reference();
                reference.push(token_logprobs(&self.tempered(frozen.logits(&response_hidden(frozen, &part))), &part.response));
                // GRPO has no critic: its values would be computed for nothing.
                if c.algorithm == Algorithm::Ppo {
                    values.push(self.values(&response_hidden(self.roles.critic(), &part), false));
                }
            }
            let old = Tensor::cat(&old, 0);
            let values = if values.is_empty() { Tensor::zeros_like(&old) } else { Tensor::cat(&values, 0) * mask };
            (old, Tensor::cat(&reference, 0), values)
        });
        // verl's rollout_probs_diff: the sampler's log-probs against the same weights' recomputed
        // ones; near zero unless the two disagree on the distribution (temperature, precision).
        let rollout_logp: Vec<f32> = generations
            .iter()
            .flat_map(|g| (0..packed.response_len as usize).map(move |j| g.logprobs.get(j).copied().unwrap_or(0.0)))
            .collect();
        let rollout_logp = Tensor::from_slice(&rollout_logp).view([rows.len() as i64, packed.response_len]).to_device(device);
        let rollout_gap = masked_mean(&(&rollout_logp - &old_logp).abs(), mask).double_value(&[]);
        let score_t = Tensor::from_slice(&scores).to_kind(Kind::Float).to_device(device);
        let (rewards, kl) = token_rewards(&score_t, &old_logp, &ref_logp, mask, c.kl_coef);
        let (advantages, returns) = match c.algorithm {
            Algorithm::Ppo => gae(&rewards, &old_values, mask, c.gamma, c.lambda),
            Algorithm::Grpo => (grpo_advantages(&scores, &groups, mask), Tensor::zeros_like(&rewards)),
        };

        // Updates.
        let n = rows.len() as i64;
        let mb = (c.mini_batch_size.max(1) as i64).min(n);
        // Every micro-batch's weighted [policy loss, clip fraction, entropy] and value loss, kept
        // on the device and read once after the updates (no host sync per micro-batch).
        let (mut actor_stats, mut critic_stats): (Vec<Tensor>, Vec<Tensor>) = (Vec::new(), Vec::new());
        let (mut gn_sum, mut updates) = (0.0, 0usize);
        let actor_params: Vec<(String, Tensor)> = self.actor_params.iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect();
        let critic_params: Vec<(String, Tensor)> = self.critic_params.iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect();
        for _epoch in 0..c.ppo_epochs {
            let mut s = 0;
            while s < n {
                let len = mb.min(n - s);
                let take = |t: &Tensor| t.narrow(0, s, len);
                let sub = packed.rows((s, len));
                // Micro-batches of at most `micro_batch_tokens` padded tokens; each one's loss
                // is weighted by its share of the mini-batch's response tokens, so the summed
                // gradients are the mini-batch's token mean (one micro-batch: weight 1, as before).
                let micros = chunks(len);
                let part = |t: &Tensor, (m, ml): (i64, i64)| t.narrow(0, m, ml);
                let micro_of = |range: (i64, i64)| sub.rows(range);
                // Response tokens per row, read once per mini-batch (one host sync, not one per
                // micro-batch).
                let row_tokens: Vec<f64> =
                    if micros.len() == 1 { Vec::new() } else { Vec::<f64>::try_from(&sub.response_mask.sum_dim_intlist(1, false, Kind::Double).to_device(Device::Cpu)).expect("token counts") };
                let mini_tokens = row_tokens.iter().sum::<f64>().max(1.0);
                let weight_of = |(m, ml): (i64, i64)| if micros.len() == 1 { 1.0 } else { row_tokens[m as usize..(m + ml) as usize].iter().sum::<f64>() / mini_tokens };
                zero_grads(&actor_params);
                for &range in &micros {
                    let micro = micro_of(range);
                    let w = weight_of(range);
                    let actor = self.roles.actor();
                    let at = |t: &Tensor| part(&take(t), range);
                    let mut parts = None;
                    let mut actor_loss = |hidden: &Tensor| {
                        let logits = self.tempered(actor.logits(&micro.response_part(hidden)));
                        let logp = token_logprobs(&logits, &micro.response);
                        let (pg, clipfrac) = policy_loss(&logp, &at(&old_logp), &at(&advantages), &micro.response_mask, c.clip_ratio);
                        let ent = entropy(&logits, &micro.response_mask);
                        let loss = (&pg - &ent * c.entropy_coeff) * w;
                        parts = Some((pg.detach(), clipfrac.detach(), ent.detach()));
                        loss
                    };
                    backward_through(actor, &micro, c.activation_checkpointing, &mut actor_loss);
                    let (pg, clipfrac, ent) = parts.expect("the loss ran");
                    actor_stats.push(Tensor::stack(&[pg, clipfrac, ent].map(|t| t.to_kind(Kind::Double)), 0) * w);
                }
                gn_sum += self.actor_opt.step(&actor_params, c.grad_clip);
                if c.algorithm == Algorithm::Ppo {
                    zero_grads(&critic_params);
                    for &range in &micros {
                        let micro = micro_of(range);
                        let w = weight_of(range);
                        let at = |t: &Tensor| part(&take(t), range);
                        let mut vl_value = None;
                        let mut critic_loss = |hidden: &Tensor| {
                            let values = self.values(&micro.response_part(hidden), true);
                            let vl = value_loss(&values, &at(&old_values), &at(&returns), &micro.response_mask, c.value_clip);
                            vl_value = Some(vl.detach());
                            vl * w
                        };
                        backward_through(self.roles.critic(), &micro, c.activation_checkpointing, &mut critic_loss);
                        critic_stats.push(vl_value.take().expect("the loss ran").to_kind(Kind::Double) * w);
                    }
                    self.critic_opt.step(&critic_params, c.grad_clip);
                }
                updates += 1;
                s += len;
            }
        }
        self.step += 1;
        let k = updates.max(1) as f64;
        let total = |stats: &[Tensor], width: usize| -> Vec<f64> {
            if stats.is_empty() {
                return vec![0.0; width];
            }
            let sum = Tensor::stack(stats, 0).sum_dim_intlist(0, false, Kind::Double).reshape([-1]);
            Vec::<f64>::try_from(&sum.to_device(Device::Cpu)).expect("update statistics")
        };
        let (actor_sums, critic_sums) = (total(&actor_stats, 3), total(&critic_stats, 1));
        let mean = scores.iter().sum::<f64>() / scores.len() as f64;
        let std = (scores.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / scores.len() as f64).sqrt();
        let seconds = start.elapsed().as_secs_f64();
        StepLog {
            step: self.step,
            reward_mean: mean,
            reward_std: std,
            metric_mean: scored.iter().map(|s| s.metric).sum::<f64>() / scored.len() as f64,
            kl_mean: masked_mean(&kl, mask).double_value(&[]),
            entropy: actor_sums[2] / k,
            response_tokens_mean: generated_tokens as f64 / responses.len() as f64,
            think_tokens_mean: scored.iter().map(|s| s.think_tokens as f64).sum::<f64>() / scored.len() as f64,
            answer_tokens_mean: scored.iter().map(|s| s.answer_tokens as f64).sum::<f64>() / scored.len() as f64,
            format_error_rate: scored.iter().filter(|s| !s.format_ok).count() as f64 / scored.len() as f64,
            policy_loss: actor_sums[0] / k,
            value_loss: critic_sums[0] / k,
            clipfrac: actor_sums[1] / k,
            grad_norm: gn_sum / k,
            rollout_logprob_diff_mean: rollout_gap,
            tokens_per_second: generated_tokens as f64 / seconds.max(1e-9),
            step_seconds: seconds,
        }
    }
}

/// Back-propagates `loss(final hidden states of the whole packed sequences)` into `model`'s
/// variables: in one pass, or with activation checkpointing (layer inputs kept, each layer's
/// activations recomputed during the backward pass).
fn backward_through(model: &CausalLm, micro: &Packed, checkpointing: bool, loss: &mut dyn FnMut(&Tensor) -> Tensor) {
    if checkpointing {
        model.backward_checkpointed(&micro.ids, &micro.positions, &micro.key_mask, loss);
    } else {
        loss(&model.hidden_full(&micro.ids, &micro.positions, Some(&micro.key_mask))).backward();
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
    pub fn from_model_dir(dir: &Path, device: Device, config: PpoConfig, lora: Option<LoraConfig>) -> Result<Trainer, RlError> {
        let trainable_kind = if lora.is_some() { harness_policy::default_kind(device) } else { Kind::Float };
        let actor_policy = harness_policy::Policy::load_as(dir, device, trainable_kind)?;
        let eos_ids = actor_policy.text.eos_ids.clone();
        let pad_id = actor_policy.text.pad_id;
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
