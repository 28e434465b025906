//! Packing of A and B blocks into contiguous, microkernel-ordered panels.
//!
//! Both routines read the operand through its strides, so transposed views
//! (`rs == 1`) and broadcast views (a zero stride) are packed without any
//! intermediate copy. Panels past the edge of the matrix are zero-padded so
//! the microkernels always see full `MR x kc` / `kc x NR` panels.

use super::Elem;
use crate::kernels::MatRef;

/// A transposing pack (see [`gather`] for the contract): `(panel, src,
/// stride, lines, kc, width)`. Each [`super::Kernel`] names its own, so SIMD
/// paths can transpose in registers while the portable path keeps [`gather`].
pub(crate) type Gather<T> = fn(&mut [T], &[T], usize, usize, usize, usize);

/// A run-order copy into panels (see [`copy_panels`] for the contract):
/// `(dst, src, step, len, kc, width)`. SIMD paths compile [`copy_panels`]
/// with their own target features; the portable path uses it as is.
pub(crate) type CopyPanels<T> = fn(&mut [T], &[T], usize, usize, usize, usize);

/// Whether the microkernel reads row-major B in place (see [`BPanels`])
/// instead of from packed panels, for an `m`-row product: B is row-major, at
/// least one panel wide, and A has few rows to share a packed copy.
///
/// Packing B costs one copy of every element, shared by the `m / MR` row
/// tiles of A; with the MLP's batch of 64 rows that copy was 13% of a
/// 64x256x784 product. Read in place, each k step loads the same two cache
/// lines of B that a packed panel would hold, but from rows `ldb` apart:
/// more pages, and with a row stride that is a multiple of 4 KiB all rows
/// fall in the same L1 sets. Measured on one thread (heft / `gemm` crate,
/// packed -> in place): 64x256x784 0.91 -> 1.07, 128x784x256 0.98 -> 1.04,
/// 256x256x256 0.93 -> 0.96, 64x1024x1024 1.07 -> 1.13, 256x512x512 1.00 ->
/// 1.02; but 256x1024x1024 (4 KiB rows) 1.00 -> 0.96, 512 square 0.97 ->
/// 0.95, 1024 square 0.97 -> 0.89. Hence: in place up to 128 rows, or up to
/// 256 when the row stride is not a multiple of 4 KiB.
pub(super) fn direct_b<T>(b: &MatRef<'_, T>, m: usize, n: usize, nr: usize) -> bool {
    let row_bytes = b.rs.saturating_mul(std::mem::size_of::<T>());
    b.cs == 1 && n >= nr && (m <= 128 || (m <= 256 && !row_bytes.is_multiple_of(4096)))
}

/// [`direct_b`] for the direct-A kernel (A read in place), which streams the
/// B block once per 6-row tile: there a packed B pays from 129 rows on.
/// `gemm-probe`, one thread, heft / `gemm` crate, in place -> packed: 256
/// square NN 0.96 -> 0.98-0.99, 256x512x256 NN 0.95-0.99 -> 1.00-1.03,
/// 160x256x512 and 200x300x300 NN unchanged.
pub(super) fn direct_b_for_direct_a<T>(b: &MatRef<'_, T>, m: usize, n: usize, nr: usize) -> bool {
    m <= 128 && direct_b(b, m, n, nr)
}

/// Where the microkernel finds the B micro-panels of one `kc x nc` block:
/// packed panels in a buffer, or, with [`direct_b`], the full-width panels in
/// B itself (rows `ldb` apart) and only a partial last panel packed.
pub(super) struct BPanels<'a, T> {
    /// `B(p0, j0)` when reading in place.
    base: *const T,
    /// Row stride of B when reading in place.
    ldb: usize,
    /// How many leading panels are read in place.
    direct: usize,
    /// The packed panels (after the direct ones).
    packed: *const T,
    kc: usize,
    nr: usize,
    _borrow: std::marker::PhantomData<&'a T>,
}

impl<T> BPanels<'_, T> {
    /// Pointer to micro-panel `jr` and the distance between its rows.
    #[inline(always)]
    pub(super) fn panel(&self, jr: usize) -> (*const T, usize) {
        if jr < self.direct {
            (self.base.wrapping_add(jr * self.nr), self.ldb)
        } else {
            (
                self.packed
                    .wrapping_add((jr - self.direct) * self.nr * self.kc),
                self.nr,
            )
        }
    }
}

