//! The threaded GEMM path for medium products: chunks of C handed out on
//! demand, so the calling thread never waits for a helper to wake up.
//!
//! The product is split along N (every chunk needs all of A) or along M
//! (every chunk needs all of B), in chunks of whole register tiles, never
//! along K. Each participating thread packs the operand all chunks need once,
//! for every K block, into its own thread-local buffer, then claims chunks
//! (its own contiguous range first, then the last ones of the others; see
//! `Claims`) and, per chunk, packs its slice of the other operand and runs
//! the microkernel. The caller starts at once; a helper that rayon wakes late
//! (the futex wake-up costs the caller ~8 us and the helper starts ~30 us
//! later on the 2-vCPU machine this was tuned on) just takes fewer chunks,
//! where the static split made the caller wait for the late helper's whole
//! half. With a row-major A read in place (`dynamic_direct_a`), a split
//! along N packs nothing whole: each chunk reads all rows of A where they
//! lie against its own B columns.
//!
//! Every element of C gets the same FMA chain over k, in the same K-block
//! order, as on one thread (the packed and the direct-A microkernels agree
//! on it), so results are bit-identical whatever the thread count, whoever
//! ran which chunk, and whichever kernel the split chose.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use smallvec::SmallVec;

use super::{pack, CPtr, DirectA, Elem, Kernel};
use crate::kernels::MatRef;

/// Keeps a counter on cache lines of its own, so threads polling it do not
/// slow down writes to whatever would otherwise share its line (the caller's
/// stack frame).
#[repr(align(128))]
struct Padded<V>(V);

/// Counts a chunk as finished when dropped — also when unwinding, so the
/// caller waiting for all chunks cannot hang on a panicking helper (the
/// panic then propagates out of the rayon scope).
struct DoneOnDrop<'a>(&'a AtomicUsize);

impl Drop for DoneOnDrop<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Release);
    }
}

/// Chunks per thread to aim for: enough that a late helper still finds work
/// and the last chunk (which the other thread may have to wait for) is
/// short, few enough to keep the per-chunk loop set-up small.
const CHUNKS_PER_THREAD: usize = 4;

/// Who computes which chunk: participant `s` (0 is the calling thread,
/// 1.. the helpers in the order they were spawned) owns the contiguous range
/// `[s * chunks / threads, (s + 1) * chunks / threads)` and takes its chunks
/// front to back; a participant whose range is used up takes the last
/// unclaimed chunk of another range (so a helper that starts late just ends
/// up with fewer chunks).
///
/// Owning a fixed range, rather than taking the next chunk from one shared
/// counter, matters twice over. Repeated products with the same shape give
/// each thread the same part of C every time, so C's lines stay in that
/// core's cache instead of moving between cores. And two threads never write
/// neighbouring chunks at the same time except where an owner and a thief
/// meet: when C's rows are not aligned to cache lines (a fresh `Vec` is
/// 16-byte aligned), a chunk boundary cuts each row's line in two, and two
/// threads storing into one line at once (false sharing) cost a 64x256x784
/// product on two threads about a fifth of its speed.
struct Claims {
    /// Per participant: (next chunk to take from the front, one past the
    /// last unclaimed chunk), packed as `front << 32 | back`.
    ranges: SmallVec<[Padded<AtomicU64>; 4]>,
}

impl Claims {
    fn new(chunks: usize, threads: usize) -> Self {
        assert!(chunks < 1 << 32, "too many chunks");
        let ranges = (0..threads)
            .map(|s| {
                let (front, back) = (s * chunks / threads, (s + 1) * chunks / threads);
                Padded(AtomicU64::new(((front as u64) << 32) | back as u64))
            })
            .collect();
        Claims { ranges }
    }

    /// The next chunk for participant `slot`, or `None` when every chunk has
    /// been claimed.
    fn claim(&self, slot: usize) -> Option<usize> {
        let n = self.ranges.len();
        let own = slot % n;
        self.take(own, true)
            .or_else(|| (1..n).find_map(|d| self.take((own + d) % n, false)))
    }

    /// Takes the front (owner) or the back (thief) chunk of range `r`.
    fn take(&self, r: usize, front: bool) -> Option<usize> {
        let cell = &self.ranges[r].0;
        let mut cur = cell.load(Ordering::Relaxed);
        loop {
            let (f, b) = (cur >> 32, cur & 0xffff_ffff);
            if f >= b {
                return None;
            }
            let (next, got) = if front {
                (((f + 1) << 32) | b, f)
            } else {
                ((f << 32) | (b - 1), b - 1)
            };
            match cell.compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Some(got as usize),
                Err(now) => cur = now,
            }
        }
    }
}

/// How a parallel product is cut up.
#[derive(Clone, Copy, Debug)]
pub(super) struct Plan {
    /// Split N (every chunk needs all of A) rather than M (all of B).
    split_n: bool,
    /// Number of chunks.
    chunks: usize,
    /// Width (split N) or height (split M) of the widest chunk; a multiple
    /// of the tile (buffers are sized for it).
    chunk: usize,
    /// Register tiles along the split dimension, and the tile's extent
    /// along it; [`Plan::range`] deals the tiles to the chunks.
    tiles: usize,
    unit: usize,
    /// Extent of the split dimension (the last tile may be partial).
    dim: usize,
    /// Participants the chunks are dealt to ([`Claims`]).
    threads: usize,
    /// Elements of the packed whole operand, over all K blocks (as if A
    /// were packed when splitting N with `direct_a`).
    pub whole_len: usize,
    /// A row-major A is read in place (the path's `DirectA` kernel): chunks
    /// are whole direct tiles, and splitting N packs no whole operand.
    direct_a: bool,
}

/// Balanced K blocks `(count, max depth)`; depends on `k` only, exactly as in
/// `gemm_packed`, so the summation order never changes.
fn k_blocks<T>(kern: &Kernel<T>, k: usize) -> (usize, usize) {
    let kb = k.div_ceil(kern.kc);
    (kb, k.div_ceil(kb))
}

