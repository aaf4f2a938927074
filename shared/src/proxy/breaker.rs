//! Shared circuit breakers: one breaker per model whose state lives in a store every router
//! instance reads (DynamoDB in AWS, see [`crate::aws::health`]), so failures one instance
//! observes steer the others.
//!
//! Life of a breaker:
//! - **closed** (no state stored): every instance counts the model's failures in the store,
//!   per fixed window of [`BreakerSettings::window`]; the instance whose failure brings the
//!   window's count to [`BreakerSettings::failure_threshold`] opens the breaker.
//! - **open** until `open_until`: the policy skips the model everywhere.
//! - **half-open** after that: one instance at a time claims the probe (a conditional write,
//!   so a hundred instances do not all hit a failing provider at once); the model is healthy
//!   for that instance only, for at most [`BreakerSettings::probe_lease`].
//! - the probe's outcome: a success closes the breaker (the state is deleted); a failure
//!   reopens it with the cool-down doubled (capped at [`BreakerSettings::max_cooldown`]).
//!
//! [`SharedHealth`] keeps a snapshot of the stored states (refreshed when older than
//! [`BreakerSettings::refresh`]) and answers [`HealthView::is_healthy`] from it without I/O.
//! The store being down never stops routing: the last snapshot is kept (everything healthy
//! when none was ever loaded) and breaker writes are skipped with a warning. Successful
//! requests write nothing, unless they were this instance's probe.
//!
//! Time comes from a [`Clock`], so tests are deterministic ([`ManualClock`]).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::ledger::store::StoreError;
use crate::routing::decision::HealthView;

/// Placeholder owner of a probe another instance won (its id is learnt at the next load).
const OTHER_INSTANCE: &str = "(another instance)";

/// Breaker tuning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Failures (counted across instances) within one window that open the breaker.
    pub failure_threshold: u32,
    /// Length of the fixed windows failures are counted in.
    pub window: Duration,
    /// How long a breaker stays open the first time.
    pub cooldown: Duration,
    /// Upper bound of the cool-down, which doubles on every failed probe.
    pub max_cooldown: Duration,
    /// How stale the snapshot of the stored states may get before it is reloaded.
    pub refresh: Duration,
    /// How long a probe claim holds: another instance may probe once it has passed without
    /// an outcome (the prober died, or never used its claim).
    pub probe_lease: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            window: Duration::from_secs(30),
            cooldown: Duration::from_secs(30),
            max_cooldown: Duration::from_secs(300),
            refresh: Duration::from_secs(5),
            probe_lease: Duration::from_secs(60),
        }
    }
}

/// A breaker setting is out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("breaker setting `{field}` {reason}")]
pub struct BreakerSettingsError {
    pub field: &'static str,
    pub reason: String,
}

impl BreakerSettings {
    /// Checks the settings make sense together.
    pub fn validate(&self) -> Result<(), BreakerSettingsError> {
        let err = |field, reason: &str| {
            Err(BreakerSettingsError {
                field,
                reason: reason.to_string(),
            })
        };
        if self.failure_threshold == 0 {
            return err("failure_threshold", "must be at least 1");
        }
        for (field, d) in [
            ("window", self.window),
            ("cooldown", self.cooldown),
            ("probe_lease", self.probe_lease),
        ] {
            if d.as_millis() == 0 {
                return err(field, "must be at least 1 ms");
            }
        }
        if self.max_cooldown < self.cooldown {
            return err("max_cooldown", "must be at least `cooldown`");
        }
        if self.max_cooldown > Duration::from_secs(86_400) {
            return err("max_cooldown", "must be at most one day");
        }
        if self.refresh > self.cooldown {
            return err(
                "refresh",
                "must be at most `cooldown` (a breaker would otherwise be noticed too late)",
            );
        }
        Ok(())
    }

