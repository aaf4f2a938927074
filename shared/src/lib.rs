//! tierwise: route each LLM query to the cheapest model tier that answers it well.
//!
//! The library holds the whole domain, testable without AWS: the bundled MiniLM embedder
//! ([`embed`]), and everything the router, evaluator and reporter Lambdas and the `tierwise`
//! command line share.

pub mod api;
#[cfg(feature = "aws")]
pub mod aws;
pub mod benchkit;
pub mod classifier;
pub mod embed;
pub mod features;
pub mod heads;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod parallel;
pub mod router;
pub mod rules;

/// The version of the routing logic, stamped on every decision and record.
pub const ROUTER_VERSION: &str = concat!("tierwise-", env!("CARGO_PKG_VERSION"));
#[cfg(feature = "upstream")]
pub mod chat;
pub mod config;
pub mod dataset;
pub mod eval;
pub mod evaluate;
pub mod evaluation;
pub mod export;
pub mod health;
pub mod metrics;
#[cfg(feature = "upstream")]
pub mod proxy;
pub mod records;
pub mod report;
pub mod service;
pub mod settings;
pub mod store;
pub mod train;
#[cfg(feature = "upstream")]
pub mod upstream;
pub mod verdict;
