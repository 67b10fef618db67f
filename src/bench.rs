//! `stylerd bench` (being written).
use clap::Args;
#[derive(Args, Debug)]
pub struct BenchArgs {}
pub fn run(_a: BenchArgs) -> anyhow::Result<()> {
    Ok(())
}
