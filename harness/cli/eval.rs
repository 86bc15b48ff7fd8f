//! `harness eval`: one evaluation cell, written to results/runs/<run-id>/.
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use harness_core::trec_eval::evaluate;
use harness_core::{drcompat, EvalOptions, Measure, Run, ScoredDoc};
use harness_datasets::beir::BeirDataset;
use harness_datasets::{LoaderKind, Registry};
use harness_report::ResultRow;
use harness_retrieval::{Bm25Index, Bm25Params, DocFields, Document, IndexSettings};

use crate::paths;

#[derive(clap::Args, Clone, Debug)]
pub struct EvalArgs {
    /// Dataset name (see `harness datasets list`).
    #[arg(long)]
    pub dataset: String,
    /// Split (default: the card's default split).
    #[arg(long)]
    pub split: Option<String>,
    /// Retriever: bm25.
    #[arg(long, default_value = "bm25")]
    pub retriever: String,
    /// Query method: original.
    #[arg(long, default_value = "original")]
    pub method: String,
    /// BM25 k1 (default: the card's, else 0.9).
    #[arg(long)]
    pub bm25_k1: Option<f32>,
    /// BM25 b (default: the card's, else 0.4).
    #[arg(long)]
    pub bm25_b: Option<f32>,
    /// Document fields: flat (title + text in one field, as the paper) or multifield.
    #[arg(long, default_value = "flat")]
    pub fields: String,
    /// Documents retrieved per query (default: the card's depth).
    #[arg(long)]
    pub depth: Option<usize>,
    /// Search threads (1 gives single-thread timings).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Measures in trec_eval syntax (default: the card's).
    #[arg(short = 'm', long = "measure")]
    pub measures: Vec<String>,
    /// Output folder (default: results/runs/<run-id>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also report the paper's own NDCG@10 (dr-compat; never mixed into the standard table).
    #[arg(long)]
    pub dr_compat: bool,
    /// Do not print the table.
    #[arg(long)]
    pub quiet: bool,
}

/// What one evaluation produced.
pub struct EvalOutcome {
    pub row: ResultRow,
    pub run_dir: PathBuf,
}

fn search_all(
    index: &Bm25Index,
    queries: &[(String, String)],
    depth: usize,
    params: Bm25Params,
    threads: usize,
) -> Result<Vec<Vec<(u32, f32)>>> {
    let threads = threads.max(1).min(queries.len().max(1));
    let chunk = queries.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = queries
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || -> Result<Vec<Vec<(u32, f32)>>> {
                    let mut searcher = index.searcher();
                    part.iter().map(|(_, text)| Ok(searcher.search(text, depth, params)?)).collect()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(queries.len());
        for h in handles {
            out.extend(h.join().expect("search thread panicked")?);
        }
        Ok(out)
    })
}

