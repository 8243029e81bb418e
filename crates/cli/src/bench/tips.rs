//! The `tips` scenario: settlement lag under one worker, reconcile and backfill over what it left,
//! tip.create and tip.get at several concurrencies, a sustained tip.create run, peak memory.

use super::cpu::Cpu;
use super::load::{load, load_n, tip_create};
use super::report::{percentile_ms, Run};
use super::setup::{finish_db, Bench};
use super::BenchArgs;
use anyhow::{anyhow, Result};
use fiber_link_store::Store;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    let http = reqwest::Client::new();
    println!(
        "\n## settlement: {} open invoices, {} of them paid at 50/s, one worker",
        a.open_invoices, a.paid
    );
    // open invoices: created just now, so the watcher sees them all fresh
    let created = load_n(&client, 32, a.open_invoices).await;
    let paid_ids: Vec<(String, String)> = created.iter().take(a.paid).cloned().collect();
    let worker = cmds.spawn("worker", &["worker"])?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stats0 = sim_call(&http, &hub_url, "sim_stats", json!({})).await?;
    let t_stats = Instant::now();
    let mut paid_at = Vec::new();
    let pay_start = Instant::now();
    for (i, (id, invoice)) in paid_ids.iter().enumerate() {
        let due = pay_start + Duration::from_millis(i as u64 * 20);
        tokio::time::sleep_until(due.into()).await;
        sim_call(
            &http,
            &hub_url,
            "sim_pay_invoice",
            json!({"invoice": invoice}),
        )
        .await?;
        paid_at.push((id.clone(), chrono::Utc::now()));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut lags_us = Vec::new();
    loop {
        lags_us.clear();
        let settled = settled_times(&store, &paid_ids).await?;
        for (id, at) in &paid_at {
            if let Some(s) = settled.get(id) {
                lags_us.push((*s - *at).num_microseconds().unwrap_or(0).max(0) as u64);
            }
        }
        if lags_us.len() == paid_at.len() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let stats1 = sim_call(&http, &hub_url, "sim_stats", json!({})).await?;
    let calls = get_invoice_calls(&stats1) - get_invoice_calls(&stats0);
    let secs = t_stats.elapsed().as_secs_f64();
    println!(
        "credited {}/{} paid tips; sim_pay_invoice → ledger credit: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        lags_us.len(),
        paid_at.len(),
        percentile_ms(&mut lags_us, 0.5),
        percentile_ms(&mut lags_us, 0.99),
        percentile_ms(&mut lags_us, 1.0)
    );
    println!(
        "worker hub calls: {calls} get_invoice/cancel_invoice in {secs:.1} s = {:.0}/s",
        calls as f64 / secs
    );
    let worker_peak = worker.peak_rss_mb().unwrap_or(f64::NAN);
    drop(worker);

    // The operator's tools over what the settlement phase left (every tip asked at the hub),
    // with 100 more tips paid while no worker runs: backfill has those to credit.
    println!(
        "\n## reconcile and backfill over {} tips (worker stopped, 100 payments missed)",
        created.len()
    );
    for (_, invoice) in created.iter().skip(a.paid).take(100) {
        sim_call(
            &http,
            &hub_url,
            "sim_pay_invoice",
            json!({"invoice": invoice, "delay_ms": 1}),
        )
        .await?;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (what, args) in [
        ("reconcile", &["reconcile", "--format", "json"][..]),
        (
            "backfill",
            &["backfill", "--since", "1h", "--format", "json"][..],
        ),
        ("reconcile", &["reconcile", "--format", "json"][..]),
    ] {
        let (secs, code, v) = cmds.timed_json(args)?;
        let figures = if what == "backfill" {
            format!(
                "{} asked at the hub, {} credited",
                v["asked"], v["credited"]
            )
        } else {
            format!(
                "{} tips asked at the hub, {} finding(s)",
                v["checked"]["tips_asked_at_hub"],
                v["findings"].as_array().map_or(0, |f| f.len())
            )
        };
        println!("{what:>10}: {secs:.2} s, exit {code}, {figures}");
    }
    // start the API runs from a quiet server, not in the settlement phase's autovacuum
    store.settle_down().await?;

    // The API runs are measured with a worker running, as in production. While it follows the
    // hub's store changes it does no work for fresh tips (their payments are announced), so the
    // figures are the request path's own.
    let worker = cmds.spawn("worker", &["worker"])?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let procs = [
        ("serve", serve.pid()),
        ("worker", worker.pid()),
        ("hubsim", hubsim.pid()),
        ("loadgen", std::process::id()),
    ];
    println!(
        "\n## tip.create (each: tip row with the request's nonce + hub new_invoice + invoice row; worker running, stream on)"
    );
    Run::print_header();
    for clients in [1usize, 8, 32] {
        let before = Cpu::read(&procs, &store).await;
        let mut r = load(&client, clients, a.level_secs, tip_create).await;
        let after = Cpu::read(&procs, &store).await;
        r.print_row(clients);
        after.print_per_op(&before, r.latencies_us.len() as u64, "tip.create");
    }

    store.settle_down().await?;
    println!("\n## tip.get (database only; each consumes a nonce; worker running)");
    let ids: Vec<String> = sqlx_ids(&store, 5000).await?;
    let ids = Arc::new(ids);
    Run::print_header();
    for clients in [8usize, 32] {
        let ids = ids.clone();
        let before = Cpu::read(&procs, &store).await;
        let mut r = load(&client, clients, a.level_secs, move |n, seq| {
            let id = &ids[(n * 7919 + seq as usize * 104_729) % ids.len()];
            ("tip.get".into(), json!({"tip_id": id}))
        })
        .await;
        let after = Cpu::read(&procs, &store).await;
        r.print_row(clients);
        after.print_per_op(&before, r.latencies_us.len() as u64, "tip.get");
    }

    if a.sustain_secs > 0 {
        println!(
            "\n## sustained tip.create, 32 clients, {} s",
            a.sustain_secs
        );
        println!("(CPU: µs per tip.create in that minute; RSS: MB at its end)");
        println!(
            "{:>6} {:>7} {:>7} {:>7} {:>6} {:>7} {:>7} {:>6} {:>6} {:>7}",
            "minute",
            "req/s",
            "p50 ms",
            "p99 ms",
            "serve",
            "hubsim",
            "postgr",
            "serve",
            "worker",
            "hubsim"
        );
        println!(
            "{:>6} {:>7} {:>7} {:>7} {:>6} {:>7} {:>7} {:>6} {:>6} {:>7}",
            "", "", "", "", "CPU", "CPU", "CPU", "RSS", "RSS", "RSS"
        );
        let mut left = a.sustain_secs;
        let mut minute = 1;
        while left > 0 {
            let secs = left.min(60);
            let before = Cpu::read(&procs, &store).await;
            let mut r = load(&client, 32, secs, tip_create).await;
            let after = Cpu::read(&procs, &store).await;
            let (cpu, pg) = after.per_op(&before, r.latencies_us.len() as u64);
            let us = |name: &str| cpu.iter().find(|c| c.0 == name).map_or(f64::NAN, |c| c.1);
            println!(
                "{:>6} {:>7.0} {:>7.2} {:>7.2} {:>6.0} {:>7.0} {:>7.0} {:>6.1} {:>6.1} {:>7.1}",
                minute,
                r.rps(),
                r.pct(0.5),
                r.pct(0.99),
                us("serve"),
                us("hubsim"),
                pg.unwrap_or(f64::NAN),
                serve.rss_mb().unwrap_or(f64::NAN),
                worker.rss_mb().unwrap_or(f64::NAN),
                hubsim.rss_mb().unwrap_or(f64::NAN)
            );
            left -= secs;
            minute += 1;
        }
    }

    println!("\n## peak resident memory (VmHWM)");
    println!(
        "{:>8}: {:.1} MB (settlement phase), {:.1} MB (API runs)",
        "worker",
        worker_peak,
        worker.peak_rss_mb().unwrap_or(f64::NAN)
    );
    drop(worker);
    for p in [&serve, &hubsim] {
        println!(
            "{:>8}: {:.1} MB",
            p.name,
            p.peak_rss_mb().unwrap_or(f64::NAN)
        );
    }
    drop((serve, hubsim));
    store.pool().close().await;
    let _ = finish_db(&admin, &db_name, &db_url, a.keep_db).await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

pub(super) async fn sim_call(
    http: &reqwest::Client,
    url: &str,
    method: &str,
    params: Value,
) -> Result<Value> {
    let v: Value = http
        .post(url)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": [params]}))
        .send()
        .await?
        .json()
        .await?;
    v.get("result")
        .cloned()
        .ok_or_else(|| anyhow!("{method}: {v}"))
}

pub(super) fn get_invoice_calls(stats: &Value) -> u64 {
    stats["calls"]["get_invoice"].as_u64().unwrap_or(0)
        + stats["calls"]["cancel_invoice"].as_u64().unwrap_or(0)
}

async fn sqlx_ids(store: &Store, n: i64) -> Result<Vec<String>> {
    Ok(store
        .some_tip_ids(n)
        .await?
        .into_iter()
        .map(|u| u.to_string())
        .collect())
}

pub(super) async fn settled_times(
    store: &Store,
    ids: &[(String, String)],
) -> Result<std::collections::HashMap<String, chrono::DateTime<chrono::Utc>>> {
    let uuids: Vec<uuid::Uuid> = ids
        .iter()
        .filter_map(|(id, _)| uuid::Uuid::parse_str(id).ok())
        .collect();
    Ok(store
        .settled_at(&uuids)
        .await?
        .into_iter()
        .map(|(id, at)| (id.to_string(), at))
        .collect())
}
