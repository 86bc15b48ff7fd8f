//! PPO on a toy task (reward for emitting a target token) with a tiny random Llama, and exact
//! resumption from a checkpoint.
use harness_policy::{CausalLm, ModelConfig};
use harness_rl::trainer::{Algorithm, Environment, LoraConfig, PpoConfig, Scored, StepLog, Trainer};
use tch::{nn, Device, Kind, Tensor};

const TARGET: i64 = 7;

/// libtorch's random generator is process-wide: tests that sample take turns.
static SAMPLING: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct PickSeven;

impl Environment for PickSeven {
    fn len(&self) -> usize {
        4
    }
    fn prompt(&self, i: usize) -> Vec<i64> {
        vec![1, 2 + i as i64, 3]
    }
    fn score(&mut self, _i: usize, response: &[i64]) -> Scored {
        let hit = response.first() == Some(&TARGET);
        Scored { reward: if hit { 1.0 } else { 0.0 }, metric: if hit { 1.0 } else { 0.0 }, format_ok: true, ..Default::default() }
    }
}

fn tiny_model(vs: &nn::VarStore, seed: i64) -> CausalLm {
    let config = ModelConfig::parse(
        std::path::Path::new("config.json"),
        r#"{"model_type": "llama", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
            "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5, "vocab_size": 16,
            "tie_word_embeddings": true, "eos_token_id": 0}"#,
    )
    .unwrap();
    let model = CausalLm::new(&vs.root(), config);
    harness_policy::model::randomize_weights(vs, seed, 0.1);
    model
}

fn config(algorithm: Algorithm) -> PpoConfig {
    PpoConfig {
        algorithm,
        actor_lr: 3e-3,
        critic_lr: 3e-3,
        weight_decay: 0.0,
        batch_size: 4,
        mini_batch_size: 4,
        micro_batch_tokens: None,
        activation_checkpointing: false,
        ppo_epochs: 2,
        clip_ratio: 0.2,
        value_clip: 0.5,
        entropy_coeff: 0.0,
        kl_coef: 0.001,
        gamma: 1.0,
        lambda: 1.0,
        grad_clip: 1.0,
        temperature: 1.0,
        max_response_tokens: 1,
        group_size: if algorithm == Algorithm::Grpo { 4 } else { 1 },
        seed: 11,
    }
}

fn trainer(algorithm: Algorithm) -> Trainer {
    trainer_with(config(algorithm))
}

/// Full fine-tuning of the tiny model with `c`.
fn trainer_with(c: PpoConfig) -> Trainer {
    let actor_vs = nn::VarStore::new(Device::Cpu);
    let actor = tiny_model(&actor_vs, 1);
    let critic_vs = nn::VarStore::new(Device::Cpu);
    let critic = tiny_model(&critic_vs, 2);
    let value_head = nn::linear(critic_vs.root() / "value_head", 32, 1, Default::default());
    let reference_vs = nn::VarStore::new(Device::Cpu);
    let reference = tiny_model(&reference_vs, 1);
    Trainer::new_separate(c, (actor_vs, actor), (critic_vs, critic), value_head, (reference_vs, reference), vec![], 0)
}

fn lora_trainer() -> Trainer {
    let vs = nn::VarStore::new(Device::Cpu);
    let model = tiny_model(&vs, 1);
    let c = PpoConfig { actor_lr: 1e-2, critic_lr: 1e-2, ..config(Algorithm::Ppo) };
    Trainer::new_lora(c, vs, model, LoraConfig { rank: 4, alpha: 8.0 }, vec![], 0)
}

