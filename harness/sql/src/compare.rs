//! Denotation comparison in the two modes the harness reports.
//!
//! * `dr`: DeepRetrieval's `set(pred_rows) == set(gold_rows)` — duplicates and order ignored,
//!   columns compared in place.
//! * `test-suite`: the official Spider evaluator's `result_eq` — bag (multiset) equality, order
//!   compared only when the gold query orders, and any column permutation accepted.
use std::collections::{HashMap, HashSet};

use crate::value::{row_key, RowKey, Value, ValueKey};

/// DeepRetrieval's set comparison.
pub fn set_equal(gold: &[Vec<Value>], pred: &[Vec<Value>]) -> bool {
    let g: HashSet<RowKey> = gold.iter().map(|r| row_key(r)).collect();
    let p: HashSet<RowKey> = pred.iter().map(|r| row_key(r)).collect();
    g == p
}

/// A row with its values put in the evaluator's canonical order (`unorder_row`).
fn unordered_row(row: &[Value]) -> RowKey {
    let mut keyed: Vec<(String, &Value)> = row.iter().map(|v| (v.python_sort_key(), v)).collect();
    // Python's sort is stable; ties on the key keep input order.
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed.into_iter().map(|(_, v)| v.key()).collect()
}

/// The official evaluator's `result_eq(result1=gold, result2=pred, order_matters)`.
pub fn test_suite_equal(gold: &[Vec<Value>], pred: &[Vec<Value>], order_matters: bool) -> bool {
    test_suite_equal_until(gold, pred, order_matters, None).unwrap_or(false)
}

/// [`test_suite_equal`] that gives up at `deadline` (`None`): the column-permutation search
/// can take factorial time on wide results whose columns share values.
pub fn test_suite_equal_until(gold: &[Vec<Value>], pred: &[Vec<Value>], order_matters: bool, deadline: Option<std::time::Instant>) -> Option<bool> {
    if gold.is_empty() && pred.is_empty() {
        return Some(true);
    }
    if gold.len() != pred.len() {
        return Some(false);
    }
    let n_cols = gold[0].len();
    if pred[0].len() != n_cols {
        return Some(false);
    }
    // Quick rejection: per-row bags of values must agree (as lists when order matters, as sets
    // otherwise).
    let g_unordered: Vec<RowKey> = gold.iter().map(|r| unordered_row(r)).collect();
    let p_unordered: Vec<RowKey> = pred.iter().map(|r| unordered_row(r)).collect();
    let passes_quick = if order_matters {
        g_unordered == p_unordered
    } else {
        g_unordered.iter().collect::<HashSet<_>>() == p_unordered.iter().collect::<HashSet<_>>()
    };
    if !passes_quick {
        return Some(false);
    }

    let gold_keys: Vec<RowKey> = gold.iter().map(|r| row_key(r)).collect();
    let pred_keys: Vec<RowKey> = pred.iter().map(|r| row_key(r)).collect();
    // candidates[g] = pred columns whose every value occurs in gold column g. The official code
    // prunes with 20 sampled rows; pruning with all rows removes only permutations that cannot
    // match, so the verdict is the same and deterministic.
    let gold_col_sets: Vec<HashSet<&ValueKey>> =
        (0..n_cols).map(|c| gold_keys.iter().map(|r| &r[c]).collect()).collect();
    let candidates: Vec<Vec<usize>> = (0..n_cols)
        .map(|g| (0..n_cols).filter(|&p| pred_keys.iter().all(|r| gold_col_sets[g].contains(&r[p]))).collect())
        .collect();
    let gold_bag = if order_matters { HashMap::new() } else { bag(&gold_keys) };
    let mut perm = Vec::with_capacity(n_cols);
    let mut used = vec![false; n_cols];
    let expired = || deadline.is_some_and(|d| std::time::Instant::now() > d);
    let found = search(&candidates, &mut perm, &mut used, &expired, &mut |perm: &[usize]| {
        let permuted = pred_keys.iter().map(|r| perm.iter().map(|&p| r[p].clone()).collect::<RowKey>());
        if order_matters {
            permuted.eq(gold_keys.iter().cloned())
        } else {
            bag_iter(permuted) == gold_bag
        }
    });
    match found {
        Search::Found => Some(true),
        Search::Exhausted => Some(false),
        Search::Expired => None,
    }
}

/// How a permutation search ended.
#[derive(PartialEq)]
enum Search {
    Found,
    Exhausted,
    Expired,
}

