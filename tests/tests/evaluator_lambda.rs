//! The evaluator Lambda's handler end to end: hand-built SQS events (and, for the dead-letter
//! test, real SQS queues) whose bodies are real shadow samples, DynamoDB in `moto_server`
//! (started by the harness), and a fake OpenAI-compatible upstream on loopback for the models.
//! Checks batch failure reporting, idempotency per query id, retries and the dead-letter
//! queue, verdicts, records, rollups, metrics and the label export.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "helpers outside #[test] functions panic on bad fixtures too; that is what a test wants"
)]

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::SqsEvent;
use serde_json::{Value, json};
use tierwise::aws::evaluations::{DynamoEvaluationStore, export_labels, read_eval_rollups};
use tierwise::aws::{dynamodb_client, sdk_config_at, setup, sqs_client};
use tierwise::ledger::records::ShadowSample;
use tierwise::proxy::upstream::{ApiKey, Endpoint, Endpoints, HttpUpstream, UpstreamSettings};
use tierwise::routing::embed::Embedder;
use tierwise::routing::pool::{PoolConfig, Tier};
use tierwise::serve::settings::AwsCallSettings;
use tierwise::shadow::evaluator::Evaluator;
use tierwise::shadow::record::EvaluationRecord;
use tierwise::shadow::rollup::EvalRollupRow;
use tierwise::shadow::settings::EvaluatorSettings;
use tierwise::shadow::store::MemoryEvaluationStore;
use tierwise_evaluator::App;
use tierwise_tests::fake_upstream::{Behaviour, FakeUpstream};
use tierwise_tests::moto::{moto, unique_name};

const ROUTED: &str = "deepseek/deepseek-v3";
const REFERENCE: &str = "openai/gpt-4o";
const JUDGE: &str = "anthropic/claude-opus-4.7";
const DAY: &str = "2026-11-28";

fn embedder() -> Arc<Embedder> {
    static E: OnceLock<Arc<Embedder>> = OnceLock::new();
    Arc::clone(E.get_or_init(|| Arc::new(Embedder::bundled().unwrap())))
}

fn calls() -> AwsCallSettings {
    AwsCallSettings {
        operation_timeout: Duration::from_secs(5),
        attempt_timeout: Duration::from_secs(2),
        max_attempts: 3,
    }
}

/// A table in moto, a fake upstream for every provider of the bundled pool, an app over them.
struct Stack {
    app: App,
    fake: FakeUpstream,
    ddb: aws_sdk_dynamodb::Client,
    store: DynamoEvaluationStore,
    table: String,
    metrics: Arc<Mutex<Vec<String>>>,
}

