//! The evaluator's flow over its upstream and store ports: [`Evaluator::evaluate`] takes one
//! shadow sample to a record — the routed answer (from the sample when the router proxied the
//! call, else asked of the routed model), the reference model's answer, the comparison
//! ([`crate::shadow::verdict`]: exact match, MiniLM similarity or an LLM judge), the record.
//!
//! Idempotency: a sample is evaluated (and its calls paid) once per query id. The evaluator
//! first claims `query_id` with a lease; a completed evaluation makes a redelivered sample a
//! no-op (no upstream call), a live lease held elsewhere makes it "busy" (retry later), an
//! expired lease (a crashed evaluator) may be taken over. Completion is conditional on still
//! holding the claim, so the rollup counts each query once even if a lease was lost.
//!
//! Prompts: the record keeps the prompt (at most `TIERWISE_PROMPT_MAX_BYTES`) so that the label
//! export can write training rows; `TIERWISE_KEEP_PROMPTS=false` drops it (the record then
//! gives no label), and evaluation records expire after `TIERWISE_EVAL_TTL_DAYS` like cost
//! records do (rollups stay).

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Value, json};

use crate::ledger::money::Usd;
use crate::ledger::records::{SHADOW_SAMPLE_VERSION, ShadowSample, Timestamp};
use crate::ledger::store::{StoreError, WriteOutcome};
use crate::proxy::upstream::{
    ChatCall, ChatUpstream, Completion, UpstreamError, Usage, answer_text, usage_of,
};
use crate::routing::embed::Embedder;
use crate::routing::pool::{ModelSpec, PoolConfig, Tier};
use crate::serve::settings::SettingsError;
use crate::shadow::record::{
    EVALUATOR_VERSION, EvaluationRecord, METHOD_SAME_MODEL, RECORD_EVALUATION,
    ROUTED_FROM_EVALUATOR, ROUTED_FROM_SAMPLE, sample_prompt, truncate_utf8,
};
use crate::shadow::settings::EvaluatorSettings;
use crate::shadow::store::{Claim, EvaluationStore};
use crate::shadow::verdict::{self, Comparison, Method};

/// An evaluation failed; the sample should be retried (except [`EvaluatorError::Poisoned`],
/// which cannot succeed: it is kept for the dead-letter queue).
#[derive(Debug, thiserror::Error)]
pub enum EvaluatorError {
    /// Not a sample this evaluator can evaluate (not JSON, wrong shape or version, no
    /// prompt, unknown routed model without its answer).
    #[error("unusable sample: {0}")]
    Poisoned(String),
    /// Another evaluator holds the query id.
    #[error("evaluation in progress elsewhere (lease until {lease_until})")]
    Busy { lease_until: i64 },
    /// A model call failed; `spent_usd` is what the calls that did answer cost (not
    /// recorded: the retry pays again and records its own spend).
    #[error("{role} call to {model} failed: {source}")]
    Upstream {
        role: &'static str,
        model: String,
        spent_usd: f64,
        #[source]
        source: UpstreamError,
    },
    /// The model answered, but not something the comparison can use (no text).
    #[error("{role} answer of {model} unusable: {detail}")]
    Answer {
        role: &'static str,
        model: String,
        detail: String,
        spent_usd: f64,
    },
    /// The comparison failed (the embedder, or an unreadable judge answer).
    #[error("comparison failed: {detail}")]
    Compare { detail: String, spent_usd: f64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl EvaluatorError {
    /// Whether a retry of the sample may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            EvaluatorError::Poisoned(_) => false,
            EvaluatorError::Store(e) => e.is_retryable(),
            _ => true,
        }
    }

    /// Short machine-readable kind, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            EvaluatorError::Poisoned(_) => "poisoned",
            EvaluatorError::Busy { .. } => "busy",
            EvaluatorError::Upstream { .. } => "upstream",
            EvaluatorError::Answer { .. } => "answer",
            EvaluatorError::Compare { .. } => "compare",
            EvaluatorError::Store(_) => "store",
        }
    }

    /// What the failed attempt spent on model calls that answered.
    pub fn spent_usd(&self) -> f64 {
        match self {
            EvaluatorError::Upstream { spent_usd, .. }
            | EvaluatorError::Answer { spent_usd, .. }
            | EvaluatorError::Compare { spent_usd, .. } => *spent_usd,
            _ => 0.0,
        }
    }
}

