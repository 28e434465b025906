//! `heft train`: initialise, train by backprop, evaluate, save.

use crate::data::{self, Dataset, Standardizer};
use crate::error::{err, Result};
use crate::model::{self, Mlp};
use clap::{Args, ValueEnum};
use heft::autograd::Tape;
use heft::nn::{loss, Ctx, Mode, Module, ParamStore};
use heft::optim::{
    Adam, AdamConfig, AdamW, CosineAnnealing, Optimizer, ParamGroups, Schedule, Sgd, SgdConfig,
};
use heft::tensor::Tensor;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde_json::json;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::time::Instant;

/// The optimizers `--optimizer` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OptKind {
    /// Plain SGD (weight decay as L2).
    Sgd,
    /// SGD with momentum 0.9 (weight decay as L2).
    Momentum,
    /// Adam (weight decay as L2).
    Adam,
    /// AdamW (decoupled weight decay, not applied to biases).
    Adamw,
}

impl OptKind {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            OptKind::Sgd => "sgd",
            OptKind::Momentum => "momentum",
            OptKind::Adam => "adam",
            OptKind::Adamw => "adamw",
        }
    }

    /// The learning rate used when `--lr` is not given.
    pub fn default_lr(self) -> f64 {
        match self {
            OptKind::Sgd => 0.1,
            OptKind::Momentum => 0.02,
            OptKind::Adam | OptKind::Adamw => 1e-2,
        }
    }

    /// The weight decay used when `--weight-decay` is not given.
    pub fn default_weight_decay(self) -> f64 {
        match self {
            OptKind::Adamw => 0.3,
            _ => 1e-4,
        }
    }
}

/// Options of `heft train`.
#[derive(Args, Debug)]
#[command(after_help = "\
The default run trains an MLP 64-128-64-10 on the embedded digits data (1797 \
8x8 images, UCI, CC BY 4.0) with a stratified 80/20 split, inputs standardised \
with the training split's statistics (stored in the model file). The learning \
rate follows a cosine decay from --lr to 0 over the run; weight decay is never \
applied to biases.")]
pub struct TrainArgs {
    /// CSV file: numeric features, the label (class id 0, 1, ...) in the last
    /// column; a header row is detected and skipped. Default: the embedded digits data.
    #[arg(long, value_name = "FILE.csv")]
    pub data: Option<PathBuf>,
    /// Hidden layer widths, comma-separated.
    #[arg(long, default_value = "128,64", value_name = "N,N,...")]
    pub hidden: String,
    /// Passes over the training split.
    #[arg(long, default_value_t = 30)]
    pub epochs: usize,
    /// Rows per step.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Peak learning rate [default: 0.01 for adam/adamw, 0.1 for sgd, 0.02 for momentum].
    #[arg(long)]
    pub lr: Option<f64>,
    /// Optimizer.
    #[arg(long, value_enum, default_value_t = OptKind::Adamw)]
    pub optimizer: OptKind,
    /// Weight decay (decoupled for adamw, L2 otherwise; biases never decay)
    /// [default: 0.3 for adamw, 1e-4 otherwise].
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Seed of the split, the initial weights and the shuffling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Share of each class held out for testing.
    #[arg(long, default_value_t = 0.2, value_name = "SHARE")]
    pub test_share: f64,
    /// Model file to write (safetensors, f32).
    #[arg(long, default_value = "model.safetensors", value_name = "FILE")]
    pub out: PathBuf,
    /// Also draw the loss and accuracy curves into this PNG.
    #[arg(long, value_name = "FILE.png")]
    pub plot: Option<PathBuf>,
    /// Also write the test split (raw features, label last) as CSV, for `heft eval`.
    #[arg(long, value_name = "FILE.csv")]
    pub save_test: Option<PathBuf>,
    /// Print one JSON object at the end instead of the summary.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// One epoch's numbers.
#[derive(Clone, Copy, Debug)]
pub struct EpochStats {
    /// Mean training loss over the epoch's steps (weighted by rows).
    pub loss: f64,
    /// Share of training rows classified right during the epoch (before each step's update).
    pub train_acc: f64,
    /// Test accuracy after the epoch.
    pub test_acc: f64,
}

fn parse_hidden(s: &str) -> Result<Vec<usize>> {
    let s = s.trim();
    if s.is_empty() || s == "none" {
        return Ok(Vec::new());
    }
    s.split(',')
        .map(|t| {
            t.trim()
                .parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| err(format!("--hidden: `{t}` is not a positive layer width")))
        })
        .collect()
}

