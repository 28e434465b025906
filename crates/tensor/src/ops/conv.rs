//! 2-D convolution and pooling, built from `unfold2d` (im2col), `fold2d`
//! (col2im, its exact adjoint) and `matmul`.
//!
//! Layouts are PyTorch's: inputs NCHW, weights OIHW. The unfolded matrix is
//! `[N, C*kh*kw, L]` with row `c*kh*kw + i*kw + j` and column
//! `oy*ow + ox` (`L = oh*ow`), exactly like `torch.nn.functional.unfold`.

use crate::dtype::{Element, Float};
use crate::error::{Result, TensorError};
use crate::kernels::split::{collect_chunks, for_each_chunk_mut, Out};
use crate::layout::buffer_len;
use crate::strided::PAR_THRESHOLD;
use crate::tensor::float_dispatch;
use crate::Tensor;

/// Stride, zero-padding and dilation of a 2-D convolution, as `(height, width)` pairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dParams {
    /// Step between output positions.
    pub stride: (usize, usize),
    /// Implicit padding added on both sides of each spatial axis.
    pub padding: (usize, usize),
    /// Spacing between kernel taps.
    pub dilation: (usize, usize),
}

impl Default for Conv2dParams {
    /// Stride 1, no padding, dilation 1.
    fn default() -> Self {
        Conv2dParams {
            stride: (1, 1),
            padding: (0, 0),
            dilation: (1, 1),
        }
    }
}

fn out_dim(n: usize, k: usize, s: usize, p: usize, d: usize) -> Option<usize> {
    if k == 0 || s == 0 || d == 0 {
        return None;
    }
    let eff = d.checked_mul(k - 1)?.checked_add(1)?;
    let padded = n.checked_add(p.checked_mul(2)?)?;
    if eff > padded {
        return None;
    }
    Some((padded - eff) / s + 1)
}

impl Conv2dParams {
    /// The output `(oh, ow)` for an `h x w` input and a `kernel`, or `None`
    /// when the (dilated) kernel does not fit in the padded input or a
    /// kernel size, stride or dilation is zero.
    ///
    /// ```
    /// use heft_tensor::Conv2dParams;
    /// let p = Conv2dParams { stride: (2, 1), padding: (1, 0), dilation: (1, 2) };
    /// assert_eq!(p.output_size(5, 5, (3, 3)), Some((3, 1)));
    /// assert_eq!(p.output_size(5, 3, (3, 3)), None);
    /// ```
    pub fn output_size(
        &self,
        h: usize,
        w: usize,
        kernel: (usize, usize),
    ) -> Option<(usize, usize)> {
        Some((
            out_dim(h, kernel.0, self.stride.0, self.padding.0, self.dilation.0)?,
            out_dim(w, kernel.1, self.stride.1, self.padding.1, self.dilation.1)?,
        ))
    }
}

/// Check the geometry of a 2-D window op on an `[N, C, H, W]` shape; returns `(oh, ow)`.
fn check_geometry(
    op: &'static str,
    shape: &[usize],
    kernel: (usize, usize),
    p: &Conv2dParams,
) -> Result<(usize, usize)> {
    if p.stride.0 == 0 || p.stride.1 == 0 || p.dilation.0 == 0 || p.dilation.1 == 0 {
        return Err(TensorError::invalid(
            op,
            format!(
                "stride {:?} and dilation {:?} must be at least 1",
                p.stride, p.dilation
            ),
        ));
    }
    if kernel.0 == 0 || kernel.1 == 0 {
        return Err(TensorError::invalid(
            op,
            format!("kernel size {kernel:?} must be at least 1"),
        ));
    }
    let (h, w) = (shape[2], shape[3]);
    p.output_size(h, w, kernel).ok_or_else(|| {
        TensorError::shape(
            op,
            shape,
            format!(
                "kernel {kernel:?} with dilation {:?} is larger than the padded input ({}, {})",
                p.dilation,
                // Wide enough that huge paddings cannot overflow the message.
                h as u128 + 2 * p.padding.0 as u128,
                w as u128 + 2 * p.padding.1 as u128
            ),
        )
    })
}

