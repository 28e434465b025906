//! Two independent pieces of work side by side: [`join`], and the thread
//! count heft's kernels split their work over: [`threads`].
//!
//! A backward pass often has two independent products of one op to compute
//! (`dA = dC B^T` and `dB = A^T dC` of a matrix product). Each could be
//! split over the pool in turn, but a medium product split in two gains
//! little: both threads pack the shared operand and wait for each other's
//! last chunk. [`join`] instead runs the two pieces at once, one per
//! thread, and inside each piece heft's kernels use only that piece's share
//! of the pool ([`threads`]), so the two do not split their work across
//! each other.
//!
//! ```
//! use heft_tensor::kernels::{join, threads};
//! let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
//! let (a, b) = pool.install(|| {
//!     join(1 << 24, || (1..=10u64).sum::<u64>(), || threads())
//! });
//! assert_eq!(a, 55);
//! // Inside a half of the join, kernels split over one thread at most.
//! assert_eq!(b, 1);
//! ```

use std::cell::Cell;
use std::sync::{Mutex, PoisonError};

use super::gemm::{for_each_chunk, helpers_awake};

thread_local! {
    /// The thread budget set by the [`join`] this thread is running a half
    /// of (0: none, the whole pool).
    static BUDGET: Cell<usize> = const { Cell::new(0) };
}

/// The number of threads heft's kernels, called on this thread, split
/// their work over: the current rayon pool's size
/// (`rayon::current_num_threads`), or, inside one half of a [`join`], that
/// half's share of it.
pub fn threads() -> usize {
    let pool = rayon::current_num_threads();
    match BUDGET.get() {
        0 => pool,
        b => b.min(pool),
    }
}

/// Whether this thread is running a half of a [`join`].
pub(crate) fn in_join_half() -> bool {
    BUDGET.get() != 0
}

/// Runs `f` with this thread's kernels limited to `budget` threads, then
/// restores the previous budget (also when `f` panics).
fn with_budget<R>(budget: usize, f: impl FnOnce() -> R) -> R {
    struct Restore(usize);
    impl Drop for Restore {
        fn drop(&mut self) {
            BUDGET.set(self.0);
        }
    }
    let _restore = Restore(BUDGET.replace(budget.max(1)));
    f()
}

/// Takes the piece out of `piece` (if still there), runs it with `budget`
/// threads for its kernels and stores its result in `result`.
fn run_piece<R, F: FnOnce() -> R>(
    piece: &Mutex<Option<F>>,
    result: &Mutex<Option<R>>,
    budget: usize,
) {
    let f = piece.lock().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(f) = f {
        let r = with_budget(budget, f);
        *result.lock().unwrap_or_else(PoisonError::into_inner) = Some(r);
    }
}

/// Work (multiply-adds or elements, per piece) from which [`join`] hands
/// one piece to another thread while the pool's helpers are still awake
/// after earlier threaded work: one or two microseconds of one-thread GEMM
/// work (more for elementwise pieces), several times what handing a job to
/// a spinning thread costs.
const JOIN_AWAKE_MIN: usize = 1 << 17;
/// Work from which [`join`] hands a piece over even if the helpers have to
/// be woken (the wake-up costs the caller ~8 us on the 2-vCPU machine the
/// GEMM thresholds were measured on; see `PAR_MIN_MNK` in `gemm`).
const JOIN_MIN: usize = 160 * 160 * 160;

