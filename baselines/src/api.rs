//! `api:MODEL`: any OpenAI-compatible chat endpoint (GPT-4o- or Claude-class baselines, or
//! `harness serve`). Base URL and key come from `HARNESS_API_BASE_URL` / `HARNESS_API_KEY`
//! (falling back to `OPENAI_BASE_URL` / `OPENAI_API_KEY`). Responses are cached on disk by a hash
//! of (base URL, request body), so a rerun costs nothing; transient failures are retried with
//! backoff. Up to `HARNESS_API_CONCURRENCY` requests (default 4) are in flight at once, so a
//! serving endpoint can batch them. The key is sent in a header only: never logged, never in
//! the cache.
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use harness_core::answer::{parse_lenient, parse_strict, AnswerFormat};
use harness_core::Query;
use sha2::{Digest, Sha256};

use crate::llm::{Generated, LlmSettings, TaskBuilder};
use crate::prompts::{system_message, Prompts};
use crate::{MethodError, QueryMethod, Rewrite};

/// Environment variable naming the endpoint (`OPENAI_BASE_URL` also works).
pub const BASE_URL_ENV: &str = "HARNESS_API_BASE_URL";

/// Environment variable setting how many requests are in flight at once.
pub const CONCURRENCY_ENV: &str = "HARNESS_API_CONCURRENCY";

/// Requests in flight at once unless `HARNESS_API_CONCURRENCY` says otherwise: enough for a
/// batching server to batch, few enough for a hosted API's rate limits.
const DEFAULT_CONCURRENCY: usize = 4;

/// How long a request may take and how failures are retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Longest wait for one attempt (connect, send, answer).
    pub timeout: Duration,
    /// Longest a request may take, all attempts and waits included, before it is given up.
    pub total: Duration,
    /// Wait before the first retry; doubled after each, plus up to half again at random (so
    /// that clients retrying together spread out), at most `max_backoff`. A `Retry-After`
    /// header from the server is honoured when longer.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            timeout: Duration::from_secs(120),
            total: Duration::from_secs(300),
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The default policy with `HARNESS_API_TIMEOUT_SECS` (per attempt) and
    /// `HARNESS_API_RETRY_SECS` (per request, retries included) applied when set.
    pub fn from_env() -> Result<RetryPolicy, MethodError> {
        let mut policy = RetryPolicy::default();
        let seconds = |name: &str| -> Result<Option<Duration>, MethodError> {
            match std::env::var(name) {
                Err(_) => Ok(None),
                Ok(v) => match v.trim().parse::<f64>() {
                    Ok(s) if s > 0.0 && s <= 86_400.0 => Ok(Some(Duration::from_secs_f64(s))),
                    _ => Err(MethodError::Api(format!("{name}={v}: expected seconds between 0 and 86400"))),
                },
            }
        };
        if let Some(t) = seconds("HARNESS_API_TIMEOUT_SECS")? {
            policy.timeout = t;
        }
        if let Some(t) = seconds("HARNESS_API_RETRY_SECS")? {
            policy.total = t;
        }
        Ok(policy)
    }
}

/// Why a request failed.
#[derive(Debug)]
enum Failure {
    /// Worth another attempt (network error, 408, 429, 5xx, a body that could not be read);
    /// with the server's `Retry-After` when it sent one.
    Transient(String, Option<Duration>),
    /// Will not improve with retries (other 4xx).
    Permanent(String),
    /// A 200 answer that is not a chat completion: this request's failure, not the endpoint's.
    Malformed(String),
}

/// A chat-completions client with a response cache.
pub struct ChatClient {
    base_url: String,
    api_key: Option<String>,
    cache_dir: PathBuf,
    agent: ureq::Agent,
    policy: RetryPolicy,
    /// Requests in flight at once in [`ApiMethod::rewrite`] (a serving endpoint batches them).
    concurrency: usize,
    /// Requests answered from the cache / sent (attempts), since creation.
    cache_hits: AtomicUsize,
    requests_sent: AtomicUsize,
}

