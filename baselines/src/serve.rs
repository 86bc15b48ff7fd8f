//! `harness serve`: an OpenAI-compatible HTTP endpoint over a local policy — the paper's
//! query-rewriting API. `POST /v1/chat/completions` (chat template, generation), `GET /v1/models`,
//! and `POST /v1/rewrite` (`{"query": …, "reasoning": true}` → the rewritten query, using this
//! crate's evidence-seeking prompt and the answer parser).
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use harness_core::answer::{parse_lenient, parse_strict, AnswerFormat};
use harness_policy::{Finish, Message, Policy, SamplingParams};
use serde::Deserialize;

use crate::prompts::{assistant_prefix, system_message, Prompts, Task};

#[derive(Deserialize)]
struct ChatRequest {
    #[serde(default)]
    model: Option<String>,
    messages: Vec<ChatMessage>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    max_tokens: Option<usize>,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    stop: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ChatMessage {
    role: String,
    content: String,
}

#[derive(Deserialize)]
struct RewriteRequest {
    query: String,
    #[serde(default = "yes")]
    reasoning: bool,
    #[serde(default)]
    corpus: Option<String>,
}

fn yes() -> bool {
    true
}

/// The server's settings.
pub struct ServeOptions {
    /// Name reported as the model id.
    pub model_name: String,
    /// Default and ceiling of `max_tokens`.
    pub max_new_tokens: usize,
}

type Reply = (u16, serde_json::Value);

fn error(status: u16, message: &str) -> Reply {
    (status, serde_json::json!({"error": {"message": message, "type": "invalid_request_error"}}))
}

fn chat(policy: &Policy, options: &ServeOptions, body: &str) -> Reply {
    let request: ChatRequest = match serde_json::from_str(body) {
        Ok(r) => r,
        Err(e) => return error(400, &format!("bad request body: {e}")),
    };
    if request.messages.is_empty() {
        return error(400, "messages is empty");
    }
    let messages: Vec<Message> = request.messages.iter().map(|m| Message::new(&m.role, &m.content)).collect();
    let prompt = match policy.chat_prompt(&messages) {
        Ok(p) => p,
        Err(e) => return error(400, &e.to_string()),
    };
    let stop_strings = match request.stop {
        Some(serde_json::Value::String(s)) => vec![s],
        Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(String::from)).collect(),
        _ => Vec::new(),
    };
    let params = SamplingParams {
        max_new_tokens: request.max_tokens.unwrap_or(options.max_new_tokens).min(options.max_new_tokens),
        temperature: request.temperature.unwrap_or(0.0).max(0.0),
        top_p: request.top_p.unwrap_or(1.0),
        top_k: 0,
        stop_strings,
        seed: request.seed.unwrap_or(0),
    };
    let prompt_tokens = policy.encode(&prompt).map(|t| t.len()).unwrap_or(0);
    match policy.generate_texts(&[prompt], &params) {
        Ok(mut out) => {
            let (text, generation) = out.remove(0);
            let finish = if generation.finish == Finish::Length { "length" } else { "stop" };
            (
                200,
                serde_json::json!({
                    "id": format!("chatcmpl-{}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())),
                    "object": "chat.completion",
                    "created": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
                    "model": request.model.unwrap_or_else(|| options.model_name.clone()),
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
                    "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": generation.token_ids.len(),
                              "total_tokens": prompt_tokens + generation.token_ids.len()},
                }),
            )
        }
        Err(e) => error(500, &e.to_string()),
    }
}

fn rewrite(policy: &Policy, options: &ServeOptions, prompts: &Prompts, body: &str) -> Reply {
    let request: RewriteRequest = match serde_json::from_str(body) {
        Ok(r) => r,
        Err(e) => return error(400, &format!("bad request body: {e}")),
    };
    let task = Task::Evidence { corpus: request.corpus.unwrap_or_else(|| "a large text collection".into()), question: request.query.clone() };
    let user = match prompts.user_message(&task, request.reasoning) {
        Ok(u) => u,
        Err(e) => return error(500, &e.to_string()),
    };
    let messages = [Message::new("system", system_message(request.reasoning)), Message::new("user", &user)];
    let prompt = match policy.chat_prompt(&messages) {
        Ok(p) => p + assistant_prefix(request.reasoning),
        Err(e) => return error(500, &e.to_string()),
    };
    let params = SamplingParams { max_new_tokens: options.max_new_tokens, ..Default::default() };
    match policy.generate_texts(&[prompt], &params) {
        Ok(out) => {
            let turn = format!("{}{}", assistant_prefix(request.reasoning), out[0].0);
            let format = if request.reasoning { AnswerFormat::Reasoning } else { AnswerFormat::Direct };
            let strict = parse_strict(&turn, format, "query");
            // Without a usable answer the original query is returned, so a client never gets nothing.
            let query = parse_lenient(&turn, "query").unwrap_or(request.query);
            let outcome = strict.map_or_else(|e| e.label().to_string(), |_| "ok".to_string());
            (200, serde_json::json!({"query": query, "output": turn, "format": outcome}))
        }
        Err(e) => error(500, &e.to_string()),
    }
}

/// Answers requests until `stop` is set (checked every 200 ms).
pub fn serve(server: &tiny_http::Server, policy: &Policy, options: &ServeOptions, stop: &AtomicBool) {
    let prompts = Prompts::new();
    while !stop.load(Ordering::Relaxed) {
        let mut request = match server.recv_timeout(Duration::from_millis(200)) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(_) => break,
        };
        let mut body = String::new();
        let (status, reply) = if std::io::Read::read_to_string(request.as_reader(), &mut body).is_err() {
            error(400, "request body is not UTF-8")
        } else {
            let path = request.url().split('?').next().unwrap_or("").trim_end_matches('/').to_string();
            match (request.method(), path.as_str()) {
                (tiny_http::Method::Post, "/v1/chat/completions" | "/chat/completions") => chat(policy, options, &body),
                (tiny_http::Method::Post, "/v1/rewrite") => rewrite(policy, options, &prompts, &body),
                (tiny_http::Method::Get, "/v1/models" | "/models") => {
                    (200, serde_json::json!({"object": "list", "data": [{"id": options.model_name, "object": "model", "owned_by": "harness"}]}))
                }
                _ => error(404, &format!("no route {} {path}", request.method())),
            }
        };
        let header = tiny_http::Header::from_bytes("Content-Type", "application/json").expect("valid header");
        let response = tiny_http::Response::from_string(reply.to_string()).with_status_code(status).with_header(header);
        let _ = request.respond(response);
    }
}
