//! Runs one retriever over a dataset's corpus for a list of query texts, timing index
//! building and search separately. Retrievers: `bm25`, `dense[:MODEL]` (exact dot product),
//! `hnsw[:MODEL]` (approximate), MODEL being a folder with model.onnx and tokenizer.json or
//! `minilm` (the workspace's all-MiniLM-L6-v2 int8, the default).
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};
use harness_datasets::beir::BeirDataset;
use harness_retrieval::dense::{passage_embeddings, Encoder, HnswIndex, HnswParams, TextKind};
use harness_retrieval::rm3::{self, Rm3Settings};
use harness_retrieval::{Bm25Index, Bm25Params, DocFields, Document, IndexSettings};

/// Which retriever, with its settings.
#[derive(Debug, Clone)]
pub enum RetrieverSpec {
    Bm25 { params: Bm25Params, fields: DocFields },
    Dense { model: PathBuf, hnsw: Option<HnswParams> },
}

impl RetrieverSpec {
    /// Parses `bm25`, `dense[:MODEL]` or `hnsw[:MODEL]`; `minilm` or no MODEL is
    /// `default_encoder`.
    pub fn parse(s: &str, bm25: Bm25Params, fields: DocFields, hnsw: HnswParams, default_encoder: &std::path::Path) -> Result<Self> {
        let (kind, model) = match s.split_once(':') {
            Some((k, m)) => (k, Some(m)),
            None => (s, None),
        };
        let model_dir = || match model {
            None | Some("minilm") => default_encoder.to_path_buf(),
            Some(path) => PathBuf::from(path),
        };
        Ok(match kind {
            "bm25" if model.is_none() => RetrieverSpec::Bm25 { params: bm25, fields },
            "dense" => RetrieverSpec::Dense { model: model_dir(), hnsw: None },
            "hnsw" => RetrieverSpec::Dense { model: model_dir(), hnsw: Some(hnsw) },
            _ => bail!("unknown retriever '{s}' (available: bm25, dense[:MODEL], hnsw[:MODEL])"),
        })
    }

    /// Short label for tables.
    pub fn label(&self) -> String {
        match self {
            RetrieverSpec::Bm25 { params, fields } => {
                format!("bm25(k1={},b={},{})", params.k1, params.b, serde_json::to_value(fields).unwrap().as_str().unwrap())
            }
            RetrieverSpec::Dense { model, hnsw } => {
                let name = model.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                match hnsw {
                    None => format!("dense-exact({name})"),
                    Some(h) => format!("hnsw({name},M={},efC={},ef={})", h.m, h.ef_construction, h.ef_search),
                }
            }
        }
    }
}

/// What a retrieval pass produced.
pub struct Retrieved {
    /// Per query: (doc id, score), best first.
    pub hits: Vec<Vec<(String, f32)>>,
    /// Seconds to build or load the index (BM25 postings, or passage encoding + HNSW).
    pub index_seconds: f64,
    /// Whether anything was built now (false: all from the cache).
    pub index_built: bool,
    /// Seconds for all queries (for dense: query encoding + search).
    pub search_seconds: f64,
    /// Settings and statistics for meta.json.
    pub details: serde_json::Value,
    /// sha256 of the corpus file (the cache key's basis).
    pub corpus_sha256: String,
}

fn bm25_search(
    index: &Bm25Index,
    queries: &[String],
    depth: usize,
    params: Bm25Params,
    threads: usize,
    feedback: Option<(Rm3Settings, &[String])>,
) -> Result<Vec<Vec<(u32, f32)>>> {
    parallel_map(queries, threads, |part| {
        let mut searcher = index.searcher();
        part.iter()
            .map(|q| match feedback {
                None => Ok(searcher.search(q, depth, params)?),
                Some((settings, texts)) => {
                    let first = searcher.search(q, settings.fb_docs, params)?;
                    let expanded = rm3::expand(index, q, &first, &|o| texts[o as usize].clone(), settings)?;
                    Ok(searcher.search_terms(&expanded, depth, params)?)
                }
            })
            .collect()
    })
}

/// Applies `f` to contiguous parts of `items` on `threads` threads, keeping the order.
fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&[T]) -> Result<Vec<R>> + Sync,
) -> Result<Vec<R>> {
    let threads = threads.max(1).min(items.len().max(1));
    let chunk = items.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items.chunks(chunk).map(|part| scope.spawn(|| f(part))).collect();
        let mut out = Vec::with_capacity(items.len());
        for h in handles {
            out.extend(h.join().expect("worker thread panicked")?);
        }
        Ok(out)
    })
}

/// Where a retrieval pass finds its caches and its ONNX Runtime.
pub struct RetrieveContext<'a> {
    pub cache: &'a std::path::Path,
    pub onnxruntime: &'a std::path::Path,
}

