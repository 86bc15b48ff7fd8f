//! Text encoder on ONNX Runtime (loaded at run time from the setup folder) and Hugging Face
//! tokenizers: batches padded to their longest member, truncation at the model's limit,
//! mean or CLS pooling, L2 normalisation, and the model's query / passage prefixes.
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::session::builder::GraphOptimizationLevel;
use ort::session::{Session, SessionInputValue};
use ort::value::Tensor;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::dense::graph::{drop_softmax_nan_guards, GraphEdits};
use crate::error::{io_err, Result, RetrievalError};

/// Which form of the model's ONNX graph ONNX Runtime runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GraphForm {
    /// With the exact simplifications of [`crate::dense::graph`] (the default: same outputs, bit
    /// for bit, less work).
    #[default]
    Simplified,
    /// The file as published.
    AsPublished,
}

/// How token vectors become one text vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// Mean over tokens with attention mask 1 (sentence-transformers, E5, Contriever).
    Mean,
    /// The first token's vector (BGE).
    Cls,
}

/// Whether a text is a query or a passage (they may get different prefixes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// A search query.
    Query,
    /// A corpus passage.
    Passage,
}

/// What an encoder needs to know beyond its weights. Read from `harness-encoder.json` in the
/// model folder when present, else inferred from the folder name (bge, e5, else
/// sentence-transformers conventions).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EncoderSpec {
    /// Pooling.
    pub pooling: Pooling,
    /// Prepended to queries.
    #[serde(default)]
    pub query_prefix: String,
    /// Prepended to passages.
    #[serde(default)]
    pub passage_prefix: String,
    /// Truncation length in tokens.
    #[serde(default = "default_max_length")]
    pub max_length: usize,
    /// L2-normalise the output.
    #[serde(default = "default_true")]
    pub normalize: bool,
}

fn default_max_length() -> usize {
    256
}
fn default_true() -> bool {
    true
}

/// The file in a model folder that overrides the inferred [`EncoderSpec`].
pub const SPEC_FILE: &str = "harness-encoder.json";

impl EncoderSpec {
    /// The spec of the model in `dir`.
    pub fn for_model_dir(dir: &Path) -> Result<Self> {
        let file = dir.join(SPEC_FILE);
        if file.is_file() {
            let text = std::fs::read_to_string(&file).map_err(crate::error::io_err(&file))?;
            return serde_json::from_str(&text)
                .map_err(|e| RetrievalError::Invalid(format!("{}: {e}", file.display())));
        }
        let name = dir.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
        Ok(if name.contains("bge") {
            EncoderSpec {
                pooling: Pooling::Cls,
                query_prefix: "Represent this sentence for searching relevant passages: ".into(),
                passage_prefix: String::new(),
                max_length: 512,
                normalize: true,
            }
        } else if name.contains("e5") {
            EncoderSpec {
                pooling: Pooling::Mean,
                query_prefix: "query: ".into(),
                passage_prefix: "passage: ".into(),
                max_length: 512,
                normalize: true,
            }
        } else {
            EncoderSpec { pooling: Pooling::Mean, query_prefix: String::new(), passage_prefix: String::new(), max_length: 256, normalize: true }
        })
    }
}

/// Where `scripts/setup.sh` puts the ONNX Runtime library, relative to its `.deps` folder.
pub const SETUP_ORT_LIBRARY: &str = "onnxruntime/onnxruntime/capi/libonnxruntime.so.1.31.1";

/// The ONNX Runtime library for callers without a workspace (benches, tests):
/// `$ORT_DYLIB_PATH`, else the setup folder of the checkout this crate was built in.
pub fn default_ort_library() -> PathBuf {
    std::env::var_os("ORT_DYLIB_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.deps").join(SETUP_ORT_LIBRARY))
}

static ENVIRONMENT: OnceLock<std::result::Result<ort::environment::Environment, String>> = OnceLock::new();

fn environment(library: &Path) -> Result<&'static ort::environment::Environment> {
    let env = ENVIRONMENT.get_or_init(|| {
        if !library.is_file() {
            return Err(format!(
                "ONNX Runtime library not found at {}; run `bash scripts/setup.sh` (or set ORT_DYLIB_PATH)",
                library.display()
            ));
        }
        ort::init_from(library)
            .map_err(|e| format!("cannot load ONNX Runtime from {}: {e}", library.display()))?
            .with_name("deepretrieval-bench")
            .build()
            .map_err(|e| format!("cannot start ONNX Runtime: {e}"))
    });
    env.as_ref().map_err(|e| RetrievalError::Invalid(e.clone()))
}