/// The one place the optimizer is chosen.
fn make_optimizer(
    kind: OptKind,
    lr: f64,
    weight_decay: f64,
    store: &ParamStore,
) -> Result<Box<dyn Optimizer>> {
    // Biases (and any other non-weight) train without decay.
    let groups = ParamGroups::decay_split(store, weight_decay);
    Ok(match kind {
        OptKind::Sgd => {
            Box::new(Sgd::new(SgdConfig::new(lr).weight_decay(weight_decay))?.with_groups(groups))
        }
        OptKind::Momentum => Box::new(
            Sgd::new(SgdConfig::new(lr).momentum(0.9).weight_decay(weight_decay))?
                .with_groups(groups),
        ),
        OptKind::Adam => {
            Box::new(Adam::new(AdamConfig::new(lr).weight_decay(weight_decay))?.with_groups(groups))
        }
        OptKind::Adamw => Box::new(
            AdamW::new(AdamConfig::adamw(lr).weight_decay(weight_decay))?.with_groups(groups),
        ),
    })
}

fn to_tensor(d: &Dataset) -> Result<Tensor> {
    Ok(Tensor::from_vec(d.x.clone(), &[d.rows(), d.features])?)
}

fn accuracy(pred: &[i64], y: &[i64]) -> f64 {
    let right = pred.iter().zip(y).filter(|(p, t)| p == t).count();
    right as f64 / y.len().max(1) as f64
}

