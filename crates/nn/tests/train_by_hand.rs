//! Training with a hand-written gradient-descent loop (`w <- w - lr * dL/dw`
//! on the tensors, no optimizer): linear regression recovers its weights,
//! a small MLP learns XOR.

use heft_autograd::Tape;
use heft_nn::layers::{Activation, Linear};
use heft_nn::{loss, Ctx, Mode, Module, ParamGrads, ParamStore, Sequential};
use heft_tensor::{DType, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// One plain gradient-descent update of every parameter that has a gradient.
fn sgd(store: &mut ParamStore, grads: &ParamGrads, lr: f64) {
    for (id, g) in grads.iter() {
        let w = store.value(id).sub(&g.mul_scalar(lr).unwrap()).unwrap();
        store.set_value(id, w).unwrap();
    }
}

#[test]
fn linear_regression_recovers_weight_and_bias() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let (n, d) = (256, 3);
    let true_w = [2.0f64, -3.0, 0.5];
    let true_b = 1.5f64;
    let x = Tensor::randn(&[n, d], 0.0, 1.0, DType::F32, &mut rng).unwrap();
    let xs = x.to_vec_f64();
    // Noise-free targets y = x . w + b.
    let ys: Vec<f64> = (0..n)
        .map(|i| true_b + (0..d).map(|j| xs[i * d + j] * true_w[j]).sum::<f64>())
        .collect();
    let y = Tensor::from_vec(ys.clone(), &[n, 1])
        .unwrap()
        .to_dtype(DType::F32);

    let mut store = ParamStore::new();
    let model = Linear::new(&mut store, "fc", d, 1, &mut rng).unwrap();
    let lr = 0.1;
    let mut first_loss = None;
    let mut last_loss = f64::NAN;
    for step in 0..300 {
        let tape = Tape::new();
        let ctx = Ctx::new(&store, &tape, Mode::Train);
        let pred = model.forward(&ctx, &ctx.input(x.clone())).unwrap();
        let l = loss::mse(&pred, &ctx.input(y.clone())).unwrap();
        let grads = ctx.backward(&l).unwrap();
        last_loss = l.value().to_scalar_f64().unwrap();
        if step == 0 {
            // dL/dw = 2/n X^T r and dL/db = 2/n sum r, with r = pred - y.
            let p = pred.value().to_vec_f64();
            let r: Vec<f64> = p.iter().zip(&ys).map(|(p, y)| p - y).collect();
            let gw = grads.get(model.weight).unwrap().to_vec_f64();
            for j in 0..d {
                let want = 2.0 / n as f64 * (0..n).map(|i| xs[i * d + j] * r[i]).sum::<f64>();
                assert!(
                    (gw[j] - want).abs() < 1e-4 * (1.0 + want.abs()),
                    "{j}: {} vs {want}",
                    gw[j]
                );
            }
            let gb = grads.get(model.bias.unwrap()).unwrap().to_vec_f64()[0];
            let want = 2.0 / n as f64 * r.iter().sum::<f64>();
            assert!((gb - want).abs() < 1e-4 * (1.0 + want.abs()));
            first_loss = Some(last_loss);
        }
        sgd(&mut store, &grads, lr);
    }
    let w = store.value(model.weight).to_vec_f64();
    let b = store.value(model.bias.unwrap()).to_vec_f64()[0];
    for j in 0..d {
        assert!((w[j] - true_w[j]).abs() < 1e-3, "w = {w:?}");
    }
    assert!((b - true_b).abs() < 1e-3, "b = {b}");
    assert!(
        first_loss.unwrap() > 1.0 && last_loss < 1e-6,
        "{first_loss:?} -> {last_loss}"
    );
}

#[test]
fn mlp_learns_xor() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut store = ParamStore::new();
    let model = Sequential::new()
        .add(Linear::new(&mut store, "fc1", 2, 8, &mut rng).unwrap())
        .add(Activation::Tanh)
        .add(Linear::new(&mut store, "fc2", 8, 1, &mut rng).unwrap());
    let x = Tensor::from_vec(vec![0.0f32, 0., 0., 1., 1., 0., 1., 1.], &[4, 2]).unwrap();
    let labels = [0.0f32, 1., 1., 0.];
    let y = Tensor::from_vec(labels.to_vec(), &[4, 1]).unwrap();

    let accuracy_and_loss = |store: &ParamStore| -> (usize, f64) {
        let tape = Tape::new();
        let ctx = Ctx::new(store, &tape, Mode::Eval);
        let z = model.forward(&ctx, &ctx.input(x.clone())).unwrap();
        let l = loss::bce_with_logits(&z, &ctx.input(y.clone())).unwrap();
        let correct = z
            .value()
            .to_vec_f64()
            .iter()
            .zip(labels)
            .filter(|(z, t)| (**z > 0.0) == (*t > 0.5))
            .count();
        (correct, l.value().to_scalar_f64().unwrap())
    };
    let (acc0, loss0) = accuracy_and_loss(&store);
    assert!(acc0 < 4, "already solved before training");

    for _ in 0..1500 {
        let tape = Tape::new();
        let ctx = Ctx::new(&store, &tape, Mode::Train);
        let z = model.forward(&ctx, &ctx.input(x.clone())).unwrap();
        let l = loss::bce_with_logits(&z, &ctx.input(y.clone())).unwrap();
        let grads = ctx.backward(&l).unwrap();
        assert_eq!(grads.iter().count(), 4);
        sgd(&mut store, &grads, 0.5);
    }
    let (acc, l) = accuracy_and_loss(&store);
    assert_eq!(acc, 4, "loss {loss0} -> {l}");
    assert!(l < 0.05 && l < loss0 / 10.0, "loss {loss0} -> {l}");
}
