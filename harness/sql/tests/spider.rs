//! Execution accuracy and the sandbox on the vendored Spider dev databases.
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use harness_sql::data::{read_gold_file, read_prediction_file};
use harness_sql::{evaluate, render_schema, summarize, ExItem, ExMode, ExOptions, ExecFailure, ExecLimits, Sandbox, TextDecoding, Verdict};
use sha2::{Digest, Sha256};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn spider() -> PathBuf {
    repo().join("datasets/data/spider")
}

fn db_dir() -> PathBuf {
    spider().join("database")
}

fn options(mode: ExMode) -> ExOptions {
    ExOptions { mode, threads: 2, ..Default::default() }
}

fn gold_items() -> Vec<ExItem> {
    read_gold_file(&spider().join("dev_gold.sql"))
        .unwrap()
        .into_iter()
        .map(|q| ExItem { index: q.index, db_id: q.db_id, pred_sql: q.gold_sql.clone(), gold_sql: q.gold_sql, level: None })
        .collect()
}

#[test]
fn every_runnable_dev_gold_query_matches_itself_in_both_modes() {
    let items = gold_items();
    assert_eq!(items.len(), 1034);
    for mode in [ExMode::Dr, ExMode::TestSuite] {
        let results = evaluate(&items, &db_dir(), &options(mode), &|| {}).unwrap();
        let all = summarize(&results, &[]).pop().unwrap();
        assert_eq!((all.questions, all.scored, all.correct), (1034, 972, 972), "{mode:?}");
        assert_eq!((all.not_runnable, all.gold_failed), (62, 0), "{mode:?}");
        for r in &results {
            match &r.verdict {
                Verdict::NotRunnable(why) => {
                    assert_eq!(r.db_id, "wta_1");
                    assert!(why.contains("database wta_1 is missing"), "{why}");
                }
                v => assert_eq!(v, &Verdict::Correct, "question {} ({})", r.index, r.db_id),
            }
        }
    }
}

#[test]
fn verdicts_equal_the_reference_implementations_case_by_case() {
    let dir = repo().join("tests/golden/spider_exec");
    let golds = read_gold_file(&dir.join("gold.sql.gz")).unwrap();
    let preds = read_prediction_file(&dir.join("pred.sql.gz"), golds.len()).unwrap();
    let expected: Vec<(String, bool, bool)> = std::fs::read_to_string(dir.join("expected.tsv"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[2].to_string(), f[3] == "1", f[4] == "1")
        })
        .collect();
    assert_eq!(expected.len(), golds.len());
    let items: Vec<ExItem> = golds
        .into_iter()
        .zip(preds)
        .map(|(g, p)| ExItem { index: g.index, db_id: g.db_id, gold_sql: g.gold_sql, pred_sql: p, level: None })
        .collect();
    for (mode, column) in [(ExMode::TestSuite, 1), (ExMode::Dr, 2)] {
        let results = evaluate(&items, &db_dir(), &options(mode), &|| {}).unwrap();
        let mut disagreements = Vec::new();
        for (r, (kind, ts, dr)) in results.iter().zip(&expected) {
            let want = if column == 1 { *ts } else { *dr };
            assert!(r.verdict.scored(), "case {} not scored: {:?}", r.index, r.verdict);
            if (r.verdict == Verdict::Correct) != want {
                disagreements.push(format!("case {} ({kind}): want {want}, got {:?}", r.index, r.verdict));
            }
        }
        assert!(disagreements.is_empty(), "{mode:?}: {} disagreements, first: {:?}", disagreements.len(), &disagreements[..disagreements.len().min(5)]);
        // The variants must exercise both outcomes, or the comparison proves little.
        let correct = results.iter().filter(|r| r.verdict == Verdict::Correct).count();
        assert!(correct > 1000 && correct < results.len() - 1000, "{mode:?}: {correct} correct");
    }
    // 12,918 executions later, every database is byte-identical to its recorded checksum.
    for line in std::fs::read_to_string(db_dir().join("SHA256SUMS")).unwrap().lines() {
        let (sum, rel) = line.split_once("  ").unwrap();
        assert_eq!(sha256(&db_dir().join(rel)), sum, "{rel} changed");
    }
}

