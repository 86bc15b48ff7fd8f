//! Dataset cards: what a dataset is, where its files are, how to score it.
use std::collections::BTreeMap;

use serde::Deserialize;

/// The paper's four task families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// Literature search on a real engine (PubMed, ClinicalTrials.gov).
    Literature,
    /// Evidence-seeking retrieval for open-domain QA (NQ, TriviaQA, SQuAD).
    EvidenceSeeking,
    /// Classic IR on BEIR-style corpora.
    ClassicIr,
    /// SQL database search (text-to-SQL scored by execution).
    Sql,
}

impl Family {
    /// Name as written in cards and tables.
    pub fn name(self) -> &'static str {
        match self {
            Family::Literature => "literature",
            Family::EvidenceSeeking => "evidence-seeking",
            Family::ClassicIr => "classic-ir",
            Family::Sql => "sql",
        }
    }
}

/// How a dataset's files are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoaderKind {
    /// BEIR layout: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.
    Beir,
    /// Open-domain QA questions with answer strings, over a passage corpus.
    OpenQa,
    /// Spider: dev/train json, tables.json, one SQLite file per database.
    Spider,
    /// BIRD: like Spider, with evidence.
    Bird,
    /// Systematic-review tasks (PICO) with included publication or trial ids.
    Review,
}

impl LoaderKind {
    /// Name as written in cards.
    pub fn name(self) -> &'static str {
        match self {
            LoaderKind::Beir => "beir",
            LoaderKind::OpenQa => "open-qa",
            LoaderKind::Spider => "spider",
            LoaderKind::Bird => "bird",
            LoaderKind::Review => "review",
        }
    }

    /// Whether this version of the harness can evaluate datasets of this kind.
    pub fn implemented(self) -> bool {
        matches!(self, LoaderKind::Beir | LoaderKind::Spider | LoaderKind::Bird | LoaderKind::Review | LoaderKind::OpenQa)
    }
}

/// One split: the judgement file that defines its queries.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Split {
    /// Qrels file, relative to the dataset folder.
    pub qrels: String,
    /// Where the split comes from (free text shown by `datasets list`).
    #[serde(default)]
    pub note: String,
}

/// A file to download when online.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Download {
    /// Official location.
    pub url: String,
    /// sha256 of the file, when known.
    #[serde(default)]
    pub sha256: Option<String>,
    /// md5 published by the provider, when no sha256 is known.
    #[serde(default)]
    pub md5: Option<String>,
    /// Size in bytes, when known.
    #[serde(default)]
    pub bytes: Option<u64>,
    /// Prefix to strip from archive member paths when unpacking (`scifact/`).
    #[serde(default)]
    pub strip_prefix: Option<String>,
    /// What the file is.
    #[serde(default)]
    pub note: String,
}

/// BM25 settings for a dataset.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bm25Defaults {
    /// k1.
    pub k1: f32,
    /// b.
    pub b: f32,
}

/// A dataset card.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Card {
    /// Registry name (`scifact`).
    pub name: String,
    /// Human title.
    pub title: String,
    /// Task family.
    pub family: Family,
    /// Loader kind.
    pub loader: LoaderKind,
    /// License of the data.
    pub license: String,
    /// One-paragraph description, including how the paper used it.
    pub description: String,
    /// The paper's headline metric for this dataset (trec_eval name or a family metric).
    pub paper_metric: String,
    /// Measures reported by `harness eval` (trec_eval names).
    #[serde(default)]
    pub measures: Vec<String>,
    /// Default search depth.
    #[serde(default = "default_depth")]
    pub depth: usize,
    /// Split used when none is given.
    #[serde(default)]
    pub default_split: Option<String>,
    /// Files needed to run offline, relative to `datasets/data/<name>/`.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// Splits.
    #[serde(default)]
    pub splits: BTreeMap<String, Split>,
    /// BM25 defaults (the paper's setting for this dataset).
    #[serde(default)]
    pub bm25: Option<Bm25Defaults>,
    /// Official downloads.
    #[serde(default)]
    pub download: Vec<Download>,
    /// Why the dataset cannot run offline, when it cannot.
    #[serde(default)]
    pub offline_note: String,
    /// How the paper's own NDCG scores this dataset (`dr-compat` mode only): `graded`
    /// (qrels-order ideal) or `single-target` (one row per qrels pair, as its SciFact eval).
    #[serde(default)]
    pub dr_compat_ndcg: Option<String>,
}

fn default_depth() -> usize {
    1000
}

impl Card {
    /// Parses a card and checks its invariants.
    pub fn parse(path: &str, text: &str) -> crate::Result<Card> {
        let bad = |cause: String| crate::DatasetError::BadCard { path: path.to_string(), cause };
        let card: Card = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        if let Some(split) = &card.default_split {
            if !card.splits.contains_key(split) {
                return Err(bad(format!("default_split '{split}' is not among the splits")));
            }
        }
        for m in &card.measures {
            // `hit.K,...` is answer containment (open-QA), measured by the harness, not trec_eval.
            match m.strip_prefix("hit.") {
                Some(ks) => {
                    if ks.split(',').any(|k| k.trim().parse::<usize>().map_or(true, |k| k == 0)) {
                        return Err(bad(format!("measure '{m}': hit.K needs positive whole numbers")));
                    }
                }
                None => {
                    harness_core::Measure::parse_list(m).map_err(|e| bad(e.to_string()))?;
                }
            }
        }
        for d in &card.download {
            for (what, value, len) in [("sha256", &d.sha256, 64), ("md5", &d.md5, 32)] {
                if let Some(v) = value {
                    if v.len() != len || !v.chars().all(|c| c.is_ascii_hexdigit()) {
                        return Err(bad(format!("{what} of {} is not {len} hex digits", d.url)));
                    }
                }
            }
        }
        Ok(card)
    }

    /// The trec_eval measures of this card.
    pub fn parsed_measures(&self) -> Vec<harness_core::Measure> {
        self.measures.iter().filter(|m| !m.starts_with("hit.")).flat_map(|m| harness_core::Measure::parse_list(m).unwrap_or_default()).collect()
    }
}
