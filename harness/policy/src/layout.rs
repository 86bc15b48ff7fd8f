//! Model folders written by other trainers. verl (the paper's trainer) checkpoints to
//! `global_step_N/actor/`: FSDP shards (`model_world_size_W_rank_R.pt`), and a `huggingface/`
//! folder with the config and tokenizer, which holds the weights only when the run saved the
//! `hf_model` content or after verl's model merger wrote them.
use std::path::{Path, PathBuf};

use crate::PolicyError;

fn has_weights(dir: &Path) -> bool {
    dir.join("model.safetensors").is_file() || dir.join("model.safetensors.index.json").is_file()
}

/// The folder to load for `dir`: `dir` itself when it holds a model (or anything else: the
/// loader's own errors then name what is missing); for a verl checkpoint given as its
/// `global_step_N` or its `actor` folder, the `huggingface` folder inside. A verl folder without
/// merged weights is an error that says how to merge them.
pub fn resolve_model_dir(dir: &Path) -> Result<PathBuf, PolicyError> {
    if dir.join("config.json").is_file() || crate::is_adapter_dir(dir) {
        return Ok(dir.to_path_buf());
    }
    let Some(hf) = [dir.join("actor").join("huggingface"), dir.join("huggingface")].into_iter().find(|d| d.join("config.json").is_file()) else {
        return Ok(dir.to_path_buf());
    };
    if has_weights(&hf) {
        return Ok(hf);
    }
    let actor = hf.parent().unwrap_or(dir);
    let shards = std::fs::read_dir(actor)
        .map(|entries| {
            entries.flatten().any(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.starts_with("model_world_size_") && name.ends_with(".pt")
            })
        })
        .unwrap_or(false);
    let cause = if shards {
        format!(
            "a verl checkpoint whose weights are FSDP shards only; merge them into a Hugging Face folder with `python -m verl.model_merger merge --backend fsdp --local_dir {} --target_dir OUT` and pass OUT",
            actor.display()
        )
    } else if hf.join("pytorch_model.bin").is_file() || hf.join("pytorch_model.bin.index.json").is_file() {
        "the weights are in PyTorch's pickle format (pytorch_model.bin); save them as safetensors (transformers: save_pretrained(..., safe_serialization=True))".to_string()
    } else {
        "a verl checkpoint's huggingface folder without model weights (model.safetensors)".to_string()
    };
    Err(PolicyError::Format { path: hf, cause })
}
