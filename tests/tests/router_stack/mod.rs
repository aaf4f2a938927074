//! What the router Lambda's integration tests (`router_lambda`, `proxy_lambda`) share: a table
//! and queues in moto with the settings naming them, a sink for the app's metric lines, and
//! readers of the items the app leaves in the table.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::types::AttributeValue;
use tierwise::aws::setup;
use tierwise::serve::metrics::MetricsOut;
use tierwise::serve::settings::RouterSettings;
use tierwise_tests::moto::unique_name;

/// A DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// A single-thread runtime with timers and I/O, as the Lambda runs.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A new table (named after `prefix`), shadow queue (with its DLQ) and fallback queue in moto,
/// and the settings naming them with `vars` (`TIERWISE_*` name, value) on top.
pub async fn new_resources(
    ddb: &aws_sdk_dynamodb::Client,
    sqs: &aws_sdk_sqs::Client,
    prefix: &str,
    vars: &[(&str, &str)],
) -> RouterSettings {
    let r = setup::create_router_resources(ddb, sqs, &unique_name(prefix), &unique_name("q"))
        .await
        .unwrap();
    settings_for(&r.table, &r.shadow_queue_url, &r.fallback_queue_url, vars)
}

/// The settings over a table and its queues, with `vars` on top (a later value wins).
pub fn settings_for(
    table: &str,
    shadow_queue_url: &str,
    fallback_queue_url: &str,
    vars: &[(&str, &str)],
) -> RouterSettings {
    let mut all: Vec<(String, String)> = vec![
        ("TIERWISE_TABLE".into(), table.into()),
        ("TIERWISE_SHADOW_QUEUE_URL".into(), shadow_queue_url.into()),
        (
            "TIERWISE_FALLBACK_QUEUE_URL".into(),
            fallback_queue_url.into(),
        ),
    ];
    for (k, v) in vars {
        all.retain(|(name, _)| name != k);
        all.push((k.to_string(), v.to_string()));
    }
    RouterSettings::from_vars(all).unwrap()
}

/// A sink for an app's EMF lines, and the lines it has received.
pub fn metric_sink() -> (MetricsOut, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    (
        Box::new(move |l| sink.lock().unwrap().push(l.to_string())),
        lines,
    )
}

/// Every item of the table.
pub async fn items(ddb: &aws_sdk_dynamodb::Client, table: &str) -> Vec<Item> {
    let out = ddb.scan().table_name(table).send().await.unwrap();
    out.items.unwrap_or_default()
}

/// The items whose `record` attribute is `kind` (`cost`, `rollup`).
pub async fn records(ddb: &aws_sdk_dynamodb::Client, table: &str, kind: &str) -> Vec<Item> {
    items(ddb, table)
        .await
        .into_iter()
        .filter(|i| {
            i.get("record")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str)
                == Some(kind)
        })
        .collect()
}

/// A number attribute.
pub fn n(item: &Item, k: &str) -> f64 {
    item.get(k)
        .unwrap_or_else(|| panic!("no {k}"))
        .as_n()
        .unwrap()
        .parse()
        .unwrap()
}

/// A string attribute.
pub fn s<'a>(item: &'a Item, k: &str) -> &'a str {
    item.get(k)
        .unwrap_or_else(|| panic!("no {k}"))
        .as_s()
        .unwrap()
}
