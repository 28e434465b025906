//! Every layer's gradients, with respect to its input and to each of its
//! parameters, against central finite differences in f64 (train and eval
//! modes), and every loss's gradients and values.
//!
//! Parameters enter the check through [`Ctx::bind`]: the store's values are
//! passed to `gradcheck` as extra inputs, and inside the checked function the
//! checker's vars are bound in place of the store's leaves, so the
//! gradients the tape computes for the weights are compared element by
//! element with finite differences of the layer's output.

use heft_autograd::{gradcheck, AutogradError, GradcheckError, GradcheckOptions, Tape, Var};
use heft_nn::layers::{
    Activation, AvgPool2d, BatchNorm, Conv2d, Dropout, Embedding, Flatten, LayerNorm, Linear,
    MaxPool2d, MultiHeadSelfAttention, RMSNorm,
};
use heft_nn::loss::{self, CrossEntropyOptions};
use heft_nn::{Ctx, Mode, Module, NnError, ParamId, ParamStore, Sequential};
use heft_tensor::{Conv2dParams, DType, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

fn randn(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn(shape, 0.0, 1.0, DType::F64, &mut rng(seed)).unwrap()
}

/// Random normal values pushed at least `gap` away from 0 (the kink of relu,
/// leaky relu, abs).
fn away_from_zero(shape: &[usize], seed: u64, gap: f64) -> Tensor {
    let v: Vec<f64> = randn(shape, seed)
        .to_vec_f64()
        .into_iter()
        .map(|x| x + gap * x.signum())
        .collect();
    Tensor::from_vec(v, shape).unwrap()
}

fn ag(e: NnError) -> AutogradError {
    match e {
        NnError::Autograd(a) => a,
        NnError::Tensor(t) => t.into(),
        other => panic!("layer failed: {other}"),
    }
}

/// Stricter than the default (atol 1e-5, rtol 1e-3): in f64 with eps = 1e-6
/// the central difference is accurate to ~1e-9 on these O(1) functions.
fn opts() -> GradcheckOptions {
    GradcheckOptions {
        atol: 1e-6,
        rtol: 1e-5,
        ..GradcheckOptions::default()
    }
}

/// The forward of `m` on `v[0]` with the store's parameters bound to `v[1..]`.
fn forward_bound(
    store: &ParamStore,
    ids: &[ParamId],
    m: &dyn Module,
    mode: Mode,
    v: &[Var],
) -> heft_autograd::Result<Var> {
    let tape = Tape::new();
    // The same dropout seed on every evaluation, so the function is deterministic.
    let ctx = Ctx::with_seed(store, &tape, mode, 42);
    for (k, &id) in ids.iter().enumerate() {
        ctx.bind(id, v[k + 1].clone()).map_err(ag)?;
    }
    m.forward(&ctx, &v[0]).map_err(ag)
}

/// Gradcheck `m` at input `x` with respect to `x` and every parameter of
/// `store` (converted to f64). Also asserts that each of those gradients is
/// non-zero along a random output direction, so the check is not vacuous.
fn check(store: &mut ParamStore, m: &dyn Module, x: &Tensor, mode: Mode) {
    check_zero(store, m, x, mode, &[])
}

/// [`check`], where the parameters named in `zero` must have a zero
/// gradient instead (a structural zero, e.g. an attention key bias).
fn check_zero(store: &mut ParamStore, m: &dyn Module, x: &Tensor, mode: Mode, zero: &[&str]) {
    store.to_dtype(DType::F64);
    let store = &*store;
    let ids: Vec<ParamId> = store.ids().collect();
    let mut inputs = vec![x.to_dtype(DType::F64)];
    inputs.extend(ids.iter().map(|&id| store.value(id).clone()));
    let f = |v: &[Var]| forward_bound(store, &ids, m, mode, v);
    let report = gradcheck(f, &inputs, &opts()).unwrap_or_else(|e| panic!("{mode:?}: {e}"));
    let elems: usize = inputs.iter().map(|t| t.numel()).sum();
    assert!(report.checked >= elems, "{report}");

    let tape = Tape::new();
    let leaves: Vec<Var> = inputs.iter().map(|t| tape.leaf(t.clone())).collect();
    let y = f(&leaves).unwrap();
    let seed = randn(y.shape(), 99);
    let g = tape.backward_with(&y, &seed).unwrap();
    for (k, l) in leaves.iter().enumerate() {
        let n = g
            .get_or_zeros(l)
            .to_vec_f64()
            .iter()
            .map(|a| a * a)
            .sum::<f64>();
        let what = if k == 0 {
            "input".to_string()
        } else {
            store.name(ids[k - 1]).to_string()
        };
        if zero.contains(&what.as_str()) {
            assert!(
                n < 1e-24,
                "{mode:?}: the gradient of {what} should be zero, |g|^2 = {n}"
            );
        } else {
            assert!(n > 1e-12, "{mode:?}: the gradient of {what} is zero");
        }
    }
}

fn both_modes(build: impl Fn(&mut ParamStore) -> Box<dyn Module>, x: &Tensor) {
    for mode in [Mode::Train, Mode::Eval] {
        let mut store = ParamStore::new();
        let m = build(&mut store);
        check(&mut store, m.as_ref(), x, mode);
    }
}

#[test]
fn the_harness_catches_a_missing_parameter_gradient() {
    // A "layer" whose weight is cut from the graph: its analytic gradient is
    // zero while finite differences see the weight, so the check must fail.
    let mut store = ParamStore::new();
    let lin = Linear::new(&mut store, "fc", 3, 2, &mut rng(1)).unwrap();
    store.to_dtype(DType::F64);
    let w = lin.weight;
    let bad = move |ctx: &Ctx<'_>, x: &Var| -> heft_nn::Result<Var> {
        Ok(x.matmul(&ctx.param(w).detach().t()?)?)
    };
    let ids: Vec<ParamId> = store.ids().collect();
    let inputs = vec![
        randn(&[2, 3], 2),
        store.value(w).clone(),
        store.value(ids[1]).clone(),
    ];
    let r = gradcheck(
        |v: &[Var]| forward_bound(&store, &ids, &bad, Mode::Train, v),
        &inputs,
        &opts(),
    );
    match r {
        Err(GradcheckError::Mismatch(rep)) => {
            assert_eq!(rep.worst.unwrap().input, 1, "the weight is the culprit")
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
}

#[test]
fn bind_rejects_a_var_of_the_wrong_shape_or_dtype() {
    let mut store = ParamStore::new();
    let lin = Linear::new(&mut store, "fc", 3, 2, &mut rng(1)).unwrap();
    let tape = Tape::new();
    let ctx = Ctx::new(&store, &tape, Mode::Train);
    let wrong_shape = tape.leaf(Tensor::zeros(&[3, 2], DType::F32));
    assert!(matches!(
        ctx.bind(lin.weight, wrong_shape),
        Err(NnError::Mismatch(_))
    ));
    let wrong_dtype = tape.leaf(Tensor::zeros(&[2, 3], DType::F64));
    assert!(matches!(
        ctx.bind(lin.weight, wrong_dtype),
        Err(NnError::Mismatch(_))
    ));
}

#[test]
fn linear_with_and_without_bias() {
    let x = randn(&[3, 4], 10);
    both_modes(
        |s| Box::new(Linear::new(s, "fc", 4, 5, &mut rng(11)).unwrap()),
        &x,
    );
    both_modes(
        |s| {
            Box::new(
                Linear::with_init(
                    s,
                    "fc",
                    4,
                    5,
                    false,
                    heft_nn::init::Init::XavierNormal(1.0),
                    heft_nn::init::Init::Zeros,
                    &mut rng(12),
                )
                .unwrap(),
            )
        },
        &x,
    );
    // A batch of sequences: [b, t, in] -> [b, t, out].
    both_modes(
        |s| Box::new(Linear::new(s, "fc", 4, 2, &mut rng(13)).unwrap()),
        &randn(&[2, 3, 4], 14),
    );
}

#[test]
fn every_activation_away_from_kinks() {
    let x = away_from_zero(&[3, 5], 20, 0.05);
    let acts = [
        Activation::Relu(None),
        Activation::Relu(Some("act".into())),
        Activation::LeakyRelu(0.1),
        Activation::Gelu,
        Activation::GeluTanh,
        Activation::Silu,
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::Softmax(-1),
        Activation::Softmax(0),
    ];
    for a in acts {
        both_modes(|_| Box::new(a.clone()), &x);
    }
}

#[test]
fn flatten() {
    let x = randn(&[2, 3, 2, 2], 30);
    both_modes(|_| Box::new(Flatten), &x);
    // Flatten then a linear layer: the gradient reaches the 4-D input.
    both_modes(
        |s| {
            Box::new(
                Sequential::new()
                    .add(Flatten)
                    .add(Linear::new(s, "fc", 12, 3, &mut rng(31)).unwrap()),
            )
        },
        &x,
    );
}

/// Replace every parameter value of `store` with random normals (so scales
/// and shifts are not the trivial 1 and 0).
fn randomise(store: &mut ParamStore, seed: u64) {
    let ids: Vec<ParamId> = store.ids().collect();
    for (k, id) in ids.into_iter().enumerate() {
        let v = store.value(id);
        let r = Tensor::randn(v.shape(), 0.0, 1.0, v.dtype(), &mut rng(seed + k as u64)).unwrap();
        store.set_value(id, r).unwrap();
    }
}

#[test]
fn layer_norm_and_rms_norm() {
    let x = randn(&[3, 5], 40);
    both_modes(
        |s| {
            let m = LayerNorm::new(s, "ln", 5, 1e-5).unwrap();
            randomise(s, 41);
            Box::new(m)
        },
        &x,
    );
    both_modes(
        |s| {
            let m = RMSNorm::new(s, "rms", 5, 1e-6).unwrap();
            randomise(s, 42);
            Box::new(m)
        },
        &randn(&[2, 2, 5], 43),
    );
}

fn batch_norm(s: &mut ParamStore, c: usize, seed: u64) -> Box<dyn Module> {
    let bn = BatchNorm::new(s, "bn", c).unwrap();
    randomise(s, seed);
    // Non-trivial running statistics for eval mode.
    let mean = Tensor::randn(&[c], 0.0, 1.0, DType::F32, &mut rng(seed + 10)).unwrap();
    let var = Tensor::rand_uniform(&[c], 0.5, 2.0, DType::F32, &mut rng(seed + 11)).unwrap();
    s.set_named("bn.running_mean", mean).unwrap();
    s.set_named("bn.running_var", var).unwrap();
    Box::new(bn)
}

#[test]
fn batch_norm_1d_2d_train_and_eval() {
    // BatchNorm1d on [n, c] and [n, c, l], BatchNorm2d on [n, c, h, w].
    both_modes(|s| batch_norm(s, 3, 50), &randn(&[4, 3], 51));
    both_modes(|s| batch_norm(s, 2, 52), &randn(&[3, 2, 4], 53));
    both_modes(|s| batch_norm(s, 3, 54), &randn(&[2, 3, 2, 2], 55));
}

#[test]
fn embedding_weight_gradient() {
    let mut store = ParamStore::new();
    let emb = Embedding::new(&mut store, "emb", 5, 3, &mut rng(60)).unwrap();
    store.to_dtype(DType::F64);
    // Repeated ids: their rows' gradients must add up.
    let ids = Tensor::from_vec(vec![2i64, 0, 2, 4, 2, 1], &[2, 3]).unwrap();
    let w0 = store.value(emb.weight).clone();
    for mode in [Mode::Train, Mode::Eval] {
        let f = |v: &[Var]| -> heft_autograd::Result<Var> {
            let tape = Tape::new();
            let ctx = Ctx::new(&store, &tape, mode);
            ctx.bind(emb.weight, v[0].clone()).map_err(ag)?;
            emb.forward(&ctx, &ids).map_err(ag)
        };
        gradcheck(f, std::slice::from_ref(&w0), &opts()).unwrap_or_else(|e| panic!("{e}"));
        // Row 3 is never looked up: its gradient is exactly zero; row 2 (three
        // uses) gets the sum of three output-gradient rows.
        let tape = Tape::new();
        let w = tape.leaf(w0.clone());
        let y = f(std::slice::from_ref(&w)).unwrap();
        assert_eq!(y.shape(), &[2, 3, 3]);
        let seed = randn(&[2, 3, 3], 61);
        let g = tape
            .backward_with(&y, &seed)
            .unwrap()
            .get_or_zeros(&w)
            .to_vec_f64();
        let s = seed.to_vec_f64();
        assert_eq!(&g[9..12], &[0.0; 3]);
        for j in 0..3 {
            // id 2 sits at flat positions 0, 2 and 4.
            let want = s[j] + s[2 * 3 + j] + s[4 * 3 + j];
            assert!((g[2 * 3 + j] - want).abs() < 1e-12);
        }
    }
}

#[test]
fn conv2d_with_stride_padding_dilation() {
    let params = Conv2dParams {
        stride: (2, 1),
        padding: (1, 2),
        dilation: (1, 2),
    };
    let x = randn(&[2, 2, 5, 6], 70);
    both_modes(
        |s| Box::new(Conv2d::new(s, "conv", 2, 3, (3, 2), params, &mut rng(71)).unwrap()),
        &x,
    );
    // Output size: h = (5 + 2 - 3) / 2 + 1 = 3, w = (6 + 4 - 2 * 1 - 1) / 1 + 1 = 8.
    let mut store = ParamStore::new();
    let conv = Conv2d::new(&mut store, "conv", 2, 3, (3, 2), params, &mut rng(71)).unwrap();
    let tape = Tape::new();
    let ctx = Ctx::new(&store, &tape, Mode::Eval);
    let y = conv
        .forward(&ctx, &ctx.input(x.to_dtype(DType::F32)))
        .unwrap();
    assert_eq!(y.shape(), &[2, 3, 3, 8]);
}

/// A tie-free input: a shuffled ramp with steps of 0.05, far above the
/// finite-difference step, so no perturbation changes which element wins.
fn tie_free(shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut v: Vec<f64> = (0..n).map(|i| i as f64 * 0.05 - 1.0).collect();
    use rand::seq::SliceRandom;
    v.shuffle(&mut rng(seed));
    Tensor::from_vec(v, shape).unwrap()
}

#[test]
fn max_pool2d_tie_free() {
    let x = tie_free(&[2, 2, 5, 5], 80);
    // Non-overlapping windows, overlapping windows (an element can win
    // several), and -inf padding.
    for (k, s, p) in [
        ((2, 2), (2, 2), (0, 0)),
        ((3, 3), (1, 1), (0, 0)),
        ((3, 2), (2, 2), (1, 1)),
    ] {
        both_modes(
            |_| {
                Box::new(MaxPool2d {
                    kernel: k,
                    stride: s,
                    padding: p,
                })
            },
            &x,
        );
    }
}

#[test]
fn avg_pool2d() {
    let x = randn(&[2, 2, 5, 5], 90);
    for (k, s, p) in [((2, 2), (2, 2), (0, 0)), ((3, 3), (2, 2), (1, 1))] {
        both_modes(
            |_| {
                Box::new(AvgPool2d {
                    kernel: k,
                    stride: s,
                    padding: p,
                })
            },
            &x,
        );
    }
}

#[test]
fn multi_head_self_attention_causal_and_not() {
    let x = randn(&[2, 3, 4], 100);
    for causal in [false, true] {
        for mode in [Mode::Train, Mode::Eval] {
            let mut s = ParamStore::new();
            let m =
                MultiHeadSelfAttention::new(&mut s, "att", 4, 2, causal, &mut rng(101)).unwrap();
            // The key bias adds q . b_k to every score of a query's row, and
            // softmax is invariant to that: its gradient is exactly zero.
            check_zero(&mut s, &m, &x, mode, &["att.k.bias"]);
        }
    }
}

#[test]
fn dropout_train_with_a_fixed_seed_and_eval_identity() {
    let x = randn(&[4, 6], 110);
    let d = Dropout::new(0.4).unwrap();
    let mut store = ParamStore::new();
    check(&mut store, &d, &x, Mode::Train);
    check(&mut store, &d, &x, Mode::Eval);

    // Train mode really drops (the check above was not of the identity) and
    // scales the kept elements by 1 / (1 - p); the gradient is the mask.
    let tape = Tape::new();
    let ctx = Ctx::with_seed(&store, &tape, Mode::Train, 42);
    let xv = tape.leaf(x.clone());
    let y = d.forward(&ctx, &xv).unwrap();
    let g = tape.backward(&y.sum_all().unwrap()).unwrap();
    let (xs, ys, gs) = (
        x.to_vec_f64(),
        y.value().to_vec_f64(),
        g.get(&xv).unwrap().to_vec_f64(),
    );
    let mut dropped = 0;
    for i in 0..xs.len() {
        if ys[i] == 0.0 {
            dropped += 1;
            assert_eq!(gs[i], 0.0);
        } else {
            assert!((ys[i] - xs[i] / 0.6).abs() < 1e-12);
            assert!((gs[i] - 1.0 / 0.6).abs() < 1e-12);
        }
    }
    assert!(
        dropped > 0 && dropped < xs.len(),
        "{dropped} of {} dropped",
        xs.len()
    );

    // Eval mode is the identity, exactly.
    let ctx = Ctx::new(&store, &tape, Mode::Eval);
    let y = d.forward(&ctx, &ctx.input(x.clone())).unwrap();
    assert!(y.value().equal(&x));
}

#[test]
fn sequential_mlp_with_every_kind_of_layer() {
    let x = randn(&[3, 4], 120);
    both_modes(
        |s| {
            let mut r = rng(121);
            let m = Sequential::new()
                .add(Linear::new(s, "fc1", 4, 6, &mut r).unwrap())
                .add(LayerNorm::new(s, "ln", 6, 1e-5).unwrap())
                .add(Activation::Gelu)
                .add(Dropout::new(0.25).unwrap())
                .add(Linear::new(s, "fc2", 6, 2, &mut r).unwrap())
                .add(Activation::Tanh);
            Box::new(m)
        },
        &x,
    );
}

// ---------------------------------------------------------------- losses

fn check_fn(f: impl Fn(&[Var]) -> heft_autograd::Result<Var>, inputs: &[Tensor]) {
    gradcheck(f, inputs, &opts()).unwrap_or_else(|e| panic!("{e}"));
}

fn scalar(v: &Var) -> f64 {
    v.value().to_scalar_f64().unwrap()
}

fn c(t: &Tensor) -> Var {
    Var::constant(t.clone())
}

fn a(e: NnError) -> AutogradError {
    ag(e)
}

#[test]
fn regression_losses_gradients_and_values() {
    let p = randn(&[3, 4], 130);
    // Targets at least 0.05 from the predictions (the kink of |d|), and with
    // |d| away from the huber threshold 0.5.
    let d: Vec<f64> = away_from_zero(&[3, 4], 131, 0.05)
        .to_vec_f64()
        .into_iter()
        .map(|v| {
            if (v.abs() - 0.5).abs() < 0.05 {
                v * 1.3
            } else {
                v
            }
        })
        .collect();
    let t: Vec<f64> = p.to_vec_f64().iter().zip(&d).map(|(a, b)| a - b).collect();
    let t = Tensor::from_vec(t, &[3, 4]).unwrap();
    check_fn(
        |v| loss::mse(&v[0], &v[1]).map_err(a),
        &[p.clone(), t.clone()],
    );
    check_fn(
        |v| loss::l1(&v[0], &v[1]).map_err(a),
        &[p.clone(), t.clone()],
    );
    check_fn(
        |v| loss::huber(&v[0], &v[1], 0.5).map_err(a),
        &[p.clone(), t.clone()],
    );
    check_fn(
        |v| loss::huber(&v[0], &v[1], 1.0).map_err(a),
        &[p.clone(), t.clone()],
    );

    let n = d.len() as f64;
    let mse: f64 = d.iter().map(|x| x * x).sum::<f64>() / n;
    let l1: f64 = d.iter().map(|x| x.abs()).sum::<f64>() / n;
    let hub = |delta: f64| -> f64 {
        d.iter()
            .map(|x| {
                if x.abs() <= delta {
                    0.5 * x * x
                } else {
                    delta * (x.abs() - 0.5 * delta)
                }
            })
            .sum::<f64>()
            / n
    };
    let (pv, tv) = (c(&p), c(&t));
    assert!((scalar(&loss::mse(&pv, &tv).unwrap()) - mse).abs() < 1e-12);
    assert!((scalar(&loss::l1(&pv, &tv).unwrap()) - l1).abs() < 1e-12);
    assert!((scalar(&loss::huber(&pv, &tv, 0.5).unwrap()) - hub(0.5)).abs() < 1e-12);
    assert!((scalar(&loss::huber(&pv, &tv, 1.0).unwrap()) - hub(1.0)).abs() < 1e-12);
    // Both branches of the huber loss were exercised.
    assert!(d.iter().any(|x| x.abs() < 0.5) && d.iter().any(|x| x.abs() > 1.0));
    assert!(loss::huber(&pv, &tv, 0.0).is_err());
}

/// Log-softmax of each row, by hand.
fn naive_log_softmax(z: &[f64], c: usize) -> Vec<f64> {
    let mut out = vec![0.0; z.len()];
    for (row, o) in z.chunks(c).zip(out.chunks_mut(c)) {
        let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        for (oi, v) in o.iter_mut().zip(row) {
            *oi = v - lse;
        }
    }
    out
}

#[test]
fn cross_entropy_and_nll_gradients_and_values() {
    let (n, k) = (4, 3);
    let z = randn(&[n, k], 140);
    let t = Tensor::from_vec(vec![0i64, 2, 1, 2], &[n]).unwrap();
    check_fn(
        |v| loss::cross_entropy(&v[0], &t).map_err(a),
        std::slice::from_ref(&z),
    );
    let lsm = naive_log_softmax(&z.to_vec_f64(), k);
    let tv = [0usize, 2, 1, 2];
    let want: f64 = -(0..n).map(|i| lsm[i * k + tv[i]]).sum::<f64>() / n as f64;
    assert!((scalar(&loss::cross_entropy(&c(&z), &t).unwrap()) - want).abs() < 1e-12);

    // nll on log-probabilities gives the same number, and its gradient is
    // -onehot / n with respect to the log-probabilities.
    let lp = Tensor::from_vec(lsm.clone(), &[n, k]).unwrap();
    check_fn(
        |v| loss::nll(&v[0], &t).map_err(a),
        std::slice::from_ref(&lp),
    );
    assert!((scalar(&loss::nll(&c(&lp), &t).unwrap()) - want).abs() < 1e-12);
    // nll composed with log_softmax has the cross-entropy's gradient.
    check_fn(
        |v| loss::nll(&v[0].log_softmax(1)?, &t).map_err(a),
        std::slice::from_ref(&z),
    );
    assert!(loss::nll(
        &c(&lp),
        &Tensor::from_vec(vec![0i64, 3, 0, 0], &[n]).unwrap()
    )
    .is_err());
}

#[test]
fn cross_entropy_with_smoothing_and_class_weights_against_naive_f64() {
    let (n, k) = (5, 4);
    let z = randn(&[n, k], 150);
    let tv = [3usize, 0, 1, 3, 2];
    let t = Tensor::from_vec(tv.iter().map(|&x| x as i64).collect::<Vec<_>>(), &[n]).unwrap();
    let w = [0.5f64, 2.0, 1.0, 3.0];
    let lsm = naive_log_softmax(&z.to_vec_f64(), k);
    // PyTorch's semantics: per row (1 - eps) w_t (-log p_t) + eps / C sum_c w_c (-log p_c),
    // the sum divided by sum_i w_{t_i}.
    let naive = |eps: f64, w: &[f64]| -> f64 {
        let mut num = 0.0;
        let mut den = 0.0;
        for i in 0..n {
            let row = &lsm[i * k..(i + 1) * k];
            num += (1.0 - eps) * w[tv[i]] * -row[tv[i]];
            num += eps / k as f64 * (0..k).map(|c| w[c] * -row[c]).sum::<f64>();
            den += w[tv[i]];
        }
        num / den
    };
    let ones = [1.0; 4];
    for (eps, weights) in [(0.1, None), (0.0, Some(w)), (0.2, Some(w)), (0.0, None)] {
        let o = CrossEntropyOptions {
            label_smoothing: eps,
            class_weights: weights.map(|w| Tensor::from_vec(w.to_vec(), &[k]).unwrap()),
        };
        let got = scalar(&loss::cross_entropy_with(&c(&z), &t, &o).unwrap());
        let want = naive(eps, weights.as_ref().map(|w| &w[..]).unwrap_or(&ones));
        assert!(
            (got - want).abs() < 1e-12,
            "eps {eps} weights {weights:?}: {got} vs {want}"
        );
        check_fn(
            |v| loss::cross_entropy_with(&v[0], &t, &o).map_err(a),
            std::slice::from_ref(&z),
        );
    }
    let bad = CrossEntropyOptions {
        label_smoothing: 1.0,
        class_weights: None,
    };
    assert!(loss::cross_entropy_with(&c(&z), &t, &bad).is_err());
}

#[test]
fn bce_with_logits_gradients_and_values() {
    let z = randn(&[3, 4], 160);
    let y = Tensor::rand_uniform(&[3, 4], 0.0, 1.0, DType::F64, &mut rng(161)).unwrap();
    check_fn(
        |v| loss::bce_with_logits(&v[0], &v[1]).map_err(a),
        &[z.clone(), y.clone()],
    );
    // -[y log s(z) + (1 - y) log(1 - s(z))], averaged.
    let want: f64 = z
        .to_vec_f64()
        .iter()
        .zip(y.to_vec_f64())
        .map(|(z, y)| {
            let s = 1.0 / (1.0 + (-z).exp());
            -(y * s.ln() + (1.0 - y) * (1.0 - s).ln())
        })
        .sum::<f64>()
        / 12.0;
    let got = scalar(&loss::bce_with_logits(&c(&z), &c(&y)).unwrap());
    assert!((got - want).abs() < 1e-12, "{got} vs {want}");
}

#[test]
fn losses_are_stable_for_logits_of_magnitude_1e4() {
    let z = Tensor::from_vec(vec![1e4f64, -1e4, 0.0, -1e4, 1e4, 5e3], &[2, 3]).unwrap();
    let t = Tensor::from_vec(vec![1i64, 1], &[2]).unwrap();
    let finite = |g: &Tensor| g.to_vec_f64().iter().all(|v| v.is_finite());
    for dtype in [DType::F64, DType::F32] {
        let zt = z.to_dtype(dtype);
        // Row 0: logsumexp = 1e4, target logit -1e4: loss 2e4. Row 1: loss ~0.
        let tape = Tape::new();
        let zv = tape.leaf(zt.clone());
        let l = loss::cross_entropy(&zv, &t).unwrap();
        assert!(
            (scalar(&l) - 1e4).abs() < 1e-6 * 1e4,
            "{dtype}: {}",
            scalar(&l)
        );
        let g = tape.backward(&l).unwrap();
        let gz = g.get(&zv).unwrap();
        assert!(finite(gz));
        // softmax - onehot, over n = 2: row 0 is [1, -1, 0] / 2.
        let gv = gz.to_vec_f64();
        assert!((gv[0] - 0.5).abs() < 1e-6 && (gv[1] + 0.5).abs() < 1e-6);

        let tape = Tape::new();
        let zv = tape.leaf(zt.clone());
        let o = CrossEntropyOptions {
            label_smoothing: 0.1,
            class_weights: Some(
                Tensor::from_vec(vec![1.0, 2.0, 0.5], &[3])
                    .unwrap()
                    .to_dtype(dtype),
            ),
        };
        let l = loss::cross_entropy_with(&zv, &t, &o).unwrap();
        assert!(scalar(&l).is_finite());
        assert!(finite(tape.backward(&l).unwrap().get(&zv).unwrap()));

        // bce: softplus(1e4) - 0 = 1e4 and softplus(-1e4) + 1e4 = 1e4.
        let tape = Tape::new();
        let zb = tape.leaf(
            Tensor::from_vec(vec![1e4f64, -1e4], &[2])
                .unwrap()
                .to_dtype(dtype),
        );
        let yb = Var::constant(
            Tensor::from_vec(vec![0.0f64, 1.0], &[2])
                .unwrap()
                .to_dtype(dtype),
        );
        let l = loss::bce_with_logits(&zb, &yb).unwrap();
        assert!(
            (scalar(&l) - 1e4).abs() < 1e-6 * 1e4,
            "{dtype}: {}",
            scalar(&l)
        );
        let g = tape.backward(&l).unwrap().get(&zb).unwrap().to_vec_f64();
        // (sigmoid(z) - y) / 2 = [0.5, -0.5].
        assert!(
            (g[0] - 0.5).abs() < 1e-6 && (g[1] + 0.5).abs() < 1e-6,
            "{g:?}"
        );
    }
}
