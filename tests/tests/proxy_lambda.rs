//! The proxy (`POST /v1/chat/completions`) end to end: the router Lambda's handler in
//! process, DynamoDB and SQS in `moto_server`, the providers played by a local
//! OpenAI-compatible server that fails on command (429 with Retry-After, 5xx, hangs, truncated
//! JSON, a slow second chunk). Each test asserts the exact upstream calls (count, order,
//! models), the answer the caller got, and the record (and sample) left behind.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "helpers outside #[test] functions panic on bad fixtures too: that is what a test wants"
)]

mod router_stack;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use lambda_http::{Body, Request};
use router_stack::{Item, metric_sink, n, new_resources, records, rt, s, settings_for};
use serde_json::{Value, json};
use tierwise::access::admin::{KeyRequest, create_key};
use tierwise::access::key::{Budget, KeyLimits, Period};
use tierwise::access::store::KeyStore;
use tierwise::aws::keys::DynamoKeyStore;
use tierwise::aws::{dynamodb_client, sdk_config_at, sqs_client};
use tierwise::ledger::money::{Timestamp, Usd};
use tierwise::proxy::upstream::{ApiKey, Endpoint};
use tierwise::routing::decision::Router;
use tierwise::serve::settings::{AwsCallSettings, RouterSettings};
use tierwise_router::{App, build_proxy, build_service};
use tierwise_tests::fake_upstream::{Behaviour, FakeUpstream};
use tierwise_tests::moto::moto;

const KEY: &str = "sk-test-0123456789";
const T1A: &str = "deepseek/deepseek-v3";
const T1B: &str = "google/gemini-3.1-flash-lite";
const T2A: &str = "openai/gpt-4o-mini";

fn calls() -> AwsCallSettings {
    AwsCallSettings {
        operation_timeout: Duration::from_millis(3000),
        attempt_timeout: Duration::from_millis(1500),
        max_attempts: 3,
    }
}

struct Stack {
    app: Arc<App>,
    metric_lines: Arc<std::sync::Mutex<Vec<String>>>,
    fake: Arc<FakeUpstream>,
    ddb: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    settings: RouterSettings,
}

impl Stack {
    async fn new(extra: &[(&str, &str)]) -> Stack {
        Self::build(extra, Arc::new(FakeUpstream::start().unwrap()), None).await
    }

    /// A stack over `fake`; with `table`, on that table and queues (a second instance).
    async fn build(
        extra: &[(&str, &str)],
        fake: Arc<FakeUpstream>,
        share: Option<&Stack>,
    ) -> Stack {
        let endpoint = moto().endpoint().to_string();
        let sdk = sdk_config_at(&calls(), &endpoint).await;
        let ddb = dynamodb_client(&sdk);
        let sqs = sqs_client(&sdk);
        let mut vars = vec![
            ("TIERWISE_SHADOW_RATE", "0"),
            ("TIERWISE_UPSTREAM_ATTEMPT_TIMEOUT_MS", "800"),
            ("TIERWISE_UPSTREAM_READ_TIMEOUT_MS", "500"),
            ("TIERWISE_UPSTREAM_DEFAULT_DEADLINE_MS", "20000"),
        ];
        vars.extend_from_slice(extra);
        let settings = match share {
            Some(s) => settings_for(
                &s.settings.table,
                &s.settings.shadow_queue_url,
                &s.settings.fallback_queue_url,
                &vars,
            ),
            None => new_resources(&ddb, &sqs, "proxy", &vars).await,
        };
        let service = build_service(Router::bundled().unwrap(), &sdk, &sdk, &settings);
        let endpoints = BTreeMap::from([(
            "openrouter".to_string(),
            Endpoint::new(fake.base_url(), ApiKey::new(KEY)),
        )]);
        let proxy = build_proxy(endpoints, &sdk, &settings).unwrap();
        let (metrics, metric_lines) = metric_sink();
        let app = App::new(service, false, 1.0, metrics)
            .with_proxy(Some(proxy), settings.proxy.default_deadline)
            .with_guards(&sdk, &settings);
        Stack {
            app: Arc::new(app),
            metric_lines,
            fake,
            ddb,
            sqs,
            settings,
        }
    }

