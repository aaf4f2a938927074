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
use tierwise::access::guard::{Guard, Principal, Reservation};
use tierwise::aws::SdkConfig;
use tierwise::aws::dynamo::DynamoCostStore;
use tierwise::aws::health::DynamoHealthStore;
use tierwise::aws::keys::DynamoKeyStore;
use tierwise::aws::once::DynamoCallLedger;
use tierwise::aws::sqs::SqsQueue;
use tierwise::ledger::money::{Timestamp, Usd};
use tierwise::ledger::once::{Begin, CallLedger, StoredAnswer};
use tierwise::ledger::service::{Delivery, Routed, RoutingService, Settled, parse_query_id};
use tierwise::proxy::breaker::{BreakerSettings, SharedHealth};
use tierwise::proxy::chain::ProxySettings;
use tierwise::proxy::chat::{ChatProxy, ChatReply, ChatRequest, Trail, effective_cap};
use tierwise::proxy::upstream::{HttpUpstream, UpstreamSettings};
use tierwise::routing::decision::{AllHealthy, Decision, HealthView, RouteRequest, Router};
use tierwise::serve::api::models_list;
use tierwise::serve::errors::ApiError;
use tierwise::serve::lambda::{error_response, json_response, route_path};
use tierwise::serve::metrics::{Metrics, MetricsOut, NAMESPACE, Unit, now_ms, stdout};
use tierwise::serve::settings::{AuthMode, ProxyCallSettings, RouterSettings};

pub mod stream;

/// The log line of a decision: the fields every answered query logs, then `extra` fields.
macro_rules! log_decision {
    ($d:expr, $message:literal, $($extra:tt)*) => {
        tracing::info!(
            query_id = %$d.query_id,
            tenant = %$d.tenant,
            model = %$d.model,
            tier = %$d.tier,
            decided_by = %$d.decided_by,
            confidence = $d.confidence,
            $($extra)*
            $message
        )
    };
}

/// Header carrying the query id: given by a caller to make a retry idempotent, and returned
/// on every routed answer.
pub const QUERY_ID_HEADER: &str = "x-tierwise-query-id";
/// Request header: the request's cost cap in USD (with the body's `tierwise.max_cost_usd`,
/// the lower wins; else the pool's `max_request_cost_usd`).
pub const MAX_COST_HEADER: &str = "x-tierwise-max-cost-usd";
/// Largest request body accepted (the query limit plus JSON overhead).
pub const MAX_BODY_BYTES: usize = tierwise::routing::decision::MAX_QUERY_BYTES + 64 * 1024;
/// `Service` dimension of the router's metrics.
pub const SERVICE: &str = "router";

/// The service as deployed: DynamoDB for records, SQS for samples and the fallback.
pub type Service = RoutingService<DynamoCostStore, SqsQueue, SqsQueue>;

/// The shared circuit breakers as deployed (DynamoDB).
pub type Health = SharedHealth<DynamoHealthStore>;

/// The proxy as deployed: providers over HTTP, breakers in DynamoDB.
pub type Proxy = ChatProxy<HttpUpstream, Health>;

/// The API-key checks as deployed (keys and their counters in the table).
pub type Access = Guard<DynamoKeyStore>;

/// Header on an answer replayed from the call marker of its query id.
pub const REPLAYED_HEADER: &str = "x-tierwise-replayed";

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
    metrics: Metrics,
    /// `TIERWISE_AUTH=keys`: the Bearer-key checks.
    access: Option<Access>,
    /// The call markers: one provider call per caller-given query id.
    calls: Option<DynamoCallLedger>,
    /// Kept from the invocation's time for writing a record (and parking it when the write
    /// fails): a stream is cut this long before the deadline.
    record_margin: Duration,
}

