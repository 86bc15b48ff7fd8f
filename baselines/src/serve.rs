//! `harness serve`: an OpenAI-compatible HTTP endpoint over a local policy — the paper's
//! query-rewriting API. `POST /v1/chat/completions` (chat template, generation), `GET /v1/models`,
//! and `POST /v1/rewrite` (`{"query": …, "reasoning": true}` → the rewritten query, using this
//! crate's evidence-seeking prompt and the answer parser). Every field is checked (400 names
//! it), bodies and prompts are capped (413, 400), unknown models are 404, a full queue is 503,
//! and concurrent requests are generated in batches.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use harness_core::answer::{parse_lenient, parse_strict, AnswerFormat};
use harness_policy::{Finish, Generation, Message, Policy, PolicyText, SamplingParams};
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
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Name reported as the model id; a request naming another model gets 404.
    pub model_name: String,
    /// Default and ceiling of `max_tokens`.
    pub max_new_tokens: usize,
    /// Longest prompt accepted, in tokens (400 beyond).
    pub max_prompt_tokens: usize,
    /// Largest request body accepted, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// Requests that may wait for generation at once; more get 503.
    pub max_queue: usize,
    /// Most requests generated together in one batch.
    pub max_batch: usize,
}

impl ServeOptions {
    /// Defaults for `model_name` generating at most `max_new_tokens`.
    pub fn new(model_name: &str, max_new_tokens: usize) -> ServeOptions {
        ServeOptions { model_name: model_name.into(), max_new_tokens, max_prompt_tokens: 4096, max_body_bytes: 1 << 20, max_queue: 64, max_batch: 16 }
    }
}

type Reply = (u16, serde_json::Value);

fn error(status: u16, message: &str) -> Reply {
    let kind = match status {
        404 => "not_found_error",
        413 => "request_too_large",
        503 => "overloaded_error",
        s if s >= 500 => "server_error",
        _ => "invalid_request_error",
    };
    (status, serde_json::json!({"error": {"message": message, "type": kind}}))
}

fn invalid(field: &str, message: &str) -> Reply {
    let (status, mut body) = error(400, &format!("{field}: {message}"));
    body["error"]["param"] = field.into();
    (status, body)
}

/// A request's prompt and sampling settings, checked, waiting for the batcher.
struct Job {
    /// The prompt's token ids (counted against the cap when the request was checked).
    prompt: Vec<i64>,
    params: SamplingParams,
    reply: mpsc::Sender<Result<(String, Generation), String>>,
}

/// What a checked request needs from generation, and how to answer once it has it.
struct Prepared {
    prompt: Vec<i64>,
    params: SamplingParams,
    answer: Box<dyn FnOnce(String, Generation) -> Reply + Send>,
}

/// Sampling settings of a chat request, each checked (400 names the field): no value may reach
/// the sampler that would make it panic (a temperature of 1e-300, a negative top_p).
fn chat_params(request: &ChatRequest, options: &ServeOptions) -> Result<SamplingParams, Reply> {
    let temperature = request.temperature.unwrap_or(0.0);
    if !(temperature == 0.0 || (0.01..=2.0).contains(&temperature)) {
        return Err(invalid("temperature", "must be 0 (greedy) or between 0.01 and 2"));
    }
    let top_p = request.top_p.unwrap_or(1.0);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(invalid("top_p", "must be above 0 and at most 1"));
    }
    let max_tokens = request.max_tokens.unwrap_or(options.max_new_tokens);
    if max_tokens == 0 {
        return Err(invalid("max_tokens", "must be at least 1"));
    }
    let stop_strings = match &request.stop {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        Some(serde_json::Value::Array(a)) if a.len() <= 4 && a.iter().all(|v| v.as_str().is_some_and(|s| !s.is_empty())) => {
            a.iter().filter_map(|v| v.as_str().map(String::from)).collect()
        }
        Some(_) => return Err(invalid("stop", "must be a string or a list of at most 4 non-empty strings")),
    };
    Ok(SamplingParams {
        max_new_tokens: max_tokens.min(options.max_new_tokens),
        temperature,
        top_p,
        top_k: 0,
        stop_strings,
        seed: request.seed.unwrap_or(0),
        ..Default::default()
    })
}

