//! [`Layout`]: how a tensor's logical elements map onto its storage.
//!
//! A layout is a small value type: the shape (inline, up to four dimensions
//! without allocating), the strides in elements and an offset. Element
//! `[i0, i1, ...]` lives at `offset + i0 * strides[0] + i1 * strides[1] + ...`.
//! A stride of 0 repeats an element (broadcasting). Every view op
//! (transpose, permute, narrow, slice with step, broadcast, squeeze,
//! unsqueeze, reshape where possible) is a pure function from layout to
//! layout: views never copy data.
//!
//! ```
//! use heft_tensor::Layout;
//! let l = Layout::contiguous(&[2, 3]);
//! let t = l.transpose(0, 1).unwrap();
//! assert_eq!(t.shape(), &[3, 2]);
//! assert_eq!(t.strides(), &[1, 3]);
//! assert!(!t.is_contiguous());
//! ```

use crate::error::{Result, TensorError};
use smallvec::SmallVec;

/// A list of dimensions (or strides) stored inline up to rank 4.
pub type Shape = SmallVec<[usize; 4]>;

/// Shape, strides (in elements) and offset of a strided tensor view.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Layout {
    shape: Shape,
    strides: Shape,
    offset: usize,
}

impl Clone for Layout {
    // Layouts are cloned by every view and every `Tensor::clone`, so this
    // shows on small ops: `SmallVec`'s own `clone` goes through an
    // element-by-element iterator, and `from_slice` calls `memcpy`.
    #[inline]
    fn clone(&self) -> Self {
        let n = self.shape.len();
        if n <= 4 {
            // Shape and strides have the same rank: one branch-free copy
            // of both (`get` past the rank reads as 0), no jump table.
            let (sh, st) = (&self.shape[..], &self.strides[..]);
            let at = |v: &[usize], i: usize| v.get(i).copied().unwrap_or(0);
            let a = [at(sh, 0), at(sh, 1), at(sh, 2), at(sh, 3)];
            let b = [at(st, 0), at(st, 1), at(st, 2), at(st, 3)];
            return Layout {
                shape: SmallVec::from_buf_and_len(a, n),
                strides: SmallVec::from_buf_and_len(b, n),
                offset: self.offset,
            };
        }
        Layout {
            shape: shape_of(&self.shape),
            strides: shape_of(&self.strides),
            offset: self.offset,
        }
    }
}

/// A [`Shape`] from a slice; ranks up to 4 as fixed-size moves (no `memcpy` call).
#[inline]
pub(crate) fn shape_of(s: &[usize]) -> Shape {
    let buf = match *s {
        [] => return SmallVec::new(),
        [a] => [a, 0, 0, 0],
        [a, b] => [a, b, 0, 0],
        [a, b, c] => [a, b, c, 0],
        [a, b, c, d] => [a, b, c, d],
        _ => return SmallVec::from_slice(s),
    };
    SmallVec::from_buf_and_len(buf, s.len())
}

/// Resolve a possibly negative axis (`-1` is the last) against a rank.
pub fn normalize_axis(op: &'static str, axis: isize, shape: &[usize]) -> Result<usize> {
    normalize_axis_rank(op, axis, shape.len(), shape)
}

/// Like [`normalize_axis`] for an insertion point, where `rank` may be one more than `shape.len()`.
pub(crate) fn normalize_axis_rank(
    op: &'static str,
    axis: isize,
    rank: usize,
    shape: &[usize],
) -> Result<usize> {
    let r = rank as isize;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r {
        return Err(TensorError::AxisOutOfRange {
            op,
            axis,
            shape: shape.into(),
        });
    }
    Ok(a as usize)
}

