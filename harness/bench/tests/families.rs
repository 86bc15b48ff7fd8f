//! In-process tests of harness-bench: one cell of each task family on the vendored data,
//! compared with the committed reference table (the same comparison `harness regress` makes),
//! and the reproduce path returning its tables.
use std::path::{Path, PathBuf};

use harness_bench::regress::{regress, RegressJob};
use harness_bench::reproduce::reproduce;
use harness_bench::{run_cell, Bench, CellSpec, Invocation, Silent, Workspace, WorkspaceSettings};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn workspace(cache: &Path) -> Workspace {
    let settings = WorkspaceSettings { search_from: root(), cache: Some(cache.to_path_buf()), ..Default::default() };
    Workspace::locate(&settings).expect("the checkout is a workspace")
}

/// Runs the regress check `name` in process; every metric must equal its reference.
fn check(name: &str, comparisons: usize) {
    let tmp = tempfile::tempdir().unwrap();
    let bench = Bench::new(workspace(&tmp.path().join("cache")), Invocation::default(), &Silent).unwrap();
    let job = RegressJob { only: Some(name.into()), out: Some(tmp.path().join("out")), ..Default::default() };
    let report = regress(&bench, &job).unwrap();
    assert_eq!(report.failed, 0, "{}", report.table);
    assert_eq!(report.compared, comparisons, "{}", report.table);
}

#[test]
fn classic_ir_cell_equals_its_reference() {
    // nDCG@10, R@100, R@1000, MAP, queries.
    check("scifact-bm25-flat-pyserini", 5);
}

#[test]
fn literature_cell_equals_its_reference() {
    check("literature-offline-original", 3);
}

#[test]
fn evidence_seeking_cell_equals_its_reference() {
    check("squad-paragraphs-hit", 5);
}

#[test]
fn sql_cell_equals_its_reference() {
    check("spider-dev-gold-self-check", 3);
}

/// A `sql-eval` check: the official evaluator's 3,098 correct of 6,459 golden pairs.
#[test]
fn sql_eval_check_equals_the_official_verdict_counts() {
    // scored, correct, not_runnable, gold_failed, execution_accuracy, queries.
    check("spider-exec-goldens-official", 6);
    let reference = std::fs::read_to_string(root().join("results/reference/spider-exec-goldens-test-suite.csv")).unwrap();
    let expected = std::fs::read_to_string(root().join("tests/golden/spider_exec/expected.tsv")).unwrap();
    let official: usize = expected.lines().skip(1).filter(|l| l.split('\t').nth(3) == Some("1")).count();
    assert_eq!(official, 3098);
    assert!(reference.lines().nth(1).unwrap().contains(",3098.0,"), "{reference}");
}

/// `limit`: the first N queries in file order, averaged over those alone (their qrels only).
#[test]
fn a_limited_cell_scores_its_first_queries_only() {
    let tmp = tempfile::tempdir().unwrap();
    let bench = Bench::new(workspace(&tmp.path().join("cache")), Invocation::default(), &Silent).unwrap();
    let spec = CellSpec { dataset: "scifact".into(), limit: Some(7), measures: vec!["recall.100".into()], out: Some(tmp.path().join("l")), ..Default::default() };
    let outcome = run_cell(&bench, &spec).unwrap();
    assert_eq!(outcome.row.num_queries, 7);
    let run = std::fs::read_to_string(tmp.path().join("l/run.trec")).unwrap();
    let queries: std::collections::BTreeSet<&str> = run.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(queries.len(), 7);
    // The same 7 queries scored from the full run give the same mean.
    let full = run_cell(&bench, &CellSpec { limit: None, out: Some(tmp.path().join("f")), ..spec.clone() }).unwrap();
    let per_query = full.scores.unwrap();
    let mean: f64 = per_query.queries.iter().zip(&per_query.measures[0].1).filter(|(q, _)| queries.contains(q.as_str())).map(|(_, v)| v).sum::<f64>() / 7.0;
    assert!((outcome.row.metrics[0].1 - mean).abs() < 1e-12, "{} vs {mean}", outcome.row.metrics[0].1);
}

