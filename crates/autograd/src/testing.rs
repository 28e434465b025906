//! proptest strategies for gradient property tests (feature `proptest`).
//!
//! Strategies produce f64 tensors of random shapes (size-1 dims likely),
//! broadcast-compatible shape pairs, matmul-compatible shapes and strided
//! views; [`check_gradients`] is the one-line property: "for all inputs
//! from this strategy, gradcheck passes".
//!
//! ```
//! use heft_autograd::testing::{check_gradients, tensor, shape};
//! use proptest::prelude::*;
//!
//! // d/dx sum(sin(x) * x) checked on 32 random shapes.
//! let inputs = shape(3, 4).prop_flat_map(|s| tensor(s, -2.0..2.0)).prop_map(|t| vec![t]);
//! check_gradients(inputs, 32, |v| v[0].sin()?.mul(&v[0])?.sum_all()).unwrap();
//! ```

use crate::gradcheck::{gradcheck, GradcheckOptions};
use crate::var::Var;
use heft_tensor::Tensor;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::ops::Range;

/// A shape of rank `0..=max_rank` with dims in `1..=max_dim` (1 is drawn often).
pub fn shape(max_rank: usize, max_dim: usize) -> impl Strategy<Value = Vec<usize>> {
    let dim = prop_oneof![1 => Just(1usize), 3 => 1..=max_dim.max(1)];
    proptest::collection::vec(dim, 0..=max_rank)
}

/// A packed f64 tensor of `shape` with values drawn from `range`.
pub fn tensor(shape: Vec<usize>, range: Range<f64>) -> impl Strategy<Value = Tensor> {
    let n: usize = shape.iter().product();
    proptest::collection::vec(range, n)
        .prop_map(move |v| Tensor::from_vec(v, &shape).expect("length matches"))
}

/// Two shapes that broadcast together (each dim is shared, or 1 on one side; ranks may differ).
pub fn broadcast_pair(
    max_rank: usize,
    max_dim: usize,
) -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    (
        shape(max_rank, max_dim),
        proptest::collection::vec(0u8..3, max_rank),
        0..=max_rank,
    )
        .prop_map(|(s, pick, drop)| {
            let mut a = s.clone();
            let mut b = s;
            for (i, p) in pick.iter().enumerate().take(a.len()) {
                match p {
                    1 => a[i] = 1,
                    2 => b[i] = 1,
                    _ => {}
                }
            }
            let d = drop.min(b.len());
            (a, b[d..].to_vec())
        })
}

/// `(batch, m, k, n)` for a matmul `[batch.., m, k] x [k, n]` (batch may be empty).
pub fn matmul_shapes(max_dim: usize) -> impl Strategy<Value = (Vec<usize>, usize, usize, usize)> {
    (
        proptest::collection::vec(1..=3usize, 0..=1),
        1..=max_dim,
        1..=max_dim,
        1..=max_dim,
    )
}

/// A strided (usually non-contiguous) view of a random tensor, with the given
/// logical `shape`: built by transposing, slicing with a step, or
/// broadcasting a stored tensor.
pub fn strided_view(shape: Vec<usize>, range: Range<f64>) -> impl Strategy<Value = Tensor> {
    let kind = 0..3u8;
    (Just(shape), kind).prop_flat_map(move |(shape, kind)| {
        let stored: Vec<usize> = match kind {
            // transposed: store the reverse and transpose back
            0 => shape.iter().rev().copied().collect(),
            // sliced: store twice as many in the last dim, take every 2nd
            1 => {
                let mut s = shape.clone();
                if let Some(l) = s.last_mut() {
                    *l *= 2;
                }
                s
            }
            // broadcast: store size 1 in the first dim
            _ => {
                let mut s = shape.clone();
                if let Some(f) = s.first_mut() {
                    *f = 1;
                }
                s
            }
        };
        let shape2 = shape.clone();
        tensor(stored, range.clone()).prop_map(move |t| {
            let nd = shape2.len() as isize;
            match kind {
                0 if nd >= 2 => {
                    let perm: Vec<usize> = (0..shape2.len()).rev().collect();
                    t.permute(&perm).expect("valid permutation")
                }
                0 => t,
                1 if nd >= 1 => {
                    let last = *t.shape().last().expect("rank >= 1");
                    t.slice(-1, 0, last, 2).expect("valid slice")
                }
                1 => t,
                _ => t.broadcast_to(&shape2).expect("broadcastable"),
            }
        })
    })
}

/// Run `gradcheck` on `cases` inputs drawn from `strategy`; `Err` carries the
/// (shrunk) failing input and the report.
pub fn check_gradients<S>(
    strategy: S,
    cases: u32,
    f: impl Fn(&[Var]) -> crate::Result<Var>,
) -> Result<(), String>
where
    S: Strategy<Value = Vec<Tensor>>,
{
    check_gradients_with(strategy, cases, &GradcheckOptions::default(), f)
}

/// [`check_gradients`] with explicit tolerances.
pub fn check_gradients_with<S>(
    strategy: S,
    cases: u32,
    opts: &GradcheckOptions,
    f: impl Fn(&[Var]) -> crate::Result<Var>,
) -> Result<(), String>
where
    S: Strategy<Value = Vec<Tensor>>,
{
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&strategy, |inputs| {
            gradcheck(&f, &inputs, opts)
                .map(|_| ())
                .map_err(|e| TestCaseError::fail(e.to_string()))
        })
        .map_err(|e| e.to_string())
}
