//! Skipping, errors, groups, dtypes and copy-on-write.

mod common;

use common::{grads_of, tensor};
use heft_nn::{ParamGrads, ParamKind, ParamStore};
use heft_optim::{
    Adagrad, AdagradConfig, Adam, AdamConfig, AdamW, OptimError, Optimizer, ParamGroup,
    ParamGroups, RmsProp, RmsPropConfig, Sgd, SgdConfig,
};
use heft_tensor::{DType, Tensor};

fn all_optimizers() -> Vec<Box<dyn Optimizer>> {
    vec![
        Box::new(Sgd::new(SgdConfig::new(0.1).momentum(0.9).weight_decay(0.1)).unwrap()),
        Box::new(Adam::new(AdamConfig::new(0.1).weight_decay(0.1).amsgrad(true)).unwrap()),
        Box::new(AdamW::new(AdamConfig::adamw(0.1)).unwrap()),
        Box::new(
            RmsProp::new(
                RmsPropConfig::new(0.1)
                    .momentum(0.9)
                    .centered(true)
                    .weight_decay(0.1),
            )
            .unwrap(),
        ),
        Box::new(Adagrad::new(AdagradConfig::new(0.1).weight_decay(0.1)).unwrap()),
    ]
}

#[test]
fn frozen_and_gradless_params_are_untouched() {
    for dt in [DType::F32, DType::F64] {
        for mut opt in all_optimizers() {
            let mut store = ParamStore::new();
            let a = store
                .add("a", tensor(&[1.0, 2.0], dt), ParamKind::Weight)
                .unwrap();
            let frozen = store
                .add("frozen", tensor(&[3.0, 4.0], dt), ParamKind::Weight)
                .unwrap();
            let nograd = store
                .add("nograd", tensor(&[5.0], dt), ParamKind::Bias)
                .unwrap();
            store.set_trainable(frozen, false);
            let g = grads_of(
                store.len(),
                &[
                    (a, tensor(&[0.5, -0.5], dt)),
                    (frozen, tensor(&[1.0, 1.0], dt)),
                ],
            );
            for _ in 0..3 {
                opt.step(&mut store, &g).unwrap();
            }
            let kind = opt.kind();
            assert_ne!(store.value(a).to_vec_f64(), vec![1.0, 2.0], "{kind}");
            assert_eq!(store.value(frozen).to_vec_f64(), vec![3.0, 4.0], "{kind}");
            assert_eq!(store.value(nograd).to_vec_f64(), vec![5.0], "{kind}");
            // No state is created for skipped parameters.
            let st = opt.state();
            assert!(
                st.buffers.iter().all(|(n, _)| n.starts_with("a.")),
                "{kind}"
            );
            assert!(st.buffer("a.step").is_some(), "{kind}");
        }
    }
}

#[test]
fn mismatched_gradients_are_errors_naming_the_param_and_change_nothing() {
    for mut opt in all_optimizers() {
        let mut store = ParamStore::new();
        let a = store
            .add("enc.a", tensor(&[1.0, 2.0], DType::F32), ParamKind::Weight)
            .unwrap();
        let b = store
            .add("enc.b", tensor(&[1.0, 2.0], DType::F32), ParamKind::Weight)
            .unwrap();
        // Shape.
        let g = grads_of(
            2,
            &[
                (a, tensor(&[0.5, 0.5], DType::F32)),
                (b, tensor(&[0.5, 0.5, 0.5], DType::F32)),
            ],
        );
        let err = opt.step(&mut store, &g).unwrap_err();
        assert!(matches!(err, OptimError::GradMismatch { .. }));
        let msg = err.to_string();
        assert!(
            msg.contains("enc.b") && msg.contains("[3]") && msg.contains("[2]"),
            "{msg}"
        );
        assert_eq!(
            store.value(a).to_vec_f64(),
            vec![1.0, 2.0],
            "first param untouched"
        );
        // Dtype.
        let g = grads_of(2, &[(b, tensor(&[0.5, 0.5], DType::F64))]);
        let msg = opt.step(&mut store, &g).unwrap_err().to_string();
        assert!(
            msg.contains("enc.b") && msg.contains("f64") && msg.contains("f32"),
            "{msg}"
        );
        assert_eq!(opt.num_steps(), 0);
        assert!(opt.state().buffers.is_empty());
    }
}

#[test]
fn storage_only_dtypes_are_rejected() {
    let mut store = ParamStore::new();
    let a = store
        .add("h", tensor(&[1.0], DType::F16), ParamKind::Weight)
        .unwrap();
    let g = grads_of(1, &[(a, tensor(&[1.0], DType::F16))]);
    let mut opt = Sgd::new(SgdConfig::new(0.1)).unwrap();
    let err = opt.step(&mut store, &g).unwrap_err();
    assert!(matches!(err, OptimError::UnsupportedDType { ref param, .. } if param == "h"));
}

