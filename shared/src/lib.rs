//! tierwise: route each LLM query to the cheapest model tier that answers it well.
//!
//! The library holds the whole domain, testable without AWS. One folder a domain; imports run
//! one way, down this list (a folder may use the ones below it, never one above):
//!
//! - [`serve`]: what the Lambdas share at their edge — settings, the HTTP API's shapes and the
//!   one error -> status mapping, metrics (EMF), the Lambda glue.
//! - [`aws`]: the AWS adapters, one file a port (DynamoDB, SQS, SSM / Secrets Manager).
//! - [`report`]: cost reports from rollups, and the DynamoDB export reader.
//! - [`shadow`]: shadow evaluation — the evaluator's flow, verdicts, labels.
//! - [`proxy`]: the OpenAI-compatible proxy — chat flow, fallback chain, upstream client, breakers.
//! - [`access`]: who may call — API keys bound to tenants, stored as hashes; budgets, rates,
//!   allowed models and tiers, checked before any provider call.
//! - [`ledger`]: what a query leaves behind — money and time types, cost records, rollups,
//!   shadow samples, the store ports, and the service that settles a decision into them.
//! - [`offline`]: the batch tools — datasets, routing metrics, `tierwise eval` and `train`.
//! - [`routing`]: the routing decision — embedder, features, classifier, rules, policy, pool.

pub mod access;
#[cfg(feature = "aws")]
pub mod aws;
pub mod ledger;
pub mod offline;
pub mod proxy;
pub mod report;
pub mod routing;
pub mod serve;
pub mod shadow;

/// The version of the routing logic, stamped on every decision and record.
pub const ROUTER_VERSION: &str = concat!("tierwise-", env!("CARGO_PKG_VERSION"));
