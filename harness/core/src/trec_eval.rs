//! Evaluation of a run against qrels the way trec_eval does it, and its output format.
//!
//! * Each ranking is re-sorted: score descending (compared as 32-bit floats, which is how
//!   trec_eval stores them), ties broken by docno descending. The run's rank column is ignored.
//! * Queries in the run but not in the qrels are ignored. Without `-c` the average runs over
//!   the queries in both; with `-c` over every qrels query, a missing one scoring 0.
//! * Counts (`num_ret`, `num_rel`, `num_rel_ret`) are summed in the summary, other measures
//!   averaged. One quirk kept: with `-c` the `num_rel` summary counts every judgement graded
//!   above 0, ignoring `-l` (as trec_eval 9.0.8 does).
use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::measures::{EvalOptions, JudgedRanking, Measure, MeasureKind};
use crate::types::{Qrels, Run, ScoredDoc};

/// Sorts documents as trec_eval does: score descending as `f32`, then docno descending.
pub fn sorted_like_trec_eval(docs: &[ScoredDoc]) -> Vec<&ScoredDoc> {
    let mut sorted: Vec<&ScoredDoc> = docs.iter().collect();
    sorted.sort_by(|a, b| compare_like_trec_eval(a, b));
    sorted
}

/// The order trec_eval gives two retrieved documents.
pub fn compare_like_trec_eval(a: &ScoredDoc, b: &ScoredDoc) -> Ordering {
    (b.score as f32)
        .partial_cmp(&(a.score as f32))
        .unwrap_or(Ordering::Equal)
        .then_with(|| b.doc_id.as_bytes().cmp(a.doc_id.as_bytes()))
}

/// Judges one query's ranking: grades in trec_eval order, truncated to `max_docs`.
pub fn judge(judgements: &std::collections::HashMap<String, i32>, docs: &[ScoredDoc], opts: &EvalOptions) -> JudgedRanking {
    judge_ordered(judgements, sorted_like_trec_eval(docs).iter().map(|d| d.doc_id.as_str()), opts)
}

/// Judges a ranking whose documents are already in trec_eval order, truncated to `max_docs`.
pub fn judge_ordered<'a>(
    judgements: &std::collections::HashMap<String, i32>,
    doc_ids_in_order: impl Iterator<Item = &'a str>,
    opts: &EvalOptions,
) -> JudgedRanking {
    let grades = doc_ids_in_order.take(opts.max_docs.unwrap_or(usize::MAX)).map(|d| judgements.get(d).copied()).collect();
    let mut ideal_gains: Vec<f64> = judgements.values().filter(|&&g| g > 0).map(|&g| g as f64).collect();
    ideal_gains.sort_by(|a, b| b.partial_cmp(a).unwrap());
    JudgedRanking {
        grades,
        num_rel: judgements.values().filter(|&&g| g >= opts.relevance_level).count(),
        ideal_gains,
        relevance_level: opts.relevance_level,
    }
}

/// The result of evaluating a run: per-query values and the summary.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The measures, in trec_eval's print order (see [`order_measures`]).
    pub measures: Vec<Measure>,
    /// Query id -> one value per measure, for queries present in both run and qrels.
    pub per_query: BTreeMap<String, Vec<f64>>,
    /// Summary value per measure (sum for counts, mean otherwise).
    pub summary: Vec<f64>,
    /// Number of queries averaged over.
    pub num_q: usize,
}

impl Evaluation {
    /// The summary value of `m`, if it was computed.
    pub fn summary_of(&self, m: Measure) -> Option<f64> {
        self.measures.iter().position(|&x| x == m).map(|i| self.summary[i])
    }
}

/// Puts measures in trec_eval's print order (family order, cut-offs as given) without repeats.
pub fn order_measures(measures: &[Measure]) -> Vec<Measure> {
    let mut out: Vec<Measure> = Vec::new();
    for kind in MeasureKind::ALL {
        for m in measures.iter().filter(|m| m.kind == kind) {
            if !out.contains(m) {
                out.push(*m);
            }
        }
    }
    out
}

/// Evaluates `run` against `qrels` with trec_eval's semantics.
pub fn evaluate(qrels: &Qrels, run: &Run, measures: &[Measure], opts: &EvalOptions) -> Evaluation {
    let measures = order_measures(measures);
    let mut per_query = BTreeMap::new();
    for (qid, docs) in &run.by_query {
        if let Some(judgements) = qrels.by_query.get(qid) {
            let judged = judge(judgements, docs, opts);
            per_query.insert(qid.clone(), measures.iter().map(|&m| judged.value(m)).collect());
        }
    }
    summarize(qrels, per_query, measures, opts)
}

