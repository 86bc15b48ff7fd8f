//! Training environments: a prompt per example and the paper's reward of a response, computed
//! by the run's real retriever, engine or executor. Classic IR (BM25 or dense, the paper's
//! NDCG), literature search (the engine's recall tiers), evidence seeking (the rank tiers of
//! the first answer-bearing passage) and SQL (execution tiers, sandboxed).
use std::collections::HashMap;

use anyhow::Result;
use harness_core::answer::AnswerFormat;
use harness_core::rewards::{self, Answer, SqlOutcome};
use harness_policy::{Message, PolicyText};
use harness_retrieval::dense::{Embeddings, Encoder, TextKind};
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
    policy: &'a PolicyText,
    prompts: harness_baselines::Prompts,
    reasoning: bool,
}

impl<'a> Turns<'a> {
    pub(crate) fn new(policy: &'a PolicyText, reasoning: bool, eos_ids: Vec<i64>) -> Turns<'a> {
        Turns {
            format: if reasoning { AnswerFormat::Reasoning } else { AnswerFormat::Direct },
            prefix: harness_baselines::prompts::assistant_prefix(reasoning),
            decode: Box::new(|ids| policy.decode(ids)),
            count_tokens: Box::new(|text| policy.encode(text).map_or(0, |ids| ids.len())),
            eos_ids,
            policy,
            prompts: harness_baselines::Prompts::new(),
            reasoning,
        }
    }

    /// The prompt ids of `task`, made when an example is drawn: a large training split (Spider's
    /// 7,000 questions with their schemas) is not tokenized up front. The first example of an
    /// environment is tokenized when it is built (`check_prompt`), so a template or tokenizer
    /// that fails does so before training starts.
    fn lazy_prompt(&self, task: &harness_baselines::Task) -> Vec<i64> {
        prompt_ids(self.policy, &self.prompts, task, self.reasoning).unwrap_or_else(|e| panic!("the prompt of a task that passed check_prompt failed: {e:#}"))
    }

    /// Tokenizes `task` once, returning the error a failing template or tokenizer gives.
    pub(crate) fn check_prompt(&self, task: &harness_baselines::Task) -> Result<()> {
        prompt_ids(self.policy, &self.prompts, task, self.reasoning).map(|_| ())
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

/// The retriever a reward searches with: BM25, or a dense encoder over cached passage
/// embeddings (exact search; each rollout's query encoded as it comes).
pub(crate) enum RewardRetriever<'a> {
    Bm25 { index: &'a Bm25Index, searcher: harness_retrieval::Bm25Searcher<'a>, params: Bm25Params },
    Dense { encoder: Box<Encoder>, embeddings: Embeddings, doc_ids: Vec<String> },
}

impl<'a> RewardRetriever<'a> {
    /// BM25 over `index` with a searcher of its own.
    pub(crate) fn bm25(index: &'a Bm25Index, params: Bm25Params) -> RewardRetriever<'a> {
        RewardRetriever::Bm25 { index, searcher: index.searcher(), params }
    }

    /// The ids of the top `depth` documents for `query`; `None` when it cannot be searched.
    pub(crate) fn search(&mut self, query: &str, depth: usize) -> Option<Vec<String>> {
        match self {
            RewardRetriever::Bm25 { index, searcher, params } => {
                let hits = searcher.search(query, depth, *params).ok()?;
                Some(hits.iter().map(|(o, _)| index.doc_id(*o).to_string()).collect())
            }
            RewardRetriever::Dense { encoder, embeddings, doc_ids } => {
                let vector = encoder.encode(&[query], TextKind::Query).ok()?.pop()?;
                Some(embeddings.search_exact(&vector, depth).into_iter().map(|(o, _)| doc_ids[o as usize].clone()).collect())
            }
        }
    }
}

pub(crate) struct ClassicIrEnv<'a> {
    pub(crate) examples: Vec<Example>,
    pub(crate) retriever: RewardRetriever<'a>,
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
        let (answer, reward) = classic_ir_turn(&turn, self.turns.format, |query| self.metric(i, query));
        self.turns.scored(&turn, &answer, reward)
    }

    fn original_metric(&mut self, i: usize) -> Option<f64> {
        let original = self.examples[i].original.clone();
        self.metric(i, &original)
    }
}

impl ClassicIrEnv<'_> {
    /// The paper's NDCG of `query`'s ranking for example `i`; `None` when the query cannot be
    /// searched.
    fn metric(&mut self, i: usize, query: &str) -> Option<f64> {
        let hits = self.retriever.search(query, self.depth)?;
        Some(classic_ir_ndcg(&hits, &self.examples[i].target, self.depth))
    }
}

