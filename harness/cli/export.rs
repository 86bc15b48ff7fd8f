//! `harness export verl`: a dataset split as the parquet file verl's PPO trainer reads.
use std::path::PathBuf;

use anyhow::Result;
use harness_bench::train::{export_verl, VerlSpec};

use crate::progress::Bars;

#[derive(clap::Subcommand)]
pub enum ExportCommand {
    /// Write a split as verl's training parquet (data_source, prompt, ability, reward_model,
    /// extra_info), every task family, the examples `harness train` builds, in its order.
    Verl(VerlArgs),
}

#[derive(clap::Args)]
pub struct VerlArgs {
    #[arg(long)]
    dataset: String,
    #[arg(long, default_value = "train")]
    split: String,
    /// Prompts for a direct answer (the paper's "w/o reasoning" variant) instead of reasoning in
    /// <think> first.
    #[arg(long)]
    no_reasoning: bool,
    /// Classic IR: the retriever kind the prompt names (bm25 or dense).
    #[arg(long, default_value = "bm25")]
    retriever: String,
    /// Literature: the engine whose query language the prompt asks for (default: the card's).
    #[arg(long)]
    engine: Option<String>,
    /// The parquet file to write (an existing one is replaced only with --overwrite).
    #[arg(long)]
    out: PathBuf,
}

pub fn run(command: ExportCommand, root: Option<PathBuf>) -> Result<()> {
    match command {
        ExportCommand::Verl(args) => {
            anyhow::ensure!(!args.out.exists() || crate::invocation().overwrite, "{} exists: pass --overwrite to replace it", args.out.display());
            let bars = Bars::new(true);
            let bench = crate::bench(root, &bars)?;
            let spec = VerlSpec { dataset: args.dataset, split: args.split, reasoning: !args.no_reasoning, retriever: args.retriever, engine: args.engine, out: args.out };
            let done = export_verl(&bench, &spec)?;
            println!("wrote {} ({} rows of data_source '{}'; columns {})", done.path.display(), done.rows, done.data_source, done.columns.join(", "));
            Ok(())
        }
    }
}