#[test]
fn a_cell_returns_its_row_notes_and_files() {
    let tmp = tempfile::tempdir().unwrap();
    let bench = Bench::new(workspace(&tmp.path().join("cache")), Invocation::default(), &Silent).unwrap();
    let spec = CellSpec {
        dataset: "scifact".into(),
        measures: vec!["recall.100".into(), "ndcg_cut.10".into(), "recall.100".into()],
        dr_compat: true,
        out: Some(tmp.path().join("cell")),
        ..Default::default()
    };
    let outcome = run_cell(&bench, &spec).unwrap();
    // Columns in the order asked, without repeats; the card's split and BM25 (1.2, 0.75).
    let names: Vec<&str> = outcome.row.metrics.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["recall_100", "ndcg_cut_10"]);
    assert_eq!((outcome.row.split.as_str(), outcome.row.retriever.as_str()), ("test", "bm25(k1=1.2,b=0.75,flat)"));
    assert!((outcome.row.metrics[1].1 - 0.6826).abs() < 5e-5, "{:?}", outcome.row.metrics);
    assert!(outcome.notes.iter().any(|n| n.starts_with("index built")) && outcome.notes.iter().any(|n| n.contains("dr-compat")));
    for f in ["table.csv", "table.parquet", "table.md", "run.trec", "per_query.parquet", "meta.json"] {
        assert!(tmp.path().join("cell").join(f).is_file(), "{f}");
    }
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(tmp.path().join("cell/meta.json")).unwrap()).unwrap();
    assert_eq!(meta["run_id"], outcome.row.run_id.as_str());
    assert!(meta["dr_compat_ndcg_cut_10"].is_number() && meta["harness_version"].is_string());
}

#[test]
fn table_cells_fail_loudly_on_unknown_fields_and_missing_measures() {
    let tmp = tempfile::tempdir().unwrap();
    let bench = Bench::new(workspace(&tmp.path().join("cache")), Invocation::default(), &Silent).unwrap();
    let head = "table = 9\ntitle = 't'\nmetric = 'm'\npaper_source = 's'\ncolumns = ['scifact']\n";
    let typo = tmp.path().join("typo.toml");
    std::fs::write(&typo, format!("{head}[[cell]]\nlabel = 'l'\ndataset = 'scifact'\nmeasure = 'map'\nbm25_k1 = 0.9\n")).unwrap();
    let err = reproduce(&bench, &typo, Some(&tmp.path().join("a"))).err().expect("an unknown field is an error");
    assert!(format!("{err:#}").contains("unknown field `bm25_k1`"), "{err:#}");

    // The shown measure must be one the cell produced: never another metric under its label.
    let wrong = tmp.path().join("wrong.toml");
    std::fs::write(&wrong, format!("{head}[[cell]]\nlabel = 'l'\ndataset = 'scifact'\nmeasure = 'map'\nmeasures = ['ndcg_cut.10']\npaper_column = 'scifact'\n")).unwrap();
    let r = reproduce(&bench, &wrong, Some(&tmp.path().join("b"))).unwrap();
    assert_eq!(r.ours.len(), 1);
    assert_eq!((r.ours[0].value, r.ours[0].source.as_str()), (None, "not run"));
    assert!(r.ours[0].note.contains("'map' is not among the cell's metrics (ndcg_cut_10)"), "{}", r.ours[0].note);
    assert_eq!(r.long.height(), 1, "{}", r.long);
}

/// Several methods: the original query is the baseline whatever its position, every other
/// method gets one row per measure with its paired tests, written as significance.*; the
/// numbers are those of `compare_scores` on the cells' per-query values.
#[test]
fn methods_are_tested_against_the_original_query() {
    let tmp = tempfile::tempdir().unwrap();
    let bench = Bench::new(workspace(&tmp.path().join("cache")), Invocation::default(), &Silent).unwrap();
    let spec = CellSpec {
        dataset: "scifact".into(),
        measures: vec!["ndcg_cut.10".into(), "recall.100".into()],
        out: Some(tmp.path().join("methods")),
        ..Default::default()
    };
    let outcome = harness_bench::run_methods(&bench, &spec, &["rm3".to_string(), "original".to_string()]).unwrap();
    let frame = outcome.significance.expect("two cells with per-query scores");
    assert_eq!(frame.height(), 2);
    let text = |c: &str, i: usize| frame.column(c).unwrap().str().unwrap().get(i).unwrap().to_string();
    let num = |c: &str, i: usize| frame.column(c).unwrap().f64().unwrap().get(i).unwrap();
    assert_eq!((text("measure", 0), text("measure", 1)), ("ndcg_cut_10".to_string(), "recall_100".to_string()));
    assert_eq!(text("baseline", 0), "original");
    assert!(text("run", 0).starts_with("rm3"));
    let original = outcome.cells[1].scores.as_ref().unwrap();
    let rm3 = outcome.cells[0].scores.as_ref().unwrap();
    assert_eq!(original.queries.len(), 300);
    let expected = harness_core::significance::compare_paired(
        &original.measures[0].1,
        &rm3.measures[0].1,
        &harness_core::significance::TestSettings::default(),
    );
    assert_eq!(num("mean_diff", 0), expected.mean_diff);
    assert_eq!(num("p_ttest", 0), expected.p_ttest);
    assert_eq!(num("p_holm", 0), expected.p_randomization); // one method: Holm changes nothing
    assert!((num("mean_baseline", 0) - outcome.cells[1].row.metrics[0].1).abs() < 1e-12);
    assert!(outcome.out.join("significance.csv").is_file());
}
