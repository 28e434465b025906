//! The [`Optimizer`] trait and the machinery every optimizer shares:
//! skipping frozen and gradient-less parameters, checking gradients,
//! per-parameter state keyed by parameter name, groups, save and restore.

use crate::error::{OptimError, Result};
use crate::groups::{ParamGroups, Resolved};
use crate::state::OptimizerState;
use heft_nn::{ParamGrads, ParamStore};
use heft_tensor::kernels::{for_each_chunk, vectorized};
use heft_tensor::{DType, Float, Tensor};
use smallvec::SmallVec;
use std::collections::BTreeMap;

/// An optimizer: updates the parameters of a [`ParamStore`] in place from
/// the gradients of one step.
///
/// Every step visits the trainable parameters that have a gradient (frozen
/// parameters and parameters without a gradient are left alone, and their
/// state does not advance) and runs one fused loop per parameter over its
/// elements and state buffers. Parameters may be `f32` or `f64`; the
/// gradient must have the parameter's shape and dtype.
///
/// Updating in place writes into the parameter's storage; if that storage is
/// still shared (a live tape or a clone of the value), it is copied first
/// (copy-on-write), so drop the step's [`Ctx`](heft_nn::Ctx) before stepping
/// to avoid the copy.
pub trait Optimizer {
    /// Apply one update to every trainable parameter with a gradient.
    ///
    /// Gradients are all checked before any parameter changes: a gradient
    /// whose shape or dtype differs from its parameter's is an error naming
    /// the parameter, and nothing is updated.
    fn step(&mut self, store: &mut ParamStore, grads: &ParamGrads) -> Result<()>;
    /// The current base learning rate (groups multiply it by their `lr_mult`).
    fn lr(&self) -> f64;
    /// Set the base learning rate (what a [`Schedule`](crate::Schedule) drives).
    fn set_lr(&mut self, lr: f64);
    /// Number of `step` calls made (restored by [`load_state`](Self::load_state)).
    fn num_steps(&self) -> u64;
    /// The optimizer's name: `sgd`, `adam`, `adamw`, `rmsprop`, `adagrad`.
    fn kind(&self) -> &'static str;
    /// A snapshot of the state (buffers share storage with the optimizer's
    /// until it next steps; then it copies on write).
    fn state(&self) -> OptimizerState;
    /// Restore a snapshot: the step count, every hyperparameter (learning
    /// rate included) and every buffer. Parameter groups are not part of the
    /// state; they stay as constructed. On error nothing changes.
    fn load_state(&mut self, state: &OptimizerState) -> Result<()>;
}

/// The update rule of one optimizer: its hyperparameters and fused kernel.
pub(crate) trait Rule: Clone + Sync {
    /// The optimizer's name.
    fn kind(&self) -> &'static str;
    /// Base learning rate.
    fn lr(&self) -> f64;
    /// Set the base learning rate.
    fn set_lr(&mut self, lr: f64);
    /// Default weight decay (groups may override).
    fn weight_decay(&self) -> f64;
    /// Names of the per-parameter buffers, in the order `update` sees them.
    fn buffer_names(&self) -> Vec<&'static str>;
    /// Fresh buffers for a parameter (zeros unless the rule says otherwise).
    fn init_state(&self, param: &Tensor) -> Vec<Tensor> {
        self.buffer_names()
            .iter()
            .map(|_| Tensor::zeros(param.shape(), param.dtype()))
            .collect()
    }
    /// One fused update of a parameter, or of one contiguous chunk of it:
    /// `p`, `g` and every buffer in `bufs` (in [`Rule::buffer_names`] order)
    /// have the same length, and element `i` of each belongs to the same
    /// parameter element. `step` counts from 1.
    ///
    /// The update must be elementwise (element `i` of the result depends only
    /// on element `i` of the inputs), so that [`Engine`] can split a large
    /// parameter over threads without changing a single bit.
    ///
    /// [`Engine`] calls it inside [`vectorized`], so implementations marked
    /// `#[inline(always)]` compile for the CPU's widest vectors (16 f32
    /// lanes with AVX-512F, instead of the baseline's 4).
    fn update<T: Float>(
        &self,
        h: Resolved,
        step: u64,
        p: &mut [T],
        g: &[T],
        bufs: &mut [&mut [T]],
    ) -> Result<()>;
    /// Scalar hyperparameters (flags as 0 or 1).
    fn hyper(&self) -> Vec<(&'static str, f64)>;
    /// This rule with hyperparameters read from a saved list (validated).
    fn with_hyper(&self, hyper: &[(String, f64)]) -> Result<Self>;
}

/// Look a saved hyperparameter up.
pub(crate) fn hyper_get(kind: &str, hyper: &[(String, f64)], name: &str) -> Result<f64> {
    hyper
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| *v)
        .ok_or_else(|| OptimError::State(format!("{kind}: hyperparameter `{name}` is missing")))
}

