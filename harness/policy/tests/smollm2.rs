//! The tch decoder against transformers on the setup's SmolLM2-135M-Instruct (float32).
use std::path::{Path, PathBuf};

use harness_policy::{DecodePath, Message, Policy, SamplingParams};
use tch::{Device, Kind, Tensor};

fn model_dir() -> PathBuf {
    let models = std::env::var_os("HARNESS_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.deps/models"));
    models.join("smollm2-135m-instruct")
}

fn fixture() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/fixtures/smollm2-135m-instruct-q4_1.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn ids(v: &serde_json::Value) -> Vec<i64> {
    v.as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect()
}

fn policy() -> Policy {
    tch::set_num_threads(2);
    Policy::load(&model_dir(), Device::Cpu).expect("run scripts/setup.sh first: the SmolLM2 model folder is missing")
}

#[test]
fn probes_match_transformers_token_ids_top10_and_logits() {
    let p = policy();
    let fx = fixture();
    for probe in fx["probes"].as_array().unwrap() {
        let want_ids = ids(&probe["ids"]);
        assert_eq!(p.encode(probe["text"].as_str().unwrap()).unwrap(), want_ids);
        let logits = tch::no_grad(|| p.model.forward_full(&Tensor::from_slice(&want_ids).unsqueeze(0))).squeeze_dim(0);
        let lse = logits.logsumexp([-1], false);
        for (pos, (top_ids, top_logits)) in probe["top10_ids"].as_array().unwrap().iter().zip(probe["top10_logits"].as_array().unwrap()).enumerate() {
            let (values, indices) = logits.get(pos as i64).topk(10, -1, true, true);
            let got_ids: Vec<i64> = Vec::try_from(&indices).unwrap();
            assert_eq!(got_ids, ids(top_ids), "position {pos}");
            let got: Vec<f32> = Vec::try_from(&values).unwrap();
            for (g, w) in got.iter().zip(top_logits.as_array().unwrap()) {
                assert!((*g as f64 - w.as_f64().unwrap()).abs() < 1e-3, "position {pos}: {g} vs {w}");
            }
            let want_lse = probe["logsumexp"][pos].as_f64().unwrap();
            assert!((lse.double_value(&[pos as i64]) - want_lse).abs() < 1e-3, "logsumexp at {pos}");
        }
    }
}

