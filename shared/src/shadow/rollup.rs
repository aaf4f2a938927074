//! Evaluation rollups: what each evaluation record adds to its day x tenant x routed tier x
//! routed model x reference rollup ([`VerdictCounters`]), and the rows the reporter reads back.

use std::collections::BTreeMap;

use crate::ledger::money::Usd;
use crate::routing::pool::Tier;
use crate::shadow::record::EvaluationRecord;

/// `record` attribute of an evaluation rollup item.
pub const RECORD_EVAL_ROLLUP: &str = "eval_rollup";

/// An evaluation rollup's identity: day x tenant x routed tier x routed model x reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EvalRollupKey {
    pub day: String,
    pub tenant: String,
    pub tier: Tier,
    pub model: String,
    pub reference_model: String,
}

/// The counters of an evaluation rollup (one record's, or a sum). Shadow spend in exact
/// nano-dollars.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VerdictCounters {
    pub evaluations: u64,
    pub equivalent: u64,
    pub worse: u64,
    pub better: u64,
    pub similarity_sum: f64,
    pub similarity_count: u64,
    pub judge_score_sum: f64,
    pub judge_count: u64,
    pub shadow_cost: Usd,
    pub shadow_input_tokens: u64,
    pub shadow_output_tokens: u64,
    /// Evaluations per method (`exact`, `similarity`, `judge`, `same_model`).
    pub methods: BTreeMap<String, u64>,
}

impl VerdictCounters {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &VerdictCounters) {
        self.evaluations += other.evaluations;
        self.equivalent += other.equivalent;
        self.worse += other.worse;
        self.better += other.better;
        self.similarity_sum += other.similarity_sum;
        self.similarity_count += other.similarity_count;
        self.judge_score_sum += other.judge_score_sum;
        self.judge_count += other.judge_count;
        self.shadow_cost += other.shadow_cost;
        self.shadow_input_tokens += other.shadow_input_tokens;
        self.shadow_output_tokens += other.shadow_output_tokens;
        for (m, n) in &other.methods {
            *self.methods.entry(m.clone()).or_default() += n;
        }
    }

    /// Share of evaluations whose routed answer held up (equivalent or better); `None`
    /// without evaluations.
    pub fn agreement_rate(&self) -> Option<f64> {
        (self.evaluations > 0)
            .then(|| (self.equivalent + self.better) as f64 / self.evaluations as f64)
    }
}

/// One evaluation rollup row.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalRollupRow {
    pub key: EvalRollupKey,
    pub counters: VerdictCounters,
}

impl EvaluationRecord {
    /// The rollup this record adds to.
    pub fn rollup_key(&self) -> EvalRollupKey {
        EvalRollupKey {
            day: self.day().to_string(),
            tenant: self.tenant.clone(),
            tier: self.routed_tier,
            model: self.routed_model.clone(),
            reference_model: self.reference_model.clone(),
        }
    }

    /// What this record adds to its rollup.
    pub fn counters(&self) -> VerdictCounters {
        let mut methods = BTreeMap::new();
        methods.insert(self.method.clone(), 1);
        VerdictCounters {
            evaluations: 1,
            equivalent: u64::from(self.verdict == "equivalent"),
            worse: u64::from(self.verdict == "worse"),
            better: u64::from(self.verdict == "better"),
            similarity_sum: self.similarity.unwrap_or(0.0),
            similarity_count: u64::from(self.similarity.is_some()),
            judge_score_sum: self.judge_score.unwrap_or(0.0),
            judge_count: u64::from(self.judge_score.is_some()),
            shadow_cost: self.shadow_cost_usd,
            shadow_input_tokens: self.shadow_input_tokens(),
            shadow_output_tokens: self.shadow_output_tokens(),
            methods,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shadow::record::ROUTED_FROM_SAMPLE;
    use crate::shadow::record::fixtures::record;

    #[test]
    fn counters_follow_the_verdict() {
        let eq = record("equivalent", "exact");
        let c = eq.counters();
        assert_eq!(
            (c.evaluations, c.equivalent, c.worse, c.better),
            (1, 1, 0, 0)
        );
        assert_eq!(c.shadow_cost, Usd::from_nanos(98_000));
        assert_eq!((c.shadow_input_tokens, c.shadow_output_tokens), (20, 12));
        assert_eq!(c.methods.get("exact"), Some(&1));
        let mut from_sample = eq.clone();
        from_sample.routed_source = ROUTED_FROM_SAMPLE.into();
        assert_eq!(from_sample.counters().shadow_input_tokens, 10);
        let worse = record("worse", "similarity");
        let mut sum = c.clone();
        sum.add(&worse.counters());
        assert_eq!(sum.agreement_rate(), Some(0.5));
        assert_eq!(sum.similarity_count, 1);
        assert_eq!(VerdictCounters::default().agreement_rate(), None);
    }
}
