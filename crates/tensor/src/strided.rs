//! The strided-iteration engine every elementwise op and reduction runs on.
//!
//! A [`Plan`] walks `N` strided operands of a common shape jointly, row by
//! row: adjacent dimensions that are contiguous for *every* operand are
//! merged and size-1 dimensions dropped, so the inner loop is as long as
//! possible and, for packed operands, unit-stride (which the compiler
//! vectorises). [`fill`] drives a plan into a fresh contiguous output,
//! splitting rows over the pool above a size threshold
//! ([`collect_chunks`]); each output row is written by exactly one task, so
//! results never depend on the thread count.

use crate::kernels::split::{collect_chunks, Out};
use crate::layout::Shape;
use smallvec::SmallVec;

/// Below this many elements an op stays on the calling thread.
pub const PAR_THRESHOLD: usize = 1 << 15;

/// Elements per chunk when a large packed elementwise map is split over
/// the pool.
pub(crate) const MAP_CHUNK: usize = 1 << 13;

/// A joint row-wise walk over `N` strided operands of one shape.
#[derive(Clone, Debug)]
pub(crate) struct Plan<const N: usize> {
    outer_shape: Shape,
    outer_strides: [Shape; N],
    /// Length of each row.
    pub inner_len: usize,
    /// Stride of each operand along a row.
    pub inner_strides: [usize; N],
    /// Number of rows.
    pub rows: usize,
}

impl<const N: usize> Plan<N> {
    /// Coalesce `shape` against the strides of `N` operands.
    pub fn new(shape: &[usize], strides: [&[usize]; N]) -> Self {
        // First: an empty shape's other dims and (saturated) strides may
        // overflow when coalesced.
        if shape.contains(&0) {
            return Plan {
                outer_shape: SmallVec::new(),
                outer_strides: std::array::from_fn(|_| SmallVec::new()),
                inner_len: 0,
                inner_strides: [0; N],
                rows: 0,
            };
        }
        let mut dims: SmallVec<[(usize, [usize; N]); 8]> = SmallVec::new();
        for (i, &d) in shape.iter().enumerate() {
            if d == 1 {
                continue;
            }
            let s: [usize; N] = std::array::from_fn(|k| strides[k][i]);
            if let Some(last) = dims.last_mut() {
                if (0..N).all(|k| last.1[k] == s[k] * d) {
                    last.0 *= d;
                    last.1 = s;
                    continue;
                }
            }
            dims.push((d, s));
        }
        let (inner_len, inner_strides) = dims.pop().unwrap_or((1, [0; N]));
        let outer_shape: Shape = dims.iter().map(|d| d.0).collect();
        let outer_strides = std::array::from_fn(|k| dims.iter().map(|d| d.1[k]).collect());
        let rows = outer_shape.iter().product();
        Plan {
            outer_shape,
            outer_strides,
            inner_len,
            inner_strides,
            rows,
        }
    }

    /// Call `f(row_offsets)` for rows `start..end`, given the operands' base offsets.
    #[inline]
    pub fn for_rows(
        &self,
        base: [usize; N],
        start: usize,
        end: usize,
        mut f: impl FnMut([usize; N]),
    ) {
        if start >= end {
            return;
        }
        let nd = self.outer_shape.len();
        let mut idx: SmallVec<[usize; 8]> = SmallVec::from_elem(0, nd);
        let mut off = base;
        // Position the odometer at `start`.
        let mut rem = start;
        for d in (0..nd).rev() {
            let i = rem % self.outer_shape[d];
            rem /= self.outer_shape[d];
            idx[d] = i;
            for k in 0..N {
                off[k] += i * self.outer_strides[k][d];
            }
        }
        for _ in start..end {
            f(off);
            // Advance.
            let mut d = nd;
            while d > 0 {
                d -= 1;
                idx[d] += 1;
                for k in 0..N {
                    off[k] += self.outer_strides[k][d];
                }
                if idx[d] < self.outer_shape[d] {
                    break;
                }
                for k in 0..N {
                    off[k] -= idx[d] * self.outer_strides[k][d];
                }
                idx[d] = 0;
            }
        }
    }
}

