//! The cost report: what was spent, what the baseline model would have cost, and how the
//! traffic was routed, over a range of days, computed from rollup rows.
//!
//! The reporter Lambda feeds it DynamoDB rollups and `tierwise report --export` feeds it the raw
//! cost records of an export (each read as a row of its own, [`RollupRow::of_record`]); both go
//! through the same [`ReportBuilder`], so they give the same [`Report`]. Its JSON is the contract
//! of `DESIGN.md` ("Report"): money as JSON numbers in USD, summed in integer nano-dollars so that
//! totals equal the record sums exactly. [`render_table`] and [`render_html`] present it for a
//! terminal and as a self-contained web page.

pub mod export;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::Date;

use crate::ledger::records::{Counters, LATENCY_BOUNDS_MS, RollupRow, nanos_to_usd};
use crate::routing::decision::validate_tenant;
use crate::routing::pool::Tier;

/// The longest range a report covers, in days (inclusive of both ends).
pub const MAX_REPORT_DAYS: i64 = 366;

/// Errors of report parameters. The messages describe the parameter and are meant for the
/// caller (HTTP 400), never internals.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// A missing or malformed parameter.
    #[error("{0}")]
    InvalidParam(String),
}

impl ReportError {
    /// HTTP status for the caller.
    pub fn status(&self) -> u16 {
        match self {
            ReportError::InvalidParam(_) => 400,
        }
    }
}

/// How the report's `groups` break the range down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// One line per day of the range.
    Day,
    /// One line per tier.
    Tier,
    /// One line per model, most expensive first.
    Model,
}

impl GroupBy {
    /// All groupings.
    pub const ALL: [GroupBy; 3] = [GroupBy::Day, GroupBy::Tier, GroupBy::Model];

    /// The parameter value: `"day"`, `"tier"` or `"model"`.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Day => "day",
            GroupBy::Tier => "tier",
            GroupBy::Model => "model",
        }
    }
}

impl fmt::Display for GroupBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GroupBy {
    type Err = ReportError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        GroupBy::ALL
            .into_iter()
            .find(|g| g.as_str() == s)
            .ok_or_else(|| {
                ReportError::InvalidParam(format!(
                    "`group_by` must be one of {}, got {:?}",
                    GroupBy::ALL.map(GroupBy::as_str).join(", "),
                    shorten(s)
                ))
            })
    }
}

/// What a report covers: the days `from..=to` (UTC), one tenant or all, and an optional
/// breakdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportParams {
    pub from: Date,
    pub to: Date,
    /// Only this tenant's rows; all tenants when `None`.
    pub tenant: Option<String>,
    pub group_by: Option<GroupBy>,
}

impl ReportParams {
    /// Parses request parameters: `from` and `to` are required dates `YYYY-MM-DD` with
    /// `from <= to` and at most [`MAX_REPORT_DAYS`] days from one to the other inclusive;
    /// `tenant` must be a valid tenant name; `group_by` one of `day`, `tier`, `model`. An empty
    /// `tenant` or `group_by` counts as absent (as an HTML form sends it).
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        tenant: Option<&str>,
        group_by: Option<&str>,
    ) -> Result<ReportParams, ReportError> {
        let from = parse_date("from", from)?;
        let to = parse_date("to", to)?;
        if from > to {
            return Err(ReportError::InvalidParam(format!(
                "`from` ({}) is after `to` ({})",
                date_string(from),
                date_string(to)
            )));
        }
        let days = (to - from).whole_days() + 1;
        if days > MAX_REPORT_DAYS {
            return Err(ReportError::InvalidParam(format!(
                "the range is {days} days; the limit is {MAX_REPORT_DAYS}"
            )));
        }
        let tenant = match tenant.map(str::trim).filter(|t| !t.is_empty()) {
            Some(t) => {
                validate_tenant(t).map_err(|e| ReportError::InvalidParam(e.to_string()))?;
                Some(t.to_string())
            }
            None => None,
        };
        let group_by = match group_by.map(str::trim).filter(|g| !g.is_empty()) {
            Some(g) => Some(g.parse()?),
            None => None,
        };
        Ok(ReportParams {
            from,
            to,
            tenant,
            group_by,
        })
    }

    /// The days of the range, `from` to `to` inclusive, in order (none if `from > to`).
    pub fn days(&self) -> impl Iterator<Item = Date> {
        let to = self.to;
        std::iter::successors(Some(self.from).filter(|d| *d <= to), move |d| {
            d.next_day().filter(|n| *n <= to)
        })
    }

    /// The days of the range as `YYYY-MM-DD`, in order (the rollups' `day` keys).
    pub fn day_strings(&self) -> Vec<String> {
        self.days().map(date_string).collect()
    }
}

fn parse_date(name: &str, value: Option<&str>) -> Result<Date, ReportError> {
    let Some(raw) = value else {
        return Err(ReportError::InvalidParam(format!(
            "`{name}` is required: a date YYYY-MM-DD"
        )));
    };
    let s = raw.trim();
    let shaped = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    let format = time::macros::format_description!("[year]-[month]-[day]");
    shaped
        .then(|| Date::parse(s, format).ok())
        .flatten()
        .ok_or_else(|| {
            ReportError::InvalidParam(format!(
                "`{name}` must be a date YYYY-MM-DD, got {:?}",
                shorten(raw)
            ))
        })
}

/// A caller's value as echoed in an error: at most 40 characters.
fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if s.chars().count() > 40 {
        out.push('…');
    }
    out
}

/// `YYYY-MM-DD`.
fn date_string(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// A tier's line of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TierLine {
    pub queries: u64,
    pub cost_usd: f64,
    pub baseline_cost_usd: f64,
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
    pub cost_usd: f64,
    pub baseline_cost_usd: f64,
}

/// A day's line of the report (the charts' data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayLine {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    pub queries: u64,
    pub cost_usd: f64,
    pub baseline_cost_usd: f64,
    /// Queries per tier, every tier present.
    pub tiers: BTreeMap<String, u64>,
}

/// A line of the `group_by` breakdown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupLine {
    /// The day (`YYYY-MM-DD`), tier (`tier1`..) or model.
    pub key: String,
    pub queries: u64,
    pub cost_usd: f64,
    pub baseline_cost_usd: f64,
    pub savings_usd: f64,
    /// Savings in percent of the baseline cost; `None` when the baseline cost is 0.
    pub savings_pct: Option<f64>,
    /// `None` when there were no queries.
    pub cost_per_1k_usd: Option<f64>,
    /// `None` when there were no queries.
    pub escalation_rate: Option<f64>,
}

/// Router latency over the range, read from the summed histograms of the rollups
/// ([`LATENCY_BOUNDS_MS`]), so percentiles are bucket upper bounds (within one bucket of the
/// truth).
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
    pub shadow_cost_usd: f64,
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
    pub cost_usd: f64,
    /// The same tokens at the baseline model's prices.
    pub baseline_cost_usd: f64,
    /// `baseline_cost_usd - cost_usd`.
    pub savings_usd: f64,
    /// Savings in percent of the baseline cost; `None` when the baseline cost is 0.
    pub savings_pct: Option<f64>,
    pub cost_per_1k_usd: Option<f64>,
    pub baseline_cost_per_1k_usd: Option<f64>,
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

#[derive(Debug, Default)]
struct ModelAcc {
    counters: Counters,
    /// Queries and rows per tier, to name the model's tier.
    tier_weight: [(u64, u64); 3],
}

/// Sums rollup rows into a [`Report`]. Memory is O(days x tiers x models), whatever the number
/// of rows; rows outside the range or of another tenant are skipped, so callers may feed a
/// superset.
#[derive(Debug)]
pub struct ReportBuilder {
    from: String,
    to: String,
    tenant: Option<String>,
    group_by: Option<GroupBy>,
    /// Day keys in order (so sorted: binary search finds a row's day).
    days: Vec<String>,
    day_counters: Vec<Counters>,
    day_tiers: Vec<[u64; 3]>,
    tiers: [Counters; 3],
    models: BTreeMap<String, ModelAcc>,
    total: Counters,
    rows_read: u64,
    /// Verdict counters: all, and per tier.
    verdicts: crate::shadow::evaluator::VerdictCounters,
    tier_verdicts: [crate::shadow::evaluator::VerdictCounters; 3],
}

