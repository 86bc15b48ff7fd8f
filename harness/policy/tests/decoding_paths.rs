//! The paths built for GPUs, checked on the CPU against the plain ones with a small random
//! Qwen2-shaped model: unmasked attention on unpadded batches, device-side decoding windows,
//! activation checkpointing.
use harness_policy::{generate_on, CausalLm, DecodePath, KvCache, ModelConfig, SamplingParams};
use tch::{nn, Device, Kind, Tensor};

/// libtorch's random generator is process-wide: the tests, which seed it, take turns.
static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    RNG.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Three layers, grouped-query attention, q/k/v biases, an untied head: every weight kind the
/// decoder has.
fn random_model(vs: &nn::VarStore, seed: i64) -> CausalLm {
    let config = ModelConfig::parse(
        std::path::Path::new("config.json"),
        r#"{"model_type": "qwen2", "hidden_size": 48, "intermediate_size": 96, "num_hidden_layers": 3,
            "num_attention_heads": 6, "num_key_value_heads": 2, "rms_norm_eps": 1e-6, "vocab_size": 97,
            "tie_word_embeddings": false, "rope_theta": 10000.0, "eos_token_id": 0}"#,
    )
    .unwrap();
    let model = CausalLm::new(&vs.root(), config);
    harness_policy::model::randomize_weights(vs, seed, 0.2);
    model
}

/// Left-padded prompts of different lengths: ids, positions and key mask `[B, T]`.
fn padded_batch(prompts: &[Vec<i64>]) -> (Tensor, Tensor, Tensor) {
    let longest = prompts.iter().map(Vec::len).max().unwrap();
    let (mut ids, mut pos, mut mask) = (Vec::new(), Vec::new(), Vec::new());
    for p in prompts {
        let pad = longest - p.len();
        ids.extend(std::iter::repeat_n(0i64, pad).chain(p.iter().copied()));
        pos.extend(std::iter::repeat_n(0i64, pad).chain(0..p.len() as i64));
        mask.extend(std::iter::repeat_n(false, pad).chain(std::iter::repeat_n(true, p.len())));
    }
    let shape = [prompts.len() as i64, longest as i64];
    (Tensor::from_slice(&ids).view(shape), Tensor::from_slice(&pos).view(shape), Tensor::from_slice(&mask).view(shape))
}

fn prompts() -> Vec<Vec<i64>> {
    vec![vec![5, 17, 33, 2, 8, 60, 11], vec![9, 4], vec![70, 71, 72, 73, 1], vec![44, 3, 90, 12]]
}

/// The first step, from `from` on, at which `row` writes a token that no other row writes and
/// it did not write before, with that token: an EOS or stop string that ends `row` alone.
fn own_token(probe: &[harness_policy::Generation], row: usize, from: usize) -> (usize, i64) {
    let ids = &probe[row].token_ids;
    (from..ids.len())
        .map(|j| (j, ids[j]))
        .find(|(j, t)| !ids[..*j].contains(t) && probe.iter().enumerate().all(|(r, g)| r == row || !g.token_ids.contains(t)))
        .expect("a token only this row writes")
}

fn max_relative_gap(a: &Tensor, b: &Tensor) -> f64 {
    let scale = b.abs().max().double_value(&[]).max(1e-12);
    (a - b).abs().max().double_value(&[]) / scale
}

#[test]
fn unpadded_batches_attend_without_a_mask_as_with_an_all_true_one() {
    let _turn = turn();
    let vs = nn::VarStore::new(Device::Cpu);
    let model = random_model(&vs, 3);
    let ids = Tensor::from_slice(&[5i64, 17, 33, 2, 8, 60, 11, 9, 4, 70, 71, 72]).view([2, 6]);
    let positions = Tensor::arange(6, (Kind::Int64, Device::Cpu)).unsqueeze(0).expand([2, 6], false);
    let all_real = Tensor::ones([2, 7], (Kind::Bool, Device::Cpu));
    tch::no_grad(|| {
        // Prompt pass (the kernel's causal flag), then one cached step (no mask at all).
        let (mut masked, mut unmasked) = (KvCache::with_capacity(8), KvCache::with_capacity(8));
        let a = model.hidden_with(&ids, &positions, Some(&all_real.narrow(1, 0, 6)), &mut masked, None);
        let b = model.hidden_with(&ids, &positions, None, &mut unmasked, None);
        assert!(max_relative_gap(&b, &a) <= 1e-6, "prompt pass: {}", max_relative_gap(&b, &a));
        let next = Tensor::from_slice(&[3i64, 40]).view([2, 1]);
        let next_pos = Tensor::from_slice(&[6i64, 6]).view([2, 1]);
        let a = model.hidden_with(&next, &next_pos, Some(&all_real), &mut masked, None);
        let b = model.hidden_with(&next, &next_pos, None, &mut unmasked, None);
        assert!(max_relative_gap(&b, &a) <= 1e-6, "cached step: {}", max_relative_gap(&b, &a));
    });
}

