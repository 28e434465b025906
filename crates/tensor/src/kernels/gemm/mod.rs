//! General matrix multiply: `C = A B` or `C += A B` on strided views.
//!
//! The fast path is BLIS-style:
//!
//! ```text
//! for jc in 0..n step NC            (B block KC x NC, packed, sits in L2)
//!   for pc in 0..k step KC          (pack B[pc.., jc..] once)
//!     for ic in 0..m step MC        (A block MC x KC, packed)
//!       for ir in 0..MC step MR     (A micro-panel MR x KC stays in L1)
//!         for jr in 0..NC step NR   (microkernel: MR x NR tile in registers,
//!                                    B micro-panel streamed from L2)
//! ```
//!
//! Packing reads the operands through their strides, so `A^T B` and `A B^T`
//! never materialise a transposed copy. On the SIMD paths a row-major A is
//! not packed at all when B is not much wider than A is tall
//! (`direct_a_pays`): a second microkernel (AVX-512: 6 rows x 4 vectors;
//! AVX2: 6 x 2, the packed kernel's shape) broadcasts straight from A's
//! rows, with the same FMA chain per element, so the choice never changes a
//! result. A one-thread `A B^T` with few rows and a long k (the forward
//! product of a Linear layer, `x W^T`) is computed as `C^T = B^T A^T`
//! (`swap_pays`), so that the weight is read in place instead of being
//! transposed into panels; C^T goes through a scratch that is transposed
//! into C (again the same FMA chains); on several threads, when the gather
//! saved outweighs the transposes (`swap_pays_par`), each chunk's thread
//! transposes its own part. Packing buffers are thread-local and
//! reused, so steady shapes allocate nothing. The microkernel is chosen once
//! per process ([`kernel_path`]): AVX-512F, AVX2 + FMA or portable Rust; the
//! environment variable `HEFT_KERNEL=scalar|avx2|avx512` overrides the choice.
//!
//! Large products are split over the rayon pool's threads along M or N only — never K —
//! so every element of C is summed in the same order whatever the number of
//! threads, and results are bit-identical across thread counts. Medium ones
//! (the whole operand every chunk needs packs into at most
//! `DYNAMIC_MAX_WHOLE` elements) hand out small chunks on demand so a helper
//! that wakes late never delays the caller (`par.rs`); bigger ones split
//! statically, one chunk per thread.
//!
//! Matrix-vector products (`m == 1` or `n == 1`) and tiny products skip
//! packing altogether (see `small.rs`).

use std::cell::RefCell;
use std::ops::{Add, Mul};
use std::sync::OnceLock;

use super::{MatMut, MatRef};

#[macro_use]
mod ukr_macro;
mod pack;
mod par;
pub(crate) use par::helpers_awake;
pub use par::{for_each_chunk, stop_lingering};
mod portable;
mod small;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;

/// Which implementation a GEMM call runs (chosen once per process).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KernelPath {
    /// Portable Rust code, auto-vectorised by the compiler.
    Scalar,
    /// AVX2 + FMA microkernels.
    Avx2,
    /// AVX-512F microkernels.
    Avx512,
}

impl KernelPath {
    /// Every path, slowest first.
    pub const ALL: [KernelPath; 3] = [KernelPath::Scalar, KernelPath::Avx2, KernelPath::Avx512];

    /// Short lowercase name, as accepted by `HEFT_KERNEL`.
    pub fn name(self) -> &'static str {
        match self {
            KernelPath::Scalar => "scalar",
            KernelPath::Avx2 => "avx2",
            KernelPath::Avx512 => "avx512",
        }
    }

    /// Parses a `HEFT_KERNEL` value (case-insensitive).
    pub fn from_name(s: &str) -> Option<KernelPath> {
        match s.trim().to_ascii_lowercase().as_str() {
            "scalar" | "portable" => Some(KernelPath::Scalar),
            "avx2" => Some(KernelPath::Avx2),
            "avx512" | "avx512f" => Some(KernelPath::Avx512),
            _ => None,
        }
    }

    /// True when this CPU can run the path.
    pub fn is_supported(self) -> bool {
        match self {
            KernelPath::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            KernelPath::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            KernelPath::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }
}

impl std::fmt::Display for KernelPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Every path this CPU supports, slowest first (always includes `Scalar`).
pub fn supported_paths() -> Vec<KernelPath> {
    KernelPath::ALL
        .into_iter()
        .filter(|p| p.is_supported())
        .collect()
}

/// The fastest path this CPU supports.
fn best_path() -> KernelPath {
    *supported_paths()
        .last()
        .expect("scalar is always supported")
}

static PATH: OnceLock<KernelPath> = OnceLock::new();

/// The kernel path [`gemm_f32`] and [`gemm_f64`] use, detected once per process.
///
/// `HEFT_KERNEL=scalar|avx2|avx512` forces a path; if the CPU lacks it, the
/// fastest supported path is used instead and a one-line note goes to stderr.
pub fn kernel_path() -> KernelPath {
    *PATH.get_or_init(|| {
        let best = best_path();
        match std::env::var("HEFT_KERNEL") {
            Err(_) => best,
            Ok(v) if v.trim().is_empty() => best,
            Ok(v) => match KernelPath::from_name(&v) {
                Some(p) if p.is_supported() => p,
                Some(p) => {
                    eprintln!("heft: HEFT_KERNEL={p} is not supported by this CPU; using {best}");
                    best
                }
                None => {
                    eprintln!(
                        "heft: unknown HEFT_KERNEL={v:?} (expected scalar, avx2 or avx512); using {best}"
                    );
                    best
                }
            },
        }
    })
}

/// Type-erased microkernel: `C[0..m_eff, 0..n_eff] (+)= Apanel * Bpanel`.
///
/// Arguments: `k`, packed A micro-panel (`k * MR` elements), B micro-panel
/// (`k` rows of `NR` contiguous elements), the distance between those B rows
/// (`NR` for a packed panel, the row stride of B when a row-major B is read
/// in place), pointer to `C(0, 0)` of the tile, C row and column strides,
/// `m_eff <= MR`, `n_eff <= NR` (both at least 1) and whether to add to C
/// (`true`) or overwrite it.
///
/// # Safety
/// The CPU supports the kernel's instruction set; the panels hold the stated
/// initialised elements (B: `k` rows of `NR` at the given stride); the C
/// block is valid for reads and writes and touched by no one else during the
/// call.
pub(crate) type Ukr<T> =
    unsafe fn(usize, *const T, *const T, usize, *mut T, usize, usize, usize, usize, bool);

/// Direct-A microkernel: `(k, a, lda, b, ldb, c, rsc, csc, m_eff, n_eff,
/// accumulate)`. As [`Ukr`], except that A is read in place: `m_eff` rows of
/// `k` elements, `lda` apart (a row-major A needs no packing).
///
/// # Safety
/// As for [`Ukr`], with A's rows valid for reads.
pub(crate) type UkrA<T> =
    unsafe fn(usize, *const T, usize, *const T, usize, *mut T, usize, usize, usize, usize, bool);

/// A microkernel that reads a row-major A in place, with its tile shape.
pub(crate) struct DirectA<T> {
    /// Rows of the register tile (rows of A read per call).
    pub mr: usize,
    /// Columns of the register tile (width of a B micro-panel).
    pub nr: usize,
    /// The microkernel.
    pub ukr: UkrA<T>,
    /// Narrower variants `(width, kernel)` for a last panel of at most
    /// `width` columns, narrowest first (same FMA chain per element).
    pub narrow: [Option<(usize, UkrA<T>)>; 2],
}

impl<T> DirectA<T> {
    /// The kernel for a tile `n_eff` columns wide.
    fn ukr_for(&self, n_eff: usize) -> UkrA<T> {
        self.narrow
            .iter()
            .flatten()
            .find(|(w, _)| n_eff <= *w)
            .map_or(self.ukr, |(_, u)| *u)
    }
}

