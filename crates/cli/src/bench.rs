//! `heft bench`: heft's own kernels on this machine.
//!
//! * `matmul`: f32 GEMM GFLOP/s per size and layout (`NN` = `A B`,
//!   `TN` = `A^T B`, `NT` = `A B^T`, the three products backprop runs),
//!   against the FMA peak measured on the spot
//!   (`heft_tensor::kernels::peak`, one core, times the thread count).
//! * `ops`: elementwise and reduction throughput in GB/s (bytes read plus
//!   bytes written) on 4M-element f32 tensors.
//! * `train`: steps/s of the benchmark MLP (784-256-128-10, ReLU, softmax
//!   cross-entropy, batch 64, f32), one step = forward + backward + SGD update.
//!
//! Each measurement keeps the best of repeated runs within a short time
//! budget, which filters out interruptions on a shared machine.

use crate::error::Result;
use clap::{Args, ValueEnum};
use heft::autograd::Tape;
use heft::nn::{loss, Ctx, Mode, Module, ParamStore};
use heft::optim::{Optimizer, Sgd, SgdConfig};
use heft::tensor::kernels::{self, gemm_f32, MatMut, MatRef};
use heft::tensor::{DType, Tensor};
use rand::SeedableRng;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// What to benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Which {
    /// f32 matrix products.
    Matmul,
    /// Elementwise ops and reductions.
    Ops,
    /// Training steps of an MLP.
    Train,
}

/// Options of `heft bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// What to run (default: all three).
    #[arg(value_enum)]
    pub which: Option<Which>,
    /// Square matrix sizes for `matmul`, comma-separated.
    #[arg(long, default_value = "64,128,256,512", value_name = "N,N,...")]
    pub sizes: String,
    /// Seconds per measurement (each size/layout, op, or the training run).
    #[arg(long, default_value_t = 0.15, value_name = "SECONDS")]
    pub budget: f64,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Best seconds of `f` over repeated runs for about `budget` (at least 3 runs, after one warm-up).
fn best_time(budget: Duration, mut f: impl FnMut()) -> f64 {
    f();
    let start = Instant::now();
    let mut best = f64::INFINITY;
    let mut runs = 0;
    while runs < 3 || start.elapsed() < budget {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
        runs += 1;
    }
    best
}

fn fill(n: usize, seed: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919 + seed * 104_729) % 2001) as f32 / 1000.0 - 1.0)
        .collect()
}

fn matmul(sizes: &[usize], budget: Duration, peak: f64) -> Vec<Value> {
    let mut rows = Vec::new();
    for &s in sizes {
        let (m, n, k) = (s, s, s);
        let a = fill(m * k, 1);
        let b = fill(k * n, 2);
        let mut c = vec![0f32; m * n];
        for layout in ["NN", "TN", "NT"] {
            // A is m x k; TN reads a k x m row-major buffer transposed. B likewise for NT.
            let (ars, acs) = if layout == "TN" { (1, m) } else { (k, 1) };
            let (brs, bcs) = if layout == "NT" { (1, k) } else { (n, 1) };
            let secs = best_time(budget, || {
                let av = MatRef {
                    data: &a,
                    offset: 0,
                    rows: m,
                    cols: k,
                    rs: ars,
                    cs: acs,
                };
                let bv = MatRef {
                    data: &b,
                    offset: 0,
                    rows: k,
                    cols: n,
                    rs: brs,
                    cs: bcs,
                };
                let cv = MatMut {
                    data: &mut c,
                    offset: 0,
                    rows: m,
                    cols: n,
                    rs: n,
                    cs: 1,
                };
                gemm_f32(av, bv, cv, false);
            });
            let gflops = 2.0 * (m * n * k) as f64 / secs / 1e9;
            rows.push(json!({
                "m": m, "n": n, "k": k, "layout": layout,
                "seconds": secs, "gflops": gflops, "percent_of_peak": 100.0 * gflops / peak,
            }));
        }
    }
    rows
}

fn ops(budget: Duration) -> heft::tensor::Result<Vec<Value>> {
    const N: usize = 1 << 22;
    let a = Tensor::from_vec(fill(N, 1), &[N])?;
    let b = Tensor::from_vec(fill(N, 2), &[N])?;
    let m = Tensor::from_vec(fill(N, 3), &[N / 1024, 1024])?;
    let f4 = 4.0 * N as f64;
    type Op<'a> = Box<dyn FnMut() -> heft::tensor::Result<Tensor> + 'a>;
    let list: Vec<(&str, f64, Op)> = vec![
        ("add (a + b)", 3.0 * f4, Box::new(|| a.add(&b))),
        ("mul (a * b)", 3.0 * f4, Box::new(|| a.mul(&b))),
        ("relu", 2.0 * f4, Box::new(|| a.relu())),
        ("exp", 2.0 * f4, Box::new(|| a.exp())),
        ("sum (all)", f4, Box::new(|| a.sum_all())),
        ("sum (rows of 1024)", f4, Box::new(|| m.sum(&[1], false))),
        (
            "softmax (rows of 1024)",
            2.0 * f4,
            Box::new(|| m.softmax(1)),
        ),
    ];
    let mut rows = Vec::new();
    for (name, bytes, mut f) in list {
        let mut res = Ok(());
        let secs = best_time(budget, || {
            if let Err(e) = f() {
                res = Err(e);
            }
        });
        res?;
        rows.push(json!({"op": name, "elements": N, "seconds": secs, "gbps": bytes / secs / 1e9}));
    }
    Ok(rows)
}

