//! Resume from a checkpoint file equals uninterrupted training, bit for bit.

use heft_autograd::Tape;
use heft_nn::layers::{Activation, Dropout, Linear};
use heft_nn::{loss, Ctx, Mode, Module, ParamStore, Sequential};
use heft_optim::{checkpoint, AdamConfig, AdamW, Optimizer};
use heft_tensor::{DType, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn model(seed: u64) -> (ParamStore, Sequential) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut store = ParamStore::new();
    let m = Sequential::new()
        .add(Linear::new(&mut store, "fc1", 4, 16, &mut rng).unwrap())
        .add(Activation::Relu(None))
        .add(Dropout::new(0.25).unwrap())
        .add(Linear::new(&mut store, "fc2", 16, 3, &mut rng).unwrap());
    (store, m)
}

fn data() -> (Tensor, Vec<i64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let x = Tensor::randn(&[64, 4], 0.0, 1.0, DType::F32, &mut rng).unwrap();
    let y = (0..64).map(|i| (i % 3) as i64).collect();
    (x, y)
}

/// One step: the RNG picks the batch and seeds dropout, so its state matters.
fn step(
    store: &mut ParamStore,
    m: &Sequential,
    opt: &mut AdamW,
    rng: &mut ChaCha8Rng,
    x: &Tensor,
    y: &[i64],
) -> f32 {
    let idx: Vec<i64> = (0..16).map(|_| rng.random_range(0..64)).collect();
    let xb = x
        .index_select(0, &Tensor::from_vec(idx.clone(), &[16]).unwrap())
        .unwrap();
    let yb = Tensor::from_vec(
        idx.iter().map(|&i| y[i as usize]).collect::<Vec<_>>(),
        &[16],
    )
    .unwrap();
    let tape = Tape::new();
    let grads;
    let l;
    {
        let ctx = Ctx::with_seed(store, &tape, Mode::Train, rng.random());
        let out = m.forward(&ctx, &ctx.input(xb)).unwrap();
        let lv = loss::cross_entropy(&out, &yb).unwrap();
        l = lv.value().item::<f32>().unwrap();
        grads = ctx.backward(&lv).unwrap();
    }
    opt.step(store, &grads).unwrap();
    l
}

#[test]
fn resume_equals_uninterrupted_bit_for_bit() {
    let (x, y) = data();
    // Straight through: 10 steps.
    let (mut s1, m1) = model(1);
    let mut o1 = AdamW::new(AdamConfig::adamw(0.01)).unwrap();
    let mut r1 = ChaCha8Rng::seed_from_u64(7);
    let losses1: Vec<f32> = (0..10)
        .map(|_| step(&mut s1, &m1, &mut o1, &mut r1, &x, &y))
        .collect();

    // 4 steps, checkpoint, then a fresh process-like start: different init, different optimizer settings.
    let (mut s2, m2) = model(1);
    let mut o2 = AdamW::new(AdamConfig::adamw(0.01)).unwrap();
    let mut r2 = ChaCha8Rng::seed_from_u64(7);
    let mut losses2: Vec<f32> = (0..4)
        .map(|_| step(&mut s2, &m2, &mut o2, &mut r2, &x, &y))
        .collect();
    let dir = std::env::temp_dir().join(format!("heft-ckpt-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ckpt.safetensors");
    checkpoint::save(
        &path,
        &s2,
        &o2,
        4,
        Some(&r2),
        &[("note".into(), "test".into())],
    )
    .unwrap();
    drop((s2, o2, r2));

    let (mut s3, m3) = model(12345);
    let mut o3 = AdamW::new(AdamConfig::adamw(0.5)).unwrap();
    let loaded = checkpoint::load(&path, &mut s3, &mut o3).unwrap();
    assert_eq!(loaded.step, 4);
    assert_eq!(loaded.metadata["note"], "test");
    let mut r3 = loaded.rng.unwrap();
    losses2.extend((0..6).map(|_| step(&mut s3, &m3, &mut o3, &mut r3, &x, &y)));

    assert_eq!(
        losses1.iter().map(|l| l.to_bits()).collect::<Vec<_>>(),
        losses2.iter().map(|l| l.to_bits()).collect::<Vec<_>>()
    );
    for ((_, a), (_, b)) in s1.iter().zip(s3.iter()) {
        let (va, vb) = (
            a.value.to_vec::<f32>().unwrap(),
            b.value.to_vec::<f32>().unwrap(),
        );
        assert!(
            va.iter().zip(&vb).all(|(p, q)| p.to_bits() == q.to_bits()),
            "{}",
            a.name
        );
    }
    // The run actually learned something (so the comparison is not of constants).
    assert!(losses1[9] < losses1[0]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_bad_checkpoint_changes_nothing() {
    let dir = std::env::temp_dir().join(format!("heft-ckpt-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ckpt.safetensors");
    let (s, _) = model(1);
    let o = AdamW::new(AdamConfig::adamw(0.01)).unwrap();
    checkpoint::save(&path, &s, &o, 3, None, &[]).unwrap();
    // A model with a different shape: strict load fails and leaves both untouched.
    let mut other = ParamStore::new();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let _ = Linear::new(&mut other, "fc1", 4, 8, &mut rng).unwrap();
    let before = other.snapshot();
    let mut o2 = AdamW::new(AdamConfig::adamw(0.3)).unwrap();
    let e = checkpoint::load(&path, &mut other, &mut o2)
        .unwrap_err()
        .to_string();
    assert!(e.contains("wrong shape: fc1.weight"), "{e}");
    assert_eq!(o2.lr(), 0.3);
    assert!(other
        .snapshot()
        .iter()
        .zip(&before)
        .all(|(a, b)| a.equal(b)));
    // A plain model file is not a checkpoint.
    s.save_safetensors(
        &dir.join("model.safetensors"),
        heft_nn::io::SaveDType::F32,
        "x",
        &[],
    )
    .unwrap();
    let e = checkpoint::load(&dir.join("model.safetensors"), &mut other, &mut o2)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a heft checkpoint"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}
