//! `harness`: the DeepRetrieval Bench command line.
mod cost;
mod datasets_cmd;
mod embed;
mod eval;
mod generate;
mod literature_eval;
mod open_qa_eval;
mod paths;
mod regress;
mod reproduce;
mod retrieve;
mod score;
mod serve;
mod sql_dataset;
mod sql_eval;
mod tables;
mod train;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "harness", version, about = "DeepRetrieval Bench: reproduce and extend DeepRetrieval (arXiv 2503.00223)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Score a TREC run against qrels with trec_eval's semantics and output format.
    Score(score::ScoreArgs),
    /// List or fetch datasets.
    Datasets {
        #[command(subcommand)]
        command: datasets_cmd::DatasetsCommand,
    },
    /// Run one method with one retriever on one dataset split and report its metrics.
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
    /// Stack the tables of several runs into one (csv, parquet, md).
    Tables(tables::TablesArgs),
    /// Reproduce a table of the paper: the paper's numbers beside every cell this build can run.
    Reproduce(reproduce::ReproduceArgs),
    /// Rerun the fast reference cells and compare them with results/reference (non-zero exit on
    /// a regression).
    Regress(regress::RegressArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Score(args) => score::run(args),
        Command::Datasets { command } => datasets_cmd::run(command),
        Command::Eval(args) => eval::run_all(args),
        Command::Reproduce(args) => reproduce::run(args),
        Command::Regress(args) => regress::run(args),
        Command::Embed(args) => embed::run(args),
        Command::Cost(args) => cost::run(args),
        Command::SqlEval(args) => sql_eval::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Train(args) => train::run(args),
        Command::Tables(args) => tables::run(args),
        Command::SqlSchema(args) => sql_eval::schema(args),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
