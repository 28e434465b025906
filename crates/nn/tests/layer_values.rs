//! Layer outputs against numbers worked out by hand or from the documented
//! formulas, and parameter counts, summaries and health reports.

use heft_autograd::{Tape, Var};
use heft_nn::health;
use heft_nn::layers::{
    causal_mask, Activation, BatchNorm, Dropout, Embedding, LayerNorm, Linear,
    MultiHeadSelfAttention, RMSNorm,
};
use heft_nn::{Ctx, Mode, Module, ParamGrads, ParamKind, ParamStore};
use heft_tensor::{DType, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

fn t64(v: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape).unwrap()
}

fn assert_close(got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol,
            "element {i}: got {g}, want {w} (tol {tol})\n{got:?}"
        );
    }
}

fn run(store: &ParamStore, m: &dyn Module, x: &Tensor, mode: Mode) -> Vec<f64> {
    let tape = Tape::new();
    let ctx = Ctx::new(store, &tape, mode);
    m.forward(&ctx, &ctx.input(x.clone()))
        .unwrap()
        .value()
        .to_vec_f64()
}

#[test]
fn layer_norm_by_hand() {
    let mut store = ParamStore::new();
    // eps = 0 so the numbers below are exact.
    let ln = LayerNorm::new(&mut store, "ln", 4, 0.0).unwrap();
    store.to_dtype(DType::F64);
    store
        .set_value(ln.weight, t64(&[1.0, 2.0, 0.5, -1.0], &[4]))
        .unwrap();
    store
        .set_value(ln.bias, t64(&[0.0, 1.0, 0.0, 0.5], &[4]))
        .unwrap();
    // Row 0: mean 2.5, biased variance 1.25, so x_hat = [-3, -1, 1, 3] / sqrt(5).
    // Row 1: mean 0, variance 4.5, so x_hat = [0, 0, sqrt 2, -sqrt 2].
    let x = t64(&[1.0, 2.0, 3.0, 4.0, 0.0, 0.0, 3.0, -3.0], &[2, 4]);
    let y = run(&store, &ln, &x, Mode::Train);
    // y = x_hat * [1, 2, 0.5, -1] + [0, 1, 0, 0.5].
    let want = [
        -1.341_640_786_5,
        0.105_572_809_0,
        0.223_606_797_7,
        -0.841_640_786_5,
        0.0,
        1.0,
        std::f64::consts::FRAC_1_SQRT_2, // sqrt(2) * 0.5
        1.914_213_562_4,
    ];
    assert_close(&y, &want, 1e-9);
    // Eval mode is the same function.
    assert_eq!(run(&store, &ln, &x, Mode::Eval), y);
}

#[test]
fn rms_norm_by_hand() {
    let mut store = ParamStore::new();
    let rms = RMSNorm::new(&mut store, "rms", 2, 0.0).unwrap();
    store.to_dtype(DType::F64);
    store
        .set_value(rms.weight, t64(&[2.0, -1.0], &[2]))
        .unwrap();
    // [3, 4]: mean square 12.5, rms 3.5355..., x / rms = [0.8485..., 1.1313...].
    // [1, -1]: rms 1.
    let x = t64(&[3.0, 4.0, 1.0, -1.0], &[2, 2]);
    let y = run(&store, &rms, &x, Mode::Train);
    assert_close(&y, &[1.697_056_274_8, -1.131_370_849_9, 2.0, 1.0], 1e-9);
}

