//! Elementwise work split over the pool the way threaded products are
//! ([`for_each_chunk`]): the calling thread works on the chunks itself
//! rather than waiting for the pool to do them, which matters most on a
//! thread outside the pool (a program's `main`), where a rayon parallel
//! iterator parks the caller until the pool's threads have done all the
//! work. (Such a caller still waits at the end for the helper jobs to
//! return, which is short when there is nothing left for them.) As after
//! a threaded product, the other threads then linger (spin) for a while.
//!
//! [`collect_chunks`] builds a fresh output without first zero-filling it:
//! each chunk is written once, front to back, through [`Out`]. A zeroed
//! output costs a pass over memory, and when another thread then writes
//! the chunk, every cache line the zeroing left in the caller's cache must
//! move across: a 64K-element map took 20 us that way against 5 us
//! written once (two threads, a throw-away probe, 2026-11-29; the
//! `elementwise` bench's figures are in docs/kernels.md).

use super::gemm::for_each_chunk;
use std::mem::MaybeUninit;
use std::ops::Range;
use std::sync::{Mutex, PoisonError};

/// Runs `f(i, chunk)` for every chunk of `chunk_len` elements of `out` (the
/// last one may be shorter), chunk `i` starting at `i * chunk_len`, on the
/// pool's threads and the caller ([`for_each_chunk`]).
pub(crate) fn for_each_chunk_mut<T: Send>(
    out: &mut [T],
    chunk_len: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    let chunk_len = chunk_len.max(1);
    if out.len() <= chunk_len || super::threads() == 1 {
        for (i, c) in out.chunks_mut(chunk_len).enumerate() {
            f(i, c);
        }
        return;
    }
    // Each chunk is run exactly once, so each lock is taken once, never
    // contended; it hands a disjoint `&mut` to whichever thread runs it.
    let parts: Vec<Mutex<&mut [T]>> = out.chunks_mut(chunk_len).map(Mutex::new).collect();
    for_each_chunk(parts.len(), |i| {
        let mut part = parts[i].lock().unwrap_or_else(PoisonError::into_inner);
        f(i, &mut part);
    });
}

/// The part of an output under construction that one chunk writes, front
/// to back; see [`collect_chunks`].
pub(crate) struct Out<'a, T> {
    slots: &'a mut [MaybeUninit<T>],
    written: usize,
}

impl<T> Out<'_, T> {
    /// Appends the items of `items`, as many as there is room for.
    #[inline(always)]
    pub(crate) fn extend(&mut self, items: impl IntoIterator<Item = T>) {
        let rest = &mut self.slots[self.written..];
        let mut k = 0;
        for (slot, v) in rest.iter_mut().zip(items) {
            slot.write(v);
            k += 1;
        }
        self.written += k;
    }
}

impl<T: Copy> Out<'_, T> {
    /// Appends `rows` rows of `len` elements, element `(b, j)` being
    /// `src[base + b * rs + j * cs]`: what `extend`ing row after row would
    /// write, but 16 x 16 tiles at a time, each read source-row by
    /// source-row into a small stack tile and written out row by row. In a
    /// transposed copy (`rs` small, `cs` large) a row-by-row walk touches a
    /// new cache line for every element, and with a power-of-two `cs`
    /// those lines compete for a few L1 sets; the tile uses each line whole.
    ///
    /// # Panics
    /// If there is no room for `rows * len` elements or an index is out of
    /// `src` (a bug in the caller, never input dependent).
    pub(crate) fn extend_tiled(
        &mut self,
        src: &[T],
        base: usize,
        (rows, len): (usize, usize),
        (rs, cs): (usize, usize),
    ) {
        const TB: usize = 16;
        let total = rows * len;
        let slots = &mut self.slots[self.written..self.written + total];
        if total == 0 {
            return;
        }
        let mut tile = [[src[base]; TB]; TB];
        for b0 in (0..rows).step_by(TB) {
            let nb = TB.min(rows - b0);
            for j0 in (0..len).step_by(TB) {
                let nj = TB.min(len - j0);
                // `tile[j][b]`: element (b0 + b, j0 + j), read along b.
                for (j, t) in tile.iter_mut().enumerate().take(nj) {
                    let o = base + b0 * rs + (j0 + j) * cs;
                    if rs == 1 {
                        t[..nb].copy_from_slice(&src[o..o + nb]);
                    } else {
                        for (b, v) in t.iter_mut().enumerate().take(nb) {
                            *v = src[o + b * rs];
                        }
                    }
                }
                for b in 0..nb {
                    let row = &mut slots[(b0 + b) * len + j0..][..nj];
                    for (slot, t) in row.iter_mut().zip(&tile) {
                        slot.write(t[b]);
                    }
                }
            }
        }
        // Every slot of the `total` was written above: rows `b0 .. b0 + nb`
        // and columns `j0 .. j0 + nj` of each tile cover them all.
        self.written += total;
    }
}

