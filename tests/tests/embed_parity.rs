#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Parity of the bundled int8 MiniLM against full-precision sentence-transformers vectors
//! (`tests/data/minilm_reference.jsonl`, 57 texts), and checks of the bundled artifacts.

use tierwise::routing::embed::parity::{self, Reference};
use tierwise::routing::embed::{Embedder, assets};

fn references() -> Vec<Reference> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/minilm_reference.jsonl");
    std::fs::read_to_string(path)
        .expect("reading the reference vectors")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a reference line"))
        .collect()
}

/// Parity on the kernel path of the CPU that runs the test (named in the output). The other
/// paths are checked by `tests/kernels.sh` (x86-64 AVX2 and generic, under qemu) and
/// `tests/arm64.sh` (aarch64, under qemu).
#[test]
fn int8_model_matches_full_precision_reference() {
    let embedder = Embedder::bundled().expect("bundled embedder");
    let refs = references();
    assert_eq!(refs.len(), 57, "the reference file has 57 texts");
    let r = parity::check(&embedder, &refs).expect("embedding");
    eprintln!(
        "parity over {} texts on {}: cosine min {:.4} mean {:.4}",
        r.texts, r.kernel, r.cosine_min, r.cosine_mean
    );
    assert!(
        r.token_mismatches.is_empty(),
        "token counts differ: {:?}",
        r.token_mismatches
    );
    assert_eq!(parity::MIN_COSINE, 0.98);
    assert_eq!(parity::MEAN_COSINE, 0.99);
    assert!(
        r.cosine_min >= 0.98,
        "{}: cosine min {:.4} < 0.98 (worst: {:?})",
        r.kernel,
        r.cosine_min,
        r.worst
    );
    assert!(
        r.cosine_mean >= 0.99,
        "{}: cosine mean {:.4} < 0.99",
        r.kernel,
        r.cosine_mean
    );
    assert!(r.passes());
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
        (assets::MODEL_DATA_NAME, assets::MODEL_DATA),
        ("tokenizer.json", assets::TOKENIZER_JSON),
    ] {
        let line = sums
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("{name} missing from SHA256SUMS"));
        let digest = Sha256::digest(bytes);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert!(
            line.starts_with(&hex),
            "{name}: sha256 {hex} not as recorded: {line}"
        );
    }
}

/// The weights stay outside the graph, aligned: rten borrows them from the binary only then
/// (weights inside the protobuf are copied to the heap at load, ~23 MB of peak RSS).
#[test]
fn bundled_weights_are_external_and_aligned_for_borrowing() {
    assert!(
        assets::MODEL_ONNX.len() < 1 << 20,
        "model_int8.onnx is {} bytes: the weights went back into the graph (models/build_minilm.py writes them to {})",
        assets::MODEL_ONNX.len(),
        assets::MODEL_DATA_NAME
    );
    assert!(
        assets::MODEL_DATA.len() > 20 << 20,
        "the weights file is too small"
    );
    assert_eq!(
        assets::MODEL_DATA.as_ptr() as usize % 8,
        0,
        "the embedded weights are not 8-byte aligned"
    );
}
