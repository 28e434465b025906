//! AVX-512F microkernels: f32 `14 x 32` and f64 `14 x 16` on packed panels,
//! and the direct-A kernels (A read in place), f32 `6 x 64` and f64 `6 x 32`.
//!
//! 14 rows x 2 zmm = 28 accumulators, plus 2 zmm of B, leaves 2 of the 32 zmm
//! registers free; the broadcasts of A fold into the FMAs as memory operands.
//! Each k step issues 28 FMAs against 16 loads, so both FMA ports stay busy.

use core::arch::x86_64::*;

use crate::kernels::{MatMut, MatRef};

/// Rows of the register tile.
pub(super) const MR: usize = 14;
/// Columns of the f32 register tile (two zmm of 16 lanes).
pub(super) const NR_F32: usize = 32;
/// Columns of the f64 register tile (two zmm of 8 lanes).
pub(super) const NR_F64: usize = 16;

simd_ukr! {
    feature = "avx512f",
    ty = f32,
    mr = 14,
    lanes = 16,
    zero = _mm512_setzero_ps,
    loadu = _mm512_loadu_ps,
    storeu = _mm512_storeu_ps,
    set1 = _mm512_set1_ps,
    fmadd = _mm512_fmadd_ps,
    add = _mm512_add_ps,
    inner = ukr_f32_rows,
    outer = ukr_f32,
    unroll = 2,
    pf = 8,
    rows = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]
}

simd_ukr! {
    feature = "avx512f",
    ty = f64,
    mr = 14,
    lanes = 8,
    zero = _mm512_setzero_pd,
    loadu = _mm512_loadu_pd,
    storeu = _mm512_storeu_pd,
    set1 = _mm512_set1_pd,
    fmadd = _mm512_fmadd_pd,
    add = _mm512_add_pd,
    inner = ukr_f64_rows,
    outer = ukr_f64,
    unroll = 2,
    pf = 8,
    rows = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]
}

/// Rows of the direct-A register tile (A read in place, see
/// `simd_ukr_direct_a`).
pub(super) const MR_DIRECT: usize = 6;
/// Columns of the f32 direct-A tile (four zmm of 16 lanes).
pub(super) const NR_DIRECT_F32: usize = 64;
/// Columns of the f64 direct-A tile (four zmm of 8 lanes).
pub(super) const NR_DIRECT_F64: usize = 32;

/// The direct-A kernels of this file: `simd_ukr_direct_a!` on zmm registers,
/// 6 rows, prefetch 8 k steps ahead; `nv` vectors per row. The `f32` / `f64`
/// arms only pick the lane count and the `ps` / `pd` intrinsics.
macro_rules! direct_a_avx512 {
    (f32, nv = $nv:literal, $inner:ident, $outer:ident) => {
        direct_a_avx512!(@ f32, 16, $nv, $inner, $outer, _mm512_setzero_ps, _mm512_loadu_ps,
            _mm512_storeu_ps, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps);
    };
    (f64, nv = $nv:literal, $inner:ident, $outer:ident) => {
        direct_a_avx512!(@ f64, 8, $nv, $inner, $outer, _mm512_setzero_pd, _mm512_loadu_pd,
            _mm512_storeu_pd, _mm512_set1_pd, _mm512_fmadd_pd, _mm512_add_pd);
    };
    (@ $t:ty, $lanes:literal, $nv:literal, $inner:ident, $outer:ident,
        $zero:path, $loadu:path, $storeu:path, $set1:path, $fmadd:path, $add:path) => {
        simd_ukr_direct_a! {
            feature = "avx512f",
            ty = $t,
            nv = $nv,
            lanes = $lanes,
            zero = $zero,
            loadu = $loadu,
            storeu = $storeu,
            set1 = $set1,
            fmadd = $fmadd,
            add = $add,
            inner = $inner,
            outer = $outer,
            pf = 8,
            rows = [1, 2, 3, 4, 5, 6]
        }
    };
}

direct_a_avx512!(f32, nv = 4, ukr_direct_f32_rows, ukr_direct_f32);
direct_a_avx512!(f64, nv = 4, ukr_direct_f64_rows, ukr_direct_f64);