#[test]
fn invalid_configs_are_rejected() {
    assert!(Sgd::new(SgdConfig::new(0.1).nesterov(true)).is_err());
    assert!(Sgd::new(
        SgdConfig::new(0.1)
            .momentum(0.9)
            .dampening(0.1)
            .nesterov(true)
    )
    .is_err());
    assert!(Sgd::new(SgdConfig::new(-0.1)).is_err());
    assert!(Sgd::new(SgdConfig::new(f64::NAN)).is_err());
    assert!(Adam::new(AdamConfig::new(0.1).betas(1.0, 0.999)).is_err());
    assert!(AdamW::new(AdamConfig::new(0.1).eps(-1.0)).is_err());
    assert!(RmsProp::new(RmsPropConfig::new(0.1).alpha(-0.5)).is_err());
    assert!(Adagrad::new(AdagradConfig::new(0.1).lr_decay(-1.0)).is_err());
    let msg = Sgd::new(SgdConfig::new(0.1).nesterov(true))
        .unwrap_err()
        .to_string();
    assert!(msg.starts_with("sgd: "), "{msg}");
}

#[test]
fn non_contiguous_gradients_work() {
    let mut store = ParamStore::new();
    let p = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
    let a = store.add("a", p, ParamKind::Weight).unwrap();
    let gt = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0], &[3, 2]).unwrap();
    let g = gt.t().unwrap();
    assert!(!g.is_contiguous());
    let mut opt = Sgd::new(SgdConfig::new(1.0)).unwrap();
    opt.step(&mut store, &grads_of(1, &[(a, g.clone())]))
        .unwrap();
    // g = [[1, 3, 5], [2, 4, 6]].
    assert_eq!(
        store.value(a).to_vec::<f64>().unwrap(),
        vec![0.0, -1.0, -2.0, 2.0, 1.0, 0.0]
    );
}

#[test]
fn shared_values_are_copied_on_write() {
    let mut store = ParamStore::new();
    let a = store
        .add("a", tensor(&[1.0, 2.0], DType::F32), ParamKind::Weight)
        .unwrap();
    let snapshot = store.value(a).clone();
    let mut opt = Sgd::new(SgdConfig::new(1.0)).unwrap();
    opt.step(
        &mut store,
        &grads_of(1, &[(a, tensor(&[1.0, 1.0], DType::F32))]),
    )
    .unwrap();
    assert_eq!(snapshot.to_vec::<f32>().unwrap(), vec![1.0, 2.0]);
    assert_eq!(store.value(a).to_vec::<f32>().unwrap(), vec![0.0, 1.0]);
    // A state snapshot does not move when the optimizer steps on.
    let mut opt = Adam::new(AdamConfig::new(0.1)).unwrap();
    let g = grads_of(1, &[(a, tensor(&[1.0, 1.0], DType::F32))]);
    opt.step(&mut store, &g).unwrap();
    let st = opt.state();
    let before = st.buffer("a.exp_avg").unwrap().to_vec::<f32>().unwrap();
    opt.step(&mut store, &g).unwrap();
    assert_eq!(
        st.buffer("a.exp_avg").unwrap().to_vec::<f32>().unwrap(),
        before
    );
    assert_ne!(
        opt.state()
            .buffer("a.exp_avg")
            .unwrap()
            .to_vec::<f32>()
            .unwrap(),
        before
    );
}

#[test]
fn decay_split_spares_biases_and_norm_scales() {
    let mut store = ParamStore::new();
    let w = store
        .add(
            "fc.weight",
            tensor(&[1.0, -1.0], DType::F64),
            ParamKind::Weight,
        )
        .unwrap();
    let b = store
        .add("fc.bias", tensor(&[1.0], DType::F64), ParamKind::Bias)
        .unwrap();
    let s = store
        .add("norm.scale", tensor(&[1.0], DType::F64), ParamKind::Other)
        .unwrap();
    let zeros = grads_of(
        3,
        &[
            (w, tensor(&[0.0, 0.0], DType::F64)),
            (b, tensor(&[0.0], DType::F64)),
            (s, tensor(&[0.0], DType::F64)),
        ],
    );
    // SGD: the config's decay is overridden per group.
    let mut opt = Sgd::new(SgdConfig::new(0.5).weight_decay(0.3))
        .unwrap()
        .with_groups(ParamGroups::decay_split(&store, 0.1));
    opt.step(&mut store, &zeros).unwrap();
    // θ ← θ − 0.5 (0 + 0.1 θ) = 0.95 θ for the weight only.
    assert_eq!(
        store.value(w).to_vec::<f64>().unwrap(),
        vec![1.0 - 0.5 * 0.1, -1.0 + 0.5 * 0.1]
    );
    assert_eq!(store.value(b).to_vec::<f64>().unwrap(), vec![1.0]);
    assert_eq!(store.value(s).to_vec::<f64>().unwrap(), vec![1.0]);
}

