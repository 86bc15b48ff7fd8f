//! `CellSpec`: one evaluation cell (dataset x split x retriever x method, with every setting).
//! The same type is built by `harness eval` from its flags and read from the `[[cell]]` tables
//! of `results/tables/*.toml` and the `[[check]]` tables of `results/reference/regress.toml`;
//! every default lives in [`defaults`] and nowhere else.
use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// Default values of a cell's settings (the CLI's flag defaults point here).
pub mod defaults {
    pub const RETRIEVER: &str = "bm25";
    pub const METHOD: &str = "original";
    pub const FIELDS: &str = "flat";
    pub const HNSW_M: usize = 32;
    pub const HNSW_EF_CONSTRUCTION: usize = 200;
    pub const HNSW_EF: usize = 256;
    pub const THREADS: usize = 1;
    /// Seconds one SQL statement may run (the paper's 30).
    pub const SQL_TIMEOUT_SECS: f64 = 30.0;
    pub const MAX_NEW_TOKENS: usize = 512;
    pub const BATCH_SIZE: usize = 8;
    /// 0 = greedy.
    pub const TEMPERATURE: f64 = 0.0;
    pub const SEED: u64 = 0;
    pub const DEVICE: &str = "auto";
    /// Literature: a cell where more than this fraction of engine requests failed (network,
    /// server errors; not unusable queries, which are scored) is marked failed, not measured.
    pub const MAX_ENGINE_FAILURES: f64 = 0.05;
}

/// One evaluation cell. Optional settings left out take the dataset card's value.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct CellSpec {
    /// Dataset name (a card).
    pub dataset: String,
    /// Split (default: the card's).
    pub split: Option<String>,
    /// `bm25`, `dense[:MODEL]`, `hnsw[:MODEL]` (`sqlite` for SQL datasets, ignored).
    pub retriever: String,
    /// `original`, `rm3[:FB_DOCS,FB_TERMS,WEIGHT]`, `llm:DIR` (`llm:default`: the setup's
    /// model), `checkpoint:DIR`, `api:MODEL`, `queries:FILE` (TSV of query id and text); `gold`
    /// for SQL datasets.
    pub method: String,
    /// BM25 k1 and b (default: the card's, else Anserini's, `Bm25Params::default()`).
    pub k1: Option<f32>,
    pub b: Option<f32>,
    /// `flat` (title + text in one field, as the paper) or `multifield`.
    pub fields: String,
    pub hnsw_m: usize,
    pub hnsw_ef_construction: usize,
    pub hnsw_ef: usize,
    /// Documents retrieved per query (default: the card's depth).
    pub depth: Option<usize>,
    /// Only the first N queries (reviews, questions) of the split, in file order; measures
    /// average over those alone (their qrels only).
    pub limit: Option<usize>,
    /// Search threads (1 gives single-thread timings).
    pub threads: usize,
    /// Measures in trec_eval syntax, `hit.K,...` for answer containment (default: the card's).
    pub measures: Vec<String>,
    /// Also compute the paper's own NDCG@10 (kept apart from the standard table).
    pub dr_compat: bool,
    /// SQL: folder with `<db_id>/<db_id>.sqlite` (default: the vendored databases).
    pub db_dir: Option<PathBuf>,
    pub sql_timeout_secs: f64,
    /// Model methods: answer without a `<think>` block.
    pub no_reasoning: bool,
    pub max_new_tokens: usize,
    pub batch_size: usize,
    pub temperature: f64,
    pub seed: u64,
    /// Local models: `auto`, `cpu`, `cuda`, `cuda:N`.
    pub device: String,
    /// Literature: `offline`, `pubmed` or `ctgov` (default: the card's engine).
    pub engine: Option<String>,
    /// Literature: review tasks in the paper's JSONL format instead of the vendored ones.
    pub tasks: Option<PathBuf>,
    /// Literature: the largest fraction of failed engine requests a measured cell may have.
    pub max_engine_failures: f64,
    /// Open-QA: the DPR passages file.
    pub passages: Option<PathBuf>,
    /// Output folder (default: a new folder under the workspace's runs). Never read from files.
    #[serde(skip)]
    pub out: Option<PathBuf>,
}

