//! [`Var`]: a tensor value plus its place on a [`Tape`](crate::Tape).

use crate::error::{AutogradError, Result};
use crate::tape::{BackwardCtx, BackwardFn, InputGrads, Node, Pending, Shared};
use heft_tensor::{DType, Tensor};
use smallvec::SmallVec;
use std::panic::Location;
use std::rc::Weak;

#[derive(Clone)]
pub(crate) struct NodeRef {
    pub tape: Weak<Shared>,
    pub id: u32,
    pub generation: u32,
}

/// A value in a differentiable computation.
///
/// A `Var` is either *tracked* (a leaf from [`Tape::leaf`](crate::Tape::leaf)
/// or the result of an op on tracked vars) or a *constant*. Ops on vars
/// mirror the ops of [`Tensor`] and return `Result<Var>`; when any input is
/// tracked and the tape is recording, the op is recorded with its VJP.
/// Cloning is cheap (the value's storage is shared).
#[derive(Clone)]
pub struct Var {
    value: Tensor,
    node: Option<NodeRef>,
}

impl std::fmt::Debug for Var {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.node {
            Some(n) => write!(f, "Var(#{}, {})", n.id, self.value),
            None => write!(f, "Var(const, {})", self.value),
        }
    }
}

impl Var {
    pub(crate) fn tracked(value: Tensor, node: NodeRef) -> Var {
        Var {
            value,
            node: Some(node),
        }
    }

    /// A constant var (no gradient flows into it).
    pub fn constant(value: Tensor) -> Var {
        Var { value, node: None }
    }

    pub(crate) fn node_ref(&self) -> Option<&NodeRef> {
        self.node.as_ref()
    }

    /// The value.
    #[inline]
    pub fn value(&self) -> &Tensor {
        &self.value
    }

    /// The value, mutably (the engine accumulates gradients in place).
    pub(crate) fn value_mut(&mut self) -> &mut Tensor {
        &mut self.value
    }

    /// The value, consuming the var.
    pub fn into_value(self) -> Tensor {
        self.value
    }

    /// The shape of the value.
    #[inline]
    pub fn shape(&self) -> &[usize] {
        self.value.shape()
    }

