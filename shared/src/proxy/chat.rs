//! `POST /v1/chat/completions` as a domain flow: parse an OpenAI chat request, route it
//! (`model: "auto"`) or pass a named pool model through, call the upstream through the
//! proxy's fallback chain ([`crate::proxy::chain`]), then record what it cost from the provider's
//! usage and, for a sampled query, send the shadow sample with the routed answer.
//!
//! The handler only maps HTTP to [`ChatRequest`] and [`ChatReply`] back; what went wrong is
//! told by [`ChatError`] (refused before any upstream call) and [`Unanswered`] (no model
//! answered), which `crate::serve::errors` turns into HTTP answers. A stream's record is
//! written by [`StreamFinish::finish`] once the stream has ended.

use std::collections::BTreeSet;
use std::time::Instant;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::ledger::money::Usd;
use crate::ledger::records::{
    Attempt, AttemptOutcome, CostRecord, RecordStatus, ShadowSample, Timestamp, UpstreamDetail,
};
use crate::ledger::service::{RoutingService, Settled, parse_query_id};
use crate::ledger::store::{CostSink, ParkingLot, SampleSink};
use crate::proxy::chain::{
    self, Candidate, ChainOutcome, ChainPlan, Exhausted, HealthReporter, ProxyResult, ProxySettings,
};
use crate::proxy::upstream::{
    ChatStream, ChatUpstream, SseTap, UpstreamError, Usage, openai_error_body,
};
use crate::routing::decision::{
    Decision, HealthView, Message, MessageContent, RouteError, RouteRequest, round3,
};
use crate::routing::pool::{Capability, ModelSpec, Tier};

/// Model names that ask tierwise to route.
pub const AUTO_MODELS: [&str; 2] = ["auto", "tierwise/auto"];

/// The request's own tierwise options: `"tierwise": {...}` in the body (removed before the
/// body goes upstream). OpenAI clients send it with `extra_body`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierwiseOptions {
    /// Largest spend of this request, USD (retries and fallbacks included).
    pub max_cost_usd: Option<f64>,
    pub min_tier: Option<Tier>,
    pub max_tier: Option<Tier>,
    pub tenant: Option<String>,
    pub require_confidence: Option<f64>,
}

/// A parsed chat-completions request.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    /// The body to forward (without `tierwise`); `model` is replaced per attempt.
    pub body: Map<String, Value>,
    /// The `model` asked for.
    pub model: String,
    /// What the router routes on (the conversation, the options).
    pub route: RouteRequest,
    pub stream: bool,
    /// `max_completion_tokens` / `max_tokens`, when given.
    pub max_output_tokens: Option<u64>,
    /// The request's cost cap (body option or header; the lower of both).
    pub max_cost_usd: Option<f64>,
}