impl ChatClient {
    pub fn new(base_url: &str, api_key: Option<String>, cache_dir: PathBuf) -> ChatClient {
        let policy = RetryPolicy::default();
        ChatClient {
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key,
            cache_dir,
            agent: agent(policy.timeout),
            policy,
            concurrency: DEFAULT_CONCURRENCY,
            cache_hits: AtomicUsize::new(0),
            requests_sent: AtomicUsize::new(0),
        }
    }

    /// The same client sending up to `requests` requests at once (at least 1).
    pub fn with_concurrency(mut self, requests: usize) -> ChatClient {
        self.concurrency = requests.max(1);
        self
    }

    /// Requests answered from the cache, since creation.
    pub fn cache_hits(&self) -> usize {
        self.cache_hits.load(Ordering::Relaxed)
    }

    /// Attempts sent to the endpoint, since creation.
    pub fn requests_sent(&self) -> usize {
        self.requests_sent.load(Ordering::Relaxed)
    }

    /// The same client under `policy`.
    pub fn with_policy(mut self, policy: RetryPolicy) -> ChatClient {
        self.agent = agent(policy.timeout);
        self.policy = policy;
        self
    }

    fn cache_path(&self, body: &str) -> PathBuf {
        let mut h = Sha256::new();
        h.update(self.base_url.as_bytes());
        h.update([0]);
        h.update(body.as_bytes());
        self.cache_dir.join(format!("{}.json", hex::encode(h.finalize())))
    }

    /// The assistant message content for a chat request `body` (an OpenAI request object).
    pub fn complete(&self, body: &serde_json::Value) -> Result<String, MethodError> {
        self.complete_or_malformed(body).map_err(|(e, _)| e)
    }

    /// [`ChatClient::complete`], saying whether a failure was a malformed answer (true) rather
    /// than an endpoint that could not be reached or refused.
    fn complete_or_malformed(&self, body: &serde_json::Value) -> Result<String, (MethodError, bool)> {
        let text = body.to_string();
        let cached = self.cache_path(&text);
        if let Ok(bytes) = std::fs::read(&cached) {
            if let Ok(response) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                if let Some(content) = content_of(&response) {
                    self.cache_hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(content);
                }
            }
        }
        let url = format!("{}/chat/completions", self.base_url);
        let started = Instant::now();
        let mut backoff = self.policy.initial_backoff;
        let mut attempts = 0;
        loop {
            attempts += 1;
            self.requests_sent.fetch_add(1, Ordering::Relaxed);
            let (why, retry_after) = match self.attempt(&url, &text) {
                Ok((body, content)) => {
                    write_cache(&cached, &body).map_err(|e| (e, false))?;
                    return Ok(content);
                }
                Err(Failure::Malformed(why)) => return Err((MethodError::Api(format!("{url}: {why}")), true)),
                Err(Failure::Permanent(why)) => return Err((MethodError::Api(format!("{url}: {why}")), false)),
                Err(Failure::Transient(why, retry_after)) => (why, retry_after),
            };
            let jitter = backoff.mul_f64(rand::random::<f64>() * 0.5);
            let wait = (backoff + jitter).min(self.policy.max_backoff).max(retry_after.unwrap_or_default());
            let spent = started.elapsed();
            if spent + wait >= self.policy.total {
                let after = retry_after.map(|r| format!("; the server asked to wait {:.0} s", r.as_secs_f64())).unwrap_or_default();
                return Err((
                    MethodError::Api(format!(
                        "{url}: {why} (gave up after {attempts} attempts in {:.1} s, limit {:.0} s{after}; HARNESS_API_RETRY_SECS sets it)",
                        spent.as_secs_f64(),
                        self.policy.total.as_secs_f64()
                    )),
                    false,
                ));
            }
            std::thread::sleep(wait);
            backoff = (backoff * 2).min(self.policy.max_backoff);
        }
    }

    /// The answers to `bodies`, in order, with up to `concurrency` requests in flight. Once a
    /// request fails for good (endpoint unreachable or refusing), no new one starts: the
    /// answers not attempted are `None`.
    fn complete_all(&self, bodies: &[&serde_json::Value]) -> Vec<Option<Result<String, (MethodError, bool)>>> {
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let slots: Vec<Mutex<Option<Result<String, (MethodError, bool)>>>> = bodies.iter().map(|_| Mutex::new(None)).collect();
        std::thread::scope(|scope| {
            for _ in 0..self.concurrency.min(bodies.len()) {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= bodies.len() || stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let answer = self.complete_or_malformed(bodies[i]);
                    if matches!(answer, Err((_, false))) {
                        stop.store(true, Ordering::Relaxed);
                    }
                    *slots[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(answer);
                });
            }
        });
        slots.into_iter().map(|slot| slot.into_inner().unwrap_or_else(|p| p.into_inner())).collect()
    }

    /// One attempt: the body and the completion of a 200 that holds one, or why not.
    fn attempt(&self, url: &str, text: &str) -> Result<(String, String), Failure> {
        let mut request = self.agent.post(url).header("Content-Type", "application/json");
        if let Some(key) = &self.api_key {
            request = request.header("Authorization", &format!("Bearer {key}"));
        }
        let mut response = request.send(text).map_err(|e| Failure::Transient(e.to_string(), None))?;
        let status = response.status().as_u16();
        let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
        let body = response
            .body_mut()
            .read_to_string()
            .map_err(|e| Failure::Transient(format!("HTTP {status}, but reading the response body failed: {e}"), retry_after))?;
        if status == 200 {
            let json: serde_json::Value = serde_json::from_str(&body).map_err(|e| Failure::Malformed(format!("response is not JSON: {e}")))?;
            return match content_of(&json) {
                Some(content) => Ok((body, content)),
                None => Err(Failure::Malformed(format!("no choices[0].message.content in the response: {}", body.chars().take(200).collect::<String>()))),
            };
        }
        let why = format!("HTTP {status}: {}", body.chars().take(300).collect::<String>());
        // Client errors other than timeouts and rate limits will not improve with retries.
        if (400..500).contains(&status) && status != 429 && status != 408 {
            Err(Failure::Permanent(why))
        } else {
            Err(Failure::Transient(why, retry_after))
        }
    }
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder().timeout_global(Some(timeout)).http_status_as_error(false).build().new_agent()
}