impl ReportBuilder {
    /// A builder for the report of `params`.
    pub fn new(params: &ReportParams) -> Self {
        let days = params.day_strings();
        ReportBuilder {
            from: date_string(params.from),
            to: date_string(params.to),
            tenant: params.tenant.clone(),
            group_by: params.group_by,
            day_counters: vec![Counters::default(); days.len()],
            day_tiers: vec![[0; 3]; days.len()],
            days,
            tiers: Default::default(),
            models: BTreeMap::new(),
            total: Counters::default(),
            rows_read: 0,
            verdicts: Default::default(),
            tier_verdicts: Default::default(),
        }
    }

    /// Adds an evaluator verdict rollup row (same day and tenant filters as [`Self::add`]).
    pub fn add_evaluations(&mut self, row: &crate::shadow::evaluator::EvalRollupRow) {
        if self.tenant.as_ref().is_some_and(|t| *t != row.key.tenant) {
            return;
        }
        if self.days.binary_search(&row.key.day).is_err() {
            return;
        }
        self.rows_read += 1;
        self.verdicts.add(&row.counters);
        self.tier_verdicts[row.key.tier.index()].add(&row.counters);
    }

    /// Adds a row; rows of days outside the range, or of another tenant when the report is for
    /// one, are ignored.
    pub fn add(&mut self, row: &RollupRow) {
        if self.tenant.as_ref().is_some_and(|t| *t != row.tenant) {
            return;
        }
        let Ok(d) = self
            .days
            .binary_search_by(|day| day.as_str().cmp(row.day.as_str()))
        else {
            return;
        };
        let c = &row.counters;
        let t = row.tier.index();
        self.rows_read += 1;
        self.total.add(c);
        if let Some(day) = self.day_counters.get_mut(d) {
            day.add(c);
        }
        if let Some(q) = self.day_tiers.get_mut(d).and_then(|tiers| tiers.get_mut(t)) {
            *q += c.queries;
        }
        if let Some(tier) = self.tiers.get_mut(t) {
            tier.add(c);
        }
        if !self.models.contains_key(&row.model) {
            self.models.insert(row.model.clone(), ModelAcc::default());
        }
        if let Some(model) = self.models.get_mut(&row.model) {
            model.counters.add(c);
            if let Some((queries, rows)) = model.tier_weight.get_mut(t) {
                *queries += c.queries;
                *rows += 1;
            }
        }
    }

    /// The report.
    pub fn finish(self) -> Report {
        let total = &self.total;
        let tiers = Tier::ALL
            .iter()
            .zip(&self.tiers)
            .map(|(tier, c)| {
                let line = TierLine {
                    queries: c.queries,
                    cost_usd: nanos_to_usd(c.cost_nanos),
                    baseline_cost_usd: nanos_to_usd(c.baseline_cost_nanos),
                    share: ratio(c.queries, total.queries),
                };
                (tier.as_str().to_string(), line)
            })
            .collect();
        let models = self
            .models
            .iter()
            .map(|(name, m)| {
                let line = ModelLine {
                    tier: model_tier(m),
                    queries: m.counters.queries,
                    cost_usd: nanos_to_usd(m.counters.cost_nanos),
                    baseline_cost_usd: nanos_to_usd(m.counters.baseline_cost_nanos),
                };
                (name.clone(), line)
            })
            .collect();
        let days = self
            .days
            .iter()
            .zip(&self.day_counters)
            .zip(&self.day_tiers)
            .map(|((day, c), per_tier)| DayLine {
                day: day.clone(),
                queries: c.queries,
                cost_usd: nanos_to_usd(c.cost_nanos),
                baseline_cost_usd: nanos_to_usd(c.baseline_cost_nanos),
                tiers: Tier::ALL
                    .iter()
                    .zip(per_tier)
                    .map(|(t, q)| (t.as_str().to_string(), *q))
                    .collect(),
            })
            .collect();
        let groups = self.group_by.map(|g| match g {
            GroupBy::Day => self
                .days
                .iter()
                .zip(&self.day_counters)
                .map(|(day, c)| group_line(day, c))
                .collect(),
            GroupBy::Tier => Tier::ALL
                .iter()
                .zip(&self.tiers)
                .map(|(t, c)| group_line(t.as_str(), c))
                .collect(),
            GroupBy::Model => {
                let mut by_cost: Vec<(&String, &ModelAcc)> = self.models.iter().collect();
                by_cost.sort_by(|a, b| {
                    b.1.counters
                        .cost_nanos
                        .cmp(&a.1.counters.cost_nanos)
                        .then_with(|| a.0.cmp(b.0))
                });
                by_cost
                    .into_iter()
                    .map(|(name, m)| group_line(name, &m.counters))
                    .collect()
            }
        });
        let classifier_decisions = total.queries.saturating_sub(total.rule_decisions);
        Report {
            from: self.from,
            to: self.to,
            tenant: self.tenant,
            queries: total.queries,
            cost_usd: nanos_to_usd(total.cost_nanos),
            baseline_cost_usd: nanos_to_usd(total.baseline_cost_nanos),
            savings_usd: nanos_to_usd(total.baseline_cost_nanos - total.cost_nanos),
            savings_pct: savings_pct(total.cost_nanos, total.baseline_cost_nanos),
            cost_per_1k_usd: per_1k(total.cost_nanos, total.queries),
            baseline_cost_per_1k_usd: per_1k(total.baseline_cost_nanos, total.queries),
            escalation_rate: ratio(total.escalations, total.queries),
            rule_share: ratio(total.rule_decisions, total.queries),
            classifier_share: ratio(classifier_decisions, total.queries),
            upstream_error_rate: ratio(total.upstream_errors, total.queries),
            input_tokens: total.input_tokens,
            output_tokens: total.output_tokens,
            router_ms: latency_summary(total),
            tiers,
            models,
            days,
            groups,
            shadow: ShadowLine {
                samples: total.shadow_samples,
                evaluations: self.verdicts.evaluations,
                equivalent: self.verdicts.equivalent,
                worse: self.verdicts.worse,
                better: self.verdicts.better,
                agreement_rate: self.verdicts.agreement_rate().map(|a| round_to(a, 6)),
                shadow_cost_usd: nanos_to_usd(self.verdicts.shadow_cost_nanos),
                tiers: Tier::ALL
                    .iter()
                    .filter(|t| self.tier_verdicts[t.index()].evaluations > 0)
                    .map(|t| {
                        let v = &self.tier_verdicts[t.index()];
                        (
                            t.as_str().to_string(),
                            ShadowTierLine {
                                evaluations: v.evaluations,
                                agreement_rate: v.agreement_rate().map(|a| round_to(a, 6)),
                            },
                        )
                    })
                    .collect(),
            },
            rows_read: self.rows_read,
        }
    }
}

/// The tier a model served most queries in (then most rows; then the cheaper tier).
fn model_tier(m: &ModelAcc) -> Tier {
    let mut best = (Tier::Tier1, (0, 0));
    for (tier, weight) in Tier::ALL.iter().zip(m.tier_weight) {
        if weight > best.1 {
            best = (*tier, weight);
        }
    }
    best.0
}

fn group_line(key: &str, c: &Counters) -> GroupLine {
    GroupLine {
        key: key.to_string(),
        queries: c.queries,
        cost_usd: nanos_to_usd(c.cost_nanos),
        baseline_cost_usd: nanos_to_usd(c.baseline_cost_nanos),
        savings_usd: nanos_to_usd(c.baseline_cost_nanos - c.cost_nanos),
        savings_pct: savings_pct(c.cost_nanos, c.baseline_cost_nanos),
        cost_per_1k_usd: per_1k(c.cost_nanos, c.queries),
        escalation_rate: ratio(c.escalations, c.queries),
    }
}

fn round_to(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

/// `num / den` rounded to 6 decimals; `None` when `den` is 0.
fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| round_to(num as f64 / den as f64, 6))
}

/// Savings in percent of the baseline, 4 decimals; `None` when the baseline is 0.
fn savings_pct(cost_nanos: i64, baseline_nanos: i64) -> Option<f64> {
    (baseline_nanos != 0).then(|| {
        let saved = baseline_nanos as f64 - cost_nanos as f64;
        round_to(100.0 * saved / baseline_nanos as f64, 4)
    })
}

/// USD per 1000 queries, rounded to the nano-dollar; `None` when there were no queries.
fn per_1k(nanos: i64, queries: u64) -> Option<f64> {
    (queries > 0).then(|| {
        let nanos_per_1k = (i128::from(nanos) * 1000) as f64 / queries as f64;
        nanos_per_1k.round() / 1e9
    })
}

