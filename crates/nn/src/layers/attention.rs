//! [`MultiHeadSelfAttention`] with an optional causal mask.

use crate::ctx::Ctx;
use crate::error::{NnError, Result};
use crate::layers::linear::Linear;
use crate::module::Module;
use crate::params::ParamStore;
use heft_autograd::Var;
use heft_tensor::Tensor;
use rand::Rng;

/// Multi-head self-attention over `[batch, time, d_model]`:
/// `softmax(Q K^T / sqrt(d_head) [+ causal mask]) V`, heads concatenated and
/// projected. Q, K, V and the output projection are [`Linear`] layers
/// named `{name}.q`, `{name}.k`, `{name}.v`, `{name}.o`.
#[derive(Clone, Debug)]
pub struct MultiHeadSelfAttention {
    /// Query projection.
    pub q: Linear,
    /// Key projection.
    pub k: Linear,
    /// Value projection.
    pub v: Linear,
    /// Output projection.
    pub o: Linear,
    /// Number of heads.
    pub heads: usize,
    /// Mask future positions (position `t` attends to `0..=t` only).
    pub causal: bool,
}

impl MultiHeadSelfAttention {
    /// `heads` heads over `d_model` features (`d_model % heads == 0`).
    pub fn new<R: Rng + ?Sized>(
        store: &mut ParamStore,
        name: &str,
        d_model: usize,
        heads: usize,
        causal: bool,
        rng: &mut R,
    ) -> Result<Self> {
        if heads == 0 || !d_model.is_multiple_of(heads) {
            return Err(NnError::Config {
                layer: "MultiHeadSelfAttention",
                msg: format!("d_model {d_model} is not divisible by {heads} heads"),
            });
        }
        Ok(MultiHeadSelfAttention {
            q: Linear::new(store, &format!("{name}.q"), d_model, d_model, rng)?,
            k: Linear::new(store, &format!("{name}.k"), d_model, d_model, rng)?,
            v: Linear::new(store, &format!("{name}.v"), d_model, d_model, rng)?,
            o: Linear::new(store, &format!("{name}.o"), d_model, d_model, rng)?,
            heads,
            causal,
        })
    }
}

/// A `[t, t]` bool mask, true above the diagonal (the future).
pub fn causal_mask(t: usize) -> Tensor {
    let v: Vec<bool> = (0..t * t).map(|i| i % t > i / t).collect();
    Tensor::from_vec(v, &[t, t]).expect("t*t elements")
}

impl Module for MultiHeadSelfAttention {
    fn forward(&self, ctx: &Ctx<'_>, x: &Var) -> Result<Var> {
        let s = x.shape().to_vec();
        if s.len() != 3 || s[2] != self.q.in_features {
            return Err(NnError::Config {
                layer: "MultiHeadSelfAttention",
                msg: format!(
                    "expected input [batch, time, {}], got {:?}",
                    self.q.in_features, s
                ),
            });
        }
        let (b, t, d) = (s[0], s[1], s[2]);
        let (h, dh) = (self.heads, d / self.heads);
        let split =
            |y: Var| -> Result<Var> { Ok(y.reshape(&[b, t, h, dh])?.permute(&[0, 2, 1, 3])?) };
        let q = split(self.q.forward(ctx, x)?)?;
        let k = split(self.k.forward(ctx, x)?)?;
        let v = split(self.v.forward(ctx, x)?)?;
        let mut scores = q
            .matmul(&k.transpose(-2, -1)?)?
            .mul_scalar(1.0 / (dh as f64).sqrt())?;
        if self.causal {
            scores = scores.masked_fill(&causal_mask(t), f64::NEG_INFINITY)?;
        }
        let att = scores.softmax(-1)?;
        let y = att
            .matmul(&v)?
            .permute(&[0, 2, 1, 3])?
            .contiguous()?
            .reshape(&[b, t, d])?;
        self.o.forward(ctx, &y)
    }
}
