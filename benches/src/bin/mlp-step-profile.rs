//! Profiling driver: runs the benchmark MLP training step (784-256-128-10,
//! batch 64, f32) in a loop on a rayon pool of a given size, for `perf record`.
//!
//! `cargo run --release -p heft-benches --bin mlp-step-profile -- [steps] [threads] [main|batches]`
//!
//! With `main` the steps run on the main thread with a global pool of
//! `threads` threads (as a program that never enters the pool would),
//! instead of inside one `pool.install`. With `batches` each step is its own
//! `pool.install` (as a training loop that installs per step does, and as
//! criterion installs per sample), so the job lands on whichever pool
//! thread is free, often one still spinning after the last product.
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
    let on_main = args.get(3).map(String::as_str) == Some("main");
    let mut m = BenchMlp::new(0);
    let mut times = Vec::with_capacity(steps);
    let mut run = || {
        for _ in 0..steps {
            let t = Instant::now();
            std::hint::black_box(m.step());
            times.push(t.elapsed().as_secs_f64());
        }
    };
    if on_main {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
            .expect("global rayon pool");
        run();
    } else if args.get(3).map(String::as_str) == Some("batches") {
        // One `install` per step (criterion: per sample).
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("rayon pool");
        for _ in 0..steps {
            let t = Instant::now();
            pool.install(|| std::hint::black_box(m.step()));
            times.push(t.elapsed().as_secs_f64());
        }
    } else {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("rayon pool")
            .install(run);
    }
    let tail = &mut times[steps / 2..];
    let mean = tail.iter().sum::<f64>() / tail.len() as f64;
    println!(
        "threads={threads}{} steps={steps} median step {:.1} us, mean {:.1} us",
        if on_main { " (on main)" } else { "" },
        median(tail) * 1e6,
        mean * 1e6
    );
}