#[test]
fn batch_norm_two_train_steps_then_eval() {
    let mut store = ParamStore::new();
    let bn = BatchNorm::new(&mut store, "bn", 2).unwrap();
    assert_eq!((bn.momentum, bn.eps), (0.1, 1e-5));
    let rm = store.buffer_id("bn.running_mean").unwrap();
    let rv = store.buffer_id("bn.running_var").unwrap();
    assert_eq!(store.buffer(rm).to_vec_f64(), vec![0.0, 0.0]);
    assert_eq!(store.buffer(rv).to_vec_f64(), vec![1.0, 1.0]);

    // Step 1. Channel 0: mean 2.5, biased var 1.25, unbiased 5/3.
    //         Channel 1: mean 25, biased var 125, unbiased 500/3.
    let x1 = Tensor::from_vec(vec![1.0f32, 10., 2., 20., 3., 30., 4., 40.], &[4, 2]).unwrap();
    let y1 = run(&store, &bn, &x1, Mode::Train);
    let s0 = (1.25f64 + 1e-5).sqrt();
    let s1 = (125f64 + 1e-5).sqrt();
    let want: Vec<f64> = [-1.5, -0.5, 0.5, 1.5]
        .iter()
        .flat_map(|d| [d / s0, 10.0 * d / s1])
        .collect();
    assert_close(&y1, &want, 1e-6);
    // running = 0.9 running + 0.1 batch: mean [0.25, 2.5], var [0.9 + 1/6, 0.9 + 50/3].
    assert_close(&store.buffer(rm).to_vec_f64(), &[0.25, 2.5], 1e-6);
    assert_close(
        &store.buffer(rv).to_vec_f64(),
        &[1.066_666_667, 17.566_666_667],
        1e-5,
    );

    // Step 2. Channel 0: [0, 2, 4, 6]: mean 3, unbiased var 20/3.
    //         Channel 1: [-10, 0, 10, 0]: mean 0, unbiased var 200/3.
    let x2 = Tensor::from_vec(vec![0.0f32, -10., 2., 0., 4., 10., 6., 0.], &[4, 2]).unwrap();
    run(&store, &bn, &x2, Mode::Train);
    // mean: 0.9 [0.25, 2.5] + 0.1 [3, 0] = [0.525, 2.25]
    // var:  0.9 [1.0667, 17.5667] + 0.1 [6.6667, 66.6667] = [1.626667, 22.476667]
    assert_close(&store.buffer(rm).to_vec_f64(), &[0.525, 2.25], 1e-6);
    assert_close(
        &store.buffer(rv).to_vec_f64(),
        &[1.626_666_667, 22.476_666_667],
        1e-5,
    );

    // Eval normalises with the running statistics (and leaves them alone).
    let x = Tensor::from_vec(vec![1.0f32, 5.0], &[1, 2]).unwrap();
    let y = run(&store, &bn, &x, Mode::Eval);
    let want = [
        (1.0 - 0.525) / (1.626_666_667f64 + 1e-5).sqrt(),
        (5.0 - 2.25) / (22.476_666_667f64 + 1e-5).sqrt(),
    ];
    assert_close(&y, &want, 1e-6);
    assert_close(&store.buffer(rm).to_vec_f64(), &[0.525, 2.25], 1e-6);
}

#[test]
fn batch_norm_2d_counts_every_pixel_for_the_unbiased_variance() {
    let mut store = ParamStore::new();
    let bn = BatchNorm::new(&mut store, "bn", 1).unwrap();
    // [2, 1, 2, 2] holding 1..=8: mean 4.5, sum of squared deviations 42,
    // biased var 42/8, unbiased 42/7 = 6.
    let x = Tensor::arange(1.0, 9.0, 1.0, DType::F32)
        .unwrap()
        .reshape(&[2, 1, 2, 2])
        .unwrap();
    let y = run(&store, &bn, &x, Mode::Train);
    let s = (42.0f64 / 8.0 + 1e-5).sqrt();
    let want: Vec<f64> = (1..=8).map(|i| (i as f64 - 4.5) / s).collect();
    assert_close(&y, &want, 1e-6);
    let rm = store.buffer(store.buffer_id("bn.running_mean").unwrap());
    let rv = store.buffer(store.buffer_id("bn.running_var").unwrap());
    assert_close(&rm.to_vec_f64(), &[0.45], 1e-6);
    assert_close(&rv.to_vec_f64(), &[0.9 + 0.6], 1e-6);
}

/// A row-by-row reference of multi-head self-attention, in plain loops.
fn naive_attention(
    x: &[f64],
    (b, t, d): (usize, usize, usize),
    heads: usize,
    causal: bool,
    w: &dyn Fn(&str) -> Vec<f64>,
) -> Vec<f64> {
    // y = x W^T + b for one position.
    let lin = |name: &str, row: &[f64]| -> Vec<f64> {
        let (wt, bs) = (w(&format!("{name}.weight")), w(&format!("{name}.bias")));
        (0..d)
            .map(|o| bs[o] + (0..d).map(|i| wt[o * d + i] * row[i]).sum::<f64>())
            .collect()
    };
    let dh = d / heads;
    let mut out = vec![0.0; b * t * d];
    for bi in 0..b {
        let pos = |ti: usize| &x[(bi * t + ti) * d..(bi * t + ti + 1) * d];
        let q: Vec<Vec<f64>> = (0..t).map(|ti| lin("att.q", pos(ti))).collect();
        let k: Vec<Vec<f64>> = (0..t).map(|ti| lin("att.k", pos(ti))).collect();
        let v: Vec<Vec<f64>> = (0..t).map(|ti| lin("att.v", pos(ti))).collect();
        for ti in 0..t {
            let mut concat = vec![0.0; d];
            for h in 0..heads {
                let r = h * dh..(h + 1) * dh;
                let visible = if causal { ti + 1 } else { t };
                let scores: Vec<f64> = (0..visible)
                    .map(|s| {
                        q[ti][r.clone()]
                            .iter()
                            .zip(&k[s][r.clone()])
                            .map(|(a, b)| a * b)
                            .sum::<f64>()
                            / (dh as f64).sqrt()
                    })
                    .collect();
                let m = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
                let z: f64 = e.iter().sum();
                for (s, es) in e.iter().enumerate() {
                    for j in r.clone() {
                        concat[j] += es / z * v[s][j];
                    }
                }
            }
            let y = lin("att.o", &concat);
            out[(bi * t + ti) * d..(bi * t + ti + 1) * d].copy_from_slice(&y);
        }
    }
    out
}

