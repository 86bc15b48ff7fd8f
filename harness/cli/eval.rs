//! `harness eval`: flags -> a `CellSpec` -> one cell per `--method` -> the table printed.
use std::path::PathBuf;

use anyhow::Result;
use harness_bench::spec::defaults;
use harness_bench::{run_cell, run_methods, CellSpec};

use crate::progress::Bars;

#[derive(clap::Args, Clone, Debug)]
pub struct EvalArgs {
    /// Dataset name (see `harness datasets list`).
    #[arg(long)]
    pub dataset: String,
    /// Split (default: the card's default split).
    #[arg(long)]
    pub split: Option<String>,
    /// Query method, repeatable (each becomes a row of one table): original, rm3[:FB_DOCS,
    /// FB_TERMS,WEIGHT], llm:DIR (llm:default: the setup's model), checkpoint:DIR (a model or
    /// a LoRA adapter folder), api:MODEL, queries:FILE (TSV: query id, text); gold for SQL.
    #[arg(long = "method", default_value = defaults::METHOD)]
    pub methods: Vec<String>,
    /// Documents retrieved per query (default: the card's depth).
    #[arg(long)]
    pub depth: Option<usize>,
    /// Only the first N queries (reviews, questions) of the split, in file order; the
    /// measures average over those alone.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
    /// Search (and SQL execution) threads; 1 gives single-thread timings.
    #[arg(long, default_value_t = defaults::THREADS)]
    pub threads: usize,
    /// Measures in trec_eval syntax, `hit.K,...` for answer containment (default: the card's).
    #[arg(short = 'm', long = "measure")]
    pub measures: Vec<String>,
    /// Output folder (default: results/runs/<run-id>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also report the paper's own NDCG@10 (dr-compat; never mixed into the standard table).
    #[arg(long)]
    pub dr_compat: bool,
    /// Do not print the table or progress.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub retriever: RetrieverArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub sql: SqlArgs,
    #[command(flatten)]
    pub literature: LiteratureArgs,
    #[command(flatten)]
    pub open_qa: OpenQaArgs,
}

#[derive(clap::Args, Clone, Debug)]
#[command(next_help_heading = "Retriever")]
pub struct RetrieverArgs {
    /// bm25, dense[:MODEL] (exact) or hnsw[:MODEL]; MODEL is a folder with model.onnx and
    /// tokenizer.json, default the setup's all-MiniLM-L6-v2 int8.
    #[arg(long, default_value = defaults::RETRIEVER)]
    pub retriever: String,
    /// BM25 k1 (default: the card's, else 0.9).
    #[arg(long)]
    pub bm25_k1: Option<f32>,
    /// BM25 b (default: the card's, else 0.4).
    #[arg(long)]
    pub bm25_b: Option<f32>,
    /// Document fields: flat (title + text in one field, as the paper) or multifield.
    #[arg(long, default_value = defaults::FIELDS)]
    pub fields: String,
    /// HNSW links per node.
    #[arg(long, default_value_t = defaults::HNSW_M)]
    pub hnsw_m: usize,
    /// HNSW candidate list while building.
    #[arg(long, default_value_t = defaults::HNSW_EF_CONSTRUCTION)]
    pub hnsw_ef_construction: usize,
    /// HNSW candidate list while searching.
    #[arg(long, default_value_t = defaults::HNSW_EF)]
    pub hnsw_ef: usize,
}

#[derive(clap::Args, Clone, Debug)]
#[command(next_help_heading = "Model methods (llm:, checkpoint:, api:)")]
pub struct ModelArgs {
    /// Answer without a <think> block.
    #[arg(long)]
    pub no_reasoning: bool,
    /// Most tokens generated per query.
    #[arg(long, default_value_t = defaults::MAX_NEW_TOKENS)]
    pub max_new_tokens: usize,
    /// Prompts per generation batch.
    #[arg(long, default_value_t = defaults::BATCH_SIZE)]
    pub batch_size: usize,
    /// Sampling temperature (0 = greedy).
    #[arg(long, default_value_t = defaults::TEMPERATURE)]
    pub temperature: f64,
    /// Sampling seed.
    #[arg(long, default_value_t = defaults::SEED)]
    pub seed: u64,
    /// Local models: auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = defaults::DEVICE)]
    pub device: String,
}