/// ONNX Runtime's build string (version, commit) when this process has loaded it, for
/// provenance; None when nothing here needed it.
pub fn onnxruntime_build_info() -> Option<&'static str> {
    match ENVIRONMENT.get() {
        Some(Ok(_)) => Some(ort::info()),
        _ => None,
    }
}

/// A loaded encoder.
pub struct Encoder {
    session: Session,
    tokenizer: Tokenizer,
    spec: EncoderSpec,
    uses_token_type_ids: bool,
    output_name: String,
    model_sha256: String,
    graph_edits: GraphEdits,
}

fn ort_err(e: impl std::fmt::Display) -> RetrievalError {
    RetrievalError::Invalid(format!("ONNX Runtime: {e}"))
}

impl Encoder {
    /// Loads `model.onnx` and `tokenizer.json` from `dir`, with `threads` intra-op threads, on
    /// the ONNX Runtime of [`default_ort_library`].
    pub fn load(dir: &Path, threads: usize) -> Result<Self> {
        Self::load_with_runtime(dir, threads, &default_ort_library())
    }

    /// As [`Encoder::load`], on the ONNX Runtime library at `runtime` (the first library loaded
    /// serves the whole process).
    pub fn load_with_runtime(dir: &Path, threads: usize, runtime: &Path) -> Result<Self> {
        Self::load_with_runtime_as(dir, threads, runtime, GraphForm::default())
    }

