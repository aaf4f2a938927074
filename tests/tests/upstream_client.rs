//! The OpenAI-compatible upstream client (`tierwise::proxy::upstream::HttpUpstream`) against real
//! sockets on loopback: buffered answers and every failure class (429 with `Retry-After`,
//! 5xx, 400 rejected, 401, a hung server, connection refused, truncated JSON), streamed
//! answers (first bytes, a stalled stream, usage read by the `SseTap`), the headers sent, and
//! a `Debug` that never shows the key.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use tierwise::proxy::upstream::{
    ApiKey, ChatCall, ChatStream, ChatUpstream, ChunkStream, Endpoint, Endpoints, HttpUpstream,
    SseTap, UpstreamError, UpstreamSettings, Usage, answer_text, next_chunk,
};
use tierwise::routing::pool::ProviderAuth;
use tierwise_tests::scripted::{Reply, ScriptedServer, Step};

const KEY: &str = "sk-or-v1-test-secret-0123456789";
const REQUEST: &str =
    r#"{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"Capital of France?"}]}"#;
const ANSWER: &str = r#"{"id":"gen-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Paris."},"finish_reason":"stop"}],"usage":{"prompt_tokens":14,"completion_tokens":3,"total_tokens":17,"completion_tokens_details":{"reasoning_tokens":0},"prompt_tokens_details":{"cached_tokens":2}}}"#;

/// The next chunk of a stream, as bytes (`tierwise-tests` has no `bytes` dependency).
async fn next(rest: &mut ChunkStream) -> Option<Result<Vec<u8>, UpstreamError>> {
    next_chunk(rest).await.map(|r| r.map(|b| b.to_vec()))
}

fn settings(read_timeout: Duration) -> UpstreamSettings {
    UpstreamSettings {
        read_timeout,
        ..UpstreamSettings::default()
    }
}

fn upstream_at(base_url: &str, settings: &UpstreamSettings) -> HttpUpstream {
    let endpoints = Endpoints::from([(
        "openrouter".to_string(),
        Endpoint::new(base_url.to_string(), ApiKey::new(KEY)),
    )]);
    match HttpUpstream::new(endpoints, settings) {
        Ok(u) => u,
        Err(e) => panic!("cannot build the upstream client: {e}"),
    }
}

fn call(deadline: Duration) -> ChatCall<'static> {
    ChatCall {
        provider: "openrouter",
        body: REQUEST.as_bytes().to_vec().into(),
        deadline,
    }
}

fn scripted(reply: Reply) -> ScriptedServer {
    match ScriptedServer::start(vec![reply.clone()], reply) {
        Ok(s) => s,
        Err(e) => panic!("cannot start the scripted server: {e}"),
    }
}

fn respond(status: u16, headers: &[(&str, &str)], body: &str) -> Reply {
    Reply::Respond {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: body.to_string(),
    }
}

