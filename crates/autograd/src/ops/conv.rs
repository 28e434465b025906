//! Differentiable convolution and pooling, built from `unfold2d` (im2col),
//! its adjoint `fold2d` (col2im), `matmul` and reductions.
//!
//! `conv2d(x, w) = reshape(w, [O, C*kh*kw]) @ unfold2d(x)`; its gradient
//! with respect to the input is `fold2d(w^T @ g)` and with respect to the
//! weight `g @ unfold2d(x)^T`, both falling out of the primitives' VJPs.
//! Max pooling is a max over the taps of `unfold2d(x, pad = -inf)`; ties
//! share the gradient equally.

use crate::error::Result;
use crate::var::Var;
use heft_tensor::{Conv2dParams, TensorError};
use smallvec::smallvec;

impl Var {
    /// im2col: `[N, C, H, W] -> [N, C*kh*kw, L]`; VJP `fold2d`.
    #[track_caller]
    pub fn unfold2d(
        &self,
        kernel: (usize, usize),
        params: Conv2dParams,
        pad_value: f64,
    ) -> Result<Var> {
        let value = self.value().unfold2d(kernel, params, pad_value)?;
        let hw = (self.shape()[2], self.shape()[3]);
        Var::record("unfold2d", value, &[self], false, move |c| {
            Ok(smallvec![Some(c.grad.fold2d(hw, kernel, params)?)])
        })
    }

    /// col2im (sums overlapping taps): `[N, C*kh*kw, L] -> [N, C, H, W]`; VJP `unfold2d`.
    #[track_caller]
    pub fn fold2d(
        &self,
        output_hw: (usize, usize),
        kernel: (usize, usize),
        params: Conv2dParams,
    ) -> Result<Var> {
        let value = self.value().fold2d(output_hw, kernel, params)?;
        Var::record("fold2d", value, &[self], false, move |c| {
            Ok(smallvec![Some(c.grad.unfold2d(kernel, params, 0.0)?)])
        })
    }

    /// 2-D convolution: input `[N, C, H, W]`, weight `[O, C, kh, kw]`, optional bias `[O]`.
    #[track_caller]
    pub fn conv2d(&self, weight: &Var, bias: Option<&Var>, params: Conv2dParams) -> Result<Var> {
        let (xs, ws) = (self.shape(), weight.shape());
        if xs.len() != 4 || ws.len() != 4 || xs[1] != ws[1] {
            return Err(TensorError::ShapeMismatch {
                op: "conv2d",
                lhs: xs.into(),
                rhs: ws.into(),
                reason: "expected input [N, C, H, W] and weight [O, C, kh, kw] with equal C".into(),
            }
            .into());
        }
        let (n, o, kh, kw) = (xs[0], ws[0], ws[2], ws[3]);
        let (oh, ow) = params.output_size(xs[2], xs[3], (kh, kw)).ok_or_else(|| {
            TensorError::ShapeMismatch {
                op: "conv2d",
                lhs: xs.into(),
                rhs: ws.into(),
                reason: format!("kernel does not fit the padded input with {params:?}"),
            }
        })?;
        if let Some(b) = bias {
            if b.shape() != [o] {
                return Err(TensorError::ShapeMismatch {
                    op: "conv2d",
                    lhs: ws.into(),
                    rhs: b.shape().into(),
                    reason: format!("bias must have shape [{o}]"),
                }
                .into());
            }
        }
        let cols = self.unfold2d((kh, kw), params, 0.0)?;
        let w2 = weight.reshape(&[o, ws[1] * kh * kw])?;
        let out = w2.matmul(&cols)?.reshape(&[n, o, oh, ow])?;
        match bias {
            Some(b) => out.add(&b.reshape(&[o, 1, 1])?),
            None => Ok(out),
        }
    }

    #[track_caller]
    fn pool2d(
        &self,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
        is_max: bool,
    ) -> Result<Var> {
        let op = if is_max { "max_pool2d" } else { "avg_pool2d" };
        let s = self.shape();
        if s.len() != 4 {
            return Err(TensorError::BadShape {
                op,
                shape: s.into(),
                reason: "expected [N, C, H, W]".into(),
            }
            .into());
        }
        if padding.0 * 2 > kernel.0 || padding.1 * 2 > kernel.1 {
            // Same rule (and message source) as the tensor op.
            if is_max {
                self.value().max_pool2d(kernel, stride, padding)?;
            } else {
                self.value().avg_pool2d(kernel, stride, padding)?;
            }
        }
        let params = Conv2dParams {
            stride,
            padding,
            dilation: (1, 1),
        };
        let (n, c) = (s[0], s[1]);
        let (oh, ow) =
            params
                .output_size(s[2], s[3], kernel)
                .ok_or_else(|| TensorError::BadShape {
                    op,
                    shape: s.into(),
                    reason: format!("kernel {kernel:?} does not fit"),
                })?;
        let flat = self.reshape(&[n * c, 1, s[2], s[3]])?;
        let cols = flat.unfold2d(kernel, params, if is_max { f64::NEG_INFINITY } else { 0.0 })?;
        let r = if is_max {
            cols.max(&[1], false)?
        } else {
            cols.mean(&[1], false)?
        };
        r.reshape(&[n, c, oh, ow])
    }

    /// 2-D max pooling (ties share the gradient equally).
    #[track_caller]
    pub fn max_pool2d(
        &self,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
    ) -> Result<Var> {
        self.pool2d(kernel, stride, padding, true)
    }

    /// 2-D average pooling (`count_include_pad = true`).
    #[track_caller]
    pub fn avg_pool2d(
        &self,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
    ) -> Result<Var> {
        self.pool2d(kernel, stride, padding, false)
    }
}
