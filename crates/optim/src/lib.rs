//! # heft-optim
//!
//! Optimizers, learning-rate schedules, gradient clipping and gradient
//! accumulation for heft models.
//!
//! * [`Optimizer`]: [`Sgd`] (momentum, dampening, Nesterov, weight decay),
//!   [`Adam`] (optionally AMSGrad), [`AdamW`] (decoupled weight decay),
//!   [`RmsProp`] (momentum, centered) and [`Adagrad`] (lr decay, initial
//!   accumulator). Each follows the documented PyTorch algorithm (the
//!   formula is in each type's docs) and updates every parameter in place,
//!   one fused loop per parameter, in f32 or f64.
//! * [`ParamGroups`]: per-group learning-rate multipliers and weight decay,
//!   e.g. [`ParamGroups::decay_split`] to keep biases and norm scales free
//!   of weight decay.
//! * [`Schedule`]: [`Constant`], [`StepDecay`], [`Exponential`],
//!   [`CosineAnnealing`], [`Linear`], [`WarmupCosine`], [`OneCycle`], and
//!   [`Sequential`] to chain them.
//! * [`clip_grad_norm`], [`clip_grad_value`], [`grad_norm`].
//! * [`GradAccumulator`] for micro-batches (see [`accum`]).
//! * [`OptimizerState`]: save and restore an optimizer so training resumes
//!   bit for bit (tensors plus string metadata, ready for a safetensors file).
//!
//! ```
//! use heft_autograd::Tape;
//! use heft_nn::{loss, Ctx, Mode, ParamKind, ParamStore};
//! use heft_optim::{clip_grad_norm, AdamConfig, AdamW, Optimizer, ParamGroups, Schedule, WarmupCosine};
//! use heft_tensor::{DType, Tensor};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut store = ParamStore::new();
//! let w = store.add("w", Tensor::zeros(&[3], DType::F32), ParamKind::Weight)?;
//! let target = Tensor::from_vec(vec![1.0f32, -2.0, 0.5], &[3])?;
//!
//! let mut opt = AdamW::new(AdamConfig::adamw(0.1))?
//!     .with_groups(ParamGroups::decay_split(&store, 1e-4));
//! let sched = WarmupCosine::new(0.1, 10, 200, 1e-3)?;
//! for step in 0..200 {
//!     let mut grads = {
//!         let tape = Tape::new();
//!         let ctx = Ctx::new(&store, &tape, Mode::Train);
//!         let l = loss::mse(&ctx.param(w), &ctx.input(target.clone()))?;
//!         ctx.backward(&l)?
//!     }; // the tape is gone: the update below writes in place, no copy
//!     clip_grad_norm(&mut grads, 1.0)?;
//!     opt.set_lr(sched.lr_at(step));
//!     opt.step(&mut store, &grads)?;
//! }
//! assert!(store.value(w).max_abs_diff(&target)? < 0.05);
//! assert_eq!(opt.num_steps(), 200);
//!
//! // Save the optimizer with the model; resume later.
//! let state = opt.state();
//! let (tensors, meta) = (state.to_tensors(), state.metadata());
//! let mut resumed = AdamW::new(AdamConfig::adamw(0.1))?;
//! resumed.load_state(&heft_optim::OptimizerState::from_tensors(tensors, &meta)?)?;
//! assert_eq!(resumed.num_steps(), 200);
//! # Ok(())
//! # }
//! ```

pub mod accum;
pub mod adagrad;
pub mod adam;
pub mod clip;
pub mod error;
pub mod groups;
pub mod optimizer;
pub mod rmsprop;
pub mod schedule;
pub mod sgd;
pub mod state;

pub use accum::GradAccumulator;
pub use adagrad::{Adagrad, AdagradConfig};
pub use adam::{Adam, AdamConfig, AdamW};
pub use clip::{clip_grad_norm, clip_grad_value, grad_norm};
pub use error::{OptimError, Result};
pub use groups::{ParamGroup, ParamGroups};
pub use optimizer::Optimizer;
pub use rmsprop::{RmsProp, RmsPropConfig};
pub use schedule::{
    Constant, CosineAnnealing, Exponential, Linear, OneCycle, Schedule, Sequential, StepDecay,
    WarmupCosine,
};
pub use sgd::{Sgd, SgdConfig};
pub use state::OptimizerState;
