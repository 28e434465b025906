//! Differentiable ops on [`Var`](crate::Var), one file per family.

pub mod elementwise;
pub mod loss;
pub mod matmul;
pub mod reduce;
pub mod shape;
