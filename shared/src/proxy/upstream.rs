//! The OpenAI-compatible upstream client: one chat-completions call to a provider (OpenRouter
//! or any OpenAI-compatible base URL), buffered or streamed, with every failure classified so
//! the proxy can decide between retrying, falling back to another model, and answering the
//! caller. Also the provider's `usage`, read from a completion or the last stream chunk.
//!
//! The proxy ([`crate::proxy::chain`]) and the evaluator only see the [`ChatUpstream`] trait; the
//! HTTP implementation is [`HttpUpstream`] (reqwest, rustls). API keys live in [`ApiKey`],
//! whose `Debug` never shows them. A streamed answer is read as it passes through the proxy
//! by [`SseTap`] (usage, `[DONE]`, errors, the answer text for the shadow sample).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use serde_json::Value;

/// Token usage as the provider reported it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// `completion_tokens_details.reasoning_tokens` (part of `completion_tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
    /// `prompt_tokens_details.cached_tokens` (part of `prompt_tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<u64>,
}

/// An upstream call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    /// 429: slow down (`Retry-After` when the provider gave one).
    #[error("rate limited (429)")]
    RateLimited { retry_after: Option<Duration> },
    /// 5xx (and 408): the provider failed; `Retry-After` when given.
    #[error("provider error ({status})")]
    Server {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// No connection within the connect timeout.
    #[error("connect timeout")]
    ConnectTimeout,
    /// Connected, but no (complete) answer in time: headers, first byte or the next chunk.
    #[error("read timeout")]
    ReadTimeout,
    /// The connection failed (refused, reset, TLS).
    #[error("connection failed")]
    Connect,
    /// A 2xx answer that is not a chat completion (truncated JSON, wrong shape, broken
    /// stream framing). The provider may have billed it: `usage` when it could be read.
    #[error("malformed answer: {detail}")]
    Malformed {
        detail: String,
        usage: Option<Usage>,
    },
    /// 401 / 402 / 403: the provider refused our key or account; another provider may work,
    /// the same one will not.
    #[error("provider refused the credentials ({status})")]
    Auth { status: u16 },
    /// 400 / 404 / 413 / 422 ...: the request itself is wrong (the caller's fault). Returned to
    /// the caller as the provider sent it; never retried.
    #[error("request rejected by the provider ({status})")]
    Rejected {
        status: u16,
        content_type: String,
        body: Bytes,
    },
}

impl UpstreamError {
    /// Whether the same model may answer if asked again (after a backoff).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            UpstreamError::RateLimited { .. }
                | UpstreamError::Server { .. }
                | UpstreamError::ConnectTimeout
                | UpstreamError::ReadTimeout
                | UpstreamError::Connect
                | UpstreamError::Malformed { .. }
        )
    }

    /// Whether another model may answer (everything but the caller's own mistakes).
    pub fn may_fall_back(&self) -> bool {
        !matches!(self, UpstreamError::Rejected { .. })
    }

    /// Whether the failure says something about the model's health (counts for its circuit
    /// breaker): the caller's mistakes and our credentials do not.
    pub fn counts_against_model(&self) -> bool {
        self.is_retryable()
    }

    /// The provider's `Retry-After`, when it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            UpstreamError::RateLimited { retry_after }
            | UpstreamError::Server { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// HTTP status the provider answered with, when it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            UpstreamError::RateLimited { .. } => Some(429),
            UpstreamError::Server { status, .. }
            | UpstreamError::Auth { status }
            | UpstreamError::Rejected { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Short machine-readable kind, for records, logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            UpstreamError::RateLimited { .. } => "rate_limited",
            UpstreamError::Server { .. } => "server_error",
            UpstreamError::ConnectTimeout => "connect_timeout",
            UpstreamError::ReadTimeout => "read_timeout",
            UpstreamError::Connect => "connect_error",
            UpstreamError::Malformed { .. } => "malformed",
            UpstreamError::Auth { .. } => "auth",
            UpstreamError::Rejected { .. } => "rejected",
        }
    }

    /// Usage the provider reported with a failed answer (it may have billed it).
    pub fn usage(&self) -> Option<Usage> {
        match self {
            UpstreamError::Malformed { usage, .. } => *usage,
            _ => None,
        }
    }
}

/// A buffered chat completion, as the provider sent it.
#[derive(Debug, Clone)]
pub struct Completion {
    pub status: u16,
    pub content_type: String,
    /// The body exactly as received (returned to the caller unchanged).
    pub body: Bytes,
    /// The body parsed (checked to be an object with a `choices` array).
    pub json: Value,
    pub usage: Option<Usage>,
    /// Milliseconds from sending the request to the whole body received.
    pub elapsed_ms: f64,
}

/// The rest of a streamed answer: raw bytes of the event stream, as received.
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<Bytes, UpstreamError>> + Send>>;

/// A streamed chat completion whose headers and first bytes have arrived (so a failure before
/// them can still fall back to another model).
pub struct ChatStream {
    pub status: u16,
    pub content_type: String,
    /// The first bytes of the event stream.
    pub first: Bytes,
    /// The rest; ends after the provider's `data: [DONE]` (or the connection's end).
    pub rest: ChunkStream,
    /// Milliseconds from sending the request to the first bytes.
    pub first_byte_ms: f64,
}

