//! The code of `docs/gradient-testing.md` (and the examples of
//! `docs/autograd.md`), compiled and run as tests.
//!
//! The guides show the items of this file verbatim; keep them in sync when
//! either changes.

use heft_autograd::gradcheck::{gradcheck, gradgradcheck, GradcheckError, GradcheckOptions};
use heft_autograd::testing::{
    broadcast_pair, check_gradients, check_gradients_with, shape, strided_view, tensor,
};
use heft_autograd::{CustomOp, Result, Tape, Var};
use heft_tensor::{DType, Tensor};
use proptest::prelude::*;
use std::rc::Rc;

type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

// ----- 1. a first check --------------------------------------------------

#[test]
fn first_gradcheck() -> TestResult {
    let x = Tensor::from_vec(vec![0.3f64, -1.2, 2.0, 0.7, 0.1, -0.4], &[2, 3])?;
    let w = Tensor::from_vec(vec![0.5f64, -0.3, 0.8, 0.2, -1.0, 0.4], &[3, 2])?;
    let f = |v: &[Var]| v[0].matmul(&v[1])?.tanh()?.sum_all();
    let report = gradcheck(f, &[x.clone(), w.clone()], &GradcheckOptions::default())?;
    assert!(report.passed);
    // One output element, 6 + 6 input elements: 12 comparisons.
    assert_eq!(report.checked, 12);
    println!("{report}");

    // f may return any shape. This output has 4 elements (<= 16): the whole
    // Jacobian is checked, one backward pass per output element.
    let g = |v: &[Var]| v[0].matmul(&v[1])?.tanh();
    let full = gradcheck(g, &[x.clone(), w.clone()], &GradcheckOptions::default())?;
    assert_eq!(full.checked, 4 * 12);
    // Forcing random projections instead: 2 directions.
    let opts = GradcheckOptions {
        full_jacobian_max: 0,
        ..Default::default()
    };
    let projected = gradcheck(g, &[x, w], &opts)?;
    assert_eq!(projected.checked, 2 * 12);
    Ok(())
}

// ----- 2. reading a failure ----------------------------------------------

/// `x^3` with a wrong backward (`3x` instead of `3x^2`).
struct BadCube;

impl CustomOp for BadCube {
    fn name(&self) -> &'static str {
        "bad_cube"
    }
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        Ok(inputs[0].powf(3.0)?)
    }
    fn backward(&self, inputs: &[Var], _output: &Var, grad: &Var) -> Result<Vec<Option<Var>>> {
        Ok(vec![Some(grad.mul(&inputs[0].mul_scalar(3.0)?)?)])
    }
}

#[test]
fn reading_a_failure() -> TestResult {
    let x = Tensor::from_vec(vec![0.5f64, 1.0, 2.0], &[3])?;
    let f = |v: &[Var]| Var::custom(Rc::new(BadCube), &[&v[0]]);
    match gradcheck(f, &[x], &GradcheckOptions::default()) {
        Err(GradcheckError::Mismatch(report)) => {
            println!("{report}");
            // The largest absolute error is at x = 2 (6 vs 12)...
            assert!((report.max_abs_err - 6.0).abs() < 1e-6);
            // ...but the worst element is the one furthest beyond its
            // tolerance atol + rtol * |numeric|: x = 0.5 (1.5 vs 0.75).
            let worst = report.worst.as_ref().expect("something was compared");
            assert_eq!((worst.input, worst.index.clone()), (0, vec![0]));
            assert_eq!(worst.direction, 0); // output element 0
            assert!((worst.analytic - 1.5).abs() < 1e-12);
            assert!((worst.numeric - 0.75).abs() < 1e-6);
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
    Ok(())
}

// ----- 3. a custom op, property-tested -----------------------------------

/// `y = x * sigmoid(beta * x)`: swish with a learnable slope `beta`, which
/// broadcasts against `x`.
struct Swish;

impl CustomOp for Swish {
    fn name(&self) -> &'static str {
        "swish"
    }

    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let (x, beta) = (inputs[0], inputs[1]);
        Ok(x.mul(beta)?.sigmoid()?.mul(x)?)
    }

    fn backward(&self, inputs: &[Var], _output: &Var, grad: &Var) -> Result<Vec<Option<Var>>> {
        let (x, beta) = (&inputs[0], &inputs[1]);
        let s = x.mul(beta)?.sigmoid()?;
        // ds = s (1 - s); dy/dx = s + x beta ds; dy/dbeta = x^2 ds.
        let ds = s.mul(&s.rsub_scalar(1.0)?)?;
        let gx = grad.mul(&s.add(&x.mul(beta)?.mul(&ds)?)?)?;
        let gb = grad.mul(&x.square()?.mul(&ds)?)?;
        // Both have the broadcast output shape; the engine sums each one
        // down to its input's shape.
        Ok(vec![Some(gx), Some(gb)])
    }
}

