//! The proxy's fallback chain: given the routed model and its fallbacks, call the upstream
//! until one answers — retrying a model with backoff (honouring `Retry-After`), then the next
//! model of the tier, then the tiers above — never past the request's cost cap nor its
//! deadline, and never retrying what is the caller's own mistake. Every attempt is kept, with
//! its outcome, time and (when the provider billed it) cost, so the record shows the path.
//!
//! Generic over [`ChatUpstream`] (HTTP in production, a test double in unit tests) and
//! [`HealthReporter`] (the shared circuit breakers), so it is testable without a network.

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::ledger::money::Usd;
use crate::ledger::records::{Attempt, AttemptOutcome};
use crate::proxy::upstream::{
    ChatCall, ChatStream, ChatUpstream, Completion, UpstreamError, Usage,
};
use crate::routing::decision::round3;
use crate::routing::pool::{ModelSpec, Tier};

/// How hard the proxy tries.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxySettings {
    /// Calls of one model before moving to the next (1 = no retry of the same model).
    pub attempts_per_model: u32,
    /// First backoff between two calls of one model (doubled each time, full jitter).
    pub backoff_base: Duration,
    /// Longest backoff.
    pub backoff_max: Duration,
    /// A `Retry-After` longer than this moves on to the next model instead of waiting.
    pub max_retry_after: Duration,
    /// Longest one attempt may take (whole answer; first bytes of a stream).
    pub attempt_timeout: Duration,
    /// Time kept back from the request's deadline to answer and write the record.
    pub deadline_margin: Duration,
}

impl Default for ProxySettings {
    fn default() -> Self {
        Self {
            attempts_per_model: 2,
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(60),
            deadline_margin: Duration::from_millis(1500),
        }
    }
}

/// Where the proxy tells what it saw of a model (the shared circuit breakers).
pub trait HealthReporter: Send + Sync {
    /// The model answered (`true`) or failed in a way that counts against it (`false`).
    fn report(&self, model: &str, ok: bool) -> impl Future<Output = ()> + Send;
}

/// No breaker: outcomes are not reported.
pub struct NoHealth;

impl HealthReporter for NoHealth {
    async fn report(&self, _model: &str, _ok: bool) {}
}

impl<S: crate::proxy::breaker::HealthStore> HealthReporter
    for crate::proxy::breaker::SharedHealth<S>
{
    async fn report(&self, model: &str, ok: bool) {
        if ok {
            self.report_success(model).await;
        } else {
            self.report_failure(model).await;
        }
    }
}

/// A model the proxy may call, in order.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub model: ModelSpec,
    pub tier: Tier,
}

/// What to call: the candidates in order, the caller's body, the limits.
#[derive(Debug, Clone)]
pub struct ChainPlan {
    pub candidates: Vec<Candidate>,
    /// The caller's request body (OpenAI chat completion); `model` is replaced per attempt.
    pub body: Map<String, Value>,
    pub stream: bool,
    /// Largest total spend of the request, USD.
    pub cost_cap_usd: Option<f64>,
    /// Input tokens (router's count), for the cost estimate of an attempt.
    pub input_tokens: u64,
    /// Output tokens an attempt may produce (the request's `max_tokens`, else the pool's
    /// expected output), for the cost estimate.
    pub output_tokens: u64,
    /// When the proxy must have finished (the Lambda's remaining time).
    pub deadline: Instant,
}

/// Why no answer came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exhausted {
    /// Every candidate failed.
    AllFailed,
    /// The cost cap left no candidate to call.
    CostCap,
    /// The deadline came first.
    Deadline,
}

/// How the chain ended.
#[derive(Debug)]
pub enum ChainOutcome {
    /// A buffered answer from candidate `index`.
    Completed {
        completion: Completion,
        index: usize,
    },
    /// A stream from candidate `index`, first bytes received.
    Streaming { stream: ChatStream, index: usize },
    /// The provider refused the request as the caller's mistake: returned with its status
    /// and text (in the OpenAI error shape: `crate::proxy::upstream::openai_error_body`).
    Rejected {
        status: u16,
        content_type: String,
        body: Bytes,
        index: usize,
    },
    /// No answer.
    Exhausted {
        reason: Exhausted,
        last_error: Option<UpstreamError>,
    },
}

