//! Dense retrieval on SciFact: passage encoding throughput (batch 32; on the simplified graph
//! the encoder runs by default and on model.onnx as published), and exact vs HNSW
//! search latency over the 5,183 MiniLM passage vectors; then the quality check: `harness eval`
//! with MiniLM on SciFact test gives nDCG@10 within 0.01 of MTEB's 0.645, and HNSW at the
//! default ef finds at least 99% of exact search's top 10. Needs `scripts/setup.sh` (model and
//! ONNX Runtime); the passage vectors come from the harness's embedding cache (built on first
//! use, minutes on 2 cores). As a test (`cargo test --benches`) it runs once over the first 256
//! passages and skips the quality check: encoding the whole corpus is a benchmark's job. For
//! encoding against python onnxruntime side by side, run `benches/peers/encode_side_by_side.sh`.
use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{criterion_group, Criterion, Throughput};
use harness_datasets::beir::BeirDataset;
use harness_datasets::Registry;
use harness_retrieval::dense::{passage_embeddings, Encoder, GraphForm, HnswIndex, HnswParams, TextKind};

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
    let mut passages: Vec<String> = docs.iter().map(|d| format!("{} {}", d.title, d.text)).collect();
    let mut checksum = dataset.corpus_checksum().unwrap();
    if !benchmarking() {
        passages.truncate(256);
        checksum = format!("{checksum}-first256");
    }
    let (queries, _) = dataset.split_queries("test").unwrap();
    let mut encoder = Encoder::load(&model_dir(), 2).expect("run scripts/setup.sh first");

    let mut group = c.benchmark_group("scifact_dense");
    group.sample_size(10);
    let sample: Vec<&str> = passages.iter().take(64).map(String::as_str).collect();
    group.throughput(Throughput::Elements(sample.len() as u64));
    group.bench_function("encode_64_passages_batch32_2threads", |b| {
        b.iter(|| black_box(encoder.encode_many(&sample, TextKind::Passage, 32).unwrap()))
    });
    // The same on model.onnx as published (softmax NaN guards kept): what the graph edit saves.
    let runtime = harness_retrieval::dense::encoder::default_ort_library();
    let mut published = Encoder::load_with_runtime_as(&model_dir(), 2, &runtime, GraphForm::AsPublished).unwrap();
    group.bench_function("encode_64_passages_batch32_2threads_graph_as_published", |b| {
        b.iter(|| black_box(published.encode_many(&sample, TextKind::Passage, 32).unwrap()))
    });
    drop(published);

    let cache = Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache");
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

/// `cargo bench` passes `--bench`; `cargo test --benches` does not.
fn benchmarking() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn top10(run: &Path) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut out = std::collections::BTreeMap::<String, Vec<String>>::new();
    for line in std::fs::read_to_string(run).unwrap().lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let docs = out.entry(f[0].to_string()).or_default();
        if docs.len() < 10 {
            docs.push(f[2].to_string());
        }
    }
    out
}

/// SciFact test with MiniLM through `harness eval`: nDCG@10 within 0.01 of MTEB's 0.645, HNSW
/// recall@10 against exact search at least 0.99 (panics otherwise).
fn quality_check() {
    let tmp = tempfile::tempdir().unwrap();
    let eval = |retriever: &str, out: &str| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_harness"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["eval", "--dataset", "scifact", "--split", "test", "--retriever", retriever, "--threads", "2", "--quiet", "--out"])
            .arg(tmp.path().join(out))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    eval("dense", "exact");
    eval("hnsw", "hnsw");
    let table = std::fs::read_to_string(tmp.path().join("exact/table.csv")).unwrap();
    let header: Vec<&str> = table.lines().next().unwrap().split(',').collect();
    let i = header.iter().position(|h| *h == "ndcg_cut_10").unwrap();
    // The retriever label holds commas only for bm25; dense labels have none.
    let ndcg: f64 = table.lines().nth(1).unwrap().split(',').nth(i).unwrap().parse().unwrap();
    let exact = top10(&tmp.path().join("exact/run.trec"));
    let approx = top10(&tmp.path().join("hnsw/run.trec"));
    let found: usize = exact.iter().map(|(q, docs)| docs.iter().filter(|d| approx[q].contains(d)).count()).sum();
    let total: usize = exact.values().map(Vec::len).sum();
    let recall = found as f64 / total as f64;
    println!("quality: SciFact test nDCG@10 {ndcg:.4} (MTEB 0.645), HNSW recall@10 vs exact {recall:.4}");
    assert!((ndcg - 0.645).abs() < 0.01, "nDCG@10 {ndcg}");
    assert!(recall >= 0.99, "HNSW recall@10 against exact search: {recall}");
}

criterion_group!(benches, bench_dense);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    if benchmarking() {
        quality_check();
    }
}
