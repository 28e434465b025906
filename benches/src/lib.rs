//! Shared pieces of heft's benchmarks: GEMM problems in the layouts backprop
//! uses, runners for heft and for the engines we compare against (the `gemm`
//! crate and `matrixmultiply`), and small timing helpers.
//!
//! The FMA-peak measurement lives in heft-tensor
//! ([`heft_tensor::kernels::peak::measure_fma_peak_gflops`]) so that the CLI
//! can reuse it.

use std::time::Instant;

use heft_tensor::kernels::{gemm_f32, gemm_f64, MatMut, MatRef};

/// Operand layouts of `C = op(A) op(B)`; C is always row-major.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `A B`, both row-major.
    NN,
    /// `A^T B`: A is stored `k x m` row-major and read as a transposed view.
    TN,
    /// `A B^T`: B is stored `n x k` row-major and read as a transposed view.
    NT,
}

impl Layout {
    /// All three layouts.
    pub const ALL: [Layout; 3] = [Layout::NN, Layout::TN, Layout::NT];

    /// Two-letter name.
    pub fn name(self) -> &'static str {
        match self {
            Layout::NN => "NN",
            Layout::TN => "TN",
            Layout::NT => "NT",
        }
    }
}

/// The engines compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// heft-tensor's `gemm_f32` / `gemm_f64`.
    Heft,
    /// The `gemm` crate (0.19, x86-v4 feature).
    GemmCrate,
    /// The `matrixmultiply` crate (threads from `MATMUL_NUM_THREADS`).
    MatrixMultiply,
}

impl Engine {
    /// All engines, heft first.
    pub const ALL: [Engine; 3] = [Engine::Heft, Engine::GemmCrate, Engine::MatrixMultiply];

    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Heft => "heft",
            Engine::GemmCrate => "gemm",
            Engine::MatrixMultiply => "matrixmultiply",
        }
    }
}

/// Element types benchmarked.
pub trait BenchElem: Copy + Default + Send + Sync + 'static {
    /// Name for tables.
    const NAME: &'static str;
    /// Converts a small test value.
    fn from_f64(x: f64) -> Self;
    /// heft's product.
    fn heft(a: MatRef<'_, Self>, b: MatRef<'_, Self>, c: MatMut<'_, Self>);
    /// `matrixmultiply`'s product on raw strided pointers.
    ///
    /// # Safety
    /// The pointers and strides describe valid `m x k`, `k x n` and `m x n`
    /// matrices, C not aliasing A or B.
    unsafe fn mm(
        m: usize,
        k: usize,
        n: usize,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    );
    /// One and zero.
    fn one_zero() -> (Self, Self);
}

impl BenchElem for f32 {
    const NAME: &'static str = "f32";
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn heft(a: MatRef<'_, Self>, b: MatRef<'_, Self>, c: MatMut<'_, Self>) {
        gemm_f32(a, b, c, false)
    }
    unsafe fn mm(
        m: usize,
        k: usize,
        n: usize,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    ) {
        // SAFETY: forwarded from the caller's contract.
        unsafe { matrixmultiply::sgemm(m, k, n, 1.0, a, rsa, csa, b, rsb, csb, 0.0, c, rsc, csc) }
    }
    fn one_zero() -> (Self, Self) {
        (1.0, 0.0)
    }
}

impl BenchElem for f64 {
    const NAME: &'static str = "f64";
    fn from_f64(x: f64) -> Self {
        x
    }
    fn heft(a: MatRef<'_, Self>, b: MatRef<'_, Self>, c: MatMut<'_, Self>) {
        gemm_f64(a, b, c, false)
    }
    unsafe fn mm(
        m: usize,
        k: usize,
        n: usize,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    ) {
        // SAFETY: forwarded from the caller's contract.
        unsafe { matrixmultiply::dgemm(m, k, n, 1.0, a, rsa, csa, b, rsb, csb, 0.0, c, rsc, csc) }
    }
    fn one_zero() -> (Self, Self) {
        (1.0, 0.0)
    }
}

/// One GEMM problem `C (m x n) = op(A) (m x k) * op(B) (k x n)` with its buffers.
pub struct Problem<T> {
    /// Rows of C.
    pub m: usize,
    /// Columns of C.
    pub n: usize,
    /// Inner dimension.
    pub k: usize,
    /// Operand layout.
    pub layout: Layout,
    a: Vec<T>,
    b: Vec<T>,
    c: Vec<T>,
    // (rs, cs) of the logical A (m x k) and B (k x n) views.
    a_strides: (usize, usize),
    b_strides: (usize, usize),
}

