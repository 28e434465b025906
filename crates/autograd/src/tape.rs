//! The tape: an arena of records in creation order, walked in reverse.
//!
//! Every differentiable op on [`Var`]s pushes one `Node` holding its
//! backward closure (the VJP, written with `Var` ops) and the ids of its
//! inputs. [`Tape::backward`] walks the nodes from the output down to 0,
//! once, with no recursion: the first gradient reaching a node is stored as
//! is, later ones are added. When a VJP returns a gradient whose shape
//! differs from its input's (the input was broadcast), the engine sums it
//! down with [`heft_tensor::sum_to_shape`]; this is the one place
//! broadcasting is undone.
//!
//! Because VJPs are `Var` ops, the backward pass can itself be recorded
//! (`create_graph: true`) and differentiated again.

use crate::error::{AutogradError, Result};
use crate::var::{NodeRef, Var};
use heft_tensor::{same_dims, Shape, Tensor};
use smallvec::SmallVec;
use std::cell::RefCell;
use std::panic::Location;
use std::rc::{Rc, Weak};

/// Gradients a backward closure returns, one per input (`None` = zero / not differentiable).
pub type InputGrads = SmallVec<[Option<Var>; 2]>;

/// What a backward closure receives.
pub struct BackwardCtx<'a> {
    /// The gradient of the loss with respect to the op's output.
    pub grad: &'a Var,
    /// The op's output, when the op asked for it to be saved.
    pub output: Option<Var>,
    /// True when the backward pass is being recorded (`create_graph`). When
    /// false, a VJP may compute its result with fused tensor kernels instead
    /// of `Var` ops: nothing would be recorded anyway, and one fused pass
    /// allocates once instead of once per op.
    pub create_graph: bool,
    /// The op's input ids on the tape (`None` for constants).
    pub(crate) inputs: &'a [Option<u32>],
}

impl BackwardCtx<'_> {
    /// True when input `k` of the op receives a gradient (it is tracked).
    /// A VJP may skip the work for the others: the engine ignores whatever
    /// it returns for them.
    #[inline]
    pub fn needs_grad(&self, k: usize) -> bool {
        matches!(self.inputs.get(k), Some(Some(_)))
    }
}

