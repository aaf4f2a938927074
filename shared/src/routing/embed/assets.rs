//! The bundled model artifacts (built by `models/build.sh`, checksums in `models/minilm/SHA256SUMS`).
//!
//! Compiled into the binary with `include_bytes!`: SAM's cargo-lambda build ships only
//! `bootstrap`, and static bytes let rten borrow the weights instead of copying them.

/// all-MiniLM-L6-v2, per-channel int8 (ONNX, MatMulInteger).
pub static MODEL_ONNX: &[u8] = include_bytes!("../../../../models/minilm/model_int8.onnx");
/// The model's WordPiece tokenizer (Hugging Face `tokenizer.json`).
pub static TOKENIZER_JSON: &[u8] = include_bytes!("../../../../models/minilm/tokenizer.json");
/// `sha256  file` lines of the two artifacts above.
pub static SHA256SUMS: &str = include_str!("../../../../models/minilm/SHA256SUMS");
