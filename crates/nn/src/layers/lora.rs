//! [`LoraLinear`]: low-rank adapters on a frozen [`Linear`] (LoRA).
//!
//! `y = x W^T + b + (alpha / r) (x A^T) B^T` with the base `W`, `b` frozen
//! and only `A [r, in]` and `B [out, r]` trained. `A` starts with PyTorch's
//! Linear default init and `B` at zero, so a fresh adapter leaves the
//! model's output unchanged. [`LoraLinear::merge`] folds the adapter into
//! the base weight for export (`W += (alpha / r) B A`).
//!
//! ```
//! use heft_nn::{layers::{Linear, LoraLinear}, ParamStore};
//! use rand::SeedableRng;
//! # fn main() -> heft_nn::Result<()> {
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
//! let mut store = ParamStore::new();
//! let base = Linear::new(&mut store, "fc", 64, 32, &mut rng)?;
//! let lora = LoraLinear::wrap(&mut store, base, "fc", 4, 8.0, &mut rng)?;
//! let c = store.counts();
//! assert_eq!(c.frozen, 64 * 32 + 32);           // the base
//! assert_eq!(c.trainable, 4 * 64 + 32 * 4);      // A and B
//! # let _ = lora;
//! # Ok(())
//! # }
//! ```

use crate::ctx::Ctx;
use crate::error::{NnError, Result};
use crate::init::Init;
use crate::layers::linear::Linear;
use crate::module::Module;
use crate::params::{ParamId, ParamKind, ParamStore};
use heft_autograd::Var;
use heft_tensor::Tensor;
use rand::Rng;

/// A frozen [`Linear`] plus a trainable rank-`r` update.
#[derive(Clone, Debug)]
pub struct LoraLinear {
    /// The frozen base layer.
    pub base: Linear,
    /// `A [r, in]` (`{name}.lora_a`).
    pub a: ParamId,
    /// `B [out, r]` (`{name}.lora_b`).
    pub b: ParamId,
    /// Rank.
    pub rank: usize,
    /// Scale numerator: the update is multiplied by `alpha / rank`.
    pub alpha: f64,
}

impl LoraLinear {
    /// Freeze `base` and add adapters named `{name}.lora_a` / `{name}.lora_b`.
    pub fn wrap<R: Rng + ?Sized>(
        store: &mut ParamStore,
        base: Linear,
        name: &str,
        rank: usize,
        alpha: f64,
        rng: &mut R,
    ) -> Result<Self> {
        if rank == 0 || rank > base.in_features.min(base.out_features) {
            return Err(NnError::Config {
                layer: "LoraLinear",
                msg: format!(
                    "rank {rank} must be in 1..={}",
                    base.in_features.min(base.out_features)
                ),
            });
        }
        let dtype = store.value(base.weight).dtype();
        store.set_trainable(base.weight, false);
        if let Some(b) = base.bias {
            store.set_trainable(b, false);
        }
        let a = Init::TorchDefaultWeight.tensor(&[rank, base.in_features], dtype, rng)?;
        let a = store.add(&format!("{name}.lora_a"), a, ParamKind::Weight)?;
        let b = store.add(
            &format!("{name}.lora_b"),
            Tensor::zeros(&[base.out_features, rank], dtype),
            ParamKind::Weight,
        )?;
        Ok(LoraLinear {
            base,
            a,
            b,
            rank,
            alpha,
        })
    }

    /// The update's scale `alpha / rank`.
    pub fn scale(&self) -> f64 {
        self.alpha / self.rank as f64
    }

    /// Fold the adapter into the base weight (`W += scale * B A`) and zero
    /// `B`, so the layer computes the same function with the update in `W`.
    pub fn merge(&self, store: &mut ParamStore) -> Result<()> {
        let w = store.value(self.base.weight).clone();
        let delta = store
            .value(self.b)
            .matmul(store.value(self.a))?
            .mul_scalar(self.scale())?;
        store.set_value(self.base.weight, w.add(&delta)?)?;
        let dtype = store.value(self.b).dtype();
        store.set_value(
            self.b,
            Tensor::zeros(&[self.base.out_features, self.rank], dtype),
        )?;
        Ok(())
    }

    /// Names of the adapter parameters (to leave them out of an exported base model).
    pub fn adapter_names(&self, store: &ParamStore) -> [String; 2] {
        [
            store.name(self.a).to_string(),
            store.name(self.b).to_string(),
        ]
    }
}

impl Module for LoraLinear {
    fn forward(&self, ctx: &Ctx<'_>, x: &Var) -> Result<Var> {
        let y = self.base.forward(ctx, x)?;
        let a = ctx.param(self.a);
        let b = ctx.param(self.b);
        let upd = x
            .matmul(&a.t()?)?
            .matmul(&b.t()?)?
            .mul_scalar(self.scale())?;
        Ok(y.add(&upd)?)
    }
}
