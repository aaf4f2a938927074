//! The router Lambda's handler (API Gateway HTTP API payload v2, or a function URL):
//! `POST /v1/route`, `POST /v1/chat/completions` (the OpenAI-compatible proxy) and
//! `GET /v1/models`. Thin by design: parse the request, call the domain
//! ([`tierwise::ledger::service::RoutingService`], [`tierwise::proxy::chat`]), map the outcome to an HTTP
//! answer, a JSON log line and EMF metrics. Everything is built once, at init ([`App::init`]).
//!
//! Two ways to answer: buffered ([`App::handle`], behind API Gateway, which buffers anyway: a
//! `stream: true` request gets the whole event stream at once) and streamed
//! ([`App::handle_streaming`], Lambda response streaming behind a function URL: events reach
//! the caller as the provider sends them).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lambda_http::http::{HeaderValue, Method};
use lambda_http::{Body, Request, RequestExt, Response};
use tierwise::aws::SdkConfig;
use tierwise::aws::dynamo::DynamoCostStore;
use tierwise::aws::health::DynamoHealthStore;
use tierwise::aws::sqs::SqsQueue;
use tierwise::ledger::service::{Delivery, Routed, RoutingService};
use tierwise::proxy::breaker::{BreakerSettings, SharedHealth};
use tierwise::proxy::chain::ProxySettings;
use tierwise::proxy::chat::{ChatProxy, ChatReply, ChatRequest};
use tierwise::proxy::upstream::{HttpUpstream, UpstreamSettings};
use tierwise::routing::decision::{AllHealthy, Decision, HealthView, RouteRequest, Router};
use tierwise::routing::pool::PoolConfig;
use tierwise::serve::api::{ApiError, models_list};
use tierwise::serve::lambda::{error_response, json_response, now_ms, route_path};
use tierwise::serve::metrics::{Emf, Unit};
use tierwise::serve::settings::{ProxyCallSettings, RouterSettings};

pub mod stream;

/// Header carrying the query id: given by a caller to make a retry idempotent, and returned
/// on every routed answer.
pub const QUERY_ID_HEADER: &str = "x-tierwise-query-id";
/// Request header: the request's cost cap in USD (with the body's `tierwise.max_cost_usd`,
/// the lower wins; else the pool's `max_request_cost_usd`).
pub const MAX_COST_HEADER: &str = "x-tierwise-max-cost-usd";
/// Largest request body accepted (the query limit plus JSON overhead).
pub const MAX_BODY_BYTES: usize = tierwise::routing::decision::MAX_QUERY_BYTES + 64 * 1024;
/// EMF namespace of every metric.
pub const METRICS_NAMESPACE: &str = "tierwise";

/// The service as deployed: DynamoDB for records, SQS for samples and the fallback.
pub type Service = RoutingService<DynamoCostStore, SqsQueue, SqsQueue>;

/// Where EMF lines go (stdout in Lambda; captured in tests).
pub type MetricsOut = Box<dyn Fn(&str) + Send + Sync>;

/// The shared circuit breakers as deployed (DynamoDB).
pub type Health = SharedHealth<DynamoHealthStore>;

/// The proxy as deployed: providers over HTTP, breakers in DynamoDB.
pub type Proxy = ChatProxy<HttpUpstream, Health>;

/// Everything a request needs, built once.
pub struct App {
    service: Service,
    proxy: Option<Proxy>,
    /// Every model of the pool (the candidates whose breakers are prepared per request).
    model_ids: Vec<String>,
    default_deadline: Duration,
    models_body: String,
    log_query_text: bool,
    cold: AtomicBool,
    init_ms: f64,
    metrics_out: MetricsOut,
}

impl App {
    /// Builds the router (model load on its own threads, while the SDK config loads) and the
    /// AWS clients from the settings.
    pub async fn init(settings: &RouterSettings, started: Instant) -> anyhow::Result<App> {
        let pool = match &settings.pool_path {
            Some(p) => PoolConfig::load(p)?,
            None => PoolConfig::bundled()?,
        };
        let mut key_pool = pool.clone();
        for (provider, key_ref) in &settings.proxy.api_key_refs {
            key_pool.set_api_key_ref(provider, key_ref)?;
        }
        let classifier = settings.classifier_path.clone();
        let loading = std::thread::spawn(move || {
            Router::with_pool_and_classifier(pool, classifier.as_deref())
        });
        let sdk = tierwise::aws::sdk_config(&settings.aws).await;
        // While the model loads: the provider keys (Secrets Manager / SSM / env; never logged)
        // and the breakers' first snapshot, so the first request pays for neither.
        let proxy = if settings.proxy.enabled {
            let health = build_health(&sdk, settings)?;
            let (endpoints, ()) = tokio::join!(
                tierwise::aws::secrets::load_endpoints(&key_pool, &sdk),
                health.refresh()
            );
            Some(assemble_proxy(endpoints?, health, settings)?)
        } else {
            None
        };
        let router = loading
            .join()
            .map_err(|_| anyhow::anyhow!("router loader panicked"))??;
        let service = build_service(router, &sdk, &sdk, settings);
        Ok(App::new(
            service,
            settings.log_query_text,
            started.elapsed().as_secs_f64() * 1e3,
            Box::new(|line| println!("{line}")),
        )
        .with_proxy(proxy, settings.proxy.default_deadline))
    }

