//! The cost report: what was spent, what the baseline model would have cost, and how the
//! traffic was routed, over a range of days, computed from rollup rows.
//!
//! The reporter Lambda and `tierwise report --table` read DynamoDB rollups through a
//! [`RollupSource`]; `tierwise report --export` feeds the raw cost records of an export (each
//! read as a row of its own, [`RollupRow::of_record`](crate::ledger::records::RollupRow::of_record)).
//! All go through the same [`ReportBuilder`], so they give the same [`Report`]. Its JSON is the
//! contract of `docs/report.md`: money as JSON numbers in USD, summed in integer
//! nano-dollars so that totals equal the record sums exactly. [`render_table`] and
//! [`render_html`] present it for a terminal and as a self-contained web page.
//!
//! - `params`: the parameters, parsed and checked ([`ReportParams`], [`GroupBy`]).
//! - `model`: the report's shape ([`Report`] and its lines).
//! - `build`: the sums ([`ReportBuilder`]).
//! - [`source`]: where rollup rows come from ([`RollupSource`]; a memory one for tests).
//! - `format`, `text`, `html`, `charts`: the presentation.
//! - [`export`]: the reader of DynamoDB exports.

mod build;
mod charts;
pub mod export;
mod format;
mod html;
mod model;
mod params;
pub mod source;
mod text;

pub use build::ReportBuilder;
pub use html::render_html;
pub use model::{
    DayLine, GroupLine, LatencySummary, ModelLine, Report, ShadowLine, ShadowTierLine, TierLine,
};
pub use params::{GroupBy, MAX_REPORT_DAYS, ReportError, ReportParams};
pub use source::{MemoryRollups, RollupSource, Rollups};
pub use text::render_table;

#[cfg(test)]
mod tests;