async fn complete_err(reply: Reply) -> UpstreamError {
    let server = scripted(reply);
    let up = upstream_at(server.url(), &UpstreamSettings::default());
    match up.complete(call(Duration::from_secs(5))).await {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn a_completion_is_returned_byte_for_byte_with_its_usage() {
    let server = scripted(respond(
        200,
        &[("content-type", "application/json; charset=utf-8")],
        ANSWER,
    ));
    // A trailing slash on the base URL is trimmed.
    let up = upstream_at(
        &format!("{}/api/v1/", server.url()),
        &UpstreamSettings::default(),
    );
    let debug = format!("{up:?}");
    assert!(!debug.contains(KEY), "Debug shows the key: {debug}");
    assert!(!debug.contains("sk-or"), "Debug shows the key: {debug}");
    assert_eq!(up.providers().collect::<Vec<_>>(), ["openrouter"]);

    let done = match up.complete(call(Duration::from_secs(5))).await {
        Ok(c) => c,
        Err(e) => panic!("completion failed: {e:?}"),
    };
    assert_eq!(done.status, 200);
    assert_eq!(done.content_type, "application/json; charset=utf-8");
    assert_eq!(&done.body[..], ANSWER.as_bytes());
    assert_eq!(answer_text(&done.json).as_deref(), Some("Paris."));
    assert_eq!(
        done.usage,
        Some(Usage {
            prompt_tokens: 14,
            completion_tokens: 3,
            reasoning_tokens: Some(0),
            cached_tokens: Some(2),
        })
    );
    assert!(done.elapsed_ms > 0.0 && done.elapsed_ms < 5000.0);

    let received = server.received();
    assert_eq!(received.len(), 1);
    let req = &received[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/api/v1/chat/completions");
    assert_eq!(
        req.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.header("x-title"), Some("tierwise"));
    assert_eq!(req.body, REQUEST);
}

#[tokio::test]
async fn an_azure_style_provider_gets_its_key_header_query_and_extra_headers() {
    let server = scripted(respond(
        200,
        &[("content-type", "application/json")],
        ANSWER,
    ));
    let endpoint = Endpoint {
        auth: ProviderAuth::ApiKeyHeader,
        headers: [("x-team".to_string(), "search".to_string())].into(),
        query: [("api-version".to_string(), "2024-10-21".to_string())].into(),
        ..Endpoint::new(server.url().to_string(), ApiKey::new(KEY))
    };
    let up = HttpUpstream::new(
        Endpoints::from([("openrouter".to_string(), endpoint)]),
        &UpstreamSettings::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let done = up.complete(call(Duration::from_secs(5))).await;
    assert!(done.is_ok(), "{done:?}");
    let received = server.received();
    let req = &received[0];
    assert_eq!(req.path, "/chat/completions?api-version=2024-10-21");
    assert_eq!(req.header("api-key"), Some(KEY));
    assert_eq!(
        req.header("authorization"),
        None,
        "no Bearer key for api-key auth"
    );
    assert_eq!(req.header("x-team"), Some("search"));
    assert!(!format!("{up:?}").contains(KEY));

    // A local server without a key: nothing is sent for auth.
    let server = scripted(respond(
        200,
        &[("content-type", "application/json")],
        ANSWER,
    ));
    let open = Endpoint {
        auth: ProviderAuth::None,
        ..Endpoint::new(server.url().to_string(), ApiKey::new(""))
    };
    let up = HttpUpstream::new(
        Endpoints::from([("openrouter".to_string(), open)]),
        &UpstreamSettings::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(up.complete(call(Duration::from_secs(5))).await.is_ok());
    let received = server.received();
    assert_eq!(received[0].header("authorization"), None);
    assert_eq!(received[0].header("api-key"), None);
}

#[tokio::test]
async fn rate_limited_with_retry_after() {
    let e = complete_err(respond(
        429,
        &[("content-type", "application/json"), ("retry-after", "2")],
        r#"{"error":{"code":429,"message":"slow down"}}"#,
    ))
    .await;
    assert!(
        matches!(e, UpstreamError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(2)),
        "{e:?}"
    );
    assert!(e.is_retryable());
    assert_eq!(e.retry_after(), Some(Duration::from_secs(2)));
}

#[tokio::test]
async fn server_error() {
    let e = complete_err(respond(
        503,
        &[("content-type", "text/plain")],
        "unavailable",
    ))
    .await;
    assert!(
        matches!(
            e,
            UpstreamError::Server {
                status: 503,
                retry_after: None
            }
        ),
        "{e:?}"
    );
    assert!(e.is_retryable() && e.may_fall_back());
}

#[tokio::test]
async fn bad_request_is_rejected_with_its_body() {
    let body = r#"{"error":{"code":400,"message":"messages: field required"}}"#;
    let e = complete_err(respond(400, &[("content-type", "application/json")], body)).await;
    match &e {
        UpstreamError::Rejected {
            status,
            content_type,
            body: got,
        } => {
            assert_eq!(*status, 400);
            assert_eq!(content_type, "application/json");
            assert_eq!(&got[..], body.as_bytes());
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert!(!e.is_retryable() && !e.may_fall_back());
}

#[tokio::test]
async fn unauthorized_is_auth() {
    let e = complete_err(respond(401, &[], r#"{"error":{"message":"no key"}}"#)).await;
    assert!(matches!(e, UpstreamError::Auth { status: 401 }), "{e:?}");
    assert!(!e.is_retryable() && e.may_fall_back() && !e.counts_against_model());
}

#[tokio::test]
async fn truncated_json_is_malformed() {
    let e = complete_err(respond(
        200,
        &[("content-type", "application/json")],
        &ANSWER[..ANSWER.len() / 2],
    ))
    .await;
    assert!(
        matches!(e, UpstreamError::Malformed { usage: None, .. }),
        "{e:?}"
    );
    assert!(e.is_retryable());
}

#[tokio::test]
async fn an_error_object_in_a_200_is_mapped_by_its_code() {
    let e = complete_err(respond(
        200,
        &[("content-type", "application/json")],
        r#"{"error":{"code":502,"message":"upstream provider error"}}"#,
    ))
    .await;
    assert!(
        matches!(e, UpstreamError::Server { status: 502, .. }),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_hung_server_is_a_read_timeout_within_the_deadline() {
    let server = scripted(Reply::Hang(Duration::from_secs(10)));
    let up = upstream_at(server.url(), &UpstreamSettings::default());
    let deadline = Duration::from_millis(800);
    let started = Instant::now();
    let e = match up.complete(call(deadline)).await {
        Ok(c) => panic!("a hung server answered: {c:?}"),
        Err(e) => e,
    };
    let took = started.elapsed();
    assert!(matches!(e, UpstreamError::ReadTimeout), "{e:?}");
    assert!(took >= deadline, "gave up early: {took:?}");
    assert!(
        took < deadline + Duration::from_millis(400),
        "gave up late: {took:?}"
    );
    // The request did reach the server (the timeout is a read timeout, not a connect one).
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn connection_refused_is_connect() {
    // A port that was just free: nothing listens on it.
    let port = match TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(a) => a.port(),
        Err(e) => panic!("cannot bind loopback: {e}"),
    };
    let up = upstream_at(
        &format!("http://127.0.0.1:{port}/v1"),
        &UpstreamSettings::default(),
    );
    let started = Instant::now();
    match up.complete(call(Duration::from_secs(5))).await {
        Err(UpstreamError::Connect) => {}
        other => panic!("expected Connect, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    match up.stream(call(Duration::from_secs(5))).await {
        Err(UpstreamError::Connect) => {}
        other => panic!("expected Connect, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unknown_provider_is_refused_without_a_request() {
    let server = scripted(respond(200, &[], ANSWER));
    let up = upstream_at(server.url(), &UpstreamSettings::default());
    let mut c = call(Duration::from_secs(2));
    c.provider = "nobody";
    let e = match up.complete(c).await {
        Ok(c) => panic!("answered for an unknown provider: {c:?}"),
        Err(e) => e,
    };
    assert!(!e.is_retryable() && e.may_fall_back(), "{e:?}");
    assert!(server.received().is_empty());
}

// ---- streams: chunked bodies written with pauses ----

/// A server answering `status` with `content_type` and a chunked body written step by step.
fn chunked(status: u16, content_type: &str, steps: Vec<Step>) -> ScriptedServer {
    scripted(Reply::Chunked {
        status,
        content_type: content_type.to_string(),
        steps,
    })
}

/// An event stream of these steps.
fn event_stream(steps: Vec<Step>) -> ScriptedServer {
    chunked(200, "text/event-stream", steps)
}

fn chunk(text: &str) -> Step {
    Step::Chunk(text.to_string())
}

/// The client of a chunked server (its base URL ends in `/v1`).
fn upstream_of(server: &ScriptedServer, settings: &UpstreamSettings) -> HttpUpstream {
    upstream_at(&format!("{}/v1", server.url()), settings)
}

async fn open_stream(up: &HttpUpstream) -> ChatStream {
    match up.stream(call(Duration::from_secs(5))).await {
        Ok(s) => s,
        Err(e) => panic!("stream failed: {e:?}"),
    }
}

async fn stream_err(server: ScriptedServer) -> UpstreamError {
    let up = upstream_of(&server, &UpstreamSettings::default());
    match up.stream(call(Duration::from_secs(5))).await {
        Ok(s) => panic!("expected an error, got {s:?}"),
        Err(e) => e,
    }
}

const CHUNK_1: &str =
    "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"Par\"}}]}\n\n";
const CHUNK_2: &str = "data: {\"choices\":[{\"delta\":{\"content\":\"is.\"}}]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":14,";
const CHUNK_3: &str = "\"completion_tokens\":2,\"completion_tokens_details\":{\"reasoning_tokens\":1}}}\n\ndata: [DONE]\n\n";

#[tokio::test]
async fn a_stream_passes_through_and_the_tap_reads_its_usage() {
    let server = event_stream(vec![
        chunk(": OPENROUTER PROCESSING\n\n"),
        Step::Sleep(Duration::from_millis(50)),
        chunk(CHUNK_1),
        Step::Sleep(Duration::from_millis(50)),
        chunk(CHUNK_2),
        Step::Sleep(Duration::from_millis(50)),
        chunk(CHUNK_3),
    ]);
    let up = upstream_of(&server, &settings(Duration::from_secs(2)));
    let mut s = open_stream(&up).await;
    assert_eq!(s.status, 200);
    assert_eq!(s.content_type, "text/event-stream");
    assert!(!s.first.is_empty());
    assert!(s.first_byte_ms > 0.0);
    let mut all = s.first.to_vec();
    let mut tap = SseTap::new();
    tap.feed(&s.first);
    while let Some(chunk) = next(&mut s.rest).await {
        match chunk {
            Ok(b) => {
                tap.feed(&b);
                all.extend_from_slice(&b);
            }
            Err(e) => panic!("stream broke: {e:?}"),
        }
    }
    let expected = format!(": OPENROUTER PROCESSING\n\n{CHUNK_1}{CHUNK_2}{CHUNK_3}");
    assert_eq!(String::from_utf8_lossy(&all), expected);
    assert!(tap.done());
    assert!(!tap.malformed());
    assert_eq!(tap.error(), None);
    assert_eq!(tap.content(), "Paris.");
    assert_eq!(tap.events(), 4);
    assert_eq!(
        tap.usage(),
        Some(Usage {
            prompt_tokens: 14,
            completion_tokens: 2,
            reasoning_tokens: Some(1),
            cached_tokens: None,
        })
    );
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].method, "POST");
    assert_eq!(received[0].path, "/v1/chat/completions");
    assert_eq!(
        received[0].header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
}

#[tokio::test]
async fn a_stalled_stream_gives_its_first_bytes_then_a_read_timeout() {
    let read_timeout = Duration::from_millis(300);
    let server = event_stream(vec![
        chunk(CHUNK_1),
        Step::Sleep(Duration::from_secs(3)),
        chunk(CHUNK_2),
    ]);
    let up = upstream_of(&server, &settings(read_timeout));
    let mut s = open_stream(&up).await;
    assert_eq!(&s.first[..], CHUNK_1.as_bytes());
    let started = Instant::now();
    match next(&mut s.rest).await {
        Some(Err(UpstreamError::ReadTimeout)) => {}
        other => panic!("expected a read timeout, got {other:?}"),
    }
    let took = started.elapsed();
    assert!(
        took >= read_timeout && took < read_timeout + Duration::from_millis(400),
        "{took:?}"
    );
    assert!(
        next(&mut s.rest).await.is_none(),
        "the stream goes on after a timeout"
    );
}

#[tokio::test]
async fn a_stream_without_first_bytes_in_time_is_a_read_timeout() {
    let server = event_stream(vec![Step::Sleep(Duration::from_secs(3)), chunk(CHUNK_1)]);
    let up = upstream_of(&server, &settings(Duration::from_secs(10)));
    let deadline = Duration::from_millis(500);
    let started = Instant::now();
    match up.stream(call(deadline)).await {
        Err(UpstreamError::ReadTimeout) => {}
        other => panic!("expected a read timeout, got {other:?}"),
    }
    let took = started.elapsed();
    assert!(
        took >= deadline && took < deadline + Duration::from_millis(400),
        "{took:?}"
    );
}

#[tokio::test]
async fn a_streamed_call_refused_by_the_provider_is_classified() {
    let slow_down = r#"{"error":{"code":429,"message":"slow down"}}"#;
    match stream_err(chunked(429, "application/json", vec![chunk(slow_down)])).await {
        UpstreamError::RateLimited { retry_after: None } => {}
        other => panic!("expected RateLimited, got {other:?}"),
    }
    // OpenRouter may answer a streamed call with a 200 JSON error object.
    let no_provider = r#"{"error":{"code":503,"message":"no provider"}}"#;
    match stream_err(chunked(200, "application/json", vec![chunk(no_provider)])).await {
        UpstreamError::Server { status: 503, .. } => {}
        other => panic!("expected Server 503, got {other:?}"),
    }
}
