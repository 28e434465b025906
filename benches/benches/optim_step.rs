//! One optimizer step over the benchmark MLP's parameters (784-256-128-10:
//! 235,146 f32 values in six tensors, with fixed gradients), on 1 and 2
//! threads: plain SGD, SGD with momentum, and Adam. Throughput is in
//! parameters; every step reads and writes the parameters and each state
//! buffer once and reads the gradients once, so these loops are bound by
//! cache and memory bandwidth more than by arithmetic.

// `criterion_group!` generates an undocumented function.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use heft::optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};
use heft::prelude::*;
use rand::SeedableRng;

/// The MLP's parameters with one fixed gradient each.
fn params() -> (ParamStore, ParamGrads, u64) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut store = ParamStore::new();
    let mut grads = ParamGrads::new(6);
    let mut count = 0;
    for (i, (out, inp)) in [(256usize, 784usize), (128, 256), (10, 128)]
        .into_iter()
        .enumerate()
    {
        for (name, shape, kind) in [
            (format!("fc{i}.weight"), vec![out, inp], ParamKind::Weight),
            (format!("fc{i}.bias"), vec![out], ParamKind::Bias),
        ] {
            let v = Tensor::randn(&shape, 0.0, 0.1, DType::F32, &mut rng).expect("valid");
            let g = Tensor::randn(&shape, 0.0, 0.01, DType::F32, &mut rng).expect("valid");
            count += v.numel() as u64;
            let id = store.add(&name, v, kind).expect("fresh name");
            grads.set(id, g);
        }
    }
    (store, grads, count)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("optim_step");
    for threads in [1usize, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let optimizers: [(&str, Box<dyn Optimizer + Send>); 3] = [
            ("sgd", Box::new(Sgd::new(SgdConfig::new(1e-3)).unwrap())),
            (
                "sgd_momentum",
                Box::new(Sgd::new(SgdConfig::new(1e-3).momentum(0.9)).unwrap()),
            ),
            ("adam", Box::new(Adam::new(AdamConfig::new(1e-3)).unwrap())),
        ];
        for (name, mut opt) in optimizers {
            let (mut store, grads, count) = params();
            g.throughput(Throughput::Elements(count));
            g.bench_function(format!("mlp_235k_{name}_{threads}t"), |b| {
                pool.install(|| b.iter(|| opt.step(&mut store, &grads).unwrap()))
            });
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
