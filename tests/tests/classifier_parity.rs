//! The Rust tree evaluator reproduces LightGBM's raw scores on the check vectors that
//! `models/train.py` wrote next to the artifact.

use serde::Deserialize;
use tierwise::routing::classifier::TierClassifier;
use tierwise::routing::features::N_FEATURES;

#[derive(Deserialize)]
struct Check {
    features: Vec<f32>,
    raw: f64,
}

#[test]
fn tree_evaluator_matches_lightgbm() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/router/check.jsonl");
    let checks: Vec<Check> = std::fs::read_to_string(path)
        .expect("models/router/check.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a check line"))
        .collect();
    assert!(
        checks.len() >= 20,
        "too few check vectors: {}",
        checks.len()
    );
    let classifier = TierClassifier::bundled().expect("bundled classifier");
    let mut distinct = std::collections::BTreeSet::new();
    for (i, c) in checks.iter().enumerate() {
        assert_eq!(c.features.len(), N_FEATURES);
        let raw = classifier.raw_score(&c.features);
        assert!(
            (raw - c.raw).abs() < 1e-9,
            "check {i}: rust {raw} vs lightgbm {}",
            c.raw
        );
        distinct.insert((raw * 1e6) as i64);
    }
    assert!(
        distinct.len() > 5,
        "the checks should exercise different leaves"
    );
}
