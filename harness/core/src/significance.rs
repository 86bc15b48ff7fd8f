//! Paired significance tests between runs scored on the same queries: the mean difference, a
//! paired bootstrap confidence interval, the two-sided paired t-test (as `scipy.stats.ttest_rel`),
//! Fisher's randomization (sign-flip) test, and Holm-Bonferroni correction across comparisons.
//!
//! Resampling is seeded (ChaCha8), so the same inputs and seed give the same numbers everywhere.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::error::Result;
use crate::measures::{EvalOptions, Measure};
use crate::trec_eval::complete_per_query;
use crate::types::Qrels;

/// Resampling settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestSettings {
    /// Sign-flip permutations of the randomization test.
    pub permutations: usize,
    /// Bootstrap resamples of the confidence interval.
    pub bootstrap: usize,
    /// Confidence level of the interval (0.95: the 2.5th and 97.5th percentiles).
    pub confidence: f64,
    /// Seed of both resamplings.
    pub seed: u64,
}

impl Default for TestSettings {
    fn default() -> Self {
        TestSettings { permutations: 10_000, bootstrap: 10_000, confidence: 0.95, seed: 0 }
    }
}

/// One run against the baseline over the same queries.
#[derive(Debug, Clone, PartialEq)]
pub struct PairedComparison {
    /// Number of queries (pairs).
    pub queries: usize,
    /// Mean of the baseline's per-query scores.
    pub mean_baseline: f64,
    /// Mean of the run's per-query scores.
    pub mean_run: f64,
    /// `mean_run - mean_baseline`.
    pub mean_diff: f64,
    /// Lower end of the paired bootstrap percentile interval of the mean difference.
    pub ci_low: f64,
    /// Upper end of that interval.
    pub ci_high: f64,
    /// Two-sided paired t-test p-value; NaN when every difference is equal (as scipy).
    pub p_ttest: f64,
    /// Two-sided randomization test p-value, `(b + 1) / (R + 1)` with `b` of `R` sign flips at
    /// least as extreme as observed (never 0, as Phipson & Smyth recommend).
    pub p_randomization: f64,
}

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.iter().sum::<f64>() / values.len() as f64
}

/// The two-sided paired t-test p-value of differences `d` (scipy's `ttest_rel(run, baseline)`).
pub fn paired_t_test(d: &[f64]) -> f64 {
    let n = d.len();
    if n < 2 {
        return f64::NAN;
    }
    let m = mean(d);
    let var = d.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1) as f64;
    let t = m / (var / n as f64).sqrt();
    if !t.is_finite() {
        return f64::NAN;
    }
    let dist = StudentsT::new(0.0, 1.0, (n - 1) as f64).expect("degrees of freedom >= 1");
    // sf(|t|) rather than 1 - cdf, so small p-values keep their digits.
    (2.0 * dist.sf(t.abs())).min(1.0)
}

/// Fisher's randomization test on paired differences: each permutation flips the sign of every
/// difference with probability 1/2; two-sided on the absolute mean.
pub fn randomization_test(d: &[f64], permutations: usize, rng: &mut ChaCha8Rng) -> f64 {
    let observed = mean(d).abs();
    // A tolerance so that permutations equal to the observed statistic up to rounding count.
    let threshold = observed - 1e-12 * observed.max(1.0);
    let mut extreme = 0usize;
    for _ in 0..permutations {
        let sum: f64 = d.iter().map(|&x| if rng.gen::<bool>() { x } else { -x }).sum();
        if (sum / d.len() as f64).abs() >= threshold {
            extreme += 1;
        }
    }
    (extreme + 1) as f64 / (permutations + 1) as f64
}

/// Percentile interval of the mean difference over `resamples` paired bootstrap samples.
pub fn bootstrap_interval(d: &[f64], resamples: usize, confidence: f64, rng: &mut ChaCha8Rng) -> (f64, f64) {
    if d.is_empty() || resamples == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| (0..d.len()).map(|_| d[rng.gen_range(0..d.len())]).sum::<f64>() / d.len() as f64)
        .collect();
    means.sort_by(|a, b| a.total_cmp(b));
    let tail = (1.0 - confidence) / 2.0;
    (percentile(&means, tail), percentile(&means, 1.0 - tail))
}

