//! A model built from raw parameters, without layers: the weights are
//! tensors in a `ParamStore`, the forward pass is written with `Var` ops,
//! and a weight-health report is printed after training.
//!
//! Fits `y = sin(2 x0) + 0.5 x1` with a 2-16-1 ReLU network and plain
//! gradient descent written by hand.
//!
//! `cargo run --release -p heft --example raw_params`

use heft::nn::health;
use heft::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = ChaCha8Rng::seed_from_u64(0);

    // Parameters: names, kinds and initial values chosen by hand.
    let mut store = ParamStore::new();
    let he = Init::KaimingNormal {
        mode: FanMode::FanIn,
        nonlinearity: Nonlinearity::Relu,
    };
    let w1 = store.add(
        "hidden.w",
        he.tensor(&[16, 2], DType::F32, &mut rng)?,
        ParamKind::Weight,
    )?;
    let b1 = store.add(
        "hidden.b",
        Tensor::zeros(&[16], DType::F32),
        ParamKind::Bias,
    )?;
    let w2 = store.add(
        "out.w",
        Init::XavierUniform(1.0).tensor(&[1, 16], DType::F32, &mut rng)?,
        ParamKind::Weight,
    )?;
    let b2 = store.add("out.b", Tensor::zeros(&[1], DType::F32), ParamKind::Bias)?;
    print!("{}", store.summary());
    println!();

    // Data.
    let n = 256;
    let x = Tensor::rand_uniform(&[n, 2], -1.5, 1.5, DType::F32, &mut rng)?;
    let xv = x.to_vec::<f32>()?;
    let y: Vec<f32> = (0..n)
        .map(|i| (2.0 * xv[2 * i]).sin() + 0.5 * xv[2 * i + 1])
        .collect();
    let y = Tensor::from_vec(y, &[n, 1])?;

    // The forward pass, from the parameters the Ctx binds to this step's tape.
    let forward = |ctx: &Ctx<'_>, x: &Var| -> heft::nn::Result<Var> {
        let h = x.matmul(&ctx.param(w1).t()?)?.add(&ctx.param(b1))?.relu()?;
        // Record the share of dead hidden units for the health report.
        let dead = h.value().to_vec_f64().iter().filter(|&&v| v == 0.0).count();
        ctx.record_activation("hidden", dead as f64 / h.value().numel() as f64);
        Ok(h.matmul(&ctx.param(w2).t()?)?.add(&ctx.param(b2))?)
    };

    let lr = 0.1;
    let steps = 500;
    for step in 0..=steps {
        let tape = Tape::new();
        let ctx = Ctx::new(&store, &tape, Mode::Train);
        let l = loss::mse(
            &forward(&ctx, &ctx.input(x.clone()))?,
            &ctx.input(y.clone()),
        )?;
        let grads = ctx.backward(&l)?;
        let activations = ctx.activations();
        if step % 100 == 0 {
            println!("step {step:>3}  loss {:.5}", l.value().to_scalar_f64()?);
        }
        let before = store.snapshot();
        for (id, g) in grads.iter() {
            let w = store.value(id).sub(&g.mul_scalar(lr)?)?;
            store.set_value(id, w)?;
        }
        if step == steps {
            // Weight norm, gradient norm, update/weight ratio, NaN/Inf, dead ReLUs.
            let report = health::report(&store, &grads, Some(&before), &activations)?;
            println!();
            print!("{}", report.table());
        }
    }
    Ok(())
}
