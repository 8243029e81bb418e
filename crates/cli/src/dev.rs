//! `fiber-link dev`: the whole product on one machine with no configuration — a private Postgres
//! cluster under `./.fiber-link/dev/`, the migrations, the hub simulator, the API, the worker, a
//! demo app with printed credentials and the demo community page.

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use fiber_link_api::{ApiSettings, AppState, Rate};
use fiber_link_core::crypto::{generate_app_secret, MasterKey};
use fiber_link_core::{Amount, Asset, Assets, Script};
use fiber_link_fnn::{HubClient, HubConfig};
use fiber_link_hubsim::{HubSim, SimOptions, SimUdt};
use fiber_link_store::Store;
use fiber_link_worker::{Watcher, WorkerSettings};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;

#[derive(Args)]
pub struct DevArgs {
    /// Where the private database, keys and dev.env live.
    #[arg(long, default_value = ".fiber-link/dev")]
    dir: PathBuf,
    /// Start from scratch: delete the directory's database and keys first.
    #[arg(long)]
    reset: bool,
    /// Address every server binds to.
    #[arg(long, default_value = "127.0.0.1")]
    bind: String,
    #[arg(long, default_value_t = 8080)]
    api_port: u16,
    #[arg(long, default_value_t = 8227)]
    hub_port: u16,
    #[arg(long, default_value_t = 8090)]
    demo_port: u16,
    /// Port of the private Postgres cluster (ignored with DATABASE_URL).
    #[arg(long, default_value_t = 55433)]
    pg_port: u16,
    /// Port of the operator console (its demo operator's name, password and TOTP key are
    /// printed and written to dev.env).
    #[arg(long, default_value_t = 8083)]
    console_port: u16,
    /// Console sessions unused this long end (for tests of expiry).
    #[arg(long, default_value_t = 1800, hide = true)]
    console_idle_secs: u64,
}

/// The demo's test UDT: its own decimals and type script, whitelisted by the simulated hub.
pub fn demo_udt() -> Script {
    Script {
        code_hash: "0x50bd8d6680b8b9cf98b73f3c08faf8b2a21914311954118ad6609be6e78a1b95".into(),
        hash_type: "data2".into(),
        args: format!("0x{}", "7e".repeat(32)),
    }
}

pub fn demo_assets() -> Assets {
    Assets::new(vec![
        Asset::ckb(Amount::from_base_units(10_000 * 100_000_000)),
        Asset {
            symbol: "DEMO".into(),
            decimals: 6,
            udt_type_script: Some(demo_udt()),
            max_tip: Amount::from_base_units(1_000 * 1_000_000),
        },
    ])
    .expect("the demo assets are valid")
}

/// A private Postgres cluster run with the machine's PostgreSQL binaries (also the chaos run's).
pub(crate) struct PrivatePg {
    bin: PathBuf,
    /// Holds `data/`, the socket and `postgres.log`.
    home: PathBuf,
    data: PathBuf,
    run_as: Option<String>,
}

