//! `api:MODEL`: any OpenAI-compatible chat endpoint (GPT-4o- or Claude-class baselines, or
//! `harness serve`). Base URL and key come from `HARNESS_API_BASE_URL` / `HARNESS_API_KEY`
//! (falling back to `OPENAI_BASE_URL` / `OPENAI_API_KEY`). Responses are cached on disk by a hash
//! of (base URL, request body), so a rerun costs nothing; transient failures are retried with
//! backoff. The key is sent in a header only: never logged, never in the cache.
use std::path::{Path, PathBuf};
use std::time::Duration;

use harness_core::answer::{parse_lenient, parse_strict, AnswerFormat};
use harness_core::Query;
use sha2::{Digest, Sha256};

use crate::llm::{Generated, LlmSettings, TaskBuilder};
use crate::prompts::{system_message, Prompts};
use crate::{MethodError, QueryMethod, Rewrite};

/// Environment variable naming the endpoint (`OPENAI_BASE_URL` also works).
pub const BASE_URL_ENV: &str = "HARNESS_API_BASE_URL";

/// A chat-completions client with a response cache.
pub struct ChatClient {
    base_url: String,
    api_key: Option<String>,
    cache_dir: PathBuf,
    agent: ureq::Agent,
    /// Attempts per request (first try included).
    pub attempts: u32,
    /// Delay before the first retry; doubles each time.
    pub backoff: Duration,
    /// Requests answered from the cache / sent, since creation.
    pub cache_hits: usize,
    pub requests_sent: usize,
}

impl ChatClient {
    pub fn new(base_url: &str, api_key: Option<String>, cache_dir: PathBuf) -> ChatClient {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(600)))
            .http_status_as_error(false)
            .build()
            .new_agent();
        ChatClient {
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key,
            cache_dir,
            agent,
            attempts: 4,
            backoff: Duration::from_millis(500),
            cache_hits: 0,
            requests_sent: 0,
        }
    }

    fn cache_path(&self, body: &str) -> PathBuf {
        let mut h = Sha256::new();
        h.update(self.base_url.as_bytes());
        h.update([0]);
        h.update(body.as_bytes());
        self.cache_dir.join(format!("{}.json", hex::encode(h.finalize())))
    }

    /// The assistant message content for a chat request `body` (an OpenAI request object).
    pub fn complete(&mut self, body: &serde_json::Value) -> Result<String, MethodError> {
        let text = body.to_string();
        let cached = self.cache_path(&text);
        if let Ok(bytes) = std::fs::read(&cached) {
            if let Ok(response) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                if let Some(content) = content_of(&response) {
                    self.cache_hits += 1;
                    return Ok(content);
                }
            }
        }
        let url = format!("{}/chat/completions", self.base_url);
        let mut delay = self.backoff;
        let mut last_error = String::new();
        for attempt in 1..=self.attempts {
            self.requests_sent += 1;
            let mut request = self.agent.post(&url).header("Content-Type", "application/json");
            if let Some(key) = &self.api_key {
                request = request.header("Authorization", &format!("Bearer {key}"));
            }
            match request.send(&text) {
                Ok(mut response) => {
                    let status = response.status().as_u16();
                    let body = response.body_mut().read_to_string().unwrap_or_default();
                    if status == 200 {
                        let json: serde_json::Value = serde_json::from_str(&body)
                            .map_err(|e| MethodError::Api(format!("{url}: response is not JSON: {e}")))?;
                        let content = content_of(&json).ok_or_else(|| MethodError::Api(format!("{url}: no choices[0].message.content in the response")))?;
                        write_cache(&cached, &body)?;
                        return Ok(content);
                    }
                    last_error = format!("HTTP {status}: {}", body.chars().take(300).collect::<String>());
                    // Client errors other than rate limits will not improve with retries.
                    if (400..500).contains(&status) && status != 429 && status != 408 {
                        break;
                    }
                }
                Err(e) => last_error = e.to_string(),
            }
            if attempt < self.attempts {
                std::thread::sleep(delay);
                delay *= 2;
            }
        }
        Err(MethodError::Api(format!("{url}: {last_error}")))
    }
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
}

impl ApiMethod {
    pub fn new(model: &str, client: ChatClient, settings: LlmSettings, task: TaskBuilder) -> ApiMethod {
        ApiMethod { model: model.to_string(), client, prompts: Prompts::new(), settings, task, generated: Vec::new() }
    }

    /// Endpoint and key from the environment.
    pub fn from_env(model: &str, settings: LlmSettings, cache_dir: PathBuf, task: TaskBuilder) -> Result<ApiMethod, MethodError> {
        let var = |names: &[&str]| names.iter().find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()));
        let base = var(&[BASE_URL_ENV, "OPENAI_BASE_URL"]).ok_or_else(|| {
            MethodError::Api("no endpoint: set HARNESS_API_BASE_URL (e.g. https://api.openai.com/v1) and HARNESS_API_KEY".into())
        })?;
        let key = var(&["HARNESS_API_KEY", "OPENAI_API_KEY"]);
        Ok(Self::new(model, ChatClient::new(&base, key, cache_dir), settings, task))
    }
}

impl QueryMethod for ApiMethod {
    fn name(&self) -> String {
        format!("api:{}{}", self.model, if self.settings.reasoning { "" } else { ",no-reasoning" })
    }

    fn rewrite(&mut self, queries: &[Query]) -> Result<Vec<Rewrite>, MethodError> {
        self.generated.clear();
        let reasoning = self.settings.reasoning;
        let format = if reasoning { AnswerFormat::Reasoning } else { AnswerFormat::Direct };
        let mut out = Vec::with_capacity(queries.len());
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
            let content = self.client.complete(&body)?;
            let key = task.answer_key();
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
            "cache_hits": self.client.cache_hits,
            "requests_sent": self.client.requests_sent,
            "format_outcomes": formats,
        })
    }

    fn generations(&self) -> Vec<serde_json::Value> {
        self.generated.iter().map(|g| serde_json::to_value(g).unwrap_or_default()).collect()
    }
}
