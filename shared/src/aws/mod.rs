//! AWS implementations of the store traits: cost records and rollups in DynamoDB, shadow
//! samples and parked items on SQS. Clients are built once (at init) from [`sdk_config`],
//! which sets the retry policy and both operation and attempt timeouts on every call.
//!
//! Endpoints follow the SDK's standard overrides (`AWS_ENDPOINT_URL`,
//! `AWS_ENDPOINT_URL_DYNAMODB`, ...), which is how tests and the local stack reach moto.

pub mod dynamo;
pub mod evaluations;
pub mod health;
pub mod keys;
pub mod once;
pub mod secrets;
pub mod setup;
pub mod sqs;

use std::time::Duration;

use aws_config::BehaviorVersion;
pub use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::tls;

use crate::ledger::store::StoreError;
use crate::serve::settings::AwsCallSettings;

/// Error codes that mean "slow down" on DynamoDB and SQS.
const THROTTLING_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "ThrottledException",
    "AWS.SimpleQueueService.RequestThrottled",
];

/// The SDK config every client is built from: rustls (ring) HTTPS client, standard retries
/// with exponential backoff and jitter, operation and attempt timeouts.
pub async fn sdk_config(call: &AwsCallSettings) -> SdkConfig {
    loader(call).load().await
}

/// [`sdk_config`] for a local endpoint (moto, a test server): `endpoint` as the
/// `AWS_ENDPOINT_URL` override would set it, region `us-east-1`, static dummy credentials.
/// The process environment is not read, so tests can point clients at different endpoints.
pub async fn sdk_config_at(call: &AwsCallSettings, endpoint: &str) -> SdkConfig {
    loader(call)
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "local",
            "local",
            None,
            None,
            "tierwise-local",
        ))
        .load()
        .await
}

fn loader(call: &AwsCallSettings) -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(
            aws_smithy_http_client::Builder::new()
                .tls_provider(tls::Provider::Rustls(
                    tls::rustls_provider::CryptoMode::Ring,
                ))
                .build_https(),
        )
        .retry_config(retry_config(call))
        .timeout_config(timeout_config(call))
}

/// A DynamoDB client (honours `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL`).
pub fn dynamodb_client(sdk: &SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(sdk)
}

/// An SQS client (honours `AWS_ENDPOINT_URL_SQS` / `AWS_ENDPOINT_URL`).
pub fn sqs_client(sdk: &SdkConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(sdk)
}

/// Standard retry mode: `max_attempts` attempts with exponential backoff from 25 ms.
pub fn retry_config(call: &AwsCallSettings) -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(call.max_attempts)
        .with_initial_backoff(Duration::from_millis(25))
        .with_max_backoff(Duration::from_millis(500))
}

/// Operation and attempt timeouts (and a connect timeout within the attempt's).
pub fn timeout_config(call: &AwsCallSettings) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(call.attempt_timeout.min(Duration::from_millis(1_000)))
        .operation_attempt_timeout(call.attempt_timeout)
        .operation_timeout(call.operation_timeout)
        .build()
}

/// Maps an SDK error (after the SDK's retries) to a [`StoreError`]. The detail is for logs
/// only: it never reaches a caller.
/// Key, update expression, attribute names and values of an `UpdateItem` (a rollup increment).
pub type UpdateParts = (
    std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
    String,
    std::collections::HashMap<String, String>,
    std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
);

/// A DynamoDB string attribute.
pub(crate) fn attr_s(x: impl Into<String>) -> aws_sdk_dynamodb::types::AttributeValue {
    aws_sdk_dynamodb::types::AttributeValue::S(x.into())
}

/// A DynamoDB number attribute.
pub(crate) fn attr_n(x: impl ToString) -> aws_sdk_dynamodb::types::AttributeValue {
    aws_sdk_dynamodb::types::AttributeValue::N(x.to_string())
}

