//! The Qwen2 path (q/k/v biases, untied head), sharded checkpoints and bfloat16, on a tiny
//! randomly initialised model written to disk the way Hugging Face lays out large models.
use std::path::{Path, PathBuf};

use harness_policy::{CausalLm, ModelConfig, Policy, SamplingParams};
use tch::{nn, Device, Kind, Tensor};

fn smollm_dir() -> PathBuf {
    std::env::var_os("HARNESS_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.deps/models"))
        .join("smollm2-135m-instruct")
}

const CONFIG: &str = r#"{"model_type": "qwen2", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
  "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
  "vocab_size": 49152, "tie_word_embeddings": false, "eos_token_id": 2, "hidden_act": "silu"}"#;

/// Writes a random tiny Qwen2 in two shards with an index, plus SmolLM2's tokenizer and template.
fn write_model(dir: &Path) {
    let config = ModelConfig::parse(Path::new("config.json"), CONFIG).unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let _model = CausalLm::new(&vs.root(), config);
    tch::manual_seed(3);
    let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let (first, second) = named.split_at(named.len() / 2);
    let mut weight_map = serde_json::Map::new();
    for (file, part) in [("model-00001-of-00002.safetensors", first), ("model-00002-of-00002.safetensors", second)] {
        let tensors: Vec<(String, Tensor)> =
            part.iter().map(|(n, t)| (n.clone(), Tensor::randn(t.size(), (Kind::Float, Device::Cpu)) * 0.2)).collect();
        for (n, _) in &tensors {
            weight_map.insert(n.clone(), serde_json::Value::from(file));
        }
        Tensor::write_safetensors(&tensors, dir.join(file)).unwrap();
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": weight_map});
    std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).unwrap();
    std::fs::write(dir.join("config.json"), CONFIG).unwrap();
    for f in ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja"] {
        std::fs::copy(smollm_dir().join(f), dir.join(f)).unwrap();
    }
}

#[test]
fn sharded_qwen2_loads_and_cached_decoding_equals_recomputation() {
    let tmp = tempfile::tempdir().unwrap();
    write_model(tmp.path());
    let policy = Policy::load(tmp.path(), Device::Cpu).unwrap();
    assert!(policy.model.config.qkv_bias());
    let prompts = [policy.encode("hello there").unwrap(), policy.encode("a longer prompt with more words in it").unwrap()];
    let params = SamplingParams { max_new_tokens: 10, ..Default::default() };
    let cached = harness_policy::generate(&policy.model, &prompts, &[], policy.text.pad_id, &params, &|_| String::new());
    for (prompt, gen) in prompts.iter().zip(&cached) {
        let mut seq = prompt.clone();
        for &tok in &gen.token_ids {
            let logits = tch::no_grad(|| policy.model.forward_full(&Tensor::from_slice(&seq).unsqueeze(0)));
            assert_eq!(logits.get(0).get(-1).argmax(-1, false).int64_value(&[]), tok);
            seq.push(tok);
        }
    }

    // bfloat16 weights (the CUDA default) run and stay finite.
    let bf16 = Policy::load_as(tmp.path(), Device::Cpu, Kind::BFloat16).unwrap();
    let logits = tch::no_grad(|| bf16.model.forward_full(&Tensor::from_slice(&prompts[0]).unsqueeze(0)));
    assert_eq!(logits.kind(), Kind::Float);
    assert!(bool::try_from(logits.isfinite().all()).unwrap());
}

#[test]
fn broken_model_folders_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    write_model(tmp.path());
    std::fs::remove_file(tmp.path().join("model-00002-of-00002.safetensors")).unwrap();
    let err = Policy::load(tmp.path(), Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("model-00002-of-00002.safetensors") && err.contains("missing"), "{err}");

    std::fs::write(tmp.path().join("config.json"), CONFIG.replace("qwen2", "mamba")).unwrap();
    let err = Policy::load(tmp.path(), Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("model_type 'mamba' is not supported"), "{err}");

    let err = Policy::load(&tmp.path().join("nope"), Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("does not exist"), "{err}");
    assert!(harness_policy::parse_device("tpu").is_err());
}

