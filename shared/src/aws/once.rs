//! The markers of provider calls ([`crate::ledger::once::CallLedger`]) in the cost table.
//!
//! Layout: `pk = Q#<query id>` (the cost record's partition), `sk = call`, `record = call`,
//! `state` (`live` while the call runs, `done` after), `lease_until` (ms, while live), and for
//! a kept answer `status`, `content_type`, `headers` (map) and `body` (binary); `ttl`.
//! `begin` is one conditional `PutItem` (no marker, or a live one whose lease passed).

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;

use super::{attr_n as n, attr_s as s, condition_failed, conditional, store_error};
use crate::ledger::once::{Begin, CallLedger, StoredAnswer, keepable};
use crate::ledger::store::StoreError;

const SERVICE: &str = "dynamodb";
const SK: &str = "call";
const LIVE: &str = "live";
const DONE: &str = "done";
/// How long a live marker is kept at most, whatever its lease (seconds).
const LIVE_TTL_SECS: u64 = 86_400;

type Item = HashMap<String, AttributeValue>;

/// Call markers in one DynamoDB table.
#[derive(Clone)]
pub struct DynamoCallLedger {
    client: Client,
    table: String,
}

impl DynamoCallLedger {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    fn pk(query_id: &str) -> AttributeValue {
        s(format!("Q#{query_id}"))
    }

    /// A `PutItem` of the marker of `query_id` in `state`, expiring at `ttl` (epoch seconds).
    fn put_marker(
        &self,
        query_id: &str,
        state: &str,
        ttl: impl ToString,
    ) -> aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", Self::pk(query_id))
            .item("sk", s(SK))
            .item("record", s(SK))
            .item("state", s(state))
            .item("ttl", n(ttl))
    }

    async fn read(&self, query_id: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", Self::pk(query_id))
            .key("sk", s(SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error(SERVICE, &e))?;
        Ok(out.item().cloned())
    }
}

fn answer_of(item: &Item) -> Option<StoredAnswer> {
    let status = match item.get("status") {
        Some(AttributeValue::N(v)) => v.parse().ok()?,
        _ => return None,
    };
    let content_type = match item.get("content_type") {
        Some(AttributeValue::S(v)) => v.clone(),
        _ => return None,
    };
    let body = match item.get("body") {
        Some(AttributeValue::B(b)) => b.as_ref().to_vec(),
        _ => return None,
    };
    let mut headers: Vec<(String, String)> = match item.get("headers") {
        Some(AttributeValue::M(m)) => m
            .iter()
            .filter_map(|(k, v)| v.as_s().ok().map(|v| (k.clone(), v.clone())))
            .collect(),
        _ => Vec::new(),
    };
    headers.sort();
    Some(StoredAnswer {
        status,
        content_type,
        headers,
        body,
    })
}

impl CallLedger for DynamoCallLedger {
    async fn begin(&self, query_id: &str, now_ms: u64, lease_ms: u64) -> Result<Begin, StoreError> {
        let expires = now_ms / 1000 + LIVE_TTL_SECS;
        let res = self
            .put_marker(query_id, LIVE, expires)
            .item("lease_until", n(now_ms + lease_ms))
            .condition_expression("attribute_not_exists(pk) OR (#st = :live AND #lu < :now)")
            .expression_attribute_names("#st", "state")
            .expression_attribute_names("#lu", "lease_until")
            .expression_attribute_values(":live", s(LIVE))
            .expression_attribute_values(":now", n(now_ms))
            .send()
            .await;
        match res {
            Ok(_) => Ok(Begin::Started),
            Err(e) if condition_failed(&e) => {
                Ok(match self.read(query_id).await? {
                    Some(item)
                        if item.get("state").and_then(|v| v.as_s().ok())
                            == Some(&DONE.to_string()) =>
                    {
                        Begin::Completed(answer_of(&item))
                    }
                    // Live, or abandoned between the two calls: either way not ours now.
                    _ => Begin::InProgress,
                })
            }
            Err(e) => Err(store_error(SERVICE, &e)),
        }
    }

    async fn complete(
        &self,
        query_id: &str,
        answer: Option<&StoredAnswer>,
        expires_unix: i64,
    ) -> Result<(), StoreError> {
        let mut req = self.put_marker(query_id, DONE, expires_unix);
        if let Some(a) = answer.and_then(keepable) {
            let headers: HashMap<String, AttributeValue> =
                a.headers.iter().map(|(k, v)| (k.clone(), s(v))).collect();
            req = req
                .item("status", n(a.status))
                .item("content_type", s(&a.content_type))
                .item("headers", AttributeValue::M(headers))
                .item("body", AttributeValue::B(Blob::new(a.body.clone())));
        }
        req.send()
            .await
            .map(|_| ())
            .map_err(|e| store_error(SERVICE, &e))
    }

    async fn abandon(&self, query_id: &str) -> Result<(), StoreError> {
        let res = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", Self::pk(query_id))
            .key("sk", s(SK))
            .condition_expression("#st = :live")
            .expression_attribute_names("#st", "state")
            .expression_attribute_values(":live", s(LIVE))
            .send()
            .await;
        // A marker that is no longer live (completed meanwhile) is left alone.
        conditional(SERVICE, res).map(|_| ())
    }
}
