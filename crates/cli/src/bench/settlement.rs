//! The `settlement` scenario: how fast a payment is credited and what the hub pays for it, with
//! the hub's store-change stream on and off (the simulator's pubsub module turned off, as on a
//! node without it), at 10,000 and at 100,000 open invoices; hub calls while idle, per paid tip
//! and per expired tip.

use super::cpu::Cpu;
use super::load::load_n;
use super::report::percentile_ms;
use super::setup::{finish_db, free_port, wait_http, Bench, Cmds, Proc};
use super::tips::{settled_times, sim_call};
use super::BenchArgs;
use anyhow::{bail, Result};
use fiber_link_client::SignedClient;
use fiber_link_store::Store;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The hub methods a tip costs: its invoice, its checks, its cancel.
const TIP_METHODS: [&str; 3] = ["new_invoice", "get_invoice", "cancel_invoice"];

struct Ctx {
    http: reqwest::Client,
    hub_url: String,
    store: Store,
    client: SignedClient,
    cmds: Cmds,
}

impl Ctx {
    async fn sim(&self, method: &str, params: Value) -> Result<Value> {
        sim_call(&self.http, &self.hub_url, method, params).await
    }

    async fn calls(&self) -> Result<u64> {
        let s = self.sim("sim_stats", json!({})).await?;
        Ok(TIP_METHODS
            .iter()
            .map(|m| s["calls"][m].as_u64().unwrap_or(0))
            .sum())
    }

    async fn set_stream(&self, on: bool) -> Result<()> {
        self.sim("sim_set_stream", json!({"enabled": on})).await?;
        Ok(())
    }

    /// A fresh worker (it follows the stream at once if the hub offers it).
    async fn worker(&self) -> Result<Proc> {
        let w = self.cmds.spawn("worker", &["worker"])?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        Ok(w)
    }