impl ChatRequest {
    /// Parses a request body; `header_cap` is the `x-tierwise-max-cost-usd` header's value.
    pub fn parse(body: &[u8], header_cap: Option<&str>) -> Result<ChatRequest, ChatError> {
        let invalid = |m: &str| ChatError::InvalidRequest(m.to_string());
        let mut obj: Map<String, Value> = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(o)) => o,
            Ok(_) => return Err(invalid("the body must be a JSON object")),
            Err(e) => return Err(invalid(&format!("invalid JSON body: {e}"))),
        };
        let model = match obj.get("model") {
            Some(Value::String(m)) if !m.trim().is_empty() => m.trim().to_string(),
            Some(_) => return Err(invalid("`model` must be a non-empty string")),
            None => {
                return Err(invalid(
                    "`model` is required: \"auto\" to route, or a model of GET /v1/models",
                ));
            }
        };
        let messages: Vec<Message> = match obj.get("messages") {
            Some(v @ Value::Array(a)) if !a.is_empty() => serde_json::from_value(v.clone())
                .map_err(|e| invalid(&format!("invalid `messages`: {e}")))?,
            _ => {
                return Err(invalid(
                    "`messages` is required: a non-empty array of chat messages",
                ));
            }
        };
        let stream = match obj.get("stream") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(invalid("`stream` must be a boolean")),
        };
        // What would let one call spend past its cap, or let the provider pick another model
        // than the one routed to (OpenRouter's `models` and `route`), is refused.
        if obj.get("n").and_then(Value::as_u64).is_some_and(|n| n > 1) {
            return Err(invalid(
                "`n` above 1 is not supported: send one request per completion (each is routed and capped)",
            ));
        }
        for field in ["models", "route"] {
            if obj.get(field).is_some_and(|v| !v.is_null()) {
                return Err(invalid(&format!(
                    "`{field}` lets the provider choose the model; tierwise chooses it (use `model: \"auto\"` or a pool model)"
                )));
            }
        }
        let max_output_tokens = ["max_completion_tokens", "max_tokens"]
            .iter()
            .find_map(|k| obj.get(*k).and_then(Value::as_u64));
        let options: TierwiseOptions = match obj.remove("tierwise") {
            None | Some(Value::Null) => TierwiseOptions::default(),
            Some(v) => serde_json::from_value(v)
                .map_err(|e| invalid(&format!("invalid `tierwise` options: {e}")))?,
        };
        let max_cost_usd = request_cap(header_cap, options.max_cost_usd)?;
        let needs = needs_of(&obj, &messages, stream);
        let tools = tool_definitions(&obj);
        Ok(ChatRequest {
            body: obj,
            model,
            route: RouteRequest {
                query: None,
                messages: Some(messages),
                require_confidence: options.require_confidence,
                min_tier: options.min_tier,
                max_tier: options.max_tier,
                tenant: options.tenant,
                needs,
                tools,
            },
            stream,
            max_output_tokens,
            max_cost_usd,
        })
    }

    /// Whether the request asks tierwise to route.
    pub fn is_auto(&self) -> bool {
        AUTO_MODELS.contains(&self.model.as_str())
    }
}

/// What a chat request needs of the model that answers it: `tools` (or `functions`), image
/// parts (vision), `response_format` `json_schema` or `json_object`, `stream`.
fn needs_of(body: &Map<String, Value>, messages: &[Message], stream: bool) -> BTreeSet<Capability> {
    let mut needs = BTreeSet::new();
    let non_empty = |k: &str| match body.get(k) {
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Null) | None => false,
        Some(_) => true,
    };
    if non_empty("tools") || non_empty("functions") {
        needs.insert(Capability::Tools);
    }
    match body
        .get("response_format")
        .and_then(|f| f.get("type"))
        .and_then(Value::as_str)
    {
        Some("json_schema") => {
            needs.insert(Capability::JsonSchema);
        }
        Some("json_object") => {
            needs.insert(Capability::JsonMode);
        }
        _ => {}
    }
    let image = |p: &Value| {
        matches!(
            p.get("type").and_then(Value::as_str),
            Some("image_url" | "input_image" | "image")
        )
    };
    if messages.iter().any(|m| match &m.content {
        MessageContent::Parts(parts) => parts.iter().any(image),
        _ => false,
    }) {
        needs.insert(Capability::Vision);
    }
    if stream {
        needs.insert(Capability::Streaming);
    }
    needs
}

/// The tool definitions of a chat body (`tools`, and the legacy `functions`), which count
/// toward its input tokens.
fn tool_definitions(body: &Map<String, Value>) -> Vec<Value> {
    ["tools", "functions"]
        .iter()
        .filter_map(|k| body.get(*k).and_then(Value::as_array))
        .flatten()
        .cloned()
        .collect()
}

/// The cap a call must fit: the lower of the caller's and the pool's, so a caller can lower
/// the pool's cap and never raise it.
pub fn effective_cap(request: Option<f64>, pool: Option<f64>) -> Option<f64> {
    match (request, pool) {
        (Some(r), Some(p)) => Some(r.min(p)),
        (r, p) => r.or(p),
    }
}

/// The request's cost cap: the header's and the body option's, the lower of both; each must
/// be a positive number of USD.
fn request_cap(header: Option<&str>, body: Option<f64>) -> Result<Option<f64>, ChatError> {
    let positive = |v: Option<f64>, message: &str| {
        v.filter(|c| c.is_finite() && *c > 0.0)
            .ok_or_else(|| ChatError::InvalidRequest(message.to_string()))
    };
    let header = header
        .map(|h| {
            positive(
                h.trim().parse::<f64>().ok(),
                "x-tierwise-max-cost-usd must be a positive number of USD",
            )
        })
        .transpose()?;
    let body = body
        .map(|c| {
            positive(
                Some(c),
                "tierwise.max_cost_usd must be a positive number of USD",
            )
        })
        .transpose()?;
    Ok(effective_cap(header, body))
}

