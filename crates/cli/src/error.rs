//! The command's error: one human-readable line.

use std::fmt;

/// An error to print as one line.
#[derive(Debug)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keep it to one line whatever the source said.
        let one = self.0.replace('\n', " ");
        f.write_str(one.trim())
    }
}

/// Result alias of the command.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error from a message.
pub fn err(msg: impl Into<String>) -> Error {
    Error(msg.into())
}

macro_rules! from_display {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error(e.to_string())
            }
        }
    )*};
}

from_display!(
    heft::nn::NnError,
    heft::optim::OptimError,
    heft::tensor::TensorError,
    heft::autograd::AutogradError,
    serde_json::Error
);
