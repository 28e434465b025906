//! Differentiable views and shape changes: reshape, transpose, permute,
//! broadcast, squeeze/unsqueeze, flatten, contiguous, `sum_to_shape`.
//!
//! Views share storage with their input; their VJPs are views or
//! reductions of the output gradient.

use crate::error::Result;
use crate::var::Var;
use smallvec::smallvec;

impl Var {
    /// Same elements, new shape (a view when strides allow).
    #[track_caller]
    pub fn reshape(&self, shape: &[usize]) -> Result<Var> {
        let in_shape = self.shape().to_vec();
        Var::record(
            "reshape",
            self.value().reshape(shape)?,
            &[self],
            false,
            move |c| Ok(smallvec![Some(c.grad.reshape(&in_shape)?)]),
        )
    }

    /// Merge axes `start..=end`.
    #[track_caller]
    pub fn flatten(&self, start: isize, end: isize) -> Result<Var> {
        let t = self.value().flatten(start, end)?;
        self.reshape(t.shape())
    }

    /// Swap two axes (a view).
    #[track_caller]
    pub fn transpose(&self, a: isize, b: isize) -> Result<Var> {
        Var::record(
            "transpose",
            self.value().transpose(a, b)?,
            &[self],
            false,
            move |c| Ok(smallvec![Some(c.grad.transpose(a, b)?)]),
        )
    }

    /// Transpose of the last two axes (a view).
    #[track_caller]
    pub fn t(&self) -> Result<Var> {
        Var::record("t", self.value().t()?, &[self], false, |c| {
            Ok(smallvec![Some(c.grad.t()?)])
        })
    }

    /// Reorder axes (a view).
    #[track_caller]
    pub fn permute(&self, perm: &[usize]) -> Result<Var> {
        let value = self.value().permute(perm)?;
        let mut inv = vec![0usize; perm.len()];
        for (i, &p) in perm.iter().enumerate() {
            inv[p] = i;
        }
        Var::record("permute", value, &[self], false, move |c| {
            Ok(smallvec![Some(c.grad.permute(&inv)?)])
        })
    }

    /// Broadcast to a shape (a view); the engine sums the gradient back.
    #[track_caller]
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Var> {
        let in_shape = self.shape().to_vec();
        Var::record(
            "broadcast_to",
            self.value().broadcast_to(shape)?,
            &[self],
            false,
            move |c| Ok(smallvec![Some(c.grad.sum_to_shape(&in_shape)?)]),
        )
    }

    /// Alias of [`broadcast_to`](Var::broadcast_to).
    #[track_caller]
    pub fn expand(&self, shape: &[usize]) -> Result<Var> {
        self.broadcast_to(shape)
    }

    /// Sum down to a broadcast-compatible `shape` (undoes broadcasting).
    #[track_caller]
    pub fn sum_to_shape(&self, shape: &[usize]) -> Result<Var> {
        if self.shape() == shape {
            return Ok(self.clone());
        }
        let in_shape = self.shape().to_vec();
        Var::record(
            "sum_to_shape",
            heft_tensor::sum_to_shape(self.value(), shape)?,
            &[self],
            false,
            move |c| Ok(smallvec![Some(c.grad.broadcast_to(&in_shape)?)]),
        )
    }

    /// Remove a size-1 axis.
    #[track_caller]
    pub fn squeeze(&self, axis: isize) -> Result<Var> {
        let t = self.value().squeeze(axis)?;
        self.reshape(t.shape())
    }

    /// Insert a size-1 axis.
    #[track_caller]
    pub fn unsqueeze(&self, axis: isize) -> Result<Var> {
        let t = self.value().unsqueeze(axis)?;
        self.reshape(t.shape())
    }

    /// A packed copy (identity gradient).
    #[track_caller]
    pub fn contiguous(&self) -> Result<Var> {
        if self.value().is_contiguous() {
            return Ok(self.clone());
        }
        Var::record(
            "contiguous",
            self.value().contiguous(),
            &[self],
            false,
            |c| Ok(smallvec![Some(c.grad.clone())]),
        )
    }
}
