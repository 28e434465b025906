//! Every differentiable op against central finite differences in f64, on
//! random shapes (size-1 dims likely), broadcasting and strided views.

use heft_autograd::gradcheck::{gradcheck, gradgradcheck, GradcheckOptions};
use heft_autograd::testing::{
    broadcast_pair, check_gradients, check_gradients_with, matmul_shapes, shape, strided_view,
    tensor,
};
use heft_autograd::{Result, Var};
use heft_tensor::Tensor;
use proptest::prelude::*;

const CASES: u32 = 24;

fn one_input(range: std::ops::Range<f64>) -> impl Strategy<Value = Vec<Tensor>> {
    shape(3, 4)
        .prop_flat_map(move |s| strided_view(s, range.clone()))
        .prop_map(|t| vec![t])
}

fn two_broadcast(range: std::ops::Range<f64>) -> impl Strategy<Value = Vec<Tensor>> {
    broadcast_pair(3, 3)
        .prop_flat_map(move |(a, b)| (tensor(a, range.clone()), strided_view(b, range.clone())))
        .prop_map(|(a, b)| vec![a, b])
}

/// Weighted sum so every output element's gradient matters (a plain sum would hide sign errors that cancel).
fn wsum(y: &Var) -> Result<Var> {
    let n = y.value().numel();
    let w: Vec<f64> = (0..n).map(|i| 0.5 + (i % 7) as f64 * 0.25).collect();
    let w = Var::constant(Tensor::from_vec(w, y.shape())?);
    y.mul(&w)?.sum_all()
}

macro_rules! unary_prop {
    ($name:ident, $range:expr, |$x:ident| $body:expr) => {
        #[test]
        fn $name() {
            check_gradients(one_input($range), CASES, |v| {
                let $x = &v[0];
                wsum(&$body)
            })
            .unwrap();
        }
    };
}

unary_prop!(neg, -2.0..2.0, |x| x.neg()?);
unary_prop!(abs_away_from_zero, 0.1..2.0, |x| x
    .abs()?
    .add(&x.neg()?.abs()?)?);
unary_prop!(exp, -2.0..2.0, |x| x.exp()?);
unary_prop!(log, 0.2..3.0, |x| x.log()?);
unary_prop!(log1p, -0.5..2.0, |x| x.log1p()?);
unary_prop!(expm1, -2.0..2.0, |x| x.expm1()?);
unary_prop!(sqrt, 0.2..3.0, |x| x.sqrt()?);
unary_prop!(rsqrt, 0.2..3.0, |x| x.rsqrt()?);
unary_prop!(recip, 0.3..3.0, |x| x.recip()?);
unary_prop!(square, -2.0..2.0, |x| x.square()?);
unary_prop!(powf, 0.2..2.0, |x| x.powf(2.7)?);
unary_prop!(sin, -3.0..3.0, |x| x.sin()?);
unary_prop!(cos, -3.0..3.0, |x| x.cos()?);
unary_prop!(tanh, -2.0..2.0, |x| x.tanh()?);
unary_prop!(erf, -2.0..2.0, |x| x.erf()?);
unary_prop!(sigmoid, -4.0..4.0, |x| x.sigmoid()?);
// relu, leaky_relu and clamp are checked away from their kinks (finite differences straddling a kink are meaningless).
unary_prop!(relu, 0.1..2.0, |x| x.relu()?.add(&x.neg()?.relu()?)?);
unary_prop!(leaky_relu, 0.1..2.0, |x| x
    .leaky_relu(0.1)?
    .add(&x.neg()?.leaky_relu(0.1)?)?);
unary_prop!(gelu, -3.0..3.0, |x| x.gelu()?);
unary_prop!(gelu_tanh, -3.0..3.0, |x| x.gelu_tanh()?);
unary_prop!(silu, -3.0..3.0, |x| x.silu()?);
unary_prop!(softplus, -3.0..3.0, |x| x.softplus()?);
unary_prop!(clamp_inside_and_outside, 0.1..0.9, |x| x
    .clamp(0.0, 1.0)?
    .add(
    &x.mul_scalar(3.0)?.clamp(-1.0, 1.5)?
)?);
// Away from the thresholds (ties are non-differentiable points).
unary_prop!(max_min_scalar, 0.1..0.9, |x| x
    .maximum_scalar(0.5)?
    .add(&x.minimum_scalar(0.5)?)?
    .add(&x.maximum_scalar(-1.0)?)?
    .add(&x.minimum_scalar(2.0)?)?);
