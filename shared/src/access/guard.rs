//! The checks a request passes before any provider is called, in order: a key that is known,
//! not revoked and matches its stored hash; the tenant it may act as; the models and tiers it
//! may use; its requests per minute; and a reservation of the call's worst-case cost against
//! its budget, settled to the real cost afterwards.
//!
//! Key lookups are cached per instance for [`Guard::cache_ttl`] (60 s by default): a
//! revocation takes effect everywhere within that bound while the store answers. When the
//! store fails, a key seen before keeps working from the cache (logged) and an unknown one is
//! refused as unavailable — never admitted unchecked.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::access::key::{KeyLimits, KeyRecord, Period, key_id_of, matches};
use crate::access::store::KeyStore;
use crate::ledger::money::{Timestamp, Usd};
use crate::ledger::store::StoreError;
use crate::routing::decision::RouteRequest;
use crate::routing::pool::Tier;

/// How long a key lookup is trusted by default.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(60);
/// Cached lookups kept at most (the cache is emptied when full).
const CACHE_CAPACITY: usize = 10_000;

/// Why a request was refused (or could not be checked).
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// No `Authorization: Bearer` header.
    #[error("no API key: send Authorization: Bearer <key>")]
    MissingKey,
    /// Malformed, unknown or revoked (one answer for all three, so keys cannot be probed).
    #[error("the API key is not valid")]
    InvalidKey,
    /// The request names a tenant other than the key's.
    #[error("this API key belongs to another tenant")]
    TenantMismatch,
    /// The key may not use this model.
    #[error("this API key may not use model {0}")]
    ModelNotAllowed(String),
    /// The key may not use this tier.
    #[error("this API key may not use {0}")]
    TierNotAllowed(Tier),
    /// The key's budget for the period cannot cover the call's worst case.
    #[error("this API key's budget of {limit} USD per {} is spent", period.as_str())]
    BudgetExhausted { limit: Usd, period: Period },
    /// The key's requests per minute are used up.
    #[error("this API key is limited to {limit} requests per minute")]
    RateLimited { limit: u32, retry_after_secs: u64 },
    /// The key store could not be read.
    #[error("API keys cannot be checked: {0}")]
    Store(#[from] StoreError),
}

impl AccessError {
    /// Whether the same request may be admitted later.
    pub fn is_retryable(&self) -> bool {
        match self {
            AccessError::RateLimited { .. } => true,
            AccessError::Store(e) => e.is_retryable(),
            _ => false,
        }
    }
}

/// The caller a valid key names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub key_id: String,
    pub tenant: String,
    pub admin: bool,
    pub limits: KeyLimits,
}

impl Principal {
    fn of(k: &KeyRecord) -> Self {
        Principal {
            key_id: k.key_id.clone(),
            tenant: k.tenant.clone(),
            admin: k.admin,
            limits: k.limits.clone(),
        }
    }
}

/// A budget reservation held for one call: settle it with the call's cost.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a reservation is settled with the call's real cost"]
pub struct Reservation {
    key_id: String,
    bucket: String,
    amount: Usd,
    expires_unix: i64,
}

impl Reservation {
    /// The amount reserved.
    pub fn amount(&self) -> Usd {
        self.amount
    }
}

#[derive(Debug, Clone)]
struct Cached {
    record: Option<KeyRecord>,
    at_ms: u64,
}

/// The checks, over a key store, with a per-instance lookup cache.
#[derive(Debug)]
pub struct Guard<S> {
    store: S,
    ttl_ms: u64,
    cache: Mutex<HashMap<String, Cached>>,
}

