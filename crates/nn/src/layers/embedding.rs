//! [`Embedding`]: a lookup table of vectors.

use crate::ctx::Ctx;
use crate::error::{NnError, Result};
use crate::init::Init;
use crate::params::{ParamId, ParamKind, ParamStore};
use heft_autograd::Var;
use heft_tensor::{DType, Tensor};
use rand::Rng;

/// `num` vectors of size `dim` (weight `[num, dim]`, kind Other, init N(0, 1) as in PyTorch).
#[derive(Clone, Debug)]
pub struct Embedding {
    /// The table `[num, dim]`.
    pub weight: ParamId,
    /// Number of entries.
    pub num: usize,
    /// Vector size.
    pub dim: usize,
}

impl Embedding {
    /// A table named `{name}.weight`.
    pub fn new<R: Rng + ?Sized>(
        store: &mut ParamStore,
        name: &str,
        num: usize,
        dim: usize,
        rng: &mut R,
    ) -> Result<Self> {
        if num == 0 || dim == 0 {
            return Err(NnError::Config {
                layer: "Embedding",
                msg: format!("size must be positive, got {num} x {dim}"),
            });
        }
        let w = Init::Normal(1.0).tensor(&[num, dim], DType::F32, rng)?;
        Ok(Embedding {
            weight: store.add(&format!("{name}.weight"), w, ParamKind::Other)?,
            num,
            dim,
        })
    }

    /// Look up i64 `ids` of any shape: the result has shape `ids.shape + [dim]`.
    pub fn forward(&self, ctx: &Ctx<'_>, ids: &Tensor) -> Result<Var> {
        let flat = ids.reshape(&[ids.numel()])?;
        let rows = ctx.param(self.weight).index_select(0, &flat)?;
        let mut shape = ids.shape().to_vec();
        shape.push(self.dim);
        Ok(rows.reshape(&shape)?)
    }
}