#[test]
fn attention_against_a_naive_loop_causal_and_not() {
    let (b, t, d, heads) = (2, 4, 6, 3);
    let x = Tensor::randn(&[b, t, d], 0.0, 1.0, DType::F64, &mut rng(5)).unwrap();
    for causal in [true, false] {
        let mut store = ParamStore::new();
        let att =
            MultiHeadSelfAttention::new(&mut store, "att", d, heads, causal, &mut rng(6)).unwrap();
        store.to_dtype(DType::F64);
        let y = run(&store, &att, &x, Mode::Eval);
        let w = |n: &str| store.value(store.id(n).unwrap()).to_vec_f64();
        let want = naive_attention(&x.to_vec_f64(), (b, t, d), heads, causal, &w);
        assert_close(&y, &want, 1e-12);

        // Position 0 of a causal layer attends only to itself, so its output
        // is the output projection of its own value vector.
        if causal {
            let tape = Tape::new();
            let ctx = Ctx::new(&store, &tape, Mode::Eval);
            let x0 = ctx.input(x.narrow(1, 0, 1).unwrap().contiguous());
            let v0 = att
                .o
                .forward(&ctx, &att.v.forward(&ctx, &x0).unwrap())
                .unwrap();
            let v0 = v0.value().to_vec_f64();
            for bi in 0..b {
                assert_close(
                    &y[bi * t * d..bi * t * d + d],
                    &v0[bi * d..(bi + 1) * d],
                    1e-12,
                );
            }
            // ... and changing a later position leaves earlier outputs alone.
            let mut xv = x.to_vec_f64();
            for j in 0..d {
                xv[(t - 1) * d + j] += 1.0;
            }
            let y2 = run(&store, &att, &t64(&xv, &[b, t, d]), Mode::Eval);
            assert_eq!(&y2[..(t - 1) * d], &y[..(t - 1) * d]);
            assert_ne!(&y2[(t - 1) * d..t * d], &y[(t - 1) * d..t * d]);
        }
    }
    let m = causal_mask(3).to_vec::<bool>().unwrap();
    assert_eq!(
        m,
        vec![false, true, true, false, false, true, false, false, false]
    );
}

#[test]
fn embedding_lookup_returns_table_rows() {
    let mut store = ParamStore::new();
    let emb = Embedding::new(&mut store, "emb", 6, 3, &mut rng(7)).unwrap();
    let table = store.value(emb.weight).to_vec::<f32>().unwrap();
    let ids = Tensor::from_vec(vec![5i64, 0, 5, 2], &[2, 2]).unwrap();
    let tape = Tape::new();
    let ctx = Ctx::new(&store, &tape, Mode::Eval);
    let y = emb.forward(&ctx, &ids).unwrap();
    assert_eq!(y.shape(), &[2, 2, 3]);
    let yv = y.value().to_vec::<f32>().unwrap();
    for (p, id) in [5usize, 0, 5, 2].into_iter().enumerate() {
        assert_eq!(&yv[p * 3..p * 3 + 3], &table[id * 3..id * 3 + 3]);
    }
    // Out-of-range ids are an error, not a panic.
    let bad = Tensor::from_vec(vec![6i64], &[1]).unwrap();
    assert!(emb.forward(&ctx, &bad).is_err());
}

