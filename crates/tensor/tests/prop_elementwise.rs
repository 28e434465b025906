//! Elementwise ops on strided views against naive f64 formulas.
//!
//! f64 results must match the formula to ~1e-12; f32 results (computed in
//! f32 from f32 inputs) to ~2e-5 relative.

mod common;

use common::*;
use heft_tensor::{DType, Result, Tensor};
use proptest::prelude::*;

type UnaryOp = fn(&Tensor) -> Result<Tensor>;
type BinaryOp = fn(&Tensor, &Tensor) -> Result<Tensor>;
type ScalarOp = fn(&Tensor, f64) -> Result<Tensor>;
/// (name, op, naive formula, input values)
type UnaryRow = (&'static str, UnaryOp, fn(f64) -> f64, Dist);
/// (name, op, naive formula, lhs values, rhs values)
type BinaryRow = (&'static str, BinaryOp, fn(f64, f64) -> f64, Dist, Dist);
/// (name, op, naive predicate)
type CompareRow = (&'static str, BinaryOp, fn(f64, f64) -> bool);
/// (name, op, naive formula)
type ScalarRow = (&'static str, ScalarOp, fn(f64, f64) -> f64);
/// (name, op, naive predicate)
type ScalarCmpRow = (&'static str, ScalarOp, fn(f64, f64) -> bool);

/// erf by its Maclaurin series; accurate to ~1e-13 for |x| <= 3.
fn erf(x: f64) -> f64 {
    let mut term = x;
    let mut sum = x;
    for n in 1..200 {
        term *= -x * x / n as f64;
        let add = term / (2 * n + 1) as f64;
        sum += add;
        if add.abs() < 1e-18 {
            break;
        }
    }
    sum * 2.0 / std::f64::consts::PI.sqrt()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Every unary op with its naive formula and a domain where it is defined.
fn unary_table() -> Vec<UnaryRow> {
    let wide = Dist::Uniform(-10.0, 10.0);
    vec![
        ("neg", |t| t.neg(), |x| -x, wide),
        ("abs", |t| t.abs(), |x| if x < 0.0 { -x } else { x }, wide),
        ("exp", |t| t.exp(), f64::exp, Dist::Uniform(-20.0, 20.0)),
        ("log", |t| t.log(), f64::ln, Dist::Uniform(1e-3, 100.0)),
        (
            "log1p",
            |t| t.log1p(),
            f64::ln_1p,
            Dist::Uniform(-0.9, 10.0),
        ),
        (
            "expm1",
            |t| t.expm1(),
            f64::exp_m1,
            Dist::Uniform(-5.0, 5.0),
        ),
        ("sqrt", |t| t.sqrt(), f64::sqrt, Dist::Uniform(0.0, 100.0)),
        (
            "rsqrt",
            |t| t.rsqrt(),
            |x| 1.0 / x.sqrt(),
            Dist::Uniform(1e-2, 100.0),
        ),
        ("recip", |t| t.recip(), |x| 1.0 / x, Dist::Signed(0.1, 10.0)),
        ("square", |t| t.square(), |x| x * x, wide),
        ("sin", |t| t.sin(), f64::sin, wide),
        ("cos", |t| t.cos(), f64::cos, wide),
        (
            "tanh",
            |t| t.tanh(),
            |x| {
                let e = (2.0 * x).exp();
                (e - 1.0) / (e + 1.0)
            },
            wide,
        ),
        ("erf", |t| t.erf(), erf, Dist::Uniform(-3.0, 3.0)),
        (
            "sigmoid",
            |t| t.sigmoid(),
            sigmoid,
            Dist::Uniform(-30.0, 30.0),
        ),
        (
            "relu",
            |t| t.relu(),
            |x| if x > 0.0 { x } else { 0.0 },
            Dist::Ints(-3, 3),
        ),
        (
            "gelu",
            |t| t.gelu(),
            |x| 0.5 * x * (1.0 + erf(x / 2f64.sqrt())),
            Dist::Uniform(-3.0, 3.0),
        ),
        (
            "gelu_tanh",
            |t| t.gelu_tanh(),
            |x| {
                let u = (2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3));
                0.5 * x * (1.0 + u.tanh())
            },
            Dist::Uniform(-5.0, 5.0),
        ),
        (
            "silu",
            |t| t.silu(),
            |x| x * sigmoid(x),
            Dist::Uniform(-20.0, 20.0),
        ),
        (
            "softplus",
            |t| t.softplus(),
            |x| (1.0 + x.exp()).ln(),
            Dist::Uniform(-20.0, 20.0),
        ),
        (
            "sign",
            |t| t.sign(),
            |x| {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    0.0
                }
            },
            Dist::Ints(-2, 2),
        ),
        (
            "leaky_relu(0.1)",
            |t| t.leaky_relu(0.1),
            |x| if x > 0.0 { x } else { 0.1 * x },
            wide,
        ),
        (
            "clamp(-2, 3)",
            |t| t.clamp(-2.0, 3.0),
            |x| x.clamp(-2.0, 3.0),
            Dist::Ints(-5, 5),
        ),
        ("powf(2)", |t| t.powf(2.0), |x| x * x, wide),
        (
            "powf(0.5)",
            |t| t.powf(0.5),
            f64::sqrt,
            Dist::Uniform(0.0, 50.0),
        ),
        (
            "powf(-1.5)",
            |t| t.powf(-1.5),
            |x| 1.0 / (x * x.sqrt()),
            Dist::Uniform(0.1, 50.0),
        ),
    ]
}

fn binary_table() -> Vec<BinaryRow> {
    let wide = Dist::Uniform(-10.0, 10.0);
    let ints = Dist::Ints(-3, 3);
    vec![
        ("add", |a, b| a.add(b), |x, y| x + y, wide, wide),
        ("sub", |a, b| a.sub(b), |x, y| x - y, wide, wide),
        ("mul", |a, b| a.mul(b), |x, y| x * y, wide, wide),
        (
            "div",
            |a, b| a.div(b),
            |x, y| x / y,
            wide,
            Dist::Signed(0.25, 4.0),
        ),
        (
            "pow",
            |a, b| a.pow(b),
            |x, y| (y * x.ln()).exp(),
            Dist::Uniform(0.1, 4.0),
            Dist::Uniform(-2.0, 2.0),
        ),
        (
            "maximum",
            |a, b| a.maximum(b),
            |x, y| if x > y { x } else { y },
            ints,
            ints,
        ),
        (
            "minimum",
            |a, b| a.minimum(b),
            |x, y| if x < y { x } else { y },
            ints,
            ints,
        ),
    ]
}

fn compare_table() -> Vec<CompareRow> {
    vec![
        ("eq", |a, b| a.eq(b), |x, y| x == y),
        ("ne", |a, b| a.ne(b), |x, y| x != y),
        ("lt", |a, b| a.lt(b), |x, y| x < y),
        ("le", |a, b| a.le(b), |x, y| x <= y),
        ("gt", |a, b| a.gt(b), |x, y| x > y),
        ("ge", |a, b| a.ge(b), |x, y| x >= y),
    ]
}

/// Naive broadcasting: `f` over the output shape, reading each operand by hand.
fn broadcast_ref<T>(
    out: &[usize],
    a: (&[f64], &[usize]),
    b: (&[f64], &[usize]),
    f: impl Fn(f64, f64) -> T,
) -> Vec<T> {
    (0..numel(out))
        .map(|k| {
            let idx = unravel(k, out);
            f(
                a.0[broadcast_source(&idx, a.1)],
                b.0[broadcast_source(&idx, b.1)],
            )
        })
        .collect()
}

/// Two view recipes whose shapes broadcast together, and the broadcast shape.
fn view_pair() -> impl Strategy<Value = (Vec<usize>, ViewSpec, ViewSpec)> {
    broadcast_family(2).prop_flat_map(|(out, shapes)| {
        (
            Just(out),
            view_spec(shapes[0].clone()),
            view_spec(shapes[1].clone()),
        )
    })
}

fn mask_values(t: &Tensor) -> Vec<bool> {
    assert_eq!(t.dtype(), DType::Bool);
    t.to_vec::<bool>().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn unary_ops_match_their_formulas(dtype in float_dtype(), spec in shape().prop_flat_map(view_spec)) {
        let (rtol, atol) = pointwise_tol(dtype);
        let atol = if dtype == DType::F64 { 1e-12 } else { atol };
        for (name, op, f, dist) in unary_table() {
            let v = spec.build(dtype, dist);
            let y = op(&v.t).unwrap();
            prop_assert_eq!(y.dtype(), dtype);
            prop_assert_eq!(y.shape(), &v.shape[..]);
            prop_assert!(y.is_contiguous());
            let want: Vec<f64> = v.want.iter().map(|&x| f(x)).collect();
            check_close(&y.to_vec_f64(), &want, rtol, atol, name)?;
            // The input is untouched.
            prop_assert_eq!(v.t.contiguous().to_vec_f64(), v.want.clone());
        }
    }

    #[test]
    fn parameterised_unary_ops(
        dtype in float_dtype(),
        spec in shape().prop_flat_map(view_spec),
        slope in -1.0f64..1.0,
        lo in -5i32..5,
        width in 0i32..5,
        p in -3.0f64..3.0,
    ) {
        let (rtol, atol) = pointwise_tol(dtype);
        let v = spec.build(dtype, Dist::Uniform(-6.0, 6.0));
        let slope_r = round_to(dtype, slope);
        let want: Vec<f64> = v.want.iter().map(|&x| if x > 0.0 { x } else { slope_r * x }).collect();
        check_close(&v.t.leaky_relu(slope).unwrap().to_vec_f64(), &want, rtol, atol, "leaky_relu")?;

        // Clamp bounds are integers so ties with the (integer) inputs happen.
        let vi = spec.build(dtype, Dist::Ints(-6, 6));
        let (lo, hi) = (lo as f64, (lo + width) as f64);
        let want: Vec<f64> = vi.want.iter().map(|&x| if x < lo { lo } else if x > hi { hi } else { x }).collect();
        prop_assert_eq!(vi.t.clamp(lo, hi).unwrap().to_vec_f64(), want);

        let vp = spec.build(dtype, Dist::Uniform(0.1, 5.0));
        let p_r = round_to(dtype, p);
        let want: Vec<f64> = vp.want.iter().map(|&x| (p_r * x.ln()).exp()).collect();
        check_close(&vp.t.powf(p).unwrap().to_vec_f64(), &want, rtol * 4.0, atol, "powf")?;
    }

    #[test]
    fn binary_ops_broadcast_like_numpy(dtype in float_dtype(), (out, sa, sb) in view_pair()) {
        let (rtol, atol) = pointwise_tol(dtype);
        for (name, op, f, da, db) in binary_table() {
            let (a, b) = (sa.build(dtype, da), sb.build(dtype, db));
            let y = op(&a.t, &b.t).unwrap();
            prop_assert_eq!(y.shape(), &out[..], "{}", name);
            prop_assert_eq!(y.dtype(), dtype);
            let want = broadcast_ref(&out, (&a.want, &a.shape), (&b.want, &b.shape), f);
            check_close(&y.to_vec_f64(), &want, rtol, atol, name)?;
            // Swapping the operands broadcasts the same way.
            let y2 = op(&b.t, &a.t).unwrap();
            let want2 = broadcast_ref(&out, (&b.want, &b.shape), (&a.want, &a.shape), f);
            check_close(&y2.to_vec_f64(), &want2, rtol, atol, name)?;
        }
    }

    #[test]
    fn comparisons_give_bool_masks((out, sa, sb) in view_pair(), dtype in float_dtype()) {
        let d = Dist::Ints(-2, 2);
        let (a, b) = (sa.build(dtype, d), sb.build(dtype, d));
        for (name, op, f) in compare_table() {
            let m = op(&a.t, &b.t).unwrap();
            prop_assert_eq!(m.shape(), &out[..], "{}", name);
            let want = broadcast_ref(&out, (&a.want, &a.shape), (&b.want, &b.shape), f);
            prop_assert_eq!(mask_values(&m), want.clone(), "{}", name);
            // The same comparison on i64 (integers convert exactly).
            let (ai, bi) = (a.t.to_dtype(DType::I64), b.t.to_dtype(DType::I64));
            prop_assert_eq!(mask_values(&op(&ai, &bi).unwrap()), want, "{} on i64", name);
        }
    }

    #[test]
    fn where_picks_through_three_way_broadcast(
        (out, specs) in broadcast_family(3).prop_flat_map(|(out, sh)| {
            (Just(out), (view_spec(sh[0].clone()), view_spec(sh[1].clone()), view_spec(sh[2].clone())))
        }),
        dtype in float_dtype(),
    ) {
        let (sm, sa, sb) = specs;
        let m = sm.build_bool(Dist::Ints(0, 1));
        let a = sa.build(dtype, Dist::Uniform(-5.0, 5.0));
        let b = sb.build(dtype, Dist::Uniform(-5.0, 5.0));
        let y = Tensor::where_(&m.t, &a.t, &b.t).unwrap();
        prop_assert_eq!(y.shape(), &out[..]);
        let want: Vec<f64> = (0..numel(&out))
            .map(|k| {
                let idx = unravel(k, &out);
                if m.want[broadcast_source(&idx, &m.shape)] != 0.0 {
                    a.want[broadcast_source(&idx, &a.shape)]
                } else {
                    b.want[broadcast_source(&idx, &b.shape)]
                }
            })
            .collect();
        prop_assert_eq!(y.to_vec_f64(), want);
        // logical_not of a strided mask.
        let n = m.t.logical_not().unwrap();
        let want_not: Vec<bool> = m.want.iter().map(|&x| x == 0.0).collect();
        prop_assert_eq!(mask_values(&n), want_not);
    }

    #[test]
    fn masked_fill_broadcasts_the_mask(
        (out, specs) in broadcast_family(2).prop_flat_map(|(out, sh)| {
            (Just(out.clone()), (view_spec(out), view_spec(sh[1].clone())))
        }),
        value in -3.0f64..3.0,
    ) {
        let (sx, sm) = specs;
        let x = sx.build(DType::F64, Dist::Uniform(-5.0, 5.0));
        let m = sm.build_bool(Dist::Ints(0, 1));
        let y = x.t.masked_fill(&m.t, value).unwrap();
        prop_assert_eq!(y.shape(), &out[..]);
        let want: Vec<f64> = (0..numel(&out))
            .map(|k| {
                let idx = unravel(k, &out);
                if m.want[broadcast_source(&idx, &m.shape)] != 0.0 { value } else { x.want[k] }
            })
            .collect();
        prop_assert_eq!(y.to_vec_f64(), want);
    }

    #[test]
    fn scalar_variants(
        dtype in float_dtype(),
        spec in shape().prop_flat_map(view_spec),
        s in -4i32..4,
        frac in prop_oneof![Just(0.0f64), Just(0.5), -1.0f64..1.0],
    ) {
        let (rtol, atol) = pointwise_tol(dtype);
        let v = spec.build(dtype, Dist::Signed(0.25, 4.0));
        let sv = s as f64 + frac;
        let s_r = round_to(dtype, sv);
        let table: Vec<ScalarRow> = vec![
            ("add_scalar", |t, s| t.add_scalar(s), |x, s| x + s),
            ("sub_scalar", |t, s| t.sub_scalar(s), |x, s| x - s),
            ("rsub_scalar", |t, s| t.rsub_scalar(s), |x, s| s - x),
            ("mul_scalar", |t, s| t.mul_scalar(s), |x, s| x * s),
            ("rdiv_scalar", |t, s| t.rdiv_scalar(s), |x, s| s / x),
            ("maximum_scalar", |t, s| t.maximum_scalar(s), |x, s| if x > s { x } else { s }),
            ("minimum_scalar", |t, s| t.minimum_scalar(s), |x, s| if x < s { x } else { s }),
        ];
        for (name, op, f) in table {
            let want: Vec<f64> = v.want.iter().map(|&x| f(x, s_r)).collect();
            let y = op(&v.t, sv).unwrap();
            prop_assert_eq!(y.shape(), &v.shape[..]);
            check_close(&y.to_vec_f64(), &want, rtol, atol, name)?;
        }
        if s_r != 0.0 {
            let want: Vec<f64> = v.want.iter().map(|&x| x / s_r).collect();
            check_close(&v.t.div_scalar(sv).unwrap().to_vec_f64(), &want, rtol, atol, "div_scalar")?;
        }
        // Comparisons against an integer scalar, on integer data (ties happen).
        let vi = spec.build(dtype, Dist::Ints(-4, 4));
        let cmp: Vec<ScalarCmpRow> = vec![
            ("eq_scalar", |t, s| t.eq_scalar(s), |x, s| x == s),
            ("ne_scalar", |t, s| t.ne_scalar(s), |x, s| x != s),
            ("lt_scalar", |t, s| t.lt_scalar(s), |x, s| x < s),
            ("le_scalar", |t, s| t.le_scalar(s), |x, s| x <= s),
            ("gt_scalar", |t, s| t.gt_scalar(s), |x, s| x > s),
            ("ge_scalar", |t, s| t.ge_scalar(s), |x, s| x >= s),
        ];
        let si = s as f64;
        for (name, op, f) in cmp {
            let want: Vec<bool> = vi.want.iter().map(|&x| f(x, si)).collect();
            prop_assert_eq!(mask_values(&op(&vi.t, si).unwrap()), want, "{}", name);
        }
    }

    #[test]
    fn to_dtype_round_trips(spec in shape().prop_flat_map(view_spec)) {
        // f32 -> f16 -> f32: round to nearest, so within half an f16 ulp
        // (2^-11 relative for normals, 2^-25 absolute in the subnormal range).
        let v = spec.build(DType::F32, Dist::Signed(0.0, 1000.0));
        let h = v.t.to_dtype(DType::F16);
        prop_assert_eq!(h.dtype(), DType::F16);
        prop_assert_eq!(h.shape(), &v.shape[..]);
        let back = h.to_dtype(DType::F32);
        prop_assert_eq!(back.dtype(), DType::F32);
        for (&g, &x) in back.to_vec_f64().iter().zip(&v.want) {
            prop_assert!((g - x).abs() <= (x.abs() * 2f64.powi(-11)).max(2f64.powi(-25)), "f16: {} -> {}", x, g);
        }
        // A value that is already an f16 survives exactly.
        prop_assert!(back.to_dtype(DType::F16).to_dtype(DType::F32).equal(&back));

        // bf16: 8 significant bits, so within 2^-8 relative.
        let b = v.t.to_dtype(DType::BF16).to_dtype(DType::F32);
        for (&g, &x) in b.to_vec_f64().iter().zip(&v.want) {
            prop_assert!((g - x).abs() <= x.abs() * 2f64.powi(-8), "bf16: {} -> {}", x, g);
        }

        // f64 -> f32 rounds like `as f32`; f32 -> f64 is exact.
        let w = spec.build(DType::F64, Dist::Uniform(-1e3, 1e3));
        let f = w.t.to_dtype(DType::F32);
        let want: Vec<f32> = w.want.iter().map(|&x| x as f32).collect();
        prop_assert_eq!(f.to_vec::<f32>().unwrap(), want);
        prop_assert_eq!(f.to_dtype(DType::F64).to_vec_f64(), w.want.iter().map(|&x| x as f32 as f64).collect::<Vec<_>>());

        // Float -> i64 truncates toward zero; i64 -> f64 is exact.
        let i = w.t.to_dtype(DType::I64);
        let want: Vec<i64> = w.want.iter().map(|&x| x.trunc() as i64).collect();
        prop_assert_eq!(i.to_vec::<i64>().unwrap(), want.clone());
        prop_assert_eq!(i.to_dtype(DType::F64).to_vec::<f64>().unwrap(), want.iter().map(|&x| x as f64).collect::<Vec<_>>());

        // Anything -> bool is x != 0; bool -> float is 0 / 1.
        let z = spec.build(DType::F32, Dist::Ints(-2, 2));
        let m = z.t.to_dtype(DType::Bool);
        prop_assert_eq!(mask_values(&m), z.want.iter().map(|&x| x != 0.0).collect::<Vec<_>>());
        prop_assert_eq!(
            m.to_dtype(DType::F64).to_vec::<f64>().unwrap(),
            z.want.iter().map(|&x| if x != 0.0 { 1.0 } else { 0.0 }).collect::<Vec<_>>()
        );
        // Same dtype: the same tensor.
        prop_assert!(v.t.to_dtype(DType::F32).same_storage(&v.t));
    }
}

#[test]
fn special_points_follow_the_documented_conventions() {
    let x = Tensor::from_vec(vec![f64::NAN, 0.0, -0.0, -2.0, 3.0], &[5]).unwrap();
    let sign = x.sign().unwrap().to_vec::<f64>().unwrap();
    assert!(sign[0].is_nan());
    assert_eq!(&sign[1..], &[0.0, 0.0, -1.0, 1.0]);
    let relu = x.relu().unwrap().to_vec::<f64>().unwrap();
    assert!(relu[0].is_nan());
    assert_eq!(&relu[1..], &[0.0, 0.0, 0.0, 3.0]);
    let c = x.clamp(-1.0, 1.0).unwrap().to_vec::<f64>().unwrap();
    assert!(c[0].is_nan());
    assert_eq!(&c[3..], &[-1.0, 1.0]);
    // maximum / minimum propagate NaN from either side.
    let n = Tensor::from_vec(vec![f64::NAN, 1.0], &[2]).unwrap();
    let o = Tensor::from_vec(vec![1.0, f64::NAN], &[2]).unwrap();
    for y in [
        n.maximum(&o).unwrap(),
        n.minimum(&o).unwrap(),
        o.maximum(&n).unwrap(),
        o.minimum(&n).unwrap(),
    ] {
        let v = y.to_vec::<f64>().unwrap();
        assert!(v[0].is_nan() && v[1].is_nan(), "{v:?}");
    }
    assert_eq!(
        n.isnan().unwrap().to_vec::<bool>().unwrap(),
        vec![true, false]
    );
    let inf =
        Tensor::from_vec(vec![f64::INFINITY, f64::NAN, 1.0, f64::NEG_INFINITY], &[4]).unwrap();
    assert_eq!(
        inf.isfinite().unwrap().to_vec::<bool>().unwrap(),
        vec![false, false, true, false]
    );
    assert_eq!(inf.count_nonfinite().unwrap(), (1, 2));
}
