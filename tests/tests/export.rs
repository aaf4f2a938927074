//! Integration test of reading DynamoDB exports (`tierwise::report::export`) against the real item
//! writers: cost records put as `aws::dynamo::cost_item` writes them and rollups as
//! `aws::dynamo::rollup_update` leaves them, laid out as an export, read back exactly (rollups
//! skipped); and the export fixture's encoder, which the unit tests and the benchmark use
//! without the `aws` feature, agrees with `cost_item` attribute for attribute.

// Helpers outside #[test] functions panic on bad fixtures too; that is what a test wants.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Map, Value, json};
use tierwise::aws::dynamo::{cost_item, rollup_update};
use tierwise::ledger::records::{CostRecord, RECORD_COST, RecordStatus, usd_to_nanos};
use tierwise::report::export::fixture::{ExportWriter, cost_item_json, line};
use tierwise::report::export::{ExportSummary, read_export};
use tierwise::routing::pool::Tier;

const TTL: Duration = Duration::from_secs(90 * 86_400);

/// A fresh scratch directory under the target dir (removed again by the test).
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("tierwise-export-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A DynamoDB item as the export's JSON (the types tierwise writes: S, N, BOOL).
fn to_json(item: &HashMap<String, AttributeValue>) -> Value {
    let mut m = Map::new();
    for (k, v) in item {
        let v = match v {
            AttributeValue::S(s) => json!({ "S": s }),
            AttributeValue::N(n) => json!({ "N": n }),
            AttributeValue::Bool(b) => json!({ "BOOL": b }),
            other => panic!("{k}: unexpected attribute type {other:?}"),
        };
        m.insert(k.clone(), v);
    }
    Value::Object(m)
}

/// The rollup item one `rollup_update` leaves in an empty table.
fn rollup_item(rec: &CostRecord) -> Value {
    let (key, _expr, names, values) = rollup_update(rec, 4);
    let mut item = key;
    for (placeholder, name) in names {
        let value = values[&format!(":{}", &placeholder[1..])].clone();
        item.insert(name, value);
    }
    to_json(&item)
}

/// Records covering the value space: every tier and status, optional upstream latency, zero
/// and large amounts, strings that need JSON escapes.
fn records() -> Vec<CostRecord> {
    let base = CostRecord {
        record: RECORD_COST.into(),
        query_id: "0190c3e0-0000-7000-8000-000000000000".into(),
        ts: "2026-11-28T09:15:42.123Z".into(),
        tenant: "acme".into(),
        model: "deepseek/deepseek-v3".into(),
        tier: Tier::Tier1,
        predicted_tier: Tier::Tier1,
        confidence: 0.93,
        escalated: false,
        decided_by: tierwise::routing::decision::DecidedBy::rule("greeting"),
        task_kind: None,
        input_tokens: 12,
        output_tokens: 40,
        tokens_estimated: true,
        cost_usd: 0.000085,
        baseline_model: "openai/gpt-4o".into(),
        baseline_cost_usd: 0.00302,
        router_ms: 4.2,
        upstream_ms: None,
        status: RecordStatus::Routed,
        shadow: false,
        pricing_version: "2026-11".into(),
        router_version: "tierwise-0.1.0".into(),
        upstream: None,
    };
    (0..60u64)
        .map(|i| {
            let mut r = base.clone();
            r.query_id = format!("0190c3e0-0000-7000-8000-{i:012}");
            r.ts = format!("2026-11-{:02}T23:59:59.{:03}Z", 1 + i % 30, i * 7 % 1000);
            r.tier = Tier::ALL[(i % 3) as usize];
            r.predicted_tier = Tier::ALL[(i / 3 % 3) as usize];
            r.escalated = r.tier > r.predicted_tier;
            r.confidence = [0.0, 1.0, 0.5, 0.123456][(i % 4) as usize];
            r.status = [
                RecordStatus::Routed,
                RecordStatus::Ok,
                RecordStatus::UpstreamError,
            ][(i % 3) as usize];
            r.upstream_ms = (r.status != RecordStatus::Routed).then_some(1234.5 + i as f64);
            r.tokens_estimated = r.status == RecordStatus::Routed;
            r.cost_usd = [0.0, 0.000085, 123.456789012, 0.000000001][(i % 4) as usize];
            r.baseline_cost_usd = r.cost_usd * 3.0;
            r.input_tokens = i * 1000;
            r.router_ms = i as f64 * 0.125;
            r.shadow = i.is_multiple_of(5);
            if i.is_multiple_of(7) {
                r.tenant = "Zürich \"AG\" \\ team\n2".into();
                r.decided_by = tierwise::routing::decision::DecidedBy::Classifier;
            }
            r
        })
        .collect()
}

#[test]
fn fixture_encoder_matches_cost_item() {
    for rec in records() {
        assert_eq!(
            cost_item_json(&rec, TTL),
            to_json(&cost_item(&rec, TTL)),
            "{}",
            rec.query_id
        );
    }
}

#[test]
fn records_written_by_cost_item_read_back_exactly() {
    let root = scratch("roundtrip");
    let recs = records();
    // The money as written (the table keeps nano-dollars exactly).
    let recs: Vec<CostRecord> = recs
        .into_iter()
        .map(|mut r| {
            r.baseline_cost_usd = usd_to_nanos(r.baseline_cost_usd) as f64 / 1e9;
            r
        })
        .collect();
    let mut w = ExportWriter::create(&root, "01764547200000-0a1b2c3d")
        .unwrap()
        .s3_prefix("tierwise/exports");
    let mut rollups = 0;
    for (f, chunk) in recs.chunks(25).enumerate() {
        let mut lines = Vec::new();
        for rec in chunk {
            lines.push(line(&to_json(&cost_item(rec, TTL))));
            if rec.query_id.ends_with('0') {
                lines.push(line(&rollup_item(rec)));
                rollups += 1;
            }
        }
        w.data_file(&format!("part{f}.json.gz"), lines).unwrap();
    }
    w.data_file("empty.json.gz", Vec::<String>::new()).unwrap();
    w.finish().unwrap();

    let mut got = Vec::new();
    let summary = read_export(&root, |r| got.push(r)).unwrap();
    assert_eq!(
        summary,
        ExportSummary {
            export_id: "01764547200000-0a1b2c3d".into(),
            files: 4,
            items: recs.len() as u64 + rollups,
            cost_records: recs.len() as u64,
            skipped: rollups,
        }
    );
    assert_eq!(got, recs);
    let nanos = |rs: &[CostRecord]| rs.iter().map(|r| usd_to_nanos(r.cost_usd)).sum::<i64>();
    assert_eq!(nanos(&got), nanos(&recs));
    std::fs::remove_dir_all(&root).unwrap();
}
