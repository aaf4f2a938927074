//! Self-test of the fake OpenAI-compatible upstream (`tierwise_tests::fake_upstream`) with a
//! tiny raw-TCP HTTP/1.1 client: scripted failures per model, the call log, truncated bodies,
//! SSE streams with usage and stalls, tool calls, hangs and closes, keep-alive and parallel load.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "fixture helpers outside #[test] fns panic on a broken fixture, as a test should"
)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tierwise_tests::fake_upstream::{Behaviour, Call, FakeUpstream};
use tierwise_tests::scripted::header;

const CHAT: &str = "/v1/chat/completions";

/// A response as read off the wire.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Chunked responses: each chunk's payload and when it had arrived in full.
    chunks: Vec<(Instant, Vec<u8>)>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The `data:` payloads of an SSE body.
    fn events(&self) -> Vec<String> {
        let text = String::from_utf8_lossy(&self.body);
        text.split("\n\n")
            .filter(|e| !e.trim().is_empty())
            .map(|e| {
                e.strip_prefix("data: ")
                    .unwrap_or_else(|| panic!("not an SSE data event: {e:?}"))
                    .to_string()
            })
            .collect()
    }
}

/// One keep-alive connection to the server.
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect to the fake upstream");
        stream.set_nodelay(true).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    fn send(&mut self, method: &str, path: &str, body: &str, headers: &[(&str, &str)]) {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n\
             content-length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        self.stream.write_all(req.as_bytes()).unwrap();
    }

    /// Reads more bytes; false at EOF (or a reset).
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset => false,
            Err(e) => panic!("read from the fake upstream: {e}"),
        }
    }

    fn need(&mut self, n: usize) -> bool {
        while self.buf.len() < n {
            if !self.fill() {
                return false;
            }
        }
        true
    }

    fn line(&mut self) -> Option<String> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 2);
                return Some(line);
            }
            if !self.fill() {
                return None;
            }
        }
    }

    /// The next response; None when the connection closed before a complete one.
    fn response(&mut self) -> Option<Response> {
        let status_line = self.line()?;
        let status = status_line.split_whitespace().nth(1)?.parse().ok()?;
        let mut headers = Vec::new();
        loop {
            let line = self.line()?;
            if line.is_empty() {
                break;
            }
            let (k, v) = line.split_once(':')?;
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
            chunks: Vec::new(),
        };
        if response.header("transfer-encoding") == Some("chunked") {
            loop {
                let size = usize::from_str_radix(self.line()?.trim(), 16).ok()?;
                if !self.need(size + 2) {
                    return None;
                }
                let data: Vec<u8> = self.buf.drain(..size).collect();
                self.buf.drain(..2);
                if size == 0 {
                    // The empty line after the last chunk (no trailers) is already consumed.
                    return Some(response);
                }
                response.body.extend_from_slice(&data);
                response.chunks.push((Instant::now(), data));
            }
        }
        let len: usize = response.header("content-length")?.parse().ok()?;
        if !self.need(len) {
            return None;
        }
        response.body = self.buf.drain(..len).collect();
        Some(response)
    }

    /// Everything until the server closes the connection.
    fn rest(&mut self) -> Vec<u8> {
        while self.fill() {}
        std::mem::take(&mut self.buf)
    }

    fn chat(&mut self, body: &str) -> Response {
        self.send("POST", CHAT, body, &[("authorization", "Bearer sk-test")]);
        self.response().expect("a complete response")
    }
}

fn chat_body(model: &str, user: &str) -> String {
    json!({
        "model": model,
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": user}
        ]
    })
    .to_string()
}

/// The call log as `(key, behaviour)` pairs, `key` read from each call.
fn call_log(up: &FakeUpstream, key: impl Fn(&Call) -> &str) -> Vec<(String, String)> {
    up.calls()
        .iter()
        .map(|c| (key(c).to_string(), c.behaviour.clone()))
        .collect()
}

/// Pairs to compare with a [`call_log`].
fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(k, b)| (k.to_string(), b.to_string()))
        .collect()
}

fn stream_body(model: &str, user: &str, include_usage: bool) -> String {
    let mut v: Value = serde_json::from_str(&chat_body(model, user)).unwrap();
    v["stream"] = json!(true);
    if include_usage {
        v["stream_options"] = json!({"include_usage": true});
    }
    v.to_string()
}

