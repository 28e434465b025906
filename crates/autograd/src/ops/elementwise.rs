//! Differentiable elementwise ops: unary, binary (with broadcasting), scalar.
//!
//! Each VJP is written with `Var` ops, so it can be recorded and
//! differentiated again. Conventions at non-differentiable points follow
//! PyTorch: `relu'(0) = 0`, `abs'(0) = 0`, `sign' = 0`, `clamp` passes the
//! gradient where `min <= x <= max`, `maximum`/`minimum` split the gradient
//! equally between tied operands, `leaky_relu'(0) = slope`.

use crate::error::Result;
use crate::tape::InputGrads;
use crate::var::Var;
use heft_tensor::Tensor;
use smallvec::smallvec;

fn one(g: Var) -> Result<InputGrads> {
    Ok(smallvec![Some(g)])
}

/// The gradient of a one-input op computed by a fused tensor kernel (used
/// when the backward pass is not recorded, so no `Var` ops are needed).
fn fused(g: heft_tensor::Result<Tensor>) -> Result<InputGrads> {
    one(Var::constant(g?))
}

/// A float 0/1 tensor from a bool mask, in `dtype_of`'s dtype.
pub(crate) fn mask_as(mask: &Tensor, dtype_of: &Var) -> Var {
    Var::constant(mask.to_dtype(dtype_of.dtype()))
}

impl Var {
    /// `-x`.
    #[track_caller]
    pub fn neg(&self) -> Result<Var> {
        Var::record("neg", self.value().neg()?, &[self], false, |c| {
            one(c.grad.neg()?)
        })
    }

    /// `|x|`; gradient `sign(x)` (0 at 0).
    #[track_caller]
    pub fn abs(&self) -> Result<Var> {
        Var::record_lazy("abs", self.value().abs()?, &[self], false, || {
            let x = self.clone();
            move |c| one(c.grad.mul(&Var::constant(x.value().sign()?))?)
        })
    }

    /// `e^x`; gradient `e^x`.
    #[track_caller]
    pub fn exp(&self) -> Result<Var> {
        Var::record("exp", self.value().exp()?, &[self], true, |c| {
            one(c.grad.mul(c.output.as_ref().expect("saved"))?)
        })
    }

    /// `ln x`; gradient `1 / x`.
    #[track_caller]
    pub fn log(&self) -> Result<Var> {
        Var::record_lazy("log", self.value().log()?, &[self], false, || {
            let x = self.clone();
            move |c| one(c.grad.div(&x)?)
        })
    }

    /// `ln(1 + x)`; gradient `1 / (1 + x)`.
    #[track_caller]
    pub fn log1p(&self) -> Result<Var> {
        Var::record_lazy("log1p", self.value().log1p()?, &[self], false, || {
            let x = self.clone();
            move |c| one(c.grad.div(&x.add_scalar(1.0)?)?)
        })
    }

    /// `e^x - 1`; gradient `e^x`.
    #[track_caller]
    pub fn expm1(&self) -> Result<Var> {
        Var::record("expm1", self.value().expm1()?, &[self], true, |c| {
            one(c
                .grad
                .mul(&c.output.as_ref().expect("saved").add_scalar(1.0)?)?)
        })
    }

    /// `sqrt x`; gradient `1 / (2 sqrt x)`.
    #[track_caller]
    pub fn sqrt(&self) -> Result<Var> {
        Var::record("sqrt", self.value().sqrt()?, &[self], true, |c| {
            one(c
                .grad
                .div(&c.output.as_ref().expect("saved").mul_scalar(2.0)?)?)
        })
    }

    /// `1 / sqrt x`; gradient `-y^3 / 2`.
    #[track_caller]
    pub fn rsqrt(&self) -> Result<Var> {
        Var::record("rsqrt", self.value().rsqrt()?, &[self], true, |c| {
            let y = c.output.as_ref().expect("saved");
            one(c.grad.mul(&y.powf(3.0)?.mul_scalar(-0.5)?)?)
        })
    }

    /// `1 / x`; gradient `-y^2`.
    #[track_caller]
    pub fn recip(&self) -> Result<Var> {
        Var::record("recip", self.value().recip()?, &[self], true, |c| {
            let y = c.output.as_ref().expect("saved");
            one(c.grad.mul(&y.square()?)?.neg()?)
        })
    }

