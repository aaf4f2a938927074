//! The providers over HTTP ([`HttpUpstream`]): one pooled reqwest client (rustls) that sends
//! chat-completions calls, bounds them in time and size, and classifies every failure.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};

use super::error::{check_completion, error_for_status, parse_retry_after};
use super::{
    ChatCall, ChatStream, ChatUpstream, ChunkStream, Completion, Endpoint, Endpoints,
    UpstreamError, usage_of,
};
use crate::routing::pool::ProviderAuth;

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
    /// A provider's extra header is not a valid header.
    #[error("provider {provider}: header {name:?} is not a valid header")]
    BadHeader { provider: String, name: String },
    /// reqwest refused to build the client (TLS set-up).
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// One provider, ready to call.
struct Target {
    base_url: String,
    /// `{base_url}/chat/completions` with the provider's query parameters.
    url: reqwest::Url,
    /// The key's header (`authorization: Bearer <key>` or `api-key: <key>`, marked
    /// sensitive) and the provider's extra headers.
    headers: HeaderMap,
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
            let mut url = url;
            if !endpoint.query.is_empty() {
                url.query_pairs_mut().extend_pairs(&endpoint.query);
            }
            let headers = target_headers(&provider, &endpoint)?;
            targets.insert(
                provider,
                Target {
                    base_url,
                    url,
                    headers,
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
            .headers(target.headers.clone())
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

    /// Sends the call; a non-2xx answer is read (bounded) and classified into the error.
    async fn open(&self, call: &ChatCall<'_>) -> Result<Opened, UpstreamError> {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + call.deadline;
        let response = self.send(call, deadline).await?;
        if response.status().is_success() {
            let (retry_after, content_type) = head_of(response.headers());
            return Ok(Opened {
                started,
                deadline,
                status: response.status().as_u16(),
                retry_after,
                content_type,
                response,
            });
        }
        let error = self.failed(response, deadline).await;
        tracing::debug!(
            provider = call.provider,
            kind = error.kind(),
            "upstream error"
        );
        Err(error)
    }

    /// Reads a non-2xx answer's body (bounded in size and by `deadline`) and classifies it.
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

/// The headers every call to a provider carries: its key, in the provider's style, and its
/// extra headers.
fn target_headers(provider: &str, endpoint: &Endpoint) -> Result<HeaderMap, UpstreamInitError> {
    let mut headers = HeaderMap::new();
    let key = |text: String| {
        let mut v = HeaderValue::from_str(&text).map_err(|_| UpstreamInitError::BadKey {
            provider: provider.to_string(),
        })?;
        v.set_sensitive(true);
        Ok::<_, UpstreamInitError>(v)
    };
    match endpoint.auth {
        ProviderAuth::Bearer => {
            headers.insert(
                AUTHORIZATION,
                key(format!("Bearer {}", endpoint.key.expose()))?,
            );
        }
        ProviderAuth::ApiKeyHeader => {
            headers.insert("api-key", key(endpoint.key.expose().to_string())?);
        }
        ProviderAuth::None => {}
    }
    for (name, value) in &endpoint.headers {
        let bad = || UpstreamInitError::BadHeader {
            provider: provider.to_string(),
            name: name.clone(),
        };
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
        headers.insert(name, HeaderValue::from_str(value).map_err(|_| bad())?);
    }
    Ok(headers)
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
        let answer = self.open(&call).await?;
        let mut stream = answer.response.bytes_stream();
        let read = Whole::Buffered {
            read_timeout: self.read_timeout,
        };
        let body = read_whole(&mut stream, answer.deadline, read).await?;
        let json = check_completion(&body, answer.retry_after)?;
        let usage = usage_of(&json);
        Ok(Completion {
            status: answer.status,
            content_type: answer.content_type,
            body,
            json,
            usage,
            elapsed_ms: answer.started.elapsed().as_secs_f64() * 1000.0,
        })
    }

    async fn stream(&self, call: ChatCall<'_>) -> Result<ChatStream, UpstreamError> {
        let answer = self.open(&call).await?;
        let json_answer = answer
            .content_type
            .split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
        let mut body = Box::pin(answer.response.bytes_stream());
        let (first, rest): (Bytes, ChunkStream) = if json_answer {
            // Not an event stream: an error object in a 2xx (OpenRouter does this), or a
            // buffered answer. Read it whole (bounded) and look.
            let whole = read_whole(&mut body, answer.deadline, Whole::StreamJson).await?;
            check_completion(&whole, answer.retry_after)?;
            (whole, Box::pin(futures_util::stream::empty()))
        } else {
            let first = first_chunk(&mut body, answer.deadline).await?;
            (first, idle_bounded(body, self.read_timeout))
        };
        Ok(ChatStream {
            status: answer.status,
            content_type: answer.content_type,
            first,
            rest,
            first_byte_ms: answer.started.elapsed().as_secs_f64() * 1000.0,
        })
    }
}

/// A 2xx answer whose headers have arrived.
struct Opened {
    /// When the call was sent.
    started: Instant,
    /// When the call must be over (the first bytes, for a stream).
    deadline: tokio::time::Instant,
    status: u16,
    retry_after: Option<Duration>,
    content_type: String,
    response: reqwest::Response,
}

/// How a 2xx body is read whole (at most [`MAX_COMPLETION_BODY`] bytes, by the deadline).
#[derive(Debug, Clone, Copy)]
enum Whole {
    /// A buffered answer: each chunk within `read_timeout` of the previous one too; a body
    /// that breaks off is `Malformed`.
    Buffered { read_timeout: Duration },
    /// The JSON answer to a streamed call: by the deadline only; a break is a transport error.
    StreamJson,
}

/// Reads a 2xx body whole, as `how` says.
async fn read_whole<S>(
    body: &mut S,
    deadline: tokio::time::Instant,
    how: Whole,
) -> Result<Bytes, UpstreamError>
where
    S: Stream<Item = Result<Bytes, reqwest::Error>> + Unpin,
{
    let mut whole = Vec::new();
    loop {
        let by = match how {
            Whole::Buffered { read_timeout } => {
                (tokio::time::Instant::now() + read_timeout).min(deadline)
            }
            Whole::StreamJson => deadline,
        };
        match tokio::time::timeout_at(by, body.next()).await {
            Err(_) => return Err(UpstreamError::ReadTimeout),
            Ok(None) => return Ok(Bytes::from(whole)),
            // A buffered 2xx answer that broke off mid-body (truncated): generated, and
            // likely billed, but unusable.
            Ok(Some(Err(e))) if matches!(how, Whole::Buffered { .. }) && !e.is_timeout() => {
                return Err(UpstreamError::Malformed {
                    detail: format!("the answer broke off after {} bytes", whole.len()),
                    usage: None,
                });
            }
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
}

/// The first non-empty chunk of an event stream, by `deadline`.
async fn first_chunk<S>(
    body: &mut S,
    deadline: tokio::time::Instant,
) -> Result<Bytes, UpstreamError>
where
    S: Stream<Item = Result<Bytes, reqwest::Error>> + Unpin,
{
    loop {
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
            Ok(Some(Ok(chunk))) => return Ok(chunk),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::upstream::{ApiKey, Endpoint};

    #[test]
    fn settings_defaults_and_bad_urls() {
        let s = UpstreamSettings::default();
        assert_eq!(s.connect_timeout, Duration::from_secs(2));
        assert_eq!(s.read_timeout, Duration::from_secs(30));
        assert_eq!(s.pool_idle_timeout, Duration::from_secs(90));
        let endpoint = |url: &str| {
            Endpoints::from([(
                "p".to_string(),
                Endpoint::new(url, ApiKey::new("sk-secret-123")),
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
