//! Reductions over one or several axes, and softmax / log-softmax.
//!
//! `axes` may be negative (counted from the end); an **empty `axes` slice
//! reduces over every axis**. With `keepdim` the reduced axes stay as size 1.
//!
//! Determinism: every output element is reduced by one task in a fixed
//! order, and a long reduction is cut into fixed chunks of [`CHUNK`]
//! elements whose partial results are merged left to right. The chunking
//! does not depend on the number of threads, so results are bit-identical
//! whatever the rayon pool size.

use crate::dtype::{Element, Float};
use crate::error::{Result, TensorError};
use crate::kernels::split::{collect_chunks, for_each_chunk_mut};
use crate::layout::{normalize_axis, Shape};
use crate::strided::{self, Plan, PAR_THRESHOLD};
use crate::tensor::float_dispatch;
use crate::Tensor;
use smallvec::SmallVec;

/// Elements per fixed reduction chunk.
pub const CHUNK: usize = 1 << 13;

/// Normalised, sorted, de-duplicated axes (empty input = all axes).
pub fn reduce_axes(
    op: &'static str,
    axes: &[isize],
    shape: &[usize],
) -> Result<SmallVec<[usize; 4]>> {
    if axes.is_empty() {
        return Ok((0..shape.len()).collect());
    }
    let mut v: SmallVec<[usize; 4]> = SmallVec::new();
    for &a in axes {
        let n = normalize_axis(op, a, shape)?;
        if v.contains(&n) {
            return Err(TensorError::invalid(op, format!("axis {a} is given twice")));
        }
        v.push(n);
    }
    v.sort_unstable();
    Ok(v)
}

/// The output shape of a reduction.
pub fn reduced_shape(shape: &[usize], axes: &[usize], keepdim: bool) -> Shape {
    let mut out = Shape::new();
    for (i, &d) in shape.iter().enumerate() {
        if axes.contains(&i) {
            if keepdim {
                out.push(1);
            }
        } else {
            out.push(d);
        }
    }
    out
}

/// Generic reduction engine.
///
/// `row(acc, data, offset, len, stride, first_index)` folds one strided run of
/// the reduced block into `acc` (`first_index` is the run's position in the
/// block, row-major); `merge` combines chunk results in order; `finish` turns
/// the accumulator into the output element.
#[allow(clippy::type_complexity)]
pub(crate) fn reduce_core<T, U, A>(
    x: &Tensor,
    op: &'static str,
    axes: &[usize],
    keepdim: bool,
    init: A,
    row: impl Fn(A, &[T], usize, usize, usize, usize) -> A + Sync,
    merge: impl Fn(A, A) -> A + Sync,
    finish: impl Fn(A) -> U + Sync,
) -> Result<Tensor>
where
    T: Element,
    U: Element,
    A: Copy + Send + Sync,
{
    let (s, l) = x.typed::<T>(op)?;
    let shape = l.shape();
    let kept_shape: Shape = (0..shape.len())
        .filter(|i| !axes.contains(i))
        .map(|i| shape[i])
        .collect();
    let kept_strides: Shape = (0..shape.len())
        .filter(|i| !axes.contains(i))
        .map(|i| l.strides()[i])
        .collect();
    let red_shape: Shape = axes.iter().map(|&i| shape[i]).collect();
    let red_strides: Shape = axes.iter().map(|&i| l.strides()[i]).collect();
    let n_red: usize = red_shape.iter().product();
    let n_out: usize = kept_shape.iter().product();
    let plan = Plan::new(&red_shape, [&red_strides]);
    let out_shape = reduced_shape(shape, axes, keepdim);

    // Work units of one output element: fixed chunks of the reduced block.
    let inner = plan.inner_len.max(1);
    let st = plan.inner_strides[0];
    let rows_per_group = (CHUNK / inner).max(1);
    let n_groups = if n_red == 0 {
        0
    } else if plan.rows == 1 {
        inner.div_ceil(CHUNK)
    } else {
        plan.rows.div_ceil(rows_per_group)
    };
    let group = |o: usize, g: usize| -> A {
        if plan.rows == 1 {
            let start = g * CHUNK;
            let len = CHUNK.min(inner - start);
            row(init, s, o + start * st, len, st, start)
        } else {
            let r0 = g * rows_per_group;
            let r1 = (r0 + rows_per_group).min(plan.rows);
            let mut acc = init;
            let mut r = r0;
            plan.for_rows([o], r0, r1, |[ro]| {
                acc = row(acc, s, ro, inner, st, r * inner);
                r += 1;
            });
            acc
        }
    };
    let block = |o: usize, parallel: bool| -> U {
        let acc = if parallel && n_groups > 1 {
            // A few groups per chunk; each group's value does not depend on
            // the chunking, and they merge in order.
            let per = n_groups.div_ceil(16);
            let parts: Vec<A> = collect_chunks(n_groups, per, true, |r, out| {
                out.extend(r.map(|g| group(o, g)))
            });
            parts.into_iter().fold(init, &merge)
        } else {
            (0..n_groups).fold(init, |acc, g| merge(acc, group(o, g)))
        };
        finish(acc)
    };

    let work = n_out.saturating_mul(n_red.max(1));
    let v: Vec<U> = if n_out < 4 && n_red >= 2 * PAR_THRESHOLD {
        let base = l.offset();
        let kplan = Plan::new(&kept_shape, [&kept_strides]);
        let mut offs = Vec::with_capacity(n_out);
        kplan.for_rows([base], 0, kplan.rows, |[o]| {
            for j in 0..kplan.inner_len {
                offs.push(o + j * kplan.inner_strides[0]);
            }
        });
        offs.into_iter().map(|o| block(o, true)).collect()
    } else if work < PAR_THRESHOLD {
        let kplan = Plan::new(&kept_shape, [&kept_strides]);
        let mut out = Vec::with_capacity(n_out);
        kplan.for_rows([l.offset()], 0, kplan.rows, |[o]| {
            for j in 0..kplan.inner_len {
                out.push(block(o + j * kplan.inner_strides[0], false));
            }
        });
        out
    } else {
        // Parallel over output elements (each reduced whole by one task).
        let per = (PAR_THRESHOLD / n_red.max(1)).max(1);
        let kplan = Plan::new(&kept_shape, [&kept_strides]);
        let mut offs = Vec::with_capacity(n_out);
        kplan.for_rows([l.offset()], 0, kplan.rows, |[o]| {
            for j in 0..kplan.inner_len {
                offs.push(o + j * kplan.inner_strides[0]);
            }
        });
        collect_chunks(n_out, per, true, |r, out| {
            out.extend(offs[r].iter().map(|&o| block(o, false)))
        })
    };
    debug_assert_eq!(v.len(), n_out);
    Ok(Tensor::from_vec_unchecked(v, &out_shape))
}

