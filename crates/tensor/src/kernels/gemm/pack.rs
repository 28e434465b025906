//! Packing of A and B blocks into contiguous, microkernel-ordered panels.
//!
//! Both routines read the operand through its strides, so transposed views
//! (`rs == 1`) and broadcast views (a zero stride) are packed without any
//! intermediate copy. Panels past the edge of the matrix are zero-padded so
//! the microkernels always see full `MR x kc` / `kc x NR` panels.

use super::Elem;
use crate::kernels::MatRef;

/// Packs `A[i0 .. i0 + mc, p0 .. p0 + kc]` into `dst`.
///
/// Layout: `ceil(mc / mr)` micro-panels of `mr * kc` elements each; inside a
/// micro-panel, element `(i, p)` sits at `p * mr + i`. Rows past `mc` are zero.
pub(super) fn pack_a<T: Elem>(
    dst: &mut [T],
    a: &MatRef<'_, T>,
    i0: usize,
    mc: usize,
    p0: usize,
    kc: usize,
    mr: usize,
) {
    let (rs, cs) = (a.rs, a.cs);
    let panels = mc.div_ceil(mr);
    for (r, panel) in dst[..panels * mr * kc]
        .chunks_exact_mut(mr * kc)
        .enumerate()
    {
        let rows = (mc - r * mr).min(mr);
        let base = a.offset + (i0 + r * mr) * rs + p0 * cs;
        if rs == 1 && rows == mr {
            // Column-major / transposed A: each k-column of the panel is contiguous.
            for (p, out) in panel.chunks_exact_mut(mr).enumerate() {
                let s = base + p * cs;
                out.copy_from_slice(&a.data[s..s + mr]);
            }
        } else if cs == 1 {
            // Row-major A: read each row contiguously, scatter with stride mr.
            for i in 0..rows {
                let s = base + i * rs;
                let row = &a.data[s..s + kc];
                for (out, &v) in panel[i..].iter_mut().step_by(mr).zip(row) {
                    *out = v;
                }
            }
            if rows < mr {
                for out in panel.chunks_exact_mut(mr) {
                    out[rows..].fill(T::ZERO);
                }
            }
        } else {
            for (p, out) in panel.chunks_exact_mut(mr).enumerate() {
                for (i, o) in out.iter_mut().enumerate() {
                    *o = if i < rows {
                        a.data[base + i * rs + p * cs]
                    } else {
                        T::ZERO
                    };
                }
            }
        }
    }
}

/// Packs `B[p0 .. p0 + kc, j0 .. j0 + nc]` into `dst`.
///
/// Layout: `ceil(nc / nr)` micro-panels of `kc * nr` elements each; inside a
/// micro-panel, element `(p, j)` sits at `p * nr + j`. Columns past `nc` are zero.
pub(super) fn pack_b<T: Elem>(
    dst: &mut [T],
    b: &MatRef<'_, T>,
    p0: usize,
    kc: usize,
    j0: usize,
    nc: usize,
    nr: usize,
) {
    let (rs, cs) = (b.rs, b.cs);
    let panels = nc.div_ceil(nr);
    for (r, panel) in dst[..panels * nr * kc]
        .chunks_exact_mut(nr * kc)
        .enumerate()
    {
        let cols = (nc - r * nr).min(nr);
        let base = b.offset + p0 * rs + (j0 + r * nr) * cs;
        if cs == 1 {
            // Row-major B: each k-row of the panel is a contiguous run.
            for (p, out) in panel.chunks_exact_mut(nr).enumerate() {
                let s = base + p * rs;
                out[..cols].copy_from_slice(&b.data[s..s + cols]);
                out[cols..].fill(T::ZERO);
            }
        } else if rs == 1 {
            // Column-major / transposed B: read columns contiguously.
            for j in 0..cols {
                let s = base + j * cs;
                let col = &b.data[s..s + kc];
                for (out, &v) in panel[j..].iter_mut().step_by(nr).zip(col) {
                    *out = v;
                }
            }
            if cols < nr {
                for out in panel.chunks_exact_mut(nr) {
                    out[cols..].fill(T::ZERO);
                }
            }
        } else {
            for (p, out) in panel.chunks_exact_mut(nr).enumerate() {
                for (j, o) in out.iter_mut().enumerate() {
                    *o = if j < cols {
                        b.data[base + p * rs + j * cs]
                    } else {
                        T::ZERO
                    };
                }
            }
        }
    }
}
