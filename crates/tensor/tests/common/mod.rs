//! Shared proptest strategies and naive references for heft-tensor's tests.
//!
//! The central piece is [`View`]: a strided tensor built through the crate's
//! view ops (permute, narrow, slice with step, unsqueeze, broadcast_to /
//! expand) together with the values it must hold, computed here by plain
//! index arithmetic on the row-major source buffer. The reference never goes
//! through the crate's layout code, so a wrong stride or offset shows up as a
//! mismatch.
#![allow(dead_code)] // each test binary uses a different subset

use heft_tensor::{DType, Tensor};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fmt;

// ----- plain index arithmetic ------------------------------------------------

/// Number of elements of a shape.
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Row-major strides of a packed buffer of this shape.
pub fn row_major_strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![0; shape.len()];
    let mut acc = 1;
    for i in (0..shape.len()).rev() {
        s[i] = acc;
        acc *= shape[i];
    }
    s
}

/// The multi-index of row-major position `flat` in `shape`.
pub fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for i in (0..shape.len()).rev() {
        idx[i] = flat % shape[i];
        flat /= shape[i];
    }
    idx
}

/// Row-major position of a multi-index.
pub fn ravel(idx: &[usize], shape: &[usize]) -> usize {
    idx.iter()
        .zip(row_major_strides(shape))
        .map(|(i, s)| i * s)
        .sum()
}

/// Row-major position in `in_shape` of the element an output index of a
/// numpy broadcast reads (`in_shape` aligned to the right; size-1 dims repeat).
pub fn broadcast_source(out_idx: &[usize], in_shape: &[usize]) -> usize {
    let lead = out_idx.len() - in_shape.len();
    let idx: Vec<usize> = in_shape
        .iter()
        .enumerate()
        .map(|(i, &d)| if d == 1 { 0 } else { out_idx[lead + i] })
        .collect();
    ravel(&idx, in_shape)
}

/// The numpy broadcast rule, written independently of the crate.
pub fn naive_broadcast(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let n = a.len().max(b.len());
    let pad = |s: &[usize]| -> Vec<usize> {
        let mut v = vec![1; n - s.len()];
        v.extend_from_slice(s);
        v
    };
    let (a, b) = (pad(a), pad(b));
    a.iter()
        .zip(&b)
        .map(|(&x, &y)| match (x, y) {
            _ if x == y => Some(x),
            (1, y) => Some(y),
            (x, 1) => Some(x),
            _ => None,
        })
        .collect()
}

// ----- values ----------------------------------------------------------------

/// How element values are drawn.
#[derive(Clone, Copy, Debug)]
pub enum Dist {
    /// Uniform in `[lo, hi)`.
    Uniform(f64, f64),
    /// Integers in `lo..=hi` (gives ties, exact zeros, exact sums).
    Ints(i64, i64),
    /// Uniform magnitude in `[lo, hi)` with a random sign.
    Signed(f64, f64),
}

fn unit(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

impl Dist {
    /// One sample.
    pub fn sample(self, rng: &mut ChaCha8Rng) -> f64 {
        match self {
            Dist::Uniform(lo, hi) => lo + (hi - lo) * unit(rng),
            Dist::Ints(lo, hi) => {
                let span = (hi - lo + 1) as f64;
                lo as f64 + (span * unit(rng)).floor().min(span - 1.0)
            }
            Dist::Signed(lo, hi) => {
                let m = lo + (hi - lo) * unit(rng);
                if rng.next_u32() & 1 == 0 {
                    m
                } else {
                    -m
                }
            }
        }
    }
}

/// `x` rounded to what `dtype` can hold (f32 or f64).
pub fn round_to(dtype: DType, x: f64) -> f64 {
    match dtype {
        DType::F32 => x as f32 as f64,
        DType::F64 => x,
        d => panic!("round_to: {d} is not a compute dtype"),
    }
}

/// `n` values from `dist`, already rounded to `dtype`.
pub fn values(n: usize, dist: Dist, dtype: DType, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| round_to(dtype, dist.sample(&mut rng)))
        .collect()
}