#[test]
fn ppo_and_grpo_learn_to_emit_the_target_token() {
    let _turn = SAMPLING.lock().unwrap_or_else(|p| p.into_inner());
    tch::set_num_threads(1);
    for algorithm in [Algorithm::Ppo, Algorithm::Grpo] {
        let mut t = trainer(algorithm);
        let mut env = PickSeven;
        let logs: Vec<StepLog> = (0..60).map(|_| t.train_step(&mut env)).collect();
        // Step 1's rollouts come from the untrained policy.
        let early = logs[0].reward_mean;
        let late: f64 = logs[55..].iter().map(|l| l.reward_mean).sum::<f64>() / 5.0;
        assert!(early < 0.3, "{algorithm:?}: early reward {early}");
        assert!(late > 0.8, "{algorithm:?}: reward after 60 steps {late} (early {early})");
        assert!(logs.iter().all(|l| l.kl_mean.is_finite() && l.policy_loss.is_finite()));
    }
}

#[test]
fn resuming_from_a_checkpoint_repeats_the_uninterrupted_run() {
    let _turn = SAMPLING.lock().unwrap_or_else(|p| p.into_inner());
    tch::set_num_threads(1);
    let mut env = PickSeven;
    let mut straight = trainer(Algorithm::Ppo);
    let full: Vec<StepLog> = (0..6).map(|_| straight.train_step(&mut env).deterministic_part()).collect();

    let tmp = tempfile::tempdir().unwrap();
    let mut first = trainer(Algorithm::Ppo);
    for _ in 0..3 {
        first.train_step(&mut env);
    }
    first.save(&tmp.path().join("step-3"), None).unwrap();
    drop(first);
    let mut resumed = trainer(Algorithm::Ppo);
    resumed.restore(&tmp.path().join("step-3")).unwrap();
    assert_eq!(resumed.step, 3);
    let rest: Vec<StepLog> = (0..3).map(|_| resumed.train_step(&mut env).deterministic_part()).collect();
    assert_eq!(rest, full[3..].to_vec());
}


/// The whole state after N steps, not only the logged numbers: every weight of actor and critic
/// (value head included), both AdamW moments and step counts, the step, and so the data
/// position and the sampler's seed (both functions of the step), equal bit for bit between a
/// run interrupted and resumed from its checkpoint and one that was not.
#[test]
fn resumed_state_equals_the_uninterrupted_state_bit_for_bit() {
    let _turn = SAMPLING.lock().unwrap_or_else(|p| p.into_inner());
    tch::set_num_threads(1);
    let mut env = PickSeven;
    for algorithm in [Algorithm::Ppo, Algorithm::Grpo] {
        let mut straight = trainer(algorithm);
        for _ in 0..5 {
            straight.train_step(&mut env);
        }
        let tmp = tempfile::tempdir().unwrap();
        let mut first = trainer(algorithm);
        for _ in 0..2 {
            first.train_step(&mut env);
        }
        first.save(&tmp.path().join("step-2"), None).unwrap();
        drop(first);
        let mut resumed = trainer(algorithm);
        resumed.restore(&tmp.path().join("step-2")).unwrap();
        for _ in 0..3 {
            resumed.train_step(&mut env);
        }
        assert_eq!((resumed.step, resumed.actor_opt.step, resumed.critic_opt.step), (straight.step, straight.actor_opt.step, straight.critic_opt.step));
        assert_eq!(resumed.batch_indices(env.len(), resumed.step), straight.batch_indices(env.len(), straight.step), "data position");
        let (a, b) = (straight.full_state(), resumed.full_state());
        assert_eq!(a.len(), b.len());
        assert!(a.iter().any(|(n, _)| n.starts_with("actor_optimizer/")), "the optimiser's moments are part of the state");
        for ((na, ta), (nb, tb)) in a.iter().zip(&b) {
            assert_eq!(na, nb);
            assert!(ta.equal(tb), "{algorithm:?}: {na} differs after resuming");
        }
    }
}

