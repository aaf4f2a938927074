//! `tierwise train`: the router's classifier retrained in one command, from a team's own data.
//!
//! Inputs (all JSON lines, read by [`crate::offline::dataset`]):
//! - `--data`: rows with per-model outcomes (`scores`): routing benchmarks, or what `tierwise
//!   labels` exports from shadow verdicts. They train the **difficulty** head: the label of a
//!   prompt is 1 - the mean score of the models scored on it whose tier is known (denser and
//!   less noisy than one model's 0/1 outcome), each input file carrying equal total weight.
//! - `--exemplars`: labelled task rows (`kind`, `tier`): they train the **task-kind** head; the
//!   rows' tiers give each kind's default tier, which the pool's `[task_kinds]` overrides.
//!
//! A model's tier is the pool's tier when the model is in the pool, else the tier whose
//! models' typical input price (geometric mean) is nearest, on a log scale, to the price given
//! for it in `--prices` (`{"model": usd_per_million_input}`, or `{"model": "tier2"}`).
//! There is no price table in the code.
//!
//! Features come from the serving code path ([`crate::routing::features::featurize`]), so training
//! and serving see the same vectors. Whatever is not retrained (no `--data`, or no
//! `--exemplars`) is taken from a base artifact (the bundled one by default).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::offline::dataset::BenchmarkRow;
use crate::offline::dataset::featurize_rows;
use crate::routing::classifier::{Artifact, Calibration, FORMAT_V2, KindSection, TierClassifier};
use crate::routing::embed::Embedder;
use crate::routing::features::feature_names;
use crate::routing::heads::{self, FitOptions, HeadError, LinearHead};
use crate::routing::pool::{PoolConfig, Tier};

/// Default logit shift per standard deviation of difficulty (tuned on AlpacaEval dev; see
/// `models/README.md`).
pub const DEFAULT_DIFFICULTY_WEIGHT: f64 = 0.5;

/// Default weight of prompt length in the outcome score, relative to difficulty (1 = one
/// standard deviation of log tokens counts as much as one of difficulty; tuned on AlpacaEval
/// dev, see `models/README.md`).
pub const DEFAULT_LENGTH_WEIGHT: f64 = 3.0;

/// Errors of a training run.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Features(#[from] crate::offline::dataset::RowFeatureError),
    #[error(transparent)]
    Head(#[from] HeadError),
    #[error(transparent)]
    Classifier(#[from] crate::routing::classifier::ClassifierError),
}

/// A model's tier: given directly, or its input price in USD per million tokens.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
pub enum PriceOrTier {
    Tier(Tier),
    Price(f64),
}

/// What a training run needs besides the data.
pub struct TrainOptions<'a> {
    pub pool: &'a PoolConfig,
    /// Prices (or tiers) of models outside the pool.
    pub prices: BTreeMap<String, PriceOrTier>,
    /// The artifact whose parts are kept when not retrained.
    pub base: Artifact,
    /// Logit shift per standard deviation of difficulty (see [`KindSection`]).
    pub difficulty_weight: f64,
    /// Weight of log tokens in the outcome score, per standard deviation, relative to
    /// difficulty's.
    pub length_weight: f64,
    pub threads: usize,
}

