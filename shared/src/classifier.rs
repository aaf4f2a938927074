//! The tier classifier: gradient-boosted trees (trained by LightGBM, `models/train.sh`)
//! evaluated in Rust, with Platt calibration.
//!
//! One ensemble scores a query's difficulty (a logit); two Platt calibrations turn it into
//! `need_above_tier1` = P(tier1's answer is wrong) and `need_above_tier2` = P(tier2's answer is
//! wrong). From them come the tier probabilities and the cheapest adequate tier (see
//! `models/train.py` for the labels and why). The artifact (`models/router/classifier.json`)
//! holds flat arrays per tree, loaded once.

use serde::Deserialize;

use crate::config::Tier;
use crate::features::{N_FEATURES, feature_names};

/// The bundled artifact.
pub static BUNDLED_CLASSIFIER: &str = include_str!("../../models/router/classifier.json");

/// Errors loading a classifier artifact.
#[derive(Debug, thiserror::Error)]
pub enum ClassifierError {
    #[error("classifier artifact is not valid JSON of the expected shape: {0}")]
    Parse(String),
    #[error("classifier artifact format `{0}` is not supported (expected tierwise-gbdt-v1)")]
    Format(String),
    #[error("classifier was trained on other features than this build computes ({0})")]
    FeatureMismatch(String),
    #[error("classifier calibration `{0}` is missing")]
    MissingHead(&'static str),
    #[error("tree {tree} is malformed: {why}")]
    BadTree { tree: usize, why: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Artifact {
    format: String,
    feature_names: Vec<String>,
    trees: Vec<Tree>,
    calibration: std::collections::BTreeMap<String, Calibration>,
    /// Provenance (library, parameters, data); informational.
    #[serde(default)]
    #[allow(dead_code)]
    training: serde_json::Value,
}

/// Platt scaling: `p = sigmoid(a * raw + b)`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    pub a: f64,
    pub b: f64,
}

/// One regression tree, flat: a child `>= 0` is an internal node, `< 0` the leaf `!child`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tree {
    split_feature: Vec<u32>,
    threshold: Vec<f64>,
    default_left: Vec<bool>,
    left: Vec<i32>,
    right: Vec<i32>,
    leaf_value: Vec<f64>,
}

impl Tree {
    /// The leaf value reached by `x` (LightGBM's numerical split: left when `x <= threshold`;
    /// NaN follows `default_left`).
    pub fn predict(&self, x: &[f32]) -> f64 {
        if self.split_feature.is_empty() {
            return self.leaf_value.first().copied().unwrap_or(0.0);
        }
        let mut node = 0i32;
        while node >= 0 {
            let i = node as usize;
            let v = f64::from(x[self.split_feature[i] as usize]);
            let go_left = if v.is_nan() {
                self.default_left[i]
            } else {
                v <= self.threshold[i]
            };
            node = if go_left { self.left[i] } else { self.right[i] };
        }
        self.leaf_value[(!node) as usize]
    }

    fn validate(&self, n_features: usize) -> Result<(), String> {
        let n = self.split_feature.len();
        if [
            self.threshold.len(),
            self.default_left.len(),
            self.left.len(),
            self.right.len(),
        ]
        .iter()
        .any(|&l| l != n)
        {
            return Err("node arrays differ in length".into());
        }
        if self.leaf_value.is_empty() {
            return Err("no leaves".into());
        }
        if let Some(f) = self
            .split_feature
            .iter()
            .find(|&&f| f as usize >= n_features)
        {
            return Err(format!("split on feature {f} of {n_features}"));
        }
        // Children must point forward (no cycles) and inside the arrays.
        for (i, &c) in self.left.iter().chain(&self.right).enumerate() {
            let parent = i % n.max(1);
            let ok = if c >= 0 {
                (c as usize) < n && c as usize > parent
            } else {
                ((!c) as usize) < self.leaf_value.len()
            };
            if !ok {
                return Err(format!("bad child {c} of node {parent}"));
            }
        }
        Ok(())
    }
}

/// The tree ensemble: its score is the sum of the trees' leaves (LightGBM's raw score, a logit).
#[derive(Debug, Clone)]
pub struct Ensemble {
    trees: Vec<Tree>,
}

impl Ensemble {
    /// Raw score of a feature vector.
    pub fn raw(&self, x: &[f32]) -> f64 {
        self.trees.iter().map(|t| t.predict(x)).sum()
    }
}

impl Calibration {
    /// Calibrated probability of a raw score.
    pub fn prob(&self, raw: f64) -> f64 {
        1.0 / (1.0 + (-(self.a * raw + self.b)).exp())
    }
}

/// The classifier's output for one query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TierProbs {
    /// P(tier1 is not adequate: its answer would be wrong).
    pub above_tier1: f64,
    /// P(tier2 is not adequate), monotone: `<= above_tier1`.
    pub above_tier2: f64,
}

