//! The paper's own NDCG (DeepRetrieval `src/Lucene/utils.py`), reproduced for comparison
//! only. It is **not** trec_eval's nDCG and never appears in a standard table:
//!
//! * graded targets: the ideal DCG is the DCG of the qrels documents *in qrels-file order*
//!   (first k rows), not sorted by grade, so the value can exceed 1;
//! * single-target mode (the paper's SciFact evaluation): every qrels row is scored on its
//!   own with one binary target, and a query with m relevant documents counts m times. The
//!   repo keys targets by query text, so the rows of one query are all scored against the
//!   query's last target; that quirk is reproduced by [`single_target_rows`].
use crate::types::Qrels;

fn discount(rank0: usize) -> f64 {
    ((rank0 + 2) as f64).log2()
}

/// The paper's NDCG@k of `ranked` for targets given as qrels rows in file order.
pub fn ndcg_graded(ranked: &[&str], rows_in_file_order: &[(String, i32)], k: usize) -> f64 {
    let gain = |doc: &str| -> f64 {
        // The repo builds a dict from the rows, so the last row of a doc gives its gain.
        rows_in_file_order.iter().rev().find(|(d, _)| d == doc).map_or(0.0, |(_, g)| *g as f64)
    };
    let dcg = ranked.iter().take(k).enumerate().fold(0.0, |acc, (i, d)| acc + gain(d) / discount(i));
    let idcg = rows_in_file_order.iter().take(k).enumerate().fold(0.0, |acc, (i, (d, _))| acc + gain(d) / discount(i));
    if idcg == 0.0 {
        0.0
    } else {
        dcg / idcg
    }
}

/// The paper's single-target NDCG@k: 1/log2(rank+1) if `target` is in the top k, else 0.
pub fn ndcg_single_target(ranked: &[&str], target: &str, k: usize) -> f64 {
    ranked.iter().take(k).position(|d| *d == target).map_or(0.0, |i| 1.0 / discount(i))
}

/// The (query id, target doc) pairs the paper's SciFact evaluation scores: one per qrels row,
/// each carrying its query's *last* target in file order.
pub fn single_target_rows(qrels: &Qrels) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (qid, rows) in &qrels.rows_in_file_order {
        if let Some((last, _)) = rows.last() {
            out.extend(rows.iter().map(|_| (qid.clone(), last.clone())));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// anchors.md Appendix A.5: graded order (a:1, b:2), retrieved [b, a] gives 1.1632.
    #[test]
    fn graded_ideal_in_file_order_can_exceed_one() {
        let rows = vec![("a".to_string(), 1), ("b".to_string(), 2)];
        let v = ndcg_graded(&["b", "a"], &rows, 10);
        assert!((v - 1.1632).abs() < 1e-4, "{v}");
    }

    /// anchors.md Appendix A.5: two relevant docs, retrieved [d2, x, d1]: the paper's mean
    /// over rows is 1.0 (both rows use the last target d2) where trec_eval gives 0.9197.
    #[test]
    fn single_target_rows_use_last_target() {
        let mut q = Qrels::new();
        q.insert("1", "d1", 1);
        q.insert("1", "d2", 1);
        let rows = single_target_rows(&q);
        let ranked = ["d2", "x", "d1"];
        let mean: f64 = rows.iter().map(|(_, t)| ndcg_single_target(&ranked, t, 10)).sum::<f64>() / rows.len() as f64;
        assert_eq!(rows.len(), 2);
        assert!((mean - 1.0).abs() < 1e-12);
    }
}