/// What the run did, written beside the artifact as `training.json`.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    pub difficulty: Option<DifficultyReport>,
    pub kinds: Option<KindsReport>,
    pub difficulty_weight_per_sd: f64,
    pub difficulty_center: f64,
    pub difficulty_sd: f64,
    pub length_weight_per_sd: f64,
    pub length_center: f64,
    pub length_sd: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DifficultyReport {
    pub files: Vec<String>,
    pub rows: usize,
    pub rows_without_tiered_model: usize,
    pub model_tiers: BTreeMap<String, Tier>,
    pub models_without_tier: Vec<String>,
    pub validation_rows: usize,
    pub validation_ece_tier1_wrong: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct KindsReport {
    pub files: Vec<String>,
    pub rows: usize,
    pub rows_per_kind: BTreeMap<String, usize>,
    pub default_tiers: BTreeMap<String, Tier>,
    pub validation_rows: usize,
    pub validation_kind_accuracy: f64,
    pub validation_tier_accuracy: f64,
    pub temperature: f64,
}

/// Tier of a model outside the pool from its input price: the tier whose models' geometric
/// mean input price is nearest on a log scale.
pub fn tier_of_price(pool: &PoolConfig, usd_per_m: f64) -> Tier {
    let ln = |p: f64| p.max(1e-6).ln();
    let typical = |t: Tier| {
        let m = pool.tier_models(t);
        m.iter().map(|m| ln(m.input_usd_per_m)).sum::<f64>() / m.len().max(1) as f64
    };
    let x = ln(usd_per_m);
    Tier::ALL
        .into_iter()
        .min_by(|a, b| (x - typical(*a)).abs().total_cmp(&(x - typical(*b)).abs()))
        .unwrap_or(Tier::Tier3)
}

/// The tier of `model`: the pool's, else from `prices`.
fn model_tier(
    pool: &PoolConfig,
    prices: &BTreeMap<String, PriceOrTier>,
    model: &str,
) -> Option<Tier> {
    if let Some((t, _)) = pool.model(model) {
        return Some(t);
    }
    match prices.get(model)? {
        PriceOrTier::Tier(t) => Some(*t),
        PriceOrTier::Price(p) => Some(tier_of_price(pool, *p)),
    }
}

/// A stable 0..100 bucket of an id (the validation split: bucket < 15).
fn bucket(id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(id.as_bytes()) % 100
}

/// Trains the classifier: `data` are (file name, rows) with outcomes, `exemplars` (file name,
/// rows) with task kinds.
pub fn train(
    embedder: &Embedder,
    data: &[(String, Vec<BenchmarkRow>)],
    exemplars: &[(String, Vec<BenchmarkRow>)],
    opts: &TrainOptions,
) -> Result<(Artifact, TrainReport), TrainError> {
    if data.is_empty() && exemplars.is_empty() {
        return Err(TrainError::Input(
            "nothing to train on: give --data and/or --exemplars".into(),
        ));
    }
    let mut art = opts.base.clone();
    art.feature_names = feature_names();
    let mut difficulty_report = None;
    let mut data_rows = Vec::new();
    if !data.is_empty() {
        let (linear, cal, report, x) = train_difficulty(embedder, data, opts)?;
        art.trees.clear();
        art.difficulty_linear = Some(linear);
        art.calibration = cal;
        difficulty_report = Some(report);
        data_rows = x;
    }
    let base_kinds = art.kinds.take();
    let (mut section, kinds_report, kind_rows) = if exemplars.is_empty() {
        let Some(section) = base_kinds else {
            return Err(TrainError::Input(
                "the base classifier has no task-kind head: give --exemplars".into(),
            ));
        };
        (section, None, Vec::new())
    } else {
        let (section, report, rows) = train_kinds(embedder, exemplars, opts)?;
        (section, Some(report), rows)
    };
    // The reference rows: the asks when given, else the outcome rows (featurised once).
    let reference = if kind_rows.is_empty() {
        data_rows
    } else {
        kind_rows
    };
    let scale = scale_kinds(&mut art, &mut section, &reference, opts)?;
    art.kinds = Some(section);
    art.format = FORMAT_V2.into();
    let report = TrainReport {
        difficulty: difficulty_report,
        kinds: kinds_report,
        difficulty_weight_per_sd: opts.difficulty_weight,
        difficulty_center: scale.difficulty_center,
        difficulty_sd: scale.difficulty_sd,
        length_weight_per_sd: opts.length_weight,
        length_center: scale.length_center,
        length_sd: scale.length_sd,
    };
    let mut training = serde_json::to_value(&report).unwrap_or_default();
    if let (None, Some(map)) = (&report.difficulty, training.as_object_mut()) {
        // The difficulty head comes from the base artifact: keep its provenance.
        map.insert("base".into(), opts.base.training.clone());
    }
    art.training = training;
    // The artifact must load as the router will load it.
    TierClassifier::from_artifact(art.clone())?;
    Ok((art, report))
}

/// Where the reference rows put difficulty and length.
struct Scale {
    difficulty_center: f64,
    difficulty_sd: f64,
    length_center: f64,
    length_sd: f64,
}

/// Sets the difficulty and length shifts of `section` from the `reference` rows: difficulty
/// is centred on them (a typical ask gets no shift) and scaled by its spread there, so
/// `difficulty_weight` is in logits per standard deviation. Leaves `art` without kinds, as a
/// difficulty-only (v1) artifact.
fn scale_kinds(
    art: &mut Artifact,
    section: &mut KindSection,
    reference: &[Vec<f32>],
    opts: &TrainOptions,
) -> Result<Scale, TrainError> {
    art.kinds = None;
    art.format = crate::routing::classifier::FORMAT_V1.into();
    let difficulty_only = TierClassifier::from_artifact(art.clone())?;
    let (center, sd) = median_and_sd(
        reference
            .iter()
            .map(|x| difficulty_only.raw_score(x))
            .collect(),
    );
    section.difficulty_center = center;
    section.difficulty_weight = opts.difficulty_weight / sd;
    let (length_center, length_sd) = median_and_sd(
        reference
            .iter()
            .map(|x| f64::from(x[crate::routing::embed::DIM]))
            .collect(),
    );
    section.length_center = length_center;
    // In difficulty's raw units: `length_weight` sds of length count as that many sds of
    // difficulty.
    section.length_weight = opts.length_weight * sd / length_sd;
    Ok(Scale {
        difficulty_center: center,
        difficulty_sd: sd,
        length_center,
        length_sd,
    })
}

/// The median and the standard deviation (at least 1e-6) of `values`.
fn median_and_sd(mut values: Vec<f64>) -> (f64, f64) {
    values.sort_by(f64::total_cmp);
    let n = values.len().max(1) as f64;
    let median = values.get(values.len() / 2).copied().unwrap_or(0.0);
    let mean = values.iter().sum::<f64>() / n;
    let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    (median, sd.max(1e-6))
}

type DifficultyOut = (
    LinearHead,
    BTreeMap<String, Calibration>,
    DifficultyReport,
    Vec<Vec<f32>>,
);

/// A row's difficulty label: (difficulty, tier1 wrong, tier2 wrong, weight).
type DifficultyLabel = (f64, Option<f64>, Option<f64>, f64);

/// The outcome rows that score a model of known tier, with their labels.
struct DifficultyLabels<'a> {
    rows: Vec<&'a BenchmarkRow>,
    labels: Vec<DifficultyLabel>,
    model_tiers: BTreeMap<String, Tier>,
    untiered: std::collections::BTreeSet<String>,
    /// Rows without a score of a model of known tier.
    skipped: usize,
}

