//! Layout laws: every view op against index arithmetic done by hand.

mod common;

use common::*;
use heft_tensor::{broadcast_shapes, DType, Tensor};
use proptest::prelude::*;

const D: Dist = Dist::Ints(-50, 50);

/// Values of a tensor read element by element through `get_f64` (no gather).
fn read_each(t: &Tensor) -> Vec<f64> {
    (0..t.numel())
        .map(|f| t.get_f64(&unravel(f, t.shape())).unwrap())
        .collect()
}

/// A view of a random shape together with an axis index in it (rank >= 1).
fn view_and_axis() -> impl Strategy<Value = (View, usize, bool)> {
    prop::collection::vec(dim(), 1..=4)
        .prop_flat_map(|s| {
            let r = s.len();
            (view_of(s, DType::F64, D), 0..r, any::<bool>())
        })
        .prop_map(|(v, a, neg)| (v, a, neg))
}

fn as_axis(a: usize, r: usize, neg: bool) -> isize {
    if neg {
        a as isize - r as isize
    } else {
        a as isize
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn contiguous_of_any_view_equals_the_reference(v in any_float_view(D)) {
        let c = v.t.contiguous();
        prop_assert!(c.is_contiguous());
        prop_assert_eq!(c.shape(), &v.shape[..]);
        prop_assert_eq!(c.to_vec_f64(), v.want.clone());
        // An already packed tensor is returned as is (shared storage).
        prop_assert!(c.contiguous().same_storage(&c));
        // The fresh copy owns a packed buffer of exactly numel elements.
        let cc = v.t.contiguous_copy();
        prop_assert!(!cc.same_storage(&v.t));
        prop_assert_eq!(cc.storage().len(), v.want.len());
        prop_assert_eq!(cc.to_vec_f64(), v.want.clone());
        // Element access through the layout agrees too.
        prop_assert_eq!(read_each(&v.t), v.want.clone());
        // And the layout maps each element where the reference says it is.
        for (f, &si) in v.storage_index.iter().enumerate() {
            prop_assert_eq!(v.t.layout().index_of(&unravel(f, &v.shape)), si);
        }
    }

    #[test]
    fn transpose_twice_is_the_identity((v, a, na) in view_and_axis(), b in 0usize..4, nb in any::<bool>()) {
        let r = v.shape.len();
        let b = b % r;
        let (ia, ib) = (as_axis(a, r, na), as_axis(b, r, nb));
        let t = v.t.transpose(ia, ib).unwrap();
        prop_assert!(t.same_storage(&v.t));
        let mut sh = v.shape.clone();
        sh.swap(a, b);
        prop_assert_eq!(t.shape(), &sh[..]);
        // Element [.., j, .., i, ..] of the transpose is element [.., i, .., j, ..].
        let got = t.contiguous().to_vec_f64();
        for f in 0..got.len() {
            let mut idx = unravel(f, &sh);
            idx.swap(a, b);
            prop_assert_eq!(got[f], v.want[ravel(&idx, &v.shape)]);
        }
        let back = t.transpose(ia, ib).unwrap();
        prop_assert_eq!(back.layout().clone(), v.t.layout().clone());
    }

    #[test]
    fn permute_then_inverse_permute(
        v in any_view(DType::F64, D),
        seed in any::<u64>(),
    ) {
        let r = v.shape.len();
        // A permutation from the seed (Fisher-Yates with a tiny LCG).
        let mut perm: Vec<usize> = (0..r).collect();
        let mut s = seed;
        for i in (1..r).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            perm.swap(i, (s >> 33) as usize % (i + 1));
        }
        let p = v.t.permute(&perm).unwrap();
        prop_assert!(p.same_storage(&v.t));
        let sh: Vec<usize> = perm.iter().map(|&q| v.shape[q]).collect();
        prop_assert_eq!(p.shape(), &sh[..]);
        let got = p.contiguous().to_vec_f64();
        for f in 0..got.len() {
            let idx = unravel(f, &sh);
            let mut src = vec![0; r];
            for (i, &q) in perm.iter().enumerate() {
                src[q] = idx[i];
            }
            prop_assert_eq!(got[f], v.want[ravel(&src, &v.shape)]);
        }
        let mut inv = vec![0; r];
        for (i, &q) in perm.iter().enumerate() {
            inv[q] = i;
        }
        prop_assert_eq!(p.permute(&inv).unwrap().layout().clone(), v.t.layout().clone());
    }

    #[test]
    fn broadcast_shapes_is_symmetric_and_follows_the_numpy_rule(
        a in prop::collection::vec(0usize..4, 0..=4),
        b in prop::collection::vec(0usize..4, 0..=4),
    ) {
        let ab = broadcast_shapes("t", &a, &b).map(|s| s.to_vec()).ok();
        let ba = broadcast_shapes("t", &b, &a).map(|s| s.to_vec()).ok();
        prop_assert_eq!(&ab, &ba);
        prop_assert_eq!(ab, naive_broadcast(&a, &b));
    }

    #[test]
    fn broadcast_family_agrees((out, shapes) in broadcast_family(3)) {
        // Broadcasting is associative: any grouping gives the family's shape.
        let s01 = broadcast_shapes("t", &shapes[0], &shapes[1]).unwrap();
        let s = broadcast_shapes("t", &s01, &shapes[2]).unwrap();
        prop_assert_eq!(s.to_vec(), out.clone());
        let s12 = broadcast_shapes("t", &shapes[1], &shapes[2]).unwrap();
        prop_assert_eq!(broadcast_shapes("t", &shapes[0], &s12).unwrap().to_vec(), out.clone());
        // Every operand's layout broadcasts to it.
        for sh in &shapes {
            let t = Tensor::zeros(sh, DType::F32);
            prop_assert_eq!(t.broadcast_to(&out).unwrap().shape().to_vec(), out.clone());
        }
    }

    #[test]
    fn broadcast_to_repeats_elements(
        v in any_view(DType::F64, D),
        lead in prop::collection::vec(dim(), 0..=2),
        grow in prop::collection::vec(2usize..4, 4),
    ) {
        // Target: extra leading dims, and each size-1 dim possibly grown.
        let mut target = lead.clone();
        for (i, &d) in v.shape.iter().enumerate() {
            target.push(if d == 1 && grow[i] == 3 { 3 } else { d });
        }
        let b = v.t.broadcast_to(&target).unwrap();
        prop_assert!(b.same_storage(&v.t));
        prop_assert_eq!(b.shape(), &target[..]);
        let got = b.contiguous().to_vec_f64();
        for f in 0..got.len() {
            let idx = unravel(f, &target);
            prop_assert_eq!(got[f], v.want[broadcast_source(&idx, &v.shape)]);
        }
    }

    #[test]
    fn narrow_element_i_is_source_element_start_plus_i(
        (v, a, neg) in view_and_axis(),
        s in 0usize..6,
        l in 0usize..6,
    ) {
        let r = v.shape.len();
        let d = v.shape[a];
        let start = s % (d + 1);
        let len = l % (d - start + 1);
        let n = v.t.narrow(as_axis(a, r, neg), start, len).unwrap();
        prop_assert!(n.same_storage(&v.t));
        let mut sh = v.shape.clone();
        sh[a] = len;
        prop_assert_eq!(n.shape(), &sh[..]);
        let got = n.contiguous().to_vec_f64();
        for f in 0..got.len() {
            let mut idx = unravel(f, &sh);
            idx[a] += start;
            prop_assert_eq!(got[f], v.want[ravel(&idx, &v.shape)]);
        }
        // Out of bounds by one is an error.
        prop_assert!(v.t.narrow(a as isize, start, d - start + 1).is_err());
    }

    #[test]
    fn slice_with_step(
        (v, a, neg) in view_and_axis(),
        s in 0usize..6,
        e in 0usize..6,
        step in 1usize..4,
    ) {
        let r = v.shape.len();
        let d = v.shape[a];
        let start = s % (d + 1);
        let end = start + e % (d - start + 1);
        let t = v.t.slice(as_axis(a, r, neg), start, end, step).unwrap();
        prop_assert!(t.same_storage(&v.t));
        let picked: Vec<usize> = (start..end).step_by(step).collect();
        let mut sh = v.shape.clone();
        sh[a] = picked.len();
        prop_assert_eq!(t.shape(), &sh[..]);
        let got = t.contiguous().to_vec_f64();
        for f in 0..got.len() {
            let mut idx = unravel(f, &sh);
            idx[a] = picked[idx[a]];
            prop_assert_eq!(got[f], v.want[ravel(&idx, &v.shape)]);
        }
    }

    #[test]
    fn reshape_is_a_view_exactly_when_strides_allow(
        v in any_view(DType::F64, D),
        seed in any::<u64>(),
    ) {
        let n = v.want.len();
        // A random target shape with the same element count: split n into factors.
        let mut target = Vec::new();
        let mut rest = n;
        let mut s = seed;
        while rest > 1 && target.len() < 4 {
            let divs: Vec<usize> = (1..=rest).filter(|d| rest % d == 0).collect();
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let d = divs[(s >> 33) as usize % divs.len()];
            target.push(d);
            rest /= d;
        }
        if rest != 1 || (n == 0 && seed % 2 == 0) {
            target.push(rest);
        }
        if seed % 3 == 0 {
            target.insert(0, 1);
        }
        prop_assert_eq!(numel(&target), n);
        let t = v.t.reshape(&target).unwrap();
        prop_assert_eq!(t.shape(), &target[..]);
        prop_assert_eq!(t.contiguous().to_vec_f64(), v.want.clone());

        // Naive: a view exists iff some strides reproduce every element's storage
        // index. For each new axis of size > 1 the stride is forced (distance from
        // element 0 to the unit index), so check those strides on every element.
        let possible = n == 0 || {
            let base = v.storage_index[0];
            let tst = row_major_strides(&target);
            let strides: Vec<usize> = target
                .iter()
                .zip(&tst)
                .map(|(&d, &f)| if d > 1 { v.storage_index[f] - base } else { 0 })
                .collect();
            (0..n).all(|f| {
                let idx = unravel(f, &target);
                base + idx.iter().zip(&strides).map(|(i, s)| i * s).sum::<usize>()
                    == v.storage_index[f]
            })
        };
        prop_assert_eq!(t.same_storage(&v.t), possible, "target {:?}", target);

        // Round trip back to the original shape: same values.
        let back = t.reshape(&v.shape).unwrap();
        prop_assert_eq!(back.contiguous().to_vec_f64(), v.want.clone());
        // A packed tensor always reshapes as a view.
        let c = v.t.contiguous();
        prop_assert!(c.reshape(&target).unwrap().same_storage(&c));
        // A different element count is an error.
        prop_assert!(v.t.reshape(&[n + 1]).is_err());
    }

    #[test]
    fn squeeze_and_unsqueeze_are_inverse(v in any_view(DType::F64, D), a in 0usize..5, neg in any::<bool>()) {
        let r = v.shape.len();
        let a = a % (r + 1);
        let ia = if neg { a as isize - (r as isize + 1) } else { a as isize };
        let u = v.t.unsqueeze(ia).unwrap();
        let mut sh = v.shape.clone();
        sh.insert(a, 1);
        prop_assert_eq!(u.shape(), &sh[..]);
        prop_assert!(u.same_storage(&v.t));
        prop_assert_eq!(u.contiguous().to_vec_f64(), v.want.clone());
        prop_assert_eq!(u.squeeze(a as isize).unwrap().layout().clone(), v.t.layout().clone());
        // Squeezing any size-1 axis keeps the values; unsqueezing it back gives the shape.
        for (i, &d) in v.shape.iter().enumerate() {
            if d == 1 {
                let s = v.t.squeeze(i as isize).unwrap();
                prop_assert_eq!(s.ndim(), r - 1);
                prop_assert_eq!(s.contiguous().to_vec_f64(), v.want.clone());
                let u = s.unsqueeze(i as isize).unwrap();
                prop_assert_eq!(u.shape(), &v.shape[..]);
                prop_assert_eq!(u.contiguous().to_vec_f64(), v.want.clone());
            } else {
                prop_assert!(v.t.squeeze(i as isize).is_err());
            }
        }
    }

    #[test]
    fn flatten_merges_a_range_of_axes(v in any_view(DType::F64, D), s in 0usize..4, e in 0usize..4) {
        let r = v.shape.len();
        let f = if r == 0 {
            v.t.flatten(0, -1).unwrap()
        } else {
            let (s, e) = (s % r, e % r);
            let (s, e) = (s.min(e), s.max(e));
            let f = v.t.flatten(s as isize, e as isize).unwrap();
            let mut sh = v.shape[..s].to_vec();
            sh.push(v.shape[s..=e].iter().product());
            sh.extend_from_slice(&v.shape[e + 1..]);
            prop_assert_eq!(f.shape(), &sh[..]);
            f
        };
        if r == 0 {
            prop_assert_eq!(f.shape(), &[1][..]);
        }
        prop_assert_eq!(f.contiguous().to_vec_f64(), v.want.clone());
    }
}

