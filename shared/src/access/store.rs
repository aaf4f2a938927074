//! The port API keys and their counters are kept behind (DynamoDB in AWS, see
//! `crate::aws::keys`), and its memory fake for tests.
//!
//! Counters are atomic in the store itself (a conditional add), so instances that share a
//! store cannot together pass a limit by more than one request's reservation.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, MutexGuard};

use crate::access::key::KeyRecord;
use crate::ledger::money::{Timestamp, Usd};
use crate::ledger::store::StoreError;

/// Keys, their spend per budget bucket and their requests per minute.
pub trait KeyStore: Send + Sync {
    /// The key with this id, revoked or not.
    fn get(
        &self,
        key_id: &str,
    ) -> impl Future<Output = Result<Option<KeyRecord>, StoreError>> + Send;

    /// Stores a new key; `Ok(false)` when the id is taken (nothing written).
    fn create(&self, key: &KeyRecord) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Every key, revoked ones included.
    fn list(&self) -> impl Future<Output = Result<Vec<KeyRecord>, StoreError>> + Send;

    /// Marks a key revoked; `Ok(false)` when there is no such key.
    fn revoke(
        &self,
        key_id: &str,
        at: &Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Adds `amount` to the key's spend in `bucket` unless the total would pass `limit`, in one
    /// atomic step; `Ok(false)` (nothing added) when it would. `expires_unix` is the counter's TTL.
    fn reserve_spend(
        &self,
        key_id: &str,
        bucket: &str,
        amount: Usd,
        limit: Usd,
        expires_unix: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Adds `delta` (negative to give back) to the key's spend in `bucket`, unconditionally:
    /// settles a reservation to what the call cost.
    fn adjust_spend(
        &self,
        key_id: &str,
        bucket: &str,
        delta: Usd,
        expires_unix: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The key's spend in `bucket`.
    fn spent(
        &self,
        key_id: &str,
        bucket: &str,
    ) -> impl Future<Output = Result<Usd, StoreError>> + Send;

    /// Counts one request in `minute` unless `limit` requests were already counted there;
    /// `Ok(false)` (not counted) when they were.
    fn count_request(
        &self,
        key_id: &str,
        minute: i64,
        limit: u32,
        expires_unix: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// [`KeyStore`] in memory, for tests and the local tools.
#[derive(Debug, Default)]
pub struct MemoryKeyStore {
    inner: Mutex<MemoryKeys>,
}

#[derive(Debug, Default)]
struct MemoryKeys {
    keys: HashMap<String, KeyRecord>,
    spend: HashMap<(String, String), Usd>,
    requests: HashMap<(String, i64), u32>,
    /// Store calls made, to check what a cache saves.
    gets: usize,
}

impl MemoryKeyStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, MemoryKeys> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many `get` calls reached the store.
    pub fn gets(&self) -> usize {
        self.lock().gets
    }
}

impl KeyStore for MemoryKeyStore {
    async fn get(&self, key_id: &str) -> Result<Option<KeyRecord>, StoreError> {
        let mut m = self.lock();
        m.gets += 1;
        Ok(m.keys.get(key_id).cloned())
    }

    async fn create(&self, key: &KeyRecord) -> Result<bool, StoreError> {
        let mut m = self.lock();
        if m.keys.contains_key(&key.key_id) {
            return Ok(false);
        }
        m.keys.insert(key.key_id.clone(), key.clone());
        Ok(true)
    }

    async fn list(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let mut keys: Vec<KeyRecord> = self.lock().keys.values().cloned().collect();
        keys.sort_by(|a, b| a.key_id.cmp(&b.key_id));
        Ok(keys)
    }

    async fn revoke(&self, key_id: &str, at: &Timestamp) -> Result<bool, StoreError> {
        Ok(match self.lock().keys.get_mut(key_id) {
            Some(k) => {
                k.revoked = Some(at.clone());
                true
            }
            None => false,
        })
    }

    async fn reserve_spend(
        &self,
        key_id: &str,
        bucket: &str,
        amount: Usd,
        limit: Usd,
        _expires_unix: i64,
    ) -> Result<bool, StoreError> {
        let mut m = self.lock();
        let spent = m
            .spend
            .entry((key_id.to_string(), bucket.to_string()))
            .or_default();
        if *spent + amount > limit {
            return Ok(false);
        }
        *spent += amount;
        Ok(true)
    }

    async fn adjust_spend(
        &self,
        key_id: &str,
        bucket: &str,
        delta: Usd,
        _expires_unix: i64,
    ) -> Result<(), StoreError> {
        *self
            .lock()
            .spend
            .entry((key_id.to_string(), bucket.to_string()))
            .or_default() += delta;
        Ok(())
    }

    async fn spent(&self, key_id: &str, bucket: &str) -> Result<Usd, StoreError> {
        Ok(self
            .lock()
            .spend
            .get(&(key_id.to_string(), bucket.to_string()))
            .copied()
            .unwrap_or_default())
    }

    async fn count_request(
        &self,
        key_id: &str,
        minute: i64,
        limit: u32,
        _expires_unix: i64,
    ) -> Result<bool, StoreError> {
        let mut m = self.lock();
        let n = m.requests.entry((key_id.to_string(), minute)).or_default();
        if *n >= limit {
            return Ok(false);
        }
        *n += 1;
        Ok(true)
    }
}
