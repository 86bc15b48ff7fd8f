//! The official Spider evaluator's rewrites of SQL text before execution (test-suite mode only;
//! DeepRetrieval executes the text as written).
use std::sync::LazyLock;

use regex::Regex;

/// `'> ='` → `'>='`, `'< ='` → `'<='`, `'! ='` → `'!='`: spacing some models emit.
pub fn join_split_operators(sql: &str) -> String {
    sql.replace("> =", ">=").replace("< =", "<=").replace("! =", "!=")
}

static CUR_YEAR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)YEAR\s*\(\s*CURDATE\s*\(\s*\)\s*\)\s*").expect("valid pattern"));

/// MySQL's `YEAR(CURDATE())` (and the spaces after it) becomes `2020`, as in the evaluator.
pub fn replace_current_year(sql: &str) -> String {
    CUR_YEAR.replace_all(sql, "2020").into_owned()
}

/// Whether the gold query fixes row order: the evaluator's `'order by' in gold.lower()`,
/// literally (a single space, anywhere in the text).
pub fn gold_orders_rows(gold: &str) -> bool {
    gold.to_lowercase().contains("order by")
}

/// Removes every `DISTINCT` token outside string literals, quoted identifiers and comments,
/// keeping all other text (including the spaces around it) as written — the evaluator joins
/// its token values back with no separator.
pub fn remove_distinct(sql: &str) -> String {
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let end = match c {
            b'\'' | b'"' | b'`' => quoted_end(bytes, i, c),
            b'[' => bytes[i..].iter().position(|&b| b == b']').map_or(bytes.len(), |p| i + p + 1),
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                bytes[i..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |p| i + p + 1)
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                sql[i + 2..].find("*/").map_or(bytes.len(), |p| i + 2 + p + 2)
            }
            _ if is_word_byte(c) => {
                let mut j = i;
                while j < bytes.len() && is_word_byte(bytes[j]) {
                    j += 1;
                }
                if sql[i..j].eq_ignore_ascii_case("distinct") {
                    i = j;
                    continue;
                }
                j
            }
            _ => {
                // One whole character (multi-byte UTF-8 included).
                i + sql[i..].chars().next().map_or(1, char::len_utf8)
            }
        };
        out.push_str(&sql[i..end]);
        i = end;
    }
    out
}

/// Word characters: ASCII alphanumerics, `_`, `$`, and any non-ASCII byte (letters of other
/// scripts belong to words, as `\w` does in Python).
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// End (exclusive) of a quoted run starting at `start`; a doubled quote is an escaped quote.
fn quoted_end(bytes: &[u8], start: usize, quote: u8) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_is_removed_as_a_token_only() {
        assert_eq!(remove_distinct("SELECT DISTINCT name FROM t"), "SELECT  name FROM t");
        assert_eq!(remove_distinct("SELECT count(distinct name) FROM t"), "SELECT count( name) FROM t");
        assert_eq!(remove_distinct("SELECT DISTINCT(name) FROM t"), "SELECT (name) FROM t");
        assert_eq!(remove_distinct("SELECT distinct_id FROM t"), "SELECT distinct_id FROM t");
        assert_eq!(remove_distinct("SELECT 'distinct' FROM t"), "SELECT 'distinct' FROM t");
        assert_eq!(remove_distinct("SELECT \"distinct\" FROM t -- distinct"), "SELECT \"distinct\" FROM t -- distinct");
        assert_eq!(remove_distinct("SELECT 'it''s distinct' , x"), "SELECT 'it''s distinct' , x");
        assert_eq!(remove_distinct("SELECT DISTINCT é FROM t"), "SELECT  é FROM t");
    }

    #[test]
    fn operators_and_year() {
        assert_eq!(join_split_operators("a > = 1 AND b ! = 2"), "a >= 1 AND b != 2");
        assert_eq!(replace_current_year("WHERE y < year( curdate() ) - 5"), "WHERE y < 2020- 5");
        assert!(gold_orders_rows("SELECT a FROM t ORDER BY a"));
        assert!(!gold_orders_rows("SELECT a FROM t ORDER  BY a"));
    }
}