fn bag(rows: &[RowKey]) -> HashMap<RowKey, usize> {
    bag_iter(rows.iter().cloned())
}

fn bag_iter(rows: impl Iterator<Item = RowKey>) -> HashMap<RowKey, usize> {
    let mut counts = HashMap::new();
    for r in rows {
        *counts.entry(r).or_insert(0) += 1;
    }
    counts
}

/// Depth-first over column permutations allowed by `candidates`, until `accept` holds for one,
/// none is left, or `expired` says so (asked at every node).
fn search(
    candidates: &[Vec<usize>],
    perm: &mut Vec<usize>,
    used: &mut [bool],
    expired: &dyn Fn() -> bool,
    accept: &mut dyn FnMut(&[usize]) -> bool,
) -> Search {
    if expired() {
        return Search::Expired;
    }
    let col = perm.len();
    if col == candidates.len() {
        return if accept(perm) { Search::Found } else { Search::Exhausted };
    }
    for &p in &candidates[col] {
        if used[p] {
            continue;
        }
        used[p] = true;
        perm.push(p);
        let outcome = search(candidates, perm, used, expired, accept);
        perm.pop();
        used[p] = false;
        if outcome != Search::Exhausted {
            return outcome;
        }
    }
    Search::Exhausted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(data: &[&[i64]]) -> Vec<Vec<Value>> {
        data.iter().map(|r| r.iter().map(|&v| Value::Integer(v)).collect()).collect()
    }

    #[test]
    fn set_mode_ignores_order_and_duplicates() {
        assert!(set_equal(&rows(&[&[1], &[2]]), &rows(&[&[2], &[1], &[1]])));
        assert!(!set_equal(&rows(&[&[1, 2]]), &rows(&[&[2, 1]])));
        assert!(set_equal(&[vec![Value::Integer(1)]], &[vec![Value::Real(1.0)]]));
    }

    #[test]
    fn test_suite_mode_is_bag_semantics() {
        assert!(!test_suite_equal(&rows(&[&[1], &[2]]), &rows(&[&[2], &[1], &[1]]), false));
        assert!(!test_suite_equal(&rows(&[&[1], &[1], &[2]]), &rows(&[&[1], &[2], &[2]]), false));
        assert!(test_suite_equal(&rows(&[&[1], &[2]]), &rows(&[&[2], &[1]]), false));
        assert!(!test_suite_equal(&rows(&[&[1], &[2]]), &rows(&[&[2], &[1]]), true));
    }

    #[test]
    fn test_suite_mode_accepts_column_permutations() {
        assert!(test_suite_equal(&rows(&[&[1, 2], &[3, 4]]), &rows(&[&[2, 1], &[4, 3]]), true));
        // Per-row bags agree but no single column permutation works.
        assert!(!test_suite_equal(&rows(&[&[1, 2], &[3, 4]]), &rows(&[&[2, 1], &[3, 4]]), false));
        let wide_g = rows(&[&[1, 2, 3, 4, 5], &[6, 7, 8, 9, 10]]);
        let wide_p = rows(&[&[5, 4, 3, 2, 1], &[10, 9, 8, 7, 6]]);
        assert!(test_suite_equal(&wide_g, &wide_p, false));
    }

    /// Ten columns sharing their values: every permutation is a candidate (10! of them) and
    /// none matches; the search stops at its deadline instead of running for seconds.
    #[test]
    fn permutation_search_stops_at_its_deadline() {
        let gold: Vec<Vec<Value>> = (0..2).map(|r| (0..10).map(|c| Value::Integer(((r + c) % 2) as i64)).collect()).collect();
        let mut pred = gold.clone();
        pred.swap(0, 1);
        pred[0].swap(0, 1);
        let start = std::time::Instant::now();
        let deadline = start + std::time::Duration::from_millis(50);
        // 10! candidate permutations take seconds on any machine: 50 ms is always too short.
        assert_eq!(test_suite_equal_until(&gold, &pred, true, Some(deadline)), None);
        assert!(start.elapsed() < std::time::Duration::from_secs(2), "{:?}", start.elapsed());
    }

    #[test]
    fn test_suite_empty_and_shape_rules() {
        assert!(test_suite_equal(&[], &[], true));
        assert!(!test_suite_equal(&rows(&[&[1]]), &[], false));
        assert!(!test_suite_equal(&rows(&[&[1]]), &rows(&[&[1, 1]]), false));
    }
}