/// A microkernel with its register-tile shape and cache-blocking constants.
pub(crate) struct Kernel<T> {
    /// Rows of the register tile.
    pub mr: usize,
    /// Columns of the register tile.
    pub nr: usize,
    /// Depth of a packed block (B micro-panel `kc x nr` should sit in L1).
    pub kc: usize,
    /// Rows of a packed A block (`mc x kc` should sit in L2); multiple of `mr`.
    pub mc: usize,
    /// Columns of a packed B block; multiple of `nr`.
    pub nc: usize,
    /// The microkernel.
    pub ukr: Ukr<T>,
    /// The transposing pack (row-major A, column-major B).
    pub tpack: pack::Gather<T>,
    /// The run-order copy (column-major A, row-major B).
    pub cpack: pack::CopyPanels<T>,
    /// A kernel that reads row-major A in place, if the path has one.
    pub direct_a: Option<DirectA<T>>,
}

/// Element types with GEMM kernels (f32 and f64).
pub(crate) trait Elem:
    Copy + Send + Sync + Default + Add<Output = Self> + Mul<Output = Self> + 'static
{
    /// Additive identity.
    const ZERO: Self;
    /// What debug builds fill fresh outputs with (NaN), so unwritten
    /// elements cannot pass for results.
    const POISON: Self;
    /// The packed kernel for `path` (which must be supported).
    fn kernel(path: KernelPath) -> &'static Kernel<Self>;
    /// Runs the unpacked small-matrix path compiled for `path`.
    fn small(
        path: KernelPath,
        a: MatRef<'_, Self>,
        b: MatRef<'_, Self>,
        c: MatMut<'_, Self>,
        acc: bool,
    );
    /// Runs `f` with this thread's packing buffers, grown to at least the lengths given.
    fn with_buffers<R>(
        a_len: usize,
        b_len: usize,
        f: impl FnOnce(&mut [Self], &mut [Self]) -> R,
    ) -> R;
    /// Runs `f` with this thread's buffer for a whole packed operand (see
    /// `par.rs`), grown to at least `len`.
    fn with_whole<R>(len: usize, f: impl FnOnce(&mut [Self]) -> R) -> R;
    /// Runs `f` with this thread's scratch for a transposed C (see
    /// [`swap_pays`]), grown to at least `len`.
    fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [Self]) -> R) -> R;
}

/// Elements kept before a buffer so its start can be moved to a 64-byte boundary.
const ALIGN_SLACK: usize = 64;

/// A reusable growable buffer whose usable part starts 64-byte aligned.
#[derive(Default)]
struct PackBuf<T> {
    v: Vec<T>,
}

impl<T: Copy + Default> PackBuf<T> {
    fn get(&mut self, len: usize) -> &mut [T] {
        if self.v.len() < len + ALIGN_SLACK {
            // Free the old buffer first (its contents are not kept): an
            // assignment would hold both while the new one is made, and a
            // buffer growing mid-step (the benchmark MLP's packed x^T, then
            // its packed x, 2.5 % larger, in every pool thread) raised the
            // step's peak memory by both copies (`mem-step`, two threads:
            // 1.43 x the step's tensors).
            self.v = Vec::new();
            self.v = vec![T::default(); len + ALIGN_SLACK];
        }
        let off = self.v.as_ptr().align_offset(64).min(ALIGN_SLACK);
        &mut self.v[off..off + len]
    }
}

/// Runs `f` on the buffers in `cell`, or on fresh ones if they are in use
/// (re-entrant call on the same thread).
fn with_tls_buffers<T: Copy + Default, R>(
    cell: &RefCell<(PackBuf<T>, PackBuf<T>)>,
    a_len: usize,
    b_len: usize,
    f: impl FnOnce(&mut [T], &mut [T]) -> R,
) -> R {
    match cell.try_borrow_mut() {
        Ok(mut bufs) => {
            let (ab, bb) = &mut *bufs;
            f(ab.get(a_len), bb.get(b_len))
        }
        Err(_) => {
            let (mut ab, mut bb) = (PackBuf::default(), PackBuf::default());
            f(ab.get(a_len), bb.get(b_len))
        }
    }
}

/// Runs `f` on the buffer in `cell`, or on a fresh one if it is in use.
fn with_tls_buffer<T: Copy + Default, R>(
    cell: &RefCell<PackBuf<T>>,
    len: usize,
    f: impl FnOnce(&mut [T]) -> R,
) -> R {
    match cell.try_borrow_mut() {
        Ok(mut buf) => f(buf.get(len)),
        Err(_) => f(PackBuf::default().get(len)),
    }
}

thread_local! {
    static BUFS_F32: RefCell<(PackBuf<f32>, PackBuf<f32>)> = RefCell::default();
    static BUFS_F64: RefCell<(PackBuf<f64>, PackBuf<f64>)> = RefCell::default();
    static WHOLE_F32: RefCell<PackBuf<f32>> = RefCell::default();
    static WHOLE_F64: RefCell<PackBuf<f64>> = RefCell::default();
    static SCRATCH_F32: RefCell<PackBuf<f32>> = RefCell::default();
    static SCRATCH_F64: RefCell<PackBuf<f64>> = RefCell::default();
}

static PORTABLE_F32: Kernel<f32> = Kernel {
    mr: portable::MR,
    nr: portable::NR_F32,
    kc: 256,
    mc: 128,
    nc: 1024,
    ukr: portable::ukr_f32,
    tpack: pack::gather::<f32>,
    cpack: pack::copy_panels::<f32>,
    direct_a: None,
};
static PORTABLE_F64: Kernel<f64> = Kernel {
    mr: portable::MR,
    nr: portable::NR_F64,
    kc: 256,
    mc: 128,
    nc: 512,
    ukr: portable::ukr_f64,
    tpack: pack::gather::<f64>,
    cpack: pack::copy_panels::<f64>,
    direct_a: None,
};
#[cfg(target_arch = "x86_64")]
static AVX2_F32: Kernel<f32> = Kernel {
    mr: avx2::MR,
    nr: avx2::NR_F32,
    kc: 256,
    mc: 6 * 24,
    nc: 1024,
    ukr: avx2::ukr_f32,
    tpack: avx2::gather_f32,
    cpack: pack::copy_panels::<f32>,
    direct_a: Some(DirectA {
        mr: avx2::MR,
        nr: avx2::NR_F32,
        ukr: avx2::ukr_direct_f32,
        narrow: [None, None],
    }),
};
#[cfg(target_arch = "x86_64")]
static AVX2_F64: Kernel<f64> = Kernel {
    mr: avx2::MR,
    nr: avx2::NR_F64,
    kc: 256,
    mc: 6 * 24,
    nc: 512,
    ukr: avx2::ukr_f64,
    tpack: avx2::gather_f64,
    cpack: pack::copy_panels::<f64>,
    direct_a: Some(DirectA {
        mr: avx2::MR,
        nr: avx2::NR_F64,
        ukr: avx2::ukr_direct_f64,
        narrow: [None, None],
    }),
};
#[cfg(target_arch = "x86_64")]
static AVX512_F32: Kernel<f32> = Kernel {
    mr: avx512::MR,
    nr: avx512::NR_F32,
    kc: 256,
    mc: 14 * 12,
    nc: 1024,
    ukr: avx512::ukr_f32,
    tpack: avx512::gather_f32,
    cpack: avx512::copy_panels_f32,
    direct_a: Some(DirectA {
        mr: avx512::MR_DIRECT,
        nr: avx512::NR_DIRECT_F32,
        ukr: avx512::ukr_direct_f32,
        narrow: [
            Some((16, avx512::ukr_direct_f32_v1)),
            Some((32, avx512::ukr_direct_f32_v2)),
        ],
    }),
};
#[cfg(target_arch = "x86_64")]
static AVX512_F64: Kernel<f64> = Kernel {
    mr: avx512::MR,
    nr: avx512::NR_F64,
    kc: 256,
    mc: 14 * 12,
    nc: 512,
    ukr: avx512::ukr_f64,
    tpack: avx512::gather_f64,
    cpack: avx512::copy_panels_f64,
    direct_a: Some(DirectA {
        mr: avx512::MR_DIRECT,
        nr: avx512::NR_DIRECT_F64,
        ukr: avx512::ukr_direct_f64,
        narrow: [
            Some((8, avx512::ukr_direct_f64_v1)),
            Some((16, avx512::ukr_direct_f64_v2)),
        ],
    }),
};

