//! Linear heads on the router's feature vector, and how they are trained.
//!
//! Two heads read the one feature vector a decision computes (MiniLM embedding + text
//! statistics, [`crate::routing::features`]):
//! - the **task-kind head**: a softmax over task kinds (extraction, translation, proof, ...),
//!   whose probabilities the pool's kind -> tier table turns into tier probabilities;
//! - the **linear difficulty head**: a logistic score of how likely a cheap model fails.
//!
//! Both are [`LinearHead`]s: standardise the features, one matrix product, a temperature.
//! Training ([`fit_softmax`], [`fit_logistic`]) is full-batch gradient descent with Adam and
//! L2 weight decay, deterministic (no random initialisation, no shuffling), fast enough to
//! run inside `tierwise train` on a few thousand rows.

use serde::{Deserialize, Serialize};

/// Errors of a head's parameters (at load) or of its training data.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    #[error("head `{head}`: {why}")]
    Shape { head: &'static str, why: String },
    #[error("no training rows")]
    NoRows,
    #[error("training row {row}: {why}")]
    BadRow { row: usize, why: String },
}

/// `softmax(W · ((x - mean) / scale) + b) / temperature`, or with one output a logistic.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LinearHead {
    /// Per-feature mean subtracted before the product.
    pub mean: Vec<f32>,
    /// Per-feature scale divided by (never 0).
    pub scale: Vec<f32>,
    /// Output-major weights: `outputs x features`, row-major.
    pub weights: Vec<f32>,
    /// One bias per output.
    pub bias: Vec<f32>,
    /// Softmax / logistic temperature (calibration), > 0.
    pub temperature: f32,
}

impl LinearHead {
    /// Number of outputs.
    pub fn outputs(&self) -> usize {
        self.bias.len()
    }

    /// Number of input features.
    pub fn features(&self) -> usize {
        self.mean.len()
    }

    /// Checks the shapes against `features` inputs; `name` labels the error.
    pub fn validate(&self, name: &'static str, features: usize) -> Result<(), HeadError> {
        let shape = |why: String| HeadError::Shape { head: name, why };
        if self.mean.len() != features || self.scale.len() != features {
            return Err(shape(format!(
                "mean/scale have {}/{} values, expected {features}",
                self.mean.len(),
                self.scale.len()
            )));
        }
        if self.bias.is_empty() || self.weights.len() != self.bias.len() * features {
            return Err(shape(format!(
                "{} weights for {} outputs x {features} features",
                self.weights.len(),
                self.bias.len()
            )));
        }
        let finite = |v: &[f32]| v.iter().all(|x| x.is_finite());
        if !(finite(&self.mean) && finite(&self.weights) && finite(&self.bias)) {
            return Err(shape("a parameter is not finite".into()));
        }
        if self.scale.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(shape("a scale is not a finite number > 0".into()));
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(shape(format!(
                "temperature must be > 0, got {}",
                self.temperature
            )));
        }
        Ok(())
    }

    /// The outputs before the temperature (logits).
    pub fn logits(&self, x: &[f32]) -> Vec<f64> {
        let f = self.features();
        let z: Vec<f32> = x
            .iter()
            .zip(self.mean.iter().zip(&self.scale))
            .map(|(v, (m, s))| if v.is_finite() { (v - m) / s } else { 0.0 })
            .collect();
        self.bias
            .iter()
            .enumerate()
            .map(|(k, b)| {
                let w = &self.weights[k * f..(k + 1) * f];
                f64::from(*b) + w.iter().zip(&z).map(|(a, b)| f64::from(a * b)).sum::<f64>()
            })
            .collect()
    }

    /// Softmax probabilities over the outputs (temperature applied).
    pub fn softmax(&self, x: &[f32]) -> Vec<f64> {
        softmax_t(&self.logits(x), f64::from(self.temperature))
    }

    /// Logistic probability of the first output (temperature applied).
    pub fn logistic(&self, x: &[f32]) -> f64 {
        sigmoid(self.logits(x)[0] / f64::from(self.temperature))
    }
}