#[test]
fn lora_mode_learns_with_adapters_only_and_resumes() {
    let _turn = SAMPLING.lock().unwrap_or_else(|p| p.into_inner());
    tch::set_num_threads(1);
    let mut env = PickSeven;
    let mut t = lora_trainer();
    let (actor_params, critic_params) = t.trainable_parameters();
    // Adapters on 7 projections of one layer (rank 4) and a 33-weight value head: far fewer
    // trainable weights than the model's.
    assert!(actor_params > 0 && actor_params < 3000, "{actor_params}");
    assert_eq!(critic_params, actor_params + 33);
    let logs: Vec<StepLog> = (0..150).map(|_| t.train_step(&mut env)).collect();
    // Adapters on one tiny layer learn more slowly and noisily than full fine-tuning (measured:
    // about 0.05 at first, about 0.5 over the last 20 steps); the test asks for clear learning.
    let mean = |l: &[StepLog]| l.iter().map(|x| x.reward_mean).sum::<f64>() / l.len() as f64;
    let (early, late) = (mean(&logs[..10]), mean(&logs[130..]));
    assert!(early < 0.15 && late > 0.35, "LoRA reward {early} -> {late}");
    // The reference (base, adapters off) never moved: KL is measured against it.
    assert!(logs[149].kl_mean.abs() > 0.0);

    let tmp = tempfile::tempdir().unwrap();
    let mut a = lora_trainer();
    for _ in 0..2 {
        a.train_step(&mut env);
    }
    a.save(&tmp.path().join("c"), None).unwrap();
    let next_a = a.train_step(&mut env).deterministic_part();
    let mut b = lora_trainer();
    b.restore(&tmp.path().join("c")).unwrap();
    assert_eq!(b.train_step(&mut env).deterministic_part(), next_a);
}

/// The GPU layout on CPU: a bf16 base (as on CUDA) with float32 adapters and value head, whose
/// small updates bf16 would round away.
#[test]
fn lora_on_a_bf16_base_trains_float32_adapters() {
    let _turn = SAMPLING.lock().unwrap_or_else(|p| p.into_inner());
    tch::set_num_threads(1);
    let mut vs = nn::VarStore::new(Device::Cpu);
    let model = tiny_model(&vs, 1);
    vs.set_kind(Kind::BFloat16);
    let c = PpoConfig { actor_lr: 1e-2, critic_lr: 1e-2, ..config(Algorithm::Ppo) };
    let mut t = Trainer::new_lora(c, vs, model, LoraConfig { rank: 4, alpha: 8.0 }, vec![], 0);
    let tmp = tempfile::tempdir().unwrap();
    for _ in 0..3 {
        let log = t.train_step(&mut PickSeven);
        assert!(log.kl_mean.is_finite() && log.entropy.is_finite(), "{log:?}");
    }
    t.save(&tmp.path().join("c"), None).unwrap();
    let saved = Tensor::read_safetensors(tmp.path().join("c").join("actor.safetensors")).unwrap();
    assert!(!saved.is_empty());
    for (name, tensor) in &saved {
        assert_eq!(tensor.kind(), Kind::Float, "{name}");
    }
    // lora_b starts at zero; three steps at lr 1e-2 must have moved it.
    let moved = saved.iter().filter(|(n, _)| n.ends_with("lora_b")).any(|(_, t)| t.abs().max().double_value(&[]) > 0.0);
    assert!(moved, "no adapter moved");
    assert_eq!(t.value_head.ws.kind(), Kind::Float);
}