macro_rules! impl_elem {
    ($t:ty, $portable:ident, $avx2:ident, $avx512:ident, $bufs:ident, $whole:ident, $scratch:ident, $small:ident) => {
        impl Elem for $t {
            const ZERO: Self = 0.0;
            const POISON: Self = <$t>::NAN;

            fn kernel(path: KernelPath) -> &'static Kernel<Self> {
                match path {
                    KernelPath::Scalar => &$portable,
                    #[cfg(target_arch = "x86_64")]
                    KernelPath::Avx2 => &$avx2,
                    #[cfg(target_arch = "x86_64")]
                    KernelPath::Avx512 => &$avx512,
                    #[cfg(not(target_arch = "x86_64"))]
                    _ => &$portable,
                }
            }

            fn small(
                path: KernelPath,
                a: MatRef<'_, Self>,
                b: MatRef<'_, Self>,
                c: MatMut<'_, Self>,
                acc: bool,
            ) {
                match path {
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: callers only pass paths whose CPU support was checked.
                    KernelPath::Avx512 => unsafe { avx512::$small(a, b, c, acc) },
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: callers only pass paths whose CPU support was checked.
                    KernelPath::Avx2 => unsafe { avx2::$small(a, b, c, acc) },
                    _ => small::small_gemm(a, b, c, acc),
                }
            }

            fn with_buffers<R>(
                a_len: usize,
                b_len: usize,
                f: impl FnOnce(&mut [Self], &mut [Self]) -> R,
            ) -> R {
                $bufs.with(|cell| with_tls_buffers(cell, a_len, b_len, f))
            }

            fn with_whole<R>(len: usize, f: impl FnOnce(&mut [Self]) -> R) -> R {
                $whole.with(|cell| with_tls_buffer(cell, len, f))
            }

            fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [Self]) -> R) -> R {
                $scratch.with(|cell| with_tls_buffer(cell, len, f))
            }
        }
    };
}

impl_elem!(
    f32,
    PORTABLE_F32,
    AVX2_F32,
    AVX512_F32,
    BUFS_F32,
    WHOLE_F32,
    SCRATCH_F32,
    small_f32
);
impl_elem!(
    f64,
    PORTABLE_F64,
    AVX2_F64,
    AVX512_F64,
    BUFS_F64,
    WHOLE_F64,
    SCRATCH_F64,
    small_f64
);

/// Products with `m * n * k` at most this run the unpacked direct loop.
const TINY_MNK: usize = 16 * 16 * 16;
/// Products with `m * n * k` below this stay on the calling thread. Waking a
/// sleeping rayon worker costs the caller ~8 us and the worker starts ~30 us
/// later (measured on the 2-vCPU benchmark machine), so products under about
/// 60 us of one-thread work (~4M multiply-adds) lose by going parallel.
const PAR_MIN_MNK: usize = 160 * 160 * 160;
/// The threshold while the pool's helpers are still awake after an earlier
/// threaded product (see `par::helpers_awake`): no wake-up to pay, so
/// products of ~2M multiply-adds (the middle layer of the benchmark MLP at
/// batch 64, ~13 us on one thread) gain from a second thread.
/// `mlp-step-profile 2000 2`, 9-round A/B: 399.6 -> 391.8 us per step.
/// The same threshold applies when medium products come in a loop
/// ([`par::medium_product_repeats`]): from the second one on they wake the
/// helpers, which then linger.
const PAR_AWAKE_MIN_MNK: usize = 120 * 120 * 120;
/// Largest whole packed operand (elements) for the dynamic parallel path
/// (`par.rs`), where every thread packs it once and keeps it in L2; larger
/// products take the static split, which scales well at those sizes.
const DYNAMIC_MAX_WHOLE: usize = 128 * 1024;

/// Whether reading a row-major A in place (the path's [`DirectA`] kernel)
/// beats packing it, for an `m x n` block of C whose columns are shared by
/// `threads` threads that would each pack all of A.
///
/// The direct-A tile is 6 rows by 4 vectors against the packed kernel's 14
/// by 2, so each row tile streams twice the B bytes per FMA, and B is
/// streamed once per row tile: about `n / threads * k * (m/6 - m/14)` more
/// elements read from L2 per thread, against the `m * k` elements of the
/// transposing gather saved. Measured (heft GFLOP/s, `gemm-probe`,
/// interleaved, packed -> direct): one thread, 512..2048 NN +3..5 %,
/// 784x256x64 NN +3 %, 128x256x784 NT +5 %, but 64x256x784 NN -6 %,
/// 128x784x256 NN -4 %; two threads (dynamic split over N), 64x256x784 NN
/// +5 %, 64x256x784 NT +6 %, 128x256x128 NN +5 %, but 64x784x256 NN -11 %.
/// So: in place when each thread's share of the columns is at most twice
/// the rows. (On AVX2 both kernels have the same 6 x 2-vector tile, so only
/// the gather differs; the same rule measured no worse there than reading A
/// in place always, see docs/kernels.md.)
fn direct_a_pays(m: usize, n: usize, threads: usize) -> bool {
    n <= 2 * m * threads
}

/// Whether a one-thread product computes `C^T = B^T A^T` instead of
/// `C = A B` ([`gemm_swapped`]).
///
/// A row-major A times a column-major B (`x W^T`, the forward product of a
/// Linear layer, W stored `[out, in]`) packs B with a transposing gather of
/// all `n x k` elements. Swapped, B^T is a row-major A' that the direct-A
/// kernel reads in place, A^T becomes the B' that is gathered (`m x k`, which
/// the unswapped packed kernel gathers too), and C is transposed once
/// (`m x n`, through a scratch). That pays when:
/// - C has unit column stride (the transpose writes whole runs);
/// - `m` is a whole number of direct-A tile widths (64 f32 / 32 f64 columns
///   on AVX-512), so no swapped tile is partly empty, and at most 4096, so
///   the scratch ([`SWAP_SCRATCH_MAX`]) holds at least 64 columns of C;
/// - `k >= 4 m`: the gather saved (`n k`) outweighs the transposes (`m n`);
/// - the unswapped product would not read A in place itself
///   ([`direct_a_pays`] fails, so `n > 2 m`).
///
/// Measured (f32 GFLOP/s, `gemm-probe`, one thread, mean of two interleaved
/// rounds, as now -> swapped whenever `m < n`): 64x256x784 NT 137 -> 156,
/// 64x784x256 136 -> 153, 64x1024x1024 110 -> 153, 128x1024x512 135 -> 147;
/// within the run-to-run spread (+-4 %) at 64x512x128 (k = 2m), 64x128x256
/// and 128x256x784 (A in place already); slower where swapped tiles are
/// partly empty, 100x512x512 141 -> 121, 32x256x784 115 -> 81, 200x400x300
/// 142 -> 121, and at 256x512x512 (k = 2m) 155 -> 146. f64 (32-wide tiles):
/// 64x256x784 NT 62 -> 73, 64x512x512 57 -> 74.
fn swap_pays<T>(
    kern: &Kernel<T>,
    a: &MatRef<'_, T>,
    b: &MatRef<'_, T>,
    c: &CPtr<T>,
    (m, n, k): (usize, usize, usize),
) -> bool {
    let Some(da) = kern.direct_a.as_ref() else {
        return false;
    };
    c.cs == 1
        && a.cs == 1
        && b.rs == 1
        && b.cs > 1
        && m % da.nr == 0
        && m * 64 <= SWAP_SCRATCH_MAX
        && k >= 4 * m
        && !direct_a_pays(m, n, 1)
}

