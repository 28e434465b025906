//! GEMM kernels against the naive reference (computed in f64), over every
//! kernel path this CPU supports, many layouts and awkward sizes.

use heft_tensor::kernels::gemm::testing::{
    gemm_f32_new_init_with, gemm_f32_new_with, gemm_f32_packed, gemm_f64_new_init_with,
    gemm_f64_new_with, gemm_f64_packed,
};
use heft_tensor::kernels::{
    gemm_f32, gemm_f32_with, gemm_f64, gemm_f64_with, gemm_reference, kernel_path, supported_paths,
    KernelPath, MatMut, MatRef,
};

/// Small deterministic generator (xorshift64*), values in [-1, 1).
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (x >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

/// Element type under test.
trait Elem: Copy + Default + PartialEq + std::fmt::Debug + Send + Sync {
    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
    /// Per-unit-of-k relative tolerance; see `check`.
    const TOL: f64;
    fn run(
        path: Option<KernelPath>,
        packed: bool,
        a: MatRef<'_, Self>,
        b: MatRef<'_, Self>,
        c: MatMut<'_, Self>,
        acc: bool,
    );
    /// `A B` into a fresh, never zero-filled vector on `path`.
    fn fresh(path: KernelPath, a: MatRef<'_, Self>, b: MatRef<'_, Self>) -> Vec<Self>;
    /// `init + A B` into a fresh vector on `path`.
    fn fresh_init(
        path: KernelPath,
        a: MatRef<'_, Self>,
        b: MatRef<'_, Self>,
        init: MatRef<'_, Self>,
    ) -> Vec<Self>;
}

impl Elem for f32 {
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
    // f32 has a unit roundoff of 2^-24 ~ 6e-8. A k-term dot product accumulates
    // at most ~k roundings of partial sums bounded by k * max|a| * max|b|; the
    // blocked kernels also add C and the K-block partial sums separately. The
    // classic bound is k * u * sum|a_p||b_p|, so 1e-5 * k * max|a| max|b|
    // leaves a wide margin over u while still catching any wrong term (an error
    // of one product is ~max|a||b|, far above the bound for these k).
    const TOL: f64 = 1e-5;
    fn run(
        path: Option<KernelPath>,
        packed: bool,
        a: MatRef<'_, Self>,
        b: MatRef<'_, Self>,
        c: MatMut<'_, Self>,
        acc: bool,
    ) {
        match (path, packed) {
            (None, _) => gemm_f32(a, b, c, acc),
            (Some(p), false) => gemm_f32_with(p, a, b, c, acc),
            (Some(p), true) => gemm_f32_packed(p, a, b, c, acc),
        }
    }
    fn fresh(path: KernelPath, a: MatRef<'_, Self>, b: MatRef<'_, Self>) -> Vec<Self> {
        gemm_f32_new_with(path, a, b)
    }
    fn fresh_init(
        path: KernelPath,
        a: MatRef<'_, Self>,
        b: MatRef<'_, Self>,
        init: MatRef<'_, Self>,
    ) -> Vec<Self> {
        gemm_f32_new_init_with(path, a, b, init)
    }
}

impl Elem for f64 {
    fn from_f64(x: f64) -> Self {
        x
    }
    fn to_f64(self) -> f64 {
        self
    }
    // Same argument with u = 2^-53 ~ 1.1e-16.
    const TOL: f64 = 1e-13;
    fn run(
        path: Option<KernelPath>,
        packed: bool,
        a: MatRef<'_, Self>,
        b: MatRef<'_, Self>,
        c: MatMut<'_, Self>,
        acc: bool,
    ) {
        match (path, packed) {
            (None, _) => gemm_f64(a, b, c, acc),
            (Some(p), false) => gemm_f64_with(p, a, b, c, acc),
            (Some(p), true) => gemm_f64_packed(p, a, b, c, acc),
        }
    }
    fn fresh(path: KernelPath, a: MatRef<'_, Self>, b: MatRef<'_, Self>) -> Vec<Self> {
        gemm_f64_new_with(path, a, b)
    }
    fn fresh_init(
        path: KernelPath,
        a: MatRef<'_, Self>,
        b: MatRef<'_, Self>,
        init: MatRef<'_, Self>,
    ) -> Vec<Self> {
        gemm_f64_new_init_with(path, a, b, init)
    }
}

/// How a matrix is laid out in its slice.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Layout {
    RowMajor,
    /// Column-major, i.e. a transposed view of a row-major matrix.
    ColMajor,
    /// Row-major with padded rows (rs = 2 * cols + 1) and an offset.
    RowStrided,
    /// Neither stride is 1, with an offset.
    BothStrided,
    /// All rows identical (rs = 0); inputs only.
    BroadcastRows,
    /// All columns identical (cs = 0); inputs only.
    BroadcastCols,
}

