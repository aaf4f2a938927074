//! The reporter end to end: thousands of cost records written by the router's real write path
//! (`DynamoCostStore`: conditional put + rollup in one transaction) into `moto_server`, over
//! several days and tenants; then the reporter Lambda's handler, fed API Gateway v2 events,
//! must give totals equal to the sums of the records, to the nano-dollar, reading rollups only.

// Helpers outside #[test] functions panic on bad fixtures too; that is what a test wants.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::Body;
use serde_json::{Value, json};
use tierwise::access::admin::{KeyRequest, create_key};
use tierwise::aws::dynamo::DynamoCostStore;
use tierwise::aws::keys::DynamoKeyStore;
use tierwise::aws::{dynamodb_client, sdk_config_at, setup};
use tierwise::ledger::money::Usd;
use tierwise::ledger::records::{CostRecord, Timestamp, shadow_sampled};
use tierwise::ledger::store::{CostSink, WriteOutcome};
use tierwise::routing::decision::{AllHealthy, RouteRequest, Router};
use tierwise::serve::settings::{AwsCallSettings, ReporterSettings};
use tierwise_reporter::App;
use tierwise_tests::moto::{Moto, unique_name};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/apigw/reports.json");
const TENANTS: [&str; 3] = ["acme", "globex", "initech"];
const DAYS: [&str; 4] = ["2026-11-02", "2026-11-03", "2026-11-05", "2026-11-30"];
const QUERIES: [&str; 8] = [
    "hello",
    "What is the capital of France?",
    "Translate 'good morning' into Spanish.",
    "Write a Python function that merges two sorted lists and explain its complexity.",
    "Prove that the square root of 2 is irrational, step by step.",
    "Summarize the causes of the First World War in three paragraphs for a history exam.",
    "Extract the invoice number from: 'Invoice #A-1932, due 3 May'",
    "Design a sharded rate limiter for a multi-region API gateway and discuss its failure modes.",
];
/// moto deep-copies the table for every transaction (O(records) each), so the count stays in
/// the hundreds here; the exactness of large sums is covered by the report's unit tests and the
/// export tests.
const RECORDS: usize = 500;

