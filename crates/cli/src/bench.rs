use clap::Args;

#[derive(Args)]
pub struct BenchArgs {}

pub async fn run(_a: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("bench: not built yet")
}
