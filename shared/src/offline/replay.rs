//! `tierwise eval`: routes every prompt of a routing-benchmark file with the production path
//! and measures the decisions — RouteLLM's metrics for a weak/strong pair (beside a random and
//! a prompt-length router on the same prompts), the routed mix's quality and cost for a
//! tier -> model mapping, or, on labelled task rows, where each kind of ask went.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::offline::dataset::BenchmarkRow;
use crate::offline::scores::{
    ReliabilityBin, RouterMetrics, expected_calibration_error, random_router_metrics, reliability,
    routellm_metrics,
};
use crate::routing::decision::{RouteError, Router, TierChoice};
use crate::routing::pool::{PoolConfig, Tier};

/// Errors of a `tierwise eval` run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("prompt {id}: {source}")]
    Route { id: String, source: RouteError },
    #[error("no prompt of the data has scores for both {0} and {1}")]
    NoRows(String, String),
    #[error(transparent)]
    Metrics(#[from] crate::offline::scores::ScoresError),
    #[error("--tiers: {0}")]
    Tiers(String),
}

/// Routes every row (on `threads` threads), in row order.
pub fn route_all(
    router: &Router,
    rows: &[&BenchmarkRow],
    threshold: f64,
    threads: usize,
) -> Result<Vec<TierChoice>, ReplayError> {
    crate::offline::parallel::try_map(rows, threads, |r| {
        router
            .choose_tier(&r.prompt, threshold)
            .map_err(|source| ReplayError::Route {
                id: r.id.clone(),
                source,
            })
    })
}

/// Result of the weak/strong evaluation.
pub struct WeakStrongReport {
    pub metrics: RouterMetrics,
    pub random: RouterMetrics,
    /// The prompt-length router: score = the prompt's token count.
    pub length: RouterMetrics,
    /// (id, score) per evaluated prompt.
    pub scores: Vec<(String, f64)>,
    /// Rows skipped because the weak or strong model has no score on them.
    pub skipped: usize,
    /// ECE of P(tier1 inadequate) against "the weak model was wrong", classifier-decided rows.
    pub ece_weak_wrong: f64,
    /// Rows decided by a rule.
    pub rule_decided: usize,
}

/// RouteLLM's metrics of the router's strong-model score on `rows`.
pub fn weak_strong(
    router: &Router,
    rows: &[BenchmarkRow],
    weak: &str,
    strong: &str,
    threshold: f64,
    threads: usize,
) -> Result<WeakStrongReport, ReplayError> {
    let usable: Vec<&BenchmarkRow> = rows
        .iter()
        .filter(|r| r.score(weak).is_some() && r.score(strong).is_some())
        .collect();
    if usable.is_empty() {
        return Err(ReplayError::NoRows(weak.into(), strong.into()));
    }
    let choices = route_all(router, &usable, threshold, threads)?;
    let w: Vec<f64> = usable
        .iter()
        .map(|r| r.score(weak).unwrap_or(0.0))
        .collect();
    let s: Vec<f64> = usable
        .iter()
        .map(|r| r.score(strong).unwrap_or(0.0))
        .collect();
    let scores: Vec<f64> = choices.iter().map(|c| c.strong_score).collect();
    let metrics = routellm_metrics(&scores, &w, &s)?;
    let random = random_router_metrics(&w, &s, 20);
    let lengths: Vec<f64> = choices.iter().map(|c| c.input_tokens as f64).collect();
    let length = routellm_metrics(&lengths, &w, &s)?;
    let (probs, wrong): (Vec<f64>, Vec<f64>) = choices
        .iter()
        .zip(&w)
        .filter_map(|(c, w)| c.probs.map(|p| (p.strong, 1.0 - w)))
        .unzip();
    Ok(WeakStrongReport {
        metrics,
        random,
        length,
        scores: usable.iter().map(|r| r.id.clone()).zip(scores).collect(),
        skipped: rows.len() - usable.len(),
        ece_weak_wrong: expected_calibration_error(&probs, &wrong, 10),
        rule_decided: choices.iter().filter(|c| c.probs.is_none()).count(),
    })
}

/// Parses `tier1=MODEL,tier2=MODEL,tier3=MODEL`.
pub fn parse_tier_map(spec: &str) -> Result<BTreeMap<Tier, String>, ReplayError> {
    let mut map = BTreeMap::new();
    for part in spec.split(',').filter(|p| !p.trim().is_empty()) {
        let (tier, model) = part
            .split_once('=')
            .ok_or_else(|| ReplayError::Tiers(format!("`{part}` is not TIER=MODEL")))?;
        let tier: Tier = tier
            .trim()
            .parse()
            .map_err(|e| ReplayError::Tiers(format!("{e}")))?;
        if model.trim().is_empty() {
            return Err(ReplayError::Tiers(format!("no model for {tier}")));
        }
        if map.insert(tier, model.trim().to_string()).is_some() {
            return Err(ReplayError::Tiers(format!("{tier} given twice")));
        }
    }
    for t in Tier::ALL {
        if !map.contains_key(&t) {
            return Err(ReplayError::Tiers(format!("no model for {t}")));
        }
    }
    Ok(map)
}