impl Default for CellSpec {
    fn default() -> Self {
        CellSpec {
            dataset: String::new(),
            split: None,
            retriever: defaults::RETRIEVER.into(),
            method: defaults::METHOD.into(),
            k1: None,
            b: None,
            fields: defaults::FIELDS.into(),
            hnsw_m: defaults::HNSW_M,
            hnsw_ef_construction: defaults::HNSW_EF_CONSTRUCTION,
            hnsw_ef: defaults::HNSW_EF,
            depth: None,
            limit: None,
            threads: defaults::THREADS,
            measures: Vec::new(),
            dr_compat: false,
            db_dir: None,
            sql_timeout_secs: defaults::SQL_TIMEOUT_SECS,
            no_reasoning: false,
            max_new_tokens: defaults::MAX_NEW_TOKENS,
            batch_size: defaults::BATCH_SIZE,
            temperature: defaults::TEMPERATURE,
            seed: defaults::SEED,
            device: defaults::DEVICE.into(),
            engine: None,
            max_engine_failures: defaults::MAX_ENGINE_FAILURES,
            tasks: None,
            passages: None,
            out: None,
        }
    }
}

impl CellSpec {
    /// The `harness eval` command line that runs this cell: the dataset and every setting that
    /// differs from its default.
    pub fn eval_command(&self) -> String {
        let d = CellSpec::default();
        let mut args = vec!["harness eval".to_string(), format!("--dataset {}", self.dataset)];
        let mut flag = |name: &str, value: String| args.push(format!("--{name} {value}"));
        if let Some(split) = &self.split {
            flag("split", split.clone());
        }
        if self.retriever != d.retriever {
            flag("retriever", self.retriever.clone());
        }
        flag("method", self.method.clone());
        if let Some(k1) = self.k1 {
            flag("bm25-k1", k1.to_string());
        }
        if let Some(b) = self.b {
            flag("bm25-b", b.to_string());
        }
        if self.fields != d.fields {
            flag("fields", self.fields.clone());
        }
        if let Some(depth) = self.depth {
            flag("depth", depth.to_string());
        }
        if let Some(limit) = self.limit {
            flag("limit", limit.to_string());
        }
        for m in &self.measures {
            args.push(format!("-m {m}"));
        }
        if let Some(engine) = &self.engine {
            args.push(format!("--engine {engine}"));
        }
        if self.max_engine_failures != d.max_engine_failures {
            args.push(format!("--max-engine-failures {}", self.max_engine_failures));
        }
        if self.method.starts_with("llm:") || self.method.starts_with("checkpoint:") || self.method.starts_with("api:") {
            if self.no_reasoning {
                args.push("--no-reasoning".into());
            }
            if self.max_new_tokens != d.max_new_tokens {
                args.push(format!("--max-new-tokens {}", self.max_new_tokens));
            }
            if self.temperature != d.temperature {
                args.push(format!("--temperature {}", self.temperature));
            }
        }
        args.join(" ")
    }

    /// `items` cut to the spec's `limit` (all of them without one).
    pub fn limited<T>(&self, mut items: Vec<T>) -> Vec<T> {
        if let Some(n) = self.limit {
            items.truncate(n);
        }
        items
    }

    /// Generation settings of model methods.
    pub fn llm_settings(&self) -> harness_baselines::LlmSettings {
        harness_baselines::LlmSettings {
            reasoning: !self.no_reasoning,
            sampling: harness_policy::SamplingParams {
                max_new_tokens: self.max_new_tokens,
                temperature: self.temperature,
                seed: self.seed,
                ..Default::default()
            },
            batch_size: self.batch_size,
        }
    }
}

/// Rejects keys that neither the outer table nor its flattened [`CellSpec`] know (serde cannot
/// deny unknown fields through `flatten`; a typo must not silently become a default).
pub(crate) fn reject_unknown(what: &str, extra: &BTreeMap<String, toml::Value>) -> Result<()> {
    if let Some(key) = extra.keys().next() {
        bail!("{what}: unknown field `{key}`");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Outer {
        label: String,
        #[serde(flatten)]
        spec: CellSpec,
        #[serde(flatten)]
        extra: BTreeMap<String, toml::Value>,
    }

    #[test]
    fn table_cells_fill_the_spec_and_unknown_keys_are_caught() {
        let o: Outer = toml::from_str("label = 'x'\ndataset = 'scifact'\nk1 = 1.2\nmeasures = ['map']\n").unwrap();
        assert_eq!(o.label, "x");
        assert_eq!((o.spec.dataset.as_str(), o.spec.k1, o.spec.b), ("scifact", Some(1.2), None));
        assert_eq!(o.spec.hnsw_ef, defaults::HNSW_EF);
        assert!(reject_unknown("cell", &o.extra).is_ok());
        let typo: Outer = toml::from_str("label = 'x'\ndataset = 'scifact'\nk_1 = 1.2\n").unwrap();
        assert!(reject_unknown("cell", &typo.extra).unwrap_err().to_string().contains("k_1"));
    }
}
