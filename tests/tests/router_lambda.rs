//! The router Lambda's handler end to end against real endpoints: API Gateway v2 event
//! fixtures in, DynamoDB and SQS in `moto_server` (started by the harness) behind the SDK's
//! standard endpoint override, and scripted HTTP faults (throttling, hangs) where moto has
//! none. Checks the records, rollups and shadow samples that each request leaves behind.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "helpers outside #[test] functions panic on bad fixtures too: that is what a test wants"
)]

mod router_stack;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::{Body, Request};
use router_stack::{Item, metric_sink, n, new_resources, rt, s};
use serde_json::{Value, json};
use tierwise::aws::dynamo::{DynamoCostStore, rollup_pk};
use tierwise::aws::sqs::{SqsQueue, redrive};
use tierwise::aws::{dynamodb_client, sdk_config_at, sqs_client};
use tierwise::ledger::store::{CostSink, WriteOutcome};
use tierwise::routing::decision::Router;
use tierwise::serve::settings::{AwsCallSettings, RouterSettings};
use tierwise_router::{App, QUERY_ID_HEADER, build_service};
use tierwise_tests::moto::moto;
use tierwise_tests::scripted::{Reply, ScriptedServer};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/apigw");

/// The contract's cost-record attributes and their DynamoDB types.
const RECORD_ATTRS: [(&str, &str); 21] = [
    ("record", "S"),
    ("query_id", "S"),
    ("ts", "S"),
    ("tenant", "S"),
    ("model", "S"),
    ("tier", "S"),
    ("predicted_tier", "S"),
    ("confidence", "N"),
    ("escalated", "BOOL"),
    ("decided_by", "S"),
    ("input_tokens", "N"),
    ("output_tokens", "N"),
    ("tokens_estimated", "BOOL"),
    ("cost_usd", "N"),
    ("baseline_model", "S"),
    ("baseline_cost_usd", "N"),
    ("router_ms", "N"),
    ("status", "S"),
    ("shadow", "BOOL"),
    ("pricing_version", "S"),
    ("router_version", "S"),
];

fn fast_calls() -> AwsCallSettings {
    AwsCallSettings {
        operation_timeout: Duration::from_millis(900),
        attempt_timeout: Duration::from_millis(250),
        max_attempts: 3,
    }
}

/// A table, a shadow queue (with its DLQ) and a fallback queue in moto, and an app over them.
struct Stack {
    app: App,
    ddb: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    settings: RouterSettings,
    metrics: Arc<Mutex<Vec<String>>>,
}

impl Stack {
    /// `dynamo_at` / `sqs_at` point the app's DynamoDB / SQS client elsewhere than moto (a
    /// faulty endpoint); the test's own clients always read moto.
    async fn new(shadow_rate: f64, dynamo_at: Option<&str>, sqs_at: Option<&str>) -> Stack {
        let endpoint = moto().endpoint().to_string();
        let sdk = sdk_config_at(&fast_calls(), &endpoint).await;
        let ddb = dynamodb_client(&sdk);
        let sqs = sqs_client(&sdk);
        let rate = shadow_rate.to_string();
        let settings = new_resources(&ddb, &sqs, "costs", &[("TIERWISE_SHADOW_RATE", &rate)]).await;
        let app_ddb = sdk_config_at(&fast_calls(), dynamo_at.unwrap_or(&endpoint)).await;
        let app_sqs = sdk_config_at(&fast_calls(), sqs_at.unwrap_or(&endpoint)).await;
        let service = build_service(Router::bundled().unwrap(), &app_ddb, &app_sqs, &settings);
        let (sink, metrics) = metric_sink();
        let app = App::new(service, false, 1.0, sink);
        Stack {
            app,
            ddb,
            sqs,
            settings,
            metrics,
        }
    }

    async fn call(&self, req: Request) -> (u16, Value, lambda_http::http::HeaderMap) {
        let res = self.app.handle(req).await;
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body: Value = match res.body() {
            Body::Text(t) => serde_json::from_str(t).unwrap(),
            other => panic!("expected a text body, got {other:?}"),
        };
        (status, body, headers)
    }

    async fn items(&self) -> Vec<Item> {
        router_stack::items(&self.ddb, &self.settings.table).await
    }

