//! Elementwise binary ops with numpy broadcasting, comparisons and `where_`.
//!
//! Both operands must have the same dtype (heft never casts silently). The
//! output shape is the broadcast of the two shapes; operands are read through
//! zero-stride views, never expanded in memory.

use crate::dtype::{Element, Float};
use crate::error::{Result, TensorError};
use crate::kernels::split::collect_chunks;
use crate::layout::{broadcast_shapes, same_dims};
use crate::strided;
use crate::tensor::{any_dispatch, float_dispatch, map_float};
use crate::{DType, Tensor};

/// Broadcast `a` and `b` and build a packed output with `f(a_i, b_i)`.
pub(crate) fn zip_map<T: Element, U: Element>(
    a: &Tensor,
    b: &Tensor,
    op: &'static str,
    f: impl Fn(T, T) -> U + Sync,
) -> Result<Tensor> {
    let (sa, la) = a.typed::<T>(op)?;
    let (sb, lb) = b.typed::<T>(op)?;
    // Small operands of one shape, `a` in canonical layout and `b` packed:
    // no broadcast, and the output takes a clone of `a`'s layout.
    if same_dims(la.shape(), lb.shape()) {
        if let (Some(n), Some(rb)) = (la.canonical_numel(), lb.contiguous_range()) {
            if n < strided::PAR_THRESHOLD {
                let it = sa[..n].iter().zip(&sb[rb]).map(|(&p, &q)| f(p, q));
                return Ok(Tensor::from_iter_layout(it, n, la.clone()));
            }
        }
    }
    let shape = broadcast_shapes(op, a.shape(), b.shape())?;
    // Fast paths for packed operands: same shape, or one side a single element.
    let n: usize = shape.iter().product();
    if let (Some(ra), Some(rb)) = (a.layout().contiguous_range(), b.layout().contiguous_range()) {
        let (xa, xb) = (&sa[ra], &sb[rb]);
        if n >= strided::PAR_THRESHOLD && xa.len() == n && xb.len() == n {
            // Large and packed: write the output directly (no zero-fill),
            // in chunks over the pool.
            let v = collect_chunks(n, strided::MAP_CHUNK, true, |r, out| {
                out.extend(xa[r.clone()].iter().zip(&xb[r]).map(|(&p, &q)| f(p, q)))
            });
            return Ok(Tensor::from_vec_unchecked(v, &shape));
        }
        if n < strided::PAR_THRESHOLD {
            if xa.len() == n && xb.len() == n {
                let it = xa.iter().zip(xb).map(|(&p, &q)| f(p, q));
                return Ok(Tensor::from_iter_unchecked(it, &shape));
            } else if xa.len() == n && xb.len() == 1 {
                let q = xb[0];
                let it = xa.iter().map(|&p| f(p, q));
                return Ok(Tensor::from_iter_unchecked(it, &shape));
            } else if xb.len() == n && xa.len() == 1 {
                let p = xa[0];
                let it = xb.iter().map(|&q| f(p, q));
                return Ok(Tensor::from_iter_unchecked(it, &shape));
            }
        }
    }
    let la = a.layout().broadcast_to(&shape)?;
    let lb = b.layout().broadcast_to(&shape)?;
    let v = strided::fill(
        &shape,
        [(la.strides(), la.offset()), (lb.strides(), lb.offset())],
        |out, n, [oa, ob], [xa, xb]| match (xa, xb) {
            (1, 1) => out.extend(
                sa[oa..oa + n]
                    .iter()
                    .zip(&sb[ob..ob + n])
                    .map(|(&p, &q)| f(p, q)),
            ),
            (1, 0) => {
                let q = sb[ob];
                out.extend(sa[oa..oa + n].iter().map(|&p| f(p, q)));
            }
            (0, 1) => {
                let p = sa[oa];
                out.extend(sb[ob..ob + n].iter().map(|&q| f(p, q)));
            }
            _ => out.extend((0..n).map(|j| f(sa[oa + j * xa], sb[ob + j * xb]))),
        },
    );
    Ok(Tensor::from_vec_unchecked(v, &shape))
}

fn check_dtypes(a: &Tensor, b: &Tensor, op: &'static str) -> Result<DType> {
    let d = a.same_dtype(b, op)?;
    a.float_dtype(op).map(|_| d)
}

