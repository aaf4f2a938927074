//! The evaluation record: one verdict per query id (`docs/records.md`, "Evaluation record"), with the
//! shadow spend kept apart from user traffic's cost, and the sample's prompt it keeps for the
//! label export ([`sample_prompt`], cut by [`truncate_utf8`]).

use serde::{Deserialize, Serialize};

use crate::ledger::money::{Timestamp, Usd};
use crate::ledger::records::ShadowSample;
use crate::routing::pool::Tier;

/// `record` attribute of an evaluation record.
pub const RECORD_EVALUATION: &str = "evaluation";
/// `record` attribute of a claim (an evaluation in progress; replaced by the record).
pub const RECORD_EVAL_CLAIM: &str = "eval_claim";
/// `method` of a sample whose routed model is the reference model: nothing to compare, no call.
pub const METHOD_SAME_MODEL: &str = "same_model";
/// The evaluator's version, stamped on every record.
pub const EVALUATOR_VERSION: &str = concat!("tierwise-evaluator-", env!("CARGO_PKG_VERSION"));

/// Where the routed answer came from.
pub const ROUTED_FROM_SAMPLE: &str = "sample";
/// The evaluator called the routed model itself (a `/v1/route` decision): a shadow cost.
pub const ROUTED_FROM_EVALUATOR: &str = "evaluator";

/// One evaluated query (`docs/records.md`, "Evaluation record"). Attribute names are written exactly
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
    pub ts: Timestamp,
    /// When the evaluation completed (RFC 3339 UTC).
    pub evaluated_at: Timestamp,
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
    pub routed_cost_usd: Usd,
    pub reference_cost_usd: Usd,
    pub judge_cost_usd: Usd,
    /// The evaluation's own spend: reference + judge (+ routed when the evaluator called it).
    pub shadow_cost_usd: Usd,
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
        self.ts.day()
    }

    /// Whether the routed answer held up (equivalent or better).
    pub fn agrees(&self) -> bool {
        matches!(self.verdict.as_str(), "equivalent" | "better")
    }

    /// Input tokens the evaluation paid for.
    pub fn shadow_input_tokens(&self) -> u64 {
        self.paid_routed(self.routed_input_tokens)
            + self.reference_input_tokens
            + self.judge_input_tokens
    }

    /// Output tokens the evaluation paid for.
    pub fn shadow_output_tokens(&self) -> u64 {
        self.paid_routed(self.routed_output_tokens)
            + self.reference_output_tokens
            + self.judge_output_tokens
    }

    /// `routed` when the evaluator made the routed call itself (and paid for it), else 0.
    fn paid_routed(&self, routed: u64) -> u64 {
        if self.routed_source == ROUTED_FROM_EVALUATOR {
            routed
        } else {
            0
        }
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

/// Records for the tests of the shadow modules and of their AWS adapter.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    /// A query routed to tier 1 and compared with gpt-4o, with `verdict` by `method`.
    pub(crate) fn record(verdict: &str, method: &str) -> EvaluationRecord {
        EvaluationRecord {
            record: RECORD_EVALUATION.into(),
            query_id: "q-1".into(),
            ts: Timestamp::parse("2026-11-28T10:00:00.000Z").unwrap(),
            evaluated_at: Timestamp::parse("2026-11-28T10:00:03.000Z").unwrap(),
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
            routed_cost_usd: Usd::from_nanos(3_000),
            reference_cost_usd: Usd::from_nanos(95_000),
            judge_cost_usd: Usd::ZERO,
            shadow_cost_usd: Usd::from_nanos(98_000),
            prompt: Some("What is 6 x 7?".into()),
            prompt_truncated: false,
            pricing_version: "2026-11-01".into(),
            evaluator_version: EVALUATOR_VERSION.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