    fn window_ms(&self) -> u64 {
        ms(self.window).max(1)
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A breaker as stored: present while the model is open or half-open; absent when closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerState {
    pub model: String,
    /// When the breaker first opened (kept across reopenings), epoch ms.
    pub opened_at_ms: u64,
    /// Until when the model is skipped; half-open afterwards. Epoch ms.
    pub open_until_ms: u64,
    /// The cool-down that set `open_until_ms` (doubles on every failed probe).
    pub cooldown_ms: u64,
    /// The instance that holds the probe claim, if any.
    pub probe_owner: Option<String>,
    /// Until when that claim holds, epoch ms.
    pub probe_until_ms: Option<u64>,
    /// After this the state is forgotten (the model counts as closed); also the stored
    /// item's TTL. Epoch ms.
    pub expires_at_ms: u64,
}

/// Where a breaker stands at some instant, seen from one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No (live) state: the model is used.
    Closed,
    /// Cooling down: skipped.
    Open,
    /// Cool-down over; no live probe claim (or another instance's): skipped here.
    HalfOpen,
    /// This instance holds the probe claim: the model is used here.
    Probing,
}

impl Phase {
    /// `closed`, `open`, `half_open` or `probing`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Closed => "closed",
            Phase::Open => "open",
            Phase::HalfOpen => "half_open",
            Phase::Probing => "probing",
        }
    }
}

impl BreakerState {
    /// The phase at `now_ms`, for instance `instance`.
    pub fn phase(&self, now_ms: u64, instance: &str) -> Phase {
        if now_ms >= self.expires_at_ms {
            Phase::Closed
        } else if now_ms < self.open_until_ms {
            Phase::Open
        } else if self.probe_owner.as_deref() == Some(instance) && self.probe_live(now_ms) {
            Phase::Probing
        } else {
            Phase::HalfOpen
        }
    }

    /// Whether a probe claim is held at `now_ms` (by anyone).
    pub fn probe_live(&self, now_ms: u64) -> bool {
        self.probe_owner.is_some() && self.probe_until_ms.is_some_and(|u| now_ms < u)
    }

    /// Whether an instance may claim the probe at `now_ms`.
    pub fn claimable(&self, now_ms: u64) -> bool {
        now_ms < self.expires_at_ms && now_ms >= self.open_until_ms && !self.probe_live(now_ms)
    }
}

/// The breakers' storage, shared by every instance. Every conditional operation returns
/// whether it took effect: losing a race is not an error.
pub trait HealthStore: Send + Sync {
    /// Every stored breaker state.
    fn load(&self) -> impl Future<Output = Result<Vec<BreakerState>, StoreError>> + Send;

    /// Counts one failure of `model` in the window starting at `window_start_ms` (of length
    /// `window_ms`) and returns the window's count so far, every instance's included.
    fn record_failure(
        &self,
        model: &str,
        window_start_ms: u64,
        window_ms: u64,
    ) -> impl Future<Output = Result<u32, StoreError>> + Send;

