//! Activation layers and [`Flatten`].

use crate::ctx::Ctx;
use crate::error::Result;
use crate::module::Module;
use heft_autograd::Var;

/// An elementwise activation as a layer.
#[derive(Clone, Debug, PartialEq)]
pub enum Activation {
    /// `max(x, 0)`. With a name, the share of zero outputs ("dead" units)
    /// is recorded in the [`Ctx`] for weight-health reports.
    Relu(Option<String>),
    /// Leaky ReLU with this negative slope.
    LeakyRelu(f64),
    /// GELU (exact erf form).
    Gelu,
    /// GELU (tanh approximation).
    GeluTanh,
    /// SiLU / swish.
    Silu,
    /// Tanh.
    Tanh,
    /// Logistic sigmoid.
    Sigmoid,
    /// Softmax along an axis.
    Softmax(isize),
}

impl Module for Activation {
    fn forward(&self, ctx: &Ctx<'_>, x: &Var) -> Result<Var> {
        Ok(match self {
            Activation::Relu(name) => {
                let y = x.relu()?;
                if let Some(n) = name {
                    let zeros = heft_tensor::ops::reduce::count_true(&y.value().eq_scalar(0.0)?)?;
                    ctx.record_activation(n, zeros as f64 / y.value().numel().max(1) as f64);
                }
                y
            }
            Activation::LeakyRelu(s) => x.leaky_relu(*s)?,
            Activation::Gelu => x.gelu()?,
            Activation::GeluTanh => x.gelu_tanh()?,
            Activation::Silu => x.silu()?,
            Activation::Tanh => x.tanh()?,
            Activation::Sigmoid => x.sigmoid()?,
            Activation::Softmax(a) => x.softmax(*a)?,
        })
    }
}

/// Flatten every axis after the first: `[n, a, b, ...] -> [n, a*b*...]`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Flatten;

impl Module for Flatten {
    fn forward(&self, _ctx: &Ctx<'_>, x: &Var) -> Result<Var> {
        if x.ndim() <= 2 {
            return Ok(x.clone());
        }
        Ok(x.flatten(1, -1)?)
    }
}