fn sha256(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

#[test]
fn hostile_sql_is_refused_or_stopped_and_the_file_is_unchanged() {
    let path = db_dir().join("concert_singer/concert_singer.sqlite");
    let before = sha256(&path);
    let limits = ExecLimits { timeout: Duration::from_millis(500), max_rows: 100_000, ..Default::default() };
    let db = Sandbox::open(&path, limits).unwrap();
    let denied = [
        "INSERT INTO singer (Singer_ID, Name) VALUES (99, 'x')",
        "UPDATE singer SET Name = 'x'",
        "DELETE FROM singer",
        "DROP TABLE singer",
        "CREATE TABLE evil (a)",
        "CREATE TEMP TABLE evil (a)",
        "ALTER TABLE singer ADD COLUMN evil",
        "ATTACH DATABASE '/tmp/evil.sqlite' AS evil",
        "PRAGMA writable_schema = ON",
        "PRAGMA journal_mode = DELETE",
        "BEGIN",
        "SELECT load_extension('/tmp/evil')",
        "VACUUM",
    ];
    for sql in denied {
        match db.execute(sql, TextDecoding::Strict) {
            Err(ExecFailure::Denied(_)) | Err(ExecFailure::Sqlite(_)) => {}
            other => panic!("{sql}: {other:?}"),
        }
    }
    // Writes name what was refused.
    let msg = db.execute("DELETE FROM singer", TextDecoding::Strict).unwrap_err().to_string();
    assert!(msg.contains("DELETE from singer"), "{msg}");
    // Introspection stays allowed.
    assert!(db.execute("PRAGMA table_info(singer)", TextDecoding::Strict).is_ok());

    let endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
    let start = Instant::now();
    assert_eq!(db.execute(endless, TextDecoding::Strict), Err(ExecFailure::Timeout(limits.timeout)));
    assert!(start.elapsed() < limits.timeout + Duration::from_millis(500), "{:?}", start.elapsed());

    let cross = "SELECT * FROM singer a, singer b, singer c, singer d, singer e, singer f, singer g";
    match db.execute(cross, TextDecoding::Strict) {
        Err(ExecFailure::TooManyRows(100_000)) | Err(ExecFailure::Timeout(_)) => {}
        other => panic!("cross join: {:?}", other.map(|r| r.rows.len())),
    }
    // 6^14 combinations: far past any limit.
    let counted_cross = format!("SELECT count(*) FROM {}", (0..14).map(|i| format!("singer t{i}")).collect::<Vec<_>>().join(", "));
    let start = Instant::now();
    assert_eq!(db.execute(&counted_cross, TextDecoding::Strict), Err(ExecFailure::Timeout(limits.timeout)));
    assert!(start.elapsed() < limits.timeout + Duration::from_millis(500));

    let huge_literal = format!("SELECT '{}'", "x".repeat(10 << 20));
    let err = db.execute(&huge_literal, TextDecoding::Strict).unwrap_err();
    assert!(err.to_string().contains("limit"), "{err}");
    let huge_value = "SELECT length(zeroblob(1000000000))";
    assert!(matches!(db.execute(huge_value, TextDecoding::Strict), Err(ExecFailure::Sqlite(_))));
    // Several statements in one string are refused, as Python's cursor.execute does; 12,000
    // of them on one line overflowed the stack (rusqlite checks the rest recursively).
    let one_at_a_time = Err(ExecFailure::Sqlite("You can only execute one statement at a time.".into()));
    assert_eq!(db.execute("SELECT 1; DELETE FROM singer", TextDecoding::Strict), one_at_a_time);
    assert_eq!(db.execute(&"SELECT 1;".repeat(12_000), TextDecoding::Strict), one_at_a_time);
    assert_eq!(db.execute("SELECT 1;;", TextDecoding::Strict), one_at_a_time);
    // A trailing semicolon, whitespace and comments are not a second statement.
    assert!(db.execute("SELECT 1; -- done\n /* really */ ", TextDecoding::Strict).is_ok());
    // A NUL ended the statement silently: the rest was never seen, and this was scored correct.
    assert_eq!(
        db.execute("SELECT count(*) FROM singer\0; DROP TABLE singer", TextDecoding::Strict),
        Err(ExecFailure::Sqlite("the query contains a null character".into()))
    );
    // Result memory is capped: 300 blobs of 16 MB reached 4.8 GB before.
    let blobs = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 300) SELECT zeroblob(16000000) FROM c";
    assert_eq!(db.execute(blobs, TextDecoding::Strict), Err(ExecFailure::TooLarge(limits.max_result_bytes)));
    drop(db);
    assert_eq!(sha256(&path), before, "the database file changed");
}

