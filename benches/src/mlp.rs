//! The benchmark MLP shared by the `train_step` bench and `heft bench train`:
//! 784-256-128-10, ReLU, softmax cross-entropy, batch 64, f32, plain SGD.

use heft::prelude::*;
use rand::SeedableRng;

/// Batch size of the benchmark step.
pub const BATCH: usize = 64;

/// The model, its optimizer and one fixed synthetic batch.
pub struct BenchMlp {
    store: ParamStore,
    layers: [Linear; 3],
    opt: Sgd,
    x: Tensor,
    y: Tensor,
}

impl BenchMlp {
    /// Build with a seed (He init, zero biases).
    pub fn new(seed: u64) -> Self {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut store = ParamStore::new();
        let he = Init::KaimingNormal {
            mode: FanMode::FanIn,
            nonlinearity: Nonlinearity::Relu,
        };
        let mut lin = |name: &str, i: usize, o: usize| {
            Linear::with_init(&mut store, name, i, o, true, he, Init::Zeros, &mut rng)
                .expect("valid layer")
        };
        let layers = [
            lin("fc1", 784, 256),
            lin("fc2", 256, 128),
            lin("fc3", 128, 10),
        ];
        let x = Tensor::randn(&[BATCH, 784], 0.0, 1.0, DType::F32, &mut rng).expect("valid");
        let y = Tensor::from_vec(
            (0..BATCH as i64).map(|i| i % 10).collect::<Vec<_>>(),
            &[BATCH],
        )
        .expect("valid");
        let opt = Sgd::new(SgdConfig::new(0.01)).expect("valid lr");
        BenchMlp {
            store,
            layers,
            opt,
            x,
            y,
        }
    }

    /// One step; returns the loss.
    pub fn step(&mut self) -> f32 {
        let tape = Tape::new();
        let (loss, grads) = {
            let ctx = Ctx::new(&self.store, &tape, Mode::Train);
            let mut h = ctx.input(self.x.clone());
            for (i, l) in self.layers.iter().enumerate() {
                h = l.forward(&ctx, &h).expect("shapes agree");
                if i < 2 {
                    h = h.relu().expect("float");
                }
            }
            let loss = loss::cross_entropy(&h, &self.y).expect("valid targets");
            let grads = ctx.backward(&loss).expect("backward");
            (loss.value().item::<f32>().expect("scalar"), grads)
        };
        self.opt.step(&mut self.store, &grads).expect("step");
        loss
    }
}
