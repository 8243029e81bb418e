//! `fiber-link chaos` (run by `scripts/chaos.sh`, hidden from the help): two API processes, two
//! workers and the hub simulator over one private Postgres, mixed traffic for a while, and faults
//! nobody scripted test by test — SIGKILL of a random process every few seconds (started again),
//! hub errors, latency and outages, a pause and a resume, and one Postgres crash (immediate
//! shutdown) mid-run. Then the traffic stops, the workers drain, and the books are checked against
//! the simulator's own records (see [`check`]) and by `fiber-link reconcile`.
//!
//! The fault schedule and every traffic decision come from one seed, printed at the start: the
//! same seed replays the same schedule (the timing of the processes themselves still varies).

mod check;
mod procs;
mod traffic;

use anyhow::{anyhow, bail, Result};
use procs::{Kind, Launcher, Proc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct ChaosArgs {
    /// How long traffic and faults run, in seconds.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// The seed of the fault schedule and the traffic (random when omitted; printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Where the private Postgres, the logs and the configuration go (a new temporary
    /// directory when omitted; removed after a clean run).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Concurrent tippers.
    #[arg(long, default_value_t = 4)]
    tippers: usize,
}

/// A fault, at a time into the run.
#[derive(Clone, Debug)]
enum Fault {
    /// SIGKILL process `n` (of the APIs and workers), start it again after `down`.
    Kill { n: usize, down: Duration },
    /// `sim_set_faults` with `faults` for `for_`.
    Hub { faults: Value, for_: Duration },
    /// Postgres stops as a crash would, and starts again.
    PostgresCrash,
}

/// The fault schedule of a run: every few seconds a kill, every few more a hub fault, one
/// Postgres crash at 40 % of the run.
fn schedule(rng: &mut StdRng, run: Duration, procs: usize) -> Vec<(Duration, Fault)> {
    let mut out = Vec::new();
    let mut t = Duration::from_millis(rng.gen_range(1500..3000));
    while t < run {
        out.push((
            t,
            Fault::Kill {
                n: rng.gen_range(0..procs),
                down: Duration::from_millis(rng.gen_range(200..1500)),
            },
        ));
        t += Duration::from_millis(rng.gen_range(2000..5000));
    }
    let mut t = Duration::from_millis(rng.gen_range(3000..6000));
    while t < run {
        let for_ = Duration::from_millis(rng.gen_range(1000..4000));
        let faults = match rng.gen_range(0..3) {
            0 => json!({"latency_ms": rng.gen_range(100..1500)}),
            1 => json!({"error_rate": 0.3}),
            _ => json!({"down": true}),
        };
        out.push((t, Fault::Hub { faults, for_ }));
        t += Duration::from_millis(rng.gen_range(6000..12000));
    }
    out.push((run.mul_f64(0.4), Fault::PostgresCrash));
    out.sort_by_key(|f| f.0);
    out
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn config(hub_port: u16, api_port: u16) -> String {
    format!(
        r#"currency = "Fibd"
invoice_expiry_secs = 15
public_url = "http://127.0.0.1:{api_port}"
[hub]
url = "http://127.0.0.1:{hub_port}"
timeout_ms = 1000
[api]
ops_listen = "127.0.0.1:0"
db_pool = 8
rate_per_app_method = {{ per_second = 100000, burst = 100000 }}
rate_per_app_user = {{ per_second = 100000, burst = 100000 }}
[worker]
listen = "127.0.0.1:0"
lease_secs = 3
idle_poll_ms = 50
db_pool = 8
[schedule]
fresh_interval = 300
fresh_window = 60000
open_interval = 1000
watched_interval = 200
expiry_grace = 500
late_initial = 500
late_max = 2000
late_window = 120000
error_base = 200
error_max = 2000
[withdrawals]
lease_secs = 4
invoice_expiry_margin_secs = 1
stuck_after_secs = 600
[withdrawals.policy.CKB]
min = "0.01"
approval_threshold = "30"
cooldown_secs = 0
"#
    )
}

pub async fn run(a: ChaosArgs) -> Result<i32> {
    let seed = a.seed.unwrap_or_else(rand::random);
    println!(
        "chaos: seed {seed} (replay with --seed {seed}), {} s of traffic",
        a.seconds
    );
    let run_for = Duration::from_secs(a.seconds.max(5));
    let mut rng = StdRng::seed_from_u64(seed);
    let (dir, temporary) = match &a.dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("fiber-link-chaos-{seed}-{}", std::process::id())),
            true,
        ),
    };
    std::fs::create_dir_all(&dir)?;
    let dir = dir.canonicalize()?;

    // A private Postgres: it is crashed mid-run, which nothing else may share.
    let pg = crate::dev::PrivatePg::new(&dir)?;
    let pg_port = free_port()?;
    let admin = pg.start(pg_port)?;
    let database_url = format!("postgres://postgres@127.0.0.1:{pg_port}/chaos");
    {
        let a = fiber_link_store::Store::connect(&admin, 1).await?;
        a.create_database("chaos").await?;
        a.pool().close().await;
    }
    let store = fiber_link_store::Store::connect(&database_url, 4).await?;
    store.migrate().await?;

    let (hub_port, api_ports) = (free_port()?, [free_port()?, free_port()?]);
    let cfg_path = dir.join("chaos.toml");
    std::fs::write(&cfg_path, config(hub_port, api_ports[0]))?;
    let master_hex = fiber_link_core::crypto::MasterKey::generate().to_hex();
    let launcher = Launcher {
        exe: std::env::current_exe()?,
        config: cfg_path,
        dir: dir.clone(),
        database_url: database_url.clone(),
        master_hex,
        hub_url: format!("http://127.0.0.1:{hub_port}"),
    };
    let mut hubsim = launcher.hubsim(hub_port)?;
    let (code, out, err) =
        launcher.operator(&["app", "create", "--name", "Chaos forum", "--json"])?;
    if code != 0 {
        bail!("app create: {out}{err}");
    }
    let app: Value = serde_json::from_str(&out)?;
    let app_id = app["app_id"].as_str().unwrap_or_default().to_string();
    let secret = app["secret"].as_str().unwrap_or_default().to_string();

    let mut procs = vec![
        Proc::new(Kind::Api, "api-0", Some(api_ports[0])),
        Proc::new(Kind::Api, "api-1", Some(api_ports[1])),
        Proc::new(Kind::Worker, "worker-0", None),
        Proc::new(Kind::Worker, "worker-1", None),
    ];
    for p in &mut procs {
        launcher.start(p)?;
    }
    let apis: Vec<String> = api_ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    traffic::wait_live(&apis).await?;

    let faults = schedule(&mut rng, run_for, procs.len());
    let kills = faults
        .iter()
        .filter(|f| matches!(f.1, Fault::Kill { .. }))
        .count();
    println!(
        "chaos: {} faults scheduled ({kills} kills, {} hub faults, 1 Postgres crash); dir {}",
        faults.len(),
        faults.len() - kills - 1,
        dir.display()
    );

    let t = Arc::new(traffic::Traffic::new(
        apis,
        launcher.hub_url.clone(),
        app_id.clone(),
        secret,
    ));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..a.tippers {
        let (t, s) = (t.clone(), rng.gen());
        tasks.spawn(async move { t.tipper(i, s).await });
    }
    for i in 0..2 {
        let (t, s) = (t.clone(), rng.gen());
        tasks.spawn(async move { t.withdrawer(i, s).await });
    }
    {
        let (t, s) = (t.clone(), rng.gen());
        tasks.spawn(async move { t.resolver(s).await });
    }
    let launcher = Arc::new(launcher);
    {
        let (t, l, app, s) = (t.clone(), launcher.clone(), app_id.clone(), rng.gen());
        let pause_at = run_for.mul_f64(0.25);
        tasks.spawn(async move { t.operator(l, app, pause_at, s).await });
    }

    // the fault schedule, in time order
    let mut applied = (0u32, 0u32, 0u32);
    for (at, f) in &faults {
        let now = started.elapsed();
        if *at > now {
            tokio::time::sleep(*at - now).await;
        }
        match f {
            Fault::Kill { n, down } => {
                procs[*n].kill();
                applied.0 += 1;
                tokio::time::sleep(*down).await;
                launcher.start(&mut procs[*n])?;
            }
            Fault::Hub { faults, for_ } => {
                t.sim("sim_set_faults", faults.clone()).await?;
                applied.1 += 1;
                tokio::time::sleep(*for_).await;
                t.sim("sim_set_faults", json!({})).await?;
            }
            Fault::PostgresCrash => {
                let pg_dir = dir.clone();
                let restart = tokio::task::spawn_blocking(move || {
                    let pg = crate::dev::PrivatePg::new(&pg_dir)?;
                    pg.crash_and_restart(pg_port)
                });
                restart.await.map_err(|e| anyhow!("{e}"))??;
                applied.2 += 1;
            }
        }
        // a process that ended by itself (not killed here) is counted, and started again
        for p in procs.iter_mut() {
            if !p.running() {
                t.note_exit(&p.name);
                launcher.start(p)?;
            }
        }
    }
    let left = run_for.saturating_sub(started.elapsed());
    tokio::time::sleep(left).await;

    // stop the traffic, heal everything, let the workers drain
    t.stop();
    while let Some(r) = tasks.join_next().await {
        r.map_err(|e| anyhow!("a traffic task failed: {e}"))??;
    }
    t.sim("sim_set_faults", json!({})).await?;
    for p in procs.iter_mut() {
        if !p.running() {
            launcher.start(p)?;
        }
    }
    t.finish(&launcher, &app_id).await?;
    let drained = t.drain(&store, Duration::from_secs(150)).await?;

    // the books against the hub's own records
    let records = check::SimRecords::from_json(&t.sim("sim_records", json!({})).await?)?;
    let mut verdict = check::books_against_the_hub(&store, &records).await?;
    if !drained {
        verdict
            .violations
            .push("the workers did not drain within 150 s".into());
    }
    let (code, out, err) = launcher.operator(&["reconcile", "--format", "json"])?;
    let report: Value = serde_json::from_str(&out).unwrap_or(json!({"raw": out}));
    let findings = report["findings"].as_array().map_or(0, Vec::len);
    if code != 0 {
        verdict
            .violations
            .push(format!("fiber-link reconcile exited {code}: {out}{err}"));
    }
    for p in procs::panics(&dir) {
        verdict.violations.push(format!("panic: {p}"));
    }
    for p in procs.iter_mut() {
        p.kill();
    }
    let _ = hubsim.kill();
    let _ = hubsim.wait();

    println!("\n## chaos run (seed {seed}, {} s)", a.seconds);
    for (k, v) in t.figures() {
        println!("  {k}: {v}");
    }
    println!(
        "  faults: {} kills, {} hub faults, {} Postgres crash",
        applied.0, applied.1, applied.2
    );
    for (k, v) in &verdict.figures {
        println!("  {k}: {v}");
    }
    println!("  reconcile findings: {findings}");
    if verdict.violations.is_empty() {
        println!("chaos: clean (0 violations)");
        pg.destroy().ok();
        if temporary {
            std::fs::remove_dir_all(&dir).ok();
        }
        Ok(0)
    } else {
        println!("chaos: {} VIOLATIONS", verdict.violations.len());
        for v in &verdict.violations {
            println!("  ! {v}");
        }
        pg.stop().ok();
        println!(
            "logs and the database's files are kept in {}",
            dir.display()
        );
        Ok(1)
    }
}
