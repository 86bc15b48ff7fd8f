//! `harness eval` for literature-search datasets: review tasks → a query method → an engine
//! (the offline record index, live PubMed, live ClinicalTrials.gov) → Recall@K per review,
//! averaged over reviews as the paper does (a failed search counts as recall 0).
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use harness_core::trec_eval::evaluate;
use harness_core::{EvalOptions, Measure, Qrels, Query, Run, ScoredDoc};
use harness_datasets::{Card, Registry};
use harness_literature::tasks::{load_offline_reviews, load_paper_jsonl, TargetKind};
use harness_literature::{ctgov::CtGov, offline::OfflineEngine, pubmed::PubMed, Engine, ReviewTask};
use harness_report::ResultRow;

use crate::eval::{EvalArgs, EvalOutcome};
use crate::paths;

/// The text of the `original` method: the review's own words (PICO values joined by spaces,
/// our choice: the paper does not say how it sent the PICO as an original query).
pub fn original_text(task: &ReviewTask) -> String {
    match &task.pico {
        Some(p) => [&p.p, &p.i, &p.c, &p.o].iter().map(|s| s.trim()).filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" "),
        None => task.topic.clone(),
    }
}

/// The engine's name as prompts say it.
pub fn engine_word(dataset: &str, engine: &str) -> &'static str {
    if dataset == "ctgov" || engine == "ctgov" { "ClinicalTrials.gov" } else { "PubMed" }
}

/// The prompt task of a review: its PICO, or its topic when it has none.
pub fn prompt_task(t: &ReviewTask, engine: &str) -> harness_baselines::Task {
    let (p, i, c, o, topic) = match &t.pico {
        Some(p) => (p.p.clone(), p.i.clone(), p.c.clone(), p.o.clone(), None),
        None => (String::new(), String::new(), String::new(), String::new(), Some(t.topic.clone())),
    };
    harness_baselines::Task::Literature { engine: engine.into(), p, i, c, o, topic }
}

/// Review tasks of `card`: `--tasks FILE` (the paper's JSONL) or the vendored offline set.
pub fn load_tasks(args: &EvalArgs, registry: &Registry, card: &Card) -> Result<Vec<ReviewTask>> {
    if let Some(file) = &args.tasks {
        let kind = if card.name == "ctgov" { TargetKind::Trials } else { TargetKind::Publications };
        return Ok(load_paper_jsonl(file, kind)?);
    }
    let Some(reviews) = card.files.get("reviews") else {
        bail!(
            "dataset '{}' ships no review tasks: pass the paper's JSONL with --tasks FILE (rows with pico, {}, pub_date); the offline stand-in is the `literature` dataset",
            card.name,
            if card.name == "ctgov" { "trial_nctids" } else { "publication_pmids" },
        );
    };
    let dir = registry.require_offline(card)?;
    Ok(load_offline_reviews(&dir.join(reviews))?)
}

/// The engine `--engine` names (`auto`: the card's own).
pub fn open_engine(args: &EvalArgs, registry: &Registry, card: &Card) -> Result<(Box<dyn Engine>, serde_json::Value)> {
    let engine = match args.engine.as_str() {
        "auto" => match card.name.as_str() {
            "pubmed" => "pubmed",
            "ctgov" => "ctgov",
            _ => "offline",
        },
        other => other,
    };
    let cache = paths::cache_dir();
    Ok(match engine {
        "offline" => {
            let records = card.files.get("records").with_context(|| format!("dataset '{}' has no offline records; use --engine pubmed or ctgov", card.name))?;
            let dir = registry.require_offline(card)?;
            let e = OfflineEngine::open_or_build(&dir.join(records), &cache)?;
            let details = serde_json::json!({"engine": "offline", "records": e.num_records(), "index": e.dir, "index_built_now": e.built, "index_seconds": e.build_seconds});
            (Box::new(e), details)
        }
        "pubmed" => {
            let e = PubMed::from_env(Some(cache.join("pubmed")));
            // The key's presence is recorded, never its value.
            let details = serde_json::json!({"engine": e.name(), "api_key": std::env::var(harness_literature::pubmed::API_KEY_ENV).is_ok()});
            (Box::new(e), details)
        }
        "ctgov" => {
            let e = CtGov::from_env(Some(cache.join("ctgov")));
            let details = serde_json::json!({"engine": e.name()});
            (Box::new(e), details)
        }
        other => bail!("unknown engine '{other}' (offline, pubmed, ctgov)"),
    })
}

