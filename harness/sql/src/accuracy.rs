//! Execution accuracy over a list of (gold, prediction) pairs, spread over threads.
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::compare::{set_equal, test_suite_equal_until};
use crate::data::database_path;
use crate::preprocess::{gold_orders_rows, join_split_operators, remove_distinct, replace_current_year};
use crate::sandbox::{ExecFailure, ExecLimits, ExecOutcome, Sandbox, TextDecoding};
use crate::SqlError;

/// Which definition of execution accuracy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExMode {
    /// DeepRetrieval's: the SQL as written on the one database file; correct iff the sets of
    /// result rows are equal.
    Dr,
    /// The official Spider evaluator's exec match (test-suite-sql-eval): operator spacing fixed,
    /// `YEAR(CURDATE())` = 2020, DISTINCT removed unless kept, bag equality with column
    /// permutations, order compared when the gold query has ORDER BY, on every `.sqlite` file of
    /// the database's folder.
    TestSuite,
}

impl std::str::FromStr for ExMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "dr" => Ok(ExMode::Dr),
            "test-suite" => Ok(ExMode::TestSuite),
            other => Err(format!("unknown execution-accuracy mode '{other}' (expected dr or test-suite)")),
        }
    }
}

impl ExMode {
    pub fn name(self) -> &'static str {
        match self {
            ExMode::Dr => "dr",
            ExMode::TestSuite => "test-suite",
        }
    }
}

/// Settings of one evaluation.
#[derive(Debug, Clone)]
pub struct ExOptions {
    pub mode: ExMode,
    pub limits: ExecLimits,
    /// test-suite: keep DISTINCT (the official `--keep_distinct`).
    pub keep_distinct: bool,
    /// dr: the paper's executor returns `[]` on timeout instead of failing, so a timed-out
    /// prediction counts as correct against an empty gold result. Off unless asked for.
    pub paper_timeout_as_empty: bool,
    /// Worker threads (0: all cores).
    pub threads: usize,
}

impl Default for ExOptions {
    fn default() -> Self {
        ExOptions { mode: ExMode::Dr, limits: ExecLimits::default(), keep_distinct: false, paper_timeout_as_empty: false, threads: 0 }
    }
}

/// One question to score.
#[derive(Debug, Clone)]
pub struct ExItem {
    pub index: usize,
    pub db_id: String,
    pub gold_sql: String,
    pub pred_sql: String,
    pub level: Option<String>,
}

/// The verdict on one question.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Correct,
    /// The prediction failed to execute (on the named file, for multi-file test suites).
    PredFailed(ExecFailure),
    /// Both executed; the results differ.
    Mismatch,
    /// The question cannot be scored here (its database is missing).
    NotRunnable(String),
    /// The gold query failed: reported, never scored.
    GoldFailed(ExecFailure),
}

impl Verdict {
    /// Short label for tables: correct, wrong, timeout (a wrong answer: the prediction or its
    /// comparison ran past the time limit), not-runnable, gold-failed.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Correct => "correct",
            Verdict::PredFailed(ExecFailure::Timeout(_)) => "timeout",
            Verdict::PredFailed(_) | Verdict::Mismatch => "wrong",
            Verdict::NotRunnable(_) => "not-runnable",
            Verdict::GoldFailed(_) => "gold-failed",
        }
    }

    /// Whether the question counts in the accuracy.
    pub fn scored(&self) -> bool {
        matches!(self, Verdict::Correct | Verdict::PredFailed(_) | Verdict::Mismatch)
    }

    /// Why, in words.
    pub fn detail(&self) -> String {
        match self {
            Verdict::Correct => String::new(),
            Verdict::PredFailed(f) => format!("prediction failed: {f}"),
            Verdict::Mismatch => "results differ".into(),
            Verdict::NotRunnable(why) => why.clone(),
            Verdict::GoldFailed(f) => format!("gold query failed: {f}"),
        }
    }
}

/// The result of one question.
#[derive(Debug, Clone)]
pub struct ExResult {
    pub index: usize,
    pub db_id: String,
    pub level: Option<String>,
    pub verdict: Verdict,
    /// Rows of the gold and predicted results (on the main database file), when they ran.
    pub gold_rows: Option<usize>,
    pub pred_rows: Option<usize>,
}

