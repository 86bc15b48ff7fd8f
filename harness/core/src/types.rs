//! Queries, scored documents, runs and relevance judgements.
use std::collections::{BTreeMap, HashMap};

/// A query (or claim, question, review topic) with its identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Query identifier as in the dataset (kept as a string: ids like "0" and "00" differ).
    pub id: String,
    /// The text given to a retriever or a query-rewriting method.
    pub text: String,
}

/// One retrieved document with its score.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredDoc {
    /// Document identifier (docno).
    pub doc_id: String,
    /// Retrieval score; higher is better.
    pub score: f64,
}

/// A run: for each query, the documents a system retrieved with their scores.
///
/// Documents are kept as given; metrics re-sort them the way trec_eval does (score
/// descending, ties by docno descending), so the order and rank column of a file never matter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Run {
    /// Query id -> retrieved documents.
    pub by_query: BTreeMap<String, Vec<ScoredDoc>>,
}

impl Run {
    /// An empty run.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the ranking of one query.
    pub fn insert(&mut self, query_id: impl Into<String>, docs: Vec<ScoredDoc>) {
        self.by_query.insert(query_id.into(), docs);
    }

    /// Number of queries with a ranking.
    pub fn len(&self) -> usize {
        self.by_query.len()
    }

    /// True when no query has a ranking.
    pub fn is_empty(&self) -> bool {
        self.by_query.is_empty()
    }
}

/// Relevance judgements: query id -> document id -> graded relevance (may be 0 or negative).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Qrels {
    /// Query id -> (document id -> grade).
    pub by_query: BTreeMap<String, HashMap<String, i32>>,
    /// Judgement rows per query in file order, for the paper's `dr-compat` metrics whose
    /// ideal DCG depends on that order.
    pub rows_in_file_order: BTreeMap<String, Vec<(String, i32)>>,
}

impl Qrels {
    /// An empty set of judgements.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one judgement; a later row for the same (query, doc) overrides an earlier one,
    /// as in trec_eval.
    pub fn insert(&mut self, query_id: &str, doc_id: &str, grade: i32) {
        self.by_query
            .entry(query_id.to_string())
            .or_default()
            .insert(doc_id.to_string(), grade);
        self.rows_in_file_order
            .entry(query_id.to_string())
            .or_default()
            .push((doc_id.to_string(), grade));
    }

    /// Number of judged queries.
    pub fn len(&self) -> usize {
        self.by_query.len()
    }

    /// True when there are no judgements.
    pub fn is_empty(&self) -> bool {
        self.by_query.is_empty()
    }
}
