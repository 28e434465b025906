//! User-defined differentiable ops.
//!
//! Implement [`CustomOp`] to add a fused op without touching heft: a
//! forward on tensors and a backward on [`Var`]s. Write the backward with
//! `Var` ops and the op supports higher-order gradients too.
//!
//! ```
//! use heft_autograd::{CustomOp, Tape, Var, Result};
//! use heft_tensor::Tensor;
//!
//! /// y = x^3, fused.
//! struct Cube;
//! impl CustomOp for Cube {
//!     fn name(&self) -> &'static str { "cube" }
//!     fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
//!         Ok(inputs[0].powf(3.0)?)
//!     }
//!     fn backward(&self, inputs: &[Var], _output: &Var, grad: &Var) -> Result<Vec<Option<Var>>> {
//!         Ok(vec![Some(grad.mul(&inputs[0].square()?.mul_scalar(3.0)?)?)])
//!     }
//! }
//!
//! # fn main() -> Result<()> {
//! let tape = Tape::new();
//! let x = tape.leaf(Tensor::from_vec(vec![2.0f64], &[1])?);
//! let y = Var::custom(std::rc::Rc::new(Cube), &[&x])?;
//! let g = tape.backward(&y.sum_all()?)?;
//! assert_eq!(g.get(&x).unwrap().to_vec::<f64>()?, vec![12.0]);
//! # Ok(())
//! # }
//! ```

use crate::error::{AutogradError, Result};
use crate::tape::InputGrads;
use crate::var::Var;
use heft_tensor::Tensor;
use std::rc::Rc;

/// A user-defined op: forward on tensors, backward on vars.
pub trait CustomOp {
    /// The op's name, used in errors and anomaly reports.
    fn name(&self) -> &'static str;
    /// Compute the output from the input values.
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor>;
    /// One gradient per input (`None` = zero), given the inputs, the output
    /// and the output's gradient. Gradients must have their input's shape
    /// (or one that sums down to it).
    fn backward(&self, inputs: &[Var], output: &Var, grad: &Var) -> Result<Vec<Option<Var>>>;
}

impl Var {
    /// Apply a [`CustomOp`] and record it on the tape.
    #[track_caller]
    pub fn custom(op: Rc<dyn CustomOp>, inputs: &[&Var]) -> Result<Var> {
        let values: Vec<&Tensor> = inputs.iter().map(|v| v.value()).collect();
        let out = op.forward(&values)?;
        let saved: Vec<Var> = inputs.iter().map(|v| (*v).clone()).collect();
        let n = inputs.len();
        let name = op.name();
        Var::record(name, out, inputs, true, move |c| {
            let y = c.output.as_ref().expect("saved");
            let grads = op.backward(&saved, y, c.grad)?;
            if grads.len() != n {
                return Err(AutogradError::BadGradient {
                    op: name,
                    msg: format!(
                        "backward returned {} gradients for {} inputs",
                        grads.len(),
                        n
                    ),
                });
            }
            Ok(grads.into_iter().collect::<InputGrads>())
        })
    }
}
