//! # heft-optim
//!
//! Optimizers, learning-rate schedules and gradient clipping (work in progress).