impl App {
    /// Builds the router (model load on its own threads, while the SDK config loads) and the
    /// AWS clients from the settings.
    pub async fn init(settings: &RouterSettings, started: Instant) -> anyhow::Result<App> {
        let classifier = settings.classifier_path.clone();
        let spawn = move |pool| {
            std::thread::spawn(move || {
                Router::with_pool_and_classifier(pool, classifier.as_deref())
            })
        };
        let refs = &settings.proxy.api_key_refs;
        let (key_pool, loading, sdk) = match &settings.pool_ssm_parameter {
            // From a file or bundled: the model loads while the SDK config does.
            None => {
                let pool =
                    tierwise::aws::secrets::deployment_pool(settings.pool_path.as_deref(), refs)?;
                let loading = spawn(pool.clone());
                (
                    pool,
                    loading,
                    tierwise::aws::sdk_config(&settings.aws).await,
                )
            }
            // From SSM: the SDK first, to read the parameter.
            Some(name) => {
                let sdk = tierwise::aws::sdk_config(&settings.aws).await;
                let pool = tierwise::aws::secrets::ssm_pool(&sdk, name, refs).await?;
                (pool.clone(), spawn(pool), sdk)
            }
        };
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
            stdout(),
        )
        .with_proxy(proxy, settings.proxy.default_deadline)
        .with_guards(&sdk, settings))
    }

    /// Adds the call markers (exactly one provider call per caller-given query id) and, with
    /// `TIERWISE_AUTH=keys`, the Bearer-key checks, both over the table.
    pub fn with_guards(mut self, dynamo: &SdkConfig, settings: &RouterSettings) -> Self {
        let client = tierwise::aws::dynamodb_client(dynamo);
        self.calls = Some(DynamoCallLedger::new(client.clone(), &settings.table));
        self.record_margin = record_margin(settings);
        if settings.auth == AuthMode::Keys {
            let store = DynamoKeyStore::new(client, &settings.table);
            self.access = Some(Guard::new(store).with_cache_ttl(settings.key_cache));
        }
        self
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
            metrics: Metrics::new(NAMESPACE, SERVICE, metrics_out),
            access: None,
            calls: None,
            record_margin: RECORD_MARGIN,
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
            self.metrics.service_metrics(&[
                ("ColdStart", 1.0, Unit::Count),
                ("InitDuration", self.init_ms, Unit::Milliseconds),
            ]);
        }
        let principal = match self.admit(&req).await {
            Ok(p) => p,
            Err(e) => return Reply::Done(self.error_response(&e)),
        };
        let who = principal.as_ref();
        let path = route_path(req.uri().path()).to_string();
        let method = req.method().clone();
        let res = match (path.as_str(), &method) {
            ("/v1/route", &Method::POST) => self.route(req, who).await,
            ("/v1/chat/completions", &Method::POST) => {
                return match self.chat(req, streaming, who).await {
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

    /// With Bearer keys on: the caller's key, checked, and its request counted against its
    /// requests per minute. `None` when the gateway authenticates (IAM).
    async fn admit(&self, req: &Request) -> Result<Option<Principal>, ApiError> {
        let Some(guard) = &self.access else {
            return Ok(None);
        };
        let auth = header(
            req,
            "authorization",
            "the Authorization header must be text",
        )?;
        let now = u64::try_from(now_ms()).unwrap_or(0);
        let p = guard.authenticate(auth.as_deref(), now).await?;
        guard.admit(&p, &Timestamp::now()).await?;
        Ok(Some(p))
    }

    async fn chat(
        &self,
        req: Request,
        streaming: bool,
        who: Option<&Principal>,
    ) -> Result<Reply, ApiError> {
        let Some(proxy) = &self.proxy else {
            return Err(ApiError::proxy_disabled());
        };
        let query_id = header(&req, QUERY_ID_HEADER, "the query id must be a UUID")?;
        let cap = header(
            &req,
            MAX_COST_HEADER,
            "x-tierwise-max-cost-usd must be a number",
        )?;
        let mut chat = ChatRequest::parse(body(&req)?, cap.as_deref())?;
        let deadline = self.deadline(&req);
        let marker = match self.begin_call(query_id.as_deref(), deadline).await? {
            Ok(marker) => marker,
            Err(replayed) => return Ok(Reply::Done(*replayed)),
        };
        let reservation = match self.bind_chat(&mut chat, who).await {
            Ok(r) => r,
            Err(e) => {
                self.abandon(marker.as_deref()).await;
                return Err(e);
            }
        };
        let _ = self.health(true).await;
        let reply = match self
            .service
            .chat(proxy, chat, query_id.as_deref(), deadline)
            .await
        {
            Ok(reply) => reply,
            Err(e) => {
                self.abandon(marker.as_deref()).await;
                self.settle_budget(reservation, Usd::ZERO).await;
                return Err(e.into());
            }
        };
        let cut_at = deadline
            .checked_sub(self.record_margin)
            .unwrap_or_else(Instant::now);
        Ok(self
            .reply(reply, reservation, marker.as_deref(), (streaming, cut_at))
            .await)
    }

    /// The HTTP answer of a proxied request, its budget settled and its call marker closed.
    async fn reply(
        &self,
        reply: ChatReply,
        reservation: Option<Reservation>,
        marker: Option<&str>,
        (streaming, cut_at): (bool, Instant),
    ) -> Reply {
        match reply {
            ChatReply::Answer { answer, trail } => {
                self.observe_chat(&trail.decision, answer.status, &trail.path, &trail.settled);
                let mut res = Response::builder()
                    .status(answer.status)
                    .header("content-type", answer.content_type)
                    .body(Body::Binary(answer.body.to_vec()))
                    .unwrap_or_else(|_| error_response(&ApiError::internal()));
                proxied_headers(&mut res, &trail);
                self.settle_budget(reservation, trail.settled.cost_usd)
                    .await;
                self.complete_call(marker, Some(&res)).await;
                Reply::Done(res)
            }
            ChatReply::Failed { reason, trail } => {
                let error = ApiError::from(&reason);
                self.observe_chat(&trail.decision, error.status, &trail.path, &trail.settled);
                let mut res = self.error_response(&error);
                proxied_headers(&mut res, &trail);
                self.settle_budget(reservation, trail.settled.cost_usd)
                    .await;
                if trail.settled.cost_usd > Usd::ZERO {
                    self.complete_call(marker, Some(&res)).await;
                } else {
                    // Nothing was billed: the same query id may be tried again.
                    self.abandon(marker).await;
                }
                Reply::Done(res)
            }
            ChatReply::Stream(p) => {
                // A stream is not kept for replays: a replay of its query id is told so. Its
                // reservation stays at the worst case (never under the real cost).
                self.complete_call(marker, None).await;
                Reply::Stream(Box::new(stream::Pending {
                    stream: p.stream,
                    finish: p.finish,
                    streaming,
                    cut_at,
                }))
            }
        }
    }

    /// Binds a chat request to the caller's key (tenant, tiers, a named model) and reserves its
    /// worst case — the lower of the request's and the pool's cap — against the key's budget.
    async fn bind_chat(
        &self,
        chat: &mut ChatRequest,
        who: Option<&Principal>,
    ) -> Result<Option<Reservation>, ApiError> {
        let (Some(guard), Some(p)) = (&self.access, who) else {
            return Ok(None);
        };
        guard.bind(p, &mut chat.route)?;
        let pool = self.service.router().pool();
        if let Some((tier, _)) = pool.model(&chat.model) {
            guard.check_model(p, &chat.model, tier)?;
        }
        let worst = effective_cap(chat.max_cost_usd, pool.max_request_cost_usd())
            .map_or(Usd::ZERO, Usd::from_f64);
        Ok(guard.reserve(p, worst, &Timestamp::now()).await?)
    }

    /// Settles a budget reservation to what the call cost.
    async fn settle_budget(&self, reservation: Option<Reservation>, cost: Usd) {
        if let (Some(guard), Some(r)) = (&self.access, reservation)
            && let Err(e) = guard.settle(r, cost).await
        {
            // The reservation (the worst case) stays counted: never less than was spent.
            tracing::warn!(error = %e, "budget reservation not settled");
        }
    }

    /// The call marker of a caller-given query id: `Ok(Ok(Some(id)))` when this request may
    /// call the provider, `Ok(Err(answer))` with the kept answer of a completed call, a 409
    /// when the call is running or its answer was not kept. Without a query id (a fresh one
    /// is made) or a marker store, no marker. When the store fails, the request goes on
    /// unmarked (the record write still refuses a second record).
    async fn begin_call(
        &self,
        query_id: Option<&str>,
        deadline: Instant,
    ) -> Result<Result<Option<String>, Box<Response<Body>>>, ApiError> {
        let (Some(calls), Some(id)) = (&self.calls, query_id.and_then(|q| parse_query_id(q).ok()))
        else {
            return Ok(Ok(None));
        };
        let lease = deadline.saturating_duration_since(Instant::now()) + CALL_LEASE_MARGIN;
        let now = u64::try_from(now_ms()).unwrap_or(0);
        match calls.begin(&id, now, lease.as_millis() as u64).await {
            Ok(Begin::Started) => Ok(Ok(Some(id))),
            Ok(Begin::InProgress) => Err(ApiError::conflict(
                "request_in_progress",
                "a request with this x-tierwise-query-id is still running",
            )),
            Ok(Begin::Completed(Some(answer))) => Ok(Err(Box::new(replayed(answer)))),
            Ok(Begin::Completed(None)) => Err(ApiError::conflict(
                "already_answered",
                "this x-tierwise-query-id was answered (streamed or too large to replay); use a new id",
            )),
            Err(e) => {
                tracing::warn!(query_id = %id, error = %e, "call marker unavailable: going on unmarked");
                Ok(Ok(None))
            }
        }
    }

    /// Marks a call done, keeping its answer for replays when given.
    async fn complete_call(&self, marker: Option<&str>, answer: Option<&Response<Body>>) {
        let (Some(calls), Some(id)) = (&self.calls, marker) else {
            return;
        };
        let kept = answer.map(stored_answer);
        let expires = Timestamp::now().unix_secs() + CALL_KEEP_SECS;
        if let Err(e) = calls.complete(id, kept.as_ref(), expires).await {
            tracing::warn!(query_id = %id, error = %e, "call marker not completed");
        }
    }

    /// Drops a call marker when nothing was billed.
    async fn abandon(&self, marker: Option<&str>) {
        if let (Some(calls), Some(id)) = (&self.calls, marker)
            && let Err(e) = calls.abandon(id).await
        {
            tracing::warn!(query_id = %id, error = %e, "call marker not dropped");
        }
    }

    /// When the proxy must be done: the invocation's deadline, else the default. A deadline
    /// already past when the request starts is no deadline Lambda gives (a local runtime
    /// emulator's clock or units): the default applies, so the proxy still calls upstream.
    fn deadline(&self, req: &Request) -> Instant {
        let now = Instant::now();
        let left_ms = req.lambda_context_ref().and_then(|ctx| {
            let left = ctx
                .deadline
                .checked_sub(u64::try_from(now_ms()).unwrap_or(0))?;
            (left > 0).then_some(left)
        });
        match left_ms {
            Some(ms) => now + Duration::from_millis(ms),
            None => now + self.default_deadline,
        }
    }

    /// The log line and metrics of a proxied request.
    pub(crate) fn observe_chat(&self, d: &Decision, status: u16, path: &str, settled: &Settled) {
        log_decision!(
            d,
            "proxied",
            status,
            path,
            record = settled.record.as_str(),
            sample = settled
                .sample
                .as_ref()
                .map_or("not_sampled", Delivery::as_str),
        );
        let attempts = path.split(" > ").filter(|p| !p.is_empty()).count();
        self.metrics.emit(|line| {
            line.dimension("Tier", d.tier.as_str())
                .dimension("Model", &d.model)
                .metrics(
                    &[&["Service", "Tier", "Model"]],
                    &[
                        ("ProxiedQueries", 1.0, Unit::Count),
                        ("UpstreamFailures", flag(status >= 400), Unit::Count),
                        ("UpstreamAttempts", attempts as f64, Unit::Count),
                    ],
                )
                // What the call cost (as recorded), like a routed query's: dashboards and the
                // spend alarm see proxied traffic too.
                .metrics(
                    &[&["Service", "Tier", "Model"], &["Service", "Tier"]],
                    &[("CostUsd", settled.cost_usd.as_f64(), Unit::None)],
                )
                .metrics(&[&["Service"]], &delivery_failures(settled))
        });
    }

    async fn route(
        &self,
        req: Request,
        who: Option<&Principal>,
    ) -> Result<Response<Body>, ApiError> {
        let query_id = header(&req, QUERY_ID_HEADER, "the query id must be a UUID")?;
        let body = body(&req)?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_request(
                "the request body is empty: send a JSON object with `query` or `messages`",
            ));
        }
        let mut route_req: RouteRequest = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
        if let (Some(guard), Some(p)) = (&self.access, who) {
            guard.bind(p, &mut route_req)?;
        }
        let health = self.health(false).await;
        let routed = self
            .service
            .route(&route_req, query_id.as_deref(), health)
            .await
            .map_err(|e| {
                let answer = ApiError::from(&e);
                if answer.status >= 500 {
                    tracing::error!(error = ?e, "routing failed");
                }
                answer
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
        let settled = &routed.settled;
        let query = if self.log_query_text {
            req.query.clone().or_else(|| {
                req.messages
                    .as_ref()
                    .map(|m| serde_json::to_string(m).unwrap_or_default())
            })
        } else {
            None
        };
        log_decision!(
            d,
            "routed",
            predicted_tier = %d.predicted_tier,
            escalated = d.escalated,
            router_ms = d.router_ms,
            estimated_cost_usd = d.estimated_cost_usd.as_f64(),
            record = settled.record.as_str(),
            sample = settled.sample.as_ref().map_or("not_sampled", Delivery::as_str),
            query = query.as_deref(),
        );
        let [record_failures, sample_failures] = delivery_failures(settled);
        self.metrics.emit(|line| {
            line.dimension("Tier", d.tier.as_str())
                .dimension("Model", &d.model)
                .metrics(
                    &[&["Service", "Tier", "Model"], &["Service", "Tier"]],
                    &[
                        ("Queries", 1.0, Unit::Count),
                        ("CostUsd", d.estimated_cost_usd.as_f64(), Unit::None),
                        ("BaselineCostUsd", d.baseline_cost_usd.as_f64(), Unit::None),
                    ],
                )
                .metrics(
                    &[&["Service"]],
                    &[
                        ("RouterLatency", d.router_ms, Unit::Milliseconds),
                        ("Escalations", flag(d.escalated), Unit::Count),
                        ("RuleDecisions", flag(d.decided_by.is_rule()), Unit::Count),
                        ("ShadowSamples", flag(settled.sample.is_some()), Unit::Count),
                        record_failures,
                        sample_failures,
                        ("ItemsLost", f64::from(settled.lost()), Unit::Count),
                    ],
                )
        });
    }

    pub(crate) fn error_response(&self, e: &ApiError) -> Response<Body> {
        tracing::info!(status = e.status, code = e.code, "request refused");
        self.metrics.emit(|line| {
            line.dimension("Status", &e.status.to_string())
                .metrics(&[&["Service", "Status"]], &[("Errors", 1.0, Unit::Count)])
        });
        error_response(e)
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
    .with_sampling_salt(settings.sampling_salt.as_deref())
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
            deadline_margin: record_margin(settings),
            ..ProxySettings::default()
        },
    })
}