/// Linear interpolation between closest ranks (numpy's default).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Compares `run` with `baseline`, paired by position (the same queries in the same order).
pub fn compare_paired(baseline: &[f64], run: &[f64], settings: &TestSettings) -> PairedComparison {
    assert_eq!(baseline.len(), run.len(), "paired scores need the same queries");
    let d: Vec<f64> = run.iter().zip(baseline).map(|(r, b)| r - b).collect();
    // Separate streams, so changing one resampling count leaves the other's numbers alone.
    let mut permutation_rng = ChaCha8Rng::seed_from_u64(settings.seed);
    let mut bootstrap_rng = ChaCha8Rng::seed_from_u64(settings.seed ^ 0x9e37_79b9_7f4a_7c15);
    let (ci_low, ci_high) = bootstrap_interval(&d, settings.bootstrap, settings.confidence, &mut bootstrap_rng);
    PairedComparison {
        queries: d.len(),
        mean_baseline: mean(baseline),
        mean_run: mean(run),
        mean_diff: mean(&d),
        ci_low,
        ci_high,
        p_ttest: paired_t_test(&d),
        p_randomization: randomization_test(&d, settings.permutations, &mut permutation_rng),
    }
}

/// Holm-Bonferroni adjusted p-values, in the input order (NaN stays NaN and is not counted).
pub fn holm(p_values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..p_values.len()).filter(|&i| !p_values[i].is_nan()).collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
    let m = order.len();
    let mut adjusted = vec![f64::NAN; p_values.len()];
    let mut running = 0.0f64;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((m - rank) as f64 * p_values[i]).min(1.0));
        adjusted[i] = running;
    }
    adjusted
}

/// One line of `compare.csv`: a run against the baseline on one measure.
#[derive(Debug, Clone, PartialEq)]
pub struct ComparisonRow {
    /// The measure, as trec_eval prints it.
    pub measure: String,
    /// The baseline's name.
    pub baseline: String,
    /// The run's name.
    pub run: String,
    /// The tests' results.
    pub result: PairedComparison,
    /// The randomization p-value, Holm-Bonferroni adjusted over the runs compared.
    pub p_holm: f64,
}

/// Scores run files against `qrels` on `measure` over every qrels query (trec_eval `-c`), and
/// compares every run after the first with the first. `runs`: (name, file).
pub fn compare_run_files(
    qrels: &Qrels,
    runs: &[(String, std::path::PathBuf)],
    measure: Measure,
    opts: &EvalOptions,
    settings: &TestSettings,
) -> Result<Vec<ComparisonRow>> {
    let opts = EvalOptions { average_over_all_qrels: true, ..*opts };
    let mut scores = Vec::with_capacity(runs.len());
    for (_, path) in runs {
        let eval = crate::score_file::evaluate_run_file(qrels, path, &[measure], &opts, 1)?;
        scores.push(complete_per_query(qrels, &eval, 0, &opts));
    }
    Ok(compare_scores(&measure.name(), runs.iter().map(|(n, _)| n.clone()).zip(scores).collect(), settings))
}

/// Compares every entry after the first with the first; scores are per query, in the same
/// query order for every entry.
pub fn compare_scores(measure: &str, runs: Vec<(String, Vec<f64>)>, settings: &TestSettings) -> Vec<ComparisonRow> {
    let Some(((baseline, base_scores), others)) = runs.split_first() else { return Vec::new() };
    let results: Vec<PairedComparison> = others.iter().map(|(_, s)| compare_paired(base_scores, s, settings)).collect();
    let adjusted = holm(&results.iter().map(|r| r.p_randomization).collect::<Vec<_>>());
    others
        .iter()
        .zip(results)
        .zip(adjusted)
        .map(|(((name, _), result), p_holm)| ComparisonRow {
            measure: measure.to_string(),
            baseline: baseline.clone(),
            run: name.clone(),
            result,
            p_holm,
        })
        .collect()
}