/// Writes the transpose of the `rows x cols` block at `src` (row stride
/// `srs`, unit column stride) into the `cols x rows` block at `dst` (row
/// stride `drs`, unit column stride), 16 source rows at a time through the
/// kernel's transposing gather and a small stack panel.
///
/// # Safety
/// `src` is valid for reads and `dst` for writes over those blocks, which do
/// not overlap; `kern` is for a path the CPU supports.
unsafe fn transpose_into<T: Elem>(
    kern: &Kernel<T>,
    src: *const T,
    srs: usize,
    dst: *mut T,
    drs: usize,
    rows: usize,
    cols: usize,
) {
    const W: usize = 16;
    const KC: usize = 256;
    let mut panel = [T::ZERO; W * KC];
    for r0 in (0..rows).step_by(W) {
        let lines = W.min(rows - r0);
        for p0 in (0..cols).step_by(KC) {
            let kc = KC.min(cols - p0);
            // SAFETY: source rows r0 .. r0 + lines, columns p0 .. p0 + kc lie
            // in the block at `src`; the span covers exactly them.
            let s = unsafe {
                std::slice::from_raw_parts(src.add(r0 * srs + p0), (lines - 1) * srs + kc)
            };
            (kern.tpack)(&mut panel[..kc * W], s, srs, lines, kc, W);
            let (runs, _) = panel[..kc * W].as_chunks::<W>();
            for (p, run) in runs.iter().enumerate() {
                let d = dst.wrapping_add((p0 + p) * drs + r0);
                // SAFETY: row p0 + p of the destination block, columns r0 ..
                // r0 + lines (a whole run of W when lines == W).
                unsafe {
                    if lines == W {
                        (d as *mut [T; W]).write_unaligned(*run);
                    } else {
                        std::ptr::copy_nonoverlapping(run.as_ptr(), d, lines);
                    }
                }
            }
        }
    }
}

/// `x^T` as a view.
fn transposed<'a, T>(x: &MatRef<'a, T>) -> MatRef<'a, T> {
    MatRef {
        rows: x.cols,
        cols: x.rows,
        rs: x.cs,
        cs: x.rs,
        ..*x
    }
}

/// Which strategy [`gemm_impl`] uses; `Auto` except in tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Strategy {
    Auto,
    Packed,
    /// Packed, and on the dynamic parallel path whatever the size (tests).
    Dynamic,
}

/// `base + (a - 1) * b + ...`, or `None` on overflow; the checked twin of `span()`.
fn checked_span(offset: usize, rows: usize, cols: usize, rs: usize, cs: usize) -> Option<usize> {
    if rows == 0 || cols == 0 {
        return Some(0);
    }
    offset
        .checked_add((rows - 1).checked_mul(rs)?)?
        .checked_add((cols - 1).checked_mul(cs)?)?
        .checked_add(1)
}

/// Panics unless the input view lies inside its slice.
fn validate_input<T>(x: &MatRef<'_, T>, name: &str) {
    let span = checked_span(x.offset, x.rows, x.cols, x.rs, x.cs);
    assert!(
        span.is_some_and(|s| s <= x.data.len()),
        "gemm: {name} view out of bounds"
    );
}

fn validate<T>(a: &MatRef<'_, T>, b: &MatRef<'_, T>, c: &MatMut<'_, T>) {
    assert!(
        a.cols == b.rows && a.rows == c.rows && b.cols == c.cols,
        "gemm: shape mismatch: A is {}x{}, B is {}x{}, C is {}x{}",
        a.rows,
        a.cols,
        b.rows,
        b.cols,
        c.rows,
        c.cols
    );
    validate_input(a, "A");
    validate_input(b, "B");
    let ok = |span: Option<usize>, len: usize| span.is_some_and(|s| s <= len);
    assert!(
        ok(
            checked_span(c.offset, c.rows, c.cols, c.rs, c.cs),
            c.data.len()
        ),
        "gemm: C view out of bounds"
    );
    let empty = c.rows == 0 || c.cols == 0;
    let alias = (c.rows > 1 && c.rs == 0) || (c.cols > 1 && c.cs == 0);
    assert!(
        empty || !alias,
        "gemm: C view aliases itself (zero stride over a dimension larger than one)"
    );
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

/// `C = A B` (or `C += A B` when `accumulate`) in f32, on the [`kernel_path`].
///
/// # Panics
/// Panics if the shapes do not agree or a view is out of bounds (callers in
/// heft-tensor validate shapes and return errors before calling).
pub fn gemm_f32(a: MatRef<'_, f32>, b: MatRef<'_, f32>, c: MatMut<'_, f32>, accumulate: bool) {
    gemm_impl(kernel_path(), Strategy::Auto, a, b, c, accumulate)
}

/// `C = A B` (or `C += A B` when `accumulate`) in f64, on the [`kernel_path`].
///
/// # Panics
/// As [`gemm_f32`].
pub fn gemm_f64(a: MatRef<'_, f64>, b: MatRef<'_, f64>, c: MatMut<'_, f64>, accumulate: bool) {
    gemm_impl(kernel_path(), Strategy::Auto, a, b, c, accumulate)
}

/// `A B` in f32 as a new row-major vector of `A.rows * B.cols` elements, on
/// the [`kernel_path`]. Unlike [`gemm_f32`] into a zeroed buffer, the output
/// is never zero-filled first.
///
/// # Panics
/// As [`gemm_f32`].
pub fn gemm_f32_new(a: MatRef<'_, f32>, b: MatRef<'_, f32>) -> Vec<f32> {
    gemm_new_impl(kernel_path(), a, b, None)
}

/// `A B` in f64 as a new row-major vector; see [`gemm_f32_new`].
///
/// # Panics
/// As [`gemm_f32`].
pub fn gemm_f64_new(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> Vec<f64> {
    gemm_new_impl(kernel_path(), a, b, None)
}

/// `init + A B` in f32 as a new row-major vector (`init` a view of the
/// output's shape, e.g. a bias broadcast over the rows with a zero row
/// stride), on the [`kernel_path`]. The output is never filled first: on
/// several threads each part of it is set to `init` right before the first
/// K block of its product, by the thread that computes it (on one thread,
/// and for small products, the whole output is set first; the transposed
/// routes fill their scratch straight from `init`). The sums are those of
/// [`gemm_f32`] accumulating into a C that holds `init`, bit for bit.
///
/// # Panics
/// As [`gemm_f32`], and if `init` is not `A.rows x B.cols` or lies outside
/// its slice.
pub fn gemm_f32_new_init(
    a: MatRef<'_, f32>,
    b: MatRef<'_, f32>,
    init: MatRef<'_, f32>,
) -> Vec<f32> {
    gemm_new_impl(kernel_path(), a, b, Some(init))
}

/// `init + A B` in f64 as a new row-major vector; see [`gemm_f32_new_init`].
///
/// # Panics
/// As [`gemm_f32_new_init`].
pub fn gemm_f64_new_init(
    a: MatRef<'_, f64>,
    b: MatRef<'_, f64>,
    init: MatRef<'_, f64>,
) -> Vec<f64> {
    gemm_new_impl(kernel_path(), a, b, Some(init))
}

/// [`gemm_f32`] on an explicitly chosen kernel path.
///
/// # Panics
/// As [`gemm_f32`], and if this CPU does not support `path` (see
/// [`supported_paths`]); an unsupported path is never run.
pub fn gemm_f32_with(
    path: KernelPath,
    a: MatRef<'_, f32>,
    b: MatRef<'_, f32>,
    c: MatMut<'_, f32>,
    accumulate: bool,
) {
    gemm_impl(path, Strategy::Auto, a, b, c, accumulate)
}

/// [`gemm_f64`] on an explicitly chosen kernel path.
///
/// # Panics
/// As [`gemm_f32_with`].
pub fn gemm_f64_with(
    path: KernelPath,
    a: MatRef<'_, f64>,
    b: MatRef<'_, f64>,
    c: MatMut<'_, f64>,
    accumulate: bool,
) {
    gemm_impl(path, Strategy::Auto, a, b, c, accumulate)
}

/// Test hooks: always take the packed, cache-blocked path (no matrix-vector or
/// tiny-matrix shortcut), so small shapes exercise the microkernel edges.
#[doc(hidden)]
pub mod testing {
    use super::*;

    /// [`gemm_f32_with`](super::gemm_f32_with) forced onto the packed path.
    pub fn gemm_f32_packed(
        path: KernelPath,
        a: MatRef<'_, f32>,
        b: MatRef<'_, f32>,
        c: MatMut<'_, f32>,
        accumulate: bool,
    ) {
        gemm_impl(path, Strategy::Packed, a, b, c, accumulate)
    }

    /// [`gemm_f64_with`](super::gemm_f64_with) forced onto the packed path.
    pub fn gemm_f64_packed(
        path: KernelPath,
        a: MatRef<'_, f64>,
        b: MatRef<'_, f64>,
        c: MatMut<'_, f64>,
        accumulate: bool,
    ) {
        gemm_impl(path, Strategy::Packed, a, b, c, accumulate)
    }

    /// [`gemm_f32_new`](super::gemm_f32_new) on an explicitly chosen path.
    pub fn gemm_f32_new_with(path: KernelPath, a: MatRef<'_, f32>, b: MatRef<'_, f32>) -> Vec<f32> {
        gemm_new_impl(path, a, b, None)
    }

    /// [`gemm_f32_new_init`](super::gemm_f32_new_init) on an explicitly
    /// chosen path.
    pub fn gemm_f32_new_init_with(
        path: KernelPath,
        a: MatRef<'_, f32>,
        b: MatRef<'_, f32>,
        init: MatRef<'_, f32>,
    ) -> Vec<f32> {
        gemm_new_impl(path, a, b, Some(init))
    }

    /// [`gemm_f64_new_init`](super::gemm_f64_new_init) on an explicitly
    /// chosen path.
    pub fn gemm_f64_new_init_with(
        path: KernelPath,
        a: MatRef<'_, f64>,
        b: MatRef<'_, f64>,
        init: MatRef<'_, f64>,
    ) -> Vec<f64> {
        gemm_new_impl(path, a, b, Some(init))
    }

    /// [`gemm_f64_new`](super::gemm_f64_new) on an explicitly chosen path.
    pub fn gemm_f64_new_with(path: KernelPath, a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> Vec<f64> {
        gemm_new_impl(path, a, b, None)
    }

    /// [`gemm_f32_packed`], always on the dynamic parallel path when the
    /// rayon pool has more than one thread, whatever the size.
    pub fn gemm_f32_dynamic(
        path: KernelPath,
        a: MatRef<'_, f32>,
        b: MatRef<'_, f32>,
        c: MatMut<'_, f32>,
        accumulate: bool,
    ) {
        gemm_impl(path, Strategy::Dynamic, a, b, c, accumulate)
    }

    /// [`gemm_f64_packed`], always on the dynamic parallel path when the
    /// rayon pool has more than one thread, whatever the size.
    pub fn gemm_f64_dynamic(
        path: KernelPath,
        a: MatRef<'_, f64>,
        b: MatRef<'_, f64>,
        c: MatMut<'_, f64>,
        accumulate: bool,
    ) {
        gemm_impl(path, Strategy::Dynamic, a, b, c, accumulate)
    }
}

/// A raw pointer to C's element `(0, 0)`, shared by the tasks of one call.
#[derive(Clone, Copy)]
struct CPtr<T> {
    ptr: *mut T,
    rs: usize,
    cs: usize,
}

// SAFETY: the tasks of one call write disjoint blocks of C through this
// pointer (the split is over rows or columns of C), and the `&mut` borrow of
// C is held by `gemm_impl` until every task has finished.
unsafe impl<T: Send> Send for CPtr<T> {}
// SAFETY: as above; the pointer is only used for disjoint writes.
unsafe impl<T: Send> Sync for CPtr<T> {}

impl<T> CPtr<T> {
    /// The same C, starting at element `(i, j)` (wrapping arithmetic: only
    /// the kernels that write through it need it to be in bounds).
    fn at(self, i: usize, j: usize) -> Self {
        CPtr {
            ptr: self.ptr.wrapping_add(i * self.rs + j * self.cs),
            ..self
        }
    }
}

/// Rows `lo .. lo + len` of `x`, as a view of their own.
fn row_range<'a, T>(x: &MatRef<'a, T>, lo: usize, len: usize) -> MatRef<'a, T> {
    MatRef {
        offset: x.offset + lo * x.rs,
        rows: len,
        ..*x
    }
}

/// Columns `lo .. lo + len` of `x`, as a view of their own.
fn col_range<'a, T>(x: &MatRef<'a, T>, lo: usize, len: usize) -> MatRef<'a, T> {
    MatRef {
        offset: x.offset + lo * x.cs,
        cols: len,
        ..*x
    }
}

