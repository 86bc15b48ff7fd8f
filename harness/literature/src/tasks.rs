//! Review tasks and the records of the offline corpus.
use std::io::BufRead;
use std::path::Path;

use serde::Deserialize;

use crate::EngineError;

/// The PICO description of a review (the paper's prompt fields).
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
pub struct Pico {
    /// Patient, problem or population.
    #[serde(rename = "P", default)]
    pub p: String,
    /// Intervention.
    #[serde(rename = "I", default)]
    pub i: String,
    /// Comparison.
    #[serde(rename = "C", default)]
    pub c: String,
    /// Outcome.
    #[serde(rename = "O", default)]
    pub o: String,
}

impl Pico {
    /// The PICO text exactly as the paper's preprocessing writes it into the prompt.
    pub fn paper_text(&self) -> String {
        format!("P: {}\nI: {}\nC: {}\nO: {}\n", self.p, self.i, self.c, self.o)
    }
}

/// One review: what the policy is told, and what it should find.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReviewTask {
    /// Review id (CLEF topic, `cohen-<class>`, or the paper file's line id).
    pub id: String,
    /// The description the policy rewrites (review title, drug class, or PICO text).
    pub topic: String,
    /// Where `topic` came from; text we wrote ourselves says so.
    pub topic_source: String,
    /// PICO fields when the task has them.
    pub pico: Option<Pico>,
    /// Included PMIDs or NCT ids.
    pub targets: Vec<String>,
    /// Latest publication date searched (PubMed `maxdate`, `YYYY/MM/DD`), when known.
    pub pub_date: Option<String>,
}

fn file_error(path: &Path, cause: impl std::fmt::Display) -> EngineError {
    EngineError::File { path: path.display().to_string(), cause: cause.to_string() }
}

fn line_error(path: &Path, line: usize, cause: impl std::fmt::Display) -> EngineError {
    EngineError::File { path: format!("{}:{line}", path.display()), cause: cause.to_string() }
}