fn check_rank4(op: &'static str, x: &Tensor) -> Result<()> {
    if x.ndim() != 4 {
        return Err(TensorError::shape(
            op,
            x.shape(),
            "expected a 4-D [N, C, H, W] tensor",
        ));
    }
    Ok(())
}

/// Output positions `lo..hi` along one axis whose input tap `o*s + t*d - p` lies in `0..n`.
#[inline]
fn valid_range(n: usize, o_len: usize, s: usize, p: usize, tap: usize) -> (usize, usize) {
    // ix = o*s + tap - p, with tap = t*d.
    let lo = if p > tap { (p - tap).div_ceil(s) } else { 0 };
    let hi = if n + p > tap {
        ((n + p - tap - 1) / s + 1).min(o_len)
    } else {
        0
    };
    (lo.min(hi), hi)
}

/// Geometry shared by unfold and fold.
#[derive(Clone, Copy)]
struct Geo {
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    oh: usize,
    ow: usize,
    p: Conv2dParams,
}

/// im2col of one `[H, W]` plane into its `[kh*kw, L]` block.
fn unfold_plane<T: Float>(x: &[T], out: &mut Out<'_, T>, g: Geo, pad: T) {
    let (sh, sw) = g.p.stride;
    let (ph, pw) = g.p.padding;
    let (dh, dw) = g.p.dilation;
    let pads = |k: usize| std::iter::repeat_n(pad, k);
    for i in 0..g.kh {
        let (ylo, yhi) = valid_range(g.h, g.oh, sh, ph, i * dh);
        for j in 0..g.kw {
            let (xlo, xhi) = valid_range(g.w, g.ow, sw, pw, j * dw);
            for oy in 0..g.oh {
                if oy < ylo || oy >= yhi || xlo >= xhi {
                    out.extend(pads(g.ow));
                    continue;
                }
                let iy = oy * sh + i * dh - ph;
                let src = &x[iy * g.w..(iy + 1) * g.w];
                let ix0 = xlo * sw + j * dw - pw;
                out.extend(pads(xlo));
                if sw == 1 {
                    out.extend(src[ix0..ix0 + (xhi - xlo)].iter().copied());
                } else {
                    out.extend((0..xhi - xlo).map(|k| src[ix0 + k * sw]));
                }
                out.extend(pads(g.ow - xhi));
            }
        }
    }
}

/// col2im of one `[kh*kw, L]` block into its `[H, W]` plane (accumulating).
fn fold_plane<T: Float>(cols: &[T], out: &mut [T], g: Geo) {
    let l = g.oh * g.ow;
    let (sh, sw) = g.p.stride;
    let (ph, pw) = g.p.padding;
    let (dh, dw) = g.p.dilation;
    for i in 0..g.kh {
        let (ylo, yhi) = valid_range(g.h, g.oh, sh, ph, i * dh);
        for j in 0..g.kw {
            let row = &cols[(i * g.kw + j) * l..(i * g.kw + j + 1) * l];
            let (xlo, xhi) = valid_range(g.w, g.ow, sw, pw, j * dw);
            if xlo >= xhi {
                continue;
            }
            for oy in ylo..yhi {
                let iy = oy * sh + i * dh - ph;
                let dst = &mut out[iy * g.w..(iy + 1) * g.w];
                let src = &row[oy * g.ow + xlo..oy * g.ow + xhi];
                let ix0 = xlo * sw + j * dw - pw;
                if sw == 1 {
                    for (y, &a) in dst[ix0..ix0 + src.len()].iter_mut().zip(src) {
                        *y += a;
                    }
                } else {
                    for (k, &a) in src.iter().enumerate() {
                        dst[ix0 + k * sw] += a;
                    }
                }
            }
        }
    }
}