/// A verl checkpoint (`global_step_N/actor/huggingface`, weights saved in bfloat16 by its
/// merger or its `hf_model` content) loads from the step folder or the actor folder as from the
/// Hugging Face folder itself; one holding only FSDP shards says how to merge them.
#[test]
fn verl_checkpoint_folders_load_from_their_huggingface_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let step = tmp.path().join("global_step_40");
    let hf = step.join("actor").join("huggingface");
    std::fs::create_dir_all(&hf).unwrap();
    write_model(&hf);
    // verl saves bf16 weights: rewrite the shards so.
    for shard in ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"] {
        let tensors: Vec<(String, Tensor)> =
            Tensor::read_safetensors(hf.join(shard)).unwrap().into_iter().map(|(n, t)| (n, t.to_kind(Kind::BFloat16))).collect();
        Tensor::write_safetensors(&tensors, hf.join(shard)).unwrap();
    }
    let models = tmp.path().join("models");
    let prompt = Tensor::from_slice(&[1i64, 5, 9, 200, 7]).unsqueeze(0);
    let logits = |dir: &Path| {
        let policy = Policy::load_model_or_adapter(dir, &models, Device::Cpu).unwrap();
        tch::no_grad(|| policy.model.forward_full(&prompt))
    };
    let direct = logits(&hf);
    for dir in [step.clone(), step.join("actor")] {
        assert!(logits(&dir).equal(&direct), "{}", dir.display());
    }
    assert_eq!(harness_policy::resolve_model_dir(&step).unwrap(), hf);

    // Only FSDP shards: the error names the merger and the actor folder.
    for shard in ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json"] {
        std::fs::remove_file(hf.join(shard)).unwrap();
    }
    std::fs::write(step.join("actor").join("model_world_size_2_rank_0.pt"), b"").unwrap();
    let err = Policy::load_model_or_adapter(&step, &models, Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("verl.model_merger merge --backend fsdp") && err.contains("global_step_40/actor"), "{err}");
}

/// tests/golden/fixtures/tiny-qwen2: a random Qwen2 (q/k/v biases, untied head, 4 query and 2
/// key/value heads, RoPE base 1e6 under transformers 5's `rope_parameters`) saved by
/// transformers, with its float32 logits and greedy continuations
/// (scripts/make_qwen2_fixture.py). The tch decoder must give the same logits to 1e-4 and the
/// same greedy tokens on both decoding paths.
#[test]
fn tiny_qwen2_matches_transformers_logits_and_greedy_tokens() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/fixtures/tiny-qwen2");
    let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
    let config = ModelConfig::parse(&dir.join("config.json"), &text).unwrap();
    assert_eq!(config.rope_theta, 1e6, "rope_parameters must be read");
    let mut vs = nn::VarStore::new(Device::Cpu);
    let model = CausalLm::new(&vs.root(), config);
    harness_policy::model::load_weights(&mut vs, &dir).unwrap();
    assert!(model.config.qkv_bias() && !model.config.tie_word_embeddings && model.config.kv_heads() == 2);
    let reference: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("qwen2-reference.json")).unwrap()).unwrap();
    let as_ids = |v: &serde_json::Value| -> Vec<i64> { v.as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect() };
    let cases = reference["cases"].as_array().unwrap();
    let mut worst = 0f64;
    for case in cases {
        let prompt = as_ids(&case["prompt_ids"]);
        let logits = tch::no_grad(|| model.forward_full(&Tensor::from_slice(&prompt).unsqueeze(0))).squeeze_dim(0);
        for (pos, row) in case["logits"].as_array().unwrap().iter().enumerate() {
            let got: Vec<f32> = Vec::try_from(&logits.get(pos as i64)).unwrap();
            for (g, w) in got.iter().zip(row.as_array().unwrap()) {
                worst = worst.max((*g as f64 - w.as_f64().unwrap()).abs());
            }
        }
    }
    eprintln!("largest logit difference from transformers: {worst:e}");
    assert!(worst <= 1e-4, "largest logit difference from transformers: {worst:e}");
    let prompts: Vec<Vec<i64>> = cases.iter().map(|c| as_ids(&c["prompt_ids"])).collect();
    let params = SamplingParams { max_new_tokens: 20, ..Default::default() };
    for path in [harness_policy::DecodePath::Fast, harness_policy::DecodePath::Reference] {
        let out = harness_policy::generate_on(&model, &prompts, &[], 0, &params, &|_| String::new(), path);
        for (case, generation) in cases.iter().zip(&out) {
            assert_eq!(generation.token_ids, as_ids(&case["greedy_ids"]), "{path:?}: prompt {:?}", case["prompt_ids"]);
        }
    }
}