/// Reads a text file, gunzipping `.gz`.
pub(crate) fn open_text(path: &Path) -> Result<Box<dyn BufRead>, EngineError> {
    let file = std::fs::File::open(path).map_err(|e| file_error(path, e))?;
    Ok(if path.extension().is_some_and(|e| e == "gz") {
        Box::new(std::io::BufReader::new(flate2::read::GzDecoder::new(file)))
    } else {
        Box::new(std::io::BufReader::new(file))
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VendoredReview {
    id: String,
    collection: String,
    topic: String,
    topic_source: String,
    included: Vec<String>,
    candidates: usize,
}

/// The vendored offline review tasks (`reviews.jsonl` of datasets/data/literature).
pub fn load_offline_reviews(path: &Path) -> Result<Vec<ReviewTask>, EngineError> {
    let mut out = Vec::new();
    for (i, line) in open_text(path)?.lines().enumerate() {
        let line = line.map_err(|e| line_error(path, i + 1, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let r: VendoredReview = serde_json::from_str(&line).map_err(|e| line_error(path, i + 1, e))?;
        if r.included.is_empty() {
            return Err(line_error(path, i + 1, format!("review {} has no included records", r.id)));
        }
        let _ = (r.collection, r.candidates);
        out.push(ReviewTask { id: r.id, topic: r.topic, topic_source: r.topic_source, pico: None, targets: r.included, pub_date: None });
    }
    Ok(out)
}

/// What a paper-format file lists as the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// `publication_pmids` (PubMed search).
    Publications,
    /// `trial_nctids` (ClinicalTrials.gov search).
    Trials,
}

#[derive(Deserialize)]
struct PaperRow {
    #[serde(default)]
    id: Option<serde_json::Value>,
    pico: Pico,
    #[serde(default)]
    publication_pmids: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    trial_nctids: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    pub_date: Option<String>,
}

/// Rows of the paper's literature files (`code/data_preprocess/pubmed*.py`, `ctgov*.py` input):
/// JSON lines with `pico{P,I,C,O}`, `publication_pmids` or `trial_nctids`, and `pub_date`.
pub fn load_paper_jsonl(path: &Path, kind: TargetKind) -> Result<Vec<ReviewTask>, EngineError> {
    let mut out = Vec::new();
    for (i, line) in open_text(path)?.lines().enumerate() {
        let line = line.map_err(|e| line_error(path, i + 1, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let row: PaperRow = serde_json::from_str(&line).map_err(|e| line_error(path, i + 1, e))?;
        let (field, list) = match kind {
            TargetKind::Publications => ("publication_pmids", row.publication_pmids),
            TargetKind::Trials => ("trial_nctids", row.trial_nctids),
        };
        let list = list.ok_or_else(|| line_error(path, i + 1, format!("no `{field}`")))?;
        // PMIDs arrive as numbers or strings; both mean the same id.
        let targets: Vec<String> = list
            .iter()
            .map(|v| match v {
                serde_json::Value::String(s) => Ok(s.trim().to_string()),
                serde_json::Value::Number(n) => Ok(n.to_string()),
                other => Err(line_error(path, i + 1, format!("`{field}` holds {other}, not an id"))),
            })
            .collect::<Result<_, _>>()?;
        if targets.is_empty() {
            return Err(line_error(path, i + 1, format!("`{field}` is empty")));
        }
        let pub_date = row.pub_date.map(|d| normalise_date(&d).ok_or_else(|| line_error(path, i + 1, format!("pub_date '{d}' is not a date")))).transpose()?;
        let id = match row.id {
            Some(serde_json::Value::String(s)) => s,
            Some(v) => v.to_string(),
            None => format!("line-{}", i + 1),
        };
        out.push(ReviewTask {
            id,
            topic: row.pico.paper_text(),
            topic_source: format!("paper-format PICO ({})", path.display()),
            pico: Some(row.pico),
            targets,
            pub_date,
        });
    }
    Ok(out)
}

/// `YYYY/MM/DD` from `YYYY-MM-DD`, `YYYY/MM/DD`, `YYYYMMDD`, `YYYY-MM` or `YYYY` (PubMed's
/// date format; missing parts become the end of the period).
pub fn normalise_date(text: &str) -> Option<String> {
    let digits: Vec<&str> = text.trim().split(['-', '/', ' ']).filter(|s| !s.is_empty()).collect();
    let parts: Vec<String> = match digits.as_slice() {
        [d] if d.len() == 8 && d.chars().all(|c| c.is_ascii_digit()) => vec![d[..4].into(), d[4..6].into(), d[6..].into()],
        other => other.iter().map(|s| s.to_string()).collect(),
    };
    let num = |s: &str, lo: u32, hi: u32| s.parse::<u32>().ok().filter(|v| (lo..=hi).contains(v));
    let year = num(parts.first()?, 1000, 9999)?;
    let month = match parts.get(1) {
        Some(m) => num(m, 1, 12)?,
        None => 12,
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let last = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    let day = match parts.get(2) {
        Some(d) => num(d, 1, last)?,
        None => last,
    };
    if parts.len() > 3 {
        return None;
    }
    Some(format!("{year:04}/{month:02}/{day:02}"))
}

/// One record of the offline corpus.
#[derive(Debug, Clone, Deserialize)]
pub struct Record {
    /// PMID.
    pub id: String,
    /// Title.
    pub title: String,
    /// Abstract (empty for about one record in ten).
    #[serde(default)]
    pub abstract_text: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordLine {
    id: String,
    title: String,
    #[serde(rename = "abstract", default)]
    abstract_text: String,
}

/// The offline corpus's records (`records.jsonl.gz`).
pub fn load_records(path: &Path) -> Result<Vec<Record>, EngineError> {
    let mut out = Vec::new();
    for (i, line) in open_text(path)?.lines().enumerate() {
        let line = line.map_err(|e| line_error(path, i + 1, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let r: RecordLine = serde_json::from_str(&line).map_err(|e| line_error(path, i + 1, e))?;
        out.push(Record { id: r.id, title: r.title, abstract_text: r.abstract_text });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_rows_load_with_numeric_or_string_ids_and_dates() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("test.jsonl");
        std::fs::write(
            &p,
            concat!(
                r#"{"pico": {"P": "adults with asthma", "I": "inhaled steroids", "C": "placebo", "O": "exacerbations"}, "publication_pmids": [123, "456"], "pub_date": "2019-05-02"}"#,
                "\n\n",
                r#"{"id": "r2", "pico": {"P": "p", "I": "i", "C": "", "O": "o"}, "publication_pmids": ["7"], "trial_nctids": ["NCT01"], "pub_date": "2020"}"#,
                "\n"
            ),
        )
        .unwrap();
        let tasks = load_paper_jsonl(&p, TargetKind::Publications).unwrap();
        assert_eq!(tasks.len(), 2);
        assert_eq!(tasks[0].id, "line-1");
        assert_eq!(tasks[0].targets, vec!["123", "456"]);
        assert_eq!(tasks[0].pub_date.as_deref(), Some("2019/05/02"));
        assert_eq!(tasks[0].topic, "P: adults with asthma\nI: inhaled steroids\nC: placebo\nO: exacerbations\n");
        assert_eq!(tasks[1].pub_date.as_deref(), Some("2020/12/31"));
        let trials = load_paper_jsonl(&p, TargetKind::Trials);
        // Line 1 has no trial ids: the error names the file, the line and the field.
        let e = trials.unwrap_err().to_string();
        assert!(e.contains("test.jsonl:1") && e.contains("trial_nctids"), "{e}");
    }

    #[test]
    fn bad_rows_name_file_line_and_cause() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.jsonl");
        std::fs::write(&p, "{\"pico\": {\"P\": \"x\"}, \"publication_pmids\": [], \"pub_date\": \"2019\"}\n").unwrap();
        assert!(load_paper_jsonl(&p, TargetKind::Publications).unwrap_err().to_string().contains("bad.jsonl:1: `publication_pmids` is empty"));
        std::fs::write(&p, "{\"pico\": {\"P\": \"x\"}, \"publication_pmids\": [1], \"pub_date\": \"May 2019\"}\n").unwrap();
        assert!(load_paper_jsonl(&p, TargetKind::Publications).unwrap_err().to_string().contains("is not a date"));
        std::fs::write(&p, "not json\n").unwrap();
        assert!(load_paper_jsonl(&p, TargetKind::Publications).unwrap_err().to_string().contains("bad.jsonl:1"));
    }

    #[test]
    fn dates_normalise_to_pubmed_format() {
        assert_eq!(normalise_date("2019/05/02").as_deref(), Some("2019/05/02"));
        assert_eq!(normalise_date("20190502").as_deref(), Some("2019/05/02"));
        assert_eq!(normalise_date("2019-05").as_deref(), Some("2019/05/31"));
        assert_eq!(normalise_date("2020-02").as_deref(), Some("2020/02/29"));
        assert_eq!(normalise_date("2019-02-30"), None);
        assert_eq!(normalise_date("2019-13-01"), None);
        assert_eq!(normalise_date(""), None);
    }
}