#[test]
fn dropout_keep_rate_and_scaling() {
    let store = ParamStore::new();
    let p = 0.3;
    let d = Dropout::new(p).unwrap();
    let n = 100_000;
    let x = Tensor::ones(&[200, 500], DType::F64);
    let masked = |seed: u64| -> Vec<f64> {
        let tape = Tape::new();
        let ctx = Ctx::with_seed(&store, &tape, Mode::Train, seed);
        d.forward(&ctx, &ctx.input(x.clone()))
            .unwrap()
            .value()
            .to_vec_f64()
    };
    let y = masked(1);
    let kept = y.iter().filter(|&&v| v != 0.0).count();
    // Every kept element is scaled by exactly 1 / (1 - p).
    assert!(y.iter().all(|&v| v == 0.0 || v == 1.0 / (1.0 - p)));
    // The kept share is Binomial(n, 0.7) / n: standard deviation
    // sqrt(0.7 * 0.3 / 1e5) = 0.00145, so 0.01 is ~7 standard deviations.
    let share = kept as f64 / n as f64;
    assert!((share - 0.7).abs() < 0.01, "kept {share}");
    // Inverted dropout keeps the mean: E[y] = 1 (same 7-sigma margin, scaled by 1/0.7).
    let mean = y.iter().sum::<f64>() / n as f64;
    assert!((mean - 1.0).abs() < 0.015, "mean {mean}");
    // The same seed gives the same mask; another seed a different one.
    assert_eq!(masked(1), y);
    assert_ne!(masked(2), y);
    assert!(Dropout::new(1.0).is_err() && Dropout::new(-0.1).is_err());
    // p = 0 is the identity even in train mode.
    let tape = Tape::new();
    let ctx = Ctx::new(&store, &tape, Mode::Train);
    let y0 = Dropout::new(0.0)
        .unwrap()
        .forward(&ctx, &ctx.input(x.clone()))
        .unwrap();
    assert!(y0.value().equal(&x));
}

/// fc1 (4 -> 8), fc2 (8 -> 3), ln (3), bn (3), emb (10 x 4).
fn counting_model(store: &mut ParamStore) {
    let mut r = rng(8);
    Linear::new(store, "fc1", 4, 8, &mut r).unwrap();
    Linear::new(store, "fc2", 8, 3, &mut r).unwrap();
    LayerNorm::new(store, "ln", 3, 1e-5).unwrap();
    BatchNorm::new(store, "bn", 3).unwrap();
    Embedding::new(store, "emb", 10, 4, &mut r).unwrap();
}

#[test]
fn parameter_counts_by_kind_trainable_and_bytes() {
    let mut store = ParamStore::new();
    counting_model(&mut store);
    let c = store.counts();
    // weights: 4*8 + 8*3; biases: 8 + 3 + ln 3 + bn 3; other: ln 3 + bn 3 + emb 40.
    assert_eq!(c.weights, 56);
    assert_eq!(c.biases, 17);
    assert_eq!(c.other, 46);
    assert_eq!(c.total, 119);
    assert_eq!((c.trainable, c.frozen), (119, 0));
    assert_eq!(c.buffers, 6); // running mean and var of bn
    assert_eq!(
        [32, 16, 8, 4].map(|b| c.bytes_at_bits(b)),
        [476, 238, 119, 60] // int4: 119 / 2 = 59.5, rounded up
    );

    assert_eq!(store.freeze_prefix("fc1."), 2);
    let c = store.counts();
    assert_eq!((c.trainable, c.frozen, c.total), (79, 40, 119));
    let by_layer: Vec<(String, usize)> = store
        .counts_by_layer()
        .into_iter()
        .map(|(l, c)| (l, c.total))
        .collect();
    assert_eq!(
        by_layer,
        [("fc1", 40), ("fc2", 27), ("ln", 6), ("bn", 6), ("emb", 40)]
            .map(|(l, n)| (l.to_string(), n))
    );

    let s = store.summary();
    assert!(
        s.contains("total parameters: 119 (56 weights, 17 biases, 46 other)"),
        "{s}"
    );
    assert!(s.contains("trainable: 79   frozen: 40   buffers: 6"), "{s}");
    assert!(
        s.contains("size: f32 476 B   f16 238 B   int8 119 B   int4 60 B"),
        "{s}"
    );
    let fc1w = s.lines().find(|l| l.starts_with("fc1.weight")).unwrap();
    assert!(fc1w.contains("weight") && fc1w.contains("[8, 4]") && fc1w.contains("frozen"));
    let fc2b = s.lines().find(|l| l.starts_with("fc2.bias")).unwrap();
    assert!(fc2b.contains("bias") && fc2b.contains("yes") && fc2b.contains("f32"));

    // Frozen parameters are constants on the tape: no gradient.
    let tape = Tape::new();
    let ctx = Ctx::new(&store, &tape, Mode::Train);
    let fc1 = store.id("fc1.weight").unwrap();
    let fc2 = store.id("fc2.weight").unwrap();
    let x = ctx.input(Tensor::ones(&[2, 4], DType::F32));
    let h = x.matmul(&ctx.param(fc1).t().unwrap()).unwrap();
    let y = h.matmul(&ctx.param(fc2).t().unwrap()).unwrap();
    let g = ctx.backward(&y.sum_all().unwrap()).unwrap();
    assert!(g.get(fc1).is_none());
    assert!(g.get(fc2).is_some());
    assert_eq!(store.unfreeze_prefix("fc"), 4);
    assert_eq!(store.counts().frozen, 0);
}

