//! Upstream failures ([`UpstreamError`]) and how an answer is classified into one: a non-2xx
//! status, a 2xx body that is not a chat completion, a `Retry-After` header.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde_json::Value;

use super::Usage;
use super::answer::{truncate, usage_of};
use crate::ledger::records::AttemptOutcome;

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
    /// A 4xx saying the provider has no endpoint for this model that supports what the
    /// request needs (OpenRouter: "No endpoints found that support tool use"): another model
    /// may serve it, so the chain falls back as after a 5xx; it says nothing of the model's
    /// health.
    #[error("the provider cannot serve this request with this model ({status})")]
    Unsupported { status: u16 },
    /// 400 / 404 / 413 / 422 ...: the request itself is wrong (the caller's fault). Returned to
    /// the caller with the provider's status and text ([`openai_error_body`]); never retried.
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

    /// Whether the failure says something about the provider's health (counts for the model's
    /// circuit breaker): 5xx, the provider's 429, connection failures and connect timeouts,
    /// malformed answers. Not the caller's mistakes, not our credentials, and not read
    /// timeouts: how long an answer takes depends on what the caller asked for (a huge
    /// output), so one caller could otherwise open a breaker for everyone.
    pub fn counts_against_model(&self) -> bool {
        matches!(
            self,
            UpstreamError::RateLimited { .. }
                | UpstreamError::Server { .. }
                | UpstreamError::ConnectTimeout
                | UpstreamError::Connect
                | UpstreamError::Malformed { .. }
        )
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
            | UpstreamError::Unsupported { status }
            | UpstreamError::Auth { status }
            | UpstreamError::Rejected { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// How an attempt that failed this way is recorded.
    pub fn outcome(&self) -> AttemptOutcome {
        match self {
            UpstreamError::RateLimited { .. } => AttemptOutcome::RateLimited,
            UpstreamError::Server { .. } => AttemptOutcome::ServerError,
            UpstreamError::ConnectTimeout => AttemptOutcome::ConnectTimeout,
            UpstreamError::ReadTimeout => AttemptOutcome::ReadTimeout,
            UpstreamError::Connect => AttemptOutcome::ConnectError,
            UpstreamError::Malformed { .. } => AttemptOutcome::Malformed,
            UpstreamError::Auth { .. } => AttemptOutcome::Auth,
            UpstreamError::Rejected { .. } => AttemptOutcome::Rejected,
            UpstreamError::Unsupported { .. } => AttemptOutcome::Unsupported,
        }
    }

    /// Short machine-readable kind, for logs and metrics: the outcome's name.
    pub fn kind(&self) -> &'static str {
        self.outcome().as_str()
    }

    /// Usage the provider reported with a failed answer (it may have billed it).
    pub fn usage(&self) -> Option<Usage> {
        match self {
            UpstreamError::Malformed { usage, .. } => *usage,
            _ => None,
        }
    }
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
        400 | 404 | 422 if says_unsupported(&body) => UpstreamError::Unsupported { status },
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

/// Whether a provider's 4xx body says the model cannot serve a feature of the request
/// ("no endpoints found that support tool use", "does not support images", ...).
fn says_unsupported(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(&body[..body.len().min(4096)]).to_ascii_lowercase();
    [
        "no endpoints found that support",
        "support tool",
        "support image",
        "support vision",
        "support response_format",
        "support structured output",
    ]
    .iter()
    .any(|p| text.contains(p))
}

/// Longest provider text kept in a normalised refusal's `message` (bytes).
pub const REFUSAL_MESSAGE_CAP: usize = 4096;

/// A provider's 4xx refusal body in the OpenAI error shape, so that OpenAI clients read it
/// (the Python SDK takes `code`, `type`, `param` from the `error` object): `None` when the
/// body already has that shape (an `error` object whose `message` is a string and whose
/// `code` is a string or null) and is returned untouched; otherwise
/// `{"error": {"message", "type", "param", "code"}}` with the provider's text kept as the
/// message (capped at [`REFUSAL_MESSAGE_CAP`] bytes). Shapes read:
///
/// - `{"error": {"message": …, "code": 400, …}}` (OpenRouter's numeric code): the code as a
///   string (`"400"`), the other fields of the object kept (`metadata`, …);
/// - `{"error": "text"}`, and `{"message": …}` / `{"detail": …}` / `{"error_message": …}` at
///   the top level (vLLM, FastAPI-style servers), with a top-level `type`, `param`, `code` kept;
/// - anything else (HTML, plain text, other JSON): the body's text as the message.
///
/// `type` is the provider's when it gave a string, else `invalid_request_error` (every status
/// that reaches here is the caller's to fix).
pub fn openai_error_body(body: &[u8]) -> Option<Bytes> {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let text = || {
        let raw = String::from_utf8_lossy(body);
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            "the provider refused the request (empty body)".to_string()
        } else {
            truncate(trimmed, REFUSAL_MESSAGE_CAP).to_string()
        }
    };
    let mut error = match parsed {
        Some(Value::Object(mut top)) => match top.remove("error") {
            Some(Value::Object(error)) => {
                let openai_shaped = error.get("message").is_some_and(Value::is_string)
                    && error
                        .get("code")
                        .is_none_or(|c| c.is_string() || c.is_null());
                if openai_shaped {
                    return None;
                }
                error
            }
            Some(Value::String(message)) => {
                serde_json::Map::from_iter([("message".to_string(), Value::String(message))])
            }
            _ => {
                let message = ["message", "detail", "error_message"]
                    .iter()
                    .find_map(|k| top.get(*k).and_then(message_text));
                let mut error = serde_json::Map::new();
                error.insert(
                    "message".into(),
                    Value::String(message.unwrap_or_else(text)),
                );
                for k in ["type", "param", "code"] {
                    if let Some(v) = top.remove(k) {
                        error.insert(k.into(), v);
                    }
                }
                error
            }
        },
        _ => serde_json::Map::from_iter([("message".to_string(), Value::String(text()))]),
    };
    let message = error
        .get("message")
        .and_then(message_text)
        .unwrap_or_else(text);
    error.insert(
        "message".into(),
        Value::String(truncate(&message, REFUSAL_MESSAGE_CAP).to_string()),
    );
    let kind = match error.get("type") {
        Some(Value::String(t)) if !t.trim().is_empty() => t.clone(),
        _ => "invalid_request_error".to_string(),
    };
    error.insert("type".into(), Value::String(kind));
    let code = match error.get("code") {
        Some(Value::String(c)) => Value::String(c.clone()),
        Some(Value::Number(n)) => Value::String(n.to_string()),
        _ => Value::Null,
    };
    error.insert("code".into(), code);
    error.entry("param").or_insert(Value::Null);
    let body = serde_json::json!({ "error": Value::Object(error) });
    Some(Bytes::from(body.to_string()))
}

