//! Readers and writers for TREC run files, TREC qrels and BEIR qrels (tsv with header).
//!
//! Readers accept `\r\n` line ends (BEIR zips ship them), gzip-compressed files (`.gz`), blank
//! lines and `#` comment lines. A malformed line is an error naming the file, the line and the
//! cause; nothing is skipped silently.
use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{CoreError, Result};
use crate::types::{Qrels, Run, ScoredDoc};

/// Opens a file for buffered reading, decompressing it when its name ends in `.gz`.
pub fn open_text(path: &Path) -> Result<Box<dyn BufRead>> {
    let file = File::open(path).map_err(|source| CoreError::Io { path: path.to_path_buf(), source })?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    Ok(Box::new(BufReader::with_capacity(1 << 16, reader)))
}

/// Calls `f(line_number, line)` for every non-blank, non-comment line, with `\r` removed.
pub fn for_each_line(
    path: &Path,
    mut f: impl FnMut(usize, &str) -> Result<()>,
) -> Result<()> {
    let mut reader = open_text(path)?;
    let mut buf = String::new();
    let mut line_no = 0usize;
    loop {
        buf.clear();
        let n = reader
            .read_line(&mut buf)
            .map_err(|e| CoreError::parse(path, line_no + 1, format!("cannot read line: {e}")))?;
        if n == 0 {
            return Ok(());
        }
        line_no += 1;
        let line = buf.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        f(line_no, line)?;
    }
}

/// Checks an identifier (query, document) read from `kind` input: TREC files separate fields by
/// whitespace, so an id that is empty or holds whitespace would corrupt every run file written
/// from it.
pub fn check_id(kind: &str, id: &str) -> std::result::Result<(), String> {
    if id.is_empty() {
        return Err(format!("empty {kind} id"));
    }
    if id.chars().any(char::is_whitespace) {
        return Err(format!("{kind} id '{id}' contains whitespace, which TREC run and qrels files cannot hold"));
    }
    Ok(())
}

/// The error for a run file without a ranking line (trec_eval refuses one too).
pub(crate) fn empty_run(path: &Path) -> CoreError {
    CoreError::File { path: path.to_path_buf(), cause: "no ranking lines (trec_eval refuses an empty results file)".into() }
}

fn parse_grade(path: &Path, line: usize, field: &str) -> Result<i32> {
    if let Ok(v) = field.parse::<i32>() {
        return Ok(v);
    }
    match field.parse::<f64>() {
        Ok(v) if v.fract() == 0.0 && v.abs() < i32::MAX as f64 => Ok(v as i32),
        _ => Err(CoreError::parse(path, line, format!("relevance grade '{field}' is not an integer"))),
    }
}

/// Reads relevance judgements in either TREC format (`qid iter docid grade`, whitespace
/// separated) or BEIR format (`query-id<TAB>corpus-id<TAB>score`, header optional).
///
/// As trec_eval: a (query, document) pair judged twice and a file without judgements are
/// errors.
pub fn read_qrels(path: &Path) -> Result<Qrels> {
    let mut qrels = Qrels::new();
    let mut first = true;
    let mut judged_on: std::collections::HashMap<(String, String), usize> = std::collections::HashMap::new();
    let mut judge = |qrels: &mut Qrels, line_no: usize, q: &str, d: &str, grade: i32| -> Result<()> {
        check_id("query", q).and_then(|_| check_id("document", d)).map_err(|cause| CoreError::parse(path, line_no, cause))?;
        if let Some(first) = judged_on.insert((q.to_string(), d.to_string()), line_no) {
            return Err(CoreError::parse(
                path,
                line_no,
                format!("query '{q}' judges document '{d}' twice (first on line {first}); trec_eval refuses duplicate judgements"),
            ));
        }
        qrels.insert(q, d, grade);
        Ok(())
    };
    for_each_line(path, |line_no, line| {
        let fields: Vec<&str> = if line.contains('\t') {
            line.split('\t').map(str::trim).collect()
        } else {
            line.split_whitespace().collect()
        };
        let is_first = std::mem::replace(&mut first, false);
        match fields.as_slice() {
            [q, d, g] => {
                if is_first && g.parse::<f64>().is_err() {
                    return Ok(()); // BEIR header: query-id corpus-id score
                }
                let grade = parse_grade(path, line_no, g)?;
                judge(&mut qrels, line_no, q, d, grade)?;
            }
            [q, _iter, d, g] => {
                let grade = parse_grade(path, line_no, g)?;
                judge(&mut qrels, line_no, q, d, grade)?;
            }
            _ => {
                return Err(CoreError::parse(
                    path,
                    line_no,
                    format!(
                        "expected 4 fields (qid iter docid grade) or 3 tab-separated fields \
                         (query-id corpus-id score), found {}",
                        fields.len()
                    ),
                ))
            }
        }
        Ok(())
    })?;
    if qrels.by_query.is_empty() {
        return Err(CoreError::File { path: path.to_path_buf(), cause: "no judgements (trec_eval refuses an empty qrels file)".into() });
    }
    Ok(qrels)
}

