//! The breakers end to end over the in-memory store: several instances, one manual clock.

use std::sync::Arc;

use super::*;
use crate::routing::decision::HealthView;

const M: &str = "p/model";
const T0: u64 = 1_800_000_000_000;

fn settings() -> BreakerSettings {
    BreakerSettings {
        failure_threshold: 3,
        window: Duration::from_secs(30),
        cooldown: Duration::from_secs(10),
        max_cooldown: Duration::from_secs(25),
        refresh: Duration::from_secs(5),
        probe_lease: Duration::from_secs(20),
    }
}

struct Fixture {
    store: MemoryHealthStore,
    clock: Arc<ManualClock>,
}

impl Fixture {
    fn new() -> Self {
        Self {
            store: MemoryHealthStore::new(),
            clock: Arc::new(ManualClock::new(T0)),
        }
    }

    fn instance(&self, id: &str) -> SharedHealth<MemoryHealthStore> {
        SharedHealth::new(self.store.clone(), settings())
            .with_clock(self.clock.clone())
            .with_instance_id(id)
    }

    fn advance(&self, secs: f64) {
        self.clock.advance(Duration::from_secs_f64(secs));
    }
}

fn phase_of<S: HealthStore>(h: &SharedHealth<S>, model: &str) -> &'static str {
    h.snapshot()
        .into_iter()
        .find(|(m, _)| m == model)
        .map_or("closed", |(_, p)| p)
}

/// Opens `M` through `h` (threshold failures).
async fn open_through<S: HealthStore>(h: &SharedHealth<S>) {
    h.prepare(&[M]).await;
    for _ in 0..settings().failure_threshold {
        h.report_failure(M).await;
    }
    assert!(!h.is_healthy(M), "{:?}", h.snapshot());
}

#[test]
fn default_settings_are_valid_and_bad_ones_are_refused() {
    let d = BreakerSettings::default();
    assert_eq!(d.failure_threshold, 5);
    assert_eq!(d.window, Duration::from_secs(30));
    assert_eq!(d.cooldown, Duration::from_secs(30));
    assert_eq!(d.max_cooldown, Duration::from_secs(300));
    assert_eq!(d.refresh, Duration::from_secs(5));
    assert!(d.validate().is_ok());
    assert!(settings().validate().is_ok());
    let bad = [
        (
            BreakerSettings {
                failure_threshold: 0,
                ..settings()
            },
            "failure_threshold",
        ),
        (
            BreakerSettings {
                window: Duration::ZERO,
                ..settings()
            },
            "window",
        ),
        (
            BreakerSettings {
                max_cooldown: Duration::from_secs(1),
                ..settings()
            },
            "max_cooldown",
        ),
        (
            BreakerSettings {
                refresh: Duration::from_secs(60),
                ..settings()
            },
            "refresh",
        ),
    ];
    for (s, field) in bad {
        let err = s.validate().unwrap_err();
        assert_eq!(err.field, field, "{err}");
    }
}

#[test]
fn futures_are_send() {
    // Lambda handlers and `tokio::spawn` need `Send` futures: no guard crosses an await.
    fn send<T: Send>(_: &T) {}
    let f = Fixture::new();
    let h = f.instance("a");
    send(&h.refresh());
    send(&h.prepare(&[M]));
    send(&h.report_failure(M));
    send(&h.report_success(M));
    send(&h.release_probe(M));
}

#[tokio::test]
async fn threshold_failures_open_the_breaker() {
    let f = Fixture::new();
    let h = f.instance("a");
    h.prepare(&[M]).await;
    assert!(h.is_healthy(M));
    h.report_failure(M).await;
    h.report_failure(M).await;
    assert!(h.is_healthy(M), "below the threshold");
    assert!(f.store.state(M).is_none());
    h.report_failure(M).await;
    assert!(!h.is_healthy(M));
    assert!(h.is_healthy("other/model"));
    assert_eq!(h.snapshot(), vec![(M.to_string(), "open")]);
    let stored = f.store.state(M).unwrap();
    assert_eq!(stored.open_until_ms, T0 + 10_000);
    assert_eq!(stored.cooldown_ms, 10_000);
    assert!(stored.expires_at_ms > stored.open_until_ms);
}