/// `1 / (1 + e^-x)`.
pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// `ln(p / (1 - p))`, with `p` kept inside `[1e-6, 1 - 1e-6]`.
pub fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    (p / (1.0 - p)).ln()
}

/// Softmax of `logits / t`.
pub fn softmax_t(logits: &[f64], t: f64) -> Vec<f64> {
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = logits.iter().map(|l| ((l - max) / t).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

/// Training settings shared by both heads.
#[derive(Debug, Clone, Copy)]
pub struct FitOptions {
    /// Full-batch Adam steps.
    pub steps: usize,
    /// Adam step size.
    pub learning_rate: f64,
    /// L2 weight decay on the (standardised) weights, not the biases.
    pub l2: f64,
}

impl Default for FitOptions {
    fn default() -> Self {
        Self {
            steps: 400,
            learning_rate: 0.05,
            l2: 1e-3,
        }
    }
}

/// Per-feature mean and standard deviation (1 where a feature is constant).
fn standardisation(x: &[Vec<f32>], f: usize) -> (Vec<f32>, Vec<f32>) {
    let n = x.len() as f64;
    let mut mean = vec![0.0f64; f];
    for row in x {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += f64::from(*v);
        }
    }
    mean.iter_mut().for_each(|m| *m /= n);
    let mut var = vec![0.0f64; f];
    for row in x {
        for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
            *s += (f64::from(*v) - m).powi(2);
        }
    }
    let scale = var
        .iter()
        .map(|s| {
            let sd = (s / n).sqrt();
            if sd > 1e-6 { sd as f32 } else { 1.0 }
        })
        .collect();
    (mean.iter().map(|m| *m as f32).collect(), scale)
}

fn check_rows(x: &[Vec<f32>]) -> Result<usize, HeadError> {
    let f = x.first().ok_or(HeadError::NoRows)?.len();
    for (row, v) in x.iter().enumerate() {
        if v.len() != f {
            return Err(HeadError::BadRow {
                row,
                why: format!("{} features, the first row has {f}", v.len()),
            });
        }
        if v.iter().any(|a| !a.is_finite()) {
            return Err(HeadError::BadRow {
                row,
                why: "a feature is not finite".into(),
            });
        }
    }
    Ok(f)
}

/// Adam over a flat parameter vector.
struct Adam {
    m: Vec<f64>,
    v: Vec<f64>,
    t: i32,
    lr: f64,
}

impl Adam {
    fn new(n: usize, lr: f64) -> Self {
        Self {
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
            lr,
        }
    }

    fn step(&mut self, params: &mut [f64], grad: &[f64]) {
        const B1: f64 = 0.9;
        const B2: f64 = 0.999;
        self.t += 1;
        let c1 = 1.0 - B1.powi(self.t);
        let c2 = 1.0 - B2.powi(self.t);
        for i in 0..params.len() {
            self.m[i] = B1 * self.m[i] + (1.0 - B1) * grad[i];
            self.v[i] = B2 * self.v[i] + (1.0 - B2) * grad[i] * grad[i];
            params[i] -= self.lr * (self.m[i] / c1) / ((self.v[i] / c2).sqrt() + 1e-8);
        }
    }
}

/// Fits a softmax head on rows `x` with class labels `y` (`< classes`) and row weights `w`.
pub fn fit_softmax(
    x: &[Vec<f32>],
    y: &[usize],
    w: &[f64],
    classes: usize,
    opts: FitOptions,
) -> Result<LinearHead, HeadError> {
    let f = check_rows(x)?;
    if let Some(row) = y.iter().position(|c| *c >= classes) {
        return Err(HeadError::BadRow {
            row,
            why: format!("class {} of {classes}", y[row]),
        });
    }
    let targets: Vec<Vec<f64>> = y
        .iter()
        .map(|c| (0..classes).map(|k| f64::from(u8::from(k == *c))).collect())
        .collect();
    fit(x, &targets, w, classes, f, opts, Loss::Softmax)
}

