//! Adam (with optional AMSGrad) and AdamW, as PyTorch's `torch.optim.Adam`
//! and `torch.optim.AdamW`.

use crate::error::{OptimError, Result};
use crate::groups::{ParamGroups, Resolved};
use crate::optimizer::{check_nonneg, hyper_get, impl_optimizer, Engine, Rule};
use heft_tensor::Float;

/// Hyperparameters of [`Adam`] and [`AdamW`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// Learning rate γ (default 1e-3).
    pub lr: f64,
    /// β₁, the decay of the first moment (default 0.9).
    pub beta1: f64,
    /// β₂, the decay of the second moment (default 0.999).
    pub beta2: f64,
    /// ε, added to the denominator (default 1e-8).
    pub eps: f64,
    /// Weight decay λ: L2 (added to the gradient) for [`Adam`], decoupled for
    /// [`AdamW`] (default 0; [`AdamConfig::adamw`] uses 1e-2 as PyTorch).
    pub weight_decay: f64,
    /// Use the running maximum of the second moment (AMSGrad).
    pub amsgrad: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
        }
    }
}

impl AdamConfig {
    /// Defaults with learning rate `lr` (weight decay 0).
    pub fn new(lr: f64) -> Self {
        AdamConfig {
            lr,
            ..Self::default()
        }
    }

    /// PyTorch's AdamW defaults with learning rate `lr` (weight decay 1e-2).
    pub fn adamw(lr: f64) -> Self {
        AdamConfig {
            lr,
            weight_decay: 1e-2,
            ..Self::default()
        }
    }

    /// Set β₁ and β₂.
    pub fn betas(mut self, beta1: f64, beta2: f64) -> Self {
        self.beta1 = beta1;
        self.beta2 = beta2;
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

    /// Turn AMSGrad on or off.
    pub fn amsgrad(mut self, amsgrad: bool) -> Self {
        self.amsgrad = amsgrad;
        self
    }

    fn validate(&self, what: &'static str) -> Result<()> {
        check_nonneg(what, "learning rate", self.lr)?;
        check_nonneg(what, "epsilon", self.eps)?;
        check_nonneg(what, "weight decay", self.weight_decay)?;
        for (name, b) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return Err(OptimError::config(
                    what,
                    format!("invalid {name} {b} (must be in [0, 1))"),
                ));
            }
        }
        Ok(())
    }
}

/// The Adam kernel, L2 or decoupled.
#[derive(Clone, Copy, Debug, PartialEq)]
struct AdamRule {
    cfg: AdamConfig,
    decoupled: bool,
}

impl AdamRule {
    fn name(decoupled: bool) -> &'static str {
        if decoupled {
            "adamw"
        } else {
            "adam"
        }
    }
}

impl Rule for AdamRule {
    fn kind(&self) -> &'static str {
        Self::name(self.decoupled)
    }
    fn lr(&self) -> f64 {
        self.cfg.lr
    }
    fn set_lr(&mut self, lr: f64) {
        self.cfg.lr = lr;
    }
    fn weight_decay(&self) -> f64 {
        self.cfg.weight_decay
    }
    fn buffer_names(&self) -> Vec<&'static str> {
        if self.cfg.amsgrad {
            vec!["exp_avg", "exp_avg_sq", "max_exp_avg_sq"]
        } else {
            vec!["exp_avg", "exp_avg_sq"]
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
        let c = &self.cfg;
        let t = step as f64;
        let bias_correction1 = 1.0 - c.beta1.powf(t);
        let bias_correction2 = 1.0 - c.beta2.powf(t);
        let step_size = T::from_f64(h.lr / bias_correction1);
        let bc2_sqrt = T::from_f64(bias_correction2.sqrt());
        let eps = T::from_f64(c.eps);
        let (b1, omb1) = (T::from_f64(c.beta1), T::from_f64(1.0 - c.beta1));
        let (b2, omb2) = (T::from_f64(c.beta2), T::from_f64(1.0 - c.beta2));
        // L2 decay folds λθ into the gradient; decoupled decay shrinks θ first.
        let l2 = !self.decoupled && h.weight_decay != 0.0;
        let wd = T::from_f64(h.weight_decay);
        let shrink = T::from_f64(1.0 - h.lr * h.weight_decay);
        let decoupled = self.decoupled;

        let n = p.len();
        let g = &g[..n];
        let mut it = bufs.iter_mut();
        let (Some(m), Some(v)) = (it.next(), it.next()) else {
            return Err(OptimError::State("adam: missing moment buffers".into()));
        };
        let (m, v) = (&mut m[..n], &mut v[..n]);
        let mut vmax = it.next().map(|b| &mut b[..n]);
        for i in 0..p.len() {
            let mut pi = p[i];
            if decoupled {
                pi *= shrink;
            }
            let gi = if l2 { g[i] + wd * pi } else { g[i] };
            let mi = b1 * m[i] + omb1 * gi;
            let vi = b2 * v[i] + omb2 * (gi * gi);
            m[i] = mi;
            v[i] = vi;
            let second = match vmax.as_deref_mut() {
                Some(vmax) => {
                    let mx = vmax[i].max_nan(vi);
                    vmax[i] = mx;
                    mx
                }
                None => vi,
            };
            let denom = second.sqrt() / bc2_sqrt + eps;
            p[i] = pi - step_size * (mi / denom);
        }
        Ok(())
    }

    fn hyper(&self) -> Vec<(&'static str, f64)> {
        let c = &self.cfg;
        vec![
            ("lr", c.lr),
            ("beta1", c.beta1),
            ("beta2", c.beta2),
            ("eps", c.eps),
            ("weight_decay", c.weight_decay),
            ("amsgrad", if c.amsgrad { 1.0 } else { 0.0 }),
        ]
    }

    fn with_hyper(&self, h: &[(String, f64)]) -> Result<Self> {
        let k = self.kind();
        let cfg = AdamConfig {
            lr: hyper_get(k, h, "lr")?,
            beta1: hyper_get(k, h, "beta1")?,
            beta2: hyper_get(k, h, "beta2")?,
            eps: hyper_get(k, h, "eps")?,
            weight_decay: hyper_get(k, h, "weight_decay")?,
            amsgrad: hyper_get(k, h, "amsgrad")? != 0.0,
        };
        cfg.validate(k)?;
        Ok(AdamRule {
            cfg,
            decoupled: self.decoupled,
        })
    }
}