/// A packed f32 or f64 tensor holding `vals`.
pub fn tensor_from(vals: &[f64], shape: &[usize], dtype: DType) -> Tensor {
    match dtype {
        DType::F32 => {
            Tensor::from_vec(vals.iter().map(|&x| x as f32).collect::<Vec<_>>(), shape).unwrap()
        }
        DType::F64 => Tensor::from_vec(vals.to_vec(), shape).unwrap(),
        d => panic!("tensor_from: {d} is not a compute dtype"),
    }
}

// ----- shapes ------------------------------------------------------------------

/// One dimension: mostly 2..=5, often 1, sometimes 0.
pub fn dim() -> impl Strategy<Value = usize> {
    prop_oneof![1 => Just(0usize), 4 => Just(1usize), 7 => 2usize..=5]
}

/// A shape of rank 0..=4.
pub fn shape() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(dim(), 0..=4)
}

/// A shape of rank 0..=4 without zero dims.
pub fn nonempty_shape() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(prop_oneof![1 => Just(1usize), 3 => 2usize..=5], 0..=4)
}

/// `k` shapes that broadcast together, and their broadcast.
///
/// Each operand drops some leading dims of a random shape and turns some
/// others into 1; the returned broadcast is recomputed from the operands
/// (with the naive rule), since they may all have dropped a dim.
pub fn broadcast_family(k: usize) -> impl Strategy<Value = (Vec<usize>, Vec<Vec<usize>>)> {
    shape().prop_flat_map(move |out| {
        let r = out.len();
        let one = (0..=r, prop::collection::vec(prop::bool::weighted(0.3), r));
        (Just(out), prop::collection::vec(one, k)).prop_map(|(out, ops)| {
            let shapes = ops
                .into_iter()
                .map(|(drop, ones)| {
                    (drop..out.len())
                        .map(|i| if ones[i] { 1 } else { out[i] })
                        .collect()
                })
                .collect::<Vec<Vec<usize>>>();
            let out = shapes
                .iter()
                .try_fold(Vec::new(), |acc, s| naive_broadcast(&acc, s))
                .expect("compatible by construction");
            (out, shapes)
        })
    })
}

/// Either compute dtype.
pub fn float_dtype() -> impl Strategy<Value = DType> {
    prop_oneof![Just(DType::F32), Just(DType::F64)]
}

/// A set of axes of a rank-`r` tensor in random order, each written as a
/// non-negative or a negative axis at random (empty means "all axes").
pub fn axes_of(r: usize) -> impl Strategy<Value = Vec<isize>> {
    (
        prop::collection::vec(any::<bool>(), r),
        prop::collection::vec(any::<bool>(), r),
        Just((0..r).collect::<Vec<_>>()).prop_shuffle(),
    )
        .prop_map(move |(pick, neg, order)| {
            order
                .into_iter()
                .filter(|&a| pick[a])
                .map(|a| {
                    if neg[a] {
                        a as isize - r as isize
                    } else {
                        a as isize
                    }
                })
                .collect()
        })
}

/// Normalised, sorted axes as a reduction sees them (empty = all).
pub fn normalized_axes(axes: &[isize], r: usize) -> Vec<usize> {
    if axes.is_empty() {
        return (0..r).collect();
    }
    let mut v: Vec<usize> = axes
        .iter()
        .map(|&a| {
            if a < 0 {
                (a + r as isize) as usize
            } else {
                a as usize
            }
        })
        .collect();
    v.sort_unstable();
    v
}

// ----- strided views -----------------------------------------------------------

/// How one logical axis of a [`View`] is produced.
#[derive(Clone, Copy, Debug)]
pub enum AxisMode {
    /// The source axis as is.
    Plain,
    /// `narrow` out of a longer source axis.
    Narrow { pre: usize, post: usize },
    /// `slice` with a step out of a longer source axis.
    Step {
        start: usize,
        step: usize,
        extra: usize,
    },
    /// A size-1 source axis expanded by `broadcast_to` / `expand`.
    Broadcast,
    /// Inserted by `unsqueeze` (only for size-1 axes; otherwise `Plain`).
    Unsqueeze,
}

