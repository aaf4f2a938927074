//! The tier classifier: what kind of task a query is, how hard it is, and from both the
//! probability that each tier is adequate.
//!
//! Two signals, computed from the one feature vector of a decision:
//! - **task kind** (artifact `tierwise-router-v2`): a softmax head ([`crate::routing::heads`]) over task
//!   kinds (extraction, translation, coding, proof, ...). The pool's kind -> tier table
//!   (`[task_kinds]`, defaults in the artifact) turns it into P(the query needs more than tier
//!   t). Changing that table needs no retraining.
//! - **difficulty**: gradient-boosted trees (LightGBM, `models/train.sh`) or a linear head
//!   (`tierwise train`) scoring how likely cheap models fail, learned from benchmark outcomes.
//!   Two Platt calibrations turn its raw score into P(tier1's answer is wrong) and P(tier2's
//!   answer is wrong) when no kind head is present (artifact `tierwise-gbdt-v1`).
//!
//! With a kind head, difficulty shifts the kind's tier probabilities in logit space
//! (`difficulty_weight x (raw - difficulty_center)`): a hard prompt of a cheap kind moves up,
//! an easy prompt of a tier3 kind down to tier2 (never into tier1). The artifact is JSON,
//! loaded and validated once.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::routing::features::{N_FEATURES, feature_names};
use crate::routing::heads::{HeadError, LinearHead, logit, sigmoid};
use crate::routing::pool::Tier;

/// The bundled artifact.
pub static BUNDLED_CLASSIFIER: &str = include_str!("../../../models/router/classifier.json");

/// Errors loading a classifier artifact.
#[derive(Debug, thiserror::Error)]
pub enum ClassifierError {
    #[error("classifier artifact is not valid JSON of the expected shape: {0}")]
    Parse(String),
    #[error(
        "classifier artifact format `{0}` is not supported (expected tierwise-router-v2 or tierwise-gbdt-v1)"
    )]
    Format(String),
    #[error("cannot read classifier artifact {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// The file was read but is not a valid artifact: the path, then what is wrong with it.
    #[error("{path}: {error}")]
    File {
        path: String,
        error: Box<ClassifierError>,
    },
    #[error(transparent)]
    Head(#[from] HeadError),
    #[error("classifier artifact: {0}")]
    Invalid(String),
    #[error("task kind `{0}` of the pool's [task_kinds] is not a kind this classifier knows ({1})")]
    UnknownKind(String, String),
    #[error("classifier was trained on other features than this build computes ({0})")]
    FeatureMismatch(String),
    #[error("classifier calibration `{0}` is missing")]
    MissingHead(&'static str),
    #[error("tree {tree} is malformed: {why}")]
    BadTree { tree: usize, why: String },
}

/// Format name of artifacts with a task-kind head.
pub const FORMAT_V2: &str = "tierwise-router-v2";
/// Format name of difficulty-only artifacts (trees + calibrations).
pub const FORMAT_V1: &str = "tierwise-gbdt-v1";

/// The classifier artifact as stored (`models/router/classifier.json`, or `tierwise train`'s).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    pub format: String,
    pub feature_names: Vec<String>,
    /// Difficulty as trees (LightGBM); empty when `difficulty_linear` is given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trees: Vec<Tree>,
    /// Difficulty as a linear logistic head (`tierwise train`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub difficulty_linear: Option<LinearHead>,
    /// Platt calibrations of the difficulty score: `need_above_tier1`, `need_above_tier2`.
    pub calibration: BTreeMap<String, Calibration>,
    /// The task-kind head (v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinds: Option<KindSection>,
    /// Provenance (data, parameters, validation figures); informational.
    #[serde(default)]
    pub training: serde_json::Value,
}

/// The task-kind head and how difficulty adjusts it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindSection {
    /// Kind names, in the head's output order.
    pub names: Vec<String>,
    /// The kind -> tier table the head was trained with (the pool's `[task_kinds]` overrides).
    pub default_tiers: BTreeMap<String, Tier>,
    /// Softmax over `names`.
    pub head: LinearHead,
    /// Logit shift per unit of difficulty raw score above `difficulty_center`.
    pub difficulty_weight: f64,
    /// The difficulty raw score of a typical everyday ask (no shift there).
    pub difficulty_center: f64,
    /// The outcome score adds `length_weight x (log_tokens - length_center)` to the
    /// difficulty raw score before its calibration (longer asks fail cheap models more).
    #[serde(default)]
    pub length_weight: f64,
    #[serde(default)]
    pub length_center: f64,
}

