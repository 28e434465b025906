//! `heft inspect`: what is in a safetensors file, without loading it.
//!
//! Without `--stats` only the header is read (`heft_nn::io::read_header`),
//! so a 14 GB file is inspected in milliseconds. With `--stats` the file is
//! memory-mapped and each tensor streamed in chunks of [`CHUNK`] elements,
//! converted to f64; no whole tensor is ever materialised.

use crate::error::{err, Result};
use clap::Args;
use heft::nn::io::{read_header, FileHeader, TensorEntry};
use heft::nn::params::{group, human_bytes};
use heft::nn::ParamKind;
use serde_json::json;
use std::path::{Path, PathBuf};

/// `|x|` below this counts as near zero.
pub const NEAR_ZERO: f64 = 1e-6;
/// A tensor whose root-mean-square value exceeds this is reported as exploding.
pub const EXPLODING_RMS: f64 = 100.0;
/// Elements converted to f64 at a time.
pub const CHUNK: usize = 1 << 16;

/// Long help of `heft inspect` (the classification rules).
pub const LONG_ABOUT: &str = "\
Inspect any safetensors file: a table of its tensors (name, kind, dtype, shape, \
parameter count, bytes), totals split into weights, biases and other, and the \
total size at f32, f16, int8 and int4. Only the header is read unless --stats is given.

How a tensor is classified (first matching rule wins; names compared in lower case):
  1. name ends in `bias`                                          -> bias
  2. buffers: name ends in `running_mean`, `running_var` or
     `num_batches_tracked`                                       -> other
  3. embeddings: name contains `embed`                            -> other
  4. 1-D norm scales: a 1-D tensor with a name segment containing
     `norm`, or starting with `ln`, or a name ending in `.scale`   -> other
  5. a tensor of 2 or more dimensions whose name ends in `weight`  -> weight
  6. anything else (1-D weights, heft's `preprocess.*`, ...)       -> other

--stats streams every tensor through a memory map (64Ki elements at a time, \
converted to f64) and adds per-tensor mean, std, min, max (over finite values), \
the share of near-zero values (|x| < 1e-6), NaN and Inf counts and the \
root-mean-square value (rms). A warning line is printed for every tensor with a \
NaN or Inf, and for every tensor whose rms exceeds 100 (exploding weights: \
trained weights are typically well below 1). Dtypes without a numeric decoding \
(fp8, fp6, fp4) are listed without statistics.";

/// Options of `heft inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Any safetensors file.
    #[arg(value_name = "FILE.safetensors")]
    pub file: PathBuf,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also compute per-tensor statistics (reads every byte through a memory map).
    #[arg(long)]
    pub stats: bool,
}

/// The kind of a tensor by the documented naming rules.
pub fn classify(name: &str, shape: &[usize]) -> ParamKind {
    let n = name.to_ascii_lowercase();
    if n.ends_with("bias") {
        return ParamKind::Bias;
    }
    if n.ends_with("running_mean")
        || n.ends_with("running_var")
        || n.ends_with("num_batches_tracked")
    {
        return ParamKind::Other;
    }
    if n.contains("embed") {
        return ParamKind::Other;
    }
    if shape.len() == 1 {
        let normish = n
            .split('.')
            .any(|seg| seg.contains("norm") || seg.starts_with("ln"));
        if normish || n.ends_with(".scale") {
            return ParamKind::Other;
        }
    }
    if shape.len() >= 2 && n.ends_with("weight") {
        return ParamKind::Weight;
    }
    ParamKind::Other
}

/// Statistics of one tensor.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Finite values seen.
    pub finite: u64,
    /// Mean of the finite values.
    pub mean: f64,
    /// Sum of squared deviations from the mean (Chan et al. merge).
    pub m2: f64,
    /// Smallest finite value.
    pub min: f64,
    /// Largest finite value.
    pub max: f64,
    /// Values with `|x| < NEAR_ZERO`.
    pub near_zero: u64,
    /// NaN values.
    pub nan: u64,
    /// Infinite values.
    pub inf: u64,
}

impl Stats {
    fn new() -> Stats {
        Stats {
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            ..Default::default()
        }
    }