/// Why a chat request was refused before any upstream call.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// The body (or the cost-cap header) is malformed; the text says what, for the caller.
    #[error("{0}")]
    InvalidRequest(String),
    /// `model` is neither `auto` nor a model of the pool.
    #[error("no model `{0}` in the pool")]
    ModelNotFound(String),
    /// The router refused the request (or its query id).
    #[error(transparent)]
    Route(#[from] RouteError),
}

/// Why no model answered a chat request: the fallback chain ran out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unanswered {
    /// The request's cost cap (USD) left no model to call.
    CostCap { cap_usd: f64 },
    /// The request's time ran out.
    Deadline,
    /// The last model tried was rate limited.
    RateLimited,
    /// The last model tried timed out.
    TimedOut,
    /// No model could be called.
    NoModel,
    /// The providers failed otherwise.
    Failed,
}

impl Unanswered {
    /// Why the chain ended without an answer, from its reason and its last error.
    pub fn of(reason: Exhausted, last_error: Option<&UpstreamError>, cap_usd: Option<f64>) -> Self {
        match (reason, last_error) {
            (Exhausted::CostCap, _) => Unanswered::CostCap {
                cap_usd: cap_usd.unwrap_or(0.0),
            },
            (Exhausted::Deadline, _) => Unanswered::Deadline,
            (_, Some(UpstreamError::RateLimited { .. })) => Unanswered::RateLimited,
            (_, Some(UpstreamError::ReadTimeout | UpstreamError::ConnectTimeout)) => {
                Unanswered::TimedOut
            }
            (_, None) => Unanswered::NoModel,
            _ => Unanswered::Failed,
        }
    }
}

/// The upstream side of the service: client, breakers, retry policy.
pub struct ChatProxy<U, H> {
    pub upstream: U,
    pub health: H,
    pub settings: ProxySettings,
}

/// How a chat request ended (before the HTTP mapping).
pub enum ChatReply {
    /// A buffered answer: the provider's (or, when it refused the request, its refusal) body
    /// as sent.
    Answer { answer: Answer, trail: Trail },
    /// No model answered.
    Failed { reason: Unanswered, trail: Trail },
    /// A stream whose first bytes have arrived: pass them on, then call
    /// [`StreamFinish::finish`].
    Stream(Box<PendingStream>),
}

/// A provider's buffered body, as sent.
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Bytes,
}

/// What a proxied request that has ended leaves to tell: its decision, its path through the
/// chain, its time upstream, and what became of its record and sample.
pub struct Trail {
    pub decision: Decision,
    /// The attempts as `model:outcome` joined by ` > `.
    pub path: String,
    /// Time spent in upstream calls (every attempt and wait excluded), ms.
    pub upstream_ms: f64,
    pub settled: Settled,
}

/// A stream whose first bytes have arrived: pass `stream.first` then `stream.rest` through an
/// [`SseTap`] to the caller, then call [`StreamFinish::finish`].
pub struct PendingStream {
    pub stream: ChatStream,
    pub finish: StreamFinish,
}

/// One chat request from its decision to its record: what every way it can end records.
struct Ticket {
    decision: Decision,
    route: RouteRequest,
    baseline: ModelSpec,
    sampled: bool,
    stream: bool,
    at: Timestamp,
}

impl Ticket {
    /// The decision now names the candidate that answered.
    fn answered_by(&mut self, candidate: &Candidate) -> ModelSpec {
        self.decision.model = candidate.model.id.clone();
        self.decision.tier = candidate.tier;
        candidate.model.clone()
    }

    /// The shadow sample with the routed answer, when the query is sampled.
    fn sample(&self, answer: impl FnOnce() -> Value) -> Option<ShadowSample> {
        self.sampled.then(|| {
            ShadowSample::of(
                &self.route,
                &self.decision,
                &self.baseline.id,
                &self.at,
                Some(answer()),
            )
        })
    }