    async fn post(&self, body: &Value, headers: &[(&str, &str)]) -> Answer {
        let res = self.app.handle(request(body, headers)).await;
        let status = res.status().as_u16();
        let headers = headers_of(res.headers());
        let body = match res.body() {
            Body::Text(t) => t.as_bytes().to_vec(),
            Body::Binary(b) => b.clone(),
            Body::Empty => Vec::new(),
            _ => panic!("unexpected body"),
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    /// A new API key in the stack's table (its text).
    async fn key(&self, tenant: &str, limits: KeyLimits) -> String {
        let store = DynamoKeyStore::new(self.ddb.clone(), &self.settings.table);
        let req = KeyRequest {
            tenant: tenant.into(),
            limits,
            ..KeyRequest::default()
        };
        create_key(&store, &req, Timestamp::now())
            .await
            .unwrap()
            .0
            .text
    }

    async fn records(&self) -> Vec<Item> {
        records(&self.ddb, &self.settings.table, "cost").await
    }

    async fn record(&self, query_id: &str) -> Item {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.settings.table)
            .key("pk", AttributeValue::S(format!("Q#{query_id}")))
            .key("sk", AttributeValue::S("cost".into()))
            .send()
            .await
            .unwrap();
        out.item
            .unwrap_or_else(|| panic!("no cost record for {query_id}"))
    }
}

struct Answer {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }
    fn query_id(&self) -> &str {
        self.header("x-tierwise-query-id")
    }
}

/// An answer's headers as text.
fn headers_of(headers: &lambda_http::http::HeaderMap) -> HashMap<String, String> {
    headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect()
}

fn request(body: &Value, headers: &[(&str, &str)]) -> Request {
    let mut b = lambda_http::http::Request::builder()
        .method("POST")
        .uri("https://example.com/v1/chat/completions")
        .header("content-type", "application/json");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::Text(body.to_string())).unwrap()
}

/// A provider failure with an empty JSON body.
fn failure(status: u16) -> Behaviour {
    Behaviour::Status {
        status,
        retry_after: None,
        body: "{}".into(),
    }
}

/// A greeting: routed to tier1 by the `greeting` rule, whatever the classifier says.
fn hello(extra: Value) -> Value {
    let mut b = json!({"model": "auto", "messages": [{"role": "user", "content": "hello there"}]});
    if let (Value::Object(o), Value::Object(e)) = (&mut b, extra) {
        o.extend(e);
    }
    b
}

fn outcomes(item: &Item) -> Vec<String> {
    item["attempts"]
        .as_l()
        .unwrap()
        .iter()
        .map(|a| {
            let m = a.as_m().unwrap();
            format!(
                "{}:{}",
                m["model"].as_s().unwrap(),
                m["outcome"].as_s().unwrap()
            )
        })
        .collect()
}

