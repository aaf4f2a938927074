//! Shadow evaluation, the domain (no AWS): what the evaluator Lambda does with one shadow
//! sample, and what it leaves behind.
//!
//! - [`EvaluatorSettings`]: the evaluator's `TIERWISE_*` settings.
//! - [`EvaluationRecord`]: one verdict per query id (DESIGN.md, "Evaluation record"), with the
//!   shadow spend kept apart from user traffic's cost, and [`VerdictCounters`]: what it adds to
//!   its day x tenant x tier x model x reference rollup.
//! - [`EvaluationStore`]: claim a query id with a lease, complete it with the record and its
//!   rollup increment in one step, release it after a failure. [`MemoryEvaluationStore`] is the
//!   in-memory implementation (tests, benchmarks); DynamoDB's is
//!   `crate::aws::evaluations::DynamoEvaluationStore`.
//! - [`Evaluator`]: evaluates one sample — the routed answer (from the sample when the router
//!   proxied the call, else asked of the routed model), the reference model's answer, the
//!   comparison ([`crate::shadow::verdict`]: exact match, MiniLM similarity or an LLM judge), the
//!   record.
//! - [`LabelRow`]: a verdict as a training label in the routing-benchmark format of DESIGN.md.
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

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ledger::records::{ShadowSample, usd_to_nanos};
use crate::ledger::store::{StoreError, WriteOutcome};
#[cfg(feature = "upstream")]
use crate::routing::decision::round9;
use crate::routing::pool::Tier;
use crate::serve::settings::{AwsCallSettings, SettingsError, parse_key_refs, parse_prefixed};
use crate::shadow::verdict::{CompareSettings, JudgeSettings};

/// `record` attribute of an evaluation record.
pub const RECORD_EVALUATION: &str = "evaluation";
/// `record` attribute of a claim (an evaluation in progress; replaced by the record).
pub const RECORD_EVAL_CLAIM: &str = "eval_claim";
/// `record` attribute of an evaluation rollup item.
pub const RECORD_EVAL_ROLLUP: &str = "eval_rollup";
/// `method` of a sample whose routed model is the reference model: nothing to compare, no call.
pub const METHOD_SAME_MODEL: &str = "same_model";
/// `task` of the label rows exported from shadow evaluations.
pub const LABEL_TASK: &str = "shadow";
/// The evaluator's version, stamped on every record.
pub const EVALUATOR_VERSION: &str = concat!("tierwise-evaluator-", env!("CARGO_PKG_VERSION"));

// ---------------------------------------------------------------------------------------------
// Settings.
// ---------------------------------------------------------------------------------------------

/// The evaluator function's settings (`TIERWISE_*` environment variables).
#[derive(Debug, Clone)]
pub struct EvaluatorSettings {
    /// `TIERWISE_TABLE`: the DynamoDB table (cost records, evaluations, rollups).
    pub table: String,
    /// `TIERWISE_POOL_PATH`: pool file; the bundled pool when absent.
    pub pool_path: Option<PathBuf>,
    /// `TIERWISE_REFERENCE_MODEL`: answers every sample with this model (one of the pool's)
    /// instead of the sample's reference (the pool's baseline when the router sent it).
    pub reference_model: Option<String>,
    /// `TIERWISE_LOG_LEVEL` (`info`).
    pub log_level: String,
    /// `TIERWISE_KEEP_PROMPTS` (`true`): keep the prompt on the record, for the label export.
    pub keep_prompts: bool,
    /// `TIERWISE_PROMPT_MAX_BYTES` (16384): longer prompts are cut (on a character boundary)
    /// and the record says `prompt_truncated`.
    pub prompt_max_bytes: usize,
    /// `TIERWISE_EVAL_TTL_DAYS` (90): days an evaluation record (and its prompt) is kept.
    pub eval_ttl_days: u32,
    /// `TIERWISE_LEASE_SECS` (300): how long a claim keeps other evaluators off a query id.
    /// Must exceed the longest evaluation (the function's timeout); an evaluator that crashes
    /// holds the query that long.
    pub lease: Duration,
    /// `TIERWISE_UPSTREAM_TIMEOUT_MS` (60000): deadline of each model call.
    pub upstream_timeout: Duration,
    /// `TIERWISE_MAX_OUTPUT_TOKENS` (1024): `max_tokens` of the reference (and routed) call,
    /// capped by the model's own maximum.
    pub max_output_tokens: u32,
    /// `TIERWISE_CONCURRENCY` (8): samples of one SQS batch evaluated at once.
    pub concurrency: usize,
    /// `TIERWISE_COMPARE`: the comparison's thresholds as JSON ([`CompareSettings`], e.g.
    /// `{"equivalent_similarity": 0.85, "short_max_words": 4}`); defaults when absent.
    pub compare: CompareSettings,
    /// The LLM judge, when `TIERWISE_JUDGE_MODEL` (a model of the pool) is set: it decides
    /// free-text comparisons (short answers stay exact-matched), blind, order randomised per
    /// query id. `TIERWISE_JUDGE_MAX_TOKENS` (200), `TIERWISE_JUDGE_PROMPT` (a template with
    /// `{question}`, `{answer_a}`, `{answer_b}`; the built-in one when absent).
    pub judge: Option<JudgeSettings>,
    /// `TIERWISE_API_KEY_REFS`: where providers' keys are, overriding the pool's
    /// `api_key_ref`s: `provider=ref` pairs separated by commas (as the router's).
    pub api_key_refs: Vec<(String, String)>,
    /// `TIERWISE_AWS_OPERATION_TIMEOUT_MS` (5000), `TIERWISE_AWS_ATTEMPT_TIMEOUT_MS` (2000),
    /// `TIERWISE_AWS_MAX_ATTEMPTS` (3).
    pub aws: AwsCallSettings,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvaluatorSettings {
    table: String,
    pool_path: Option<PathBuf>,
    reference_model: Option<String>,
    log_level: Option<String>,
    keep_prompts: Option<bool>,
    prompt_max_bytes: Option<usize>,
    eval_ttl_days: Option<u32>,
    lease_secs: Option<u64>,
    upstream_timeout_ms: Option<u64>,
    max_output_tokens: Option<u32>,
    concurrency: Option<usize>,
    compare: Option<String>,
    judge_model: Option<String>,
    judge_max_tokens: Option<u32>,
    judge_prompt: Option<String>,
    api_key_refs: Option<String>,
    aws_operation_timeout_ms: Option<u64>,
    aws_attempt_timeout_ms: Option<u64>,
    aws_max_attempts: Option<u32>,
}

impl EvaluatorSettings {
    /// From the process environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_vars(std::env::vars())
    }

