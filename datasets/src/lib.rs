//! The dataset registry of DeepRetrieval Bench.
//!
//! A dataset is a *card* (a TOML file in `datasets/cards/`) plus a loader kind. Cards carry the
//! family, splits, metrics and cut-offs, license, retriever defaults and official download
//! locations with checksums. Adding a BEIR-format dataset is adding a card; the engine never
//! hard-codes a dataset name.
#![warn(missing_docs)]

pub mod beir;
pub mod card;
pub mod error;
pub mod fetch;
pub mod registry;

pub use card::{Card, DrCompatNdcg, EngineKind, Family, LoaderKind, PromptFamily, ReviewTargets, RewardFamily, TaskFacts};
pub use error::{DatasetError, Result};
pub use registry::{resolve_data_file, Registry};