#[test]
fn scripted_sequence_per_model_and_call_log() {
    let up = FakeUpstream::start().unwrap();
    assert!(up.base_url().starts_with("http://127.0.0.1:"));
    assert!(up.base_url().ends_with("/v1"));
    up.script(
        "m-a",
        vec![
            Behaviour::Status {
                status: 429,
                retry_after: Some("1".into()),
                body: r#"{"error":{"message":"slow down"}}"#.into(),
            },
            Behaviour::server_error(503),
        ],
    );
    let mut c = Client::connect(up.addr());

    let r = c.chat(&chat_body("m-a", "hi there"));
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.body, br#"{"error":{"message":"slow down"}}"#);

    // Another model is not affected by m-a's script.
    let r = c.chat(&chat_body("m-b", "other"));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["model"], "m-b");

    let r = c.chat(&chat_body("m-a", "hi there"));
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), None);
    assert_eq!(r.json()["error"]["type"], "server_error");

    // Script used up: the default answer.
    let r = c.chat(&chat_body("m-a", "hi there"));
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "answer from m-a: hi there"
    );

    assert_eq!(
        call_log(&up, |c| &c.model),
        pairs(&[
            ("m-a", "status:429"),
            ("m-b", "answer"),
            ("m-a", "status:503"),
            ("m-a", "answer")
        ])
    );
    let calls = up.calls();
    assert!(calls.windows(2).all(|w| w[0].at <= w[1].at));
    assert!(calls.iter().all(|c| c.path == CHAT && !c.stream));
    assert!(
        calls
            .iter()
            .all(|c| c.authorization.as_deref() == Some("Bearer sk-test"))
    );
    assert_eq!(calls[1].body, chat_body("m-b", "other"));
    assert_eq!(up.calls_for("m-a"), 3);
    assert_eq!(up.calls_for("m-b"), 1);
    assert_eq!(up.calls_for("m-c"), 0);
    assert_eq!(up.models_called(), ["m-a", "m-b", "m-a", "m-a"]);

    up.reset_calls();
    assert!(up.calls().is_empty());
    c.chat(&chat_body("m-a", "again"));
    assert_eq!(up.calls_for("m-a"), 1);
}

#[test]
fn completion_is_a_realistic_chat_completion() {
    let up = FakeUpstream::start().unwrap();
    let mut c = Client::connect(up.addr());
    let r = c.chat(&chat_body("openai/gpt-x", "what is \"two\" plus two"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(v["object"], "chat.completion");
    assert!(v["created"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(v["model"], "openai/gpt-x");
    assert_eq!(v["choices"][0]["index"], 0);
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "answer from openai/gpt-x: what is \"two\" plus two"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    // Prompt: "be brief" + 5 words; completion: 3 + 5 words.
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 7, "completion_tokens": 8, "total_tokens": 15})
    );

    up.script(
        "m",
        vec![Behaviour::Answer {
            content: Some("forty-two".into()),
            usage: Some((100, 20)),
        }],
    );
    let v = c.chat(&chat_body("m", "q")).json();
    assert_eq!(v["choices"][0]["message"]["content"], "forty-two");
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120})
    );

    // set_default: the behaviour once the script is used up.
    up.set_default("m", Behaviour::bad_request("no such model"));
    let r = c.chat(&chat_body("m", "q"));
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["message"], "no such model");
    let r = c.chat(&chat_body("m", "q"));
    assert_eq!(r.status, 400);
}

#[test]
fn truncated_body_is_half_of_the_announced_length() {
    let up = FakeUpstream::start().unwrap();
    up.script("m", vec![Behaviour::Truncated]);
    let mut c = Client::connect(up.addr());
    c.send("POST", CHAT, &chat_body("m", "tell me a story"), &[]);
    let raw = c.rest();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    let announced: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .expect("a content-length")
        .parse()
        .unwrap();
    assert_eq!(body.len(), announced / 2);
    assert!(body.starts_with("{\""));
    assert!(serde_json::from_str::<Value>(body).is_err());
    let calls = up.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].behaviour, "truncated");

    // The next call answers in full (on a new connection).
    let mut c = Client::connect(up.addr());
    assert_eq!(c.chat(&chat_body("m", "again")).status, 200);
}

