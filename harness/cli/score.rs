//! `harness score`: trec_eval-compatible scoring of any run file.
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use harness_core::score_file::evaluate_run_file;
use harness_core::trec_eval::format_trec_eval;
use harness_core::{EvalOptions, Measure};

#[derive(clap::Args)]
pub struct ScoreArgs {
    /// Qrels file (TREC `qid iter docid grade`, or BEIR tsv with header).
    #[arg(long)]
    qrels: PathBuf,
    /// Run file (TREC 6 columns).
    #[arg(long)]
    run: PathBuf,
    /// Measures in trec_eval syntax, repeatable: `-m ndcg_cut.10 -m recall.100,1000`
    /// (default: every ported measure with trec_eval's default cut-offs).
    #[arg(short = 'm', long = "measure")]
    measures: Vec<String>,
    /// Print per-query values too (trec_eval -q).
    #[arg(short = 'q')]
    per_query: bool,
    /// Average over every qrels query; queries missing from the run score 0 (trec_eval -c).
    #[arg(short = 'c')]
    complete: bool,
    /// Minimum grade that counts as relevant (trec_eval -l).
    #[arg(short = 'l', default_value_t = 1)]
    level: i32,
    /// Evaluate only the top N documents of each query (trec_eval -M).
    #[arg(short = 'M')]
    max_docs: Option<usize>,
    /// Threads that parse and judge queries while the file is read (1: all on one thread).
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

pub fn run(args: ScoreArgs) -> Result<()> {
    let qrels = harness_core::io::read_qrels(&args.qrels)?;
    let specs = if args.measures.is_empty() { vec!["official".to_string()] } else { args.measures };
    let mut measures = Vec::new();
    for spec in &specs {
        for part in spec.split_whitespace() {
            measures.extend(Measure::parse_list(part).with_context(|| format!("-m {part}"))?);
        }
    }
    if qrels.is_empty() {
        bail!("{}: no judgements", args.qrels.display());
    }
    let opts = EvalOptions { relevance_level: args.level, average_over_all_qrels: args.complete, max_docs: args.max_docs };
    // Streams the run: a query is judged as soon as its lines are read.
    let eval = evaluate_run_file(&qrels, &args.run, &measures, &opts, args.threads)?;
    print!("{}", format_trec_eval(&eval, args.per_query));
    Ok(())
}
