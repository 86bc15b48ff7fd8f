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
    /// A file (relative to the dataset folder) listing the ids of the split's queries, one per
    /// line, when the split is a fixed subset of the queries in `qrels` (review datasets).
    #[serde(default)]
    pub ids: Option<String>,
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

/// Which prompt template a task uses (`baselines/prompts/<family>.jinja`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PromptFamily {
    /// A query or claim rewritten for a retriever.
    ClassicIr,
    /// A review's PICO (or topic) turned into a Boolean query for a search engine.
    Literature,
    /// A question turned into a query over a passage corpus.
    Evidence,
    /// A question and a schema turned into SQL.
    Sql,
}

/// Which of the paper's reward functions scores a response (`harness_core::rewards`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RewardFamily {
    /// NDCG tiers of the retrieved ranking.
    ClassicIr,
    /// Recall tiers at the engine's depth.
    Literature,
    /// Rank tiers of the first answer-bearing passage.
    Evidence,
    /// Execution-accuracy tiers.
    Sql,
}

/// A literature search engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// The vendored record index (PubMed Boolean syntax, evaluated locally).
    Offline,
    /// Live PubMed E-utilities.
    Pubmed,
    /// Live ClinicalTrials.gov API v2.
    Ctgov,
}

impl EngineKind {
    /// Every engine, in the order help texts list them.
    pub const ALL: [EngineKind; 3] = [EngineKind::Offline, EngineKind::Pubmed, EngineKind::Ctgov];

    /// Name as written in cards and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Offline => "offline",
            EngineKind::Pubmed => "pubmed",
            EngineKind::Ctgov => "ctgov",
        }
    }

    /// The engine whose query language prompts ask for (the offline index reads PubMed syntax).
    pub fn query_language(self) -> &'static str {
        match self {
            EngineKind::Offline | EngineKind::Pubmed => "PubMed",
            EngineKind::Ctgov => "ClinicalTrials.gov",
        }
    }

    /// Parses a name of [`EngineKind::name`].
    pub fn parse(text: &str) -> Option<EngineKind> {
        Self::ALL.into_iter().find(|e| e.name() == text)
    }
}

/// What a review's targets are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReviewTargets {
    /// PubMed ids (`publication_pmids` in the paper's JSONL).
    Publications,
    /// ClinicalTrials.gov ids (`trial_nctids`).
    Trials,
}

/// How the paper's own NDCG scores a dataset (`dr-compat` mode only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DrCompatNdcg {
    /// Ideal DCG in qrels-file order over the query's graded rows.
    Graded,
    /// One scored row per qrels pair with that row's document as the only target (the paper's
    /// SciFact evaluation and training data).
    SingleTarget,
}

/// The task facts of a dataset: how the policy is asked and how its answer is rewarded. Code
/// reads these instead of testing a dataset's name.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TaskFacts {
    /// Prompt template family.
    pub prompt: PromptFamily,
    /// Reward family of `harness train`.
    pub reward: RewardFamily,
    /// Classic IR: what the input is (`scientific claim`).
    #[serde(default)]
    pub input: Option<String>,
    /// Classic IR: what relevant documents do (`that support or refute it`).
    #[serde(default)]
    pub goal: Option<String>,
    /// Literature: the dataset's own engine (what `--engine auto` picks).
    #[serde(default)]
    pub engine: Option<EngineKind>,
    /// Literature: what the reviews' targets are.
    #[serde(default)]
    pub targets: Option<ReviewTargets>,
    /// Evidence-seeking: the corpus as prompts name it (`Wikipedia`).
    #[serde(default)]
    pub corpus: Option<String>,
    /// Evidence-seeking: the paper's SQuAD variant of the rank tiers (a miss −2.5 instead of
    /// −3.5, an error −3 instead of −4).
    #[serde(default)]
    pub squad_tiers: bool,
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
    /// (qrels-order ideal, the default) or `single-target` (one row per qrels pair, as its
    /// SciFact evaluation and training data).
    #[serde(default)]
    pub dr_compat_ndcg: Option<DrCompatNdcg>,
    /// How the policy is asked and rewarded (`[task]`; classic-IR, evidence-seeking and SQL
    /// cards without one get their family's generic wording).
    pub task: TaskFacts,
}

/// The `[task]` a card of `family` gets when it names none: the generic wording of each family.
/// Literature cards must name their engine and targets, so they get none.
fn default_task(family: &str) -> Option<toml::Table> {
    let text = match family {
        "classic-ir" => "prompt = 'classic-ir'\nreward = 'classic-ir'\ninput = 'query'\ngoal = 'relevant to it'",
        "evidence-seeking" => "prompt = 'evidence'\nreward = 'evidence'\ncorpus = 'the passage collection'",
        "sql" => "prompt = 'sql'\nreward = 'sql'",
        _ => return None,
    };
    Some(toml::from_str(text).expect("built-in task defaults parse"))
}

