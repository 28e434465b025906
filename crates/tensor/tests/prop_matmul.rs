//! Matmul against a naive triple loop: batched with broadcast batch dims,
//! 1-D operands, transposed and otherwise strided views, empty dims.

mod common;

use common::*;
use heft_tensor::{DType, Tensor};
use proptest::prelude::*;

/// How one operand is given.
#[derive(Clone, Copy, Debug)]
enum Form {
    /// A 1-D vector (no batch dims).
    Vector,
    /// A (batched) matrix view.
    Matrix,
    /// A (batched) matrix obtained as `x.t()` of a view of the transposed shape.
    Transposed,
}

fn form() -> impl Strategy<Value = Form> {
    prop_oneof![1 => Just(Form::Vector), 3 => Just(Form::Matrix), 2 => Just(Form::Transposed)]
}

fn mat_dim() -> impl Strategy<Value = usize> {
    prop_oneof![1 => Just(0usize), 6 => 1usize..=7, 2 => 8usize..=40]
}

#[derive(Debug, Clone)]
struct Case {
    fa: Form,
    fb: Form,
    batch_a: Vec<usize>,
    batch_b: Vec<usize>,
    m: usize,
    k: usize,
    n: usize,
    spec_a: ViewSpec,
    spec_b: ViewSpec,
}

fn operand_shape(f: Form, batch: &[usize], rows: usize, cols: usize, vec_len: usize) -> Vec<usize> {
    match f {
        Form::Vector => vec![vec_len],
        Form::Matrix => [batch, &[rows, cols]].concat(),
        Form::Transposed => [batch, &[cols, rows]].concat(),
    }
}

fn case() -> impl Strategy<Value = Case> {
    let batch = prop::collection::vec(
        prop_oneof![2 => Just(1usize), 3 => 2usize..=3, 1 => Just(0usize)],
        0..=2,
    );
    (
        form(),
        form(),
        batch,
        (0..=2usize, prop::collection::vec(any::<bool>(), 2)),
        (0..=2usize, prop::collection::vec(any::<bool>(), 2)),
        mat_dim(),
        mat_dim(),
        mat_dim(),
    )
        .prop_flat_map(|(fa, fb, out, (da, oa), (db, ob), m, k, n)| {
            let mk = |drop: usize, ones: &[bool]| -> Vec<usize> {
                (drop.min(out.len())..out.len())
                    .map(|i| if ones[i] { 1 } else { out[i] })
                    .collect()
            };
            let (batch_a, batch_b) = (mk(da, &oa), mk(db, &ob));
            let sa = operand_shape(fa, &batch_a, m, k, k);
            let sb = operand_shape(fb, &batch_b, k, n, k);
            (view_spec(sa), view_spec(sb)).prop_map(move |(spec_a, spec_b)| Case {
                fa,
                fb,
                batch_a: batch_a.clone(),
                batch_b: batch_b.clone(),
                m,
                k,
                n,
                spec_a,
                spec_b,
            })
        })
}

