//! Text-to-SQL data: Spider and BIRD question files, the official evaluator's gold and
//! prediction files, and schema text for prompts.
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::sandbox::{Sandbox, TextDecoding};
use crate::SqlError;

/// One question with its gold SQL.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlQuestion {
    /// Position in its file (1-based line for gold files, 1-based item for JSON).
    pub index: usize,
    pub db_id: String,
    pub question: String,
    pub gold_sql: String,
    /// BIRD's external-knowledge hint.
    pub evidence: Option<String>,
    /// Spider hardness (easy/medium/hard/extra) or BIRD difficulty, when known.
    pub level: Option<String>,
}

#[derive(Deserialize)]
struct SpiderItem {
    db_id: String,
    query: String,
    question: String,
    /// The parsed query (official files have it; reduced copies may not).
    #[serde(default)]
    sql: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct BirdItem {
    db_id: String,
    question: String,
    #[serde(rename = "SQL")]
    sql: String,
    #[serde(default)]
    evidence: Option<String>,
    #[serde(default)]
    difficulty: Option<String>,
}

/// Reads a text file, gunzipping it when its name ends in `.gz`.
fn read_text(path: &Path) -> Result<String, SqlError> {
    let mut reader = harness_core::io::open_text(path).map_err(|e| SqlError::Config(e.to_string()))?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut reader, &mut text).map_err(|e| SqlError::io(path, e))?;
    Ok(text)
}

fn parse_json<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, SqlError> {
    serde_json::from_str(text).map_err(|e| SqlError::Format {
        path: path.to_path_buf(),
        line: e.line(),
        cause: e.to_string(),
    })
}

/// Spider's `dev.json` / `train_spider.json` (also the reduced question/query/db_id copies). The
/// hardness level comes from the parsed `sql` field when the file has it.
pub fn load_spider_questions(path: &Path) -> Result<Vec<SqlQuestion>, SqlError> {
    let items: Vec<SpiderItem> = parse_json(path, &read_text(path)?)?;
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(i, it)| SqlQuestion {
            index: i + 1,
            db_id: it.db_id,
            question: it.question,
            gold_sql: it.query,
            evidence: None,
            level: it.sql.as_ref().map(|sql| crate::hardness::spider_hardness(sql).to_string()),
        })
        .collect())
}

/// BIRD's `dev.json` (question, evidence, SQL, difficulty).
pub fn load_bird_questions(path: &Path) -> Result<Vec<SqlQuestion>, SqlError> {
    let items: Vec<BirdItem> = parse_json(path, &read_text(path)?)?;
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(i, it)| SqlQuestion {
            index: i + 1,
            db_id: it.db_id,
            question: it.question,
            gold_sql: it.sql,
            evidence: it.evidence.filter(|e| !e.is_empty()),
            level: it.difficulty,
        })
        .collect())
}

/// A Spider or BIRD question file, told apart by its gold-SQL key (`query` or `SQL`).
pub fn load_questions(path: &Path) -> Result<Vec<SqlQuestion>, SqlError> {
    let text = read_text(path)?;
    let is_bird = text.find("\"SQL\"").is_some() && text.find("\"query\"").is_none();
    if is_bird { load_bird_questions(path) } else { load_spider_questions(path) }
}

/// Reads per-question levels (`index<TAB>level` lines, 1-based) and attaches them.
pub fn attach_levels(questions: &mut [SqlQuestion], path: &Path) -> Result<(), SqlError> {
    let text = read_text(path)?;
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |cause: String| SqlError::Format { path: path.to_path_buf(), line: n + 1, cause };
        let (index, level) = line.split_once('\t').ok_or_else(|| bad("expected index<TAB>level".into()))?;
        let index: usize = index.trim().parse().map_err(|_| bad(format!("'{index}' is not a question index")))?;
        let q = questions
            .iter_mut()
            .find(|q| q.index == index)
            .ok_or_else(|| bad(format!("no question {index}")))?;
        q.level = Some(level.trim().to_string());
    }
    Ok(())
}

/// A gold file in the official layout: one `SQL<TAB>db_id` per line; blank lines are skipped,
/// as the official evaluator does.
pub fn read_gold_file(path: &Path) -> Result<Vec<SqlQuestion>, SqlError> {
    let text = read_text(path)?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (sql, db_id) = line.rsplit_once('\t').ok_or_else(|| SqlError::Format {
            path: path.to_path_buf(),
            line: n + 1,
            cause: "expected SQL<TAB>db_id".into(),
        })?;
        out.push(SqlQuestion {
            index: out.len() + 1,
            db_id: db_id.trim().to_string(),
            question: String::new(),
            gold_sql: sql.trim().to_string(),
            evidence: None,
            level: None,
        });
    }
    Ok(out)
}

