//! One SGD training step of the benchmark MLP: 784-256-128-10, ReLU,
//! softmax cross-entropy, batch 64, f32 (forward, backward, update),
//! on 1 and 2 threads. Throughput is in steps.

// `criterion_group!` generates an undocumented function.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use heft_benches::mlp::{BenchMlp, BATCH};

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("train_step");
    g.throughput(Throughput::Elements(1));
    for threads in [1usize, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let mut m = BenchMlp::new(0);
        g.bench_function(format!("mlp_784_256_128_10_b{BATCH}_sgd_{threads}t"), |b| {
            pool.install(|| b.iter(|| m.step()))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
