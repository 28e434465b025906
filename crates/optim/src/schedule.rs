//! Learning-rate schedules: `lr_at(step)` in closed form, composable with
//! [`Sequential`].
//!
//! A training loop sets the rate before each step (steps count from 0):
//!
//! ```
//! use heft_optim::{CosineAnnealing, Schedule, Sequential, Linear};
//! # fn main() -> heft_optim::Result<()> {
//! // 10 steps of linear warmup from 0 to 0.1, then 90 steps of cosine down to 0.
//! let sched = Sequential::new(
//!     vec![
//!         Box::new(Linear::new(0.0, 0.1, 10)) as Box<dyn Schedule>,
//!         Box::new(CosineAnnealing::new(0.1, 90, 0.0)?),
//!     ],
//!     vec![10],
//! )?;
//! assert_eq!(sched.lr_at(0), 0.0);
//! assert_eq!(sched.lr_at(10), 0.1);
//! assert!((sched.lr_at(55) - 0.05).abs() < 1e-12);
//! // for step in 0..100 { opt.set_lr(sched.lr_at(step)); opt.step(...)?; }
//! # Ok(())
//! # }
//! ```

use crate::error::{OptimError, Result};
use std::f64::consts::PI;

/// A learning rate as a function of the step (counted from 0).
pub trait Schedule {
    /// The learning rate for step `step`.
    fn lr_at(&self, step: usize) -> f64;
}

impl<S: Schedule + ?Sized> Schedule for Box<S> {
    fn lr_at(&self, step: usize) -> f64 {
        (**self).lr_at(step)
    }
}

impl<S: Schedule + ?Sized> Schedule for &S {
    fn lr_at(&self, step: usize) -> f64 {
        (**self).lr_at(step)
    }
}

/// The same rate at every step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Constant {
    /// The rate.
    pub lr: f64,
}

impl Constant {
    /// A constant rate.
    pub fn new(lr: f64) -> Self {
        Constant { lr }
    }
}

impl Schedule for Constant {
    fn lr_at(&self, _step: usize) -> f64 {
        self.lr
    }
}

/// Decay by `gamma` every `step_size` steps (PyTorch's `StepLR`):
/// `lr = base · γ^⌊step / step_size⌋`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepDecay {
    /// Rate at step 0.
    pub base: f64,
    /// Steps between decays (≥ 1).
    pub step_size: usize,
    /// Factor per decay.
    pub gamma: f64,
}

impl StepDecay {
    /// A step schedule; errors when `step_size` is 0.
    pub fn new(base: f64, step_size: usize, gamma: f64) -> Result<Self> {
        if step_size == 0 {
            return Err(OptimError::config(
                "step schedule",
                "step_size must be at least 1",
            ));
        }
        Ok(StepDecay {
            base,
            step_size,
            gamma,
        })
    }
}

impl Schedule for StepDecay {
    fn lr_at(&self, step: usize) -> f64 {
        self.base * self.gamma.powf((step / self.step_size) as f64)
    }
}

/// Decay by `gamma` every step (PyTorch's `ExponentialLR`): `lr = base · γ^step`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Exponential {
    /// Rate at step 0.
    pub base: f64,
    /// Factor per step.
    pub gamma: f64,
}

impl Exponential {
    /// An exponential schedule.
    pub fn new(base: f64, gamma: f64) -> Self {
        Exponential { base, gamma }
    }
}

impl Schedule for Exponential {
    fn lr_at(&self, step: usize) -> f64 {
        self.base * self.gamma.powf(step as f64)
    }
}

/// Cosine annealing (PyTorch's `CosineAnnealingLR`, in its closed form):
/// `lr = η_min + (base − η_min) · (1 + cos(π · step / T_max)) / 2`.
///
/// As in PyTorch's closed form, the cosine continues past `T_max` (the
/// rate climbs back towards `base`); use [`WarmupCosine`] or
/// [`Sequential`] with a [`Constant`] to hold `η_min` instead.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CosineAnnealing {
    /// Rate at step 0.
    pub base: f64,
    /// Steps of the half period (≥ 1).
    pub t_max: usize,
    /// Rate at step `t_max`.
    pub eta_min: f64,
}

