//! Fused elementwise expressions: one pass and one output buffer for what
//! would otherwise take two to ten elementwise ops, each allocating.
//!
//! These are plain maths on tensors (heft-tensor knows nothing of
//! gradients), shaped for what a first-order backward pass needs: the
//! derivative of an activation times an incoming tensor `g`. heft-autograd
//! uses them when the backward pass is not itself recorded. Every function
//! is tested below against the same expression built from primitive ops.
//!
//! ```
//! use heft_tensor::Tensor;
//! # fn main() -> Result<(), heft_tensor::TensorError> {
//! let g = Tensor::from_vec(vec![1.0f64, 2.0], &[2])?;
//! let y = Tensor::from_vec(vec![0.5f64, -0.5], &[2])?;
//! // g * (1 - y^2): the derivative of tanh at tanh(x) = y, times g.
//! assert_eq!(g.tanh_backward(&y)?.to_vec::<f64>()?, vec![0.75, 1.5]);
//! # Ok(())
//! # }
//! ```

use crate::dtype::{Element, Float};
use crate::error::{Result, TensorError};
use crate::kernels::split::for_each_chunk_mut;
use crate::layout::{broadcast_shapes, same_dims};
use crate::ops::binary::zip_map;
use crate::ops::unary::sigmoid;
use crate::strided::PAR_THRESHOLD;
use crate::tensor::float_dispatch;
use crate::Tensor;

/// 1 / sqrt(2 pi), the standard normal density at 0.
const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;
/// sqrt(2 / pi), used by the tanh form of GELU.
const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;

