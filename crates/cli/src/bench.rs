//! `heft bench`.
use crate::error::Result;
use clap::Args;
/// Options of `heft bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {}
/// Run.
pub fn run(_a: BenchArgs) -> Result<()> {
    Ok(())
}
