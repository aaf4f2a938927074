//! Sentence embeddings of queries: all-MiniLM-L6-v2 (int8), mean-pooled and L2-normalised.
//!
//! The pipeline is the one sentence-transformers runs: WordPiece tokenisation with `[CLS]`/`[SEP]`,
//! truncation to 256 tokens, no padding, the transformer, mean pooling over tokens, L2
//! normalisation. The model and tokenizer are bundled in the binary ([`assets`]), so a Lambda
//! needs no file beside its `bootstrap`. The inference engine sits behind [`Engine`]; the one
//! in production is rten ([`rten_engine`]).

pub mod assets;
pub mod parity;
pub mod rten_engine;
mod tokenize;

use std::sync::Arc;

pub use tokenize::{Tokenized, Window, WordPiece};

/// Embedding width of all-MiniLM-L6-v2.
pub const DIM: usize = 384;
/// Sequence cap, in tokens including `[CLS]` and `[SEP]` (sentence-transformers' `max_seq_length`).
pub const MAX_TOKENS: usize = 256;

/// Errors of the embedding pipeline.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("tokenizer could not be loaded: {0}")]
    TokenizerLoad(String),
    #[error("tokenization failed: {0}")]
    Tokenize(String),
    #[error("embedding model could not be loaded: {0}")]
    ModelLoad(String),
    #[error("embedding model failed to run: {0}")]
    Inference(String),
    #[error("embedding model returned an unexpected output shape {0:?}")]
    OutputShape(Vec<usize>),
}

/// An L2-normalised sentence embedding.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding(pub Vec<f32>);

impl Embedding {
    /// Cosine similarity; both vectors are unit length, so this is the dot product.
    pub fn cosine(&self, other: &Embedding) -> f32 {
        self.0.iter().zip(&other.0).map(|(a, b)| a * b).sum()
    }
}

/// A transformer that maps token ids to per-token hidden states (`[tokens x DIM]`, row-major).
///
/// The one seam between the pipeline and an inference engine: implement it to try another.
pub trait Engine: Send + Sync {
    /// Runs the model on one sequence (batch 1, no padding).
    fn hidden_states(&self, ids: &[u32]) -> Result<Vec<f32>, EmbedError>;
}

/// Tokenizer + engine + pooling. Built once at init; `&self` methods, safe to share across threads.
pub struct Embedder {
    tokenizer: Arc<WordPiece>,
    engine: Box<dyn Engine>,
}

/// A query's embedding and its token counts.
#[derive(Debug, Clone)]
pub struct EmbeddedQuery {
    pub embedding: Embedding,
    /// Tokens the model saw (at most [`MAX_TOKENS`], specials included).
    pub model_tokens: usize,
    /// Tokens of the whole text (specials included), for cost estimates of over-long queries.
    pub total_tokens: usize,
}

impl Embedder {
    /// The bundled model on rten, loading tokenizer and model on two threads at once.
    pub fn bundled() -> Result<Self, EmbedError> {
        let (tokenizer, engine) = std::thread::scope(|s| {
            let tok = s.spawn(WordPiece::bundled);
            let engine = rten_engine::RtenEngine::bundled();
            let tok = tok
                .join()
                .map_err(|_| EmbedError::TokenizerLoad("tokenizer thread panicked".into()))
                .and_then(|t| t);
            (tok, engine)
        });
        Ok(Self::new(Arc::new(tokenizer?), Box::new(engine?)))
    }

    /// Assembles an embedder from parts (tests and the engine benchmark use this).
    pub fn new(tokenizer: Arc<WordPiece>, engine: Box<dyn Engine>) -> Self {
        Self { tokenizer, engine }
    }

    /// The tokenizer, shared (the router counts tokens with it too).
    pub fn tokenizer(&self) -> &Arc<WordPiece> {
        &self.tokenizer
    }

    /// Embeds one text, truncated as sentence-transformers truncates.
    pub fn embed(&self, text: &str) -> Result<EmbeddedQuery, EmbedError> {
        self.embed_window(text, Window::Head)
    }

    /// Embeds one text, an over-long one truncated as `window` says.
    pub fn embed_window(&self, text: &str, window: Window) -> Result<EmbeddedQuery, EmbedError> {
        let tokens = self.tokenizer.encode_window(text, window)?;
        let embedding = self.embed_ids(&tokens.ids)?;
        Ok(EmbeddedQuery {
            embedding,
            model_tokens: tokens.ids.len(),
            total_tokens: tokens.total_tokens,
        })
    }

    /// Embeds an already tokenized (and truncated) sequence.
    pub fn embed_ids(&self, ids: &[u32]) -> Result<Embedding, EmbedError> {
        let hidden = self.engine.hidden_states(ids)?;
        Ok(mean_pool_normalize(&hidden, ids.len()))
    }
}

/// Mean over the token rows, then L2 normalisation (a zero vector stays zero).
pub fn mean_pool_normalize(hidden: &[f32], tokens: usize) -> Embedding {
    let mut sum = vec![0f32; DIM];
    for row in hidden.chunks_exact(DIM).take(tokens) {
        for (s, v) in sum.iter_mut().zip(row) {
            *s += v;
        }
    }
    let norm = sum.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        sum.iter_mut().for_each(|v| *v /= norm);
    }
    Embedding(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_pool_averages_rows_then_normalises() {
        let mut hidden = vec![0f32; 2 * DIM];
        hidden[0] = 3.0; // row 0, dim 0
        hidden[DIM] = 1.0; // row 1, dim 0
        hidden[DIM + 1] = 4.0; // row 1, dim 1
        let e = mean_pool_normalize(&hidden, 2);
        // mean = (2, 2, 0...) -> normalised (0.7071, 0.7071)
        assert!((e.0[0] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        assert!((e.0[1] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        assert!((e.cosine(&e) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn zero_hidden_states_do_not_divide_by_zero() {
        let e = mean_pool_normalize(&[0.0; DIM], 1);
        assert!(e.0.iter().all(|v| *v == 0.0));
    }
}
