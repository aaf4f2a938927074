//! The evaluator Lambda's handler (SQS event source, `ReportBatchItemFailures`): each message
//! is a shadow sample ([`tierwise::ledger::records::ShadowSample`]); the domain
//! ([`tierwise::shadow::evaluator::Evaluator`]) evaluates it once per query id and writes the verdict
//! to DynamoDB. Thin by design: parse, evaluate, report the failed items, log, EMF metrics.
//! Everything is built once, at init ([`App::init`]).
//!
//! Failures, per message (`itemIdentifier` = the SQS message id, never empty):
//! - poisoned (not JSON, not a sample, unsupported version, nothing to evaluate): logged at
//!   error level (the error, the message id, the body's length and hash: not its text, which
//!   may hold a user's query) and
//!   reported as failed, so that SQS moves it to the dead-letter queue after `maxReceiveCount`
//!   receives, where it is kept whole. It cannot succeed by retry; the DLQ alarm tells.
//! - upstream failure, store failure, comparison failure, a query held by another evaluator's
//!   live lease: reported as failed, retried after the visibility timeout, then the DLQ.
//! - a redelivered sample already evaluated: acknowledged, no model call.
//! - a message without a message id (never sent by SQS): the whole batch fails (an error),
//!   before anything is evaluated — SQS redelivers it all and nothing is paid twice.

use std::sync::Arc;
use std::time::Instant;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures_util::StreamExt;
use tierwise::aws::evaluations::DynamoEvaluationStore;
use tierwise::proxy::upstream::{ChatUpstream, HttpUpstream, UpstreamSettings};
use tierwise::routing::embed::Embedder;
use tierwise::serve::metrics::{Metrics, MetricsOut, NAMESPACE, Unit, stdout};
use tierwise::shadow::evaluator::{Evaluator, EvaluatorError, SampleOutcome};
use tierwise::shadow::record::EvaluationRecord;
use tierwise::shadow::settings::EvaluatorSettings;
use tierwise::shadow::store::EvaluationStore;

/// `Service` dimension of the evaluator's metrics.
pub const SERVICE: &str = "evaluator";

/// The evaluator as deployed: providers over HTTP, DynamoDB.
pub type Service = Evaluator<HttpUpstream, DynamoEvaluationStore>;

/// Everything a batch needs, built once.
pub struct App<U = HttpUpstream, S = DynamoEvaluationStore> {
    evaluator: Evaluator<U, S>,
    concurrency: usize,
    metrics: Metrics,
}

impl App {
    /// Builds the evaluator from the settings: pool, MiniLM embedder (on its own thread while
    /// the SDK config and the provider keys load), HTTP upstream, DynamoDB store.
    pub async fn init(settings: EvaluatorSettings) -> anyhow::Result<App> {
        let loading = std::thread::spawn(Embedder::bundled);
        let sdk = tierwise::aws::sdk_config(&settings.aws).await;
        let pool = match &settings.pool_ssm_parameter {
            Some(name) => {
                tierwise::aws::secrets::ssm_pool(&sdk, name, &settings.api_key_refs).await?
            }
            None => tierwise::aws::secrets::deployment_pool(
                settings.pool_path.as_deref(),
                &settings.api_key_refs,
            )?,
        };
        // Provider keys (Secrets Manager / SSM / env) while the model loads; never logged.
        let endpoints = tierwise::aws::secrets::load_endpoints(&pool, &sdk).await?;
        let upstream = HttpUpstream::new(endpoints, &UpstreamSettings::default())?;
        let store = DynamoEvaluationStore::new(
            tierwise::aws::dynamodb_client(&sdk),
            &settings.table,
            settings.eval_ttl_days,
        );
        let embedder = loading
            .join()
            .map_err(|_| anyhow::anyhow!("embedder loader panicked"))??;
        let evaluator = Evaluator::new(upstream, store, Arc::new(embedder), pool, settings)?;
        Ok(App::new(evaluator, stdout()))
    }
}

impl<U: ChatUpstream, S: EvaluationStore> App<U, S> {
    /// An app over a built evaluator.
    pub fn new(evaluator: Evaluator<U, S>, metrics_out: MetricsOut) -> Self {
        let concurrency = evaluator.settings().concurrency.max(1);
        Self {
            evaluator,
            concurrency,
            metrics: Metrics::new(NAMESPACE, SERVICE, metrics_out),
        }
    }

    pub fn evaluator(&self) -> &Evaluator<U, S> {
        &self.evaluator
    }

    /// Evaluates a batch (up to `TIERWISE_CONCURRENCY` samples at once) and reports the
    /// messages that failed. An error (the whole batch is retried) only for a message without
    /// an id.
    pub async fn handle(&self, event: SqsEvent) -> anyhow::Result<SqsBatchResponse> {
        if let Some(i) = event.records.iter().position(|m| {
            m.message_id
                .as_deref()
                .is_none_or(|id| id.trim().is_empty())
        }) {
            tracing::error!(
                index = i,
                messages = event.records.len(),
                "SQS message without a message id: failing the whole batch"
            );
            anyhow::bail!("message {i} of the batch has no message id");
        }
        let results: Vec<(String, bool)> = futures_util::stream::iter(event.records.iter())
            .map(|m| async move {
                let id = m.message_id.clone().unwrap_or_default();
                let ok = self.process(&id, m).await;
                (id, ok)
            })
            .buffered(self.concurrency)
            .collect()
            .await;
        let mut res = SqsBatchResponse::default();
        for (id, ok) in results {
            if !ok {
                res.add_failure(id);
            }
        }
        Ok(res)
    }

