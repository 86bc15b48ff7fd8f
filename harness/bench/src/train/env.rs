//! Training environments: a prompt per example and the paper's reward of a response, computed
//! by the run's real retriever or engine. Classic IR (BM25, the paper's NDCG) and literature
//! search (the engine's recall tiers).
use anyhow::Result;
use harness_core::answer::AnswerFormat;
use harness_core::rewards::{self, Answer};
use harness_policy::{Message, PolicyText};
use harness_retrieval::{Bm25Index, Bm25Params};
use harness_rl::trainer::{Environment, Scored};

/// One training example: a prompt and the document(s) that should be found.
pub(crate) struct Example {
    pub(crate) prompt_ids: Vec<i64>,
    /// The query as the dataset gives it (the `original` method's text).
    pub(crate) original: String,
    /// Single target (SciFact, as the paper) or graded rows.
    pub(crate) target: Target,
}

pub(crate) enum Target {
    Single(String),
    Graded(Vec<(String, i32)>),
}

/// What every environment does with a response: the assistant turn as text, and the
/// format, metric and block lengths of its scored answer.
pub(crate) struct Turns<'a> {
    format: AnswerFormat,
    /// The pre-filled start of the assistant turn (`<think>\n` or `<answer>\n`).
    prefix: &'static str,
    decode: Box<dyn Fn(&[i64]) -> String + 'a>,
    /// Tokens of a text (for the think and answer block lengths).
    count_tokens: Box<dyn Fn(&str) -> usize + 'a>,
    eos_ids: Vec<i64>,
}

impl<'a> Turns<'a> {
    pub(crate) fn new(policy: &'a PolicyText, reasoning: bool, eos_ids: Vec<i64>) -> Turns<'a> {
        Turns {
            format: if reasoning { AnswerFormat::Reasoning } else { AnswerFormat::Direct },
            prefix: harness_baselines::prompts::assistant_prefix(reasoning),
            decode: Box::new(|ids| policy.decode(ids)),
            count_tokens: Box::new(|text| policy.encode(text).map_or(0, |ids| ids.len())),
            eos_ids,
        }
    }

    fn turn(&self, response: &[i64]) -> String {
        let body: Vec<i64> = response.iter().copied().filter(|t| !self.eos_ids.contains(t)).collect();
        format!("{}{}", self.prefix, (self.decode)(&body))
    }

    fn scored(&self, turn: &str, answer: &Answer<f64>, reward: f64) -> Scored {
        let metric = if let Answer::Scored(v) = answer { *v } else { 0.0 };
        let format_ok = !matches!(answer, Answer::MalformedTags | Answer::EmptyBlock | Answer::Invalid);
        let length = |tag: &str| block(turn, tag).map_or(0, |b| (self.count_tokens)(b.trim()));
        Scored { reward, metric, format_ok, think_tokens: length("think"), answer_tokens: length("answer") }
    }
}

/// The chat prompt of `task` in the policy's template, assistant turn pre-filled.
pub(crate) fn prompt_ids(policy: &PolicyText, prompts: &harness_baselines::Prompts, task: &harness_baselines::Task, reasoning: bool) -> Result<Vec<i64>> {
    let user = prompts.user_message(task, reasoning)?;
    let messages = [Message::new("system", harness_baselines::prompts::system_message(reasoning)), Message::new("user", &user)];
    Ok(policy.encode(&(policy.chat_prompt(&messages)? + harness_baselines::prompts::assistant_prefix(reasoning)))?)
}

pub(crate) struct ClassicIrEnv<'a> {
    pub(crate) examples: Vec<Example>,
    pub(crate) index: &'a Bm25Index,
    pub(crate) searcher: harness_retrieval::Bm25Searcher<'a>,
    pub(crate) params: Bm25Params,
    pub(crate) depth: usize,
    pub(crate) turns: Turns<'a>,
}