/// A run read from a TREC file, with the run tag of its last column.
#[derive(Debug, Clone)]
pub struct RunFile {
    /// The rankings.
    pub run: Run,
    /// The run tag (6th column) of the first line, `""` for an empty file.
    pub tag: String,
}

/// The fields of one TREC run line that a scorer reads.
pub(crate) struct RunLine<'a> {
    pub query: &'a str,
    pub doc: &'a str,
    pub score: f64,
    pub tag: &'a str,
}

/// Parses `qid Q0 docid rank score tag` (whitespace separated); the error is the cause.
pub(crate) fn parse_run_line(line: &str) -> std::result::Result<RunLine<'_>, String> {
    // The same fields either way; the ASCII splitter is the fast one for the usual lines.
    if line.is_ascii() {
        parse_run_fields(line.split_ascii_whitespace())
    } else {
        parse_run_fields(line.split_whitespace())
    }
}

fn parse_run_fields<'a>(mut fields: impl Iterator<Item = &'a str>) -> std::result::Result<RunLine<'a>, String> {
    let parts: [Option<&str>; 6] = std::array::from_fn(|_| fields.next());
    let [Some(query), Some(_), Some(doc), Some(_), Some(score_text), Some(tag)] = parts else {
        return Err(format!("expected 6 fields (qid Q0 docid rank score tag), found {}", parts.iter().flatten().count()));
    };
    let extra = fields.count();
    if extra > 0 {
        return Err(format!("expected 6 fields (qid Q0 docid rank score tag), found {}", 6 + extra));
    }
    let score: f64 = score_text.parse().map_err(|_| format!("score '{score_text}' is not a number"))?;
    if !score.is_finite() {
        return Err(format!("score '{score_text}' is not finite"));
    }
    Ok(RunLine { query, doc, score, tag })
}

/// The error for a document retrieved twice for one query (trec_eval refuses such runs).
pub(crate) fn duplicate_doc(query: &str, doc: &str) -> String {
    format!("document '{doc}' appears twice for query '{query}'")
}

/// Reads a TREC run file: `qid Q0 docid rank score tag`, whitespace separated.
///
/// As in trec_eval, the rank column is ignored and a document retrieved twice for one query
/// is an error.
pub fn read_run(path: &Path) -> Result<RunFile> {
    let mut run = Run::new();
    let mut tag = String::new();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    for_each_line(path, |line_no, line| {
        let RunLine { query, doc, score, tag: line_tag } = parse_run_line(line).map_err(|cause| CoreError::parse(path, line_no, cause))?;
        if !seen.insert((query.to_string(), doc.to_string())) {
            return Err(CoreError::parse(path, line_no, duplicate_doc(query, doc)));
        }
        if tag.is_empty() {
            tag = line_tag.to_string();
        }
        run.by_query.entry(query.to_string()).or_default().push(ScoredDoc { doc_id: doc.to_string(), score });
        Ok(())
    })?;
    if run.by_query.is_empty() {
        return Err(empty_run(path));
    }
    Ok(RunFile { run, tag })
}

/// sha256 of a file's bytes, hex (cache keys and checksums).
pub fn sha256_file(path: &Path) -> Result<String> {
    use sha2::Digest;
    let io_err = |source| CoreError::Io { path: path.to_path_buf(), source };
    let mut f = File::open(path).map_err(io_err)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(io_err)?;
        if n == 0 {
            return Ok(hex::encode(h.finalize()));
        }
        h.update(&buf[..n]);
    }
}

/// The staging folder in which `dir` is built by this process: `.<name>.building-<pid>` beside
/// it, renamed into place when complete.
pub fn staging_dir(dir: &Path) -> PathBuf {
    let parent = dir.parent().unwrap_or(Path::new("."));
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    parent.join(format!(".{name}.building-{}", std::process::id()))
}