/// A VJP closure, boxed.
pub(crate) type BoxedVjp = Box<dyn Fn(&BackwardCtx<'_>) -> Result<InputGrads>>;

/// A recorded VJP.
pub(crate) enum BackwardFn {
    /// Any closure (boxed; a closure that captures nothing does not allocate).
    Boxed(BoxedVjp),
    /// A plain function of the context and one number, for the many ops
    /// parameterised by a scalar (`mul_scalar`, `powf`, ...): recorded
    /// without an allocation.
    Scalar(fn(&BackwardCtx<'_>, f64) -> Result<InputGrads>, f64),
}

impl BackwardFn {
    #[inline]
    fn call(&self, ctx: &BackwardCtx<'_>) -> Result<InputGrads> {
        match self {
            BackwardFn::Boxed(f) => f(ctx),
            BackwardFn::Scalar(f, s) => f(ctx, *s),
        }
    }
}

/// One record of the tape.
pub(crate) struct Node {
    pub op: &'static str,
    pub location: &'static Location<'static>,
    pub shape: Shape,
    /// What the backward walk needs; `None` for leaves, and for ops whose
    /// record a walk without `retain_graph` has consumed (freeing the saved
    /// tensors).
    pub pending: Option<Pending>,
    /// The output, when the VJP reads it (freed with `pending`).
    pub saved_output: Option<Tensor>,
    pub is_leaf: bool,
}

/// The part of a [`Node`] the backward walk takes (small enough to move
/// without a `memcpy` call).
pub(crate) struct Pending {
    pub inputs: SmallVec<[Option<u32>; 2]>,
    pub backward: BackwardFn,
}

pub(crate) struct State {
    pub nodes: Vec<Node>,
    pub generation: u32,
    pub enabled: bool,
    pub anomaly: bool,
    /// Nesting depth of `backward_opts` walks in progress. Anomaly mode does
    /// not check the forward values of the ops a VJP runs (their creation
    /// site is inside heft-autograd); the engine checks the gradients they
    /// produce instead, and names the op being differentiated.
    pub in_backward: u32,
}

pub(crate) struct Shared {
    pub state: RefCell<State>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        let mut nodes = std::mem::take(&mut self.state.get_mut().nodes);
        nodes.clear();
        pool::put(&pool::NODES, nodes);
    }
}

/// Buffers of dropped tapes and gradient maps, kept per thread for the next
/// tape: a training loop that builds a tape per step then does not regrow
/// (and copy) its record list every step, nor free a large block each time.
mod pool {
    use super::Node;
    use crate::Var;
    use std::cell::RefCell;
    use std::thread::LocalKey;

    /// Buffers kept per kind and thread.
    const KEEP: usize = 2;
    /// Larger buffers are freed rather than kept (in elements).
    const MAX_CAPACITY: usize = 1 << 20;

    pub(super) type Pool<T> = LocalKey<RefCell<Vec<Vec<T>>>>;

    thread_local! {
        pub(super) static NODES: RefCell<Vec<Vec<Node>>> = const { RefCell::new(Vec::new()) };
        pub(super) static SLOTS: RefCell<Vec<Vec<Option<Var>>>> = const { RefCell::new(Vec::new()) };
    }

    /// An empty buffer, reused when one is pooled.
    pub(super) fn take<T>(pool: &'static Pool<T>) -> Vec<T> {
        pool.try_with(|p| p.try_borrow_mut().ok().and_then(|mut p| p.pop()))
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    /// Keep an emptied buffer for reuse (or free it).
    pub(super) fn put<T>(pool: &'static Pool<T>, v: Vec<T>) {
        debug_assert!(v.is_empty());
        if v.capacity() == 0 || v.capacity() > MAX_CAPACITY {
            return;
        }
        let _ = pool.try_with(|p| {
            if let Ok(mut p) = p.try_borrow_mut() {
                if p.len() < KEEP {
                    p.push(v);
                }
            }
        });
    }
}

/// Options for [`Tape::backward_opts`].
#[derive(Clone, Copy, Debug, Default)]
pub struct BackwardOptions {
    /// Record the backward pass on the tape so the gradients can be differentiated again.
    pub create_graph: bool,
    /// Keep the saved tensors so the same graph can be walked again.
    /// Implied by `create_graph` (as in PyTorch): differentiating the
    /// recorded backward pass walks back through the forward graph.
    pub retain_graph: bool,
}

/// A recording of differentiable ops.
///
/// The `Tape` is the owner: [`Var`]s hold a weak handle, so dropping the
/// tape frees every saved tensor. A tape is single-threaded (ops inside run
/// on rayon). Reuse one across training steps with [`Tape::reset`], which
/// keeps the allocation.
///
/// ```
/// use heft_autograd::Tape;
/// use heft_tensor::Tensor;
/// # fn main() -> Result<(), heft_autograd::AutogradError> {
/// let tape = Tape::new();
/// let w = tape.leaf(Tensor::from_vec(vec![2.0f64, -1.0], &[2])?);
/// let x = tape.constant(Tensor::from_vec(vec![3.0f64, 4.0], &[2])?);
/// // loss = sum(w * x)^2 ; dloss/dw = 2 * sum(w * x) * x = 2 * 2 * [3, 4]
/// let s = w.mul(&x)?.sum_all()?;
/// let loss = s.square()?;
/// let grads = tape.backward(&loss)?;
/// assert_eq!(grads.get(&w).unwrap().to_vec::<f64>()?, vec![12.0, 16.0]);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Tape {
    pub(crate) shared: Rc<Shared>,
}

impl Default for Tape {
    fn default() -> Self {
        Tape::new()
    }
}

impl std::fmt::Debug for Tape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.shared.state.borrow();
        write!(
            f,
            "Tape({} nodes, generation {})",
            st.nodes.len(),
            st.generation
        )
    }
}