fn find_pg_bin() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").exists() && b.join("pg_ctl").exists())
        .collect();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop().or_else(|| {
        let out = Command::new("sh")
            .args(["-c", "command -v initdb"])
            .output()
            .ok()?;
        let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        p.parent()
            .filter(|d| d.join("pg_ctl").exists())
            .map(Path::to_path_buf)
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Installs the PostgreSQL server binaries with apt when they are missing and this runs as root
/// (the test command does the same); otherwise `PrivatePg::new` says what to run.
fn ensure_pg_installed() -> Result<()> {
    if find_pg_bin().is_some()
        || !is_root()
        || Command::new("apt-get").arg("--version").output().is_err()
    {
        return Ok(());
    }
    eprintln!(
        "installing the PostgreSQL server binaries with apt-get (no system cluster is created)..."
    );
    std::fs::create_dir_all("/etc/postgresql-common")?;
    let conf = Path::new("/etc/postgresql-common/createcluster.conf");
    let text = std::fs::read_to_string(conf).unwrap_or_default();
    if !text.lines().any(|l| l.starts_with("create_main_cluster")) {
        std::fs::write(conf, format!("{text}create_main_cluster = false\n"))?;
    }
    let run = |args: &[&str]| -> Result<()> {
        let st = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .context("running apt-get")?;
        if !st.success() {
            bail!("apt-get {} failed; install PostgreSQL yourself (apt-get install -y postgresql) or set DATABASE_URL", args.join(" "));
        }
        Ok(())
    };
    run(&["update", "-qq"])?;
    run(&["install", "-y", "-qq", "postgresql"])?;
    let has_user = Command::new("id")
        .args(["-u", "postgres"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !has_user {
        let _ = Command::new("useradd")
            .args([
                "--system",
                "--home-dir",
                "/var/lib/postgresql",
                "--shell",
                "/usr/sbin/nologin",
                "postgres",
            ])
            .status();
    }
    Ok(())
}

impl PrivatePg {
    pub(crate) fn new(dir: &Path) -> Result<PrivatePg> {
        let bin = find_pg_bin().ok_or_else(|| {
            anyhow!(
                "PostgreSQL server binaries (initdb, pg_ctl) were not found.\n\
                 Install them with: sudo apt-get install -y postgresql\n\
                 or set DATABASE_URL to a Postgres database to use instead."
            )
        })?;
        // Postgres refuses to run as root; as root, the cluster belongs to the postgres user.
        let run_as = if is_root() {
            let ok = Command::new("id")
                .args(["-u", "postgres"])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            if !ok {
                bail!("running as root, the private Postgres needs the system user 'postgres': sudo useradd --system postgres");
            }
            Some("postgres".to_string())
        } else {
            None
        };
        // As root, the cluster cannot live under the dev directory when that is not reachable by
        // the postgres user (a clone under /root, a private temp dir): it lives in
        // /var/tmp/fiber-link-dev/<hash of the dev directory>, one per dev directory.
        let home = if run_as.is_some() {
            std::fs::create_dir_all(dir)?;
            let abs = dir.canonicalize()?;
            let digest = hex::encode(&Sha256::digest(abs.to_string_lossy().as_bytes())[..8]);
            PathBuf::from("/var/tmp/fiber-link-dev").join(digest)
        } else {
            dir.join("pg")
        };
        Ok(PrivatePg {
            bin,
            data: home.join("data"),
            home,
            run_as,
        })
    }

    fn cmd(&self, tool: &str) -> Command {
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(self.bin.join(tool));
                c
            }
            None => Command::new(self.bin.join(tool)),
        }
    }

    fn run(&self, mut c: Command, what: &str) -> Result<String> {
        let out = c.output().with_context(|| format!("running {what}"))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() {
            bail!("{what} failed:\n{text}");
        }
        Ok(text)
    }

    fn chown(&self, path: &Path) -> Result<()> {
        if let Some(user) = &self.run_as {
            self.run(
                {
                    let mut c = Command::new("chown");
                    c.args(["-R", user]).arg(path);
                    c
                },
                "chown",
            )?;
        }
        Ok(())
    }

    fn is_running(&self) -> bool {
        let mut c = self.cmd("pg_ctl");
        c.arg("status").arg("-D").arg(&self.data);
        c.output().map(|o| o.status.success()).unwrap_or(false)
    }

    pub(crate) fn stop(&self) -> Result<()> {
        if self.data.join("PG_VERSION").exists() && self.is_running() {
            let mut c = self.cmd("pg_ctl");
            c.args(["stop", "-m", "fast", "-w", "-D"]).arg(&self.data);
            self.run(c, "pg_ctl stop")?;
        }
        Ok(())
    }

    /// Stops the server and deletes the cluster (a throw-away one).
    pub(crate) fn destroy(&self) -> Result<()> {
        self.stop()?;
        std::fs::remove_dir_all(&self.home)?;
        Ok(())
    }

    /// Stops the server as a crash would (`pg_ctl stop -m immediate`: no checkpoint, every
    /// connection cut; the next start replays the write-ahead log), then starts it again.
    pub(crate) fn crash_and_restart(&self, port: u16) -> Result<()> {
        let mut c = self.cmd("pg_ctl");
        c.args(["stop", "-m", "immediate", "-w", "-D"])
            .arg(&self.data);
        self.run(c, "pg_ctl stop -m immediate")?;
        self.start(port).map(|_| ())
    }

    /// Initialises the cluster on first use and starts it on `port`. A cluster left running by a
    /// crashed `dev` is stopped first, so nothing from a previous run blocks this one.
    pub(crate) fn start(&self, port: u16) -> Result<String> {
        if !self.data.join("PG_VERSION").exists() {
            std::fs::create_dir_all(&self.data)?;
            self.chown(&self.home)?;
            let mut c = self.cmd("initdb");
            c.arg("-D").arg(&self.data).args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]);
            self.run(c, "initdb")?;
        }
        self.chown(&self.home)?;
        self.stop()?;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
            bail!("port {port} (Postgres) is in use; choose another with --pg-port");
        }
        let sock = self.home.canonicalize()?;
        let log = self.home.join("postgres.log");
        let mut c = self.cmd("pg_ctl");
        c.args(["start", "-w", "-t", "60", "-D"])
            .arg(&self.data)
            .arg("-l")
            .arg(&log)
            .arg("-o")
            .arg(format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1",
                sock.display()
            ));
        self.run(c, "pg_ctl start")
            .map_err(|e| anyhow!("{e}\n(see {})", log.display()))?;
        Ok(format!("postgres://postgres@127.0.0.1:{port}/postgres"))
    }
}

