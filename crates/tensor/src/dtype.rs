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
}

macro_rules! impl_float {
    ($t:ident, $erf:path, $gemm:path) => {
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
                $t::exp(self)
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
        }
    };
}

impl_float!(f32, libm::erff, crate::kernels::gemm_f32);
impl_float!(f64, libm::erf, crate::kernels::gemm_f64);
