//! Evaluations in the cost table (DynamoDB): the evaluator's claims and records, the verdict
//! rollups, and the readers of both (the reporter, the label export).
//!
//! Layout (same table as the cost records, string keys `pk`/`sk`):
//! - claim, then record: `pk = Q#<query_id>`, `sk = eval` (next to the cost record, `sk =
//!   cost`). A claim is `record = eval_claim`, `status = claimed`, `owner`, `lease_until`
//!   (epoch seconds); the evaluator replaces it by the record, `record = evaluation`, `status =
//!   done`, the contract attributes of [`EvaluationRecord`], `day`, `owner`, `ttl`.
//! - rollup: `pk = EVALROLLUP#<day>`, `sk = <tenant>#<tier>#<model>#<reference_model>`,
//!   `record = eval_rollup`, counters added with `ADD`: `evaluations`, `equivalent`, `worse`,
//!   `better`, `similarity_sum`, `similarity_count`, `judge_score_sum`, `judge_count`,
//!   `shadow_cost_usd` (exact decimal), `shadow_input_tokens`, `shadow_output_tokens`,
//!   `method_<method>`. Shadow spend lives only here and on the records: never in the cost
//!   rollups (`ROLLUP#<day>`).
//!
//! Claim: a conditional put (no item, or a claim whose lease ended). Completion: one
//! `TransactWriteItems` puts the record on condition that the claim is still the caller's and
//! adds the rollup increment, both or neither: a query is counted once. Label export: a
//! filtered `Scan` (records are keyed by query id); for big tables, export the table to S3.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};

use super::dynamo::cost_pk;
use super::{
    Transacted, UpdateParts, attr_n as n, attr_s as s, condition_failed, conditional,
    put_and_update, query_days, set_and_add, store_error, transact,
};
use crate::ledger::money::{Timestamp, Usd};
use crate::ledger::records::decimal;
use crate::ledger::store::{StoreError, WriteOutcome};
use crate::routing::pool::Tier;
use crate::shadow::labels::{LabelExportSummary, write_labels};
use crate::shadow::record::{EvaluationRecord, RECORD_EVAL_CLAIM, RECORD_EVALUATION};
use crate::shadow::rollup::{EvalRollupKey, EvalRollupRow, RECORD_EVAL_ROLLUP, VerdictCounters};
use crate::shadow::store::{Claim, EvaluationStore};

const SERVICE: &str = "DynamoDB";
/// Sort key of a query's claim / evaluation record.
pub const EVAL_SK: &str = "eval";
const STATUS_CLAIMED: &str = "claimed";
const STATUS_DONE: &str = "done";
/// Partition key of a day's evaluation rollups.
pub fn eval_rollup_pk(day: &str) -> String {
    format!("EVALROLLUP#{day}")
}

/// Sort key of an evaluation rollup.
pub fn eval_rollup_sk(key: &EvalRollupKey) -> String {
    format!(
        "{}#{}#{}#{}",
        key.tenant, key.tier, key.model, key.reference_model
    )
}

/// The key of a query's claim / evaluation record.
fn eval_key(query_id: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_string(), s(cost_pk(query_id))),
        ("sk".to_string(), s(EVAL_SK)),
    ])
}

/// The condition of completing or releasing a claim: it is still `owner`'s.
const OWNED_CLAIM: &str = "#st = :claimed AND #ow = :me";

/// The attribute names and values of [`OWNED_CLAIM`] for `owner`.
fn owned_claim(owner: &str) -> (HashMap<String, String>, HashMap<String, AttributeValue>) {
    let names = HashMap::from([
        ("#st".to_string(), "status".to_string()),
        ("#ow".to_string(), "owner".to_string()),
    ]);
    let values = HashMap::from([
        (":claimed".to_string(), s(STATUS_CLAIMED)),
        (":me".to_string(), s(owner)),
    ]);
    (names, values)
}

fn rejected(detail: impl Into<String>) -> StoreError {
    StoreError::Rejected {
        service: SERVICE,
        detail: detail.into(),
    }
}

/// Claims, records and rollups of evaluations.
#[derive(Clone)]
pub struct DynamoEvaluationStore {
    client: Client,
    table: String,
    ttl: Duration,
}