struct World {
    app: App,
    ddb: aws_sdk_dynamodb::Client,
    table: String,
    metrics: Arc<Mutex<Vec<String>>>,
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Writes RECORDS records through `DynamoCostStore` (several in flight, as concurrent Lambda
/// instances would), spread over DAYS x TENANTS x QUERIES.
///
/// Every write must come back `Written`: the query ids are new.
async fn world() -> World {
    let moto = Moto::shared().unwrap();
    // moto copies the whole table for every transaction (slow as it grows) and is not safe
    // against an attempt that times out while the retry runs: give it time.
    let patient = AwsCallSettings {
        operation_timeout: std::time::Duration::from_secs(60),
        attempt_timeout: std::time::Duration::from_secs(20),
        max_attempts: 3,
    };
    let sdk = sdk_config_at(&patient, moto.endpoint()).await;
    let ddb = dynamodb_client(&sdk);
    let table = unique_name("report");
    setup::create_table(&ddb, &table).await.unwrap();
    let router = Router::bundled().unwrap();
    let mut decisions = Vec::new();
    for tenant in TENANTS {
        for q in QUERIES {
            let req = RouteRequest {
                tenant: Some(tenant.into()),
                ..RouteRequest::query(q)
            };
            decisions.push(router.route(&req, &AllHealthy).unwrap());
        }
    }
    let store = DynamoCostStore::new(ddb.clone(), &table, 4, 400);
    // One write at a time: moto's transactions are not safe against concurrent ones (it
    // deep-copies the table while another request changes it).
    for i in 0..RECORDS {
        let mut d = decisions[i % decisions.len()].clone();
        d.query_id = uuid::Uuid::now_v7().to_string();
        let day = DAYS[(i / decisions.len()) % DAYS.len()];
        let at = time::OffsetDateTime::parse(
            &format!("{day}T{:02}:{:02}:07.250Z", i % 24, i % 60),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        let sampled = shadow_sampled(&d.query_id, 0.05);
        let rec = CostRecord::routed(&d, "openai/gpt-4o", sampled, Timestamp::from_datetime(at));
        let out = store.write_cost(&rec).await;
        assert!(
            matches!(out, Ok(WriteOutcome::Written)),
            "record {i}: {out:?}\n{}",
            moto.stderr_tail()
        );
    }
    let settings =
        ReporterSettings::from_vars([("TIERWISE_TABLE".to_string(), table.clone())]).unwrap();
    let metrics = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&metrics);
    let app = App::new(
        ddb.clone(),
        &settings,
        Box::new(move |l| sink.lock().unwrap().push(l.to_string())),
    );
    World {
        app,
        ddb,
        table,
        metrics,
    }
}

/// Every cost record in the table (a scan: the test's ground truth, never the reporter's way).
async fn cost_records(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Vec<HashMap<String, AttributeValue>> {
    items(ddb, table, "cost").await
}

/// Every item of a kind (`record` attribute).
async fn items(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    kind: &str,
) -> Vec<HashMap<String, AttributeValue>> {
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let page = ddb
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .unwrap();
        out.extend(
            page.items()
                .iter()
                .filter(|i| i["record"].as_s().unwrap() == kind)
                .cloned(),
        );
        match page.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => return out,
        }
    }
}

fn request(query: &[(&str, &str)], method: &str) -> lambda_http::Request {
    let mut ev: Value = serde_json::from_str(&std::fs::read_to_string(FIXTURE).unwrap()).unwrap();
    let qs: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    ev["rawQueryString"] = json!(qs.join("&"));
    let mut params = serde_json::Map::new();
    for (k, v) in query {
        params.insert((*k).to_string(), json!(v));
    }
    ev["queryStringParameters"] = Value::Object(params);
    ev["requestContext"]["http"]["method"] = json!(method);
    lambda_http::request::from_str(&ev.to_string()).unwrap()
}

async fn call(app: &App, req: lambda_http::Request) -> (u16, Value) {
    let res = app.handle(req).await;
    let status = res.status().as_u16();
    let body = match res.body() {
        Body::Text(t) => serde_json::from_str(t).unwrap(),
        other => panic!("{other:?}"),
    };
    (status, body)
}

/// `GET /v1/reports` with these parameters.
async fn get(app: &App, query: &[(&str, &str)]) -> (u16, Value) {
    call(app, request(query, "GET")).await
}

fn nanos(item: &HashMap<String, AttributeValue>, k: &str) -> i64 {
    Usd::parse_decimal(item[k].as_n().unwrap()).unwrap().nanos()
}

fn usd(v: &Value) -> i64 {
    (v.as_f64().unwrap() * 1e9).round() as i64
}

#[test]
fn report_totals_equal_the_sums_of_the_records() {
    rt().block_on(async {
        let w = world().await;
        let recs = cost_records(&w.ddb, &w.table).await;
        assert_eq!(recs.len(), RECORDS);

        // Ground truth from the records themselves.
        let in_month: Vec<_> = recs
            .iter()
            .filter(|r| r["day"].as_s().unwrap().starts_with("2026-11"))
            .collect();
        let cost: i64 = in_month.iter().map(|r| nanos(r, "cost_usd")).sum();
        let base: i64 = in_month.iter().map(|r| nanos(r, "baseline_cost_usd")).sum();
        let esc = in_month
            .iter()
            .filter(|r| r["escalated"] == AttributeValue::Bool(true))
            .count();
        let mut by_tier: BTreeMap<String, (u64, i64)> = BTreeMap::new();
        let mut by_model: BTreeMap<String, (u64, i64)> = BTreeMap::new();
        for r in &in_month {
            let t = by_tier
                .entry(r["tier"].as_s().unwrap().clone())
                .or_default();
            t.0 += 1;
            t.1 += nanos(r, "cost_usd");
            let m = by_model
                .entry(r["model"].as_s().unwrap().clone())
                .or_default();
            m.0 += 1;
            m.1 += nanos(r, "cost_usd");
        }
        assert!(
            by_tier.len() >= 2,
            "the queries should reach several tiers: {by_tier:?}"
        );

        let (status, rep) = get(
            &w.app,
            &[
                ("from", "2026-11-01"),
                ("to", "2026-11-30"),
                ("group_by", "tier"),
            ],
        )
        .await;
        assert_eq!(status, 200, "{rep}");
        assert_eq!(rep["queries"], in_month.len() as u64);
        assert_eq!(usd(&rep["cost_usd"]), cost);
        assert_eq!(usd(&rep["baseline_cost_usd"]), base);
        assert_eq!(usd(&rep["savings_usd"]), base - cost);
        let per_1k = rep["cost_per_1k_usd"].as_f64().unwrap();
        assert!((per_1k - cost as f64 / 1e9 / in_month.len() as f64 * 1000.0).abs() < 1e-6);
        let rate = rep["escalation_rate"].as_f64().unwrap();
        assert!((rate - esc as f64 / in_month.len() as f64).abs() < 1e-6);
        for (tier, (q, c)) in &by_tier {
            assert_eq!(rep["tiers"][tier]["queries"], *q, "{tier}");
            assert_eq!(usd(&rep["tiers"][tier]["cost_usd"]), *c, "{tier}");
        }
        for (model, (q, c)) in &by_model {
            assert_eq!(rep["models"][model]["queries"], *q, "{model}");
            assert_eq!(usd(&rep["models"][model]["cost_usd"]), *c, "{model}");
        }
        assert_eq!(rep["groups"].as_array().unwrap().len(), 3);
        assert!(rep["router_ms"]["p50"].as_f64().unwrap() > 0.0);

        // Rollups only: every rollup item of the month read once, no record.
        let rollups = items(&w.ddb, &w.table, "rollup").await.len() as u64;
        let read = rep["rows_read"].as_u64().unwrap();
        assert_eq!(read, rollups);
        assert!(read < RECORDS as u64 / 2, "rows read {read}");

        // One tenant, a sub-range: the same sums over that slice.
        let (status, one) = get(
            &w.app,
            &[
                ("from", "2026-11-03"),
                ("to", "2026-11-05"),
                ("tenant", "globex"),
            ],
        )
        .await;
        assert_eq!(status, 200, "{one}");
        let slice: Vec<_> = in_month
            .iter()
            .filter(|r| {
                r["tenant"].as_s().unwrap() == "globex"
                    && ["2026-11-03", "2026-11-05"].contains(&r["day"].as_s().unwrap().as_str())
            })
            .collect();
        assert!(!slice.is_empty());
        assert_eq!(one["queries"], slice.len() as u64);
        assert_eq!(
            usd(&one["cost_usd"]),
            slice.iter().map(|r| nanos(r, "cost_usd")).sum::<i64>()
        );
        assert!(
            w.metrics
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("ReportLatency"))
        );
    });
}