fn check_model(requested: Option<&str>, options: &ServeOptions) -> Result<(), Reply> {
    match requested {
        Some(name) if name != options.model_name => Err(error(404, &format!("model '{name}' does not exist here (this server has '{}')", options.model_name))),
        _ => Ok(()),
    }
}

/// The prompt's token ids, within the server's prompt cap.
fn tokenize_prompt(text: &PolicyText, prompt: &str, options: &ServeOptions) -> Result<Vec<i64>, Reply> {
    let ids = text.encode(prompt).map_err(|e| error(400, &format!("prompt cannot be tokenized: {e}")))?;
    if ids.len() > options.max_prompt_tokens {
        return Err(invalid("messages", &format!("the prompt is {} tokens, over this server's limit of {}", ids.len(), options.max_prompt_tokens)));
    }
    Ok(ids)
}

fn prepare_chat(text: &PolicyText, options: &ServeOptions, body: &str) -> Result<Prepared, Reply> {
    let request: ChatRequest = serde_json::from_str(body).map_err(|e| error(400, &format!("bad request body: {e}")))?;
    check_model(request.model.as_deref(), options)?;
    if request.messages.is_empty() {
        return Err(invalid("messages", "is empty"));
    }
    if let Some(m) = request.messages.iter().find(|m| !["system", "user", "assistant"].contains(&m.role.as_str())) {
        return Err(invalid("messages", &format!("unknown role '{}' (system, user or assistant)", m.role)));
    }
    let params = chat_params(&request, options)?;
    let messages: Vec<Message> = request.messages.iter().map(|m| Message::new(&m.role, &m.content)).collect();
    let prompt = text.chat_prompt(&messages).map_err(|e| error(400, &e.to_string()))?;
    let prompt = tokenize_prompt(text, &prompt, options)?;
    let prompt_tokens = prompt.len();
    let model = options.model_name.clone();
    Ok(Prepared {
        prompt,
        params,
        answer: Box::new(move |text, generation| {
            let finish = if generation.finish == Finish::Length { "length" } else { "stop" };
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            (
                200,
                serde_json::json!({
                    "id": format!("chatcmpl-{}", now.as_nanos()),
                    "object": "chat.completion",
                    "created": now.as_secs(),
                    "model": model,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
                    "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": generation.token_ids.len(),
                              "total_tokens": prompt_tokens + generation.token_ids.len()},
                }),
            )
        }),
    })
}

fn prepare_rewrite(text: &PolicyText, options: &ServeOptions, prompts: &Prompts, body: &str) -> Result<Prepared, Reply> {
    let request: RewriteRequest = serde_json::from_str(body).map_err(|e| error(400, &format!("bad request body: {e}")))?;
    if request.query.trim().is_empty() {
        return Err(invalid("query", "is empty"));
    }
    let task = Task::Evidence { corpus: request.corpus.unwrap_or_else(|| "a large text collection".into()), question: request.query.clone() };
    let user = prompts.user_message(&task, request.reasoning).map_err(|e| error(500, &e.to_string()))?;
    let messages = [Message::new("system", system_message(request.reasoning)), Message::new("user", &user)];
    let prompt = text.chat_prompt(&messages).map_err(|e| error(500, &e.to_string()))? + assistant_prefix(request.reasoning);
    let prompt = tokenize_prompt(text, &prompt, options)?;
    let (reasoning, original) = (request.reasoning, request.query);
    Ok(Prepared {
        prompt,
        params: SamplingParams { max_new_tokens: options.max_new_tokens, ..Default::default() },
        answer: Box::new(move |out, _| {
            let turn = format!("{}{}", assistant_prefix(reasoning), out);
            let format = if reasoning { AnswerFormat::Reasoning } else { AnswerFormat::Direct };
            let strict = parse_strict(&turn, format, "query");
            // Without a usable answer the original query is returned, so a client never gets nothing.
            let query = parse_lenient(&turn, "query").unwrap_or(original);
            let outcome = strict.map_or_else(|e| e.label().to_string(), |_| "ok".to_string());
            (200, serde_json::json!({"query": query, "output": turn, "format": outcome}))
        }),
    })
}