fn axis_mode() -> impl Strategy<Value = AxisMode> {
    prop_oneof![
        4 => Just(AxisMode::Plain),
        2 => (0usize..3, 0usize..3).prop_map(|(pre, post)| AxisMode::Narrow { pre, post }),
        2 => (0usize..3, 2usize..=3, 0usize..2)
            .prop_map(|(start, step, extra)| AxisMode::Step { start, step, extra }),
        1 => Just(AxisMode::Broadcast),
        1 => Just(AxisMode::Unsqueeze),
    ]
}

/// The recipe of a [`View`].
#[derive(Clone, Debug)]
pub struct ViewSpec {
    /// The logical shape of the view.
    pub shape: Vec<usize>,
    /// How each logical axis is made.
    pub modes: Vec<AxisMode>,
    /// Storage order of the logical axes (the source is packed in this order,
    /// then permuted back: a transposed view).
    pub perm: Vec<usize>,
    /// Seed of the values.
    pub seed: u64,
}

/// A strided view and its naive reference.
#[derive(Clone)]
pub struct View {
    /// The view (shares storage with a packed source).
    pub t: Tensor,
    /// Its logical shape.
    pub shape: Vec<usize>,
    /// Its values in row-major order, computed without the crate.
    pub want: Vec<f64>,
    /// For each logical element (row-major), its index in the storage buffer.
    pub storage_index: Vec<usize>,
    /// The recipe.
    pub spec: ViewSpec,
}

impl fmt::Debug for View {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = self.t.layout();
        write!(
            f,
            "View {{ {:?} {:?}, strides {:?}, offset {}, storage len {}, spec {:?}, want {:?} }}",
            self.t.dtype(),
            self.shape,
            l.strides(),
            l.offset(),
            self.t.storage().len(),
            self.spec,
            self.want
        )
    }
}

impl ViewSpec {
    fn mode(&self, i: usize) -> AxisMode {
        match self.modes[i] {
            AxisMode::Unsqueeze if self.shape[i] != 1 => AxisMode::Plain,
            m => m,
        }
    }

    fn src_dim(&self, i: usize) -> usize {
        let d = self.shape[i];
        match self.mode(i) {
            AxisMode::Plain | AxisMode::Unsqueeze => d,
            AxisMode::Narrow { pre, post } => pre + d + post,
            AxisMode::Step { start, step, extra } => {
                if d == 0 {
                    start + extra
                } else {
                    start + (d - 1) * step + 1 + extra
                }
            }
            AxisMode::Broadcast => 1,
        }
    }

    /// Build the view through the crate's view ops, and its reference by hand.
    pub fn build(&self, dtype: DType, dist: Dist) -> View {
        self.build_with(
            dist,
            |v| round_to(dtype, v),
            |vals, shape| tensor_from(vals, shape, dtype),
        )
    }

    /// A bool view: values from `dist`, true where non-zero (reference holds 0 / 1).
    pub fn build_bool(&self, dist: Dist) -> View {
        self.build_with(
            dist,
            |v| if v != 0.0 { 1.0 } else { 0.0 },
            |vals, shape| {
                Tensor::from_vec(vals.iter().map(|&x| x != 0.0).collect::<Vec<_>>(), shape).unwrap()
            },
        )
    }

