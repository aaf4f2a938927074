//! `POST /v1/chat/completions` as a domain flow: parse an OpenAI chat request, route it
//! (`model: "auto"`) or pass a named pool model through, call the upstream through the
//! proxy's fallback chain ([`crate::proxy::chain`]), then record what it cost from the provider's
//! usage and, for a sampled query, send the shadow sample with the routed answer.
//!
//! The handler only maps HTTP to [`ChatRequest`] and [`ChatReply`] back; a stream's record is
//! written by [`StreamFinish::finish`] once the stream has ended.

use std::time::Instant;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::ledger::records::{
    Attempt, AttemptOutcome, CostRecord, RecordStatus, ShadowSample, Timestamp, UpstreamDetail,
    shadow_sampled,
};
use crate::ledger::service::{Delivery, RoutingService};
use crate::ledger::store::{CostSink, ParkingLot, SampleSink};
use crate::proxy::chain::{
    self, Candidate, ChainOutcome, ChainPlan, Exhausted, HealthReporter, ProxySettings,
};
use crate::proxy::upstream::{ChatStream, ChatUpstream, SseTap, UpstreamError, Usage};
use crate::routing::decision::{Decision, HealthView, Message, RouteRequest, round3, round9};
use crate::routing::pool::{ModelSpec, Tier};
use crate::serve::api::ApiError;

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
    pub fn parse(body: &[u8], header_cap: Option<&str>) -> Result<ChatRequest, ApiError> {
        let mut obj: Map<String, Value> = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(o)) => o,
            Ok(_) => return Err(ApiError::bad_request("the body must be a JSON object")),
            Err(e) => return Err(ApiError::bad_request(format!("invalid JSON body: {e}"))),
        };
        let model = match obj.get("model") {
            Some(Value::String(m)) if !m.trim().is_empty() => m.trim().to_string(),
            Some(_) => return Err(ApiError::bad_request("`model` must be a non-empty string")),
            None => {
                return Err(ApiError::bad_request(
                    "`model` is required: \"auto\" to route, or a model of GET /v1/models",
                ));
            }
        };
        let messages: Vec<Message> = match obj.get("messages") {
            Some(v @ Value::Array(a)) if !a.is_empty() => serde_json::from_value(v.clone())
                .map_err(|e| ApiError::bad_request(format!("invalid `messages`: {e}")))?,
            _ => {
                return Err(ApiError::bad_request(
                    "`messages` is required: a non-empty array of chat messages",
                ));
            }
        };
        let stream = match obj.get("stream") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(ApiError::bad_request("`stream` must be a boolean")),
        };
        let max_output_tokens = ["max_completion_tokens", "max_tokens"]
            .iter()
            .find_map(|k| obj.get(*k).and_then(Value::as_u64));
        let options: TierwiseOptions = match obj.remove("tierwise") {
            None | Some(Value::Null) => TierwiseOptions::default(),
            Some(v) => serde_json::from_value(v)
                .map_err(|e| ApiError::bad_request(format!("invalid `tierwise` options: {e}")))?,
        };
        let header_cap = match header_cap {
            Some(h) => Some(parse_cap(h.trim().parse::<f64>().ok()).ok_or_else(|| {
                ApiError::bad_request("x-tierwise-max-cost-usd must be a positive number of USD")
            })?),
            None => None,
        };
        let body_cap = match options.max_cost_usd {
            Some(c) => Some(parse_cap(Some(c)).ok_or_else(|| {
                ApiError::bad_request("tierwise.max_cost_usd must be a positive number of USD")
            })?),
            None => None,
        };
        let max_cost_usd = match (header_cap, body_cap) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
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

fn parse_cap(v: Option<f64>) -> Option<f64> {
    v.filter(|c| c.is_finite() && *c > 0.0)
}

/// The upstream side of the service: client, breakers, retry policy.
pub struct ChatProxy<U, H> {
    pub upstream: U,
    pub health: H,
    pub settings: ProxySettings,
}

