//! Offline routing metrics, computed exactly as RouteLLM reports them: APGR, CPT(50%), CPT(80%).
//!
//! A router gives each prompt a score `s_i` (higher = the strong model is more likely needed).
//! Given also the weak and strong models' quality on each prompt (`y_w,i`, `y_s,i` in `[0, 1]`,
//! usually 0/1), [`routellm_metrics`] traces the router's cost/quality curve:
//!
//! 1. The thresholds are the 11 edges of 10 quantile bins of the scores ([`quantile_edges`]),
//!    `q_k = quantile(scores, k/10)`, with numpy's default linear interpolation.
//! 2. At threshold `t_k` a prompt goes to the strong model when `s_i >= t_k`, except at the last
//!    edge (`k = 10`, the maximum score) where the rule is `s_i > t_k`. So the first point always
//!    calls the strong model on every prompt (x = 100%) and the last on none (x = 0%).
//! 3. Each threshold gives a [`RoutePoint`]: the percentage of prompts sent to the strong model
//!    and the resulting accuracy, `100 * mean(y_s if strong else y_w)`.
//!
//! **APGR** (average performance gap recovered) is the trapezoid area under the accuracy curve,
//! over `x = pct_strong / 100`, taken across the computed points only (no endpoints are added;
//! step 2 guarantees they already span `x` from 0 to 1). Over that unit interval a router that
//! never calls the strong model has area `weak_acc` and one that always does has `strong_acc`,
//! so `APGR = (AUC - weak_acc) / (strong_acc - weak_acc)`: 0.5 for a random router, 1 (or more)
//! for a perfect one. **CPT(p)** is the smallest percentage of strong calls at which the curve
//! reaches `weak_acc + p * (strong_acc - weak_acc)` ([`cpt`]).
//!
//! Also here: the random-router baseline ([`random_router_metrics`]) and the expected calibration
//! error of predicted probabilities ([`expected_calibration_error`]).

use serde::Serialize;
use thiserror::Error;

/// Number of quantile bins RouteLLM splits the router scores into (11 threshold edges).
pub const NUM_BINS: usize = 10;

/// Below this gap (in accuracy percentage points) the strong and weak accuracies count as
/// equal, and APGR is undefined.
const APGR_MIN_GAP: f64 = 1e-9;

/// One point of a router's cost/quality curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RoutePoint {
    /// Percentage (0..=100) of prompts routed to the strong model.
    pub pct_strong: f64,
    /// Resulting accuracy, in percent (0..=100 for outcomes in `[0, 1]`).
    pub accuracy: f64,
}

/// RouteLLM's metrics of one router on one benchmark.
#[derive(Debug, Clone, Serialize)]
pub struct RouterMetrics {
    /// Number of prompts evaluated.
    pub n: usize,
    /// Accuracy (percent) of always calling the weak model.
    pub weak_acc: f64,
    /// Accuracy (percent) of always calling the strong model.
    pub strong_acc: f64,
    /// Average performance gap recovered; `None` when `strong_acc == weak_acc`.
    pub apgr: Option<f64>,
    /// Percentage of strong calls needed to recover 50% of the gap; `None` if never reached.
    pub cpt50_pct: Option<f64>,
    /// Percentage of strong calls needed to recover 80% of the gap; `None` if never reached.
    pub cpt80_pct: Option<f64>,
    /// The curve, sorted by ascending `pct_strong` (ties by ascending accuracy).
    #[serde(skip)]
    pub points: Vec<RoutePoint>,
}

/// Why routing metrics could not be computed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ScoresError {
    /// There are no prompts.
    #[error("no prompts to evaluate")]
    Empty,
    /// The three inputs do not have one entry per prompt each.
    #[error(
        "length mismatch: {scores} router scores, {weak} weak outcomes, {strong} strong outcomes"
    )]
    LengthMismatch {
        /// Number of router scores.
        scores: usize,
        /// Number of weak-model outcomes.
        weak: usize,
        /// Number of strong-model outcomes.
        strong: usize,
    },
    /// A score or outcome is NaN or infinite.
    #[error("{input} value at index {index} is not finite ({value})")]
    NonFinite {
        /// Which input: `"score"`, `"weak"` or `"strong"`.
        input: &'static str,
        /// 0-based prompt index.
        index: usize,
        /// The offending value.
        value: f64,
    },
}

