//! `harness eval` for open-QA datasets (NQ, TriviaQA, SQuAD) over the DPR Wikipedia passages
//! (`psgs_w100.tsv`, 21M passages, supplied by the user): the passages are streamed twice, once
//! into the BM25 index and once to fetch the texts of the retrieved passages only, so memory stays
//! bounded by the passage ids and the retrieved texts, never the 13 GB of text.
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use harness_core::answers::dpr_tokens;
use harness_core::{Query, Run, ScoredDoc};
use harness_datasets::registry::resolve_data_file;
use harness_datasets::{Card, Registry};
use harness_report::ResultRow;
use harness_retrieval::{Bm25Index, DocFields, Document, IndexSettings};
use sha2::{Digest, Sha256};

use super::{first_answer_rank, hit_rates};
use super::CellOutcome;
use crate::context::Bench;
use crate::methods;
use crate::run_dir::RunDir;
use crate::spec::CellSpec;

/// The environment variable the CLI reads for the DPR passages file when `--passages` is not
/// given (named here for error messages; this crate never reads the environment).
pub const PASSAGES_ENV: &str = "HARNESS_DPR_PASSAGES";

/// The passages file a command was given (`--passages`), else `$HARNESS_DPR_PASSAGES`.
pub fn passages_or_env(flag: Option<std::path::PathBuf>) -> Option<std::path::PathBuf> {
    flag.or_else(|| std::env::var_os(PASSAGES_ENV).map(std::path::PathBuf::from))
}

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

/// Random access to the passages of an uncompressed DPR TSV file (training looks up the texts of
/// the passages each rollout retrieves): one pass records every passage's byte offset; a text is
/// then one positioned read. A gzipped file cannot be read at an offset and is refused.
pub struct PassageFile {
    path: PathBuf,
    file: std::fs::File,
    offsets: Offsets,
    from_cache: bool,
}

/// Where each passage's line starts. DPR numbers its passages 1..N, so numeric ids index a
/// vector (8 bytes a passage: 170 MB for the 21M-passage Wikipedia, where a map of strings
/// would take gigabytes); any other id scheme falls back to a map.
enum Offsets {
    ByNumber { offsets: Vec<u64>, count: usize },
    ById(HashMap<String, u64>),
}

/// An id slot with no passage in [`Offsets::ByNumber`].
const ABSENT: u64 = u64::MAX;
/// Header of an offsets cache file, then one little-endian u64 per id number.
const OFFSETS_MAGIC: &[u8; 8] = b"DPROFS01";

impl Offsets {
    fn insert(&mut self, id: &[u8], offset: u64) {
        if let Offsets::ByNumber { offsets, count } = self {
            // Sparse numbering (an id far beyond the passages seen) would waste the vector.
            let number = std::str::from_utf8(id).ok().filter(|t| !t.starts_with('0') || *t == "0").and_then(|t| t.parse::<usize>().ok());
            match number {
                Some(n) if n <= 4 * (*count + 1) + (1 << 20) => {
                    if n >= offsets.len() {
                        offsets.resize(n + 1, ABSENT);
                    }
                    if offsets[n] == ABSENT {
                        *count += 1;
                    }
                    offsets[n] = offset;
                    return;
                }
                _ => {
                    let map = offsets.iter().enumerate().filter(|(_, o)| **o != ABSENT).map(|(n, o)| (n.to_string(), *o)).collect();
                    *self = Offsets::ById(map);
                }
            }
        }
        if let Offsets::ById(map) = self {
            map.insert(String::from_utf8_lossy(id).into_owned(), offset);
        }
    }

    fn get(&self, id: &str) -> Option<u64> {
        match self {
            Offsets::ByNumber { offsets, .. } => {
                let n: usize = id.parse().ok().filter(|_| !id.starts_with('0') || id == "0")?;
                offsets.get(n).copied().filter(|o| *o != ABSENT)
            }
            Offsets::ById(map) => map.get(id).copied(),
        }
    }

    fn len(&self) -> usize {
        match self {
            Offsets::ByNumber { count, .. } => *count,
            Offsets::ById(map) => map.len(),
        }
    }
}

