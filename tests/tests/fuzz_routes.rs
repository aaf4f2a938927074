#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "helpers outside #[test] functions panic on bad fixtures too; that is what a test wants"
)]

//! Property test of the HTTP edge: 10,000 generated requests — malformed and half-formed bodies
//! (random bytes, random JSON, valid shapes with wrong types), odd headers (query ids, cost
//! caps, keys, content types) and paths, under every method — thrown at the router (proxy on,
//! a local OpenAI-compatible upstream behind it) and the reporter over one moto table. Every
//! answer must come back (no panic), never a 5xx, and every error must be an OpenAI-shaped body
//! (`{"error": {"message", "type", "code"}}`). `PROPTEST_CASES` changes the count.

#[allow(dead_code, reason = "this test uses only the stack's set-up half")]
mod router_stack;

use std::collections::BTreeMap;

use lambda_http::{Body, Request, RequestExt};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use router_stack::{metric_sink, new_resources, rt};
use serde_json::{Value, json};
use tierwise::aws::{dynamodb_client, sdk_config_at, sqs_client};
use tierwise::proxy::upstream::{ApiKey, Endpoint};
use tierwise::routing::decision::Router;
use tierwise::serve::settings::{AwsCallSettings, ReporterSettings};
use tierwise_router::{App, build_proxy, build_service};
use tierwise_tests::fake_upstream::FakeUpstream;
use tierwise_tests::moto::moto;

/// One generated request.
#[derive(Debug, Clone)]
struct Case {
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    query: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Any JSON value, nested a little.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
        Just(json!("auto")),
        Just(json!("tier1")),
        Just(json!("user")),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("query".to_string()),
                    Just("messages".to_string()),
                    Just("model".to_string()),
                    Just("tierwise".to_string()),
                    Just("tenant".to_string()),
                    Just("content".to_string()),
                    Just("role".to_string()),
                    Just("stream".to_string()),
                    Just("max_tokens".to_string()),
                    "[a-z_]{1,12}",
                ],
                inner,
                0..4
            )
            .prop_map(|m: BTreeMap<String, Value>| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Bodies: random bytes, random JSON, and the shapes of valid requests with generated parts.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        json_value().prop_map(|q| json!({ "query": q }).to_string().into_bytes()),
        (json_value(), json_value()).prop_map(|(model, messages)| {
            json!({ "model": model, "messages": messages })
                .to_string()
                .into_bytes()
        }),
        (json_value(), json_value(), json_value()).prop_map(|(role, content, tw)| {
            json!({
                "model": "auto",
                "messages": [{ "role": role, "content": content }],
                "tierwise": tw,
            })
            .to_string()
            .into_bytes()
        }),
        Just(b"{}".to_vec()),
        Just(Vec::new()),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    let method = prop_oneof![
        6 => Just("POST"),
        2 => Just("GET"),
        1 => Just("PUT"),
        1 => Just("DELETE"),
        1 => Just("PATCH")
    ];
    let path = prop_oneof![
        Just("/v1/route".to_string()),
        Just("/v1/chat/completions".to_string()),
        Just("/v1/models".to_string()),
        Just("/v1/reports".to_string()),
        Just("/v1/route/".to_string()),
        "/[a-zA-Z0-9/._~-]{0,30}",
    ];
    let header = prop_oneof![
        "[ -~]{0,40}".prop_map(|v| ("x-tierwise-query-id", v)),
        Just((
            "x-tierwise-query-id",
            "0190c3e0-0000-7000-8000-000000000001".to_string()
        )),
        prop_oneof![
            ".{0,12}",
            Just("1e300".to_string()),
            Just("-1".to_string()),
            Just("NaN".to_string())
        ]
        .prop_map(|v| ("x-tierwise-max-cost-usd", v)),
        "[ -~]{0,40}".prop_map(|v| ("authorization", v)),
        prop_oneof![
            Just("text/plain".to_string()),
            Just("application/json".to_string())
        ]
        .prop_map(|v| ("content-type", v)),
    ];
    let query = prop::collection::vec(
        (
            prop_oneof![
                Just("from".to_string()),
                Just("to".to_string()),
                Just("tenant".to_string()),
                Just("group_by".to_string()),
                "[a-z]{1,8}"
            ],
            ".{0,12}",
        ),
        0..4,
    );
    (
        method,
        path,
        prop::collection::vec(header, 0..4),
        query,
        body(),
    )
        .prop_map(|(method, path, headers, query, body)| Case {
            method,
            path,
            headers,
            query,
            body,
        })
}

