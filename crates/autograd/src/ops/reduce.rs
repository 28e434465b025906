//! Differentiable reductions and softmax.
//!
//! `axes` follow heft-tensor: negative axes count from the end and an empty
//! slice reduces over every axis. `max`/`min` split the gradient equally
//! between tied maxima (as `torch.amax` does); `norm_l2` has gradient 0 at 0.

use crate::error::Result;
use crate::var::Var;
use heft_tensor::ops::reduce::{reduce_axes, reduced_shape};
use smallvec::smallvec;

/// The keepdim shape of a reduction of `shape` over `axes`.
fn keep_shape(op: &'static str, shape: &[usize], axes: &[isize]) -> Result<Vec<usize>> {
    let ax = reduce_axes(op, axes, shape)?;
    Ok(reduced_shape(shape, &ax, true).to_vec())
}

impl Var {
    /// Sum over `axes` (empty = all); gradient: the output gradient broadcast back.
    #[track_caller]
    pub fn sum(&self, axes: &[isize], keepdim: bool) -> Result<Var> {
        let in_shape = self.shape().to_vec();
        let keep = keep_shape("sum", &in_shape, axes)?;
        Var::record(
            "sum",
            self.value().sum(axes, keepdim)?,
            &[self],
            false,
            move |c| {
                Ok(smallvec![Some(
                    c.grad.reshape(&keep)?.broadcast_to(&in_shape)?
                )])
            },
        )
    }

    /// Sum of every element (rank 0).
    #[track_caller]
    pub fn sum_all(&self) -> Result<Var> {
        self.sum(&[], false)
    }

    /// Mean over `axes` (empty = all).
    #[track_caller]
    pub fn mean(&self, axes: &[isize], keepdim: bool) -> Result<Var> {
        let ax = reduce_axes("mean", axes, self.shape())?;
        let n: usize = ax.iter().map(|&a| self.shape()[a]).product();
        self.sum(axes, keepdim)?.mul_scalar(1.0 / n as f64)
    }

    /// Mean of every element (rank 0).
    #[track_caller]
    pub fn mean_all(&self) -> Result<Var> {
        self.mean(&[], false)
    }

    #[track_caller]
    fn extremum(&self, axes: &[isize], keepdim: bool, is_max: bool) -> Result<Var> {
        let op = if is_max { "max" } else { "min" };
        let value = if is_max {
            self.value().max(axes, keepdim)?
        } else {
            self.value().min(axes, keepdim)?
        };
        let keep = keep_shape(op, self.shape(), axes)?;
        let axes_v = axes.to_vec();
        let x = self.clone();
        let y_keep = value.reshape(&keep)?;
        Var::record(op, value, &[self], false, move |c| {
            let hit = x.value().eq(&y_keep)?.to_dtype(x.dtype());
            let count = hit.sum(&axes_v, true)?;
            let w = hit.div(&count)?;
            Ok(smallvec![Some(
                c.grad.reshape(&keep)?.mul(&Var::constant(w))?
            )])
        })
    }

    /// Maximum over `axes`; ties share the gradient equally.
    #[track_caller]
    pub fn max(&self, axes: &[isize], keepdim: bool) -> Result<Var> {
        self.extremum(axes, keepdim, true)
    }

    /// Minimum over `axes`; ties share the gradient equally.
    #[track_caller]
    pub fn min(&self, axes: &[isize], keepdim: bool) -> Result<Var> {
        self.extremum(axes, keepdim, false)
    }

    /// Variance with `correction` (1 = unbiased), built from differentiable primitives.
    #[track_caller]
    pub fn var(&self, axes: &[isize], correction: usize, keepdim: bool) -> Result<Var> {
        let ax = reduce_axes("var", axes, self.shape())?;
        let n: usize = ax.iter().map(|&a| self.shape()[a]).product();
        let denom = n.saturating_sub(correction);
        let centered = self.sub(&self.mean(axes, true)?)?;
        centered
            .square()?
            .sum(axes, keepdim)?
            .mul_scalar(if denom == 0 {
                f64::NAN
            } else {
                1.0 / denom as f64
            })
    }

    /// Standard deviation with `correction`.
    #[track_caller]
    pub fn std(&self, axes: &[isize], correction: usize, keepdim: bool) -> Result<Var> {
        self.var(axes, correction, keepdim)?.sqrt()
    }

    /// `log(sum(exp(x)))` over `axes`, stable (shifted by a constant maximum).
    #[track_caller]
    pub fn logsumexp(&self, axes: &[isize], keepdim: bool) -> Result<Var> {
        let m = self.value().max(axes, true)?;
        let fin = m.isfinite()?;
        let m = heft_tensor::Tensor::where_(&fin, &m, &m.zeros_like())?;
        let mv = Var::constant(m);
        let s = self.sub(&mv)?.exp()?.sum(axes, true)?.log()?.add(&mv)?;
        if keepdim {
            Ok(s)
        } else {
            let ax = reduce_axes("logsumexp", axes, self.shape())?;
            s.reshape(&reduced_shape(self.shape(), &ax, false))
        }
    }

    /// L1 norm over `axes`.
    #[track_caller]
    pub fn norm_l1(&self, axes: &[isize], keepdim: bool) -> Result<Var> {
        self.abs()?.sum(axes, keepdim)
    }

    /// L2 norm over `axes`; gradient `x / ||x||`, taken as 0 where the norm is 0.
    #[track_caller]
    pub fn norm_l2(&self, axes: &[isize], keepdim: bool) -> Result<Var> {
        let keep = keep_shape("norm_l2", self.shape(), axes)?;
        let x = self.clone();
        let value = self.value().norm_l2(axes, keepdim)?;
        Var::record("norm_l2", value, &[self], true, move |c| {
            let y = c.output.as_ref().expect("saved").reshape(&keep)?;
            let zero = y.value().eq_scalar(0.0)?;
            let safe = Var::where_(&zero, &y.ones_like(), &y)?;
            Ok(smallvec![Some(c.grad.reshape(&keep)?.mul(&x.div(&safe)?)?)])
        })
    }

    /// Softmax along `axis`; VJP `y (g - sum(g y))`.
    #[track_caller]
    pub fn softmax(&self, axis: isize) -> Result<Var> {
        Var::record(
            "softmax",
            self.value().softmax(axis)?,
            &[self],
            true,
            move |c| {
                let y = c.output.as_ref().expect("saved");
                let gy = c.grad.mul(y)?;
                Ok(smallvec![Some(gy.sub(&y.mul(&gy.sum(&[axis], true)?)?)?)])
            },
        )
    }

    /// Log-softmax along `axis`; VJP `g - softmax(x) sum(g)`.
    #[track_caller]
    pub fn log_softmax(&self, axis: isize) -> Result<Var> {
        Var::record(
            "log_softmax",
            self.value().log_softmax(axis)?,
            &[self],
            true,
            move |c| {
                let y = c.output.as_ref().expect("saved");
                Ok(smallvec![Some(
                    c.grad.sub(&y.exp()?.mul(&c.grad.sum(&[axis], true)?)?)?
                )])
            },
        )
    }
}