    /// From `(name, value)` pairs; names without the `TIERWISE_` prefix are ignored, unknown
    /// `TIERWISE_*` names are refused.
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, SettingsError> {
        let raw: RawEvaluatorSettings = parse_prefixed(vars)?;
        let bad = |name: &'static str, reason: String| SettingsError::Invalid { name, reason };
        let compare = match raw.compare.as_deref().map(str::trim) {
            None | Some("") => CompareSettings::default(),
            Some(text) => serde_json::from_str(text).map_err(|e| bad("COMPARE", e.to_string()))?,
        };
        compare
            .validate()
            .map_err(|e| bad("COMPARE", e.to_string()))?;
        let judge = match raw.judge_model.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(model) => {
                let mut j = JudgeSettings::new(model);
                if let Some(t) = raw.judge_max_tokens {
                    j.max_tokens = t;
                }
                j.prompt = raw.judge_prompt.filter(|p| !p.trim().is_empty());
                j.validate()
                    .map_err(|e| bad("JUDGE_MODEL", e.to_string()))?;
                Some(j)
            }
        };
        let defaults = AwsCallSettings {
            operation_timeout: Duration::from_millis(5_000),
            attempt_timeout: Duration::from_millis(2_000),
            max_attempts: 3,
        };
        let aws = AwsCallSettings {
            operation_timeout: raw
                .aws_operation_timeout_ms
                .map_or(defaults.operation_timeout, Duration::from_millis),
            attempt_timeout: raw
                .aws_attempt_timeout_ms
                .map_or(defaults.attempt_timeout, Duration::from_millis),
            max_attempts: raw.aws_max_attempts.unwrap_or(defaults.max_attempts),
        };
        let s = EvaluatorSettings {
            table: raw.table,
            pool_path: raw.pool_path,
            reference_model: raw.reference_model.filter(|m| !m.trim().is_empty()),
            log_level: raw.log_level.unwrap_or_else(|| "info".into()),
            keep_prompts: raw.keep_prompts.unwrap_or(true),
            prompt_max_bytes: raw.prompt_max_bytes.unwrap_or(16 * 1024),
            eval_ttl_days: raw.eval_ttl_days.unwrap_or(90),
            lease: Duration::from_secs(raw.lease_secs.unwrap_or(300)),
            upstream_timeout: Duration::from_millis(raw.upstream_timeout_ms.unwrap_or(60_000)),
            max_output_tokens: raw.max_output_tokens.unwrap_or(1024),
            concurrency: raw.concurrency.unwrap_or(8),
            compare,
            judge,
            api_key_refs: parse_key_refs(raw.api_key_refs.as_deref())?,
            aws,
        };
        if s.table.trim().is_empty() {
            return Err(bad("TABLE", "must not be empty".into()));
        }
        if !(1_024..=256 * 1024).contains(&s.prompt_max_bytes) {
            return Err(bad(
                "PROMPT_MAX_BYTES",
                "must be between 1024 and 262144".into(),
            ));
        }
        if s.eval_ttl_days == 0 {
            return Err(bad("EVAL_TTL_DAYS", "must be at least 1".into()));
        }
        if s.lease < Duration::from_secs(5) {
            return Err(bad("LEASE_SECS", "must be at least 5".into()));
        }
        if s.upstream_timeout.is_zero() {
            return Err(bad("UPSTREAM_TIMEOUT_MS", "must be above 0".into()));
        }
        if s.upstream_timeout >= s.lease {
            return Err(bad(
                "UPSTREAM_TIMEOUT_MS",
                "must be shorter than TIERWISE_LEASE_SECS".into(),
            ));
        }
        if s.max_output_tokens == 0 {
            return Err(bad("MAX_OUTPUT_TOKENS", "must be at least 1".into()));
        }
        if !(1..=64).contains(&s.concurrency) {
            return Err(bad("CONCURRENCY", "must be between 1 and 64".into()));
        }
        if s.aws.attempt_timeout.is_zero() || s.aws.attempt_timeout > s.aws.operation_timeout {
            return Err(bad(
                "AWS_ATTEMPT_TIMEOUT_MS",
                "must be above 0 and at most TIERWISE_AWS_OPERATION_TIMEOUT_MS".into(),
            ));
        }
        if !(1..=10).contains(&s.aws.max_attempts) {
            return Err(bad("AWS_MAX_ATTEMPTS", "must be between 1 and 10".into()));
        }
        Ok(s)
    }
}

// ---------------------------------------------------------------------------------------------
// The record, its rollup and its label.
// ---------------------------------------------------------------------------------------------

/// Where the routed answer came from.
pub const ROUTED_FROM_SAMPLE: &str = "sample";
/// The evaluator called the routed model itself (a `/v1/route` decision): a shadow cost.
pub const ROUTED_FROM_EVALUATOR: &str = "evaluator";

/// One evaluated query (DESIGN.md: "Evaluation record"). Attribute names are written exactly
/// as named here (`pk = Q#<query_id>`, `sk = eval`, next to the cost record).
///
/// Money: `shadow_cost_usd` is what the evaluation itself spent (the reference call, the judge
/// call, and the routed call when the evaluator had to make it); it is never part of user
/// traffic's cost (cost records and rollups). `routed_cost_usd` is what the routed answer cost
/// whoever paid for it (the user's call when it came with the sample): for labels only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationRecord {
    /// Always [`RECORD_EVALUATION`].
    pub record: String,
    pub query_id: String,
    /// The query's timestamp (RFC 3339 UTC, from the sample): its day is the rollup's day.
    pub ts: String,
    /// When the evaluation completed (RFC 3339 UTC).
    pub evaluated_at: String,
    pub tenant: String,
    pub routed_model: String,
    pub routed_tier: Tier,
    pub predicted_tier: Tier,
    pub decided_by: String,
    pub confidence: f64,
    pub reference_model: String,
    pub reference_tier: Tier,
    /// `equivalent`, `worse` or `better`: the routed answer against the reference's.
    pub verdict: String,
    /// `exact`, `similarity`, `judge` (see [`crate::shadow::verdict`]) or [`METHOD_SAME_MODEL`].
    pub method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub similarity: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge_score: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge_model: Option<String>,
    /// [`ROUTED_FROM_SAMPLE`] or [`ROUTED_FROM_EVALUATOR`].
    pub routed_source: String,
    pub routed_input_tokens: u64,
    pub routed_output_tokens: u64,
    pub reference_input_tokens: u64,
    pub reference_output_tokens: u64,
    pub judge_input_tokens: u64,
    pub judge_output_tokens: u64,
    /// True when some token count is an estimate (the provider gave no usage).
    pub tokens_estimated: bool,
    pub routed_cost_usd: f64,
    pub reference_cost_usd: f64,
    pub judge_cost_usd: f64,
    /// The evaluation's own spend: reference + judge (+ routed when the evaluator called it).
    pub shadow_cost_usd: f64,
    /// The prompt (the query, or the last user message), when prompts are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(default)]
    pub prompt_truncated: bool,
    pub pricing_version: String,
    pub evaluator_version: String,
}

