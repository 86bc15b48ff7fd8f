//! PPO as DeepRetrieval ran it (verl's `core_algos`, docs/paper-notes.md §6): the scalar
//! reward on the last response token minus a per-token KL penalty against the frozen reference,
//! GAE (γ = λ = 1 by default) with advantages whitened over response tokens, the clipped
//! surrogate, the clipped value loss, an entropy bonus; GRPO's group-normalised outcome
//! advantage as the critic-free option. Every function takes `[batch, response_len]` tensors
//! and a 0/1 response mask of the same shape.
pub mod alarms;
mod batch;
mod checkpoint;
mod config;
mod error;
mod optim;
pub mod plan;
pub mod trainer;

pub use checkpoint::export_adapter;
pub use error::RlError;

use tch::{Kind, Tensor};

/// Logits of the distribution a rollout sampled from: divided by the sampling temperature,
/// unchanged when greedy (`temperature` 0). Log-probs, the reference's and the entropy are taken
/// from these, as verl does, so the PPO ratio compares the policy that generated the tokens.
pub fn tempered(logits: &Tensor, temperature: f64) -> Tensor {
    if temperature > 0.0 { logits / temperature } else { logits.shallow_clone() }
}

/// Mean of `x` over the mask.
pub fn masked_mean(x: &Tensor, mask: &Tensor) -> Tensor {
    (x * mask).sum(Kind::Float) / mask.sum(Kind::Float).clamp_min(1.0)
}

/// Variance over the mask with Bessel's correction, as verl's `masked_var`.
pub fn masked_var(x: &Tensor, mask: &Tensor) -> Tensor {
    let mean = masked_mean(x, mask);
    let var = masked_mean(&(x - &mean).square(), mask);
    let n = mask.sum(Kind::Float);
    var * &n / (n - 1.0).clamp_min(1.0)
}

/// `(x - mean) / sqrt(var + 1e-8)` over the mask (masked positions keep a value but are
/// never used).
pub fn masked_whiten(x: &Tensor, mask: &Tensor) -> Tensor {
    (x - masked_mean(x, mask)) * (masked_var(x, mask) + 1e-8).rsqrt()
}

/// Token-level rewards: `-kl_coef * (logp - ref_logp)` on every response token, plus `score` on
/// each row's last response token. Returns the rewards and the per-token KL (`logp - ref_logp`).
pub fn token_rewards(scores: &Tensor, logp: &Tensor, ref_logp: &Tensor, mask: &Tensor, kl_coef: f64) -> (Tensor, Tensor) {
    let kl = (logp - ref_logp) * mask;
    let lengths = mask.sum_dim_intlist(1, false, Kind::Int64);
    let last = (lengths - 1).clamp_min(0).unsqueeze(1);
    let placed = Tensor::zeros_like(logp).scatter(1, &last, &scores.to_kind(logp.kind()).unsqueeze(1));
    ((placed - &kl * kl_coef) * mask, kl)
}

/// GAE advantages (whitened over the mask) and returns (= raw advantages + values).
pub fn gae(rewards: &Tensor, values: &Tensor, mask: &Tensor, gamma: f64, lambda: f64) -> (Tensor, Tensor) {
    let values = values * mask;
    let t = rewards.size()[1];
    let mut last = Tensor::zeros_like(&rewards.select(1, 0));
    let mut reversed = Vec::with_capacity(t as usize);
    for i in (0..t).rev() {
        let next_value = if i + 1 < t { values.select(1, i + 1) } else { Tensor::zeros_like(&last) };
        let delta = rewards.select(1, i) + next_value * gamma - values.select(1, i);
        last = delta + &last * (gamma * lambda);
        reversed.push(last.shallow_clone());
    }
    reversed.reverse();
    let advantages = Tensor::stack(&reversed, 1);
    let returns = &advantages + &values;
    (masked_whiten(&advantages, mask) * mask, returns)
}