/// How the evaluation of a sample ended (successfully).
#[derive(Debug, Clone, PartialEq)]
pub enum SampleOutcome {
    /// Evaluated now: the record was written.
    Recorded(Box<EvaluationRecord>),
    /// Already evaluated (a redelivery): nothing done, nothing paid.
    AlreadyDone,
    /// Evaluated, but another evaluator completed it first (our lease had ended): this
    /// attempt's spend (`spent_usd`) went unrecorded.
    LostClaim { spent_usd: f64 },
    /// Nothing to compare (the router proxied the call, but the answer has no text: a
    /// tool call, an empty answer): acknowledged without a record.
    Skipped { reason: &'static str },
}

/// One answer with its usage and price.
struct Answered {
    text: String,
    usage: Usage,
    estimated: bool,
    cost_usd: f64,
}

/// Evaluates shadow samples: built once per instance.
pub struct Evaluator<U, S> {
    upstream: U,
    store: S,
    embedder: Arc<Embedder>,
    pool: PoolConfig,
    settings: EvaluatorSettings,
}

impl<U: ChatUpstream, S: EvaluationStore> Evaluator<U, S> {
    /// An evaluator over its upstream and store. Checks that the reference override and
    /// the judge model (when set) are models of the pool.
    pub fn new(
        upstream: U,
        store: S,
        embedder: Arc<Embedder>,
        pool: PoolConfig,
        settings: EvaluatorSettings,
    ) -> Result<Self, SettingsError> {
        if let Some(m) = &settings.reference_model
            && pool.model(m).is_none()
        {
            return Err(SettingsError::Invalid {
                name: "REFERENCE_MODEL",
                reason: format!("{m} is not a model of the pool"),
            });
        }
        if let Some(judge) = &settings.judge
            && pool.model(&judge.model).is_none()
        {
            return Err(SettingsError::Invalid {
                name: "JUDGE_MODEL",
                reason: format!("judge model {} is not a model of the pool", judge.model),
            });
        }
        Ok(Self {
            upstream,
            store,
            embedder,
            pool,
            settings,
        })
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn upstream(&self) -> &U {
        &self.upstream
    }

    pub fn settings(&self) -> &EvaluatorSettings {
        &self.settings
    }

    pub fn pool(&self) -> &PoolConfig {
        &self.pool
    }

    /// A message body as a sample, or why it is not one (a poisoned message).
    pub fn parse(body: &str) -> Result<ShadowSample, EvaluatorError> {
        let v: Value = serde_json::from_str(body)
            .map_err(|e| EvaluatorError::Poisoned(format!("not JSON: {e}")))?;
        match v.get("version").and_then(Value::as_u64) {
            Some(n) if n == u64::from(SHADOW_SAMPLE_VERSION) => {}
            Some(n) => {
                return Err(EvaluatorError::Poisoned(format!(
                    "unsupported sample version {n} (this evaluator reads \
                     {SHADOW_SAMPLE_VERSION})"
                )));
            }
            None => return Err(EvaluatorError::Poisoned("no sample version".into())),
        }
        serde_json::from_value(v)
            .map_err(|e| EvaluatorError::Poisoned(format!("not a shadow sample: {e}")))
    }

    /// Evaluates one sample once: claim, answers, comparison, record.
    pub async fn evaluate(&self, sample: &ShadowSample) -> Result<SampleOutcome, EvaluatorError> {
        let plan = self.plan(sample)?;
        if sample.truncated {
            return Ok(SampleOutcome::Skipped {
                reason: "query cut to fit the queue",
            });
        }
        if let Some(answer) = &sample.routed_answer
            && plan.reference.id != sample.routed_model
            && answer_text(answer).is_none()
        {
            return Ok(SampleOutcome::Skipped {
                reason: "routed answer without text",
            });
        }
        let owner = uuid::Uuid::now_v7().to_string();
        let now = Timestamp::now().unix_secs();
        match self
            .store
            .claim(&sample.query_id, &owner, now, self.settings.lease)
            .await?
        {
            Claim::Done => return Ok(SampleOutcome::AlreadyDone),
            Claim::Busy { lease_until } => return Err(EvaluatorError::Busy { lease_until }),
            Claim::Claimed => {}
        }
        let record = match self.run(sample, &plan).await {
            Ok(r) => r,
            Err(e) => {
                if let Err(re) = self.store.release(&sample.query_id, &owner).await {
                    // The lease then ends by itself.
                    tracing::warn!(query_id = %sample.query_id, error = %re,
                        "claim release failed");
                }
                return Err(e);
            }
        };
        match self.store.complete(&record, &owner).await {
            Ok(WriteOutcome::Written) => Ok(SampleOutcome::Recorded(Box::new(record))),
            Ok(WriteOutcome::Duplicate) => Ok(SampleOutcome::LostClaim {
                spent_usd: record.shadow_cost_usd.as_f64(),
            }),
            Err(e) => {
                let _ = self.store.release(&sample.query_id, &owner).await;
                Err(e.into())
            }
        }
    }

    /// Checks the sample and resolves its models (no I/O).
    fn plan<'a>(&'a self, sample: &ShadowSample) -> Result<Plan<'a>, EvaluatorError> {
        if sample.version != SHADOW_SAMPLE_VERSION {
            return Err(EvaluatorError::Poisoned(format!(
                "unsupported sample version {}",
                sample.version
            )));
        }
        if sample.query_id.trim().is_empty() {
            return Err(EvaluatorError::Poisoned("empty query id".into()));
        }
        let prompt = sample_prompt(sample)
            .ok_or_else(|| EvaluatorError::Poisoned("no query and no user message".into()))?;
        let wanted = self
            .settings
            .reference_model
            .as_deref()
            .unwrap_or(&sample.reference_model);
        let (reference_tier, reference) = match self.pool.model(wanted) {
            Some(found) => found,
            None => {
                tracing::warn!(query_id = %sample.query_id, reference = wanted,
                    "reference model not in the pool: using the baseline");
                (self.pool.baseline_tier(), self.pool.baseline())
            }
        };
        let routed = self.pool.model(&sample.routed_model).map(|(_, m)| m);
        if routed.is_none() && sample.routed_answer.is_none() {
            return Err(EvaluatorError::Poisoned(format!(
                "routed model {} is not in the pool and the sample has no answer",
                sample.routed_model
            )));
        }
        Ok(Plan {
            prompt,
            reference,
            reference_tier,
            routed,
        })
    }

