//! The [`Module`] trait and [`Sequential`].

use crate::ctx::Ctx;
use crate::error::Result;
use heft_autograd::Var;

/// A layer or model: a forward pass over vars.
///
/// Parameters live in the [`ParamStore`](crate::ParamStore); a module holds
/// their ids. Train/eval mode comes from the [`Ctx`].
///
/// Modules are `Send + Sync` (they hold ids and settings, not values), so a
/// model can be used inside `rayon::ThreadPool::install`, where a training
/// loop should run (see docs/guide.md, "Threads").
pub trait Module: Send + Sync {
    /// Apply the module.
    fn forward(&self, ctx: &Ctx<'_>, x: &Var) -> Result<Var>;
}

/// Modules applied one after another.
#[derive(Default)]
pub struct Sequential {
    layers: Vec<Box<dyn Module>>,
}

impl Sequential {
    /// An empty sequence.
    pub fn new() -> Self {
        Sequential { layers: Vec::new() }
    }

    /// Append a module (builder style).
    #[allow(clippy::should_implement_trait)]
    pub fn add<M: Module + 'static>(mut self, m: M) -> Self {
        self.layers.push(Box::new(m));
        self
    }

    /// Append a module.
    pub fn push<M: Module + 'static>(&mut self, m: M) {
        self.layers.push(Box::new(m));
    }

    /// Number of modules.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
}

impl Module for Sequential {
    fn forward(&self, ctx: &Ctx<'_>, x: &Var) -> Result<Var> {
        let mut h = x.clone();
        for l in &self.layers {
            h = l.forward(ctx, &h)?;
        }
        Ok(h)
    }
}

impl<F> Module for F
where
    F: Fn(&Ctx<'_>, &Var) -> Result<Var> + Send + Sync,
{
    fn forward(&self, ctx: &Ctx<'_>, x: &Var) -> Result<Var> {
        self(ctx, x)
    }
}
