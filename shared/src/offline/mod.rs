//! The batch tools of the command line: routing-benchmark datasets ([`dataset`]), RouteLLM's
//! metrics and calibration ([`scores`]), `tierwise eval` ([`replay`]), `tierwise train`
//! ([`train`]) and the order-preserving parallel map they run on ([`parallel`]).
//!
//! May import: [`crate::routing`]. Nothing here runs on a serving path.

pub mod dataset;
pub mod parallel;
pub mod replay;
pub mod scores;
pub mod train;
