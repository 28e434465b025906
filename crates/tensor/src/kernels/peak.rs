//! Measures the single-core floating-point FMA peak of this machine.
//!
//! A short loop of independent fused multiply-adds on registers only (no
//! memory traffic), with enough accumulators to cover FMA latency on two
//! ports. Uses the widest vector unit the CPU has (AVX-512F, then AVX2 + FMA,
//! then a plain-Rust fallback that is only indicative). Benchmarks report GEMM
//! throughput as a fraction of this number.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// Independent accumulator registers in the measuring loop.
const ACCS: usize = 12;
/// Loop iterations per timed chunk.
const ITERS: usize = 1 << 16;

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{ACCS, ITERS};
    use core::arch::x86_64::*;

    macro_rules! fma_loop {
        ($name:ident, $feat:literal, $t:ty, $set1:ident, $fmadd:ident, $reduce:expr) => {
            /// Runs `ITERS * ACCS` vector FMAs and returns a value depending on all of them.
            #[target_feature(enable = $feat)]
            pub(super) fn $name(x: $t, y: $t) -> $t {
                let mut acc = [$set1(0.0); ACCS];
                for (i, a) in acc.iter_mut().enumerate() {
                    *a = $set1(i as $t);
                }
                let (vx, vy) = ($set1(x), $set1(y));
                for _ in 0..ITERS {
                    for a in acc.iter_mut() {
                        *a = $fmadd(*a, vx, vy);
                    }
                }
                let mut s = 0.0;
                for a in acc {
                    s += $reduce(a);
                }
                s
            }
        };
    }

    fma_loop!(
        f32_avx512,
        "avx512f",
        f32,
        _mm512_set1_ps,
        _mm512_fmadd_ps,
        _mm512_reduce_add_ps
    );
    fma_loop!(
        f64_avx512,
        "avx512f",
        f64,
        _mm512_set1_pd,
        _mm512_fmadd_pd,
        _mm512_reduce_add_pd
    );
    fma_loop!(
        f32_avx2,
        "avx2,fma",
        f32,
        _mm256_set1_ps,
        _mm256_fmadd_ps,
        |v: __m256| {
            let mut t = [0.0f32; 8];
            // SAFETY: `t` has room for the 8 lanes written.
            unsafe { _mm256_storeu_ps(t.as_mut_ptr(), v) };
            t.iter().sum::<f32>()
        }
    );
    fma_loop!(
        f64_avx2,
        "avx2,fma",
        f64,
        _mm256_set1_pd,
        _mm256_fmadd_pd,
        |v: __m256d| {
            let mut t = [0.0f64; 4];
            // SAFETY: `t` has room for the 4 lanes written.
            unsafe { _mm256_storeu_pd(t.as_mut_ptr(), v) };
            t.iter().sum::<f64>()
        }
    );
}

/// Portable multiply-add loop (mul + add; the compiler vectorises it).
fn portable_loop<T>(x: T, y: T) -> T
where
    T: Copy + Default + std::ops::Add<Output = T> + std::ops::Mul<Output = T>,
{
    let mut acc = [[T::default(); 8]; ACCS];
    for _ in 0..ITERS {
        for a in acc.iter_mut() {
            for v in a.iter_mut() {
                *v = *v * x + y;
            }
        }
    }
    let mut s = T::default();
    for a in acc {
        for v in a {
            s = s + v;
        }
    }
    s
}

/// Runs one timed chunk; returns (flops, seconds).
fn chunk(dtype_f64: bool) -> (f64, f64) {
    // Values close to 1 keep the accumulators finite and normal.
    let (x32, y32) = (black_box(0.999_999_f32), black_box(1e-7_f32));
    let (x64, y64) = (black_box(0.999_999_f64), black_box(1e-7_f64));
    let start = Instant::now();
    #[allow(unused_mut)]
    let mut lanes = 0usize;
    #[cfg(target_arch = "x86_64")]
    {
        let avx512 = std::arch::is_x86_feature_detected!("avx512f");
        let avx2 = std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma");
        // SAFETY (all four calls): the required CPU feature was detected just above.
        if avx512 {
            if dtype_f64 {
                black_box(unsafe { x86::f64_avx512(x64, y64) });
                lanes = 8;
            } else {
                black_box(unsafe { x86::f32_avx512(x32, y32) });
                lanes = 16;
            }
        } else if avx2 {
            if dtype_f64 {
                black_box(unsafe { x86::f64_avx2(x64, y64) });
                lanes = 4;
            } else {
                black_box(unsafe { x86::f32_avx2(x32, y32) });
                lanes = 8;
            }
        }
    }
    if lanes == 0 {
        if dtype_f64 {
            black_box(portable_loop(x64, y64));
        } else {
            black_box(portable_loop(x32, y32));
        }
        lanes = 8;
    }
    let secs = start.elapsed().as_secs_f64();
    let flops = 2.0 * (ITERS * ACCS * lanes) as f64;
    (flops, secs)
}

/// Single-thread FMA peak in GFLOP/s (one FMA = 2 flops), for f64 if
/// `dtype_f64` else f32, measured for about `duration`.
///
/// Returns the best rate over many short chunks, which filters out
/// interruptions on a busy machine; the first chunk warms the clocks up and
/// is included (it can only lower the max).
pub fn measure_fma_peak_gflops(dtype_f64: bool, duration: Duration) -> f64 {
    let start = Instant::now();
    let mut best = 0.0f64;
    loop {
        let (flops, secs) = chunk(dtype_f64);
        if secs > 0.0 {
            best = best.max(flops / secs / 1e9);
        }
        if start.elapsed() >= duration {
            break;
        }
    }
    best
}