/// Builds the evaluation from the per-query values of the queries in both run and qrels
/// (measures in [`order_measures`] order). The sums run in qrels order whoever computed the
/// values, so a streaming scorer prints the same digits as [`evaluate`].
pub fn summarize(qrels: &Qrels, per_query: BTreeMap<String, Vec<f64>>, measures: Vec<Measure>, opts: &EvalOptions) -> Evaluation {
    let mut sums = vec![0.0; measures.len()];
    let mut num_q = 0usize;
    for (qid, judgements) in &qrels.by_query {
        let missing;
        let values = match per_query.get(qid) {
            Some(values) => values,
            None if opts.average_over_all_qrels => {
                let judged = judge_ordered(judgements, std::iter::empty(), opts);
                missing = measures.iter().map(|&m| judged.value(m)).collect::<Vec<f64>>();
                &missing
            }
            None => continue,
        };
        num_q += 1;
        for (s, v) in sums.iter_mut().zip(values) {
            *s += v;
        }
    }
    let summary = measures
        .iter()
        .zip(&sums)
        .map(|(m, &s)| match m.kind {
            MeasureKind::NumQ => num_q as f64,
            // trec_eval 9.0.8's -c summary of num_rel (m_num_rel.c, te_calc_avg_num_rel) goes
            // back to the qrels file and counts every judgement with a grade above 0, whatever
            // `-l` says; per-query values and the summary without -c respect `-l`.
            MeasureKind::NumRel if opts.average_over_all_qrels => {
                qrels.by_query.values().flat_map(|j| j.values()).filter(|&&g| g > 0).count() as f64
            }
            k if k.is_count() => s,
            _ if num_q == 0 => 0.0,
            _ => s / num_q as f64,
        })
        .collect();
    Evaluation { measures, per_query, summary, num_q }
}

/// Every qrels query's value of `eval`'s measure number `index`, in the order of
/// `qrels.by_query`'s keys, as `-c` averages them: a query the run lacks scores what an empty
/// ranking scores.
pub fn complete_per_query(qrels: &Qrels, eval: &Evaluation, index: usize, opts: &EvalOptions) -> Vec<f64> {
    let measure = eval.measures[index];
    qrels
        .by_query
        .iter()
        .map(|(qid, judgements)| match eval.per_query.get(qid) {
            Some(values) => values[index],
            None => judge_ordered(judgements, std::iter::empty(), opts).value(measure),
        })
        .collect()
}

fn format_line(out: &mut String, m: Measure, qid: &str, v: f64) {
    use std::fmt::Write;
    let name = m.name();
    if m.kind.is_count() {
        let _ = writeln!(out, "{name:<22}\t{qid}\t{}", v.round() as i64);
    } else {
        let _ = writeln!(out, "{name:<22}\t{qid}\t{v:.4}");
    }
}

