//! Every error the HTTP API answers with, and the one place that says how: the HTTP status,
//! the OpenAI-style `type` and `code`, and a message for the caller (never internal detail).
//!
//! The Lambdas' own refusals (no such route, wrong method, body too large, a malformed
//! header, the proxy switched off) are built by [`ApiError`]'s constructors; the domain's
//! errors — [`RouteError`] (routing), [`ChatError`] and [`Unanswered`] (the proxy) — are
//! mapped by the `From` implementations below.

use serde_json::{Value, json};

use crate::access::guard::AccessError;
#[cfg(feature = "upstream")]
use crate::proxy::chat::{ChatError, Unanswered};
use crate::routing::decision::RouteError;

/// An error answer: HTTP status and the OpenAI-style body's fields.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    pub kind: &'static str,
    pub code: &'static str,
    /// Seconds to send as `Retry-After` (a rate limit).
    pub retry_after_secs: Option<u64>,
}

/// `type` of the errors that are the caller's to fix.
const INVALID_REQUEST: &str = "invalid_request_error";

impl ApiError {
    /// An error of the caller's request (`invalid_request_error`).
    fn invalid(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            kind: INVALID_REQUEST,
            code,
            retry_after_secs: None,
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::invalid(400, "invalid_request", message)
    }

    /// 404: no such route.
    pub fn not_found(method: &str, path: &str) -> Self {
        Self::invalid(404, "not_found", format!("no route for {method} {path}"))
    }

    /// 405: the route exists, not with this method.
    pub fn method_not_allowed(method: &str, path: &str, allowed: &str) -> Self {
        Self::invalid(
            405,
            "method_not_allowed",
            format!("{method} is not allowed on {path}; use {allowed}"),
        )
    }

    /// 413: the body is over the limit.
    pub fn too_large(bytes: usize, limit: usize) -> Self {
        Self::invalid(
            413,
            "request_too_large",
            format!("the request body is {bytes} bytes; the limit is {limit}"),
        )
    }

    /// 409: a request with the same query id is running, or was answered and its answer
    /// cannot be replayed; `code` says which.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::invalid(409, code, message)
    }

    /// 503: a dependency is unavailable; retrying later may succeed.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            status: 503,
            message: message.into(),
            kind: "service_unavailable",
            code: "unavailable",
            retry_after_secs: None,
        }
    }

    /// 501: this deployment routes only; `POST /v1/chat/completions` is off.
    pub fn proxy_disabled() -> Self {
        Self::upstream(
            501,
            "proxy_disabled",
            "this deployment routes only (POST /v1/route); the proxy is off",
        )
    }

    /// 429 / 501 / 502 / 503 / 504: no upstream model answered (or none may be called); the
    /// message says why in the caller's terms only.
    fn upstream(status: u16, code: &'static str, message: &str) -> Self {
        Self {
            status,
            message: message.into(),
            kind: if status == 429 {
                "rate_limit_error"
            } else {
                "upstream_error"
            },
            code,
            retry_after_secs: None,
        }
    }

    /// 500, with nothing of the cause.
    pub fn internal() -> Self {
        Self {
            status: 500,
            message: "internal error; the request was not routed".into(),
            kind: "server_error",
            code: "internal_error",
            retry_after_secs: None,
        }
    }

    /// The JSON body: `{"error": {"message", "type", "code"}}`.
    pub fn body(&self) -> Value {
        json!({"error": {"message": self.message, "type": self.kind, "code": self.code}})
    }
}

impl From<&RouteError> for ApiError {
    fn from(e: &RouteError) -> Self {
        // The other variants' messages describe the request, not the router's insides.
        let message = e.to_string();
        match e {
            RouteError::InvalidRequest(_) => Self::invalid(400, "invalid_request", message),
            RouteError::TooLarge(_) => Self::invalid(413, "request_too_large", message),
            // 400 as OpenAI answers it (clients raise their bad-request error on it); 413 is
            // for bodies over the byte limit.
            RouteError::ContextTooLong { .. } => {
                Self::invalid(400, "context_length_exceeded", message)
            }
            RouteError::NoHealthyModel { .. } => Self {
                status: 503,
                message,
                kind: "service_unavailable",
                code: "no_healthy_model",
                retry_after_secs: None,
            },
            RouteError::Unsupported { .. } => Self::invalid(400, "unsupported_capability", message),
            RouteError::Internal(_) => Self::internal(),
        }
    }
}

impl From<RouteError> for ApiError {
    fn from(e: RouteError) -> Self {
        Self::from(&e)
    }
}

#[cfg(feature = "upstream")]
impl From<ChatError> for ApiError {
    fn from(e: ChatError) -> Self {
        Self::from(&e)
    }
}

#[cfg(feature = "upstream")]
impl From<&ChatError> for ApiError {
    fn from(e: &ChatError) -> Self {
        match e {
            ChatError::InvalidRequest(message) => Self::bad_request(message.as_str()),
            ChatError::ModelNotFound(model) => Self::invalid(
                404,
                "model_not_found",
                format!(
                    "the model `{model}` does not exist in this pool; use \"auto\" or a model of GET /v1/models"
                ),
            ),
            ChatError::Route(e) => Self::from(e),
        }
    }
}

