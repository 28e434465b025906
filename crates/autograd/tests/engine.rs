//! The tape engine's behaviour: accumulation, modes, errors, memory, transforms.

use heft_autograd::functional::{grad, hessian, hvp, jvp, value_and_grad, vjp};
use heft_autograd::{AutogradError, BackwardOptions, Tape, Var};
use heft_tensor::Tensor;
use std::sync::Arc;

fn t(v: &[f64], s: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), s).unwrap()
}

#[test]
fn fan_out_gradients_are_added() {
    // y = x*x + 3x  -> dy/dx = 2x + 3 ; x feeds three ops.
    let tape = Tape::new();
    let x = tape.leaf(t(&[2.0, -1.0], &[2]));
    let y = x
        .mul(&x)
        .unwrap()
        .add(&x.mul_scalar(3.0).unwrap())
        .unwrap()
        .sum_all()
        .unwrap();
    let g = tape.backward(&y).unwrap();
    assert_eq!(g.get(&x).unwrap().to_vec::<f64>().unwrap(), vec![7.0, 1.0]);
}

#[test]
fn unused_leaf_has_no_gradient_and_constants_none() {
    let tape = Tape::new();
    let x = tape.leaf(t(&[1.0], &[1]));
    let unused = tape.leaf(t(&[5.0], &[1]));
    let c = tape.constant(t(&[4.0], &[1]));
    let y = x.mul(&c).unwrap().sum_all().unwrap();
    let g = tape.backward(&y).unwrap();
    assert!(g.get(&unused).is_none());
    assert!(g.get(&c).is_none());
    assert_eq!(g.get_or_zeros(&unused).to_vec::<f64>().unwrap(), vec![0.0]);
    assert_eq!(g.get(&x).unwrap().to_vec::<f64>().unwrap(), vec![4.0]);
}

#[test]
fn no_grad_and_detach_record_nothing() {
    let tape = Tape::new();
    let x = tape.leaf(t(&[3.0], &[1]));
    let before = tape.len();
    let y = tape.no_grad(|| x.exp().unwrap());
    assert!(!y.is_tracked());
    assert_eq!(tape.len(), before);
    assert!(tape.is_recording());
    // detach cuts the graph: d/dx (x * detach(x)) = detach(x) = 3.
    let z = x.mul(&x.detach()).unwrap().sum_all().unwrap();
    let g = tape.backward(&z).unwrap();
    assert_eq!(g.get(&x).unwrap().to_vec::<f64>().unwrap(), vec![3.0]);
}

#[test]
fn backward_twice_needs_retain_graph() {
    let tape = Tape::new();
    let x = tape.leaf(t(&[2.0], &[1]));
    let y = x.exp().unwrap().sum_all().unwrap();
    let keep = BackwardOptions {
        retain_graph: true,
        create_graph: false,
    };
    let g1 = tape.backward_opts(&y, None, keep).unwrap();
    let g2 = tape.backward_opts(&y, None, keep).unwrap();
    assert_eq!(
        g1.get(&x).unwrap().to_vec::<f64>().unwrap(),
        g2.get(&x).unwrap().to_vec::<f64>().unwrap()
    );
    tape.backward(&y).unwrap();
    let e = tape.backward(&y).err().unwrap();
    assert!(matches!(e, AutogradError::AlreadyFreed { .. }), "{e}");
}

#[test]
fn saved_tensors_are_released_by_backward() {
    let tape = Tape::new();
    let big = t(&[1.0, 2.0, 3.0], &[3]);
    let x = tape.leaf(t(&[1.0, 1.0, 1.0], &[3]));
    let y = x
        .mul(&tape.constant(big.clone()))
        .unwrap()
        .sum_all()
        .unwrap();
    // Our handle plus the copy the mul VJP saved.
    assert_eq!(Arc::strong_count(big.storage()), 2);
    tape.backward(&y).unwrap();
    // Only our handle (and none from the tape) remains.
    assert_eq!(Arc::strong_count(big.storage()), 1);
}

#[test]
fn reset_makes_old_vars_stale() {
    let tape = Tape::new();
    let x = tape.leaf(t(&[1.0], &[1]));
    tape.reset();
    assert!(tape.is_empty());
    let e = x.exp().err().unwrap();
    assert_eq!(
        e.to_string(),
        "exp: the var's tape was dropped or reset; record it again on a live tape"
    );
}

