//! Measurement helpers shared by the benchmarks (`shared/benches`, `tests/benches`,
//! `models/engine-bench`): exact-length token sequences, timing and order statistics.
//! Not used on any serving path.

use std::time::Instant;

/// `[SEP]` of the bundled vocabulary.
pub const SEP: u32 = 102;

/// The first `n - 1` ids of `ids` (which start with `[CLS]`), then `[SEP]`: exactly `n` tokens.
pub fn cut(ids: &[u32], n: usize) -> Vec<u32> {
    let mut v: Vec<u32> = ids.iter().take(n.saturating_sub(1)).copied().collect();
    v.push(SEP);
    v
}

/// Milliseconds since `since`.
pub fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

/// Rounds to 4 decimals (for JSON output).
pub fn round(v: f64) -> f64 {
    (v * 1e4).round() / 1e4
}

/// Measured runs from `TIERWISE_BENCH_ITERS` (unset: `None`; not a positive integer: error).
pub fn iters_override() -> Result<Option<usize>, String> {
    match std::env::var("TIERWISE_BENCH_ITERS") {
        Ok(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .map(Some)
            .ok_or_else(|| format!("TIERWISE_BENCH_ITERS={v:?} is not a positive integer")),
        Err(_) => Ok(None),
    }
}

/// Order statistics of a sample (nearest-rank percentiles).
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    pub p50: f64,
    pub p99: f64,
    pub mean: f64,
    pub min: f64,
}

impl Stats {
    /// Statistics of `times` (NaN for an empty sample).
    pub fn of(times: &[f64]) -> Self {
        let mut t = times.to_vec();
        t.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            let i = ((p * t.len() as f64).ceil() as usize).clamp(1, t.len().max(1)) - 1;
            t.get(i).copied().unwrap_or(f64::NAN)
        };
        Self {
            p50: rank(0.50),
            p99: rank(0.99),
            mean: t.iter().sum::<f64>() / t.len().max(1) as f64,
            min: t.first().copied().unwrap_or(f64::NAN),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s = Stats::of(&(1..=100).map(f64::from).collect::<Vec<_>>());
        assert_eq!((s.p50, s.p99, s.min), (50.0, 99.0, 1.0));
        assert!((s.mean - 50.5).abs() < 1e-12);
        assert!(Stats::of(&[]).p50.is_nan());
        assert_eq!(cut(&[101, 7, 8, 9, 102], 3), vec![101, 7, 102]);
    }
}
