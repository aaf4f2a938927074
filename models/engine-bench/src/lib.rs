//! Engine comparison support: MiniLM on tract-onnx, behind the same [`Engine`] seam as the
//! production rten engine, so `benches/engines.rs` can run both on the same inputs.
//!
//! The design first named tract-onnx; rten replaced it because tract measured 1.4-2.6x over
//! the cold-start budget. This crate keeps tract buildable so that ratio stays on record.
//! It is a benchmark crate only: nothing in production links it.

use anyhow::{anyhow, bail, ensure};
use tract_onnx::prelude::*;

use tierwise::routing::embed::{DIM, EmbedError, Engine};

/// The bundled model's graph in the repository (its weights file beside it): what tract and
/// onnxruntime load, the files the binary embeds for rten.
pub fn bundled_model_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../minilm/model_int8.onnx")
}

/// The ONNX inputs MiniLM takes, in the order [`TractEngine`] feeds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    Ids,
    Mask,
    Types,
}

/// MiniLM on tract-onnx: the bundled int8 ONNX, optimised for batch 1 and a symbolic
/// sequence length `S`, run on tract's default single-thread executor.
pub struct TractEngine {
    plan: Arc<TypedRunnableModel>,
    /// What to feed at each model input, in the model's input order.
    inputs: Vec<Input>,
}

impl TractEngine {
    /// The bundled int8 model, from its files in `models/minilm/` (the graph and its external
    /// weights: tract reads external data only from a path) to runnable.
    pub fn bundled() -> Result<Self, EmbedError> {
        Self::from_path(&bundled_model_path())
    }

    /// Loads a MiniLM-shaped ONNX file, with its external data (if any) beside it (inputs
    /// `input_ids`, `attention_mask`, optional `token_type_ids`, all int64 `[batch, seq]`;
    /// first output `[batch, seq, 384]`).
    pub fn from_path(path: &std::path::Path) -> Result<Self, EmbedError> {
        Self::load(path)
            .map_err(|e| EmbedError::ModelLoad(format!("tract: {}: {e:#}", path.display())))
    }

    fn load(path: &std::path::Path) -> TractResult<Self> {
        let mut model = tract_onnx::onnx()
            .with_ignore_output_shapes(true)
            .with_ignore_value_info(true)
            .model_for_path(path)?;
        let s = model.symbols.sym("S");
        let mut inputs = Vec::new();
        for (ix, outlet) in model.input_outlets()?.to_vec().into_iter().enumerate() {
            let name = model.node(outlet.node).name.clone();
            let input = match name.as_str() {
                "input_ids" => Input::Ids,
                "attention_mask" => Input::Mask,
                "token_type_ids" => Input::Types,
                other => bail!("unexpected model input `{other}`"),
            };
            inputs.push(input);
            let fact = InferenceFact::dt_shape(i64::datum_type(), tvec![1.to_dim(), s.to_dim()]);
            model.set_input_fact(ix, fact)?;
        }
        for needed in [Input::Ids, Input::Mask] {
            ensure!(inputs.contains(&needed), "model has no {needed:?} input");
        }
        // Only the hidden states are read: drop any other output (e.g. a pooled one).
        let first = *model
            .output_outlets()?
            .first()
            .ok_or_else(|| anyhow!("model has no output"))?;
        model.select_output_outlets(&[first])?;
        let plan = model.into_optimized()?.into_runnable()?;
        Ok(Self { plan, inputs })
    }
}

impl Engine for TractEngine {
    fn hidden_states(&self, ids: &[u32]) -> Result<Vec<f32>, EmbedError> {
        let n = ids.len();
        let run = || -> TractResult<Vec<f32>> {
            let feed = self
                .inputs
                .iter()
                .map(|input| {
                    let data: Vec<i64> = match input {
                        Input::Ids => ids.iter().map(|&i| i64::from(i)).collect(),
                        Input::Mask => vec![1; n],
                        Input::Types => vec![0; n],
                    };
                    Ok(Tensor::from_shape(&[1, n], &data)?.into_tvalue())
                })
                .collect::<TractResult<TVec<TValue>>>()?;
            let out = self.plan.run(feed)?;
            let hidden = out
                .first()
                .ok_or_else(|| anyhow!("model returned no output"))?;
            let shape = hidden.shape().to_vec();
            if shape != [1, n, DIM] {
                bail!("unexpected output shape {shape:?}");
            }
            Ok(hidden
                .to_plain_array_view::<f32>()?
                .iter()
                .copied()
                .collect())
        };
        run().map_err(|e| EmbedError::Inference(format!("tract: {e:#}")))
    }
}