/// Row-major strides of a packed tensor of this shape.
pub fn contiguous_strides(shape: &[usize]) -> Shape {
    // Ranks up to 4 (inline shapes) as fixed-size arithmetic: this runs for
    // every new tensor, and the general loop costs more than the op on a
    // small one.
    let d = |x: usize| x.max(1);
    let buf = match *shape {
        [] => return SmallVec::new(),
        [_] => [1, 0, 0, 0],
        [_, b] => [d(b), 1, 0, 0],
        [_, b, c] => {
            let s1 = d(c);
            [s1.saturating_mul(d(b)), s1, 1, 0]
        }
        [_, b, c, e] => {
            let s2 = d(e);
            let s1 = s2.saturating_mul(d(c));
            [s1.saturating_mul(d(b)), s1, s2, 1]
        }
        _ => return contiguous_strides_general(shape),
    };
    SmallVec::from_buf_and_len(buf, shape.len())
}

fn contiguous_strides_general(shape: &[usize]) -> Shape {
    let mut strides: Shape = SmallVec::from_elem(0, shape.len());
    let mut s = 1usize;
    for i in (0..shape.len()).rev() {
        strides[i] = s;
        s = s.saturating_mul(shape[i].max(1));
    }
    strides
}

/// Shape equality as an inline loop (slice `==` on `usize` calls `memcmp`,
/// which costs more than the compare for the few dims a shape has).
#[inline]
pub fn same_dims(a: &[usize], b: &[usize]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// The numpy broadcast of two shapes, or an error naming `op` and both shapes.
pub fn broadcast_shapes(op: &'static str, a: &[usize], b: &[usize]) -> Result<Shape> {
    if same_dims(a, b) {
        return Ok(shape_of(a));
    }
    let n = a.len().max(b.len());
    let mut out: Shape = SmallVec::from_elem(0, n);
    for i in 0..n {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return Err(TensorError::shapes(
                op,
                a,
                b,
                format!("cannot broadcast: dimension {da} and {db} differ and neither is 1"),
            ));
        };
    }
    Ok(out)
}

/// Number of elements of a shape (1 for a scalar).
pub fn numel(shape: &[usize]) -> usize {
    // Any 0 makes it empty, whatever the product of the other dims would be.
    if shape.contains(&0) {
        0
    } else {
        shape.iter().product()
    }
}

/// The element count of a shape that views may take: `None` when the
/// product of its non-zero dims overflows `usize` (then some sub-product an
/// op computes, such as a reduction's output size, would overflow too).
pub(crate) fn checked_numel(shape: &[usize]) -> Option<usize> {
    let p = shape
        .iter()
        .filter(|&&d| d != 0)
        .try_fold(1usize, |a, &d| a.checked_mul(d))?;
    Some(if shape.contains(&0) { 0 } else { p })
}

/// The element count of a new buffer of `shape`, or an error naming `op`
/// when that many elements of `dtype` could not exist (the count overflows
/// or the buffer would exceed `isize::MAX` bytes).
pub(crate) fn buffer_len(op: &'static str, shape: &[usize], dtype: crate::DType) -> Result<usize> {
    checked_numel(shape)
        .filter(|n| {
            n.checked_mul(dtype.size_in_bytes())
                .is_some_and(|b| b <= isize::MAX as usize)
        })
        .ok_or_else(|| TensorError::shape(op, shape, "too many elements for one buffer"))
}

impl Layout {
    /// A packed row-major layout starting at offset 0.
    pub fn contiguous(shape: &[usize]) -> Self {
        Layout {
            shape: shape_of(shape),
            strides: contiguous_strides(shape),
            offset: 0,
        }
    }

    /// A layout from its parts (not checked against any storage).
    pub fn from_parts(shape: &[usize], strides: &[usize], offset: usize) -> Result<Self> {
        if shape.len() != strides.len() {
            return Err(TensorError::shapes(
                "Layout::from_parts",
                shape,
                strides,
                "shape and strides must have the same rank",
            ));
        }
        Ok(Layout {
            shape: shape_of(shape),
            strides: SmallVec::from_slice(strides),
            offset,
        })
    }

    /// The dimensions.
    #[inline]
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The strides, in elements.
    #[inline]
    pub fn strides(&self) -> &[usize] {
        &self.strides
    }

