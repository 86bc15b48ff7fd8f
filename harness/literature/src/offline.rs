//! The offline literature engine: a tantivy index over real PubMed records (title and abstract,
//! with positions for phrases) that evaluates the Boolean queries a policy writes for PubMed.
//!
//! Semantics (PubMed's where the records allow): the query is parsed by
//! [`harness_retrieval::boolean`] (left to right, adjacent terms ANDed); words go through the
//! same English analyzer as the index (lower case, stop words dropped, Porter stems), so a stop
//! word constrains nothing, as in PubMed; `[ti]` searches titles, `[ab]` abstracts, every other
//! tag both; `word*` matches every indexed stem that starts with the stem of `word`; phrases
//! must match consecutively. The matching set is ranked by tantivy's BM25 (PubMed ranks by
//! "Best Match", which is not public) and cut at the depth. Records carry no dates, so a
//! review's `pub_date` is not applied here.
use std::path::{Path, PathBuf};

use harness_retrieval::analysis::TantivyEnglish;
use harness_retrieval::boolean::{self, Field as Where, Node};
use harness_retrieval::EnglishAnalyzer;
use sha2::{Digest, Sha256};
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, Occur, PhraseQuery, Query, RegexQuery, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, STORED, STRING};
use tantivy::{Index, IndexReader, TantivyDocument, Term};

use crate::tasks::{load_records, Record};
use crate::{Engine, EngineError, ReviewTask};

const TOKENIZER: &str = "harness_english_positions";

/// The offline engine over one records file.
pub struct OfflineEngine {
    reader: IndexReader,
    id: Field,
    title: Field,
    abstract_text: Field,
    analyzer: EnglishAnalyzer,
    records: usize,
    /// Where the index lives.
    pub dir: PathBuf,
    /// Whether this call built it (false: reused from the cache).
    pub built: bool,
    /// Seconds spent building (0 when reused).
    pub build_seconds: f64,
}

fn tantivy_error(path: &Path) -> impl Fn(tantivy::TantivyError) -> EngineError + '_ {
    move |e| EngineError::File { path: path.display().to_string(), cause: e.to_string() }
}

fn schema() -> (Schema, Field, Field, Field) {
    let mut builder = Schema::builder();
    let text = TextOptions::default().set_indexing_options(TextFieldIndexing::default().set_tokenizer(TOKENIZER).set_index_option(IndexRecordOption::WithFreqsAndPositions));
    let id = builder.add_text_field("id", STRING | STORED);
    let title = builder.add_text_field("title", text.clone());
    let abstract_text = builder.add_text_field("abstract", text);
    (builder.build(), id, title, abstract_text)
}

impl OfflineEngine {
    /// Opens the index of `records_path` under `cache_dir`, building it first when missing.
    pub fn open_or_build(records_path: &Path, cache_dir: &Path) -> Result<OfflineEngine, EngineError> {
        let bytes = std::fs::read(records_path).map_err(|e| EngineError::File { path: records_path.display().to_string(), cause: e.to_string() })?;
        // v2: schema, analyzer and build settings (one indexing thread); a change must change the key.
        let key = format!("literature-v2-{}", &hex::encode(Sha256::digest(&bytes))[..16]);
        let dir = cache_dir.join(key);
        let started = std::time::Instant::now();
        let built = !dir.join("meta.json").is_file();
        if built {
            let records = load_records(records_path)?;
            build_index(&dir, &records)?;
        }
        let mut engine = Self::open(&dir)?;
        engine.built = built;
        engine.build_seconds = if built { started.elapsed().as_secs_f64() } else { 0.0 };
        Ok(engine)
    }

    /// Opens a built index.
    pub fn open(dir: &Path) -> Result<OfflineEngine, EngineError> {
        let err = tantivy_error(dir);
        let index = Index::open_in_dir(dir).map_err(&err)?;
        index.tokenizers().register(TOKENIZER, TantivyEnglish(EnglishAnalyzer::default()));
        let schema = index.schema();
        let field = |name: &str| schema.get_field(name).map_err(&err);
        let (id, title, abstract_text) = (field("id")?, field("title")?, field("abstract")?);
        let reader = index.reader().map_err(&err)?;
        let records = reader.searcher().num_docs() as usize;
        Ok(OfflineEngine { reader, id, title, abstract_text, analyzer: EnglishAnalyzer::default(), records, dir: dir.to_path_buf(), built: false, build_seconds: 0.0 })
    }

    /// Records in the index.
    pub fn num_records(&self) -> usize {
        self.records
    }

    /// The tantivy query for a Boolean `query` (errors: unparseable, or nothing searchable).
    pub fn compile(&self, query: &str) -> Result<Box<dyn Query>, EngineError> {
        let node = boolean::parse(query).map_err(|e| EngineError::Query(e.to_string()))?;
        self.node_query(&node)?.ok_or_else(|| EngineError::Query("the query has no searchable terms (stop words or punctuation only)".into()))
    }

