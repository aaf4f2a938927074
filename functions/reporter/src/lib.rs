//! The reporter Lambda's handler (API Gateway HTTP API, payload v2):
//! `GET /v1/reports?from=YYYY-MM-DD&to=YYYY-MM-DD[&tenant=][&group_by=day|tier|model]`.
//! Thin: parse and validate the parameters, read the period's rollups (one DynamoDB `Query`
//! per day, never a scan of records), build the report in `tierwise::report`, answer JSON.

use std::time::Instant;

use lambda_http::http::Method;
use lambda_http::{Body, Request, RequestExt, Response};
use tierwise::access::guard::Guard;
use tierwise::aws::dynamo::DynamoRollups;
use tierwise::aws::keys::DynamoKeyStore;
use tierwise::report::ReportParams;
use tierwise::report::source::read_rollups;
use tierwise::serve::errors::ApiError;
use tierwise::serve::lambda::{error_response, json_response, route_path};
use tierwise::serve::metrics::{Metrics, MetricsOut, NAMESPACE, Unit, now_ms, stdout};
use tierwise::serve::settings::{AuthMode, ReporterSettings};

/// Query parameters accepted by `GET /v1/reports`.
pub const PARAMS: [&str; 5] = ["from", "to", "tenant", "group_by", "format"];

/// Everything a request needs, built once.
pub struct App {
    rollups: DynamoRollups,
    metrics: Metrics,
    /// `TIERWISE_AUTH=keys`: reports scoped to the caller's key (every tenant for an admin).
    access: Option<Guard<DynamoKeyStore>>,
}

impl App {
    /// Builds the DynamoDB client from the settings.
    pub async fn init(settings: &ReporterSettings) -> App {
        let sdk = tierwise::aws::sdk_config(&settings.aws).await;
        App::new(tierwise::aws::dynamodb_client(&sdk), settings, stdout())
    }

    /// An app over a client (tests point it at moto).
    pub fn new(
        ddb: aws_sdk_dynamodb::Client,
        settings: &ReporterSettings,
        metrics_out: MetricsOut,
    ) -> App {
        let access = (settings.auth == AuthMode::Keys)
            .then(|| Guard::new(DynamoKeyStore::new(ddb.clone(), &settings.table)));
        App {
            rollups: DynamoRollups::new(ddb, &settings.table, settings.read_concurrency),
            metrics: Metrics::new(NAMESPACE, "reporter", metrics_out),
            access,
        }
    }

    /// Answers one request; every error is an HTTP answer.
    pub async fn handle(&self, req: Request) -> Response<Body> {
        let path = route_path(req.uri().path()).to_string();
        let method = req.method().clone();
        let res = match (path.as_str(), &method) {
            ("/v1/reports", &Method::GET) => self.report(&req).await,
            ("/v1/reports", _) => Err(ApiError::method_not_allowed(method.as_str(), &path, "GET")),
            _ => Err(ApiError::not_found(method.as_str(), &path)),
        };
        res.unwrap_or_else(|e| {
            tracing::info!(status = e.status, code = e.code, "request refused");
            error_response(&e)
        })
    }

    /// The tenant a report may cover: with keys, a non-admin key's own tenant (asking for
    /// another is a 403), any (or all) for an admin key; without, what the request asks.
    async fn tenant_of(
        &self,
        req: &Request,
        asked: Option<&str>,
    ) -> Result<Option<String>, ApiError> {
        let Some(guard) = &self.access else {
            return Ok(asked.map(str::to_string));
        };
        let auth = req
            .headers()
            .get("authorization")
            .map(|v| v.to_str())
            .transpose()
            .map_err(|_| ApiError::bad_request("the Authorization header must be text"))?;
        let now = u64::try_from(now_ms()).unwrap_or(0);
        let p = guard.authenticate(auth, now).await?;
        if p.admin {
            return Ok(asked.map(str::to_string));
        }
        Ok(Some(guard.tenant_for(&p, asked)?))
    }

    async fn report(&self, req: &Request) -> Result<Response<Body>, ApiError> {
        let started = Instant::now();
        let q = req.query_string_parameters();
        if let Some(unknown) = q.iter().map(|(k, _)| k).find(|k| !PARAMS.contains(k)) {
            return Err(ApiError::bad_request(format!(
                "unknown parameter `{unknown}`; expected {}",
                PARAMS.join(", ")
            )));
        }
        for name in PARAMS {
            if q.all(name).is_some_and(|v| v.len() > 1) {
                return Err(ApiError::bad_request(format!("`{name}` is given twice")));
            }
        }
        let html = match q.first("format").map(str::trim) {
            None | Some("json") => false,
            Some("html") => true,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "`format` is json or html, not {other:?}"
                )));
            }
        };
        let tenant = self.tenant_of(req, q.first("tenant")).await?;
        let params = ReportParams::parse(
            q.first("from"),
            q.first("to"),
            tenant.as_deref(),
            q.first("group_by"),
        )
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
        // Cost rollups and the evaluator's verdict rollups (their own partition), read together.
        let rollups = read_rollups(&self.rollups, &params).await.map_err(|e| {
            tracing::error!(error = %e, "reading rollups failed");
            if e.is_retryable() {
                ApiError::unavailable("the cost table could not be read; retry later")
            } else {
                ApiError::internal()
            }
        })?;
        let report = rollups.report(&params);
        let rows = &rollups.costs;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        tracing::info!(from = %report.from, to = %report.to, rows = rows.len(), report_ms = ms, "report");
        self.metrics.service_metrics(&[
            ("ReportLatency", ms, Unit::Milliseconds),
            ("RollupItemsRead", rows.len() as f64, Unit::Count),
        ]);
        if html {
            // The same self-contained page as `tierwise report --format html` (inline SVG and
            // CSS, nothing loaded from elsewhere).
            let mut res = json_response(200, tierwise::report::render_html(&report));
            res.headers_mut().insert(
                "content-type",
                lambda_http::http::HeaderValue::from_static("text/html; charset=utf-8"),
            );
            return Ok(res);
        }
        let body = serde_json::to_string(&report).map_err(|_| ApiError::internal())?;
        Ok(json_response(200, body))
    }
}