/// How a chat request ended (before the HTTP mapping). One per request, moved once: the
/// size of the stream variant does not matter.
#[allow(clippy::large_enum_variant)]
pub enum ChatReply {
    /// A buffered answer: the provider's (or, for `Rejected`, its refusal) body as sent.
    Answer {
        status: u16,
        content_type: String,
        body: Bytes,
        decision: Decision,
        record: Delivery,
        sample: Option<Delivery>,
        path: String,
        /// Time spent in upstream calls (every attempt and wait excluded), ms.
        upstream_ms: f64,
    },
    /// A stream whose first bytes have arrived; pass `first` then `rest` through an
    /// [`SseTap`] to the caller, then call [`StreamFinish::finish`].
    Stream {
        stream: ChatStream,
        decision: Decision,
        finish: StreamFinish,
    },
    /// No model answered.
    Failed {
        error: ApiError,
        decision: Decision,
        record: Delivery,
        path: String,
        upstream_ms: f64,
    },
}

/// What is needed to record a streamed answer once it has ended.
pub struct StreamFinish {
    decision: Decision,
    model: ModelSpec,
    baseline: ModelSpec,
    attempts: Vec<Attempt>,
    route: RouteRequest,
    sampled: bool,
    started: Instant,
    at: Timestamp,
}

impl StreamFinish {
    /// Records the stream: usage from its last chunk (priced), `ok` when it ended with
    /// `[DONE]`, else `upstream_error`; for a sampled query, the shadow sample with the
    /// streamed text as the routed answer.
    pub async fn finish<C: CostSink, S: SampleSink, P: ParkingLot>(
        mut self,
        svc: &RoutingService<C, S, P>,
        tap: &SseTap,
        interrupted: Option<&UpstreamError>,
    ) -> (Delivery, Option<Delivery>) {
        let complete = interrupted.is_none() && tap.done() && tap.error().is_none();
        let status = if complete {
            RecordStatus::Ok
        } else {
            RecordStatus::UpstreamError
        };
        if let Some(last) = self.attempts.last_mut() {
            last.ms = round3(self.started.elapsed().as_secs_f64() * 1e3);
            if !complete {
                last.outcome = AttemptOutcome::StreamInterrupted;
            }
        }
        let usage = tap.usage();
        // An interrupted stream was generated (and billed) up to where it stopped: priced
        // from usage when it came, else estimated.
        let answer_cost = match &usage {
            Some(u) => chain::usage_cost_usd(&self.model, u),
            None => self.decision.estimated_cost_usd,
        };
        if let Some(last) = self.attempts.last_mut() {
            last.cost_usd = round9(answer_cost);
            last.cost_estimated = usage.is_none();
        }
        let record = proxied_record(
            &self.decision,
            &self.model,
            &self.baseline,
            usage.as_ref(),
            &self.attempts,
            status,
            true,
            self.sampled,
            self.at.clone(),
        );
        let record_delivery = svc.deliver_record(record).await;
        let sample = if self.sampled && complete && record_delivery != Delivery::Duplicate {
            let answer = json!({
                "object": "chat.completion",
                "model": self.model.id,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": tap.content()}, "finish_reason": "stop"}],
                "usage": usage,
            });
            let sample = ShadowSample::of(
                &self.route,
                &self.decision,
                &self.baseline.id,
                &self.at.rfc3339,
                Some(answer),
            );
            Some(svc.deliver_sample(sample).await)
        } else {
            None
        };
        (record_delivery, sample)
    }

    /// The attempts so far as `model:outcome` joined by ` > `.
    pub fn path(&self) -> String {
        self.attempts
            .iter()
            .map(|a| format!("{}:{}", a.model, a.outcome))
            .collect::<Vec<_>>()
            .join(" > ")
    }