fn gemm_impl<T: Elem>(
    path: KernelPath,
    strategy: Strategy,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: MatMut<'_, T>,
    accumulate: bool,
) {
    assert!(
        path.is_supported(),
        "gemm: kernel path {path} is not supported by this CPU"
    );
    validate(&a, &b, &c);
    let (m, n, k) = (c.rows, c.cols, a.cols);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    c.data[c.offset + i * c.rs + j * c.cs] = T::ZERO;
                }
            }
        }
        return;
    }
    let mnk = m.saturating_mul(n).saturating_mul(k);
    if strategy == Strategy::Auto && (m == 1 || n == 1 || mnk <= TINY_MNK) {
        T::small(path, a, b, c, accumulate);
        return;
    }

    let cp = CPtr {
        ptr: c.data[c.offset..].as_mut_ptr(),
        rs: c.rs,
        cs: c.cs,
    };
    gemm_blocked(path, strategy, a, b, cp, (m, n, k), accumulate, None);
    // `c`'s exclusive borrow of the slice, from which `cp` derives, is held
    // for the whole function, i.e. until every task has finished.
}

/// `A B` as a new row-major `m x n` vector, computed straight into
/// uninitialised memory: no zero fill first (that `memset` was ~6% of the
/// MLP training step). Products that take the unpacked small path (and
/// `k == 0`) get a zeroed vector as usual. With `init` the output starts as
/// `init` ([`gemm_f32_new_init`]): copied whole first on the small paths,
/// else by [`gemm_blocked`] part by part.
fn gemm_new_impl<T: Elem>(
    path: KernelPath,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    init: Option<MatRef<'_, T>>,
) -> Vec<T> {
    let (m, n, k) = (a.rows, b.cols, a.cols);
    let len = m
        .checked_mul(n)
        .expect("gemm: the output's element count overflows usize");
    if let Some(x) = &init {
        assert!(
            x.rows == m && x.cols == n,
            "gemm: init is {}x{}, the product {m}x{n}",
            x.rows,
            x.cols
        );
        validate_input(x, "init");
    }
    let mnk = len.saturating_mul(k);
    if len == 0 || k == 0 || m == 1 || n == 1 || mnk <= TINY_MNK || !path.is_supported() {
        let mut v = match &init {
            Some(x) => (0..m)
                .flat_map(|i| (0..n).map(move |j| x.data[x.offset + i * x.rs + j * x.cs]))
                .collect(),
            None => vec![T::ZERO; len],
        };
        let c = MatMut {
            data: &mut v,
            offset: 0,
            rows: m,
            cols: n,
            rs: n,
            cs: 1,
        };
        gemm_impl(path, Strategy::Auto, a, b, c, init.is_some());
        return v;
    }
    assert!(
        a.cols == b.rows,
        "gemm: shape mismatch: A is {}x{}, B is {}x{}",
        a.rows,
        a.cols,
        b.rows,
        b.cols
    );
    validate_input(&a, "A");
    validate_input(&b, "B");
    let mut v: Vec<T> = Vec::with_capacity(len);
    if cfg!(debug_assertions) {
        // Poison the memory, so a tile the kernels failed to write shows up
        // as NaN in the tests that compare against the reference.
        for x in v.spare_capacity_mut() {
            x.write(T::POISON);
        }
    }
    let cp = CPtr {
        ptr: v.as_mut_ptr(),
        rs: n,
        cs: 1,
    };
    gemm_blocked(
        path,
        Strategy::Auto,
        a,
        b,
        cp,
        (m, n, k),
        false,
        init.as_ref(),
    );
    // SAFETY: `v` has capacity `len`, and `gemm_blocked` with `accumulate`
    // false writes every element of the m x n block at `cp` before returning:
    // the tiles of every split cover C, and each tile's first K block stores
    // (overwrites) all its m_eff x n_eff elements without reading them (on
    // the transposed route, `gemm_swapped`, into the scratch, which is then
    // copied whole into C without reading C). With `init`, each part of C
    // (the whole of it on one thread, a chunk or a static part on several)
    // is written from `init` before the first K block that reads it, and the
    // transposed routes fill their scratch rows from `init` instead of
    // reading C. All threaded tasks have finished when it returns. A panic
    // unwinds with `v` still empty.
    unsafe { v.set_len(len) };
    v
}

