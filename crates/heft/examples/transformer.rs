//! A tiny causal transformer block learning a copy pattern: each sequence
//! repeats three random tokens (`a b c a b c ...`), so from the third
//! position on the next token is the one two places back, which only
//! attention can fetch. Trained for a few steps of plain gradient descent
//! written by hand.
//!
//! Block: token + position embeddings, `x + attn(ln1(x))` with causal
//! multi-head self-attention, `x + mlp(ln2(x))`, a final LayerNorm and a
//! linear head; next-token cross-entropy.
//!
//! `cargo run --release -p heft --example transformer`

use heft::prelude::*;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const VOCAB: usize = 8;
const T: usize = 9; // positions fed to the model; targets are the next 9 tokens
const D: usize = 16;

struct Block {
    tok: Embedding,
    pos: Embedding,
    ln1: LayerNorm,
    attn: MultiHeadSelfAttention,
    ln2: LayerNorm,
    mlp: Sequential,
    ln_f: LayerNorm,
    head: Linear,
}

impl Block {
    fn new(store: &mut ParamStore, rng: &mut ChaCha8Rng) -> heft::nn::Result<Self> {
        Ok(Block {
            tok: Embedding::new(store, "tok", VOCAB, D, rng)?,
            pos: Embedding::new(store, "pos", T, D, rng)?,
            ln1: LayerNorm::new(store, "ln1", D, 1e-5)?,
            attn: MultiHeadSelfAttention::new(store, "attn", D, 2, true, rng)?,
            ln2: LayerNorm::new(store, "ln2", D, 1e-5)?,
            mlp: Sequential::new()
                .add(Linear::new(store, "mlp.fc1", D, 4 * D, rng)?)
                .add(Activation::Gelu)
                .add(Linear::new(store, "mlp.fc2", 4 * D, D, rng)?),
            ln_f: LayerNorm::new(store, "ln_f", D, 1e-5)?,
            head: Linear::new(store, "head", D, VOCAB, rng)?,
        })
    }

    /// `[b, T]` i64 ids -> `[b, T, VOCAB]` logits.
    fn forward(&self, ctx: &Ctx<'_>, ids: &Tensor) -> heft::nn::Result<Var> {
        let positions = Tensor::arange(0.0, T as f64, 1.0, DType::I64)?;
        let x = self
            .tok
            .forward(ctx, ids)?
            .add(&self.pos.forward(ctx, &positions)?)?;
        let x = x.add(&self.attn.forward(ctx, &self.ln1.forward(ctx, &x)?)?)?;
        let x = x.add(&self.mlp.forward(ctx, &self.ln2.forward(ctx, &x)?)?)?;
        self.head.forward(ctx, &self.ln_f.forward(ctx, &x)?)
    }
}

/// `n` sequences of T + 1 tokens: three distinct random tokens repeated.
fn batch(n: usize, rng: &mut ChaCha8Rng) -> heft::tensor::Result<(Tensor, Tensor)> {
    let mut inputs = Vec::with_capacity(n * T);
    let mut targets = Vec::with_capacity(n * T);
    for _ in 0..n {
        let mut toks: Vec<i64> = (0..VOCAB as i64).collect();
        toks.shuffle(rng);
        let seq: Vec<i64> = (0..=T).map(|i| toks[i % 3]).collect();
        inputs.extend_from_slice(&seq[..T]);
        targets.extend_from_slice(&seq[1..]);
    }
    Ok((
        Tensor::from_vec(inputs, &[n, T])?,
        Tensor::from_vec(targets, &[n * T])?,
    ))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut store = ParamStore::new();
    let model = Block::new(&mut store, &mut rng)?;
    print!("{}", store.summary());
    println!();

    let (x, y) = batch(32, &mut rng)?;
    let lr = 0.3;
    for step in 0..=150 {
        let tape = Tape::new();
        let ctx = Ctx::new(&store, &tape, Mode::Train);
        let logits = model.forward(&ctx, &x)?.reshape(&[32 * T, VOCAB])?;
        let l = loss::cross_entropy(&logits, &y)?;
        if step % 15 == 0 {
            println!("step {step:>3}  loss {:.4}", l.value().to_scalar_f64()?);
        }
        let grads = ctx.backward(&l)?;
        for (id, g) in grads.iter() {
            let w = store.value(id).sub(&g.mul_scalar(lr)?)?;
            store.set_value(id, w)?;
        }
    }

    // Next-token accuracy on fresh sequences, on the positions that are
    // predictable (the target repeats a token already seen: t >= 2).
    let (xt, yt) = batch(100, &mut rng)?;
    let tape = Tape::new();
    let ctx = Ctx::new(&store, &tape, Mode::Eval);
    let pred = model
        .forward(&ctx, &xt)?
        .value()
        .argmax(-1, false)?
        .to_vec::<i64>()?;
    let yt = yt.to_vec::<i64>()?;
    let (mut ok, mut total) = (0, 0);
    for (i, (p, t)) in pred.iter().zip(&yt).enumerate() {
        if i % T >= 2 {
            total += 1;
            ok += usize::from(p == t);
        }
    }
    println!("\nheld-out accuracy on predictable positions: {ok}/{total}");
    println!("(chance: 1/{VOCAB})");
    Ok(())
}