    fn fields(&self, at: Where) -> Vec<Field> {
        match at {
            Where::Title => vec![self.title],
            Where::Abstract => vec![self.abstract_text],
            Where::All | Where::TitleAbstract => vec![self.title, self.abstract_text],
        }
    }

    fn any_field(&self, at: Where, make: &dyn Fn(Field) -> Result<Box<dyn Query>, EngineError>) -> Result<Box<dyn Query>, EngineError> {
        let mut clauses = Vec::new();
        for f in self.fields(at) {
            clauses.push((Occur::Should, make(f)?));
        }
        Ok(if clauses.len() == 1 { clauses.pop().expect("one clause").1 } else { Box::new(BooleanQuery::new(clauses)) })
    }

    /// `None`: the node constrains nothing (only stop words), so it drops out of its parent.
    fn node_query(&self, node: &Node) -> Result<Option<Box<dyn Query>>, EngineError> {
        Ok(match node {
            Node::Term { text, field, prefix } => {
                let terms = self.analyzer.analyze(text);
                match (terms.len(), prefix) {
                    (0, _) => None,
                    (1, true) => {
                        let pattern = format!("{}.*", regex::escape(&terms[0]));
                        Some(self.any_field(*field, &|f| {
                            RegexQuery::from_pattern(&pattern, f).map(|q| Box::new(q) as Box<dyn Query>).map_err(|e| EngineError::Query(format!("truncation {text}*: {e}")))
                        })?)
                    }
                    (1, false) => Some(self.any_field(*field, &|f| Ok(Box::new(TermQuery::new(Term::from_field_text(f, &terms[0]), IndexRecordOption::WithFreqs)) as Box<dyn Query>))?),
                    // One written word that analyses to several terms (IL-6): a phrase.
                    _ => Some(self.phrase(&terms, *field)?),
                }
            }
            Node::Phrase { words, field } => {
                let terms = self.analyzer.analyze(&words.join(" "));
                match terms.len() {
                    0 => None,
                    1 => Some(self.any_field(*field, &|f| Ok(Box::new(TermQuery::new(Term::from_field_text(f, &terms[0]), IndexRecordOption::WithFreqs)) as Box<dyn Query>))?),
                    _ => Some(self.phrase(&terms, *field)?),
                }
            }
            Node::And(a, b) => match (self.node_query(a)?, self.node_query(b)?) {
                (Some(a), Some(b)) => Some(Box::new(BooleanQuery::new(vec![(Occur::Must, a), (Occur::Must, b)]))),
                (one, other) => one.or(other),
            },
            Node::Or(a, b) => match (self.node_query(a)?, self.node_query(b)?) {
                (Some(a), Some(b)) => Some(Box::new(BooleanQuery::new(vec![(Occur::Should, a), (Occur::Should, b)]))),
                (one, other) => one.or(other),
            },
            Node::Not(a, b) => match (self.node_query(a)?, self.node_query(b)?) {
                (Some(a), Some(b)) => Some(Box::new(BooleanQuery::new(vec![(Occur::Must, a), (Occur::MustNot, b)]))),
                (a, None) => a,
                (None, Some(_)) => return Err(EngineError::Query("NOT with nothing searchable on its left".into())),
            },
        })
    }

    fn phrase(&self, terms: &[String], at: Where) -> Result<Box<dyn Query>, EngineError> {
        self.any_field(at, &|f| Ok(Box::new(PhraseQuery::new(terms.iter().map(|t| Term::from_field_text(f, t)).collect())) as Box<dyn Query>))
    }
}

fn build_index(dir: &Path, records: &[Record]) -> Result<(), EngineError> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    let io = |p: &Path, e: std::io::Error| EngineError::File { path: p.display().to_string(), cause: e.to_string() };
    std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
    // Built beside and renamed into place: an interrupted build never looks finished.
    harness_core::io::remove_orphaned_staging(dir);
    let staging = harness_core::io::staging_dir(dir);
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(|e| io(&staging, e))?;
    }
    std::fs::create_dir_all(&staging).map_err(|e| io(&staging, e))?;
    let err = tantivy_error(&staging);
    let (schema, id, title, abstract_text) = schema();
    let index = Index::create_in_dir(&staging, schema).map_err(&err)?;
    index.tokenizers().register(TOKENIZER, TantivyEnglish(EnglishAnalyzer::default()));
    // One indexing thread: documents keep file order, so ties at a cut rank the same in every build.
    let mut writer = index.writer_with_num_threads::<TantivyDocument>(1, 256 * 1024 * 1024).map_err(&err)?;
    let bar = indicatif::ProgressBar::new(records.len() as u64)
        .with_style(indicatif::ProgressStyle::with_template("indexing records {bar:40} {pos}/{len} ({per_sec})").expect("valid template"));
    for r in records {
        let mut doc = TantivyDocument::default();
        doc.add_text(id, &r.id);
        doc.add_text(title, &r.title);
        doc.add_text(abstract_text, &r.abstract_text);
        writer.add_document(doc).map_err(&err)?;
        bar.inc(1);
    }
    writer.commit().map_err(&err)?;
    writer.wait_merging_threads().map_err(&err)?;
    bar.finish_and_clear();
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| io(dir, e))?;
    }
    std::fs::rename(&staging, dir).map_err(|e| io(dir, e))
}

