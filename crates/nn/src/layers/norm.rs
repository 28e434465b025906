//! Normalisation layers: [`LayerNorm`], [`RMSNorm`], [`BatchNorm`].
//!
//! All are built from differentiable primitives, so their gradients (and
//! second derivatives) come from the ops' VJPs.

use crate::ctx::Ctx;
use crate::error::{NnError, Result};
use crate::module::Module;
use crate::params::{BufferId, ParamId, ParamKind, ParamStore};
use heft_autograd::Var;
use heft_tensor::{DType, Tensor};

/// `y = (x - mean) / sqrt(var + eps) * gamma + beta` over the last axis
/// (biased variance, as in PyTorch).
#[derive(Clone, Debug)]
pub struct LayerNorm {
    /// Scale `gamma` `[dim]` (kind Other, init 1).
    pub weight: ParamId,
    /// Shift `beta` `[dim]` (kind Bias, init 0).
    pub bias: ParamId,
    /// Size of the last axis.
    pub dim: usize,
    /// Added to the variance.
    pub eps: f64,
}

impl LayerNorm {
    /// A LayerNorm over a last axis of size `dim`.
    pub fn new(store: &mut ParamStore, name: &str, dim: usize, eps: f64) -> Result<Self> {
        let weight = store.add(
            &format!("{name}.weight"),
            Tensor::ones(&[dim], DType::F32),
            ParamKind::Other,
        )?;
        let bias = store.add(
            &format!("{name}.bias"),
            Tensor::zeros(&[dim], DType::F32),
            ParamKind::Bias,
        )?;
        Ok(LayerNorm {
            weight,
            bias,
            dim,
            eps,
        })
    }
}

fn check_last(layer: &'static str, x: &Var, dim: usize) -> Result<()> {
    if x.shape().last() != Some(&dim) {
        return Err(NnError::Config {
            layer,
            msg: format!(
                "expected last axis of size {dim}, got input shape {:?}",
                x.shape()
            ),
        });
    }
    Ok(())
}

impl Module for LayerNorm {
    fn forward(&self, ctx: &Ctx<'_>, x: &Var) -> Result<Var> {
        check_last("LayerNorm", x, self.dim)?;
        let mean = x.mean(&[-1], true)?;
        let xc = x.sub(&mean)?;
        let var = xc.square()?.mean(&[-1], true)?;
        let xn = xc.mul(&var.add_scalar(self.eps)?.rsqrt()?)?;
        Ok(xn
            .mul(&ctx.param(self.weight))?
            .add(&ctx.param(self.bias))?)
    }
}

/// `y = x / sqrt(mean(x^2) + eps) * gamma` over the last axis.
#[derive(Clone, Debug)]
pub struct RMSNorm {
    /// Scale `gamma` `[dim]` (kind Other, init 1).
    pub weight: ParamId,
    /// Size of the last axis.
    pub dim: usize,
    /// Added to the mean square.
    pub eps: f64,
}

impl RMSNorm {
    /// An RMSNorm over a last axis of size `dim`.
    pub fn new(store: &mut ParamStore, name: &str, dim: usize, eps: f64) -> Result<Self> {
        let weight = store.add(
            &format!("{name}.weight"),
            Tensor::ones(&[dim], DType::F32),
            ParamKind::Other,
        )?;
        Ok(RMSNorm { weight, dim, eps })
    }
}

impl Module for RMSNorm {
    fn forward(&self, ctx: &Ctx<'_>, x: &Var) -> Result<Var> {
        check_last("RMSNorm", x, self.dim)?;
        let ms = x.square()?.mean(&[-1], true)?;
        Ok(x.mul(&ms.add_scalar(self.eps)?.rsqrt()?)?
            .mul(&ctx.param(self.weight))?)
    }
}