#[tokio::test]
async fn failures_in_different_windows_do_not_add_up() {
    let f = Fixture::new();
    let h = f.instance("a");
    h.report_failure(M).await;
    h.report_failure(M).await;
    f.advance(31.0);
    h.report_failure(M).await;
    assert!(h.is_healthy(M));
    assert!(f.store.state(M).is_none());
}

#[tokio::test]
async fn failures_from_two_instances_add_up() {
    let f = Fixture::new();
    let (a, b) = (f.instance("a"), f.instance("b"));
    a.prepare(&[M]).await;
    b.prepare(&[M]).await;
    a.report_failure(M).await;
    a.report_failure(M).await;
    assert!(a.is_healthy(M) && b.is_healthy(M));
    b.report_failure(M).await;
    assert!(!b.is_healthy(M), "b's failure reached the shared count");
    // a learns it at its next refresh.
    assert!(a.is_healthy(M), "a's snapshot is not stale yet");
    f.advance(5.0);
    a.prepare(&[M]).await;
    assert!(!a.is_healthy(M));
    assert_eq!(phase_of(&a, M), "open");
}

#[tokio::test]
async fn half_open_breaker_is_probed_by_one_instance_only() {
    let f = Fixture::new();
    let (a, b) = (f.instance("a"), f.instance("b"));
    open_through(&a).await;
    f.advance(5.0);
    b.prepare(&[M]).await;
    assert!(!b.is_healthy(M));
    f.advance(5.0); // the cool-down (10 s) is over
    assert_eq!(phase_of(&a, M), "half_open");
    assert!(!a.is_healthy(M), "half-open is unhealthy until claimed");
    a.prepare(&[M]).await;
    b.prepare(&[M]).await;
    assert_eq!((a.is_healthy(M), b.is_healthy(M)), (true, false));
    assert_eq!(phase_of(&a, M), "probing");
    assert_eq!(phase_of(&b, M), "half_open");
    assert_eq!(f.store.state(M).unwrap().probe_owner.as_deref(), Some("a"));
    // b does not try to claim again on every request.
    let writes = f.store.writes();
    for _ in 0..5 {
        b.prepare(&[M]).await;
        assert!(!b.is_healthy(M));
    }
    assert_eq!(f.store.writes(), writes);
}

#[tokio::test]
async fn probe_success_closes_the_breaker_for_everyone() {
    let f = Fixture::new();
    let (a, b) = (f.instance("a"), f.instance("b"));
    open_through(&a).await;
    b.prepare(&[M]).await;
    f.advance(10.0);
    b.prepare(&[M]).await;
    assert!(b.is_healthy(M), "b probes");
    b.report_success(M).await;
    assert!(b.is_healthy(M));
    assert!(f.store.state(M).is_none(), "closed in the store");
    assert!(b.snapshot().is_empty());
    f.advance(5.0);
    a.prepare(&[M]).await;
    assert!(a.is_healthy(M));
    // The failures that opened it do not count again: one more failure does not reopen.
    a.report_failure(M).await;
    assert!(a.is_healthy(M));
    assert!(f.store.state(M).is_none());
}