/// Run `heft train`.
pub fn run(a: TrainArgs) -> Result<()> {
    if a.epochs == 0 {
        return Err(err("--epochs must be at least 1"));
    }
    if a.batch_size == 0 {
        return Err(err("--batch-size must be at least 1"));
    }
    if !(a.test_share > 0.0 && a.test_share < 1.0) {
        return Err(err("--test-share must be between 0 and 1"));
    }
    let lr = a.lr.unwrap_or(a.optimizer.default_lr());
    if !(lr.is_finite() && lr > 0.0) {
        return Err(err(format!("--lr must be positive, got {lr}")));
    }
    let weight_decay = a.weight_decay.unwrap_or(a.optimizer.default_weight_decay());
    if !(weight_decay.is_finite() && weight_decay >= 0.0) {
        return Err(err("--weight-decay must be zero or positive"));
    }
    let hidden = parse_hidden(&a.hidden)?;
    let data = match &a.data {
        Some(p) => data::read_csv(p)?,
        None => data::digits()?,
    };
    let classes = data.classes();
    if classes < 2 {
        return Err(err(format!("{}: need at least two classes", data.source)));
    }

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed);
    let (tr_idx, te_idx) = data::stratified_split(&data.y, a.test_share, &mut rng);
    if te_idx.is_empty() || tr_idx.is_empty() {
        return Err(err(format!(
            "{}: too few rows ({}) for a train/test split",
            data.source,
            data.rows()
        )));
    }
    let train_raw = data.select(&tr_idx);
    let test_raw = data.select(&te_idx);
    let pre = Standardizer::fit(&train_raw);
    let mut train = train_raw.clone();
    pre.apply(&mut train.x);
    let mut test = test_raw.clone();
    pre.apply(&mut test.x);
    let test_x = to_tensor(&test)?;

    let mut sizes = vec![data.features];
    sizes.extend(&hidden);
    sizes.push(classes);
    let mut store = ParamStore::new();
    let mlp = Mlp::new(&mut store, &sizes, &mut rng)?;
    let counts = store.counts();

    let mut opt = make_optimizer(a.optimizer, lr, weight_decay, &store)?;
    let steps_per_epoch = train.rows().div_ceil(a.batch_size);
    let total_steps = steps_per_epoch * a.epochs;
    let schedule = CosineAnnealing::new(lr, total_steps, 0.0)?;

    let show_bar = !a.quiet && std::io::stderr().is_terminal();
    let style = ProgressStyle::with_template("epoch {prefix:>7} [{bar:24}] {pos:>4}/{len:4} {msg}")
        .map_err(|e| err(e.to_string()))?
        .progress_chars("=> ");

    let d = train.features;
    let mut order: Vec<usize> = (0..train.rows()).collect();
    let mut history: Vec<EpochStats> = Vec::with_capacity(a.epochs);
    let mut step = 0usize;
    let mut xb: Vec<f32> = Vec::with_capacity(a.batch_size * d);
    let start = Instant::now();
    for epoch in 0..a.epochs {
        let bar = if show_bar {
            ProgressBar::with_draw_target(
                Some(steps_per_epoch as u64),
                ProgressDrawTarget::stderr(),
            )
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(style.clone());
        bar.set_prefix(format!("{}/{}", epoch + 1, a.epochs));
        order.shuffle(&mut rng);
        let (mut loss_sum, mut right, mut seen) = (0f64, 0usize, 0usize);
        for batch in order.chunks(a.batch_size) {
            xb.clear();
            let mut yb = Vec::with_capacity(batch.len());
            for &i in batch {
                xb.extend_from_slice(&train.x[i * d..(i + 1) * d]);
                yb.push(train.y[i]);
            }
            let x = Tensor::from_vec(xb.clone(), &[batch.len(), d])?;
            let y = Tensor::from_vec(yb.clone(), &[batch.len()])?;
            opt.set_lr(schedule.lr_at(step));
            let grads = {
                let tape = Tape::new();
                let ctx = Ctx::new(&store, &tape, Mode::Train);
                let logits = mlp.forward(&ctx, &ctx.input(x))?;
                let l = loss::cross_entropy(&logits, &y)?;
                let lv = l.value().to_scalar_f64()?;
                if !lv.is_finite() {
                    return Err(err(format!(
                        "training diverged at epoch {}, step {}: loss is {lv} (try a smaller --lr)",
                        epoch + 1,
                        step + 1
                    )));
                }
                loss_sum += lv * batch.len() as f64;
                let pred = logits.value().argmax(1, false)?.to_vec::<i64>()?;
                right += pred.iter().zip(&yb).filter(|(p, t)| p == t).count();
                seen += batch.len();
                ctx.backward(&l)?
            }; // tape and ctx dropped: the update writes in place
            opt.step(&mut store, &grads)?;
            step += 1;
            bar.inc(1);
            if step.is_multiple_of(8) {
                bar.set_message(format!(
                    "loss {:.4}  acc {:5.1}%",
                    loss_sum / seen as f64,
                    100.0 * right as f64 / seen as f64
                ));
            }
        }
        let test_acc = accuracy(&model::predict(&store, &mlp, &test_x)?, &test.y);
        let st = EpochStats {
            loss: loss_sum / seen as f64,
            train_acc: right as f64 / seen as f64,
            test_acc,
        };
        bar.finish_with_message(format!(
            "loss {:.4}  acc {:5.1}%  test {:5.1}%",
            st.loss,
            100.0 * st.train_acc,
            100.0 * st.test_acc
        ));
        history.push(st);
    }
    let train_seconds = start.elapsed().as_secs_f64();
    let last = *history.last().expect("at least one epoch");

    // Save: parameters, the standardisation, and how it was made.
    model::add_preprocess(&mut store, &pre)?;
    let extra = vec![
        ("classes".to_string(), classes.to_string()),
        ("optimizer".to_string(), a.optimizer.name().to_string()),
        ("lr".to_string(), lr.to_string()),
        ("weight_decay".to_string(), weight_decay.to_string()),
        ("epochs".to_string(), a.epochs.to_string()),
        ("batch_size".to_string(), a.batch_size.to_string()),
        ("seed".to_string(), a.seed.to_string()),
        ("data".to_string(), data.source.clone()),
        ("test_accuracy".to_string(), format!("{:.6}", last.test_acc)),
        (
            "preprocess".to_string(),
            format!("standardize: x' = (x - {}) / {}", model::MEAN, model::STD),
        ),
    ];
    model::save(&a.out, &store, &mlp, &extra)?;
    let file_bytes = std::fs::metadata(&a.out).map(|m| m.len()).unwrap_or(0);
    if let Some(p) = &a.save_test {
        test_raw.write_csv(p)?;
    }
    if let Some(p) = &a.plot {
        crate::plot::curves(p, &history)?;
    }

    let right = (last.test_acc * test.rows() as f64).round() as usize;
    if a.json {
        let hist: Vec<_> = history
            .iter()
            .enumerate()
            .map(|(i, h)| {
                json!({"epoch": i + 1, "loss": h.loss, "train_accuracy": h.train_acc, "test_accuracy": h.test_acc})
            })
            .collect();
        crate::print_json(&json!({
            "test_accuracy": last.test_acc,
            "test_correct": right,
            "test_rows": test.rows(),
            "train_rows": train.rows(),
            "train_seconds": train_seconds,
            "epochs": a.epochs,
            "steps": step,
            "batch_size": a.batch_size,
            "optimizer": a.optimizer.name(),
            "lr": lr,
            "weight_decay": weight_decay,
            "seed": a.seed,
            "threads": rayon::current_num_threads(),
            "architecture": mlp.architecture(),
            "data": data.source,
            "final_loss": last.loss,
            "params": {"weights": counts.weights, "biases": counts.biases, "total": counts.total},
            "out": crate::show(&a.out),
            "out_bytes": file_bytes,
            "plot": a.plot.as_deref().map(crate::show),
            "history": hist,
        }))?;
        return Ok(());
    }
    println!(
        "data        {}: {} rows, {} features, {} classes; train {} / test {} (stratified, seed {})",
        data.source,
        data.rows(),
        data.features,
        classes,
        train.rows(),
        test.rows(),
        a.seed
    );
    println!(
        "model       {} (He init), {} lr {} (cosine to 0), weight decay {}, batch {}",
        mlp.architecture(),
        a.optimizer.name(),
        lr,
        weight_decay,
        a.batch_size
    );
    println!(
        "test acc    {:.2}% ({right}/{})   final train loss {:.4}",
        100.0 * last.test_acc,
        test.rows(),
        last.loss
    );
    println!(
        "train time  {:.2} s ({} epochs, {} steps, {:.0} steps/s, {} threads)",
        train_seconds,
        a.epochs,
        step,
        step as f64 / train_seconds,
        rayon::current_num_threads()
    );
    println!(
        "parameters  {} ({} weights, {} biases)",
        heft::nn::params::group(counts.total),
        heft::nn::params::group(counts.weights),
        heft::nn::params::group(counts.biases)
    );
    println!(
        "wrote       {} ({})",
        crate::show(&a.out),
        heft::nn::params::human_bytes(file_bytes as usize)
    );
    if let Some(p) = &a.save_test {
        println!("wrote       {} (test split)", crate::show(p));
    }
    if let Some(p) = &a.plot {
        println!("wrote       {} (loss and accuracy curves)", crate::show(p));
    }
    Ok(())
}
