//! The first three steps of every optimizer against hand-computed values
//! and naive scalar re-implementations of the documented formulas, in f64
//! and f32.

mod common;

use common::{assert_close, rounded, run, tol};
use heft_optim::{
    Adagrad, AdagradConfig, Adam, AdamConfig, AdamW, Optimizer, RmsProp, RmsPropConfig, Sgd,
    SgdConfig,
};
use heft_tensor::DType;

const P0: [f64; 3] = [1.0, -2.0, 0.5];

fn grads() -> Vec<Vec<f64>> {
    vec![
        vec![0.5, -1.0, 2.0],
        vec![0.25, 0.5, -1.0],
        vec![-0.5, 1.0, 0.0],
    ]
}

/// Large first gradients, then small ones: the second moment falls, so
/// AMSGrad's running maximum matters.
fn falling_grads() -> Vec<Vec<f64>> {
    vec![
        vec![1.0, -2.0, 0.5],
        vec![0.01, -0.02, 0.6],
        vec![0.02, 0.01, -0.7],
    ]
}

const DTYPES: [DType; 2] = [DType::F64, DType::F32];

// ---------------------------------------------------------------- SGD

#[test]
fn sgd_plain_by_hand() {
    for dt in DTYPES {
        let mut opt = Sgd::new(SgdConfig::new(0.1)).unwrap();
        let got = run(&mut opt, &P0, &grads(), dt);
        // θ ← θ − 0.1 g, three times.
        let expected = vec![
            vec![1.0 - 0.05, -2.0 + 0.1, 0.5 - 0.2],
            vec![0.95 - 0.025, -1.9 - 0.05, 0.3 + 0.1],
            vec![0.925 + 0.05, -1.95 - 0.1, 0.4],
        ];
        assert_close(&got, &expected, tol(dt));
    }
}

#[test]
fn sgd_momentum_by_hand() {
    for dt in DTYPES {
        let mut opt = Sgd::new(SgdConfig::new(0.1).momentum(0.9)).unwrap();
        let got = run(&mut opt, &P0, &grads(), dt);
        // Step 1: b = g1 = [0.5, -1, 2];           θ = [0.95, -1.9, 0.3]
        // Step 2: b = 0.9 b + g2 = [0.7, -0.4, 0.8]; θ = [0.88, -1.86, 0.22]
        // Step 3: b = 0.9 b + g3 = [0.13, 0.64, 0.72]; θ = [0.867, -1.924, 0.148]
        let expected = vec![
            vec![0.95, -1.9, 0.3],
            vec![0.88, -1.86, 0.22],
            vec![0.867, -1.924, 0.148],
        ];
        assert_close(&got, &expected, tol(dt));
    }
}

/// PyTorch's SGD pseudocode, one scalar at a time.
fn sgd_reference(
    p0: &[f64],
    grads: &[Vec<f64>],
    lr: f64,
    momentum: f64,
    dampening: f64,
    nesterov: bool,
    weight_decay: f64,
) -> Vec<Vec<f64>> {
    let mut out = Vec::new();
    let mut theta = p0.to_vec();
    let mut buf: Vec<f64> = vec![0.0; p0.len()];
    for (t, g) in grads.iter().enumerate() {
        for i in 0..theta.len() {
            let mut gt = g[i];
            if weight_decay != 0.0 {
                gt += weight_decay * theta[i];
            }
            if momentum != 0.0 {
                if t > 0 {
                    buf[i] = momentum * buf[i] + (1.0 - dampening) * gt;
                } else {
                    buf[i] = gt;
                }
                if nesterov {
                    gt += momentum * buf[i];
                } else {
                    gt = buf[i];
                }
            }
            theta[i] -= lr * gt;
        }
        out.push(theta.clone());
    }
    out
}

#[test]
fn sgd_nesterov_weight_decay() {
    for dt in DTYPES {
        let cfg = SgdConfig::new(0.05)
            .momentum(0.8)
            .nesterov(true)
            .weight_decay(0.1);
        let mut opt = Sgd::new(cfg).unwrap();
        let got = run(&mut opt, &P0, &grads(), dt);
        let p0 = rounded(&P0, dt);
        let expected = sgd_reference(&p0, &grads(), 0.05, 0.8, 0.0, true, 0.1);
        assert_close(&got, &expected, tol(dt));
        // Step 1 by hand: g = g1 + 0.1 θ0; b = g; θ1 = θ0 − 0.05 (g + 0.8 g) = θ0 − 0.09 g.
        let g = [0.5 + 0.1, -1.0 - 0.2, 2.0 + 0.05];
        let first: Vec<f64> = (0..3).map(|i| P0[i] - 0.09 * g[i]).collect();
        assert_close(&got[..1], &[first], tol(dt));
    }
}