/// Adam, PyTorch's `torch.optim.Adam` algorithm (L2 weight decay).
///
/// For each parameter θ with gradient g at its step t (counted from 1):
///
/// ```text
/// g  ← g + λ θ                          if λ ≠ 0
/// m  ← β₁ m + (1 − β₁) g
/// v  ← β₂ v + (1 − β₂) g²
/// v̄  ← max(v̄, v)                        if AMSGrad (v̄ starts at 0)
/// s  ← v̄ if AMSGrad, else v
/// θ  ← θ − (γ / (1 − β₁ᵗ)) · m / (√s / √(1 − β₂ᵗ) + ε)
/// ```
///
/// that is `θ − γ m̂ / (√ŝ + ε)` with the bias-corrected moments, with ε
/// added after dividing √s by √(1 − β₂ᵗ), exactly where PyTorch adds it.
/// The bias corrections are computed in f64, then rounded to the
/// parameter's dtype.
///
/// State: `exp_avg` (m), `exp_avg_sq` (v) and, with AMSGrad,
/// `max_exp_avg_sq` (v̄).
#[derive(Clone, Debug)]
pub struct Adam {
    rule: AdamRule,
    engine: Engine,
}

impl Adam {
    /// An Adam optimizer; errors on an invalid configuration (negative
    /// learning rate, ε or weight decay; β outside `[0, 1)`).
    pub fn new(config: AdamConfig) -> Result<Self> {
        config.validate("adam")?;
        Ok(Adam {
            rule: AdamRule {
                cfg: config,
                decoupled: false,
            },
            engine: Engine::new(ParamGroups::new()),
        })
    }

    /// The hyperparameters.
    pub fn config(&self) -> &AdamConfig {
        &self.rule.cfg
    }
}

impl_optimizer!(Adam);

/// AdamW, PyTorch's `torch.optim.AdamW` algorithm (decoupled weight decay).
///
/// For each parameter θ with gradient g at its step t (counted from 1):
///
/// ```text
/// θ  ← θ (1 − γ λ)
/// m  ← β₁ m + (1 − β₁) g
/// v  ← β₂ v + (1 − β₂) g²
/// v̄  ← max(v̄, v)                        if AMSGrad
/// s  ← v̄ if AMSGrad, else v
/// θ  ← θ − (γ / (1 − β₁ᵗ)) · m / (√s / √(1 − β₂ᵗ) + ε)
/// ```
///
/// The gradient is not touched by the decay; everything else is [`Adam`].
/// State: `exp_avg`, `exp_avg_sq`, and `max_exp_avg_sq` with AMSGrad.
///
/// ```
/// use heft_nn::{ParamGrads, ParamKind, ParamStore};
/// use heft_optim::{AdamConfig, AdamW, Optimizer, ParamGroups};
/// use heft_tensor::Tensor;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut store = ParamStore::new();
/// let w = store.add("w", Tensor::from_vec(vec![1.0f32, -1.0], &[2])?, ParamKind::Weight)?;
/// let b = store.add("b", Tensor::from_vec(vec![1.0f32], &[1])?, ParamKind::Bias)?;
/// // Decay the weight, not the bias.
/// let mut opt = AdamW::new(AdamConfig::adamw(0.1))?
///     .with_groups(ParamGroups::decay_split(&store, 0.5));
/// let mut grads = heft_nn::ParamGrads::new(store.len());
/// grads.set(w, Tensor::zeros(&[2], heft_tensor::DType::F32));
/// grads.set(b, Tensor::zeros(&[1], heft_tensor::DType::F32));
/// opt.step(&mut store, &grads)?;
/// // With zero gradients only the decay acts: w ← w (1 − 0.1 · 0.5).
/// assert_eq!(store.value(w).to_vec::<f32>()?, vec![0.95, -0.95]);
/// assert_eq!(store.value(b).to_vec::<f32>()?, vec![1.0]);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct AdamW {
    rule: AdamRule,
    engine: Engine,
}

impl AdamW {
    /// An AdamW optimizer; errors on an invalid configuration (negative
    /// learning rate, ε or weight decay; β outside `[0, 1)`).
    pub fn new(config: AdamConfig) -> Result<Self> {
        config.validate("adamw")?;
        Ok(AdamW {
            rule: AdamRule {
                cfg: config,
                decoupled: true,
            },
            engine: Engine::new(ParamGroups::new()),
        })
    }

    /// The hyperparameters.
    pub fn config(&self) -> &AdamConfig {
        &self.rule.cfg
    }
}

impl_optimizer!(AdamW);