/// The paper's NDCG at `depth` of a ranking for a target (single-target or graded).
pub(crate) fn classic_ir_ndcg(hits: &[String], target: &Target, depth: usize) -> f64 {
    let ranked: Vec<&str> = hits.iter().map(String::as_str).collect();
    match target {
        Target::Single(doc) => harness_core::drcompat::ndcg_single_target(&ranked, doc, depth),
        Target::Graded(rows) => harness_core::drcompat::ndcg_graded(&ranked, rows, depth),
    }
}

// The reward of an assistant turn, by family: what the training environments compute and what
// the reward endpoint (`RewardService`) answers; `measure` runs the retriever or executor.

/// Classic IR: the answer's NDCG and the paper's reward.
pub(crate) fn classic_ir_turn(turn: &str, format: AnswerFormat, measure: impl FnOnce(&str) -> Option<f64>) -> (Answer<f64>, f64) {
    let answer = Answer::from_turn(turn, format, "query", measure);
    let reward = rewards::classic_ir(&answer);
    (answer, reward)
}

/// Evidence seeking: Hit@`hit_k` of the answer and the paper's rank-tier reward.
pub(crate) fn evidence_turn(turn: &str, format: AnswerFormat, squad: bool, hit_k: usize, first_rank: impl FnOnce(&str) -> Option<Option<usize>>) -> (Answer<f64>, f64) {
    let answer = Answer::from_turn(turn, format, "query", first_rank);
    let reward = rewards::evidence_seeking(&answer, squad);
    (answer.map(|rank| hit_within(*rank, hit_k)), reward)
}

/// SQL: execution accuracy (1 or 0) of the answer and the paper's execution tiers.
pub(crate) fn sql_turn(turn: &str, format: AnswerFormat, bird: bool, outcome: impl FnOnce(&str) -> Option<SqlOutcome>) -> (Answer<f64>, f64) {
    let answer = Answer::from_turn(turn, format, "sql", outcome);
    let reward = rewards::sql(&answer, bird);
    (answer.map(|o| if *o == SqlOutcome::Equal { 1.0 } else { 0.0 }), reward)
}

/// Literature: recall at the reward depth of the answer's Boolean query and the paper's tiers.
pub(crate) fn literature_turn(turn: &str, format: AnswerFormat, recall: impl FnOnce(&str) -> Option<f64>) -> (Answer<f64>, f64) {
    let answer = Answer::from_turn(turn, format, "query", recall);
    let reward = rewards::literature(&answer);
    (answer, reward)
}

fn hit_within(rank: Option<usize>, k: usize) -> f64 {
    if rank.is_some_and(|r| r <= k) { 1.0 } else { 0.0 }
}

/// The rank (from 1) of the first of `hits` holding one of `answers`; `Some(None)` when none
/// does, `None` when a passage cannot be read.
pub(crate) fn first_answer_rank(hits: &[String], passages: &PassageTexts, answers: &[Vec<String>]) -> Option<Option<usize>> {
    if answers.is_empty() {
        return Some(None);
    }
    for (rank, id) in hits.iter().enumerate() {
        if passages.holds_answer(id, answers)? {
            return Some(Some(rank + 1));
        }
    }
    Some(None)
}