/// The routed mix on a benchmark (`--tiers` mode).
#[derive(Debug, Clone, Serialize)]
pub struct TiersReport {
    pub n: usize,
    pub threshold: f64,
    /// Mean score of the routed answers, in percent.
    pub quality: f64,
    /// Mean score of the strongest tier's model on the same prompts, in percent.
    pub strongest_quality: f64,
    pub quality_delta_pts: f64,
    pub cost_usd: f64,
    pub baseline_cost_usd: f64,
    pub savings_pct: f64,
    pub cost_source: &'static str,
    pub escalation_rate: f64,
    pub tier_mix: BTreeMap<Tier, f64>,
}

/// Routes every row at `threshold` and prices and scores the mix.
pub fn tiers(
    router: &Router,
    pool: &PoolConfig,
    rows: &[BenchmarkRow],
    map: &BTreeMap<Tier, String>,
    threshold: f64,
    threads: usize,
) -> Result<TiersReport, ReplayError> {
    let strongest = &map[&Tier::Tier3];
    let usable: Vec<&BenchmarkRow> = rows
        .iter()
        .filter(|r| map.values().all(|m| r.score(m).is_some()))
        .collect();
    if usable.is_empty() {
        return Err(ReplayError::NoRows(
            map[&Tier::Tier1].clone(),
            strongest.clone(),
        ));
    }
    let choices = route_all(router, &usable, threshold, threads)?;
    let with_costs = usable
        .iter()
        .all(|r| map.values().all(|m| r.costs_usd.contains_key(m)));
    let (mut quality, mut strong_q, mut cost, mut base) = (0.0, 0.0, 0.0, 0.0);
    let mut mix: BTreeMap<Tier, f64> = Tier::ALL.iter().map(|t| (*t, 0.0)).collect();
    for (r, c) in usable.iter().zip(&choices) {
        let model = &map[&c.tier];
        quality += r.score(model).unwrap_or(0.0);
        strong_q += r.score(strongest).unwrap_or(0.0);
        *mix.entry(c.tier).or_default() += 1.0;
        if with_costs {
            cost += r.costs_usd.get(model).copied().unwrap_or(0.0);
            base += r.costs_usd.get(strongest).copied().unwrap_or(0.0);
        } else {
            let (routed, baseline) = estimated_costs(pool, c);
            cost += routed;
            base += baseline;
        }
    }
    let n = usable.len() as f64;
    mix.values_mut().for_each(|v| *v /= n);
    Ok(TiersReport {
        n: usable.len(),
        threshold,
        quality: 100.0 * quality / n,
        strongest_quality: 100.0 * strong_q / n,
        quality_delta_pts: 100.0 * (quality - strong_q) / n,
        cost_usd: cost,
        baseline_cost_usd: base,
        savings_pct: if base > 0.0 {
            100.0 * (1.0 - cost / base)
        } else {
            0.0
        },
        cost_source: if with_costs {
            "costs_usd"
        } else {
            "pool_prices_estimated_tokens"
        },
        escalation_rate: choices.iter().filter(|c| c.escalated).count() as f64 / n,
        tier_mix: mix,
    })
}

/// The estimated cost of a routed choice on its tier's preferred model, and of the same
/// tokens on the baseline: the router's input tokens and the pool's expected output.
fn estimated_costs(pool: &PoolConfig, c: &TierChoice) -> (f64, f64) {
    let tokens = c.input_tokens as u64;
    let out = u64::from(pool.expected_output_tokens());
    let routed = pool
        .tier_models(c.tier)
        .first()
        .map_or(0.0, |m| m.cost_usd(tokens, out));
    (routed, pool.baseline().cost_usd(tokens, out))
}

/// Where labelled task rows went (rows with a `tier` label, e.g. the everyday-asks sets).
#[derive(Debug, Clone, Serialize)]
pub struct KindsEvalReport {
    pub n: usize,
    pub threshold: f64,
    /// Share of each tier among the routed rows.
    pub tier_mix: BTreeMap<Tier, f64>,
    /// For rows labelled tier1 ("simple asks"): share routed to tier1, in percent.
    pub simple_on_tier1_pct: f64,
    /// For rows labelled tier3 ("complex asks"): share routed to tier3, in percent.
    pub complex_on_tier3_pct: f64,
    /// Rows labelled tier3 routed to tier1.
    pub complex_on_tier1: usize,
    /// Share of rows routed below their label's tier (the quality risk), in percent.
    pub under_routed_pct: f64,
    /// Share routed to exactly the label's tier, in percent.
    pub exact_tier_pct: f64,
    /// Rows labelled with each tier, and where they went: label -> routed tier -> rows.
    pub confusion: BTreeMap<Tier, BTreeMap<Tier, usize>>,
    /// Share of rows with a `kind` label whose recognised kind is that kind, in percent.
    pub kind_accuracy_pct: Option<f64>,
    /// Routed cost against sending every row to the baseline (pool prices, estimated tokens
    /// and the pool's expected output), in percent.
    pub cost_vs_baseline_pct: f64,
    pub escalation_rate: f64,
    pub rule_decided: usize,
    /// `confidence` against "the predicted tier is at or above the label's tier".
    pub confidence_ece: f64,
    pub reliability: Vec<ReliabilityBin>,
}

