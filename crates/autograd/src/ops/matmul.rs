//! Differentiable matrix product, and `addmm` (a bias plus a product, one buffer).
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
        Var::record_lazy(
            "matmul",
            self.value().matmul(rhs.value())?,
            &[self, rhs],
            false,
            || {
                let (a, b) = (self.clone(), rhs.clone());
                move |c| {
                    let (ga, gb) = matmul_vjp(c.grad, &a, &b, c.create_graph)?;
                    Ok(smallvec![ga, gb])
                }
            },
        )
    }

    /// `self + a b` for 2-D `a` and `b`, `self` broadcast to the product's
    /// shape (see [`heft_tensor::Tensor::addmm`]): a layer's `x w^T + bias`
    /// in one output buffer. Gradients: the addend gets `dC` (summed back
    /// to its shape by the engine), `a` and `b` get what `matmul` gives.
    #[track_caller]
    pub fn addmm(&self, a: &Var, b: &Var) -> Result<Var> {
        Var::record_lazy(
            "addmm",
            self.value().addmm(a.value(), b.value())?,
            &[self, a, b],
            false,
            || {
                let t_add = self.is_tracked();
                let (a, b) = (a.clone(), b.clone());
                move |c| {
                    let (ga, gb) = matmul_vjp(c.grad, &a, &b, c.create_graph)?;
                    Ok(smallvec![t_add.then(|| c.grad.clone()), ga, gb])
                }
            },
        )
    }
}

/// `(dA, dB)` of `C = A B` for 2-D or batched operands, `None` for an
/// untracked operand.
///
/// When both are needed and the walk is not recorded, the two products are
/// independent tensor products: they run side by side
/// ([`kernels::join`](heft_tensor::kernels::join)), one per thread on a pool
/// of two, rather than each split over the pool in turn. Same products,
/// same bits (the kernels give the same bits whatever the thread count).
fn matmul_vjp(g: &Var, a: &Var, b: &Var, create_graph: bool) -> Result<(Option<Var>, Option<Var>)> {
    if !create_graph && a.is_tracked() && b.is_tracked() {
        let (gv, av, bv) = (g.value(), a.value(), b.value());
        // Each product has the forward's m n k multiply-adds.
        let k = av.shape().last().copied().unwrap_or(1);
        let b_transposed = transposed_2d(bv)?;
        let (ga, gb) = heft_tensor::kernels::join(
            gv.numel().saturating_mul(k),
            || gv.matmul(&bv.t()?),
            || {
                // As below: dB in B's own storage order.
                if b_transposed {
                    gv.t()?.matmul(av)?.t()
                } else {
                    av.t()?.matmul(gv)
                }
            },
        );
        return Ok((Some(Var::constant(ga?)), Some(Var::constant(gb?))));
    }
    let ga = if a.is_tracked() {
        Some(g.matmul(&b.t()?)?)
    } else {
        None
    };
    let gb = if b.is_tracked() {
        if transposed_2d(b.value())? {
            // B is a transposed view of a contiguous matrix (e.g. a Linear
            // weight used as `w.t()`): compute `(dC^T A)^T`, a view whose
            // storage is row-major in B's own order, so the gradient that
            // reaches the weight is contiguous and needs no strided copy
            // later (same sums, same order).
            Some(g.t()?.matmul(a)?.t()?)
        } else {
            Some(a.t()?.matmul(g)?)
        }
    } else {
        None
    };
    Ok((ga, gb))
}

/// Whether `b` is a 2-D transposed view of a contiguous matrix (a Linear
/// weight used as `w.t()`).
fn transposed_2d(b: &heft_tensor::Tensor) -> Result<bool> {
    Ok(b.ndim() == 2 && !b.is_contiguous() && b.t()?.is_contiguous())
}
