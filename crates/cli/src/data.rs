//! Data sets: the embedded digits data, CSV files, stratified splits and
//! standardisation.
//!
//! A CSV holds numeric features and, in the last column, the label as a
//! class id (0, 1, 2, ...). A first row that does not parse as numbers is a
//! header and is skipped. Blank lines are ignored. Any other bad row is an
//! error naming its line.

use crate::error::{err, Result};
use rand::seq::SliceRandom;
use rand::Rng;
use std::io::Read as _;
use std::path::Path;

/// The digits data set, gzip-compressed CSV (see `data/README.md` for its
/// attribution: UCI, CC BY 4.0).
const DIGITS_GZ: &[u8] = include_bytes!("../data/digits.csv.gz");

/// Rows of features with integer labels.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Row-major features, `rows x features`.
    pub x: Vec<f32>,
    /// Labels (class ids).
    pub y: Vec<i64>,
    /// Number of features per row.
    pub features: usize,
    /// Where the data came from (for messages).
    pub source: String,
}

impl Dataset {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.y.len()
    }

    /// Number of classes: the largest label plus one.
    pub fn classes(&self) -> usize {
        self.y.iter().copied().max().map_or(0, |m| m as usize + 1)
    }

    /// The rows at `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> Dataset {
        let d = self.features;
        let mut x = Vec::with_capacity(idx.len() * d);
        let mut y = Vec::with_capacity(idx.len());
        for &i in idx {
            x.extend_from_slice(&self.x[i * d..(i + 1) * d]);
            y.push(self.y[i]);
        }
        Dataset {
            x,
            y,
            features: d,
            source: self.source.clone(),
        }
    }

    /// Write as CSV (features then label; `{}` prints each f32 so it parses back exactly).
    pub fn write_csv(&self, path: &Path) -> Result<()> {
        let mut s = String::with_capacity(self.x.len() * 4);
        for (r, &label) in self.y.iter().enumerate() {
            for v in &self.x[r * self.features..(r + 1) * self.features] {
                s.push_str(&format!("{v},"));
            }
            s.push_str(&format!("{label}\n"));
        }
        std::fs::write(path, s).map_err(|e| err(format!("cannot write {}: {e}", path.display())))
    }
}

/// The embedded digits data: 1797 rows of 64 pixel values (0..16), labels 0..9.
pub fn digits() -> Result<Dataset> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(DIGITS_GZ)
        .read_to_string(&mut text)
        .map_err(|e| err(format!("embedded digits data is damaged: {e}")))?;
    parse_csv(&text, "embedded digits data")
}

/// Read a CSV file.
pub fn read_csv(path: &Path) -> Result<Dataset> {
    let bytes =
        std::fs::read(path).map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| err(format!("{}: not a text (UTF-8) file", path.display())))?;
    parse_csv(&text, &path.display().to_string())
}

/// Parse CSV text; `source` names it in errors.
pub fn parse_csv(text: &str, source: &str) -> Result<Dataset> {
    let mut x = Vec::new();
    let mut y = Vec::new();
    let mut width: Option<(usize, usize)> = None; // (columns, line of the first data row)
    let mut first_nonblank = true;
    for (i, line) in text.lines().enumerate() {
        let lineno = i + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let numeric = fields.iter().all(|f| f.parse::<f64>().is_ok());
        if first_nonblank {
            first_nonblank = false;
            if !numeric {
                continue; // a header row
            }
        }
        match width {
            None => {
                if fields.len() < 2 {
                    return Err(err(format!(
                        "{source} line {lineno}: need at least one feature column and a label column, found {} column",
                        fields.len()
                    )));
                }
                width = Some((fields.len(), lineno));
            }
            Some((w, first)) if fields.len() != w => {
                return Err(err(format!(
                    "{source} line {lineno}: expected {w} columns (as on line {first}), found {}",
                    fields.len()
                )));
            }
            Some(_) => {}
        }
        let (label, feats) = fields.split_last().expect("at least two fields");
        for (c, f) in feats.iter().enumerate() {
            let v: f64 = f.parse().map_err(|_| {
                err(format!(
                    "{source} line {lineno}, column {}: `{f}` is not a number",
                    c + 1
                ))
            })?;
            if !v.is_finite() {
                return Err(err(format!(
                    "{source} line {lineno}, column {}: `{f}` is not a finite number",
                    c + 1
                )));
            }
            x.push(v as f32);
        }
        let lab = label
            .parse::<f64>()
            .ok()
            .filter(|v| v.fract() == 0.0 && *v >= 0.0 && *v < 1e9)
            .ok_or_else(|| {
                err(format!(
                    "{source} line {lineno}: label `{label}` (last column) is not a class id (0, 1, 2, ...)"
                ))
            })?;
        y.push(lab as i64);
    }
    let Some((w, _)) = width else {
        return Err(err(format!("{source}: no data rows")));
    };
    Ok(Dataset {
        x,
        y,
        features: w - 1,
        source: source.to_string(),
    })
}