/// GRPO: each row's score normalised within its group (rows sharing a prompt, `group` ids),
/// `(s - mean) / (std + 1e-6)`, broadcast over its response tokens.
pub fn grpo_advantages(scores: &[f64], group: &[usize], mask: &Tensor) -> Tensor {
    let mut normalised = vec![0.0f64; scores.len()];
    let mut groups: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for (i, g) in group.iter().enumerate() {
        groups.entry(*g).or_default().push(i);
    }
    for members in groups.values() {
        let n = members.len() as f64;
        let mean = members.iter().map(|&i| scores[i]).sum::<f64>() / n;
        // Sample standard deviation (torch.std), 0 for a group of one.
        let std = if members.len() > 1 { (members.iter().map(|&i| (scores[i] - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt() } else { 0.0 };
        for &i in members {
            normalised[i] = (scores[i] - mean) / (std + 1e-6);
        }
    }
    Tensor::from_slice(&normalised).to_kind(Kind::Float).to_device(mask.device()).unsqueeze(1) * mask
}

/// The clipped surrogate loss and the fraction of tokens where clipping was active.
pub fn policy_loss(logp: &Tensor, old_logp: &Tensor, advantages: &Tensor, mask: &Tensor, clip: f64) -> (Tensor, Tensor) {
    let ratio = (logp - old_logp).exp();
    let unclipped = -advantages * &ratio;
    let clipped = -advantages * ratio.clamp(1.0 - clip, 1.0 + clip);
    let loss = masked_mean(&unclipped.maximum(&clipped), mask);
    let clipfrac = masked_mean(&clipped.gt_tensor(&unclipped).to_kind(Kind::Float), mask);
    (loss, clipfrac)
}

/// The clipped value loss `0.5 * mean(max((v - R)^2, (clip(v, v_old ± c) - R)^2))`.
pub fn value_loss(values: &Tensor, old_values: &Tensor, returns: &Tensor, mask: &Tensor, clip: f64) -> Tensor {
    let clipped = old_values + (values - old_values).clamp(-clip, clip);
    let a = (values - returns).square();
    let b = (clipped - returns).square();
    masked_mean(&a.maximum(&b), mask) * 0.5
}

/// Mean entropy of the token distributions `logits [B, T, V]` over the mask.
pub fn entropy(logits: &Tensor, mask: &Tensor) -> Tensor {
    let logp = logits.log_softmax(-1, Kind::Float);
    let h = -(logp.exp() * &logp).sum_dim_intlist(-1, false, Kind::Float);
    masked_mean(&h, mask)
}

/// Per-token KL estimates between the policy and the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KlEstimator {
    /// `logp - ref_logp` (verl's `kl`, the paper's setting).
    Kl,
    /// `exp(ref - logp) - (ref - logp) - 1` (k3, non-negative, lower variance).
    LowVar,
}

pub fn kl_estimate(logp: &Tensor, ref_logp: &Tensor, estimator: KlEstimator) -> Tensor {
    match estimator {
        KlEstimator::Kl => logp - ref_logp,
        KlEstimator::LowVar => {
            let d = ref_logp - logp;
            d.exp() - &d - 1.0
        }
    }
}

/// Log-probabilities of `tokens [B, T]` under `logits [B, T, V]`.
pub fn token_logprobs(logits: &Tensor, tokens: &Tensor) -> Tensor {
    logits.log_softmax(-1, Kind::Float).gather(-1, &tokens.unsqueeze(-1), false).squeeze_dim(-1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(rows: &[&[f64]]) -> Tensor {
        let flat: Vec<f64> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Tensor::from_slice(&flat).view([rows.len() as i64, rows[0].len() as i64]).to_kind(Kind::Float)
    }

    fn close(a: &Tensor, b: &Tensor) {
        let d = (a - b).abs().max().double_value(&[]);
        assert!(d < 1e-4, "{a} vs {b}");
    }

    #[test]
    fn token_rewards_put_the_score_on_the_last_token_minus_kl() {
        let mask = t(&[&[1.0, 1.0, 1.0], &[1.0, 1.0, 0.0]]);
        let logp = t(&[&[-1.0, -2.0, -3.0], &[-1.0, -1.0, -9.0]]);
        let ref_logp = t(&[&[-1.5, -2.0, -2.0], &[-2.0, -1.0, -1.0]]);
        let scores = Tensor::from_slice(&[2.0f32, -1.0]);
        let (r, kl) = token_rewards(&scores, &logp, &ref_logp, &mask, 0.1);
        // Row 0: kl = [0.5, 0, -1] -> rewards [-0.05, 0, 0.1 + 2]. Row 1: kl = [1, 0, (masked)].
        close(&r, &t(&[&[-0.05, 0.0, 2.1], &[-0.1, -1.0, 0.0]]));
        close(&kl, &t(&[&[0.5, 0.0, -1.0], &[1.0, 0.0, 0.0]]));
    }

    #[test]
    fn gae_matches_hand_computation() {
        // One row, gamma = lambda = 1: advantages are reward-to-go minus value.
        let rewards = t(&[&[0.0, 0.0, 1.0]]);
        let values = t(&[&[0.5, 0.2, 0.1]]);
        let mask = t(&[&[1.0, 1.0, 1.0]]);
        let (adv, ret) = gae(&rewards, &values, &mask, 1.0, 1.0);
        close(&ret, &t(&[&[1.0, 1.0, 1.0]]));
        // Raw advantages [0.5, 0.8, 0.9]: mean 0.7333, unbiased var 0.04333.
        let raw = [0.5f64, 0.8, 0.9];
        let mean = raw.iter().sum::<f64>() / 3.0;
        let var = raw.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 2.0;
        let want: Vec<f64> = raw.iter().map(|x| (x - mean) / (var + 1e-8).sqrt()).collect();
        close(&adv, &t(&[&want]));
        // gamma = 0.5, lambda = 0.5 by hand: deltas d_t = r_t + 0.5 v_{t+1} - v_t.
        let (_, ret) = gae(&rewards, &values, &mask, 0.5, 0.5);
        let d = [0.0 + 0.5 * 0.2 - 0.5, 0.0 + 0.5 * 0.1 - 0.2, 1.0 - 0.1];
        let a2 = d[2];
        let a1 = d[1] + 0.25 * a2;
        let a0 = d[0] + 0.25 * a1;
        close(&ret, &t(&[&[a0 + 0.5, a1 + 0.2, a2 + 0.1]]));
    }

    #[test]
    fn clipped_policy_and_value_losses_match_hand_computation() {
        let mask = t(&[&[1.0, 1.0]]);
        let old = t(&[&[0.0, 0.0]]);
        let logp = t(&[&[0.5f64.ln() + 0.0, 1.5f64.ln()]]); // ratios 0.5 and 1.5
        let adv = t(&[&[1.0, -1.0]]);
        let (loss, clipfrac) = policy_loss(&logp, &old, &adv, &mask, 0.2);
        // Token 0: max(-0.5, -0.8) = -0.5; token 1: max(1.5, 1.2) = 1.5 -> mean 0.5.
        close(&loss, &Tensor::from(0.5f32));
        close(&clipfrac, &Tensor::from(0.0f32));
        let adv = t(&[&[-1.0, 1.0]]);
        let (loss, clipfrac) = policy_loss(&logp, &old, &adv, &mask, 0.2);
        // Token 0: max(0.5, 0.8) = 0.8 (clipped); token 1: max(-1.5, -1.2) = -1.2 (clipped).
        close(&loss, &Tensor::from(-0.2f32));
        close(&clipfrac, &Tensor::from(1.0f32));

        let v = t(&[&[1.0, 0.0]]);
        let v_old = t(&[&[0.0, 0.0]]);
        let ret = t(&[&[2.0, 1.0]]);
        // Token 0: unclipped (1-2)^2 = 1, clipped to 0.5: (0.5-2)^2 = 2.25 -> 2.25; token 1: 1.
        close(&value_loss(&v, &v_old, &ret, &mask, 0.5), &Tensor::from(0.5f32 * (2.25 + 1.0) / 2.0));
    }

    #[test]
    fn kl_entropy_and_grpo() {
        let logp = t(&[&[-1.0]]);
        let ref_logp = t(&[&[-2.0]]);
        close(&kl_estimate(&logp, &ref_logp, KlEstimator::Kl), &t(&[&[1.0]]));
        close(&kl_estimate(&logp, &ref_logp, KlEstimator::LowVar), &t(&[&[(-1.0f64).exp() + 1.0 - 1.0]]));
        // Uniform over 4 tokens: entropy ln 4.
        let logits = Tensor::zeros([1, 1, 4], (Kind::Float, tch::Device::Cpu));
        close(&entropy(&logits, &t(&[&[1.0]])), &Tensor::from(4f32.ln()));
        let mask = t(&[&[1.0, 1.0], &[1.0, 0.0], &[1.0, 1.0]]);
        let adv = grpo_advantages(&[1.0, 3.0, 5.0], &[0, 0, 1], &mask);
        let s = (2.0f64).sqrt(); // sample std of [1, 3]
        close(&adv, &t(&[&[-1.0 / (s + 1e-6), -1.0 / (s + 1e-6)], &[1.0 / (s + 1e-6), 0.0], &[0.0, 0.0]]));
    }

    /// Log-probs and entropy of a rollout at temperature 0.6, over several tokens, against a
    /// hand computation: logp = z/T - logsumexp(z/T), H = -sum p log p (values from float64).
    #[test]
    fn log_probs_and_entropy_follow_the_sampling_temperature() {
        let logits = t(&[&[1.0, 2.0, 0.5, -1.0], &[0.0, 0.3, 0.1, 2.0], &[1.5, 1.5, -0.5, 0.0]]).unsqueeze(0);
        let tokens = Tensor::from_slice(&[1i64, 3, 0]).view([1, 3]);
        let scaled = tempered(&logits, 0.6);
        let lp = token_logprobs(&scaled, &tokens);
        close(&lp, &t(&[&[-0.2450604505579448, -0.12807153462588206, -0.7503584503227052]]));
        let mask = t(&[&[1.0, 1.0, 1.0]]);
        let mean_h = (0.6784137666576135 + 0.496717353359309 + 0.903409769640003) / 3.0;
        assert!((entropy(&scaled, &mask).double_value(&[]) - mean_h).abs() < 1e-5);
        // Greedy rollouts (temperature 0) keep the raw logits.
        close(&tempered(&logits, 0.0), &logits);
        // Untempered log-probs are another distribution: the fix is visible at this size.
        assert!((token_logprobs(&logits, &tokens) - &lp).abs().max().double_value(&[]) > 0.05);
    }
}