/// Reading the tokens every k steps (what a GPU does) instead of every step: the same ids,
/// finish reasons and log-probs, with rows ending at different steps by EOS and by a stop
/// string, on every decoding path.
#[test]
fn decoding_windows_give_the_same_generations_as_reading_every_step() {
    let _turn = turn();
    let vs = nn::VarStore::new(Device::Cpu);
    let model = random_model(&vs, 5);
    let prompts = prompts();
    let decode = |ids: &[i64]| ids.iter().map(|i| format!("<{i}>")).collect::<String>();
    let base = SamplingParams { max_new_tokens: 24, sync_every: 1, ..Default::default() };
    let probe = generate_on(&model, &prompts, &[], 0, &base, &decode, DecodePath::Reference);
    // An EOS id from row 1's output, a stop string from row 2's: rows finish early by both.
    let eos = [own_token(&probe, 1, 3).1];
    let stop = SamplingParams { stop_strings: vec![format!("<{}>", own_token(&probe, 2, 6).1)], ..base.clone() };
    let every_step = generate_on(&model, &prompts, &eos, 0, &stop, &decode, DecodePath::Reference);
    assert!(every_step.iter().any(|g| g.finish == harness_policy::Finish::Eos), "no row ended by EOS");
    assert!(every_step.iter().any(|g| g.finish == harness_policy::Finish::Stop), "no row ended by a stop string");
    assert!(every_step.iter().any(|g| g.token_ids.len() == 24), "no row ran to the end");
    for path in [DecodePath::Reference, DecodePath::InPlace, DecodePath::Fast] {
        for sync_every in [1, 4, 7, 64] {
            let params = SamplingParams { sync_every, ..stop.clone() };
            let got = generate_on(&model, &prompts, &eos, 0, &params, &decode, path);
            for (row, (g, want)) in got.iter().zip(&every_step).enumerate() {
                assert_eq!(g.token_ids, want.token_ids, "{path:?}, every {sync_every}: row {row}");
                assert_eq!(g.finish, want.finish, "{path:?}, every {sync_every}: row {row}");
                for (a, b) in g.logprobs.iter().zip(&want.logprobs) {
                    assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{path:?}, every {sync_every}: {a} vs {b}");
                }
            }
        }
    }
    // Sampling: seeded, so the same draws whatever the window.
    let sampled = SamplingParams { temperature: 0.9, top_p: 0.95, seed: 3, ..base };
    let a = generate_on(&model, &prompts, &[], 0, &sampled, &decode, DecodePath::InPlace);
    let b = generate_on(&model, &prompts, &[], 0, &SamplingParams { sync_every: 8, ..sampled }, &decode, DecodePath::InPlace);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.token_ids, y.token_ids);
    }
}

