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
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};

use super::evaluations::read_eval_rollups;
use super::{
    Transacted, UpdateParts, attr_n as n, attr_s as s, put_and_update, query_days, set_and_add,
    transact,
};
use crate::ledger::money::Usd;
pub use crate::ledger::records::item::cost_pk;
use crate::ledger::records::item::{self, attr};
use crate::ledger::records::{
    CostRecord, Counters, LATENCY_BUCKETS, RECORD_ROLLUP, RollupRow, decimal, latency_attr,
};
use crate::ledger::store::{CostSink, StoreError, WriteOutcome};
use crate::report::source::{RollupSource, Rollups};

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
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(cost_item(rec, self.ttl)))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build();
        put_and_update(&self.table, put, rollup_update(rec, self.shards))
    }
}

impl CostSink for DynamoCostStore {
    async fn write_cost(&self, rec: &CostRecord) -> Result<WriteOutcome, StoreError> {
        let items = self.transaction(rec)?;
        let token = request_token(rec);
        match transact(&self.client, items, &token, &rec.query_id).await? {
            Transacted::Committed => Ok(WriteOutcome::Written),
            // The record exists. If it is this very write (an SDK retry after an attempt that
            // committed but whose answer was lost, where the request token did not apply), it
            // was written now; otherwise this is a replay.
            Transacted::ConditionFailed { existing } => {
                Ok(if existing.is_some_and(|item| same_write(&item, rec)) {
                    WriteOutcome::Written
                } else {
                    WriteOutcome::Duplicate
                })
            }
        }
    }
}

/// Reads the rollup rows of `days` (`YYYY-MM-DD`), of one tenant or all: one paginated `Query`
/// per day, up to `concurrency` days at a time. Cost: O(days x tenants x models x shards) items.
pub async fn read_rollups(
    client: &Client,
    table: &str,
    days: &[String],
    tenant: Option<&str>,
    concurrency: usize,
) -> Result<Vec<RollupRow>, StoreError> {
    query_days(
        client,
        table,
        days,
        tenant,
        concurrency,
        rollup_pk,
        rollup_row,
    )
    .await
}

/// The report's [`RollupSource`] on the table: the cost rollups and the evaluator's verdict
/// rollups (their own partitions) of the days asked for, read together.
#[derive(Clone)]
pub struct DynamoRollups {
    client: Client,
    table: String,
    concurrency: usize,
}

impl DynamoRollups {
    /// Reads `table`, up to `concurrency` days of cost rollups at a time.
    pub fn new(client: Client, table: impl Into<String>, concurrency: usize) -> Self {
        Self {
            client,
            table: table.into(),
            concurrency,
        }
    }
}

impl RollupSource for DynamoRollups {
    async fn rollups(&self, days: &[String], tenant: Option<&str>) -> Result<Rollups, StoreError> {
        let (costs, verdicts) = tokio::join!(
            read_rollups(&self.client, &self.table, days, tenant, self.concurrency),
            read_eval_rollups(&self.client, &self.table, days, tenant),
        );
        Ok(Rollups {
            costs: costs?,
            verdicts: verdicts?,
        })
    }
}

/// A rollup item back into a row.
pub fn rollup_row(item: &HashMap<String, AttributeValue>) -> Result<RollupRow, String> {
    let text = |k: &str| -> Result<&str, String> {
        item.get(k)
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
            .ok_or_else(|| format!("no string attribute `{k}`"))
    };
    let num = |k: &str| -> Result<Option<&str>, String> {
        match item.get(k) {
            None => Ok(None),
            Some(v) => v
                .as_n()
                .map(|n| Some(n.as_str()))
                .map_err(|_| format!("`{k}` is not a number")),
        }
    };
    let count = |k: &str| -> Result<u64, String> {
        num(k)?.map_or(Ok(0), |n| {
            n.parse::<u64>()
                .map_err(|_| format!("`{k}` is not a count: {n}"))
        })
    };
    let money = |k: &str| -> Result<Usd, String> {
        num(k)?.map_or(Ok(Usd::ZERO), |n| {
            Usd::parse_decimal(n).ok_or_else(|| format!("`{k}` is not USD: {n}"))
        })
    };
    let mut latency = [0u64; LATENCY_BUCKETS];
    for (i, slot) in latency.iter_mut().enumerate() {
        *slot = count(&latency_attr(i))?;
    }
    Ok(RollupRow {
        day: text("day")?.to_string(),
        tenant: text("tenant")?.to_string(),
        tier: text("tier")?.parse().map_err(|e| format!("{e}"))?,
        model: text("model")?.to_string(),
        counters: Counters {
            queries: count("queries")?,
            input_tokens: count("input_tokens")?,
            output_tokens: count("output_tokens")?,
            cost: money("cost_usd")?,
            baseline_cost: money("baseline_cost_usd")?,
            escalations: count("escalations")?,
            rule_decisions: count("rule_decisions")?,
            shadow_samples: count("shadow_samples")?,
            upstream_errors: count("upstream_errors")?,
            router_ms_sum: num("router_ms_sum")?
                .map_or(Ok(0.0), |n| n.parse::<f64>())
                .map_err(|_| "`router_ms_sum` is not a number".to_string())?,
            latency,
        },
    })
}