impl EvaluationRecord {
    /// The UTC day of the query, `YYYY-MM-DD` (the rollup it counts in).
    pub fn day(&self) -> &str {
        self.ts.get(..10).unwrap_or(&self.ts)
    }

    /// Whether the routed answer held up (equivalent or better).
    pub fn agrees(&self) -> bool {
        matches!(self.verdict.as_str(), "equivalent" | "better")
    }

    /// The rollup this record adds to.
    pub fn rollup_key(&self) -> EvalRollupKey {
        EvalRollupKey {
            day: self.day().to_string(),
            tenant: self.tenant.clone(),
            tier: self.routed_tier,
            model: self.routed_model.clone(),
            reference_model: self.reference_model.clone(),
        }
    }

    /// What this record adds to its rollup.
    pub fn counters(&self) -> VerdictCounters {
        let mut methods = BTreeMap::new();
        methods.insert(self.method.clone(), 1);
        VerdictCounters {
            evaluations: 1,
            equivalent: u64::from(self.verdict == "equivalent"),
            worse: u64::from(self.verdict == "worse"),
            better: u64::from(self.verdict == "better"),
            similarity_sum: self.similarity.unwrap_or(0.0),
            similarity_count: u64::from(self.similarity.is_some()),
            judge_score_sum: self.judge_score.unwrap_or(0.0),
            judge_count: u64::from(self.judge_score.is_some()),
            shadow_cost_nanos: usd_to_nanos(self.shadow_cost_usd),
            shadow_input_tokens: self.shadow_input_tokens(),
            shadow_output_tokens: self.shadow_output_tokens(),
            methods,
        }
    }

    /// Input tokens the evaluation paid for.
    pub fn shadow_input_tokens(&self) -> u64 {
        let routed = if self.routed_source == ROUTED_FROM_EVALUATOR {
            self.routed_input_tokens
        } else {
            0
        };
        routed + self.reference_input_tokens + self.judge_input_tokens
    }

    /// Output tokens the evaluation paid for.
    pub fn shadow_output_tokens(&self) -> u64 {
        let routed = if self.routed_source == ROUTED_FROM_EVALUATOR {
            self.routed_output_tokens
        } else {
            0
        };
        routed + self.reference_output_tokens + self.judge_output_tokens
    }

    /// The verdict as a training label (routing-benchmark format), `None` without a prompt.
    ///
    /// Scores: `equivalent` -> routed 1, reference 1; `worse` -> routed 0, reference 1;
    /// `better` (only a judge says it) -> routed 1, reference 0. Costs: what each answer cost
    /// at the pool's prices (from the provider's usage).
    pub fn label(&self) -> Option<LabelRow> {
        let prompt = self.prompt.clone().filter(|p| !p.trim().is_empty())?;
        let (routed, reference) = match self.verdict.as_str() {
            "equivalent" => (1.0, 1.0),
            "worse" => (0.0, 1.0),
            "better" => (1.0, 0.0),
            _ => return None,
        };
        let mut scores = BTreeMap::new();
        let mut costs_usd = BTreeMap::new();
        scores.insert(self.reference_model.clone(), reference);
        costs_usd.insert(self.reference_model.clone(), self.reference_cost_usd);
        scores.insert(self.routed_model.clone(), routed);
        costs_usd.insert(self.routed_model.clone(), self.routed_cost_usd);
        Some(LabelRow {
            id: self.query_id.clone(),
            prompt,
            task: LABEL_TASK.to_string(),
            scores,
            costs_usd,
        })
    }
}

/// One row of routing-benchmark data (DESIGN.md): `{"id", "prompt", "task", "scores",
/// "costs_usd"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelRow {
    pub id: String,
    pub prompt: String,
    pub task: String,
    pub scores: BTreeMap<String, f64>,
    pub costs_usd: BTreeMap<String, f64>,
}

/// What a label export wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LabelExportSummary {
    /// Evaluation records read.
    pub records: u64,
    /// Label rows written.
    pub labels: u64,
    /// Records without a prompt (`TIERWISE_KEEP_PROMPTS=false`), not written.
    pub without_prompt: u64,
}

/// Writes the labels of `records` as JSON lines.
pub fn write_labels<'a>(
    records: impl IntoIterator<Item = &'a EvaluationRecord>,
    out: &mut impl std::io::Write,
) -> std::io::Result<LabelExportSummary> {
    let mut summary = LabelExportSummary::default();
    for rec in records {
        summary.records += 1;
        match rec.label() {
            Some(row) => {
                serde_json::to_writer(&mut *out, &row)?;
                out.write_all(b"\n")?;
                summary.labels += 1;
            }
            None => summary.without_prompt += 1,
        }
    }
    Ok(summary)
}

/// An evaluation rollup's identity: day x tenant x routed tier x routed model x reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EvalRollupKey {
    pub day: String,
    pub tenant: String,
    pub tier: Tier,
    pub model: String,
    pub reference_model: String,
}

/// The counters of an evaluation rollup (one record's, or a sum). Shadow spend in exact
/// nano-dollars.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VerdictCounters {
    pub evaluations: u64,
    pub equivalent: u64,
    pub worse: u64,
    pub better: u64,
    pub similarity_sum: f64,
    pub similarity_count: u64,
    pub judge_score_sum: f64,
    pub judge_count: u64,
    pub shadow_cost_nanos: i64,
    pub shadow_input_tokens: u64,
    pub shadow_output_tokens: u64,
    /// Evaluations per method (`exact`, `similarity`, `judge`, `same_model`).
    pub methods: BTreeMap<String, u64>,
}