fn swish(x: &Var, beta: &Var) -> Result<Var> {
    Var::custom(Rc::new(Swish), &[x, beta])
}

/// `[x, beta]` of random broadcast-compatible shapes; `beta` is a strided view.
fn swish_inputs() -> impl Strategy<Value = Vec<Tensor>> {
    broadcast_pair(3, 4)
        .prop_flat_map(|(xs, bs)| (tensor(xs, -3.0..3.0), strided_view(bs, -2.0..2.0)))
        .prop_map(|(x, beta)| vec![x, beta])
}

#[test]
fn swish_gradients() {
    check_gradients(swish_inputs(), 64, |v| swish(&v[0], &v[1])).unwrap();
}

#[test]
fn swish_second_order() -> TestResult {
    // The backward is written with Var ops, so it can be differentiated too.
    let x = Tensor::from_vec(vec![0.5f64, -1.0, 2.0, 0.3, -0.7, 1.4], &[2, 3])?;
    let beta = Tensor::from_vec(vec![1.0f64, 0.5, 2.0], &[3])?;
    gradgradcheck(
        |v| swish(&v[0], &v[1]),
        &[x, beta],
        &GradcheckOptions::default(),
    )?;
    Ok(())
}

// ----- 4. a small model, property-tested ---------------------------------

/// A two-layer perceptron, `logits = tanh(x w1 + b1) w2 + b2`, with mean
/// cross-entropy against integer class ids. `params` = `[w1, b1, w2, b2]`.
fn mlp_loss(params: &[Var], x: &Tensor, classes: &Tensor) -> Result<Var> {
    let (w1, b1, w2, b2) = (&params[0], &params[1], &params[2], &params[3]);
    // Constants in the parameters' dtype: gradcheck runs the model in f64.
    let x = Var::constant(x.to_dtype(w1.dtype()));
    let h = x.matmul(w1)?.add(b1)?.tanh()?;
    h.matmul(w2)?.add(b2)?.cross_entropy_with_logits(classes)
}

/// Random sizes, parameters, batch and class ids.
fn mlp_case() -> impl Strategy<Value = (Vec<Tensor>, Tensor, Tensor)> {
    (1..=4usize, 1..=3usize, 1..=4usize, 2..=4usize)
        .prop_flat_map(|(n, d, h, c)| {
            (
                (
                    tensor(vec![d, h], -1.0..1.0),
                    tensor(vec![h], -0.5..0.5),
                    tensor(vec![h, c], -1.0..1.0),
                    tensor(vec![c], -0.5..0.5),
                ),
                tensor(vec![n, d], -2.0..2.0),
                proptest::collection::vec(0..c as i64, n),
            )
        })
        .prop_map(|((w1, b1, w2, b2), x, classes)| {
            let n = classes.len();
            let classes = Tensor::from_vec(classes, &[n]).expect("n class ids");
            (vec![w1, b1, w2, b2], x, classes)
        })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 32,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn mlp_gradients((params, x, classes) in mlp_case()) {
        // The class ids are closed over: only the parameters are perturbed.
        let r = gradcheck(
            |v| mlp_loss(v, &x, &classes),
            &params,
            &GradcheckOptions::default(),
        );
        prop_assert!(r.is_ok(), "{}", r.unwrap_err());
    }
}

/// The same model with a fixed batch, through `check_gradients_with`.
#[test]
fn mlp_gradients_fixed_batch() -> TestResult {
    let x = Tensor::from_vec(vec![0.5f32, -1.0, 1.5, 0.2, -0.3, 0.8], &[3, 2])?;
    let classes = Tensor::from_vec(vec![0i64, 2, 1], &[3])?;
    let params = (
        tensor(vec![2, 4], -1.0..1.0),
        tensor(vec![4], -0.5..0.5),
        tensor(vec![4, 3], -1.0..1.0),
        tensor(vec![3], -0.5..0.5),
    )
        .prop_map(|(w1, b1, w2, b2)| vec![w1, b1, w2, b2]);
    let opts = GradcheckOptions {
        atol: 1e-7,
        rtol: 1e-5,
        ..Default::default()
    };
    check_gradients_with(params, 32, &opts, |v| mlp_loss(v, &x, &classes))?;
    Ok(())
}

