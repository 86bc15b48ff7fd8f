//! Literature search, the paper's headline task: from a systematic review's description, write a
//! Boolean query that finds the review's included publications (PubMed) or trials
//! (ClinicalTrials.gov). Scored by Recall@K: |top-K ∩ included| / |included|.
//!
//! * [`tasks`]: review tasks: the vendored offline set (CLEF TAR 2017 and Cohen 2006 reviews over
//!   their real PubMed records) and the paper's own JSONL format (PICO, `publication_pmids` or
//!   `trial_nctids`, `pub_date`).
//! * [`offline`]: a tantivy index over the pooled PubMed records that evaluates the Boolean
//!   queries a policy writes.
//! * [`pubmed`], [`ctgov`]: clients of the live engines (rate limit, retries with backoff, an
//!   on-disk response cache; the API key never reaches a log, an error or a cache file).
#![warn(missing_docs)]

pub mod ctgov;
pub mod http;
pub mod offline;
pub mod pubmed;
pub mod tasks;

pub use tasks::{Pico, ReviewTask};

/// Why a search gave no ranking.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The query itself is unusable (a format outcome of the policy's answer, not a crash).
    #[error("query not searchable: {0}")]
    Query(String),
    /// The engine could not be reached or answered with an error; the URL never holds the key.
    #[error("{url}: {cause}")]
    Http {
        /// Request URL without credentials.
        url: String,
        /// What went wrong.
        cause: String,
    },
    /// A local file (index, cache, task file) could not be used.
    #[error("{path}: {cause}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        cause: String,
    },
}

impl EngineError {
    /// Whether the policy's query was at fault (malformed Boolean syntax, nothing searchable).
    pub fn is_query_error(&self) -> bool {
        matches!(self, EngineError::Query(_))
    }
}

/// A search engine answering a review task's query with ranked record ids.
pub trait Engine {
    /// Name for tables and run metadata.
    fn name(&self) -> String;
    /// Up to `depth` ids for `query`; `task` supplies limits such as the review's date.
    fn search(&mut self, query: &str, task: &ReviewTask, depth: usize) -> Result<Vec<String>, EngineError>;
}

/// |top-`k` of `retrieved` ∩ `targets`| / |`targets`| (targets counted once; 0 with no targets),
/// the paper's per-review recall, averaged over reviews by the caller.
pub fn recall_at(retrieved: &[String], targets: &[String], k: usize) -> f64 {
    let wanted: std::collections::HashSet<&str> = targets.iter().map(String::as_str).collect();
    if wanted.is_empty() {
        return 0.0;
    }
    let mut found = std::collections::HashSet::new();
    for id in retrieved.iter().take(k) {
        if wanted.contains(id.as_str()) {
            found.insert(id.as_str());
        }
    }
    found.len() as f64 / wanted.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn recall_counts_each_target_once_within_the_cutoff() {
        let got = ids(&["a", "x", "a", "b", "c"]);
        assert_eq!(recall_at(&got, &ids(&["a", "b", "d", "d"]), 5), 2.0 / 3.0);
        assert_eq!(recall_at(&got, &ids(&["a", "b", "d"]), 2), 1.0 / 3.0);
        assert_eq!(recall_at(&got, &[], 5), 0.0);
        assert_eq!(recall_at(&[], &ids(&["a"]), 5), 0.0);
    }
}