impl VerdictCounters {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &VerdictCounters) {
        self.evaluations += other.evaluations;
        self.equivalent += other.equivalent;
        self.worse += other.worse;
        self.better += other.better;
        self.similarity_sum += other.similarity_sum;
        self.similarity_count += other.similarity_count;
        self.judge_score_sum += other.judge_score_sum;
        self.judge_count += other.judge_count;
        self.shadow_cost_nanos += other.shadow_cost_nanos;
        self.shadow_input_tokens += other.shadow_input_tokens;
        self.shadow_output_tokens += other.shadow_output_tokens;
        for (m, n) in &other.methods {
            *self.methods.entry(m.clone()).or_default() += n;
        }
    }

    /// Share of evaluations whose routed answer held up (equivalent or better); `None`
    /// without evaluations.
    pub fn agreement_rate(&self) -> Option<f64> {
        (self.evaluations > 0)
            .then(|| (self.equivalent + self.better) as f64 / self.evaluations as f64)
    }
}

/// One evaluation rollup row.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalRollupRow {
    pub key: EvalRollupKey,
    pub counters: VerdictCounters,
}

// ---------------------------------------------------------------------------------------------
// Storage.
// ---------------------------------------------------------------------------------------------

/// The answer to a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The query id is ours until the lease ends: evaluate it.
    Claimed,
    /// It was evaluated already: nothing to do.
    Done,
    /// Another evaluator holds a live lease (until this Unix second): retry later.
    Busy { lease_until: i64 },
}

/// Where evaluations go: a claim per query id, then the record and its rollup increment.
pub trait EvaluationStore: Send + Sync {
    /// Claims `query_id` for `owner` until `now + lease` (Unix seconds): succeeds when there
    /// is no evaluation of it yet, or only a claim whose lease has ended.
    fn claim(
        &self,
        query_id: &str,
        owner: &str,
        now: i64,
        lease: Duration,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;

    /// Writes the record in place of `owner`'s claim and adds it to its rollup, both or
    /// neither. `Duplicate` when the claim is no longer `owner`'s (the lease ended and another
    /// evaluator took over): nothing written.
    fn complete(
        &self,
        record: &EvaluationRecord,
        owner: &str,
    ) -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send;

    /// Removes `owner`'s claim (after a failed evaluation), so a retry need not wait for the
    /// lease; nothing happens when the claim is not `owner`'s.
    fn release(
        &self,
        query_id: &str,
        owner: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

#[derive(Debug, Clone)]
enum MemEntry {
    Claim { owner: String, lease_until: i64 },
    Done(Box<EvaluationRecord>),
}

#[derive(Debug, Default)]
struct MemInner {
    entries: HashMap<String, MemEntry>,
    rollups: BTreeMap<EvalRollupKey, VerdictCounters>,
}

/// An [`EvaluationStore`] in memory (tests, benchmarks): the same rules as DynamoDB's.
#[derive(Debug, Default)]
pub struct MemoryEvaluationStore {
    inner: Mutex<MemInner>,
}

impl MemoryEvaluationStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The completed records.
    pub fn records(&self) -> Vec<EvaluationRecord> {
        let mut v: Vec<EvaluationRecord> = self
            .lock()
            .entries
            .values()
            .filter_map(|e| match e {
                MemEntry::Done(r) => Some((**r).clone()),
                MemEntry::Claim { .. } => None,
            })
            .collect();
        v.sort_by(|a, b| a.query_id.cmp(&b.query_id));
        v
    }

    /// The rollups.
    pub fn rollups(&self) -> Vec<EvalRollupRow> {
        self.lock()
            .rollups
            .iter()
            .map(|(k, c)| EvalRollupRow {
                key: k.clone(),
                counters: c.clone(),
            })
            .collect()
    }

    /// Whether `query_id` is claimed (and not completed).
    pub fn is_claimed(&self, query_id: &str) -> bool {
        matches!(
            self.lock().entries.get(query_id),
            Some(MemEntry::Claim { .. })
        )
    }
}

impl EvaluationStore for MemoryEvaluationStore {
    async fn claim(
        &self,
        query_id: &str,
        owner: &str,
        now: i64,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        let mut inner = self.lock();
        match inner.entries.get(query_id) {
            Some(MemEntry::Done(_)) => return Ok(Claim::Done),
            Some(MemEntry::Claim { lease_until, .. }) if *lease_until >= now => {
                return Ok(Claim::Busy {
                    lease_until: *lease_until,
                });
            }
            _ => {}
        }
        inner.entries.insert(
            query_id.to_string(),
            MemEntry::Claim {
                owner: owner.to_string(),
                lease_until: now.saturating_add(lease.as_secs() as i64),
            },
        );
        Ok(Claim::Claimed)
    }

    async fn complete(
        &self,
        record: &EvaluationRecord,
        owner: &str,
    ) -> Result<WriteOutcome, StoreError> {
        let mut inner = self.lock();
        let ours = matches!(
            inner.entries.get(&record.query_id),
            Some(MemEntry::Claim { owner: o, .. }) if o == owner
        );
        if !ours {
            return Ok(WriteOutcome::Duplicate);
        }
        inner.entries.insert(
            record.query_id.clone(),
            MemEntry::Done(Box::new(record.clone())),
        );
        inner
            .rollups
            .entry(record.rollup_key())
            .or_default()
            .add(&record.counters());
        Ok(WriteOutcome::Written)
    }

    async fn release(&self, query_id: &str, owner: &str) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let ours = matches!(
            inner.entries.get(query_id),
            Some(MemEntry::Claim { owner: o, .. }) if o == owner
        );
        if ours {
            inner.entries.remove(query_id);
        }
        Ok(())
    }
}

/// The prompt of a sample: the query, or the last non-empty user message (what the router
/// classified). `None` when there is none.
pub fn sample_prompt(sample: &ShadowSample) -> Option<String> {
    if let Some(q) = &sample.query {
        return (!q.trim().is_empty()).then(|| q.clone());
    }
    sample
        .messages
        .as_ref()?
        .iter()
        .rev()
        .filter(|m| m.role == "user")
        .map(|m| m.content.text())
        .find(|t| !t.trim().is_empty())
}

/// `text` cut to at most `max` bytes on a character boundary, and whether it was cut.
pub fn truncate_utf8(text: &str, max: usize) -> (String, bool) {
    if text.len() <= max {
        return (text.to_string(), false);
    }
    let mut end = max;
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    (text[..end].to_string(), true)
}

#[cfg(feature = "upstream")]
pub use service::*;

/// The evaluation of one sample, over the upstream and store traits.
#[cfg(feature = "upstream")]
mod service {
    use std::sync::Arc;

    use bytes::Bytes;
    use serde_json::{Value, json};

    use super::*;
    use crate::ledger::records::{SHADOW_SAMPLE_VERSION, Timestamp};
    use crate::proxy::upstream::{
        ChatCall, ChatUpstream, Completion, UpstreamError, Usage, answer_text,
    };
    use crate::routing::embed::Embedder;
    use crate::routing::pool::{ModelSpec, PoolConfig};
    use crate::shadow::verdict::{self, Comparison, Method};

