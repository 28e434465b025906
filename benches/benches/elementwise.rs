//! Elementwise throughput in GB/s (bytes read + written), against a
//! `memcpy` baseline of the same size measured in the same run.
//! `cargo bench -p heft-benches --bench elementwise` (reductions: the
//! `reduce` bench).

// `criterion_group!` generates an undocumented function.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use heft_tensor::{Conv2dParams, DType, Tensor};
use rand::SeedableRng;

fn bench(c: &mut Criterion) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    for &n in &[1usize << 16, 1 << 22] {
        let a = Tensor::randn(&[n], 0.0, 1.0, DType::F32, &mut rng).unwrap();
        let b = Tensor::randn(&[n], 0.0, 1.0, DType::F32, &mut rng).unwrap();
        let m = a.reshape(&[n / 256, 256]).unwrap();
        let row = b.narrow(0, 0, 256).unwrap();
        let bytes = (n * 4) as u64;
        let mut g = c.benchmark_group(format!("elementwise_{n}"));
        g.throughput(Throughput::Bytes(2 * bytes));
        let src = a.as_slice::<f32>().unwrap().to_vec();
        let mut dst = vec![0f32; n];
        g.bench_function("memcpy", |bch| bch.iter(|| dst.copy_from_slice(&src)));
        g.bench_function("relu", |bch| bch.iter(|| a.relu().unwrap()));
        g.bench_function("exp", |bch| bch.iter(|| a.exp().unwrap()));
        g.bench_function("mul_scalar", |bch| bch.iter(|| a.mul_scalar(1.5).unwrap()));
        g.bench_function("transpose_copy", |bch| {
            bch.iter(|| m.t().unwrap().contiguous())
        });
        g.throughput(Throughput::Bytes(3 * bytes));
        g.bench_function("add", |bch| bch.iter(|| a.add(&b).unwrap()));
        // A broadcast operand: the strided (row by row) path.
        g.throughput(Throughput::Bytes(2 * bytes));
        g.bench_function("add_row", |bch| bch.iter(|| m.add(&row).unwrap()));
        if n <= 1 << 16 {
            // im2col for a 3x3 convolution (padding 1) of 64x64 images:
            // writes nine times what it reads.
            let img = a.reshape(&[n / 4096, 1, 64, 64]).unwrap();
            let p = Conv2dParams {
                stride: (1, 1),
                padding: (1, 1),
                dilation: (1, 1),
            };
            g.throughput(Throughput::Bytes(10 * bytes));
            g.bench_function("unfold_3x3", |bch| {
                bch.iter(|| img.unfold2d((3, 3), p, 0.0).unwrap())
            });
        }
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(std::time::Duration::from_secs(1)).warm_up_time(std::time::Duration::from_millis(300));
    targets = bench
}
criterion_main!(benches);
