//! AVX2 + FMA microkernels: f32 `6 x 16` and f64 `6 x 8`.
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
