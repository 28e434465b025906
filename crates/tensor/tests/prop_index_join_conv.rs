//! Property tests of the index, join and conv ops against naive element-by-element
//! references, on packed and non-contiguous inputs, plus a bad-input table.

use heft_tensor::{Conv2dParams, DType, Tensor};
use proptest::prelude::*;

// ----- helpers ----------------------------------------------------------

/// Deterministic pseudo-random values in [-4, 4) (small integers + halves, exact in f64).
fn values(seed: u64, n: usize) -> Vec<f64> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s % 16) as f64) / 2.0 - 4.0
        })
        .collect()
}

fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

fn strides(shape: &[usize]) -> Vec<usize> {
    let mut st = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        st[i] = st[i + 1] * shape[i + 1];
    }
    st
}

fn unravel(mut n: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = n % shape[d];
        n /= shape[d];
    }
    idx
}

fn ravel(idx: &[usize], shape: &[usize]) -> usize {
    idx.iter().zip(strides(shape)).map(|(i, s)| i * s).sum()
}

/// A tensor with these logical values whose layout depends on `mode`:
/// 0 packed, 1 transposed storage (first/last axes), 2 every stride doubled
/// (a step-2 slice of a wider tensor).
fn make(data: &[f64], shape: &[usize], mode: u8) -> Tensor {
    let x = Tensor::from_vec(data.to_vec(), shape).unwrap();
    let nd = shape.len();
    let t = match mode % 3 {
        1 if nd >= 2 => {
            let last = (nd - 1) as isize;
            x.transpose(0, last)
                .unwrap()
                .contiguous_copy()
                .transpose(0, last)
                .unwrap()
        }
        2 if nd >= 1 => {
            // Interleave with junk along the last axis, then take every other element.
            let last = shape[nd - 1];
            let mut wide_shape = shape.to_vec();
            wide_shape[nd - 1] = 2 * last;
            let mut wide = Vec::with_capacity(2 * data.len());
            for &v in data {
                wide.extend([v, 99.0]);
            }
            Tensor::from_vec(wide, &wide_shape)
                .unwrap()
                .slice(-1, 0, 2 * last, 2)
                .unwrap()
        }
        _ => x,
    };
    assert_eq!(t.to_vec_f64(), data, "make() must keep the values");
    t
}

fn shape_strategy(max_rank: usize, max_dim: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0..=max_dim, 1..=max_rank)
}

fn close(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= 1e-9 * (1.0 + y.abs()))
}

// ----- naive references ---------------------------------------------------

#[allow(clippy::too_many_arguments)]
fn naive_conv2d(
    x: &[f64],
    [n, c, h, w]: [usize; 4],
    wt: &[f64],
    [o, kh, kw]: [usize; 3],
    bias: Option<&[f64]>,
    p: Conv2dParams,
    (oh, ow): (usize, usize),
) -> Vec<f64> {
    let mut out = vec![0.0; n * o * oh * ow];
    for b in 0..n {
        for oc in 0..o {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = bias.map_or(0.0, |bb| bb[oc]);
                    for ic in 0..c {
                        for i in 0..kh {
                            for j in 0..kw {
                                let iy = (oy * p.stride.0 + i * p.dilation.0) as isize
                                    - p.padding.0 as isize;
                                let ix = (ox * p.stride.1 + j * p.dilation.1) as isize
                                    - p.padding.1 as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                    continue;
                                }
                                acc += x[((b * c + ic) * h + iy as usize) * w + ix as usize]
                                    * wt[((oc * c + ic) * kh + i) * kw + j];
                            }
                        }
                    }
                    out[((b * o + oc) * oh + oy) * ow + ox] = acc;
                }
            }
        }
    }
    out
}

