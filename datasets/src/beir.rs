//! BEIR layout: `corpus.jsonl`, `queries.jsonl`, `qrels/<split>.tsv` (gzip accepted).
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use harness_core::io::for_each_line;
use harness_core::{CoreError, Qrels, Query};

use crate::card::Card;
use crate::error::{DatasetError, Result};

/// A corpus document as BEIR stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorpusDoc {
    /// `_id`.
    pub id: String,
    /// `title` (empty when absent).
    pub title: String,
    /// `text`.
    pub text: String,
}

#[derive(serde::Deserialize)]
struct RawDoc {
    #[serde(rename = "_id")]
    id: serde_json::Value,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    text: Option<String>,
}

fn id_string(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A BEIR dataset on disk, described by its card.
#[derive(Debug, Clone)]
pub struct BeirDataset {
    card: Card,
    dir: PathBuf,
}

impl BeirDataset {
    /// Opens the dataset in `dir`.
    pub fn new(card: Card, dir: PathBuf) -> Self {
        BeirDataset { card, dir }
    }

    /// The card.
    pub fn card(&self) -> &Card {
        &self.card
    }

    fn file(&self, key: &str) -> Result<PathBuf> {
        let name = self.card.files.get(key).ok_or_else(|| DatasetError::BadCard {
            path: format!("datasets/cards/{}.toml", self.card.name),
            cause: format!("no `files.{key}` entry"),
        })?;
        Ok(crate::registry::resolve_data_file(&self.dir, name).unwrap_or_else(|| self.dir.join(name)))
    }

    /// Path of the corpus file.
    pub fn corpus_path(&self) -> Result<PathBuf> {
        self.file("corpus")
    }

    /// sha256 of the corpus file's bytes (the BM25 index cache key).
    pub fn corpus_checksum(&self) -> Result<String> {
        let path = self.corpus_path()?;
        Ok(harness_core::io::sha256_file(&path)?)
    }

    /// Reads every document of the corpus (validating each line).
    pub fn read_corpus(&self) -> Result<Vec<CorpusDoc>> {
        let path = self.corpus_path()?;
        let mut docs = Vec::new();
        // A repeated id would be indexed twice and counted twice by every metric.
        let mut first_line: HashMap<String, usize> = HashMap::new();
        for_each_line(&path, |line_no, line| {
            let raw: RawDoc = serde_json::from_str(line)
                .map_err(|e| CoreError::parse(&path, line_no, format!("not a BEIR corpus record: {e}")))?;
            let id = id_string(&raw.id)
                .ok_or_else(|| CoreError::parse(&path, line_no, "`_id` must be a string or a number"))?;
            harness_core::io::check_id("document", &id).map_err(|cause| CoreError::parse(&path, line_no, cause))?;
            if let Some(first) = first_line.insert(id.clone(), line_no) {
                return Err(CoreError::parse(&path, line_no, format!("document id '{id}' appears twice (first on line {first})")));
            }
            docs.push(CorpusDoc { id, title: raw.title.unwrap_or_default(), text: raw.text.unwrap_or_default() });
            Ok(())
        })?;
        Ok(docs)
    }

    /// Answer strings of the queries (open-QA datasets), by id.
    pub fn read_answers(&self) -> Result<BTreeMap<String, Vec<String>>> {
        let path = self.file("queries")?;
        read_answers_jsonl(&path)
    }

    /// All queries, by id.
    pub fn read_queries(&self) -> Result<BTreeMap<String, String>> {
        let path = self.file("queries")?;
        read_queries_jsonl(&path)
    }

    /// The qrels of `split`.
    pub fn read_qrels(&self, split: &str) -> Result<Qrels> {
        let s = self.card.splits.get(split).ok_or_else(|| DatasetError::UnknownSplit {
            dataset: self.card.name.clone(),
            split: split.to_string(),
            known: self.card.splits.keys().cloned().collect::<Vec<_>>().join(", "),
        })?;
        Ok(harness_core::io::read_qrels(&self.dir.join(&s.qrels))?)
    }

    /// The queries of `split` (those with judgements), in id order, and the split's qrels.
    /// A judged query missing from `queries.jsonl` is an error.
    pub fn split_queries(&self, split: &str) -> Result<(Vec<Query>, Qrels)> {
        let qrels = self.read_qrels(split)?;
        let all = self.read_queries()?;
        let mut out = Vec::with_capacity(qrels.len());
        for qid in qrels.by_query.keys() {
            let text = all.get(qid).ok_or_else(|| DatasetError::BadCard {
                path: format!("datasets/cards/{}.toml", self.card.name),
                cause: format!("split '{split}' judges query '{qid}', which queries.jsonl lacks"),
            })?;
            out.push(Query { id: qid.clone(), text: text.clone() });
        }
        Ok((out, qrels))
    }
}

/// Answer strings of open-QA queries (`metadata.answers` of queries.jsonl), by query id; queries
/// without answers are absent.
pub fn read_answers_jsonl(path: &Path) -> Result<BTreeMap<String, Vec<String>>> {
    #[derive(serde::Deserialize)]
    struct RawQuery {
        #[serde(rename = "_id")]
        id: serde_json::Value,
        #[serde(default)]
        metadata: Option<serde_json::Value>,
    }
    let mut out = BTreeMap::new();
    for_each_line(path, |line_no, line| {
        let raw: RawQuery = serde_json::from_str(line)
            .map_err(|e| CoreError::parse(path, line_no, format!("not a BEIR query record: {e}")))?;
        let id = id_string(&raw.id).ok_or_else(|| CoreError::parse(path, line_no, "`_id` must be a string or a number"))?;
        harness_core::io::check_id("query", &id).map_err(|cause| CoreError::parse(path, line_no, cause))?;
        if let Some(answers) = raw.metadata.as_ref().and_then(|m| m.get("answers")) {
            let list = answers.as_array().ok_or_else(|| CoreError::parse(path, line_no, "`metadata.answers` must be a list"))?;
            let strings = list
                .iter()
                .map(|a| a.as_str().map(String::from).ok_or_else(|| CoreError::parse(path, line_no, "an answer is not a string")))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            out.insert(id, strings);
        }
        Ok(())
    })?;
    Ok(out)
}

/// Reads `{"_id": ..., "text": ...}` lines.
pub fn read_queries_jsonl(path: &Path) -> Result<BTreeMap<String, String>> {
    #[derive(serde::Deserialize)]
    struct RawQuery {
        #[serde(rename = "_id")]
        id: serde_json::Value,
        text: String,
    }
    let mut out = BTreeMap::new();
    for_each_line(path, |line_no, line| {
        let raw: RawQuery = serde_json::from_str(line)
            .map_err(|e| CoreError::parse(path, line_no, format!("not a BEIR query record: {e}")))?;
        let id = id_string(&raw.id).ok_or_else(|| CoreError::parse(path, line_no, "`_id` must be a string or a number"))?;
        harness_core::io::check_id("query", &id).map_err(|cause| CoreError::parse(path, line_no, cause))?;
        if out.insert(id.clone(), raw.text).is_some() {
            return Err(CoreError::parse(path, line_no, format!("query id '{id}' appears twice")));
        }
        Ok(())
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Registry;

    fn scifact() -> BeirDataset {
        let r = Registry::builtin(Path::new(env!("CARGO_MANIFEST_DIR")).join("data")).unwrap();
        let card = r.get("scifact").unwrap().clone();
        let dir = r.dataset_dir(&card);
        BeirDataset::new(card, dir)
    }

    #[test]
    fn vendored_scifact_has_the_official_counts() {
        let d = scifact();
        assert_eq!(d.read_corpus().unwrap().len(), 5183);
        assert_eq!(d.read_queries().unwrap().len(), 1109);
        let (test, qrels) = d.split_queries("test").unwrap();
        assert_eq!(test.len(), 300);
        assert_eq!(qrels.by_query.values().map(|m| m.len()).sum::<usize>(), 339);
        assert_eq!(d.split_queries("train").unwrap().0.len(), 809 - d.split_queries("dev").unwrap().0.len() + overlap(&d));
        assert_eq!(d.read_qrels("dev").unwrap().rows_in_file_order.values().map(Vec::len).sum::<usize>(), 101);
    }

    /// Queries whose qrels rows straddle the train/dev cut appear in both.
    fn overlap(d: &BeirDataset) -> usize {
        let t = d.read_qrels("train").unwrap();
        d.read_qrels("dev").unwrap().by_query.keys().filter(|q| t.by_query.contains_key(*q)).count()
    }

    #[test]
    fn duplicate_and_whitespace_ids_are_errors_with_their_lines() {
        let dir = tempfile::tempdir().unwrap();
        let mut card = scifact().card().clone();
        card.files.insert("corpus".into(), "corpus.jsonl".into());
        let d = BeirDataset::new(card, dir.path().to_path_buf());
        std::fs::write(dir.path().join("corpus.jsonl"), "{\"_id\": \"1\", \"text\": \"a\"}\n{\"_id\": 2, \"text\": \"b\"}\n{\"_id\": \"1\", \"text\": \"c\"}\n").unwrap();
        let err = d.read_corpus().unwrap_err().to_string();
        assert!(err.contains("corpus.jsonl:3: document id '1' appears twice (first on line 1)"), "{err}");
        std::fs::write(dir.path().join("corpus.jsonl"), "{\"_id\": \"doc 1\", \"text\": \"a\"}\n").unwrap();
        let err = d.read_corpus().unwrap_err().to_string();
        assert!(err.contains("corpus.jsonl:1: document id 'doc 1' contains whitespace"), "{err}");
        std::fs::write(dir.path().join("q.jsonl"), "{\"_id\": \"q\\t1\", \"text\": \"a\"}\n").unwrap();
        let err = read_queries_jsonl(&dir.path().join("q.jsonl")).unwrap_err().to_string();
        assert!(err.contains("q.jsonl:1: query id 'q\t1' contains whitespace"), "{err}");
    }

    #[test]
    fn malformed_corpus_line_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("corpus.jsonl"), "{\"_id\": \"1\", \"text\": \"a\"}\n{oops}\n").unwrap();
        let mut card = scifact().card().clone();
        card.files.insert("corpus".into(), "corpus.jsonl".into());
        let d = BeirDataset::new(card, dir.path().to_path_buf());
        let err = d.read_corpus().unwrap_err().to_string();
        assert!(err.contains("corpus.jsonl:2: not a BEIR corpus record"), "{err}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 200, ..Default::default() })]
        /// BEIR JSONL readers on arbitrary lines (JSON-ish or not): records or a located
        /// error, never a panic.
        #[test]
        fn jsonl_readers_never_panic(lines in proptest::collection::vec(proptest::prop_oneof![
            "\\{\"_id\": \"[a-z0-9 ]{0,4}\", \"text\": \"[a-z ]{0,8}\"\\}",
            "\\{\"_id\": [0-9]{1,3}, \"title\": null, \"text\": \"x\", \"metadata\": \\{\"answers\": \\[\"a\"\\]\\}\\}",
            "[ -~]{0,20}",
        ], 0..12)) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("q.jsonl");
            std::fs::write(&path, lines.join("\n")).unwrap();
            let _ = read_queries_jsonl(&path);
            let _ = read_answers_jsonl(&path);
            let mut card = scifact().card().clone();
            card.files.insert("corpus".into(), "q.jsonl".into());
            let _ = BeirDataset::new(card, dir.path().to_path_buf()).read_corpus();
        }
    }
}
