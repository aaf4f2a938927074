//! What the Lambda handlers share: JSON answers, OpenAI-style error answers, the EMF clock
//! and the JSON logging set-up. Built with the `lambda` feature (the functions enable it).

use lambda_http::http::{StatusCode, header};
use lambda_http::{Body, Response};

use crate::serve::api::ApiError;

/// A JSON answer.
pub fn json_response(status: u16, body: String) -> Response<Body> {
    let mut res = Response::new(Body::Text(body));
    *res.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    res
}

/// An error answer: the status and `{"error": {"message", "type", "code"}}`.
pub fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.status, e.body().to_string())
}

/// Unix epoch milliseconds (EMF timestamps).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// JSON log lines on stdout (CloudWatch Logs), filtered by a `tracing` filter such as
/// `info` or `info,tierwise=debug` (an invalid filter falls back to `info`).
pub fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_ansi(false)
        .with_env_filter(filter)
        .init();
}

/// The request path without a trailing slash.
pub fn route_path(path: &str) -> &str {
    let p = path.trim_end_matches('/');
    if p.is_empty() { "/" } else { p }
}