/// The execution tier of a judge's verdict.
pub(crate) fn sql_outcome(verdict: Result<harness_sql::Verdict, harness_sql::SqlError>) -> SqlOutcome {
    match verdict {
        Ok(harness_sql::Verdict::Correct) => SqlOutcome::Equal,
        // A statement that runs past the time limit executed and differs (no paper quirk).
        Ok(harness_sql::Verdict::Mismatch | harness_sql::Verdict::PredFailed(harness_sql::ExecFailure::Timeout(_))) => SqlOutcome::Differs,
        Ok(harness_sql::Verdict::PredFailed(_)) => SqlOutcome::Error,
        // A question that cannot be judged (its gold fails, its database is unreadable) earns
        // the error tier, the reward of an answer that taught nothing.
        Ok(harness_sql::Verdict::NotRunnable(_) | harness_sql::Verdict::GoldFailed(_)) | Err(_) => SqlOutcome::Error,
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
        let (answer, reward) = literature_turn(&turn, self.turns.format, |query| self.recall(i, query));
        self.turns.scored(&turn, &answer, reward)
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

/// One evidence-seeking example: a question and the answer strings a passage must hold.
pub(crate) struct EvidenceExample {
    pub(crate) task: harness_baselines::Task,
    pub(crate) question: String,
    /// Each answer as DPR tokens.
    pub(crate) answers: Vec<Vec<String>>,
}

/// Evidence seeking: the policy's query retrieves the top `depth` passages (the paper: 3,000 in
/// training); the reward is the rank tier of the first passage holding an answer
/// (`harness_core::rewards::evidence_seeking`). The logged metric is Hit@`hit_k`.
pub(crate) struct EvidenceEnv<'a> {
    pub(crate) examples: Vec<EvidenceExample>,
    pub(crate) retriever: RewardRetriever<'a>,
    pub(crate) passages: std::rc::Rc<PassageTexts>,
    pub(crate) depth: usize,
    pub(crate) hit_k: usize,
    /// The paper's SQuAD tiers (miss −2.5, error −3).
    pub(crate) squad: bool,
    pub(crate) turns: Turns<'a>,
}

/// Where an evidence-seeking reward reads passage texts: a small corpus held as tokens, or a
/// DPR passages file read at the offsets of the passages retrieved, in rank order, until one
/// holds an answer.
pub(crate) enum PassageTexts {
    Tokens(HashMap<String, Vec<String>>),
    File(crate::families::open_qa::PassageFile),
}

impl PassageTexts {
    /// Whether passage `id` holds one of `answers` (DPR `has_answers`); `None` when it cannot
    /// be read.
    pub(crate) fn holds_answer(&self, id: &str, answers: &[Vec<String>]) -> Option<bool> {
        match self {
            PassageTexts::Tokens(tokens) => Some(tokens.get(id).is_some_and(|t| harness_core::answers::has_answer_tokens(t, answers))),
            PassageTexts::File(file) => {
                let text = file.text(id).ok()?;
                Some(text.is_some_and(|t| harness_core::answers::has_answer_tokens(&harness_core::answers::dpr_tokens(&t), answers)))
            }
        }
    }
}

impl EvidenceEnv<'_> {
    /// The rank (from 1) of the first retrieved passage holding an answer; `Some(None)` when
    /// none of the top `depth` does, `None` when the query cannot be searched or a passage
    /// cannot be read.
    fn first_rank(&mut self, i: usize, query: &str) -> Option<Option<usize>> {
        let hits = self.retriever.search(query, self.depth)?;
        first_answer_rank(&hits, &self.passages, &self.examples[i].answers)
    }
}

impl Environment for EvidenceEnv<'_> {
    fn len(&self) -> usize {
        self.examples.len()
    }

    fn prompt(&self, i: usize) -> Vec<i64> {
        self.turns.lazy_prompt(&self.examples[i].task)
    }

    fn score(&mut self, i: usize, response: &[i64]) -> Scored {
        let turn = self.turns.turn(response);
        let (squad, hit_k) = (self.squad, self.hit_k);
        let (answer, reward) = evidence_turn(&turn, self.turns.format, squad, hit_k, |query| self.first_rank(i, query));
        self.turns.scored(&turn, &answer, reward)
    }

    fn original_metric(&mut self, i: usize) -> Option<f64> {
        let question = self.examples[i].question.clone();
        self.first_rank(i, &question).map(|rank| hit_within(rank, self.hit_k))
    }
}

/// One text-to-SQL example.
pub(crate) struct SqlExample {
    pub(crate) task: harness_baselines::Task,
    pub(crate) db_id: String,
    pub(crate) gold_sql: String,
}

/// SQL: the policy's statement runs read-only, time-limited, in the sandbox against the gold
/// statement (the paper's set equality, `ExMode::Dr`); the reward is the paper's execution
/// tiers (`harness_core::rewards::sql`). The logged metric is execution accuracy.
pub(crate) struct SqlEnv<'a> {
    pub(crate) examples: Vec<SqlExample>,
    pub(crate) judge: harness_sql::Judge,
    /// BIRD's tiers (an executable but wrong statement earns 0.4).
    pub(crate) bird: bool,
    pub(crate) turns: Turns<'a>,
}

impl SqlEnv<'_> {
    fn outcome(&mut self, i: usize, sql: &str) -> SqlOutcome {
        let example = &self.examples[i];
        sql_outcome(self.judge.verdict(&example.db_id, &example.gold_sql, sql))
    }
}

impl Environment for SqlEnv<'_> {
    fn len(&self) -> usize {
        self.examples.len()
    }

    fn prompt(&self, i: usize) -> Vec<i64> {
        self.turns.lazy_prompt(&self.examples[i].task)
    }

    fn score(&mut self, i: usize, response: &[i64]) -> Scored {
        let turn = self.turns.turn(response);
        let bird = self.bird;
        let (answer, reward) = sql_turn(&turn, self.turns.format, bird, |sql| Some(self.outcome(i, sql)));
        self.turns.scored(&turn, &answer, reward)
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