    /// The cost record of the call to `model`: tokens and cost from the provider's usage when
    /// it came (the router's estimate otherwise), plus what failed attempts cost; the
    /// baseline's cost for the same tokens (none when no answer came). `answered`: a model
    /// answered (the record is then marked as shadowed when the query is sampled).
    fn record(
        &self,
        model: &ModelSpec,
        usage: Option<&Usage>,
        attempts: &[Attempt],
        status: RecordStatus,
        answered: bool,
    ) -> CostRecord {
        let stream = self.stream;
        let failed_cost: Usd = attempts
            .iter()
            .filter(|a| a.outcome != AttemptOutcome::Ok)
            .map(|a| a.cost_usd)
            .sum();
        let ok_cost: Usd = attempts
            .iter()
            .filter(|a| {
                matches!(
                    a.outcome,
                    AttemptOutcome::Ok | AttemptOutcome::StreamInterrupted
                )
            })
            .map(|a| a.cost_usd)
            .sum();
        let billed_answer = matches!(status, RecordStatus::Ok | RecordStatus::DeadlineCut)
            || status == RecordStatus::UpstreamError && stream;
        let mut rec = CostRecord::routed(
            &self.decision,
            &self.baseline.id,
            self.sampled && answered,
            self.at.clone(),
        );
        rec.status = status;
        rec.model = model.id.clone();
        rec.upstream_ms = Some(round3(attempts.iter().map(|a| a.ms).sum()));
        match usage {
            Some(u) => {
                rec.input_tokens = u.prompt_tokens;
                rec.output_tokens = u.completion_tokens;
                rec.tokens_estimated = false;
                rec.cost_usd = ok_cost + failed_cost;
                rec.baseline_cost_usd = Usd::from_f64(chain::usage_cost_usd(&self.baseline, u));
            }
            // Answered without usage: the estimate stands.
            None if billed_answer => rec.cost_usd = ok_cost + failed_cost,
            None => {
                // No answer: what the failed attempts cost, and no baseline to compare with.
                rec.cost_usd = failed_cost;
                rec.baseline_cost_usd = Usd::ZERO;
                rec.output_tokens = 0;
            }
        }
        rec.upstream = Some(UpstreamDetail {
            attempts: attempts.to_vec(),
            failed_cost_usd: failed_cost,
            cached_tokens: usage.and_then(|u| u.cached_tokens),
            reasoning_tokens: usage.and_then(|u| u.reasoning_tokens),
            stream,
        });
        rec
    }
}

/// What is needed to record a streamed answer once it has ended.
pub struct StreamFinish {
    ticket: Ticket,
    model: ModelSpec,
    attempts: Vec<Attempt>,
    path: String,
    started: Instant,
}

impl StreamFinish {
    /// Records the stream: usage from its last chunk (priced), `ok` when it ended with
    /// `[DONE]`, `deadline_cut` when it was `cut` at the invocation's time limit, else
    /// `upstream_error`; for a sampled query, the shadow sample with the streamed text as the
    /// routed answer.
    pub async fn finish<C: CostSink, S: SampleSink, P: ParkingLot>(
        mut self,
        svc: &RoutingService<C, S, P>,
        tap: &SseTap,
        interrupted: Option<&UpstreamError>,
        cut: bool,
    ) -> Settled {
        let complete = !cut && interrupted.is_none() && tap.done() && tap.error().is_none();
        let status = if complete {
            RecordStatus::Ok
        } else if cut {
            RecordStatus::DeadlineCut
        } else {
            RecordStatus::UpstreamError
        };
        let usage = tap.usage();
        if let Some(last) = self.attempts.last_mut() {
            last.ms = round3(self.started.elapsed().as_secs_f64() * 1e3);
            if !complete {
                last.outcome = AttemptOutcome::StreamInterrupted;
            }
            // An interrupted stream was generated (and billed) up to where it stopped:
            // priced from usage when it came, else estimated from what was sent (about four
            // characters a token).
            last.cost_usd = match &usage {
                Some(u) => Usd::from_f64(chain::usage_cost_usd(&self.model, u)),
                None => {
                    let sent = (tap.content().chars().count() as u64).div_ceil(4).max(1);
                    Usd::from_f64(self.model.cost_usd(self.ticket.decision.input_tokens, sent))
                }
            };
            last.cost_estimated = usage.is_none();
        }
        let record = self
            .ticket
            .record(&self.model, usage.as_ref(), &self.attempts, status, true);
        let sample = if complete {
            self.ticket.sample(|| {
                json!({
                    "object": "chat.completion",
                    "model": self.model.id,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": tap.content()}, "finish_reason": "stop"}],
                    "usage": usage,
                })
            })
        } else {
            None
        };
        svc.settle(record, sample).await
    }

