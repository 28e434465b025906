//! The error type of heft-nn.

use heft_autograd::AutogradError;
use heft_tensor::TensorError;

/// Everything that can go wrong building, running or saving a model.
#[derive(Debug, thiserror::Error)]
pub enum NnError {
    /// A tensor op failed.
    #[error(transparent)]
    Tensor(#[from] TensorError),
    /// Recording or differentiating failed.
    #[error(transparent)]
    Autograd(#[from] AutogradError),
    /// Two parameters with one name.
    #[error("parameter `{0}` already exists")]
    DuplicateName(String),
    /// No parameter or buffer with this name.
    #[error("no parameter or buffer named `{0}`")]
    UnknownName(String),
    /// A layer was configured with an impossible setting.
    #[error("{layer}: {msg}")]
    Config {
        /// The layer.
        layer: &'static str,
        /// What was wrong.
        msg: String,
    },
    /// A model file could not be read or written.
    #[error("{path}: {msg}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        msg: String,
    },
    /// Loading found missing, unexpected or mis-shaped tensors (strict mode).
    #[error("load: {0}")]
    Mismatch(String),
}

/// Result alias for heft-nn.
pub type Result<T, E = NnError> = std::result::Result<T, E>;
