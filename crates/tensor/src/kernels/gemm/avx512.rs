//! AVX-512F microkernels: f32 `14 x 32` and f64 `14 x 16`.
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
    rows = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]
}

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