/// Removes the staging folders of `dir` ([`staging_dir`]) whose process no longer runs (a build
/// killed half way); those of live processes are left alone. Returns how many were removed.
pub fn remove_orphaned_staging(dir: &Path) -> usize {
    let parent = dir.parent().unwrap_or(Path::new("."));
    let prefix = format!(".{}.building-", dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
    let Ok(entries) = std::fs::read_dir(parent) else { return 0 };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(&prefix).and_then(|p| p.parse::<u32>().ok()) else { continue };
        if pid != std::process::id() && !process_runs(pid) && std::fs::remove_dir_all(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Whether a process with this id runs on this machine (Linux: /proc; elsewhere assumed, so
/// nothing is removed).
fn process_runs(pid: u32) -> bool {
    if Path::new("/proc/self").exists() {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

/// Writes `contents` to `path` through a temporary file in the same folder and a rename, so
/// that a crash never leaves a half-written file behind.
pub fn write_atomically(path: &Path, contents: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
    let io_err = |source| CoreError::Io { path: path.to_path_buf(), source };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io_err)?;
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp: PathBuf = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut w = BufWriter::new(File::create(&tmp)?);
        contents(&mut w)?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io_err)
}

/// Writes a run in TREC format, each ranking in trec_eval order (score descending, ties by
/// docno descending) with ranks 1..n.
pub fn write_run(path: &Path, run: &Run, tag: &str) -> Result<()> {
    write_atomically(path, |w| {
        for (qid, docs) in &run.by_query {
            for (rank, doc) in crate::trec_eval::sorted_like_trec_eval(docs).iter().enumerate() {
                writeln!(w, "{qid} Q0 {} {} {} {tag}", doc.doc_id, rank + 1, doc.score)?;
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn reads_beir_qrels_with_header_and_crlf() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "q.tsv", "query-id\tcorpus-id\tscore\r\n1\t31715818\t1\r\n3\t14717500\t1\r\n");
        let q = read_qrels(&p).unwrap();
        assert_eq!(q.by_query["1"]["31715818"], 1);
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn reads_trec_qrels_and_reports_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "q.txt", "301 0 D1 2\n301 0 D2 0\n302 0 D3 x\n");
        let err = read_qrels(&p).unwrap_err().to_string();
        assert!(err.ends_with(":3: relevance grade 'x' is not an integer"), "{err}");
    }

    #[test]
    fn run_reader_rejects_duplicates_and_short_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "r", "1 Q0 a 1 2.0 t\n1 Q0 a 2 1.0 t\n");
        assert!(read_run(&p).unwrap_err().to_string().contains(":2: document 'a' appears twice"));
        let p = write(&dir, "r2", "1 Q0 a 1 2.0\n");
        assert!(read_run(&p).unwrap_err().to_string().contains(":1: expected 6 fields"));
    }

    /// What trec_eval refuses is an error here too, naming the file and the line(s).
    #[test]
    fn duplicate_pairs_empty_files_and_whitespace_ids_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "dup.txt", "301 0 D1 1\n301 0 D2 0\n301 0 D1 2\n");
        let err = read_qrels(&p).unwrap_err().to_string();
        assert!(err.ends_with("dup.txt:3: query '301' judges document 'D1' twice (first on line 1); trec_eval refuses duplicate judgements"), "{err}");
        for (name, text) in [("empty.tsv", ""), ("header.tsv", "query-id\tcorpus-id\tscore\n"), ("comments.txt", "# nothing\n\n")] {
            let err = read_qrels(&write(&dir, name, text)).unwrap_err().to_string();
            assert!(err.ends_with(&format!("{name}: no judgements (trec_eval refuses an empty qrels file)")), "{err}");
        }
        let err = read_qrels(&write(&dir, "ws.tsv", "q-id\tc-id\tscore\n1\tdoc 7\t1\n")).unwrap_err().to_string();
        assert!(err.contains("ws.tsv:2: document id 'doc 7' contains whitespace"), "{err}");
        let err = read_run(&write(&dir, "empty.run", "# only a comment\n")).unwrap_err().to_string();
        assert!(err.ends_with("empty.run: no ranking lines (trec_eval refuses an empty results file)"), "{err}");
    }

    #[test]
    fn orphaned_staging_folders_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let index = dir.path().join("index");
        // A pid far above any Linux pid_max runs nowhere; this process's own folder stays.
        let dead = dir.path().join(".index.building-4294967290");
        let mine = staging_dir(&index);
        let other = dir.path().join(".other.building-4294967290");
        for d in [&dead, &mine, &other] {
            std::fs::create_dir_all(d.join("segment")).unwrap();
        }
        assert_eq!(remove_orphaned_staging(&index), 1);
        assert!(!dead.exists() && mine.exists() && other.exists());
    }

    #[test]
    fn run_round_trips_in_trec_eval_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut run = Run::new();
        run.insert("q", vec![
            ScoredDoc { doc_id: "a".into(), score: 1.0 },
            ScoredDoc { doc_id: "b".into(), score: 1.0 },
            ScoredDoc { doc_id: "c".into(), score: 3.0 },
        ]);
        let p = dir.path().join("sub/run.trec");
        write_run(&p, &run, "tag").unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text, "q Q0 c 1 3 tag\nq Q0 b 2 1 tag\nq Q0 a 3 1 tag\n");
        assert_eq!(read_run(&p).unwrap().run.by_query["q"].len(), 3);
    }
}
