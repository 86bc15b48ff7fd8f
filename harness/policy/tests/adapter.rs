//! LoRA adapter files: an adapter written in peft's layout and merged into its base at load gives
//! the logits of the live adapter; an adapter refuses a base other than its own.
use std::path::{Path, PathBuf};

use harness_policy::adapter::{peft_name, read_adapter, write_adapter, PEFT_CONFIG};
use harness_policy::{CausalLm, ModelConfig, Policy};
use tch::{nn, Device, Kind, Tensor};

fn smollm_dir() -> PathBuf {
    std::env::var_os("HARNESS_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.deps/models"))
        .join("smollm2-135m-instruct")
}

/// The tiny Qwen2 fixture with SmolLM2's tokenizer and template, as a model folder `dir`.
fn base_model(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/fixtures/tiny-qwen2");
    for f in ["config.json", "model.safetensors", "generation_config.json"] {
        std::fs::copy(fixture.join(f), dir.join(f)).unwrap();
    }
    for f in ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja"] {
        if smollm_dir().join(f).is_file() {
            std::fs::copy(smollm_dir().join(f), dir.join(f)).unwrap();
        }
    }
}

#[test]
fn an_adapter_written_then_merged_gives_the_live_adapters_logits() {
    let tmp = tempfile::tempdir().unwrap();
    let models = tmp.path().join("models");
    let base = models.join("tiny");
    base_model(&base);

    let text = std::fs::read_to_string(base.join("config.json")).unwrap();
    let config = ModelConfig::parse(&base.join("config.json"), &text).unwrap();
    let mut vs = nn::VarStore::new(Device::Cpu);
    let mut model = CausalLm::new(&vs.root(), config);
    harness_policy::model::load_weights(&mut vs, &base).unwrap();
    let (rank, alpha) = (4, 8.0);
    tch::manual_seed(11);
    let adapter = model.add_lora(&(vs.root() / "lora_actor"), rank, alpha);
    // A fresh adapter has B = 0; give it a non-zero B, as training would.
    let mut tensors = Vec::new();
    tch::no_grad(|| {
        for (name, var) in vs.variables() {
            let Some(rest) = name.strip_prefix("lora_actor.layers.") else { continue };
            let parts: Vec<&str> = rest.split('.').collect();
            let matrix = if parts[2] == "lora_b" { 'B' } else { 'A' };
            if matrix == 'B' {
                let mut v = var.shallow_clone();
                v.copy_(&(Tensor::randn(var.size(), (Kind::Float, Device::Cpu)) * 0.05));
            }
            tensors.push((peft_name(parts[0].parse().unwrap(), parts[1], matrix), var.detach().copy()));
        }
    });
    assert_eq!(tensors.len(), 2 * 7 * 2, "A and B of 7 projections in 2 layers");
    model.set_adapter(Some(adapter));
    let prompt = Tensor::from_slice(&[1i64, 520, 913, 28, 314, 9]).unsqueeze(0);
    let live = tch::no_grad(|| model.forward_full(&prompt));
    model.set_adapter(None);
    let plain = tch::no_grad(|| model.forward_full(&prompt));
    assert!((&live - &plain).abs().max().double_value(&[]) > 1e-3, "the adapter must change the logits for this test to mean anything");

    let out = tmp.path().join("adapter");
    write_adapter(&out, &base, rank, alpha, &tensors, serde_json::json!({"command": ["harness", "train"]})).unwrap();
    let peft: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join(PEFT_CONFIG)).unwrap()).unwrap();
    assert_eq!((peft["peft_type"].as_str(), peft["r"].as_i64(), peft["lora_alpha"].as_f64()), (Some("LORA"), Some(4), Some(8.0)));
    let (meta, read) = read_adapter(&out).unwrap();
    assert_eq!((meta.base_model.as_str(), read.len()), ("tiny", tensors.len()));
    assert!(meta.base_files_sha256.contains_key("model.safetensors") && meta.base_files_sha256.contains_key("config.json"));

    let merged = Policy::load_adapted(&out, &models, Device::Cpu).unwrap();
    let got = tch::no_grad(|| merged.model.forward_full(&prompt));
    let diff = (&got - &live).abs().max().double_value(&[]);
    assert!(diff < 1e-4, "merged adapter logits differ from the live adapter's by {diff:e}");
    // In another kind (as `generate --dtype` asks): the merge made in float32, then converted
    // once, so the bfloat16 weights are the float32 ones rounded.
    let bf16 = Policy::load_model_or_adapter_as(&out, &models, Device::Cpu, Kind::BFloat16).unwrap();
    assert_eq!(bf16.model.kind(), Kind::BFloat16);
    let rounded: Vec<(String, Tensor)> = merged.vs.variables().into_iter().map(|(n, t)| (n, t.to_kind(Kind::BFloat16))).collect();
    for (name, t) in rounded {
        assert!(bf16.vs.variables()[&name].equal(&t), "{name}");
    }

    // Another base under the same name: refused, naming the file that differs.
    let other = tmp.path().join("other");
    base_model(&other.join("tiny"));
    let cfg = other.join("tiny/config.json");
    let changed = std::fs::read_to_string(&cfg).unwrap().replace("\"rms_norm_eps\"", "\"initializer_range\": 0.5, \"rms_norm_eps\"");
    std::fs::write(&cfg, changed).unwrap();
    let err = Policy::load_adapted(&out, &other, Device::Cpu).err().expect("a different base must be refused").to_string();
    assert!(err.contains("does not match") && err.contains("config.json"), "{err}");
}
