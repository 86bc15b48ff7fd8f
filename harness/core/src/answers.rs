//! Answer containment for evidence-seeking retrieval (Hit@k), with the semantics of Pyserini's
//! DPR `has_answers` (regex = False): NFD-normalise, tokenise with its SimpleTokenizer (runs of
//! letters, digits and marks, or any single character that is neither separator nor control),
//! lowercase, then look for each answer's token sequence as a contiguous run of the passage's.
//! As there, an answer with no tokens (empty or blank) matches every passage.
use std::sync::LazyLock;

use regex::Regex;
use unicode_normalization::UnicodeNormalization;

static TOKEN: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"[\p{L}\p{N}\p{M}]+|[^\p{Z}\p{C}]").expect("valid pattern"));

/// Lowercased SimpleTokenizer tokens of NFD-normalised `text`.
pub fn dpr_tokens(text: &str) -> Vec<String> {
    let normalised: String = text.nfd().collect();
    TOKEN.find_iter(&normalised).map(|m| m.as_str().to_lowercase()).collect()
}

/// Whether any of `answers` occurs in `passage` (Pyserini's `has_answers`, regex = False).
pub fn has_answer(passage: &str, answers: &[String]) -> bool {
    let text = dpr_tokens(passage);
    answers.iter().any(|answer| {
        let needle = dpr_tokens(answer);
        needle.is_empty() || text.windows(needle.len()).any(|w| w == needle.as_slice())
    })
}

/// [`has_answer`] on tokens already produced by [`dpr_tokens`] (tokenise each passage once).
pub fn has_answer_tokens(passage: &[String], answers: &[Vec<String>]) -> bool {
    answers.iter().any(|needle| needle.is_empty() || passage.windows(needle.len()).any(|w| w == needle.as_slice()))
}

/// 1-based rank of the first passage holding an answer, if any.
pub fn first_hit_rank<'a>(passages: impl IntoIterator<Item = &'a str>, answers: &[String]) -> Option<usize> {
    passages.into_iter().position(|p| has_answer(p, answers)).map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_pyserini_on_tricky_answers() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/golden/has_answers/cases.jsonl");
        let text = std::fs::read_to_string(path).unwrap();
        let mut checked = 0;
        for line in text.lines() {
            let case: serde_json::Value = serde_json::from_str(line).unwrap();
            let passage = case["passage"].as_str().unwrap();
            let answers: Vec<String> = case["answers"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect();
            assert_eq!(has_answer(passage, &answers), case["has_answer"].as_bool().unwrap(), "{passage:?} / {answers:?}");
            checked += 1;
        }
        assert_eq!(checked, 546);
    }

    #[test]
    fn ranks_count_from_one() {
        let answers = vec!["Paris".to_string()];
        assert_eq!(first_hit_rank(["London", "in Paris", "Paris"], &answers), Some(2));
        assert_eq!(first_hit_rank(["London"], &answers), None);
        let tokens = dpr_tokens("The Louvre, in Paris.");
        assert!(has_answer_tokens(&tokens, &[dpr_tokens("london"), dpr_tokens("PARIS")]));
        assert!(!has_answer_tokens(&tokens, &[dpr_tokens("Paris, France")]));
    }
}