/// Percentiles and mean of the router latency; `None` when the histogram is empty.
fn latency_summary(c: &Counters) -> Option<LatencySummary> {
    let n: u64 = c.latency.iter().sum();
    if n == 0 {
        return None;
    }
    let percentile = |pct: u64| -> f64 {
        // Nearest rank: ceil(pct/100 * n), at least 1.
        let rank = (u128::from(n) * u128::from(pct)).div_ceil(100).max(1);
        let mut seen: u128 = 0;
        let bucket = c
            .latency
            .iter()
            .position(|count| {
                seen += u128::from(*count);
                seen >= rank
            })
            .unwrap_or(LATENCY_BOUNDS_MS.len());
        let last = LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.len() - 1];
        LATENCY_BOUNDS_MS.get(bucket).copied().unwrap_or(last)
    };
    let denominator = if c.queries > 0 { c.queries } else { n };
    Some(LatencySummary {
        p50: percentile(50),
        p99: percentile(99),
        mean: round_to(c.router_ms_sum / denominator as f64, 3),
    })
}

// ---------------------------------------------------------------------------------------------
// Presentation
// ---------------------------------------------------------------------------------------------

/// USD for reading: cents from $1, more decimals below (`$0.0021`, `$0.000123`), thousands
/// separated.
fn fmt_usd(x: f64) -> String {
    let a = x.abs();
    let decimals = if a == 0.0 || a >= 1.0 {
        2
    } else if a >= 0.01 {
        4
    } else if a >= 0.000_001 {
        6
    } else {
        9
    };
    let digits = group_thousands(&format!("{a:.decimals$}"));
    let zero = digits.bytes().all(|b| matches!(b, b'0' | b'.' | b','));
    if x < 0.0 && !zero {
        format!("-${digits}")
    } else {
        format!("${digits}")
    }
}

fn fmt_usd_opt(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".to_string(), fmt_usd)
}

/// Thousands separators in the integer part of a plain decimal number.
fn group_thousands(s: &str) -> String {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    out
}

fn fmt_count(n: u64) -> String {
    group_thousands(&n.to_string())
}

/// A fraction 0..1 as a percentage with one decimal.
fn fmt_share(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".to_string(), |r| format!("{:.1}%", r * 100.0))
}

/// A percentage with one decimal.
fn fmt_pct(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".to_string(), |p| format!("{p:.1}%"))
}

fn fmt_latency(l: Option<&LatencySummary>) -> String {
    match l {
        Some(l) => format!(
            "P50 <= {} ms, P99 <= {} ms, mean {:.1} ms",
            l.p50, l.p99, l.mean
        ),
        None => "not recorded".to_string(),
    }
}

/// The headline figures, as label and value, shared by both renderers.
fn headline(r: &Report) -> Vec<(&'static str, String)> {
    vec![
        ("Queries", fmt_count(r.queries)),
        ("Cost", fmt_usd(r.cost_usd)),
        ("Baseline cost", fmt_usd(r.baseline_cost_usd)),
        (
            "Savings",
            format!("{} ({})", fmt_usd(r.savings_usd), fmt_pct(r.savings_pct)),
        ),
        ("Cost per 1K queries", fmt_usd_opt(r.cost_per_1k_usd)),
        (
            "Baseline per 1K queries",
            fmt_usd_opt(r.baseline_cost_per_1k_usd),
        ),
        ("Escalation rate", fmt_share(r.escalation_rate)),
        (
            "Decided by",
            format!(
                "rules {}, classifier {}",
                fmt_share(r.rule_share),
                fmt_share(r.classifier_share)
            ),
        ),
        ("Upstream error rate", fmt_share(r.upstream_error_rate)),
        ("Router latency", fmt_latency(r.router_ms.as_ref())),
        (
            "Tokens",
            format!(
                "{} in, {} out",
                fmt_count(r.input_tokens),
                fmt_count(r.output_tokens)
            ),
        ),
        ("Shadow samples", fmt_count(r.shadow.samples)),
        (
            "Shadow agreement",
            match r.shadow.agreement_rate {
                Some(a) => format!(
                    "{:.1}% of {} evaluated (shadow spend {})",
                    a * 100.0,
                    fmt_count(r.shadow.evaluations),
                    fmt_usd(r.shadow.shadow_cost_usd)
                ),
                None => "no evaluations".to_string(),
            },
        ),
        ("Rows read", fmt_count(r.rows_read)),
    ]
}

/// Models, most expensive first (then by name).
fn models_by_cost(r: &Report) -> Vec<(&String, &ModelLine)> {
    let mut models: Vec<(&String, &ModelLine)> = r.models.iter().collect();
    models.sort_by(|a, b| {
        b.1.cost_usd
            .total_cmp(&a.1.cost_usd)
            .then_with(|| a.0.cmp(b.0))
    });
    models
}

/// What the groups are, guessed from their keys (the report does not name it).
fn groups_title(groups: &[GroupLine]) -> &'static str {
    let is_day = |k: &str| parse_date("day", Some(k)).is_ok();
    let is_tier = |k: &str| k.parse::<Tier>().is_ok();
    if !groups.is_empty() && groups.iter().all(|g| is_day(&g.key)) {
        "day"
    } else if groups.len() == Tier::ALL.len() && groups.iter().all(|g| is_tier(&g.key)) {
        "tier"
    } else {
        "model"
    }
}

fn group_cells(g: &GroupLine, key: String) -> Vec<String> {
    vec![
        key,
        fmt_count(g.queries),
        fmt_usd(g.cost_usd),
        fmt_usd(g.baseline_cost_usd),
        fmt_usd(g.savings_usd),
        fmt_pct(g.savings_pct),
        fmt_usd_opt(g.cost_per_1k_usd),
        fmt_share(g.escalation_rate),
    ]
}

const GROUP_HEADERS: [&str; 8] = [
    "",
    "queries",
    "cost",
    "baseline",
    "savings",
    "savings",
    "per 1K",
    "escalated",
];

/// How many models the terminal table lists.
const TOP_MODELS: usize = 10;

/// A name from the data, safe to print on a terminal: control characters (escape sequences)
/// replaced, at most 60 characters.
fn terminal_safe(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(60)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().count() > 60 {
        out.push('…');
    }
    out
}

/// Aligned columns: the first left-aligned, the others right-aligned; two-space indent.
fn text_table(out: &mut String, headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    text_line(out, &widths, headers.iter().copied());
    for row in rows {
        text_line(out, &widths, row.iter().map(String::as_str));
    }
}

fn text_line<'a>(out: &mut String, widths: &[usize], cells: impl Iterator<Item = &'a str>) {
    let mut s = String::new();
    for (i, (cell, w)) in cells.zip(widths).enumerate() {
        let pad = " ".repeat(w.saturating_sub(cell.chars().count()));
        s.push_str("  ");
        if i == 0 {
            s.push_str(cell);
            s.push_str(&pad);
        } else {
            s.push_str(&pad);
            s.push_str(cell);
        }
    }
    out.push_str(s.trim_end());
    out.push('\n');
}

/// The report as plain text for a terminal: headline figures, tier mix, top models and the
/// `group_by` lines when present.
pub fn render_table(report: &Report) -> String {
    let r = report;
    let mut out = String::new();
    let tenant = match &r.tenant {
        Some(t) => format!("tenant {}", terminal_safe(t)),
        None => "all tenants".to_string(),
    };
    out.push_str(&format!(
        "tierwise cost report: {} to {} ({tenant})\n\n",
        r.from, r.to
    ));
    let rows = headline(r);
    let width = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    for (label, value) in &rows {
        out.push_str(&format!("  {label:<width$}  {value}\n"));
    }

    out.push_str("\nTier mix\n");
    let tier_rows: Vec<Vec<String>> = r
        .tiers
        .iter()
        .map(|(name, t)| {
            vec![
                terminal_safe(name),
                fmt_count(t.queries),
                fmt_share(t.share),
                fmt_usd(t.cost_usd),
                fmt_usd(t.baseline_cost_usd),
            ]
        })
        .collect();
    text_table(
        &mut out,
        &["tier", "queries", "share", "cost", "baseline"],
        &tier_rows,
    );

    out.push_str("\nTop models by cost\n");
    let models = models_by_cost(r);
    if models.is_empty() {
        out.push_str("  (no traffic)\n");
    } else {
        let model_rows: Vec<Vec<String>> = models
            .iter()
            .take(TOP_MODELS)
            .map(|(name, m)| {
                vec![
                    terminal_safe(name),
                    m.tier.as_str().to_string(),
                    fmt_count(m.queries),
                    fmt_usd(m.cost_usd),
                    fmt_usd(m.baseline_cost_usd),
                ]
            })
            .collect();
        text_table(
            &mut out,
            &["model", "tier", "queries", "cost", "baseline"],
            &model_rows,
        );
        if models.len() > TOP_MODELS {
            out.push_str(&format!("  ... and {} more\n", models.len() - TOP_MODELS));
        }
    }

    if let Some(groups) = &r.groups {
        let title = groups_title(groups);
        out.push_str(&format!("\nBy {title}\n"));
        let rows: Vec<Vec<String>> = groups
            .iter()
            .map(|g| group_cells(g, terminal_safe(&g.key)))
            .collect();
        let mut headers = GROUP_HEADERS;
        headers[0] = title;
        headers[5] = "savings %";
        text_table(&mut out, &headers, &rows);
    }
    out
}