/// The packed paths of [`gemm_impl`] (one thread, dynamic or static split)
/// on a validated product with `m, n, k >= 1`, writing C through `cp`.
/// With `init` (a validated `m x n` view), C's memory need not hold
/// anything: each part of C is set to `init` right before the first K
/// block of its product, by the thread computing it, and the product is
/// added to it.
#[allow(clippy::too_many_arguments)]
fn gemm_blocked<T: Elem>(
    path: KernelPath,
    strategy: Strategy,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    cp: CPtr<T>,
    (m, n, k): (usize, usize, usize),
    accumulate: bool,
    init: Option<&MatRef<'_, T>>,
) {
    let kern = T::kernel(path);
    // What the threaded transposed route would have to move into its
    // scratch first element by element: C when accumulating, an `init`
    // neither broadcast over C's rows (a bias, `rs == 0`: a fill) nor
    // running along them (`rs == 1`: a copy).
    let copy_in = accumulate || init.is_some_and(|x| x.rs > 1);
    let accumulate = accumulate || init.is_some();
    let mnk = m.saturating_mul(n).saturating_mul(k);
    let threads = crate::kernels::threads();
    let parallel = threads > 1
        && (mnk >= PAR_MIN_MNK
            || (mnk >= PAR_AWAKE_MIN_MNK
                && (par::helpers_awake() || par::medium_product_repeats()))
            || strategy == Strategy::Dynamic);
    if parallel {
        if swap_pays_par(kern, &a, &b, &cp, (m, n, k), copy_in, threads) {
            gemm_swapped_par(kern, &a, &b, cp, (m, n, k), accumulate, init, threads);
            return;
        }
        let plan = par::plan(kern, (m, n, k), a.cs == 1, threads);
        if plan.whole_len <= DYNAMIC_MAX_WHOLE || strategy == Strategy::Dynamic {
            let cp_all = &cp;
            let fill = |lo: usize, len: usize| {
                // Capture the whole `CPtr` (which is Sync), not its raw field.
                let c = *cp_all;
                if let Some(x) = init {
                    // SAFETY: the chunk's rows (or columns) lo .. lo + len of
                    // the validated C, owned by the thread running this; `x`
                    // is validated and `m x n`.
                    unsafe {
                        if plan.splits_rows() {
                            fill_from(c.at(lo, 0), len, n, x, (lo, 0));
                        } else {
                            fill_from(c.at(0, lo), m, len, x, (0, lo));
                        }
                    }
                }
            };
            let around = par::Around {
                before: init.map(|_| &fill as &(dyn Fn(usize, usize) + Sync)),
                after: None,
            };
            par::gemm_dynamic(
                kern,
                plan,
                &a,
                &b,
                cp,
                (m, n, k),
                accumulate,
                threads,
                around,
            );
            return;
        }
        // Too big for the dynamic path: split the larger of M and N into one
        // chunk per thread, in whole register tiles, each packing its own
        // blocks of both operands. K is never split, so each C element is
        // summed in the same order whatever the thread count.
        let split_n = n >= m;
        let (dim, unit) = if split_n { (n, kern.nr) } else { (m, kern.mr) };
        let tiles = dim.div_ceil(unit);
        let parts = threads.min(tiles);
        let chunk = tiles.div_ceil(parts) * unit;
        let parts = dim.div_ceil(chunk);
        let (a, b, cp_all) = (&a, &b, &cp);
        par::for_each_chunk(parts, |t| {
            // Capture the whole `CPtr` (which is Sync), not its raw field.
            let cp = *cp_all;
            let lo = t * chunk;
            let len = chunk.min(dim - lo);
            if split_n {
                if let Some(x) = init {
                    // SAFETY: columns lo .. lo + len of the validated C,
                    // this part's own; `x` is validated and `m x n`.
                    unsafe { fill_from(cp.at(0, lo), m, len, x, (0, lo)) };
                }
                let bs = col_range(b, lo, len);
                gemm_packed(kern, a, &bs, cp.at(0, lo), m, len, k, accumulate);
            } else {
                if let Some(x) = init {
                    // SAFETY: as above, rows lo .. lo + len.
                    unsafe { fill_from(cp.at(lo, 0), len, n, x, (lo, 0)) };
                }
                let as_ = row_range(a, lo, len);
                gemm_packed(kern, &as_, b, cp.at(lo, 0), len, n, k, accumulate);
            }
        });
    } else if swap_pays(kern, &a, &b, &cp, (m, n, k)) {
        gemm_swapped(kern, &a, &b, cp, (m, n, k), accumulate, init);
    } else {
        if let Some(x) = init {
            // SAFETY: the whole validated C, owned by this call; `x` is
            // validated and `m x n`.
            unsafe { fill_from(cp, m, n, x, (0, 0)) };
        }
        gemm_packed(kern, &a, &b, cp, m, n, k, accumulate);
    }
}

/// Writes `dst(i, j) = src(i0 + i, j0 + j)` for `i < rows`, `j < cols`,
/// walking `dst` along its unit-stride direction (rows of C; the rows of a
/// transposed scratch, whose element `(i, j)` lies `rs = 1` apart): a plain
/// copy when `src` runs the same way, a fill with one value when `src` is
/// broadcast that way (a bias into C^T), element by element otherwise.
///
/// # Safety
/// The `rows x cols` block at `dst` is valid for writes and does not
/// overlap `src`, which covers rows `i0 .. i0 + rows` and columns
/// `j0 .. j0 + cols`. (`src` is read through bounds-checked indexing.)
unsafe fn fill_from<T: Elem>(
    dst: CPtr<T>,
    rows: usize,
    cols: usize,
    src: &MatRef<'_, T>,
    (i0, j0): (usize, usize),
) {
    if rows == 0 || cols == 0 {
        return;
    }
    // (outer, inner) counts and strides, inner along dst's unit stride.
    let (outer, inner, d_out, d_in, s_out, s_in) = if dst.cs == 1 || dst.rs != 1 {
        (rows, cols, dst.rs, dst.cs, src.rs, src.cs)
    } else {
        (cols, rows, dst.cs, dst.rs, src.cs, src.rs)
    };
    let base = src.offset + i0 * src.rs + j0 * src.cs;
    for o in 0..outer {
        let d = dst.ptr.wrapping_add(o * d_out);
        let s0 = base + o * s_out;
        match (s_in, d_in) {
            (0, 1) => {
                let v = src.data[s0];
                for t in 0..inner {
                    // SAFETY: element `t` of this run of the block (contract).
                    unsafe { d.add(t).write(v) };
                }
            }
            (0, _) => {
                let v = src.data[s0];
                for t in 0..inner {
                    // SAFETY: element `t` of this run of the block (contract).
                    unsafe { d.add(t * d_in).write(v) };
                }
            }
            (1, 1) => {
                let run = &src.data[s0..s0 + inner];
                // SAFETY: the run is `inner` contiguous elements of the block.
                unsafe { std::ptr::copy_nonoverlapping(run.as_ptr(), d, inner) };
            }
            _ => {
                for t in 0..inner {
                    let v = src.data[s0 + t * s_in];
                    // SAFETY: as in the first arm.
                    unsafe { d.add(t * d_in).write(v) };
                }
            }
        }
    }
}

/// Most elements of the scratch that holds C^T for [`gemm_swapped`] (1 MiB
/// of f32): wider products are done in blocks of C's columns, so the
/// thread-local scratch never grows past this.
const SWAP_SCRATCH_MAX: usize = 1 << 18;

