//! [`OptimizerState`]: everything needed to resume training exactly.
//!
//! The state is the optimizer kind, the number of steps taken, the scalar
//! hyperparameters (learning rate included) and the per-parameter buffers,
//! each named `<parameter name>.<buffer>`: `fc1.weight.exp_avg`,
//! `fc1.weight.exp_avg_sq`, `fc1.weight.step` (the per-parameter step count,
//! an `i64` tensor of shape `[1]`). Buffers have the parameter's shape and
//! dtype.
//!
//! For a file, [`OptimizerState::to_tensors`] gives the tensors and
//! [`OptimizerState::metadata`] the string metadata (keys prefixed with
//! `optim.`); [`OptimizerState::from_tensors`] rebuilds the state from both.
//! Floats are written in Rust's shortest round-trip form, so a reload is
//! bit-exact.
//!
//! ```
//! use heft_optim::OptimizerState;
//! use heft_tensor::{DType, Tensor};
//! # fn main() -> heft_optim::Result<()> {
//! let state = OptimizerState {
//!     kind: "adam".into(),
//!     step: 3,
//!     hyper: vec![("lr".into(), 1e-3)],
//!     buffers: vec![("w.exp_avg".into(), Tensor::zeros(&[2], DType::F32))],
//! };
//! let back = OptimizerState::from_tensors(state.to_tensors(), &state.metadata())?;
//! assert_eq!(back.step, 3);
//! assert_eq!(back.hyper, state.hyper);
//! assert_eq!(back.kind, "adam");
//! # Ok(())
//! # }
//! ```

use crate::error::{OptimError, Result};
use heft_tensor::Tensor;

/// Metadata key of the optimizer kind.
pub const META_KIND: &str = "optim.kind";
/// Metadata key of the step count.
pub const META_STEP: &str = "optim.step";
/// Prefix of the metadata keys of hyperparameters (`optim.hyper.lr`).
pub const META_HYPER_PREFIX: &str = "optim.hyper.";

/// A snapshot of an optimizer: see the [module docs](self).
#[derive(Clone, Debug, Default)]
pub struct OptimizerState {
    /// The optimizer: `sgd`, `adam`, `adamw`, `rmsprop` or `adagrad`.
    pub kind: String,
    /// Number of `step` calls made.
    pub step: u64,
    /// Scalar hyperparameters (`lr`, `beta1`, ...; flags as 0 or 1).
    pub hyper: Vec<(String, f64)>,
    /// Per-parameter buffers, named `<parameter>.<buffer>`.
    pub buffers: Vec<(String, Tensor)>,
}

impl OptimizerState {
    /// The buffers as named tensors (cheap clones sharing storage).
    pub fn to_tensors(&self) -> Vec<(String, Tensor)> {
        self.buffers.clone()
    }

    /// Kind, step count and hyperparameters as string metadata.
    pub fn metadata(&self) -> Vec<(String, String)> {
        let mut m = vec![
            (META_KIND.to_string(), self.kind.clone()),
            (META_STEP.to_string(), self.step.to_string()),
        ];
        for (k, v) in &self.hyper {
            m.push((format!("{META_HYPER_PREFIX}{k}"), format!("{v:?}")));
        }
        m
    }

    /// Rebuild a state from [`to_tensors`](Self::to_tensors) and
    /// [`metadata`](Self::metadata) output. Metadata keys without the
    /// `optim.` prefix are ignored, so the list may hold a model file's own.
    pub fn from_tensors(
        tensors: Vec<(String, Tensor)>,
        metadata: &[(String, String)],
    ) -> Result<Self> {
        let mut kind = None;
        let mut step = None;
        let mut hyper = Vec::new();
        for (k, v) in metadata {
            if k == META_KIND {
                kind = Some(v.clone());
            } else if k == META_STEP {
                step = Some(v.parse::<u64>().map_err(|e| {
                    OptimError::State(format!("`{META_STEP}` = `{v}` is not a step count: {e}"))
                })?);
            } else if let Some(name) = k.strip_prefix(META_HYPER_PREFIX) {
                let x = v.parse::<f64>().map_err(|e| {
                    OptimError::State(format!("`{k}` = `{v}` is not a number: {e}"))
                })?;
                hyper.push((name.to_string(), x));
            }
        }
        Ok(OptimizerState {
            kind: kind.ok_or_else(|| OptimError::State(format!("metadata lacks `{META_KIND}`")))?,
            step: step.ok_or_else(|| OptimError::State(format!("metadata lacks `{META_STEP}`")))?,
            hyper,
            buffers: tensors,
        })
    }

    /// A hyperparameter by name.
    pub fn hyper(&self, name: &str) -> Option<f64> {
        self.hyper.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
    }

    /// A buffer by full name (`fc1.weight.exp_avg`).
    pub fn buffer(&self, name: &str) -> Option<&Tensor> {
        self.buffers.iter().find(|(k, _)| k == name).map(|(_, t)| t)
    }
}
