//! Fine-tuning: load a trained model, freeze layers, replace the head; LoRA
//! adapters on a frozen base improve a shifted task and merge for export.

use heft_autograd::{Tape, Var};
use heft_nn::io::{LoadOptions, SaveDType};
use heft_nn::layers::{Linear, LoraLinear};
use heft_nn::{loss, Ctx, Mode, Module, ParamStore};
use heft_optim::{AdamConfig, AdamW, Optimizer};
use heft_tensor::{DType, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Three Gaussian blobs in 8-D. The shifted task (`shift != 0`) moves every
/// centre and rotates the labels (blob c is class (c + 1) % 3), which the
/// base model cannot solve but a low-rank update to it can.
fn blobs(n: usize, shift: f64, seed: u64) -> (Tensor, Tensor) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let noise = Tensor::randn(&[n, 8], 0.0, 0.6, DType::F32, &mut rng)
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    let mut x = vec![0f32; n * 8];
    let mut y = vec![0i64; n];
    for i in 0..n {
        let c = i % 3;
        y[i] = if shift != 0.0 {
            ((c + 1) % 3) as i64
        } else {
            c as i64
        };
        for j in 0..8 {
            let centre = if j % 3 == c { 2.0 } else { 0.0 } + if j < 4 { shift } else { -shift };
            x[i * 8 + j] = centre as f32 + noise[i * 8 + j];
        }
    }
    (
        Tensor::from_vec(x, &[n, 8]).unwrap(),
        Tensor::from_vec(y, &[n]).unwrap(),
    )
}

fn forward2(ctx: &Ctx<'_>, l1: &dyn Module, l2: &dyn Module, x: &Tensor) -> Var {
    let h = l1
        .forward(ctx, &ctx.input(x.clone()))
        .unwrap()
        .relu()
        .unwrap();
    l2.forward(ctx, &h).unwrap()
}

fn train(
    store: &mut ParamStore,
    l1: &dyn Module,
    l2: &dyn Module,
    x: &Tensor,
    y: &Tensor,
    steps: usize,
    lr: f64,
) {
    let mut opt = AdamW::new(AdamConfig::adamw(lr)).unwrap();
    for _ in 0..steps {
        let tape = Tape::new();
        let grads = {
            let ctx = Ctx::new(store, &tape, Mode::Train);
            let l = loss::cross_entropy(&forward2(&ctx, l1, l2, x), y).unwrap();
            ctx.backward(&l).unwrap()
        };
        opt.step(store, &grads).unwrap();
    }
}

fn accuracy(store: &ParamStore, l1: &dyn Module, l2: &dyn Module, x: &Tensor, y: &Tensor) -> f64 {
    let tape = Tape::new();
    let ctx = Ctx::new(store, &tape, Mode::Eval);
    let pred = forward2(&ctx, l1, l2, x)
        .value()
        .argmax(1, false)
        .unwrap()
        .to_vec::<i64>()
        .unwrap();
    let y = y.to_vec::<i64>().unwrap();
    pred.iter().zip(&y).filter(|(a, b)| a == b).count() as f64 / y.len() as f64
}

fn base_model(store: &mut ParamStore, seed: u64) -> (Linear, Linear) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (
        Linear::new(store, "fc1", 8, 32, &mut rng).unwrap(),
        Linear::new(store, "fc2", 32, 3, &mut rng).unwrap(),
    )
}