/// The `bins + 1` edges of `bins` equal-count quantile bins of `scores`.
///
/// Edge `k` is the `k / bins` quantile with linear interpolation between order statistics,
/// exactly numpy's `np.quantile(scores, np.arange(bins + 1) / bins)` (default `method="linear"`):
/// position `h = (n - 1) * p`, value `x[floor(h)] + (h - floor(h)) * (x[floor(h) + 1] -
/// x[floor(h)])` on the sorted scores (numpy's two-sided interpolation formula is used, so the
/// results agree to the last bit). The first edge is the minimum and the last the maximum.
/// Returns no edges for no scores, and the single edge `[min]` when `bins == 0`. NaNs sort last.
pub fn quantile_edges(scores: &[f64], bins: usize) -> Vec<f64> {
    let mut sorted = scores.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return Vec::new();
    }
    if bins == 0 {
        return vec![sorted[0]];
    }
    (0..=bins)
        .map(|k| quantile_sorted(&sorted, k as f64 / bins as f64))
        .collect()
}

/// The `p` quantile (`p` in `[0, 1]`) of non-empty ascending `sorted`, numpy's linear method.
fn quantile_sorted(sorted: &[f64], p: f64) -> f64 {
    let last = sorted.len() - 1;
    let h = last as f64 * p;
    let lo = (h.floor().max(0.0) as usize).min(last);
    let hi = (lo + 1).min(last);
    let gamma = h - lo as f64;
    lerp(sorted[lo], sorted[hi], gamma)
}

/// numpy's `_lerp`: interpolates from whichever end is nearer, for accuracy.
fn lerp(a: f64, b: f64, t: f64) -> f64 {
    let diff = b - a;
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

/// RouteLLM's metrics of a router with `scores` on prompts where the weak and strong models
/// achieve `weak` and `strong` (see the [module docs](self) for the exact procedure).
///
/// Errors on empty input, inputs of different lengths, or a non-finite score or outcome.
pub fn routellm_metrics(
    scores: &[f64],
    weak: &[f64],
    strong: &[f64],
) -> Result<RouterMetrics, ScoresError> {
    check_inputs(scores, weak, strong)?;
    let weak_acc = mean_pct(weak);
    let strong_acc = mean_pct(strong);
    let mut points = curve(scores, weak, strong);
    sort_points(&mut points);
    // The points span x = pct/100 over exactly [0, 1] (first edge = min routes everything to
    // strong, last edge with `>` routes nothing), so the baselines' areas are their accuracies.
    let area = auc(&points);
    let apgr = if (strong_acc - weak_acc).abs() <= APGR_MIN_GAP {
        None
    } else {
        Some((area - weak_acc) / (strong_acc - weak_acc))
    };
    Ok(RouterMetrics {
        n: scores.len(),
        weak_acc,
        strong_acc,
        apgr,
        cpt50_pct: cpt(&points, weak_acc, strong_acc, 0.5),
        cpt80_pct: cpt(&points, weak_acc, strong_acc, 0.8),
        points,
    })
}

/// One entry per prompt in each input, at least one prompt, every value finite.
fn check_inputs(scores: &[f64], weak: &[f64], strong: &[f64]) -> Result<(), ScoresError> {
    if scores.len() != weak.len() || scores.len() != strong.len() {
        return Err(ScoresError::LengthMismatch {
            scores: scores.len(),
            weak: weak.len(),
            strong: strong.len(),
        });
    }
    if scores.is_empty() {
        return Err(ScoresError::Empty);
    }
    for (input, values) in [("score", scores), ("weak", weak), ("strong", strong)] {
        if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(ScoresError::NonFinite {
                input,
                index,
                value,
            });
        }
    }
    Ok(())
}

