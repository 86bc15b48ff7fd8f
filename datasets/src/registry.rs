//! The set of known datasets and where their files live.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use include_dir::{include_dir, Dir};

use crate::card::Card;
use crate::error::{DatasetError, Result};

static BUILTIN_CARDS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/cards");

/// Environment variable naming a folder of extra (or overriding) cards.
pub const CARDS_ENV: &str = "HARNESS_CARDS_DIR";
/// Environment variable overriding the data root (default: the repository's `datasets/data`).
pub const DATA_ENV: &str = "HARNESS_DATA_DIR";

/// Cards by name, and the folder holding each dataset's files.
#[derive(Debug, Clone)]
pub struct Registry {
    cards: BTreeMap<String, Card>,
    data_root: PathBuf,
}

/// The file `name` of a dataset folder, accepting its gzip-compressed or uncompressed twin
/// (`corpus.jsonl` for `corpus.jsonl.gz` and the reverse), so that a fetched archive and the
/// vendored compressed copy both work.
pub fn resolve_data_file(dir: &Path, name: &str) -> Option<PathBuf> {
    let exact = dir.join(name);
    // A card may name a folder (a database directory) as well as a file.
    if exact.is_file() || exact.is_dir() {
        return Some(exact);
    }
    let twin = match name.strip_suffix(".gz") {
        Some(plain) => dir.join(plain),
        None => dir.join(format!("{name}.gz")),
    };
    twin.is_file().then_some(twin)
}

/// Whether a dataset can run offline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    /// Every file the card lists is present.
    Offline,
    /// The card lists no local files (live engines) or some are missing.
    Missing(Vec<String>),
}

impl Registry {
    /// The cards a workspace sees: the built-in ones, then those of `cards_dirs` in order (a
    /// later card of the same name replaces an earlier one), with data under `data_root`.
    /// Folders that do not exist are skipped.
    pub fn with_cards(data_root: PathBuf, cards_dirs: &[PathBuf]) -> Result<Registry> {
        let mut registry = Self::builtin(data_root)?;
        for dir in cards_dirs.iter().filter(|d| d.is_dir()) {
            registry.add_cards_from(dir)?;
        }
        Ok(registry)
    }

    /// Only the built-in cards, with the given data root.
    pub fn builtin(data_root: PathBuf) -> Result<Registry> {
        let mut cards = BTreeMap::new();
        for file in BUILTIN_CARDS.files() {
            let path = format!("datasets/cards/{}", file.path().display());
            let text = file.contents_utf8().ok_or_else(|| DatasetError::BadCard {
                path: path.clone(),
                cause: "not UTF-8".into(),
            })?;
            let card = Card::parse(&path, text)?;
            cards.insert(card.name.clone(), card);
        }
        Ok(Registry { cards, data_root })
    }

    /// Adds every `*.toml` card of `dir`, replacing built-in cards of the same name.
    pub fn add_cards_from(&mut self, dir: &Path) -> Result<()> {
        let entries = std::fs::read_dir(dir).map_err(crate::error::io_err(dir))?;
        for entry in entries {
            let path = entry.map_err(crate::error::io_err(dir))?.path();
            if path.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(&path).map_err(crate::error::io_err(&path))?;
                let card = Card::parse(&path.display().to_string(), &text)?;
                self.cards.insert(card.name.clone(), card);
            }
        }
        Ok(())
    }

    /// All cards, by name.
    pub fn cards(&self) -> impl Iterator<Item = &Card> {
        self.cards.values()
    }

    /// The card called `name`.
    pub fn get(&self, name: &str) -> Result<&Card> {
        self.cards.get(name).ok_or_else(|| DatasetError::Unknown {
            name: name.to_string(),
            known: self.cards.keys().cloned().collect::<Vec<_>>().join(", "),
        })
    }

    /// Root folder of all datasets' files.
    pub fn data_root(&self) -> &Path {
        &self.data_root
    }

    /// Folder of one dataset's files.
    pub fn dataset_dir(&self, card: &Card) -> PathBuf {
        self.data_root.join(&card.name)
    }

    /// Whether every local file the card needs is present.
    pub fn availability(&self, card: &Card) -> Availability {
        let dir = self.dataset_dir(card);
        let mut missing: Vec<String> = card
            .files
            .values()
            .chain(card.splits.values().flat_map(|s| std::iter::once(&s.qrels).chain(s.ids.as_ref())))
            .filter(|f| resolve_data_file(&dir, f).is_none())
            .cloned()
            .collect();
        if card.files.is_empty() && missing.is_empty() {
            missing.push("(no local files: needs a live engine or a download)".into());
        }
        if missing.is_empty() {
            Availability::Offline
        } else {
            Availability::Missing(missing)
        }
    }

    /// Errors unless the dataset runs offline.
    pub fn require_offline(&self, card: &Card) -> Result<PathBuf> {
        match self.availability(card) {
            Availability::Offline => Ok(self.dataset_dir(card)),
            Availability::Missing(missing) => Err(DatasetError::NotOffline {
                dataset: card.name.clone(),
                missing: missing.join(", "),
                hint: if card.download.is_empty() {
                    card.offline_note.clone()
                } else {
                    format!("Run `harness datasets fetch {}` when online. {}", card.name, card.offline_note)
                },
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_cards_parse_and_cover_the_paper() {
        let r = Registry::builtin(PathBuf::from("/nonexistent")).unwrap();
        let names: Vec<&str> = r.cards().map(|c| c.name.as_str()).collect();
        for n in [
            "pubmed", "ctgov", "nq", "triviaqa", "squad", "hotpotqa", "fever", "nfcorpus", "scifact", "ms-beir",
            "ms-h", "ms-s", "ms-t", "spider", "bird",
        ] {
            assert!(names.contains(&n), "missing card {n}");
        }
        assert!(matches!(r.get("nope"), Err(DatasetError::Unknown { .. })));
        assert!(matches!(r.availability(r.get("scifact").unwrap()), Availability::Missing(_)));
    }

    #[test]
    fn data_files_resolve_to_their_compressed_twin() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("corpus.jsonl"), "").unwrap();
        assert_eq!(resolve_data_file(dir.path(), "corpus.jsonl.gz"), Some(dir.path().join("corpus.jsonl")));
        assert_eq!(resolve_data_file(dir.path(), "queries.jsonl"), None);
    }

    #[test]
    fn vendored_scifact_is_offline() {
        let r = Registry::builtin(Path::new(env!("CARGO_MANIFEST_DIR")).join("data")).unwrap();
        assert_eq!(r.availability(r.get("scifact").unwrap()), Availability::Offline);
    }
}