#[test]
fn lora_on_a_frozen_base_learns_a_shifted_task_and_merges() {
    let (xa, ya) = blobs(300, 0.0, 1);
    let (xb, yb) = blobs(300, 0.5, 2);
    let mut store = ParamStore::new();
    let (fc1, fc2) = base_model(&mut store, 3);
    train(&mut store, &fc1, &fc2, &xa, &ya, 150, 0.01);
    let acc_a = accuracy(&store, &fc1, &fc2, &xa, &ya);
    let acc_b_before = accuracy(&store, &fc1, &fc2, &xb, &yb);
    assert!(acc_a > 0.95, "base task accuracy {acc_a}");
    assert!(
        acc_b_before < 0.4,
        "the shift must hurt the base model: {acc_b_before}"
    );

    // Save the base, load it into a fresh store (as a fine-tuning user would).
    let dir = std::env::temp_dir().join(format!("heft-lora-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    store
        .save_safetensors(
            &dir.join("base.safetensors"),
            SaveDType::F32,
            "mlp:8-32-3",
            &[],
        )
        .unwrap();
    let mut ft = ParamStore::new();
    let (g1, g2) = base_model(&mut ft, 999);
    ft.load_safetensors(&dir.join("base.safetensors"), LoadOptions::default())
        .unwrap();
    let base_w: Vec<Tensor> = ft.snapshot();

    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let l1 = LoraLinear::wrap(&mut ft, g1, "fc1", 4, 8.0, &mut rng).unwrap();
    let l2 = LoraLinear::wrap(&mut ft, g2, "fc2", 2, 4.0, &mut rng).unwrap();
    // A fresh adapter changes nothing.
    assert_eq!(accuracy(&ft, &l1, &l2, &xb, &yb), acc_b_before);
    let c = ft.counts();
    assert_eq!(c.frozen, 8 * 32 + 32 + 32 * 3 + 3);
    assert_eq!(c.trainable, 4 * 8 + 32 * 4 + 2 * 32 + 3 * 2);
    train(&mut ft, &l1, &l2, &xb, &yb, 150, 0.01);
    let acc_b_after = accuracy(&ft, &l1, &l2, &xb, &yb);
    assert!(
        acc_b_after > acc_b_before + 0.1 && acc_b_after > 0.9,
        "LoRA: {acc_b_before} -> {acc_b_after}"
    );
    // The base stayed frozen, bit for bit.
    for (i, t) in base_w.iter().enumerate() {
        assert!(ft.value(heft_nn::ParamId(i)).equal(t));
    }

    // Merge: same function with the update folded into W; export without adapters.
    let tape = Tape::new();
    let before = forward2(&Ctx::new(&ft, &tape, Mode::Eval), &l1, &l2, &xb)
        .value()
        .clone();
    l1.merge(&mut ft).unwrap();
    l2.merge(&mut ft).unwrap();
    let tape = Tape::new();
    let after = forward2(&Ctx::new(&ft, &tape, Mode::Eval), &l1, &l2, &xb)
        .value()
        .clone();
    assert!(before.max_abs_diff(&after).unwrap() < 1e-4);
    let adapters: Vec<String> = l1
        .adapter_names(&ft)
        .into_iter()
        .chain(l2.adapter_names(&ft))
        .collect();
    ft.save_safetensors_filtered(
        &dir.join("merged.safetensors"),
        SaveDType::F32,
        "mlp:8-32-3",
        &[],
        |n| !adapters.iter().any(|a| a == n),
    )
    .unwrap();
    let mut plain = ParamStore::new();
    let (p1, p2) = base_model(&mut plain, 7);
    plain
        .load_safetensors(&dir.join("merged.safetensors"), LoadOptions::default())
        .unwrap();
    let tape = Tape::new();
    let exported = forward2(&Ctx::new(&plain, &tape, Mode::Eval), &p1, &p2, &xb)
        .value()
        .clone();
    assert!(exported.max_abs_diff(&after).unwrap() < 1e-6);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn freeze_the_body_and_replace_the_head() {
    let (xa, ya) = blobs(300, 0.0, 1);
    let mut store = ParamStore::new();
    let (fc1, fc2) = base_model(&mut store, 3);
    train(&mut store, &fc1, &fc2, &xa, &ya, 150, 0.01);
    // New task: 4 classes from the same features (class 3 = blob 0 with a flipped sign on feature 7).
    let (mut xv, mut yv) = (xa.to_vec::<f32>().unwrap(), ya.to_vec::<i64>().unwrap());
    for i in (0..300).step_by(6) {
        xv[i * 8 + 7] = 6.0;
        yv[i] = 3;
    }
    let (x4, y4) = (
        Tensor::from_vec(xv, &[300, 8]).unwrap(),
        Tensor::from_vec(yv, &[300]).unwrap(),
    );
    let body_before = store.value(fc1.weight).clone();
    store.freeze_prefix("fc1.");
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let head = Linear::new(&mut store, "head", 32, 4, &mut rng).unwrap();
    train(&mut store, &fc1, &head, &x4, &y4, 200, 0.02);
    assert!(store.value(fc1.weight).equal(&body_before));
    let acc = accuracy(&store, &fc1, &head, &x4, &y4);
    assert!(acc > 0.9, "new head accuracy {acc}");
}
