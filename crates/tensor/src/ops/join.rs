//! Joining and splitting: `cat`, `stack`, `split`, `split_size`, `chunk`, `pad`.
//!
//! `cat`, `stack` and `pad` build fresh packed tensors (any dtype); the
//! split family returns views ([`narrow`](Tensor::narrow)) that share storage.

use crate::dtype::Element;
use crate::error::{Result, TensorError};
use crate::layout::{
    buffer_len, contiguous_strides, normalize_axis, normalize_axis_rank, Layout, Shape,
};
use crate::strided::Plan;
use crate::tensor::any_dispatch;
use crate::Tensor;

/// Copy the strided `src` view into `dst`, whose matching block starts at
/// `dst_offset` with `dst_strides` (same shape as `src`). Rows that are
/// unit-stride on both sides are copied as slices.
fn copy_into<T: Element>(
    dst: &mut [T],
    dst_strides: &[usize],
    dst_offset: usize,
    src: &[T],
    src_layout: &Layout,
) {
    if src_layout.numel() == 0 {
        return;
    }
    let plan = Plan::new(src_layout.shape(), [dst_strides, src_layout.strides()]);
    let n = plan.inner_len;
    let [xd, xs] = plan.inner_strides;
    plan.for_rows(
        [dst_offset, src_layout.offset()],
        0,
        plan.rows,
        |[od, os]| {
            if (xd == 1 && xs == 1) || n == 1 {
                dst[od..od + n].copy_from_slice(&src[os..os + n]);
            } else {
                for j in 0..n {
                    dst[od + j * xd] = src[os + j * xs];
                }
            }
        },
    );
}

impl Tensor {
    /// Concatenate tensors along an existing `axis` (negative counts from the end).
    ///
    /// All tensors must have the same dtype and the same shape except along
    /// `axis`. Inputs may be any strided views; packed inputs are copied as
    /// whole slices.
    ///
    /// ```
    /// use heft_tensor::Tensor;
    /// let a = Tensor::from_vec(vec![1i64, 2, 3, 4], &[2, 2]).unwrap();
    /// let b = Tensor::from_vec(vec![5i64, 6], &[2, 1]).unwrap();
    /// let c = Tensor::cat(&[&a, &b], 1).unwrap();
    /// assert_eq!(c.to_vec::<i64>().unwrap(), vec![1, 2, 5, 3, 4, 6]);
    /// assert_eq!(
    ///     Tensor::cat(&[&a, &b], 0).unwrap_err().to_string(),
    ///     "cat: lhs [2, 2] and rhs [2, 1]: shapes must match except on axis 0 (tensor 1)"
    /// );
    /// ```
    pub fn cat(tensors: &[&Tensor], axis: isize) -> Result<Tensor> {
        let op = "cat";
        let first = match tensors.first() {
            Some(t) => *t,
            None => return Err(TensorError::invalid(op, "needs at least one tensor")),
        };
        let ax = normalize_axis(op, axis, first.shape())?;
        let mut total = 0usize;
        for (i, t) in tensors.iter().enumerate() {
            first.same_dtype(t, op)?;
            let ok = t.ndim() == first.ndim()
                && t.shape()
                    .iter()
                    .zip(first.shape())
                    .enumerate()
                    .all(|(d, (a, b))| d == ax || a == b);
            if !ok {
                return Err(TensorError::shapes(
                    op,
                    first.shape(),
                    t.shape(),
                    format!("shapes must match except on axis {ax} (tensor {i})"),
                ));
            }
            total += t.shape()[ax];
        }
        let mut out_shape: Shape = Shape::from_slice(first.shape());
        out_shape[ax] = total;
        let ost = contiguous_strides(&out_shape);
        let n: usize = out_shape.iter().product();
        any_dispatch!(first.dtype(), T => {
            let mut v: Vec<T> = vec![T::default(); n];
            let mut start = 0usize;
            for t in tensors {
                let (s, l) = t.typed::<T>(op)?;
                copy_into(&mut v, &ost, start * ost[ax], s, l);
                start += t.shape()[ax];
            }
            Ok(Tensor::from_vec_unchecked(v, &out_shape))
        })
    }

