//! The production inference engine: rten (pure Rust, int8 MatMulInteger kernels).
//!
//! Weights are borrowed from the binary's static bytes and prepacked once at load; each run
//! is single-threaded (a Lambda has one vCPU share, and the router serves one query at a time).

use std::sync::Arc;

use rten::{Model, ModelOptions, NodeId, RunOptions, ThreadPool};
use rten_tensor::prelude::*;
use rten_tensor::{NdTensor, Tensor};

use super::{DIM, EmbedError, Engine, assets};

/// MiniLM on rten.
pub struct RtenEngine {
    model: Model,
    input_ids: NodeId,
    attention_mask: NodeId,
    token_type_ids: Option<NodeId>,
    output: NodeId,
    pool: Arc<ThreadPool>,
}

impl RtenEngine {
    /// The bundled int8 model.
    pub fn bundled() -> Result<Self, EmbedError> {
        let mut options = load_options();
        options.external_data_static(assets::MODEL_DATA_NAME, assets::MODEL_DATA);
        let model = options
            .load_static_slice(assets::MODEL_ONNX)
            .map_err(|e| EmbedError::ModelLoad(e.to_string()))?;
        Self::from_model(model)
    }

    /// Another MiniLM-shaped ONNX file, with its external data file (if any) beside it (a
    /// benchmark compares a candidate model with the bundled one in the same run).
    pub fn from_file(path: &std::path::Path) -> Result<Self, EmbedError> {
        let model = load_options()
            .load_file(path)
            .map_err(|e| EmbedError::ModelLoad(format!("{}: {e}", path.display())))?;
        Self::from_model(model)
    }

    /// Wraps a loaded MiniLM-shaped model (inputs `input_ids`, `attention_mask`,
    /// optional `token_type_ids`; first output the last hidden state). The engine runs one
    /// unpadded sequence, so the mask is all ones: the bundled model, rewritten for exactly
    /// that (`models/build_minilm.py`), declares the input and does not read it.
    pub fn from_model(model: Model) -> Result<Self, EmbedError> {
        let node = |name: &str| {
            model
                .find_node(name)
                .ok_or_else(|| EmbedError::ModelLoad(format!("model has no input `{name}`")))
        };
        let input_ids = node("input_ids")?;
        let attention_mask = node("attention_mask")?;
        let token_type_ids = model.find_node("token_type_ids");
        let output = *model
            .output_ids()
            .first()
            .ok_or_else(|| EmbedError::ModelLoad("model has no output".into()))?;
        Ok(Self {
            model,
            input_ids,
            attention_mask,
            token_type_ids,
            output,
            pool: Arc::new(ThreadPool::with_num_threads(1)),
        })
    }
}

/// How every model of this engine loads: all operators, weights prepacked once at load.
fn load_options() -> ModelOptions {
    let mut options = ModelOptions::with_all_ops();
    options.prepack_weights(true);
    options
}

impl Engine for RtenEngine {
    fn hidden_states(&self, ids: &[u32]) -> Result<Vec<f32>, EmbedError> {
        let n = ids.len();
        // rten runs ONNX int64 tensors as i32.
        let ids_t = NdTensor::from_data([1, n], ids.iter().map(|&i| i as i32).collect::<Vec<_>>());
        let mask = NdTensor::full([1, n], 1i32);
        let types = NdTensor::full([1, n], 0i32);
        let mut inputs = vec![
            (self.input_ids, ids_t.view().into()),
            (self.attention_mask, mask.view().into()),
        ];
        if let Some(tt) = self.token_type_ids {
            inputs.push((tt, types.view().into()));
        }
        let opts = RunOptions::default().with_thread_pool(Some(self.pool.clone()));
        let [out] = self
            .model
            .run_n(inputs, [self.output], Some(opts))
            .map_err(|e| EmbedError::Inference(e.to_string()))?;
        let out: Tensor<f32> = out
            .try_into()
            .map_err(|e: rten::TryFromValueError| EmbedError::Inference(e.to_string()))?;
        let shape = out.shape().to_vec();
        if shape.len() != 3 || shape[0] != 1 || shape[1] != n || shape[2] != DIM {
            return Err(EmbedError::OutputShape(shape));
        }
        Ok(out.into_data())
    }
}