/// Escapes text for HTML element content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const COST_COLOR: &str = "#2f6fb3";
const BASELINE_COLOR: &str = "#8a8f98";
const TIER_COLORS: [&str; 3] = ["#4e9a6a", "#e0a030", "#c8504a"];

/// Chart geometry (SVG user units).
const CHART_W: f64 = 760.0;
const CHART_H: f64 = 280.0;
const PAD_LEFT: f64 = 76.0;
const PAD_RIGHT: f64 = 16.0;
const PAD_TOP: f64 = 30.0;
const PAD_BOTTOM: f64 = 46.0;

/// A round step (1, 2 or 5 x 10^k) and a number of steps (1..=5) covering `0..=max`.
fn nice_scale(max: f64, integer: bool) -> (f64, usize) {
    if !(max.is_finite() && max > 0.0) {
        return (1.0, 1);
    }
    let raw = max / 4.0;
    let pow = 10f64.powf(raw.log10().floor());
    let mut step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * pow)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * pow);
    if integer {
        step = step.max(1.0).round();
    }
    let steps = ((max / step) - 1e-9).ceil().max(1.0) as usize;
    (step, steps)
}

/// Where the x-axis labels go: about 8 of them at most.
fn label_every(n: usize) -> usize {
    n.div_ceil(8).max(1)
}

/// `MM-DD` of a `YYYY-MM-DD` day (the year is in the title).
fn short_day(day: &str) -> &str {
    day.get(5..).unwrap_or(day)
}

fn svg_open(out: &mut String, label: &str) {
    out.push_str(&format!(
        "<svg viewBox=\"0 0 {CHART_W} {CHART_H}\" role=\"img\" aria-label=\"{}\" \
         class=\"chart\">\n",
        esc(label)
    ));
}

/// Horizontal grid lines with y labels, the axes' titles.
fn svg_axes(
    out: &mut String,
    step: f64,
    steps: usize,
    y_of: &dyn Fn(f64) -> f64,
    fmt: &dyn Fn(f64) -> String,
    y_title: &str,
    x_title: &str,
) {
    for k in 0..=steps {
        let v = step * k as f64;
        let y = y_of(v);
        out.push_str(&format!(
            "<line x1=\"{PAD_LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" class=\"grid\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"ylab\">{}</text>\n",
            CHART_W - PAD_RIGHT,
            PAD_LEFT - 6.0,
            y + 4.0,
            esc(&fmt(v))
        ));
    }
    out.push_str(&format!(
        "<text x=\"14\" y=\"{:.1}\" class=\"axis-title\" transform=\"rotate(-90 14 {:.1})\">{}</text>\n\
         <text x=\"{:.1}\" y=\"{:.1}\" class=\"axis-title\">{}</text>\n",
        PAD_TOP + (CHART_H - PAD_TOP - PAD_BOTTOM) / 2.0,
        PAD_TOP + (CHART_H - PAD_TOP - PAD_BOTTOM) / 2.0,
        esc(y_title),
        PAD_LEFT + (CHART_W - PAD_LEFT - PAD_RIGHT) / 2.0,
        CHART_H - 6.0,
        esc(x_title)
    ));
}

/// A legend entry at (`x`, 16): a swatch and a label; returns the x of the next entry.
fn svg_legend(out: &mut String, x: f64, color: &str, dashed: bool, label: &str) -> f64 {
    let dash = if dashed {
        " stroke-dasharray=\"6 4\""
    } else {
        ""
    };
    out.push_str(&format!(
        "<line x1=\"{x:.1}\" y1=\"12\" x2=\"{:.1}\" y2=\"12\" stroke=\"{color}\" \
         stroke-width=\"6\"{dash}/>\n<text x=\"{:.1}\" y=\"16\" class=\"legend\">{}</text>\n",
        x + 18.0,
        x + 24.0,
        esc(label)
    ));
    x + 34.0 + 7.0 * label.chars().count() as f64
}

/// A figure of a day (a chart series).
type DayValue = fn(&DayLine) -> f64;

/// Daily spend against the baseline's, as two lines.
fn spend_chart(r: &Report) -> String {
    let n = r.days.len();
    if n == 0 {
        return "<p class=\"muted\">No days in the range.</p>\n".to_string();
    }
    let max = r
        .days
        .iter()
        .flat_map(|d| [d.cost_usd, d.baseline_cost_usd])
        .fold(0.0, f64::max);
    let (step, steps) = nice_scale(max, false);
    let top = step * steps as f64;
    let plot_w = CHART_W - PAD_LEFT - PAD_RIGHT;
    let plot_h = CHART_H - PAD_TOP - PAD_BOTTOM;
    let x_of = |i: usize| {
        if n == 1 {
            PAD_LEFT + plot_w / 2.0
        } else {
            PAD_LEFT + plot_w * i as f64 / (n - 1) as f64
        }
    };
    let y_of = |v: f64| PAD_TOP + plot_h * (1.0 - (v / top).clamp(0.0, 1.0));

    let mut out = String::new();
    svg_open(&mut out, "Daily spend against the baseline model's");
    svg_axes(
        &mut out,
        step,
        steps,
        &y_of,
        &fmt_usd,
        "USD per day",
        "day (UTC)",
    );
    for i in (0..n).step_by(label_every(n)) {
        if let Some(d) = r.days.get(i) {
            out.push_str(&format!(
                "<text x=\"{:.1}\" y=\"{:.1}\" class=\"xlab\">{}</text>\n",
                x_of(i),
                PAD_TOP + plot_h + 16.0,
                esc(short_day(&d.day))
            ));
        }
    }
    let series: [(&str, &str, bool, DayValue); 2] = [
        ("baseline", BASELINE_COLOR, true, |d| d.baseline_cost_usd),
        ("actual cost", COST_COLOR, false, |d| d.cost_usd),
    ];
    for (name, color, dashed, value) in series {
        let points: Vec<String> = r
            .days
            .iter()
            .enumerate()
            .map(|(i, d)| format!("{:.1},{:.1}", x_of(i), y_of(value(d))))
            .collect();
        let dash = if dashed {
            " stroke-dasharray=\"6 4\""
        } else {
            ""
        };
        out.push_str(&format!(
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"{dash}/>\n",
            points.join(" ")
        ));
        if n <= 62 {
            for (i, d) in r.days.iter().enumerate() {
                out.push_str(&format!(
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{color}\">\
                     <title>{} {name}: {}</title></circle>\n",
                    x_of(i),
                    y_of(value(d)),
                    esc(&d.day),
                    esc(&fmt_usd(value(d)))
                ));
            }
        }
    }
    let x = svg_legend(&mut out, PAD_LEFT, COST_COLOR, false, "actual cost");
    svg_legend(
        &mut out,
        x,
        BASELINE_COLOR,
        true,
        "baseline model, same tokens",
    );
    out.push_str("</svg>\n");
    out
}

