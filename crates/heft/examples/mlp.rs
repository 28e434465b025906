//! An MLP classifying synthetic 2-D points (three Gaussian blobs), trained
//! with plain gradient descent written by hand.
//!
//! `cargo run --release -p heft --example mlp`

use heft::nn::health;
use heft::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = ChaCha8Rng::seed_from_u64(0);

    // Data: 3 classes, 100 points each, around three centres.
    let centres = [(-2.0, 0.0), (2.0, 0.0), (0.0, 2.5)];
    let n_per = 100;
    let noise = Tensor::randn(&[3 * n_per, 2], 0.0, 0.8, DType::F64, &mut rng)?.to_vec_f64();
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for (c, (cx, cy)) in centres.iter().enumerate() {
        for i in 0..n_per {
            let k = c * n_per + i;
            xs.push((cx + noise[2 * k]) as f32);
            xs.push((cy + noise[2 * k + 1]) as f32);
            ys.push(c as i64);
        }
    }
    let x = Tensor::from_vec(xs, &[3 * n_per, 2])?;
    let y = Tensor::from_vec(ys.clone(), &[3 * n_per])?;

    // Model: 2 -> 32 -> 32 -> 3. Named ReLUs report their dead units.
    let mut store = ParamStore::new();
    let model = Sequential::new()
        .add(Linear::new(&mut store, "fc1", 2, 32, &mut rng)?)
        .add(Activation::Relu(Some("relu1".into())))
        .add(Linear::new(&mut store, "fc2", 32, 32, &mut rng)?)
        .add(Activation::Relu(Some("relu2".into())))
        .add(Linear::new(&mut store, "fc3", 32, 3, &mut rng)?);
    print!("{}", store.summary());
    println!();

    let lr = 0.2;
    for step in 0..=200 {
        let tape = Tape::new();
        let ctx = Ctx::new(&store, &tape, Mode::Train);
        let logits = model.forward(&ctx, &ctx.input(x.clone()))?;
        let l = loss::cross_entropy(&logits, &y)?;
        let grads = ctx.backward(&l)?;
        if step % 25 == 0 {
            println!("step {step:>3}  loss {:.4}", l.value().to_scalar_f64()?);
        }
        if step == 200 {
            let r = health::report(&store, &grads, None, &ctx.activations())?;
            println!();
            print!("{}", r.table());
            break;
        }
        // w <- w - lr * dL/dw
        for (id, g) in grads.iter() {
            let w = store.value(id).sub(&g.mul_scalar(lr)?)?;
            store.set_value(id, w)?;
        }
    }

    // Accuracy in eval mode.
    let tape = Tape::new();
    let ctx = Ctx::new(&store, &tape, Mode::Eval);
    let pred = model
        .forward(&ctx, &ctx.input(x.clone()))?
        .value()
        .argmax(1, false)?
        .to_vec::<i64>()?;
    let correct = pred.iter().zip(&ys).filter(|(p, t)| p == t).count();
    println!("\ntraining accuracy: {correct}/{}", ys.len());
    Ok(())
}
