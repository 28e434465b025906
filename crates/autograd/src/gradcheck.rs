//! Gradient checking, shipped as public API.
//!
//! [`gradcheck`] compares the analytic gradient from the tape with central
//! finite differences, in f64, element by element, and reports the worst
//! element. [`gradgradcheck`] does the same for the gradient itself
//! (second order, through `create_graph`).
//!
//! For an output with at most [`GradcheckOptions::full_jacobian_max`]
//! elements the whole Jacobian is checked (one VJP per output element);
//! for larger outputs it is checked along [`GradcheckOptions::projections`]
//! fixed pseudo-random directions `r` (comparing `r^T J`), which catches a
//! wrong gradient with probability one.
//!
//! ```
//! use heft_autograd::gradcheck::{gradcheck, GradcheckOptions};
//! use heft_tensor::Tensor;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let x = Tensor::from_vec(vec![0.3f64, -1.2, 2.0, 0.7], &[2, 2])?;
//! let report = gradcheck(|v| v[0].tanh()?.matmul(&v[0])?.sum_all(), &[x], &GradcheckOptions::default())?;
//! assert!(report.max_abs_err < 1e-6);
//! # Ok(())
//! # }
//! ```

use crate::error::AutogradError;
use crate::tape::{BackwardOptions, Tape};
use crate::var::Var;
use heft_tensor::{DType, Tensor};
use std::fmt;

/// Tolerances and sizes for [`gradcheck`].
#[derive(Clone, Debug)]
pub struct GradcheckOptions {
    /// Finite-difference step.
    pub eps: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Relative tolerance (relative to the numeric value).
    pub rtol: f64,
    /// Check the full Jacobian when the output has at most this many elements.
    pub full_jacobian_max: usize,
    /// Number of random projections for larger outputs.
    pub projections: usize,
    /// Seed of the projection directions.
    pub seed: u64,
}

impl Default for GradcheckOptions {
    fn default() -> Self {
        GradcheckOptions {
            eps: 1e-6,
            atol: 1e-5,
            rtol: 1e-3,
            full_jacobian_max: 16,
            projections: 2,
            seed: 0x5eed,
        }
    }
}

/// The element where analytic and numeric gradients disagree most.
#[derive(Clone, Debug, PartialEq)]
pub struct Worst {
    /// Which input.
    pub input: usize,
    /// Multi-index in that input.
    pub index: Vec<usize>,
    /// Which output direction (output element, or projection number).
    pub direction: usize,
    /// The tape's value.
    pub analytic: f64,
    /// The finite-difference value.
    pub numeric: f64,
}

/// What [`gradcheck`] measured.
#[derive(Clone, Debug, PartialEq)]
pub struct GradcheckReport {
    /// Number of (input element, direction) pairs compared.
    pub checked: usize,
    /// Largest `|analytic - numeric|`.
    pub max_abs_err: f64,
    /// The element that came closest to (or beyond) the tolerance.
    pub worst: Option<Worst>,
    /// True when every element is within `atol + rtol * |numeric|`.
    pub passed: bool,
}

impl fmt::Display for GradcheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} comparisons, max abs error {:.3e}",
            self.checked, self.max_abs_err
        )?;
        if let Some(w) = &self.worst {
            write!(
                f,
                "; worst: input {} index {:?} direction {}: analytic {:.10e} vs numeric {:.10e}",
                w.input, w.index, w.direction, w.analytic, w.numeric
            )?;
        }
        Ok(())
    }
}

/// Why a gradient check did not pass.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GradcheckError {
    /// The function itself failed.
    #[error("gradcheck: the function failed: {0}")]
    Function(#[from] AutogradError),
    /// An input is not a float tensor.
    #[error("gradcheck: input {0} has dtype {1}; inputs must be floats (they are checked in f64)")]
    NotFloat(usize, DType),
    /// Gradients disagree beyond the tolerance.
    #[error("gradcheck: gradients disagree: {0}")]
    Mismatch(Box<GradcheckReport>),
}

/// A small deterministic generator for projection directions (SplitMix64).
fn directions(seed: u64, count: usize, n: usize) -> Vec<Vec<f64>> {
    let mut s = seed;
    let mut next = move || {
        s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        // Uniform in [-1, 1).
        (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    };
    (0..count)
        .map(|_| (0..n).map(|_| next()).collect())
        .collect()
}

fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = i % shape[d].max(1);
        i /= shape[d].max(1);
    }
    idx
}

