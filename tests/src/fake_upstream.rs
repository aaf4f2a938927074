//! A fake OpenAI-compatible upstream (LLM provider) on loopback, for the tests and load tests
//! of the proxy and the evaluator: `POST /v1/chat/completions` answers realistic
//! `chat.completion` JSON (or an SSE stream of `chat.completion.chunk`s when the request asks
//! for `"stream": true`), a tool call on command ([`Behaviour::ToolCalls`]), and each model
//! can be scripted to fail on command — any status with
//! `Retry-After`, a hang past the caller's timeout, a truncated body, a slow stream chunk, a
//! closed connection. Every call is logged ([`Call`]) so tests can assert the exact calls made
//! (count, order, models).
//!
//! HTTP/1.1 with keep-alive (and pipelining), one thread per connection, `TCP_NODELAY`, each
//! response written in as few writes as possible. The server stops when the [`FakeUpstream`]
//! is dropped: the listener closes, open connections are shut down and sleeping handlers wake.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::scripted::header;

/// What the fake provider does with one call.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// 200 chat completion; content and usage (prompt, completion tokens) as given (None:
    /// content = `"answer from <model>: <last user message>"`, usage from word counts: the
    /// words of every message for the prompt, the words of the content for the completion).
    Answer {
        content: Option<String>,
        usage: Option<(u64, u64)>,
    },
    /// 200 with the assistant calling these functions (`(name, arguments JSON text)`), no
    /// content, `finish_reason: "tool_calls"`; usage from word counts (the prompt's, then the
    /// arguments'). Streamed as one `tool_calls` delta per call when the request streams.
    ToolCalls(Vec<(String, String)>),
    /// Any status with a body (e.g. 429 with `Some("1")` as `Retry-After`, 500, 400 with an
    /// OpenAI error body). Sent as `application/json`, the same for streaming requests.
    Status {
        status: u16,
        retry_after: Option<String>,
        body: String,
    },
    /// Read the request, then send nothing for this long (a hung provider), then close.
    Hang(Duration),
    /// 200 with a content-length of the full body but only half the JSON sent, then close.
    /// For a streaming request: the SSE headers, the first half of the events, half of the
    /// next event's `data:` line, then close (no terminating chunk, no `[DONE]`).
    Truncated,
    /// Wait, then behave as the inner behaviour.
    Delay(Duration, Box<Behaviour>),
    /// Close the connection right after reading the request.
    Close,
}

impl Behaviour {
    /// The default answer (`Answer { content: None, usage: None }`).
    pub fn answer() -> Self {
        Behaviour::Answer {
            content: None,
            usage: None,
        }
    }

    /// An answer with this content (usage from word counts).
    pub fn content(content: impl Into<String>) -> Self {
        Behaviour::Answer {
            content: Some(content.into()),
            usage: None,
        }
    }

    /// An answer calling one function with these arguments (JSON text).
    pub fn tool_call(name: &str, arguments: &str) -> Self {
        Behaviour::ToolCalls(vec![(name.to_string(), arguments.to_string())])
    }

    /// 429 with an OpenAI rate-limit error body and, when given, `Retry-After`.
    pub fn rate_limited(retry_after: Option<&str>) -> Self {
        Behaviour::Status {
            status: 429,
            retry_after: retry_after.map(str::to_string),
            body: error_body(
                "Rate limit reached",
                "rate_limit_exceeded",
                "rate_limit_exceeded",
            ),
        }
    }

    /// A provider failure (5xx) with an OpenAI error body.
    pub fn server_error(status: u16) -> Self {
        Behaviour::Status {
            status,
            retry_after: None,
            body: error_body("The server had an error", "server_error", "server_error"),
        }
    }

    /// 400 with an OpenAI `invalid_request_error` body carrying `message`.
    pub fn bad_request(message: &str) -> Self {
        Behaviour::Status {
            status: 400,
            retry_after: None,
            body: error_body(message, "invalid_request_error", "invalid_request"),
        }
    }

