//! SQS queues: shadow samples (for the evaluator) and the fallback queue where records and
//! samples that could not be delivered are parked, and from which [`redrive`] delivers them.

use std::time::Duration;

use aws_sdk_sqs::Client;

use super::store_error;
use crate::ledger::records::{MAX_SAMPLE_BYTES, ShadowSample};
use crate::ledger::store::{CostSink, Parked, ParkingLot, SampleSink, StoreError, WriteOutcome};

const SERVICE: &str = "SQS";
/// Long-poll wait of a redrive's receive: an empty answer then means the queue is drained.
const RECEIVE_WAIT_SECS: i32 = 1;

/// One SQS queue, by URL.
#[derive(Clone)]
pub struct SqsQueue {
    client: Client,
    url: String,
}

impl SqsQueue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
        }
    }

    /// The queue URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    async fn send(&self, body: String) -> Result<(), StoreError> {
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| store_error(SERVICE, &e))
    }
}

fn encode<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Rejected {
        service: SERVICE,
        detail: format!("message not encodable: {e}"),
    })
}

impl SampleSink for SqsQueue {
    async fn send_sample(&self, sample: &ShadowSample) -> Result<(), StoreError> {
        // An oversize message would be refused, then refused again by the fallback queue:
        // cut to fit instead (flagged), never lost. Encoded once when it fits (the usual case).
        let body = encode(sample)?;
        if body.len() <= MAX_SAMPLE_BYTES {
            return self.send(body).await;
        }
        self.send(encode(&sample.clone().fit(MAX_SAMPLE_BYTES))?)
            .await
    }
}

impl ParkingLot for SqsQueue {
    async fn park(&self, item: &Parked) -> Result<(), StoreError> {
        self.send(encode(item)?).await
    }
}

/// What a redrive did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RedriveReport {
    /// Records written now.
    pub records_written: u64,
    /// Records that were already in the table (nothing to do).
    pub records_duplicate: u64,
    /// Samples sent to the shadow queue.
    pub samples_sent: u64,
    /// Messages left on the fallback queue: unreadable, or their delivery failed again.
    pub left: u64,
}

/// Delivers what was parked on `fallback`: records to `costs` (idempotently), samples to
/// `samples`, deleting each message once delivered. Stops when a receive comes back empty or
/// after `max_messages`.
pub async fn redrive(
    fallback: &SqsQueue,
    costs: &impl CostSink,
    samples: &impl SampleSink,
    max_messages: u64,
) -> Result<RedriveReport, StoreError> {
    let mut report = RedriveReport::default();
    let mut seen = 0;
    while seen < max_messages {
        let batch = fallback
            .client
            .receive_message()
            .queue_url(&fallback.url)
            .max_number_of_messages(10)
            .wait_time_seconds(RECEIVE_WAIT_SECS)
            .visibility_timeout(60)
            .customize()
            // The long poll outlasts the router's short attempt timeouts.
            .config_override(
                aws_sdk_sqs::Config::builder().timeout_config(
                    aws_config::timeout::TimeoutConfig::builder()
                        .operation_attempt_timeout(Duration::from_secs(
                            RECEIVE_WAIT_SECS as u64 + 5,
                        ))
                        .operation_timeout(Duration::from_secs(RECEIVE_WAIT_SECS as u64 * 3 + 15))
                        .build(),
                ),
            )
            .send()
            .await
            .map_err(|e| store_error(SERVICE, &e))?;
        let messages = batch.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for m in messages {
            seen += 1;
            let parked: Option<Parked> = m.body().and_then(|b| serde_json::from_str(b).ok());
            let delivered = match parked {
                Some(Parked::CostRecord { record, .. }) => match costs.write_cost(&record).await {
                    Ok(WriteOutcome::Written) => {
                        report.records_written += 1;
                        true
                    }
                    Ok(WriteOutcome::Duplicate) => {
                        report.records_duplicate += 1;
                        true
                    }
                    Err(_) => false,
                },
                Some(Parked::ShadowSample { sample, .. }) => {
                    let ok = samples.send_sample(&sample).await.is_ok();
                    report.samples_sent += u64::from(ok);
                    ok
                }
                None => false,
            };
            if !delivered {
                report.left += 1;
                continue;
            }
            if let Some(handle) = m.receipt_handle() {
                fallback
                    .client
                    .delete_message()
                    .queue_url(&fallback.url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .map_err(|e| store_error(SERVICE, &e))?;
            }
        }
    }
    Ok(report)
}
