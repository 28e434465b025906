//! Checkpoints: parameters + optimizer state + step + RNG state in one
//! safetensors file, written atomically (temporary file, fsync, rename), so
//! a crash mid-save never leaves a broken checkpoint in place of a good one.
//!
//! Parameters are stored as `model/<name>` in their own dtype (no rounding,
//! so a resume is exact), optimizer buffers as `optim/<name>`; the step,
//! the optimizer's hyperparameters and the RNG state go in the metadata.
//! Resuming from a checkpoint reproduces uninterrupted training bit for bit.
//!
//! ```
//! use heft_optim::{checkpoint, Optimizer, Sgd, SgdConfig};
//! use heft_nn::{ParamStore, ParamKind};
//! use heft_tensor::Tensor;
//! use rand::SeedableRng;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::env::temp_dir().join(format!("heft-ckpt-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let path = dir.join("step-100.safetensors");
//! let mut store = ParamStore::new();
//! store.add("w", Tensor::from_vec(vec![1.0f32, 2.0], &[2])?, ParamKind::Weight)?;
//! let opt = Sgd::new(SgdConfig::new(0.1).momentum(0.9))?;
//! let rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
//! checkpoint::save(&path, &store, &opt, 100, Some(&rng), &[])?;
//!
//! let mut store2 = ParamStore::new();
//! store2.add("w", Tensor::zeros(&[2], heft_tensor::DType::F32), ParamKind::Weight)?;
//! let mut opt2 = Sgd::new(SgdConfig::new(0.5))?;
//! let loaded = checkpoint::load(&path, &mut store2, &mut opt2)?;
//! assert_eq!(loaded.step, 100);
//! assert_eq!(opt2.lr(), 0.1);
//! assert_eq!(loaded.rng.unwrap(), rng);
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok(())
//! # }
//! ```

use crate::error::{OptimError, Result};
use crate::optimizer::Optimizer;
use crate::state::OptimizerState;
use heft_nn::io::{self, LoadOptions, SaveDType};
use heft_nn::ParamStore;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::path::Path;

/// Metadata value of `format` in a checkpoint.
pub const CHECKPOINT_FORMAT: &str = "heft-checkpoint";

fn file_err(e: heft_nn::NnError) -> OptimError {
    OptimError::State(e.to_string())
}

/// What [`load`] restored besides the parameters and optimizer.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The training step saved.
    pub step: u64,
    /// The RNG, positioned where it was when saved.
    pub rng: Option<ChaCha8Rng>,
    /// Every metadata pair of the file (the caller's extras included).
    pub metadata: BTreeMap<String, String>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Save a checkpoint atomically.
pub fn save(
    path: &Path,
    store: &ParamStore,
    optimizer: &dyn Optimizer,
    step: u64,
    rng: Option<&ChaCha8Rng>,
    extra: &[(String, String)],
) -> Result<()> {
    let mut tensors: Vec<(String, heft_tensor::Tensor)> = store
        .named_tensors()
        .into_iter()
        .map(|(n, t)| (format!("model/{n}"), t))
        .collect();
    let state = optimizer.state();
    tensors.extend(
        state
            .to_tensors()
            .into_iter()
            .map(|(n, t)| (format!("optim/{n}"), t)),
    );
    let mut meta: BTreeMap<String, String> = BTreeMap::new();
    meta.insert("format".into(), CHECKPOINT_FORMAT.into());
    meta.insert("format_version".into(), io::FORMAT_VERSION.into());
    meta.insert("step".into(), step.to_string());
    for (k, v) in state.metadata() {
        meta.insert(k, v);
    }
    if let Some(r) = rng {
        meta.insert("rng.seed".into(), hex(&r.get_seed()));
        meta.insert("rng.stream".into(), r.get_stream().to_string());
        meta.insert("rng.word_pos".into(), r.get_word_pos().to_string());
    }
    for (k, v) in extra {
        meta.insert(k.clone(), v.clone());
    }
    io::save_file(path, &tensors, SaveDType::Keep, &meta).map_err(file_err)
}

/// Load a checkpoint into `store` (strictly: every parameter and buffer must
/// be present with its shape) and `optimizer` (which must be of the saved kind).
pub fn load(path: &Path, store: &mut ParamStore, optimizer: &mut dyn Optimizer) -> Result<Loaded> {
    let (tensors, metadata) = io::load_file(path).map_err(file_err)?;
    if metadata.get("format").map(String::as_str) != Some(CHECKPOINT_FORMAT) {
        return Err(OptimError::State(format!(
            "{}: not a heft checkpoint (no format = {CHECKPOINT_FORMAT})",
            path.display()
        )));
    }
    let step: u64 = metadata
        .get("step")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| OptimError::State(format!("{}: checkpoint lacks a step", path.display())))?;
    let mut model = Vec::new();
    let mut optim = Vec::new();
    for (n, t) in tensors {
        if let Some(m) = n.strip_prefix("model/") {
            model.push((m.to_string(), t));
        } else if let Some(o) = n.strip_prefix("optim/") {
            optim.push((o.to_string(), t));
        }
    }
    let meta_list: Vec<(String, String)> = metadata
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let state = OptimizerState::from_tensors(optim, &meta_list)?;
    // Validate everything before changing anything.
    let mut probe = ParamStore::new();
    for (n, t) in store.named_tensors() {
        probe
            .add(&n, t, heft_nn::ParamKind::Other)
            .map_err(file_err)?;
    }
    probe
        .load_tensors(model.clone(), BTreeMap::new(), LoadOptions::default())
        .map_err(file_err)?;
    optimizer.load_state(&state)?;
    store
        .load_tensors(model, BTreeMap::new(), LoadOptions::default())
        .map_err(file_err)?;
    let rng = match (
        metadata.get("rng.seed"),
        metadata.get("rng.stream"),
        metadata.get("rng.word_pos"),
    ) {
        (Some(seed), Some(stream), Some(pos)) => {
            let bad = || OptimError::State(format!("{}: corrupt RNG state", path.display()));
            let seed: [u8; 32] = unhex(seed)
                .and_then(|v| v.try_into().ok())
                .ok_or_else(bad)?;
            let mut r = <ChaCha8Rng as rand::SeedableRng>::from_seed(seed);
            r.set_stream(stream.parse().map_err(|_| bad())?);
            r.set_word_pos(pos.parse().map_err(|_| bad())?);
            Some(r)
        }
        _ => None,
    };
    Ok(Loaded {
        step,
        rng,
        metadata,
    })
}