#[tokio::test]
async fn probe_failure_reopens_with_doubled_cooldown_capped() {
    let f = Fixture::new();
    let a = f.instance("a");
    open_through(&a).await;
    // The first cool-down is 10 s; each failed probe doubles it, capped at 25 s.
    f.advance(10.0);
    for want in [20_000, 25_000, 25_000] {
        a.prepare(&[M]).await;
        assert_eq!(phase_of(&a, M), "probing");
        a.report_failure(M).await;
        assert!(!a.is_healthy(M));
        let s = f.store.state(M).unwrap();
        assert_eq!(s.cooldown_ms, want);
        assert_eq!(s.open_until_ms, f.clock.now_ms() + want);
        assert_eq!(s.opened_at_ms, T0, "the first opening is kept");
        assert!(s.probe_owner.is_none());
        // Still open one millisecond before the end of the new cool-down, then half-open.
        f.clock.advance(Duration::from_millis(want - 1));
        a.prepare(&[M]).await;
        assert!(!a.is_healthy(M));
        f.clock.advance(Duration::from_millis(1));
    }
}

#[tokio::test]
async fn unused_probe_lapses_or_is_released() {
    let f = Fixture::new();
    let (a, b) = (f.instance("a"), f.instance("b"));
    open_through(&a).await;
    f.advance(10.0);
    a.prepare(&[M]).await;
    assert!(a.is_healthy(M));
    // a never reports: after the lease, b may probe.
    f.advance(20.0);
    b.prepare(&[M]).await;
    assert!(b.is_healthy(M));
    assert!(!a.is_healthy(M), "a's claim lapsed");
    // b gives its claim back: a may probe at once.
    b.release_probe(M).await;
    assert!(!b.is_healthy(M));
    f.advance(5.0);
    a.prepare(&[M]).await;
    assert!(a.is_healthy(M));
}

#[tokio::test]
async fn store_down_keeps_the_last_snapshot_and_routing_goes_on() {
    let f = Fixture::new();
    let a = f.instance("a");
    open_through(&a).await;
    f.store.set_down(true);
    f.advance(6.0);
    a.prepare(&[M, "other/model"]).await;
    assert!(!a.is_healthy(M), "the last snapshot is kept");
    assert!(a.is_healthy("other/model"));
    // Reporting goes on without panicking or blocking.
    a.report_failure("other/model").await;
    a.report_success("other/model").await;
    assert!(a.is_healthy("other/model"));
    // A fresh instance that never loaded sees everything healthy.
    let b = f.instance("b");
    b.prepare(&[M]).await;
    assert!(b.is_healthy(M));
    assert!(b.snapshot().is_empty());
    // Back up: the next refresh sees the state (half-open by now, so b probes it).
    f.store.set_down(false);
    f.advance(5.0);
    b.prepare(&[M]).await;
    assert_eq!(phase_of(&b, M), "probing");
}

#[tokio::test]
async fn stale_snapshot_is_refreshed_fresh_one_is_not() {
    let f = Fixture::new();
    let (a, b) = (f.instance("a"), f.instance("b"));
    a.refresh().await;
    open_through(&b).await;
    f.advance(4.9);
    a.refresh().await;
    assert!(a.is_healthy(M), "not reloaded before `refresh`");
    f.advance(0.1);
    a.refresh().await;
    assert!(!a.is_healthy(M), "reloaded once stale");
}

#[tokio::test]
async fn successes_write_nothing_unless_probing() {
    let f = Fixture::new();
    let a = f.instance("a");
    a.prepare(&[M]).await;
    for _ in 0..10 {
        a.report_success(M).await;
    }
    assert_eq!(f.store.writes(), 0);
}

#[tokio::test]
async fn expired_state_counts_as_closed_and_can_reopen() {
    let f = Fixture::new();
    let a = f.instance("a");
    open_through(&a).await;
    let expires = f.store.state(M).unwrap().expires_at_ms;
    f.clock.set(expires);
    assert!(a.is_healthy(M));
    assert_eq!(phase_of(&a, M), "closed");
    // The expired item still in the store does not block a new opening.
    for _ in 0..3 {
        a.report_failure(M).await;
    }
    assert!(!a.is_healthy(M));
    assert_eq!(f.store.state(M).unwrap().opened_at_ms, expires);
}
