//! The router Lambda's handler (API Gateway HTTP API, payload v2): `POST /v1/route` and
//! `GET /v1/models`. Thin by design: parse the request, call the domain
//! ([`tierwise::service::RoutingService`]), map the outcome to an HTTP answer, a JSON log
//! line and EMF metrics. Everything is built once, at init ([`App::init`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};
use tierwise::api::{ApiError, models_list};
use tierwise::aws::SdkConfig;
use tierwise::aws::dynamo::DynamoCostStore;
use tierwise::aws::sqs::SqsQueue;
use tierwise::config::PoolConfig;
use tierwise::lambda::{error_response, json_response, now_ms, route_path};
use tierwise::metrics::{Emf, Unit};
use tierwise::router::{AllHealthy, RouteRequest, Router};
use tierwise::service::{Delivery, Routed, RoutingService};
use tierwise::settings::RouterSettings;

/// Header carrying the query id: given by a caller to make a retry idempotent, and returned
/// on every routed answer.
pub const QUERY_ID_HEADER: &str = "x-tierwise-query-id";
/// Largest request body accepted (the query limit plus JSON overhead).
pub const MAX_BODY_BYTES: usize = tierwise::router::MAX_QUERY_BYTES + 64 * 1024;
/// EMF namespace of every metric.
pub const METRICS_NAMESPACE: &str = "tierwise";

/// The service as deployed: DynamoDB for records, SQS for samples and the fallback.
pub type Service = RoutingService<DynamoCostStore, SqsQueue, SqsQueue>;

/// Where EMF lines go (stdout in Lambda; captured in tests).
pub type MetricsOut = Box<dyn Fn(&str) + Send + Sync>;

/// Everything a request needs, built once.
pub struct App {
    service: Service,
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
        let loading = std::thread::spawn(move || Router::with_pool(pool));
        let sdk = tierwise::aws::sdk_config(&settings.aws).await;
        let router = loading
            .join()
            .map_err(|_| anyhow::anyhow!("router loader panicked"))??;
        let service = build_service(router, &sdk, &sdk, settings);
        Ok(App::new(
            service,
            settings.log_query_text,
            started.elapsed().as_secs_f64() * 1e3,
            Box::new(|line| println!("{line}")),
        ))
    }

    /// An app over a built service.
    pub fn new(
        service: Service,
        log_query_text: bool,
        init_ms: f64,
        metrics_out: MetricsOut,
    ) -> Self {
        let models_body = models_list(service.router().pool()).to_string();
        Self {
            service,
            models_body,
            log_query_text,
            cold: AtomicBool::new(true),
            init_ms,
            metrics_out,
        }
    }

    /// Answers one request. Never fails: every error is an HTTP answer.
    pub async fn handle(&self, req: Request) -> Response<Body> {
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
            ("/v1/models", &Method::GET) => Ok(json_response(200, self.models_body.clone())),
            ("/v1/route", _) => Err(ApiError::method_not_allowed(method.as_str(), &path, "POST")),
            ("/v1/models", _) => Err(ApiError::method_not_allowed(method.as_str(), &path, "GET")),
            _ => Err(ApiError::not_found(method.as_str(), &path)),
        };
        res.unwrap_or_else(|e| self.error_response(&e))
    }

    async fn route(&self, req: Request) -> Result<Response<Body>, ApiError> {
        let query_id = match req.headers().get(QUERY_ID_HEADER) {
            Some(v) => Some(
                v.to_str()
                    .map_err(|_| ApiError::bad_request("the query id must be a UUID"))?
                    .to_string(),
            ),
            None => None,
        };
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
        let routed = self
            .service
            .route(&route_req, query_id.as_deref(), &AllHealthy)
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

    fn error_response(&self, e: &ApiError) -> Response<Body> {
        tracing::info!(status = e.status, code = e.code, "request refused");
        self.emit(
            Emf::new(METRICS_NAMESPACE, now_ms())
                .dimension("Service", "router")
                .dimension("Status", &e.status.to_string())
                .metrics(&[&["Service", "Status"]], &[("Errors", 1.0, Unit::Count)]),
        );
        error_response(e)
    }

    fn emit(&self, line: Emf) {
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

fn delivery_name(d: &Delivery) -> &'static str {
    match d {
        Delivery::Delivered => "delivered",
        Delivery::Duplicate => "duplicate",
        Delivery::Parked { .. } => "parked",
        Delivery::Lost { .. } => "lost",
    }
}
