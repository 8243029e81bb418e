//! `fiber-link-apifuzz`: starts the hub simulator and the API (`fiber-link hubsim`, `fiber-link
//! serve`) on a fresh database, seeds a few tips, then sends `--requests` mutated requests —
//! mostly validly signed, so the garbage reaches the handlers — to every JSON-RPC method,
//! `POST /tips`, the pay page and its event stream, `/healthz/live` and stray routes. It checks
//! that the API never panics, never answers 5xx or an internal error, refuses every request
//! whose signature headers are wrong, never shows one app another's tips, keeps its memory flat,
//! and that the database holds exactly what the accepted requests created. Exit 1 on any
//! violation.

mod check;
mod gen;

use anyhow::{anyhow, bail, Context, Result};
use check::{Outcome, Sink, Stats};
use clap::Parser;
use fiber_link_client::SignedClient;
use fiber_link_store::Store;
use gen::{App, Known, World};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const UDT: &str = "RUSD:0xe1e354d6d643ad42724d40967e334984534e0367405c5ae42a9d7d63d77df419:data2:0x32e555f3ff8e135cece1351a6a2971518392c1e30375c1e006ad0ce8eac07947";

#[derive(Parser)]
#[command(
    name = "fiber-link-apifuzz",
    about = "Fuzzes a running Fiber Link API process with mutated, mostly validly signed requests"
)]
struct Args {
    /// The fiber-link binary (default: next to this one, else target/release or target/debug).
    #[arg(long)]
    bin: Option<PathBuf>,
    /// The Postgres server to create the fuzz database on (its user may CREATE DATABASE).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    database_url: String,
    /// Seed of the request generator (random when omitted; printed at the start).
    #[arg(long)]
    seed: Option<u64>,
    /// Requests to send.
    #[arg(long, default_value_t = 1_000_000)]
    requests: u64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds a request may take before it counts as unanswered.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
    /// Seconds between samples of the API's memory.
    #[arg(long, default_value_t = 2)]
    rss_interval_secs: u64,
    /// Where the logs, the configuration and violations.jsonl go (default: a new temp dir).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Keep the fuzz database afterwards (it is kept anyway when something was found).
    #[arg(long)]
    keep_db: bool,
}

struct Proc {
    child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

fn rss_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn find_bin(arg: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(p) = arg {
        if p.is_file() {
            return Ok(p);
        }
        bail!("--bin {}: no such file", p.display());
    }
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::current_exe()?.parent() {
        candidates.push(dir.join("fiber-link"));
    }
    candidates.push(PathBuf::from("target/release/fiber-link"));
    candidates.push(PathBuf::from("target/debug/fiber-link"));
    candidates.into_iter().find(|p| p.is_file()).ok_or_else(|| {
        anyhow!(
            "no fiber-link binary found (build it with `cargo build -p fiber-link`, or pass --bin)"
        )
    })
}

async fn wait_http(url: &str) -> Result<()> {
    let http = reqwest::Client::builder().no_proxy().build()?;
    for _ in 0..600 {
        if http.get(url).send().await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("{url} did not come up")
}

async fn wait_tcp(port: u16) -> Result<()> {
    for _ in 0..600 {
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

/// The processes and what they need.
struct Stack {
    bin: PathBuf,
    dir: PathBuf,
    config: PathBuf,
    db_url: String,
    master_hex: String,
    hub_url: String,
    api_url: String,
    api_port: u16,
}

impl Stack {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--config")
            .arg(&self.config)
            .args(args)
            .env("DATABASE_URL", &self.db_url)
            .env("FIBER_LINK_MASTER_KEY", &self.master_hex)
            .env("FIBER_LINK_HUB_URL", &self.hub_url)
            .env("FIBER_LINK_LISTEN", format!("127.0.0.1:{}", self.api_port))
            .env("FIBER_LINK_OPS_LISTEN", "127.0.0.1:0")
            .env("FIBER_LINK_PUBLIC_URL", &self.api_url)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null());
        c
    }

    fn run_json(&self, args: &[&str]) -> Result<Value> {
        let out = self.command(args).output()?;
        if !out.status.success() {
            bail!(
                "fiber-link {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        serde_json::from_slice(&out.stdout)
            .with_context(|| format!("fiber-link {}: not JSON", args.join(" ")))
    }

    fn log(&self, name: &str) -> Result<std::fs::File> {
        Ok(std::fs::File::create(self.dir.join(name))?)
    }
}

/// Invoices of another node (CKB with and without the 61 CKB on-chain minimum in mind, RUSD):
/// valid withdrawal destinations, so requests get past the destination checks.
async fn payee_invoices(url: &str) -> Result<Vec<(String, &'static str, &'static str)>> {
    let http = reqwest::Client::builder().no_proxy().build()?;
    let udt = json!({"code_hash": "0xe1e354d6d643ad42724d40967e334984534e0367405c5ae42a9d7d63d77df419",
                     "hash_type": "data2",
                     "args": "0x32e555f3ff8e135cece1351a6a2971518392c1e30375c1e006ad0ce8eac07947"});
    let mut out = Vec::new();
    for (amount, udt, asset, pays) in [
        (10_000_000_000u128, None, "CKB", "100.5"),
        (150_000_000, None, "CKB", "1.5075"),
        (6_150_000_000, None, "CKB", "61.8075"),
        (5_000_000, Some(udt), "RUSD", "5.025"),
    ] {
        let mut p = json!({"amount": format!("{amount:#x}"), "currency": "Fibd",
                           "description": "apifuzz payee", "expiry": "0x15180"});
        if let Some(u) = udt {
            p["udt_type_script"] = u;
        }
        let v: Value = http
            .post(url)
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "new_invoice", "params": [p]}))
            .send()
            .await?
            .json()
            .await?;
        let inv = v
            .pointer("/result/invoice_address")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("the payee hubsim's new_invoice: {v}"))?;
        out.push((inv.to_string(), asset, pays));
    }
    Ok(out)
}