    async fn run(
        &self,
        sample: &ShadowSample,
        plan: &Plan<'_>,
    ) -> Result<EvaluationRecord, EvaluatorError> {
        let messages = request_messages(sample);
        let from_sample = sample.routed_answer.is_some();
        let (routed, reference) = self.answers(sample, plan, &messages).await?;
        let mut spent = 0.0;
        if let Some(r) = &routed
            && !from_sample
        {
            spent += r.cost_usd;
        }
        if let Some(f) = &reference {
            spent += f.cost_usd;
        }
        let (comparison, judge) = match (&routed, &reference) {
            (_, None) => (None, None),
            (Some(r), Some(f)) => {
                let (c, j) = self
                    .compare(sample, &plan.prompt, &r.text, &f.text, spent)
                    .await?;
                (Some(c), j)
            }
            (None, Some(_)) => (None, None),
        };
        let evaluated = Evaluated {
            routed,
            reference,
            comparison,
            judge,
            from_sample,
        };
        Ok(self.record(sample, plan, evaluated))
    }

    /// The routed answer (from the sample, else asked of the routed model) and the reference
    /// answer; neither is asked when the routed model is the reference.
    async fn answers(
        &self,
        sample: &ShadowSample,
        plan: &Plan<'_>,
        messages: &Value,
    ) -> Result<(Option<Answered>, Option<Answered>), EvaluatorError> {
        let same_model = plan.reference.id == sample.routed_model;
        Ok(match (&sample.routed_answer, same_model) {
            // The routed answer came with the sample (the router proxied the call).
            (Some(answer), true) => (self.answer_from_sample(answer, plan, messages).ok(), None),
            (Some(answer), false) => {
                let routed = self.answer_from_sample(answer, plan, messages)?;
                let reference = self
                    .call(plan.reference, "reference", messages, 0.0)
                    .await?;
                (Some(routed), Some(reference))
            }
            // Nothing to compare: the routed model is the reference.
            (None, true) => (None, None),
            // A decision only: ask the routed model too, both calls at once.
            (None, false) => {
                let routed_spec = plan.routed.ok_or_else(|| {
                    EvaluatorError::Poisoned(format!(
                        "routed model {} unknown",
                        sample.routed_model
                    ))
                })?;
                let (r, f) = futures_util::future::join(
                    self.call(routed_spec, "routed", messages, 0.0),
                    self.call(plan.reference, "reference", messages, 0.0),
                )
                .await;
                match (r, f) {
                    (Ok(r), Ok(f)) => (Some(r), Some(f)),
                    (Err(e), other) => {
                        return Err(with_spent(e, other.map_or(0.0, |a| a.cost_usd)));
                    }
                    (Ok(r), Err(e)) => return Err(with_spent(e, r.cost_usd)),
                }
            }
        })
    }