macro_rules! fused_pairs {
    ($( $(#[$doc:meta])* $name:ident => |$g:ident, $x:ident| $body:expr; )*) => {
        impl Tensor {
            $(
                $(#[$doc])*
                ///
                /// Both tensors must have the same float dtype; shapes broadcast.
                pub fn $name(&self, x: &Tensor) -> Result<Tensor> {
                    let op = stringify!($name);
                    self.same_dtype(x, op)?;
                    float_dispatch!(op, self.dtype(), T => {
                        zip_map::<T, T>(self, x, op, #[inline(always)] |$g: T, $x: T| $body)
                    })
                }
            )*
        }
    };
}

fused_pairs! {
    /// `g * (1 - y^2)`, where `y = tanh(x)`.
    tanh_backward => |g, y| g * (T::ONE - y * y);
    /// `g * y * (1 - y)`, where `y = sigmoid(x)`.
    sigmoid_backward => |g, y| g * (y * (T::ONE - y));
    /// `g` where `y > 0`, else 0 (for ReLU, `y` may be the input or the output).
    relu_backward => |g, y| if y > T::ZERO { g } else { T::ZERO };
    /// `g * s (1 + x (1 - s))` with `s = sigmoid(x)`: the SiLU derivative times `g`.
    silu_backward => |g, x| {
        let s = sigmoid(x);
        g * (s * (T::ONE + x * (T::ONE - s)))
    };
    /// `g * (Phi(x) + x phi(x))`, the exact (erf) GELU derivative.
    gelu_backward => |g, x| {
        let cdf = T::from_f64(0.5) * (T::ONE + (x * T::from_f64(std::f64::consts::FRAC_1_SQRT_2)).error_fn());
        let pdf = T::from_f64(FRAC_1_SQRT_2PI) * (T::from_f64(-0.5) * x * x).exp();
        g * (cdf + x * pdf)
    };
    /// `g * d/dx [0.5 x (1 + tanh(u))]` with `u = sqrt(2/pi) (x + 0.044715 x^3)`.
    gelu_tanh_backward => |g, x| {
        let a = T::from_f64(0.044715);
        let k = T::from_f64(SQRT_2_OVER_PI);
        let x2 = x * x;
        let t = (k * x * (T::ONE + a * x2)).tanh();
        let du = k * (T::ONE + T::from_f64(3.0) * a * x2);
        let half = T::from_f64(0.5);
        g * (half * (T::ONE + t) + half * x * (T::ONE - t * t) * du)
    };
}

impl Tensor {
    /// `g` where `x > 0`, `slope * g` elsewhere: the leaky ReLU derivative times `g`.
    pub fn leaky_relu_backward(&self, x: &Tensor, slope: f64) -> Result<Tensor> {
        let op = "leaky_relu_backward";
        self.same_dtype(x, op)?;
        float_dispatch!(op, self.dtype(), T => {
            let s = T::from_f64(slope);
            zip_map::<T, T>(self, x, op, move |g: T, x: T| if x > T::ZERO { g } else { s * g })
        })
    }

    /// `g` where `min <= x <= max`, else 0: the clamp derivative times `g`.
    pub fn clamp_backward(&self, x: &Tensor, min: f64, max: f64) -> Result<Tensor> {
        let op = "clamp_backward";
        self.same_dtype(x, op)?;
        float_dispatch!(op, self.dtype(), T => {
            let (lo, hi) = (T::from_f64(min), T::from_f64(max));
            zip_map::<T, T>(self, x, op, move |g: T, x: T| if x >= lo && x <= hi { g } else { T::ZERO })
        })
    }

    /// `self += other` in place. `other` must have this tensor's dtype and
    /// broadcast to its shape.
    ///
    /// Writes into this tensor's buffer when it is packed and not shared
    /// with another tensor; otherwise this tensor first gets its own packed
    /// copy (copy-on-write), so tensors sharing the old storage never see
    /// the change.
    ///
    /// ```
    /// use heft_tensor::Tensor;
    /// # fn main() -> Result<(), heft_tensor::TensorError> {
    /// let mut a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
    /// let view = a.clone();
    /// a.add_assign(&Tensor::from_vec(vec![10.0f32, 20.0], &[2])?)?;
    /// assert_eq!(a.to_vec::<f32>()?, vec![11.0, 22.0, 13.0, 24.0]);
    /// assert_eq!(view.to_vec::<f32>()?, vec![1.0, 2.0, 3.0, 4.0]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn add_assign(&mut self, other: &Tensor) -> Result<()> {
        let op = "add_assign";
        self.same_dtype(other, op)?;
        // Small, same shape, both packed (a gradient being accumulated):
        // straight to the loop.
        if same_dims(self.shape(), other.shape()) && self.numel() < PAR_THRESHOLD {
            if let Some(r) = other.layout().contiguous_range() {
                return float_dispatch!(op, self.dtype(), T => {
                    let bv = &other.typed::<T>(op)?.0[r];
                    let av = self.data_mut::<T>()?;
                    for (x, &y) in av.iter_mut().zip(bv) {
                        *x += y;
                    }
                    Ok(())
                });
            }
        }
        let shape = broadcast_shapes(op, self.shape(), other.shape())?;
        if !same_dims(&shape, self.shape()) {
            return Err(TensorError::shapes(
                op,
                self.shape(),
                other.shape(),
                "the right-hand side must broadcast to the left-hand side's shape",
            ));
        }
        float_dispatch!(op, self.dtype(), T => add_assign_typed::<T>(self, other))
    }
}

fn add_assign_typed<T: Float>(a: &mut Tensor, b: &Tensor) -> Result<()> {
    let packed;
    let b = if same_dims(b.shape(), a.shape()) && b.is_contiguous() {
        b
    } else {
        packed = b.broadcast_to(a.shape())?.contiguous();
        &packed
    };
    let bv = b.as_slice::<T>()?;
    let av = a.data_mut::<T>()?;
    if av.len() < PAR_THRESHOLD {
        for (x, &y) in av.iter_mut().zip(bv) {
            *x += y;
        }
    } else {
        const CHUNK: usize = 1 << 14;
        for_each_chunk_mut(av, CHUNK, |i, xs| {
            for (x, &y) in xs.iter_mut().zip(&bv[i * CHUNK..]) {
                *x += y;
            }
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::{DType, Tensor};

    fn t(v: &[f64], shape: &[usize]) -> Tensor {
        Tensor::from_vec(v.to_vec(), shape).unwrap()
    }

    fn close(a: &Tensor, b: &Tensor) {
        let (a, b) = (a.to_vec::<f64>().unwrap(), b.to_vec::<f64>().unwrap());
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-12 * (1.0 + y.abs()),
                "element {i}: {x} vs {y}"
            );
        }
    }

    #[test]
    fn add_assign_small_same_shape_and_views() {
        // Fast path (same shape, packed rhs) and the general path (strided
        // rhs, broadcast rhs) against plain sums.
        let mut a = t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
        a.add_assign(&t(&[10.0, 20.0, 30.0, 40.0, 50.0, 60.0], &[2, 3]))
            .unwrap();
        assert_eq!(
            a.to_vec::<f64>().unwrap(),
            vec![11.0, 22.0, 33.0, 44.0, 55.0, 66.0]
        );
        let strided = t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[3, 2]).t().unwrap();
        a.add_assign(&strided).unwrap();
        assert_eq!(
            a.to_vec::<f64>().unwrap(),
            vec![12.0, 25.0, 38.0, 46.0, 59.0, 72.0]
        );
        a.add_assign(&t(&[1.0, 2.0, 3.0], &[3])).unwrap();
        assert_eq!(
            a.to_vec::<f64>().unwrap(),
            vec![13.0, 27.0, 41.0, 47.0, 61.0, 75.0]
        );
        // A shared buffer is copied first, not written through.
        let shared = a.clone();
        a.add_assign(&t(&[1.0; 6], &[2, 3])).unwrap();
        assert_eq!(
            shared.to_vec::<f64>().unwrap(),
            vec![13.0, 27.0, 41.0, 47.0, 61.0, 75.0]
        );
        assert_eq!(
            a.to_vec::<f64>().unwrap(),
            vec![14.0, 28.0, 42.0, 48.0, 62.0, 76.0]
        );
    }

    fn sample() -> (Tensor, Tensor) {
        // Both signs, zero, and values where the derivatives bend.
        let x = [-3.0, -1.2, -0.4, 0.0, 0.3, 0.9, 2.5, -0.05];
        let g = [0.5, -1.0, 2.0, 1.5, -0.25, 3.0, 1.0, -2.0];
        (t(&g, &[2, 4]), t(&x, &[2, 4]))
    }

    #[test]
    fn activation_backwards_match_their_unfused_expressions() {
        let (g, x) = sample();
        let y = x.tanh().unwrap();
        let one_minus = y.mul(&y).unwrap().rsub_scalar(1.0).unwrap();
        close(&g.tanh_backward(&y).unwrap(), &g.mul(&one_minus).unwrap());

        let s = x.sigmoid().unwrap();
        let ds = s.mul(&s.rsub_scalar(1.0).unwrap()).unwrap();
        close(&g.sigmoid_backward(&s).unwrap(), &g.mul(&ds).unwrap());

        let mask = x.gt_scalar(0.0).unwrap().to_dtype(DType::F64);
        close(&g.relu_backward(&x).unwrap(), &g.mul(&mask).unwrap());
        let lr = mask.mul_scalar(1.0 - 0.1).unwrap().add_scalar(0.1).unwrap();
        close(
            &g.leaky_relu_backward(&x, 0.1).unwrap(),
            &g.mul(&lr).unwrap(),
        );

        // silu' = s (1 + x (1 - s))
        let dsilu = s
            .mul(
                &x.mul(&s.rsub_scalar(1.0).unwrap())
                    .unwrap()
                    .add_scalar(1.0)
                    .unwrap(),
            )
            .unwrap();
        close(&g.silu_backward(&x).unwrap(), &g.mul(&dsilu).unwrap());

        let inside = x
            .ge_scalar(-0.4)
            .unwrap()
            .to_dtype(DType::F64)
            .mul(&x.le_scalar(0.9).unwrap().to_dtype(DType::F64))
            .unwrap();
        close(
            &g.clamp_backward(&x, -0.4, 0.9).unwrap(),
            &g.mul(&inside).unwrap(),
        );
    }

    #[test]
    fn gelu_backwards_match_finite_differences() {
        // Central differences of the forward ops in f64; the error is O(h^2).
        let (g, x) = sample();
        let h = 1e-6;
        for (fwd, bwd) in [
            (
                Tensor::gelu as fn(&Tensor) -> crate::Result<Tensor>,
                Tensor::gelu_backward as fn(&Tensor, &Tensor) -> crate::Result<Tensor>,
            ),
            (Tensor::gelu_tanh, Tensor::gelu_tanh_backward),
        ] {
            let up = fwd(&x.add_scalar(h).unwrap()).unwrap();
            let down = fwd(&x.add_scalar(-h).unwrap()).unwrap();
            let d = up.sub(&down).unwrap().mul_scalar(0.5 / h).unwrap();
            let want = g.mul(&d).unwrap().to_vec::<f64>().unwrap();
            let got = bwd(&g, &x).unwrap().to_vec::<f64>().unwrap();
            for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                assert!((a - b).abs() < 1e-8, "element {i}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn fused_ops_reject_mixed_dtypes_and_integers() {
        let g = Tensor::from_vec(vec![1.0f32], &[1]).unwrap();
        let x = Tensor::from_vec(vec![1.0f64], &[1]).unwrap();
        assert!(g.tanh_backward(&x).is_err());
        let i = Tensor::from_vec(vec![1i64], &[1]).unwrap();
        assert!(i.relu_backward(&i).is_err());
    }

    #[test]
    fn add_assign_in_place_broadcast_and_copy_on_write() {
        let mut a = t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
        let shared = a.clone();
        a.add_assign(&t(&[10.0, 20.0, 30.0], &[3])).unwrap();
        assert_eq!(
            a.to_vec::<f64>().unwrap(),
            vec![11.0, 22.0, 33.0, 14.0, 25.0, 36.0]
        );
        // The clone taken before still sees the old values.
        assert_eq!(
            shared.to_vec::<f64>().unwrap(),
            vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
        );
        // Unshared and packed: the buffer is reused, not reallocated.
        let before = a.as_slice::<f64>().unwrap().as_ptr();
        a.add_assign(&t(&[1.0; 6], &[2, 3])).unwrap();
        assert_eq!(a.as_slice::<f64>().unwrap().as_ptr(), before);
        assert_eq!(
            a.to_vec::<f64>().unwrap(),
            vec![12.0, 23.0, 34.0, 15.0, 26.0, 37.0]
        );
        // A transposed (non-packed) right-hand side.
        let mut sq = t(&[0.0; 4], &[2, 2]);
        let m = t(&[1.0, 2.0, 3.0, 4.0], &[2, 2]).transpose(0, 1).unwrap();
        sq.add_assign(&m).unwrap();
        assert_eq!(sq.to_vec::<f64>().unwrap(), vec![1.0, 3.0, 2.0, 4.0]);
        // The left-hand side cannot grow by broadcasting.
        let mut small = t(&[1.0], &[1]);
        assert!(small.add_assign(&t(&[1.0, 2.0], &[2])).is_err());
        // Large enough for the parallel path.
        let n = (1 << 15) + 3;
        let mut big = Tensor::from_vec((0..n).map(|i| i as f64).collect(), &[n]).unwrap();
        big.add_assign(&Tensor::full(&[n], 0.5, DType::F64))
            .unwrap();
        let v = big.to_vec::<f64>().unwrap();
        assert!(v.iter().enumerate().all(|(i, &x)| x == i as f64 + 0.5));
    }
}