impl Tape {
    /// An empty tape, recording.
    pub fn new() -> Tape {
        Tape {
            shared: Rc::new(Shared {
                state: RefCell::new(State {
                    nodes: {
                        let mut v = pool::take(&pool::NODES);
                        v.reserve(64);
                        v
                    },
                    generation: 0,
                    enabled: true,
                    anomaly: false,
                    in_backward: 0,
                }),
            }),
        }
    }

    fn weak(&self) -> Weak<Shared> {
        Rc::downgrade(&self.shared)
    }

    /// A leaf that requires a gradient (a weight, a bias, an input to differentiate).
    #[track_caller]
    pub fn leaf(&self, value: Tensor) -> Var {
        let mut st = self.shared.state.borrow_mut();
        let id = st.nodes.len() as u32;
        st.nodes.push(Node {
            op: "leaf",
            location: Location::caller(),
            shape: SmallVec::from_slice(value.shape()),
            pending: None,
            saved_output: None,
            is_leaf: true,
        });
        Var::tracked(
            value,
            NodeRef {
                tape: self.weak(),
                id,
                generation: st.generation,
            },
        )
    }

    /// A constant: no gradient flows into it.
    pub fn constant(&self, value: Tensor) -> Var {
        Var::constant(value)
    }

    /// Number of records on the tape.
    pub fn len(&self) -> usize {
        self.shared.state.borrow().nodes.len()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forget every record (keeping the allocation). Vars recorded before are
    /// stale afterwards: using them in an op is an error.
    pub fn reset(&self) {
        let mut st = self.shared.state.borrow_mut();
        st.nodes.clear();
        st.generation = st.generation.wrapping_add(1);
    }

    /// Whether ops are being recorded.
    pub fn is_recording(&self) -> bool {
        self.shared.state.borrow().enabled
    }

    /// Run `f` without recording (like `torch.no_grad()`): results are constants.
    pub fn no_grad<R>(&self, f: impl FnOnce() -> R) -> R {
        let _guard = self.set_recording(false);
        f()
    }

    /// Turn recording on or off until the returned guard is dropped.
    pub fn set_recording(&self, on: bool) -> RecordingGuard {
        let mut st = self.shared.state.borrow_mut();
        let prev = st.enabled;
        st.enabled = on;
        RecordingGuard {
            tape: self.weak(),
            prev,
        }
    }

    /// Anomaly mode: check the output of every op with a tracked input
    /// (recording or not) and every gradient the backward pass produces for
    /// NaN/Inf, and fail with the op, its creation site and the shapes
    /// involved. Ops a VJP runs during backward are not checked themselves:
    /// the gradients they produce are. Off by default; when off it costs one
    /// branch per op.
    pub fn set_anomaly_detection(&self, on: bool) {
        self.shared.state.borrow_mut().anomaly = on;
    }

    /// `d loss / d v` for every leaf `v`; `loss` must have one element.
    pub fn backward(&self, loss: &Var) -> Result<Grads> {
        if loss.value().numel() != 1 {
            return Err(AutogradError::NotScalar {
                shape: loss.shape().to_vec(),
            });
        }
        self.backward_opts(loss, None, BackwardOptions::default())
    }

    /// The vector-Jacobian product `seed^T J` for every leaf (seed has the output's shape).
    pub fn backward_with(&self, output: &Var, seed: &Tensor) -> Result<Grads> {
        self.backward_opts(output, Some(seed), BackwardOptions::default())
    }

    /// Backward with options (seed defaults to ones for a one-element output).
    pub fn backward_opts(
        &self,
        output: &Var,
        seed: Option<&Tensor>,
        opts: BackwardOptions,
    ) -> Result<Grads> {
        let seed = match seed {
            Some(s) => {
                if s.shape() != output.shape() || s.dtype() != output.dtype() {
                    return Err(AutogradError::BadSeed {
                        seed: s.shape().to_vec(),
                        seed_dtype: s.dtype(),
                        output: output.shape().to_vec(),
                        output_dtype: output.dtype(),
                    });
                }
                s.clone()
            }
            None => {
                if output.value().numel() != 1 {
                    return Err(AutogradError::NotScalar {
                        shape: output.shape().to_vec(),
                    });
                }
                output.value().ones_like()
            }
        };
        let generation = self.shared.state.borrow().generation;
        let mut grads = Grads {
            tape: self.weak(),
            generation,
            slots: Vec::new(),
        };
        let root = match output.node_ref() {
            Some(n) if n.tape.ptr_eq(&self.weak()) && n.generation == generation => n.id as usize,
            Some(_) => return Err(AutogradError::StaleVar { op: "backward" }),
            None => return Ok(grads), // a constant: every gradient is zero
        };
        let retain = opts.retain_graph || opts.create_graph;
        let _rec = self.set_recording(opts.create_graph);
        let _walk = InBackward::enter(&self.shared);
        let anomaly = self.shared.state.borrow().anomaly;
        let mut slots: Vec<Option<Var>> = pool::take(&pool::SLOTS);
        slots.resize(root + 1, None);
        slots[root] = Some(Var::constant(seed));
        for i in (0..=root).rev() {
            let Some(g) = slots[i].take() else { continue };
            // Take what we need out of the node with a short borrow: the
            // closure may record new nodes on this tape (create_graph).
            // (Assigned field by field: one tuple of them would be moved
            // with a `memcpy` call.)
            let (inputs, backward, saved, op, location);
            {
                let mut st = self.shared.state.borrow_mut();
                let node = &mut st.nodes[i];
                if node.is_leaf {
                    drop(st);
                    slots[i] = Some(g);
                    continue;
                }
                let Some(p) = node.pending.take() else {
                    return Err(AutogradError::AlreadyFreed { op: node.op });
                };
                inputs = p.inputs;
                backward = p.backward;
                saved = if retain {
                    node.saved_output.clone()
                } else {
                    node.saved_output.take()
                };
                op = node.op;
                location = node.location;
            }
            // Tracked at this node only when the walk is recorded (then a VJP
            // such as `exp`'s differentiates through it); otherwise nothing
            // is recorded and a constant will do.
            let output = saved.map(|t| {
                if !opts.create_graph {
                    return Var::constant(t);
                }
                Var::tracked(
                    t,
                    NodeRef {
                        tape: self.weak(),
                        id: i as u32,
                        generation,
                    },
                )
            });
            let ctx = BackwardCtx {
                grad: &g,
                output,
                create_graph: opts.create_graph,
                inputs: &inputs,
            };
            let mut result = backward.call(&ctx);
            drop(ctx);
            let inputs = if retain {
                let ids = inputs.clone();
                self.shared.state.borrow_mut().nodes[i].pending =
                    Some(Pending { inputs, backward });
                ids
            } else {
                inputs
            };
            // Drain the gradients where the closure wrote them (moving the
            // whole list out of the `Result` first would copy it).
            let input_grads = match &mut result {
                Ok(v) => v,
                Err(_) => return result.map(|_| unreachable!()),
            };
            for (k, (inp, gi)) in inputs.iter().zip(input_grads.drain(..)).enumerate() {
                let (Some(inp), Some(mut gi)) = (inp, gi) else {
                    continue;
                };
                let inp = *inp as usize;
                // A gradient in a broadcast shape is summed down to the input's.
                let reduce: Option<Shape> = {
                    let st = self.shared.state.borrow();
                    let target = &st.nodes[inp].shape;
                    (!same_dims(gi.shape(), target)).then(|| SmallVec::from_slice(target))
                };
                if let Some(target) = reduce {
                    gi = gi.sum_to_shape(&target).map_err(|e| match e {
                        AutogradError::Tensor(_) => AutogradError::BadGradient {
                            op,
                            msg: format!(
                                "gradient {k} has shape {:?}, which does not reduce to the input's shape {:?}",
                                gi.shape(),
                                target.as_slice()
                            ),
                        },
                        e => e,
                    })?;
                }
                if anomaly {
                    crate::var::check_finite(gi.value(), "backward", op, location, &[&g])?;
                }
                accumulate(&mut slots[inp], gi, opts.create_graph)?;
            }
        }
        grads.slots = slots;
        Ok(grads)
    }
}

/// Adds `g` into a gradient slot: the first gradient reaching a node is
/// stored as is; later ones are summed. Without `create_graph`, the sum is
/// written into the stored buffer when nothing else holds it (no
/// allocation); otherwise it is a recorded `add`.
fn accumulate(slot: &mut Option<Var>, g: Var, create_graph: bool) -> Result<()> {
    match slot {
        None => *slot = Some(g),
        Some(prev)
            if !create_graph && same_dims(prev.shape(), g.shape()) && prev.dtype() == g.dtype() =>
        {
            prev.value_mut().add_assign(g.value())?;
        }
        Some(prev) => *prev = prev.add(&g)?,
    }
    Ok(())
}

/// Marks a backward walk in progress until dropped.
struct InBackward<'a>(&'a Shared);

