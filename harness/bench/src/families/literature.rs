//! Literature search: review tasks -> the method (a prompt built per review) -> an engine (the
//! offline record index, live PubMed, live ClinicalTrials.gov) -> Recall@K per review,
//! averaged over reviews as the paper does (a failed search counts as recall 0).
use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use harness_core::trec_eval::evaluate;
use harness_core::{EvalOptions, Measure, Qrels, Query, Run, ScoredDoc};
use harness_datasets::{Card, EngineKind, Registry, ReviewTargets};
use harness_literature::tasks::{load_offline_reviews, load_paper_jsonl, TargetKind};
use harness_literature::{ctgov::CtGov, offline::OfflineEngine, pubmed::PubMed, Engine, ReviewTask};
use harness_report::ResultRow;

use super::distinct;
use super::CellOutcome;
use crate::context::Bench;
use crate::methods;
use crate::run_dir::RunDir;
use crate::spec::CellSpec;

/// The text of the `original` method: the review's own words (PICO values joined by spaces,
/// our choice: the paper does not say how it sent the PICO as an original query).
pub fn original_text(task: &ReviewTask) -> String {
    match &task.pico {
        Some(p) => [&p.p, &p.i, &p.c, &p.o].iter().map(|s| s.trim()).filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" "),
        None => task.topic.clone(),
    }
}

/// The prompt task of a review for an engine whose query language is `language`: its PICO,
/// or its topic when it has none.
pub fn prompt_task(t: &ReviewTask, language: &str) -> harness_baselines::Task {
    let (p, i, c, o, topic) = match &t.pico {
        Some(p) => (p.p.clone(), p.i.clone(), p.c.clone(), p.o.clone(), None),
        None => (String::new(), String::new(), String::new(), String::new(), Some(t.topic.clone())),
    };
    harness_baselines::Task::Literature { engine: language.into(), p, i, c, o, topic }
}

/// The engine a cell asks for (`auto` or none: the card's own).
pub fn engine_kind(requested: Option<&str>, card: &Card) -> Result<EngineKind> {
    match requested {
        None | Some("auto") => card.task.engine.with_context(|| format!("dataset '{}' names no engine in its card", card.name)),
        Some(name) => EngineKind::parse(name).with_context(|| {
            format!("unknown engine '{name}' ({})", EngineKind::ALL.map(EngineKind::name).join(", "))
        }),
    }
}

/// Review tasks of `card`: `tasks` (the paper's JSONL) or the vendored offline set.
/// The review tasks of a run: the paper-format file `tasks` when given (the file is the split),
/// else the card's vendored reviews, narrowed to `split`'s id list when that split has one.
pub fn load_tasks(tasks: Option<&std::path::Path>, registry: &Registry, card: &Card, split: Option<&str>) -> Result<Vec<ReviewTask>> {
    let targets = card.task.targets.unwrap_or(ReviewTargets::Publications);
    if let Some(file) = tasks {
        let kind = match targets {
            ReviewTargets::Trials => TargetKind::Trials,
            ReviewTargets::Publications => TargetKind::Publications,
        };
        return Ok(load_paper_jsonl(file, kind)?);
    }
    let Some(reviews) = card.files.get("reviews") else {
        bail!(
            "dataset '{}' ships no review tasks: pass the paper's JSONL with --tasks FILE (rows with pico, {}, pub_date); the offline stand-in is the `literature` dataset",
            card.name,
            match targets {
                ReviewTargets::Trials => "trial_nctids",
                ReviewTargets::Publications => "publication_pmids",
            },
        );
    };
    let dir = registry.require_offline(card)?;
    let all = load_offline_reviews(&dir.join(reviews))?;
    let Some(split) = split.or(card.default_split.as_deref()) else { return Ok(all) };
    let split_card = card.splits.get(split).with_context(|| {
        format!("dataset '{}' has no split '{split}' (splits: {})", card.name, card.splits.keys().cloned().collect::<Vec<_>>().join(", "))
    })?;
    let Some(ids_file) = &split_card.ids else { return Ok(all) };
    let path = dir.join(ids_file);
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut by_id: HashMap<String, ReviewTask> = all.into_iter().map(|t| (t.id.clone(), t)).collect();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let id = line.trim();
        if id.is_empty() {
            continue;
        }
        match by_id.remove(id) {
            Some(task) => out.push(task),
            None => bail!("{}:{}: review '{id}' is not in {reviews} (or is listed twice)", path.display(), i + 1),
        }
    }
    if out.is_empty() {
        bail!("{}: lists no reviews", path.display());
    }
    Ok(out)
}