#[test]
fn stream_with_include_usage_ends_with_usage_and_done() {
    let up = FakeUpstream::start().unwrap();
    let mut c = Client::connect(up.addr());
    let r = c.chat(&stream_body("m", "stream this please", true));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.header("content-length"), None);
    let events = r.events();
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    // Prompt: "be brief" + 3 words; completion: "answer from m: stream this please".
    assert_eq!(
        usage["usage"],
        json!({"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11})
    );
    let content_chunks = &chunks[..chunks.len() - 1];
    assert!(
        content_chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk" && c["model"] == "m")
    );
    assert!(content_chunks.iter().all(|c| c["usage"].is_null()));
    assert_eq!(
        content_chunks[0]["choices"][0]["delta"]["role"],
        "assistant"
    );
    let text: String = content_chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "answer from m: stream this please");
    assert_eq!(
        content_chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
    let calls = up.calls();
    assert_eq!(calls[0].behaviour, "stream");
    assert!(calls[0].stream);

    // Without include_usage: no usage chunk; the connection is still usable.
    let r = c.chat(&stream_body("m", "short", false));
    let events = r.events();
    let last: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert!(last.get("usage").is_none());
    assert!(
        events
            .iter()
            .all(|e| !e.contains("\"usage\"") || e == "[DONE]")
    );
}

#[test]
fn tool_calls_answer_and_stream() {
    let up = FakeUpstream::start().unwrap();
    up.set_default(
        "m",
        Behaviour::tool_call("get_weather", r#"{"city": "Paris"}"#),
    );
    let mut c = Client::connect(up.addr());
    let r = c.chat(&chat_body("m", "weather in Paris?"));
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(
        v["choices"][0]["message"],
        json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_fake0",
            "type": "function", "function": {"name": "get_weather",
            "arguments": r#"{"city": "Paris"}"#}}]})
    );
    // Prompt: "be brief" + 3 words; completion: the arguments' 2 words.
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7})
    );

    let r = c.chat(&stream_body("m", "weather in Paris?", true));
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let events = r.events();
    assert_eq!(events.len(), 4, "{events:?}");
    assert_eq!(events[3], "[DONE]");
    let chunks: Vec<Value> = events[..3]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let delta = &chunks[0]["choices"][0]["delta"];
    assert_eq!(delta["tool_calls"][0]["index"], 0);
    assert_eq!(delta["tool_calls"][0]["function"]["name"], "get_weather");
    assert_eq!(chunks[1]["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(chunks[2]["choices"], json!([]));
    assert_eq!(chunks[2]["usage"]["completion_tokens"], 2);
    assert_eq!(
        call_log(&up, |c| c.model.as_str()),
        pairs(&[("m", "tool_calls"), ("m", "stream:tool_calls")])
    );
}

#[test]
fn stream_stall_before_the_second_chunk() {
    let up = FakeUpstream::start().unwrap();
    up.set_stream_gap(
        "slow",
        Duration::ZERO,
        Some((1, Duration::from_millis(400))),
    );
    let mut c = Client::connect(up.addr());
    let r = c.chat(&stream_body("slow", "one two three", true));
    assert_eq!(r.status, 200);
    assert!(r.chunks.len() >= 4);
    let stall = r.chunks[1].0 - r.chunks[0].0;
    assert!(stall >= Duration::from_millis(380), "stall was {stall:?}");
    let rest = r.chunks[r.chunks.len() - 1].0 - r.chunks[1].0;
    assert!(rest < Duration::from_millis(200), "rest took {rest:?}");

    // A gap between every chunk; other models are not affected.
    up.set_stream_gap("gappy", Duration::from_millis(50), None);
    let started = Instant::now();
    let r = c.chat(&stream_body("gappy", "a b", false));
    // Events: "answer ", "from ", "gappy: ", "a ", "b", finish, [DONE] = 6 gaps.
    assert_eq!(r.chunks.len(), 7);
    assert!(started.elapsed() >= Duration::from_millis(290));
    let started = Instant::now();
    c.chat(&stream_body("fast", "a b", false));
    assert!(started.elapsed() < Duration::from_millis(200));
}

#[test]
fn truncated_stream_stops_mid_event() {
    let up = FakeUpstream::start().unwrap();
    up.script("m", vec![Behaviour::Truncated]);
    let mut c = Client::connect(up.addr());
    c.send("POST", CHAT, &stream_body("m", "x y z", true), &[]);
    let raw = String::from_utf8_lossy(&c.rest()).into_owned();
    assert!(raw.contains("text/event-stream"));
    assert!(raw.contains("data: {"));
    assert!(!raw.contains("[DONE]"));
    assert!(!raw.ends_with("0\r\n\r\n"));
    assert_eq!(up.calls()[0].behaviour, "truncated");
}

#[test]
fn hang_close_delay_and_latency() {
    let up = FakeUpstream::start().unwrap();
    up.script(
        "m",
        vec![
            Behaviour::Hang(Duration::from_millis(300)),
            Behaviour::Close,
            Behaviour::Delay(
                Duration::from_millis(200),
                Box::new(Behaviour::server_error(500)),
            ),
        ],
    );

    let mut c = Client::connect(up.addr());
    let started = Instant::now();
    c.send("POST", CHAT, &chat_body("m", "q"), &[]);
    assert!(c.rest().is_empty(), "a hang sends nothing");
    assert!(started.elapsed() >= Duration::from_millis(290));

    let mut c = Client::connect(up.addr());
    let started = Instant::now();
    c.send("POST", CHAT, &chat_body("m", "q"), &[]);
    assert!(c.rest().is_empty(), "a close sends nothing");
    assert!(started.elapsed() < Duration::from_millis(250));

    let mut c = Client::connect(up.addr());
    let started = Instant::now();
    assert_eq!(c.chat(&chat_body("m", "q")).status, 500);
    assert!(started.elapsed() >= Duration::from_millis(190));

    up.set_latency(Duration::from_millis(150));
    let started = Instant::now();
    assert_eq!(c.chat(&chat_body("m", "q")).status, 200);
    assert!(started.elapsed() >= Duration::from_millis(140));

    let behaviours: Vec<String> = up.calls().into_iter().map(|c| c.behaviour).collect();
    assert_eq!(behaviours, ["hang", "close", "status:500", "answer"]);
}

#[test]
fn unknown_paths_and_bad_bodies() {
    let up = FakeUpstream::start().unwrap();
    let mut c = Client::connect(up.addr());
    c.send("GET", "/v1/models", "", &[]);
    let r = c.response().unwrap();
    assert_eq!(r.status, 404);
    assert!(r.json()["error"]["message"].is_string());
    c.send("POST", "/v1/embeddings", &chat_body("m", "q"), &[]);
    assert_eq!(c.response().unwrap().status, 404);
    c.send("POST", CHAT, "not json", &[]);
    let r = c.response().unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    // The connection survives all of that.
    assert_eq!(c.chat(&chat_body("m", "q")).status, 200);
    assert_eq!(
        call_log(&up, |c| &c.path),
        pairs(&[
            ("/v1/models", "status:404"),
            ("/v1/embeddings", "status:404"),
            (CHAT, "status:400"),
            (CHAT, "answer")
        ])
    );
    assert_eq!(up.calls_for("m"), 2);
}

#[test]
fn keep_alive_100_sequential_requests_on_one_connection() {
    let up = FakeUpstream::start().unwrap();
    let mut c = Client::connect(up.addr());
    for i in 0..100 {
        let r = c.chat(&chat_body("m", &format!("question {i}")));
        assert_eq!(r.status, 200);
        assert_eq!(
            r.json()["choices"][0]["message"]["content"],
            format!("answer from m: question {i}")
        );
    }
    assert_eq!(up.calls_for("m"), 100);

    // Pipelined requests are answered in order.
    let mut c = Client::connect(up.addr());
    for i in 0..3 {
        c.send("POST", CHAT, &chat_body("p", &format!("p{i}")), &[]);
    }
    for i in 0..3 {
        let v = c.response().unwrap().json();
        assert_eq!(
            v["choices"][0]["message"]["content"],
            format!("answer from p: p{i}")
        );
    }

    // `connection: close` is honoured.
    c.send(
        "POST",
        CHAT,
        &chat_body("p", "last"),
        &[("connection", "close")],
    );
    assert_eq!(c.response().unwrap().status, 200);
    assert!(c.rest().is_empty());
}

#[test]
fn parallel_8_threads_x_200_requests_all_answered() {
    let up = FakeUpstream::start().unwrap();
    let addr = up.addr();
    let started = Instant::now();
    let workers: Vec<_> = (0..8)
        .map(|t| {
            thread::spawn(move || {
                let mut c = Client::connect(addr);
                let model = format!("model-{t}");
                for i in 0..200 {
                    let r = c.chat(&chat_body(&model, &format!("q{i}")));
                    assert_eq!(r.status, 200);
                    assert_eq!(
                        r.json()["choices"][0]["message"]["content"],
                        format!("answer from {model}: q{i}")
                    );
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("a client thread");
    }
    assert_eq!(up.calls().len(), 1600);
    for t in 0..8 {
        assert_eq!(up.calls_for(&format!("model-{t}")), 200);
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "1600 loopback requests took {:?}",
        started.elapsed()
    );
}

#[test]
fn dropping_the_server_closes_it() {
    let up = FakeUpstream::start().unwrap();
    up.script("m", vec![Behaviour::Hang(Duration::from_secs(30))]);
    let addr = up.addr();
    let mut idle = Client::connect(addr);
    assert_eq!(idle.chat(&chat_body("x", "q")).status, 200);
    let mut hung = Client::connect(addr);
    hung.send("POST", CHAT, &chat_body("m", "q"), &[]);
    thread::sleep(Duration::from_millis(100));

    let started = Instant::now();
    drop(up);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(idle.rest().is_empty(), "the idle connection is closed");
    assert!(hung.rest().is_empty(), "the hung call ends");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
        "nothing listens any more"
    );
}