/// Routes labelled task rows at `threshold` and reports where each tier's asks went.
pub fn kinds(
    router: &Router,
    pool: &PoolConfig,
    rows: &[BenchmarkRow],
    threshold: f64,
    threads: usize,
) -> Result<KindsEvalReport, ReplayError> {
    let usable: Vec<&BenchmarkRow> = rows.iter().filter(|r| r.tier.is_some()).collect();
    if usable.is_empty() {
        return Err(ReplayError::Tiers(
            "no row has a `tier` label: give --weak/--strong or --tiers for outcome data".into(),
        ));
    }
    let choices = route_all(router, &usable, threshold, threads)?;
    let mut confusion: BTreeMap<Tier, BTreeMap<Tier, usize>> = BTreeMap::new();
    let mut mix: BTreeMap<Tier, f64> = Tier::ALL.iter().map(|t| (*t, 0.0)).collect();
    let (mut cost, mut base) = (0.0, 0.0);
    let (mut kind_n, mut kind_ok) = (0usize, 0usize);
    let (mut under, mut exact) = (0usize, 0usize);
    let (mut conf, mut adequate) = (Vec::new(), Vec::new());
    for (r, c) in usable.iter().zip(&choices) {
        let label = r.tier.unwrap_or(Tier::Tier3);
        *confusion
            .entry(label)
            .or_default()
            .entry(c.tier)
            .or_default() += 1;
        *mix.entry(c.tier).or_default() += 1.0;
        under += usize::from(c.tier < label);
        exact += usize::from(c.tier == label);
        let (routed, baseline) = estimated_costs(pool, c);
        cost += routed;
        base += baseline;
        if let Some(k) = &r.kind {
            kind_n += 1;
            kind_ok += usize::from(c.task_kind.as_deref() == Some(k.as_str()));
        }
        if c.probs.is_some() {
            conf.push(c.confidence);
            adequate.push(f64::from(u8::from(c.predicted_tier >= label)));
        }
    }
    let n = usable.len() as f64;
    mix.values_mut().for_each(|v| *v /= n);
    let share = |label: Tier, routed: Tier| {
        let row = confusion.get(&label);
        let total: usize = row.map_or(0, |m| m.values().sum());
        let hit = row.and_then(|m| m.get(&routed)).copied().unwrap_or(0);
        if total == 0 {
            0.0
        } else {
            100.0 * hit as f64 / total as f64
        }
    };
    Ok(KindsEvalReport {
        n: usable.len(),
        threshold,
        simple_on_tier1_pct: share(Tier::Tier1, Tier::Tier1),
        complex_on_tier3_pct: share(Tier::Tier3, Tier::Tier3),
        complex_on_tier1: confusion
            .get(&Tier::Tier3)
            .and_then(|m| m.get(&Tier::Tier1))
            .copied()
            .unwrap_or(0),
        under_routed_pct: 100.0 * under as f64 / n,
        exact_tier_pct: 100.0 * exact as f64 / n,
        confusion,
        kind_accuracy_pct: (kind_n > 0).then(|| 100.0 * kind_ok as f64 / kind_n as f64),
        cost_vs_baseline_pct: if base > 0.0 { 100.0 * cost / base } else { 0.0 },
        escalation_rate: choices.iter().filter(|c| c.escalated).count() as f64 / n,
        rule_decided: choices.iter().filter(|c| c.probs.is_none()).count(),
        confidence_ece: expected_calibration_error(&conf, &adequate, 10),
        reliability: reliability(&conf, &adequate, 10),
        tier_mix: mix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tier_map_parsing() {
        let m = parse_tier_map("tier1=a,tier2=b, tier3=c").unwrap();
        assert_eq!(m[&Tier::Tier2], "b");
        let error = |spec: &str| parse_tier_map(spec).unwrap_err().to_string();
        assert!(error("tier1=a,tier2=b").contains("tier3"));
        assert!(parse_tier_map("tier1=a,tier1=b,tier3=c").is_err());
        assert!(error("tier9=a").contains("tier9"));
        assert!(parse_tier_map("tier1").is_err());
    }
}
