//! `harness embed`: encode lines of standard input with a dense model, one JSON array per line.
use std::io::{BufRead, Write};
use std::time::Instant;

use anyhow::{Context, Result};
use harness_retrieval::dense::{Encoder, GraphForm, TextKind};

#[derive(clap::Args)]
pub struct EmbedArgs {
    /// Model folder (model.onnx + tokenizer.json) or `minilm` (the setup's all-MiniLM-L6-v2 int8).
    #[arg(long, default_value = "minilm")]
    model: String,
    /// Encode as queries (query prefix) instead of passages.
    #[arg(long)]
    query: bool,
    /// Texts per model call.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// ONNX Runtime intra-op threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Print texts/s to standard error at the end.
    #[arg(long)]
    throughput: bool,
    /// Run model.onnx as published, without the exact simplifications (the softmax NaN guards
    /// dropped) that the default applies: for comparing the two; the vectors are the same.
    #[arg(long)]
    graph_as_published: bool,
}

pub fn run(args: EmbedArgs, root: Option<std::path::PathBuf>) -> Result<()> {
    let workspace = crate::workspace(root)?;
    let dir = if args.model == "minilm" { workspace.default_encoder() } else { args.model.clone().into() };
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let form = if args.graph_as_published { GraphForm::AsPublished } else { GraphForm::Simplified };
    let mut encoder = Encoder::load_with_runtime_as(&dir, threads, &workspace.onnxruntime, form)?;
    let kind = if args.query { TextKind::Query } else { TextKind::Passage };
    let lines: Vec<String> = std::io::stdin().lock().lines().collect::<std::io::Result<_>>().context("reading stdin")?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let start = Instant::now();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    for v in encoder.encode_many(&refs, kind, args.batch_size)? {
        serde_json::to_writer(&mut out, &v)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    if args.throughput {
        let s = start.elapsed().as_secs_f64();
        eprintln!("encoded {} texts in {s:.2}s: {:.1} texts/s (batch {}, {threads} threads)", lines.len(), lines.len() as f64 / s, args.batch_size);
    }
    Ok(())
}
