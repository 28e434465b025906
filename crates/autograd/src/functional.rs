//! Function transforms in the spirit of JAX: [`grad`], [`value_and_grad`],
//! [`vjp`], [`jvp`], [`hvp`] and [`hessian`].
//!
//! Each takes a closure from vars to a var and runs it on a fresh tape.
//!
//! ```
//! use heft_autograd::functional::{grad, hessian};
//! use heft_tensor::Tensor;
//! # fn main() -> Result<(), heft_autograd::AutogradError> {
//! // f(x) = sum(x^3): grad 3x^2, Hessian diag(6x).
//! let f = |x: &heft_autograd::Var| x.powf(3.0)?.sum_all();
//! let x = Tensor::from_vec(vec![1.0f64, 2.0], &[2])?;
//! assert_eq!(grad(f, &x)?.to_vec::<f64>()?, vec![3.0, 12.0]);
//! assert_eq!(hessian(f, &x)?.to_vec::<f64>()?, vec![6.0, 0.0, 0.0, 12.0]);
//! # Ok(())
//! # }
//! ```

use crate::error::{AutogradError, Result};
use crate::tape::{BackwardOptions, Tape};
use crate::var::Var;
use heft_tensor::Tensor;

/// Gradient of a scalar function at `x`.
pub fn grad(f: impl Fn(&Var) -> Result<Var>, x: &Tensor) -> Result<Tensor> {
    Ok(value_and_grad(f, x)?.1)
}

/// `(f(x), grad f(x))` for a scalar function.
pub fn value_and_grad(f: impl Fn(&Var) -> Result<Var>, x: &Tensor) -> Result<(Tensor, Tensor)> {
    let tape = Tape::new();
    let xv = tape.leaf(x.clone());
    let y = f(&xv)?;
    let g = tape.backward(&y)?;
    Ok((y.value().clone(), g.get_or_zeros(&xv)))
}

/// Gradients of a scalar function of several inputs.
pub fn grad_many(
    f: impl Fn(&[Var]) -> Result<Var>,
    xs: &[Tensor],
) -> Result<(Tensor, Vec<Tensor>)> {
    let tape = Tape::new();
    let vs: Vec<Var> = xs.iter().map(|x| tape.leaf(x.clone())).collect();
    let y = f(&vs)?;
    let g = tape.backward(&y)?;
    Ok((
        y.value().clone(),
        vs.iter().map(|v| g.get_or_zeros(v)).collect(),
    ))
}

/// `(f(x), v^T J)`: the vector-Jacobian product with `v` of the output's shape.
pub fn vjp(f: impl Fn(&Var) -> Result<Var>, x: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
    let tape = Tape::new();
    let xv = tape.leaf(x.clone());
    let y = f(&xv)?;
    let g = tape.backward_with(&y, v)?;
    Ok((y.value().clone(), g.get_or_zeros(&xv)))
}

/// `(f(x), J v)`: the Jacobian-vector product (forward mode) with `v` of
/// `x`'s shape, by the double-VJP trick: `u -> J^T u` is linear in `u`, so
/// differentiating `<J^T u, v>` with respect to `u` gives `J v`.
pub fn jvp(f: impl Fn(&Var) -> Result<Var>, x: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
    if v.shape() != x.shape() {
        return Err(heft_tensor::TensorError::ShapeMismatch {
            op: "jvp",
            lhs: x.shape().into(),
            rhs: v.shape().into(),
            reason: "the tangent must have the input's shape".into(),
        }
        .into());
    }
    let tape = Tape::new();
    let xv = tape.leaf(x.clone());
    let y = f(&xv)?;
    let u = tape.leaf(y.value().zeros_like());
    let s = y.mul(&u)?.sum_all()?;
    let g = tape.backward_opts(
        &s,
        None,
        BackwardOptions {
            create_graph: true,
            retain_graph: true,
        },
    )?;
    let jt_u = match g.get_var(&xv) {
        Some(v) => v.clone(),
        None => return Ok((y.value().clone(), y.value().zeros_like())),
    };
    let inner = jt_u.mul(&Var::constant(v.clone()))?.sum_all()?;
    let g2 = tape.backward(&inner)?;
    Ok((y.value().clone(), g2.get_or_zeros(&u)))
}

/// Hessian-vector product `H v` of a scalar function at `x`.
pub fn hvp(f: impl Fn(&Var) -> Result<Var>, x: &Tensor, v: &Tensor) -> Result<Tensor> {
    let tape = Tape::new();
    let xv = tape.leaf(x.clone());
    let y = f(&xv)?;
    if y.value().numel() != 1 {
        return Err(AutogradError::NotScalar {
            shape: y.shape().to_vec(),
        });
    }
    let g = tape.backward_opts(
        &y,
        None,
        BackwardOptions {
            create_graph: true,
            retain_graph: false,
        },
    )?;
    let Some(gx) = g.get_var(&xv).cloned() else {
        return Ok(x.zeros_like());
    };
    let inner = gx.mul(&Var::constant(v.clone()))?.sum_all()?;
    let g2 = tape.backward(&inner)?;
    Ok(g2.get_or_zeros(&xv))
}

/// The full Hessian of a scalar function, shape `[n, n]` for `n = x.numel()`
/// (one Hessian-vector product per input element: for small inputs).
pub fn hessian(f: impl Fn(&Var) -> Result<Var>, x: &Tensor) -> Result<Tensor> {
    let n = x.numel();
    let mut rows = Vec::with_capacity(n * n);
    for i in 0..n {
        let mut e = vec![0.0f64; n];
        e[i] = 1.0;
        let v = Tensor::from_vec(e, x.shape())?.to_dtype(x.dtype());
        rows.extend(hvp(&f, x, &v)?.to_vec_f64());
    }
    Ok(Tensor::from_vec(rows, &[n, n])?.to_dtype(x.dtype()))
}
