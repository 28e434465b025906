//! Weight initialisation: Xavier/Glorot, He/Kaiming, PyTorch's Linear default.
//!
//! Every scheme draws from the RNG you pass (use
//! `rand_chacha::ChaCha8Rng::seed_from_u64(seed)`), so the same seed gives
//! the same weights on any machine. Fans follow PyTorch: for a weight of
//! shape `[out, in, k...]`, `fan_in = in * prod(k)` and `fan_out = out * prod(k)`.
//!
//! | scheme | distribution |
//! |---|---|
//! | Xavier uniform | `U(-a, a)`, `a = gain * sqrt(6 / (fan_in + fan_out))` |
//! | Xavier normal | `N(0, s^2)`, `s = gain * sqrt(2 / (fan_in + fan_out))` |
//! | Kaiming uniform | `U(-b, b)`, `b = gain * sqrt(3 / fan)` |
//! | Kaiming normal | `N(0, s^2)`, `s = gain / sqrt(fan)` |
//! | Linear default | weight Kaiming uniform with `gain = sqrt(2 / 6)` (so `b = 1/sqrt(fan_in)`), bias `U(-1/sqrt(fan_in), 1/sqrt(fan_in))` |
//!
//! ```
//! use heft_nn::init::{Init, FanMode, Nonlinearity};
//! use heft_tensor::DType;
//! use rand::SeedableRng;
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
//! let w = Init::KaimingNormal { mode: FanMode::FanIn, nonlinearity: Nonlinearity::Relu }
//!     .tensor(&[256, 128], DType::F32, &mut rng).unwrap();
//! assert_eq!(w.shape(), &[256, 128]);
//! ```

use crate::error::{NnError, Result};
use heft_tensor::{DType, Tensor};
use rand::Rng;

/// Which fan a Kaiming init scales by.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FanMode {
    /// Preserve the variance of activations in the forward pass.
    FanIn,
    /// Preserve the variance of gradients in the backward pass.
    FanOut,
}

/// The nonlinearity a gain is computed for (PyTorch's `calculate_gain`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Nonlinearity {
    /// Linear / identity / sigmoid: gain 1.
    Linear,
    /// ReLU: gain sqrt(2).
    Relu,
    /// Tanh: gain 5/3.
    Tanh,
    /// Leaky ReLU with a negative slope: gain sqrt(2 / (1 + slope^2)).
    LeakyRelu(f64),
}

impl Nonlinearity {
    /// The recommended gain.
    pub fn gain(self) -> f64 {
        match self {
            Nonlinearity::Linear => 1.0,
            Nonlinearity::Relu => 2f64.sqrt(),
            Nonlinearity::Tanh => 5.0 / 3.0,
            Nonlinearity::LeakyRelu(s) => (2.0 / (1.0 + s * s)).sqrt(),
        }
    }
}

/// An initialisation scheme.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// All zeros.
    Zeros,
    /// A constant.
    Constant(f64),
    /// `U(low, high)`.
    Uniform(f64, f64),
    /// `N(0, std^2)`.
    Normal(f64),
    /// Xavier/Glorot uniform with a gain.
    XavierUniform(f64),
    /// Xavier/Glorot normal with a gain.
    XavierNormal(f64),
    /// He/Kaiming uniform.
    KaimingUniform {
        /// Which fan.
        mode: FanMode,
        /// Gain from this nonlinearity.
        nonlinearity: Nonlinearity,
    },
    /// He/Kaiming normal.
    KaimingNormal {
        /// Which fan.
        mode: FanMode,
        /// Gain from this nonlinearity.
        nonlinearity: Nonlinearity,
    },
    /// PyTorch's default for `nn.Linear`/`nn.Conv2d` weights.
    TorchDefaultWeight,
    /// PyTorch's default for biases given the layer's `fan_in`: `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`.
    TorchDefaultBias(usize),
}