macro_rules! binary_ops {
    ($( $(#[$doc:meta])* $name:ident => |$a:ident, $b:ident| $body:expr; )*) => {
        impl Tensor {
            $(
                $(#[$doc])*
                pub fn $name(&self, other: &Tensor) -> Result<Tensor> {
                    let op = stringify!($name);
                    check_dtypes(self, other, op)?;
                    float_dispatch!(op, self.dtype(), T => {
                        zip_map::<T, T>(self, other, op, #[inline(always)] |$a: T, $b: T| $body)
                    })
                }
            )*
        }
    };
}

binary_ops! {
    /// `a + b` with broadcasting.
    add => |a, b| a + b;
    /// `a - b` with broadcasting.
    sub => |a, b| a - b;
    /// `a * b` with broadcasting.
    mul => |a, b| a * b;
    /// `a / b` with broadcasting.
    div => |a, b| a / b;
    /// `a ^ b` with broadcasting.
    pow => |a, b| a.powf(b);
    /// Elementwise maximum (NaN-propagating).
    maximum => |a, b| a.max_nan(b);
    /// Elementwise minimum (NaN-propagating).
    minimum => |a, b| a.min_nan(b);
}

macro_rules! compare_ops {
    ($( $(#[$doc:meta])* $name:ident, $sname:ident => |$a:ident, $b:ident| $body:expr; )*) => {
        impl Tensor {
            $(
                $(#[$doc])*
                pub fn $name(&self, other: &Tensor) -> Result<Tensor> {
                    let op = stringify!($name);
                    self.same_dtype(other, op)?;
                    any_dispatch!(self.dtype(), T => {
                        zip_map::<T, bool>(self, other, op, |$a: T, $b: T| $body)
                    })
                }
                $(#[$doc])*
                ///
                /// Against a scalar (converted to this tensor's dtype).
                pub fn $sname(&self, value: f64) -> Result<Tensor> {
                    let other = Tensor::full(&[], value, self.dtype());
                    self.$name(&other)
                }
            )*
        }
    };
}

compare_ops! {
    /// Bool mask of `a == b`.
    eq, eq_scalar => |a, b| a == b;
    /// Bool mask of `a != b`.
    ne, ne_scalar => |a, b| a != b;
    /// Bool mask of `a < b`.
    lt, lt_scalar => |a, b| a.to_f64() < b.to_f64();
    /// Bool mask of `a <= b`.
    le, le_scalar => |a, b| a.to_f64() <= b.to_f64();
    /// Bool mask of `a > b`.
    gt, gt_scalar => |a, b| a.to_f64() > b.to_f64();
    /// Bool mask of `a >= b`.
    ge, ge_scalar => |a, b| a.to_f64() >= b.to_f64();
}

macro_rules! scalar_ops {
    ($( $(#[$doc:meta])* $name:ident => |$x:ident, $s:ident| $body:expr; )*) => {
        impl Tensor {
            $(
                $(#[$doc])*
                pub fn $name(&self, value: f64) -> Result<Tensor> {
                    let op = stringify!($name);
                    float_dispatch!(op, self.dtype(), T => {
                        let $s = T::from_f64(value);
                        map_float::<T, T>(self, op, #[inline(always)] move |$x: T| $body)
                    })
                }
            )*
        }
    };
}

scalar_ops! {
    /// `x + s`.
    add_scalar => |x, s| x + s;
    /// `x - s`.
    sub_scalar => |x, s| x - s;
    /// `s - x`.
    rsub_scalar => |x, s| s - x;
    /// `x * s`.
    mul_scalar => |x, s| x * s;
    /// `x / s`.
    div_scalar => |x, s| x / s;
    /// `s / x`.
    rdiv_scalar => |x, s| s / x;
    /// `max(x, s)` (NaN-propagating).
    maximum_scalar => |x, s| x.max_nan(s);
    /// `min(x, s)` (NaN-propagating).
    minimum_scalar => |x, s| x.min_nan(s);
}

impl Tensor {
    /// Pick `a` where `mask` is true, else `b`; all three broadcast together.
    ///
    /// `mask` must be a bool tensor; `a` and `b` must share a dtype.
    pub fn where_(mask: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        let op = "where_";
        if mask.dtype() != DType::Bool {
            return Err(TensorError::UnsupportedDType {
                op,
                dtype: mask.dtype(),
                hint: "the mask must be a bool tensor (from a comparison)",
            });
        }
        a.same_dtype(b, op)?;
        let s1 = broadcast_shapes(op, a.shape(), b.shape())?;
        let shape = broadcast_shapes(op, mask.shape(), &s1)?;
        let lm = mask.layout().broadcast_to(&shape)?;
        let la = a.layout().broadcast_to(&shape)?;
        let lb = b.layout().broadcast_to(&shape)?;
        let (sm, _) = mask.typed::<bool>(op)?;
        any_dispatch!(a.dtype(), T => {
            let (sa, _) = a.typed::<T>(op)?;
            let (sb, _) = b.typed::<T>(op)?;
            let v = strided::fill(
                &shape,
                [(lm.strides(), lm.offset()), (la.strides(), la.offset()), (lb.strides(), lb.offset())],
                |out, n, [om, oa, ob], [xm, xa, xb]| {
                    out.extend((0..n).map(|j| {
                        if sm[om + j * xm] { sa[oa + j * xa] } else { sb[ob + j * xb] }
                    }))
                },
            );
            Ok(Tensor::from_vec_unchecked(v, &shape))
        })
    }

    /// Replace elements where `mask` is true by `value` (mask broadcasts to this shape).
    pub fn masked_fill(&self, mask: &Tensor, value: f64) -> Result<Tensor> {
        let fill = Tensor::full(&[], value, self.dtype());
        let mb = mask.broadcast_to(self.shape()).map_err(|_| {
            TensorError::shapes(
                "masked_fill",
                self.shape(),
                mask.shape(),
                "the mask must broadcast to the tensor's shape",
            )
        })?;
        Tensor::where_(&mb, &fill, self)
    }

    /// Logical not of a bool mask.
    pub fn logical_not(&self) -> Result<Tensor> {
        let (s, l) = self.typed::<bool>("logical_not")?;
        let v = strided::gather(s, l.shape(), l.strides(), l.offset());
        Ok(Tensor::from_vec_unchecked(
            v.into_iter().map(|b| !b).collect::<Vec<_>>(),
            self.shape(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::{DType, Tensor};

    #[test]
    fn add_broadcasts_rows_and_columns() {
        let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3, 1]).unwrap();
        let b = Tensor::from_vec(vec![10.0f32, 20.0], &[2]).unwrap();
        let c = a.add(&b).unwrap();
        assert_eq!(c.shape(), &[3, 2]);
        assert_eq!(
            c.to_vec::<f32>().unwrap(),
            vec![11.0, 21.0, 12.0, 22.0, 13.0, 23.0]
        );
    }

    #[test]
    fn same_shape_operands_in_every_packing() {
        // The same-shape fast path (a canonical, b packed) and the general
        // path must agree with a naive loop, whichever operand is a view.
        let base = Tensor::arange(0.0, 12.0, 1.0, DType::F64)
            .unwrap()
            .reshape(&[3, 4])
            .unwrap();
        let other = base.mul_scalar(0.5).unwrap().add_scalar(1.0).unwrap();
        let views = [
            base.clone(),
            // packed with an offset
            Tensor::arange(0.0, 16.0, 1.0, DType::F64)
                .unwrap()
                .reshape(&[4, 4])
                .unwrap()
                .narrow(0, 1, 3)
                .unwrap(),
            // not packed
            Tensor::arange(0.0, 12.0, 1.0, DType::F64)
                .unwrap()
                .reshape(&[4, 3])
                .unwrap()
                .t()
                .unwrap(),
        ];
        for a in &views {
            for (x, y) in [(a, &other), (&other, a)] {
                let got = x.mul(y).unwrap();
                assert_eq!(got.shape(), &[3, 4]);
                assert!(got.is_contiguous());
                let (xv, yv) = (x.to_vec::<f64>().unwrap(), y.to_vec::<f64>().unwrap());
                let want: Vec<f64> = xv.iter().zip(&yv).map(|(p, q)| p * q).collect();
                assert_eq!(got.to_vec::<f64>().unwrap(), want);
            }
        }
    }

    #[test]
    fn dtype_mismatch_is_an_error() {
        let a = Tensor::zeros(&[2], DType::F32);
        let b = Tensor::zeros(&[2], DType::F64);
        assert_eq!(
            a.add(&b).unwrap_err().to_string(),
            "add: dtype mismatch: lhs is f32 and rhs is f64"
        );
    }

    #[test]
    fn where_and_masked_fill() {
        let x = Tensor::from_vec(vec![-1.0f64, 2.0, -3.0], &[3]).unwrap();
        let m = x.lt_scalar(0.0).unwrap();
        assert_eq!(
            x.masked_fill(&m, 0.0).unwrap().to_vec::<f64>().unwrap(),
            vec![0.0, 2.0, 0.0]
        );
    }
}