#[test]
fn views_share_storage_and_compute_ops_do_not() {
    let x = Tensor::arange(0.0, 12.0, 1.0, DType::F32)
        .unwrap()
        .reshape(&[3, 4])
        .unwrap();
    let t = x.t().unwrap();
    assert!(t.same_storage(&x));
    assert_eq!(t.strides(), &[1, 4]);
    // Transposed [4, 3] cannot merge its axes without a copy.
    let flat = t.reshape(&[12]).unwrap();
    assert!(!flat.same_storage(&x));
    assert_eq!(
        flat.to_vec::<f32>().unwrap(),
        vec![0., 4., 8., 1., 5., 9., 2., 6., 10., 3., 7., 11.]
    );
    // A column slice with step: offset and stride in elements.
    let s = x.slice(1, 1, 4, 2).unwrap();
    assert_eq!((s.layout().offset(), s.strides()), (1, &[4usize, 2][..]));
    assert_eq!(s.to_vec::<f32>().unwrap(), vec![1., 3., 5., 7., 9., 11.]);
}

#[test]
fn data_mut_copies_on_write() {
    let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
    let mut y = x.clone();
    y.data_mut::<f64>().unwrap()[0] = 10.0;
    assert!(!y.same_storage(&x));
    assert_eq!(x.to_vec::<f64>().unwrap(), vec![1.0, 2.0, 3.0, 4.0]);
    assert_eq!(y.to_vec::<f64>().unwrap(), vec![10.0, 2.0, 3.0, 4.0]);
    // A strided view is packed first.
    let mut t = x.t().unwrap();
    t.data_mut::<f64>().unwrap()[1] = -1.0;
    assert_eq!(t.to_vec::<f64>().unwrap(), vec![1.0, -1.0, 2.0, 4.0]);
    assert_eq!(x.to_vec::<f64>().unwrap(), vec![1.0, 2.0, 3.0, 4.0]);
    // A uniquely owned packed tensor is written in place.
    let mut u = Tensor::zeros(&[3], DType::F32);
    let p = u.storage().as_ref() as *const _;
    u.data_mut::<f32>().unwrap()[2] = 5.0;
    assert_eq!(u.storage().as_ref() as *const _, p);
    assert!(u.data_mut::<f64>().is_err());
}