fn read_or_create_key(path: &Path) -> Result<String> {
    if let Ok(s) = std::fs::read_to_string(path) {
        return Ok(s.trim().to_string());
    }
    let mut k = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut k);
    let hex = hex::encode(k);
    write_private(path, &hex)?;
    Ok(hex)
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

async fn bind(addr: &str, port: u16, what: &str, flag: &str) -> Result<TcpListener> {
    TcpListener::bind((addr, port))
        .await
        .with_context(|| format!("cannot listen on {addr}:{port} for the {what}: the port is in use or not allowed; choose another with {flag}"))
}

/// The demo app, created on first start and kept in `app.json`.
async fn demo_app(store: &Store, master: &MasterKey, dir: &Path) -> Result<(String, String)> {
    let path = dir.join("app.json");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let v: serde_json::Value = serde_json::from_str(&text)?;
        let (id, secret) = (
            v["app_id"].as_str().unwrap_or_default(),
            v["secret"].as_str().unwrap_or_default(),
        );
        if store.app_name(id).await?.is_some() {
            return Ok((id.to_string(), secret.to_string()));
        }
    }
    let mut b = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut b);
    let id = format!("app_{}", hex::encode(b));
    let secret = generate_app_secret();
    store
        .create_app(
            &id,
            "Demo forum",
            master.secret_box().seal(&format!("{id}/1"), &secret),
            "dev",
        )
        .await?;
    write_private(
        &path,
        &serde_json::json!({"app_id": id, "secret": secret}).to_string(),
    )?;
    Ok((id, secret))
}