impl Engine for OfflineEngine {
    fn name(&self) -> String {
        format!("offline-pubmed-records({} records)", self.records)
    }

    fn search(&mut self, query: &str, _task: &ReviewTask, depth: usize) -> Result<Vec<String>, EngineError> {
        let compiled = self.compile(query)?;
        let searcher = self.reader.searcher();
        let err = tantivy_error(&self.dir);
        let hits = searcher.search(&compiled, &TopDocs::with_limit(depth.max(1)).order_by_score()).map_err(&err)?;
        let mut ids = Vec::with_capacity(hits.len());
        for (_, address) in hits {
            let doc: TantivyDocument = searcher.doc(address).map_err(&err)?;
            if let Some(id) = doc.get_first(self.id).and_then(|v| v.as_str()) {
                ids.push(id.to_string());
            }
        }
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> (tempfile::TempDir, OfflineEngine) {
        let dir = tempfile::tempdir().unwrap();
        let lines = [
            r#"{"id": "1", "title": "Inhaled corticosteroids in childhood asthma", "abstract": "A randomized trial of budesonide in children with asthma."}"#,
            r#"{"id": "2", "title": "Asthma in adults", "abstract": "Wheezing disorder outcomes in adults treated with steroids."}"#,
            r#"{"id": "3", "title": "Heart failure and beta blockers", "abstract": "Randomised controlled trial of carvedilol."}"#,
            r#"{"id": "4", "title": "Children's IL-6 levels", "abstract": "Interleukin IL-6 in paediatric asthma, not a trial."}"#,
        ];
        let path = dir.path().join("records.jsonl");
        std::fs::write(&path, lines.join("\n")).unwrap();
        let engine = OfflineEngine::open_or_build(&path, &dir.path().join("cache")).unwrap();
        (dir, engine)
    }

    fn task() -> ReviewTask {
        ReviewTask { id: "t".into(), topic: String::new(), topic_source: String::new(), pico: None, targets: vec![], pub_date: None }
    }

    fn found(e: &mut OfflineEngine, q: &str) -> Vec<String> {
        let mut ids = e.search(q, &task(), 10).unwrap();
        ids.sort();
        ids
    }

    #[test]
    fn boolean_operators_fields_phrases_and_truncation() {
        let (_dir, mut e) = engine();
        assert_eq!(e.num_records(), 4);
        assert_eq!(found(&mut e, "asthma"), ["1", "2", "4"]);
        assert_eq!(found(&mut e, "asthma AND child*"), ["1", "4"]);
        assert_eq!(found(&mut e, "asthma NOT adults"), ["1", "4"]);
        assert_eq!(found(&mut e, "asthma[ti] NOT adults[ti]"), ["1"]);
        assert_eq!(found(&mut e, "(carvedilol OR budesonide) AND random*"), ["1", "3"]);
        // Left to right: a OR b AND c = (a OR b) AND c.
        assert_eq!(found(&mut e, "carvedilol OR budesonide AND asthma"), ["1"]);
        assert_eq!(found(&mut e, "\"wheezing disorder\""), ["2"]);
        assert_eq!(found(&mut e, "\"disorder wheezing\""), Vec::<String>::new());
        // A word that analyses to two terms is a phrase; stop words constrain nothing.
        assert_eq!(found(&mut e, "IL-6 AND the"), ["4"]);
        assert_eq!(found(&mut e, "asthma[tiab] AND trial[ab]"), ["1", "4"]);
        // Ranked by BM25 within the match set: the title hit twice ranks first.
        assert_eq!(e.search("asthma", &task(), 1).unwrap().len(), 1);
    }

    #[test]
    fn unusable_queries_are_query_errors() {
        let (_dir, mut e) = engine();
        for q in ["", "(asthma", "the of and", "NOT asthma", "\"open", "asthma OR"] {
            let err = e.search(q, &task(), 10).unwrap_err();
            assert!(err.is_query_error(), "{q}: {err}");
        }
    }

    #[test]
    fn the_index_is_reused_from_the_cache() {
        let (dir, e) = engine();
        assert!(e.built);
        let again = OfflineEngine::open_or_build(&dir.path().join("records.jsonl"), &dir.path().join("cache")).unwrap();
        assert!(!again.built);
        assert_eq!(again.num_records(), 4);
    }
}
