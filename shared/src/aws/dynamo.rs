//! Cost records and rollups in one DynamoDB table.
//!
//! Layout (single table, string keys `pk`/`sk`):
//! - cost record: `pk = Q#<query_id>`, `sk = cost`; the contract's attributes plus `day` and
//!   `ttl` (epoch seconds; records expire, rollups stay).
//! - rollup: `pk = ROLLUP#<day>`, `sk = <tenant>#<tier>#<model>#<shard>`; counters added with
//!   `ADD`. A month's report reads one partition per day: O(days x tenants x models x shards)
//!   items, never the records.
//!
//! One `TransactWriteItems` puts the record on condition that its key does not exist and adds
//! its counters to the rollup: both or neither, so a replay (or an SDK retry whose first
//! attempt did commit) leaves the record once and the rollup counted once. Money is written as
//! decimal text, which DynamoDB adds exactly: rollup sums equal record sums to the cent.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};

use super::store_error;
use crate::records::{CostRecord, RECORD_COST, RECORD_ROLLUP, latency_attr};
use crate::store::{CostSink, StoreError, WriteOutcome};

const SERVICE: &str = "DynamoDB";
/// Transactions cancelled by a concurrent transaction on the same rollup item are retried
/// this many times (with jittered backoff) before the write counts as failed.
const CONFLICT_RETRIES: u32 = 5;

/// Partition key of a cost record.
pub fn cost_pk(query_id: &str) -> String {
    format!("Q#{query_id}")
}

/// Partition key of a day's rollups.
pub fn rollup_pk(day: &str) -> String {
    format!("ROLLUP#{day}")
}

/// Writes cost records and their rollup increments.
#[derive(Clone)]
pub struct DynamoCostStore {
    client: Client,
    table: String,
    shards: u32,
    ttl: Duration,
}

impl DynamoCostStore {
    /// A store on `table`, rollups spread over `shards` items, records kept `ttl_days`.
    pub fn new(client: Client, table: impl Into<String>, shards: u32, ttl_days: u32) -> Self {
        Self {
            client,
            table: table.into(),
            shards: shards.max(1),
            ttl: Duration::from_secs(u64::from(ttl_days) * 86_400),
        }
    }

    /// The table.
    pub fn table(&self) -> &str {
        &self.table
    }

    fn transaction(&self, rec: &CostRecord) -> Result<Vec<TransactWriteItem>, StoreError> {
        let build = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Rejected {
            service: SERVICE,
            detail: e.to_string(),
        };
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(cost_item(rec, self.ttl)))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build)?;
        let (key, expr, names, values) = rollup_update(rec, self.shards);
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(expr)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(build)?;
        Ok(vec![
            TransactWriteItem::builder().put(put).build(),
            TransactWriteItem::builder().update(update).build(),
        ])
    }
}

impl CostSink for DynamoCostStore {
    async fn write_cost(&self, rec: &CostRecord) -> Result<WriteOutcome, StoreError> {
        let items = self.transaction(rec)?;
        let mut attempt = 0;
        loop {
            let res = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let err = match res {
                Ok(_) => return Ok(WriteOutcome::Written),
                Err(e) => e,
            };
            let cancelled = match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c)) => Some(
                    c.cancellation_reasons()
                        .iter()
                        .map(|r| r.code().unwrap_or("None").to_string())
                        .collect::<Vec<_>>(),
                ),
                _ => None,
            };
            let Some(reasons) = cancelled else {
                return Err(store_error(SERVICE, &err));
            };
            if reasons
                .first()
                .is_some_and(|c| c == "ConditionalCheckFailed")
            {
                return Ok(WriteOutcome::Duplicate);
            }
            let transient = reasons.iter().any(|c| {
                matches!(
                    c.as_str(),
                    "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded"
                )
            });
            if !transient {
                return Err(StoreError::Rejected {
                    service: SERVICE,
                    detail: format!("transaction cancelled: {}", reasons.join(",")),
                });
            }
            if attempt >= CONFLICT_RETRIES {
                return Err(if reasons.iter().any(|c| c == "TransactionConflict") {
                    StoreError::Unavailable {
                        service: SERVICE,
                        detail: "transaction conflicts persisted".into(),
                    }
                } else {
                    StoreError::Throttled { service: SERVICE }
                });
            }
            tokio::time::sleep(backoff(&rec.query_id, attempt)).await;
            attempt += 1;
        }
    }
}

/// 10 ms x 2^attempt with full jitter derived from the query id (no shared RNG needed, and
/// concurrent writers of one rollup spread apart).
fn backoff(query_id: &str, attempt: u32) -> Duration {
    let cap = 10u64 << attempt.min(6);
    let h = xxhash_rust::xxh3::xxh3_64_with_seed(query_id.as_bytes(), u64::from(attempt));
    Duration::from_millis(1 + h % cap)
}