#[test]
fn large_counts_are_grouped_and_sized_in_powers_of_1000() {
    let mut store = ParamStore::new();
    store
        .add(
            "big.weight",
            Tensor::zeros(&[1000, 1234], DType::F32),
            ParamKind::Weight,
        )
        .unwrap();
    let s = store.summary();
    // 1,234,000 params: 4.936 MB at f32, 2.468 MB at f16, 1.234 MB int8, 617 kB int4.
    assert!(s.contains("total parameters: 1,234,000"), "{s}");
    assert!(
        s.contains("size: f32 4.9 MB   f16 2.5 MB   int8 1.2 MB   int4 617.0 kB"),
        "{s}"
    );
    assert_eq!(heft_nn::params::group(1_234_567), "1,234,567");
    assert_eq!(heft_nn::params::group(999), "999");
    assert_eq!(heft_nn::params::human_bytes(14_000_000_000), "14.0 GB");
}

#[test]
fn health_report_by_hand() {
    let mut store = ParamStore::new();
    let w = store
        .add("w", t64(&[3.0, 4.0, 0.0, 0.0], &[2, 2]), ParamKind::Weight)
        .unwrap();
    let b = store
        .add("b", t64(&[1.0, f64::NAN], &[2]), ParamKind::Bias)
        .unwrap();
    store
        .add("unused", t64(&[0.0, 0.0], &[2]), ParamKind::Other)
        .unwrap();
    let before = store.snapshot();
    let mut g = ParamGrads::new(store.len());
    // |g| = sqrt(1 + 4 + 4 + 16) = 5.
    g.set(w, t64(&[1.0, 2.0, 2.0, 4.0], &[2, 2]));
    g.set(b, t64(&[f64::INFINITY, 0.0], &[2]));
    // w <- w - 0.1 g: the update has norm 0.5, the weight norm 5: ratio 0.1.
    let new_w = store
        .value(w)
        .sub(&g.get(w).unwrap().mul_scalar(0.1).unwrap())
        .unwrap();
    store.set_value(w, new_w).unwrap();

    // A named ReLU records its share of zero outputs: [-1, 2, -3, 0] -> 3 of 4.
    let tape = Tape::new();
    let ctx = Ctx::new(&store, &tape, Mode::Train);
    Activation::Relu(Some("relu1".into()))
        .forward(&ctx, &Var::constant(t64(&[-1.0, 2.0, -3.0, 0.0], &[4])))
        .unwrap();
    let acts = ctx.activations();
    assert_eq!(acts, vec![("relu1".to_string(), 0.75)]);

    let r = health::report(&store, &g, Some(&before), &acts).unwrap();
    let pw = &r.params[0];
    assert_eq!(pw.name, "w");
    // |w'| = |[2.9, 3.8, -0.2, -0.4]| = sqrt(8.41 + 14.44 + 0.04 + 0.16) = sqrt(23.05).
    assert!((pw.weight_norm - 23.05f64.sqrt()).abs() < 1e-12);
    assert!((pw.grad_norm.unwrap() - 5.0).abs() < 1e-12);
    assert!((pw.update_ratio.unwrap() - 0.1).abs() < 1e-12);
    assert_eq!((pw.nan, pw.inf), (0, 0));
    let pb = &r.params[1];
    assert!(pb.weight_norm.is_nan());
    assert_eq!((pb.nan, pb.inf), (1, 1)); // the NaN weight and the infinite gradient
    assert_eq!(pb.grad_norm, Some(f64::INFINITY));
    let pu = &r.params[2];
    assert_eq!((pu.weight_norm, pu.grad_norm), (0.0, None));
    // Unchanged from a zero weight: the ratio falls back to the absolute change, 0.
    assert_eq!(pu.update_ratio, Some(0.0));
    assert_eq!(r.dead_relu, acts);

    let table = r.table();
    assert!(table.contains("dead ReLU units in relu1: 75.0%"), "{table}");
    let row = table.lines().find(|l| l.starts_with("w ")).unwrap();
    assert!(
        row.contains("5.0000e0") && row.contains("1.0000e-1"),
        "{row}"
    );
    let row = table.lines().find(|l| l.starts_with("unused")).unwrap();
    assert!(row.contains(" - "), "{row}");
}