/// Queries per day, stacked by tier.
fn tier_chart(r: &Report) -> String {
    let n = r.days.len();
    if n == 0 {
        return String::new();
    }
    let tier_queries = |d: &DayLine, t: Tier| d.tiers.get(t.as_str()).copied().unwrap_or(0);
    let max = r
        .days
        .iter()
        .map(|d| Tier::ALL.iter().map(|t| tier_queries(d, *t)).sum::<u64>())
        .max()
        .unwrap_or(0);
    let (step, steps) = nice_scale(max as f64, true);
    let top = step * steps as f64;
    let plot_w = CHART_W - PAD_LEFT - PAD_RIGHT;
    let plot_h = CHART_H - PAD_TOP - PAD_BOTTOM;
    let band = plot_w / n as f64;
    let bar = (band * 0.8).max(0.5);
    let h_of = |q: u64| plot_h * (q as f64 / top).clamp(0.0, 1.0);
    let y_of = |v: f64| PAD_TOP + plot_h * (1.0 - (v / top).clamp(0.0, 1.0));

    let mut out = String::new();
    svg_open(&mut out, "Queries per day by tier");
    svg_axes(
        &mut out,
        step,
        steps,
        &y_of,
        &|v| fmt_count(v.round() as u64),
        "queries per day",
        "day (UTC)",
    );
    for (i, d) in r.days.iter().enumerate() {
        let x = PAD_LEFT + band * i as f64 + (band - bar) / 2.0;
        let mut base = PAD_TOP + plot_h;
        for (t, color) in Tier::ALL.iter().zip(TIER_COLORS) {
            let q = tier_queries(d, *t);
            if q == 0 {
                continue;
            }
            let h = h_of(q);
            base -= h;
            out.push_str(&format!(
                "<rect x=\"{x:.1}\" y=\"{base:.1}\" width=\"{bar:.1}\" height=\"{h:.1}\" \
                 fill=\"{color}\"><title>{} {}: {} queries</title></rect>\n",
                esc(&d.day),
                t.as_str(),
                fmt_count(q)
            ));
        }
        if i % label_every(n) == 0 {
            out.push_str(&format!(
                "<text x=\"{:.1}\" y=\"{:.1}\" class=\"xlab\">{}</text>\n",
                PAD_LEFT + band * (i as f64 + 0.5),
                PAD_TOP + plot_h + 16.0,
                esc(short_day(&d.day))
            ));
        }
    }
    let mut x = PAD_LEFT;
    for (t, color) in Tier::ALL.iter().zip(TIER_COLORS) {
        let share = r.tiers.get(t.as_str()).and_then(|l| l.share);
        let label = format!("{} {}", t.as_str(), fmt_share(share));
        x = svg_legend(&mut out, x, color, false, &label);
    }
    out.push_str("</svg>\n");
    out
}

/// The whole range's tier mix as one 100% bar.
fn mix_bar(r: &Report) -> String {
    let mut out = String::from("<div class=\"mix\" role=\"img\" aria-label=\"Tier mix\">");
    let mut any = false;
    for (t, color) in Tier::ALL.iter().zip(TIER_COLORS) {
        let share = r.tiers.get(t.as_str()).and_then(|l| l.share).unwrap_or(0.0);
        if share <= 0.0 {
            continue;
        }
        any = true;
        let pct = share * 100.0;
        let text = if pct >= 8.0 {
            format!("{} {pct:.1}%", t.as_str())
        } else {
            String::new()
        };
        out.push_str(&format!(
            "<span style=\"width:{pct:.3}%;background:{color}\" title=\"{} {pct:.1}%\">{text}</span>",
            t.as_str()
        ));
    }
    if !any {
        out.push_str("<span class=\"empty\">no traffic</span>");
    }
    out.push_str("</div>\n");
    out
}

