//! `harness score` against trec_eval's own output (tests/golden/trec_eval: what the real
//! trec_eval 9.0.8 binary, built from source by scripts/make_trec_eval_goldens.py, printed):
//! every ported measure, with and without -q, -c and -l 2, on a synthetic edge-case run and on
//! the real SciFact BM25 run, line for line.
use std::path::Path;
use std::process::Command;

fn golden_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/trec_eval"))
}

fn check_case(expected_file: &Path, threads: &str) {
    let text = std::fs::read_to_string(expected_file).unwrap();
    let (header, expected) = text.split_once('\n').unwrap();
    let flags: Vec<&str> = header.trim_start_matches("# flags:").split_whitespace().collect();
    let name = expected_file.file_name().unwrap().to_str().unwrap();
    let stem = name.split('.').next().unwrap();
    let dir = golden_dir();
    let output = Command::new(env!("CARGO_BIN_EXE_harness"))
        .arg("score")
        .arg("--qrels")
        .arg(dir.join(format!("{stem}.qrels")))
        .arg("--run")
        .arg(dir.join(format!("{stem}.run.gz")))
        .args(&flags)
        .args(["--threads", threads])
        .output()
        .unwrap();
    assert!(output.status.success(), "{name}: {}", String::from_utf8_lossy(&output.stderr));
    let got = String::from_utf8(output.stdout).unwrap();
    let (mut diffs, mut first) = (0, None);
    for (i, (g, e)) in got.lines().zip(expected.lines()).enumerate() {
        if g != e {
            diffs += 1;
            first.get_or_insert(format!("line {}: got {g:?}, trec_eval {e:?}", i + 1));
        }
    }
    assert_eq!(got.lines().count(), expected.lines().count(), "{name}: line count");
    assert_eq!(diffs, 0, "{name}: {diffs} lines differ from trec_eval; first: {}", first.unwrap_or_default());
}

#[test]
fn score_matches_trec_eval_on_every_golden_case() {
    let mut cases: Vec<_> = std::fs::read_dir(golden_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "expected"))
        .collect();
    cases.sort();
    assert_eq!(cases.len(), 10, "expected 6 synthetic and 4 SciFact cases");
    for case in &cases {
        check_case(case, "1");
        check_case(case, "3");
    }
}

#[test]
fn score_reports_malformed_run_lines() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("bad.run");
    std::fs::write(&run, "301 Q0 D1 1 0.5 tag\n301 Q0 D2 2 high tag\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["score", "--qrels"])
        .arg(golden_dir().join("synthetic.qrels"))
        .arg("--run")
        .arg(&run)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("bad.run:2: score 'high' is not a number"), "{err}");
}

/// `harness compare` on the committed SciFact runs writes compare.csv with the agreed columns
/// and the scipy-checked numbers (the values themselves are tested in harness-core against
/// tests/golden/compare); a single run is a one-line error.
#[test]
fn compare_writes_its_csv_and_needs_two_runs() {
    let dir = tempfile::tempdir().unwrap();
    let golden = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden"));
    let qrels = golden.join("trec_eval/scifact-bm25.qrels");
    let bm25 = format!("bm25={}", golden.join("trec_eval/scifact-bm25.run.gz").display());
    let rm3 = format!("rm3={}", golden.join("compare/scifact-rm3.run.gz").display());
    let output = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["compare", "--qrels", qrels.to_str().unwrap(), "--run", &bm25, "--run", &rm3, "-m", "ndcg_cut.10"])
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let csv = std::fs::read_to_string(dir.path().join("compare.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "measure,baseline,run,queries,mean_baseline,mean_run,mean_diff,ci_low,ci_high,p_ttest,p_randomization,p_holm");
    assert!(lines[1].starts_with("ndcg_cut_10,bm25,rm3,300,0.6789"), "{}", lines[1]);
    assert_eq!(lines.len(), 2);
    let single = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["compare", "--qrels", qrels.to_str().unwrap(), "--run", &bm25])
        .output()
        .unwrap();
    assert!(!single.status.success());
    assert!(String::from_utf8_lossy(&single.stderr).contains("at least one run to compare"));
}
