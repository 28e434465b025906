//! Unpacked fast paths: matrix-vector products and tiny matrices.
//!
//! Everything here is safe, generic Rust. The per-path wrappers in the SIMD
//! modules inline [`small_gemm`] into `#[target_feature]` functions so the same
//! source is compiled (and auto-vectorised) for AVX2 and AVX-512 as well as for
//! the baseline target.

use super::Elem;
use crate::kernels::{MatMut, MatRef};

/// Partial sums kept by [`dot`]; enough independent chains to hide add latency.
const DOT_LANES: usize = 32;

/// Dot product of two contiguous slices of equal length, in a fixed order.
#[inline(always)]
fn dot<T: Elem>(x: &[T], y: &[T]) -> T {
    let mut acc = [T::ZERO; DOT_LANES];
    let xc = x.chunks_exact(DOT_LANES);
    let yc = y.chunks_exact(DOT_LANES);
    let (xr, yr) = (xc.remainder(), yc.remainder());
    for (xs, ys) in xc.zip(yc) {
        for l in 0..DOT_LANES {
            acc[l] = acc[l] + xs[l] * ys[l];
        }
    }
    let mut width = DOT_LANES;
    while width > 1 {
        width /= 2;
        for l in 0..width {
            acc[l] = acc[l] + acc[l + width];
        }
    }
    let mut s = acc[0];
    for (&a, &b) in xr.iter().zip(yr) {
        s = s + a * b;
    }
    s
}

/// A strided vector inside a slice.
struct Vector {
    off: usize,
    inc: usize,
}

/// A strided `rows x cols` matrix inside a slice.
struct Mat {
    off: usize,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

/// `y = M x` (or `y += M x`), with `y` of length `m.rows`.
#[inline(always)]
fn gemv<T: Elem>(yd: &mut [T], y: Vector, md: &[T], m: Mat, xd: &[T], x: Vector, accumulate: bool) {
    let k = m.cols;
    if m.cs == 1 && x.inc == 1 {
        // Rows of M contiguous: one dot product per output element.
        let xs = &xd[x.off..x.off + k];
        for i in 0..m.rows {
            let s = m.off + i * m.rs;
            let v = dot(&md[s..s + k], xs);
            let yi = &mut yd[y.off + i * y.inc];
            *yi = if accumulate { *yi + v } else { v };
        }
    } else if m.rs == 1 && y.inc == 1 {
        // Columns of M contiguous: y += x_p * M[:, p] (axpy form).
        let ys = &mut yd[y.off..y.off + m.rows];
        if !accumulate {
            ys.fill(T::ZERO);
        }
        for p in 0..k {
            let xp = xd[x.off + p * x.inc];
            let s = m.off + p * m.cs;
            for (yi, &mi) in ys.iter_mut().zip(&md[s..s + m.rows]) {
                *yi = *yi + xp * mi;
            }
        }
    } else {
        for i in 0..m.rows {
            let mut v = T::ZERO;
            for p in 0..k {
                v = v + md[m.off + i * m.rs + p * m.cs] * xd[x.off + p * x.inc];
            }
            let yi = &mut yd[y.off + i * y.inc];
            *yi = if accumulate { *yi + v } else { v };
        }
    }
}

/// The unpacked path: matrix-vector products and tiny matrices.
///
/// Requires validated, non-empty views with `k > 0`.
#[inline(always)]
pub(super) fn small_gemm<T: Elem>(
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: MatMut<'_, T>,
    accumulate: bool,
) {
    let (m, n, k) = (c.rows, c.cols, a.cols);
    if m == 1 {
        // C[0, :] = A[0, :] B  ==  B^T x with x = A's row.
        let mat = Mat {
            off: b.offset,
            rows: n,
            cols: k,
            rs: b.cs,
            cs: b.rs,
        };
        let y = Vector {
            off: c.offset,
            inc: c.cs,
        };
        let x = Vector {
            off: a.offset,
            inc: a.cs,
        };
        gemv(c.data, y, b.data, mat, a.data, x, accumulate);
    } else if n == 1 {
        let mat = Mat {
            off: a.offset,
            rows: m,
            cols: k,
            rs: a.rs,
            cs: a.cs,
        };
        let y = Vector {
            off: c.offset,
            inc: c.rs,
        };
        let x = Vector {
            off: b.offset,
            inc: b.rs,
        };
        gemv(c.data, y, a.data, mat, b.data, x, accumulate);
    } else if b.cs == 1 && c.cs == 1 {
        // Row-major B and C: C[i, :] += A[i, p] * B[p, :].
        for i in 0..m {
            let cs = c.offset + i * c.rs;
            let crow = &mut c.data[cs..cs + n];
            if !accumulate {
                crow.fill(T::ZERO);
            }
            for p in 0..k {
                let aip = a.data[a.offset + i * a.rs + p * a.cs];
                let bs = b.offset + p * b.rs;
                for (cj, &bj) in crow.iter_mut().zip(&b.data[bs..bs + n]) {
                    *cj = *cj + aip * bj;
                }
            }
        }
    } else {
        for i in 0..m {
            for j in 0..n {
                let mut v = T::ZERO;
                for p in 0..k {
                    v = v + a.data[a.offset + i * a.rs + p * a.cs]
                        * b.data[b.offset + p * b.rs + j * b.cs];
                }
                let idx = c.offset + i * c.rs + j * c.cs;
                c.data[idx] = if accumulate { c.data[idx] + v } else { v };
            }
        }
    }
}