    /// An evaluation failed; the sample should be retried (except [`EvalError::Poisoned`],
    /// which cannot succeed: it is kept for the dead-letter queue).
    #[derive(Debug, thiserror::Error)]
    pub enum EvalError {
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

    impl EvalError {
        /// Whether a retry of the sample may succeed.
        pub fn is_retryable(&self) -> bool {
            match self {
                EvalError::Poisoned(_) => false,
                EvalError::Store(e) => e.is_retryable(),
                _ => true,
            }
        }

        /// Short machine-readable kind, for logs and metrics.
        pub fn kind(&self) -> &'static str {
            match self {
                EvalError::Poisoned(_) => "poisoned",
                EvalError::Busy { .. } => "busy",
                EvalError::Upstream { .. } => "upstream",
                EvalError::Answer { .. } => "answer",
                EvalError::Compare { .. } => "compare",
                EvalError::Store(_) => "store",
            }
        }

        /// What the failed attempt spent on model calls that answered.
        pub fn spent_usd(&self) -> f64 {
            match self {
                EvalError::Upstream { spent_usd, .. }
                | EvalError::Answer { spent_usd, .. }
                | EvalError::Compare { spent_usd, .. } => *spent_usd,
                _ => 0.0,
            }
        }
    }

    /// How the evaluation of a sample ended (successfully).
    #[derive(Debug, Clone, PartialEq)]
    pub enum Outcome {
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
        pub fn parse(body: &str) -> Result<ShadowSample, EvalError> {
            let v: Value = serde_json::from_str(body)
                .map_err(|e| EvalError::Poisoned(format!("not JSON: {e}")))?;
            match v.get("version").and_then(Value::as_u64) {
                Some(n) if n == u64::from(SHADOW_SAMPLE_VERSION) => {}
                Some(n) => {
                    return Err(EvalError::Poisoned(format!(
                        "unsupported sample version {n} (this evaluator reads \
                         {SHADOW_SAMPLE_VERSION})"
                    )));
                }
                None => return Err(EvalError::Poisoned("no sample version".into())),
            }
            serde_json::from_value(v)
                .map_err(|e| EvalError::Poisoned(format!("not a shadow sample: {e}")))
        }

        /// Evaluates one sample once: claim, answers, comparison, record.
        pub async fn evaluate(&self, sample: &ShadowSample) -> Result<Outcome, EvalError> {
            let plan = self.plan(sample)?;
            if let Some(answer) = &sample.routed_answer
                && plan.reference.id != sample.routed_model
                && answer_text(answer).is_none()
            {
                return Ok(Outcome::Skipped {
                    reason: "routed answer without text",
                });
            }
            let owner = uuid::Uuid::now_v7().to_string();
            let now = Timestamp::now().unix_secs;
            match self
                .store
                .claim(&sample.query_id, &owner, now, self.settings.lease)
                .await?
            {
                Claim::Done => return Ok(Outcome::AlreadyDone),
                Claim::Busy { lease_until } => return Err(EvalError::Busy { lease_until }),
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
                Ok(WriteOutcome::Written) => Ok(Outcome::Recorded(Box::new(record))),
                Ok(WriteOutcome::Duplicate) => Ok(Outcome::LostClaim {
                    spent_usd: record.shadow_cost_usd,
                }),
                Err(e) => {
                    let _ = self.store.release(&sample.query_id, &owner).await;
                    Err(e.into())
                }
            }
        }

