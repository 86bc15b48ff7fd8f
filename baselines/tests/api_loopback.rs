//! `api:` against `harness serve`'s handler over loopback, and the client's retries and cache
//! against a scripted server.
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness_baselines::api::{ApiMethod, ChatClient, RetryPolicy};
use harness_baselines::serve::ServeOptions;
use harness_baselines::{LlmSettings, QueryMethod, Task};
use harness_core::Query;
use harness_policy::SamplingParams;

mod common;
use common::TestServer;

#[test]
fn api_method_talks_to_harness_serve_and_caches_responses() {
    let server = TestServer::start(ServeOptions::new("smollm2", 48), Duration::from_secs(30));
    let port = server.port;
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
    server.stop();
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

/// What the scripted server answers to its n-th request.
#[derive(Clone, Copy)]
enum Answer {
    Busy,
    BusyRetryAfter(u64),
    Completion,
    NotACompletion,
    /// Promises more body bytes than it sends, then hangs up.
    TruncatedBody,
}

/// A server that answers request n with `script(n)`.
fn scripted_server(script: fn(usize) -> Answer) -> (u16, Arc<AtomicUsize>) {
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
            let completion = "{\"choices\": [{\"message\": {\"role\": \"assistant\", \"content\": \"<answer>{\\\"query\\\": \\\"q\\\"}</answer>\"}}]}";
            let (status, extra, body, length) = match script(n) {
                Answer::Busy => ("503 Service Unavailable", String::new(), "{\"error\": \"busy\"}".to_string(), None),
                Answer::BusyRetryAfter(s) => ("429 Too Many Requests", format!("Retry-After: {s}\r\n"), "{\"error\": \"slow down\"}".to_string(), None),
                Answer::Completion => ("200 OK", String::new(), completion.to_string(), None),
                Answer::NotACompletion => ("200 OK", String::new(), "{\"choices\": []}".to_string(), None),
                Answer::TruncatedBody => ("200 OK", String::new(), completion[..20].to_string(), Some(completion.len())),
            };
            let length = length.unwrap_or(body.len());
            let _ = write!(stream, "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{extra}Content-Length: {length}\r\nConnection: close\r\n\r\n{body}");
        }
    });
    (port, seen)
}

fn fast_retries(total_ms: u64) -> RetryPolicy {
    RetryPolicy {
        timeout: Duration::from_secs(5),
        total: Duration::from_millis(total_ms),
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
    }
}

#[test]
fn client_retries_transient_failures_then_gives_a_clear_error() {
    let cache = tempfile::tempdir().unwrap();
    let body = serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    let client = |port: u16, dir: &str| {
        ChatClient::new(&format!("http://127.0.0.1:{port}"), None, cache.path().join(dir)).with_policy(fast_retries(400))
    };

    let (port, seen) = scripted_server(|n| if n < 2 { Answer::Busy } else { Answer::Completion });
    assert_eq!(client(port, "a").complete(&body).unwrap(), "<answer>{\"query\": \"q\"}</answer>");
    assert_eq!(seen.load(Ordering::SeqCst), 3);

    // Busy for good: retried until the total budget, then one error that says so.
    let (port, seen) = scripted_server(|_| Answer::Busy);
    let start = Instant::now();
    let err = client(port, "b").complete(&body).unwrap_err().to_string();
    assert!(err.contains("HTTP 503") && err.contains("gave up after") && err.contains("HARNESS_API_RETRY_SECS"), "{err}");
    assert!(seen.load(Ordering::SeqCst) >= 4, "{}", seen.load(Ordering::SeqCst));
    assert!(start.elapsed() < Duration::from_millis(1500), "{:?}", start.elapsed());

    // Retry-After is honoured: one second asked, one second waited (not the 10 ms backoff).
    let (port, seen) = scripted_server(|n| if n == 0 { Answer::BusyRetryAfter(1) } else { Answer::Completion });
    let start = Instant::now();
    let mut patient = ChatClient::new(&format!("http://127.0.0.1:{port}"), None, cache.path().join("c")).with_policy(fast_retries(5_000));
    assert!(patient.complete(&body).is_ok());
    assert!(start.elapsed() >= Duration::from_secs(1), "{:?}", start.elapsed());
    assert_eq!(seen.load(Ordering::SeqCst), 2);
    // A Retry-After longer than the budget ends the request at once, saying why.
    let (port, _) = scripted_server(|_| Answer::BusyRetryAfter(60));
    let start = Instant::now();
    let err = client(port, "d").complete(&body).unwrap_err().to_string();
    assert!(err.contains("the server asked to wait 60 s"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(1));

    // A body cut short is an error that says so (it was read as empty before), and retried.
    let (port, seen) = scripted_server(|n| if n == 0 { Answer::TruncatedBody } else { Answer::Completion });
    assert!(client(port, "e").complete(&body).is_ok());
    assert_eq!(seen.load(Ordering::SeqCst), 2);
    let (port, _) = scripted_server(|_| Answer::TruncatedBody);
    let err = client(port, "f").complete(&body).unwrap_err().to_string();
    assert!(err.contains("reading the response body failed"), "{err}");
}

/// A malformed answer is that query's failure, counted in the report; the other queries go on.
#[test]
fn a_malformed_answer_fails_one_query_not_the_run() {
    let cache = tempfile::tempdir().unwrap();
    let (port, _) = scripted_server(|n| if n == 1 { Answer::NotACompletion } else { Answer::Completion });
    let client = ChatClient::new(&format!("http://127.0.0.1:{port}"), None, cache.path().to_path_buf()).with_policy(fast_retries(400));
    let settings = LlmSettings { reasoning: false, sampling: SamplingParams { max_new_tokens: 8, ..Default::default() }, batch_size: 1 };
    let task = |q: &Query| Task::classic_ir("claim", "that support it", "sparse", &q.text);
    let mut method = ApiMethod::new("m", client, settings, Box::new(task));
    let queries: Vec<Query> = (1..=3).map(|i| Query { id: i.to_string(), text: format!("claim {i}") }).collect();
    let rewrites = method.rewrite(&queries).unwrap();
    assert_eq!(rewrites.iter().map(|r| r.text.as_str()).collect::<Vec<_>>(), ["q", "", "q"]);
    let report = method.report();
    assert_eq!(report["failed_queries"], 1);
    assert!(report["failures"][0].as_str().unwrap().contains("query 2:") && report["failures"][0].as_str().unwrap().contains("no choices[0].message.content"), "{report}");
    assert_eq!(report["format_outcomes"]["api-error"], 1);
}
