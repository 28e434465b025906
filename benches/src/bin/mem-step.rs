//! Peak heap memory of one training step of the benchmark MLP
//! (784-256-128-10, batch 64, f32, SGD), against the memory the step
//! logically needs: parameters + gradients + the activations backward keeps.
//!
//! `cargo run --release -p heft-benches --bin mem-step`

use heft_benches::mlp::{BenchMlp, BATCH};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn main() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let mut m = BenchMlp::new(0);
    m.step(); // warm up (thread-local GEMM packing buffers are allocated once)
    let base = dhat::HeapStats::get().curr_bytes;
    // Peak while the step runs: dhat tracks the global maximum, so reset it by
    // measuring the maximum reached during a fresh step relative to `base`.
    let before_max = dhat::HeapStats::get().max_bytes;
    m.step();
    let stats = dhat::HeapStats::get();
    let f = 4usize; // bytes per f32
    let params = (784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10) * f;
    let grads = params;
    // Backward keeps: the input (for dW1), each layer's pre-activation or
    // ReLU output (for the mask and the next dW), and the logits' softmax.
    let acts = (BATCH * 784 + 2 * BATCH * 256 + 2 * BATCH * 128 + 2 * BATCH * 10) * f;
    let need = params + grads + acts;
    let peak = if stats.max_bytes > before_max {
        stats.max_bytes
    } else {
        base.max(before_max)
    };
    println!("resident before the step (params, optimizer, batch, buffers): {base} B");
    println!("peak during the step:                                       {peak} B");
    println!("params {params} B + grads {grads} B + activations {acts} B = {need} B");
    println!(
        "peak / (params + grads + activations) = {:.2}",
        peak as f64 / need as f64
    );
}
