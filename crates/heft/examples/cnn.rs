//! A small CNN (Conv2d - ReLU - MaxPool - Flatten - Linear) telling
//! horizontal from vertical bars in noisy 8x8 images, trained with plain
//! gradient descent written by hand.
//!
//! `cargo run --release -p heft --example cnn`

use heft::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `n` images `[n, 1, 8, 8]`: a bright bar in a random row (class 0) or
/// column (class 1), plus Gaussian noise.
fn images(n: usize, rng: &mut ChaCha8Rng) -> Result<(Tensor, Tensor), Box<dyn std::error::Error>> {
    let mut px = Tensor::randn(&[n, 1, 8, 8], 0.0, 0.3, DType::F32, rng)?.to_vec::<f32>()?;
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let class = rng.random_range(0..2i64);
        let at = rng.random_range(0..8usize);
        for k in 0..8 {
            let (r, c) = if class == 0 { (at, k) } else { (k, at) };
            px[i * 64 + r * 8 + c] += 1.0;
        }
        labels.push(class);
    }
    Ok((
        Tensor::from_vec(px, &[n, 1, 8, 8])?,
        Tensor::from_vec(labels, &[n])?,
    ))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let (x, y) = images(64, &mut rng)?;

    let mut store = ParamStore::new();
    let same = Conv2dParams {
        padding: (1, 1),
        ..Conv2dParams::default()
    };
    let model = Sequential::new()
        .add(Conv2d::new(
            &mut store,
            "conv",
            1,
            4,
            (3, 3),
            same,
            &mut rng,
        )?) // [n, 4, 8, 8]
        .add(Activation::Relu(None))
        .add(MaxPool2d {
            kernel: (2, 2),
            stride: (2, 2),
            padding: (0, 0),
        }) // [n, 4, 4, 4]
        .add(Flatten) // [n, 64]
        .add(Linear::new(&mut store, "fc", 64, 2, &mut rng)?);
    print!("{}", store.summary());
    println!();

    let lr = 0.5;
    for step in 0..=60 {
        let tape = Tape::new();
        let ctx = Ctx::new(&store, &tape, Mode::Train);
        let l = loss::cross_entropy(&model.forward(&ctx, &ctx.input(x.clone()))?, &y)?;
        if step % 10 == 0 {
            println!("step {step:>2}  loss {:.4}", l.value().to_scalar_f64()?);
        }
        let grads = ctx.backward(&l)?;
        for (id, g) in grads.iter() {
            let w = store.value(id).sub(&g.mul_scalar(lr)?)?;
            store.set_value(id, w)?;
        }
    }

    // Fresh images the model has not seen.
    let (xt, yt) = images(200, &mut rng)?;
    let tape = Tape::new();
    let ctx = Ctx::new(&store, &tape, Mode::Eval);
    let pred = model
        .forward(&ctx, &ctx.input(xt))?
        .value()
        .argmax(1, false)?;
    let correct = pred
        .to_vec::<i64>()?
        .iter()
        .zip(yt.to_vec::<i64>()?)
        .filter(|(p, t)| **p == *t)
        .count();
    println!("\nheld-out accuracy: {correct}/200");
    Ok(())
}
