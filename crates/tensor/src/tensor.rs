//! [`Tensor`]: an n-dimensional array of one dtype over shared storage.

use crate::dtype::{DType, Element, Float};
use crate::error::{Result, TensorError};
use crate::kernels::split::collect_chunks;
use crate::layout::{numel, Layout};
use crate::storage::Storage;
use crate::strided;
use std::sync::Arc;

/// An n-dimensional array: a [`Layout`] over reference-counted [`Storage`].
///
/// Cloning a tensor is cheap (it shares the storage). View ops
/// ([`transpose`](Tensor::transpose), [`narrow`](Tensor::narrow), ...) return
/// tensors sharing the same storage; compute ops return fresh packed tensors.
/// Every fallible op returns a [`Result`] whose error names the op and shapes.
#[derive(Clone)]
pub struct Tensor {
    storage: Arc<Storage>,
    layout: Layout,
}

/// Dispatch a generic body over the compute dtypes (f32, f64), erroring on others.
macro_rules! float_dispatch {
    ($op:expr, $dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            $crate::DType::F32 => {
                type $T = f32;
                $body
            }
            $crate::DType::F64 => {
                type $T = f64;
                $body
            }
            d => Err($crate::TensorError::UnsupportedDType {
                op: $op,
                dtype: d,
                hint: "compute in f32 or f64 (convert with to_dtype)",
            }),
        }
    };
}
pub(crate) use float_dispatch;

/// Dispatch a generic body over every dtype.
macro_rules! any_dispatch {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            $crate::DType::F32 => {
                type $T = f32;
                $body
            }
            $crate::DType::F64 => {
                type $T = f64;
                $body
            }
            $crate::DType::F16 => {
                type $T = half::f16;
                $body
            }
            $crate::DType::BF16 => {
                type $T = half::bf16;
                $body
            }
            $crate::DType::I64 => {
                type $T = i64;
                $body
            }
            $crate::DType::Bool => {
                type $T = bool;
                $body
            }
        }
    };
}
pub(crate) use any_dispatch;

impl Tensor {
    // ----- construction -------------------------------------------------

    /// A tensor over existing storage and layout (checked to lie inside the storage).
    pub fn from_storage(storage: Arc<Storage>, layout: Layout) -> Result<Tensor> {
        if layout.numel() > 0 && layout.span_end() > storage.len() {
            return Err(TensorError::shape(
                "from_storage",
                layout.shape(),
                format!(
                    "layout reaches index {} but storage holds {}",
                    layout.span_end(),
                    storage.len()
                ),
            ));
        }
        Ok(Tensor { storage, layout })
    }

    /// A packed tensor from a vector (`data.len()` must equal the shape's element count).
    pub fn from_vec<T: Element>(data: Vec<T>, shape: &[usize]) -> Result<Tensor> {
        if data.len() != numel(shape) {
            return Err(TensorError::shape(
                "from_vec",
                shape,
                format!(
                    "needs {} elements but {} were given",
                    numel(shape),
                    data.len()
                ),
            ));
        }
        Ok(Tensor::from_vec_unchecked(data, shape))
    }

    /// A packed tensor of `shape` from the exactly `numel(shape)` elements
    /// `it` yields; small tensors are built with no buffer allocation.
    pub(crate) fn from_iter_unchecked<T: Element>(
        it: impl Iterator<Item = T>,
        shape: &[usize],
    ) -> Tensor {
        Tensor {
            storage: Arc::new(T::collect_storage(numel(shape), it)),
            layout: Layout::contiguous(shape),
        }
    }

    /// A packed tensor from `n` elements and a layout that is already
    /// canonical for them (see `Layout::canonical_numel`).
    #[inline]
    pub(crate) fn from_iter_layout<T: Element>(
        it: impl Iterator<Item = T>,
        n: usize,
        layout: Layout,
    ) -> Tensor {
        debug_assert_eq!(layout.canonical_numel(), Some(n));
        Tensor {
            storage: Arc::new(T::collect_storage(n, it)),
            layout,
        }
    }

    pub(crate) fn from_vec_unchecked<T: Element>(data: Vec<T>, shape: &[usize]) -> Tensor {
        debug_assert_eq!(data.len(), numel(shape));
        Tensor {
            storage: Arc::new(T::into_storage(data)),
            layout: Layout::contiguous(shape),
        }
    }

    /// A packed tensor copied from a slice.
    pub fn from_slice<T: Element>(data: &[T], shape: &[usize]) -> Result<Tensor> {
        Tensor::from_vec(data.to_vec(), shape)
    }