    /// `x^2`; gradient `2x`.
    #[track_caller]
    pub fn square(&self) -> Result<Var> {
        Var::record_lazy("square", self.value().square()?, &[self], false, || {
            let x = self.clone();
            move |c| one(c.grad.mul(&x.mul_scalar(2.0)?)?)
        })
    }

    /// `x^p`; gradient `p x^(p-1)`.
    #[track_caller]
    pub fn powf(&self, p: f64) -> Result<Var> {
        Var::record_lazy("powf", self.value().powf(p)?, &[self], false, || {
            let x = self.clone();
            move |c| {
                if p == 0.0 {
                    return Ok(smallvec![None]);
                }
                let d = if p == 1.0 {
                    x.ones_like()
                } else if p == 2.0 {
                    x.mul_scalar(2.0)?
                } else {
                    x.powf(p - 1.0)?.mul_scalar(p)?
                };
                one(c.grad.mul(&d)?)
            }
        })
    }

    /// `sin x`; gradient `cos x`.
    #[track_caller]
    pub fn sin(&self) -> Result<Var> {
        Var::record_lazy("sin", self.value().sin()?, &[self], false, || {
            let x = self.clone();
            move |c| one(c.grad.mul(&x.cos()?)?)
        })
    }

    /// `cos x`; gradient `-sin x`.
    #[track_caller]
    pub fn cos(&self) -> Result<Var> {
        Var::record_lazy("cos", self.value().cos()?, &[self], false, || {
            let x = self.clone();
            move |c| one(c.grad.mul(&x.sin()?)?.neg()?)
        })
    }

    /// `tanh x`; gradient `1 - y^2`.
    #[track_caller]
    pub fn tanh(&self) -> Result<Var> {
        Var::record("tanh", self.value().tanh()?, &[self], true, |c| {
            let y = c.output.as_ref().expect("saved");
            if !c.create_graph {
                return fused(c.grad.value().tanh_backward(y.value()));
            }
            one(c.grad.mul(&y.square()?.rsub_scalar(1.0)?)?)
        })
    }

    /// `erf x`; gradient `2 / sqrt(pi) e^(-x^2)`.
    #[track_caller]
    pub fn erf(&self) -> Result<Var> {
        Var::record_lazy("erf", self.value().erf()?, &[self], false, || {
            let x = self.clone();
            move |c| {
                let d = x
                    .square()?
                    .neg()?
                    .exp()?
                    .mul_scalar(std::f64::consts::FRAC_2_SQRT_PI)?;
                one(c.grad.mul(&d)?)
            }
        })
    }

    /// Logistic sigmoid; gradient `y (1 - y)`.
    #[track_caller]
    pub fn sigmoid(&self) -> Result<Var> {
        Var::record("sigmoid", self.value().sigmoid()?, &[self], true, |c| {
            let y = c.output.as_ref().expect("saved");
            if !c.create_graph {
                return fused(c.grad.value().sigmoid_backward(y.value()));
            }
            one(c.grad.mul(&y.mul(&y.rsub_scalar(1.0)?)?)?)
        })
    }

    /// `max(x, 0)`; gradient 1 where `x > 0`, else 0 (`relu'(0) = 0`).
    #[track_caller]
    pub fn relu(&self) -> Result<Var> {
        Var::record("relu", self.value().relu()?, &[self], true, |c| {
            let y = c.output.as_ref().expect("saved");
            if !c.create_graph {
                return fused(c.grad.value().relu_backward(y.value()));
            }
            one(c.grad.mul(&mask_as(&y.value().gt_scalar(0.0)?, y))?)
        })
    }

    /// `x` for `x > 0` else `slope x`.
    #[track_caller]
    pub fn leaky_relu(&self, slope: f64) -> Result<Var> {
        Var::record_lazy(
            "leaky_relu",
            self.value().leaky_relu(slope)?,
            &[self],
            false,
            || {
                let x = self.clone();
                move |c| {
                    if !c.create_graph {
                        return fused(c.grad.value().leaky_relu_backward(x.value(), slope));
                    }
                    let pos = x.value().gt_scalar(0.0)?.to_dtype(x.dtype());
                    // 1 where x > 0, slope elsewhere: slope + (1 - slope) * pos.
                    let d = pos.mul_scalar(1.0 - slope)?.add_scalar(slope)?;
                    one(c.grad.mul(&Var::constant(d))?)
                }
            },
        )
    }

