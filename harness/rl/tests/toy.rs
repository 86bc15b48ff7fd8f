//! PPO on a toy task (reward for emitting a target token) with a tiny random Llama, and exact
//! resumption from a checkpoint.
use harness_policy::{CausalLm, ModelConfig};
use harness_rl::trainer::{AdamW, Algorithm, Environment, PpoConfig, Scored, StepLog, Trainer};
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
        Scored { reward: if hit { 1.0 } else { 0.0 }, metric: if hit { 1.0 } else { 0.0 }, format_ok: true }
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
    tch::manual_seed(seed);
    tch::no_grad(|| {
        let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, mut v) in vars {
            if name.ends_with("norm.weight") || name.contains("layernorm") {
                let _ = v.fill_(1.0);
            } else {
                v.copy_(&(Tensor::randn(v.size(), (Kind::Float, Device::Cpu)) * 0.1));
            }
        }
    });
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
    let actor_vs = nn::VarStore::new(Device::Cpu);
    let actor = tiny_model(&actor_vs, 1);
    let critic_vs = nn::VarStore::new(Device::Cpu);
    let critic = tiny_model(&critic_vs, 2);
    let value_head = nn::linear(critic_vs.root() / "value_head", 32, 1, Default::default());
    let mut reference_vs = nn::VarStore::new(Device::Cpu);
    let reference = tiny_model(&reference_vs, 1);
    reference_vs.freeze();
    let c = config(algorithm);
    Trainer {
        actor_opt: AdamW::new(c.actor_lr, c.weight_decay),
        critic_opt: AdamW::new(c.critic_lr, c.weight_decay),
        config: c,
        actor_vs,
        actor,
        critic_vs,
        critic,
        value_head,
        reference_vs,
        reference,
        eos_ids: vec![],
        pad_id: 0,
        step: 0,
    }
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

