//! # heft-autograd
//!
//! Reverse-mode automatic differentiation for heft tensors.
//!
//! A [`Tape`] records every op on [`Var`]s in creation order; walking it
//! backwards gives the gradient of a loss with respect to every leaf (the
//! weights and biases). Each op's VJP is itself written with `Var` ops, so
//! with `create_graph` the backward pass is recorded too and gradients can
//! be differentiated again ([`functional::hvp`], [`functional::hessian`]).
//!
//! ```
//! use heft_autograd::{Tape, Result};
//! use heft_tensor::Tensor;
//! # fn main() -> Result<()> {
//! let tape = Tape::new();
//! // One linear layer: y = x w + b, loss = mean(y^2).
//! let x = tape.constant(Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2])?);
//! let w = tape.leaf(Tensor::from_vec(vec![0.5f32, -0.5, 0.25, 1.0], &[2, 2])?);
//! let b = tape.leaf(Tensor::from_vec(vec![0.1f32, 0.0], &[2])?);
//! let y = x.matmul(&w)?.add(&b)?;
//! let loss = y.square()?.mean_all()?;
//! let grads = tape.backward(&loss)?;
//! // dL/db = mean over the 4 outputs of 2y, summed over the batch rows.
//! let yv = y.value().to_vec::<f32>()?;
//! let db0 = (2.0 * yv[0] + 2.0 * yv[2]) / 4.0;
//! assert!((grads.get(&b).unwrap().to_vec::<f32>()?[0] - db0).abs() < 1e-6);
//! # Ok(())
//! # }
//! ```
//!
//! Gradient checking ([`gradcheck`](gradcheck::gradcheck)) and proptest
//! strategies ([`testing`], feature `proptest`) ship as public API, so users
//! can property-test the gradients of their own ops and models.

pub mod custom;
pub mod error;
pub mod functional;
pub mod gradcheck;
pub mod ops;
pub mod tape;
#[cfg(feature = "proptest")]
pub mod testing;
pub mod var;

pub use custom::CustomOp;
pub use error::{AutogradError, Result};
pub use gradcheck::{gradcheck, gradgradcheck, GradcheckError, GradcheckOptions, GradcheckReport};
pub use tape::{BackwardCtx, BackwardOptions, Grads, RecordingGuard, Tape};
pub use var::Var;
