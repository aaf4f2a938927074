#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Parity of the bundled int8 MiniLM against full-precision sentence-transformers vectors
//! (`tests/data/minilm_reference.jsonl`, 57 texts), and checks of the bundled artifacts.

use serde::Deserialize;
use tierwise::embed::{DIM, Embedder, Embedding, assets};

#[derive(Deserialize)]
struct Reference {
    text: String,
    tokens: usize,
    embedding: Vec<f32>,
}

fn references() -> Vec<Reference> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/minilm_reference.jsonl");
    std::fs::read_to_string(path)
        .expect("reading the reference vectors")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a reference line"))
        .collect()
}

#[test]
fn int8_model_matches_full_precision_reference() {
    let embedder = Embedder::bundled().expect("bundled embedder");
    let refs = references();
    assert_eq!(refs.len(), 57, "the reference file has 57 texts");
    let mut cosines = Vec::new();
    for r in &refs {
        let q = embedder.embed(&r.text).expect("embedding");
        assert_eq!(q.model_tokens, r.tokens, "token count of {:?}", r.text);
        assert_eq!(q.embedding.0.len(), DIM);
        let norm: f32 = r.embedding.iter().map(|v| v * v).sum::<f32>().sqrt();
        let reference = Embedding(r.embedding.iter().map(|v| v / norm).collect());
        cosines.push((q.embedding.cosine(&reference), r.text.clone()));
    }
    let min = cosines.iter().map(|c| c.0).fold(f32::INFINITY, f32::min);
    let mean = cosines.iter().map(|c| c.0).sum::<f32>() / cosines.len() as f32;
    eprintln!(
        "parity over {} texts: cosine min {min:.4} mean {mean:.4}",
        cosines.len()
    );
    let worst = cosines
        .iter()
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .expect("non-empty");
    assert!(
        min >= 0.98,
        "cosine min {min:.4} < 0.98 (worst: {:?})",
        worst.1
    );
    assert!(mean >= 0.99, "cosine mean {mean:.4} < 0.99");
}

#[test]
fn embedding_is_deterministic_and_unit_length() {
    let embedder = Embedder::bundled().expect("bundled embedder");
    let a = embedder
        .embed("Classify the sentiment of this review.")
        .expect("a");
    let b = embedder
        .embed("Classify the sentiment of this review.")
        .expect("b");
    assert_eq!(a.embedding, b.embedding);
    let norm: f32 = a.embedding.0.iter().map(|v| v * v).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
    // Related texts are closer than unrelated ones.
    let c = embedder
        .embed("Is this product review positive or negative?")
        .expect("c");
    let d = embedder
        .embed("Prove that there are infinitely many primes.")
        .expect("d");
    assert!(a.embedding.cosine(&c.embedding) > a.embedding.cosine(&d.embedding) + 0.2);
}

#[test]
fn embedder_is_shareable_across_threads() {
    let embedder = std::sync::Arc::new(Embedder::bundled().expect("bundled embedder"));
    let texts = ["first query", "second, different query", "third one"];
    let handles: Vec<_> = texts
        .iter()
        .map(|t| {
            let e = embedder.clone();
            let t = t.to_string();
            std::thread::spawn(move || e.embed(&t).expect("embedding").embedding)
        })
        .collect();
    for (h, t) in handles.into_iter().zip(texts) {
        let threaded = h.join().expect("thread");
        assert_eq!(threaded, embedder.embed(t).expect("embedding").embedding);
    }
}

#[test]
fn bundled_artifacts_match_their_recorded_checksums() {
    use sha2::{Digest, Sha256};
    let sums = assets::SHA256SUMS;
    for (name, bytes) in [
        ("model_int8.onnx", assets::MODEL_ONNX),
        ("tokenizer.json", assets::TOKENIZER_JSON),
    ] {
        let line = sums
            .lines()
            .find(|l| l.ends_with(name))
            .unwrap_or_else(|| panic!("{name} missing from SHA256SUMS"));
        let digest = Sha256::digest(bytes);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert!(
            line.starts_with(&hex),
            "{name}: sha256 {hex} not as recorded: {line}"
        );
    }
}
