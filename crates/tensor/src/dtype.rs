//! Element types: [`DType`], the [`Element`] storage trait and the [`Float`] compute trait.
//!
//! heft computes in `f32` and `f64` (f64 is what gradient checking runs in).
//! `f16` and `bf16` are storage dtypes: convert them with
//! [`Tensor::to_dtype`](crate::Tensor::to_dtype) before computing. `i64` is the
//! dtype of indices and class labels; `bool` is the dtype of comparison masks.

use crate::kernels::{MatMut, MatRef};
use crate::storage::Storage;
use half::{bf16, f16};
use std::fmt;

/// The element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit IEEE float.
    F32,
    /// 64-bit IEEE float.
    F64,
    /// 16-bit IEEE float (storage only).
    F16,
    /// bfloat16 (storage only).
    BF16,
    /// 64-bit signed integer: indices and labels.
    I64,
    /// Boolean: masks from comparisons.
    Bool,
}

impl DType {
    /// Size of one element in bytes.
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F64 | DType::I64 => 8,
            DType::F16 | DType::BF16 => 2,
            DType::Bool => 1,
        }
    }

    /// True for the dtypes heft computes in (`f32`, `f64`).
    pub fn is_float_compute(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }

    /// True for every floating-point dtype, storage-only ones included.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64 | DType::F16 | DType::BF16)
    }

    /// The lower-case name used in messages and files (`"f32"`, `"bf16"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::I64 => "i64",
            DType::Bool => "bool",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A type that can be stored in a tensor.
pub trait Element: Copy + Send + Sync + Default + PartialEq + fmt::Debug + 'static {
    /// The dtype tag of this element type.
    const DTYPE: DType;
    /// Borrow the typed slice if `storage` holds this type.
    fn slice(storage: &Storage) -> Option<&[Self]>;
    /// Borrow the typed slice mutably if `storage` holds this type.
    fn slice_mut(storage: &mut Storage) -> Option<&mut [Self]>;
    /// Wrap a vector as storage.
    fn into_storage(v: Vec<Self>) -> Storage;
    /// Storage holding the `n` elements `it` yields (`n` must be exact).
    /// Small buffers are built inline, with no heap allocation of their own.
    fn collect_storage(n: usize, it: impl Iterator<Item = Self>) -> Storage;
    /// Convert to f64 (exact for every type but i64 beyond 2^53).
    fn to_f64(self) -> f64;
    /// Convert from f64 (rounding to nearest; bool is `x != 0`; i64 truncates).
    fn from_f64(x: f64) -> Self;
}

/// Elements of `T` that [`Storage`] keeps inline (16 bytes' worth).
#[inline(always)]
const fn storage_inline_capacity<T>() -> usize {
    16 / std::mem::size_of::<T>()
}

macro_rules! impl_element {
    ($t:ty, $d:ident, $to:expr, $from:expr) => {
        impl Element for $t {
            const DTYPE: DType = DType::$d;
            #[inline]
            fn slice(storage: &Storage) -> Option<&[Self]> {
                match storage {
                    Storage::$d(v) => Some(v.as_slice()),
                    _ => None,
                }
            }
            #[inline]
            fn slice_mut(storage: &mut Storage) -> Option<&mut [Self]> {
                match storage {
                    Storage::$d(v) => Some(v.as_mut_slice()),
                    _ => None,
                }
            }
            #[inline]
            fn into_storage(v: Vec<Self>) -> Storage {
                Storage::$d(smallvec::SmallVec::from_vec(v))
            }
            #[inline]
            fn collect_storage(n: usize, it: impl Iterator<Item = Self>) -> Storage {
                let v = if n <= storage_inline_capacity::<Self>() {
                    it.collect()
                } else {
                    // Large: collect as a Vec (its loop vectorises) and adopt
                    // the heap buffer without copying.
                    smallvec::SmallVec::from_vec(it.collect::<Vec<Self>>())
                };
                debug_assert_eq!(v.len(), n);
                Storage::$d(v)
            }
            #[inline]
            fn to_f64(self) -> f64 {
                ($to)(self)
            }
            #[inline]
            fn from_f64(x: f64) -> Self {
                ($from)(x)
            }
        }
    };
}

impl_element!(f32, F32, |x: f32| x as f64, |x: f64| x as f32);
impl_element!(f64, F64, |x: f64| x, |x: f64| x);
impl_element!(f16, F16, |x: f16| x.to_f64(), f16::from_f64);
impl_element!(bf16, BF16, |x: bf16| x.to_f64(), bf16::from_f64);
impl_element!(i64, I64, |x: i64| x as f64, |x: f64| x as i64);
impl_element!(bool, Bool, |x: bool| if x { 1.0 } else { 0.0 }, |x: f64| x
    != 0.0);

