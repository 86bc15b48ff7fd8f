//! trec_eval-exact scoring of a run file in process: the streaming scorer (`harness score`,
//! 1 and 2 threads) against reading the whole run and evaluating it, on the SciFact BM25 golden
//! run (300 queries x 100 documents, uncompressed into a temporary file). The whole-process
//! side-by-side against trec_eval and pytrec_eval is benches/peers/score_side_by_side.sh.
use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use harness_core::io::{read_qrels, read_run};
use harness_core::score_file::evaluate_run_file;
use harness_core::trec_eval::evaluate;
use harness_core::{EvalOptions, Measure};

fn bench_score(c: &mut Criterion) {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/trec_eval");
    let qrels = read_qrels(&golden.join("scifact-bm25.qrels")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run_file = dir.path().join("run.trec");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(std::fs::File::open(golden.join("scifact-bm25.run.gz")).unwrap()), &mut text).unwrap();
    std::fs::write(&run_file, &text).unwrap();
    let lines = text.lines().count() as u64;
    let measures: Vec<Measure> = ["map", "recip_rank", "ndcg_cut.10"].iter().flat_map(|m| Measure::parse_list(m).unwrap()).collect();
    let opts = EvalOptions { average_over_all_qrels: true, ..Default::default() };
    let mut group = c.benchmark_group("score_scifact_bm25_run");
    group.throughput(Throughput::Elements(lines));
    group.bench_function("read_then_evaluate", |b| {
        b.iter(|| black_box(evaluate(&qrels, &read_run(&run_file).unwrap().run, &measures, &opts).summary))
    });
    for threads in [1, 2] {
        group.bench_function(format!("streaming_threads_{threads}"), |b| {
            b.iter(|| black_box(evaluate_run_file(&qrels, &run_file, &measures, &opts, threads).unwrap().summary))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_score);
criterion_main!(benches);