fn naive_pool(
    x: &[f64],
    [n, c, h, w]: [usize; 4],
    k: (usize, usize),
    s: (usize, usize),
    p: (usize, usize),
    is_max: bool,
) -> Vec<f64> {
    let oh = (h + 2 * p.0 - k.0) / s.0 + 1;
    let ow = (w + 2 * p.1 - k.1) / s.1 + 1;
    let mut out = Vec::new();
    for plane in 0..n * c {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut m = f64::NEG_INFINITY;
                let mut sum = 0.0;
                for i in 0..k.0 {
                    for j in 0..k.1 {
                        let iy = (oy * s.0 + i) as isize - p.0 as isize;
                        let ix = (ox * s.1 + j) as isize - p.1 as isize;
                        if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                            continue;
                        }
                        let v = x[(plane * h + iy as usize) * w + ix as usize];
                        m = m.max(v);
                        sum += v;
                    }
                }
                out.push(if is_max { m } else { sum / (k.0 * k.1) as f64 });
            }
        }
    }
    out
}

// ----- index ops ---------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn index_select_and_index_add_match_naive(
        shape in shape_strategy(4, 4), ax in 0usize..4, seed in any::<u64>(), mode in 0u8..3,
        raw in prop::collection::vec(0usize..64, 0..6),
    ) {
        let ax = ax % shape.len();
        let d = shape[ax];
        prop_assume!(d > 0 || raw.is_empty());
        let idx: Vec<i64> = raw.iter().map(|&r| (r % d.max(1)) as i64).collect();
        let data = values(seed, numel(&shape));
        let x = make(&data, &shape, mode);
        let it = Tensor::from_vec(idx.clone(), &[idx.len()]).unwrap();
        let axis = if seed % 2 == 0 { ax as isize } else { ax as isize - shape.len() as isize };
        let y = x.index_select(axis, &it).unwrap();
        let mut oshape = shape.clone();
        oshape[ax] = idx.len();
        prop_assert_eq!(y.shape(), &oshape[..]);
        let want: Vec<f64> = (0..numel(&oshape)).map(|n| {
            let mut i = unravel(n, &oshape);
            i[ax] = idx[i[ax]] as usize;
            data[ravel(&i, &shape)]
        }).collect();
        prop_assert_eq!(y.to_vec_f64(), want);

        // index_add: base + src scattered by idx, duplicates accumulate.
        let sdata = values(seed ^ 0xabc, numel(&oshape));
        let src = make(&sdata, &oshape, mode + 1);
        let z = x.index_add(axis, &it, &src).unwrap();
        let mut want = data.clone();
        for n in 0..numel(&oshape) {
            let mut i = unravel(n, &oshape);
            i[ax] = idx[i[ax]] as usize;
            want[ravel(&i, &shape)] += sdata[n];
        }
        prop_assert!(close(&z.to_vec_f64(), &want));
    }

    #[test]
    fn gather_and_scatter_add_match_naive(
        shape in shape_strategy(3, 4), ax in 0usize..3, seed in any::<u64>(), mode in 0u8..3,
        cut in prop::collection::vec(0usize..5, 3), extra in 0usize..4,
    ) {
        let ax = ax % shape.len();
        let d = shape[ax];
        // index shape: <= shape off axis, anything on axis.
        let ishape: Vec<usize> = (0..shape.len())
            .map(|k| if k == ax { extra } else { shape[k].saturating_sub(cut[k] % 2) })
            .collect();
        prop_assume!(d > 0 || numel(&ishape) == 0);
        let idx: Vec<i64> = values(seed ^ 7, numel(&ishape))
            .iter().map(|v| ((v + 4.0) * 2.0) as i64 % d.max(1) as i64).collect();
        let data = values(seed, numel(&shape));
        let x = make(&data, &shape, mode);
        let it = make(&idx.iter().map(|&i| i as f64).collect::<Vec<_>>(), &ishape, mode + 1)
            .to_dtype(DType::I64);
        let y = x.gather(ax as isize, &it).unwrap();
        prop_assert_eq!(y.shape(), &ishape[..]);
        let want: Vec<f64> = (0..numel(&ishape)).map(|n| {
            let mut i = unravel(n, &ishape);
            i[ax] = idx[n] as usize;
            data[ravel(&i, &shape)]
        }).collect();
        prop_assert_eq!(y.to_vec_f64(), want);

        // scatter_add with src one larger than index on every axis (only the
        // leading block is read).
        let sshape: Vec<usize> = ishape.iter().map(|d| d + 1).collect();
        let sdata = values(seed ^ 99, numel(&sshape));
        let src = make(&sdata, &sshape, mode + 2);
        let z = x.scatter_add(ax as isize, &it, &src).unwrap();
        let mut want = data.clone();
        for n in 0..numel(&ishape) {
            let ii = unravel(n, &ishape);
            let mut o = ii.clone();
            o[ax] = idx[n] as usize;
            want[ravel(&o, &shape)] += sdata[ravel(&ii, &sshape)];
        }
        prop_assert!(close(&z.to_vec_f64(), &want));
    }

    #[test]
    fn one_hot_matches_naive(shape in shape_strategy(3, 4), k in 1usize..6, seed in any::<u64>()) {
        let labels: Vec<i64> = values(seed, numel(&shape)).iter()
            .map(|v| ((v + 4.0) * 2.0) as i64 % k as i64).collect();
        let y = Tensor::from_vec(labels.clone(), &shape).unwrap();
        let h = y.one_hot(k, DType::F32).unwrap();
        let mut oshape = shape.clone();
        oshape.push(k);
        prop_assert_eq!(h.shape(), &oshape[..]);
        let want: Vec<f64> = (0..labels.len() * k)
            .map(|n| if labels[n / k] as usize == n % k { 1.0 } else { 0.0 }).collect();
        prop_assert_eq!(h.to_vec_f64(), want);
    }
}