/// A checkpoint of another shape (here another LoRA rank) is an error naming the tensor and
/// both shapes, never a panic inside libtorch; a missing checkpoint names its file.
#[test]
fn restoring_a_checkpoint_of_another_shape_is_an_error() {
    // Building models seeds and draws from the process-wide generator: not during a sampling test.
    let _turn = SAMPLING.lock().unwrap_or_else(|p| p.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let lora = |rank: i64| {
        let vs = nn::VarStore::new(Device::Cpu);
        let model = tiny_model(&vs, 1);
        Trainer::new_lora(config(Algorithm::Ppo), vs, model, LoraConfig { rank, alpha: 8.0 }, vec![], 0)
    };
    lora(4).save(&tmp.path().join("r4"), None).unwrap();
    let err = lora(2).restore(&tmp.path().join("r4")).unwrap_err().to_string();
    assert!(err.contains("r4") && err.contains("shape") && err.contains("lora_actor"), "{err}");
    let err = lora(2).restore(&tmp.path().join("nowhere")).unwrap_err().to_string();
    assert!(err.contains("trainer_state.json"), "{err}");
    assert!(harness_rl::trainer::RunConfig::load("no-such-config.toml").unwrap_err().to_string().contains("built-in configs: paper, cpu-small"));
}

/// The trainer scores responses under the distribution they were sampled from: at temperature
/// 0.6 over several tokens, the recomputed old log-probs equal the sampler's (verl's
/// `rollout_probs_diff`); with untempered logits they would differ by about 0.1 here.
#[test]
fn old_log_probs_are_the_samplers_at_temperature_0_6() {
    let _turn = SAMPLING.lock().unwrap_or_else(|p| p.into_inner());
    tch::set_num_threads(1);
    let mut t = trainer_with(PpoConfig { temperature: 0.6, max_response_tokens: 4, ..config(Algorithm::Ppo) });
    let log = t.train_step(&mut PickSeven);
    assert_eq!(log.response_tokens_mean, 4.0);
    assert!(log.rollout_logprob_diff_mean < 1e-5, "{log:?}");
    // Actor and reference start equal, so the first step's KL is zero at any temperature.
    assert!(log.kl_mean.abs() < 1e-6, "{log:?}");
}

/// Micro-batching the update (`micro_batch_tokens` below a mini-batch's padded tokens) adds up
/// the micro-batches' token-weighted gradients to the mini-batch's: from the same weights and
/// rollouts, the same losses and the same gradient norm (before clipping) within float32
/// rounding, for PPO (actor and critic) and GRPO. (Weights after an AdamW step are not
/// compared: its first step moves each weight by about lr times the sign of its gradient, so a
/// rounding difference in a near-zero gradient moves it by 2 lr.)
#[test]
fn micro_batched_and_checkpointed_updates_equal_whole_mini_batch_updates() {
    let _turn = SAMPLING.lock().unwrap_or_else(|p| p.into_inner());
    tch::set_num_threads(1);
    for algorithm in [Algorithm::Ppo, Algorithm::Grpo] {
        let mut env = PickSeven;
        // One PPO epoch over one mini-batch of every row: every logged number is computed
        // before the update (a later mini-batch or epoch starts from weights an update moved).
        let one_epoch = PpoConfig { ppo_epochs: 1, mini_batch_size: 1024, ..config(algorithm) };
        let mut whole = trainer_with(one_epoch.clone());
        // One row per micro-batch: each row is a few prompt tokens plus the responses.
        let mut split = trainer_with(PpoConfig { micro_batch_tokens: Some(1), ..one_epoch.clone() });
        // And both again with activation checkpointing (layers recomputed in the backward pass).
        let mut recomputed = trainer_with(PpoConfig { activation_checkpointing: true, ..one_epoch.clone() });
        let mut split_recomputed = trainer_with(PpoConfig { micro_batch_tokens: Some(1), activation_checkpointing: true, ..one_epoch });
        let a = whole.train_step(&mut env);
        for (what, t) in [("micro-batched", &mut split), ("checkpointed", &mut recomputed), ("both", &mut split_recomputed)] {
            let b = t.train_step(&mut env);
            assert_eq!(a.reward_mean, b.reward_mean, "{algorithm:?} {what}: the same rollouts");
            let close = |x: f64, y: f64| (x - y).abs() <= 1e-5 * x.abs().max(1.0);
            assert!(close(a.policy_loss, b.policy_loss), "{algorithm:?} {what}: policy loss {} vs {}", a.policy_loss, b.policy_loss);
            assert!(close(a.value_loss, b.value_loss), "{algorithm:?} {what}: value loss {} vs {}", a.value_loss, b.value_loss);
            assert!(close(a.entropy, b.entropy), "{algorithm:?} {what}: entropy {} vs {}", a.entropy, b.entropy);
            assert!(a.grad_norm > 0.0 && close(a.grad_norm, b.grad_norm), "{algorithm:?} {what}: gradient norm {} vs {}", a.grad_norm, b.grad_norm);
        }
    }
}