/// The columns of `compare.csv`.
pub const CSV_HEADER: &str =
    "measure,baseline,run,queries,mean_baseline,mean_run,mean_diff,ci_low,ci_high,p_ttest,p_randomization,p_holm";

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// Writes rows as `compare.csv` (header [`CSV_HEADER`], full-precision numbers) atomically.
pub fn write_csv(path: &std::path::Path, rows: &[ComparisonRow]) -> Result<()> {
    crate::io::write_atomically(path, |w| {
        writeln!(w, "{CSV_HEADER}")?;
        for row in rows {
            let r = &row.result;
            writeln!(
                w,
                "{},{},{},{},{},{},{},{},{},{},{},{}",
                csv_field(&row.measure),
                csv_field(&row.baseline),
                csv_field(&row.run),
                r.queries,
                r.mean_baseline,
                r.mean_run,
                r.mean_diff,
                r.ci_low,
                r.ci_high,
                r.p_ttest,
                r.p_randomization,
                row.p_holm
            )?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_test_matches_scipy_on_a_hand_example() {
        // scipy 1.17.1: ttest_rel([2, 3, 5, 9], [1, 1, 2, 4]).pvalue = 0.04856685655980102 (t = 3.2205, df 3)
        let d = [1.0, 2.0, 3.0, 5.0];
        assert!((paired_t_test(&d) - 0.048_566_856_559_801_02).abs() < 1e-12, "{}", paired_t_test(&d));
        assert!(paired_t_test(&[0.5, 0.5, 0.5]).is_nan());
        assert!(paired_t_test(&[1.0]).is_nan());
    }

    #[test]
    fn holm_steps_down_and_stays_monotone() {
        let adjusted = holm(&[0.01, 0.04, 0.03, f64::NAN]);
        assert_eq!(adjusted[0], 0.03);
        assert_eq!(adjusted[2], 0.06);
        // The largest p (0.04) is multiplied by 1, but an adjusted p never falls below a smaller one's.
        assert_eq!(adjusted[1], 0.06);
        assert!(adjusted[3].is_nan());
    }

    #[test]
    fn randomization_and_bootstrap_behave() {
        let settings = TestSettings::default();
        // No difference at all: every flip is as extreme, p = 1.
        let same = compare_paired(&[0.3; 20], &[0.3; 20], &settings);
        assert_eq!(same.p_randomization, 1.0);
        assert_eq!((same.ci_low, same.ci_high), (0.0, 0.0));
        // Every query better by 0.1: only the all-positive flip (and its mirror) is as extreme.
        let better = compare_paired(&[0.2; 20], &[0.3; 20], &settings);
        assert!(better.p_randomization < 0.001, "{}", better.p_randomization);
        assert!((better.mean_diff - 0.1).abs() < 1e-12 && (better.ci_low - 0.1).abs() < 1e-12);
        // Seeded: the same numbers twice.
        let noisy: Vec<f64> = (0..50).map(|i| ((i * 37 % 11) as f64) / 10.0).collect();
        let base: Vec<f64> = (0..50).map(|i| ((i * 13 % 7) as f64) / 10.0).collect();
        assert_eq!(compare_paired(&base, &noisy, &settings), compare_paired(&base, &noisy, &settings));
    }

    /// The committed SciFact runs (BM25 and BM25 + RM3, top 100) against scipy's t-test and an
    /// independent numpy randomization test and bootstrap (benches/peers/compare_scipy.py).
    #[test]
    fn scifact_comparison_equals_scipy() {
        let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden");
        let fixture: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(golden.join("compare/scifact-bm25-vs-rm3.scipy.json")).unwrap()).unwrap();
        let qrels = crate::io::read_qrels(&golden.join("trec_eval/scifact-bm25.qrels")).unwrap();
        let runs = vec![
            ("bm25".to_string(), golden.join("trec_eval/scifact-bm25.run.gz")),
            ("rm3".to_string(), golden.join("compare/scifact-rm3.run.gz")),
        ];
        let measure: Measure = "ndcg_cut.10".parse().unwrap();
        let rows = compare_run_files(&qrels, &runs, measure, &EvalOptions::default(), &TestSettings::default()).unwrap();
        let want = &fixture["comparisons"][0];
        let got = &rows[0].result;
        let num = |k: &str| want[k].as_f64().unwrap();
        assert_eq!(got.queries as u64, want["queries"].as_u64().unwrap());
        assert!((got.mean_diff - num("mean_diff")).abs() < 1e-12);
        assert!((got.mean_baseline - num("mean_baseline")).abs() < 1e-12);
        assert!((got.p_ttest - num("p_ttest")).abs() < 1e-6, "t-test {} vs scipy {}", got.p_ttest, num("p_ttest"));
        // Monte Carlo error: 10,000 flips here; the peer's 200,000 are nearly exact.
        let p = num("p_randomization");
        let standard_error = (p * (1.0 - p) / 10_000.0).sqrt();
        assert!((got.p_randomization - p).abs() < 4.0 * standard_error, "randomization {} vs {p}", got.p_randomization);
        for k in ["ci_low", "ci_high"] {
            let mine = if k == "ci_low" { got.ci_low } else { got.ci_high };
            assert!((mine - num(k)).abs() < 2e-3, "{k}: {mine} vs {}", num(k));
        }
        // One comparison: Holm changes nothing.
        assert_eq!(rows[0].p_holm, got.p_randomization);
    }
}
