//! Query-generation methods compared side by side: each turns a task's query into the query
//! the retriever sees. `original` (the query as given), `rm3` (pseudo-relevance feedback, applied
//! by the BM25 retriever with the settings it carries), `llm:DIR` (a prompted local model),
//! `checkpoint:DIR` (a trained policy, same code) and `api:MODEL` (any OpenAI-compatible chat
//! endpoint, with a response cache).

pub mod api;
pub mod llm;
pub mod prompts;
pub mod serve;

use std::path::PathBuf;

use harness_core::Query;

pub use llm::{LlmMethod, LlmSettings};
pub use prompts::{Prompts, Task};

/// What a method produced for one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    /// The query id.
    pub query_id: String,
    /// The text handed to the retriever.
    pub text: String,
}

/// RM3 settings (Anserini's names and defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rm3Params {
    /// Feedback documents.
    pub fb_docs: usize,
    /// Expansion terms kept.
    pub fb_terms: usize,
    /// Weight of the original query in the interpolation.
    pub original_query_weight: f32,
}

impl Default for Rm3Params {
    fn default() -> Self {
        Rm3Params { fb_docs: 10, fb_terms: 10, original_query_weight: 0.5 }
    }
}

/// A query-generation method.
pub trait QueryMethod {
    /// Name used in tables (`original`).
    fn name(&self) -> String;
    /// Rewrites a batch of queries (a batch lets model-based methods batch their calls).
    fn rewrite(&mut self, queries: &[Query]) -> Result<Vec<Rewrite>, MethodError>;
    /// Pseudo-relevance feedback the retriever must apply after a first pass, if any.
    fn feedback(&self) -> Option<Rm3Params> {
        None
    }
    /// Facts about the last `rewrite` for the run's meta.json (model, format outcomes...).
    fn report(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
    /// One record per generated query of the last `rewrite` (for rewrites.jsonl), if any.
    fn generations(&self) -> Vec<serde_json::Value> {
        Vec::new()
    }
}

/// Errors of methods.
#[derive(Debug, thiserror::Error)]
pub enum MethodError {
    /// The method name is not known.
    #[error("unknown method '{0}' (available: original, rm3[:FB_DOCS,FB_TERMS,WEIGHT], llm:DIR, checkpoint:DIR, api:MODEL, queries:FILE)")]
    Unknown(String),
    /// Bad settings in a method name.
    #[error("method '{0}': {1}")]
    Settings(String, String),
    /// The model could not be loaded or run.
    #[error("model: {0}")]
    Model(String),
    /// The API endpoint failed.
    #[error("api: {0}")]
    Api(String),
}

/// The query exactly as the dataset gives it.
#[derive(Debug, Default, Clone)]
pub struct Original;

impl QueryMethod for Original {
    fn name(&self) -> String {
        "original".into()
    }
    fn rewrite(&mut self, queries: &[Query]) -> Result<Vec<Rewrite>, MethodError> {
        Ok(queries.iter().map(|q| Rewrite { query_id: q.id.clone(), text: q.text.clone() }).collect())
    }
}

/// RM3: the original query, expanded by the retriever from its own first-pass results.
#[derive(Debug, Clone)]
pub struct Rm3 {
    /// Settings.
    pub params: Rm3Params,
}

impl QueryMethod for Rm3 {
    fn name(&self) -> String {
        let p = self.params;
        format!("rm3(fb_docs={},fb_terms={},w={})", p.fb_docs, p.fb_terms, p.original_query_weight)
    }
    fn rewrite(&mut self, queries: &[Query]) -> Result<Vec<Rewrite>, MethodError> {
        Original.rewrite(queries)
    }
    fn feedback(&self) -> Option<Rm3Params> {
        Some(self.params)
    }
}

fn parse_rm3(name: &str, spec: &str) -> Result<Rm3Params, MethodError> {
    let bad = |why: &str| MethodError::Settings(name.to_string(), why.to_string());
    let parts: Vec<&str> = spec.split(',').collect();
    if parts.len() != 3 {
        return Err(bad("expected rm3:FB_DOCS,FB_TERMS,ORIGINAL_QUERY_WEIGHT"));
    }
    let fb_docs = parts[0].trim().parse().map_err(|_| bad("FB_DOCS is not a whole number"))?;
    let fb_terms = parts[1].trim().parse().map_err(|_| bad("FB_TERMS is not a whole number"))?;
    let w: f32 = parts[2].trim().parse().map_err(|_| bad("the weight is not a number"))?;
    if !(0.0..=1.0).contains(&w) || fb_docs == 0 || fb_terms == 0 {
        return Err(bad("need FB_DOCS >= 1, FB_TERMS >= 1 and 0 <= WEIGHT <= 1"));
    }
    Ok(Rm3Params { fb_docs, fb_terms, original_query_weight: w })
}

/// The prompt task of each query (built by the caller from the dataset's card).
pub type TaskOf = std::sync::Arc<dyn Fn(&Query) -> Task + Send + Sync>;

/// What model-based methods need to know about the run.
pub struct MethodContext {
    /// Device for local models (`auto`, `cpu`, `cuda`).
    pub device: String,
    /// Generation settings.
    pub llm: LlmSettings,
    /// Where API responses are cached.
    pub cache_dir: PathBuf,
    /// Where model folders live (the base model of a LoRA adapter is found here by name).
    pub models_dir: PathBuf,
    /// The prompt task of a query.
    pub task: TaskOf,
}

/// Builds a method from its command-line name: `original`, `rm3`, `rm3:10,10,0.5`, `llm:DIR`,
/// `checkpoint:DIR`, `api:MODEL`.
pub fn build(name: &str, ctx: &MethodContext) -> Result<Box<dyn QueryMethod>, MethodError> {
    let task_of = ctx.task.clone();
    let task = move |q: &Query| task_of(q);
    match name.split_once(':') {
        None if name == "original" => Ok(Box::new(Original)),
        None if name == "rm3" => Ok(Box::new(Rm3 { params: Rm3Params::default() })),
        Some(("rm3", spec)) => Ok(Box::new(Rm3 { params: parse_rm3(name, spec)? })),
        Some((family @ ("llm" | "checkpoint"), dir)) => {
            let dir = PathBuf::from(dir);
            let label = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| dir.display().to_string());
            let device = harness_policy::parse_device(&ctx.device).map_err(|e| MethodError::Model(e.to_string()))?;
            let mode = if ctx.llm.reasoning { "" } else { ",no-reasoning" };
            let method = LlmMethod::load(format!("{family}:{label}{mode}"), &dir, &ctx.models_dir, device, ctx.llm.clone(), Box::new(task))?;
            Ok(Box::new(method))
        }
        Some(("api", model)) => Ok(Box::new(api::ApiMethod::from_env(model, ctx.llm.clone(), ctx.cache_dir.join("api"), Box::new(task))?)),
        Some(("queries", file)) => Ok(Box::new(FromFile::read(std::path::Path::new(file))?)),
        _ => Err(MethodError::Unknown(name.to_string())),
    }
}

