//! `fiber-link dev` as a user runs it: the real binary, its private Postgres, restarts with the
//! data intact (also after a crash), and two instances side by side.

mod common;

use common::free_port;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Dev {
    child: Child,
    pg_port: u16,
    demo: String,
    api: String,
}

/// dev's own log, next to its data (a child must not hold the test's output open).
fn log_file(dir: &Path) -> Stdio {
    std::fs::create_dir_all(dir).unwrap();
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.with_extension("log"))
        .unwrap();
    Stdio::from(f)
}

fn env_value(dir: &Path, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("dev.env")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")).map(str::to_string))
}

struct Ports {
    api: u16,
    hub: u16,
    demo: u16,
    pg: u16,
    console: u16,
}

impl Ports {
    fn new() -> Ports {
        Ports {
            api: free_port(),
            hub: free_port(),
            demo: free_port(),
            pg: free_port(),
            console: free_port(),
        }
    }
}

async fn start(dir: &Path, p: &Ports) -> Dev {
    start_with(dir, p, &[]).await
}

/// `fiber-link dev` on these ports and directory, with no DATABASE_URL (its own Postgres).
fn dev_command(dir: &Path, p: &Ports) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fiber-link"));
    c.args(["dev", "--dir"]).arg(dir);
    for (flag, port) in [
        ("--api-port", p.api),
        ("--hub-port", p.hub),
        ("--demo-port", p.demo),
        ("--pg-port", p.pg),
        ("--console-port", p.console),
    ] {
        c.args([flag, &port.to_string()]);
    }
    c.env_remove("DATABASE_URL");
    c
}

async fn start_with(dir: &Path, p: &Ports, extra: &[&str]) -> Dev {
    let _ = std::fs::remove_file(dir.join("dev.env"));
    let child = dev_command(dir, p)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file(dir))
        .spawn()
        .unwrap();
    // owned by a Dev at once: its Drop stops the process if the test fails
    let mut dev = Dev {
        child,
        pg_port: p.pg,
        demo: String::new(),
        api: String::new(),
    };
    let start = Instant::now();
    loop {
        if let Some(demo) = env_value(dir, "FIBER_LINK_DEMO_URL") {
            if reqwest::get(format!("{demo}/api/assets")).await.is_ok() {
                dev.api = env_value(dir, "FIBER_LINK_API_URL").unwrap();
                dev.demo = demo;
                return dev;
            }
        }
        if let Ok(Some(status)) = dev.child.try_wait() {
            let log = std::fs::read_to_string(dir.with_extension("log")).unwrap_or_default();
            panic!("dev exited ({status}): {log}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "dev did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Dev {
    async fn post(&self, path: &str, body: Value) -> Value {
        let r = reqwest::Client::new()
            .post(format!("{}{path}", self.demo))
            .json(&body)
            .send()
            .await
            .unwrap();
        r.json().await.unwrap()
    }

    async fn available(&self, author: &str) -> String {
        let v: Value = reqwest::get(format!("{}/api/balances", self.demo))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let a = v["authors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["user_id"] == author)
            .unwrap();
        a["balances"][0]["available"].as_str().unwrap().to_string()
    }

    async fn tip_and_pay(&self, author: &str, amount: &str) {
        let t = self
            .post(
                "/api/tip",
                json!({"post_id": "101", "to_user_id": author, "asset": "CKB", "amount": amount}),
            )
            .await;
        let id = t["tip_id"]
            .as_str()
            .unwrap_or_else(|| panic!("{t}"))
            .to_string();
        let paid = self.post("/api/pay", json!({"tip_id": id})).await;
        assert_eq!(paid["paid"], true, "{paid}");
        let start = Instant::now();
        loop {
            let html = reqwest::get(format!("{}/pay/{id}", self.api))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            if html.contains(r#"class="state state-settled""#) {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "not settled");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Ctrl-C (SIGTERM): everything stops, Postgres included.
    fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if self.child.try_wait().unwrap().is_some() {
            return;
        }
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let start = Instant::now();
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "dev did not stop"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", self.pg_port)).is_err(),
            "Postgres was stopped"
        );
    }

    fn crash(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        // also when a test fails half-way: never leave a dev (and its Postgres) running
        if !std::thread::panicking() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
    }
}

/// Removes a dev directory and, when Postgres lived outside it (as root), its cluster too.
fn remove_dev_dir(dir: &Path) {
    if let Ok(home) = std::fs::read_to_string(dir.join("pg-home")) {
        if !Path::new(&home).starts_with(dir) {
            let _ = std::fs::remove_dir_all(home.trim());
        }
    }
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_file(dir.with_extension("log"));
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("fiber-link-devtest-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[tokio::test]
async fn dev_keeps_its_data_across_restarts_and_crashes() {
    let dir = temp_dir("restart");
    let ports = Ports::new();
    let dev = start(&dir, &ports).await;
    dev.tip_and_pay("alice", "2.5").await;
    assert_eq!(dev.available("alice").await, "2.5");
    let app_id = env_value(&dir, "FIBER_LINK_APP_ID").unwrap();
    dev.stop();

    // a clean restart: same app, same balance
    let dev = start(&dir, &ports).await;
    assert_eq!(env_value(&dir, "FIBER_LINK_APP_ID").unwrap(), app_id);
    assert_eq!(dev.available("alice").await, "2.5");
    dev.tip_and_pay("alice", "1").await;
    // Ctrl-C with a pay page open (its event stream never ends by itself for an open tip)
    let t = dev
        .post(
            "/api/tip",
            json!({"post_id": "102", "to_user_id": "bob", "asset": "CKB", "amount": "1"}),
        )
        .await;
    let mut stream = reqwest::get(format!("{}/events", t["pay_url"].as_str().unwrap()))
        .await
        .unwrap();
    assert!(
        stream.chunk().await.unwrap().is_some(),
        "the stream is open"
    );
    dev.stop();
    let dev = start(&dir, &ports).await;
    assert_eq!(dev.available("alice").await, "3.5");
    // a crash leaves Postgres running and a lock file behind; the next start copes
    dev.crash();
    let dev = start(&dir, &ports).await;
    assert_eq!(dev.available("alice").await, "3.5");
    dev.stop();

    // --reset starts clean
    let dev = start_with(&dir, &ports, &["--reset"]).await;
    assert_eq!(dev.available("alice").await, "0");
    assert_ne!(env_value(&dir, "FIBER_LINK_APP_ID").unwrap(), app_id);
    dev.stop();
    remove_dev_dir(&dir);
}

#[tokio::test]
async fn two_dev_instances_do_not_interfere_and_a_busy_port_is_reported() {
    let (da, db) = (temp_dir("a"), temp_dir("b"));
    let (pa, pb) = (Ports::new(), Ports::new());
    let a = start(&da, &pa).await;
    let b = start(&db, &pb).await;
    a.tip_and_pay("bob", "4").await;
    assert_eq!(a.available("bob").await, "4");
    assert_eq!(b.available("bob").await, "0");

    // a third instance on a's API port fails with a clear message
    let busy = Ports {
        api: pa.api,
        ..Ports::new()
    };
    let out = dev_command(&temp_dir("c"), &busy).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}", pa.api)) && err.contains("--api-port"),
        "{err}"
    );
    // and a second instance on the same directory is refused
    let out = dev_command(&da, &Ports::new()).output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("another fiber-link dev is running"),
        "{out:?}"
    );
    a.stop();
    b.stop();
    remove_dev_dir(&da);
    remove_dev_dir(&db);
    remove_dev_dir(&temp_dir("c"));
}
