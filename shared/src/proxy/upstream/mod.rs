//! The OpenAI-compatible upstream client: one chat-completions call to a provider (OpenRouter
//! or any OpenAI-compatible base URL), buffered or streamed, with every failure classified so
//! the proxy can decide between retrying, falling back to another model, and answering the
//! caller. Also the provider's `usage`, read from a completion or the last stream chunk.
//!
//! The proxy ([`crate::proxy::chain`]) and the evaluator only see the [`ChatUpstream`] trait; the
//! HTTP implementation is [`HttpUpstream`] (reqwest, rustls). API keys live in [`ApiKey`],
//! whose `Debug` never shows them. A streamed answer is read as it passes through the proxy
//! by [`SseTap`] (usage, `[DONE]`, errors, the answer text for the shadow sample).
//!
//! What lives here: this file holds the call's types and the [`ChatUpstream`] port;
//! `error` the failures and how an answer is classified into them, `answer` what is read out
//! of a completion (usage, text), `http` the reqwest client, `sse` the stream reader.

mod answer;
mod error;
mod http;
mod sse;

use crate::routing::pool::{ProviderAuth, ProviderSpec};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use serde_json::Value;

pub use answer::{answer_text, usage_of};
pub use error::{
    UpstreamError, check_completion, error_for_status, openai_error_body, parse_retry_after,
};
pub use http::{
    HttpUpstream, MAX_COMPLETION_BODY, MAX_ERROR_BODY, UpstreamInitError, UpstreamSettings,
    next_chunk,
};
pub use sse::{SSE_CONTENT_CAP, SSE_LINE_CAP, SseTap};

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

/// A provider endpoint with its key, as the pool's `[providers]` entry describes it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Base URL, e.g. `https://openrouter.ai/api/v1` (`/chat/completions` is appended).
    pub base_url: String,
    pub key: ApiKey,
    /// How the key is sent (`Authorization: Bearer`, Azure's `api-key`, or not at all).
    pub auth: ProviderAuth,
    /// Extra headers on every call.
    pub headers: BTreeMap<String, String>,
    /// Query parameters on every call (e.g. Azure's `api-version`).
    pub query: BTreeMap<String, String>,
}

impl Endpoint {
    /// A Bearer-key endpoint with no extra headers or query parameters.
    pub fn new(base_url: impl Into<String>, key: ApiKey) -> Self {
        Endpoint {
            base_url: base_url.into(),
            key,
            auth: ProviderAuth::Bearer,
            headers: BTreeMap::new(),
            query: BTreeMap::new(),
        }
    }

    /// The endpoint of a pool provider, with its key.
    pub fn of(spec: &ProviderSpec, key: ApiKey) -> Self {
        Endpoint {
            auth: spec.auth,
            headers: spec.headers.clone(),
            query: spec.query.clone(),
            ..Endpoint::new(spec.base_url.clone(), key)
        }
    }
}

/// The providers by name.
pub type Endpoints = BTreeMap<String, Endpoint>;
