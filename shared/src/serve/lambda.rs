//! What the Lambda handlers share: JSON answers, OpenAI-style error answers, the JSON logging
//! set-up and the start-up every function binary runs ([`start`]). Built with the `lambda`
//! feature (the functions enable it).

use lambda_http::http::{StatusCode, header};
use lambda_http::{Body, Response};

use crate::serve::errors::ApiError;

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
    let mut res = json_response(e.status, e.body().to_string());
    if let Some(secs) = e.retry_after_secs {
        res.headers_mut()
            .insert("retry-after", lambda_http::http::HeaderValue::from(secs));
    }
    res
}

/// JSON log lines on stdout (CloudWatch Logs), filtered by a `tracing` filter such as
/// `info` or `info,tierwise=debug` (an invalid filter falls back to `info`). A line logged while
/// an invocation runs carries the runtime's span — `"span": {"requestId": ...}`, the Lambda
/// request id — so every line of a request can be found from one.
pub fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
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

/// What every function binary does at start: JSON logs at `log_level`, a single-thread
/// runtime, the app built once by `init` (a failure is logged and ends the process), a
/// "`name` ready" log line with the time since `started`, then the runtime loop `serve`.
pub fn start<A, Init, Serve>(
    name: &str,
    log_level: &str,
    started: std::time::Instant,
    init: Init,
    serve: impl FnOnce(std::sync::Arc<A>) -> Serve,
) -> Result<(), lambda_http::Error>
where
    Init: std::future::Future<Output = anyhow::Result<A>>,
    Serve: std::future::Future<Output = Result<(), lambda_http::Error>>,
{
    init_logging(log_level);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let app = match init.await {
            Ok(app) => std::sync::Arc::new(app),
            Err(e) => {
                tracing::error!(error = %e, "{name} init failed");
                return Err(lambda_http::Error::from(e.to_string()));
            }
        };
        tracing::info!(
            init_ms = started.elapsed().as_secs_f64() * 1e3,
            "{name} ready"
        );
        serve(app).await
    })
}
