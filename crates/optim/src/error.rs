//! The error type of heft-optim.

use heft_tensor::{DType, Dims, TensorError};

/// Everything that can go wrong stepping an optimizer, clipping gradients or
/// restoring optimizer state.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OptimError {
    /// A tensor op failed.
    #[error(transparent)]
    Tensor(#[from] TensorError),
    /// A gradient's shape or dtype differs from its parameter's.
    #[error("gradient of `{param}` is {grad_dtype} {grad_shape} but the parameter is {param_dtype} {param_shape}")]
    GradMismatch {
        /// The parameter's name.
        param: String,
        /// The parameter's shape.
        param_shape: Dims,
        /// The parameter's dtype.
        param_dtype: DType,
        /// The gradient's shape.
        grad_shape: Dims,
        /// The gradient's dtype.
        grad_dtype: DType,
    },
    /// A parameter (or gradient) of a dtype optimizers do not update (only f32 and f64).
    #[error("`{param}` is {dtype}; optimizers and clipping handle f32 and f64 only")]
    UnsupportedDType {
        /// The parameter's name (or `grad #i` for a gradient without a name).
        param: String,
        /// The offending dtype.
        dtype: DType,
    },
    /// An impossible hyperparameter setting.
    #[error("{what}: {msg}")]
    Config {
        /// The optimizer, schedule or function that rejected it.
        what: &'static str,
        /// What was wrong.
        msg: String,
    },
    /// Optimizer state that does not fit the optimizer or the parameters.
    #[error("optimizer state: {0}")]
    State(String),
}

impl OptimError {
    pub(crate) fn config(what: &'static str, msg: impl Into<String>) -> Self {
        OptimError::Config {
            what,
            msg: msg.into(),
        }
    }
}

/// Result alias for heft-optim.
pub type Result<T, E = OptimError> = std::result::Result<T, E>;
