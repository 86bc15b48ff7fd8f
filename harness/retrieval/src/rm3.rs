//! RM3 pseudo-relevance feedback with Anserini's arithmetic (its `Rm3Reranker`): from the top
//! `fb_docs` documents of a first BM25 pass, each document's term vector (terms of 2-20
//! characters of `[a-z0-9]`, in at most 10% of documents) is cut to its `fb_terms` most frequent
//! terms; a term's feedback weight is the sum over documents of its L1-normalised frequency
//! times the document's first-pass score; the top `fb_terms` are kept and L1-normalised, then
//! interpolated with the L1-normalised original query (`original_query_weight`). The result is
//! a weighted query searched again in full.
use std::collections::HashMap;

use crate::bm25::Bm25Index;
use crate::Result;

/// RM3 settings (Anserini's defaults: 10, 10, 0.5).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rm3Settings {
    /// Feedback documents.
    pub fb_docs: usize,
    /// Terms kept per document and in the model.
    pub fb_terms: usize,
    /// Weight of the original query.
    pub original_query_weight: f32,
}

/// Keeps the `k` largest weights (ties: term order), as Anserini's `pruneToSize`.
fn prune(vector: &mut Vec<(String, f32)>, k: usize) {
    vector.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    vector.truncate(k);
}

fn l1_normalise(vector: &mut [(String, f32)]) {
    let norm: f32 = vector.iter().map(|(_, w)| w.abs()).sum();
    if norm > 0.0 {
        for (_, w) in vector.iter_mut() {
            *w /= norm;
        }
    }
}

fn keep_term(term: &str) -> bool {
    (2..=20).contains(&term.len()) && term.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// The expanded, weighted query for `query`, given its first-pass hits `(ordinal, score)` and
/// the text of a document by ordinal (the text that was indexed).
pub fn expand(
    index: &Bm25Index,
    query: &str,
    first_pass: &[(u32, f32)],
    doc_text: &dyn Fn(u32) -> String,
    settings: Rm3Settings,
) -> Result<Vec<(String, f32)>> {
    let analyzer = index.analyzer();
    let n_docs = index.num_docs() as f32;
    let mut df_cache: HashMap<String, bool> = HashMap::new();
    let mut doc_vectors: Vec<(Vec<(String, f32)>, f32)> = Vec::new();
    for &(ord, score) in first_pass.iter().take(settings.fb_docs) {
        let mut counts: HashMap<String, f32> = HashMap::new();
        for term in analyzer.analyze(&doc_text(ord)) {
            *counts.entry(term).or_default() += 1.0;
        }
        let mut vector = Vec::with_capacity(counts.len());
        for (term, count) in counts {
            if !keep_term(&term) {
                continue;
            }
            let common = match df_cache.get(&term) {
                Some(c) => *c,
                None => {
                    let c = index.doc_freq(&term)? as f32 / n_docs > 0.1;
                    df_cache.insert(term.clone(), c);
                    c
                }
            };
            if !common {
                vector.push((term, count));
            }
        }
        prune(&mut vector, settings.fb_terms);
        doc_vectors.push((vector, score));
    }
    let mut feedback: HashMap<String, f32> = HashMap::new();
    for (vector, score) in &doc_vectors {
        let norm: f32 = vector.iter().map(|(_, w)| *w).sum();
        if norm <= 0.001 {
            continue;
        }
        for (term, w) in vector {
            *feedback.entry(term.clone()).or_default() += w / norm * score;
        }
    }
    let mut model: Vec<(String, f32)> = feedback.into_iter().collect();
    prune(&mut model, settings.fb_terms);
    l1_normalise(&mut model);

    let mut original: HashMap<String, f32> = HashMap::new();
    for term in analyzer.analyze(query) {
        *original.entry(term).or_default() += 1.0;
    }
    let mut original: Vec<(String, f32)> = original.into_iter().collect();
    l1_normalise(&mut original);
    let w = settings.original_query_weight;
    let mut combined: HashMap<String, f32> = HashMap::new();
    for (term, v) in original {
        *combined.entry(term).or_default() += w * v;
    }
    for (term, v) in model {
        *combined.entry(term).or_default() += (1.0 - w) * v;
    }
    let mut out: Vec<(String, f32)> = combined.into_iter().collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bm25::{Document, IndexSettings};

    #[test]
    fn expansion_weights_follow_the_rm3_arithmetic() {
        let texts = [
            "apple orchard harvest apple",
            "apple pie recipe",
            "banana bread",
            "cherry tart",
            "durian fruit",
            "elderberry wine",
            "fig jam",
            "grape juice",
            "honeydew melon",
            "kiwi salad",
            "lemon cake",
        ];
        let docs: Vec<std::result::Result<Document, Box<dyn std::error::Error + Send + Sync>>> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| Ok(Document { id: i.to_string(), title: String::new(), text: t.to_string() }))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let index = Bm25Index::build(&dir.path().join("i"), "x", IndexSettings::default(), texts.len(), docs.into_iter()).unwrap();
        let first = vec![(0u32, 2.0f32), (1u32, 1.0f32)];
        let settings = Rm3Settings { fb_docs: 2, fb_terms: 10, original_query_weight: 0.5 };
        let expanded = expand(&index, "apple", &first, &|o| texts[o as usize].to_string(), settings).unwrap();
        let weight = |t: &str| expanded.iter().find(|(x, _)| x == t).map(|(_, w)| *w);
        // "appl" is in 2 of 11 documents (18% > 10%): dropped from the feedback model, kept from the query.
        // Doc 0 vector {orchard 1, harvest 1} (norm 2) x 2.0; doc 1 {pie 1, recip 1} (norm 2) x 1.0.
        // Model before normalising: orchard 1, harvest 1, pie 0.5, recip 0.5 -> / 3.
        assert!((weight("appl").unwrap() - 0.5).abs() < 1e-6);
        assert!((weight("orchard").unwrap() - 0.5 / 3.0).abs() < 1e-6);
        assert!((weight("pie").unwrap() - 0.5 * 0.5 / 3.0).abs() < 1e-6);
        let total: f32 = expanded.iter().map(|(_, w)| w).sum();
        assert!((total - 1.0).abs() < 1e-5);
        assert!(weight("banana").is_none());
    }
}