/// Retrieves `depth` documents for each query text; with `feedback` (BM25 only), RM3 expands
/// each query from a first pass and searches again.
pub fn retrieve(
    dataset: &BeirDataset,
    spec: &RetrieverSpec,
    queries: &[String],
    depth: usize,
    threads: usize,
    ctx: &RetrieveContext,
    feedback: Option<Rm3Settings>,
) -> Result<Retrieved> {
    let cache = ctx.cache;
    if feedback.is_some() && !matches!(spec, RetrieverSpec::Bm25 { .. }) {
        bail!("RM3 feedback needs the bm25 retriever (it expands from BM25 term statistics)");
    }
    let checksum = dataset.corpus_checksum()?;
    match spec {
        RetrieverSpec::Bm25 { params, fields } => {
            let settings = IndexSettings { fields: *fields, ..Default::default() };
            let start = Instant::now();
            let mut built = false;
            let index = Bm25Index::open_or_build(cache, &checksum, settings, || {
                built = true;
                let docs = dataset.read_corpus().map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
                let n = docs.len();
                Ok((n, docs.into_iter().map(|d| Ok(Document { id: d.id, title: d.title, text: d.text }))))
            })?;
            let index_seconds = start.elapsed().as_secs_f64();
            // RM3 reads feedback documents as they were indexed (title and text in one field).
            let texts: Vec<String> = match feedback {
                Some(_) => dataset
                    .read_corpus()?
                    .into_iter()
                    .map(|d| if d.title.is_empty() { d.text } else { format!("{} {}", d.title, d.text) })
                    .collect(),
                None => Vec::new(),
            };
            let start = Instant::now();
            let hits = bm25_search(&index, queries, depth, *params, threads, feedback.map(|f| (f, texts.as_slice())))?;
            let search_seconds = start.elapsed().as_secs_f64();
            Ok(Retrieved {
                hits: hits.into_iter().map(|h| h.into_iter().map(|(o, s)| (index.doc_id(o).to_string(), s)).collect()).collect(),
                index_seconds,
                index_built: built,
                search_seconds,
                details: serde_json::json!({
                    "name": "bm25", "k1": params.k1, "b": params.b, "fields": fields, "depth": depth,
                    "rm3": feedback.map(|f| serde_json::json!({"fb_docs": f.fb_docs, "fb_terms": f.fb_terms, "original_query_weight": f.original_query_weight})),
                    "analyzer": "UAX#29 words, English possessive, lowercase, Lucene's 33 stop words, Lucene Porter",
                    "norms": "Lucene SmallFloat byte4 (lossy, as Anserini's default)",
                    "index_dir": index.dir(), "index_docs": index.num_docs(), "index_total_terms": index.total_terms(),
                }),
                corpus_sha256: checksum,
            })
        }
        RetrieverSpec::Dense { model, hnsw } => {
            let docs = dataset.read_corpus()?;
            let passages: Vec<String> = docs
                .iter()
                .map(|d| if d.title.is_empty() { d.text.clone() } else { format!("{} {}", d.title, d.text) })
                .collect();
            let encode_threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
            let mut encoder = Encoder::load_with_runtime(model, encode_threads, ctx.onnxruntime)?;
            let start = Instant::now();
            let embeddings = passage_embeddings(cache, &mut encoder, &checksum, &passages, 32)?;
            let graph = hnsw.map(|p| HnswIndex::open_or_build(&embeddings, p)).transpose()?;
            let index_seconds = start.elapsed().as_secs_f64();

            let start = Instant::now();
            let refs: Vec<&str> = queries.iter().map(String::as_str).collect();
            let query_vectors = encoder.encode_many(&refs, TextKind::Query, 32)?;
            let hits = parallel_map(&query_vectors, threads, |part| {
                Ok(part
                    .iter()
                    .map(|q| match &graph {
                        Some(g) => g.search(q, depth),
                        None => embeddings.search_exact(q, depth),
                    })
                    .collect())
            })?;
            let search_seconds = start.elapsed().as_secs_f64();
            Ok(Retrieved {
                hits: hits.into_iter().map(|h| h.into_iter().map(|(o, s)| (docs[o as usize].id.clone(), s)).collect()).collect(),
                index_seconds,
                index_built: embeddings.encoded_now > 0,
                search_seconds,
                details: serde_json::json!({
                    "name": if hnsw.is_some() { "hnsw" } else { "dense-exact" },
                    "model_dir": model, "model_sha256": encoder.model_sha256(), "encoder": encoder.spec(),
                    "graph_edits": encoder.graph_edits(),
                    "hnsw": hnsw, "depth": depth, "dim": embeddings.dim, "embedding_cache": embeddings.dir,
                    "passages_encoded_now": embeddings.encoded_now, "encode_threads": encode_threads,
                }),
                corpus_sha256: checksum,
            })
        }
    }
}
