//! Differentiable indexing and joining: narrow, slice, index_select,
//! index_add, gather, scatter_add, cat, stack, split, chunk, pad.
//!
//! The VJPs pair up: `index_select` <-> `index_add`, `gather` <->
//! `scatter_add`, `narrow` <-> `pad`, so every gradient is itself
//! differentiable.

use crate::error::Result;
use crate::tape::InputGrads;
use crate::var::Var;
use heft_tensor::layout::normalize_axis;
use heft_tensor::{DType, Tensor};
use smallvec::smallvec;

impl Var {
    /// `len` elements of `axis` from `start` (a view); VJP pads with zeros.
    #[track_caller]
    pub fn narrow(&self, axis: isize, start: usize, len: usize) -> Result<Var> {
        let value = self.value().narrow(axis, start, len)?;
        let ax = normalize_axis("narrow", axis, self.shape())?;
        let d = self.shape()[ax];
        let nd = self.ndim();
        Var::record("narrow", value, &[self], false, move |c| {
            let mut pads = vec![(0usize, 0usize); nd];
            pads[ax] = (start, d - start - len);
            Ok(smallvec![Some(c.grad.pad(&pads, 0.0)?)])
        })
    }

    /// Elements `start..end` with `step` along `axis` (a view); VJP scatters into zeros.
    #[track_caller]
    pub fn slice(&self, axis: isize, start: usize, end: usize, step: usize) -> Result<Var> {
        let value = self.value().slice(axis, start, end, step)?;
        let ax = normalize_axis("slice", axis, self.shape())?;
        let n = value.shape()[ax];
        let idx = Tensor::from_vec(
            (0..n)
                .map(|i| (start + i * step) as i64)
                .collect::<Vec<_>>(),
            &[n],
        )?;
        let zeros = self.value().zeros_like();
        Var::record("slice", value, &[self], false, move |c| {
            Ok(smallvec![Some(Var::constant(zeros.clone()).index_add(
                ax as isize,
                &idx,
                c.grad
            )?)])
        })
    }

    /// Constant padding; VJP narrows the gradient back.
    #[track_caller]
    pub fn pad(&self, pads: &[(usize, usize)], value: f64) -> Result<Var> {
        let out = self.value().pad(pads, value)?;
        let pads = pads.to_vec();
        let shape = self.shape().to_vec();
        Var::record("pad", out, &[self], false, move |c| {
            let mut g = c.grad.clone();
            for (ax, (&(before, _), &d)) in pads.iter().zip(&shape).enumerate() {
                if g.shape()[ax] != d {
                    g = g.narrow(ax as isize, before, d)?;
                }
            }
            Ok(smallvec![Some(g)])
        })
    }

    /// Rows (or slices along `axis`) picked by i64 `indices`; VJP `index_add` into zeros.
    #[track_caller]
    pub fn index_select(&self, axis: isize, indices: &Tensor) -> Result<Var> {
        let value = self.value().index_select(axis, indices)?;
        let idx = indices.clone();
        let zeros_shape = self.shape().to_vec();
        let dtype = self.dtype();
        Var::record("index_select", value, &[self], false, move |c| {
            let z = Var::constant(Tensor::zeros(&zeros_shape, dtype));
            Ok(smallvec![Some(z.index_add(axis, &idx, c.grad)?)])
        })
    }

    /// `self` with `src` slices added at `indices` along `axis`.
    #[track_caller]
    pub fn index_add(&self, axis: isize, indices: &Tensor, src: &Var) -> Result<Var> {
        let value = self.value().index_add(axis, indices, src.value())?;
        let idx = indices.clone();
        Var::record("index_add", value, &[self, src], false, move |c| {
            Ok(smallvec![
                Some(c.grad.clone()),
                Some(c.grad.index_select(axis, &idx)?)
            ])
        })
    }

    /// PyTorch `gather`; VJP `scatter_add` into zeros.
    #[track_caller]
    pub fn gather(&self, axis: isize, index: &Tensor) -> Result<Var> {
        let value = self.value().gather(axis, index)?;
        let idx = index.clone();
        let shape = self.shape().to_vec();
        let dtype = self.dtype();
        Var::record("gather", value, &[self], false, move |c| {
            let z = Var::constant(Tensor::zeros(&shape, dtype));
            Ok(smallvec![Some(z.scatter_add(axis, &idx, c.grad)?)])
        })
    }