/// Platt scaling: `p = sigmoid(a * raw + b)`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    pub a: f64,
    pub b: f64,
}

/// One regression tree, flat: a child `>= 0` is an internal node, `< 0` the leaf `!child`.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// P(a tier1 model's answer would be judged worse than a strong model's), from outcome
    /// data alone (difficulty and length, calibrated on benchmark outcomes): the score
    /// `tierwise eval` ranks prompts by. Without a kind head it equals `above_tier1`.
    pub strong: f64,
    /// The most likely task kind (index into [`TierClassifier::kind_names`]) and its
    /// probability, when the artifact has a kind head.
    pub kind: Option<(usize, f64)>,
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

    /// P(`tier` is adequate): 1 - P(a tier above it is needed).
    pub fn adequate(&self, tier: Tier) -> f64 {
        1.0 - self.above(tier)
    }

    /// The cheapest tier more likely adequate than not, and the probability that it is
    /// (tier3, the top, is taken as adequate: confidence = P(the tiers below are not)).
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

/// The difficulty score: trees or a linear head, both a logit.
#[derive(Debug, Clone)]
enum Difficulty {
    Trees(Ensemble),
    Linear(LinearHead),
}

impl Difficulty {
    fn raw(&self, x: &[f32]) -> f64 {
        match self {
            Difficulty::Trees(e) => e.raw(x),
            Difficulty::Linear(h) => h.logits(x)[0] / f64::from(h.temperature),
        }
    }
}

/// The task-kind head with the tier of each kind resolved.
#[derive(Debug, Clone)]
struct Kinds {
    section: KindSection,
    /// Tier of each kind, in head order.
    tiers: Vec<Tier>,
}

/// Kind probabilities are kept this far from 0 and 1 before the difficulty shift, so a
/// confident kind can still be moved by a very hard (or very easy) prompt.
const KIND_PROB_FLOOR: f64 = 0.01;

/// The tier classifier.
#[derive(Debug, Clone)]
pub struct TierClassifier {
    difficulty: Difficulty,
    above_tier1: Calibration,
    above_tier2: Calibration,
    kinds: Option<Kinds>,
    artifact_training: serde_json::Value,
}

impl TierClassifier {
    /// The bundled, trained classifier.
    pub fn bundled() -> Result<Self, ClassifierError> {
        Self::from_json(BUNDLED_CLASSIFIER)
    }

