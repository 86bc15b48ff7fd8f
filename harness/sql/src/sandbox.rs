//! Sandboxed execution of model-written SQL on a SQLite file.
//!
//! Layers, each enough on its own to keep the file intact: the file is opened read-only and
//! `immutable=1` (no locks, no journal, no writes); an authorizer denies every statement that
//! could change state (writes, DDL, ATTACH/DETACH, transactions, non-introspection PRAGMAs,
//! extension loading); a progress handler interrupts a statement past its time limit; SQLite's
//! own limits cap statement and value sizes; a row cap bounds what is held in memory.
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use crate::value::Value;
use crate::SqlError;

/// Resource limits for one statement.
#[derive(Debug, Clone, Copy)]
pub struct ExecLimits {
    /// Wall-clock limit per statement (the paper uses 30 s).
    pub timeout: Duration,
    /// Rows fetched before the statement is abandoned.
    pub max_rows: usize,
    /// Longest SQL text accepted, in bytes.
    pub max_sql_bytes: usize,
    /// Largest string or blob a statement may build, in bytes.
    pub max_value_bytes: usize,
    /// Memory a result may take, in bytes (32 per value plus text and blob lengths): a
    /// statement past it is stopped, whatever its row count.
    pub max_result_bytes: usize,
}

impl Default for ExecLimits {
    fn default() -> Self {
        ExecLimits {
            timeout: Duration::from_secs(30),
            max_rows: 1_000_000,
            max_sql_bytes: 1 << 20,
            max_value_bytes: 16 << 20,
            max_result_bytes: 128 << 20,
        }
    }
}

/// How TEXT values that are not valid UTF-8 are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextDecoding {
    /// An error, as Python's default `sqlite3` text factory (DeepRetrieval's executor).
    Strict,
    /// Invalid bytes dropped, as `bytes.decode(errors="ignore")` (the official Spider evaluator).
    DropInvalid,
}

/// Rows returned by a statement.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultSet {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

/// Why a statement produced no result.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecFailure {
    /// Past the time limit.
    Timeout(Duration),
    /// Refused by the sandbox (what it tried to do).
    Denied(String),
    /// More rows than the cap.
    TooManyRows(usize),
    /// A result larger than the memory cap (bytes).
    TooLarge(usize),
    /// SQLite rejected or failed the statement (syntax, missing table, too long...).
    Sqlite(String),
    /// A TEXT value was not UTF-8 under strict decoding.
    Decode(String),
}

impl std::fmt::Display for ExecFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExecFailure::Timeout(limit) => write!(f, "timeout: ran past the {} s limit", limit.as_secs_f64()),
            ExecFailure::Denied(what) => write!(f, "denied by the read-only sandbox: {what}"),
            ExecFailure::TooManyRows(cap) => write!(f, "result has more than {cap} rows (row cap)"),
            ExecFailure::TooLarge(cap) => write!(f, "result takes more than {} MiB (result memory cap)", cap >> 20),
            ExecFailure::Sqlite(msg) => write!(f, "sqlite error: {msg}"),
            ExecFailure::Decode(msg) => write!(f, "text is not UTF-8: {msg}"),
        }
    }
}

/// Outcome of one statement.
pub type ExecOutcome = Result<ResultSet, ExecFailure>;

/// PRAGMAs that only read the schema; every other PRAGMA is denied.
const INTROSPECTION_PRAGMAS: &[&str] = &[
    "table_info",
    "table_xinfo",
    "table_list",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "collation_list",
    "function_list",
];

/// Functions that could reach outside the query.
const DENIED_FUNCTIONS: &[&str] = &["load_extension", "readfile", "writefile", "edit", "fts3_tokenizer"];