impl<'a> InBackward<'a> {
    fn enter(shared: &'a Shared) -> InBackward<'a> {
        shared.state.borrow_mut().in_backward += 1;
        InBackward(shared)
    }
}

impl Drop for InBackward<'_> {
    fn drop(&mut self) {
        self.0.state.borrow_mut().in_backward -= 1;
    }
}

/// Restores the previous recording state when dropped.
pub struct RecordingGuard {
    tape: Weak<Shared>,
    prev: bool,
}

impl Drop for RecordingGuard {
    fn drop(&mut self) {
        if let Some(t) = self.tape.upgrade() {
            t.state.borrow_mut().enabled = self.prev;
        }
    }
}

/// Gradients from one backward pass, looked up by the [`Var`] they belong to.
pub struct Grads {
    tape: Weak<Shared>,
    generation: u32,
    slots: Vec<Option<Var>>,
}

impl Drop for Grads {
    fn drop(&mut self) {
        let mut slots = std::mem::take(&mut self.slots);
        slots.clear();
        pool::put(&pool::SLOTS, slots);
    }
}

impl Grads {
    fn slot(&self, v: &Var) -> Option<&Var> {
        let n = v.node_ref()?;
        if !n.tape.ptr_eq(&self.tape) || n.generation != self.generation {
            return None;
        }
        self.slots.get(n.id as usize)?.as_ref()
    }

    /// The gradient of a leaf, or `None` if no gradient reached it (it is zero).
    pub fn get(&self, v: &Var) -> Option<&Tensor> {
        self.slot(v).map(|g| g.value())
    }

    /// The gradient as a [`Var`]; with `create_graph` it can be differentiated again.
    pub fn get_var(&self, v: &Var) -> Option<&Var> {
        self.slot(v)
    }

    /// The gradient of a leaf, or zeros of its shape when none reached it.
    pub fn get_or_zeros(&self, v: &Var) -> Tensor {
        self.get(v)
            .cloned()
            .unwrap_or_else(|| v.value().zeros_like())
    }

    /// Move the gradient of a leaf out (avoids a copy when handing it to an optimizer).
    pub fn take(&mut self, v: &Var) -> Option<Tensor> {
        let n = v.node_ref()?;
        if !n.tape.ptr_eq(&self.tape) || n.generation != self.generation {
            return None;
        }
        self.slots
            .get_mut(n.id as usize)?
            .take()
            .map(|g| g.into_value())
    }
}
