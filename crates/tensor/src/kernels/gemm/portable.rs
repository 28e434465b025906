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

/// Tile of exactly `M` rows, panels packed with `MR x NR`.
#[inline(always)]
fn tile<T: Elem, const NR: usize, const M: usize>(
    a: &[T],
    b: &[T],
    c: *mut T,
    rsc: usize,
    csc: usize,
    n_eff: usize,
    acc_c: bool,
) {
    let mut acc = [[T::ZERO; NR]; M];
    for (ap, bp) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
        let bv: &[T; NR] = bp.try_into().expect("panel row has NR elements");
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
/// The `Ukr` contract: `a` points to `k * MR` packed elements, `b` to
/// `k * NR`, `c` to a writable `m_eff x n_eff` block with strides `rsc`/`csc`,
/// `1 <= m_eff <= MR`, `1 <= n_eff <= NR`.
#[inline]
unsafe fn ukr<T: Elem, const NR: usize>(
    k: usize,
    a: *const T,
    b: *const T,
    c: *mut T,
    rsc: usize,
    csc: usize,
    m_eff: usize,
    n_eff: usize,
    acc_c: bool,
) {
    // SAFETY: the contract says both packed panels hold exactly these many
    // initialised elements and are not written during the call.
    let (a, b) = unsafe {
        (
            core::slice::from_raw_parts(a, k * MR),
            core::slice::from_raw_parts(b, k * NR),
        )
    };
    match m_eff {
        1 => tile::<T, NR, 1>(a, b, c, rsc, csc, n_eff, acc_c),
        2 => tile::<T, NR, 2>(a, b, c, rsc, csc, n_eff, acc_c),
        3 => tile::<T, NR, 3>(a, b, c, rsc, csc, n_eff, acc_c),
        4 => tile::<T, NR, 4>(a, b, c, rsc, csc, n_eff, acc_c),
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
    c: *mut f32,
    rsc: usize,
    csc: usize,
    m_eff: usize,
    n_eff: usize,
    acc_c: bool,
) {
    // SAFETY: contract forwarded unchanged.
    unsafe { ukr::<f32, NR_F32>(k, a, b, c, rsc, csc, m_eff, n_eff, acc_c) }
}

/// f64 portable microkernel.
///
/// # Safety
/// See [`super::Ukr`].
pub(super) unsafe fn ukr_f64(
    k: usize,
    a: *const f64,
    b: *const f64,
    c: *mut f64,
    rsc: usize,
    csc: usize,
    m_eff: usize,
    n_eff: usize,
    acc_c: bool,
) {
    // SAFETY: contract forwarded unchanged.
    unsafe { ukr::<f64, NR_F64>(k, a, b, c, rsc, csc, m_eff, n_eff, acc_c) }
}