/// `measured`, or `failed: ...` when more than `max_fraction` of the engine requests failed
/// (a cell of failed requests would read as recall 0, a number the engine never produced).
pub fn engine_verdict(engine_errors: usize, requests: usize, max_fraction: f64) -> String {
    if requests > 0 && engine_errors as f64 > max_fraction * requests as f64 {
        format!("failed: {engine_errors} of {requests} engine requests failed")
    } else {
        "measured".into()
    }
}

/// The split label of a literature cell: the file's name for a paper-format task file, else
/// the split asked for or the card's default.
pub fn split_label(spec_split: Option<&str>, tasks: Option<&std::path::Path>, card: &Card) -> String {
    match tasks {
        Some(_) => "reviews".into(),
        None => spec_split.or(card.default_split.as_deref()).unwrap_or("reviews").into(),
    }
}

/// Opens the engine of kind `kind`, with facts about it for meta.json.
pub fn open_engine(kind: EngineKind, bench: &Bench, card: &Card) -> Result<(Box<dyn Engine + Send>, serde_json::Value)> {
    let cache = &bench.workspace.cache;
    Ok(match kind {
        EngineKind::Offline => {
            let records = card.files.get("records").with_context(|| format!("dataset '{}' has no offline records; use --engine pubmed or ctgov", card.name))?;
            let dir = bench.registry.require_offline(card)?;
            let e = OfflineEngine::open_or_build(&dir.join(records), cache)?;
            let details = serde_json::json!({"engine": "offline", "records": e.num_records(), "index": e.dir, "index_built_now": e.built, "index_seconds": e.build_seconds});
            (Box::new(e), details)
        }
        EngineKind::Pubmed => {
            // The client reads its key from the environment itself; only whether it has one
            // is recorded, never the key.
            let e = PubMed::from_env(Some(cache.join(kind.name())));
            let details = serde_json::json!({"engine": e.name(), "api_key": bench.invocation.configured.contains(harness_literature::pubmed::API_KEY_ENV)});
            (Box::new(e), details)
        }
        EngineKind::Ctgov => {
            let e = CtGov::from_env(Some(cache.join(kind.name())));
            let details = serde_json::json!({"engine": e.name()});
            (Box::new(e), details)
        }
    })
}

