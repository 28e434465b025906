//! Portable microkernels in plain Rust, shaped so the compiler vectorises them
//! for whatever the baseline target offers (SSE2 on x86-64, NEON on AArch64).
//!
//! f32 uses a `4 x 8` tile and f64 a `4 x 4` tile: 8 accumulator registers of
//! 128 bits plus the B row, which fits 16 registers without spilling.

use super::Elem;

/// Rows of the register tile.
pub(super) const MR: usize = 4;
/// Columns of the f32 register tile.
pub(super) const NR_F32: usize = 8;
/// Columns of the f64 register tile.
pub(super) const NR_F64: usize = 4;

/// Tile of exactly `M` rows: A packed with `MR` per k step, B rows of `NR`
/// values `ldb` apart.
#[inline(always)]
fn tile<T: Elem, const NR: usize, const M: usize>(
    a: &[T],
    b: &[T],
    ldb: usize,
    c: *mut T,
    rsc: usize,
    csc: usize,
    n_eff: usize,
    acc_c: bool,
) {
    let mut acc = [[T::ZERO; NR]; M];
    for (p, ap) in a.chunks_exact(MR).enumerate() {
        let bv: &[T; NR] = b[p * ldb..p * ldb + NR]
            .try_into()
            .expect("panel row has NR elements");
        for i in 0..M {
            let ai = ap[i];
            for j in 0..NR {
                acc[i][j] = acc[i][j] + ai * bv[j];
            }
        }
    }
    for (i, row) in acc.iter().enumerate() {
        for (j, &v) in row[..n_eff].iter().enumerate() {
            // SAFETY: the `Ukr` contract makes the `m_eff x n_eff` block at `c`
            // (strides rsc/csc) valid and exclusively ours; `i < M == m_eff`
            // and `j < n_eff`.
            unsafe {
                let cp = c.add(i * rsc + j * csc);
                *cp = if acc_c { *cp + v } else { v };
            }
        }
    }
}

/// Portable microkernel entry point with the [`super::Ukr`] signature.
///
/// # Safety
/// The `Ukr` contract: `a` points to `k * MR` packed elements, `b` to `k`
/// rows of `NR` elements `ldb` apart, `c` to a writable `m_eff x n_eff` block with strides `rsc`/`csc`,
/// `1 <= m_eff <= MR`, `1 <= n_eff <= NR`.
#[inline]
unsafe fn ukr<T: Elem, const NR: usize>(
    k: usize,
    a: *const T,
    b: *const T,
    ldb: usize,
    c: *mut T,
    rsc: usize,
    csc: usize,
    m_eff: usize,
    n_eff: usize,
    acc_c: bool,
) {
    if k == 0 {
        // (Never called so; keeps the B span below from underflowing.)
        return;
    }
    // SAFETY: the contract says the A panel and the k rows of B (the last
    // one ending NR elements after its start) hold initialised elements not
    // written during the call.
    let (a, b) = unsafe {
        (
            core::slice::from_raw_parts(a, k * MR),
            core::slice::from_raw_parts(b, (k - 1) * ldb + NR),
        )
    };
    match m_eff {
        1 => tile::<T, NR, 1>(a, b, ldb, c, rsc, csc, n_eff, acc_c),
        2 => tile::<T, NR, 2>(a, b, ldb, c, rsc, csc, n_eff, acc_c),
        3 => tile::<T, NR, 3>(a, b, ldb, c, rsc, csc, n_eff, acc_c),
        4 => tile::<T, NR, 4>(a, b, ldb, c, rsc, csc, n_eff, acc_c),
        _ => unreachable!("portable microkernel called with m_eff = {m_eff}"),
    }
}

/// f32 portable microkernel.
///
/// # Safety
/// See [`super::Ukr`].
pub(super) unsafe fn ukr_f32(
    k: usize,
    a: *const f32,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    rsc: usize,
    csc: usize,
    m_eff: usize,
    n_eff: usize,
    acc_c: bool,
) {
    // SAFETY: contract forwarded unchanged.
    unsafe { ukr::<f32, NR_F32>(k, a, b, ldb, c, rsc, csc, m_eff, n_eff, acc_c) }
}

/// f64 portable microkernel.
///
/// # Safety
/// See [`super::Ukr`].
pub(super) unsafe fn ukr_f64(
    k: usize,
    a: *const f64,
    b: *const f64,
    ldb: usize,
    c: *mut f64,
    rsc: usize,
    csc: usize,
    m_eff: usize,
    n_eff: usize,
    acc_c: bool,
) {
    // SAFETY: contract forwarded unchanged.
    unsafe { ukr::<f64, NR_F64>(k, a, b, ldb, c, rsc, csc, m_eff, n_eff, acc_c) }
}
