//! API keys and their counters ([`crate::access::store::KeyStore`]) in the cost table.
//!
//! Layout (string keys `pk`/`sk`, `record` names the item kind):
//! - key: `pk = KEYS`, `sk = <key id>`, `record = api_key`: `tenant`, `hash` (SHA-256 of the
//!   key, hex — the key itself is never stored), `created`, `revoked` (when revoked), `admin`,
//!   `name`, and the limits `budget_usd` (exact decimal) with `budget_period` (`day`/`month`),
//!   `rpm`, `models` and `tiers` (lists). One partition: a lookup is one `GetItem`, the
//!   list one `Query`; lookups are cached by the router, so the partition stays cool.
//! - spend: `pk = KEYSPEND#<key id>`, `sk = <day or month>`, `spent_nanos` (number), `ttl`.
//!   A reservation is one `UpdateItem` adding to `spent_nanos` on condition that the sum stays
//!   within the budget: atomic across every instance.
//! - requests: `pk = KEYRPM#<key id>`, `sk = <unix minute>`, `n`, `ttl`: the same conditional
//!   add, below the key's requests per minute.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

use super::{attr_n as n, attr_s as s, conditional, query_partition, store_error};
use crate::access::key::{Budget, KeyLimits, KeyRecord};
use crate::access::store::KeyStore;
use crate::ledger::money::{Timestamp, Usd};
use crate::ledger::store::StoreError;
use crate::routing::pool::Tier;

const SERVICE: &str = "dynamodb";
const KEYS_PK: &str = "KEYS";
const RECORD_KEY: &str = "api_key";

type Item = HashMap<String, AttributeValue>;

/// API keys and their counters in one DynamoDB table.
#[derive(Clone)]
pub struct DynamoKeyStore {
    client: Client,
    table: String,
}

impl DynamoKeyStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// A conditional `ADD name :amount` on `pk`/`sk`: `Ok(false)` when the condition failed.
    async fn conditional_add(
        &self,
        (pk, sk): (String, String),
        name: &str,
        amount: i64,
        condition: Option<(&str, i64)>,
        expires_unix: i64,
    ) -> Result<bool, StoreError> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .update_expression("ADD #v :amount SET #ttl = :ttl")
            .expression_attribute_names("#v", name)
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":amount", n(amount))
            .expression_attribute_values(":ttl", n(expires_unix));
        if let Some((expr, bound)) = condition {
            req = req
                .condition_expression(expr)
                .expression_attribute_values(":bound", n(bound));
        }
        conditional(SERVICE, req.send().await)
    }
}

fn key_item(k: &KeyRecord) -> Item {
    let mut item: Item = [
        ("pk", s(KEYS_PK)),
        ("sk", s(&k.key_id)),
        ("record", s(RECORD_KEY)),
        ("tenant", s(&k.tenant)),
        ("hash", s(&k.hash)),
        ("created", s(k.created.as_str())),
        ("admin", AttributeValue::Bool(k.admin)),
    ]
    .into_iter()
    .map(|(a, v)| (a.to_string(), v))
    .collect();
    let mut opt = |name: &str, v: Option<AttributeValue>| {
        if let Some(v) = v {
            item.insert(name.to_string(), v);
        }
    };
    opt("revoked", k.revoked.as_ref().map(|t| s(t.as_str())));
    opt("name", k.name.as_ref().map(s));
    let l = &k.limits;
    opt("budget_usd", l.budget.map(|b| n(b.usd.to_decimal())));
    opt("budget_period", l.budget.map(|b| s(b.period.as_str())));
    opt("rpm", l.rpm.map(n));
    let list = |xs: Vec<String>| AttributeValue::L(xs.into_iter().map(s).collect());
    opt("models", l.models.clone().map(list));
    opt(
        "tiers",
        l.tiers
            .as_ref()
            .map(|ts| list(ts.iter().map(|t| t.as_str().to_string()).collect())),
    );
    item
}