/// A few valid tips per app (so ids, invoices and cursors exist); returns the calls made.
async fn seed_state(world: &World, sink: &Sink, stats: &mut Stats) -> Result<u64> {
    let mut calls = 0;
    for (app, n) in [(0usize, 24usize), (1, 6)] {
        let c = &world.apps[app].client;
        for i in 0..n {
            let asset = if i % 6 == 5 { "RUSD" } else { "CKB" };
            let from = format!("reader-{}", i % 7);
            let to = format!("author-{}", i % 5);
            let r = c
                .result(
                    "tip.create",
                    json!({"post_id": format!("post-{i}"), "from_user_id": from, "to_user_id": to,
                           "asset": asset, "amount": "1.5", "message": "seed tip <b>ok</b>"}),
                )
                .await
                .map_err(|e| anyhow!("seeding a tip: {e}"))?;
            calls += 1;
            let id = r["tip_id"].as_str().unwrap_or_default().to_string();
            sink.own(&id, app);
            stats.accepted_tips.insert(id.clone());
            stats.accepted_users.insert((app, from));
            stats.accepted_users.insert((app, to));
            world.learn_tip(&id, app, r["invoice"].as_str());
        }
        for direction in ["received", "sent"] {
            let r = c
                .result(
                    "tip.list",
                    json!({"user_id": "author-0", "direction": direction, "limit": 1}),
                )
                .await
                .map_err(|e| anyhow!("seeding a cursor: {e}"))?;
            calls += 1;
            if let Some(cur) = r["next_cursor"].as_str() {
                world.learn_cursor(cur);
            }
        }
        let r = c
            .result(
                "tip.list",
                json!({"user_id": "reader-0", "direction": "sent", "limit": 1}),
            )
            .await
            .map_err(|e| anyhow!("seeding a cursor: {e}"))?;
        calls += 1;
        if let Some(cur) = r["next_cursor"].as_str() {
            world.learn_cursor(cur);
        }
    }
    Ok(calls)
}