/// Sum over the leading axes of a packed tensor (a bias gradient: `[batch,
/// features] -> [features]`), row by row into the output, so the inner loop
/// runs along contiguous memory and vectorises. `None` when the layout or the
/// axes do not fit.
///
/// Each output element gets exactly the additions, in exactly the order,
/// that [`reduce_core`] would do (a running sum per fixed chunk of
/// [`CHUNK`] rows, chunks merged left to right), so the two paths give the
/// same bits; the work is split over columns only, so the thread count does
/// not change the result either.
fn sum_leading<T: Float>(x: &Tensor, axes: &[usize], keepdim: bool) -> Result<Option<Tensor>> {
    let shape = x.shape();
    let r = axes.len();
    if r == 0 || r >= shape.len() || axes.iter().enumerate().any(|(i, &a)| a != i) {
        return Ok(None);
    }
    let Some(range) = x.layout().contiguous_range() else {
        return Ok(None);
    };
    let n_red: usize = shape[..r].iter().product();
    let inner: usize = shape[r..].iter().product();
    if n_red < 2 || inner < 8 {
        return Ok(None);
    }
    let (s, _) = x.typed::<T>("sum")?;
    let data = &s[range];
    // Columns `j0 .. j0 + out.len()` of the result.
    let columns = |j0: usize, out: &mut [T]| {
        let w = out.len();
        let mut part = vec![T::ZERO; w];
        for c0 in (0..n_red).step_by(CHUNK) {
            part.iter_mut().for_each(|p| *p = T::ZERO);
            for i in c0..(c0 + CHUNK).min(n_red) {
                let row = &data[i * inner + j0..i * inner + j0 + w];
                for (p, &v) in part.iter_mut().zip(row) {
                    *p += v;
                }
            }
            for (o, &p) in out.iter_mut().zip(&part) {
                *o += p;
            }
        }
    };
    let mut out = vec![T::ZERO; inner];
    if n_red.saturating_mul(inner) < PAR_THRESHOLD {
        columns(0, &mut out);
    } else {
        // Column blocks; a block's sums do not depend on how blocks are split.
        let per = (PAR_THRESHOLD / n_red).max(64).min(inner);
        for_each_chunk_mut(&mut out, per, |b, o| columns(b * per, o));
    }
    let out_shape = reduced_shape(shape, axes, keepdim);
    Ok(Some(Tensor::from_vec_unchecked(out, &out_shape)))
}

