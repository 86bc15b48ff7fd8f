//! Dense retrieval end to end: the encoder against python onnxruntime's reference embeddings,
//! SciFact quality against the MTEB figure, HNSW against exact search, cache damage, and the
//! errors for a missing model or ONNX Runtime. Needs `scripts/setup.sh` (the README's test
//! command runs it first).
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

mod common;

fn harness() -> Command {
    Command::new(env!("CARGO_BIN_EXE_harness"))
}

fn run_with_stdin(mut cmd: Command, input: &str) -> Output {
    use std::io::Write;
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // A child that fails before reading its input closes the pipe; that is not an error here.
    if let Err(e) = child.stdin.take().unwrap().write_all(input.as_bytes()) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    child.wait_with_output().unwrap()
}

fn model_dir() -> PathBuf {
    let models = std::env::var_os("HARNESS_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".deps/models"));
    let dir = models.join("all-minilm-l6-v2-int8");
    assert!(dir.join("model.onnx").is_file(), "{} missing: run `bash scripts/setup.sh` first", dir.display());
    dir
}

#[test]
fn embed_matches_python_onnxruntime_reference() {
    let fixture: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/fixtures/all-minilm-l6-v2-int8.json")).unwrap(),
    )
    .unwrap();
    let texts: Vec<&str> = fixture["texts"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    let mut cmd = harness();
    cmd.args(["embed", "--model"]).arg(model_dir());
    let out = run_with_stdin(cmd, &(texts.join("\n") + "\n"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: Vec<Vec<f64>> = String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(got.len(), 4);
    let mut max_diff = 0f64;
    for (g, e) in got.iter().zip(fixture["embeddings"].as_array().unwrap()) {
        let e = e.as_array().unwrap();
        assert_eq!(g.len(), 384);
        for (a, b) in g.iter().zip(e) {
            max_diff = max_diff.max((a - b.as_f64().unwrap()).abs());
        }
    }
    assert!(max_diff < 1e-5, "max abs difference {max_diff}");
}

/// The default encoder runs MiniLM with its six softmax NaN guards dropped; the vectors must be
/// those of the graph as published, bit for bit, including texts that are padded in their batch
/// and an empty text (the tokenizer still gives it [CLS] [SEP]).
#[test]
fn simplified_graph_gives_the_published_graphs_vectors_bit_for_bit() {
    let runtime = harness_retrieval::dense::encoder::default_ort_library();
    let load = |form| harness_retrieval::dense::Encoder::load_with_runtime_as(&model_dir(), 1, &runtime, form).unwrap();
    use harness_retrieval::dense::{GraphForm, TextKind};
    let (mut simplified, mut published) = (load(GraphForm::Simplified), load(GraphForm::AsPublished));
    assert_eq!(simplified.graph_edits().softmax_nan_guards_dropped, 6);
    assert_eq!(published.graph_edits().softmax_nan_guards_dropped, 0);
    assert_eq!(simplified.model_sha256(), published.model_sha256());
    let corpus = flate2_free_gunzip(&Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/data/scifact/corpus.jsonl.gz"));
    let mut texts: Vec<String> = corpus
        .lines()
        .take(12)
        .map(|l| {
            let doc: serde_json::Value = serde_json::from_str(l).unwrap();
            // Cut to different lengths so that most rows of a batch are padded.
            let words: Vec<&str> = doc["text"].as_str().unwrap().split_whitespace().collect();
            words[..words.len().min(3 + 9 * (words.len() % 7))].join(" ")
        })
        .collect();
    texts.push(String::new());
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    for kind in [TextKind::Passage, TextKind::Query] {
        let a = simplified.encode_many(&refs, kind, 5).unwrap();
        let b = published.encode_many(&refs, kind, 5).unwrap();
        for (i, (u, v)) in a.iter().zip(&b).enumerate() {
            let same = u.iter().zip(v).all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same, "text {i} ({:?}): vectors differ", refs[i]);
        }
    }
}

/// With CLS pooling, a text that tokenizes to nothing would read a NaN vector from the
/// simplified graph: it is refused there, and encoded as before on the published graph. (The
/// shipped tokenizer always adds [CLS] and [SEP]; this one has its post-processor removed.)
#[test]
fn cls_pooling_refuses_a_text_without_tokens_on_the_simplified_graph() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(model_dir().join("model.onnx"), dir.path().join("model.onnx")).unwrap();
    let mut tokenizer: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model_dir().join("tokenizer.json")).unwrap()).unwrap();
    tokenizer["post_processor"] = serde_json::Value::Null;
    std::fs::write(dir.path().join("tokenizer.json"), tokenizer.to_string()).unwrap();
    std::fs::write(dir.path().join(harness_retrieval::dense::encoder::SPEC_FILE), r#"{"pooling": "cls"}"#).unwrap();
    let runtime = harness_retrieval::dense::encoder::default_ort_library();
    use harness_retrieval::dense::{Encoder, GraphForm, TextKind};
    let texts = ["a claim about proteins", ""];
    let mut simplified = Encoder::load_with_runtime_as(dir.path(), 1, &runtime, GraphForm::Simplified).unwrap();
    let err = simplified.encode(&texts, TextKind::Passage).unwrap_err().to_string();
    assert!(err.contains("text 1") && err.contains("no tokens"), "{err}");
    let mut published = Encoder::load_with_runtime_as(dir.path(), 1, &runtime, GraphForm::AsPublished).unwrap();
    let vectors = published.encode(&texts, TextKind::Passage).unwrap();
    assert!(vectors.iter().flatten().all(|x| x.is_finite()));
}

#[test]
fn missing_model_or_runtime_is_a_one_line_error() {
    let out = run_with_stdin(
        {
            let mut c = harness();
            c.args(["embed", "--model", "/nonexistent/model-dir"]);
            c
        },
        "x\n",
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success());
    assert!(err.contains("/nonexistent/model-dir/model.onnx") && err.contains("scripts/setup.sh"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");

    let mut c = harness();
    c.args(["embed", "--model"]).arg(model_dir()).env("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so");
    let out = run_with_stdin(c, "x\n");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success());
    assert!(err.contains("/nonexistent/libonnxruntime.so") && err.contains("scripts/setup.sh"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

/// A small BEIR dataset (the first 300 SciFact abstracts and 20 of their queries) in a temp dir.
fn tiny_dataset(root: &Path) -> (PathBuf, PathBuf) {
    use std::io::{BufRead, Write};
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/data/scifact");
    let data = root.join("data/tiny");
    std::fs::create_dir_all(data.join("qrels")).unwrap();
    let corpus = flate2_free_gunzip(&src.join("corpus.jsonl.gz"));
    let docs: Vec<&str> = corpus.lines().take(300).collect();
    std::fs::write(data.join("corpus.jsonl"), docs.join("\n") + "\n").unwrap();
    let ids: Vec<String> = docs.iter().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["_id"].to_string().trim_matches('"').to_string()).collect();
    let mut qrels = std::fs::File::create(data.join("qrels/test.tsv")).unwrap();
    writeln!(qrels, "query-id\tcorpus-id\tscore").unwrap();
    let mut kept = std::collections::BTreeSet::new();
    for line in std::io::BufReader::new(std::fs::File::open(src.join("qrels/test.tsv")).unwrap()).lines().skip(1) {
        let line = line.unwrap();
        let f: Vec<&str> = line.trim_end().split('\t').collect();
        if ids.iter().any(|i| i == f[1]) && kept.len() < 20 {
            kept.insert(f[0].to_string());
            writeln!(qrels, "{}\t{}\t{}", f[0], f[1], f[2]).unwrap();
        }
    }
    std::fs::copy(src.join("queries.jsonl"), data.join("queries.jsonl")).unwrap();
    let cards = root.join("cards");
    std::fs::create_dir_all(&cards).unwrap();
    std::fs::write(
        cards.join("tiny.toml"),
        "name = 'tiny'\ntitle = 'tiny'\nfamily = 'classic-ir'\nloader = 'beir'\nlicense = 'x'\ndescription = 'test'\n\
         paper_metric = 'ndcg_cut.10'\nmeasures = ['ndcg_cut.10']\ndepth = 100\ndefault_split = 'test'\n\
         [files]\ncorpus = 'corpus.jsonl'\nqueries = 'queries.jsonl'\n[splits.test]\nqrels = 'qrels/test.tsv'\n\
         [splits.train]\nqrels = 'qrels/test.tsv'\n[task]\nprompt = 'classic-ir'\nreward = 'classic-ir'\n\
         input = 'scientific claim'\ngoal = 'that support or refute it'\n",
    )
    .unwrap();
    (root.join("data"), cards)
}

/// `harness` on the tiny dataset of `root` (its data, cards and a cache beside them).
fn on_tiny(root: &Path, data: &Path, cards: &Path) -> Command {
    let mut cmd = harness();
    cmd.env("HARNESS_DATA_DIR", data).env("HARNESS_CARDS_DIR", cards).env("HARNESS_CACHE_DIR", root.join("cache"));
    cmd
}

/// The test's own gunzip through the `gzip` command-line tool keeps flate2 out of dev-deps.
fn flate2_free_gunzip(path: &Path) -> String {
    let out = Command::new("gzip").arg("-dc").arg(path).output().expect("gzip available");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn damaged_embedding_cache_is_rebuilt_not_used() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, cards) = tiny_dataset(tmp.path());
    let cache = tmp.path().join("cache");
    let eval = |out: &str| {
        harness()
            .args(["eval", "--dataset", "tiny", "--retriever", "dense", "--out"])
            .arg(tmp.path().join(out))
            .env("HARNESS_DATA_DIR", &data)
            .env("HARNESS_CARDS_DIR", &cards)
            .env("HARNESS_CACHE_DIR", &cache)
            .output()
            .unwrap()
    };
    let first = eval("a");
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let chunk = std::fs::read_dir(cache.join("dense")).unwrap().next().unwrap().unwrap().path().join("chunk-00000.f32");
    let mut bytes = std::fs::read(&chunk).unwrap();
    bytes[100] ^= 0x40;
    std::fs::write(&chunk, bytes).unwrap();
    let second = eval("b");
    assert!(second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("is damaged; encoding it again"), "{err}");
    // Re-encoded vectors give the very same rankings as the first encoding.
    let a = std::fs::read_to_string(tmp.path().join("a/run.trec")).unwrap();
    let b = std::fs::read_to_string(tmp.path().join("b/run.trec")).unwrap();
    let strip_tag = |t: &str| t.lines().map(|l| l.rsplit_once(' ').unwrap().0.to_string()).collect::<Vec<_>>();
    assert!(!a.is_empty());
    assert_eq!(strip_tag(&a), strip_tag(&b));
}

/// `harness train --retriever dense`: the reward searches the cached passage embeddings with
/// each rollout's query encoded as it comes; two GRPO steps on the tiny set log their rewards,
/// and the held-out original query's NDCG is measured with the same dense retriever.
#[test]
fn training_rewards_with_the_dense_retriever() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, cards) = tiny_dataset(tmp.path());
    let config = tmp.path().join("tiny.toml");
    std::fs::write(
        &config,
        "[run]\ntotal_steps = 2\nsave_every = 2\neval_every = 2\nreasoning = false\nreward_depth = 10\n\
         [ppo]\nalgorithm = \"grpo\"\nactor_lr = 1e-4\ncritic_lr = 1e-4\nweight_decay = 0.0\nbatch_size = 1\n\
         mini_batch_size = 2\nppo_epochs = 1\nclip_ratio = 0.2\nvalue_clip = 0.5\nentropy_coeff = 0.001\n\
         kl_coef = 0.001\ngamma = 1.0\nlambda = 1.0\ngrad_clip = 1.0\ntemperature = 1.0\nmax_response_tokens = 8\n\
         group_size = 2\nseed = 5\n[lora]\nrank = 2\nalpha = 4.0\n",
    )
    .unwrap();
    let out = tmp.path().join("run");
    let o = on_tiny(tmp.path(), &data, &cards)
        .args(["train", "--dataset", "tiny", "--retriever", "dense", "--eval-split", "test", "--eval-limit", "3", "--device", "cpu", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let log: Vec<serde_json::Value> = std::fs::read_to_string(out.join("log.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(log.len(), 2);
    assert!(log.iter().all(|s| (-2.0..=1.1).contains(&s["reward_mean"].as_f64().unwrap())));
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("meta.json")).unwrap()).unwrap();
    assert!(meta["task"]["retriever"]["name"].as_str().unwrap().starts_with("dense-exact("), "{}", meta["task"]);
    let evals: Vec<serde_json::Value> = std::fs::read_to_string(out.join("eval.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let original = evals[0]["original_metric_mean"].as_f64().unwrap();
    assert!(original > 0.0 && original <= 1.0, "{original}");
    // hnsw is for evaluation; the reward is exact search.
    let o = on_tiny(tmp.path(), &data, &cards).args(["train", "--dataset", "tiny", "--retriever", "hnsw", "--device", "cpu"]).output().unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("hnsw is for evaluation"), "{}", String::from_utf8_lossy(&o.stderr));

    // The reward endpoint with the dense retriever (what verl would call): the original query of
    // each of the 3 held-out items, answered well-formed, scores the metric training measured.
    let parquet = tmp.path().join("test.parquet");
    let o = on_tiny(tmp.path(), &data, &cards).args(["export", "verl", "--dataset", "tiny", "--split", "test", "--retriever", "dense", "--out"]).arg(&parquet).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let items = verl_items(&parquet, 3);
    let port = common::free_port();
    let mut serve = on_tiny(tmp.path(), &data, &cards);
    serve.args(["serve", "--reward", "--dataset", "tiny", "--retriever", "dense", "--reward-depth", "10", "--port", &port.to_string()]);
    let mut server = common::spawn_listening(serve, port, 120);
    let body = serde_json::json!({"items": items}).to_string();
    let reply = ureq::post(&format!("http://127.0.0.1:{port}/reward")).header("Content-Type", "application/json").send(body.as_bytes());
    server.kill().unwrap();
    server.wait().unwrap();
    let reply: serde_json::Value = serde_json::from_str(&reply.unwrap().body_mut().read_to_string().unwrap()).unwrap();
    let metrics: Vec<f64> = reply["rewards"].as_array().unwrap().iter().map(|r| r["metric"].as_f64().unwrap()).collect();
    assert_eq!(metrics.len(), 3, "{reply}");
    assert_eq!(metrics.iter().sum::<f64>() / 3.0, original, "served {metrics:?}");
}

/// The first `n` rows of an exported verl parquet as reward items answering each row's own
/// question, well-formed and without reasoning.
fn verl_items(parquet: &Path, n: usize) -> Vec<serde_json::Value> {
    use polars::prelude::*;
    let df = ParquetReader::new(std::fs::File::open(parquet).unwrap()).finish().unwrap();
    let field = |column: &str, name: &str| df.column(column).unwrap().struct_().unwrap().field_by_name(name).unwrap();
    let truth = field("reward_model", "ground_truth").struct_().unwrap().clone();
    let (targets, scores) = (truth.field_by_name("target").unwrap(), truth.field_by_name("score").unwrap());
    let questions = field("extra_info", "question");
    let sources = df.column("data_source").unwrap().str().unwrap().clone();
    (0..n)
        .map(|i| {
            let list = |s: &Series| s.list().unwrap().get_as_series(i).unwrap();
            let (target, score) = (list(&targets), list(&scores));
            let target: Vec<String> = (0..target.len()).map(|j| target.str().unwrap().get(j).unwrap().to_string()).collect();
            let score: Vec<i64> = (0..score.len()).map(|j| score.i64().unwrap().get(j).unwrap()).collect();
            let question = questions.str().unwrap().get(i).unwrap().to_string();
            serde_json::json!({
                "data_source": sources.get(i).unwrap(),
                "solution_str": format!("<answer>\n{}\n</answer>", serde_json::json!({"query": question})),
                "ground_truth": {"target": target, "score": score},
                "extra_info": {"reasoning": false, "split": "test"},
            })
        })
        .collect()
}

/// A reproduce spec with a dense cell and a `[cost]` section: the dense cell measured, and the
/// cost rows (BM25, exact dense, HNSW: build and query seconds, ratios to BM25) in the long
/// table beside the paper's figures, labelled as the paper's.
#[test]
fn reproduce_runs_dense_cells_and_the_cost_section() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, cards) = tiny_dataset(tmp.path());
    let spec = tmp.path().join("spec.toml");
    std::fs::write(
        &spec,
        "table = 9\ntitle = 'tiny'\nmetric = 'ndcg (x100)'\npaper_source = 'docs/paper-notes.md §8'\ncolumns = ['tiny']\n\
         [[cell]]\nlabel = 'dense'\ndataset = 'tiny'\nsplit = 'test'\nmethod = 'original'\nretriever = 'dense'\n\
         measure = 'ndcg_cut.10'\nscale = 100.0\n\
         [cost]\ndataset = 'tiny'\npaper = { bm25_s = 352.0, dense_s = 12232.0, dense_vs_bm25 = 34.75 }\npaper_note = 'FEVER'\n",
    )
    .unwrap();
    let out = tmp.path().join("out");
    let o = on_tiny(tmp.path(), &data, &cards).args(["reproduce", "--spec"]).arg(&spec).arg("--out").arg(&out).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("Cost (build from scratch"), "{}", String::from_utf8_lossy(&o.stdout));
    let csv = std::fs::read_to_string(out.join("table.csv")).unwrap();
    assert_eq!(csv.lines().filter(|l| l.starts_with("ours,") && l.contains("measured (run ")).count(), 1, "{csv}");
    let cost: Vec<&str> = csv.lines().filter(|l| l.starts_with("cost,")).collect();
    for retriever in ["bm25(", "dense-exact(", "hnsw("] {
        for figure in [",build_s,", ",query_s,", ",query_vs_bm25,", ",ndcg_cut_10,"] {
            assert_eq!(cost.iter().filter(|l| l.contains(retriever) && l.contains(figure)).count(), 1, "{retriever} {figure}: {csv}");
        }
    }
    let bm25_ratio = cost.iter().find(|l| l.contains("bm25(") && l.contains(",query_vs_bm25,")).unwrap();
    assert!(bm25_ratio.contains(",1.0,"), "{bm25_ratio}");
    let paper: Vec<&str> = csv.lines().filter(|l| l.starts_with("paper-cost,")).collect();
    assert_eq!(paper.len(), 3, "{csv}");
    assert!(paper.iter().all(|l| l.contains("paper (docs/paper-notes.md §8)")), "{csv}");
    assert!(out.join("cost/cost.csv").is_file());
}