    /// An app over a built service.
    pub fn new(
        service: Service,
        log_query_text: bool,
        init_ms: f64,
        metrics_out: MetricsOut,
    ) -> Self {
        let models_body = models_list(service.router().pool()).to_string();
        let model_ids = service
            .router()
            .pool()
            .models()
            .map(|(_, m)| m.id.clone())
            .collect();
        Self {
            service,
            proxy: None,
            model_ids,
            default_deadline: ProxyCallSettings::default().default_deadline,
            models_body,
            log_query_text,
            cold: AtomicBool::new(true),
            init_ms,
            metrics_out,
        }
    }

    /// Adds the proxy (`POST /v1/chat/completions`); without it that route answers 501.
    /// `default_deadline` bounds a request whose invocation has no deadline (local runs).
    pub fn with_proxy(mut self, proxy: Option<Proxy>, default_deadline: Duration) -> Self {
        self.proxy = proxy;
        self.default_deadline = default_deadline;
        self
    }

    /// The routing service.
    pub fn service(&self) -> &Service {
        &self.service
    }

    /// Answers one request, buffered. Never fails: every error is an HTTP answer.
    pub async fn handle(&self, req: Request) -> Response<Body> {
        self.dispatch(req, false).await.into_buffered(self).await
    }

    /// Answers one request for Lambda response streaming: a streamed chat completion's events
    /// are passed on as they arrive; everything else is one chunk.
    pub async fn handle_streaming(
        self: &Arc<Self>,
        req: Request,
    ) -> Response<stream::StreamingBody> {
        match self.dispatch(req, true).await {
            Reply::Done(res) => stream::buffered(res),
            Reply::Stream(s) => stream::streaming(Arc::clone(self), *s),
        }
    }

    async fn dispatch(&self, req: Request, streaming: bool) -> Reply {
        let cold = self.cold.swap(false, Ordering::Relaxed);
        if cold {
            self.emit(
                Emf::new(METRICS_NAMESPACE, now_ms())
                    .dimension("Service", "router")
                    .metrics(
                        &[&["Service"]],
                        &[
                            ("ColdStart", 1.0, Unit::Count),
                            ("InitDuration", self.init_ms, Unit::Milliseconds),
                        ],
                    ),
            );
        }
        let path = route_path(req.uri().path()).to_string();
        let method = req.method().clone();
        let res = match (path.as_str(), &method) {
            ("/v1/route", &Method::POST) => self.route(req).await,
            ("/v1/chat/completions", &Method::POST) => {
                return match self.chat(req, streaming).await {
                    Ok(reply) => reply,
                    Err(e) => Reply::Done(self.error_response(&e)),
                };
            }
            ("/v1/models", &Method::GET) => Ok(json_response(200, self.models_body.clone())),
            ("/v1/route", _) | ("/v1/chat/completions", _) => {
                Err(ApiError::method_not_allowed(method.as_str(), &path, "POST"))
            }
            ("/v1/models", _) => Err(ApiError::method_not_allowed(method.as_str(), &path, "GET")),
            _ => Err(ApiError::not_found(method.as_str(), &path)),
        };
        Reply::Done(res.unwrap_or_else(|e| self.error_response(&e)))
    }

    /// The breakers' view for routing, refreshed when stale. For a proxied request
    /// (`probe`), half-open models' probes are claimed too; a decision-only request never
    /// claims one: its outcome would never come back to close or reopen the breaker.
    async fn health(&self, probe: bool) -> &dyn HealthView {
        match &self.proxy {
            Some(p) if probe => {
                let ids: Vec<&str> = self.model_ids.iter().map(String::as_str).collect();
                p.health.prepare(&ids).await;
                &p.health
            }
            Some(p) => {
                p.health.refresh().await;
                &p.health
            }
            None => &AllHealthy,
        }
    }

