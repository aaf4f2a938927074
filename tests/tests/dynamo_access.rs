//! API keys and call markers over DynamoDB (moto).
//!
//! Keys: a key is stored as a hash and read back whole, listed, revoked; budgets are reserved
//! atomically — many concurrent reservations from separate clients never pass the budget —
//! and requests per minute are counted the same way.
//!
//! Call markers: one provider call per query id, even when requests with the same id race from
//! separate clients; a completed call's answer is replayed byte for byte; a dead holder's
//! marker is taken over after its lease; an abandoned marker frees the id.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions fail loudly on a broken fixture"
)]

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use tierwise::access::guard::{AccessError, Guard};
use tierwise::access::key::{Budget, KeyLimits, KeyRecord, Period, generate};
use tierwise::access::store::KeyStore;
use tierwise::aws::keys::DynamoKeyStore;
use tierwise::aws::once::DynamoCallLedger;
use tierwise::aws::{dynamodb_client, sdk_config_at, setup};
use tierwise::ledger::money::{Timestamp, Usd};
use tierwise::ledger::once::{Begin, CallLedger, MAX_STORED_BODY, StoredAnswer};
use tierwise::routing::pool::Tier;
use tierwise::serve::settings::AwsCallSettings;
use tierwise_tests::moto::{moto, unique_name};

fn calls() -> AwsCallSettings {
    AwsCallSettings {
        operation_timeout: Duration::from_millis(3_000),
        attempt_timeout: Duration::from_millis(1_500),
        max_attempts: 3,
    }
}

async fn store() -> (DynamoKeyStore, aws_sdk_dynamodb::Client, String) {
    let sdk = sdk_config_at(&calls(), moto().endpoint()).await;
    let client = dynamodb_client(&sdk);
    let table = unique_name("access");
    setup::create_table(&client, &table).await.unwrap();
    (DynamoKeyStore::new(client.clone(), &table), client, table)
}

#[tokio::test]
async fn a_key_is_stored_as_a_hash_listed_and_revoked() {
    let (store, client, table) = store().await;
    let key = generate().unwrap();
    let limits = KeyLimits {
        budget: Some(Budget {
            usd: Usd::from_f64(12.5),
            period: Period::Month,
        }),
        rpm: Some(30),
        models: Some(vec!["openai/gpt-4o-mini".into()]),
        tiers: Some(vec![Tier::Tier1, Tier::Tier2]),
    };
    let mut rec = KeyRecord::new(&key, "acme", true, limits, Timestamp::now());
    rec.name = Some("ci".into());
    assert!(store.create(&rec).await.unwrap());
    assert!(
        !store.create(&rec).await.unwrap(),
        "a key id is created once"
    );
    assert_eq!(store.get(&key.key_id).await.unwrap(), Some(rec.clone()));
    assert_eq!(store.get("000000000000").await.unwrap(), None);

    // The table holds the hash, never the key.
    let raw = client
        .scan()
        .table_name(&table)
        .send()
        .await
        .unwrap()
        .items()
        .to_vec();
    let dump = format!("{raw:?}");
    assert!(dump.contains(&key.hash));
    assert!(!dump.contains(&key.text), "the key text is not stored");
    assert!(
        raw.iter()
            .any(|i| i.get("record") == Some(&AttributeValue::S("api_key".into())))
    );

    let other = generate().unwrap();
    let plain = KeyRecord::new(
        &other,
        "globex",
        false,
        KeyLimits::default(),
        Timestamp::now(),
    );
    assert!(store.create(&plain).await.unwrap());
    let listed = store.list().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.contains(&plain) && listed.contains(&rec));

    let at = Timestamp::now();
    assert!(store.revoke(&key.key_id, &at).await.unwrap());
    assert_eq!(
        store.get(&key.key_id).await.unwrap().unwrap().revoked,
        Some(at)
    );
    assert!(
        !store
            .revoke("000000000000", &Timestamp::now())
            .await
            .unwrap()
    );

    let guard = Guard::new(store);
    let refused = guard
        .authenticate(Some(&format!("Bearer {}", key.text)), 0)
        .await;
    assert!(
        matches!(refused, Err(AccessError::InvalidKey)),
        "{refused:?}"
    );
    let p = guard
        .authenticate(Some(&format!("Bearer {}", other.text)), 0)
        .await
        .unwrap();
    assert_eq!(p.tenant, "globex");
}

