//! Shadow evaluation: what the evaluator does with a sampled query (run it on the routed and
//! the reference model, compare, record) in [`evaluator`], and how two answers are judged in
//! [`verdict`].
//!
//! May import: [`crate::routing`], [`crate::ledger`], [`crate::serve`] (settings), and the
//! upstream client of [`crate::proxy`].

pub mod evaluator;
pub mod verdict;
