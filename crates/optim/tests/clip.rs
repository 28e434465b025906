//! Gradient clipping against hand-computed norms, and accumulation.

mod common;

use common::{grads_of, tensor};
use heft_nn::{ParamGrads, ParamId};
use heft_optim::{clip_grad_norm, clip_grad_value, grad_norm, GradAccumulator};
use heft_tensor::DType;

fn two_params() -> ParamGrads {
    // ‖[3, 4]‖² + ‖[12]‖² = 9 + 16 + 144 = 169: global norm 13.
    grads_of(
        3,
        &[
            (ParamId(0), tensor(&[3.0, -4.0], DType::F64)),
            (ParamId(2), tensor(&[12.0], DType::F32)),
        ],
    )
}

#[test]
fn clip_by_global_norm() {
    let mut g = two_params();
    assert_eq!(grad_norm(&g).unwrap(), 13.0);
    let n = clip_grad_norm(&mut g, 6.5).unwrap();
    assert_eq!(n, 13.0);
    let c = 6.5 / (13.0 + 1e-6);
    assert_eq!(
        g.get(ParamId(0)).unwrap().to_vec::<f64>().unwrap(),
        vec![3.0 * c, -4.0 * c]
    );
    assert_eq!(
        g.get(ParamId(2)).unwrap().to_vec::<f32>().unwrap(),
        vec![12.0f32 * c as f32]
    );
    assert!(g.get(ParamId(1)).is_none());
    // After clipping the global norm is (just under) max_norm.
    let after = grad_norm(&g).unwrap();
    assert!((after - 6.5).abs() < 1e-5 && after <= 6.5 + 1e-6, "{after}");
}

#[test]
fn norm_below_max_leaves_gradients_alone() {
    let mut g = two_params();
    assert_eq!(clip_grad_norm(&mut g, 13.0).unwrap(), 13.0);
    // 13 / (13 + 1e-6) < 1: PyTorch scales even here.
    let c = 13.0 / (13.0 + 1e-6);
    assert_eq!(
        g.get(ParamId(0)).unwrap().to_vec::<f64>().unwrap(),
        vec![3.0 * c, -4.0 * c]
    );
    let mut g = two_params();
    assert_eq!(clip_grad_norm(&mut g, 14.0).unwrap(), 13.0);
    assert_eq!(
        g.get(ParamId(0)).unwrap().to_vec::<f64>().unwrap(),
        vec![3.0, -4.0]
    );
    assert_eq!(
        g.get(ParamId(2)).unwrap().to_vec::<f32>().unwrap(),
        vec![12.0]
    );
}

#[test]
fn clip_by_value() {
    let mut g = two_params();
    clip_grad_value(&mut g, 3.5).unwrap();
    assert_eq!(
        g.get(ParamId(0)).unwrap().to_vec::<f64>().unwrap(),
        vec![3.0, -3.5]
    );
    assert_eq!(
        g.get(ParamId(2)).unwrap().to_vec::<f32>().unwrap(),
        vec![3.5]
    );
}

#[test]
fn bad_arguments_and_dtypes() {
    let mut g = two_params();
    assert!(clip_grad_norm(&mut g, -1.0).is_err());
    assert!(clip_grad_norm(&mut g, f64::NAN).is_err());
    assert!(clip_grad_value(&mut g, -1.0).is_err());
    let mut h = grads_of(1, &[(ParamId(0), tensor(&[1.0], DType::BF16))]);
    assert!(clip_grad_norm(&mut h, 1.0).is_err());
    assert!(clip_grad_value(&mut h, 1.0).is_err());
}

#[test]
fn empty_grads_have_zero_norm() {
    let mut g = ParamGrads::new(2);
    assert_eq!(clip_grad_norm(&mut g, 1.0).unwrap(), 0.0);
}

#[test]
fn accumulate_and_scale() {
    let mut acc = GradAccumulator::new();
    assert!(acc.take_mean().unwrap().is_none());
    acc.add(&grads_of(
        2,
        &[(ParamId(0), tensor(&[1.0, 2.0], DType::F32))],
    ))
    .unwrap();
    acc.add(&grads_of(
        2,
        &[
            (ParamId(0), tensor(&[3.0, 4.0], DType::F32)),
            (ParamId(1), tensor(&[8.0], DType::F32)),
        ],
    ))
    .unwrap();
    assert_eq!(acc.len(), 2);
    let mean = acc.take_mean().unwrap().unwrap();
    assert_eq!(
        mean.get(ParamId(0)).unwrap().to_vec::<f32>().unwrap(),
        vec![2.0, 3.0]
    );
    // A parameter present in one micro-batch only: its sum over two.
    assert_eq!(
        mean.get(ParamId(1)).unwrap().to_vec::<f32>().unwrap(),
        vec![4.0]
    );
    assert!(acc.is_empty());
}
