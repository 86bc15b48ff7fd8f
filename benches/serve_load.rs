//! Load on `harness serve` over loopback: the same batch of chat requests (greedy, distinct
//! prompts) sent with 1, 8 and 64 clients at once; requests/s and p50/p99 latency per level,
//! and throughput as a multiple of the one-client rate (issue 18's target: at least 4x at 64
//! clients on 2 cores, from batched generation).
//!
//!   cargo bench --bench serve_load            # the measurement (a few minutes on 2 cores)
//!   cargo test --benches                      # a smoke run: 4 tiny requests
//!
//! The setup's SmolLM2-135M-Instruct serves; `SERVE_LOAD_TOKENS` sets max_tokens (default 32).
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness_baselines::serve::{bind, serve, ServeOptions};

#[path = "common/load_levels.rs"]
mod load_levels;
use harness_policy::Policy;

fn model_dir() -> PathBuf {
    std::env::var_os("HARNESS_MODELS_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".deps/models")).join("smollm2-135m-instruct")
}

fn request(port: u16, i: usize, tokens: usize) -> Duration {
    let agent = ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(600))).build().new_agent();
    let body = format!("{{\"messages\": [{{\"role\": \"user\", \"content\": \"Rewrite as a search query: effects of drug {i} on blood pressure.\"}}], \"max_tokens\": {tokens}}}");
    let start = Instant::now();
    let mut response = agent.post(&format!("http://127.0.0.1:{port}/v1/chat/completions")).send(&body).expect("request answered");
    assert_eq!(response.status().as_u16(), 200);
    let _ = response.body_mut().read_to_string();
    start.elapsed()
}

/// `n` requests from `clients` threads; (requests/s, p50, p99).
fn level(port: u16, clients: usize, n: usize, tokens: usize) -> (f64, Duration, Duration) {
    let (wall, p50, p99) = load_levels::level(n, clients, |i| request(port, i, tokens));
    (n as f64 / wall, p50, p99)
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let tokens: usize = std::env::var("SERVE_LOAD_TOKENS").ok().and_then(|v| v.parse().ok()).unwrap_or(if measuring { 32 } else { 2 });
    tch::set_num_threads(2);
    let server = Arc::new(bind("127.0.0.1:0", Duration::from_secs(60)).unwrap());
    let port = server.server_addr().to_ip().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let options = ServeOptions { max_batch: 64, max_queue: 128, ..ServeOptions::new("smollm2", tokens) };
    let handle = {
        let (server, stop) = (Arc::clone(&server), Arc::clone(&stop));
        std::thread::spawn(move || {
            let policy = Policy::load(&model_dir(), tch::Device::Cpu).expect("run scripts/setup.sh first");
            serve(&server, &policy, &options, &stop);
        })
    };
    // Ready once the model answers.
    let _ = level(port, 1, 1, tokens);
    let levels: &[(usize, usize)] = if measuring { &[(1, 16), (8, 64), (64, 64)] } else { &[(1, 2), (4, 4)] };
    println!("serve_load: max_tokens {tokens}, SmolLM2-135M-Instruct, CPU, 2 torch threads");
    println!("{:>8} {:>9} {:>10} {:>10} {:>10} {:>12}", "clients", "requests", "req/s", "p50 s", "p99 s", "x 1 client");
    let mut serial = None;
    for &(clients, n) in levels {
        let (rate, p50, p99) = level(port, clients, n, tokens);
        let base = *serial.get_or_insert(rate);
        println!("{clients:>8} {n:>9} {rate:>10.2} {:>10.2} {:>10.2} {:>12.2}", p50.as_secs_f64(), p99.as_secs_f64(), rate / base);
    }
    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap();
}