/// gradcheck checks the f64 model; the f32 gradients are compared with it
/// separately, with an f32 tolerance.
#[test]
fn mlp_f32_matches_f64() -> TestResult {
    let x = Tensor::from_vec(vec![0.5f32, -1.0, 1.5, 0.2, -0.3, 0.8], &[3, 2])?;
    let classes = Tensor::from_vec(vec![0i64, 2, 1], &[3])?;
    let params = [
        Tensor::from_vec(vec![0.3f64, -0.2, 0.5, 0.1, -0.4, 0.6, 0.2, -0.1], &[2, 4])?,
        Tensor::from_vec(vec![0.1f64, 0.0, -0.1, 0.2], &[4])?,
        Tensor::from_vec(
            vec![
                0.2f64, -0.3, 0.1, 0.4, 0.0, -0.2, -0.1, 0.3, 0.2, 0.5, -0.4, 0.1,
            ],
            &[4, 3],
        )?,
        Tensor::from_vec(vec![0.0f64, 0.1, -0.1], &[3])?,
    ];
    let grads = |dtype: DType| -> Result<Vec<Vec<f64>>> {
        let tape = Tape::new();
        let ps: Vec<Var> = params
            .iter()
            .map(|p| tape.leaf(p.to_dtype(dtype)))
            .collect();
        let g = tape.backward(&mlp_loss(&ps, &x, &classes)?)?;
        Ok(ps.iter().map(|p| g.get_or_zeros(p).to_vec_f64()).collect())
    };
    let (g32, g64) = (grads(DType::F32)?, grads(DType::F64)?);
    for (a, b) in g32.iter().flatten().zip(g64.iter().flatten()) {
        assert!((a - b).abs() <= 1e-5 + 1e-4 * b.abs(), "{a} vs {b}");
    }
    Ok(())
}

// ----- 5. pitfalls -------------------------------------------------------

#[test]
fn pitfall_ties_and_kinks() -> TestResult {
    let opts = GradcheckOptions::default();
    // relu'(0) = 0, but the central difference at 0 is 1/2.
    let zero = Tensor::from_vec(vec![0.0f64], &[1])?;
    assert!(gradcheck(|v| v[0].relu(), &[zero], &opts).is_err());
    // A three-way tie in max: each gets 1/3, the central difference says 1/2.
    let tied = [Tensor::from_vec(vec![1.0f64, 1.0, 1.0], &[3])?];
    let max = |v: &[Var]| v[0].max(&[], false);
    assert!(gradcheck(max, &tied, &opts).is_err());
    // A distinct ramp added inside f makes any input tie-free.
    let ramp = Var::constant(Tensor::from_vec(vec![0.0f64, 0.37, 0.74], &[3])?);
    let tie_free = |v: &[Var]| v[0].add(&ramp)?.max(&[], false);
    assert!(gradcheck(tie_free, &tied, &opts).is_ok());
    Ok(())
}

#[test]
fn pitfall_shrinking_toward_kinks() {
    // Inputs drawn from a range that contains the kink (0 for relu) ...
    let risky = shape(2, 3)
        .prop_flat_map(|s| tensor(s, -1.0..1.0))
        .prop_map(|t| vec![t]);
    // ... and from one that keeps 0.05 away from it on either side.
    let safe = shape(2, 3)
        .prop_flat_map(|s| {
            let n: usize = s.iter().product();
            (
                proptest::collection::vec(prop_oneof![-1.0..-0.05, 0.05..1.0], n),
                Just(s),
            )
        })
        .prop_map(|(v, s)| vec![Tensor::from_vec(v, &s).expect("n elements")]);
    check_gradients(safe, 64, |v| v[0].relu()).unwrap();
    // `risky` passes too, almost surely (an exact 0 is unlikely), but if some
    // other bug made it fail, shrinking would move values toward 0 and the
    // minimal failing input could end up failing at relu's kink instead.
    check_gradients(risky, 64, |v| v[0].relu()).unwrap();
}

#[test]
fn pitfall_integer_inputs() -> TestResult {
    let logits = Tensor::from_vec(vec![0.2f64, -0.5, 1.0, 0.3], &[2, 2])?;
    let classes = Tensor::from_vec(vec![1i64, 0], &[2])?;
    // Wrong: class ids as a gradcheck input.
    let err = gradcheck(
        |v| v[0].cross_entropy_with_logits(v[1].value()),
        &[logits.clone(), classes.clone()],
        &GradcheckOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, GradcheckError::NotFloat(1, DType::I64)));
    // Right: close over them.
    gradcheck(
        |v| v[0].cross_entropy_with_logits(&classes),
        &[logits],
        &GradcheckOptions::default(),
    )?;
    Ok(())
}

