//! Training N steps straight equals training k steps, saving the optimizer
//! (through tensors and string metadata) and the parameter values, building
//! a fresh optimizer and model, loading, and training N − k more: bit for bit.

use heft_autograd::Tape;
use heft_nn::layers::{Activation, Linear};
use heft_nn::{loss, Ctx, Mode, Module, ParamGrads, ParamStore, Sequential};
use heft_optim::{
    clip_grad_norm, Adagrad, AdagradConfig, Adam, AdamConfig, AdamW, Optimizer, OptimizerState,
    ParamGroups, RmsProp, RmsPropConfig, Schedule, Sgd, SgdConfig, WarmupCosine,
};
use heft_tensor::{DType, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const N: usize = 12;
const K: usize = 5;

fn model(seed: u64, dtype: DType) -> (ParamStore, Sequential) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut store = ParamStore::new();
    let m = Sequential::new()
        .add(Linear::new(&mut store, "fc1", 4, 8, &mut rng).unwrap())
        .add(Activation::Tanh)
        .add(Linear::new(&mut store, "fc2", 8, 3, &mut rng).unwrap());
    store.to_dtype(dtype);
    (store, m)
}

fn batch(dtype: DType) -> (Tensor, Tensor) {
    let x: Vec<f64> = (0..24).map(|i| ((i * 7 % 11) as f64 - 5.0) / 3.0).collect();
    let x = Tensor::from_vec(x, &[6, 4]).unwrap().to_dtype(dtype);
    let y = Tensor::from_vec(vec![0i64, 1, 2, 2, 1, 0], &[6]).unwrap();
    (x, y)
}

fn train(
    store: &mut ParamStore,
    m: &Sequential,
    opt: &mut dyn Optimizer,
    steps: std::ops::Range<usize>,
    dtype: DType,
) {
    let sched = WarmupCosine::new(0.05, 3, N, 0.005).unwrap();
    let (x, y) = batch(dtype);
    for step in steps {
        assert_eq!(opt.num_steps(), step as u64);
        let grads = {
            let tape = Tape::new();
            let ctx = Ctx::new(store, &tape, Mode::Train);
            let l =
                loss::cross_entropy(&m.forward(&ctx, &ctx.input(x.clone())).unwrap(), &y).unwrap();
            ctx.backward(&l).unwrap()
        };
        // Every third step fc2.bias gets no gradient, so per-parameter step
        // counts differ from the global one.
        let mut grads = if step % 3 == 2 {
            let skip = store.id("fc2.bias").unwrap();
            let mut g = ParamGrads::new(store.len());
            for (id, t) in grads.iter().filter(|(id, _)| *id != skip) {
                g.set(id, t.clone());
            }
            g
        } else {
            grads
        };
        clip_grad_norm(&mut grads, 1.0).unwrap();
        opt.set_lr(sched.lr_at(step));
        opt.step(store, &grads).unwrap();
    }
}

fn bits(store: &ParamStore) -> Vec<(String, Vec<u64>)> {
    store
        .named_tensors()
        .into_iter()
        .map(|(n, t)| (n, t.to_vec_f64().into_iter().map(f64::to_bits).collect()))
        .collect()
}

fn state_bits(s: &OptimizerState) -> Vec<(String, Vec<u64>)> {
    s.buffers
        .iter()
        .map(|(n, t)| {
            (
                n.clone(),
                t.to_vec_f64().into_iter().map(f64::to_bits).collect(),
            )
        })
        .collect()
}

/// `make(true)` is the optimizer as first configured; `make(false)` a
/// fresh one with other hyperparameters, which `load_state` must overwrite.
fn check_resume(make: &dyn Fn(bool, &ParamStore) -> Box<dyn Optimizer>) {
    for dtype in [DType::F32, DType::F64] {
        // Straight.
        let (mut store, m) = model(1, dtype);
        let mut opt = make(true, &store);
        let kind = opt.kind();
        train(&mut store, &m, opt.as_mut(), 0..N, dtype);
        let straight = bits(&store);
        let straight_state = state_bits(&opt.state());

        // K steps, save.
        let (mut store, m) = model(1, dtype);
        let mut opt = make(true, &store);
        train(&mut store, &m, opt.as_mut(), 0..K, dtype);
        let saved = opt.state();
        let (tensors, meta) = (saved.to_tensors(), saved.metadata());
        let values: Vec<(String, Tensor)> = store
            .named_tensors()
            .into_iter()
            .map(|(n, t)| (n, t.contiguous_copy()))
            .collect();
        drop((store, opt, saved));

        // Fresh model (other initial values) and optimizer, load, go on.
        let (mut store, m) = model(2, dtype);
        assert_ne!(
            bits(&store),
            values
                .iter()
                .map(|(n, t)| (
                    n.clone(),
                    t.to_vec_f64().into_iter().map(f64::to_bits).collect()
                ))
                .collect::<Vec<_>>()
        );
        for (n, t) in values {
            store.set_named(&n, t).unwrap();
        }
        let mut opt = make(false, &store);
        let state = OptimizerState::from_tensors(tensors, &meta).unwrap();
        opt.load_state(&state).unwrap();
        assert_eq!(opt.num_steps(), K as u64, "{kind}");
        train(&mut store, &m, opt.as_mut(), K..N, dtype);

        assert_eq!(bits(&store), straight, "{kind} {dtype}: parameters differ");
        assert_eq!(
            state_bits(&opt.state()),
            straight_state,
            "{kind} {dtype}: state differs"
        );
    }
}

