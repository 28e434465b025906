//! `heft inspect`.
use crate::error::Result;
use clap::Args;
/// Long help.
pub const LONG_ABOUT: &str = "x";
/// Options of `heft inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {}
/// Run.
pub fn run(_a: InspectArgs) -> Result<()> {
    Ok(())
}
