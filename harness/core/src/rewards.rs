//! DeepRetrieval's rewards, family by family, with the paper code's tiers, format terms and
//! penalties (docs/paper-notes.md §7). The retrieval metric itself (recall from the engine,
//! the rank of the first answer-bearing passage, NDCG, an execution verdict) is computed by the
//! run's real retriever or executor and passed in; this module only maps it to a reward, so
//! training and evaluation share one definition.
use crate::answer::{parse_strict, AnswerFormat, FormatError};

/// What the policy's answer amounted to, before any retrieval.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer<M> {
    /// The tag structure is broken (missing, repeated or out-of-order tags).
    MalformedTags,
    /// Tags are fine but the answer block is empty.
    EmptyBlock,
    /// Tags are fine but the block is not usable: bad JSON, wrong key, or the engine/executor
    /// raised an error on it.
    Invalid,
    /// The metric measured on the answer.
    Scored(M),
}

impl<M> Answer<M> {
    /// Classifies an assistant turn; `measure` runs the retriever/executor on the parsed answer
    /// and returns `None` when it raised an error.
    pub fn from_turn(turn: &str, format: AnswerFormat, key: &str, measure: impl FnOnce(&str) -> Option<M>) -> Answer<M> {
        match parse_strict(turn, format, key) {
            Ok(answer) => measure(&answer).map_or(Answer::Invalid, Answer::Scored),
            Err(FormatError::MissingTag(_) | FormatError::RepeatedTag(_) | FormatError::WrongOrder) => Answer::MalformedTags,
            Err(FormatError::BadJson(_)) if block_is_empty(turn) => Answer::EmptyBlock,
            Err(FormatError::BadJson(_) | FormatError::WrongKey { .. }) => Answer::Invalid,
            // {"query": ""}: the engine is still asked (and finds nothing).
            Err(FormatError::Empty) => measure("").map_or(Answer::Invalid, Answer::Scored),
        }
    }
}

impl<M> Answer<M> {
    /// The same outcome with the measured value mapped (a reward's tier input to the metric a
    /// log reports, say).
    pub fn map<N>(&self, f: impl FnOnce(&M) -> N) -> Answer<N> {
        match self {
            Answer::MalformedTags => Answer::MalformedTags,
            Answer::EmptyBlock => Answer::EmptyBlock,
            Answer::Invalid => Answer::Invalid,
            Answer::Scored(m) => Answer::Scored(f(m)),
        }
    }
}

fn block_is_empty(turn: &str) -> bool {
    match (turn.find("<answer>"), turn.find("</answer>")) {
        (Some(a), Some(b)) if a + 8 <= b => turn[a + 8..b].trim().is_empty(),
        _ => false,
    }
}

/// Literature search (PubMed, ClinicalTrials.gov): format +1 / −4; recall tiers
/// ≥0.7 → 5, ≥0.5 → 4, ≥0.4 → 3, ≥0.3 → 1, ≥0.1 → 0.5, ≥0.05 → 0.1, else −3.5; error −4.
pub fn literature(answer: &Answer<f64>) -> f64 {
    let tier = |recall: f64| {
        if recall >= 0.7 {
            5.0
        } else if recall >= 0.5 {
            4.0
        } else if recall >= 0.4 {
            3.0
        } else if recall >= 0.3 {
            1.0
        } else if recall >= 0.1 {
            0.5
        } else if recall >= 0.05 {
            0.1
        } else {
            -3.5
        }
    };
    match answer {
        Answer::MalformedTags => -4.0,
        Answer::EmptyBlock => 1.0,
        Answer::Invalid => 1.0 - 4.0,
        Answer::Scored(r) => 1.0 + tier(*r),
    }
}

/// Evidence-seeking (NQ, TriviaQA; SQuAD with `squad`): format +1 / −4; the 1-based rank of the
/// first passage holding an answer (None: not in the top 3000) → ≤5: 5, ≤20: 4, ≤50: 2,
/// ≤100: 1, ≤1000: 0.5, ≤3000: 0.1, miss −3.5 (SQuAD −2.5); error −4 (SQuAD −3).
pub fn evidence_seeking(answer: &Answer<Option<usize>>, squad: bool) -> f64 {
    let (miss, error) = if squad { (-2.5, -3.0) } else { (-3.5, -4.0) };
    let tier = |rank: Option<usize>| match rank {
        Some(r) if r <= 5 => 5.0,
        Some(r) if r <= 20 => 4.0,
        Some(r) if r <= 50 => 2.0,
        Some(r) if r <= 100 => 1.0,
        Some(r) if r <= 1000 => 0.5,
        Some(r) if r <= 3000 => 0.1,
        _ => miss,
    };
    match answer {
        Answer::MalformedTags => -4.0,
        Answer::EmptyBlock => 1.0,
        Answer::Invalid => 1.0 + error,
        Answer::Scored(rank) => 1.0 + tier(*rank),
    }
}

/// Classic IR (BEIR, MS MARCO): format +0.1 when the tags are valid and the block is JSON with
/// `query`, else −2; total = 0.1 + NDCG when NDCG > 0, 0 when well-formed but NDCG is 0 or the
/// search failed.
pub fn classic_ir(answer: &Answer<f64>) -> f64 {
    match answer {
        Answer::MalformedTags | Answer::EmptyBlock | Answer::Invalid => -2.0,
        Answer::Scored(ndcg) if *ndcg > 0.0 => 0.1 + ndcg,
        Answer::Scored(_) => 0.0,
    }
}