/// Build a contiguous output of `shape` from `N` strided inputs.
///
/// `f(out, len, in_offsets, in_strides)` writes `len` elements to `out`
/// ([`Out::extend`]): element `j` comes from the inputs at
/// `in_offsets[k] + j * in_strides[k]`. It is called once per row (in order
/// within a chunk of rows; chunks may run on different threads), or once
/// per fixed chunk of a single long row. The output is
/// written once, never zero-filled first.
pub(crate) fn fill<T, const N: usize, F>(
    shape: &[usize],
    inputs: [(&[usize], usize); N],
    f: F,
) -> Vec<T>
where
    T: Send,
    F: Fn(&mut Out<'_, T>, usize, [usize; N], [usize; N]) + Sync,
{
    let n: usize = shape.iter().product();
    if n == 0 {
        return Vec::new();
    }
    let strides: [&[usize]; N] = std::array::from_fn(|k| inputs[k].0);
    let plan = Plan::new(shape, strides);
    let base: [usize; N] = std::array::from_fn(|k| inputs[k].1);
    let row = plan.inner_len;
    let strides_in = plan.inner_strides;
    let parallel = !(n < PAR_THRESHOLD || plan.rows == 1 && n < PAR_THRESHOLD * 2);
    if plan.rows == 1 {
        // One long row: split it into fixed chunks.
        let chunk = if parallel { 1 << 14 } else { n };
        collect_chunks(n, chunk, parallel, |r, out| {
            let off: [usize; N] = std::array::from_fn(|k| base[k] + r.start * strides_in[k]);
            f(out, r.len(), off, strides_in);
        })
    } else {
        let rows_per_task = if parallel {
            (PAR_THRESHOLD / 2 / row).max(1)
        } else {
            plan.rows
        };
        collect_chunks(n, rows_per_task * row, parallel, |r, out| {
            plan.for_rows(base, r.start / row, r.end / row, |off| {
                f(out, row, off, strides_in)
            });
        })
    }
}

/// Copy a strided view into a packed row-major vector.
///
/// A transposing copy (rows that step through memory by less than a row's
/// own stride, `x.t().contiguous()`) goes tile by tile ([`Out::extend_tiled`]),
/// in chunks of whole 16-row groups (a tile stops early where a run of
/// adjacent rows ends); anything else row by row ([`fill`]).
pub(crate) fn gather<T: Copy + Send + Sync>(
    src: &[T],
    shape: &[usize],
    strides: &[usize],
    offset: usize,
) -> Vec<T> {
    let plan = Plan::new(shape, [strides]);
    let (len, [cs]) = (plan.inner_len, plan.inner_strides);
    match (plan.outer_shape.last(), plan.outer_strides[0].last()) {
        (Some(&run), Some(&rs)) if run > 1 && rs > 0 && rs < cs && len > 1 => {
            let n = plan.rows * len;
            let parallel = n >= PAR_THRESHOLD;
            let rows_per_task = if parallel {
                (PAR_THRESHOLD / 2 / len).max(1).next_multiple_of(16)
            } else {
                plan.rows
            };
            collect_chunks(n, rows_per_task * len, parallel, |r, out| {
                // Rows `r0 .. r1`, as runs along the last outer axis (whose
                // rows are `rs` apart).
                let (mut r0, r1) = (r.start / len, r.end / len);
                while r0 < r1 {
                    let rows = (run - r0 % run).min(r1 - r0);
                    let mut o = 0;
                    plan.for_rows([offset], r0, r0 + 1, |[first]| o = first);
                    out.extend_tiled(src, o, (rows, len), (rs, cs));
                    r0 += rows;
                }
            })
        }
        _ => fill(shape, [(strides, offset)], |out, n, [o], [s]| {
            if s == 1 {
                out.extend(src[o..o + n].iter().copied());
            } else {
                out.extend((0..n).map(|j| src[o + j * s]));
            }
        }),
    }
}