impl Tensor {
    /// im2col, exactly like PyTorch `F.unfold`: `[N, C, H, W] -> [N, C*kh*kw, L]`.
    ///
    /// `L = oh*ow` (see [`Conv2dParams::output_size`]); row `c*kh*kw + i*kw + j`,
    /// column `oy*ow + ox` holds input `[c, oy*sh + i*dh - ph, ox*sw + j*dw - pw]`.
    /// Taps that fall outside the image read `pad_value` (0 for convolution,
    /// `-inf` for max pooling). Float dtypes only.
    ///
    /// ```
    /// use heft_tensor::{Conv2dParams, DType, Tensor};
    /// let x = Tensor::arange(0.0, 4.0, 1.0, DType::F32).unwrap().reshape(&[1, 1, 2, 2]).unwrap();
    /// let c = x.unfold2d((2, 2), Conv2dParams::default(), 0.0).unwrap();
    /// assert_eq!(c.shape(), &[1, 4, 1]);
    /// assert_eq!(c.to_vec::<f32>().unwrap(), vec![0.0, 1.0, 2.0, 3.0]);
    /// ```
    pub fn unfold2d(
        &self,
        kernel: (usize, usize),
        params: Conv2dParams,
        pad_value: f64,
    ) -> Result<Tensor> {
        let op = "unfold2d";
        check_rank4(op, self)?;
        self.float_dtype(op)?;
        let (oh, ow) = check_geometry(op, self.shape(), kernel, &params)?;
        let (n, c, h, w) = (
            self.shape()[0],
            self.shape()[1],
            self.shape()[2],
            self.shape()[3],
        );
        let g = Geo {
            h,
            w,
            kh: kernel.0,
            kw: kernel.1,
            oh,
            ow,
            p: params,
        };
        buffer_len(op, &[n, c, kernel.0, kernel.1, oh, ow], self.dtype())?;
        let k = kernel.0 * kernel.1;
        let block = k * oh * ow;
        let x = self.contiguous();
        float_dispatch!(op, self.dtype(), T => {
            let s = x.as_slice::<T>()?;
            let pad = T::from_f64(pad_value);
            let plane = h * w;
            // One plane's block per chunk, written once (no zero-fill).
            let total = n * c * block;
            let v: Vec<T> = collect_chunks(total, block, total >= PAR_THRESHOLD, |r, out| {
                let p = r.start / block.max(1);
                unfold_plane(&s[p * plane..(p + 1) * plane], out, g, pad)
            });
            Ok(Tensor::from_vec_unchecked(v, &[n, c * k, oh * ow]))
        })
    }