/// The state of one parameter.
#[derive(Clone, Debug)]
struct ParamState {
    step: u64,
    bufs: Vec<Tensor>,
}

/// Groups, per-parameter state (by parameter name) and the step count.
#[derive(Clone, Debug, Default)]
pub(crate) struct Engine {
    pub(crate) groups: ParamGroups,
    state: BTreeMap<String, ParamState>,
    pub(crate) steps: u64,
}

/// Parameters with at least this many elements are updated in chunks spread
/// over the rayon pool (when it has more than one thread). Below it, the
/// hand-out costs more than the second thread saves: an SGD update takes
/// about 0.2 ns per element (46 us for the benchmark MLP's 235K parameters,
/// profiled), so 32K elements are ~6 us of work, while handing a job to
/// another thread costs a few microseconds, more if it sleeps.
const PAR_MIN_ELEMS: usize = 32 * 1024;
/// Smallest chunk of a split update (elements; a multiple of 64 so chunk
/// boundaries fall on cache lines of both f32 and f64 data).
const MIN_CHUNK: usize = 8 * 1024;
/// Chunks per thread, so a thread that starts late still finds work.
const CHUNKS_PER_THREAD: usize = 2;

/// Runs `rule.update` over a whole parameter, splitting it into contiguous
/// chunks over the rayon pool when it is large. The rules are elementwise,
/// so the result is bit-identical whatever the split and thread count.
///
/// The chunks go out through [`for_each_chunk`], as a threaded product's
/// do, not through a rayon parallel iterator: the calling thread works on
/// them too instead of blocking until the pool is done, and the helpers
/// keep spinning afterwards for the next step's first product. From a
/// thread outside the pool (a training loop on `main`), the parallel
/// iterator made the benchmark MLP's two-thread step 449.6 us against 375.2
/// (docs/kernels.md, "The optimizer's chunks").
fn update_split<R: Rule, T: Float>(
    rule: &R,
    h: Resolved,
    step: u64,
    p: &mut [T],
    g: &[T],
    bufs: &mut [Tensor],
) -> Result<()> {
    // At most three buffers per rule: no heap allocation per parameter.
    let mut slices = bufs
        .iter_mut()
        .map(|b| b.data_mut::<T>())
        .collect::<std::result::Result<SmallVec<[&mut [T]; 4]>, _>>()?;
    let n = p.len();
    if g.len() != n || slices.iter().any(|s| s.len() != n) {
        return Err(OptimError::State(format!(
            "{}: parameter, gradient and buffers differ in length",
            rule.kind()
        )));
    }
    let threads = heft_tensor::kernels::threads();
    if threads == 1 || n < PAR_MIN_ELEMS {
        return update_vectorized(rule, h, step, p, g, &mut slices);
    }
    let chunk = n
        .div_ceil(threads * CHUNKS_PER_THREAD)
        .next_multiple_of(64)
        .max(MIN_CHUNK);
    type Part<'a, T> = (&'a mut [T], &'a [T], SmallVec<[&'a mut [T]; 4]>);
    let mut parts: Vec<Part<'_, T>> = p
        .chunks_mut(chunk)
        .zip(g.chunks(chunk))
        .map(|(p, g)| (p, g, SmallVec::new()))
        .collect();
    for s in slices {
        for (part, c) in parts.iter_mut().zip(s.chunks_mut(chunk)) {
            part.2.push(c);
        }
    }
    let parts: Vec<std::sync::Mutex<Part<'_, T>>> =
        parts.into_iter().map(std::sync::Mutex::new).collect();
    let failed = std::sync::Mutex::new(None);
    for_each_chunk(parts.len(), |i| {
        let mut part = parts[i].lock().unwrap_or_else(|e| e.into_inner());
        let (p, g, b) = &mut *part;
        if let Err(e) = update_vectorized(rule, h, step, p, g, b) {
            *failed.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
        }
    });
    match failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// `rule.update` over one contiguous run, compiled for the CPU's widest
