//! placeholder
use anyhow::Result;
#[derive(clap::Args)]
pub struct ReproduceArgs {
    #[arg(long, default_value_t = 1)]
    table: u32,
}
pub fn run(_a: ReproduceArgs) -> Result<()> { anyhow::bail!("not yet") }