    /// Stack same-shaped tensors along a new `axis` in `0..=ndim` (negative counts from the end).
    ///
    /// ```
    /// use heft_tensor::Tensor;
    /// let a = Tensor::from_vec(vec![1.0f32, 2.0], &[2]).unwrap();
    /// let b = Tensor::from_vec(vec![3.0f32, 4.0], &[2]).unwrap();
    /// let s = Tensor::stack(&[&a, &b], -1).unwrap();
    /// assert_eq!(s.shape(), &[2, 2]);
    /// assert_eq!(s.to_vec::<f32>().unwrap(), vec![1.0, 3.0, 2.0, 4.0]);
    /// ```
    pub fn stack(tensors: &[&Tensor], axis: isize) -> Result<Tensor> {
        let op = "stack";
        let first = match tensors.first() {
            Some(t) => *t,
            None => return Err(TensorError::invalid(op, "needs at least one tensor")),
        };
        let ax = normalize_axis_rank(op, axis, first.ndim() + 1, first.shape())?;
        for (i, t) in tensors.iter().enumerate() {
            first.same_dtype(t, op)?;
            if t.shape() != first.shape() {
                return Err(TensorError::shapes(
                    op,
                    first.shape(),
                    t.shape(),
                    format!("all shapes must be equal (tensor {i})"),
                ));
            }
        }
        let views: Vec<Tensor> = tensors
            .iter()
            .map(|t| t.unsqueeze(ax as isize))
            .collect::<Result<_>>()?;
        let refs: Vec<&Tensor> = views.iter().collect();
        Tensor::cat(&refs, ax as isize)
    }

    /// Split `axis` into consecutive views of the given sizes (which must sum to its size).
    ///
    /// ```
    /// use heft_tensor::{DType, Tensor};
    /// let x = Tensor::arange(0.0, 5.0, 1.0, DType::F32).unwrap();
    /// let p = x.split(&[2, 0, 3], 0).unwrap();
    /// assert_eq!(p[2].to_vec::<f32>().unwrap(), vec![2.0, 3.0, 4.0]);
    /// assert!(p[0].same_storage(&x));
    /// ```
    pub fn split(&self, sizes: &[usize], axis: isize) -> Result<Vec<Tensor>> {
        let op = "split";
        let ax = normalize_axis(op, axis, self.shape())?;
        let d = self.shape()[ax];
        let sum = sizes
            .iter()
            .try_fold(0usize, |a, &s| a.checked_add(s))
            .unwrap_or(usize::MAX);
        if sum != d {
            return Err(TensorError::shape(
                op,
                self.shape(),
                format!("sizes {sizes:?} sum to {sum}, but axis {ax} has size {d}"),
            ));
        }
        let mut start = 0;
        sizes
            .iter()
            .map(|&s| {
                let v = self.narrow(ax as isize, start, s);
                start += s;
                v
            })
            .collect()
    }

    /// Split `axis` into views of `size` elements; the last may be smaller.
    ///
    /// `size` must be at least 1. An empty axis gives one empty view.
    pub fn split_size(&self, size: usize, axis: isize) -> Result<Vec<Tensor>> {
        let op = "split_size";
        let ax = normalize_axis(op, axis, self.shape())?;
        if size == 0 {
            return Err(TensorError::invalid(op, "size must be at least 1"));
        }
        let d = self.shape()[ax];
        if d == 0 {
            return Ok(vec![self.clone()]);
        }
        (0..d)
            .step_by(size)
            .map(|s| self.narrow(ax as isize, s, size.min(d - s)))
            .collect()
    }