/// Kept for writing a record before the invocation's deadline when the settings do not say
/// (two AWS operations of the default timeout, and some slack).
const RECORD_MARGIN: Duration = Duration::from_millis(4_500);

/// The time a record needs before the invocation's deadline: the worst record write (one
/// AWS operation, all its attempts), the worst park after it, and half a second of slack.
/// Upstream calls stop, and streams are cut, this long before the deadline.
pub fn record_margin(settings: &RouterSettings) -> Duration {
    settings.aws.operation_timeout * 2 + Duration::from_millis(500)
}

/// Added to the time a call may take for its marker's lease (a holder that died frees the id
/// after it).
const CALL_LEASE_MARGIN: Duration = Duration::from_secs(10);
/// How long a completed call's marker (and kept answer) stays: replays come within a day.
const CALL_KEEP_SECS: i64 = 86_400;

/// An answer as kept for replays: status, content type, the `x-tierwise-*` headers, body.
fn stored_answer(res: &Response<Body>) -> StoredAnswer {
    let headers = res
        .headers()
        .iter()
        .filter(|(k, _)| k.as_str().starts_with("x-tierwise-"))
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    StoredAnswer {
        status: res.status().as_u16(),
        content_type: res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
            .to_string(),
        headers,
        body: res.body().as_ref().to_vec(),
    }
}

