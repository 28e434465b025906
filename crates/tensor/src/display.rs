//! `Display` for tensors, in the style of numpy / PyTorch.
//!
//! Large tensors (more than 1000 elements) are summarised: each axis shows
//! its first and last three entries around `...`.

use crate::tensor::any_dispatch;
use crate::{DType, Element, Tensor};
use std::fmt;

const SUMMARY_THRESHOLD: usize = 1000;
const EDGE: usize = 3;

fn fmt_elem(v: f64, dtype: DType) -> String {
    match dtype {
        DType::I64 => format!("{}", v as i64),
        DType::Bool => (if v != 0.0 { "true" } else { "false" }).to_string(),
        _ => {
            if v.is_nan() {
                "nan".into()
            } else if v.is_infinite() {
                if v > 0.0 {
                    "inf".into()
                } else {
                    "-inf".into()
                }
            } else if v != 0.0 && (v.abs() >= 1e6 || v.abs() < 1e-4) {
                format!("{v:.4e}")
            } else {
                format!("{v:.4}")
            }
        }
    }
}

fn indices(n: usize, summarise: bool) -> Vec<Option<usize>> {
    if summarise && n > 2 * EDGE {
        (0..EDGE)
            .map(Some)
            .chain(std::iter::once(None))
            .chain((n - EDGE..n).map(Some))
            .collect()
    } else {
        (0..n).map(Some).collect()
    }
}

impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let summarise = self.numel() > SUMMARY_THRESHOLD;
        let get = |idx: &[usize]| -> f64 {
            any_dispatch!(self.dtype(), T => {
                let s = T::slice(self.storage()).expect("dtype");
                s[self.layout().index_of(idx)].to_f64()
            })
        };
        // Format every shown element first to align columns.
        let mut width = 1;
        let mut idx = vec![0usize; self.ndim()];
        fn walk(t: &Tensor, d: usize, idx: &mut Vec<usize>, s: bool, cb: &mut dyn FnMut(&[usize])) {
            if d == t.ndim() {
                cb(idx);
                return;
            }
            for i in indices(t.shape()[d], s).into_iter().flatten() {
                idx[d] = i;
                walk(t, d + 1, idx, s, cb);
            }
        }
        walk(self, 0, &mut idx, summarise, &mut |i| {
            width = width.max(fmt_elem(get(i), self.dtype()).len())
        });
        fn render(
            t: &Tensor,
            d: usize,
            idx: &mut Vec<usize>,
            s: bool,
            w: usize,
            get: &dyn Fn(&[usize]) -> f64,
            out: &mut String,
            indent: usize,
        ) {
            if d == t.ndim() {
                out.push_str(&format!("{:>w$}", fmt_elem(get(idx), t.dtype())));
                return;
            }
            out.push('[');
            let ix = indices(t.shape()[d], s);
            let last = d + 1 == t.ndim();
            for (p, i) in ix.iter().enumerate() {
                if p > 0 {
                    if last {
                        out.push_str(", ");
                    } else {
                        out.push(',');
                        out.push_str(&"\n".repeat(t.ndim() - d - 1));
                        out.push_str(&" ".repeat(indent + d + 1));
                    }
                }
                match i {
                    Some(i) => {
                        idx[d] = *i;
                        render(t, d + 1, idx, s, w, get, out, indent);
                    }
                    None => out.push_str("..."),
                }
            }
            out.push(']');
        }
        let mut body = String::new();
        render(self, 0, &mut idx, summarise, width, &get, &mut body, 7);
        write!(
            f,
            "tensor({body}, shape={:?}, dtype={})",
            self.shape(),
            self.dtype()
        )
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use crate::Tensor;

    #[test]
    fn prints_like_numpy() {
        let t = Tensor::from_vec(vec![1.0f32, 2.5, -3.0, 4.0], &[2, 2]).unwrap();
        assert_eq!(
            t.to_string(),
            "tensor([[ 1.0000,  2.5000],\n        [-3.0000,  4.0000]], shape=[2, 2], dtype=f32)"
        );
        let big = Tensor::arange(0.0, 2000.0, 1.0, crate::DType::I64).unwrap();
        assert_eq!(
            big.to_string(),
            "tensor([   0,    1,    2, ..., 1997, 1998, 1999], shape=[2000], dtype=i64)"
        );
    }
}