#[test]
fn resume_sgd() {
    check_resume(&|first, store| {
        let cfg = if first {
            SgdConfig::new(0.1)
                .momentum(0.9)
                .nesterov(true)
                .weight_decay(1e-3)
        } else {
            SgdConfig::new(7.0)
        };
        Box::new(
            Sgd::new(cfg)
                .unwrap()
                .with_groups(ParamGroups::decay_split(store, 1e-2)),
        )
    });
}

#[test]
fn resume_adam_amsgrad() {
    check_resume(&|first, _| {
        let cfg = if first {
            AdamConfig::new(0.01)
                .amsgrad(true)
                .weight_decay(1e-3)
                .betas(0.8, 0.99)
        } else {
            AdamConfig::default()
        };
        Box::new(Adam::new(cfg).unwrap())
    });
}

#[test]
fn resume_adamw_with_groups() {
    check_resume(&|first, store| {
        let cfg = if first {
            AdamConfig::adamw(0.01).eps(1e-6)
        } else {
            AdamConfig::new(1.0)
        };
        Box::new(
            AdamW::new(cfg)
                .unwrap()
                .with_groups(ParamGroups::decay_split(store, 0.05)),
        )
    });
}

#[test]
fn resume_rmsprop_centered_momentum() {
    check_resume(&|first, _| {
        let cfg = if first {
            RmsPropConfig::new(0.01)
                .centered(true)
                .momentum(0.5)
                .weight_decay(1e-3)
        } else {
            RmsPropConfig::default()
        };
        Box::new(RmsProp::new(cfg).unwrap())
    });
}

#[test]
fn resume_adagrad() {
    check_resume(&|first, _| {
        let cfg = if first {
            AdagradConfig::new(0.05)
                .lr_decay(0.01)
                .initial_accumulator_value(0.1)
        } else {
            AdagradConfig::default()
        };
        Box::new(Adagrad::new(cfg).unwrap())
    });
}

#[test]
fn state_round_trip_and_bad_states() {
    let (mut store, m) = model(1, DType::F32);
    let mut opt = Adam::new(AdamConfig::new(0.01).amsgrad(true)).unwrap();
    train(&mut store, &m, &mut opt, 0..2, DType::F32);
    let s = opt.state();
    let meta = s.metadata();
    assert!(meta.contains(&("optim.kind".into(), "adam".into())));
    assert!(meta.contains(&("optim.step".into(), "2".into())));
    let names: Vec<&str> = s.buffers.iter().map(|(n, _)| n.as_str()).collect();
    for n in [
        "fc1.weight.exp_avg",
        "fc1.weight.exp_avg_sq",
        "fc1.weight.max_exp_avg_sq",
        "fc2.bias.step",
    ] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    // Another optimizer's state.
    let mut sgd = Sgd::new(SgdConfig::new(0.1)).unwrap();
    assert!(sgd.load_state(&s).unwrap_err().to_string().contains("adam"));
    // Missing buffer: error, and nothing changes.
    let mut fresh = Adam::new(AdamConfig::new(0.5)).unwrap();
    let mut broken = s.clone();
    broken.buffers.retain(|(n, _)| n != "fc1.bias.exp_avg_sq");
    let err = fresh.load_state(&broken).unwrap_err().to_string();
    assert!(err.contains("fc1.bias.exp_avg_sq"), "{err}");
    assert_eq!((fresh.lr(), fresh.num_steps()), (0.5, 0));
    // Unknown buffer.
    let mut broken = s.clone();
    broken
        .buffers
        .push(("fc1.bias.momentum".into(), Tensor::zeros(&[8], DType::F32)));
    assert!(fresh.load_state(&broken).is_err());
    // Missing hyperparameter.
    let mut broken = s.clone();
    broken.hyper.retain(|(k, _)| k != "beta2");
    assert!(fresh
        .load_state(&broken)
        .unwrap_err()
        .to_string()
        .contains("beta2"));
    // Metadata without a kind.
    assert!(OptimizerState::from_tensors(vec![], &[]).is_err());
    // A state whose buffers do not fit the parameters fails at the step.
    let mut broken = s.clone();
    for (n, t) in broken.buffers.iter_mut() {
        if n.starts_with("fc2.bias.") && !n.ends_with(".step") {
            *t = Tensor::zeros(&[5], DType::F32);
        }
    }
    fresh.load_state(&broken).unwrap();
    let before = bits(&store);
    let tape = Tape::new();
    let (x, y) = batch(DType::F32);
    let grads = {
        let ctx = Ctx::new(&store, &tape, Mode::Train);
        let l = loss::cross_entropy(&m.forward(&ctx, &ctx.input(x)).unwrap(), &y).unwrap();
        ctx.backward(&l).unwrap()
    };
    let err = fresh.step(&mut store, &grads).unwrap_err().to_string();
    assert!(err.contains("fc2.bias"), "{err}");
    assert_eq!(bits(&store), before);
}