impl DynamoEvaluationStore {
    /// A store on `table`; records are kept `ttl_days` after the query.
    pub fn new(client: Client, table: impl Into<String>, ttl_days: u32) -> Self {
        Self {
            client,
            table: table.into(),
            ttl: Duration::from_secs(u64::from(ttl_days) * 86_400),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    async fn get(
        &self,
        query_id: &str,
    ) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(eval_key(query_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error(SERVICE, &e))?;
        Ok(out.item)
    }

    /// The evaluation record of `query_id`, if it was evaluated.
    pub async fn record(&self, query_id: &str) -> Result<Option<EvaluationRecord>, StoreError> {
        match self.get(query_id).await? {
            Some(item) if text(&item, "status") == Some(STATUS_DONE) => {
                record_of_item(&item).map(Some).map_err(rejected)
            }
            _ => Ok(None),
        }
    }

    fn transaction(
        &self,
        rec: &EvaluationRecord,
        owner: &str,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let mut item = evaluation_item(rec, self.ttl);
        item.insert("owner".into(), s(owner));
        let (names, values) = owned_claim(owner);
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(OWNED_CLAIM)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build();
        put_and_update(&self.table, put, eval_rollup_update(rec))
    }
}

impl EvaluationStore for DynamoEvaluationStore {
    async fn claim(
        &self,
        query_id: &str,
        owner: &str,
        now: i64,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        let lease_until = now.saturating_add(lease.as_secs() as i64);
        let mut item = eval_key(query_id);
        item.extend([
            ("record".to_string(), s(RECORD_EVAL_CLAIM)),
            ("query_id".to_string(), s(query_id)),
            ("status".to_string(), s(STATUS_CLAIMED)),
            ("owner".to_string(), s(owner)),
            ("lease_until".to_string(), n(lease_until)),
            // A claim nobody completes disappears a day after its lease.
            ("ttl".to_string(), n(lease_until.saturating_add(86_400))),
        ]);
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR (#st = :claimed AND #lu < :now)")
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#lu", "lease_until")
            .expression_attribute_values(":claimed", s(STATUS_CLAIMED))
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        let err = match res {
            Ok(_) => return Ok(Claim::Claimed),
            Err(e) => e,
        };
        if !condition_failed(&err) {
            return Err(store_error(SERVICE, &err));
        }
        // Done, or someone else's live claim.
        Ok(match self.get(query_id).await? {
            Some(item) if text(&item, "status") == Some(STATUS_DONE) => Claim::Done,
            Some(item) => Claim::Busy {
                lease_until: number(&item, "lease_until")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(now),
            },
            // Released between our put and our read: busy for now, the retry claims it.
            None => Claim::Busy { lease_until: now },
        })
    }

    async fn complete(
        &self,
        rec: &EvaluationRecord,
        owner: &str,
    ) -> Result<WriteOutcome, StoreError> {
        let items = self.transaction(rec, owner)?;
        let token = {
            let h = xxhash_rust::xxh3::xxh3_128(format!("{}|{owner}", rec.query_id).as_bytes());
            format!("{h:032x}")
        };
        match transact(&self.client, items, &token, owner).await? {
            Transacted::Committed => Ok(WriteOutcome::Written),
            Transacted::ConditionFailed { .. } => {
                // Not our claim any more, unless it is our own record (an SDK retry of an
                // attempt that committed).
                let item = self.get(&rec.query_id).await?;
                let ours = item.is_some_and(|i| {
                    text(&i, "status") == Some(STATUS_DONE) && text(&i, "owner") == Some(owner)
                });
                Ok(if ours {
                    WriteOutcome::Written
                } else {
                    WriteOutcome::Duplicate
                })
            }
        }
    }

    async fn release(&self, query_id: &str, owner: &str) -> Result<(), StoreError> {
        let (names, values) = owned_claim(owner);
        let res = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(eval_key(query_id)))
            .condition_expression(OWNED_CLAIM)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        conditional(SERVICE, res).map(|_| ())
    }
}

/// The record as a DynamoDB item (without `owner`).
pub fn evaluation_item(rec: &EvaluationRecord, ttl: Duration) -> HashMap<String, AttributeValue> {
    let expires = rec.ts.unix_secs().saturating_add(ttl.as_secs() as i64);
    let strings: [(&str, &str); 17] = [
        ("record", RECORD_EVALUATION),
        ("status", STATUS_DONE),
        ("query_id", &rec.query_id),
        ("ts", rec.ts.as_str()),
        ("day", rec.day()),
        ("evaluated_at", rec.evaluated_at.as_str()),
        ("tenant", &rec.tenant),
        ("routed_model", &rec.routed_model),
        ("routed_tier", rec.routed_tier.as_str()),
        ("predicted_tier", rec.predicted_tier.as_str()),
        ("decided_by", &rec.decided_by),
        ("reference_model", &rec.reference_model),
        ("reference_tier", rec.reference_tier.as_str()),
        ("verdict", &rec.verdict),
        ("method", &rec.method),
        ("routed_source", &rec.routed_source),
        ("pricing_version", &rec.pricing_version),
    ];
    let counts: [(&str, u64); 6] = [
        ("routed_input_tokens", rec.routed_input_tokens),
        ("routed_output_tokens", rec.routed_output_tokens),
        ("reference_input_tokens", rec.reference_input_tokens),
        ("reference_output_tokens", rec.reference_output_tokens),
        ("judge_input_tokens", rec.judge_input_tokens),
        ("judge_output_tokens", rec.judge_output_tokens),
    ];
    let money: [(&str, Usd); 4] = [
        ("routed_cost_usd", rec.routed_cost_usd),
        ("reference_cost_usd", rec.reference_cost_usd),
        ("judge_cost_usd", rec.judge_cost_usd),
        ("shadow_cost_usd", rec.shadow_cost_usd),
    ];
    let mut item = eval_key(&rec.query_id);
    item.extend(strings.into_iter().map(|(k, v)| (k.to_string(), s(v))));
    item.extend(counts.into_iter().map(|(k, v)| (k.to_string(), n(v))));
    item.extend(
        money
            .into_iter()
            .map(|(k, v)| (k.to_string(), n(v.to_decimal()))),
    );
    item.extend([
        ("evaluator_version".to_string(), s(&rec.evaluator_version)),
        ("confidence".to_string(), n(decimal(rec.confidence, 6))),
        (
            "tokens_estimated".to_string(),
            AttributeValue::Bool(rec.tokens_estimated),
        ),
        (
            "prompt_truncated".to_string(),
            AttributeValue::Bool(rec.prompt_truncated),
        ),
        ("ttl".to_string(), n(expires)),
    ]);
    if let Some(x) = rec.similarity {
        item.insert("similarity".into(), n(decimal(x, 6)));
    }
    if let Some(x) = rec.judge_score {
        item.insert("judge_score".into(), n(decimal(x, 6)));
    }
    if let Some(m) = &rec.judge_model {
        item.insert("judge_model".into(), s(m));
    }
    if let Some(p) = &rec.prompt {
        item.insert("prompt".into(), s(p));
    }
    item
}

fn text<'a>(item: &'a HashMap<String, AttributeValue>, k: &str) -> Option<&'a str> {
    item.get(k).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn number<'a>(item: &'a HashMap<String, AttributeValue>, k: &str) -> Option<&'a str> {
    item.get(k).and_then(|v| v.as_n().ok()).map(String::as_str)
}