/// A stratified split: about `test_share` of each class's rows go to the
/// test set (at least one when the class has two or more rows).
/// Returns `(train, test)` row indices, each shuffled.
pub fn stratified_split<R: Rng>(
    y: &[i64],
    test_share: f64,
    rng: &mut R,
) -> (Vec<usize>, Vec<usize>) {
    let classes = y.iter().copied().max().map_or(0, |m| m as usize + 1);
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (i, &c) in y.iter().enumerate() {
        by_class[c as usize].push(i);
    }
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for mut rows in by_class {
        rows.shuffle(rng);
        let mut k = (rows.len() as f64 * test_share).round() as usize;
        if k == 0 && rows.len() >= 2 && test_share > 0.0 {
            k = 1;
        }
        test.extend_from_slice(&rows[..k]);
        train.extend_from_slice(&rows[k..]);
    }
    train.shuffle(rng);
    test.shuffle(rng);
    (train, test)
}

/// Per-feature standardisation `(x - mean) / std`.
#[derive(Clone, Debug, PartialEq)]
pub struct Standardizer {
    /// Per-feature mean.
    pub mean: Vec<f32>,
    /// Per-feature standard deviation (1 for constant features, so they map to 0).
    pub std: Vec<f32>,
}

impl Standardizer {
    /// Statistics of `data` (population standard deviation, computed in f64).
    pub fn fit(data: &Dataset) -> Standardizer {
        let (n, d) = (data.rows(), data.features);
        let mut sum = vec![0f64; d];
        let mut sq = vec![0f64; d];
        for r in 0..n {
            for (j, &v) in data.x[r * d..(r + 1) * d].iter().enumerate() {
                sum[j] += v as f64;
                sq[j] += v as f64 * v as f64;
            }
        }
        let nn = n.max(1) as f64;
        let mean: Vec<f64> = sum.iter().map(|s| s / nn).collect();
        let std = sq
            .iter()
            .zip(&mean)
            .map(|(s, m)| {
                let var = (s / nn - m * m).max(0.0);
                let sd = var.sqrt();
                if sd < 1e-8 {
                    1.0
                } else {
                    sd as f32
                }
            })
            .collect();
        Standardizer {
            mean: mean.iter().map(|&m| m as f32).collect(),
            std,
        }
    }

    /// Standardise rows in place.
    pub fn apply(&self, x: &mut [f32]) {
        let d = self.mean.len();
        for row in x.chunks_mut(d) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v - m) / s;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn digits_decode() {
        let d = digits().unwrap();
        assert_eq!(d.rows(), 1797);
        assert_eq!(d.features, 64);
        assert_eq!(d.classes(), 10);
    }

    #[test]
    fn header_and_errors() {
        let d = parse_csv("a,b,label\n1,2,0\n3,4,1\n\n", "t").unwrap();
        assert_eq!((d.rows(), d.features), (2, 2));
        let e = parse_csv("1,2,0\n3,1\n", "t").unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
        let e = parse_csv("1,2,0\n3,x,1\n", "t").unwrap_err().to_string();
        assert!(e.contains("line 2, column 2"), "{e}");
        let e = parse_csv("1,2,0.5\n", "t").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("class id"), "{e}");
    }

    #[test]
    fn split_is_stratified() {
        let y: Vec<i64> = (0..100).map(|i| (i % 4) as i64).collect();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let (tr, te) = stratified_split(&y, 0.2, &mut rng);
        assert_eq!(tr.len() + te.len(), 100);
        for c in 0..4 {
            assert_eq!(te.iter().filter(|&&i| y[i] == c).count(), 5);
        }
    }

    #[test]
    fn standardize() {
        let d = parse_csv("1,5,0\n3,5,1\n", "t").unwrap();
        let s = Standardizer::fit(&d);
        assert_eq!(s.mean, vec![2.0, 5.0]);
        assert_eq!(s.std, vec![1.0, 1.0]);
        let mut x = d.x.clone();
        s.apply(&mut x);
        assert_eq!(x, vec![-1.0, 0.0, 1.0, 0.0]);
    }
}
