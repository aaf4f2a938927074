//! The shared circuit breakers ([`crate::proxy::breaker`]) in the cost table.
//!
//! Layout (string keys `pk`/`sk`, `record` names the item kind, `ttl` in epoch seconds):
//! - breaker: `pk = HEALTH`, `sk = <model id>`, `record = health`; `opened_at`, `open_until`,
//!   `cooldown_ms`, `probe_owner`/`probe_until` while a probe is claimed (epoch ms numbers);
//!   `ttl` = the state's expiry, so a forgotten breaker goes away by itself.
//! - failure counter: `pk = HEALTH#<window start ms>`, `sk = <model id>`,
//!   `record = health_failures`, `failures` added with `ADD` (the count comes back with
//!   `UPDATED_NEW`); `ttl` a few windows ahead.
//!
//! Loading is one (consistent) Query on `pk = HEALTH`. Opening, reopening, claiming a probe,
//! releasing it and closing are conditional writes; a failed condition is a lost race, not an
//! error. The export reader skips these items (their `record` is not `cost`).

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::{attr_n as n, attr_s as s, conditional, store_error};
use crate::ledger::store::StoreError;
use crate::proxy::breaker::{BreakerState, HealthStore, ProbeClaim};

const SERVICE: &str = "DynamoDB";
/// Partition of the breaker states.
pub const HEALTH_PK: &str = "HEALTH";
/// `record` of a breaker item.
pub const RECORD_HEALTH: &str = "health";
/// `record` of a failure-counter item.
pub const RECORD_HEALTH_FAILURES: &str = "health_failures";
/// Windows a failure counter is kept after its own.
const COUNTER_KEEP_WINDOWS: u64 = 3;

/// Partition of the failure counters of the window starting at `window_start_ms`.
pub fn failures_pk(window_start_ms: u64) -> String {
    format!("{HEALTH_PK}#{window_start_ms}")
}

/// Breaker states and failure counters in the cost table.
#[derive(Clone)]
pub struct DynamoHealthStore {
    client: Client,
    table: String,
}

impl DynamoHealthStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The table.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Writes the item of `state` (under a condition, see [`write_if`]).
    fn put(&self, state: &BreakerState) -> PutItemFluentBuilder {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(breaker_item(state)))
    }

    /// Applies `update` to the breaker of `model` (under a condition whose values include the
    /// update's, see [`write_if`]).
    fn update(&self, model: &str, update: &str) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(breaker_key(model)))
            .update_expression(update)
    }
}

/// Sends a put, update or delete request under a [`Condition`]: `Ok(true)` when written,
/// `Ok(false)` when the condition failed (a lost race). A macro: the SDK's request builders
/// share no trait.
macro_rules! write_if {
    ($request:expr, $condition:expr) => {{
        let condition: Condition = $condition;
        conditional(
            SERVICE,
            $request
                .condition_expression(condition.expression)
                .set_expression_attribute_names(condition.names)
                .set_expression_attribute_values(Some(condition.values))
                .send()
                .await,
        )
    }};
}

/// The condition of a conditional write, with what its placeholders stand for.
struct Condition {
    expression: &'static str,
    names: Option<HashMap<String, String>>,
    values: HashMap<String, AttributeValue>,
}

impl Condition {
    /// While `instance` holds the probe claim.
    fn probed_by(instance: &str) -> Self {
        Condition {
            expression: "probe_owner = :me",
            names: None,
            values: HashMap::from([(":me".to_string(), s(instance))]),
        }
    }
}

/// `#ttl` for `ttl` (a reserved word).
fn ttl_name() -> Option<HashMap<String, String>> {
    Some(HashMap::from([("#ttl".to_string(), "ttl".to_string())]))
}

/// The key of an item of the health partitions.
fn key(pk: impl Into<String>, model: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(model))])
}

/// The key of the breaker of `model`.
fn breaker_key(model: &str) -> HashMap<String, AttributeValue> {
    key(HEALTH_PK, model)
}

/// Epoch seconds of `ms`, rounded up (DynamoDB TTL is in seconds).
fn ttl_secs(ms: u64) -> u64 {
    ms.div_ceil(1000)
}

/// The item of a breaker state.
pub fn breaker_item(state: &BreakerState) -> HashMap<String, AttributeValue> {
    let mut item = breaker_key(&state.model);
    item.insert("record".into(), s(RECORD_HEALTH));
    item.insert("opened_at".into(), n(state.opened_at_ms));
    item.insert("open_until".into(), n(state.open_until_ms));
    item.insert("cooldown_ms".into(), n(state.cooldown_ms));
    if let (Some(owner), Some(until)) = (&state.probe_owner, state.probe_until_ms) {
        item.insert("probe_owner".into(), s(owner.clone()));
        item.insert("probe_until".into(), n(until));
    }
    item.insert("ttl".into(), n(ttl_secs(state.expires_at_ms)));
    item
}