/// Largest element (NaN if any is NaN), with 8 independent lanes so the
/// loop vectorises; `-inf` for an empty slice.
#[inline(always)]
fn run_max<T: Float>(xs: &[T]) -> T {
    let mut acc = [T::NEG_INFINITY; 8];
    let mut chunks = xs.chunks_exact(8);
    for c in &mut chunks {
        for k in 0..8 {
            acc[k] = acc[k].max_nan(c[k]);
        }
    }
    let mut m = T::NEG_INFINITY;
    for &x in chunks.remainder().iter().chain(&acc) {
        m = m.max_nan(x);
    }
    m
}

/// `pick` (a NaN-propagating max or min) folded over a strided run from
/// `init`. Packed runs use 8 independent lanes so the loop vectorises (a
/// single running extremum is a serial chain of compare-and-selects); the
/// lanes are combined in a fixed order, so the result never depends on the
/// thread count.
#[inline]
fn run_pick<T: Float>(
    s: &[T],
    o: usize,
    len: usize,
    st: usize,
    init: T,
    pick: impl Fn(T, T) -> T,
) -> T {
    if st == 1 {
        let xs = &s[o..o + len];
        let mut acc = [init; 8];
        let mut chunks = xs.chunks_exact(8);
        for c in &mut chunks {
            for k in 0..8 {
                acc[k] = pick(acc[k], c[k]);
            }
        }
        let mut m = init;
        for &x in acc.iter().chain(chunks.remainder()) {
            m = pick(m, x);
        }
        m
    } else {
        let mut acc = init;
        for j in 0..len {
            acc = pick(acc, s[o + j * st]);
        }
        acc
    }
}

/// Sum of a strided run with 8 independent accumulators (vectorisable, fixed order).
#[inline(always)]
fn run_sum<T: Float>(s: &[T], o: usize, len: usize, st: usize) -> T {
    if st == 1 {
        let xs = &s[o..o + len];
        let mut acc = [T::ZERO; 8];
        let mut chunks = xs.chunks_exact(8);
        for c in &mut chunks {
            for k in 0..8 {
                acc[k] += c[k];
            }
        }
        let mut tail = T::ZERO;
        for &x in chunks.remainder() {
            tail += x;
        }
        ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
    } else {
        let mut acc = T::ZERO;
        for j in 0..len {
            acc += s[o + j * st];
        }
        acc
    }
}

impl Tensor {
    /// Sum over `axes` (empty = all).
    pub fn sum(&self, axes: &[isize], keepdim: bool) -> Result<Tensor> {
        let op = "sum";
        let ax = reduce_axes(op, axes, self.shape())?;
        if let Some(t) =
            float_dispatch!(op, self.dtype(), T => sum_leading::<T>(self, &ax, keepdim))?
        {
            return Ok(t);
        }
        float_dispatch!(op, self.dtype(), T => reduce_core::<T, T, T>(
            self, op, &ax, keepdim, T::ZERO,
            |acc, s, o, n, st, _| acc + run_sum(s, o, n, st),
            |a, b| a + b,
            |a| a,
        ))
    }

    /// Sum of every element, as a rank-0 tensor.
    pub fn sum_all(&self) -> Result<Tensor> {
        self.sum(&[], false)
    }

    /// Mean over `axes` (empty = all). The mean of nothing is NaN, as in numpy.
    pub fn mean(&self, axes: &[isize], keepdim: bool) -> Result<Tensor> {
        let ax = reduce_axes("mean", axes, self.shape())?;
        let n: usize = ax.iter().map(|&a| self.shape()[a]).product();
        self.sum(axes, keepdim)?.mul_scalar(1.0 / n as f64)
    }

    /// Product over `axes` (empty = all).
    pub fn prod(&self, axes: &[isize], keepdim: bool) -> Result<Tensor> {
        let op = "prod";
        let ax = reduce_axes(op, axes, self.shape())?;
        float_dispatch!(op, self.dtype(), T => reduce_core::<T, T, T>(
            self, op, &ax, keepdim, T::ONE,
            |mut acc, s, o, n, st, _| { for j in 0..n { acc *= s[o + j * st]; } acc },
            |a, b| a * b,
            |a| a,
        ))
    }