    fn answer_from_sample(
        &self,
        answer: &Value,
        plan: &Plan<'_>,
        messages: &Value,
    ) -> Result<Answered, EvaluatorError> {
        let text = answer_text(answer).ok_or_else(|| {
            EvaluatorError::Poisoned(
                "the sample's routed answer has no text (tool call or empty answer)".into(),
            )
        })?;
        let (usage, estimated) = self.usage_or_estimate(usage_of(answer), messages, &text);
        let cost_usd = plan.routed.map_or(0.0, |m| {
            m.cost_usd(usage.prompt_tokens, usage.completion_tokens)
        });
        Ok(Answered {
            text,
            usage,
            estimated,
            cost_usd,
        })
    }

    /// One chat call to `model`; `spent_before` goes on the error so that the failure
    /// reports what the attempt paid.
    async fn call(
        &self,
        model: &ModelSpec,
        role: &'static str,
        messages: &Value,
        spent_before: f64,
    ) -> Result<Answered, EvaluatorError> {
        let max_tokens = self.settings.max_output_tokens.min(model.max_output_tokens);
        let body = json!({
            "model": model.upstream_name(),
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": 0,
        });
        self.ask(model, role, body, messages, spent_before).await
    }

    /// Sends `body` (whose conversation is `messages`) to `model` as `role` and reads the
    /// answer; `spent_before` goes on the error so that the failure reports what the attempt
    /// paid.
    async fn ask(
        &self,
        model: &ModelSpec,
        role: &'static str,
        body: Value,
        messages: &Value,
        spent_before: f64,
    ) -> Result<Answered, EvaluatorError> {
        let completion =
            self.send(&model.provider, body)
                .await
                .map_err(|source| EvaluatorError::Upstream {
                    role,
                    model: model.id.clone(),
                    spent_usd: spent_before,
                    source,
                })?;
        self.answered(model, role, messages, &completion, spent_before)
    }

    async fn send(&self, provider: &str, body: Value) -> Result<Completion, UpstreamError> {
        let bytes = serde_json::to_vec(&body).map_err(|e| UpstreamError::Malformed {
            detail: format!("request not encodable: {e}"),
            usage: None,
        })?;
        self.upstream
            .complete(ChatCall {
                provider,
                body: Bytes::from(bytes),
                deadline: self.settings.upstream_timeout,
            })
            .await
    }

    fn answered(
        &self,
        model: &ModelSpec,
        role: &'static str,
        messages: &Value,
        completion: &Completion,
        spent_before: f64,
    ) -> Result<Answered, EvaluatorError> {
        let text = answer_text(&completion.json);
        let (usage, estimated) =
            self.usage_or_estimate(completion.usage, messages, text.as_deref().unwrap_or(""));
        let cost_usd = model.cost_usd(usage.prompt_tokens, usage.completion_tokens);
        let text = text.ok_or_else(|| EvaluatorError::Answer {
            role,
            model: model.id.clone(),
            detail: "no text in choices[0].message.content".into(),
            spent_usd: spent_before + cost_usd,
        })?;
        Ok(Answered {
            text,
            usage,
            estimated,
            cost_usd,
        })
    }

