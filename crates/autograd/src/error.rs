//! The error type of heft-autograd.

use heft_tensor::TensorError;

/// Everything that can go wrong while recording or differentiating.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AutogradError {
    /// A tensor op failed (shape, dtype, axis, ...).
    #[error(transparent)]
    Tensor(#[from] TensorError),
    /// Anomaly mode found a NaN or infinity.
    #[error("anomaly: {phase} of `{op}` (created at {location}) produced {nan} NaN and {inf} infinite values; input shapes {inputs}")]
    Anomaly {
        /// `forward` or `backward`.
        phase: &'static str,
        /// The op whose output (or gradient) was not finite.
        op: &'static str,
        /// Where in user code the op was created (`file:line:column`).
        location: String,
        /// Number of NaN elements.
        nan: usize,
        /// Number of infinite elements.
        inf: usize,
        /// In the `forward` phase, the shapes of the op's inputs, e.g.
        /// `[2, 3], [3]`; in the `backward` phase, the shape of the gradient
        /// of the op's output.
        inputs: String,
    },
    /// Vars recorded on two different tapes were combined.
    #[error("{op}: inputs come from different tapes")]
    DifferentTapes {
        /// The op that combined them.
        op: &'static str,
    },
    /// The tape a var was recorded on has been dropped or reset.
    #[error("{op}: the var's tape was dropped or reset; record it again on a live tape")]
    StaleVar {
        /// The op that used the var.
        op: &'static str,
    },
    /// `backward` without a seed needs a one-element output.
    #[error("backward: output of shape {shape:?} is not a scalar; use backward_with(seed)")]
    NotScalar {
        /// The output's shape.
        shape: Vec<usize>,
    },
    /// The seed's shape or dtype does not match the output.
    #[error("backward: seed of shape {seed:?} ({seed_dtype}) does not match output of shape {output:?} ({output_dtype})")]
    BadSeed {
        /// The seed's shape.
        seed: Vec<usize>,
        /// The seed's dtype.
        seed_dtype: heft_tensor::DType,
        /// The output's shape.
        output: Vec<usize>,
        /// The output's dtype.
        output_dtype: heft_tensor::DType,
    },
    /// A node's saved tensors were already freed by an earlier backward.
    #[error("backward: `{op}` was already walked by an earlier backward and its saved tensors freed; pass retain_graph: true to walk twice")]
    AlreadyFreed {
        /// The op.
        op: &'static str,
    },
    /// A custom op returned the wrong number of gradients, or a gradient of the wrong shape.
    #[error("{op}: {msg}")]
    BadGradient {
        /// The op.
        op: &'static str,
        /// What was wrong.
        msg: String,
    },
}

/// Result alias for heft-autograd.
pub type Result<T, E = AutogradError> = std::result::Result<T, E>;
