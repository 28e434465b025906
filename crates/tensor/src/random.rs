//! Seeded random tensors.
//!
//! Values are drawn one by one, in row-major order, on the calling thread
//! from the RNG you pass, so the same seed gives the same tensor on any
//! machine and thread count. Use a portable RNG such as
//! `rand_chacha::ChaCha8Rng::seed_from_u64(seed)` for reproducibility
//! across versions. Normal samples use the Box-Muller transform in f64.

use crate::error::{Result, TensorError};
use crate::layout::numel;
use crate::tensor::any_dispatch;
use crate::{DType, Element, Tensor};
use rand::Rng;

impl Tensor {
    /// Uniform samples in `[low, high)`.
    pub fn rand_uniform<R: Rng + ?Sized>(
        shape: &[usize],
        low: f64,
        high: f64,
        dtype: DType,
        rng: &mut R,
    ) -> Result<Tensor> {
        if !(low.is_finite() && high.is_finite() && low <= high) {
            return Err(TensorError::invalid(
                "rand_uniform",
                format!("bounds [{low}, {high}) must be finite and ordered"),
            ));
        }
        let n = numel(shape);
        let v: Vec<f64> = (0..n)
            .map(|_| low + (high - low) * rng.random::<f64>())
            .collect();
        Ok(from_f64s(v, shape, dtype))
    }

    /// Normal samples with the given mean and standard deviation.
    pub fn randn<R: Rng + ?Sized>(
        shape: &[usize],
        mean: f64,
        std: f64,
        dtype: DType,
        rng: &mut R,
    ) -> Result<Tensor> {
        if !(mean.is_finite() && std.is_finite() && std >= 0.0) {
            return Err(TensorError::invalid(
                "randn",
                format!("mean {mean} and std {std} must be finite, std >= 0"),
            ));
        }
        let n = numel(shape);
        let mut v = Vec::with_capacity(n);
        while v.len() < n {
            // Box-Muller: two uniforms give two independent standard normals.
            let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
            let u2: f64 = rng.random::<f64>();
            let r = (-2.0 * u1.ln()).sqrt();
            let th = 2.0 * std::f64::consts::PI * u2;
            v.push(mean + std * r * th.cos());
            if v.len() < n {
                v.push(mean + std * r * th.sin());
            }
        }
        Ok(from_f64s(v, shape, dtype))
    }
}

fn from_f64s(v: Vec<f64>, shape: &[usize], dtype: DType) -> Tensor {
    any_dispatch!(dtype, T => Tensor::from_vec_unchecked(v.into_iter().map(T::from_f64).collect::<Vec<T>>(), shape))
}
