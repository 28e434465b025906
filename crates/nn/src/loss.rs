//! Losses, all numerically stable (logits of magnitude 1e4 give finite
//! values and gradients) and reduced by the mean.
//!
//! | loss | formula (per element / row) |
//! |---|---|
//! | [`mse`] | `(p - t)^2` |
//! | [`l1`] | `|p - t|` |
//! | [`huber`] | `d^2 / 2` for `|d| <= delta`, else `delta (|d| - delta / 2)` |
//! | [`cross_entropy`] | `-log softmax(z)_t` (fused) |
//! | [`cross_entropy_with`] | `-sum_c q_c w_c log softmax(z)_c / sum_i w_{t_i}`, `q = (1 - eps) onehot + eps / C` (PyTorch's weighted, smoothed CE) |
//! | [`bce_with_logits`] | `softplus(z) - z y` |
//! | [`nll`] | `-logp_t` |

use crate::error::{NnError, Result};
use heft_autograd::Var;
use heft_tensor::{DType, Tensor};

/// Mean squared error.
pub fn mse(pred: &Var, target: &Var) -> Result<Var> {
    Ok(pred.mse(target)?)
}

/// Mean absolute error.
pub fn l1(pred: &Var, target: &Var) -> Result<Var> {
    Ok(pred.sub(target)?.abs()?.mean_all()?)
}

/// Huber loss with threshold `delta` (smooth L1 for `delta = 1`).
pub fn huber(pred: &Var, target: &Var, delta: f64) -> Result<Var> {
    if delta <= 0.0 {
        return Err(NnError::Config {
            layer: "huber",
            msg: format!("delta must be positive, got {delta}"),
        });
    }
    let a = pred.sub(target)?.abs()?;
    let q = a.clamp(0.0, delta)?;
    Ok(q.square()?
        .mul_scalar(0.5)?
        .add(&a.sub(&q)?.mul_scalar(delta)?)?
        .mean_all()?)
}

/// Softmax cross-entropy of `[n, c]` logits against `[n]` i64 class ids (fused, stable).
pub fn cross_entropy(logits: &Var, targets: &Tensor) -> Result<Var> {
    Ok(logits.cross_entropy_with_logits(targets)?)
}

/// Options of [`cross_entropy_with`].
#[derive(Clone, Debug, Default)]
pub struct CrossEntropyOptions {
    /// Label smoothing `eps` in `[0, 1)`.
    pub label_smoothing: f64,
    /// Per-class weights `[c]`.
    pub class_weights: Option<Tensor>,
}

/// Cross-entropy with label smoothing and class weights (PyTorch's semantics).
pub fn cross_entropy_with(
    logits: &Var,
    targets: &Tensor,
    opts: &CrossEntropyOptions,
) -> Result<Var> {
    let eps = opts.label_smoothing;
    if !(0.0..1.0).contains(&eps) {
        return Err(NnError::Config {
            layer: "cross_entropy",
            msg: format!("label_smoothing must be in [0, 1), got {eps}"),
        });
    }
    if eps == 0.0 && opts.class_weights.is_none() {
        return cross_entropy(logits, targets);
    }
    if logits.ndim() != 2 || targets.shape() != [logits.shape()[0]] || targets.dtype() != DType::I64
    {
        return Err(NnError::Config {
            layer: "cross_entropy",
            msg: format!(
                "expected logits [n, c] and i64 targets [n], got {:?} and {:?} {}",
                logits.shape(),
                targets.shape(),
                targets.dtype()
            ),
        });
    }
    let (n, c) = (logits.shape()[0], logits.shape()[1]);
    let w: Vec<f64> = match &opts.class_weights {
        Some(w) if w.shape() == [c] => w.to_vec_f64(),
        Some(w) => {
            return Err(NnError::Config {
                layer: "cross_entropy",
                msg: format!("class weights {:?} for {c} classes", w.shape()),
            })
        }
        None => vec![1.0; c],
    };
    let t = targets.to_vec::<i64>()?;
    let mut q = vec![0.0f64; n * c];
    let mut denom = 0.0;
    for (i, &k) in t.iter().enumerate() {
        if k < 0 || k as usize >= c {
            return Err(heft_tensor::TensorError::IndexOutOfRange {
                op: "cross_entropy",
                index: k,
                axis: 1,
                size: c,
            }
            .into());
        }
        denom += w[k as usize];
        for j in 0..c {
            let target_mass = if j == k as usize { 1.0 - eps } else { 0.0 } + eps / c as f64;
            q[i * c + j] = target_mass * w[j];
        }
    }
    let qt = Var::constant(Tensor::from_vec(q, &[n, c])?.to_dtype(logits.dtype()));
    let logp = logits.log_softmax(1)?;
    Ok(logp.mul(&qt)?.sum_all()?.mul_scalar(-1.0 / denom)?)
}

/// Binary cross-entropy on logits `z` against targets `y` in `[0, 1]`: `mean(softplus(z) - z y)`.
pub fn bce_with_logits(logits: &Var, targets: &Var) -> Result<Var> {
    Ok(logits.softplus()?.sub(&logits.mul(targets)?)?.mean_all()?)
}

/// Negative log-likelihood of `[n, c]` log-probabilities against `[n]` i64 class ids.
pub fn nll(log_probs: &Var, targets: &Tensor) -> Result<Var> {
    if log_probs.ndim() != 2
        || targets.shape() != [log_probs.shape()[0]]
        || targets.dtype() != DType::I64
    {
        return Err(NnError::Config {
            layer: "nll",
            msg: format!(
                "expected log-probs [n, c] and i64 targets [n], got {:?} and {:?}",
                log_probs.shape(),
                targets.shape()
            ),
        });
    }
    let (n, c) = (log_probs.shape()[0], log_probs.shape()[1]);
    let mut oh = vec![0.0f64; n * c];
    for (i, &k) in targets.to_vec::<i64>()?.iter().enumerate() {
        if k < 0 || k as usize >= c {
            return Err(heft_tensor::TensorError::IndexOutOfRange {
                op: "nll",
                index: k,
                axis: 1,
                size: c,
            }
            .into());
        }
        oh[i * c + k as usize] = 1.0;
    }
    let oh = Var::constant(Tensor::from_vec(oh, &[n, c])?.to_dtype(log_probs.dtype()));
    Ok(log_probs.mul(&oh)?.sum_all()?.mul_scalar(-1.0 / n as f64)?)
}
