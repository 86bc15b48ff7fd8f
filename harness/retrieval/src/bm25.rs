//! BM25 as Anserini runs it (Lucene's `BM25Similarity`), over tantivy postings.
//!
//! Lucene details reproduced on purpose, because they move nDCG in the third decimal:
//! * document lengths are stored in one byte with `SmallFloat.intToByte4` and decoded with
//!   `byte4ToInt` (lossy for lengths above 24), `avgdl = sumTotalTermFreq / docCount`;
//! * `idf = ln(1 + (N - df + 0.5) / (df + 0.5))`, term score
//!   `w - w / (1 + tf * 1/(k1 * (1 - b + b * len / avgdl)))` with `w = boost * idf`, in f32;
//! * a query is a bag of words: each distinct analysed term once, boosted by its count;
//!   clause scores summed in f64 and rounded to f32;
//! * ties are ranked by internal document order (corpus order here).
//!
//! tantivy stores the postings (the index proper); k1 and b are applied at query time, so one
//! index serves every setting.
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tantivy::postings::Postings;
use tantivy::schema::{Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST};
use tantivy::{DocSet, Index, IndexReader, TantivyDocument, Term, TERMINATED};

use crate::analysis::{AnalyzerConfig, EnglishAnalyzer, TantivyEnglish};
use crate::error::{io_err, Result, RetrievalError};

const TOKENIZER: &str = "dr_english";
/// Bumped whenever the on-disk layout or the analysis changes, so old caches are not reused.
const FORMAT_VERSION: u32 = 1;

/// BM25 parameters.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Bm25Params {
    /// Term-frequency saturation.
    pub k1: f32,
    /// Length normalisation.
    pub b: f32,
}

impl Bm25Params {
    /// Lucene's domain (BM25Similarity refuses anything else): k1 finite and >= 0, b in [0, 1].
    pub fn check(&self) -> std::result::Result<(), String> {
        if !(self.k1.is_finite() && self.k1 >= 0.0) {
            return Err(format!("BM25 k1 = {}: k1 must be a finite number >= 0", self.k1));
        }
        if !(self.b.is_finite() && (0.0..=1.0).contains(&self.b)) {
            return Err(format!("BM25 b = {}: b must be between 0 and 1", self.b));
        }
        Ok(())
    }
}

impl Default for Bm25Params {
    /// Anserini's defaults.
    fn default() -> Self {
        Bm25Params { k1: 0.9, b: 0.4 }
    }
}

/// How title and text are indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DocFields {
    /// One field holding `title + " " + text` (what DeepRetrieval and Pyserini "flat" do).
    Flat,
    /// Title and text as separate fields, scored separately and summed with weight 1 each
    /// (Pyserini "multifield": `--fields contents=1.0 title=1.0`).
    Multifield,
}

impl std::str::FromStr for DocFields {
    type Err = RetrievalError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "flat" => Ok(DocFields::Flat),
            "multifield" => Ok(DocFields::Multifield),
            _ => Err(RetrievalError::Invalid(format!("unknown field layout '{s}' (flat or multifield)"))),
        }
    }
}

/// What determines an index's content (besides the corpus).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct IndexSettings {
    /// Analysis applied to documents and queries.
    pub analyzer: AnalyzerConfig,
    /// Field layout.
    pub fields: DocFields,
}

impl Default for IndexSettings {
    fn default() -> Self {
        IndexSettings { analyzer: AnalyzerConfig::default(), fields: DocFields::Flat }
    }
}

/// A document to index.
#[derive(Debug, Clone, Default)]
pub struct Document {
    /// Document id (docno).
    pub id: String,
    /// Title, possibly empty.
    pub title: String,
    /// Body text.
    pub text: String,
}