/// Check the gradients of `f` at `inputs` against central finite differences in f64.
///
/// Inputs are converted to f64. An f64 input may be a strided view, which
/// the analytic pass sees as given; an input of another float dtype becomes
/// a packed f64 copy. Returns the report when every element passes, and
/// [`GradcheckError::Mismatch`] with the same report otherwise.
pub fn gradcheck(
    f: impl Fn(&[Var]) -> crate::Result<Var>,
    inputs: &[Tensor],
    opts: &GradcheckOptions,
) -> Result<GradcheckReport, GradcheckError> {
    let xs: Vec<Tensor> = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if t.dtype().is_float() {
                Ok(t.to_dtype(DType::F64))
            } else {
                Err(GradcheckError::NotFloat(i, t.dtype()))
            }
        })
        .collect::<Result<_, _>>()?;
    // Output shape and the directions.
    let y0 = f(&xs.iter().cloned().map(Var::constant).collect::<Vec<_>>())?;
    let m = y0.value().numel();
    let out_shape = y0.shape().to_vec();
    let dirs: Vec<Vec<f64>> = if m <= opts.full_jacobian_max {
        (0..m)
            .map(|j| (0..m).map(|k| if k == j { 1.0 } else { 0.0 }).collect())
            .collect()
    } else {
        directions(opts.seed, opts.projections, m)
    };
    // Analytic: one VJP per direction.
    let mut analytic: Vec<Vec<Vec<f64>>> = Vec::with_capacity(dirs.len()); // [dir][input][elem]
    for r in &dirs {
        let tape = Tape::new();
        let vs: Vec<Var> = xs.iter().map(|x| tape.leaf(x.clone())).collect();
        let y = f(&vs)?;
        let seed = Tensor::from_vec(r.clone(), &out_shape).map_err(AutogradError::from)?;
        let g = tape.backward_with(&y, &seed)?;
        analytic.push(vs.iter().map(|v| g.get_or_zeros(v).to_vec_f64()).collect());
    }
    // Numeric: perturb each input element once, use the whole output column.
    let mut report = GradcheckReport {
        checked: 0,
        max_abs_err: 0.0,
        worst: None,
        passed: true,
    };
    let mut worst_ratio = -1.0f64;
    for (i, x) in xs.iter().enumerate() {
        let base = x.to_vec::<f64>().map_err(AutogradError::from)?;
        for e in 0..base.len() {
            let eval = |delta: f64| -> Result<Vec<f64>, GradcheckError> {
                let mut v = base.clone();
                v[e] += delta;
                let xe = Tensor::from_vec(v, x.shape()).map_err(AutogradError::from)?;
                let args: Vec<Var> = xs
                    .iter()
                    .enumerate()
                    .map(|(k, t)| Var::constant(if k == i { xe.clone() } else { t.clone() }))
                    .collect();
                Ok(f(&args)?.value().to_vec_f64())
            };
            let (yp, ym) = (eval(opts.eps)?, eval(-opts.eps)?);
            for (d, r) in dirs.iter().enumerate() {
                let numeric: f64 = yp
                    .iter()
                    .zip(&ym)
                    .zip(r)
                    .map(|((p, q), w)| (p - q) * w)
                    .sum::<f64>()
                    / (2.0 * opts.eps);
                let a = analytic[d][i][e];
                let err = (a - numeric).abs();
                let tol = opts.atol + opts.rtol * numeric.abs();
                let ratio = if err.is_nan() {
                    f64::INFINITY
                } else {
                    err / tol
                };
                report.checked += 1;
                if err > report.max_abs_err || err.is_nan() {
                    report.max_abs_err = if err.is_nan() { f64::NAN } else { err };
                }
                if ratio > worst_ratio {
                    worst_ratio = ratio;
                    report.worst = Some(Worst {
                        input: i,
                        index: unravel(e, x.shape()),
                        direction: d,
                        analytic: a,
                        numeric,
                    });
                }
                if err.is_nan() || err > tol {
                    report.passed = false;
                }
            }
        }
    }
    if report.passed {
        Ok(report)
    } else {
        Err(GradcheckError::Mismatch(Box::new(report)))
    }
}

/// Second-order check: the gradient of `<grad f(x), w>` (for a fixed random
/// `w` and a fixed random output seed), computed by differentiating the
/// recorded backward pass, against finite differences of the first gradient.
pub fn gradgradcheck(
    f: impl Fn(&[Var]) -> crate::Result<Var>,
    inputs: &[Tensor],
    opts: &GradcheckOptions,
) -> Result<GradcheckReport, GradcheckError> {
    let shapes: Vec<Vec<usize>> = inputs.iter().map(|t| t.shape().to_vec()).collect();
    let y0 = f(&inputs
        .iter()
        .map(|t| Var::constant(t.to_dtype(DType::F64)))
        .collect::<Vec<_>>())?;
    let seed_dir = directions(opts.seed ^ 0xabcd, 1, y0.value().numel()).remove(0);
    let seed = Tensor::from_vec(seed_dir, y0.shape()).map_err(AutogradError::from)?;
    let ws: Vec<Tensor> = shapes
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let n: usize = s.iter().product();
            Tensor::from_vec(
                directions(opts.seed.wrapping_add(k as u64 + 1), 1, n).remove(0),
                s,
            )
        })
        .collect::<Result<_, _>>()
        .map_err(AutogradError::from)?;
    let h = |vs: &[Var]| -> crate::Result<Var> {
        let y = f(vs)?;
        let tape = vs.iter().find_map(|v| v.tape());
        let Some(tape) = tape else {
            // Evaluated on constants (the numeric pass): compute the first
            // gradient on a private tape.
            let t = Tape::new();
            let ls: Vec<Var> = vs.iter().map(|v| t.leaf(v.value().clone())).collect();
            let y = f(&ls)?;
            let g = t.backward_with(&y, &seed)?;
            let mut total = Var::constant(Tensor::scalar(0.0f64));
            for (l, w) in ls.iter().zip(&ws) {
                if let Some(gv) = g.get(l) {
                    total = total.add(&Var::constant(gv.mul(w)?.sum_all()?))?;
                }
            }
            return Ok(total);
        };
        let g = tape.backward_opts(
            &y,
            Some(&seed),
            BackwardOptions {
                create_graph: true,
                retain_graph: true,
            },
        )?;
        let mut total = Var::constant(Tensor::scalar(0.0f64));
        for (v, w) in vs.iter().zip(&ws) {
            if let Some(gv) = g.get_var(v) {
                total = total.add(&gv.mul(&Var::constant(w.clone()))?.sum_all()?)?;
            }
        }
        Ok(total)
    };
    gradcheck(h, inputs, opts)
}