#[test]
fn pitfall_f32_constants() -> TestResult {
    let x = [Tensor::from_vec(vec![0.5f32, 1.5], &[2])?];
    let scale = Tensor::from_vec(vec![2.0f32, 3.0], &[2])?;
    // Wrong: gradcheck hands f the f64 version of x; the f32 constant does
    // not mix with it (no silent casts).
    let err = gradcheck(
        |v| v[0].mul(&Var::constant(scale.clone())),
        &x,
        &GradcheckOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, GradcheckError::Function(_)));
    // Right: build constants in the input's dtype.
    gradcheck(
        |v| v[0].mul(&Var::constant(scale.to_dtype(v[0].dtype()))),
        &x,
        &GradcheckOptions::default(),
    )?;
    Ok(())
}

#[test]
fn pitfall_detach() -> TestResult {
    let x = [Tensor::from_vec(vec![0.5f64, 1.5], &[2])?];
    let opts = GradcheckOptions::default();
    // Wrong: scale by a detached mean. The analytic pass treats the mean as
    // a constant; the numeric pass runs f on constants, where detach does
    // nothing, so its differences see the mean move.
    let detached = |v: &[Var]| v[0].mul(&v[0].mean_all()?.detach())?.sum_all();
    assert!(matches!(
        gradcheck(detached, &x, &opts),
        Err(GradcheckError::Mismatch(_))
    ));
    // Right: compute the constant once, outside f, and close over it.
    let mean = Var::constant(x[0].mean(&[], false)?);
    let closed = |v: &[Var]| v[0].mul(&mean)?.sum_all();
    gradcheck(closed, &x, &opts)?;
    Ok(())
}

// ----- docs/autograd.md ----------------------------------------------------

#[test]
fn autograd_tape_reuse_and_stale_vars() -> TestResult {
    let tape = Tape::new();
    let x = Tensor::from_vec(vec![1.0f64, 2.0], &[2])?;
    let mut w = Tensor::from_vec(vec![0.5f64, -0.5], &[2])?;
    for _step in 0..3 {
        tape.reset(); // forget the last step's records, keep the allocation
        let wv = tape.leaf(w.clone());
        let loss = wv.mul(&tape.constant(x.clone()))?.sum_all()?.square()?;
        let mut grads = tape.backward(&loss)?;
        let g = grads.take(&wv).expect("w reaches the loss");
        w = w.sub(&g.mul_scalar(0.1)?)?;
    }
    let old = tape.leaf(w.clone());
    tape.reset();
    assert!(matches!(
        old.exp(),
        Err(heft_autograd::AutogradError::StaleVar { op: "exp" })
    ));
    assert!(old.tape().is_none());
    Ok(())
}

#[test]
fn autograd_second_order() -> TestResult {
    use heft_autograd::BackwardOptions;
    let tape = Tape::new();
    let x = tape.leaf(Tensor::from_vec(vec![1.5f64], &[1])?);
    let y = x.powf(4.0)?.sum_all()?;
    let opts = BackwardOptions {
        create_graph: true, // implies retain_graph
        ..Default::default()
    };
    let dy = tape.backward_opts(&y, None, opts)?;
    let g1 = dy.get_var(&x).expect("x reaches y").clone(); // 4 x^3, recorded
    let g2 = tape.backward(&g1.sum_all()?)?; // d/dx 4 x^3 = 12 x^2
    assert_eq!(
        g2.get(&x).expect("x reaches g1").to_vec::<f64>()?,
        vec![27.0]
    );
    Ok(())
}

#[test]
fn autograd_no_grad_and_detach() -> TestResult {
    let tape = Tape::new();
    let x = tape.leaf(Tensor::from_vec(vec![3.0f64], &[1])?);
    let y = tape.no_grad(|| x.exp())?; // a constant, nothing recorded
    assert!(!y.is_tracked());
    {
        let _off = tape.set_recording(false);
        assert!(!x.square()?.is_tracked());
    } // the guard restores the previous state
    assert!(tape.is_recording());
    // d/dx (x * detach(x)) = detach(x) = 3
    let z = x.mul(&x.detach())?.sum_all()?;
    assert_eq!(
        tape.backward(&z)?.get(&x).unwrap().to_vec::<f64>()?,
        vec![3.0]
    );
    Ok(())
}

#[test]
fn autograd_anomaly_mode() -> TestResult {
    let tape = Tape::new();
    tape.set_anomaly_detection(true);
    let x = tape.leaf(Tensor::from_vec(vec![0.0f64, 4.0], &[2])?);
    let y = x.sqrt()?.sum_all()?; // finite forward; sqrt'(0) is infinite
    let err = tape.backward(&y).err().expect("an anomaly").to_string();
    assert!(
        err.starts_with("anomaly: backward of `sqrt` (created at "),
        "{err}"
    );
    assert!(err.contains("guide_examples.rs:"), "{err}");
    assert!(
        err.ends_with("produced 0 NaN and 1 infinite values; input shapes [2]"),
        "{err}"
    );
    Ok(())
}
