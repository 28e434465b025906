//! heft-tensor (work in progress).
pub mod kernels;
