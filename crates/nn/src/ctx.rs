//! [`Ctx`]: one forward/backward step of a model.
//!
//! A `Ctx` binds a [`ParamStore`] to a [`Tape`]: the first time a layer asks
//! for a parameter, it becomes a leaf on the tape (a constant when frozen).
//! It also carries the train/eval mode, a seeded RNG for dropout, and the
//! activation statistics layers report (dead ReLU share).

use crate::params::{ParamId, ParamStore};
use heft_autograd::{Grads, Tape, Var};
use heft_tensor::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::cell::{RefCell, RefMut};

/// Train (dropout on, batch statistics) or eval (dropout off, running statistics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Training.
    Train,
    /// Evaluation / inference.
    Eval,
}

/// One step's binding of parameters to a tape.
pub struct Ctx<'a> {
    tape: Tape,
    store: &'a ParamStore,
    leaves: RefCell<Vec<Option<Var>>>,
    mode: Mode,
    rng: RefCell<ChaCha8Rng>,
    activations: RefCell<Vec<(String, f64)>>,
}

/// The gradients of a step, by parameter (frozen or unused parameters have none).
#[derive(Clone, Debug, Default)]
pub struct ParamGrads {
    grads: Vec<Option<Tensor>>,
}

impl ParamGrads {
    /// An empty set for a store of `n` parameters.
    pub fn new(n: usize) -> Self {
        ParamGrads {
            grads: vec![None; n],
        }
    }

    /// The gradient of a parameter.
    pub fn get(&self, id: ParamId) -> Option<&Tensor> {
        self.grads.get(id.0)?.as_ref()
    }

    /// Set (replace) the gradient of a parameter.
    pub fn set(&mut self, id: ParamId, g: Tensor) {
        if id.0 >= self.grads.len() {
            self.grads.resize(id.0 + 1, None);
        }
        self.grads[id.0] = Some(g);
    }

    /// Mutable access to a gradient (for clipping in place).
    pub fn get_mut(&mut self, id: ParamId) -> Option<&mut Tensor> {
        self.grads.get_mut(id.0)?.as_mut()
    }

    /// Add `other` into these gradients (gradient accumulation over micro-batches).
    pub fn accumulate(&mut self, other: &ParamGrads) -> heft_tensor::Result<()> {
        if other.grads.len() > self.grads.len() {
            self.grads.resize(other.grads.len(), None);
        }
        for (mine, theirs) in self.grads.iter_mut().zip(&other.grads) {
            if let Some(t) = theirs {
                *mine = Some(match mine.take() {
                    None => t.clone(),
                    Some(m) => m.add(t)?,
                });
            }
        }
        Ok(())
    }

    /// Multiply every gradient by `s` (e.g. `1 / micro_batches`).
    pub fn scale(&mut self, s: f64) -> heft_tensor::Result<()> {
        for g in self.grads.iter_mut().flatten() {
            *g = g.mul_scalar(s)?;
        }
        Ok(())
    }

    /// Every `(id, gradient)` present.
    pub fn iter(&self) -> impl Iterator<Item = (ParamId, &Tensor)> {
        self.grads
            .iter()
            .enumerate()
            .filter_map(|(i, g)| g.as_ref().map(|g| (ParamId(i), g)))
    }
}

impl<'a> Ctx<'a> {
    /// Bind `store` to `tape` in `mode`, with dropout RNG seed 0.
    pub fn new(store: &'a ParamStore, tape: &Tape, mode: Mode) -> Self {
        Ctx::with_seed(store, tape, mode, 0)
    }

    /// Bind with an explicit RNG seed (dropout masks are reproducible per seed).
    pub fn with_seed(store: &'a ParamStore, tape: &Tape, mode: Mode, seed: u64) -> Self {
        Ctx {
            tape: tape.clone(),
            store,
            leaves: RefCell::new(vec![None; store.len()]),
            mode,
            rng: RefCell::new(ChaCha8Rng::seed_from_u64(seed)),
            activations: RefCell::new(Vec::new()),
        }
    }

    /// The tape.
    pub fn tape(&self) -> &Tape {
        &self.tape
    }

    /// The store.
    pub fn store(&self) -> &ParamStore {
        self.store
    }