/// Reads the attributes of an item; the errors say which attribute is wrong and how.
struct Attrs<'a>(&'a HashMap<String, AttributeValue>);

impl Attrs<'_> {
    /// A required string.
    fn req(&self, k: &str) -> Result<String, String> {
        text(self.0, k)
            .map(str::to_string)
            .ok_or_else(|| format!("no string attribute `{k}`"))
    }

    /// An optional string.
    fn opt(&self, k: &str) -> Option<String> {
        text(self.0, k).map(str::to_string)
    }

    /// A required tier.
    fn tier(&self, k: &str) -> Result<Tier, String> {
        self.req(k)?.parse().map_err(|e| format!("{e}"))
    }

    /// A count, 0 when absent.
    fn count(&self, k: &str) -> Result<u64, String> {
        number(self.0, k).map_or(Ok(0), |v| {
            v.parse().map_err(|_| format!("`{k}` is not a count: {v}"))
        })
    }

    /// An optional number.
    fn float(&self, k: &str) -> Result<Option<f64>, String> {
        number(self.0, k)
            .map(|v| v.parse().map_err(|_| format!("`{k}` is not a number: {v}")))
            .transpose()
    }

    /// An exact USD amount, 0 when absent.
    fn usd(&self, k: &str) -> Result<Usd, String> {
        number(self.0, k).map_or(Ok(Usd::ZERO), |v| {
            Usd::parse_decimal(v).ok_or_else(|| format!("`{k}` is not USD: {v}"))
        })
    }

    /// An RFC 3339 timestamp.
    fn time(&self, k: &str) -> Result<Timestamp, String> {
        let t = self.req(k)?;
        Timestamp::parse(&t).ok_or_else(|| format!("`{k}` is not RFC 3339: {t}"))
    }

    /// A boolean, false when absent.
    fn flag(&self, k: &str) -> bool {
        self.0
            .get(k)
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false)
    }
}