#[test]
fn sgd_dampening() {
    for dt in DTYPES {
        let cfg = SgdConfig::new(0.1).momentum(0.9).dampening(0.5);
        let mut opt = Sgd::new(cfg).unwrap();
        let got = run(&mut opt, &P0, &grads(), dt);
        let expected = sgd_reference(&rounded(&P0, dt), &grads(), 0.1, 0.9, 0.5, false, 0.0);
        assert_close(&got, &expected, tol(dt));
        // Dampening does not touch the first step (b = g) ...
        assert_close(&got[..1], &[vec![0.95, -1.9, 0.3]], tol(dt));
        // ... but does the second: b = 0.9 g1 + 0.5 g2.
        let b2 = [0.45 + 0.125, -0.9 + 0.25, 1.8 - 0.5];
        let second: Vec<f64> = (0..3).map(|i| got[0][i] - 0.1 * b2[i]).collect();
        assert_close(&got[1..2], &[second], tol(dt));
    }
}

// ---------------------------------------------------------------- Adam

/// Adam / AdamW as documented: bias-corrected moments, ε outside the root.
#[allow(clippy::too_many_arguments)]
fn adam_reference(
    p0: &[f64],
    grads: &[Vec<f64>],
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    amsgrad: bool,
    decoupled: bool,
) -> Vec<Vec<f64>> {
    let n = p0.len();
    let mut theta = p0.to_vec();
    let (mut m, mut v, mut vmax) = (vec![0.0f64; n], vec![0.0f64; n], vec![0.0f64; n]);
    let mut out = Vec::new();
    for (k, g) in grads.iter().enumerate() {
        let t = (k + 1) as i32;
        for i in 0..n {
            let mut gt = g[i];
            if decoupled {
                theta[i] -= lr * weight_decay * theta[i];
            } else if weight_decay != 0.0 {
                gt += weight_decay * theta[i];
            }
            m[i] = beta1 * m[i] + (1.0 - beta1) * gt;
            v[i] = beta2 * v[i] + (1.0 - beta2) * gt * gt;
            let m_hat = m[i] / (1.0 - beta1.powi(t));
            let v_hat = if amsgrad {
                vmax[i] = vmax[i].max(v[i]);
                vmax[i] / (1.0 - beta2.powi(t))
            } else {
                v[i] / (1.0 - beta2.powi(t))
            };
            theta[i] -= lr * m_hat / (v_hat.sqrt() + eps);
        }
        out.push(theta.clone());
    }
    out
}

#[test]
fn adam_first_step_by_hand() {
    for dt in DTYPES {
        let mut opt = Adam::new(AdamConfig::new(0.01)).unwrap();
        let got = run(&mut opt, &P0, &grads()[..1], dt);
        // m̂ = g, v̂ = g²: θ1 = θ0 − lr g / (|g| + ε).
        let g = &grads()[0];
        let e: Vec<f64> = (0..3)
            .map(|i| P0[i] - 0.01 * g[i] / (g[i].abs() + 1e-8))
            .collect();
        assert_close(&got, &[e], tol(dt));
    }
}

#[test]
fn adam_three_steps() {
    for dt in DTYPES {
        let mut opt = Adam::new(AdamConfig::new(0.01).betas(0.8, 0.95)).unwrap();
        let got = run(&mut opt, &P0, &grads(), dt);
        let e = adam_reference(
            &rounded(&P0, dt),
            &grads(),
            0.01,
            0.8,
            0.95,
            1e-8,
            0.0,
            false,
            false,
        );
        assert_close(&got, &e, tol(dt));
    }
}

#[test]
fn adam_l2_weight_decay() {
    for dt in DTYPES {
        let mut opt = Adam::new(AdamConfig::new(0.01).weight_decay(0.5)).unwrap();
        let got = run(&mut opt, &P0, &grads(), dt);
        let e = adam_reference(
            &rounded(&P0, dt),
            &grads(),
            0.01,
            0.9,
            0.999,
            1e-8,
            0.5,
            false,
            false,
        );
        assert_close(&got, &e, tol(dt));
        // Step 1 by hand: g = g1 + 0.5 θ0, then θ0 − lr g/(|g| + ε).
        let g: [f64; 3] = [0.5 + 0.5, -1.0 - 1.0, 2.0 + 0.25];
        let first: Vec<f64> = (0..3)
            .map(|i| P0[i] - 0.01 * g[i] / (g[i].abs() + 1e-8))
            .collect();
        assert_close(&got[..1], &[first], tol(dt));
    }
}