    /// GELU, exact form `x Phi(x)`; gradient `Phi(x) + x phi(x)`.
    #[track_caller]
    pub fn gelu(&self) -> Result<Var> {
        Var::record_lazy("gelu", self.value().gelu()?, &[self], false, || {
            let x = self.clone();
            move |c| {
                if !c.create_graph {
                    return fused(c.grad.value().gelu_backward(x.value()));
                }
                let cdf = x
                    .mul_scalar(std::f64::consts::FRAC_1_SQRT_2)?
                    .erf()?
                    .add_scalar(1.0)?
                    .mul_scalar(0.5)?;
                let pdf = x
                    .square()?
                    .mul_scalar(-0.5)?
                    .exp()?
                    .mul_scalar(0.398_942_280_401_432_7)?; // 1/sqrt(2 pi)
                one(c.grad.mul(&cdf.add(&x.mul(&pdf)?)?)?)
            }
        })
    }

    /// GELU, tanh approximation.
    #[track_caller]
    pub fn gelu_tanh(&self) -> Result<Var> {
        Var::record_lazy(
            "gelu_tanh",
            self.value().gelu_tanh()?,
            &[self],
            false,
            || {
                let x = self.clone();
                move |c| {
                    if !c.create_graph {
                        return fused(c.grad.value().gelu_tanh_backward(x.value()));
                    }
                    const K: f64 = 0.797_884_560_802_865_4; // sqrt(2 / pi)
                    const A: f64 = 0.044715;
                    let x2 = x.square()?;
                    let u = x.mul(&x2.mul_scalar(A)?.add_scalar(1.0)?)?.mul_scalar(K)?;
                    let t = u.tanh()?;
                    let du = x2.mul_scalar(3.0 * A)?.add_scalar(1.0)?.mul_scalar(K)?;
                    // d/dx 0.5 x (1 + t) = 0.5 (1 + t) + 0.5 x (1 - t^2) du
                    let left = t.add_scalar(1.0)?.mul_scalar(0.5)?;
                    let right = x
                        .mul(&t.square()?.rsub_scalar(1.0)?)?
                        .mul(&du)?
                        .mul_scalar(0.5)?;
                    one(c.grad.mul(&left.add(&right)?)?)
                }
            },
        )
    }

    /// SiLU `x sigmoid(x)`; gradient `s (1 + x (1 - s))`.
    #[track_caller]
    pub fn silu(&self) -> Result<Var> {
        Var::record_lazy("silu", self.value().silu()?, &[self], false, || {
            let x = self.clone();
            move |c| {
                if !c.create_graph {
                    return fused(c.grad.value().silu_backward(x.value()));
                }
                let s = x.sigmoid()?;
                let d = s.mul(&x.mul(&s.rsub_scalar(1.0)?)?.add_scalar(1.0)?)?;
                one(c.grad.mul(&d)?)
            }
        })
    }

    /// `ln(1 + e^x)`; gradient `sigmoid(x)`.
    #[track_caller]
    pub fn softplus(&self) -> Result<Var> {
        Var::record_lazy("softplus", self.value().softplus()?, &[self], false, || {
            let x = self.clone();
            move |c| one(c.grad.mul(&x.sigmoid()?)?)
        })
    }

    /// -1, 0 or 1; gradient 0 everywhere.
    #[track_caller]
    pub fn sign(&self) -> Result<Var> {
        Ok(Var::constant(self.value().sign()?))
    }

    /// Clamp into `[min, max]`; gradient 1 where `min <= x <= max`, else 0.
    #[track_caller]
    pub fn clamp(&self, min: f64, max: f64) -> Result<Var> {
        Var::record_lazy(
            "clamp",
            self.value().clamp(min, max)?,
            &[self],
            false,
            || {
                let x = self.clone();
                move |c| {
                    if !c.create_graph {
                        return fused(c.grad.value().clamp_backward(x.value(), min, max));
                    }
                    let inside = x
                        .value()
                        .ge_scalar(min)?
                        .to_dtype(x.dtype())
                        .mul(&x.value().le_scalar(max)?.to_dtype(x.dtype()))?;
                    one(c.grad.mul(&Var::constant(inside))?)
                }
            },
        )
    }

