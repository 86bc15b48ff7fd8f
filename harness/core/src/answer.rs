//! The policy's answer contract and its parser.
//!
//! With reasoning the assistant turn reads `<think>…</think><answer>{"query": "…"}</answer>`
//! (the prompt pre-fills the opening `<think>`, so the model writes the reasoning, `</think>` and
//! the answer); without reasoning only `<answer>{…}</answer>`. SQL answers use the key `sql`.
//! [`parse_strict`] applies the paper's training-time rules (each tag exactly once, in order, a
//! JSON object with the right key); [`parse_lenient`] its evaluation-time reading (the last
//! `<answer>` block, JSON if it parses, else the raw text).

/// Which tags the answer must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerFormat {
    /// `<think>…</think>` then `<answer>…</answer>`.
    Reasoning,
    /// `<answer>…</answer>` only.
    Direct,
}

/// Why an answer is malformed; every variant is a scored outcome, never an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatError {
    /// A required tag is absent.
    MissingTag(&'static str),
    /// A tag occurs more than once.
    RepeatedTag(&'static str),
    /// The tags are out of order.
    WrongOrder,
    /// The answer block is not a JSON object.
    BadJson(String),
    /// The JSON object lacks the expected key (or its value is not a string).
    WrongKey {
        /// The key that was expected.
        expected: String,
        /// Keys that were there.
        found: Vec<String>,
    },
    /// The answer's value is empty.
    Empty,
}

impl FormatError {
    /// Short machine-readable label (`missing-tag`, `repeated-tag`, ...).
    pub fn label(&self) -> &'static str {
        match self {
            FormatError::MissingTag(_) => "missing-tag",
            FormatError::RepeatedTag(_) => "repeated-tag",
            FormatError::WrongOrder => "wrong-order",
            FormatError::BadJson(_) => "bad-json",
            FormatError::WrongKey { .. } => "wrong-key",
            FormatError::Empty => "empty",
        }
    }
}

impl std::fmt::Display for FormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FormatError::MissingTag(t) => write!(f, "missing {t}"),
            FormatError::RepeatedTag(t) => write!(f, "{t} occurs more than once"),
            FormatError::WrongOrder => write!(f, "tags out of order"),
            FormatError::BadJson(e) => write!(f, "answer is not a JSON object: {e}"),
            FormatError::WrongKey { expected, found } => write!(f, "answer has no string '{expected}' (keys: {})", found.join(", ")),
            FormatError::Empty => write!(f, "answer is empty"),
        }
    }
}

const THINK_OPEN: &str = "<think>";
const THINK_CLOSE: &str = "</think>";
const ANSWER_OPEN: &str = "<answer>";
const ANSWER_CLOSE: &str = "</answer>";

/// Parses an assistant turn (including any pre-filled `<think>`) by the training-time rules;
/// `key` is `query` or `sql`.
pub fn parse_strict(turn: &str, format: AnswerFormat, key: &str) -> Result<String, FormatError> {
    let tags: &[&'static str] = match format {
        AnswerFormat::Reasoning => &[THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE],
        AnswerFormat::Direct => &[ANSWER_OPEN, ANSWER_CLOSE],
    };
    let mut positions = Vec::with_capacity(tags.len());
    for &tag in tags {
        match turn.matches(tag).count() {
            0 => return Err(FormatError::MissingTag(tag)),
            1 => positions.push(turn.find(tag).expect("counted once")),
            _ => return Err(FormatError::RepeatedTag(tag)),
        }
    }
    if positions.windows(2).any(|w| w[0] > w[1]) {
        return Err(FormatError::WrongOrder);
    }
    let start = turn.find(ANSWER_OPEN).expect("present") + ANSWER_OPEN.len();
    let end = turn.find(ANSWER_CLOSE).expect("present");
    if end < start {
        return Err(FormatError::WrongOrder);
    }
    answer_value(turn[start..end].trim(), key)
}

/// The string under `key` of a JSON object text.
fn answer_value(block: &str, key: &str) -> Result<String, FormatError> {
    let value: serde_json::Value = serde_json::from_str(block).map_err(|e| FormatError::BadJson(e.to_string()))?;
    let object = value.as_object().ok_or_else(|| FormatError::BadJson("not an object".into()))?;
    match object.get(key) {
        Some(serde_json::Value::String(s)) if s.trim().is_empty() => Err(FormatError::Empty),
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        _ => Err(FormatError::WrongKey { expected: key.to_string(), found: object.keys().cloned().collect() }),
    }
}

