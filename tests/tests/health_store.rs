//! The shared circuit breakers over DynamoDB (moto): several router instances, each with its
//! own client, over one table. Failures from all of them add up and open the breaker for
//! all; after the cool-down exactly one claims the probe; its outcome closes (or reopens) the
//! breaker for everyone. Time comes from one manual clock shared by the instances (started at
//! the real time, so the items' `ttl` are real epoch seconds), which makes the windows and
//! cool-downs deterministic.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "fixture helpers outside #[test] fns panic on a broken fixture, as a test should"
)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::AttributeValue;
use tierwise::aws::health::{DynamoHealthStore, HEALTH_PK, failures_pk};
use tierwise::aws::{dynamodb_client, sdk_config_at, setup};
use tierwise::proxy::breaker::{BreakerSettings, Clock, HealthStore, ManualClock, SharedHealth};
use tierwise::routing::decision::HealthView;
use tierwise::serve::settings::AwsCallSettings;
use tierwise_tests::moto::{moto, unique_name};

const MODEL: &str = "openai/gpt-4o-mini";
const OTHER: &str = "deepseek/deepseek-v3";

fn calls() -> AwsCallSettings {
    AwsCallSettings {
        operation_timeout: Duration::from_millis(2_000),
        attempt_timeout: Duration::from_millis(1_000),
        max_attempts: 2,
    }
}

fn settings() -> BreakerSettings {
    BreakerSettings {
        failure_threshold: 4,
        window: Duration::from_secs(600),
        cooldown: Duration::from_millis(200),
        max_cooldown: Duration::from_millis(1_000),
        refresh: Duration::from_millis(100),
        probe_lease: Duration::from_secs(10),
    }
}

fn real_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A fresh table and a client of the test's own to read it.
async fn table() -> (String, aws_sdk_dynamodb::Client) {
    let sdk = sdk_config_at(&calls(), moto().endpoint()).await;
    let client = dynamodb_client(&sdk);
    let name = unique_name("health");
    setup::create_table(&client, &name).await.unwrap();
    (name, client)
}

/// An instance with a client of its own.
async fn instance(table: &str, id: &str, clock: &Arc<ManualClock>) -> Instance {
    let sdk = sdk_config_at(&calls(), moto().endpoint()).await;
    SharedHealth::new(
        DynamoHealthStore::new(dynamodb_client(&sdk), table),
        settings(),
    )
    .with_clock(clock.clone())
    .with_instance_id(id)
}

type Item = HashMap<String, AttributeValue>;
type Instance = SharedHealth<DynamoHealthStore>;

async fn get(client: &aws_sdk_dynamodb::Client, table: &str, pk: &str, sk: &str) -> Option<Item> {
    client
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(pk.into()))
        .key("sk", AttributeValue::S(sk.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
}

fn num(item: &Item, k: &str) -> u64 {
    item.get(k)
        .unwrap_or_else(|| panic!("`{k}` missing from {item:?}"))
        .as_n()
        .unwrap()
        .parse()
        .unwrap()
}

fn text<'a>(item: &'a Item, k: &str) -> &'a str {
    item.get(k)
        .unwrap_or_else(|| panic!("`{k}` missing from {item:?}"))
        .as_s()
        .unwrap()
}

/// A fresh table, a client to read it, a clock started at the real time (`start`), and two
/// instances that opened the breaker of `MODEL` together.
struct Opened {
    table: String,
    reader: aws_sdk_dynamodb::Client,
    start: u64,
    clock: Arc<ManualClock>,
    a: Instance,
    b: Instance,
}

async fn opened() -> Opened {
    let (table, reader) = table().await;
    let start = real_now_ms();
    let clock = Arc::new(ManualClock::new(start));
    let a = instance(&table, "instance-a", &clock).await;
    let b = instance(&table, "instance-b", &clock).await;
    open_from_both(&a, &b, &clock).await;
    Opened {
        table,
        reader,
        start,
        clock,
        a,
        b,
    }
}