impl<T: BenchElem> Problem<T> {
    /// Allocates and fills a problem with deterministic values in [-1, 1].
    pub fn new(m: usize, n: usize, k: usize, layout: Layout) -> Self {
        let fill = |len: usize, seed: usize| -> Vec<T> {
            (0..len)
                .map(|i| T::from_f64(((i * 7919 + seed * 104_729) % 2001) as f64 / 1000.0 - 1.0))
                .collect()
        };
        let a_strides = if layout == Layout::TN { (1, m) } else { (k, 1) };
        let b_strides = if layout == Layout::NT { (1, k) } else { (n, 1) };
        Problem {
            m,
            n,
            k,
            layout,
            a: fill(m * k, 1),
            b: fill(k * n, 2),
            c: vec![T::default(); m * n],
            a_strides,
            b_strides,
        }
    }

    /// Flops of one product (`2 m n k`).
    pub fn flops(&self) -> f64 {
        2.0 * self.m as f64 * self.n as f64 * self.k as f64
    }

    /// Runs one product with `engine`; `threads` matters for the `gemm`
    /// crate (heft and matrixmultiply take theirs from the rayon pool and
    /// `MATMUL_NUM_THREADS`).
    pub fn run(&mut self, engine: Engine, threads: usize) {
        let (m, n, k) = (self.m, self.n, self.k);
        let (ars, acs) = self.a_strides;
        let (brs, bcs) = self.b_strides;
        match engine {
            Engine::Heft => {
                let a = MatRef {
                    data: &self.a,
                    offset: 0,
                    rows: m,
                    cols: k,
                    rs: ars,
                    cs: acs,
                };
                let b = MatRef {
                    data: &self.b,
                    offset: 0,
                    rows: k,
                    cols: n,
                    rs: brs,
                    cs: bcs,
                };
                let c = MatMut {
                    data: &mut self.c,
                    offset: 0,
                    rows: m,
                    cols: n,
                    rs: n,
                    cs: 1,
                };
                T::heft(a, b, c);
            }
            Engine::GemmCrate => {
                let par = if threads > 1 {
                    gemm::Parallelism::Rayon(threads)
                } else {
                    gemm::Parallelism::None
                };
                let (one, zero) = T::one_zero();
                // SAFETY: the buffers hold m*k, k*n and m*n elements and the
                // strides describe in-bounds views of them; C is distinct.
                unsafe {
                    gemm::gemm(
                        m,
                        n,
                        k,
                        self.c.as_mut_ptr(),
                        1,
                        n as isize,
                        false,
                        self.a.as_ptr(),
                        acs as isize,
                        ars as isize,
                        self.b.as_ptr(),
                        bcs as isize,
                        brs as isize,
                        zero,
                        one,
                        false,
                        false,
                        false,
                        par,
                    )
                }
            }
            Engine::MatrixMultiply => {
                // SAFETY: as above.
                unsafe {
                    T::mm(
                        m,
                        k,
                        n,
                        self.a.as_ptr(),
                        ars as isize,
                        acs as isize,
                        self.b.as_ptr(),
                        brs as isize,
                        bcs as isize,
                        self.c.as_mut_ptr(),
                        n as isize,
                        1,
                    )
                }
            }
        }
    }

    /// Naive triple loop (row-major indices through the strides), for scale.
    pub fn run_naive(&mut self)
    where
        T: std::ops::Add<Output = T> + std::ops::Mul<Output = T>,
    {
        let (ars, acs) = self.a_strides;
        let (brs, bcs) = self.b_strides;
        for i in 0..self.m {
            for j in 0..self.n {
                let mut s = T::default();
                for p in 0..self.k {
                    s = s + self.a[i * ars + p * acs] * self.b[p * brs + j * bcs];
                }
                self.c[i * self.n + j] = s;
            }
        }
    }

    /// The output of the last run.
    pub fn c(&self) -> &[T] {
        &self.c
    }
}

/// Median of a non-empty sample (sorts it).
pub fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        0.5 * (xs[n / 2 - 1] + xs[n / 2])
    }
}

/// Seconds taken by `f`.
pub fn time_secs(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}
pub mod mlp;
