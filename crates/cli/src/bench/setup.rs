//! The benchmark's processes and database: a fresh database and config, then the hub simulator,
//! `migrate`, `app create` and the API server, each a child process of this binary.

use super::BenchArgs;
use anyhow::{bail, Context, Result};
use fiber_link_client::SignedClient;
use fiber_link_core::crypto::MasterKey;
use fiber_link_store::Store;
use rand::RngCore;
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(super) struct Proc {
    pub(super) name: &'static str,
    child: Child,
}

impl Proc {
    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }
    pub(super) fn peak_rss_mb(&self) -> Option<f64> {
        proc_status_kb(self.child.id(), "VmHWM:").map(|kb| kb as f64 / 1024.0)
    }
    pub(super) fn rss_mb(&self) -> Option<f64> {
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

pub(super) fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn db_url_for(admin: &str, name: &str) -> String {
    let (base, rest) = admin.rsplit_once('/').unwrap_or((admin, ""));
    let query = rest.find('?').map(|q| &rest[q..]).unwrap_or("");
    format!("{base}/{name}{query}")
}

pub(super) async fn wait_http(url: &str) -> Result<()> {
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

/// How this binary is started as the benchmark's other processes: on the benchmark database,
/// with its master key and config file.
pub(super) struct Cmds {
    exe: PathBuf,
    db_url: String,
    master: MasterKey,
    config: PathBuf,
}

impl Cmds {
    fn envs(&self, cmd: &mut Command) {
        cmd.env("DATABASE_URL", &self.db_url)
            .env("FIBER_LINK_MASTER_KEY", self.master.to_hex())
            .env("RUST_LOG", "warn")
            .arg("--config")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
    }

    pub(super) fn spawn(&self, name: &'static str, args: &[&str]) -> Result<Proc> {
        self.spawn_env(name, args, &[])
    }

    /// [`Cmds::spawn`] with more environment variables (they win over the config file).
    pub(super) fn spawn_env(
        &self,
        name: &'static str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Proc> {
        let mut cmd = Command::new(&self.exe);
        cmd.args(args);
        self.envs(&mut cmd);
        cmd.envs(env.iter().copied());
        Ok(Proc {
            name,
            child: cmd.spawn().with_context(|| format!("starting {name}"))?,
        })
    }

    /// Runs one `fiber-link` command that prints JSON: seconds taken, exit code, its output.
    pub(super) fn timed_json(&self, args: &[&str]) -> Result<(f64, i32, Value)> {
        let t = Instant::now();
        let mut cmd = Command::new(&self.exe);
        cmd.args(args);
        self.envs(&mut cmd);
        cmd.stdout(Stdio::piped());
        let out = cmd.output()?;
        let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        Ok((
            t.elapsed().as_secs_f64(),
            out.status.code().unwrap_or(-1),
            v,
        ))
    }
}

/// What a scenario runs against: the benchmark database, the hub simulator and the API server
/// (killed when dropped), and a signed client of the benchmark's app.
pub(super) struct Bench {
    /// The connection to DATABASE_URL that creates and drops the benchmark database.
    pub(super) admin: Store,
    pub(super) db_name: String,
    pub(super) db_url: String,
    pub(super) dir: PathBuf,
    pub(super) hub_url: String,
    pub(super) cmds: Cmds,
    pub(super) hubsim: Proc,
    pub(super) serve: Proc,
    pub(super) app_id: String,
    pub(super) client: SignedClient,
    pub(super) store: Store,
}

/// Creates the benchmark database and config, starts the hub simulator, migrates, creates the
/// app and starts the API server.
pub(super) async fn start(a: &BenchArgs) -> Result<Bench> {
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
    let cmds = Cmds {
        exe,
        db_url: db_url.clone(),
        master,
        config,
    };
    println!("fiber-link bench: database {db_name}, hub {hub_url}, API {api_url}");
    let hubsim = cmds.spawn(
        "hubsim",
        &["hubsim", "--listen", &format!("127.0.0.1:{hub_port}")],
    )?;
    wait_tcp(hub_port).await?;
    let out = {
        let mut cmd = Command::new(&cmds.exe);
        cmd.args(["migrate"]);
        cmds.envs(&mut cmd);
        cmd.output()?
    };
    if !out.status.success() {
        bail!("migrate failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let out = {
        let mut cmd = Command::new(&cmds.exe);
        cmd.args(["app", "create", "--name", "Bench forum", "--json"]);
        cmds.envs(&mut cmd);
        cmd.stdout(Stdio::piped());
        cmd.output()?
    };
    let app: Value = serde_json::from_slice(&out.stdout).context("app create --json")?;
    let client = SignedClient::new(
        &api_url,
        app["app_id"].as_str().unwrap_or_default(),
        app["secret"].as_str().unwrap_or_default(),
    );
    let serve = cmds.spawn("serve", &["serve"])?;
    wait_http(&format!("{api_url}/healthz/live")).await?;
    let store = Store::connect(&db_url, 4).await?;
    let app_id = app["app_id"].as_str().unwrap_or_default().to_string();
    Ok(Bench {
        admin,
        db_name,
        db_url,
        dir,
        hub_url,
        cmds,
        hubsim,
        serve,
        app_id,
        client,
        store,
    })
}

async fn sqlx_create_db(admin: &Store, name: &str) -> Result<()> {
    admin
        .create_database(name)
        .await
        .context("creating the benchmark database")
}

/// The end of a run: the database is dropped, or kept (`--keep-db`) and named, to look at its
/// query plans and statistics.
pub(super) async fn finish_db(admin: &Store, name: &str, url: &str, keep: bool) -> Result<()> {
    if keep {
        println!("database kept: {url}");
        Ok(())
    } else {
        sqlx_drop_db(admin, name).await
    }
}

pub(super) async fn sqlx_drop_db(admin: &Store, name: &str) -> Result<()> {
    admin
        .drop_database(name)
        .await
        .context("dropping the benchmark database")
}