/// The evaluation-time reading: the last `<answer>…</answer>` block; its `key` when it is a
/// JSON object with one, else the block's raw text. `None` when there is no complete block or
/// it is empty.
pub fn parse_lenient(text: &str, key: &str) -> Option<String> {
    let end = text.rfind(ANSWER_CLOSE)?;
    let start = text[..end].rfind(ANSWER_OPEN)? + ANSWER_OPEN.len();
    let block = text[start..end].trim();
    let answer = answer_value(block, key).unwrap_or_else(|_| block.to_string());
    (!answer.trim().is_empty()).then_some(answer)
}

/// A well-formed turn for `answer` (used by tests and by examples in prompts).
pub fn render_answer(reasoning: Option<&str>, key: &str, answer: &str) -> String {
    let json = serde_json::json!({ key: answer }).to_string();
    match reasoning {
        Some(r) => format!("{THINK_OPEN}\n{r}\n{THINK_CLOSE}\n{ANSWER_OPEN}\n{json}\n{ANSWER_CLOSE}"),
        None => format!("{ANSWER_OPEN}\n{json}\n{ANSWER_CLOSE}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn each_malformed_case_has_its_outcome() {
        let r = AnswerFormat::Reasoning;
        let ok = "<think>\nplan\n</think>\n<answer>\n{\"query\": \"vitamin D AND fracture\"}\n</answer>";
        assert_eq!(parse_strict(ok, r, "query"), Ok("vitamin D AND fracture".into()));
        assert_eq!(parse_strict("<think>x</think>", r, "query"), Err(FormatError::MissingTag(ANSWER_OPEN)));
        assert_eq!(parse_strict("<think>x</think><think></think><answer>{}</answer>", r, "query"), Err(FormatError::RepeatedTag(THINK_OPEN)));
        assert_eq!(parse_strict("<think><answer>{}</answer></think>", r, "query"), Err(FormatError::WrongOrder));
        assert_eq!(parse_strict("<think></think><answer></answer>", r, "query").unwrap_err().label(), "bad-json");
        assert_eq!(parse_strict("<think></think><answer>[1]</answer>", r, "query").unwrap_err().label(), "bad-json");
        assert_eq!(
            parse_strict("<think></think><answer>{\"sql\": \"SELECT 1\"}</answer>", r, "query"),
            Err(FormatError::WrongKey { expected: "query".into(), found: vec!["sql".into()] })
        );
        assert_eq!(parse_strict("<think></think><answer>{\"query\": \" \"}</answer>", r, "query"), Err(FormatError::Empty));
        assert_eq!(parse_strict("<answer>{\"sql\": \"SELECT 1\"}</answer>", AnswerFormat::Direct, "sql"), Ok("SELECT 1".into()));
        // Text after </answer> is not checked, as in the paper.
        assert!(parse_strict("<answer>{\"sql\": \"SELECT 1\"}</answer> trailing", AnswerFormat::Direct, "sql").is_ok());
    }

    #[test]
    fn lenient_reading_takes_the_last_block_and_falls_back_to_raw_text() {
        assert_eq!(parse_lenient("<answer>{\"query\": \"a\"}</answer> <answer>{\"query\": \"b\"}</answer>", "query"), Some("b".into()));
        assert_eq!(parse_lenient("<answer>plain words</answer>", "query"), Some("plain words".into()));
        assert_eq!(parse_lenient("<answer>  </answer>", "query"), None);
        assert_eq!(parse_lenient("no tags", "query"), None);
        assert_eq!(parse_lenient("</answer><answer>", "query"), None);
    }

    proptest! {
        #[test]
        fn parsers_never_panic_on_arbitrary_text(text in ".{0,400}", tags in prop::collection::vec(0usize..4, 0..8)) {
            let names = [THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE];
            let mut s = text.clone();
            for (i, t) in tags.iter().enumerate() {
                let at = s.char_indices().nth(i * 7 % (s.chars().count() + 1)).map_or(s.len(), |(b, _)| b);
                s.insert_str(at, names[*t]);
            }
            let _ = parse_strict(&s, AnswerFormat::Reasoning, "query");
            let _ = parse_strict(&s, AnswerFormat::Direct, "sql");
            let _ = parse_lenient(&s, "query");
        }

        #[test]
        fn well_formed_answers_round_trip(answer in "[^<>]{1,80}", reasoning in "[^<>]{0,80}") {
            prop_assume!(!answer.trim().is_empty());
            let turn = render_answer(Some(&reasoning), "query", &answer);
            prop_assert_eq!(parse_strict(&turn, AnswerFormat::Reasoning, "query"), Ok(answer.clone()));
            prop_assert_eq!(parse_lenient(&turn, "query"), Some(answer));
        }
    }
}
