//! Each initialisation scheme's empirical mean and variance on a large
//! tensor against its formula, and seed reproducibility.
//!
//! Tolerance: with n = 512 * 1024 = 524,288 independent draws, the sample
//! variance has a relative standard error of sqrt(2 / n) = 0.20% for a
//! normal and sqrt(0.8 / n) = 0.12% for a uniform distribution (from the
//! fourth moment). A 2% relative tolerance is therefore about 10 standard
//! errors: a correct scheme never fails, while a wrong constant (a gain
//! missing, fan_in and fan_out swapped, a uniform bound off by sqrt(3))
//! is off by 30% or more and always does.

use heft_nn::init::{fans, FanMode, Init, Nonlinearity};
use heft_tensor::{DType, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const SHAPE: [usize; 2] = [512, 1024]; // [out, in]: fan_in 1024, fan_out 512

fn draw(init: Init, shape: &[usize], seed: u64) -> Tensor {
    init.tensor(shape, DType::F32, &mut ChaCha8Rng::seed_from_u64(seed))
        .unwrap()
}

fn mean_var(t: &Tensor) -> (f64, f64) {
    let v = t.to_vec_f64();
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n;
    (m, var)
}

/// Every scheme with the variance worked out by hand for SHAPE
/// (fan_in = 1024, fan_out = 512), and its mean.
fn schemes() -> Vec<(Init, f64, f64)> {
    let (fi, fo) = (1024.0f64, 512.0f64);
    vec![
        (Init::Uniform(-0.5, 1.5), 4.0 / 12.0, 0.5),
        (Init::Normal(0.02), 0.0004, 0.0),
        (Init::XavierUniform(1.0), 2.0 / (fi + fo), 0.0),
        (Init::XavierNormal(2.0), 4.0 * 2.0 / (fi + fo), 0.0),
        (
            Init::KaimingUniform {
                mode: FanMode::FanIn,
                nonlinearity: Nonlinearity::Relu,
            },
            2.0 / fi,
            0.0,
        ),
        (
            Init::KaimingNormal {
                mode: FanMode::FanIn,
                nonlinearity: Nonlinearity::Relu,
            },
            2.0 / fi,
            0.0,
        ),
        (
            Init::KaimingNormal {
                mode: FanMode::FanOut,
                nonlinearity: Nonlinearity::Tanh,
            },
            (25.0 / 9.0) / fo,
            0.0,
        ),
        (
            Init::KaimingUniform {
                mode: FanMode::FanOut,
                nonlinearity: Nonlinearity::LeakyRelu(0.2),
            },
            2.0 / 1.04 / fo,
            0.0,
        ),
        (
            Init::KaimingNormal {
                mode: FanMode::FanIn,
                nonlinearity: Nonlinearity::Linear,
            },
            1.0 / fi,
            0.0,
        ),
        // U(-1/sqrt(fan_in), 1/sqrt(fan_in)): variance (2 / sqrt(fan_in))^2 / 12.
        (Init::TorchDefaultWeight, 1.0 / (3.0 * fi), 0.0),
        (Init::TorchDefaultBias(1024), 1.0 / (3.0 * 1024.0), 0.0),
    ]
}

#[test]
fn empirical_variance_matches_the_formula() {
    let n = (SHAPE[0] * SHAPE[1]) as f64;
    for (k, (init, want_var, want_mean)) in schemes().into_iter().enumerate() {
        // The documented formula agrees with the one worked out by hand.
        let formula = init.variance(&SHAPE).unwrap();
        assert!(
            (formula - want_var).abs() <= 1e-12 * want_var,
            "{init:?}: Init::variance {formula} vs {want_var}"
        );
        let t = draw(init, &SHAPE, 100 + k as u64);
        assert_eq!(t.shape(), &SHAPE);
        assert_eq!(t.dtype(), DType::F32);
        let (m, v) = mean_var(&t);
        let rel = (v - formula).abs() / formula;
        assert!(
            rel < 0.02,
            "{init:?}: variance {v} vs {formula} ({:.2}% off)",
            rel * 100.0
        );
        // The mean is within 6 standard errors, sqrt(var / n).
        let se = (formula / n).sqrt();
        assert!((m - want_mean).abs() < 6.0 * se, "{init:?}: mean {m}");
    }
}

#[test]
fn uniform_schemes_respect_their_bounds() {
    // Bound a = sqrt(3 var); the extreme draws come within 1% of it.
    for init in [
        Init::XavierUniform(1.0),
        Init::KaimingUniform {
            mode: FanMode::FanIn,
            nonlinearity: Nonlinearity::Relu,
        },
        Init::TorchDefaultWeight,
    ] {
        let a = (3.0 * init.variance(&SHAPE).unwrap()).sqrt();
        let v = draw(init, &SHAPE, 7).to_vec_f64();
        let max = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let min = v.iter().cloned().fold(f64::INFINITY, f64::min);
        // f32 rounding can land on the bound itself.
        assert!(
            max <= a * (1.0 + 1e-6) && min >= -a * (1.0 + 1e-6),
            "{init:?}"
        );
        assert!(
            max > 0.99 * a && min < -0.99 * a,
            "{init:?}: [{min}, {max}] vs {a}"
        );
    }
    // TorchDefaultWeight's bound is 1/sqrt(fan_in) = 1/32 for fan_in 1024.
    let a = (3.0 * Init::TorchDefaultWeight.variance(&SHAPE).unwrap()).sqrt();
    assert!((a - 1.0 / 32.0).abs() < 1e-15);
}

#[test]
fn conv_weights_use_the_receptive_field_in_their_fans() {
    // [out 64, in 32, 3, 3]: fan_in = 32 * 9 = 288, fan_out = 64 * 9 = 576.
    let shape = [64, 32, 3, 3];
    assert_eq!(fans(&shape).unwrap(), (288, 576));
    assert_eq!(fans(&[7]).unwrap(), (7, 7));
    assert!(fans(&[]).is_err());
    let init = Init::KaimingNormal {
        mode: FanMode::FanIn,
        nonlinearity: Nonlinearity::Relu,
    };
    assert!((init.variance(&shape).unwrap() - 2.0 / 288.0).abs() < 1e-15);
    // 64 * 32 * 9 = 18,432 draws: relative standard error sqrt(2 / 18432) = 1.04%,
    // so the tolerance here is 5% (about 5 standard errors), not 2%.
    let (_, v) = mean_var(&draw(init, &shape, 3));
    assert!((v / (2.0 / 288.0) - 1.0).abs() < 0.05, "{v}");
}

#[test]
fn constant_schemes_are_exact() {
    assert!(draw(Init::Zeros, &[3, 4], 0).equal(&Tensor::zeros(&[3, 4], DType::F32)));
    assert!(draw(Init::Constant(0.25), &[5], 0).equal(&Tensor::full(&[5], 0.25, DType::F32)));
    assert_eq!(Init::Constant(0.25).variance(&[5]).unwrap(), 0.0);
}

#[test]
fn same_seed_same_tensor_different_seed_different_tensor() {
    for (init, _, _) in schemes() {
        let a = draw(init, &[64, 32], 11);
        let b = draw(init, &[64, 32], 11);
        let c = draw(init, &[64, 32], 12);
        assert!(a.equal(&b), "{init:?}: same seed differs");
        assert!(!a.equal(&c), "{init:?}: different seeds agree");
        // Not a shifted copy either: most elements differ.
        let (av, cv) = (a.to_vec_f64(), c.to_vec_f64());
        let same = av.iter().zip(&cv).filter(|(x, y)| x == y).count();
        assert!(same < 10, "{init:?}: {same} equal elements");
    }
}

#[test]
fn gains_follow_pytorch() {
    assert_eq!(Nonlinearity::Linear.gain(), 1.0);
    assert!((Nonlinearity::Relu.gain() - 2f64.sqrt()).abs() < 1e-15);
    assert!((Nonlinearity::Tanh.gain() - 5.0 / 3.0).abs() < 1e-15);
    // sqrt(2 / (1 + 0.01^2)) for PyTorch's default leaky slope.
    assert!((Nonlinearity::LeakyRelu(0.01).gain() - 1.414_142_857).abs() < 1e-9);
}
