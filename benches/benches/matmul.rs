//! Criterion benchmarks of heft's GEMM against the `gemm` crate and
//! `matrixmultiply` (`cargo bench -p heft-benches --bench matmul`).
//!
//! Throughput is reported in elements = flops (`2 m n k`), so criterion's
//! "elem/s" reads as flop/s. Sample sizes are kept small so the whole run
//! takes a few minutes; `gemm-table` gives the compact summary instead.
//!
//! `matrixmultiply` fixes its thread count once per process from
//! `MATMUL_NUM_THREADS`; this bench sets it to 1 (unless already set), so it
//! appears only in the one-thread groups.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use heft_benches::{BenchElem, Engine, Layout, Problem};

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("rayon pool")
}

fn group<T: BenchElem>(
    c: &mut Criterion,
    name: &str,
    shapes: &[(usize, usize, usize)],
    layouts: &[Layout],
    threads: usize,
) {
    let pool = pool(threads);
    let mut g = c.benchmark_group(name);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    for &(m, n, k) in shapes {
        for &layout in layouts {
            let mut p = Problem::<T>::new(m, n, k, layout);
            g.throughput(Throughput::Elements((2 * m * n * k) as u64));
            for engine in Engine::ALL {
                if engine == Engine::MatrixMultiply && threads != 1 {
                    continue;
                }
                let id = BenchmarkId::new(engine.name(), format!("{m}x{n}x{k}/{}", layout.name()));
                g.bench_function(id, |b| pool.install(|| b.iter(|| p.run(engine, threads))));
            }
        }
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    if std::env::var_os("MATMUL_NUM_THREADS").is_none() {
        // Single-threaded matrixmultiply for the one-thread comparisons; must
        // happen before its first call reads the variable.
        std::env::set_var("MATMUL_NUM_THREADS", "1");
    }
    let squares = [(256, 256, 256), (512, 512, 512), (1024, 1024, 1024)];
    // (m, n, k) of the MLP products: batch 64, 784 -> 256 and backprop shapes.
    let mlp = [(64, 256, 784), (64, 784, 256), (784, 256, 64)];

    group::<f32>(c, "gemm_f32_1t", &squares, &Layout::ALL, 1);
    group::<f32>(c, "gemm_f32_2t", &squares[1..], &Layout::ALL, 2);
    group::<f32>(c, "mlp_f32_1t", &mlp, &Layout::ALL, 1);
    group::<f32>(c, "mlp_f32_2t", &mlp, &[Layout::NN], 2);
    group::<f64>(c, "gemm_f64_1t", &squares, &[Layout::NN], 1);
    group::<f64>(c, "gemm_f64_2t", &squares[1..], &[Layout::NN], 2);

    // The naive triple loop, for scale, on small sizes only.
    let mut g = c.benchmark_group("naive_vs_heft_f32");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_secs(1));
    let one = pool(1);
    for s in [64usize, 128] {
        let mut p = Problem::<f32>::new(s, s, s, Layout::NN);
        g.throughput(Throughput::Elements((2 * s * s * s) as u64));
        g.bench_function(BenchmarkId::new("naive", s), |b| b.iter(|| p.run_naive()));
        g.bench_function(BenchmarkId::new("heft", s), |b| {
            one.install(|| b.iter(|| p.run(Engine::Heft, 1)))
        });
    }
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
}
