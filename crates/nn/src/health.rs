//! Weight-health signals, the ones practitioners watch while training:
//! per-parameter weight norm, gradient norm, update-to-weight ratio, NaN/Inf
//! counts, and the share of dead ReLU units per layer.
//!
//! ```
//! use heft_nn::{health, ParamStore, ParamKind, ParamGrads};
//! use heft_tensor::Tensor;
//! let mut store = ParamStore::new();
//! let w = store.add("w", Tensor::from_vec(vec![3.0f32, 4.0], &[2]).unwrap(), ParamKind::Weight).unwrap();
//! let before = store.snapshot();
//! let mut g = ParamGrads::new(1);
//! g.set(w, Tensor::from_vec(vec![0.0f32, 1.0], &[2]).unwrap());
//! store.set_value(w, Tensor::from_vec(vec![3.0f32, 3.5], &[2]).unwrap()).unwrap();
//! let rows = health::report(&store, &g, Some(&before), &[]).unwrap();
//! assert_eq!(rows.params[0].weight_norm, 3.0f64.hypot(3.5));
//! assert_eq!(rows.params[0].grad_norm, Some(1.0));
//! assert!((rows.params[0].update_ratio.unwrap() - 0.1).abs() < 1e-7);
//! ```

use crate::ctx::ParamGrads;
use crate::error::Result;
use crate::params::ParamStore;
use heft_tensor::Tensor;
use std::fmt::Write as _;

/// Health of one parameter.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamHealth {
    /// Parameter name.
    pub name: String,
    /// `||w||_2`.
    pub weight_norm: f64,
    /// `||dL/dw||_2`, if a gradient exists.
    pub grad_norm: Option<f64>,
    /// `||w_after - w_before|| / ||w_before||`, if a snapshot was given.
    pub update_ratio: Option<f64>,
    /// NaN elements in the weight and gradient.
    pub nan: usize,
    /// Infinite elements in the weight and gradient.
    pub inf: usize,
}

/// A health report.
#[derive(Clone, Debug, PartialEq)]
pub struct HealthReport {
    /// One row per parameter.
    pub params: Vec<ParamHealth>,
    /// `(layer, share of dead units)` from [`Ctx::activations`](crate::Ctx::activations).
    pub dead_relu: Vec<(String, f64)>,
}

fn l2(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(heft_tensor::DType::F64)
        .norm_l2(&[], false)?
        .item::<f64>()?)
}

impl ParamStore {
    /// The current values (cheap: storage is shared until a value changes).
    pub fn snapshot(&self) -> Vec<Tensor> {
        self.iter().map(|(_, p)| p.value.clone()).collect()
    }
}

/// Build the report from the store, the step's gradients, an optional
/// snapshot taken before the update, and the step's activation statistics.
pub fn report(
    store: &ParamStore,
    grads: &ParamGrads,
    before: Option<&[Tensor]>,
    activations: &[(String, f64)],
) -> Result<HealthReport> {
    let mut rows = Vec::new();
    for (id, p) in store.iter() {
        let weight_norm = l2(&p.value)?;
        let (mut nan, mut inf) = p.value.count_nonfinite()?;
        let grad_norm = match grads.get(id) {
            Some(g) => {
                let (a, b) = g.count_nonfinite()?;
                nan += a;
                inf += b;
                Some(l2(g)?)
            }
            None => None,
        };
        let update_ratio = match before.and_then(|b| b.get(id.0)) {
            Some(old) => {
                let d = l2(&p.value.sub(old)?)?;
                let o = l2(old)?;
                Some(if o > 0.0 { d / o } else { d })
            }
            None => None,
        };
        rows.push(ParamHealth {
            name: p.name.clone(),
            weight_norm,
            grad_norm,
            update_ratio,
            nan,
            inf,
        });
    }
    Ok(HealthReport {
        params: rows,
        dead_relu: activations.to_vec(),
    })
}

impl HealthReport {
    /// A table for a training log.
    pub fn table(&self) -> String {
        let w = self
            .params
            .iter()
            .map(|p| p.name.len())
            .max()
            .unwrap_or(5)
            .max(9);
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:<w$}  {:>11}  {:>11}  {:>12}  {:>5}  {:>5}",
            "parameter", "|w|", "|grad|", "update/|w|", "nan", "inf"
        );
        let opt = |v: Option<f64>| v.map(|x| format!("{x:.4e}")).unwrap_or_else(|| "-".into());
        for p in &self.params {
            let _ = writeln!(
                s,
                "{:<w$}  {:>11.4e}  {:>11}  {:>12}  {:>5}  {:>5}",
                p.name,
                p.weight_norm,
                opt(p.grad_norm),
                opt(p.update_ratio),
                p.nan,
                p.inf
            );
        }
        for (layer, share) in &self.dead_relu {
            let _ = writeln!(s, "dead ReLU units in {layer}: {:.1}%", share * 100.0);
        }
        s
    }
}