/// Scores every item; results come back in input order.
pub fn evaluate(
    items: &[ExItem],
    db_dir: &Path,
    options: &ExOptions,
    on_done: &(dyn Fn() + Sync),
) -> Result<Vec<ExResult>, SqlError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.threads)
        .build()
        .map_err(|e| SqlError::Config(format!("thread pool: {e}")))?;
    let files = database_files(items, db_dir, options.mode)?;
    Ok(pool.install(|| {
        items
            .par_iter()
            .map_init(HashMap::<PathBuf, Sandbox>::new, |open, item| {
                let r = score_one(item, &files, options, open);
                on_done();
                r
            })
            .collect()
    }))
}

/// For each database id: the files to compare on, or why there are none.
type DatabaseFiles = HashMap<String, Result<Vec<PathBuf>, String>>;

fn database_files(items: &[ExItem], db_dir: &Path, mode: ExMode) -> Result<DatabaseFiles, SqlError> {
    if !db_dir.is_dir() {
        return Err(SqlError::Config(format!("database folder {} does not exist", db_dir.display())));
    }
    let mut files = HashMap::new();
    for item in items {
        if !files.contains_key(&item.db_id) {
            files.insert(item.db_id.clone(), files_of(db_dir, &item.db_id, mode)?);
        }
    }
    Ok(files)
}

/// The files one database is compared on, or why there are none.
fn files_of(db_dir: &Path, db_id: &str, mode: ExMode) -> Result<Result<Vec<PathBuf>, String>, SqlError> {
    let main = database_path(db_dir, db_id);
    Ok(if !main.is_file() {
        Err(format!("database {db_id} is missing ({})", main.display()))
    } else if mode == ExMode::Dr {
        Ok(vec![main])
    } else {
        // The official evaluator compares on every file with ".sqlite" in its name in the
        // database's folder (a distilled test suite); the main file comes first here so that
        // row counts refer to it.
        let dir = main.parent().expect("database path has a parent");
        let mut others: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| SqlError::io(dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p != &main && p.is_file() && p.file_name().is_some_and(|n| n.to_string_lossy().contains(".sqlite")))
            .collect();
        others.sort();
        Ok(std::iter::once(main).chain(others).collect())
    })
}

/// Verdicts one at a time, for a training reward: databases opened once and kept, each
/// (database, gold, prediction) judged once (a policy repeats itself; SQLite work is the cost).
pub struct Judge {
    db_dir: PathBuf,
    options: ExOptions,
    files: DatabaseFiles,
    open: HashMap<PathBuf, Sandbox>,
    verdicts: HashMap<(String, String, String), Verdict>,
    /// Verdicts answered from memory.
    pub cache_hits: usize,
}

impl Judge {
    /// A judge over the databases of `db_dir` with `options` (its `threads` are unused).
    pub fn new(db_dir: &Path, options: ExOptions) -> Result<Judge, SqlError> {
        if !db_dir.is_dir() {
            return Err(SqlError::Config(format!("database folder {} does not exist", db_dir.display())));
        }
        Ok(Judge { db_dir: db_dir.to_path_buf(), options, files: HashMap::new(), open: HashMap::new(), verdicts: HashMap::new(), cache_hits: 0 })
    }

    /// The verdict on `pred_sql` against `gold_sql` on database `db_id`.
    pub fn verdict(&mut self, db_id: &str, gold_sql: &str, pred_sql: &str) -> Result<Verdict, SqlError> {
        let key = (db_id.to_string(), gold_sql.to_string(), pred_sql.to_string());
        if let Some(v) = self.verdicts.get(&key) {
            self.cache_hits += 1;
            return Ok(v.clone());
        }
        if !self.files.contains_key(db_id) {
            let found = files_of(&self.db_dir, db_id, self.options.mode)?;
            self.files.insert(db_id.to_string(), found);
        }
        let item = ExItem { index: 0, db_id: key.0.clone(), gold_sql: key.1.clone(), pred_sql: key.2.clone(), level: None };
        let verdict = score_one(&item, &self.files, &self.options, &mut self.open).verdict;
        self.verdicts.insert(key, verdict.clone());
        Ok(verdict)
    }
}