/// Batch normalisation over axis 1 (channels): BatchNorm1d for `[n, c]` or
/// `[n, c, l]`, BatchNorm2d for `[n, c, h, w]`.
///
/// Train mode normalises with the batch's mean and biased variance and
/// updates the running statistics (`running = (1 - momentum) running +
/// momentum batch`, the variance unbiased, as in PyTorch); eval mode
/// normalises with the running statistics.
#[derive(Clone, Debug)]
pub struct BatchNorm {
    /// Scale `[c]` (kind Other, init 1).
    pub weight: ParamId,
    /// Shift `[c]` (kind Bias, init 0).
    pub bias: ParamId,
    /// Running mean buffer `[c]`.
    pub running_mean: BufferId,
    /// Running variance buffer `[c]`.
    pub running_var: BufferId,
    /// Number of channels.
    pub channels: usize,
    /// Added to the variance.
    pub eps: f64,
    /// Weight of the batch in the running statistics.
    pub momentum: f64,
}

impl BatchNorm {
    /// A BatchNorm over `channels` (eps 1e-5, momentum 0.1 as in PyTorch).
    pub fn new(store: &mut ParamStore, name: &str, channels: usize) -> Result<Self> {
        let weight = store.add(
            &format!("{name}.weight"),
            Tensor::ones(&[channels], DType::F32),
            ParamKind::Other,
        )?;
        let bias = store.add(
            &format!("{name}.bias"),
            Tensor::zeros(&[channels], DType::F32),
            ParamKind::Bias,
        )?;
        let running_mean = store.add_buffer(
            &format!("{name}.running_mean"),
            Tensor::zeros(&[channels], DType::F32),
        )?;
        let running_var = store.add_buffer(
            &format!("{name}.running_var"),
            Tensor::ones(&[channels], DType::F32),
        )?;
        Ok(BatchNorm {
            weight,
            bias,
            running_mean,
            running_var,
            channels,
            eps: 1e-5,
            momentum: 0.1,
        })
    }
}

impl Module for BatchNorm {
    fn forward(&self, ctx: &Ctx<'_>, x: &Var) -> Result<Var> {
        if x.ndim() < 2 || x.shape()[1] != self.channels {
            return Err(NnError::Config {
                layer: "BatchNorm",
                msg: format!(
                    "expected input [n, {}, ...], got {:?}",
                    self.channels,
                    x.shape()
                ),
            });
        }
        // Reduce over every axis but 1; parameters broadcast as [c, 1, 1, ...].
        let axes: Vec<isize> = (0..x.ndim() as isize).filter(|&a| a != 1).collect();
        let mut bshape = vec![self.channels];
        bshape.extend(std::iter::repeat_n(1, x.ndim() - 2));
        let gamma = ctx.param(self.weight).reshape(&bshape)?;
        let beta = ctx.param(self.bias).reshape(&bshape)?;
        let xn = if ctx.is_train() {
            let n: usize = axes.iter().map(|&a| x.shape()[a as usize]).product();
            let mean = x.mean(&axes, true)?;
            let xc = x.sub(&mean)?;
            let var = xc.square()?.mean(&axes, true)?;
            // Running statistics (no gradient).
            let store = ctx.store();
            let m = self.momentum;
            let rm = store.buffer(self.running_mean);
            let rv = store.buffer(self.running_var);
            // In the buffers' dtype (f32 as created, f64 after `to_dtype`).
            let bm = mean.value().reshape(&[self.channels])?.to_dtype(rm.dtype());
            let unbiased = if n > 1 {
                n as f64 / (n - 1) as f64
            } else {
                1.0
            };
            let bv = var
                .value()
                .reshape(&[self.channels])?
                .mul_scalar(unbiased)?
                .to_dtype(rv.dtype());
            store.set_buffer(
                self.running_mean,
                rm.mul_scalar(1.0 - m)?.add(&bm.mul_scalar(m)?)?,
            );
            store.set_buffer(
                self.running_var,
                rv.mul_scalar(1.0 - m)?.add(&bv.mul_scalar(m)?)?,
            );
            xc.mul(&var.add_scalar(self.eps)?.rsqrt()?)?
        } else {
            let store = ctx.store();
            let rm = Var::constant(
                store
                    .buffer(self.running_mean)
                    .to_dtype(x.dtype())
                    .reshape(&bshape)?,
            );
            let rv = store
                .buffer(self.running_var)
                .to_dtype(x.dtype())
                .reshape(&bshape)?;
            x.sub(&rm)?
                .mul(&Var::constant(rv.add_scalar(self.eps)?.rsqrt()?))?
        };
        Ok(xn.mul(&gamma)?.add(&beta)?)
    }
}