unary_prop!(scalar_ops, 0.5..2.0, |x| x
    .add_scalar(1.5)?
    .mul_scalar(-2.0)?
    .sub_scalar(0.3)?
    .div_scalar(0.7)?
    .rsub_scalar(1.0)?
    .rdiv_scalar(2.0)?);

macro_rules! binary_prop {
    ($name:ident, $range:expr, |$a:ident, $b:ident| $body:expr) => {
        #[test]
        fn $name() {
            check_gradients(two_broadcast($range), CASES, |v| {
                let ($a, $b) = (&v[0], &v[1]);
                wsum(&$body)
            })
            .unwrap();
        }
    };
}

binary_prop!(add_broadcast, -2.0..2.0, |a, b| a.add(b)?);
binary_prop!(sub_broadcast, -2.0..2.0, |a, b| a.sub(b)?);
binary_prop!(mul_broadcast, -2.0..2.0, |a, b| a.mul(b)?);
binary_prop!(div_broadcast, 0.5..2.0, |a, b| a.div(b)?);
binary_prop!(pow_broadcast, 0.5..2.0, |a, b| a.pow(b)?);
// Distinct values almost surely: ties have measure zero for continuous draws.
binary_prop!(maximum_broadcast, -2.0..2.0, |a, b| a.maximum(b)?);
binary_prop!(minimum_broadcast, -2.0..2.0, |a, b| a.minimum(b)?);

#[test]
fn where_and_masked_fill() {
    check_gradients(two_broadcast(-2.0..2.0), CASES, |v| {
        let mask = v[0].value().gt_scalar(0.0)?;
        let mask = mask.broadcast_to(&heft_tensor::broadcast_shapes(
            "t",
            v[0].shape(),
            v[1].shape(),
        )?)?;
        let w = Var::where_(&mask, &v[0].square()?, &v[1].exp()?)?;
        wsum(&w.masked_fill(&mask.logical_not()?, 0.5)?)
    })
    .unwrap();
}

fn axes_strategy() -> impl Strategy<Value = (Vec<Tensor>, Vec<isize>, bool)> {
    shape(3, 4)
        .prop_flat_map(|s| {
            let r = s.len();
            (
                strided_view(s, -2.0..2.0),
                proptest::collection::vec(any::<bool>(), r),
                any::<bool>(),
            )
        })
        .prop_map(|(t, pick, keep)| {
            let axes: Vec<isize> = pick
                .iter()
                .enumerate()
                .filter(|(_, p)| **p)
                .map(|(i, _)| i as isize - t.ndim() as isize)
                .collect();
            (vec![t], axes, keep)
        })
}

macro_rules! reduce_prop {
    ($name:ident, |$x:ident, $axes:ident, $keep:ident| $body:expr) => {
        #[test]
        fn $name() {
            let mut runner =
                proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
                    cases: CASES,
                    failure_persistence: None,
                    ..Default::default()
                });
            runner
                .run(&axes_strategy(), |(inputs, $axes, $keep)| {
                    let r = gradcheck(
                        |v| {
                            let $x = &v[0];
                            wsum(&$body)
                        },
                        &inputs,
                        &GradcheckOptions::default(),
                    );
                    prop_assert!(
                        r.is_ok(),
                        "{:?} axes {:?} keepdim {}: {}",
                        inputs[0].shape(),
                        $axes,
                        $keep,
                        r.unwrap_err()
                    );
                    Ok(())
                })
                .unwrap();
        }
    };
}

reduce_prop!(sum_axes, |x, axes, keep| x.sum(&axes, keep)?);
reduce_prop!(mean_axes, |x, axes, keep| x.mean(&axes, keep)?);
// max/min: the input is made tie-free (ties are non-differentiable points,
// which shrinking steers toward): add a distinct ramp to every element.
fn ramp(x: &Var) -> Result<Var> {
    let n = x.value().numel();
    let r: Vec<f64> = (0..n).map(|i| i as f64 * 0.37).collect();
    x.add(&Var::constant(Tensor::from_vec(r, x.shape())?))
}
reduce_prop!(max_axes, |x, axes, keep| ramp(x)?.max(&axes, keep)?);
reduce_prop!(min_axes, |x, axes, keep| ramp(x)?.min(&axes, keep)?);
reduce_prop!(var_axes, |x, axes, keep| x.var(&axes, 0, keep)?);
reduce_prop!(logsumexp_axes, |x, axes, keep| x.logsumexp(&axes, keep)?);
reduce_prop!(norm_l2_axes, |x, axes, keep| x.norm_l2(&axes, keep)?);
reduce_prop!(norm_l1_axes, |x, axes, keep| x
    .add_scalar(3.0)?
    .norm_l1(&axes, keep)?);

