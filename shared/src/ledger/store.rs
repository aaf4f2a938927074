//! The narrow interfaces between the domain and storage: where cost records, shadow samples
//! and parked (undeliverable) items go. AWS implements them in [`crate::aws`]; tests implement
//! them in memory.

use std::future::Future;

use crate::ledger::records::{CostRecord, ShadowSample};

/// How a cost record write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The record and its rollup increment were written.
    Written,
    /// A record with this query id already exists: nothing was written (an idempotent replay).
    Duplicate,
}

/// A store or queue operation failed (after the client's own retries).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Throttled by the service.
    #[error("throttled by {service}")]
    Throttled { service: &'static str },
    /// No answer within the configured timeout.
    #[error("{service} did not answer in time")]
    Timeout { service: &'static str },
    /// The service could not be reached or answered with a server error.
    #[error("{service} unavailable: {detail}")]
    Unavailable {
        service: &'static str,
        detail: String,
    },
    /// The request was refused (permissions, validation, missing table or queue): retrying
    /// the same request will not help.
    #[error("{service} refused the request: {detail}")]
    Rejected {
        service: &'static str,
        detail: String,
    },
}

impl StoreError {
    /// Whether the same operation may succeed later.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, StoreError::Rejected { .. })
    }

    /// Short machine-readable kind, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::Throttled { .. } => "throttled",
            StoreError::Timeout { .. } => "timeout",
            StoreError::Unavailable { .. } => "unavailable",
            StoreError::Rejected { .. } => "rejected",
        }
    }
}

/// Where cost records go: the record and its rollup increment, exactly once per query id.
pub trait CostSink: Send + Sync {
    fn write_cost(
        &self,
        record: &CostRecord,
    ) -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send;
}

/// Where shadow samples go.
pub trait SampleSink: Send + Sync {
    fn send_sample(
        &self,
        sample: &ShadowSample,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Durable fallback for what could not be delivered: kept for a later redrive.
pub trait ParkingLot: Send + Sync {
    fn park(&self, item: &Parked) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// An item that could not be delivered, as parked (the fallback queue's message body).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Parked {
    /// A cost record whose write failed: redrive writes it (idempotently).
    CostRecord { record: CostRecord, error: String },
    /// A shadow sample whose send failed: redrive sends it.
    ShadowSample { sample: ShadowSample, error: String },
}
