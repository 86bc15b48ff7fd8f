//! `harness eval` for open-QA datasets (NQ, TriviaQA, SQuAD) over the DPR Wikipedia passages
//! (`psgs_w100.tsv`, 21M passages, supplied by the user): the passages are streamed twice, once
//! into the BM25 index and once to fetch the texts of the retrieved passages only, so memory stays
//! bounded by the passage ids and the retrieved texts, never the 13 GB of text.
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use harness_core::answers::{dpr_tokens, has_answer_tokens};
use harness_core::{Query, Run, ScoredDoc};
use harness_datasets::registry::resolve_data_file;
use harness_datasets::{Card, Registry};
use harness_report::ResultRow;
use harness_retrieval::{Bm25Index, Bm25Params, DocFields, Document, IndexSettings};
use sha2::{Digest, Sha256};

use crate::eval::{EvalArgs, EvalOutcome};
use crate::paths;

/// Environment variable naming the DPR passages file when not under the dataset's folder.
pub const PASSAGES_ENV: &str = "HARNESS_DPR_PASSAGES";

/// One question with its answer strings.
pub struct Question {
    pub id: String,
    pub text: String,
    pub answers: Vec<String>,
}

fn open_lines(path: &Path) -> Result<Box<dyn BufRead>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(if path.extension().is_some_and(|e| e == "gz") {
        Box::new(std::io::BufReader::with_capacity(1 << 20, flate2::read::MultiGzDecoder::new(file)))
    } else {
        Box::new(std::io::BufReader::with_capacity(1 << 20, file))
    })
}

/// Questions in the DPR/DeepRetrieval layout: `{"question": ..., "answers": [...]}` per line;
/// ids are `q<line number>`.
pub fn read_questions(path: &Path) -> Result<Vec<Question>> {
    #[derive(serde::Deserialize)]
    struct Line {
        question: String,
        answers: Vec<String>,
    }
    let mut out = Vec::new();
    for (i, line) in open_lines(path)?.lines().enumerate() {
        let line = line.with_context(|| format!("{}:{}", path.display(), i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let q: Line = serde_json::from_str(&line).with_context(|| format!("{}:{}: not a {{\"question\", \"answers\"}} line", path.display(), i + 1))?;
        out.push(Question { id: format!("q{}", i + 1), text: q.question, answers: q.answers });
    }
    Ok(out)
}

/// A DPR TSV field: CSV-quoted text (`"..."` with doubled quotes) unquoted.
fn unquote(field: &str) -> String {
    match field.strip_prefix('"').and_then(|f| f.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => field.to_string(),
    }
}

/// Streams `id \t text \t title` rows of a DPR passages file (header line skipped).
pub fn passages(path: &Path) -> Result<impl Iterator<Item = Result<Document>>> {
    let display = path.display().to_string();
    let mut lines = open_lines(path)?.lines().enumerate();
    match lines.next() {
        Some((_, Ok(header))) if header.trim_end() == "id\ttext\ttitle" => {}
        Some((_, Ok(header))) => bail!("{display}:1: expected the DPR header `id<TAB>text<TAB>title`, found {:?}", header.chars().take(60).collect::<String>()),
        Some((_, Err(e))) => bail!("{display}:1: {e}"),
        None => bail!("{display}: empty file"),
    }
    Ok(lines.map(move |(i, line)| {
        let line = line.with_context(|| format!("{display}:{}", i + 1))?;
        let mut parts = line.splitn(3, '\t');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(id), Some(text), Some(title)) if !id.is_empty() => Ok(Document { id: id.to_string(), title: unquote(title), text: unquote(text) }),
            _ => bail!("{display}:{}: expected 3 tab-separated fields (id, text, title)", i + 1),
        }
    }))
}

/// A cheap identity of a large file for the index cache key: its size and the sha256 of its
/// first and last MiB (hashing 13 GB would take minutes on every run).
fn fingerprint(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let size = file.metadata()?.len();
    let mut h = Sha256::new();
    h.update(size.to_le_bytes());
    let mut buf = vec![0u8; 1 << 20];
    let n = file.read(&mut buf)?;
    h.update(&buf[..n]);
    if size > (2 << 20) {
        file.seek(SeekFrom::End(-(1 << 20)))?;
        file.read_exact(&mut buf)?;
        h.update(&buf);
    }
    Ok(format!("dpr-{}", hex::encode(&h.finalize()[..12])))
}

fn locate(card: &Card, registry: &Registry, args: &EvalArgs) -> Result<(PathBuf, PathBuf)> {
    let dir = registry.dataset_dir(card);
    let questions_name = card.files.get("questions").with_context(|| format!("card '{}' names no questions file", card.name))?;
    let questions = resolve_data_file(&dir, questions_name).with_context(|| format!("questions of '{}' missing: {}", card.name, dir.join(questions_name).display()))?;
    let passages = match (&args.passages, std::env::var_os(PASSAGES_ENV)) {
        (Some(p), _) => p.clone(),
        (None, Some(p)) => PathBuf::from(p),
        (None, None) => card
            .files
            .get("passages")
            .and_then(|name| resolve_data_file(&dir, name))
            .with_context(|| format!("dataset '{}' needs the DPR Wikipedia passages (psgs_w100.tsv, 13 GB): pass --passages FILE, set {PASSAGES_ENV}, or place the file in {}", card.name, dir.display()))?,
    };
    if !passages.is_file() {
        bail!("passages file {} does not exist", passages.display());
    }
    Ok((questions, passages))
}