/// vectors ([`vectorized`]). The few elements before `p` reaches a 64-byte
/// boundary go first, on their own: a fresh tensor's data starts 16 bytes
/// past a cache line (the allocator's header), and a loop of 64-byte
/// vectors over it splits every load and store across two lines, which
/// made an SGD-with-momentum step over 235K f32 parameters slower than the
/// 4-lane baseline loop (docs/kernels.md, "Optimizer updates"). The rule is
/// elementwise, so where the run is cut changes no bit.
fn update_vectorized<R: Rule, T: Float>(
    rule: &R,
    h: Resolved,
    step: u64,
    p: &mut [T],
    g: &[T],
    bufs: &mut [&mut [T]],
) -> Result<()> {
    let head = p.as_ptr().align_offset(64).min(p.len());
    let (p0, p1) = p.split_at_mut(head);
    let (g0, g1) = g.split_at(head);
    let (mut b0, mut b1) = (
        SmallVec::<[&mut [T]; 4]>::new(),
        SmallVec::<[&mut [T]; 4]>::new(),
    );
    for b in bufs.iter_mut() {
        let (x, y) = b.split_at_mut(head);
        b0.push(x);
        b1.push(y);
    }
    if head > 0 {
        rule.update(h, step, p0, g0, &mut b0)?;
    }
    vectorized(
        #[inline(always)]
        || rule.update(h, step, p1, g1, &mut b1),
    )
}

impl Engine {
    pub(crate) fn new(groups: ParamGroups) -> Self {
        Engine {
            groups,
            state: BTreeMap::new(),
            steps: 0,
        }
    }

    pub(crate) fn step<R: Rule>(
        &mut self,
        rule: &R,
        store: &mut ParamStore,
        grads: &ParamGrads,
    ) -> Result<()> {
        let nbuf = rule.buffer_names().len();
        // Check everything before touching anything.
        let mut work = Vec::new();
        for (id, p) in store.iter() {
            if !p.trainable {
                continue;
            }
            let Some(g) = grads.get(id) else { continue };
            if g.shape() != p.value.shape() || g.dtype() != p.value.dtype() {
                return Err(OptimError::GradMismatch {
                    param: p.name.clone(),
                    param_shape: p.value.shape().into(),
                    param_dtype: p.value.dtype(),
                    grad_shape: g.shape().into(),
                    grad_dtype: g.dtype(),
                });
            }
            if !p.value.dtype().is_float_compute() {
                return Err(OptimError::UnsupportedDType {
                    param: p.name.clone(),
                    dtype: p.value.dtype(),
                });
            }
            if let Some(st) = self.state.get(&p.name) {
                if st.bufs.len() != nbuf {
                    return Err(OptimError::State(format!(
                        "`{}` has {} buffers, {} expects {nbuf}",
                        p.name,
                        st.bufs.len(),
                        rule.kind()
                    )));
                }
                for (b, bn) in st.bufs.iter().zip(rule.buffer_names()) {
                    if b.shape() != p.value.shape() || b.dtype() != p.value.dtype() {
                        return Err(OptimError::State(format!(
                            "buffer `{}.{bn}` is {} {:?} but the parameter is {} {:?}",
                            p.name,
                            b.dtype(),
                            b.shape(),
                            p.value.dtype(),
                            p.value.shape()
                        )));
                    }
                }
            }
            work.push(id);
        }
        let assign = self.groups.assignment(store.len());
        for id in work {
            let h = self
                .groups
                .resolve(assign[id.0], rule.lr(), rule.weight_decay());
            let g = grads.get(id).expect("checked above").contiguous();
            let param = store.param_mut(id);
            if !self.state.contains_key(&param.name) {
                self.state.insert(
                    param.name.clone(),
                    ParamState {
                        step: 0,
                        bufs: rule.init_state(&param.value),
                    },
                );
            }
            let st = self.state.get_mut(&param.name).expect("inserted above");
            st.step += 1;
            match param.value.dtype() {
                DType::F32 => update_split::<R, f32>(
                    rule,
                    h,
                    st.step,
                    param.value.data_mut::<f32>()?,
                    g.as_slice::<f32>()?,
                    &mut st.bufs,
                )?,
                DType::F64 => update_split::<R, f64>(
                    rule,
                    h,
                    st.step,
                    param.value.data_mut::<f64>()?,
                    g.as_slice::<f64>()?,
                    &mut st.bufs,
                )?,
                _ => unreachable!("dtype checked above"),
            }
        }
        self.steps += 1;
        Ok(())
    }

