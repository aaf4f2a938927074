//! What both renderers share: numbers for reading (USD, counts, shares), the headline figures
//! and the rows of the tier, model and `group_by` tables.

use super::model::{GroupLine, LatencySummary, ModelLine, Report};
use super::params::parse_date;
use crate::ledger::money::Usd;
use crate::routing::pool::Tier;

/// USD for reading: cents from $1, more decimals below (`$0.0021`, `$0.000123`), thousands
/// separated.
pub(super) fn fmt_dollars(x: f64) -> String {
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

pub(super) fn fmt_usd(x: Usd) -> String {
    fmt_dollars(x.as_f64())
}

pub(super) fn fmt_usd_opt(x: Option<Usd>) -> String {
    x.map_or_else(|| "n/a".to_string(), fmt_usd)
}

/// Thousands separators in the integer part of a plain decimal number.
pub(super) fn group_thousands(s: &str) -> String {
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

pub(super) fn fmt_count(n: u64) -> String {
    group_thousands(&n.to_string())
}

/// A fraction 0..1 as a percentage with one decimal.
pub(super) fn fmt_share(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".to_string(), |r| format!("{:.1}%", r * 100.0))
}

/// A percentage with one decimal.
pub(super) fn fmt_pct(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".to_string(), |p| format!("{p:.1}%"))
}

pub(super) fn fmt_latency(l: Option<&LatencySummary>) -> String {
    match l {
        Some(l) => format!(
            "P50 <= {} ms, P99 <= {} ms, mean {:.1} ms",
            l.p50, l.p99, l.mean
        ),
        None => "not recorded".to_string(),
    }
}

/// The headline figures, as label and value, shared by both renderers.
pub(super) fn headline(r: &Report) -> Vec<(&'static str, String)> {
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
pub(super) fn models_by_cost(r: &Report) -> Vec<(&String, &ModelLine)> {
    let mut models: Vec<(&String, &ModelLine)> = r.models.iter().collect();
    models.sort_by(|a, b| b.1.cost_usd.cmp(&a.1.cost_usd).then_with(|| a.0.cmp(b.0)));
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

/// A name from the data as a table shows it (escaped or shortened by the renderer).
pub(super) type Clean = fn(&str) -> String;

/// The tier table's rows: tier, queries, share, cost, baseline.
pub(super) fn tier_rows(r: &Report, clean: Clean) -> Vec<Vec<String>> {
    r.tiers
        .iter()
        .map(|(name, t)| {
            vec![
                clean(name),
                fmt_count(t.queries),
                fmt_share(t.share),
                fmt_usd(t.cost_usd),
                fmt_usd(t.baseline_cost_usd),
            ]
        })
        .collect()
}

/// The model table's rows: model, tier, queries, cost, baseline.
pub(super) fn model_rows(models: &[(&String, &ModelLine)], clean: Clean) -> Vec<Vec<String>> {
    models
        .iter()
        .map(|(name, m)| {
            vec![
                clean(name),
                m.tier.as_str().to_string(),
                fmt_count(m.queries),
                fmt_usd(m.cost_usd),
                fmt_usd(m.baseline_cost_usd),
            ]
        })
        .collect()
}

/// The `group_by` table: what the groups are, the column headers and the rows.
pub(super) struct GroupTable {
    pub title: &'static str,
    pub headers: [&'static str; 8],
    pub rows: Vec<Vec<String>>,
}

impl GroupTable {
    pub(super) fn of(groups: &[GroupLine], clean: Clean) -> Self {
        let title = groups_title(groups);
        let rows = groups
            .iter()
            .map(|g| {
                vec![
                    clean(&g.key),
                    fmt_count(g.queries),
                    fmt_usd(g.cost_usd),
                    fmt_usd(g.baseline_cost_usd),
                    fmt_usd(g.savings_usd),
                    fmt_pct(g.savings_pct),
                    fmt_usd_opt(g.cost_per_1k_usd),
                    fmt_share(g.escalation_rate),
                ]
            })
            .collect();
        let headers = [
            title,
            "queries",
            "cost",
            "baseline",
            "savings",
            "savings %",
            "per 1K",
            "escalated",
        ];
        GroupTable {
            title,
            headers,
            rows,
        }
    }
}