#[test]
fn errors_are_specific() {
    let tape = Tape::new();
    let x = tape.leaf(t(&[1.0, 2.0], &[2]));
    let e = tape.backward(&x.exp().unwrap()).err().unwrap();
    assert_eq!(
        e.to_string(),
        "backward: output of shape [2] is not a scalar; use backward_with(seed)"
    );
    let e = tape.backward_with(&x, &t(&[1.0], &[1])).err().unwrap();
    assert!(matches!(e, AutogradError::BadSeed { .. }));
    let other = Tape::new();
    let z = other.leaf(t(&[1.0, 2.0], &[2]));
    assert_eq!(
        x.add(&z).err().unwrap().to_string(),
        "add: inputs come from different tapes"
    );
    // Tensor errors come through with the op and both shapes.
    let w = tape.leaf(t(&[1.0, 2.0, 3.0], &[3]));
    assert_eq!(
        x.add(&w).err().unwrap().to_string(),
        "add: lhs [2] and rhs [3]: cannot broadcast: dimension 2 and 3 differ and neither is 1"
    );
}

#[test]
fn anomaly_mode_names_op_location_and_shapes() {
    let tape = Tape::new();
    tape.set_anomaly_detection(true);
    let x = tape.leaf(t(&[-1.0, 4.0], &[2]));
    let line = line!() + 1;
    let e = x.log().err().unwrap().to_string();
    assert!(e.starts_with("anomaly: forward of `log`"), "{e}");
    assert!(e.contains(&format!("engine.rs:{line}:")), "{e}");
    assert!(
        e.contains("produced 1 NaN and 0 infinite values; input shapes [2]"),
        "{e}"
    );
    // Backward: sqrt at 0 is finite forward, infinite gradient backward.
    let z = tape.leaf(t(&[0.0, 4.0], &[2]));
    let y = z.sqrt().unwrap().sum_all().unwrap();
    let e = tape.backward(&y).err().unwrap().to_string();
    assert!(e.starts_with("anomaly: backward of `sqrt`"), "{e}");
    // A non-finite value inside a VJP is reported against the op being
    // differentiated and its creation site, not the VJP's own ops.
    let a = tape.leaf(t(&[0.0, 1.0, 2.0], &[3]));
    let b = tape.leaf(t(&[0.5], &[1]));
    let line = line!() + 1;
    let y = a.pow(&b).unwrap().sum_all().unwrap();
    let e = tape.backward(&y).err().unwrap().to_string();
    assert!(e.starts_with("anomaly: backward of `pow`"), "{e}");
    assert!(e.contains(&format!("engine.rs:{line}:")), "{e}");
    // Ops built on private helpers (max/min, maximum/minimum, pooling)
    // report the user's call site too.
    let n = tape.leaf(t(&[f64::NAN, 1.0, 2.0, 3.0], &[1, 1, 2, 2]));
    let line = line!() + 1;
    let e = n.max(&[], false).err().unwrap().to_string();
    assert!(e.starts_with("anomaly: forward of `max`"), "{e}");
    assert!(e.contains(&format!("engine.rs:{line}:")), "{e}");
    let line = line!() + 1;
    let e = n.maximum(&n).err().unwrap().to_string();
    assert!(e.contains(&format!("engine.rs:{line}:")), "{e}");
    let line = line!() + 1;
    let pooled = n.max_pool2d((2, 2), (1, 1), (0, 0));
    let e = pooled.err().unwrap().to_string();
    assert!(e.contains(&format!("engine.rs:{line}:")), "{e}");
    // Off by default: the same NaN goes through silently.
    let quiet = Tape::new();
    assert!(quiet.leaf(t(&[-1.0], &[1])).log().is_ok());
}