#[cfg(feature = "upstream")]
impl From<&Unanswered> for ApiError {
    fn from(e: &Unanswered) -> Self {
        match *e {
            Unanswered::CostCap { cap_usd } => Self::invalid(
                400,
                "cost_cap_exceeded",
                format!(
                    "no model can answer within the request's cost cap of ${cap_usd} (estimated from its tokens and max_tokens)"
                ),
            ),
            Unanswered::Deadline => Self::upstream(
                504,
                "upstream_timeout",
                "no model answered within the request's time",
            ),
            Unanswered::RateLimited => Self::upstream(
                429,
                "upstream_rate_limited",
                "every model that could answer is rate limited; retry later",
            ),
            Unanswered::TimedOut => {
                Self::upstream(504, "upstream_timeout", "the model providers timed out")
            }
            Unanswered::NoModel => {
                Self::upstream(503, "no_healthy_model", "no model is available to answer")
            }
            Unanswered::Failed => Self::upstream(
                502,
                "upstream_error",
                "the model providers failed to answer",
            ),
        }
    }
}

impl From<&AccessError> for ApiError {
    fn from(e: &AccessError) -> Self {
        let message = e.to_string();
        match e {
            AccessError::MissingKey | AccessError::InvalidKey => {
                Self::invalid(401, "invalid_api_key", message)
            }
            AccessError::TenantMismatch => Self {
                kind: "permission_error",
                ..Self::invalid(403, "tenant_mismatch", message)
            },
            AccessError::ModelNotAllowed(_) | AccessError::TierNotAllowed(_) => Self {
                kind: "permission_error",
                ..Self::invalid(403, "model_not_allowed", message)
            },
            AccessError::BudgetExhausted { .. } => Self {
                status: 429,
                message,
                kind: "insufficient_quota",
                code: "insufficient_quota",
                retry_after_secs: None,
            },
            AccessError::RateLimited {
                retry_after_secs, ..
            } => Self {
                status: 429,
                message,
                kind: "rate_limit_error",
                code: "rate_limit_exceeded",
                retry_after_secs: Some(*retry_after_secs),
            },
            AccessError::Store(_) => {
                Self::unavailable("API keys cannot be checked right now; retry")
            }
        }
    }
}

impl From<AccessError> for ApiError {
    fn from(e: AccessError) -> Self {
        Self::from(&e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_errors_map_to_openai_bodies() {
        let e = ApiError::from(&RouteError::InvalidRequest("`query` is empty".into()));
        assert_eq!(e.status, 400);
        assert_eq!(
            e.body(),
            json!({"error": {"message": "`query` is empty", "type": "invalid_request_error", "code": "invalid_request"}})
        );
        assert_eq!(ApiError::from(&RouteError::TooLarge(5)).status, 413);
        let e = ApiError::from(&RouteError::ContextTooLong { tokens: 9 });
        assert_eq!((e.status, e.code), (400, "context_length_exceeded"));
        let e = ApiError::from(&RouteError::NoHealthyModel {
            min: crate::routing::pool::Tier::Tier1,
            max: crate::routing::pool::Tier::Tier3,
        });
        assert_eq!(
            (e.status, e.kind, e.code),
            (503, "service_unavailable", "no_healthy_model")
        );
    }

    #[cfg(feature = "upstream")]
    #[test]
    fn chat_errors_map_to_openai_bodies() {
        let e = ApiError::from(&ChatError::InvalidRequest(
            "`stream` must be a boolean".into(),
        ));
        assert_eq!((e.status, e.code), (400, "invalid_request"));
        assert_eq!(e.message, "`stream` must be a boolean");
        let e = ApiError::from(&ChatError::ModelNotFound("no/such".into()));
        assert_eq!(
            (e.status, e.kind, e.code),
            (404, INVALID_REQUEST, "model_not_found")
        );
        assert!(e.message.contains("`no/such`"));
        let e = ApiError::from(&ChatError::Route(RouteError::TooLarge(5)));
        assert_eq!((e.status, e.code), (413, "request_too_large"));
        for (why, status, kind, code) in [
            (
                Unanswered::CostCap { cap_usd: 0.5 },
                400,
                INVALID_REQUEST,
                "cost_cap_exceeded",
            ),
            (
                Unanswered::Deadline,
                504,
                "upstream_error",
                "upstream_timeout",
            ),
            (
                Unanswered::RateLimited,
                429,
                "rate_limit_error",
                "upstream_rate_limited",
            ),
            (
                Unanswered::TimedOut,
                504,
                "upstream_error",
                "upstream_timeout",
            ),
            (
                Unanswered::NoModel,
                503,
                "upstream_error",
                "no_healthy_model",
            ),
            (Unanswered::Failed, 502, "upstream_error", "upstream_error"),
        ] {
            let e = ApiError::from(&why);
            assert_eq!((e.status, e.kind, e.code), (status, kind, code), "{why:?}");
        }
        assert!(
            ApiError::from(&Unanswered::CostCap { cap_usd: 0.5 })
                .message
                .contains("cost cap of $0.5 ")
        );
        let e = ApiError::proxy_disabled();
        assert_eq!(
            (e.status, e.kind, e.code),
            (501, "upstream_error", "proxy_disabled")
        );
    }
}