impl TierProbs {
    /// P(the cheapest adequate tier is `tier`).
    pub fn prob(&self, tier: Tier) -> f64 {
        match tier {
            Tier::Tier1 => 1.0 - self.above_tier1,
            Tier::Tier2 => self.above_tier1 - self.above_tier2,
            Tier::Tier3 => self.above_tier2,
        }
    }

    /// P(a tier above `tier` is needed); 0 for tier3.
    pub fn above(&self, tier: Tier) -> f64 {
        match tier {
            Tier::Tier1 => self.above_tier1,
            Tier::Tier2 => self.above_tier2,
            Tier::Tier3 => 0.0,
        }
    }

    /// The cheapest tier more likely adequate than not, and the probability that it is
    /// (for tier3, the top, the probability that the tiers below are not enough).
    pub fn predicted(&self) -> (Tier, f64) {
        for tier in [Tier::Tier1, Tier::Tier2] {
            let need_more = self.above(tier);
            if need_more < 0.5 {
                return (tier, 1.0 - need_more);
            }
        }
        (Tier::Tier3, self.above_tier2)
    }
}

/// The tier classifier.
#[derive(Debug, Clone)]
pub struct TierClassifier {
    ensemble: Ensemble,
    above_tier1: Calibration,
    above_tier2: Calibration,
}

impl TierClassifier {
    /// The bundled, trained classifier.
    pub fn bundled() -> Result<Self, ClassifierError> {
        Self::from_json(BUNDLED_CLASSIFIER)
    }