pub fn run(bench: &Bench, spec: &CellSpec, card: &Card) -> Result<CellOutcome> {
    let tasks = spec.limited(load_tasks(spec.tasks.as_deref(), &bench.registry, card, spec.split.as_deref())?);
    let split = split_label(spec.split.as_deref(), spec.tasks.as_deref(), card);
    let kind = engine_kind(spec.engine.as_deref(), card)?;
    let (mut engine, engine_details) = open_engine(kind, bench, card)?;
    let engine_label = match spec.engine.as_deref() {
        None | Some("auto") => engine_details["engine"].as_str().unwrap_or("auto").to_string(),
        Some(name) => name.to_string(),
    };

    let by_id: Arc<HashMap<String, ReviewTask>> = Arc::new(tasks.iter().map(|t| (t.id.clone(), t.clone())).collect());
    let lookup = Arc::clone(&by_id);
    let language = kind.query_language();
    let mut method = methods::build(bench, spec, Arc::new(move |q: &Query| prompt_task(&lookup[&q.id], language)))?;
    let queries: Vec<Query> = tasks.iter().map(|t| Query { id: t.id.clone(), text: original_text(t) }).collect();
    let method_start = std::time::Instant::now();
    let rewrites = method.rewrite(&queries)?;
    let method_seconds = method_start.elapsed().as_secs_f64();

    let depth = spec.depth.unwrap_or(card.depth);
    let mut run = Run::new();
    let mut qrels = Qrels::new();
    let mut outcomes = Vec::new();
    let (mut query_errors, mut engine_errors) = (0usize, 0usize);
    let search_start = std::time::Instant::now();
    let bar = bench.progress.bar("searching reviews", rewrites.len() as u64);
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
                bench.progress.note(&format!("warning: review {}: {e}", task.id));
                (Vec::new(), format!("engine error: {e}"))
            }
        };
        let n = found.len();
        // Engine order as descending scores, so trec_eval keeps it.
        run.insert(task.id.clone(), found.into_iter().enumerate().map(|(rank, doc_id)| ScoredDoc { doc_id, score: (n - rank) as f64 }).collect());
        outcomes.push(serde_json::json!({"review": task.id, "query": rewrite.text, "outcome": outcome, "targets": task.targets.len()}));
        bar.inc(1);
    }
    bar.finish();
    let search_seconds = search_start.elapsed().as_secs_f64();

    let mut measures = Vec::new();
    for m in if spec.measures.is_empty() { &card.measures } else { &spec.measures } {
        measures.extend(Measure::parse_list(m)?);
    }
    // Every review counts (trec_eval -c), as the paper averages over all test items.
    let eval_options = EvalOptions { average_over_all_qrels: true, ..Default::default() };
    let scoring_start = std::time::Instant::now();
    let evaluation = evaluate(&qrels, &run, &measures, &eval_options);
    let wall = super::Wall { generation: method_seconds, retrieval: search_seconds, scoring: scoring_start.elapsed().as_secs_f64() };

    let dir = RunDir::create(&bench.workspace.runs, &format!("{}-{engine_label}-{}", card.name, spec.method), spec.out.as_deref(), bench.invocation.overwrite)?;
    let row = ResultRow {
        dataset: card.name.clone(),
        split: split.clone(),
        retriever: engine_label,
        method: method.name(),
        metrics: distinct(&measures).into_iter().filter_map(|m| evaluation.summary_of(m).map(|v| (m.name(), v))).collect(),
        num_queries: evaluation.num_q,
        wall_seconds: wall.total(),
        source: engine_verdict(engine_errors, rewrites.len(), spec.max_engine_failures),
        run_id: dir.id.clone(),
    };
    let table = dir.write_cell(&row, Some(&run))?;
    dir.write_per_query(&evaluation)?;
    dir.write_jsonl("searches.jsonl", &outcomes)?;
    dir.write_jsonl("rewrites.jsonl", &method.generations())?;
    dir.write_meta(
        bench,
        serde_json::json!({
            "dataset": card.name,
            "tasks": spec.tasks.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "vendored reviews".into()),
            "split": split,
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
            "timings": {"wall": wall.json(), "search_seconds": search_seconds},
        }),
    )?;
    let notes = vec![format!("{} reviews; {query_errors} unusable queries, {engine_errors} engine errors (each counts as recall 0)", tasks.len())];
    let scores = Some(super::QueryScores::new(&qrels, &evaluation, &eval_options, &measures));
    Ok(CellOutcome { row, table, run_dir: dir.path, notes, scores })
}

#[cfg(test)]
mod tests {
    use super::engine_verdict;

    #[test]
    fn a_cell_with_too_many_failed_requests_is_failed_not_measured() {
        assert_eq!(engine_verdict(0, 34, 0.05), "measured");
        assert_eq!(engine_verdict(1, 34, 0.05), "measured");
        assert_eq!(engine_verdict(2, 34, 0.05), "failed: 2 of 34 engine requests failed");
        assert_eq!(engine_verdict(34, 34, 0.05), "failed: 34 of 34 engine requests failed");
        assert_eq!(engine_verdict(1, 34, 0.0), "failed: 1 of 34 engine requests failed");
    }
}
