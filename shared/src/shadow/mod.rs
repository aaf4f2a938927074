//! Shadow evaluation: what the evaluator does with a sampled query (run it on the routed and
//! the reference model, compare, record) and how two answers are judged.
//!
//! Lives here:
//! - [`settings`]: the evaluator's `TIERWISE_*` settings.
//! - [`record`]: the evaluation record, one verdict per query id, and the prompt it keeps.
//! - [`rollup`]: what a record adds to its evaluation rollup, and the rollup rows.
//! - [`labels`]: verdicts as training labels, and the label export.
//! - [`store`]: the claim / complete / release port of evaluations and its in-memory fake
//!   (DynamoDB's is `crate::aws::evaluations`).
//! - `evaluator` (with the `upstream` feature): the flow that evaluates one sample once.
//! - [`verdict`]: how two answers are compared (exact match, similarity, an LLM judge).
//!
//! May import: [`crate::routing`], [`crate::ledger`], [`crate::serve`] (settings), and the
//! upstream client of [`crate::proxy`].

#[cfg(feature = "upstream")]
pub mod evaluator;
pub mod labels;
pub mod record;
pub mod rollup;
pub mod settings;
pub mod store;
pub mod verdict;