/// The chain's outcome and its attempts.
#[derive(Debug)]
pub struct ProxyResult {
    pub outcome: ChainOutcome,
    pub attempts: Vec<Attempt>,
}

impl ProxyResult {
    /// Spend on attempts that did not give the answer (failed but billed).
    pub fn failed_cost_usd(&self) -> Usd {
        self.attempts
            .iter()
            .filter(|a| a.outcome != AttemptOutcome::Ok)
            .map(|a| a.cost_usd)
            .sum()
    }

    /// Total time spent in upstream calls, ms.
    pub fn upstream_ms(&self) -> f64 {
        self.attempts.iter().map(|a| a.ms).sum()
    }

    /// The path as text: `model:outcome` joined by ` > `.
    pub fn path(&self) -> String {
        path(&self.attempts)
    }
}

/// The path of `attempts` as text: `model:outcome` joined by ` > `.
pub fn path(attempts: &[Attempt]) -> String {
    attempts
        .iter()
        .map(|a| format!("{}:{}", a.model, a.outcome))
        .collect::<Vec<_>>()
        .join(" > ")
}

/// Price of `usage` at a model's prices: cached prompt tokens at the cached price when the
/// pool gives one.
pub fn usage_cost_usd(model: &ModelSpec, usage: &Usage) -> f64 {
    let cached = usage.cached_tokens.unwrap_or(0).min(usage.prompt_tokens);
    let fresh = usage.prompt_tokens - cached;
    let cached_price = model
        .cached_input_usd_per_m
        .unwrap_or(model.input_usd_per_m);
    (fresh as f64 * model.input_usd_per_m
        + cached as f64 * cached_price
        + usage.completion_tokens as f64 * model.output_usd_per_m)
        / 1_000_000.0
}

/// The body sent to `model`: the caller's, with the model set, its output bounded by
/// `max_output` tokens when given ([`cap_output`]) and, for a stream, usage asked for in the
/// last chunk (so it can be priced).
pub fn upstream_body(
    template: &Map<String, Value>,
    model: &str,
    stream: bool,
    max_output: Option<u64>,
) -> Bytes {
    let mut body = template.clone();
    body.insert("model".into(), Value::String(model.to_string()));
    if let Some(max) = max_output {
        cap_output(&mut body, max);
    }
    if stream {
        let opts = body
            .entry("stream_options")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(o) = opts {
            o.insert("include_usage".into(), Value::Bool(true));
        } else {
            *opts = serde_json::json!({ "include_usage": true });
        }
    }
    Bytes::from(Value::Object(body).to_string())
}

/// The body with its output bounded by `max` tokens: the caller's `max_completion_tokens` /
/// `max_tokens` lowered to it, or `max_tokens` set when the caller gave neither — so the
/// worst case of the call fits the cost cap.
fn cap_output(obj: &mut Map<String, Value>, max: u64) {
    let keys = ["max_completion_tokens", "max_tokens"];
    let mut given = false;
    for k in keys {
        if let Some(v) = obj.get_mut(k)
            && let Some(n) = v.as_u64()
        {
            given = true;
            if n > max {
                *v = Value::from(max);
            }
        }
    }
    if !given {
        obj.insert("max_tokens".into(), Value::from(max));
    }
}

/// Runs the chain.
pub async fn run<U: ChatUpstream, H: HealthReporter>(
    upstream: &U,
    health: &H,
    settings: &ProxySettings,
    plan: &ChainPlan,
    providers: impl Fn(&ModelSpec) -> String,
) -> ProxyResult {
    let mut run = Run {
        upstream,
        health,
        settings,
        plan,
        attempts: Vec::new(),
        spent: 0.0,
        last_error: None,
        any_called: false,
        cap_blocked: false,
        deadline_hit: false,
    };
    for (index, cand) in plan.candidates.iter().enumerate() {
        let estimate = cand.model.cost_usd(plan.input_tokens, plan.output_tokens);
        if run.over_cap(estimate) {
            run.cap_blocked = true;
            run.attempts
                .push(skipped(cand, AttemptOutcome::SkippedCostCap));
            continue;
        }
        let provider = providers(&cand.model);
        if let Some(outcome) = run.candidate(index, &provider, estimate).await {
            return run.end(outcome);
        }
    }
    let outcome = run.exhausted();
    run.end(outcome)
}