/// An `UpdateItem` on the item at `key` that SETs `sets` and ADDs `adds`, every attribute name
/// through a placeholder (several are DynamoDB reserved words).
pub(crate) fn set_and_add(
    key: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
    sets: &[(&str, aws_sdk_dynamodb::types::AttributeValue)],
    adds: Vec<(String, aws_sdk_dynamodb::types::AttributeValue)>,
) -> UpdateParts {
    let mut names = std::collections::HashMap::new();
    let mut values = std::collections::HashMap::new();
    let mut set_parts = Vec::new();
    for (i, (name, value)) in sets.iter().enumerate() {
        names.insert(format!("#s{i}"), (*name).to_string());
        values.insert(format!(":s{i}"), value.clone());
        set_parts.push(format!("#s{i} = :s{i}"));
    }
    let mut add_parts = Vec::new();
    for (i, (name, value)) in adds.into_iter().enumerate() {
        names.insert(format!("#a{i}"), name);
        values.insert(format!(":a{i}"), value);
        add_parts.push(format!("#a{i} :a{i}"));
    }
    let expr = format!("SET {} ADD {}", set_parts.join(", "), add_parts.join(", "));
    (key, expr, names, values)
}

/// Parses an item into a row; the error says what is wrong with it.
pub(crate) type ItemParser<T> = fn(
    &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
) -> Result<T, String>;

/// Every row of the rollup partitions of `days` (`pk_of(day)`), of one tenant (sort keys
/// starting `<tenant>#`) or all: one paginated `Query` per day, `concurrency` days at a time.
pub(crate) async fn query_days<T: Send + 'static>(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    days: &[String],
    tenant: Option<&str>,
    concurrency: usize,
    pk_of: fn(&str) -> String,
    parse: ItemParser<T>,
) -> Result<Vec<T>, StoreError> {
    let mut rows = Vec::new();
    for chunk in days.chunks(concurrency.max(1)) {
        let mut set = tokio::task::JoinSet::new();
        for day in chunk {
            let (client, table, day) = (client.clone(), table.to_string(), day.clone());
            let tenant = tenant.map(str::to_string);
            set.spawn(async move {
                query_partition(&client, &table, &pk_of(&day), tenant.as_deref(), parse).await
            });
        }
        while let Some(res) = set.join_next().await {
            rows.extend(res.map_err(|_| StoreError::Unavailable {
                service: "DynamoDB",
                detail: "rollup reader task failed".into(),
            })??);
        }
    }
    Ok(rows)
}

/// Every item of partition `pk` (of one tenant's sort keys when given), paginated, parsed.
pub(crate) async fn query_partition<T>(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    pk: &str,
    tenant: Option<&str>,
    parse: ItemParser<T>,
) -> Result<Vec<T>, StoreError> {
    let mut rows = Vec::new();
    let mut start = None;
    loop {
        let mut q = client
            .query()
            .table_name(table)
            .expression_attribute_values(":pk", attr_s(pk))
            .set_exclusive_start_key(start.take());
        q = match tenant {
            Some(t) => q
                .key_condition_expression("pk = :pk AND begins_with(sk, :t)")
                .expression_attribute_values(":t", attr_s(format!("{t}#"))),
            None => q.key_condition_expression("pk = :pk"),
        };
        let out = q.send().await.map_err(|e| store_error("DynamoDB", &e))?;
        for item in out.items() {
            rows.push(parse(item).map_err(|detail| StoreError::Rejected {
                service: "DynamoDB",
                detail: format!("malformed item in {pk}: {detail}"),
            })?);
        }
        match out.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => return Ok(rows),
        }
    }
}

/// Whether an SDK error is a failed `ConditionExpression` (a lost race).
pub(crate) fn condition_failed<E>(
    err: &SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    err.as_service_error()
        .is_some_and(|e| e.code() == Some("ConditionalCheckFailedException"))
}

/// A conditional write's result: `Ok(true)` when written, `Ok(false)` on a failed condition,
/// the error otherwise.
pub(crate) fn conditional<T, E>(
    service: &'static str,
    res: Result<T, SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>>,
) -> Result<bool, StoreError>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    match res {
        Ok(_) => Ok(true),
        Err(e) if condition_failed(&e) => Ok(false),
        Err(e) => Err(store_error(service, &e)),
    }
}

/// Retries of a transaction cancelled by a conflict or throttling, after the SDK's own.
const CONFLICT_RETRIES: u32 = 5;

/// How a record-and-rollup transaction ended.
pub(crate) enum Transacted {
    Committed,
    /// The first item's condition failed; the item as it stands when DynamoDB returned it.
    ConditionFailed {
        existing:
            Option<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>,
    },
}