#[test]
fn auto_routes_and_returns_the_upstream_answer_unchanged_with_its_cost_from_usage() {
    rt().block_on(async {
        let st = Stack::new(&[]).await;
        let req = hello(json!({"temperature": 0.2, "tierwise": {"tenant": "acme"}}));
        let a = st.post(&req, &[]).await;
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
        let calls = st.fake.calls();
        assert_eq!(st.fake.models_called(), [T1A]);
        // What the provider got: the caller's body with the routed model, no tierwise options.
        let sent: Value = serde_json::from_str(&calls[0].body).unwrap();
        assert_eq!(sent["model"], T1A);
        assert_eq!(sent["temperature"], 0.2);
        assert!(sent.get("tierwise").is_none());
        assert_eq!(
            calls[0].authorization.as_deref(),
            Some(format!("Bearer {KEY}").as_str())
        );
        // What the caller got: the provider's answer and the decision headers.
        let body = a.json();
        assert_eq!(body["model"], T1A);
        assert_eq!(body["object"], "chat.completion");
        assert!(
            body["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .contains("hello there")
        );
        assert_eq!(a.header("x-tierwise-model"), T1A);
        assert_eq!(a.header("x-tierwise-tier"), "tier1");
        assert_eq!(a.header("x-tierwise-decided-by"), "rule:greeting");
        assert!(a.header("x-tierwise-confidence").parse::<f64>().is_ok());
        // The record: the provider's usage, priced at the pool's prices.
        let rec = st.record(a.query_id()).await;
        let usage = &body["usage"];
        let (pin, pout) = (
            usage["prompt_tokens"].as_u64().unwrap(),
            usage["completion_tokens"].as_u64().unwrap(),
        );
        assert_eq!(s(&rec, "status"), "ok");
        assert_eq!(s(&rec, "tenant"), "acme");
        assert_eq!(rec["tokens_estimated"].as_bool().unwrap(), &false);
        assert_eq!(n(&rec, "input_tokens") as u64, pin);
        assert_eq!(n(&rec, "output_tokens") as u64, pout);
        let expect = (pin as f64 * 0.14 + pout as f64 * 0.28) / 1e6;
        assert!(
            (n(&rec, "cost_usd") - expect).abs() < 1e-9,
            "{} vs {expect}",
            n(&rec, "cost_usd")
        );
        let baseline = (pin as f64 * 2.5 + pout as f64 * 10.0) / 1e6;
        assert!((n(&rec, "baseline_cost_usd") - baseline).abs() < 1e-9);
        assert!(n(&rec, "upstream_ms") >= 0.0);
        assert_eq!(outcomes(&rec), [format!("{T1A}:ok")]);
    });
}

#[test]
fn a_429_with_retry_after_is_waited_for_then_the_same_model_answers() {
    rt().block_on(async {
        let st = Stack::new(&[]).await;
        st.fake.script(
            T1A,
            vec![Behaviour::Status {
                status: 429,
                retry_after: Some("1".into()),
                body: "{\"error\":{\"message\":\"slow down\"}}".into(),
            }],
        );
        let a = st.post(&hello(json!({})), &[]).await;
        assert_eq!(a.status, 200);
        let calls = st.fake.calls();
        assert_eq!(st.fake.models_called(), [T1A, T1A]);
        let gap = calls[1].at - calls[0].at;
        assert!(
            gap >= Duration::from_millis(990),
            "retried after {gap:?}, Retry-After was 1 s"
        );
        let rec = st.record(a.query_id()).await;
        assert_eq!(
            outcomes(&rec),
            [format!("{T1A}:rate_limited"), format!("{T1A}:ok")]
        );
        assert_eq!(s(&rec, "status"), "ok");
    });
}

#[test]
fn server_errors_fall_back_through_the_tier_then_up_a_tier() {
    rt().block_on(async {
        let st = Stack::new(&[]).await;
        st.fake.script(T1A, vec![failure(500), failure(500)]);
        st.fake.script(T1B, vec![failure(503), failure(500)]);
        let a = st.post(&hello(json!({})), &[]).await;
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
        assert_eq!(st.fake.models_called(), [T1A, T1A, T1B, T1B, T2A]);
        assert_eq!(a.json()["model"], T2A);
        assert_eq!(a.header("x-tierwise-model"), T2A);
        assert_eq!(a.header("x-tierwise-tier"), "tier2");
        let rec = st.record(a.query_id()).await;
        assert_eq!(s(&rec, "model"), T2A);
        assert_eq!(s(&rec, "tier"), "tier2");
        assert_eq!(
            outcomes(&rec),
            [
                format!("{T1A}:server_error"),
                format!("{T1A}:server_error"),
                format!("{T1B}:server_error"),
                format!("{T1B}:server_error"),
                format!("{T2A}:ok"),
            ]
        );
        // 5xx answers are not billed.
        assert_eq!(n(&rec, "failed_cost_usd"), 0.0);
    });
}

#[test]
fn a_hung_provider_times_out_and_the_next_model_answers() {
    rt().block_on(async {
        let st = Stack::new(&[]).await;
        st.fake.script(
            T1A,
            vec![
                Behaviour::Hang(Duration::from_secs(10)),
                Behaviour::Hang(Duration::from_secs(10)),
            ],
        );
        let started = Instant::now();
        let a = st.post(&hello(json!({})), &[]).await;
        let took = started.elapsed();
        assert_eq!(a.status, 200);
        assert_eq!(st.fake.models_called(), [T1A, T1A, T1B]);
        // Two attempts of 800 ms and one backoff, not the 10 s hang.
        assert!(took < Duration::from_secs(4), "took {took:?}");
        let rec = st.record(a.query_id()).await;
        assert_eq!(
            outcomes(&rec),
            [
                format!("{T1A}:read_timeout"),
                format!("{T1A}:read_timeout"),
                format!("{T1B}:ok")
            ]
        );
        // A timed-out call may have been generated and billed: estimated, never free.
        let failed = n(&rec, "failed_cost_usd");
        assert!(failed > 0.0, "{failed}");
        assert!(n(&rec, "cost_usd") > failed);
        let attempts = rec["attempts"].as_l().unwrap();
        assert_eq!(
            attempts[0].as_m().unwrap()["cost_estimated"],
            AttributeValue::Bool(true)
        );
    });
}

#[test]
fn truncated_answers_are_retried_elsewhere_and_their_cost_is_recorded() {
    rt().block_on(async {
        let st = Stack::new(&[]).await;
        st.fake
            .script(T1A, vec![Behaviour::Truncated, Behaviour::Truncated]);
        let a = st.post(&hello(json!({})), &[]).await;
        assert_eq!(a.status, 200);
        assert_eq!(st.fake.models_called(), [T1A, T1A, T1B]);
        let rec = st.record(a.query_id()).await;
        assert_eq!(
            outcomes(&rec),
            [
                format!("{T1A}:malformed"),
                format!("{T1A}:malformed"),
                format!("{T1B}:ok")
            ]
        );
        // A truncated answer was generated and billed: estimated, and part of the total.
        let failed = n(&rec, "failed_cost_usd");
        assert!(failed > 0.0);
        assert!(n(&rec, "cost_usd") > failed);
        let first = rec["attempts"].as_l().unwrap()[0].as_m().unwrap().clone();
        assert_eq!(first["cost_estimated"].as_bool().unwrap(), &true);
    });
}

#[test]
fn a_request_the_provider_refuses_is_returned_as_sent_and_not_retried() {
    rt().block_on(async {
        let st = Stack::new(&[]).await;
        let refusal = r#"{"error":{"message":"temperature must be <= 2","type":"invalid_request_error","code":"invalid_value"}}"#;
        st.fake.script(T1A, vec![Behaviour::Status { status: 400, retry_after: None, body: refusal.into() }]);
        let a = st.post(&hello(json!({"temperature": 7})), &[]).await;
        assert_eq!(a.status, 400);
        assert_eq!(String::from_utf8_lossy(&a.body), refusal);
        assert_eq!(st.fake.models_called(), [T1A]);
        let rec = st.record(a.query_id()).await;
        assert_eq!(s(&rec, "status"), "rejected");
    });
}

#[test]
fn the_cost_cap_is_enforced_before_any_call() {
    rt().block_on(async {
        let st = Stack::new(&[]).await;
        let a = st.post(&hello(json!({})), &[("x-tierwise-max-cost-usd", "0.0000001")]).await;
        assert_eq!(a.status, 400);
        assert_eq!(a.json()["error"]["code"], "cost_cap_exceeded");
        assert!(st.fake.calls().is_empty());
        // The body option works too, and the lower cap wins.
        let a = st
            .post(&hello(json!({"tierwise": {"max_cost_usd": 0.0000001}})), &[("x-tierwise-max-cost-usd", "5")])
            .await;
        assert_eq!(a.status, 400);
        assert!(st.fake.calls().is_empty());
        // A cap that allows tier1 only: tier1 fails, the chain stops instead of going up.
        st.fake.script(T1A, vec![failure(500), failure(500)]);
        st.fake.script(T1B, vec![failure(500), failure(500)]);
        let req = json!({"model": "auto", "max_tokens": 100, "messages": [{"role": "user", "content": "hello there"}]});
        // tier1 estimate <= 20 x 0.14 + 100 x 0.4 per M: well under 0.00005; gpt-4o-mini's 100
        // output tokens alone cost 0.00006.
        let a = st.post(&req, &[("x-tierwise-max-cost-usd", "0.00005")]).await;
        assert_eq!(a.status, 502, "{}", String::from_utf8_lossy(&a.body));
        assert_eq!(st.fake.models_called(), [T1A, T1A, T1B, T1B]);
        let rec = st.record(a.query_id()).await;
        assert_eq!(s(&rec, "status"), "upstream_error");
        assert!(outcomes(&rec).iter().any(|o| o.ends_with("skipped_cost_cap")));
    });
}

#[test]
fn a_header_cap_above_the_pool_cap_never_raises_it() {
    rt().block_on(async {
        let st = Stack::new(&[]).await;
        // claude-opus-4.7 can write 64,000 tokens at $25/M ($1.60): the pool's $0.50 cap binds,
        // so the call's output is bounded to what $0.50 pays for.
        let req = json!({"model": "anthropic/claude-opus-4.7", "messages": [{"role": "user", "content": "hello there"}]});
        let max_tokens = |st: &Stack| {
            let calls = st.fake.calls();
            let last = calls.last().expect("a provider call");
            serde_json::from_str::<Value>(&last.body).unwrap()["max_tokens"]
                .as_u64()
                .expect("max_tokens injected")
        };
        let a = st.post(&req, &[]).await;
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
        let pool_bound = max_tokens(&st);
        assert!((10_000..=20_000).contains(&pool_bound), "{pool_bound}");
        // A header asking for far more changes nothing.
        let b = st.post(&req, &[("x-tierwise-max-cost-usd", "1e300")]).await;
        assert_eq!(b.status, 200);
        assert_eq!(max_tokens(&st), pool_bound);
        // A lower header cap lowers it.
        let c = st.post(&req, &[("x-tierwise-max-cost-usd", "0.10")]).await;
        assert_eq!(c.status, 200);
        let lowered = max_tokens(&st);
        assert!(lowered < pool_bound / 4, "{lowered} vs {pool_bound}");
        assert_eq!(st.fake.calls().len(), 3);
    });
}

#[test]
fn a_model_of_the_pool_passes_through_without_fallback() {
    rt().block_on(async {
        let st = Stack::new(&[]).await;
        let req = json!({"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hello there"}]});
        let a = st.post(&req, &[]).await;
        assert_eq!(a.status, 200);
        assert_eq!(a.header("x-tierwise-decided-by"), "passthrough");
        assert_eq!(st.fake.models_called(), ["openai/gpt-4o"]);
        st.fake.reset_calls();
        st.fake.script("openai/gpt-4o", vec![failure(500), failure(500)]);
        let a = st.post(&req, &[]).await;
        assert_eq!(a.status, 502);
        assert_eq!(a.json()["error"]["code"], "upstream_error");
        assert_eq!(st.fake.models_called(), ["openai/gpt-4o", "openai/gpt-4o"]);
        let rec = st.record(a.query_id()).await;
        assert_eq!(s(&rec, "status"), "upstream_error");
        assert_eq!(n(&rec, "cost_usd"), 0.0);
    });
}

