//! AVX2 + FMA microkernels: f32 `6 x 16` and f64 `6 x 8`, on packed panels
//! and with A read in place (the same tile shape: `simd_ukr_direct_a!`).
//!
//! 6 rows x 2 ymm = 12 accumulators, plus 2 ymm of B and one broadcast, fits
//! the 16 ymm registers.

use core::arch::x86_64::*;

use crate::kernels::{MatMut, MatRef};

/// Rows of the register tile.
pub(super) const MR: usize = 6;
/// Columns of the f32 register tile (two ymm of 8 lanes).
pub(super) const NR_F32: usize = 16;
/// Columns of the f64 register tile (two ymm of 4 lanes).
pub(super) const NR_F64: usize = 8;

simd_ukr! {
    feature = "avx2,fma",
    ty = f32,
    mr = 6,
    lanes = 8,
    zero = _mm256_setzero_ps,
    loadu = _mm256_loadu_ps,
    storeu = _mm256_storeu_ps,
    set1 = _mm256_set1_ps,
    fmadd = _mm256_fmadd_ps,
    add = _mm256_add_ps,
    inner = ukr_f32_rows,
    outer = ukr_f32,
    unroll = 2,
    pf = 8,
    rows = [1, 2, 3, 4, 5, 6]
}

simd_ukr! {
    feature = "avx2,fma",
    ty = f64,
    mr = 6,
    lanes = 4,
    zero = _mm256_setzero_pd,
    loadu = _mm256_loadu_pd,
    storeu = _mm256_storeu_pd,
    set1 = _mm256_set1_pd,
    fmadd = _mm256_fmadd_pd,
    add = _mm256_add_pd,
    inner = ukr_f64_rows,
    outer = ukr_f64,
    unroll = 2,
    pf = 8,
    rows = [1, 2, 3, 4, 5, 6]
}

simd_ukr_direct_a! {
    feature = "avx2,fma",
    ty = f32,
    nv = 2,
    lanes = 8,
    zero = _mm256_setzero_ps,
    loadu = _mm256_loadu_ps,
    storeu = _mm256_storeu_ps,
    set1 = _mm256_set1_ps,
    fmadd = _mm256_fmadd_ps,
    add = _mm256_add_ps,
    inner = ukr_direct_f32_rows,
    outer = ukr_direct_f32,
    pf = 8,
    rows = [1, 2, 3, 4, 5, 6]
}

simd_ukr_direct_a! {
    feature = "avx2,fma",
    ty = f64,
    nv = 2,
    lanes = 4,
    zero = _mm256_setzero_pd,
    loadu = _mm256_loadu_pd,
    storeu = _mm256_storeu_pd,
    set1 = _mm256_set1_pd,
    fmadd = _mm256_fmadd_pd,
    add = _mm256_add_pd,
    inner = ukr_direct_f64_rows,
    outer = ukr_direct_f64,
    pf = 8,
    rows = [1, 2, 3, 4, 5, 6]
}

/// The unpacked small-matrix path compiled for AVX2 + FMA.
#[target_feature(enable = "avx2,fma")]
pub(super) fn small_f32(a: MatRef<'_, f32>, b: MatRef<'_, f32>, c: MatMut<'_, f32>, acc: bool) {
    super::small::small_gemm(a, b, c, acc)
}

/// The unpacked small-matrix path compiled for AVX2 + FMA.
#[target_feature(enable = "avx2,fma")]
pub(super) fn small_f64(a: MatRef<'_, f64>, b: MatRef<'_, f64>, c: MatMut<'_, f64>, acc: bool) {
    super::small::small_gemm(a, b, c, acc)
}

