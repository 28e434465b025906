//! Layers. Each holds the ids of its parameters in a [`ParamStore`](crate::ParamStore).

pub mod activation;
pub mod dropout;
pub mod linear;
pub mod norm;

pub use activation::{Activation, Flatten};
pub use dropout::Dropout;
pub use linear::Linear;
pub use norm::{BatchNorm, LayerNorm, RMSNorm};