    fn extremum(
        &self,
        op: &'static str,
        axes: &[isize],
        keepdim: bool,
        is_max: bool,
    ) -> Result<Tensor> {
        let ax = reduce_axes(op, axes, self.shape())?;
        if ax.iter().any(|&a| self.shape()[a] == 0) && self.numel() == 0 {
            return Err(TensorError::EmptyReduction {
                op,
                shape: self.shape().into(),
            });
        }
        fn run<T: Float>(
            x: &Tensor,
            op: &'static str,
            ax: &[usize],
            keepdim: bool,
            init: T,
            pick: impl Fn(T, T) -> T + Copy + Sync,
        ) -> Result<Tensor> {
            reduce_core::<T, T, T>(
                x,
                op,
                ax,
                keepdim,
                init,
                |acc, s, o, n, st, _| pick(acc, run_pick(s, o, n, st, init, pick)),
                pick,
                |a| a,
            )
        }
        // One instantiation per direction, so the inner loop has no branch on it.
        float_dispatch!(op, self.dtype(), T => if is_max {
            run::<T>(self, op, &ax, keepdim, T::NEG_INFINITY, T::max_nan)
        } else {
            run::<T>(self, op, &ax, keepdim, T::INFINITY, T::min_nan)
        })
    }

    /// Maximum over `axes` (NaN-propagating). Errors on an empty input.
    pub fn max(&self, axes: &[isize], keepdim: bool) -> Result<Tensor> {
        self.extremum("max", axes, keepdim, true)
    }

    /// Minimum over `axes` (NaN-propagating). Errors on an empty input.
    pub fn min(&self, axes: &[isize], keepdim: bool) -> Result<Tensor> {
        self.extremum("min", axes, keepdim, false)
    }

    fn arg_extremum(
        &self,
        op: &'static str,
        axis: isize,
        keepdim: bool,
        is_max: bool,
    ) -> Result<Tensor> {
        let a = normalize_axis(op, axis, self.shape())?;
        if self.shape()[a] == 0 {
            return Err(TensorError::EmptyReduction {
                op,
                shape: self.shape().into(),
            });
        }
        float_dispatch!(op, self.dtype(), T => {
            // (value, index); NaN wins (as in PyTorch); ties go to the first index.
            let better = move |x: T, best: T| {
                if best.is_nan() { false } else if x.is_nan() { true } else if is_max { x > best } else { x < best }
            };
            let init = (if is_max { T::NEG_INFINITY } else { T::INFINITY }, -1i64);
            reduce_core::<T, i64, (T, i64)>(
                self, op, &[a], keepdim, init,
                |mut acc, s, o, n, st, first| {
                    for j in 0..n {
                        let x = s[o + j * st];
                        if acc.1 < 0 || better(x, acc.0) { acc = (x, (first + j) as i64); }
                    }
                    acc
                },
                move |a, b| if a.1 < 0 || (b.1 >= 0 && better(b.0, a.0)) { b } else { a },
                |a| a.1,
            )
        })
    }

    /// Index of the maximum along `axis` (first on ties; NaN counts as largest), as i64.
    pub fn argmax(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        self.arg_extremum("argmax", axis, keepdim, true)
    }

    /// Index of the minimum along `axis` (first on ties; NaN counts as smallest), as i64.
    pub fn argmin(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        self.arg_extremum("argmin", axis, keepdim, false)
    }

    /// Variance over `axes` with `correction` (1 = unbiased, 0 = population).
    pub fn var(&self, axes: &[isize], correction: usize, keepdim: bool) -> Result<Tensor> {
        let ax = reduce_axes("var", axes, self.shape())?;
        let n: usize = ax.iter().map(|&a| self.shape()[a]).product();
        let mean = self.mean(axes, true)?;
        let dev = self.sub(&mean)?.square()?;
        let denom = n.saturating_sub(correction);
        dev.sum(axes, keepdim)?.mul_scalar(if denom == 0 {
            f64::NAN
        } else {
            1.0 / denom as f64
        })
    }

    /// Standard deviation over `axes` with `correction`.
    pub fn std(&self, axes: &[isize], correction: usize, keepdim: bool) -> Result<Tensor> {
        self.var(axes, correction, keepdim)?.sqrt()
    }

    /// `log(sum(exp(x)))` over `axes`, computed stably (shifted by the maximum).
    pub fn logsumexp(&self, axes: &[isize], keepdim: bool) -> Result<Tensor> {
        let m = self.max(axes, true)?;
        // An all -inf (or +inf) slice: shift by 0 to avoid inf - inf.
        let fin = m.isfinite()?;
        let zero = m.zeros_like();
        let m = Tensor::where_(&fin, &m, &zero)?;
        let s = self.sub(&m)?.exp()?.sum(axes, true)?.log()?.add(&m)?;
        if keepdim {
            Ok(s)
        } else {
            let ax = reduce_axes("logsumexp", axes, self.shape())?;
            s.reshape(&reduced_shape(self.shape(), &ax, false))
        }
    }

    /// L1 norm `sum |x|` over `axes`.
    pub fn norm_l1(&self, axes: &[isize], keepdim: bool) -> Result<Tensor> {
        self.abs()?.sum(axes, keepdim)
    }