    async fn chat(&self, req: Request, streaming: bool) -> Result<Reply, ApiError> {
        let Some(proxy) = &self.proxy else {
            return Err(ApiError::upstream(
                501,
                "proxy_disabled",
                "this deployment routes only (POST /v1/route); the proxy is off",
            ));
        };
        let query_id = header(&req, QUERY_ID_HEADER, "the query id must be a UUID")?;
        let cap = header(
            &req,
            MAX_COST_HEADER,
            "x-tierwise-max-cost-usd must be a number",
        )?;
        let body: &[u8] = req.body().as_ref();
        if body.len() > MAX_BODY_BYTES {
            return Err(ApiError::too_large(body.len(), MAX_BODY_BYTES));
        }
        let chat = ChatRequest::parse(body, cap.as_deref())?;
        let deadline = self.deadline(&req);
        let _ = self.health(true).await;
        let reply = self
            .service
            .chat(proxy, chat, query_id.as_deref(), deadline)
            .await?;
        Ok(match reply {
            ChatReply::Answer {
                status,
                content_type,
                body,
                decision,
                record,
                sample,
                path,
                upstream_ms,
            } => {
                self.observe_chat(&decision, status, &path, Some(&record), sample.as_ref());
                let mut res = Response::builder()
                    .status(status)
                    .header("content-type", content_type)
                    .body(Body::Binary(body.to_vec()))
                    .unwrap_or_else(|_| error_response(&ApiError::internal()));
                proxied_headers(&mut res, &decision, upstream_ms);
                Reply::Done(res)
            }
            ChatReply::Failed {
                error,
                decision,
                record,
                path,
                upstream_ms,
            } => {
                self.observe_chat(&decision, error.status, &path, Some(&record), None);
                let mut res = self.error_response(&error);
                proxied_headers(&mut res, &decision, upstream_ms);
                Reply::Done(res)
            }
            ChatReply::Stream {
                stream,
                decision,
                finish,
            } => Reply::Stream(Box::new(stream::Pending {
                stream,
                decision,
                finish,
                streaming,
            })),
        })
    }

    /// When the proxy must be done: the invocation's deadline, else the default.
    fn deadline(&self, req: &Request) -> Instant {
        let now = Instant::now();
        match req.lambda_context_ref() {
            Some(ctx) if ctx.deadline > 0 => {
                let left_ms = ctx
                    .deadline
                    .saturating_sub(u64::try_from(now_ms()).unwrap_or(0));
                now + Duration::from_millis(left_ms)
            }
            _ => now + self.default_deadline,
        }
    }

    /// The log line and metrics of a proxied request.
    pub(crate) fn observe_chat(
        &self,
        d: &Decision,
        status: u16,
        path: &str,
        record: Option<&Delivery>,
        sample: Option<&Delivery>,
    ) {
        tracing::info!(
            query_id = %d.query_id,
            tenant = %d.tenant,
            model = %d.model,
            tier = %d.tier,
            decided_by = %d.decided_by,
            confidence = d.confidence,
            status,
            path,
            record = record.map_or("none", delivery_name),
            sample = sample.map_or("not_sampled", delivery_name),
            "proxied"
        );
        let attempts = path.split(" > ").filter(|p| !p.is_empty()).count();
        let failed =
            |d: Option<&Delivery>| f64::from(u8::from(d.is_some_and(|d| !d.is_delivered())));
        self.emit(
            Emf::new(METRICS_NAMESPACE, now_ms())
                .dimension("Service", "router")
                .dimension("Tier", d.tier.as_str())
                .dimension("Model", &d.model)
                .metrics(
                    &[&["Service", "Tier", "Model"]],
                    &[
                        ("ProxiedQueries", 1.0, Unit::Count),
                        (
                            "UpstreamFailures",
                            f64::from(u8::from(status >= 400)),
                            Unit::Count,
                        ),
                        ("UpstreamAttempts", attempts as f64, Unit::Count),
                    ],
                )
                .metrics(
                    &[&["Service"]],
                    &[
                        ("RecordWriteFailures", failed(record), Unit::Count),
                        ("SampleSendFailures", failed(sample), Unit::Count),
                    ],
                ),
        );
    }