impl Stack {
    async fn new(extra: &[(&str, &str)]) -> Stack {
        let sdk = sdk_config_at(&calls(), moto().endpoint()).await;
        let ddb = dynamodb_client(&sdk);
        let table = unique_name("evals");
        setup::create_table(&ddb, &table).await.unwrap();
        let mut vars = vec![
            ("TIERWISE_TABLE".to_string(), table.clone()),
            (
                "TIERWISE_UPSTREAM_TIMEOUT_MS".to_string(),
                "5000".to_string(),
            ),
            ("TIERWISE_LEASE_SECS".to_string(), "60".to_string()),
        ];
        for (k, v) in extra {
            vars.push((k.to_string(), v.to_string()));
        }
        let settings = EvaluatorSettings::from_vars(vars).unwrap();
        let fake = FakeUpstream::start().unwrap();
        let pool = PoolConfig::bundled().unwrap();
        let endpoints: Endpoints = pool
            .providers()
            .map(|(name, _)| {
                (
                    name.to_string(),
                    Endpoint::new(fake.base_url(), ApiKey::new("sk-test")),
                )
            })
            .collect();
        let upstream = HttpUpstream::new(endpoints, &UpstreamSettings::default()).unwrap();
        let store = DynamoEvaluationStore::new(ddb.clone(), &table, settings.eval_ttl_days);
        let evaluator =
            Evaluator::new(upstream, store.clone(), embedder(), pool, settings).unwrap();
        let metrics = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&metrics);
        let app = App::new(
            evaluator,
            Box::new(move |l| sink.lock().unwrap().push(l.to_string())),
        );
        Stack {
            app,
            fake,
            ddb,
            store,
            table,
            metrics,
        }
    }

    async fn record(&self, query_id: &str) -> Option<EvaluationRecord> {
        self.store.record(query_id).await.unwrap()
    }

    async fn rollups(&self) -> Vec<EvalRollupRow> {
        read_eval_rollups(&self.ddb, &self.table, &[DAY.to_string()], None)
            .await
            .unwrap()
    }

    /// The raw eval item (claim or record) of a query.
    async fn eval_item(&self, query_id: &str) -> Option<Value> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key(
                "pk",
                aws_sdk_dynamodb::types::AttributeValue::S(format!("Q#{query_id}")),
            )
            .key(
                "sk",
                aws_sdk_dynamodb::types::AttributeValue::S("eval".into()),
            )
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        out.item.map(|i| {
            Value::Object(
                i.into_iter()
                    .map(|(k, v)| (k, Value::from(format!("{v:?}"))))
                    .collect(),
            )
        })
    }

    /// Handles one batch of `(message id, body)`; the ids reported as failed.
    async fn failed(&self, messages: &[(&str, &str)]) -> Vec<String> {
        let res = self.app.handle(event(messages)).await.unwrap();
        res.batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect()
    }

    /// The EMF lines emitted so far, parsed.
    fn metric_lines(&self) -> Vec<Value> {
        self.metrics
            .lock()
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn metric_sum(&self, name: &str) -> f64 {
        self.metric_lines()
            .iter()
            .filter_map(|v| v.get(name).and_then(Value::as_f64))
            .sum()
    }
}

fn query_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// An OpenAI chat completion as the router would have put it in the sample.
fn completion(model: &str, content: &str, usage: (u64, u64)) -> Value {
    json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_764_288_000,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": usage.0, "completion_tokens": usage.1,
                  "total_tokens": usage.0 + usage.1},
    })
}

fn sample(id: &str, query: &str, routed_answer: Option<Value>) -> ShadowSample {
    serde_json::from_value(json!({
        "version": 1,
        "query_id": id,
        "ts": format!("{DAY}T10:00:00.000Z"),
        "tenant": "acme",
        "query": query,
        "routed_model": ROUTED,
        "routed_tier": "tier1",
        "predicted_tier": "tier1",
        "decided_by": "classifier",
        "confidence": 0.91,
        "reference_model": REFERENCE,
        "routed_answer": routed_answer,
        "pricing_version": "2026-11-01",
    }))
    .unwrap()
}

fn body(s: &ShadowSample) -> String {
    serde_json::to_string(s).unwrap()
}

/// The body of a sample of `query` whose routed answer (`content`, `usage`) came with it.
fn proxied(id: &str, query: &str, content: &str, usage: (u64, u64)) -> String {
    body(&sample(id, query, Some(completion(ROUTED, content, usage))))
}

/// A model answer with its usage.
fn answer(content: &str, usage: (u64, u64)) -> Behaviour {
    Behaviour::Answer {
        content: Some(content.into()),
        usage: Some(usage),
    }
}

/// A record's verdict and method.
fn verdict_of(rec: &EvaluationRecord) -> (&str, &str) {
    (rec.verdict.as_str(), rec.method.as_str())
}