#[test]
fn std_unbiased() {
    // std is not differentiable where the variance is 0 (sqrt at 0); the ramp keeps it positive.
    check_gradients(
        one_input(-2.0..2.0).prop_filter("need 2+ elements", |v| v[0].numel() >= 2),
        CASES,
        |v| ramp(&v[0])?.std(&[], 1, false),
    )
    .unwrap();
}

#[test]
fn softmax_and_log_softmax() {
    check_gradients(
        one_input(-3.0..3.0).prop_filter("rank >= 1", |v| v[0].ndim() >= 1),
        CASES,
        |v| wsum(&v[0].softmax(-1)?)?.add(&wsum(&v[0].log_softmax(0)?)?),
    )
    .unwrap();
}

#[test]
fn matmul_plain_batched_and_transposed() {
    let strat = matmul_shapes(4).prop_flat_map(|(batch, m, k, n)| {
        let mut sa = batch.clone();
        sa.extend([m, k]);
        (tensor(sa, -1.0..1.0), tensor(vec![n, k], -1.0..1.0))
    });
    check_gradients(strat.prop_map(|(a, b)| vec![a, b]), CASES, |v| {
        wsum(&v[0].matmul(&v[1].t()?)?)
    })
    .unwrap();
    // Batched x batched with a broadcast batch dim.
    let strat2 = (1..=3usize, 1..=3usize, 1..=3usize, 1..=3usize).prop_flat_map(|(b, m, k, n)| {
        (
            tensor(vec![b, m, k], -1.0..1.0),
            tensor(vec![1, k, n], -1.0..1.0),
        )
    });
    check_gradients(strat2.prop_map(|(a, b)| vec![a, b]), CASES, |v| {
        wsum(&v[0].matmul(&v[1])?)
    })
    .unwrap();
    // Vectors.
    let strat3 = (1..=4usize, 1..=4usize).prop_flat_map(|(k, n)| {
        (
            tensor(vec![k], -1.0..1.0),
            tensor(vec![k, n], -1.0..1.0),
            tensor(vec![k], -1.0..1.0),
        )
    });
    check_gradients(strat3.prop_map(|(a, b, c)| vec![a, b, c]), CASES, |v| {
        wsum(&v[0].matmul(&v[1])?)?
            .add(&v[0].matmul(&v[2])?)?
            .add(&wsum(&v[1].t()?.matmul(&v[2])?)?)
    })
    .unwrap();
}

#[test]
fn addmm_bias_and_factors() -> Result<()> {
    // bias [n] (a Linear bias), [m, 1] or [m, n]; b as a transposed view (a Linear weight).
    let strat =
        (1..=4usize, 1..=4usize, 1..=4usize, 0..3usize).prop_flat_map(|(m, k, n, which)| {
            let bias = match which {
                0 => vec![n],
                1 => vec![m, 1],
                _ => vec![m, n],
            };
            (
                tensor(bias, -1.0..1.0),
                tensor(vec![m, k], -1.0..1.0),
                tensor(vec![n, k], -1.0..1.0),
            )
        });
    check_gradients(strat.prop_map(|(c, a, w)| vec![c, a, w]), CASES, |v| {
        wsum(&v[0].addmm(&v[1], &v[2].t()?)?)
    })
    .unwrap();
    // Hand-derived: y = c + a b with a = [[1, 2]], b = [[3], [4]], c = [0.5];
    // loss = 2 y: dc = 2, da = 2 b^T = [[6, 8]], db = 2 a^T = [[2], [4]].
    let tape = heft_autograd::Tape::new();
    let c = tape.leaf(Tensor::from_vec(vec![0.5f64], &[1])?);
    let a = tape.leaf(Tensor::from_vec(vec![1.0f64, 2.0], &[1, 2])?);
    let b = tape.leaf(Tensor::from_vec(vec![3.0f64, 4.0], &[2, 1])?);
    let y = c.addmm(&a, &b)?;
    assert_eq!(y.value().to_vec::<f64>()?, vec![11.5]);
    let g = tape.backward(&y.mul_scalar(2.0)?.sum_all()?)?;
    assert_eq!(g.get(&c).unwrap().to_vec::<f64>()?, vec![2.0]);
    assert_eq!(g.get(&a).unwrap().to_vec::<f64>()?, vec![6.0, 8.0]);
    assert_eq!(g.get(&b).unwrap().to_vec::<f64>()?, vec![2.0, 4.0]);
    Ok(())
}

