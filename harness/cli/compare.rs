//! `harness compare`: paired significance tests of runs against a baseline run.
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use harness_core::significance::{compare_run_files, write_csv, TestSettings};
use harness_core::{EvalOptions, Measure};

#[derive(clap::Args)]
pub struct CompareArgs {
    /// Qrels file (TREC or BEIR tsv).
    #[arg(long)]
    qrels: PathBuf,
    /// Run files (TREC 6 columns); the first is the baseline. `NAME=FILE` names a run.
    #[arg(long = "run", required = true, num_args = 1)]
    runs: Vec<String>,
    /// The measure, in trec_eval syntax (`ndcg_cut.10`, `recall.1000`, `map`).
    #[arg(short = 'm', long = "measure", default_value = "ndcg_cut.10")]
    measure: String,
    /// Minimum grade that counts as relevant (trec_eval -l).
    #[arg(short = 'l', default_value_t = 1)]
    level: i32,
    /// Sign-flip permutations of the randomization test.
    #[arg(long, default_value_t = 10_000)]
    permutations: usize,
    /// Paired bootstrap resamples of the 95 % confidence interval.
    #[arg(long, default_value_t = 10_000)]
    bootstrap: usize,
    /// Seed of both resamplings.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write compare.csv into this folder.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: CompareArgs) -> Result<()> {
    let qrels = harness_core::io::read_qrels(&args.qrels)?;
    if qrels.is_empty() {
        bail!("{}: no judgements", args.qrels.display());
    }
    let measure: Measure = args.measure.parse().with_context(|| format!("-m {}", args.measure))?;
    if measure.kind.is_count() {
        bail!("-m {}: a count, not a per-query score to compare", args.measure);
    }
    if args.runs.len() < 2 {
        bail!("--run: give the baseline and at least one run to compare with it");
    }
    let runs: Vec<(String, PathBuf)> = args
        .runs
        .iter()
        .map(|spec| match spec.split_once('=') {
            Some((name, file)) if !name.is_empty() && !PathBuf::from(spec).exists() => (name.to_string(), PathBuf::from(file)),
            _ => (spec.clone(), PathBuf::from(spec)),
        })
        .collect();
    let settings = TestSettings { permutations: args.permutations, bootstrap: args.bootstrap, seed: args.seed, ..Default::default() };
    let opts = EvalOptions { relevance_level: args.level, ..Default::default() };
    let rows = compare_run_files(&qrels, &runs, measure, &opts, &settings)?;
    println!("{} over {} queries (every qrels query, as trec_eval -c); baseline: {}", measure, qrels.len(), runs[0].0);
    println!(
        "{:<28} {:>9} {:>9} {:>10} {:>22} {:>10} {:>10} {:>10}",
        "run", "baseline", "run", "diff", "95% CI (bootstrap)", "p t-test", "p random.", "p Holm"
    );
    for row in &rows {
        let r = &row.result;
        println!(
            "{:<28} {:>9.4} {:>9.4} {:>+10.4} {:>22} {:>10.4} {:>10.4} {:>10.4}",
            row.run,
            r.mean_baseline,
            r.mean_run,
            r.mean_diff,
            format!("[{:+.4}, {:+.4}]", r.ci_low, r.ci_high),
            r.p_ttest,
            r.p_randomization,
            row.p_holm
        );
    }
    println!("p Holm: randomization p-values, Holm-Bonferroni adjusted over the {} runs compared", rows.len());
    if let Some(dir) = args.out {
        let path = dir.join("compare.csv");
        write_csv(&path, &rows)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
