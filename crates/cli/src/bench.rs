//! `fiber-link bench`: drives the real HTTP API with signed requests against the hub simulator
//! and Postgres, each in its own process (`hubsim`, `serve`, `worker` are this binary), and prints
//! throughput, latency, settlement lag, the worker's hub calls and the processes' peak memory.
//!
//! Figures are printed, never asserted: this is a measurement, not a test.

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use fiber_link_client::SignedClient;
use fiber_link_store::Store;
use rand::RngCore;
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// Open invoices for the settlement run.
    #[arg(long, default_value_t = 10_000)]
    open_invoices: usize,
    /// Invoices paid (at 50 per second) during the settlement run.
    #[arg(long, default_value_t = 500)]
    paid: usize,
    /// `tips` (tip.create, tip.get, settlement, sustained) or `reads` (an app seeded with 100,000
    /// tips and 1,000,000 ledger entries: dashboard.summary, tip.list, balance.get).
    #[arg(long, default_value = "tips")]
    scenario: String,
    /// Keep the benchmark database afterwards (to look at its query plans).
    #[arg(long)]
    keep_db: bool,
}

struct Proc {
    name: &'static str,
    child: Child,
}

impl Proc {
    fn peak_rss_mb(&self) -> Option<f64> {
        proc_status_kb(self.child.id(), "VmHWM:").map(|kb| kb as f64 / 1024.0)
    }
    fn rss_mb(&self) -> Option<f64> {
        proc_status_kb(self.child.id(), "VmRSS:").map(|kb| kb as f64 / 1024.0)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn proc_status_kb(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn db_url_for(admin: &str, name: &str) -> String {
    let (base, rest) = admin.rsplit_once('/').unwrap_or((admin, ""));
    let query = rest.find('?').map(|q| &rest[q..]).unwrap_or("");
    format!("{base}/{name}{query}")
}

async fn wait_http(url: &str) -> Result<()> {
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if http.get(url).send().await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("{url} did not come up")
}

async fn wait_tcp(port: u16) -> Result<()> {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("port {port} did not open")
}

#[derive(Default)]
struct Run {
    latencies_us: Vec<u64>,
    errors: u64,
    elapsed: Duration,
}

impl Run {
    fn rps(&self) -> f64 {
        self.latencies_us.len() as f64 / self.elapsed.as_secs_f64()
    }
    fn pct(&mut self, p: f64) -> f64 {
        percentile_ms(&mut self.latencies_us, p)
    }

    fn print_header() {
        println!(
            "{:>8} {:>10} {:>9} {:>9} {:>7}",
            "clients", "req/s", "p50 ms", "p99 ms", "errors"
        );
    }

    fn print_row(&mut self, clients: usize) {
        let (p50, p99) = (self.pct(0.5), self.pct(0.99));
        println!(
            "{:>8} {:>10.0} {:>9.2} {:>9.2} {:>7}",
            clients,
            self.rps(),
            p50,
            p99,
            self.errors
        );
    }
}

fn percentile_ms(v: &mut [u64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i] as f64 / 1000.0
}

/// `clients` tasks call `make(client_no, seq)` back to back for `secs`.
async fn load<F>(client: &SignedClient, clients: usize, secs: u64, make: F) -> Run
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

fn tip_create(client_no: usize, seq: u64) -> (String, Value) {
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

async fn sim_call(http: &reqwest::Client, url: &str, method: &str, params: Value) -> Result<Value> {
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

fn get_invoice_calls(stats: &Value) -> u64 {
    stats["calls"]["get_invoice"].as_u64().unwrap_or(0)
        + stats["calls"]["cancel_invoice"].as_u64().unwrap_or(0)
}

pub async fn run(a: BenchArgs) -> Result<()> {
    let exe = std::env::current_exe()?;
    let admin = Store::connect(&a.database_url, 1)
        .await
        .context("connecting to DATABASE_URL")?;
    let mut b = [0u8; 6];
    rand::thread_rng().fill_bytes(&mut b);
    let db_name = format!("fl_bench_{}", hex::encode(b));
    sqlx_create_db(&admin, &db_name).await?;
    let db_url = db_url_for(&a.database_url, &db_name);
    let dir = std::env::temp_dir().join(&db_name);
    std::fs::create_dir_all(&dir)?;
    let master = fiber_link_core::crypto::MasterKey::generate();
    let (hub_port, api_port) = (free_port()?, free_port()?);
    let hub_url = format!("http://127.0.0.1:{hub_port}");
    let api_url = format!("http://127.0.0.1:{api_port}");
    let config = dir.join("bench.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{api_port}\"\n\
             [hub]\nurl = \"{hub_url}\"\n\
             [api]\nops_listen = \"127.0.0.1:0\"\ndb_pool = 24\nrate_per_app_method = {{ per_second = 1000000, burst = 1000000 }}\n\
             rate_per_app_user = {{ per_second = 1000000, burst = 1000000 }}\n\
             [worker]\nlisten = \"127.0.0.1:0\"\ndb_pool = 16\nbatch = 200\n"
        ),
    )?;
    let envs = |cmd: &mut Command| {
        cmd.env("DATABASE_URL", &db_url)
            .env("FIBER_LINK_MASTER_KEY", master.to_hex())
            .env("RUST_LOG", "warn")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
    };
    let spawn = |name: &'static str, args: &[&str]| -> Result<Proc> {
        let mut cmd = Command::new(&exe);
        cmd.args(args);
        envs(&mut cmd);
        Ok(Proc {
            name,
            child: cmd.spawn().with_context(|| format!("starting {name}"))?,
        })
    };
    println!("fiber-link bench: database {db_name}, hub {hub_url}, API {api_url}");
    let hubsim = spawn(
        "hubsim",
        &["hubsim", "--listen", &format!("127.0.0.1:{hub_port}")],
    )?;
    wait_tcp(hub_port).await?;
    let out = {
        let mut cmd = Command::new(&exe);
        cmd.args(["migrate"]);
        envs(&mut cmd);
        cmd.output()?
    };
    if !out.status.success() {
        bail!("migrate failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let out = {
        let mut cmd = Command::new(&exe);
        cmd.args(["app", "create", "--name", "Bench forum", "--json"]);
        envs(&mut cmd);
        cmd.stdout(Stdio::piped());
        cmd.output()?
    };
    let app: Value = serde_json::from_slice(&out.stdout).context("app create --json")?;
    let client = SignedClient::new(
        &api_url,
        app["app_id"].as_str().unwrap_or_default(),
        app["secret"].as_str().unwrap_or_default(),
    );
    let serve = spawn("serve", &["serve"])?;
    wait_http(&format!("{api_url}/healthz/live")).await?;
    let store = Store::connect(&db_url, 4).await?;
    let http = reqwest::Client::new();
    if a.scenario == "reads" {
        let app_id = app["app_id"].as_str().unwrap_or_default().to_string();
        reads(&a, &store, &client, &app_id).await?;
        println!("\n## reconcile over the seeded books");
        for (what, args) in [
            ("whole", &["reconcile", "--format", "json"][..]),
            (
                "last hour",
                &["reconcile", "--since", "1h", "--format", "json"][..],
            ),
        ] {
            let (secs, code, v) = timed_json(&exe, &envs, args)?;
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
        if a.keep_db {
            println!("database kept: {db_url}");
        } else {
            sqlx_drop_db(&admin, &db_name).await?;
        }
        return Ok(());
    } else if a.scenario != "tips" {
        bail!("--scenario must be tips or reads");
    }

    println!(
        "\n## settlement: {} open invoices, {} of them paid at 50/s, one worker",
        a.open_invoices, a.paid
    );
    // open invoices: created just now, so the watcher sees them all fresh
    let created = load_n(&client, 32, a.open_invoices).await;
    let paid_ids: Vec<(String, String)> = created.iter().take(a.paid).cloned().collect();
    let worker = spawn("worker", &["worker"])?;
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
    // The API runs are measured without the worker: it would otherwise poll every invoice those
    // runs create, and the figures would mix the two processes' demands on the two cores.
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
        let (secs, code, v) = timed_json(&exe, &envs, args)?;
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

    println!(
        "\n## tip.create (each: nonce + tip row + hub new_invoice + invoice row; worker stopped)"
    );
    Run::print_header();
    for clients in [1usize, 8, 32] {
        let mut r = load(&client, clients, a.level_secs, tip_create).await;
        r.print_row(clients);
    }

    store.settle_down().await?;
    println!("\n## tip.get (database only; each consumes a nonce)");
    let ids: Vec<String> = sqlx_ids(&store, 5000).await?;
    let ids = Arc::new(ids);
    Run::print_header();
    for clients in [8usize, 32] {
        let ids = ids.clone();
        let mut r = load(&client, clients, a.level_secs, move |n, seq| {
            let id = &ids[(n * 7919 + seq as usize * 104_729) % ids.len()];
            ("tip.get".into(), json!({"tip_id": id}))
        })
        .await;
        r.print_row(clients);
    }

    if a.sustain_secs > 0 {
        println!(
            "\n## sustained tip.create, 32 clients, {} s",
            a.sustain_secs
        );
        println!(
            "{:>8} {:>10} {:>9} {:>9} {:>12}",
            "minute", "req/s", "p50 ms", "p99 ms", "serve RSS MB"
        );
        let mut left = a.sustain_secs;
        let mut minute = 1;
        while left > 0 {
            let secs = left.min(60);
            let mut r = load(&client, 32, secs, tip_create).await;
            println!(
                "{:>8} {:>10.0} {:>9.2} {:>9.2} {:>12.1}",
                minute,
                r.rps(),
                r.pct(0.5),
                r.pct(0.99),
                serve.rss_mb().unwrap_or(f64::NAN)
            );
            left -= secs;
            minute += 1;
        }
    }

    println!("\n## peak resident memory (VmHWM)");
    println!("{:>8}: {:.1} MB", "worker", worker_peak);
    for p in [&serve, &hubsim] {
        println!(
            "{:>8}: {:.1} MB",
            p.name,
            p.peak_rss_mb().unwrap_or(f64::NAN)
        );
    }
    drop((serve, hubsim));
    store.pool().close().await;
    let _ = sqlx_drop_db(&admin, &db_name).await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Runs one `fiber-link` command that prints JSON: seconds taken, exit code, its output.
fn timed_json(
    exe: &std::path::Path,
    envs: &dyn Fn(&mut Command),
    args: &[&str],
) -> Result<(f64, i32, Value)> {
    let t = Instant::now();
    let mut cmd = Command::new(exe);
    cmd.args(args);
    envs(&mut cmd);
    cmd.stdout(Stdio::piped());
    let out = cmd.output()?;
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    Ok((
        t.elapsed().as_secs_f64(),
        out.status.code().unwrap_or(-1),
        v,
    ))
}

/// Creates `n` tips as fast as `clients` can, returning (tip_id, invoice).
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

async fn load_n(client: &SignedClient, clients: usize, n: usize) -> Vec<(String, String)> {
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

async fn sqlx_create_db(admin: &Store, name: &str) -> Result<()> {
    admin
        .create_database(name)
        .await
        .context("creating the benchmark database")
}

async fn sqlx_drop_db(admin: &Store, name: &str) -> Result<()> {
    admin
        .drop_database(name)
        .await
        .context("dropping the benchmark database")
}

async fn sqlx_ids(store: &Store, n: i64) -> Result<Vec<String>> {
    Ok(store
        .some_tip_ids(n)
        .await?
        .into_iter()
        .map(|u| u.to_string())
        .collect())
}

async fn settled_times(
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