    /// The provider's usage, else an estimate (and `true`).
    fn usage_or_estimate(
        &self,
        usage: Option<Usage>,
        messages: &Value,
        answer: &str,
    ) -> (Usage, bool) {
        match usage {
            Some(u) => (u, false),
            None => (self.estimate_usage(messages, answer), true),
        }
    }

    /// Token counts when the provider gave none: the MiniLM tokenizer's count (an
    /// estimate; the record says so).
    fn estimate_usage(&self, messages: &Value, answer: &str) -> Usage {
        let count = |s: &str| self.embedder.tokenizer().count(s).unwrap_or(s.len() / 4) as u64;
        let prompt: u64 = messages
            .as_array()
            .map(|ms| {
                ms.iter()
                    .map(|m| 4 + m.get("content").and_then(Value::as_str).map_or(0, count))
                    .sum()
            })
            .unwrap_or(0);
        Usage {
            prompt_tokens: prompt,
            completion_tokens: count(answer),
            reasoning_tokens: None,
            cached_tokens: None,
        }
    }

    /// The verdict: [`verdict::compare`], or the judge when one is configured.
    async fn compare(
        &self,
        sample: &ShadowSample,
        question: &str,
        routed: &str,
        reference: &str,
        spent: f64,
    ) -> Result<(Comparison, Option<(String, Answered)>), EvaluatorError> {
        let compared = verdict::compare(
            question,
            routed,
            reference,
            &self.embedder,
            &self.settings.compare,
        )
        .map_err(|e| EvaluatorError::Compare {
            detail: e.to_string(),
            spent_usd: spent,
        })?;
        let Some(judge) = &self.settings.judge else {
            return Ok((compared, None));
        };
        if compared.method != Method::Similarity {
            // Short answers (and refusals) compared exactly need no judge.
            return Ok((compared, None));
        }
        let Some((_, model)) = self.pool.model(&judge.model) else {
            return Ok((compared, None));
        };
        let routed_first = verdict::judge_order(&sample.query_id);
        let mut body = verdict::judge_request(judge, question, routed, reference, routed_first);
        if let Some(obj) = body.as_object_mut() {
            obj.insert("model".into(), Value::from(model.upstream_name()));
        }
        let judge_msgs = body.get("messages").cloned().unwrap_or_else(|| json!([]));
        let answered = self.ask(model, "judge", body, &judge_msgs, spent).await?;
        let mut judged = verdict::read_judge(&answered.text, routed_first).map_err(|e| {
            EvaluatorError::Compare {
                detail: format!("judge answer: {e}"),
                spent_usd: spent + answered.cost_usd,
            }
        })?;
        if judged.similarity.is_none() {
            judged.similarity = compared.similarity;
        }
        Ok((judged, Some((model.id.clone(), answered))))
    }

