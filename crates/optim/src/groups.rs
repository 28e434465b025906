//! Parameter groups: per-group learning-rate multipliers and weight decay.
//!
//! A group is a list of [`ParamId`]s plus overrides. Parameters in no group
//! train with the optimizer's own settings. When a parameter is listed in
//! several groups, the first group wins.
//!
//! The learning rate of a group is `optimizer.lr() * lr_mult`, so a schedule
//! driving [`Optimizer::set_lr`](crate::Optimizer::set_lr) moves every group
//! together (as PyTorch schedulers scale each group's initial lr).
//!
//! ```
//! use heft_nn::{ParamKind, ParamStore};
//! use heft_optim::ParamGroups;
//! use heft_tensor::{DType, Tensor};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut store = ParamStore::new();
//! let w = store.add("fc.weight", Tensor::zeros(&[2, 2], DType::F32), ParamKind::Weight)?;
//! let b = store.add("fc.bias", Tensor::zeros(&[2], DType::F32), ParamKind::Bias)?;
//! let g = store.add("norm.scale", Tensor::ones(&[2], DType::F32), ParamKind::Other)?;
//! let groups = ParamGroups::decay_split(&store, 0.1);
//! assert_eq!(groups.groups()[0].ids, vec![w]);
//! assert_eq!(groups.groups()[0].weight_decay, Some(0.1));
//! assert_eq!(groups.groups()[1].ids, vec![b, g]);
//! assert_eq!(groups.groups()[1].weight_decay, Some(0.0));
//! # Ok(())
//! # }
//! ```

use heft_nn::{ParamId, ParamKind, ParamStore};

/// One group of parameters with its overrides.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamGroup {
    /// The parameters of the group.
    pub ids: Vec<ParamId>,
    /// Multiplier on the optimizer's learning rate (1.0 = unchanged).
    pub lr_mult: f64,
    /// Weight decay for the group; `None` keeps the optimizer's.
    pub weight_decay: Option<f64>,
}

impl ParamGroup {
    /// A group with no overrides.
    pub fn new(ids: Vec<ParamId>) -> Self {
        ParamGroup {
            ids,
            lr_mult: 1.0,
            weight_decay: None,
        }
    }

    /// Set the learning-rate multiplier.
    pub fn with_lr_mult(mut self, lr_mult: f64) -> Self {
        self.lr_mult = lr_mult;
        self
    }

    /// Set the group's weight decay.
    pub fn with_weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = Some(weight_decay);
        self
    }
}

/// The groups of an optimizer (empty: every parameter uses the optimizer's settings).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParamGroups {
    groups: Vec<ParamGroup>,
}

/// The settings one parameter trains with in a step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Resolved {
    pub lr: f64,
    pub weight_decay: f64,
}

impl ParamGroups {
    /// No groups.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a group.
    pub fn push(&mut self, group: ParamGroup) -> &mut Self {
        self.groups.push(group);
        self
    }

    /// Add a group (builder style).
    pub fn with(mut self, group: ParamGroup) -> Self {
        self.groups.push(group);
        self
    }

    /// The groups, in order.
    pub fn groups(&self) -> &[ParamGroup] {
        &self.groups
    }

    /// Two groups: every [`ParamKind::Weight`] with `weight_decay`, then every
    /// bias and [`ParamKind::Other`] parameter (norm scales and shifts,
    /// embeddings) with no weight decay. Frozen parameters are included (the
    /// optimizer skips them while they are frozen).
    pub fn decay_split(store: &ParamStore, weight_decay: f64) -> Self {
        let mut decay = Vec::new();
        let mut no_decay = Vec::new();
        for (id, p) in store.iter() {
            match p.kind {
                ParamKind::Weight => decay.push(id),
                ParamKind::Bias | ParamKind::Other => no_decay.push(id),
            }
        }
        ParamGroups::new()
            .with(ParamGroup::new(decay).with_weight_decay(weight_decay))
            .with(ParamGroup::new(no_decay).with_weight_decay(0.0))
    }

    /// Index of the group of each of `n` parameters (first group wins).
    pub(crate) fn assignment(&self, n: usize) -> Vec<Option<usize>> {
        let mut out = vec![None; n];
        for (gi, g) in self.groups.iter().enumerate() {
            for id in &g.ids {
                if let Some(slot) = out.get_mut(id.0) {
                    if slot.is_none() {
                        *slot = Some(gi);
                    }
                }
            }
        }
        out
    }

    /// The settings of a parameter in group `g` given the optimizer's defaults.
    pub(crate) fn resolve(&self, g: Option<usize>, lr: f64, weight_decay: f64) -> Resolved {
        match g {
            None => Resolved { lr, weight_decay },
            Some(i) => {
                let grp = &self.groups[i];
                Resolved {
                    lr: lr * grp.lr_mult,
                    weight_decay: grp.weight_decay.unwrap_or(weight_decay),
                }
            }
        }
    }
}