/// Rows per thread from which a packed-A product may be split by rows
/// (`rows_first` in [`plan`]): eight 14-row tiles of the AVX-512 kernel,
/// where it was measured; with fewer the chunks came out uneven (128x512x256
/// TN was ~9 % slower split by rows). Counted in rows, not tiles, so the
/// narrower tiles of the AVX2 and portable kernels do not lower it.
const ROWS_FIRST_MIN_ROWS: usize = 8 * 14;

/// The plan for `m x n x k` on `threads` threads: split the larger of M and N,
/// or M when a packed A has rows enough and B is small (see `rows_first`).
///
/// Rows first was measured on the benchmark MLP's weight gradient
/// (256x784x64 TN, two threads): `mlp-step-profile 3000 2`, eight
/// interleaved rounds, 2026-11-29 20:43, step 360.0 -> 336.2 us; the
/// optimizer's update in the step 32 -> 23 us (its chunks of the gradient
/// were half written by the other core). Alone, `gemm-probe --threads 2`,
/// four rounds (GFLOP/s, slow spell): 256x784x64 TN 187 -> 196,
/// 256x512x128 TN 183 -> 204, 512x784x64 TN 194 -> 200; 256 square TN 252
/// -> 289 (three rounds, 21:10). With a row-major
/// A (read in place, and B in place when row-major) splitting N packs
/// nothing whole, and rows first was 4 % slower (256x784x64 NN and NT), so
/// those keep the larger dimension.
pub(super) fn plan<T>(
    kern: &Kernel<T>,
    (m, n, k): (usize, usize, usize),
    a_row_major: bool,
    threads: usize,
) -> Plan {
    let (mr, nr) = (kern.mr, kern.nr);
    let (kb, kc_max) = k_blocks(kern, k);
    // Rows first when A is packed anyway, M has rows enough for even
    // chunks and all of B is small: each thread then writes one contiguous
    // block of C's rows, the block that later splits of that buffer (the
    // optimizer's update, elementwise ops: contiguous ranges, the caller's
    // first) hand to the same thread, so it is still in that core's cache.
    // A weight gradient `dY^T X` is such a product.
    let rows_first = !a_row_major
        && m >= ROWS_FIRST_MIN_ROWS * threads
        && kb * kc_max * n.div_ceil(nr) * nr <= super::DYNAMIC_MAX_WHOLE;
    let split_n = n >= m && !rows_first;
    // Reading A in place: over N, each thread would pack all of A, so the
    // gather saved is per thread; over M, each row of A is gathered once in
    // all, as on one thread.
    let da = kern
        .direct_a
        .as_ref()
        .filter(|_| a_row_major && super::direct_a_pays(m, n, if split_n { threads } else { 1 }));
    let (mr, nr) = da.map_or((mr, nr), |d| (d.mr, d.nr));
    let (dim, unit, other_pad) = if split_n {
        (n, nr, m.div_ceil(mr) * mr)
    } else {
        (m, mr, n.div_ceil(nr) * nr)
    };
    let tiles = dim.div_ceil(unit);
    let chunks = (threads * CHUNKS_PER_THREAD).min(tiles);
    Plan {
        split_n,
        chunks,
        chunk: tiles.div_ceil(chunks) * unit,
        tiles,
        unit,
        dim,
        threads,
        whole_len: kb * kc_max * other_pad,
        direct_a: da.is_some(),
    }
}

impl Plan {
    /// Start and length of chunk `idx` along the split dimension.
    ///
    /// Each participant's owned range of chunks ([`Claims`]) gets the tiles
    /// of an even split (shares differ by at most one tile), and within a
    /// range the larger chunks come first: the owner takes its chunks from
    /// the front, and another thread that runs out of work takes the last
    /// one, which is then the smallest. (Chunks of a fixed
    /// `ceil(tiles / chunks)` tiles left a short last chunk and the owner of
    /// the last range less work: 256 rows in 6-row tiles made seven chunks
    /// of 36 rows and one of 4, 144 rows for the caller against 112 for the
    /// helper.)
    fn range(&self, idx: usize) -> (usize, usize) {
        let (chunks, threads) = (self.chunks, self.threads.max(1));
        // The participant whose range holds `idx`, as `Claims::new` deals.
        let s = (0..threads)
            .find(|&s| idx < (s + 1) * chunks / threads)
            .unwrap_or(threads - 1);
        let (c0, c1) = (s * chunks / threads, (s + 1) * chunks / threads);
        let (t0, t1) = (c0 * self.tiles / chunks, c1 * self.tiles / chunks);
        let (nc, nt, j) = (c1 - c0, t1 - t0, idx - c0);
        let (q, r) = (nt / nc, nt % nc);
        let start = t0 + j * q + j.min(r);
        let len = q + usize::from(j < r);
        let lo = start * self.unit;
        (lo, ((start + len) * self.unit).min(self.dim) - lo)
    }

    /// Whether the chunks are ranges of C's rows (else of its columns).
    pub(super) fn splits_rows(&self) -> bool {
        !self.split_n
    }
}

/// Work a chunk's thread runs on the chunk's own range of C (`lo`, `len`
/// along the split dimension) right before its first K block (`before`)
/// and right after its last (`after`), while that part of C is still in
/// its cache. The threaded `x W^T` route ([`super::gemm_swapped_par`])
/// moves its chunk of C in and out of the transposed scratch this way.
#[derive(Clone, Copy, Default)]
pub(super) struct Around<'a> {
    pub before: Option<&'a (dyn Fn(usize, usize) + Sync)>,
    pub after: Option<&'a (dyn Fn(usize, usize) + Sync)>,
}

impl Around<'_> {
    fn before(&self, (lo, len): (usize, usize)) {
        if let Some(f) = self.before {
            f(lo, len);
        }
    }

    fn after(&self, (lo, len): (usize, usize)) {
        if let Some(f) = self.after {
            f(lo, len);
        }
    }
}