/// Per-field statistics and lossy norms.
struct FieldStats {
    field: Field,
    /// Encoded length (SmallFloat byte4) per document ordinal.
    norms: Vec<u8>,
    /// Documents with at least one term in this field.
    doc_count: u64,
    /// Total number of terms in this field.
    sum_total_term_freq: u64,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct IndexMeta {
    format_version: u32,
    settings: IndexSettings,
    num_docs: usize,
    /// Total terms per field, in field order (flat: [contents]; multifield: [contents, title]).
    total_terms: Vec<u64>,
    corpus_checksum: String,
}

/// A BM25 index: tantivy postings plus the statistics Lucene's scorer needs.
pub struct Bm25Index {
    dir: PathBuf,
    reader: IndexReader,
    analyzer: EnglishAnalyzer,
    settings: IndexSettings,
    doc_ids: Vec<String>,
    fields: Vec<FieldStats>,
    /// For each tantivy segment (in the searcher's order), the ordinal of each of its docs.
    segment_ords: Vec<Vec<u32>>,
}

/// `SmallFloat.longToInt4`: 4 significant bits, the leading one implicit.
fn long_to_int4(i: u64) -> u32 {
    let num_bits = 64 - i.leading_zeros();
    if num_bits < 4 {
        i as u32
    } else {
        let shift = num_bits - 4;
        let mut encoded = (i >> shift) as u32;
        encoded &= 0x07;
        encoded |= (shift + 1) << 3;
        encoded
    }
}

fn int4_to_long(i: u32) -> u64 {
    let bits = (i & 0x07) as u64;
    let shift = (i >> 3) as i32 - 1;
    if shift == -1 {
        bits
    } else {
        (bits | 0x08) << shift
    }
}

/// `255 - longToInt4(Integer.MAX_VALUE)`: lengths below this are stored exactly.
const NUM_FREE_VALUES: u32 = 255 - 231;

/// Lucene's `SmallFloat.intToByte4`, the one-byte document length of `BM25Similarity`.
pub fn int_to_byte4(i: u32) -> u8 {
    if i < NUM_FREE_VALUES {
        i as u8
    } else {
        (NUM_FREE_VALUES + long_to_int4((i - NUM_FREE_VALUES) as u64)) as u8
    }
}

/// Lucene's `SmallFloat.byte4ToInt`.
pub fn byte4_to_int(b: u8) -> u32 {
    let i = b as u32;
    if i < NUM_FREE_VALUES {
        i
    } else {
        (NUM_FREE_VALUES as u64 + int4_to_long(i - NUM_FREE_VALUES)).min(i32::MAX as u64) as u32
    }
}

fn schema_for(settings: &IndexSettings) -> (Schema, Vec<Field>, Field) {
    let mut builder = Schema::builder();
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(TOKENIZER)
            .set_index_option(IndexRecordOption::WithFreqs)
            .set_fieldnorms(false),
    );
    let mut fields = vec![builder.add_text_field("contents", text.clone())];
    if settings.fields == DocFields::Multifield {
        fields.push(builder.add_text_field("title", text));
    }
    let ord = builder.add_u64_field("ord", FAST);
    (builder.build(), fields, ord)
}

/// The cache key of an index: corpus checksum, settings and format version.
pub fn cache_key(corpus_checksum: &str, settings: &IndexSettings) -> String {
    let mut h = Sha256::new();
    h.update(corpus_checksum.as_bytes());
    h.update(serde_json::to_vec(settings).expect("settings serialise"));
    h.update(FORMAT_VERSION.to_le_bytes());
    hex::encode(&h.finalize()[..12])
}

impl Bm25Index {
    /// Opens the index cached under `cache_root` for this corpus and settings, building it
    /// first (into a temporary directory, renamed when complete) if it is missing.
    pub fn open_or_build<I>(
        cache_root: &Path,
        corpus_checksum: &str,
        settings: IndexSettings,
        docs: impl FnOnce() -> std::result::Result<(usize, I), Box<dyn std::error::Error + Send + Sync>>,
    ) -> Result<Self>
    where
        I: Iterator<Item = std::result::Result<Document, Box<dyn std::error::Error + Send + Sync>>>,
    {
        let dir = cache_root.join("bm25").join(cache_key(corpus_checksum, &settings));
        if dir.join("bm25-meta.json").exists() {
            match Self::open(&dir) {
                Ok(index) => return Ok(index),
                Err(RetrievalError::Corrupt { .. }) => {
                    std::fs::remove_dir_all(&dir).map_err(io_err(&dir))?;
                }
                Err(e) => return Err(e),
            }
        }
        let (count, iter) = docs().map_err(|e| RetrievalError::Invalid(e.to_string()))?;
        Self::build(&dir, corpus_checksum, settings, count, iter)
    }

