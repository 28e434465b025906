//! # heft
//!
//! A reverse-mode automatic-differentiation tensor engine: tensors with
//! strided views and fast CPU kernels ([`tensor`]), a tape with
//! higher-order gradients and gradient checking ([`autograd`]), layers,
//! parameters and model files ([`nn`]), optimizers and schedules ([`optim`]).
//!
//! ```
//! use heft::prelude::*;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let tape = Tape::new();
//! let w = tape.leaf(Tensor::from_vec(vec![1.0f64, -2.0], &[2])?);
//! let loss = w.square()?.sum_all()?;          // |w|^2
//! let g = tape.backward(&loss)?;
//! assert_eq!(g.get(&w).unwrap().to_vec::<f64>()?, vec![2.0, -4.0]); // 2w
//! # Ok(())
//! # }
//! ```

pub use heft_autograd as autograd;
pub use heft_nn as nn;
pub use heft_optim as optim;
pub use heft_tensor as tensor;

/// The names most programs need.
pub mod prelude {
    pub use heft_autograd::functional::{grad, hessian, hvp, jvp, value_and_grad, vjp};
    pub use heft_autograd::{gradcheck, gradgradcheck, GradcheckOptions, Tape, Var};
    pub use heft_nn::init::{FanMode, Init, Nonlinearity};
    pub use heft_nn::layers::*;
    pub use heft_nn::{loss, Ctx, Mode, Module, ParamGrads, ParamKind, ParamStore, Sequential};
    pub use heft_optim::{
        checkpoint, clip_grad_norm, clip_grad_value, Adagrad, AdagradConfig, Adam, AdamConfig,
        AdamW, Optimizer, ParamGroups, RmsProp, RmsPropConfig, Schedule, Sgd, SgdConfig,
    };
    pub use heft_tensor::{Conv2dParams, DType, Tensor};
}
