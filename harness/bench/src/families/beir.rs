//! BEIR-layout datasets (classic IR, and evidence-seeking over a vendored passage corpus):
//! queries and qrels of a split -> the method -> BM25 or dense retrieval -> trec_eval measures
//! (`-c`) and, for `hit.K`, answer containment.
use anyhow::{bail, Context, Result};
use harness_core::trec_eval::{evaluate, sorted_like_trec_eval};
use harness_core::{drcompat, EvalOptions, Qrels, Query, Run, ScoredDoc};
use harness_datasets::beir::BeirDataset;
use harness_datasets::{Card, DrCompatNdcg};
use harness_report::ResultRow;
use harness_retrieval::dense::HnswParams;
use harness_retrieval::{Bm25Params, DocFields};

use super::{distinct, first_answer_rank, hit_rates, parse_measures};
use crate::retrieve::{retrieve, RetrieveContext, RetrieverSpec};
use super::CellOutcome;
use crate::context::Bench;
use crate::methods;
use crate::run_dir::RunDir;
use crate::spec::CellSpec;

/// The spec's BM25 settings: its own, else the card's, else the defaults; outside Lucene's
/// domain (k1 >= 0 finite, b in [0, 1]) an error.
pub fn bm25_params(spec: &CellSpec, card: &Card) -> Result<Bm25Params> {
    let card_params = card.bm25.map(|d| Bm25Params { k1: d.k1, b: d.b }).unwrap_or_default();
    let params = Bm25Params { k1: spec.k1.unwrap_or(card_params.k1), b: spec.b.unwrap_or(card_params.b) };
    params.check().map_err(|e| anyhow::anyhow!("{e} (--bm25-k1 / --bm25-b, or the card's [bm25])"))?;
    Ok(params)
}

pub fn run(bench: &Bench, spec: &CellSpec, card: &Card) -> Result<CellOutcome> {
    let dir = bench.registry.require_offline(card)?;
    let split = spec.split.clone().or(card.default_split.clone()).context("no split given and the card has no default")?;
    let dataset = BeirDataset::new(card.clone(), dir);
    let (queries, mut qrels) = dataset.split_queries(&split)?;
    let queries = spec.limited(queries);
    if spec.limit.is_some() {
        // -c averages over every qrels query: keep the judged queries that are evaluated.
        let kept: std::collections::HashSet<&str> = queries.iter().map(|q| q.id.as_str()).collect();
        qrels.by_query.retain(|q, _| kept.contains(q.as_str()));
        qrels.rows_in_file_order.retain(|q, _| kept.contains(q.as_str()));
    }

    let retriever_kind = if spec.retriever.starts_with("bm25") { "sparse" } else { "dense" };
    let mut method = methods::build(bench, spec, methods::query_task(card, retriever_kind)?)?;
    let method_start = std::time::Instant::now();
    let rewrites = method.rewrite(&queries)?;
    let method_seconds = method_start.elapsed().as_secs_f64();
    let feedback = method.feedback().map(|f| harness_retrieval::rm3::Rm3Settings {
        fb_docs: f.fb_docs,
        fb_terms: f.fb_terms,
        original_query_weight: f.original_query_weight,
    });

    let params = bm25_params(spec, card)?;
    let fields: DocFields = spec.fields.parse()?;
    let hnsw = HnswParams { m: spec.hnsw_m, ef_construction: spec.hnsw_ef_construction, ef_search: spec.hnsw_ef };
    let retriever = RetrieverSpec::parse(&spec.retriever, params, fields, hnsw, &bench.workspace.default_encoder())?;
    let depth = spec.depth.unwrap_or(card.depth);

    let query_texts: Vec<String> = rewrites.iter().map(|r| r.text.clone()).collect();
    let ctx = RetrieveContext { cache: &bench.workspace.cache, onnxruntime: &bench.workspace.onnxruntime };
    let retrieved = retrieve(&dataset, &retriever, &query_texts, depth, spec.threads, &ctx, feedback)?;
    let mut run = Run::new();
    for (rewrite, hits) in rewrites.iter().zip(retrieved.hits) {
        run.insert(rewrite.query_id.clone(), hits.into_iter().map(|(doc_id, score)| ScoredDoc { doc_id, score: score as f64 }).collect());
    }

    let (measures, hit_depths) = parse_measures(if spec.measures.is_empty() { &card.measures } else { &spec.measures })?;
    // Anserini's regressions score with trec_eval -c: every judged query counts.
    let eval_options = EvalOptions { average_over_all_qrels: true, ..Default::default() };
    let scoring_start = std::time::Instant::now();
    let evaluation = evaluate(&qrels, &run, &measures, &eval_options);
    let hits = if hit_depths.is_empty() { Vec::new() } else { answer_hits(&dataset, &queries, &run, &hit_depths)? };
    let wall = super::Wall { generation: method_seconds, retrieval: retrieved.search_seconds, scoring: scoring_start.elapsed().as_secs_f64() };

    let dir = RunDir::create(&bench.workspace.runs, &format!("{}-{split}-{}-{}", card.name, spec.retriever, spec.method), spec.out.as_deref(), bench.invocation.overwrite)?;
    let row = ResultRow {
        dataset: card.name.clone(),
        split: split.clone(),
        retriever: retriever.label(),
        method: method.name(),
        metrics: distinct(&measures)
            .into_iter()
            .filter_map(|m| evaluation.summary_of(m).map(|v| (m.name(), v)))
            .chain(hits.iter().cloned())
            .collect(),
        num_queries: evaluation.num_q,
        wall_seconds: wall.total(),
        source: "measured".into(),
        run_id: dir.id.clone(),
    };
    let table = dir.write_cell(&row, Some(&run))?;
    dir.write_per_query(&evaluation)?;
    dir.write_jsonl("rewrites.jsonl", &method.generations())?;
    let dr_compat = spec.dr_compat.then(|| dr_compat_ndcg10(card, &qrels, &run));
    dir.write_meta(
        bench,
        serde_json::json!({
            "dataset": card.name,
            "split": split,
            "limit": spec.limit,
            "corpus_sha256": retrieved.corpus_sha256,
            "retriever": retrieved.details,
            "method": method.name(),
            "method_report": method.report(),
            "method_seconds": method_seconds,
            "measures": evaluation.measures.iter().map(|m| m.name()).collect::<Vec<_>>(),
            "trec_eval_options": {"c": true, "l": 1},
            "num_queries": evaluation.num_q,
            "seed": serde_json::Value::Null,
            "deterministic": true,
            "depth": depth,
            "timings": {
                "wall": wall.json(),
                "index_seconds": retrieved.index_seconds,
                "index_built_now": retrieved.index_built,
                "search_seconds": retrieved.search_seconds,
                "queries_per_second": query_texts.len() as f64 / retrieved.search_seconds.max(1e-12),
                "search_threads": spec.threads,
            },
            "dr_compat_ndcg_cut_10": dr_compat,
        }),
    )?;
    let mut notes = Vec::new();
    if retrieved.index_built {
        notes.push(format!("index built in {:.2}s", retrieved.index_seconds));
    }
    if let Some(v) = dr_compat {
        notes.push(format!("paper's own NDCG@10 (dr-compat, not trec_eval; see ARCHITECTURE.md): {v:.4}"));
    }
    let scores = Some(super::QueryScores::new(&qrels, &evaluation, &eval_options, &measures));
    Ok(CellOutcome { row, table, run_dir: dir.path, notes, scores })
}