impl std::fmt::Debug for ChatStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatStream")
            .field("status", &self.status)
            .field("first", &self.first.len())
            .finish_non_exhaustive()
    }
}

/// One chat-completions call: which provider, the body to send (the caller's request with
/// the routed model set), and the time it may take at most (whole call for a buffered
/// answer; up to the first bytes for a stream).
#[derive(Debug, Clone)]
pub struct ChatCall<'a> {
    /// Provider name, a key of the pool's `[providers]`.
    pub provider: &'a str,
    pub body: Bytes,
    pub deadline: Duration,
}

/// Anything that answers chat-completion calls: the providers over HTTP, or a test double.
pub trait ChatUpstream: Send + Sync {
    /// A buffered call (`stream` absent or false in the body).
    fn complete(
        &self,
        call: ChatCall<'_>,
    ) -> impl Future<Output = Result<Completion, UpstreamError>> + Send;

    /// A streamed call (`stream: true` in the body); returns once the first bytes arrived.
    fn stream(
        &self,
        call: ChatCall<'_>,
    ) -> impl Future<Output = Result<ChatStream, UpstreamError>> + Send;
}

/// An API key; `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into())
    }

    /// The key, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

/// A provider endpoint with its key.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Base URL, e.g. `https://openrouter.ai/api/v1` (`/chat/completions` is appended).
    pub base_url: String,
    pub key: ApiKey,
}

/// The providers by name.
pub type Endpoints = BTreeMap<String, Endpoint>;

// ---------------------------------------------------------------------------------------------
// The HTTP implementation.
// ---------------------------------------------------------------------------------------------

/// Error bodies (non-2xx) are kept up to this many bytes (the rest is dropped).
pub const MAX_ERROR_BODY: usize = 64 * 1024;
/// A buffered completion larger than this is refused as [`UpstreamError::Malformed`].
pub const MAX_COMPLETION_BODY: usize = 32 * 1024 * 1024;

/// Timeouts and pooling of the HTTP client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamSettings {
    /// Time allowed to open the TCP (and TLS) connection. Default 2 s.
    pub connect_timeout: Duration,
    /// Idle time allowed between received bytes once the answer started: between the chunks
    /// of a stream after the first, and between body chunks of a buffered answer after its
    /// headers. Waiting for the headers (and a stream's first bytes) is bounded by the call's
    /// deadline only, so a slow non-streamed generation is not cut short. Default 30 s.
    pub read_timeout: Duration,
    /// How long an idle pooled connection is kept for reuse. Default 90 s.
    pub pool_idle_timeout: Duration,
}

impl Default for UpstreamSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(2),
            read_timeout: Duration::from_secs(30),
            pool_idle_timeout: Duration::from_secs(90),
        }
    }
}

/// The HTTP client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamInitError {
    /// A provider's base URL is not an absolute http(s) URL.
    #[error("provider {provider}: base URL {url:?} is not usable: {reason}")]
    BadBaseUrl {
        provider: String,
        url: String,
        reason: String,
    },
    /// A provider's key cannot be sent in a header (control characters, ...).
    #[error("provider {provider}: the API key is not a valid header value")]
    BadKey { provider: String },
    /// reqwest refused to build the client (TLS set-up).
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// One provider, ready to call.
struct Target {
    base_url: String,
    url: reqwest::Url,
    /// `Bearer <key>`, marked sensitive.
    auth: HeaderValue,
}

/// The providers over HTTP: one pooled reqwest client (rustls, webpki roots) shared by all.
///
/// `Debug` shows the providers and their base URLs, never a key.
pub struct HttpUpstream {
    client: reqwest::Client,
    targets: BTreeMap<String, Target>,
    read_timeout: Duration,
}

impl std::fmt::Debug for HttpUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let providers: BTreeMap<&str, &str> = self
            .targets
            .iter()
            .map(|(k, t)| (k.as_str(), t.base_url.as_str()))
            .collect();
        f.debug_struct("HttpUpstream")
            .field("providers", &providers)
            .field("read_timeout", &self.read_timeout)
            .finish_non_exhaustive()
    }
}