/// Labels each outcome row with 1 - the mean score of its tiered models (and per tier), each
/// file carrying equal total weight.
fn difficulty_labels<'a>(
    data: &'a [(String, Vec<BenchmarkRow>)],
    opts: &TrainOptions,
) -> DifficultyLabels<'a> {
    let mut out = DifficultyLabels {
        rows: Vec::new(),
        labels: Vec::new(),
        model_tiers: BTreeMap::new(),
        untiered: std::collections::BTreeSet::new(),
        skipped: 0,
    };
    for (_, file_rows) in data {
        let start = out.rows.len();
        for r in file_rows {
            let mut all = Vec::new();
            let mut by_tier: [Vec<f64>; 3] = Default::default();
            for (m, s) in &r.scores {
                match model_tier(opts.pool, &opts.prices, m) {
                    Some(t) => {
                        out.model_tiers.insert(m.clone(), t);
                        all.push(*s);
                        by_tier[t.index()].push(*s);
                    }
                    None => {
                        out.untiered.insert(m.clone());
                    }
                }
            }
            if all.is_empty() {
                out.skipped += 1;
                continue;
            }
            let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
            out.rows.push(r);
            out.labels.push((
                1.0 - mean(&all).unwrap_or(0.0),
                mean(&by_tier[0]).map(|m| 1.0 - m),
                mean(&by_tier[1]).map(|m| 1.0 - m),
                1.0,
            ));
        }
        // Each file carries equal total weight.
        let n = (out.rows.len() - start).max(1) as f64;
        for l in &mut out.labels[start..] {
            l.3 = 1000.0 / n;
        }
    }
    out
}

