//! `harness`: the DeepRetrieval Bench command line. Clap structs become specs, the work runs
//! in `harness-bench`, results are printed here.
mod compare;
mod cost;
mod datasets_cmd;
mod embed;
mod eval;
mod export;
mod generate;
mod progress;
mod regress;
mod report;
mod reproduce;
mod score;
mod serve;
mod sql_eval;
mod tables;
mod train;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use harness_bench::{Bench, Invocation, Workspace, WorkspaceSettings};

#[derive(Parser)]
#[command(name = "harness", version, about = "DeepRetrieval Bench: reproduce and extend DeepRetrieval (arXiv 2503.00223)")]
struct Cli {
    /// The checkout to work in (cards, tables, data, caches, runs); default: $HARNESS_ROOT, else
    /// the nearest folder upwards from here holding harness-workspace.toml.
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Reuse an output folder (--out) that exists: its contents are removed first. Without it
    /// such a folder is refused.
    #[arg(long, global = true)]
    overwrite: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Score a TREC run against qrels with trec_eval's semantics and output format.
    Score(score::ScoreArgs),
    /// Paired significance tests of runs against a baseline run: mean difference, bootstrap
    /// confidence interval, t-test, randomization test, Holm correction.
    Compare(compare::CompareArgs),
    /// List or fetch datasets.
    Datasets {
        #[command(subcommand)]
        command: datasets_cmd::DatasetsCommand,
    },
    /// Run methods with one retriever on one dataset split and report their metrics.
    Eval(eval::EvalArgs),
    /// Cost of BM25 vs exact dense vs HNSW on one dataset: build and query wall-clock, ratios.
    Cost(cost::CostArgs),
    /// Encode lines of standard input with a dense model; one JSON array per line.
    Embed(embed::EmbedArgs),
    /// Execution accuracy of predicted SQL (official Spider file layout; dr or test-suite mode).
    SqlEval(sql_eval::SqlEvalArgs),
    /// Print a database's schema as prompts show it (CREATE TABLE statements with keys).
    SqlSchema(sql_eval::SqlSchemaArgs),
    /// Generate text with a policy model (try a model or a prompt).
    Generate(generate::GenerateArgs),
    /// Serve a policy as an OpenAI-compatible endpoint (the paper's query-rewriting API).
    Serve(serve::ServeArgs),
    /// Train a policy with PPO, the retriever's metric as the reward (DeepRetrieval).
    Train(train::TrainArgs),
    /// Write a LoRA training checkpoint's actor as a peft adapter folder (a few MB, loadable as
    /// `--method checkpoint:DIR`).
    ExportAdapter(train::ExportAdapterArgs),
    /// Write data for other tools (verl's training parquet).
    Export {
        #[command(subcommand)]
        command: export::ExportCommand,
    },
    /// Stack the tables of several runs into one (csv, parquet, md).
    Tables(tables::TablesArgs),
    /// Reproduce a table of the paper: the paper's numbers beside every cell this build can run.
    Reproduce(reproduce::ReproduceArgs),
    /// Rerun the fast reference cells and compare them with results/reference (non-zero exit on
    /// a regression).
    Regress(regress::RegressArgs),
    /// Write the results page (docs/RESULTS.md and an HTML page) from the committed results.
    Report(report::ReportArgs),
}

/// Where the workspace is, from `--root`, the environment and the current directory.
fn workspace(root: Option<PathBuf>) -> Result<Workspace> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let root = match (root, var("HARNESS_ROOT")) {
        (Some(r), _) => Some((r, "--root".to_string())),
        (None, Some(r)) => Some((r, "HARNESS_ROOT".to_string())),
        (None, None) => None,
    };
    let settings = WorkspaceSettings {
        root,
        search_from: std::env::current_dir()?,
        cache: var("HARNESS_CACHE_DIR"),
        data: var(harness_datasets::registry::DATA_ENV),
        models: var("HARNESS_MODELS_DIR"),
        extra_cards: var(harness_datasets::registry::CARDS_ENV),
        onnxruntime: var("ORT_DYLIB_PATH"),
    };
    Ok(Workspace::locate(&settings)?)
}

/// `--overwrite`, set once in `main` before any work (read by [`invocation`], which every
/// subcommand reaches through [`bench`]).
static OVERWRITE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Environment variables that set thread counts: their values go into meta.json.
const THREAD_VARIABLES: &[&str] = &["OMP_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS", "ORT_NUM_THREADS"];

/// The command line, the names (never values) of the environment variables that are set, and
/// the values of the thread-count variables.
fn invocation() -> Invocation {
    Invocation {
        command: std::env::args().collect(),
        configured: std::env::vars_os().filter_map(|(k, _)| k.into_string().ok()).collect(),
        thread_variables: THREAD_VARIABLES.iter().filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v))).collect(),
        overwrite: OVERWRITE.load(std::sync::atomic::Ordering::Relaxed),
    }
}

/// A bench over the located workspace, showing progress unless `quiet`.
fn bench(root: Option<PathBuf>, progress: &progress::Bars) -> Result<Bench<'_>> {
    Ok(Bench::new(workspace(root)?, invocation(), progress)?)
}

fn main() {
    let cli = Cli::parse();
    let root = cli.root;
    OVERWRITE.store(cli.overwrite, std::sync::atomic::Ordering::Relaxed);
    let result = match cli.command {
        Command::Score(args) => score::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Datasets { command } => datasets_cmd::run(command, root),
        Command::Eval(args) => eval::run(args, root),
        Command::Reproduce(args) => reproduce::run(args, root),
        Command::Regress(args) => regress::run(args, root),
        Command::Report(args) => report::run(args, root),
        Command::Embed(args) => embed::run(args, root),
        Command::Cost(args) => cost::run(args, root),
        Command::SqlEval(args) => sql_eval::run(args, root),
        Command::Generate(args) => generate::run(args, root),
        Command::Serve(args) => serve::run(args, root),
        Command::Train(args) => train::run(args, root),
        Command::ExportAdapter(args) => train::export_adapter(args, root),
        Command::Export { command } => export::run(command, root),
        Command::Tables(args) => tables::run(args, root),
        Command::SqlSchema(args) => sql_eval::schema(args),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