    pub(crate) fn export<R: Rule>(&self, rule: &R) -> OptimizerState {
        let names = rule.buffer_names();
        let mut buffers = Vec::new();
        for (pname, st) in &self.state {
            buffers.push((
                format!("{pname}.step"),
                Tensor::from_vec(vec![st.step as i64], &[1]).expect("one element"),
            ));
            for (bn, t) in names.iter().zip(&st.bufs) {
                buffers.push((format!("{pname}.{bn}"), t.clone()));
            }
        }
        OptimizerState {
            kind: rule.kind().to_string(),
            step: self.steps,
            hyper: rule
                .hyper()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            buffers,
        }
    }

    pub(crate) fn import<R: Rule>(&mut self, rule: &mut R, s: &OptimizerState) -> Result<()> {
        if s.kind != rule.kind() {
            return Err(OptimError::State(format!(
                "state of a `{}` optimizer cannot be loaded into `{}`",
                s.kind,
                rule.kind()
            )));
        }
        let new_rule = rule.with_hyper(&s.hyper)?;
        let names = new_rule.buffer_names();
        type Partial = (Option<u64>, Vec<Option<Tensor>>);
        let mut parts: BTreeMap<String, Partial> = BTreeMap::new();
        for (full, t) in &s.buffers {
            let Some((pname, bname)) = full.rsplit_once('.') else {
                return Err(OptimError::State(format!(
                    "buffer name `{full}` is not `<parameter>.<buffer>`"
                )));
            };
            let entry = parts
                .entry(pname.to_string())
                .or_insert_with(|| (None, vec![None; names.len()]));
            if bname == "step" {
                let v = t.to_vec::<i64>().map_err(|_| {
                    OptimError::State(format!("`{full}` must be an i64 tensor, not {}", t.dtype()))
                })?;
                match v.as_slice() {
                    [n] if *n >= 0 => entry.0 = Some(*n as u64),
                    _ => {
                        return Err(OptimError::State(format!(
                            "`{full}` must hold one non-negative step count"
                        )))
                    }
                }
            } else {
                let Some(i) = names.iter().position(|n| *n == bname) else {
                    return Err(OptimError::State(format!(
                        "`{full}`: `{}` has no buffer `{bname}` (expects {names:?})",
                        s.kind
                    )));
                };
                if !t.dtype().is_float_compute() {
                    return Err(OptimError::UnsupportedDType {
                        param: full.clone(),
                        dtype: t.dtype(),
                    });
                }
                entry.1[i] = Some(t.contiguous());
            }
        }
        let mut state = BTreeMap::new();
        for (pname, (step, bufs)) in parts {
            let step =
                step.ok_or_else(|| OptimError::State(format!("`{pname}.step` is missing")))?;
            let mut out = Vec::with_capacity(bufs.len());
            for (b, bn) in bufs.into_iter().zip(&names) {
                let b = b.ok_or_else(|| OptimError::State(format!("`{pname}.{bn}` is missing")))?;
                if let Some(first) = out.first() {
                    let first: &Tensor = first;
                    if first.shape() != b.shape() || first.dtype() != b.dtype() {
                        return Err(OptimError::State(format!(
                            "the buffers of `{pname}` differ in shape or dtype"
                        )));
                    }
                }
                out.push(b);
            }
            state.insert(pname, ParamState { step, bufs: out });
        }
        *rule = new_rule;
        self.state = state;
        self.steps = s.step;
        Ok(())
    }
}

/// Implement [`Optimizer`] for a struct with fields `rule` (a [`Rule`]) and `engine`.
macro_rules! impl_optimizer {
    ($ty:ty) => {
        impl $crate::optimizer::Optimizer for $ty {
            fn step(
                &mut self,
                store: &mut heft_nn::ParamStore,
                grads: &heft_nn::ParamGrads,
            ) -> $crate::error::Result<()> {
                self.engine.step(&self.rule, store, grads)
            }
            fn lr(&self) -> f64 {
                $crate::optimizer::Rule::lr(&self.rule)
            }
            fn set_lr(&mut self, lr: f64) {
                $crate::optimizer::Rule::set_lr(&mut self.rule, lr)
            }
            fn num_steps(&self) -> u64 {
                self.engine.steps
            }
            fn kind(&self) -> &'static str {
                $crate::optimizer::Rule::kind(&self.rule)
            }
            fn state(&self) -> $crate::state::OptimizerState {
                self.engine.export(&self.rule)
            }
            fn load_state(
                &mut self,
                state: &$crate::state::OptimizerState,
            ) -> $crate::error::Result<()> {
                self.engine.import(&mut self.rule, state)
            }
        }

        impl $ty {
            /// Use these parameter groups (replacing any set before).
            pub fn with_groups(mut self, groups: $crate::groups::ParamGroups) -> Self {
                self.engine.groups = groups;
                self
            }

            /// The parameter groups.
            pub fn groups(&self) -> &$crate::groups::ParamGroups {
                &self.engine.groups
            }

            /// Replace the parameter groups.
            pub fn set_groups(&mut self, groups: $crate::groups::ParamGroups) {
                self.engine.groups = groups;
            }
        }
    };
}
pub(crate) use impl_optimizer;