/// Runs a transaction (first item: the conditional put of a record) with an idempotency
/// `token`: cancellations by conflicts or throttling are retried with a jittered backoff
/// seeded by `seed` (no shared RNG); a failed condition is returned for the caller to judge.
pub(crate) async fn transact(
    client: &aws_sdk_dynamodb::Client,
    items: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
    token: &str,
    seed: &str,
) -> Result<Transacted, StoreError> {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    let mut attempt = 0;
    loop {
        let res = client
            .transact_write_items()
            .set_transact_items(Some(items.clone()))
            .client_request_token(token)
            .send()
            .await;
        let err = match res {
            Ok(_) => return Ok(Transacted::Committed),
            Err(e) => e,
        };
        let Some(TransactWriteItemsError::TransactionCanceledException(c)) = err.as_service_error()
        else {
            return Err(store_error("DynamoDB", &err));
        };
        let reasons: Vec<String> = c
            .cancellation_reasons()
            .iter()
            .map(|r| r.code().unwrap_or("None").to_string())
            .collect();
        if reasons
            .first()
            .is_some_and(|c| c == "ConditionalCheckFailed")
        {
            let existing = c
                .cancellation_reasons()
                .first()
                .and_then(|r| r.item().cloned());
            return Ok(Transacted::ConditionFailed { existing });
        }
        let transient = reasons.iter().any(|c| {
            matches!(
                c.as_str(),
                "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded"
            )
        });
        if !transient {
            return Err(StoreError::Rejected {
                service: "DynamoDB",
                detail: format!("transaction cancelled: {}", reasons.join(",")),
            });
        }
        if attempt >= CONFLICT_RETRIES {
            return Err(if reasons.iter().any(|c| c == "TransactionConflict") {
                StoreError::Unavailable {
                    service: "DynamoDB",
                    detail: "transaction conflicts persisted".into(),
                }
            } else {
                StoreError::Throttled {
                    service: "DynamoDB",
                }
            });
        }
        tokio::time::sleep(backoff(seed, attempt)).await;
        attempt += 1;
    }
}

/// 10 ms x 2^attempt with full jitter derived from `seed` (no shared RNG needed, and
/// concurrent writers of different items spread out).
fn backoff(seed: &str, attempt: u32) -> std::time::Duration {
    let cap = 10u64 << attempt.min(6);
    let h = xxhash_rust::xxh3::xxh3_64_with_seed(seed.as_bytes(), u64::from(attempt));
    std::time::Duration::from_millis(1 + h % cap)
}

/// The two items of a record-and-rollup transaction: the (conditional) `put` of the record and
/// the `ADD` of `rollup` on `table`.
pub(crate) fn put_and_update(
    table: &str,
    put: Result<aws_sdk_dynamodb::types::Put, aws_sdk_dynamodb::error::BuildError>,
    rollup: UpdateParts,
) -> Result<Vec<aws_sdk_dynamodb::types::TransactWriteItem>, StoreError> {
    use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
    let build = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Rejected {
        service: "DynamoDB",
        detail: e.to_string(),
    };
    let (key, expr, names, values) = rollup;
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(key))
        .update_expression(expr)
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values(Some(values))
        .build()
        .map_err(build)?;
    Ok(vec![
        TransactWriteItem::builder()
            .put(put.map_err(build)?)
            .build(),
        TransactWriteItem::builder().update(update).build(),
    ])
}

pub(crate) fn store_error<E>(service: &'static str, err: &SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::TimeoutError(_) => StoreError::Timeout { service },
        SdkError::DispatchFailure(d) if d.is_timeout() => StoreError::Timeout { service },
        SdkError::DispatchFailure(_) => StoreError::Unavailable {
            service,
            detail: "connection failed".into(),
        },
        SdkError::ResponseError(_) => StoreError::Unavailable {
            service,
            detail: "unreadable response".into(),
        },
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("unknown");
            let status = se.raw().status().as_u16();
            if THROTTLING_CODES.contains(&code) {
                StoreError::Throttled { service }
            } else if status >= 500 || code == "InternalServerError" {
                StoreError::Unavailable {
                    service,
                    detail: format!("{code} (HTTP {status})"),
                }
            } else {
                StoreError::Rejected {
                    service,
                    detail: format!("{code} (HTTP {status})"),
                }
            }
        }
        _ => StoreError::Rejected {
            service,
            detail: "request could not be built".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_bounded() {
        for a in 0..8 {
            let b = backoff("q", a).as_millis() as u64;
            assert!(b >= 1 && b <= (10u64 << a.min(6)), "{a}: {b}");
        }
        assert_ne!(backoff("q1", 3), backoff("q2", 3));
    }
}
