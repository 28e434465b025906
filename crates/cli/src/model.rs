//! The MLP classifier `heft train` builds, and its model file.
//!
//! Layers are named `fc1`, `fc2`, ...: `fcK.weight` is `[out, in]`,
//! `fcK.bias` is `[out]`, ReLU between layers, logits out. The file also
//! holds the input standardisation as two buffers, `preprocess.mean` and
//! `preprocess.std` (`[features]` each), and the metadata
//! `architecture = "mlp:64-128-64-10"` (layer sizes, input first), from
//! which `heft eval` rebuilds the model.

use crate::data::Standardizer;
use crate::error::{err, Result};
use heft::autograd::{Tape, Var};
use heft::nn::init::{FanMode, Init, Nonlinearity};
use heft::nn::io::{LoadOptions, SaveDType};
use heft::nn::layers::Linear;
use heft::nn::{Ctx, Mode, Module, ParamStore};
use heft::tensor::{DType, Tensor};
use rand::Rng;
use std::path::Path;

/// Name of the standardisation mean buffer.
pub const MEAN: &str = "preprocess.mean";
/// Name of the standardisation std buffer.
pub const STD: &str = "preprocess.std";

/// A multi-layer perceptron: Linear layers with ReLU between them.
#[derive(Clone, Debug)]
pub struct Mlp {
    /// Layer widths, input first, classes last.
    pub sizes: Vec<usize>,
    layers: Vec<Linear>,
}

impl Mlp {
    /// Build with He (Kaiming normal, fan-in, ReLU gain) weights and zero biases.
    pub fn new<R: Rng>(store: &mut ParamStore, sizes: &[usize], rng: &mut R) -> Result<Mlp> {
        if sizes.len() < 2 || sizes.contains(&0) {
            return Err(err(format!(
                "an MLP needs at least an input and an output size, all positive; got {sizes:?}"
            )));
        }
        let mut layers = Vec::new();
        for (i, w) in sizes.windows(2).enumerate() {
            let init = Init::KaimingNormal {
                mode: FanMode::FanIn,
                nonlinearity: Nonlinearity::Relu,
            };
            layers.push(Linear::with_init(
                store,
                &format!("fc{}", i + 1),
                w[0],
                w[1],
                true,
                init,
                Init::Zeros,
                rng,
            )?);
        }
        Ok(Mlp {
            sizes: sizes.to_vec(),
            layers,
        })
    }

    /// `mlp:64-128-64-10`.
    pub fn architecture(&self) -> String {
        let s: Vec<String> = self.sizes.iter().map(|s| s.to_string()).collect();
        format!("mlp:{}", s.join("-"))
    }

    /// Parse `mlp:64-128-64-10` into layer sizes.
    pub fn parse_architecture(s: &str) -> Option<Vec<usize>> {
        let rest = s.strip_prefix("mlp:")?;
        let sizes: Option<Vec<usize>> = rest.split('-').map(|t| t.parse().ok()).collect();
        sizes.filter(|v| v.len() >= 2 && !v.contains(&0))
    }

    /// Number of input features.
    pub fn inputs(&self) -> usize {
        self.sizes[0]
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        *self.sizes.last().expect("at least two sizes")
    }
}

impl Module for Mlp {
    fn forward(&self, ctx: &Ctx<'_>, x: &Var) -> heft::nn::Result<Var> {
        let mut h = x.clone();
        for (i, l) in self.layers.iter().enumerate() {
            h = l.forward(ctx, &h)?;
            if i + 1 < self.layers.len() {
                h = h.relu()?;
            }
        }
        Ok(h)
    }
}

/// Predicted class of each row of `x` (`[n, features]`, already standardised).
pub fn predict(store: &ParamStore, mlp: &Mlp, x: &Tensor) -> Result<Vec<i64>> {
    let tape = Tape::new();
    let ctx = Ctx::new(store, &tape, Mode::Eval);
    let logits = tape.no_grad(|| mlp.forward(&ctx, &ctx.input(x.clone())))?;
    Ok(logits.value().argmax(1, false)?.to_vec::<i64>()?)
}

/// Add the standardisation buffers to a store.
pub fn add_preprocess(store: &mut ParamStore, s: &Standardizer) -> Result<()> {
    let d = s.mean.len();
    store.add_buffer(MEAN, Tensor::from_vec(s.mean.clone(), &[d])?)?;
    store.add_buffer(STD, Tensor::from_vec(s.std.clone(), &[d])?)?;
    Ok(())
}

/// Save the model, its standardisation and metadata (f32).
pub fn save(path: &Path, store: &ParamStore, mlp: &Mlp, extra: &[(String, String)]) -> Result<()> {
    store.save_safetensors(path, SaveDType::F32, &mlp.architecture(), extra)?;
    Ok(())
}

/// A loaded model.
pub struct Loaded {
    /// Parameters and buffers.
    pub store: ParamStore,
    /// The network.
    pub mlp: Mlp,
    /// The stored standardisation.
    pub pre: Standardizer,
}

/// Load a model `heft train` wrote.
pub fn load(path: &Path) -> Result<Loaded> {
    let shown = path.display();
    if !path.exists() {
        return Err(err(format!("{shown}: no such file")));
    }
    let header = heft::nn::io::read_header(path)?;
    let arch = header.metadata.get("architecture").ok_or_else(|| {
        err(format!(
            "{shown}: not a heft model (no `architecture` metadata); `heft inspect` reads any safetensors file"
        ))
    })?;
    let sizes = Mlp::parse_architecture(arch).ok_or_else(|| {
        err(format!(
            "{shown}: architecture `{arch}` is not one heft can rebuild (expected e.g. `mlp:64-128-64-10`)"
        ))
    })?;
    let mut store = ParamStore::new();
    // Values are replaced by the file's; the seed does not matter.
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
    let mlp = Mlp::new(&mut store, &sizes, &mut rng)?;
    let d = sizes[0];
    store.add_buffer(MEAN, Tensor::zeros(&[d], DType::F32))?;
    store.add_buffer(STD, Tensor::ones(&[d], DType::F32))?;
    store
        .load_safetensors(path, LoadOptions { strict: true })
        .map_err(|e| match e {
            heft::nn::NnError::Mismatch(m) => err(format!(
                "{shown}: tensors do not match its architecture `{arch}`: {m}"
            )),
            other => other.into(),
        })?;
    let get = |name: &str| -> Result<Vec<f32>> {
        let id = store.buffer_id(name).expect("added above");
        Ok(store.buffer(id).to_dtype(DType::F32).to_vec::<f32>()?)
    };
    let pre = Standardizer {
        mean: get(MEAN)?,
        std: get(STD)?,
    };
    if pre.std.iter().any(|s| !s.is_finite() || *s <= 0.0)
        || pre.mean.iter().any(|m| !m.is_finite())
    {
        return Err(err(format!(
            "{shown}: corrupt standardisation (`{STD}` must be positive and finite)"
        )));
    }
    Ok(Loaded { store, mlp, pre })
}