impl PassageFile {
    /// Opens `path`, reading it once to find every passage's offset.
    pub fn open(path: &Path) -> Result<PassageFile> {
        Self::refuse_gzip(path)?;
        let offsets = Self::scan(path)?;
        let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        Ok(PassageFile { path: path.to_path_buf(), file, offsets, from_cache: false })
    }

    /// As [`PassageFile::open`], with the offsets of numerically identified passages kept in
    /// `cache_dir` under the file's fingerprint (the key of its BM25 index): the full pass over
    /// a 13 GB file happens once, later runs read 8 bytes a passage.
    pub fn open_cached(path: &Path, cache_dir: &Path) -> Result<PassageFile> {
        Self::refuse_gzip(path)?;
        let cache = cache_dir.join(format!("{}.offsets", fingerprint(path)?));
        let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        if let Some(offsets) = Self::read_cache(&cache) {
            return Ok(PassageFile { path: path.to_path_buf(), file, offsets, from_cache: true });
        }
        let offsets = Self::scan(path)?;
        if let Offsets::ByNumber { offsets: slots, .. } = &offsets {
            // A cache that cannot be written costs the next run a pass over the file, nothing more.
            let _ = harness_core::io::write_atomically(&cache, |w| {
                w.write_all(OFFSETS_MAGIC)?;
                for o in slots {
                    w.write_all(&o.to_le_bytes())?;
                }
                Ok(())
            });
        }
        Ok(PassageFile { path: path.to_path_buf(), file, offsets, from_cache: false })
    }

    /// Whether the offsets came from the cache rather than a pass over the file.
    pub fn from_cache(&self) -> bool {
        self.from_cache
    }

    fn refuse_gzip(path: &Path) -> Result<()> {
        if path.extension().is_some_and(|e| e == "gz") {
            bail!("{}: training looks passages up by offset, which a gzipped file does not allow: decompress it (gunzip -k) and pass the .tsv", path.display());
        }
        Ok(())
    }

    /// A cache file that is not whole (wrong header or length) is ignored and rewritten.
    fn read_cache(cache: &Path) -> Option<Offsets> {
        let bytes = std::fs::read(cache).ok()?;
        let body = bytes.strip_prefix(OFFSETS_MAGIC.as_slice())?;
        if body.len() % 8 != 0 {
            return None;
        }
        let offsets: Vec<u64> = body.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))).collect();
        let count = offsets.iter().filter(|o| **o != ABSENT).count();
        Some(Offsets::ByNumber { offsets, count })
    }

    /// One pass: the same header and row checks as the streaming reader, and every offset.
    fn scan(path: &Path) -> Result<Offsets> {
        let mut offsets = Offsets::ByNumber { offsets: Vec::new(), count: 0 };
        let mut reader = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?);
        let mut line = Vec::new();
        let mut offset = 0u64;
        let mut number = 0usize;
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line).with_context(|| format!("{}:{}", path.display(), number + 1))?;
            if n == 0 {
                break;
            }
            number += 1;
            if number == 1 {
                if line.trim_ascii_end() != b"id\ttext\ttitle" {
                    bail!("{}:1: expected the DPR header `id<TAB>text<TAB>title`", path.display());
                }
            } else if !line.trim_ascii().is_empty() {
                let id = line.split(|b| *b == b'\t').next().filter(|id| !id.is_empty()).with_context(|| format!("{}:{number}: no passage id", path.display()))?;
                offsets.insert(id, offset);
            }
            offset += n as u64;
        }
        Ok(offsets)
    }

    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.offsets.len() == 0
    }

    /// The text of passage `id` (title not included, as answers are looked for in the text).
    pub fn text(&self, id: &str) -> Result<Option<String>> {
        use std::os::unix::fs::FileExt;
        let Some(offset) = self.offsets.get(id) else { return Ok(None) };
        let mut line = Vec::new();
        let mut buf = vec![0u8; 4096];
        loop {
            let n = self.file.read_at(&mut buf, offset + line.len() as u64).with_context(|| format!("reading {}", self.path.display()))?;
            match buf[..n].iter().position(|b| *b == b'\n') {
                Some(end) => {
                    line.extend_from_slice(&buf[..end]);
                    break;
                }
                None if n == 0 => break,
                None => line.extend_from_slice(&buf[..n]),
            }
        }
        let line = String::from_utf8_lossy(&line);
        let mut parts = line.trim_end_matches('\r').splitn(3, '\t');
        match (parts.next(), parts.next()) {
            (Some(_), Some(text)) => Ok(Some(unquote(text))),
            _ => bail!("{}: the line of passage {id} changed since it was indexed", self.path.display()),
        }
    }
}