    async fn records(&self, kind: &str) -> Vec<Item> {
        router_stack::records(&self.ddb, &self.settings.table, kind).await
    }

    async fn messages(&self, url: &str) -> Vec<Value> {
        let mut all = Vec::new();
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .visibility_timeout(30)
                .send()
                .await
                .unwrap();
            let batch = out.messages.unwrap_or_default();
            if batch.is_empty() {
                return all;
            }
            for m in batch {
                all.push(serde_json::from_str(m.body().unwrap()).unwrap());
            }
        }
    }

    fn metric_lines(&self) -> Vec<Value> {
        self.metrics
            .lock()
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A fixture event as the handler receives it, with another body and extra headers.
fn event(name: &str, body: Option<&str>, headers: &[(&str, &str)]) -> Request {
    let mut ev = fixture(name);
    if let Some(b) = body {
        ev["body"] = json!(b);
        ev["isBase64Encoded"] = json!(false);
    }
    for (k, v) in headers {
        ev["headers"][*k] = json!(v);
    }
    lambda_http::request::from_str(&ev.to_string()).unwrap()
}

#[test]
fn a_routed_query_leaves_one_record_and_adds_to_its_rollup() {
    rt().block_on(async {
        let st = Stack::new(0.0, None, None).await;
        let (status, body, headers) = st.call(event("route.json", None, &[])).await;
        assert_eq!(status, 200, "{body}");
        let qid = body["query_id"].as_str().unwrap().to_string();
        assert_eq!(headers[QUERY_ID_HEADER], qid.as_str());
        assert_eq!(body["tenant"], "acme");

        let recs = st.records("cost").await;
        assert_eq!(recs.len(), 1, "{recs:?}");
        let rec = &recs[0];
        for (attr, ty) in RECORD_ATTRS {
            let v = rec
                .get(attr)
                .unwrap_or_else(|| panic!("record lacks {attr}: {rec:?}"));
            let actual = match v {
                AttributeValue::S(_) => "S",
                AttributeValue::N(_) => "N",
                AttributeValue::Bool(_) => "BOOL",
                _ => "other",
            };
            assert_eq!(actual, ty, "{attr}");
        }
        assert_eq!(s(rec, "query_id"), qid);
        assert_eq!(s(rec, "pk"), format!("Q#{qid}"));
        assert_eq!(s(rec, "status"), "routed");
        assert_eq!(s(rec, "model"), body["model"].as_str().unwrap());
        assert_eq!(rec["shadow"], AttributeValue::Bool(false));
        assert!(rec.get("upstream_ms").is_none());
        assert!((n(rec, "cost_usd") - body["estimated_cost_usd"].as_f64().unwrap()).abs() < 1e-12);
        assert!(n(rec, "ttl") > 1.7e9);

        let rollups = st.records("rollup").await;
        assert_eq!(rollups.len(), 1, "{rollups:?}");
        let r = &rollups[0];
        assert_eq!(s(r, "pk"), rollup_pk(&s(rec, "ts")[..10]));
        assert_eq!((s(r, "tenant"), s(r, "model")), ("acme", s(rec, "model")));
        assert_eq!(n(r, "queries"), 1.0);
        assert_eq!(
            r["cost_usd"].as_n().unwrap(),
            rec["cost_usd"].as_n().unwrap()
        );
        assert_eq!(n(r, "input_tokens"), n(rec, "input_tokens"));
        assert_eq!(
            n(r, "escalations"),
            f64::from(u8::from(body["escalated"] == true))
        );

        // A second query of the same tenant and model adds to the same rollup exactly.
        let (_, b2, _) = st
            .call(event(
                "route.json",
                Some(r#"{"query": "What is the capital of Spain?", "tenant": "acme"}"#),
                &[],
            ))
            .await;
        assert_eq!(b2["model"], body["model"]);
        let recs = st.records("cost").await;
        assert_eq!(recs.len(), 2);
        let rollups = st.records("rollup").await;
        let total_q: f64 = rollups.iter().map(|r| n(r, "queries")).sum();
        let total_cost: f64 = rollups.iter().map(|r| n(r, "cost_usd")).sum();
        let rec_cost: f64 = recs.iter().map(|r| n(r, "cost_usd")).sum();
        assert_eq!(total_q, 2.0);
        assert!(
            (total_cost - rec_cost).abs() < 1e-12,
            "{total_cost} vs {rec_cost}"
        );

        // Not sampled at rate 0: nothing on the shadow queue.
        assert!(st.messages(&st.settings.shadow_queue_url).await.is_empty());
        let lines = st.metric_lines();
        assert!(lines.iter().any(|l| l["ColdStart"] == 1.0));
        assert!(
            lines
                .iter()
                .any(|l| l["Queries"] == 1.0 && l["RecordWriteFailures"] == 0.0)
        );
    });
}

#[test]
fn a_sampled_query_leaves_one_message_with_the_documented_body() {
    rt().block_on(async {
        let st = Stack::new(1.0, None, None).await;
        let (status, body, _) = st.call(event("route.json", None, &[])).await;
        assert_eq!(status, 200, "{body}");
        let msgs = st.messages(&st.settings.shadow_queue_url).await;
        assert_eq!(msgs.len(), 1, "{msgs:?}");
        let m = &msgs[0];
        let mut keys: Vec<&str> = m.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "confidence",
                "decided_by",
                "predicted_tier",
                "pricing_version",
                "query",
                "query_id",
                "reference_model",
                "routed_answer",
                "routed_model",
                "routed_tier",
                "tenant",
                "ts",
                "version"
            ]
        );
        assert_eq!(m["query_id"], body["query_id"]);
        assert_eq!(m["query"], "What is the capital of France?");
        assert_eq!(m["routed_model"], body["model"]);
        assert_eq!(m["routed_tier"], body["tier"]);
        assert_eq!(m["reference_model"], "openai/gpt-4o");
        assert_eq!(m["routed_answer"], Value::Null);
        let recs = st.records("cost").await;
        assert_eq!(recs[0]["shadow"], AttributeValue::Bool(true));
        assert_eq!(n(&st.records("rollup").await[0], "shadow_samples"), 1.0);
    });
}

