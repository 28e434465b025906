//! Indexing ops: `index_select` / `index_add`, `gather` / `scatter_add`, `one_hot`.
//!
//! Indices and labels are `i64` tensors. A negative or too-large index is an
//! [`IndexOutOfRange`](TensorError::IndexOutOfRange) error, never a panic and
//! never wrapped around. The accumulating ops (`index_add`, `scatter_add`)
//! add in row-major index order, so duplicate indices give the same bits on
//! every run.

use crate::dtype::Element;
use crate::error::{Result, TensorError};
use crate::layout::{buffer_len, contiguous_strides, normalize_axis, Shape};
use crate::strided::Plan;
use crate::tensor::{any_dispatch, float_dispatch};
use crate::{DType, Tensor};

/// The elements of an `i64` index tensor in row-major order.
fn read_indices(op: &'static str, t: &Tensor) -> Result<Vec<i64>> {
    if t.dtype() != DType::I64 {
        return Err(TensorError::UnsupportedDType {
            op,
            dtype: t.dtype(),
            hint: "indices must be an i64 tensor",
        });
    }
    t.to_vec::<i64>()
}

/// Check one index against an axis of `size`.
#[inline]
fn check_index(op: &'static str, index: i64, axis: usize, size: usize) -> Result<usize> {
    if index < 0 || index as u64 >= size as u64 {
        return Err(TensorError::IndexOutOfRange {
            op,
            index,
            axis,
            size,
        });
    }
    Ok(index as usize)
}

/// Check every index of a list, returning them as `usize`.
fn check_indices(op: &'static str, idx: &[i64], axis: usize, size: usize) -> Result<Vec<usize>> {
    idx.iter()
        .map(|&i| check_index(op, i, axis, size))
        .collect()
}

/// `(outer, inner)` element counts around `axis`.
fn outer_inner(shape: &[usize], axis: usize) -> (usize, usize) {
    (
        shape[..axis].iter().product(),
        shape[axis + 1..].iter().product(),
    )
}

/// Check that `index` has the rank of `self` and fits in it off `axis` (gather / scatter).
fn check_index_shape(op: &'static str, x: &[usize], index: &[usize], axis: usize) -> Result<()> {
    if index.len() != x.len() {
        return Err(TensorError::shapes(
            op,
            x,
            index,
            "index must have the same number of dimensions as the tensor",
        ));
    }
    for d in 0..x.len() {
        if d != axis && index[d] > x[d] {
            return Err(TensorError::shapes(
                op,
                x,
                index,
                format!(
                    "index dimension {d} has size {} but the tensor has {}",
                    index[d], x[d]
                ),
            ));
        }
    }
    Ok(())
}

impl Tensor {
    /// Pick the slices `indices[0], indices[1], ...` along `axis` (any dtype).
    ///
    /// `indices` is a 1-D `i64` tensor; the output has this tensor's shape
    /// with `axis` replaced by `indices.len()`. Repeated indices repeat the
    /// slice. This is the embedding lookup: `table.index_select(0, &ids)`.
    /// A packed input is copied slice by slice; a strided view is packed first.
    ///
    /// ```
    /// use heft_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[3, 2]).unwrap();
    /// let i = Tensor::from_vec(vec![2i64, 0, 2], &[3]).unwrap();
    /// let r = t.index_select(0, &i).unwrap();
    /// assert_eq!(r.to_vec::<f32>().unwrap(), vec![5.0, 6.0, 1.0, 2.0, 5.0, 6.0]);
    /// ```
    pub fn index_select(&self, axis: isize, indices: &Tensor) -> Result<Tensor> {
        let op = "index_select";
        let ax = normalize_axis(op, axis, self.shape())?;
        if indices.ndim() != 1 {
            return Err(TensorError::shapes(
                op,
                self.shape(),
                indices.shape(),
                "indices must be 1-D",
            ));
        }
        let d = self.shape()[ax];
        let idx = check_indices(op, &read_indices(op, indices)?, ax, d)?;
        let mut out_shape: Shape = Shape::from_slice(self.shape());
        out_shape[ax] = idx.len();
        let (outer, inner) = outer_inner(self.shape(), ax);
        let x = self.contiguous();
        any_dispatch!(x.dtype(), T => {
            let s = x.as_slice::<T>()?;
            let mut v: Vec<T> = Vec::with_capacity(outer * idx.len() * inner);
            if inner > 0 {
                for o in 0..outer {
                    let base = o * d * inner;
                    for &i in &idx {
                        let start = base + i * inner;
                        v.extend_from_slice(&s[start..start + inner]);
                    }
                }
            }
            Ok(Tensor::from_vec_unchecked(v, &out_shape))
        })
    }