fn html_table(out: &mut String, headers: &[&str], rows: &[Vec<String>]) {
    out.push_str("<table>\n<thead><tr>");
    for (i, h) in headers.iter().enumerate() {
        let class = if i == 0 { "" } else { " class=\"num\"" };
        out.push_str(&format!("<th{class}>{}</th>", esc(h)));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in rows {
        out.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            let class = if i == 0 { "" } else { " class=\"num\"" };
            out.push_str(&format!("<td{class}>{}</td>", esc(cell)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
}

const STYLE: &str = "\
:root{color-scheme:light;--fg:#1d2330;--muted:#5d6675;--line:#dfe3ea;--bg:#f6f7f9}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);\
font:15px/1.45 system-ui,-apple-system,\"Segoe UI\",Roboto,Helvetica,Arial,sans-serif}
main{max-width:880px;margin:0 auto;padding:28px 20px 48px}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:17px;margin:32px 0 10px}
.muted,.sub{color:var(--muted)}
.sub{margin:0 0 20px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:12px}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:12px 14px}
.card .k{color:var(--muted);font-size:13px}
.card .v{font-size:21px;font-weight:600;font-variant-numeric:tabular-nums}
.card .d{color:var(--muted);font-size:13px}
.chart{width:100%;height:auto;background:#fff;border:1px solid var(--line);border-radius:8px;\
margin:0 0 12px}
.chart text{font-size:12px;fill:var(--muted)}
.chart .ylab{text-anchor:end}
.chart .xlab,.chart .axis-title{text-anchor:middle}
.chart .legend{fill:var(--fg)}
.chart .grid{stroke:var(--line);stroke-width:1}
.mix{display:flex;height:28px;border-radius:6px;overflow:hidden;margin:0 0 12px;\
background:var(--line)}
.mix span{display:flex;align-items:center;justify-content:center;color:#fff;font-size:12px;\
white-space:nowrap;overflow:hidden}
.mix .empty{color:var(--muted);width:100%}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid var(--line)}
th,td{padding:6px 10px;border-bottom:1px solid var(--line);text-align:left}
th{font-size:13px;color:var(--muted);font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
td:first-child{word-break:break-all}
footer{margin-top:32px;color:var(--muted);font-size:13px}
";

/// The report as a self-contained HTML page (no scripts, external styles, fonts or other
/// requests; a content security policy forbids them): headline cards, daily spend against the
/// baseline's and the tier mix as inline SVG charts, and the headline, tier, model and
/// `group_by` tables. Every string from the data is escaped.
pub fn render_html(report: &Report) -> String {
    let r = report;
    let tenant = match &r.tenant {
        Some(t) => format!("tenant {}", esc(t)),
        None => "all tenants".to_string(),
    };
    let range = format!("{} to {}", esc(&r.from), esc(&r.to));
    let mut out = String::new();
    out.push_str(&format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'\">\n\
         <title>tierwise cost report, {range}</title>\n<style>\n{STYLE}</style>\n</head>\n\
         <body>\n<main>\n<h1>tierwise cost report</h1>\n<p class=\"sub\">{range} (UTC), \
         {tenant}</p>\n"
    ));

    let cards = [
        (
            "Cost",
            fmt_usd(r.cost_usd),
            format!("{} queries", fmt_count(r.queries)),
        ),
        (
            "Baseline",
            fmt_usd(r.baseline_cost_usd),
            "same tokens, baseline model".to_string(),
        ),
        (
            "Savings",
            fmt_usd(r.savings_usd),
            format!("{} of the baseline", fmt_pct(r.savings_pct)),
        ),
        (
            "Per 1K queries",
            fmt_usd_opt(r.cost_per_1k_usd),
            format!("baseline {}", fmt_usd_opt(r.baseline_cost_per_1k_usd)),
        ),
    ];
    out.push_str("<section class=\"cards\">\n");
    for (k, v, d) in &cards {
        out.push_str(&format!(
            "<div class=\"card\"><div class=\"k\">{}</div><div class=\"v\">{}</div>\
             <div class=\"d\">{}</div></div>\n",
            esc(k),
            esc(v),
            esc(d)
        ));
    }
    out.push_str("</section>\n");

    out.push_str("<h2>Daily spend</h2>\n");
    out.push_str(&spend_chart(r));

    out.push_str("<h2>Tier mix</h2>\n");
    out.push_str(&mix_bar(r));
    out.push_str(&tier_chart(r));
    let tier_rows: Vec<Vec<String>> = r
        .tiers
        .iter()
        .map(|(name, t)| {
            vec![
                name.clone(),
                fmt_count(t.queries),
                fmt_share(t.share),
                fmt_usd(t.cost_usd),
                fmt_usd(t.baseline_cost_usd),
            ]
        })
        .collect();
    html_table(
        &mut out,
        &["Tier", "Queries", "Share", "Cost", "Baseline"],
        &tier_rows,
    );

    out.push_str("<h2>Headline figures</h2>\n");
    let rows: Vec<Vec<String>> = headline(r)
        .into_iter()
        .map(|(k, v)| vec![k.to_string(), v])
        .collect();
    html_table(&mut out, &["Figure", "Value"], &rows);

    out.push_str("<h2>Models</h2>\n");
    let models = models_by_cost(r);
    if models.is_empty() {
        out.push_str("<p class=\"muted\">No traffic in the range.</p>\n");
    } else {
        let rows: Vec<Vec<String>> = models
            .iter()
            .map(|(name, m)| {
                vec![
                    (*name).clone(),
                    m.tier.as_str().to_string(),
                    fmt_count(m.queries),
                    fmt_usd(m.cost_usd),
                    fmt_usd(m.baseline_cost_usd),
                ]
            })
            .collect();
        html_table(
            &mut out,
            &["Model", "Tier", "Queries", "Cost", "Baseline"],
            &rows,
        );
    }

    if let Some(groups) = &r.groups {
        let title = groups_title(groups);
        out.push_str(&format!("<h2>By {title}</h2>\n"));
        let rows: Vec<Vec<String>> = groups
            .iter()
            .map(|g| group_cells(g, g.key.clone()))
            .collect();
        let mut headers = GROUP_HEADERS;
        headers[0] = title;
        headers[5] = "savings %";
        html_table(&mut out, &headers, &rows);
    }

    out.push_str(&format!(
        "<footer>Generated by tierwise from {} rows. Costs are the routed queries' \
         estimated or reported token costs; the baseline prices the same tokens at the \
         baseline model. Router latency percentiles are histogram bucket upper bounds.\
         </footer>\n</main>\n</body>\n</html>\n",
        fmt_count(r.rows_read)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::records::{CostRecord, LATENCY_BUCKETS, RecordStatus};

    fn params(from: &str, to: &str, tenant: Option<&str>, group_by: Option<&str>) -> ReportParams {
        ReportParams::parse(Some(from), Some(to), tenant, group_by).unwrap()
    }

    fn err(
        from: Option<&str>,
        to: Option<&str>,
        tenant: Option<&str>,
        group_by: Option<&str>,
    ) -> String {
        match ReportParams::parse(from, to, tenant, group_by) {
            Err(ReportError::InvalidParam(m)) => m,
            Ok(p) => panic!("accepted {p:?}"),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn row(
        day: &str,
        tenant: &str,
        tier: Tier,
        model: &str,
        queries: u64,
        cost_nanos: i64,
        baseline_nanos: i64,
        escalations: u64,
        rule_decisions: u64,
        latency: &[(usize, u64)],
        router_ms_sum: f64,
    ) -> RollupRow {
        let mut hist = [0; LATENCY_BUCKETS];
        for (bucket, n) in latency {
            hist[*bucket] += n;
        }
        RollupRow {
            day: day.into(),
            tenant: tenant.into(),
            tier,
            model: model.into(),
            counters: Counters {
                queries,
                input_tokens: 100 * queries,
                output_tokens: 200 * queries,
                cost_nanos,
                baseline_cost_nanos: baseline_nanos,
                escalations,
                rule_decisions,
                shadow_samples: 0,
                upstream_errors: 0,
                router_ms_sum,
                latency: hist,
            },
        }
    }

    const DS: &str = "deepseek/deepseek-v3";
    const MINI: &str = "openai/gpt-4o-mini";

    /// Three days for `acme`: 6 + 3 queries on the 1st, none on the 2nd, 1 on the 3rd; plus
    /// rows the report must skip.
    fn rows() -> Vec<RollupRow> {
        let mut a = row(
            "2026-11-01",
            "acme",
            Tier::Tier1,
            DS,
            6,
            600_000,
            30_000_000,
            0,
            4,
            &[(4, 6)],
            30.0,
        );
        a.counters.shadow_samples = 1;
        let mut b = row(
            "2026-11-01",
            "acme",
            Tier::Tier2,
            MINI,
            3,
            1_500_000,
            15_000_000,
            2,
            0,
            &[(7, 3)],
            30.0,
        );
        b.counters.upstream_errors = 1;
        let c = row(
            "2026-11-03",
            "acme",
            Tier::Tier1,
            DS,
            1,
            100_000,
            5_000_000,
            0,
            0,
            &[(17, 1)],
            120.0,
        );
        // Out of the range, of another tenant, or not a day: skipped.
        let skip = |day: &str, tenant: &str| {
            row(
                day,
                tenant,
                Tier::Tier3,
                "openai/gpt-4o",
                5,
                9,
                9,
                0,
                0,
                &[],
                0.0,
            )
        };
        vec![
            a,
            skip("2026-10-31", "acme"),
            b,
            skip("2026-11-04", "acme"),
            skip("2026-11-02", "other"),
            c,
            skip("garbage", "acme"),
        ]
    }

    fn build(p: &ReportParams, rows: &[RollupRow]) -> Report {
        let mut b = ReportBuilder::new(p);
        for r in rows {
            b.add(r);
        }
        b.finish()
    }

    fn acme_report(group_by: Option<&str>) -> Report {
        build(
            &params("2026-11-01", "2026-11-03", Some("acme"), group_by),
            &rows(),
        )
    }

    #[test]
    fn verdict_rollups_give_agreement_and_shadow_spend_apart_from_user_cost() {
        use crate::shadow::evaluator::{EvalRollupKey, EvalRollupRow, VerdictCounters};
        let p = params("2026-11-01", "2026-11-02", Some("acme"), None);
        let mut b = ReportBuilder::new(&p);
        let v =
            |day: &str, tenant: &str, tier: Tier, eq: u64, worse: u64, better: u64| EvalRollupRow {
                key: EvalRollupKey {
                    day: day.into(),
                    tenant: tenant.into(),
                    tier,
                    model: "m".into(),
                    reference_model: "openai/gpt-4o".into(),
                },
                counters: VerdictCounters {
                    evaluations: eq + worse + better,
                    equivalent: eq,
                    worse,
                    better,
                    shadow_cost_nanos: 1_500_000,
                    ..VerdictCounters::default()
                },
            };
        b.add_evaluations(&v("2026-11-01", "acme", Tier::Tier1, 18, 1, 1));
        b.add_evaluations(&v("2026-11-02", "acme", Tier::Tier2, 9, 1, 0));
        // Another tenant and a day out of range are not counted.
        b.add_evaluations(&v("2026-11-02", "other", Tier::Tier1, 0, 50, 0));
        b.add_evaluations(&v("2026-11-03", "acme", Tier::Tier1, 0, 50, 0));
        let r = b.finish();
        assert_eq!(
            (
                r.shadow.evaluations,
                r.shadow.equivalent,
                r.shadow.worse,
                r.shadow.better
            ),
            (30, 27, 2, 1)
        );
        assert_eq!(r.shadow.agreement_rate, Some(round_to(28.0 / 30.0, 6)));
        assert_eq!(r.shadow.shadow_cost_usd, 0.003);
        assert_eq!(r.shadow.tiers["tier1"].agreement_rate, Some(0.95));
        assert_eq!(r.shadow.tiers["tier2"].evaluations, 10);
        assert!(!r.shadow.tiers.contains_key("tier3"));
        // Shadow spend is not user traffic.
        assert_eq!(r.cost_usd, 0.0);
        assert!(render_table(&r).contains("93.3% of 30 evaluated"));
    }

    #[test]
    fn valid_params_parse() {
        let p = params("2026-11-01", "2026-11-03", Some("acme"), Some("tier"));
        assert_eq!(p.from, time::macros::date!(2026 - 11 - 01));
        assert_eq!(p.to, time::macros::date!(2026 - 11 - 03));
        assert_eq!(p.tenant.as_deref(), Some("acme"));
        assert_eq!(p.group_by, Some(GroupBy::Tier));
        assert_eq!(p.day_strings(), ["2026-11-01", "2026-11-02", "2026-11-03"]);
        assert_eq!(p.days().count(), 3);
        let one = params("2026-12-31", "2026-12-31", None, None);
        assert_eq!(one.day_strings(), ["2026-12-31"]);
        assert_eq!((one.tenant, one.group_by), (None, None));
        // Empty optional parameters (an HTML form's) are absent.
        let blank = params("2026-02-27", "2026-03-01", Some(""), Some(""));
        assert_eq!(
            blank.day_strings(),
            ["2026-02-27", "2026-02-28", "2026-03-01"]
        );
        assert_eq!((blank.tenant, blank.group_by), (None, None));
        // A leap year's 366 days are allowed.
        assert_eq!(
            params("2024-01-01", "2024-12-31", None, None)
                .days()
                .count(),
            366
        );
    }

    #[test]
    fn bad_params_say_which_and_why() {
        let m = err(Some("2026-13-01"), Some("2026-12-01"), None, None);
        assert_eq!(m, "`from` must be a date YYYY-MM-DD, got \"2026-13-01\"");
        let m = err(Some("2026-11-01"), Some("2026-02-30"), None, None);
        assert_eq!(m, "`to` must be a date YYYY-MM-DD, got \"2026-02-30\"");
        for bad in [
            "2026-1-01",
            "",
            "20261101",
            "+2026-11-01",
            "2026-11-01T00:00:00Z",
            "1 week",
        ] {
            let m = err(Some(bad), Some("2026-12-01"), None, None);
            assert!(
                m.starts_with("`from` must be a date YYYY-MM-DD"),
                "{bad}: {m}"
            );
        }
        let m = err(None, Some("2026-12-01"), None, None);
        assert!(m.contains("`from` is required"), "{m}");
        let m = err(Some("2026-12-01"), None, None, None);
        assert!(m.contains("`to` is required"), "{m}");
        let m = err(Some("2026-11-02"), Some("2026-11-01"), None, None);
        assert_eq!(m, "`from` (2026-11-02) is after `to` (2026-11-01)");
        let m = err(Some("2025-01-01"), Some("2026-02-04"), None, None);
        assert_eq!(m, "the range is 400 days; the limit is 366");
        // (2025 is not a leap year: 2025-01-01..=2026-01-01 is 366 days, allowed.)
        assert!(ReportParams::parse(Some("2025-01-01"), Some("2026-01-01"), None, None).is_ok());
        assert!(ReportParams::parse(Some("2025-01-01"), Some("2026-01-02"), None, None).is_err());
        let m = err(Some("2026-11-01"), Some("2026-11-02"), Some("a#b"), None);
        assert!(m.starts_with("`tenant` must be"), "{m}");
        let m = err(Some("2026-11-01"), Some("2026-11-02"), None, Some("week"));
        assert_eq!(
            m,
            "`group_by` must be one of day, tier, model, got \"week\""
        );
        let long = "x".repeat(500);
        let m = err(Some(&long), Some("2026-11-02"), None, None);
        assert!(m.len() < 120, "{m}");
        let e = ReportParams::parse(None, None, None, None).unwrap_err();
        assert_eq!(e.status(), 400);
    }

    #[test]
    fn group_by_parses_and_names_itself() {
        for g in GroupBy::ALL {
            assert_eq!(g.as_str().parse::<GroupBy>().unwrap(), g);
            assert_eq!(g.to_string(), g.as_str());
        }
        assert!("Day".parse::<GroupBy>().is_err());
    }

    #[test]
    fn builder_sums_hand_made_rows() {
        let r = acme_report(None);
        assert_eq!(
            (r.from.as_str(), r.to.as_str()),
            ("2026-11-01", "2026-11-03")
        );
        assert_eq!(r.tenant.as_deref(), Some("acme"));
        assert_eq!(r.rows_read, 3);
        assert_eq!(r.queries, 10);
        assert_eq!(r.cost_usd, 0.0022);
        assert_eq!(r.baseline_cost_usd, 0.05);
        assert_eq!(r.savings_usd, 0.0478);
        assert_eq!(r.savings_pct, Some(95.6));
        assert_eq!(r.cost_per_1k_usd, Some(0.22));
        assert_eq!(r.baseline_cost_per_1k_usd, Some(5.0));
        assert_eq!(r.escalation_rate, Some(0.2));
        assert_eq!(r.rule_share, Some(0.4));
        assert_eq!(r.classifier_share, Some(0.6));
        assert_eq!(r.upstream_error_rate, Some(0.1));
        assert_eq!((r.input_tokens, r.output_tokens), (1_000, 2_000));
        assert_eq!(
            r.shadow,
            ShadowLine {
                samples: 1,
                ..ShadowLine::default()
            }
        );
        // 10 samples: rank 5 is in bucket 4 (<= 5 ms), rank 10 in bucket 17 (<= 150 ms).
        assert_eq!(
            r.router_ms,
            Some(LatencySummary {
                p50: 5.0,
                p99: 150.0,
                mean: 18.0
            })
        );
        assert_eq!(r.groups, None);

        let tiers: Vec<(&str, u64, f64, f64, Option<f64>)> = r
            .tiers
            .iter()
            .map(|(k, t)| {
                (
                    k.as_str(),
                    t.queries,
                    t.cost_usd,
                    t.baseline_cost_usd,
                    t.share,
                )
            })
            .collect();
        assert_eq!(
            tiers,
            [
                ("tier1", 7, 0.0007, 0.035, Some(0.7)),
                ("tier2", 3, 0.0015, 0.015, Some(0.3)),
                ("tier3", 0, 0.0, 0.0, Some(0.0)),
            ]
        );
        assert_eq!(r.models.len(), 2);
        assert_eq!(
            r.models[DS],
            ModelLine {
                tier: Tier::Tier1,
                queries: 7,
                cost_usd: 0.0007,
                baseline_cost_usd: 0.035
            }
        );
        assert_eq!(r.models[MINI].tier, Tier::Tier2);
        assert_eq!(r.models[MINI].queries, 3);

        let days: Vec<(&str, u64, f64, f64, Vec<u64>)> = r
            .days
            .iter()
            .map(|d| {
                let tiers = d.tiers.values().copied().collect();
                (
                    d.day.as_str(),
                    d.queries,
                    d.cost_usd,
                    d.baseline_cost_usd,
                    tiers,
                )
            })
            .collect();
        assert_eq!(
            days,
            [
                ("2026-11-01", 9, 0.0021, 0.045, vec![6, 3, 0]),
                ("2026-11-02", 0, 0.0, 0.0, vec![0, 0, 0]),
                ("2026-11-03", 1, 0.0001, 0.005, vec![1, 0, 0]),
            ]
        );
        assert!(
            r.days
                .iter()
                .all(|d| d.tiers.keys().eq(["tier1", "tier2", "tier3"]))
        );
    }

    #[test]
    fn all_tenants_count_every_tenant_in_range() {
        let r = build(&params("2026-11-01", "2026-11-03", None, None), &rows());
        assert_eq!(r.tenant, None);
        assert_eq!((r.rows_read, r.queries), (4, 15));
        assert_eq!(r.tiers["tier3"].queries, 5);
        assert_eq!(r.models["openai/gpt-4o"].tier, Tier::Tier3);
    }

    #[test]
    fn empty_report_has_every_day_and_tier_and_no_ratios() {
        let r = build(&params("2026-11-01", "2026-11-02", None, Some("tier")), &[]);
        assert_eq!((r.queries, r.rows_read, r.cost_usd), (0, 0, 0.0));
        assert_eq!(r.savings_pct, None);
        assert_eq!(r.cost_per_1k_usd, None);
        assert_eq!(r.baseline_cost_per_1k_usd, None);
        assert_eq!(r.escalation_rate, None);
        assert_eq!(r.rule_share, None);
        assert_eq!(r.router_ms, None);
        assert_eq!(r.days.len(), 2);
        assert_eq!(r.tiers.len(), 3);
        assert!(r.tiers.values().all(|t| t.share.is_none()));
        assert!(r.models.is_empty());
        let groups = r.groups.as_ref().unwrap();
        assert_eq!(groups.len(), 3);
        assert!(groups.iter().all(|g| g.savings_pct.is_none()));
        // Renderers cope with no traffic.
        assert!(render_table(&r).contains("(no traffic)"));
        assert!(render_html(&r).contains("no traffic"));
    }

    #[test]
    fn percentiles_are_nearest_rank_bucket_bounds() {
        let mut c = Counters::default();
        assert_eq!(latency_summary(&c), None);
        // 100 samples: 50 <= 1 ms, 49 <= 10 ms (bucket 7), 1 above 1000 ms (overflow).
        c.latency[0] = 50;
        c.latency[7] = 49;
        c.latency[LATENCY_BUCKETS - 1] = 1;
        c.queries = 100;
        c.router_ms_sum = 1234.5678;
        let l = latency_summary(&c).unwrap();
        assert_eq!((l.p50, l.p99, l.mean), (1.0, 10.0, 12.346));
        // One more above 1000 ms: rank ceil(0.99 * 101) = 100 is the first overflow sample,
        // reported as the last bound.
        c.latency[LATENCY_BUCKETS - 1] = 2;
        c.queries = 101;
        let l = latency_summary(&c).unwrap();
        assert_eq!((l.p50, l.p99), (10.0, 1000.0));
        // A single sample is both percentiles.
        let mut one = Counters::default();
        one.latency[12] = 1;
        let l = latency_summary(&one).unwrap();
        assert_eq!(
            (l.p50, l.p99),
            (LATENCY_BOUNDS_MS[12], LATENCY_BOUNDS_MS[12])
        );
    }

    #[test]
    fn group_by_day_tier_and_model() {
        let r = acme_report(Some("day"));
        let g = r.groups.unwrap();
        let keys: Vec<&str> = g.iter().map(|l| l.key.as_str()).collect();
        assert_eq!(keys, ["2026-11-01", "2026-11-02", "2026-11-03"]);
        assert_eq!(
            g[0],
            GroupLine {
                key: "2026-11-01".into(),
                queries: 9,
                cost_usd: 0.0021,
                baseline_cost_usd: 0.045,
                savings_usd: 0.0429,
                savings_pct: Some(95.3333),
                cost_per_1k_usd: Some(0.233333333),
                escalation_rate: Some(0.222222),
            }
        );
        assert_eq!(
            (g[1].queries, g[1].cost_per_1k_usd, g[1].savings_pct),
            (0, None, None)
        );

        let g = acme_report(Some("tier")).groups.unwrap();
        let keys: Vec<(&str, u64)> = g.iter().map(|l| (l.key.as_str(), l.queries)).collect();
        assert_eq!(keys, [("tier1", 7), ("tier2", 3), ("tier3", 0)]);
        assert_eq!(g[1].escalation_rate, Some(0.666667));
        assert_eq!(g[1].savings_pct, Some(90.0));

        let g = acme_report(Some("model")).groups.unwrap();
        let keys: Vec<(&str, f64)> = g.iter().map(|l| (l.key.as_str(), l.cost_usd)).collect();
        assert_eq!(keys, [(MINI, 0.0015), (DS, 0.0007)]);
        assert_eq!(g[1].cost_per_1k_usd, Some(0.1));
    }

    #[test]
    fn money_sums_exactly() {
        let rec = CostRecord {
            record: "cost".into(),
            query_id: "q".into(),
            ts: "2026-11-05T10:00:00.000Z".into(),
            tenant: "acme".into(),
            model: DS.into(),
            tier: Tier::Tier1,
            predicted_tier: Tier::Tier1,
            confidence: 0.9,
            escalated: false,
            decided_by: crate::routing::decision::DecidedBy::Classifier,
            task_kind: None,
            input_tokens: 1,
            output_tokens: 1,
            tokens_estimated: true,
            cost_usd: 0.000000123,
            baseline_model: "openai/gpt-4o".into(),
            baseline_cost_usd: 0.000001,
            router_ms: 3.0,
            upstream_ms: None,
            status: RecordStatus::Routed,
            shadow: false,
            pricing_version: "p".into(),
            router_version: "r".into(),
            upstream: None,
        };
        let p = params("2026-11-05", "2026-11-05", None, None);
        let mut b = ReportBuilder::new(&p);
        for _ in 0..1000 {
            b.add(&RollupRow::of_record(&rec));
        }
        let r = b.finish();
        assert_eq!(r.cost_usd, 0.000123);
        assert_eq!(r.baseline_cost_usd, 0.001);
        assert_eq!(r.savings_usd, 0.000877);
        assert_eq!(r.cost_per_1k_usd, Some(0.000123));
        assert_eq!(r.classifier_share, Some(1.0));
        assert_eq!(r.rows_read, 1000);
        assert_eq!(
            serde_json::to_value(&r).unwrap()["cost_usd"].to_string(),
            "0.000123"
        );
    }

    #[test]
    fn json_has_the_contract_keys() {
        let r = acme_report(Some("model"));
        let v = serde_json::to_value(&r).unwrap();
        for key in [
            "from",
            "to",
            "queries",
            "cost_usd",
            "baseline_cost_usd",
            "savings_usd",
            "savings_pct",
            "cost_per_1k_usd",
            "baseline_cost_per_1k_usd",
            "escalation_rate",
            "tiers",
            "models",
            "rule_share",
            "classifier_share",
            "router_ms",
            "shadow",
            "days",
            "groups",
            "rows_read",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert_eq!(v["from"], "2026-11-01");
        assert_eq!(v["cost_usd"], 0.0022);
        assert_eq!(v["tiers"]["tier1"]["queries"], 7);
        assert_eq!(v["tiers"]["tier1"]["cost_usd"], 0.0007);
        assert_eq!(v["tiers"]["tier3"]["queries"], 0);
        assert_eq!(v["models"][DS]["queries"], 7);
        assert_eq!(v["models"][DS]["cost_usd"], 0.0007);
        assert_eq!(v["models"][DS]["tier"], "tier1");
        assert_eq!(v["shadow"]["samples"], 1);
        assert_eq!(v["shadow"]["evaluations"], 0);
        assert!(v["shadow"]["agreement_rate"].is_null());
        assert_eq!(v["router_ms"]["p99"], 150.0);
        let back: Report = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
        // Without group_by there is no `groups` key; null ratios stay as keys.
        let v = serde_json::to_value(build(&params("2026-11-01", "2026-11-01", None, None), &[]))
            .unwrap();
        assert!(v.get("groups").is_none());
        assert_eq!(v["savings_pct"], serde_json::Value::Null);
    }

    #[test]
    fn table_shows_the_key_figures() {
        let t = render_table(&acme_report(Some("tier")));
        for needle in [
            "2026-11-01 to 2026-11-03",
            "tenant acme",
            "$0.0022",
            "$0.0500",
            "$0.0478 (95.6%)",
            "$0.2200",
            "$5.00",
            "20.0%",
            "rules 40.0%, classifier 60.0%",
            "P50 <= 5 ms, P99 <= 150 ms, mean 18.0 ms",
            "Tier mix",
            "tier3",
            DS,
            "By tier",
        ] {
            assert!(t.contains(needle), "missing {needle:?} in\n{t}");
        }
        assert!(render_table(&acme_report(Some("day"))).contains("By day"));
        assert!(render_table(&acme_report(Some("model"))).contains("By model"));
        assert!(!t.lines().any(|l| l.ends_with(' ')));
    }

    #[test]
    fn html_is_self_contained_and_escaped() {
        let mut rows = rows();
        rows[0].model = "<script>alert('x')</script>".into();
        let r = build(
            &params("2026-11-01", "2026-11-03", Some("acme"), Some("model")),
            &rows,
        );
        let h = render_html(&r);
        assert!(h.starts_with("<!DOCTYPE html>"));
        assert!(h.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
        assert!(!h.contains("<script"));
        for forbidden in ["http://", "https://", "<link", "src=", "@import", "url("] {
            assert!(!h.contains(forbidden), "{forbidden}");
        }
        for needle in [
            "<svg",
            "<polyline",
            "<rect",
            "actual cost",
            "baseline model, same tokens",
            "USD per day",
            "queries per day",
            "$0.0022",
            "$0.0478",
            "95.6%",
            "tier1 70.0%",
            "2026-11-01 to 2026-11-03",
            "By model",
        ] {
            assert!(h.contains(needle), "missing {needle:?}");
        }
        assert_eq!(h.matches("<svg").count(), h.matches("</svg>").count());
        assert_eq!(h.matches("<table>").count(), h.matches("</table>").count());
    }

    #[test]
    fn usd_formatting() {
        assert_eq!(fmt_usd(0.0), "$0.00");
        assert_eq!(fmt_usd(1234.5), "$1,234.50");
        assert_eq!(fmt_usd(0.0478), "$0.0478");
        assert_eq!(fmt_usd(0.000123), "$0.000123");
        assert_eq!(fmt_usd(-2.5), "-$2.50");
        assert_eq!(fmt_count(1_234_567), "1,234,567");
        let (step, steps) = nice_scale(0.05, false);
        assert!((step - 0.02).abs() < 1e-12 && steps == 3, "{step} {steps}");
        assert_eq!(nice_scale(40.0, false), (10.0, 4));
        assert_eq!(nice_scale(9.0, true), (5.0, 2));
        assert_eq!(nice_scale(0.0, true), (1.0, 1));
    }
}