impl HttpUpstream {
    /// Builds the client once; checks every base URL and key.
    pub fn new(
        endpoints: Endpoints,
        settings: &UpstreamSettings,
    ) -> Result<HttpUpstream, UpstreamInitError> {
        let mut targets = BTreeMap::new();
        for (provider, endpoint) in endpoints {
            let base_url = endpoint.base_url.trim().trim_end_matches('/').to_string();
            let bad = |reason: String| UpstreamInitError::BadBaseUrl {
                provider: provider.clone(),
                url: endpoint.base_url.clone(),
                reason,
            };
            let url = reqwest::Url::parse(&format!("{base_url}/chat/completions"))
                .map_err(|e| bad(e.to_string()))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(bad(format!("scheme {:?} is not http(s)", url.scheme())));
            }
            if url.host_str().is_none_or(str::is_empty) {
                return Err(bad("no host".into()));
            }
            if url.query().is_some() || url.fragment().is_some() {
                return Err(bad("a query or fragment is not allowed".into()));
            }
            let mut auth = HeaderValue::from_str(&format!("Bearer {}", endpoint.key.expose()))
                .map_err(|_| UpstreamInitError::BadKey {
                    provider: provider.clone(),
                })?;
            auth.set_sensitive(true);
            targets.insert(
                provider,
                Target {
                    base_url,
                    url,
                    auth,
                },
            );
        }
        let client = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .pool_idle_timeout(settings.pool_idle_timeout)
            // A POST must not turn into a GET elsewhere: a 3xx is an answer (a misconfigured
            // base URL), not something to follow.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tierwise/", env!("CARGO_PKG_VERSION")))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| UpstreamInitError::Client(e.to_string()))?;
        Ok(HttpUpstream {
            client,
            targets,
            read_timeout: settings.read_timeout,
        })
    }

    /// The provider names this client can call.
    pub fn providers(&self) -> impl Iterator<Item = &str> {
        self.targets.keys().map(String::as_str)
    }

    /// Sends the request and waits for the response headers, until `deadline`.
    async fn send(
        &self,
        call: &ChatCall<'_>,
        deadline: tokio::time::Instant,
    ) -> Result<reqwest::Response, UpstreamError> {
        let Some(target) = self.targets.get(call.provider) else {
            // A configuration error, not the model's fault and not the caller's: the same
            // provider will never work, another one may (hence `Auth`, status 0).
            tracing::error!(provider = call.provider, "unknown upstream provider");
            return Err(UpstreamError::Auth { status: 0 });
        };
        let request = self
            .client
            .post(target.url.clone())
            .header(AUTHORIZATION, target.auth.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header("x-title", HeaderValue::from_static("tierwise"))
            .body(call.body.clone());
        match tokio::time::timeout_at(deadline, request.send()).await {
            // The deadline fired first: connecting or waiting for the headers (reqwest does
            // not tell which; the connect timeout is normally much shorter than a deadline).
            Err(_) => Err(UpstreamError::ReadTimeout),
            Ok(Err(e)) => Err(transport_error(&e)),
            Ok(Ok(response)) => Ok(response),
        }
    }

    /// Reads a non-2xx answer's body (bounded in size and by `deadline`) and classifies it.
    /// Sends the call; a non-2xx answer is read (bounded) and classified into the error.
    async fn open(
        &self,
        call: &ChatCall<'_>,
        deadline: tokio::time::Instant,
    ) -> Result<reqwest::Response, UpstreamError> {
        let response = self.send(call, deadline).await?;
        if response.status().is_success() {
            return Ok(response);
        }
        let error = self.failed(response, deadline).await;
        tracing::debug!(
            provider = call.provider,
            kind = error.kind(),
            "upstream error"
        );
        Err(error)
    }

    async fn failed(
        &self,
        response: reqwest::Response,
        deadline: tokio::time::Instant,
    ) -> UpstreamError {
        let status = response.status().as_u16();
        let (retry_after, content_type) = head_of(response.headers());
        let mut body = response.bytes_stream();
        let mut kept = Vec::new();
        while kept.len() < MAX_ERROR_BODY {
            match tokio::time::timeout_at(deadline, body.next()).await {
                Ok(Some(Ok(chunk))) => {
                    let room = MAX_ERROR_BODY - kept.len();
                    kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                // The status says enough; keep what arrived.
                Ok(Some(Err(_))) | Ok(None) | Err(_) => break,
            }
        }
        error_for_status(status, retry_after, content_type, Bytes::from(kept))
    }
}

/// `POST {base_url}/chat/completions` with `authorization: Bearer <key>`, `content-type:
/// application/json`, `x-title: tierwise` and the call's body as is.
///
/// - `complete`: headers and body within the call's deadline (and at most `read_timeout`
///   between body chunks); the 2xx body must be a JSON object with `choices` (see
///   [`check_completion`]); non-2xx answers are classified by [`error_for_status`].
/// - `stream`: headers and the first non-empty chunk within the deadline, then each further
///   chunk within `read_timeout`. A 2xx `application/json` answer (no event stream) is read
///   whole: an error object is classified as for `complete`; anything else that is a
///   completion comes back as `first` with an empty `rest`.
/// - A deadline that fires before the headers is a `ReadTimeout` (reqwest cannot tell whether
///   the connection was up); a connect that fails by itself within `connect_timeout` is
///   `ConnectTimeout`; refused / reset / TLS failures are `Connect`.
/// - A provider name absent from the endpoints is `Auth { status: 0 }` (a configuration
///   error: not retryable, another provider may work), logged.
impl ChatUpstream for HttpUpstream {
    async fn complete(&self, call: ChatCall<'_>) -> Result<Completion, UpstreamError> {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + call.deadline;
        let response = self.open(&call, deadline).await?;
        let status = response.status().as_u16();
        let (retry_after, content_type) = head_of(response.headers());
        let mut stream = response.bytes_stream();
        let mut body = Vec::new();
        loop {
            let idle = (tokio::time::Instant::now() + self.read_timeout).min(deadline);
            match tokio::time::timeout_at(idle, stream.next()).await {
                Err(_) => return Err(UpstreamError::ReadTimeout),
                Ok(None) => break,
                // A 2xx answer that broke off mid-body (truncated): generated, and likely
                // billed, but unusable.
                Ok(Some(Err(e))) if !e.is_timeout() => {
                    return Err(UpstreamError::Malformed {
                        detail: format!("the answer broke off after {} bytes", body.len()),
                        usage: None,
                    });
                }
                Ok(Some(Err(e))) => return Err(transport_error(&e)),
                Ok(Some(Ok(chunk))) => {
                    if body.len() + chunk.len() > MAX_COMPLETION_BODY {
                        return Err(UpstreamError::Malformed {
                            detail: format!("answer larger than {MAX_COMPLETION_BODY} bytes"),
                            usage: None,
                        });
                    }
                    body.extend_from_slice(&chunk);
                }
            }
        }
        let body = Bytes::from(body);
        let json = check_completion(&body, retry_after)?;
        let usage = usage_of(&json);
        Ok(Completion {
            status,
            content_type,
            body,
            json,
            usage,
            elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
        })
    }

    async fn stream(&self, call: ChatCall<'_>) -> Result<ChatStream, UpstreamError> {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + call.deadline;
        let response = self.open(&call, deadline).await?;
        let status = response.status().as_u16();
        let (retry_after, content_type) = head_of(response.headers());
        let json_answer = content_type
            .split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
        let mut body = Box::pin(response.bytes_stream());
        if json_answer {
            // Not an event stream: an error object in a 2xx (OpenRouter does this), or a
            // buffered answer. Read it whole (bounded) and look.
            let mut whole = Vec::new();
            loop {
                match tokio::time::timeout_at(deadline, body.next()).await {
                    Err(_) => return Err(UpstreamError::ReadTimeout),
                    Ok(None) => break,
                    Ok(Some(Err(e))) => return Err(transport_error(&e)),
                    Ok(Some(Ok(chunk))) => {
                        if whole.len() + chunk.len() > MAX_COMPLETION_BODY {
                            return Err(UpstreamError::Malformed {
                                detail: format!("answer larger than {MAX_COMPLETION_BODY} bytes"),
                                usage: None,
                            });
                        }
                        whole.extend_from_slice(&chunk);
                    }
                }
            }
            let whole = Bytes::from(whole);
            check_completion(&whole, retry_after)?;
            return Ok(ChatStream {
                status,
                content_type,
                first: whole,
                rest: Box::pin(futures_util::stream::empty()),
                first_byte_ms: started.elapsed().as_secs_f64() * 1000.0,
            });
        }
        let first = loop {
            match tokio::time::timeout_at(deadline, body.next()).await {
                Err(_) => return Err(UpstreamError::ReadTimeout),
                Ok(None) => {
                    return Err(UpstreamError::Malformed {
                        detail: "the stream ended before any data".into(),
                        usage: None,
                    });
                }
                Ok(Some(Err(e))) => return Err(transport_error(&e)),
                Ok(Some(Ok(chunk))) if chunk.is_empty() => continue,
                Ok(Some(Ok(chunk))) => break chunk,
            }
        };
        Ok(ChatStream {
            status,
            content_type,
            first,
            rest: idle_bounded(body, self.read_timeout),
            first_byte_ms: started.elapsed().as_secs_f64() * 1000.0,
        })
    }
}

/// The next chunk of a stream (for callers without `futures_util::StreamExt` at hand).
pub async fn next_chunk(rest: &mut ChunkStream) -> Option<Result<Bytes, UpstreamError>> {
    rest.next().await
}

/// The rest of a stream, each chunk within `read_timeout` of the previous one; the first
/// failure (`ReadTimeout`, or `Connect` for a transport error) is yielded, then the stream
/// ends.
fn idle_bounded<S>(inner: Pin<Box<S>>, read_timeout: Duration) -> ChunkStream
where
    S: Stream<Item = Result<Bytes, reqwest::Error>> + Send + 'static,
{
    Box::pin(futures_util::stream::unfold(
        Some(inner),
        move |state| async move {
            let mut inner = state?;
            loop {
                return match tokio::time::timeout(read_timeout, inner.next()).await {
                    Err(_) => Some((Err(UpstreamError::ReadTimeout), None)),
                    Ok(None) => None,
                    Ok(Some(Err(e))) => Some((Err(transport_error(&e)), None)),
                    Ok(Some(Ok(chunk))) if chunk.is_empty() => continue,
                    Ok(Some(Ok(chunk))) => Some((Ok(chunk), Some(inner))),
                };
            }
        },
    ))
}

/// A reqwest failure: connect (timeout or not), read timeout, or a broken connection.
fn transport_error(e: &reqwest::Error) -> UpstreamError {
    if e.is_connect() {
        if e.is_timeout() {
            UpstreamError::ConnectTimeout
        } else {
            UpstreamError::Connect
        }
    } else if e.is_timeout() {
        UpstreamError::ReadTimeout
    } else {
        // Reset, closed mid-body, TLS, protocol errors.
        UpstreamError::Connect
    }
}

/// `Retry-After` and `Content-Type` of a response (content type defaults to JSON).
fn head_of(headers: &HeaderMap) -> (Option<Duration>, String) {
    let retry_after = headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    (retry_after, content_type)
}

/// Classifies a non-2xx answer: 429 -> `RateLimited`; 408 and 5xx -> `Server`; 401 / 402 /
/// 403 -> `Auth`; any other 4xx -> `Rejected` (with the body as received); anything else a
/// provider should not send (1xx, 3xx — redirects are not followed) -> `Server`.
pub fn error_for_status(
    status: u16,
    retry_after: Option<Duration>,
    content_type: String,
    body: Bytes,
) -> UpstreamError {
    match status {
        429 => UpstreamError::RateLimited { retry_after },
        401..=403 => UpstreamError::Auth { status },
        408 => UpstreamError::Server {
            status,
            retry_after,
        },
        400..=499 => UpstreamError::Rejected {
            status,
            content_type,
            body,
        },
        _ => UpstreamError::Server {
            status,
            retry_after,
        },
    }
}

/// Checks a 2xx body: a JSON object with a `choices` array. A JSON `error` object without
/// `choices` (OpenRouter answers some failures with a 200) is mapped by its `error.code`:
/// 429 -> `RateLimited`, 408 / 5xx -> `Server`, anything else -> `Malformed`.
pub fn check_completion(
    body: &[u8],
    retry_after: Option<Duration>,
) -> Result<Value, UpstreamError> {
    let json: Value = serde_json::from_slice(body).map_err(|e| UpstreamError::Malformed {
        detail: format!("not JSON: {e}"),
        usage: None,
    })?;
    if !json.is_object() {
        return Err(UpstreamError::Malformed {
            detail: "not a JSON object".into(),
            usage: None,
        });
    }
    if json.get("choices").is_some_and(Value::is_array) {
        return Ok(json);
    }
    let usage = usage_of(&json);
    if let Some(error) = json.get("error").filter(|e| e.is_object()) {
        let code = match error.get("code") {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        let code = code.and_then(|c| u16::try_from(c).ok());
        match code {
            Some(429) => return Err(UpstreamError::RateLimited { retry_after }),
            Some(status @ (408 | 500..=599)) => {
                return Err(UpstreamError::Server {
                    status,
                    retry_after,
                });
            }
            _ => {}
        }
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("no message");
        return Err(UpstreamError::Malformed {
            detail: format!(
                "error object in a 2xx answer (code {}): {}",
                code.map_or_else(|| "none".to_string(), |c| c.to_string()),
                truncate(message, 500)
            ),
            usage,
        });
    }
    Err(UpstreamError::Malformed {
        detail: "no choices array".into(),
        usage,
    })
}

/// `value` cut at a char boundary at most `max` bytes long.
fn truncate(value: &str, max: usize) -> &str {
    if value.len() <= max {
        return value;
    }
    let mut end = max;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

/// Parses a `Retry-After` value: delay seconds (integer or decimal, as some providers send)
/// or an HTTP date in the preferred IMF-fixdate form (`Sun, 06 Nov 1994 08:49:37 GMT`; the
/// obsolete RFC 850 and asctime forms are not read). A date in the past is a zero delay.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse::<u64>().ok().map(Duration::from_secs);
    }
    if value.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let secs: f64 = value.parse().ok()?;
        return Duration::try_from_secs_f64(secs).ok();
    }
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let at = time::PrimitiveDateTime::parse(value, format)
        .ok()?
        .assume_utc();
    let at = SystemTime::from(at);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A token count: a non-negative integer (also accepted as an integral float).
fn count(v: Option<&Value>) -> Option<u64> {
    let v = v?;
    v.as_u64().or_else(|| {
        v.as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0 && f.fract() == 0.0 && *f < 9.0e15)
            .map(|f| f as u64)
    })
}