fn score_one(item: &ExItem, files: &DatabaseFiles, options: &ExOptions, open: &mut HashMap<PathBuf, Sandbox>) -> ExResult {
    let mut result = ExResult {
        index: item.index,
        db_id: item.db_id.clone(),
        level: item.level.clone(),
        verdict: Verdict::Correct,
        gold_rows: None,
        pred_rows: None,
    };
    let paths = match &files[&item.db_id] {
        Ok(paths) => paths,
        Err(why) => {
            result.verdict = Verdict::NotRunnable(why.clone());
            return result;
        }
    };
    let (gold_sql, pred_sql, decoding) = match options.mode {
        ExMode::Dr => (item.gold_sql.clone(), item.pred_sql.clone(), TextDecoding::Strict),
        ExMode::TestSuite => {
            let (mut g, mut p) = (join_split_operators(&item.gold_sql), join_split_operators(&item.pred_sql));
            if !options.keep_distinct {
                g = remove_distinct(&g);
                p = remove_distinct(&p);
            }
            (replace_current_year(&g), replace_current_year(&p), TextDecoding::DropInvalid)
        }
    };
    let order_matters = gold_orders_rows(&gold_sql);
    for (i, path) in paths.iter().enumerate() {
        let db = match open.get(path) {
            Some(db) => db,
            None => match Sandbox::open(path, options.limits) {
                Ok(db) => open.entry(path.clone()).or_insert(db),
                Err(e) => {
                    result.verdict = Verdict::NotRunnable(e.to_string());
                    return result;
                }
            },
        };
        let gold = match db.execute(&gold_sql, decoding) {
            Ok(rows) => rows,
            Err(f) => {
                result.verdict = Verdict::GoldFailed(f);
                return result;
            }
        };
        let pred: ExecOutcome = match db.execute(&pred_sql, decoding) {
            Err(ExecFailure::Timeout(_)) if options.mode == ExMode::Dr && options.paper_timeout_as_empty => {
                Ok(crate::ResultSet { columns: Vec::new(), rows: Vec::new() })
            }
            other => other,
        };
        if i == 0 {
            result.gold_rows = Some(gold.rows.len());
            result.pred_rows = pred.as_ref().ok().map(|r| r.rows.len());
        }
        let pred = match pred {
            Ok(rows) => rows,
            Err(f) => {
                result.verdict = Verdict::PredFailed(f);
                return result;
            }
        };
        // The comparison gets the statement's time limit too.
        let deadline = std::time::Instant::now() + options.limits.timeout;
        let equal = match options.mode {
            ExMode::Dr => set_equal(&gold.rows, &pred.rows),
            ExMode::TestSuite => match test_suite_equal_until(&gold.rows, &pred.rows, order_matters, Some(deadline)) {
                Some(equal) => equal,
                None => {
                    result.verdict = Verdict::PredFailed(ExecFailure::Timeout(options.limits.timeout));
                    return result;
                }
            },
        };
        if !equal {
            result.verdict = Verdict::Mismatch;
            return result;
        }
    }
    result
}

/// Accuracy per level (and `all`).
#[derive(Debug, Clone, PartialEq)]
pub struct LevelSummary {
    pub level: String,
    pub questions: usize,
    pub scored: usize,
    pub correct: usize,
    pub not_runnable: usize,
    pub gold_failed: usize,
}

impl LevelSummary {
    /// Execution accuracy over the scored questions.
    pub fn accuracy(&self) -> f64 {
        if self.scored == 0 { 0.0 } else { self.correct as f64 / self.scored as f64 }
    }
}

/// Summaries in the order of `level_order` (levels not listed follow alphabetically), then `all`.
pub fn summarize(results: &[ExResult], level_order: &[&str]) -> Vec<LevelSummary> {
    let mut by_level: BTreeMap<String, LevelSummary> = BTreeMap::new();
    let blank = |level: &str| LevelSummary { level: level.to_string(), questions: 0, scored: 0, correct: 0, not_runnable: 0, gold_failed: 0 };
    let mut all = blank("all");
    for r in results {
        let mut targets = vec![&mut all];
        let level_entry;
        if let Some(level) = &r.level {
            level_entry = by_level.entry(level.clone()).or_insert_with(|| blank(level));
            targets.push(level_entry);
        }
        for s in targets {
            s.questions += 1;
            match &r.verdict {
                Verdict::Correct => {
                    s.scored += 1;
                    s.correct += 1;
                }
                Verdict::PredFailed(_) | Verdict::Mismatch => s.scored += 1,
                Verdict::NotRunnable(_) => s.not_runnable += 1,
                Verdict::GoldFailed(_) => s.gold_failed += 1,
            }
        }
    }
    let mut out = Vec::new();
    for level in level_order {
        if let Some(s) = by_level.remove(*level) {
            out.push(s);
        }
    }
    out.extend(by_level.into_values());
    out.push(all);
    out
}
