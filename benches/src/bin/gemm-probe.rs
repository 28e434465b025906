//! One-thread GEMM probe for tuning: heft against the `gemm` crate on a few
//! shapes, interleaved, medians; prints heft/gemm per shape so two builds can
//! be compared through machine noise (run them alternately).
//!
//! `gemm-probe [f32|f64] [secs-per-shape] [SIZExLAYOUT ...]`, e.g.
//! `gemm-probe f32 1.0 512NN 1024NN 1024NT`. With `--loop SECS` it runs only
//! heft on the first shape for that long (for `perf record`). `--threads N`
//! runs both engines on a rayon pool of N threads (default 1).

use heft_benches::{median, time_secs, BenchElem, Engine, Layout, Problem};

fn parse_shape(s: &str) -> (usize, usize, usize, Layout) {
    let (num, lay) = s.split_at(s.len() - 2);
    let layout = match lay {
        "NN" => Layout::NN,
        "TN" => Layout::TN,
        "NT" => Layout::NT,
        _ => panic!("layout must be NN, TN or NT: {s}"),
    };
    let dims: Vec<usize> = num.split('x').map(|d| d.parse().expect("size")).collect();
    match dims[..] {
        [s] => (s, s, s, layout),
        [m, n, k] => (m, n, k, layout),
        _ => panic!("shape is S or MxNxK: {s}"),
    }
}

fn run<T: BenchElem>(secs: f64, shapes: &[String], loop_secs: Option<f64>, threads: usize) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("rayon pool");
    pool.install(|| {
        if let Some(ls) = loop_secs {
            let (m, n, k, lay) = parse_shape(&shapes[0]);
            let mut p = Problem::<T>::new(m, n, k, lay);
            let t0 = std::time::Instant::now();
            let mut count = 0usize;
            while t0.elapsed().as_secs_f64() < ls {
                p.run(Engine::Heft, threads);
                count += 1;
            }
            let g = p.flops() * count as f64 / t0.elapsed().as_secs_f64() / 1e9;
            println!("{} heft loop: {g:.1} GFLOP/s", shapes[0]);
            return;
        }
        for s in shapes {
            let (m, n, k, lay) = parse_shape(s);
            let mut p = Problem::<T>::new(m, n, k, lay);
            p.run(Engine::Heft, threads);
            p.run(Engine::GemmCrate, threads);
            let est = time_secs(|| p.run(Engine::Heft, threads)).max(1e-6);
            let reps = ((secs / 2.0 / est) as usize).clamp(5, 2001);
            let (mut th, mut tg) = (vec![], vec![]);
            for _ in 0..reps {
                // Each engine is timed right after an untimed run of its own.
                p.run(Engine::Heft, threads);
                th.push(time_secs(|| p.run(Engine::Heft, threads)));
                // Do not let heft's lingering helpers compete with gemm's threads.
                heft_tensor::kernels::stop_lingering();
                p.run(Engine::GemmCrate, threads);
                tg.push(time_secs(|| p.run(Engine::GemmCrate, threads)));
            }
            let f = p.flops();
            let (h, g) = (f / median(&mut th) / 1e9, f / median(&mut tg) / 1e9);
            println!(
                "{} {s:>14} heft {h:7.1} gemm {g:7.1} ratio {:.3}",
                T::NAME,
                h / g
            );
        }
    });
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut loop_secs = None;
    if let Some(i) = args.iter().position(|a| a == "--loop") {
        loop_secs = Some(args[i + 1].parse().expect("--loop SECS"));
        args.drain(i..i + 2);
    }
    let mut threads = 1;
    if let Some(i) = args.iter().position(|a| a == "--threads") {
        threads = args[i + 1].parse().expect("--threads N");
        args.drain(i..i + 2);
    }
    let dtype = args.first().cloned().unwrap_or_else(|| "f32".into());
    let secs: f64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let mut shapes: Vec<String> = args.iter().skip(2).cloned().collect();
    if shapes.is_empty() {
        shapes = vec!["512NN".into(), "1024NN".into()];
    }
    match dtype.as_str() {
        "f64" => run::<f64>(secs, &shapes, loop_secs, threads),
        _ => run::<f32>(secs, &shapes, loop_secs, threads),
    }
}
