//! General matrix multiply: `C = A B + beta * C` on strided views.
//!
//! This file is a placeholder reference implementation; the packed SIMD
//! kernels replace the bodies of [`gemm_f32`] and [`gemm_f64`].

use super::{MatMut, MatRef};

/// Which implementation a GEMM call runs (chosen once per process).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelPath {
    /// Portable Rust code, auto-vectorised by the compiler.
    Scalar,
    /// AVX2 + FMA microkernels.
    Avx2,
    /// AVX-512F microkernels.
    Avx512,
}

/// The naive triple loop: `C = A B + (if accumulate { C } else { 0 })`.
///
/// Always compiled; the tests compare every fast path against it.
///
/// # Panics
/// Panics if the shapes do not agree or a view is out of bounds.
pub fn gemm_reference<T>(a: MatRef<'_, T>, b: MatRef<'_, T>, c: MatMut<'_, T>, accumulate: bool)
where
    T: Copy + Default + std::ops::Add<Output = T> + std::ops::Mul<Output = T>,
{
    assert!(a.cols == b.rows && a.rows == c.rows && b.cols == c.cols);
    assert!(a.in_bounds() && b.in_bounds() && c.in_bounds());
    for i in 0..c.rows {
        for j in 0..c.cols {
            let mut acc = T::default();
            for p in 0..a.cols {
                acc = acc
                    + a.data[a.offset + i * a.rs + p * a.cs]
                        * b.data[b.offset + p * b.rs + j * b.cs];
            }
            let idx = c.offset + i * c.rs + j * c.cs;
            c.data[idx] = if accumulate { c.data[idx] + acc } else { acc };
        }
    }
}

/// `C = A B` (or `C += A B` when `accumulate`) in f32.
///
/// # Panics
/// Panics if the shapes do not agree or a view is out of bounds (callers in
/// heft-tensor validate shapes and return errors before calling).
pub fn gemm_f32(a: MatRef<'_, f32>, b: MatRef<'_, f32>, c: MatMut<'_, f32>, accumulate: bool) {
    gemm_reference(a, b, c, accumulate)
}

/// `C = A B` (or `C += A B` when `accumulate`) in f64.
///
/// # Panics
/// As [`gemm_f32`].
pub fn gemm_f64(a: MatRef<'_, f64>, b: MatRef<'_, f64>, c: MatMut<'_, f64>, accumulate: bool) {
    gemm_reference(a, b, c, accumulate)
}
