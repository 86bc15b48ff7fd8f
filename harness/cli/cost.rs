//! `harness cost`: what BM25, exact dense search and HNSW cost on one dataset — wall-clock to
//! build each index from scratch and to run every query (dense: query encoding + search) —
//! with their quality and ratios to BM25. Our measurement of the paper's "BM25 is 34x cheaper
//! than dense retrieval" claim (the paper's setting was FEVER, 5.42M documents).
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use harness_core::trec_eval::evaluate;
use harness_core::{EvalOptions, Measure, Run, ScoredDoc};
use harness_datasets::beir::BeirDataset;
use harness_datasets::{LoaderKind, Registry};
use harness_retrieval::dense::HnswParams;
use harness_retrieval::{Bm25Params, DocFields};
use polars::prelude::*;

use crate::paths;
use crate::retrieve::{retrieve, RetrieverSpec};

#[derive(clap::Args)]
pub struct CostArgs {
    /// Dataset (BEIR format).
    #[arg(long)]
    dataset: String,
    /// Split (default: the card's).
    #[arg(long)]
    split: Option<String>,
    /// Dense model folder or `minilm`.
    #[arg(long, default_value = "minilm")]
    model: String,
    /// Search threads (1 gives single-thread query timings).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Output folder (default: results/runs/<run-id>).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: CostArgs) -> Result<()> {
    let registry = Registry::load_default()?;
    let card = registry.get(&args.dataset)?.clone();
    if card.loader != LoaderKind::Beir {
        bail!("`harness cost` needs a BEIR-format dataset; '{}' uses '{}'", card.name, card.loader.name());
    }
    let dir = registry.require_offline(&card)?;
    let split = args.split.clone().or(card.default_split.clone()).context("no --split and no default split")?;
    let dataset = BeirDataset::new(card.clone(), dir);
    let (queries, qrels) = dataset.split_queries(&split)?;
    let texts: Vec<String> = queries.iter().map(|q| q.text.clone()).collect();
    let measure: Measure = card.parsed_measures().first().copied().unwrap_or(Measure::ndcg_cut(10));
    let defaults = card.bm25.map(|d| Bm25Params { k1: d.k1, b: d.b }).unwrap_or_default();
    let hnsw = HnswParams::default();
    let model = if args.model == "minilm" { "dense".to_string() } else { format!("dense:{}", args.model) };
    let specs = [
        RetrieverSpec::parse("bm25", defaults, DocFields::Flat, hnsw)?,
        RetrieverSpec::parse(&model, defaults, DocFields::Flat, hnsw)?,
        RetrieverSpec::parse(&model.replacen("dense", "hnsw", 1), defaults, DocFields::Flat, hnsw)?,
    ];
    // A fresh cache: every index is built from scratch, so build times are real.
    let scratch = tempfile_dir(&paths::cache_dir())?;
    let mut rows = Vec::new();
    let mut dense_build = 0.0;
    for spec in &specs {
        let r = retrieve(&dataset, spec, &texts, card.depth, args.threads, &scratch, None)?;
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
    let df = DataFrame::new_infer_height(vec![
        Column::new("retriever".into(), rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>()),
        Column::new("build_s".into(), rows.iter().map(|r| r.1).collect::<Vec<_>>()),
        Column::new("query_s".into(), rows.iter().map(|r| r.2).collect::<Vec<_>>()),
        Column::new("queries_per_s".into(), rows.iter().map(|r| texts.len() as f64 / r.2).collect::<Vec<_>>()),
        Column::new("build_vs_bm25".into(), rows.iter().map(|r| r.1 / bm25_build).collect::<Vec<_>>()),
        Column::new("query_vs_bm25".into(), rows.iter().map(|r| r.2 / bm25_query).collect::<Vec<_>>()),
        Column::new(measure.name().as_str().into(), rows.iter().map(|r| r.3).collect::<Vec<_>>()),
    ])?;
    let run_id = paths::new_run_id(&format!("{}-{split}-cost", card.name));
    let out = args.out.clone().unwrap_or_else(|| paths::runs_dir().join(&run_id));
    std::fs::create_dir_all(&out)?;
    harness_report::write_all_formats(&df, &out, "cost")?;
    let meta = serde_json::json!({
        "run_id": run_id, "dataset": card.name, "split": split, "queries": texts.len(),
        "documents": dataset.read_corpus()?.len(), "search_threads": args.threads,
        "encode_threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "note": "build = index from scratch (BM25 postings; dense: passage encoding; HNSW: encoding + graph). query = all queries (dense: query encoding + search)",
    });
    let meta_text = serde_json::to_string_pretty(&meta)?;
    harness_core::io::write_atomically(&out.join("meta.json"), |w| w.write_all(meta_text.as_bytes()))?;
    println!("{} {split}: {} queries, {} documents", card.name, texts.len(), meta["documents"]);
    println!("{}", harness_report::display(&df));
    println!("written to {}", out.display());
    Ok(())
}

fn tempfile_dir(parent: &std::path::Path) -> Result<PathBuf> {
    let dir = parent.join(format!("cost-scratch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