    /// As [`Encoder::load_with_runtime`], running the graph in the given form.
    pub fn load_with_runtime_as(dir: &Path, threads: usize, runtime: &Path, form: GraphForm) -> Result<Self> {
        let model = dir.join("model.onnx");
        let tokenizer_file = dir.join("tokenizer.json");
        for f in [&model, &tokenizer_file] {
            if !f.is_file() {
                return Err(RetrievalError::Invalid(format!(
                    "model file {} not found; run `bash scripts/setup.sh` or pass a folder with model.onnx and tokenizer.json",
                    f.display()
                )));
            }
        }
        let spec = EncoderSpec::for_model_dir(dir)?;
        let env = environment(runtime)?;
        let published = std::fs::read(&model).map_err(io_err(&model))?;
        let model_sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&published));
        let (graph, graph_edits) = match form {
            GraphForm::Simplified => drop_softmax_nan_guards(published)
                .map_err(|e| RetrievalError::Invalid(format!("{}: {e}", model.display())))?,
            GraphForm::AsPublished => (published, GraphEdits::default()),
        };
        let session = Session::builder(env)
            .map_err(ort_err)?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(ort_err)?
            .with_intra_threads(threads.max(1))
            .map_err(ort_err)?
            .commit_from_memory(&graph)
            .map_err(|e| RetrievalError::Invalid(format!("ONNX Runtime cannot load {}: {e}", model.display())))?;
        let mut tokenizer = Tokenizer::from_file(&tokenizer_file)
            .map_err(|e| RetrievalError::Invalid(format!("{}: {e}", tokenizer_file.display())))?;
        // The shipped MiniLM tokenizer pads and truncates to a fixed 128; batches are padded to
        // their longest member instead and truncated at the model's limit.
        tokenizer.with_padding(Some(PaddingParams { strategy: PaddingStrategy::BatchLongest, ..Default::default() }));
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: spec.max_length, ..Default::default() }))
            .map_err(|e| RetrievalError::Invalid(format!("tokenizer truncation: {e}")))?;
        let uses_token_type_ids = session.inputs().iter().any(|i| i.name() == "token_type_ids");
        let output_name = session
            .outputs()
            .iter()
            .map(|o| o.name().to_string())
            .find(|n| n == "last_hidden_state")
            .or_else(|| session.outputs().first().map(|o| o.name().to_string()))
            .ok_or_else(|| RetrievalError::Invalid(format!("{} has no outputs", model.display())))?;
        Ok(Encoder { session, tokenizer, spec, uses_token_type_ids, output_name, model_sha256, graph_edits })
    }

    /// The spec in force.
    pub fn spec(&self) -> &EncoderSpec {
        &self.spec
    }

    /// sha256 of model.onnx as published (part of embedding cache keys: the simplified graph
    /// gives the same vectors).
    pub fn model_sha256(&self) -> &str {
        &self.model_sha256
    }

    /// What was simplified in the graph ONNX Runtime runs.
    pub fn graph_edits(&self) -> GraphEdits {
        self.graph_edits
    }

    /// Encodes one batch; returns one vector per text.
    pub fn encode(&mut self, texts: &[&str], kind: TextKind) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let prefix = match kind {
            TextKind::Query => &self.spec.query_prefix,
            TextKind::Passage => &self.spec.passage_prefix,
        };
        let inputs: Vec<String> = texts.iter().map(|t| format!("{prefix}{t}")).collect();
        let encodings = self
            .tokenizer
            .encode_batch(inputs, true)
            .map_err(|e| RetrievalError::Invalid(format!("tokenizer: {e}")))?;
        let batch = encodings.len();
        let seq = encodings[0].get_ids().len();
        let flat = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Vec<i64> {
            encodings.iter().flat_map(|e| f(e).iter().map(|&v| v as i64)).collect()
        };
        let ids = flat(&|e| e.get_ids());
        let mask = flat(&|e| e.get_attention_mask());
        // Without the softmax NaN guards, a text with no real token would get NaN token
        // vectors (the published graph gives it finite ones). Mean pooling never reads them
        // (it averages real tokens only, so such a text is the zero vector either way); CLS
        // pooling would, so that case is refused.
        if self.graph_edits.softmax_nan_guards_dropped > 0 && self.spec.pooling == Pooling::Cls {
            if let Some(row) = (0..batch).find(|&b| mask[b * seq..(b + 1) * seq].iter().all(|&m| m == 0)) {
                return Err(RetrievalError::Invalid(format!(
                    "text {row} of the batch has no tokens after tokenization; CLS pooling has nothing to read"
                )));
            }
        }
        let mut feed: Vec<(Cow<'_, str>, SessionInputValue<'_>)> = vec![
            ("input_ids".into(), Tensor::from_array(([batch, seq], ids)).map_err(ort_err)?.into()),
            ("attention_mask".into(), Tensor::from_array(([batch, seq], mask.clone())).map_err(ort_err)?.into()),
        ];
        if self.uses_token_type_ids {
            let types = flat(&|e| e.get_type_ids());
            feed.push(("token_type_ids".into(), Tensor::from_array(([batch, seq], types)).map_err(ort_err)?.into()));
        }
        let outputs = self.session.run(feed).map_err(ort_err)?;
        let (shape, hidden) = outputs[self.output_name.as_str()].try_extract_tensor::<f32>().map_err(ort_err)?;
        let dim = *shape.last().ok_or_else(|| RetrievalError::Invalid("empty output shape".into()))? as usize;
        let mut out = Vec::with_capacity(batch);
        for b in 0..batch {
            let tokens = &hidden[b * seq * dim..(b + 1) * seq * dim];
            let mut v = vec![0f32; dim];
            match self.spec.pooling {
                Pooling::Cls => v.copy_from_slice(&tokens[..dim]),
                Pooling::Mean => {
                    let m = &mask[b * seq..(b + 1) * seq];
                    let n = m.iter().filter(|&&x| x != 0).count().max(1) as f32;
                    for (t, &keep) in m.iter().enumerate() {
                        if keep != 0 {
                            for (acc, x) in v.iter_mut().zip(&tokens[t * dim..(t + 1) * dim]) {
                                *acc += x;
                            }
                        }
                    }
                    v.iter_mut().for_each(|x| *x /= n);
                }
            }
            if self.spec.normalize {
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                v.iter_mut().for_each(|x| *x /= norm);
            }
            out.push(v);
        }
        Ok(out)
    }

    /// Encodes many texts in batches of `batch_size`, batching texts of similar length together
    /// (longest first, as sentence-transformers does) so that less padding is computed; the
    /// result is in input order and equal to encoding each text alone, up to float rounding.
    pub fn encode_many(&mut self, texts: &[&str], kind: TextKind, batch_size: usize) -> Result<Vec<Vec<f32>>> {
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(texts[i].len()));
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        for group in order.chunks(batch_size.max(1)) {
            let batch: Vec<&str> = group.iter().map(|&i| texts[i]).collect();
            for (&i, v) in group.iter().zip(self.encode(&batch, kind)?) {
                out[i] = v;
            }
        }
        Ok(out)
    }
}
