//! Gradient checks for indexing, joining, padding, convolution and pooling.

use heft_autograd::gradcheck::{gradcheck, gradgradcheck, GradcheckOptions};
use heft_autograd::testing::{check_gradients, shape, strided_view, tensor};
use heft_autograd::{Result, Var};
use heft_tensor::{Conv2dParams, Tensor};
use proptest::prelude::*;

const CASES: u32 = 16;

fn wsum(y: &Var) -> Result<Var> {
    let n = y.value().numel();
    let w: Vec<f64> = (0..n).map(|i| 0.5 + (i % 7) as f64 * 0.25).collect();
    y.mul(&Var::constant(Tensor::from_vec(w, y.shape())?))?
        .sum_all()
}

fn ranked(min_rank: usize) -> impl Strategy<Value = Vec<Tensor>> {
    shape(3, 4)
        .prop_filter("rank", move |s| s.len() >= min_rank)
        .prop_flat_map(|s| strided_view(s, -2.0..2.0))
        .prop_map(|t| vec![t])
}

#[test]
fn narrow_slice_pad_split_chunk() {
    check_gradients(ranked(1), CASES, |v| {
        let x = &v[0];
        let d = x.shape()[0];
        let a = x.narrow(0, d / 2, d - d / 2)?;
        let b = x.slice(0, 0, d, 2)?;
        let pads: Vec<(usize, usize)> = (0..x.ndim()).map(|i| (i % 2, 1)).collect();
        let c = x.pad(&pads, 0.5)?;
        let mut parts = x.chunk(2, 0)?;
        parts.extend(x.split_size(2, 0)?);
        let e = parts
            .iter()
            .map(wsum)
            .try_fold(Var::constant(Tensor::scalar(0.0f64)), |acc, p| acc.add(&p?))?;
        wsum(&a)?.add(&wsum(&b)?)?.add(&wsum(&c)?)?.add(&e)
    })
    .unwrap();
}

#[test]
fn index_select_gather_scatter_add() {
    check_gradients(ranked(2), CASES, |v| {
        let x = &v[0];
        let (d0, d1) = (x.shape()[0], x.shape()[1]);
        // Repeated indices exercise accumulation.
        let idx = Tensor::from_vec(
            (0..d0 + 2).map(|i| (i * 7 % d0) as i64).collect::<Vec<_>>(),
            &[d0 + 2],
        )?;
        let a = x.index_select(0, &idx)?;
        let mut ishape = x.shape().to_vec();
        ishape[1] = d1 + 1;
        let n: usize = ishape.iter().product();
        let gidx = Tensor::from_vec(
            (0..n).map(|i| (i * 5 % d1) as i64).collect::<Vec<_>>(),
            &ishape,
        )?;
        let b = x.gather(1, &gidx)?;
        // scatter b back into a copy of x along axis 1 (index smaller than src on purpose).
        let sidx = gidx.narrow(1, 0, d1)?.contiguous();
        let c = x.mul_scalar(0.5)?.scatter_add(1, &sidx, &b)?;
        let d = x.index_add(0, &idx.narrow(0, 0, d0)?.contiguous(), &x.square()?)?;
        wsum(&a)?.add(&wsum(&b)?)?.add(&wsum(&c)?)?.add(&wsum(&d)?)
    })
    .unwrap();
}

#[test]
fn cat_and_stack() {
    let strat = (1..=3usize, 1..=3usize, 1..=3usize, 1..=3usize).prop_flat_map(|(a, b, c, k)| {
        (
            tensor(vec![a, k], -1.0..1.0),
            tensor(vec![b, k], -1.0..1.0),
            tensor(vec![c, k], -1.0..1.0),
        )
    });
    check_gradients(strat.prop_map(|(a, b, c)| vec![a, b, c]), CASES, |v| {
        let cat = Var::cat(&[&v[0], &v[1], &v[2]], 0)?;
        let st = Var::stack(&[&v[0].sum(&[0], false)?, &v[1].sum(&[0], false)?], -1)?;
        wsum(&cat.tanh()?)?.add(&wsum(&st)?)
    })
    .unwrap();
}

