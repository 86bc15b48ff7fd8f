//! The task families, one module each: how a cell of that family turns a spec into a run.
//! `beir` (classic IR, and evidence-seeking over a BEIR-layout corpus), `literature` (review
//! tasks on an engine), `open_qa` (DPR passages supplied by the user), `sql` (execution
//! accuracy).
pub mod beir;
pub mod literature;
pub mod open_qa;
pub mod sql;

use std::path::PathBuf;

use anyhow::{Context, Result};
use harness_core::Measure;
use harness_report::ResultRow;
use polars::prelude::DataFrame;

/// What one cell produced.
pub struct CellOutcome {
    /// The table row (metrics in the order asked).
    pub row: ResultRow,
    /// The row as a one-row table, as written to `table.*`.
    pub table: DataFrame,
    /// The cell's run folder.
    pub run_dir: PathBuf,
    /// Lines worth showing after the table (index built, unusable queries, SQL summaries...).
    pub notes: Vec<String>,
    /// Per-query values of the trec_eval measures, for paired tests between methods (none for
    /// families scored otherwise).
    pub scores: Option<QueryScores>,
}

/// A cell's wall-clock, as its table's `wall_s` reports it: the method's generation (0 for
/// the original query), retrieval (or engine searches) and scoring; building or loading an
/// index is a one-off cost, kept apart in meta.json.
pub struct Wall {
    pub generation: f64,
    pub retrieval: f64,
    pub scoring: f64,
}

impl Wall {
    pub fn total(&self) -> f64 {
        self.generation + self.retrieval + self.scoring
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({"wall_seconds": self.total(), "generation_seconds": self.generation, "retrieval_seconds": self.retrieval, "scoring_seconds": self.scoring})
    }
}

/// Every judged query's value of each trec_eval measure of a cell, as `-c` averages them.
#[derive(Debug, Clone)]
pub struct QueryScores {
    /// Query ids, in qrels order.
    pub queries: Vec<String>,
    /// (measure name, one value per query).
    pub measures: Vec<(String, Vec<f64>)>,
}

impl QueryScores {
    /// From an evaluation made with `opts` against `qrels`; measures in the order asked (the
    /// table's column order), counts left out.
    pub fn new(
        qrels: &harness_core::Qrels,
        evaluation: &harness_core::trec_eval::Evaluation,
        opts: &harness_core::EvalOptions,
        asked: &[Measure],
    ) -> Self {
        let measures = distinct(asked)
            .into_iter()
            .filter(|m| !m.kind.is_count())
            .filter_map(|m| evaluation.measures.iter().position(|&e| e == m).map(|i| (m, i)))
            .map(|(m, i)| (m.name(), harness_core::trec_eval::complete_per_query(qrels, evaluation, i, opts)))
            .collect();
        QueryScores { queries: qrels.by_query.keys().cloned().collect(), measures }
    }
}

/// Measures asked for (the spec's, else the card's), split into trec_eval measures and
/// answer-containment depths (`hit.K,...`).
pub(crate) fn parse_measures(specs: &[String]) -> Result<(Vec<Measure>, Vec<usize>)> {
    let mut measures = Vec::new();
    let mut hit_depths = Vec::new();
    for spec in specs {
        match spec.strip_prefix("hit.") {
            Some(ks) => {
                for k in ks.split(',') {
                    hit_depths.push(k.trim().parse::<usize>().with_context(|| format!("measure '{spec}': hit.K needs whole numbers"))?);
                }
            }
            None => measures.extend(Measure::parse_list(spec)?),
        }
    }
    Ok((measures, hit_depths))
}

/// `measures` without repeats, in the order asked (table columns follow that order; trec_eval's
/// order is for its own output format only).
pub(crate) fn distinct(measures: &[Measure]) -> Vec<Measure> {
    measures.iter().fold(Vec::new(), |mut seen, m| {
        if !seen.contains(m) {
            seen.push(*m);
        }
        seen
    })
}

/// `hit_K` for each depth: the share of questions whose first answer-bearing passage ranks
/// within K (a question without one counts as a miss).
pub fn hit_rates(first_ranks: &[Option<usize>], depths: &[usize]) -> Vec<(String, f64)> {
    let n = first_ranks.len().max(1) as f64;
    depths.iter().map(|&k| (format!("hit_{k}"), first_ranks.iter().filter(|r| r.is_some_and(|r| r <= k)).count() as f64 / n)).collect()
}

/// The rank (from 1) of the first document of `ranked` whose passage tokens hold an answer;
/// none for a question without answers.
pub(crate) fn first_answer_rank<'d>(
    ranked: impl IntoIterator<Item = &'d str>,
    passages: &std::collections::HashMap<String, Vec<String>>,
    answers: &[Vec<String>],
) -> Option<usize> {
    if answers.is_empty() {
        return None;
    }
    ranked
        .into_iter()
        .position(|doc| passages.get(doc).is_some_and(|t| harness_core::answers::has_answer_tokens(t, answers)))
        .map(|i| i + 1)
}