/// The tensor passed to matmul: the view itself, or `.t()` of it.
fn operand(f: Form, v: &View) -> Tensor {
    match f {
        Form::Transposed => v.t.t().unwrap(),
        _ => v.t.clone(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn matmul_matches_a_triple_loop(c in case(), dtype in float_dtype()) {
        let va = c.spec_a.build(dtype, Dist::Uniform(-2.0, 2.0));
        let vb = c.spec_b.build(dtype, Dist::Uniform(-2.0, 2.0));
        let a = operand(c.fa, &va);
        let b = operand(c.fb, &vb);
        let (ba, bb) = match (c.fa, c.fb) {
            (Form::Vector, Form::Vector) => (vec![], vec![]),
            (Form::Vector, _) => (vec![], c.batch_b.clone()),
            (_, Form::Vector) => (c.batch_a.clone(), vec![]),
            _ => (c.batch_a.clone(), c.batch_b.clone()),
        };
        let batch = naive_broadcast(&ba, &bb).unwrap();
        let m = if matches!(c.fa, Form::Vector) { 1 } else { c.m };
        let n = if matches!(c.fb, Form::Vector) { 1 } else { c.n };
        let k = c.k;
        let mut out_shape = batch.clone();
        if !matches!(c.fa, Form::Vector) { out_shape.push(m); }
        if !matches!(c.fb, Form::Vector) { out_shape.push(n); }

        let y = a.matmul(&b).unwrap();
        prop_assert_eq!(y.shape(), &out_shape[..]);
        prop_assert_eq!(y.dtype(), dtype);
        let got = y.to_vec_f64();

        // Element (i, j) of batch `bidx` of a matrix operand, from the view's
        // reference (a transposed operand reads its view at (j, i)).
        let read = |f: Form, v: &View, bshape: &[usize], bidx: &[usize], i: usize, j: usize| -> f64 {
            match f {
                Form::Vector => unreachable!("vectors are read directly"),
                Form::Matrix => {
                    let mut idx = bidx.to_vec();
                    idx.extend([i, j]);
                    let mut sh = bshape.to_vec();
                    sh.extend(&v.shape[v.shape.len() - 2..]);
                    v.want[ravel(&idx, &sh)]
                }
                Form::Transposed => {
                    let mut idx = bidx.to_vec();
                    idx.extend([j, i]);
                    let mut sh = bshape.to_vec();
                    sh.extend(&v.shape[v.shape.len() - 2..]);
                    v.want[ravel(&idx, &sh)]
                }
            }
        };
        let eps = if dtype == DType::F32 { f32::EPSILON as f64 } else { f64::EPSILON };
        for bf in 0..numel(&batch) {
            let bidx = unravel(bf, &batch);
            let sub = |bs: &[usize]| -> Vec<usize> {
                let lead = bidx.len() - bs.len();
                bs.iter().enumerate().map(|(q, &d)| if d == 1 { 0 } else { bidx[lead + q] }).collect()
            };
            let (ia, ib) = (sub(&ba), sub(&bb));
            for i in 0..m {
                for j in 0..n {
                    let mut want = 0.0;
                    let mut mag = 0.0;
                    for p in 0..k {
                        // Vector lhs is a row [1, k]; vector rhs a column [k, 1].
                        let x = if matches!(c.fa, Form::Vector) { va.want[p] } else { read(c.fa, &va, &ba, &ia, i, p) };
                        let z = if matches!(c.fb, Form::Vector) { vb.want[p] } else { read(c.fb, &vb, &bb, &ib, p, j) };
                        want += x * z;
                        mag += (x * z).abs();
                    }
                    let g = got[(bf * m + i) * n + j];
                    // Each of the k products and k - 1 additions rounds once:
                    // |error| <= (k + 1) eps sum |a b| (any summation order).
                    let tol = (k as f64 + 1.0) * eps * mag;
                    prop_assert!((g - want).abs() <= tol, "[{:?}, {}, {}]: {} vs {} (tol {})", bidx, i, j, g, want, tol);
                }
            }
        }
    }
}

#[test]
fn small_known_products() {
    let a = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
    // a @ a^T through a transposed view.
    let g = a.matmul(&a.t().unwrap()).unwrap();
    assert_eq!(g.to_vec::<f64>().unwrap(), vec![14.0, 32.0, 32.0, 77.0]);
    // vector @ matrix, matrix @ vector, vector @ vector.
    let v = Tensor::from_vec(vec![1.0f64, -1.0], &[2]).unwrap();
    assert_eq!(
        v.matmul(&a).unwrap().to_vec::<f64>().unwrap(),
        vec![-3.0, -3.0, -3.0]
    );
    let w = Tensor::from_vec(vec![1.0f64, 0.0, -1.0], &[3]).unwrap();
    assert_eq!(
        a.matmul(&w).unwrap().to_vec::<f64>().unwrap(),
        vec![-2.0, -2.0]
    );
    let d = w.matmul(&w).unwrap();
    assert_eq!((d.shape(), d.item::<f64>().unwrap()), (&[][..], 2.0));
    // k = 0 gives zeros; m = 0 gives an empty result.
    let e = Tensor::zeros(&[2, 0], DType::F32)
        .matmul(&Tensor::zeros(&[0, 3], DType::F32))
        .unwrap();
    assert_eq!(e.to_vec::<f32>().unwrap(), vec![0.0; 6]);
    let e = Tensor::zeros(&[0, 4], DType::F32)
        .matmul(&Tensor::ones(&[4, 3], DType::F32))
        .unwrap();
    assert_eq!(e.shape(), &[0, 3]);
    // A broadcast batch: [2, 1, 2, 3] x [4, 3, 1] -> [2, 4, 2, 1].
    let x = Tensor::arange(0.0, 12.0, 1.0, DType::F64)
        .unwrap()
        .reshape(&[2, 1, 2, 3])
        .unwrap();
    let y = Tensor::ones(&[4, 3, 1], DType::F64);
    let z = x.matmul(&y).unwrap();
    assert_eq!(z.shape(), &[2, 4, 2, 1]);
    assert_eq!(&z.to_vec::<f64>().unwrap()[..4], &[3.0, 12.0, 3.0, 12.0]);
}