    /// Storage index of the first element.
    #[inline]
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Number of dimensions.
    #[inline]
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements.
    #[inline]
    pub fn numel(&self) -> usize {
        numel(&self.shape)
    }

    /// The element count when the layout is exactly what [`Layout::contiguous`]
    /// would build for its shape (offset 0, canonical strides), else `None`.
    ///
    /// Elementwise ops use it to give their packed output a clone of an
    /// input's layout instead of building one (cheaper on small tensors).
    #[inline]
    pub(crate) fn canonical_numel(&self) -> Option<usize> {
        if self.offset != 0 {
            return None;
        }
        let mut expected = 1usize;
        let mut n = 1usize;
        for (&d, &s) in self.shape.iter().zip(self.strides.iter()).rev() {
            if s != expected {
                return None;
            }
            expected = expected.saturating_mul(d.max(1));
            n = n.saturating_mul(d);
        }
        Some(n)
    }

    /// True when the elements are packed in row-major order (strides of size-1 dims ignored).
    pub fn is_contiguous(&self) -> bool {
        // No elements: trivially packed, whatever the strides of the other dims.
        if self.shape.contains(&0) {
            return true;
        }
        let mut expected = 1usize;
        for i in (0..self.shape.len()).rev() {
            let d = self.shape[i];
            if d != 1 && self.strides[i] != expected {
                return false;
            }
            expected *= d;
        }
        true
    }

    /// `Some(start..end)` of storage when the layout is contiguous.
    ///
    /// An empty layout gives the empty range `0..0`, valid on any buffer.
    pub fn contiguous_range(&self) -> Option<std::ops::Range<usize>> {
        // One pass over the dims: the running product is both the expected
        // stride and, at the end, the element count.
        let mut expected = 1usize;
        let mut packed = true;
        for (&d, &s) in self.shape.iter().zip(&self.strides).rev() {
            if d == 0 {
                return Some(0..0);
            }
            packed &= d == 1 || s == expected;
            // Saturating: a zero dim further out may still make it empty.
            expected = expected.saturating_mul(d);
        }
        packed.then(|| self.offset..self.offset + expected)
    }

    /// One past the largest storage index touched (or `offset` when empty).
    pub fn span_end(&self) -> usize {
        if self.numel() == 0 {
            return self.offset;
        }
        self.offset
            + self
                .shape
                .iter()
                .zip(&self.strides)
                .map(|(d, s)| (d - 1) * s)
                .sum::<usize>()
            + 1
    }

    /// Swap two axes (negative axes count from the end).
    pub fn transpose(&self, a: isize, b: isize) -> Result<Layout> {
        let a = normalize_axis("transpose", a, &self.shape)?;
        let b = normalize_axis("transpose", b, &self.shape)?;
        let mut l = self.clone();
        l.shape.swap(a, b);
        l.strides.swap(a, b);
        Ok(l)
    }

    /// Reorder axes: output axis `i` is input axis `perm[i]`.
    pub fn permute(&self, perm: &[usize]) -> Result<Layout> {
        let n = self.ndim();
        let mut seen: SmallVec<[bool; 8]> = SmallVec::from_elem(false, n);
        if perm.len() != n
            || perm
                .iter()
                .any(|&p| p >= n || std::mem::replace(&mut seen[p], true))
        {
            return Err(TensorError::shapes(
                "permute",
                &self.shape,
                perm,
                "the permutation must list every axis exactly once",
            ));
        }
        Ok(Layout {
            shape: perm.iter().map(|&p| self.shape[p]).collect(),
            strides: perm.iter().map(|&p| self.strides[p]).collect(),
            offset: self.offset,
        })
    }

    /// Keep `len` elements of `axis` starting at `start`.
    pub fn narrow(&self, axis: isize, start: usize, len: usize) -> Result<Layout> {
        let ax = normalize_axis("narrow", axis, &self.shape)?;
        let d = self.shape[ax];
        if start.checked_add(len).is_none_or(|e| e > d) {
            return Err(TensorError::shape(
                "narrow",
                &self.shape,
                format!(
                    "range {start}..{} is out of bounds for axis {ax} of size {d}",
                    start.saturating_add(len)
                ),
            ));
        }
        let mut l = self.clone();
        l.shape[ax] = len;
        // Only a non-empty view moves its offset: an empty one may sit on an
        // empty buffer, where any offset but the current one is out of bounds.
        if l.numel() > 0 {
            l.offset += start * self.strides[ax];
        }
        Ok(l)
    }