    async fn route(&self, req: Request) -> Result<Response<Body>, ApiError> {
        let query_id = header(&req, QUERY_ID_HEADER, "the query id must be a UUID")?;
        let body: &[u8] = req.body().as_ref();
        if body.len() > MAX_BODY_BYTES {
            return Err(ApiError::too_large(body.len(), MAX_BODY_BYTES));
        }
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_request(
                "the request body is empty: send a JSON object with `query` or `messages`",
            ));
        }
        let route_req: RouteRequest = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
        let health = self.health(false).await;
        let routed = self
            .service
            .route(&route_req, query_id.as_deref(), health)
            .await
            .map_err(|e| {
                if e.status() >= 500 {
                    tracing::error!(error = ?e, "routing failed");
                }
                ApiError::from(&e)
            })?;
        self.observe(&routed, &route_req);
        let body = serde_json::to_string(&routed.decision).map_err(|_| ApiError::internal())?;
        let mut res = json_response(200, body);
        if let Ok(v) = routed.decision.query_id.parse() {
            res.headers_mut().insert(QUERY_ID_HEADER, v);
        }
        Ok(res)
    }

    /// The log line and metrics of a routed query.
    fn observe(&self, routed: &Routed, req: &RouteRequest) {
        let d = &routed.decision;
        let query = if self.log_query_text {
            req.query.clone().or_else(|| {
                req.messages
                    .as_ref()
                    .map(|m| serde_json::to_string(m).unwrap_or_default())
            })
        } else {
            None
        };
        tracing::info!(
            query_id = %d.query_id,
            tenant = %d.tenant,
            model = %d.model,
            tier = %d.tier,
            predicted_tier = %d.predicted_tier,
            decided_by = %d.decided_by,
            confidence = d.confidence,
            escalated = d.escalated,
            router_ms = d.router_ms,
            estimated_cost_usd = d.estimated_cost_usd,
            record = delivery_name(&routed.record),
            sample = routed.sample.as_ref().map_or("not_sampled", delivery_name),
            query = query.as_deref(),
            "routed"
        );
        let failed =
            |d: Option<&Delivery>| f64::from(u8::from(d.is_some_and(|d| !d.is_delivered())));
        let lost =
            |d: Option<&Delivery>| f64::from(u8::from(matches!(d, Some(Delivery::Lost { .. }))));
        self.emit(
            Emf::new(METRICS_NAMESPACE, now_ms())
                .dimension("Service", "router")
                .dimension("Tier", d.tier.as_str())
                .dimension("Model", &d.model)
                .metrics(
                    &[&["Service", "Tier", "Model"], &["Service", "Tier"]],
                    &[
                        ("Queries", 1.0, Unit::Count),
                        ("CostUsd", d.estimated_cost_usd, Unit::None),
                        ("BaselineCostUsd", d.baseline_cost_usd, Unit::None),
                    ],
                )
                .metrics(
                    &[&["Service"]],
                    &[
                        ("RouterLatency", d.router_ms, Unit::Milliseconds),
                        ("Escalations", f64::from(u8::from(d.escalated)), Unit::Count),
                        (
                            "RuleDecisions",
                            f64::from(u8::from(d.decided_by.starts_with("rule:"))),
                            Unit::Count,
                        ),
                        (
                            "ShadowSamples",
                            f64::from(u8::from(routed.sample.is_some())),
                            Unit::Count,
                        ),
                        (
                            "RecordWriteFailures",
                            failed(Some(&routed.record)),
                            Unit::Count,
                        ),
                        (
                            "SampleSendFailures",
                            failed(routed.sample.as_ref()),
                            Unit::Count,
                        ),
                        (
                            "ItemsLost",
                            lost(Some(&routed.record)) + lost(routed.sample.as_ref()),
                            Unit::Count,
                        ),
                    ],
                ),
        );
    }

    pub(crate) fn error_response(&self, e: &ApiError) -> Response<Body> {
        tracing::info!(status = e.status, code = e.code, "request refused");
        self.emit(
            Emf::new(METRICS_NAMESPACE, now_ms())
                .dimension("Service", "router")
                .dimension("Status", &e.status.to_string())
                .metrics(&[&["Service", "Status"]], &[("Errors", 1.0, Unit::Count)]),
        );
        error_response(e)
    }

    pub(crate) fn emit(&self, line: Emf) {
        (self.metrics_out)(&line.to_line());
    }
}

