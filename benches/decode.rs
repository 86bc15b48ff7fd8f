//! Greedy decoding in process: the setup's SmolLM2-135M-Instruct in float32 on the CPU, 2
//! threads, 8 SciFact chat prompts, end-of-turn ignored, at batch 8 and batch 1 (the shapes of
//! `benches/peers/decode_side_by_side.sh`, which compares the same against transformers in
//! whole processes). Throughput is in generated tokens. As a test (`cargo test --benches`) it
//! runs each case once with 4 new tokens. Needs `scripts/setup.sh` (the model).
use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{criterion_group, Criterion, Throughput};
use harness_policy::{Message, Policy, SamplingParams};

fn model_dir() -> PathBuf {
    std::env::var_os("HARNESS_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".deps/models"))
        .join("smollm2-135m-instruct")
}

fn bench_decode(c: &mut Criterion) {
    tch::set_num_threads(2);
    let policy = Policy::load(&model_dir(), tch::Device::Cpu).expect("run scripts/setup.sh first");
    let queries = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/data/scifact/queries.jsonl")).unwrap();
    let prompts: Vec<Vec<i64>> = queries
        .lines()
        .take(8)
        .map(|line| {
            let query: serde_json::Value = serde_json::from_str(line).unwrap();
            let text = format!("Rewrite this claim as a search query: {}", query["text"].as_str().unwrap());
            policy.encode(&policy.chat_prompt(&[Message::new("user", &text)]).unwrap()).unwrap()
        })
        .collect();
    let new_tokens = if benchmarking() { 64 } else { 4 };
    let params = SamplingParams { max_new_tokens: new_tokens, ..SamplingParams::default() };
    let mut group = c.benchmark_group("smollm2_greedy_cpu_f32");
    group.sample_size(10);
    for batch in [8usize, 1] {
        let rows = &prompts[..batch];
        group.throughput(Throughput::Elements((batch * new_tokens) as u64));
        group.bench_function(format!("batch{batch}_{new_tokens}_new_tokens_2threads"), |b| {
            b.iter(|| black_box(harness_policy::generate(&policy.model, rows, &[], policy.text.pad_id, &params, &|t| policy.decode(t))))
        });
    }
    group.finish();
}

/// `cargo bench` passes `--bench`; `cargo test --benches` does not.
fn benchmarking() -> bool {
    std::env::args().any(|a| a == "--bench")
}

criterion_group!(benches, bench_decode);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