    /// The dtype of the value.
    #[inline]
    pub fn dtype(&self) -> DType {
        self.value.dtype()
    }

    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        self.value.ndim()
    }

    /// The tape this var is recorded on, if it is tracked and the tape is alive.
    pub fn tape(&self) -> Option<crate::Tape> {
        let n = self.node.as_ref()?;
        let shared = n.tape.upgrade()?;
        let live = shared.state.borrow().generation == n.generation;
        live.then_some(crate::Tape { shared })
    }

    /// True when gradients flow into this var.
    pub fn is_tracked(&self) -> bool {
        self.node.is_some()
    }

    /// The same value as a constant: the graph is cut here.
    pub fn detach(&self) -> Var {
        Var::constant(self.value.clone())
    }

    /// Record an op: `value` was computed from `inputs`; `backward` maps the
    /// output gradient to one gradient per input.
    ///
    /// Returns a constant when no input is tracked or recording is off. With
    /// `save_output`, the backward closure gets the output as `ctx.output`.
    #[track_caller]
    pub(crate) fn record<F>(
        op: &'static str,
        value: Tensor,
        inputs: &[&Var],
        save_output: bool,
        backward: F,
    ) -> Result<Var>
    where
        F: Fn(&BackwardCtx<'_>) -> Result<InputGrads> + 'static,
    {
        Var::record_at(op, Location::caller(), value, inputs, save_output, backward)
    }

    /// Like [`Var::record`], but the backward closure is built by `build`
    /// only when the op is actually recorded. Use it when the closure
    /// captures clones of the inputs: during a backward pass without
    /// `create_graph`, or under `no_grad`, no clone is made.
    #[track_caller]
    pub(crate) fn record_lazy<F, B>(
        op: &'static str,
        value: Tensor,
        inputs: &[&Var],
        save_output: bool,
        build: B,
    ) -> Result<Var>
    where
        B: FnOnce() -> F,
        F: Fn(&BackwardCtx<'_>) -> Result<InputGrads> + 'static,
    {
        Var::record_at_lazy(op, Location::caller(), value, inputs, save_output, build)
    }

    pub(crate) fn record_at<F>(
        op: &'static str,
        location: &'static Location<'static>,
        value: Tensor,
        inputs: &[&Var],
        save_output: bool,
        backward: F,
    ) -> Result<Var>
    where
        F: Fn(&BackwardCtx<'_>) -> Result<InputGrads> + 'static,
    {
        Var::record_at_lazy(op, location, value, inputs, save_output, || backward)
    }

    /// Like [`Var::record`] for an op parameterised by one number: the VJP
    /// is a plain function of the context and `scalar`, so recording it
    /// allocates nothing.
    #[track_caller]
    pub(crate) fn record_scalar(
        op: &'static str,
        value: Tensor,
        inputs: &[&Var],
        save_output: bool,
        scalar: f64,
        backward: fn(&BackwardCtx<'_>, f64) -> Result<InputGrads>,
    ) -> Result<Var> {
        Var::record_with(op, Location::caller(), value, inputs, save_output, || {
            BackwardFn::Scalar(backward, scalar)
        })
    }

    pub(crate) fn record_at_lazy<F, B>(
        op: &'static str,
        location: &'static Location<'static>,
        value: Tensor,
        inputs: &[&Var],
        save_output: bool,
        build: B,
    ) -> Result<Var>
    where
        B: FnOnce() -> F,
        F: Fn(&BackwardCtx<'_>) -> Result<InputGrads> + 'static,
    {
        Var::record_with(op, location, value, inputs, save_output, || {
            BackwardFn::Boxed(Box::new(build()))
        })
    }

    fn record_with(
        op: &'static str,
        location: &'static Location<'static>,
        value: Tensor,
        inputs: &[&Var],
        save_output: bool,
        build: impl FnOnce() -> BackwardFn,
    ) -> Result<Var> {
        let mut tape_ref: Option<&NodeRef> = None;
        for v in inputs {
            if let Some(n) = &v.node {
                match tape_ref {
                    None => tape_ref = Some(n),
                    Some(t) if !t.tape.ptr_eq(&n.tape) => {
                        return Err(AutogradError::DifferentTapes { op })
                    }
                    _ => {}
                }
            }
        }
        let Some(nr) = tape_ref else {
            return Ok(Var::constant(value));
        };
        let Some(shared) = nr.tape.upgrade() else {
            return Err(AutogradError::StaleVar { op });
        };
        let mut st = shared.state.borrow_mut();
        if st.anomaly && st.in_backward == 0 {
            check_finite(&value, "forward", op, location, inputs)?;
        }
        if !st.enabled {
            return Ok(Var::constant(value));
        }
        let generation = st.generation;
        let mut ids: SmallVec<[Option<u32>; 2]> = SmallVec::with_capacity(inputs.len());
        for v in inputs {
            ids.push(match &v.node {
                Some(n) if n.generation == generation => Some(n.id),
                Some(_) => return Err(AutogradError::StaleVar { op }),
                None => None,
            });
        }
        let id = st.nodes.len() as u32;
        st.nodes.push(Node {
            op,
            location,
            shape: SmallVec::from_slice(value.shape()),
            pending: Some(Pending {
                inputs: ids,
                backward: build(),
            }),
            saved_output: if save_output {
                Some(value.clone())
            } else {
                None
            },
            is_leaf: false,
        });
        Ok(Var {
            value,
            node: Some(NodeRef {
                tape: nr.tape.clone(),
                id,
                generation,
            }),
        })
    }
}

/// Fail with an anomaly error if `t` holds NaN or infinite values.
pub(crate) fn check_finite(
    t: &Tensor,
    phase: &'static str,
    op: &'static str,
    location: &'static Location<'static>,
    inputs: &[&Var],
) -> Result<()> {
    if !t.dtype().is_float_compute() {
        return Ok(());
    }
    let (nan, inf) = t.count_nonfinite()?;
    if nan + inf == 0 {
        return Ok(());
    }
    let shapes: Vec<String> = inputs
        .iter()
        .map(|v| heft_tensor::Dims(v.shape().to_vec()).to_string())
        .collect();
    Err(AutogradError::Anomaly {
        phase,
        op,
        location: format!(
            "{}:{}:{}",
            location.file(),
            location.line(),
            location.column()
        ),
        nan,
        inf,
        inputs: shapes.join(", "),
    })
}
