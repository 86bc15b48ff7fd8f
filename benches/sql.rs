//! Execution accuracy over Spider dev: the 1,034 gold queries against themselves (972 runnable)
//! and the 6,459 varied predictions of tests/golden/spider_exec, in both modes, on one thread and
//! on all cores. Criterion's throughput line is questions per second. The side-by-side against
//! the official Python evaluator is benches/peers/sql_side_by_side.sh.
use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use harness_sql::data::{read_gold_file, read_prediction_file};
use harness_sql::{evaluate, ExItem, ExMode, ExOptions};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn items(gold: &Path, pred: Option<&Path>) -> Vec<ExItem> {
    let golds = read_gold_file(gold).unwrap();
    let preds = match pred {
        Some(p) => read_prediction_file(p, golds.len()).unwrap(),
        None => golds.iter().map(|g| g.gold_sql.clone()).collect(),
    };
    golds
        .into_iter()
        .zip(preds)
        .map(|(g, p)| ExItem { index: g.index, db_id: g.db_id, gold_sql: g.gold_sql, pred_sql: p, level: None })
        .collect()
}

fn bench_sql(c: &mut Criterion) {
    let db_dir = root().join("datasets/data/spider/database");
    let golden = root().join("tests/golden/spider_exec");
    let sets = [
        ("dev_gold_self", items(&root().join("datasets/data/spider/dev_gold.sql"), None)),
        ("dev_varied", items(&golden.join("gold.sql.gz"), Some(&golden.join("pred.sql.gz")))),
    ];
    let mut group = c.benchmark_group("spider_execution_accuracy");
    group.sample_size(10);
    for (name, set) in &sets {
        group.throughput(Throughput::Elements(set.len() as u64));
        for mode in [ExMode::Dr, ExMode::TestSuite] {
            for threads in [1, 0] {
                let options = ExOptions { mode, threads, ..Default::default() };
                let label = format!("{name}/{}/{}", mode.name(), if threads == 1 { "1-thread" } else { "all-cores" });
                group.bench_function(label, |b| b.iter(|| black_box(evaluate(set, &db_dir, &options, &|| {}).unwrap())));
            }
        }
    }
    group.finish();
}

criterion_group!(benches, bench_sql);
criterion_main!(benches);