pub fn run(args: EvalArgs) -> Result<EvalOutcome> {
    let registry = Registry::load_default()?;
    let card = registry.get(&args.dataset)?.clone();
    if card.loader != LoaderKind::Beir {
        bail!(
            "dataset '{}' uses the '{}' loader, which this build cannot evaluate yet ({})",
            card.name,
            card.loader.name(),
            card.offline_note
        );
    }
    let dir = registry.require_offline(&card)?;
    let split = args.split.clone().or(card.default_split.clone()).context("no --split given and the card has no default")?;
    let dataset = BeirDataset::new(card.clone(), dir);
    let (queries, qrels) = dataset.split_queries(&split)?;

    let mut method = harness_baselines::from_name(&args.method)?;
    let rewrites = method.rewrite(&queries)?;

    if args.retriever != "bm25" {
        bail!("unknown retriever '{}' (available: bm25)", args.retriever);
    }
    let defaults = card.bm25.map(|d| (d.k1, d.b)).unwrap_or((0.9, 0.4));
    let params = Bm25Params { k1: args.bm25_k1.unwrap_or(defaults.0), b: args.bm25_b.unwrap_or(defaults.1) };
    let fields: DocFields = args.fields.parse()?;
    let settings = IndexSettings { fields, ..Default::default() };
    let depth = args.depth.unwrap_or(card.depth);
    let retriever_label = format!("bm25(k1={},b={},{})", params.k1, params.b, args.fields);

    let checksum = dataset.corpus_checksum()?;
    let build_start = Instant::now();
    let mut built = false;
    let index = Bm25Index::open_or_build(&paths::cache_dir(), &checksum, settings, || {
        built = true;
        let docs = dataset.read_corpus().map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
        let n = docs.len();
        Ok((n, docs.into_iter().map(|d| Ok(Document { id: d.id, title: d.title, text: d.text }))))
    })?;
    let index_seconds = build_start.elapsed().as_secs_f64();

    let texts: Vec<(String, String)> = rewrites.iter().map(|r| (r.query_id.clone(), r.text.clone())).collect();
    let search_start = Instant::now();
    let hits = search_all(&index, &texts, depth, params, args.threads)?;
    let search_seconds = search_start.elapsed().as_secs_f64();

    let mut run = Run::new();
    for ((qid, _), hits) in texts.iter().zip(&hits) {
        run.insert(
            qid.clone(),
            hits.iter().map(|&(ord, score)| ScoredDoc { doc_id: index.doc_id(ord).to_string(), score: score as f64 }).collect(),
        );
    }

    let measure_specs = if args.measures.is_empty() { card.measures.clone() } else { args.measures.clone() };
    let mut measures = Vec::new();
    for spec in &measure_specs {
        measures.extend(Measure::parse_list(spec)?);
    }
    // Anserini's regressions score with trec_eval -c: every judged query counts.
    let opts = EvalOptions { average_over_all_qrels: true, ..Default::default() };
    let evaluation = evaluate(&qrels, &run, &measures, &opts);

    let run_id = paths::new_run_id(&format!("{}-{split}-{}-{}", card.name, args.retriever, args.method));
    let run_dir = args.out.clone().unwrap_or_else(|| paths::runs_dir().join(&run_id));
    std::fs::create_dir_all(&run_dir).with_context(|| format!("creating {}", run_dir.display()))?;

    let row = ResultRow {
        dataset: card.name.clone(),
        split: split.clone(),
        retriever: retriever_label.clone(),
        method: method.name(),
        // Table columns follow the order the measures were asked for (trec_eval's order is for
        // its own output format only).
        metrics: measures
            .iter()
            .fold(Vec::<Measure>::new(), |mut seen, m| {
                if !seen.contains(m) {
                    seen.push(*m);
                }
                seen
            })
            .into_iter()
            .filter_map(|m| evaluation.summary_of(m).map(|v| (m.name(), v)))
            .collect(),
        num_queries: evaluation.num_q,
        wall_seconds: search_seconds,
        source: "measured".into(),
        run_id: run_id.clone(),
    };
    let table = harness_report::results_frame(std::slice::from_ref(&row))?;
    harness_core::io::write_run(&run_dir.join("run.trec"), &run, &run_id)?;
    harness_report::write_all_formats(&table, &run_dir, "table")?;
    harness_report::write_parquet(&harness_report::per_query_frame(&evaluation)?, &run_dir.join("per_query.parquet"))?;

    let dr_compat = if args.dr_compat { Some(dr_compat_ndcg10(&card, &qrels, &run)) } else { None };
    let meta = serde_json::json!({
        "run_id": run_id,
        "command": std::env::args().collect::<Vec<_>>(),
        "harness_version": env!("CARGO_PKG_VERSION"),
        "dataset": card.name,
        "split": split,
        "corpus_sha256": checksum,
        "retriever": {
            "name": "bm25",
            "k1": params.k1,
            "b": params.b,
            "fields": args.fields,
            "analyzer": "UAX#29 words, English possessive, lowercase, Lucene's 33 stop words, Lucene Porter",
            "norms": "Lucene SmallFloat byte4 (lossy, as Anserini's default)",
            "depth": depth,
            "index_dir": index.dir(),
            "index_docs": index.num_docs(),
            "index_total_terms": index.total_terms(),
        },
        "method": method.name(),
        "measures": evaluation.measures.iter().map(|m| m.name()).collect::<Vec<_>>(),
        "trec_eval_options": {"c": true, "l": 1},
        "num_queries": evaluation.num_q,
        "seed": serde_json::Value::Null,
        "deterministic": true,
        "timings": {
            "index_seconds": index_seconds,
            "index_built_now": built,
            "search_seconds": search_seconds,
            "queries_per_second": texts.len() as f64 / search_seconds.max(1e-12),
            "search_threads": args.threads,
        },
        "dr_compat_ndcg_cut_10": dr_compat,
        "created": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
    });
    let meta_text = serde_json::to_string_pretty(&meta)?;
    harness_core::io::write_atomically(&run_dir.join("meta.json"), |w| w.write_all(meta_text.as_bytes()))?;

    if !args.quiet {
        println!("{}", harness_report::display(&table));
        if built {
            println!("index built in {index_seconds:.2}s ({} docs, {} terms)", index.num_docs(), index.total_terms()[0]);
        }
        if let Some(v) = dr_compat {
            println!("paper's own NDCG@10 (dr-compat, not trec_eval; see ARCHITECTURE.md): {v:.4}");
        }
        println!("run written to {}", run_dir.display());
    }
    Ok(EvalOutcome { row, run_dir })
}

/// The paper's NDCG@10 for this dataset (single-target rows or graded, per the card).
fn dr_compat_ndcg10(card: &harness_datasets::Card, qrels: &harness_core::Qrels, run: &Run) -> f64 {
    let ranked = |qid: &str| -> Vec<&str> {
        run.by_query
            .get(qid)
            .map(|docs| harness_core::trec_eval::sorted_like_trec_eval(docs).into_iter().map(|d| d.doc_id.as_str()).collect())
            .unwrap_or_default()
    };
    let values: Vec<f64> = if card.dr_compat_ndcg.as_deref() == Some("single-target") {
        drcompat::single_target_rows(qrels).iter().map(|(q, t)| drcompat::ndcg_single_target(&ranked(q), t, 10)).collect()
    } else {
        qrels.rows_in_file_order.iter().map(|(q, rows)| drcompat::ndcg_graded(&ranked(q), rows, 10)).collect()
    };
    if values.is_empty() { 0.0 } else { values.iter().fold(0.0, |a, v| a + v) / values.len() as f64 }
}
