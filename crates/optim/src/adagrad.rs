//! Adagrad, as PyTorch's `torch.optim.Adagrad`.

use crate::error::Result;
use crate::groups::{ParamGroups, Resolved};
use crate::optimizer::{check_nonneg, hyper_get, impl_optimizer, Engine, Rule};
use heft_tensor::{Float, Tensor};

/// Hyperparameters of [`Adagrad`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdagradConfig {
    /// Learning rate γ (default 1e-2).
    pub lr: f64,
    /// Learning-rate decay η (default 0).
    pub lr_decay: f64,
    /// L2 weight decay λ, added to the gradient (default 0).
    pub weight_decay: f64,
    /// Starting value of the squared-gradient sum (default 0).
    pub initial_accumulator_value: f64,
    /// ε, added to the denominator (default 1e-10).
    pub eps: f64,
}

impl Default for AdagradConfig {
    fn default() -> Self {
        AdagradConfig {
            lr: 1e-2,
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
        }
    }
}

impl AdagradConfig {
    /// Defaults with learning rate `lr`.
    pub fn new(lr: f64) -> Self {
        AdagradConfig {
            lr,
            ..Self::default()
        }
    }

    /// Set the learning-rate decay.
    pub fn lr_decay(mut self, lr_decay: f64) -> Self {
        self.lr_decay = lr_decay;
        self
    }

    /// Set the weight decay.
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// Set the starting value of the accumulator.
    pub fn initial_accumulator_value(mut self, v: f64) -> Self {
        self.initial_accumulator_value = v;
        self
    }

    /// Set ε.
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    fn validate(&self) -> Result<()> {
        check_nonneg("adagrad", "learning rate", self.lr)?;
        check_nonneg("adagrad", "lr_decay", self.lr_decay)?;
        check_nonneg("adagrad", "weight decay", self.weight_decay)?;
        check_nonneg(
            "adagrad",
            "initial_accumulator_value",
            self.initial_accumulator_value,
        )?;
        check_nonneg("adagrad", "epsilon", self.eps)
    }
}

impl Rule for AdagradConfig {
    fn kind(&self) -> &'static str {
        "adagrad"
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
        vec!["sum"]
    }
    fn init_state(&self, param: &Tensor) -> Vec<Tensor> {
        vec![Tensor::full(
            param.shape(),
            self.initial_accumulator_value,
            param.dtype(),
        )]
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
        let clr = T::from_f64(h.lr / (1.0 + (step - 1) as f64 * self.lr_decay));
        let decay = h.weight_decay != 0.0;
        let wd = T::from_f64(h.weight_decay);
        let eps = T::from_f64(self.eps);
        let Some(sum) = bufs.first_mut() else {
            return Err(crate::OptimError::State("adagrad: missing sum".into()));
        };
        let (sum, g) = (&mut sum[..p.len()], &g[..p.len()]);
        for i in 0..p.len() {
            let gi = if decay { g[i] + wd * p[i] } else { g[i] };
            let s = sum[i] + gi * gi;
            sum[i] = s;
            p[i] = p[i] - clr * (gi / (s.sqrt() + eps));
        }
        Ok(())
    }

    fn hyper(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("lr", self.lr),
            ("lr_decay", self.lr_decay),
            ("weight_decay", self.weight_decay),
            ("initial_accumulator_value", self.initial_accumulator_value),
            ("eps", self.eps),
        ]
    }

    fn with_hyper(&self, h: &[(String, f64)]) -> Result<Self> {
        let k = "adagrad";
        let c = AdagradConfig {
            lr: hyper_get(k, h, "lr")?,
            lr_decay: hyper_get(k, h, "lr_decay")?,
            weight_decay: hyper_get(k, h, "weight_decay")?,
            initial_accumulator_value: hyper_get(k, h, "initial_accumulator_value")?,
            eps: hyper_get(k, h, "eps")?,
        };
        c.validate()?;
        Ok(c)
    }
}

/// Adagrad, PyTorch's `torch.optim.Adagrad` algorithm.
///
/// For each parameter θ with gradient g at its step t (counted from 1),
/// with the sum S starting at `initial_accumulator_value`:
///
/// ```text
/// γ̃  ← γ / (1 + (t − 1) η)
/// g  ← g + λ θ                     if λ ≠ 0
/// S  ← S + g²
/// θ  ← θ − γ̃ g / (√S + ε)
/// ```
///
/// State: `sum` (S).
#[derive(Clone, Debug)]
pub struct Adagrad {
    rule: AdagradConfig,
    engine: Engine,
}

impl Adagrad {
    /// An Adagrad optimizer; errors on a negative (or NaN) hyperparameter.
    pub fn new(config: AdagradConfig) -> Result<Self> {
        config.validate()?;
        Ok(Adagrad {
            rule: config,
            engine: Engine::new(ParamGroups::new()),
        })
    }

    /// The hyperparameters.
    pub fn config(&self) -> &AdagradConfig {
        &self.rule
    }
}

impl_optimizer!(Adagrad);