#[test]
fn functional_transforms_match_hand_derivations() {
    // f(x) = sum(x^2 * sin x): f' = 2x sin x + x^2 cos x.
    let f = |x: &Var| x.square()?.mul(&x.sin()?)?.sum_all();
    let xv = [0.5f64, -1.5, 2.0];
    let x = t(&xv, &[3]);
    let (val, g) = value_and_grad(f, &x).unwrap();
    let expect_val: f64 = xv.iter().map(|v| v * v * v.sin()).sum();
    assert!((val.item::<f64>().unwrap() - expect_val).abs() < 1e-14);
    for (gi, v) in g.to_vec::<f64>().unwrap().iter().zip(xv) {
        assert!((gi - (2.0 * v * v.sin() + v * v * v.cos())).abs() < 1e-13);
    }
    assert_eq!(
        grad(f, &x).unwrap().to_vec::<f64>().unwrap(),
        g.to_vec::<f64>().unwrap()
    );
    // Quadratic form q(x) = x^T A x: gradient (A + A^T) x, Hessian A + A^T.
    let a = t(&[1.0, 2.0, 0.0, 3.0, -1.0, 4.0, 0.5, 0.0, 2.0], &[3, 3]);
    let q = |x: &Var| x.matmul(&Var::constant(a.clone()))?.matmul(x);
    let h = hessian(q, &x).unwrap().to_vec::<f64>().unwrap();
    let av = a.to_vec::<f64>().unwrap();
    for i in 0..3 {
        for j in 0..3 {
            assert!((h[i * 3 + j] - (av[i * 3 + j] + av[j * 3 + i])).abs() < 1e-12);
        }
    }
    let v = t(&[1.0, 0.0, -1.0], &[3]);
    let hv = hvp(q, &x, &v).unwrap().to_vec::<f64>().unwrap();
    for i in 0..3 {
        let e: f64 = (0..3)
            .map(|j| (av[i * 3 + j] + av[j * 3 + i]) * v.to_vec::<f64>().unwrap()[j])
            .sum();
        assert!((hv[i] - e).abs() < 1e-12);
    }
    // y = A x (linear): vjp = A^T u, jvp = A v.
    let lin = |x: &Var| Var::constant(a.clone()).matmul(x);
    let u = t(&[1.0, 2.0, 3.0], &[3]);
    let (_, vj) = vjp(lin, &x, &u).unwrap();
    let (_, jv) = jvp(lin, &x, &v).unwrap();
    let uv = u.to_vec::<f64>().unwrap();
    let vv = v.to_vec::<f64>().unwrap();
    for i in 0..3 {
        let at_u: f64 = (0..3).map(|j| av[j * 3 + i] * uv[j]).sum();
        let a_v: f64 = (0..3).map(|j| av[i * 3 + j] * vv[j]).sum();
        assert!((vj.to_vec::<f64>().unwrap()[i] - at_u).abs() < 1e-12);
        assert!((jv.to_vec::<f64>().unwrap()[i] - a_v).abs() < 1e-12);
    }
    // jvp of a nonlinear map: d/dt tanh(x + t v) = (1 - tanh^2 x) v.
    let (_, jv) = jvp(|x: &Var| x.tanh(), &x, &v).unwrap();
    for i in 0..3 {
        let e = (1.0 - xv[i].tanh().powi(2)) * vv[i];
        assert!((jv.to_vec::<f64>().unwrap()[i] - e).abs() < 1e-12);
    }
}

#[test]
fn third_order_through_create_graph() {
    // f(x) = x^4: f''' = 24 x.
    let tape = Tape::new();
    let x = tape.leaf(t(&[1.5], &[1]));
    let y = x.powf(4.0).unwrap().sum_all().unwrap();
    let cg = BackwardOptions {
        create_graph: true,
        retain_graph: true,
    };
    let g1 = tape
        .backward_opts(&y, None, cg)
        .unwrap()
        .get_var(&x)
        .unwrap()
        .clone();
    let g2 = tape
        .backward_opts(&g1.sum_all().unwrap(), None, cg)
        .unwrap()
        .get_var(&x)
        .unwrap()
        .clone();
    let g3 = tape.backward(&g2.sum_all().unwrap()).unwrap();
    assert!((g1.value().to_vec::<f64>().unwrap()[0] - 4.0 * 1.5f64.powi(3)).abs() < 1e-12);
    assert!((g2.value().to_vec::<f64>().unwrap()[0] - 12.0 * 1.5f64.powi(2)).abs() < 1e-12);
    assert!((g3.get(&x).unwrap().to_vec::<f64>().unwrap()[0] - 24.0 * 1.5).abs() < 1e-12);
}