impl<S: KeyStore> Guard<S> {
    pub fn new(store: S) -> Self {
        Guard {
            store,
            ttl_ms: DEFAULT_CACHE_TTL.as_millis() as u64,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Sets how long a lookup is trusted (the revocation bound).
    pub fn with_cache_ttl(mut self, ttl: Duration) -> Self {
        self.ttl_ms = ttl.as_millis() as u64;
        self
    }

    /// How long a lookup is trusted.
    pub fn cache_ttl(&self) -> Duration {
        Duration::from_millis(self.ttl_ms)
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    fn cache(&self) -> MutexGuard<'_, HashMap<String, Cached>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The principal of an `Authorization` header value (`Bearer <key>`).
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
        now_ms: u64,
    ) -> Result<Principal, AccessError> {
        let token =
            bearer(authorization.ok_or(AccessError::MissingKey)?).ok_or(AccessError::MissingKey)?;
        let key_id = key_id_of(token).ok_or(AccessError::InvalidKey)?;
        match self.lookup(key_id, now_ms).await? {
            Some(k) if !k.is_revoked() && matches(token, &k.hash) => {
                // The access log of keyed traffic: one line per request with the key's id (never
                // the key), in the invocation's span (request id); the gateway cannot log it,
                // since keys are checked here.
                tracing::info!(key_id, tenant = %k.tenant, "key admitted");
                Ok(Principal::of(&k))
            }
            _ => {
                tracing::info!(key_id, "key refused");
                Err(AccessError::InvalidKey)
            }
        }
    }

    async fn lookup(&self, key_id: &str, now_ms: u64) -> Result<Option<KeyRecord>, AccessError> {
        let cached = self.cache().get(key_id).cloned();
        if let Some(c) = &cached
            && now_ms.saturating_sub(c.at_ms) < self.ttl_ms
        {
            return Ok(c.record.clone());
        }
        match self.store.get(key_id).await {
            Ok(record) => {
                let mut cache = self.cache();
                if cache.len() >= CACHE_CAPACITY {
                    cache.clear();
                }
                cache.insert(
                    key_id.to_string(),
                    Cached {
                        record: record.clone(),
                        at_ms: now_ms,
                    },
                );
                Ok(record)
            }
            Err(e) => match cached {
                Some(c) => {
                    tracing::warn!(key_id, error = %e, "key store unavailable: using the cached key");
                    Ok(c.record)
                }
                None => Err(AccessError::Store(e)),
            },
        }
    }

    /// The tenant a request acts as: the key's; a request naming another is refused.
    pub fn tenant_for(
        &self,
        p: &Principal,
        requested: Option<&str>,
    ) -> Result<String, AccessError> {
        match requested {
            Some(t) if t != p.tenant => Err(AccessError::TenantMismatch),
            _ => Ok(p.tenant.clone()),
        }
    }

    /// Binds a routing request to the key: its tenant (a request naming another tenant is
    /// refused) and, when the key is limited to some tiers, the request's tier bounds narrowed
    /// to them.
    pub fn bind(&self, p: &Principal, req: &mut RouteRequest) -> Result<(), AccessError> {
        req.tenant = Some(self.tenant_for(p, req.tenant.as_deref())?);
        if let Some(tiers) = &p.limits.tiers {
            let (Some(low), Some(high)) = (tiers.iter().min(), tiers.iter().max()) else {
                return Err(AccessError::TierNotAllowed(
                    req.min_tier.unwrap_or(Tier::Tier1),
                ));
            };
            let min = req.min_tier.map_or(*low, |t| t.max(*low));
            let max = req.max_tier.map_or(*high, |t| t.min(*high));
            if min > max {
                return Err(AccessError::TierNotAllowed(min));
            }
            req.min_tier = Some(min);
            req.max_tier = Some(max);
        }
        Ok(())
    }

    /// Whether the key may use `model` of `tier`.
    pub fn check_model(&self, p: &Principal, model: &str, tier: Tier) -> Result<(), AccessError> {
        if let Some(models) = &p.limits.models
            && !models.iter().any(|m| m == model)
        {
            return Err(AccessError::ModelNotAllowed(model.to_string()));
        }
        if let Some(tiers) = &p.limits.tiers
            && !tiers.contains(&tier)
        {
            return Err(AccessError::TierNotAllowed(tier));
        }
        Ok(())
    }

    /// Counts the request against the key's requests per minute.
    pub async fn admit(&self, p: &Principal, now: &Timestamp) -> Result<(), AccessError> {
        let Some(limit) = p.limits.rpm else {
            return Ok(());
        };
        let secs = now.unix_secs();
        let minute = secs.div_euclid(60);
        if self
            .store
            .count_request(&p.key_id, minute, limit, (minute + 2) * 60)
            .await?
        {
            Ok(())
        } else {
            Err(AccessError::RateLimited {
                limit,
                retry_after_secs: (60 - secs.rem_euclid(60)) as u64,
            })
        }
    }

    /// Reserves the call's worst-case cost against the key's budget (none without a budget);
    /// refused when the period's spend plus it would pass the budget.
    pub async fn reserve(
        &self,
        p: &Principal,
        worst_case: Usd,
        now: &Timestamp,
    ) -> Result<Option<Reservation>, AccessError> {
        let Some(budget) = p.limits.budget else {
            return Ok(None);
        };
        let bucket = budget.period.bucket(now);
        let expires_unix = now.unix_secs() + budget.period.keep_secs();
        let amount = worst_case.max(Usd::ZERO);
        if self
            .store
            .reserve_spend(&p.key_id, &bucket, amount, budget.usd, expires_unix)
            .await?
        {
            Ok(Some(Reservation {
                key_id: p.key_id.clone(),
                bucket,
                amount,
                expires_unix,
            }))
        } else {
            Err(AccessError::BudgetExhausted {
                limit: budget.usd,
                period: budget.period,
            })
        }
    }

    /// Settles a reservation to what the call cost (gives back the rest, or adds the excess).
    pub async fn settle(&self, r: Reservation, cost: Usd) -> Result<(), StoreError> {
        let delta = cost - r.amount;
        if delta == Usd::ZERO {
            return Ok(());
        }
        self.store
            .adjust_spend(&r.key_id, &r.bucket, delta, r.expires_unix)
            .await
    }
}

/// The key of an `Authorization` value: `Bearer <key>` (the scheme in any case).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::key::{Budget, generate};
    use crate::access::store::MemoryKeyStore;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_datetime(time::OffsetDateTime::from_unix_timestamp(secs).unwrap())
    }