// Narrow edge tiles of the direct-A kernels: one and two vectors wide, for a
// last B panel of at most 16 / 32 (f32) or 8 / 16 (f64) columns, so a
// 10-column product does not run 64 columns of FMAs. Same FMA chain per
// element as the full-width kernels.
direct_a_avx512!(f32, nv = 1, ukr_direct_f32_v1_rows, ukr_direct_f32_v1);
direct_a_avx512!(f32, nv = 2, ukr_direct_f32_v2_rows, ukr_direct_f32_v2);
direct_a_avx512!(f64, nv = 1, ukr_direct_f64_v1_rows, ukr_direct_f64_v1);
direct_a_avx512!(f64, nv = 2, ukr_direct_f64_v2_rows, ukr_direct_f64_v2);

/// The unpacked small-matrix path compiled for AVX-512.
#[target_feature(enable = "avx512f")]
pub(super) fn small_f32(a: MatRef<'_, f32>, b: MatRef<'_, f32>, c: MatMut<'_, f32>, acc: bool) {
    super::small::small_gemm(a, b, c, acc)
}

/// The unpacked small-matrix path compiled for AVX-512.
#[target_feature(enable = "avx512f")]
pub(super) fn small_f64(a: MatRef<'_, f64>, b: MatRef<'_, f64>, c: MatMut<'_, f64>, acc: bool) {
    super::small::small_gemm(a, b, c, acc)
}

/// Transposing pack for f32 (the [`super::pack::Gather`] contract):
/// `panel[p * width + l] = src[l * stride + p]` for `l < lines`, `p < kc`,
/// lanes `lines..width` zero.
///
/// On AVX-512 CPUs, full blocks of 16 k steps go through a 16 x 16 in-register
/// transpose per group of 16 lines; the k tail (and every other CPU) uses the
/// portable [`super::pack::gather`]. Both write exactly the same values.
pub(super) fn gather_f32(
    panel: &mut [f32],
    src: &[f32],
    stride: usize,
    lines: usize,
    kc: usize,
    width: usize,
) {
    if kc >= 16 && lines >= 1 && std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU supports AVX-512F (checked just above).
        unsafe { gather_f32_avx512(panel, src, stride, lines, kc, width) }
    } else {
        super::pack::gather(panel, src, stride, lines, kc, width)
    }
}

/// Run-order copy into panels for f32 (the [`super::pack::copy_panels`]
/// contract), compiled with AVX-512F so that full 16- and 32-wide runs move
/// as whole zmm registers; other CPUs take the baseline build of the same code.
pub(super) fn copy_panels_f32(
    dst: &mut [f32],
    src: &[f32],
    step: usize,
    len: usize,
    kc: usize,
    width: usize,
) {
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU supports AVX-512F (checked just above).
        unsafe { copy_panels_avx512(dst, src, step, len, kc, width) }
    } else {
        super::pack::copy_panels(dst, src, step, len, kc, width)
    }
}

/// f64 twin of [`copy_panels_f32`].
pub(super) fn copy_panels_f64(
    dst: &mut [f64],
    src: &[f64],
    step: usize,
    len: usize,
    kc: usize,
    width: usize,
) {
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU supports AVX-512F (checked just above).
        unsafe { copy_panels_avx512(dst, src, step, len, kc, width) }
    } else {
        super::pack::copy_panels(dst, src, step, len, kc, width)
    }
}

/// [`super::pack::copy_panels`] compiled with AVX-512F (safe code; the
/// target feature only changes instruction selection).
///
/// # Safety
/// The CPU supports AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn copy_panels_avx512<T: super::Elem>(
    dst: &mut [T],
    src: &[T],
    step: usize,
    len: usize,
    kc: usize,
    width: usize,
) {
    super::pack::copy_panels(dst, src, step, len, kc, width)
}