    /// Elements `start, start + step, ...` below `end` along `axis` (`step >= 1`).
    pub fn slice(&self, axis: isize, start: usize, end: usize, step: usize) -> Result<Layout> {
        let ax = normalize_axis("slice", axis, &self.shape)?;
        let d = self.shape[ax];
        if step == 0 {
            return Err(TensorError::invalid("slice", "step must be at least 1"));
        }
        if start > end || end > d {
            return Err(TensorError::shape(
                "slice",
                &self.shape,
                format!("range {start}..{end} is out of bounds for axis {ax} of size {d}"),
            ));
        }
        let len = (end - start).div_ceil(step);
        let mut l = self.clone();
        l.shape[ax] = len;
        // A step at or past the end keeps one element, whose stride is never
        // used: saturate instead of overflowing (a non-empty view with two or
        // more elements has `stride * step` inside its storage).
        l.strides[ax] = self.strides[ax].saturating_mul(step);
        // As in `narrow`: an empty view keeps its offset.
        if l.numel() > 0 {
            l.offset += start * self.strides[ax];
        }
        Ok(l)
    }

    /// Broadcast to `shape` (numpy rules: leading dims added, size-1 dims repeated with stride 0).
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Layout> {
        let n = shape.len();
        let m = self.ndim();
        let err = || {
            TensorError::shapes(
                "broadcast_to",
                &self.shape,
                shape,
                "each dimension must match or be 1",
            )
        };
        if m > n {
            return Err(err());
        }
        if checked_numel(shape).is_none() {
            return Err(TensorError::shapes(
                "broadcast_to",
                &self.shape,
                shape,
                "the product of the dimensions overflows usize",
            ));
        }
        let mut strides: Shape = SmallVec::from_elem(0, n);
        for i in 0..m {
            let (src, dst) = (self.shape[i], shape[n - m + i]);
            if src == dst {
                strides[n - m + i] = self.strides[i];
            } else if src == 1 {
                strides[n - m + i] = 0;
            } else {
                return Err(err());
            }
        }
        Ok(Layout {
            shape: shape_of(shape),
            strides,
            offset: self.offset,
        })
    }

    /// Remove a size-1 axis.
    pub fn squeeze(&self, axis: isize) -> Result<Layout> {
        let ax = normalize_axis("squeeze", axis, &self.shape)?;
        if self.shape[ax] != 1 {
            return Err(TensorError::shape(
                "squeeze",
                &self.shape,
                format!("axis {ax} has size {}, not 1", self.shape[ax]),
            ));
        }
        let mut l = self.clone();
        l.shape.remove(ax);
        l.strides.remove(ax);
        Ok(l)
    }

    /// Insert a size-1 axis at `axis` (`-1` appends).
    pub fn unsqueeze(&self, axis: isize) -> Result<Layout> {
        let ax = normalize_axis_rank("unsqueeze", axis, self.ndim() + 1, &self.shape)?;
        let mut l = self.clone();
        let stride = if ax < self.ndim() {
            self.strides[ax].saturating_mul(self.shape[ax])
        } else {
            1
        };
        l.shape.insert(ax, 1);
        l.strides.insert(ax, stride);
        Ok(l)
    }