fn train(budget: Duration) -> crate::error::Result<Value> {
    let sizes = [784usize, 256, 128, 10];
    let batch = 64;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut store = ParamStore::new();
    let mlp = crate::model::Mlp::new(&mut store, &sizes, &mut rng)?;
    let x = Tensor::randn(&[batch, 784], 0.0, 1.0, DType::F32, &mut rng)?;
    let y = Tensor::from_vec(
        (0..batch as i64).map(|i| i % 10).collect::<Vec<_>>(),
        &[batch],
    )?;
    let mut opt = Sgd::new(SgdConfig::new(0.01))?;
    let mut step = |store: &mut ParamStore| -> crate::error::Result<()> {
        let grads = {
            let tape = Tape::new();
            let ctx = Ctx::new(store, &tape, Mode::Train);
            let logits = mlp.forward(&ctx, &ctx.input(x.clone()))?;
            let l = loss::cross_entropy(&logits, &y)?;
            ctx.backward(&l)?
        };
        opt.step(store, &grads)?;
        Ok(())
    };
    for _ in 0..3 {
        step(&mut store)?;
    }
    let start = Instant::now();
    let mut steps = 0u64;
    let mut best = f64::INFINITY;
    while steps < 10 || start.elapsed() < budget {
        let t = Instant::now();
        step(&mut store)?;
        best = best.min(t.elapsed().as_secs_f64());
        steps += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(json!({
        "model": "mlp:784-256-128-10", "batch": batch, "optimizer": "sgd",
        "steps": steps, "seconds": secs, "steps_per_second": steps as f64 / secs,
        "best_step_ms": best * 1e3,
        "gflops_per_step": 3.0 * 2.0 * batch as f64 * (784.0 * 256.0 + 256.0 * 128.0 + 128.0 * 10.0) / 1e9,
    }))
}

/// Run `heft bench`.
pub fn run(a: BenchArgs) -> Result<()> {
    let budget = Duration::from_secs_f64(a.budget.clamp(0.001, 60.0));
    let sizes: Vec<usize> = a
        .sizes
        .split(',')
        .map(|t| {
            t.trim()
                .parse::<usize>()
                .ok()
                .filter(|&n| n > 0 && n <= 8192)
                .ok_or_else(|| {
                    crate::error::err(format!("--sizes: `{t}` is not a size in 1..=8192"))
                })
        })
        .collect::<Result<_>>()?;
    let all = a.which.is_none();
    let threads = rayon::current_num_threads();
    let path = kernels::kernel_path();
    let mut out = json!({
        "kernel_path": path.name(),
        "supported_paths": kernels::supported_paths().iter().map(|p| p.name()).collect::<Vec<_>>(),
        "threads": threads,
    });
    if all || a.which == Some(Which::Matmul) {
        let core = kernels::peak::measure_fma_peak_gflops(false, Duration::from_millis(200));
        let peak = core * threads as f64;
        out["fma_peak_gflops_per_core"] = json!(core);
        out["fma_peak_gflops"] = json!(peak);
        out["matmul"] = json!(matmul(&sizes, budget, peak));
    }
    if all || a.which == Some(Which::Ops) {
        out["ops"] = json!(ops(budget)?);
    }
    if all || a.which == Some(Which::Train) {
        out["train"] = train(budget.max(Duration::from_secs(1)))?;
    }
    if a.json {
        return crate::print_json(&out);
    }
    println!(
        "kernel path {} (supported: {}), {} threads",
        path.name(),
        out["supported_paths"]
            .as_array()
            .map(|v| v
                .iter()
                .filter_map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "))
            .unwrap_or_default(),
        threads
    );
    if let Some(rows) = out["matmul"].as_array() {
        println!(
            "f32 FMA peak measured now: {:.1} GFLOP/s per core, {:.1} GFLOP/s for {threads} threads",
            out["fma_peak_gflops_per_core"].as_f64().unwrap_or(0.0),
            out["fma_peak_gflops"].as_f64().unwrap_or(0.0)
        );
        println!();
        println!(
            "{:>14}  {:>6}  {:>10}  {:>8}",
            "matmul f32", "layout", "GFLOP/s", "% peak"
        );
        for r in rows {
            println!(
                "{:>14}  {:>6}  {:>10.1}  {:>7.1}%",
                format!("{}x{}x{}", r["m"], r["k"], r["n"]),
                r["layout"].as_str().unwrap_or(""),
                r["gflops"].as_f64().unwrap_or(0.0),
                r["percent_of_peak"].as_f64().unwrap_or(0.0)
            );
        }
    }
    if let Some(rows) = out["ops"].as_array() {
        println!();
        println!("{:>24}  {:>8}  {:>9}", "op (4M f32)", "GB/s", "ms");
        for r in rows {
            println!(
                "{:>24}  {:>8.1}  {:>9.3}",
                r["op"].as_str().unwrap_or(""),
                r["gbps"].as_f64().unwrap_or(0.0),
                1e3 * r["seconds"].as_f64().unwrap_or(0.0)
            );
        }
    }
    if out["train"].is_object() {
        let t = &out["train"];
        println!();
        println!(
            "train mlp:784-256-128-10, batch 64, sgd: {:.0} steps/s ({} steps in {:.2} s, best step {:.2} ms)",
            t["steps_per_second"].as_f64().unwrap_or(0.0),
            t["steps"],
            t["seconds"].as_f64().unwrap_or(0.0),
            t["best_step_ms"].as_f64().unwrap_or(0.0)
        );
    }
    Ok(())
}
