//! Dense retrieval on SciFact: passage encoding throughput (batch 32), and exact vs HNSW
//! search latency over the 5,183 MiniLM passage vectors. Needs `scripts/setup.sh` (model and
//! ONNX Runtime); the passage vectors come from the harness's embedding cache (built on first
//! use). For encoding against python onnxruntime side by side, run
//! `benches/peers/encode_side_by_side.sh`.
use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use harness_datasets::beir::BeirDataset;
use harness_datasets::Registry;
use harness_retrieval::dense::{passage_embeddings, Encoder, HnswIndex, HnswParams, TextKind};

fn model_dir() -> PathBuf {
    std::env::var_os("HARNESS_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".deps/models"))
        .join("all-minilm-l6-v2-int8")
}

fn bench_dense(c: &mut Criterion) {
    let registry = Registry::builtin(Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/data")).unwrap();
    let card = registry.get("scifact").unwrap().clone();
    let dataset = BeirDataset::new(card.clone(), registry.require_offline(&card).unwrap());
    let docs = dataset.read_corpus().unwrap();
    let passages: Vec<String> = docs.iter().map(|d| format!("{} {}", d.title, d.text)).collect();
    let (queries, _) = dataset.split_queries("test").unwrap();
    let mut encoder = Encoder::load(&model_dir(), 2).expect("run scripts/setup.sh first");

    let mut group = c.benchmark_group("scifact_dense");
    group.sample_size(10);
    let sample: Vec<&str> = passages.iter().take(64).map(String::as_str).collect();
    group.throughput(Throughput::Elements(sample.len() as u64));
    group.bench_function("encode_64_passages_batch32_2threads", |b| {
        b.iter(|| black_box(encoder.encode_many(&sample, TextKind::Passage, 32).unwrap()))
    });

    let cache = Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache");
    let checksum = dataset.corpus_checksum().unwrap();
    let embeddings = passage_embeddings(&cache, &mut encoder, &checksum, &passages, 32).unwrap();
    let refs: Vec<&str> = queries.iter().map(|q| q.text.as_str()).collect();
    let query_vectors = encoder.encode_many(&refs, TextKind::Query, 32).unwrap();
    let hnsw = HnswIndex::open_or_build(&embeddings, HnswParams::default()).unwrap();
    group.sample_size(20);
    group.throughput(Throughput::Elements(query_vectors.len() as u64));
    group.bench_function("exact_300_queries_top10", |b| {
        b.iter(|| query_vectors.iter().map(|q| black_box(embeddings.search_exact(q, 10))).count())
    });
    group.bench_function("hnsw_300_queries_top10_ef256", |b| {
        b.iter(|| query_vectors.iter().map(|q| black_box(hnsw.search(q, 10))).count())
    });
    group.finish();
}

criterion_group!(benches, bench_dense);
criterion_main!(benches);