pub async fn run(a: DevArgs, shutdown: watch::Receiver<bool>) -> Result<()> {
    let started = Instant::now();
    if a.reset && a.dir.exists() {
        if let Ok(pg) = PrivatePg::new(&a.dir) {
            pg.stop()?;
            if pg.home != a.dir.join("pg") {
                let _ = std::fs::remove_dir_all(&pg.home);
            }
        }
        std::fs::remove_dir_all(&a.dir).with_context(|| format!("removing {}", a.dir.display()))?;
    }
    std::fs::create_dir_all(&a.dir).with_context(|| format!("creating {}", a.dir.display()))?;
    // One `dev` per directory; the lock goes away with the process, however it ends.
    let lock = File::create(a.dir.join("dev.lock"))?;
    if lock.try_lock().is_err() {
        bail!(
            "another fiber-link dev is running with {}; stop it or use another --dir",
            a.dir.display()
        );
    }

    // Bind every port first: a busy port is reported before anything starts.
    let hub_l = bind(&a.bind, a.hub_port, "hub simulator", "--hub-port").await?;
    let api_l = bind(&a.bind, a.api_port, "API", "--api-port").await?;
    let demo_l = bind(&a.bind, a.demo_port, "demo page", "--demo-port").await?;
    let console_l = bind(
        &a.bind,
        a.console_port,
        "operator console",
        "--console-port",
    )
    .await?;

    let mut pg = None;
    let db_url = match std::env::var("DATABASE_URL").ok().filter(|s| !s.is_empty()) {
        Some(url) => url,
        None => {
            ensure_pg_installed()?;
            let p = PrivatePg::new(&a.dir)?;
            let fresh = !a.dir.join("master.key").exists();
            if fresh && p.home != a.dir.join("pg") && p.home.exists() {
                // a cluster left from an earlier directory of the same path: its keys are gone
                p.stop()?;
                std::fs::remove_dir_all(&p.home)?;
            }
            // where the cluster is, for the operator (and for tests to clean up)
            std::fs::write(a.dir.join("pg-home"), p.home.to_string_lossy().as_bytes())?;
            let url = p.start(a.pg_port)?;
            pg = Some(p);
            url
        }
    };
    let result = serve_all(
        &a,
        &db_url,
        Listeners {
            hub: hub_l,
            api: api_l,
            demo: demo_l,
            console: console_l,
        },
        shutdown,
        started,
    )
    .await;
    if let Some(p) = pg {
        eprintln!("stopping Postgres");
        p.stop()?;
    }
    drop(lock);
    result
}

struct Listeners {
    hub: TcpListener,
    api: TcpListener,
    demo: TcpListener,
    console: TcpListener,
}

/// The configuration file that describes this dev instance, so that every operator command of
/// the binary runs against it (`FIBER_LINK_CONFIG` in dev.env).
fn dev_config(a: &DevArgs, db_url: &str, host: &str) -> Result<crate::config::FileConfig> {
    use crate::config::{AssetSection, ConsoleSection, FileConfig, PolicySection};
    let mut f = FileConfig {
        database_url: Some(db_url.to_string()),
        listen: format!("{}:{}", a.bind, a.api_port),
        public_url: Some(format!("http://{host}:{}", a.api_port)),
        currency: "Fibd".into(),
        master_key_file: Some(std::path::absolute(a.dir.join("master.key"))?),
        console: ConsoleSection {
            listen: Some(format!("{}:{}", a.bind, a.console_port)),
            idle_timeout_secs: a.console_idle_secs,
            // plain HTTP on this machine
            secure_cookies: false,
            ..ConsoleSection::default()
        },
        ..FileConfig::default()
    };
    f.hub.url = format!("http://{host}:{}", a.hub_port);
    f.assets = demo_assets()
        .iter()
        .map(|x| AssetSection {
            symbol: x.symbol.clone(),
            decimals: x.decimals,
            max_tip: fiber_link_core::format_decimal(x.max_tip, x.decimals),
            udt_type_script: x.udt_type_script.clone(),
        })
        .collect();
    for x in demo_assets().iter() {
        f.withdrawals
            .policy
            .insert(x.symbol.clone(), PolicySection::default());
    }
    Ok(f)
}

