//! The query method of a cell, with the prompt task its dataset's card describes.
use std::sync::Arc;

use anyhow::{bail, Result};
use harness_baselines::{MethodContext, QueryMethod, Task, TaskOf};
use harness_core::Query;
use harness_datasets::{Card, PromptFamily};

use crate::context::Bench;
use crate::spec::CellSpec;

/// The method name with workspace shorthands resolved: `llm:default` is the setup's model; a
/// relative model folder or queries file that is not found from the current directory is
/// looked up from the workspace root (tables name committed files as `results/reference/...`).
pub fn resolve(bench: &Bench, name: &str) -> String {
    match name.split_once(':') {
        _ if name == "llm:default" => format!("llm:{}", bench.workspace.default_policy().display()),
        Some((family @ ("llm" | "checkpoint" | "queries"), dir)) => {
            let path = std::path::Path::new(dir);
            let in_root = bench.workspace.root.join(path);
            if path.is_relative() && !path.exists() && in_root.exists() { format!("{family}:{}", in_root.display()) } else { name.to_string() }
        }
        _ => name.to_string(),
    }
}

/// Builds the spec's method; model methods prompt with `task_of`.
pub fn build(bench: &Bench, spec: &CellSpec, task_of: TaskOf) -> Result<Box<dyn QueryMethod>> {
    let context = MethodContext {
        device: spec.device.clone(),
        llm: spec.llm_settings(),
        cache_dir: bench.workspace.cache.clone(),
        models_dir: bench.workspace.models.clone(),
        task: task_of,
    };
    Ok(harness_baselines::build(&resolve(bench, &spec.method), &context)?)
}

/// The prompt task of a query for datasets whose queries go to a retriever: the card's
/// classic-IR wording (what the input is, what relevant documents do) or its evidence-seeking
/// corpus. `retriever_kind` is `sparse` or `dense`.
pub fn query_task(card: &Card, retriever_kind: &str) -> Result<TaskOf> {
    let facts = &card.task;
    Ok(match facts.prompt {
        PromptFamily::ClassicIr => {
            let (input, goal) = (facts.input.clone().unwrap_or_default(), facts.goal.clone().unwrap_or_default());
            let kind = retriever_kind.to_string();
            Arc::new(move |q: &Query| Task::classic_ir(&input, &goal, &kind, &q.text))
        }
        PromptFamily::Evidence => {
            let corpus = facts.corpus.clone().unwrap_or_default();
            Arc::new(move |q: &Query| Task::Evidence { corpus: corpus.clone(), question: q.text.clone() })
        }
        other => bail!("dataset '{}' has {other:?} prompts, which do not apply to a query for a retriever", card.name),
    })
}