#[test]
fn bad_requests_get_openai_errors_and_call_nothing() {
    rt().block_on(async {
        let st = Stack::new(&[]).await;
        for (body, status, code) in [
            (json!({"model": "no/such-model", "messages": [{"role": "user", "content": "hi"}]}), 404, "model_not_found"),
            (json!({"model": "auto"}), 400, "invalid_request"),
            (json!({"model": "auto", "messages": "hi"}), 400, "invalid_request"),
            (json!({"model": 5, "messages": [{"role": "user", "content": "hi"}]}), 400, "invalid_request"),
            (json!({"model": "auto", "messages": [{"role": "system", "content": "only a system prompt"}]}), 400, "invalid_request"),
            (json!({"model": "auto", "messages": [{"role": "user", "content": "hi"}], "tierwise": {"nope": 1}}), 400, "invalid_request"),
        ] {
            let a = st.post(&body, &[]).await;
            assert_eq!(a.status, status, "{body}");
            let e = a.json();
            assert_eq!(e["error"]["code"], code, "{e}");
            assert!(e["error"]["message"].as_str().unwrap().len() > 5);
        }
        let a = st.post(&hello(json!({})), &[("x-tierwise-query-id", "not-a-uuid")]).await;
        assert_eq!(a.status, 400);
        assert!(st.fake.calls().is_empty());
        assert!(st.records().await.is_empty());
    });
}