#[test]
fn linear_weight_gradient_through_transposed_view_is_contiguous_and_correct() {
    // y = x w^T (a Linear layer): dW = dY^T x, which the matmul VJP produces
    // in w's own (row-major) storage order, so no transposing copy is needed.
    let (m, k, n) = (5, 7, 3);
    let xv: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.37).sin()).collect();
    let wv: Vec<f64> = (0..n * k).map(|i| (i as f64 * 0.91).cos()).collect();
    let gv: Vec<f64> = (0..m * n).map(|i| i as f64 * 0.25 - 1.0).collect();
    let tape = Tape::new();
    let x = tape.leaf(t(&xv, &[m, k]));
    let w = tape.leaf(t(&wv, &[n, k]));
    let y = x.matmul(&w.t().unwrap()).unwrap();
    let g = tape.backward_with(&y, &t(&gv, &[m, n])).unwrap();
    let gw = g.get(&w).unwrap();
    assert_eq!(gw.shape(), &[n, k]);
    assert!(gw.is_contiguous());
    let gw = gw.to_vec::<f64>().unwrap();
    for o in 0..n {
        for i in 0..k {
            let e: f64 = (0..m).map(|b| gv[b * n + o] * xv[b * k + i]).sum();
            assert!((gw[o * k + i] - e).abs() < 1e-12, "dW[{o},{i}]");
        }
    }
    let gx = g.get(&x).unwrap().to_vec::<f64>().unwrap();
    for b in 0..m {
        for i in 0..k {
            let e: f64 = (0..n).map(|o| gv[b * n + o] * wv[o * k + i]).sum();
            assert!((gx[b * k + i] - e).abs() < 1e-12, "dX[{b},{i}]");
        }
    }
}

#[test]
fn add_and_sub_give_gradients_only_to_tracked_operands() {
    // d(a - c)/da = 1 and d(c - b)/db = -1, with the constant side getting
    // nothing; the VJPs ask the context which inputs need a gradient.
    let tape = Tape::new();
    let a = tape.leaf(t(&[1.0, 2.0], &[2]));
    let b = tape.leaf(t(&[3.0, 5.0], &[2]));
    let c = tape.constant(t(&[10.0, 20.0], &[2]));
    let y = a
        .sub(&c)
        .unwrap()
        .mul_scalar(2.0)
        .unwrap()
        .add(&c.sub(&b).unwrap())
        .unwrap()
        .add(&c)
        .unwrap()
        .sum_all()
        .unwrap();
    let g = tape.backward(&y).unwrap();
    assert_eq!(g.get(&a).unwrap().to_vec::<f64>().unwrap(), vec![2.0, 2.0]);
    assert_eq!(
        g.get(&b).unwrap().to_vec::<f64>().unwrap(),
        vec![-1.0, -1.0]
    );
    assert!(g.get(&c).is_none());
}

/// Small integers (exact in f32, as are the sums below) from a seed.
fn ints(len: usize, seed: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * 7 + seed * 13) % 5) as f32 - 2.0)
        .collect()
}

