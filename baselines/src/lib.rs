//! Query-generation methods compared side by side: each turns a task's query into the query
//! the retriever sees. This version has the `original` method (the query as given); PRF
//! (RM3), prompted LLMs, API models and trained checkpoints plug in behind the same trait.
#![warn(missing_docs)]

use harness_core::Query;

/// What a method produced for one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    /// The query id.
    pub query_id: String,
    /// The text handed to the retriever.
    pub text: String,
}

/// A query-generation method.
pub trait QueryMethod {
    /// Name used in tables (`original`).
    fn name(&self) -> String;
    /// Rewrites a batch of queries (a batch lets model-based methods batch their calls).
    fn rewrite(&mut self, queries: &[Query]) -> Result<Vec<Rewrite>, MethodError>;
}

/// Errors of methods.
#[derive(Debug, thiserror::Error)]
pub enum MethodError {
    /// The method name is not known.
    #[error("unknown method '{0}' (available: original)")]
    Unknown(String),
}

/// The query exactly as the dataset gives it.
#[derive(Debug, Default, Clone)]
pub struct Original;

impl QueryMethod for Original {
    fn name(&self) -> String {
        "original".into()
    }
    fn rewrite(&mut self, queries: &[Query]) -> Result<Vec<Rewrite>, MethodError> {
        Ok(queries.iter().map(|q| Rewrite { query_id: q.id.clone(), text: q.text.clone() }).collect())
    }
}

/// Builds a method from its command-line name.
pub fn from_name(name: &str) -> Result<Box<dyn QueryMethod>, MethodError> {
    match name {
        "original" => Ok(Box::new(Original)),
        other => Err(MethodError::Unknown(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn original_keeps_text_and_unknown_names_fail() {
        let mut m = from_name("original").unwrap();
        let q = vec![Query { id: "1".into(), text: "a b".into() }];
        assert_eq!(m.rewrite(&q).unwrap(), vec![Rewrite { query_id: "1".into(), text: "a b".into() }]);
        assert!(from_name("rm3").is_err());
    }
}