/// Transposing pack for f32 (the [`super::pack::Gather`] contract):
/// `panel[p * width + l] = src[l * stride + p]` for `l < lines`, `p < kc`,
/// lanes `lines..width` zero.
///
/// On AVX2 CPUs, full blocks of 8 k steps go through an 8 x 8 in-register
/// transpose per group of 8 lines; the k tail (and every other CPU) uses
/// the portable [`super::pack::gather`]. Both write exactly the same values.
pub(super) fn gather_f32(
    panel: &mut [f32],
    src: &[f32],
    stride: usize,
    lines: usize,
    kc: usize,
    width: usize,
) {
    if kc >= 8 && lines >= 1 && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        unsafe { gather_f32_avx2(panel, src, stride, lines, kc, width) }
    } else {
        super::pack::gather(panel, src, stride, lines, kc, width)
    }
}

/// Transposing pack for f64; see [`gather_f32`] (4 x 4 blocks).
pub(super) fn gather_f64(
    panel: &mut [f64],
    src: &[f64],
    stride: usize,
    lines: usize,
    kc: usize,
    width: usize,
) {
    if kc >= 4 && lines >= 1 && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        unsafe { gather_f64_avx2(panel, src, stride, lines, kc, width) }
    } else {
        super::pack::gather(panel, src, stride, lines, kc, width)
    }
}

/// Transposes the 8 x 8 block `r` (row `i` = `r[i]`) in place, so that
/// afterwards `r[j]` holds the former column `j`.
#[target_feature(enable = "avx2")]
#[inline]
fn transpose8(r: &mut [__m256; 8]) {
    // Interleave 32-bit elements of row pairs (within 128-bit lanes).
    let t: [__m256; 8] = std::array::from_fn(|i| {
        let (a, b) = (r[i / 2 * 2], r[i / 2 * 2 + 1]);
        if i % 2 == 0 {
            _mm256_unpacklo_ps(a, b)
        } else {
            _mm256_unpackhi_ps(a, b)
        }
    });
    // Per lane, s[4h + c] holds element c (of the lane) of rows 4h..4h+4.
    let mut s = [_mm256_setzero_ps(); 8];
    for h in 0..2 {
        let (t0, t1, t2, t3) = (t[4 * h], t[4 * h + 1], t[4 * h + 2], t[4 * h + 3]);
        s[4 * h] = _mm256_shuffle_ps::<0x44>(t0, t2);
        s[4 * h + 1] = _mm256_shuffle_ps::<0xEE>(t0, t2);
        s[4 * h + 2] = _mm256_shuffle_ps::<0x44>(t1, t3);
        s[4 * h + 3] = _mm256_shuffle_ps::<0xEE>(t1, t3);
    }
    // Join the 128-bit lanes: columns c (low lanes) and c + 4 (high lanes).
    for c in 0..4 {
        r[c] = _mm256_permute2f128_ps::<0x20>(s[c], s[4 + c]);
        r[c + 4] = _mm256_permute2f128_ps::<0x31>(s[c], s[4 + c]);
    }
}

/// The first `lanes` (1..=8) lanes set, as a `maskstore` mask.
#[target_feature(enable = "avx2")]
#[inline]
fn lane_mask(lanes: usize) -> __m256i {
    _mm256_cmpgt_epi32(
        _mm256_set1_epi32(lanes as i32),
        _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
    )
}