const INPUT_LAYOUTS: [Layout; 6] = [
    Layout::RowMajor,
    Layout::ColMajor,
    Layout::RowStrided,
    Layout::BothStrided,
    Layout::BroadcastRows,
    Layout::BroadcastCols,
];
const OUTPUT_LAYOUTS: [Layout; 4] = [
    Layout::RowMajor,
    Layout::ColMajor,
    Layout::RowStrided,
    Layout::BothStrided,
];

/// A matrix stored with some layout, plus the slice around it.
#[derive(Clone)]
struct Stored<T> {
    data: Vec<T>,
    offset: usize,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<T: Elem> Stored<T> {
    fn new(rows: usize, cols: usize, layout: Layout, rng: &mut Rng) -> Self {
        let (offset, rs, cs) = match layout {
            Layout::RowMajor => (0, cols, 1),
            Layout::ColMajor => (0, 1, rows),
            Layout::RowStrided => (3, 2 * cols + 1, 1),
            Layout::BothStrided => (1, 2, 2 * rows + 3),
            Layout::BroadcastRows => (2, 0, 1),
            Layout::BroadcastCols => (2, 1, 0),
        };
        let span = if rows == 0 || cols == 0 {
            offset
        } else {
            offset + (rows - 1) * rs + (cols - 1) * cs + 1
        };
        // A few guard elements past the end catch out-of-view writes too.
        let data = (0..span + 5).map(|_| T::from_f64(rng.next_f64())).collect();
        Stored {
            data,
            offset,
            rows,
            cols,
            rs,
            cs,
        }
    }

    fn view(&self) -> MatRef<'_, T> {
        MatRef {
            data: &self.data,
            offset: self.offset,
            rows: self.rows,
            cols: self.cols,
            rs: self.rs,
            cs: self.cs,
        }
    }

    fn view_mut(&mut self) -> MatMut<'_, T> {
        MatMut {
            data: &mut self.data,
            offset: self.offset,
            rows: self.rows,
            cols: self.cols,
            rs: self.rs,
            cs: self.cs,
        }
    }

    fn idx(&self, i: usize, j: usize) -> usize {
        self.offset + i * self.rs + j * self.cs
    }

    /// Row-major f64 copy of the logical matrix.
    fn logical(&self) -> Vec<f64> {
        let mut out = Vec::with_capacity(self.rows * self.cols);
        for i in 0..self.rows {
            for j in 0..self.cols {
                out.push(self.data[self.idx(i, j)].to_f64());
            }
        }
        out
    }
}

fn row_major(data: &[f64], rows: usize, cols: usize) -> MatRef<'_, f64> {
    MatRef {
        data,
        offset: 0,
        rows,
        cols,
        rs: cols,
        cs: 1,
    }
}