/// What one run of the chain has done so far.
struct Run<'a, U, H> {
    upstream: &'a U,
    health: &'a H,
    settings: &'a ProxySettings,
    plan: &'a ChainPlan,
    attempts: Vec<Attempt>,
    /// What failed attempts cost so far, USD.
    spent: f64,
    last_error: Option<UpstreamError>,
    any_called: bool,
    cap_blocked: bool,
    deadline_hit: bool,
}

/// The cost of an attempt the provider did not bill: nothing, not estimated.
const NOT_BILLED: (f64, bool) = (0.0, false);

impl<U: ChatUpstream, H: HealthReporter> Run<'_, U, H> {
    /// The most output tokens a call of `model` may produce and stay within the cost cap (its
    /// input priced, the spend so far counted), at most the model's own limit; `None` without
    /// a cap.
    fn affordable_output(&self, model: &ModelSpec) -> Option<u64> {
        let cap = self.plan.cost_cap_usd?;
        let room = cap - self.spent - model.cost_usd(self.plan.input_tokens, 0);
        let per_token = model.output_usd_per_m / 1_000_000.0;
        let affordable = if per_token > 0.0 {
            (room.max(0.0) / per_token).floor() as u64
        } else {
            u64::MAX
        };
        // Never more than the model's own output limit, nor than its context leaves after the
        // input (a provider refuses a `max_tokens` the context cannot hold).
        let context_room = u64::from(model.context_window).saturating_sub(self.plan.input_tokens);
        Some(
            affordable
                .min(u64::from(model.max_output_tokens))
                .min(context_room)
                .max(1),
        )
    }

    /// Whether a call estimated at `estimate` would take the spend over the cost cap.
    fn over_cap(&self, estimate: f64) -> bool {
        self.plan
            .cost_cap_usd
            .is_some_and(|cap| self.spent + estimate > cap + 1e-12)
    }

    /// Calls candidate `index` until it answers, fails for good, or may not be tried again;
    /// `Some` when the chain ends there (an answer, or the caller's mistake).
    async fn candidate(
        &mut self,
        index: usize,
        provider: &str,
        estimate: f64,
    ) -> Option<ChainOutcome> {
        let plan = self.plan;
        let cand = &plan.candidates[index];
        let body = upstream_body(
            &plan.body,
            cand.model.upstream_name(),
            plan.stream,
            self.affordable_output(&cand.model),
        );
        let mut retry = 0u32;
        loop {
            let Some(budget) = budget(plan.deadline, self.settings) else {
                self.deadline_hit = true;
                self.attempts
                    .push(skipped(cand, AttemptOutcome::SkippedDeadline));
                return None;
            };
            self.any_called = true;
            let call = ChatCall {
                provider,
                body: body.clone(),
                deadline: budget,
            };
            let started = Instant::now();
            let result = self.call(call, index).await;
            let ms = round3(started.elapsed().as_secs_f64() * 1e3);
            let error = match result {
                Ok(outcome) => {
                    self.answered(cand, &outcome, ms, estimate);
                    self.health.report(&cand.model.id, true).await;
                    return Some(outcome);
                }
                Err(e) => e,
            };
            if let Some(rejected) = self.failed(index, &error, ms, estimate).await {
                return Some(rejected);
            }
            let wait = self.retry_wait(retry, error, &body, estimate)?;
            retry += 1;
            tokio::time::sleep(wait).await;
        }
    }

    /// One call of candidate `index`, buffered or streamed as the plan says.
    async fn call(&self, call: ChatCall<'_>, index: usize) -> Result<ChainOutcome, UpstreamError> {
        if self.plan.stream {
            let stream = self.upstream.stream(call).await?;
            Ok(ChainOutcome::Streaming { stream, index })
        } else {
            let completion = self.upstream.complete(call).await?;
            Ok(ChainOutcome::Completed { completion, index })
        }
    }

    /// Records the answer of `cand`: priced from its usage, else estimated (a stream's usage
    /// comes in its last chunk: priced by the caller).
    fn answered(&mut self, cand: &Candidate, outcome: &ChainOutcome, ms: f64, estimate: f64) {
        let cost = match outcome {
            ChainOutcome::Completed { completion, .. } => match &completion.usage {
                Some(u) => (usage_cost_usd(&cand.model, u), false),
                None => (estimate, true),
            },
            _ => NOT_BILLED,
        };
        self.attempts
            .push(attempt(cand, AttemptOutcome::Ok, Some(200), ms, cost));
    }

    /// Records a failed call of candidate `index` and reports it when it counts against the
    /// model; `Some` when the provider refused the request as the caller's mistake (the
    /// chain ends: it is returned to the caller).
    async fn failed(
        &mut self,
        index: usize,
        error: &UpstreamError,
        ms: f64,
        estimate: f64,
    ) -> Option<ChainOutcome> {
        let cand = &self.plan.candidates[index];
        // What a failed attempt cost: a malformed answer was generated (and billed) — priced
        // from its usage, else estimated; a read timeout may have been generated (and billed)
        // while we waited — estimated, never taken as free.
        let cost = match (error, error.usage()) {
            (_, Some(u)) => (usage_cost_usd(&cand.model, &u), false),
            (UpstreamError::Malformed { .. } | UpstreamError::ReadTimeout, None) => {
                (estimate, true)
            }
            _ => NOT_BILLED,
        };
        self.spent += cost.0;
        let failed = attempt(cand, error.outcome(), error.status(), ms, cost);
        self.attempts.push(failed);
        if error.counts_against_model() {
            self.health.report(&cand.model.id, false).await;
        }
        match error {
            UpstreamError::Rejected {
                status,
                content_type,
                body,
            } => Some(ChainOutcome::Rejected {
                status: *status,
                content_type: content_type.clone(),
                body: body.clone(),
                index,
            }),
            _ => None,
        }
    }

    /// The wait before calling the same model again after `error` (its `retry`-th retry);
    /// `None` to move on to the next model: not retryable, no retry left, a wait longer than
    /// allowed or past the deadline, or no room left under the cost cap.
    fn retry_wait(
        &mut self,
        retry: u32,
        error: UpstreamError,
        body: &Bytes,
        estimate: f64,
    ) -> Option<Duration> {
        let retryable = error.is_retryable();
        let wait = backoff(self.settings, retry, error.retry_after(), body);
        self.last_error = Some(error);
        if !retryable || retry + 1 >= self.settings.attempts_per_model {
            return None;
        }
        let wait = wait?;
        if Instant::now() + wait + self.settings.deadline_margin >= self.plan.deadline {
            return None;
        }
        if self.over_cap(estimate) {
            self.cap_blocked = true;
            return None;
        }
        Some(wait)
    }

    /// How the chain ends when no candidate answered.
    fn exhausted(&mut self) -> ChainOutcome {
        let reason = if self.deadline_hit {
            Exhausted::Deadline
        } else if self.cap_blocked && (!self.any_called || self.last_error.is_none()) {
            Exhausted::CostCap
        } else {
            Exhausted::AllFailed
        };
        ChainOutcome::Exhausted {
            reason,
            last_error: self.last_error.take(),
        }
    }

    fn end(self, outcome: ChainOutcome) -> ProxyResult {
        ProxyResult {
            outcome,
            attempts: self.attempts,
        }
    }
}