    /// Builds an index of `docs` in `dir` (which must not exist yet).
    pub fn build<I>(dir: &Path, corpus_checksum: &str, settings: IndexSettings, expected: usize, docs: I) -> Result<Self>
    where
        I: Iterator<Item = std::result::Result<Document, Box<dyn std::error::Error + Send + Sync>>>,
    {
        let parent = dir.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        harness_core::io::remove_orphaned_staging(dir);
        let tmp = harness_core::io::staging_dir(dir);
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
        }
        std::fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
        let result = Self::build_into(&tmp, corpus_checksum, settings, expected, docs);
        if let Err(e) = result {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(io_err(dir))?;
        }
        std::fs::rename(&tmp, dir).map_err(io_err(dir))?;
        Self::open(dir)
    }

    fn build_into<I>(dir: &Path, corpus_checksum: &str, settings: IndexSettings, expected: usize, docs: I) -> Result<()>
    where
        I: Iterator<Item = std::result::Result<Document, Box<dyn std::error::Error + Send + Sync>>>,
    {
        let (schema, fields, ord_field) = schema_for(&settings);
        let index = Index::create_in_dir(dir, schema)?;
        let analyzer = EnglishAnalyzer::new(settings.analyzer);
        index.tokenizers().register(TOKENIZER, TantivyEnglish(analyzer.clone()));
        let mut writer = index.writer::<TantivyDocument>(256 * 1024 * 1024)?;
        let progress = indicatif::ProgressBar::new(expected as u64).with_style(
            indicatif::ProgressStyle::with_template("indexing {bar:40} {pos}/{len} docs ({per_sec}, eta {eta})")
                .expect("valid template"),
        );
        let mut doc_ids = Vec::with_capacity(expected);
        let mut lengths: Vec<Vec<u32>> = vec![Vec::with_capacity(expected); fields.len()];
        for (ord, doc) in docs.enumerate() {
            let doc = doc.map_err(|e| RetrievalError::Invalid(e.to_string()))?;
            let texts: Vec<String> = match settings.fields {
                DocFields::Flat if doc.title.is_empty() => vec![doc.text],
                DocFields::Flat => vec![format!("{} {}", doc.title, doc.text)],
                DocFields::Multifield => vec![doc.text, doc.title],
            };
            let mut tdoc = TantivyDocument::default();
            for ((field, text), lens) in fields.iter().zip(&texts).zip(lengths.iter_mut()) {
                let mut n = 0u32;
                analyzer.for_each_term(text, |_, _| n += 1);
                lens.push(n);
                tdoc.add_text(*field, text);
            }
            tdoc.add_u64(ord_field, ord as u64);
            writer.add_document(tdoc)?;
            doc_ids.push(doc.id);
            progress.inc(1);
        }
        writer.commit()?;
        writer.wait_merging_threads()?;
        progress.finish_and_clear();

        let ids_path = dir.join("docids.txt");
        let mut w = std::io::BufWriter::new(std::fs::File::create(&ids_path).map_err(io_err(&ids_path))?);
        for id in &doc_ids {
            if id.contains('\n') {
                return Err(RetrievalError::Invalid(format!("document id {id:?} contains a newline")));
            }
            writeln!(w, "{id}").map_err(io_err(&ids_path))?;
        }
        w.flush().map_err(io_err(&ids_path))?;
        let mut total_terms = Vec::new();
        for (i, lens) in lengths.iter().enumerate() {
            let path = dir.join(format!("lengths.{i}.bin"));
            let bytes: Vec<u8> = lens.iter().flat_map(|l| l.to_le_bytes()).collect();
            std::fs::write(&path, bytes).map_err(io_err(&path))?;
            total_terms.push(lens.iter().map(|&l| l as u64).sum());
        }
        let meta = IndexMeta {
            format_version: FORMAT_VERSION,
            settings,
            num_docs: doc_ids.len(),
            total_terms,
            corpus_checksum: corpus_checksum.to_string(),
        };
        let meta_path = dir.join("bm25-meta.json");
        std::fs::write(&meta_path, serde_json::to_vec_pretty(&meta).expect("meta serialises")).map_err(io_err(&meta_path))?;
        Ok(())
    }

    /// Opens an index built by [`Bm25Index::build`].
    pub fn open(dir: &Path) -> Result<Self> {
        let corrupt = |cause: String| RetrievalError::Corrupt { path: dir.to_path_buf(), cause };
        let meta_path = dir.join("bm25-meta.json");
        let meta: IndexMeta = serde_json::from_slice(&std::fs::read(&meta_path).map_err(io_err(&meta_path))?)
            .map_err(|e| corrupt(format!("bm25-meta.json: {e}")))?;
        if meta.format_version != FORMAT_VERSION {
            return Err(corrupt(format!("format version {} (expected {FORMAT_VERSION})", meta.format_version)));
        }
        let ids_path = dir.join("docids.txt");
        let ids_text = std::fs::read_to_string(&ids_path).map_err(io_err(&ids_path))?;
        let doc_ids: Vec<String> = ids_text.lines().map(str::to_string).collect();
        if doc_ids.len() != meta.num_docs {
            return Err(corrupt(format!("{} doc ids for {} documents", doc_ids.len(), meta.num_docs)));
        }
        let index = Index::open_in_dir(dir).map_err(|e| corrupt(e.to_string()))?;
        let analyzer = EnglishAnalyzer::new(meta.settings.analyzer);
        index.tokenizers().register(TOKENIZER, TantivyEnglish(analyzer.clone()));
        let (_, field_handles, _) = schema_for(&meta.settings);
        let mut fields = Vec::new();
        for (i, field) in field_handles.into_iter().enumerate() {
            let path = dir.join(format!("lengths.{i}.bin"));
            let bytes = std::fs::read(&path).map_err(io_err(&path))?;
            if bytes.len() != 4 * meta.num_docs {
                return Err(corrupt(format!("{} has {} bytes for {} documents", path.display(), bytes.len(), meta.num_docs)));
            }
            let lens: Vec<u32> = bytes.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            let total: u64 = lens.iter().map(|&l| l as u64).sum();
            if meta.total_terms.get(i) != Some(&total) {
                return Err(corrupt(format!("{} does not add up to the recorded term count", path.display())));
            }
            fields.push(FieldStats {
                field,
                norms: lens.iter().map(|&l| int_to_byte4(l)).collect(),
                doc_count: lens.iter().filter(|&&l| l > 0).count() as u64,
                sum_total_term_freq: total,
            });
        }
        let reader = index.reader()?;
        let searcher = reader.searcher();
        let mut segment_ords = Vec::new();
        let mut seen = 0usize;
        for segment in searcher.segment_readers() {
            let col = segment.fast_fields().u64("ord")?;
            let ords: Vec<u32> = (0..segment.max_doc())
                .map(|d| col.first(d).map(|o| o as u32).ok_or_else(|| corrupt("document without ordinal".into())))
                .collect::<Result<_>>()?;
            seen += ords.len();
            segment_ords.push(ords);
        }
        if seen != meta.num_docs {
            return Err(corrupt(format!("{seen} documents in the postings, {} recorded", meta.num_docs)));
        }
        Ok(Bm25Index { dir: dir.to_path_buf(), reader, analyzer, settings: meta.settings, doc_ids, fields, segment_ords })
    }

    /// Where the index lives.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Number of documents.
    pub fn num_docs(&self) -> usize {
        self.doc_ids.len()
    }

    /// Total number of terms per field (flat: one value), Anserini's "total terms" statistic.
    pub fn total_terms(&self) -> Vec<u64> {
        self.fields.iter().map(|f| f.sum_total_term_freq).collect()
    }

    /// The settings the index was built with.
    pub fn settings(&self) -> IndexSettings {
        self.settings
    }

    /// The analyzer queries must go through.
    pub fn analyzer(&self) -> &EnglishAnalyzer {
        &self.analyzer
    }

    /// Document id of an ordinal.
    pub fn doc_id(&self, ord: u32) -> &str {
        &self.doc_ids[ord as usize]
    }

    /// Documents containing `term` (already analysed) in the first field.
    pub fn doc_freq(&self, term: &str) -> Result<u64> {
        let stats = &self.fields[0];
        let term = Term::from_field_text(stats.field, term);
        let searcher = self.reader.searcher();
        let mut df = 0u64;
        for segment in searcher.segment_readers() {
            df += segment.inverted_index(stats.field)?.doc_freq(&term).map_err(tantivy::TantivyError::from)? as u64;
        }
        Ok(df)
    }

    /// A searcher with its own scratch space; make one per thread.
    pub fn searcher(&self) -> Bm25Searcher<'_> {
        Bm25Searcher {
            index: self,
            searcher: self.reader.searcher(),
            scores: vec![0.0; self.doc_ids.len()],
            touched: Vec::new(),
        }
    }
}

