//! The built `router` binary as Lambda runs it: started by a local Lambda Runtime API
//! emulator (`tests/support/lambda_runtime_api.py`) with an API Gateway v2 event, configured
//! only through its environment — `TIERWISE_*` settings and the SDK's standard
//! `AWS_ENDPOINT_URL` override pointing at a `moto_server` the test starts.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "helpers outside #[test] functions panic on bad fixtures too: that is what a test wants"
)]

use std::process::Command;

use tierwise::aws::{dynamodb_client, sdk_config_at, setup, sqs_client};
use tierwise::serve::settings::AwsCallSettings;
use tierwise_tests::moto::{Moto, unique_name};

const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

struct Resources {
    env: Vec<(String, String)>,
    ddb: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    table: String,
    shadow: String,
}

fn resources(rt: &tokio::runtime::Runtime, moto: &Moto) -> Resources {
    rt.block_on(async {
        let sdk = sdk_config_at(&AwsCallSettings::default(), moto.endpoint()).await;
        let (ddb, sqs) = (dynamodb_client(&sdk), sqs_client(&sdk));
        let r =
            setup::create_router_resources(&ddb, &sqs, &unique_name("costs"), &unique_name("q"))
                .await
                .unwrap();
        let (table, shadow, fallback) = (r.table, r.shadow_queue_url, r.fallback_queue_url);
        // The proxy reads the provider's key at init: from Secrets Manager, as deployed.
        let secret =
            tierwise::aws::secrets::setup_secret(&sdk, &unique_name("openrouter"), "sk-test")
                .await
                .unwrap();
        let key_refs = format!("openrouter=secretsmanager:{secret}");
        let env = [
            ("AWS_ENDPOINT_URL", moto.endpoint()),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "local"),
            ("AWS_SECRET_ACCESS_KEY", "local"),
            ("TIERWISE_TABLE", &table),
            ("TIERWISE_SHADOW_QUEUE_URL", &shadow),
            ("TIERWISE_FALLBACK_QUEUE_URL", &fallback),
            ("TIERWISE_SHADOW_RATE", "1"),
            ("TIERWISE_API_KEY_REFS", &key_refs),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Resources {
            env,
            ddb,
            sqs,
            table,
            shadow,
        }
    })
}

/// Runs the binary once under the emulator; returns (exit ok, stdout, stderr, responses).
fn invoke(event: &str, env: &[(String, String)]) -> (bool, String, String, Vec<serde_json::Value>) {
    let dir = std::env::temp_dir().join(unique_name("lambda-run"));
    std::fs::create_dir_all(&dir).unwrap();
    let responses = dir.join("responses.jsonl");
    let mut cmd = Command::new("python3");
    cmd.arg(format!("{REPO}/tests/support/lambda_runtime_api.py"))
        .arg("--event")
        .arg(format!("{REPO}/tests/fixtures/apigw/{event}"))
        .arg("--runs")
        .arg("1")
        .arg("--timeout")
        .arg("30")
        .arg("--responses")
        .arg(&responses);
    for (k, v) in env {
        cmd.arg("--env").arg(format!("{k}={v}"));
    }
    let out = cmd
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_router"))
        .output()
        .expect("python3 runs the Lambda Runtime API emulator");
    let lines = std::fs::read_to_string(&responses).unwrap_or_default();
    let parsed = lines
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        parsed,
    )
}

/// A `moto_server` of the test's own, and a runtime to set it up from.
fn moto_and_runtime() -> (Moto, tokio::runtime::Runtime) {
    let moto = Moto::start().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    (moto, rt)
}

#[test]
fn the_binary_answers_an_api_gateway_event_and_records_it_through_aws_endpoint_url() {
    let (moto, rt) = moto_and_runtime();
    let res = resources(&rt, &moto);
    let (ok, stdout, stderr, responses) = invoke("route.json", &res.env);
    assert!(ok, "emulator failed\nstdout: {stdout}\nstderr: {stderr}");
    assert_eq!(responses.len(), 1, "{responses:?}");
    // The emulator's response line holds the API Gateway v2 response the binary posted.
    let text = responses[0].to_string();
    assert!(text.contains("statusCode"), "{text}");
    assert!(text.contains("200"), "{text}");

    // The function's log lines: JSON, one "routed" line, and EMF metrics, no query text.
    assert!(
        stderr.contains("\"ColdStart\":1.0") || stdout.contains("\"ColdStart\":1.0"),
        "{stderr}"
    );
    assert!(!stderr.contains("capital of France") && !stdout.contains("capital of France"));
    // The request's log line carries the Lambda request id (the runtime's span).
    let all = format!("{stdout}{stderr}");
    let routed = all
        .lines()
        .find(|l| l.contains("\"routed\""))
        .unwrap_or_else(|| panic!("no routed line in {all}"));
    let line: serde_json::Value = serde_json::from_str(routed).unwrap();
    assert!(
        line["span"]["requestId"]
            .as_str()
            .is_some_and(|id| id.len() >= 32),
        "{routed}"
    );

    rt.block_on(async {
        let items = res
            .ddb
            .scan()
            .table_name(&res.table)
            .send()
            .await
            .unwrap()
            .items
            .unwrap_or_default();
        let costs = items
            .iter()
            .filter(|i| {
                i.get("record")
                    .and_then(|v| v.as_s().ok())
                    .map(String::as_str)
                    == Some("cost")
            })
            .count();
        assert_eq!(costs, 1, "{items:?}");
        let msgs = res
            .sqs
            .receive_message()
            .queue_url(&res.shadow)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
        assert_eq!(msgs.len(), 1);
    });
}

#[test]
fn a_misspelt_setting_stops_the_binary_at_init_and_names_the_variable() {
    let (moto, rt) = moto_and_runtime();
    let mut env = resources(&rt, &moto).env;
    env.push(("TIERWISE_SHADOW_RAET".into(), "0.1".into()));
    let (ok, stdout, stderr, responses) = invoke("route.json", &env);
    assert!(!ok, "init should fail\nstdout: {stdout}\nstderr: {stderr}");
    assert!(responses.is_empty());
    let all = format!("{stdout}{stderr}");
    assert!(all.contains("TIERWISE_SHADOW_RAET"), "{all}");
}
