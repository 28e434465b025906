//! Differentiable matrix product.
//!
//! VJPs: `dA = dC B^T`, `dB = A^T dC`, computed on transposed *views* (the
//! GEMM kernel reads them in place). Broadcast batch dims are summed back
//! by the engine. A batched left operand times a 2-D right operand is
//! folded into one 2-D product, so `dB` is one GEMM, not a batch of them.
//! When a 2-D `B` is itself a transposed view of a contiguous matrix (a
//! Linear layer's `x w^T`), `dB` is computed as `(dC^T A)^T` so it comes out
//! in `w`'s storage order and the optimizer needs no transposing copy.

use crate::error::Result;
use crate::var::Var;
use smallvec::smallvec;

impl Var {
    /// Matrix product with numpy semantics (see [`heft_tensor::Tensor::matmul`]).
    #[track_caller]
    pub fn matmul(&self, rhs: &Var) -> Result<Var> {
        let (an, bn) = (self.ndim(), rhs.ndim());
        if an == 1 || bn == 1 || an == 0 || bn == 0 {
            if an == 0 || bn == 0 {
                // Let the tensor op produce the error message.
                self.value().matmul(rhs.value())?;
            }
            let a = if an == 1 {
                self.unsqueeze(0)?
            } else {
                self.clone()
            };
            let b = if bn == 1 {
                rhs.unsqueeze(-1)?
            } else {
                rhs.clone()
            };
            let out = a.matmul(&b)?;
            let out = if bn == 1 { out.squeeze(-1)? } else { out };
            return if an == 1 {
                out.squeeze(if bn == 1 { -1 } else { -2 })
            } else {
                Ok(out)
            };
        }
        if an > 2 && bn == 2 && self.value().is_contiguous() {
            // [..., m, k] x [k, n]: fold the batch into m.
            let k = self.shape()[an - 1];
            let lead: Vec<usize> = self.shape()[..an - 1].to_vec();
            let flat = self.reshape(&[lead.iter().product(), k])?;
            let out = flat.matmul(rhs)?;
            let mut shape = lead;
            shape.push(rhs.shape()[1]);
            return out.reshape(&shape);
        }
        let (a, b) = (self.clone(), rhs.clone());
        let (ta, tb) = (self.is_tracked(), rhs.is_tracked());
        Var::record(
            "matmul",
            self.value().matmul(rhs.value())?,
            &[self, rhs],
            false,
            move |c| {
                let ga = if ta {
                    Some(c.grad.matmul(&b.t()?)?)
                } else {
                    None
                };
                let gb = if tb {
                    let bv = b.value();
                    if bv.ndim() == 2 && !bv.is_contiguous() && bv.t()?.is_contiguous() {
                        // B is a transposed view of a contiguous matrix (e.g. a
                        // Linear weight used as `w.t()`): compute `(dC^T A)^T`,
                        // a view whose storage is row-major in B's own order,
                        // so the gradient that reaches the weight is contiguous
                        // and needs no strided copy later (same sums, same order).
                        Some(c.grad.t()?.matmul(&a)?.t()?)
                    } else {
                        Some(a.t()?.matmul(c.grad)?)
                    }
                } else {
                    None
                };
                Ok(smallvec![ga, gb])
            },
        )
    }
}