async fn send(http: &reqwest::Client, base: &str, plan: &gen::Plan) -> Outcome {
    use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
    let mut hm = HeaderMap::new();
    for (k, v) in &plan.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_bytes(v),
        ) {
            hm.append(n, v);
        }
    }
    let mut req = http
        .request(plan.method.clone(), format!("{base}{}", plan.path))
        .headers(hm);
    if !plan.body.is_empty() || plan.method == reqwest::Method::POST {
        req = req.body(plan.body.clone());
    }
    let kind = |e: &reqwest::Error| {
        if e.is_builder() {
            "unsendable"
        } else if e.is_timeout() {
            "timeout"
        } else if e.is_connect() {
            "connect"
        } else if e.is_body() || e.is_decode() {
            "body"
        } else {
            "request"
        }
    };
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => {
            return Outcome {
                status: None,
                body: vec![],
                error: Some((kind(&e), format!("{e:?}"))),
            }
        }
    };
    let status = resp.status().as_u16();
    if plan.stream && status == 200 {
        // an event stream: the status is the answer; the connection is dropped here
        return Outcome {
            status: Some(status),
            body: vec![],
            error: None,
        };
    }
    match resp.bytes().await {
        Ok(b) => Outcome {
            status: Some(status),
            body: b.to_vec(),
            error: None,
        },
        Err(e) => Outcome {
            status: Some(status),
            body: vec![],
            error: Some((kind(&e), format!("{e:?}"))),
        },
    }
}