/// `Retry-After`: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(std::time::SystemTime::now()).unwrap_or_default())
}

fn content_of(response: &serde_json::Value) -> Option<String> {
    response.pointer("/choices/0/message/content").and_then(|c| c.as_str()).map(String::from)
}

fn write_cache(path: &Path, body: &str) -> Result<(), MethodError> {
    let dir = path.parent().expect("cache files live in a folder");
    std::fs::create_dir_all(dir).map_err(|e| MethodError::Api(format!("{}: {e}", dir.display())))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, body).map_err(|e| MethodError::Api(format!("{}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(|e| MethodError::Api(format!("{}: {e}", path.display())))
}

/// Query generation through a chat endpoint.
pub struct ApiMethod {
    model: String,
    client: ChatClient,
    prompts: Prompts,
    settings: LlmSettings,
    task: TaskBuilder,
    generated: Vec<Generated>,
    /// Per-query failures of the last `rewrite` (malformed answers).
    failures: Vec<String>,
}

impl ApiMethod {
    pub fn new(model: &str, client: ChatClient, settings: LlmSettings, task: TaskBuilder) -> ApiMethod {
        ApiMethod { model: model.to_string(), client, prompts: Prompts::new(), settings, task, generated: Vec::new(), failures: Vec::new() }
    }

    /// Endpoint and key from the environment.
    pub fn from_env(model: &str, settings: LlmSettings, cache_dir: PathBuf, task: TaskBuilder) -> Result<ApiMethod, MethodError> {
        let var = |names: &[&str]| names.iter().find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()));
        let base = var(&[BASE_URL_ENV, "OPENAI_BASE_URL"]).ok_or_else(|| {
            MethodError::Api("no endpoint: set HARNESS_API_BASE_URL (e.g. https://api.openai.com/v1) and HARNESS_API_KEY".into())
        })?;
        let key = var(&["HARNESS_API_KEY", "OPENAI_API_KEY"]);
        let concurrency = match std::env::var(CONCURRENCY_ENV) {
            Err(_) => DEFAULT_CONCURRENCY,
            Ok(v) => v.trim().parse::<usize>().ok().filter(|n| (1..=256).contains(n)).ok_or_else(|| MethodError::Api(format!("{CONCURRENCY_ENV}={v}: expected 1 to 256 requests at once")))?,
        };
        let client = ChatClient::new(&base, key, cache_dir).with_policy(RetryPolicy::from_env()?).with_concurrency(concurrency);
        Ok(Self::new(model, client, settings, task))
    }
}