#[test]
fn bad_parameters_get_a_400_that_says_why() {
    rt().block_on(async {
        let settings =
            ReporterSettings::from_vars([("TIERWISE_TABLE".to_string(), "unused".to_string())])
                .unwrap();
        let sdk = sdk_config_at(
            &AwsCallSettings::default(),
            Moto::shared().unwrap().endpoint(),
        )
        .await;
        let app = App::new(dynamodb_client(&sdk), &settings, Box::new(|_| {}));
        let cases: [(&[(&str, &str)], &str); 8] = [
            (&[("to", "2026-11-30")], "`from`"),
            (
                &[("from", "2026-13-01"), ("to", "2026-11-30")],
                "YYYY-MM-DD",
            ),
            (&[("from", "2026-11-30"), ("to", "2026-11-01")], "after"),
            (&[("from", "2024-01-01"), ("to", "2026-11-01")], "366"),
            (
                &[
                    ("from", "2026-11-01"),
                    ("to", "2026-11-02"),
                    ("group_by", "week"),
                ],
                "week",
            ),
            (
                &[
                    ("from", "2026-11-01"),
                    ("to", "2026-11-02"),
                    ("tenant", "a#b"),
                ],
                "tenant",
            ),
            (
                &[("from", "2026-11-01"), ("to", "2026-11-02"), ("fmt", "csv")],
                "unknown parameter `fmt`",
            ),
            (
                &[
                    ("from", "2026-11-01"),
                    ("to", "2026-11-02"),
                    ("format", "csv"),
                ],
                "`format` is json or html",
            ),
        ];
        for (q, says) in cases {
            let (status, body) = get(&app, q).await;
            assert_eq!(status, 400, "{q:?}: {body}");
            let msg = body["error"]["message"].as_str().unwrap();
            assert!(msg.contains(says), "{q:?}: {msg}");
        }
        let (status, _) = call(
            &app,
            request(&[("from", "2026-11-01"), ("to", "2026-11-02")], "POST"),
        )
        .await;
        assert_eq!(status, 405);
        // A table that does not exist is the operator's problem, not the caller's: no detail.
        let (status, body) = get(&app, &[("from", "2026-11-01"), ("to", "2026-11-02")]).await;
        assert_eq!(status, 500, "{body}");
        assert!(!body.to_string().contains("unused"), "{body}");
    });
}

