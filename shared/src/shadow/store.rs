//! Where evaluations are kept: the [`EvaluationStore`] port (claim a query id with a lease,
//! complete it with the record and its rollup increment in one step, release it after a
//! failure) and [`MemoryEvaluationStore`], its in-memory implementation (tests, benchmarks).
//! DynamoDB's is `crate::aws::evaluations::DynamoEvaluationStore`.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use crate::ledger::store::{StoreError, WriteOutcome};
use crate::shadow::record::EvaluationRecord;
use crate::shadow::rollup::{EvalRollupKey, EvalRollupRow, VerdictCounters};

/// The answer to a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The query id is ours until the lease ends: evaluate it.
    Claimed,
    /// It was evaluated already: nothing to do.
    Done,
    /// Another evaluator holds a live lease (until this Unix second): retry later.
    Busy { lease_until: i64 },
}

/// Where evaluations go: a claim per query id, then the record and its rollup increment.
pub trait EvaluationStore: Send + Sync {
    /// Claims `query_id` for `owner` until `now + lease` (Unix seconds): succeeds when there
    /// is no evaluation of it yet, or only a claim whose lease has ended.
    fn claim(
        &self,
        query_id: &str,
        owner: &str,
        now: i64,
        lease: Duration,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;

    /// Writes the record in place of `owner`'s claim and adds it to its rollup, both or
    /// neither. `Duplicate` when the claim is no longer `owner`'s (the lease ended and another
    /// evaluator took over): nothing written.
    fn complete(
        &self,
        record: &EvaluationRecord,
        owner: &str,
    ) -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send;

    /// Removes `owner`'s claim (after a failed evaluation), so a retry need not wait for the
    /// lease; nothing happens when the claim is not `owner`'s.
    fn release(
        &self,
        query_id: &str,
        owner: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

#[derive(Debug, Clone)]
enum MemEntry {
    Claim { owner: String, lease_until: i64 },
    Done(Box<EvaluationRecord>),
}

#[derive(Debug, Default)]
struct MemInner {
    entries: HashMap<String, MemEntry>,
    rollups: BTreeMap<EvalRollupKey, VerdictCounters>,
}

impl MemInner {
    /// Whether `query_id` is claimed (not completed) by `owner`.
    fn claimed_by(&self, query_id: &str, owner: &str) -> bool {
        matches!(
            self.entries.get(query_id),
            Some(MemEntry::Claim { owner: o, .. }) if o == owner
        )
    }
}

/// An [`EvaluationStore`] in memory (tests, benchmarks): the same rules as DynamoDB's.
#[derive(Debug, Default)]
pub struct MemoryEvaluationStore {
    inner: Mutex<MemInner>,
}

impl MemoryEvaluationStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The completed records.
    pub fn records(&self) -> Vec<EvaluationRecord> {
        let mut v: Vec<EvaluationRecord> = self
            .lock()
            .entries
            .values()
            .filter_map(|e| match e {
                MemEntry::Done(r) => Some((**r).clone()),
                MemEntry::Claim { .. } => None,
            })
            .collect();
        v.sort_by(|a, b| a.query_id.cmp(&b.query_id));
        v
    }

    /// The rollups.
    pub fn rollups(&self) -> Vec<EvalRollupRow> {
        self.lock()
            .rollups
            .iter()
            .map(|(k, c)| EvalRollupRow {
                key: k.clone(),
                counters: c.clone(),
            })
            .collect()
    }

    /// Whether `query_id` is claimed (and not completed).
    pub fn is_claimed(&self, query_id: &str) -> bool {
        matches!(
            self.lock().entries.get(query_id),
            Some(MemEntry::Claim { .. })
        )
    }
}

impl EvaluationStore for MemoryEvaluationStore {
    async fn claim(
        &self,
        query_id: &str,
        owner: &str,
        now: i64,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        let mut inner = self.lock();
        match inner.entries.get(query_id) {
            Some(MemEntry::Done(_)) => return Ok(Claim::Done),
            Some(MemEntry::Claim { lease_until, .. }) if *lease_until >= now => {
                return Ok(Claim::Busy {
                    lease_until: *lease_until,
                });
            }
            _ => {}
        }
        inner.entries.insert(
            query_id.to_string(),
            MemEntry::Claim {
                owner: owner.to_string(),
                lease_until: now.saturating_add(lease.as_secs() as i64),
            },
        );
        Ok(Claim::Claimed)
    }

    async fn complete(
        &self,
        record: &EvaluationRecord,
        owner: &str,
    ) -> Result<WriteOutcome, StoreError> {
        let mut inner = self.lock();
        if !inner.claimed_by(&record.query_id, owner) {
            return Ok(WriteOutcome::Duplicate);
        }
        inner.entries.insert(
            record.query_id.clone(),
            MemEntry::Done(Box::new(record.clone())),
        );
        inner
            .rollups
            .entry(record.rollup_key())
            .or_default()
            .add(&record.counters());
        Ok(WriteOutcome::Written)
    }

    async fn release(&self, query_id: &str, owner: &str) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if inner.claimed_by(query_id, owner) {
            inner.entries.remove(query_id);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shadow::record::fixtures::record;

    #[tokio::test]
    async fn memory_store_claims_leases_and_completes_once() {
        let store = MemoryEvaluationStore::new();
        let lease = Duration::from_secs(60);
        let rec = record("equivalent", "exact");
        assert_eq!(
            store.claim("q-1", "a", 1000, lease).await.unwrap(),
            Claim::Claimed
        );
        assert_eq!(
            store.claim("q-1", "b", 1010, lease).await.unwrap(),
            Claim::Busy { lease_until: 1060 }
        );
        // Not b's claim: b cannot complete or release it.
        assert_eq!(
            store.complete(&rec, "b").await.unwrap(),
            WriteOutcome::Duplicate
        );
        store.release("q-1", "b").await.unwrap();
        assert!(store.is_claimed("q-1"));
        // The lease ends: b takes over, a's completion is refused.
        assert_eq!(
            store.claim("q-1", "b", 1061, lease).await.unwrap(),
            Claim::Claimed
        );
        assert_eq!(
            store.complete(&rec, "a").await.unwrap(),
            WriteOutcome::Duplicate
        );
        assert_eq!(
            store.complete(&rec, "b").await.unwrap(),
            WriteOutcome::Written
        );
        assert_eq!(
            store.claim("q-1", "c", 5000, lease).await.unwrap(),
            Claim::Done
        );
        assert_eq!(store.records().len(), 1);
        assert_eq!(store.rollups()[0].counters.evaluations, 1);
        // Release frees a claim for an immediate retry.
        assert_eq!(
            store.claim("q-2", "a", 1000, lease).await.unwrap(),
            Claim::Claimed
        );
        store.release("q-2", "a").await.unwrap();
        assert_eq!(
            store.claim("q-2", "b", 1001, lease).await.unwrap(),
            Claim::Claimed
        );
    }
}