#[test]
fn a_missing_or_damaged_database_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let err = Sandbox::open(&tmp.path().join("none.sqlite"), ExecLimits::default()).err().unwrap();
    assert!(err.to_string().contains("no such file"), "{err}");
    let junk = tmp.path().join("junk.sqlite");
    std::fs::write(&junk, b"this is not a database, just text long enough to have a header.......").unwrap();
    let err = Sandbox::open(&junk, ExecLimits::default()).err().unwrap();
    assert!(err.to_string().contains("junk.sqlite"), "{err}");
}

#[test]
fn schema_text_has_create_statements_foreign_keys_and_samples() {
    let db = Sandbox::open(&db_dir().join("concert_singer/concert_singer.sqlite"), ExecLimits::default()).unwrap();
    let schema = render_schema(&db, 0).unwrap();
    assert_eq!(schema.matches("CREATE TABLE").count(), 4, "{schema}");
    assert!(schema.contains("FOREIGN KEY"), "{schema}");
    assert!(!schema.contains("example rows"));
    let with_rows = render_schema(&db, 2).unwrap();
    assert!(with_rows.contains("2 example rows from singer"), "{with_rows}");
}

#[test]
fn question_files_load_with_their_fields() {
    let dev = harness_sql::data::load_spider_questions(&spider().join("dev.json.gz")).unwrap();
    assert_eq!(dev.len(), 1034);
    assert_eq!(dev.iter().filter(|q| q.db_id == "wta_1").count(), 62);
    let gold = read_gold_file(&spider().join("dev_gold.sql")).unwrap();
    assert!(dev.iter().zip(&gold).all(|(q, g)| q.gold_sql.trim() == g.gold_sql && q.db_id == g.db_id));
    let train = harness_sql::data::load_spider_questions(&spider().join("train_spider.min.json.gz")).unwrap();
    assert_eq!(train.len(), 7000);

    let bird = harness_sql::data::load_bird_questions(&repo().join("datasets/data/bird/dev.json.gz")).unwrap();
    assert_eq!(bird.len(), 1534);
    let count = |level: &str| bird.iter().filter(|q| q.level.as_deref() == Some(level)).count();
    assert_eq!((count("simple"), count("moderate"), count("challenging")), (925, 464, 145));
    assert_eq!(bird.iter().filter(|q| q.evidence.is_some()).count(), 1386);
    let bird_gold = read_gold_file(&repo().join("datasets/data/bird/dev_gold.sql.gz")).unwrap();
    assert!(bird.iter().zip(&bird_gold).all(|(q, g)| q.db_id == g.db_id));
}

#[test]
fn malformed_question_and_gold_files_name_the_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let bad_json = tmp.path().join("dev.json");
    std::fs::write(&bad_json, "[\n{\"db_id\": \"x\",\n \"query\": 3}\n]").unwrap();
    let err = harness_sql::data::load_spider_questions(&bad_json).unwrap_err().to_string();
    assert!(err.contains("dev.json:3:"), "{err}");
    let bad_gold = tmp.path().join("gold.sql");
    std::fs::write(&bad_gold, "SELECT 1\tdb\nSELECT 2 without a db id\n").unwrap();
    let err = read_gold_file(&bad_gold).unwrap_err().to_string();
    assert!(err.contains("gold.sql:2:") && err.contains("SQL<TAB>db_id"), "{err}");
}