/// Opens `path` as `file:` URI with `immutable=1`: percent-encode what a URI would misread.
fn immutable_uri(path: &Path) -> Result<String, SqlError> {
    let abs = std::path::absolute(path).map_err(|e| SqlError::io(path, e))?;
    let text = abs.to_str().ok_or_else(|| SqlError::Database {
        path: path.to_path_buf(),
        cause: "path is not valid UTF-8".into(),
    })?;
    let mut encoded = String::with_capacity(text.len() + 16);
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => encoded.push(b as char),
            _ => encoded.push_str(&format!("%{b:02X}")),
        }
    }
    Ok(format!("file:{encoded}?immutable=1"))
}

/// A read-only connection to one database file.
pub struct Sandbox {
    conn: Connection,
    path: PathBuf,
    limits: ExecLimits,
    /// Deadline of the running statement, in nanoseconds since `epoch` (u64::MAX: none).
    deadline: Arc<AtomicU64>,
    epoch: Instant,
    denied: Arc<Mutex<Option<String>>>,
}

impl Sandbox {
    /// Opens `path` read-only and immutable, with the authorizer and limits installed.
    pub fn open(path: &Path, limits: ExecLimits) -> Result<Sandbox, SqlError> {
        if !path.is_file() {
            return Err(SqlError::Database { path: path.to_path_buf(), cause: "no such file".into() });
        }
        let uri = immutable_uri(path)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let db_err = |e: rusqlite::Error| SqlError::Database { path: path.to_path_buf(), cause: e.to_string() };
        let mut conn = Connection::open_with_flags(&uri, flags).map_err(db_err)?;
        let clamp = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
        conn.set_limit(Limit::SQLITE_LIMIT_SQL_LENGTH, clamp(limits.max_sql_bytes)).map_err(db_err)?;
        conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, clamp(limits.max_value_bytes)).map_err(db_err)?;
        conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0).map_err(db_err)?;

        let denied: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        let denied_in_hook = Arc::clone(&denied);
        conn.authorizer(Some(move |ctx: AuthContext<'_>| {
            let refusal = refusal(&ctx.action);
            match refusal {
                None => Authorization::Allow,
                Some(what) => {
                    *denied_in_hook.lock().unwrap_or_else(|p| p.into_inner()) = Some(what);
                    Authorization::Deny
                }
            }
        }))
        .map_err(db_err)?;

        let epoch = Instant::now();
        let deadline = Arc::new(AtomicU64::new(u64::MAX));
        let deadline_in_hook = Arc::clone(&deadline);
        // Checked every 1,000 VM instructions: cheap, and a runaway query stops within
        // microseconds of its deadline.
        conn.progress_handler(
            1_000,
            Some(move || epoch.elapsed().as_nanos() as u64 > deadline_in_hook.load(Ordering::Relaxed)),
        )
        .map_err(db_err)?;
        // Schema is read now, so that a damaged file is reported as such and not as a query error.
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0)).map_err(db_err)?;
        Ok(Sandbox { conn, path: path.to_path_buf(), limits, deadline, epoch, denied })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The limits in force.
    pub fn limits(&self) -> ExecLimits {
        self.limits
    }

    /// Runs one statement and fetches all its rows. Text with a NUL byte or more than one
    /// statement is refused, as Python's `sqlite3` refuses it (the executor of both the paper
    /// and the official evaluator).
    pub fn execute(&self, sql: &str, decoding: TextDecoding) -> ExecOutcome {
        *self.denied.lock().unwrap_or_else(|p| p.into_inner()) = None;
        if sql.len() > self.limits.max_sql_bytes {
            return Err(ExecFailure::Sqlite(format!(
                "statement is {} bytes, over the {}-byte limit",
                sql.len(),
                self.limits.max_sql_bytes
            )));
        }
        // SQLite would stop reading at the NUL and run what precedes it.
        if sql.contains('\0') {
            return Err(ExecFailure::Sqlite("the query contains a null character".into()));
        }
        let first = self.first_statement_end(sql);
        if has_remaining_sql(&sql[first..]) {
            return Err(ExecFailure::Sqlite("You can only execute one statement at a time.".into()));
        }
        let sql = &sql[..first];
        let start = self.epoch.elapsed();
        let deadline = start + self.limits.timeout;
        self.deadline.store(deadline.as_nanos() as u64, Ordering::Relaxed);
        let outcome = self.run(sql, decoding);
        self.deadline.store(u64::MAX, Ordering::Relaxed);
        outcome
    }

    /// Where the first statement of `sql` ends (SQLite's own tokenizer, one prepare, no
    /// recursion: rusqlite's `prepare` checks the rest by preparing it recursively, and 12,000
    /// statements on a line overflowed the stack). The whole text when SQLite rejects it, so
    /// that the statement's own error is reported.
    fn first_statement_end(&self, sql: &str) -> usize {
        let Ok(len) = std::ffi::c_int::try_from(sql.len()) else { return sql.len() };
        let mut stmt: *mut rusqlite::ffi::sqlite3_stmt = std::ptr::null_mut();
        let mut tail: *const std::ffi::c_char = std::ptr::null();
        let start = sql.as_ptr().cast::<std::ffi::c_char>();
        // SAFETY: the handle is this open connection's; `sql` outlives the call; the statement is
        // finalized at once (finalizing NULL is a no-op); `tail` points into `sql` or is NULL.
        let rc = unsafe {
            let rc = rusqlite::ffi::sqlite3_prepare_v2(self.conn.handle(), start, len, &mut stmt, &mut tail);
            rusqlite::ffi::sqlite3_finalize(stmt);
            rc
        };
        *self.denied.lock().unwrap_or_else(|p| p.into_inner()) = None;
        if rc != rusqlite::ffi::SQLITE_OK || tail.is_null() {
            return sql.len();
        }
        let end = (tail as usize).saturating_sub(start as usize);
        if end <= sql.len() && sql.is_char_boundary(end) { end } else { sql.len() }
    }

    fn run(&self, sql: &str, decoding: TextDecoding) -> ExecOutcome {
        let fail = |e: rusqlite::Error| self.failure(e);
        let past_deadline = || self.epoch.elapsed().as_nanos() as u64 > self.deadline.load(Ordering::Relaxed);
        let mut stmt = self.conn.prepare(sql).map_err(fail)?;
        let columns: Vec<String> = stmt.column_names().map(|c| c.to_string()).collect();
        let n_cols = columns.len();
        let mut rows_out = Vec::new();
        let mut bytes = 0usize;
        let mut rows = stmt.query([]).map_err(fail)?;
        while let Some(row) = rows.next().map_err(fail)? {
            if rows_out.len() == self.limits.max_rows {
                return Err(ExecFailure::TooManyRows(self.limits.max_rows));
            }
            // The progress handler stops SQLite's VM; copying rows out is checked here.
            if past_deadline() {
                return Err(ExecFailure::Timeout(self.limits.timeout));
            }
            let mut values = Vec::with_capacity(n_cols);
            for i in 0..n_cols {
                let v = match row.get_ref(i).map_err(fail)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(i) => Value::Integer(i),
                    ValueRef::Real(f) => Value::Real(f),
                    ValueRef::Text(b) | ValueRef::Blob(b) if bytes + 32 + b.len() > self.limits.max_result_bytes => {
                        return Err(ExecFailure::TooLarge(self.limits.max_result_bytes));
                    }
                    ValueRef::Text(b) => Value::Text(decode_text(b, decoding, &columns[i])?),
                    ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                };
                bytes += 32 + match &v {
                    Value::Text(t) => t.len(),
                    Value::Blob(b) => b.len(),
                    _ => 0,
                };
                if bytes > self.limits.max_result_bytes {
                    return Err(ExecFailure::TooLarge(self.limits.max_result_bytes));
                }
                values.push(v);
            }
            rows_out.push(values);
        }
        Ok(ResultSet { columns, rows: rows_out })
    }

    fn failure(&self, e: rusqlite::Error) -> ExecFailure {
        if let Some(code) = e.sqlite_error_code() {
            if code == rusqlite::ErrorCode::OperationInterrupted {
                return ExecFailure::Timeout(self.limits.timeout);
            }
            if code == rusqlite::ErrorCode::AuthorizationForStatementDenied {
                let what = self.denied.lock().unwrap_or_else(|p| p.into_inner()).take();
                return ExecFailure::Denied(what.unwrap_or_else(|| e.to_string()));
            }
        }
        if let Some(what) = self.denied.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return ExecFailure::Denied(what);
        }
        ExecFailure::Sqlite(e.to_string())
    }
}

