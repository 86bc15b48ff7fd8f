//! `harness serve` under hostile and heavy use, over loopback: every bad field is a 400 that
//! names it (and the server keeps answering), oversized bodies and prompts are refused, unknown
//! models are 404, a stalled client does not hold up the others, a full queue is 503, and
//! concurrent requests are answered.
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use harness_baselines::serve::ServeOptions;

mod common;
use common::TestServer;

/// Runs `f(port)` against a server with `options`; stops it afterwards.
fn with_server(options: ServeOptions, timeout: Duration, f: impl FnOnce(u16)) {
    let server = TestServer::start(options, timeout);
    f(server.port);
    server.stop();
}

/// (status, body) of one request.
fn post(port: u16, path: &str, body: &str) -> (u16, serde_json::Value) {
    let agent = ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(120))).build().new_agent();
    let mut response = agent.post(&format!("http://127.0.0.1:{port}{path}")).header("Content-Type", "application/json").send(body).unwrap();
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
}

fn chat(extra: &str) -> String {
    format!("{{\"model\": \"smollm2\", \"messages\": [{{\"role\": \"user\", \"content\": \"Say hi.\"}}], \"max_tokens\": 4{extra}}}")
}

#[test]
fn bad_requests_get_4xx_naming_the_field_and_the_server_stays_up() {
    let options = ServeOptions { max_prompt_tokens: 64, max_body_bytes: 4096, ..ServeOptions::new("smollm2", 8) };
    with_server(options, Duration::from_secs(5), |port| {
        // These reached tch's multinomial and killed the process before.
        for (extra, field) in [(", \"temperature\": 1e-300", "temperature"), (", \"top_p\": -1", "top_p"), (", \"temperature\": 5", "temperature"), (", \"stop\": [1]", "stop")] {
            let (status, body) = post(port, "/v1/chat/completions", &chat(extra));
            assert_eq!(status, 400, "{extra}: {body}");
            assert_eq!(body["error"]["param"], field, "{body}");
        }
        let (status, body) = post(port, "/v1/chat/completions", &chat(", \"max_tokens\": 0").replace("\"max_tokens\": 4, ", ""));
        assert_eq!((status, body["error"]["param"].as_str()), (400, Some("max_tokens")), "{body}");
        let (status, body) = post(port, "/v1/chat/completions", &chat("").replace("smollm2", "gpt-9"));
        assert_eq!(status, 404, "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("model 'gpt-9' does not exist"));
        let (status, _) = post(port, "/v1/chat/completions", &chat("").replace("\"user\"", "\"wizard\""));
        assert_eq!(status, 400);
        let long = format!("{{\"messages\": [{{\"role\": \"user\", \"content\": \"{}\"}}]}}", "word ".repeat(200));
        let (status, body) = post(port, "/v1/chat/completions", &long);
        assert_eq!(status, 400, "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("over this server's limit of 64"), "{body}");
        let huge = format!("{{\"messages\": [{{\"role\": \"user\", \"content\": \"{}\"}}]}}", "x".repeat(10_000));
        assert_eq!(post(port, "/v1/chat/completions", &huge).0, 413);
        let (status, body) = post(port, "/v1/rewrite", "{\"query\": \"  \"}");
        assert_eq!((status, body["error"]["param"].as_str()), (400, Some("query")));
        // Still answering.
        let (status, body) = post(port, "/v1/chat/completions", &chat(""));
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["usage"]["completion_tokens"], 4);
    });
}

#[test]
fn a_stalled_client_does_not_hold_up_the_others() {
    let timeout = Duration::from_secs(2);
    with_server(ServeOptions::new("smollm2", 8), timeout, |port| {
        // Promises a megabyte, sends ten bytes, then waits.
        let mut stalled = TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(stalled, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{{\"messages").unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let start = Instant::now();
        let (status, _) = post(port, "/v1/chat/completions", &chat(""));
        assert_eq!(status, 200);
        assert!(start.elapsed() < timeout, "the other client waited {:?}", start.elapsed());
        // The stalled one is answered 408 once its read timeout passes.
        stalled.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut answer = String::new();
        let _ = stalled.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    });
}

#[test]
fn concurrent_requests_are_answered_and_a_full_queue_is_503() {
    let options = ServeOptions { max_queue: 8, max_batch: 4, ..ServeOptions::new("smollm2", 24) };
    with_server(options, Duration::from_secs(30), |port| {
        let statuses: Vec<u16> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..40)
                .map(|i| {
                    s.spawn(move || {
                        let body = format!("{{\"messages\": [{{\"role\": \"user\", \"content\": \"Count to {i}.\"}}], \"max_tokens\": 24}}");
                        post(port, "/v1/chat/completions", &body).0
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let ok = statuses.iter().filter(|&&s| s == 200).count();
        let busy = statuses.iter().filter(|&&s| s == 503).count();
        assert_eq!(ok + busy, 40, "{statuses:?}");
        assert!(ok >= 8 && busy >= 1, "{ok} answered, {busy} refused: {statuses:?}");
        // And it answers again once the rush is over.
        assert_eq!(post(port, "/v1/chat/completions", &chat("")).0, 200);
    });
}
