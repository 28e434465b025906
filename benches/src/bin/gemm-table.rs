//! Prints one table of GEMM throughput: heft vs the `gemm` crate vs
//! `matrixmultiply`, as GFLOP/s medians, plus heft's share of the measured
//! single-core FMA peak.
//!
//! `cargo run --release -p heft-benches --bin gemm-table [-- --quick] [--mlp-step]`
//!
//! `--mlp-step` runs only the eight products of one training step of the
//! benchmark MLP (784-256-128-10, batch 64), in the layouts the step uses.
//!
//! `matrixmultiply` reads its thread count once per process from
//! `MATMUL_NUM_THREADS`, so the table runs each thread count in a child
//! process of this binary with that variable set.

use std::process::Command;
use std::time::Duration;

use heft_benches::{median, time_secs, BenchElem, Engine, Layout, Problem};
use heft_tensor::kernels::peak::measure_fma_peak_gflops;
use heft_tensor::kernels::{kernel_path, stop_lingering};

/// A measured row, as exchanged between child and parent.
struct Row {
    dtype: String,
    threads: usize,
    shape: (usize, usize, usize),
    layout: String,
    gflops: [f64; 3],
    square: bool,
}

fn measure<T: BenchElem>(
    m: usize,
    n: usize,
    k: usize,
    layout: Layout,
    threads: usize,
    quick: bool,
) -> [f64; 3] {
    let mut p = Problem::<T>::new(m, n, k, layout);
    // Warm up every engine (buffers, thread pools, page faults).
    for e in Engine::ALL {
        p.run(e, threads);
    }
    let est = time_secs(|| p.run(Engine::Heft, threads)).max(1e-6);
    let budget = if quick { 0.15 } else { 0.6 };
    let reps = ((budget / est) as usize).clamp(if quick { 3 } else { 5 }, 41);
    let mut times = [vec![], vec![], vec![]];
    // Interleave the engines so machine noise hits all of them alike. Each
    // timed run follows an untimed run of the same engine, so every engine
    // is timed in its own steady state (its threads as its last call left
    // them), not in whatever state the previous engine left the cores.
    for _ in 0..reps {
        for (i, e) in Engine::ALL.into_iter().enumerate() {
            p.run(e, threads);
            times[i].push(time_secs(|| p.run(e, threads)));
            // heft's helpers would otherwise spin for a millisecond after a
            // threaded product, taking a core from the next engine's threads.
            stop_lingering();
        }
    }
    let flops = p.flops();
    times.map(|mut t| flops / median(&mut t) / 1e9)
}

/// The products of one step of the benchmark MLP (batch 64), as
/// `((m, n, k), layout)`: forward `x W^T` (NT), backward `dX = dY W` (NN) and
/// `dW = dY^T x` (TN).
const MLP_STEP: [((usize, usize, usize), Layout); 8] = [
    ((64, 256, 784), Layout::NT),
    ((64, 128, 256), Layout::NT),
    ((64, 10, 128), Layout::NT),
    ((64, 128, 10), Layout::NN),
    ((64, 256, 128), Layout::NN),
    ((10, 128, 64), Layout::TN),
    ((128, 256, 64), Layout::TN),
    ((256, 784, 64), Layout::TN),
];