/// Formats an evaluation exactly as trec_eval prints it: `measure<TAB>qid|all<TAB>value`,
/// measure names padded to 22 characters, 4 decimals; per-query lines first with `-q`.
pub fn format_trec_eval(eval: &Evaluation, per_query: bool) -> String {
    let mut out = String::new();
    if per_query {
        for (qid, values) in &eval.per_query {
            for (m, &v) in eval.measures.iter().zip(values) {
                if m.kind != MeasureKind::NumQ {
                    format_line(&mut out, *m, qid, v);
                }
            }
        }
    }
    for (m, &v) in eval.measures.iter().zip(&eval.summary) {
        format_line(&mut out, *m, "all", v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_of(rows: &[(&str, &str, f64)]) -> Run {
        let mut run = Run::new();
        for (q, d, s) in rows {
            run.by_query.entry(q.to_string()).or_default().push(ScoredDoc { doc_id: d.to_string(), score: *s });
        }
        run
    }

    fn qrels_of(rows: &[(&str, &str, i32)]) -> Qrels {
        let mut q = Qrels::new();
        for (qid, d, g) in rows {
            q.insert(qid, d, *g);
        }
        q
    }

    fn ms(spec: &str) -> Vec<Measure> {
        spec.split_whitespace().flat_map(|s| Measure::parse_list(s).unwrap()).collect()
    }

    /// ir_measures' pytrec_eval vectors (tests/test_pytrec_eval.py), whose expected values
    /// trec_eval reproduces.
    #[test]
    fn ir_measures_vectors() {
        let qrels = qrels_of(&[
            ("q0", "D0", 1), ("q0", "D1", -1), ("q0", "D2", 0), ("q0", "D3", 2), ("q0", "D4", 0),
            ("q1", "D0", 1), ("q1", "D3", 2), ("q1", "D4", -1), ("q1", "D5", 0),
        ]);
        let run = run_of(&[
            ("q0", "D0", 0.8), ("q0", "D2", 0.7), ("q0", "D1", 0.3), ("q0", "D3", 0.4), ("q0", "D4", 0.1),
            ("q1", "D1", 0.8), ("q1", "D4", 0.7), ("q1", "D3", 0.3), ("q1", "D2", 0.4),
        ]);
        let e = evaluate(&qrels, &run, &ms("ndcg ndcg_cut.3 recip_rank recall.2 success.1"), &EvalOptions::default());
        let q0 = &e.per_query["q0"];
        let q1 = &e.per_query["q1"];
        // order: recip_rank, recall_2, ndcg, ndcg_cut_3, success_1
        let expect0 = [1.0, 0.5, 0.76018, 0.76018, 1.0];
        let expect1 = [0.25, 0.0, 0.32739, 0.0, 0.0];
        for i in 0..5 {
            assert!((q0[i] - expect0[i]).abs() < 1e-5, "{} q0 {} vs {}", e.measures[i], q0[i], expect0[i]);
            assert!((q1[i] - expect1[i]).abs() < 1e-5, "{} q1 {} vs {}", e.measures[i], q1[i], expect1[i]);
        }
    }

    #[test]
    fn ties_break_by_docno_descending() {
        let qrels = qrels_of(&[("1", "A", 1)]);
        let run = run_of(&[("1", "A", 1.0), ("1", "B", 1.0), ("1", "C", 1.0)]);
        let e = evaluate(&qrels, &run, &ms("recip_rank ndcg_cut.3"), &EvalOptions::default());
        assert!((e.summary[0] - 1.0 / 3.0).abs() < 1e-12);
        assert!((e.summary[1] - 0.5).abs() < 1e-12);
    }

    #[test]
    fn scores_compare_as_f32_like_trec_eval() {
        // 1.0 and 1.0 + 1e-12 are equal as f32, so the tie falls to the docno.
        let qrels = qrels_of(&[("1", "A", 1)]);
        let run = run_of(&[("1", "A", 1.0 + 1e-12), ("1", "B", 1.0)]);
        let e = evaluate(&qrels, &run, &ms("recip_rank"), &EvalOptions::default());
        assert_eq!(e.summary[0], 0.5);
    }

    #[test]
    fn missing_queries_count_only_with_c() {
        let qrels = qrels_of(&[("7", "A", 1), ("9", "Z", 1)]);
        let run = run_of(&[("7", "A", 1.0), ("8", "A", 1.0)]);
        let m = ms("recip_rank num_q num_rel");
        let plain = evaluate(&qrels, &run, &m, &EvalOptions::default());
        assert_eq!(plain.summary, vec![1.0, 1.0, 1.0]); // num_q, num_rel, recip_rank
        let all = evaluate(&qrels, &run, &m, &EvalOptions { average_over_all_qrels: true, ..Default::default() });
        assert_eq!(all.summary, vec![2.0, 2.0, 0.5]);
        assert_eq!(all.per_query.len(), 1);
    }

    #[test]
    fn relevance_level_changes_binary_measures_not_ndcg() {
        let qrels = qrels_of(&[("q", "a", 1), ("q", "b", 2)]);
        let run = run_of(&[("q", "a", 2.0), ("q", "b", 1.0)]);
        let m = ms("P.1 ndcg");
        let l1 = evaluate(&qrels, &run, &m, &EvalOptions::default());
        let l2 = evaluate(&qrels, &run, &m, &EvalOptions { relevance_level: 2, ..Default::default() });
        assert_eq!(l1.summary[0], 1.0);
        assert_eq!(l2.summary[0], 0.0);
        assert_eq!(l1.summary[1], l2.summary[1]);
    }

    /// trec_eval 9.0.8 under `-c -l 2`: per-query num_rel counts grades >= 2, the summary
    /// counts every grade > 0 of every qrels query (m_num_rel.c); without -c it sums.
    #[test]
    fn num_rel_summary_under_c_ignores_the_relevance_level() {
        let qrels = qrels_of(&[("q", "a", 1), ("q", "b", 2), ("q", "c", 0), ("r", "d", 1), ("r", "e", -1)]);
        let run = run_of(&[("q", "a", 2.0)]);
        let m = ms("num_rel");
        let level2 = EvalOptions { relevance_level: 2, ..Default::default() };
        let plain = evaluate(&qrels, &run, &m, &level2);
        assert_eq!((plain.per_query["q"][0], plain.summary[0]), (1.0, 1.0));
        let all = evaluate(&qrels, &run, &m, &EvalOptions { average_over_all_qrels: true, ..level2 });
        assert_eq!((all.per_query["q"][0], all.summary[0]), (1.0, 3.0));
    }

    #[test]
    fn output_format_matches_trec_eval() {
        let qrels = qrels_of(&[("1", "a", 1)]);
        let run = run_of(&[("1", "a", 1.0), ("1", "b", 0.5)]);
        let e = evaluate(&qrels, &run, &ms("P.5 num_ret"), &EvalOptions::default());
        assert_eq!(
            format_trec_eval(&e, true),
            "num_ret               \t1\t2\nP_5                   \t1\t0.2000\nnum_ret               \tall\t2\nP_5                   \tall\t0.2000\n"
        );
    }

    #[test]
    fn measure_names_parse_both_spellings() {
        assert_eq!("ndcg_cut_10".parse::<Measure>().unwrap(), Measure::ndcg_cut(10));
        assert_eq!("ndcg_cut.10".parse::<Measure>().unwrap(), Measure::ndcg_cut(10));
        assert_eq!(Measure::parse_list("recall.100,1000").unwrap().len(), 2);
        assert_eq!(Measure::parse_list("P").unwrap().len(), 9);
        assert!(Measure::parse_list("nope").is_err());
        assert!(Measure::parse_list("map.5").is_err());
        assert!(Measure::parse_list("P.0").is_err());
    }
}
