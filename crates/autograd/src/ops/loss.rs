//! Fused, numerically stable losses.

use crate::error::{AutogradError, Result};
use crate::var::Var;
use heft_tensor::{DType, Tensor, TensorError};
use smallvec::smallvec;

/// Validate `[n, c]` logits against `[n]` i64 targets and build the one-hot matrix.
pub(crate) fn one_hot_targets(
    op: &'static str,
    logits: &Tensor,
    targets: &Tensor,
) -> Result<Tensor> {
    if logits.ndim() != 2 || targets.ndim() != 1 || targets.shape()[0] != logits.shape()[0] {
        return Err(TensorError::ShapeMismatch {
            op,
            lhs: logits.shape().into(),
            rhs: targets.shape().into(),
            reason: "expected logits [n, c] and targets [n]".into(),
        }
        .into());
    }
    if targets.dtype() != DType::I64 {
        return Err(TensorError::UnsupportedDType {
            op,
            dtype: targets.dtype(),
            hint: "targets are i64 class ids",
        }
        .into());
    }
    let (n, c) = (logits.shape()[0], logits.shape()[1]);
    let t = targets.to_vec::<i64>()?;
    let mut oh = vec![0.0f64; n * c];
    for (i, &k) in t.iter().enumerate() {
        if k < 0 || k as usize >= c {
            return Err(TensorError::IndexOutOfRange {
                op,
                index: k,
                axis: 1,
                size: c,
            }
            .into());
        }
        oh[i * c + k as usize] = 1.0;
    }
    Ok(Tensor::from_vec(oh, &[n, c])?.to_dtype(logits.dtype()))
}

impl Var {
    /// Mean softmax cross-entropy of `[n, c]` logits against `[n]` i64 class ids.
    ///
    /// Computed through a stable log-softmax (finite for logits of magnitude
    /// 1e4); the VJP is `(softmax(logits) - onehot) / n`, written with `Var`
    /// ops so it can be differentiated again.
    #[track_caller]
    pub fn cross_entropy_with_logits(&self, targets: &Tensor) -> Result<Var> {
        let op = "cross_entropy_with_logits";
        let onehot = one_hot_targets(op, self.value(), targets)?;
        let n = self.shape()[0];
        if n == 0 {
            return Err(AutogradError::Tensor(TensorError::EmptyReduction {
                op,
                shape: self.shape().into(),
            }));
        }
        let lsm = self.value().log_softmax(1)?;
        let loss = lsm.mul(&onehot)?.sum_all()?.mul_scalar(-1.0 / n as f64)?;
        let x = self.clone();
        let oh = Var::constant(onehot);
        Var::record(op, loss, &[self], false, move |c| {
            let d = x.softmax(1)?.sub(&oh)?.mul_scalar(1.0 / n as f64)?;
            Ok(smallvec![Some(d.mul(c.grad)?)])
        })
    }

    /// Mean squared error `mean((self - target)^2)`.
    #[track_caller]
    pub fn mse(&self, target: &Var) -> Result<Var> {
        self.sub(target)?.square()?.mean_all()
    }
}
