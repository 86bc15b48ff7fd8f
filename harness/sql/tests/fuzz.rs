//! Property tests (proptest: cargo-fuzz needs a nightly toolchain) of what reads model-written
//! SQL: the official evaluator's text rewrites and the sandbox never panic, whatever the text,
//! and no text changes the database file.
use std::path::Path;
use std::time::Duration;

use harness_sql::preprocess::{gold_orders_rows, join_split_operators, remove_distinct, replace_current_year};
use harness_sql::{ExecLimits, Sandbox, TextDecoding};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

/// SQL-like text: keywords, names, literals, operators, separators and stray bytes.
fn sql_like() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("SELECT".to_string()), Just("FROM".to_string()), Just("WHERE".to_string()), Just("DISTINCT".to_string()),
        Just("ORDER BY".to_string()), Just("UNION".to_string()), Just("singer".to_string()), Just("name".to_string()),
        Just("count(*)".to_string()), Just(";".to_string()), Just("'".to_string()), Just("\"".to_string()),
        Just("! =".to_string()), Just("> =".to_string()), Just("YEAR(CURDATE())".to_string()), Just("--".to_string()),
        Just("/*".to_string()), Just("*/".to_string()), Just("\0".to_string()), Just("(".to_string()), Just(")".to_string()),
        Just("DELETE FROM singer".to_string()), Just("zeroblob(100000)".to_string()),
        "[0-9]{1,4}", "[a-z_]{1,8}", "[ -~]{0,6}", "\\PC{0,4}",
    ];
    prop::collection::vec(token, 0..25).prop_map(|t| t.join(" "))
}

fn sha256(path: &Path) -> String {
    format!("{:x}", Sha256::digest(std::fs::read(path).unwrap()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn text_rewrites_never_panic(sql in sql_like()) {
        let joined = join_split_operators(&sql);
        let _ = remove_distinct(&joined);
        let _ = replace_current_year(&joined);
        let _ = gold_orders_rows(&sql);
    }

    /// Any text through the sandbox: rows or a failure, quickly, and the file unchanged.
    #[test]
    fn the_sandbox_answers_anything_and_changes_nothing(sql in sql_like()) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/data/spider/database/concert_singer/concert_singer.sqlite");
        let before = sha256(&path);
        let limits = ExecLimits { timeout: Duration::from_millis(200), max_rows: 10_000, max_result_bytes: 8 << 20, ..Default::default() };
        let db = Sandbox::open(&path, limits).unwrap();
        let _ = db.execute(&sql, TextDecoding::Strict);
        let _ = db.execute(&sql, TextDecoding::DropInvalid);
        drop(db);
        prop_assert_eq!(sha256(&path), before);
    }
}