    /// Opens a closed breaker: writes `state` only if no state exists for its model, or only
    /// one that expired before `now_ms` (the store may delete expired items late).
    fn open(
        &self,
        state: &BreakerState,
        now_ms: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Reopens after a failed probe: replaces the state only while `prober` holds its probe
    /// claim.
    fn reopen(
        &self,
        state: &BreakerState,
        prober: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Claims the probe of a half-open breaker for `instance` until `until_ms`: only if the
    /// state exists, its cool-down is over at `now_ms` and no claim is live then. The state's
    /// expiry moves to `expires_at_ms` (so it outlives the claim).
    fn claim_probe(
        &self,
        model: &str,
        instance: &str,
        now_ms: u64,
        until_ms: u64,
        expires_at_ms: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Gives a probe claim back unused (only while `instance` holds it).
    fn release_probe(
        &self,
        model: &str,
        instance: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Closes the breaker after a successful probe: deletes the state only while `instance`
    /// holds the probe claim, and then resets the failure count of the window starting at
    /// `window_start_ms` (so the failures that opened the breaker do not count again).
    fn close(
        &self,
        model: &str,
        instance: &str,
        window_start_ms: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Wall-clock time in epoch milliseconds.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(ms)
            .unwrap_or(0)
    }
}

/// A clock that only moves when told to (tests).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    pub fn new(now_ms: u64) -> Self {
        Self(AtomicU64::new(now_ms))
    }

    pub fn set(&self, now_ms: u64) {
        self.0.store(now_ms, Ordering::SeqCst);
    }

    pub fn advance(&self, d: Duration) {
        self.0.fetch_add(ms(d), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The snapshot of stored states and when it was (last tried to be) loaded.
#[derive(Debug, Default)]
struct Snapshot {
    states: HashMap<String, BreakerState>,
    /// Last load attempt (successful or not), epoch ms; `None` before the first.
    attempted_ms: Option<u64>,
}

/// One instance's view of the shared breakers. See the module documentation.
pub struct SharedHealth<S: HealthStore> {
    store: S,
    settings: BreakerSettings,
    clock: Arc<dyn Clock>,
    instance: String,
    snapshot: Mutex<Snapshot>,
}

impl<S: HealthStore> SharedHealth<S> {
    /// A view over `store` on the system clock, with a fresh instance id. Nothing is loaded
    /// until the first [`refresh`](Self::refresh) / [`prepare`](Self::prepare).
    pub fn new(store: S, settings: BreakerSettings) -> Self {
        Self {
            store,
            settings,
            clock: Arc::new(SystemClock),
            instance: uuid::Uuid::now_v7().to_string(),
            snapshot: Mutex::new(Snapshot::default()),
        }
    }

    /// Uses `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Names this instance (probe claims carry it); unique per process by default.
    pub fn with_instance_id(mut self, id: impl Into<String>) -> Self {
        self.instance = id.into();
        self
    }

    /// This instance's id.
    pub fn instance_id(&self) -> &str {
        &self.instance
    }

    pub fn settings(&self) -> &BreakerSettings {
        &self.settings
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    fn lock(&self) -> MutexGuard<'_, Snapshot> {
        self.snapshot.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Reloads the states when the last load (attempt) is older than `refresh`. A store
    /// failure keeps the last snapshot (logged); the next attempt waits another `refresh`, so
    /// a store outage does not cost every request a timeout.
    pub async fn refresh(&self) {
        let now = self.now();
        let stale = {
            let mut snap = self.lock();
            let stale = snap
                .attempted_ms
                .is_none_or(|t| now.saturating_sub(t) >= ms(self.settings.refresh));
            if stale {
                snap.attempted_ms = Some(now);
            }
            stale
        };
        if stale {
            self.reload().await;
        }
    }

    /// Reloads the states now.
    pub async fn reload(&self) {
        match self.store.load().await {
            Ok(states) => {
                let mut snap = self.lock();
                snap.states = states.into_iter().map(|s| (s.model.clone(), s)).collect();
                snap.attempted_ms = Some(self.now());
            }
            Err(e) => tracing::warn!(
                error = %e,
                kind = e.kind(),
                "circuit breaker states could not be loaded; keeping the last snapshot"
            ),
        }
    }

    /// Before a request's attempts: refreshes a stale snapshot, then claims the probe of every
    /// half-open model among `models` (the candidates the request may try), so that one of
    /// them becomes healthy for this instance. A claim this request does not use can be given
    /// back with [`release_probe`](Self::release_probe); otherwise it lapses after
    /// `probe_lease`.
    pub async fn prepare(&self, models: &[&str]) {
        self.refresh().await;
        let now = self.now();
        let claimable: Vec<String> = {
            let snap = self.lock();
            models
                .iter()
                .filter_map(|m| snap.states.get(*m))
                .filter(|s| s.claimable(now))
                .map(|s| s.model.clone())
                .collect()
        };
        for model in claimable {
            let until = now.saturating_add(ms(self.settings.probe_lease));
            let expires = self.expiry(until);
            match self
                .store
                .claim_probe(&model, &self.instance, now, until, expires)
                .await
            {
                Ok(true) => {
                    tracing::info!(model = %model, "circuit breaker half-open: probing");
                    let mut snap = self.lock();
                    if let Some(s) = snap.states.get_mut(&model) {
                        s.probe_owner = Some(self.instance.clone());
                        s.probe_until_ms = Some(until);
                        s.expires_at_ms = expires;
                    }
                }
                // Another instance probes it (or it changed): unhealthy here until the next
                // load, which comes at the next request, so claims are not retried per request.
                Ok(false) => {
                    let mut snap = self.lock();
                    snap.attempted_ms = None;
                    if let Some(s) = snap.states.get_mut(&model) {
                        s.probe_owner = Some(OTHER_INSTANCE.to_string());
                        s.probe_until_ms = Some(until);
                    }
                }
                Err(e) => tracing::warn!(
                    model = %model,
                    error = %e,
                    kind = e.kind(),
                    "circuit breaker probe could not be claimed"
                ),
            }
        }
    }

    /// A request to `model` succeeded. Writes only when it was this instance's probe: the
    /// breaker closes, for everyone.
    pub async fn report_success(&self, model: &str) {
        let probing = {
            let snap = self.lock();
            snap.states
                .get(model)
                .is_some_and(|s| s.probe_owner.as_deref() == Some(self.instance.as_str()))
        };
        if !probing {
            return;
        }
        // Closed here whatever the store says: the model answered.
        self.lock().states.remove(model);
        let start = self.window_start(self.now());
        match self.store.close(model, &self.instance, start).await {
            Ok(true) => tracing::info!(model = %model, "circuit breaker closed: probe succeeded"),
            Ok(false) => tracing::info!(
                model = %model,
                "probe succeeded but the claim had lapsed; the breaker was left as stored"
            ),
            Err(e) => tracing::warn!(
                model = %model,
                error = %e,
                kind = e.kind(),
                "circuit breaker could not be closed after a successful probe"
            ),
        }
    }

    /// A request to `model` failed in a way that counts against the model (see
    /// `UpstreamError::counts_against_model`). A failed probe reopens the breaker with the
    /// cool-down doubled; otherwise the failure is counted, and the one that reaches the
    /// threshold opens the breaker.
    pub async fn report_failure(&self, model: &str) {
        let now = self.now();
        let known = self.lock().states.get(model).cloned();
        match known {
            Some(s) if s.probe_owner.as_deref() == Some(self.instance.as_str()) => {
                self.reopen(s, now).await;
            }
            // Already open or half-open (another instance decides): nothing to count.
            Some(s) if s.phase(now, &self.instance) != Phase::Closed => {}
            _ => self.count_failure(model, now).await,
        }
    }

    /// Gives back an unused probe claim on `model`, so another instance may probe at once.
    pub async fn release_probe(&self, model: &str) {
        let probing = {
            let mut snap = self.lock();
            match snap.states.get_mut(model) {
                Some(s) if s.probe_owner.as_deref() == Some(self.instance.as_str()) => {
                    s.probe_owner = None;
                    s.probe_until_ms = None;
                    true
                }
                _ => false,
            }
        };
        if probing && let Err(e) = self.store.release_probe(model, &self.instance).await {
            tracing::warn!(
                model = %model,
                error = %e,
                kind = e.kind(),
                "probe claim could not be released; it lapses by itself"
            );
        }
    }

    /// When a state whose cool-down (or probe) ends at `until_ms` is forgotten: long enough
    /// for every instance to notice and probe it.
    fn expiry(&self, until_ms: u64) -> u64 {
        until_ms
            .saturating_add(ms(self.settings.max_cooldown))
            .saturating_add(ms(self.settings.probe_lease))
    }

    fn window_start(&self, now: u64) -> u64 {
        now - now % self.settings.window_ms()
    }

    async fn count_failure(&self, model: &str, now: u64) {
        let window = self.settings.window_ms();
        let start = self.window_start(now);
        let count = match self.store.record_failure(model, start, window).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(
                    model = %model,
                    error = %e,
                    kind = e.kind(),
                    "model failure could not be counted"
                );
                return;
            }
        };
        if count < self.settings.failure_threshold {
            return;
        }
        let cooldown = ms(self.settings.cooldown);
        let until = now.saturating_add(cooldown);
        let state = BreakerState {
            model: model.to_string(),
            opened_at_ms: now,
            open_until_ms: until,
            cooldown_ms: cooldown,
            probe_owner: None,
            probe_until_ms: None,
            expires_at_ms: self.expiry(until),
        };
        match self.store.open(&state, now).await {
            Ok(true) => {
                tracing::warn!(
                    model = %model,
                    failures = count,
                    cooldown_ms = cooldown,
                    "circuit breaker opened"
                );
                self.lock().states.insert(model.to_string(), state);
            }
            // Opened by another instance meanwhile: reload at the next request.
            Ok(false) => self.lock().attempted_ms = None,
            Err(e) => tracing::warn!(
                model = %model,
                error = %e,
                kind = e.kind(),
                "circuit breaker could not be opened"
            ),
        }
    }

    async fn reopen(&self, probed: BreakerState, now: u64) {
        let cooldown = probed
            .cooldown_ms
            .saturating_mul(2)
            .clamp(ms(self.settings.cooldown), ms(self.settings.max_cooldown));
        let until = now.saturating_add(cooldown);
        let state = BreakerState {
            open_until_ms: until,
            cooldown_ms: cooldown,
            probe_owner: None,
            probe_until_ms: None,
            expires_at_ms: self.expiry(until),
            ..probed
        };
        // Open here whatever the store says: the probe failed.
        self.lock()
            .states
            .insert(state.model.clone(), state.clone());
        match self.store.reopen(&state, &self.instance).await {
            Ok(true) => tracing::warn!(
                model = %state.model,
                cooldown_ms = cooldown,
                "circuit breaker reopened: probe failed"
            ),
            Ok(false) => {
                tracing::info!(model = %state.model, "probe failed but the claim had lapsed");
                self.lock().attempted_ms = None;
            }
            Err(e) => tracing::warn!(
                model = %state.model,
                error = %e,
                kind = e.kind(),
                "circuit breaker could not be reopened after a failed probe"
            ),
        }
    }

    /// Every known breaker and its phase here (`closed`, `open`, `half_open`, `probing`),
    /// sorted by model; models with no state are closed and not listed.
    pub fn snapshot(&self) -> Vec<(String, &'static str)> {
        let now = self.now();
        let snap = self.lock();
        let sorted: BTreeMap<_, _> = snap
            .states
            .values()
            .map(|s| (s.model.clone(), s.phase(now, &self.instance).as_str()))
            .collect();
        sorted.into_iter().collect()
    }

    /// The stored state of `model` as last seen (or as this instance changed it).
    pub fn state(&self, model: &str) -> Option<BreakerState> {
        self.lock().states.get(model).cloned()
    }
}

impl<S: HealthStore> HealthView for SharedHealth<S> {
    fn is_healthy(&self, model_id: &str) -> bool {
        let now = self.now();
        let snap = self.lock();
        snap.states
            .get(model_id)
            .is_none_or(|s| matches!(s.phase(now, &self.instance), Phase::Closed | Phase::Probing))
    }
}

/// A [`HealthStore`] in memory, for tests and local runs (`tierwise serve`): one instance of
/// it shared (e.g. through an `Arc`) plays the role of the table. It can be switched "down"
/// to simulate an outage.
#[derive(Debug, Default)]
pub struct MemoryHealthStore {
    inner: Mutex<MemoryInner>,
}

#[derive(Debug, Default)]
struct MemoryInner {
    states: BTreeMap<String, BreakerState>,
    failures: HashMap<(String, u64), u32>,
    down: bool,
    writes: u64,
}

impl MemoryHealthStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every operation fail (`true`) or work again (`false`).
    pub fn set_down(&self, down: bool) {
        self.lock().down = down;
    }

    /// Writes that took effect or were attempted (every call but `load`).
    pub fn writes(&self) -> u64 {
        self.lock().writes
    }

    /// The stored state of `model`.
    pub fn state(&self, model: &str) -> Option<BreakerState> {
        self.lock().states.get(model).cloned()
    }

    fn lock(&self) -> MutexGuard<'_, MemoryInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn with<T>(&self, write: bool, f: impl FnOnce(&mut MemoryInner) -> T) -> Result<T, StoreError> {
        let mut inner = self.lock();
        if inner.down {
            return Err(StoreError::Unavailable {
                service: "memory",
                detail: "switched down".into(),
            });
        }
        if write {
            inner.writes += 1;
        }
        Ok(f(&mut inner))
    }
}

impl HealthStore for MemoryHealthStore {
    async fn load(&self) -> Result<Vec<BreakerState>, StoreError> {
        self.with(false, |i| i.states.values().cloned().collect())
    }

    async fn record_failure(
        &self,
        model: &str,
        window_start_ms: u64,
        _window_ms: u64,
    ) -> Result<u32, StoreError> {
        self.with(true, |i| {
            let n = i
                .failures
                .entry((model.to_string(), window_start_ms))
                .or_insert(0);
            *n += 1;
            *n
        })
    }

    async fn open(&self, state: &BreakerState, now_ms: u64) -> Result<bool, StoreError> {
        self.with(true, |i| {
            if i.states
                .get(&state.model)
                .is_some_and(|s| s.expires_at_ms > now_ms)
            {
                return false;
            }
            i.states.insert(state.model.clone(), state.clone());
            true
        })
    }

    async fn reopen(&self, state: &BreakerState, prober: &str) -> Result<bool, StoreError> {
        self.with(true, |i| match i.states.get_mut(&state.model) {
            Some(s) if s.probe_owner.as_deref() == Some(prober) => {
                *s = state.clone();
                true
            }
            _ => false,
        })
    }

    async fn claim_probe(
        &self,
        model: &str,
        instance: &str,
        now_ms: u64,
        until_ms: u64,
        expires_at_ms: u64,
    ) -> Result<bool, StoreError> {
        self.with(true, |i| match i.states.get_mut(model) {
            Some(s) if now_ms >= s.open_until_ms && !s.probe_live(now_ms) => {
                s.probe_owner = Some(instance.to_string());
                s.probe_until_ms = Some(until_ms);
                s.expires_at_ms = expires_at_ms;
                true
            }
            _ => false,
        })
    }

    async fn release_probe(&self, model: &str, instance: &str) -> Result<bool, StoreError> {
        self.with(true, |i| match i.states.get_mut(model) {
            Some(s) if s.probe_owner.as_deref() == Some(instance) => {
                s.probe_owner = None;
                s.probe_until_ms = None;
                true
            }
            _ => false,
        })
    }

    async fn close(
        &self,
        model: &str,
        instance: &str,
        window_start_ms: u64,
    ) -> Result<bool, StoreError> {
        self.with(true, |i| match i.states.get(model) {
            Some(s) if s.probe_owner.as_deref() == Some(instance) => {
                i.states.remove(model);
                i.failures.remove(&(model.to_string(), window_start_ms));
                true
            }
            _ => false,
        })
    }
}

impl<T: HealthStore> HealthStore for Arc<T> {
    fn load(&self) -> impl Future<Output = Result<Vec<BreakerState>, StoreError>> + Send {
        (**self).load()
    }

    fn record_failure(
        &self,
        model: &str,
        window_start_ms: u64,
        window_ms: u64,
    ) -> impl Future<Output = Result<u32, StoreError>> + Send {
        (**self).record_failure(model, window_start_ms, window_ms)
    }

    fn open(
        &self,
        state: &BreakerState,
        now_ms: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).open(state, now_ms)
    }

    fn reopen(
        &self,
        state: &BreakerState,
        prober: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).reopen(state, prober)
    }

    fn claim_probe(
        &self,
        model: &str,
        instance: &str,
        now_ms: u64,
        until_ms: u64,
        expires_at_ms: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).claim_probe(model, instance, now_ms, until_ms, expires_at_ms)
    }

    fn release_probe(
        &self,
        model: &str,
        instance: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).release_probe(model, instance)
    }

    fn close(
        &self,
        model: &str,
        instance: &str,
        window_start_ms: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).close(model, instance, window_start_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        store: Arc<MemoryHealthStore>,
        clock: Arc<ManualClock>,
    }

    impl Fixture {
        fn new() -> Self {
            Self {
                store: Arc::new(MemoryHealthStore::new()),
                clock: Arc::new(ManualClock::new(T0)),
            }
        }

        fn instance(&self, id: &str) -> SharedHealth<Arc<MemoryHealthStore>> {
            SharedHealth::new(Arc::clone(&self.store), settings())
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
}
