//! Runs the `tape` bench's chain (1,000 ops on 1-element tensors, forward
//! plus backward) many times, for a profiler:
//!
//! ```text
//! cargo build --release -p heft-benches --bin tape-profile
//! valgrind --tool=callgrind target/release/tape-profile 200
//! ```
//!
//! callgrind counts instructions, so the figure is repeatable on a noisy
//! machine. The argument is the number of chains (default 2,000); the time
//! per op is printed at the end.

use heft::prelude::*;
use std::time::Instant;

const OPS: usize = 1000;

fn chain(x0: &Tensor, c0: &Tensor) -> f32 {
    let tape = Tape::new();
    let x = tape.leaf(x0.clone());
    let c = tape.constant(c0.clone());
    let mut y = x.clone();
    for _ in 0..OPS / 4 {
        y = y.mul(&x).unwrap();
        y = y.add(&c).unwrap();
        y = y.mul_scalar(0.5).unwrap();
        y = y.tanh().unwrap();
    }
    let g = tape.backward(&y).unwrap();
    g.get(&x).unwrap().item::<f32>().unwrap()
}

fn main() {
    let reps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let x = Tensor::from_vec(vec![0.7f32], &[1]).unwrap();
    let k = Tensor::from_vec(vec![0.1f32], &[1]).unwrap();
    let start = Instant::now();
    let mut acc = 0.0f32;
    for _ in 0..reps {
        acc += chain(&x, &k);
    }
    let per_op = start.elapsed().as_secs_f64() / (reps * OPS) as f64;
    println!(
        "{reps} chains of {OPS} ops: {:.3} us per op (forward + backward); checksum {acc}",
        per_op * 1e6
    );
}
