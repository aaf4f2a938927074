//! One instance's view of the shared breakers ([`SharedHealth`]): the snapshot of the stored
//! states that answers [`HealthView::is_healthy`] without I/O, and what a request's outcome
//! writes to the store (see the folder's header for the life of a breaker).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{
    BreakerSettings, BreakerState, Clock, HealthStore, Phase, ProbeClaim, SystemClock, ms,
};
use crate::ledger::store::StoreError;
use crate::routing::decision::HealthView;

/// Placeholder owner of a probe another instance won (its id is learnt at the next load).
const OTHER_INSTANCE: &str = "(another instance)";

/// The snapshot of stored states and when it was (last tried to be) loaded.
#[derive(Debug, Default)]
struct Snapshot {
    states: HashMap<String, BreakerState>,
    /// Last load attempt (successful or not), epoch ms; `None` before the first.
    attempted_ms: Option<u64>,
}

/// One instance's view of the shared breakers. See [`crate::proxy::breaker`] for how they work.
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
            self.claim_probe(&model, now).await;
        }
    }

    /// Claims the probe of the half-open `model` for this instance.
    async fn claim_probe(&self, model: &str, now: u64) {
        let until = now.saturating_add(ms(self.settings.probe_lease));
        let claim = ProbeClaim {
            model,
            instance: &self.instance,
            now_ms: now,
            until_ms: until,
            expires_at_ms: self.expiry(until),
        };
        match self.store.claim_probe(&claim).await {
            Ok(true) => {
                tracing::info!(model = %model, "circuit breaker half-open: probing");
                let mut snap = self.lock();
                if let Some(s) = snap.states.get_mut(model) {
                    s.probe_owner = Some(self.instance.clone());
                    s.probe_until_ms = Some(until);
                    s.expires_at_ms = claim.expires_at_ms;
                }
            }
            // Another instance probes it (or it changed): unhealthy here until the next
            // load, which comes at the next request, so claims are not retried per request.
            Ok(false) => {
                let mut snap = self.lock();
                snap.attempted_ms = None;
                if let Some(s) = snap.states.get_mut(model) {
                    s.probe_owner = Some(OTHER_INSTANCE.to_string());
                    s.probe_until_ms = Some(until);
                }
            }
            Err(e) => store_failed(model, &e, "circuit breaker probe could not be claimed"),
        }
    }

    /// A request to `model` succeeded. Writes only when it was this instance's probe: the
    /// breaker closes, for everyone.
    pub async fn report_success(&self, model: &str) {
        let probing = {
            let snap = self.lock();
            snap.states
                .get(model)
                .is_some_and(|s| s.probed_by(&self.instance))
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
            Err(e) => store_failed(
                model,
                &e,
                "circuit breaker could not be closed after a successful probe",
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
            Some(s) if s.probed_by(&self.instance) => {
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
                Some(s) if s.probed_by(&self.instance) => {
                    s.probe_owner = None;
                    s.probe_until_ms = None;
                    true
                }
                _ => false,
            }
        };
        if probing && let Err(e) = self.store.release_probe(model, &self.instance).await {
            store_failed(
                model,
                &e,
                "probe claim could not be released; it lapses by itself",
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
                store_failed(model, &e, "model failure could not be counted");
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
            Err(e) => store_failed(model, &e, "circuit breaker could not be opened"),
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
            Err(e) => store_failed(
                &state.model,
                &e,
                "circuit breaker could not be reopened after a failed probe",
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

/// Logs a breaker write on `model` the store failed: routing goes on without it.
fn store_failed(model: &str, e: &StoreError, what: &str) {
    tracing::warn!(model = %model, error = %e, kind = e.kind(), "{what}");
}