#[test]
fn a_sample_over_the_queue_limit_is_cut_flagged_and_sent() {
    rt().block_on(async {
        let st = Stack::new(1.0, None, None).await;
        // 400 KB of query: within the router's limit, over SQS's 256 KiB a message.
        let query = format!(
            "Summarise this log: {}",
            "disk full on /var; ".repeat(20_000)
        );
        let body = serde_json::json!({ "query": query }).to_string();
        let (status, answer, _) = st.call(event("route.json", Some(&body), &[])).await;
        assert_eq!(status, 200, "{answer}");
        let msgs = st.messages(&st.settings.shadow_queue_url).await;
        assert_eq!(msgs.len(), 1, "the sample is sent, not lost");
        let m = &msgs[0];
        assert_eq!(m["truncated"], true);
        assert!(m.to_string().len() <= 256 * 1024);
        assert!(query.starts_with(m["query"].as_str().unwrap()));
        assert!(
            st.messages(&st.settings.fallback_queue_url)
                .await
                .is_empty()
        );
    });
}

#[test]
fn replays_with_the_same_query_id_are_idempotent() {
    rt().block_on(async {
        let st = Stack::new(1.0, None, None).await;
        let id = "0190c3e0-aaaa-7bbb-8ccc-000000000042";
        let (s1, b1, _) = st
            .call(event("route.json", None, &[(QUERY_ID_HEADER, id)]))
            .await;
        let (s2, b2, _) = st
            .call(event("route.json", None, &[(QUERY_ID_HEADER, id)]))
            .await;
        assert_eq!((s1, s2), (200, 200));
        assert_eq!(
            (b1["query_id"].as_str(), b2["query_id"].as_str()),
            (Some(id), Some(id))
        );
        assert_eq!(b1["model"], b2["model"]);
        assert_eq!(st.records("cost").await.len(), 1);
        let rollups = st.records("rollup").await;
        assert_eq!(rollups.len(), 1);
        assert_eq!(n(&rollups[0], "queries"), 1.0);
        assert_eq!(st.messages(&st.settings.shadow_queue_url).await.len(), 1);
    });
}