/// A kept answer, replayed byte for byte (marked as a replay).
fn replayed(a: StoredAnswer) -> Response<Body> {
    let mut res = Response::builder()
        .status(a.status)
        .header("content-type", a.content_type)
        .header(REPLAYED_HEADER, "true")
        .body(Body::Binary(a.body))
        .unwrap_or_else(|_| error_response(&ApiError::internal()));
    for (k, v) in a.headers {
        if let (Ok(name), Ok(value)) = (
            lambda_http::http::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(&v),
        ) {
            res.headers_mut().insert(name, value);
        }
    }
    res
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

/// The request body, when within [`MAX_BODY_BYTES`].
fn body(req: &Request) -> Result<&[u8], ApiError> {
    let body: &[u8] = req.body().as_ref();
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::too_large(body.len(), MAX_BODY_BYTES));
    }
    Ok(body)
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
fn proxied_headers<B>(res: &mut Response<B>, trail: &Trail) {
    decision_headers(res, &trail.decision);
    let ms = trail.upstream_ms;
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
        ("x-tierwise-decided-by", d.decided_by.to_string()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    if let Some(Ok(v)) = d.task_kind.as_deref().map(HeaderValue::from_str) {
        h.insert("x-tierwise-task-kind", v);
    }
}

/// A condition as a count metric's value (0 or 1).
fn flag(b: bool) -> f64 {
    f64::from(u8::from(b))
}

/// Whether the record and the sample failed to reach their stores, as metrics.
fn delivery_failures(settled: &Settled) -> [(&'static str, f64, Unit); 2] {
    [
        (
            "RecordWriteFailures",
            flag(settled.record_failed()),
            Unit::Count,
        ),
        (
            "SampleSendFailures",
            flag(settled.sample_failed()),
            Unit::Count,
        ),
    ]
}