    /// col2im, the exact adjoint of [`unfold2d`](Tensor::unfold2d): `[N, C*kh*kw, L] -> [N, C, H, W]`.
    ///
    /// `output_hw = (H, W)` is the image size; `L` must equal `oh*ow` for it.
    /// Overlapping taps are summed (in a fixed order); taps that fall in the
    /// padding are dropped. Float dtypes only.
    ///
    /// ```
    /// use heft_tensor::{Conv2dParams, DType, Tensor};
    /// // Every 2x2 window of a 3x3 image, all ones: the centre is covered 4 times.
    /// let cols = Tensor::ones(&[1, 4, 4], DType::F64);
    /// let img = cols.fold2d((3, 3), (2, 2), Conv2dParams::default()).unwrap();
    /// assert_eq!(img.to_vec::<f64>().unwrap(), vec![1., 2., 1., 2., 4., 2., 1., 2., 1.]);
    /// ```
    pub fn fold2d(
        &self,
        output_hw: (usize, usize),
        kernel: (usize, usize),
        params: Conv2dParams,
    ) -> Result<Tensor> {
        let op = "fold2d";
        if self.ndim() != 3 {
            return Err(TensorError::shape(
                op,
                self.shape(),
                "expected a 3-D [N, C*kh*kw, L] tensor",
            ));
        }
        self.float_dtype(op)?;
        let (n, ck, l) = (self.shape()[0], self.shape()[1], self.shape()[2]);
        let img = [n, 1, output_hw.0, output_hw.1];
        let (oh, ow) = check_geometry(op, &img, kernel, &params)?;
        // Products that overflow cannot match the input's dims: an error below.
        let k = kernel.0.checked_mul(kernel.1).unwrap_or(0);
        let l_want = oh.checked_mul(ow);
        if k == 0 || ck % k != 0 || Some(l) != l_want {
            return Err(TensorError::shape(
                op,
                self.shape(),
                format!(
                    "expected [N, C*{}, {}] for kernel {kernel:?} and output size {output_hw:?}",
                    kernel.0 as u128 * kernel.1 as u128,
                    oh as u128 * ow as u128
                ),
            ));
        }
        let c = ck / k;
        let (h, w) = output_hw;
        buffer_len(op, &[n, c, h, w], self.dtype())?;
        let g = Geo {
            h,
            w,
            kh: kernel.0,
            kw: kernel.1,
            oh,
            ow,
            p: params,
        };
        let cols = self.contiguous();
        let block = k * l;
        float_dispatch!(op, self.dtype(), T => {
            let s = cols.as_slice::<T>()?;
            let plane = h * w;
            let mut v: Vec<T> = vec![T::ZERO; n * c * plane];
            if plane > 0 {
                if s.len() >= PAR_THRESHOLD {
                    for_each_chunk_mut(&mut v, plane, |p, out| {
                        fold_plane(&s[p * block..(p + 1) * block], out, g)
                    });
                } else {
                    for (p, out) in v.chunks_mut(plane).enumerate() {
                        fold_plane(&s[p * block..(p + 1) * block], out, g);
                    }
                }
            }
            Ok(Tensor::from_vec_unchecked(v, &[n, c, h, w]))
        })
    }