    /// Build with a custom value rounding and source constructor.
    pub fn build_with(
        &self,
        dist: Dist,
        round: impl Fn(f64) -> f64,
        make: impl Fn(&[f64], &[usize]) -> Tensor,
    ) -> View {
        let r = self.shape.len();
        let stored: Vec<usize> = (0..r)
            .filter(|&i| !matches!(self.mode(i), AxisMode::Unsqueeze))
            .collect();
        // Storage order of the stored axes.
        let order: Vec<usize> = self
            .perm
            .iter()
            .copied()
            .filter(|a| stored.contains(a))
            .collect();
        let storage_shape: Vec<usize> = order.iter().map(|&a| self.src_dim(a)).collect();
        let vals: Vec<f64> = values(numel(&storage_shape), dist, DType::F64, self.seed)
            .into_iter()
            .map(round)
            .collect();
        let base = make(&vals, &storage_shape);

        // Permute back into logical order.
        let back: Vec<usize> = stored
            .iter()
            .map(|a| order.iter().position(|o| o == a).unwrap())
            .collect();
        let mut t = base.permute(&back).unwrap();
        for (q, &a) in stored.iter().enumerate() {
            let d = self.shape[a];
            t = match self.mode(a) {
                AxisMode::Narrow { pre, .. } => t.narrow(q as isize, pre, d).unwrap(),
                AxisMode::Step { start, step, .. } => {
                    let end = if d == 0 {
                        start
                    } else {
                        start + (d - 1) * step + 1
                    };
                    t.slice(q as isize, start, end, step).unwrap()
                }
                _ => t,
            };
        }
        for a in 0..r {
            if matches!(self.mode(a), AxisMode::Unsqueeze) {
                t = t.unsqueeze(a as isize).unwrap();
            }
        }
        if (0..r).any(|a| matches!(self.mode(a), AxisMode::Broadcast)) {
            t = if self.seed & 1 == 0 {
                t.broadcast_to(&self.shape).unwrap()
            } else {
                t.expand(&self.shape).unwrap()
            };
        }
        assert_eq!(t.shape(), &self.shape[..], "view construction");

        // The reference: source coordinates by hand, then row-major in storage order.
        let sst = row_major_strides(&storage_shape);
        let n = numel(&self.shape);
        let mut want = Vec::with_capacity(n);
        let mut storage_index = Vec::with_capacity(n);
        for flat in 0..n {
            let idx = unravel(flat, &self.shape);
            let mut pos = 0;
            for (j, &a) in order.iter().enumerate() {
                let c = match self.mode(a) {
                    AxisMode::Plain | AxisMode::Unsqueeze => idx[a],
                    AxisMode::Narrow { pre, .. } => pre + idx[a],
                    AxisMode::Step { start, step, .. } => start + idx[a] * step,
                    AxisMode::Broadcast => 0,
                };
                pos += c * sst[j];
            }
            storage_index.push(pos);
            want.push(vals[pos]);
        }
        View {
            t,
            shape: self.shape.clone(),
            want,
            storage_index,
            spec: self.clone(),
        }
    }
}

/// A recipe for a view of exactly `shape`.
pub fn view_spec(shape: Vec<usize>) -> impl Strategy<Value = ViewSpec> {
    let r = shape.len();
    (
        prop::collection::vec(axis_mode(), r),
        Just((0..r).collect::<Vec<_>>()).prop_shuffle(),
        any::<u64>(),
    )
        .prop_map(move |(modes, perm, seed)| ViewSpec {
            shape: shape.clone(),
            modes,
            perm,
            seed,
        })
}

/// A strided view of exactly `shape`.
pub fn view_of(shape: Vec<usize>, dtype: DType, dist: Dist) -> impl Strategy<Value = View> {
    view_spec(shape).prop_map(move |s| s.build(dtype, dist))
}

/// A strided view of a random shape.
pub fn any_view(dtype: DType, dist: Dist) -> impl Strategy<Value = View> {
    shape().prop_flat_map(move |s| view_of(s, dtype, dist))
}

/// A strided view of a random shape and a random compute dtype.
pub fn any_float_view(dist: Dist) -> impl Strategy<Value = View> {
    (float_dtype(), shape()).prop_flat_map(move |(d, s)| view_of(s, d, dist))
}

// ----- comparisons ---------------------------------------------------------------

/// `got` and `want` agree elementwise within `atol + rtol * |want|`
/// (NaN matches NaN, infinities must be equal).
pub fn check_close(
    got: &[f64],
    want: &[f64],
    rtol: f64,
    atol: f64,
    ctx: &str,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(got.len(), want.len(), "{}: lengths differ", ctx);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let ok = if w.is_nan() {
            g.is_nan()
        } else if w.is_infinite() {
            g == w
        } else {
            (g - w).abs() <= atol + rtol * w.abs()
        };
        prop_assert!(
            ok,
            "{}: element {} is {} but should be {} (rtol {}, atol {})",
            ctx,
            i,
            g,
            w,
            rtol,
            atol
        );
    }
    Ok(())
}

/// `(rtol, atol)` for a pointwise function evaluated in `dtype`.
pub fn pointwise_tol(dtype: DType) -> (f64, f64) {
    match dtype {
        DType::F32 => (2e-5, 1e-6),
        _ => (1e-12, 1e-14),
    }
}