    /// A rank-0 tensor holding one value.
    pub fn scalar<T: Element>(value: T) -> Tensor {
        Tensor::from_iter_unchecked(std::iter::once(value), &[])
    }

    /// A tensor of `shape` filled with `value` (converted to `dtype`).
    pub fn full(shape: &[usize], value: f64, dtype: DType) -> Tensor {
        let n = numel(shape);
        any_dispatch!(dtype, T => Tensor::from_iter_unchecked(std::iter::repeat_n(T::from_f64(value), n), shape))
    }

    /// Zeros.
    pub fn zeros(shape: &[usize], dtype: DType) -> Tensor {
        Tensor::full(shape, 0.0, dtype)
    }

    /// Ones.
    pub fn ones(shape: &[usize], dtype: DType) -> Tensor {
        Tensor::full(shape, 1.0, dtype)
    }

    /// Zeros with this tensor's shape and dtype.
    pub fn zeros_like(&self) -> Tensor {
        Tensor::zeros(self.shape(), self.dtype())
    }

    /// Ones with this tensor's shape and dtype.
    pub fn ones_like(&self) -> Tensor {
        Tensor::ones(self.shape(), self.dtype())
    }

    /// `value` with this tensor's shape and dtype.
    pub fn full_like(&self, value: f64) -> Tensor {
        Tensor::full(self.shape(), value, self.dtype())
    }

    /// `start, start + step, ...` below `end` (above `end` for a negative step), 1-D.
    pub fn arange(start: f64, end: f64, step: f64, dtype: DType) -> Result<Tensor> {
        if step == 0.0 || !step.is_finite() || !start.is_finite() || !end.is_finite() {
            return Err(TensorError::invalid(
                "arange",
                format!("start {start}, end {end}, step {step}: step must be finite and non-zero"),
            ));
        }
        let n = ((end - start) / step).ceil().max(0.0) as usize;
        any_dispatch!(dtype, T => {
            let v: Vec<T> = (0..n).map(|i| T::from_f64(start + i as f64 * step)).collect();
            Ok(Tensor::from_vec_unchecked(v, &[n]))
        })
    }

    /// `n` evenly spaced values from `start` to `end` inclusive, 1-D.
    pub fn linspace(start: f64, end: f64, n: usize, dtype: DType) -> Result<Tensor> {
        if !start.is_finite() || !end.is_finite() {
            return Err(TensorError::invalid(
                "linspace",
                "start and end must be finite",
            ));
        }
        let step = if n > 1 {
            (end - start) / (n - 1) as f64
        } else {
            0.0
        };
        any_dispatch!(dtype, T => {
            let v: Vec<T> = (0..n)
                .map(|i| T::from_f64(if i + 1 == n && n > 1 { end } else { start + i as f64 * step }))
                .collect();
            Ok(Tensor::from_vec_unchecked(v, &[n]))
        })
    }

    /// The `n x n` identity.
    pub fn eye(n: usize, dtype: DType) -> Tensor {
        any_dispatch!(dtype, T => {
            let mut v = vec![T::from_f64(0.0); n * n];
            for i in 0..n {
                v[i * n + i] = T::from_f64(1.0);
            }
            Tensor::from_vec_unchecked(v, &[n, n])
        })
    }

    // ----- accessors ----------------------------------------------------

    /// The dimensions.
    #[inline]
    pub fn shape(&self) -> &[usize] {
        self.layout.shape()
    }

    /// The dimensions (alias of [`shape`](Tensor::shape)).
    #[inline]
    pub fn dims(&self) -> &[usize] {
        self.layout.shape()
    }

    /// The size of one axis (negative counts from the end).
    pub fn dim(&self, axis: isize) -> Result<usize> {
        let a = crate::layout::normalize_axis("dim", axis, self.shape())?;
        Ok(self.shape()[a])
    }

    /// Number of dimensions.
    #[inline]
    pub fn ndim(&self) -> usize {
        self.layout.ndim()
    }

    /// Number of elements.
    #[inline]
    pub fn numel(&self) -> usize {
        self.layout.numel()
    }

    /// The element type.
    #[inline]
    pub fn dtype(&self) -> DType {
        self.storage.dtype()
    }

    /// The layout (shape, strides, offset).
    #[inline]
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The strides in elements.
    #[inline]
    pub fn strides(&self) -> &[usize] {
        self.layout.strides()
    }

    /// The shared storage.
    #[inline]
    pub fn storage(&self) -> &Arc<Storage> {
        &self.storage
    }

    /// True when the elements are packed in row-major order.
    #[inline]
    pub fn is_contiguous(&self) -> bool {
        self.layout.is_contiguous()
    }

