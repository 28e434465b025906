//! Helpers shared by the integration tests.
#![allow(dead_code)]

use heft_nn::{ParamGrads, ParamId, ParamKind, ParamStore};
use heft_optim::Optimizer;
use heft_tensor::{DType, Tensor};

/// A tensor of `dtype` from f64 values.
pub fn tensor(v: &[f64], dtype: DType) -> Tensor {
    Tensor::from_vec(v.to_vec(), &[v.len()])
        .unwrap()
        .to_dtype(dtype)
}

/// Values rounded through `dtype` (what the optimizer actually sees).
pub fn rounded(v: &[f64], dtype: DType) -> Vec<f64> {
    tensor(v, dtype).to_vec_f64()
}

/// Run `opt` on a single parameter `p0` with the gradients `grads` (one per
/// step); the parameter after each step, as f64.
pub fn run(opt: &mut dyn Optimizer, p0: &[f64], grads: &[Vec<f64>], dtype: DType) -> Vec<Vec<f64>> {
    let mut store = ParamStore::new();
    let id = store
        .add("p", tensor(p0, dtype), ParamKind::Weight)
        .unwrap();
    let mut out = Vec::new();
    for g in grads {
        let mut pg = ParamGrads::new(store.len());
        pg.set(id, tensor(g, dtype));
        opt.step(&mut store, &pg).unwrap();
        out.push(store.value(id).to_vec_f64());
    }
    out
}

/// Assert `|a − e| ≤ tol (1 + |e|)` elementwise, naming the step.
pub fn assert_close(actual: &[Vec<f64>], expected: &[Vec<f64>], tol: f64) {
    assert_eq!(actual.len(), expected.len());
    for (step, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert_eq!(a.len(), e.len());
        for (i, (x, y)) in a.iter().zip(e).enumerate() {
            assert!(
                (x - y).abs() <= tol * (1.0 + y.abs()),
                "step {} element {i}: got {x}, expected {y} (tol {tol})",
                step + 1
            );
        }
    }
}

/// Tolerance for comparing a run in `dtype` with an f64 reference.
pub fn tol(dtype: DType) -> f64 {
    match dtype {
        DType::F64 => 1e-13,
        _ => 2e-6,
    }
}

/// Gradients for a store of `n` parameters from `(id, values)` pairs.
pub fn grads_of(n: usize, pairs: &[(ParamId, Tensor)]) -> ParamGrads {
    let mut g = ParamGrads::new(n);
    for (id, t) in pairs {
        g.set(*id, t.clone());
    }
    g
}
