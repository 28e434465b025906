//! Gradient clipping, in place: by the global L2 norm (PyTorch's
//! `clip_grad_norm_`) or elementwise by value (`clip_grad_value_`).
//!
//! ```
//! use heft_nn::{ParamGrads, ParamId};
//! use heft_optim::clip_grad_norm;
//! use heft_tensor::Tensor;
//! # fn main() -> heft_optim::Result<()> {
//! let mut grads = ParamGrads::new(2);
//! grads.set(ParamId(0), Tensor::from_vec(vec![3.0f64], &[1])?);
//! grads.set(ParamId(1), Tensor::from_vec(vec![4.0f64], &[1])?);
//! let norm = clip_grad_norm(&mut grads, 1.0)?;
//! assert_eq!(norm, 5.0);
//! let scale = 1.0 / (5.0 + 1e-6);
//! assert_eq!(grads.get(ParamId(0)).unwrap().to_vec::<f64>()?, vec![3.0 * scale]);
//! # Ok(())
//! # }
//! ```

use crate::error::{OptimError, Result};
use heft_nn::{ParamGrads, ParamId};
use heft_tensor::{DType, Float, Tensor};

/// Error unless every gradient is f32 or f64.
fn check_dtypes(grads: &ParamGrads) -> Result<Vec<ParamId>> {
    let mut ids = Vec::new();
    for (id, g) in grads.iter() {
        if !g.dtype().is_float_compute() {
            return Err(OptimError::UnsupportedDType {
                param: format!("gradient #{}", id.0),
                dtype: g.dtype(),
            });
        }
        ids.push(id);
    }
    Ok(ids)
}

fn sum_squares<T: Float>(t: &Tensor) -> Result<f64> {
    let t = t.contiguous();
    Ok(t.as_slice::<T>()?
        .iter()
        .map(|&x| {
            let x = x.to_f64();
            x * x
        })
        .sum())
}

/// The global L2 norm of every gradient taken together,
/// `√(Σ_params Σ_i g_i²)`, accumulated in f64.
pub fn grad_norm(grads: &ParamGrads) -> Result<f64> {
    check_dtypes(grads)?;
    let mut total = 0.0f64;
    for (_, g) in grads.iter() {
        total += match g.dtype() {
            DType::F32 => sum_squares::<f32>(g)?,
            _ => sum_squares::<f64>(g)?,
        };
    }
    Ok(total.sqrt())
}

fn scale_in_place<T: Float>(t: &mut Tensor, s: f64) -> Result<()> {
    let s = T::from_f64(s);
    for x in t.data_mut::<T>()? {
        *x *= s;
    }
    Ok(())
}

/// Clip gradients by their global L2 norm, in place, as PyTorch's
/// `torch.nn.utils.clip_grad_norm_` (with `norm_type = 2`,
/// `error_if_nonfinite = false`): with `n` the global norm
/// ([`grad_norm`]), every gradient is multiplied by
/// `c = max_norm / (n + 1e-6)` when `c < 1` (or is NaN, as PyTorch
/// multiplies by the NaN too); otherwise they are left alone. Returns `n`,
/// the norm before clipping.
///
/// The norm and `c` are computed in f64; `c` is rounded to each gradient's
/// dtype before the multiply. Errors on a negative or NaN `max_norm` and on
/// gradients that are not f32 or f64.
pub fn clip_grad_norm(grads: &mut ParamGrads, max_norm: f64) -> Result<f64> {
    if max_norm.is_nan() || max_norm < 0.0 {
        return Err(OptimError::config(
            "clip_grad_norm",
            format!("invalid max_norm {max_norm}"),
        ));
    }
    let ids = check_dtypes(grads)?;
    let total = grad_norm(grads)?;
    let coef = max_norm / (total + 1e-6);
    if coef.is_nan() || coef < 1.0 {
        for id in ids {
            let g = grads.get_mut(id).expect("listed above");
            match g.dtype() {
                DType::F32 => scale_in_place::<f32>(g, coef)?,
                _ => scale_in_place::<f64>(g, coef)?,
            }
        }
    }
    Ok(total)
}

fn clamp_in_place<T: Float>(t: &mut Tensor, clip: f64) -> Result<()> {
    let hi = T::from_f64(clip);
    let lo = -hi;
    for x in t.data_mut::<T>()? {
        if *x > hi {
            *x = hi;
        } else if *x < lo {
            *x = lo;
        }
    }
    Ok(())
}

/// Clamp every gradient element to `[-clip, clip]`, in place, as PyTorch's
/// `torch.nn.utils.clip_grad_value_` (NaN stays NaN). Errors on a negative
/// or NaN `clip` and on gradients that are not f32 or f64.
///
/// ```
/// use heft_nn::{ParamGrads, ParamId};
/// use heft_optim::clip_grad_value;
/// use heft_tensor::Tensor;
/// # fn main() -> heft_optim::Result<()> {
/// let mut grads = ParamGrads::new(1);
/// grads.set(ParamId(0), Tensor::from_vec(vec![-3.0f32, 0.25, 2.0], &[3])?);
/// clip_grad_value(&mut grads, 0.5)?;
/// assert_eq!(grads.get(ParamId(0)).unwrap().to_vec::<f32>()?, vec![-0.5, 0.25, 0.5]);
/// # Ok(())
/// # }
/// ```
pub fn clip_grad_value(grads: &mut ParamGrads, clip: f64) -> Result<()> {
    if clip.is_nan() || clip < 0.0 {
        return Err(OptimError::config(
            "clip_grad_value",
            format!("invalid clip value {clip}"),
        ));
    }
    for id in check_dtypes(grads)? {
        let g = grads.get_mut(id).expect("listed above");
        match g.dtype() {
            DType::F32 => clamp_in_place::<f32>(g, clip)?,
            _ => clamp_in_place::<f64>(g, clip)?,
        }
    }
    Ok(())
}