/// The execution outcome of predicted SQL against gold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlOutcome {
    /// Result sets equal.
    Equal,
    /// Executed (or timed out) with a different result.
    Differs,
    /// SQLite raised an error.
    Error,
}

/// SQL (Spider; BIRD with `bird`): format +0.1 when the tags are valid and the block is JSON
/// with `sql`, else −2; equal results 1.1; executes but differs: BIRD 0.4 (its executability
/// bonus), Spider 0; an execution error 0.
pub fn sql(answer: &Answer<SqlOutcome>, bird: bool) -> f64 {
    match answer {
        Answer::MalformedTags | Answer::EmptyBlock | Answer::Invalid => -2.0,
        Answer::Scored(SqlOutcome::Equal) => 1.1,
        Answer::Scored(SqlOutcome::Differs) if bird => 0.4,
        Answer::Scored(_) => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literature_tiers_at_every_boundary() {
        let cases = [
            (1.0, 6.0),
            (0.7, 6.0),
            (0.6999, 5.0),
            (0.5, 5.0),
            (0.4999, 4.0),
            (0.4, 4.0),
            (0.3999, 2.0),
            (0.3, 2.0),
            (0.2999, 1.5),
            (0.1, 1.5),
            (0.0999, 1.1),
            (0.05, 1.1),
            (0.0499, -2.5),
            (0.0, -2.5),
        ];
        for (recall, total) in cases {
            assert_eq!(literature(&Answer::Scored(recall)), total, "recall {recall}");
        }
        assert_eq!(literature(&Answer::MalformedTags), -4.0);
        assert_eq!(literature(&Answer::Invalid), -3.0);
        assert_eq!(literature(&Answer::EmptyBlock), 1.0);
    }

    #[test]
    fn evidence_tiers_at_every_boundary() {
        let cases = [(1, 6.0), (5, 6.0), (6, 5.0), (20, 5.0), (21, 3.0), (50, 3.0), (51, 2.0), (100, 2.0), (101, 1.5), (1000, 1.5), (1001, 1.1), (3000, 1.1)];
        for (rank, total) in cases {
            assert_eq!(evidence_seeking(&Answer::Scored(Some(rank)), false), total, "rank {rank}");
            assert_eq!(evidence_seeking(&Answer::Scored(Some(rank)), true), total, "squad rank {rank}");
        }
        assert_eq!(evidence_seeking(&Answer::Scored(Some(3001)), false), -2.5);
        assert_eq!(evidence_seeking(&Answer::Scored(None), false), -2.5);
        assert_eq!(evidence_seeking(&Answer::Scored(None), true), -1.5);
        assert_eq!(evidence_seeking(&Answer::Invalid, false), -3.0);
        assert_eq!(evidence_seeking(&Answer::Invalid, true), -2.0);
        assert_eq!(evidence_seeking(&Answer::MalformedTags, true), -4.0);
    }

    #[test]
    fn classic_ir_and_sql_compositions() {
        assert!((classic_ir(&Answer::Scored(0.6)) - 0.7).abs() < 1e-12);
        assert_eq!(classic_ir(&Answer::Scored(0.0)), 0.0);
        assert_eq!(classic_ir(&Answer::Invalid), -2.0);
        assert_eq!(classic_ir(&Answer::MalformedTags), -2.0);
        assert_eq!(classic_ir(&Answer::EmptyBlock), -2.0);
        assert_eq!(sql(&Answer::Scored(SqlOutcome::Equal), false), 1.1);
        assert_eq!(sql(&Answer::Scored(SqlOutcome::Differs), false), 0.0);
        assert_eq!(sql(&Answer::Scored(SqlOutcome::Differs), true), 0.4);
        assert_eq!(sql(&Answer::Scored(SqlOutcome::Error), true), 0.0);
        assert_eq!(sql(&Answer::Invalid, true), -2.0);
    }

    #[test]
    fn each_malformed_answer_case_is_classified() {
        let r = AnswerFormat::Reasoning;
        let measure = |q: &str| Some(q.len() as f64);
        let ok = "<think>x</think><answer>{\"query\": \"abc\"}</answer>";
        assert_eq!(Answer::from_turn(ok, r, "query", measure), Answer::Scored(3.0));
        assert_eq!(Answer::from_turn("<think>x</think>", r, "query", measure), Answer::MalformedTags);
        assert_eq!(Answer::from_turn("<think><think></think><answer>{}</answer>", r, "query", measure), Answer::MalformedTags);
        assert_eq!(Answer::from_turn("<answer>{}</answer><think></think>", r, "query", measure), Answer::MalformedTags);
        assert_eq!(Answer::from_turn("<think></think><answer>  </answer>", r, "query", measure), Answer::EmptyBlock);
        assert_eq!(Answer::from_turn("<think></think><answer>{oops</answer>", r, "query", measure), Answer::Invalid);
        assert_eq!(Answer::from_turn("<think></think><answer>{\"sql\": \"x\"}</answer>", r, "query", measure), Answer::Invalid);
        assert_eq!(Answer::from_turn("<think></think><answer>{\"query\": \"\"}</answer>", r, "query", measure), Answer::Scored(0.0));
        // The engine raising an error is Invalid too.
        assert_eq!(Answer::from_turn(ok, r, "query", |_| None::<f64>), Answer::Invalid);
    }
}
