//! What BM25, exact dense search and HNSW cost on one dataset: wall-clock to build each index
//! from scratch and to run every query (dense: query encoding + search), with their quality and
//! ratios to BM25. Our measurement of the paper's "BM25 is 34x cheaper than dense retrieval"
//! claim (the paper's setting was FEVER, 5.42M documents).
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use harness_core::trec_eval::evaluate;
use harness_core::{EvalOptions, Measure, Run, ScoredDoc};
use harness_datasets::beir::BeirDataset;
use harness_datasets::LoaderKind;
use harness_retrieval::dense::HnswParams;
use harness_retrieval::DocFields;
use polars::prelude::*;

use crate::retrieve::{retrieve, RetrieveContext, RetrieverSpec};
use crate::context::Bench;
use crate::run_dir::RunDir;

/// A cost comparison.
#[derive(Debug, Clone)]
pub struct CostJob {
    pub dataset: String,
    /// Default: the card's.
    pub split: Option<String>,
    /// Dense model folder, or `minilm` (the workspace's encoder).
    pub model: String,
    /// Search threads (1 gives single-thread query timings).
    pub threads: usize,
    pub out: Option<PathBuf>,
}

/// The comparison table and where it was written.
pub struct CostOutcome {
    pub table: DataFrame,
    pub split: String,
    pub queries: usize,
    pub documents: usize,
    pub out: PathBuf,
}

pub fn run(bench: &Bench, job: &CostJob) -> Result<CostOutcome> {
    let card = bench.registry.get(&job.dataset)?.clone();
    if card.loader != LoaderKind::Beir {
        bail!("`harness cost` needs a BEIR-format dataset; '{}' uses '{}'", card.name, card.loader.name());
    }
    let dir = bench.registry.require_offline(&card)?;
    let split = job.split.clone().or(card.default_split.clone()).context("no --split and no default split")?;
    let dataset = BeirDataset::new(card.clone(), dir);
    let (queries, qrels) = dataset.split_queries(&split)?;
    let texts: Vec<String> = queries.iter().map(|q| q.text.clone()).collect();
    let measure: Measure = card.parsed_measures().first().copied().unwrap_or(Measure::ndcg_cut(10));
    let defaults = crate::families::beir::bm25_params(&crate::spec::CellSpec::default(), &card)?;
    let hnsw = HnswParams::default();
    let model = if job.model == "minilm" { "dense".to_string() } else { format!("dense:{}", job.model) };
    let encoder = bench.workspace.default_encoder();
    let specs = [
        RetrieverSpec::parse("bm25", defaults, DocFields::Flat, hnsw, &encoder)?,
        RetrieverSpec::parse(&model, defaults, DocFields::Flat, hnsw, &encoder)?,
        RetrieverSpec::parse(&model.replacen("dense", "hnsw", 1), defaults, DocFields::Flat, hnsw, &encoder)?,
    ];
    // A fresh cache: every index is built from scratch, so build times are real.
    let scratch = bench.workspace.cache.join(format!("cost-scratch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let mut rows = Vec::new();
    let mut dense_build = 0.0;
    for spec in &specs {
        let ctx = RetrieveContext { cache: &scratch, onnxruntime: &bench.workspace.onnxruntime };
        let r = retrieve(&dataset, spec, &texts, card.depth, job.threads, &ctx, None)?;
        let mut run = Run::new();
        for (q, hits) in queries.iter().zip(r.hits) {
            run.insert(q.id.clone(), hits.into_iter().map(|(doc_id, s)| ScoredDoc { doc_id, score: s as f64 }).collect());
        }
        let eval = evaluate(&qrels, &run, &[measure], &EvalOptions { average_over_all_qrels: true, ..Default::default() });
        // HNSW reuses the passage embeddings just encoded for exact search: its build is that
        // encoding plus the graph.
        let build = match rows.len() {
            1 => {
                dense_build = r.index_seconds;
                r.index_seconds
            }
            2 => dense_build + r.index_seconds,
            _ => r.index_seconds,
        };
        rows.push((spec.label(), build, r.search_seconds, eval.summary[0]));
    }
    let _ = std::fs::remove_dir_all(&scratch);
    let (bm25_build, bm25_query) = (rows[0].1, rows[0].2);
    let table = DataFrame::new_infer_height(vec![
        Column::new("retriever".into(), rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>()),
        Column::new("build_s".into(), rows.iter().map(|r| r.1).collect::<Vec<_>>()),
        Column::new("query_s".into(), rows.iter().map(|r| r.2).collect::<Vec<_>>()),
        Column::new("queries_per_s".into(), rows.iter().map(|r| texts.len() as f64 / r.2).collect::<Vec<_>>()),
        Column::new("build_vs_bm25".into(), rows.iter().map(|r| r.1 / bm25_build).collect::<Vec<_>>()),
        Column::new("query_vs_bm25".into(), rows.iter().map(|r| r.2 / bm25_query).collect::<Vec<_>>()),
        Column::new(measure.name().as_str().into(), rows.iter().map(|r| r.3).collect::<Vec<_>>()),
    ])?;
    let dir = RunDir::create(&bench.workspace.runs, &format!("{}-{split}-cost", card.name), job.out.as_deref(), bench.invocation.overwrite)?;
    harness_report::write_all_formats(&table, &dir.path, "cost")?;
    let documents = dataset.read_corpus()?.len();
    dir.write_meta(
        bench,
        serde_json::json!({
            "dataset": card.name, "split": split, "queries": texts.len(),
            "documents": documents, "search_threads": job.threads,
            "encode_threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "note": "build = index from scratch (BM25 postings; dense: passage encoding; HNSW: encoding + graph). query = all queries (dense: query encoding + search)",
        }),
    )?;
    Ok(CostOutcome { table, split, queries: texts.len(), documents, out: dir.path })
}