/// The BM25 index of a DPR passages file, built once into the cache (keyed by the file's
/// fingerprint), with that key.
pub fn passage_index(bench: &Bench, passages_path: &Path) -> Result<(Bm25Index, String)> {
    let key = fingerprint(passages_path)?;
    let index = Bm25Index::open_or_build(&bench.workspace.cache, &key, IndexSettings { fields: DocFields::Flat, ..Default::default() }, || {
        let docs = passages(passages_path).map_err(|e| Box::<dyn std::error::Error + Send + Sync>::from(format!("{e:#}")))?;
        Ok((0, docs.map(|d| d.map_err(|e| Box::<dyn std::error::Error + Send + Sync>::from(format!("{e:#}"))))))
    })?;
    Ok((index, key))
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

pub(crate) fn locate(card: &Card, registry: &Registry, spec: &CellSpec) -> Result<(PathBuf, PathBuf)> {
    let dir = registry.dataset_dir(card);
    let questions_name = card.files.get("questions").with_context(|| format!("card '{}' names no questions file", card.name))?;
    let questions = resolve_data_file(&dir, questions_name).with_context(|| format!("questions of '{}' missing: {}", card.name, dir.join(questions_name).display()))?;
    let passages = match &spec.passages {
        Some(p) => p.clone(),
        None => card
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

pub fn run(bench: &Bench, spec: &CellSpec, card: &Card) -> Result<CellOutcome> {
    let (questions_path, passages_path) = locate(card, &bench.registry, spec)?;
    let questions = spec.limited(read_questions(&questions_path)?);
    let mut method = methods::build(bench, spec, methods::query_task(card, "sparse")?)?;
    let queries: Vec<Query> = questions.iter().map(|q| Query { id: q.id.clone(), text: q.text.clone() }).collect();
    let method_start = std::time::Instant::now();
    let rewrites = method.rewrite(&queries)?;
    let method_seconds = method_start.elapsed().as_secs_f64();

    let params = super::beir::bm25_params(spec, card)?;
    let index_start = std::time::Instant::now();
    let (index, key) = passage_index(bench, &passages_path)?;
    let index_seconds = index_start.elapsed().as_secs_f64();

    let depth = spec.depth.unwrap_or(card.depth);
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
    for m in if spec.measures.is_empty() { &card.measures } else { &spec.measures } {
        let ks = m.strip_prefix("hit.").with_context(|| format!("measure '{m}': open-QA datasets report hit.K only"))?;
        for k in ks.split(',') {
            depths.push(k.trim().parse().with_context(|| format!("measure '{m}': hit.K needs whole numbers"))?);
        }
    }
    let scoring_start = std::time::Instant::now();
    let first_ranks: Vec<Option<usize>> = questions
        .iter()
        .map(|q| {
            let wanted: Vec<Vec<String>> = q.answers.iter().map(|a| dpr_tokens(a)).collect();
            let ranked = run.by_query.get(&q.id).map(|d| harness_core::trec_eval::sorted_like_trec_eval(d)).unwrap_or_default();
            first_answer_rank(ranked.iter().map(|d| d.doc_id.as_str()), &texts, &wanted)
        })
        .collect();
    let metrics = hit_rates(&first_ranks, &depths);
    let wall = super::Wall { generation: method_seconds, retrieval: search_seconds, scoring: scoring_start.elapsed().as_secs_f64() };

    let dir = RunDir::create(&bench.workspace.runs, &format!("{}-dpr-bm25-{}", card.name, spec.method), spec.out.as_deref(), bench.invocation.overwrite)?;
    let row = ResultRow {
        dataset: card.name.clone(),
        split: "test".into(),
        retriever: format!("bm25(k1={},b={},flat) over {}", params.k1, params.b, passages_path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()),
        method: method.name(),
        metrics,
        num_queries: questions.len(),
        wall_seconds: wall.total(),
        source: "measured".into(),
        run_id: dir.id.clone(),
    };
    let table = dir.write_cell(&row, Some(&run))?;
    dir.write_jsonl("rewrites.jsonl", &method.generations())?;
    dir.write_meta(
        bench,
        serde_json::json!({
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
            "timings": {"wall": wall.json(), "index_seconds": index_seconds, "search_seconds": search_seconds},
        }),
    )?;
    Ok(CellOutcome { row, table, run_dir: dir.path, notes: Vec::new(), scores: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A passage read by offset is the streamed passage's text, quotes undone; ids not in the
    /// file are none; a gzipped file is refused with the way out.
    #[test]
    fn passages_read_by_offset_equal_the_streamed_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("psgs.tsv");
        let long = "word ".repeat(2000);
        std::fs::write(
            &path,
            format!("id\ttext\ttitle\n1\t\"He said \"\"hi\"\".\"\tA\n2\tplain text\tB\n\n3\t\"{long}\"\tC\r\n"),
        )
        .unwrap();
        let file = PassageFile::open(&path).unwrap();
        assert_eq!(file.len(), 3);
        for doc in passages(&path).unwrap().filter_map(|d| d.ok()) {
            assert_eq!(file.text(&doc.id).unwrap().as_deref(), Some(doc.text.as_str()), "passage {}", doc.id);
        }
        assert_eq!(file.text("4").unwrap(), None);
        assert_eq!(file.text("1").unwrap().as_deref(), Some("He said \"hi\"."));
        let gz = dir.path().join("psgs.tsv.gz");
        std::fs::write(&gz, b"").unwrap();
        let err = PassageFile::open(&gz).err().unwrap().to_string();
        assert!(err.contains("gunzip -k"), "{err}");
        std::fs::write(&path, "id\ttitle\n").unwrap();
        assert!(PassageFile::open(&path).err().unwrap().to_string().contains(":1: expected the DPR header"));
    }

    /// Numeric ids: the offsets are cached by the file's fingerprint and read back equal; a
    /// changed file gets a new key; a damaged cache is rebuilt; other ids fall back to a map
    /// and are not cached.
    #[test]
    fn passage_offsets_are_cached_by_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let path = dir.path().join("psgs.tsv");
        std::fs::write(&path, "id\ttext\ttitle\n2\tsecond\tB\n1\tfirst\tA\n7\tseventh\tC\n").unwrap();
        let first = PassageFile::open_cached(&path, &cache).unwrap();
        assert!(!first.from_cache());
        assert!(matches!(first.offsets, Offsets::ByNumber { .. }));
        let again = PassageFile::open_cached(&path, &cache).unwrap();
        assert!(again.from_cache());
        assert_eq!(again.len(), 3);
        for (id, text) in [("1", Some("first")), ("2", Some("second")), ("7", Some("seventh")), ("3", None), ("8", None), ("07", None), ("x", None)] {
            assert_eq!(again.text(id).unwrap().as_deref(), text, "passage {id}");
        }
        let cached: Vec<_> = std::fs::read_dir(&cache).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "offsets")).collect();
        assert_eq!(cached.len(), 1, "{cached:?}");
        std::fs::write(&cached[0], b"DPROFS01\x01\x02").unwrap();
        let rebuilt = PassageFile::open_cached(&path, &cache).unwrap();
        assert!(!rebuilt.from_cache(), "a damaged cache is not trusted");
        assert_eq!(rebuilt.text("7").unwrap().as_deref(), Some("seventh"));
        assert!(PassageFile::open_cached(&path, &cache).unwrap().from_cache());

        std::fs::write(&path, "id\ttext\ttitle\n1\tfirst\tA\nwiki:9\tnamed\tD\n").unwrap();
        let named = PassageFile::open_cached(&path, &cache).unwrap();
        assert!(!named.from_cache(), "the changed file has another fingerprint");
        assert!(matches!(named.offsets, Offsets::ById(_)));
        assert_eq!(named.text("wiki:9").unwrap().as_deref(), Some("named"));
        assert_eq!(named.text("1").unwrap().as_deref(), Some("first"));
        assert!(!PassageFile::open_cached(&path, &cache).unwrap().from_cache(), "named ids are not cached");
    }
}