#[test]
fn views() {
    check_gradients(
        one_input(-2.0..2.0).prop_filter("rank >= 2", |v| v[0].ndim() >= 2),
        CASES,
        |v| {
            let x = &v[0];
            let n = x.value().numel();
            let a = x.transpose(0, -1)?.contiguous()?.reshape(&[n])?;
            let b = x.t()?.unsqueeze(0)?.squeeze(0)?.flatten(0, -1)?;
            let perm: Vec<usize> = (0..x.ndim()).rev().collect();
            let c = x.permute(&perm)?;
            let mut big = vec![2usize];
            big.extend_from_slice(x.shape());
            let d = x.broadcast_to(&big)?;
            wsum(&a.mul(&b)?)?.add(&wsum(&c)?)?.add(&wsum(&d)?)
        },
    )
    .unwrap();
}

#[test]
fn cross_entropy_and_mse() {
    // Targets are not gradcheck inputs (they are integer class ids), so they ride along outside.
    let strat = (1..=4usize, 2..=5usize).prop_flat_map(|(n, c)| {
        (
            tensor(vec![n, c], -3.0..3.0),
            proptest::collection::vec(0..c as i64, n),
        )
    });
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases: CASES,
        failure_persistence: None,
        ..Default::default()
    });
    runner
        .run(&strat, |(logits, t)| {
            let targets = Tensor::from_vec(t.clone(), &[t.len()]).unwrap();
            let r = gradcheck(
                |v| {
                    let target = Var::constant(v[0].value().ones_like().mul_scalar(0.25)?);
                    v[0].cross_entropy_with_logits(&targets)?
                        .add(&v[0].mse(&target)?)
                },
                &[logits],
                &GradcheckOptions::default(),
            );
            prop_assert!(r.is_ok(), "{}", r.unwrap_err());
            Ok(())
        })
        .unwrap();
}

/// Hand-derived: for logits z and class t, CE = logsumexp(z) - z_t, dCE/dz = softmax(z) - onehot(t).
#[test]
fn cross_entropy_by_hand() {
    let tape = heft_autograd::Tape::new();
    let z = tape.leaf(Tensor::from_vec(vec![1.0f64, 2.0, 3.0], &[1, 3]).unwrap());
    let t = Tensor::from_vec(vec![2i64], &[1]).unwrap();
    let loss = z.cross_entropy_with_logits(&t).unwrap();
    let lse = (1f64.exp() + 2f64.exp() + 3f64.exp()).ln();
    assert!((loss.value().item::<f64>().unwrap() - (lse - 3.0)).abs() < 1e-14);
    let g = tape.backward(&loss).unwrap();
    let gz = g.get(&z).unwrap().to_vec::<f64>().unwrap();
    let p: Vec<f64> = [1.0f64, 2.0, 3.0].iter().map(|v| (v - lse).exp()).collect();
    assert!(
        (gz[0] - p[0]).abs() < 1e-14
            && (gz[1] - p[1]).abs() < 1e-14
            && (gz[2] - (p[2] - 1.0)).abs() < 1e-14
    );
    // Stable for logits of magnitude 1e4: finite loss and gradient.
    let tape = heft_autograd::Tape::new();
    let z = tape.leaf(Tensor::from_vec(vec![1e4f32, -1e4, 0.0], &[1, 3]).unwrap());
    let loss = z
        .cross_entropy_with_logits(&Tensor::from_vec(vec![1i64], &[1]).unwrap())
        .unwrap();
    assert_eq!(loss.value().item::<f32>().unwrap(), 2e4);
    let g = tape.backward(&loss).unwrap();
    assert_eq!(
        g.get(&z).unwrap().to_vec::<f32>().unwrap(),
        vec![1.0, -1.0, 0.0]
    );
}

