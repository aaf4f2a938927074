//! At most one provider call per query id: a marker is written (conditionally) before the
//! call, so a replayed or concurrent request with the same `x-tierwise-query-id` never calls
//! the provider again. A completed call keeps its answer (buffered answers up to
//! [`MAX_STORED_BODY`]) so a replay gets the same bytes; a streamed or larger answer is marked
//! done without its body, and a replay is told so. A marker whose holder died (its lease
//! passed) can be taken over.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::ledger::store::StoreError;

/// The largest answer body kept for replays (DynamoDB items hold 400 KB).
pub const MAX_STORED_BODY: usize = 300 * 1024;

/// An answer as given to the caller, kept for a replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAnswer {
    pub status: u16,
    pub content_type: String,
    /// The `x-tierwise-*` headers of the answer.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What [`CallLedger::begin`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// The marker is ours: call the provider, then [`CallLedger::complete`] or
    /// [`CallLedger::abandon`].
    Started,
    /// Another request with this query id holds a live marker.
    InProgress,
    /// A request with this query id was answered; its answer when it was kept.
    Completed(Option<StoredAnswer>),
}

/// The markers of provider calls, one per query id.
pub trait CallLedger: Send + Sync {
    /// Takes the marker of `query_id` unless a live or completed one exists.
    fn begin(
        &self,
        query_id: &str,
        now_ms: u64,
        lease_ms: u64,
    ) -> impl Future<Output = Result<Begin, StoreError>> + Send;

    /// Marks the call done, with its answer when it should be replayed (at most
    /// [`MAX_STORED_BODY`] bytes of body; larger ones are kept without the body).
    fn complete(
        &self,
        query_id: &str,
        answer: Option<&StoredAnswer>,
        expires_unix: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Drops our marker when no provider was billed (refused before the call), so the same
    /// query id may be tried again.
    fn abandon(&self, query_id: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The answer worth keeping for a replay, if it fits.
pub fn keepable(answer: &StoredAnswer) -> Option<&StoredAnswer> {
    (answer.body.len() <= MAX_STORED_BODY).then_some(answer)
}

/// [`CallLedger`] in memory, for tests.
#[derive(Debug, Default)]
pub struct MemoryCallLedger {
    inner: Mutex<HashMap<String, Marker>>,
}

#[derive(Debug, Clone)]
enum Marker {
    Live { until_ms: u64 },
    Done(Option<StoredAnswer>),
}

impl MemoryCallLedger {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Marker>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl CallLedger for MemoryCallLedger {
    async fn begin(&self, query_id: &str, now_ms: u64, lease_ms: u64) -> Result<Begin, StoreError> {
        let mut m = self.lock();
        match m.get(query_id) {
            Some(Marker::Done(a)) => Ok(Begin::Completed(a.clone())),
            Some(Marker::Live { until_ms }) if *until_ms > now_ms => Ok(Begin::InProgress),
            _ => {
                m.insert(
                    query_id.to_string(),
                    Marker::Live {
                        until_ms: now_ms + lease_ms,
                    },
                );
                Ok(Begin::Started)
            }
        }
    }

    async fn complete(
        &self,
        query_id: &str,
        answer: Option<&StoredAnswer>,
        _expires_unix: i64,
    ) -> Result<(), StoreError> {
        self.lock().insert(
            query_id.to_string(),
            Marker::Done(answer.and_then(keepable).cloned()),
        );
        Ok(())
    }

    async fn abandon(&self, query_id: &str) -> Result<(), StoreError> {
        self.lock().remove(query_id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(n: usize) -> StoredAnswer {
        StoredAnswer {
            status: 200,
            content_type: "application/json".into(),
            headers: vec![("x-tierwise-model".into(), "m".into())],
            body: vec![b'x'; n],
        }
    }

    #[tokio::test]
    async fn one_call_per_query_id() {
        let l = MemoryCallLedger::new();
        assert_eq!(l.begin("q", 0, 1_000).await.unwrap(), Begin::Started);
        assert_eq!(l.begin("q", 10, 1_000).await.unwrap(), Begin::InProgress);
        l.complete("q", Some(&answer(5)), 0).await.unwrap();
        assert_eq!(
            l.begin("q", 20, 1_000).await.unwrap(),
            Begin::Completed(Some(answer(5)))
        );
        assert_eq!(l.begin("r", 0, 1_000).await.unwrap(), Begin::Started);
        assert_eq!(
            l.begin("r", 1_001, 1_000).await.unwrap(),
            Begin::Started,
            "lease passed"
        );
        l.complete("r", Some(&answer(MAX_STORED_BODY + 1)), 0)
            .await
            .unwrap();
        assert_eq!(
            l.begin("r", 2_000, 1_000).await.unwrap(),
            Begin::Completed(None)
        );
        assert_eq!(l.begin("s", 0, 1_000).await.unwrap(), Begin::Started);
        l.abandon("s").await.unwrap();
        assert_eq!(l.begin("s", 1, 1_000).await.unwrap(), Begin::Started);
    }
}