    /// The attempts up to the stream as `model:outcome` joined by ` > `.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The decision this stream answers.
    pub fn decision(&self) -> &Decision {
        &self.ticket.decision
    }
}

impl<C: CostSink, S: SampleSink, P: ParkingLot> RoutingService<C, S, P> {
    /// Answers a chat-completions request through the upstream: decision, fallback chain,
    /// record (and sample). `query_id` is the caller's (for idempotent replays); `deadline`
    /// the Lambda's remaining time.
    pub async fn chat<U, H>(
        &self,
        proxy_: &ChatProxy<U, H>,
        req: ChatRequest,
        query_id: Option<&str>,
        deadline: Instant,
    ) -> Result<ChatReply, ChatError>
    where
        U: ChatUpstream,
        H: HealthReporter + HealthView,
    {
        let decision = self.decide_chat(&req, query_id, &proxy_.health)?;
        let pool = self.router().pool();
        let ticket = Ticket {
            sampled: self.sampled(&decision.query_id),
            decision,
            route: req.route,
            baseline: pool.baseline().clone(),
            stream: req.stream,
            at: Timestamp::now(),
        };
        let plan = ChainPlan {
            candidates: self.candidates(&ticket.decision),
            body: req.body,
            stream: req.stream,
            cost_cap_usd: effective_cap(req.max_cost_usd, pool.max_request_cost_usd()),
            input_tokens: ticket.decision.input_tokens,
            output_tokens: req
                .max_output_tokens
                .unwrap_or(u64::from(pool.expected_output_tokens())),
            deadline,
        };
        let result = chain::run(
            &proxy_.upstream,
            &proxy_.health,
            &proxy_.settings,
            &plan,
            |m| m.provider.clone(),
        )
        .await;
        Ok(self.conclude(ticket, &plan, result).await)
    }

    /// The decision for a chat request: routed (`auto`) or the named pool model; the
    /// caller's query id, when given, replaces the generated one.
    fn decide_chat(
        &self,
        req: &ChatRequest,
        query_id: Option<&str>,
        health: &dyn HealthView,
    ) -> Result<Decision, ChatError> {
        let router = self.router();
        let mut decision = if req.is_auto() {
            router.route(&req.route, health)?
        } else if router.pool().model(&req.model).is_some() {
            router.passthrough(&req.route, &req.model)?
        } else {
            return Err(ChatError::ModelNotFound(req.model.clone()));
        };
        if let Some(id) = query_id {
            decision.query_id = parse_query_id(id)?;
        }
        Ok(decision)
    }

    /// The decision's model then its fallbacks, as the chain's candidates.
    fn candidates(&self, decision: &Decision) -> Vec<Candidate> {
        let pool = self.router().pool();
        std::iter::once(&decision.model)
            .chain(&decision.fallbacks)
            .filter_map(|id| {
                pool.model(id).map(|(tier, m)| Candidate {
                    model: m.clone(),
                    tier,
                })
            })
            .collect()
    }