impl QueryMethod for ApiMethod {
    fn name(&self) -> String {
        format!("api:{}{}", self.model, if self.settings.reasoning { "" } else { ",no-reasoning" })
    }

    fn rewrite(&mut self, queries: &[Query]) -> Result<Vec<Rewrite>, MethodError> {
        self.generated.clear();
        self.failures.clear();
        let reasoning = self.settings.reasoning;
        let format = if reasoning { AnswerFormat::Reasoning } else { AnswerFormat::Direct };
        let mut requests = Vec::with_capacity(queries.len());
        for q in queries {
            let task = (self.task)(q);
            let user = self.prompts.user_message(&task, reasoning).map_err(|e| MethodError::Api(format!("prompt: {e}")))?;
            let body = serde_json::json!({
                "model": self.model,
                "messages": [
                    {"role": "system", "content": system_message(reasoning)},
                    {"role": "user", "content": user},
                ],
                "temperature": self.settings.sampling.temperature,
                "max_tokens": self.settings.sampling.max_new_tokens,
                "seed": self.settings.sampling.seed,
            });
            requests.push((task.answer_key(), body));
        }
        let answers = self.client.complete_all(&requests.iter().map(|(_, body)| body).collect::<Vec<_>>());
        let mut out = Vec::with_capacity(queries.len());
        for ((q, (key, _)), answer) in queries.iter().zip(&requests).zip(answers) {
            let content = match answer {
                Some(Ok(content)) => content,
                // One bad answer is this query's failure (scored as an empty query); an endpoint
                // that cannot be reached or refuses stops the run.
                Some(Err((e, true))) => {
                    self.failures.push(format!("query {}: {e}", q.id));
                    self.generated.push(Generated { query_id: q.id.clone(), output: String::new(), query: String::new(), format: "api-error".into(), tokens: 0 });
                    out.push(Rewrite { query_id: q.id.clone(), text: String::new() });
                    continue;
                }
                Some(Err((e, false))) => return Err(e),
                None => return Err(MethodError::Api(format!("query {}: not sent, an earlier request failed", q.id))),
            };
            let query = parse_lenient(&content, key).unwrap_or_default();
            let strict = parse_strict(&content, format, key);
            self.generated.push(Generated {
                query_id: q.id.clone(),
                output: content,
                query: query.clone(),
                format: strict.as_ref().map_or_else(|e| e.label().to_string(), |_| "ok".to_string()),
                tokens: 0,
            });
            out.push(Rewrite { query_id: q.id.clone(), text: query });
        }
        Ok(out)
    }

    fn report(&self) -> serde_json::Value {
        let mut formats = std::collections::BTreeMap::new();
        for g in &self.generated {
            *formats.entry(g.format.clone()).or_insert(0usize) += 1;
        }
        serde_json::json!({
            "endpoint": self.client.base_url,
            "model": self.model,
            "reasoning": self.settings.reasoning,
            "cache_hits": self.client.cache_hits(),
            "requests_sent": self.client.requests_sent(),
            "concurrency": self.client.concurrency,
            "format_outcomes": formats,
            "failed_queries": self.failures.len(),
            "failures": self.failures.iter().take(20).collect::<Vec<_>>(),
        })
    }

    fn generations(&self) -> Vec<serde_json::Value> {
        self.generated.iter().map(|g| serde_json::to_value(g).unwrap_or_default()).collect()
    }
}