    /// The name logged in [`Call::behaviour`] for this behaviour (a `Delay` takes its inner
    /// behaviour's name; an answer to a streaming request is `"stream"`).
    pub fn name(&self, stream: bool) -> String {
        match self {
            Behaviour::Answer { .. } if stream => "stream".into(),
            Behaviour::Answer { .. } => "answer".into(),
            Behaviour::ToolCalls(_) if stream => "stream:tool_calls".into(),
            Behaviour::ToolCalls(_) => "tool_calls".into(),
            Behaviour::Status { status, .. } => format!("status:{status}"),
            Behaviour::Hang(_) => "hang".into(),
            Behaviour::Truncated => "truncated".into(),
            Behaviour::Delay(_, inner) => inner.name(stream),
            Behaviour::Close => "close".into(),
        }
    }
}

/// An OpenAI error body: `{"error":{"message":…,"type":…,"param":null,"code":…}}`.
pub fn error_body(message: &str, kind: &str, code: &str) -> String {
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}}).to_string()
}

/// One request the fake provider received.
#[derive(Clone, Debug)]
pub struct Call {
    /// The request's `model` (empty when the body had none or was not JSON).
    pub model: String,
    /// The request's `stream` flag.
    pub stream: bool,
    /// The request path (e.g. `/v1/chat/completions`).
    pub path: String,
    /// The `Authorization` header, when sent.
    pub authorization: Option<String>,
    /// The raw request body.
    pub body: String,
    /// When the request had been read in full.
    pub at: Instant,
    /// What was answered: `"answer"`, `"stream"`, `"tool_calls"`, `"stream:tool_calls"`,
    /// `"status:429"`, `"hang"`, `"truncated"`,
    /// `"close"` (`"status:404"` for a path that is not chat completions, `"status:400"` for a
    /// body that is not a JSON object with a `model`).
    pub behaviour: String,
}

/// The fake provider; see the module documentation.
pub struct FakeUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct ModelState {
    script: VecDeque<Behaviour>,
    default: Option<Behaviour>,
    gap: Duration,
    stall: Option<(usize, Duration)>,
}

#[derive(Default)]
struct State {
    models: HashMap<String, ModelState>,
    latency: Duration,
    calls: Vec<Call>,
}

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    state: Mutex<State>,
    conns: Mutex<HashMap<u64, TcpStream>>,
    next_conn: AtomicU64,
    next_id: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Sleeps `d`, waking early when the server stops; false when it stopped.
    fn sleep(&self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            thread::sleep((deadline - now).min(Duration::from_millis(20)));
        }
    }
}

impl FakeUpstream {
    /// Starts the server on `127.0.0.1` with an ephemeral port.
    pub fn start() -> io::Result<FakeUpstream> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("fake-upstream-accept".into())
                .spawn(move || accept_loop(&listener, &shared))?
        };
        Ok(FakeUpstream {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// `http://127.0.0.1:PORT/v1` (the OpenAI base URL; requests go to `/v1/chat/completions`).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The next calls for `model` take these behaviours in order, then the default (appended
    /// to what is left of an earlier script).
    pub fn script(&self, model: &str, behaviours: Vec<Behaviour>) {
        let mut state = lock(&self.shared.state);
        let m = state.models.entry(model.to_string()).or_default();
        m.script.extend(behaviours);
    }

    /// Behaviour for `model` once its script is used up (default: `Answer{None, None}`).
    pub fn set_default(&self, model: &str, b: Behaviour) {
        let mut state = lock(&self.shared.state);
        state.models.entry(model.to_string()).or_default().default = Some(b);
    }

    /// Every model: added latency before answering (for load tests: a realistic upstream
    /// time). Applies to answers, statuses, truncated bodies and streams (after a `Delay`),
    /// not to `Hang` or `Close`.
    pub fn set_latency(&self, d: Duration) {
        lock(&self.shared.state).latency = d;
    }

    /// Streaming answers for `model`: this gap before every SSE event but the first (default
    /// 0) and, optionally, a stall of the given length before event N. Events are numbered
    /// from 0 in the order sent: 0 is the first content piece (with `role`), then one per
    /// further word of the content, then the `finish_reason` event, the `usage` event (when
    /// `stream_options.include_usage`), and `[DONE]`.
    pub fn set_stream_gap(
        &self,
        model: &str,
        gap: Duration,
        stall_before_chunk: Option<(usize, Duration)>,
    ) {
        let mut state = lock(&self.shared.state);
        let m = state.models.entry(model.to_string()).or_default();
        m.gap = gap;
        m.stall = stall_before_chunk;
    }

    /// The calls received so far, in arrival order.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.shared.state).calls.clone()
    }

    /// How many calls for `model` were received.
    pub fn calls_for(&self, model: &str) -> usize {
        lock(&self.shared.state)
            .calls
            .iter()
            .filter(|c| c.model == model)
            .count()
    }

    /// The models of the calls so far, in arrival order.
    pub fn models_called(&self) -> Vec<String> {
        lock(&self.shared.state)
            .calls
            .iter()
            .map(|c| c.model.clone())
            .collect()
    }

    /// Forgets the calls received so far (scripts and settings stay).
    pub fn reset_calls(&self) {
        lock(&self.shared.state).calls.clear();
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept so the thread sees the flag and drops the listener.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for (_, conn) in lock(&self.shared.conns).drain() {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for conn in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(conn) = conn else {
            // Out of descriptors or an aborted handshake: try again shortly.
            thread::sleep(Duration::from_millis(5));
            continue;
        };
        let _ = conn.set_nodelay(true);
        let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
        if let Ok(handle) = conn.try_clone() {
            lock(&shared.conns).insert(id, handle);
        }
        let worker = Arc::clone(shared);
        let spawned = thread::Builder::new()
            .name("fake-upstream-conn".into())
            .spawn(move || {
                serve(conn, &worker);
                lock(&worker.conns).remove(&id);
            });
        if spawned.is_err() {
            lock(&shared.conns).remove(&id);
        }
    }
}

/// A request as read off the wire.
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    fn wants_close(&self) -> bool {
        match self.header("connection") {
            Some(c) => c.eq_ignore_ascii_case("close"),
            None => false,
        }
    }
}