/// Runs `a` and `b` and returns both results: at once on two threads of the
/// current rayon pool when it has more than one ([`threads`]) and `work` —
/// the work of each piece, in multiply-adds or elements — pays for handing
/// one over; otherwise `a` then `b` on the calling thread.
///
/// The calling thread runs `a` itself and hands `b` to the pool the way
/// threaded products hand out chunks ([`for_each_chunk`]): if no other
/// thread has started `b` by the time `a` is done, the caller runs it too,
/// so `b` never waits for a sleeping helper to wake. (From a thread outside
/// the pool, such as a program's `main`, the caller still waits at the end
/// for the handed-out job to be picked up and return, as with
/// [`for_each_chunk`].) Inside each piece,
/// heft's kernels split their work over half of the threads (one each on a
/// pool of two; see [`threads`]).
///
/// Which thread runs a piece never changes what it computes: heft's kernels
/// give the same bits whatever the thread count.
///
/// # Panics
/// If `a` or `b` panics, once both pieces have finished or been abandoned.
pub fn join<RA: Send, RB: Send>(
    work: usize,
    a: impl FnOnce() -> RA + Send,
    b: impl FnOnce() -> RB + Send,
) -> (RA, RB) {
    let t = threads();
    if t < 2 || !(work >= JOIN_MIN || work >= JOIN_AWAKE_MIN && helpers_awake()) {
        return (a(), b());
    }
    let (budget_a, budget_b) = (t - t / 2, t / 2);
    // Each piece is claimed once (`for_each_chunk` runs every index once),
    // so each lock is taken once, never contended: they only move the
    // closures in and the results out across threads.
    let pieces = (Mutex::new(Some(a)), Mutex::new(Some(b)));
    let results = (Mutex::new(None), Mutex::new(None));
    // Slot 0 (the caller) owns piece 0; a helper owns piece 1 and the
    // caller takes it back if no helper has started it.
    for_each_chunk(2, |i| {
        if i == 0 {
            run_piece(&pieces.0, &results.0, budget_a);
        } else {
            run_piece(&pieces.1, &results.1, budget_b);
        }
    });
    let ra = results
        .0
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    let rb = results
        .1
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    match (ra, rb) {
        (Some(ra), Some(rb)) => (ra, rb),
        // `for_each_chunk` returns only after running both indices, and a
        // panic in either propagates out of it before this line.
        _ => unreachable!("join: a piece did not run"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    }

    #[test]
    fn both_pieces_run_once_and_return_their_results() {
        let runs = AtomicUsize::new(0);
        let piece = |v: u32| {
            runs.fetch_add(1, Ordering::Relaxed);
            v
        };
        for work in [0, JOIN_AWAKE_MIN, JOIN_MIN] {
            assert_eq!(join(work, || piece(1), || piece(2)), (1, 2));
            for threads in 1..=4 {
                let r = pool(threads).install(|| join(work, || piece(3), || piece(4)));
                assert_eq!(r, (3, 4));
            }
        }
        assert_eq!(runs.load(Ordering::Relaxed), 3 * 10);
    }

    #[test]
    fn each_half_gets_its_share_of_the_pool() {
        // Small work runs in order on the caller, with the whole pool.
        let r = pool(2).install(|| join(0, threads, threads));
        assert_eq!(r, (2, 2));
        for (size, shares) in [(1, (1, 1)), (2, (1, 1)), (3, (2, 1)), (4, (2, 2))] {
            let p = pool(size);
            for _ in 0..20 {
                let r = p.install(|| join(JOIN_MIN, threads, threads));
                assert_eq!(r, shares, "pool of {size}");
                // The budget ends with the join, on every thread of the pool.
                assert!(
                    p.broadcast(|_| threads()).iter().all(|&t| t == size),
                    "pool of {size}"
                );
            }
        }
        // From outside any pool too (the global pool).
        let global = rayon::current_num_threads();
        let r = join(JOIN_MIN, threads, threads);
        let expect = if global < 2 {
            (global, global)
        } else {
            (global - global / 2, global / 2)
        };
        assert_eq!(r, expect);
        assert_eq!(threads(), global);
    }

    #[test]
    fn a_panic_in_either_piece_propagates_and_the_budget_is_restored() {
        let p = pool(2);
        for which in 0..2 {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                p.install(|| {
                    join(
                        JOIN_MIN,
                        || assert!(which != 0, "piece a"),
                        || assert!(which != 1, "piece b"),
                    )
                })
            }));
            assert!(r.is_err());
            assert_eq!(p.install(threads), 2);
        }
    }
}
