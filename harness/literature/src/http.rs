//! What both live-engine clients share: a request-rate limit, retries with exponential backoff,
//! and an on-disk cache of successful responses keyed by the request without its credentials.
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::EngineError;

/// Spaces request starts at least `interval` apart (NCBI allows 3 requests/s without an API
/// key and 10 with one).
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    last: Option<Instant>,
}

impl RateLimiter {
    /// At most `per_second` request starts per second.
    pub fn per_second(per_second: f64) -> RateLimiter {
        RateLimiter { interval: Duration::from_secs_f64(1.0 / per_second.max(1e-6)), last: None }
    }

    /// Sleeps until the next request may start, then books it.
    pub fn wait(&mut self) {
        if let Some(last) = self.last {
            let next = last + self.interval;
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            }
        }
        self.last = Some(Instant::now());
    }
}

/// A GET request: its URL base and query parameters, with the secret ones apart so that they
/// reach the wire and nothing else.
#[derive(Debug, Clone)]
pub struct Request {
    /// Scheme, host and path.
    pub base: String,
    /// Public query parameters, in order.
    pub params: Vec<(String, String)>,
    /// Credentials sent with the request and never written anywhere (`api_key`).
    pub secret_params: Vec<(String, String)>,
}

impl Request {
    /// The URL without credentials (for errors, logs and the cache key).
    pub fn public_url(&self) -> String {
        let query: Vec<String> = self.params.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect();
        if query.is_empty() { self.base.clone() } else { format!("{}?{}", self.base, query.join("&")) }
    }
}

/// Percent-encoding of a query value (RFC 3986 unreserved characters kept).
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// GETs with rate limit, retries and cache.
pub struct Fetcher {
    agent: ureq::Agent,
    limiter: RateLimiter,
    cache_dir: Option<PathBuf>,
    /// Tries per request (1 = no retry).
    pub attempts: u32,
    /// First backoff; doubled after each failed try.
    pub backoff: Duration,
    /// Requests that reached the network.
    pub requests_sent: u64,
    /// Requests answered from the cache.
    pub cache_hits: u64,
}

impl Fetcher {
    /// A fetcher with `per_second` requests at most, caching under `cache_dir` when given.
    pub fn new(per_second: f64, cache_dir: Option<PathBuf>, timeout: Duration) -> Fetcher {
        let agent = ureq::Agent::config_builder().timeout_global(Some(timeout)).http_status_as_error(false).build().new_agent();
        Fetcher {
            agent,
            limiter: RateLimiter::per_second(per_second),
            cache_dir,
            attempts: 5,
            backoff: Duration::from_millis(500),
            requests_sent: 0,
            cache_hits: 0,
        }
    }

    fn cache_path(&self, request: &Request) -> Option<PathBuf> {
        let dir = self.cache_dir.as_ref()?;
        let digest = Sha256::digest(request.public_url().as_bytes());
        Some(dir.join(format!("{}.json", hex::encode(digest))))
    }

    /// The body of a successful (200) response: from the cache, else from the network with
    /// retries on transport errors, 429 and 5xx.
    pub fn get(&mut self, request: &Request) -> Result<String, EngineError> {
        let cached = self.cache_path(request);
        if let Some(path) = &cached {
            if let Ok(body) = std::fs::read_to_string(path) {
                self.cache_hits += 1;
                return Ok(body);
            }
        }
        let public = request.public_url();
        let mut delay = self.backoff;
        let mut last_error = String::new();
        for attempt in 1..=self.attempts.max(1) {
            self.limiter.wait();
            self.requests_sent += 1;
            let mut call = self.agent.get(&request.base);
            for (k, v) in request.params.iter().chain(&request.secret_params) {
                call = call.query(k, v);
            }
            match call.call() {
                Ok(mut response) => {
                    let status = response.status().as_u16();
                    let body = response.body_mut().read_to_string().unwrap_or_default();
                    if status == 200 {
                        if let Some(path) = &cached {
                            write_cache(path, &body)?;
                        }
                        return Ok(body);
                    }
                    last_error = format!("HTTP {status}: {}", scrub(&body.chars().take(200).collect::<String>(), request));
                    if (400..500).contains(&status) && status != 429 && status != 408 {
                        break; // a client error does not improve with retries
                    }
                }
                // Transport errors may quote the URL, credentials included: scrub them.
                Err(e) => last_error = scrub(&e.to_string(), request),
            }
            if attempt < self.attempts {
                std::thread::sleep(delay);
                delay *= 2;
            }
        }
        Err(EngineError::Http { url: public, cause: last_error })
    }
}

/// `text` with every secret parameter value replaced.
fn scrub(text: &str, request: &Request) -> String {
    let mut out = text.to_string();
    for (_, secret) in &request.secret_params {
        if !secret.is_empty() {
            out = out.replace(secret.as_str(), "<redacted>").replace(&encode(secret), "<redacted>");
        }
    }
    out
}

fn write_cache(path: &Path, body: &str) -> Result<(), EngineError> {
    let err = |e: std::io::Error| EngineError::File { path: path.display().to_string(), cause: e.to_string() };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    // Write then rename: a crash never leaves a truncated response that later reads as valid.
    let staging = path.with_extension("json.tmp");
    std::fs::write(&staging, body).map_err(err)?;
    std::fs::rename(&staging, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_and_public_urls_leave_out_secrets() {
        assert_eq!(encode("a b&c=(d)[tiab]"), "a%20b%26c%3D%28d%29%5Btiab%5D");
        let r = Request {
            base: "http://h/esearch.fcgi".into(),
            params: vec![("term".into(), "x AND y".into())],
            secret_params: vec![("api_key".into(), "SECRET123".into())],
        };
        assert_eq!(r.public_url(), "http://h/esearch.fcgi?term=x%20AND%20y");
        assert_eq!(scrub("GET http://h/?api_key=SECRET123 failed", &r), "GET http://h/?api_key=<redacted> failed");
    }
}
