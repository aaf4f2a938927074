//! Unit tests of the report: parameters, sums, ratios, percentiles and both renderers.

use super::build::{latency_summary, round_to};
use super::charts::nice_scale;
use super::format::{fmt_count, fmt_dollars};
use super::*;
use crate::ledger::money::{Timestamp, Usd};
use crate::ledger::records::{
    CostRecord, Counters, LATENCY_BOUNDS_MS, LATENCY_BUCKETS, RecordStatus, RollupRow,
};
use crate::routing::pool::Tier;
use crate::shadow::rollup::{EvalRollupKey, EvalRollupRow, VerdictCounters};

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

#[allow(
    clippy::too_many_arguments,
    reason = "a rollup row's figures, in the order the fixtures list them"
)]
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
            cost: Usd::from_nanos(cost_nanos),
            baseline_cost: Usd::from_nanos(baseline_nanos),
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

#[tokio::test]
async fn a_memory_source_gives_the_report_of_the_rows_asked_for() {
    let verdict = |day: &str, tenant: &str| EvalRollupRow {
        key: EvalRollupKey {
            day: day.into(),
            tenant: tenant.into(),
            tier: Tier::Tier1,
            model: DS.into(),
            reference_model: "openai/gpt-4o".into(),
        },
        counters: VerdictCounters {
            evaluations: 4,
            equivalent: 3,
            worse: 1,
            ..VerdictCounters::default()
        },
    };
    let source = MemoryRollups::new(Rollups {
        costs: rows(),
        verdicts: vec![
            verdict("2026-11-01", "acme"),
            verdict("2026-11-01", "other"),
            verdict("2026-11-09", "acme"),
        ],
    });
    let p = params("2026-11-01", "2026-11-03", Some("acme"), Some("tier"));
    let read = source::read_rollups(&source, &p).await.unwrap();
    // Only the days and tenant asked for: the three acme rows in range, one verdict row.
    assert_eq!((read.costs.len(), read.verdicts.len()), (3, 1));
    let r = read.report(&p);
    let mut want = acme_report(Some("tier"));
    assert_eq!(r.shadow.evaluations, 4);
    assert_eq!(r.shadow.agreement_rate, Some(0.75));
    assert_eq!(r.rows_read, want.rows_read + 1);
    // Apart from the verdicts, the same report as the rows added by hand.
    want.shadow = r.shadow.clone();
    want.rows_read = r.rows_read;
    assert_eq!(r, want);
    // All tenants: the other tenant's row in range is read too.
    let all = params("2026-11-01", "2026-11-03", None, None);
    let read = source::read_rollups(&source, &all).await.unwrap();
    assert_eq!((read.costs.len(), read.verdicts.len()), (4, 2));
    assert_eq!(read.report(&all).queries, 15);
}

fn usd(x: f64) -> Usd {
    Usd::from_f64(x)
}

#[test]
fn verdict_rollups_give_agreement_and_shadow_spend_apart_from_user_cost() {
    let p = params("2026-11-01", "2026-11-02", Some("acme"), None);
    let mut b = ReportBuilder::new(&p);
    let v = |day: &str, tenant: &str, tier: Tier, eq: u64, worse: u64, better: u64| EvalRollupRow {
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
            shadow_cost: Usd::from_nanos(1_500_000),
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
    assert_eq!(r.shadow.shadow_cost_usd, usd(0.003));
    assert_eq!(r.shadow.tiers["tier1"].agreement_rate, Some(0.95));
    assert_eq!(r.shadow.tiers["tier2"].evaluations, 10);
    assert!(!r.shadow.tiers.contains_key("tier3"));
    // Shadow spend is not user traffic.
    assert_eq!(r.cost_usd, usd(0.0));
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
    assert_eq!(r.cost_usd, usd(0.0022));
    assert_eq!(r.baseline_cost_usd, usd(0.05));
    assert_eq!(r.savings_usd, usd(0.0478));
    assert_eq!(r.savings_pct, Some(95.6));
    assert_eq!(r.cost_per_1k_usd, Some(usd(0.22)));
    assert_eq!(r.baseline_cost_per_1k_usd, Some(usd(5.0)));
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
                t.cost_usd.as_f64(),
                t.baseline_cost_usd.as_f64(),
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
            cost_usd: usd(0.0007),
            baseline_cost_usd: usd(0.035)
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
                d.cost_usd.as_f64(),
                d.baseline_cost_usd.as_f64(),
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
    assert_eq!((r.queries, r.rows_read, r.cost_usd), (0, 0, Usd::ZERO));
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
            cost_usd: usd(0.0021),
            baseline_cost_usd: usd(0.045),
            savings_usd: usd(0.0429),
            savings_pct: Some(95.3333),
            cost_per_1k_usd: Some(usd(0.233333333)),
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
    let keys: Vec<(&str, f64)> = g
        .iter()
        .map(|l| (l.key.as_str(), l.cost_usd.as_f64()))
        .collect();
    assert_eq!(keys, [(MINI, 0.0015), (DS, 0.0007)]);
    assert_eq!(g[1].cost_per_1k_usd, Some(usd(0.1)));
}

#[test]
fn money_sums_exactly() {
    let rec = CostRecord {
        record: "cost".into(),
        query_id: "q".into(),
        ts: Timestamp::parse("2026-11-05T10:00:00.000Z").unwrap(),
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
        cost_usd: usd(0.000000123),
        baseline_model: "openai/gpt-4o".into(),
        baseline_cost_usd: usd(0.000001),
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
    assert_eq!(r.cost_usd, usd(0.000123));
    assert_eq!(r.baseline_cost_usd, usd(0.001));
    assert_eq!(r.savings_usd, usd(0.000877));
    assert_eq!(r.cost_per_1k_usd, Some(usd(0.000123)));
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
    let v =
        serde_json::to_value(build(&params("2026-11-01", "2026-11-01", None, None), &[])).unwrap();
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
    assert_eq!(fmt_dollars(0.0), "$0.00");
    assert_eq!(fmt_dollars(1234.5), "$1,234.50");
    assert_eq!(fmt_dollars(0.0478), "$0.0478");
    assert_eq!(fmt_dollars(0.000123), "$0.000123");
    assert_eq!(fmt_dollars(-2.5), "-$2.50");
    assert_eq!(fmt_count(1_234_567), "1,234,567");
    let (step, steps) = nice_scale(0.05, false);
    assert!((step - 0.02).abs() < 1e-12 && steps == 3, "{step} {steps}");
    assert_eq!(nice_scale(40.0, false), (10.0, 4));
    assert_eq!(nice_scale(9.0, true), (5.0, 2));
    assert_eq!(nice_scale(0.0, true), (1.0, 1));
}
