//! Where the breakers live: the [`HealthStore`] port every instance shares (DynamoDB in AWS,
//! see [`crate::aws::health`]) and [`MemoryHealthStore`], the same contract in memory.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use super::BreakerState;
use crate::ledger::store::StoreError;

/// A claim on the probe of a half-open breaker: `instance` probes `model` until `until_ms`.
/// It takes effect only if the state exists, its cool-down is over at `now_ms` and no claim
/// is live then; the state's expiry moves to `expires_at_ms` (so it outlives the claim).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeClaim<'a> {
    pub model: &'a str,
    pub instance: &'a str,
    pub now_ms: u64,
    pub until_ms: u64,
    pub expires_at_ms: u64,
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

    /// Claims the probe of a half-open breaker (see [`ProbeClaim`]).
    fn claim_probe(
        &self,
        claim: &ProbeClaim<'_>,
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

/// A [`HealthStore`] in memory, for tests: its clones share one table, so instances over
/// clones of one store behave as over the shared table. It can be switched "down" to
/// simulate an outage.
#[derive(Debug, Default, Clone)]
pub struct MemoryHealthStore {
    inner: Arc<Mutex<MemoryInner>>,
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

    /// Changes the state of `model` with `f` while `instance` holds its probe claim.
    fn while_probing(
        &self,
        model: &str,
        instance: &str,
        f: impl FnOnce(&mut BreakerState),
    ) -> Result<bool, StoreError> {
        self.with(true, |i| match i.states.get_mut(model) {
            Some(s) if s.probed_by(instance) => {
                f(s);
                true
            }
            _ => false,
        })
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
        self.while_probing(&state.model, prober, |s| *s = state.clone())
    }

    async fn claim_probe(&self, claim: &ProbeClaim<'_>) -> Result<bool, StoreError> {
        self.with(true, |i| match i.states.get_mut(claim.model) {
            Some(s) if claim.now_ms >= s.open_until_ms && !s.probe_live(claim.now_ms) => {
                s.probe_owner = Some(claim.instance.to_string());
                s.probe_until_ms = Some(claim.until_ms);
                s.expires_at_ms = claim.expires_at_ms;
                true
            }
            _ => false,
        })
    }

    async fn release_probe(&self, model: &str, instance: &str) -> Result<bool, StoreError> {
        self.while_probing(model, instance, |s| {
            s.probe_owner = None;
            s.probe_until_ms = None;
        })
    }

    async fn close(
        &self,
        model: &str,
        instance: &str,
        window_start_ms: u64,
    ) -> Result<bool, StoreError> {
        self.with(true, |i| match i.states.get(model) {
            Some(s) if s.probed_by(instance) => {
                i.states.remove(model);
                i.failures.remove(&(model.to_string(), window_start_ms));
                true
            }
            _ => false,
        })
    }
}