    /// The same elements seen with a new shape, if that is possible without copying.
    ///
    /// Returns `Ok(None)` when the element counts agree but the strides forbid a view
    /// (the caller then copies), and an error when the element counts differ.
    pub fn reshape(&self, shape: &[usize]) -> Result<Option<Layout>> {
        let count = checked_numel(shape);
        if count != Some(self.numel()) {
            return Err(TensorError::shapes(
                "reshape",
                &self.shape,
                shape,
                match count {
                    Some(c) => format!("element counts differ ({} vs {c})", self.numel()),
                    None => "the product of the new dimensions overflows usize".to_string(),
                },
            ));
        }
        if self.is_contiguous() {
            return Ok(Some(Layout {
                shape: shape_of(shape),
                strides: contiguous_strides(shape),
                offset: self.offset,
            }));
        }
        // Group the old dims (size-1 dims dropped) into runs that are contiguous
        // among themselves; each new dim must fall within one run.
        let old: SmallVec<[(usize, usize); 8]> = self
            .shape
            .iter()
            .zip(&self.strides)
            .filter(|(d, _)| **d != 1)
            .map(|(d, s)| (*d, *s))
            .collect();
        let mut new_strides: Shape = SmallVec::from_elem(0, shape.len());
        let mut oi = 0; // index into old
        let mut ni = 0; // index into new
        while ni < shape.len() {
            if shape[ni] == 1 {
                new_strides[ni] = 0;
                ni += 1;
                continue;
            }
            if oi >= old.len() {
                return Ok(None);
            }
            // Take old dims [oi, oj) and new dims [ni, nj) with equal products.
            let (mut op, mut np) = (old[oi].0, shape[ni]);
            let (mut oj, mut nj) = (oi + 1, ni + 1);
            while op != np {
                if op < np {
                    if oj >= old.len() {
                        return Ok(None);
                    }
                    op *= old[oj].0;
                    oj += 1;
                } else {
                    if nj >= shape.len() {
                        return Ok(None);
                    }
                    np *= shape[nj];
                    nj += 1;
                }
            }
            // The old run must be contiguous among itself.
            for k in oi..oj - 1 {
                if old[k].1 != old[k + 1].1 * old[k + 1].0 {
                    return Ok(None);
                }
            }
            let mut stride = old[oj - 1].1;
            for k in (ni..nj).rev() {
                new_strides[k] = stride;
                stride *= shape[k];
            }
            oi = oj;
            ni = nj;
        }
        Ok(Some(Layout {
            shape: shape_of(shape),
            strides: new_strides,
            offset: self.offset,
        }))
    }