/// Reads HTTP/1.1 requests off a connection, keeping bytes of pipelined requests.
struct RequestReader {
    stream: TcpStream,
    buf: Vec<u8>,
}

const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 64 * 1024 * 1024;

impl RequestReader {
    /// Reads more bytes; false at EOF or on an error.
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return false,
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        }
    }

    /// Makes sure `n` bytes are buffered.
    fn need(&mut self, n: usize) -> bool {
        while self.buf.len() < n {
            if !self.fill() {
                return false;
            }
        }
        true
    }

    /// Index just past the next `\r\n` from `from`, reading more as needed.
    fn line_end(&mut self, from: usize) -> Option<usize> {
        loop {
            if let Some(i) = find(&self.buf[from..], b"\r\n") {
                return Some(from + i + 2);
            }
            if self.buf.len() > MAX_HEAD + MAX_BODY || !self.fill() {
                return None;
            }
        }
    }

    /// The next request; None when the connection closed (or sent garbage).
    fn next(&mut self) -> Option<Request> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if self.buf.len() > MAX_HEAD || !self.fill() {
                return None;
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let mut request_line = lines.next()?.split_whitespace();
        let method = request_line.next()?.to_string();
        let path = request_line.next()?.to_string();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        self.buf.drain(..head_end);
        let mut request = Request {
            method,
            path,
            headers,
            body: Vec::new(),
        };
        let chunked = request
            .header("transfer-encoding")
            .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"));
        if chunked {
            request.body = self.chunked_body()?;
        } else {
            let len = match request.header("content-length") {
                Some(v) => v.parse::<usize>().ok()?,
                None => 0,
            };
            if len > MAX_BODY || !self.need(len) {
                return None;
            }
            request.body = self.buf.drain(..len).collect();
        }
        Some(request)
    }

    fn chunked_body(&mut self) -> Option<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let end = self.line_end(0)?;
            let size_line = String::from_utf8_lossy(&self.buf[..end - 2]).into_owned();
            let size_hex = size_line.split(';').next()?.trim();
            let size = usize::from_str_radix(size_hex, 16).ok()?;
            if size > MAX_BODY || body.len() + size > MAX_BODY {
                return None;
            }
            self.buf.drain(..end);
            if size == 0 {
                // Trailers, up to an empty line.
                loop {
                    let end = self.line_end(0)?;
                    self.buf.drain(..end);
                    if end == 2 {
                        return Some(body);
                    }
                }
            }
            if !self.need(size + 2) {
                return None;
            }
            body.extend(self.buf.drain(..size));
            self.buf.drain(..2);
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Serves one connection until it closes, a behaviour closes it, or the server stops.
fn serve(conn: TcpStream, shared: &Shared) {
    let Ok(read_half) = conn.try_clone() else {
        return;
    };
    let mut reader = RequestReader {
        stream: read_half,
        buf: Vec::new(),
    };
    let mut out = conn;
    while !shared.stop.load(Ordering::Relaxed) {
        let Some(request) = reader.next() else {
            break;
        };
        let keep_open = handle(&request, &mut out, shared) && !request.wants_close();
        if !keep_open {
            let _ = out.flush();
            let _ = out.shutdown(Shutdown::Both);
            break;
        }
    }
}