    /// PyTorch `scatter_add`: `self` plus `src` scattered at `index`; VJPs
    /// `g` and `gather(g)` (zero for `src` elements outside `index`'s shape).
    #[track_caller]
    pub fn scatter_add(&self, axis: isize, index: &Tensor, src: &Var) -> Result<Var> {
        let value = self.value().scatter_add(axis, index, src.value())?;
        let idx = index.clone();
        let src_shape = src.shape().to_vec();
        Var::record("scatter_add", value, &[self, src], false, move |c| {
            let mut gs = c.grad.gather(axis, &idx)?;
            if gs.shape() != src_shape.as_slice() {
                let pads: Vec<(usize, usize)> = gs
                    .shape()
                    .iter()
                    .zip(&src_shape)
                    .map(|(&a, &b)| (0, b - a))
                    .collect();
                gs = gs.pad(&pads, 0.0)?;
            }
            Ok(smallvec![Some(c.grad.clone()), Some(gs)])
        })
    }

    /// Concatenate along `axis`; VJP narrows the gradient into pieces.
    #[track_caller]
    pub fn cat(vars: &[&Var], axis: isize) -> Result<Var> {
        let values: Vec<&Tensor> = vars.iter().map(|v| v.value()).collect();
        let out = Tensor::cat(&values, axis)?;
        let ax = normalize_axis("cat", axis, out.shape())?;
        let sizes: Vec<usize> = vars.iter().map(|v| v.shape()[ax]).collect();
        Var::record("cat", out, vars, false, move |c| {
            let mut grads = InputGrads::new();
            let mut start = 0;
            for &s in &sizes {
                grads.push(Some(c.grad.narrow(ax as isize, start, s)?));
                start += s;
            }
            Ok(grads)
        })
    }

    /// Stack along a new `axis`.
    #[track_caller]
    pub fn stack(vars: &[&Var], axis: isize) -> Result<Var> {
        if vars.is_empty() {
            // Let the tensor op produce the error.
            Tensor::stack(&[], axis)?;
        }
        let un: Vec<Var> = vars
            .iter()
            .map(|v| v.unsqueeze(axis))
            .collect::<Result<_>>()?;
        let refs: Vec<&Var> = un.iter().collect();
        Var::cat(&refs, axis)
    }

    /// Split into pieces of the given sizes along `axis` (views).
    #[track_caller]
    pub fn split(&self, sizes: &[usize], axis: isize) -> Result<Vec<Var>> {
        let parts = self.value().split(sizes, axis)?; // validates
        let mut out = Vec::with_capacity(parts.len());
        let mut start = 0;
        for (&s, _) in sizes.iter().zip(&parts) {
            out.push(self.narrow(axis, start, s)?);
            start += s;
        }
        Ok(out)
    }

    /// Pieces of `size` along `axis`, the last possibly smaller (views).
    #[track_caller]
    pub fn split_size(&self, size: usize, axis: isize) -> Result<Vec<Var>> {
        let parts = self.value().split_size(size, axis)?;
        let ax = normalize_axis("split_size", axis, self.shape())?;
        let sizes: Vec<usize> = parts.iter().map(|p| p.shape()[ax]).collect();
        self.split(&sizes, axis)
    }

    /// `n` nearly equal pieces along `axis` (PyTorch `chunk`).
    #[track_caller]
    pub fn chunk(&self, n: usize, axis: isize) -> Result<Vec<Var>> {
        let parts = self.value().chunk(n, axis)?;
        let ax = normalize_axis("chunk", axis, self.shape())?;
        let sizes: Vec<usize> = parts.iter().map(|p| p.shape()[ax]).collect();
        self.split(&sizes, axis)
    }

    /// One-hot encoding of an i64 var's values as a constant of `dtype`.
    pub fn one_hot(&self, num_classes: usize, dtype: DType) -> Result<Var> {
        Ok(Var::constant(self.value().one_hot(num_classes, dtype)?))
    }
}