/// The service from SDK configs (one for DynamoDB, one for SQS: the same in a deployment;
/// tests point them at different endpoints).
pub fn build_service(
    router: Router,
    dynamo: &SdkConfig,
    sqs: &SdkConfig,
    settings: &RouterSettings,
) -> Service {
    let ddb = tierwise::aws::dynamodb_client(dynamo);
    let sqs = tierwise::aws::sqs_client(sqs);
    RoutingService::new(
        router,
        DynamoCostStore::new(
            ddb,
            &settings.table,
            settings.rollup_shards,
            settings.record_ttl_days,
        ),
        SqsQueue::new(sqs.clone(), &settings.shadow_queue_url),
        SqsQueue::new(sqs, &settings.fallback_queue_url),
        settings.shadow_rate,
    )
}

/// The proxy from the providers' endpoints: HTTP client, shared breakers on the table.
pub fn build_proxy(
    endpoints: tierwise::proxy::upstream::Endpoints,
    dynamo: &SdkConfig,
    settings: &RouterSettings,
) -> anyhow::Result<Proxy> {
    assemble_proxy(endpoints, build_health(dynamo, settings)?, settings)
}

/// The shared circuit breakers on the table (nothing loaded yet).
pub fn build_health(dynamo: &SdkConfig, settings: &RouterSettings) -> anyhow::Result<Health> {
    let p = &settings.proxy;
    let breakers = BreakerSettings {
        failure_threshold: p.breaker_failures,
        window: p.breaker_window,
        cooldown: p.breaker_cooldown,
        ..BreakerSettings::default()
    };
    breakers.validate()?;
    let store = DynamoHealthStore::new(tierwise::aws::dynamodb_client(dynamo), &settings.table);
    Ok(SharedHealth::new(store, breakers))
}

fn assemble_proxy(
    endpoints: tierwise::proxy::upstream::Endpoints,
    health: Health,
    settings: &RouterSettings,
) -> anyhow::Result<Proxy> {
    let p = &settings.proxy;
    let upstream = HttpUpstream::new(
        endpoints,
        &UpstreamSettings {
            connect_timeout: p.connect_timeout,
            read_timeout: p.read_timeout,
            ..UpstreamSettings::default()
        },
    )?;
    Ok(ChatProxy {
        upstream,
        health,
        settings: ProxySettings {
            attempts_per_model: p.attempts_per_model,
            attempt_timeout: p.attempt_timeout,
            max_retry_after: p.max_retry_after,
            ..ProxySettings::default()
        },
    })
}

/// How a request was answered: whole, or a stream still to pass on.
enum Reply {
    Done(Response<Body>),
    Stream(Box<stream::Pending>),
}

impl Reply {
    /// The buffered answer: a stream is read to its end first.
    async fn into_buffered(self, app: &App) -> Response<Body> {
        match self {
            Reply::Done(r) => r,
            Reply::Stream(p) => {
                let mut res = stream::collect(app, *p).await;
                let _ = res.body_mut();
                res
            }
        }
    }
}

/// A request header's text, when present; a header that is not text is a 400.
fn header(req: &Request, name: &str, message: &'static str) -> Result<Option<String>, ApiError> {
    match req.headers().get(name) {
        Some(v) => v
            .to_str()
            .map(|s| Some(s.to_string()))
            .map_err(|_| ApiError::bad_request(message)),
        None => Ok(None),
    }
}

/// Header with the time spent in upstream calls: the caller can tell tierwise's own time
/// from the providers'.
pub const UPSTREAM_MS_HEADER: &str = "x-tierwise-upstream-ms";

/// The decision's headers and the upstream time, on a proxied answer or failure.
fn proxied_headers<B>(res: &mut Response<B>, d: &Decision, ms: f64) {
    decision_headers(res, d);
    if let Ok(v) = HeaderValue::from_str(&format!("{ms:.3}")) {
        res.headers_mut().insert(UPSTREAM_MS_HEADER, v);
    }
}

/// The decision as `x-tierwise-*` headers.
pub(crate) fn decision_headers<B>(res: &mut Response<B>, d: &Decision) {
    let h = res.headers_mut();
    for (name, value) in [
        (QUERY_ID_HEADER, d.query_id.clone()),
        ("x-tierwise-model", d.model.clone()),
        ("x-tierwise-tier", d.tier.as_str().to_string()),
        ("x-tierwise-confidence", d.confidence.to_string()),
        ("x-tierwise-decided-by", d.decided_by.clone()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    if let Some(Ok(v)) = d.task_kind.as_deref().map(HeaderValue::from_str) {
        h.insert("x-tierwise-task-kind", v);
    }
}

fn delivery_name(d: &Delivery) -> &'static str {
    match d {
        Delivery::Delivered => "delivered",
        Delivery::Duplicate => "duplicate",
        Delivery::Parked { .. } => "parked",
        Delivery::Lost { .. } => "lost",
    }
}
