//! English analysis close to Anserini's `DefaultEnglishAnalyzer`:
//! UAX#29 word tokenizer (Lucene's `StandardTokenizer`) -> English possessive removal ->
//! lower case -> Lucene's 33 English stop words -> Porter stemming (Lucene's variant).
//!
//! Known differences from Lucene: tokens longer than 255 characters are kept whole (Lucene
//! splits them), and lower-casing uses Rust's Unicode rules.
use unicode_segmentation::UnicodeSegmentation;

use crate::porter;

/// Lucene's default English stop words (`EnglishAnalyzer.ENGLISH_STOP_WORDS_SET`), 33 words.
pub const LUCENE_ENGLISH_STOP_WORDS: [&str; 33] = [
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no", "not",
    "of", "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to", "was",
    "will", "with",
];

/// Settings of the analyzer; part of the index cache key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct AnalyzerConfig {
    /// Remove Lucene's 33 English stop words.
    pub stopwords: bool,
    /// Apply Porter stemming.
    pub stem: bool,
}

impl Default for AnalyzerConfig {
    fn default() -> Self {
        AnalyzerConfig { stopwords: true, stem: true }
    }
}

/// Turns text into index terms.
#[derive(Debug, Clone, Default)]
pub struct EnglishAnalyzer {
    config: AnalyzerConfig,
}

fn strip_possessive(word: &str) -> &str {
    // EnglishPossessiveFilter: drop a trailing 's / ’s / ＇s (any case of s).
    let mut chars = word.chars().rev();
    match (chars.next(), chars.next()) {
        (Some('s' | 'S'), Some(apos @ ('\'' | '\u{2019}' | '\u{FF07}'))) => {
            &word[..word.len() - 1 - apos.len_utf8()]
        }
        _ => word,
    }
}

impl EnglishAnalyzer {
    /// An analyzer with the given settings.
    pub fn new(config: AnalyzerConfig) -> Self {
        EnglishAnalyzer { config }
    }

    /// The settings.
    pub fn config(&self) -> AnalyzerConfig {
        self.config
    }

    /// Calls `emit(term, byte_range)` for each term of `text`, in order.
    pub fn for_each_term(&self, text: &str, mut emit: impl FnMut(String, std::ops::Range<usize>)) {
        for (offset, word) in text.unicode_word_indices() {
            let stripped = strip_possessive(word);
            if stripped.is_empty() {
                continue;
            }
            let lower = stripped.to_lowercase();
            if self.config.stopwords && LUCENE_ENGLISH_STOP_WORDS.binary_search(&lower.as_str()).is_ok() {
                continue;
            }
            let term = if self.config.stem { porter::stem(&lower) } else { lower };
            emit(term, offset..offset + word.len());
        }
    }

    /// The terms of `text`, in order.
    pub fn analyze(&self, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        self.for_each_term(text, |t, _| out.push(t));
        out
    }
}

/// The analyzer as a tantivy tokenizer, so that tantivy indexes exactly our terms.
#[derive(Clone, Default)]
pub struct TantivyEnglish(pub EnglishAnalyzer);

/// Token stream over pre-computed tokens.
pub struct TermStream {
    tokens: Vec<tantivy::tokenizer::Token>,
    next: usize,
}

impl tantivy::tokenizer::TokenStream for TermStream {
    fn advance(&mut self) -> bool {
        self.next += 1;
        self.next <= self.tokens.len()
    }
    fn token(&self) -> &tantivy::tokenizer::Token {
        &self.tokens[self.next - 1]
    }
    fn token_mut(&mut self) -> &mut tantivy::tokenizer::Token {
        &mut self.tokens[self.next - 1]
    }
}

impl tantivy::tokenizer::Tokenizer for TantivyEnglish {
    type TokenStream<'a> = TermStream;
    fn token_stream<'a>(&'a mut self, text: &'a str) -> TermStream {
        let mut tokens = Vec::new();
        self.0.for_each_term(text, |term, range| {
            tokens.push(tantivy::tokenizer::Token {
                offset_from: range.start,
                offset_to: range.end,
                position: tokens.len(),
                text: term,
                position_length: 1,
            })
        });
        TermStream { tokens, next: 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_words_are_sorted_for_binary_search() {
        let mut sorted = LUCENE_ENGLISH_STOP_WORDS;
        sorted.sort_unstable();
        assert_eq!(sorted, LUCENE_ENGLISH_STOP_WORDS);
    }

    #[test]
    fn anserini_examples() {
        let a = EnglishAnalyzer::default();
        // Anserini's BagOfWordsQueryGenerator tests.
        assert_eq!(a.analyze("sample query"), ["sampl", "queri"]);
        assert_eq!(a.analyze("Mary had a little lamb"), ["mari", "had", "littl", "lamb"]);
        // The paper's "contents:" prefix: ':' is MidLetter in UAX#29, so the first word is
        // glued to it (anchors.md Appendix A.6, checked with Lucene 8.7).
        assert_eq!(a.analyze("contents:Organic Skin Care"), ["contents:organ", "skin", "care"]);
        assert_eq!(a.analyze("contents:(Organic) Skin Care"), ["content", "organ", "skin", "care"]);
    }

    #[test]
    fn possessives_numbers_and_punctuation() {
        let a = EnglishAnalyzer::default();
        assert_eq!(a.analyze("The patient's IL-6 levels’s rose 3.5-fold in 2019."), [
            "patient", "il", "6", "level", "rose", "3.5", "fold", "2019"
        ]);
        let plain = EnglishAnalyzer::new(AnalyzerConfig { stopwords: false, stem: false });
        assert_eq!(plain.analyze("The cats"), ["the", "cats"]);
    }
}