/// Runs BM25 queries against a [`Bm25Index`].
pub struct Bm25Searcher<'a> {
    index: &'a Bm25Index,
    searcher: tantivy::Searcher,
    /// Score accumulator indexed by document ordinal (f64, as Lucene's BooleanScorer buckets).
    scores: Vec<f64>,
    /// Ordinals with a non-zero accumulator.
    touched: Vec<u32>,
}

impl Bm25Searcher<'_> {
    /// The top `k` documents for `query` as (ordinal, score), best first; ties in corpus order.
    pub fn search(&mut self, query: &str, k: usize, params: Bm25Params) -> Result<Vec<(u32, f32)>> {
        let mut counts: HashMap<String, f32> = HashMap::new();
        self.index.analyzer.for_each_term(query, |t, _| *counts.entry(t).or_default() += 1.0);
        let mut terms: Vec<(String, f32)> = counts.into_iter().collect();
        terms.sort_by(|a, b| a.0.cmp(&b.0));
        self.search_terms(&terms, k, params)
    }

    /// Scores pre-analysed terms, each with its query weight (Lucene's boost: a repeated term's
    /// count, or an RM3 weight).
    pub fn search_terms(&mut self, terms: &[(String, f32)], k: usize, params: Bm25Params) -> Result<Vec<(u32, f32)>> {
        params.check().map_err(RetrievalError::Invalid)?;
        let Bm25Params { k1, b } = params;
        for stats in &self.index.fields {
            if stats.doc_count == 0 {
                continue;
            }
            let avgdl = (stats.sum_total_term_freq as f64 / stats.doc_count as f64) as f32;
            let mut norm_inverse = [0f32; 256];
            for (i, slot) in norm_inverse.iter_mut().enumerate() {
                *slot = 1.0 / (k1 * ((1.0 - b) + b * byte4_to_int(i as u8) as f32 / avgdl));
            }
            for (term_text, boost) in terms {
                let term = Term::from_field_text(stats.field, term_text);
                let mut df = 0u64;
                for segment in self.searcher.segment_readers() {
                    df += segment.inverted_index(stats.field)?.doc_freq(&term).map_err(tantivy::TantivyError::from)? as u64;
                }
                if df == 0 {
                    continue;
                }
                let n = stats.doc_count as f64;
                let idf = (1.0 + (n - df as f64 + 0.5) / (df as f64 + 0.5)).ln() as f32;
                let weight = *boost * idf;
                for (segment, ords) in self.searcher.segment_readers().iter().zip(&self.index.segment_ords) {
                    let inverted = segment.inverted_index(stats.field)?;
                    let Some(mut postings) = inverted.read_postings(&term, IndexRecordOption::WithFreqs).map_err(tantivy::TantivyError::from)? else {
                        continue;
                    };
                    let mut doc = postings.doc();
                    while doc != TERMINATED {
                        let ord = ords[doc as usize];
                        let tf = postings.term_freq() as f32;
                        let ni = norm_inverse[stats.norms[ord as usize] as usize];
                        let s = weight - weight / (1.0 + tf * ni);
                        let acc = &mut self.scores[ord as usize];
                        if *acc == 0.0 {
                            self.touched.push(ord);
                        }
                        *acc += s as f64;
                        doc = postings.advance();
                    }
                }
            }
        }
        let mut hits: Vec<(u32, f32)> = self.touched.iter().map(|&o| (o, self.scores[o as usize] as f32)).collect();
        for &o in &self.touched {
            self.scores[o as usize] = 0.0;
        }
        self.touched.clear();
        let order = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if hits.len() > k {
            hits.select_nth_unstable_by(k, order);
            hits.truncate(k);
        }
        hits.sort_unstable_by(order);
        Ok(hits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smallfloat_matches_lucene() {
        // Exact below 24; Lucene's byte4ToInt(intToByte4(n)) rounds down to 4 significant bits.
        for n in 0..24 {
            assert_eq!(byte4_to_int(int_to_byte4(n)), n);
        }
        assert_eq!(byte4_to_int(int_to_byte4(24)), 24);
        assert_eq!(byte4_to_int(int_to_byte4(100)), 96);
        assert_eq!(byte4_to_int(int_to_byte4(1000)), 984);
        assert_eq!(int_to_byte4(i32::MAX as u32), 255);
        let mut last = 0;
        for b in 0..=255u8 {
            let v = byte4_to_int(b);
            assert!(b == 0 || v > last, "LENGTH_TABLE must increase");
            last = v;
        }
    }

    fn docs(texts: &[(&str, &str)]) -> Vec<std::result::Result<Document, Box<dyn std::error::Error + Send + Sync>>> {
        texts
            .iter()
            .map(|(id, t)| Ok(Document { id: id.to_string(), title: String::new(), text: t.to_string() }))
            .collect()
    }

    #[test]
    fn scores_equal_hand_computed_lucene_bm25() {
        let dir = tempfile::tempdir().unwrap();
        let d = docs(&[("a", "apple banana"), ("b", "apple apple apple cherry"), ("c", "durian")]);
        let index = Bm25Index::build(&dir.path().join("i"), "x", IndexSettings::default(), 3, d.into_iter()).unwrap();
        assert_eq!(index.total_terms(), vec![7]);
        let mut s = index.searcher();
        let hits = s.search("apple apple", 10, Bm25Params { k1: 0.9, b: 0.4 }).unwrap();
        // Hand computation with Lucene's formula: N=3, df=2, avgdl=7/3, boost 2 (term twice).
        let idf = (1.0f64 + (3.0 - 2.0 + 0.5) / (2.0 + 0.5)).ln();
        let score = |tf: f64, len: f64| {
            let ni = 1.0 / (0.9 * (0.6 + 0.4 * len / (7.0 / 3.0)));
            let w = 2.0 * idf;
            w - w / (1.0 + tf * ni)
        };
        assert_eq!(hits.len(), 2);
        assert_eq!(index.doc_id(hits[0].0), "b");
        assert!((hits[0].1 as f64 - score(3.0, 4.0)).abs() < 1e-5);
        assert!((hits[1].1 as f64 - score(1.0, 2.0)).abs() < 1e-5);
        // k1/b are query-time settings.
        let other = s.search("apple", 10, Bm25Params { k1: 1.2, b: 0.75 }).unwrap();
        assert_ne!(other[0].1, hits[0].1);
    }

    #[test]
    fn reopens_from_cache_and_detects_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let build = || Ok((2usize, docs(&[("a", "x y"), ("b", "y z")]).into_iter()));
        let first = Bm25Index::open_or_build(dir.path(), "sum", IndexSettings::default(), build).unwrap();
        let path = first.dir().to_path_buf();
        drop(first);
        let again = Bm25Index::open_or_build(dir.path(), "sum", IndexSettings::default(), || -> std::result::Result<(usize, std::vec::IntoIter<_>), _> {
            Err("must not rebuild".into())
        })
        .unwrap();
        assert_eq!(again.num_docs(), 2);
        drop(again);
        std::fs::write(path.join("lengths.0.bin"), [0u8; 3]).unwrap();
        assert!(matches!(Bm25Index::open(&path), Err(RetrievalError::Corrupt { .. })));
        let rebuilt = Bm25Index::open_or_build(dir.path(), "sum", IndexSettings::default(), build).unwrap();
        assert_eq!(rebuilt.num_docs(), 2);
    }

    #[test]
    fn multifield_sums_fields() {
        let dir = tempfile::tempdir().unwrap();
        let settings = IndexSettings { fields: DocFields::Multifield, ..Default::default() };
        let d: Vec<std::result::Result<Document, Box<dyn std::error::Error + Send + Sync>>> = vec![
            Ok(Document { id: "a".into(), title: "zebra".into(), text: "lion".into() }),
            Ok(Document { id: "b".into(), title: "".into(), text: "zebra lion".into() }),
        ];
        let index = Bm25Index::build(&dir.path().join("m"), "x", settings, 2, d.into_iter()).unwrap();
        assert_eq!(index.total_terms(), vec![3, 1]);
        let hits = index.searcher().search("zebra", 10, Bm25Params::default()).unwrap();
        assert_eq!(hits.len(), 2);
    }
}
