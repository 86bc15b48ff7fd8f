//! `harness eval`: one evaluation cell, written to results/runs/<run-id>/.
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use harness_core::trec_eval::evaluate;
use harness_core::{drcompat, EvalOptions, Measure, Run, ScoredDoc};
use harness_datasets::beir::BeirDataset;
use harness_datasets::{LoaderKind, Registry};
use harness_report::ResultRow;
use harness_retrieval::dense::HnswParams;
use harness_retrieval::{Bm25Params, DocFields};

use crate::paths;
use crate::retrieve::{retrieve, RetrieverSpec};

#[derive(clap::Args, Clone, Debug)]
pub struct EvalArgs {
    /// Dataset name (see `harness datasets list`).
    #[arg(long)]
    pub dataset: String,
    /// Split (default: the card's default split).
    #[arg(long)]
    pub split: Option<String>,
    /// Retriever: bm25, dense[:MODEL] (exact) or hnsw[:MODEL]; MODEL is a folder with
    /// model.onnx and tokenizer.json, default the setup's all-MiniLM-L6-v2 int8.
    #[arg(long, default_value = "bm25")]
    pub retriever: String,
    /// Query method, repeatable (each becomes a row of one table): original, rm3[:FB_DOCS,
    /// FB_TERMS,WEIGHT], llm:DIR, checkpoint:DIR, api:MODEL; gold for SQL datasets.
    #[arg(long = "method", default_value = "original")]
    pub methods: Vec<String>,
    /// The method of this cell (one of `methods`; set by `run_all`).
    #[arg(skip)]
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
    /// HNSW links per node.
    #[arg(long, default_value_t = 32)]
    pub hnsw_m: usize,
    /// HNSW candidate list while building.
    #[arg(long, default_value_t = 200)]
    pub hnsw_ef_construction: usize,
    /// HNSW candidate list while searching.
    #[arg(long, default_value_t = 256)]
    pub hnsw_ef: usize,
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
    /// SQL datasets: folder with <db_id>/<db_id>.sqlite (default: the dataset's vendored databases).
    #[arg(long)]
    pub db_dir: Option<PathBuf>,
    /// SQL datasets: seconds one statement may run (the paper uses 30).
    #[arg(long, default_value_t = 30.0)]
    pub sql_timeout_secs: f64,
    /// Model methods (llm:, checkpoint:, api:): answer without a <think> block.
    #[arg(long)]
    pub no_reasoning: bool,
    /// Model methods: most tokens generated per query.
    #[arg(long, default_value_t = 512)]
    pub max_new_tokens: usize,
    /// Model methods: prompts per generation batch.
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// Model methods: sampling temperature (0 = greedy).
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f64,
    /// Model methods: sampling seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Local models: auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Literature datasets: offline (the vendored record index), pubmed or ctgov (live APIs);
    /// auto picks the dataset's own.
    #[arg(long, default_value = "auto")]
    pub engine: String,
    /// Literature datasets: review tasks in the paper's JSONL format (pico, publication_pmids or
    /// trial_nctids, pub_date) instead of the vendored reviews.
    #[arg(long)]
    pub tasks: Option<PathBuf>,
    /// Open-QA datasets (nq, triviaqa, squad): the DPR passages file (psgs_w100.tsv[.gz]);
    /// default: $HARNESS_DPR_PASSAGES, else the dataset's folder.
    #[arg(long)]
    pub passages: Option<PathBuf>,
    /// Do not print the table.
    #[arg(long)]
    pub quiet: bool,
}

/// Generation settings of model methods from the command line.
pub fn llm_settings(args: &EvalArgs) -> harness_baselines::LlmSettings {
    harness_baselines::LlmSettings {
        reasoning: !args.no_reasoning,
        sampling: harness_policy::SamplingParams {
            max_new_tokens: args.max_new_tokens,
            temperature: args.temperature,
            seed: args.seed,
            ..Default::default()
        },
        batch_size: args.batch_size,
    }
}

impl EvalArgs {
    /// Arguments for one cell with every optional setting at its default.
    pub fn cell(dataset: &str, split: &str, retriever: &str, method: &str) -> EvalArgs {
        EvalArgs {
            dataset: dataset.into(),
            split: Some(split.into()),
            retriever: retriever.into(),
            methods: vec![method.into()],
            method: method.into(),
            bm25_k1: None,
            bm25_b: None,
            fields: "flat".into(),
            hnsw_m: 32,
            hnsw_ef_construction: 200,
            hnsw_ef: 256,
            depth: None,
            threads: 1,
            measures: Vec::new(),
            out: None,
            dr_compat: false,
            db_dir: None,
            sql_timeout_secs: 30.0,
            no_reasoning: false,
            max_new_tokens: 512,
            batch_size: 8,
            temperature: 0.0,
            seed: 0,
            device: "auto".into(),
            engine: "auto".into(),
            tasks: None,
            passages: None,
            quiet: true,
        }
    }
}