/// Queries written elsewhere (a rule, another system, a model run outside this suite), read
/// from a TSV file of `query_id<TAB>text` lines: the same retriever and scoring for any
/// rewrites. Every query of the cell must have a line.
#[derive(Debug, Clone)]
pub struct FromFile {
    path: PathBuf,
    texts: std::collections::HashMap<String, String>,
}

impl FromFile {
    pub fn read(path: &std::path::Path) -> Result<FromFile, MethodError> {
        let bad = |cause: String| MethodError::Settings(format!("queries:{}", path.display()), cause);
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let mut texts = std::collections::HashMap::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let (id, query) = line.split_once('\t').ok_or_else(|| bad(format!("line {}: expected query_id<TAB>text", i + 1)))?;
            if texts.insert(id.trim().to_string(), query.to_string()).is_some() {
                return Err(bad(format!("line {}: query '{}' appears twice", i + 1, id.trim())));
            }
        }
        Ok(FromFile { path: path.to_path_buf(), texts })
    }
}

impl QueryMethod for FromFile {
    fn name(&self) -> String {
        format!("queries:{}", self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default())
    }
    fn rewrite(&mut self, queries: &[Query]) -> Result<Vec<Rewrite>, MethodError> {
        queries
            .iter()
            .map(|q| match self.texts.get(&q.id) {
                Some(text) => Ok(Rewrite { query_id: q.id.clone(), text: text.clone() }),
                None => Err(MethodError::Settings(format!("queries:{}", self.path.display()), format!("no line for query '{}'", q.id))),
            })
            .collect()
    }
    fn report(&self) -> serde_json::Value {
        serde_json::json!({"file": self.path, "sha256": harness_core::io::sha256_file(&self.path).ok()})
    }
}

/// Builds a method that needs no run context (`original`, `rm3...`).
pub fn from_name(name: &str) -> Result<Box<dyn QueryMethod>, MethodError> {
    match name {
        "original" => Ok(Box::new(Original)),
        "rm3" => Ok(Box::new(Rm3 { params: Rm3Params::default() })),
        n if n.starts_with("rm3:") => Ok(Box::new(Rm3 { params: parse_rm3(n, &n[4..])? })),
        other => Err(MethodError::Unknown(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_methods_and_bad_names() {
        let mut m = from_name("original").unwrap();
        let q = vec![Query { id: "1".into(), text: "a b".into() }];
        assert_eq!(m.rewrite(&q).unwrap(), vec![Rewrite { query_id: "1".into(), text: "a b".into() }]);
        assert!(m.feedback().is_none());
        let rm3 = from_name("rm3").unwrap();
        assert_eq!(rm3.feedback(), Some(Rm3Params::default()));
        assert_eq!(rm3.name(), "rm3(fb_docs=10,fb_terms=10,w=0.5)");
        assert_eq!(from_name("rm3:5,20,0.3").unwrap().feedback(), Some(Rm3Params { fb_docs: 5, fb_terms: 20, original_query_weight: 0.3 }));
        assert!(from_name("rm3:5,20").is_err());
        assert!(from_name("rm3:5,20,2").is_err());
        assert!(matches!(from_name("magic"), Err(MethodError::Unknown(_))));
    }

    #[test]
    fn queries_from_a_file_and_its_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.tsv");
        std::fs::write(&path, "1\tfirst query\n\n2\tsecond\n").unwrap();
        let mut m = FromFile::read(&path).unwrap();
        assert_eq!(m.name(), "queries:q.tsv");
        let qs = vec![Query { id: "2".into(), text: "x".into() }, Query { id: "1".into(), text: "y".into() }];
        let got: Vec<String> = m.rewrite(&qs).unwrap().into_iter().map(|r| r.text).collect();
        assert_eq!(got, ["second", "first query"]);
        let err = m.rewrite(&[Query { id: "3".into(), text: "z".into() }]).unwrap_err().to_string();
        assert!(err.contains("no line for query '3'"), "{err}");
        std::fs::write(&path, "1\ta\n1\tb\n").unwrap();
        assert!(FromFile::read(&path).unwrap_err().to_string().contains("line 2: query '1' appears twice"));
        std::fs::write(&path, "no tab here\n").unwrap();
        assert!(FromFile::read(&path).unwrap_err().to_string().contains("line 1: expected query_id<TAB>text"));
    }
}
