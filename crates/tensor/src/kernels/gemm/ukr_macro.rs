//! The register-blocked SIMD microkernel, written once as a macro and
//! instantiated for each (instruction set, element type) pair.

/// Defines an `MR x (2 * LANES)` microkernel.
///
/// The accumulator tile is `M` rows by two SIMD vectors; each k step loads two
/// vectors of the packed B micro-panel and broadcasts `M` scalars of the packed
/// A micro-panel (which the compiler folds into the FMA as an embedded
/// broadcast on AVX-512). `M` is a const generic so edge tiles with fewer rows
/// run a kernel of exactly their height instead of multiplying zero padding;
/// every row performs the same FMA chain whatever `M` is, so the result of an
/// element never depends on which tile it falls in.
///
/// `$outer` is the type-erased entry point with the [`super::Ukr`] signature.
/// `unroll` is how many k steps one loop iteration runs (the loop is unrolled
/// explicitly, with a remainder loop); `pf` is how many k steps ahead the
/// B micro-panel is prefetched (0: no prefetch).
macro_rules! simd_ukr {
    (
        feature = $feat:literal,
        ty = $t:ty,
        mr = $mr:literal,
        lanes = $lanes:literal,
        zero = $zero:path,
        loadu = $loadu:path,
        storeu = $storeu:path,
        set1 = $set1:path,
        fmadd = $fmadd:path,
        add = $add:path,
        inner = $inner:ident,
        outer = $outer:ident,
        unroll = $unroll:literal,
        pf = $pf:literal,
        rows = [$($m:literal),+]
    ) => {
        /// Microkernel for a tile of exactly `M` rows (`M <= MR`).
        ///
        /// # Safety
        /// The CPU supports the enabled features; `a` points to `k * MR` packed
        /// elements, `b` to `k` rows of `NR` elements, `ldb` apart; `c` addresses an `M x n_eff` block with
        /// strides `rsc`/`csc` that is valid for reads and writes and not
        /// accessed by anyone else during the call; `1 <= n_eff <= NR`.
        #[target_feature(enable = $feat)]
        #[inline]
        unsafe fn $inner<const M: usize>(
            k: usize,
            a: *const $t,
            b: *const $t,
            ldb: usize,
            c: *mut $t,
            rsc: usize,
            csc: usize,
            n_eff: usize,
            acc_c: bool,
        ) {
            const NR: usize = 2 * $lanes;
            let mut c0 = [$zero(); M];
            let mut c1 = [$zero(); M];
            // SAFETY: by the contract above every pointer offset below stays
            // inside the A panel (k steps of MR elements), the B rows (k rows of
            // NR elements, ldb apart) or the
            // M x n_eff block of C; prefetch addresses use wrapping arithmetic
            // and prefetches never fault.
            unsafe {
                for i in 0..M {
                    let row = c.wrapping_add(i * rsc);
                    _mm_prefetch::<_MM_HINT_T0>(row as *const i8);
                    _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(NR - 1) as *const i8);
                }
                let mut ap = a;
                let mut bp = b;
                // k steps in groups of `U` (an explicit unroll: one loop
                // counter update and branch per group), then the remainder.
                // Either way every k step issues the same FMAs in the same
                // order, so the unroll does not change any result.
                const U: usize = $unroll;
                const PF: usize = $pf;
                // One k step: two vectors of B, M broadcasts of A, 2 M FMAs.
                macro_rules! k_step {
                    () => {
                        let b0 = $loadu(bp);
                        let b1 = $loadu(bp.add($lanes));
                        for i in 0..M {
                            let ai = $set1(*ap.add(i));
                            c0[i] = $fmadd(ai, b0, c0[i]);
                            c1[i] = $fmadd(ai, b1, c1[i]);
                        }
                        ap = ap.add($mr);
                        bp = bp.add(ldb);
                    };
                }
                for _ in 0..k / U {
                    for _ in 0..U {
                        if PF > 0 {
                            // B streams from L2 (A stays in L1): fetch PF steps ahead.
                            _mm_prefetch::<_MM_HINT_T0>(bp.wrapping_add(PF * ldb) as *const i8);
                            _mm_prefetch::<_MM_HINT_T0>(
                                bp.wrapping_add(PF * ldb + $lanes) as *const i8,
                            );
                        }
                        k_step!();
                    }
                }
                for _ in 0..k % U {
                    k_step!();
                }
                if csc == 1 && n_eff == NR {
                    for i in 0..M {
                        let cp = c.add(i * rsc);
                        let (mut v0, mut v1) = (c0[i], c1[i]);
                        if acc_c {
                            v0 = $add($loadu(cp), v0);
                            v1 = $add($loadu(cp.add($lanes)), v1);
                        }
                        $storeu(cp, v0);
                        $storeu(cp.add($lanes), v1);
                    }
                } else {
                    let mut tmp = [<$t>::default(); NR];
                    for i in 0..M {
                        $storeu(tmp.as_mut_ptr(), c0[i]);
                        $storeu(tmp.as_mut_ptr().add($lanes), c1[i]);
                        for (j, &v) in tmp[..n_eff].iter().enumerate() {
                            let cp = c.add(i * rsc + j * csc);
                            *cp = if acc_c { *cp + v } else { v };
                        }
                    }
                }
            }
        }

        /// Type-erased microkernel entry point (see [`super::Ukr`]).
        ///
        /// # Safety
        /// As for the `Ukr` contract, with `1 <= m_eff <= MR`.
        pub(super) unsafe fn $outer(
            k: usize,
            a: *const $t,
            b: *const $t,
            ldb: usize,
            c: *mut $t,
            rsc: usize,
            csc: usize,
            m_eff: usize,
            n_eff: usize,
            acc_c: bool,
        ) {
            // SAFETY: the caller upholds the microkernel contract, which is
            // forwarded unchanged; `M == m_eff` rows are addressed.
            unsafe {
                match m_eff {
                    $($m => $inner::<$m>(k, a, b, ldb, c, rsc, csc, n_eff, acc_c),)+
                    _ => unreachable!("microkernel called with m_eff = {m_eff}"),
                }
            }
        }
    };
}

