//! Scoring a TREC run file without loading it: the file is read in large chunks, cut into
//! blocks of consecutive lines of one query, and each block is parsed, sorted and judged as
//! soon as it is complete, on `threads` workers. Memory stays near one block per worker
//! whatever the file's size, and no line allocates.
//!
//! The result is the one [`crate::trec_eval::evaluate`] gives on [`crate::io::read_run`]'s
//! reading of the same file (same values, same summation order, same errors with the same
//! line numbers). A file whose lines of one query are not consecutive is scored by that
//! collecting path instead.
use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use rustc_hash::FxHashSet;

use crate::error::{CoreError, Result};
use crate::io::{duplicate_doc, parse_run_line, RunLine};
use crate::measures::{EvalOptions, Measure};
use crate::trec_eval::{judge_ordered, order_measures, summarize, Evaluation};
use crate::types::Qrels;

/// Evaluates the run file at `path` against `qrels`, as `evaluate(qrels, read_run(path))`.
/// `threads` workers parse and judge queries (0 or 1: on the calling thread).
pub fn evaluate_run_file(qrels: &Qrels, path: &Path, measures: &[Measure], opts: &EvalOptions, threads: usize) -> Result<Evaluation> {
    let measures = order_measures(measures);
    let scorer = BlockScorer { qrels, measures: &measures, opts, path };
    let outcome = if threads <= 1 {
        let mut per_query = BTreeMap::new();
        let mut scratch = Scratch::default();
        let grouped = for_each_query_block(path, |block| {
            if let Some((qid, values)) = scorer.score(&block, &mut scratch)? {
                per_query.insert(qid, values);
            }
            Ok(())
        })?;
        grouped.then_some(per_query)
    } else {
        score_in_parallel(&scorer, threads)?
    };
    match outcome {
        Some(per_query) => Ok(summarize(qrels, per_query, measures, opts)),
        None => {
            let run = crate::io::read_run(path)?.run;
            Ok(crate::trec_eval::evaluate(qrels, &run, &measures, opts))
        }
    }
}