/// What a chat request asked for.
struct ChatRequest {
    model: String,
    stream: bool,
    include_usage: bool,
    last_user: String,
    prompt_words: u64,
}

fn parse_chat(body: &[u8]) -> Option<ChatRequest> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let model = v.get("model")?.as_str()?.to_string();
    let stream = v.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let include_usage = v
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let messages = v
        .get("messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut last_user = String::new();
    let mut prompt_words = 0u64;
    for m in &messages {
        let text = message_text(m.get("content"));
        prompt_words += text.split_whitespace().count() as u64;
        if m.get("role").and_then(Value::as_str) == Some("user") {
            last_user = text;
        }
    }
    Some(ChatRequest {
        model,
        stream,
        include_usage,
        last_user,
        prompt_words,
    })
}

/// A message's text: a string content, or the `text` of its content parts joined by spaces.
fn message_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// Answers one request; false when the connection must be closed afterwards.
fn handle(request: &Request, out: &mut TcpStream, shared: &Shared) -> bool {
    let received = Instant::now();
    let body_text = String::from_utf8_lossy(&request.body).into_owned();
    let authorization = request.header("authorization").map(str::to_string);
    let path_only = request.path.split('?').next().unwrap_or_default();
    let call = |model: &str, stream: bool, behaviour: String| Call {
        model: model.to_string(),
        stream,
        path: request.path.clone(),
        authorization: authorization.clone(),
        body: body_text.clone(),
        at: received,
        behaviour,
    };
    let log = |model: &str, stream: bool, behaviour: String| {
        lock(&shared.state)
            .calls
            .push(call(model, stream, behaviour));
    };

    if request.method != "POST" || path_only != "/v1/chat/completions" {
        let model = parse_chat(&request.body)
            .map(|c| c.model)
            .unwrap_or_default();
        log(&model, false, "status:404".into());
        let body = json!({"error": {
            "message": format!("Unknown request URL: {} {}", request.method, request.path),
            "type": "invalid_request_error", "param": null, "code": "unknown_url"}})
        .to_string();
        return write_all(out, &simple_response(404, None, &body));
    }
    let Some(chat) = parse_chat(&request.body) else {
        log("", false, "status:400".into());
        let body = error_body(
            "The body must be a JSON object with a string `model`",
            "invalid_request_error",
            "invalid_request",
        );
        return write_all(out, &simple_response(400, None, &body));
    };

    // Take the behaviour and the settings, logging the call under the same lock so the log's
    // order is the order in which behaviours were handed out.
    let (behaviour, latency, gap, stall) = {
        let mut state = lock(&shared.state);
        let latency = state.latency;
        let m = state.models.entry(chat.model.clone()).or_default();
        let behaviour = m
            .script
            .pop_front()
            .or_else(|| m.default.clone())
            .unwrap_or_else(Behaviour::answer);
        let (gap, stall) = (m.gap, m.stall);
        let name = behaviour.name(chat.stream);
        state.calls.push(call(&chat.model, chat.stream, name));
        (behaviour, latency, gap, stall)
    };
    let ctx = Ctx {
        chat: &chat,
        shared,
        latency,
        gap,
        stall,
    };
    ctx.behave(&behaviour, out)
}

struct Ctx<'a> {
    chat: &'a ChatRequest,
    shared: &'a Shared,
    latency: Duration,
    gap: Duration,
    stall: Option<(usize, Duration)>,
}