    /// Fold a chunk of values in.
    pub fn push_chunk(&mut self, xs: &[f64]) {
        let (mut n, mut sum) = (0u64, 0f64);
        for &x in xs {
            if x.is_nan() {
                self.nan += 1;
            } else if x.is_infinite() {
                self.inf += 1;
            } else {
                n += 1;
                sum += x;
                self.min = self.min.min(x);
                self.max = self.max.max(x);
                if x.abs() < NEAR_ZERO {
                    self.near_zero += 1;
                }
            }
        }
        if n == 0 {
            return;
        }
        let mean = sum / n as f64;
        let m2: f64 = xs
            .iter()
            .filter(|x| x.is_finite())
            .map(|x| (x - mean) * (x - mean))
            .sum();
        let (na, nb) = (self.finite as f64, n as f64);
        let tot = na + nb;
        let delta = mean - self.mean;
        self.mean += delta * nb / tot;
        self.m2 += m2 + delta * delta * na * nb / tot;
        self.finite += n;
    }

    /// Population standard deviation of the finite values.
    pub fn std(&self) -> f64 {
        if self.finite == 0 {
            f64::NAN
        } else {
            (self.m2 / self.finite as f64).sqrt()
        }
    }

    /// Root-mean-square of the finite values.
    pub fn rms(&self) -> f64 {
        if self.finite == 0 {
            f64::NAN
        } else {
            (self.m2 / self.finite as f64 + self.mean * self.mean).sqrt()
        }
    }
}

/// Decode little-endian `bytes` of a safetensors `dtype` into f64s, or
/// `None` if heft has no decoding for it.
fn decode_into(dtype: &str, bytes: &[u8], out: &mut Vec<f64>) -> Option<()> {
    out.clear();
    macro_rules! le {
        ($n:literal, $f:expr) => {
            out.extend(bytes.chunks_exact($n).map(|c| {
                let a: [u8; $n] = c.try_into().expect("exact chunk");
                $f(a)
            }))
        };
    }
    match dtype {
        "F64" => le!(8, f64::from_le_bytes),
        "F32" => le!(4, |a| f32::from_le_bytes(a) as f64),
        "F16" => le!(2, |a| half::f16::from_bits(u16::from_le_bytes(a)).to_f64()),
        "BF16" => le!(2, |a| half::bf16::from_bits(u16::from_le_bytes(a)).to_f64()),
        "I64" => le!(8, |a| i64::from_le_bytes(a) as f64),
        "I32" => le!(4, |a| i32::from_le_bytes(a) as f64),
        "I16" => le!(2, |a| i16::from_le_bytes(a) as f64),
        "U64" => le!(8, |a| u64::from_le_bytes(a) as f64),
        "U32" => le!(4, |a| u32::from_le_bytes(a) as f64),
        "U16" => le!(2, |a| u16::from_le_bytes(a) as f64),
        "I8" => out.extend(bytes.iter().map(|&b| b as i8 as f64)),
        "U8" => out.extend(bytes.iter().map(|&b| b as f64)),
        "BOOL" => out.extend(bytes.iter().map(|&b| (b != 0) as u8 as f64)),
        _ => return None,
    }
    Some(())
}

/// Stream every tensor of a file through a memory map.
fn compute_stats(path: &Path, header: &FileHeader) -> Result<Vec<Option<Stats>>> {
    let f = std::fs::File::open(path).map_err(|e| err(format!("{}: {e}", path.display())))?;
    // SAFETY: the map is read-only and lives only for this function; if
    // another process truncates the file meanwhile, reads could fault, as
    // with any memory-mapped reader (safetensors' own loaders included).
    let map = unsafe { memmap2::Mmap::map(&f) }
        .map_err(|e| err(format!("{}: cannot map the file: {e}", path.display())))?;
    #[cfg(unix)]
    let _ = map.advise(memmap2::Advice::Sequential);
    let data = 8 + header.header_len;
    let mut buf = Vec::with_capacity(CHUNK);
    let mut out = Vec::with_capacity(header.tensors.len());
    for t in &header.tensors {
        let (b, e) = t.data_offsets;
        let bytes = map.get(data + b..data + e).ok_or_else(|| {
            err(format!(
                "{}: tensor `{}` lies outside the file",
                path.display(),
                t.name
            ))
        })?;
        let Some(bits) = t.bits().filter(|&b| b % 8 == 0) else {
            out.push(None);
            continue;
        };
        let step = CHUNK * bits / 8;
        let mut st = Stats::new();
        let mut known = true;
        for chunk in bytes.chunks(step) {
            if decode_into(&t.dtype, chunk, &mut buf).is_none() {
                known = false;
                break;
            }
            st.push_chunk(&buf);
        }
        out.push(known.then_some(st));
    }
    Ok(out)
}