/// Defines an `MR x (NV * LANES)` microkernel that reads A in place.
///
/// For a row-major A (unit column stride) the broadcast side needs no
/// packing: each k step broadcasts `M` scalars straight from `M` rows of A,
/// `lda` apart, and multiplies them into `NV` vectors of the B micro-panel.
/// This saves the transposing gather that packing a row-major A costs (one
/// copy of A per `kc x nc` block of B; ~6 % of a 256-square product). `MR`
/// stays small (6) so that the row addresses fit in general registers
/// (a 14-row version of this was 2-3x slower, see docs/kernels.md), and `NV`
/// wide (4 zmm) so that each broadcast still feeds four FMAs.
///
/// Every element of C sees the same FMA chain over k as in [`simd_ukr`]'s
/// kernels, so which of the two computes a tile never changes a result.
macro_rules! simd_ukr_direct_a {
    (
        feature = $feat:literal,
        ty = $t:ty,
        nv = $nv:literal,
        lanes = $lanes:literal,
        zero = $zero:path,
        loadu = $loadu:path,
        storeu = $storeu:path,
        set1 = $set1:path,
        fmadd = $fmadd:path,
        add = $add:path,
        inner = $inner:ident,
        outer = $outer:ident,
        pf = $pf:literal,
        rows = [$($m:literal),+]
    ) => {
        /// Direct-A microkernel for a tile of exactly `M` rows (`M <= MR`).
        ///
        /// # Safety
        /// The CPU supports the enabled features; `a` points to `M` rows of
        /// `k` elements, `lda` apart; `b` to `k` rows of `NR` elements, `ldb`
        /// apart; `c` addresses an `M x n_eff` block with strides
        /// `rsc`/`csc` that is valid for reads and writes and not accessed by
        /// anyone else during the call; `1 <= n_eff <= NR`.
        #[target_feature(enable = $feat)]
        #[inline]
        unsafe fn $inner<const M: usize>(
            k: usize,
            a: *const $t,
            lda: usize,
            b: *const $t,
            ldb: usize,
            c: *mut $t,
            rsc: usize,
            csc: usize,
            n_eff: usize,
            acc_c: bool,
        ) {
            const NV: usize = $nv;
            const NR: usize = NV * $lanes;
            const PF: usize = $pf;
            let mut acc = [[$zero(); NV]; M];
            // SAFETY: by the contract above every offset below stays inside
            // the M rows of A (k elements each, lda apart), the B rows (k
            // rows of NR elements, ldb apart) or the M x n_eff block of C;
            // prefetch addresses use wrapping arithmetic and never fault.
            unsafe {
                for i in 0..M {
                    let row = c.wrapping_add(i * rsc);
                    for v in 0..NV {
                        _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(v * $lanes) as *const i8);
                    }
                }
                let mut bp = b;
                macro_rules! d_step {
                    ($p:expr) => {
                        if PF > 0 {
                            for v in 0..NV {
                                _mm_prefetch::<_MM_HINT_T0>(
                                    bp.wrapping_add(PF * ldb + v * $lanes) as *const i8,
                                );
                            }
                        }
                        let mut bv = [$zero(); NV];
                        for v in 0..NV {
                            bv[v] = $loadu(bp.add(v * $lanes));
                        }
                        for i in 0..M {
                            let ai = $set1(*a.add(i * lda + $p));
                            for v in 0..NV {
                                acc[i][v] = $fmadd(ai, bv[v], acc[i][v]);
                            }
                        }
                        bp = bp.add(ldb);
                    };
                }
                // Unrolled by two (one loop update and branch per pair: +0.5
                // to +1.2 % at 256..1024 NN); the FMAs and their order are
                // those of a plain k loop, so results do not change.
                let mut p = 0;
                while p + 2 <= k {
                    d_step!(p);
                    d_step!(p + 1);
                    p += 2;
                }
                if p < k {
                    d_step!(p);
                }
                let _ = bp; // the last step's pointer bump is not needed
                if csc == 1 && n_eff == NR {
                    for i in 0..M {
                        let cp = c.add(i * rsc);
                        for v in 0..NV {
                            let mut x = acc[i][v];
                            if acc_c {
                                x = $add($loadu(cp.add(v * $lanes)), x);
                            }
                            $storeu(cp.add(v * $lanes), x);
                        }
                    }
                } else {
                    let mut tmp = [<$t>::default(); NR];
                    for i in 0..M {
                        for v in 0..NV {
                            $storeu(tmp.as_mut_ptr().add(v * $lanes), acc[i][v]);
                        }
                        for (j, &x) in tmp[..n_eff].iter().enumerate() {
                            let cp = c.add(i * rsc + j * csc);
                            *cp = if acc_c { *cp + x } else { x };
                        }
                    }
                }
            }
        }

        /// Type-erased direct-A microkernel entry point (see
        /// [`super::UkrA`]).
        ///
        /// # Safety
        /// As for the `UkrA` contract, with `1 <= m_eff <= MR`.
        pub(super) unsafe fn $outer(
            k: usize,
            a: *const $t,
            lda: usize,
            b: *const $t,
            ldb: usize,
            c: *mut $t,
            rsc: usize,
            csc: usize,
            m_eff: usize,
            n_eff: usize,
            acc_c: bool,
        ) {
            // SAFETY: the caller upholds the microkernel contract, which is
            // forwarded unchanged; `M == m_eff` rows are addressed.
            unsafe {
                match m_eff {
                    $($m => $inner::<$m>(k, a, lda, b, ldb, c, rsc, csc, n_eff, acc_c),)+
                    _ => unreachable!("microkernel called with m_eff = {m_eff}"),
                }
            }
        }
    };
}