/// A message field's text: a string as is, any other non-null JSON value as JSON (FastAPI's
/// `detail` is often a list of validation errors).
fn message_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(status: u16) -> UpstreamError {
        error_for_status(
            status,
            Some(Duration::from_secs(3)),
            "application/json".into(),
            Bytes::from_static(b"{\"error\":{}}"),
        )
    }

    #[test]
    fn an_unsupported_feature_falls_back_without_blaming_the_model() {
        let body = Bytes::from_static(
            br#"{"error":{"message":"No endpoints found that support tool use.","code":404}}"#,
        );
        let e = error_for_status(404, None, "application/json".into(), body);
        assert!(
            matches!(e, UpstreamError::Unsupported { status: 404 }),
            "{e:?}"
        );
        assert!(e.may_fall_back() && !e.is_retryable() && !e.counts_against_model());
        assert_eq!(e.outcome().as_str(), "unsupported");
        let plain = error_for_status(
            400,
            None,
            "application/json".into(),
            Bytes::from_static(br#"{"error":{"message":"messages: field required"}}"#),
        );
        assert!(
            matches!(plain, UpstreamError::Rejected { .. }),
            "the caller's mistake"
        );
    }

    fn normalised(body: &str) -> Value {
        let out = openai_error_body(body.as_bytes()).expect("rewritten");
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn an_openai_shaped_refusal_is_kept_byte_for_byte() {
        for body in [
            r#"{"error":{"message":"This model's maximum context length is 8192 tokens","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#,
            r#"{"error":{"message":"bad","type":"invalid_request_error","code":null}}"#,
            r#"{"error":{"message":"no code at all"}}"#,
        ] {
            assert_eq!(openai_error_body(body.as_bytes()), None, "{body}");
        }
    }

    #[test]
    fn a_provider_refusal_in_its_own_shape_is_normalised_keeping_its_text() {
        // OpenRouter: a numeric code (the HTTP status) and metadata.
        let v = normalised(
            r#"{"error":{"message":"Provider returned error: prompt is too long","code":400,"metadata":{"provider_name":"X"}}}"#,
        );
        assert_eq!(
            v,
            serde_json::json!({"error": {
                "message": "Provider returned error: prompt is too long",
                "type": "invalid_request_error",
                "param": null,
                "code": "400",
                "metadata": {"provider_name": "X"}
            }})
        );
        // A bare string error.
        let v = normalised(r#"{"error":"model `x` does not accept `logit_bias`"}"#);
        assert_eq!(
            v["error"]["message"],
            "model `x` does not accept `logit_bias`"
        );
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["code"], Value::Null);
        assert_eq!(v["error"]["param"], Value::Null);
        // vLLM: the fields at the top level, a numeric code.
        let v = normalised(
            r#"{"object":"error","message":"maximum context length is 4096 tokens","type":"BadRequestError","param":null,"code":400}"#,
        );
        assert_eq!(
            v["error"],
            serde_json::json!({"message": "maximum context length is 4096 tokens",
                "type": "BadRequestError", "param": null, "code": "400"})
        );
        // FastAPI: `detail`, a list of validation errors kept as JSON text.
        let v = normalised(r#"{"detail":[{"loc":["body","messages"],"msg":"field required"}]}"#);
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains("field required"), "{message}");
        // An error object without a message: the whole body is the message.
        let v = normalised(r#"{"error":{"code":422}}"#);
        assert_eq!(v["error"]["message"], r#"{"error":{"code":422}}"#);
        assert_eq!(v["error"]["code"], "422");
    }

    #[test]
    fn a_refusal_that_is_not_json_keeps_its_text_capped() {
        let v = normalised("  Bad Request: unknown field `foo`\n");
        assert_eq!(v["error"]["message"], "Bad Request: unknown field `foo`");
        let v = normalised("");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("empty body")
        );
        let long = "é".repeat(REFUSAL_MESSAGE_CAP);
        let v = normalised(&long);
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.len() <= REFUSAL_MESSAGE_CAP && message.starts_with('é'));
        // A JSON body that is not an object is text too.
        let v = normalised(r#"["no"]"#);
        assert_eq!(v["error"]["message"], r#"["no"]"#);
    }

    #[test]
    fn only_provider_side_failures_count_against_the_model() {
        let counted = [
            UpstreamError::RateLimited { retry_after: None },
            classify(503),
            UpstreamError::ConnectTimeout,
            UpstreamError::Connect,
            UpstreamError::Malformed {
                detail: "x".into(),
                usage: None,
            },
        ];
        assert!(counted.iter().all(UpstreamError::counts_against_model));
        let not_counted = [UpstreamError::ReadTimeout, classify(401), classify(400)];
        assert!(!not_counted.iter().any(UpstreamError::counts_against_model));
        assert!(
            UpstreamError::ReadTimeout.is_retryable(),
            "still retried and fallen back"
        );
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
}
