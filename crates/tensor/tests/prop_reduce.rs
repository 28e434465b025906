//! Reductions over random axis subsets of strided views, against naive f64 loops.

mod common;

use common::*;
use heft_tensor::{sum_to_shape, DType, Result, Tensor};
use proptest::prelude::*;

/// Split a view's values into the groups each output element reduces, by hand.
/// Returns the output shape and, per output element (row-major), its inputs in
/// row-major input order.
fn groups(
    shape: &[usize],
    want: &[f64],
    axes: &[usize],
    keepdim: bool,
) -> (Vec<usize>, Vec<Vec<f64>>) {
    let kept: Vec<usize> = (0..shape.len()).filter(|a| !axes.contains(a)).collect();
    let kept_shape: Vec<usize> = kept.iter().map(|&a| shape[a]).collect();
    let out_shape: Vec<usize> = (0..shape.len())
        .filter_map(|a| {
            if axes.contains(&a) {
                keepdim.then_some(1)
            } else {
                Some(shape[a])
            }
        })
        .collect();
    let mut g = vec![Vec::new(); numel(&kept_shape)];
    for (f, &x) in want.iter().enumerate() {
        let idx = unravel(f, shape);
        let k: Vec<usize> = kept.iter().map(|&a| idx[a]).collect();
        g[ravel(&k, &kept_shape)].push(x);
    }
    (out_shape, g)
}

/// A view with a random axis subset (empty = all) and keepdim flag.
fn view_axes(dist: Dist) -> impl Strategy<Value = (View, Vec<isize>, bool)> {
    (float_dtype(), shape()).prop_flat_map(move |(d, s)| {
        let r = s.len();
        (view_of(s, d, dist), axes_of(r), any::<bool>())
    })
}

fn naive_sum(g: &[f64]) -> f64 {
    g.iter().sum()
}

fn naive_max(g: &[f64]) -> f64 {
    g.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

fn naive_var(g: &[f64], correction: usize) -> f64 {
    let n = g.len();
    if n <= correction {
        return f64::NAN;
    }
    let m = naive_sum(g) / n as f64;
    g.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - correction) as f64
}

/// Tolerance for a sum of `g` computed in `dtype`.
///
/// The crate sums in the input dtype with several accumulators and fixed
/// chunks, so the order differs from the naive left-to-right f64 loop. Any
/// summation order of n terms in precision eps is within (n - 1) eps sum |x|
/// of the exact sum; f32 rounding of the output adds eps |sum|. So we scale
/// the tolerance by n, not by a constant: a long f32 sum is legitimately
/// off by far more than one ulp of the result.
fn sum_tol(dtype: DType, g: &[f64]) -> f64 {
    let eps = if dtype == DType::F32 {
        f32::EPSILON as f64
    } else {
        f64::EPSILON
    };
    let abs: f64 = g.iter().map(|x| x.abs()).sum();
    (g.len() as f64 + 1.0) * eps * abs + 1e-300
}

