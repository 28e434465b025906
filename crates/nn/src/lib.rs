//! # heft-nn
//!
//! Build models programmatically: parameters (weights and biases as graph
//! leaves), initialisation, layers, losses, weight-health signals.
//!
//! ```
//! use heft_nn::{Ctx, Mode, Module, ParamStore, Sequential, layers::{Linear, Activation}, loss};
//! use heft_autograd::Tape;
//! use heft_tensor::{DType, Tensor};
//! use rand::SeedableRng;
//! # fn main() -> heft_nn::Result<()> {
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
//! let mut store = ParamStore::new();
//! let model = Sequential::new()
//!     .add(Linear::new(&mut store, "fc1", 4, 8, &mut rng)?)
//!     .add(Activation::Relu(None))
//!     .add(Linear::new(&mut store, "fc2", 8, 3, &mut rng)?);
//! assert_eq!(store.counts().weights, 4 * 8 + 8 * 3);
//! assert_eq!(store.counts().biases, 8 + 3);
//!
//! // One step: bind the parameters to a tape, run, differentiate.
//! let tape = Tape::new();
//! let ctx = Ctx::new(&store, &tape, Mode::Train);
//! let x = ctx.input(Tensor::ones(&[2, 4], DType::F32));
//! let targets = Tensor::from_vec(vec![0i64, 2], &[2])?;
//! let l = loss::cross_entropy(&model.forward(&ctx, &x)?, &targets)?;
//! let grads = ctx.backward(&l)?;
//! // A gradient for every weight and bias.
//! assert_eq!(grads.iter().count(), 4);
//! # Ok(())
//! # }
//! ```

pub mod ctx;
pub mod error;
pub mod health;
pub mod init;
pub mod io;
pub mod layers;
pub mod loss;
pub mod module;
pub mod params;

pub use ctx::{Ctx, Mode, ParamGrads};
pub use error::{NnError, Result};
pub use module::{Module, Sequential};
pub use params::{BufferId, Param, ParamCounts, ParamId, ParamKind, ParamStore};