/// Runs one case and compares against the f64 reference.
#[allow(clippy::too_many_arguments)]
fn check<T: Elem>(
    path: Option<KernelPath>,
    packed: bool,
    (m, n, k): (usize, usize, usize),
    (la, lb, lc): (Layout, Layout, Layout),
    accumulate: bool,
    seed: u64,
) {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let a = Stored::<T>::new(m, k, la, &mut rng);
    let b = Stored::<T>::new(k, n, lb, &mut rng);
    let mut c = Stored::<T>::new(m, n, lc, &mut rng);
    let before = c.data.clone();
    let (al, bl) = (a.logical(), b.logical());
    let mut want = c.logical();
    gemm_reference(
        row_major(&al, m, k),
        row_major(&bl, k, n),
        MatMut {
            data: &mut want,
            offset: 0,
            rows: m,
            cols: n,
            rs: n,
            cs: 1,
        },
        accumulate,
    );
    T::run(path, packed, a.view(), b.view(), c.view_mut(), accumulate);

    let amax = al.iter().fold(0.0f64, |x, &y| x.max(y.abs()));
    let bmax = bl.iter().fold(0.0f64, |x, &y| x.max(y.abs()));
    let ctx = || {
        format!("path={path:?} packed={packed} m={m} n={n} k={k} layouts=({la:?},{lb:?},{lc:?}) acc={accumulate}")
    };
    let mut in_view = vec![false; c.data.len()];
    for i in 0..m {
        for j in 0..n {
            let idx = c.idx(i, j);
            in_view[idx] = true;
            let got = c.data[idx].to_f64();
            let w = want[i * n + j];
            // k-scaled bound (see `Elem::TOL`), plus a term for the C we added to.
            let tol = T::TOL * (k as f64 + 1.0) * amax * bmax + T::TOL * w.abs();
            assert!(
                (got - w).abs() <= tol,
                "C[{i},{j}] = {got}, want {w} (tol {tol}); {}",
                ctx()
            );
        }
    }
    for (idx, (&now, &was)) in c.data.iter().zip(&before).enumerate() {
        if !in_view[idx] {
            assert!(
                now == was,
                "element {idx} outside the C view was modified; {}",
                ctx()
            );
        }
    }
}

/// Every supported path, as `Some(path)`, plus `None` (the process default).
fn paths() -> Vec<Option<KernelPath>> {
    let mut v: Vec<_> = supported_paths().into_iter().map(Some).collect();
    v.push(None);
    v
}

const SMALL: [usize; 8] = [0, 1, 2, 7, 15, 17, 31, 33];