/// Reads a request body of at most `cap` bytes; a longer one (or a longer Content-Length) is
/// 413, a client that stops sending is 408 after the socket's read timeout.
fn read_body(request: &mut tiny_http::Request, cap: usize) -> Result<String, Reply> {
    if request.body_length().is_some_and(|n| n > cap) {
        return Err(error(413, &format!("request body is over {cap} bytes")));
    }
    let mut bytes = Vec::new();
    let read = std::io::Read::read_to_end(&mut std::io::Read::take(request.as_reader(), cap as u64 + 1), &mut bytes);
    match read {
        Err(e) if matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) => Err(error(408, "timed out reading the request body")),
        Err(e) => Err(error(400, &format!("reading the request body: {e}"))),
        Ok(_) if bytes.len() > cap => Err(error(413, &format!("request body is over {cap} bytes"))),
        Ok(_) => String::from_utf8(bytes).map_err(|_| error(400, "request body is not UTF-8")),
    }
}

/// One request, from its body to its answer; generation goes through the batcher's queue.
fn handle(mut request: tiny_http::Request, text: &PolicyText, options: &ServeOptions, prompts: &Prompts, jobs: &mpsc::SyncSender<Job>) {
    let path = request.url().split('?').next().unwrap_or("").trim_end_matches('/').to_string();
    let method = request.method().clone();
    let (status, reply) = match (method, path.as_str()) {
        (tiny_http::Method::Get, "/v1/models" | "/models") => {
            (200, serde_json::json!({"object": "list", "data": [{"id": options.model_name, "object": "model", "owned_by": "harness"}]}))
        }
        (tiny_http::Method::Post, "/v1/chat/completions" | "/chat/completions" | "/v1/rewrite") => {
            let prepared = read_body(&mut request, options.max_body_bytes).and_then(|body| {
                if path == "/v1/rewrite" { prepare_rewrite(text, options, prompts, &body) } else { prepare_chat(text, options, &body) }
            });
            match prepared {
                Err(reply) => reply,
                Ok(p) => {
                    let (tx, rx) = mpsc::channel();
                    match jobs.try_send(Job { prompt: p.prompt, params: p.params, reply: tx }) {
                        Err(mpsc::TrySendError::Full(_)) => error(503, &format!("{} requests are waiting already; try again later", options.max_queue)),
                        Err(mpsc::TrySendError::Disconnected(_)) => error(503, "the server is stopping"),
                        Ok(()) => match rx.recv() {
                            Ok(Ok((out, generation))) => (p.answer)(out, generation),
                            Ok(Err(why)) => error(500, &why),
                            Err(_) => error(503, "the server is stopping"),
                        },
                    }
                }
            }
        }
        (m, _) => error(404, &format!("no route {m} {path}")),
    };
    let header = tiny_http::Header::from_bytes("Content-Type", "application/json").expect("valid header");
    let response = tiny_http::Response::from_string(reply.to_string()).with_status_code(status).with_header(header);
    let _ = request.respond(response);
}

/// A listening server whose connections time out reading and writing after `timeout` (at
/// least a second), for [`serve`]: a client that stalls mid-request then costs one handler that
/// long and gets 408, instead of holding it forever. tiny_http sets no socket timeouts, and
/// accepted connections inherit the listener's (Linux); but the listener's own `accept` then
/// times out too, which would end tiny_http's accept loop, so while this value lives a thread
/// connects to it several times a second to keep `accept` returning.
pub struct BoundServer {
    server: tiny_http::Server,
    stop: std::sync::Arc<AtomicBool>,
}

impl std::ops::Deref for BoundServer {
    type Target = tiny_http::Server;
    fn deref(&self) -> &tiny_http::Server {
        &self.server
    }
}