/// An SQS event of `(message id, body)` pairs, as Lambda delivers it.
fn event(messages: &[(&str, &str)]) -> SqsEvent {
    let records: Vec<Value> = messages
        .iter()
        .map(|(id, body)| {
            json!({
                "messageId": id,
                "receiptHandle": format!("rh-{id}"),
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:shadow",
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

#[tokio::test]
async fn a_poisoned_message_is_reported_alone() {
    let st = Stack::new(&[]).await;
    st.fake.set_default(REFERENCE, Behaviour::content("42"));
    let (a, b) = (query_id(), query_id());
    let good_a = proxied(&a, "What is 6 x 7?", "42", (9, 1));
    let good_b = proxied(&b, "What is 40 + 2?", "42", (9, 1));
    let failed = st
        .failed(&[
            ("m-1", &good_a),
            ("m-poison", "{not json"),
            ("m-2", &good_b),
        ])
        .await;
    assert_eq!(failed, ["m-poison"]);
    assert!(st.record(&a).await.is_some());
    assert!(st.record(&b).await.is_some());
    assert_eq!(st.fake.calls_for(REFERENCE), 2);

    // Other poison: an unsupported version, and JSON that is not a sample.
    let mut future: Value = serde_json::from_str(&good_a).unwrap();
    future["version"] = json!(2);
    future["query_id"] = json!(query_id());
    let future = future.to_string();
    let failed = st
        .failed(&[
            ("m-v2", &future),
            ("m-shape", r#"{"version": 1, "hello": "world"}"#),
        ])
        .await;
    assert_eq!(failed, ["m-v2", "m-shape"]);
    assert_eq!(st.fake.calls_for(REFERENCE), 2, "poison costs nothing");
    assert_eq!(st.metric_sum("EvaluationFailures"), 3.0);
    let poisoned = st
        .metric_lines()
        .iter()
        .filter(|v| v["Reason"] == "poisoned")
        .count();
    assert_eq!(poisoned, 3);
}

#[tokio::test]
async fn a_message_without_an_id_fails_the_whole_batch_before_any_call() {
    let st = Stack::new(&[]).await;
    let good = proxied(&query_id(), "Hi", "Hello!", (2, 2));
    let err = st
        .app
        .handle(event(&[("m-1", &good), ("", &good)]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no message id"), "{err}");
    assert!(st.fake.calls().is_empty());
}

#[tokio::test]
async fn a_redelivered_sample_is_evaluated_and_counted_once() {
    let st = Stack::new(&[]).await;
    st.fake.set_default(REFERENCE, answer("Paris", (20, 2)));
    let id = query_id();
    let msg = proxied(&id, "What is the capital of France?", "Paris", (20, 2));
    for receive in 0..3 {
        assert!(
            st.failed(&[("m-1", &msg)]).await.is_empty(),
            "receive {receive}"
        );
    }
    assert_eq!(
        st.fake.calls_for(REFERENCE),
        1,
        "the reference is paid once"
    );
    assert_eq!(st.fake.calls_for(ROUTED), 0);
    let rec = st.record(&id).await.unwrap();
    assert_eq!(rec.verdict, "equivalent");
    let rollups = st.rollups().await;
    assert_eq!(rollups.len(), 1);
    assert_eq!(rollups[0].counters.evaluations, 1);
    assert_eq!(rollups[0].counters.equivalent, 1);
    assert_eq!(st.metric_sum("Evaluations"), 1.0);
    assert_eq!(st.metric_sum("RedeliveredSamples"), 2.0);

    // The same message twice in one batch: one evaluation; the copy is acknowledged as done
    // or retried (busy), never evaluated a second time.
    let id2 = query_id();
    let msg2 = proxied(&id2, "Capital of Italy?", "Rome", (20, 2));
    st.fake.set_default(REFERENCE, Behaviour::content("Rome"));
    assert!(st.failed(&[("m-a", &msg2), ("m-b", &msg2)]).await.len() <= 1);
    assert_eq!(st.fake.calls_for(REFERENCE), 2);
    assert!(st.failed(&[("m-b", &msg2)]).await.is_empty());
    assert_eq!(st.fake.calls_for(REFERENCE), 2);
    let total: u64 = st
        .rollups()
        .await
        .iter()
        .map(|r| r.counters.evaluations)
        .sum();
    assert_eq!(total, 2);
}

#[tokio::test]
async fn a_failing_upstream_leaves_the_message_for_retry_without_a_record() {
    let st = Stack::new(&[]).await;
    st.fake.script(
        REFERENCE,
        vec![Behaviour::server_error(500), Behaviour::server_error(503)],
    );
    st.fake.set_default(REFERENCE, Behaviour::content("4"));
    let id = query_id();
    let msg = proxied(&id, "2 + 2?", "4", (5, 1));
    for attempt in 0..2 {
        assert_eq!(
            st.failed(&[("m-1", &msg)]).await,
            ["m-1"],
            "attempt {attempt}"
        );
        assert!(st.record(&id).await.is_none());
        // The claim was released: the retry need not wait for the lease.
        assert!(st.eval_item(&id).await.is_none(), "attempt {attempt}");
    }
    assert!(st.rollups().await.is_empty());
    assert_eq!(st.metric_sum("EvaluationFailures"), 2.0);
    assert!(
        st.metric_lines().iter().any(|v| v["Reason"] == "upstream"),
        "{:?}",
        st.metric_lines()
    );
    // The upstream recovers: the retry evaluates it.
    assert!(st.failed(&[("m-1", &msg)]).await.is_empty());
    let rec = st.record(&id).await.unwrap();
    assert_eq!(verdict_of(&rec), ("equivalent", "exact"));
    assert_eq!(st.fake.calls_for(REFERENCE), 3);
}

#[tokio::test]
async fn a_sample_that_keeps_failing_ends_in_the_dead_letter_queue() {
    let st = Stack::new(&[]).await;
    st.fake.set_default(REFERENCE, Behaviour::server_error(500));
    let sdk = sdk_config_at(&calls(), moto().endpoint()).await;
    let sqs = sqs_client(&sdk);
    let dlq = setup::create_queue(&sqs, &unique_name("eval-dlq"), None)
        .await
        .unwrap();
    let queue = setup::create_queue(&sqs, &unique_name("shadow"), Some((&dlq, 2)))
        .await
        .unwrap();
    let id = query_id();
    sqs.send_message()
        .queue_url(&queue)
        .message_body(proxied(&id, "2 + 2?", "4", (5, 1)))
        .send()
        .await
        .unwrap();
    // The event source mapping, by hand: receive, handle, delete what succeeded.
    let started = Instant::now();
    let mut handled = 0;
    let in_dlq = loop {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the message never reached the DLQ"
        );
        let got = sqs
            .receive_message()
            .queue_url(&queue)
            .max_number_of_messages(10)
            .visibility_timeout(1)
            .message_system_attribute_names(
                aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount,
            )
            .send()
            .await
            .unwrap();
        let messages = got.messages.unwrap_or_default();
        if messages.is_empty() {
            let parked = sqs
                .receive_message()
                .queue_url(&dlq)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap()
                .messages
                .unwrap_or_default();
            if !parked.is_empty() {
                break parked;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            continue;
        }
        let pairs: Vec<(String, String)> = messages
            .iter()
            .map(|m| {
                (
                    m.message_id().unwrap().to_string(),
                    m.body().unwrap().to_string(),
                )
            })
            .collect();
        let refs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let failed = st.failed(&refs).await;
        handled += 1;
        assert_eq!(failed, [pairs[0].0.clone()]);
        for m in &messages {
            if !failed.iter().any(|f| Some(f.as_str()) == m.message_id()) {
                sqs.delete_message()
                    .queue_url(&queue)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
        tokio::time::sleep(Duration::from_millis(1_100)).await;
    };
    assert_eq!(handled, 2, "maxReceiveCount = 2 receives, then the DLQ");
    assert_eq!(in_dlq.len(), 1);
    let parked: ShadowSample = serde_json::from_str(in_dlq[0].body().unwrap()).unwrap();
    assert_eq!(parked.query_id, id);
    assert!(st.record(&id).await.is_none());
    assert!(st.eval_item(&id).await.is_none());
    assert_eq!(st.fake.calls_for(REFERENCE), 2);
}

#[tokio::test]
async fn the_routed_answer_comes_from_the_sample_and_only_the_reference_is_paid() {
    let st = Stack::new(&[]).await;
    st.fake
        .set_default(REFERENCE, answer("The answer is 42.", (100, 50)));
    let id = query_id();
    let msg = proxied(&id, "What is six times seven?", "42", (100, 1));
    assert!(st.failed(&[("m-1", &msg)]).await.is_empty());
    assert_eq!(st.fake.models_called(), [REFERENCE]);
    let call = &st.fake.calls()[0];
    let sent: Value = serde_json::from_str(&call.body).unwrap();
    assert_eq!(sent["messages"][0]["content"], "What is six times seven?");
    let rec = st.record(&id).await.unwrap();
    assert_eq!(rec.routed_source, "sample");
    assert_eq!(verdict_of(&rec), ("equivalent", "exact"));
    // gpt-4o: $2.50 / M in, $10 / M out.
    let reference_cost = 100.0 * 2.5e-6 + 50.0 * 10e-6;
    assert!(
        (rec.shadow_cost_usd.as_f64() - reference_cost).abs() < 1e-9,
        "{rec:?}"
    );
    assert!((rec.reference_cost_usd.as_f64() - reference_cost).abs() < 1e-9);
    // deepseek-v3: $0.14 / M in, $0.28 / M out, paid by the user's call: not shadow spend.
    assert!((rec.routed_cost_usd.as_f64() - (100.0 * 0.14e-6 + 0.28e-6)).abs() < 1e-9);
    assert_eq!(rec.prompt.as_deref(), Some("What is six times seven?"));
    let rollups = st.rollups().await;
    assert_eq!(rollups[0].counters.shadow_cost.nanos(), 750_000);
    assert_eq!(rollups[0].key.tier, Tier::Tier1);
    assert_eq!(rollups[0].key.model, ROUTED);
    assert_eq!(rollups[0].key.reference_model, REFERENCE);
    // Shadow spend never lands in the cost rollups.
    let cost_rollups =
        tierwise::aws::dynamo::read_rollups(&st.ddb, &st.table, &[DAY.to_string()], None, 1)
            .await
            .unwrap();
    assert!(cost_rollups.is_empty());
}

#[tokio::test]
async fn a_decision_only_sample_asks_both_models_and_pays_both() {
    let st = Stack::new(&[]).await;
    st.fake.set_default(ROUTED, answer("Lyon", (30, 2)));
    st.fake.set_default(REFERENCE, answer("Paris", (30, 2)));
    let id = query_id();
    let msg = body(&sample(&id, "What is the capital of France?", None));
    assert!(st.failed(&[("m-1", &msg)]).await.is_empty());
    assert_eq!(st.fake.calls_for(ROUTED), 1);
    assert_eq!(st.fake.calls_for(REFERENCE), 1);
    let rec = st.record(&id).await.unwrap();
    assert_eq!(rec.routed_source, "evaluator");
    assert_eq!(verdict_of(&rec), ("worse", "exact"));
    let expected = (30.0 * 0.14e-6 + 2.0 * 0.28e-6) + (30.0 * 2.5e-6 + 2.0 * 10e-6);
    assert!(
        (rec.shadow_cost_usd.as_f64() - expected).abs() < 1e-9,
        "{rec:?}"
    );
    let agreement: Vec<f64> = st
        .metric_lines()
        .iter()
        .filter_map(|v| v.get("Agreement").and_then(Value::as_f64))
        .collect();
    assert_eq!(agreement, [0.0]);
    let line = st
        .metric_lines()
        .into_iter()
        .find(|v| v.get("Agreement").is_some())
        .unwrap();
    assert_eq!(line["Service"], "evaluator");
    assert_eq!(line["Tier"], "tier1");
    assert_eq!(
        line["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0],
        json!(["Service", "Tier"])
    );
}

#[tokio::test]
async fn verdicts_on_known_pairs_and_their_labels() {
    let st = Stack::new(&[]).await;
    // (question, routed answer, reference answer, verdict, method)
    let cases = [
        (
            "What is 15% of 200?",
            "30",
            "15% of 200 is 30.",
            "equivalent",
            "exact",
        ),
        (
            "Is water wet? Answer yes or no.",
            "No",
            "Yes",
            "worse",
            "exact",
        ),
        (
            "Which planet is known as the red planet?",
            "Mars",
            "Jupiter",
            "worse",
            "exact",
        ),
        (
            "Explain briefly why the sky is blue.",
            "The sky looks blue because air molecules scatter short blue wavelengths of \
             sunlight much more strongly than the longer red wavelengths (Rayleigh scattering).",
            "Sunlight is scattered by the molecules of the atmosphere, and blue light, with its \
             shorter wavelength, is scattered far more than red light: this Rayleigh scattering \
             makes the sky look blue.",
            "equivalent",
            "similarity",
        ),
    ];
    let mut ids = Vec::new();
    for (q, routed, reference, _, _) in cases {
        let id = query_id();
        st.fake
            .script(REFERENCE, vec![Behaviour::content(reference)]);
        let msg = proxied(&id, q, routed, (10, 5));
        assert!(st.failed(&[("m", &msg)]).await.is_empty(), "{q}");
        ids.push(id);
    }
    for (id, (q, _, _, verdict, method)) in ids.iter().zip(cases) {
        let rec = st.record(id).await.unwrap();
        assert_eq!(verdict_of(&rec), (verdict, method), "{q}: {rec:?}");
        assert_eq!(rec.similarity.is_some(), method == "similarity", "{q}");
    }
    let rollups = st.rollups().await;
    assert_eq!(rollups.len(), 1);
    let c = &rollups[0].counters;
    assert_eq!(
        (c.evaluations, c.equivalent, c.worse, c.better),
        (4, 2, 2, 0)
    );
    assert_eq!(c.methods.get("exact"), Some(&3));
    assert_eq!(c.methods.get("similarity"), Some(&1));
    assert_eq!(c.agreement_rate(), Some(0.5));

    // Every verdict is a training label.
    let mut out = Vec::new();
    let summary = export_labels(&st.ddb, &st.table, DAY, DAY, None, &mut out)
        .await
        .unwrap();
    assert_eq!((summary.records, summary.labels), (4, 4));
    let rows: Vec<Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 4);
    for row in &rows {
        let keys: Vec<&str> = row
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["costs_usd", "id", "prompt", "scores", "task"]);
        let i = ids.iter().position(|id| row["id"] == *id).unwrap();
        let (q, _, _, verdict, _) = cases[i];
        assert_eq!(row["prompt"], q);
        assert_eq!(row["scores"][REFERENCE], 1.0);
        let routed = if verdict == "equivalent" { 1.0 } else { 0.0 };
        assert_eq!(row["scores"][ROUTED], routed, "{q}");
        assert!(row["costs_usd"][REFERENCE].as_f64().unwrap() > 0.0);
    }
    // Another day has none.
    let mut out = Vec::new();
    let none = export_labels(
        &st.ddb,
        &st.table,
        "2026-11-29",
        "2026-11-30",
        None,
        &mut out,
    )
    .await
    .unwrap();
    assert_eq!(none.records, 0);
    assert!(out.is_empty());
}

#[tokio::test]
async fn a_configured_judge_decides_free_text_blind_and_is_shadow_spend() {
    let st = Stack::new(&[("TIERWISE_JUDGE_MODEL", JUDGE)]).await;
    let id = query_id();
    let routed_first = tierwise::shadow::verdict::judge_order(&id);
    // The judge prefers the routed answer, whichever letter it was shown as.
    let winner = if routed_first { "A" } else { "B" };
    st.fake.set_default(
        JUDGE,
        answer(
            &format!(r#"{{"winner": "{winner}", "score": 0.8}}"#),
            (400, 10),
        ),
    );
    st.fake.set_default(
        REFERENCE,
        answer(
            "Photosynthesis turns light into chemical energy in plants.",
            (40, 12),
        ),
    );
    let routed = "In photosynthesis, plants, algae and some bacteria capture light with \
                  chlorophyll and use it to turn water and carbon dioxide into glucose and oxygen.";
    let msg = proxied(&id, "What is photosynthesis?", routed, (40, 30));
    assert!(st.failed(&[("m-1", &msg)]).await.is_empty());
    let rec = st.record(&id).await.unwrap();
    assert_eq!(verdict_of(&rec), ("better", "judge"));
    assert_eq!(rec.judge_score, Some(0.8));
    assert_eq!(rec.judge_model.as_deref(), Some(JUDGE));
    assert!(rec.similarity.is_some());
    // The judge saw both answers, the routed one in the position of its query id, unnamed.
    let judge_call = st
        .fake
        .calls()
        .into_iter()
        .find(|c| c.model == JUDGE)
        .unwrap();
    let sent: Value = serde_json::from_str(&judge_call.body).unwrap();
    let prompt = sent["messages"][1]["content"].as_str().unwrap();
    let (a, b) = (
        prompt.find("Answer A").unwrap(),
        prompt.find("Answer B").unwrap(),
    );
    let routed_at = prompt.find("chlorophyll").unwrap();
    assert_eq!(routed_at > a && routed_at < b, routed_first);
    assert!(!prompt.contains(ROUTED) && !prompt.contains(REFERENCE));
    // Judge + reference are shadow spend (opus: $5 / $25 per M).
    let expected = (40.0 * 2.5e-6 + 12.0 * 10e-6) + (400.0 * 5e-6 + 10.0 * 25e-6);
    assert!(
        (rec.shadow_cost_usd.as_f64() - expected).abs() < 1e-9,
        "{rec:?}"
    );
    // A better routed answer is a label where the routed model wins.
    let label = rec.label().unwrap();
    assert_eq!(label.scores[ROUTED], 1.0);
    assert_eq!(label.scores[REFERENCE], 0.0);
}

#[tokio::test]
async fn settings_refuse_unknown_names_and_bad_values() {
    let base = |extra: &[(&str, &str)]| {
        let mut v = vec![("TIERWISE_TABLE".to_string(), "t".to_string())];
        v.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        EvaluatorSettings::from_vars(v)
    };
    let s = base(&[]).unwrap();
    assert_eq!(s.concurrency, 8);
    assert!(s.keep_prompts);
    assert!(s.judge.is_none());
    let e = base(&[("TIERWISE_LEASE_SEC", "10")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("TIERWISE_LEASE_SEC"), "{e}");
    let e = base(&[("TIERWISE_COMPARE", r#"{"equivalent_similarity": 2}"#)])
        .unwrap_err()
        .to_string();
    assert!(e.contains("COMPARE"), "{e}");
    let s = base(&[("TIERWISE_COMPARE", r#"{"equivalent_similarity": 0.9}"#)]).unwrap();
    assert_eq!(s.compare.equivalent_similarity, 0.9);
    // A judge that is not in the pool is refused when the evaluator is built.
    let s = base(&[("TIERWISE_JUDGE_MODEL", "nobody/none")]).unwrap();
    let upstream = HttpUpstream::new(Endpoints::new(), &UpstreamSettings::default()).unwrap();
    let store = MemoryEvaluationStore::new();
    let e = Evaluator::new(
        upstream,
        store,
        embedder(),
        PoolConfig::bundled().unwrap(),
        s,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("JUDGE_MODEL"), "{e}");
}
