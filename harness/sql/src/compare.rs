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
    if gold.is_empty() && pred.is_empty() {
        return true;
    }
    if gold.len() != pred.len() {
        return false;
    }
    let n_cols = gold[0].len();
    if pred[0].len() != n_cols {
        return false;
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
        return false;
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
    search(&candidates, &mut perm, &mut used, &mut |perm: &[usize]| {
        let permuted = pred_keys.iter().map(|r| perm.iter().map(|&p| r[p].clone()).collect::<RowKey>());
        if order_matters {
            permuted.eq(gold_keys.iter().cloned())
        } else {
            bag_iter(permuted) == gold_bag
        }
    })
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

/// Depth-first over column permutations allowed by `candidates`; true when `accept` holds for one.
fn search(
    candidates: &[Vec<usize>],
    perm: &mut Vec<usize>,
    used: &mut [bool],
    accept: &mut dyn FnMut(&[usize]) -> bool,
) -> bool {
    let col = perm.len();
    if col == candidates.len() {
        return accept(perm);
    }
    for &p in &candidates[col] {
        if used[p] {
            continue;
        }
        used[p] = true;
        perm.push(p);
        let found = search(candidates, perm, used, accept);
        perm.pop();
        used[p] = false;
        if found {
            return true;
        }
    }
    false
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

    #[test]
    fn test_suite_empty_and_shape_rules() {
        assert!(test_suite_equal(&[], &[], true));
        assert!(!test_suite_equal(&rows(&[&[1]]), &[], false));
        assert!(!test_suite_equal(&rows(&[&[1]]), &rows(&[&[1, 1]]), false));
    }
}
