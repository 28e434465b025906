//! Layers. Each holds the ids of its parameters in a [`ParamStore`](crate::ParamStore).

pub mod activation;
pub mod attention;
pub mod conv;
pub mod dropout;
pub mod embedding;
pub mod linear;
pub mod lora;
pub mod norm;

pub use activation::{Activation, Flatten};
pub use attention::{causal_mask, MultiHeadSelfAttention};
pub use conv::{AvgPool2d, Conv2d, MaxPool2d};
pub use dropout::Dropout;
pub use embedding::Embedding;
pub use linear::Linear;
pub use lora::LoraLinear;
pub use norm::{BatchNorm, LayerNorm, RMSNorm};