fn mix(seed: u64, i: u64) -> u64 {
    let mut z = seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

struct Sample {
    secs: f64,
    done: u64,
    rss_kb: u64,
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn scan_log(path: &Path) -> (u64, u64, Vec<String>) {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let mut panics = 0;
    let mut errors = 0;
    let mut first = Vec::new();
    for line in text.lines() {
        if line.contains("panicked") {
            panics += 1;
            if first.len() < 5 {
                first.push(line.chars().take(400).collect());
            }
        }
        if line.contains("ERROR") {
            errors += 1;
            if first.len() < 10 {
                first.push(line.chars().take(400).collect());
            }
        }
    }
    (panics, errors, first)
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match rt.block_on(run(args)) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> Result<bool> {
    let seed = args.seed.unwrap_or_else(|| rand::thread_rng().gen());
    let bin = find_bin(args.bin.clone())?;
    println!(
        "fiber-link-apifuzz: seed {seed}, {} requests, concurrency {}, binary {}",
        args.requests,
        args.concurrency,
        bin.display()
    );
    let admin = Store::connect(&args.database_url, 1)
        .await
        .with_context(|| format!("connecting to {}", args.database_url))?;
    let db_name = format!(
        "fl_fuzz_{}",
        hex::encode(rand::thread_rng().gen::<[u8; 6]>())
    );
    admin
        .create_database(&db_name)
        .await
        .context("creating the fuzz database")?;
    let db_url = db_url_for(&args.database_url, &db_name);
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("fiber-link-apifuzz-{db_name}")));
    std::fs::create_dir_all(&dir)?;
    let result = fuzz(&args, seed, &bin, &dir, &db_url).await;
    let keep = args.keep_db || !matches!(result, Ok(true));
    if keep {
        println!("database kept: {db_url}");
    } else {
        admin.drop_database(&db_name).await?;
    }
    result
}

async fn fuzz(args: &Args, seed: u64, bin: &Path, dir: &Path, db_url: &str) -> Result<bool> {
    let (hub_port, api_port) = (free_port()?, free_port()?);
    let config = dir.join("fuzz.toml");
    // rate limits out of the way (they are not what is fuzzed), withdrawals of CKB and RUSD
    // allowed (so requests get past the policy to the balance), a UDT besides CKB
    std::fs::write(
        &config,
        r#"[api]
rate_per_app_method = { per_second = 100000000, burst = 100000000 }
rate_per_app_user = { per_second = 100000000, burst = 100000000 }
pay_streams_per_client = 64

[[assets]]
symbol = "CKB"
decimals = 8
max_tip = "1000000"

[[assets]]
symbol = "RUSD"
decimals = 6
max_tip = "500"
udt_type_script = { code_hash = "0xe1e354d6d643ad42724d40967e334984534e0367405c5ae42a9d7d63d77df419", hash_type = "data2", args = "0x32e555f3ff8e135cece1351a6a2971518392c1e30375c1e006ad0ce8eac07947" }

[withdrawals.policy.CKB]
allowed = true

[withdrawals.policy.RUSD]
allowed = true
"#,
    )?;
    let master = fiber_link_core::crypto::MasterKey::generate();
    let stack = Stack {
        bin: bin.to_path_buf(),
        dir: dir.to_path_buf(),
        config,
        db_url: db_url.to_string(),
        master_hex: master.to_hex(),
        hub_url: format!("http://127.0.0.1:{hub_port}"),
        api_url: format!("http://127.0.0.1:{api_port}"),
        api_port,
    };
    println!(
        "output in {} (serve.stderr, violations.jsonl)",
        dir.display()
    );
    let hubsim = Proc {
        child: Command::new(bin)
            .args([
                "hubsim",
                "--listen",
                &format!("127.0.0.1:{hub_port}"),
                "--udt",
                UDT,
            ])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stack.log("hubsim.stderr")?)
            .spawn()
            .context("starting fiber-link hubsim")?,
    };
    // a second node: the payee of withdrawals to Fiber invoices that are not the hub's own
    let payee_port = free_port()?;
    let payee_hub = Proc {
        child: Command::new(bin)
            .args([
                "hubsim",
                "--listen",
                &format!("127.0.0.1:{payee_port}"),
                "--udt",
                UDT,
            ])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stack.log("payee-hubsim.stderr")?)
            .spawn()
            .context("starting the payee's fiber-link hubsim")?,
    };
    wait_tcp(hub_port).await?;
    wait_tcp(payee_port).await?;
    let payee_invoices = payee_invoices(&format!("http://127.0.0.1:{payee_port}")).await?;
    let out = stack.command(&["migrate"]).output()?;
    if !out.status.success() {
        bail!("migrate failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let a = stack.run_json(&["app", "create", "--name", "Fuzz forum", "--json"])?;
    let b = stack.run_json(&["app", "create", "--name", "Other forum", "--json"])?;
    let app = |v: &Value| -> Result<App> {
        let id = v["app_id"]
            .as_str()
            .ok_or_else(|| anyhow!("app create: no app_id"))?;
        let secret = v["secret"]
            .as_str()
            .ok_or_else(|| anyhow!("app create: no secret"))?;
        Ok(App {
            id: id.to_string(),
            client: SignedClient::new(&stack.api_url, id, secret),
        })
    };
    let world = Arc::new(World {
        apps: [app(&a)?, app(&b)?],
        known: Mutex::new(Known {
            payee_invoices,
            ..Known::default()
        }),
    });
    let serve = Arc::new(Mutex::new(Proc {
        child: stack
            .command(&["serve"])
            .stdout(Stdio::null())
            .stderr(stack.log("serve.stderr")?)
            .spawn()
            .context("starting fiber-link serve")?,
    }));
    let serve_pid = serve.lock().map(|p| p.child.id()).unwrap_or(0);
    wait_http(&format!("{}/healthz/live", stack.api_url)).await?;

    let sink = Arc::new(Sink::default());
    let mut total = Stats::default();
    let seed_calls = seed_state(&world, &sink, &mut total).await?;
    println!(
        "seeded {} tips over 2 apps ({seed_calls} signed calls); serve pid {serve_pid}, API {}",
        total.accepted_tips.len(),
        stack.api_url
    );

    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(args.concurrency * 2)
        .timeout(Duration::from_secs(args.timeout_secs))
        .build()?;
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let died: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let start = Instant::now();

    // memory and liveness of serve, and progress
    let samples: Arc<Mutex<Vec<Sample>>> = Arc::new(Mutex::new(Vec::new()));
    let sampler = {
        let (samples, done, stop, serve, died) = (
            samples.clone(),
            done.clone(),
            stop.clone(),
            serve.clone(),
            died.clone(),
        );
        let (interval, n) = (args.rss_interval_secs.max(1), args.requests);
        tokio::spawn(async move {
            let mut last_print = Instant::now();
            loop {
                if let Some(kb) = rss_kb(serve_pid) {
                    let mut s = samples.lock().unwrap_or_else(|p| p.into_inner());
                    s.push(Sample {
                        secs: start.elapsed().as_secs_f64(),
                        done: done.load(Ordering::Relaxed),
                        rss_kb: kb,
                    });
                }
                let exited = serve
                    .lock()
                    .ok()
                    .and_then(|mut p| p.child.try_wait().ok().flatten());
                if let Some(status) = exited {
                    *died.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some(format!("serve exited during the run: {status}"));
                    stop.store(true, Ordering::Relaxed);
                    return;
                }
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                if last_print.elapsed() >= Duration::from_secs(15) {
                    last_print = Instant::now();
                    let d = done.load(Ordering::Relaxed);
                    let secs = start.elapsed().as_secs_f64();
                    println!(
                        "  {d}/{n} requests, {:.0} s, {:.0}/s, serve RSS {:.1} MB",
                        secs,
                        d as f64 / secs,
                        mb(rss_kb(serve_pid).unwrap_or(0))
                    );
                }
                tokio::time::sleep(Duration::from_secs(interval)).await;
            }
        })
    };

    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (http, world, sink, next, done, stop) = (
            http.clone(),
            world.clone(),
            sink.clone(),
            next.clone(),
            done.clone(),
            stop.clone(),
        );
        let base = stack.api_url.clone();
        let n = args.requests;
        tasks.push(tokio::spawn(async move {
            let mut st = Stats::default();
            while !stop.load(Ordering::Relaxed) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let mut rng = StdRng::seed_from_u64(mix(seed, i));
                let plan = gen::plan(&mut rng, &world, i);
                let out = send(&http, &base, &plan).await;
                check::evaluate(&plan, &out, &world, &mut st, &sink);
                done.fetch_add(1, Ordering::Relaxed);
            }
            st
        }));
    }
    for t in tasks {
        total.merge(t.await?);
    }
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    if let Some(kb) = rss_kb(serve_pid) {
        samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Sample {
                secs: start.elapsed().as_secs_f64(),
                done: done.load(Ordering::Relaxed),
                rss_kb: kb,
            });
    }
    total.verify_late(&sink);
    let died = died.lock().unwrap_or_else(|p| p.into_inner()).clone();

    // stop serve gracefully, then read the database: nothing is in flight any more
    let shutdown = {
        let _ = Command::new("kill")
            .args(["-TERM", &serve_pid.to_string()])
            .status();
        let t = Instant::now();
        let mut status = None;
        while t.elapsed() < Duration::from_secs(20) {
            let s = serve
                .lock()
                .ok()
                .and_then(|mut p| p.child.try_wait().ok().flatten());
            if s.is_some() {
                status = s;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        status
    };
    let store = Store::connect(db_url, 2).await?;
    let counts: BTreeMap<String, i64> = store.row_counts().await?.into_iter().collect();
    store.pool().close().await;
    drop(hubsim);
    drop(payee_hub);
    let (serve_panics, serve_errors, serve_lines) = scan_log(&dir.join("serve.stderr"));
    let (hub_panics, _, hub_lines) = scan_log(&dir.join("hubsim.stderr"));

    let samples = samples.lock().unwrap_or_else(|p| p.into_inner());
    report(&Report {
        args,
        seed,
        stats: &total,
        elapsed,
        seed_calls,
        samples: &samples,
        died,
        shutdown: shutdown.map(|s| s.to_string()),
        serve_panics,
        serve_errors,
        serve_lines,
        hub_panics,
        hub_lines,
        counts,
        sink: &sink,
        dir,
    })
}

struct Report<'a> {
    args: &'a Args,
    seed: u64,
    stats: &'a Stats,
    elapsed: Duration,
    seed_calls: u64,
    samples: &'a [Sample],
    died: Option<String>,
    shutdown: Option<String>,
    serve_panics: u64,
    serve_errors: u64,
    serve_lines: Vec<String>,
    hub_panics: u64,
    hub_lines: Vec<String>,
    counts: BTreeMap<String, i64>,
    sink: &'a Sink,
    dir: &'a Path,
}

