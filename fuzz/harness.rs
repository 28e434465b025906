//! Fuzz harnesses shared by the cargo-fuzz targets (`fuzz/fuzz_targets/*.rs`)
//! and the corpus replay test (`crates/nn/tests/fuzz_replay.rs`), which both
//! pull this file in with `#[path = ...] mod harness;`.
//!
//! Each harness takes arbitrary bytes and must return normally: every library
//! call may give `Ok` or `Err`, never panic. For `Ok` results the harness
//! checks cheap invariants with `assert!`, so a broken invariant is a crash too.
//!
//! Inputs are decoded with [`Input`], which yields zeros once the bytes run
//! out, so every byte string (including the empty one) is a valid program.

#![allow(dead_code)]

use heft_nn::io;
use heft_tensor::{Conv2dParams, DType, Tensor};

/// Tensors with more elements than this are checked but never materialised.
const MAX_MATERIALISE: usize = 4096;

/// A harness: takes the fuzzer's bytes, panics only on a bug.
pub type Harness = fn(&[u8]);

/// The harnesses, by corpus directory name.
pub const TARGETS: &[(&str, Harness)] = &[
    ("safetensors_load", safetensors_load),
    ("tensor_views", tensor_views),
    ("ops_args", ops_args),
];

/// A cursor over the fuzzer's bytes.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// Read from `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    /// True once every byte is consumed.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next byte (0 once exhausted).
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// A value in `0..n` (`n >= 1`).
    pub fn below(&mut self, n: u8) -> usize {
        (self.byte() % n) as usize
    }

    /// A small size, `0..=7`, or now and then one of at least 2^63, so any
    /// non-empty buffer of that many elements overflows `isize::MAX` bytes (a
    /// real but merely too-large allocation would abort, not panic).
    pub fn size(&mut self) -> usize {
        match self.byte() {
            b @ 0..=247 => (b % 8) as usize,
            248 | 249 => usize::MAX,
            250 | 251 => usize::MAX / 2 + 1,
            252 | 253 => 3 << 62,
            _ => usize::MAX - 1,
        }
    }

    /// An axis in `-5..=5` (valid or not for ranks up to 4).
    pub fn axis(&mut self) -> isize {
        self.below(11) as isize - 5
    }

    /// A small shape of rank `0..=max_rank` with dims `0..=max_dim`.
    pub fn shape(&mut self, max_rank: u8, max_dim: u8) -> Vec<usize> {
        let rank = self.below(max_rank + 1);
        (0..rank).map(|_| self.below(max_dim + 1)).collect()
    }

    /// A shape whose dims come from [`Input::size`] (possibly huge).
    pub fn wild_shape(&mut self, max_rank: u8) -> Vec<usize> {
        let rank = self.below(max_rank + 1);
        (0..rank).map(|_| self.size()).collect()
    }

    /// One of the dtypes the ops are defined on (or not).
    pub fn dtype(&mut self) -> DType {
        [
            DType::F32,
            DType::F64,
            DType::I64,
            DType::F32,
            DType::F64,
            DType::Bool,
        ][self.below(6)]
    }

    /// A packed tensor of small integer values `-3..=3` (exact in every dtype).
    pub fn tensor(&mut self, max_rank: u8, max_dim: u8) -> Tensor {
        let shape = self.shape(max_rank, max_dim);
        let dtype = self.dtype();
        let seed = self.byte() as usize;
        let n: usize = shape.iter().product();
        let vals: Vec<f64> = (0..n).map(|i| ((i * 5 + seed) % 7) as f64 - 3.0).collect();
        Tensor::from_vec(vals, &shape)
            .expect("numel matches")
            .to_dtype(dtype)
    }

    /// A tensor that is sometimes a non-contiguous view of a packed one.
    pub fn maybe_view(&mut self, max_rank: u8, max_dim: u8) -> Tensor {
        let t = self.tensor(max_rank, max_dim);
        let r = match self.below(4) {
            1 => t.t(),
            2 if t.ndim() > 0 => {
                let ax = self.axis();
                let step = 1 + self.below(3);
                let d = t.dim(ax).unwrap_or(0);
                t.slice(ax, 0, d, step)
            }
            3 => {
                let mut s = t.shape().to_vec();
                s.insert(0, self.below(3));
                t.broadcast_to(&s)
            }
            _ => Ok(t.clone()),
        };
        r.unwrap_or(t)
    }

    /// An `i64` index tensor: small values (some negative or out of range), now and then extremes.
    pub fn indices(&mut self, max_rank: u8, max_dim: u8) -> Tensor {
        let shape = self.shape(max_rank, max_dim);
        let n: usize = shape.iter().product();
        let vals: Vec<i64> = (0..n)
            .map(|_| match self.byte() {
                b @ 0..=249 => (b % 10) as i64 - 2,
                250 | 251 => i64::MIN,
                252 | 253 => i64::MAX,
                _ => 1 << 40,
            })
            .collect();
        let t = Tensor::from_vec(vals, &shape).expect("numel matches");
        if self.below(8) == 0 {
            t.to_dtype(DType::F32)
        } else {
            t
        }
    }

    /// Convolution geometry, mostly small and sometimes absurd.
    pub fn conv_params(&mut self) -> Conv2dParams {
        Conv2dParams {
            stride: (self.size(), self.size()),
            padding: (self.size(), self.size()),
            dilation: (self.size(), self.size()),
        }
    }

    /// A pair of sizes.
    pub fn pair(&mut self) -> (usize, usize) {
        (self.size(), self.size())
    }
}