// ----- join ops ----------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn cat_matches_naive_and_split_round_trips(
        shape in shape_strategy(4, 3), ax in 0usize..4, seed in any::<u64>(),
        sizes in prop::collection::vec(0usize..4, 1..4), mode in 0u8..3,
    ) {
        let ax = ax % shape.len();
        let parts: Vec<(Vec<usize>, Vec<f64>)> = sizes.iter().enumerate().map(|(k, &s)| {
            let mut sh = shape.clone();
            sh[ax] = s;
            let v = values(seed.wrapping_add(k as u64), numel(&sh));
            (sh, v)
        }).collect();
        let ts: Vec<Tensor> = parts.iter().enumerate()
            .map(|(k, (sh, v))| make(v, sh, mode + k as u8)).collect();
        let refs: Vec<&Tensor> = ts.iter().collect();
        let c = Tensor::cat(&refs, ax as isize - shape.len() as isize).unwrap();
        let mut oshape = shape.clone();
        oshape[ax] = sizes.iter().sum();
        prop_assert_eq!(c.shape(), &oshape[..]);
        let want: Vec<f64> = (0..numel(&oshape)).map(|n| {
            let mut i = unravel(n, &oshape);
            let mut k = 0;
            while i[ax] >= sizes[k] { i[ax] -= sizes[k]; k += 1; }
            parts[k].1[ravel(&i, &parts[k].0)]
        }).collect();
        prop_assert_eq!(c.to_vec_f64(), want);
        // split undoes cat, as views of the result.
        let back = c.split(&sizes, ax as isize).unwrap();
        for (b, (sh, v)) in back.iter().zip(&parts) {
            prop_assert_eq!(b.shape(), &sh[..]);
            prop_assert_eq!(&b.to_vec_f64(), v);
            prop_assert!(b.same_storage(&c));
        }
        // chunk / split_size cover the axis in order.
        let n = sizes.len();
        let ch = c.chunk(n, ax as isize).unwrap();
        let cs = oshape[ax].div_ceil(n).max(1);
        prop_assert!(ch.iter().all(|t| t.shape()[ax] <= cs));
        let rt: Vec<&Tensor> = ch.iter().collect();
        prop_assert!(Tensor::cat(&rt, ax as isize).unwrap().equal(&c));
        // stack == cat of unsqueezed.
        let s = Tensor::stack(&[&ts[0], &ts[0]], ax as isize).unwrap();
        let u = ts[0].unsqueeze(ax as isize).unwrap();
        prop_assert!(s.equal(&Tensor::cat(&[&u, &u], ax as isize).unwrap()));
    }

    #[test]
    fn pad_matches_naive(
        shape in shape_strategy(4, 3), seed in any::<u64>(), mode in 0u8..3,
        raw in prop::collection::vec((0usize..3, 0usize..3), 4),
    ) {
        let pads: Vec<(usize, usize)> = raw[..shape.len()].to_vec();
        let data = values(seed, numel(&shape));
        let x = make(&data, &shape, mode);
        let y = x.pad(&pads, 7.5).unwrap();
        let oshape: Vec<usize> = shape.iter().zip(&pads).map(|(d, p)| d + p.0 + p.1).collect();
        prop_assert_eq!(y.shape(), &oshape[..]);
        let want: Vec<f64> = (0..numel(&oshape)).map(|n| {
            let i = unravel(n, &oshape);
            let inside = i.iter().zip(&pads).zip(&shape).all(|((&i, p), &d)| i >= p.0 && i < p.0 + d);
            if inside {
                let j: Vec<usize> = i.iter().zip(&pads).map(|(i, p)| i - p.0).collect();
                data[ravel(&j, &shape)]
            } else { 7.5 }
        }).collect();
        prop_assert_eq!(y.to_vec_f64(), want);
    }
}