    /// The reply for how the chain ended, its record (and sample) settled — a stream's once
    /// it has ended.
    async fn conclude(
        &self,
        mut ticket: Ticket,
        plan: &ChainPlan,
        result: ProxyResult,
    ) -> ChatReply {
        let path = result.path();
        let upstream_ms = result.upstream_ms();
        let (model, usage, answer, status, answered, sample) = match result.outcome {
            ChainOutcome::Completed { completion, index } => {
                let model = ticket.answered_by(&plan.candidates[index]);
                let sample = ticket.sample(|| completion.json.clone());
                let answer = Answer {
                    status: completion.status,
                    content_type: completion.content_type,
                    body: completion.body,
                };
                (
                    model,
                    completion.usage,
                    Ok(answer),
                    RecordStatus::Ok,
                    true,
                    sample,
                )
            }
            ChainOutcome::Streaming { stream, index } => {
                let model = ticket.answered_by(&plan.candidates[index]);
                let finish = StreamFinish {
                    ticket,
                    model,
                    attempts: result.attempts,
                    path,
                    started: Instant::now(),
                };
                return ChatReply::Stream(Box::new(PendingStream { stream, finish }));
            }
            ChainOutcome::Rejected {
                status,
                content_type,
                body,
                index,
            } => {
                // The provider's status and text, in the OpenAI error shape that clients read.
                let answer = match openai_error_body(&body) {
                    Some(body) => Answer {
                        status,
                        content_type: "application/json".into(),
                        body,
                    },
                    None => Answer {
                        status,
                        content_type,
                        body,
                    },
                };
                let model = plan.candidates[index].model.clone();
                (model, None, Ok(answer), RecordStatus::Rejected, false, None)
            }
            ChainOutcome::Exhausted { reason, last_error } => {
                let reason = Unanswered::of(reason, last_error.as_ref(), plan.cost_cap_usd);
                let model = self
                    .router()
                    .pool()
                    .model(&ticket.decision.model)
                    .map_or_else(|| ticket.baseline.clone(), |(_, m)| m.clone());
                let status = RecordStatus::UpstreamError;
                (model, None, Err(reason), status, false, None)
            }
        };
        let record = ticket.record(&model, usage.as_ref(), &result.attempts, status, answered);
        let trail = Trail {
            settled: self.settle(record, sample).await,
            decision: ticket.decision,
            path,
            upstream_ms,
        };
        match answer {
            Ok(answer) => ChatReply::Answer { answer, trail },
            Err(reason) => ChatReply::Failed { reason, trail },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_could_spend_past_the_cap_or_switch_models_is_refused() {
        for body in [
            br#"{"model":"auto","n":2,"messages":[{"role":"user","content":"hi"}]}"#.as_slice(),
            br#"{"model":"auto","models":["a","b"],"messages":[{"role":"user","content":"hi"}]}"#,
            br#"{"model":"auto","route":"fallback","messages":[{"role":"user","content":"hi"}]}"#,
        ] {
            let err = ChatRequest::parse(body, None).unwrap_err();
            assert!(matches!(err, ChatError::InvalidRequest(_)), "{err:?}");
        }
        assert!(
            ChatRequest::parse(
                br#"{"model":"auto","n":1,"messages":[{"role":"user","content":"hi"}]}"#,
                None
            )
            .is_ok()
        );
    }

    #[test]
    fn a_request_says_what_it_needs_of_the_model() {
        let r = ChatRequest::parse(
            br#"{"model":"auto","stream":true,"tools":[{"type":"function","function":{"name":"f"}}],
                "response_format":{"type":"json_schema","json_schema":{}},
                "messages":[{"role":"user","content":[{"type":"text","text":"what is this?"},
                {"type":"image_url","image_url":{"url":"data:image/png;base64,AA=="}}]}]}"#,
            None,
        )
        .unwrap();
        let want: BTreeSet<Capability> = [
            Capability::Tools,
            Capability::JsonSchema,
            Capability::Vision,
            Capability::Streaming,
        ]
        .into();
        assert_eq!(r.route.needs, want);
        let plain = ChatRequest::parse(
            br#"{"model":"auto","tools":[],"messages":[{"role":"user","content":"hi"}]}"#,
            None,
        )
        .unwrap();
        assert!(
            plain.route.needs.is_empty(),
            "an empty tools list needs nothing"
        );
    }

    #[test]
    fn tool_definitions_go_to_the_router_to_be_counted() {
        let r = ChatRequest::parse(
            br#"{"model":"auto","messages":[{"role":"user","content":"hi"}],
                "tools":[{"type":"function","function":{"name":"a","parameters":{}}},
                         {"type":"function","function":{"name":"b"}}],
                "functions":[{"name":"c","description":"legacy"}]}"#,
            None,
        )
        .unwrap();
        let texts: Vec<String> = r
            .route
            .tools
            .iter()
            .map(crate::routing::input_tokens::tool_text)
            .collect();
        let want = [
            json!({"name": "a", "parameters": {}}),
            json!({"name": "b"}),
            json!({"name": "c", "description": "legacy"}),
        ]
        .map(|v| v.to_string());
        assert_eq!(texts, want);
        // The body still carries them upstream.
        assert!(r.body.contains_key("tools") && r.body.contains_key("functions"));
        let none = ChatRequest::parse(
            br#"{"model":"auto","tools":null,"messages":[{"role":"user","content":"hi"}]}"#,
            None,
        )
        .unwrap();
        assert!(none.route.tools.is_empty());
    }

