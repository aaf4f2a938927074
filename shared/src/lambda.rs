//! What the Lambda handlers share: JSON answers, OpenAI-style error answers, and the EMF
//! clock. Built with the `lambda` feature (the functions enable it).

use lambda_http::http::{StatusCode, header};
use lambda_http::{Body, Response};

use crate::api::ApiError;

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

/// The request path without a trailing slash.
pub fn route_path(path: &str) -> &str {
    let p = path.trim_end_matches('/');
    if p.is_empty() { "/" } else { p }
}