/// Packs what the microkernel needs of the B block `B[p0 .. p0 + kc, j0 ..
/// j0 + nc]` into `dst`: all of it ([`pack_b`]), or, when `direct`, only
/// its partial last panel (if any); [`b_panels`] then finds the panels.
#[allow(clippy::too_many_arguments)]
pub(super) fn pack_b_for<T: Elem>(
    dst: &mut [T],
    b: &MatRef<'_, T>,
    p0: usize,
    kc: usize,
    j0: usize,
    nc: usize,
    nr: usize,
    direct: bool,
    tpack: Gather<T>,
    cpack: CopyPanels<T>,
) {
    let full = if direct { nc / nr } else { 0 };
    if full * nr < nc {
        pack_b(
            dst,
            b,
            p0,
            kc,
            j0 + full * nr,
            nc - full * nr,
            nr,
            tpack,
            cpack,
        );
    }
}

/// The panels of a B block prepared by [`pack_b_for`] (same arguments) into
/// `packed`.
pub(super) fn b_panels<'a, T>(
    packed: &'a [T],
    b: &MatRef<'a, T>,
    p0: usize,
    kc: usize,
    j0: usize,
    nc: usize,
    nr: usize,
    direct: bool,
) -> BPanels<'a, T> {
    let full = if direct { nc / nr } else { 0 };
    let base = if full > 0 {
        b.data[b.offset + p0 * b.rs + j0..].as_ptr()
    } else {
        packed.as_ptr()
    };
    BPanels {
        base,
        ldb: b.rs,
        direct: full,
        packed: packed.as_ptr(),
        kc,
        nr,
        _borrow: std::marker::PhantomData,
    }
}

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
    tpack: Gather<T>,
    cpack: CopyPanels<T>,
) {
    let (rs, cs) = (a.rs, a.cs);
    let panels = mc.div_ceil(mr);
    if rs == 1 {
        // Column-major / transposed A (or a single row or column): each
        // k-column of the block is contiguous; copy it across all panels
        // before moving to the next.
        let base = a.offset + i0 + p0 * cs;
        cpack(
            &mut dst[..panels * mr * kc],
            &a.data[base..],
            cs,
            mc,
            kc,
            mr,
        );
        return;
    }
    for (r, panel) in dst[..panels * mr * kc]
        .chunks_exact_mut(mr * kc)
        .enumerate()
    {
        let rows = (mc - r * mr).min(mr);
        let base = a.offset + (i0 + r * mr) * rs + p0 * cs;
        if cs == 1 {
            // Row-major A: gather from `rows` contiguous row streams, writing
            // the panel sequentially.
            tpack(panel, &a.data[base..], rs, rows, kc, mr);
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
    tpack: Gather<T>,
    cpack: CopyPanels<T>,
) {
    let (rs, cs) = (b.rs, b.cs);
    let panels = nc.div_ceil(nr);
    if cs == 1 {
        // Row-major B (or a single row or column): each k-row of the block
        // is contiguous; copy it across
        // all panels before moving to the next, so the source is read in order.
        let base = b.offset + p0 * rs + j0;
        cpack(
            &mut dst[..panels * nr * kc],
            &b.data[base..],
            rs,
            nc,
            kc,
            nr,
        );
        return;
    }
    for (r, panel) in dst[..panels * nr * kc]
        .chunks_exact_mut(nr * kc)
        .enumerate()
    {
        let cols = (nc - r * nr).min(nr);
        let base = b.offset + p0 * rs + (j0 + r * nr) * cs;
        if rs == 1 {
            // Column-major / transposed B: gather from `cols` contiguous
            // column streams, writing the panel sequentially.
            tpack(panel, &b.data[base..], cs, cols, kc, nr);
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

/// Calls `$f::<W>` for the register-tile widths in use, else the dynamic version.
macro_rules! by_width {
    ($width:expr, $fixed:ident, $dynamic:ident, ($($arg:expr),*)) => {
        match $width {
            64 => $fixed::<T, 64>($($arg),*),
            32 => $fixed::<T, 32>($($arg),*),
            16 => $fixed::<T, 16>($($arg),*),
            14 => $fixed::<T, 14>($($arg),*),
            8 => $fixed::<T, 8>($($arg),*),
            6 => $fixed::<T, 6>($($arg),*),
            4 => $fixed::<T, 4>($($arg),*),
            w => $dynamic($($arg,)* w),
        }
    };
}

/// Run-order copy into panels: `dst[r * kc * width + p * width + l] =
/// src[p * step + r * width + l]` for `r * width + l < len`, `p < kc`; lanes
/// past `len` are zero. Each source run (`len` contiguous values) is read
/// once, in order, and distributed over the `ceil(len / width)` panels.
///
/// Always inlined, so a caller compiled with more target features (see
/// `avx512::copy_panels_f32`) gets wider copies.
#[inline(always)]
pub(crate) fn copy_panels<T: Elem>(
    dst: &mut [T],
    src: &[T],
    step: usize,
    len: usize,
    kc: usize,
    width: usize,
) {
    by_width!(
        width,
        copy_panels_w,
        copy_panels_dyn,
        (dst, src, step, len, kc)
    )
}

#[inline(always)]
fn copy_panels_w<T: Elem, const W: usize>(
    dst: &mut [T],
    src: &[T],
    step: usize,
    len: usize,
    kc: usize,
) {
    let full = len / W;
    let panels = len.div_ceil(W);
    assert!(dst.len() >= panels * kc * W);
    assert!(kc == 0 || len == 0 || (kc - 1) * step + len <= src.len());
    for p in 0..kc {
        let run = &src[p * step..p * step + len];
        let (chunks, rest) = run.as_chunks::<W>();
        for (r, chunk) in chunks.iter().enumerate() {
            let o = r * kc * W + p * W;
            let out: &mut [T; W] = (&mut dst[o..o + W]).try_into().expect("W values");
            *out = *chunk;
        }
        if full < panels {
            let o = full * kc * W + p * W;
            let out = &mut dst[o..o + W];
            out[..rest.len()].copy_from_slice(rest);
            out[rest.len()..].fill(T::ZERO);
        }
    }
}

fn copy_panels_dyn<T: Elem>(
    dst: &mut [T],
    src: &[T],
    step: usize,
    len: usize,
    kc: usize,
    width: usize,
) {
    let panels = len.div_ceil(width);
    for p in 0..kc {
        let run = &src[p * step..p * step + len];
        for r in 0..panels {
            let o = r * kc * width + p * width;
            let out = &mut dst[o..o + width];
            let part = &run[r * width..len.min((r + 1) * width)];
            out[..part.len()].copy_from_slice(part);
            out[part.len()..].fill(T::ZERO);
        }
    }
}

/// Transposing copy: `panel[p * width + l] = src[l * stride + p]` for
/// `l < lines`, `p < kc`; lanes `lines..width` are zero.
///
/// Reads `lines` contiguous streams in step (8 values from each at a time)
/// and writes the panel in order, which keeps both sides cache friendly.
/// This is the portable version; `avx512::gather_f32` transposes in registers.
pub(crate) fn gather<T: Elem>(
    panel: &mut [T],
    src: &[T],
    stride: usize,
    lines: usize,
    kc: usize,
    width: usize,
) {
    by_width!(width, gather_w, gather_dyn, (panel, src, stride, lines, kc))
}

#[inline(always)]
fn gather_w<T: Elem, const W: usize>(
    panel: &mut [T],
    src: &[T],
    stride: usize,
    lines: usize,
    kc: usize,
) {
    const P: usize = 8;
    let mut streams: [&[T]; W] = [&[]; W];
    for (l, st) in streams[..lines].iter_mut().enumerate() {
        *st = &src[l * stride..l * stride + kc];
    }
    let (rows, _) = panel[..kc * W].as_chunks_mut::<W>();
    let full = kc / P * P;
    let (head, tail) = rows.split_at_mut(full);
    let (blocks, _) = head.as_chunks_mut::<P>();
    for (pb, block) in blocks.iter_mut().enumerate() {
        let p0 = pb * P;
        for l in 0..W {
            if l < lines {
                let vals: &[T; P] = streams[l][p0..p0 + P].try_into().expect("P values");
                for q in 0..P {
                    block[q][l] = vals[q];
                }
            } else {
                for row in block.iter_mut() {
                    row[l] = T::ZERO;
                }
            }
        }
    }
    for (q, row) in tail.iter_mut().enumerate() {
        let p = full + q;
        for l in 0..W {
            row[l] = if l < lines { streams[l][p] } else { T::ZERO };
        }
    }
}

/// Most streams [`gather_dyn`] handles at once (no register tile is wider).
const MAX_STREAMS: usize = 64;

/// [`gather`] for any width up to [`MAX_STREAMS`].
fn gather_dyn<T: Elem>(
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

/// Test helper: `g` writes exactly what the portable [`gather`] does, over
/// odd depths, line counts, the given widths and strides, and leaves the
/// panel past `kc * width` untouched.
#[cfg(test)]
pub(super) fn check_gather<T: Elem + std::fmt::Debug + PartialEq + From<i16>>(
    g: Gather<T>,
    widths: &[usize],
    depths: &[usize],
) {
    for &width in widths {
        for lines in 1..=width {
            for &kc in depths {
                for &pad in &[0usize, 1, 3, 16] {
                    let stride = kc + pad;
                    let len = (lines - 1) * stride + kc;
                    let src: Vec<T> = (0..len).map(|i| T::from((i % 20_000) as i16 - 7)).collect();
                    let mut want = vec![T::from(-1); kc * width + 19];
                    let mut got = want.clone();
                    gather(&mut want, &src, stride, lines, kc, width);
                    g(&mut got, &src, stride, lines, kc, width);
                    assert_eq!(got, want, "width {width} lines {lines} kc {kc} pad {pad}");
                }
            }
        }
    }
}
