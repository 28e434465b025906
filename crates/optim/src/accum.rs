//! Gradient accumulation over micro-batches.
//!
//! To train with an effective batch of `k` micro-batches, run forward and
//! backward on each micro-batch, add its gradients up, scale by `1 / k`
//! (when each micro-batch loss is a mean, this makes the sum the gradient
//! of the mean loss over the whole batch), then step once:
//!
//! ```text
//! let mut total = ParamGrads::new(store.len());
//! for batch in micro_batches {             // k of them
//!     let grads = ctx.backward(&loss)?;    // per micro-batch
//!     total.accumulate(&grads)?;
//! }
//! total.scale(1.0 / k as f64)?;
//! clip_grad_norm(&mut total, 1.0)?;        // clip the accumulated gradient
//! opt.step(&mut store, &total)?;
//! ```
//!
//! [`GradAccumulator`] wraps exactly that and counts the micro-batches.
//!
//! ```
//! use heft_nn::{ParamGrads, ParamId};
//! use heft_optim::GradAccumulator;
//! use heft_tensor::Tensor;
//! # fn main() -> heft_optim::Result<()> {
//! let mut acc = GradAccumulator::new();
//! for g in [1.0f64, 3.0] {
//!     let mut grads = ParamGrads::new(1);
//!     grads.set(ParamId(0), Tensor::from_vec(vec![g], &[1])?);
//!     acc.add(&grads)?;
//! }
//! assert_eq!(acc.len(), 2);
//! let mean = acc.take_mean()?.unwrap();
//! assert_eq!(mean.get(ParamId(0)).unwrap().to_vec::<f64>()?, vec![2.0]);
//! assert!(acc.is_empty());
//! # Ok(())
//! # }
//! ```

use crate::error::Result;
use heft_nn::ParamGrads;

/// Sums the gradients of micro-batches; see the [module docs](self).
#[derive(Clone, Debug, Default)]
pub struct GradAccumulator {
    sum: Option<ParamGrads>,
    count: usize,
}

impl GradAccumulator {
    /// Nothing accumulated.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add one micro-batch's gradients.
    pub fn add(&mut self, grads: &ParamGrads) -> Result<()> {
        match &mut self.sum {
            Some(s) => s.accumulate(grads)?,
            None => self.sum = Some(grads.clone()),
        }
        self.count += 1;
        Ok(())
    }

    /// Number of micro-batches added since the last take.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when nothing was added since the last take.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The summed gradients (None if nothing was added); resets.
    pub fn take_sum(&mut self) -> Option<ParamGrads> {
        self.count = 0;
        self.sum.take()
    }

    /// The mean gradients, the sum scaled by `1 / len()` (None if nothing
    /// was added); resets.
    pub fn take_mean(&mut self) -> Result<Option<ParamGrads>> {
        let n = self.count;
        match self.take_sum() {
            None => Ok(None),
            Some(mut s) => {
                s.scale(1.0 / n as f64)?;
                Ok(Some(s))
            }
        }
    }
}