/// A breaker state from its item.
pub fn breaker_state(item: &HashMap<String, AttributeValue>) -> Result<BreakerState, String> {
    let text = |k: &str| match item.get(k) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(format!("`{k}` missing or not a string")),
    };
    let num = |k: &str| match item.get(k) {
        Some(AttributeValue::N(v)) => v
            .parse::<u64>()
            .map_err(|_| format!("`{k}` is not a whole number")),
        _ => Err(format!("`{k}` missing or not a number")),
    };
    let probe_owner = text("probe_owner").ok();
    let probe_until_ms = num("probe_until").ok();
    let both = probe_owner.is_some() && probe_until_ms.is_some();
    Ok(BreakerState {
        model: text("sk")?,
        opened_at_ms: num("opened_at")?,
        open_until_ms: num("open_until")?,
        cooldown_ms: num("cooldown_ms")?,
        probe_owner: probe_owner.filter(|_| both),
        probe_until_ms: probe_until_ms.filter(|_| both),
        expires_at_ms: num("ttl")?.saturating_mul(1000),
    })
}

impl HealthStore for DynamoHealthStore {
    async fn load(&self) -> Result<Vec<BreakerState>, StoreError> {
        let mut states = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(HEALTH_PK))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| store_error(SERVICE, &e))?;
            for item in out.items() {
                match breaker_state(item) {
                    Ok(state) => states.push(state),
                    Err(why) => tracing::warn!(
                        table = %self.table,
                        problem = %why,
                        "unreadable circuit breaker item skipped"
                    ),
                }
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(states),
            }
        }
    }

    async fn record_failure(
        &self,
        model: &str,
        window_start_ms: u64,
        window_ms: u64,
    ) -> Result<u32, StoreError> {
        let expires =
            window_start_ms.saturating_add(window_ms.saturating_mul(COUNTER_KEEP_WINDOWS + 1));
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(failures_pk(window_start_ms), model)))
            .update_expression("SET #record = :record, #ttl = :ttl ADD failures :one")
            .expression_attribute_names("#record", "record")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":record", s(RECORD_HEALTH_FAILURES))
            .expression_attribute_values(":ttl", n(ttl_secs(expires)))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| store_error(SERVICE, &e))?;
        let count = out
            .attributes
            .as_ref()
            .and_then(|a| a.get("failures"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<u32>().ok());
        count.ok_or(StoreError::Unavailable {
            service: SERVICE,
            detail: "failure count missing from the answer".into(),
        })
    }

    async fn open(&self, state: &BreakerState, now_ms: u64) -> Result<bool, StoreError> {
        // An expired state may linger until DynamoDB deletes it: it does not block.
        let condition = Condition {
            expression: "attribute_not_exists(pk) OR #ttl < :now",
            names: ttl_name(),
            values: HashMap::from([(":now".to_string(), n(now_ms / 1000))]),
        };
        write_if!(self.put(state), condition)
    }

    async fn reopen(&self, state: &BreakerState, prober: &str) -> Result<bool, StoreError> {
        write_if!(self.put(state), Condition::probed_by(prober))
    }

    async fn claim_probe(&self, claim: &ProbeClaim<'_>) -> Result<bool, StoreError> {
        let condition = Condition {
            expression: "attribute_exists(pk) AND open_until <= :now \
                 AND (attribute_not_exists(probe_until) OR probe_until <= :now)",
            names: ttl_name(),
            values: HashMap::from([
                (":me".to_string(), s(claim.instance)),
                (":until".to_string(), n(claim.until_ms)),
                (":now".to_string(), n(claim.now_ms)),
                (":ttl".to_string(), n(ttl_secs(claim.expires_at_ms))),
            ]),
        };
        let update = "SET probe_owner = :me, probe_until = :until, #ttl = :ttl";
        write_if!(self.update(claim.model, update), condition)
    }

    async fn release_probe(&self, model: &str, instance: &str) -> Result<bool, StoreError> {
        let update = "REMOVE probe_owner, probe_until";
        write_if!(self.update(model, update), Condition::probed_by(instance))
    }

    async fn close(
        &self,
        model: &str,
        instance: &str,
        window_start_ms: u64,
    ) -> Result<bool, StoreError> {
        let delete = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(breaker_key(model)));
        if !write_if!(delete, Condition::probed_by(instance))? {
            return Ok(false);
        }
        // Reset the window's count; the breaker is closed already if this fails.
        let reset = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(failures_pk(window_start_ms), model)))
            .send()
            .await;
        if let Err(e) = reset {
            let e = store_error(SERVICE, &e);
            tracing::warn!(model = %model, error = %e, "failure count not reset after closing");
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaker_items_round_trip() {
        let mut state = BreakerState {
            model: "a/b".into(),
            opened_at_ms: 1_000,
            open_until_ms: 31_000,
            cooldown_ms: 30_000,
            probe_owner: None,
            probe_until_ms: None,
            expires_at_ms: 400_000,
        };
        let item = breaker_item(&state);
        assert_eq!(item.get("record"), Some(&s(RECORD_HEALTH)));
        assert_eq!(item.get("ttl"), Some(&n(400)));
        assert!(!item.contains_key("probe_owner"));
        assert_eq!(breaker_state(&item).unwrap(), state);
        state.probe_owner = Some("i-1".into());
        state.probe_until_ms = Some(90_000);
        assert_eq!(breaker_state(&breaker_item(&state)).unwrap(), state);
        let mut bad = breaker_item(&state);
        bad.remove("open_until");
        assert!(breaker_state(&bad).unwrap_err().contains("open_until"));
    }
}
