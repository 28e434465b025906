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
            // Row-major A: gather from `rows` contiguous row streams, writing
            // the panel sequentially.
            gather(panel, &a.data[base..], rs, rows, kc, mr);
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
            // Column-major / transposed B: gather from `cols` contiguous
            // column streams, writing the panel sequentially.
            gather(panel, &b.data[base..], cs, cols, kc, nr);
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

/// Most streams [`gather`] handles at once (no register tile is wider).
const MAX_STREAMS: usize = 32;

/// Transposing copy: `panel[p * width + l] = src[l * stride + p]` for
/// `l < lines`, `p < kc`; lanes `lines..width` are zero.
///
/// Reads `lines` contiguous streams in step and writes the panel in order,
/// which keeps both sides cache friendly (the previous scatter version wrote
/// one cache line per element).
#[inline]
fn gather<T: Elem>(
    panel: &mut [T],
    src: &[T],
    stride: usize,
    lines: usize,
    kc: usize,
    width: usize,
) {
    debug_assert!(width <= MAX_STREAMS && lines <= width);
    let mut streams: [&[T]; MAX_STREAMS] = [&[]; MAX_STREAMS];
    for (l, st) in streams[..lines].iter_mut().enumerate() {
        *st = &src[l * stride..l * stride + kc];
    }
    let streams = &streams[..lines];
    // Blocks of 8 k-steps: each stream contributes 8 contiguous values.
    const P: usize = 8;
    let full = kc / P * P;
    for (pb, block) in panel[..full * width]
        .chunks_exact_mut(P * width)
        .enumerate()
    {
        let p0 = pb * P;
        for (l, st) in streams.iter().enumerate() {
            let vals: &[T; P] = st[p0..p0 + P].try_into().expect("8 values");
            for (q, &v) in vals.iter().enumerate() {
                block[q * width + l] = v;
            }
        }
        if lines < width {
            for row in block.chunks_exact_mut(width) {
                row[lines..].fill(T::ZERO);
            }
        }
    }
    for (q, row) in panel[full * width..kc * width]
        .chunks_exact_mut(width)
        .enumerate()
    {
        let p = full + q;
        for (o, st) in row.iter_mut().zip(streams) {
            *o = st[p];
        }
        row[lines..].fill(T::ZERO);
    }
}