#[test]
fn matmul_gradients_are_the_same_joined_on_threads_or_recorded() {
    // Without create_graph, dA and dB of a product large enough are
    // computed side by side (`kernels::join`); with it, by recorded ops one
    // after the other. Both must give the exact sums (integer data), in
    // pools of 1-3 threads and outside any pool. Shapes: x w (NN), a Linear
    // layer's bias + x w^T (addmm, dW in w's storage order), and a batched
    // left operand (folded for dA, batched and summed back for dB).
    // m k n = 6.3M multiply-adds, 1.5x the 4.1M from which `join` hands a
    // piece over even to a sleeping helper: joined.
    let (m, k, n) = (64, 256, 384);
    let xv = ints(2 * m * k, 1);
    let wv = ints(k * n, 2);
    let gv = ints(2 * m * n, 3);
    let run = |case: usize, create_graph: bool| -> (Vec<f32>, Vec<f32>) {
        let tape = Tape::new();
        let (x, y, w) = match case {
            0 => {
                let x = tape.leaf(Tensor::from_vec(xv[..m * k].to_vec(), &[m, k]).unwrap());
                let w = tape.leaf(Tensor::from_vec(wv.clone(), &[k, n]).unwrap());
                (x.clone(), x.matmul(&w).unwrap(), w)
            }
            1 => {
                let x = tape.leaf(Tensor::from_vec(xv[..m * k].to_vec(), &[m, k]).unwrap());
                let w = tape.leaf(Tensor::from_vec(wv.clone(), &[n, k]).unwrap());
                let bias = tape.leaf(Tensor::from_vec(vec![0.5f32; n], &[n]).unwrap());
                (x.clone(), bias.addmm(&x, &w.t().unwrap()).unwrap(), w)
            }
            _ => {
                let x = tape.leaf(Tensor::from_vec(xv.clone(), &[2, m, k]).unwrap());
                let w = tape.leaf(Tensor::from_vec(wv.clone(), &[k, n]).unwrap());
                (x.clone(), x.matmul(&w).unwrap(), w)
            }
        };
        let seed = Tensor::from_vec(gv[..y.value().numel()].to_vec(), y.shape()).unwrap();
        let opts = BackwardOptions {
            create_graph,
            retain_graph: false,
        };
        let g = tape.backward_opts(&y, Some(&seed), opts).unwrap();
        let gx = g.get(&x).unwrap().to_vec::<f32>().unwrap();
        let gw = g.get(&w).unwrap();
        assert!(gw.is_contiguous(), "case {case}: dW in w's storage order");
        (gx, gw.to_vec::<f32>().unwrap())
    };
    for case in 0..3 {
        let batches = if case == 2 { 2 } else { 1 };
        // The exact sums, in the storage order of x and w.
        let w_at = |i: usize, o: usize| match case {
            1 => wv[o * k + i],
            _ => wv[i * n + o],
        };
        let mut ex = vec![0f32; batches * m * k];
        let mut ew = vec![0f32; k * n];
        for bt in 0..batches {
            for r in 0..m {
                for i in 0..k {
                    for o in 0..n {
                        let g = gv[(bt * m + r) * n + o];
                        ex[(bt * m + r) * k + i] += g * w_at(i, o);
                        let wi = if case == 1 { o * k + i } else { i * n + o };
                        ew[wi] += g * xv[(bt * m + r) * k + i];
                    }
                }
            }
        }
        let recorded = run(case, true);
        assert_eq!(recorded, (ex.clone(), ew.clone()), "case {case}, recorded");
        assert_eq!(run(case, false), recorded, "case {case}, outside a pool");
        for threads in 1..=3 {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let joined = pool.install(|| run(case, false));
            assert_eq!(joined, recorded, "case {case}, {threads} threads");
        }
    }
}

#[test]
fn batched_matmul_gradients_joined_have_the_recorded_bits() {
    // The joined path calls the tensor product on the operands as they
    // are; the recorded one goes through `Var::matmul`. Batched and
    // broadcast operands, a non-contiguous (transposed) left operand and
    // non-integer data: the bits must agree, in pools of 1-3 threads. Each
    // product has well over `join`'s 4.1M multiply-adds.
    let (m, k, n) = (96, 192, 192);
    let vals =
        |len: usize, s: f32| -> Vec<f32> { (0..len).map(|i| ((i as f32) * s).sin()).collect() };
    // (x shape, x transposed before use, w shape)
    let cases: [(&[usize], bool, &[usize]); 3] = [
        (&[2, k, m], true, &[k, n]),
        (&[2, m, k], false, &[2, k, n]),
        (&[2, 1, m, k], false, &[3, k, n]),
    ];
    for (xs, transposed, ws) in cases {
        let xv = vals(xs.iter().product(), 0.37);
        let wv = vals(ws.iter().product(), 0.91);
        let run = |create_graph: bool| -> (Vec<u32>, Vec<u32>) {
            let tape = Tape::new();
            let x = tape.leaf(Tensor::from_vec(xv.clone(), xs).unwrap());
            let w = tape.leaf(Tensor::from_vec(wv.clone(), ws).unwrap());
            let a = if transposed {
                x.t().unwrap()
            } else {
                x.clone()
            };
            let y = a.matmul(&w).unwrap();
            let seed = Tensor::from_vec(vals(y.value().numel(), 0.13), y.shape()).unwrap();
            let opts = BackwardOptions {
                create_graph,
                retain_graph: false,
            };
            let g = tape.backward_opts(&y, Some(&seed), opts).unwrap();
            let bits = |t: &Tensor| -> Vec<u32> {
                t.to_vec::<f32>()
                    .unwrap()
                    .iter()
                    .map(|v| v.to_bits())
                    .collect()
            };
            (bits(g.get(&x).unwrap()), bits(g.get(&w).unwrap()))
        };
        let recorded = run(true);
        assert_eq!(run(false), recorded, "{xs:?} x {ws:?}, outside a pool");
        for threads in 1..=3 {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            assert_eq!(
                pool.install(|| run(false)),
                recorded,
                "{xs:?} x {ws:?}, {threads} threads"
            );
        }
    }
}