    /// The decision this stream answers.
    pub fn decision(&self) -> &Decision {
        &self.decision
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
    ) -> Result<ChatReply, ApiError>
    where
        U: ChatUpstream,
        H: HealthReporter + HealthView,
    {
        let pool = self.router().pool();
        let mut decision = if req.is_auto() {
            self.router().route(&req.route, &proxy_.health)
        } else if pool.model(&req.model).is_some() {
            self.router().passthrough(&req.route, &req.model)
        } else {
            return Err(ApiError::model_not_found(&req.model));
        }
        .map_err(|e| ApiError::from(&e))?;
        if let Some(id) = query_id {
            decision.query_id =
                crate::ledger::service::parse_query_id(id).map_err(|e| ApiError::from(&e))?;
        }
        let at = Timestamp::now();
        let sampled = shadow_sampled(&decision.query_id, self.shadow_rate());
        let baseline = pool.baseline().clone();
        let candidates: Vec<Candidate> = std::iter::once(&decision.model)
            .chain(&decision.fallbacks)
            .filter_map(|id| {
                pool.model(id).map(|(tier, m)| Candidate {
                    model: m.clone(),
                    tier,
                })
            })
            .collect();
        let output_tokens = req
            .max_output_tokens
            .unwrap_or(u64::from(pool.expected_output_tokens()));
        let cap = req.max_cost_usd.or(pool.max_request_cost_usd());
        let plan = ChainPlan {
            candidates,
            body: req.body,
            stream: req.stream,
            cost_cap_usd: cap,
            input_tokens: decision.input_tokens,
            output_tokens,
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
        let path = result.path();
        let upstream_ms = result.upstream_ms();
        match result.outcome {
            ChainOutcome::Completed { completion, index } => {
                let model = plan.candidates[index].model.clone();
                decision.model = model.id.clone();
                decision.tier = plan.candidates[index].tier;
                let record = proxied_record(
                    &decision,
                    &model,
                    &baseline,
                    completion.usage.as_ref(),
                    &result.attempts,
                    RecordStatus::Ok,
                    false,
                    sampled,
                    at.clone(),
                );
                let record_delivery = self.deliver_record(record).await;
                let sample = if sampled && record_delivery != Delivery::Duplicate {
                    let s = ShadowSample::of(
                        &req.route,
                        &decision,
                        &baseline.id,
                        &at.rfc3339,
                        Some(completion.json.clone()),
                    );
                    Some(self.deliver_sample(s).await)
                } else {
                    None
                };
                Ok(ChatReply::Answer {
                    status: completion.status,
                    content_type: completion.content_type,
                    body: completion.body,
                    decision,
                    record: record_delivery,
                    sample,
                    path,
                    upstream_ms,
                })
            }
            ChainOutcome::Streaming { stream, index } => {
                let model = plan.candidates[index].model.clone();
                decision.model = model.id.clone();
                decision.tier = plan.candidates[index].tier;
                Ok(ChatReply::Stream {
                    stream,
                    decision: decision.clone(),
                    finish: StreamFinish {
                        decision,
                        model,
                        baseline,
                        attempts: result.attempts,
                        route: req.route,
                        sampled,
                        started: Instant::now(),
                        at,
                    },
                })
            }
            ChainOutcome::Rejected {
                status,
                content_type,
                body,
                index,
            } => {
                let model = plan.candidates[index].model.clone();
                let record = proxied_record(
                    &decision,
                    &model,
                    &baseline,
                    None,
                    &result.attempts,
                    RecordStatus::Rejected,
                    req.stream,
                    false,
                    at,
                );
                let record_delivery = self.deliver_record(record).await;
                Ok(ChatReply::Answer {
                    status,
                    content_type,
                    body,
                    decision,
                    record: record_delivery,
                    sample: None,
                    path,
                    upstream_ms,
                })
            }
            ChainOutcome::Exhausted { reason, last_error } => {
                let error = match (reason, &last_error) {
                    (Exhausted::CostCap, _) => ApiError::cost_cap(cap.unwrap_or(0.0)),
                    (Exhausted::Deadline, _) => ApiError::upstream(
                        504,
                        "upstream_timeout",
                        "no model answered within the request's time",
                    ),
                    (_, Some(UpstreamError::RateLimited { .. })) => ApiError::upstream(
                        429,
                        "upstream_rate_limited",
                        "every model that could answer is rate limited; retry later",
                    ),
                    (_, Some(UpstreamError::ReadTimeout | UpstreamError::ConnectTimeout)) => {
                        ApiError::upstream(504, "upstream_timeout", "the model providers timed out")
                    }
                    (_, None) => ApiError::upstream(
                        503,
                        "no_healthy_model",
                        "no model is available to answer",
                    ),
                    _ => ApiError::upstream(
                        502,
                        "upstream_error",
                        "the model providers failed to answer",
                    ),
                };
                let model = pool
                    .model(&decision.model)
                    .map(|(_, m)| m.clone())
                    .unwrap_or_else(|| baseline.clone());
                let record = proxied_record(
                    &decision,
                    &model,
                    &baseline,
                    None,
                    &result.attempts,
                    RecordStatus::UpstreamError,
                    req.stream,
                    false,
                    at,
                );
                let record_delivery = self.deliver_record(record).await;
                Ok(ChatReply::Failed {
                    error,
                    decision,
                    record: record_delivery,
                    path,
                    upstream_ms,
                })
            }
        }
    }
}

/// The cost record of a proxied call: tokens and cost from the provider's usage when it came
/// (the router's estimate otherwise), plus what failed attempts cost; the baseline's cost for
/// the same tokens (none when no answer came).
#[allow(clippy::too_many_arguments)]
fn proxied_record(
    decision: &Decision,
    model: &ModelSpec,
    baseline: &ModelSpec,
    usage: Option<&Usage>,
    attempts: &[Attempt],
    status: RecordStatus,
    stream: bool,
    shadow: bool,
    at: Timestamp,
) -> CostRecord {
    let failed_cost: f64 = attempts
        .iter()
        .filter(|a| a.outcome != AttemptOutcome::Ok)
        .map(|a| a.cost_usd)
        .sum();
    let answered = matches!(status, RecordStatus::Ok)
        || (status == RecordStatus::UpstreamError && stream && usage.is_some());
    let mut rec = CostRecord::routed(decision, &baseline.id, shadow, at);
    rec.status = status;
    rec.model = model.id.clone();
    rec.upstream_ms = Some(round3(attempts.iter().map(|a| a.ms).sum()));
    let ok_cost: f64 = attempts
        .iter()
        .filter(|a| {
            matches!(
                a.outcome,
                AttemptOutcome::Ok | AttemptOutcome::StreamInterrupted
            )
        })
        .map(|a| a.cost_usd)
        .sum();
    match usage {
        Some(u) => {
            rec.input_tokens = u.prompt_tokens;
            rec.output_tokens = u.completion_tokens;
            rec.tokens_estimated = false;
            rec.cost_usd = round9(ok_cost + failed_cost);
            rec.baseline_cost_usd = round9(chain::usage_cost_usd(baseline, u));
        }
        None if answered || status == RecordStatus::UpstreamError && stream => {
            // Answered without usage: the estimate stands.
            rec.cost_usd = round9(ok_cost + failed_cost);
        }
        None => {
            // No answer: what the failed attempts cost, and no baseline to compare with.
            rec.cost_usd = round9(failed_cost);
            rec.baseline_cost_usd = 0.0;
            rec.output_tokens = 0;
        }
    }
    rec.upstream = Some(UpstreamDetail {
        attempts: attempts.to_vec(),
        failed_cost_usd: round9(failed_cost),
        cached_tokens: usage.and_then(|u| u.cached_tokens),
        reasoning_tokens: usage.and_then(|u| u.reasoning_tokens),
        stream,
    });
    rec
}

#[cfg(test)]
mod tests {
    use super::*;

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
            assert_eq!(e.status, 400);
            assert!(e.message.contains(needle), "{} lacks {needle}", e.message);
        }
        let e = ChatRequest::parse(
            br#"{"model":"auto","messages":[{"role":"user","content":"x"}]}"#,
            Some("abc"),
        )
        .unwrap_err();
        assert_eq!(e.status, 400);
    }
}