/// The `usage` of a completion or stream chunk: `prompt_tokens`, `completion_tokens` (or
/// Anthropic-style `input_tokens` / `output_tokens`),
/// `completion_tokens_details.reasoning_tokens`, `prompt_tokens_details.cached_tokens` (or
/// `cache_read_input_tokens`). `None` when absent, `null`, or without any token count.
pub fn usage_of(v: &Value) -> Option<Usage> {
    let usage = v.get("usage").filter(|u| u.is_object())?;
    let prompt = count(usage.get("prompt_tokens")).or_else(|| count(usage.get("input_tokens")));
    let completion =
        count(usage.get("completion_tokens")).or_else(|| count(usage.get("output_tokens")));
    if prompt.is_none() && completion.is_none() {
        return None;
    }
    let reasoning_tokens = count(
        usage
            .get("completion_tokens_details")
            .and_then(|d| d.get("reasoning_tokens")),
    );
    let cached_tokens = count(
        usage
            .get("prompt_tokens_details")
            .and_then(|d| d.get("cached_tokens")),
    )
    .or_else(|| count(usage.get("cache_read_input_tokens")));
    Some(Usage {
        prompt_tokens: prompt.unwrap_or(0),
        completion_tokens: completion.unwrap_or(0),
        reasoning_tokens,
        cached_tokens,
    })
}