impl Drop for BoundServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Listens on `addr` with connection timeouts ([`BoundServer`]).
pub fn bind(addr: impl std::net::ToSocketAddrs, timeout: Duration) -> std::io::Result<BoundServer> {
    let timeout = timeout.max(Duration::from_secs(1));
    let listener = std::net::TcpListener::bind(addr)?;
    let mut local = listener.local_addr()?;
    if local.ip().is_unspecified() {
        local.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let socket = socket2::SockRef::from(&listener);
    socket.set_read_timeout(Some(timeout))?;
    socket.set_write_timeout(Some(timeout))?;
    let server = tiny_http::Server::from_listener(listener, None).map_err(std::io::Error::other)?;
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let pinger_stop = std::sync::Arc::clone(&stop);
    std::thread::spawn(move || {
        while !pinger_stop.load(Ordering::Relaxed) {
            let _ = std::net::TcpStream::connect_timeout(&local, Duration::from_millis(500));
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    Ok(BoundServer { server, stop })
}

/// Answers requests until `stop` is set (checked every 200 ms). Handler threads read, check
/// and answer requests; this thread, which owns the model, generates: the requests waiting
/// with the same sampling settings (up to `max_batch`) go through the model as one batch, so
/// throughput grows with the number of clients. A panic during generation answers 500 to that
/// batch and the server goes on.
pub fn serve(server: &tiny_http::Server, policy: &Policy, options: &ServeOptions, stop: &AtomicBool) {
    let prompts = Prompts::new();
    let (jobs_tx, jobs_rx) = mpsc::sync_channel::<Job>(options.max_queue);
    let text = &policy.text;
    std::thread::scope(|s| {
        // More handlers than queue places and batch slots, so that a full queue is noticed
        // (503) rather than waited for.
        for _ in 0..options.max_queue + options.max_batch + 16 {
            let jobs_tx = jobs_tx.clone();
            let prompts = &prompts;
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match server.recv_timeout(Duration::from_millis(200)) {
                        Ok(Some(request)) => handle(request, text, options, prompts, &jobs_tx),
                        Ok(None) => continue,
                        Err(_) => break,
                    }
                }
            });
        }
        drop(jobs_tx);
        let mut waiting: std::collections::VecDeque<Job> = std::collections::VecDeque::new();
        while !stop.load(Ordering::Relaxed) {
            if waiting.is_empty() {
                match jobs_rx.recv_timeout(Duration::from_millis(200)) {
                    Ok(job) => waiting.push_back(job),
                    Err(_) => continue,
                }
            }
            // Requests that arrived meanwhile join the batch.
            while let Ok(job) = jobs_rx.try_recv() {
                waiting.push_back(job);
            }
            let params = waiting[0].params.clone();
            let mut batch = Vec::new();
            let mut rest = std::collections::VecDeque::new();
            for job in waiting.drain(..) {
                if batch.len() < options.max_batch && job.params == params {
                    batch.push(job);
                } else {
                    rest.push_back(job);
                }
            }
            waiting = rest;
            let batch_prompts: Vec<Vec<i64>> = batch.iter().map(|j| j.prompt.clone()).collect();
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| policy.generate_from_ids(&batch_prompts, &params)));
            match outcome {
                Ok(outputs) => {
                    for (job, output) in batch.into_iter().zip(outputs) {
                        let _ = job.reply.send(Ok(output));
                    }
                }
                Err(panic) => {
                    let why = panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
                    batch.into_iter().for_each(|job| drop(job.reply.send(Err(format!("generation failed: {why}")))));
                }
            }
        }
    });
}

/// A JSON service without a model (the reward endpoint): `workers` threads read requests of at
/// most `max_body_bytes` and answer `handler(method, path, body)` (a body that cannot be read
/// gets 408, 413 or 400 as [`serve`] gives them) until `stop` is set.
pub fn serve_json(
    server: &tiny_http::Server,
    workers: usize,
    max_body_bytes: usize,
    stop: &AtomicBool,
    handler: &(dyn Fn(&tiny_http::Method, &str, String) -> (u16, serde_json::Value) + Sync),
) {
    std::thread::scope(|s| {
        for _ in 0..workers.max(1) {
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let mut request = match server.recv_timeout(Duration::from_millis(200)) {
                        Ok(Some(request)) => request,
                        Ok(None) => continue,
                        Err(_) => break,
                    };
                    let path = request.url().split('?').next().unwrap_or("").trim_end_matches('/').to_string();
                    let method = request.method().clone();
                    let (status, reply) = match read_body(&mut request, max_body_bytes) {
                        Ok(body) => handler(&method, &path, body),
                        Err(reply) => reply,
                    };
                    let header = tiny_http::Header::from_bytes("Content-Type", "application/json").expect("valid header");
                    let _ = request.respond(tiny_http::Response::from_string(reply.to_string()).with_status_code(status).with_header(header));
                }
            });
        }
    });
}

/// An error answer in the OpenAI layout (`{"error": {"message", "type"}}`).
pub fn error_reply(status: u16, message: &str) -> (u16, serde_json::Value) {
    error(status, message)
}