/// The router's points, one a threshold edge (unsorted).
fn curve(scores: &[f64], weak: &[f64], strong: &[f64]) -> Vec<RoutePoint> {
    let n = scores.len();
    let edges = quantile_edges(scores, NUM_BINS);
    let last = edges.len() - 1;
    edges
        .iter()
        .enumerate()
        .map(|(k, &t)| {
            let mut n_strong = 0usize;
            let mut total = 0.0;
            for ((&s, &w), &st) in scores.iter().zip(weak).zip(strong) {
                let to_strong = if k == last { s > t } else { s >= t };
                if to_strong {
                    n_strong += 1;
                    total += st;
                } else {
                    total += w;
                }
            }
            RoutePoint {
                pct_strong: 100.0 * n_strong as f64 / n as f64,
                accuracy: 100.0 * total / n as f64,
            }
        })
        .collect()
}

/// `100 * mean(values)`, 0 for no values.
fn mean_pct(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    100.0 * values.iter().sum::<f64>() / values.len() as f64
}

/// Sorts by ascending `pct_strong`, ties by ascending accuracy (a total, deterministic order).
fn sort_points(points: &mut [RoutePoint]) {
    points.sort_by(|a, b| {
        a.pct_strong
            .total_cmp(&b.pct_strong)
            .then(a.accuracy.total_cmp(&b.accuracy))
    });
}

/// Trapezoid area under accuracy (percent) over `x = pct_strong / 100`, across sorted points.
fn auc(points: &[RoutePoint]) -> f64 {
    points
        .windows(2)
        .map(|w| {
            (w[1].pct_strong - w[0].pct_strong) / 100.0 * (w[0].accuracy + w[1].accuracy) / 2.0
        })
        .sum()
}

/// Call-performance threshold: the percentage of strong calls at which the curve first reaches
/// `weak_acc + p * (strong_acc - weak_acc)` (`p` in `(0, 1)`, e.g. 0.5 for CPT(50%)).
///
/// Walks the points by ascending `pct_strong` (they need not be sorted; points with a
/// non-finite field are ignored) and interpolates linearly between the last point below the
/// target and the first at or above it; if the very first point already reaches the target,
/// its `pct_strong` is returned. `None` if no point reaches the target (or an input is not
/// finite).
pub fn cpt(points: &[RoutePoint], weak_acc: f64, strong_acc: f64, p: f64) -> Option<f64> {
    if !(p.is_finite() && weak_acc.is_finite() && strong_acc.is_finite()) {
        return None;
    }
    let target = weak_acc + p * (strong_acc - weak_acc);
    let mut sorted: Vec<RoutePoint> = points
        .iter()
        .copied()
        .filter(|pt| pt.pct_strong.is_finite() && pt.accuracy.is_finite())
        .collect();
    sort_points(&mut sorted);
    let mut prev: Option<RoutePoint> = None;
    for pt in sorted {
        if pt.accuracy >= target {
            return Some(match prev {
                None => pt.pct_strong,
                // prev.accuracy < target <= pt.accuracy, so the denominator is positive.
                Some(q) => {
                    q.pct_strong
                        + (target - q.accuracy) / (pt.accuracy - q.accuracy)
                            * (pt.pct_strong - q.pct_strong)
                }
            });
        }
        prev = Some(pt);
    }
    None
}

