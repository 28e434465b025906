//! Parameters and buffers: the persistent tensors of a model.
//!
//! A [`ParamStore`] owns every parameter of a model under a hierarchical
//! name (`encoder.fc1.weight`), with a [`ParamKind`] (weight, bias or other)
//! and a `trainable` flag (frozen parameters become constants on the tape
//! and optimizers skip them). Buffers (BatchNorm running statistics) live
//! beside the parameters: saved with the model, never trained.
//!
//! Each training step binds the store to a fresh [`Tape`](heft_autograd::Tape) through a
//! [`Ctx`](crate::Ctx): every trainable parameter becomes a leaf, so
//! `backward` yields `dLoss/dw` for every weight and bias.
//!
//! ```
//! use heft_nn::{ParamStore, ParamKind};
//! use heft_tensor::{DType, Tensor};
//! let mut store = ParamStore::new();
//! let w = store.add("fc.weight", Tensor::zeros(&[4, 3], DType::F32), ParamKind::Weight).unwrap();
//! store.add("fc.bias", Tensor::zeros(&[4], DType::F32), ParamKind::Bias).unwrap();
//! let c = store.counts();
//! assert_eq!((c.weights, c.biases, c.total), (12, 4, 16));
//! store.freeze_prefix("fc.");
//! assert_eq!(store.counts().trainable, 0);
//! assert_eq!(store.name(w), "fc.weight");
//! ```

use crate::error::{NnError, Result};
use heft_tensor::{DType, Tensor};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write as _;

/// What a parameter is for (used in counts and, e.g., to skip weight decay on biases).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParamKind {
    /// A weight: multiplies its input (`w_ij * a_i`).
    Weight,
    /// A bias: an offset added after the weighted sum.
    Bias,
    /// Anything else (a norm's scale or shift, an embedding table, ...).
    Other,
}

impl ParamKind {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ParamKind::Weight => "weight",
            ParamKind::Bias => "bias",
            ParamKind::Other => "other",
        }
    }
}

/// Handle of a parameter in its store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParamId(pub usize);

/// Handle of a buffer in its store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BufferId(pub usize);

/// One parameter.
#[derive(Clone, Debug)]
pub struct Param {
    /// Hierarchical name.
    pub name: String,
    /// Current value.
    pub value: Tensor,
    /// Weight, bias or other.
    pub kind: ParamKind,
    /// False when frozen.
    pub trainable: bool,
}

/// Parameter counts, as in a model summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParamCounts {
    /// Every parameter element.
    pub total: usize,
    /// Elements of weights.
    pub weights: usize,
    /// Elements of biases.
    pub biases: usize,
    /// Elements of other parameters.
    pub other: usize,
    /// Elements that train.
    pub trainable: usize,
    /// Elements that are frozen.
    pub frozen: usize,
    /// Elements of buffers (not parameters; listed for the file size).
    pub buffers: usize,
}

impl ParamCounts {
    /// Bytes of the parameters stored with `bits` per element (32, 16, 8, 4).
    pub fn bytes_at_bits(&self, bits: usize) -> usize {
        (self.total * bits).div_ceil(8)
    }
}

/// The persistent tensors of a model.
#[derive(Debug, Default)]
pub struct ParamStore {
    params: Vec<Param>,
    index: HashMap<String, usize>,
    buffers: Vec<(String, RefCell<Tensor>)>,
    buffer_index: HashMap<String, usize>,
}