/// `C (+)= A B` on `threads` threads following `plan` (see the module docs),
/// running `around` on each chunk.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_dynamic<T: Elem>(
    kern: &Kernel<T>,
    plan: Plan,
    a: &MatRef<'_, T>,
    b: &MatRef<'_, T>,
    c: CPtr<T>,
    (m, n, k): (usize, usize, usize),
    accumulate: bool,
    threads: usize,
    around: Around<'_>,
) {
    let (kb, kc_max) = k_blocks(kern, k);
    let Plan {
        split_n,
        chunks,
        chunk,
        whole_len,
        direct_a,
        ..
    } = plan;
    if let Some(da) = kern.direct_a.as_ref().filter(|_| direct_a) {
        dynamic_direct_a(
            kern,
            da,
            plan,
            a,
            b,
            c,
            (m, n, k),
            accumulate,
            threads,
            around,
        );
        return;
    }
    let (mr, nr) = (kern.mr, kern.nr);
    // Stride between the K blocks of the packed whole operand.
    let block = whole_len / kb;
    let direct = pack::direct_b(b, m, n, nr);
    let c_all = &c;

    // One thread's share: pack the whole operand, then compute chunks until
    // none is left. Returns at once if all chunks are already claimed.
    let run = |slot: usize, claims: &Claims, done: &AtomicUsize| {
        // Capture the whole `CPtr` (which is Sync), not its raw field.
        let c = *c_all;
        let Some(mut idx) = claims.claim(slot) else {
            return;
        };
        let (a_len, b_len) = if split_n {
            (0, if direct { nr } else { chunk } * kc_max)
        } else {
            (chunk * kc_max, 0)
        };
        T::with_whole(whole_len, |whole| {
            for pb in 0..kb {
                let p0 = pb * kc_max;
                let kc = kc_max.min(k - p0);
                let dst = &mut whole[pb * block..(pb + 1) * block];
                if split_n {
                    pack::pack_a(dst, a, 0, m, p0, kc, mr, kern.tpack, kern.cpack);
                } else {
                    pack::pack_b_for(dst, b, p0, kc, 0, n, nr, direct, kern.tpack, kern.cpack);
                }
            }
            T::with_buffers(a_len, b_len, |abuf, bbuf| {
                loop {
                    let _done = DoneOnDrop(done);
                    let (lo, len) = plan.range(idx);
                    around.before((lo, len));
                    for pb in 0..kb {
                        let p0 = pb * kc_max;
                        let kc = kc_max.min(k - p0);
                        let acc = accumulate || pb > 0;
                        let w = &whole[pb * block..(pb + 1) * block];
                        // (rows, columns, packed A, packed B, C row, C column)
                        let (rows, cols, ap, bpan, i0, j0) = if split_n {
                            pack::pack_b_for(
                                bbuf, b, p0, kc, lo, len, nr, direct, kern.tpack, kern.cpack,
                            );
                            let bpan = pack::b_panels(bbuf, b, p0, kc, lo, len, nr, direct);
                            (m, len, w, bpan, 0, lo)
                        } else {
                            pack::pack_a(abuf, a, lo, len, p0, kc, mr, kern.tpack, kern.cpack);
                            let bpan = pack::b_panels(w, b, p0, kc, 0, n, nr, direct);
                            (len, n, &abuf[..], bpan, lo, 0)
                        };
                        // As in gemm_packed: the A micro-panel stays in L1
                        // while the B micro-panels stream from L2.
                        for ir in 0..rows.div_ceil(mr) {
                            let m_eff = mr.min(rows - ir * mr);
                            let ap = ap[ir * mr * kc..].as_ptr();
                            for jr in 0..cols.div_ceil(nr) {
                                let n_eff = nr.min(cols - jr * nr);
                                let (bp, ldb) = bpan.panel(jr);
                                let ct = c
                                    .ptr
                                    .wrapping_add((i0 + ir * mr) * c.rs + (j0 + jr * nr) * c.cs);
                                // SAFETY: `kern` is for a path the CPU supports
                                // (checked in gemm_impl); `ap` points into a
                                // panel this thread packed above, holding kc*mr
                                // initialised elements; `bp` into one holding
                                // kc*nr, or (`b_panels`) at a full-width panel
                                // of the validated B view, kc rows of nr
                                // elements ldb apart; the tile
                                // (m_eff x n_eff at row i0+ir*mr, column
                                // j0+jr*nr) lies inside the validated C, in
                                // chunk `idx`, which this thread alone claimed
                                // from `claims`.
                                unsafe {
                                    (kern.ukr)(kc, ap, bp, ldb, ct, c.rs, c.cs, m_eff, n_eff, acc)
                                };
                            }
                        }
                    }
                    around.after((lo, len));
                    match claims.claim(slot) {
                        Some(i) => idx = i,
                        None => break,
                    }
                }
            });
        });
    };

    run_participants(threads, chunks, &run);
}

/// Runs `f(i)` once for every `i < chunks` on the current rayon pool's
/// threads ([`threads`](crate::kernels::threads) of them: fewer inside a
/// half of a [`join`](crate::kernels::join)), the calling thread included,
/// the way threaded products share
/// their chunks: each thread takes its own contiguous range of chunk
/// indices first, then the last unclaimed ones of the others, so a helper
/// that starts late just runs fewer, and the caller does not wait for a
/// helper to wake before work starts. (Called from outside the pool, it
/// does wait at the end for the helper jobs to be picked up and return,
/// with no chunks left for them.) Afterwards the helpers linger (spin) for
/// the next product. Which thread ran which chunk varies; what `f(i)` computes must
/// not depend on it.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// let sums: Vec<AtomicUsize> = (0..8).map(|_| AtomicUsize::new(0)).collect();
/// heft_tensor::kernels::for_each_chunk(8, |i| {
///     sums[i].fetch_add(i * 10, Ordering::Relaxed);
/// });
/// assert!(sums.iter().enumerate().all(|(i, s)| s.load(Ordering::Relaxed) == i * 10));
/// ```
pub fn for_each_chunk(chunks: usize, f: impl Fn(usize) + Sync) {
    let threads = crate::kernels::threads().min(chunks);
    if threads <= 1 {
        (0..chunks).for_each(f);
        return;
    }
    let run = |slot: usize, claims: &Claims, done: &AtomicUsize| {
        while let Some(i) = claims.claim(slot) {
            let _done = DoneOnDrop(done);
            f(i);
        }
    };
    run_participants(threads, chunks, &run);
}

