//! The report's shape: its JSON body is the contract of `docs/report.md`.

use crate::ledger::money::Usd;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::routing::pool::Tier;

/// A tier's line of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TierLine {
    pub queries: u64,
    pub cost_usd: Usd,
    pub baseline_cost_usd: Usd,
    /// The tier's share of the queries (0..1); `None` when there were none.
    pub share: Option<f64>,
}

/// A model's line of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelLine {
    /// The model's tier: the tier it served most queries in over the range (a model moved to
    /// another tier mid-range has rows in both).
    pub tier: Tier,
    pub queries: u64,
    pub cost_usd: Usd,
    pub baseline_cost_usd: Usd,
}

/// A day's line of the report (the charts' data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayLine {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    pub queries: u64,
    pub cost_usd: Usd,
    pub baseline_cost_usd: Usd,
    /// Queries per tier, every tier present.
    pub tiers: BTreeMap<String, u64>,
}

/// A line of the `group_by` breakdown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupLine {
    /// The day (`YYYY-MM-DD`), tier (`tier1`..) or model.
    pub key: String,
    pub queries: u64,
    pub cost_usd: Usd,
    pub baseline_cost_usd: Usd,
    pub savings_usd: Usd,
    /// Savings in percent of the baseline cost; `None` when the baseline cost is 0.
    pub savings_pct: Option<f64>,
    /// `None` when there were no queries.
    pub cost_per_1k_usd: Option<Usd>,
    /// `None` when there were no queries.
    pub escalation_rate: Option<f64>,
}

/// Router latency over the range, read from the summed histograms of the rollups
/// ([`LATENCY_BOUNDS_MS`](crate::ledger::records::LATENCY_BOUNDS_MS)), so percentiles are
/// bucket upper bounds (within one bucket of the truth).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Median, ms: the upper bound of the bucket holding the nearest-rank (`ceil(0.5 n)`)
    /// sample. For a sample in the overflow bucket (above the last bound) it is the last bound,
    /// `1000`: read it as "over 1000 ms".
    pub p50: f64,
    /// 99th percentile, ms, as `p50` (rank `ceil(0.99 n)`), also the last bound for overflow.
    pub p99: f64,
    /// Mean, ms: the summed router time over the queries (exact, not bucketed); 3 decimals.
    pub mean: f64,
}

/// Shadow evaluation over the range: the samples the router sent, and the evaluator's
/// verdicts on them (from its verdict rollups; absent from export-based reports, which read
/// cost records only).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShadowLine {
    /// Queries sampled for shadow evaluation.
    pub samples: u64,
    /// Samples evaluated (equivalent + worse + better).
    #[serde(default)]
    pub evaluations: u64,
    #[serde(default)]
    pub equivalent: u64,
    #[serde(default)]
    pub worse: u64,
    #[serde(default)]
    pub better: u64,
    /// (equivalent + better) / evaluations; `null` without evaluations.
    #[serde(default)]
    pub agreement_rate: Option<f64>,
    /// What shadow evaluation cost (reference, routed and judge calls): apart from
    /// `cost_usd`, which is user traffic only.
    #[serde(default)]
    pub shadow_cost_usd: Usd,
    /// Per routed tier: evaluations and agreement rate.
    #[serde(default)]
    pub tiers: BTreeMap<String, ShadowTierLine>,
}

/// One tier's shadow verdicts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShadowTierLine {
    pub evaluations: u64,
    pub agreement_rate: Option<f64>,
}

/// The cost report (JSON body of the reporter and output of `tierwise report`).
///
/// Money is in USD (at most 9 decimals, exact sums of the records' nano-dollars); rates and
/// shares are fractions 0..1 rounded to 6 decimals; percentages are rounded to 4 decimals.
/// Ratios are `None` (JSON `null`) when their denominator is 0.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Report {
    /// First day, `YYYY-MM-DD` (UTC).
    pub from: String,
    /// Last day, inclusive.
    pub to: String,
    /// The tenant reported on; `None` for all tenants.
    pub tenant: Option<String>,
    pub queries: u64,
    pub cost_usd: Usd,
    /// The same tokens at the baseline model's prices.
    pub baseline_cost_usd: Usd,
    /// `baseline_cost_usd - cost_usd`.
    pub savings_usd: Usd,
    /// Savings in percent of the baseline cost; `None` when the baseline cost is 0.
    pub savings_pct: Option<f64>,
    pub cost_per_1k_usd: Option<Usd>,
    pub baseline_cost_per_1k_usd: Option<Usd>,
    /// Share of queries escalated to a stronger tier than the classifier's prediction.
    pub escalation_rate: Option<f64>,
    /// Share of queries decided by a rule.
    pub rule_share: Option<f64>,
    /// Share of queries decided by the classifier.
    pub classifier_share: Option<f64>,
    /// Share of proxied queries whose every upstream attempt failed, over all queries.
    pub upstream_error_rate: Option<f64>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// `None` when no latency was recorded.
    pub router_ms: Option<LatencySummary>,
    /// Every tier, even at 0.
    pub tiers: BTreeMap<String, TierLine>,
    pub models: BTreeMap<String, ModelLine>,
    /// Every day of the range in order, days without traffic included.
    pub days: Vec<DayLine>,
    /// The `group_by` breakdown, present only when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<GroupLine>>,
    pub shadow: ShadowLine,
    /// Rows read that counted (in range, of the tenant): what the report cost to read.
    pub rows_read: u64,
}