fn bytes_of(t: &TensorEntry) -> usize {
    t.data_offsets.1 - t.data_offsets.0
}

fn fmt_num(x: f64) -> String {
    if x.is_nan() {
        "-".into()
    } else if x == 0.0 || (x.abs() >= 1e-3 && x.abs() < 1e5) {
        format!("{x:.4}")
    } else {
        format!("{x:.3e}")
    }
}

fn json_num(x: f64) -> serde_json::Value {
    if x.is_finite() {
        json!(x)
    } else {
        serde_json::Value::Null
    }
}

/// Run `heft inspect`.
pub fn run(a: InspectArgs) -> Result<()> {
    let path = &a.file;
    if !path.exists() {
        return Err(err(format!("{}: no such file", path.display())));
    }
    let header = read_header(path)?;
    let kinds: Vec<ParamKind> = header
        .tensors
        .iter()
        .map(|t| classify(&t.name, &t.shape))
        .collect();
    let (mut weights, mut biases, mut other) = (0usize, 0usize, 0usize);
    for (t, k) in header.tensors.iter().zip(&kinds) {
        match k {
            ParamKind::Weight => weights += t.numel(),
            ParamKind::Bias => biases += t.numel(),
            ParamKind::Other => other += t.numel(),
        }
    }
    let total = weights + biases + other;
    let at = |bits: usize| (total * bits).div_ceil(8);
    let stats = if a.stats {
        Some(compute_stats(path, &header)?)
    } else {
        None
    };
    let mut warnings = Vec::new();
    if let Some(stats) = &stats {
        for (t, s) in header.tensors.iter().zip(stats) {
            let Some(s) = s else { continue };
            if s.nan > 0 || s.inf > 0 {
                warnings.push(format!(
                    "warning: `{}` has {} NaN and {} Inf values",
                    t.name, s.nan, s.inf
                ));
            }
            if s.rms() > EXPLODING_RMS {
                warnings.push(format!(
                    "warning: `{}` looks exploding: rms {} > {EXPLODING_RMS}",
                    t.name,
                    fmt_num(s.rms())
                ));
            }
        }
    }

    if a.json {
        let tensors: Vec<_> = header
            .tensors
            .iter()
            .zip(&kinds)
            .enumerate()
            .map(|(i, (t, k))| {
                let mut v = json!({
                    "name": t.name,
                    "kind": k.as_str(),
                    "dtype": t.dtype,
                    "shape": t.shape,
                    "params": t.numel(),
                    "bytes": bytes_of(t),
                });
                if let Some(stats) = &stats {
                    v["stats"] = match &stats[i] {
                        None => serde_json::Value::Null,
                        Some(s) => json!({
                            "mean": json_num(s.mean_or_nan()),
                            "std": json_num(s.std()),
                            "min": json_num(if s.finite > 0 { s.min } else { f64::NAN }),
                            "max": json_num(if s.finite > 0 { s.max } else { f64::NAN }),
                            "rms": json_num(s.rms()),
                            "near_zero_share": s.near_zero as f64 / t.numel().max(1) as f64,
                            "nan": s.nan,
                            "inf": s.inf,
                        }),
                    };
                }
                v
            })
            .collect();
        return crate::print_json(&json!({
            "file": crate::show(path),
            "file_bytes": header.file_len,
            "header_bytes": header.header_len,
            "metadata": header.metadata,
            "tensors": tensors,
            "params": {"weights": weights, "biases": biases, "other": other, "total": total},
            "size_bytes": {"f32": at(32), "f16": at(16), "int8": at(8), "int4": at(4)},
            "near_zero_threshold": NEAR_ZERO,
            "exploding_rms_threshold": EXPLODING_RMS,
            "warnings": warnings,
        }));
    }

    println!(
        "{}: {} tensors, {} on disk (header {})",
        crate::show(path),
        header.tensors.len(),
        human_bytes(header.file_len as usize),
        human_bytes(header.header_len)
    );
    for (k, v) in &header.metadata {
        let v = if v.len() > 80 {
            format!("{}...", v.chars().take(77).collect::<String>())
        } else {
            v.clone()
        };
        println!("  {k} = {v}");
    }
    println!();
    let shapes: Vec<String> = header
        .tensors
        .iter()
        .map(|t| format!("{:?}", t.shape))
        .collect();
    let nw = header
        .tensors
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(4)
        .clamp(6, 60);
    let sw = shapes.iter().map(String::len).max().unwrap_or(5).max(5);
    let mut head = format!(
        "{:<nw$}  {:<6}  {:<5}  {:<sw$}  {:>13}  {:>10}",
        "tensor", "kind", "dtype", "shape", "params", "bytes"
    );
    if stats.is_some() {
        head.push_str(&format!(
            "  {:>10}  {:>10}  {:>10}  {:>10}  {:>6}  {:>5}  {:>5}",
            "mean", "std", "min", "max", "~0", "nan", "inf"
        ));
    }
    println!("{head}");
    println!("{}", "-".repeat(head.len()));
    for (i, (t, k)) in header.tensors.iter().zip(&kinds).enumerate() {
        let mut line = format!(
            "{:<nw$}  {:<6}  {:<5}  {:<sw$}  {:>13}  {:>10}",
            t.name,
            k.as_str(),
            t.dtype,
            shapes[i],
            group(t.numel()),
            human_bytes(bytes_of(t))
        );
        if let Some(stats) = &stats {
            match &stats[i] {
                Some(s) => line.push_str(&format!(
                    "  {:>10}  {:>10}  {:>10}  {:>10}  {:>5.1}%  {:>5}  {:>5}",
                    fmt_num(s.mean_or_nan()),
                    fmt_num(s.std()),
                    fmt_num(if s.finite > 0 { s.min } else { f64::NAN }),
                    fmt_num(if s.finite > 0 { s.max } else { f64::NAN }),
                    100.0 * s.near_zero as f64 / t.numel().max(1) as f64,
                    s.nan,
                    s.inf
                )),
                None => line.push_str("  (no statistics for this dtype)"),
            }
        }
        println!("{line}");
    }
    println!("{}", "-".repeat(head.len()));
    println!(
        "parameters  {} total: {} weights, {} biases, {} other",
        group(total),
        group(weights),
        group(biases),
        group(other)
    );
    println!(
        "size        f32 {}   f16 {}   int8 {}   int4 {}",
        human_bytes(at(32)),
        human_bytes(at(16)),
        human_bytes(at(8)),
        human_bytes(at(4))
    );
    if stats.is_some() {
        if warnings.is_empty() {
            println!(
                "health      no NaN/Inf, no tensor with rms > {EXPLODING_RMS} (~0 = share of |x| < {NEAR_ZERO:e})"
            );
        } else {
            for w in &warnings {
                println!("{w}");
            }
        }
    }
    Ok(())
}