/// `C = A B` (or `C += A B`) computed as `C^T = B^T A^T` on one thread (see
/// [`swap_pays`]): the same products and K blocks, so the same bits. C^T
/// goes to a row-major scratch, where the kernels store whole vectors, and
/// is transposed into C at the end (and, when accumulating, out of it first),
/// in blocks of at most [`SWAP_SCRATCH_MAX`] elements of C.
fn gemm_swapped<T: Elem>(
    kern: &Kernel<T>,
    a: &MatRef<'_, T>,
    b: &MatRef<'_, T>,
    cp: CPtr<T>,
    (m, n, k): (usize, usize, usize),
    accumulate: bool,
    init: Option<&MatRef<'_, T>>,
) {
    let at = transposed(a);
    // Columns of C per block (`swap_pays` keeps m small enough for >= 64).
    let nb = (SWAP_SCRATCH_MAX / m).clamp(1, n);
    T::with_scratch(m * nb, |s| {
        let st = CPtr {
            ptr: s.as_mut_ptr(),
            rs: m,
            cs: 1,
        };
        for j0 in (0..n).step_by(nb) {
            let len = nb.min(n - j0);
            let bt = transposed(&col_range(b, j0, len));
            let c = cp.at(0, j0);
            if let Some(x) = init {
                // SAFETY: `s` holds the len x m row-major block `st`, seen
                // here as the m x len block C^T^T (element (i, j) at i + j
                // m); `x` is validated and m x n.
                let sc = CPtr { rs: 1, cs: m, ..st };
                unsafe { fill_from(sc, m, len, x, (0, j0)) };
            } else if accumulate {
                // SAFETY: the m x len block of C at `c` lies in the validated
                // C (unit column stride, `swap_pays`), owned by this call;
                // `s` holds the len x m row-major block `st`; the two do not
                // overlap.
                unsafe { transpose_into(kern, c.ptr, c.rs, st.ptr, m, m, len) };
            }
            gemm_packed(kern, &bt, &at, st, len, m, k, accumulate);
            // SAFETY: as above, the other way round; `gemm_packed` has
            // written (or added to) every element of `st`.
            unsafe { transpose_into(kern, st.ptr, m, c.ptr, c.rs, len, m) };
        }
    });
}

/// Whether the threaded `C^T = B^T A^T` route ([`gemm_swapped_par`]) pays
/// for `x W^T` on `threads` threads.
///
/// Split over the threads, the product `x W^T` (row-major A, column-major
/// B) gathers all of B, `n k` elements, a share per thread. Swapped, the
/// weight W = B^T is read in place by the direct-A kernel and every thread
/// gathers all of A^T, `threads m k` elements in all, while C goes through
/// the transposed scratch: `m n` elements transposed out, and as many moved
/// in first when `copy_in` (accumulating into C, or an `init` that is
/// neither a bias nor runs along C's rows; a bias only fills the scratch).
/// The rule: the gather saved, `k (n - threads m)`,
/// at least four times the elements transposed (a transposed element cost
/// about three to four gathered ones in these measurements). Otherwise the
/// conditions of [`swap_pays`]: C with unit column stride, `m` a whole
/// number of direct-A tile widths, `k >= 4 m`, and `m <= 4096`; and the
/// swapped blocks take the dynamic split over their rows (each thread packs
/// all of A^T, at most `DYNAMIC_MAX_WHOLE` elements).
///
/// Measured (f32 GFLOP/s, `gemm-probe --threads 2`, two interleaved rounds
/// of one build with the route on and off, 2026-11-29 22:20; writing C /
/// accumulating into it): 64x1024x1024 NT 234 -> 289 / 234 -> 278 (taken
/// both ways; accumulating 269-272 since C is copied in row by row, two
/// rounds at 23:15); 64x256x784 NT 263.5 -> 269 / 259 -> 253 (taken when
/// writing only, and with a bias); 64x512x512 NT 254-266 -> 266-268 /
/// 249-255 -> 234-244 (writing only); 32x1024x256 NT 218-225 -> 228;
/// 128x1024x512 NT 272-273 -> 276-277 / 270-272 -> 261-263 (not taken
/// either way).
fn swap_pays_par<T: Elem>(
    kern: &Kernel<T>,
    a: &MatRef<'_, T>,
    b: &MatRef<'_, T>,
    c: &CPtr<T>,
    (m, n, k): (usize, usize, usize),
    copy_in: bool,
    threads: usize,
) -> bool {
    let Some(da) = kern.direct_a.as_ref() else {
        return false;
    };
    let saved = k.saturating_mul(n.saturating_sub(threads.saturating_mul(m)));
    let transposed = m.saturating_mul(n).saturating_mul(1 + usize::from(copy_in));
    if !(c.cs == 1
        && a.cs == 1
        && b.rs == 1
        && b.cs > 1
        && m % da.nr == 0
        && m * 64 <= SWAP_SCRATCH_MAX
        && k >= 4 * m
        && saved >= transposed.saturating_mul(4))
    {
        return false;
    }
    // The swapped blocks (as wide as the scratch allows) must take the
    // dynamic split over their rows: wider than tall, and all of A^T small
    // enough for every thread to pack (else the product takes the static
    // split unswapped).
    let nb = (SWAP_SCRATCH_MAX / m).min(n);
    let plan = par::plan(kern, (nb, m, k), true, threads);
    plan.splits_rows() && plan.whole_len <= DYNAMIC_MAX_WHOLE
}

/// [`gemm_swapped`] on `threads` threads ([`swap_pays_par`]): for each
/// block of C's columns that fits the scratch, `C^T = B^T A^T` into this
/// thread's scratch by the dynamic split over the rows of C^T; each
/// chunk's thread moves its rows of C^T out into C's columns as soon as
/// they are done (and, when accumulating, C's columns into them first), so
/// the transposes are split too and read what is still in that core's
/// cache. The same products in the same K blocks as every other route: the
/// same bits.
fn gemm_swapped_par<T: Elem>(
    kern: &Kernel<T>,
    a: &MatRef<'_, T>,
    b: &MatRef<'_, T>,
    cp: CPtr<T>,
    (m, n, k): (usize, usize, usize),
    accumulate: bool,
    init: Option<&MatRef<'_, T>>,
    threads: usize,
) {
    let at = transposed(a);
    // Columns of C per block (`swap_pays_par` keeps m small enough for >= 64).
    let nb = (SWAP_SCRATCH_MAX / m).clamp(1, n);
    T::with_scratch(m * nb, |s| {
        let st = CPtr {
            ptr: s.as_mut_ptr(),
            rs: m,
            cs: 1,
        };
        for j0 in (0..n).step_by(nb) {
            let len = nb.min(n - j0);
            let c = cp.at(0, j0);
            let bs = col_range(b, j0, len);
            let plan = par::plan(kern, (len, m, k), true, threads);
            if !plan.splits_rows() || plan.whole_len > DYNAMIC_MAX_WHOLE {
                // A last block no wider than C is tall (the first always
                // splits rows: `swap_pays_par`): unswapped on this thread
                // (the same bits; it is at most m x m of an n > 4096 wide C).
                if let Some(x) = init {
                    // SAFETY: the m x len block of the validated C at
                    // column j0, owned by this call; `x` is validated, m x n.
                    unsafe { fill_from(c, m, len, x, (0, j0)) };
                }
                gemm_packed(kern, a, &bs, c, m, len, k, accumulate);
                continue;
            }
            // Capture the whole `CPtr`s (which are Sync), not their raw fields.
            let (c_all, st_all) = (&c, &st);
            let into_scratch = |lo: usize, rows: usize| {
                let (c, st) = (*c_all, *st_all);
                if let Some(x) = init {
                    // SAFETY: rows lo .. lo + rows of the len x m scratch
                    // `st`, seen as the m x rows block whose element (i, j)
                    // lies at i + j m, belong to the chunk whose thread runs
                    // this; `x` is validated and m x n.
                    let sc = CPtr {
                        rs: 1,
                        cs: m,
                        ..st.at(lo, 0)
                    };
                    unsafe { fill_from(sc, m, rows, x, (0, j0 + lo)) };
                    return;
                }
                // C's columns lo .. lo + rows, row by row: other threads are
                // writing the other columns of the same rows, so no view
                // may span them (`transpose_into` reads whole row spans).
                for i in 0..m {
                    // SAFETY: row i, columns lo .. lo + rows of the C block
                    // (unit column stride: `swap_pays_par`): this chunk's
                    // own elements, written by no other thread meanwhile.
                    let src = unsafe { std::slice::from_raw_parts(c.at(i, lo).ptr, rows) };
                    for (j, &v) in src.iter().enumerate() {
                        // SAFETY: row lo + j, column i of the len x m
                        // scratch: this chunk's own, apart from C.
                        unsafe { st.at(lo + j, i).ptr.write(v) };
                    }
                }
            };
            let out_of_scratch = |lo: usize, rows: usize| {
                let (c, st) = (*c_all, *st_all);
                // SAFETY: as above, the other way round; the chunk's K
                // blocks have written (or added to) all of its rows of `st`.
                unsafe {
                    transpose_into(kern, st.at(lo, 0).ptr, m, c.at(0, lo).ptr, c.rs, rows, m)
                };
            };
            let around = par::Around {
                before: if accumulate {
                    Some(&into_scratch)
                } else {
                    None
                },
                after: Some(&out_of_scratch),
            };
            let bt = transposed(&bs);
            par::gemm_dynamic(
                kern,
                plan,
                &bt,
                &at,
                st,
                (len, m, k),
                accumulate,
                threads,
                around,
            );
        }
    });
}