    /// True when both tensors view the same storage buffer.
    pub fn same_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.storage, &other.storage)
    }

    /// The typed storage slice and layout; errors if `T` is not the dtype.
    pub fn typed<T: Element>(&self, op: &'static str) -> Result<(&[T], &Layout)> {
        match T::slice(&self.storage) {
            Some(s) => Ok((s, &self.layout)),
            None => Err(TensorError::DTypeMismatch {
                op,
                lhs: self.dtype(),
                rhs: T::DTYPE,
            }),
        }
    }

    /// The elements as a packed slice, when the tensor is contiguous and of dtype `T`.
    pub fn as_slice<T: Element>(&self) -> Result<&[T]> {
        let (s, l) = self.typed::<T>("as_slice")?;
        match l.contiguous_range() {
            Some(r) => Ok(&s[r]),
            None => Err(TensorError::shape(
                "as_slice",
                self.shape(),
                "tensor is not contiguous; call contiguous() first",
            )),
        }
    }

    /// Mutable packed elements, copying first if the storage is shared or the
    /// layout is not packed (copy-on-write). For in-place fused loops.
    pub fn data_mut<T: Element>(&mut self) -> Result<&mut [T]> {
        if self.dtype() != T::DTYPE {
            return Err(TensorError::DTypeMismatch {
                op: "data_mut",
                lhs: self.dtype(),
                rhs: T::DTYPE,
            });
        }
        let exact =
            self.layout.offset() == 0 && self.is_contiguous() && self.storage.len() == self.numel();
        if !exact {
            *self = self.contiguous_copy();
        }
        let storage = Arc::make_mut(&mut self.storage);
        Ok(T::slice_mut(storage).expect("dtype checked above"))
    }

    /// The elements in row-major order as a vector of `T` (must be the dtype).
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        let (s, l) = self.typed::<T>("to_vec")?;
        Ok(match l.contiguous_range() {
            Some(r) => s[r].to_vec(),
            None => strided::gather(s, l.shape(), l.strides(), l.offset()),
        })
    }

    /// The elements in row-major order converted to f64 (any dtype).
    pub fn to_vec_f64(&self) -> Vec<f64> {
        any_dispatch!(self.dtype(), T => {
            self.to_vec::<T>().expect("dtype matches").into_iter().map(|x| x.to_f64()).collect()
        })
    }

    /// The single value of a one-element tensor, as `T` (must be the dtype).
    pub fn item<T: Element>(&self) -> Result<T> {
        if self.numel() != 1 {
            return Err(TensorError::shape(
                "item",
                self.shape(),
                "needs exactly one element",
            ));
        }
        let (s, l) = self.typed::<T>("item")?;
        Ok(s[l.offset()])
    }

    /// The single value of a one-element tensor converted to f64 (any dtype).
    pub fn to_scalar_f64(&self) -> Result<f64> {
        if self.numel() != 1 {
            return Err(TensorError::shape(
                "to_scalar_f64",
                self.shape(),
                "needs exactly one element",
            ));
        }
        Ok(any_dispatch!(self.dtype(), T => {
            let (s, l) = self.typed::<T>("to_scalar_f64")?;
            s[l.offset()].to_f64()
        }))
    }

    /// Element at a multi-index, converted to f64.
    pub fn get_f64(&self, index: &[usize]) -> Result<f64> {
        if index.len() != self.ndim() || index.iter().zip(self.shape()).any(|(i, d)| i >= d) {
            return Err(TensorError::shapes(
                "get_f64",
                self.shape(),
                index,
                "index out of bounds",
            ));
        }
        let off = self.layout.index_of(index);
        Ok(any_dispatch!(self.dtype(), T => T::slice(&self.storage).expect("dtype")[off].to_f64()))
    }

    // ----- layout changes -----------------------------------------------

    fn with_layout(&self, layout: Layout) -> Tensor {
        Tensor {
            storage: self.storage.clone(),
            layout,
        }
    }

    /// A packed copy (or a cheap clone when already packed).
    pub fn contiguous(&self) -> Tensor {
        if self.is_contiguous() {
            self.clone()
        } else {
            self.contiguous_copy()
        }
    }

    /// Always a fresh packed copy that owns its storage.
    pub fn contiguous_copy(&self) -> Tensor {
        any_dispatch!(self.dtype(), T => {
            let (s, l) = self.typed::<T>("contiguous").expect("dtype");
            let v = match l.contiguous_range() {
                Some(r) => s[r].to_vec(),
                None => strided::gather(s, l.shape(), l.strides(), l.offset()),
            };
            Tensor::from_vec_unchecked(v, l.shape())
        })
    }

    /// Convert to another dtype (a copy; the same tensor when the dtype already matches).
    ///
    /// Float to float rounds to nearest; float to i64 truncates toward zero;
    /// anything to bool is `x != 0`.
    pub fn to_dtype(&self, dtype: DType) -> Tensor {
        if dtype == self.dtype() {
            return self.clone();
        }
        let src = self.contiguous();
        any_dispatch!(src.dtype(), S => {
            let s = src.as_slice::<S>().expect("contiguous");
            any_dispatch!(dtype, D => {
                let v: Vec<D> = convert_slice::<S, D>(s);
                Tensor::from_vec_unchecked(v, self.shape())
            })
        })
    }

    /// View with a new shape; copies only when the strides forbid a view.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        match self.layout.reshape(shape)? {
            Some(l) => Ok(self.with_layout(l)),
            None => {
                let c = self.contiguous_copy();
                let l = c
                    .layout
                    .reshape(shape)?
                    .expect("contiguous reshape is always a view");
                Ok(c.with_layout(l))
            }
        }
    }

    /// Swap two axes (a view).
    pub fn transpose(&self, a: isize, b: isize) -> Result<Tensor> {
        Ok(self.with_layout(self.layout.transpose(a, b)?))
    }

    /// Transpose of the last two axes (a view); errors below rank 2.
    pub fn t(&self) -> Result<Tensor> {
        if self.ndim() < 2 {
            return Err(TensorError::shape(
                "t",
                self.shape(),
                "needs at least 2 dimensions",
            ));
        }
        self.transpose(-2, -1)
    }

    /// Reorder axes (a view).
    pub fn permute(&self, perm: &[usize]) -> Result<Tensor> {
        Ok(self.with_layout(self.layout.permute(perm)?))
    }

    /// `len` elements of `axis` from `start` (a view).
    pub fn narrow(&self, axis: isize, start: usize, len: usize) -> Result<Tensor> {
        Ok(self.with_layout(self.layout.narrow(axis, start, len)?))
    }

    /// Elements `start..end` with `step` along `axis` (a view).
    pub fn slice(&self, axis: isize, start: usize, end: usize, step: usize) -> Result<Tensor> {
        Ok(self.with_layout(self.layout.slice(axis, start, end, step)?))
    }

    /// Broadcast to a shape (a view with zero strides).
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Tensor> {
        Ok(self.with_layout(self.layout.broadcast_to(shape)?))
    }

    /// Alias of [`broadcast_to`](Tensor::broadcast_to), as in PyTorch.
    pub fn expand(&self, shape: &[usize]) -> Result<Tensor> {
        self.broadcast_to(shape)
    }

    /// Remove a size-1 axis (a view).
    pub fn squeeze(&self, axis: isize) -> Result<Tensor> {
        Ok(self.with_layout(self.layout.squeeze(axis)?))
    }

    /// Insert a size-1 axis (a view).
    pub fn unsqueeze(&self, axis: isize) -> Result<Tensor> {
        Ok(self.with_layout(self.layout.unsqueeze(axis)?))
    }

    /// Merge axes `start..=end` into one (a view when possible).
    pub fn flatten(&self, start: isize, end: isize) -> Result<Tensor> {
        if self.ndim() == 0 {
            return self.reshape(&[1]);
        }
        let s = crate::layout::normalize_axis("flatten", start, self.shape())?;
        let e = crate::layout::normalize_axis("flatten", end, self.shape())?;
        if s > e {
            return Err(TensorError::invalid(
                "flatten",
                format!("start axis {s} is after end axis {e}"),
            ));
        }
        let sh = self.shape();
        let mut new: Vec<usize> = sh[..s].to_vec();
        new.push(sh[s..=e].iter().product());
        new.extend_from_slice(&sh[e + 1..]);
        self.reshape(&new)
    }

    /// Check that two tensors have the same dtype.
    pub(crate) fn same_dtype(&self, other: &Tensor, op: &'static str) -> Result<DType> {
        if self.dtype() != other.dtype() {
            return Err(TensorError::DTypeMismatch {
                op,
                lhs: self.dtype(),
                rhs: other.dtype(),
            });
        }
        Ok(self.dtype())
    }

    /// Check that this tensor computes in a float dtype.
    pub(crate) fn float_dtype(&self, op: &'static str) -> Result<DType> {
        if !self.dtype().is_float_compute() {
            return Err(TensorError::UnsupportedDType {
                op,
                dtype: self.dtype(),
                hint: "compute in f32 or f64 (convert with to_dtype)",
            });
        }
        Ok(self.dtype())
    }

    /// True when shapes, dtypes and all elements are equal.
    pub fn equal(&self, other: &Tensor) -> bool {
        self.shape() == other.shape()
            && self.dtype() == other.dtype()
            && any_dispatch!(self.dtype(), T => self.to_vec::<T>().ok() == other.to_vec::<T>().ok())
    }

    /// Largest absolute elementwise difference as f64 (shapes must match).
    pub fn max_abs_diff(&self, other: &Tensor) -> Result<f64> {
        if self.shape() != other.shape() {
            return Err(TensorError::shapes(
                "max_abs_diff",
                self.shape(),
                other.shape(),
                "shapes must be equal",
            ));
        }
        let (a, b) = (self.to_vec_f64(), other.to_vec_f64());
        Ok(a.iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max))
    }
}

