//! [`Conv2d`], [`MaxPool2d`], [`AvgPool2d`].

use crate::ctx::Ctx;
use crate::error::{NnError, Result};
use crate::init::Init;
use crate::module::Module;
use crate::params::{ParamId, ParamKind, ParamStore};
use heft_autograd::Var;
use heft_tensor::{Conv2dParams, DType};
use rand::Rng;

/// 2-D convolution over NCHW input with OIHW weights (groups = 1), PyTorch's default init.
#[derive(Clone, Debug)]
pub struct Conv2d {
    /// Weight `[out, in, kh, kw]`.
    pub weight: ParamId,
    /// Bias `[out]`.
    pub bias: Option<ParamId>,
    /// Stride, padding, dilation.
    pub params: Conv2dParams,
}

impl Conv2d {
    /// A convolution named `{name}.weight` / `{name}.bias`.
    pub fn new<R: Rng + ?Sized>(
        store: &mut ParamStore,
        name: &str,
        in_channels: usize,
        out_channels: usize,
        kernel: (usize, usize),
        params: Conv2dParams,
        rng: &mut R,
    ) -> Result<Self> {
        if in_channels == 0 || out_channels == 0 || kernel.0 == 0 || kernel.1 == 0 {
            return Err(NnError::Config {
                layer: "Conv2d",
                msg: "channels and kernel sizes must be positive".into(),
            });
        }
        let w = Init::TorchDefaultWeight.tensor(
            &[out_channels, in_channels, kernel.0, kernel.1],
            DType::F32,
            rng,
        )?;
        let weight = store.add(&format!("{name}.weight"), w, ParamKind::Weight)?;
        let fan_in = in_channels * kernel.0 * kernel.1;
        let b = Init::TorchDefaultBias(fan_in).tensor(&[out_channels], DType::F32, rng)?;
        let bias = Some(store.add(&format!("{name}.bias"), b, ParamKind::Bias)?);
        Ok(Conv2d {
            weight,
            bias,
            params,
        })
    }
}

impl Module for Conv2d {
    fn forward(&self, ctx: &Ctx<'_>, x: &Var) -> Result<Var> {
        let b = self.bias.map(|b| ctx.param(b));
        Ok(x.conv2d(&ctx.param(self.weight), b.as_ref(), self.params)?)
    }
}

/// 2-D max pooling.
#[derive(Clone, Copy, Debug)]
pub struct MaxPool2d {
    /// Window.
    pub kernel: (usize, usize),
    /// Step.
    pub stride: (usize, usize),
    /// Implicit -inf padding.
    pub padding: (usize, usize),
}

impl Module for MaxPool2d {
    fn forward(&self, _ctx: &Ctx<'_>, x: &Var) -> Result<Var> {
        Ok(x.max_pool2d(self.kernel, self.stride, self.padding)?)
    }
}

/// 2-D average pooling (`count_include_pad = true`).
#[derive(Clone, Copy, Debug)]
pub struct AvgPool2d {
    /// Window.
    pub kernel: (usize, usize),
    /// Step.
    pub stride: (usize, usize),
    /// Implicit zero padding.
    pub padding: (usize, usize),
}

impl Module for AvgPool2d {
    fn forward(&self, _ctx: &Ctx<'_>, x: &Var) -> Result<Var> {
        Ok(x.avg_pool2d(self.kernel, self.stride, self.padding)?)
    }
}