/// Fits a logistic head on rows `x` with soft labels `y` in `[0, 1]` and row weights `w`.
pub fn fit_logistic(
    x: &[Vec<f32>],
    y: &[f64],
    w: &[f64],
    opts: FitOptions,
) -> Result<LinearHead, HeadError> {
    let f = check_rows(x)?;
    if let Some(row) = y.iter().position(|v| !(0.0..=1.0).contains(v)) {
        return Err(HeadError::BadRow {
            row,
            why: format!("label {} outside [0, 1]", y[row]),
        });
    }
    let targets: Vec<Vec<f64>> = y.iter().map(|v| vec![*v]).collect();
    fit(x, &targets, w, 1, f, opts, Loss::Logistic)
}

#[derive(Clone, Copy, PartialEq)]
enum Loss {
    Softmax,
    Logistic,
}

fn fit(
    x: &[Vec<f32>],
    targets: &[Vec<f64>],
    w: &[f64],
    k: usize,
    f: usize,
    opts: FitOptions,
    loss: Loss,
) -> Result<LinearHead, HeadError> {
    if targets.len() != x.len() || w.len() != x.len() {
        return Err(HeadError::BadRow {
            row: x.len().min(targets.len()).min(w.len()),
            why: "rows, labels and weights differ in number".into(),
        });
    }
    let (mean, scale) = standardisation(x, f);
    let z: Vec<Vec<f64>> = x
        .iter()
        .map(|row| {
            row.iter()
                .zip(mean.iter().zip(&scale))
                .map(|(v, (m, s))| f64::from((v - m) / s))
                .collect()
        })
        .collect();
    let total_w: f64 = w.iter().sum::<f64>().max(1e-12);
    // Parameters: k x f weights, then k biases.
    let mut params = vec![0.0f64; k * f + k];
    let mut adam = Adam::new(params.len(), opts.learning_rate);
    let mut grad = vec![0.0f64; params.len()];
    let mut out = vec![0.0f64; k];
    for _ in 0..opts.steps {
        grad.iter_mut().for_each(|g| *g = 0.0);
        for ((zi, ti), wi) in z.iter().zip(targets).zip(w) {
            for (c, o) in out.iter_mut().enumerate() {
                let wrow = &params[c * f..(c + 1) * f];
                *o = params[k * f + c] + wrow.iter().zip(zi).map(|(a, b)| a * b).sum::<f64>();
            }
            let p = match loss {
                Loss::Softmax => softmax_t(&out, 1.0),
                Loss::Logistic => vec![sigmoid(out[0])],
            };
            for c in 0..k {
                let d = wi * (p[c] - ti[c]) / total_w;
                if d == 0.0 {
                    continue;
                }
                for (g, zv) in grad[c * f..(c + 1) * f].iter_mut().zip(zi) {
                    *g += d * zv;
                }
                grad[k * f + c] += d;
            }
        }
        for (g, p) in grad[..k * f].iter_mut().zip(&params[..k * f]) {
            *g += opts.l2 * p;
        }
        adam.step(&mut params, &grad);
    }
    Ok(LinearHead {
        mean,
        scale,
        weights: params[..k * f].iter().map(|v| *v as f32).collect(),
        bias: params[k * f..].iter().map(|v| *v as f32).collect(),
        temperature: 1.0,
    })
}