/// A decimal number as DynamoDB text: finite, fixed precision, no exponent.
pub fn decimal(x: f64, places: usize) -> String {
    if !x.is_finite() {
        return "0".into();
    }
    let s = format!("{x:.places$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    if s == "-0" { "0".into() } else { s }
}

fn n(x: impl ToString) -> AttributeValue {
    AttributeValue::N(x.to_string())
}

fn s(x: impl Into<String>) -> AttributeValue {
    AttributeValue::S(x.into())
}

/// The record as a DynamoDB item.
pub fn cost_item(rec: &CostRecord, ttl: Duration) -> HashMap<String, AttributeValue> {
    let expires = crate::records::Timestamp::parse_unix(&rec.ts)
        .unwrap_or(0)
        .saturating_add(ttl.as_secs() as i64);
    let mut item = HashMap::from([
        ("pk".to_string(), s(cost_pk(&rec.query_id))),
        ("sk".to_string(), s(RECORD_COST)),
        ("record".to_string(), s(RECORD_COST)),
        ("query_id".to_string(), s(&rec.query_id)),
        ("ts".to_string(), s(&rec.ts)),
        ("day".to_string(), s(rec.day())),
        ("tenant".to_string(), s(&rec.tenant)),
        ("model".to_string(), s(&rec.model)),
        ("tier".to_string(), s(rec.tier.as_str())),
        ("predicted_tier".to_string(), s(rec.predicted_tier.as_str())),
        ("confidence".to_string(), n(decimal(rec.confidence, 6))),
        ("escalated".to_string(), AttributeValue::Bool(rec.escalated)),
        ("decided_by".to_string(), s(&rec.decided_by)),
        ("input_tokens".to_string(), n(rec.input_tokens)),
        ("output_tokens".to_string(), n(rec.output_tokens)),
        (
            "tokens_estimated".to_string(),
            AttributeValue::Bool(rec.tokens_estimated),
        ),
        ("cost_usd".to_string(), n(decimal(rec.cost_usd, 9))),
        ("baseline_model".to_string(), s(&rec.baseline_model)),
        (
            "baseline_cost_usd".to_string(),
            n(decimal(rec.baseline_cost_usd, 9)),
        ),
        ("router_ms".to_string(), n(decimal(rec.router_ms, 3))),
        ("status".to_string(), s(rec.status.as_str())),
        ("shadow".to_string(), AttributeValue::Bool(rec.shadow)),
        ("pricing_version".to_string(), s(&rec.pricing_version)),
        ("router_version".to_string(), s(&rec.router_version)),
        ("ttl".to_string(), n(expires)),
    ]);
    if let Some(ms) = rec.upstream_ms {
        item.insert("upstream_ms".to_string(), n(decimal(ms, 3)));
    }
    item
}

type UpdateParts = (
    HashMap<String, AttributeValue>,
    String,
    HashMap<String, String>,
    HashMap<String, AttributeValue>,
);

/// Key, update expression, names and values adding a record to its rollup. Every attribute
/// name goes through a placeholder (several are DynamoDB reserved words).
pub fn rollup_update(rec: &CostRecord, shards: u32) -> UpdateParts {
    let key = rec.rollup_key(shards);
    let d = rec.rollup_delta();
    let item_key = HashMap::from([
        ("pk".to_string(), s(rollup_pk(&key.day))),
        (
            "sk".to_string(),
            s(format!(
                "{}#{}#{}#{:02}",
                key.tenant, key.tier, key.model, key.shard
            )),
        ),
    ]);
    let sets: [(&str, AttributeValue); 5] = [
        ("record", s(RECORD_ROLLUP)),
        ("day", s(&key.day)),
        ("tenant", s(&key.tenant)),
        ("tier", s(key.tier.as_str())),
        ("model", s(&key.model)),
    ];
    let adds: Vec<(String, AttributeValue)> = vec![
        ("queries".into(), n(d.queries)),
        ("input_tokens".into(), n(d.input_tokens)),
        ("output_tokens".into(), n(d.output_tokens)),
        ("cost_usd".into(), n(decimal(d.cost_usd, 9))),
        (
            "baseline_cost_usd".into(),
            n(decimal(d.baseline_cost_usd, 9)),
        ),
        ("escalations".into(), n(d.escalations)),
        ("rule_decisions".into(), n(d.rule_decisions)),
        ("shadow_samples".into(), n(d.shadow_samples)),
        ("upstream_errors".into(), n(d.upstream_errors)),
        ("router_ms_sum".into(), n(decimal(d.router_ms_sum, 3))),
        (latency_attr(d.latency_bucket), n(1)),
    ];
    let mut names = HashMap::new();
    let mut values = HashMap::new();
    let mut set_parts = Vec::new();
    for (i, (name, value)) in sets.into_iter().enumerate() {
        names.insert(format!("#s{i}"), name.to_string());
        values.insert(format!(":s{i}"), value);
        set_parts.push(format!("#s{i} = :s{i}"));
    }
    let mut add_parts = Vec::new();
    for (i, (name, value)) in adds.into_iter().enumerate() {
        names.insert(format!("#a{i}"), name);
        values.insert(format!(":a{i}"), value);
        add_parts.push(format!("#a{i} :a{i}"));
    }
    let expr = format!("SET {} ADD {}", set_parts.join(", "), add_parts.join(", "));
    (item_key, expr, names, values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_plain_and_exact() {
        assert_eq!(decimal(0.000085, 9), "0.000085");
        assert_eq!(decimal(1.5, 9), "1.5");
        assert_eq!(decimal(3.0, 9), "3");
        assert_eq!(decimal(1e-12, 9), "0");
        assert_eq!(decimal(f64::NAN, 9), "0");
        assert_eq!(decimal(-0.0, 3), "0");
        assert_eq!(decimal(12.3456789, 3), "12.346");
    }

    #[test]
    fn backoff_grows_and_is_bounded() {
        for a in 0..8 {
            let b = backoff("q", a).as_millis() as u64;
            assert!(b >= 1 && b <= (10u64 << a.min(6)), "{a}: {b}");
        }
        assert_ne!(backoff("q1", 3), backoff("q2", 3));
    }
}