/// Time one attempt may take: the attempt timeout, within the deadline less its margin;
/// `None` when too little is left to be worth a call.
fn budget(deadline: Instant, settings: &ProxySettings) -> Option<Duration> {
    let left = deadline
        .checked_duration_since(Instant::now())?
        .checked_sub(settings.deadline_margin)?;
    if left < Duration::from_millis(50) {
        return None;
    }
    Some(left.min(settings.attempt_timeout))
}

/// The wait before retrying the same model: `Retry-After` when given (`None` when longer than
/// allowed: move on), else exponential backoff with full jitter (seeded from the body and the
/// clock: no shared RNG).
fn backoff(
    settings: &ProxySettings,
    retry: u32,
    retry_after: Option<Duration>,
    body: &Bytes,
) -> Option<Duration> {
    if let Some(ra) = retry_after {
        return (ra <= settings.max_retry_after).then_some(ra);
    }
    let cap = settings
        .backoff_base
        .saturating_mul(1u32 << retry.min(16))
        .min(settings.backoff_max);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let seed = xxhash_rust::xxh3::xxh3_64_with_seed(body, u64::from(nanos) ^ u64::from(retry));
    let frac = (seed >> 11) as f64 / (1u64 << 53) as f64;
    Some(cap.mul_f64(0.5 + 0.5 * frac))
}

