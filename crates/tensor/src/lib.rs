//! # heft-tensor
//!
//! The tensor core of heft: reference-counted storage, strided layouts
//! (views never copy), dtypes, and every forward op on CPU. It knows nothing
//! of gradients; `heft-autograd` mirrors each op here as a differentiable
//! method.
//!
//! ```
//! use heft_tensor::{DType, Tensor};
//!
//! # fn main() -> Result<(), heft_tensor::TensorError> {
//! let x = Tensor::arange(0.0, 6.0, 1.0, DType::F32)?.reshape(&[2, 3])?;
//! let w = Tensor::ones(&[3, 4], DType::F32);
//! let b = Tensor::from_vec(vec![0.5f32, -0.5, 0.0, 1.0], &[4])?;
//! // y = x w + b, with b broadcast over the rows.
//! let y = x.matmul(&w)?.add(&b)?;
//! assert_eq!(y.shape(), &[2, 4]);
//! assert_eq!(y.to_vec::<f32>()?, vec![3.5, 2.5, 3.0, 4.0, 12.5, 11.5, 12.0, 13.0]);
//! // Views share storage: a transpose is a new layout, not a copy.
//! let xt = x.t()?;
//! assert!(xt.same_storage(&x) && !xt.is_contiguous());
//! // Errors name the op and both shapes.
//! assert_eq!(
//!     x.matmul(&x).unwrap_err().to_string(),
//!     "matmul: lhs [2, 3] and rhs [2, 3]: inner dimensions 3 and 2 differ"
//! );
//! # Ok(())
//! # }
//! ```
//!
//! ## Dtypes
//! `f32` and `f64` for every op; `f16`/`bf16` are storage dtypes
//! (convert with [`Tensor::to_dtype`]); `i64` is the index and label dtype;
//! `bool` is the mask dtype of comparisons. A dtype mismatch is an error,
//! never a silent cast.
//!
//! ## Threads and determinism
//! Large elementwise ops and reductions are split over the current rayon
//! pool above a size threshold ([`PAR_THRESHOLD`] elements), with the
//! calling thread taking part rather than waiting for the pool (even when
//! it is outside it). Reductions use a fixed chunking, so results are
//! bit-identical whatever the number of threads.

pub mod display;
pub mod dtype;
pub mod error;
pub mod kernels;
pub mod layout;
pub mod ops;
pub mod random;
pub mod storage;
pub(crate) mod strided;
pub mod tensor;

pub use dtype::{DType, Element, Float};
pub use error::{Dims, Result, TensorError};
pub use layout::{broadcast_shapes, same_dims, Layout, Shape};
pub use ops::conv::Conv2dParams;
pub use ops::reduce::sum_to_shape;
pub use storage::Storage;
pub use strided::PAR_THRESHOLD;
pub use tensor::Tensor;
