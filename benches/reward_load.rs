//! Load on the reward endpoint (`harness serve --reward --dataset scifact`) over loopback:
//! batches of 64 SciFact responses (verl's reward arguments: the whole assistant turn, the
//! ground truth and extra info of `harness export verl`) sent by 1 and 2 clients; rewards/s and
//! p50/p99 latency per request. Issue 17's target: at least 2,000 classic-IR rewards/s on 2
//! cores at batch 64 (the reward searches BM25 at cpu-small's depth, 50).
//!
//!   cargo bench --bench reward_load           # the measurement (well under a minute)
//!   cargo test --benches                      # a smoke run: 2 small requests
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "common/load_levels.rs"]
mod load_levels;

/// Stops the server when the bench ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One request body per batch: `batch` responses, rotating over the SciFact training rows and
/// four kinds of answer (the claim, the claim padded with keywords, broken JSON, no tags).
fn bodies(batches: usize, batch: usize) -> Vec<String> {
    let queries: std::collections::HashMap<String, String> = std::fs::read_to_string("datasets/data/scifact/queries.jsonl")
        .expect("run from the checkout")
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|q| (q["_id"].as_str().unwrap().to_string(), q["text"].as_str().unwrap().to_string()))
        .collect();
    let rows: Vec<(String, String)> = std::fs::read_to_string("datasets/data/scifact/deepretrieval_splits/train.tsv")
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (queries[f[0]].clone(), f[1].to_string())
        })
        .collect();
    (0..batches)
        .map(|b| {
            let items: Vec<serde_json::Value> = (0..batch)
                .map(|j| {
                    let n = b * batch + j;
                    let (text, doc) = &rows[n % rows.len()];
                    let turn = match n % 4 {
                        0 => format!("<think>\nok</think>\n<answer>\n{}\n</answer>", serde_json::json!({"query": text})),
                        1 => format!("<think>\nok</think>\n<answer>\n{}\n</answer>", serde_json::json!({"query": format!("{text} trial cohort outcome")})),
                        2 => format!("<think>\nok</think>\n<answer>\n{{\"query\": \"{}\n</answer>", text.replace('"', "")),
                        _ => text.clone(),
                    };
                    serde_json::json!({"data_source": "scifact", "solution_str": turn, "ground_truth": {"target": [doc], "score": [1]}, "extra_info": {"reasoning": true}})
                })
                .collect();
            serde_json::json!({"items": items}).to_string()
        })
        .collect()
}

fn post(url: &str, body: &str) -> Duration {
    let agent = ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(120))).build().new_agent();
    let start = Instant::now();
    let mut response = agent.post(url).header("Content-Type", "application/json").send(body.as_bytes()).expect("request answered");
    assert_eq!(response.status().as_u16(), 200);
    let text = response.body_mut().read_to_string().unwrap();
    assert!(text.contains("\"score\":"), "{text}");
    start.elapsed()
}

/// Every body sent once by `clients` threads; (rewards/s, p50, p99 per request).
fn level(url: &str, bodies: &[String], batch: usize, clients: usize) -> (f64, Duration, Duration) {
    let (wall, p50, p99) = load_levels::level(bodies.len(), clients, |i| post(url, &bodies[i]));
    ((bodies.len() * batch) as f64 / wall, p50, p99)
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _server = Server(
        Command::new(env!("CARGO_BIN_EXE_harness"))
            .args(["serve", "--reward", "--dataset", "scifact", "--port", &port.to_string(), "--threads", "2"])
            .stderr(Stdio::null())
            .spawn()
            .expect("harness runs"),
    );
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed().as_secs() < 300, "harness serve --reward did not listen");
        std::thread::sleep(Duration::from_millis(200));
    }
    let url = format!("http://127.0.0.1:{port}/reward");
    let (batch, batches) = if measuring { (64, 200) } else { (8, 2) };
    let bodies = bodies(batches, batch);
    // Warm: the index is opened and its pages read once.
    post(&url, &bodies[0]);
    println!("reward_load: SciFact BM25 reward (depth 50), batch {batch}, {batches} requests per level, 2 scoring threads");
    println!("{:>8} {:>12} {:>10} {:>10}", "clients", "rewards/s", "p50 ms", "p99 ms");
    for clients in [1, 2] {
        let (rate, p50, p99) = level(&url, &bodies, batch, clients);
        println!("{clients:>8} {rate:>12.0} {:>10.1} {:>10.1}", p50.as_secs_f64() * 1e3, p99.as_secs_f64() * 1e3);
    }
}