    /// A copy of this tensor with `src` slice `j` added to slice `indices[j]` along `axis`.
    ///
    /// `indices` is a 1-D `i64` tensor of length `k`; `src` has this tensor's
    /// shape with `axis` replaced by `k`. Duplicate indices accumulate, in
    /// index order (deterministic). Float dtypes only. This is the adjoint of
    /// [`index_select`](Tensor::index_select).
    ///
    /// ```
    /// use heft_tensor::Tensor;
    /// let z = Tensor::from_vec(vec![0.0f64; 3], &[3]).unwrap();
    /// let i = Tensor::from_vec(vec![2i64, 0, 2], &[3]).unwrap();
    /// let s = Tensor::from_vec(vec![1.0f64, 2.0, 3.0], &[3]).unwrap();
    /// assert_eq!(z.index_add(0, &i, &s).unwrap().to_vec::<f64>().unwrap(), vec![2.0, 0.0, 4.0]);
    /// ```
    pub fn index_add(&self, axis: isize, indices: &Tensor, src: &Tensor) -> Result<Tensor> {
        let op = "index_add";
        let ax = normalize_axis(op, axis, self.shape())?;
        self.same_dtype(src, op)?;
        self.float_dtype(op)?;
        if indices.ndim() != 1 {
            return Err(TensorError::shapes(
                op,
                self.shape(),
                indices.shape(),
                "indices must be 1-D",
            ));
        }
        let k = indices.shape()[0];
        let mut want: Shape = Shape::from_slice(self.shape());
        want[ax] = k;
        if src.shape() != want.as_slice() {
            return Err(TensorError::shapes(
                op,
                self.shape(),
                src.shape(),
                format!(
                    "src must have shape {} (the tensor's shape with axis {ax} of size {k})",
                    crate::Dims(want.to_vec())
                ),
            ));
        }
        let d = self.shape()[ax];
        let idx = check_indices(op, &read_indices(op, indices)?, ax, d)?;
        let (outer, inner) = outer_inner(self.shape(), ax);
        float_dispatch!(op, self.dtype(), T => {
            let mut out = self.contiguous_copy();
            let srcc = src.contiguous();
            let sv = srcc.as_slice::<T>()?;
            let ov = out.data_mut::<T>()?;
            if inner > 0 {
                for o in 0..outer {
                    for (j, &i) in idx.iter().enumerate() {
                        let so = (o * k + j) * inner;
                        let oo = (o * d + i) * inner;
                        for (y, &a) in ov[oo..oo + inner].iter_mut().zip(&sv[so..so + inner]) {
                            *y += a;
                        }
                    }
                }
            }
            Ok(out)
        })
    }

    /// PyTorch `gather`: `out[i][j][k] = self[index[i][j][k]][j][k]` for `axis = 0` (any dtype).
    ///
    /// `index` is an `i64` tensor of the same rank with `index.shape[d] <=
    /// self.shape[d]` for every `d != axis`; the output has `index`'s shape.
    ///
    /// ```
    /// use heft_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
    /// let i = Tensor::from_vec(vec![0i64, 0, 1, 0], &[2, 2]).unwrap();
    /// assert_eq!(t.gather(1, &i).unwrap().to_vec::<f32>().unwrap(), vec![1.0, 1.0, 4.0, 3.0]);
    /// ```
    pub fn gather(&self, axis: isize, index: &Tensor) -> Result<Tensor> {
        let op = "gather";
        let ax = normalize_axis(op, axis, self.shape())?;
        check_index_shape(op, self.shape(), index.shape(), ax)?;
        let idx = read_indices(op, index)?;
        let d = self.shape()[ax];
        let ishape = index.shape();
        // Walking the index shape with this tensor's strides (axis stride 0)
        // gives the base offset of each output element; the index adds the rest.
        let mut st: Shape = Shape::from_slice(self.strides());
        let ast = st[ax];
        st[ax] = 0;
        let plan = Plan::new(ishape, [&st]);
        any_dispatch!(self.dtype(), T => {
            let (s, l) = self.typed::<T>(op)?;
            let mut v: Vec<T> = Vec::with_capacity(idx.len());
            let mut err = None;
            plan.for_rows([l.offset()], 0, plan.rows, |[o]| {
                if err.is_some() {
                    return;
                }
                for j in 0..plan.inner_len {
                    let n = v.len();
                    match check_index(op, idx[n], ax, d) {
                        Ok(i) => v.push(s[o + j * plan.inner_strides[0] + i * ast]),
                        Err(e) => {
                            err = Some(e);
                            return;
                        }
                    }
                }
            });
            if let Some(e) = err {
                return Err(e);
            }
            Ok(Tensor::from_vec_unchecked(v, ishape))
        })
    }