pub fn run(args: &EvalArgs, registry: &Registry, card: &Card) -> Result<EvalOutcome> {
    let (questions_path, passages_path) = locate(card, registry, args)?;
    let questions = read_questions(&questions_path)?;
    let context = harness_baselines::MethodContext {
        dataset: card.name.clone(),
        retriever_kind: "sparse".into(),
        device: args.device.clone(),
        llm: crate::eval::llm_settings(args),
        cache_dir: paths::cache_dir(),
        task: Some(std::sync::Arc::new(|q: &Query| harness_baselines::Task::Evidence { corpus: "Wikipedia".into(), question: q.text.clone() })),
    };
    let mut method = harness_baselines::build(&args.method, &context)?;
    let queries: Vec<Query> = questions.iter().map(|q| Query { id: q.id.clone(), text: q.text.clone() }).collect();
    let method_start = std::time::Instant::now();
    let rewrites = method.rewrite(&queries)?;
    let method_seconds = method_start.elapsed().as_secs_f64();

    let defaults = card.bm25.map(|d| (d.k1, d.b)).unwrap_or((0.9, 0.4));
    let params = Bm25Params { k1: args.bm25_k1.unwrap_or(defaults.0), b: args.bm25_b.unwrap_or(defaults.1) };
    let index_start = std::time::Instant::now();
    let key = fingerprint(&passages_path)?;
    let index = Bm25Index::open_or_build(&paths::cache_dir(), &key, IndexSettings { fields: DocFields::Flat, ..Default::default() }, || {
        let docs = passages(&passages_path).map_err(|e| Box::<dyn std::error::Error + Send + Sync>::from(format!("{e:#}")))?;
        Ok((0, docs.map(|d| d.map_err(|e| Box::<dyn std::error::Error + Send + Sync>::from(format!("{e:#}"))))))
    })?;
    let index_seconds = index_start.elapsed().as_secs_f64();

    let depth = args.depth.unwrap_or(card.depth);
    let search_start = std::time::Instant::now();
    let mut searcher = index.searcher();
    let mut run = Run::new();
    let mut needed = HashSet::new();
    for r in &rewrites {
        let hits = searcher.search(&r.text, depth, params)?;
        let docs: Vec<ScoredDoc> = hits.iter().map(|(ord, score)| ScoredDoc { doc_id: index.doc_id(*ord).to_string(), score: *score as f64 }).collect();
        needed.extend(docs.iter().map(|d| d.doc_id.clone()));
        run.insert(r.query_id.clone(), docs);
    }
    let search_seconds = search_start.elapsed().as_secs_f64();

    // Second pass: the texts of retrieved passages only.
    let mut texts: HashMap<String, Vec<String>> = HashMap::with_capacity(needed.len());
    for doc in passages(&passages_path)? {
        let doc = doc?;
        if needed.contains(&doc.id) {
            texts.insert(doc.id.clone(), dpr_tokens(&doc.text));
        }
    }
    let mut depths: Vec<usize> = Vec::new();
    let specs = if args.measures.is_empty() { card.measures.clone() } else { args.measures.clone() };
    for spec in &specs {
        let ks = spec.strip_prefix("hit.").with_context(|| format!("measure '{spec}': open-QA datasets report hit.K only"))?;
        for k in ks.split(',') {
            depths.push(k.trim().parse().with_context(|| format!("measure '{spec}': hit.K needs whole numbers"))?);
        }
    }
    let mut first_ranks = Vec::with_capacity(questions.len());
    for q in &questions {
        let wanted: Vec<Vec<String>> = q.answers.iter().map(|a| dpr_tokens(a)).collect();
        let ranked = run.by_query.get(&q.id).map(|d| harness_core::trec_eval::sorted_like_trec_eval(d)).unwrap_or_default();
        let rank = ranked.iter().position(|d| texts.get(&d.doc_id).is_some_and(|t| has_answer_tokens(t, &wanted))).map(|i| i + 1);
        first_ranks.push(rank);
    }
    let metrics = crate::eval::hit_rates(&first_ranks, &depths);

    let run_id = paths::new_run_id(&format!("{}-dpr-bm25-{}", card.name, args.method));
    let run_dir = args.out.clone().unwrap_or_else(|| paths::runs_dir().join(&run_id));
    std::fs::create_dir_all(&run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
    let row = ResultRow {
        dataset: card.name.clone(),
        split: "test".into(),
        retriever: format!("bm25(k1={},b={},flat) over {}", params.k1, params.b, passages_path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()),
        method: method.name(),
        metrics,
        num_queries: questions.len(),
        wall_seconds: search_seconds,
        source: "measured".into(),
        run_id: run_id.clone(),
    };
    let table = crate::eval::write_cell(&run_dir, &row, &run)?;
    crate::eval::write_jsonl(&run_dir.join("rewrites.jsonl"), &method.generations())?;
    let meta = serde_json::json!({
        "run_id": run_id,
        "command": std::env::args().collect::<Vec<_>>(),
        "dataset": card.name,
        "questions": questions_path,
        "passages": passages_path,
        "passages_fingerprint": key,
        "passages_indexed": index.num_docs(),
        "hit": "first retrieved passage whose text (title not searched) contains an answer, Pyserini DPR has_answers semantics; all questions averaged",
        "method": method.name(),
        "method_report": method.report(),
        "method_seconds": method_seconds,
        "depth": depth,
        "timings": {"index_seconds": index_seconds, "search_seconds": search_seconds},
        "created": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
    });
    let meta_text = serde_json::to_string_pretty(&meta)?;
    harness_core::io::write_atomically(&run_dir.join("meta.json"), |w| w.write_all(meta_text.as_bytes()))?;
    if !args.quiet {
        println!("{}", harness_report::display(&table));
        println!("run written to {}", run_dir.display());
    }
    Ok(EvalOutcome { row, run_dir })
}