/// Hands out `chunks` chunks (`Claims`, one owned range per participant)
/// and runs `run(slot, claims, done)` on the caller (slot 0) and on
/// `threads - 1` spawned helpers (slots 1.. in spawn order); each call
/// claims chunks and counts the finished ones in `done`. Returns once all
/// are done, then lets the helpers linger for the next product.
fn run_participants(
    threads: usize,
    chunks: usize,
    run: &(dyn Fn(usize, &Claims, &AtomicUsize) + Sync),
) {
    let claims = Claims::new(chunks, threads);
    let done = Padded(AtomicUsize::new(0));
    let (claims, done) = (&claims, &done.0);
    rayon::in_place_scope(|scope| {
        for slot in 1..threads {
            scope.spawn(move |_| run(slot, claims, done));
        }
        run(0, claims, done);
        // A helper may still be on its last chunk. Spin rather than block in
        // the scope: going to sleep and being woken again costs tens of
        // microseconds here, a chunk less. A long wait (a `join` piece, a
        // descheduled helper) falls back to the scope's own wait after
        // `SPIN_MAX_NS` rather than burn the core.
        let start = now_ns();
        let mut spins = 0u32;
        while done.load(Ordering::Acquire) < chunks {
            std::hint::spin_loop();
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(256) && now_ns().saturating_sub(start) > SPIN_MAX_NS {
                break;
            }
        }
    });
    // Inside a half of a `join` the other half's thread is busy, not
    // waiting for work: no linger from there (on a pool of three or more,
    // a linger copy could land in the other half's queue and stall it).
    if threads > 1 && !crate::kernels::join::in_join_half() {
        linger(threads);
    }
}

/// Longest the caller of a split spins for the other threads' last chunks
/// before it waits in the rayon scope instead (which may sleep).
const SPIN_MAX_NS: u64 = 200_000;

/// [`gemm_dynamic`] with a row-major A read in place (the direct-A kernel).
/// Split over N, each chunk is a range of columns over all rows of A, and
/// only the chunk's B block is packed (or read in place): no thread packs
/// the whole of A. Split over M, each thread packs the whole B once, as in
/// [`gemm_dynamic`], and each chunk is a range of rows read in place.
#[allow(clippy::too_many_arguments)]
fn dynamic_direct_a<T: Elem>(
    kern: &Kernel<T>,
    da: &DirectA<T>,
    plan: Plan,
    a: &MatRef<'_, T>,
    b: &MatRef<'_, T>,
    c: CPtr<T>,
    (m, n, k): (usize, usize, usize),
    accumulate: bool,
    threads: usize,
    around: Around<'_>,
) {
    let nr = da.nr;
    let (kb, kc_max) = k_blocks(kern, k);
    let Plan {
        split_n,
        chunks,
        chunk,
        whole_len,
        ..
    } = plan;
    let direct = pack::direct_b_for_direct_a(b, m, n, nr);
    let c_all = &c;

    let run = |slot: usize, claims: &Claims, done: &AtomicUsize| {
        let c = *c_all;
        let Some(mut idx) = claims.claim(slot) else {
            return;
        };
        if split_n {
            let b_len = if direct { nr } else { chunk } * kc_max;
            T::with_buffers(0, b_len, |_, bbuf| loop {
                let _done = DoneOnDrop(done);
                let (lo, len) = plan.range(idx);
                around.before((lo, len));
                for pb in 0..kb {
                    let p0 = pb * kc_max;
                    let kc = kc_max.min(k - p0);
                    let acc = accumulate || pb > 0;
                    pack::pack_b_for(bbuf, b, p0, kc, lo, len, nr, direct, kern.tpack, kern.cpack);
                    let bpan = pack::b_panels(bbuf, b, p0, kc, lo, len, nr, direct);
                    // SAFETY: `kern` is for a path the CPU supports (checked
                    // in gemm_impl); A is validated and row-major (a.cs ==
                    // 1, checked by `plan`); `bpan` holds the panels of B
                    // block (p0, lo) just prepared; the tiles lie in chunk
                    // `idx` of the validated C, which this thread alone
                    // claimed from `claims`.
                    unsafe { super::direct_a_tiles(da, a, &bpan, c, m, p0, kc, lo, len, acc) };
                }
                around.after((lo, len));
                match claims.claim(slot) {
                    Some(i) => idx = i,
                    None => break,
                }
            });
        } else {
            let block = whole_len / kb;
            T::with_whole(whole_len, |whole| {
                for pb in 0..kb {
                    let p0 = pb * kc_max;
                    let kc = kc_max.min(k - p0);
                    let dst = &mut whole[pb * block..(pb + 1) * block];
                    pack::pack_b_for(dst, b, p0, kc, 0, n, nr, direct, kern.tpack, kern.cpack);
                }
                loop {
                    let _done = DoneOnDrop(done);
                    let (lo, len) = plan.range(idx);
                    around.before((lo, len));
                    let rows = super::row_range(a, lo, len);
                    let c_rows = c.at(lo, 0);
                    for pb in 0..kb {
                        let p0 = pb * kc_max;
                        let kc = kc_max.min(k - p0);
                        let acc = accumulate || pb > 0;
                        let w = &whole[pb * block..(pb + 1) * block];
                        let bpan = pack::b_panels(w, b, p0, kc, 0, n, nr, direct);
                        // SAFETY: as above, with `rows` the validated
                        // row-major A's rows lo .. lo + len, `bpan` the
                        // panels of B block p0 this thread packed, and the
                        // tiles in rows lo .. lo + len of C: chunk `idx`.
                        unsafe {
                            super::direct_a_tiles(da, &rows, &bpan, c_rows, len, p0, kc, 0, n, acc)
                        };
                    }
                    around.after((lo, len));
                    match claims.claim(slot) {
                        Some(i) => idx = i,
                        None => break,
                    }
                }
            });
        }
    };

    run_participants(threads, chunks, &run);
}

/// How long helpers stay awake after the last threaded product, by default
/// (us); `HEFT_SPIN_US` overrides it (0 turns lingering off).
///
/// A training step runs threaded products a few hundred microseconds apart,
/// with single-threaded ops between them. A rayon worker with nothing to do
/// soon sleeps, and waking it costs more on the 2-vCPU virtual machine than
/// its share of the next product: profiled, the helper ran 8% of a step's
/// microkernel work and started each product ~30 us late. So after each
/// threaded product (and any other work split by [`for_each_chunk`]: large
/// elementwise ops, reductions, the optimizer's update) the other threads
/// spin for this long, running any rayon work that appears (the next
/// product's chunks). OpenMP runtimes do the
/// same, for longer (`GOMP_SPINCOUNT`, `OMP_WAIT_POLICY`).
const LINGER_US_DEFAULT: u64 = 1000;

