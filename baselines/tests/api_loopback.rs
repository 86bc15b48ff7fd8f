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
    let patient = ChatClient::new(&format!("http://127.0.0.1:{port}"), None, cache.path().join("c")).with_policy(fast_retries(5_000));
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
    // One request at a time: the scripted server answers by arrival order.
    let client = ChatClient::new(&format!("http://127.0.0.1:{port}"), None, cache.path().to_path_buf()).with_policy(fast_retries(400)).with_concurrency(1);
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

/// `api:` keeps up to `HARNESS_API_CONCURRENCY` requests in flight (what lets `harness serve`
/// batch them) and still returns the rewrites in query order; a refusing endpoint stops the
/// run with its error.
#[test]
fn requests_go_out_concurrently_and_answers_keep_query_order() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (in_flight, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (now, peak) = (Arc::clone(&in_flight), Arc::clone(&most));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let (now, peak) = (Arc::clone(&now), Arc::clone(&peak));
            std::thread::spawn(move || {
                let running = now.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(running, Ordering::SeqCst);
                let mut request = Vec::new();
                let mut buf = [0u8; 65536];
                // Headers, then as many body bytes as Content-Length says.
                let body = loop {
                    let n = stream.read(&mut buf).unwrap();
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).into_owned();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let length: usize = head.lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())).unwrap();
                        if body.len() >= length {
                            break body.to_string();
                        }
                    }
                };
                // Held long enough for the other requests to arrive meanwhile.
                std::thread::sleep(Duration::from_millis(300));
                let json: serde_json::Value = serde_json::from_str(&body).unwrap();
                let user = json["messages"][1]["content"].as_str().unwrap();
                // The claim's number, echoed as the query: the rewrite says which request it answers.
                let claim = user.split("claim number ").nth(1).unwrap().split_whitespace().next().unwrap().trim_matches(|c: char| !c.is_ascii_digit());
                let content = format!("<answer>{}</answer>", serde_json::json!({"query": format!("answer {claim}")}));
                let reply = serde_json::json!({"choices": [{"message": {"role": "assistant", "content": content}}]}).to_string();
                now.fetch_sub(1, Ordering::SeqCst);
                let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}", reply.len());
            });
        }
    });
    let cache = tempfile::tempdir().unwrap();
    let settings = LlmSettings { reasoning: false, sampling: SamplingParams { max_new_tokens: 16, ..Default::default() }, batch_size: 1 };
    let client = ChatClient::new(&format!("http://127.0.0.1:{port}"), None, cache.path().to_path_buf()).with_concurrency(4);
    let task = |q: &Query| Task::classic_ir("scientific claim", "that support it", "sparse", &q.text);
    let mut method = ApiMethod::new("m", client, settings, Box::new(task));
    let queries: Vec<Query> = (0..8).map(|i| Query { id: format!("q{i}"), text: format!("claim number {i} about vitamins") }).collect();
    let rewrites = method.rewrite(&queries).unwrap();
    let texts: Vec<String> = rewrites.iter().map(|r| r.text.clone()).collect();
    assert_eq!(texts, (0..8).map(|i| format!("answer {i}")).collect::<Vec<_>>());
    assert_eq!(method.report()["requests_sent"], 8);
    let most = most.load(Ordering::SeqCst);
    assert!((2..=4).contains(&most), "{most} requests were in flight at once (at most 4 asked)");

    // A refusing endpoint (HTTP 401) stops the run with its error, whatever was in flight.
    let (port, _) = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let mut stream = stream.unwrap();
                let mut buf = [0u8; 65536];
                let _ = stream.read(&mut buf);
                let body = "{\"error\": \"bad key\"}";
                let _ = write!(stream, "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
            }
        });
        (port, ())
    };
    let client = ChatClient::new(&format!("http://127.0.0.1:{port}"), None, cache.path().join("refused")).with_concurrency(4);
    let mut method = ApiMethod::new("m", client, LlmSettings { reasoning: false, sampling: SamplingParams::default(), batch_size: 1 }, Box::new(task));
    let err = method.rewrite(&queries).unwrap_err().to_string();
    assert!(err.contains("HTTP 401"), "{err}");
}