    /// One message: `true` when done with it (delete it), `false` to retry it.
    async fn process(&self, message_id: &str, m: &SqsMessage) -> bool {
        let receives = m
            .attributes
            .get("ApproximateReceiveCount")
            .map(String::as_str)
            .unwrap_or("?");
        let body = m.body.as_deref().unwrap_or("");
        let sample = match Evaluator::<U, S>::parse(body) {
            Ok(s) => s,
            Err(e) => {
                self.poisoned(message_id, receives, body, &e);
                return false;
            }
        };
        let started = Instant::now();
        let res = self.evaluator.evaluate(&sample).await;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        match res {
            Ok(SampleOutcome::Recorded(rec)) => {
                self.recorded(message_id, &rec, ms);
                true
            }
            Ok(SampleOutcome::AlreadyDone) => {
                tracing::info!(message_id, query_id = %sample.query_id, receives,
                    "already evaluated: acknowledged");
                self.count("RedeliveredSamples");
                true
            }
            Ok(SampleOutcome::LostClaim { spent_usd }) => {
                tracing::warn!(message_id, query_id = %sample.query_id, spent_usd,
                    "evaluated, but another evaluator completed it first (lease ended)");
                self.metrics.service_metrics(&[
                    ("LostClaims", 1.0, Unit::Count),
                    ("ShadowCostUsd", spent_usd, Unit::None),
                ]);
                true
            }
            Ok(SampleOutcome::Skipped { reason }) => {
                tracing::warn!(message_id, query_id = %sample.query_id, reason,
                    "sample skipped");
                self.count("SkippedSamples");
                true
            }
            Err(e) => {
                self.failed(message_id, &sample.query_id, receives, &e);
                false
            }
        }
    }

    fn poisoned(&self, message_id: &str, receives: &str, body: &str, e: &EvaluatorError) {
        // The body may hold a user's query: it is not logged (the DLQ keeps it whole); its
        // length and hash identify it.
        tracing::error!(
            message_id,
            receives,
            error = %e,
            body_bytes = body.len(),
            body_xxh3 = %format!("{:016x}", xxhash_rust::xxh3::xxh3_64(body.as_bytes())),
            "poisoned message: reported as failed, it will reach the dead-letter queue"
        );
        self.failure_metric(e.kind(), 0.0);
    }

    fn failed(&self, message_id: &str, query_id: &str, receives: &str, e: &EvaluatorError) {
        let spent = e.spent_usd();
        match e {
            EvaluatorError::Poisoned(_) => tracing::error!(message_id, query_id, receives,
                error = %e, "unusable sample: reported as failed (dead-letter queue)"),
            EvaluatorError::Busy { .. } => tracing::info!(message_id, query_id, receives,
                error = %e, "evaluation in progress elsewhere: retry later"),
            _ => tracing::warn!(message_id, query_id, receives, kind = e.kind(),
                error = %e, unrecorded_spend_usd = spent, "evaluation failed: retry later"),
        }
        self.failure_metric(e.kind(), spent);
    }

    fn failure_metric(&self, reason: &str, spent_usd: f64) {
        self.metrics.emit(|line| {
            line.dimension("Reason", reason)
                .metrics(
                    &[&["Service"], &["Service", "Reason"]],
                    &[("EvaluationFailures", 1.0, Unit::Count)],
                )
                .metrics(&[&["Service"]], &[("ShadowCostUsd", spent_usd, Unit::None)])
        });
    }

    fn recorded(&self, message_id: &str, rec: &EvaluationRecord, ms: f64) {
        tracing::info!(
            message_id,
            query_id = %rec.query_id,
            tenant = %rec.tenant,
            routed_model = %rec.routed_model,
            routed_tier = %rec.routed_tier,
            reference_model = %rec.reference_model,
            verdict = %rec.verdict,
            method = %rec.method,
            similarity = rec.similarity,
            judge_score = rec.judge_score,
            shadow_cost_usd = rec.shadow_cost_usd.as_f64(),
            evaluation_ms = ms,
            "evaluated"
        );
        self.metrics.emit(|line| {
            line.dimension("Tier", rec.routed_tier.as_str())
                .dimension("Model", &rec.routed_model)
                .metrics(
                    &[&["Service", "Tier"], &["Service", "Tier", "Model"]],
                    &[
                        ("Evaluations", 1.0, Unit::Count),
                        ("Agreement", f64::from(u8::from(rec.agrees())), Unit::None),
                    ],
                )
                .metrics(
                    &[&["Service"]],
                    &[
                        ("ShadowCostUsd", rec.shadow_cost_usd.as_f64(), Unit::None),
                        ("EvaluationLatency", ms, Unit::Milliseconds),
                    ],
                )
        });
    }

    fn count(&self, name: &str) {
        self.metrics.service_metrics(&[(name, 1.0, Unit::Count)]);
    }
}