fn convert_slice<S: Element, D: Element>(s: &[S]) -> Vec<D> {
    // Every source converts to f64 exactly (i64 beyond 2^53 aside), so this
    // rounds once, to nearest, into the destination.
    s.iter().map(|&x| D::from_f64(x.to_f64())).collect()
}

/// [`map_float`] for compute-bound `f` (`exp` and what is built on it): a
/// packed input is mapped by a loop compiled for the CPU's widest vectors
/// (`kernels::simd`), in fixed chunks over the pool when large. Other layouts
/// take [`map_float`].
pub(crate) fn map_float_heavy<T: Float, U: Element>(
    x: &Tensor,
    op: &'static str,
    f: impl Fn(T) -> U + Sync,
) -> Result<Tensor> {
    map_float_heavy_with(x, op, crate::kernels::kernel_path(), f)
}

/// [`map_float_heavy`] on a given kernel path (tests compare the paths).
pub(crate) fn map_float_heavy_with<T: Float, U: Element>(
    x: &Tensor,
    op: &'static str,
    path: crate::kernels::KernelPath,
    f: impl Fn(T) -> U + Sync,
) -> Result<Tensor> {
    use crate::kernels::simd::simd_with;
    let (s, l) = x.typed::<T>(op)?;
    let Some(r) = l.contiguous_range() else {
        return map_float(x, op, f);
    };
    let src = &s[r];
    // Below a few vectors the plain path is as fast and allocates less.
    if src.len() < 64 {
        return map_float(x, op, f);
    }
    let parallel = src.len() >= strided::PAR_THRESHOLD;
    let chunk = if parallel {
        strided::MAP_CHUNK
    } else {
        src.len()
    };
    let v = collect_chunks(src.len(), chunk, parallel, |r, out| {
        simd_with(
            path,
            #[inline(always)]
            || out.extend(src[r].iter().map(|&a| f(a))),
        )
    });
    Ok(Tensor::from_vec_unchecked(v, l.shape()))
}