/// The linger time in ns, read from `HEFT_SPIN_US` once.
fn linger_ns() -> u64 {
    static NS: OnceLock<u64> = OnceLock::new();
    *NS.get_or_init(|| {
        std::env::var("HEFT_SPIN_US")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(LINGER_US_DEFAULT)
            .saturating_mul(1000)
    })
}

/// Tells the threads spinning after the latest threaded product (by
/// default for 1 ms; `HEFT_SPIN_US` sets the time) to stop now instead of at
/// their deadline; each
/// stops within one spin iteration. A later threaded product starts a new
/// linger.
///
/// Call it before handing the cores to work outside the rayon pool (another
/// library's threads, another process) right after heft's products, so heft's
/// helpers do not compete with it for the cores: the GEMM benchmarks call it
/// after every heft run, before timing the other engines.
pub fn stop_lingering() {
    LINGER.stop();
}

/// Whether helpers are still spinning after an earlier threaded product, so
/// a product starting now gets a helper without waking one.
pub(crate) fn helpers_awake() -> bool {
    LINGER.others_spinning(LINGER.lingerers.load(Ordering::Relaxed))
}

/// When the latest medium product started (ns since [`epoch`], 0: none);
/// see [`medium_product_repeats`].
static LAST_MEDIUM_NS: AtomicU64 = AtomicU64::new(0);

/// Records that a medium product (too small to wake a sleeping helper for
/// on its own) starts now, and returns whether another one started within
/// the linger time before it: products in a loop (a benchmark, a training
/// loop without larger products) then go parallel from the second one on,
/// and the linger after it keeps the helpers awake for the rest, while a
/// one-off medium product stays on the calling thread. Without this, a
/// loop of medium products never woke the helpers at all.
pub(super) fn medium_product_repeats() -> bool {
    let now = now_ns().max(1);
    let last = LAST_MEDIUM_NS.swap(now, Ordering::Relaxed);
    last != 0 && now - last.min(now) < linger_ns()
}