    /// Ones with this var's shape and dtype, as a constant.
    pub fn ones_like(&self) -> Var {
        Var::constant(self.value().ones_like())
    }

    /// Zeros with this var's shape and dtype, as a constant.
    pub fn zeros_like(&self) -> Var {
        Var::constant(self.value().zeros_like())
    }

    // ----- binary -----------------------------------------------------

    /// `a + b` (broadcasting).
    #[track_caller]
    pub fn add(&self, other: &Var) -> Result<Var> {
        Var::record(
            "add",
            self.value().add(other.value())?,
            &[self, other],
            false,
            |c| {
                Ok(smallvec![
                    c.needs_grad(0).then(|| c.grad.clone()),
                    c.needs_grad(1).then(|| c.grad.clone())
                ])
            },
        )
    }

    /// `a - b` (broadcasting).
    #[track_caller]
    pub fn sub(&self, other: &Var) -> Result<Var> {
        Var::record(
            "sub",
            self.value().sub(other.value())?,
            &[self, other],
            false,
            |c| {
                Ok(smallvec![
                    c.needs_grad(0).then(|| c.grad.clone()),
                    if c.needs_grad(1) {
                        Some(c.grad.neg()?)
                    } else {
                        None
                    }
                ])
            },
        )
    }

    /// `a * b` (broadcasting).
    #[track_caller]
    pub fn mul(&self, other: &Var) -> Result<Var> {
        Var::record_lazy(
            "mul",
            self.value().mul(other.value())?,
            &[self, other],
            false,
            || {
                // Keep only what the VJP reads: `b` for `a`'s gradient and
                // `a` for `b`'s, so a constant operand's partner is not held.
                let a = other.is_tracked().then(|| self.clone());
                let b = self.is_tracked().then(|| other.clone());
                move |c| {
                    // Unrecorded backward: multiply the tensors directly
                    // (the `Var` op would only find that it must not record).
                    let times = |p: &Var| -> Result<Var> {
                        if c.create_graph {
                            c.grad.mul(p)
                        } else {
                            Ok(Var::constant(c.grad.value().mul(p.value())?))
                        }
                    };
                    Ok(smallvec![
                        match &b {
                            Some(b) => Some(times(b)?),
                            None => None,
                        },
                        match &a {
                            Some(a) => Some(times(a)?),
                            None => None,
                        }
                    ])
                }
            },
        )
    }

    /// `a / b` (broadcasting).
    #[track_caller]
    pub fn div(&self, other: &Var) -> Result<Var> {
        let (a, b) = (self.clone(), other.clone());
        let (ta, tb) = (self.is_tracked(), other.is_tracked());
        Var::record(
            "div",
            self.value().div(other.value())?,
            &[self, other],
            false,
            move |c| {
                let ga = c.grad.div(&b)?;
                let gb = if tb {
                    Some(ga.mul(&a)?.div(&b)?.neg()?)
                } else {
                    None
                };
                Ok(smallvec![if ta { Some(ga) } else { None }, gb])
            },
        )
    }

    /// `a ^ b` (broadcasting). The gradient with respect to `b` is
    /// `a^b ln a`, taken as 0 where `a <= 0` (as PyTorch does for `a = 0`).
    #[track_caller]
    pub fn pow(&self, other: &Var) -> Result<Var> {
        let (a, b) = (self.clone(), other.clone());
        let tb = other.is_tracked();
        Var::record(
            "pow",
            self.value().pow(other.value())?,
            &[self, other],
            true,
            move |c| {
                let y = c.output.as_ref().expect("saved");
                let ga = c.grad.mul(&b)?.mul(&a.pow(&b.add_scalar(-1.0)?)?)?;
                let gb = if tb {
                    let pos = a.value().gt_scalar(0.0)?;
                    let safe_a = Var::where_(&pos, &a, &a.ones_like())?;
                    Some(
                        c.grad
                            .mul(y)?
                            .mul(&safe_a.log()?)?
                            .mul(&mask_as(&pos, &a))?,
                    )
                } else {
                    None
                };
                Ok(smallvec![Some(ga), gb])
            },
        )
    }