/// An evaluation record item back into a record.
pub fn record_of_item(item: &HashMap<String, AttributeValue>) -> Result<EvaluationRecord, String> {
    let a = Attrs(item);
    Ok(EvaluationRecord {
        record: RECORD_EVALUATION.to_string(),
        query_id: a.req("query_id")?,
        ts: a.time("ts")?,
        evaluated_at: a.time("evaluated_at")?,
        tenant: a.req("tenant")?,
        routed_model: a.req("routed_model")?,
        routed_tier: a.tier("routed_tier")?,
        predicted_tier: a.tier("predicted_tier")?,
        decided_by: a.req("decided_by")?,
        confidence: a.float("confidence")?.unwrap_or(0.0),
        reference_model: a.req("reference_model")?,
        reference_tier: a.tier("reference_tier")?,
        verdict: a.req("verdict")?,
        method: a.req("method")?,
        similarity: a.float("similarity")?,
        judge_score: a.float("judge_score")?,
        judge_model: a.opt("judge_model"),
        routed_source: a.req("routed_source")?,
        routed_input_tokens: a.count("routed_input_tokens")?,
        routed_output_tokens: a.count("routed_output_tokens")?,
        reference_input_tokens: a.count("reference_input_tokens")?,
        reference_output_tokens: a.count("reference_output_tokens")?,
        judge_input_tokens: a.count("judge_input_tokens")?,
        judge_output_tokens: a.count("judge_output_tokens")?,
        tokens_estimated: a.flag("tokens_estimated"),
        routed_cost_usd: a.usd("routed_cost_usd")?,
        reference_cost_usd: a.usd("reference_cost_usd")?,
        judge_cost_usd: a.usd("judge_cost_usd")?,
        shadow_cost_usd: a.usd("shadow_cost_usd")?,
        prompt: a.opt("prompt"),
        prompt_truncated: a.flag("prompt_truncated"),
        pricing_version: a.req("pricing_version")?,
        evaluator_version: a.req("evaluator_version")?,
    })
}

/// Key, update expression, names and values adding a record to its evaluation rollup.
pub fn eval_rollup_update(rec: &EvaluationRecord) -> UpdateParts {
    let key = rec.rollup_key();
    let c = rec.counters();
    let item_key = HashMap::from([
        ("pk".to_string(), s(eval_rollup_pk(&key.day))),
        ("sk".to_string(), s(eval_rollup_sk(&key))),
    ]);
    let sets: [(&str, AttributeValue); 6] = [
        ("record", s(RECORD_EVAL_ROLLUP)),
        ("day", s(&key.day)),
        ("tenant", s(&key.tenant)),
        ("tier", s(key.tier.as_str())),
        ("model", s(&key.model)),
        ("reference_model", s(&key.reference_model)),
    ];
    let mut adds: Vec<(String, AttributeValue)> = vec![
        ("evaluations".into(), n(c.evaluations)),
        ("equivalent".into(), n(c.equivalent)),
        ("worse".into(), n(c.worse)),
        ("better".into(), n(c.better)),
        ("similarity_sum".into(), n(decimal(c.similarity_sum, 6))),
        ("similarity_count".into(), n(c.similarity_count)),
        ("judge_score_sum".into(), n(decimal(c.judge_score_sum, 6))),
        ("judge_count".into(), n(c.judge_count)),
        ("shadow_cost_usd".into(), n(c.shadow_cost.to_decimal())),
        ("shadow_input_tokens".into(), n(c.shadow_input_tokens)),
        ("shadow_output_tokens".into(), n(c.shadow_output_tokens)),
    ];
    for (method, count) in &c.methods {
        adds.push((format!("method_{method}"), n(count)));
    }
    set_and_add(item_key, &sets, adds)
}

