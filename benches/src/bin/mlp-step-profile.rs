//! Profiling driver: runs the benchmark MLP training step (784-256-128-10,
//! batch 64, f32) in a loop on a rayon pool of a given size, for `perf record`.
//!
//! `cargo run --release -p heft-benches --bin mlp-step-profile -- [steps] [threads]`
//!
//! Prints the median and the mean step time of the last half of the steps
//! (criterion's `train_step` reports a mean, which slow outliers raise).

use heft_benches::median;
use heft_benches::mlp::BenchMlp;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let steps: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(2000);
    let threads: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("rayon pool");
    let mut m = BenchMlp::new(0);
    let mut times = Vec::with_capacity(steps);
    pool.install(|| {
        for _ in 0..steps {
            let t = Instant::now();
            std::hint::black_box(m.step());
            times.push(t.elapsed().as_secs_f64());
        }
    });
    let tail = &mut times[steps / 2..];
    let mean = tail.iter().sum::<f64>() / tail.len() as f64;
    println!(
        "threads={threads} steps={steps} median step {:.1} us, mean {:.1} us",
        median(tail) * 1e6,
        mean * 1e6
    );
}