/// The console's demo operator (an admin, second factor enrolled), created on first start and
/// kept in `console.json`: its name, password and TOTP key.
async fn demo_operator(
    store: &Store,
    master: &MasterKey,
    dir: &Path,
) -> Result<(String, String, String)> {
    const NAME: &str = "demo";
    let path = dir.join("console.json");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let v: serde_json::Value = serde_json::from_str(&text)?;
        let (p, t) = (
            v["password"].as_str().unwrap_or_default(),
            v["totp_secret"].as_str().unwrap_or_default(),
        );
        if store.operator(NAME).await?.is_some_and(|o| o.enrolled) {
            return Ok((NAME.into(), p.into(), t.into()));
        }
    }
    if store.operator(NAME).await?.is_some() {
        store.remove_operator(NAME, "dev").await?;
    }
    let password = crate::accounts::generate_password();
    let totp = fiber_link_core::totp::generate_secret();
    crate::accounts::add(store, NAME, "admin", &password, "dev").await?;
    store
        .enrol_operator(
            NAME,
            &master.secret_box().seal(&format!("operator/{NAME}"), &totp),
        )
        .await?;
    write_private(
        &path,
        &serde_json::json!({"name": NAME, "password": password, "totp_secret": totp}).to_string(),
    )?;
    Ok((NAME.into(), password, totp))
}

