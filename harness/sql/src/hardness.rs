//! Spider's hardness levels (easy, medium, hard, extra), computed from the parsed `sql` field of
//! Spider's question files by the official evaluator's counting rules. The rules are kept as the
//! evaluator states them, including two of its quirks, so the levels match its reports:
//! a WHERE condition written with NOT counts as an aggregate, and in HAVING every AND/OR counts
//! as one (its `has_agg` tests the first element of each item, `!= 0`).
use serde_json::Value as Json;

const LIKE_OP: i64 = 9;

/// Python's `x != 0` for the JSON values that occur in parsed SQL.
fn nonzero(v: &Json) -> bool {
    match v {
        Json::Bool(b) => *b,
        Json::Number(n) => n.as_f64() != Some(0.0),
        // A string or null is never equal to 0 in Python.
        _ => true,
    }
}

fn list<'a>(v: &'a Json, key: &str) -> &'a [Json] {
    v.get(key).and_then(Json::as_array).map(Vec::as_slice).unwrap_or(&[])
}

fn even(items: &[Json]) -> impl Iterator<Item = &Json> {
    items.iter().step_by(2)
}

fn odd(items: &[Json]) -> impl Iterator<Item = &Json> {
    items.iter().skip(1).step_by(2)
}

fn first_nonzero(unit: &Json) -> bool {
    match unit {
        Json::Array(a) => a.first().is_some_and(nonzero),
        // Strings ('and'/'or') index to their first character, never equal to 0.
        Json::String(s) => !s.is_empty(),
        _ => false,
    }
}

fn conditions(sql: &Json) -> Vec<&Json> {
    let from_conds = sql.get("from").map(|f| list(f, "conds")).unwrap_or(&[]);
    [from_conds, list(sql, "where"), list(sql, "having")].into_iter().flat_map(even).collect()
}

fn connectives(sql: &Json) -> Vec<&Json> {
    let from_conds = sql.get("from").map(|f| list(f, "conds")).unwrap_or(&[]);
    [from_conds, list(sql, "where"), list(sql, "having")].into_iter().flat_map(odd).collect()
}

fn component1(sql: &Json) -> usize {
    let mut count = 0;
    count += usize::from(!list(sql, "where").is_empty());
    count += usize::from(!list(sql, "groupBy").is_empty());
    count += usize::from(!list(sql, "orderBy").is_empty());
    count += usize::from(sql.get("limit").is_some_and(|l| !l.is_null()));
    let tables = sql.get("from").map(|f| list(f, "table_units").len()).unwrap_or(0);
    count += tables.saturating_sub(1);
    count += connectives(sql).into_iter().filter(|t| t.as_str() == Some("or")).count();
    count += conditions(sql).into_iter().filter(|c| c.get(1).and_then(Json::as_i64) == Some(LIKE_OP)).count();
    count
}

fn component2(sql: &Json) -> usize {
    let nested_values = conditions(sql)
        .into_iter()
        .map(|c| usize::from(c.get(3).is_some_and(Json::is_object)) + usize::from(c.get(4).is_some_and(Json::is_object)))
        .sum::<usize>();
    let set_ops = ["intersect", "except", "union"].iter().filter(|k| sql.get(**k).is_some_and(|v| !v.is_null())).count();
    nested_values + set_ops
}

fn others(sql: &Json) -> usize {
    let select_items = sql.get("select").and_then(|s| s.get(1)).and_then(Json::as_array).map(Vec::as_slice).unwrap_or(&[]);
    let mut aggregates = select_items.iter().filter(|u| first_nonzero(u)).count();
    aggregates += even(list(sql, "where")).filter(|u| first_nonzero(u)).count();
    aggregates += list(sql, "groupBy").iter().filter(|u| first_nonzero(u)).count();
    let order = list(sql, "orderBy");
    if !order.is_empty() {
        let units = order.get(1).and_then(Json::as_array).map(Vec::as_slice).unwrap_or(&[]);
        let col_units = units.iter().filter_map(|u| u.get(1).filter(|c| !c.is_null()));
        let col_units2 = units.iter().filter_map(|u| u.get(2).filter(|c| !c.is_null()));
        aggregates += col_units.chain(col_units2).filter(|c| first_nonzero(c)).count();
    }
    aggregates += list(sql, "having").iter().filter(|u| first_nonzero(u)).count();
    usize::from(aggregates > 1)
        + usize::from(select_items.len() > 1)
        + usize::from(list(sql, "where").len() > 1)
        + usize::from(list(sql, "groupBy").len() > 1)
}

/// The official evaluator's `eval_hardness` of one parsed query.
pub fn spider_hardness(sql: &Json) -> &'static str {
    let (c1, c2, o) = (component1(sql), component2(sql), others(sql));
    if c1 <= 1 && o == 0 && c2 == 0 {
        "easy"
    } else if (o <= 2 && c1 <= 1 && c2 == 0) || (c1 <= 2 && o < 2 && c2 == 0) {
        "medium"
    } else if (o > 2 && c1 <= 2 && c2 == 0) || (2 < c1 && c1 <= 3 && o <= 2 && c2 == 0) || (c1 <= 1 && o == 0 && c2 <= 1) {
        "hard"
    } else {
        "extra"
    }
}