impl CosineAnnealing {
    /// A cosine schedule; errors when `t_max` is 0.
    pub fn new(base: f64, t_max: usize, eta_min: f64) -> Result<Self> {
        if t_max == 0 {
            return Err(OptimError::config(
                "cosine schedule",
                "T_max must be at least 1",
            ));
        }
        Ok(CosineAnnealing {
            base,
            t_max,
            eta_min,
        })
    }
}

impl Schedule for CosineAnnealing {
    fn lr_at(&self, step: usize) -> f64 {
        let x = step as f64 / self.t_max as f64;
        self.eta_min + (self.base - self.eta_min) * (1.0 + (PI * x).cos()) / 2.0
    }
}

/// Linear interpolation from `start` to `end` over `steps` steps, then `end`:
/// `lr = start + (end − start) · min(step, steps) / steps`. With `start = 0`
/// it is a linear warmup (compose it with [`Sequential`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Linear {
    /// Rate at step 0.
    pub start: f64,
    /// Rate from step `steps` on.
    pub end: f64,
    /// Length of the ramp (0: `end` at once).
    pub steps: usize,
}

impl Linear {
    /// A linear ramp.
    pub fn new(start: f64, end: f64, steps: usize) -> Self {
        Linear { start, end, steps }
    }
}

impl Schedule for Linear {
    fn lr_at(&self, step: usize) -> f64 {
        if step >= self.steps {
            return self.end;
        }
        self.start + (self.end - self.start) * (step as f64 / self.steps as f64)
    }
}

/// Linear warmup from 0 to `base` over `warmup` steps, then cosine decay to
/// `eta_min` at step `total`, then `eta_min` (the schedule of Hugging Face's
/// `get_cosine_schedule_with_warmup`, with a floor):
///
/// ```text
/// lr = base · step / warmup                                  step < warmup
/// p  = min(1, (step − warmup) / (total − warmup))
/// lr = η_min + (base − η_min) · (1 + cos(π p)) / 2           otherwise
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WarmupCosine {
    /// Peak rate, reached at step `warmup`.
    pub base: f64,
    /// Warmup steps.
    pub warmup: usize,
    /// Step at which the rate reaches `eta_min`.
    pub total: usize,
    /// Final rate.
    pub eta_min: f64,
}

impl WarmupCosine {
    /// A warmup-cosine schedule; errors unless `warmup < total`.
    pub fn new(base: f64, warmup: usize, total: usize, eta_min: f64) -> Result<Self> {
        if warmup >= total {
            return Err(OptimError::config(
                "warmup-cosine schedule",
                format!("warmup ({warmup}) must be shorter than total ({total})"),
            ));
        }
        Ok(WarmupCosine {
            base,
            warmup,
            total,
            eta_min,
        })
    }
}

impl Schedule for WarmupCosine {
    fn lr_at(&self, step: usize) -> f64 {
        if step < self.warmup {
            return self.base * (step as f64 / self.warmup as f64);
        }
        let p = ((step - self.warmup) as f64 / (self.total - self.warmup) as f64).min(1.0);
        self.eta_min + (self.base - self.eta_min) * (1.0 + (PI * p).cos()) / 2.0
    }
}

/// The one-cycle policy, PyTorch's `OneCycleLR` with cosine annealing and
/// two phases.
///
/// With `initial = max_lr / div_factor`, `min = initial / final_div_factor`,
/// `e₁ = pct_start · total_steps − 1` and `e₂ = total_steps − 1`, and
/// `anneal(a, b, p) = b + (a − b) / 2 · (1 + cos(π p))`:
///
/// ```text
/// lr = anneal(initial, max_lr, step / e₁)                step ≤ e₁
/// lr = anneal(max_lr, min, (step − e₁) / (e₂ − e₁))      otherwise
/// ```
///
/// so the rate starts at `initial`, peaks at `max_lr` at step
/// `pct_start · total_steps − 1` and ends at `min` at step
/// `total_steps − 1`. PyTorch refuses steps past `total_steps`; here they
/// stay at `min`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OneCycle {
    /// Peak rate.
    pub max_lr: f64,
    /// Total number of steps of the cycle.
    pub total_steps: usize,
    /// Share of the steps spent increasing the rate (PyTorch default 0.3).
    pub pct_start: f64,
    /// `initial = max_lr / div_factor` (PyTorch default 25).
    pub div_factor: f64,
    /// `min = initial / final_div_factor` (PyTorch default 1e4).
    pub final_div_factor: f64,
}

