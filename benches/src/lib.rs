//! heft benchmarks