fn default_depth() -> usize {
    1000
}

impl Card {
    /// Parses a card and checks its invariants.
    pub fn parse(path: &str, text: &str) -> crate::Result<Card> {
        let bad = |cause: String| crate::DatasetError::BadCard { path: path.to_string(), cause };
        let mut table: toml::Table = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        if !table.contains_key("task") {
            if let Some(task) = table.get("family").and_then(|f| f.as_str()).and_then(default_task) {
                table.insert("task".into(), toml::Value::Table(task));
            }
        }
        let card: Card = table.try_into().map_err(|e: toml::de::Error| bad(e.to_string()))?;
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
        let t = &card.task;
        let needs = |ok: bool, what: &str| if ok { Ok(()) } else { Err(bad(format!("[task]: {what}"))) };
        match t.prompt {
            PromptFamily::ClassicIr => needs(t.input.is_some() && t.goal.is_some(), "a classic-ir prompt needs `input` and `goal`")?,
            PromptFamily::Literature => needs(t.engine.is_some() && t.targets.is_some(), "a literature prompt needs `engine` and `targets`")?,
            PromptFamily::Evidence => needs(t.corpus.is_some(), "an evidence prompt needs `corpus`")?,
            PromptFamily::Sql => {}
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

    /// The dr-compat NDCG variant (graded unless the card says otherwise).
    pub fn dr_compat(&self) -> DrCompatNdcg {
        self.dr_compat_ndcg.unwrap_or(DrCompatNdcg::Graded)
    }

    /// The trec_eval measures of this card.
    pub fn parsed_measures(&self) -> Vec<harness_core::Measure> {
        self.measures.iter().filter(|m| !m.starts_with("hit.")).flat_map(|m| harness_core::Measure::parse_list(m).unwrap_or_default()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "name = 'x'\ntitle = 't'\nlicense = 'l'\ndescription = 'd'\npaper_metric = 'ndcg_cut.10'\n";

    fn parse(rest: &str) -> crate::Result<Card> {
        Card::parse("x.toml", &format!("{HEAD}{rest}"))
    }

    #[test]
    fn task_facts_come_from_the_card_or_the_family() {
        let own = parse("family = 'classic-ir'\nloader = 'beir'\n[task]\nprompt = 'classic-ir'\nreward = 'classic-ir'\ninput = 'claim'\ngoal = 'that refute it'\n").unwrap();
        assert_eq!((own.task.input.as_deref(), own.task.goal.as_deref()), (Some("claim"), Some("that refute it")));
        let generic = parse("family = 'classic-ir'\nloader = 'beir'\n").unwrap();
        assert_eq!((generic.task.prompt, generic.task.input.as_deref()), (PromptFamily::ClassicIr, Some("query")));
        assert_eq!(parse("family = 'sql'\nloader = 'spider'\n").unwrap().task.reward, RewardFamily::Sql);
        // A literature card must say which engine and targets; a classic-IR prompt needs its wording.
        let err = parse("family = 'literature'\nloader = 'review'\n").unwrap_err().to_string();
        assert!(err.contains("task"), "{err}");
        let err = parse("family = 'literature'\nloader = 'review'\n[task]\nprompt = 'literature'\nreward = 'literature'\n").unwrap_err().to_string();
        assert!(err.contains("`engine` and `targets`"), "{err}");
        let err = parse("family = 'classic-ir'\nloader = 'beir'\n[task]\nprompt = 'classic-ir'\nreward = 'classic-ir'\ninput = 'q'\n").unwrap_err().to_string();
        assert!(err.contains("`input` and `goal`"), "{err}");
        let err = parse("family = 'sql'\nloader = 'spider'\n[task]\nprompt = 'sql'\nreward = 'sql'\nengine = 'bing'\n").unwrap_err().to_string();
        assert!(err.contains("bing"), "{err}");
    }

    #[test]
    fn engines_parse_by_name_and_name_their_query_language() {
        for e in EngineKind::ALL {
            assert_eq!(EngineKind::parse(e.name()), Some(e));
        }
        assert_eq!(EngineKind::parse("bing"), None);
        assert_eq!(EngineKind::Offline.query_language(), "PubMed");
        assert_eq!(EngineKind::Ctgov.query_language(), "ClinicalTrials.gov");
    }
}