/// Opens the breaker of `MODEL` with failures reported by both instances.
async fn open_from_both(a: &Instance, b: &Instance, clock: &ManualClock) {
    a.prepare(&[MODEL, OTHER]).await;
    b.prepare(&[MODEL, OTHER]).await;
    a.report_failure(MODEL).await;
    b.report_failure(MODEL).await;
    a.report_failure(MODEL).await;
    assert!(
        a.is_healthy(MODEL) && b.is_healthy(MODEL),
        "3 of 4 failures"
    );
    b.report_failure(MODEL).await;
    assert!(!b.is_healthy(MODEL), "the 4th failure (b's) opens it");
    assert!(b.is_healthy(OTHER));
    clock.advance(Duration::from_millis(100));
    a.prepare(&[MODEL, OTHER]).await;
    assert!(!a.is_healthy(MODEL), "a sees it open after its refresh");
    assert!(a.is_healthy(OTHER));
    assert_eq!(a.snapshot(), vec![(MODEL.to_string(), "open")]);
}

#[tokio::test]
async fn failures_from_two_instances_open_the_breaker_and_one_probe_closes_it() {
    let Opened {
        table,
        reader,
        start,
        clock,
        a,
        b,
    } = opened().await;

    // The items: a breaker with a ttl, and the window's counter with a ttl.
    let item = get(&reader, &table, HEALTH_PK, MODEL)
        .await
        .expect("breaker item");
    assert_eq!(text(&item, "record"), "health");
    assert_eq!(num(&item, "cooldown_ms"), 200);
    let ttl = num(&item, "ttl");
    let now_s = real_now_ms() / 1000;
    assert!(ttl > now_s && ttl < now_s + 3_600, "ttl {ttl}, now {now_s}");
    let window_start = start - start % 600_000;
    let counter = get(&reader, &table, &failures_pk(window_start), MODEL)
        .await
        .expect("failure counter item");
    assert_eq!(text(&counter, "record"), "health_failures");
    assert_eq!(num(&counter, "failures"), 4);
    assert!(num(&counter, "ttl") > now_s);

    // Cool-down over: both load the half-open state, both try to claim the probe; the
    // conditional write lets exactly one have it. (The claims are sent one after the other:
    // moto's threaded server does not serialise conditional writes on an item the way
    // DynamoDB does, so a truly simultaneous pair could both pass there.)
    clock.advance(Duration::from_millis(200));
    a.refresh().await;
    b.refresh().await;
    assert_eq!(a.snapshot(), vec![(MODEL.to_string(), "half_open")]);
    assert_eq!(b.snapshot(), vec![(MODEL.to_string(), "half_open")]);
    b.prepare(&[MODEL]).await;
    a.prepare(&[MODEL]).await;
    let (ha, hb) = (a.is_healthy(MODEL), b.is_healthy(MODEL));
    assert!(ha ^ hb, "exactly one probes: a {ha}, b {hb}");
    let (prober, other) = if ha { (&a, &b) } else { (&b, &a) };
    let item = get(&reader, &table, HEALTH_PK, MODEL).await.unwrap();
    assert_eq!(text(&item, "probe_owner"), prober.instance_id());
    assert_eq!(prober.snapshot(), vec![(MODEL.to_string(), "probing")]);
    assert_eq!(other.snapshot(), vec![(MODEL.to_string(), "half_open")]);

    // The probe succeeds: closed in the table, for both after the other's refresh.
    prober.report_success(MODEL).await;
    assert!(prober.is_healthy(MODEL));
    assert!(get(&reader, &table, HEALTH_PK, MODEL).await.is_none());
    assert!(
        get(&reader, &table, &failures_pk(window_start), MODEL)
            .await
            .is_none(),
        "the window's count is reset on closing"
    );
    assert!(!other.is_healthy(MODEL), "not yet refreshed");
    clock.advance(Duration::from_millis(100));
    other.prepare(&[MODEL]).await;
    assert!(other.is_healthy(MODEL));
    assert!(other.snapshot().is_empty());
}