/// The text of the last `<tag>` block of `turn` (to the end when unclosed).
fn block<'t>(turn: &'t str, tag: &str) -> Option<&'t str> {
    let open = format!("<{tag}>");
    let start = turn.rfind(&open)? + open.len();
    let rest = &turn[start..];
    Some(rest.find(&format!("</{tag}>")).map_or(rest, |end| &rest[..end]))
}

impl Environment for ClassicIrEnv<'_> {
    fn len(&self) -> usize {
        self.examples.len()
    }

    fn prompt(&self, i: usize) -> Vec<i64> {
        self.examples[i].prompt_ids.clone()
    }

    fn score(&mut self, i: usize, response: &[i64]) -> Scored {
        let turn = self.turns.turn(response);
        let answer = Answer::from_turn(&turn, self.turns.format, "query", |query| self.metric(i, query));
        self.turns.scored(&turn, &answer, rewards::classic_ir(&answer))
    }

    fn original_metric(&mut self, i: usize) -> Option<f64> {
        let original = self.examples[i].original.clone();
        self.metric(i, &original)
    }
}

impl ClassicIrEnv<'_> {
    /// The paper's NDCG of `query`'s BM25 ranking for example `i`; `None` when the query
    /// cannot be searched.
    fn metric(&mut self, i: usize, query: &str) -> Option<f64> {
        let hits = self.searcher.search(query, self.depth, self.params).ok()?;
        let ranked: Vec<&str> = hits.iter().map(|(o, _)| self.index.doc_id(*o)).collect();
        Some(match &self.examples[i].target {
            Target::Single(doc) => harness_core::drcompat::ndcg_single_target(&ranked, doc, self.depth),
            Target::Graded(rows) => harness_core::drcompat::ndcg_graded(&ranked, rows, self.depth),
        })
    }
}

/// Literature search: the policy's Boolean query goes to the run's engine, the reward is the
/// paper's recall tiers (`harness_core::rewards::literature`) at the paper's depth; an
/// unparseable query or a failed search is the exception tier.
pub(crate) struct LiteratureEnv<'a> {
    pub(crate) prompts: Vec<Vec<i64>>,
    pub(crate) tasks: Vec<harness_literature::ReviewTask>,
    pub(crate) engine: Box<dyn harness_literature::Engine>,
    pub(crate) depth: usize,
    pub(crate) turns: Turns<'a>,
}

impl Environment for LiteratureEnv<'_> {
    fn len(&self) -> usize {
        self.tasks.len()
    }

    fn prompt(&self, i: usize) -> Vec<i64> {
        self.prompts[i].clone()
    }

    fn score(&mut self, i: usize, response: &[i64]) -> Scored {
        let turn = self.turns.turn(response);
        let answer = Answer::from_turn(&turn, self.turns.format, "query", |query| self.recall(i, query));
        self.turns.scored(&turn, &answer, rewards::literature(&answer))
    }

    fn original_metric(&mut self, i: usize) -> Option<f64> {
        let original = crate::families::literature::original_text(&self.tasks[i]);
        self.recall(i, &original)
    }
}

impl LiteratureEnv<'_> {
    /// Recall at the reward depth of `query` for review `i`; `None` when the engine refuses it.
    fn recall(&mut self, i: usize, query: &str) -> Option<f64> {
        let task = &self.tasks[i];
        self.engine.search(query, task, self.depth).ok().map(|ids| harness_literature::recall_at(&ids, &task.targets, self.depth))
    }
}

#[cfg(test)]
mod tests {
    use super::block;

    #[test]
    fn blocks_are_the_last_of_their_tag_and_may_be_unclosed() {
        let turn = "<think>\nfirst</think>\n<think>second</think>\n<answer>\n{\"query\": \"q\"}\n</answer>";
        assert_eq!(block(turn, "think"), Some("second"));
        assert_eq!(block(turn, "answer").map(str::trim), Some("{\"query\": \"q\"}"));
        assert_eq!(block("<answer>\n{\"query\": \"cut off", "answer"), Some("\n{\"query\": \"cut off"));
        assert_eq!(block("no tags at all", "think"), None);
    }
}
