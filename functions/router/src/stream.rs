//! Passing a streamed chat completion on: the provider's event stream goes to the caller
//! chunk by chunk, through an [`SseTap`] that reads its usage; a failure after the first
//! byte ends the stream with an OpenAI-style error event (no fallback is possible once the
//! caller has bytes); so does the invocation's time limit, less the time the record needs
//! (`cut_at`): a stream is never outlived by its invocation. When the stream has ended, its
//! cost record (and sample) is written — before the body closes, so the invocation is still
//! alive.
//!
//! Under Lambda response streaming the events are sent as they come ([`streaming`]); behind
//! API Gateway, which buffers, the same events are collected first ([`collect`]).

use std::convert::Infallible;
use std::ops::Deref;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use lambda_http::Body;
use lambda_http::http::Response;
use tierwise::proxy::chat::StreamFinish;
use tierwise::proxy::upstream::{ChatStream, SseTap, UpstreamError};

use crate::{App, decision_headers};

/// The body of a streamed Lambda response.
pub type StreamingBody = UnsyncBoxBody<Bytes, Infallible>;

/// The event that ends a stream the provider broke off.
pub const INTERRUPTED_EVENT: &[u8] = b"data: {\"error\":{\"message\":\"the model provider's stream was interrupted; the answer is incomplete\",\"type\":\"upstream_error\",\"code\":\"stream_interrupted\"}}\n\n";

/// The event that ends a stream cut at the invocation's time limit.
pub const CUT_EVENT: &[u8] = b"data: {\"error\":{\"message\":\"the answer was cut at the request's time limit; it is incomplete\",\"type\":\"upstream_error\",\"code\":\"deadline_exceeded\"}}\n\n";

/// A stream whose first bytes have arrived, not yet passed on.
pub struct Pending {
    pub stream: ChatStream,
    pub finish: StreamFinish,
    /// Whether the caller gets it streamed (else buffered).
    pub streaming: bool,
    /// When the stream is cut: the invocation's deadline less the time its record needs.
    pub cut_at: std::time::Instant,
}

/// A whole (buffered) answer as a streamed body of one chunk.
pub fn buffered(res: Response<Body>) -> Response<StreamingBody> {
    let (parts, body) = res.into_parts();
    let bytes = Bytes::copy_from_slice(body.as_ref());
    Response::from_parts(parts, Full::new(bytes).boxed_unsync())
}

/// The stream passed on as it arrives.
pub fn streaming(app: Arc<App>, p: Pending) -> Response<StreamingBody> {
    let mut res = head(&p);
    let events = events(app, p).map(|b| Ok::<_, Infallible>(hyper_frame(b)));
    *res.body_mut() = StreamBody::new(events).boxed_unsync();
    res
}

/// The stream read to its end, as one answer.
pub async fn collect(app: &App, p: Pending) -> Response<Body> {
    let res = head(&p);
    let chunks: Vec<Bytes> = events(app, p).collect().await;
    let (parts, _) = res.into_parts();
    Response::from_parts(parts, Body::Binary(chunks.concat()))
}

fn hyper_frame(b: Bytes) -> http_body::Frame<Bytes> {
    http_body::Frame::data(b)
}

/// Status and headers of a streamed answer (the body is set by the caller).
fn head(p: &Pending) -> Response<StreamingBody> {
    let mut res = Response::new(http_body_util::Empty::new().boxed_unsync());
    *res.status_mut() = lambda_http::http::StatusCode::from_u16(p.stream.status)
        .unwrap_or(lambda_http::http::StatusCode::OK);
    if let Ok(v) = p.stream.content_type.parse() {
        res.headers_mut().insert("content-type", v);
    }
    res.headers_mut().insert(
        "cache-control",
        lambda_http::http::HeaderValue::from_static("no-cache"),
    );
    decision_headers(&mut res, p.finish.decision());
    res
}

struct State<A> {
    app: A,
    first: Option<Bytes>,
    stream: ChatStream,
    tap: SseTap,
    finish: Option<StreamFinish>,
    error: Option<UpstreamError>,
    cut_at: tokio::time::Instant,
    cut: bool,
}

/// The provider's chunks, then (after a failure) the interruption event; the record is
/// written once the provider's stream has ended, before this stream ends.
fn events<A: Deref<Target = App> + Send>(app: A, p: Pending) -> impl Stream<Item = Bytes> + Send {
    let first = p.stream.first.clone();
    let state = State {
        app,
        first: Some(first),
        stream: p.stream,
        tap: SseTap::new(),
        finish: Some(p.finish),
        error: None,
        cut_at: tokio::time::Instant::from_std(p.cut_at),
        cut: false,
    };
    futures_util::stream::unfold(state, |mut st| async move {
        if let Some(b) = st.first.take() {
            st.tap.feed(&b);
            return Some((b, st));
        }
        st.finish.as_ref()?;
        if st.error.is_none() && !st.cut {
            match tokio::time::timeout_at(st.cut_at, st.stream.rest.next()).await {
                Ok(Some(Ok(b))) => {
                    st.tap.feed(&b);
                    return Some((b, st));
                }
                Ok(Some(Err(e))) => {
                    tracing::warn!(error = %e, "upstream stream interrupted after its first bytes");
                    st.error = Some(e);
                    return Some((Bytes::from_static(INTERRUPTED_EVENT), st));
                }
                Ok(None) => {}
                Err(_) => {
                    tracing::warn!("stream cut at the invocation's time limit");
                    st.cut = true;
                    return Some((Bytes::from_static(CUT_EVENT), st));
                }
            }
        }
        st.tap.finish();
        let finish = st.finish.take()?;
        let decision = finish.decision().clone();
        let path = finish.path().to_string();
        let settled = finish
            .finish(st.app.service(), &st.tap, st.error.as_ref(), st.cut)
            .await;
        let status = if st.cut {
            504
        } else if st.error.is_some() || !st.tap.done() {
            502
        } else {
            200
        };
        st.app.observe_chat(&decision, status, &path, &settled);
        None
    })
}