/// `GET /v1/reports` with a Bearer key.
async fn get_with_key(app: &App, query: &[(&str, &str)], key: &str) -> (u16, Value) {
    let mut req = request(query, "GET");
    req.headers_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    call(app, req).await
}

#[test]
fn with_keys_a_tenant_reads_its_own_report_and_an_admin_reads_all() {
    rt().block_on(async {
        let moto = Moto::shared().unwrap();
        let sdk = sdk_config_at(&AwsCallSettings::default(), moto.endpoint()).await;
        let ddb = dynamodb_client(&sdk);
        let table = unique_name("report-keys");
        setup::create_table(&ddb, &table).await.unwrap();
        let router = Router::bundled().unwrap();
        let store = DynamoCostStore::new(ddb.clone(), &table, 1, 400);
        // acme: 2 queries, globex: 3.
        for (tenant, n) in [("acme", 2), ("globex", 3)] {
            for _ in 0..n {
                let req = RouteRequest {
                    tenant: Some(tenant.into()),
                    ..RouteRequest::query("What is the capital of France?")
                };
                let mut d = router.route(&req, &AllHealthy).unwrap();
                d.query_id = uuid::Uuid::now_v7().to_string();
                let at = Timestamp::parse("2026-11-10T10:00:00.000Z").unwrap();
                let rec = CostRecord::routed(&d, "openai/gpt-4o", false, at);
                assert!(matches!(
                    store.write_cost(&rec).await,
                    Ok(WriteOutcome::Written)
                ));
            }
        }
        let keys = DynamoKeyStore::new(ddb.clone(), &table);
        let make = |tenant: &str, admin: bool| KeyRequest {
            tenant: tenant.into(),
            admin,
            ..KeyRequest::default()
        };
        let acme = create_key(&keys, &make("acme", false), Timestamp::now())
            .await
            .unwrap()
            .0
            .text;
        let ops = create_key(&keys, &make("ops", true), Timestamp::now())
            .await
            .unwrap()
            .0
            .text;
        let settings = ReporterSettings::from_vars([
            ("TIERWISE_TABLE".to_string(), table.clone()),
            ("TIERWISE_AUTH".to_string(), "keys".to_string()),
        ])
        .unwrap();
        let app = App::new(ddb.clone(), &settings, Box::new(|_| {}));
        let month = [("from", "2026-11-01"), ("to", "2026-11-30")];

        let (status, body) = get(&app, &month).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"]["code"], "invalid_api_key");

        let (status, body) = get_with_key(&app, &month, &acme).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["queries"], 2, "acme's key reads acme's report only");
        let mut other = month.to_vec();
        other.push(("tenant", "globex"));
        let (status, body) = get_with_key(&app, &other, &acme).await;
        assert_eq!(status, 403, "{body}");

        let (status, body) = get_with_key(&app, &month, &ops).await;
        assert_eq!(
            (status, body["queries"].as_u64()),
            (200, Some(5)),
            "an admin reads all"
        );
        let (status, body) = get_with_key(&app, &other, &ops).await;
        assert_eq!((status, body["queries"].as_u64()), (200, Some(3)));

        // The same report as a self-contained page: charts inline, nothing from elsewhere.
        let mut html = month.to_vec();
        html.push(("format", "html"));
        let mut req = request(&html, "GET");
        req.headers_mut()
            .insert("authorization", format!("Bearer {acme}").parse().unwrap());
        let res = app.handle(req).await;
        assert_eq!(res.status().as_u16(), 200);
        assert_eq!(res.headers()["content-type"], "text/html; charset=utf-8");
        let page = match res.body() {
            Body::Text(t) => t.clone(),
            other => panic!("{other:?}"),
        };
        assert!(page.contains("<svg"), "{}", &page[..page.len().min(300)]);
        for external in ["src=\"http", "href=\"http", "@import", "url(http"] {
            assert!(!page.contains(external), "loads {external}");
        }
        let mut bad = month.to_vec();
        bad.push(("format", "pdf"));
        let (status, _) = get_with_key(&app, &bad, &acme).await;
        assert_eq!(status, 400);
    });
}