/// Second-order checks for the ops whose VJPs get differentiated in practice.
#[test]
fn second_order() {
    let opts = GradcheckOptions::default();
    let x = Tensor::from_vec(vec![0.3f64, -0.8, 1.1, 0.5, -1.3, 0.9], &[2, 3]).unwrap();
    let w = Tensor::from_vec(vec![0.2f64, -0.4, 0.7, 1.2, -0.5, 0.1], &[3, 2]).unwrap();
    let t = Tensor::from_vec(vec![1.0f64, 0.0], &[2]).unwrap();
    type Fun = Box<dyn Fn(&[Var]) -> Result<Var>>;
    let fs: Vec<(&str, Fun)> = vec![
        (
            "elementwise",
            Box::new(|v: &[Var]| {
                wsum(
                    &v[0]
                        .tanh()?
                        .mul(&v[0].exp()?)?
                        .add(&v[0].sigmoid()?.square()?)?
                        .sub(&v[0].gelu()?)?
                        .add(&v[0].silu()?)?
                        .add(&v[0].softplus()?)?,
                )
            }),
        ),
        (
            "div_pow",
            Box::new(|v: &[Var]| {
                wsum(
                    &v[0]
                        .div(&v[0].square()?.add_scalar(1.0)?)?
                        .add(&v[0].add_scalar(2.0)?.powf(1.5)?)?,
                )
            }),
        ),
        (
            "matmul",
            Box::new(|v: &[Var]| wsum(&v[0].matmul(&v[1])?.tanh()?)),
        ),
        (
            "addmm",
            Box::new(|v: &[Var]| {
                // A bias that depends on the weight too, so mixed second
                // derivatives through the addend are exercised.
                let bias = v[1].sum(&[0], false)?.mul_scalar(0.3)?;
                wsum(&bias.addmm(&v[0], &v[1])?.tanh()?)
            }),
        ),
        (
            "reductions",
            Box::new(|v: &[Var]| {
                v[0].sin()?
                    .sum(&[1], false)?
                    .square()?
                    .sum_all()?
                    .add(&v[0].logsumexp(&[0], false)?.sum_all()?)?
                    .add(&v[0].var(&[], 1, false)?)?
                    .add(&v[0].mean(&[0], true)?.exp()?.sum_all()?)
            }),
        ),
        (
            "softmax",
            Box::new(|v: &[Var]| wsum(&v[0].softmax(1)?)?.add(&wsum(&v[0].log_softmax(0)?)?)),
        ),
        (
            "cross_entropy",
            Box::new(|v: &[Var]| {
                v[0].matmul(&v[1])?
                    .cross_entropy_with_logits(&Tensor::from_vec(vec![1i64, 0], &[2])?)
            }),
        ),
        (
            "mse",
            Box::new(|v: &[Var]| {
                v[0].matmul(&v[1])?
                    .sum(&[1], false)?
                    .mse(&Var::constant(Tensor::from_vec(vec![1.0f64, 0.0], &[2])?))
            }),
        ),
    ];
    let _ = &t;
    for (name, f) in &fs {
        let r = gradgradcheck(f, &[x.clone(), w.clone()], &opts);
        assert!(r.is_ok(), "{name}: {}", r.unwrap_err());
    }
}

/// A wrong gradient must be caught: a custom op with a deliberately wrong backward.
#[test]
fn gradcheck_catches_a_wrong_vjp() {
    struct Wrong;
    impl heft_autograd::CustomOp for Wrong {
        fn name(&self) -> &'static str {
            "wrong_square"
        }
        fn forward(&self, i: &[&Tensor]) -> Result<Tensor> {
            Ok(i[0].square()?)
        }
        fn backward(&self, i: &[Var], _o: &Var, g: &Var) -> Result<Vec<Option<Var>>> {
            // Should be 2x; 2.01x is off by 0.5%.
            Ok(vec![Some(g.mul(&i[0].mul_scalar(2.01)?)?)])
        }
    }
    let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0], &[3]).unwrap();
    let err = gradcheck(
        |v| wsum(&Var::custom(std::rc::Rc::new(Wrong), &[&v[0]])?),
        &[x],
        &GradcheckOptions::default(),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("gradients disagree") && msg.contains("worst: input 0 index [2]"),
        "{msg}"
    );
    let r = check_gradients_with(one_input(1.0..2.0), 4, &GradcheckOptions::default(), |v| {
        wsum(&Var::custom(std::rc::Rc::new(Wrong), &[&v[0]])?)
    });
    assert!(r.is_err());
}
