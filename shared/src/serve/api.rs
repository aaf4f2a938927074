//! The HTTP API's shared shapes: OpenAI-style error bodies (status, type, code, a message
//! for the caller and never internal detail) and the `GET /v1/models` list.

use serde_json::{Value, json};

use crate::routing::decision::RouteError;
use crate::routing::pool::PoolConfig;

/// An error answer: HTTP status and the OpenAI-style body's fields.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    pub kind: &'static str,
    pub code: &'static str,
}

impl ApiError {
    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: 400,
            message: message.into(),
            kind: "invalid_request_error",
            code: "invalid_request",
        }
    }

    /// 404: no such route.
    pub fn not_found(method: &str, path: &str) -> Self {
        Self {
            status: 404,
            message: format!("no route for {method} {path}"),
            kind: "invalid_request_error",
            code: "not_found",
        }
    }

    /// 405: the route exists, not with this method.
    pub fn method_not_allowed(method: &str, path: &str, allowed: &str) -> Self {
        Self {
            status: 405,
            message: format!("{method} is not allowed on {path}; use {allowed}"),
            kind: "invalid_request_error",
            code: "method_not_allowed",
        }
    }

    /// 413: the body is over the limit.
    pub fn too_large(bytes: usize, limit: usize) -> Self {
        Self {
            status: 413,
            message: format!("the request body is {bytes} bytes; the limit is {limit}"),
            kind: "invalid_request_error",
            code: "request_too_large",
        }
    }

    /// 503: a dependency is unavailable; retrying later may succeed.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            status: 503,
            message: message.into(),
            kind: "service_unavailable",
            code: "unavailable",
        }
    }

    /// 404: the request names a model that is not in the pool.
    pub fn model_not_found(model: &str) -> Self {
        Self {
            status: 404,
            message: format!(
                "the model `{model}` does not exist in this pool; use \"auto\" or a model of GET /v1/models"
            ),
            kind: "invalid_request_error",
            code: "model_not_found",
        }
    }

    /// 400: the request's cost cap leaves no model to call.
    pub fn cost_cap(cap_usd: f64) -> Self {
        Self {
            status: 400,
            message: format!(
                "no model can answer within the request's cost cap of ${cap_usd} (estimated from its tokens and max_tokens)"
            ),
            kind: "invalid_request_error",
            code: "cost_cap_exceeded",
        }
    }

    /// 429 / 502 / 503 / 504: no upstream model answered; the message says why in the
    /// caller's terms only.
    pub fn upstream(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            kind: if status == 429 {
                "rate_limit_error"
            } else {
                "upstream_error"
            },
            code,
        }
    }

    /// 500, with nothing of the cause.
    pub fn internal() -> Self {
        Self {
            status: 500,
            message: "internal error; the request was not routed".into(),
            kind: "server_error",
            code: "internal_error",
        }
    }

    /// The JSON body: `{"error": {"message", "type", "code"}}`.
    pub fn body(&self) -> Value {
        json!({"error": {"message": self.message, "type": self.kind, "code": self.code}})
    }
}

impl From<&RouteError> for ApiError {
    fn from(e: &RouteError) -> Self {
        let (kind, code) = match e {
            RouteError::InvalidRequest(_) => ("invalid_request_error", "invalid_request"),
            RouteError::TooLarge(_) => ("invalid_request_error", "request_too_large"),
            RouteError::ContextTooLong { .. } => {
                ("invalid_request_error", "context_length_exceeded")
            }
            RouteError::NoHealthyModel { .. } => ("service_unavailable", "no_healthy_model"),
            RouteError::Internal(_) => return ApiError::internal(),
        };
        // The other variants' messages describe the request, not the router's insides.
        ApiError {
            status: e.status(),
            message: e.to_string(),
            kind,
            code,
        }
    }
}

/// `GET /v1/models`: `auto` (the routed model) first, then the pool as an OpenAI-style model
/// list, with tiers and prices — tools that fill a model picker from this list can route.
pub fn models_list(pool: &PoolConfig) -> Value {
    let auto = json!({
        "id": "auto",
        "object": "model",
        "created": 0,
        "owned_by": "tierwise",
        "description": "routes each request to the cheapest adequate tier of the pool",
    });
    let data: Vec<Value> = std::iter::once(auto)
        .chain(pool.models().map(|(tier, m)| {
            json!({
                "id": m.id,
                "object": "model",
                "created": 0,
                "owned_by": m.provider,
                "tier": tier,
                "pricing": {
                    "input_usd_per_m": m.input_usd_per_m,
                    "output_usd_per_m": m.output_usd_per_m,
                },
                "context_window": m.context_window,
                "max_output_tokens": m.max_output_tokens,
            })
        }))
        .collect();
    json!({
        "object": "list",
        "data": data,
        "baseline_model": pool.baseline().id,
        "pricing_version": pool.pricing_version(),
    })
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
        assert_eq!((e.status, e.code), (413, "context_length_exceeded"));
    }

    #[test]
    fn models_list_has_every_pool_model() {
        let pool = PoolConfig::bundled().unwrap();
        let v = models_list(&pool);
        assert_eq!(v["object"], "list");
        let data = v["data"].as_array().unwrap();
        assert_eq!(data.len(), pool.models().count() + 1);
        assert_eq!(data[0]["id"], "auto", "the routed model comes first");
        assert_eq!(data[1]["tier"], "tier1");
        assert!(data[1]["pricing"]["input_usd_per_m"].as_f64().unwrap() > 0.0);
        assert_eq!(v["baseline_model"], pool.baseline().id);
    }
}