#[tokio::test]
async fn concurrent_reservations_never_pass_the_budget() {
    let (store, _client, table) = store().await;
    let key = generate().unwrap();
    let budget = Budget {
        usd: Usd::from_f64(1.0),
        period: Period::Day,
    };
    let limits = KeyLimits {
        budget: Some(budget),
        ..KeyLimits::default()
    };
    let rec = KeyRecord::new(&key, "acme", false, limits, Timestamp::now());
    assert!(store.create(&rec).await.unwrap());

    // 16 instances, each with its own client, each reserving $0.15 four times: 64 tries for a
    // budget that holds 6.
    let sdk = sdk_config_at(&calls(), moto().endpoint()).await;
    let now = Timestamp::now();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let guard = Arc::new(Guard::new(DynamoKeyStore::new(
            dynamodb_client(&sdk),
            &table,
        )));
        let auth = format!("Bearer {}", key.text);
        let now = now.clone();
        tasks.push(tokio::spawn(async move {
            let p = guard.authenticate(Some(&auth), 0).await.unwrap();
            let mut granted = 0;
            for _ in 0..4 {
                match guard.reserve(&p, Usd::from_f64(0.15), &now).await {
                    Ok(Some(_)) => granted += 1,
                    Err(AccessError::BudgetExhausted { .. }) => {}
                    other => panic!("{other:?}"),
                }
            }
            granted
        }));
    }
    let mut granted = 0;
    for t in tasks {
        granted += t.await.unwrap();
    }
    assert_eq!(granted, 6, "floor(1.00 / 0.15) reservations fit");
    let spent = store
        .spent(&key.key_id, &Period::Day.bucket(&now))
        .await
        .unwrap();
    assert_eq!(spent, Usd::from_f64(0.9));
}

#[tokio::test]
async fn settling_gives_back_and_rpm_counts_per_minute() {
    let (store, _client, _table) = store().await;
    let key = generate().unwrap();
    let limits = KeyLimits {
        budget: Some(Budget {
            usd: Usd::from_f64(0.5),
            period: Period::Day,
        }),
        rpm: Some(3),
        ..KeyLimits::default()
    };
    let rec = KeyRecord::new(&key, "acme", false, limits, Timestamp::now());
    assert!(store.create(&rec).await.unwrap());
    let guard = Guard::new(store);
    let p = guard
        .authenticate(Some(&format!("Bearer {}", key.text)), 0)
        .await
        .unwrap();
    let now = Timestamp::now();
    let r = guard
        .reserve(&p, Usd::from_f64(0.4), &now)
        .await
        .unwrap()
        .unwrap();
    assert!(guard.reserve(&p, Usd::from_f64(0.4), &now).await.is_err());
    guard.settle(r, Usd::from_nanos(1_234)).await.unwrap();
    let bucket = Period::Day.bucket(&now);
    assert_eq!(
        guard.store().spent(&key.key_id, &bucket).await.unwrap(),
        Usd::from_nanos(1_234)
    );
    assert!(
        guard
            .reserve(&p, Usd::from_f64(0.4), &now)
            .await
            .unwrap()
            .is_some()
    );

    let minute = Timestamp::parse("2026-11-30T10:00:30Z").unwrap();
    for _ in 0..3 {
        guard.admit(&p, &minute).await.unwrap();
    }
    let refused = guard.admit(&p, &minute).await;
    assert!(
        matches!(
            refused,
            Err(AccessError::RateLimited {
                limit: 3,
                retry_after_secs: 30
            })
        ),
        "{refused:?}"
    );
    let next = Timestamp::parse("2026-11-30T10:01:00Z").unwrap();
    guard.admit(&p, &next).await.unwrap();
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
    let (_, client, table) = store().await;
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
    let (_, client, table) = store().await;
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