/// What one evaluation produced.
pub struct EvalOutcome {
    pub row: ResultRow,
    pub run_dir: PathBuf,
}

/// Runs every `--method` as its own cell; with several, also writes their rows as one table
/// (`<out>/table.{csv,parquet,md}`, cells in `<out>/<n>-<method>/`).
pub fn run_all(args: EvalArgs) -> Result<()> {
    if args.methods.len() == 1 {
        let method = args.methods[0].clone();
        return run(EvalArgs { method, ..args }).map(|_| ());
    }
    let run_id = paths::new_run_id(&format!("{}-{}-methods", args.dataset, args.retriever));
    let out = args.out.clone().unwrap_or_else(|| paths::runs_dir().join(&run_id));
    let mut rows = Vec::new();
    for (i, method) in args.methods.iter().enumerate() {
        let label: String = method.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).take(60).collect();
        let cell = EvalArgs { method: method.clone(), methods: vec![method.clone()], out: Some(out.join(format!("{i}-{label}"))), quiet: true, ..args.clone() };
        rows.push(run(cell)?.row);
    }
    let table = harness_report::results_frame(&rows)?;
    harness_report::write_all_formats(&table, &out, "table")?;
    if !args.quiet {
        println!("{}", harness_report::display(&table));
        println!("runs written to {}", out.display());
    }
    Ok(())
}

pub fn run(args: EvalArgs) -> Result<EvalOutcome> {
    let registry = Registry::load_default()?;
    let card = registry.get(&args.dataset)?.clone();
    if matches!(card.loader, LoaderKind::Spider | LoaderKind::Bird) {
        return crate::sql_dataset::run(&args, &registry, &card);
    }
    if card.loader == LoaderKind::Review {
        return crate::literature_eval::run(&args, &registry, &card);
    }
    if card.loader == LoaderKind::OpenQa {
        return crate::open_qa_eval::run(&args, &registry, &card);
    }
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

    let retriever_kind = if args.retriever.starts_with("bm25") { "sparse" } else { "dense" };
    let context = harness_baselines::MethodContext {
        dataset: card.name.clone(),
        retriever_kind: retriever_kind.into(),
        device: args.device.clone(),
        llm: llm_settings(&args),
        cache_dir: paths::cache_dir(),
        task: None,
    };
    let mut method = harness_baselines::build(&args.method, &context)?;
    let method_start = std::time::Instant::now();
    let rewrites = method.rewrite(&queries)?;
    let method_seconds = method_start.elapsed().as_secs_f64();
    let feedback = method.feedback().map(|f| harness_retrieval::rm3::Rm3Settings {
        fb_docs: f.fb_docs,
        fb_terms: f.fb_terms,
        original_query_weight: f.original_query_weight,
    });

    let defaults = card.bm25.map(|d| (d.k1, d.b)).unwrap_or((0.9, 0.4));
    let params = Bm25Params { k1: args.bm25_k1.unwrap_or(defaults.0), b: args.bm25_b.unwrap_or(defaults.1) };
    let fields: DocFields = args.fields.parse()?;
    let hnsw = HnswParams { m: args.hnsw_m, ef_construction: args.hnsw_ef_construction, ef_search: args.hnsw_ef };
    let spec = RetrieverSpec::parse(&args.retriever, params, fields, hnsw)?;
    let depth = args.depth.unwrap_or(card.depth);
    let retriever_label = spec.label();

    let texts: Vec<(String, String)> = rewrites.iter().map(|r| (r.query_id.clone(), r.text.clone())).collect();
    let query_texts: Vec<String> = texts.iter().map(|(_, t)| t.clone()).collect();
    let retrieved = retrieve(&dataset, &spec, &query_texts, depth, args.threads, &paths::cache_dir(), feedback)?;
    let (index_seconds, built, search_seconds) = (retrieved.index_seconds, retrieved.index_built, retrieved.search_seconds);
    let checksum = retrieved.corpus_sha256.clone();

    let mut run = Run::new();
    for ((qid, _), hits) in texts.iter().zip(retrieved.hits) {
        run.insert(qid.clone(), hits.into_iter().map(|(doc_id, score)| ScoredDoc { doc_id, score: score as f64 }).collect());
    }

    let measure_specs = if args.measures.is_empty() { card.measures.clone() } else { args.measures.clone() };
    // `hit.K,...`: answer containment (open-QA), the rest trec_eval measures.
    let mut measures = Vec::new();
    let mut hit_depths = Vec::new();
    for spec in &measure_specs {
        match spec.strip_prefix("hit.") {
            Some(ks) => {
                for k in ks.split(',') {
                    hit_depths.push(k.trim().parse::<usize>().with_context(|| format!("measure '{spec}': hit.K needs whole numbers"))?);
                }
            }
            None => measures.extend(Measure::parse_list(spec)?),
        }
    }
    // Anserini's regressions score with trec_eval -c: every judged query counts.
    let opts = EvalOptions { average_over_all_qrels: true, ..Default::default() };
    let evaluation = evaluate(&qrels, &run, &measures, &opts);
    let hits = if hit_depths.is_empty() { Vec::new() } else { answer_hits(&dataset, &queries, &run, &hit_depths)? };

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
            .chain(hits.iter().cloned())
            .collect(),
        num_queries: evaluation.num_q,
        wall_seconds: search_seconds,
        source: "measured".into(),
        run_id: run_id.clone(),
    };
    let table = write_cell(&run_dir, &row, &run)?;
    harness_report::write_parquet(&harness_report::per_query_frame(&evaluation)?, &run_dir.join("per_query.parquet"))?;
    write_jsonl(&run_dir.join("rewrites.jsonl"), &method.generations())?;
    let dr_compat = if args.dr_compat { Some(dr_compat_ndcg10(&card, &qrels, &run)) } else { None };
    let meta = serde_json::json!({
        "run_id": run_id,
        "command": std::env::args().collect::<Vec<_>>(),
        "harness_version": env!("CARGO_PKG_VERSION"),
        "dataset": card.name,
        "split": split,
        "corpus_sha256": checksum,
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
            println!("index built in {index_seconds:.2}s");
        }
        if let Some(v) = dr_compat {
            println!("paper's own NDCG@10 (dr-compat, not trec_eval; see ARCHITECTURE.md): {v:.4}");
        }
        println!("run written to {}", run_dir.display());
    }
    Ok(EvalOutcome { row, run_dir })
}