    #[track_caller]
    fn extremum2(&self, other: &Var, is_max: bool) -> Result<Var> {
        let op = if is_max { "maximum" } else { "minimum" };
        let value = if is_max {
            self.value().maximum(other.value())?
        } else {
            self.value().minimum(other.value())?
        };
        Var::record_lazy(op, value, &[self, other], false, || {
            let (a, b) = (self.clone(), other.clone());
            move |c| {
                // Weight of a: 1 where a wins, 1/2 on ties, 0 where b wins.
                let wins = if is_max {
                    a.value().gt(b.value())?
                } else {
                    a.value().lt(b.value())?
                };
                let ties = a.value().eq(b.value())?;
                let wa = wins
                    .to_dtype(a.dtype())
                    .add(&ties.to_dtype(a.dtype()).mul_scalar(0.5)?)?;
                let wb = wa.rsub_scalar(1.0)?;
                Ok(smallvec![
                    Some(c.grad.mul(&Var::constant(wa))?),
                    Some(c.grad.mul(&Var::constant(wb))?)
                ])
            }
        })
    }

    /// Elementwise maximum (ties split the gradient equally).
    #[track_caller]
    pub fn maximum(&self, other: &Var) -> Result<Var> {
        self.extremum2(other, true)
    }

    /// Elementwise minimum (ties split the gradient equally).
    #[track_caller]
    pub fn minimum(&self, other: &Var) -> Result<Var> {
        self.extremum2(other, false)
    }

    /// `mask ? a : b` with a constant bool mask; all three broadcast.
    #[track_caller]
    pub fn where_(mask: &Tensor, a: &Var, b: &Var) -> Result<Var> {
        let m = mask.clone();
        Var::record(
            "where_",
            Tensor::where_(mask, a.value(), b.value())?,
            &[a, b],
            false,
            move |c| {
                let z = c.grad.zeros_like();
                Ok(smallvec![
                    Some(Var::where_(&m, c.grad, &z)?),
                    Some(Var::where_(&m, &z, c.grad)?)
                ])
            },
        )
    }

    /// Replace elements where `mask` is true by `value`; no gradient flows there.
    #[track_caller]
    pub fn masked_fill(&self, mask: &Tensor, value: f64) -> Result<Var> {
        let m = mask.clone();
        Var::record(
            "masked_fill",
            self.value().masked_fill(mask, value)?,
            &[self],
            false,
            move |c| one(c.grad.masked_fill(&m, 0.0)?),
        )
    }
}

macro_rules! scalar_ops {
    ($( $(#[$doc:meta])* $name:ident => |$g:ident, $s:ident| $vjp:expr; )*) => {
        impl Var {
            $(
                $(#[$doc])*
                #[track_caller]
                pub fn $name(&self, value: f64) -> Result<Var> {
                    Var::record_scalar(stringify!($name), self.value().$name(value)?, &[self], false, value, |c, $s| {
                        let $g = c.grad;
                        one($vjp)
                    })
                }
            )*
        }
    };
}

scalar_ops! {
    /// `x + s`.
    add_scalar => |g, _s| g.clone();
    /// `x - s`.
    sub_scalar => |g, _s| g.clone();
    /// `s - x`.
    rsub_scalar => |g, _s| g.neg()?;
    /// `x * s`.
    mul_scalar => |g, s| g.mul_scalar(s)?;
    /// `x / s`.
    div_scalar => |g, s| g.div_scalar(s)?;
}

impl Var {
    /// `max(x, s)` for a scalar `s`; gradient 1 where `x > s`, 1/2 on ties, else 0
    /// (the same tie rule as [`maximum`](Var::maximum)).
    #[track_caller]
    pub fn maximum_scalar(&self, value: f64) -> Result<Var> {
        self.maximum(&Var::constant(Tensor::full(&[], value, self.dtype())))
    }

    /// `min(x, s)` for a scalar `s`; gradient 1 where `x < s`, 1/2 on ties, else 0.
    #[track_caller]
    pub fn minimum_scalar(&self, value: f64) -> Result<Var> {
        self.minimum(&Var::constant(Tensor::full(&[], value, self.dtype())))
    }
}

impl Var {
    /// `s / x`; gradient `-s / x^2`.
    #[track_caller]
    pub fn rdiv_scalar(&self, value: f64) -> Result<Var> {
        Var::record_lazy(
            "rdiv_scalar",
            self.value().rdiv_scalar(value)?,
            &[self],
            false,
            || {
                let x = self.clone();
                move |c| one(c.grad.mul(&x.square()?.rdiv_scalar(-value)?)?)
            },
        )
    }
}