#[test]
fn a_sampled_proxied_query_carries_the_routed_answer_in_its_sample() {
    rt().block_on(async {
        let st = Stack::new(&[("TIERWISE_SHADOW_RATE", "1")]).await;
        let a = st.post(&hello(json!({})), &[]).await;
        assert_eq!(a.status, 200);
        let out = st
            .sqs
            .receive_message()
            .queue_url(&st.settings.shadow_queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        let msgs = out.messages.unwrap_or_default();
        assert_eq!(msgs.len(), 1);
        let sample: Value = serde_json::from_str(msgs[0].body().unwrap()).unwrap();
        assert_eq!(sample["query_id"], a.query_id());
        assert_eq!(sample["routed_model"], T1A);
        assert_eq!(sample["routed_answer"], a.json());
        assert_eq!(sample["messages"][0]["content"], "hello there");
    });
}

/// Reads a streamed answer frame by frame.
async fn stream_frames(st: &Stack, body: &Value) -> (u16, HashMap<String, String>, Vec<String>) {
    let res = st.app.handle_streaming(request(body, &[])).await;
    let status = res.status().as_u16();
    let headers = headers_of(res.headers());
    let mut frames = Vec::new();
    let mut stream = res.into_body().into_data_stream();
    while let Some(f) = stream.next().await {
        frames.push(String::from_utf8(f.unwrap().to_vec()).unwrap());
    }
    (status, headers, frames)
}

#[test]
fn a_stream_is_passed_on_as_it_comes_and_priced_from_its_last_chunk() {
    rt().block_on(async {
        let st = Stack::new(&[]).await;
        let (status, headers, frames) = stream_frames(&st, &hello(json!({"stream": true}))).await;
        assert_eq!(status, 200);
        assert!(headers["content-type"].starts_with("text/event-stream"));
        assert!(frames.len() > 1, "one frame only: {frames:?}");
        let all = frames.concat();
        assert!(all.trim_end().ends_with("data: [DONE]"), "{all}");
        // The provider was asked for usage in the last chunk.
        let sent: Value = serde_json::from_str(&st.fake.calls()[0].body).unwrap();
        assert_eq!(sent["stream_options"]["include_usage"], true);
        let usage_line = all
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
            .find(|v| v["usage"].is_object())
            .expect("a usage chunk");
        let rec = st.record(&headers["x-tierwise-query-id"]).await;
        assert_eq!(s(&rec, "status"), "ok");
        assert_eq!(rec["stream"].as_bool().unwrap(), &true);
        assert_eq!(rec["tokens_estimated"].as_bool().unwrap(), &false);
        assert_eq!(
            n(&rec, "output_tokens") as u64,
            usage_line["usage"]["completion_tokens"].as_u64().unwrap()
        );
    });
}

#[test]
fn a_stream_that_stalls_after_its_first_chunk_ends_with_an_error_event_and_no_failover() {
    rt().block_on(async {
        let st = Stack::new(&[]).await;
        st.fake
            .set_stream_gap(T1A, Duration::ZERO, Some((1, Duration::from_secs(3))));
        let (status, headers, frames) = stream_frames(&st, &hello(json!({"stream": true}))).await;
        assert_eq!(status, 200);
        let all = frames.concat();
        assert!(all.contains("chat.completion.chunk"), "{all}");
        assert!(all.contains("\"code\":\"stream_interrupted\""), "{all}");
        assert!(!all.contains("[DONE]"));
        // Bytes were sent: no other model may be tried.
        assert_eq!(st.fake.models_called(), [T1A]);
        let rec = st.record(&headers["x-tierwise-query-id"]).await;
        assert_eq!(s(&rec, "status"), "upstream_error");
        assert_eq!(outcomes(&rec), [format!("{T1A}:stream_interrupted")]);
    });
}

#[test]
fn a_stream_that_would_outlive_the_invocation_is_cut_and_recorded() {
    rt().block_on(async {
        // 6 s to answer, 4.5 s of it kept for the record: the stream is cut at 1.5 s. The
        // provider sends an event every 400 ms (under the 500 ms read timeout), ~3 s in all.
        let st = Stack::new(&[("TIERWISE_UPSTREAM_DEFAULT_DEADLINE_MS", "6000")]).await;
        st.fake
            .set_stream_gap(T1A, Duration::from_millis(400), None);
        let started = Instant::now();
        let (status, headers, frames) = stream_frames(&st, &hello(json!({"stream": true}))).await;
        let took = started.elapsed();
        assert_eq!(status, 200);
        let all = frames.concat();
        assert!(all.contains("\"code\":\"deadline_exceeded\""), "{all}");
        assert!(!all.contains("[DONE]"));
        assert!(took < Duration::from_millis(2_500), "cut in time: {took:?}");
        let rec = st.record(&headers["x-tierwise-query-id"]).await;
        assert_eq!(s(&rec, "status"), "deadline_cut");
        assert_eq!(outcomes(&rec), [format!("{T1A}:stream_interrupted")]);
        assert!(n(&rec, "cost_usd") > 0.0, "billed as far as it went");
    });
}

#[test]
fn behind_api_gateway_a_stream_is_buffered_whole() {
    rt().block_on(async {
        let st = Stack::new(&[]).await;
        let a = st.post(&hello(json!({"stream": true})), &[]).await;
        assert_eq!(a.status, 200);
        let text = String::from_utf8(a.body.clone()).unwrap();
        assert!(text.trim_end().ends_with("data: [DONE]"));
        let rec = st.record(a.query_id()).await;
        assert_eq!(s(&rec, "status"), "ok");
    });
}

#[test]
fn read_timeouts_a_caller_provokes_do_not_open_the_breaker() {
    rt().block_on(async {
        let breaker = [
            ("TIERWISE_BREAKER_FAILURES", "2"),
            ("TIERWISE_BREAKER_COOLDOWN_MS", "60000"),
        ];
        let st = Stack::new(&breaker).await;
        let hang = || Behaviour::Hang(Duration::from_secs(10));
        st.fake.script(T1A, vec![hang(), hang()]);
        let r = st.post(&hello(json!({})), &[]).await;
        assert_eq!(r.status, 200);
        assert_eq!(st.fake.models_called(), [T1A, T1A, T1B]);
        // Two failures at the threshold, but read timeouts say nothing of the provider: the
        // next request is routed to the first model again.
        st.fake.reset_calls();
        let r = st.post(&hello(json!({})), &[]).await;
        assert_eq!(r.status, 200);
        assert_eq!(st.fake.models_called(), [T1A]);
        assert_eq!(r.header("x-tierwise-model"), T1A);
    });
}

#[test]
fn one_instance_s_failures_open_the_breaker_for_the_others() {
    rt().block_on(async {
        let breaker = [
            ("TIERWISE_BREAKER_FAILURES", "2"),
            ("TIERWISE_BREAKER_COOLDOWN_MS", "60000"),
        ];
        let a = Stack::new(&breaker).await;
        a.fake.script(T1A, vec![failure(500), failure(500)]);
        let r = a.post(&hello(json!({})), &[]).await;
        assert_eq!(r.status, 200);
        assert_eq!(a.fake.models_called(), [T1A, T1A, T1B]);
        // A second instance (its own process state, same table) skips the open model.
        let b = Stack::build(&breaker, Arc::clone(&a.fake), Some(&a)).await;
        a.fake.reset_calls();
        let r = b.post(&hello(json!({})), &[]).await;
        assert_eq!(r.status, 200);
        assert_eq!(a.fake.models_called(), [T1B]);
        assert_eq!(r.header("x-tierwise-model"), T1B);
        // No request was lost on the way: one record per request.
        assert_eq!(a.records().await.len(), 2);
    });
}

#[test]
fn keys_bind_requests_to_their_tenant_and_budget() {
    rt().block_on(async {
        let st = Stack::new(&[("TIERWISE_AUTH", "keys"), ("TIERWISE_KEY_CACHE_SECS", "0")]).await;
        let acme = st.key("acme", KeyLimits::default()).await;
        let globex = st.key("globex", KeyLimits::default()).await;
        let bearer = |k: &str| format!("Bearer {k}");

        // No key, a wrong key: 401 in OpenAI's shape, and no provider call.
        for headers in [vec![], vec![("authorization", "Bearer tw-000000000000-00")]] {
            let a = st.post(&hello(json!({})), &headers).await;
            assert_eq!(a.status, 401, "{}", String::from_utf8_lossy(&a.body));
            assert_eq!(a.json()["error"]["code"], "invalid_api_key");
        }
        assert!(st.fake.calls().is_empty());

        // The key's tenant is the record's; naming another tenant is a 403.
        let auth = bearer(&acme);
        let a = st
            .post(&hello(json!({})), &[("authorization", &auth)])
            .await;
        assert_eq!(a.status, 200);
        assert_eq!(s(&st.record(a.query_id()).await, "tenant"), "acme");
        let a = st
            .post(
                &hello(json!({"tierwise": {"tenant": "globex"}})),
                &[("authorization", &auth)],
            )
            .await;
        assert_eq!(a.status, 403);
        assert_eq!(a.json()["error"]["code"], "tenant_mismatch");
        assert_eq!(st.fake.calls().len(), 1);

        // A budget below the request's worst case (the pool's $0.50 cap): 429
        // insufficient_quota before any provider call.
        let poor = st
            .key(
                "acme",
                KeyLimits {
                    budget: Some(Budget {
                        usd: Usd::from_f64(0.1),
                        period: Period::Day,
                    }),
                    ..KeyLimits::default()
                },
            )
            .await;
        let a = st
            .post(&hello(json!({})), &[("authorization", &bearer(&poor))])
            .await;
        assert_eq!(a.status, 429);
        assert_eq!(a.json()["error"]["code"], "insufficient_quota");
        assert_eq!(st.fake.calls().len(), 1, "no provider call past the budget");

        // Requests per minute: the second is refused with Retry-After.
        let slow = st
            .key(
                "globex",
                KeyLimits {
                    rpm: Some(1),
                    ..KeyLimits::default()
                },
            )
            .await;
        let a = st
            .post(&hello(json!({})), &[("authorization", &bearer(&slow))])
            .await;
        assert_eq!(a.status, 200);
        let a = st
            .post(&hello(json!({})), &[("authorization", &bearer(&slow))])
            .await;
        assert_eq!(a.status, 429);
        assert_eq!(a.json()["error"]["code"], "rate_limit_exceeded");
        assert!(a.headers.contains_key("retry-after"));

        // A revoked key is refused (the cache is off here: at once).
        let store = DynamoKeyStore::new(st.ddb.clone(), &st.settings.table);
        let id = tierwise::access::key::key_id_of(&globex)
            .unwrap()
            .to_string();
        assert!(store.revoke(&id, &Timestamp::now()).await.unwrap());
        let a = st
            .post(&hello(json!({})), &[("authorization", &bearer(&globex))])
            .await;
        assert_eq!(a.status, 401);
    });
}

#[test]
fn a_replayed_query_id_calls_the_provider_once() {
    rt().block_on(async {
        let st = Stack::new(&[]).await;
        let id = "0190c3e0-0000-7000-8000-00000000abcd";
        let first = st
            .post(&hello(json!({})), &[("x-tierwise-query-id", id)])
            .await;
        assert_eq!(first.status, 200);
        let again = st
            .post(&hello(json!({})), &[("x-tierwise-query-id", id)])
            .await;
        assert_eq!(again.status, 200);
        assert_eq!(again.body, first.body, "the kept answer, byte for byte");
        assert_eq!(again.header("x-tierwise-replayed"), "true");
        assert_eq!(
            again.header("x-tierwise-model"),
            first.header("x-tierwise-model")
        );
        assert_eq!(st.fake.calls().len(), 1, "one provider call");
        assert_eq!(st.records().await.len(), 1, "one record");
        // Proxied traffic reports its cost like routed traffic (the spend alarm counts it).
        let cost: f64 = st
            .metric_lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| v["CostUsd"].as_f64())
            .sum();
        let recorded = n(&st.records().await[0], "cost_usd");
        assert!(
            cost > 0.0 && (cost - recorded).abs() < 1e-9,
            "{cost} vs {recorded}"
        );
    });
}