/// Hit@k by answer containment: the share of queries (all of them, as trec_eval -c) with a
/// passage among their top k that holds an answer, with Pyserini's DPR `has_answers` semantics
/// on the passage text (the title is not searched, as in Pyserini's DPR evaluation).
fn answer_hits(dataset: &BeirDataset, queries: &[Query], run: &Run, depths: &[usize]) -> Result<Vec<(String, f64)>> {
    use harness_core::answers::dpr_tokens;
    let answers = dataset.read_answers()?;
    if answers.is_empty() {
        bail!("the dataset's queries carry no answer strings (queries.jsonl metadata.answers): hit.K cannot be measured");
    }
    let passages: std::collections::HashMap<String, Vec<String>> = dataset.read_corpus()?.into_iter().map(|d| (d.id, dpr_tokens(&d.text))).collect();
    let deepest = depths.iter().copied().max().unwrap_or(0);
    let first_ranks: Vec<Option<usize>> = queries
        .iter()
        .map(|q| {
            let wanted: Vec<Vec<String>> = answers.get(&q.id).map(|a| a.iter().map(|s| dpr_tokens(s)).collect()).unwrap_or_default();
            let ranked = run.by_query.get(&q.id).map(|docs| sorted_like_trec_eval(docs)).unwrap_or_default();
            first_answer_rank(ranked.iter().take(deepest).map(|d| d.doc_id.as_str()), &passages, &wanted)
        })
        .collect();
    Ok(hit_rates(&first_ranks, depths))
}

/// The paper's NDCG@10 for this dataset (single-target rows or graded, per the card).
fn dr_compat_ndcg10(card: &Card, qrels: &Qrels, run: &Run) -> f64 {
    let ranked = |qid: &str| -> Vec<&str> {
        run.by_query.get(qid).map(|docs| sorted_like_trec_eval(docs).into_iter().map(|d| d.doc_id.as_str()).collect()).unwrap_or_default()
    };
    let values: Vec<f64> = match card.dr_compat() {
        DrCompatNdcg::SingleTarget => drcompat::single_target_rows(qrels).iter().map(|(q, t)| drcompat::ndcg_single_target(&ranked(q), t, 10)).collect(),
        DrCompatNdcg::Graded => qrels.rows_in_file_order.iter().map(|(q, rows)| drcompat::ndcg_graded(&ranked(q), rows, 10)).collect(),
    };
    if values.is_empty() { 0.0 } else { values.iter().fold(0.0, |a, v| a + v) / values.len() as f64 }
}