    /// Loads and validates an artifact.
    pub fn from_json(json: &str) -> Result<Self, ClassifierError> {
        let art: Artifact =
            serde_json::from_str(json).map_err(|e| ClassifierError::Parse(e.to_string()))?;
        if art.format != "tierwise-gbdt-v1" {
            return Err(ClassifierError::Format(art.format));
        }
        let expected = feature_names();
        if art.feature_names != expected {
            let first = art
                .feature_names
                .iter()
                .zip(&expected)
                .position(|(a, b)| a != b)
                .map(|i| format!("first difference at {i}"))
                .unwrap_or_else(|| {
                    format!(
                        "{} names, expected {}",
                        art.feature_names.len(),
                        expected.len()
                    )
                });
            return Err(ClassifierError::FeatureMismatch(first));
        }
        for (i, t) in art.trees.iter().enumerate() {
            t.validate(N_FEATURES)
                .map_err(|why| ClassifierError::BadTree { tree: i, why })?;
        }
        let cal = |name: &'static str| {
            art.calibration
                .get(name)
                .copied()
                .ok_or(ClassifierError::MissingHead(name))
        };
        Ok(Self {
            above_tier1: cal("need_above_tier1")?,
            above_tier2: cal("need_above_tier2")?,
            ensemble: Ensemble { trees: art.trees },
        })
    }

    /// Tier probabilities for a feature vector of [`N_FEATURES`] values.
    pub fn predict(&self, x: &[f32]) -> TierProbs {
        let raw = self.ensemble.raw(x);
        let above_tier1 = self.above_tier1.prob(raw);
        // Ordinal consistency: if tier2 is inadequate, so is tier1.
        let above_tier2 = self.above_tier2.prob(raw).min(above_tier1);
        TierProbs {
            above_tier1,
            above_tier2,
        }
    }

    /// The ensemble's raw score, for parity checks against LightGBM.
    pub fn raw_score(&self, x: &[f32]) -> f64 {
        self.ensemble.raw(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stump(feature: u32, threshold: f64, left: f64, right: f64) -> Tree {
        Tree {
            split_feature: vec![feature],
            threshold: vec![threshold],
            default_left: vec![true],
            left: vec![-1],  // leaf 0
            right: vec![-2], // leaf 1
            leaf_value: vec![left, right],
        }
    }

    #[test]
    fn tree_follows_lightgbm_split_semantics() {
        let t = stump(1, 0.5, -1.0, 2.0);
        assert_eq!(t.predict(&[9.0, 0.5]), -1.0, "<= goes left");
        assert_eq!(t.predict(&[9.0, 0.6]), 2.0);
        assert_eq!(
            t.predict(&[9.0, f32::NAN]),
            -1.0,
            "NaN follows default_left"
        );
        // Depth 2: node 0 splits f0 <= 0 -> node 1 (f1 <= 1 -> leaf0 | leaf1), else leaf2.
        let deep = Tree {
            split_feature: vec![0, 1],
            threshold: vec![0.0, 1.0],
            default_left: vec![false, false],
            left: vec![1, -1],
            right: vec![-3, -2],
            leaf_value: vec![10.0, 20.0, 30.0],
        };
        assert_eq!(deep.predict(&[-1.0, 0.0]), 10.0);
        assert_eq!(deep.predict(&[-1.0, 2.0]), 20.0);
        assert_eq!(deep.predict(&[1.0, 0.0]), 30.0);
        assert_eq!(deep.predict(&[f32::NAN, 0.0]), 30.0);
        assert!(deep.validate(2).is_ok());
        assert!(
            deep.validate(1).is_err(),
            "split on a feature that does not exist"
        );
    }

    #[test]
    fn cyclic_tree_is_rejected() {
        let mut t = stump(0, 0.0, 1.0, 2.0);
        t.left = vec![0];
        assert!(t.validate(1).is_err());
    }

    #[test]
    fn ensemble_sums_trees_then_calibrates() {
        let e = Ensemble {
            trees: vec![stump(0, 0.0, -1.0, 1.0), stump(0, 0.0, -0.5, 0.5)],
        };
        assert_eq!(e.raw(&[1.0]), 1.5);
        let c = Calibration { a: 2.0, b: 0.0 };
        let expected = 1.0 / (1.0 + (-3.0f64).exp());
        assert!((c.prob(e.raw(&[1.0])) - expected).abs() < 1e-12);
    }

    #[test]
    fn tier_probabilities_are_ordinal() {
        let p = TierProbs {
            above_tier1: 0.3,
            above_tier2: 0.1,
        };
        let total: f64 = Tier::ALL.iter().map(|t| p.prob(*t)).sum();
        assert!((total - 1.0).abs() < 1e-12);
        assert_eq!(p.predicted(), (Tier::Tier1, 0.7));
        let p = TierProbs {
            above_tier1: 0.8,
            above_tier2: 0.2,
        };
        assert_eq!(p.predicted().0, Tier::Tier2);
        assert!((p.predicted().1 - 0.8).abs() < 1e-12);
        let p = TierProbs {
            above_tier1: 0.9,
            above_tier2: 0.7,
        };
        assert_eq!(p.predicted(), (Tier::Tier3, 0.7));
    }

    #[test]
    fn bundled_classifier_loads_and_gives_ordinal_probabilities() {
        let c = TierClassifier::bundled().unwrap();
        let p = c.predict(&[0.0; N_FEATURES]);
        assert!((0.0..=1.0).contains(&p.above_tier1));
        assert!(p.above_tier2 <= p.above_tier1);
    }

    #[test]
    fn artifact_with_other_features_is_refused() {
        let json =
            r#"{"format":"tierwise-gbdt-v1","feature_names":["a"],"trees":[],"calibration":{}}"#;
        assert!(matches!(
            TierClassifier::from_json(json),
            Err(ClassifierError::FeatureMismatch(_))
        ));
        let json = r#"{"format":"other","feature_names":[],"trees":[],"calibration":{}}"#;
        assert!(matches!(
            TierClassifier::from_json(json),
            Err(ClassifierError::Format(_))
        ));
        assert!(matches!(
            TierClassifier::from_json("{"),
            Err(ClassifierError::Parse(_))
        ));
    }
}
