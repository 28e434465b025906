//! Reduction throughput in GB/s (bytes read), against two baselines of the
//! same size measured in the same run: a `memcpy` (read + write, so its
//! GB/s counts the bytes read once) and a plain read loop (a scalar max fold).
//! `cargo bench -p heft-benches --bench reduce`; the group `softmax_64x10`
//! times a softmax over short rows (a classifier's logits).

// `criterion_group!` generates an undocumented function.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use heft_tensor::{DType, Tensor};
use rand::SeedableRng;

fn bench(c: &mut Criterion) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    for &n in &[1usize << 16, 1 << 22] {
        let a = Tensor::randn(&[n], 0.0, 1.0, DType::F32, &mut rng).unwrap();
        let m = a.reshape(&[n / 256, 256]).unwrap();
        let bytes = (n * 4) as u64;
        let src = a.as_slice::<f32>().unwrap().to_vec();
        let mut dst = vec![0f32; n];
        let mut g = c.benchmark_group(format!("reduce_{n}"));
        g.throughput(Throughput::Bytes(bytes));
        g.bench_function("memcpy", |bch| bch.iter(|| dst.copy_from_slice(&src)));
        g.bench_function("read_baseline_fold_max", |bch| {
            bch.iter(|| src.iter().copied().fold(0f32, f32::max))
        });
        g.bench_function("sum_all", |bch| bch.iter(|| a.sum_all().unwrap()));
        g.bench_function("max_all", |bch| bch.iter(|| a.max(&[], false).unwrap()));
        g.bench_function("sum_rows", |bch| bch.iter(|| m.sum(&[1], false).unwrap()));
        g.bench_function("sum_cols", |bch| bch.iter(|| m.sum(&[0], false).unwrap()));
        g.bench_function("softmax_rows", |bch| bch.iter(|| m.softmax(-1).unwrap()));
        g.finish();
    }
    // Short rows: the logits of a 10-class classifier at batch 64, as in
    // the training step's loss.
    let logits = Tensor::randn(&[64, 10], 0.0, 1.0, DType::F32, &mut rng).unwrap();
    let mut g = c.benchmark_group("softmax_64x10");
    g.throughput(Throughput::Bytes(64 * 10 * 4));
    g.bench_function("softmax", |bch| bch.iter(|| logits.softmax(-1).unwrap()));
    g.bench_function("log_softmax", |bch| {
        bch.iter(|| logits.log_softmax(-1).unwrap())
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(std::time::Duration::from_secs(1)).warm_up_time(std::time::Duration::from_millis(300));
    targets = bench
}
criterion_main!(benches);