impl Stats {
    fn mean_or_nan(&self) -> f64 {
        if self.finite == 0 {
            f64::NAN
        } else {
            self.mean
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_rules() {
        let k = |n: &str, s: &[usize]| classify(n, s);
        assert_eq!(k("fc1.weight", &[4, 3]), ParamKind::Weight);
        assert_eq!(k("fc1.bias", &[4]), ParamKind::Bias);
        assert_eq!(
            k("model.layers.0.input_layernorm.weight", &[8]),
            ParamKind::Other
        );
        assert_eq!(k("h.0.ln_1.weight", &[8]), ParamKind::Other);
        assert_eq!(k("norm.scale", &[8]), ParamKind::Other);
        assert_eq!(k("bn.running_mean", &[8]), ParamKind::Other);
        assert_eq!(k("bn.num_batches_tracked", &[]), ParamKind::Other);
        assert_eq!(k("model.embed_tokens.weight", &[100, 8]), ParamKind::Other);
        assert_eq!(k("lm_head.weight", &[100, 8]), ParamKind::Weight);
        assert_eq!(k("conv.weight", &[8, 3, 3, 3]), ParamKind::Weight);
        assert_eq!(k("preprocess.mean", &[64]), ParamKind::Other);
    }

    #[test]
    fn stats_merge_chunks() {
        let xs: Vec<f64> = (0..1000)
            .map(|i| (i as f64 * 0.37).sin() * 3.0 + 1.0)
            .collect();
        let mut whole = Stats::new();
        whole.push_chunk(&xs);
        let mut parts = Stats::new();
        for c in xs.chunks(77) {
            parts.push_chunk(c);
        }
        assert!((whole.mean - parts.mean).abs() < 1e-12);
        assert!((whole.std() - parts.std()).abs() < 1e-12);
        let mut s = Stats::new();
        s.push_chunk(&[f64::NAN, f64::INFINITY, 0.0, 2.0]);
        assert_eq!((s.nan, s.inf, s.finite, s.near_zero), (1, 1, 2, 1));
        assert_eq!((s.mean, s.min, s.max), (1.0, 0.0, 2.0));
    }
}