/// Apply `f` to each element of a float tensor, producing a packed tensor of `U`.
pub(crate) fn map_float<T: Float, U: Element>(
    x: &Tensor,
    op: &'static str,
    f: impl Fn(T) -> U + Sync,
) -> Result<Tensor> {
    let (s, l) = x.typed::<T>(op)?;
    // Small input in canonical layout: the output shares its layout.
    if let Some(n) = l.canonical_numel() {
        if n < strided::PAR_THRESHOLD {
            let it = s[..n].iter().map(|&a| f(a));
            return Ok(Tensor::from_iter_layout(it, n, l.clone()));
        }
    }
    // Packed input: map the slice straight into the output (no zero-fill,
    // no iteration plan). Large inputs split into fixed chunks, so the
    // result does not depend on the thread count.
    if let Some(r) = l.contiguous_range() {
        let src = &s[r];
        if src.len() < strided::PAR_THRESHOLD {
            return Ok(Tensor::from_iter_unchecked(
                src.iter().map(|&a| f(a)),
                l.shape(),
            ));
        }
        let v = collect_chunks(src.len(), strided::MAP_CHUNK, true, |r, out| {
            out.extend(src[r].iter().map(|&a| f(a)))
        });
        return Ok(Tensor::from_vec_unchecked(v, l.shape()));
    }
    let v = strided::fill(
        l.shape(),
        [(l.strides(), l.offset())],
        |out, n, [o], [st]| {
            if st == 1 {
                out.extend(s[o..o + n].iter().map(|&a| f(a)));
            } else {
                out.extend((0..n).map(|j| f(s[o + j * st])));
            }
        },
    );
    Ok(Tensor::from_vec_unchecked(v, l.shape()))
}