/// An evaluation rollup item back into a row.
pub fn eval_rollup_row(item: &HashMap<String, AttributeValue>) -> Result<EvalRollupRow, String> {
    let a = Attrs(item);
    let mut methods = std::collections::BTreeMap::new();
    for (k, v) in item {
        if let Some(m) = k.strip_prefix("method_") {
            let c: u64 = v
                .as_n()
                .ok()
                .and_then(|x| x.parse().ok())
                .ok_or_else(|| format!("`{k}` is not a count"))?;
            methods.insert(m.to_string(), c);
        }
    }
    Ok(EvalRollupRow {
        key: EvalRollupKey {
            day: a.req("day")?,
            tenant: a.req("tenant")?,
            tier: a.tier("tier")?,
            model: a.req("model")?,
            reference_model: a.req("reference_model")?,
        },
        counters: VerdictCounters {
            evaluations: a.count("evaluations")?,
            equivalent: a.count("equivalent")?,
            worse: a.count("worse")?,
            better: a.count("better")?,
            similarity_sum: a.float("similarity_sum")?.unwrap_or(0.0),
            similarity_count: a.count("similarity_count")?,
            judge_score_sum: a.float("judge_score_sum")?.unwrap_or(0.0),
            judge_count: a.count("judge_count")?,
            shadow_cost: a.usd("shadow_cost_usd")?,
            shadow_input_tokens: a.count("shadow_input_tokens")?,
            shadow_output_tokens: a.count("shadow_output_tokens")?,
            methods,
        },
    })
}

/// Reads the evaluation rollups of `days` (`YYYY-MM-DD`), of one tenant or all: one paginated
/// `Query` per day, 8 days at a time. Cost: O(days x tenants x models) items.
pub async fn read_eval_rollups(
    client: &Client,
    table: &str,
    days: &[String],
    tenant: Option<&str>,
) -> Result<Vec<EvalRollupRow>, StoreError> {
    query_days(
        client,
        table,
        days,
        tenant,
        8,
        eval_rollup_pk,
        eval_rollup_row,
    )
    .await
}

/// Reads the evaluation records of queries whose day is in `from..=to` (`YYYY-MM-DD`), of one
/// tenant or all: a filtered, paginated `Scan` of the table (records are keyed by query id).
pub async fn read_evaluations(
    client: &Client,
    table: &str,
    from: &str,
    to: &str,
    tenant: Option<&str>,
) -> Result<Vec<EvaluationRecord>, StoreError> {
    let bar = crate::offline::parallel::counter("evaluation records read");
    let mut records = Vec::new();
    let mut start = None;
    loop {
        let mut scan = client
            .scan()
            .table_name(table)
            .filter_expression(match tenant {
                Some(_) => "#r = :rec AND #d BETWEEN :from AND :to AND #t = :tenant",
                None => "#r = :rec AND #d BETWEEN :from AND :to",
            })
            .expression_attribute_names("#r", "record")
            .expression_attribute_names("#d", "day")
            .expression_attribute_values(":rec", s(RECORD_EVALUATION))
            .expression_attribute_values(":from", s(from))
            .expression_attribute_values(":to", s(to))
            .set_exclusive_start_key(start.take());
        if let Some(t) = tenant {
            scan = scan
                .expression_attribute_names("#t", "tenant")
                .expression_attribute_values(":tenant", s(t));
        }
        let out = scan.send().await.map_err(|e| store_error(SERVICE, &e))?;
        for item in out.items() {
            records.push(
                record_of_item(item)
                    .map_err(|d| rejected(format!("malformed evaluation record: {d}")))?,
            );
        }
        bar.set_position(records.len() as u64);
        match out.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => break,
        }
    }
    bar.finish_and_clear();
    records.sort_by(|a, b| {
        (a.ts.as_str(), a.query_id.as_str()).cmp(&(b.ts.as_str(), b.query_id.as_str()))
    });
    Ok(records)
}