    /// The record of an evaluation of `sample`.
    fn record(&self, sample: &ShadowSample, plan: &Plan<'_>, ev: Evaluated) -> EvaluationRecord {
        let zero = Usage::default();
        let ru = ev.routed.as_ref().map_or(zero, |a| a.usage);
        let fu = ev.reference.as_ref().map_or(zero, |a| a.usage);
        let ju = ev.judge.as_ref().map_or(zero, |(_, a)| a.usage);
        let routed_cost = ev.routed.as_ref().map_or(0.0, |a| a.cost_usd);
        let reference_cost = ev.reference.as_ref().map_or(0.0, |a| a.cost_usd);
        let judge_cost = ev.judge.as_ref().map_or(0.0, |(_, a)| a.cost_usd);
        let shadow = reference_cost + judge_cost + if ev.from_sample { 0.0 } else { routed_cost };
        let estimated = ev.routed.as_ref().is_some_and(|a| a.estimated)
            || ev.reference.as_ref().is_some_and(|a| a.estimated)
            || ev.judge.as_ref().is_some_and(|(_, a)| a.estimated);
        let (verdict, method, similarity, judge_score) = ev.verdict_fields();
        let (prompt, prompt_truncated) = self.kept_prompt(&plan.prompt);
        EvaluationRecord {
            record: RECORD_EVALUATION.to_string(),
            query_id: sample.query_id.clone(),
            ts: sample.ts.clone(),
            evaluated_at: Timestamp::now(),
            tenant: sample.tenant.clone(),
            routed_model: sample.routed_model.clone(),
            routed_tier: sample.routed_tier,
            predicted_tier: sample.predicted_tier,
            decided_by: sample.decided_by.to_string(),
            confidence: sample.confidence,
            reference_model: plan.reference.id.clone(),
            reference_tier: plan.reference_tier,
            verdict,
            method,
            similarity,
            judge_score,
            judge_model: ev.judge.as_ref().map(|(m, _)| m.clone()),
            routed_source: if ev.from_sample || ev.routed.is_none() {
                ROUTED_FROM_SAMPLE
            } else {
                ROUTED_FROM_EVALUATOR
            }
            .to_string(),
            routed_input_tokens: ru.prompt_tokens,
            routed_output_tokens: ru.completion_tokens,
            reference_input_tokens: fu.prompt_tokens,
            reference_output_tokens: fu.completion_tokens,
            judge_input_tokens: ju.prompt_tokens,
            judge_output_tokens: ju.completion_tokens,
            tokens_estimated: estimated,
            routed_cost_usd: Usd::from_f64(routed_cost),
            reference_cost_usd: Usd::from_f64(reference_cost),
            judge_cost_usd: Usd::from_f64(judge_cost),
            shadow_cost_usd: Usd::from_f64(shadow),
            prompt,
            prompt_truncated,
            pricing_version: self.pool.pricing_version().to_string(),
            evaluator_version: EVALUATOR_VERSION.to_string(),
        }
    }
}

impl<U, S> Evaluator<U, S> {
    /// The prompt as the record keeps it (cut to `TIERWISE_PROMPT_MAX_BYTES`), and whether it
    /// was cut; none when prompts are not kept.
    fn kept_prompt(&self, prompt: &str) -> (Option<String>, bool) {
        if self.settings.keep_prompts {
            let (p, cut) = truncate_utf8(prompt, self.settings.prompt_max_bytes);
            (Some(p), cut)
        } else {
            (None, false)
        }
    }
}

/// What the evaluation of a sample produced, before it becomes a record.
struct Evaluated {
    routed: Option<Answered>,
    reference: Option<Answered>,
    /// None when there was nothing to compare (the routed model is the reference).
    comparison: Option<Comparison>,
    /// The judge model and its answer, when a judge decided.
    judge: Option<(String, Answered)>,
    /// Whether the routed answer came with the sample.
    from_sample: bool,
}

impl Evaluated {
    /// The record's `verdict`, `method`, `similarity` and `judge_score`.
    fn verdict_fields(&self) -> (String, String, Option<f64>, Option<f64>) {
        match &self.comparison {
            Some(c) => (
                c.verdict.as_str().to_string(),
                c.method.as_str().to_string(),
                c.similarity,
                c.judge_score,
            ),
            None => (
                "equivalent".to_string(),
                METHOD_SAME_MODEL.to_string(),
                None,
                None,
            ),
        }
    }
}

/// A sample's models, resolved against the pool.
struct Plan<'a> {
    prompt: String,
    reference: &'a ModelSpec,
    reference_tier: Tier,
    routed: Option<&'a ModelSpec>,
}

/// The conversation sent to the reference (and routed) model: the sample's messages, or
/// its query as one user message.
fn request_messages(sample: &ShadowSample) -> Value {
    match (&sample.messages, &sample.query) {
        (Some(msgs), _) => serde_json::to_value(msgs).unwrap_or_else(|_| json!([])),
        (None, Some(q)) => json!([{"role": "user", "content": q}]),
        (None, None) => json!([]),
    }
}

/// `err` with `paid` added to what the attempt spent (a call that answered beside it).
fn with_spent(mut err: EvaluatorError, paid: f64) -> EvaluatorError {
    if let EvaluatorError::Upstream { spent_usd, .. } | EvaluatorError::Answer { spent_usd, .. } =
        &mut err
    {
        *spent_usd += paid;
    }
    err
}

#[cfg(test)]
mod tests;