fn parse_key(item: &Item) -> Result<KeyRecord, String> {
    let text = |a: &str| match item.get(a) {
        Some(AttributeValue::S(v)) => Ok(Some(v.clone())),
        None => Ok(None),
        Some(_) => Err(format!("{a} is not a string")),
    };
    let need = |a: &str| text(a)?.ok_or_else(|| format!("{a} is missing"));
    let time = |a: &str| -> Result<Option<Timestamp>, String> {
        text(a)?
            .map(|t| Timestamp::parse(&t).ok_or_else(|| format!("{a} is not RFC 3339: {t:?}")))
            .transpose()
    };
    let list = |a: &str| -> Result<Option<Vec<String>>, String> {
        match item.get(a) {
            None => Ok(None),
            Some(AttributeValue::L(xs)) => xs
                .iter()
                .map(|x| match x {
                    AttributeValue::S(v) => Ok(v.clone()),
                    _ => Err(format!("{a} holds a non-string")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(format!("{a} is not a list")),
        }
    };
    let budget = match (text("budget_period")?, item.get("budget_usd")) {
        (Some(p), Some(AttributeValue::N(v))) => Some(Budget {
            usd: Usd::parse_decimal(v).ok_or_else(|| format!("budget_usd {v:?}"))?,
            period: p.parse()?,
        }),
        (None, None) => None,
        _ => return Err("budget_usd and budget_period go together".into()),
    };
    let rpm = match item.get("rpm") {
        Some(AttributeValue::N(v)) => Some(v.parse().map_err(|_| format!("rpm {v:?}"))?),
        None => None,
        Some(_) => return Err("rpm is not a number".into()),
    };
    let tiers = list("tiers")?
        .map(|ts| {
            ts.iter()
                .map(|t| t.parse::<Tier>().map_err(|e| e.to_string()))
                .collect()
        })
        .transpose()?;
    Ok(KeyRecord {
        key_id: need("sk")?,
        tenant: need("tenant")?,
        hash: need("hash")?,
        created: time("created")?.ok_or("created is missing")?,
        revoked: time("revoked")?,
        admin: matches!(item.get("admin"), Some(AttributeValue::Bool(true))),
        name: text("name")?,
        limits: KeyLimits {
            budget,
            rpm,
            models: list("models")?,
            tiers,
        },
    })
}

fn bad_item(detail: String) -> StoreError {
    StoreError::Rejected {
        service: SERVICE,
        detail: format!("unreadable API key item: {detail}"),
    }
}

impl KeyStore for DynamoKeyStore {
    async fn get(&self, key_id: &str) -> Result<Option<KeyRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(KEYS_PK))
            .key("sk", s(key_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error(SERVICE, &e))?;
        out.item()
            .map(|item| parse_key(item).map_err(bad_item))
            .transpose()
    }

    async fn create(&self, key: &KeyRecord) -> Result<bool, StoreError> {
        conditional(
            SERVICE,
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(key_item(key)))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await,
        )
    }

    async fn list(&self) -> Result<Vec<KeyRecord>, StoreError> {
        query_partition(&self.client, &self.table, KEYS_PK, None, parse_key).await
    }

    async fn revoke(&self, key_id: &str, at: &Timestamp) -> Result<bool, StoreError> {
        conditional(
            SERVICE,
            self.client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(KEYS_PK))
                .key("sk", s(key_id))
                .update_expression("SET revoked = if_not_exists(revoked, :at)")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":at", s(at.as_str()))
                .send()
                .await,
        )
    }

    async fn reserve_spend(
        &self,
        key_id: &str,
        bucket: &str,
        amount: Usd,
        limit: Usd,
        expires_unix: i64,
    ) -> Result<bool, StoreError> {
        let room = limit - amount;
        if room < Usd::ZERO {
            return Ok(false);
        }
        self.conditional_add(
            (format!("KEYSPEND#{key_id}"), bucket.to_string()),
            "spent_nanos",
            amount.nanos(),
            Some(("attribute_not_exists(#v) OR #v <= :bound", room.nanos())),
            expires_unix,
        )
        .await
    }

    async fn adjust_spend(
        &self,
        key_id: &str,
        bucket: &str,
        delta: Usd,
        expires_unix: i64,
    ) -> Result<(), StoreError> {
        self.conditional_add(
            (format!("KEYSPEND#{key_id}"), bucket.to_string()),
            "spent_nanos",
            delta.nanos(),
            None,
            expires_unix,
        )
        .await
        .map(|_| ())
    }

    async fn spent(&self, key_id: &str, bucket: &str) -> Result<Usd, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("KEYSPEND#{key_id}")))
            .key("sk", s(bucket))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error(SERVICE, &e))?;
        match out.item().and_then(|i| i.get("spent_nanos")) {
            Some(AttributeValue::N(v)) => v
                .parse()
                .map(Usd::from_nanos)
                .map_err(|_| bad_item(format!("spent_nanos {v:?}"))),
            _ => Ok(Usd::ZERO),
        }
    }

    async fn count_request(
        &self,
        key_id: &str,
        minute: i64,
        limit: u32,
        expires_unix: i64,
    ) -> Result<bool, StoreError> {
        self.conditional_add(
            (format!("KEYRPM#{key_id}"), minute.to_string()),
            "n",
            1,
            Some(("attribute_not_exists(#v) OR #v < :bound", i64::from(limit))),
            expires_unix,
        )
        .await
    }
}