fn small_combos<T: Elem>() {
    let mut case = 0u64;
    for path in supported_paths() {
        for &m in &SMALL {
            for &n in &SMALL {
                for &k in &SMALL {
                    for packed in [false, true] {
                        case += 1;
                        // Rotate layouts and accumulate through the cases.
                        let la = INPUT_LAYOUTS[(case % 6) as usize];
                        let lb = INPUT_LAYOUTS[(case / 6 % 6) as usize];
                        let lc = OUTPUT_LAYOUTS[(case / 36 % 4) as usize];
                        check::<T>(
                            Some(path),
                            packed,
                            (m, n, k),
                            (la, lb, lc),
                            case.is_multiple_of(3),
                            case,
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn f32_all_small_size_combos() {
    small_combos::<f32>();
}

#[test]
fn f64_all_small_size_combos() {
    small_combos::<f64>();
}

/// Every pair of input layouts and every output layout on medium shapes.
fn all_layouts<T: Elem>(shapes: &[(usize, usize, usize)]) {
    let mut case = 0u64;
    for path in paths() {
        for &shape in shapes {
            for la in INPUT_LAYOUTS {
                for lb in INPUT_LAYOUTS {
                    for lc in OUTPUT_LAYOUTS {
                        case += 1;
                        check::<T>(
                            path,
                            false,
                            shape,
                            (la, lb, lc),
                            case.is_multiple_of(2),
                            case,
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn f32_all_layouts_medium() {
    all_layouts::<f32>(&[(33, 100, 17), (100, 31, 33), (1, 100, 33), (33, 1, 100)]);
}

#[test]
fn f64_all_layouts_medium() {
    all_layouts::<f64>(&[(33, 100, 17), (100, 31, 33), (1, 100, 33), (33, 1, 100)]);
}

/// Larger shapes (several K blocks, several MC blocks, edges everywhere) in
/// the layouts backprop uses: NN, TN (A^T B) and NT (A B^T).
fn large<T: Elem>() {
    use Layout::*;
    let shapes = [
        (257, 257, 257),
        (100, 257, 600),
        (600, 33, 257),
        (257, 100, 31),
        // 129..=256 rows: B read in place unless its rows are 4 KiB apart.
        (200, 70, 300),
        // AVX-512, row-major A: read in place (n <= 2m), with B read in
        // place too (m <= 128) and a partial last B panel packed.
        (100, 150, 300),
        // SIMD paths, NT: computed as C^T = B^T A^T through a scratch that
        // is transposed into C (m a whole number of direct-A tiles, k >= 4m,
        // n > 2m); 300 = 18 * 16 + 12 leaves partial transpose blocks.
        (64, 300, 300),
    ];
    let mut case = 0u64;
    for path in paths() {
        for &shape in &shapes {
            for (la, lb) in [
                (RowMajor, RowMajor),
                (ColMajor, RowMajor),
                (RowMajor, ColMajor),
                (RowStrided, BothStrided),
            ] {
                for acc in [false, true] {
                    case += 1;
                    check::<T>(path, false, shape, (la, lb, RowMajor), acc, case);
                }
            }
        }
    }
}

/// NT products that one thread computes as `C^T = B^T A^T` (SIMD paths: m a
/// whole number of direct-A tiles, k >= 4m, n > 2m), on a one-thread pool so
/// that the threaded split cannot take them: column-major B against the A
/// layouts `las`, the output layouts `lcs` (only unit column stride takes the
/// transposed route), writing and accumulating.
fn transposed_route_cases<T: Elem>(
    shapes: &[(usize, usize, usize)],
    las: &[Layout],
    lcs: &[Layout],
) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let mut case = 0u64;
    for path in paths() {
        for &shape in shapes {
            for &la in las {
                for &lc in lcs {
                    for acc in [false, true] {
                        case += 1;
                        let layouts = (la, Layout::ColMajor, lc);
                        pool.install(|| check::<T>(path, false, shape, layouts, acc, case));
                    }
                }
            }
        }
    }
}

fn transposed_route<T: Elem>() {
    use Layout::*;
    transposed_route_cases::<T>(
        &[(64, 200, 256), (128, 260, 520)],
        &[RowMajor, RowStrided, BroadcastRows],
        &OUTPUT_LAYOUTS,
    );
}

/// The transposed route in blocks of C's columns: with m = 64 its scratch
/// (2^18 elements) holds 4096 columns, so n = 4100 leaves a 4-column block.
fn transposed_route_blocks<T: Elem>() {
    transposed_route_cases::<T>(&[(64, 4100, 256)], &[Layout::RowMajor], &[Layout::RowMajor]);
}

/// NT products that two and three threads compute as `C^T = B^T A^T`, the
/// transposes of C done per chunk (`swap_pays_par`: the gather saved,
/// `k * (n - threads * m)`, at least four times the elements of C
/// transposed, twice as many when accumulating), against the reference, and
/// bit for bit against one thread (which takes the one-thread transposed
/// route or the packed kernel). (64, 4100, 300) runs in two column blocks,
/// the second four columns wide, which the caller takes unswapped.
/// (64, 256, 784) accumulating is on the rule's other side (the packed
/// split; this test checks values and bits, not which route ran).
fn threaded_transposed_route<T: Elem>() {
    use Layout::*;
    let pools: Vec<rayon::ThreadPool> = [1, 2, 3]
        .iter()
        .map(|&t| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .unwrap()
        })
        .collect();
    let mut case = 0u64;
    for path in paths() {
        for (shape, acc) in [
            ((64, 1024, 640), false),
            ((64, 1024, 640), true),
            ((64, 256, 784), false),
            ((64, 256, 784), true),
            ((64, 4100, 300), false),
        ] {
            let (m, n, k) = shape;
            case += 1;
            for pool in &pools[1..] {
                pool.install(|| {
                    check::<T>(
                        path,
                        false,
                        shape,
                        (RowMajor, ColMajor, RowMajor),
                        acc,
                        case,
                    )
                });
            }
            let mut rng = Rng(case.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let a = Stored::<T>::new(m, k, RowMajor, &mut rng);
            let b = Stored::<T>::new(k, n, ColMajor, &mut rng);
            let c0 = Stored::<T>::new(m, n, RowMajor, &mut rng);
            let outs: Vec<Vec<T>> = pools
                .iter()
                .map(|pool| {
                    let mut c = c0.clone();
                    pool.install(|| T::run(path, false, a.view(), b.view(), c.view_mut(), acc));
                    c.data
                })
                .collect();
            for (t, out) in outs.iter().enumerate().skip(1) {
                let case = format!("{path:?} {shape:?} acc={acc}: {} threads", t + 1);
                assert_same_bits_no_nan(out, &outs[0], &case);
            }
        }
    }
}

#[test]
fn f32_threaded_transposed_route() {
    threaded_transposed_route::<f32>();
}

#[test]
fn f64_threaded_transposed_route() {
    threaded_transposed_route::<f64>();
}

/// Last B panels of every width around the direct-A kernels' narrow edge
/// variants (AVX-512: 1 and 2 vectors, so 16/32 f32 and 8/16 f64 columns):
/// n = 64 + w leaves w = 8, 9, 16, 17, 32, 33 columns for f32 and 8, 9, 16,
/// 17, 32 (full), 1 for f64.
fn narrow_edges<T: Elem>() {
    use Layout::*;
    let mut case = 0u64;
    for path in paths() {
        for n in [72, 73, 80, 81, 96, 97] {
            for lb in [RowMajor, ColMajor] {
                for acc in [false, true] {
                    case += 1;
                    check::<T>(
                        path,
                        false,
                        (50, n, 40),
                        (RowMajor, lb, RowMajor),
                        acc,
                        case,
                    );
                }
            }
        }
    }
}

#[test]
fn f32_narrow_edge_tiles() {
    narrow_edges::<f32>();
}

#[test]
fn f64_narrow_edge_tiles() {
    narrow_edges::<f64>();
}

#[test]
fn f32_transposed_route() {
    transposed_route::<f32>();
}

#[test]
fn f32_transposed_route_blocks() {
    transposed_route_blocks::<f32>();
}

#[test]
fn f64_transposed_route_blocks() {
    transposed_route_blocks::<f64>();
}

#[test]
fn f64_transposed_route() {
    transposed_route::<f64>();
}

#[test]
fn f32_large_shapes() {
    large::<f32>();
}

#[test]
fn f64_large_shapes() {
    large::<f64>();
}

#[test]
fn empty_dimensions() {
    use Layout::*;
    for path in paths() {
        for (m, n, k) in [
            (0, 5, 3),
            (5, 0, 3),
            (0, 0, 0),
            (5, 7, 0),
            (40, 40, 0),
            (1, 9, 0),
        ] {
            for acc in [false, true] {
                check::<f32>(
                    path,
                    false,
                    (m, n, k),
                    (RowMajor, ColMajor, RowStrided),
                    acc,
                    7,
                );
                check::<f64>(
                    path,
                    true,
                    (m, n, k),
                    (ColMajor, RowMajor, BothStrided),
                    acc,
                    8,
                );
            }
        }
    }
    // k == 0 without accumulate really zeroes C; with accumulate leaves it.
    let a: [f32; 0] = [];
    let b: [f32; 0] = [];
    let mut c = [3.0f32; 6];
    let av = MatRef {
        data: &a,
        offset: 0,
        rows: 2,
        cols: 0,
        rs: 0,
        cs: 1,
    };
    let bv = MatRef {
        data: &b,
        offset: 0,
        rows: 0,
        cols: 3,
        rs: 3,
        cs: 1,
    };
    gemm_f32(
        av,
        bv,
        MatMut {
            data: &mut c,
            offset: 0,
            rows: 2,
            cols: 3,
            rs: 3,
            cs: 1,
        },
        true,
    );
    assert_eq!(c, [3.0; 6]);
    gemm_f32(
        av,
        bv,
        MatMut {
            data: &mut c,
            offset: 0,
            rows: 2,
            cols: 3,
            rs: 3,
            cs: 1,
        },
        false,
    );
    assert_eq!(c, [0.0; 6]);
}

/// Runs a product inside a rayon pool with `threads` threads, returns C's bits.
fn run_in_pool<T: Elem>(
    threads: usize,
    path: KernelPath,
    (m, n, k): (usize, usize, usize),
    (la, lb): (Layout, Layout),
) -> Vec<T> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let mut rng = Rng(42);
    let a = Stored::<T>::new(m, k, la, &mut rng);
    let b = Stored::<T>::new(k, n, lb, &mut rng);
    let mut c = Stored::<T>::new(m, n, Layout::RowMajor, &mut rng);
    pool.install(|| T::run(Some(path), false, a.view(), b.view(), c.view_mut(), true));
    c.data
}

fn determinism<T: Elem>() {
    use Layout::*;
    // Both big enough for the threaded path; the first splits N, the second
    // M. The third, in NT, is computed transposed on one thread only.
    for shape in [(300, 333, 300), (421, 150, 517), (64, 520, 600)] {
        for path in supported_paths() {
            for layouts in [
                (RowMajor, RowMajor),
                (ColMajor, RowMajor),
                (RowMajor, ColMajor),
            ] {
                let one = run_in_pool::<T>(1, path, shape, layouts);
                let two = run_in_pool::<T>(2, path, shape, layouts);
                let three = run_in_pool::<T>(3, path, shape, layouts);
                let same = |x: &[T], y: &[T]| {
                    x.iter()
                        .zip(y)
                        .all(|(p, q)| p.to_f64().to_bits() == q.to_f64().to_bits())
                };
                assert!(
                    same(&one, &two),
                    "1 vs 2 threads differ: {path:?} {shape:?} {layouts:?}"
                );
                assert!(
                    same(&one, &three),
                    "1 vs 3 threads differ: {path:?} {shape:?} {layouts:?}"
                );
            }
        }
    }
}

#[test]
fn f32_bit_identical_across_thread_counts() {
    determinism::<f32>();
}

#[test]
fn f64_bit_identical_across_thread_counts() {
    determinism::<f64>();
}

#[test]
fn every_supported_path_is_forced_and_correct() {
    let supported = supported_paths();
    assert_eq!(supported[0], KernelPath::Scalar);
    assert!(
        supported.contains(&kernel_path()),
        "default path must be supported"
    );
    #[cfg(target_arch = "x86_64")]
    {
        assert_eq!(
            supported.contains(&KernelPath::Avx512),
            std::arch::is_x86_feature_detected!("avx512f")
        );
        let avx2 = std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma");
        assert_eq!(supported.contains(&KernelPath::Avx2), avx2);
    }
    eprintln!(
        "supported kernel paths: {supported:?}; default {:?}",
        kernel_path()
    );
    for path in supported {
        for packed in [false, true] {
            check::<f32>(
                Some(path),
                packed,
                (70, 90, 130),
                (Layout::RowMajor, Layout::RowMajor, Layout::RowMajor),
                false,
                1,
            );
            check::<f64>(
                Some(path),
                packed,
                (70, 90, 130),
                (Layout::ColMajor, Layout::RowMajor, Layout::RowMajor),
                true,
                2,
            );
        }
    }
    for name in ["scalar", "AVX2", "avx512", "avx512f", "portable"] {
        assert!(KernelPath::from_name(name).is_some(), "{name}");
    }
    assert_eq!(KernelPath::from_name("sse"), None);
}

#[test]
#[should_panic(expected = "shape mismatch")]
fn shape_mismatch_panics() {
    let x = [0.0f32; 16];
    let mut y = [0.0f32; 16];
    let a = MatRef {
        data: &x,
        offset: 0,
        rows: 2,
        cols: 3,
        rs: 3,
        cs: 1,
    };
    let b = MatRef {
        data: &x,
        offset: 0,
        rows: 2,
        cols: 2,
        rs: 2,
        cs: 1,
    };
    gemm_f32(
        a,
        b,
        MatMut {
            data: &mut y,
            offset: 0,
            rows: 2,
            cols: 2,
            rs: 2,
            cs: 1,
        },
        false,
    );
}

#[test]
#[should_panic(expected = "out of bounds")]
fn out_of_bounds_panics() {
    let x = [0.0f64; 16];
    let mut y = [0.0f64; 16];
    let a = MatRef {
        data: &x,
        offset: 0,
        rows: 4,
        cols: 4,
        rs: 4,
        cs: 1,
    };
    let b = MatRef {
        data: &x,
        offset: 1,
        rows: 4,
        cols: 4,
        rs: 4,
        cs: 1,
    };
    gemm_f64(
        a,
        b,
        MatMut {
            data: &mut y,
            offset: 0,
            rows: 4,
            cols: 4,
            rs: 4,
            cs: 1,
        },
        false,
    );
}

#[test]
#[should_panic(expected = "out of bounds")]
fn overflowing_strides_panic() {
    let x = [0.0f32; 16];
    let mut y = [0.0f32; 16];
    let a = MatRef {
        data: &x,
        offset: 0,
        rows: 3,
        cols: 2,
        rs: usize::MAX / 2 + 1,
        cs: 1,
    };
    let b = MatRef {
        data: &x,
        offset: 0,
        rows: 2,
        cols: 2,
        rs: 2,
        cs: 1,
    };
    gemm_f32(
        a,
        b,
        MatMut {
            data: &mut y,
            offset: 0,
            rows: 3,
            cols: 2,
            rs: 2,
            cs: 1,
        },
        false,
    );
}

/// `A B` (or `start + A B` with `accumulate`) on `pool`, into a row-major
/// C that holds `start`.
fn run_row_major<T: Elem>(
    pool: &rayon::ThreadPool,
    path: KernelPath,
    a: &Stored<T>,
    b: &Stored<T>,
    mut start: Vec<T>,
    accumulate: bool,
) -> Vec<T> {
    let (m, n) = (a.rows, b.cols);
    let c = MatMut {
        data: &mut start,
        offset: 0,
        rows: m,
        cols: n,
        rs: n,
        cs: 1,
    };
    pool.install(|| T::run(Some(path), false, a.view(), b.view(), c, accumulate));
    start
}

/// `got` equals `want` bit for bit and holds no NaN.
fn assert_same_bits_no_nan<T: Elem>(got: &[T], want: &[T], case: &str) {
    assert_eq!(got.len(), want.len(), "{case}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            g.to_f64().to_bits() == w.to_f64().to_bits() && !g.to_f64().is_nan(),
            "{case}: [{i}] {g:?} vs {w:?}"
        );
    }
}

/// `gemm_*_new` computes into memory it never zero-fills (debug builds
/// poison it with NaN first): on every path, thread count, split and edge
/// case it must equal, bit for bit, the same product written into a zeroed
/// buffer, and contain no NaN (inputs are finite).
fn fresh_output<T: Elem>() {
    use Layout::*;
    let shapes = [
        (0, 5, 3),
        (5, 0, 3),
        (4, 5, 0),
        (1, 40, 30),
        (40, 1, 30),
        (10, 10, 10),
        (33, 100, 17),
        (100, 257, 600),
        (200, 70, 300),
        (300, 333, 300),
        (421, 150, 517),
        (64, 300, 300),
    ];
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        for path in supported_paths() {
            for &(m, n, k) in &shapes {
                for (la, lb) in [
                    (RowMajor, RowMajor),
                    (ColMajor, RowMajor),
                    (RowMajor, ColMajor),
                    (RowStrided, RowStrided),
                ] {
                    let mut rng = Rng(7);
                    let a = Stored::<T>::new(m, k, la, &mut rng);
                    let b = Stored::<T>::new(k, n, lb, &mut rng);
                    let got = pool.install(|| T::fresh(path, a.view(), b.view()));
                    let start = vec![T::from_f64(0.0); m * n];
                    let want = run_row_major(&pool, path, &a, &b, start, false);
                    let case = format!("{path:?} {threads}t {m}x{n}x{k} {la:?} {lb:?}");
                    assert_same_bits_no_nan(&got, &want, &case);
                }
            }
        }
    }
}

/// `gemm_*_new_init` (`init + A B` into memory it never fills first, each
/// part set to `init` by the thread computing it): on every path, on pools
/// of one to three threads, through the one-thread and threaded transposed
/// routes (64 x 300 x 300 and 64 x 1024 x 640 with B column-major; 64 x
/// 4100 x 300 in two column blocks, the second unswapped), the dynamic and
/// the static splits (260 x 520 x 520 packs more than one thread's whole
/// operand) and the small paths, with `init` a bias
/// broadcast over the rows (`rs == 0`), one broadcast over the columns, a
/// row-major and a column-major matrix, it must equal, bit for bit, the
/// same product accumulated into a C that holds `init`, and contain no NaN.
fn fresh_output_init<T: Elem>() {
    use Layout::*;
    let shapes = [
        (4, 5, 0),
        (1, 40, 30),
        (40, 1, 30),
        (10, 10, 10),
        (33, 100, 17),
        (200, 70, 300),
        (421, 150, 517),
        (64, 300, 300),
        (64, 1024, 640),
    ];
    let all_ab = [
        (RowMajor, RowMajor),
        (ColMajor, RowMajor),
        (RowMajor, ColMajor),
    ];
    let all_init = [BroadcastRows, BroadcastCols, RowMajor, ColMajor];
    // The large shapes with fewer layouts, to keep the test short.
    let mut cases: Vec<_> = shapes
        .iter()
        .map(|&s| (s, &all_ab[..], &all_init[..]))
        .collect();
    let big_ab = [(ColMajor, RowMajor), (RowMajor, ColMajor)];
    let big_init = [BroadcastRows, ColMajor];
    cases.push(((260, 520, 520), &big_ab[..], &big_init[..]));
    cases.push(((64, 4100, 300), &big_ab[1..], &big_init[..]));
    for threads in [1, 2, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        for path in supported_paths() {
            for &((m, n, k), abs, inits) in &cases {
                for &(la, lb) in abs {
                    for &li in inits {
                        let mut rng = Rng(11);
                        let a = Stored::<T>::new(m, k, la, &mut rng);
                        let b = Stored::<T>::new(k, n, lb, &mut rng);
                        let init = Stored::<T>::new(m, n, li, &mut rng);
                        let got =
                            pool.install(|| T::fresh_init(path, a.view(), b.view(), init.view()));
                        let start = init.logical().into_iter().map(T::from_f64).collect();
                        let want = run_row_major(&pool, path, &a, &b, start, true);
                        let case = format!("{path:?} {threads}t {m}x{n}x{k} {la:?} {lb:?} {li:?}");
                        assert_same_bits_no_nan(&got, &want, &case);
                    }
                }
            }
        }
    }
}

#[test]
fn f32_fresh_output_with_init_equals_accumulated() {
    fresh_output_init::<f32>();
}

#[test]
fn f64_fresh_output_with_init_equals_accumulated() {
    fresh_output_init::<f64>();
}

#[test]
fn f32_fresh_output_equals_zero_filled() {
    fresh_output::<f32>();
}

#[test]
fn f64_fresh_output_equals_zero_filled() {
    fresh_output::<f64>();
}
