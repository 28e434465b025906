//! Matrix products: 2-D, batched with broadcast batch dims, and vectors.
//!
//! Operands are passed to the GEMM kernel as strided views, so `a.t()?.matmul(&b)`
//! and `a.matmul(&b.t()?)` read the transposed operand in place (no copy),
//! and broadcast batch dims (stride 0) are never materialised.

use crate::dtype::Float;
use crate::error::{Result, TensorError};
use crate::kernels::split::for_each_chunk_mut;
use crate::kernels::{MatMut, MatRef};
use crate::layout::{broadcast_shapes, Layout};
use crate::strided::Plan;
use crate::tensor::float_dispatch;
use crate::Tensor;

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
        let out = float_dispatch!(op, self.dtype(), T => matmul_typed::<T>(&a, &b, &batch, m, k, n, &out_shape, None))?;
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

impl Tensor {
    /// `self + a b` for 2-D `a` (`[m, k]`) and `b` (`[k, n]`), with `self`
    /// broadcast to `[m, n]` (as `torch.addmm`): a layer's `x w^T + bias` in
    /// one output buffer. The output starts as the broadcast addend and the
    /// GEMM accumulates into it, so there is neither a zero-fill nor a
    /// separate addition pass; the addend is copied into each part of the
    /// output right before that part's product (on several threads, by the
    /// thread computing it). Same sums as `a.matmul(b)?.add(self)` up to
    /// rounding (here the addend is the first term of each sum).
    ///
    /// ```
    /// use heft_tensor::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
    /// let w = Tensor::from_vec(vec![1.0f32, 0.0, 1.0, 1.0, 0.0, 2.0], &[3, 2]).unwrap();
    /// let bias = Tensor::from_vec(vec![0.5f32, -1.0, 0.0], &[3]).unwrap();
    /// let y = bias.addmm(&x, &w.t().unwrap()).unwrap();
    /// assert_eq!(y.to_vec::<f32>().unwrap(), vec![1.5, 2.0, 4.0, 3.5, 6.0, 8.0]);
    /// ```
    pub fn addmm(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        let op = "addmm";
        self.same_dtype(a, op)?;
        a.same_dtype(b, op)?;
        if a.ndim() != 2 || b.ndim() != 2 {
            return Err(TensorError::shapes(
                op,
                a.shape(),
                b.shape(),
                "both factors must be 2-D (use matmul and add for batches)",
            ));
        }
        let (m, k) = (a.shape()[0], a.shape()[1]);
        let (k2, n) = (b.shape()[0], b.shape()[1]);
        if k != k2 {
            return Err(TensorError::shapes(
                op,
                a.shape(),
                b.shape(),
                format!("inner dimensions {k} and {k2} differ"),
            ));
        }
        let out_shape = [m, n];
        let bshape = broadcast_shapes(op, self.shape(), &out_shape)?;
        if bshape.as_slice() != out_shape {
            return Err(TensorError::shapes(
                op,
                self.shape(),
                &out_shape,
                "the addend must broadcast to the product's shape",
            ));
        }
        crate::layout::buffer_len(op, &out_shape, self.dtype())?;
        float_dispatch!(op, self.dtype(), T => matmul_typed::<T>(a, b, &[], m, k, n, &out_shape, Some(self)))
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

// The three sizes and the two shapes are what every caller has at hand;
// bundling them would only add a struct to unpack.
#[allow(clippy::too_many_arguments)]
fn matmul_typed<T: Float>(
    a: &Tensor,
    b: &Tensor,
    batch: &[usize],
    m: usize,
    k: usize,
    n: usize,
    out_shape: &[usize],
    addend: Option<&Tensor>,
) -> Result<Tensor> {
    let (sa, la) = a.typed::<T>("matmul")?;
    let (sb, lb) = b.typed::<T>("matmul")?;
    let nb: usize = batch.iter().product();
    let (ars, acs) = (la.strides()[la.ndim() - 2], la.strides()[la.ndim() - 1]);
    let (brs, bcs) = (lb.strides()[lb.ndim() - 2], lb.strides()[lb.ndim() - 1]);
    // The A and B matrices whose first elements sit at these offsets.
    let mats = |(oa, ob): (usize, usize)| {
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
        (am, bm)
    };
    if nb == 1 && m > 0 && n > 0 {
        let (am, bm) = mats((la.offset(), lb.offset()));
        let out = match addend {
            // One product, nothing to add: the kernel writes every element
            // of a fresh buffer, so it is not zero-filled first.
            None => T::gemm_new(am, bm),
            // The addend (a bias, broadcast over the rows) is copied into
            // each part of the fresh buffer by the thread that computes
            // that part, right before it adds the product: no pass over the
            // whole output on the caller first, and on several threads each
            // part is first written by the core that goes on to use it.
            Some(t) => {
                let view = t.broadcast_to(out_shape)?;
                let (sc, lc) = view.typed::<T>("addmm")?;
                let init = MatRef {
                    data: sc,
                    offset: lc.offset(),
                    rows: m,
                    cols: n,
                    rs: lc.strides()[lc.ndim() - 2],
                    cs: lc.strides()[lc.ndim() - 1],
                };
                T::gemm_new_init(am, bm, init)
            }
        };
        return Ok(Tensor::from_vec_unchecked(out, out_shape));
    }
    // With an addend, the output starts as it (broadcast) and the GEMM
    // accumulates; otherwise it starts at zero and the GEMM overwrites.
    let mut out = match addend {
        Some(t) => t.broadcast_to(out_shape)?.to_vec::<T>()?,
        None => vec![T::ZERO; nb * m * n],
    };
    if nb == 0 || m == 0 || n == 0 {
        return Ok(Tensor::from_vec_unchecked(out, out_shape));
    }
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
    let one = |c: &mut [T], o: (usize, usize)| {
        let (am, bm) = mats(o);
        let cm = MatMut {
            data: c,
            offset: 0,
            rows: m,
            cols: n,
            rs: n,
            cs: 1,
        };
        T::gemm(am, bm, cm, addend.is_some());
    };
    let small = m * n * k < (1 << 18);
    if nb > 1 && small {
        for_each_chunk_mut(&mut out, m * n, |i, c| one(c, offs[i]));
    } else {
        for (c, &o) in out.chunks_mut(m * n).zip(&offs) {
            one(c, o);
        }
    }
    Ok(Tensor::from_vec_unchecked(out, out_shape))
}

#[cfg(test)]
mod tests {
    use crate::{DType, Tensor};

    fn seq(n: usize, scale: f64) -> Vec<f64> {
        (0..n)
            .map(|i| ((i * 37 % 11) as f64 - 5.0) * scale)
            .collect()
    }

    #[test]
    fn addmm_equals_matmul_plus_broadcast_addend() {
        let (m, k, n) = (7, 5, 6);
        let a = Tensor::from_vec(seq(m * k, 0.3), &[m, k]).unwrap();
        // b as the transposed view of an [n, k] matrix, like a Linear weight.
        let w = Tensor::from_vec(seq(n * k, -0.7), &[n, k]).unwrap();
        let b = w.t().unwrap();
        let want_ab = a.matmul(&b).unwrap();
        for shape in [vec![n], vec![m, 1], vec![m, n], vec![], vec![1, n]] {
            let len: usize = shape.iter().product();
            let bias = Tensor::from_vec(seq(len, 0.11), &shape).unwrap();
            let got = bias.addmm(&a, &b).unwrap();
            assert_eq!(got.shape(), &[m, n]);
            let want = want_ab.add(&bias).unwrap().to_vec::<f64>().unwrap();
            for (x, y) in got.to_vec::<f64>().unwrap().iter().zip(&want) {
                assert!((x - y).abs() < 1e-12, "{shape:?}: {x} vs {y}");
            }
        }
        // The addend is left untouched (it is copied into the output).
        let bias = Tensor::from_vec(seq(n, 1.0), &[n]).unwrap();
        bias.addmm(&a, &b).unwrap();
        assert_eq!(bias.to_vec::<f64>().unwrap(), seq(n, 1.0));
    }

    #[test]
    fn addmm_large_enough_for_the_packed_kernel_and_threads() {
        let (m, k, n) = (64, 130, 96);
        let a = Tensor::from_vec(seq(m * k, 0.01), &[m, k]).unwrap();
        let b = Tensor::from_vec(seq(k * n, 0.02), &[k, n]).unwrap();
        let bias = Tensor::from_vec(seq(n, 0.5), &[n]).unwrap();
        let got = bias.addmm(&a, &b).unwrap().to_vec::<f64>().unwrap();
        let want = a
            .matmul(&b)
            .unwrap()
            .add(&bias)
            .unwrap()
            .to_vec::<f64>()
            .unwrap();
        for (x, y) in got.iter().zip(&want) {
            assert!((x - y).abs() < 1e-9 * (1.0 + y.abs()));
        }
    }

    #[test]
    fn addmm_with_k_zero_is_the_addend_and_errors_name_the_op() {
        let a = Tensor::zeros(&[3, 0], DType::F32);
        let b = Tensor::zeros(&[0, 2], DType::F32);
        let bias = Tensor::from_vec(vec![1.0f32, 2.0], &[2]).unwrap();
        let y = bias.addmm(&a, &b).unwrap();
        assert_eq!(
            y.to_vec::<f32>().unwrap(),
            vec![1.0, 2.0, 1.0, 2.0, 1.0, 2.0]
        );

        let a = Tensor::zeros(&[3, 4], DType::F32);
        let e = bias
            .addmm(&a, &Tensor::zeros(&[5, 2], DType::F32))
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("addmm: lhs [3, 4] and rhs [5, 2]"),
            "{e}"
        );
        let e = Tensor::zeros(&[3], DType::F32)
            .addmm(&a, &Tensor::zeros(&[4, 2], DType::F32))
            .unwrap_err();
        assert!(e.to_string().starts_with("addmm:"), "{e}");
        assert!(bias
            .addmm(
                &Tensor::zeros(&[2, 3, 4], DType::F32),
                &Tensor::zeros(&[4, 2], DType::F32)
            )
            .is_err());
        assert!(bias
            .addmm(
                &Tensor::zeros(&[3, 4], DType::F64),
                &Tensor::zeros(&[4, 2], DType::F64)
            )
            .is_err());
    }
}