#[test]
fn chat_template_and_greedy_generation_reproduce_transformers() {
    let p = policy();
    let g = &fixture()["greedy"];
    let messages: Vec<Message> = g["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| Message::new(m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
        .collect();
    let prompt = p.chat_prompt(&messages).unwrap();
    assert_eq!(prompt, g["prompt_text"].as_str().unwrap());
    assert_eq!(p.encode(&prompt).unwrap(), ids(&g["prompt_ids"]));
    let params = SamplingParams { max_new_tokens: 32, ..Default::default() };
    let out = p.generate_texts(&[prompt], &params).unwrap();
    assert_eq!(out[0].1.token_ids, ids(&g["generated_ids"]));
    assert_eq!(out[0].0.clone() + "<|im_end|>", g["generated_text"].as_str().unwrap());
}

#[test]
fn kv_cache_decoding_equals_full_recomputation_in_a_padded_batch() {
    let p = policy();
    let prompts = ["The capital of France is", "List three prime numbers:", "SELECT name FROM"];
    let ids: Vec<Vec<i64>> = prompts.iter().map(|t| p.encode(t).unwrap()).collect();
    let params = SamplingParams { max_new_tokens: 12, ..Default::default() };
    let batched = harness_policy::generate(&p.model, &ids, &[], p.text.pad_id, &params, &|_| String::new());
    for (prompt, gen) in ids.iter().zip(&batched) {
        // Full recomputation: the whole sequence through the model at every step, no cache.
        let mut seq = prompt.clone();
        let mut greedy = Vec::new();
        let mut logprobs = Vec::new();
        for _ in 0..12 {
            let logits = tch::no_grad(|| p.model.forward_full(&Tensor::from_slice(&seq).unsqueeze(0)));
            let last = logits.get(0).get(-1);
            let next = last.argmax(-1, false).int64_value(&[]);
            logprobs.push(last.log_softmax(-1, Kind::Float).double_value(&[next]));
            greedy.push(next);
            seq.push(next);
        }
        assert_eq!(gen.token_ids, greedy);
        for (a, b) in gen.logprobs.iter().zip(&logprobs) {
            assert!((*a as f64 - b).abs() < 1e-3, "{a} vs {b}");
        }
    }
}

/// The fast decoding path (preallocated cache written in place; on the CPU, fused projections
/// packed by MKL, finished rows riding along until half the batch is done, then a re-pack)
/// against the plain one (concatenated cache, the model's own projections, finished rows
/// dropped at once), in a left-padded batch whose rows finish at different steps: the same
/// ids and finish reasons; log-probs equal to 1e-5 relative (GEMM kernels with another
/// summation order: 1.1e-5 absolute at most on this model, at log-probs near -2.6).
#[test]
fn fast_decoding_path_equals_the_plain_one() {
    let p = policy();
    // Otherwise this would compare the plain path with itself.
    if let Err(e) = p.model.pack_for_decoding(4) {
        panic!("this libtorch cannot pack weights with MKL: {e}");
    }
    let prompts = ["The capital of France is", "List three prime numbers:", "SELECT name FROM singer WHERE", "Hi"];
    let ids: Vec<Vec<i64>> = prompts.iter().map(|t| p.encode(t).unwrap()).collect();
    // Stop tokens taken from the plain run's output make two rows finish early (compaction).
    let params = SamplingParams { max_new_tokens: 40, ..Default::default() };
    let probe = harness_policy::generate_on(&p.model, &ids, &[], p.text.pad_id, &params, &|_| String::new(), DecodePath::Reference);
    let eos = [probe[1].token_ids[5], probe[2].token_ids[3]];
    let plain = harness_policy::generate_on(&p.model, &ids, &eos, p.text.pad_id, &params, &|_| String::new(), DecodePath::Reference);
    let fast = harness_policy::generate(&p.model, &ids, &eos, p.text.pad_id, &params, &|_| String::new());
    assert!(plain.iter().filter(|g| g.token_ids.len() < 40).count() >= 2, "fewer than two rows finished early");
    assert!(plain.iter().any(|g| g.token_ids.len() == 40), "no row ran to the end");
    for (f, r) in fast.iter().zip(&plain) {
        assert_eq!(f.token_ids, r.token_ids);
        assert_eq!(f.finish, r.finish);
        for (a, b) in f.logprobs.iter().zip(&r.logprobs) {
            assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{a} vs {b}");
        }
    }
}

#[test]
fn sampling_is_seeded_and_stops_on_strings() {
    let p = policy();
    let prompt = p.chat_prompt(&[Message::new("user", "Write a long story about a cat.")]).unwrap();
    let params = SamplingParams { max_new_tokens: 16, temperature: 0.8, top_p: 0.9, top_k: 50, seed: 7, ..Default::default() };
    let a = p.generate_texts(&[prompt.clone(), prompt.clone()], &params).unwrap();
    let b = p.generate_texts(&[prompt.clone(), prompt.clone()], &params).unwrap();
    assert_eq!(a[0].1.token_ids, b[0].1.token_ids);
    assert_eq!(a[1].1.token_ids, b[1].1.token_ids);
    assert!(a.iter().all(|(_, g)| g.logprobs.iter().all(|l| l.is_finite() && *l <= 0.0)));
    let other = SamplingParams { seed: 8, ..params.clone() };
    let c = p.generate_texts(&[prompt.clone()], &other).unwrap();
    assert_ne!(a[0].1.token_ids, c[0].1.token_ids, "different seeds gave identical samples");

    let greedy = SamplingParams { max_new_tokens: 40, ..Default::default() };
    let full = p.generate_texts(&[prompt.clone()], &greedy).unwrap();
    let word = full[0].0.split_whitespace().nth(3).unwrap().to_string();
    let stopped = p.generate_texts(&[prompt], &SamplingParams { stop_strings: vec![word.clone()], ..greedy }).unwrap();
    assert_eq!(stopped[0].1.finish, harness_policy::Finish::Stop);
    assert!(!stopped[0].0.contains(&word) && full[0].0.starts_with(&stopped[0].0), "{:?} / {:?}", stopped[0].0, full[0].0);
}
