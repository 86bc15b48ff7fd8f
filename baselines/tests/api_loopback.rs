//! `api:` against `harness serve`'s handler over loopback, and the client's retries and cache
//! against a scripted server.
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use harness_baselines::api::{ApiMethod, ChatClient};
use harness_baselines::serve::{serve, ServeOptions};
use harness_baselines::{LlmSettings, QueryMethod, Task};
use harness_core::Query;
use harness_policy::{Policy, SamplingParams};

fn model_dir() -> PathBuf {
    std::env::var_os("HARNESS_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.deps/models"))
        .join("smollm2-135m-instruct")
}

#[test]
fn api_method_talks_to_harness_serve_and_caches_responses() {
    tch::set_num_threads(2);
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
    let port = server.server_addr().to_ip().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let handle = {
        let (server, stop) = (Arc::clone(&server), Arc::clone(&stop));
        std::thread::spawn(move || {
            let policy = Policy::load(&model_dir(), tch::Device::Cpu).unwrap();
            serve(&server, &policy, &ServeOptions { model_name: "smollm2".into(), max_new_tokens: 48 }, &stop);
        })
    };
    let cache = tempfile::tempdir().unwrap();
    let settings = LlmSettings { reasoning: false, sampling: SamplingParams { max_new_tokens: 48, ..Default::default() }, batch_size: 1 };
    let client = ChatClient::new(&format!("http://127.0.0.1:{port}/v1"), Some("secret-key".into()), cache.path().to_path_buf());
    let task = |q: &Query| Task::classic_ir("scientific claim", "that support or refute it", "sparse", &q.text);
    let mut method = ApiMethod::new("smollm2", client, settings.clone(), Box::new(task));
    let queries = vec![
        Query { id: "1".into(), text: "Vitamin D lowers the risk of fractures.".into() },
        Query { id: "2".into(), text: "Aspirin prevents heart attacks.".into() },
    ];
    let first = method.rewrite(&queries).unwrap();
    assert_eq!(first.len(), 2);
    let report = method.report();
    assert_eq!(report["requests_sent"], 2);
    assert_eq!(report["cache_hits"], 0);
    let generations = method.generations();
    assert!(generations.iter().all(|g| !g["output"].as_str().unwrap().is_empty()));

    // The server stops; a new client answers from the cache alone, identically.
    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap();
    let client = ChatClient::new(&format!("http://127.0.0.1:{port}/v1"), Some("secret-key".into()), cache.path().to_path_buf());
    let mut again = ApiMethod::new("smollm2", client, settings, Box::new(task));
    assert_eq!(again.rewrite(&queries).unwrap(), first);
    assert_eq!(again.report()["cache_hits"], 2);
    // The key is never written to disk.
    for entry in std::fs::read_dir(cache.path()).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(!text.contains("secret-key"));
    }
}

/// A server that answers `failures` requests with 503, then a valid completion.
fn flaky_server(failures: usize) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut buf = [0u8; 65536];
            let _ = stream.read(&mut buf);
            let n = count.fetch_add(1, Ordering::SeqCst);
            let (status, body) = if n < failures {
                ("503 Service Unavailable", "{\"error\": \"busy\"}".to_string())
            } else {
                ("200 OK", "{\"choices\": [{\"message\": {\"role\": \"assistant\", \"content\": \"<answer>{\\\"query\\\": \\\"q\\\"}</answer>\"}}]}".to_string())
            };
            let _ = write!(stream, "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        }
    });
    (port, seen)
}

#[test]
fn client_retries_transient_failures_then_gives_a_clear_error() {
    let cache = tempfile::tempdir().unwrap();
    let body = serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});

    let (port, seen) = flaky_server(2);
    let mut client = ChatClient::new(&format!("http://127.0.0.1:{port}"), None, cache.path().to_path_buf());
    client.backoff = Duration::from_millis(10);
    assert_eq!(client.complete(&body).unwrap(), "<answer>{\"query\": \"q\"}</answer>");
    assert_eq!(seen.load(Ordering::SeqCst), 3);

    let (port, seen) = flaky_server(100);
    let mut client = ChatClient::new(&format!("http://127.0.0.1:{port}"), None, cache.path().join("other"));
    client.backoff = Duration::from_millis(10);
    let err = client.complete(&body).unwrap_err().to_string();
    assert!(err.contains("HTTP 503"), "{err}");
    assert_eq!(seen.load(Ordering::SeqCst), 4);
}