fn conv_case() -> impl Strategy<Value = (Vec<Tensor>, Conv2dParams, (usize, usize))> {
    (
        1..=2usize,
        1..=2usize,
        1..=3usize,
        3..=6usize,
        3..=6usize,
        1..=3usize,
        1..=3usize,
        1..=2usize,
        0..=1usize,
        1..=2usize,
    )
        .prop_flat_map(|(n, c, o, h, w, kh, kw, s, p, d)| {
            let params = Conv2dParams {
                stride: (s, 1),
                padding: (p, p),
                dilation: (d, 1),
            };
            (
                tensor(vec![n, c, h, w], -1.0..1.0),
                tensor(vec![o, c, kh, kw], -1.0..1.0),
                tensor(vec![o], -1.0..1.0),
                Just(params),
                Just((kh, kw)),
            )
        })
        .prop_filter("kernel fits", |(x, _, _, p, k)| {
            p.output_size(x.shape()[2], x.shape()[3], *k).is_some()
        })
        .prop_map(|(x, w, b, p, k)| (vec![x, w, b], p, k))
}

#[test]
fn conv2d_input_weight_and_bias() {
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases: CASES,
        failure_persistence: None,
        ..Default::default()
    });
    runner
        .run(&conv_case(), |(inputs, params, _)| {
            let r = gradcheck(
                |v| wsum(&v[0].conv2d(&v[1], Some(&v[2]), params)?),
                &inputs,
                &GradcheckOptions::default(),
            );
            prop_assert!(
                r.is_ok(),
                "{params:?} {:?} {:?}: {}",
                inputs[0].shape(),
                inputs[1].shape(),
                r.unwrap_err()
            );
            // The forward equals heft-tensor's conv2d.
            let y = Var::constant(inputs[0].clone())
                .conv2d(
                    &Var::constant(inputs[1].clone()),
                    Some(&Var::constant(inputs[2].clone())),
                    params,
                )
                .unwrap();
            let t = inputs[0]
                .conv2d(&inputs[1], Some(&inputs[2]), params)
                .unwrap();
            prop_assert!(y.value().max_abs_diff(&t).unwrap() < 1e-12);
            Ok(())
        })
        .unwrap();
}

#[test]
fn pools() {
    // A ramp makes every window's maximum unique (ties are non-differentiable).
    let strat = (1..=2usize, 1..=2usize, 2..=5usize, 2..=5usize)
        .prop_flat_map(|(n, c, h, w)| tensor(vec![n, c, h, w], -0.1..0.1));
    check_gradients(strat.prop_map(|t| vec![t]), CASES, |v| {
        let n = v[0].value().numel();
        let ramp = Var::constant(Tensor::from_vec(
            (0..n)
                .map(|i| ((i * 37) % 101) as f64 * 0.01)
                .collect::<Vec<_>>(),
            v[0].shape(),
        )?);
        let x = v[0].add(&ramp)?;
        let m = x.max_pool2d((2, 2), (1, 1), (1, 1))?;
        let a = x.avg_pool2d((2, 2), (2, 1), (1, 0))?;
        wsum(&m)?.add(&wsum(&a)?)
    })
    .unwrap();
}

#[test]
fn conv_second_order() {
    let x = Tensor::from_vec(
        (0..2 * 2 * 4 * 4)
            .map(|i| ((i * 13 % 17) as f64 - 8.0) / 8.0)
            .collect::<Vec<_>>(),
        &[2, 2, 4, 4],
    )
    .unwrap();
    let w = Tensor::from_vec(
        (0..3 * 2 * 2 * 2)
            .map(|i| ((i * 7 % 11) as f64 - 5.0) / 5.0)
            .collect::<Vec<_>>(),
        &[3, 2, 2, 2],
    )
    .unwrap();
    let p = Conv2dParams {
        stride: (1, 1),
        padding: (1, 1),
        dilation: (1, 1),
    };
    let r = gradgradcheck(
        |v| wsum(&v[0].conv2d(&v[1], None, p)?.tanh()?),
        &[x, w],
        &GradcheckOptions::default(),
    );
    assert!(r.is_ok(), "{}", r.unwrap_err());
}