/// Prints the summary; true when nothing was found.
fn report(r: &Report) -> Result<bool> {
    let st = r.stats;
    let mut problems: Vec<String> = st
        .violations
        .iter()
        .map(|(k, v)| format!("{v} × {k}"))
        .collect();
    let secs = r.elapsed.as_secs_f64();
    println!("\n== fiber-link-apifuzz summary (seed {})", r.seed);
    println!(
        "requests sent: {} of {} ({} answered), in {:.1} s = {:.0} requests/s, concurrency {}",
        st.sent,
        r.args.requests,
        st.answered,
        secs,
        st.sent as f64 / secs,
        r.args.concurrency
    );
    println!("\n-- by target: requests, then status: count");
    for (t, m) in &st.by_target {
        let n: u64 = m.values().sum();
        let parts: Vec<String> = m.iter().map(|(s, c)| format!("{s}:{c}")).collect();
        println!("{t:<34} {n:>8}  {}", parts.join(" "));
    }
    println!("\n-- by status");
    let parts: Vec<String> = st
        .by_status
        .iter()
        .map(|(s, c)| format!("{s}: {c}"))
        .collect();
    println!("{}", parts.join(", "));
    println!("\n-- by target, status, JSON-RPC code and data.reason");
    for (k, c) in &st.by_reason {
        println!("{c:>8}  {k}");
    }
    println!("\n-- mutations (body class: requests)");
    let parts: Vec<String> = st
        .by_class
        .iter()
        .map(|(s, c)| format!("{s}: {c}"))
        .collect();
    println!("{}", parts.join(", "));
    println!("-- header mutations (class: requests)");
    let parts: Vec<String> = st
        .by_header_class
        .iter()
        .map(|(s, c)| format!("{s}: {c}"))
        .collect();
    println!("{}", parts.join(", "));
    let broken: u64 = st.auth_broken.values().sum();
    println!(
        "\n-- authentication: {broken} requests signed so that they must be refused; {} passed authentication in all",
        st.passed_auth
    );
    for (k, c) in &st.auth_broken {
        println!("{c:>8}  {k}");
    }
    if !st.undocumented.is_empty() {
        println!(
            "\n-- statuses outside docs/api.md's list for the route (framework answers; not 5xx)"
        );
        for (k, c) in &st.undocumented {
            println!("{c:>8}  {k}");
        }
    }
    if !st.excused.is_empty() {
        println!("\n-- transport errors not counted as violations: the request had over 100 header lines, which the service refuses with 431 and a closed connection while the client still sends the body");
        for (k, c) in &st.excused {
            println!("{c:>8}  {k}");
        }
    }
    let fivexx: u64 = st
        .by_status
        .iter()
        .filter(|(s, _)| s.starts_with('5'))
        .map(|(_, c)| c)
        .sum();
    println!("\n-- 5xx answers: {fivexx}");

    println!(
        "-- panics: serve {}, hubsim {}; serve stderr ERROR lines: {}",
        r.serve_panics, r.hub_panics, r.serve_errors
    );
    for l in r.serve_lines.iter().chain(&r.hub_lines) {
        println!("   {l}");
    }
    if r.serve_panics > 0 {
        problems.push(format!(
            "{} panic line(s) in serve's stderr",
            r.serve_panics
        ));
    }
    if r.hub_panics > 0 {
        problems.push(format!("{} panic line(s) in hubsim's stderr", r.hub_panics));
    }
    match &r.died {
        Some(d) => problems.push(d.clone()),
        None => println!(
            "-- serve stayed alive; after SIGTERM: {}",
            r.shutdown
                .as_deref()
                .unwrap_or("still running after 20 s (killed)")
        ),
    }

    // memory: the value once 10 % of the requests were answered is the warm-up figure
    if let (Some(first), Some(last)) = (r.samples.first(), r.samples.last()) {
        let warm_at = r.args.requests / 10;
        let warm = r
            .samples
            .iter()
            .find(|s| s.done >= warm_at && s.secs >= 4.0)
            .unwrap_or(last);
        let peak = r.samples.iter().map(|s| s.rss_kb).max().unwrap_or(0);
        let limit = warm.rss_kb as f64 * 1.3 + 20.0 * 1024.0;
        let flat = (last.rss_kb as f64) <= limit;
        println!(
            "-- serve RSS ({} samples): first {:.1} MB, after warm-up {:.1} MB (at {} requests), peak {:.1} MB, last {:.1} MB; limit 130 % + 20 MB of warm-up = {:.1} MB: {}",
            r.samples.len(),
            mb(first.rss_kb),
            mb(warm.rss_kb),
            warm.done,
            mb(peak),
            mb(last.rss_kb),
            limit / 1024.0,
            if flat { "flat" } else { "GROWING" }
        );
        let marks: Vec<String> = (0..=10)
            .filter_map(|k| {
                let want = r.args.requests * k / 10;
                r.samples
                    .iter()
                    .find(|s| s.done >= want)
                    .map(|s| format!("{}%:{:.0}", k * 10, mb(s.rss_kb)))
            })
            .collect();
        println!("   RSS MB by progress: {}", marks.join(" "));
        if !flat {
            problems.push(format!(
                "serve's memory grew from {:.1} MB to {:.1} MB",
                mb(warm.rss_kb),
                mb(last.rss_kb)
            ));
        }
    } else {
        problems.push("no memory sample of serve".into());
    }

    // the database against what accepted requests created
    println!("\n-- database rows vs what accepted requests created");
    let tips = st.accepted_tips.len() as i64;
    let users = st.accepted_users.len() as i64;
    let withdrawals = st.accepted_withdrawals.len() as i64;
    let nonces = (st.passed_auth + r.seed_calls) as i64;
    let expect: Vec<(&str, i64, String)> = vec![
        ("apps", 2, "the two apps created".into()),
        (
            "tip_intents",
            tips,
            format!("{tips} distinct tip ids in 2xx answers with a result"),
        ),
        (
            "tip_invoices",
            tips,
            "the hub's invoice of each of those tips".into(),
        ),
        (
            "users",
            users,
            format!("{users} distinct (app, user) of accepted tips"),
        ),
        (
            "withdrawals",
            withdrawals,
            format!("{withdrawals} withdrawals accepted"),
        ),
        ("withdrawal_events", 0, "no withdrawal accepted".into()),
        (
            "withdrawal_policies",
            0,
            "written only with an accepted withdrawal".into(),
        ),
        (
            "ledger_transactions",
            0,
            "no settlement (no worker) and no withdrawal".into(),
        ),
        ("ledger_entries", 0, "as ledger_transactions".into()),
        ("accounts", 0, "made only by ledger postings".into()),
        (
            "used_nonces",
            nonces,
            format!(
                "{} requests that passed authentication + {} seeding calls",
                st.passed_auth, r.seed_calls
            ),
        ),
        (
            "audit_log",
            2 + tips,
            format!("2 app creations + {tips} tip.created (no state changes without a worker)"),
        ),
    ];
    for (table, want, why) in &expect {
        let got = r.counts.get(*table).copied().unwrap_or(-1);
        let ok = got == *want;
        println!(
            "{table:<20} {got:>9} rows, expected {want:>9} ({why}): {}",
            if ok { "ok" } else { "MISMATCH" }
        );
        if !ok {
            problems.push(format!("{table}: {got} rows, expected {want}"));
        }
    }
    for (t, n) in &r.counts {
        if !expect.iter().any(|(e, _, _)| e == t) {
            println!("{t:<20} {n:>9} rows (not compared)");
        }
    }

    let records = r.sink.records.lock().unwrap_or_else(|p| p.into_inner());
    let path = r.dir.join("violations.jsonl");
    let mut text = String::new();
    for v in records.iter() {
        text.push_str(&v.to_string());
        text.push('\n');
    }
    std::fs::write(&path, text)?;
    println!("\n-- violations: {}", st.violation_count());
    for v in records.iter().take(10) {
        let s = v.to_string();
        println!("   {}", s.chars().take(1500).collect::<String>());
    }
    if !records.is_empty() {
        println!(
            "   (first {} in {}, with the exact requests)",
            records.len(),
            path.display()
        );
    }
    if problems.is_empty() {
        println!("RESULT: PASS — no violation in {} requests", st.sent);
        Ok(true)
    } else {
        println!("RESULT: FAIL");
        for p in &problems {
            println!("  - {p}");
        }
        Ok(false)
    }
}