/// What the load run saw, per tenant.
#[derive(Debug, Default)]
struct TenantLoad {
    answered: u32,
    refused_quota: u32,
    other: u32,
}

#[test]
fn a_loopback_load_run_keeps_every_key_within_its_budget_and_loses_nothing() {
    rt().block_on(async {
        let st = Stack::new(&[("TIERWISE_AUTH", "keys")]).await;
        // Every answer is billed 100,000 prompt + 1,000 completion tokens: $0.01428 on the
        // tier1 model ($0.14 / $0.28 per M). Each request caps itself at $0.05: the worst case
        // a reservation holds.
        let billed = || Behaviour::Answer {
            content: Some("ok".into()),
            usage: Some((100_000, 1_000)),
        };
        st.fake.script(T1A, (0..400).map(|_| billed()).collect());
        let budget = Usd::from_f64(0.10);
        let cap = 0.05;
        let tenants = ["acme", "globex", "initech"];
        let mut keys = Vec::new();
        for t in tenants {
            let limits = KeyLimits {
                budget: Some(Budget {
                    usd: budget,
                    period: Period::Day,
                }),
                ..KeyLimits::default()
            };
            keys.push(format!("Bearer {}", st.key(t, limits).await));
        }
        // 20 requests a tenant, interleaved, 16 in flight.
        let jobs: Vec<usize> = (0..60).map(|i| i % 3).collect();
        let started = Instant::now();
        let cap_text = cap.to_string();
        let results: Vec<(usize, u16, String)> = futures_util::stream::iter(jobs)
            .map(|t| {
                let (st, auth, cap) = (&st, keys[t].clone(), cap_text.clone());
                async move {
                    let a = st
                        .post(
                            &hello(json!({})),
                            &[("authorization", &auth), ("x-tierwise-max-cost-usd", &cap)],
                        )
                        .await;
                    let code = a.json()["error"]["code"].as_str().unwrap_or("").to_string();
                    (t, a.status, code)
                }
            })
            .buffer_unordered(16)
            .collect()
            .await;
        let took = started.elapsed();
        let mut load: [TenantLoad; 3] = Default::default();
        for (t, status, code) in &results {
            let l = &mut load[*t];
            match (*status, code.as_str()) {
                (200, _) => l.answered += 1,
                (429, "insufficient_quota") => l.refused_quota += 1,
                _ => l.other += 1,
            }
        }
        assert_eq!(results.len(), 60, "every request answered");
        let records = st.records().await;
        let parked = router_stack::items(&st.ddb, &st.settings.table).await.len();
        let store = DynamoKeyStore::new(st.ddb.clone(), &st.settings.table);
        let day = Period::Day.bucket(&Timestamp::now());
        let mut report = Vec::new();
        for (i, t) in tenants.iter().enumerate() {
            let l = &load[i];
            assert_eq!(l.other, 0, "{t}: {l:?}");
            assert!(l.answered >= 1 && l.refused_quota >= 1, "{t}: {l:?}");
            let id = tierwise::access::key::key_id_of(keys[i].trim_start_matches("Bearer "))
                .unwrap()
                .to_string();
            let spent = store.spent(&id, &day).await.unwrap();
            let recorded: Usd = records
                .iter()
                .filter(|r| s(r, "tenant") == *t)
                .map(|r| Usd::parse_decimal(r["cost_usd"].as_n().unwrap()).unwrap())
                .sum();
            let count = records.iter().filter(|r| s(r, "tenant") == *t).count();
            // Zero records lost: one record per answered request.
            assert_eq!(count as u32, l.answered, "{t}");
            // The budget counter is the recorded spend (reservations all settled) ...
            assert_eq!(spent, recorded, "{t}");
            // ... and never past the budget by more than one request's worst case.
            assert!(spent <= budget + Usd::from_f64(cap), "{t}: spent {spent}");
            report.push(format!(
                "{t}: {} answered, {} refused (insufficient_quota), spent ${spent} of ${budget}",
                l.answered, l.refused_quota
            ));
        }
        assert_eq!(
            st.fake.calls().len() as u32,
            load.iter().map(|l| l.answered).sum::<u32>()
        );
        eprintln!(
            "load run: 60 requests, 16 in flight, 3 tenants, {:.0} ms (table items after: {parked})\n  {}",
            took.as_secs_f64() * 1e3,
            report.join("\n  ")
        );
    });
}