/// The random-router baseline: the metrics of `seeds` routers with independent uniform random
/// scores (seeds `0..seeds` of an inline splitmix64 generator, so results are reproducible),
/// averaged.
///
/// `weak_acc` and `strong_acc` do not depend on the scores; `apgr`, `cpt50_pct` and `cpt80_pct`
/// are averaged over the seeds where they are defined (`None` if none), and `points` is the
/// point-wise average of the sorted curves. Its APGR is about 0.5 and its CPT(p) about `100 * p`.
///
/// Never fails: if `weak` and `strong` differ in length only the common prefix is used; with no
/// prompts, no seeds or non-finite outcomes there are no curves, so `points` is empty and the
/// derived metrics are `None` (the accuracies are 0 for no prompts).
pub fn random_router_metrics(weak: &[f64], strong: &[f64], seeds: u64) -> RouterMetrics {
    let n = weak.len().min(strong.len());
    let (weak, strong) = (&weak[..n], &strong[..n]);
    let mut apgr = MeanOf::default();
    let mut cpt50 = MeanOf::default();
    let mut cpt80 = MeanOf::default();
    let mut curve_sum: Vec<RoutePoint> = Vec::new();
    let mut curves = 0usize;
    let mut scores = vec![0.0; n];
    for seed in 0..seeds {
        let mut rng = SplitMix64::new(seed);
        for s in &mut scores {
            *s = rng.next_f64();
        }
        let Ok(m) = routellm_metrics(&scores, weak, strong) else {
            continue;
        };
        apgr.add(m.apgr);
        cpt50.add(m.cpt50_pct);
        cpt80.add(m.cpt80_pct);
        if curve_sum.is_empty() {
            curve_sum = m.points;
        } else {
            for (sum, pt) in curve_sum.iter_mut().zip(&m.points) {
                sum.pct_strong += pt.pct_strong;
                sum.accuracy += pt.accuracy;
            }
        }
        curves += 1;
    }
    for pt in &mut curve_sum {
        pt.pct_strong /= curves as f64;
        pt.accuracy /= curves as f64;
    }
    RouterMetrics {
        n,
        weak_acc: mean_pct(weak),
        strong_acc: mean_pct(strong),
        apgr: apgr.mean(),
        cpt50_pct: cpt50.mean(),
        cpt80_pct: cpt80.mean(),
        points: curve_sum,
    }
}

/// Running mean of the defined values of an optional metric.
#[derive(Default)]
struct MeanOf {
    sum: f64,
    count: usize,
}

impl MeanOf {
    fn add(&mut self, value: Option<f64>) {
        if let Some(v) = value {
            self.sum += v;
            self.count += 1;
        }
    }

    fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }
}

/// splitmix64 (Steele, Lea & Flood 2014): tiny, fast, good enough for random baselines.
struct SplitMix64(u64);

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`, 53 random bits.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// One bin of a reliability table: the predictions whose probability falls in `[from, to)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReliabilityBin {
    pub from: f64,
    pub to: f64,
    pub n: usize,
    /// Mean predicted probability in the bin.
    pub mean_confidence: f64,
    /// Mean outcome in the bin.
    pub adequate_rate: f64,
}

/// A reliability table of predicted probabilities `probs` against `outcomes` (0/1 or soft, in
/// `[0, 1]`) in `bins` equal-width bins over `[0, 1]`, empty bins left out.
///
/// Bin `j` holds probabilities in `[j / bins, (j + 1) / bins)`, the last bin also holds 1;
/// probabilities outside `[0, 1]` are clamped into it for binning (their mean is of the raw
/// values). Pairs are taken up to the shorter input and pairs with a non-finite value are
/// skipped; `bins == 0` gives no bins.
pub fn reliability(probs: &[f64], outcomes: &[f64], bins: usize) -> Vec<ReliabilityBin> {
    if bins == 0 {
        return Vec::new();
    }
    let mut acc = vec![(0usize, 0.0f64, 0.0f64); bins];
    for (&p, &y) in probs.iter().zip(outcomes) {
        if !(p.is_finite() && y.is_finite()) {
            continue;
        }
        let b = ((p.clamp(0.0, 1.0) * bins as f64).floor() as usize).min(bins - 1);
        acc[b].0 += 1;
        acc[b].1 += p;
        acc[b].2 += y;
    }
    acc.iter()
        .enumerate()
        .filter(|(_, a)| a.0 > 0)
        .map(|(b, &(n, sum_p, sum_y))| ReliabilityBin {
            from: b as f64 / bins as f64,
            to: (b + 1) as f64 / bins as f64,
            n,
            mean_confidence: sum_p / n as f64,
            adequate_rate: sum_y / n as f64,
        })
        .collect()
}

