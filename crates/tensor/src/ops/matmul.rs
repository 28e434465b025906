//! Matrix products: 2-D, batched with broadcast batch dims, and vectors.
//!
//! Operands are passed to the GEMM kernel as strided views, so `a.t()?.matmul(&b)`
//! and `a.matmul(&b.t()?)` read the transposed operand in place (no copy),
//! and broadcast batch dims (stride 0) are never materialised.

use crate::dtype::Float;
use crate::error::{Result, TensorError};
use crate::kernels::{MatMut, MatRef};
use crate::layout::{broadcast_shapes, Layout};
use crate::strided::Plan;
use crate::tensor::float_dispatch;
use crate::Tensor;
use rayon::prelude::*;

impl Tensor {
    /// Matrix product with numpy semantics.
    ///
    /// * `[m, k] x [k, n] -> [m, n]`;
    /// * `[..., m, k] x [..., k, n] -> [..., m, n]` with broadcast batch dims;
    /// * a 1-D left operand is a row vector, a 1-D right operand a column
    ///   vector; the added axis is removed from the result.
    ///
    /// ```
    /// use heft_tensor::Tensor;
    /// let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
    /// let b = Tensor::from_vec(vec![1.0f32, 0.0, 0.0, 1.0, 1.0, 1.0], &[3, 2]).unwrap();
    /// assert_eq!(a.matmul(&b).unwrap().to_vec::<f32>().unwrap(), vec![4.0, 5.0, 10.0, 11.0]);
    /// let e = a.matmul(&a).unwrap_err().to_string();
    /// assert_eq!(e, "matmul: lhs [2, 3] and rhs [2, 3]: inner dimensions 3 and 2 differ");
    /// ```
    pub fn matmul(&self, rhs: &Tensor) -> Result<Tensor> {
        let op = "matmul";
        self.same_dtype(rhs, op)?;
        if self.ndim() == 0 || rhs.ndim() == 0 {
            return Err(TensorError::shapes(
                op,
                self.shape(),
                rhs.shape(),
                "operands must have at least 1 dimension",
            ));
        }
        let a = if self.ndim() == 1 {
            self.unsqueeze(0)?
        } else {
            self.clone()
        };
        let b = if rhs.ndim() == 1 {
            rhs.unsqueeze(-1)?
        } else {
            rhs.clone()
        };
        let (m, k) = (a.shape()[a.ndim() - 2], a.shape()[a.ndim() - 1]);
        let (k2, n) = (b.shape()[b.ndim() - 2], b.shape()[b.ndim() - 1]);
        if k != k2 {
            return Err(TensorError::shapes(
                op,
                self.shape(),
                rhs.shape(),
                format!("inner dimensions {k} and {k2} differ"),
            ));
        }
        let batch = broadcast_shapes(op, &a.shape()[..a.ndim() - 2], &b.shape()[..b.ndim() - 2])
            .map_err(|_| {
                TensorError::shapes(
                    op,
                    self.shape(),
                    rhs.shape(),
                    "batch dimensions do not broadcast",
                )
            })?;
        let mut out_shape: Vec<usize> = batch.to_vec();
        out_shape.extend([m, n]);
        crate::layout::buffer_len(op, &out_shape, self.dtype())?;
        let out = float_dispatch!(op, self.dtype(), T => matmul_typed::<T>(&a, &b, &batch, m, k, n, &out_shape))?;
        // Remove the axes added for 1-D operands.
        let mut final_shape: Vec<usize> = batch.to_vec();
        if self.ndim() != 1 {
            final_shape.push(m);
        }
        if rhs.ndim() != 1 {
            final_shape.push(n);
        }
        if final_shape.len() == out.ndim() {
            Ok(out)
        } else {
            out.reshape(&final_shape)
        }
    }
}

fn batch_layout(t: &Tensor, batch: &[usize]) -> Result<Layout> {
    let nd = t.ndim();
    let l = Layout::from_parts(
        &t.shape()[..nd - 2],
        &t.strides()[..nd - 2],
        t.layout().offset(),
    )?;
    l.broadcast_to(batch)
}

fn matmul_typed<T: Float>(
    a: &Tensor,
    b: &Tensor,
    batch: &[usize],
    m: usize,
    k: usize,
    n: usize,
    out_shape: &[usize],
) -> Result<Tensor> {
    let (sa, la) = a.typed::<T>("matmul")?;
    let (sb, lb) = b.typed::<T>("matmul")?;
    let nb: usize = batch.iter().product();
    let mut out = vec![T::ZERO; nb * m * n];
    if nb == 0 || m == 0 || n == 0 {
        return Ok(Tensor::from_vec_unchecked(out, out_shape));
    }
    let (ars, acs) = (la.strides()[la.ndim() - 2], la.strides()[la.ndim() - 1]);
    let (brs, bcs) = (lb.strides()[lb.ndim() - 2], lb.strides()[lb.ndim() - 1]);
    // Base offsets of every batch matrix, in row-major batch order.
    let ba = batch_layout(a, batch)?;
    let bb = batch_layout(b, batch)?;
    let mut offs: Vec<(usize, usize)> = Vec::with_capacity(nb);
    let plan = Plan::new(batch, [ba.strides(), bb.strides()]);
    plan.for_rows([ba.offset(), bb.offset()], 0, plan.rows, |[oa, ob]| {
        for j in 0..plan.inner_len {
            offs.push((
                oa + j * plan.inner_strides[0],
                ob + j * plan.inner_strides[1],
            ));
        }
    });
    let one = |c: &mut [T], (oa, ob): (usize, usize)| {
        let am = MatRef {
            data: sa,
            offset: oa,
            rows: m,
            cols: k,
            rs: ars,
            cs: acs,
        };
        let bm = MatRef {
            data: sb,
            offset: ob,
            rows: k,
            cols: n,
            rs: brs,
            cs: bcs,
        };
        let cm = MatMut {
            data: c,
            offset: 0,
            rows: m,
            cols: n,
            rs: n,
            cs: 1,
        };
        T::gemm(am, bm, cm, false);
    };
    let small = m * n * k < (1 << 18);
    if nb > 1 && small {
        out.par_chunks_mut(m * n)
            .zip(offs.par_iter())
            .for_each(|(c, &o)| one(c, o));
    } else {
        for (c, &o) in out.chunks_mut(m * n).zip(&offs) {
            one(c, o);
        }
    }
    Ok(Tensor::from_vec_unchecked(out, out_shape))
}