/// The element count of a shape (0 when any dim is 0, whatever the others),
/// or `None` when the product of its non-zero dims overflows: a shape no
/// op may return.
fn checked_numel(shape: &[usize]) -> Option<usize> {
    let p = shape
        .iter()
        .filter(|&&d| d != 0)
        .try_fold(1usize, |a, &d| a.checked_mul(d))?;
    Some(if shape.contains(&0) { 0 } else { p })
}

/// Invariants of any tensor an op returned.
pub fn check_tensor(t: &Tensor) {
    let want = checked_numel(t.shape()).expect("an Ok tensor's element count fits usize");
    assert_eq!(t.numel(), want, "numel of {:?}", t.shape());
    assert_eq!(t.ndim(), t.shape().len());
    if want > MAX_MATERIALISE {
        return;
    }
    let v = t.to_vec_f64();
    assert_eq!(v.len(), want);
    let c = t.contiguous();
    assert!(c.is_contiguous());
    assert_eq!(c.shape(), t.shape());
    let cv = c.to_vec_f64();
    assert!(same_bits(&v, &cv), "contiguous changed the values");
    // Walk every multi-index with the scalar accessor: a third code path.
    let mut idx = vec![0usize; t.ndim()];
    for (flat, &x) in v.iter().enumerate() {
        let mut rem = flat;
        for a in (0..idx.len()).rev() {
            idx[a] = rem % t.shape()[a];
            rem /= t.shape()[a];
        }
        let g = t.get_f64(&idx).expect("index in bounds");
        assert!(
            g.to_bits() == x.to_bits(),
            "get_f64{idx:?} = {g}, to_vec has {x}"
        );
    }
}