/// Error unless `x` is a non-negative number (NaN fails).
pub(crate) fn check_nonneg(what: &'static str, name: &str, x: f64) -> Result<()> {
    if x >= 0.0 {
        Ok(())
    } else {
        Err(OptimError::config(what, format!("invalid {name} {x}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rmsprop::RmsPropConfig;
    use crate::sgd::SgdConfig;

    /// Runs three steps of `rule` over `n` elements starting `off` elements
    /// into their vectors, through `update_vectorized` (`vec`) or the
    /// rule's own loop in one piece, compiled for the baseline (reference);
    /// returns the bits of the parameters and buffers.
    fn three_steps<R: Rule, T: Float>(rule: &R, off: usize, n: usize, vec: bool) -> Vec<Vec<u64>> {
        let nbuf = rule.buffer_names().len();
        let total = off + n;
        let mut p: Vec<T> = (0..total)
            .map(|i| T::from_f64((i % 29) as f64 / 7.0 - 2.0))
            .collect();
        let mut bufs: Vec<Vec<T>> = vec![vec![T::ZERO; total]; nbuf];
        let h = Resolved {
            lr: 0.05,
            weight_decay: 0.01,
        };
        for step in 1..=3u64 {
            let g: Vec<T> = (0..total)
                .map(|i| T::from_f64(((i * 11 + step as usize * 5) % 37) as f64 / 9.0 - 2.0))
                .collect();
            let mut b: SmallVec<[&mut [T]; 4]> = bufs.iter_mut().map(|b| &mut b[off..]).collect();
            let (p, g) = (&mut p[off..], &g[off..]);
            if vec {
                update_vectorized(rule, h, step, p, g, &mut b).unwrap();
            } else {
                rule.update(h, step, p, g, &mut b).unwrap();
            }
        }
        std::iter::once(&p)
            .chain(&bufs)
            .map(|v| v[off..].iter().map(|x| x.to_f64().to_bits()).collect())
            .collect()
    }

    /// `rule` through `update_vectorized` and through its own loop give
    /// the same bits, and the steps really moved the first parameter.
    fn same_bits<R: Rule, T: Float>(name: &str, rule: &R, off: usize, n: usize) {
        let a = three_steps::<R, T>(rule, off, n, true);
        assert!(
            a == three_steps::<R, T>(rule, off, n, false),
            "{name}, offset {off}, {n} elements"
        );
        let init = T::from_f64((off % 29) as f64 / 7.0 - 2.0)
            .to_f64()
            .to_bits();
        assert_ne!(a[0][0], init, "{name}: the parameter did not move");
    }

    /// Both rules, both float types, one offset and length.
    fn check(off: usize, n: usize) {
        let sgd = SgdConfig::new(0.1).momentum(0.9).dampening(0.1);
        let rms = RmsPropConfig::new(0.01).momentum(0.5).centered(true);
        same_bits::<_, f32>("sgd f32", &sgd, off, n);
        same_bits::<_, f64>("sgd f64", &sgd, off, n);
        same_bits::<_, f32>("rmsprop f32", &rms, off, n);
        same_bits::<_, f64>("rmsprop f64", &rms, off, n);
    }

    /// Every cut `update_vectorized` makes (the head before the first
    /// 64-byte boundary is 0..15 f32 or 0..7 f64 elements, depending on where
    /// the slice starts) and the wide loop it runs give the bits of the rule's own
    /// loop over the whole run, parameters and buffers alike.
    #[test]
    fn vectorized_updates_match_the_plain_loop_at_every_alignment() {
        for off in 0..17 {
            for n in [1, 7, 8, 15, 16, 17, 100, 1027] {
                check(off, n);
            }
        }
    }
}
