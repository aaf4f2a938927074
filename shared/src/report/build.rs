//! Sums rollup rows into a [`Report`]: money in integer nano-dollars, ratios and percentiles
//! computed once at the end.

use std::collections::BTreeMap;

use super::model::{
    DayLine, GroupLine, LatencySummary, ModelLine, Report, ShadowLine, ShadowTierLine, TierLine,
};
use super::params::{GroupBy, ReportParams, date_string};
use crate::ledger::money::Usd;
use crate::ledger::records::{Counters, LATENCY_BOUNDS_MS, RollupRow};
use crate::routing::pool::Tier;

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
    verdicts: crate::shadow::rollup::VerdictCounters,
    tier_verdicts: [crate::shadow::rollup::VerdictCounters; 3],
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
    pub fn add_evaluations(&mut self, row: &crate::shadow::rollup::EvalRollupRow) {
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
        let classifier_decisions = total.queries.saturating_sub(total.rule_decisions);
        Report {
            queries: total.queries,
            cost_usd: total.cost,
            baseline_cost_usd: total.baseline_cost,
            savings_usd: total.baseline_cost - total.cost,
            savings_pct: savings_pct(total.cost, total.baseline_cost),
            cost_per_1k_usd: per_1k(total.cost, total.queries),
            baseline_cost_per_1k_usd: per_1k(total.baseline_cost, total.queries),
            escalation_rate: ratio(total.escalations, total.queries),
            rule_share: ratio(total.rule_decisions, total.queries),
            classifier_share: ratio(classifier_decisions, total.queries),
            upstream_error_rate: ratio(total.upstream_errors, total.queries),
            input_tokens: total.input_tokens,
            output_tokens: total.output_tokens,
            router_ms: latency_summary(total),
            tiers: self.tier_lines(),
            models: self.model_lines(),
            days: self.day_lines(),
            groups: self.group_by.map(|g| self.group_lines(g)),
            shadow: self.shadow_line(),
            rows_read: self.rows_read,
            from: self.from,
            to: self.to,
            tenant: self.tenant,
        }
    }

    fn tier_lines(&self) -> BTreeMap<String, TierLine> {
        Tier::ALL
            .iter()
            .zip(&self.tiers)
            .map(|(tier, c)| {
                let line = TierLine {
                    queries: c.queries,
                    cost_usd: c.cost,
                    baseline_cost_usd: c.baseline_cost,
                    share: ratio(c.queries, self.total.queries),
                };
                (tier.as_str().to_string(), line)
            })
            .collect()
    }

    fn model_lines(&self) -> BTreeMap<String, ModelLine> {
        self.models
            .iter()
            .map(|(name, m)| {
                let line = ModelLine {
                    tier: model_tier(m),
                    queries: m.counters.queries,
                    cost_usd: m.counters.cost,
                    baseline_cost_usd: m.counters.baseline_cost,
                };
                (name.clone(), line)
            })
            .collect()
    }

    fn day_lines(&self) -> Vec<DayLine> {
        self.days
            .iter()
            .zip(&self.day_counters)
            .zip(&self.day_tiers)
            .map(|((day, c), per_tier)| DayLine {
                day: day.clone(),
                queries: c.queries,
                cost_usd: c.cost,
                baseline_cost_usd: c.baseline_cost,
                tiers: Tier::ALL
                    .iter()
                    .zip(per_tier)
                    .map(|(t, q)| (t.as_str().to_string(), *q))
                    .collect(),
            })
            .collect()
    }

    fn group_lines(&self, g: GroupBy) -> Vec<GroupLine> {
        match g {
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
                        .cost
                        .cmp(&a.1.counters.cost)
                        .then_with(|| a.0.cmp(b.0))
                });
                by_cost
                    .into_iter()
                    .map(|(name, m)| group_line(name, &m.counters))
                    .collect()
            }
        }
    }

    fn shadow_line(&self) -> ShadowLine {
        let v = &self.verdicts;
        ShadowLine {
            samples: self.total.shadow_samples,
            evaluations: v.evaluations,
            equivalent: v.equivalent,
            worse: v.worse,
            better: v.better,
            agreement_rate: v.agreement_rate().map(|a| round_to(a, 6)),
            shadow_cost_usd: v.shadow_cost,
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
        cost_usd: c.cost,
        baseline_cost_usd: c.baseline_cost,
        savings_usd: c.baseline_cost - c.cost,
        savings_pct: savings_pct(c.cost, c.baseline_cost),
        cost_per_1k_usd: per_1k(c.cost, c.queries),
        escalation_rate: ratio(c.escalations, c.queries),
    }
}

pub(super) fn round_to(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

/// `num / den` rounded to 6 decimals; `None` when `den` is 0.
fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| round_to(num as f64 / den as f64, 6))
}

/// Savings in percent of the baseline, 4 decimals; `None` when the baseline is 0.
fn savings_pct(cost: Usd, baseline: Usd) -> Option<f64> {
    let (cost_nanos, baseline_nanos) = (cost.nanos(), baseline.nanos());
    (baseline_nanos != 0).then(|| {
        let saved = baseline_nanos as f64 - cost_nanos as f64;
        round_to(100.0 * saved / baseline_nanos as f64, 4)
    })
}

/// USD per 1000 queries, rounded to the nano-dollar; `None` when there were no queries.
fn per_1k(cost: Usd, queries: u64) -> Option<Usd> {
    (queries > 0).then(|| {
        let nanos_per_1k = (i128::from(cost.nanos()) * 1000) as f64 / queries as f64;
        Usd::from_nanos(nanos_per_1k.round() as i64)
    })
}

/// Percentiles and mean of the router latency; `None` when the histogram is empty.
pub(super) fn latency_summary(c: &Counters) -> Option<LatencySummary> {
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