/// A floating-point type heft computes in: `f32` or `f64`.
pub trait Float:
    Element
    + PartialOrd
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::Neg<Output = Self>
    + std::ops::AddAssign
    + std::ops::MulAssign
    + std::iter::Sum
{
    /// 0.
    const ZERO: Self;
    /// 1.
    const ONE: Self;
    /// Positive infinity.
    const INFINITY: Self;
    /// Negative infinity.
    const NEG_INFINITY: Self;
    /// Convert from f32.
    fn from_f32(x: f32) -> Self;
    /// Absolute value.
    fn abs(self) -> Self;
    /// e^x.
    fn exp(self) -> Self;
    /// Natural log.
    fn ln(self) -> Self;
    /// ln(1 + x), accurate near 0.
    fn ln_1p(self) -> Self;
    /// e^x - 1, accurate near 0.
    fn exp_m1(self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// Sine.
    fn sin(self) -> Self;
    /// Cosine.
    fn cos(self) -> Self;
    /// Hyperbolic tangent.
    fn tanh(self) -> Self;
    /// The error function.
    fn error_fn(self) -> Self;
    /// x^p for a float power.
    fn powf(self, p: Self) -> Self;
    /// x^n for an integer power.
    fn powi(self, n: i32) -> Self;
    /// Larger of two (NaN-propagating).
    fn max_nan(self, other: Self) -> Self;
    /// Smaller of two (NaN-propagating).
    fn min_nan(self, other: Self) -> Self;
    /// True for NaN.
    fn is_nan(self) -> bool;
    /// True for finite values.
    fn is_finite(self) -> bool;
    /// `C = A B` (or `+=`) with the fastest kernel for this type.
    fn gemm(a: MatRef<'_, Self>, b: MatRef<'_, Self>, c: MatMut<'_, Self>, accumulate: bool);
    /// `A B` as a new row-major vector, never zero-filled first.
    fn gemm_new(a: MatRef<'_, Self>, b: MatRef<'_, Self>) -> Vec<Self>;
    /// `init + A B` as a new row-major vector, never filled first: each
    /// part is set to `init` right before the product is added to it (on
    /// several threads, by the thread that computes that part).
    fn gemm_new_init(a: MatRef<'_, Self>, b: MatRef<'_, Self>, init: MatRef<'_, Self>)
        -> Vec<Self>;
}

macro_rules! impl_float {
    ($t:ident, $erf:path, $exp:path, $gemm:path, $gemm_new:path, $gemm_new_init:path) => {
        impl Float for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const INFINITY: Self = $t::INFINITY;
            const NEG_INFINITY: Self = $t::NEG_INFINITY;
            #[inline(always)]
            fn from_f32(x: f32) -> Self {
                x as $t
            }
            #[inline(always)]
            fn abs(self) -> Self {
                $t::abs(self)
            }
            #[inline(always)]
            fn exp(self) -> Self {
                $exp(self)
            }
            #[inline(always)]
            fn ln(self) -> Self {
                $t::ln(self)
            }
            #[inline(always)]
            fn ln_1p(self) -> Self {
                $t::ln_1p(self)
            }
            #[inline(always)]
            fn exp_m1(self) -> Self {
                $t::exp_m1(self)
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                $t::sqrt(self)
            }
            #[inline(always)]
            fn sin(self) -> Self {
                $t::sin(self)
            }
            #[inline(always)]
            fn cos(self) -> Self {
                $t::cos(self)
            }
            #[inline(always)]
            fn tanh(self) -> Self {
                $t::tanh(self)
            }
            #[inline(always)]
            fn error_fn(self) -> Self {
                $erf(self)
            }
            #[inline(always)]
            fn powf(self, p: Self) -> Self {
                $t::powf(self, p)
            }
            #[inline(always)]
            fn powi(self, n: i32) -> Self {
                $t::powi(self, n)
            }
            #[inline(always)]
            fn max_nan(self, other: Self) -> Self {
                if self.is_nan() || self > other {
                    self
                } else if other.is_nan() {
                    other
                } else {
                    other
                }
            }
            #[inline(always)]
            fn min_nan(self, other: Self) -> Self {
                if self.is_nan() || self < other {
                    self
                } else {
                    other
                }
            }
            #[inline(always)]
            fn is_nan(self) -> bool {
                $t::is_nan(self)
            }
            #[inline(always)]
            fn is_finite(self) -> bool {
                $t::is_finite(self)
            }
            #[inline]
            fn gemm(
                a: MatRef<'_, Self>,
                b: MatRef<'_, Self>,
                c: MatMut<'_, Self>,
                accumulate: bool,
            ) {
                $gemm(a, b, c, accumulate)
            }
            #[inline]
            fn gemm_new(a: MatRef<'_, Self>, b: MatRef<'_, Self>) -> Vec<Self> {
                $gemm_new(a, b)
            }
            #[inline]
            fn gemm_new_init(
                a: MatRef<'_, Self>,
                b: MatRef<'_, Self>,
                init: MatRef<'_, Self>,
            ) -> Vec<Self> {
                $gemm_new_init(a, b, init)
            }
        }
    };
}

impl_float!(
    f32,
    libm::erff,
    exp_f32,
    crate::kernels::gemm_f32,
    crate::kernels::gemm_f32_new,
    crate::kernels::gemm_f32_new_init
);
impl_float!(
    f64,
    libm::erf,
    f64::exp,
    crate::kernels::gemm_f64,
    crate::kernels::gemm_f64_new,
    crate::kernels::gemm_f64_new_init
);

/// `e^x` in f32 with no libm call, so loops over it vectorise (softmax,
/// sigmoid, GELU). Within 2 ulp of the correctly rounded result over the
/// whole range (tested against f64 below), with the IEEE special cases:
/// overflow to `inf` above ~88.72, gradual underflow to subnormals and `0`
/// below ~-87.3, `exp(-inf) = 0`, `exp(NaN) = NaN`.
///
/// Method (Cody and Waite; Cephes' `expf` coefficients): `x = k ln 2 + r`
/// with `k` the nearest integer to `x / ln 2` and `|r| <= ln 2 / 2`, `ln 2`
/// split in two parts so `r` is exact; `e^r` by a degree-7 minimax
/// polynomial; `2^k` built from its exponent bits, in two factors so that
/// results in the subnormal range are not flushed.
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4; // 355/512 exactly
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and subtracting 1.5 * 2^23 rounds to the nearest integer
    // (in the default rounding mode) without a rounding instruction.
    const ROUND: f32 = 12_582_912.0;
    // Past these the result is inf or 0; the clamp keeps `k` in range.
    let xc = x.clamp(-104.0, 89.0);
    let kr = xc * LOG2E + ROUND;
    let k = kr - ROUND;
    let r = (xc - k * LN2_HI) - k * LN2_LO;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5; // Cephes: 5.0000001201e-1, which rounds to 0.5 in f32
    let er = p * (r * r) + r + 1.0;
    // The integer k, read from the bits of `kr` (its low mantissa bits hold
    // k once 1.5 * 2^23 is added): integer lane arithmetic, which
    // vectorises, where a float-to-int cast would not. NaN gives some k;
    // the NaN in `er` carries through regardless.
    let ki = (kr.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    // 2^k = 2^k1 * 2^k2 with both halves normal for k in [-151, 129].
    let k1 = ki >> 1;
    let k2 = ki - k1;
    let s1 = f32::from_bits((k1.wrapping_add(127) as u32) << 23);
    let s2 = f32::from_bits((k2.wrapping_add(127) as u32) << 23);
    let y = er * s1 * s2;
    // NaN passes through the clamp and the arithmetic; -inf clamps to -104
    // and gives 0; above 89 the result overflows to inf in the products.
    if x > 89.0 {
        f32::INFINITY
    } else {
        y
    }
}

#[cfg(test)]
mod tests {
    use super::exp_f32;

    /// Distance in units in the last place between two finite f32 of the same sign.
    fn ulps(a: f32, b: f32) -> u32 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
    }

    #[test]
    fn exp_f32_is_within_2_ulp_of_the_rounded_f64_result() {
        let mut worst = (0u32, 0.0f32);
        // A dense sweep of the whole finite-result range, subnormals included.
        let (lo, hi, n) = (-103.9f64, 88.72f64, 2_000_000);
        for i in 0..=n {
            let x = (lo + (hi - lo) * i as f64 / n as f64) as f32;
            let want = (x as f64).exp() as f32;
            let got = exp_f32(x);
            let d = ulps(got, want);
            if d > worst.0 {
                worst = (d, x);
            }
        }
        assert!(worst.0 <= 2, "{} ulp at x = {}", worst.0, worst.1);
        // Near 0, where e^x = 1 + x to within an ulp.
        for x in [0.0f32, -0.0, 1e-8, -1e-8, 1e-30] {
            assert_eq!(exp_f32(x), (x as f64).exp() as f32, "{x}");
        }
    }

    #[test]
    fn exp_f32_special_values() {
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(-1e4), 0.0);
        assert_eq!(exp_f32(-104.0), 0.0);
        assert_eq!(exp_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp_f32(89.0), f32::INFINITY);
        assert_eq!(exp_f32(1e4), f32::INFINITY);
        assert!(exp_f32(f32::NAN).is_nan());
        // The largest finite result and the smallest subnormal region.
        assert!(exp_f32(88.72).is_finite());
        let tiny = exp_f32(-100.0);
        assert!(tiny > 0.0 && tiny < f32::MIN_POSITIVE);
        assert_eq!(exp_f32(1.0), std::f32::consts::E);
    }
}