/// The label export (`tierwise labels`): the verdicts of `from..=to` as routing-benchmark rows
/// (JSON lines) on `out`.
pub async fn export_labels(
    client: &Client,
    table: &str,
    from: &str,
    to: &str,
    tenant: Option<&str>,
    out: &mut impl std::io::Write,
) -> Result<LabelExportSummary, StoreError> {
    let records = read_evaluations(client, table, from, to, tenant).await?;
    write_labels(&records, out).map_err(|e| rejected(format!("writing labels: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shadow::record::ROUTED_FROM_SAMPLE;
    use crate::shadow::record::fixtures;

    /// A judged record with every optional attribute set.
    fn record() -> EvaluationRecord {
        EvaluationRecord {
            predicted_tier: Tier::Tier2,
            decided_by: "rule:math".into(),
            confidence: 0.875,
            similarity: Some(0.5),
            judge_score: Some(0.75),
            judge_model: Some("anthropic/claude-opus-4.7".into()),
            routed_source: ROUTED_FROM_SAMPLE.into(),
            judge_input_tokens: 300,
            judge_output_tokens: 9,
            tokens_estimated: true,
            routed_cost_usd: Usd::from_nanos(2_800),
            judge_cost_usd: Usd::from_nanos(1_725_000),
            shadow_cost_usd: Usd::from_nanos(1_820_000),
            prompt: Some("Q?".into()),
            prompt_truncated: true,
            ..fixtures::record("worse", "judge")
        }
    }

    #[test]
    fn record_items_round_trip() {
        let rec = record();
        let item = evaluation_item(&rec, Duration::from_secs(86_400));
        assert_eq!(item["pk"].as_s().unwrap(), "Q#q-1");
        assert_eq!(item["sk"].as_s().unwrap(), "eval");
        assert_eq!(item["record"].as_s().unwrap(), "evaluation");
        assert_eq!(item["shadow_cost_usd"].as_n().unwrap(), "0.00182");
        let ts = rec.ts.unix_secs();
        assert_eq!(item["ttl"].as_n().unwrap(), &(ts + 86_400).to_string());
        assert_eq!(record_of_item(&item).unwrap(), rec);
        let mut bare = item.clone();
        bare.remove("routed_model");
        assert!(record_of_item(&bare).unwrap_err().contains("routed_model"));
    }

    #[test]
    fn rollup_update_adds_the_counters() {
        let rec = record();
        let (key, expr, names, values) = eval_rollup_update(&rec);
        assert_eq!(key["pk"].as_s().unwrap(), "EVALROLLUP#2026-11-28");
        assert_eq!(
            key["sk"].as_s().unwrap(),
            "acme#tier1#deepseek/deepseek-v3#openai/gpt-4o"
        );
        assert!(expr.starts_with("SET ") && expr.contains(" ADD "));
        // The item the update makes, read back.
        let mut item: HashMap<String, AttributeValue> = HashMap::new();
        for (placeholder, name) in &names {
            let v = values[&placeholder.replacen('#', ":", 1)].clone();
            item.insert(name.clone(), v);
        }
        let row = eval_rollup_row(&item).unwrap();
        assert_eq!(row.key, rec.rollup_key());
        let c = row.counters;
        assert_eq!((c.evaluations, c.worse, c.judge_count), (1, 1, 1));
        assert_eq!(c.shadow_cost, Usd::from_nanos(1_820_000));
        assert_eq!(c.methods.get("judge"), Some(&1));
        assert_eq!((c.shadow_input_tokens, c.shadow_output_tokens), (310, 16));
        assert!((c.similarity_sum - 0.5).abs() < 1e-12);
    }
}
