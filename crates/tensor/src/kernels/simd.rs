//! Compute-bound elementwise loops compiled for the CPU at run time.
//!
//! The default build targets baseline x86-64, so an auto-vectorised loop
//! such as `exp` over a slice uses 4-lane SSE. [`simd_with`] runs a closure
//! inside a function compiled with AVX-512F (or AVX2 + FMA), chosen once
//! per process with the GEMM's [`kernel_path`] (the caller passes it), so a
//! loop in the closure that is inlined there vectorises 16 (or 8) lanes
//! wide. The closure is the
//! same code on every path and heft's maths uses no fused multiply-add
//! that the compiler could contract differently, so every path gives
//! bit-identical results (tested in `ops/unary.rs` and `ops/reduce.rs`).
//!
//! Mark the closure `#[inline(always)]` and keep the loop in it: what is
//! not inlined into the trampoline is compiled for the baseline.
//!
//! ```ignore
//! simd_with(kernel_path(), #[inline(always)] || {
//!     for (d, &x) in dst.iter_mut().zip(src) {
//!         *d = exp_f32(x);
//!     }
//! });
//! ```

use super::kernel_path;
use super::KernelPath;

/// Runs `f` compiled for `path`, which must be supported: callers pass
/// [`kernel_path`] (tests pass each supported path in turn).
#[inline]
pub(crate) fn simd_with<R>(path: KernelPath, f: impl FnOnce() -> R) -> R {
    debug_assert!(path.is_supported());
    match path {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `path` comes from `kernel_path` or a test that checked
        // `is_supported`, so the CPU has AVX-512F.
        KernelPath::Avx512 => unsafe { run_avx512(f) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above, for AVX2 and FMA.
        KernelPath::Avx2 => unsafe { run_avx2(f) },
        _ => f(),
    }
}

/// Runs `f` compiled for the widest vector instructions this CPU has (the
/// GEMM's [`kernel_path`], chosen once per process; `HEFT_KERNEL` forces
/// it), for elementwise loops outside this crate, such as the optimizers'
/// fused update loops.
///
/// The default build targets baseline x86-64, where a loop vectorises only
/// 4 lanes (SSE) wide; a loop inlined into `f` runs 16 lanes wide on
/// AVX-512F and 8 on AVX2. Mark the closure `#[inline(always)]` and keep the
/// loop in it (or in functions marked `#[inline(always)]`): what is not
/// inlined is compiled for the baseline. Rust never contracts `a * b + c`
/// into a fused multiply-add by itself, so the same closure gives the same
/// bits on every path.
///
/// ```
/// let g = vec![1.0f32; 1000];
/// let mut p = vec![2.0f32; 1000];
/// heft_tensor::kernels::vectorized(
///     #[inline(always)]
///     || {
///         for (p, &g) in p.iter_mut().zip(&g) {
///             *p -= 0.5 * g;
///         }
///     },
/// );
/// assert!(p.iter().all(|&v| v == 1.5));
/// ```
#[inline]
pub fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    simd_with(kernel_path(), f)
}

/// `f()`, with `f` inlined into a body compiled for AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn run_avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// `f()`, with `f` inlined into a body compiled for AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn run_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}
