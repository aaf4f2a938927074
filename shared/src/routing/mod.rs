//! The routing decision: from a query's text to a tier and a model of the pool.
//!
//! Lives here: the bundled MiniLM embedder ([`embed`]), the feature vector ([`features`]), the
//! classifier's heads and artifact ([`heads`], [`classifier`]), the cheap rules run first
//! ([`rules`]), the policy that turns them into a [`decision::Decision`] ([`decision`]), the
//! priced model pool it picks from ([`pool`]) and what tool definitions and images add to a
//! request's input tokens ([`input_tokens`]).
//!
//! May import: only the value types of [`crate::ledger::money`] (a decision's cost estimate is
//! a [`Usd`](crate::ledger::money::Usd)); nothing else of the crate (this is the bottom of the
//! house). No I/O beyond reading a pool or classifier file at init.

pub mod classifier;
pub mod decision;
pub mod embed;
pub mod features;
pub mod heads;
pub mod input_tokens;
pub mod pool;
pub mod rules;