/// Builds a vector of `n` elements in chunks of `chunk_len`: `f(range, out)`
/// must [`Out::extend`] `out` with the elements at `range`, in order. With
/// `parallel` the chunks are spread over the pool ([`for_each_chunk_mut`]),
/// otherwise they run in order on the caller.
///
/// # Panics
/// If a chunk leaves elements unwritten (a bug in `f`, never input
/// dependent), or if `f` panics.
pub(crate) fn collect_chunks<T: Send>(
    n: usize,
    chunk_len: usize,
    parallel: bool,
    f: impl Fn(Range<usize>, &mut Out<'_, T>) + Sync,
) -> Vec<T> {
    let chunk_len = chunk_len.max(1);
    let mut v = Vec::with_capacity(n);
    let run = |i: usize, slots: &mut [MaybeUninit<T>]| {
        let start = i * chunk_len;
        let len = slots.len();
        let mut out = Out { slots, written: 0 };
        f(start..start + len, &mut out);
        assert_eq!(out.written, len, "collect_chunks: a chunk was not filled");
    };
    let slots = &mut v.spare_capacity_mut()[..n];
    if parallel {
        for_each_chunk_mut(slots, chunk_len, run);
    } else {
        for (i, c) in slots.chunks_mut(chunk_len).enumerate() {
            run(i, c);
        }
    }
    // SAFETY: the first `n` slots are initialised: every chunk of them ran
    // (`for_each_chunk` runs each once and returns after all have finished;
    // a panic in any of them propagates before this line) and `run` checked
    // that its `Out` wrote all of its slots, and `Out` writes front to back
    // without gaps.
    unsafe { v.set_len(n) };
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pools(run: impl Fn() + Sync) {
        run(); // outside any pool (the global pool)
        for threads in 1..=3 {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(&run);
        }
    }

    #[test]
    fn collect_chunks_writes_every_element_in_place() {
        pools(|| {
            for n in [0, 1, 7, 64, 1000, 4097] {
                for chunk in [1, 3, 64, 5000] {
                    for parallel in [false, true] {
                        let v = collect_chunks(n, chunk, parallel, |r, out| {
                            out.extend(r.map(|i| i * 3 + 1))
                        });
                        let want: Vec<usize> = (0..n).map(|i| i * 3 + 1).collect();
                        assert_eq!(v, want, "n {n} chunk {chunk} parallel {parallel}");
                    }
                }
            }
        });
    }

    #[test]
    fn collect_chunks_extends_in_pieces() {
        // Rows of 3 written one `extend` at a time, as the strided fill does.
        let v = collect_chunks(12, 6, true, |r, out| {
            for row in r.step_by(3) {
                out.extend(row..row + 3);
            }
            out.extend([99]); // no room left: ignored
        });
        assert_eq!(v, (0..12).collect::<Vec<_>>());
    }

    #[test]
    fn extend_tiled_matches_extending_row_by_row() {
        let src: Vec<u32> = (0..5000).collect();
        for (rows, len) in [(1, 1), (3, 40), (16, 16), (17, 33), (40, 3), (0, 5)] {
            for (rs, cs) in [(1, 41), (2, 100), (41, 1), (0, 7)] {
                let base = 3;
                let src = &src;
                let want: Vec<u32> = (0..rows)
                    .flat_map(|b| (0..len).map(move |j| src[base + b * rs + j * cs]))
                    .collect();
                let src = &src[..];
                let got = collect_chunks(rows * len + 2, usize::MAX, false, |_, out| {
                    out.extend([7]);
                    out.extend_tiled(src, base, (rows, len), (rs, cs));
                    out.extend([8]);
                });
                assert_eq!(
                    &got[1..got.len() - 1],
                    &want[..],
                    "{rows}x{len} ({rs}, {cs})"
                );
                assert_eq!((got[0], got[got.len() - 1]), (7, 8));
            }
        }
    }

    #[test]
    #[should_panic(expected = "a chunk was not filled")]
    fn collect_chunks_rejects_a_short_chunk() {
        let _ = collect_chunks(10, 4, false, |r, out| out.extend(r.skip(1)));
    }

    #[test]
    fn for_each_chunk_mut_hands_out_disjoint_chunks() {
        pools(|| {
            for n in [0, 5, 64, 1000] {
                for chunk in [1, 7, 64, 2000] {
                    let mut v = vec![0usize; n];
                    for_each_chunk_mut(&mut v, chunk, |i, c| {
                        for (j, x) in c.iter_mut().enumerate() {
                            *x += i * chunk + j;
                        }
                    });
                    assert_eq!(v, (0..n).collect::<Vec<_>>(), "n {n} chunk {chunk}");
                }
            }
        });
    }
}