    /// Waits until the hub has been asked fewer than `quiet` calls per second for 2 s (the
    /// worker's start-up sweep or pull-in is over), at most `max`.
    async fn settle(&self, quiet: f64, max: Duration) -> Result<()> {
        let until = Instant::now() + max;
        let mut last = self.calls().await?;
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let now = self.calls().await?;
            if ((now - last) as f64 / 2.0) < quiet {
                return Ok(());
            }
            last = now;
        }
        Ok(())
    }

    /// Hub calls per second over `secs` with nobody paying.
    async fn idle_rate(&self, secs: u64) -> Result<f64> {
        let c0 = self.calls().await?;
        let t = Instant::now();
        tokio::time::sleep(Duration::from_secs(secs)).await;
        Ok((self.calls().await? - c0) as f64 / t.elapsed().as_secs_f64())
    }

    /// Pays `tips` at 50 per second and prints the lag from `sim_pay_invoice` to the credit.
    async fn settlement(&self, label: &str, tips: &[(String, String)]) -> Result<()> {
        let mut paid_at = Vec::new();
        let start = Instant::now();
        for (i, (id, invoice)) in tips.iter().enumerate() {
            tokio::time::sleep_until((start + Duration::from_millis(i as u64 * 20)).into()).await;
            self.sim("sim_pay_invoice", json!({"invoice": invoice}))
                .await?;
            paid_at.push((id.clone(), chrono::Utc::now()));
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut lags = Vec::new();
        loop {
            lags.clear();
            let settled = settled_times(&self.store, tips).await?;
            for (id, at) in &paid_at {
                if let Some(s) = settled.get(id) {
                    lags.push((*s - *at).num_microseconds().unwrap_or(0).max(0) as u64);
                }
            }
            if lags.len() == paid_at.len() || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        println!(
            "{label}: credited {}/{}; sim_pay_invoice → credit p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            lags.len(),
            paid_at.len(),
            percentile_ms(&mut lags, 0.5),
            percentile_ms(&mut lags, 0.99),
            percentile_ms(&mut lags, 1.0)
        );
        Ok(())
    }

    /// Hub calls per paid tip and per expired tip: `n` tips on an API whose invoices expire in
    /// 20 s, half paid at once, half left to expire; counted until every one has ended.
    async fn calls_per_tip(&self, label: &str, api: &SignedClient, n: usize) -> Result<()> {
        for (what, pay) in [("paid", true), ("expired", false)] {
            let c0 = self.calls().await?;
            let tips = load_n(api, 8, n).await;
            if pay {
                for (_, invoice) in &tips {
                    self.sim(
                        "sim_pay_invoice",
                        json!({"invoice": invoice, "delay_ms": 1}),
                    )
                    .await?;
                }
            }
            let ids: Vec<uuid::Uuid> = tips
                .iter()
                .filter_map(|(id, _)| uuid::Uuid::parse_str(id).ok())
                .collect();
            let want = if pay { "SETTLED" } else { "EXPIRED" };
            let deadline = Instant::now() + Duration::from_secs(90);
            loop {
                let done = self.store.count_in_states(&ids, &[want]).await?;
                if done as usize == ids.len() || Instant::now() > deadline {
                    // the calls of a tip that ended are all made
                    let calls = self.calls().await? - c0;
                    println!(
                        "{label}: {done}/{} {what}; hub calls (new_invoice + get_invoice + cancel_invoice) per {what} tip: {:.2}",
                        ids.len(),
                        calls as f64 / ids.len().max(1) as f64
                    );
                    break;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        Ok(())
    }
}

pub(super) async fn run(a: &BenchArgs, b: Bench) -> Result<()> {
    let Bench {
        admin,
        db_name,
        db_url,
        dir,
        hub_url,
        cmds,
        hubsim,
        serve,
        client,
        store,
        ..
    } = b;
    let cx = Ctx {
        http: reqwest::Client::new(),
        hub_url,
        store,
        client,
        cmds,
    };
    // a second API on the same database whose invoices expire in 20 s
    let port = free_port()?;
    let short_url = format!("http://127.0.0.1:{port}");
    let listen = format!("127.0.0.1:{port}");
    let short = cx.cmds.spawn_env(
        "serve-short",
        &["serve"],
        &[
            ("FIBER_LINK_LISTEN", listen.as_str()),
            ("FIBER_LINK_OPS_LISTEN", "127.0.0.1:0"),
            ("FIBER_LINK_INVOICE_EXPIRY_SECS", "20"),
        ],
    )?;
    wait_http(&format!("{short_url}/healthz/live")).await?;
    let short_api = cx.client.with_base(&short_url);

    println!("\n## hub calls per tip (no other open invoices)");
    for on in [true, false] {
        cx.set_stream(on).await?;
        let w = cx.worker().await?;
        cx.calls_per_tip(
            if on { "stream on " } else { "stream off" },
            &short_api,
            200,
        )
        .await?;
        drop(w);
    }
    drop(short);

    let mut open: Vec<(String, String)> = Vec::new();
    for target in [10_000usize, a.open_invoices.max(10_001)] {
        // new open invoices, created while a worker follows the stream (as in production)
        cx.set_stream(true).await?;
        let w = cx.worker().await?;
        let t = Instant::now();
        let more = load_n(&cx.client, 32, target - open.len()).await;
        println!(
            "\n## {target} open invoices ({} created in {:.0} s)",
            more.len(),
            t.elapsed().as_secs_f64()
        );
        open.extend(more);
        if open.len() < target * 9 / 10 {
            bail!("only {} open invoices could be created", open.len());
        }
        for on in [true, false] {
            let label = if on { "stream on " } else { "stream off" };
            cx.set_stream(on).await?;
            // off: the worker pulls every open invoice back onto the polling schedule
            cx.settle(
                if on { 300.0 } else { 0.0 },
                Duration::from_secs(if on { 120 } else { 20 }),
            )
            .await?;
            let procs = [
                ("worker", w.pid()),
                ("hubsim", hubsim.pid()),
                ("serve", serve.pid()),
            ];
            let cpu0 = Cpu::read(&procs, &cx.store).await;
            let idle = cx.idle_rate(20).await?;
            let cpu1 = Cpu::read(&procs, &cx.store).await;
            println!(
                "{label}: idle hub load {idle:.0} calls/s (get_invoice + cancel_invoice over 20 s)"
            );
            idle_cpu(&cpu0, &cpu1);
            let batch: Vec<(String, String)> = open.drain(..500.min(open.len())).collect();
            cx.settlement(label, &batch).await?;
        }
        drop(w);
    }
    println!(
        "\n## peak resident memory (VmHWM): hubsim {:.1} MB, serve {:.1} MB",
        hubsim.peak_rss_mb().unwrap_or(f64::NAN),
        serve.peak_rss_mb().unwrap_or(f64::NAN)
    );
    drop((serve, hubsim));
    cx.store.pool().close().await;
    let _ = finish_db(&admin, &db_name, &db_url, a.keep_db).await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn idle_cpu(before: &Cpu, after: &Cpu) {
    let secs = 20.0;
    let mut parts: Vec<String> = after
        .procs
        .iter()
        .zip(&before.procs)
        .map(|((n, a), (_, b))| format!("{n} {:.0} %", (a - b) / secs * 100.0))
        .collect();
    if let (Some(a), Some(b)) = (after.postgres, before.postgres) {
        parts.push(format!("postgres {:.0} %", (a - b) / secs * 100.0));
    }
    println!(
        "            CPU while idle (of one core): {}",
        parts.join(", ")
    );
}