/// Gradients of every variable of a loss on the final hidden states of a padded batch, by one
/// backward pass and by layer-wise recomputation: equal to float rounding. With a LoRA adapter
/// on a frozen base, only the adapter's gradients exist, equal too.
#[test]
fn checkpointed_backward_gives_the_plain_gradients() {
    let _turn = turn();
    let (ids, positions, key_mask) = padded_batch(&prompts());
    let weights = {
        tch::manual_seed(9);
        Tensor::randn([4, 7, 48], (Kind::Float, Device::Cpu))
    };
    let loss = |model: &CausalLm, hidden: &Tensor| {
        // Logits of the last three positions and the hidden states themselves, as the policy
        // and value losses use them.
        model.logits(&hidden.narrow(1, 4, 3)).log_softmax(-1, Kind::Float).mean(Kind::Float) + (hidden * &weights).sum(Kind::Float) * 1e-3
    };
    for lora in [false, true] {
        let grads = |checkpointing: bool| -> Vec<(String, Tensor)> {
            let mut vs = nn::VarStore::new(Device::Cpu);
            let mut model = random_model(&vs, 7);
            if lora {
                vs.freeze();
                let adapter = model.add_lora(&(vs.root() / "lora"), 4, 8.0);
                // A non-zero B, so the adapter changes the output and A gets gradients too.
                tch::no_grad(|| {
                    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
                    vars.sort_by(|a, b| a.0.cmp(&b.0));
                    for (name, mut v) in vars {
                        if name.ends_with("lora_b") {
                            v.copy_(&(Tensor::randn(v.size(), (Kind::Float, Device::Cpu)) * 0.1));
                        }
                    }
                });
                model.set_adapter(Some(adapter));
            }
            if checkpointing {
                model.backward_checkpointed(&ids, &positions, &key_mask, &mut |h| loss(&model, h));
            } else {
                let mut cache = KvCache::default();
                loss(&model, &model.hidden(&ids, &positions, &key_mask, &mut cache)).backward();
            }
            let mut out: Vec<(String, Tensor)> =
                vs.variables().into_iter().filter(|(_, v)| v.grad().defined()).map(|(n, v)| (n, v.grad().copy())).collect();
            out.sort_by(|a, b| a.0.cmp(&b.0));
            out
        };
        let (plain, checkpointed) = (grads(false), grads(true));
        let names = |g: &[(String, Tensor)]| g.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        assert_eq!(names(&plain), names(&checkpointed), "lora {lora}: the same variables get gradients");
        if lora {
            assert!(plain.iter().all(|(n, _)| n.contains("lora")), "frozen base weights got gradients");
            assert_eq!(plain.len(), 3 * 7 * 2);
        } else {
            assert!(plain.iter().any(|(n, _)| n.contains("embed_tokens")) && plain.len() > 30);
        }
        for ((name, a), (_, b)) in plain.iter().zip(&checkpointed) {
            assert!(a.abs().max().double_value(&[]) > 0.0, "lora {lora}: {name} has a zero gradient");
            let gap = max_relative_gap(b, a);
            assert!(gap <= 1e-5, "lora {lora}: {name}: relative gap {gap:e}");
        }
    }
}

/// Rows keep their left padding in the cache after the rows beside them finish: a short prompt
/// decoded in a batch whose longest row stops first (EOS) generates what it generates alone.
#[test]
fn a_short_row_left_alone_after_compaction_still_masks_its_padding() {
    let _turn = turn();
    let vs = nn::VarStore::new(Device::Cpu);
    let model = random_model(&vs, 5);
    // One long prompt and two short ones of equal length: once the long one ends, the short
    // rows left have no padding between them but both still have it in the cache.
    let prompts: Vec<Vec<i64>> = vec![vec![5, 17, 33, 2, 8, 60, 11], vec![9, 4, 21], vec![70, 71, 72]];
    let base = SamplingParams { max_new_tokens: 24, ..Default::default() };
    let decode = |_: &[i64]| String::new();
    let probe = generate_on(&model, &prompts, &[], 0, &base, &decode, DecodePath::Reference);
    // The longest prompt (row 0) ends early, by a token no other row writes.
    let (end, eos) = own_token(&probe, 0, 1);
    assert!(end < 12, "row 0 would end only at step {end}");
    for path in [DecodePath::Reference, DecodePath::InPlace, DecodePath::Fast] {
        for sync_every in [1, 5] {
            let params = SamplingParams { sync_every, ..base.clone() };
            let batch = generate_on(&model, &prompts, &[eos], 0, &params, &decode, path);
            assert_eq!(batch[0].token_ids.len(), end + 1, "{path:?}: row 0 ends early");
            for (row, prompt) in prompts.iter().enumerate().skip(1) {
                let alone = generate_on(&model, std::slice::from_ref(prompt), &[eos], 0, &params, &decode, path);
                assert_eq!(batch[row].token_ids, alone[0].token_ids, "{path:?}, every {sync_every}: row {row}");
            }
        }
    }
}