/// Expected calibration error of predicted probabilities `probs` against `outcomes`, over the
/// [`reliability`] table of `bins` bins: `ECE = sum over bins b of (|b| / n) * |mean(prob in
/// b) - mean(outcome in b)|`. With no usable pair (or `bins == 0`) the result is 0.
pub fn expected_calibration_error(probs: &[f64], outcomes: &[f64], bins: usize) -> f64 {
    let table = reliability(probs, outcomes, bins);
    let n: usize = table.iter().map(|b| b.n).sum();
    if n == 0 {
        return 0.0;
    }
    table
        .iter()
        .map(|b| b.n as f64 / n as f64 * (b.mean_confidence - b.adequate_rate).abs())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPS: f64 = 1e-9;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < EPS
    }

    /// Asserts the APGR, CPT(50%) and CPT(80%) of `m`.
    fn assert_metrics(m: &RouterMetrics, apgr: f64, cpt50: f64, cpt80: f64) {
        let got = m.apgr.unwrap();
        assert!(close(got, apgr), "{got}");
        assert!(close(m.cpt50_pct.unwrap(), cpt50), "{m:?}");
        assert!(close(m.cpt80_pct.unwrap(), cpt80), "{m:?}");
    }

    fn pt(pct_strong: f64, accuracy: f64) -> RoutePoint {
        RoutePoint {
            pct_strong,
            accuracy,
        }
    }

    #[test]
    fn quantile_edges_of_integers() {
        // n = 5, 4 bins: h = (5-1) * k/4 = k, so the edges are the order statistics themselves.
        assert_eq!(
            quantile_edges(&[5.0, 3.0, 1.0, 4.0, 2.0], 4),
            vec![1.0, 2.0, 3.0, 4.0, 5.0]
        );
        // n = 11 (0..=10), 10 bins: h = 10 * k/10 = k, edge k = k.
        let scores: Vec<f64> = (0..=10).rev().map(f64::from).collect();
        let expected: Vec<f64> = (0..=10).map(f64::from).collect();
        assert_eq!(quantile_edges(&scores, 10), expected);
    }

    #[test]
    fn quantile_edges_interpolate() {
        // [0, 10], 4 bins: h = 1 * k/4 -> 0, 2.5, 5, 7.5, 10.
        assert_eq!(
            quantile_edges(&[10.0, 0.0], 4),
            vec![0.0, 2.5, 5.0, 7.5, 10.0]
        );
        // [0.1, 0.2, 0.8, 0.9], 10 bins: h = 3k/10 = 0, .3, .6, .9, 1.2, 1.5, 1.8, 2.1, 2.4, 2.7, 3
        // -> 0.1, 0.13, 0.16, 0.19, 0.2+0.2*0.6, 0.2+0.5*0.6, 0.2+0.8*0.6, 0.81, 0.84, 0.87, 0.9.
        let expected = [
            0.1, 0.13, 0.16, 0.19, 0.32, 0.5, 0.68, 0.81, 0.84, 0.87, 0.9,
        ];
        let edges = quantile_edges(&[0.9, 0.1, 0.8, 0.2], 10);
        assert_eq!(edges.len(), 11);
        for (e, x) in edges.iter().zip(expected) {
            assert!(close(*e, x), "{edges:?}");
        }
        assert!(quantile_edges(&[], 10).is_empty());
        assert_eq!(quantile_edges(&[3.0], 2), vec![3.0, 3.0, 3.0]);
        assert_eq!(quantile_edges(&[3.0, 1.0], 0), vec![1.0]);
    }

    #[test]
    fn perfect_router_recovers_most_of_the_gap() {
        // Weak model right on prompts 0, 1; strong right on all. The router scores the prompts
        // the weak model fails (2, 3) highest. weak_acc = 50, strong_acc = 100.
        // Edges (see quantile_edges_interpolate): 0.1 | 0.13 0.16 0.19 | 0.32 0.5 0.68 |
        // 0.81 0.84 0.87 | 0.9 (with `>`).
        //   k=0      all 4 strong               -> (100, 100)
        //   k=1..3   0.2, 0.8, 0.9 strong       -> (75, 100)  x3
        //   k=4..6   0.8, 0.9 strong            -> (50, 100)  x3
        //   k=7..9   0.9 strong; prompt 2 weak=0 -> (25, 75)   x3
        //   k=10     none strong                -> (0, 50)
        // AUC = .25*(50+75)/2 + .25*(75+100)/2 + .25*100 + .25*100
        //     = 15.625 + 21.875 + 25 + 25 = 87.5; APGR = (87.5 - 50) / 50 = 0.75.
        let scores = [0.1, 0.2, 0.8, 0.9];
        let weak = [1.0, 1.0, 0.0, 0.0];
        let strong = [1.0, 1.0, 1.0, 1.0];
        let m = routellm_metrics(&scores, &weak, &strong).unwrap();
        assert_eq!(m.n, 4);
        assert!(close(m.weak_acc, 50.0) && close(m.strong_acc, 100.0));
        assert_eq!(m.points.len(), 11);
        let expected = [
            (0.0, 50.0),
            (25.0, 75.0),
            (25.0, 75.0),
            (25.0, 75.0),
            (50.0, 100.0),
            (50.0, 100.0),
            (50.0, 100.0),
            (75.0, 100.0),
            (75.0, 100.0),
            (75.0, 100.0),
            (100.0, 100.0),
        ];
        for (p, (x, y)) in m.points.iter().zip(expected) {
            assert!(
                close(p.pct_strong, x) && close(p.accuracy, y),
                "{:?}",
                m.points
            );
        }
        // CPT50: target 75, first reached at (25, 75) after (0, 50): 0 + 25/25 * 25 = 25.
        // CPT80: target 90, reached at (50, 100) after (25, 75): 25 + 15/25 * 25 = 40.
        assert_metrics(&m, 0.75, 25.0, 40.0);
    }

    #[test]
    fn inverted_router_recovers_less_than_random() {
        // Same outcomes, scores reversed: the router prefers strong on the prompts weak gets right.
        // Same edges. Prompts (score, weak): (0.9, 1) (0.8, 1) (0.2, 0) (0.1, 0).
        //   k=0      all strong                       -> (100, 100)
        //   k=1..3   0.9, 0.8, 0.2 strong; 0.1 weak=0 -> (75, 75)
        //   k=4..6   0.9, 0.8 strong; rest weak=0     -> (50, 50)
        //   k=7..9   0.9 strong; 0.8 weak=1; rest 0   -> (25, 50)
        //   k=10     none                             -> (0, 50)
        // AUC = .25*50 + .25*50 + .25*(50+75)/2 + .25*(75+100)/2 = 12.5+12.5+15.625+21.875 = 62.5
        // APGR = (62.5 - 50) / 50 = 0.25.
        let scores = [0.9, 0.8, 0.2, 0.1];
        let weak = [1.0, 1.0, 0.0, 0.0];
        let strong = [1.0; 4];
        let m = routellm_metrics(&scores, &weak, &strong).unwrap();
        // CPT50: target 75, first reached at (75, 75) after (50, 50): 50 + 25/25 * 25 = 75.
        // CPT80: target 90, reached at (100, 100) after (75, 75): 75 + 15/25 * 25 = 90.
        assert_metrics(&m, 0.25, 75.0, 90.0);
    }

    #[test]
    fn last_edge_uses_strict_comparison() {
        // All scores tie: every edge is 1. Edges k=0..9 (>=) send all 4 to strong -> (100, 75);
        // edge 10 (>) sends none -> (0, 25). AUC = (25 + 75) / 2 = 50; APGR = 25 / 50 = 0.5.
        let scores = [1.0; 4];
        let weak = [1.0, 0.0, 0.0, 0.0];
        let strong = [1.0, 1.0, 1.0, 0.0];
        let m = routellm_metrics(&scores, &weak, &strong).unwrap();
        assert!(close(m.points[0].pct_strong, 0.0) && close(m.points[0].accuracy, 25.0));
        assert!(
            m.points[1..].iter().all(|p| *p == pt(100.0, 75.0)),
            "{:?}",
            m.points
        );
        assert!(close(m.apgr.unwrap(), 0.5));
        // CPT50: target 50, between (0, 25) and (100, 75): 0 + 25/50 * 100 = 50.
        assert!(close(m.cpt50_pct.unwrap(), 50.0));
    }

    #[test]
    fn equal_accuracies_make_apgr_undefined() {
        // weak_acc = strong_acc = 50.
        let m = routellm_metrics(&[0.3, 0.7], &[1.0, 0.0], &[0.0, 1.0]).unwrap();
        assert!(close(m.weak_acc, 50.0) && close(m.strong_acc, 50.0));
        assert_eq!(m.apgr, None);
        let json = serde_json::to_value(&m).unwrap();
        assert!(json["apgr"].is_null());
        assert!(
            json.get("points").is_none(),
            "points must not be serialized: {json}"
        );
        assert_eq!(json["n"], 2);
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert_eq!(
            routellm_metrics(&[0.1, 0.2], &[1.0], &[1.0, 0.0]).unwrap_err(),
            ScoresError::LengthMismatch {
                scores: 2,
                weak: 1,
                strong: 2
            }
        );
        assert!(matches!(
            routellm_metrics(&[0.1], &[1.0], &[]),
            Err(ScoresError::LengthMismatch { .. })
        ));
        assert_eq!(
            routellm_metrics(&[], &[], &[]).unwrap_err(),
            ScoresError::Empty
        );
        assert!(matches!(
            routellm_metrics(&[0.1, f64::NAN], &[1.0, 0.0], &[1.0, 1.0]),
            Err(ScoresError::NonFinite {
                input: "score",
                index: 1,
                ..
            })
        ));
        assert!(matches!(
            routellm_metrics(&[0.1, 0.2], &[1.0, 0.0], &[f64::INFINITY, 1.0]),
            Err(ScoresError::NonFinite {
                input: "strong",
                index: 0,
                ..
            })
        ));
    }

    #[test]
    fn cpt_interpolates_on_a_hand_made_curve() {
        // weak 40, strong 90; given out of order to check the sort.
        let points = [
            pt(60.0, 80.0),
            pt(0.0, 40.0),
            pt(100.0, 90.0),
            pt(20.0, 50.0),
        ];
        // p=0.5: target 65; first >= at (60, 80) after (20, 50): 20 + 15/30 * 40 = 40.
        assert!(close(cpt(&points, 40.0, 90.0, 0.5).unwrap(), 40.0));
        // p=0.8: target 80, exactly (60, 80): 20 + 30/30 * 40 = 60.
        assert!(close(cpt(&points, 40.0, 90.0, 0.8).unwrap(), 60.0));
        // p=0.9: target 85; at (100, 90) after (60, 80): 60 + 5/10 * 40 = 80.
        assert!(close(cpt(&points, 40.0, 90.0, 0.9).unwrap(), 80.0));
        // p=0.1: target 45; at (20, 50) after (0, 40): 0 + 5/10 * 20 = 10.
        assert!(close(cpt(&points, 40.0, 90.0, 0.1).unwrap(), 10.0));
        // The first point already reaches target 40 + 0.5 * (30 - 40) = 35: its pct, 0.
        assert_eq!(cpt(&points, 40.0, 30.0, 0.5), Some(0.0));
        // Target 87.5 never reached without the last point.
        assert_eq!(cpt(&points[..2], 40.0, 90.0, 0.95), None);
        assert_eq!(cpt(&points, 40.0, 100.0, 0.95), None);
        assert_eq!(cpt(&[], 40.0, 90.0, 0.5), None);
        assert_eq!(cpt(&points, 40.0, 90.0, f64::NAN), None);
    }

    #[test]
    fn expected_calibration_error_by_hand() {
        // 2 bins. [0, .5): probs .1, .2 (mean .15), outcomes 0, 1 (mean .5) -> 2/4 * .35 = .175.
        // [.5, 1]: probs .7, .9 (mean .8), outcomes 1, 1 (mean 1) -> 2/4 * .2 = .1. ECE = .275.
        let ece = expected_calibration_error(&[0.1, 0.2, 0.7, 0.9], &[0.0, 1.0, 1.0, 1.0], 2);
        assert!(close(ece, 0.275), "{ece}");
        // Perfectly calibrated: prob .25 on four prompts, one of them right (soft outcomes ok).
        let ece = expected_calibration_error(&[0.25; 4], &[1.0, 0.0, 0.0, 0.0], 10);
        assert!(close(ece, 0.0), "{ece}");
        let ece = expected_calibration_error(&[0.25; 2], &[0.5, 0.0], 10);
        assert!(close(ece, 0.0), "{ece}");
        // prob 1.0 falls in the last bin: |1 - 0| = 1.
        assert!(close(expected_calibration_error(&[1.0], &[0.0], 10), 1.0));
        assert_eq!(expected_calibration_error(&[], &[], 10), 0.0);
        assert_eq!(expected_calibration_error(&[0.5], &[1.0], 0), 0.0);
    }

    #[test]
    fn random_router_recovers_about_half_the_gap() {
        let n = 2000;
        let mut rng = SplitMix64::new(0xDEAD_BEEF_u64.wrapping_mul(0x2545_F491_4F6C_DD1D));
        let weak: Vec<f64> = (0..n)
            .map(|_| f64::from(u8::from(rng.next_f64() < 0.4)))
            .collect();
        let strong: Vec<f64> = (0..n)
            .map(|_| f64::from(u8::from(rng.next_f64() < 0.75)))
            .collect();
        let m = random_router_metrics(&weak, &strong, 10);
        assert_eq!(m.n, n);
        assert!(m.strong_acc > m.weak_acc + 20.0, "{m:?}");
        let apgr = m.apgr.unwrap();
        assert!((apgr - 0.5).abs() < 0.1, "random router APGR {apgr}");
        let cpt50 = m.cpt50_pct.unwrap();
        assert!((cpt50 - 50.0).abs() < 5.0, "random router CPT50 {cpt50}");
        let cpt80 = m.cpt80_pct.unwrap();
        assert!((cpt80 - 80.0).abs() < 5.0, "random router CPT80 {cpt80}");
        assert_eq!(m.points.len(), 11);
        assert!(close(m.points[0].pct_strong, 0.0) && close(m.points[10].pct_strong, 100.0));
        // Deterministic.
        assert_eq!(random_router_metrics(&weak, &strong, 10).apgr, m.apgr);
        // Degenerate inputs do not panic.
        let empty = random_router_metrics(&[], &[], 5);
        assert_eq!((empty.n, empty.apgr, empty.points.len()), (0, None, 0));
        assert_eq!(random_router_metrics(&weak, &strong, 0).apgr, None);
    }

    #[test]
    fn reliability_bins_count_and_average() {
        let bins = reliability(&[0.55, 0.58, 0.95, 1.0], &[1.0, 0.0, 1.0, 1.0], 10);
        assert_eq!(bins.len(), 2, "{bins:?}");
        assert_eq!((bins[0].n, bins[1].n), (2, 2));
        assert!((bins[0].mean_confidence - 0.565).abs() < 1e-12);
        assert!((bins[0].adequate_rate - 0.5).abs() < 1e-12);
        assert!((bins[1].from - 0.9).abs() < 1e-12 && bins[1].adequate_rate == 1.0);
        assert!(reliability(&[], &[], 10).is_empty());
    }
}
