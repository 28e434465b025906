//! Forward ops, one file per family. Each file adds methods to [`Tensor`](crate::Tensor).

pub mod binary;
pub mod conv;
pub mod fused;
pub mod index;
pub mod join;
pub mod matmul;
pub mod reduce;
pub mod unary;