fn train_difficulty(
    embedder: &Embedder,
    data: &[(String, Vec<BenchmarkRow>)],
    opts: &TrainOptions,
) -> Result<DifficultyOut, TrainError> {
    let DifficultyLabels {
        rows,
        labels,
        model_tiers,
        untiered,
        skipped,
    } = difficulty_labels(data, opts);
    if rows.is_empty() {
        return Err(TrainError::Input(format!(
            "no --data row has a score of a model with a known tier (models without one: {}); \
             give their prices with --prices",
            untiered.iter().cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    let x = featurize_rows(embedder, &rows, opts.threads)?;
    let (mut fit_x, mut fit_y, mut fit_w) = (Vec::new(), Vec::new(), Vec::new());
    let mut val = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        if bucket(&r.id) < 15 {
            val.push(i);
        } else {
            fit_x.push(x[i].clone());
            fit_y.push(labels[i].0);
            fit_w.push(labels[i].3);
        }
    }
    if fit_x.is_empty() || val.is_empty() {
        return Err(TrainError::Input(
            "too few --data rows to hold 15% out for calibration".into(),
        ));
    }
    let head = heads::fit_logistic(
        &fit_x,
        &fit_y,
        &fit_w,
        FitOptions {
            l2: 0.05,
            ..FitOptions::default()
        },
    )?;
    let (cal, ece) = calibrate(&head, &x, &val, &labels);
    Ok((
        head,
        cal,
        DifficultyReport {
            files: data.iter().map(|(f, _)| f.clone()).collect(),
            rows: rows.len(),
            rows_without_tiered_model: skipped,
            model_tiers,
            models_without_tier: untiered.into_iter().collect(),
            validation_rows: val.len(),
            validation_ece_tier1_wrong: ece,
        },
        x,
    ))
}

/// Platt calibrations of the raw score onto "tier1 wrong" / "tier2 wrong" on the held-out
/// rows `val`, and the expected calibration error of the first.
fn calibrate(
    head: &LinearHead,
    x: &[Vec<f32>],
    val: &[usize],
    labels: &[DifficultyLabel],
) -> (BTreeMap<String, Calibration>, f64) {
    let raw = |i: usize| head.logits(&x[i])[0];
    let mut cal = BTreeMap::new();
    let mut ece = 0.0;
    for (name, pick) in [("need_above_tier1", 1usize), ("need_above_tier2", 2)] {
        let pts: Vec<(f64, f64, f64)> = val
            .iter()
            .filter_map(|&i| {
                let y = if pick == 1 { labels[i].1 } else { labels[i].2 };
                y.map(|y| (raw(i), y, labels[i].3))
            })
            .collect();
        let c = platt(&pts);
        if pick == 1 {
            let probs: Vec<f64> = pts.iter().map(|p| c.prob(p.0)).collect();
            let ys: Vec<f64> = pts.iter().map(|p| p.1).collect();
            ece = crate::offline::scores::expected_calibration_error(&probs, &ys, 10);
        }
        cal.insert(name.to_string(), c);
    }
    (cal, ece)
}

/// Platt scaling `sigmoid(a * raw + b)` fitted to soft labels (weighted logistic regression
/// on one feature); the identity-like `a = 1, b = 0` when there are no points.
fn platt(pts: &[(f64, f64, f64)]) -> Calibration {
    if pts.is_empty() {
        return Calibration { a: 1.0, b: 0.0 };
    }
    let (mut a, mut b) = (1.0f64, 0.0f64);
    let total: f64 = pts.iter().map(|p| p.2).sum::<f64>().max(1e-12);
    for _ in 0..2000 {
        let (mut ga, mut gb) = (0.0, 0.0);
        for (r, y, w) in pts {
            let d = w * (heads::sigmoid(a * r + b) - y) / total;
            ga += d * r;
            gb += d;
        }
        a -= 0.5 * ga;
        b -= 0.5 * gb;
    }
    Calibration { a, b }
}

type KindsOut = (KindSection, KindsReport, Vec<Vec<f32>>);

/// Each exemplar kind's tier, and each kind's row count.
type KindTiersAndCounts = (BTreeMap<String, Tier>, BTreeMap<String, usize>);

/// Each exemplar kind's tier (one per kind) and row count; at least two kinds.
fn kind_tiers_and_counts(rows: &[&BenchmarkRow]) -> Result<KindTiersAndCounts, TrainError> {
    let mut default_tiers: BTreeMap<String, Tier> = BTreeMap::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in rows {
        let (Some(kind), Some(tier)) = (&r.kind, r.tier) else {
            return Err(TrainError::Input(format!(
                "exemplar {} needs `kind` and `tier`",
                r.id
            )));
        };
        if let Some(t) = default_tiers.insert(kind.clone(), tier)
            && t != tier
        {
            return Err(TrainError::Input(format!(
                "task kind `{kind}` is labelled {t} and {tier}: one tier per kind"
            )));
        }
        *counts.entry(kind.clone()).or_default() += 1;
    }
    if counts.len() < 2 {
        return Err(TrainError::Input(
            "--exemplars need at least two task kinds".into(),
        ));
    }
    Ok((default_tiers, counts))
}

/// How many of the validation rows (`logits`, true kinds `vy`) get their kind right, and how
/// many land on their kind's tier (`tiers`).
fn validation_hits(
    logits: &[Vec<f64>],
    vy: &[usize],
    names: &[String],
    tiers: &BTreeMap<String, Tier>,
) -> (usize, usize) {
    let argmax = |v: &[f64]| {
        v.iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(i, _)| i)
    };
    let (mut kind_ok, mut tier_ok) = (0usize, 0usize);
    for (l, c) in logits.iter().zip(vy) {
        let guess = argmax(l);
        kind_ok += usize::from(guess == *c);
        tier_ok += usize::from(tiers[&names[guess]] == tiers[&names[*c]]);
    }
    (kind_ok, tier_ok)
}

fn train_kinds(
    embedder: &Embedder,
    exemplars: &[(String, Vec<BenchmarkRow>)],
    opts: &TrainOptions,
) -> Result<KindsOut, TrainError> {
    let rows: Vec<&BenchmarkRow> = exemplars.iter().flat_map(|(_, r)| r.iter()).collect();
    let (default_tiers, counts) = kind_tiers_and_counts(&rows)?;
    let names: Vec<String> = counts.keys().cloned().collect();
    let index = |k: &str| names.iter().position(|n| n == k).unwrap_or(0);
    // The pool's table, as the router will apply it (names it does not know are refused there).
    let mut tiers = default_tiers.clone();
    for (k, t) in opts.pool.task_kinds() {
        if let Some(slot) = tiers.get_mut(k) {
            *slot = *t;
        }
    }
    let x = featurize_rows(embedder, &rows, opts.threads)?;
    let y: Vec<usize> = rows
        .iter()
        .map(|r| index(r.kind.as_deref().unwrap_or("")))
        .collect();
    // Kinds weigh alike whatever their row counts.
    let w: Vec<f64> = y
        .iter()
        .map(|c| rows.len() as f64 / (names.len() * counts[&names[*c]]) as f64)
        .collect();
    let (fit_i, val_i): (Vec<usize>, Vec<usize>) =
        (0..rows.len()).partition(|&i| bucket(&rows[i].id) >= 15);
    let pick = |idx: &[usize]| -> (Vec<Vec<f32>>, Vec<usize>, Vec<f64>) {
        (
            idx.iter().map(|&i| x[i].clone()).collect(),
            idx.iter().map(|&i| y[i]).collect(),
            idx.iter().map(|&i| w[i]).collect(),
        )
    };
    let (fx, fy, fw) = pick(&fit_i);
    let opts_fit = FitOptions {
        l2: 0.05,
        ..FitOptions::default()
    };
    let mut head = heads::fit_softmax(&fx, &fy, &fw, names.len(), opts_fit)?;
    let (vx, vy, vw) = pick(&val_i);
    let logits: Vec<Vec<f64>> = vx.iter().map(|v| head.logits(v)).collect();
    let temperature = if vx.is_empty() {
        1.0
    } else {
        heads::fit_temperature(&logits, &vy, &vw)
    };
    head.temperature = temperature as f32;
    let (kind_ok, tier_ok) = validation_hits(&logits, &vy, &names, &tiers);
    let nv = vy.len().max(1) as f64;
    let report = KindsReport {
        files: exemplars.iter().map(|(f, _)| f.clone()).collect(),
        rows: rows.len(),
        rows_per_kind: counts,
        default_tiers: default_tiers.clone(),
        validation_rows: vy.len(),
        validation_kind_accuracy: kind_ok as f64 / nv,
        validation_tier_accuracy: tier_ok as f64 / nv,
        temperature,
    };
    Ok((
        KindSection {
            names,
            default_tiers,
            head,
            difficulty_weight: 0.0,
            difficulty_center: 0.0,
            length_weight: 0.0,
            length_center: 0.0,
        },
        report,
        x,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_of_prices_follow_the_pool() {
        let pool = PoolConfig::bundled().unwrap();
        // Geometric means of the tiers' input prices: tier1 $0.12, tier2 $0.67, tier3 $3.54.
        assert_eq!(tier_of_price(&pool, 0.05), Tier::Tier1);
        assert_eq!(tier_of_price(&pool, 0.9), Tier::Tier2);
        assert_eq!(tier_of_price(&pool, 10.0), Tier::Tier3);
        let prices = BTreeMap::from([
            ("x".to_string(), PriceOrTier::Tier(Tier::Tier2)),
            ("y".to_string(), PriceOrTier::Price(30.0)),
        ]);
        assert_eq!(model_tier(&pool, &prices, "x"), Some(Tier::Tier2));
        assert_eq!(model_tier(&pool, &prices, "y"), Some(Tier::Tier3));
        assert_eq!(
            model_tier(&pool, &prices, "deepseek/deepseek-v3"),
            Some(Tier::Tier1)
        );
        assert_eq!(model_tier(&pool, &prices, "unknown"), None);
    }

    #[test]
    fn median_and_sd_of_a_small_sample() {
        let (m, sd) = median_and_sd(vec![3.0, 1.0, 2.0]);
        assert_eq!(m, 2.0);
        assert!((sd - (2.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(median_and_sd(vec![5.0, 5.0]), (5.0, 1e-6));
    }

    #[test]
    fn platt_recovers_a_logistic_relation() {
        // y = sigmoid(2 r - 1) exactly: the fit must find a ~ 2, b ~ -1.
        let pts: Vec<(f64, f64, f64)> = (-20..=20)
            .map(|i| {
                let r = f64::from(i) / 5.0;
                (r, heads::sigmoid(2.0 * r - 1.0), 1.0)
            })
            .collect();
        let c = platt(&pts);
        assert!((c.a - 2.0).abs() < 0.2 && (c.b + 1.0).abs() < 0.2, "{c:?}");
    }
}