    /// 2-D cross-correlation (PyTorch `conv2d`, groups = 1): input `[N, C, H, W]`,
    /// weight `[O, C, kh, kw]`, optional bias `[O]`, output `[N, O, oh, ow]`.
    ///
    /// Computed as `weight.reshape([O, C*kh*kw]).matmul(x.unfold2d(..))`
    /// (a broadcast batch matmul), reshaped to `[N, O, oh, ow]`, plus the bias
    /// as `[O, 1, 1]`.
    ///
    /// ```
    /// use heft_tensor::{Conv2dParams, DType, Tensor};
    /// let x = Tensor::ones(&[1, 3, 8, 8], DType::F32);
    /// let w = Tensor::ones(&[4, 2, 3, 3], DType::F32);
    /// assert_eq!(
    ///     x.conv2d(&w, None, Conv2dParams::default()).unwrap_err().to_string(),
    ///     "conv2d: lhs [1, 3, 8, 8] and rhs [4, 2, 3, 3]: input has 3 channels but the weight expects 2"
    /// );
    /// ```
    pub fn conv2d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        params: Conv2dParams,
    ) -> Result<Tensor> {
        let op = "conv2d";
        if self.ndim() != 4 || weight.ndim() != 4 {
            return Err(TensorError::shapes(
                op,
                self.shape(),
                weight.shape(),
                "expected a 4-D [N, C, H, W] input and a 4-D [O, C, kh, kw] weight",
            ));
        }
        self.same_dtype(weight, op)?;
        self.float_dtype(op)?;
        let (o, cw, kh, kw) = (
            weight.shape()[0],
            weight.shape()[1],
            weight.shape()[2],
            weight.shape()[3],
        );
        let (n, c) = (self.shape()[0], self.shape()[1]);
        if c != cw {
            return Err(TensorError::shapes(
                op,
                self.shape(),
                weight.shape(),
                format!("input has {c} channels but the weight expects {cw}"),
            ));
        }
        if let Some(b) = bias {
            self.same_dtype(b, op)?;
            if b.shape() != [o] {
                return Err(TensorError::shapes(
                    op,
                    weight.shape(),
                    b.shape(),
                    format!("the bias must have shape [{o}] (one per output channel)"),
                ));
            }
        }
        let (oh, ow) = check_geometry(op, self.shape(), (kh, kw), &params)?;
        let cols = self.unfold2d((kh, kw), params, 0.0)?;
        let w2 = weight.reshape(&[o, c * kh * kw])?;
        let y = w2.matmul(&cols)?.reshape(&[n, o, oh, ow])?;
        match bias {
            Some(b) => y.add(&b.reshape(&[o, 1, 1])?),
            None => Ok(y),
        }
    }

    /// 2-D max pooling over `[N, C, H, W]`; padded taps are `-inf` (never chosen).
    ///
    /// As in PyTorch, `padding` may be at most half the kernel on each axis.
    /// Computed as `unfold2d` with `pad_value = -inf` on the `[N*C, 1, H, W]`
    /// reshape, then a max over the taps. NaN propagates.
    pub fn max_pool2d(
        &self,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
    ) -> Result<Tensor> {
        self.pool2d("max_pool2d", kernel, stride, padding, true)
    }

    /// 2-D average pooling over `[N, C, H, W]` with `count_include_pad = true`
    /// (PyTorch's default): every window divides by `kh*kw`, padded taps
    /// counting as zeros.
    ///
    /// As in PyTorch, `padding` may be at most half the kernel on each axis.
    pub fn avg_pool2d(
        &self,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
    ) -> Result<Tensor> {
        self.pool2d("avg_pool2d", kernel, stride, padding, false)
    }

    fn pool2d(
        &self,
        op: &'static str,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
        is_max: bool,
    ) -> Result<Tensor> {
        check_rank4(op, self)?;
        self.float_dtype(op)?;
        let params = Conv2dParams {
            stride,
            padding,
            dilation: (1, 1),
        };
        let (oh, ow) = check_geometry(op, self.shape(), kernel, &params)?;
        if padding.0 > kernel.0 / 2 || padding.1 > kernel.1 / 2 {
            return Err(TensorError::invalid(
                op,
                format!("padding {padding:?} must be at most half of the kernel {kernel:?}"),
            ));
        }
        let (n, c, h, w) = (
            self.shape()[0],
            self.shape()[1],
            self.shape()[2],
            self.shape()[3],
        );
        let x = self.reshape(&[n * c, 1, h, w])?;
        let y = if is_max {
            x.unfold2d(kernel, params, f64::NEG_INFINITY)?
                .max(&[1], false)?
        } else {
            x.unfold2d(kernel, params, 0.0)?.mean(&[1], false)?
        };
        y.reshape(&[n, c, oh, ow])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DType;

    fn f(v: Vec<f64>, s: &[usize]) -> Tensor {
        Tensor::from_vec(v, s).unwrap()
    }

    #[test]
    fn huge_padding_is_an_error_not_an_overflow() {
        // Found by fuzzing: the error message computed `h + 2 * padding` and overflowed.
        let x = Tensor::ones(&[1, 1, 2, 2], DType::F32);
        let p = Conv2dParams {
            padding: (usize::MAX, 0),
            ..Default::default()
        };
        let e = x.unfold2d((3, 3), p, 0.0).unwrap_err().to_string();
        assert!(
            e.contains(&format!("({}, 2)", 2 + 2 * usize::MAX as u128)),
            "{e}"
        );
    }

    #[test]
    fn unfold_with_padding_by_hand() {
        // x = [[1, 2], [3, 4]], 2x2 kernel, padding 1, stride 1 -> 3x3 windows.
        let x = f(vec![1., 2., 3., 4.], &[1, 1, 2, 2]);
        let p = Conv2dParams {
            padding: (1, 1),
            ..Default::default()
        };
        let c = x.unfold2d((2, 2), p, 0.0).unwrap();
        assert_eq!(c.shape(), &[1, 4, 9]);
        #[rustfmt::skip]
        let want = vec![
            0., 0., 0., 0., 1., 2., 0., 3., 4., // tap (0, 0)
            0., 0., 0., 1., 2., 0., 3., 4., 0., // tap (0, 1)
            0., 1., 2., 0., 3., 4., 0., 0., 0., // tap (1, 0)
            1., 2., 0., 3., 4., 0., 0., 0., 0., // tap (1, 1)
        ];
        assert_eq!(c.to_vec::<f64>().unwrap(), want);
    }

    #[test]
    fn conv2d_by_hand() {
        // 3x3 image, 2x2 kernel [[1, 0], [0, -1]] plus bias 10: x[i][j] - x[i+1][j+1] + 10.
        let x = f((1..=9).map(f64::from).collect(), &[1, 1, 3, 3]);
        let w = f(vec![1., 0., 0., -1.], &[1, 1, 2, 2]);
        let b = f(vec![10.], &[1]);
        let y = x.conv2d(&w, Some(&b), Conv2dParams::default()).unwrap();
        assert_eq!(y.shape(), &[1, 1, 2, 2]);
        assert_eq!(y.to_vec::<f64>().unwrap(), vec![6., 6., 6., 6.]);
        // Stride 2 with dilation 2 on a 5x5 image picks the four corners of the 3x3 window.
        let x = f((0..25).map(f64::from).collect(), &[1, 1, 5, 5]);
        let w = f(vec![1., 1., 1., 1.], &[1, 1, 2, 2]);
        let p = Conv2dParams {
            stride: (2, 2),
            padding: (0, 0),
            dilation: (2, 2),
        };
        let y = x.conv2d(&w, None, p).unwrap();
        // Window at (0,0): 0 + 2 + 10 + 12 = 24; (0,2): 32; (2,0): 64; (2,2): 72.
        assert_eq!(y.to_vec::<f64>().unwrap(), vec![24., 32., 64., 72.]);
    }

    #[test]
    fn pools_by_hand() {
        #[rustfmt::skip]
        let x = f(vec![
            1., 5., 2., 0.,
            3., -1., 4., 8.,
            0., 0., 7., 6.,
            9., 1., 2., 3.,
        ], &[1, 1, 4, 4]);
        let m = x.max_pool2d((2, 2), (2, 2), (0, 0)).unwrap();
        assert_eq!(m.to_vec::<f64>().unwrap(), vec![5., 8., 9., 7.]);
        let a = x.avg_pool2d((2, 2), (2, 2), (0, 0)).unwrap();
        assert_eq!(a.to_vec::<f64>().unwrap(), vec![2., 3.5, 2.5, 4.5]);
        // Padding 1 with a 2x2 kernel, stride 2: corners see one real element;
        // average counts the padding (count_include_pad = true).
        let a = x.avg_pool2d((2, 2), (2, 2), (1, 1)).unwrap();
        assert_eq!(a.shape(), &[1, 1, 3, 3]);
        assert_eq!(a.get_f64(&[0, 0, 0, 0]).unwrap(), 0.25);
        assert_eq!(a.get_f64(&[0, 0, 2, 2]).unwrap(), 0.75);
        let m = x.max_pool2d((2, 2), (2, 2), (1, 1)).unwrap();
        assert_eq!(
            m.to_vec::<f64>().unwrap(),
            vec![1., 5., 0., 3., 7., 8., 9., 2., 3.]
        );
    }

    #[test]
    fn geometry_errors() {
        let x = Tensor::zeros(&[1, 1, 3, 3], DType::F32);
        let p = Conv2dParams {
            stride: (0, 1),
            ..Default::default()
        };
        assert!(x
            .unfold2d((2, 2), p, 0.0)
            .unwrap_err()
            .to_string()
            .contains("unfold2d"));
        let e = x
            .unfold2d((4, 2), Conv2dParams::default(), 0.0)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("unfold2d: shape [1, 1, 3, 3]: kernel (4, 2)"),
            "{e}"
        );
        assert!(x.max_pool2d((2, 2), (1, 1), (2, 0)).is_err());
    }
}