    #[test]
    fn the_cap_is_the_lower_and_never_raised_by_the_caller() {
        assert_eq!(effective_cap(Some(1e300), Some(0.5)), Some(0.5));
        assert_eq!(effective_cap(Some(0.1), Some(0.5)), Some(0.1));
        assert_eq!(effective_cap(None, Some(0.5)), Some(0.5));
        assert_eq!(effective_cap(Some(0.2), None), Some(0.2));
        assert_eq!(effective_cap(None, None), None);
    }

    #[test]
    fn parses_auto_requests_and_strips_tierwise_options() {
        let r = ChatRequest::parse(
            br#"{"model":"auto","messages":[{"role":"user","content":"hi"}],"max_tokens":50,"tierwise":{"max_cost_usd":0.02,"tenant":"acme"}}"#,
            Some("0.01"),
        )
        .unwrap();
        assert!(r.is_auto());
        assert!(!r.body.contains_key("tierwise"));
        assert_eq!(r.max_output_tokens, Some(50));
        assert_eq!(r.max_cost_usd, Some(0.01));
        assert_eq!(r.route.tenant.as_deref(), Some("acme"));
        assert!(!r.stream);
    }

    #[test]
    fn refuses_malformed_requests_with_clear_messages() {
        for (body, needle) in [
            (&br#"[1]"#[..], "JSON object"),
            (br#"{"messages":[{"role":"user","content":"x"}]}"#, "`model` is required"),
            (br#"{"model":"auto"}"#, "`messages` is required"),
            (br#"{"model":"auto","messages":[]}"#, "`messages` is required"),
            (br#"{"model":"auto","messages":[{"role":"user","content":"x"}],"stream":"yes"}"#, "`stream`"),
            (br#"{"model":"auto","messages":[{"role":"user","content":"x"}],"tierwise":{"budget":1}}"#, "tierwise"),
            (br#"{"model":"auto","messages":[{"role":"user","content":"x"}],"tierwise":{"max_cost_usd":-1}}"#, "max_cost_usd"),
            (b"{not json", "invalid JSON"),
        ] {
            let e = ChatRequest::parse(body, None).unwrap_err();
            assert!(matches!(e, ChatError::InvalidRequest(_)), "{e:?}");
            assert!(e.to_string().contains(needle), "{e} lacks {needle}");
        }
        let e = ChatRequest::parse(
            br#"{"model":"auto","messages":[{"role":"user","content":"x"}]}"#,
            Some("abc"),
        )
        .unwrap_err();
        assert!(matches!(e, ChatError::InvalidRequest(_)), "{e:?}");
    }

    #[test]
    fn the_lower_cost_cap_wins() {
        assert_eq!(request_cap(Some(" 0.5 "), Some(0.2)).unwrap(), Some(0.2));
        assert_eq!(request_cap(Some("0.1"), None).unwrap(), Some(0.1));
        assert_eq!(request_cap(None, None).unwrap(), None);
        assert!(request_cap(Some("0"), None).is_err());
        assert!(request_cap(None, Some(f64::NAN)).is_err());
    }

    #[test]
    fn an_exhausted_chain_says_why() {
        let rate_limited = UpstreamError::RateLimited { retry_after: None };
        for (reason, last, want) in [
            (
                Exhausted::CostCap,
                None,
                Unanswered::CostCap { cap_usd: 0.5 },
            ),
            (
                Exhausted::Deadline,
                Some(&rate_limited),
                Unanswered::Deadline,
            ),
            (
                Exhausted::AllFailed,
                Some(&rate_limited),
                Unanswered::RateLimited,
            ),
            (
                Exhausted::AllFailed,
                Some(&UpstreamError::ReadTimeout),
                Unanswered::TimedOut,
            ),
            (Exhausted::AllFailed, None, Unanswered::NoModel),
        ] {
            assert_eq!(Unanswered::of(reason, last, Some(0.5)), want);
        }
    }
}