#[test]
fn adam_amsgrad() {
    for dt in DTYPES {
        let cfg = AdamConfig::new(0.01).amsgrad(true);
        let got = run(&mut Adam::new(cfg).unwrap(), &P0, &falling_grads(), dt);
        let e = adam_reference(
            &rounded(&P0, dt),
            &falling_grads(),
            0.01,
            0.9,
            0.999,
            1e-8,
            0.0,
            true,
            false,
        );
        assert_close(&got, &e, tol(dt));
        let plain = run(
            &mut Adam::new(AdamConfig::new(0.01)).unwrap(),
            &P0,
            &falling_grads(),
            dt,
        );
        assert_ne!(got[2], plain[2], "AMSGrad must change the result here");
    }
}

#[test]
fn adamw_decoupled_decay() {
    for dt in DTYPES {
        let cfg = AdamConfig::adamw(0.01).weight_decay(0.1);
        let got = run(&mut AdamW::new(cfg).unwrap(), &P0, &grads(), dt);
        let e = adam_reference(
            &rounded(&P0, dt),
            &grads(),
            0.01,
            0.9,
            0.999,
            1e-8,
            0.1,
            false,
            true,
        );
        assert_close(&got, &e, tol(dt));
        // Step 1 by hand: θ0 (1 − 0.01·0.1) − 0.01 g/(|g| + ε).
        let g = &grads()[0];
        let first: Vec<f64> = (0..3)
            .map(|i| P0[i] * (1.0 - 0.001) - 0.01 * g[i] / (g[i].abs() + 1e-8))
            .collect();
        assert_close(&got[..1], &[first], tol(dt));
        // Decoupled decay differs from L2 decay.
        let l2 = run(&mut Adam::new(cfg).unwrap(), &P0, &grads(), dt);
        assert_ne!(got[2], l2[2]);
    }
}

#[test]
fn adamw_amsgrad() {
    for dt in DTYPES {
        let cfg = AdamConfig::adamw(0.02).amsgrad(true).betas(0.9, 0.99);
        let got = run(&mut AdamW::new(cfg).unwrap(), &P0, &falling_grads(), dt);
        let e = adam_reference(
            &rounded(&P0, dt),
            &falling_grads(),
            0.02,
            0.9,
            0.99,
            1e-8,
            1e-2,
            true,
            true,
        );
        assert_close(&got, &e, tol(dt));
    }
}

// ---------------------------------------------------------------- RMSprop

#[allow(clippy::too_many_arguments)]
fn rmsprop_reference(
    p0: &[f64],
    grads: &[Vec<f64>],
    lr: f64,
    alpha: f64,
    eps: f64,
    weight_decay: f64,
    momentum: f64,
    centered: bool,
) -> Vec<Vec<f64>> {
    let n = p0.len();
    let mut theta = p0.to_vec();
    let (mut v, mut gavg, mut b) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    let mut out = Vec::new();
    for g in grads {
        for i in 0..n {
            let gt = g[i] + weight_decay * theta[i];
            v[i] = alpha * v[i] + (1.0 - alpha) * gt * gt;
            let mut v_tilde = v[i];
            if centered {
                gavg[i] = alpha * gavg[i] + (1.0 - alpha) * gt;
                v_tilde -= gavg[i] * gavg[i];
            }
            if momentum > 0.0 {
                b[i] = momentum * b[i] + gt / (v_tilde.sqrt() + eps);
                theta[i] -= lr * b[i];
            } else {
                theta[i] -= lr * gt / (v_tilde.sqrt() + eps);
            }
        }
        out.push(theta.clone());
    }
    out
}

#[test]
fn rmsprop_plain() {
    for dt in DTYPES {
        let mut opt = RmsProp::new(RmsPropConfig::new(0.01)).unwrap();
        let got = run(&mut opt, &P0, &grads(), dt);
        let e = rmsprop_reference(
            &rounded(&P0, dt),
            &grads(),
            0.01,
            0.99,
            1e-8,
            0.0,
            0.0,
            false,
        );
        assert_close(&got, &e, tol(dt));
        // Step 1 by hand: v = 0.01 g², θ1 = θ0 − 0.01 g / (0.1 |g| + ε).
        let g = &grads()[0];
        let first: Vec<f64> = (0..3)
            .map(|i| P0[i] - 0.01 * g[i] / (0.1 * g[i].abs() + 1e-8))
            .collect();
        assert_close(&got[..1], &[first], tol(dt));
    }
}

#[test]
fn rmsprop_centered_momentum_weight_decay() {
    for dt in DTYPES {
        let cfg = RmsPropConfig::new(0.01)
            .alpha(0.9)
            .momentum(0.5)
            .centered(true)
            .weight_decay(0.05);
        let got = run(&mut RmsProp::new(cfg).unwrap(), &P0, &grads(), dt);
        let e = rmsprop_reference(
            &rounded(&P0, dt),
            &grads(),
            0.01,
            0.9,
            1e-8,
            0.05,
            0.5,
            true,
        );
        assert_close(&got, &e, tol(dt));
    }
}