#[derive(clap::Args, Clone, Debug)]
#[command(next_help_heading = "SQL datasets")]
pub struct SqlArgs {
    /// Folder with <db_id>/<db_id>.sqlite (default: the dataset's vendored databases).
    #[arg(long)]
    pub db_dir: Option<PathBuf>,
    /// Seconds one statement may run (the paper uses 30).
    #[arg(long, default_value_t = defaults::SQL_TIMEOUT_SECS)]
    pub sql_timeout_secs: f64,
}

#[derive(clap::Args, Clone, Debug)]
#[command(next_help_heading = "Literature datasets")]
pub struct LiteratureArgs {
    /// offline (the vendored record index), pubmed or ctgov (live APIs); auto: the card's own.
    #[arg(long)]
    pub engine: Option<String>,
    /// Review tasks in the paper's JSONL format (pico, publication_pmids or trial_nctids,
    /// pub_date) instead of the vendored reviews.
    #[arg(long)]
    pub tasks: Option<PathBuf>,
    /// A cell where more than this fraction of engine requests failed (network or server
    /// errors, after retries) is marked failed rather than measured.
    #[arg(long, default_value_t = harness_bench::spec::defaults::MAX_ENGINE_FAILURES)]
    pub max_engine_failures: f64,
}

#[derive(clap::Args, Clone, Debug)]
#[command(next_help_heading = "Open-QA datasets (nq, triviaqa, squad)")]
pub struct OpenQaArgs {
    /// The DPR passages file (psgs_w100.tsv[.gz]); default: $HARNESS_DPR_PASSAGES, else the
    /// dataset's folder.
    #[arg(long)]
    pub passages: Option<PathBuf>,
}

impl EvalArgs {
    /// The cell these flags describe (for the first method).
    pub fn spec(&self) -> CellSpec {
        let (r, m) = (&self.retriever, &self.model);
        CellSpec {
            dataset: self.dataset.clone(),
            split: self.split.clone(),
            retriever: r.retriever.clone(),
            method: self.methods.first().cloned().unwrap_or_else(|| defaults::METHOD.into()),
            k1: r.bm25_k1,
            b: r.bm25_b,
            fields: r.fields.clone(),
            hnsw_m: r.hnsw_m,
            hnsw_ef_construction: r.hnsw_ef_construction,
            hnsw_ef: r.hnsw_ef,
            depth: self.depth,
            limit: self.limit.map(|n| n as usize),
            threads: self.threads,
            measures: self.measures.clone(),
            dr_compat: self.dr_compat,
            db_dir: self.sql.db_dir.clone(),
            sql_timeout_secs: self.sql.sql_timeout_secs,
            no_reasoning: m.no_reasoning,
            max_new_tokens: m.max_new_tokens,
            batch_size: m.batch_size,
            temperature: m.temperature,
            seed: m.seed,
            device: m.device.clone(),
            engine: self.literature.engine.clone(),
            tasks: self.literature.tasks.clone(),
            max_engine_failures: self.literature.max_engine_failures,
            passages: harness_bench::families::open_qa::passages_or_env(self.open_qa.passages.clone()),
            out: self.out.clone(),
        }
    }
}

pub fn run(args: EvalArgs, root: Option<PathBuf>) -> Result<()> {
    let bars = Bars::new(args.quiet);
    let bench = crate::bench(root, &bars)?;
    let spec = args.spec();
    if args.methods.len() == 1 {
        let outcome = run_cell(&bench, &spec)?;
        if !args.quiet {
            println!("{}", harness_report::display(&outcome.table));
            for note in &outcome.notes {
                println!("{note}");
            }
            println!("run written to {}", outcome.run_dir.display());
        }
        return Ok(());
    }
    let outcome = run_methods(&bench, &spec, &args.methods)?;
    if !args.quiet {
        println!("{}", harness_report::display(&outcome.table));
        if let Some(significance) = &outcome.significance {
            println!("against the baseline (paired, every judged query; p_holm: randomization p, Holm-adjusted over the methods):");
            println!("{}", harness_report::display(significance));
        }
        println!("runs written to {}", outcome.out.display());
    }
    Ok(())
}