    /// L2 norm `sqrt(sum x^2)` over `axes`.
    pub fn norm_l2(&self, axes: &[isize], keepdim: bool) -> Result<Tensor> {
        self.square()?.sum(axes, keepdim)?.sqrt()
    }

    /// Softmax along `axis`, computed stably (shifted by the row maximum).
    pub fn softmax(&self, axis: isize) -> Result<Tensor> {
        softmax_impl(self, axis, false)
    }

    /// Log-softmax along `axis`, computed stably: `x - logsumexp(x)`.
    pub fn log_softmax(&self, axis: isize) -> Result<Tensor> {
        softmax_impl(self, axis, true)
    }
}

/// Elements of the scratch block short softmax rows are worked in: whole
/// rows, about this many (4 KiB of f32, in L1).
const SOFTMAX_BLOCK: usize = 1024;

/// Rows shorter than this are worked by [`softmax_block`], longer ones by
/// [`softmax_row`].
const SOFTMAX_SHORT_ROW: usize = 64;

/// The row's maximum, or 0 if it is not finite (an all `-inf` row, or
/// NaN), by which the row is shifted.
#[inline(always)]
fn softmax_shift<T: Float>(row: &[T]) -> T {
    let m = run_max(row);
    if m.is_finite() {
        m
    } else {
        T::ZERO
    }
}

/// The end of a softmax row: `dst` holds `exp(v - m)` of `row`; writes
/// `e / s` (or `(v - m) - ln s`), `s` their sum.
#[inline(always)]
fn softmax_finish<T: Float>(dst: &mut [T], row: &[T], m: T, log: bool) {
    // The sum in the same fixed order as any other row reduction.
    let s = run_sum(dst, 0, dst.len(), 1);
    if log {
        // (v - m) - ln s, not v - (m + ln s): for large logits m + ln s
        // would round ln s away to the precision of m.
        let ls = s.ln();
        for (d, &v) in dst.iter_mut().zip(row) {
            *d = (v - m) - ls;
        }
    } else {
        let inv = T::ONE / s;
        for d in dst.iter_mut() {
            *d *= inv;
        }
    }
}

/// One softmax (or log-softmax) row: max, exponentials, their sum, scale.
#[inline(always)]
fn softmax_row<T: Float>(dst: &mut [T], row: &[T], log: bool) {
    let m = softmax_shift(row);
    // Exponentials first (a loop that vectorises: `Float::exp` has no libm
    // call), then their sum in the same fixed order.
    for (d, &v) in dst.iter_mut().zip(row) {
        *d = Float::exp(v - m);
    }
    softmax_finish(dst, row, m, log);
}

/// [`softmax_row`] for a block of short rows of length `n` in `src`, into
/// `dst` (same length, whole rows): `v - m` per row, then the exponentials
/// of the whole block in one loop, then each row's sum and scale.
///
/// Row by row, a short row (ten classes) leaves the vectorised `Float::exp`
/// almost all in its scalar remainder loop: a 64 x 10 softmax took 5.4 us
/// that way against 2.4 us by block (docs/kernels.md). Long rows stay with
/// [`softmax_row`], whose one fused pass the extra pass over the block
/// slowed by ~4 % (rows of 256). Each element gets the same operations
/// either way, so the same bits.
#[inline(always)]
fn softmax_block<T: Float>(dst: &mut [T], src: &[T], n: usize, shifts: &mut [T], log: bool) {
    for ((d, row), sh) in dst.chunks_mut(n).zip(src.chunks(n)).zip(shifts.iter_mut()) {
        let m = softmax_shift(row);
        *sh = m;
        for (d, &v) in d.iter_mut().zip(row) {
            *d = v - m;
        }
    }
    for d in dst.iter_mut() {
        *d = Float::exp(*d);
    }
    for ((d, row), &m) in dst.chunks_mut(n).zip(src.chunks(n)).zip(shifts.iter()) {
        softmax_finish(d, row, m, log);
    }
}

/// Fused row-wise softmax: max / exponentials / sum / write, row by row.
fn softmax_impl(x: &Tensor, axis: isize, log: bool) -> Result<Tensor> {
    softmax_impl_with(x, axis, log, crate::kernels::kernel_path())
}