fn child(threads: usize, quick: bool, mlp_step: bool) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("rayon pool");
    let squares: &[usize] = if quick {
        &[256, 512, 1024]
    } else {
        &[256, 512, 1024, 2048]
    };
    let mlp = [(64, 256, 784), (64, 784, 256), (784, 256, 64)]; // (m, n, k)
    let emit = |dtype: &str,
                (m, n, k): (usize, usize, usize),
                layout: Layout,
                g: [f64; 3],
                square: bool| {
        println!(
            "ROW\t{dtype}\t{threads}\t{m}\t{n}\t{k}\t{}\t{:.3}\t{:.3}\t{:.3}\t{}",
            layout.name(),
            g[0],
            g[1],
            g[2],
            square as u8
        );
    };
    if mlp_step {
        pool.install(|| {
            for ((m, n, k), layout) in MLP_STEP {
                emit(
                    "f32",
                    (m, n, k),
                    layout,
                    measure::<f32>(m, n, k, layout, threads, quick),
                    false,
                );
            }
        });
        return;
    }
    pool.install(|| {
        for &s in squares {
            if threads > 1 && s < 512 {
                continue;
            }
            for layout in Layout::ALL {
                emit(
                    "f32",
                    (s, s, s),
                    layout,
                    measure::<f32>(s, s, s, layout, threads, quick),
                    true,
                );
            }
        }
        for (m, n, k) in mlp {
            for layout in Layout::ALL {
                emit(
                    "f32",
                    (m, n, k),
                    layout,
                    measure::<f32>(m, n, k, layout, threads, quick),
                    false,
                );
            }
        }
        for &s in squares {
            if threads > 1 && s < 512 {
                continue;
            }
            let layouts: &[Layout] = if quick { &[Layout::NN] } else { &Layout::ALL };
            for &layout in layouts {
                emit(
                    "f64",
                    (s, s, s),
                    layout,
                    measure::<f64>(s, s, s, layout, threads, quick),
                    true,
                );
            }
        }
    });
}

fn parse(line: &str) -> Option<Row> {
    let f: Vec<&str> = line.strip_prefix("ROW\t")?.split('\t').collect();
    if f.len() != 10 {
        return None;
    }
    Some(Row {
        dtype: f[0].to_string(),
        threads: f[1].parse().ok()?,
        shape: (f[2].parse().ok()?, f[3].parse().ok()?, f[4].parse().ok()?),
        layout: f[5].to_string(),
        gflops: [f[6].parse().ok()?, f[7].parse().ok()?, f[8].parse().ok()?],
        square: f[9] == "1",
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let mlp_step = args.iter().any(|a| a == "--mlp-step");
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let threads = args
            .get(i + 1)
            .and_then(|t| t.parse().ok())
            .expect("--child N");
        child(threads, quick, mlp_step);
        return;
    }

    let dur = Duration::from_millis(if quick { 300 } else { 1000 });
    let peak32 = measure_fma_peak_gflops(false, dur);
    let peak64 = measure_fma_peak_gflops(true, dur);
    println!("kernel path: {}", kernel_path());
    println!("single-core FMA peak: f32 {peak32:.1} GFLOP/s, f64 {peak64:.1} GFLOP/s");
    println!(
        "cells: GFLOP/s, median of interleaved runs; %peak = heft / (threads x single-core peak)"
    );
    println!();

    let exe = std::env::current_exe().expect("current exe");
    let mut rows = Vec::new();
    for threads in [1usize, 2] {
        let mut cmd = Command::new(&exe);
        cmd.arg("--child")
            .arg(threads.to_string())
            .env("MATMUL_NUM_THREADS", threads.to_string());
        if quick {
            cmd.arg("--quick");
        }
        if mlp_step {
            cmd.arg("--mlp-step");
        }
        let out = cmd.output().expect("run child");
        if !out.status.success() {
            eprintln!(
                "child with {threads} threads failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::process::exit(1);
        }
        rows.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(parse),
        );
    }

    println!(
        "{:<5} {:>3} {:>16} {:<3} {:>9} {:>9} {:>9} {:>7} {:>10}",
        "dtype", "thr", "m x n x k", "lay", "heft", "gemm", "mmul", "%peak", "heft/best"
    );
    let mut min_ratio = f64::INFINITY;
    for r in &rows {
        let peak = if r.dtype == "f64" { peak64 } else { peak32 } * r.threads as f64;
        let best_other = r.gflops[1].max(r.gflops[2]);
        let ratio = r.gflops[0] / best_other;
        if r.square && r.dtype == "f32" && r.threads == 1 {
            min_ratio = min_ratio.min(ratio);
        }
        let (m, n, k) = r.shape;
        println!(
            "{:<5} {:>3} {:>16} {:<3} {:>9.1} {:>9.1} {:>9.1} {:>6.1}% {:>10.2}",
            r.dtype,
            r.threads,
            format!("{m}x{n}x{k}"),
            r.layout,
            r.gflops[0],
            r.gflops[1],
            r.gflops[2],
            100.0 * r.gflops[0] / peak,
            ratio
        );
    }
    println!();
    println!("heft_vs_best_other_min_ratio={min_ratio:.2}");
}