#[test]
fn rmsprop_centered_only() {
    for dt in DTYPES {
        let cfg = RmsPropConfig::new(0.01).alpha(0.9).centered(true);
        let got = run(&mut RmsProp::new(cfg).unwrap(), &P0, &grads(), dt);
        // Step 1 by hand: v = 0.1 g², ḡ = 0.1 g, ṽ = 0.1 g² − 0.01 g² = 0.09 g².
        let g = &grads()[0];
        let first: Vec<f64> = (0..3)
            .map(|i| P0[i] - 0.01 * g[i] / (0.3 * g[i].abs() + 1e-8))
            .collect();
        assert_close(&got[..1], &[first], tol(dt));
        let e = rmsprop_reference(&rounded(&P0, dt), &grads(), 0.01, 0.9, 1e-8, 0.0, 0.0, true);
        assert_close(&got, &e, tol(dt));
    }
}

#[test]
fn rmsprop_momentum_only() {
    for dt in DTYPES {
        let cfg = RmsPropConfig::new(0.01).momentum(0.9);
        let got = run(&mut RmsProp::new(cfg).unwrap(), &P0, &grads(), dt);
        let e = rmsprop_reference(
            &rounded(&P0, dt),
            &grads(),
            0.01,
            0.99,
            1e-8,
            0.0,
            0.9,
            false,
        );
        assert_close(&got, &e, tol(dt));
    }
}

// ---------------------------------------------------------------- Adagrad

fn adagrad_reference(
    p0: &[f64],
    grads: &[Vec<f64>],
    lr: f64,
    lr_decay: f64,
    weight_decay: f64,
    init: f64,
    eps: f64,
) -> Vec<Vec<f64>> {
    let mut theta = p0.to_vec();
    let mut sum = vec![init; p0.len()];
    let mut out = Vec::new();
    for (k, g) in grads.iter().enumerate() {
        let clr = lr / (1.0 + k as f64 * lr_decay);
        for i in 0..theta.len() {
            let gt = g[i] + weight_decay * theta[i];
            sum[i] += gt * gt;
            theta[i] -= clr * gt / (sum[i].sqrt() + eps);
        }
        out.push(theta.clone());
    }
    out
}

#[test]
fn adagrad_plain_by_hand() {
    for dt in DTYPES {
        let mut opt = Adagrad::new(AdagradConfig::new(0.1)).unwrap();
        let got = run(&mut opt, &P0, &grads(), dt);
        // Step 1: S = g², θ1 = θ0 − 0.1 sign(g) (up to ε).
        let first = vec![1.0 - 0.1, -2.0 + 0.1, 0.5 - 0.1];
        assert_close(&got[..1], &[first], tol(dt).max(1e-9));
        // Step 2: S = g1² + g2².
        let s2: [f64; 3] = [0.25 + 0.0625, 1.0 + 0.25, 4.0 + 1.0];
        let g2 = &grads()[1];
        let second: Vec<f64> = (0..3)
            .map(|i| got[0][i] - 0.1 * g2[i] / s2[i].sqrt())
            .collect();
        assert_close(&got[1..2], &[second], tol(dt).max(1e-9));
        let e = adagrad_reference(&rounded(&P0, dt), &grads(), 0.1, 0.0, 0.0, 0.0, 1e-10);
        assert_close(&got, &e, tol(dt));
    }
}

#[test]
fn adagrad_lr_decay_initial_accumulator_weight_decay() {
    for dt in DTYPES {
        let cfg = AdagradConfig::new(0.1)
            .lr_decay(0.5)
            .initial_accumulator_value(0.25)
            .weight_decay(0.1)
            .eps(1e-6);
        let got = run(&mut Adagrad::new(cfg).unwrap(), &P0, &grads(), dt);
        let e = adagrad_reference(&rounded(&P0, dt), &grads(), 0.1, 0.5, 0.1, 0.25, 1e-6);
        assert_close(&got, &e, tol(dt));
    }
}

#[test]
fn adam_step_count_per_optimizer() {
    let mut opt = Adam::new(AdamConfig::default()).unwrap();
    run(&mut opt, &P0, &grads(), DType::F64);
    assert_eq!(opt.num_steps(), 3);
    assert_eq!(opt.kind(), "adam");
    let st = opt.state();
    assert_eq!(
        st.buffer("p.step").unwrap().to_vec::<i64>().unwrap(),
        vec![3]
    );
    assert!(st.buffer("p.exp_avg").is_some() && st.buffer("p.exp_avg_sq").is_some());
    assert!(st.buffer("p.max_exp_avg_sq").is_none());
}
