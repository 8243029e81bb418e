//! The `reads` scenario: an app with a realistic history, read through the API, then
//! `reconcile` over the seeded books.

use super::load::load;
use super::setup::{finish_db, Bench};
use super::BenchArgs;
use anyhow::{anyhow, Result};
use fiber_link_client::SignedClient;
use fiber_link_store::Store;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;

pub(super) async fn run(a: &BenchArgs, b: Bench) -> Result<()> {
    let Bench {
        admin,
        db_name,
        db_url,
        cmds,
        hubsim,
        serve,
        app_id,
        client,
        store,
        ..
    } = b;
    reads(a, &store, &client, &app_id).await?;
    println!("\n## reconcile over the seeded books");
    for (what, args) in [
        ("whole", &["reconcile", "--format", "json"][..]),
        (
            "last hour",
            &["reconcile", "--since", "1h", "--format", "json"][..],
        ),
    ] {
        let (secs, code, v) = cmds.timed_json(args)?;
        println!(
            "{what:>10}: {secs:.2} s, exit {code}, {} tips ({} asked at the hub), {} withdrawals, {} finding(s)",
            v["checked"]["tips"],
            v["checked"]["tips_asked_at_hub"],
            v["checked"]["withdrawals"],
            v["findings"].as_array().map_or(0, |f| f.len())
        );
    }
    for p in [&serve, &hubsim] {
        if let Some(mb) = p.peak_rss_mb() {
            println!("{} peak RSS {mb:.1} MB", p.name);
        }
    }
    drop((serve, hubsim));
    store.pool().close().await;
    finish_db(&admin, &db_name, &db_url, a.keep_db).await?;
    Ok(())
}

/// The read side under a realistic history: one app with 100,000 tips and about 1,000,000
/// ledger entries; the heaviest author (`author-0`, 20,000 tips received) is the one read.
async fn reads(a: &BenchArgs, store: &Store, client: &SignedClient, app_id: &str) -> Result<()> {
    let t = Instant::now();
    store.seed_history(app_id, 100_000, 175).await?;
    let entries = store.ledger_entry_count().await?;
    println!(
        "\n## reads: seeded 100000 tips and {entries} ledger entries in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    // a cursor 10,000 tips deep into author-0's received tips
    let mut cursor = Value::Null;
    for _ in 0..100 {
        let mut p = json!({"user_id": "author-0", "direction": "received", "limit": 100});
        if !cursor.is_null() {
            p["cursor"] = cursor.clone();
        }
        let page = client.result("tip.list", p).await.map_err(|e| anyhow!(e))?;
        cursor = page["next_cursor"].clone();
    }
    let deep = cursor.clone();
    type Make = Arc<dyn Fn(usize, u64) -> (String, Value) + Send + Sync>;
    let runs: Vec<(&str, Make)> = vec![
        (
            "dashboard.summary",
            Arc::new(|_, s| {
                let user = if s % 2 == 0 {
                    "author-0".to_string()
                } else {
                    format!("author-{}", 1 + s % 999)
                };
                ("dashboard.summary".into(), json!({"user_id": user}))
            }),
        ),
        (
            "tip.list first page",
            Arc::new(|_, _| {
                (
                    "tip.list".into(),
                    json!({"user_id": "author-0", "direction": "received", "limit": 20}),
                )
            }),
        ),
        (
            "tip.list 10,000 deep",
            Arc::new(move |_, _| {
                (
                    "tip.list".into(),
                    json!({"user_id": "author-0", "direction": "received", "limit": 20, "cursor": deep}),
                )
            }),
        ),
        (
            "balance.get",
            Arc::new(|_, s| {
                (
                    "balance.get".into(),
                    json!({"user_id": format!("author-{}", s % 1000)}),
                )
            }),
        ),
    ];
    println!(
        "{:<22} {:>8} {:>10} {:>9} {:>9} {:>7}",
        "method", "clients", "req/s", "p50 ms", "p99 ms", "errors"
    );
    for (name, make) in runs {
        for clients in [1, 8] {
            let f = make.clone();
            let mut r = load(client, clients, a.level_secs, move |c, s| f(c, s)).await;
            println!(
                "{:<22} {:>8} {:>10.0} {:>9.2} {:>9.2} {:>7}",
                name,
                clients,
                r.rps(),
                r.pct(0.5),
                r.pct(0.99),
                r.errors
            );
        }
    }
    Ok(())
}
