//! RMSprop (optionally centered, with momentum), as PyTorch's `torch.optim.RMSprop`.

use crate::error::{OptimError, Result};
use crate::groups::{ParamGroups, Resolved};
use crate::optimizer::{check_nonneg, hyper_get, impl_optimizer, Engine, Rule};
use heft_tensor::Float;

/// Hyperparameters of [`RmsProp`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmsPropConfig {
    /// Learning rate γ (default 1e-2).
    pub lr: f64,
    /// Smoothing constant α of the squared-gradient average (default 0.99).
    pub alpha: f64,
    /// ε, added to the denominator (default 1e-8).
    pub eps: f64,
    /// L2 weight decay λ, added to the gradient (default 0).
    pub weight_decay: f64,
    /// Momentum μ (default 0: no momentum buffer).
    pub momentum: f64,
    /// Normalise by an estimate of the variance instead of the raw second moment.
    pub centered: bool,
}

impl Default for RmsPropConfig {
    fn default() -> Self {
        RmsPropConfig {
            lr: 1e-2,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
        }
    }
}

impl RmsPropConfig {
    /// Defaults with learning rate `lr`.
    pub fn new(lr: f64) -> Self {
        RmsPropConfig {
            lr,
            ..Self::default()
        }
    }

    /// Set α.
    pub fn alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
    }

    /// Set ε.
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// Set the weight decay.
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// Set the momentum.
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }

    /// Turn centering on or off.
    pub fn centered(mut self, centered: bool) -> Self {
        self.centered = centered;
        self
    }

    fn validate(&self) -> Result<()> {
        check_nonneg("rmsprop", "learning rate", self.lr)?;
        check_nonneg("rmsprop", "alpha", self.alpha)?;
        check_nonneg("rmsprop", "epsilon", self.eps)?;
        check_nonneg("rmsprop", "weight decay", self.weight_decay)?;
        check_nonneg("rmsprop", "momentum", self.momentum)
    }
}

impl Rule for RmsPropConfig {
    fn kind(&self) -> &'static str {
        "rmsprop"
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
        let mut v = vec!["square_avg"];
        if self.momentum > 0.0 {
            v.push("momentum_buffer");
        }
        if self.centered {
            v.push("grad_avg");
        }
        v
    }

    #[inline(always)]
    fn update<T: Float>(
        &self,
        h: Resolved,
        _step: u64,
        p: &mut [T],
        g: &[T],
        bufs: &mut [&mut [T]],
    ) -> Result<()> {
        let lr = T::from_f64(h.lr);
        let decay = h.weight_decay != 0.0;
        let wd = T::from_f64(h.weight_decay);
        let alpha = T::from_f64(self.alpha);
        let one_minus_alpha = T::from_f64(1.0 - self.alpha);
        let eps = T::from_f64(self.eps);
        let mu = T::from_f64(self.momentum);

        let mut it = bufs.iter_mut();
        let Some(sq) = it.next() else {
            return Err(OptimError::State("rmsprop: missing square_avg".into()));
        };
        let n = p.len();
        let (sq, g) = (&mut sq[..n], &g[..n]);
        let mut mom = None;
        if self.momentum > 0.0 {
            mom = it.next().map(|b| &mut b[..n]);
        }
        let mut gavg = None;
        if self.centered {
            gavg = it.next().map(|b| &mut b[..n]);
        }
        for i in 0..p.len() {
            let gi = if decay { g[i] + wd * p[i] } else { g[i] };
            let s = alpha * sq[i] + one_minus_alpha * (gi * gi);
            sq[i] = s;
            let var = match gavg.as_deref_mut() {
                Some(ga) => {
                    let a = alpha * ga[i] + one_minus_alpha * gi;
                    ga[i] = a;
                    s - a * a
                }
                None => s,
            };
            let denom = var.sqrt() + eps;
            match mom.as_deref_mut() {
                Some(b) => {
                    let bi = mu * b[i] + gi / denom;
                    b[i] = bi;
                    p[i] = p[i] - lr * bi;
                }
                None => p[i] = p[i] - lr * (gi / denom),
            }
        }
        Ok(())
    }

    fn hyper(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("lr", self.lr),
            ("alpha", self.alpha),
            ("eps", self.eps),
            ("weight_decay", self.weight_decay),
            ("momentum", self.momentum),
            ("centered", if self.centered { 1.0 } else { 0.0 }),
        ]
    }

    fn with_hyper(&self, h: &[(String, f64)]) -> Result<Self> {
        let k = "rmsprop";
        let c = RmsPropConfig {
            lr: hyper_get(k, h, "lr")?,
            alpha: hyper_get(k, h, "alpha")?,
            eps: hyper_get(k, h, "eps")?,
            weight_decay: hyper_get(k, h, "weight_decay")?,
            momentum: hyper_get(k, h, "momentum")?,
            centered: hyper_get(k, h, "centered")? != 0.0,
        };
        c.validate()?;
        Ok(c)
    }
}

/// RMSprop, PyTorch's `torch.optim.RMSprop` algorithm.
///
/// For each parameter θ with gradient g (all state starts at 0):
///
/// ```text
/// g  ← g + λ θ                     if λ ≠ 0
/// v  ← α v + (1 − α) g²
/// ṽ  ← v
/// if centered:
///     ḡ ← α ḡ + (1 − α) g
///     ṽ ← ṽ − ḡ²
/// if μ > 0:
///     b ← μ b + g / (√ṽ + ε)
///     θ ← θ − γ b
/// else:
///     θ ← θ − γ g / (√ṽ + ε)
/// ```
///
/// State: `square_avg` (v), `momentum_buffer` (b, when μ > 0) and
/// `grad_avg` (ḡ, when centered).
#[derive(Clone, Debug)]
pub struct RmsProp {
    rule: RmsPropConfig,
    engine: Engine,
}

impl RmsProp {
    /// An RMSprop optimizer; errors on a negative (or NaN) hyperparameter.
    pub fn new(config: RmsPropConfig) -> Result<Self> {
        config.validate()?;
        Ok(RmsProp {
            rule: config,
            engine: Engine::new(ParamGroups::new()),
        })
    }

    /// The hyperparameters.
    pub fn config(&self) -> &RmsPropConfig {
        &self.rule
    }
}

impl_optimizer!(RmsProp);
