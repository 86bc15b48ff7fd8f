//! Shared by the loopback load benches (`serve_load`, `reward_load`): `n` requests sent by
//! `clients` threads, each taking the next request number until all are sent.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Sends requests `0..n` with `send` from `clients` threads; (wall seconds, p50, p99 latency).
pub fn level(n: usize, clients: usize, send: impl Fn(usize) -> Duration + Sync) -> (f64, Duration, Duration) {
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    let mut latencies: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        if i >= n {
                            return mine;
                        }
                        mine.push(send(i));
                    }
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let wall = start.elapsed().as_secs_f64();
    latencies.sort();
    let pick = |q: f64| latencies[((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1];
    (wall, pick(0.5), pick(0.99))
}