impl Ctx<'_> {
    fn behave(&self, behaviour: &Behaviour, out: &mut TcpStream) -> bool {
        match behaviour {
            Behaviour::Close => false,
            Behaviour::Hang(d) => {
                self.shared.sleep(*d);
                false
            }
            Behaviour::Delay(d, inner) => self.shared.sleep(*d) && self.behave(inner, out),
            Behaviour::Status {
                status,
                retry_after,
                body,
            } => {
                self.shared.sleep(self.latency)
                    && write_all(out, &simple_response(*status, retry_after.as_deref(), body))
            }
            Behaviour::Answer { content, usage } => {
                if !self.shared.sleep(self.latency) {
                    return false;
                }
                let (content, usage) = self.content_and_usage(content, usage);
                if self.chat.stream {
                    self.stream(&content, usage, false, out)
                } else {
                    let body = self.completion(&content, usage);
                    write_all(out, &simple_response(200, None, &body))
                }
            }
            Behaviour::ToolCalls(calls) => {
                if !self.shared.sleep(self.latency) {
                    return false;
                }
                let words: usize = calls
                    .iter()
                    .map(|(_, args)| args.split_whitespace().count())
                    .sum();
                let usage = (self.chat.prompt_words, words as u64);
                if self.chat.stream {
                    let delta = self.tool_calls_message(calls, true);
                    self.stream_events(self.tool_call_events(delta, usage), false, out)
                } else {
                    let message = self.tool_calls_message(calls, false);
                    let body = self.completion_of(message, "tool_calls", usage);
                    write_all(out, &simple_response(200, None, &body))
                }
            }
            Behaviour::Truncated => {
                if !self.shared.sleep(self.latency) {
                    return false;
                }
                let (content, usage) = self.content_and_usage(&None, &None);
                if self.chat.stream {
                    self.stream(&content, usage, true, out);
                } else {
                    let body = self.completion(&content, usage);
                    let mut response = head(200, "application/json", None, Some(body.len()));
                    response.extend_from_slice(&body.as_bytes()[..body.len() / 2]);
                    write_all(out, &response);
                }
                false
            }
        }
    }

    fn content_and_usage(
        &self,
        content: &Option<String>,
        usage: &Option<(u64, u64)>,
    ) -> (String, (u64, u64)) {
        let content = content
            .clone()
            .unwrap_or_else(|| format!("answer from {}: {}", self.chat.model, self.chat.last_user));
        let usage = usage.unwrap_or((
            self.chat.prompt_words,
            content.split_whitespace().count() as u64,
        ));
        (content, usage)
    }

    fn completion(&self, content: &str, usage: (u64, u64)) -> String {
        let message = json!({"role": "assistant", "content": content, "refusal": null});
        self.completion_of(message, "stop", usage)
    }

    fn completion_of(
        &self,
        message: Value,
        finish_reason: &str,
        (prompt, completion): (u64, u64),
    ) -> String {
        json!({
            "id": self.new_id(),
            "object": "chat.completion",
            "created": unix_now(),
            "model": self.chat.model,
            "system_fingerprint": "fp_fake",
            "choices": [{
                "index": 0,
                "message": message,
                "logprobs": null,
                "finish_reason": finish_reason
            }],
            "usage": usage_json(prompt, completion)
        })
        .to_string()
    }

    /// The assistant message calling `calls` (a stream's delta, with each call's `index`, when
    /// `delta`); call ids are `call_fake<n>`.
    fn tool_calls_message(&self, calls: &[(String, String)], delta: bool) -> Value {
        let calls: Vec<Value> = calls
            .iter()
            .enumerate()
            .map(|(i, (name, arguments))| {
                let mut call = json!({
                    "id": format!("call_fake{i}"),
                    "type": "function",
                    "function": {"name": name, "arguments": arguments}
                });
                if delta {
                    call["index"] = json!(i);
                }
                call
            })
            .collect();
        json!({"role": "assistant", "content": null, "tool_calls": calls})
    }

    /// The SSE events of a streamed tool call: the `tool_calls` delta, the `finish_reason`
    /// event, the `usage` event (when asked for), `[DONE]`.
    fn tool_call_events(&self, delta: Value, (prompt, completion): (u64, u64)) -> Vec<String> {
        let id = self.new_id();
        let created = unix_now();
        let mut events = vec![
            self.chunk(
                &id,
                created,
                json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": null}]),
                Value::Null,
            ),
            self.chunk(
                &id,
                created,
                json!([{"index": 0, "delta": {}, "logprobs": null, "finish_reason": "tool_calls"}]),
                Value::Null,
            ),
        ];
        if self.chat.include_usage {
            events.push(self.chunk(&id, created, json!([]), usage_json(prompt, completion)));
        }
        events.push("[DONE]".into());
        events
    }

    /// One `chat.completion.chunk` event; its `usage` (null but on the last event) is sent only
    /// when the request asked for it (`stream_options.include_usage`).
    fn chunk(&self, id: &str, created: u64, choices: Value, usage: Value) -> String {
        let mut v = json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": self.chat.model,
            "system_fingerprint": "fp_fake",
            "choices": choices
        });
        if self.chat.include_usage {
            v["usage"] = usage;
        }
        v.to_string()
    }

    fn new_id(&self) -> String {
        let n = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        format!("chatcmpl-fake{n:08}")
    }

    /// The SSE events (without `data: ` framing) of a streamed answer.
    fn events(&self, content: &str, (prompt, completion): (u64, u64)) -> Vec<String> {
        let id = self.new_id();
        let created = unix_now();
        let chunk = |delta: Value, finish: Value| {
            self.chunk(
                &id,
                created,
                json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]),
                Value::Null,
            )
        };
        let mut pieces: Vec<&str> = content.split_inclusive(char::is_whitespace).collect();
        if pieces.is_empty() {
            pieces.push("");
        }
        let mut events = Vec::with_capacity(pieces.len() + 3);
        for (i, piece) in pieces.iter().enumerate() {
            let delta = if i == 0 {
                json!({"role": "assistant", "content": piece})
            } else {
                json!({"content": piece})
            };
            events.push(chunk(delta, Value::Null));
        }
        events.push(chunk(json!({}), json!("stop")));
        if self.chat.include_usage {
            events.push(self.chunk(&id, created, json!([]), usage_json(prompt, completion)));
        }
        events.push("[DONE]".into());
        events
    }

    /// Streams the answer as SSE over chunked transfer encoding; with `truncate`, stops half
    /// way through. Bytes are buffered between pauses, so an unpaused stream is one write.
    fn stream(
        &self,
        content: &str,
        usage: (u64, u64),
        truncate: bool,
        out: &mut TcpStream,
    ) -> bool {
        self.stream_events(self.events(content, usage), truncate, out)
    }

    /// Streams these SSE events (see [`Ctx::stream`]).
    fn stream_events(&self, events: Vec<String>, truncate: bool, out: &mut TcpStream) -> bool {
        let mut pending = head(200, "text/event-stream", None, None);
        let cut = events.len() / 2;
        for (i, event) in events.iter().enumerate() {
            let mut pause = if i > 0 { self.gap } else { Duration::ZERO };
            if let Some((n, stall)) = self.stall
                && n == i
            {
                pause += stall;
            }
            if !pause.is_zero() {
                if !write_all(out, &pending) {
                    return false;
                }
                pending.clear();
                if !self.shared.sleep(pause) {
                    return false;
                }
            }
            let data = format!("data: {event}\n\n");
            if truncate && i == cut {
                let half = &data.as_bytes()[..data.len() / 2];
                pending.extend_from_slice(format!("{:x}\r\n", half.len()).as_bytes());
                pending.extend_from_slice(half);
                pending.extend_from_slice(b"\r\n");
                write_all(out, &pending);
                return false;
            }
            pending.extend_from_slice(format!("{:x}\r\n{data}\r\n", data.len()).as_bytes());
        }
        pending.extend_from_slice(b"0\r\n\r\n");
        write_all(out, &pending)
    }
}

fn usage_json(prompt: u64, completion: u64) -> Value {
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion
    })
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// A response head; `content_length` None means chunked transfer encoding.
fn head(
    status: u16,
    content_type: &str,
    retry_after: Option<&str>,
    content_length: Option<usize>,
) -> Vec<u8> {
    let mut h = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: {content_type}\r\n",
        reason(status)
    );
    match content_length {
        Some(n) => h.push_str(&format!("content-length: {n}\r\n")),
        None => h.push_str("transfer-encoding: chunked\r\ncache-control: no-cache\r\n"),
    }
    if let Some(r) = retry_after {
        h.push_str(&format!("retry-after: {r}\r\n"));
    }
    h.push_str("\r\n");
    h.into_bytes()
}

fn simple_response(status: u16, retry_after: Option<&str>, body: &str) -> Vec<u8> {
    let mut r = head(status, "application/json", retry_after, Some(body.len()));
    r.extend_from_slice(body.as_bytes());
    r
}

/// Writes the bytes; false when the peer has gone.
fn write_all(out: &mut TcpStream, bytes: &[u8]) -> bool {
    out.write_all(bytes).is_ok() && out.flush().is_ok()
}