async fn serve_all(
    a: &DevArgs,
    db_url: &str,
    l: Listeners,
    shutdown: watch::Receiver<bool>,
    started: Instant,
) -> Result<()> {
    let Listeners {
        hub: hub_l,
        api: api_l,
        demo: demo_l,
        console: console_l,
    } = l;
    let store = Store::connect(db_url, 16)
        .await
        .context("connecting to the dev database")?;
    store.migrate().await.context("applying migrations")?;
    let master = MasterKey::from_hex(&read_or_create_key(&a.dir.join("master.key"))?)
        .map_err(|e| anyhow!(e))?;
    let node_key: [u8; 32] = hex::decode(read_or_create_key(&a.dir.join("hub-node.key"))?)?
        .try_into()
        .map_err(|_| anyhow!("hub-node.key is damaged; run with --reset"))?;

    let host = if a.bind == "0.0.0.0" {
        "127.0.0.1".to_string()
    } else {
        a.bind.clone()
    };
    let hub_url = format!("http://{host}:{}", a.hub_port);
    let api_url = format!("http://{host}:{}", a.api_port);
    let demo_url = format!("http://{host}:{}", a.demo_port);

    let sim = HubSim::new(SimOptions {
        node_key,
        udts: vec![SimUdt {
            name: "DEMO".into(),
            script: demo_udt(),
        }],
        ..Default::default()
    })
    .map_err(|e| anyhow!(e))?;
    let until = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };
    let hub_task = tokio::spawn(sim.serve(hub_l, until(shutdown.clone())));

    let hub = HubClient::new(&HubConfig {
        url: hub_url.clone(),
        token: None,
        timeout: Duration::from_secs(5),
    })
    .map_err(|e| anyhow!(e))?;
    let withdrawals = fiber_link_core::WithdrawalConfig {
        defaults: demo_assets()
            .iter()
            .map(|a| {
                (
                    a.symbol.clone(),
                    fiber_link_core::Policy {
                        allowed: true,
                        min: fiber_link_core::Amount::ZERO,
                        max_per_request: None,
                        author_daily_cap: None,
                        app_daily_cap: None,
                        cooldown_secs: 0,
                        approval_threshold: None,
                    },
                )
            })
            .collect(),
        ..Default::default()
    };
    let settings = ApiSettings {
        assets: demo_assets(),
        withdrawals,
        public_url: Some(api_url.clone()),
        rate_per_app_user: Rate {
            per_second: 20,
            burst: 50,
        },
        ..ApiSettings::default()
    };
    let (app_id, secret) = demo_app(&store, &master, &a.dir).await?;
    let state = AppState::new(store.clone(), hub.clone(), settings, &master);
    let api_task = tokio::spawn(fiber_link_api::serve_api(
        api_l,
        state,
        until(shutdown.clone()),
    ));

    let worker_store = Store::connect(db_url, 8).await?;
    let mut ws = WorkerSettings::new("Fibd".into(), demo_assets());
    ws.schedule.fresh_interval = Duration::from_secs(1);
    let payouts = fiber_link_worker::payouts::Payouts::new(
        worker_store.clone(),
        hub.clone(),
        None,
        fiber_link_worker::payouts::PayoutSettings::default(),
    );
    let payouts_task = tokio::spawn(payouts.run(shutdown.clone()));
    let worker = Watcher::new(worker_store, hub.clone(), ws, master.preimage_key());
    let worker_task = tokio::spawn(worker.run(shutdown.clone()));

    let demo = crate::demo::router(crate::demo::Demo {
        api_url: api_url.clone(),
        hub_url: hub_url.clone(),
        app_id: app_id.clone(),
        secret: secret.clone(),
        assets: demo_assets(),
    });
    let demo_task = tokio::spawn(fiber_link_api::serve(demo_l, demo, until(shutdown.clone())));

    let file_config = dev_config(a, db_url, &host)?;
    let config_path = std::path::absolute(a.dir.join("dev.toml"))?;
    write_private(
        &config_path,
        &format!(
            "# Written by `fiber-link dev` at every start: this instance, for the operator commands\n\
             # (`set -a; . {}; set +a`, then `fiber-link reconcile`, `fiber-link operator add …`).\n{}",
            a.dir.join("dev.env").display(),
            toml::to_string(&file_config)?
        ),
    )?;
    let cfg = crate::config::Config::from_file_config(file_config)?;
    let (op_name, op_password, op_totp) = demo_operator(&store, &master, &a.dir).await?;
    let console_url = format!("http://{host}:{}", a.console_port);
    let console = crate::console::Console::new(
        std::sync::Arc::new(cfg),
        store.clone(),
        master.clone(),
        hub.clone(),
    );
    let console_task = tokio::spawn(crate::console::serve(
        console_l,
        console,
        until(shutdown.clone()),
    ));

    let env_path = a.dir.join("dev.env");
    let env_tmp = a.dir.join("dev.env.tmp");
    write_private(
        &env_tmp,
        &format!(
            "FIBER_LINK_API_URL={api_url}\nFIBER_LINK_APP_ID={app_id}\nFIBER_LINK_APP_SECRET={secret}\n\
             FIBER_LINK_HUB_URL={hub_url}\nFIBER_LINK_DEMO_URL={demo_url}\n\
             FIBER_LINK_CONSOLE_URL={console_url}\nFIBER_LINK_CONSOLE_USER={op_name}\n\
             FIBER_LINK_CONSOLE_PASSWORD={op_password}\nFIBER_LINK_CONSOLE_TOTP_SECRET={op_totp}\n\
             DATABASE_URL={db_url}\nFIBER_LINK_MASTER_KEY_FILE={}\nFIBER_LINK_CONFIG={}\n",
            std::path::absolute(a.dir.join("master.key"))?.display(),
            config_path.display(),
        ),
    )?;
    // renamed into place, so a reader never sees half a file
    std::fs::rename(&env_tmp, &env_path)?;
    println!(
        "\nFiber Link is running (ready in {:.1} s).\n\n  demo forum:  {demo_url}\n  API:         {api_url}/rpc\n  hub (sim):   {hub_url}\n  app id:      {app_id}\n  app secret:  {secret}\n\n  console:     {console_url}\n  operator:    {op_name}\n  password:    {op_password}\n  TOTP key:    {op_totp}  (add it to an authenticator app)\n\n\
         These are also in {env}. Operator commands against this instance:\n  set -a; . {env}; set +a; cargo run --release -- reconcile\n\nCtrl-C stops everything.\n",
        started.elapsed().as_secs_f64(),
        env = env_path.display()
    );
    let _ = tokio::join!(
        hub_task,
        api_task,
        worker_task,
        payouts_task,
        demo_task,
        console_task
    );
    store.pool().close().await;
    Ok(())
}
