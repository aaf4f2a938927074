//! Creates the table and queues the router writes to, as `template.yaml` declares them: for
//! the local stack (moto) and the tests. In AWS, the SAM template creates them.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;

use super::store_error;
use crate::ledger::store::StoreError;

/// Creates the cost table (`pk`/`sk` strings, on-demand, TTL on `ttl`); an existing table is
/// left as it is.
pub async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str) -> Result<(), StoreError> {
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
    };
    let rejected = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Rejected {
        service: "DynamoDB",
        detail: e.to_string(),
    };
    let res = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk").map_err(rejected)?)
        .attribute_definitions(attr("sk").map_err(rejected)?)
        .key_schema(key("pk", KeyType::Hash).map_err(rejected)?)
        .key_schema(key("sk", KeyType::Range).map_err(rejected)?)
        .send()
        .await;
    if let Err(e) = res {
        let exists = e
            .as_service_error()
            .is_some_and(|se| se.is_resource_in_use_exception());
        if !exists {
            return Err(store_error("DynamoDB", &e));
        }
        return Ok(());
    }
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name("ttl")
                .enabled(true)
                .build()
                .map_err(rejected)?,
        )
        .send()
        .await
        .map_err(|e| store_error("DynamoDB", &e))?;
    Ok(())
}

/// Creates a queue (or finds it) and returns its URL; with `dead_letter` (a queue URL) and
/// `max_receives`, messages received that many times move to the dead-letter queue.
pub async fn create_queue(
    client: &aws_sdk_sqs::Client,
    name: &str,
    dead_letter: Option<(&str, u32)>,
) -> Result<String, StoreError> {
    let mut req = client.create_queue().queue_name(name);
    if let Some((dlq_url, max_receives)) = dead_letter {
        let arn = client
            .get_queue_attributes()
            .queue_url(dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| store_error("SQS", &e))?
            .attributes
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .ok_or(StoreError::Rejected {
                service: "SQS",
                detail: "dead-letter queue has no ARN".into(),
            })?;
        let policy =
            serde_json::json!({"deadLetterTargetArn": arn, "maxReceiveCount": max_receives});
        req = req.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
    }
    let out = req.send().await.map_err(|e| store_error("SQS", &e))?;
    out.queue_url.ok_or(StoreError::Rejected {
        service: "SQS",
        detail: "no queue URL returned".into(),
    })
}

/// What [`create_router_resources`] made: the names and URLs for the router's
/// `TIERWISE_TABLE`, `TIERWISE_SHADOW_QUEUE_URL` and `TIERWISE_FALLBACK_QUEUE_URL`.
#[derive(Debug, Clone)]
pub struct RouterResources {
    pub table: String,
    pub shadow_queue_url: String,
    pub shadow_dlq_url: String,
    pub fallback_queue_url: String,
}

/// Receives of a shadow sample before it moves to the dead-letter queue (the template's).
pub const SHADOW_MAX_RECEIVES: u32 = 5;

/// Creates the cost table `table` and the queues `<prefix>-shadow` (dead letters to
/// `<prefix>-shadow-dlq` after [`SHADOW_MAX_RECEIVES`] receives) and `<prefix>-record-fallback`;
/// existing ones are kept.
pub async fn create_router_resources(
    ddb: &aws_sdk_dynamodb::Client,
    sqs: &aws_sdk_sqs::Client,
    table: &str,
    prefix: &str,
) -> Result<RouterResources, StoreError> {
    create_table(ddb, table).await?;
    let dlq = create_queue(sqs, &format!("{prefix}-shadow-dlq"), None).await?;
    let shadow = create_queue(
        sqs,
        &format!("{prefix}-shadow"),
        Some((&dlq, SHADOW_MAX_RECEIVES)),
    )
    .await?;
    let fallback = create_queue(sqs, &format!("{prefix}-record-fallback"), None).await?;
    Ok(RouterResources {
        table: table.to_string(),
        shadow_queue_url: shadow,
        shadow_dlq_url: dlq,
        fallback_queue_url: fallback,
    })
}
