//! `fiber-link bench`: drives the real HTTP API with signed requests against the hub simulator
//! and Postgres, each in its own process (`hubsim`, `serve`, `worker` are this binary), and prints
//! throughput, latency, settlement lag, the worker's hub calls and the processes' peak memory.
//!
//! Figures are printed, never asserted: this is a measurement, not a test.

mod cpu;
mod load;
mod reads;
mod report;
mod settlement;
mod setup;
mod tips;

use anyhow::{bail, Result};
use clap::Args;

#[derive(Args)]
pub struct BenchArgs {
    /// Postgres server to create the benchmark database on (its user must be allowed to CREATE
    /// DATABASE). Also DATABASE_URL. scripts/bench.sh starts a private cluster.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Seconds per concurrency level of the tip.create and tip.get runs.
    #[arg(long, default_value_t = 20)]
    level_secs: u64,
    /// Seconds of the sustained tip.create run (0 skips it).
    #[arg(long, default_value_t = 300)]
    sustain_secs: u64,
    /// Open invoices for the settlement run (`settlement`: the larger of its two sizes; the
    /// smaller is 10,000).
    #[arg(long, default_value_t = 10_000)]
    open_invoices: usize,
    /// Invoices paid (at 50 per second) during the settlement run.
    #[arg(long, default_value_t = 500)]
    paid: usize,
    /// `tips` (tip.create, tip.get, settlement, sustained), `settlement` (stream on and off at
    /// 10,000 and --open-invoices open invoices: idle hub load, settlement lag, hub calls per
    /// paid and per expired tip) or `reads` (an app seeded with 100,000 tips and 1,000,000
    /// ledger entries: dashboard.summary, tip.list, balance.get).
    #[arg(long, default_value = "tips")]
    scenario: String,
    /// Keep the benchmark database afterwards (to look at its query plans).
    #[arg(long)]
    keep_db: bool,
}

pub async fn run(a: BenchArgs) -> Result<()> {
    let bench = setup::start(&a).await?;
    match a.scenario.as_str() {
        "reads" => reads::run(&a, bench).await,
        "tips" => tips::run(&a, bench).await,
        "settlement" => settlement::run(&a, bench).await,
        _ => bail!("--scenario must be tips, settlement or reads"),
    }
}