type Reduce = fn(&Tensor, &[isize], bool) -> Result<Tensor>;
/// (name, op, naive reduction of one group)
type ReduceRow = (&'static str, Reduce, fn(&[f64]) -> f64);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn sum_mean_and_norms((v, axes, keepdim) in view_axes(Dist::Uniform(-10.0, 10.0))) {
        let dtype = v.t.dtype();
        let ax = normalized_axes(&axes, v.shape.len());
        let (out_shape, g) = groups(&v.shape, &v.want, &ax, keepdim);

        let s = v.t.sum(&axes, keepdim).unwrap();
        prop_assert_eq!(s.shape(), &out_shape[..]);
        prop_assert_eq!(s.dtype(), dtype);
        for (got, g) in s.to_vec_f64().iter().zip(&g) {
            prop_assert!((got - naive_sum(g)).abs() <= sum_tol(dtype, g), "sum {} vs {}", got, naive_sum(g));
        }

        let m = v.t.mean(&axes, keepdim).unwrap();
        prop_assert_eq!(m.shape(), &out_shape[..]);
        for (got, g) in m.to_vec_f64().iter().zip(&g) {
            if g.is_empty() {
                prop_assert!(got.is_nan(), "mean of nothing is NaN, got {}", got);
            } else {
                let want = naive_sum(g) / g.len() as f64;
                prop_assert!((got - want).abs() <= sum_tol(dtype, g) / g.len() as f64 * 2.0, "mean {} vs {}", got, want);
            }
        }

        let l1 = v.t.norm_l1(&axes, keepdim).unwrap();
        prop_assert_eq!(l1.shape(), &out_shape[..]);
        for (got, g) in l1.to_vec_f64().iter().zip(&g) {
            let abs: Vec<f64> = g.iter().map(|x| x.abs()).collect();
            prop_assert!((got - naive_sum(&abs)).abs() <= sum_tol(dtype, g));
        }

        let l2 = v.t.norm_l2(&axes, keepdim).unwrap();
        prop_assert_eq!(l2.shape(), &out_shape[..]);
        for (got, g) in l2.to_vec_f64().iter().zip(&g) {
            let sq: Vec<f64> = g.iter().map(|x| x * x).collect();
            let want = naive_sum(&sq).sqrt();
            // sqrt halves the relative error of the sum of squares.
            prop_assert!((got - want).abs() <= sum_tol(dtype, &sq) / want.max(1e-300) + 1e-6 * want * (dtype == DType::F32) as u8 as f64,
                "l2 {} vs {}", got, want);
        }
    }

    #[test]
    fn prod_max_min((v, axes, keepdim) in view_axes(Dist::Uniform(0.5, 1.5))) {
        let dtype = v.t.dtype();
        let ax = normalized_axes(&axes, v.shape.len());
        let (out_shape, g) = groups(&v.shape, &v.want, &ax, keepdim);
        let p = v.t.prod(&axes, keepdim).unwrap();
        prop_assert_eq!(p.shape(), &out_shape[..]);
        let eps = if dtype == DType::F32 { f32::EPSILON as f64 } else { f64::EPSILON };
        for (got, g) in p.to_vec_f64().iter().zip(&g) {
            let want: f64 = g.iter().product();
            // Each multiplication rounds once: relative error <= (n + 1) eps.
            prop_assert!((got - want).abs() <= (g.len() as f64 + 1.0) * eps * want.abs(), "prod {} vs {}", got, want);
        }
        // As in numpy and PyTorch: max over a size-0 axis fails, even when the
        // output would be empty too (another axis of size 0 kept).
        let empty = ax.iter().any(|&a| v.shape[a] == 0);
        let table: [ReduceRow; 2] = [
            ("max", |t, a, k| t.max(a, k), naive_max),
            ("min", |t, a, k| t.min(a, k), |g| g.iter().copied().fold(f64::INFINITY, f64::min)),
        ];
        for (name, op, f) in table {
            match op(&v.t, &axes, keepdim) {
                Ok(y) => {
                    prop_assert!(!empty, "{} over a size-0 axis should fail", name);
                    prop_assert_eq!(y.shape(), &out_shape[..]);
                    let want: Vec<f64> = g.iter().map(|g| f(g)).collect();
                    prop_assert_eq!(y.to_vec_f64(), want, "{}", name);
                }
                Err(e) => {
                    prop_assert!(empty, "{} failed: {}", name, e);
                    prop_assert!(e.to_string().starts_with(name), "{}", e);
                }
            }
        }
    }

    #[test]
    fn var_std_logsumexp((v, axes, keepdim) in view_axes(Dist::Uniform(-5.0, 5.0)), correction in 0usize..2) {
        let dtype = v.t.dtype();
        let ax = normalized_axes(&axes, v.shape.len());
        let (out_shape, g) = groups(&v.shape, &v.want, &ax, keepdim);
        let (rtol, atol) = if dtype == DType::F32 { (1e-4, 1e-4) } else { (1e-10, 1e-10) };
        let var = v.t.var(&axes, correction, keepdim).unwrap();
        prop_assert_eq!(var.shape(), &out_shape[..]);
        let want: Vec<f64> = g.iter().map(|g| naive_var(g, correction)).collect();
        check_close(&var.to_vec_f64(), &want, rtol, atol, "var")?;
        let std = v.t.std(&axes, correction, keepdim).unwrap();
        let want_std: Vec<f64> = want.iter().map(|x| x.sqrt()).collect();
        check_close(&std.to_vec_f64(), &want_std, rtol, atol.sqrt() * 0.1, "std")?;

        match v.t.logsumexp(&axes, keepdim) {
            Ok(y) => {
                prop_assert_eq!(y.shape(), &out_shape[..]);
                let want: Vec<f64> = g
                    .iter()
                    .map(|g| {
                        let m = naive_max(g);
                        m + g.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
                    })
                    .collect();
                check_close(&y.to_vec_f64(), &want, rtol, atol, "logsumexp")?;
            }
            // Like max, logsumexp of an empty slice has no value.
            Err(_) => prop_assert!(ax.iter().any(|&a| v.shape[a] == 0)),
        }
    }

    #[test]
    fn logsumexp_is_stable_for_huge_values(v in any_float_view(Dist::Uniform(-1e4, 1e4))) {
        let dtype = v.t.dtype();
        prop_assume!(!v.want.is_empty());
        let y = v.t.logsumexp(&[], false).unwrap().to_scalar_f64().unwrap();
        let m = naive_max(&v.want);
        let want = m + v.want.iter().map(|x| (x - m).exp()).sum::<f64>().ln();
        let tol = if dtype == DType::F32 { 1e-6 * want.abs() + 1e-3 } else { 1e-12 * want.abs() };
        prop_assert!((y - want).abs() <= tol, "{} vs {}", y, want);
    }

    #[test]
    fn argmax_argmin_pick_the_first_extremum(
        (v, axis, neg, keepdim) in (float_dtype(), prop::collection::vec(dim(), 1..=4)).prop_flat_map(|(d, s)| {
            let r = s.len();
            (view_of(s, d, Dist::Ints(-2, 2)), 0..r, any::<bool>(), any::<bool>())
        })
    ) {
        let r = v.shape.len();
        let ia = if neg { axis as isize - r as isize } else { axis as isize };
        let (out_shape, g) = groups(&v.shape, &v.want, &[axis], keepdim);
        for (name, is_max) in [("argmax", true), ("argmin", false)] {
            let y = if is_max { v.t.argmax(ia, keepdim) } else { v.t.argmin(ia, keepdim) };
            if v.shape[axis] == 0 {
                prop_assert!(y.is_err(), "{} over an empty axis", name);
                continue;
            }
            let y = y.unwrap();
            prop_assert_eq!(y.dtype(), DType::I64);
            prop_assert_eq!(y.shape(), &out_shape[..]);
            let want: Vec<i64> = g
                .iter()
                .map(|g| {
                    let mut best = 0;
                    for (i, &x) in g.iter().enumerate() {
                        if (is_max && x > g[best]) || (!is_max && x < g[best]) {
                            best = i;
                        }
                    }
                    best as i64
                })
                .collect();
            prop_assert_eq!(y.to_vec::<i64>().unwrap(), want, "{}", name);
        }
    }

    #[test]
    fn softmax_rows_sum_to_one_and_match_the_formula(
        (v, axis, scale) in (float_dtype(), prop::collection::vec(dim(), 1..=4), prop_oneof![Just(1.0f64), Just(1e4)])
            .prop_flat_map(|(d, s, scale)| {
                let r = s.len();
                (view_of(s, d, Dist::Uniform(-scale, scale)), 0..r, Just(scale))
            })
    ) {
        let dtype = v.t.dtype();
        let r = v.shape.len();
        let (_, g) = groups(&v.shape, &v.want, &[axis], true);
        // Output position of element j of row `k` along `axis`.
        let kept: Vec<usize> = (0..r).filter(|&a| a != axis).collect();
        let kept_shape: Vec<usize> = kept.iter().map(|&a| v.shape[a]).collect();
        let pos = |k: usize, j: usize| {
            let ki = unravel(k, &kept_shape);
            let mut idx = vec![0; r];
            for (q, &a) in kept.iter().enumerate() {
                idx[a] = ki[q];
            }
            idx[axis] = j;
            ravel(&idx, &v.shape)
        };
        let neg_axis = axis as isize - r as isize;
        let p = v.t.softmax(if scale > 1.0 { neg_axis } else { axis as isize }).unwrap().to_vec_f64();
        let lp = v.t.log_softmax(axis as isize).unwrap().to_vec_f64();
        prop_assert_eq!(p.len(), v.want.len());
        let (pt, lrt) = if dtype == DType::F32 { (1e-5, 1e-5) } else { (1e-13, 1e-12) };
        for (k, g) in g.iter().enumerate() {
            if g.is_empty() {
                continue;
            }
            let m = naive_max(g);
            let s: f64 = g.iter().map(|x| (x - m).exp()).sum();
            let mut row_sum = 0.0;
            for (j, &x) in g.iter().enumerate() {
                let want_p = (x - m).exp() / s;
                let want_lp = x - m - s.ln();
                let (gp, glp) = (p[pos(k, j)], lp[pos(k, j)]);
                prop_assert!(gp.is_finite() && glp.is_finite());
                prop_assert!((gp - want_p).abs() <= pt, "softmax {} vs {}", gp, want_p);
                prop_assert!((glp - want_lp).abs() <= lrt * (1.0 + want_lp.abs()), "log_softmax {} vs {}", glp, want_lp);
                row_sum += gp;
            }
            prop_assert!((row_sum - 1.0).abs() <= pt * g.len() as f64, "row sums to {}", row_sum);
        }
    }

    #[test]
    fn sum_to_shape_undoes_broadcasting(
        (target, spec) in shape().prop_flat_map(|t| {
            let r = t.len();
            (Just(t), prop::collection::vec(dim(), 0..=2), prop::collection::vec(prop_oneof![Just(false), Just(true)], r))
        }).prop_flat_map(|(t, lead, grow)| {
            // x's shape: extra leading dims, and some size-1 target dims grown.
            let mut xs = lead;
            for (i, &d) in t.iter().enumerate() {
                xs.push(if d == 1 && grow[i] { 3 } else { d });
            }
            (Just(t), view_spec(xs))
        }),
        dtype in float_dtype(),
    ) {
        let v = spec.build(dtype, Dist::Ints(-5, 5));
        let y = sum_to_shape(&v.t, &target).unwrap();
        prop_assert_eq!(y.shape(), &target[..]);
        // Integer data: every partial sum is exact in f32 and f64.
        let mut want = vec![0.0; numel(&target)];
        for (f, &x) in v.want.iter().enumerate() {
            want[broadcast_source(&unravel(f, &v.shape), &target)] += x;
        }
        prop_assert_eq!(y.to_vec_f64(), want);
    }
}