/// The answer of a buffered completion: `choices[0].message.content`, a string or an array
/// of `{type: "text", text}` parts (joined). `None` when absent, `null`, or without text.
pub fn answer_text(completion: &Value) -> Option<String> {
    let content = completion
        .get("choices")?
        .get(0)?
        .get("message")?
        .get("content")?;
    match content {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => {
            let texts: Vec<&str> = parts
                .iter()
                .filter(|p| {
                    p.get("type")
                        .and_then(Value::as_str)
                        .is_none_or(|t| t == "text")
                })
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect();
            (!texts.is_empty()).then(|| texts.concat())
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Reading a stream as it passes through.
// ---------------------------------------------------------------------------------------------

/// At most this much of the streamed answer is kept by [`SseTap::content`].
pub const SSE_CONTENT_CAP: usize = 64 * 1024;
/// A line longer than this is skipped (counted as an event, not read).
pub const SSE_LINE_CAP: usize = 1024 * 1024;

/// An incremental reader of an OpenAI-style server-sent-event stream, fed the raw chunks as
/// they pass through the proxy (split anywhere: inside a line, a `\r\n` or a UTF-8
/// sequence). It keeps only the current partial line (at most [`SSE_LINE_CAP`]) and the
/// first [`SSE_CONTENT_CAP`] bytes of the answer.
///
/// Each `data:` line is one event (OpenAI-style streams never split an event's JSON over
/// several `data:` lines); comments (`: ...`) and other fields are ignored.
#[derive(Debug, Default, Clone)]
pub struct SseTap {
    line: Vec<u8>,
    /// The current line overflowed [`SSE_LINE_CAP`]: skip to its end.
    skipping: bool,
    /// The previous byte was a `\r` (a following `\n` belongs to the same line break).
    after_cr: bool,
    /// At the first line (a leading BOM is dropped).
    started: bool,
    usage: Option<Usage>,
    done: bool,
    error: Option<String>,
    events: u64,
    content: String,
    malformed: bool,
}

impl SseTap {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next raw bytes of the stream.
    pub fn feed(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        while !rest.is_empty() {
            if self.after_cr {
                self.after_cr = false;
                if rest[0] == b'\n' {
                    rest = &rest[1..];
                    continue;
                }
            }
            match rest.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(i) => {
                    self.push(&rest[..i]);
                    self.after_cr = rest[i] == b'\r';
                    rest = &rest[i + 1..];
                    self.end_line();
                }
                None => {
                    self.push(rest);
                    rest = &[];
                }
            }
        }
    }

    /// Reads a last line that had no line break (call once the stream ended; optional).
    pub fn finish(&mut self) {
        if !self.line.is_empty() || self.skipping {
            self.end_line();
        }
    }

    /// The last `usage` seen in an event.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// Whether `data: [DONE]` was seen.
    pub fn done(&self) -> bool {
        self.done
    }

    /// The message of the first event that carried an `error` object.
    pub fn error(&self) -> Option<String> {
        self.error.clone()
    }

    /// The number of `data:` lines seen (including `[DONE]`).
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The streamed answer: `choices[0].delta.content` concatenated, cut at
    /// [`SSE_CONTENT_CAP`] bytes.
    pub fn content(&self) -> String {
        self.content.clone()
    }

    /// Whether a `data:` line was neither JSON nor `[DONE]`.
    pub fn malformed(&self) -> bool {
        self.malformed
    }

    fn push(&mut self, bytes: &[u8]) {
        if self.skipping {
            return;
        }
        if self.line.len() + bytes.len() > SSE_LINE_CAP {
            self.skipping = true;
            self.line = Vec::new();
            return;
        }
        self.line.extend_from_slice(bytes);
    }

    fn end_line(&mut self) {
        let line = std::mem::take(&mut self.line);
        let first = !self.started;
        self.started = true;
        if std::mem::take(&mut self.skipping) {
            tracing::debug!("stream line over {SSE_LINE_CAP} bytes skipped");
            self.events += 1;
            return;
        }
        let mut line = line.as_slice();
        if first {
            line = line.strip_prefix("\u{feff}".as_bytes()).unwrap_or(line);
        }
        let Some(data) = line.strip_prefix(b"data:") else {
            // Blank lines, comments (`: OPENROUTER PROCESSING`), `event:`, `id:`, `retry:`.
            return;
        };
        let data = data.strip_prefix(b" ").unwrap_or(data);
        self.events += 1;
        if data.trim_ascii() == b"[DONE]" {
            self.done = true;
            return;
        }
        let Ok(event) = serde_json::from_slice::<Value>(data) else {
            self.malformed = true;
            return;
        };
        if let Some(usage) = usage_of(&event) {
            self.usage = Some(usage);
        }
        if let Some(error) = event.get("error").filter(|e| e.is_object())
            && self.error.is_none()
        {
            let message = match error.get("message").and_then(Value::as_str) {
                Some(m) => m.to_string(),
                None => error.to_string(),
            };
            self.error = Some(truncate(&message, 2048).to_string());
        }
        let delta = event
            .get("choices")
            .and_then(|c| c.get(0))
            .and_then(|c| c.get("delta"))
            .and_then(|d| d.get("content"))
            .and_then(Value::as_str);
        if let Some(text) = delta {
            let room = SSE_CONTENT_CAP - self.content.len();
            self.content.push_str(truncate(text, room));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn classify(status: u16) -> UpstreamError {
        error_for_status(
            status,
            Some(Duration::from_secs(3)),
            "application/json".into(),
            Bytes::from_static(b"{\"error\":{}}"),
        )
    }

    #[test]
    fn statuses_are_classified() {
        assert!(matches!(
            classify(429),
            UpstreamError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(3)
        ));
        for s in [408, 500, 502, 503, 504, 529] {
            match classify(s) {
                UpstreamError::Server {
                    status,
                    retry_after,
                } => {
                    assert_eq!(status, s);
                    assert_eq!(retry_after, Some(Duration::from_secs(3)));
                }
                other => panic!("{s}: {other:?}"),
            }
        }
        for s in [401, 402, 403] {
            assert!(matches!(classify(s), UpstreamError::Auth { status } if status == s));
            assert!(!classify(s).is_retryable());
            assert!(classify(s).may_fall_back());
        }
        for s in [400, 404, 413, 422] {
            match classify(s) {
                UpstreamError::Rejected {
                    status,
                    content_type,
                    body,
                } => {
                    assert_eq!(status, s);
                    assert_eq!(content_type, "application/json");
                    assert_eq!(&body[..], b"{\"error\":{}}");
                }
                other => panic!("{s}: {other:?}"),
            }
            assert!(!classify(s).may_fall_back());
        }
        // Redirects are not followed: a 3xx is the provider not answering properly.
        assert!(matches!(
            classify(302),
            UpstreamError::Server { status: 302, .. }
        ));
    }

    #[test]
    fn completions_are_checked() {
        let ok = check_completion(br#"{"choices":[],"usage":{"prompt_tokens":1}}"#, None);
        assert!(ok.is_ok());
        let truncated = check_completion(br#"{"choices":[{"message":"#, None);
        assert!(matches!(
            truncated,
            Err(UpstreamError::Malformed { usage: None, .. })
        ));
        assert!(matches!(
            check_completion(b"[1,2]", None),
            Err(UpstreamError::Malformed { .. })
        ));
        let no_choices = check_completion(
            br#"{"choices":null,"usage":{"prompt_tokens":7,"completion_tokens":2}}"#,
            None,
        );
        match no_choices {
            Err(UpstreamError::Malformed { usage, detail }) => {
                assert_eq!(usage.map(|u| u.prompt_tokens), Some(7));
                assert!(detail.contains("choices"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
        let wait = Some(Duration::from_secs(5));
        assert!(matches!(
            check_completion(br#"{"error":{"code":429,"message":"slow down"}}"#, wait),
            Err(UpstreamError::RateLimited { retry_after }) if retry_after == wait
        ));
        assert!(matches!(
            check_completion(br#"{"error":{"code":502,"message":"down"}}"#, None),
            Err(UpstreamError::Server { status: 502, .. })
        ));
        assert!(matches!(
            check_completion(br#"{"error":{"code":"503"}}"#, None),
            Err(UpstreamError::Server { status: 503, .. })
        ));
        match check_completion(br#"{"error":{"code":400,"message":"bad thing"}}"#, None) {
            Err(UpstreamError::Malformed { detail, .. }) => {
                assert!(detail.contains("bad thing"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            check_completion(br#"{"error":{"code":"moderation"}}"#, None),
            Err(UpstreamError::Malformed { .. })
        ));
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // 1994-11-06 08:49:37
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("1.5", now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO)
        );
        for bad in [
            "",
            "-1",
            "soon",
            "1.2.3",
            "1e3",
            "Sunday, 06-Nov-94 08:49:37 GMT",
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
        assert_eq!(parse_retry_after("99999999999999999999999", now), None);
    }

    #[test]
    fn usage_is_read() {
        let v = json!({"usage": {
            "prompt_tokens": 100, "completion_tokens": 40,
            "completion_tokens_details": {"reasoning_tokens": 30},
            "prompt_tokens_details": {"cached_tokens": 64}
        }});
        assert_eq!(
            usage_of(&v),
            Some(Usage {
                prompt_tokens: 100,
                completion_tokens: 40,
                reasoning_tokens: Some(30),
                cached_tokens: Some(64),
            })
        );
        let plain = json!({"usage": {"prompt_tokens": 5, "completion_tokens": 6,
            "completion_tokens_details": null}});
        assert_eq!(
            usage_of(&plain),
            Some(Usage {
                prompt_tokens: 5,
                completion_tokens: 6,
                reasoning_tokens: None,
                cached_tokens: None,
            })
        );
        let anthropic = json!({"usage": {"prompt_tokens": 5, "completion_tokens": 6,
            "cache_read_input_tokens": 4}});
        assert_eq!(usage_of(&anthropic).and_then(|u| u.cached_tokens), Some(4));
        let floats = json!({"usage": {"prompt_tokens": 5.0, "completion_tokens": 6}});
        assert_eq!(usage_of(&floats).map(|u| u.prompt_tokens), Some(5));
        assert_eq!(usage_of(&json!({"usage": null})), None);
        assert_eq!(usage_of(&json!({"usage": {}})), None);
        assert_eq!(usage_of(&json!({"choices": []})), None);
        assert_eq!(usage_of(&json!({"usage": {"prompt_tokens": -3}})), None);
    }

    #[test]
    fn answer_text_forms() {
        let s = json!({"choices": [{"message": {"role": "assistant", "content": "Paris."}}]});
        assert_eq!(answer_text(&s).as_deref(), Some("Paris."));
        let parts = json!({"choices": [{"message": {"content": [
            {"type": "text", "text": "Hello, "},
            {"type": "image_url", "image_url": {"url": "x"}},
            {"type": "text", "text": "world"}
        ]}}]});
        assert_eq!(answer_text(&parts).as_deref(), Some("Hello, world"));
        assert_eq!(
            answer_text(&json!({"choices": [{"message": {"content": null}}]})),
            None
        );
        assert_eq!(answer_text(&json!({"choices": []})), None);
        assert_eq!(answer_text(&json!({"error": {}})), None);
    }

    /// A stream as OpenRouter sends it: a comment, CRLF and LF line ends, multi-byte UTF-8,
    /// usage in the last chunk, `[DONE]`.
    const STREAM: &str = ": OPENROUTER PROCESSING\r\n\r\n\
        data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"Grüß \"}}]}\r\n\r\n\
        event: message\n\
        data: {\"choices\":[{\"delta\":{\"content\":\"dich 🌍!\"}}],\"usage\":null}\n\n\
        data:{\"choices\":[{\"delta\":{}}],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":4,\
        \"prompt_tokens_details\":{\"cached_tokens\":8}}}\n\n\
        data: [DONE]\n\n";

    fn check_tap(tap: &SseTap, at: usize) {
        assert!(tap.done(), "split at {at}");
        assert_eq!(tap.events(), 4, "split at {at}");
        assert_eq!(tap.content(), "Grüß dich 🌍!", "split at {at}");
        assert!(!tap.malformed(), "split at {at}");
        assert_eq!(tap.error(), None);
        assert_eq!(
            tap.usage(),
            Some(Usage {
                prompt_tokens: 12,
                completion_tokens: 4,
                reasoning_tokens: None,
                cached_tokens: Some(8),
            }),
            "split at {at}"
        );
    }

    #[test]
    fn sse_tap_reads_a_stream_split_anywhere() {
        let bytes = STREAM.as_bytes();
        for at in 0..=bytes.len() {
            let mut tap = SseTap::new();
            tap.feed(&bytes[..at]);
            tap.feed(&bytes[at..]);
            check_tap(&tap, at);
        }
        // Every byte on its own.
        let mut tap = SseTap::new();
        for b in bytes {
            tap.feed(std::slice::from_ref(b));
        }
        check_tap(&tap, usize::MAX);
        // Two splits.
        for a in (0..bytes.len()).step_by(7) {
            for b in a..bytes.len() {
                let mut tap = SseTap::new();
                tap.feed(&bytes[..a]);
                tap.feed(&bytes[a..b]);
                tap.feed(&bytes[b..]);
                check_tap(&tap, a * 10_000 + b);
            }
        }
    }

    #[test]
    fn sse_tap_lone_cr_and_unterminated_last_line() {
        let mut tap = SseTap::new();
        tap.feed(b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\r\rdata: [DONE]");
        assert_eq!(tap.content(), "a");
        assert!(!tap.done());
        tap.finish();
        assert!(tap.done());
        assert_eq!(tap.events(), 2);
    }

    #[test]
    fn sse_tap_errors_and_malformed_lines() {
        let mut tap = SseTap::new();
        tap.feed(b"data: {\"choices\":[{\"delta\":{\"content\":\"par\"}}]}\n\n");
        tap.feed(
            b"data: {\"error\":{\"code\":502,\"message\":\"provider went away\"},\
            \"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\n",
        );
        assert_eq!(tap.error().as_deref(), Some("provider went away"));
        assert_eq!(tap.usage().map(|u| u.completion_tokens), Some(1));
        assert!(!tap.malformed());
        assert!(!tap.done());
        tap.feed(b"data: {\"choices\": [trunc\n\n");
        assert!(tap.malformed());
        assert_eq!(tap.events(), 3);
        assert_eq!(tap.content(), "par");
    }

    #[test]
    fn sse_tap_is_bounded() {
        let mut tap = SseTap::new();
        let chunk = "data: {\"choices\":[{\"delta\":{\"content\":\"ééééééééé\"}}]}\n\n";
        for _ in 0..8000 {
            tap.feed(chunk.as_bytes());
        }
        assert!(tap.content().len() <= SSE_CONTENT_CAP);
        assert!(tap.content().len() > SSE_CONTENT_CAP - 4);
        assert!(tap.content().chars().all(|c| c == 'é'));
        // A line over the cap is skipped without being kept, the next one is read.
        let mut tap = SseTap::new();
        let big = vec![b'x'; 64 * 1024];
        tap.feed(b"data: {\"pad\":\"");
        for _ in 0..20 {
            tap.feed(&big);
        }
        assert!(tap.line.len() <= SSE_LINE_CAP);
        tap.feed(b"\"}\ndata: [DONE]\n");
        assert!(tap.done());
        assert!(!tap.malformed());
        assert_eq!(tap.events(), 2);
    }

    #[test]
    fn settings_defaults_and_bad_urls() {
        let s = UpstreamSettings::default();
        assert_eq!(s.connect_timeout, Duration::from_secs(2));
        assert_eq!(s.read_timeout, Duration::from_secs(30));
        assert_eq!(s.pool_idle_timeout, Duration::from_secs(90));
        let endpoint = |url: &str| {
            Endpoints::from([(
                "p".to_string(),
                Endpoint {
                    base_url: url.into(),
                    key: ApiKey::new("sk-secret-123"),
                },
            )])
        };
        for bad in ["ftp://x/v1", "not a url", "/v1", "https://x/v1?a=b"] {
            assert!(
                matches!(
                    HttpUpstream::new(endpoint(bad), &s),
                    Err(UpstreamInitError::BadBaseUrl { .. })
                ),
                "{bad}"
            );
        }
        let up = match HttpUpstream::new(endpoint("https://openrouter.ai/api/v1/"), &s) {
            Ok(up) => up,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(up.providers().collect::<Vec<_>>(), ["p"]);
        assert_eq!(
            up.targets["p"].url.as_str(),
            "https://openrouter.ai/api/v1/chat/completions"
        );
        let debug = format!("{up:?}");
        assert!(!debug.contains("sk-secret"), "{debug}");
        assert!(debug.contains("openrouter.ai"), "{debug}");
    }
}