    /// Train or eval.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// True in train mode.
    pub fn is_train(&self) -> bool {
        self.mode == Mode::Train
    }

    /// The step's RNG (dropout).
    pub fn rng(&self) -> RefMut<'_, ChaCha8Rng> {
        self.rng.borrow_mut()
    }

    /// A parameter as a var: a leaf on first use if trainable, else a constant.
    pub fn param(&self, id: ParamId) -> Var {
        let mut leaves = self.leaves.borrow_mut();
        if id.0 >= leaves.len() {
            leaves.resize(id.0 + 1, None);
        }
        if let Some(v) = &leaves[id.0] {
            return v.clone();
        }
        let p = self.store.param(id);
        let v = if p.trainable {
            self.tape.leaf(p.value.clone())
        } else {
            Var::constant(p.value.clone())
        };
        leaves[id.0] = Some(v.clone());
        v
    }

    /// Use `v` as parameter `id` for the rest of this step, instead of a
    /// leaf made from the stored value.
    ///
    /// This lets a caller differentiate with respect to parameters on a tape
    /// it owns: gradient checking a layer passes the parameter values as
    /// extra inputs and binds the checker's vars here, so the layer's
    /// parameter gradients are checked against finite differences. `v` must
    /// have the stored value's shape and dtype; binding replaces any var the
    /// step already used for `id` (bind before the forward pass).
    ///
    /// ```
    /// use heft_nn::{Ctx, Mode, ParamKind, ParamStore};
    /// use heft_autograd::Tape;
    /// use heft_tensor::{DType, Tensor};
    /// let mut store = ParamStore::new();
    /// let w = store.add("w", Tensor::zeros(&[2], DType::F64), ParamKind::Weight).unwrap();
    /// let tape = Tape::new();
    /// let mine = tape.leaf(Tensor::from_vec(vec![1.0f64, 2.0], &[2]).unwrap());
    /// let ctx = Ctx::new(&store, &tape, Mode::Train);
    /// ctx.bind(w, mine.clone()).unwrap();
    /// let loss = ctx.param(w).square().unwrap().sum_all().unwrap();
    /// let g = tape.backward(&loss).unwrap();
    /// assert_eq!(g.get(&mine).unwrap().to_vec::<f64>().unwrap(), vec![2.0, 4.0]);
    /// ```
    pub fn bind(&self, id: ParamId, v: Var) -> crate::Result<()> {
        let p = self.store.param(id);
        if p.value.shape() != v.shape() || p.value.dtype() != v.dtype() {
            return Err(crate::NnError::Mismatch(format!(
                "cannot bind `{}` ({:?} {}) to a var of {:?} {}",
                p.name,
                p.value.shape(),
                p.value.dtype(),
                v.shape(),
                v.dtype()
            )));
        }
        let mut leaves = self.leaves.borrow_mut();
        if id.0 >= leaves.len() {
            leaves.resize(id.0 + 1, None);
        }
        leaves[id.0] = Some(v);
        Ok(())
    }

    /// A constant input.
    pub fn input(&self, t: Tensor) -> Var {
        Var::constant(t)
    }

    /// Collect the gradient of every parameter bound in this step.
    pub fn param_grads(&self, grads: &mut Grads) -> ParamGrads {
        let leaves = self.leaves.borrow();
        let mut out = ParamGrads::new(self.store.len());
        for (i, l) in leaves.iter().enumerate() {
            if let Some(v) = l {
                if let Some(g) = grads.take(v) {
                    out.set(ParamId(i), g);
                }
            }
        }
        out
    }

    /// `backward(loss)` and collect parameter gradients in one call.
    pub fn backward(&self, loss: &Var) -> crate::Result<ParamGrads> {
        let mut g = self.tape.backward(loss)?;
        Ok(self.param_grads(&mut g))
    }

    /// Record an activation statistic (the share of exactly-zero outputs of a ReLU layer).
    pub fn record_activation(&self, layer: &str, zero_share: f64) {
        self.activations
            .borrow_mut()
            .push((layer.to_string(), zero_share));
    }

    /// The activation statistics recorded in this step.
    pub fn activations(&self) -> Vec<(String, f64)> {
        self.activations.borrow().clone()
    }
}