/// A prediction file: one SQL per line, the text before a tab if there is one (the official
/// layout allows `SQL<TAB>db_id`). Unlike the official evaluator, which drops blank lines and
/// then pairs lines silently, every line here is a prediction (a blank one is an empty, wrong
/// prediction) and the count must equal `expected`; blank lines past the end are ignored.
pub fn read_prediction_file(path: &Path, expected: usize) -> Result<Vec<String>, SqlError> {
    let text = read_text(path)?;
    let mut lines: Vec<&str> = text.lines().collect();
    while lines.len() > expected && lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    if lines.len() != expected {
        return Err(SqlError::Format {
            path: path.to_path_buf(),
            line: lines.len(),
            cause: format!("{} predictions for {expected} gold questions", lines.len()),
        });
    }
    Ok(lines.into_iter().map(|l| l.split('\t').next().unwrap_or("").trim().to_string()).collect())
}

/// Where the database of `db_id` lives under a Spider/BIRD database folder.
pub fn database_path(db_dir: &Path, db_id: &str) -> PathBuf {
    db_dir.join(db_id).join(format!("{db_id}.sqlite"))
}

/// Schema text for prompts: each table's `CREATE TABLE` statement as stored in the database
/// (so column types, keys and `FOREIGN KEY` clauses are the database's own), in storage order,
/// blank-line separated; with `sample_rows > 0`, a comment with that many rows after each.
pub fn render_schema(db: &Sandbox, sample_rows: usize) -> Result<String, SqlError> {
    let fail = |e: crate::ExecFailure| SqlError::Database { path: db.path().to_path_buf(), cause: e.to_string() };
    let tables = db
        .execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid",
            TextDecoding::DropInvalid,
        )
        .map_err(fail)?;
    let mut parts = Vec::new();
    for row in &tables.rows {
        let name = row[0].display();
        let mut part = row[1].display().trim().to_string();
        if !part.ends_with(';') {
            part.push(';');
        }
        if sample_rows > 0 {
            let quoted = name.replace('"', "\"\"");
            let sample = db
                .execute(&format!("SELECT * FROM \"{quoted}\" LIMIT {sample_rows}"), TextDecoding::DropInvalid)
                .map_err(fail)?;
            part.push_str(&format!("\n/* {} example rows from {name}:\n{}", sample.rows.len(), sample.columns.join("\t")));
            for r in &sample.rows {
                part.push('\n');
                part.push_str(&r.iter().map(|v| v.display()).collect::<Vec<_>>().join("\t"));
            }
            part.push_str("\n*/");
        }
        parts.push(part);
    }
    Ok(parts.join("\n\n"))
}

/// Unpacks a `.tar.gz` of `<db_id>/<db_id>.sqlite` folders into `dest` once, checking every file
/// against `sums` (`sha256  path` lines). Unpacks into a sibling folder and renames, so an
/// interrupted run leaves nothing half-written at `dest`. Returns `dest`.
pub fn unpack_databases(archive: &Path, sums: &Path, dest: &Path) -> Result<PathBuf, SqlError> {
    let done = dest.join(".complete");
    if done.is_file() {
        return Ok(dest.to_path_buf());
    }
    let expected: Vec<(String, String)> = read_text(sums)?
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| {
            l.split_once("  ").map(|(h, p)| (h.to_string(), p.to_string())).ok_or_else(|| SqlError::Format {
                path: sums.to_path_buf(),
                line: n + 1,
                cause: "expected '<sha256>  <path>'".into(),
            })
        })
        .collect::<Result<_, _>>()?;
    let parent = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| SqlError::io(parent, e))?;
    let staging = parent.join(format!(
        ".{}.partial-{}",
        dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&staging);
    let file = std::fs::File::open(archive).map_err(|e| SqlError::io(archive, e))?;
    tar::Archive::new(flate2::read::GzDecoder::new(file))
        .unpack(&staging)
        .map_err(|e| SqlError::Database { path: archive.to_path_buf(), cause: format!("unpacking: {e}") })?;
    for (sha, rel) in &expected {
        let path = staging.join(rel);
        let bytes = std::fs::read(&path).map_err(|e| SqlError::io(&path, e))?;
        let got = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        if &got != sha {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(SqlError::Database {
                path: archive.to_path_buf(),
                cause: format!("{rel}: sha256 {got}, expected {sha} (archive damaged?)"),
            });
        }
    }
    std::fs::write(staging.join(".complete"), format!("{} databases verified\n", expected.len()))
        .map_err(|e| SqlError::io(&staging, e))?;
    let _ = std::fs::remove_dir_all(dest);
    std::fs::rename(&staging, dest).map_err(|e| SqlError::io(dest, e))?;
    Ok(dest.to_path_buf())
}