/// `cand` passed over, `why`.
fn skipped(cand: &Candidate, why: AttemptOutcome) -> Attempt {
    attempt(cand, why, None, 0.0, NOT_BILLED)
}

/// The attempt of `cand` that ended as `outcome`, with its `(cost, estimated)`.
fn attempt(
    cand: &Candidate,
    outcome: AttemptOutcome,
    status: Option<u16>,
    ms: f64,
    (cost, cost_estimated): (f64, bool),
) -> Attempt {
    Attempt {
        model: cand.model.id.clone(),
        tier: cand.tier,
        outcome,
        status,
        ms,
        cost_usd: Usd::from_f64(cost),
        cost_estimated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::upstream::ChunkStream;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    /// Answers from a script of results per model; records the calls.
    #[derive(Default)]
    struct Script {
        replies: Mutex<std::collections::HashMap<String, VecDeque<Result<(), UpstreamError>>>>,
        calls: Mutex<Vec<(String, Instant)>>,
        bodies: Mutex<Vec<Bytes>>,
    }

    impl Script {
        fn with(replies: &[(&str, Vec<Result<(), UpstreamError>>)]) -> Self {
            let s = Script::default();
            for (m, r) in replies {
                s.replies
                    .lock()
                    .unwrap()
                    .insert(m.to_string(), r.iter().cloned().collect());
            }
            s
        }
        fn next(&self, body: &Bytes) -> (String, Result<(), UpstreamError>) {
            let v: Value = serde_json::from_slice(body).unwrap();
            let model = v["model"].as_str().unwrap().to_string();
            self.bodies.lock().unwrap().push(body.clone());
            self.calls
                .lock()
                .unwrap()
                .push((model.clone(), Instant::now()));
            let r = self
                .replies
                .lock()
                .unwrap()
                .get_mut(&model)
                .and_then(VecDeque::pop_front)
                .unwrap_or(Ok(()));
            (model, r)
        }
        fn bodies(&self) -> Vec<Bytes> {
            self.bodies.lock().unwrap().clone()
        }

        fn models(&self) -> Vec<String> {
            self.calls
                .lock()
                .unwrap()
                .iter()
                .map(|(m, _)| m.clone())
                .collect()
        }
    }

    impl ChatUpstream for Script {
        async fn complete(&self, call: ChatCall<'_>) -> Result<Completion, UpstreamError> {
            let (model, r) = self.next(&call.body);
            r.map(|()| {
                let json = serde_json::json!({"model": model, "choices": [], "usage": {"prompt_tokens": 1000, "completion_tokens": 500}});
                Completion {
                    status: 200,
                    content_type: "application/json".into(),
                    body: Bytes::from(json.to_string()),
                    usage: Some(Usage {
                        prompt_tokens: 1000,
                        completion_tokens: 500,
                        ..Usage::default()
                    }),
                    json,
                    elapsed_ms: 1.0,
                }
            })
        }
        async fn stream(&self, call: ChatCall<'_>) -> Result<ChatStream, UpstreamError> {
            let (_, r) = self.next(&call.body);
            r.map(|()| ChatStream {
                status: 200,
                content_type: "text/event-stream".into(),
                first: Bytes::from_static(b"data: {}\n\n"),
                rest: Box::pin(futures_util::stream::empty()) as ChunkStream,
                first_byte_ms: 1.0,
            })
        }
    }

    #[derive(Default)]
    struct Seen(Mutex<Vec<(String, bool)>>);
    impl HealthReporter for Seen {
        async fn report(&self, model: &str, ok: bool) {
            self.0.lock().unwrap().push((model.to_string(), ok));
        }
    }

    fn model(id: &str, input: f64, output: f64) -> ModelSpec {
        ModelSpec {
            id: id.into(),
            input_usd_per_m: input,
            output_usd_per_m: output,
            cached_input_usd_per_m: None,
            context_window: 100_000,
            max_output_tokens: 4096,
            provider: "p".into(),
            upstream_model: None,
            capabilities: None,
        }
    }

    fn plan(cap: Option<f64>) -> ChainPlan {
        ChainPlan {
            candidates: vec![
                Candidate {
                    model: model("a", 1.0, 2.0),
                    tier: Tier::Tier1,
                },
                Candidate {
                    model: model("b", 1.0, 2.0),
                    tier: Tier::Tier1,
                },
                Candidate {
                    model: model("c", 10.0, 20.0),
                    tier: Tier::Tier2,
                },
            ],
            body: serde_json::from_str(r#"{"model":"auto","messages":[]}"#).unwrap(),
            stream: false,
            cost_cap_usd: cap,
            input_tokens: 1000,
            output_tokens: 500,
            deadline: Instant::now() + Duration::from_secs(30),
        }
    }

    fn fast() -> ProxySettings {
        ProxySettings {
            backoff_base: Duration::from_millis(5),
            backoff_max: Duration::from_millis(20),
            max_retry_after: Duration::from_millis(300),
            deadline_margin: Duration::from_millis(100),
            ..ProxySettings::default()
        }
    }

    fn server(status: u16) -> Result<(), UpstreamError> {
        Err(UpstreamError::Server {
            status,
            retry_after: None,
        })
    }

    fn rate_limited(retry_after: Duration) -> Result<(), UpstreamError> {
        Err(UpstreamError::RateLimited {
            retry_after: Some(retry_after),
        })
    }

    #[tokio::test]
    async fn retries_then_falls_back_within_the_tier_then_up() {
        let up = Script::with(&[
            ("a", vec![server(500), server(502)]),
            ("b", vec![Err(UpstreamError::Auth { status: 401 })]),
        ]);
        let seen = Seen::default();
        let r = run(&up, &seen, &fast(), &plan(None), |m| m.provider.clone()).await;
        assert_eq!(up.models(), ["a", "a", "b", "c"]);
        assert!(matches!(
            r.outcome,
            ChainOutcome::Completed { index: 2, .. }
        ));
        let outcomes: Vec<_> = r.attempts.iter().map(|a| a.outcome.as_str()).collect();
        assert_eq!(outcomes, ["server_error", "server_error", "auth", "ok"]);
        // Auth does not count against the model; server errors do.
        assert_eq!(
            *seen.0.lock().unwrap(),
            [
                ("a".to_string(), false),
                ("a".to_string(), false),
                ("c".to_string(), true)
            ]
        );
        assert_eq!(r.path(), "a:server_error > a:server_error > b:auth > c:ok");
        // The answer is priced from usage: 1000 in x $10/M + 500 out x $20/M.
        assert_eq!(r.attempts[3].cost_usd, Usd::from_f64(0.02));
        assert_eq!(r.failed_cost_usd(), Usd::ZERO);
    }

    #[tokio::test]
    async fn honours_retry_after_and_moves_on_when_it_is_too_long() {
        let up = Script::with(&[
            ("a", vec![rate_limited(Duration::from_millis(150))]),
            ("b", vec![rate_limited(Duration::from_secs(60))]),
        ]);
        let r = run(&up, &NoHealth, &fast(), &plan(None), |m| m.provider.clone()).await;
        assert_eq!(up.models(), ["a", "a"]);
        assert!(matches!(
            r.outcome,
            ChainOutcome::Completed { index: 0, .. }
        ));
        let gap = {
            let calls = up.calls.lock().unwrap();
            calls[1].1 - calls[0].1
        };
        assert!(gap >= Duration::from_millis(150), "waited {gap:?}");

        let up = Script::with(&[("a", vec![rate_limited(Duration::from_secs(60))])]);
        let r = run(&up, &NoHealth, &fast(), &plan(None), |m| m.provider.clone()).await;
        // 60 s is over the limit: straight to the next model, no wait.
        assert_eq!(up.models(), ["a", "b"]);
        assert!(matches!(
            r.outcome,
            ChainOutcome::Completed { index: 1, .. }
        ));
    }

    #[tokio::test]
    async fn the_provider_gets_the_model_s_upstream_name() {
        let up = Script::with(&[]);
        let mut p = plan(None);
        p.candidates[0].model.upstream_model = Some("gpt-4o-mini-prod".into());
        let r = run(&up, &NoHealth, &fast(), &p, |m| m.provider.clone()).await;
        assert_eq!(up.models(), ["gpt-4o-mini-prod"]);
        assert_eq!(r.attempts[0].model, "a", "records name the pool's id");
    }

    #[tokio::test]
    async fn caller_mistakes_are_returned_not_retried() {
        let up = Script::with(&[(
            "a",
            vec![Err(UpstreamError::Rejected {
                status: 400,
                content_type: "application/json".into(),
                body: Bytes::from_static(b"{\"error\":{\"message\":\"bad\"}}"),
            })],
        )]);
        let seen = Seen::default();
        let r = run(&up, &seen, &fast(), &plan(None), |m| m.provider.clone()).await;
        assert_eq!(up.models(), ["a"]);
        assert!(matches!(
            r.outcome,
            ChainOutcome::Rejected { status: 400, .. }
        ));
        assert!(seen.0.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_cost_cap_skips_what_would_exceed_it() {
        // Estimates: a, b = 1000 x 1 + 500 x 2 = $0.002; c = $0.02. Cap $0.01: c is skipped.
        let up = Script::with(&[
            ("a", vec![server(500), server(500)]),
            ("b", vec![server(503), server(503)]),
        ]);
        let r = run(&up, &NoHealth, &fast(), &plan(Some(0.01)), |m| {
            m.provider.clone()
        })
        .await;
        assert_eq!(up.models(), ["a", "a", "b", "b"]);
        assert_eq!(
            r.attempts.last().unwrap().outcome,
            AttemptOutcome::SkippedCostCap
        );
        assert!(matches!(
            r.outcome,
            ChainOutcome::Exhausted {
                reason: Exhausted::AllFailed,
                ..
            }
        ));
        // A cap under the first estimate calls nothing.
        let up = Script::default();
        let r = run(&up, &NoHealth, &fast(), &plan(Some(0.001)), |m| {
            m.provider.clone()
        })
        .await;
        assert!(up.models().is_empty());
        assert!(matches!(
            r.outcome,
            ChainOutcome::Exhausted {
                reason: Exhausted::CostCap,
                ..
            }
        ));
    }

    #[tokio::test]
    async fn malformed_answers_are_billed_and_count_toward_the_cap() {
        let usage = Usage {
            prompt_tokens: 1000,
            completion_tokens: 500,
            ..Usage::default()
        };
        let up = Script::with(&[(
            "a",
            vec![
                Err(UpstreamError::Malformed {
                    detail: "x".into(),
                    usage: Some(usage),
                }),
                Err(UpstreamError::Malformed {
                    detail: "y".into(),
                    usage: None,
                }),
            ],
        )]);
        let r = run(&up, &NoHealth, &fast(), &plan(None), |m| m.provider.clone()).await;
        assert_eq!(up.models(), ["a", "a", "b"]);
        assert_eq!(r.attempts[0].cost_usd, Usd::from_f64(0.002));
        assert!(!r.attempts[0].cost_estimated);
        assert!(r.attempts[1].cost_estimated);
        assert_eq!(r.failed_cost_usd(), Usd::from_f64(0.004));
    }

    #[tokio::test]
    async fn the_deadline_stops_the_chain() {
        let up = Script::with(&[("a", vec![server(500), server(500)])]);
        let mut p = plan(None);
        p.deadline = Instant::now() + Duration::from_millis(120);
        let r = run(&up, &NoHealth, &fast(), &p, |m| m.provider.clone()).await;
        // 120 ms less the 100 ms margin: under the 50 ms minimum, nothing is called.
        assert!(up.models().is_empty());
        assert!(matches!(
            r.outcome,
            ChainOutcome::Exhausted {
                reason: Exhausted::Deadline,
                ..
            }
        ));
    }

    #[test]
    fn the_chain_future_is_send() {
        // The Lambda runtime needs `Send` futures: nothing that is not `Sync` (a stream) may
        // be borrowed across an await.
        fn send<T: Send>(_: &T) {}
        let (up, p) = (Script::default(), plan(None));
        send(&run(&up, &NoHealth, &fast(), &p, |m| m.provider.clone()));
    }

    #[test]
    fn stream_bodies_ask_for_usage_and_carry_the_model() {
        let t: Map<String, Value> = serde_json::from_str(
            r#"{"model":"auto","stream":true,"messages":[],"stream_options":{"x":1}}"#,
        )
        .unwrap();
        let b: Value = serde_json::from_slice(&upstream_body(&t, "m/x", true, None)).unwrap();
        assert_eq!(b["model"], "m/x");
        assert_eq!(b["stream_options"]["include_usage"], true);
        assert_eq!(b["stream_options"]["x"], 1);
        let b: Value = serde_json::from_slice(&upstream_body(&t, "m/x", false, None)).unwrap();
        assert_eq!(b["stream_options"], serde_json::json!({"x": 1}));
    }

    #[test]
    fn the_output_is_bounded_so_the_worst_case_fits_the_cap() {
        let capped = |s: &str, max: u64| {
            let mut obj: Map<String, Value> = serde_json::from_str(s).unwrap();
            cap_output(&mut obj, max);
            Value::Object(obj)
        };
        let v = capped(r#"{"model":"m","messages":[]}"#, 500);
        assert_eq!(v["max_tokens"], 500, "injected when the caller gave none");
        let v = capped(r#"{"max_tokens":9000}"#, 500);
        assert_eq!(v["max_tokens"], 500, "lowered");
        let v = capped(r#"{"max_completion_tokens":100}"#, 500);
        assert_eq!(v["max_completion_tokens"], 100, "a lower ask stands");
        assert!(v.get("max_tokens").is_none());
    }

    #[tokio::test]
    async fn a_capped_call_asks_for_no_more_output_than_the_cap_pays_for() {
        let up = Script::with(&[]);
        // Model "a": $1/M in, $2/M out; 1000 input tokens = $0.001. A $0.002 cap leaves
        // $0.001 = 500 output tokens.
        let r = run(&up, &NoHealth, &fast(), &plan(Some(0.002)), |m| {
            m.provider.clone()
        })
        .await;
        assert!(matches!(r.outcome, ChainOutcome::Completed { .. }));
        let bodies = up.bodies();
        let sent: Value = serde_json::from_slice(&bodies[0]).unwrap();
        assert_eq!(sent["max_tokens"], 500);
    }

    #[test]
    fn attempt_outcomes_keep_their_recorded_names() {
        let names: Vec<&str> = AttemptOutcome::ALL.iter().map(|o| o.as_str()).collect();
        assert_eq!(
            names,
            [
                "ok",
                "stream_interrupted",
                "rate_limited",
                "server_error",
                "connect_timeout",
                "read_timeout",
                "connect_error",
                "malformed",
                "auth",
                "rejected",
                "unsupported",
                "skipped_cost_cap",
                "skipped_deadline"
            ]
        );
        for o in AttemptOutcome::ALL {
            let json = serde_json::to_value(o).unwrap();
            assert_eq!(json, Value::String(o.as_str().into()));
            assert_eq!(o.to_string(), o.as_str());
            assert_eq!(serde_json::from_value::<AttemptOutcome>(json).unwrap(), o);
        }
        // An upstream failure is recorded under its kind.
        let kinds = [
            (UpstreamError::ConnectTimeout, "connect_timeout"),
            (UpstreamError::ReadTimeout, "read_timeout"),
            (UpstreamError::Connect, "connect_error"),
            (UpstreamError::Auth { status: 401 }, "auth"),
        ];
        for (e, name) in kinds {
            assert_eq!(e.outcome().as_str(), name);
            assert_eq!(e.kind(), name);
        }
    }

    #[test]
    fn cached_tokens_are_priced_at_the_cached_price() {
        let mut m = model("a", 2.0, 8.0);
        m.cached_input_usd_per_m = Some(0.5);
        let u = Usage {
            prompt_tokens: 1_000_000,
            completion_tokens: 0,
            cached_tokens: Some(400_000),
            reasoning_tokens: None,
        };
        assert!((usage_cost_usd(&m, &u) - (1.2 + 0.2)).abs() < 1e-9);
    }
}