#[test]
fn malformed_requests_get_4xx_openai_errors_and_write_nothing() {
    rt().block_on(async {
        let st = Stack::new(1.0, None, None).await;
        let cases: Vec<(Request, u16, &str)> = vec![
            (
                event("route_malformed.json", None, &[]),
                400,
                "invalid JSON",
            ),
            (
                event("route_unknown_field.json", None, &[]),
                400,
                "unknown field `temperature`",
            ),
            (event("route.json", Some(""), &[]), 400, "body is empty"),
            (
                event("route.json", Some("{}"), &[]),
                400,
                "`query` or `messages` is required",
            ),
            (
                event("route.json", Some(r#"{"query": "   "}"#), &[]),
                400,
                "empty",
            ),
            (
                event(
                    "route.json",
                    Some(r#"{"query": "hi", "tenant": "a#b"}"#),
                    &[],
                ),
                400,
                "tenant",
            ),
            (
                event(
                    "route.json",
                    Some(r#"{"query": "hi", "require_confidence": 2}"#),
                    &[],
                ),
                400,
                "require_confidence",
            ),
            (
                event(
                    "route.json",
                    Some(r#"{"query": "hi", "min_tier": "tier9"}"#),
                    &[],
                ),
                400,
                "tier9",
            ),
            (
                event("route.json", None, &[(QUERY_ID_HEADER, "42")]),
                400,
                "UUID",
            ),
            (event("not_found.json", None, &[]), 404, "no route"),
            (
                {
                    let mut ev = fixture("models.json");
                    ev["requestContext"]["http"]["method"] = json!("DELETE");
                    lambda_http::request::from_str(&ev.to_string()).unwrap()
                },
                405,
                "DELETE",
            ),
            (
                event(
                    "route.json",
                    Some(&format!(
                        "{{\"query\": \"{}\"}}",
                        "a".repeat(tierwise_router::MAX_BODY_BYTES)
                    )),
                    &[],
                ),
                413,
                "limit",
            ),
        ];
        for (req, want, says) in cases {
            let (status, body, _) = st.call(req).await;
            assert_eq!(status, want, "{body}");
            let err = &body["error"];
            let msg = err["message"].as_str().unwrap();
            assert!(msg.contains(says), "{want}: {msg}");
            assert!(err["type"].is_string() && err["code"].is_string(), "{body}");
            assert!(!msg.contains("panick") && !msg.contains("src/"), "{msg}");
        }
        assert!(
            st.items().await.is_empty(),
            "a refused request wrote to the table"
        );
        assert!(st.messages(&st.settings.shadow_queue_url).await.is_empty());
        assert!(
            st.messages(&st.settings.fallback_queue_url)
                .await
                .is_empty()
        );
        let errors = st
            .metric_lines()
            .iter()
            .filter(|l| l["Errors"] == 1.0)
            .count();
        assert_eq!(errors, 12);
    });
}

#[test]
fn models_and_base64_fixtures() {
    rt().block_on(async {
        let st = Stack::new(0.0, None, None).await;
        let (status, body, _) = st
            .call(lambda_http::request::from_str(&fixture("models.json").to_string()).unwrap())
            .await;
        assert_eq!(status, 200);
        assert_eq!(body["object"], "list");
        let ids: Vec<&str> = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert!(
            ids.contains(&"openai/gpt-4o") && ids.contains(&"deepseek/deepseek-v3"),
            "{ids:?}"
        );
        let (status, body, _) = st
            .call(
                lambda_http::request::from_str(&fixture("route_base64.json").to_string()).unwrap(),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(st.records("cost").await.len(), 1);
    });
}

/// A TCP endpoint that accepts connections and never answers.
fn black_hole() -> ScriptedServer {
    ScriptedServer::start(vec![], Reply::Hang(Duration::from_secs(30))).unwrap()
}

#[test]
fn a_hung_dynamodb_parks_the_record_the_caller_is_answered_and_redrive_restores_it() {
    rt().block_on(async {
        let hole = black_hole();
        let st = Stack::new(0.0, Some(hole.url()), None).await;
        let started = Instant::now();
        let (status, body, _) = st.call(event("route.json", None, &[])).await;
        let took = started.elapsed();
        assert_eq!(status, 200, "{body}");
        // Bounded by the operation timeout (900 ms) plus routing, not by the hang (30 s).
        assert!(took < Duration::from_secs(3), "{took:?}");
        assert!(
            !hole.received().is_empty(),
            "the app did not call the hung endpoint"
        );
        assert!(st.items().await.is_empty());
        let metrics = st.metric_lines();
        assert!(
            metrics
                .iter()
                .any(|l| l["RecordWriteFailures"] == 1.0 && l["ItemsLost"] == 0.0)
        );

        // The record is parked, whole, on the fallback queue...
        let parked = st.messages(&st.settings.fallback_queue_url).await;
        assert_eq!(parked.len(), 1, "{parked:?}");
        assert_eq!(parked[0]["kind"], "cost_record");
        assert_eq!(parked[0]["record"]["query_id"], body["query_id"]);
        assert_eq!(parked[0]["error"], "DynamoDB did not answer in time");
    });
}

#[test]
fn redrive_writes_parked_records_once() {
    rt().block_on(async {
        let hole = black_hole();
        let st = Stack::new(1.0, Some(hole.url()), None).await;
        for _ in 0..3 {
            let (status, _, _) = st.call(event("route.json", None, &[])).await;
            assert_eq!(status, 200);
        }
        // Samples still went out: only DynamoDB is down.
        assert_eq!(st.messages(&st.settings.shadow_queue_url).await.len(), 3);
        let store = DynamoCostStore::new(st.ddb.clone(), &st.settings.table, 4, 400);
        let fallback = SqsQueue::new(st.sqs.clone(), &st.settings.fallback_queue_url);
        let shadow = SqsQueue::new(st.sqs.clone(), &st.settings.shadow_queue_url);
        let report = redrive(&fallback, &store, &shadow, 100).await.unwrap();
        assert_eq!((report.records_written, report.left), (3, 0), "{report:?}");
        assert_eq!(st.records("cost").await.len(), 3);
        let q: f64 = st
            .records("rollup")
            .await
            .iter()
            .map(|r| n(r, "queries"))
            .sum();
        assert_eq!(q, 3.0);
        // Nothing left to redrive; a record redriven again would be a duplicate.
        let again = redrive(&fallback, &store, &shadow, 100).await.unwrap();
        assert_eq!(again.records_written + again.records_duplicate, 0);
    });
}

#[test]
fn with_every_store_down_the_caller_is_still_answered_and_the_loss_is_counted() {
    rt().block_on(async {
        let hole = black_hole();
        let st = Stack::new(1.0, Some(hole.url()), Some(hole.url())).await;
        let (status, body, _) = st.call(event("route.json", None, &[])).await;
        assert_eq!(status, 200, "{body}");
        let lines = st.metric_lines();
        let line = lines.iter().find(|l| l["Queries"] == 1.0).unwrap();
        assert_eq!(line["RecordWriteFailures"], 1.0);
        assert_eq!(line["SampleSendFailures"], 1.0);
        assert_eq!(line["ItemsLost"], 2.0);
    });
}

const DDB_JSON: &str = "application/x-amz-json-1.0";

fn ddb_error(kind: &str, extra: &str) -> Reply {
    Reply::json(
        400,
        DDB_JSON,
        &format!(
            r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{kind}","message":"scripted"{extra}}}"#
        ),
    )
}

async fn scripted_store(server: &ScriptedServer, max_attempts: u32) -> DynamoCostStore {
    let calls = AwsCallSettings {
        max_attempts,
        ..fast_calls()
    };
    let sdk = sdk_config_at(&calls, server.url()).await;
    DynamoCostStore::new(dynamodb_client(&sdk), "costs", 4, 400)
}

fn a_record() -> tierwise::ledger::records::CostRecord {
    let router = Router::bundled().unwrap();
    let d = router
        .route(
            &tierwise::routing::decision::RouteRequest::query("hello"),
            &tierwise::routing::decision::AllHealthy,
        )
        .unwrap();
    tierwise::ledger::records::CostRecord::routed(
        &d,
        "openai/gpt-4o",
        false,
        tierwise::ledger::records::Timestamp::now(),
    )
}

#[test]
fn throttling_is_retried_by_the_sdk_then_written() {
    rt().block_on(async {
        let server = ScriptedServer::start(
            vec![
                ddb_error("ProvisionedThroughputExceededException", ""),
                ddb_error("ThrottlingException", ""),
            ],
            Reply::json(200, DDB_JSON, "{}"),
        )
        .unwrap();
        let store = scripted_store(&server, 3).await;
        let out = store.write_cost(&a_record()).await.unwrap();
        assert_eq!(out, WriteOutcome::Written);
        let got = server.received();
        assert_eq!(got.len(), 3);
        assert!(
            got.iter()
                .all(|r| r.header("x-amz-target") == Some("DynamoDB_20120810.TransactWriteItems"))
        );
        // The same transaction each time: the conditional put and the rollup update.
        assert!(got[2].body.contains("attribute_not_exists(pk)") && got[2].body.contains("ADD"));
    });
}

#[test]
fn throttling_beyond_the_attempts_is_a_retryable_error() {
    rt().block_on(async {
        let server = ScriptedServer::start(
            vec![],
            ddb_error("ProvisionedThroughputExceededException", ""),
        )
        .unwrap();
        let store = scripted_store(&server, 2).await;
        let err = store.write_cost(&a_record()).await.unwrap_err();
        assert_eq!(err.kind(), "throttled");
        assert!(err.is_retryable());
        assert_eq!(server.received().len(), 2);
    });
}

#[test]
fn server_errors_are_retried_and_client_errors_are_not() {
    rt().block_on(async {
        let server = ScriptedServer::start(
            vec![Reply::json(500, DDB_JSON, r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"x"}"#)],
            Reply::json(200, DDB_JSON, "{}"),
        )
        .unwrap();
        let store = scripted_store(&server, 3).await;
        assert_eq!(store.write_cost(&a_record()).await.unwrap(), WriteOutcome::Written);
        assert_eq!(server.received().len(), 2);

        let server = ScriptedServer::start(vec![], ddb_error("ResourceNotFoundException", "")).unwrap();
        let store = scripted_store(&server, 3).await;
        let err = store.write_cost(&a_record()).await.unwrap_err();
        assert_eq!(err.kind(), "rejected");
        assert!(!err.is_retryable());
        assert_eq!(server.received().len(), 1);
    });
}

#[test]
fn transaction_conflicts_are_retried_and_a_failed_condition_is_a_duplicate() {
    rt().block_on(async {
        let conflict = ddb_error(
            "TransactionCanceledException",
            r#","CancellationReasons":[{"Code":"None"},{"Code":"TransactionConflict","Message":"busy"}]"#,
        );
        let server = ScriptedServer::start(vec![conflict.clone(), conflict], Reply::json(200, DDB_JSON, "{}")).unwrap();
        let store = scripted_store(&server, 1).await;
        assert_eq!(store.write_cost(&a_record()).await.unwrap(), WriteOutcome::Written);
        assert_eq!(server.received().len(), 3);

        let dup = ddb_error(
            "TransactionCanceledException",
            r#","CancellationReasons":[{"Code":"ConditionalCheckFailed","Message":"exists"},{"Code":"None"}]"#,
        );
        let server = ScriptedServer::start(vec![], dup).unwrap();
        let store = scripted_store(&server, 3).await;
        assert_eq!(store.write_cost(&a_record()).await.unwrap(), WriteOutcome::Duplicate);
        assert_eq!(server.received().len(), 1);
    });
}

#[test]
fn a_hung_endpoint_is_cut_by_the_attempt_and_operation_timeouts() {
    rt().block_on(async {
        let hole = black_hole();
        let store = scripted_store(&hole, 3).await;
        let started = Instant::now();
        let err = store.write_cost(&a_record()).await.unwrap_err();
        let took = started.elapsed();
        assert_eq!(err.kind(), "timeout");
        // 3 attempts of 250 ms would be 750 ms + backoff; the 900 ms operation timeout bounds it.
        assert!(took >= Duration::from_millis(240), "{took:?}");
        assert!(took < Duration::from_millis(2_000), "{took:?}");
        assert!(
            hole.received().len() >= 2,
            "attempt timeout did not lead to a retry"
        );
    });
}
