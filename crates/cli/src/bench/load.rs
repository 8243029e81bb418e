//! The load generators: signed API calls from concurrent clients, for a time or a count.

use super::report::Run;
use fiber_link_client::SignedClient;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `clients` tasks call `make(client_no, seq)` back to back for `secs`.
pub(super) async fn load<F>(client: &SignedClient, clients: usize, secs: u64, make: F) -> Run
where
    F: Fn(usize, u64) -> (String, Value) + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for n in 0..clients {
        let (c, make, stop) = (client.clone(), make.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let (method, params) = make(n, seq);
                seq += 1;
                let t = Instant::now();
                match c.call(&method, params).await {
                    Ok(a) if a.result().is_some() => lat.push(t.elapsed().as_micros() as u64),
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut run = Run::default();
    for t in tasks {
        if let Ok((lat, e)) = t.await {
            run.latencies_us.extend(lat);
            run.errors += e;
        }
    }
    run.elapsed = start.elapsed();
    run
}

pub(super) fn tip_create(client_no: usize, seq: u64) -> (String, Value) {
    (
        "tip.create".into(),
        json!({
            "post_id": format!("post-{}", seq % 1000),
            "from_user_id": format!("reader-{client_no}-{}", seq % 50),
            "to_user_id": format!("author-{}", seq % 200),
            "asset": "CKB",
            "amount": "1.5",
        }),
    )
}

/// Creates `n` tips as fast as `clients` can, returning (tip_id, invoice).
pub(super) async fn load_n(
    client: &SignedClient,
    clients: usize,
    n: usize,
) -> Vec<(String, String)> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for c_no in 0..clients {
        let (c, next) = (client.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let (_, p) = tip_create(c_no, i as u64);
                if let Ok(t) = c.result("tip.create", p).await {
                    out.push((
                        t["tip_id"].as_str().unwrap_or_default().to_string(),
                        t["invoice"].as_str().unwrap_or_default().to_string(),
                    ));
                }
            }
            out
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        if let Ok(v) = t.await {
            all.extend(v);
        }
    }
    all
}