fn score_in_parallel(scorer: &BlockScorer, threads: usize) -> Result<Option<BTreeMap<String, Vec<f64>>>> {
    // A few blocks in flight per worker: enough to keep them busy, little memory.
    let (block_tx, block_rx) = mpsc::sync_channel::<Block>(threads * 4);
    let block_rx = Arc::new(Mutex::new(block_rx));
    let (result_tx, result_rx) = mpsc::channel::<(usize, Result<Option<(String, Vec<f64>)>>)>();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let block_rx = Arc::clone(&block_rx);
            let result_tx = result_tx.clone();
            s.spawn(move || {
                let mut scratch = Scratch::default();
                loop {
                    let next = block_rx.lock().map(|rx| rx.recv());
                    let Ok(Ok(block)) = next else { return };
                    let scored = scorer.score(&block, &mut scratch);
                    if result_tx.send((block.first_line, scored)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(result_tx);
        let read = for_each_query_block(scorer.path, |block| {
            block_tx.send(block).map_err(|_| CoreError::parse(scorer.path, 0, "scoring worker stopped"))
        });
        drop(block_tx);
        // Every block is scored even after an error, so that the error reported is the first
        // one in the file, as the sequential reader would report it.
        let mut per_query = BTreeMap::new();
        let mut first_error: Option<(usize, CoreError)> = None;
        for (first_line, scored) in result_rx {
            match scored {
                Ok(Some((qid, values))) => {
                    per_query.insert(qid, values);
                }
                Ok(None) => {}
                Err(e) => {
                    if first_error.as_ref().is_none_or(|(line, _)| first_line < *line) {
                        first_error = Some((first_line, e));
                    }
                }
            }
        }
        let grouped = read?;
        match first_error {
            Some((_, e)) if grouped => Err(e),
            _ => Ok(grouped.then_some(per_query)),
        }
    })
}

/// Consecutive lines of one query (blank and comment lines included, so that line numbers
/// hold), with the 1-based number of its first line.
struct Block {
    first_line: usize,
    bytes: Vec<u8>,
}

/// The first field of a line as [`parse_run_line`] splits it (Unicode whitespace), `None` for
/// blank and comment lines. Bytes that are not UTF-8 split on ASCII whitespace; the worker
/// reports them.
fn query_field(line: &[u8]) -> Option<&[u8]> {
    if line.first() == Some(&b'#') {
        return None;
    }
    match std::str::from_utf8(line) {
        Ok(text) => text.split_whitespace().next().map(str::as_bytes),
        Err(_) => line.split(u8::is_ascii_whitespace).find(|f| !f.is_empty()),
    }
}

/// Cuts the file into per-query blocks and hands them to `f` in file order. Returns false
/// (and stops early) when a query's lines are not consecutive.
fn for_each_query_block(path: &Path, mut f: impl FnMut(Block) -> Result<()>) -> Result<bool> {
    const CHUNK: usize = 1 << 20;
    let mut reader = crate::io::open_text(path)?;
    let mut buf: Vec<u8> = Vec::with_capacity(2 * CHUNK);
    let mut finished: HashSet<Vec<u8>> = HashSet::new();
    let mut current: Vec<u8> = Vec::new();
    let mut block = Block { first_line: 1, bytes: Vec::new() };
    let mut line_no = 0usize;
    let mut eof = false;
    while !eof {
        let filled = buf.len();
        buf.resize(filled + CHUNK, 0);
        let n = reader.read(&mut buf[filled..]).map_err(|source| CoreError::Io { path: path.to_path_buf(), source })?;
        buf.truncate(filled + n);
        eof = n == 0;
        // Lines of the current query are copied into the block a run at a time.
        let mut start = 0;
        let mut run_start = 0;
        loop {
            let end = match memchr::memchr(b'\n', &buf[start..]) {
                Some(i) => start + i + 1,
                None if eof && start < buf.len() => buf.len(),
                None => break,
            };
            let line = &buf[start..end];
            line_no += 1;
            let same_query = !current.is_empty()
                && line.starts_with(&current)
                && line.get(current.len()).is_some_and(u8::is_ascii_whitespace);
            if !same_query {
                if let Some(qid) = query_field(line) {
                    if qid != current.as_slice() {
                        block.bytes.extend_from_slice(&buf[run_start..start]);
                        run_start = start;
                        if !current.is_empty() {
                            f(std::mem::replace(&mut block, Block { first_line: line_no, bytes: Vec::new() }))?;
                            finished.insert(std::mem::take(&mut current));
                        }
                        if finished.contains(qid) {
                            return Ok(false);
                        }
                        current = qid.to_vec();
                    }
                }
            }
            start = end;
        }
        block.bytes.extend_from_slice(&buf[run_start..start]);
        buf.drain(..start);
    }
    if !current.is_empty() {
        f(block)?;
    } else if finished.is_empty() {
        return Err(crate::io::empty_run(path));
    }
    Ok(true)
}

/// Buffers a worker reuses from query to query.
#[derive(Default)]
struct Scratch {
    docs: Vec<(f32, usize, usize)>,
}

struct BlockScorer<'a> {
    qrels: &'a Qrels,
    measures: &'a [Measure],
    opts: &'a EvalOptions,
    path: &'a Path,
}

impl BlockScorer<'_> {
    /// Parses one query's lines with `read_run`'s checks and returns the query's values when
    /// the qrels judge it.
    fn score(&self, block: &Block, scratch: &mut Scratch) -> Result<Option<(String, Vec<f64>)>> {
        let text = match std::str::from_utf8(&block.bytes) {
            Ok(text) => text,
            Err(e) => {
                let line = block.first_line + block.bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count();
                return Err(CoreError::parse(self.path, line, "cannot read line: stream did not contain valid UTF-8"));
            }
        };
        scratch.docs.clear();
        let mut seen: FxHashSet<&str> = FxHashSet::with_capacity_and_hasher(scratch.docs.capacity(), Default::default());
        let mut qid = "";
        let base = text.as_ptr() as usize;
        for (i, raw) in text.split_inclusive('\n').enumerate() {
            let line_no = block.first_line + i;
            let line = raw.trim_end_matches(['\n', '\r']);
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let RunLine { query: q, doc, score, .. } =
                parse_run_line(line).map_err(|cause| CoreError::parse(self.path, line_no, cause))?;
            // Documents are kept as (offset, length) into the block: no allocation per line.
            let key = (doc.as_ptr() as usize - base, doc.len());
            if !seen.insert(doc) {
                return Err(CoreError::parse(self.path, line_no, duplicate_doc(q, doc)));
            }
            qid = q;
            scratch.docs.push((score as f32, key.0, key.1));
        }
        let Some(judgements) = self.qrels.by_query.get(qid) else { return Ok(None) };
        let doc_of = |&(_, at, len): &(f32, usize, usize)| &text[at..at + len];
        // trec_eval's order: score descending as a 32-bit float, ties by docno descending.
        scratch.docs.sort_unstable_by(|a, b| {
            b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal).then_with(|| doc_of(b).as_bytes().cmp(doc_of(a).as_bytes()))
        });
        let judged = judge_ordered(judgements, scratch.docs.iter().map(doc_of), self.opts);
        Ok(Some((qid.to_string(), self.measures.iter().map(|&m| judged.value(m)).collect())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{read_qrels, read_run};
    use crate::trec_eval::{evaluate, format_trec_eval};

    fn golden(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/trec_eval").join(name)
    }

    fn all_measures() -> Vec<Measure> {
        Measure::parse_list("official").unwrap()
    }

    fn collected(qrels: &Qrels, path: &Path, opts: &EvalOptions) -> String {
        let run = read_run(path).unwrap().run;
        format_trec_eval(&evaluate(qrels, &run, &all_measures(), opts), true)
    }

    fn streamed(qrels: &Qrels, path: &Path, opts: &EvalOptions, threads: usize) -> Result<String> {
        Ok(format_trec_eval(&evaluate_run_file(qrels, path, &all_measures(), opts, threads)?, true))
    }

    #[test]
    fn equals_the_collecting_path_on_the_goldens() {
        for stem in ["synthetic", "scifact-bm25"] {
            let qrels = read_qrels(&golden(&format!("{stem}.qrels"))).unwrap();
            let run = golden(&format!("{stem}.run.gz"));
            for opts in [
                EvalOptions::default(),
                EvalOptions { average_over_all_qrels: true, relevance_level: 2, max_docs: Some(50) },
            ] {
                let expected = collected(&qrels, &run, &opts);
                for threads in [1, 2, 5] {
                    assert_eq!(streamed(&qrels, &run, &opts, threads).unwrap(), expected, "{stem} {opts:?} threads {threads}");
                }
            }
        }
    }

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn interleaved_queries_fall_back_to_collecting() {
        let dir = tempfile::tempdir().unwrap();
        let qrels = write(&dir, "q", "1 0 a 1\n2 0 c 1\n");
        let qrels = read_qrels(&qrels).unwrap();
        // Query 1's lines are split by query 2's: a streaming pass alone would score 1 twice.
        let run = write(&dir, "r", "# comment\n1 Q0 b 1 3 t\r\n2 Q0 c 1 2 t\n\n1 Q0 a 2 2 t\n");
        let opts = EvalOptions::default();
        for threads in [1, 2] {
            let text = streamed(&qrels, &run, &opts, threads).unwrap();
            assert_eq!(text, collected(&qrels, &run, &opts));
            assert!(text.contains("recip_rank            \t1\t0.5000"), "{text}");
        }
    }

    #[test]
    fn fields_split_on_the_same_whitespace_as_the_reader() {
        let dir = tempfile::tempdir().unwrap();
        let qrels = read_qrels(&write(&dir, "q", "1 0 a 1\n")).unwrap();
        // A no-break space between fields, and one right after the query id.
        let run = write(&dir, "r", "1\u{a0}Q0 b 1 3 t\n1 Q0\u{a0}a 2 2 t\n");
        let opts = EvalOptions::default();
        for threads in [1, 2] {
            let text = streamed(&qrels, &run, &opts, threads).unwrap();
            assert_eq!(text, collected(&qrels, &run, &opts));
            assert!(text.contains("recip_rank            \t1\t0.5000"), "{text}");
        }
    }

    #[test]
    fn errors_name_the_same_line_as_the_reader() {
        let dir = tempfile::tempdir().unwrap();
        let qrels = read_qrels(&write(&dir, "q", "1 0 a 1\n")).unwrap();
        let opts = EvalOptions::default();
        let cases = [
            ("1 Q0 a 1 1 t\n1 Q0 b 2 x t\n", ":2: score 'x' is not a number"),
            ("1 Q0 a 1 1 t\n\n1 Q0 a 2 0.5 t\n", ":3: document 'a' appears twice for query '1'"),
            ("1 Q0 a 1 1 t\n2 Q0 a 1 inf t\n", ":2: score 'inf' is not finite"),
            ("1 Q0 a 1 1 t x\n", ":1: expected 6 fields (qid Q0 docid rank score tag), found 7"),
            ("1 Q0 a 1 1\n", ":1: expected 6 fields (qid Q0 docid rank score tag), found 5"),
            // With several workers the first error in the file wins, wherever it was found.
            ("1 Q0 a 1 1 t\n2 Q0 b 1 1 t\n3 Q0 c 1 y t\n4 Q0 d 1 z t\n", ":3: score 'y' is not a number"),
            // An empty run, as trec_eval, is refused.
            ("", ": no ranking lines (trec_eval refuses an empty results file)"),
            ("# header only\n\n", ": no ranking lines (trec_eval refuses an empty results file)"),
        ];
        for (i, (text, cause)) in cases.iter().enumerate() {
            let run = write(&dir, &format!("r{i}"), text);
            let reader = read_run(&run).unwrap_err().to_string();
            assert!(reader.ends_with(cause), "reader: {reader}");
            for threads in [1, 3] {
                let got = streamed(&qrels, &run, &opts, threads).unwrap_err().to_string();
                assert_eq!(got, reader, "threads {threads}");
            }
        }
        let run = dir.path().join("bad-utf8");
        std::fs::write(&run, b"1 Q0 a 1 1 t\n1 Q0 \xff 2 1 t\n").unwrap();
        let got = streamed(&qrels, &run, &opts, 1).unwrap_err().to_string();
        assert!(got.ends_with(":2: cannot read line: stream did not contain valid UTF-8"), "{got}");
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        /// Run-like lines: mostly well formed, with the mistakes people and programs make.
        fn run_line() -> impl Strategy<Value = String> {
            prop_oneof![
                6 => ("[1-3]", "[a-d]", "-?[0-9]{1,2}(\\.[0-9])?").prop_map(|(q, d, s)| format!("{q} Q0 {d} 1 {s} t")),
                1 => Just(String::new()),
                1 => Just("# comment".to_string()),
                1 => "[ -~\t]{0,30}",
                1 => ("[1-3]", "[a-d]").prop_map(|(q, d)| format!("{q}\tQ0\t{d}\t1\tnan\tt")),
                1 => ("[1-3]", "[a-d]").prop_map(|(q, d)| format!("{q} Q0 {d} 1 1e999 t")),
                1 => ("[1-3]", "[a-d]").prop_map(|(q, d)| format!("{q} Q0 {d} 1 2 t extra")),
                1 => Just("2 Q0 \u{a0}b 1 1 t".to_string()),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

            /// On any input the readers return a value or an error naming a line that exists,
            /// never panic, and the streaming scorer agrees with the collecting path exactly
            /// (the same digits, or the same error).
            #[test]
            fn readers_and_scorers_agree_on_arbitrary_runs(lines in prop::collection::vec(run_line(), 0..40), crlf in any::<bool>(), threads in 1usize..4) {
                let dir = tempfile::tempdir().unwrap();
                let qrels = read_qrels(&write(&dir, "q", "1 0 a 1\n2 0 b 2\n3 0 c 0\n")).unwrap();
                let text = lines.join(if crlf { "\r\n" } else { "\n" });
                let run = write(&dir, "r", &text);
                let opts = EvalOptions { average_over_all_qrels: true, ..Default::default() };
                let collected = read_run(&run).map(|r| format_trec_eval(&evaluate(&qrels, &r.run, &all_measures(), &opts), true));
                let stream = streamed(&qrels, &run, &opts, threads);
                match (&collected, &stream) {
                    (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
                    (Err(a), Err(b)) => prop_assert_eq!(a.to_string(), b.to_string()),
                    _ => prop_assert!(false, "collected {:?} vs streamed {:?}", collected.as_ref().err(), stream.as_ref().err()),
                }
                if let Err(crate::CoreError::Parse { line, .. }) = &collected {
                    prop_assert!(*line >= 1 && *line <= lines.len().max(1));
                }
            }

            /// Arbitrary bytes as qrels: a value or a located error, never a panic.
            #[test]
            fn qrels_reader_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
                let dir = tempfile::tempdir().unwrap();
                let p = dir.path().join("q");
                std::fs::write(&p, &bytes).unwrap();
                let _ = read_qrels(&p);
                let _ = read_run(&p);
            }
        }
    }
}