thread_local! {
    /// Set while this thread runs a linger loop, also while that loop runs
    /// a job it picked up (`rayon::yield_now`): its copy of the broadcast is
    /// then counted in `Linger::lingerers` but is not spinning.
    static IN_LINGER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks this thread as inside a linger loop while alive (`IN_LINGER`).
struct InLinger;

impl InLinger {
    fn enter() -> Self {
        IN_LINGER.set(true);
        InLinger
    }
}

impl Drop for InLinger {
    fn drop(&mut self) {
        IN_LINGER.set(false);
    }
}

/// The process-wide linger state.
static LINGER: Linger = Linger::new();

/// Lingering state: when the last threaded product finished, how many
/// copies of the linger broadcast are still running, and a stop count.
pub(super) struct Linger {
    /// When a threaded product last finished, in ns since [`epoch`].
    last_ns: AtomicU64,
    /// Copies of the linger broadcast not yet finished (0: none in flight).
    lingerers: AtomicUsize,
    /// Bumped by [`Linger::stop`]; a broadcast ends when it changes.
    stops: AtomicU64,
}

impl Linger {
    const fn new() -> Self {
        Linger {
            last_ns: AtomicU64::new(0),
            lingerers: AtomicUsize::new(0),
            stops: AtomicU64::new(0),
        }
    }

    /// Ends the running broadcast (if any) at its helpers' next spin.
    fn stop(&self) {
        self.stops.fetch_add(1, Ordering::AcqRel);
    }

    /// Copies of the broadcast still running.
    #[cfg(test)]
    fn running(&self) -> usize {
        self.lingerers.load(Ordering::Acquire)
    }

    /// Whether copies of a broadcast other than this thread's own are
    /// running, given `running` copies in all. This thread's own copy is
    /// one of them when the current work was picked up by its linger loop:
    /// a job installed into the pool from outside (criterion's samples, a
    /// training loop calling `pool.install` per step) lands on whichever
    /// thread is free, often the lingering one, which then runs it nested
    /// inside its loop.
    fn others_spinning(&self, running: usize) -> bool {
        running > usize::from(IN_LINGER.get())
    }

    /// Keeps the other threads of the current rayon pool spinning until
    /// `linger` ns after the latest call (or a [`Linger::stop`]).
    fn start(&'static self, threads: usize, linger: u64) {
        if linger == 0 {
            return;
        }
        self.last_ns.store(now_ns(), Ordering::Relaxed);
        let running = self.lingerers.load(Ordering::Acquire);
        // One broadcast copy per pool thread, each of which counts itself
        // off: count the pool's threads, not the product's participants
        // (fewer on a large pool, and the count would wrap).
        let copies = rayon::current_num_threads();
        if self.others_spinning(running)
            || self
                .lingerers
                .compare_exchange(
                    running,
                    running + copies,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            return; // helpers are already spinning; they see the new deadline
        }
        self.broadcast(rayon::current_thread_index(), threads, linger);
    }

    /// The spinning part of [`Linger::start`], for a product started by the
    /// pool's thread `origin` (`None`: by a thread outside the pool).
    fn broadcast(&'static self, origin: Option<usize>, threads: usize, linger: u64) {
        let stops = self.stops.load(Ordering::Acquire);
        rayon::spawn_broadcast(move |ctx| {
            // A caller outside the pool (`origin` None) was itself one of the
            // `threads` participants: only `threads - 1` workers linger, so
            // spinning threads never outnumber the pool's threads.
            // A thread already in a linger loop (this copy was picked up by
            // it) goes back to that loop, which sees the new deadline.
            // A thread running a half of a `join` (this copy was picked up
            // while it waited) goes back to its half at once.
            let lingers = match origin {
                Some(o) => ctx.index() != o,
                None => ctx.index() + 1 < threads,
            } && !IN_LINGER.get()
                && !crate::kernels::join::in_join_half();
            if lingers {
                let _in_linger = InLinger::enter();
                while self.stops.load(Ordering::Relaxed) == stops
                    && now_ns().saturating_sub(self.last_ns.load(Ordering::Relaxed)) < linger
                {
                    // Run whatever the pool has queued (the next product's
                    // helper job), else spin.
                    if rayon::yield_now() != Some(rayon::Yield::Executed) {
                        std::hint::spin_loop();
                    }
                }
            }
            self.lingerers.fetch_sub(1, Ordering::AcqRel);
        });
    }
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ns() -> u64 {
    epoch().elapsed().as_nanos() as u64
}

/// Keeps the other threads of the current rayon pool awake for
/// [`linger_ns`] after the latest threaded product (see
/// [`LINGER_US_DEFAULT`]). It only
/// changes who runs which chunk of later products, never what a chunk
/// computes.
///
/// A broadcast, not a `spawn`: a spawned job lands in this thread's own
/// queue, where this thread (about to do single-threaded work) would often
/// pop it before a sleeping helper could steal it, and the helper would
/// never wake. A broadcast reaches every thread; this thread's copy returns
/// at once.
fn linger(threads: usize) {
    LINGER.start(threads, linger_ns());
}

#[cfg(test)]
mod tests {
    use super::super::testing::{gemm_f32_dynamic, gemm_f64_dynamic};
    use super::super::{gemm_reference, supported_paths, KernelPath};
    use crate::kernels::{MatMut, MatRef};

    /// Deterministic values in [-1, 1).
    fn fill(len: usize, seed: u64) -> Vec<f64> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
            })
            .collect()
    }

    /// Runs the dynamic path for `m x n x k` with A transposed or not and B
    /// transposed or not, on `threads` threads, accumulating into a non-zero
    /// C with a padded row stride; returns C.
    fn run<T: Copy + Default + Send + Sync>(
        threads: usize,
        path: KernelPath,
        (m, n, k): (usize, usize, usize),
        (ta, tb): (bool, bool),
        conv: fn(f64) -> T,
        gemm: fn(KernelPath, MatRef<'_, T>, MatRef<'_, T>, MatMut<'_, T>, bool),
    ) -> Vec<T> {
        let a: Vec<T> = fill(m * k, 1).into_iter().map(conv).collect();
        let b: Vec<T> = fill(k * n, 2).into_iter().map(conv).collect();
        let ldc = n + 3;
        let mut c: Vec<T> = fill(m * ldc, 3).into_iter().map(conv).collect();
        let (ars, acs) = if ta { (1, m) } else { (k, 1) };
        let (brs, bcs) = if tb { (1, k) } else { (n, 1) };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            gemm(
                path,
                MatRef {
                    data: &a,
                    offset: 0,
                    rows: m,
                    cols: k,
                    rs: ars,
                    cs: acs,
                },
                MatRef {
                    data: &b,
                    offset: 0,
                    rows: k,
                    cols: n,
                    rs: brs,
                    cs: bcs,
                },
                MatMut {
                    data: &mut c,
                    offset: 0,
                    rows: m,
                    cols: n,
                    rs: ldc,
                    cs: 1,
                },
                true,
            )
        });
        c
    }

    /// The same product through the reference loop, in f64.
    fn reference((m, n, k): (usize, usize, usize), (ta, tb): (bool, bool)) -> Vec<f64> {
        let a = fill(m * k, 1);
        let b = fill(k * n, 2);
        let ldc = n + 3;
        let mut c = fill(m * ldc, 3);
        let (ars, acs) = if ta { (1, m) } else { (k, 1) };
        let (brs, bcs) = if tb { (1, k) } else { (n, 1) };
        gemm_reference(
            MatRef {
                data: &a,
                offset: 0,
                rows: m,
                cols: k,
                rs: ars,
                cs: acs,
            },
            MatRef {
                data: &b,
                offset: 0,
                rows: k,
                cols: n,
                rs: brs,
                cs: bcs,
            },
            MatMut {
                data: &mut c,
                offset: 0,
                rows: m,
                cols: n,
                rs: ldc,
                cs: 1,
            },
            true,
        );
        c
    }

    // Odd sizes: split along N and along M, one K block and several
    // (uneven) ones, fewer tiles than the chunk target, edge tiles everywhere.
    const SHAPES: [(usize, usize, usize); 8] = [
        (5, 37, 3),
        (19, 70, 300),
        (71, 33, 9),
        (45, 101, 517),
        (130, 17, 260),
        (3, 3, 1),
        (230, 260, 40),
        (340, 350, 30),
    ];
    const LAYOUTS: [(bool, bool); 3] = [(false, false), (true, false), (false, true)];

    /// Waits up to 10 s (a loaded test machine) until the number of
    /// broadcast copies running on `l` satisfies `ok`.
    fn wait_for(l: &super::Linger, ok: impl Fn(usize) -> bool, what: &str) {
        let start = std::time::Instant::now();
        while !ok(l.running()) {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(10),
                "{what}: {} running",
                l.running()
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// A linger state of the test's own (other tests' products use the
    /// process-wide one) and a pool of `threads` threads.
    fn own_linger(threads: usize) -> (&'static super::Linger, rayon::ThreadPool) {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        (Box::leak(Box::new(super::Linger::new())), pool)
    }

    /// Waits up to 10 s for `l` to have no broadcast running.
    fn wait_idle(l: &super::Linger, what: &str) {
        wait_for(l, |r| r == 0, what);
    }

    #[test]
    fn stop_ends_a_long_linger_at_once() {
        // A 60 s linger on a state of its own (other tests' products use
        // the process-wide one), stopped: its helpers must be gone long
        // before the deadline (10 s allows for a loaded test machine).
        let (l, pool) = own_linger(2);
        pool.install(|| l.start(2, 60_000_000_000));
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(l.running() >= 1, "the helper should still be spinning");
        l.stop();
        wait_idle(l, "stop did not end the linger");
        // A stop does not prevent the next linger.
        pool.install(|| l.start(2, 1_000_000));
        wait_idle(l, "a 1 ms linger did not end");
    }

    #[test]
    fn a_caller_outside_the_pool_leaves_one_worker_asleep() {
        // The caller outside a 3-thread pool was one of the 3 participants:
        // only 2 workers may linger (3 would leave 4 threads spinning for
        // 3 cores). Inside the pool, the 2 workers other than the caller do.
        let (l, pool) = own_linger(3);
        for (origin, lingering) in [(None, 2), (Some(1), 2)] {
            l.lingerers.store(3, std::sync::atomic::Ordering::Release);
            pool.install(|| l.broadcast(origin, 3, 60_000_000_000));
            wait_for(l, |r| r <= lingering, "the caller's copy did not return");
            std::thread::sleep(std::time::Duration::from_millis(20));
            assert_eq!(l.running(), lingering, "origin {origin:?}");
            l.stop();
            wait_idle(l, "stop did not end the linger");
        }
    }

    #[test]
    fn a_product_run_inside_a_linger_loop_keeps_the_others_spinning() {
        // A job installed into the pool while a helper lingers is often
        // picked up by that helper's loop and run nested in it; a product
        // in that job must still leave the other thread spinning (it once
        // found its own suspended copy counted as "already spinning", and
        // under criterion, which installs each sample, the helper slept
        // through every product after the first sample).
        let (l, pool) = own_linger(2);
        pool.install(|| l.start(2, 60_000_000_000));
        wait_for(l, |r| r == 1, "the caller's copy did not return");
        // The spinning thread runs its copy of this broadcast inside its
        // linger loop, and starts a linger there, as a product would.
        let nested = pool.broadcast(|_| {
            let inside = super::IN_LINGER.get();
            if inside {
                l.start(2, 60_000_000_000);
            }
            inside
        });
        assert_eq!(nested.iter().filter(|&&n| n).count(), 1, "{nested:?}");
        // Its own loop resumed, and the other thread spins now too (without
        // a new broadcast the count stays at 1).
        wait_for(l, |r| r == 2, "the other thread does not linger");
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(l.running(), 2);
        l.stop();
        wait_idle(l, "stop did not end the linger");
    }

    #[test]
    fn for_each_chunk_runs_every_chunk_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        // Inside pools of 1 to 3 threads and from this test thread (outside
        // any pool, on the global one), with fewer, as many and more chunks
        // than threads: every index exactly once, no other.
        for chunks in [0, 1, 2, 3, 7, 64] {
            let check = |where_: &str| {
                let counts: Vec<AtomicUsize> = (0..chunks).map(|_| AtomicUsize::new(0)).collect();
                super::for_each_chunk(chunks, |i| {
                    counts[i].fetch_add(1, Ordering::Relaxed);
                });
                let got: Vec<usize> = counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
                assert_eq!(got, vec![1; chunks], "{where_}, {chunks} chunks");
            };
            for threads in 1..=3 {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                pool.install(|| check(&format!("{threads} threads")));
            }
            check("outside the pool");
        }
    }

    #[test]
    fn a_split_over_fewer_threads_than_the_pool_leaves_the_linger_count_whole() {
        // Two chunks on a pool of four: two participants, but one broadcast
        // copy per pool thread, each counting itself off. The count must
        // come back to zero (it once wrapped below it, and helpers never
        // lingered again).
        let (l, pool) = own_linger(4);
        for _ in 0..5 {
            pool.install(|| l.start(2, 1_000_000));
            wait_idle(l, "a 1 ms linger did not end");
        }
    }

    #[test]
    fn a_medium_product_right_after_another_counts_as_repeated() {
        // The first of a loop may or may not follow another test's; the
        // second always follows the first within the linger time.
        super::medium_product_repeats();
        assert!(super::medium_product_repeats());
    }

    #[test]
    fn lingering_helpers_stop_after_the_deadline() {
        // Threaded products leave the pool's other threads spinning for
        // `linger_ns`; they must stop by themselves, and a pool dropped
        // while they spin must not hang. On a state of its own: a 2 ms
        // linger, started twice (the second call extends the first).
        let l: &'static super::Linger = Box::leak(Box::new(super::Linger::new()));
        for threads in [2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                l.start(threads, 2_000_000);
                l.start(threads, 2_000_000);
            });
        }
        wait_idle(l, "lingering helpers did not stop");
        // The products themselves linger on the process-wide state and give
        // the same bits with and without helpers.
        let path = *supported_paths().last().unwrap();
        let shape = (45, 101, 517);
        let want = run(1, path, shape, LAYOUTS[0], |x| x, gemm_f64_dynamic);
        for threads in [2, 3] {
            assert_eq!(
                run(threads, path, shape, LAYOUTS[0], |x| x, gemm_f64_dynamic),
                want
            );
        }
    }

    #[test]
    fn claims_hand_out_every_chunk_once_owners_first() {
        use super::Claims;
        use std::sync::atomic::{AtomicUsize, Ordering};
        // Owners take their own range front to back.
        let c = Claims::new(8, 2);
        assert_eq!(c.claim(0), Some(0));
        assert_eq!(c.claim(1), Some(4));
        assert_eq!(c.claim(0), Some(1));
        // A participant with its range used up takes the back of another.
        let c = Claims::new(7, 2);
        let mine: Vec<_> = (0..3).map(|_| c.claim(0).unwrap()).collect();
        assert_eq!(mine, [0, 1, 2]);
        assert_eq!(c.claim(0), Some(6));
        assert_eq!(c.claim(1), Some(3));
        assert_eq!(c.claim(0), Some(5));
        assert_eq!(c.claim(1), Some(4));
        assert_eq!(c.claim(0), None);
        assert_eq!(c.claim(1), None);
        // Any interleaving of any participants claims each chunk exactly once.
        for threads in 1..5 {
            for chunks in 0..30 {
                let c = Claims::new(chunks, threads);
                let mut seen = vec![0u8; chunks];
                let mut order = (0..).map(|i: usize| (i * 7 + i / 3) % threads);
                let mut idle = 0;
                while idle < threads {
                    match c.claim(order.next().unwrap()) {
                        Some(i) => {
                            seen[i] += 1;
                            idle = 0;
                        }
                        None => idle += 1,
                    }
                }
                assert!(
                    seen.iter().all(|&x| x == 1),
                    "{threads}t {chunks}: {seen:?}"
                );
            }
        }
        // Concurrently, too.
        let c = Claims::new(1000, 3);
        let counts: Vec<AtomicUsize> = (0..1000).map(|_| AtomicUsize::new(0)).collect();
        std::thread::scope(|s| {
            for slot in 0..3 {
                let (c, counts) = (&c, &counts);
                s.spawn(move || {
                    while let Some(i) = c.claim(slot) {
                        counts[i].fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        assert!(counts.iter().all(|x| x.load(Ordering::Relaxed) == 1));
    }

    #[test]
    fn chunks_cover_the_split_evenly_smallest_last() {
        // Every plan's chunks tile the split dimension front to back; each
        // participant's owned range (as `Claims` deals them) holds the same
        // number of tiles give or take one, and its chunks shrink (or stay)
        // towards its back, where another thread steals.
        use super::super::Elem;
        for path in supported_paths() {
            let kern = f32::kernel(path);
            for (m, n, k) in [
                (256, 64, 784),
                (784, 256, 64),
                (256, 784, 64),
                (300, 200, 400),
                (64, 256, 784),
                (64, 784, 256),
                (128, 256, 64),
                (17, 5, 3),
                (1000, 7, 10),
            ] {
                for row_major in [false, true] {
                    for threads in 1..=4 {
                        let p = super::plan(kern, (m, n, k), row_major, threads);
                        let ctx = format!("{path:?} {m}x{n}x{k} {row_major} {threads}: {p:?}");
                        let mut next = 0;
                        let mut shares = vec![0usize; threads];
                        for s in 0..threads {
                            let own = s * p.chunks / threads..(s + 1) * p.chunks / threads;
                            let mut prev = usize::MAX;
                            for idx in own {
                                let (lo, len) = p.range(idx);
                                assert_eq!(lo, next, "{ctx}: chunk {idx}");
                                assert!(len >= 1 && len <= p.chunk, "{ctx}: chunk {idx}");
                                let tiles = len.div_ceil(p.unit);
                                assert!(tiles <= prev, "{ctx}: chunk {idx} grows");
                                prev = tiles;
                                shares[s] += tiles;
                                next = lo + len;
                            }
                        }
                        assert_eq!(next, p.dim, "{ctx}");
                        assert_eq!(p.dim, if p.split_n { n } else { m }, "{ctx}");
                        let owners: Vec<usize> =
                            shares.iter().copied().filter(|&t| t > 0).collect();
                        let (lo, hi) = (owners.iter().min(), owners.iter().max());
                        assert!(hi.unwrap() - lo.unwrap() <= 1, "{ctx}: shares {shares:?}");
                    }
                }
            }
        }
        // The case that showed it (AVX-512 f32, A read in place, 6-row
        // tiles): fixed 36-row chunks gave the caller 144 rows, the helper
        // 112; now 126 and 130.
        if supported_paths().contains(&KernelPath::Avx512) {
            let p = super::plan(f32::kernel(KernelPath::Avx512), (256, 64, 784), true, 2);
            assert!(!p.split_n && p.direct_a, "{p:?}");
            let caller: usize = (0..p.chunks / 2).map(|i| p.range(i).1).sum();
            assert_eq!((caller, 256 - caller), (126, 130), "{p:?}");
        }
    }

    #[test]
    fn a_weight_gradient_is_split_by_rows() {
        // dW = dY^T X (A packed) at the benchmark MLP's first layer: rows;
        // the same shape with a row-major A, or too few rows: columns.
        use super::super::Elem;
        for path in supported_paths() {
            let kern = f32::kernel(path);
            let p = super::plan(kern, (256, 784, 64), false, 2);
            assert!(!p.split_n, "{path:?}: {p:?}");
            assert!(
                super::plan(kern, (256, 784, 64), true, 2).split_n,
                "{path:?}"
            );
            assert!(
                super::plan(kern, (16, 784, 64), false, 2).split_n,
                "{path:?}"
            );
            // 128 rows over two threads: too few, on every path; 340 over
            // three: enough.
            assert!(
                super::plan(kern, (128, 512, 256), false, 2).split_n,
                "{path:?}"
            );
            assert!(
                !super::plan(kern, (340, 350, 30), false, 3).split_n,
                "{path:?}"
            );
            // All of B too large to pack per thread: columns.
            assert!(
                super::plan(kern, (256, 4096, 512), false, 2).split_n,
                "{path:?}"
            );
        }
    }

    #[test]
    fn dynamic_path_matches_reference_and_one_thread_bits() {
        for path in supported_paths() {
            for shape in SHAPES {
                for layout in LAYOUTS {
                    let want = reference(shape, layout);
                    let one32 = run(1, path, shape, layout, |x| x as f32, gemm_f32_dynamic);
                    let one64 = run(1, path, shape, layout, |x| x, gemm_f64_dynamic);
                    for threads in [2, 3] {
                        let got32 =
                            run(threads, path, shape, layout, |x| x as f32, gemm_f32_dynamic);
                        let got64 = run(threads, path, shape, layout, |x| x, gemm_f64_dynamic);
                        let tol = 1e-5 * (shape.2 as f64 + 1.0);
                        for (i, w) in want.iter().enumerate() {
                            assert!(
                                (got32[i] as f64 - w).abs() <= tol,
                                "f32 {path:?} {shape:?} {layout:?} {threads}t: [{i}] {} vs {w}",
                                got32[i]
                            );
                            assert!(
                                (got64[i] - w).abs() <= 1e-12 * (shape.2 as f64 + 1.0),
                                "f64 {path:?} {shape:?} {layout:?} {threads}t: [{i}] {} vs {w}",
                                got64[i]
                            );
                        }
                        assert!(
                            got32
                                .iter()
                                .zip(&one32)
                                .all(|(x, y)| x.to_bits() == y.to_bits()),
                            "f32 {path:?} {shape:?} {layout:?}: {threads} threads differ from 1"
                        );
                        assert!(
                            got64
                                .iter()
                                .zip(&one64)
                                .all(|(x, y)| x.to_bits() == y.to_bits()),
                            "f64 {path:?} {shape:?} {layout:?}: {threads} threads differ from 1"
                        );
                    }
                }
            }
        }
    }
}