#[test]
fn train_databases_unpack_once_verified_and_reject_a_damaged_archive() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("train");
    let archive = spider().join("train_databases.tar.gz");
    let sums = spider().join("train_databases.SHA256SUMS");
    harness_sql::data::unpack_databases(&archive, &sums, &dest).unwrap();
    assert!(dest.join("activity_1/activity_1.sqlite").is_file());
    assert_eq!(std::fs::read_dir(&dest).unwrap().filter(|e| e.as_ref().unwrap().path().is_dir()).count(), 144);
    // Second call: nothing to do.
    harness_sql::data::unpack_databases(&archive, &sums, &dest).unwrap();

    let bad_sums = tmp.path().join("bad.SHA256SUMS");
    let text = std::fs::read_to_string(&sums).unwrap();
    std::fs::write(&bad_sums, text.replacen(&text[..64], &"0".repeat(64), 1)).unwrap();
    let other = tmp.path().join("other");
    let err = harness_sql::data::unpack_databases(&archive, &bad_sums, &other).unwrap_err().to_string();
    assert!(err.contains("expected 0000"), "{err}");
    assert!(!other.exists(), "a failed unpack left {}", other.display());
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 2, "staging folder left behind");
}

#[test]
fn hardness_levels_equal_the_official_evaluators() {
    let dev = harness_sql::data::load_spider_questions(&spider().join("dev.json.gz")).unwrap();
    let expected = std::fs::read_to_string(repo().join("tests/golden/spider_exec/dev_hardness.tsv")).unwrap();
    let mut counts = std::collections::BTreeMap::new();
    for (q, line) in dev.iter().zip(expected.lines()) {
        let (index, level) = line.split_once('\t').unwrap();
        assert_eq!(index, q.index.to_string());
        assert_eq!(q.level.as_deref(), Some(level), "question {index}");
        *counts.entry(level).or_insert(0) += 1;
    }
    // The published Spider dev counts.
    assert_eq!(counts.into_iter().collect::<Vec<_>>(), [("easy", 248), ("extra", 166), ("hard", 174), ("medium", 446)]);
}

/// The training reward's judge: the same verdicts as `evaluate`, one at a time, each
/// (database, gold, prediction) executed once.
#[test]
fn judge_gives_evaluates_verdicts_and_remembers_them() {
    let mut judge = harness_sql::Judge::new(&db_dir(), options(ExMode::Dr)).unwrap();
    let gold = "SELECT count(*) FROM singer";
    assert_eq!(judge.verdict("concert_singer", gold, "SELECT count(*) FROM singer").unwrap(), Verdict::Correct);
    assert_eq!(judge.verdict("concert_singer", gold, "SELECT name FROM singer").unwrap(), Verdict::Mismatch);
    assert!(matches!(judge.verdict("concert_singer", gold, "SELEC count(*)").unwrap(), Verdict::PredFailed(_)));
    assert!(matches!(judge.verdict("concert_singer", gold, "").unwrap(), Verdict::PredFailed(_)));
    assert!(matches!(judge.verdict("concert_singer", gold, "DELETE FROM singer").unwrap(), Verdict::PredFailed(_)));
    assert!(matches!(judge.verdict("wta_1", "SELECT 1", "SELECT 1").unwrap(), Verdict::NotRunnable(_)));
    assert_eq!(judge.cache_hits, 0);
    assert_eq!(judge.verdict("concert_singer", gold, "SELECT name FROM singer").unwrap(), Verdict::Mismatch);
    assert_eq!(judge.cache_hits, 1);
    // The same pairs through `evaluate` agree.
    let preds = ["SELECT count(*) FROM singer", "SELECT name FROM singer", "SELEC count(*)"];
    let items: Vec<ExItem> = preds.iter().enumerate().map(|(i, p)| ExItem { index: i, db_id: "concert_singer".into(), gold_sql: gold.into(), pred_sql: p.to_string(), level: None }).collect();
    let batch = evaluate(&items, &db_dir(), &options(ExMode::Dr), &|| {}).unwrap();
    for (item, r) in items.iter().zip(batch) {
        assert_eq!(judge.verdict("concert_singer", gold, &item.pred_sql).unwrap(), r.verdict);
    }
}