// ----- conv ops ----------------------------------------------------------

fn conv_case() -> impl Strategy<Value = ([usize; 4], [usize; 3], Conv2dParams, u64, u8)> {
    (
        (1usize..3, 1usize..4, 1usize..8, 1usize..8),
        (1usize..4, 1usize..4, 1usize..4),
        (
            (1usize..4, 1usize..4),
            (0usize..3, 0usize..3),
            (1usize..3, 1usize..3),
        ),
        any::<u64>(),
        0u8..3,
    )
        .prop_map(|((n, c, h, w), (o, kh, kw), (s, p, d), seed, mode)| {
            (
                [n, c, h, w],
                [o, kh, kw],
                Conv2dParams {
                    stride: s,
                    padding: p,
                    dilation: d,
                },
                seed,
                mode,
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn conv2d_matches_naive((xs, [o, kh, kw], p, seed, mode) in conv_case(), with_bias in any::<bool>()) {
        let [n, c, h, w] = xs;
        let Some((oh, ow)) = p.output_size(h, w, (kh, kw)) else {
            // Too-large kernels must be errors, not panics.
            let x = Tensor::zeros(&xs, DType::F64);
            let wt = Tensor::zeros(&[o, c, kh, kw], DType::F64);
            prop_assert!(x.conv2d(&wt, None, p).is_err());
            return Ok(());
        };
        let xd = values(seed, numel(&xs));
        let wd = values(seed ^ 1, o * c * kh * kw);
        let bd = values(seed ^ 2, o);
        let x = make(&xd, &xs, mode);
        let wt = make(&wd, &[o, c, kh, kw], mode + 1);
        let b = Tensor::from_vec(bd.clone(), &[o]).unwrap();
        let y = x.conv2d(&wt, with_bias.then_some(&b), p).unwrap();
        prop_assert_eq!(y.shape(), &[n, o, oh, ow][..]);
        let want = naive_conv2d(&xd, xs, &wd, [o, kh, kw], with_bias.then_some(&bd[..]), p, (oh, ow));
        prop_assert!(close(&y.to_vec_f64(), &want));
        // f32 agrees too.
        let y32 = x.to_dtype(DType::F32).conv2d(&wt.to_dtype(DType::F32), None, p).unwrap();
        let want0 = naive_conv2d(&xd, xs, &wd, [o, kh, kw], None, p, (oh, ow));
        prop_assert!(y32.to_vec_f64().iter().zip(&want0).all(|(a, b)| (a - b).abs() < 1e-3));
    }

    #[test]
    fn fold_is_the_adjoint_of_unfold((xs, [_, kh, kw], p, seed, mode) in conv_case()) {
        let [n, c, h, w] = xs;
        let Some((oh, ow)) = p.output_size(h, w, (kh, kw)) else { return Ok(()); };
        let xd = values(seed, numel(&xs));
        let x = make(&xd, &xs, mode);
        let u = x.unfold2d((kh, kw), p, 0.0).unwrap();
        prop_assert_eq!(u.shape(), &[n, c * kh * kw, oh * ow][..]);
        let yshape = [n, c * kh * kw, oh * ow];
        let yd = values(seed ^ 5, numel(&yshape));
        let y = make(&yd, &yshape, mode + 1);
        let f = y.fold2d((h, w), (kh, kw), p).unwrap();
        prop_assert_eq!(f.shape(), &xs[..]);
        let lhs: f64 = u.to_vec_f64().iter().zip(&yd).map(|(a, b)| a * b).sum();
        let rhs: f64 = xd.iter().zip(f.to_vec_f64()).map(|(a, b)| a * b).sum();
        prop_assert!((lhs - rhs).abs() <= 1e-9 * (1.0 + lhs.abs()), "{} vs {}", lhs, rhs);
        // unfold with a pad value: every padded tap reads it.
        let u9 = x.unfold2d((kh, kw), p, 9.0).unwrap().to_vec_f64();
        let ones = Tensor::ones(&xs, DType::F64).unfold2d((kh, kw), p, 0.0).unwrap().to_vec_f64();
        for ((a, b), one) in u9.iter().zip(u.to_vec_f64()).zip(ones) {
            prop_assert_eq!(*a, if one == 0.0 { 9.0 } else { b });
        }
    }

    #[test]
    fn pools_match_naive(
        (n, c, h, w) in (1usize..3, 1usize..3, 1usize..7, 1usize..7),
        k in (1usize..4, 1usize..4), s in (1usize..3, 1usize..3), pr in (0usize..2, 0usize..2),
        seed in any::<u64>(), mode in 0u8..3,
    ) {
        let p = (pr.0.min(k.0 / 2), pr.1.min(k.1 / 2));
        prop_assume!(h + 2 * p.0 >= k.0 && w + 2 * p.1 >= k.1);
        let xs = [n, c, h, w];
        let xd = values(seed, numel(&xs));
        let x = make(&xd, &xs, mode);
        let m = x.max_pool2d(k, s, p).unwrap();
        prop_assert_eq!(m.to_vec_f64(), naive_pool(&xd, xs, k, s, p, true));
        let a = x.avg_pool2d(k, s, p).unwrap();
        prop_assert!(close(&a.to_vec_f64(), &naive_pool(&xd, xs, k, s, p, false)));
    }
}

// ----- bad inputs ----------------------------------------------------------

#[test]
fn bad_inputs_are_errors_naming_op_and_shapes() {
    let f = |s: &[usize]| Tensor::zeros(s, DType::F32);
    let i = |v: Vec<i64>, s: &[usize]| Tensor::from_vec(v, s).unwrap();
    let x = f(&[2, 3]);
    let img = f(&[1, 3, 8, 8]);
    let p = Conv2dParams::default();
    let cases: Vec<(heft_tensor::Result<Tensor>, &str, &[&str])> = vec![
        (
            x.index_select(0, &i(vec![0, 1], &[1, 2])),
            "index_select",
            &["[2, 3]", "[1, 2]"],
        ),
        (
            x.index_select(0, &i(vec![2], &[1])),
            "index_select",
            &["index 2", "size 2"],
        ),
        (
            x.index_select(0, &i(vec![-1], &[1])),
            "index_select",
            &["index -1"],
        ),
        (
            x.index_select(2, &i(vec![0], &[1])),
            "index_select",
            &["[2, 3]"],
        ),
        (x.index_select(0, &f(&[1])), "index_select", &["i64"]),
        (
            x.index_add(0, &i(vec![0], &[1]), &f(&[2, 3])),
            "index_add",
            &["[2, 3]", "[1, 3]"],
        ),
        (
            x.gather(0, &i(vec![0; 8], &[2, 4])),
            "gather",
            &["[2, 3]", "[2, 4]"],
        ),
        (
            x.gather(0, &i(vec![0; 2], &[2])),
            "gather",
            &["[2, 3]", "[2]"],
        ),
        (
            x.gather(1, &i(vec![0, 3], &[1, 2])),
            "gather",
            &["index 3", "size 3"],
        ),
        (
            x.scatter_add(0, &i(vec![0; 6], &[2, 3]), &f(&[1, 3])),
            "scatter_add",
            &["[1, 3]", "[2, 3]"],
        ),
        (
            x.scatter_add(0, &i(vec![-2], &[1, 1]), &f(&[1, 1])),
            "scatter_add",
            &["index -2"],
        ),
        (
            i(vec![4], &[1]).one_hot(4, DType::F32),
            "one_hot",
            &["index 4", "size 4"],
        ),
        (x.one_hot(4, DType::F32), "one_hot", &["i64"]),
        (Tensor::cat(&[], 0), "cat", &[]),
        (
            Tensor::cat(&[&x, &f(&[2, 2])], 0),
            "cat",
            &["[2, 3]", "[2, 2]"],
        ),
        (Tensor::cat(&[&x, &f(&[2, 3])], 2), "cat", &["[2, 3]"]),
        (
            Tensor::stack(&[&x, &f(&[3, 2])], 0),
            "stack",
            &["[2, 3]", "[3, 2]"],
        ),
        (Tensor::stack(&[&x], 3), "stack", &["[2, 3]"]),
        (x.pad(&[(1, 1)], 0.0), "pad", &["[2, 3]"]),
        (
            img.conv2d(&f(&[4, 2, 3, 3]), None, p),
            "conv2d",
            &["[1, 3, 8, 8]", "[4, 2, 3, 3]"],
        ),
        (
            img.conv2d(&f(&[4, 3, 3]), None, p),
            "conv2d",
            &["[1, 3, 8, 8]", "[4, 3, 3]"],
        ),
        (
            img.conv2d(&f(&[4, 3, 9, 3]), None, p),
            "conv2d",
            &["[1, 3, 8, 8]", "(9, 3)"],
        ),
        (
            img.conv2d(&f(&[4, 3, 3, 3]), Some(&f(&[3])), p),
            "conv2d",
            &["[4, 3, 3, 3]", "[3]"],
        ),
        (
            img.conv2d(
                &f(&[4, 3, 3, 3]),
                None,
                Conv2dParams {
                    stride: (0, 1),
                    ..p
                },
            ),
            "conv2d",
            &["stride"],
        ),
        (
            img.unfold2d(
                (3, 3),
                Conv2dParams {
                    dilation: (1, 0),
                    ..p
                },
                0.0,
            ),
            "unfold2d",
            &["dilation"],
        ),
        (x.unfold2d((1, 1), p, 0.0), "unfold2d", &["[2, 3]"]),
        (
            f(&[1, 4, 5]).fold2d((3, 3), (2, 2), p),
            "fold2d",
            &["[1, 4, 5]"],
        ),
        (
            f(&[1, 5, 4]).fold2d((3, 3), (2, 2), p),
            "fold2d",
            &["[1, 5, 4]"],
        ),
        (
            img.max_pool2d((9, 9), (1, 1), (0, 0)),
            "max_pool2d",
            &["[1, 3, 8, 8]"],
        ),
        (
            img.max_pool2d((2, 2), (0, 1), (0, 0)),
            "max_pool2d",
            &["stride"],
        ),
        (
            img.avg_pool2d((2, 2), (1, 1), (2, 2)),
            "avg_pool2d",
            &["padding"],
        ),
        (
            x.avg_pool2d((1, 1), (1, 1), (0, 0)),
            "avg_pool2d",
            &["[2, 3]"],
        ),
    ];
    for (k, (r, op, parts)) in cases.into_iter().enumerate() {
        let e = match r {
            Ok(t) => panic!("case {k} ({op}) should fail, got shape {:?}", t.shape()),
            Err(e) => e.to_string(),
        };
        assert!(e.starts_with(&format!("{op}:")), "case {k}: {e}");
        for p in parts {
            assert!(e.contains(p), "case {k}: {e:?} should mention {p}");
        }
    }
    let vs: Vec<(heft_tensor::Result<Vec<Tensor>>, &str)> = vec![
        (x.split(&[1, 2], 0), "split"),
        (x.split_size(0, 1), "split_size"),
        (x.chunk(0, 1), "chunk"),
        (x.chunk(2, -3), "chunk"),
    ];
    for (r, op) in vs {
        let e = match r {
            Ok(_) => panic!("{op} should fail"),
            Err(e) => e.to_string(),
        };
        assert!(e.starts_with(&format!("{op}:")), "{e}");
    }
}
