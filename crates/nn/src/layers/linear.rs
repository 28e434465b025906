//! [`Linear`]: `y = x W^T + b`.

use crate::ctx::Ctx;
use crate::error::{NnError, Result};
use crate::init::Init;
use crate::module::Module;
use crate::params::{ParamId, ParamKind, ParamStore};
use heft_autograd::Var;
use heft_tensor::DType;
use rand::Rng;

/// A fully connected layer. The weight has shape `[out, in]` (as in PyTorch)
/// and is read through a transposed view, never copied.
#[derive(Clone, Debug)]
pub struct Linear {
    /// The weight `[out, in]`.
    pub weight: ParamId,
    /// The bias `[out]`, if any.
    pub bias: Option<ParamId>,
    /// Input features.
    pub in_features: usize,
    /// Output features.
    pub out_features: usize,
}

impl Linear {
    /// A layer with PyTorch's default init, parameters named `{name}.weight` and `{name}.bias`.
    pub fn new<R: Rng + ?Sized>(
        store: &mut ParamStore,
        name: &str,
        in_features: usize,
        out_features: usize,
        rng: &mut R,
    ) -> Result<Self> {
        Linear::with_init(
            store,
            name,
            in_features,
            out_features,
            true,
            Init::TorchDefaultWeight,
            Init::TorchDefaultBias(in_features),
            rng,
        )
    }

    /// A layer with explicit init schemes (and optionally no bias).
    pub fn with_init<R: Rng + ?Sized>(
        store: &mut ParamStore,
        name: &str,
        in_features: usize,
        out_features: usize,
        bias: bool,
        weight_init: Init,
        bias_init: Init,
        rng: &mut R,
    ) -> Result<Self> {
        if in_features == 0 || out_features == 0 {
            return Err(NnError::Config {
                layer: "Linear",
                msg: format!("features must be positive, got {in_features} -> {out_features}"),
            });
        }
        let w = weight_init.tensor(&[out_features, in_features], DType::F32, rng)?;
        let weight = store.add(&format!("{name}.weight"), w, ParamKind::Weight)?;
        let bias = if bias {
            let b = bias_init.tensor(&[out_features], DType::F32, rng)?;
            Some(store.add(&format!("{name}.bias"), b, ParamKind::Bias)?)
        } else {
            None
        };
        Ok(Linear {
            weight,
            bias,
            in_features,
            out_features,
        })
    }
}

impl Module for Linear {
    fn forward(&self, ctx: &Ctx<'_>, x: &Var) -> Result<Var> {
        let w = ctx.param(self.weight);
        Ok(match self.bias {
            // One output buffer: it starts as the broadcast bias and the
            // GEMM accumulates into it.
            Some(b) if x.ndim() == 2 => ctx.param(b).addmm(x, &w.t()?)?,
            Some(b) => x.matmul(&w.t()?)?.add(&ctx.param(b))?,
            None => x.matmul(&w.t()?)?,
        })
    }
}