/// Transposes the 16 x 16 block `r` (row `i` = `r[i]`) in place, so that
/// afterwards `r[j]` holds the former column `j`.
#[target_feature(enable = "avx512f")]
#[inline]
fn transpose16(r: &mut [__m512; 16]) {
    let mut t = [_mm512_setzero_ps(); 16];
    // Interleave 32-bit elements of row pairs.
    for i in 0..8 {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    // Interleave 64-bit pairs of those.
    for q in 0..4 {
        let b = 4 * q;
        let (t0, t1, t2, t3) = (
            _mm512_castps_pd(t[b]),
            _mm512_castps_pd(t[b + 1]),
            _mm512_castps_pd(t[b + 2]),
            _mm512_castps_pd(t[b + 3]),
        );
        r[b] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
        r[b + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
        r[b + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
        r[b + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
    }
    // Now r[4q + c] holds, in 128-bit lane L, elements 4L + c of rows 4q..4q+4.
    // Gather the 128-bit lanes: first pair rows 0-3 with 4-7 (and 8-11 with 12-15) ...
    for h in 0..2 {
        let b = 8 * h;
        for c in 0..4 {
            t[b + c] = _mm512_shuffle_f32x4::<0x88>(r[b + c], r[b + 4 + c]);
            t[b + 4 + c] = _mm512_shuffle_f32x4::<0xdd>(r[b + c], r[b + 4 + c]);
        }
    }
    // ... then the two halves.
    for c in 0..8 {
        r[c] = _mm512_shuffle_f32x4::<0x88>(t[c], t[8 + c]);
        r[8 + c] = _mm512_shuffle_f32x4::<0xdd>(t[c], t[8 + c]);
    }
}

/// The AVX-512 body of [`gather_f32`] (`kc >= 16`, `lines >= 1`).
///
/// # Safety
/// The CPU supports AVX-512F. (Slice bounds are checked here, not assumed.)
#[target_feature(enable = "avx512f")]
unsafe fn gather_f32_avx512(
    panel: &mut [f32],
    src: &[f32],
    stride: usize,
    lines: usize,
    kc: usize,
    width: usize,
) {
    assert!(lines <= width && panel.len() >= kc * width);
    // Every stream `l < lines` is `src[l * stride .. l * stride + kc]`.
    assert!(
        (lines - 1) * stride + kc <= src.len(),
        "gather: source too short"
    );
    let full = kc / 16 * 16;
    let groups = width.div_ceil(16);
    let sp = src.as_ptr();
    let pp = panel.as_mut_ptr();
    for p0 in (0..full).step_by(16) {
        for g in 0..groups {
            let l0 = 16 * g;
            let lanes = 16.min(width - l0);
            let mask: __mmask16 = ((1u32 << lanes) - 1) as __mmask16;
            let mut r = [_mm512_setzero_ps(); 16];
            for (i, row) in r.iter_mut().enumerate() {
                if l0 + i < lines {
                    // SAFETY: line l0 + i < lines reads src[(l0+i)*stride + p0
                    // .. + 16], inside its stream since p0 + 16 <= full <= kc,
                    // and the stream lies in `src` (asserted above).
                    *row = unsafe { _mm512_loadu_ps(sp.add((l0 + i) * stride + p0)) };
                }
            }
            transpose16(&mut r);
            for (q, v) in r.iter().enumerate() {
                // SAFETY: writes lanes l0 .. l0 + lanes <= width of panel row
                // p0 + q < kc, i.e. inside panel[..kc * width] (asserted);
                // masked-off lanes are not written.
                unsafe { _mm512_mask_storeu_ps(pp.add((p0 + q) * width + l0), mask, *v) };
            }
        }
    }
    // The k tail: the portable gather, on the panel and streams from `full` on.
    super::pack::gather(
        &mut panel[full * width..],
        &src[full..],
        stride,
        lines,
        kc - full,
        width,
    );
}

/// Transposing pack for f64 (the [`super::pack::Gather`] contract):
/// `panel[p * width + l] = src[l * stride + p]` for `l < lines`, `p < kc`,
/// lanes `lines..width` zero.
///
/// On AVX-512 CPUs, full blocks of 8 k steps go through an 8 x 8 in-register
/// transpose per group of 8 lines; the k tail (and every other CPU) uses the
/// portable [`super::pack::gather`]. Both write exactly the same values.
pub(super) fn gather_f64(
    panel: &mut [f64],
    src: &[f64],
    stride: usize,
    lines: usize,
    kc: usize,
    width: usize,
) {
    if kc >= 8 && lines >= 1 && std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU supports AVX-512F (checked just above).
        unsafe { gather_f64_avx512(panel, src, stride, lines, kc, width) }
    } else {
        super::pack::gather(panel, src, stride, lines, kc, width)
    }
}

/// Transposes the 8 x 8 block `r` (row `i` = `r[i]`) in place, so that
/// afterwards `r[j]` holds the former column `j`.
#[target_feature(enable = "avx512f")]
#[inline]
fn transpose8(r: &mut [__m512d; 8]) {
    // Interleave 64-bit elements of row pairs: t[2q] holds elements 0, 2, 4,
    // 6 of rows 2q and 2q + 1 (alternating), t[2q + 1] elements 1, 3, 5, 7.
    let mut t = [_mm512_setzero_pd(); 8];
    for q in 0..4 {
        t[2 * q] = _mm512_unpacklo_pd(r[2 * q], r[2 * q + 1]);
        t[2 * q + 1] = _mm512_unpackhi_pd(r[2 * q], r[2 * q + 1]);
    }
    // Gather 128-bit lanes: u[4h + c'] for rows 4h..4h+4; even/odd lanes.
    let mut u = [_mm512_setzero_pd(); 8];
    for h in 0..2 {
        let b = 4 * h;
        u[b] = _mm512_shuffle_f64x2::<0x88>(t[b], t[b + 2]); // columns 0, 4
        u[b + 1] = _mm512_shuffle_f64x2::<0xdd>(t[b], t[b + 2]); // columns 2, 6
        u[b + 2] = _mm512_shuffle_f64x2::<0x88>(t[b + 1], t[b + 3]); // columns 1, 5
        u[b + 3] = _mm512_shuffle_f64x2::<0xdd>(t[b + 1], t[b + 3]); // columns 3, 7
    }
    // Join rows 0-3 with rows 4-7.
    r[0] = _mm512_shuffle_f64x2::<0x88>(u[0], u[4]);
    r[4] = _mm512_shuffle_f64x2::<0xdd>(u[0], u[4]);
    r[2] = _mm512_shuffle_f64x2::<0x88>(u[1], u[5]);
    r[6] = _mm512_shuffle_f64x2::<0xdd>(u[1], u[5]);
    r[1] = _mm512_shuffle_f64x2::<0x88>(u[2], u[6]);
    r[5] = _mm512_shuffle_f64x2::<0xdd>(u[2], u[6]);
    r[3] = _mm512_shuffle_f64x2::<0x88>(u[3], u[7]);
    r[7] = _mm512_shuffle_f64x2::<0xdd>(u[3], u[7]);
}

/// The AVX-512 body of [`gather_f64`] (`kc >= 8`, `lines >= 1`).
///
/// # Safety
/// The CPU supports AVX-512F. (Slice bounds are checked here, not assumed.)
#[target_feature(enable = "avx512f")]
unsafe fn gather_f64_avx512(
    panel: &mut [f64],
    src: &[f64],
    stride: usize,
    lines: usize,
    kc: usize,
    width: usize,
) {
    assert!(lines <= width && panel.len() >= kc * width);
    // Every stream `l < lines` is `src[l * stride .. l * stride + kc]`.
    assert!(
        (lines - 1) * stride + kc <= src.len(),
        "gather: source too short"
    );
    let full = kc / 8 * 8;
    let groups = width.div_ceil(8);
    let sp = src.as_ptr();
    let pp = panel.as_mut_ptr();
    for p0 in (0..full).step_by(8) {
        for g in 0..groups {
            let l0 = 8 * g;
            let lanes = 8.min(width - l0);
            let mask: __mmask8 = ((1u32 << lanes) - 1) as __mmask8;
            let mut r = [_mm512_setzero_pd(); 8];
            for (i, row) in r.iter_mut().enumerate() {
                if l0 + i < lines {
                    // SAFETY: line l0 + i < lines reads src[(l0+i)*stride + p0
                    // .. + 8], inside its stream since p0 + 8 <= full <= kc,
                    // and the stream lies in `src` (asserted above).
                    *row = unsafe { _mm512_loadu_pd(sp.add((l0 + i) * stride + p0)) };
                }
            }
            transpose8(&mut r);
            for (q, v) in r.iter().enumerate() {
                // SAFETY: writes lanes l0 .. l0 + lanes <= width of panel row
                // p0 + q < kc, i.e. inside panel[..kc * width] (asserted);
                // masked-off lanes are not written.
                unsafe { _mm512_mask_storeu_pd(pp.add((p0 + q) * width + l0), mask, *v) };
            }
        }
    }
    // The k tail: the portable gather, on the panel and streams from `full` on.
    super::pack::gather(
        &mut panel[full * width..],
        &src[full..],
        stride,
        lines,
        kc - full,
        width,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SIMD transposing packs write exactly what the portable one does
    /// (odd depths, line counts, widths, strides; nothing past the panel).
    #[test]
    fn gather_f64_matches_portable() {
        if std::arch::is_x86_feature_detected!("avx512f") {
            super::super::pack::check_gather::<f64>(
                gather_f64,
                &[14, 16, 32, 8, 6, 20],
                &[1, 7, 8, 9, 15, 16, 17, 64, 100, 257],
            );
        }
    }

    #[test]
    fn gather_f32_matches_portable() {
        if std::arch::is_x86_feature_detected!("avx512f") {
            super::super::pack::check_gather::<f32>(
                gather_f32,
                &[14, 16, 32, 64, 6, 20],
                &[1, 15, 16, 17, 31, 32, 33, 64, 100, 257],
            );
        }
    }
}