pub fn run(args: &EvalArgs, registry: &Registry, card: &Card) -> Result<EvalOutcome> {
    let tasks = load_tasks(args, registry, card)?;
    let (mut engine, engine_details) = open_engine(args, registry, card)?;
    let engine_label = if args.engine == "auto" { engine_details["engine"].as_str().unwrap_or("auto").to_string() } else { args.engine.clone() };
    let engine_word = engine_word(&card.name, &args.engine);

    let by_id: std::collections::HashMap<String, ReviewTask> = tasks.iter().map(|t| (t.id.clone(), t.clone())).collect();
    let by_id = Arc::new(by_id);
    let lookup = Arc::clone(&by_id);
    let engine_name = engine_word.to_string();
    let context = harness_baselines::MethodContext {
        dataset: card.name.clone(),
        retriever_kind: "sparse".into(),
        device: args.device.clone(),
        llm: crate::eval::llm_settings(args),
        cache_dir: paths::cache_dir(),
        task: Some(Arc::new(move |q: &Query| prompt_task(&lookup[&q.id], &engine_name))),
    };
    let mut method = harness_baselines::build(&args.method, &context)?;
    let queries: Vec<Query> = tasks.iter().map(|t| Query { id: t.id.clone(), text: original_text(t) }).collect();
    let method_start = std::time::Instant::now();
    let rewrites = method.rewrite(&queries)?;
    let method_seconds = method_start.elapsed().as_secs_f64();

    let depth = args.depth.unwrap_or(card.depth);
    let mut run = Run::new();
    let mut qrels = Qrels::new();
    let mut outcomes = Vec::new();
    let (mut query_errors, mut engine_errors) = (0usize, 0usize);
    let search_start = std::time::Instant::now();
    let bar = indicatif::ProgressBar::new(rewrites.len() as u64)
        .with_style(indicatif::ProgressStyle::with_template("searching {bar:40} {pos}/{len} reviews [{elapsed_precise}]").expect("valid template"));
    for rewrite in &rewrites {
        let task = &by_id[&rewrite.query_id];
        for target in &task.targets {
            qrels.insert(&task.id, target, 1);
        }
        let (found, outcome) = match engine.search(&rewrite.text, task, depth) {
            Ok(ids) => {
                let n = ids.len();
                (ids, format!("ok: {n} records"))
            }
            Err(e) if e.is_query_error() => {
                query_errors += 1;
                (Vec::new(), format!("query error: {e}"))
            }
            Err(e) => {
                engine_errors += 1;
                bar.println(format!("warning: review {}: {e}", task.id));
                (Vec::new(), format!("engine error: {e}"))
            }
        };
        let n = found.len();
        // Engine order as descending scores, so trec_eval keeps it.
        run.insert(task.id.clone(), found.into_iter().enumerate().map(|(rank, doc_id)| ScoredDoc { doc_id, score: (n - rank) as f64 }).collect());
        outcomes.push(serde_json::json!({"review": task.id, "query": rewrite.text, "outcome": outcome, "targets": task.targets.len()}));
        bar.inc(1);
    }
    bar.finish_and_clear();
    let search_seconds = search_start.elapsed().as_secs_f64();

    let measure_specs = if args.measures.is_empty() { card.measures.clone() } else { args.measures.clone() };
    let mut measures = Vec::new();
    for spec in &measure_specs {
        measures.extend(Measure::parse_list(spec)?);
    }
    // Every review counts (trec_eval -c), as the paper averages over all test items.
    let evaluation = evaluate(&qrels, &run, &measures, &EvalOptions { average_over_all_qrels: true, ..Default::default() });

    let split = "reviews".to_string();
    let run_id = paths::new_run_id(&format!("{}-{engine_label}-{}", card.name, args.method));
    let run_dir: PathBuf = args.out.clone().unwrap_or_else(|| paths::runs_dir().join(&run_id));
    std::fs::create_dir_all(&run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
    let mut seen = Vec::new();
    for m in &measures {
        if !seen.contains(m) {
            seen.push(*m);
        }
    }
    let row = ResultRow {
        dataset: card.name.clone(),
        split: split.clone(),
        retriever: engine_label.clone(),
        method: method.name(),
        metrics: seen.into_iter().filter_map(|m| evaluation.summary_of(m).map(|v| (m.name(), v))).collect(),
        num_queries: evaluation.num_q,
        wall_seconds: search_seconds,
        source: "measured".into(),
        run_id: run_id.clone(),
    };
    let table = crate::eval::write_cell(&run_dir, &row, &run)?;
    harness_report::write_parquet(&harness_report::per_query_frame(&evaluation)?, &run_dir.join("per_query.parquet"))?;
    crate::eval::write_jsonl(&run_dir.join("searches.jsonl"), &outcomes)?;
    crate::eval::write_jsonl(&run_dir.join("rewrites.jsonl"), &method.generations())?;
    let meta = serde_json::json!({
        "run_id": run_id,
        "command": std::env::args().collect::<Vec<_>>(),
        "harness_version": env!("CARGO_PKG_VERSION"),
        "dataset": card.name,
        "tasks": args.tasks.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "vendored reviews".into()),
        "reviews": tasks.len(),
        "engine": engine_details,
        "depth": depth,
        "method": method.name(),
        "method_report": method.report(),
        "method_seconds": method_seconds,
        "measures": evaluation.measures.iter().map(|m| m.name()).collect::<Vec<_>>(),
        "recall": "per review |top-K ∩ included| / |included|, mean over all reviews (trec_eval recall.K with -c)",
        "query_errors": query_errors,
        "engine_errors": engine_errors,
        "timings": {"search_seconds": search_seconds},
        "created": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
    });
    let meta_text = serde_json::to_string_pretty(&meta)?;
    harness_core::io::write_atomically(&run_dir.join("meta.json"), |w| w.write_all(meta_text.as_bytes()))?;
    if !args.quiet {
        println!("{}", harness_report::display(&table));
        println!("{} reviews; {query_errors} unusable queries, {engine_errors} engine errors (each counts as recall 0)", tasks.len());
        println!("run written to {}", run_dir.display());
    }
    Ok(EvalOutcome { row, run_dir })
}