/// [`softmax_impl`] with its row loops compiled for `path` (`kernels::simd`;
/// tests compare the paths).
fn softmax_impl_with(
    x: &Tensor,
    axis: isize,
    log: bool,
    path: crate::kernels::KernelPath,
) -> Result<Tensor> {
    use crate::kernels::simd::simd_with;
    let op = if log { "log_softmax" } else { "softmax" };
    let a = normalize_axis(op, axis, x.shape())?;
    float_dispatch!(op, x.dtype(), T => {
        // Move the axis last and make rows packed, then work row by row.
        let nd = x.ndim();
        let mut perm: Vec<usize> = (0..nd).filter(|&i| i != a).collect();
        perm.push(a);
        let xp = x.permute(&perm)?.contiguous();
        let n = x.shape()[a];
        let src = xp.as_slice::<T>()?;
        // Rows are independent: tasks of whole rows (about 4K elements
        // each), each loop compiled for the CPU's vectors. Rows are worked
        // in a scratch block of whole rows (softmax re-reads what it wrote)
        // and then appended to the output, which is written once, never
        // zero-filled.
        let n1 = n.max(1);
        let parallel = src.len() >= PAR_THRESHOLD;
        let task = if parallel { n1 * (4096 / n1).max(1) } else { src.len() };
        let rows_per_block = (SOFTMAX_BLOCK / n1).max(1);
        let out = collect_chunks(src.len(), task, parallel, |r, out| {
            if n1 >= SOFTMAX_SHORT_ROW {
                let mut buf = vec![T::ZERO; n1];
                simd_with(path, #[inline(always)] || {
                    for row in src[r].chunks(n1) {
                        softmax_row(&mut buf, row, log);
                        out.extend(buf.iter().copied());
                    }
                })
            } else {
                let block = (rows_per_block * n1).min(r.len());
                let mut buf = vec![T::ZERO; block];
                let mut shifts = vec![T::ZERO; block.div_ceil(n1)];
                simd_with(path, #[inline(always)] || {
                    for rows in src[r].chunks(rows_per_block * n1) {
                        let b = &mut buf[..rows.len()];
                        softmax_block(b, rows, n1, &mut shifts, log);
                        out.extend(b.iter().copied());
                    }
                })
            }
        });
        let y = Tensor::from_vec_unchecked(out, xp.shape());
        // Undo the permutation.
        let mut inv = vec![0usize; nd];
        for (i, &p) in perm.iter().enumerate() {
            inv[p] = i;
        }
        Ok(y.permute(&inv)?.contiguous())
    })
}

/// Sum `x` down to `shape` (undo broadcasting): sums leading extra axes and
/// axes where `shape` has 1. Used by autograd to reduce broadcast gradients.
pub fn sum_to_shape(x: &Tensor, shape: &[usize]) -> Result<Tensor> {
    if x.shape() == shape {
        return Ok(x.clone());
    }
    let xs = x.shape();
    if shape.len() > xs.len() {
        return Err(TensorError::shapes(
            "sum_to_shape",
            xs,
            shape,
            "target has more dimensions",
        ));
    }
    let lead = xs.len() - shape.len();
    let mut axes: Vec<isize> = (0..lead as isize).collect();
    for (i, &d) in shape.iter().enumerate() {
        let xd = xs[lead + i];
        if d == 1 && xd != 1 {
            axes.push((lead + i) as isize);
        } else if d != xd {
            return Err(TensorError::shapes(
                "sum_to_shape",
                xs,
                shape,
                "shapes are not broadcast-compatible",
            ));
        }
    }
    if axes.is_empty() {
        return x.reshape(shape);
    }
    x.sum(&axes, false)?.reshape(shape)
}

/// Count of true values in a bool mask.
pub fn count_true(mask: &Tensor) -> Result<usize> {
    let (s, l) = mask.typed::<bool>("count_true")?;
    Ok(strided::gather(s, l.shape(), l.strides(), l.offset())
        .into_iter()
        .filter(|&b| b)
        .count())
}

#[cfg(test)]
mod tests {
    use crate::Tensor;

