//! Stochastic gradient descent with momentum, dampening, Nesterov momentum
//! and (L2) weight decay, as PyTorch's `torch.optim.SGD`.

use crate::error::{OptimError, Result};
use crate::groups::{ParamGroups, Resolved};
use crate::optimizer::{check_nonneg, hyper_get, impl_optimizer, Engine, Rule};
use heft_tensor::Float;

/// Hyperparameters of [`Sgd`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    /// Learning rate γ (PyTorch's default 1e-3).
    pub lr: f64,
    /// Momentum μ (0 disables the momentum buffer).
    pub momentum: f64,
    /// Dampening τ of the momentum.
    pub dampening: f64,
    /// Nesterov momentum (needs `momentum > 0` and `dampening == 0`).
    pub nesterov: bool,
    /// L2 weight decay λ, added to the gradient.
    pub weight_decay: f64,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig {
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        }
    }
}

impl SgdConfig {
    /// Plain SGD with learning rate `lr`.
    pub fn new(lr: f64) -> Self {
        SgdConfig {
            lr,
            ..Self::default()
        }
    }

    /// Set the momentum.
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }

    /// Set the dampening.
    pub fn dampening(mut self, dampening: f64) -> Self {
        self.dampening = dampening;
        self
    }

    /// Turn Nesterov momentum on or off.
    pub fn nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
        self
    }

    /// Set the weight decay.
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    fn validate(&self) -> Result<()> {
        check_nonneg("sgd", "learning rate", self.lr)?;
        check_nonneg("sgd", "momentum", self.momentum)?;
        check_nonneg("sgd", "weight decay", self.weight_decay)?;
        if !self.dampening.is_finite() {
            return Err(OptimError::config(
                "sgd",
                format!("invalid dampening {}", self.dampening),
            ));
        }
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(OptimError::config(
                "sgd",
                "Nesterov momentum requires a momentum and zero dampening",
            ));
        }
        Ok(())
    }
}

impl Rule for SgdConfig {
    fn kind(&self) -> &'static str {
        "sgd"
    }
    fn lr(&self) -> f64 {
        self.lr
    }
    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }
    fn weight_decay(&self) -> f64 {
        self.weight_decay
    }
    fn buffer_names(&self) -> Vec<&'static str> {
        if self.momentum != 0.0 {
            vec!["momentum_buffer"]
        } else {
            vec![]
        }
    }

    #[inline(always)]
    fn update<T: Float>(
        &self,
        h: Resolved,
        step: u64,
        p: &mut [T],
        g: &[T],
        bufs: &mut [&mut [T]],
    ) -> Result<()> {
        let lr = T::from_f64(h.lr);
        let decay = h.weight_decay != 0.0;
        let wd = T::from_f64(h.weight_decay);
        let g = &g[..p.len()];
        let Some(b) = bufs.first_mut() else {
            if decay {
                for (p, &g) in p.iter_mut().zip(g) {
                    *p = *p - lr * (g + wd * *p);
                }
            } else {
                for (p, &g) in p.iter_mut().zip(g) {
                    *p = *p - lr * g;
                }
            }
            return Ok(());
        };
        let b = &mut b[..p.len()];
        let mu = T::from_f64(self.momentum);
        let one_minus_damp = T::from_f64(1.0 - self.dampening);
        let first = step == 1;
        let nesterov = self.nesterov;
        for i in 0..p.len() {
            let d = if decay { g[i] + wd * p[i] } else { g[i] };
            b[i] = if first {
                d
            } else {
                mu * b[i] + one_minus_damp * d
            };
            let d = if nesterov { d + mu * b[i] } else { b[i] };
            p[i] = p[i] - lr * d;
        }
        Ok(())
    }

    fn hyper(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("lr", self.lr),
            ("momentum", self.momentum),
            ("dampening", self.dampening),
            ("nesterov", if self.nesterov { 1.0 } else { 0.0 }),
            ("weight_decay", self.weight_decay),
        ]
    }

    fn with_hyper(&self, h: &[(String, f64)]) -> Result<Self> {
        let k = "sgd";
        let c = SgdConfig {
            lr: hyper_get(k, h, "lr")?,
            momentum: hyper_get(k, h, "momentum")?,
            dampening: hyper_get(k, h, "dampening")?,
            nesterov: hyper_get(k, h, "nesterov")? != 0.0,
            weight_decay: hyper_get(k, h, "weight_decay")?,
        };
        c.validate()?;
        Ok(c)
    }
}

/// Stochastic gradient descent, PyTorch's `torch.optim.SGD` algorithm.
///
/// For each parameter θ with gradient g at its step t (counted from 1):
///
/// ```text
/// g ← g + λ θ                      if λ ≠ 0
/// if μ ≠ 0:
///     b ← g                        if t = 1
///     b ← μ b + (1 − τ) g          otherwise
///     g ← g + μ b                  if Nesterov
///     g ← b                        otherwise
/// θ ← θ − γ g
/// ```
///
/// State: `momentum_buffer` (only when μ ≠ 0).
///
/// ```
/// use heft_nn::{ParamGrads, ParamKind, ParamStore};
/// use heft_optim::{Optimizer, Sgd, SgdConfig};
/// use heft_tensor::Tensor;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut store = ParamStore::new();
/// let w = store.add("w", Tensor::from_vec(vec![1.0f64, 2.0], &[2])?, ParamKind::Weight)?;
/// let mut grads = ParamGrads::new(store.len());
/// grads.set(w, Tensor::from_vec(vec![0.5f64, -1.0], &[2])?);
/// let mut opt = Sgd::new(SgdConfig::new(0.1).momentum(0.9))?;
/// opt.step(&mut store, &grads)?;
/// assert_eq!(store.value(w).to_vec::<f64>()?, vec![1.0 - 0.1 * 0.5, 2.0 + 0.1 * 1.0]);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Sgd {
    rule: SgdConfig,
    engine: Engine,
}

impl Sgd {
    /// An SGD optimizer; errors on an invalid configuration (negative
    /// learning rate, momentum or weight decay; Nesterov without momentum or
    /// with dampening).
    pub fn new(config: SgdConfig) -> Result<Self> {
        config.validate()?;
        Ok(Sgd {
            rule: config,
            engine: Engine::new(ParamGroups::new()),
        })
    }

    /// The hyperparameters.
    pub fn config(&self) -> &SgdConfig {
        &self.rule
    }
}

impl_optimizer!(Sgd);
