//! # heft, the command
//!
//! The whole life of a model's weights from one binary:
//!
//! * `heft train`: initialise an MLP (He init), train it by backprop with
//!   AdamW (or SGD, momentum, Adam) on the embedded digits data set or on a
//!   CSV, and save it as a safetensors file with its standardisation.
//! * `heft eval MODEL --data FILE.csv`: accuracy and confusion matrix of a
//!   saved model on a CSV.
//! * `heft inspect FILE.safetensors`: the tensors of any safetensors file,
//!   parameter counts by kind and sizes at f32/f16/int8/int4, and with
//!   `--stats` per-tensor statistics streamed through a memory map.
//! * `heft bench [matmul|ops|train]`: heft's kernels on this machine.
//!
//! Errors are one line on stderr and a non-zero exit status (1; 2 for bad
//! command-line usage).

mod bench;
mod data;
mod error;
mod eval;
mod font;
mod inspect;
mod model;
mod plot;
mod train;

use clap::{Parser, Subcommand};
use error::{err, Result};
use std::io::Write as _;
use std::path::PathBuf;

/// heft: a reverse-mode autodiff tensor engine, from the command line.
#[derive(Parser, Debug)]
#[command(name = "heft", version, about, long_about = None)]
pub struct Cli {
    /// Worker threads for heft's kernels (builds the rayon global pool; default: all cores).
    #[arg(long, global = true, value_name = "N")]
    threads: Option<usize>,
    /// The command.
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train an MLP classifier (default: embedded digits data) and save it.
    Train(train::TrainArgs),
    /// Evaluate a saved model on a CSV: accuracy and confusion matrix.
    Eval(eval::EvalArgs),
    /// Inspect any safetensors file: tensors, parameter counts, sizes, statistics.
    #[command(long_about = inspect::LONG_ABOUT)]
    Inspect(inspect::InspectArgs),
    /// Benchmark heft's kernels on this machine.
    Bench(bench::BenchArgs),
}

fn run(cli: Cli) -> Result<()> {
    if let Some(n) = cli.threads {
        if n == 0 {
            return Err(err("--threads must be at least 1"));
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .map_err(|e| err(format!("cannot start {n} threads: {e}")))?;
    }
    // Run the command on a thread of rayon's pool rather than on `main`: a
    // caller outside the pool is one thread more than the cores the pool is
    // sized for, and each threaded product then ends by blocking it in the
    // scope. `heft bench train`, 2 threads, three runs each: 1,421-1,741
    // steps/s from `main`, 1,820-1,954 inside the pool.
    rayon::scope(|_| match cli.command {
        Command::Train(a) => train::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Bench(a) => bench::run(a),
    })
}

/// Print a JSON value on stdout (one object, pretty-printed).
pub fn print_json(v: &serde_json::Value) -> Result<()> {
    let s = serde_json::to_string_pretty(v).map_err(|e| err(e.to_string()))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{s}").map_err(|e| err(format!("cannot write to stdout: {e}")))?;
    Ok(())
}

/// A path for messages.
pub fn show(p: &std::path::Path) -> String {
    p.display().to_string()
}

/// The default model file name.
pub fn default_out() -> PathBuf {
    PathBuf::from("model.safetensors")
}

fn main() {
    // A bug must still end in one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("heft: internal error: {msg}{at} (please report this)");
    }));
    let cli = Cli::parse();
    match std::panic::catch_unwind(|| run(cli)) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            eprintln!("heft: error: {e}");
            std::process::exit(1);
        }
        Err(_) => std::process::exit(101),
    }
}
