//! Verdicts as training labels: an evaluation record as a row of routing-benchmark data
//! (`docs/data-and-eval.md`), and the label export that writes them as JSON lines (`tierwise labels`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::shadow::record::EvaluationRecord;

/// `task` of the label rows exported from shadow evaluations.
pub const LABEL_TASK: &str = "shadow";

impl EvaluationRecord {
    /// The verdict as a training label (routing-benchmark format), `None` without a prompt.
    ///
    /// Scores: `equivalent` -> routed 1, reference 1; `worse` -> routed 0, reference 1;
    /// `better` (only a judge says it) -> routed 1, reference 0. Costs: what each answer cost
    /// at the pool's prices (from the provider's usage).
    pub fn label(&self) -> Option<LabelRow> {
        let prompt = self.prompt.clone().filter(|p| !p.trim().is_empty())?;
        let (routed, reference) = match self.verdict.as_str() {
            "equivalent" => (1.0, 1.0),
            "worse" => (0.0, 1.0),
            "better" => (1.0, 0.0),
            _ => return None,
        };
        let mut scores = BTreeMap::new();
        let mut costs_usd = BTreeMap::new();
        scores.insert(self.reference_model.clone(), reference);
        costs_usd.insert(
            self.reference_model.clone(),
            self.reference_cost_usd.as_f64(),
        );
        scores.insert(self.routed_model.clone(), routed);
        costs_usd.insert(self.routed_model.clone(), self.routed_cost_usd.as_f64());
        Some(LabelRow {
            id: self.query_id.clone(),
            prompt,
            task: LABEL_TASK.to_string(),
            scores,
            costs_usd,
        })
    }
}

/// One row of routing-benchmark data (`docs/data-and-eval.md`): `{"id", "prompt", "task", "scores",
/// "costs_usd"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelRow {
    pub id: String,
    pub prompt: String,
    pub task: String,
    pub scores: BTreeMap<String, f64>,
    pub costs_usd: BTreeMap<String, f64>,
}

/// What a label export wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LabelExportSummary {
    /// Evaluation records read.
    pub records: u64,
    /// Label rows written.
    pub labels: u64,
    /// Records without a prompt (`TIERWISE_KEEP_PROMPTS=false`), not written.
    pub without_prompt: u64,
}

/// Writes the labels of `records` as JSON lines.
pub fn write_labels<'a>(
    records: impl IntoIterator<Item = &'a EvaluationRecord>,
    out: &mut impl std::io::Write,
) -> std::io::Result<LabelExportSummary> {
    let mut summary = LabelExportSummary::default();
    for rec in records {
        summary.records += 1;
        match rec.label() {
            Some(row) => {
                serde_json::to_writer(&mut *out, &row)?;
                out.write_all(b"\n")?;
                summary.labels += 1;
            }
            None => summary.without_prompt += 1,
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shadow::record::fixtures::record;

    #[test]
    fn labels_follow_the_verdict() {
        let eq = record("equivalent", "exact");
        let worse = record("worse", "similarity");
        let label = eq.label().unwrap();
        assert_eq!(label.scores["deepseek/deepseek-v3"], 1.0);
        assert_eq!(label.scores["openai/gpt-4o"], 1.0);
        assert_eq!(label.costs_usd["openai/gpt-4o"], 0.000095);
        let v = serde_json::to_value(&label).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["costs_usd", "id", "prompt", "scores", "task"]);
        assert_eq!(worse.label().unwrap().scores["deepseek/deepseek-v3"], 0.0);
        let better = record("better", "judge").label().unwrap();
        assert_eq!(better.scores["openai/gpt-4o"], 0.0);
        let mut no_prompt = eq.clone();
        no_prompt.prompt = None;
        assert!(no_prompt.label().is_none());
        let mut out = Vec::new();
        let s = write_labels([&eq, &no_prompt, &worse], &mut out).unwrap();
        assert_eq!((s.records, s.labels, s.without_prompt), (3, 2, 1));
        assert_eq!(String::from_utf8(out).unwrap().lines().count(), 2);
    }
}
