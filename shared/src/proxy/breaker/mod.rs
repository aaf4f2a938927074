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
//!
//! What lives here: this file holds the settings, the stored state and its phases, and the
//! clocks; `store` the storage port ([`HealthStore`]) and its in-memory implementation,
//! `shared` one instance's view ([`SharedHealth`]).
//!
//! [`HealthView::is_healthy`]: crate::routing::decision::HealthView::is_healthy

mod shared;
mod store;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use shared::SharedHealth;
pub use store::{HealthStore, MemoryHealthStore, ProbeClaim};

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
        } else if self.probed_by(instance) && self.probe_live(now_ms) {
            Phase::Probing
        } else {
            Phase::HalfOpen
        }
    }

    /// Whether a probe claim is held at `now_ms` (by anyone).
    pub fn probe_live(&self, now_ms: u64) -> bool {
        self.probe_owner.is_some() && self.probe_until_ms.is_some_and(|u| now_ms < u)
    }

    /// Whether `instance` holds the probe claim (live or not).
    pub fn probed_by(&self, instance: &str) -> bool {
        self.probe_owner.as_deref() == Some(instance)
    }

    /// Whether an instance may claim the probe at `now_ms`.
    pub fn claimable(&self, now_ms: u64) -> bool {
        now_ms < self.expires_at_ms && now_ms >= self.open_until_ms && !self.probe_live(now_ms)
    }
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