/// The AVX2 body of [`gather_f32`] (`kc >= 8`, `lines >= 1`).
///
/// # Safety
/// The CPU supports AVX2. (Slice bounds are checked here, not assumed.)
#[target_feature(enable = "avx2")]
unsafe fn gather_f32_avx2(
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
    let full = kc / 8 * 8;
    let sp = src.as_ptr();
    let pp = panel.as_mut_ptr();
    for p0 in (0..full).step_by(8) {
        for l0 in (0..width).step_by(8) {
            let lanes = 8.min(width - l0);
            let mask = lane_mask(lanes);
            let mut r = [_mm256_setzero_ps(); 8];
            for (i, row) in r.iter_mut().enumerate() {
                if l0 + i < lines {
                    // SAFETY: line l0 + i < lines reads src[(l0+i)*stride + p0
                    // .. + 8], inside its stream since p0 + 8 <= full <= kc,
                    // and the stream lies in `src` (asserted above).
                    *row = unsafe { _mm256_loadu_ps(sp.add((l0 + i) * stride + p0)) };
                }
            }
            transpose8(&mut r);
            for (q, v) in r.iter().enumerate() {
                // SAFETY: writes lanes l0 .. l0 + lanes <= width of panel row
                // p0 + q < kc, i.e. inside panel[..kc * width] (asserted);
                // masked-off lanes are not written.
                unsafe { _mm256_maskstore_ps(pp.add((p0 + q) * width + l0), mask, *v) };
            }
        }
    }
    super::pack::gather(
        &mut panel[full * width..],
        &src[full..],
        stride,
        lines,
        kc - full,
        width,
    );
}

/// The AVX2 body of [`gather_f64`] (`kc >= 4`, `lines >= 1`): 4 x 4 blocks.
///
/// # Safety
/// The CPU supports AVX2. (Slice bounds are checked here, not assumed.)
#[target_feature(enable = "avx2")]
unsafe fn gather_f64_avx2(
    panel: &mut [f64],
    src: &[f64],
    stride: usize,
    lines: usize,
    kc: usize,
    width: usize,
) {
    assert!(lines <= width && panel.len() >= kc * width);
    assert!(
        (lines - 1) * stride + kc <= src.len(),
        "gather: source too short"
    );
    let full = kc / 4 * 4;
    let sp = src.as_ptr();
    let pp = panel.as_mut_ptr();
    for p0 in (0..full).step_by(4) {
        for l0 in (0..width).step_by(4) {
            let lanes = 4.min(width - l0);
            // Two 32-bit mask lanes per f64 lane.
            let mask = lane_mask(2 * lanes);
            let mut r = [_mm256_setzero_pd(); 4];
            for (i, row) in r.iter_mut().enumerate() {
                if l0 + i < lines {
                    // SAFETY: as in gather_f32_avx2, for 4 values.
                    *row = unsafe { _mm256_loadu_pd(sp.add((l0 + i) * stride + p0)) };
                }
            }
            let t0 = _mm256_unpacklo_pd(r[0], r[1]);
            let t1 = _mm256_unpackhi_pd(r[0], r[1]);
            let t2 = _mm256_unpacklo_pd(r[2], r[3]);
            let t3 = _mm256_unpackhi_pd(r[2], r[3]);
            let cols = [
                _mm256_permute2f128_pd::<0x20>(t0, t2),
                _mm256_permute2f128_pd::<0x20>(t1, t3),
                _mm256_permute2f128_pd::<0x31>(t0, t2),
                _mm256_permute2f128_pd::<0x31>(t1, t3),
            ];
            for (q, v) in cols.iter().enumerate() {
                // SAFETY: as in gather_f32_avx2, for 4 lanes.
                unsafe { _mm256_maskstore_pd(pp.add((p0 + q) * width + l0), mask, *v) };
            }
        }
    }
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

    /// The AVX2 transposing packs write exactly what the portable one does
    /// (odd depths, line counts, widths, strides; nothing past the panel).
    #[test]
    fn gather_f32_matches_portable() {
        if std::arch::is_x86_feature_detected!("avx2") {
            super::super::pack::check_gather::<f32>(
                gather_f32,
                &[6, 16, 8, 3, 20],
                &[1, 7, 8, 9, 15, 16, 17, 64, 100, 257],
            );
        }
    }

    #[test]
    fn gather_f64_matches_portable() {
        if std::arch::is_x86_feature_detected!("avx2") {
            super::super::pack::check_gather::<f64>(
                gather_f64,
                &[6, 8, 4, 3, 10],
                &[1, 3, 4, 5, 7, 8, 9, 64, 100, 257],
            );
        }
    }
}