/// The temperature in `[0.25, 8]` that minimises the weighted negative log-likelihood of
/// `targets` (class indices) under `softmax(logits / t)`: a one-parameter calibration fitted
/// on rows the head was not trained on (golden-section search on `ln t`).
pub fn fit_temperature(logits: &[Vec<f64>], targets: &[usize], w: &[f64]) -> f64 {
    let nll = |ln_t: f64| {
        let t = ln_t.exp();
        logits
            .iter()
            .zip(targets)
            .zip(w)
            .map(|((l, c), wi)| -wi * softmax_t(l, t)[*c].max(1e-12).ln())
            .sum::<f64>()
    };
    let (mut a, mut b) = (0.25f64.ln(), 8.0f64.ln());
    let g = (5f64.sqrt() - 1.0) / 2.0;
    for _ in 0..60 {
        let c = b - g * (b - a);
        let d = a + g * (b - a);
        if nll(c) < nll(d) {
            b = d;
        } else {
            a = c;
        }
    }
    ((a + b) / 2.0).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three separable clusters in 2-D, plus a constant feature (scale must not be 0).
    fn clusters() -> (Vec<Vec<f32>>, Vec<usize>) {
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..30 {
            let j = (i % 5) as f32 * 0.05;
            for (c, (cx, cy)) in [(0.0, 0.0), (2.0, 0.0), (0.0, 2.0)].iter().enumerate() {
                x.push(vec![cx + j, cy - j, 1.0]);
                y.push(c);
            }
        }
        (x, y)
    }

    #[test]
    fn softmax_head_learns_separable_classes() {
        let (x, y) = clusters();
        let w = vec![1.0; x.len()];
        let head = fit_softmax(&x, &y, &w, 3, FitOptions::default()).unwrap();
        head.validate("test", 3).unwrap();
        for (row, c) in x.iter().zip(&y) {
            let p = head.softmax(row);
            let best = (0..3).max_by(|a, b| p[*a].total_cmp(&p[*b])).unwrap();
            assert_eq!(best, *c, "{row:?} -> {p:?}");
            assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        }
        // A point between clusters 1 and 2 is uncertain between them, not cluster 0's.
        let p = head.softmax(&[1.0, 1.0, 1.0]);
        assert!(p[0] < p[1] && p[0] < p[2], "{p:?}");
    }

    #[test]
    fn logistic_head_fits_soft_labels_in_order() {
        // Label rises with the feature: predictions must rise too and stay inside (0, 1).
        let x: Vec<Vec<f32>> = (0..50).map(|i| vec![i as f32 / 10.0]).collect();
        let y: Vec<f64> = (0..50).map(|i| f64::from(i) / 49.0).collect();
        let head = fit_logistic(&x, &y, &vec![1.0; 50], FitOptions::default()).unwrap();
        let lo = head.logistic(&[0.0]);
        let hi = head.logistic(&[4.9]);
        assert!(lo < 0.2 && hi > 0.8 && lo > 0.0 && hi < 1.0, "{lo} {hi}");
    }

    #[test]
    fn row_weights_move_the_fit() {
        // Same inputs, conflicting labels: the heavier rows win.
        let x = vec![vec![0.0f32], vec![0.0]];
        let head = fit_logistic(&x, &[1.0, 0.0], &[9.0, 1.0], FitOptions::default()).unwrap();
        assert!((head.logistic(&[0.0]) - 0.9).abs() < 0.02);
    }

    #[test]
    fn temperature_softens_overconfident_logits() {
        // Logits say 99.9% but the first class is right only 70% of the time.
        let logits: Vec<Vec<f64>> = (0..100).map(|_| vec![7.0, 0.0]).collect();
        let targets: Vec<usize> = (0..100).map(|i| usize::from(i >= 70)).collect();
        let t = fit_temperature(&logits, &targets, &vec![1.0; 100]);
        let p = softmax_t(&logits[0], t)[0];
        assert!((p - 0.7).abs() < 0.01, "t {t} p {p}");
    }

    #[test]
    fn bad_shapes_and_rows_are_refused() {
        let (x, y) = clusters();
        let head = fit_softmax(&x, &y, &vec![1.0; x.len()], 3, FitOptions::default()).unwrap();
        assert!(head.validate("kinds", 4).is_err());
        let mut bad = head.clone();
        bad.temperature = 0.0;
        assert!(bad.validate("kinds", 3).is_err());
        assert!(matches!(
            fit_softmax(&[], &[], &[], 3, FitOptions::default()),
            Err(HeadError::NoRows)
        ));
        assert!(
            fit_softmax(
                &x,
                &vec![3; x.len()],
                &vec![1.0; x.len()],
                3,
                FitOptions::default()
            )
            .is_err()
        );
        let ragged = vec![vec![0.0f32, 1.0], vec![0.0]];
        assert!(fit_logistic(&ragged, &[0.0, 1.0], &[1.0, 1.0], FitOptions::default()).is_err());
        assert!(fit_logistic(&[vec![0.0]], &[1.5], &[1.0], FitOptions::default()).is_err());
    }
}