    /// Loads an artifact from a file; an error names the file (and, for a malformed artifact,
    /// the field).
    pub fn load(path: &std::path::Path) -> Result<Self, ClassifierError> {
        let text = std::fs::read_to_string(path).map_err(|source| ClassifierError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json(&text).map_err(|e| ClassifierError::File {
            path: path.display().to_string(),
            error: Box::new(e),
        })
    }

    /// The artifact at `path` when given, else the bundled one.
    pub fn load_or_bundled(path: Option<&std::path::Path>) -> Result<Self, ClassifierError> {
        match path {
            Some(p) => Self::load(p),
            None => Self::bundled(),
        }
    }

    /// Loads and validates an artifact. A parse error names the field's path
    /// (`trees[3].threshold: invalid type ...`): an artifact is one long JSON line, where a
    /// column says little.
    pub fn from_json(json: &str) -> Result<Self, ClassifierError> {
        let art: Artifact = match serde_json::from_str(json) {
            Ok(art) => art,
            // Parsed again only on failure, with the path tracked: the bundled artifact's
            // load at init stays a plain parse.
            Err(plain) => {
                let mut de = serde_json::Deserializer::from_str(json);
                let msg = match serde_path_to_error::deserialize::<_, Artifact>(&mut de) {
                    Err(e) => e.to_string(),
                    Ok(_) => plain.to_string(),
                };
                return Err(ClassifierError::Parse(msg));
            }
        };
        Self::from_artifact(art)
    }

    /// Validates an artifact and builds the classifier.
    pub fn from_artifact(art: Artifact) -> Result<Self, ClassifierError> {
        if art.format != FORMAT_V1 && art.format != FORMAT_V2 {
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
        let difficulty = match (art.difficulty_linear, art.trees.is_empty()) {
            (Some(_), false) => {
                return Err(ClassifierError::Invalid(
                    "give `trees` or `difficulty_linear`, not both".into(),
                ));
            }
            (Some(h), true) => {
                h.validate("difficulty_linear", N_FEATURES)?;
                Difficulty::Linear(h)
            }
            (None, _) => {
                for (i, t) in art.trees.iter().enumerate() {
                    t.validate(N_FEATURES)
                        .map_err(|why| ClassifierError::BadTree { tree: i, why })?;
                }
                Difficulty::Trees(Ensemble { trees: art.trees })
            }
        };
        let cal = |name: &'static str| {
            art.calibration
                .get(name)
                .copied()
                .ok_or(ClassifierError::MissingHead(name))
        };
        let kinds = match (art.format.as_str(), art.kinds) {
            (FORMAT_V2, Some(section)) => Some(Kinds::new(section)?),
            (FORMAT_V2, None) => {
                return Err(ClassifierError::Invalid(format!(
                    "{FORMAT_V2} needs a `kinds` section"
                )));
            }
            (_, Some(_)) => {
                return Err(ClassifierError::Invalid(format!(
                    "{FORMAT_V1} has no `kinds` section"
                )));
            }
            (_, None) => None,
        };
        Ok(Self {
            above_tier1: cal("need_above_tier1")?,
            above_tier2: cal("need_above_tier2")?,
            difficulty,
            kinds,
            artifact_training: art.training,
        })
    }

    /// This classifier with the kind -> tier table of a pool applied over the artifact's
    /// defaults. Every kind named must be one the head knows.
    pub fn with_kind_tiers(
        mut self,
        table: &BTreeMap<String, Tier>,
    ) -> Result<Self, ClassifierError> {
        let Some(kinds) = self.kinds.as_mut() else {
            return Ok(self);
        };
        for (name, tier) in table {
            let i = kinds
                .section
                .names
                .iter()
                .position(|n| n == name)
                .ok_or_else(|| {
                    ClassifierError::UnknownKind(name.clone(), kinds.section.names.join(", "))
                })?;
            kinds.tiers[i] = *tier;
        }
        Ok(self)
    }

    /// Task kind names of the head (empty without one), in output order.
    pub fn kind_names(&self) -> &[String] {
        self.kinds.as_ref().map_or(&[], |k| &k.section.names)
    }

    /// The tier each kind routes to (after the pool's table), in [`Self::kind_names`] order.
    pub fn kind_tiers(&self) -> &[Tier] {
        self.kinds.as_ref().map_or(&[], |k| &k.tiers)
    }

    /// The artifact's training provenance.
    pub fn training(&self) -> &serde_json::Value {
        &self.artifact_training
    }

    /// Tier probabilities for a feature vector of [`N_FEATURES`] values.
    pub fn predict(&self, x: &[f32]) -> TierProbs {
        let raw = self.difficulty.raw(x);
        let Some(kinds) = &self.kinds else {
            let above_tier1 = self.above_tier1.prob(raw);
            // Ordinal consistency: if tier2 is inadequate, so is tier1.
            let above_tier2 = self.above_tier2.prob(raw).min(above_tier1);
            return TierProbs {
                above_tier1,
                above_tier2,
                strong: above_tier1,
                kind: None,
            };
        };
        let p = kinds.section.head.softmax(x);
        let mut need = [0.0f64; 2];
        for (pk, tier) in p.iter().zip(&kinds.tiers) {
            if *tier > Tier::Tier1 {
                need[0] += pk;
            }
            if *tier > Tier::Tier2 {
                need[1] += pk;
            }
        }
        let shift = kinds.section.difficulty_weight * (raw - kinds.section.difficulty_center);
        let adjust = |q: f64, shift: f64| {
            sigmoid(logit(q.clamp(KIND_PROB_FLOOR, 1.0 - KIND_PROB_FLOOR)) + shift)
        };
        // Difficulty moves a hard ask of a cheap kind up, and an easy ask of a tier3 kind down
        // to tier2 — never down into tier1: only the kind's own evidence sends an ask there.
        let above_tier1 = adjust(need[0], shift.max(0.0));
        let above_tier2 = adjust(need[1], shift).min(above_tier1);
        let best = p
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, v)| (i, *v));
        let log_tokens = x
            .get(crate::routing::embed::DIM)
            .copied()
            .map_or(0.0, f64::from);
        let outcome_raw =
            raw + kinds.section.length_weight * (log_tokens - kinds.section.length_center);
        TierProbs {
            above_tier1,
            above_tier2,
            strong: self.above_tier1.prob(outcome_raw),
            kind: best,
        }
    }

    /// The task-kind probabilities (empty without a kind head), in [`Self::kind_names`] order.
    pub fn kind_probs(&self, x: &[f32]) -> Vec<f64> {
        self.kinds
            .as_ref()
            .map_or_else(Vec::new, |k| k.section.head.softmax(x))
    }

    /// The difficulty's raw score (a logit; for trees, LightGBM's raw score, for parity checks).
    pub fn raw_score(&self, x: &[f32]) -> f64 {
        self.difficulty.raw(x)
    }
}

