//! The code of docs/guide.md's second half, run as a test (keep them in sync).

use heft::nn::io::{LoadOptions, SaveDType};
use heft::optim::checkpoint;
use heft::optim::{ParamGroups, Schedule, WarmupCosine};
use heft::prelude::*;
use rand::SeedableRng;

#[test]
fn guide_training_saving_resuming_finetuning() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("heft-guide-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (path, ckpt, merged) = (
        dir.join("m.safetensors"),
        dir.join("ckpt.safetensors"),
        dir.join("merged.safetensors"),
    );

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut store = ParamStore::new();
    let fc1 = Linear::new(&mut store, "fc1", 4, 16, &mut rng)?;
    let fc2 = Linear::new(&mut store, "fc2", 16, 3, &mut rng)?;
    let model = Sequential::new()
        .add(fc1)
        .add(Activation::Relu(None))
        .add(fc2);

    let groups = ParamGroups::decay_split(&store, 0.01);
    let mut opt = AdamW::new(AdamConfig::adamw(3e-3))?.with_groups(groups);
    let schedule = WarmupCosine::new(3e-3, 10, 200, 0.0)?;

    let x = Tensor::randn(&[32, 4], 0.0, 1.0, DType::F32, &mut rng)?;
    let y = Tensor::from_vec((0..32).map(|i| (i % 3) as i64).collect::<Vec<_>>(), &[32])?;
    let mut first = None;
    let mut last = 0.0;
    for step in 0..200 {
        opt.set_lr(schedule.lr_at(step));
        let tape = Tape::new();
        let mut grads = {
            let ctx = Ctx::new(&store, &tape, Mode::Train);
            let loss = loss::cross_entropy(&model.forward(&ctx, &ctx.input(x.clone()))?, &y)?;
            last = loss.value().item::<f32>()?;
            first.get_or_insert(last);
            ctx.backward(&loss)?
        };
        clip_grad_norm(&mut grads, 1.0)?;
        opt.step(&mut store, &grads)?;
    }
    assert!(last < first.unwrap() * 0.8, "{first:?} -> {last}");

    store.save_safetensors(
        &path,
        SaveDType::F16,
        "mlp:4-16-3",
        &[("note".into(), "guide".into())],
    )?;
    let mut rng2 = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let mut loaded = ParamStore::new();
    let _ = Linear::new(&mut loaded, "fc1", 4, 16, &mut rng2)?;
    let _ = Linear::new(&mut loaded, "fc2", 16, 3, &mut rng2)?;
    let report = loaded.load_safetensors(&path, LoadOptions::default())?;
    assert!(report.is_exact());
    assert_eq!(report.metadata["note"], "guide");

    let rng_state = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    checkpoint::save(&ckpt, &store, &opt, 200, Some(&rng_state), &[])?;
    let mut opt2 = AdamW::new(AdamConfig::adamw(1.0))?;
    let resumed = checkpoint::load(&ckpt, &mut loaded, &mut opt2)?;
    assert_eq!(resumed.step, 200);
    assert_eq!(opt2.lr(), opt.lr());

    loaded.freeze_prefix("fc1.");
    let _head = Linear::new(&mut loaded, "head", 16, 5, &mut rng2)?;
    let c = loaded.counts();
    assert_eq!(c.frozen, 4 * 16 + 16);
    assert_eq!(c.trainable, 16 * 3 + 3 + 16 * 5 + 5);

    let mut ft = ParamStore::new();
    let base = Linear::new(&mut ft, "fc", 16, 16, &mut rng2)?;
    let lora = LoraLinear::wrap(&mut ft, base, "fc", 4, 8.0, &mut rng2)?;
    assert_eq!(ft.counts().trainable, 4 * 16 + 16 * 4);
    lora.merge(&mut ft)?;
    let adapters = lora.adapter_names(&ft);
    ft.save_safetensors_filtered(&merged, SaveDType::F32, "linear:16-16", &[], |n| {
        !adapters.iter().any(|a| a == n)
    })?;
    assert_eq!(heft::nn::io::read_header(&merged)?.tensors.len(), 2);
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

type BoxErr = Box<dyn std::error::Error + Send + Sync>;

/// docs/guide.md, "Threads": the training loop run inside a rayon pool.
fn guide_threads_losses(threads: usize) -> Result<Vec<f32>, BoxErr> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut store = ParamStore::new();
    let model = Sequential::new()
        .add(Linear::new(&mut store, "fc1", 784, 256, &mut rng)?)
        .add(Activation::Relu(None))
        .add(Linear::new(&mut store, "fc2", 256, 10, &mut rng)?);
    let mut opt = Sgd::new(SgdConfig::new(0.05))?;
    let x = Tensor::randn(&[64, 784], 0.0, 1.0, DType::F32, &mut rng)?;
    let y = Tensor::from_vec((0..64).map(|i| i % 10).collect::<Vec<i64>>(), &[64])?;

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let losses = pool.install(
        || -> Result<Vec<f32>, Box<dyn std::error::Error + Send + Sync>> {
            let mut losses = Vec::new();
            for _ in 0..20 {
                let tape = Tape::new();
                let grads = {
                    let ctx = Ctx::new(&store, &tape, Mode::Train);
                    let loss =
                        loss::cross_entropy(&model.forward(&ctx, &ctx.input(x.clone()))?, &y)?;
                    losses.push(loss.value().item::<f32>()?);
                    ctx.backward(&loss)?
                };
                opt.step(&mut store, &grads)?;
            }
            Ok(losses)
        },
    )?;
    Ok(losses)
}

#[test]
fn guide_threads_training_inside_the_pool() -> Result<(), BoxErr> {
    let two = guide_threads_losses(2)?;
    // Training on random labels still drives the loss down (from ~ln 10).
    assert!(two[0] > 1.5 && two[19] < 0.8 * two[0], "{two:?}");
    // The same run on one thread gives the same losses, bit for bit (on two,
    // the 64x256x784 products are split over the threads and so is the
    // update of the 200K-element weight).
    let one = guide_threads_losses(1)?;
    assert!(
        one.iter()
            .zip(&two)
            .all(|(a, b)| a.to_bits() == b.to_bits()),
        "{one:?} vs {two:?}"
    );
    Ok(())
}
