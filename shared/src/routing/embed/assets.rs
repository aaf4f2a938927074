//! The bundled model artifacts (built by `models/build.sh`, checksums in `models/minilm/SHA256SUMS`).
//!
//! Compiled into the binary: SAM's cargo-lambda build ships only `bootstrap`. The weights
//! are a separate, 64-byte aligned blob (ONNX external data) so rten borrows them from the
//! static bytes; weights inside the protobuf would be copied to the heap at load.

/// all-MiniLM-L6-v2, per-channel int8 (ONNX, MatMulInteger): the graph, which names
/// [`MODEL_DATA_NAME`] for its weights.
pub static MODEL_ONNX: &[u8] = include_bytes!("../../../../models/minilm/model_int8.onnx");
/// The file name the graph gives its weights (ONNX external data `location`).
pub const MODEL_DATA_NAME: &str = "model_int8.onnx.data";
/// The graph's weights, aligned for any element type.
pub static MODEL_DATA: &[u8] =
    rten::include_external_data!("../../../../models/minilm/model_int8.onnx.data");
/// The model's WordPiece tokenizer (Hugging Face `tokenizer.json`).
pub static TOKENIZER_JSON: &[u8] = include_bytes!("../../../../models/minilm/tokenizer.json");
/// `sha256  file` lines of the three artifacts above.
pub static SHA256SUMS: &str = include_str!("../../../../models/minilm/SHA256SUMS");