    #[test]
    fn softmax_gives_the_same_bits_on_every_kernel_path() {
        use crate::kernels::{supported_paths, KernelPath};
        // Rows of 1, 37 and 256 (tails past every vector width), one large
        // enough for the parallel split; values from the unary tests, with
        // NaN and infinities in some rows; softmax and log-softmax, along
        // the last axis and along a strided one.
        for (rows, cols) in [(5, 1), (7, 37), (200, 256)] {
            let v = crate::ops::unary::tests::awkward_f32(rows * cols);
            let x = Tensor::from_vec(v, &[rows, cols]).unwrap();
            for log in [false, true] {
                for axis in [-1isize, 0] {
                    let bits = |path: KernelPath| {
                        crate::ops::unary::tests::bits(
                            &super::softmax_impl_with(&x, axis, log, path).unwrap(),
                        )
                    };
                    let want = bits(KernelPath::Scalar);
                    for path in supported_paths() {
                        assert_eq!(
                            bits(path),
                            want,
                            "{path}, {rows}x{cols}, log {log}, axis {axis}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn softmax_of_a_row_does_not_depend_on_the_rows_sharing_its_block() {
        use crate::kernels::supported_paths;
        use crate::ops::unary::tests::{awkward_f32, bits};
        // Short rows are worked many to a scratch block (SOFTMAX_BLOCK
        // elements; the last block of a tensor partly filled), long rows one
        // at a time; 4096 x 10 is large enough for the chunks over the pool.
        // On every kernel path, each row must come out with the same bits
        // as that row alone (NaN and infinities included), and a finite row
        // within a few ulp of the f64 formula.
        let shapes = [
            (300, 10),
            (7, 3),
            (130, 8),
            (40, 63),
            (20, 64),
            (3, 1500),
            (4096, 10),
        ];
        for path in supported_paths() {
            for (rows, cols) in shapes {
                let v = awkward_f32(rows * cols);
                let x = Tensor::from_vec(v.clone(), &[rows, cols]).unwrap();
                for log in [false, true] {
                    let all = super::softmax_impl_with(&x, -1, log, path).unwrap();
                    let all = bits(&all);
                    for i in 0..rows {
                        let row = &v[i * cols..(i + 1) * cols];
                        let alone = Tensor::from_vec(row.to_vec(), &[1, cols]).unwrap();
                        let alone = super::softmax_impl_with(&alone, -1, log, path).unwrap();
                        let got = &all[i * cols..(i + 1) * cols];
                        assert_eq!(
                            bits(&alone),
                            got,
                            "{path}, {rows}x{cols} row {i}, log {log}"
                        );
                        if !row.iter().all(|x| x.is_finite()) {
                            continue;
                        }
                        let m = row.iter().map(|&x| x as f64).fold(f64::MIN, f64::max);
                        let s: f64 = row.iter().map(|&x| (x as f64 - m).exp()).sum();
                        for (j, &g) in got.iter().enumerate() {
                            let g = f32::from_bits(g) as f64;
                            let d = row[j] as f64 - m;
                            let want = if log { d - s.ln() } else { d.exp() / s };
                            let tol = 1e-6 * (1.0 + want.abs());
                            assert!(
                                (g - want).abs() <= tol,
                                "{path}, {rows}x{cols} ({i}, {j}): {g} vs {want}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn max_and_min_of_runs_of_every_length_match_a_serial_fold() {
        // The packed path folds 8 lanes, then the tail; lengths 1..40 cover
        // no full chunk, whole chunks and every tail, and a NaN in any
        // position (lane or tail) must win.
        for len in 1..40usize {
            let v: Vec<f64> = (0..len)
                .map(|i| ((i * 37 + 11) % 23) as f64 - 11.5)
                .collect();
            let t = Tensor::from_vec(v.clone(), &[len]).unwrap();
            let want_max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let want_min = v.iter().copied().fold(f64::INFINITY, f64::min);
            assert_eq!(t.max(&[], false).unwrap().item::<f64>().unwrap(), want_max);
            assert_eq!(t.min(&[], false).unwrap().item::<f64>().unwrap(), want_min);
            for p in 0..len {
                let mut w = v.clone();
                w[p] = f64::NAN;
                let t = Tensor::from_vec(w, &[len]).unwrap();
                assert!(t.max(&[], false).unwrap().item::<f64>().unwrap().is_nan());
                assert!(t.min(&[], false).unwrap().item::<f64>().unwrap().is_nan());
            }
        }
        // Along a strided axis (columns of a row-major matrix) and along rows.
        let m =
            Tensor::from_vec((0..30).map(|i| ((i * 7) % 30) as f32).collect(), &[3, 10]).unwrap();
        let cols = m.max(&[0], false).unwrap().to_vec::<f32>().unwrap();
        let rows = m.min(&[1], false).unwrap().to_vec::<f32>().unwrap();
        let at = |r: usize, c: usize| (((r * 10 + c) * 7) % 30) as f32;
        let want_cols: Vec<f32> = (0..10)
            .map(|c| at(0, c).max(at(1, c)).max(at(2, c)))
            .collect();
        let want_rows: Vec<f32> = (0..3)
            .map(|r| (0..10).map(|c| at(r, c)).fold(f32::INFINITY, f32::min))
            .collect();
        assert_eq!(cols, want_cols);
        assert_eq!(rows, want_rows);
    }

    /// `sum` through the general engine, bypassing the leading-axes path.
    fn sum_general(x: &Tensor, axes: &[usize], keepdim: bool) -> Tensor {
        super::reduce_core::<f32, f32, f32>(
            x,
            "sum",
            axes,
            keepdim,
            0.0,
            |acc, s, o, n, st, _| acc + super::run_sum(s, o, n, st),
            |a, b| a + b,
            |a| a,
        )
        .unwrap()
    }

    #[test]
    fn leading_axes_sum_is_bit_identical_to_the_general_engine() {
        // Values of mixed sign and magnitude, so the order of additions shows in the bits.
        let data = |n: usize| -> Vec<f32> {
            (0..n)
                .map(|i| ((i * 7919 % 1000) as f32 - 500.0) * 1.37e-3 * (1 + i % 13) as f32)
                .collect()
        };
        for (shape, axes) in [
            (vec![64usize, 256], vec![0usize]),
            (vec![3, 4, 10], vec![0, 1]),
            (vec![2, 9], vec![0]),
            // More rows than one CHUNK: chunked partial sums merged in order,
            // and enough work for the parallel column split.
            (vec![super::CHUNK * 2 + 5, 9], vec![0]),
            (vec![300, 700], vec![0]),
        ] {
            let n: usize = shape.iter().product();
            let x = Tensor::from_vec(data(n), &shape).unwrap();
            let ax: Vec<isize> = axes.iter().map(|&a| a as isize).collect();
            for keepdim in [false, true] {
                let fast = x.sum(&ax, keepdim).unwrap();
                let general = sum_general(&x, &axes, keepdim);
                assert_eq!(fast.shape(), general.shape());
                let (f, g) = (
                    fast.to_vec::<f32>().unwrap(),
                    general.to_vec::<f32>().unwrap(),
                );
                assert!(
                    f.iter().zip(&g).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{shape:?} over {axes:?}"
                );
            }
        }
        // And against a naive f64 sum of the columns.
        let x = Tensor::from_vec(data(64 * 256), &[64, 256]).unwrap();
        let v = x.to_vec::<f32>().unwrap();
        let got = x.sum(&[0], false).unwrap().to_vec::<f32>().unwrap();
        for j in 0..256 {
            let want: f64 = (0..64).map(|i| v[i * 256 + j] as f64).sum();
            assert!((got[j] as f64 - want).abs() < 1e-4, "column {j}");
        }
    }

    #[test]
    fn sum_over_axes_and_keepdim() {
        let x = Tensor::from_vec((0..24).map(|v| v as f64).collect(), &[2, 3, 4]).unwrap();
        let s = x.sum(&[0, 2], false).unwrap();
        assert_eq!(s.shape(), &[3]);
        // axis-1 index j: sum over i in 0..2, k in 0..4 of (12 i + 4 j + k) = 4*12 + 8*4j*... computed:
        // = sum_i sum_k (12i + 4j + k) = 4*(0+12) + 8*4j + 2*(0+1+2+3) = 48 + 32 j + 12
        assert_eq!(s.to_vec::<f64>().unwrap(), vec![60.0, 92.0, 124.0]);
        assert_eq!(x.sum(&[1], true).unwrap().shape(), &[2, 1, 4]);
    }

    #[test]
    fn max_of_nothing_is_an_error() {
        let x = Tensor::zeros(&[0, 3], crate::DType::F32);
        let e = x.max(&[0], false).unwrap_err().to_string();
        assert_eq!(e, "max: cannot reduce an empty tensor of shape [0, 3]");
        assert!(x.sum(&[0], false).unwrap().to_vec::<f32>().unwrap() == vec![0.0; 3]);
    }

    #[test]
    fn argmax_ties_go_to_first() {
        let x = Tensor::from_vec(vec![1.0f32, 3.0, 3.0, 0.0], &[4]).unwrap();
        assert_eq!(x.argmax(0, false).unwrap().item::<i64>().unwrap(), 1);
    }

    #[test]
    fn softmax_is_stable_for_huge_logits() {
        let x = Tensor::from_vec(vec![1e4f32, 0.0, -1e4], &[1, 3]).unwrap();
        let p = x.softmax(-1).unwrap().to_vec::<f32>().unwrap();
        assert_eq!(p, vec![1.0, 0.0, 0.0]);
        let lp = x.log_softmax(1).unwrap().to_vec::<f32>().unwrap();
        assert_eq!(lp[0], 0.0);
        assert_eq!(lp[1], -1e4);
        // Near the maximum, log_softmax keeps full relative precision even
        // when the logits are large (ln 2 is not rounded to a multiple of ulp(1e4)).
        let x = Tensor::from_vec(vec![1e4f32, 1e4], &[2]).unwrap();
        let lp = x.log_softmax(0).unwrap().to_vec::<f32>().unwrap();
        assert_eq!(lp, vec![-std::f32::consts::LN_2; 2]);
    }
}
