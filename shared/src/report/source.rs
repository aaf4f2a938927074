//! Where a report's rollup rows come from: the [`RollupSource`] port ("the rollup rows of
//! these days, of this tenant or all"), shared by the reporter Lambda and `tierwise report
//! --table`. DynamoDB implements it in `crate::aws::dynamo`; [`MemoryRollups`] holds rows in
//! memory, so that report building is testable without a table.

use std::future::Future;

use super::{Report, ReportBuilder, ReportParams};
use crate::ledger::records::RollupRow;
use crate::ledger::store::StoreError;
use crate::shadow::rollup::EvalRollupRow;

/// The rollup rows of some days: the cost rollups and the evaluator's verdict rollups.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rollups {
    pub costs: Vec<RollupRow>,
    pub verdicts: Vec<EvalRollupRow>,
}

impl Rollups {
    /// The report of `params` over these rows (rows of other days or tenants are skipped).
    pub fn report(&self, params: &ReportParams) -> Report {
        let mut builder = ReportBuilder::new(params);
        for row in &self.costs {
            builder.add(row);
        }
        for row in &self.verdicts {
            builder.add_evaluations(row);
        }
        builder.finish()
    }
}

/// Reads rollup rows.
pub trait RollupSource: Send + Sync {
    /// The cost and verdict rollup rows of `days` (`YYYY-MM-DD`), of `tenant` or of all
    /// tenants.
    fn rollups(
        &self,
        days: &[String],
        tenant: Option<&str>,
    ) -> impl Future<Output = Result<Rollups, StoreError>> + Send;
}

/// Reads the rollups of the report's days and tenant from `source`.
pub async fn read_rollups(
    source: &impl RollupSource,
    params: &ReportParams,
) -> Result<Rollups, StoreError> {
    source
        .rollups(&params.day_strings(), params.tenant.as_deref())
        .await
}

/// Rollup rows held in memory, answered as a table would: the rows of the days and tenant
/// asked for.
#[derive(Debug, Clone, Default)]
pub struct MemoryRollups {
    rows: Rollups,
}

impl MemoryRollups {
    /// A source holding `rows`.
    pub fn new(rows: Rollups) -> Self {
        Self { rows }
    }
}

impl RollupSource for MemoryRollups {
    async fn rollups(&self, days: &[String], tenant: Option<&str>) -> Result<Rollups, StoreError> {
        let wanted =
            |day: &str, of: &str| days.iter().any(|d| d == day) && tenant.is_none_or(|t| t == of);
        Ok(Rollups {
            costs: (self.rows.costs.iter())
                .filter(|r| wanted(&r.day, &r.tenant))
                .cloned()
                .collect(),
            verdicts: (self.rows.verdicts.iter())
                .filter(|r| wanted(&r.key.day, &r.key.tenant))
                .cloned()
                .collect(),
        })
    }
}