fn same_bits(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

// ----- safetensors_load --------------------------------------------------

/// Header parsing and full loading of arbitrary bytes as a safetensors file.
pub fn safetensors_load(data: &[u8]) {
    let header = io::read_header_bytes(data);
    let loaded = io::load_bytes(data);
    if let Ok((tensors, _meta)) = &loaded {
        let h = header
            .as_ref()
            .expect("a file that loads has a readable header");
        assert_eq!(h.tensors.len(), tensors.len());
        for ((name, t), e) in tensors.iter().zip(&h.tensors) {
            assert_eq!(name, &e.name);
            assert_eq!(t.shape(), e.shape.as_slice(), "{name}");
            check_tensor(t);
        }
    }
    if let Ok(h) = &header {
        assert_eq!(h.file_len, data.len() as u64);
        for e in &h.tensors {
            assert!(e.data_offsets.0 <= e.data_offsets.1);
            assert!((8 + h.header_len + e.data_offsets.1) as u64 <= h.file_len);
        }
    }
}

// ----- tensor_views -------------------------------------------------------

/// A chain of view ops with arbitrary arguments, then materialising ops.
pub fn tensor_views(data: &[u8]) {
    let mut r = Input::new(data);
    let mut t = r.tensor(4, 6);
    check_tensor(&t);
    for _ in 0..16 {
        if r.is_empty() {
            break;
        }
        let next = match r.below(10) {
            0 => {
                let (a, b) = (r.axis(), r.axis());
                t.transpose(a, b)
            }
            1 => {
                let n = r.below(6);
                let perm: Vec<usize> = (0..n).map(|_| r.below(6)).collect();
                t.permute(&perm)
            }
            2 => {
                let (ax, start, len) = (r.axis(), r.size(), r.size());
                t.narrow(ax, start, len)
            }
            3 => {
                let (ax, start, end, step) = (r.axis(), r.size(), r.size(), r.size());
                t.slice(ax, start, end, step)
            }
            4 => {
                let shape = if r.below(4) == 0 {
                    r.wild_shape(5)
                } else {
                    r.shape(5, 6)
                };
                t.broadcast_to(&shape)
            }
            5 => {
                let ax = r.axis();
                t.squeeze(ax)
            }
            6 => {
                let ax = r.axis();
                t.unsqueeze(ax)
            }
            7 => {
                let shape = if r.below(4) == 0 {
                    r.wild_shape(5)
                } else {
                    r.shape(5, 6)
                };
                t.reshape(&shape)
            }
            8 => {
                let (a, b) = (r.axis(), r.axis());
                t.flatten(a, b)
            }
            _ => t.t(),
        };
        if let Ok(n) = next {
            check_tensor(&n);
            t = n;
        }
    }
    materialise(&t, &mut r);
}

fn materialise(t: &Tensor, r: &mut Input) {
    let Some(n) = checked_numel(t.shape()) else {
        return;
    };
    if n > MAX_MATERIALISE {
        return;
    }
    let v = t.to_vec_f64();
    let c = t.contiguous();
    assert!(same_bits(&v, &c.to_vec_f64()));
    if let Ok(s) = t.sum_all() {
        assert_eq!(s.ndim(), 0);
        // Small integers: the sum is exact in every float dtype used here.
        assert_eq!(s.to_scalar_f64().expect("scalar"), v.iter().sum::<f64>());
    }
    if let Ok(m) = t.max(&[], false) {
        let want = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert_eq!(m.to_scalar_f64().expect("scalar"), want);
    }
    let axes: Vec<isize> = (0..r.below(3)).map(|_| r.axis()).collect();
    let keep = r.below(2) == 1;
    for x in [t.sum(&axes, keep), t.max(&axes, keep), t.mean(&axes, keep)]
        .into_iter()
        .flatten()
    {
        check_tensor(&x);
    }
    if let Ok(tt) = t.t() {
        if let Ok(p) = t.matmul(&tt) {
            let s = t.shape();
            let m = s[s.len() - 2];
            assert_eq!(&p.shape()[p.ndim() - 2..], &[m, m]);
            check_tensor(&p);
        }
        if let Ok(p) = tt.matmul(t) {
            check_tensor(&p);
        }
    }
    if let Ok(p) = t.matmul(t) {
        check_tensor(&p);
    }
}

// ----- ops_args -----------------------------------------------------------

fn check_all(ts: &[Tensor]) {
    for t in ts {
        check_tensor(t);
    }
}

/// Indexing, joining and convolution ops with arbitrary arguments.
pub fn ops_args(data: &[u8]) {
    let mut r = Input::new(data);
    match r.below(15) {
        0 => {
            let x = r.maybe_view(4, 5);
            let ix = r.indices(2, 5);
            let ax = r.axis();
            if let Ok(y) = x.index_select(ax, &ix) {
                assert_eq!(y.ndim(), x.ndim());
                check_tensor(&y);
            }
        }
        1 => {
            let x = r.maybe_view(4, 5);
            let ix = r.indices(2, 5);
            let src = r.maybe_view(4, 5);
            let ax = r.axis();
            if let Ok(y) = x.index_add(ax, &ix, &src) {
                assert_eq!(y.shape(), x.shape());
                check_tensor(&y);
            }
        }
        2 => {
            let x = r.maybe_view(4, 5);
            let ix = r.indices(4, 5);
            let ax = r.axis();
            if let Ok(y) = x.gather(ax, &ix) {
                assert_eq!(y.shape(), ix.shape());
                check_tensor(&y);
            }
        }
        3 => {
            let x = r.maybe_view(4, 5);
            let ix = r.indices(4, 5);
            let src = r.maybe_view(4, 5);
            let ax = r.axis();
            if let Ok(y) = x.scatter_add(ax, &ix, &src) {
                assert_eq!(y.shape(), x.shape());
                check_tensor(&y);
            }
        }
        4 => {
            let ix = r.indices(3, 5);
            let classes = r.size();
            let dtype = r.dtype();
            if let Ok(y) = ix.one_hot(classes, dtype) {
                assert_eq!(y.ndim(), ix.ndim() + 1);
                check_tensor(&y);
            }
        }
        5 | 6 => {
            let n = r.below(4);
            let first = r.maybe_view(4, 4);
            let mut ts = vec![first.clone()];
            for _ in 1..n {
                // Mostly the same shape but one axis, so some cats succeed.
                let t = if r.below(2) == 0 {
                    let ax = r.below(4) as isize;
                    let len = r.below(4);
                    let mut s = first.shape().to_vec();
                    if let Some(d) = s.get_mut(ax as usize) {
                        *d = len;
                    }
                    Tensor::ones(&s, first.dtype())
                } else {
                    r.maybe_view(4, 4)
                };
                ts.push(t);
            }
            let refs: Vec<&Tensor> = ts.iter().take(n).collect();
            let ax = r.axis();
            let res = if r.below(3) == 0 {
                Tensor::stack(&refs, ax)
            } else {
                Tensor::cat(&refs, ax)
            };
            if let Ok(y) = res {
                let total: usize = refs.iter().map(|t| t.numel()).sum();
                assert_eq!(y.numel(), total);
                check_tensor(&y);
            }
        }
        7 => {
            let x = r.maybe_view(4, 6);
            let ax = r.axis();
            let res = match r.below(3) {
                0 => {
                    let sizes: Vec<usize> = (0..r.below(5)).map(|_| r.size()).collect();
                    x.split(&sizes, ax)
                }
                1 => {
                    let n = r.size();
                    x.chunk(n, ax)
                }
                _ => {
                    let n = r.size();
                    x.split_size(n, ax)
                }
            };
            if let Ok(parts) = res {
                let total: usize = parts.iter().map(|t| t.numel()).sum();
                assert_eq!(total, x.numel());
                check_all(&parts);
            }
        }
        8 => {
            let x = r.maybe_view(4, 4);
            let n = if r.below(4) == 0 {
                r.below(6)
            } else {
                x.ndim()
            };
            let pads: Vec<(usize, usize)> = (0..n).map(|_| r.pair()).collect();
            let value = r.byte() as f64 - 128.0;
            if let Ok(y) = x.pad(&pads, value) {
                assert_eq!(y.ndim(), x.ndim());
                check_tensor(&y);
            }
        }
        9 => {
            let x = r.maybe_view(4, 5);
            let kernel = r.pair();
            let params = r.conv_params();
            if let Ok(y) = x.unfold2d(kernel, params, 0.5) {
                check_tensor(&y);
            }
        }
        10 => {
            let x = r.maybe_view(3, 6);
            let out_hw = r.pair();
            let kernel = r.pair();
            let params = r.conv_params();
            if let Ok(y) = x.fold2d(out_hw, kernel, params) {
                check_tensor(&y);
            }
        }
        11 => {
            let x = r.maybe_view(4, 5);
            let w = r.maybe_view(4, 3);
            let bias = match r.below(3) {
                0 => None,
                _ => Some(r.maybe_view(1, 4)),
            };
            let params = r.conv_params();
            if let Ok(y) = x.conv2d(&w, bias.as_ref(), params) {
                assert_eq!(y.ndim(), 4);
                check_tensor(&y);
            }
        }
        _ => {
            let x = r.maybe_view(4, 5);
            let (kernel, stride, padding) = (r.pair(), r.pair(), r.pair());
            let res = if r.below(2) == 0 {
                x.max_pool2d(kernel, stride, padding)
            } else {
                x.avg_pool2d(kernel, stride, padding)
            };
            if let Ok(y) = res {
                assert_eq!(y.ndim(), 4);
                check_tensor(&y);
            }
        }
    }
}