#[test]
fn group_lr_multipliers_follow_set_lr() {
    let mut store = ParamStore::new();
    let a = store
        .add("a", tensor(&[0.0], DType::F64), ParamKind::Weight)
        .unwrap();
    let b = store
        .add("b", tensor(&[0.0], DType::F64), ParamKind::Weight)
        .unwrap();
    let c = store
        .add("c", tensor(&[0.0], DType::F64), ParamKind::Weight)
        .unwrap();
    let groups = ParamGroups::new()
        .with(ParamGroup::new(vec![a]).with_lr_mult(0.5))
        // `a` again: the first group wins.
        .with(ParamGroup::new(vec![a, b]).with_lr_mult(2.0));
    let mut opt = Sgd::new(SgdConfig::new(1.0)).unwrap().with_groups(groups);
    let ones = |store: &ParamStore| {
        let mut g = ParamGrads::new(store.len());
        for id in store.ids() {
            g.set(id, tensor(&[1.0], DType::F64));
        }
        g
    };
    let g = ones(&store);
    opt.step(&mut store, &g).unwrap();
    opt.set_lr(0.25);
    assert_eq!(opt.lr(), 0.25);
    opt.step(&mut store, &g).unwrap();
    assert_eq!(store.value(a).to_vec_f64(), vec![-0.5 - 0.125]);
    assert_eq!(store.value(b).to_vec_f64(), vec![-2.0 - 0.5]);
    assert_eq!(store.value(c).to_vec_f64(), vec![-1.0 - 0.25]);
}

#[test]
fn adagrad_lr_decay_counts_per_param_steps() {
    // A parameter that misses a step keeps its own step count.
    let mut store = ParamStore::new();
    let a = store
        .add("a", tensor(&[0.0], DType::F64), ParamKind::Weight)
        .unwrap();
    let b = store
        .add("b", tensor(&[0.0], DType::F64), ParamKind::Weight)
        .unwrap();
    let mut opt = Adagrad::new(AdagradConfig::new(1.0).lr_decay(1.0).eps(0.0)).unwrap();
    let g1 = tensor(&[1.0], DType::F64);
    opt.step(&mut store, &grads_of(2, &[(a, g1.clone())]))
        .unwrap();
    opt.step(
        &mut store,
        &grads_of(2, &[(a, g1.clone()), (b, g1.clone())]),
    )
    .unwrap();
    let st = opt.state();
    assert_eq!(
        st.buffer("a.step").unwrap().to_vec::<i64>().unwrap(),
        vec![2]
    );
    assert_eq!(
        st.buffer("b.step").unwrap().to_vec::<i64>().unwrap(),
        vec![1]
    );
    assert_eq!(st.step, 2);
    // a: −1/1 then −(1/2)/√2; b: −1/1 (its first step).
    let ea = -1.0 - 0.5 / 2f64.sqrt();
    assert!((store.value(a).to_vec_f64()[0] - ea).abs() < 1e-15);
    assert_eq!(store.value(b).to_vec_f64(), vec![-1.0]);
}

/// A parameter large enough to be updated in chunks over the rayon pool
/// (`PAR_MIN_ELEMS` is 32K elements) gets bit-identical values, moments and
/// all, on one thread (one unsplit loop) and on two (split into chunks):
/// the update rules are elementwise. The odd length puts a partial chunk
/// and a vector-loop tail at the end.
#[test]
fn large_parameters_update_identically_on_one_and_two_threads() {
    let n = 100_003;
    let p0: Vec<f64> = (0..n)
        .map(|i| ((i * 37 % 101) as f64 - 50.0) / 25.0)
        .collect();
    let grads: Vec<Vec<f64>> = (0..3)
        .map(|s| {
            (0..n)
                .map(|i| ((i * 13 + s * 7) % 61) as f64 / 30.0 - 1.0)
                .collect()
        })
        .collect();
    for dt in [DType::F32, DType::F64] {
        let mut per_threads = Vec::new();
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let runs: Vec<Vec<Vec<u64>>> = pool.install(|| {
                all_optimizers()
                    .into_iter()
                    .map(|mut opt| {
                        common::run(opt.as_mut(), &p0, &grads, dt)
                            .iter()
                            .map(|v| v.iter().map(|x| x.to_bits()).collect())
                            .collect()
                    })
                    .collect()
            });
            per_threads.push(runs);
        }
        for (k, (one, two)) in per_threads[0].iter().zip(&per_threads[1]).enumerate() {
            // Every step really moved the parameter (the comparison is not
            // between two untouched copies).
            assert_ne!(one[2], one[1], "optimizer {k} {dt:?}");
            assert!(one == two, "optimizer {k} {dt:?}: 1 and 2 threads differ");
        }
    }
}