/// Whether an existing record item is the one `rec` writes (same timestamp and latency, to
/// the millisecond and microsecond: a replay has its own).
fn same_write(item: &HashMap<String, AttributeValue>, rec: &CostRecord) -> bool {
    let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).map(String::as_str);
    let num = |k: &str| item.get(k).and_then(|v| v.as_n().ok()).map(String::as_str);
    text(attr::TS) == Some(rec.ts.as_str())
        && num(attr::ROUTER_MS) == Some(decimal(rec.router_ms, 3).as_str())
}

/// The transaction's idempotency token: the same for every attempt of this write (so an SDK
/// retry after an attempt that did commit but whose answer was lost succeeds as the original
/// write, within DynamoDB's 10-minute token window), different for a replay of the query id
/// (whose `ts` differs), which then fails the condition and is reported as a duplicate.
fn request_token(rec: &CostRecord) -> String {
    let h = xxhash_rust::xxh3::xxh3_128(
        format!("{}|{}|{}", rec.query_id, rec.ts, rec.router_ms).as_bytes(),
    );
    format!("{h:032x}")
}

/// The record as a DynamoDB item (the layout of [`item::cost_item`]).
pub fn cost_item(rec: &CostRecord, ttl: Duration) -> HashMap<String, AttributeValue> {
    attributes(item::cost_item(rec, ttl))
}

/// An item's attributes as the SDK takes them.
fn attributes(item: item::Item) -> HashMap<String, AttributeValue> {
    item.into_iter()
        .map(|(name, v)| (name.to_string(), attribute_value(v)))
        .collect()
}

fn attribute_value(v: item::Value) -> AttributeValue {
    match v {
        item::Value::S(x) => AttributeValue::S(x),
        item::Value::N(x) => AttributeValue::N(x),
        item::Value::Bool(x) => AttributeValue::Bool(x),
        item::Value::L(xs) => AttributeValue::L(xs.into_iter().map(attribute_value).collect()),
        item::Value::M(m) => AttributeValue::M(attributes(m)),
    }
}

/// Key, update expression, names and values adding a record to its rollup. Every attribute
/// name goes through a placeholder (several are DynamoDB reserved words).
pub fn rollup_update(rec: &CostRecord, shards: u32) -> UpdateParts {
    let key = rec.rollup_key(shards);
    let d = rec.counters();
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
    let mut adds: Vec<(String, AttributeValue)> = vec![
        ("queries".into(), n(d.queries)),
        ("input_tokens".into(), n(d.input_tokens)),
        ("output_tokens".into(), n(d.output_tokens)),
        ("cost_usd".into(), n(d.cost.to_decimal())),
        ("baseline_cost_usd".into(), n(d.baseline_cost.to_decimal())),
        ("escalations".into(), n(d.escalations)),
        ("rule_decisions".into(), n(d.rule_decisions)),
        ("shadow_samples".into(), n(d.shadow_samples)),
        ("upstream_errors".into(), n(d.upstream_errors)),
        ("router_ms_sum".into(), n(decimal(d.router_ms_sum, 3))),
    ];
    for (i, count) in d.latency.iter().enumerate() {
        if *count > 0 {
            adds.push((latency_attr(i), n(*count)));
        }
    }
    set_and_add(item_key, &sets, adds)
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
}