/// `(fan_in, fan_out)` of a weight shape `[out, in, k...]` (a 1-D shape has fan_in = fan_out = len).
pub fn fans(shape: &[usize]) -> Result<(usize, usize)> {
    match shape.len() {
        0 => Err(NnError::Config {
            layer: "init",
            msg: "cannot compute fans of a scalar".into(),
        }),
        1 => Ok((shape[0], shape[0])),
        _ => {
            let rf: usize = shape[2..].iter().product();
            Ok((shape[1] * rf, shape[0] * rf))
        }
    }
}

impl Init {
    /// Draw a tensor of `shape`.
    pub fn tensor<R: Rng + ?Sized>(
        self,
        shape: &[usize],
        dtype: DType,
        rng: &mut R,
    ) -> Result<Tensor> {
        let fan = |mode: FanMode| -> Result<f64> {
            let (i, o) = fans(shape)?;
            Ok(match mode {
                FanMode::FanIn => i,
                FanMode::FanOut => o,
            }
            .max(1) as f64)
        };
        Ok(match self {
            Init::Zeros => Tensor::zeros(shape, dtype),
            Init::Constant(c) => Tensor::full(shape, c, dtype),
            Init::Uniform(lo, hi) => Tensor::rand_uniform(shape, lo, hi, dtype, rng)?,
            Init::Normal(std) => Tensor::randn(shape, 0.0, std, dtype, rng)?,
            Init::XavierUniform(gain) => {
                let (i, o) = fans(shape)?;
                let a = gain * (6.0 / (i + o).max(1) as f64).sqrt();
                Tensor::rand_uniform(shape, -a, a, dtype, rng)?
            }
            Init::XavierNormal(gain) => {
                let (i, o) = fans(shape)?;
                let s = gain * (2.0 / (i + o).max(1) as f64).sqrt();
                Tensor::randn(shape, 0.0, s, dtype, rng)?
            }
            Init::KaimingUniform { mode, nonlinearity } => {
                let b = nonlinearity.gain() * (3.0 / fan(mode)?).sqrt();
                Tensor::rand_uniform(shape, -b, b, dtype, rng)?
            }
            Init::KaimingNormal { mode, nonlinearity } => {
                let s = nonlinearity.gain() / fan(mode)?.sqrt();
                Tensor::randn(shape, 0.0, s, dtype, rng)?
            }
            Init::TorchDefaultWeight => {
                // kaiming_uniform_(a = sqrt(5)): gain = sqrt(2 / (1 + 5)), bound = gain * sqrt(3 / fan_in) = 1 / sqrt(fan_in).
                let b = 1.0 / fan(FanMode::FanIn)?.sqrt();
                Tensor::rand_uniform(shape, -b, b, dtype, rng)?
            }
            Init::TorchDefaultBias(fan_in) => {
                let b = if fan_in > 0 {
                    1.0 / (fan_in as f64).sqrt()
                } else {
                    0.0
                };
                Tensor::rand_uniform(shape, -b, b, dtype, rng)?
            }
        })
    }

    /// The variance this scheme gives for `shape` (for tests and docs).
    pub fn variance(self, shape: &[usize]) -> Result<f64> {
        let (i, o) = fans(shape)?;
        let fan = |m: FanMode| match m {
            FanMode::FanIn => i as f64,
            FanMode::FanOut => o as f64,
        };
        Ok(match self {
            Init::Zeros | Init::Constant(_) => 0.0,
            Init::Uniform(lo, hi) => (hi - lo).powi(2) / 12.0,
            Init::Normal(s) => s * s,
            Init::XavierUniform(g) | Init::XavierNormal(g) => g * g * 2.0 / (i + o) as f64,
            Init::KaimingUniform { mode, nonlinearity }
            | Init::KaimingNormal { mode, nonlinearity } => nonlinearity.gain().powi(2) / fan(mode),
            Init::TorchDefaultWeight => 1.0 / (3.0 * i as f64),
            Init::TorchDefaultBias(f) => 1.0 / (3.0 * f as f64),
        })
    }
}
