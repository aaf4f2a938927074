//! The call markers over DynamoDB (moto): one provider call per query id, even when requests
//! with the same id race from separate clients; a completed call's answer is replayed byte for
//! byte; a dead holder's marker is taken over after its lease; an abandoned marker frees the id.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions fail loudly on a broken fixture"
)]

use std::sync::Arc;
use std::time::Duration;

use tierwise::aws::once::DynamoCallLedger;
use tierwise::aws::{dynamodb_client, sdk_config_at, setup};
use tierwise::ledger::once::{Begin, CallLedger, MAX_STORED_BODY, StoredAnswer};
use tierwise::serve::settings::AwsCallSettings;
use tierwise_tests::moto::{moto, unique_name};

fn calls() -> AwsCallSettings {
    AwsCallSettings {
        operation_timeout: Duration::from_millis(3_000),
        attempt_timeout: Duration::from_millis(1_500),
        max_attempts: 3,
    }
}

async fn table() -> (aws_sdk_dynamodb::Client, String) {
    let sdk = sdk_config_at(&calls(), moto().endpoint()).await;
    let client = dynamodb_client(&sdk);
    let table = unique_name("once");
    setup::create_table(&client, &table).await.unwrap();
    (client, table)
}

fn answer(body: &[u8]) -> StoredAnswer {
    StoredAnswer {
        status: 200,
        content_type: "application/json".into(),
        headers: vec![
            ("x-tierwise-model".into(), "openai/gpt-4o-mini".into()),
            ("x-tierwise-tier".into(), "tier1".into()),
        ],
        body: body.to_vec(),
    }
}

#[tokio::test]
async fn racing_requests_get_one_call_and_the_replay_gets_the_answer() {
    let (client, table) = table().await;
    let sdk = sdk_config_at(&calls(), moto().endpoint()).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let ledger = Arc::new(DynamoCallLedger::new(dynamodb_client(&sdk), &table));
        tasks.push(tokio::spawn(async move {
            ledger.begin("q-race", 1_000, 30_000).await.unwrap()
        }));
    }
    let mut started = 0;
    for t in tasks {
        match t.await.unwrap() {
            Begin::Started => started += 1,
            Begin::InProgress => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(started, 1, "exactly one request may call the provider");

    let ledger = DynamoCallLedger::new(client, &table);
    let body = br#"{"id":"chatcmpl-1","choices":[{"message":{"content":"hi \u00e9"}}]}"#;
    ledger
        .complete("q-race", Some(&answer(body)), 4_000_000_000)
        .await
        .unwrap();
    assert_eq!(
        ledger.begin("q-race", 2_000, 30_000).await.unwrap(),
        Begin::Completed(Some(answer(body)))
    );

    // Too large to keep: done, without the body.
    assert_eq!(
        ledger.begin("q-big", 0, 30_000).await.unwrap(),
        Begin::Started
    );
    let big = vec![b'x'; MAX_STORED_BODY + 1];
    ledger
        .complete("q-big", Some(&answer(&big)), 4_000_000_000)
        .await
        .unwrap();
    assert_eq!(
        ledger.begin("q-big", 1, 30_000).await.unwrap(),
        Begin::Completed(None)
    );
}

#[tokio::test]
async fn a_dead_holder_is_taken_over_and_an_abandoned_id_is_free() {
    let (client, table) = table().await;
    let ledger = DynamoCallLedger::new(client, &table);
    assert_eq!(
        ledger.begin("q1", 1_000, 5_000).await.unwrap(),
        Begin::Started
    );
    assert_eq!(
        ledger.begin("q1", 5_999, 5_000).await.unwrap(),
        Begin::InProgress
    );
    assert_eq!(
        ledger.begin("q1", 6_001, 5_000).await.unwrap(),
        Begin::Started,
        "the lease passed: the holder is presumed dead"
    );
    ledger.abandon("q1").await.unwrap();
    assert_eq!(
        ledger.begin("q1", 6_002, 5_000).await.unwrap(),
        Begin::Started
    );
    ledger.complete("q1", None, 4_000_000_000).await.unwrap();
    ledger.abandon("q1").await.unwrap();
    assert_eq!(
        ledger.begin("q1", 7_000, 5_000).await.unwrap(),
        Begin::Completed(None),
        "a completed marker is never abandoned"
    );
}