impl OneCycle {
    /// A one-cycle schedule with PyTorch's defaults (`pct_start` 0.3,
    /// `div_factor` 25, `final_div_factor` 1e4); errors when `total_steps`
    /// is 0.
    pub fn new(max_lr: f64, total_steps: usize) -> Result<Self> {
        OneCycle::with_params(max_lr, total_steps, 0.3, 25.0, 1e4)
    }

    /// A one-cycle schedule; errors when `total_steps` is 0 or `pct_start`
    /// is outside `[0, 1]`.
    pub fn with_params(
        max_lr: f64,
        total_steps: usize,
        pct_start: f64,
        div_factor: f64,
        final_div_factor: f64,
    ) -> Result<Self> {
        if total_steps == 0 {
            return Err(OptimError::config(
                "one-cycle schedule",
                "total_steps must be at least 1",
            ));
        }
        if !(0.0..=1.0).contains(&pct_start) {
            return Err(OptimError::config(
                "one-cycle schedule",
                format!("pct_start {pct_start} must be in [0, 1]"),
            ));
        }
        Ok(OneCycle {
            max_lr,
            total_steps,
            pct_start,
            div_factor,
            final_div_factor,
        })
    }

    /// The rate at step 0.
    pub fn initial_lr(&self) -> f64 {
        self.max_lr / self.div_factor
    }

    /// The final rate.
    pub fn min_lr(&self) -> f64 {
        self.initial_lr() / self.final_div_factor
    }
}

fn cos_anneal(start: f64, end: f64, pct: f64) -> f64 {
    end + (start - end) / 2.0 * ((PI * pct).cos() + 1.0)
}

/// `num / den`, clamped to at most 1; 1 when the phase is empty.
fn phase_pct(num: f64, den: f64) -> f64 {
    if den <= 0.0 {
        1.0
    } else {
        (num / den).min(1.0)
    }
}

impl Schedule for OneCycle {
    fn lr_at(&self, step: usize) -> f64 {
        let s = step as f64;
        let e1 = self.pct_start * self.total_steps as f64 - 1.0;
        let e2 = self.total_steps as f64 - 1.0;
        if s <= e1 {
            cos_anneal(self.initial_lr(), self.max_lr, phase_pct(s, e1))
        } else {
            cos_anneal(self.max_lr, self.min_lr(), phase_pct(s - e1, e2 - e1))
        }
    }
}

/// Schedules one after another (PyTorch's `SequentialLR`): schedule `i`
/// runs from milestone `i − 1` (or 0) and sees steps counted from 0 at its
/// start.
pub struct Sequential {
    schedules: Vec<Box<dyn Schedule>>,
    milestones: Vec<usize>,
}

impl std::fmt::Debug for Sequential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sequential")
            .field("schedules", &self.schedules.len())
            .field("milestones", &self.milestones)
            .finish()
    }
}

impl Sequential {
    /// `schedules[0]` until `milestones[0]`, then `schedules[1]`, ...; errors
    /// unless there is one milestone fewer than schedules and the milestones
    /// increase strictly.
    pub fn new(schedules: Vec<Box<dyn Schedule>>, milestones: Vec<usize>) -> Result<Self> {
        if schedules.is_empty() || milestones.len() + 1 != schedules.len() {
            return Err(OptimError::config(
                "sequential schedule",
                format!(
                    "{} schedules need {} milestones, got {}",
                    schedules.len(),
                    schedules.len().saturating_sub(1),
                    milestones.len()
                ),
            ));
        }
        if milestones.windows(2).any(|w| w[0] >= w[1]) {
            return Err(OptimError::config(
                "sequential schedule",
                format!("milestones {milestones:?} must increase strictly"),
            ));
        }
        Ok(Sequential {
            schedules,
            milestones,
        })
    }
}

impl Schedule for Sequential {
    fn lr_at(&self, step: usize) -> f64 {
        let i = self.milestones.partition_point(|&m| m <= step);
        let start = if i == 0 { 0 } else { self.milestones[i - 1] };
        self.schedules[i].lr_at(step - start)
    }
}
