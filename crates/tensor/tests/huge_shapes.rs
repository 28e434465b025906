//! Shapes and arguments whose element counts or strides overflow `usize`
//! (found by fuzzing, see `fuzz/`): every op returns an error or a correct
//! result, never panics.

use heft_tensor::{Conv2dParams, DType, Tensor};

const BIG: usize = 1 << 63;

#[test]
fn reshape_to_an_overflowing_shape_is_an_error() {
    let x = Tensor::zeros(&[0], DType::F32);
    let e = x.reshape(&[BIG, 4, 0]).unwrap_err().to_string();
    assert!(e.contains("overflows"), "{e}");
    assert!(x.reshape(&[0, BIG, 4]).is_err());
    assert!(x.reshape(&[BIG, 2, 3]).is_err());
    // Empty with huge dims whose product fits: fine in any order.
    assert_eq!(x.reshape(&[0, BIG, 1]).unwrap().numel(), 0);
    let t = x
        .reshape(&[BIG, 1, 0])
        .unwrap()
        .permute(&[2, 0, 1])
        .unwrap();
    assert_eq!((t.numel(), t.shape()), (0, &[0, BIG, 1][..]));
}

#[test]
fn numel_of_an_empty_shape_does_not_depend_on_the_order_of_dims() {
    // Found by fuzzing: a view of shape [2, 0, 2^64 - 2] transposed to
    // [2, 2^64 - 2, 0] overflowed when its numel was multiplied left to right.
    assert_eq!(heft_tensor::layout::numel(&[2, usize::MAX - 1, 0]), 0);
    // Such shapes are now rejected (their non-zero dims overflow).
    let x = Tensor::zeros(&[0], DType::F32);
    assert!(x.reshape(&[2, 0, usize::MAX - 1]).is_err());
    assert!(Tensor::scalar(true)
        .broadcast_to(&[2, 0, usize::MAX - 1])
        .is_err());
}

#[test]
fn pad_checks_the_size_before_computing_offsets() {
    let x = Tensor::ones(&[1, 1], DType::F32);
    assert!(x.pad(&[(BIG, 0), (0, 1)], 0.0).is_err());
}

#[test]
fn reductions_over_empty_tensors_with_huge_dims() {
    // Contiguous strides of [0, 2^63, 1] are saturated; coalescing them overflowed.
    let x = Tensor::zeros(&[0], DType::F64)
        .reshape(&[0, BIG, 1])
        .unwrap();
    assert_eq!(x.sum_all().unwrap().to_scalar_f64().unwrap(), 0.0);
    let u = x.unsqueeze(1).unwrap();
    assert_eq!(u.sum_all().unwrap().to_scalar_f64().unwrap(), 0.0);
}

#[test]
fn matmul_with_an_impossible_output_is_an_error() {
    // [BIG, 0] x [0, BIG] has no input elements but BIG * BIG outputs.
    let a = Tensor::zeros(&[0], DType::F32).reshape(&[BIG, 0]).unwrap();
    let e = a.matmul(&a.t().unwrap()).unwrap_err().to_string();
    assert!(e.starts_with("matmul"), "{e}");
    // An empty output is still fine.
    let z = a.t().unwrap().matmul(&a).unwrap();
    assert_eq!(z.shape(), &[0, 0]);
}

#[test]
fn window_ops_with_huge_kernels_and_outputs_are_errors() {
    let cols = Tensor::ones(&[1, 4, 1], DType::F32);
    let p = Conv2dParams::default();
    // kernel.0 * kernel.1 overflowed.
    assert!(cols.fold2d((BIG, BIG), (BIG, 2), p).is_err());
    // The output image n * c * h * w overflowed.
    let cols = Tensor::ones(&[1, 1, 1], DType::F32);
    assert!(cols.fold2d((BIG, 3), (BIG, 3), p).is_err());
    // unfold2d: kernel * output positions overflow.
    let x = Tensor::ones(&[1, 1, 1, 1], DType::F32);
    let wide = Conv2dParams {
        padding: (BIG / 2, BIG / 2),
        ..p
    };
    assert!(x.unfold2d((1, 1), wide, 0.0).is_err());
}