impl Kinds {
    fn new(section: KindSection) -> Result<Self, ClassifierError> {
        section.head.validate("kinds.head", N_FEATURES)?;
        if section.names.len() != section.head.outputs() || section.names.len() < 2 {
            return Err(ClassifierError::Invalid(format!(
                "kinds: {} names for a head of {} outputs (at least 2)",
                section.names.len(),
                section.head.outputs()
            )));
        }
        let knobs = [
            section.difficulty_weight,
            section.difficulty_center,
            section.length_weight,
            section.length_center,
        ];
        if knobs.iter().any(|v| !v.is_finite()) {
            return Err(ClassifierError::Invalid(
                "kinds: difficulty and length weights and centres must be finite".into(),
            ));
        }
        let tiers = section
            .names
            .iter()
            .map(|n| {
                section.default_tiers.get(n).copied().ok_or_else(|| {
                    ClassifierError::Invalid(format!("kinds: no default tier for `{n}`"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { section, tiers })
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
            strong: 0.3,
            kind: None,
        };
        let total: f64 = Tier::ALL.iter().map(|t| p.prob(*t)).sum();
        assert!((total - 1.0).abs() < 1e-12);
        assert_eq!(p.predicted(), (Tier::Tier1, 0.7));
        let p = TierProbs {
            above_tier1: 0.8,
            above_tier2: 0.2,
            strong: 0.3,
            kind: None,
        };
        assert_eq!(p.predicted().0, Tier::Tier2);
        assert!((p.predicted().1 - 0.8).abs() < 1e-12);
        let p = TierProbs {
            above_tier1: 0.9,
            above_tier2: 0.7,
            strong: 0.3,
            kind: None,
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

    /// A v2 artifact with two kinds whose head reads feature 0 only: kind "easy" below 0,
    /// "hard" above; no difficulty shift unless `weight` is set (one stump on feature 1).
    fn v2(weight: f64) -> Artifact {
        let n = N_FEATURES;
        let mut weights = vec![0.0f32; 2 * n];
        weights[0] = -4.0; // easy
        weights[n] = 4.0; // hard
        Artifact {
            format: FORMAT_V2.into(),
            feature_names: feature_names(),
            trees: vec![stump(1, 0.0, -1.0, 1.0)],
            difficulty_linear: None,
            calibration: BTreeMap::from([
                ("need_above_tier1".into(), Calibration { a: 1.0, b: 0.0 }),
                ("need_above_tier2".into(), Calibration { a: 1.0, b: -1.0 }),
            ]),
            kinds: Some(KindSection {
                names: vec!["easy".into(), "hard".into()],
                default_tiers: BTreeMap::from([
                    ("easy".into(), Tier::Tier1),
                    ("hard".into(), Tier::Tier3),
                ]),
                head: LinearHead {
                    mean: vec![0.0; n],
                    scale: vec![1.0; n],
                    weights,
                    bias: vec![0.0, 0.0],
                    temperature: 1.0,
                },
                difficulty_weight: weight,
                difficulty_center: 0.0,
                length_weight: 0.0,
                length_center: 0.0,
            }),
            training: serde_json::Value::Null,
        }
    }

    #[test]
    fn a_bad_artifact_file_is_named_with_the_field_at_fault() {
        let dir = std::env::temp_dir().join(format!("tierwise-classifier-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("classifier.json");
        let mut art = serde_json::to_value(v2(0.0)).unwrap();
        std::fs::write(&path, art.to_string()).unwrap();
        TierClassifier::load(&path).unwrap();

        // A wrong type deep in the artifact: the path and the field, not a column of one line.
        art["calibration"]["need_above_tier1"]["a"] = serde_json::json!("one");
        std::fs::write(&path, art.to_string()).unwrap();
        let e = TierClassifier::load(&path).unwrap_err().to_string();
        assert!(e.contains("classifier.json"), "{e}");
        assert!(e.contains("calibration.need_above_tier1.a"), "{e}");

        // Well formed but invalid: the path and what is missing.
        art["calibration"] = serde_json::json!({});
        std::fs::write(&path, art.to_string()).unwrap();
        let e = TierClassifier::load(&path).unwrap_err().to_string();
        assert!(
            e.contains("classifier.json") && e.contains("need_above_tier1"),
            "{e}"
        );

        std::fs::remove_dir_all(&dir).unwrap();
        let e = TierClassifier::load(&path).unwrap_err();
        assert!(matches!(e, ClassifierError::Io { .. }), "{e:?}");
        assert!(e.to_string().contains("classifier.json"), "{e}");
    }

    fn at(f0: f32, f1: f32) -> Vec<f32> {
        let mut x = vec![0.0; N_FEATURES];
        x[0] = f0;
        x[1] = f1;
        x
    }

    #[test]
    fn kinds_map_to_tiers_through_the_table() {
        let c = TierClassifier::from_artifact(v2(0.0)).unwrap();
        assert_eq!(c.kind_names(), ["easy", "hard"]);
        let easy = c.predict(&at(-1.0, 0.0));
        assert_eq!(easy.kind.map(|k| k.0), Some(0));
        assert_eq!(easy.predicted().0, Tier::Tier1);
        assert!(easy.predicted().1 > 0.95, "{easy:?}");
        let hard = c.predict(&at(1.0, 0.0));
        assert_eq!(hard.predicted().0, Tier::Tier3);
        // The pool moves "hard" to tier2: no retraining, another tier.
        let table = BTreeMap::from([("hard".to_string(), Tier::Tier2)]);
        let moved = TierClassifier::from_artifact(v2(0.0))
            .unwrap()
            .with_kind_tiers(&table)
            .unwrap();
        assert_eq!(moved.kind_tiers(), [Tier::Tier1, Tier::Tier2]);
        assert_eq!(moved.predict(&at(1.0, 0.0)).predicted().0, Tier::Tier2);
        // A kind the head does not know is refused, naming it.
        let typo = BTreeMap::from([("hrad".to_string(), Tier::Tier2)]);
        let err = TierClassifier::from_artifact(v2(0.0))
            .unwrap()
            .with_kind_tiers(&typo)
            .unwrap_err();
        assert!(err.to_string().contains("hrad"), "{err}");
    }

    #[test]
    fn difficulty_moves_a_kind_up_or_down() {
        let c = TierClassifier::from_artifact(v2(4.0)).unwrap();
        // An easy kind, but the difficulty stump fires (+1): tier1 is no longer trusted.
        let plain = c.predict(&at(-0.5, -1.0));
        let hard = c.predict(&at(-0.5, 1.0));
        assert!(
            hard.above_tier1 > plain.above_tier1 + 0.3,
            "{plain:?} {hard:?}"
        );
        assert_eq!(plain.predicted().0, Tier::Tier1);
        assert!(hard.above_tier2 <= hard.above_tier1);
        // A tier3 kind made easy goes down to tier2, not into tier1.
        let easy_of_hard_kind = c.predict(&at(0.3, -1.0));
        let same_kind = TierClassifier::from_artifact(v2(0.0))
            .unwrap()
            .predict(&at(0.3, -1.0));
        assert_eq!(same_kind.predicted().0, Tier::Tier3, "{same_kind:?}");
        assert_eq!(
            easy_of_hard_kind.predicted().0,
            Tier::Tier2,
            "{easy_of_hard_kind:?}"
        );
        assert_eq!(easy_of_hard_kind.above_tier1, same_kind.above_tier1);
    }

    #[test]
    fn bundled_artifact_round_trips_and_v2_needs_kinds() {
        let art: Artifact = serde_json::from_str(BUNDLED_CLASSIFIER).unwrap();
        let again: Artifact = serde_json::from_str(&serde_json::to_string(&art).unwrap()).unwrap();
        assert!(TierClassifier::from_artifact(again).is_ok());
        let mut no_kinds = v2(0.0);
        no_kinds.kinds = None;
        assert!(matches!(
            TierClassifier::from_artifact(no_kinds),
            Err(ClassifierError::Invalid(_))
        ));
        let mut both = v2(0.0);
        both.difficulty_linear = both.kinds.as_ref().map(|k| LinearHead {
            bias: vec![0.0],
            weights: k.head.weights[..N_FEATURES].to_vec(),
            ..k.head.clone()
        });
        assert!(
            TierClassifier::from_artifact(both).is_err(),
            "trees and a linear head at once"
        );
    }
}
