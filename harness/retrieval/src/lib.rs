//! Retrievers of DeepRetrieval Bench.
//!
//! * [`bm25`]: BM25 with Anserini/Lucene semantics (configurable k1 and b, Lucene's lossy
//!   document-length norms, bag-of-words queries with repeated terms boosted) scored by our own
//!   code over tantivy's postings, because tantivy's scorer hard-codes k1=1.2, b=0.75.
//! * [`analysis`]: the English analyzer both index and queries go through.
//! * [`dense`]: ONNX encoders (ONNX Runtime loaded at run time), a resumable embedding cache,
//!   exact dot-product search and HNSW.
#![warn(missing_docs)]

pub mod analysis;
pub mod bm25;
pub mod boolean;
pub mod dense;
pub mod error;
pub mod rm3;
mod porter;

pub use analysis::{AnalyzerConfig, EnglishAnalyzer};
pub use bm25::{Bm25Index, Bm25Params, Bm25Searcher, DocFields, Document, IndexSettings};
pub use error::{Result, RetrievalError};
pub use porter::stem as porter_stem;