    async fn guard_with(limits: KeyLimits) -> (Guard<MemoryKeyStore>, String, String) {
        let store = MemoryKeyStore::new();
        let key = generate().unwrap();
        let rec = KeyRecord::new(&key, "acme", false, limits, at(1_796_000_000));
        assert!(store.create(&rec).await.unwrap());
        assert!(!store.create(&rec).await.unwrap(), "an id is created once");
        (Guard::new(store), key.text, key.key_id)
    }

    /// The principal of a key that must pass.
    async fn principal(g: &Guard<MemoryKeyStore>, text: &str) -> Principal {
        g.authenticate(Some(&format!("Bearer {text}")), 0)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn only_a_known_unrevoked_key_passes() {
        let (g, text, id) = guard_with(KeyLimits::default()).await;
        let p = principal(&g, &text).await;
        assert_eq!(
            (p.tenant.as_str(), p.key_id.as_str()),
            ("acme", id.as_str())
        );
        assert!(
            g.authenticate(Some(&format!("bearer  {text} ")), 0)
                .await
                .is_ok()
        );
        for bad in [None, Some(""), Some("Basic abc"), Some("Bearer ")] {
            assert!(
                matches!(g.authenticate(bad, 0).await, Err(AccessError::MissingKey)),
                "{bad:?}"
            );
        }
        let forged = format!(
            "{}{}",
            &text[..text.len() - 1],
            if text.ends_with('0') { '1' } else { '0' }
        );
        assert!(matches!(
            g.authenticate(Some(&format!("Bearer {forged}")), 0).await,
            Err(AccessError::InvalidKey)
        ));
        let other = generate().unwrap().text;
        assert!(matches!(
            g.authenticate(Some(&format!("Bearer {other}")), 0).await,
            Err(AccessError::InvalidKey)
        ));
    }

    #[tokio::test]
    async fn revocation_holds_within_the_cache_bound() {
        let (g, text, id) = guard_with(KeyLimits::default()).await;
        let g = g.with_cache_ttl(Duration::from_secs(60));
        let auth = format!("Bearer {text}");
        assert!(g.authenticate(Some(&auth), 1_000).await.is_ok());
        assert!(g.store().revoke(&id, &at(1_796_000_100)).await.unwrap());
        let gets = g.store().gets();
        assert!(g.authenticate(Some(&auth), 30_000).await.is_ok(), "cached");
        assert_eq!(g.store().gets(), gets, "served from the cache");
        assert!(matches!(
            g.authenticate(Some(&auth), 61_001).await,
            Err(AccessError::InvalidKey)
        ));
        assert!(!g.store().revoke("000000000000", &at(0)).await.unwrap());
    }

    #[tokio::test]
    async fn tenant_models_and_tiers_come_from_the_key() {
        let limits = KeyLimits {
            models: Some(vec!["m1".into()]),
            tiers: Some(vec![Tier::Tier1, Tier::Tier2]),
            ..KeyLimits::default()
        };
        let (g, text, _) = guard_with(limits).await;
        let p = principal(&g, &text).await;
        assert_eq!(g.tenant_for(&p, None).unwrap(), "acme");
        assert_eq!(g.tenant_for(&p, Some("acme")).unwrap(), "acme");
        assert!(matches!(
            g.tenant_for(&p, Some("globex")),
            Err(AccessError::TenantMismatch)
        ));
        assert!(g.check_model(&p, "m1", Tier::Tier1).is_ok());
        assert!(matches!(
            g.check_model(&p, "m2", Tier::Tier1),
            Err(AccessError::ModelNotAllowed(_))
        ));
        assert!(matches!(
            g.check_model(&p, "m1", Tier::Tier3),
            Err(AccessError::TierNotAllowed(Tier::Tier3))
        ));
    }

    #[tokio::test]
    async fn a_request_is_bound_to_the_key_s_tenant_and_tiers() {
        let limits = KeyLimits {
            tiers: Some(vec![Tier::Tier1, Tier::Tier2]),
            ..KeyLimits::default()
        };
        let (g, text, _) = guard_with(limits).await;
        let p = principal(&g, &text).await;
        let mut req = RouteRequest::query("hi");
        g.bind(&p, &mut req).unwrap();
        assert_eq!(req.tenant.as_deref(), Some("acme"));
        assert_eq!(
            (req.min_tier, req.max_tier),
            (Some(Tier::Tier1), Some(Tier::Tier2))
        );
        let mut other = RouteRequest::query("hi");
        other.tenant = Some("globex".into());
        assert!(matches!(
            g.bind(&p, &mut other),
            Err(AccessError::TenantMismatch)
        ));
        let mut high = RouteRequest::query("hi");
        high.min_tier = Some(Tier::Tier3);
        assert!(matches!(
            g.bind(&p, &mut high),
            Err(AccessError::TierNotAllowed(Tier::Tier3))
        ));
    }

    #[tokio::test]
    async fn rpm_refuses_the_request_past_the_limit_until_the_next_minute() {
        let (g, text, _) = guard_with(KeyLimits {
            rpm: Some(2),
            ..KeyLimits::default()
        })
        .await;
        let p = principal(&g, &text).await;
        let t = at(1_796_000_080); // 40 s into a minute
        g.admit(&p, &t).await.unwrap();
        g.admit(&p, &t).await.unwrap();
        match g.admit(&p, &t).await {
            Err(
                e @ AccessError::RateLimited {
                    retry_after_secs: 20,
                    ..
                },
            ) => assert!(e.is_retryable()),
            other => panic!("{other:?}"),
        }
        g.admit(&p, &at(1_796_000_100)).await.unwrap();
    }

    #[tokio::test]
    async fn budgets_reserve_the_worst_case_and_settle_to_the_cost() {
        let budget = Budget {
            usd: Usd::from_f64(1.0),
            period: Period::Day,
        };
        let (g, text, id) = guard_with(KeyLimits {
            budget: Some(budget),
            ..KeyLimits::default()
        })
        .await;
        let p = principal(&g, &text).await;
        let now = at(1_796_000_000);
        let day = Period::Day.bucket(&now);
        let r = g
            .reserve(&p, Usd::from_f64(0.6), &now)
            .await
            .unwrap()
            .unwrap();
        assert!(
            matches!(
                g.reserve(&p, Usd::from_f64(0.6), &now).await,
                Err(AccessError::BudgetExhausted { .. })
            ),
            "0.6 + 0.6 > 1: refused while the first call is in flight"
        );
        g.settle(r, Usd::from_f64(0.1)).await.unwrap();
        assert_eq!(
            g.store().spent(&id, &day).await.unwrap(),
            Usd::from_f64(0.1)
        );
        let r = g
            .reserve(&p, Usd::from_f64(0.6), &now)
            .await
            .unwrap()
            .unwrap();
        g.settle(r, Usd::from_f64(0.65)).await.unwrap();
        assert_eq!(
            g.store().spent(&id, &day).await.unwrap(),
            Usd::from_f64(0.75)
        );
        let tomorrow = at(1_796_000_000 + 86_400);
        assert!(
            g.reserve(&p, Usd::from_f64(0.9), &tomorrow)
                .await
                .unwrap()
                .is_some()
        );
    }
}