    /// Storage index of a multi-index (unchecked beyond debug assertions).
    #[inline]
    pub fn index_of(&self, idx: &[usize]) -> usize {
        debug_assert_eq!(idx.len(), self.ndim());
        self.offset
            + idx
                .iter()
                .zip(&self.strides)
                .map(|(i, s)| i * s)
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_to_an_overflowing_shape_is_an_error() {
        // Found by fuzzing: the view was made and its `numel()` then overflowed.
        let l = Layout::contiguous(&[1, 1]);
        assert!(l.broadcast_to(&[1 << 63, 2]).is_err());
        assert!(l.broadcast_to(&[3, usize::MAX, usize::MAX]).is_err());
        // So is an empty shape whose other dims overflow (a reduction's output size would).
        assert!(l.broadcast_to(&[0, usize::MAX, usize::MAX]).is_err());
        // Huge but countable, or empty, is fine (no element is ever stored).
        assert_eq!(
            l.broadcast_to(&[usize::MAX, 1]).unwrap().numel(),
            usize::MAX
        );
        assert_eq!(l.broadcast_to(&[usize::MAX, 0]).unwrap().numel(), 0);
    }

    #[test]
    fn unsqueeze_of_an_empty_tensor_with_huge_dims() {
        // Empty layouts have saturated strides; unsqueeze must not overflow on them.
        let l = Layout::contiguous(&[0, 1 << 63, 4]);
        let u = l.unsqueeze(1).unwrap();
        assert_eq!(u.shape(), &[0, 1, 1 << 63, 4]);
        assert_eq!(u.numel(), 0);
    }

    #[test]
    fn slice_with_a_huge_step_keeps_one_element() {
        // Found by fuzzing: `stride * step` overflowed.
        let l = Layout::contiguous(&[3, 4])
            .slice(0, 1, 3, usize::MAX)
            .unwrap();
        assert_eq!(l.shape(), &[1, 4]);
        assert_eq!(l.offset(), 4);
        let t = crate::Tensor::arange(0.0, 12.0, 1.0, crate::DType::F64)
            .unwrap()
            .reshape(&[3, 4])
            .unwrap();
        let s = t.slice(-1, 2, 4, usize::MAX - 1).unwrap();
        assert_eq!(s.to_vec::<f64>().unwrap(), vec![2.0, 6.0, 10.0]);
    }

    #[test]
    fn reshape_view_of_transposed_splits_a_dim() {
        // [4, 6] transposed is [6, 4] with strides [1, 6]; splitting dim 0 into [2, 3] is a view.
        let l = Layout::contiguous(&[4, 6]).transpose(0, 1).unwrap();
        let r = l.reshape(&[2, 3, 4]).unwrap().unwrap();
        assert_eq!(r.strides(), &[3, 1, 6]);
        // Merging the two transposed dims is not.
        assert!(l.reshape(&[24]).unwrap().is_none());
    }

    #[test]
    fn canonical_numel_only_for_fresh_contiguous_layouts() {
        for shape in [
            &[][..],
            &[5],
            &[2, 3],
            &[2, 1, 3],
            &[1, 1, 1, 1, 7],
            &[0, 3],
            &[3, 0],
        ] {
            let l = Layout::contiguous(shape);
            assert_eq!(l.canonical_numel(), Some(numel(shape)), "{shape:?}");
        }
        // Packed but not canonical: an offset, or a size-1 dim with another stride.
        let off = Layout::contiguous(&[4, 3]).narrow(0, 1, 2).unwrap();
        assert!(off.contiguous_range().is_some());
        assert_eq!(off.canonical_numel(), None);
        let odd = Layout::from_parts(&[2, 1, 3], &[3, 7, 1], 0).unwrap();
        assert!(odd.is_contiguous());
        assert_eq!(odd.canonical_numel(), None);
        // Not packed.
        let t = Layout::contiguous(&[2, 3]).transpose(0, 1).unwrap();
        assert_eq!(t.canonical_numel(), None);
    }

    #[test]
    fn empty_narrow_has_an_empty_range() {
        // [0, 3] narrowed on axis 1 keeps an offset past the (empty) storage.
        let l = Layout::contiguous(&[0, 3]).narrow(1, 2, 1).unwrap();
        assert_eq!(l.contiguous_range(), Some(0..0));
    }

    #[test]
    fn slice_with_step() {
        let l = Layout::contiguous(&[10]).slice(0, 1, 10, 3).unwrap();
        assert_eq!(l.shape(), &[3]);
        assert_eq!(l.strides(), &[3]);
        assert_eq!(l.offset(), 1);
    }

    #[test]
    fn empty_views_stay_inside_an_empty_buffer() {
        // [0, 4] has no elements: narrowing or slicing its other axis must not
        // move the offset past the (empty) storage.
        let l = Layout::contiguous(&[0, 4]);
        assert_eq!(l.narrow(1, 1, 3).unwrap().offset(), 0);
        assert_eq!(l.slice(1, 1, 4, 2).unwrap().offset(), 0);
        // Empty is packed whichever axis is 0 (this used to depend on the order).
        assert!(Layout::contiguous(&[0, 5])
            .transpose(0, 1)
            .unwrap()
            .is_contiguous());
        assert!(Layout::contiguous(&[5, 0])
            .transpose(0, 1)
            .unwrap()
            .is_contiguous());
        let odd = Layout::from_parts(&[0], &[1], 7).unwrap();
        assert_eq!(odd.contiguous_range(), Some(0..0));
    }

    #[test]
    fn broadcast_errors_name_both_shapes() {
        let e = broadcast_shapes("add", &[2, 3], &[4])
            .unwrap_err()
            .to_string();
        assert_eq!(e, "add: lhs [2, 3] and rhs [4]: cannot broadcast: dimension 3 and 4 differ and neither is 1");
    }
}