/// The blocked, packed product of `A (m x k)` and `B (k x n)` into the C
/// block at `c` (which must be a valid, exclusively owned `m x n` block).
fn gemm_packed<T: Elem>(
    kern: &Kernel<T>,
    a: &MatRef<'_, T>,
    b: &MatRef<'_, T>,
    c: CPtr<T>,
    m: usize,
    n: usize,
    k: usize,
    accumulate: bool,
) {
    if let Some(da) = kern
        .direct_a
        .as_ref()
        .filter(|_| a.cs == 1 && direct_a_pays(m, n, 1))
    {
        gemm_direct_a(kern, da, a, b, c, m, n, k, accumulate);
        return;
    }
    let (mr, nr) = (kern.mr, kern.nr);
    // Balanced K blocks; depends on k only, so summation order is fixed.
    let k_blocks = k.div_ceil(kern.kc);
    let kc_max = k.div_ceil(k_blocks);
    let mc_max = kern.mc.min(m.div_ceil(mr) * mr);
    let direct = pack::direct_b(b, m, n, nr);
    // Reading B in place, only a partial last panel is packed.
    let nc_max = if direct {
        nr
    } else {
        kern.nc.min(n.div_ceil(nr) * nr)
    };
    T::with_buffers(mc_max * kc_max, nc_max * kc_max, |abuf, bbuf| {
        for jc in (0..n).step_by(kern.nc) {
            let nc = kern.nc.min(n - jc);
            for pb in 0..k_blocks {
                let p0 = pb * kc_max;
                let kc = kc_max.min(k - p0);
                pack::pack_b_for(bbuf, b, p0, kc, jc, nc, nr, direct, kern.tpack, kern.cpack);
                let bpan = pack::b_panels(bbuf, b, p0, kc, jc, nc, nr, direct);
                let acc = accumulate || pb > 0;
                for ic in (0..m).step_by(kern.mc) {
                    let mc = kern.mc.min(m - ic);
                    pack::pack_a(abuf, a, ic, mc, p0, kc, mr, kern.tpack, kern.cpack);
                    // The A micro-panel (the broadcast side, loaded most
                    // often) stays in L1 while B micro-panels stream from L2.
                    for ir in 0..mc.div_ceil(mr) {
                        let m_eff = mr.min(mc - ir * mr);
                        let ap = abuf[ir * mr * kc..].as_ptr();
                        for jr in 0..nc.div_ceil(nr) {
                            let n_eff = nr.min(nc - jr * nr);
                            let (bp, ldb) = bpan.panel(jr);
                            let ct = c
                                .ptr
                                .wrapping_add((ic + ir * mr) * c.rs + (jc + jr * nr) * c.cs);
                            // SAFETY: `kern` was selected for a path the CPU
                            // supports (checked in gemm_impl); the packed A
                            // panel holds kc*mr initialised elements at `ap`;
                            // `bp` is a packed panel of kc*nr elements or
                            // (`b_panels`) a full-width panel of the validated
                            // B view, kc rows of nr elements ldb apart; the tile
                            // (m_eff x n_eff at row ic+ir*mr, column jc+jr*nr)
                            // lies inside the validated C block owned by this
                            // call or task.
                            unsafe {
                                (kern.ukr)(kc, ap, bp, ldb, ct, c.rs, c.cs, m_eff, n_eff, acc)
                            };
                        }
                    }
                }
            }
        }
    });
}

/// [`gemm_packed`] for a row-major A (unit column stride) on a path with a
/// direct-A kernel: B is packed (or read in place) as usual, A is read in
/// place, `da.mr` rows at a time, so the transposing gather that packing a
/// row-major A needs is gone. Same K blocks as [`gemm_packed`], and the same
/// FMA chain per element, so the two give identical bits.
fn gemm_direct_a<T: Elem>(
    kern: &Kernel<T>,
    da: &DirectA<T>,
    a: &MatRef<'_, T>,
    b: &MatRef<'_, T>,
    c: CPtr<T>,
    m: usize,
    n: usize,
    k: usize,
    accumulate: bool,
) {
    let nr = da.nr;
    let k_blocks = k.div_ceil(kern.kc);
    let kc_max = k.div_ceil(k_blocks);
    let direct = pack::direct_b_for_direct_a(b, m, n, nr);
    let nc_max = if direct {
        nr
    } else {
        kern.nc.min(n.div_ceil(nr) * nr)
    };
    T::with_buffers(0, nc_max * kc_max, |_, bbuf| {
        for jc in (0..n).step_by(kern.nc) {
            let nc = kern.nc.min(n - jc);
            for pb in 0..k_blocks {
                let p0 = pb * kc_max;
                let kc = kc_max.min(k - p0);
                pack::pack_b_for(bbuf, b, p0, kc, jc, nc, nr, direct, kern.tpack, kern.cpack);
                let bpan = pack::b_panels(bbuf, b, p0, kc, jc, nc, nr, direct);
                let acc = accumulate || pb > 0;
                // SAFETY: `kern` was selected for a path the CPU supports
                // (checked in gemm_impl); A is validated and row-major
                // (a.cs == 1, checked by the caller); `bpan` holds the
                // panels of B block (p0, jc) just prepared; C is the
                // validated block owned by this call or task.
                unsafe { direct_a_tiles(da, a, &bpan, c, m, p0, kc, jc, nc, acc) };
            }
        }
    });
}

/// Runs the direct-A microkernel over every tile of rows `0..m` and columns
/// `j0 .. j0 + nc` of C, for the K block `p0 .. p0 + kc` whose B panels are
/// in `bpan` (panel 0 at column `j0`).
///
/// # Safety
/// The CPU supports `da`'s kernel; `a` is a validated view with `a.cs == 1`
/// and at least `m` rows and `p0 + kc` columns; `bpan` holds the B panels of
/// that block, `nc` columns wide; the `m x nc` block of C at column `j0` is
/// valid for reads and writes and touched by no one else during the call.
#[allow(clippy::too_many_arguments)]
unsafe fn direct_a_tiles<T: Elem>(
    da: &DirectA<T>,
    a: &MatRef<'_, T>,
    bpan: &pack::BPanels<'_, T>,
    c: CPtr<T>,
    m: usize,
    p0: usize,
    kc: usize,
    j0: usize,
    nc: usize,
    acc: bool,
) {
    let (mr, nr) = (da.mr, da.nr);
    for ir in (0..m).step_by(mr) {
        let m_eff = mr.min(m - ir);
        let ap = a.data[a.offset + ir * a.rs + p0..].as_ptr();
        for jr in 0..nc.div_ceil(nr) {
            let n_eff = nr.min(nc - jr * nr);
            let (bp, ldb) = bpan.panel(jr);
            let ct = c.ptr.wrapping_add(ir * c.rs + (j0 + jr * nr) * c.cs);
            // SAFETY: by the contract above: `ap` starts row `ir` of A at
            // column p0, m_eff rows of kc contiguous elements a.rs apart;
            // `bp` is a packed panel of kc*nr elements or a full-width panel
            // of the validated B view, kc rows of nr elements ldb apart; the
            // m_eff x n_eff tile at (ir, j0 + jr*nr) lies in the C block.
            let ukr = da.ukr_for(n_eff);
            unsafe { ukr(kc, ap, a.rs, bp, ldb, ct, c.rs, c.cs, m_eff, n_eff, acc) };
        }
    }
}