    /// Split `axis` into at most `n` views of `ceil(size / n)` elements (PyTorch `chunk`).
    ///
    /// As in PyTorch, fewer than `n` views come back when the size does not
    /// allow `n` non-empty chunks (`chunk(4)` of 6 elements gives 3 views of 2).
    /// An empty axis gives one empty view. `n` must be at least 1.
    pub fn chunk(&self, n: usize, axis: isize) -> Result<Vec<Tensor>> {
        let op = "chunk";
        let ax = normalize_axis(op, axis, self.shape())?;
        if n == 0 {
            return Err(TensorError::invalid(
                op,
                "the number of chunks must be at least 1",
            ));
        }
        let d = self.shape()[ax];
        self.split_size(d.div_ceil(n).max(1), ax as isize)
    }

    /// Pad with a constant: `pads[d] = (before, after)` elements added on axis `d` (any dtype).
    ///
    /// `pads.len()` must equal the number of dimensions. `value` is converted
    /// to this tensor's dtype.
    ///
    /// ```
    /// use heft_tensor::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0], &[1, 2]).unwrap();
    /// let p = x.pad(&[(0, 1), (1, 0)], 9.0).unwrap();
    /// assert_eq!(p.shape(), &[2, 3]);
    /// assert_eq!(p.to_vec::<f32>().unwrap(), vec![9.0, 1.0, 2.0, 9.0, 9.0, 9.0]);
    /// ```
    pub fn pad(&self, pads: &[(usize, usize)], value: f64) -> Result<Tensor> {
        let op = "pad";
        if pads.len() != self.ndim() {
            return Err(TensorError::shape(
                op,
                self.shape(),
                format!(
                    "needs one (before, after) pair per dimension, got {} pairs",
                    pads.len()
                ),
            ));
        }
        let mut out_shape = Shape::new();
        for (&d, &(b, a)) in self.shape().iter().zip(pads) {
            match d.checked_add(b).and_then(|x| x.checked_add(a)) {
                Some(x) => out_shape.push(x),
                None => {
                    return Err(TensorError::shape(
                        op,
                        self.shape(),
                        "padded size overflows",
                    ))
                }
            }
        }
        let n = out_shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| TensorError::shape(op, self.shape(), "padded size overflows"))?;
        buffer_len(op, &out_shape, self.dtype())?;
        let ost = contiguous_strides(&out_shape);
        // Nothing is copied into an empty output, whose strides may be saturated.
        let start: usize = if n == 0 {
            0
        } else {
            pads.iter().zip(&ost).map(|(p, s)| p.0 * s).sum()
        };
        any_dispatch!(self.dtype(), T => {
            let mut v: Vec<T> = vec![T::from_f64(value); n];
            let (s, l) = self.typed::<T>(op)?;
            copy_into(&mut v, &ost, start, s, l);
            Ok(Tensor::from_vec_unchecked(v, &out_shape))
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::{DType, Tensor, TensorError};

    fn f(v: Vec<f64>, s: &[usize]) -> Tensor {
        Tensor::from_vec(v, s).unwrap()
    }

    #[test]
    fn cat_by_hand_incl_views() {
        let a = f(vec![1., 2., 3., 4.], &[2, 2]);
        let b = f(vec![5., 6., 7., 8., 9., 10.], &[3, 2]);
        let c = Tensor::cat(&[&a, &b], 0).unwrap();
        assert_eq!(c.shape(), &[5, 2]);
        assert_eq!(
            c.to_vec::<f64>().unwrap(),
            vec![1., 2., 3., 4., 5., 6., 7., 8., 9., 10.]
        );
        // a^T is [[1, 3], [2, 4]]; cat along columns with b^T's first two columns.
        let bt = b.t().unwrap().narrow(1, 0, 2).unwrap();
        let c = Tensor::cat(&[&a.t().unwrap(), &bt], -1).unwrap();
        assert_eq!(
            c.to_vec::<f64>().unwrap(),
            vec![1., 3., 5., 7., 2., 4., 6., 8.]
        );
        let e = Tensor::zeros(&[0, 2], DType::F64);
        let c = Tensor::cat(&[&e, &a, &e], 0).unwrap();
        assert!(c.equal(&a));
    }

    #[test]
    fn cat_errors() {
        let a = f(vec![1., 2.], &[1, 2]);
        assert_eq!(
            Tensor::cat(&[], 0).unwrap_err().to_string(),
            "cat: needs at least one tensor"
        );
        let i = Tensor::zeros(&[1, 2], DType::I64);
        assert!(matches!(
            Tensor::cat(&[&a, &i], 0).unwrap_err(),
            TensorError::DTypeMismatch { op: "cat", .. }
        ));
        let r = f(vec![1., 2.], &[2]);
        assert_eq!(
            Tensor::cat(&[&a, &r], 0).unwrap_err().to_string(),
            "cat: lhs [1, 2] and rhs [2]: shapes must match except on axis 0 (tensor 1)"
        );
    }

    #[test]
    fn stack_and_split_round_trip() {
        let a = f(vec![1., 2., 3.], &[3]);
        let b = f(vec![4., 5., 6.], &[3]);
        let s = Tensor::stack(&[&a, &b], 0).unwrap();
        assert_eq!(s.to_vec::<f64>().unwrap(), vec![1., 2., 3., 4., 5., 6.]);
        let s1 = Tensor::stack(&[&a, &b], 1).unwrap();
        assert_eq!(s1.to_vec::<f64>().unwrap(), vec![1., 4., 2., 5., 3., 6.]);
        let parts = s1.split(&[1, 1], 1).unwrap();
        assert_eq!(parts[1].to_vec::<f64>().unwrap(), vec![4., 5., 6.]);
        assert!(Tensor::stack(&[&a, &b], 2).is_err());
        assert!(Tensor::stack(&[&a, &s], 0).is_err());
        let x = Tensor::arange(0.0, 7.0, 1.0, DType::F32).unwrap();
        let c = x.chunk(3, 0).unwrap();
        let sizes: Vec<usize> = c.iter().map(|t| t.shape()[0]).collect();
        assert_eq!(sizes, vec![3, 3, 1]);
        let c = Tensor::arange(0.0, 6.0, 1.0, DType::F32)
            .unwrap()
            .chunk(4, 0)
            .unwrap();
        assert_eq!(c.len(), 3);
        let p = x.split_size(3, -1).unwrap();
        assert_eq!(p[2].to_vec::<f32>().unwrap(), vec![6.0]);
        assert!(x.split(&[3, 3], 0).is_err());
        assert!(x.split_size(0, 0).is_err());
        assert!(x.chunk(0, 0).is_err());
    }

    #[test]
    fn pad_to_an_impossible_size_is_an_error() {
        // Found by fuzzing: 2^63 f32 elements fit usize but not a Vec.
        let x = Tensor::ones(&[1, 1], crate::DType::F32);
        assert!(x.pad(&[(1 << 63, 0), (0, 0)], 0.0).is_err());
        // An empty result computes no offset (its strides may be saturated)...
        let e = Tensor::ones(&[1, 0, 1], crate::DType::F32);
        let p = e.pad(&[(1 << 62, 0), (0, 0), (1, 0)], 0.0).unwrap();
        assert_eq!(p.shape(), &[(1 << 62) + 1, 0, 2]);
        // ... and one whose non-zero dims overflow is an error.
        assert!(e.pad(&[(1 << 63, 0), (0, 0), (5, 0)], 0.0).is_err());
    }

    #[test]
    fn pad_by_hand() {
        let x = Tensor::from_vec(vec![1i64, 2, 3, 4], &[2, 2]).unwrap();
        let p = x.t().unwrap().pad(&[(1, 0), (0, 2)], -1.0).unwrap();
        assert_eq!(p.shape(), &[3, 4]);
        assert_eq!(
            p.to_vec::<i64>().unwrap(),
            vec![-1, -1, -1, -1, 1, 3, -1, -1, 2, 4, -1, -1]
        );
        let s = Tensor::scalar(2.5f32);
        assert_eq!(s.pad(&[], 0.0).unwrap().item::<f32>().unwrap(), 2.5);
        assert_eq!(
            x.pad(&[(1, 1)], 0.0).unwrap_err().to_string(),
            "pad: shape [2, 2]: needs one (before, after) pair per dimension, got 1 pairs"
        );
    }
}
