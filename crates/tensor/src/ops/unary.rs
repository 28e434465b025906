//! Elementwise unary ops on float tensors (any layout; output is packed).
//!
//! Conventions at non-differentiable or special points follow PyTorch:
//! `sign(0) = 0`, `relu(NaN) = NaN`, `clamp` passes NaN through.

use crate::dtype::{Element, Float};
use crate::error::Result;
use crate::tensor::{float_dispatch, map_float, map_float_heavy};
use crate::Tensor;

/// sqrt(2 / pi), used by the tanh form of GELU.
const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
/// 1 / sqrt(2), used by the erf form of GELU.
const FRAC_1_SQRT_2: f64 = std::f64::consts::FRAC_1_SQRT_2;

#[inline(always)]
pub(crate) fn sigmoid<T: Float>(x: T) -> T {
    // Stable on both tails: never exponentiates a large positive number.
    if x >= T::ZERO {
        T::ONE / (T::ONE + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::ONE + e)
    }
}

macro_rules! unary_ops {
    ($map:ident; $( $(#[$doc:meta])* $name:ident => |$x:ident| $body:expr; )*) => {
        impl Tensor {
            $(
                $(#[$doc])*
                pub fn $name(&self) -> Result<Tensor> {
                    float_dispatch!(stringify!($name), self.dtype(), T => {
                        $map::<T, T>(self, stringify!($name), #[inline(always)] |$x: T| $body)
                    })
                }
            )*
        }
    };
}

// Compute-bound and vectorisable (no libm call): the loop is compiled for
// the CPU's widest vectors at run time (`kernels::simd`).
unary_ops! {
    map_float_heavy;
    /// `e^x`.
    exp => |x| Float::exp(x);
    /// Logistic sigmoid `1 / (1 + e^-x)`, computed stably on both tails.
    sigmoid => |x| sigmoid(x);
    /// SiLU (swish): `x * sigmoid(x)`.
    silu => |x| x * sigmoid(x);
}

unary_ops! {
    map_float;
    /// `-x`.
    neg => |x| -x;
    /// `|x|`.
    abs => |x| x.abs();
    /// Natural logarithm.
    log => |x| x.ln();
    /// `ln(1 + x)`, accurate near 0.
    log1p => |x| x.ln_1p();
    /// `e^x - 1`, accurate near 0.
    expm1 => |x| x.exp_m1();
    /// Square root.
    sqrt => |x| x.sqrt();
    /// `1 / sqrt(x)`.
    rsqrt => |x| T::ONE / x.sqrt();
    /// `1 / x`.
    recip => |x| T::ONE / x;
    /// `x * x`.
    square => |x| x * x;
    /// Sine.
    sin => |x| x.sin();
    /// Cosine.
    cos => |x| x.cos();
    /// Hyperbolic tangent.
    tanh => |x| x.tanh();
    /// The error function.
    erf => |x| x.error_fn();
    /// `max(x, 0)` (NaN stays NaN).
    relu => |x| if x < T::ZERO { T::ZERO } else { x };
    /// GELU, exact erf form: `x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2))`.
    gelu => |x| T::from_f64(0.5) * x * (T::ONE + (x * T::from_f64(FRAC_1_SQRT_2)).error_fn());
    /// GELU, tanh approximation: `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`.
    gelu_tanh => |x| {
        let inner = T::from_f64(SQRT_2_OVER_PI) * (x + T::from_f64(0.044715) * x * x * x);
        T::from_f64(0.5) * x * (T::ONE + inner.tanh())
    };
    /// `ln(1 + e^x)`, computed stably as `max(x, 0) + ln(1 + e^-|x|)`.
    softplus => |x| (if x > T::ZERO { x } else { T::ZERO }) + (-x.abs()).exp().ln_1p();
    /// -1, 0 or 1 (NaN stays NaN).
    sign => |x| if x > T::ZERO { T::ONE } else if x < T::ZERO { -T::ONE } else { x * T::ZERO };
}

impl Tensor {
    /// `x^p` for a scalar power.
    pub fn powf(&self, p: f64) -> Result<Tensor> {
        float_dispatch!("powf", self.dtype(), T => {
            let p = T::from_f64(p);
            if p == T::from_f64(2.0) {
                map_float::<T, T>(self, "powf", |x| x * x)
            } else {
                map_float::<T, T>(self, "powf", move |x| x.powf(p))
            }
        })
    }

    /// `x` for `x > 0`, else `slope * x`.
    pub fn leaky_relu(&self, slope: f64) -> Result<Tensor> {
        float_dispatch!("leaky_relu", self.dtype(), T => {
            let s = T::from_f64(slope);
            map_float::<T, T>(self, "leaky_relu", move |x| if x > T::ZERO { x } else { s * x })
        })
    }

    /// Clamp into `[min, max]` (NaN passes through). Errors if `min > max`.
    pub fn clamp(&self, min: f64, max: f64) -> Result<Tensor> {
        if min > max {
            return Err(crate::TensorError::invalid(
                "clamp",
                format!("min {min} is greater than max {max}"),
            ));
        }
        float_dispatch!("clamp", self.dtype(), T => {
            let (lo, hi) = (T::from_f64(min), T::from_f64(max));
            map_float::<T, T>(self, "clamp", move |x| if x < lo { lo } else if x > hi { hi } else { x })
        })
    }

    /// A bool mask of NaN elements.
    pub fn isnan(&self) -> Result<Tensor> {
        float_dispatch!("isnan", self.dtype(), T => map_float::<T, bool>(self, "isnan", |x| x.is_nan()))
    }

    /// A bool mask of finite elements.
    pub fn isfinite(&self) -> Result<Tensor> {
        float_dispatch!("isfinite", self.dtype(), T => map_float::<T, bool>(self, "isfinite", |x| x.is_finite()))
    }

    /// Count of elements that are NaN and that are infinite: `(nan, inf)`.
    pub fn count_nonfinite(&self) -> Result<(usize, usize)> {
        float_dispatch!("count_nonfinite", self.dtype(), T => {
            let v = self.to_vec::<T>()?;
            let nan = v.iter().filter(|x| x.is_nan()).count();
            let inf = v.iter().filter(|x| !x.is_nan() && !x.is_finite()).count();
            Ok((nan, inf))
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::{DType, Tensor};

    /// The bit patterns of an f32 tensor's elements (for exact comparisons).
    pub(crate) fn bits(t: &Tensor) -> Vec<u32> {
        t.to_vec::<f32>()
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect()
    }

    /// Values across exp's range, the special values, and a length with a
    /// tail past every vector width.
    pub(crate) fn awkward_f32(n: usize) -> Vec<f32> {
        let special = [0.0, -0.0, 1e-30, -1e-30, 88.7, 89.5, -87.0, -103.0, -110.0];
        (0..n)
            .map(|i| match i % 61 {
                0 => f32::NAN,
                1 => f32::INFINITY,
                2 => f32::NEG_INFINITY,
                j if j < 12 => special[j - 3],
                _ => ((i * 7919) % 2003) as f32 / 10.0 - 100.0,
            })
            .collect()
    }

    #[test]
    fn heavy_maps_give_the_same_bits_on_every_kernel_path() {
        use crate::dtype::Float;
        use crate::kernels::{supported_paths, KernelPath};
        use crate::tensor::map_float_heavy_with;
        // 61: the plain path; 1000: one vector loop; 40_000: chunks over the pool.
        for n in [61, 1000, 40_000] {
            let x = Tensor::from_vec(awkward_f32(n), &[n]).unwrap();
            let run = |path: KernelPath| -> Vec<Vec<u32>> {
                let ops: [fn(f32) -> f32; 3] =
                    [Float::exp, super::sigmoid, |v: f32| v * super::sigmoid(v)];
                ops.iter()
                    .map(|f| bits(&map_float_heavy_with::<f32, f32>(&x, "test", path, f).unwrap()))
                    .collect()
            };
            let want = run(KernelPath::Scalar);
            // The scalar path is the plain per-element function.
            let direct: Vec<u32> = awkward_f32(n)
                .iter()
                .map(|&v| Float::exp(v).to_bits())
                .collect();
            assert_eq!(want[0], direct);
            for path in supported_paths() {
                assert_eq!(run(path), want, "{path} differs from scalar at n = {n}");
            }
        }
        // The public ops take this path and agree with it.
        let x = Tensor::from_vec(awkward_f32(1000), &[1000]).unwrap();
        let e = bits(&x.exp().unwrap());
        let want: Vec<u32> = awkward_f32(1000)
            .iter()
            .map(|&v| Float::exp(v).to_bits())
            .collect();
        assert_eq!(e, want);
    }

    #[test]
    fn sigmoid_and_softplus_are_stable_on_the_tails() {
        let x = Tensor::from_vec(vec![-1000.0f64, -30.0, 0.0, 30.0, 1000.0], &[5]).unwrap();
        let s = x.sigmoid().unwrap().to_vec::<f64>().unwrap();
        assert_eq!(s[0], 0.0);
        assert_eq!(s[2], 0.5);
        assert_eq!(s[4], 1.0);
        assert!((s[1] - (-30f64).exp() / (1.0 + (-30f64).exp())).abs() < 1e-25);
        let sp = x.softplus().unwrap().to_vec::<f64>().unwrap();
        assert_eq!(sp[4], 1000.0);
        assert!(sp[0] >= 0.0 && sp[0] < 1e-300);
        assert!((sp[2] - 2f64.ln()).abs() < 1e-15);
    }

    #[test]
    fn gelu_matches_its_formula_at_known_points() {
        // gelu(1) = Phi(1) = 0.8413447460685429 (standard normal CDF).
        let x = Tensor::from_vec(vec![1.0f64, -1.0], &[2]).unwrap();
        let g = x.gelu().unwrap().to_vec::<f64>().unwrap();
        assert!((g[0] - 0.841_344_746_068_542_9).abs() < 1e-15);
        assert!((g[1] + (1.0 - 0.841_344_746_068_542_9)).abs() < 1e-15);
        let gt = x.gelu_tanh().unwrap().to_vec::<f64>().unwrap();
        assert!((gt[0] - 0.841_191_990_607_477_2).abs() < 1e-12);
    }

    #[test]
    fn unary_on_integer_dtype_is_an_error_naming_the_op() {
        let x = Tensor::zeros(&[2], DType::I64);
        let e = x.exp().unwrap_err().to_string();
        assert!(e.starts_with("exp: dtype i64 is not supported"), "{e}");
    }
}
