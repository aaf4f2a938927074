//! Parity of the bundled int8 embedder against full-precision reference vectors, and which
//! int8 kernel path this CPU takes (the numerics differ by path, so a result names its path).
//!
//! Used by the parity test, by `tierwise parity` (which `tests/arm64.sh` runs under
//! emulation) and by anyone checking a new CPU: cosine min >= [`MIN_COSINE`] and mean >=
//! [`MEAN_COSINE`] over the reference texts, with the token counts equal.

use serde::{Deserialize, Serialize};

use super::{EmbedError, Embedder, Embedding};

/// Lowest cosine accepted for any reference text.
pub const MIN_COSINE: f32 = 0.98;
/// Lowest mean cosine accepted.
pub const MEAN_COSINE: f32 = 0.99;

/// One reference line: `{"text", "tokens", "embedding": [384 floats]}`.
#[derive(Debug, Clone, Deserialize)]
pub struct Reference {
    pub text: String,
    pub tokens: usize,
    pub embedding: Vec<f32>,
}

/// What a parity run found.
#[derive(Debug, Clone, Serialize)]
pub struct ParityReport {
    pub texts: usize,
    pub cosine_min: f32,
    pub cosine_mean: f32,
    /// The first 60 characters of the worst text.
    pub worst: String,
    /// Texts whose token count differs from the reference's.
    pub token_mismatches: Vec<String>,
    /// The int8 kernel path of this CPU ([`kernel_path`]).
    pub kernel: &'static str,
}

impl ParityReport {
    /// Whether the run meets the thresholds.
    pub fn passes(&self) -> bool {
        self.token_mismatches.is_empty()
            && self.cosine_min >= MIN_COSINE
            && self.cosine_mean >= MEAN_COSINE
    }
}

/// Embeds every reference text and compares.
pub fn check(embedder: &Embedder, refs: &[Reference]) -> Result<ParityReport, EmbedError> {
    let mut min = (f32::INFINITY, String::new());
    let mut sum = 0.0f32;
    let mut mismatches = Vec::new();
    for r in refs {
        let q = embedder.embed(&r.text)?;
        if q.model_tokens != r.tokens {
            mismatches.push(r.text.chars().take(60).collect());
        }
        let norm = r
            .embedding
            .iter()
            .map(|v| v * v)
            .sum::<f32>()
            .sqrt()
            .max(1e-12);
        let reference = Embedding(r.embedding.iter().map(|v| v / norm).collect());
        let c = q.embedding.cosine(&reference);
        sum += c;
        if c < min.0 {
            min = (c, r.text.chars().take(60).collect());
        }
    }
    Ok(ParityReport {
        texts: refs.len(),
        cosine_min: min.0,
        cosine_mean: sum / refs.len().max(1) as f32,
        worst: min.1,
        token_mismatches: mismatches,
        kernel: kernel_path(),
    })
}

/// The int8 GEMM path rten takes on this CPU: `x86_64-avx512-vnni`, `x86_64-avx512` (no VNNI),
/// `x86_64-avx2`, `aarch64-i8mm`, `aarch64-dotprod`, `aarch64-neon`, or `generic`.
pub fn kernel_path() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw") {
            if is_x86_feature_detected!("avx512vnni") {
                return "x86_64-avx512-vnni";
            }
            return "x86_64-avx512";
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return "x86_64-avx2";
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        if std::arch::is_aarch64_feature_detected!("i8mm") {
            return "aarch64-i8mm";
        }
        if std::arch::is_aarch64_feature_detected!("dotprod") {
            return "aarch64-dotprod";
        }
        return "aarch64-neon";
    }
    #[allow(
        unreachable_code,
        reason = "unreachable on aarch64 (every arm above returns), the answer on every other target"
    )]
    "generic"
}