fn request(c: &Case) -> Option<Request> {
    let mut b = lambda_http::http::Request::builder()
        .method(c.method)
        .uri(format!("https://example.com{}", c.path));
    for (k, v) in &c.headers {
        // Values that are not valid header text cannot reach a Lambda at all.
        let v = lambda_http::http::HeaderValue::from_str(v).ok()?;
        b = b.header(*k, v);
    }
    let req = b.body(Body::Binary(c.body.clone())).ok()?;
    let mut params = std::collections::HashMap::<String, Vec<String>>::new();
    for (k, v) in &c.query {
        params.entry(k.clone()).or_default().push(v.clone());
    }
    Some(req.with_query_string_parameters(params))
}

#[test]
fn generated_requests_never_panic_never_5xx_and_errors_are_openai_shaped() {
    let rt = rt();
    let (router, reporter, _fake) = rt.block_on(async {
        let sdk = sdk_config_at(
            &AwsCallSettings {
                operation_timeout: std::time::Duration::from_millis(5000),
                attempt_timeout: std::time::Duration::from_millis(2000),
                max_attempts: 3,
            },
            moto().endpoint(),
        )
        .await;
        let (ddb, sqs) = (dynamodb_client(&sdk), sqs_client(&sdk));
        let settings = new_resources(&ddb, &sqs, "fuzz", &[("TIERWISE_SHADOW_RATE", "0")]).await;
        let fake = FakeUpstream::start().unwrap();
        let endpoints = BTreeMap::from([(
            "openrouter".to_string(),
            Endpoint::new(fake.base_url(), ApiKey::new("k")),
        )]);
        let service = build_service(Router::bundled().unwrap(), &sdk, &sdk, &settings);
        let proxy = build_proxy(endpoints, &sdk, &settings).unwrap();
        let (metrics, _) = metric_sink();
        let router = App::new(service, false, 1.0, metrics)
            .with_proxy(Some(proxy), settings.proxy.default_deadline)
            .with_guards(&sdk, &settings);
        let rs =
            ReporterSettings::from_vars([("TIERWISE_TABLE".to_string(), settings.table.clone())])
                .unwrap();
        let reporter = tierwise_reporter::App::new(ddb, &rs, Box::new(|_| {}));
        (router, reporter, fake)
    });
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let statuses = std::cell::RefCell::new(BTreeMap::<u16, u32>::new());
    runner
        .run(&case(), |c| {
            let Some(req) = request(&c) else {
                return Ok(());
            };
            let res = rt.block_on(async {
                if c.path.trim_end_matches('/') == "/v1/reports" {
                    reporter.handle(req).await
                } else {
                    router.handle(req).await
                }
            });
            let status = res.status().as_u16();
            *statuses.borrow_mut().entry(status).or_default() += 1;
            prop_assert!(status < 500, "{status} for {c:?}: {:?}", res.body());
            if status >= 400 {
                let v: Value = serde_json::from_slice(res.body().as_ref()).map_err(|e| {
                    TestCaseError::fail(format!("{status} body not JSON ({e}) for {c:?}"))
                })?;
                let e = &v["error"];
                prop_assert!(
                    e["message"].is_string() && e["type"].is_string() && e["code"].is_string(),
                    "{status} body not OpenAI-shaped: {v} for {c:?}"
                );
            }
            Ok(())
        })
        .unwrap();
    // The generator reached the routes, not only the 404s.
    let statuses = statuses.into_inner();
    let ok = statuses.get(&200).copied().unwrap_or(0);
    let bad = statuses.get(&400).copied().unwrap_or(0);
    assert!(ok > 0 && bad > 0, "{statuses:?}");
    eprintln!("statuses: {statuses:?}");
}