#[test]
fn reduction_edge_cases() {
    let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
    // Duplicate axes (also as -1 and 1) are an error, not a double reduction.
    let e = x.sum(&[1, -1], false).unwrap_err().to_string();
    assert_eq!(e, "sum: axis -1 is given twice");
    // Rank 0: reducing "all" of nothing leaves the scalar.
    let s = Tensor::scalar(2.5f32);
    assert_eq!(s.sum(&[], false).unwrap().item::<f32>().unwrap(), 2.5);
    assert_eq!(s.max(&[], true).unwrap().item::<f32>().unwrap(), 2.5);
    // var with correction >= n is NaN, as in PyTorch.
    assert!(Tensor::from_vec(vec![1.0f64], &[1])
        .unwrap()
        .var(&[], 1, false)
        .unwrap()
        .item::<f64>()
        .unwrap()
        .is_nan());
    // prod of nothing is 1, sum of nothing 0.
    let z = Tensor::zeros(&[2, 0], DType::F64);
    assert_eq!(
        z.prod(&[1], false).unwrap().to_vec::<f64>().unwrap(),
        vec![1.0, 1.0]
    );
    assert_eq!(z.sum(&[], false).unwrap().item::<f64>().unwrap(), 0.0);
    // NaN wins in max and argmax.
    let n = Tensor::from_vec(vec![1.0f64, f64::NAN, 3.0], &[3]).unwrap();
    assert!(n.max(&[], false).unwrap().item::<f64>().unwrap().is_nan());
    assert_eq!(n.argmax(0, false).unwrap().item::<i64>().unwrap(), 1);
    // logsumexp of an all -inf row is -inf, not NaN.
    let m = Tensor::from_vec(vec![f64::NEG_INFINITY; 2], &[2]).unwrap();
    assert_eq!(
        m.logsumexp(&[0], false).unwrap().item::<f64>().unwrap(),
        f64::NEG_INFINITY
    );
    // sum_to_shape refuses shapes it cannot come from.
    assert!(sum_to_shape(&x, &[2]).is_err());
    assert!(sum_to_shape(&x, &[1, 2, 3]).is_err());
    assert_eq!(
        sum_to_shape(&x, &[3]).unwrap().to_vec::<f64>().unwrap(),
        vec![5.0, 7.0, 9.0]
    );
}