/// Hit@k by answer containment: the share of queries (all of them, as trec_eval -c) with a
/// passage among their top k that holds an answer, with Pyserini's DPR `has_answers` semantics
/// on the passage text (the title is not searched, as in Pyserini's DPR evaluation).
fn answer_hits(dataset: &BeirDataset, queries: &[harness_core::Query], run: &Run, depths: &[usize]) -> Result<Vec<(String, f64)>> {
    use harness_core::answers::{dpr_tokens, has_answer_tokens};
    let answers = dataset.read_answers()?;
    if answers.is_empty() {
        bail!("the dataset's queries carry no answer strings (queries.jsonl metadata.answers): hit.K cannot be measured");
    }
    let passages: std::collections::HashMap<String, Vec<String>> = dataset.read_corpus()?.into_iter().map(|d| (d.id, dpr_tokens(&d.text))).collect();
    let deepest = depths.iter().copied().max().unwrap_or(0);
    let mut first_ranks = Vec::with_capacity(queries.len());
    for q in queries {
        let wanted: Vec<Vec<String>> = answers.get(&q.id).map(|a| a.iter().map(|s| dpr_tokens(s)).collect()).unwrap_or_default();
        let ranked = run.by_query.get(&q.id).map(|docs| harness_core::trec_eval::sorted_like_trec_eval(docs)).unwrap_or_default();
        let rank = if wanted.is_empty() {
            None
        } else {
            ranked.iter().take(deepest).position(|d| passages.get(&d.doc_id).is_some_and(|p| has_answer_tokens(p, &wanted))).map(|i| i + 1)
        };
        first_ranks.push(rank);
    }
    Ok(hit_rates(&first_ranks, depths))
}

/// Writes a cell's TREC run file and its one-row table (csv, parquet, md); returns the table.
pub fn write_cell(run_dir: &std::path::Path, row: &ResultRow, run: &Run) -> Result<polars::prelude::DataFrame> {
    let table = harness_report::results_frame(std::slice::from_ref(row))?;
    harness_core::io::write_run(&run_dir.join("run.trec"), run, &row.run_id)?;
    harness_report::write_all_formats(&table, run_dir, "table")?;
    Ok(table)
}

/// Writes one JSON value per line, atomically; nothing when there are none.
pub fn write_jsonl(path: &std::path::Path, values: &[serde_json::Value]) -> Result<()> {
    if values.is_empty() {
        return Ok(());
    }
    harness_core::io::write_atomically(path, |w| {
        for v in values {
            writeln!(w, "{v}")?;
        }
        Ok(())
    })?;
    Ok(())
}

/// `hit_K` for each depth: the share of questions whose first answer-bearing passage ranks
/// within K (a question without one counts as a miss).
pub fn hit_rates(first_ranks: &[Option<usize>], depths: &[usize]) -> Vec<(String, f64)> {
    let n = first_ranks.len().max(1) as f64;
    depths.iter().map(|&k| (format!("hit_{k}"), first_ranks.iter().filter(|r| r.is_some_and(|r| r <= k)).count() as f64 / n)).collect()
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