    /// PyTorch `scatter_add`: a copy of this tensor with `out[index[i][j]][j] += src[i][j]` (axis 0).
    ///
    /// `index` is an `i64` tensor of the same rank as this tensor and `src`,
    /// with `index.shape[d] <= src.shape[d]` for every `d` and
    /// `index.shape[d] <= self.shape[d]` for `d != axis`; only the leading
    /// `index.shape` block of `src` is used. Additions happen in row-major
    /// order of `index` (deterministic). Float dtypes only. This is the
    /// adjoint of [`gather`](Tensor::gather).
    ///
    /// ```
    /// use heft_tensor::Tensor;
    /// let z = Tensor::zeros(&[2, 2], heft_tensor::DType::F32);
    /// let i = Tensor::from_vec(vec![0i64, 0, 1, 0], &[2, 2]).unwrap();
    /// let s = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
    /// assert_eq!(z.scatter_add(1, &i, &s).unwrap().to_vec::<f32>().unwrap(), vec![3.0, 0.0, 4.0, 3.0]);
    /// ```
    pub fn scatter_add(&self, axis: isize, index: &Tensor, src: &Tensor) -> Result<Tensor> {
        let op = "scatter_add";
        let ax = normalize_axis(op, axis, self.shape())?;
        self.same_dtype(src, op)?;
        self.float_dtype(op)?;
        check_index_shape(op, self.shape(), index.shape(), ax)?;
        let ishape = index.shape();
        if src.ndim() != ishape.len() || ishape.iter().zip(src.shape()).any(|(i, s)| i > s) {
            return Err(TensorError::shapes(
                op,
                src.shape(),
                ishape,
                "index must have the rank of src and fit inside it",
            ));
        }
        let idx = read_indices(op, index)?;
        let d = self.shape()[ax];
        // Validate first so a bad index leaves nothing half-done.
        for &i in &idx {
            check_index(op, i, ax, d)?;
        }
        let mut ost = contiguous_strides(self.shape());
        let oast = ost[ax];
        ost[ax] = 0;
        let plan = Plan::new(ishape, [&ost, src.strides()]);
        float_dispatch!(op, self.dtype(), T => {
            let mut out = self.contiguous_copy();
            let (s, sl) = src.typed::<T>(op)?;
            let ov = out.data_mut::<T>()?;
            let mut n = 0usize;
            plan.for_rows([0, sl.offset()], 0, plan.rows, |[oo, so]| {
                let [xo, xs] = plan.inner_strides;
                for j in 0..plan.inner_len {
                    let i = idx[n] as usize;
                    n += 1;
                    ov[oo + j * xo + i * oast] += s[so + j * xs];
                }
            });
            Ok(out)
        })
    }