#[tokio::test]
async fn a_failed_probe_reopens_with_a_doubled_cooldown_for_everyone() {
    let Opened {
        table,
        reader,
        clock,
        a,
        b,
        ..
    } = opened().await;
    clock.advance(Duration::from_millis(200));
    a.prepare(&[MODEL]).await;
    assert!(a.is_healthy(MODEL), "a probes");
    b.prepare(&[MODEL]).await;
    assert!(!b.is_healthy(MODEL));
    a.report_failure(MODEL).await;
    assert!(!a.is_healthy(MODEL));
    let item = get(&reader, &table, HEALTH_PK, MODEL).await.unwrap();
    assert_eq!(num(&item, "cooldown_ms"), 400);
    assert!(!item.contains_key("probe_owner"));
    let reopened_at = clock.now_ms();
    assert_eq!(num(&item, "open_until"), reopened_at + 400);

    // b, refreshed, sees it open again; after 400 ms b may probe (a's claim is gone).
    clock.advance(Duration::from_millis(300));
    b.prepare(&[MODEL]).await;
    assert_eq!(b.snapshot(), vec![(MODEL.to_string(), "open")]);
    clock.advance(Duration::from_millis(100));
    b.prepare(&[MODEL]).await;
    assert!(b.is_healthy(MODEL), "b probes the reopened breaker");
}

#[tokio::test]
async fn many_instances_racing_for_the_probe_yield_one_prober() {
    let Opened {
        table, clock, a, b, ..
    } = opened().await;
    let mut others = Vec::new();
    for i in 0..4 {
        others.push(instance(&table, &format!("instance-{i}"), &clock).await);
    }
    clock.advance(Duration::from_millis(200));
    let all = [&a, &b, &others[0], &others[1], &others[2], &others[3]];
    // Everyone sees the breaker half-open, then everyone tries to claim (one after the
    // other, see above): one claim passes the condition.
    for h in all {
        h.refresh().await;
        assert_eq!(h.snapshot(), vec![(MODEL.to_string(), "half_open")]);
    }
    for h in all {
        h.prepare(&[MODEL]).await;
    }
    let probers = all.iter().filter(|h| h.is_healthy(MODEL)).count();
    assert_eq!(probers, 1);
}

#[tokio::test]
async fn dynamodb_down_keeps_routing() {
    // Nothing listens on port 9 of localhost: every call fails fast.
    let sdk = sdk_config_at(&calls(), "http://127.0.0.1:9").await;
    let clock = Arc::new(ManualClock::new(real_now_ms()));
    let h = SharedHealth::new(
        DynamoHealthStore::new(dynamodb_client(&sdk), "no-such-table"),
        settings(),
    )
    .with_clock(clock.clone());
    fn send<T: Send>(_: &T) {}
    send(&h.prepare(&[MODEL]));
    send(&h.report_failure(MODEL));
    let started = std::time::Instant::now();
    h.prepare(&[MODEL]).await;
    for _ in 0..5 {
        h.report_failure(MODEL).await;
    }
    h.report_success(MODEL).await;
    assert!(h.is_healthy(MODEL), "nothing known: everything healthy");
    assert!(h.snapshot().is_empty());
    // A load failure is not retried on every request: only once `refresh` has passed.
    let store_calls = started.elapsed();
    assert!(store_calls < Duration::from_secs(20), "{store_calls:?}");
    let before = std::time::Instant::now();
    for _ in 0..20 {
        h.prepare(&[MODEL]).await;
    }
    assert!(
        before.elapsed() < Duration::from_millis(100),
        "prepare retried the load per request: {:?}",
        before.elapsed()
    );
    // The store error itself is typed and retryable.
    let err = h.store().load().await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
}