        /// Checks the sample and resolves its models (no I/O).
        fn plan<'a>(&'a self, sample: &ShadowSample) -> Result<Plan<'a>, EvalError> {
            if sample.version != SHADOW_SAMPLE_VERSION {
                return Err(EvalError::Poisoned(format!(
                    "unsupported sample version {}",
                    sample.version
                )));
            }
            if sample.query_id.trim().is_empty() {
                return Err(EvalError::Poisoned("empty query id".into()));
            }
            let prompt = sample_prompt(sample)
                .ok_or_else(|| EvalError::Poisoned("no query and no user message".into()))?;
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
                return Err(EvalError::Poisoned(format!(
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
        ) -> Result<EvaluationRecord, EvalError> {
            let messages = request_messages(sample);
            let same_model = plan.reference.id == sample.routed_model;
            let from_sample = sample.routed_answer.is_some();
            let mut spent = 0.0;
            let (routed, reference) = match (&sample.routed_answer, same_model) {
                // The routed answer came with the sample (the router proxied the call).
                (Some(answer), true) => {
                    (self.answer_from_sample(answer, plan, &messages).ok(), None)
                }
                (Some(answer), false) => {
                    let routed = self.answer_from_sample(answer, plan, &messages)?;
                    let reference = self
                        .call(plan.reference, "reference", &messages, 0.0)
                        .await?;
                    (Some(routed), Some(reference))
                }
                // Nothing to compare: the routed model is the reference.
                (None, true) => (None, None),
                // A decision only: ask the routed model too, both calls at once.
                (None, false) => {
                    let routed_spec = plan.routed.ok_or_else(|| {
                        EvalError::Poisoned(format!("routed model {} unknown", sample.routed_model))
                    })?;
                    let (r, f) = futures_util::future::join(
                        self.call(routed_spec, "routed", &messages, 0.0),
                        self.call(plan.reference, "reference", &messages, 0.0),
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
            };
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
            Ok(self.record(
                sample,
                plan,
                routed,
                reference,
                comparison,
                judge,
                from_sample,
            ))
        }

        fn answer_from_sample(
            &self,
            answer: &Value,
            plan: &Plan<'_>,
            messages: &Value,
        ) -> Result<Answered, EvalError> {
            let text = answer_text(answer).ok_or_else(|| {
                EvalError::Poisoned(
                    "the sample's routed answer has no text (tool call or empty answer)".into(),
                )
            })?;
            let (usage, estimated) = match crate::proxy::upstream::usage_of(answer) {
                Some(u) => (u, false),
                None => (self.estimate_usage(messages, &text), true),
            };
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
        ) -> Result<Answered, EvalError> {
            let max_tokens = self.settings.max_output_tokens.min(model.max_output_tokens);
            let body = json!({
                "model": model.id,
                "messages": messages,
                "max_tokens": max_tokens,
                "temperature": 0,
            });
            let completion =
                self.send(&model.provider, body)
                    .await
                    .map_err(|source| EvalError::Upstream {
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
        ) -> Result<Answered, EvalError> {
            let text = answer_text(&completion.json);
            let (usage, estimated) = match completion.usage {
                Some(u) => (u, false),
                None => (
                    self.estimate_usage(messages, text.as_deref().unwrap_or("")),
                    true,
                ),
            };
            let cost_usd = model.cost_usd(usage.prompt_tokens, usage.completion_tokens);
            let text = text.ok_or_else(|| EvalError::Answer {
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
        ) -> Result<(Comparison, Option<(String, Answered)>), EvalError> {
            let compared = verdict::compare(
                question,
                routed,
                reference,
                &self.embedder,
                &self.settings.compare,
            )
            .map_err(|e| EvalError::Compare {
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
                obj.insert("model".into(), Value::from(model.id.clone()));
            }
            let judge_msgs = body.get("messages").cloned().unwrap_or_else(|| json!([]));
            let completion =
                self.send(&model.provider, body)
                    .await
                    .map_err(|source| EvalError::Upstream {
                        role: "judge",
                        model: model.id.clone(),
                        spent_usd: spent,
                        source,
                    })?;
            let answered = self.answered(model, "judge", &judge_msgs, &completion, spent)?;
            let mut judged = verdict::read_judge(&answered.text, routed_first).map_err(|e| {
                EvalError::Compare {
                    detail: format!("judge answer: {e}"),
                    spent_usd: spent + answered.cost_usd,
                }
            })?;
            if judged.similarity.is_none() {
                judged.similarity = compared.similarity;
            }
            Ok((judged, Some((model.id.clone(), answered))))
        }

        #[allow(clippy::too_many_arguments)]
        fn record(
            &self,
            sample: &ShadowSample,
            plan: &Plan<'_>,
            routed: Option<Answered>,
            reference: Option<Answered>,
            comparison: Option<Comparison>,
            judge: Option<(String, Answered)>,
            from_sample: bool,
        ) -> EvaluationRecord {
            let zero = Usage::default();
            let ru = routed.as_ref().map_or(zero, |a| a.usage);
            let fu = reference.as_ref().map_or(zero, |a| a.usage);
            let ju = judge.as_ref().map_or(zero, |(_, a)| a.usage);
            let routed_cost = routed.as_ref().map_or(0.0, |a| a.cost_usd);
            let reference_cost = reference.as_ref().map_or(0.0, |a| a.cost_usd);
            let judge_cost = judge.as_ref().map_or(0.0, |(_, a)| a.cost_usd);
            let shadow = reference_cost + judge_cost + if from_sample { 0.0 } else { routed_cost };
            let estimated = routed.as_ref().is_some_and(|a| a.estimated)
                || reference.as_ref().is_some_and(|a| a.estimated)
                || judge.as_ref().is_some_and(|(_, a)| a.estimated);
            let (verdict, method, similarity, judge_score) = match &comparison {
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
            };
            let (prompt, prompt_truncated) = if self.settings.keep_prompts {
                let (p, cut) = truncate_utf8(&plan.prompt, self.settings.prompt_max_bytes);
                (Some(p), cut)
            } else {
                (None, false)
            };
            EvaluationRecord {
                record: RECORD_EVALUATION.to_string(),
                query_id: sample.query_id.clone(),
                ts: sample.ts.clone(),
                evaluated_at: Timestamp::now().rfc3339,
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
                judge_model: judge.as_ref().map(|(m, _)| m.clone()),
                routed_source: if from_sample || routed.is_none() {
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
                routed_cost_usd: round9(routed_cost),
                reference_cost_usd: round9(reference_cost),
                judge_cost_usd: round9(judge_cost),
                shadow_cost_usd: round9(shadow),
                prompt,
                prompt_truncated,
                pricing_version: self.pool.pricing_version().to_string(),
                evaluator_version: EVALUATOR_VERSION.to_string(),
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

    fn with_spent(err: EvalError, paid: f64) -> EvalError {
        match err {
            EvalError::Upstream {
                role,
                model,
                source,
                spent_usd,
            } => EvalError::Upstream {
                role,
                model,
                spent_usd: spent_usd + paid,
                source,
            },
            EvalError::Answer {
                role,
                model,
                detail,
                spent_usd,
            } => EvalError::Answer {
                role,
                model,
                detail,
                spent_usd: spent_usd + paid,
            },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(verdict: &str, method: &str) -> EvaluationRecord {
        EvaluationRecord {
            record: RECORD_EVALUATION.into(),
            query_id: "q-1".into(),
            ts: "2026-11-28T10:00:00.000Z".into(),
            evaluated_at: "2026-11-28T10:00:03.000Z".into(),
            tenant: "acme".into(),
            routed_model: "deepseek/deepseek-v3".into(),
            routed_tier: Tier::Tier1,
            predicted_tier: Tier::Tier1,
            decided_by: "classifier".into(),
            confidence: 0.9,
            reference_model: "openai/gpt-4o".into(),
            reference_tier: Tier::Tier3,
            verdict: verdict.into(),
            method: method.into(),
            similarity: (method == "similarity").then_some(0.91),
            judge_score: None,
            judge_model: None,
            routed_source: ROUTED_FROM_EVALUATOR.into(),
            routed_input_tokens: 10,
            routed_output_tokens: 5,
            reference_input_tokens: 10,
            reference_output_tokens: 7,
            judge_input_tokens: 0,
            judge_output_tokens: 0,
            tokens_estimated: false,
            routed_cost_usd: 0.000003,
            reference_cost_usd: 0.000095,
            judge_cost_usd: 0.0,
            shadow_cost_usd: 0.000098,
            prompt: Some("What is 6 x 7?".into()),
            prompt_truncated: false,
            pricing_version: "2026-11-01".into(),
            evaluator_version: EVALUATOR_VERSION.into(),
        }
    }

    fn vars(extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut v = vec![("TIERWISE_TABLE".to_string(), "t".to_string())];
        v.extend(extra.iter().map(|(k, x)| (k.to_string(), x.to_string())));
        v
    }

    #[test]
    fn settings_defaults_and_checks() {
        let s = EvaluatorSettings::from_vars(vars(&[("PATH", "/bin")])).unwrap();
        assert_eq!(s.table, "t");
        assert_eq!(s.lease, Duration::from_secs(300));
        assert_eq!(s.upstream_timeout, Duration::from_secs(60));
        assert_eq!(
            (s.concurrency, s.max_output_tokens, s.eval_ttl_days),
            (8, 1024, 90)
        );
        assert!(s.keep_prompts && s.judge.is_none());
        assert_eq!(s.compare, CompareSettings::default());
        let s = EvaluatorSettings::from_vars(vars(&[
            ("TIERWISE_JUDGE_MODEL", "openai/gpt-4o"),
            ("TIERWISE_JUDGE_MAX_TOKENS", "50"),
            ("TIERWISE_KEEP_PROMPTS", "false"),
            (
                "TIERWISE_API_KEY_REFS",
                "openrouter=secretsmanager:arn:aws:secretsmanager:x",
            ),
        ]))
        .unwrap();
        assert_eq!(
            s.api_key_refs,
            [(
                "openrouter".to_string(),
                "secretsmanager:arn:aws:secretsmanager:x".to_string()
            )]
        );
        assert_eq!(s.judge.as_ref().map(|j| j.max_tokens), Some(50));
        assert!(!s.keep_prompts);
        for (k, v, named) in [
            ("TIERWISE_LEASE_SECS", "2", "LEASE_SECS"),
            (
                "TIERWISE_UPSTREAM_TIMEOUT_MS",
                "400000",
                "UPSTREAM_TIMEOUT_MS",
            ),
            ("TIERWISE_CONCURRENCY", "0", "CONCURRENCY"),
            ("TIERWISE_COMPARE", "{\"nope\": 1}", "COMPARE"),
            ("TIERWISE_JUDGE_PROMPT", "no placeholders", "JUDGE_PROMPT"),
            ("TIERWISE_EVAL_TTL_DAYS", "0", "EVAL_TTL_DAYS"),
            ("TIERWISE_API_KEY_REFS", "openrouter", "API_KEY_REFS"),
        ] {
            let mut extra = vec![(k, v)];
            if k == "TIERWISE_JUDGE_PROMPT" {
                extra.push(("TIERWISE_JUDGE_MODEL", "openai/gpt-4o"));
            }
            let e = EvaluatorSettings::from_vars(vars(&extra))
                .unwrap_err()
                .to_string();
            let named = if named == "JUDGE_PROMPT" {
                "JUDGE_MODEL"
            } else {
                named
            };
            assert!(e.contains(named), "{k}={v}: {e}");
        }
    }

    #[test]
    fn counters_and_labels_follow_the_verdict() {
        let eq = record("equivalent", "exact");
        let c = eq.counters();
        assert_eq!(
            (c.evaluations, c.equivalent, c.worse, c.better),
            (1, 1, 0, 0)
        );
        assert_eq!(c.shadow_cost_nanos, 98_000);
        assert_eq!((c.shadow_input_tokens, c.shadow_output_tokens), (20, 12));
        assert_eq!(c.methods.get("exact"), Some(&1));
        let mut from_sample = eq.clone();
        from_sample.routed_source = ROUTED_FROM_SAMPLE.into();
        assert_eq!(from_sample.counters().shadow_input_tokens, 10);
        let worse = record("worse", "similarity");
        let mut sum = c.clone();
        sum.add(&worse.counters());
        assert_eq!(sum.agreement_rate(), Some(0.5));
        assert_eq!(sum.similarity_count, 1);
        assert_eq!(VerdictCounters::default().agreement_rate(), None);

        let label = eq.label().unwrap();
        assert_eq!(label.scores["deepseek/deepseek-v3"], 1.0);
        assert_eq!(label.scores["openai/gpt-4o"], 1.0);
        assert_eq!(label.costs_usd["openai/gpt-4o"], 0.000095);
        let v = serde_json::to_value(&label).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["costs_usd", "id", "prompt", "scores", "task"]);
        assert_eq!(worse.label().unwrap().scores["deepseek/deepseek-v3"], 0.0);
        let better = record("better", "judge").label().unwrap();
        assert_eq!(better.scores["openai/gpt-4o"], 0.0);
        let mut no_prompt = eq.clone();
        no_prompt.prompt = None;
        assert!(no_prompt.label().is_none());
        let mut out = Vec::new();
        let s = write_labels([&eq, &no_prompt, &worse], &mut out).unwrap();
        assert_eq!((s.records, s.labels, s.without_prompt), (3, 2, 1));
        assert_eq!(String::from_utf8(out).unwrap().lines().count(), 2);
    }

    #[tokio::test]
    async fn memory_store_claims_leases_and_completes_once() {
        let store = MemoryEvaluationStore::new();
        let lease = Duration::from_secs(60);
        let rec = record("equivalent", "exact");
        assert_eq!(
            store.claim("q-1", "a", 1000, lease).await.unwrap(),
            Claim::Claimed
        );
        assert_eq!(
            store.claim("q-1", "b", 1010, lease).await.unwrap(),
            Claim::Busy { lease_until: 1060 }
        );
        // Not b's claim: b cannot complete or release it.
        assert_eq!(
            store.complete(&rec, "b").await.unwrap(),
            WriteOutcome::Duplicate
        );
        store.release("q-1", "b").await.unwrap();
        assert!(store.is_claimed("q-1"));
        // The lease ends: b takes over, a's completion is refused.
        assert_eq!(
            store.claim("q-1", "b", 1061, lease).await.unwrap(),
            Claim::Claimed
        );
        assert_eq!(
            store.complete(&rec, "a").await.unwrap(),
            WriteOutcome::Duplicate
        );
        assert_eq!(
            store.complete(&rec, "b").await.unwrap(),
            WriteOutcome::Written
        );
        assert_eq!(
            store.claim("q-1", "c", 5000, lease).await.unwrap(),
            Claim::Done
        );
        assert_eq!(store.records().len(), 1);
        assert_eq!(store.rollups()[0].counters.evaluations, 1);
        // Release frees a claim for an immediate retry.
        assert_eq!(
            store.claim("q-2", "a", 1000, lease).await.unwrap(),
            Claim::Claimed
        );
        store.release("q-2", "a").await.unwrap();
        assert_eq!(
            store.claim("q-2", "b", 1001, lease).await.unwrap(),
            Claim::Claimed
        );
    }

    #[test]
    fn prompts_and_truncation() {
        let s: ShadowSample = serde_json::from_value(serde_json::json!({
            "version": 1, "query_id": "q", "ts": "2026-11-28T00:00:00Z", "tenant": "t",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "First question"},
                {"role": "assistant", "content": "First answer"},
                {"role": "user", "content": [{"type": "text", "text": "Second question"}]},
                {"role": "user", "content": "  "}
            ],
            "routed_model": "m", "routed_tier": "tier1", "predicted_tier": "tier1",
            "decided_by": "classifier", "confidence": 0.9, "reference_model": "r",
            "routed_answer": null, "pricing_version": "v"
        }))
        .unwrap();
        assert_eq!(sample_prompt(&s).as_deref(), Some("Second question"));
        assert_eq!(truncate_utf8("héllo", 2), ("h".to_string(), true));
        assert_eq!(truncate_utf8("héllo", 3), ("hé".to_string(), true));
        assert_eq!(truncate_utf8("hello", 5), ("hello".to_string(), false));
    }
}

#[cfg(test)]
#[cfg(feature = "upstream")]
// Test helpers outside #[test] functions panic on bad fixtures too.
mod service_tests {
    use std::collections::VecDeque;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use bytes::Bytes;
    use serde_json::json;

    use super::*;
    use crate::proxy::upstream::{
        ChatCall, ChatStream, ChatUpstream, Completion, UpstreamError, Usage,
    };
    use crate::routing::embed::Embedder;
    use crate::routing::pool::PoolConfig;

    /// Answers from a script (then "42"), counting calls.
    #[derive(Default)]
    struct Stub {
        script: Mutex<VecDeque<Result<String, UpstreamError>>>,
        calls: AtomicUsize,
    }

    impl ChatUpstream for Stub {
        async fn complete(&self, _call: ChatCall<'_>) -> Result<Completion, UpstreamError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let next = self.script.lock().unwrap().pop_front();
            let text = next.unwrap_or_else(|| Ok("42".into()))?;
            Ok(Completion {
                status: 200,
                content_type: "application/json".into(),
                body: Bytes::new(),
                json: json!({"choices": [{"message": {"role": "assistant", "content": text}}]}),
                usage: Some(Usage {
                    prompt_tokens: 1_000,
                    completion_tokens: 100,
                    ..Usage::default()
                }),
                elapsed_ms: 1.0,
            })
        }

        async fn stream(&self, _call: ChatCall<'_>) -> Result<ChatStream, UpstreamError> {
            Err(UpstreamError::Connect)
        }
    }

    fn evaluator(stub: Stub) -> Evaluator<Stub, MemoryEvaluationStore> {
        let settings =
            EvaluatorSettings::from_vars([("TIERWISE_TABLE".to_string(), "t".to_string())])
                .unwrap();
        Evaluator::new(
            stub,
            MemoryEvaluationStore::new(),
            Arc::new(Embedder::bundled().unwrap()),
            PoolConfig::bundled().unwrap(),
            settings,
        )
        .unwrap()
    }

    fn sample(routed_model: &str, answer: Option<serde_json::Value>) -> ShadowSample {
        serde_json::from_value(json!({
            "version": 1, "query_id": "q-1", "ts": "2026-11-28T10:00:00.000Z",
            "tenant": "acme", "query": "What is 6 x 7?", "routed_model": routed_model,
            "routed_tier": "tier1", "predicted_tier": "tier1", "decided_by": "classifier",
            "confidence": 0.9, "reference_model": "openai/gpt-4o", "routed_answer": answer,
            "pricing_version": "2026-11-01"
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn evaluates_once_and_prices_the_shadow_calls() {
        let ev = evaluator(Stub::default());
        let s = sample("deepseek/deepseek-v3", None);
        let Outcome::Recorded(rec) = ev.evaluate(&s).await.unwrap() else {
            panic!("not recorded")
        };
        assert_eq!(
            (rec.verdict.as_str(), rec.method.as_str()),
            ("equivalent", "exact")
        );
        assert_eq!(ev.upstream().calls.load(Ordering::SeqCst), 2);
        // deepseek 1000 x 0.14 + 100 x 0.28, gpt-4o 1000 x 2.5 + 100 x 10 (per M).
        let expected = (140.0 + 28.0 + 2_500.0 + 1_000.0) / 1e6;
        assert!((rec.shadow_cost_usd - expected).abs() < 1e-12, "{rec:?}");
        assert_eq!(ev.evaluate(&s).await.unwrap(), Outcome::AlreadyDone);
        assert_eq!(ev.upstream().calls.load(Ordering::SeqCst), 2);
        assert_eq!(ev.store().rollups()[0].counters.evaluations, 1);
    }

    #[tokio::test]
    async fn a_failed_call_releases_the_claim() {
        let stub = Stub::default();
        stub.script
            .lock()
            .unwrap()
            .push_back(Err(UpstreamError::Server {
                status: 500,
                retry_after: None,
            }));
        let ev = evaluator(stub);
        let s = sample(
            "deepseek/deepseek-v3",
            Some(json!({"choices": [{"message":
            {"content": "42"}}], "usage": {"prompt_tokens": 5, "completion_tokens": 1}})),
        );
        let e = ev.evaluate(&s).await.unwrap_err();
        assert_eq!(e.kind(), "upstream");
        assert!(e.is_retryable());
        assert!(!ev.store().is_claimed("q-1"));
        assert!(ev.store().records().is_empty());
        assert!(matches!(
            ev.evaluate(&s).await.unwrap(),
            Outcome::Recorded(_)
        ));
        assert_eq!(
            ev.upstream().calls.load(Ordering::SeqCst),
            2,
            "reference only"
        );
    }

    #[tokio::test]
    async fn nothing_to_compare_costs_nothing() {
        let ev = evaluator(Stub::default());
        // The routed model is the reference.
        let Outcome::Recorded(rec) = ev.evaluate(&sample("openai/gpt-4o", None)).await.unwrap()
        else {
            panic!("not recorded")
        };
        assert_eq!(
            (rec.verdict.as_str(), rec.method.as_str()),
            ("equivalent", "same_model")
        );
        assert_eq!(rec.shadow_cost_usd, 0.0);
        // A proxied answer without text (a tool call): skipped, no call.
        let tool = json!({"choices": [{"message": {"content": null, "tool_calls": []}}]});
        let mut s = sample("deepseek/deepseek-v3", Some(tool));
        s.query_id = "q-2".into();
        assert!(matches!(
            ev.evaluate(&s).await.unwrap(),
            Outcome::Skipped { .. }
        ));
        // An unknown routed model without its answer cannot be evaluated.
        let mut s = sample("nobody/none", None);
        s.query_id = "q-3".into();
        let e = ev.evaluate(&s).await.unwrap_err();
        assert_eq!(e.kind(), "poisoned");
        assert!(!e.is_retryable());
        assert_eq!(ev.upstream().calls.load(Ordering::SeqCst), 0);
        assert!(matches!(
            Evaluator::<Stub, MemoryEvaluationStore>::parse("{\"version\": 7}"),
            Err(EvalError::Poisoned(m)) if m.contains("version 7")
        ));
    }
}
