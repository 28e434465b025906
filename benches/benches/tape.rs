//! Per-op overhead of the tape: a chain of 1,000 ops on 1-element tensors,
//! forward plus backward. Criterion reports time per chain; divide by 1,000
//! for the time per op (the `Throughput::Elements(1000)` line gives ops/s).

// `criterion_group!` generates an undocumented function.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use heft::prelude::*;

const OPS: usize = 1000;

fn chain(x0: &Tensor, c0: &Tensor) -> f32 {
    let tape = Tape::new();
    let x = tape.leaf(x0.clone());
    let c = tape.constant(c0.clone());
    let mut y = x.clone();
    // 250 rounds of 4 ops: binary with a leaf, binary with a constant, scalar, unary.
    for _ in 0..OPS / 4 {
        y = y.mul(&x).unwrap();
        y = y.add(&c).unwrap();
        y = y.mul_scalar(0.5).unwrap();
        y = y.tanh().unwrap();
    }
    let g = tape.backward(&y).unwrap();
    g.get(&x).unwrap().item::<f32>().unwrap()
}

fn bench(c: &mut Criterion) {
    let x = Tensor::from_vec(vec![0.7f32], &[1]).unwrap();
    let k = Tensor::from_vec(vec![0.1f32], &[1]).unwrap();
    let mut g = c.benchmark_group("tape");
    g.throughput(Throughput::Elements(OPS as u64));
    g.bench_function("chain_1000_ops_forward_backward", |b| {
        b.iter(|| chain(&x, &k))
    });
    g.bench_function("chain_1000_ops_forward_only", |b| {
        b.iter(|| {
            let tape = Tape::new();
            let xv = tape.leaf(x.clone());
            let cv = tape.constant(k.clone());
            let mut y = xv.clone();
            for _ in 0..OPS / 4 {
                y = y
                    .mul(&xv)
                    .unwrap()
                    .add(&cv)
                    .unwrap()
                    .mul_scalar(0.5)
                    .unwrap()
                    .tanh()
                    .unwrap();
            }
            y.value().item::<f32>().unwrap()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
