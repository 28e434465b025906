//! `heft eval`: accuracy and confusion matrix of a saved model on a CSV.

use crate::data;
use crate::error::{err, Result};
use crate::model;
use clap::Args;
use heft::tensor::Tensor;
use serde_json::json;
use std::path::PathBuf;

/// Options of `heft eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// A model file written by `heft train`.
    #[arg(value_name = "MODEL")]
    pub model: PathBuf,
    /// CSV with the same feature columns as the training data, label last.
    #[arg(long, value_name = "FILE.csv")]
    pub data: PathBuf,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Run `heft eval`.
pub fn run(a: EvalArgs) -> Result<()> {
    let m = model::load(&a.model)?;
    let mut d = data::read_csv(&a.data)?;
    if d.features != m.mlp.inputs() {
        return Err(err(format!(
            "{} has {} feature columns but the model {} expects {} ({})",
            crate::show(&a.data),
            d.features,
            crate::show(&a.model),
            m.mlp.inputs(),
            m.mlp.architecture()
        )));
    }
    let classes = m.mlp.classes();
    if let Some((i, &y)) = d.y.iter().enumerate().find(|(_, &y)| y as usize >= classes) {
        return Err(err(format!(
            "{}: row {} has label {y}, but the model knows only classes 0..{}",
            crate::show(&a.data),
            i + 1,
            classes - 1
        )));
    }
    m.pre.apply(&mut d.x);
    let x = Tensor::from_vec(d.x.clone(), &[d.rows(), d.features])?;
    let pred = model::predict(&m.store, &m.mlp, &x)?;
    let mut confusion = vec![vec![0usize; classes]; classes];
    for (&t, &p) in d.y.iter().zip(&pred) {
        confusion[t as usize][p as usize] += 1;
    }
    let right: usize = (0..classes).map(|c| confusion[c][c]).sum();
    let acc = right as f64 / d.rows() as f64;
    let per_class: Vec<Option<f64>> = confusion
        .iter()
        .enumerate()
        .map(|(c, row)| {
            let n: usize = row.iter().sum();
            (n > 0).then(|| row[c] as f64 / n as f64)
        })
        .collect();
    if a.json {
        return crate::print_json(&json!({
            "accuracy": acc,
            "correct": right,
            "rows": d.rows(),
            "classes": classes,
            "architecture": m.mlp.architecture(),
            "model": crate::show(&a.model),
            "data": crate::show(&a.data),
            "per_class_accuracy": per_class,
            "confusion": confusion,
        }));
    }
    println!(
        "model     {} ({})",
        crate::show(&a.model),
        m.mlp.architecture()
    );
    println!("data      {} ({} rows)", crate::show(&a.data), d.rows());
    println!("accuracy  {:.2}% ({right}/{})", 100.0 * acc, d.rows());
    println!();
    println!("confusion matrix (rows: true class, columns: predicted)");
    let w = d.rows().to_string().len().max(3);
    let mut head = format!("{:>5} ", "");
    for c in 0..classes {
        head.push_str(&format!(" {c:>w$}"));
    }
    head.push_str("   recall");
    println!("{head}");
    for (c, row) in confusion.iter().enumerate() {
        let mut line = format!("{c:>5} ");
        for v in row {
            line.push_str(&format!(" {v:>w$}"));
        }
        match per_class[c] {
            Some(r) => line.push_str(&format!("   {:>5.1}%", 100.0 * r)),
            None => line.push_str("       -"),
        }
        println!("{line}");
    }
    Ok(())
}