/// Whether text after a statement holds more SQL, by CPython's rule (`sqlite3` refuses a
/// second statement): whitespace, `-- ...` and `/* ... */` comments are not SQL; anything
/// else is, a lone `;` included.
fn has_remaining_sql(rest: &str) -> bool {
    let b = rest.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b' ' | b'\t' | b'\n' | b'\x0c' | b'\r' => i += 1,
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                // An unterminated comment is SQL's business: SQLite treats it as the end.
                i = (i + 2).min(b.len());
            }
            _ => return true,
        }
    }
    false
}

fn decode_text(bytes: &[u8], decoding: TextDecoding, column: &str) -> Result<String, ExecFailure> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.to_string()),
        Err(e) => match decoding {
            TextDecoding::Strict => Err(ExecFailure::Decode(format!("column '{column}': {e}"))),
            TextDecoding::DropInvalid => Ok(bytes.utf8_chunks().map(|c| c.valid()).collect()),
        },
    }
}

/// What the authorizer refuses, described for the error message; `None` allows the action.
fn refusal(action: &AuthAction<'_>) -> Option<String> {
    match action {
        AuthAction::Select | AuthAction::Read { .. } | AuthAction::Recursive => None,
        AuthAction::Function { function_name } => {
            let name = function_name.to_ascii_lowercase();
            DENIED_FUNCTIONS.contains(&name.as_str()).then(|| format!("function {name}()"))
        }
        AuthAction::Pragma { pragma_name, pragma_value } => {
            let name = pragma_name.to_ascii_lowercase();
            if INTROSPECTION_PRAGMAS.contains(&name.as_str()) {
                None
            } else {
                Some(match pragma_value {
                    Some(v) => format!("PRAGMA {name} = {v}"),
                    None => format!("PRAGMA {name}"),
                })
            }
        }
        AuthAction::Insert { table_name } => Some(format!("INSERT into {table_name}")),
        AuthAction::Update { table_name, .. } => Some(format!("UPDATE of {table_name}")),
        AuthAction::Delete { table_name } => Some(format!("DELETE from {table_name}")),
        AuthAction::Attach { filename } => Some(format!("ATTACH '{filename}'")),
        AuthAction::Detach { database_name } => Some(format!("DETACH {database_name}")),
        AuthAction::Transaction { operation } => Some(format!("transaction control ({operation:?})")),
        AuthAction::Savepoint { savepoint_name, .. } => Some(format!("SAVEPOINT {savepoint_name}")),
        AuthAction::DropTable { table_name } | AuthAction::DropTempTable { table_name } => {
            Some(format!("DROP TABLE {table_name}"))
        }
        AuthAction::CreateTable { table_name } | AuthAction::CreateTempTable { table_name } => {
            Some(format!("CREATE TABLE {table_name}"))
        }
        AuthAction::AlterTable { table_name, .. } => Some(format!("ALTER TABLE {table_name}")),
        other => Some(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_escapes_special_characters() {
        let uri = immutable_uri(Path::new("/tmp/a b?c#d%e.sqlite")).unwrap();
        assert_eq!(uri, "file:/tmp/a%20b%3Fc%23d%25e.sqlite?immutable=1");
    }

    #[test]
    fn drop_invalid_matches_python_ignore() {
        // b"caf\xc3\xa9 \xff!".decode(errors="ignore") == "café !"
        let s = decode_text(b"caf\xc3\xa9 \xff!", TextDecoding::DropInvalid, "c").unwrap();
        assert_eq!(s, "café !");
        assert!(decode_text(b"\xff", TextDecoding::Strict, "c").is_err());
    }
}
