//! [`Dropout`]: zero a random share `p` of activations in training.

use crate::ctx::Ctx;
use crate::error::{NnError, Result};
use crate::module::Module;
use heft_autograd::Var;
use heft_tensor::Tensor;

/// Inverted dropout: in train mode each element is kept with probability
/// `1 - p` and scaled by `1 / (1 - p)`; in eval mode the identity. The mask
/// comes from the [`Ctx`]'s seeded RNG, so runs are reproducible.
#[derive(Clone, Copy, Debug)]
pub struct Dropout {
    p: f64,
}

impl Dropout {
    /// Dropout with drop probability `p` in `[0, 1)`.
    pub fn new(p: f64) -> Result<Self> {
        if !(0.0..1.0).contains(&p) {
            return Err(NnError::Config {
                layer: "Dropout",
                msg: format!("p must be in [0, 1), got {p}"),
            });
        }
        Ok(Dropout { p })
    }
}

impl Module for Dropout {
    fn forward(&self, ctx: &Ctx<'_>, x: &Var) -> Result<Var> {
        if !ctx.is_train() || self.p == 0.0 {
            return Ok(x.clone());
        }
        let keep = 1.0 - self.p;
        let u = Tensor::rand_uniform(x.shape(), 0.0, 1.0, x.dtype(), &mut *ctx.rng())?;
        let mask = u
            .lt_scalar(keep)?
            .to_dtype(x.dtype())
            .mul_scalar(1.0 / keep)?;
        Ok(x.mul(&Var::constant(mask))?)
    }
}
