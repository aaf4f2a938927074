//! What a query leaves behind: its cost record, the rollup increment it adds, the shadow sample
//! sent for evaluation, the narrow store ports they are written through, and the service that
//! settles a decision into them with nothing lost when a store fails.
//!
//! May import: [`crate::routing`] ([`money`] imports nothing: it is the one module the routing
//! decision may use). The AWS adapters of the ports live in `crate::aws`; memory
//! fakes live beside the ports.

pub mod money;
pub mod once;
pub mod records;
pub mod service;
pub mod store;