    /// One-hot encode an `i64` label tensor: shape `shape + [num_classes]`, 1 at each label.
    ///
    /// A label outside `0..num_classes` is an
    /// [`IndexOutOfRange`](TensorError::IndexOutOfRange) error. Any output dtype.
    ///
    /// ```
    /// use heft_tensor::{DType, Tensor};
    /// let y = Tensor::from_vec(vec![2i64, 0], &[2]).unwrap();
    /// let h = y.one_hot(3, DType::F32).unwrap();
    /// assert_eq!(h.shape(), &[2, 3]);
    /// assert_eq!(h.to_vec::<f32>().unwrap(), vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
    /// ```
    pub fn one_hot(&self, num_classes: usize, dtype: DType) -> Result<Tensor> {
        let op = "one_hot";
        let labels = read_indices(op, self)?;
        let axis = self.ndim();
        let mut shape: Shape = Shape::from_slice(self.shape());
        shape.push(num_classes);
        // An output that cannot exist (more than isize::MAX bytes, or an empty
        // one whose other dims overflow) is an error, not a panic.
        let n = buffer_len(op, &shape, dtype)?;
        any_dispatch!(dtype, T => {
            let mut v: Vec<T> = vec![T::default(); n];
            let one = T::from_f64(1.0);
            for (p, &c) in labels.iter().enumerate() {
                let c = check_index(op, c, axis, num_classes)?;
                v[p * num_classes + c] = one;
            }
            Ok(Tensor::from_vec_unchecked(v, &shape))
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::{DType, Tensor, TensorError};

    fn t64(v: Vec<f64>, s: &[usize]) -> Tensor {
        Tensor::from_vec(v, s).unwrap()
    }
    fn ix(v: Vec<i64>, s: &[usize]) -> Tensor {
        Tensor::from_vec(v, s).unwrap()
    }

    #[test]
    fn index_select_rows_and_columns() {
        let x = t64((0..12).map(f64::from).collect(), &[3, 4]);
        let r = x.index_select(0, &ix(vec![2, 2, 0], &[3])).unwrap();
        assert_eq!(r.shape(), &[3, 4]);
        assert_eq!(
            r.to_vec::<f64>().unwrap(),
            vec![8., 9., 10., 11., 8., 9., 10., 11., 0., 1., 2., 3.]
        );
        let c = x.index_select(-1, &ix(vec![3, 1], &[2])).unwrap();
        assert_eq!(c.to_vec::<f64>().unwrap(), vec![3., 1., 7., 5., 11., 9.]);
        // On a transposed view and with an i64 table.
        let xt = x.t().unwrap();
        let r = xt.index_select(1, &ix(vec![1], &[1])).unwrap();
        assert_eq!(r.to_vec::<f64>().unwrap(), vec![4., 5., 6., 7.]);
        let it = ix(vec![5, 6, 7], &[3]);
        let r = it.index_select(0, &ix(vec![], &[0])).unwrap();
        assert_eq!(r.shape(), &[0]);
    }

    #[test]
    fn index_add_accumulates_duplicates() {
        let x = t64(vec![1., 1., 1., 1., 1., 1.], &[3, 2]);
        let src = t64(vec![1., 2., 10., 20., 100., 200.], &[3, 2]);
        let r = x.index_add(0, &ix(vec![1, 1, 0], &[3]), &src).unwrap();
        assert_eq!(
            r.to_vec::<f64>().unwrap(),
            vec![101., 201., 12., 23., 1., 1.]
        );
        // The input is not modified.
        assert_eq!(x.to_vec::<f64>().unwrap(), vec![1.0; 6]);
    }

    #[test]
    fn gather_and_scatter_add_by_hand() {
        // x = [[1, 2, 3], [4, 5, 6]]
        let x = t64(vec![1., 2., 3., 4., 5., 6.], &[2, 3]);
        let i0 = ix(vec![1, 0, 1], &[1, 3]);
        assert_eq!(
            x.gather(0, &i0).unwrap().to_vec::<f64>().unwrap(),
            vec![4., 2., 6.]
        );
        let i1 = ix(vec![2, 2, 0, 1], &[2, 2]);
        assert_eq!(
            x.gather(1, &i1).unwrap().to_vec::<f64>().unwrap(),
            vec![3., 3., 4., 5.]
        );
        let z = Tensor::zeros(&[2, 3], DType::F64);
        let s = t64(vec![1., 2., 3., 4.], &[2, 2]);
        assert_eq!(
            z.scatter_add(1, &i1, &s).unwrap().to_vec::<f64>().unwrap(),
            vec![0., 0., 3., 3., 4., 0.]
        );
        // src larger than index: only the leading block is used.
        let s = t64(vec![1., 2., 3., 4., 5., 6.], &[2, 3]);
        assert_eq!(
            z.scatter_add(0, &i0, &s).unwrap().to_vec::<f64>().unwrap(),
            vec![0., 2., 0., 1., 0., 3.]
        );
    }

    #[test]
    fn one_hot_by_hand_and_errors() {
        let y = ix(vec![1, 0, 3, 1], &[2, 2]);
        let h = y.one_hot(4, DType::I64).unwrap();
        assert_eq!(h.shape(), &[2, 2, 4]);
        assert_eq!(
            h.to_vec::<i64>().unwrap(),
            vec![0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0]
        );
        assert_eq!(
            y.one_hot(3, DType::F32).unwrap_err(),
            TensorError::IndexOutOfRange {
                op: "one_hot",
                index: 3,
                axis: 2,
                size: 3
            }
        );
        let neg = ix(vec![-1], &[1]);
        assert!(neg.one_hot(3, DType::F32).is_err());
    }

    #[test]
    fn one_hot_with_too_many_classes_is_an_error() {
        // Found by fuzzing: `labels * classes` overflowed or the Vec capacity did.
        let y = ix(vec![0, 1], &[2]);
        for classes in [usize::MAX, usize::MAX / 2 + 1, 1 << 62] {
            assert!(y.one_hot(classes, DType::F32).is_err(), "{classes}");
        }
        // No labels: an empty result whatever the class count.
        let none = ix(vec![], &[0]);
        assert_eq!(
            none.one_hot(usize::MAX, DType::F32).unwrap().shape(),
            &[0, usize::MAX]
        );
        // Unless the other dims overflow: [3, 0, 2^64 - 1] is no valid shape.
        let none = ix(vec![], &[3, 0]);
        assert!(none.one_hot(usize::MAX, DType::F32).is_err());
    }

    #[test]
    fn negative_and_large_indices_are_errors() {
        let x = t64(vec![1., 2., 3.], &[3]);
        let e = x.index_select(0, &ix(vec![-1], &[1])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "index_select: index -1 is out of range for axis 0 of size 3"
        );
        assert!(x.gather(0, &ix(vec![3], &[1])).is_err());
        assert!(x
            .scatter_add(0, &ix(vec![0, 7], &[2]), &t64(vec![1., 1.], &[2]))
            .is_err());
        assert!(x
            .index_add(0, &ix(vec![i64::MIN], &[1]), &t64(vec![1.], &[1]))
            .is_err());
    }
}