impl ParamStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a trainable parameter.
    pub fn add(&mut self, name: &str, value: Tensor, kind: ParamKind) -> Result<ParamId> {
        if self.index.contains_key(name) || self.buffer_index.contains_key(name) {
            return Err(NnError::DuplicateName(name.to_string()));
        }
        self.index.insert(name.to_string(), self.params.len());
        self.params.push(Param {
            name: name.to_string(),
            value,
            kind,
            trainable: true,
        });
        Ok(ParamId(self.params.len() - 1))
    }

    /// Add a buffer (saved, never trained).
    pub fn add_buffer(&mut self, name: &str, value: Tensor) -> Result<BufferId> {
        if self.index.contains_key(name) || self.buffer_index.contains_key(name) {
            return Err(NnError::DuplicateName(name.to_string()));
        }
        self.buffer_index
            .insert(name.to_string(), self.buffers.len());
        self.buffers.push((name.to_string(), RefCell::new(value)));
        Ok(BufferId(self.buffers.len() - 1))
    }

    /// Number of parameters (tensors, not elements).
    pub fn len(&self) -> usize {
        self.params.len()
    }

    /// True when the store holds no parameter.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// A parameter by id.
    pub fn param(&self, id: ParamId) -> &Param {
        &self.params[id.0]
    }

    /// A parameter by id, mutably (optimizers update `value` in place).
    pub fn param_mut(&mut self, id: ParamId) -> &mut Param {
        &mut self.params[id.0]
    }

    /// The value of a parameter.
    pub fn value(&self, id: ParamId) -> &Tensor {
        &self.params[id.0].value
    }

    /// The name of a parameter.
    pub fn name(&self, id: ParamId) -> &str {
        &self.params[id.0].name
    }

    /// Look a parameter up by name.
    pub fn id(&self, name: &str) -> Option<ParamId> {
        self.index.get(name).map(|&i| ParamId(i))
    }

    /// Every parameter id, in creation order.
    pub fn ids(&self) -> impl Iterator<Item = ParamId> + '_ {
        (0..self.params.len()).map(ParamId)
    }

    /// Every parameter, in creation order.
    pub fn iter(&self) -> impl Iterator<Item = (ParamId, &Param)> {
        self.params.iter().enumerate().map(|(i, p)| (ParamId(i), p))
    }

    /// Replace a parameter's value (shape and dtype must match).
    pub fn set_value(&mut self, id: ParamId, value: Tensor) -> Result<()> {
        let p = &mut self.params[id.0];
        if p.value.shape() != value.shape() || p.value.dtype() != value.dtype() {
            return Err(NnError::Mismatch(format!(
                "`{}` is {:?} {} but the new value is {:?} {}",
                p.name,
                p.value.shape(),
                p.value.dtype(),
                value.shape(),
                value.dtype()
            )));
        }
        p.value = value;
        Ok(())
    }

    /// Freeze or unfreeze one parameter.
    pub fn set_trainable(&mut self, id: ParamId, trainable: bool) {
        self.params[id.0].trainable = trainable;
    }

    /// Freeze every parameter whose name starts with `prefix`; returns how many.
    pub fn freeze_prefix(&mut self, prefix: &str) -> usize {
        self.set_trainable_prefix(prefix, false)
    }

    /// Unfreeze every parameter whose name starts with `prefix`; returns how many.
    pub fn unfreeze_prefix(&mut self, prefix: &str) -> usize {
        self.set_trainable_prefix(prefix, true)
    }

    fn set_trainable_prefix(&mut self, prefix: &str, on: bool) -> usize {
        let mut n = 0;
        for p in &mut self.params {
            if p.name.starts_with(prefix) {
                p.trainable = on;
                n += 1;
            }
        }
        n
    }

    /// A buffer by id.
    pub fn buffer(&self, id: BufferId) -> Tensor {
        self.buffers[id.0].1.borrow().clone()
    }

    /// Replace a buffer's value (running statistics update in train mode).
    pub fn set_buffer(&self, id: BufferId, value: Tensor) {
        *self.buffers[id.0].1.borrow_mut() = value;
    }

    /// Look a buffer up by name.
    pub fn buffer_id(&self, name: &str) -> Option<BufferId> {
        self.buffer_index.get(name).map(|&i| BufferId(i))
    }

    /// Every buffer as `(name, value)`, in creation order.
    pub fn buffers(&self) -> Vec<(String, Tensor)> {
        self.buffers
            .iter()
            .map(|(n, v)| (n.clone(), v.borrow().clone()))
            .collect()
    }

    /// Every named tensor (parameters then buffers), for saving.
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let mut v: Vec<(String, Tensor)> = self
            .params
            .iter()
            .map(|p| (p.name.clone(), p.value.clone()))
            .collect();
        v.extend(self.buffers());
        v
    }

    /// Set a parameter or buffer by name (shape and dtype must match).
    pub fn set_named(&mut self, name: &str, value: Tensor) -> Result<()> {
        if let Some(id) = self.id(name) {
            return self.set_value(id, value);
        }
        if let Some(b) = self.buffer_id(name) {
            let cur = self.buffer(b);
            if cur.shape() != value.shape() || cur.dtype() != value.dtype() {
                return Err(NnError::Mismatch(format!(
                    "buffer `{name}` is {:?} but the new value is {:?}",
                    cur.shape(),
                    value.shape()
                )));
            }
            self.set_buffer(b, value);
            return Ok(());
        }
        Err(NnError::UnknownName(name.to_string()))
    }

    /// Shape of a named parameter or buffer.
    pub fn shape_of(&self, name: &str) -> Option<Vec<usize>> {
        if let Some(id) = self.id(name) {
            return Some(self.value(id).shape().to_vec());
        }
        self.buffer_id(name)
            .map(|b| self.buffer(b).shape().to_vec())
    }

    /// Parameter counts: total, by kind, trainable vs frozen.
    pub fn counts(&self) -> ParamCounts {
        let mut c = ParamCounts::default();
        for p in &self.params {
            let n = p.value.numel();
            c.total += n;
            match p.kind {
                ParamKind::Weight => c.weights += n,
                ParamKind::Bias => c.biases += n,
                ParamKind::Other => c.other += n,
            }
            if p.trainable {
                c.trainable += n
            } else {
                c.frozen += n
            }
        }
        c.buffers = self.buffers.iter().map(|(_, b)| b.borrow().numel()).sum();
        c
    }

    /// Counts per layer: parameters grouped by the name up to its last `.`.
    pub fn counts_by_layer(&self) -> Vec<(String, ParamCounts)> {
        let mut out: Vec<(String, ParamCounts)> = Vec::new();
        for p in &self.params {
            let layer = p
                .name
                .rsplit_once('.')
                .map(|(l, _)| l)
                .unwrap_or("")
                .to_string();
            let pos = match out.iter().position(|(l, _)| *l == layer) {
                Some(i) => i,
                None => {
                    out.push((layer, ParamCounts::default()));
                    out.len() - 1
                }
            };
            let c = &mut out[pos].1;
            let n = p.value.numel();
            c.total += n;
            match p.kind {
                ParamKind::Weight => c.weights += n,
                ParamKind::Bias => c.biases += n,
                ParamKind::Other => c.other += n,
            }
            if p.trainable {
                c.trainable += n
            } else {
                c.frozen += n
            }
        }
        out
    }

    /// A model summary table: per parameter (name, kind, shape, count,
    /// trainable), per-layer subtotals, totals by kind and the size at
    /// f32 / f16 / int8 / int4.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let w = self
            .params
            .iter()
            .map(|p| p.name.len())
            .max()
            .unwrap_or(4)
            .max(9);
        let _ = writeln!(
            s,
            "{:<w$}  {:<6}  {:<16}  {:>12}  {:<9}  dtype",
            "parameter", "kind", "shape", "count", "trainable"
        );
        let _ = writeln!(s, "{}", "-".repeat(w + 62));
        for p in &self.params {
            let _ = writeln!(
                s,
                "{:<w$}  {:<6}  {:<16}  {:>12}  {:<9}  {}",
                p.name,
                p.kind.as_str(),
                format!("{:?}", p.value.shape()),
                group(p.value.numel()),
                if p.trainable { "yes" } else { "frozen" },
                p.value.dtype()
            );
        }
        let _ = writeln!(s, "{}", "-".repeat(w + 62));
        for (layer, c) in self.counts_by_layer() {
            let name = if layer.is_empty() {
                "(top level)".to_string()
            } else {
                layer
            };
            let _ = writeln!(
                s,
                "{:<w$}  {:>12} params ({} weights, {} biases, {} other)",
                name,
                group(c.total),
                group(c.weights),
                group(c.biases),
                group(c.other)
            );
        }
        let c = self.counts();
        let _ = writeln!(s, "{}", "-".repeat(w + 62));
        let _ = writeln!(
            s,
            "total parameters: {} ({} weights, {} biases, {} other)",
            group(c.total),
            group(c.weights),
            group(c.biases),
            group(c.other)
        );
        let _ = writeln!(
            s,
            "trainable: {}   frozen: {}   buffers: {}",
            group(c.trainable),
            group(c.frozen),
            group(c.buffers)
        );
        let _ = writeln!(
            s,
            "size: f32 {}   f16 {}   int8 {}   int4 {}",
            human_bytes(c.bytes_at_bits(32)),
            human_bytes(c.bytes_at_bits(16)),
            human_bytes(c.bytes_at_bits(8)),
            human_bytes(c.bytes_at_bits(4))
        );
        s
    }

    /// Convert every floating parameter and buffer to `dtype` (f32 or f64).
    pub fn to_dtype(&mut self, dtype: DType) {
        for p in &mut self.params {
            if p.value.dtype().is_float() {
                p.value = p.value.to_dtype(dtype);
            }
        }
        for (_, b) in &self.buffers {
            let v = b.borrow().clone();
            if v.dtype().is_float() {
                *b.borrow_mut() = v.to_dtype(dtype);
            }
        }
    }
}

/// `1234567` -> `1,234,567`.
pub fn group(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Bytes in human units (powers of 1000, as model sizes are quoted: "14.0 GB").
pub fn human_bytes(n: usize) -> String {
    let f = n as f64;
    if f >= 1e9 {
        format!("{:.1} GB", f / 1e9)
    } else if f >= 1e6 {
        format!("{:.1} MB", f / 1e6)
    } else if f >= 1e3 {
        format!("{:.1} kB", f / 1e3)
    } else {
        format!("{n} B")
    }
}
