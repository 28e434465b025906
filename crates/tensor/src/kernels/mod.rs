//! CPU kernels behind heft's tensor ops.
//!
//! The GEMM entry points here take strided matrix views ([`MatRef`], [`MatMut`])
//! so that transposed operands (`A^T B`, `A B^T`, what backprop needs) are read
//! in place, never copied. The fast paths (packed, cache-blocked, SIMD
//! microkernels chosen once at run time) live in [`gemm`]; a naive reference
//! is always compiled and used by the tests.

pub mod gemm;
pub(crate) mod join;
pub mod peak;
pub(crate) mod simd;
pub(crate) mod split;

pub use join::{join, threads};
pub use simd::vectorized;

pub use gemm::{
    for_each_chunk, gemm_f32, gemm_f32_new, gemm_f32_new_init, gemm_f32_with, gemm_f64,
    gemm_f64_new, gemm_f64_new_init, gemm_f64_with, gemm_reference, kernel_path, stop_lingering,
    supported_paths, KernelPath,
};

/// A read-only strided view of a `rows x cols` matrix inside a slice.
///
/// Element `(i, j)` lives at `data[offset + i * rs + j * cs]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a, T> {
    /// The backing slice (may be larger than the view).
    pub data: &'a [T],
    /// Index of element `(0, 0)` in `data`.
    pub offset: usize,
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// Distance in elements between consecutive rows (may be 0 for broadcast).
    pub rs: usize,
    /// Distance in elements between consecutive columns (may be 0 for broadcast).
    pub cs: usize,
}

/// A mutable strided view of a `rows x cols` matrix inside a slice.
///
/// Element `(i, j)` lives at `data[offset + i * rs + j * cs]`. Distinct
/// `(i, j)` must map to distinct elements (no zero strides when the
/// corresponding dimension is larger than one).
#[derive(Debug)]
pub struct MatMut<'a, T> {
    /// The backing slice (may be larger than the view).
    pub data: &'a mut [T],
    /// Index of element `(0, 0)` in `data`.
    pub offset: usize,
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// Distance in elements between consecutive rows.
    pub rs: usize,
    /// Distance in elements between consecutive columns.
    pub cs: usize,
}

impl<T> MatRef<'_, T> {
    /// Largest index touched by the view plus one, or 0 for an empty view.
    pub fn span(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            0
        } else {
            self.offset + (self.rows - 1) * self.rs + (self.cols - 1) * self.cs + 1
        }
    }

    /// True when the view lies inside its slice.
    pub fn in_bounds(&self) -> bool {
        self.span() <= self.data.len()
    }
}

impl<T> MatMut<'_, T> {
    /// Largest index touched by the view plus one, or 0 for an empty view.
    pub fn span(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            0
        } else {
            self.offset + (self.rows - 1) * self.rs + (self.cols - 1) * self.cs + 1
        }
    }

    /// True when the view lies inside its slice and distinct elements do not alias.
    ///
    /// An empty view (no rows or no columns) is always in bounds.
    pub fn in_bounds(&self) -> bool {
        let empty = self.rows == 0 || self.cols == 0;
        let alias = !empty && ((self.rows > 1 && self.rs == 0) || (self.cols > 1 && self.cs == 0));
        !alias && self.span() <= self.data.len()
    }
}
