//! The error type of heft-tensor.

use crate::DType;
use std::fmt;

/// A shape as it appears in error messages: `[2, 3]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Dims(pub Vec<usize>);

impl fmt::Debug for Dims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Dims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

impl From<&[usize]> for Dims {
    fn from(s: &[usize]) -> Self {
        Dims(s.to_vec())
    }
}

/// Everything that can go wrong in a tensor op. Every variant names the op.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TensorError {
    /// Two shapes that had to agree do not.
    #[error("{op}: lhs {lhs} and rhs {rhs}: {reason}")]
    ShapeMismatch {
        /// The op that failed.
        op: &'static str,
        /// The first operand's shape.
        lhs: Dims,
        /// The second operand's shape.
        rhs: Dims,
        /// What was expected.
        reason: String,
    },
    /// A single shape is invalid for the op.
    #[error("{op}: shape {shape}: {reason}")]
    BadShape {
        /// The op that failed.
        op: &'static str,
        /// The offending shape.
        shape: Dims,
        /// What was expected.
        reason: String,
    },
    /// An axis outside `-rank..rank`.
    #[error("{op}: axis {axis} is out of range for a tensor of shape {shape}")]
    AxisOutOfRange {
        /// The op that failed.
        op: &'static str,
        /// The axis given.
        axis: isize,
        /// The tensor's shape.
        shape: Dims,
    },
    /// An index outside its axis.
    #[error("{op}: index {index} is out of range for axis {axis} of size {size}")]
    IndexOutOfRange {
        /// The op that failed.
        op: &'static str,
        /// The index given.
        index: i64,
        /// The axis indexed.
        axis: usize,
        /// The axis' size.
        size: usize,
    },
    /// Two dtypes that had to agree do not (heft never casts silently).
    #[error("{op}: dtype mismatch: lhs is {lhs} and rhs is {rhs}")]
    DTypeMismatch {
        /// The op that failed.
        op: &'static str,
        /// The first operand's dtype.
        lhs: DType,
        /// The second operand's dtype.
        rhs: DType,
    },
    /// The op does not run on this dtype.
    #[error("{op}: dtype {dtype} is not supported: {hint}")]
    UnsupportedDType {
        /// The op that failed.
        op: &'static str,
        /// The dtype given.
        dtype: DType,
        /// What to do instead.
        hint: &'static str,
    },
    /// A reduction with no identity over an empty input (max of nothing).
    #[error("{op}: cannot reduce an empty tensor of shape {shape}")]
    EmptyReduction {
        /// The op that failed.
        op: &'static str,
        /// The input shape.
        shape: Dims,
    },
    /// Any other invalid argument.
    #[error("{op}: {msg}")]
    Invalid {
        /// The op that failed.
        op: &'static str,
        /// What was wrong.
        msg: String,
    },
}

/// Result alias for heft-tensor.
pub type Result<T, E = TensorError> = std::result::Result<T, E>;

impl TensorError {
    pub(crate) fn shapes(
        op: &'static str,
        lhs: &[usize],
        rhs: &[usize],
        reason: impl Into<String>,
    ) -> Self {
        TensorError::ShapeMismatch {
            op,
            lhs: lhs.into(),
            rhs: rhs.into(),
            reason: reason.into(),
        }
    }
    pub(crate) fn shape(op: &'static str, shape: &[usize], reason: impl Into<String>) -> Self {
        TensorError::BadShape {
            op,
            shape: shape.into(),
            reason: reason.into(),
        }
    }
    pub(crate) fn invalid(op: &'static str, msg: impl Into<String>) -> Self {
        TensorError::Invalid {
            op,
            msg: msg.into(),
        }
    }
}
