//! Differentiable ops on [`Var`](crate::Var), one file per family.

pub mod conv;
pub mod elementwise;
pub mod index;
pub mod loss;
pub mod matmul;
pub mod reduce;
pub mod shape;
